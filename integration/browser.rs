//! A real headless Chromium for the web UI tests: Debian's `chromium` driven by its
//! `chromium-driver` (started on a free port, killed when dropped) over WebDriver with
//! fantoccini. Every page gets, before its own scripts, a collector of JavaScript errors and
//! failed requests (`Browser::assert_clean`); screenshots go to `<target dir>/ui-screenshots/`.
//! A missing chromium or chromedriver fails the test with a pointer to `scripts/test.sh`.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};
use strata_testing::{free_port, http_client, require_binary, wait_until, ChildGuard};

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
    "--disable-breakpad",
    "--disable-crash-reporter",
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
pub(crate) struct Browser {
    pub(crate) client: Client,
    _driver: ChildGuard,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The group's id is chromedriver's pid; the ChildGuard then reaps chromedriver.
        if let Ok(pid) = i32::try_from(self._driver.child.id()) {
            // SAFETY: kill(2) with a negative pid signals that process group; no memory involved.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
    }
}

impl Browser {
    pub(crate) async fn start() -> Browser {
        let driver_bin = require_binary("chromedriver");
        let chromium = require_binary("chromium");
        let port = free_port();
        // Its own process group, which the browsers it starts join: dropping the Browser ends
        // them all, even when a failed test never closed its session.
        let child = Command::new(driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
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

    /// Ends the session (and the browser) cleanly.
    pub(crate) async fn close(&self) {
        self.client
            .clone()
            .close()
            .await
            .expect("close the browser");
    }

    /// Opens `url` and waits until the page module rendered (`main[data-ready]`).
    pub(crate) async fn open(&self, url: &str) {
        self.client.goto(url).await.expect("navigate");
        self.wait_js(
            &format!("{url} to render"),
            "return document.querySelector('main[data-ready]') !== null \
             || (window.__uiProblems || []).length > 0",
        )
        .await;
    }

    /// Clicks the element `css` selects; `what` names the click in a failure.
    pub(crate) async fn click(&self, css: &str, what: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{what}: no element {css}: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
    }

    pub(crate) async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Waits until `script` returns true; on a timeout the panic shows the page's text.
    pub(crate) async fn wait_js(&self, what: &str, script: &str) {
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
    pub(crate) async fn problems(&self) -> Vec<String> {
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

    pub(crate) async fn assert_clean(&self, page: &str) {
        let problems = self.problems().await;
        assert!(
            problems.is_empty(),
            "{page}: the page had errors or failed requests:\n{}",
            problems.join("\n")
        );
    }

    pub(crate) async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
    }
}

/// `<target dir>/ui-screenshots`: the test binary is `<target dir>/<profile>/deps/<name>`.
pub(crate) fn screenshot_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.ancestors().nth(3).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("target"))
        .join("ui-screenshots")
}
