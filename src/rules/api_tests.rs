#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;

const GROUP: &str = "name: g1
interval: 1m
rules:
  - record: job:up:sum
    expr: sum by (job) (up)
    labels: {source: api}
  - alert: Down
    expr: up == 0
    for: 5m
    annotations:
      summary: '{{ $labels.instance }} is down'
";

fn invalid(body: &str) -> Vec<String> {
    match parse_group(body) {
        Err(ApiRulesError::Invalid(m)) => m,
        other => panic!("{other:?}"),
    }
}

#[test]
fn one_group_parses_and_renders_back() {
    let g = parse_group(GROUP).unwrap();
    assert_eq!(g.name, "g1");
    assert_eq!(g.interval, Some(std::time::Duration::from_secs(60)));
    assert_eq!(g.rules.len(), 2);
    let text = render_group(&g).unwrap();
    assert!(text.contains("interval: 1m"), "{text}");
    assert!(text.contains("for: 5m"), "{text}");
    assert!(!text.contains("keep_firing_for"), "{text}");
    // What is rendered parses to the same group.
    assert_eq!(parse_group(&text).unwrap(), g);
    // A document marker, comments and JSON are fine too.
    let marked = format!("---\n# comment\n{GROUP}");
    assert_eq!(parse_group(&marked).unwrap(), g);
    // A multi-line expression and odd strings survive rendering.
    let multi = "name: m\nrules:\n  - alert: 'A'\n    expr: |\n      sum(\n        up\n      ) > 0\n    labels: {x: 'yes', y: '1'}\n    annotations: {s: \"{{ $value }}: \\\"quoted\\\"\"}\n";
    let m = parse_group(multi).unwrap();
    assert_eq!(parse_group(&render_group(&m).unwrap()).unwrap(), m);
    let json = r#"{"name": "j", "rules": [{"record": "a:b", "expr": "vector(1)"}]}"#;
    assert_eq!(parse_group(json).unwrap().rules.len(), 1);
}

#[test]
fn namespaces_render_as_a_map_of_group_lists() {
    let mut ns = Namespaces::new();
    let g = parse_group(GROUP).unwrap();
    ns.entry("team/a".to_string())
        .or_default()
        .insert(g.name.clone(), g.clone());
    let text = render_namespaces(&ns).unwrap();
    let back: BTreeMap<String, Vec<serde_norway::Value>> = serde_norway::from_str(&text).unwrap();
    assert_eq!(back["team/a"].len(), 1);
    assert_eq!(back["team/a"][0]["name"], "g1");
    assert_eq!(render_namespaces(&Namespaces::new()).unwrap(), "{}\n");
}

#[test]
fn problems_are_named_with_positions_in_the_body() {
    let m = invalid("name: g\nrules:\n  - record: x\n    expr: sum(\n");
    assert_eq!(m.len(), 1, "{m:?}");
    assert!(
        m[0].starts_with("4:11: group \"g\", rule 1, \"x\": could not parse expression"),
        "{m:?}"
    );
    let m = invalid("rules: []\n");
    assert_eq!(m, vec!["1:1: Groupname must not be empty"]);
    let m = invalid("");
    assert_eq!(m, vec!["the body holds no rule group"]);
    assert_eq!(invalid(" \n"), vec!["the body holds no rule group"]);
    let m = invalid("name: g\nbogus: 1\nrules: []\n");
    assert!(
        m[0].contains("line 2: field bogus not found in type rulefmt.RuleGroup"),
        "{m:?}"
    );
    let m = invalid("- name: g\n  rules: []\n");
    assert!(m[0].contains("cannot unmarshal !!seq"), "{m:?}");
    let m = invalid("name: g\nrules:\n  - alert: A\n    expr: up\n    annotations: {s: '{{ .x'}\n");
    assert!(m[0].contains("annotation \"s\""), "{m:?}");
    let m = invalid("name: g\nrules:\n  - record: 'bad name'\n    expr: up\n");
    assert!(m[0].contains("invalid recording rule name"), "{m:?}");
    // A whole rule file is not one group.
    let m = invalid("groups:\n- name: g\n  rules: []\n");
    assert!(m[0].contains("field groups not found"), "{m:?}");
}

#[test]
fn stored_documents_become_groups_keyed_by_namespace() {
    let mut docs = crate::apiconfig::Documents::new();
    docs.insert(vec!["ns".into(), "g1".into()], GROUP.to_string());
    docs.insert(vec!["ns".into(), "other".into()], GROUP.to_string());
    docs.insert(vec!["ns".into()], GROUP.to_string());
    docs.insert(
        vec!["ns".into(), "bad".into()],
        "name: bad\nrules: 3\n".into(),
    );
    let (ns, bad) = from_documents(&docs);
    assert_eq!(ns["ns"].keys().collect::<Vec<_>>(), vec!["g1"]);
    assert_eq!(bad.len(), 3, "{bad:?}");
    let defs = group_defs(&ns);
    let (file, g) = &defs["ns;g1"];
    assert_eq!((file.as_str(), g.name.as_str()), ("ns", "g1"));
}

#[test]
fn api_groups_hand_over_to_the_evaluator_and_refuse_file_keys() {
    let rules = SharedRules::default();
    let api = ApiGroups::new(rules.clone());
    let g = parse_group(GROUP).unwrap();
    rules.write().set_file_groups(GroupDefs::from([(
        "f.yml;g1".to_string(),
        ("f.yml".to_string(), g.clone()),
    )]));
    assert!(matches!(
        api.conflict("f.yml", "g1"),
        Err(ApiRulesError::Conflict { .. })
    ));
    api.conflict("ns", "g1").unwrap();
    api.put("ns", g.clone());
    api.conflict("ns", "g1").unwrap();
    let mut semi = g.clone();
    semi.name = "b;c".to_string();
    api.put("a", semi);
    assert!(matches!(
        api.conflict("a;b", "c"),
        Err(ApiRulesError::Ambiguous { .. })
    ));
    api.conflict("a", "b;c").unwrap();
    api.remove_namespace("a");
    let pending: Vec<String> = rules.write().pending.take().unwrap().into_keys().collect();
    assert_eq!(pending, vec!["f.yml;g1", "ns;g1"]);
    assert!(!api.remove_group("ns", "nope"));
    assert!(api.remove_group("ns", "g1"));
    assert!(api.snapshot().is_empty());
    api.put("ns", g);
    assert_eq!(api.remove_namespace("ns"), vec!["g1"]);
    let pending: Vec<String> = rules.write().pending.take().unwrap().into_keys().collect();
    assert_eq!(pending, vec!["f.yml;g1"]);
}

#[test]
fn selectors_are_found_once_each() {
    let e = crate::promql::engine::parse_query(
        "sum(rate(http_requests_total{job=\"a\"}[5m])) / sum(up) + up",
        0,
        0,
    )
    .unwrap();
    let probes = selector_probes(&e);
    let sels: Vec<&str> = probes.iter().map(|p| p.selector.as_str()).collect();
    assert_eq!(sels, vec!["http_requests_total{job=\"a\"}[5m]", "up"]);
    assert_eq!(
        probes[0].query,
        "count(last_over_time(http_requests_total{job=\"a\"}[5m]))"
    );
    assert_eq!(probes[1].query, "count(up)");
    let none = crate::promql::engine::parse_query("vector(1)", 0, 0).unwrap();
    assert!(selector_probes(&none).is_empty());
}
