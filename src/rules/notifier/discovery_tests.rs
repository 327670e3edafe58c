#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::rules::notifier::test_support::{alerting, relabel, relabel_configs};

fn group(targets: &[&str]) -> Group {
    Group {
        targets: targets.iter().map(|t| t.to_string()).collect(),
        labels: BTreeMap::new(),
    }
}

#[test]
fn alerts_path_is_go_path_join() {
    assert_eq!(alerts_path("/"), "/api/v2/alerts");
    assert_eq!(alerts_path(""), "/api/v2/alerts");
    assert_eq!(alerts_path("am"), "/am/api/v2/alerts");
    assert_eq!(alerts_path("/am/"), "/am/api/v2/alerts");
    assert_eq!(alerts_path("a/../b/./c"), "/b/c/api/v2/alerts");
}

#[test]
fn urls_are_built_relabeled_and_merged() {
    let mut cfg = AlertmanagerConfig::new();
    cfg.path_prefix = "/prefix".to_string();
    cfg.relabel_configs = relabel_configs(
        "- {source_labels: [__address__], regex: 'drop-me:.*', action: drop}\n\
         - {source_labels: [__address__], regex: 'tls-(.*)', target_label: __scheme__, replacement: https}\n\
         - {source_labels: [__address__], regex: 'tls-(.*)', target_label: __address__}\n\
         - {source_labels: [env], regex: 'x', target_label: __alerts_path__, replacement: /custom}\n",
    );
    let mut labelled = group(&["c:3"]);
    labelled.labels.insert("env".into(), "x".into());
    let groups = vec![
        group(&["a:1", "a:1", "drop-me:9", "tls-b:2"]),
        group(&["a:1"]),
        labelled,
    ];
    let (active, dropped) = resolve(&groups, &cfg, relabel);
    assert_eq!(
        active,
        [
            "http://a:1/prefix/api/v2/alerts",
            "https://b:2/prefix/api/v2/alerts",
            "http://c:3/custom"
        ]
    );
    assert_eq!(dropped, ["http://drop-me:9/prefix/api/v2/alerts"]);
}

#[test]
fn api_v1_is_refused_with_a_clear_error() {
    let cfg = alerting("alertmanagers: [{api_version: v2}, {api_version: v1}]\n");
    let e = crate::rules::notifier::check_config(&cfg).unwrap_err();
    assert_eq!(e, NotifierError::ApiV1Unsupported { index: 1 });
    assert!(
        e.to_string().contains("v1 is not supported by Strata"),
        "{e}"
    );
}

#[test]
fn file_sd_targets_are_read_and_follow_changes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("am.json"), r#"[{"targets":["f:1"]}]"#).unwrap();
    let cfg = alerting(
        "alertmanagers:\n- static_configs: [{targets: ['s:1']}]\n  file_sd_configs: [{files: ['*.json', 'am.yml']}]\n",
    );
    let mut set = AmSet::new(0, &cfg.alertmanagers[0], dir.path()).unwrap();
    assert_eq!(
        set.view(relabel).active,
        ["http://s:1/api/v2/alerts", "http://f:1/api/v2/alerts"]
    );
    assert!(!set.poll());
    std::fs::write(
        dir.path().join("am.yml"),
        "- targets: ['g:2']\n  labels: {a: b}\n",
    )
    .unwrap();
    assert!(set.poll());
    assert_eq!(set.view(relabel).active.len(), 3);
    // A broken file keeps what it had.
    std::fs::write(dir.path().join("am.yml"), "- targets: [").unwrap();
    set.poll();
    assert_eq!(set.view(relabel).active.len(), 3);
    std::fs::remove_file(dir.path().join("am.json")).unwrap();
    assert!(set.poll());
    assert_eq!(
        set.view(relabel).active,
        ["http://s:1/api/v2/alerts", "http://g:2/api/v2/alerts"]
    );
}
