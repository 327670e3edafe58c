//! Differential test of `scrape::relabel` against a real Prometheus 2.42 server: one job per
//! rule list, all on one static target with some labels. Prometheus reports each target's
//! discovered labels and either its final labels (kept) or nothing (dropped); applying the
//! same rules to the same discovered labels with Strata must give the same answer.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::time::Duration;

use strata::config::RelabelConfig;
use strata::scrape::relabel::process;
use strata::storage::model::Labels;
use strata_testing::http::get_json;
use strata_testing::{Prometheus, Wait};

/// Flow-style YAML rule lists, one job each.
const CASES: &[&str] = &[
    "[{source_labels: [env], regex: '(P)(.*)', target_label: env2, replacement: '${2}-$1'}]",
    "[{source_labels: [env], regex: '(P)(.*)', target_label: x, replacement: 'a$1x$$b'}]",
    "[{source_labels: [env], regex: '(?P<first>.)(.*)', target_label: 'l_${first}', replacement: '${first}${2}'}]",
    "[{source_labels: [num], regex: '(.*)', target_label: '${1}bad', replacement: v}]",
    "[{source_labels: [missing], target_label: fixed, replacement: literal}]",
    "[{source_labels: [missing], regex: '', target_label: team, replacement: ''}]",
    "[{source_labels: [env], regex: 'nomatch', target_label: env, replacement: changed}]",
    "[{source_labels: [env, team], separator: '|', regex: 'Prod\\|a', action: keep}]",
    "[{source_labels: [env, team], regex: 'Prod;a', action: drop}]",
    "[{source_labels: [team], regex: 'b', action: keep}]",
    "[{source_labels: [foo_a], target_label: one, action: keepequal}]",
    "[{source_labels: [foo_a], target_label: foo_b, action: keepequal}]",
    "[{source_labels: [foo_a], target_label: one, action: dropequal}]",
    "[{source_labels: [__address__], target_label: shard, modulus: 4, action: hashmod}]",
    "[{source_labels: [env, team, num], target_label: shard, modulus: 1000, action: hashmod}]",
    "[{source_labels: [missing], target_label: shard, modulus: 7, action: hashmod}]",
    "[{action: labelmap, regex: 'foo_(.+)', replacement: 'bar_${1}'}]",
    "[{action: labelmap, regex: 'foo_(.+)'}]",
    "[{action: labeldrop, regex: 'foo_.*'}]",
    "[{action: labelkeep, regex: '__.*|job|foo_a'}]",
    "[{source_labels: [env, unicode], target_label: low, action: lowercase}]",
    "[{source_labels: [env, unicode], target_label: up, action: uppercase}]",
    "[{source_labels: [env], regex: 'prod', action: keep}]",
    "[{source_labels: [__address__], regex: '(.*):1', target_label: __address__, replacement: '${1}:2'}, {source_labels: [__address__], target_label: instance}]",
    "[{source_labels: [env], target_label: env, replacement: ''}]",
    "[{regex: 'foo_.*|num|unicode', action: labeldrop}, {action: labelmap, regex: '(e.*)', replacement: 'x_$1'}]",
    "[{source_labels: [unicode], regex: '(.)(.*)', target_label: first, replacement: '$1'}]",
    "[{source_labels: [foo_a, foo_b], separator: '', regex: '(\\d)(\\d)', target_label: swapped, replacement: '$2$1'}]",
];

const TARGET_LABELS: &str =
    "{env: Prod, team: a, foo_a: '1', foo_b: '2', one: '1', num: '42', unicode: 'ÄÖü Straße'}";

/// Prometheus's final-label step after relabeling: no `__` labels, `instance` defaults to
/// `__address__`, a target without `__address__` is dropped.
fn finish(labels: Labels) -> Option<BTreeMap<String, String>> {
    let address = labels.get("__address__")?.to_string();
    let mut out: BTreeMap<String, String> = labels
        .iter()
        .filter(|l| !l.name.starts_with("__"))
        .map(|l| (l.name.to_string(), l.value.to_string()))
        .collect();
    out.entry("instance".into()).or_insert(address);
    Some(out)
}

/// The labels Prometheus 2.42 gives a static target before relabeling. (The targets API's
/// `discoveredLabels` cannot be used as input: 2.42 reports them after relabeling rewrote
/// them in place.)
fn discovered(case: usize) -> Labels {
    let mut pairs: Vec<(String, String)> = vec![
        ("__address__".into(), "127.0.0.1:1".into()),
        ("__metrics_path__".into(), "/metrics".into()),
        ("__scheme__".into(), "http".into()),
        ("__scrape_interval__".into(), "1h".into()),
        ("__scrape_timeout__".into(), "10s".into()),
        ("job".into(), format!("case{case}")),
    ];
    let extra: BTreeMap<String, String> = serde_norway::from_str(TARGET_LABELS).unwrap();
    pairs.extend(extra);
    Labels::from_pairs(pairs)
}

fn as_map(v: &serde_json::Value) -> BTreeMap<String, String> {
    serde_json::from_value(v.clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relabeling_agrees_with_a_prometheus_2_42_server() {
    let mut yml =
        String::from("global: {scrape_interval: 1h, scrape_timeout: 10s}\nscrape_configs:\n");
    for (i, rules) in CASES.iter().enumerate() {
        yml.push_str(&format!(
            "  - job_name: case{i}\n    static_configs: [{{targets: ['127.0.0.1:1'], labels: {TARGET_LABELS}}}]\n    relabel_configs: {rules}\n"
        ));
    }
    let server = Prometheus::start(&yml).await;

    // job -> (discovered labels, Some(final labels) when kept)
    type Seen = BTreeMap<String, (BTreeMap<String, String>, Option<BTreeMap<String, String>>)>;
    let targets_url = format!("{}/api/v1/targets", server.base);
    let seen: Seen = Wait::new("Prometheus to report every target", Duration::from_secs(30))
        .poll(Duration::from_millis(250))
        .until_some(|| async {
            let v = get_json(&targets_url).await?;
            let mut seen = Seen::new();
            for t in v["data"]["activeTargets"].as_array().into_iter().flatten() {
                let discovered = as_map(&t["discoveredLabels"]);
                let job = discovered.get("job").cloned().unwrap_or_default();
                seen.insert(job, (discovered, Some(as_map(&t["labels"]))));
            }
            for t in v["data"]["droppedTargets"].as_array().into_iter().flatten() {
                let discovered = as_map(&t["discoveredLabels"]);
                let job = discovered.get("job").cloned().unwrap_or_default();
                seen.insert(job, (discovered, None));
            }
            (seen.len() == CASES.len()).then_some(seen)
        })
        .await
        .unwrap_or_else(|e| panic!("{e}; Prometheus's log:\n{}", server.log_tail()));

    let mut disagreements = Vec::new();
    for (i, rules) in CASES.iter().enumerate() {
        let (_, prom) = &seen[&format!("case{i}")];
        let cfgs: Vec<RelabelConfig> = serde_norway::from_str(rules).unwrap();
        let input = discovered(i);
        let mine = process(&input, &cfgs).and_then(finish);
        if &mine != prom {
            disagreements.push(format!(
                "{rules}\n  prometheus {prom:?}\n  strata     {mine:?}"
            ));
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} disagreements:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
}
