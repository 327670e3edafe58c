//! The web UI in a real headless Chromium (Debian's `chromium` + `chromium-driver`, driven over
//! WebDriver with fantoccini) against a node booted by the test that scrapes a small target:
//! every page loads with no JavaScript error and no failed request, at `/` and below
//! `web.route_prefix: /strata`; a query typed in the editor and run with Enter lists its series
//! in the table; the graph draws coloured pixels; completion offers a metric name after its
//! first letters; a `/graph?g0.expr=...&g0.tab=1` link opens with that query's table.
//! Screenshots of every page (1280×800) go to `<target dir>/ui-screenshots/`. The browser
//! is `browser.rs`; the cluster and bucket pages are tested in `web_ui_admin.rs`.

use std::time::Duration;

use fantoccini::actions::{InputSource, MouseActions, PointerAction, MOUSE_BUTTON_LEFT};
use fantoccini::Locator;
use serde_json::{json, Value};
use strata_testing::targets::BodyServer;
use strata_testing::{http_client, wait_until, TestNode};

use crate::browser::Browser;

/// Every page the UI serves (as `main.js` routes them).
const PAGES: &[&str] = &[
    "query",
    "graph",
    "alerts",
    "rules",
    "targets",
    "service-discovery",
    "status",
    "tsdb-status",
    "flags",
    "config",
    "stores",
    "blocks",
    "cluster",
    "cardinality",
    "unused",
];

const EXPOSITION: &str = "\
# HELP uidemo_temperature_celsius Temperature of a room.
# TYPE uidemo_temperature_celsius gauge
uidemo_temperature_celsius{room=\"kitchen\"} 21.5
uidemo_temperature_celsius{room=\"hall\"} 18.25
uidemo_temperature_celsius{room=\"attic\"} 26
# HELP uidemo_requests_total Requests served.
# TYPE uidemo_requests_total counter
uidemo_requests_total{code=\"200\"} 1027
uidemo_requests_total{code=\"500\"} 3
";

const RULES: &str = "\
groups:
- name: rooms
  rules:
  - record: room:uidemo_temperature_celsius:max
    expr: max(uidemo_temperature_celsius)
  - alert: RoomTooWarm
    expr: uidemo_temperature_celsius > 25
    labels: {severity: warning}
    annotations: {summary: 'The {{ $labels.room }} is {{ $value }}°C'}
  - alert: RoomFreezing
    expr: uidemo_temperature_celsius < 5
    for: 10m
";

/// A node (all roles) scraping a target that serves `EXPOSITION` and one that answers 404,
/// every second, below `prefix` ("" or "/strata"); returns once `uidemo_*` has ten seconds
/// of samples (so a graph of the last minute has lines, not lone points).
async fn start_node(prefix: &str) -> (TestNode, BodyServer, String) {
    let target = BodyServer::start().await;
    target.set("/metrics", "text/plain; version=0.0.4", EXPOSITION);
    let rules_dir = strata_testing::temp_dir();
    let rules = rules_dir.path().join("rules.yml");
    std::fs::write(&rules, RULES).expect("write rules");
    let mut yaml = format!(
        "global: {{scrape_interval: 1s, evaluation_interval: 1s, external_labels: {{cluster: ui-test}}}}\n\
         rule_files: [\"{rules}\"]\n\
         scrape_configs:\n\
         - job_name: demo\n  static_configs: [{{targets: [\"{a}\"]}}]\n\
         - job_name: broken\n  metrics_path: /missing\n  static_configs: [{{targets: [\"{a}\"]}}]\n",
        a = target.addr,
        rules = rules.display()
    );
    // The rule evaluator (re)reads the file while the node runs: keep it (the OS cleans temp).
    std::mem::forget(rules_dir);
    if !prefix.is_empty() {
        yaml.push_str(&format!("web: {{route_prefix: \"{prefix}/\"}}\n"));
    }
    let node = TestNode::builder().yaml(&yaml).start().await;
    let base = format!("{}{prefix}", node.base);
    wait_until(
        "the node to have scraped the demo target for ten seconds",
        Duration::from_secs(40),
        || async {
            let end = strata_testing::now_ms() / 1000;
            let probe = format!(
                "{base}/api/v1/query_range?query=uidemo_temperature_celsius&start={}&end={end}&step=1",
                end - 60
            );
            let Ok(resp) = http_client().get(&probe).send().await else {
                return false;
            };
            let v: Value = resp.json().await.unwrap_or_default();
            v["data"]["result"].as_array().is_some_and(|a| {
                a.len() == 3
                    && a.iter()
                        .all(|s| s["values"].as_array().is_some_and(|v| v.len() >= 10))
            })
        },
    )
    .await;
    (node, target, base)
}

/// Every page, below `base`: loads, renders, no error, no failed request; a screenshot each.
async fn check_every_page(browser: &Browser, base: &str, shot_prefix: &str) {
    for page in PAGES {
        let url = match *page {
            // The query page with a graph, so its screenshot shows one.
            "graph" => format!(
                "{base}/graph?g0.expr=uidemo_temperature_celsius&g0.tab=0&g0.range_input=5m"
            ),
            p => format!("{base}/{p}"),
        };
        browser.open(&url).await;
        // Let the page's own requests (e.g. a query run from the URL) settle.
        browser
            .wait_js(
                &format!("{page}: no panel still loading"),
                "return !document.querySelector('[data-state=loading]')",
            )
            .await;
        browser.assert_clean(page).await;
        let rendered = browser
            .js("return document.querySelector('main').innerText.length")
            .await;
        assert!(
            rendered.as_u64().unwrap_or(0) > 0,
            "{page}: the page is empty"
        );
        browser.screenshot(&format!("{shot_prefix}{page}")).await;
    }
}

#[actix_rt::test]
async fn web_ui_pages_query_graph_and_completion_in_chromium() {
    let browser = Browser::start().await;
    let (node, _target, base) = start_node("").await;

    check_every_page(&browser, &base, "").await;

    // `/` redirects to the query page.
    browser.open(&format!("{base}/")).await;
    let path = browser.js("return location.pathname").await;
    assert_eq!(path, json!("/query"));

    // Typing a query and pressing Enter lists its series in the table.
    let editor = focus_editor(&browser).await;
    editor
        .send_keys("uidemo_temperature_celsius")
        .await
        .expect("type");
    // Close the completion list (its Enter would accept an option), then run.
    editor.send_keys("\u{E00C}").await.expect("escape");
    editor.send_keys("\u{E007}").await.expect("enter");
    browser
        .wait_js(
            "the table to list the three rooms",
            "return document.querySelectorAll('[data-testid=panel-0] [data-testid=row]').length === 3",
        )
        .await;
    let table = browser
        .js("return document.querySelector('[data-testid=panel-0] [data-testid=table]').innerText")
        .await;
    let table = table.as_str().unwrap_or_default().to_string();
    for room in ["kitchen", "hall", "attic"] {
        assert!(table.contains(room), "the table lacks {room}: {table}");
    }
    let url = browser.js("return location.search").await;
    assert!(
        url.as_str()
            .unwrap_or_default()
            .contains("g0.expr=uidemo_temperature_celsius"),
        "the URL keeps the query: {url}"
    );
    browser.assert_clean("query (typed)").await;
    browser.screenshot("query-typed-table").await;

    // The Graph tab draws: the canvas has coloured (series) pixels, not only grey axes. The
    // node has scraped for seconds only: a 1m range shows them.
    browser
        .client
        .find(Locator::Css(
            "[data-testid=panel-0] [data-testid=tab-graph]",
        ))
        .await
        .expect("graph tab")
        .click()
        .await
        .expect("click graph tab");
    let range = browser
        .client
        .find(Locator::Css("[data-testid=panel-0] [data-testid=range]"))
        .await
        .expect("range input");
    // Ctrl+A (the modifier stays down until the NULL key), then the new range and Enter.
    range
        .send_keys("\u{E009}a\u{E000}1m\u{E007}")
        .await
        .expect("type range");
    browser
        .wait_js(
            "the graph to be drawn",
            "return !!document.querySelector('[data-testid=panel-0] [data-testid=graph] canvas')",
        )
        .await;
    browser
        .wait_js(
            "the graph canvas to have series pixels",
            "const c = document.querySelector('[data-testid=panel-0] [data-testid=graph] canvas');
             const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
             let coloured = 0;
             for (let i = 0; i < d.length; i += 4) {
               const [r, g, b, a] = [d[i], d[i + 1], d[i + 2], d[i + 3]];
               if (a > 100 && Math.max(r, g, b) - Math.min(r, g, b) > 60) coloured++;
             }
             return coloured > 50;",
        )
        .await;
    browser.assert_clean("query (graph)").await;
    // Hovering the graph names the nearest series in a tooltip.
    browser
        .js("const o = document.querySelector('[data-testid=panel-0] .u-over');
             const r = o.getBoundingClientRect();
             o.dispatchEvent(new MouseEvent('mousemove', {clientX: r.right - 3, clientY: r.top + r.height / 2, bubbles: true}));
             return true;")
        .await;
    browser
        .wait_js(
            "the hover tooltip",
            "const t = document.querySelector('[data-testid=panel-0] [data-testid=graph-tooltip]');
             return !!t && !t.classList.contains('hidden') && t.innerText.includes('uidemo_temperature_celsius');",
        )
        .await;
    browser.screenshot("query-typed-graph").await;
    // Dragging across the graph zooms: the range and end follow the selection.
    let over = browser
        .client
        .find(Locator::Css("[data-testid=panel-0] .u-over"))
        .await
        .expect("the plot area");
    let drag = MouseActions::new("mouse".into())
        .then(PointerAction::MoveToElement {
            element: over,
            duration: None,
            x: 0.0,
            y: 0.0,
        })
        .then(PointerAction::Down {
            button: MOUSE_BUTTON_LEFT,
        })
        .then(PointerAction::MoveBy {
            duration: Some(Duration::from_millis(200)),
            x: 200.0,
            y: 0.0,
        })
        .then(PointerAction::Up {
            button: MOUSE_BUTTON_LEFT,
        });
    browser.client.perform_actions(drag).await.expect("drag");
    browser
        .wait_js(
            "the zoomed range in the URL",
            "const q = new URLSearchParams(location.search);
             const r = q.get('g0.range_input');
             return !!q.get('g0.end_input') && !!r && r !== '1m';",
        )
        .await;
    browser.assert_clean("query (hover, zoom)").await;

    // The dark theme (the toggle, kept in localStorage) and a phone-width layout.
    browser
        .click("[data-testid=theme-toggle]", "toggle the theme")
        .await;
    let theme = browser
        .js("return [document.documentElement.dataset.theme, localStorage.getItem('strata.theme')]")
        .await;
    assert!(theme[0] == theme[1] && theme[0].is_string(), "{theme}");
    browser.open(&format!("{base}/graph?g0.expr=uidemo_temperature_celsius&g0.tab=0&g0.range_input=1m&g0.stacked=1")).await;
    browser
        .wait_js(
            "the stacked graph",
            "return !!document.querySelector('[data-testid=panel-0] [data-testid=graph] canvas')",
        )
        .await;
    browser.assert_clean("query (stacked, other theme)").await;
    browser.screenshot("query-graph-stacked-other-theme").await;
    browser
        .click("[data-testid=theme-toggle]", "toggle back")
        .await;
    let frame = browser.js("return [window.outerWidth - window.innerWidth, window.outerHeight - window.innerHeight]").await;
    let (dw, dh) = (
        frame[0].as_u64().unwrap_or(0) as u32,
        frame[1].as_u64().unwrap_or(0) as u32,
    );
    browser
        .client
        .set_window_size(390 + dw, 844 + dh)
        .await
        .expect("phone size");
    for page in [
        "query?g0.expr=uidemo_temperature_celsius&g0.tab=0&g0.range_input=1m",
        "targets",
    ] {
        browser.open(&format!("{base}/{page}")).await;
        browser
            .wait_js(
                "no panel still loading",
                "return !document.querySelector('[data-state=loading]')",
            )
            .await;
        browser.assert_clean(page).await;
        browser
            .screenshot(&format!("phone-{}", page.split('?').next().unwrap_or(page)))
            .await;
        let overflow = browser
            .js("return [document.documentElement.scrollWidth - window.innerWidth,
                  [...document.querySelectorAll('body *')].filter((e) => e.getBoundingClientRect().right > window.innerWidth + 0.5)
                    .slice(0, 5).map((e) => e.tagName + '.' + e.className)]")
            .await;
        assert!(
            overflow[0].as_i64().unwrap_or(0) <= 0,
            "{page} is wider than a phone: {overflow}"
        );
    }
    browser
        .client
        .set_window_size(1280 + dw, 800 + dh)
        .await
        .expect("desktop size");

    // Completion offers a metric name after its first letters (from the node's own API).
    browser.open(&format!("{base}/query")).await;
    type_and_complete(&browser, "uidemo_te", "uidemo_temperature_celsius").await;
    browser.assert_clean("query (completion)").await;
    browser.screenshot("query-completion").await;

    // A shared link opens with that query's table.
    browser
        .open(&format!(
            "{base}/graph?g0.expr=uidemo_requests_total&g0.tab=1"
        ))
        .await;
    browser
        .wait_js(
            "the linked query's table",
            "return document.querySelectorAll('[data-testid=panel-0] [data-testid=row]').length === 2",
        )
        .await;
    let editor_text = browser
        .js("return document.querySelector('[data-testid=panel-0] .cm-content').innerText")
        .await;
    assert_eq!(editor_text, json!("uidemo_requests_total"));
    browser.assert_clean("graph link").await;

    // Format rewrites the expression as the engine prints it.
    browser
        .open(&format!(
            "{base}/graph?g0.expr=sum(uidemo_requests_total)by(code)&g0.tab=1"
        ))
        .await;
    browser
        .click("[data-testid=panel-0] [data-testid=format]", "format")
        .await;
    browser
        .wait_js(
            "the formatted expression",
            "return document.querySelector('[data-testid=panel-0] .cm-content').innerText
               === 'sum by (code) (uidemo_requests_total)'",
        )
        .await;
    browser.assert_clean("format").await;
    browser.screenshot("query-formatted").await;
    // Shift+Enter adds a line instead of running the query.
    let editor = focus_editor(&browser).await;
    editor
        .send_keys("\u{E010}\u{E008}\u{E007}\u{E000}")
        .await
        .expect("End, Shift+Enter");
    browser
        .wait_js(
            "a second line",
            "return document.querySelectorAll('[data-testid=panel-0] .cm-line').length === 2",
        )
        .await;

    // An API error is shown as the API words it.
    browser
        .open(&format!("{base}/graph?g0.expr=sum(&g0.tab=1"))
        .await;
    browser
        .wait_js(
            "the parse error",
            "return !!document.querySelector('[data-testid=panel-0] [data-testid=error]')",
        )
        .await;
    let shown = browser
        .js("return document.querySelector('[data-testid=panel-0] [data-testid=error]').innerText")
        .await;
    let api: Value = http_client()
        .get(format!("{base}/api/v1/query?query=sum("))
        .send()
        .await
        .expect("query")
        .json()
        .await
        .expect("json");
    let api_error = api["error"].as_str().unwrap_or_default();
    assert!(
        !api_error.is_empty() && shown.as_str().unwrap_or_default().contains(api_error),
        "shown {shown:?}, the API said {api_error:?}"
    );

    // /targets lists every target with its health and the broken one's error.
    browser.open(&format!("{base}/targets")).await;
    let targets = browser
        .js("return [...document.querySelectorAll('[data-testid=target]')].map((r) => r.innerText)")
        .await;
    let rows: Vec<String> = serde_json::from_value(targets).unwrap_or_default();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(
        rows.iter()
            .any(|r| r.contains("/metrics") && r.contains("UP")),
        "{rows:?}"
    );
    assert!(
        rows.iter()
            .any(|r| r.contains("/missing") && r.contains("DOWN")),
        "{rows:?}"
    );

    // The static files are cached as immutable, the shell is not.
    let shell = http_client()
        .get(format!("{base}/query"))
        .send()
        .await
        .expect("shell");
    assert_eq!(shell.headers()["cache-control"], "no-cache");
    let html = shell.text().await.expect("shell text");
    let main_js = html
        .split('"')
        .find(|s| s.ends_with("/app/main.js"))
        .expect("the shell names main.js")
        .to_string();
    let asset = http_client()
        .get(format!("{}{main_js}", node.base))
        .send()
        .await
        .expect("main.js");
    assert_eq!(asset.status(), 200);
    assert!(asset.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));
    assert!(asset.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    let etag = asset.headers()["etag"].clone();
    let again = http_client()
        .get(format!("{}{main_js}", node.base))
        .header("If-None-Match", etag)
        .send()
        .await
        .expect("main.js again");
    assert_eq!(again.status(), 304);
    // A client that leaves the answer compressed (the shared one decompresses).
    let raw = reqwest::Client::builder().no_gzip().build().unwrap();
    let gz = raw
        .get(format!(
            "{}{}",
            node.base,
            main_js.replace("app/main.js", "vendor/strata-editor.iife.min.js")
        ))
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .expect("the editor bundle");
    assert_eq!(gz.status(), 200);
    assert_eq!(gz.headers()["content-encoding"], "gzip");

    browser.close().await;
}

#[actix_rt::test]
async fn web_ui_under_a_route_prefix() {
    let browser = Browser::start().await;
    let (node, _target, base) = start_node("/strata").await;
    assert!(base.ends_with("/strata"));

    check_every_page(&browser, &base, "prefix-").await;

    // Every route is below the prefix: the API, health, metrics and the UI.
    for path in [
        "/-/ready",
        "/-/healthy",
        "/metrics",
        "/api/v1/status/buildinfo",
        "/query",
    ] {
        assert_eq!(
            node.status(&format!("/strata{path}")).await,
            200,
            "/strata{path}"
        );
        assert_eq!(node.status(path).await, 404, "{path} outside the prefix");
    }
    // `/strata` and `/strata/` redirect to the query page below the prefix.
    browser.open(&format!("{base}/")).await;
    assert_eq!(
        browser.js("return location.pathname").await,
        json!("/strata/query")
    );

    // The editor's completion asks the API below the prefix too.
    type_and_complete(&browser, "uidemo_re", "uidemo_requests_total").await;
    browser.assert_clean("prefix completion").await;

    browser.close().await;
}

/// Nodes of one cluster share the route prefix: a node without the query planner forwards a
/// query below the prefix to one that has it, and the node cards of every member are gathered
/// below it too.
#[actix_rt::test]
async fn route_prefix_carries_over_to_forwarded_requests_and_peer_calls() {
    let prefix = "web: {route_prefix: /strata}\n";
    let a = TestNode::builder()
        .id("prefix-a")
        .roles(&["store_shard", "query_planner"])
        .yaml(prefix)
        .start()
        .await;
    let b = TestNode::builder()
        .id("prefix-b")
        .roles(&["scraper_shipper"])
        .yaml(prefix)
        .join(a.gossip_addr())
        .start()
        .await;
    let url = format!("{}/strata/api/v1/query?query=vector(1)", b.base);
    wait_until(
        "prefix-b to forward a query to prefix-a",
        Duration::from_secs(20),
        || async {
            let Ok(r) = http_client().get(&url).send().await else {
                return false;
            };
            r.status() == 200
                && r.headers()
                    .get("x-strata-served-by")
                    .is_some_and(|v| v == "prefix-a")
        },
    )
    .await;
    let nodes = b.get_json("/strata/api/v1/status/nodes").await;
    let members = nodes["data"].as_array().cloned().unwrap_or_default();
    let ids: Vec<&str> = members.iter().filter_map(|m| m["id"].as_str()).collect();
    assert_eq!(ids, ["prefix-a", "prefix-b"], "{nodes}");
    assert!(
        members.iter().all(|m| m["health"].is_object()),
        "every member answered below the prefix: {nodes}"
    );
}

/// The first panel's editor, waited for and focused.
async fn focus_editor(browser: &Browser) -> fantoccini::elements::Element {
    let editor = browser
        .client
        .wait()
        .for_element(Locator::Css("[data-testid=panel-0] .cm-content"))
        .await
        .expect("the editor");
    editor.click().await.expect("focus the editor");
    editor
}

/// Types `typed` into the first panel's editor and waits until completion offers `want`.
async fn type_and_complete(browser: &Browser, typed: &str, want: &str) {
    let editor = focus_editor(browser).await;
    editor.send_keys(typed).await.expect("type");
    browser
        .wait_js(
            &format!("completion to offer {want}"),
            &format!(
                "return [...document.querySelectorAll('.cm-tooltip-autocomplete li')]
                   .some((li) => li.textContent.includes('{want}'))"
            ),
        )
        .await;
}
