//! Memory per idle series in the head: 100k series with one sample each, measured as the
//! growth of the process RSS (`/proc/self/statm`). Run alone in its own test binary so other
//! tests do not disturb the measurement.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use strata::storage::db::bench::rss_bytes;
use strata::storage::head::{Head, HeadOptions};
use strata::storage::model::{Label, Labels};

const N: usize = 100_000;

fn labels(i: usize) -> Labels {
    Labels::new(vec![
        Label::new("__name__", format!("http_requests_total_{}", i % 20)),
        Label::new(
            "instance",
            format!("10.1.{}.{}:8080", i / 250 % 256, i % 250),
        ),
        Label::new("job", "api-server"),
        Label::new("method", ["GET", "POST", "PUT"][i % 3]),
        Label::new("code", ["200", "404", "500", "503"][i % 4]),
        Label::new("pod", format!("api-{i}")),
    ])
}

#[test]
fn idle_series_cost_at_most_1kib() {
    if rss_bytes() == 0 {
        eprintln!("no /proc/self/statm: skipping the RSS measurement");
        return;
    }
    let before = rss_bytes();
    let head = Head::new(HeadOptions::default(), None);
    for chunk in (0..N).collect::<Vec<_>>().chunks(1000) {
        let mut app = head.appender();
        for &i in chunk {
            app.add(&labels(i), 1_700_000_000_000, i as f64).unwrap();
        }
        app.commit().unwrap();
    }
    let after = rss_bytes();
    assert_eq!(head.num_series(), N);
    let per_series = (after.saturating_sub(before)) as f64 / N as f64;
    println!("idle series: {per_series:.0} bytes of RSS per series ({N} series, 6 labels)");
    assert!(per_series <= 1024.0, "{per_series} bytes per idle series");
}
