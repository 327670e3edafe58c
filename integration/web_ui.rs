//! The web UI in a real headless Chromium (Debian's `chromium` + `chromium-driver`, driven over
//! WebDriver with fantoccini) against a node booted by the test that scrapes a small target:
//! every page loads with no JavaScript error and no failed request, at `/` and below
//! `web.route_prefix: /strata`; a query typed in the editor and run with Enter lists its series
//! in the table; the graph draws coloured pixels; completion offers a metric name after its
//! first letters; a `/graph?g0.expr=...&g0.tab=1` link opens with that query's table.
//! Screenshots of every page (1280×800) go to `<target dir>/ui-screenshots/`.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};
use strata_testing::targets::BodyServer;
use strata_testing::{free_port, http_client, require_binary, wait_until, ChildGuard, TestNode};

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
];

const CHROME_ARGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,800",
    "--hide-scrollbars",
];

/// Runs before any script of every page: collects uncaught errors, unhandled rejections,
/// console.error calls, resources that failed to load and fetches that failed or answered
/// an HTTP error, in `window.__uiProblems`.
const COLLECTOR: &str = r#"
(() => {
  const problems = [];
  window.__uiProblems = problems;
  window.addEventListener('error', (e) => {
    const t = e.target;
    if (t && t !== window && (t.src || t.href)) problems.push('failed to load ' + (t.src || t.href));
    else problems.push('error: ' + (e.message || e) + ' at ' + (e.filename || '') + ':' + (e.lineno || ''));
  }, true);
  window.addEventListener('unhandledrejection', (e) => problems.push('unhandled rejection: ' + (e.reason && e.reason.stack || e.reason)));
  const ce = console.error.bind(console);
  console.error = (...a) => { problems.push('console.error: ' + a.map(String).join(' ')); ce(...a); };
  const f = window.fetch.bind(window);
  window.fetch = async (...a) => {
    const url = String(a[0] && a[0].url || a[0]);
    try {
      const r = await f(...a);
      if (r.status >= 400) problems.push('HTTP ' + r.status + ' from ' + url);
      return r;
    } catch (e) {
      if (!(e && e.name === 'AbortError')) problems.push('fetch failed: ' + url + ': ' + e);
      throw e;
    }
  };
})();
"#;

/// Chrome's DevTools protocol through chromedriver (`/goog/cdp/execute`), for what W3C
/// WebDriver cannot do: run the collector before the page's own scripts.
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
    params: Value,
}

impl fantoccini::wd::WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        let body = json!({"cmd": self.cmd, "params": self.params}).to_string();
        (http::Method::POST, Some(body))
    }
}

/// A chromedriver on a free port and a browser session of it (killed when dropped).
struct Browser {
    client: Client,
    _driver: ChildGuard,
}

impl Browser {
    async fn start() -> Browser {
        let driver_bin = require_binary("chromedriver");
        let chromium = require_binary("chromium");
        let port = free_port();
        let child = Command::new(driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let driver = ChildGuard::new(child, "chromedriver");
        let status = format!("http://127.0.0.1:{port}/status");
        wait_until(
            "chromedriver to answer",
            Duration::from_secs(20),
            || async { http_client().get(&status).send().await.is_ok() },
        )
        .await;
        let profile = strata_testing::temp_dir();
        let mut args: Vec<String> = CHROME_ARGS.iter().map(|s| s.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        // The profile dir must outlive the browser: leak it (the OS temp dir is cleaned anyway).
        std::mem::forget(profile);
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({"binary": chromium, "args": args}),
        );
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a chromium session");
        client
            .issue_cmd(Cdp {
                cmd: "Page.addScriptToEvaluateOnNewDocument",
                params: json!({"source": COLLECTOR}),
            })
            .await
            .expect("install the error collector");
        // The viewport (what a screenshot shows) is 1280×800: grow the window by the browser's
        // own frame.
        client
            .set_window_size(1280, 800)
            .await
            .expect("window size");
        let frame = client
            .execute(
                "return [window.outerWidth - window.innerWidth, window.outerHeight - window.innerHeight]",
                vec![],
            )
            .await
            .expect("window frame");
        let (dw, dh) = (
            frame[0].as_u64().unwrap_or(0),
            frame[1].as_u64().unwrap_or(0),
        );
        if dw > 0 || dh > 0 {
            client
                .set_window_size(1280 + dw as u32, 800 + dh as u32)
                .await
                .expect("window size");
        }
        Browser {
            client,
            _driver: driver,
        }
    }

    /// Opens `url` and waits until the page module rendered (`main[data-ready]`).
    async fn open(&self, url: &str) {
        self.client.goto(url).await.expect("navigate");
        self.wait_js(
            &format!("{url} to render"),
            "return document.querySelector('main[data-ready]') !== null \
             || (window.__uiProblems || []).length > 0",
        )
        .await;
    }

    async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Waits until `script` returns true; on a timeout the panic shows the page's text.
    async fn wait_js(&self, what: &str, script: &str) {
        let waited = strata_testing::Wait::new(what, Duration::from_secs(20))
            .until(|| async { self.js(script).await == json!(true) })
            .await;
        if let Err(e) = waited {
            let text = self.js("return document.body.innerText").await;
            let problems = self.problems().await;
            let requests = self
                .js("return performance.getEntriesByType('resource').map((r) => r.name)")
                .await;
            let last_api = requests
                .as_array()
                .and_then(|a| {
                    a.iter()
                        .rev()
                        .find_map(|r| r.as_str().filter(|u| u.contains("/api/")))
                })
                .unwrap_or_default()
                .to_string();
            let again = match http_client().get(&last_api).send().await {
                Ok(r) => r.text().await.unwrap_or_default(),
                Err(e) => e.to_string(),
            };
            panic!(
                "{e}\npage text:\n{}\nproblems: {problems:?}\nrequests: {requests}\nthe last API request again: {}",
                text.as_str().unwrap_or_default(),
                again.chars().take(600).collect::<String>()
            );
        }
    }

    /// The errors and failed requests the page has seen, plus any resource that answered an
    /// HTTP error (Chrome's `responseStatus` on resource timing entries).
    async fn problems(&self) -> Vec<String> {
        let v = self
            .js(
                "const p = (window.__uiProblems || []).slice();
                 for (const r of performance.getEntriesByType('resource')) {
                   if (r.responseStatus >= 400) p.push('HTTP ' + r.responseStatus + ' from ' + r.name);
                 }
                 return p;",
            )
            .await;
        serde_json::from_value(v).unwrap_or_default()
    }

    async fn assert_clean(&self, page: &str) {
        let problems = self.problems().await;
        assert!(
            problems.is_empty(),
            "{page}: the page had errors or failed requests:\n{}",
            problems.join("\n")
        );
    }

    async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
    }
}

/// `<target dir>/ui-screenshots`: the test binary is `<target dir>/<profile>/deps/<name>`.
fn screenshot_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.ancestors().nth(3).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("target"))
        .join("ui-screenshots")
}

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
    let editor = browser
        .client
        .wait()
        .for_element(Locator::Css("[data-testid=panel-0] .cm-content"))
        .await
        .expect("the editor");
    editor.click().await.expect("focus the editor");
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
    browser.screenshot("query-typed-graph").await;

    // The dark theme (the toggle, kept in localStorage) and a phone-width layout.
    browser
        .client
        .find(Locator::Css("[data-testid=theme-toggle]"))
        .await
        .expect("theme toggle")
        .click()
        .await
        .expect("toggle the theme");
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
        .client
        .find(Locator::Css("[data-testid=theme-toggle]"))
        .await
        .expect("toggle")
        .click()
        .await
        .expect("toggle back");
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
    let editor = browser
        .client
        .wait()
        .for_element(Locator::Css("[data-testid=panel-0] .cm-content"))
        .await
        .expect("the editor");
    editor.click().await.expect("focus the editor");
    editor.send_keys("uidemo_te").await.expect("type");
    browser
        .wait_js(
            "completion to offer uidemo_temperature_celsius",
            "return [...document.querySelectorAll('.cm-tooltip-autocomplete li')]
               .some((li) => li.textContent.includes('uidemo_temperature_celsius'))",
        )
        .await;
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
        .client
        .find(Locator::Css("[data-testid=panel-0] [data-testid=format]"))
        .await
        .expect("format button")
        .click()
        .await
        .expect("format");
    browser
        .wait_js(
            "the formatted expression",
            "return document.querySelector('[data-testid=panel-0] .cm-content').innerText
               === 'sum by (code) (uidemo_requests_total)'",
        )
        .await;
    browser.assert_clean("format").await;

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

    browser.client.close().await.expect("close the browser");
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
    let editor = browser
        .client
        .wait()
        .for_element(Locator::Css("[data-testid=panel-0] .cm-content"))
        .await
        .expect("the editor");
    editor.click().await.expect("focus the editor");
    editor.send_keys("uidemo_re").await.expect("type");
    browser
        .wait_js(
            "completion below the prefix",
            "return [...document.querySelectorAll('.cm-tooltip-autocomplete li')]
               .some((li) => li.textContent.includes('uidemo_requests_total'))",
        )
        .await;
    browser.assert_clean("prefix completion").await;

    browser.client.close().await.expect("close the browser");
}

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
    browser.assert_clean("cluster").await;
    browser.screenshot("cluster-three-nodes").await;

    // ui-b has no compactor role; tick it in the matrix.
    browser
        .client
        .find(Locator::Css("[data-testid=role-ui-b-compactor]"))
        .await
        .expect("the ui-b × compactor box")
        .click()
        .await
        .expect("tick it");
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
    browser.client.close().await.expect("close the browser");
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
    browser.client.close().await.expect("close the browser");
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
        .client
        .find(Locator::Css(&format!("[data-ulid='{}']", ulids[2])))
        .await
        .expect("a block")
        .click()
        .await
        .expect("click it");
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
        .client
        .find(Locator::Css("[data-testid=mark-no-compaction]"))
        .await
        .expect("the mark button")
        .click()
        .await
        .expect("mark it");
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
    browser.client.close().await.expect("close the browser");
}
