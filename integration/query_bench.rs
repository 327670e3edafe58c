//! Smoke test of `strata tools bench query` on a tiny data set: promtool builds the blocks,
//! Prometheus 2.42 and a Strata node serve them, and every benchmark query must give the same
//! answer on both (the tool prints `agree` per row). Latencies are printed, never asserted.
//! The full benchmark: `strata tools bench query --dir DIR` (see scripts/bench-query.sh).

use std::process::Command;

use strata_testing::require_binary;

#[test]
fn bench_query_answers_agree_with_prometheus_on_small_data() {
    let (prometheus, promtool) = (require_binary("prometheus"), require_binary("promtool"));
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["tools", "bench", "query", "--days", "1", "--jobs", "2"])
        .args(["--instances", "3", "--runs", "1", "--warmup", "0"])
        .args(["--prometheus", &prometheus, "--promtool", &promtool])
        .arg("--dir")
        .arg(dir.path())
        .output()
        .expect("run strata tools bench query");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench failed:\n{stdout}\n{stderr}");
    let rows: Vec<&str> = stdout
        .lines()
        .filter(|l| l.ends_with("agree") || l.ends_with("DIFFER"))
        .collect();
    assert_eq!(rows.len(), 11, "one row per benchmark query:\n{stdout}");
    assert!(
        rows.iter().all(|r| r.ends_with("agree")),
        "answers differ:\n{stdout}"
    );
    // Every query returns something on this data (an empty answer on both would also agree).
    assert!(
        rows.iter().all(|r| r
            .split_whitespace()
            .any(|w| w != "0" && w.parse::<usize>().is_ok())),
        "{stdout}"
    );
    eprintln!("{stdout}");
}
