//! Every example in `configs/` loads and validates as a Strata config, and its Prometheus
//! part (the file with Strata's own sections removed) passes Prometheus 2.42's
//! `promtool check config`. Files under `configs/files/` are what the examples reference.

use std::path::{Path, PathBuf};
use std::process::Command;

use strata::config::{check_config_report, Config};

const STRATA_ONLY: [&str; 10] = [
    "node",
    "cluster",
    "bucket",
    "tsdb",
    "admin",
    "compactor",
    "query",
    "ruler",
    "web",
    "sidecar",
];

fn configs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("configs")
}

fn example_files() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(configs_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.is_file() && matches!(p.extension().and_then(|e| e.to_str()), Some("yml" | "yaml"))
        })
        .collect();
    out.sort();
    out
}

#[test]
fn every_example_loads_and_validates() {
    let files = example_files();
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for want in [
        "single-node.yml",
        "cluster-node1.yml",
        "cluster-node2.yml",
        "cluster-node3.yml",
        "s3.yml",
        "prometheus-compatible.yml",
    ] {
        assert!(names.iter().any(|n| n == want), "configs/{want} missing");
    }
    for f in &files {
        let c = Config::load(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        c.validate().unwrap();
        let report = check_config_report(f).unwrap_or_else(|e| panic!("{e}"));
        assert!(report.contains("SUCCESS"), "{report}");
    }
}

#[test]
fn cluster_examples_form_one_cluster() {
    let nodes: Vec<Config> = (1..=3)
        .map(|i| Config::load(configs_dir().join(format!("cluster-node{i}.yml"))).unwrap())
        .collect();
    let mut ids: Vec<&str> = nodes.iter().map(|c| c.node.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3);
    let gossip: Vec<String> = nodes
        .iter()
        .map(|c| c.node.gossip_listen.to_string())
        .collect();
    let mut ports = Vec::new();
    for c in &nodes {
        ports.extend([
            c.node.web_listen.port(),
            c.node.gossip_listen.port(),
            c.node.rpc_listen.port(),
        ]);
        // Each node's seeds are exactly the other nodes' gossip addresses.
        let mut others: Vec<String> = gossip
            .iter()
            .filter(|g| **g != c.node.gossip_listen.to_string())
            .cloned()
            .collect();
        let mut join = c.cluster.join.clone();
        others.sort();
        join.sort();
        assert_eq!(join, others, "{}", c.node.id);
    }
    let n = ports.len();
    ports.sort();
    ports.dedup();
    assert_eq!(ports.len(), n, "ports must be distinct");
}

/// The example as Prometheus sees it: Strata's own top-level sections removed.
fn prometheus_part(text: &str) -> String {
    let mut value: serde_norway::Value = serde_norway::from_str(text).unwrap();
    if let Some(map) = value.as_mapping_mut() {
        for key in STRATA_ONLY {
            map.remove(key);
        }
    }
    serde_norway::to_string(&value).unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let dest = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &dest);
        } else {
            std::fs::copy(&path, &dest).unwrap();
        }
    }
}

#[test]
fn promtool_accepts_the_prometheus_part_of_every_example() {
    let promtool = Path::new("/usr/bin/promtool");
    assert!(
        promtool.exists(),
        "promtool not found at /usr/bin/promtool: install Debian's `prometheus` package (apt-get install prometheus)"
    );
    // A copy of the whole directory keeps the relative paths (rule files, file_sd, secrets).
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&configs_dir(), dir.path());
    for f in example_files() {
        let name = f.file_name().unwrap();
        let text = std::fs::read_to_string(&f).unwrap();
        let stripped = dir.path().join(name);
        std::fs::write(&stripped, prometheus_part(&text)).unwrap();
        let out = Command::new(promtool)
            .arg("check")
            .arg("config")
            .arg(&stripped)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool refused the Prometheus part of {}:\n{}{}",
            f.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn promtool_and_strata_agree_on_refusals() {
    // Cases both must refuse, so Strata never accepts what Prometheus would not.
    let promtool = Path::new("/usr/bin/promtool");
    assert!(promtool.exists(), "promtool not found at /usr/bin/promtool");
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        "scrape_configs:\n  - job_name: a\n  - job_name: a\n",
        "scrape_configs:\n  - job_name: a\n    scrape_interval: 5s\n    scrape_timeout: 6s\n",
        "global: {scrape_interval: 1x}\n",
        "scrape_configs:\n  - job_name: a\n    relabel_configs: [{action: hashmod, target_label: x}]\n",
        "scrape_configs:\n  - job_name: a\n    relabel_configs: [{action: replace}]\n",
        "scrape_configs:\n  - job_name: a\n    relabel_configs: [{action: keepequal, target_label: x, regex: a}]\n",
        "scrape_configs:\n  - job_name: a\n    static_configs: [{targets: ['http://h:1']}]\n",
        "scrape_configs:\n  - job_name: a\n    bearer_token: x\n    bearer_token_file: y\n",
        "scrape_configs:\n  - job_name: a\n    file_sd_configs: [{files: ['x.txt']}]\n",
        "scrape_configs:\n  - job_name: a\n    unknown_key: 1\n",
        "rule_files: ['a/*/b.yml']\n",
    ];
    for (i, text) in cases.iter().enumerate() {
        let path = dir.path().join(format!("case{i}.yml"));
        std::fs::write(&path, text).unwrap();
        assert!(Config::load(&path).is_err(), "strata accepted:\n{text}");
        let out = Command::new(promtool)
            .arg("check")
            .arg("config")
            .arg(&path)
            .output()
            .unwrap();
        assert!(!out.status.success(), "promtool accepted:\n{text}");
    }
}

#[test]
fn check_config_checks_the_rule_files_it_names() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("good.rules.yml"),
        "groups:\n- name: g\n  rules:\n  - record: a:b\n    expr: up\n",
    )
    .unwrap();
    let cfg = dir.path().join("strata.yml");
    std::fs::write(&cfg, "rule_files: ['*.rules.yml']\n").unwrap();
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_strata"))
            .args(["check", "config"])
            .arg(&cfg)
            .output()
            .unwrap()
    };
    let out = run();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("good.rules.yml") && stdout.contains("SUCCESS: 1 rules found"),
        "{stdout}"
    );

    std::fs::write(
        dir.path().join("bad.rules.yml"),
        "groups:\n- name: g\n  rules:\n  - record: x\n    expr: sum(\n",
    )
    .unwrap();
    let out = run();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("bad.rules.yml") && stderr.contains("could not parse expression"),
        "{stderr}"
    );
}
