use super::*;
use crate::config::{Config, StaticConfig};

fn job(yaml_relabel: &str) -> ScrapeConfig {
    let yaml = format!(
        "scrape_configs:\n  - job_name: j\n    scrape_interval: 15s\n    params: {{module: [http_2xx, other]}}\n    relabel_configs: {yaml_relabel}\n    static_configs: [{{targets: ['a:1']}}]\n"
    );
    let c = Config::from_yaml_str(&yaml, "t.yml").expect("config");
    c.scrape_configs[0].clone()
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

#[test]
fn defaults_are_filled_like_prometheus() {
    let cfg = job("[]");
    let got = populate_labels(&labels(&[(ADDRESS_LABEL, "host:9100")]), &cfg)
        .expect("ok")
        .expect("kept");
    assert_eq!(got.get("job"), Some("j"));
    assert_eq!(got.get("instance"), Some("host:9100"));
    assert_eq!(got.get(SCHEME_LABEL), Some("http"));
    assert_eq!(got.get(METRICS_PATH_LABEL), Some("/metrics"));
    assert_eq!(got.get(SCRAPE_INTERVAL_LABEL), Some("15s"));
    assert_eq!(got.get(SCRAPE_TIMEOUT_LABEL), Some("10s"));
    assert_eq!(got.get("__param_module"), Some("http_2xx"));
}

#[test]
fn default_ports_follow_the_scheme_and_ipv6_stays_bracketed() {
    let cfg = job("[]");
    let got = populate_labels(&labels(&[(ADDRESS_LABEL, "host")]), &cfg)
        .expect("ok")
        .expect("kept");
    assert_eq!(got.get(ADDRESS_LABEL), Some("host:80"));
    let got = populate_labels(
        &labels(&[(ADDRESS_LABEL, "host"), (SCHEME_LABEL, "https")]),
        &cfg,
    )
    .expect("ok")
    .expect("kept");
    assert_eq!(got.get(ADDRESS_LABEL), Some("host:443"));
    let got = populate_labels(&labels(&[(ADDRESS_LABEL, "[::1]")]), &cfg)
        .expect("ok")
        .expect("kept");
    assert_eq!(got.get(ADDRESS_LABEL), Some("[::1]:80"));
    let got = populate_labels(&labels(&[(ADDRESS_LABEL, "[::1]:9")]), &cfg)
        .expect("ok")
        .expect("kept");
    assert_eq!(got.get("instance"), Some("[::1]:9"));
}

#[test]
fn meta_labels_go_after_relabeling_and_drop_keeps_discovered() {
    let cfg = job("[{source_labels: [__meta_x], target_label: x}, {source_labels: [x], regex: drop, action: drop}]");
    let got = populate_labels(&labels(&[(ADDRESS_LABEL, "h:1"), ("__meta_x", "v")]), &cfg)
        .expect("ok")
        .expect("kept");
    assert_eq!(got.get("x"), Some("v"));
    assert_eq!(got.get("__meta_x"), None);
    let group = TargetGroup {
        source: "0".into(),
        targets: vec![BTreeMap::from([
            (ADDRESS_LABEL.to_string(), "h:2".to_string()),
            ("__meta_x".to_string(), "drop".to_string()),
        ])],
        labels: BTreeMap::from([("__meta_x".to_string(), "group-loses".to_string())]),
    };
    let (t, errs) = targets_from_group(&group, &cfg);
    assert!(errs.is_empty());
    assert!(t[0].is_dropped());
    assert_eq!(
        t[0].discovered.get("__meta_x"),
        Some("drop"),
        "target labels win over group labels"
    );
}

#[test]
fn bad_targets_are_errors_not_panics() {
    let cfg = job("[{target_label: __address__, replacement: ''}]");
    assert_eq!(
        populate_labels(&labels(&[(ADDRESS_LABEL, "h:1")]), &cfg),
        Err(TargetError::NoAddress)
    );
    let cfg = job("[{target_label: __scrape_interval__, replacement: 'nope'}]");
    assert!(matches!(
        populate_labels(&labels(&[(ADDRESS_LABEL, "h:1")]), &cfg),
        Err(TargetError::BadDuration { .. })
    ));
    let cfg = job("[{target_label: __scrape_timeout__, replacement: '1m'}, {target_label: __scrape_interval__, replacement: '30s'}]");
    assert!(matches!(
        populate_labels(&labels(&[(ADDRESS_LABEL, "h:1")]), &cfg),
        Err(TargetError::TimeoutAboveInterval { .. })
    ));
    let cfg = job("[{target_label: __address__, replacement: 'h:1/x'}]");
    assert!(matches!(
        populate_labels(&labels(&[(ADDRESS_LABEL, "h:1")]), &cfg),
        Err(TargetError::InvalidAddress(_))
    ));
}

#[test]
fn url_uses_param_labels_over_config_params() {
    let cfg = job("[{target_label: __param_target, replacement: 'x y'}]");
    let sg = static_groups(&cfg);
    let (t, _) = targets_from_group(&sg[0], &cfg);
    assert_eq!(
        t[0].url(),
        "http://a:1/metrics?module=http_2xx&module=other&target=x+y"
    );
    let series = t[0].series_labels();
    assert_eq!(series, labels(&[("instance", "a:1"), ("job", "j")]));
}

#[test]
fn offset_is_stable_and_inside_the_interval() {
    let cfg = job("[]");
    let (t, _) = targets_from_group(&static_groups(&cfg)[0], &cfg);
    let iv = Duration::from_secs(15);
    let now = 1_700_000_000_123_456_789u128;
    let a = t[0].offset(iv, 7, now);
    assert!(a <= iv);
    assert_eq!(a, t[0].offset(iv, 7, now), "same target, same phase");
    // The phase in the interval is what is stable: scrape times modulo the interval agree.
    let later = now + 3 * iv.as_nanos() + 5;
    let b = t[0].offset(iv, 7, later);
    assert_eq!(
        (now + a.as_nanos()) % iv.as_nanos(),
        (later + b.as_nanos()) % iv.as_nanos()
    );
}

#[test]
fn static_config_labels_apply_to_every_target() {
    let mut cfg = ScrapeConfig::new("s");
    cfg.scrape_interval = PromDuration::from_secs(5);
    cfg.scrape_timeout = PromDuration::from_secs(5);
    let mut sc = StaticConfig {
        targets: vec!["a:1".into(), "b:2".into()],
        labels: BTreeMap::new(),
    };
    sc.labels.insert(
        crate::config::LabelName::new("env").expect("name"),
        "prod".into(),
    );
    cfg.static_configs.push(sc);
    let (t, _) = targets_from_group(&static_groups(&cfg)[0], &cfg);
    assert_eq!(t.len(), 2);
    assert!(t.iter().all(|t| t.labels.get("env") == Some("prod")));
    assert_eq!(
        t[1].interval_and_timeout(&cfg),
        (Duration::from_secs(5), Duration::from_secs(5))
    );
}
