//! Differential test of the OpenMetrics parser against Prometheus 2.42 itself:
//! `promtool tsdb create-blocks-from openmetrics` runs 2.42's OpenMetrics parser, so for
//! every body both must accept or both refuse, and when accepted the samples
//! `promtool tsdb dump` prints must equal ours.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::path::Path;
use std::process::Command;

use strata::scrape::parser::{parse, Format};

const PROMTOOL: &str = "/usr/bin/promtool";

const CASES: &[&str] = &[
    "a{b=\"c\"} 1 1700000000\n# EOF\n",
    "a{b=\"c\",} 1 1700000000\n# EOF\n",
    "a{b=\"c\" ,d=\"e\"} 1 1700000000\n# EOF\n",
    "a{} 1 1700000000\n# EOF\n",
    "a 1 1700000000\n# EOF",
    "a 1 1700000000\n# EOF\n\n",
    "a 1 1700000000\n\n# EOF\n",
    "a 1 1700000000\n",
    "# foo\na 1 1700000000\n# EOF\n",
    "# HELP a\na 1 1700000000\n# EOF\n",
    "# HELP a x\\\\y\\\"z\\n\na 1 1700000000\n# EOF\n",
    "# UNIT a_bytes seconds\na_bytes 1 1700000000\n# EOF\n",
    "# UNIT a_seconds seconds\n# TYPE a_seconds gauge\na_seconds 1 1700000000\n# EOF\n",
    "# TYPE a untyped\na 1 1700000000\n# EOF\n",
    "# TYPE a unknown\na 1 1700000000\n# EOF\n",
    "a 1 1700000000.5555\n# EOF\n",
    "a 1 1e9\n# EOF\n",
    "a 1 0x10\n# EOF\n",
    "a 1 NaN\n# EOF\n",
    "a 1 1700000000 \n# EOF\n",
    "a  1 1700000000\n# EOF\n",
    "a +NaN 1700000000\n# EOF\n",
    "a NaN 1700000000\n# EOF\n",
    "a -Inf 1700000000\n# EOF\n",
    "a +inf 1700000000\n# EOF\n",
    "a 1_0 1700000000\n# EOF\n",
    "a 1e400 1700000000\n# EOF\n",
    "a .5 1700000000\n# EOF\n",
    "a{x=\"1\",x=\"2\"} 1 1700000000\n# EOF\n",
    "a{b=\"\\x\"} 1 1700000000\n# EOF\n",
    "a{b=\"q\\\"uote\\\\back\\nnl\"} 1 1700000000\n# EOF\n",
    "a{b=\"\u{e9}t\u{e9}\"} 1 1700000000\n# EOF\n",
    "a{b=\"\u{ff}\"} 1 1700000000\n# EOF\n",
    "a 1 1700000000 # {x=\"y\"} 1 1700000000\n# EOF\n",
    "a_total 1 1700000000 # {x=\"y\"} 1 1700000000\n# EOF\n",
    "a_bucket{le=\"1\"} 1 1700000000 # {x=\"y\"} 1\n# EOF\n",
    "a_total 1 1700000000 # {x=\"y\"} 1 2 3\n# EOF\n",
    "a_total 1 1700000000 # {} 1\n# EOF\n",
    "a_total 1 1700000000 # {x=\"y\",} 1\n# EOF\n",
    "a_total 1 1700000000 # {x=\"y\"} NaN\n# EOF\n",
    "a_total 1 1700000000 # {x=\"y\"} 1 NaN\n# EOF\n",
    "a_total 1 1700000000 #  {x=\"y\"} 1\n# EOF\n",
    "a_total 1 1700000000 # {x=\"y\"}  1\n# EOF\n",
    "# TYPE a counter\na_total 1 1700000000\na_created 1600000000 1700000000\n# EOF\n",
    "# TYPE h histogram\nh_bucket{le=\"0.1\"} 1 1700000000\nh_bucket{le=\"+Inf\"} 2 1700000000\nh_count 2 1700000000\nh_sum 0.3 1700000000\n# EOF\n",
    "# TYPE s stateset\ns{s=\"a\"} 1 1700000000\ns{s=\"b\"} 0 1700000000\n# EOF\n",
    "# TYPE i info\ni_info{v=\"1\"} 1 1700000000\n# EOF\n",
    "a\t1 1700000000\n# EOF\n",
    "1a 1 1700000000\n# EOF\n",
    "a{1b=\"c\"} 1 1700000000\n# EOF\n",
    "a{b=c} 1 1700000000\n# EOF\n",
    "a{b=\"c\"}1 1700000000\n# EOF\n",
    ":a:b 1 1700000000\n# EOF\n",
];

/// The case as bytes; `\u{ff}` in a case stands for a lone 0xff byte (invalid UTF-8).
fn raw_bytes(body: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    for c in body.chars() {
        if c == '\u{ff}' {
            out.push(0xff);
        } else {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
    out
}

fn promtool(args: &[&str]) -> std::process::Output {
    Command::new(PROMTOOL).args(args).output().unwrap()
}

/// `promtool tsdb dump` lines as (labels, value, timestamp), sorted.
fn dump(dir: &Path) -> Vec<(String, String, i64)> {
    std::fs::create_dir_all(dir.join("wal")).unwrap();
    let out = promtool(&["tsdb", "dump", dir.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "dump failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut rows = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let (rest, ts) = line.rsplit_once(' ').unwrap();
        let (labels, value) = rest.rsplit_once(' ').unwrap();
        rows.push((
            labels.to_string(),
            normalise(value.parse().unwrap()),
            ts.parse().unwrap(),
        ));
    }
    rows.sort();
    rows
}

fn normalise(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else {
        format!("{v:e}")
    }
}

#[test]
fn openmetrics_parser_agrees_with_prometheus_2_42() {
    assert!(
        Path::new(PROMTOOL).exists(),
        "promtool not found at {PROMTOOL}: apt-get install prometheus"
    );
    let tmp = tempfile::tempdir().unwrap();
    let mut disagreements = Vec::new();
    for (i, body) in CASES.iter().enumerate() {
        let input = tmp.path().join(format!("case{i}.om"));
        let bytes = raw_bytes(body);
        std::fs::write(&input, &bytes).unwrap();
        let dir = tmp.path().join(format!("data{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        let theirs = promtool(&[
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            input.to_str().unwrap(),
            dir.to_str().unwrap(),
        ]);
        let ours = parse(&bytes, Format::OpenMetrics);
        match (theirs.status.success(), &ours) {
            (true, Ok(exp)) => {
                let mut mine: Vec<(String, String, i64)> = exp
                    .samples
                    .iter()
                    .map(|s| {
                        (
                            s.labels.to_string(),
                            normalise(s.value),
                            s.timestamp.unwrap_or(i64::MIN),
                        )
                    })
                    .collect();
                mine.sort();
                let prom = dump(&dir);
                // promtool writes no block for samples before the epoch; compare what it kept.
                mine.retain(|r| r.2 >= 0);
                if mine != prom {
                    disagreements.push(format!(
                        "{body:?}: samples differ\n  prometheus {prom:?}\n  strata     {mine:?}"
                    ));
                }
            }
            (false, Err(_)) => {}
            (p, s) => disagreements.push(format!(
                "{body:?}: prometheus {} ({}), strata {s:?}",
                if p { "accepts" } else { "refuses" },
                String::from_utf8_lossy(&theirs.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
            )),
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} disagreements:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
}
