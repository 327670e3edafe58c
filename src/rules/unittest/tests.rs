//! Unit tests of the rule unit-test runner's pieces; the corpus against promtool's recorded
//! output is in `cli::test_rules`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::report::{alerts_string, format_float_e, indent_lines, Pairs};
use super::spec;
use super::*;

#[test]
fn float_e_matches_go() {
    assert_eq!(format_float_e(6.0), "6E+00");
    assert_eq!(format_float_e(560.0), "5.6E+02");
    assert_eq!(format_float_e(1.5), "1.5E+00");
    assert_eq!(format_float_e(0.00001), "1E-05");
    assert_eq!(format_float_e(1e100), "1E+100");
    assert_eq!(format_float_e(0.0), "0E+00");
    assert_eq!(format_float_e(-2.5), "-2.5E+00");
    assert_eq!(format_float_e(f64::NAN), "NaN");
    assert_eq!(format_float_e(f64::NEG_INFINITY), "-Inf");
}

#[test]
fn alert_list_layout() {
    assert_eq!(alerts_string(&[]), "[]");
    let a = (
        Pairs(vec![("alertname".into(), "A".into())]),
        Pairs(vec![("s".into(), "".into())]),
    );
    assert_eq!(
        indent_lines(&alerts_string(&[a.clone(), a]), "  "),
        "[\n  0:\n    Labels:{alertname=\"A\"}\n    Annotations:{s=\"\"},\n  1:\n    Labels:{alertname=\"A\"}\n    Annotations:{s=\"\"}\n  ]"
    );
}

#[test]
fn strict_yaml() {
    assert!(matches!(
        spec::parse("tests:\n  - interval: 1m\n    bogus: 1\n"),
        Err(UnitTestError::Yaml(_))
    ));
    let f = spec::parse("evaluation_interval: 30s\ntests:\n  - interval: 1m\n    promql_expr_test:\n      - expr: up\n        eval_time: 0\n").unwrap();
    assert_eq!(
        spec::opt_duration_ms(&f.evaluation_interval).unwrap(),
        30_000
    );
    let t = &f.tests[0].promql_expr_test[0];
    assert_eq!(spec::opt_duration_ms(&t.eval_time).unwrap(), 0);
}

fn write_test(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn bad_input_is_a_failure_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let p = write_test(dir.path(), "t.yml", "group_eval_order: [a, a]\ntests: []\n");
    assert_eq!(
        test_file(&p).failures,
        vec!["group name repeated in evaluation order: a".to_string()]
    );
    let p = write_test(
        dir.path(),
        "t2.yml",
        "tests:\n  - interval: 1m\n    input_series:\n      - series: 'up{'\n        values: '1 2'\n",
    );
    let out = test_file(&p);
    assert_eq!(out.failures.len(), 1, "{out:?}");
    let p = write_test(
        dir.path(),
        "t3.yml",
        "tests:\n  - interval: 1m\n    name: g\n    alert_rule_test:\n      - eval_time: 1m\n",
    );
    assert_eq!(
        test_file(&p).failures,
        vec!["an item under alert_rule_test misses required attribute alertname at eval_time 1m (in TestGroup g)".to_string()]
    );
    let p = write_test(
        dir.path(),
        "t4.yml",
        "rule_files: [nothere*.yml]\ntests:\n  - interval: 1m\n    input_series:\n      - series: 'up'\n        values: '1x3'\n    promql_expr_test:\n      - expr: up\n        eval_time: 2m\n        exp_samples:\n          - labels: 'up'\n            value: 1\n",
    );
    let out = test_file(&p);
    assert!(out.failures.is_empty(), "{out:?}");
    assert_eq!(out.warnings.len(), 1);
}

#[test]
fn recording_rule_sees_earlier_rule_at_same_time() {
    let dir = tempfile::tempdir().unwrap();
    write_test(
        dir.path(),
        "r.yml",
        "groups:\n  - name: g\n    rules:\n      - record: a\n        expr: vector(time())\n      - record: b\n        expr: a + 1\n",
    );
    let p = write_test(
        dir.path(),
        "t.yml",
        "rule_files: [r.yml]\ntests:\n  - interval: 1m\n    promql_expr_test:\n      - expr: b\n        eval_time: 2m\n        exp_samples:\n          - labels: 'b'\n            value: 121\n      - expr: b\n        eval_time: 2m\n        exp_samples:\n          - labels: 'b'\n            value: .nan\n",
    );
    let out = test_file(&p);
    assert_eq!(
        out.failures,
        vec!["    expr: \"b\", time: 2m,\n        exp: {__name__=\"b\"} NaN\n        got: {__name__=\"b\"} 1.21E+02".to_string()]
    );
}
