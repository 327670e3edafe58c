#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;
use proptest::prelude::*;

fn check(text: &str) -> Result<RuleGroups> {
    parse("f.yml", text, &default_template_check())
}

fn messages(text: &str) -> Vec<String> {
    check(text)
        .unwrap_err()
        .iter()
        .map(|e| e.to_string())
        .collect()
}

#[test]
fn parses_typed_groups() {
    let text = "groups:
  - name: g1
    interval: 30s
    limit: 10
    rules:
      - record: job:up:sum
        expr: sum by (job) (up)
        labels: {source: rule}
      - alert: Down
        expr: up == 0
        for: 5m
        keep_firing_for: 1m
        labels: {severity: page}
        annotations: {summary: '{{ $labels.instance }} down'}
  - name: g2
    rules: []
";
    let g = check(text).unwrap();
    assert_eq!(g.groups.len(), 2);
    assert_eq!(g.rule_count(), 2);
    let g1 = &g.groups[0];
    assert_eq!(g1.interval, Some(Duration::from_secs(30)));
    assert_eq!(g1.limit, 10);
    assert_eq!(g1.rules[0].kind, RuleKind::Record("job:up:sum".into()));
    assert_eq!(g1.rules[0].expr, "sum by (job) (up)");
    assert_eq!(g1.rules[0].labels["source"], "rule");
    let a = &g1.rules[1];
    assert_eq!(a.kind, RuleKind::Alert("Down".into()));
    assert_eq!(a.for_, Duration::from_secs(300));
    assert_eq!(a.keep_firing_for, Duration::from_secs(60));
    assert_eq!(a.annotations["summary"], "{{ $labels.instance }} down");
    assert_eq!(g.groups[1].interval, None);
    assert!(a.parsed_expr().is_ok());
}

#[test]
fn empty_and_comment_only_files_have_no_groups() {
    assert_eq!(check("").unwrap().groups.len(), 0);
    assert_eq!(check("# nothing\n").unwrap().groups.len(), 0);
    assert_eq!(check("groups:\n").unwrap().groups.len(), 0);
}

#[test]
fn positions_and_quoting_match_promtool() {
    assert_eq!(
        messages(
            "groups:\n  - name: g\n    rules:\n      - record: job:up:sum\n        alert: Both\n        expr: sum(up)\n"
        ),
        vec!["f.yml: 4:17: 5:16: group \"g\", rule 1, \"Both\": only one of 'record' and 'alert' must be set"]
    );
    assert_eq!(
        messages("groups:\n  - name: \"g \\\"q\\\"\\tx\"\n    rules:\n      - record: \"a\\\"b\"\n        expr: up\n"),
        vec!["f.yml: 4:17: group \"g \\\"q\\\"\\tx\", rule 1, \"a\\\"b\": invalid recording rule name: a\"b"]
    );
}

#[test]
fn absent_nodes_are_at_zero() {
    assert_eq!(
        messages("groups:\n- name: g\n  rules:\n  - expr: up\n"),
        vec!["f.yml: 0:0: group \"g\", rule 1, \"\": one of 'record' or 'alert' must be set"]
    );
}

#[test]
fn custom_template_check_is_used_for_alerts_only() {
    let refuse = |_: &str, t: &str| {
        if t.contains("bad") {
            Err("template: nope".to_string())
        } else {
            Ok(())
        }
    };
    let text = "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    labels: {l: bad}\n  - record: r\n    expr: up\n    labels: {l: bad}\n";
    let errs: Vec<String> = parse("f.yml", text, &refuse)
        .unwrap_err()
        .iter()
        .map(|e| e.to_string())
        .collect();
    assert_eq!(
        errs,
        vec!["f.yml: group \"g\", rule 1, \"A\": label \"l\": template: nope"]
    );
}

#[test]
fn names() {
    assert!(is_valid_metric_name("a:b_c9"));
    assert!(!is_valid_metric_name("9a"));
    assert!(!is_valid_metric_name(""));
    assert!(is_valid_label_name("_a9"));
    assert!(!is_valid_label_name("a:b"));
    assert_eq!(go_quote("a\u{1}\u{7f}é"), "\"a\\x01\\x7fé\"");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = check(&text);
    }

    #[test]
    fn random_yaml_like_text_never_panics(
        parts in proptest::collection::vec(
            prop::sample::select(vec![
                "groups:", "\n", "  ", "- ", "name: ", "rules:", "record: ", "alert: ",
                "expr: ", "for: ", "labels:", "annotations:", "{{", "}}", "\"", "'", "[",
                "]", "{", "}", ":", "x", "5m", "sum(up", "&a ", "*a", "!!int ", "---\n", "~",
                "limit: ", "interval: ", "-1", "up", "__name__: ", "#",
            ]),
            0..60,
        )
    ) {
        let text: String = parts.concat();
        let _ = check(&text);
    }
}

/// Each case was checked with promtool 2.42, which accepts all of them.
#[test]
fn scalars_decode_as_yaml_v3_does() {
    let text = "groups:
- name: g
  limit: 1.5
  rules:
  - alert: A
    expr: null
    labels:
      a: null
      b: ~
      c:
      d: 1.0
      e: True
      f: 17
---
groups:
- name: g
  rules:
  - record: \"bad name\"
    expr: up
";
    let g = check(text).unwrap();
    // Only the first document counts.
    assert_eq!(g.groups.len(), 1);
    assert_eq!(g.groups[0].limit, 1);
    let r = &g.groups[0].rules[0];
    assert_eq!(r.expr, "null");
    let got: Vec<(&str, &str)> = r
        .labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("a", ""),
            ("b", ""),
            ("c", ""),
            ("d", "1.0"),
            ("e", "True"),
            ("f", "17"),
        ]
    );
    assert_eq!(
        check("groups:\n- name: g\n  limit: -1\n  rules: []\n")
            .unwrap()
            .groups[0]
            .limit,
        -1
    );
}
