//! `strata tools tsdb ...` as a user runs it: backfill OpenMetrics into blocks, then Strata's
//! dump and list agree with promtool 2.42's on the same directory, and promtool's own blocks
//! dump identically through Strata.

use std::process::Command;

use strata_testing::require_binary;

fn run(bin: &str, args: &[&str]) -> String {
    let out = Command::new(bin).args(args).output().expect("run");
    assert!(
        out.status.success(),
        "{bin} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const INPUT: &str = "# TYPE http_requests_total counter\n\
http_requests_total{code=\"200\",job=\"api\"} 1 1700000000\n\
http_requests_total{code=\"200\",job=\"api\"} 5 1700000015.5\n\
http_requests_total{code=\"500\",job=\"api\"} 2 1700000030\n\
# TYPE temperature gauge\n\
temperature{room=\"a\\\"b\"} NaN 1700007300\n\
temperature{room=\"a\\\"b\"} -1e+300 1700007315\n\
temperature{room=\"a\\\"b\"} +Inf 1700014600\n\
# EOF\n";

#[test]
fn import_dump_and_list_agree_with_promtool() {
    let promtool = require_binary("promtool");
    let strata = env!("CARGO_BIN_EXE_strata");
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.om");
    std::fs::write(&input, INPUT).unwrap();
    let ours = dir.path().join("ours");
    let theirs = dir.path().join("theirs");
    let imported = run(
        strata,
        &[
            "tools",
            "tsdb",
            "import",
            "openmetrics",
            input.to_str().unwrap(),
            ours.to_str().unwrap(),
        ],
    );
    assert_eq!(
        imported.lines().count(),
        3,
        "three 2h blocks expected:\n{imported}"
    );
    run(
        &promtool,
        &[
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            input.to_str().unwrap(),
            theirs.to_str().unwrap(),
        ],
    );
    for d in [&ours, &theirs] {
        std::fs::create_dir_all(d.join("wal")).unwrap();
    }
    let strata_on_ours = run(strata, &["tools", "tsdb", "dump", ours.to_str().unwrap()]);
    let promtool_on_ours = run(&promtool, &["tsdb", "dump", ours.to_str().unwrap()]);
    let strata_on_theirs = run(strata, &["tools", "tsdb", "dump", theirs.to_str().unwrap()]);
    assert_eq!(
        strata_on_ours, promtool_on_ours,
        "promtool reads Strata's blocks differently"
    );
    assert_eq!(
        strata_on_theirs, promtool_on_ours,
        "Strata reads promtool's blocks differently"
    );
    assert_eq!(strata_on_ours.lines().count(), 6);
    assert!(
        strata_on_ours.contains("{__name__=\"temperature\", room=\"a\\\"b\"} +Inf 1700014600000"),
        "{strata_on_ours}"
    );

    let matched = run(
        strata,
        &[
            "tools",
            "tsdb",
            "dump",
            "--match",
            "{code=\"500\"}",
            ours.to_str().unwrap(),
        ],
    );
    assert_eq!(matched.lines().count(), 1, "{matched}");
    let listed = run(strata, &["tools", "tsdb", "ls", ours.to_str().unwrap()]);
    assert_eq!(listed.lines().count(), 4, "header + 3 blocks:\n{listed}");

    let bad = dir.path().join("bad.om");
    std::fs::write(&bad, "metric{ 1 2\n# EOF\n").unwrap();
    let out = Command::new(strata)
        .args([
            "tools",
            "tsdb",
            "import",
            "openmetrics",
            bad.to_str().unwrap(),
            dir.path().join("x").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("line 1"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn bench_tsdb_runs_and_reports_rates() {
    let out = run(
        env!("CARGO_BIN_EXE_strata"),
        &[
            "tools",
            "bench",
            "tsdb",
            "--series",
            "200",
            "--scrapes",
            "20",
        ],
    );
    assert!(
        out.contains("samples/s") && out.contains("bytes/sample"),
        "{out}"
    );
}
