//! The web UI: the app shell and its static files, embedded in the binary (rust-embed over
//! `ui/`, `debug-embed` so debug builds embed too; nothing is read from disk or the network at
//! run time). This module owns the UI's routes: every page path (`/query`, `/graph`,
//! `/alerts`, ...) answers the same `index.html` shell with the route prefix, node id and version
//! filled in (as Prometheus does to its `index.html`), with `Cache-Control: no-cache`; the app's
//! modules and the vendored libraries are under `/static/<content hash>/...`, cached for a year
//! as immutable, with an ETag for `If-None-Match`, compressed when the browser accepts it;
//! `/` redirects to `/query`. All paths are
//! relative to the route prefix the caller mounts these routes under (`web.route_prefix`).

use std::sync::OnceLock;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};
use rust_embed::RustEmbed;

/// The files the UI is made of: `index.html`, the app's ES modules and CSS under `app/`, the
/// committed vendor bundles under `vendor/` (not `vendor-src/`, which only builds them).
#[derive(RustEmbed)]
#[folder = "ui/"]
#[include = "index.html"]
#[include = "app/**"]
#[include = "vendor/**"]
struct Assets;

/// The client-side pages; each answers the app shell, whose router picks the page.
pub const PAGES: &[&str] = &[
    "/query",
    "/graph",
    "/alerts",
    "/rules",
    "/targets",
    "/service-discovery",
    "/status",
    "/tsdb-status",
    "/flags",
    "/config",
    "/stores",
    "/blocks",
    "/cluster",
    "/cardinality",
    "/unused",
];

const SHELL: &str = "index.html";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

#[derive(Debug, thiserror::Error)]
pub enum UiError {
    #[error("the embedded UI has no {0}")]
    Missing(&'static str),
    #[error("the embedded {0} is not UTF-8")]
    NotUtf8(&'static str),
}

pub type Result<T> = std::result::Result<T, UiError>;

/// What the UI routes answer with, built once when the server starts.
pub struct UiState {
    /// `""` or `/prefix` (no trailing slash).
    prefix: String,
    /// The rendered app shell.
    shell: String,
}

impl UiState {
    /// Renders the shell for this node; fails only if the embedded files are broken.
    pub fn new(prefix: &str, node_id: &str, version: &str) -> Result<Self> {
        let file = Assets::get(SHELL).ok_or(UiError::Missing(SHELL))?;
        let template = std::str::from_utf8(&file.data).map_err(|_| UiError::NotUtf8(SHELL))?;
        let prefix = prefix.trim_end_matches('/').to_string();
        let shell = render_shell(template, &prefix, node_id, version, assets_version());
        Ok(UiState { prefix, shell })
    }
}

/// One hash over every embedded file: the `<version>` in `/static/<version>/...`, so a new
/// binary with changed assets gets new URLs and the old ones can be cached forever.
pub fn assets_version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let mut names: Vec<_> = Assets::iter().collect();
        names.sort();
        let mut all = Vec::new();
        for name in names {
            if let Some(f) = Assets::get(&name) {
                all.extend_from_slice(name.as_bytes());
                all.extend_from_slice(&f.metadata.sha256_hash());
            }
        }
        format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&all))
    })
}

/// Fills the shell's placeholders. Values go into a JSON object in a `<script>` (with `<`
/// escaped, so no value can close the tag) and into attribute URLs (HTML-escaped).
pub fn render_shell(
    template: &str,
    prefix: &str,
    node_id: &str,
    version: &str,
    assets: &str,
) -> String {
    let static_base = format!("{prefix}/static/{assets}");
    let settings = serde_json::json!({
        "prefix": prefix,
        "nodeId": node_id,
        "version": version,
        "static": static_base,
    });
    let settings = settings.to_string().replace('<', "\\u003c");
    template
        .replace("{{SETTINGS}}", &settings)
        .replace("{{STATIC}}", &html_escape(&static_base))
        .replace("{{NODE_ID}}", &html_escape(node_id))
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The Content-Type of an embedded file, by its extension.
pub fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") | Some("mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        Some("ico") => "image/x-icon",
        _ => "text/plain; charset=utf-8",
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("", web::get().to(redirect_home))
        .route("/", web::get().to(redirect_home))
        // Compressed when the browser asks (the editor bundle is 477 KB, 150 KB gzipped).
        .service(
            web::resource("/static/{version}/{path:.*}")
                .wrap(actix_web::middleware::Compress::default())
                .route(web::get().to(asset)),
        );
    for page in PAGES {
        cfg.route(page, web::get().to(shell));
    }
}

/// `/` → `/query` below the prefix (Prometheus redirects `/` to its query page too).
async fn redirect_home(state: web::Data<UiState>) -> HttpResponse {
    HttpResponse::Found()
        .insert_header((header::LOCATION, format!("{}/query", state.prefix)))
        .finish()
}

async fn shell(state: web::Data<UiState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(state.shell.clone())
}

async fn asset(req: HttpRequest, path: web::Path<(String, String)>) -> HttpResponse {
    let (version, file) = path.into_inner();
    // The shell is only served rendered, and only the app's and vendor's files are static.
    if !(file.starts_with("app/") || file.starts_with("vendor/")) {
        return not_found(&file);
    }
    let Some(found) = Assets::get(&file) else {
        return not_found(&file);
    };
    let etag = format!("\"{}\"", hex(&found.metadata.sha256_hash()[..16]));
    // A URL of another build may still name a file that exists: serve it, but do not let it
    // be cached as immutable under a version it does not belong to.
    let cache = if version == assets_version() {
        IMMUTABLE
    } else {
        "no-cache"
    };
    let not_modified = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut resp = if not_modified {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    resp.insert_header((header::CACHE_CONTROL, cache));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        resp.insert_header((header::ETAG, v));
    }
    if not_modified {
        return resp.finish();
    }
    resp.content_type(content_type(&file))
        .body(found.data.into_owned())
}

fn not_found(file: &str) -> HttpResponse {
    HttpResponse::NotFound()
        .content_type("text/plain; charset=utf-8")
        .body(format!("no UI file {file:?}\n"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_referenced_file_is_embedded() {
        for f in [
            SHELL,
            "app/main.js",
            "app/api.js",
            "app/style.css",
            "vendor/uPlot.iife.min.js",
            "vendor/uPlot.min.css",
            "vendor/strata-editor.iife.min.js",
            "vendor/LICENSES",
        ] {
            assert!(Assets::get(f).is_some(), "{f} is not embedded");
        }
        assert!(Assets::iter().all(|n| !n.starts_with("vendor-src")));
    }

    #[test]
    fn every_page_has_a_module() {
        for page in PAGES {
            let name = match *page {
                "/graph" => "query",
                p => p.trim_start_matches('/'),
            };
            let module = format!("app/pages/{name}.js");
            assert!(Assets::get(&module).is_some(), "{module} is missing");
        }
    }

    #[test]
    fn shell_settings_cannot_break_out_of_the_script() {
        let out = render_shell(
            "<script>S={{SETTINGS}}</script><link href=\"{{STATIC}}/a.css\"><b>{{NODE_ID}}</b>",
            "/p",
            "</script><x>",
            "1.0",
            "abc",
        );
        assert!(!out.contains("</script><x>"), "{out}");
        assert!(out.contains("\\u003c/script>\\u003cx>"), "{out}");
        assert!(out.contains("href=\"/p/static/abc/a.css\""), "{out}");
        assert!(out.contains("<b>&lt;/script&gt;&lt;x&gt;</b>"), "{out}");
        let rendered = UiState::new("/strata/", "n1", "0.1.0").unwrap();
        assert_eq!(rendered.prefix, "/strata");
        assert!(rendered.shell.contains("\"prefix\":\"/strata\""));
        assert!(rendered
            .shell
            .contains(&format!("/strata/static/{}/app/main.js", assets_version())));
    }

    #[test]
    fn content_types_follow_the_extension() {
        assert_eq!(
            content_type("app/main.js"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(
            content_type("vendor/uPlot.min.css"),
            "text/css; charset=utf-8"
        );
        assert_eq!(content_type("vendor/LICENSES"), "text/plain; charset=utf-8");
    }
}
