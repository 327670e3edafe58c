//! Loading, defaults, refusal of unsupported sections and located error messages.

use super::*;

fn load(text: &str) -> Result<Config> {
    Config::from_yaml_str(text, "test.yml")
}

fn err(text: &str) -> String {
    match load(text) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn empty_file_is_embedded_default() {
    for text in ["", "\n", "# only a comment\n", "---\n"] {
        let c = load(text).unwrap();
        assert_eq!(c.scrape_configs.len(), 1);
        let job = &c.scrape_configs[0];
        assert_eq!(job.job_name, "strata");
        assert_eq!(
            job.static_configs[0].targets,
            vec!["127.0.0.1:9090".to_string()]
        );
        assert_eq!(job.scrape_interval, PromDuration::from_mins(1));
        assert_eq!(job.scrape_timeout, PromDuration::from_secs(10));
        assert_eq!(c.node.roles, Role::ALL.to_vec());
        assert_eq!(c.bucket.bucket_type, BucketType::Filesystem);
        assert_eq!(c.bucket.filesystem.dir, PathBuf::from("./data/bucket"));
        assert_eq!(c.node.tsdb_dir(), PathBuf::from("./data/tsdb"));
        assert_eq!(c.node.web_listen.to_string(), "127.0.0.1:9090");
    }
}

#[test]
fn defaults_of_every_section() {
    let c = load("global: {}\n").unwrap();
    assert!(c.scrape_configs.is_empty());
    assert_eq!(c.global.scrape_interval.to_string(), "1m");
    assert_eq!(c.global.scrape_timeout.to_string(), "10s");
    assert_eq!(c.global.evaluation_interval.to_string(), "1m");
    assert_eq!(c.node.id, default_node_id());
    assert_eq!(c.node.gossip_listen.to_string(), "127.0.0.1:7946");
    assert_eq!(c.node.rpc_listen.to_string(), "127.0.0.1:7947");
    assert_eq!(c.node.advertise, None);
    assert_eq!(c.cluster.replica_label, "replica");
    assert_eq!(c.cluster.scrape_replication, 2);
    assert_eq!(c.cluster.role_policy.get(&Role::Compactor), Some(&1));
    assert_eq!(c.cluster.role_policy.get(&Role::RuleEvaluator), Some(&2));
    assert_eq!(c.bucket.s3.region, "us-east-1");
    assert!(c.bucket.s3.path_style);
    assert_eq!(c.tsdb.retention.to_string(), "15d");
    assert_eq!(c.tsdb.block_duration.to_string(), "2h");
    assert_eq!(c.admin.token_file, None);
}

#[test]
fn design_example_loads() {
    let text = r#"
global:
  scrape_interval: 15s
  evaluation_interval: 15s
  external_labels: {cluster: eu1}
scrape_configs: []
rule_files: []
alerting: {alertmanagers: []}
node:
  id: node-1
  web_listen: 127.0.0.1:9090
  gossip_listen: 127.0.0.1:7946
  rpc_listen: 127.0.0.1:7947
  advertise: null
  data_dir: ./data
  roles: [scraper_shipper, store_shard, query_planner, compactor, rule_evaluator]
cluster:
  join: []
  key_file: null
  replica_label: replica
  role_policy: {compactor: 1, rule_evaluator: 2}
bucket:
  type: filesystem
  filesystem: {dir: ./data/bucket}
  s3: {endpoint: "", bucket: "", region: us-east-1, path_style: true}
tsdb: {retention: 15d, block_duration: 2h}
admin: {token_file: null}
"#;
    let c = load(text).unwrap();
    assert_eq!(c.global.scrape_timeout.to_string(), "10s");
    assert_eq!(
        c.global.external_labels.get("cluster").map(String::as_str),
        Some("eu1")
    );
    assert_eq!(c.node.id, "node-1");
}

#[test]
fn scrape_defaults_inherit_from_global() {
    let c = load(
        "global: {scrape_interval: 5s}\nscrape_configs:\n  - job_name: a\n  - job_name: b\n    scrape_interval: 30s\n",
    )
    .unwrap();
    assert_eq!(c.global.scrape_timeout.to_string(), "5s");
    let a = &c.scrape_configs[0];
    assert_eq!(
        (a.scrape_interval.to_string(), a.scrape_timeout.to_string()),
        ("5s".into(), "5s".into())
    );
    let b = &c.scrape_configs[1];
    assert_eq!(
        (b.scrape_interval.to_string(), b.scrape_timeout.to_string()),
        ("30s".into(), "5s".into())
    );
    assert_eq!(a.metrics_path, "/metrics");
    assert_eq!(a.scheme, Scheme::Http);
    assert!(a.honor_timestamps && !a.honor_labels && a.follow_redirects && a.enable_http2);
}

#[test]
fn unsupported_sections_are_refused_by_name() {
    for (text, section) in [
        ("remote_read: []\n", "remote_read"),
        ("storage: {tsdb: {}}\n", "storage"),
        ("tracing: {endpoint: x}\n", "tracing"),
        (
            "scrape_configs:\n  - job_name: k\n    kubernetes_sd_configs: [{role: pod}]\n",
            "kubernetes_sd_configs",
        ),
        (
            "scrape_configs:\n  - job_name: c\n    consul_sd_configs: []\n",
            "consul_sd_configs",
        ),
        (
            "alerting:\n  alertmanagers:\n    - dns_sd_configs: [{names: [x]}]\n",
            "dns_sd_configs",
        ),
    ] {
        let e = err(text);
        assert!(
            e.contains(&format!("{section} is not supported by Strata yet")),
            "{e}"
        );
    }
    let e = err("global: {}\nremote_read:\n  - url: http://x\n");
    assert!(e.starts_with("test.yml:2:"), "{e}");
}

#[test]
fn unknown_key_names_path_and_line() {
    let e = err("global:\n  scrape_interval: 15s\nscrape_configs:\n  - job_name: a\n    scrap_interval: 5s\n");
    assert!(e.contains("test.yml:5:"), "{e}");
    assert!(e.contains("scrape_configs[0]"), "{e}");
    assert!(e.contains("unknown field `scrap_interval`"), "{e}");
    assert!(e.contains("did you mean `scrape_interval`?"), "{e}");
    assert!(!e.contains("kubernetes_sd_configs"), "{e}");
    assert!(e.contains(">"), "{e}");
    assert!(e.contains("^"), "{e}");
    let e = err("nodes:\n  id: x\n");
    assert!(
        e.contains("test.yml:1:1") && e.contains("unknown field `nodes`"),
        "{e}"
    );
    let e = err("zzzzzzzz: 1\n");
    assert!(
        e.contains("unknown field `zzzzzzzz`") && !e.contains("did you mean"),
        "{e}"
    );
}

#[test]
fn wrong_type_names_path_and_line() {
    let e = err("scrape_configs:\n  - job_name: a\n    scrape_interval: 5x\n");
    assert!(e.contains("test.yml:3:"), "{e}");
    assert!(e.contains("scrape_configs[0].scrape_interval"), "{e}");
    assert!(e.contains("not a valid duration string: \"5x\""), "{e}");
    let e = err("scrape_configs:\n  - job_name: a\n    sample_limit: lots\n");
    assert!(
        e.contains("test.yml:3:") && e.contains("scrape_configs[0].sample_limit"),
        "{e}"
    );
    let e = err("node:\n  roles: [scraper_shipper, chef]\n");
    assert!(
        e.contains("test.yml:2:") && e.contains("node.roles[1]") && e.contains("chef"),
        "{e}"
    );
}

#[test]
fn invalid_address_names_path_and_line() {
    let e = err("node:\n  id: n\n  web_listen: localhost:9090\n");
    assert!(
        e.contains("test.yml:3:") && e.contains("node.web_listen"),
        "{e}"
    );
    assert!(e.contains("invalid address \"localhost:9090\""), "{e}");
    let e = err("cluster:\n  join:\n    - node1:7946\n    - node2\n");
    assert!(
        e.contains("test.yml:4:") && e.contains("cluster.join[1]"),
        "{e}"
    );
    let e = err("node:\n  advertise: 'node1:99999'\n");
    assert!(
        e.contains("test.yml:2:") && e.contains("node.advertise") && e.contains("invalid port"),
        "{e}"
    );
}

#[test]
fn yaml_syntax_error_has_location() {
    let e = err("global:\n  scrape_interval: [\n");
    assert!(e.starts_with("test.yml:"), "{e}");
    assert!(e.contains("^"), "{e}");
}

#[test]
fn validation_rules() {
    let cases: &[(&str, &str, &str)] = &[
        ("global: {scrape_interval: 5s, scrape_timeout: 10s}\n", "global.scrape_timeout", "global scrape timeout greater than scrape interval"),
        ("scrape_configs:\n  - job_name: a\n    scrape_interval: 5s\n    scrape_timeout: 6s\n", "scrape_configs[0].scrape_timeout", "scrape timeout greater than scrape interval for scrape config with job name \"a\""),
        ("scrape_configs:\n  - job_name: a\n  - job_name: a\n", "scrape_configs[1].job_name", "found multiple scrape configs with job name \"a\""),
        ("scrape_configs:\n  - job_name: ''\n", "scrape_configs[0].job_name", "job_name is empty"),
        ("scrape_configs:\n  - job_name: a\n    metrics_path: metrics\n", "scrape_configs[0].metrics_path", "must start with '/'"),
        ("scrape_configs:\n  - job_name: a\n    scheme: ftp\n", "scrape_configs[0].scheme", "unknown variant `ftp`"),
        ("scrape_configs:\n  - job_name: a\n    bearer_token: x\n    bearer_token_file: f\n", "scrape_configs[0]", "at most one of bearer_token & bearer_token_file"),
        ("scrape_configs:\n  - job_name: a\n    basic_auth: {username: u}\n    bearer_token: x\n", "scrape_configs[0]", "at most one of basic_auth, oauth2, bearer_token & bearer_token_file"),
        ("scrape_configs:\n  - job_name: a\n    basic_auth: {username: u, password: p, password_file: f}\n", "scrape_configs[0]", "basic_auth password & password_file"),
        ("scrape_configs:\n  - job_name: a\n    authorization: {type: Basic, credentials: x}\n", "scrape_configs[0]", "authorization type cannot be set to \"basic\""),
        ("scrape_configs:\n  - job_name: a\n    tls_config: {cert_file: c}\n", "scrape_configs[0]", "specified without client key file"),
        ("scrape_configs:\n  - job_name: a\n    static_configs: [{targets: ['http://x:1']}]\n", "scrape_configs[0].static_configs[0].targets", "is not a valid hostname"),
        ("scrape_configs:\n  - job_name: a\n    static_configs: [{targets: [x], labels: {'a-b': c}}]\n", "scrape_configs[0].static_configs[0].labels.a-b", "\"a-b\" is not a valid label name"),
        ("scrape_configs:\n  - job_name: a\n    file_sd_configs: [{files: ['a/*/b.json']}]\n", "scrape_configs[0].file_sd_configs[0].files", "is not valid for file discovery"),
        ("scrape_configs:\n  - job_name: a\n    file_sd_configs: [{files: []}]\n", "scrape_configs[0].file_sd_configs[0].files", "at least one path name"),
        ("scrape_configs:\n  - job_name: a\n    body_size_limit: 10XB\n", "scrape_configs[0].body_size_limit", "invalid size"),
        ("scrape_configs:\n  - job_name: a\n    scrape_protocols: []\n", "scrape_configs[0].scrape_protocols", "cannot be empty"),
        ("scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - action: hashmod\n        target_label: x\n", "scrape_configs[0].relabel_configs[0]", "requires non-zero modulus"),
        ("scrape_configs:\n  - job_name: a\n    metric_relabel_configs:\n      - regex: '(a'\n        target_label: x\n", "scrape_configs[0].metric_relabel_configs[0].regex", "invalid regex"),
        ("rule_files: ['a/*/b.yml']\n", "rule_files[0]", "invalid rule file path"),
        ("global: {external_labels: {'0x': y}}\n", "global.external_labels.0x", "is not a valid label name"),
        ("alerting:\n  alertmanagers:\n    - api_version: v3\n", "alerting.alertmanagers[0].api_version", "unknown variant `v3`"),
        ("alerting:\n  alertmanagers:\n    - timeout: 0s\n", "alerting.alertmanagers[0].timeout", "positive"),
        ("node: {id: ''}\n", "node.id", "must not be empty"),
        ("node: {id: 'a b'}\n", "node.id", "must not contain spaces"),
        ("node: {roles: [compactor, compactor]}\n", "node.roles[1]", "listed twice"),
        ("node: {web_listen: '127.0.0.1:9000', rpc_listen: '127.0.0.1:9000'}\n", "node.rpc_listen", "same address"),
        ("cluster: {replica_label: 'a-b'}\n", "cluster.replica_label", "not a valid label name"),
        ("cluster: {scrape_replication: 0}\n", "cluster.scrape_replication", "at least 1"),
        ("cluster: {rule_replication: 0}\n", "cluster.rule_replication", "at least 1"),
        ("cluster: {role_policy: {chef: 1}}\n", "cluster.role_policy", "unknown variant `chef`"),
        ("bucket: {type: s3}\n", "bucket.s3.endpoint", "required when bucket.type is s3"),
        ("bucket: {type: s3, s3: {endpoint: 'http://s3:9000'}}\n", "bucket.s3.bucket", "required when bucket.type is s3"),
        ("bucket: {type: s3, s3: {endpoint: e, bucket: b, access_key: k}}\n", "bucket.s3.secret_key", "must be set together"),
        ("bucket: {type: gcs}\n", "bucket.type", "unknown variant `gcs`"),
        ("tsdb: {retention: 0s}\n", "tsdb.retention", "positive"),
        ("tsdb: {block_duration: 2hours}\n", "tsdb.block_duration", "not a valid duration string"),
    ];
    for (text, key, want) in cases {
        let e = load(text).unwrap_err();
        assert_eq!(e.key(), Some(*key), "{text:?}: {e}");
        assert!(e.line().is_some(), "{text:?}: no line in {e}");
        let shown = e.to_string();
        assert!(shown.contains(want), "{text:?}: got {shown}, want {want:?}");
    }
}

#[test]
fn validation_error_points_at_the_line() {
    let text = "scrape_configs:\n  - job_name: a\n  - job_name: b\n    scrape_interval: 5s\n    scrape_timeout: 6s\n";
    let e = load(text).unwrap_err();
    assert_eq!(e.line(), Some(5), "{e}");
    assert!(
        e.to_string()
            .starts_with("test.yml:5:5: scrape_configs[1].scrape_timeout: "),
        "{e}"
    );
}

#[test]
fn validate_on_built_config_names_key() {
    let mut c = Config::embedded_default();
    c.node.id = String::new();
    let e = c.validate().unwrap_err();
    assert_eq!(e.key(), Some("node.id"));
    assert!(e.to_string().starts_with("node.id: "));
}

#[test]
fn valid_peer_addresses_accepted() {
    let c = load("node: {advertise: 'node1.example:7946'}\ncluster: {join: ['10.0.0.1:7946', '[::1]:7946', 'h:1']}\n").unwrap();
    assert_eq!(c.cluster.join.len(), 3);
}

#[test]
fn secrets_are_not_serialized() {
    let c = load(
        "scrape_configs:\n  - job_name: a\n    basic_auth: {username: u, password: hunter2}\n",
    )
    .unwrap();
    let dumped = serde_norway::to_string(&c).unwrap();
    assert!(!dumped.contains("hunter2"), "{dumped}");
    assert!(dumped.contains("<secret>"), "{dumped}");
    assert!(!dumped.contains("remote_write"), "{dumped}");
}

#[test]
fn scrape_config_files_are_merged() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("extra.yml"),
        "scrape_configs:\n  - job_name: extra\n",
    )
    .unwrap();
    let main = dir.path().join("main.yml");
    std::fs::write(
        &main,
        "scrape_config_files: ['*.yml']\nscrape_configs:\n  - job_name: a\n",
    )
    .unwrap();
    // main.yml matches the glob too but holds keys the scrape file shape refuses.
    let e = Config::load(&main).unwrap_err().to_string();
    assert!(e.contains("main.yml") && e.contains("unknown field"), "{e}");
    std::fs::write(
        &main,
        "scrape_config_files: ['extra*.yml']\nscrape_configs:\n  - job_name: a\n",
    )
    .unwrap();
    let c = Config::load(&main).unwrap();
    let jobs: Vec<&str> = c
        .scrape_configs
        .iter()
        .map(|j| j.job_name.as_str())
        .collect();
    assert_eq!(jobs, ["a", "extra"]);
}

#[test]
fn role_round_trips() {
    for r in Role::ALL {
        assert_eq!(r.to_string().parse::<Role>(), Ok(r));
    }
    assert!("chef".parse::<Role>().is_err());
}

#[test]
fn check_report_success_and_failure() {
    let dir = tempfile::tempdir().unwrap();
    let ok = dir.path().join("ok.yml");
    std::fs::write(dir.path().join("r.rules.yml"), "groups: []\n").unwrap();
    std::fs::write(
        &ok,
        "rule_files: ['*.rules.yml']\nscrape_configs:\n  - job_name: a\n",
    )
    .unwrap();
    let report = check_config_report(&ok).unwrap();
    assert!(report.contains("SUCCESS: 1 rule files found"), "{report}");
    assert!(report.contains("scrape configs: 1 (a)"), "{report}");
    assert!(
        !report.contains("WARNING"),
        "rule files are evaluated: {report}"
    );
    let bad = dir.path().join("bad.yml");
    std::fs::write(
        &bad,
        "scrape_configs:\n  - job_name: a\n    scrape_interval: soon\n",
    )
    .unwrap();
    let report = check_config_report(&bad).unwrap_err();
    assert!(
        report.contains("FAILED")
            && report.contains("bad.yml:3:")
            && report.contains("scrape_configs[0].scrape_interval"),
        "{report}"
    );
    let missing = dir.path().join("missing.yml");
    std::fs::write(
        &missing,
        "scrape_configs:\n  - job_name: a\n    bearer_token_file: nope.txt\n",
    )
    .unwrap();
    let report = check_config_report(&missing).unwrap_err();
    assert!(
        report.contains("bearer token file") && report.contains("nope.txt"),
        "{report}"
    );
}

#[test]
fn every_refused_key_is_refused_somewhere() {
    for name in REFUSED_SECTIONS {
        let places = [
            format!("{name}: []\n"),
            format!("scrape_configs:\n  - job_name: a\n    {name}: []\n"),
            format!("alerting:\n  alertmanagers:\n    - {name}: []\n"),
        ];
        let want = format!("{name} is not supported by Strata yet");
        let refused = places
            .iter()
            .any(|text| load(text).is_err_and(|e| e.to_string().contains(&want)));
        assert!(refused, "{name} is never refused by name");
    }
}

/// The shape of the sample `prometheus.yml` Prometheus ships: comments leave `rule_files`
/// and an Alertmanager's `targets` as YAML nulls, which Prometheus reads as empty.
#[test]
fn prometheus_sample_config_with_null_sections_loads() {
    let text = r#"
global:
  scrape_interval:     15s
  evaluation_interval: 15s
  external_labels:
      monitor: 'example'
alerting:
  alertmanagers:
  - static_configs:
    - targets:
      # - alertmanager:9093
rule_files:
  # - "first_rules.yml"
scrape_configs:
  - job_name: 'prometheus'
    scrape_interval: 5s
    scrape_timeout: 5s
    static_configs:
      - targets: ['localhost:9090']
tsdb:
admin:
"#;
    let c = load(text).unwrap();
    assert!(c.rule_files.is_empty());
    assert!(c.alerting.alertmanagers[0].static_configs[0]
        .targets
        .is_empty());
    assert_eq!(c.scrape_configs[0].scrape_timeout.to_string(), "5s");
    assert_eq!(c.tsdb.retention.to_string(), "15d");
}

#[test]
fn role_policy_accepts_numbers_and_all() {
    let c = Config::from_yaml_str(
        "cluster:\n  role_policy: {compactor: 1, query_planner: all}\n",
        "t.yml",
    )
    .unwrap();
    assert_eq!(c.cluster.role_policy.get(&Role::Compactor), Some(&1));
    assert_eq!(
        c.cluster.role_policy.get(&Role::QueryPlanner),
        Some(&usize::MAX)
    );
    let err = Config::from_yaml_str("cluster:\n  role_policy: {compactor: many}\n", "t.yml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("role_policy"), "{err}");
}

#[test]
fn settings_without_effect_yet_are_warned_about() {
    assert!(Config::embedded_default()
        .unimplemented_warnings()
        .is_empty());
    // Prometheus's sample config: an Alertmanager entry without targets, no rule files.
    let sample = "alerting:\n  alertmanagers:\n  - static_configs:\n    - targets:\n\
                  rule_files:\n";
    assert!(load(sample).unwrap().unimplemented_warnings().is_empty());
    let c = load(
        "rule_files: [a.yml, 'rules/*.yml']\n\
         alerting:\n  alertmanagers:\n  - static_configs:\n    - targets: ['am:9093']\n\
         \x20 - file_sd_configs:\n    - files: [am.json]\n\
         global:\n  query_log_file: q.log\n",
    )
    .unwrap();
    assert_eq!(
        c.unimplemented_warnings(),
        ["global.query_log_file: set to \"q.log\", but Strata does not write a query log yet"]
    );
}

#[test]
fn check_report_prints_warnings_last_and_still_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("am.yml");
    std::fs::write(
        &file,
        "alerting:\n  alertmanagers:\n  - static_configs:\n    - targets: ['am:9093']\n\
         global:\n  query_log_file: q.log\n",
    )
    .unwrap();
    let report = check_config_report(&file).unwrap();
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(lines[1], "  SUCCESS: 0 rule files found");
    assert!(
        lines[lines.len() - 2].starts_with("  tsdb: retention "),
        "{report}"
    );
    assert_eq!(
        lines[lines.len() - 1],
        "  WARNING: global.query_log_file: set to \"q.log\", but Strata does not write a query \
         log yet"
    );
    let plain = dir.path().join("plain.yml");
    std::fs::write(&plain, "scrape_configs: []\n").unwrap();
    let report = check_config_report(&plain).unwrap();
    assert!(!report.contains("WARNING"), "{report}");
    assert!(report.ends_with("block duration 2h"), "{report}");
}
