//! The web UI's cluster and bucket pages in a real Chromium (`browser.rs`): `/cluster` on a
//! three-node cluster moves a role through the admin API, `/blocks` draws the bucket's blocks
//! and marks one; and the time to the first graph of a 1,000-series range query (a figure for
//! the report, not an assertion).

use std::time::Duration;

use fantoccini::Locator;
use serde_json::Value;
use strata_testing::targets::BodyServer;
use strata_testing::{http_client, wait_until, TestNode};

use crate::browser::Browser;

/// `/cluster` on a three-node cluster lists every member, and ticking a role in the matrix
/// moves it: `GET /api/v1/admin/cluster` shows the new assignment.
#[actix_rt::test]
async fn web_ui_cluster_page_moves_a_role() {
    let browser = Browser::start().await;
    let bucket = strata_testing::temp_dir();
    let a = TestNode::builder()
        .id("ui-a")
        .filesystem_bucket(bucket.path())
        .start()
        .await;
    let b = TestNode::builder()
        .id("ui-b")
        .roles(&["scraper_shipper", "query_planner"])
        .filesystem_bucket(bucket.path())
        .join(a.gossip_addr())
        .start()
        .await;
    let c = TestNode::builder()
        .id("ui-c")
        .roles(&["store_shard", "query_planner"])
        .filesystem_bucket(bucket.path())
        .join(a.gossip_addr())
        .start()
        .await;
    wait_until("three live members", Duration::from_secs(20), || async {
        let v = a.get_json("/api/v1/admin/cluster").await;
        v["data"]["members"]
            .as_array()
            .is_some_and(|m| m.len() == 3 && m.iter().all(|x| x["state"] == "alive"))
    })
    .await;

    browser.open(&format!("{}/cluster", a.base)).await;
    browser
        .wait_js(
            "three members listed",
            "return document.querySelectorAll('[data-testid=member]').length === 3",
        )
        .await;
    browser
        .wait_js(
            "a health card per node",
            "return document.querySelectorAll('[data-testid=node-card]').length === 3",
        )
        .await;
    let cards = browser
        .js("return document.querySelector('[data-testid=node-cards]').innerText")
        .await;
    for id in ["ui-a", "ui-b", "ui-c"] {
        assert!(cards.as_str().unwrap_or_default().contains(id), "{cards}");
    }
    browser.assert_clean("cluster").await;
    browser.screenshot("cluster-three-nodes").await;

    // ui-b has no compactor role; tick it in the matrix.
    browser
        .click("[data-testid=role-ui-b-compactor]", "tick it")
        .await;
    wait_until(
        "the admin API to show compactor on ui-b",
        Duration::from_secs(20),
        || async {
            let v = c.get_json("/api/v1/admin/cluster").await;
            v["data"]["assignments"]["ui-b"]["roles"]
                .as_array()
                .is_some_and(|r| r.iter().any(|x| x == "compactor"))
        },
    )
    .await;
    browser
        .wait_js(
            "the matrix to show ui-b's compactor running",
            "const row = document.querySelector('[data-testid=roles-ui-b]');
             const cell = document.querySelector('[data-testid=cell-ui-b-compactor]');
             return !!row && !!cell && cell.dataset.running === '1' && row.innerText.includes('RECONCILED')
               && document.querySelector('[data-testid=role-ui-b-compactor]').checked;",
        )
        .await;
    browser.assert_clean("cluster (after the move)").await;
    browser.screenshot("cluster-role-moved").await;
    drop((b, c));
    browser.close().await;
}

/// Budget figure, not an assertion: the time from opening a `/graph` link of a range query
/// over 1,000 series to the drawn graph, printed for the report.
#[actix_rt::test]
async fn web_ui_time_to_first_graph_of_1000_series() {
    let browser = Browser::start().await;
    let target = BodyServer::start().await;
    let mut body = String::from("# TYPE uibench_value gauge\n");
    for i in 0..1000 {
        body.push_str(&format!("uibench_value{{series=\"s{i:04}\"}} {}\n", i % 97));
    }
    target.set("/metrics", "text/plain; version=0.0.4", body);
    let yaml = format!(
        "global: {{scrape_interval: 1s}}\nscrape_configs:\n- job_name: bench\n  static_configs: [{{targets: [\"{}\"]}}]\n",
        target.addr
    );
    let node = TestNode::builder().yaml(&yaml).start().await;
    let probe = format!("{}/api/v1/query?query=count(uibench_value)", node.base);
    wait_until("1000 series scraped", Duration::from_secs(30), || async {
        let Ok(r) = http_client().get(&probe).send().await else {
            return false;
        };
        let v: Value = r.json().await.unwrap_or_default();
        v["data"]["result"][0]["value"][1] == "1000"
    })
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await; // a few samples per series
    let url = format!(
        "{}/graph?g0.expr=uibench_value&g0.tab=0&g0.range_input=1m",
        node.base
    );
    browser.open(&url).await;
    browser
        .wait_js(
            "the 1000-series graph",
            "return !!document.querySelector('[data-testid=panel-0] [data-testid=graph] canvas')",
        )
        .await;
    let ms = browser
        .js("return document.querySelector('[data-testid=panel-0]').dataset.drawnMs")
        .await;
    let stats = browser
        .js("return document.querySelector('[data-testid=panel-0] [data-testid=stats]').innerText")
        .await;
    eprintln!("time to first graph of 1000 series: {ms} ms after navigation start ({stats})");
    browser.assert_clean("1000-series graph").await;
    browser.screenshot("query-graph-1000-series").await;
    browser.close().await;
}

/// A block directory in a filesystem bucket: meta.json (with Thanos's section), a small index
/// and one chunk segment. The block's content is not valid TSDB data; the listing does not
/// read it.
fn block_in_bucket(
    bucket: &std::path::Path,
    min_time: i64,
    hours: i64,
    level: u32,
    resolution: i64,
    replica: &str,
) -> String {
    use strata::storage::block::{BlockMeta, ThanosMeta};
    let ulid = ulid::Ulid::new();
    let dir = bucket.join(ulid.to_string());
    std::fs::create_dir_all(dir.join("chunks")).unwrap();
    std::fs::write(dir.join("index"), vec![0u8; 1024]).unwrap();
    std::fs::write(dir.join("chunks/000001"), vec![0u8; 4096]).unwrap();
    let mut meta = BlockMeta::new(ulid, min_time, min_time + hours * 3_600_000);
    meta.compaction.level = level;
    let labels = [("cluster", "eu1"), ("replica", replica)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    meta.thanos = Some(ThanosMeta::new(labels, resolution, "sidecar"));
    meta.write(&dir).unwrap();
    ulid.to_string()
}

/// `/blocks` shows the blocks in the bucket on its timeline, and their details on a click.
#[actix_rt::test]
async fn web_ui_blocks_page_shows_the_bucket() {
    let browser = Browser::start().await;
    let bucket = strata_testing::temp_dir();
    let day = 86_400_000;
    let start = (strata_testing::now_ms() / day - 3) * day;
    let mut ulids = Vec::new();
    for (i, level) in [1u32, 1, 2, 3].into_iter().enumerate() {
        let hours = [2, 2, 8, 48][i];
        let offset = [0, 2, 4, 12][i] * 3_600_000;
        ulids.push(block_in_bucket(
            bucket.path(),
            start + offset,
            hours,
            level,
            0,
            "r1",
        ));
    }
    ulids.push(block_in_bucket(bucket.path(), start, 48, 3, 300_000, "r1"));
    ulids.push(block_in_bucket(bucket.path(), start, 2, 1, 0, "r2"));
    let node = TestNode::builder()
        .filesystem_bucket(bucket.path())
        .start()
        .await;
    let api = node.get_json("/api/v1/blocks").await;
    let listed = api["data"]["blocks"].as_array().map_or(0, |b| b.len());
    assert_eq!(listed, ulids.len(), "{api}");

    browser.open(&format!("{}/blocks", node.base)).await;
    browser
        .wait_js(
            "every block on the timeline",
            &format!(
                "return document.querySelectorAll('[data-testid=block]').length === {}",
                ulids.len()
            ),
        )
        .await;
    browser
        .click(&format!("[data-ulid='{}']", ulids[2]), "click it")
        .await;
    browser
        .wait_js(
            "the block's details",
            &format!(
                "const d = document.querySelector('[data-testid=block-details]');
                 return !!d && d.innerText.includes('{}');",
                ulids[2]
            ),
        )
        .await;
    // Marking it no-compact from its details writes the mark into the bucket.
    browser
        .click("[data-testid=mark-no-compaction]", "mark it")
        .await;
    browser
        .wait_js(
            "the details to show the mark",
            "const d = document.querySelector('[data-testid=block-details]');
             return !!d && d.innerText.includes('no-compact');",
        )
        .await;
    assert!(
        bucket
            .path()
            .join(&ulids[2])
            .join("no-compact-mark.json")
            .exists(),
        "the mark is in the bucket"
    );
    browser.assert_clean("blocks").await;
    browser.screenshot("blocks-with-bucket").await;
    browser.close().await;
}

/// With `admin.token_file`, `/cluster` shows the API's own refusal and a token form; the
/// token entered there (kept in sessionStorage) opens the page.
#[actix_rt::test]
async fn web_ui_cluster_page_asks_for_the_admin_token() {
    let browser = Browser::start().await;
    let node = TestNode::builder().admin_token().start().await;
    browser.open(&format!("{}/cluster", node.base)).await;
    browser
        .wait_js(
            "the API's refusal",
            "const e = document.querySelector('[data-testid=error]');
             return !!e && e.innerText.includes('admin API requires a bearer token');",
        )
        .await;
    let token_box = browser
        .client
        .find(Locator::Css("[data-testid=admin-token]"))
        .await
        .expect("the token input");
    token_box
        .send_keys(&format!("{}\u{E007}", strata_testing::ADMIN_TOKEN))
        .await
        .expect("type the token");
    browser
        .wait_js(
            "the members once the token is set",
            "return document.querySelectorAll('[data-testid=member]').length === 1",
        )
        .await;
    let kept = browser
        .js("return sessionStorage.getItem('strata.adminToken')")
        .await;
    assert_eq!(kept, Value::String(strata_testing::ADMIN_TOKEN.into()));
    browser.screenshot("cluster-after-token").await;
    browser.close().await;
}

/// `/targets` with a long list: 125 unreachable targets (each down with its error) and one
/// whose exposition breaks naming rules. The page shows 100 rows and a pager, the next page
/// the rest, and the naming problems open on the linted target's row.
#[actix_rt::test]
async fn web_ui_targets_page_pages_a_long_list_and_shows_naming_problems() {
    let browser = Browser::start().await;
    let target = BodyServer::start().await;
    target.set(
        "/metrics",
        "text/plain; version=0.0.4",
        "# TYPE queueDepth gauge\nqueueDepth 3\n",
    );
    let unreachable: Vec<String> = (1..=125).map(|p| format!("\"127.0.0.1:{p}\"")).collect();
    let node = TestNode::builder()
        .roles(&["scraper_shipper", "query_planner"])
        .yaml(&format!(
            "global: {{scrape_interval: 1s}}\nscrape_configs:\n\
             - job_name: lint\n  static_configs: [{{targets: [\"{}\"]}}]\n\
             - job_name: gone\n  static_configs: [{{targets: [{}]}}]\n",
            target.addr,
            unreachable.join(", ")
        ))
        .start()
        .await;
    wait_until(
        "every target scraped once and the lint target linted",
        Duration::from_secs(30),
        || async {
            let v = node.get_json("/api/v1/targets").await;
            let active = v["data"]["activeTargets"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            active.len() == 126
                && active.iter().all(|t| t["health"] != "unknown")
                && active.iter().any(|t| t["lintProblems"].is_array())
        },
    )
    .await;

    browser.open(&format!("{}/targets", node.base)).await;
    browser
        .wait_js(
            "the first page of targets",
            "return document.querySelectorAll('[data-testid=target]').length === 100",
        )
        .await;
    let pager = browser
        .js("return document.querySelector('[data-testid=pager]').innerText")
        .await;
    assert!(
        pager
            .as_str()
            .unwrap_or_default()
            .contains("page 1 of 2 (126 items)"),
        "{pager}"
    );
    // Which page the linted target lands on depends on the order; look on both.
    browser.screenshot("targets-long-list").await;
    browser
        .client
        .find(Locator::XPath("//div[@data-testid='pager']/button[2]"))
        .await
        .expect("the next-page button")
        .click()
        .await
        .expect("next page");
    browser
        .wait_js(
            "the second page of targets",
            "return document.querySelectorAll('[data-testid=target]').length === 26",
        )
        .await;
    let lint = browser
        .js("const d = document.querySelector('[data-testid=lint]'); if (!d) return null; d.open = true; return d.innerText")
        .await;
    let lint = match lint {
        Value::String(s) => s,
        _ => {
            // On the first page, then.
            browser
                .click("[data-testid=pager] button", "previous page")
                .await;
            browser
                .wait_js(
                    "the first page again",
                    "return document.querySelectorAll('[data-testid=target]').length === 100",
                )
                .await;
            browser
                .js("const d = document.querySelector('[data-testid=lint]'); d.open = true; return d.innerText")
                .await
                .as_str()
                .unwrap_or_default()
                .to_string()
        }
    };
    assert!(
        lint.contains("queueDepth metric names should be written in 'snake_case' not 'camelCase'")
            && lint.contains("queueDepth no help text"),
        "{lint}"
    );
    browser.assert_clean("targets (long list)").await;
    browser.screenshot("targets-naming-problems").await;
    browser.close().await;
    node.handle.stop().await;
}
