//! The layering of `src/` stays true: every `crate::` path in the library's code (in `use`
//! lines, groups `crate::{a, b}` and inline paths alike, comments excluded) is checked against
//! the rules below, and a forbidden edge fails the test with the file and line. The rules are
//! the design's: layers point down, storage knows nothing of the layers above it, PromQL sees
//! storage through its `Queryable` model, actors never import HTTP, pure planners import no
//! actor framework, and `node.rs` alone wires the node.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::path::{Path, PathBuf};

/// `(module, modules it must not import)`. A module is the first path component under `src/`
/// (`src/node.rs` is `node`).
const FORBIDDEN: &[(&str, &[&str])] = &[
    (
        "storage",
        &[
            "promql", "query", "actors", "http", "scrape", "cluster", "rules", "cli", "node",
        ],
    ),
    (
        "promql",
        &[
            "query", "actors", "http", "scrape", "cluster", "rules", "cli", "node", "config",
        ],
    ),
    (
        "cluster",
        &[
            "actors", "http", "query", "promql", "scrape", "rules", "cli", "node",
        ],
    ),
    (
        "config",
        &[
            "storage", "promql", "query", "actors", "http", "scrape", "cluster", "rules", "cli",
            "node", "metrics",
        ],
    ),
    (
        "query",
        &["actors", "http", "scrape", "rules", "cli", "node"],
    ),
    (
        "scrape",
        &["actors", "http", "query", "rules", "cli", "node"],
    ),
    (
        "rules",
        &[
            "actors", "http", "scrape", "cluster", "query", "cli", "node",
        ],
    ),
    ("actors", &["http", "cli", "node"]),
    ("http", &["cli", "node"]),
    ("cli", &["node"]),
    (
        "metrics",
        &[
            "actors", "http", "query", "promql", "scrape", "cluster", "storage", "cli", "node",
        ],
    ),
    (
        "time",
        &[
            "actors", "http", "query", "promql", "scrape", "cluster", "storage", "config", "cli",
            "node",
        ],
    ),
    (
        "gocompat",
        &[
            "actors", "http", "query", "promql", "scrape", "cluster", "storage", "config", "cli",
            "node",
        ],
    ),
];

/// PromQL reads storage only through the query model (`Queryable`, series, matchers) and the
/// chunk encodings its series arrive in: XOR (`chunkenc`) and the downsampled `AggrChunk`s,
/// whose pure read side (`downsample::read_series`) the engine decodes them with.
const PROMQL_MAY_SEE_OF_STORAGE: &[&str] = &["model", "chunkenc", "downsample"];

/// Pure decision code: plain functions with property tests, no actor framework.
const PURE_PLANNERS: &[&str] = &[
    "cluster/policy.rs",
    "cluster/ownership.rs",
    "cluster/roles.rs",
    "storage/dedup.rs",
    "scrape/shard.rs",
];

#[derive(Debug, PartialEq)]
struct Violation {
    file: String,
    line: usize,
    what: String,
}

/// The module a file under `src/` belongs to.
fn module_of(rel: &str) -> &str {
    let first = rel.split('/').next().unwrap_or(rel);
    first.strip_suffix(".rs").unwrap_or(first)
}

/// Every `crate::a::b` path in one line of code as `(a, Some(b))`; groups `crate::{a, b::c}`
/// give each first-level name.
fn crate_paths(code: &str) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        // `strata_crate::` or `my_crate::` are not this crate.
        let before = &rest[..at];
        let preceded = before
            .chars()
            .last()
            .is_some_and(|c| c.is_alphanumeric() || c == '_');
        rest = &rest[at + "crate::".len()..];
        if preceded {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let mut parts = item.trim().split("::");
                if let Some(first) = parts.next().filter(|s| !s.is_empty()) {
                    out.push((first.to_string(), parts.next().map(str::to_string)));
                }
            }
            continue;
        }
        let ident = |s: &str| -> String {
            s.chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect()
        };
        let first = ident(rest);
        let second = rest[first.len()..]
            .strip_prefix("::")
            .map(ident)
            .filter(|s| !s.is_empty());
        if !first.is_empty() {
            out.push((first, second));
        }
    }
    out
}

/// The violations in one file's text; `rel` is its path under `src/`.
fn check_file(rel: &str, text: &str) -> Vec<Violation> {
    let module = module_of(rel);
    let forbidden: &[&str] = FORBIDDEN
        .iter()
        .find(|(m, _)| *m == module)
        .map(|(_, f)| *f)
        .unwrap_or(&[]);
    let mut out = Vec::new();
    let pure = PURE_PLANNERS.contains(&rel);
    for (i, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let violation = |what: String| Violation {
            file: rel.to_string(),
            line: i + 1,
            what,
        };
        if pure && code.contains("actix") {
            out.push(violation(format!("pure planner {rel} uses actix")));
        }
        for (target, sub) in crate_paths(code) {
            if target == module {
                continue;
            }
            if target == "node" && module != "node" {
                out.push(violation(format!(
                    "{module} imports node: only node.rs wires"
                )));
            } else if forbidden.contains(&target.as_str()) {
                out.push(violation(format!("{module} must not import {target}")));
            } else if module == "promql" && target == "storage" {
                let sub = sub.unwrap_or_default();
                if !PROMQL_MAY_SEE_OF_STORAGE.contains(&sub.as_str()) {
                    out.push(violation(format!(
                        "promql sees storage only through {PROMQL_MAY_SEE_OF_STORAGE:?}, not storage::{sub}"
                    )));
                }
            }
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn no_forbidden_edge_between_modules() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 100, "found only {} source files", files.len());
    let mut violations = Vec::new();
    for f in &files {
        let rel = f
            .strip_prefix(&src)
            .expect("under src")
            .to_string_lossy()
            .replace('\\', "/");
        if rel == "main.rs" {
            continue; // the binary: it starts the node
        }
        let text = std::fs::read_to_string(f).expect("read source");
        violations.extend(check_file(&rel, &text));
    }
    let listing: Vec<String> = violations
        .iter()
        .map(|v| format!("src/{}:{}: {}", v.file, v.line, v.what))
        .collect();
    assert!(
        listing.is_empty(),
        "forbidden edges:\n{}",
        listing.join("\n")
    );
}

#[test]
fn every_pure_planner_exists() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for p in PURE_PLANNERS {
        assert!(src.join(p).is_file(), "src/{p} is listed but missing");
    }
}

#[test]
fn the_checker_finds_each_kind_of_edge() {
    let v = check_file("storage/db/mod.rs", "use crate::promql::Engine;\n");
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].line, 1);
    let v = check_file(
        "storage/x.rs",
        "// crate::query in a comment\nlet x = crate::query::run();\n",
    );
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].line, 2);
    let v = check_file("actors/x.rs", "use crate::{config::Role, http::serve};\n");
    assert_eq!(v.len(), 1, "{v:?}");
    let v = check_file("scrape/x.rs", "let l = crate::node::shipping_labels(&c);\n");
    assert_eq!(v.len(), 1, "{v:?}");
    let v = check_file("promql/x.rs", "use crate::storage::db::Db;\n");
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(check_file("promql/x.rs", "use crate::storage::model::Labels;\n").is_empty());
    let v = check_file("cluster/policy.rs", "use actix::Addr;\n");
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(check_file("http/x.rs", "use crate::query::service::QueryService;\n").is_empty());
    assert!(check_file("node.rs", "use crate::http;\n").is_empty());
}
