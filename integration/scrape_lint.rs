//! Naming lint where metrics enter: a node scraping a target whose exposition breaks naming
//! rules lists the problems on that target in `/api/v1/targets` (an extra `lintProblems` field,
//! with `promtool check metrics`'s wording for the promtool checks — compared with promtool
//! itself on the same body) and counts them in `strata_target_lint_problems{job,check}`.

use std::collections::BTreeSet;
use std::time::Duration;

use strata_testing::api::{target_with_url, targets};
use strata_testing::targets::BodyServer;
use strata_testing::{require_binary, wait_until, TestNode};

const BODY: &str = "# HELP http_requests Requests.\n\
# TYPE http_requests counter\n\
http_requests{code=\"200\"} 10\n\
# TYPE queueDepth gauge\n\
queueDepth 3\n\
# HELP request_latency_milliseconds Latency.\n\
# TYPE request_latency_milliseconds gauge\n\
request_latency_milliseconds 12\n\
# HELP app_ok_total Fine.\n\
# TYPE app_ok_total counter\n\
app_ok_total 1\n";

#[actix_rt::test]
async fn lint_problems_show_on_the_target_and_in_the_metric() {
    let target = BodyServer::start().await;
    target.set("/metrics", "text/plain; version=0.0.4", BODY);
    let node = TestNode::builder()
        .roles(&["scraper_shipper", "query_planner"])
        .yaml(&format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: app\n    static_configs:\n      - targets: ['{}']\n",
            target.addr
        ))
        .start()
        .await;
    let suffix = format!("{}/metrics", target.addr);
    wait_until(
        "the target is scraped and linted",
        Duration::from_secs(30),
        || async {
            let t = targets(&node.base).await;
            target_with_url(&t, &suffix).is_some_and(|t| t["lintProblems"].is_array())
        },
    )
    .await;
    let t = targets(&node.base).await;
    let active = target_with_url(&t, &suffix).unwrap();
    assert_eq!(active["health"], "up");
    let ours: BTreeSet<String> = active["lintProblems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{} {}",
                p["metric"].as_str().unwrap(),
                p["text"].as_str().unwrap()
            )
        })
        .collect();
    let want: BTreeSet<String> =
        crate::lint_vs_promtool::promtool_lines(&require_binary("promtool"), BODY)
            .into_iter()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect();
    assert!(!want.is_empty(), "promtool found the problems");
    assert_eq!(ours, want, "the same problems as promtool check metrics");
    assert!(ours.iter().all(|l| !l.starts_with("app_ok_total")));

    let metrics = node.metrics().await;
    assert!(
        metrics.contains("strata_target_lint_problems{job=\"app\",check=\"no_help\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("strata_target_lint_problems{job=\"app\",check=\"camel_case\"} 1"),
        "{metrics}"
    );
    node.handle.stop().await;
}
