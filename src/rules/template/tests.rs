//! Tests of the template module against Prometheus 2.42 itself: `testdata/promtool_cases.json`
//! holds templates and the text promtool 2.42 produced for them (expansions, expansion errors,
//! parse errors), harvested and re-checked by `scripts/template-oracle.py`; the data below
//! must match that script's `DATA`. Plus API checks and a no-panic property test.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The series of the oracle's `promtool test rules` file, answered at t=0.
struct FakeQueries;

impl QueryFunc for FakeQueries {
    fn query(&self, expr: &str, _ts_ms: i64) -> std::result::Result<Vec<QuerySample>, String> {
        match expr {
            "vals" => Ok(vec![QuerySample {
                labels: labels(&[
                    ("__name__", "vals"),
                    ("id", "1"),
                    ("instance", "host.example.com:9090"),
                    ("job", "j"),
                ]),
                value: 1234.5678,
            }]),
            "q" => Ok(vec![
                QuerySample {
                    labels: labels(&[("__name__", "q"), ("a", "x"), ("b", "2")]),
                    value: 3.0,
                },
                QuerySample {
                    labels: labels(&[("__name__", "q"), ("a", "y"), ("b", "1")]),
                    value: 0.5,
                },
            ]),
            "nothing" => Ok(vec![]),
            "foo(" => Err("1:5: parse error: unclosed left parenthesis".into()),
            other => Err(format!("unexpected query {other}")),
        }
    }
}

fn oracle_data() -> TemplateData {
    TemplateData {
        labels: labels(&[
            ("__name__", "vals"),
            ("id", "1"),
            ("instance", "host.example.com:9090"),
            ("job", "j"),
        ]),
        external_labels: labels(&[("cluster", "c1")]),
        external_url: "http://ext.example.com:9090/prefix".into(),
        value: 1234.5678,
    }
}

#[derive(serde::Deserialize)]
struct Case {
    template: String,
    expected: Option<String>,
    parse_error: Option<String>,
}

#[test]
fn matches_promtool_2_42() {
    let cases: Vec<Case> =
        serde_json::from_str(include_str!("testdata/promtool_cases.json")).unwrap();
    assert!(cases.len() > 150, "the table lost cases");
    let data = oracle_data();
    let ctx = ExpandContext {
        data: &data,
        eval_time_ms: 0,
        query: &FakeQueries,
        external_url: None,
    };
    let mut failures = Vec::new();
    for c in &cases {
        if let Some(want) = &c.parse_error {
            let got = match check_alert_template("T", &c.template) {
                Ok(()) => "<parsed>".to_string(),
                Err(e) => e.to_string(),
            };
            if &got != want {
                failures.push(format!(
                    "parse {:?}\n   want {want:?}\n    got {got:?}",
                    c.template
                ));
            }
        } else if let Some(want) = &c.expected {
            let got = expand_or_error_text("T", &c.template, &ctx);
            if &got != want {
                failures.push(format!(
                    "expand {:?}\n   want {want:?}\n    got {got:?}",
                    c.template
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn rule_file_check_words_errors_like_rulefmt() {
    assert_eq!(
        check_alert_template("A", "{{ ").unwrap_err().to_string(),
        "template: __alert_A:1: unclosed action"
    );
    assert!(check_alert_template("A", "{{ $labels.instance }} is {{ $value | humanize }}").is_ok());
    assert_eq!(
        check_alert_template("A", "x\n{{ nope }}").unwrap_err(),
        TemplateError::Parse("template: __alert_A:2: function \"nope\" not defined".into())
    );
}

#[test]
fn expansion_errors_are_wrapped_like_expander() {
    let data = oracle_data();
    let ctx = ExpandContext {
        data: &data,
        eval_time_ms: 0,
        query: &FakeQueries,
        external_url: Some("http://prom.example.com:9090/sub/path"),
    };
    let err = expand_alert_template("X", "{{ gt $value 1 }}", &ctx).unwrap_err();
    assert!(matches!(err, TemplateError::ExpandExec { ref name, .. } if name == "__alert_X"));
    assert_eq!(
        err.to_string(),
        "error executing template __alert_X: template: __alert_X:1:115: executing \"__alert_X\" at <gt $value 1>: error calling gt: incompatible types for comparison"
    );
    // With a URL, externalURL and pathPrefix answer as Prometheus's do.
    assert_eq!(
        expand_or_error_text("X", "{{ externalURL }} {{ pathPrefix }}", &ctx),
        "http://prom.example.com:9090/sub/path /sub/path"
    );
}

#[test]
fn template_api_without_alert_prefix() {
    let t = Template::parse("t", "{{ range $i, $v := .Labels }}{{ $i }}{{ end }}").unwrap();
    assert_eq!(t.name(), "t");
    let data = TemplateData {
        labels: labels(&[("b", "1"), ("a", "2")]),
        ..TemplateData::default()
    };
    let ctx = ExpandContext {
        data: &data,
        eval_time_ms: 0,
        query: &NoQueries("no engine".into()),
        external_url: None,
    };
    assert_eq!(t.execute(&ctx).unwrap(), "ab");
    let t = Template::parse("t", "{{ query \"up\" }}").unwrap();
    assert_eq!(
        t.execute(&ctx).unwrap_err().to_string(),
        "template: t:1:3: executing \"t\" at <query \"up\">: error calling query: no engine"
    );
}

#[test]
fn float_printing_matches_go() {
    for (v, want) in [
        (1e6, "1e+06"),
        (0.1, "0.1"),
        (10.0 / 3.0, "3.3333333333333335"),
        (f64::INFINITY, "+Inf"),
        (f64::NEG_INFINITY, "-Inf"),
        (f64::NAN, "NaN"),
        (100000.0, "100000"),
        (1e-5, "1e-05"),
        (-0.0, "-0"),
    ] {
        assert_eq!(fmt::format_float_v(v), want, "{v}");
    }
    assert_eq!(fmt::format_g(1234.5678, 4), "1235");
    assert_eq!(fmt::format_g(123456.0, 4), "1.235e+05");
}

/// Runs `f` on a thread with a 1 MiB stack, half of what Rust gives test and tokio threads.
fn on_small_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    on_small_stack(|| {
        let data = oracle_data();
        let ctx = ExpandContext {
            data: &data,
            eval_time_ms: 0,
            query: &FakeQueries,
            external_url: None,
        };
        for text in [
            format!("{{{{ {}1{} }}}}", "(".repeat(5000), ")".repeat(5000)),
            format!("{}{}", "{{ if 1 }}".repeat(5000), "{{ end }}".repeat(5000)),
            format!(
                "{}{}",
                "{{ range $labels }}".repeat(5000),
                "{{ end }}".repeat(5000)
            ),
            format!("{{{{ {}{} }}}}", "len (".repeat(3000), ")".repeat(3000)),
        ] {
            let err = check_alert_template("T", &text).unwrap_err().to_string();
            assert!(err.ends_with("max expression depth exceeded"), "{err}");
        }
        // Just under the limits, nesting and recursion work.
        let ok = format!("{}x{}", "{{ with 1 }}".repeat(95), "{{ end }}".repeat(95));
        assert_eq!(expand_or_error_text("T", &ok, &ctx), "x");
        let ok = format!("{{{{ {}1{} }}}}", "(".repeat(95), ")".repeat(95));
        assert_eq!(expand_or_error_text("T", &ok, &ctx), "1");
        let ok = format!("{{{{ {}1{} }}}}", "print (".repeat(45), ")".repeat(45));
        assert_eq!(expand_or_error_text("T", &ok, &ctx), "1");
        let runaway = r#"{{ define "r" }}{{ with . }}{{ with . }}{{ template "r" . }}{{ end }}{{ end }}{{ end }}{{ template "r" $labels }}"#;
        assert!(expand_or_error_text("T", runaway, &ctx)
            .ends_with("exceeded maximum template depth (100000)>"));
    });
}

proptest! {
    #[test]
    fn go_regex_never_panics(pat in "[a-z()\\[\\]{}*+?|^$.,0-9PpLdwsbzQE<>:=!-]{0,16}", text in "[a-z0-9 ]{0,10}", repl in "[a-z$0-9{}]{0,8}") {
        if let Ok(re) = goregex::compile(&pat) {
            let _ = re.is_match(&text);
            let _ = re.replace_all(&text, &repl);
        }
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,60}") {
        let data = oracle_data();
        let ctx = ExpandContext { data: &data, eval_time_ms: 0, query: &FakeQueries, external_url: None };
        let _ = expand_or_error_text("T", &text, &ctx);
    }

    #[test]
    fn template_like_text_never_panics(parts in proptest::collection::vec(prop_oneof![
        Just("{{"), Just("}}"), Just("{{- "), Just(" -}}"), Just("("), Just(")"), Just("|"), Just(" "),
        Just("$x"), Just(":="), Just("="), Just(","), Just("."), Just(".Labels"), Just("$labels.job"),
        Just("if"), Just("else"), Just("end"), Just("range"), Just("with"), Just("break"), Just("continue"),
        Just("define \"a\""), Just("template \"a\""), Just("block \"b\" ."), Just("nil"), Just("1"), Just("-2.5e3"),
        Just("\"s\""), Just("`r`"), Just("'c'"), Just("printf \"%5.2f|%d|%s|%x|%q|%v\""), Just("index"), Just("slice"),
        Just("len"), Just("eq"), Just("lt"), Just("and"), Just("or"), Just("not"), Just("humanize"),
        Just("humanizeDuration"), Just("humanizeTimestamp"), Just("query \"q\""), Just("first"), Just("label \"a\""),
        Just("value"), Just("sortByLabel \"a\""), Just("toTime"), Just("args"), Just("reReplaceAll \"(\" \"x\""),
        Just("/*"), Just("*/"), Just("\n"), Just("call"), Just("html"), Just("js"), Just("urlquery"),
        Just("1e308"), Just("0x7fffffffffffffff"), Just("'\\u00e9'"),
    ], 0..40)) {
        let text: String = parts.concat();
        let data = oracle_data();
        let ctx = ExpandContext { data: &data, eval_time_ms: 0, query: &FakeQueries, external_url: None };
        let _ = expand_or_error_text("T", &text, &ctx);
        let _ = check_alert_template("T", &text);
    }

    #[test]
    fn printf_never_panics(format in "[%a-zA-Z0-9 .*+#\\-\\[\\]]{0,20}", n in any::<i64>(), x in any::<f64>(), s in "\\PC{0,8}") {
        let args = [value::Value::Int(n), value::Value::Float(x), value::Value::Str(s)];
        let _ = fmt::sprintf(&format, &args);
    }
}

#[test]
fn parsed_templates_can_be_shared_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Template>();
    assert_send_sync::<TemplateError>();
}
