//! Runs Prometheus's PromQL test files (`../shared/promql-testdata`, or
//! `STRATA_PROMQL_TESTDATA`) through the engine and enforces the per-file pass counts
//! recorded in `tests/promql_ratchet.json`.
//!
//! Env: `STRATA_PROMQL_FILTER=sub` runs only files whose name contains `sub`;
//! `STRATA_PROMQL_VERBOSE=file.test` (or `all`) prints that file's failures, and
//! `STRATA_PROMQL_VERBOSE=expected-errors` prints the errors of passing `expect fail` evals;
//! `STRATA_PROMQL_RATCHET_WRITE=1` rewrites the ratchet with the current counts.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::path::PathBuf;

use strata::promql::testlang::run_test_file;

fn testdata_dir() -> PathBuf {
    match std::env::var("STRATA_PROMQL_TESTDATA") {
        Ok(p) => PathBuf::from(p),
        Err(_) => {
            // The repo's sibling `shared/`; scratch crates sit one level deeper.
            let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
            let sibling = root.join("../shared/promql-testdata");
            if sibling.is_dir() {
                sibling
            } else {
                root.join("../../shared/promql-testdata")
            }
        }
    }
}

fn ratchet_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/promql_ratchet.json")
}

#[test]
fn promql_conformance() {
    let dir = testdata_dir();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("no PromQL test data at {}; skipping", dir.display());
        return;
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "test"))
        .collect();
    files.sort();
    let filter = std::env::var("STRATA_PROMQL_FILTER").unwrap_or_default();
    let verbose = std::env::var("STRATA_PROMQL_VERBOSE").unwrap_or_default();
    let ratchet: BTreeMap<String, usize> = std::fs::read_to_string(ratchet_path())
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let (mut all, mut pass, mut fonly, mut fpass) = (0, 0, 0, 0);
    let mut regressions = Vec::new();
    println!(
        "{:<28} {:>6} {:>6} {:>6} {:>11} {:>11}",
        "file", "evals", "pass", "fail", "float-evals", "float-pass"
    );
    for f in &files {
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        if !filter.is_empty() && !name.contains(&filter) {
            continue;
        }
        let text = std::fs::read_to_string(f).expect("read test file");
        let outcomes = match run_test_file(&text) {
            Ok(o) => o,
            Err(e) => panic!("{name}: {e}"),
        };
        let total = outcomes.len();
        let passed = outcomes.iter().filter(|o| o.passed).count();
        let fo = outcomes.iter().filter(|o| o.float_only).count();
        let fp = outcomes.iter().filter(|o| o.float_only && o.passed).count();
        println!(
            "{name:<28} {total:>6} {passed:>6} {:>6} {fo:>11} {fp:>11}",
            total - passed
        );
        if verbose == "expected-errors" {
            for o in outcomes
                .iter()
                .filter(|o| o.passed && !o.message.is_empty())
            {
                println!("  ERR-OK line {}: {}\n      {}", o.line, o.expr, o.message);
            }
        }
        if verbose == name || verbose == "all" {
            for o in outcomes.iter().filter(|o| !o.passed) {
                println!(
                    "  FAIL line {}{}: {}\n      {}",
                    o.line,
                    if o.float_only { " [float]" } else { "" },
                    o.expr,
                    o.message
                );
            }
        }
        if let Some(&min) = ratchet.get(&name) {
            if passed < min {
                regressions.push(format!("{name}: {passed} passed < ratchet {min}"));
            }
        }
        counts.insert(name, passed);
        all += total;
        pass += passed;
        fonly += fo;
        fpass += fp;
    }
    println!("OVERALL: {pass}/{all} evals pass; float-only {fpass}/{fonly}");
    if std::env::var("STRATA_PROMQL_RATCHET_WRITE").is_ok_and(|v| v == "1") && filter.is_empty() {
        let text = serde_json::to_string_pretty(&counts).expect("ratchet json");
        std::fs::write(ratchet_path(), text + "\n").expect("write ratchet");
    }
    assert!(
        regressions.is_empty(),
        "pass counts dropped below the ratchet: {regressions:?}"
    );
    assert!(filter.is_empty() || pass > 0 || all == 0, "no eval passed");
}
