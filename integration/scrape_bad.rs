//! Bad exposition bodies: malformed lines, duplicate label names, duplicate series, NaN/Inf
//! values, invalid UTF-8 and a 100 MB body are served to a Strata node and to Debian's
//! Prometheus 2.42 with the same config. Each target's health must match Prometheus's, a down
//! target must carry a clear lastError, the good target stays up and the node stays up.

use std::time::Duration;

use strata_testing::api::{target_with_url, targets};
use strata_testing::targets::BodyServer;
use strata_testing::{Prometheus, TestNode, Wait};

const TEXT: &str = "text/plain; version=0.0.4";

/// (path, body, what Strata's lastError must mention when the target is down).
fn cases() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    vec![
        (
            "/good",
            b"# TYPE ok_total counter\nok_total{a=\"1\"} 5\n".to_vec(),
            "",
        ),
        (
            "/malformed",
            b"ok 1\nthis is { not valid\n".to_vec(),
            "line 2",
        ),
        ("/badvalue", b"m 1.2.3\n".to_vec(), "line 1"),
        (
            "/duplabel",
            b"m{a=\"1\",a=\"2\"} 1\n".to_vec(),
            "duplicate label",
        ),
        ("/dupseries", b"m{a=\"1\"} 1\nm{a=\"1\"} 2\n".to_vec(), ""),
        (
            "/naninf",
            b"m_nan NaN\nm_inf +Inf\nm_ninf -Inf\n".to_vec(),
            "",
        ),
        ("/utf8", b"m{a=\"\xff\xfe\"} 1\n".to_vec(), "UTF-8"),
        ("/huge", Vec::new(), "body size limit"),
    ]
}

fn config(addr: &str) -> String {
    let mut y = String::from(
        "scrape_configs:\n  - job_name: bad\n    scrape_interval: 1s\n    scrape_timeout: 1s\n    body_size_limit: 10MB\n    static_configs:\n",
    );
    for (path, _, _) in cases() {
        y.push_str(&format!("      - targets: ['{addr}']\n        labels: {{__metrics_path__: '{path}', instance: '{}'}}\n", &path[1..]));
    }
    y
}

#[actix_rt::test]
async fn bad_bodies_mark_only_their_target_down_like_prometheus() {
    let server = BodyServer::start().await;
    for (path, body, _) in cases() {
        if path == "/huge" {
            server.set_huge(path, 100 * 1024 * 1024);
        } else {
            server.set(path, TEXT, body);
        }
    }
    let yaml = config(&server.addr.to_string());
    let prom = Prometheus::start(&yaml).await;
    let node = TestNode::builder().yaml(&yaml).start().await;

    let all_scraped = |base: &str| {
        let base = base.to_string();
        async move {
            let t = targets(&base).await;
            let active = t["data"]["activeTargets"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            active.len() == cases().len() && active.iter().all(|a| a["health"] != "unknown")
        }
    };
    for (who, base) in [("strata", &node.base), ("prometheus", &prom.base)] {
        let scraped = Wait::new(
            format!("{who} to scrape every target"),
            Duration::from_secs(30),
        )
        .until(|| all_scraped(base))
        .await;
        if let Err(e) = scraped {
            panic!("{e}; {who} targets: {}", targets(base).await);
        }
    }

    let ours = targets(&node.base).await;
    let theirs = targets(&prom.base).await;
    for (path, _, why) in cases() {
        let a =
            target_with_url(&ours, path).unwrap_or_else(|| panic!("strata lacks {path}: {ours}"));
        let b = target_with_url(&theirs, path)
            .unwrap_or_else(|| panic!("prometheus lacks {path}: {theirs}"));
        assert_eq!(
            a["health"], b["health"],
            "{path}: strata {a} vs prometheus {b}"
        );
        if a["health"] == "down" {
            let err = a["lastError"].as_str().unwrap_or("");
            assert!(
                err.contains(why),
                "{path}: lastError {err:?} does not mention {why:?}"
            );
        } else {
            assert_eq!(a["lastError"], "", "{path}");
        }
    }
    assert_eq!(
        target_with_url(&ours, "/good").map(|t| t["health"].clone()),
        Some("up".into())
    );
    assert_eq!(
        target_with_url(&ours, "/huge").map(|t| t["health"].clone()),
        Some("down".into())
    );
    assert_eq!(node.status("/-/healthy").await, 200);
    node.handle.stop().await;
}
