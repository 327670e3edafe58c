//! The rules benchmark's workload: a fleet of `jobs × instances` targets shaped like the query
//! benchmark's data set (request counters by status code, a classic latency histogram, two
//! gauges: 21 series a target), served live so counters grow with wall time, and a rule set
//! of recording and alerting rules over it of the kinds dashboards and runbooks use (rates,
//! ratios, quantiles, aggregations, `*_over_time`), each rule reading one job.

use std::fmt::Write as _;

const CODES: [&str; 5] = ["200", "201", "404", "500", "503"];
const BUCKETS: [&str; 12] = [
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf",
];
const SHARES: [f64; 12] = [
    0.02, 0.05, 0.12, 0.25, 0.45, 0.65, 0.80, 0.90, 0.96, 0.985, 0.995, 1.0,
];

/// Series each target exposes.
pub const SERIES_PER_TARGET: usize = CODES.len() + BUCKETS.len() + 2 + 2;

use super::super::bench_query::data::mix;

pub fn job_name(job: usize) -> String {
    format!("job-{job:02}")
}

pub fn instance_name(job: usize, inst: usize) -> String {
    format!("host-{job:02}-{inst:03}:9100")
}

/// The scrape path of a target.
pub fn target_path(job: usize, inst: usize) -> String {
    format!("/j{job}/i{inst}")
}

/// `(job, instance)` of a target path.
pub fn parse_target_path(path: &str) -> Option<(usize, usize)> {
    let (j, i) = path.strip_prefix("/j")?.split_once("/i")?;
    Some((j.parse().ok()?, i.parse().ok()?))
}

/// The exposition body of target (`job`, `inst`) at `now_s` (seconds since the epoch):
/// counters grow at a per-series rate so rates are steady and non-zero, gauges wander.
pub fn target_body(job: usize, inst: usize, now_s: u64) -> String {
    let t = (job * 1000 + inst) as u64;
    let mut s = String::with_capacity(2048);
    s.push_str("# HELP http_requests_total Requests served.\n# TYPE http_requests_total counter\n");
    for (c, code) in CODES.iter().enumerate() {
        let seed = mix(t, c as u64 + 1);
        // Error codes grow more slowly than successes.
        let per_s = if c < 2 { 5 + seed % 50 } else { seed % 3 };
        let _ = writeln!(
            s,
            "http_requests_total{{code=\"{code}\"}} {}",
            1000 + seed % 1000 + per_s * now_s
        );
    }
    s.push_str("# HELP request_duration_seconds Request latency.\n# TYPE request_duration_seconds histogram\n");
    let seed = mix(t, 99);
    let total = (1000 + seed % 1000 + (10 + seed % 40) * now_s) as f64;
    for (le, share) in BUCKETS.iter().zip(SHARES) {
        let _ = writeln!(
            s,
            "request_duration_seconds_bucket{{le=\"{le}\"}} {}",
            (total * share).floor()
        );
    }
    let _ = writeln!(s, "request_duration_seconds_sum {}", total * 0.125);
    let _ = writeln!(s, "request_duration_seconds_count {total}");
    let cpu = (mix(t + 7, now_s / 15) % 1_000_000) as f64 / 1e6;
    let mem = 1e9 + (mix(t + 11, now_s / 15) % 1_000_000) as f64 * 1000.0;
    let _ = writeln!(
        s,
        "# HELP cpu_usage CPU in use.\n# TYPE cpu_usage gauge\ncpu_usage {cpu}"
    );
    let _ = writeln!(
        s,
        "# HELP memory_bytes Memory in use.\n# TYPE memory_bytes gauge\nmemory_bytes {mem}"
    );
    s
}

/// `scrape_configs` for both servers: one job per generated job, every instance a path of the
/// target server at `addr`, labelled with its instance name.
pub fn scrape_configs(addr: &str, jobs: usize, instances: usize, interval_s: u64) -> String {
    let mut y = String::from("scrape_configs:\n");
    for job in 0..jobs {
        let _ = write!(
            y,
            "  - job_name: {}\n    scrape_interval: {interval_s}s\n    static_configs:\n",
            job_name(job)
        );
        for inst in 0..instances {
            let _ = writeln!(
                y,
                "      - targets: ['{addr}']\n        labels: {{__metrics_path__: '{}', instance: '{}'}}",
                target_path(job, inst),
                instance_name(job, inst)
            );
        }
    }
    y
}

/// The recording rule kinds; `J` is replaced by the job's selector.
const RECORDING: [&str; 10] = [
    "sum by (job, code) (rate(http_requests_total{J}[1m]))",
    "sum by (job, instance) (rate(http_requests_total{J,code=~\"5..\"}[1m])) / sum by (job, instance) (rate(http_requests_total{J}[1m]))",
    "histogram_quantile(0.99, sum by (job, le) (rate(request_duration_seconds_bucket{J}[1m])))",
    "avg by (job) (cpu_usage{J})",
    "max by (job, instance) (max_over_time(memory_bytes{J}[5m]))",
    "sum by (job) (rate(request_duration_seconds_sum{J}[1m])) / sum by (job) (rate(request_duration_seconds_count{J}[1m]))",
    "topk(3, rate(http_requests_total{J,code=\"200\"}[1m]))",
    "quantile by (job) (0.9, cpu_usage{J})",
    "count by (job, code) (http_requests_total{J})",
    "avg_over_time(cpu_usage{J}[2m])",
];

/// The alerting rule kinds: (expression, `for`).
const ALERTING: [(&str, &str); 5] = [
    ("sum by (job, instance) (rate(http_requests_total{J,code=~\"5..\"}[1m])) > 0.5", "1m"),
    ("avg by (job) (cpu_usage{J}) > 0.9", "5m"),
    ("histogram_quantile(0.99, sum by (job, le) (rate(request_duration_seconds_bucket{J}[1m]))) > 1", "2m"),
    ("max by (job, instance) (memory_bytes{J}) > 1.5e9", "30s"),
    ("absent(up{J})", "0s"),
];

fn selector(jobs: usize, r: usize) -> String {
    format!("job=\"{}\"", job_name(r % jobs.max(1)))
}

/// The rule file text: `recording` recording rules then `alerting` alerting rules, in groups
/// of `per_group`, every group at `interval_s`. Rule `r` reads job `r % jobs`.
pub fn rule_file(
    recording: usize,
    alerting: usize,
    per_group: usize,
    jobs: usize,
    interval_s: u64,
) -> String {
    let per_group = per_group.max(1);
    let mut y = String::from("groups:\n");
    for r in 0..recording {
        if r % per_group == 0 {
            let _ = write!(
                y,
                "- name: recording-{:03}\n  interval: {interval_s}s\n  rules:\n",
                r / per_group
            );
        }
        let kind = (r / jobs.max(1)) % RECORDING.len();
        let expr = RECORDING[kind].replace('J', &selector(jobs, r));
        let _ = writeln!(y, "  - record: bench:kind{kind}:r{r}\n    expr: '{expr}'");
    }
    for r in 0..alerting {
        if r % per_group == 0 {
            let _ = write!(
                y,
                "- name: alerting-{:03}\n  interval: {interval_s}s\n  rules:\n",
                r / per_group
            );
        }
        let (expr, hold) = ALERTING[(r / jobs.max(1)) % ALERTING.len()];
        let expr = expr.replace('J', &selector(jobs, r));
        let _ = writeln!(
            y,
            "  - alert: BenchAlert{r}\n    expr: '{expr}'\n    for: {hold}\n    labels: {{severity: warning, team: t{}}}\n    annotations:\n      summary: '{{{{ $labels.job }}}}/{{{{ $labels.instance }}}} at {{{{ $value | humanize }}}}'\n      description: 'rule {r}: {{{{ $labels.job }}}} at {{{{ printf \"%.2f\" $value }}}}'",
            r % 7
        );
    }
    y
}

/// Groups in a rule file made by [`rule_file`].
pub fn group_count(recording: usize, alerting: usize, per_group: usize) -> usize {
    recording.div_ceil(per_group.max(1)) + alerting.div_ceil(per_group.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_file_is_valid_and_has_every_rule() {
        let text = rule_file(1000, 200, 20, 10, 15);
        let check = crate::rules::file::default_template_check();
        let groups = crate::rules::parse("bench.yml", &text, &check).expect("valid rule file");
        assert_eq!(groups.groups.len(), group_count(1000, 200, 20));
        assert_eq!(groups.rule_count(), 1200);
    }

    #[test]
    fn bodies_have_every_series_and_counters_grow() {
        let a = target_body(3, 7, 1_000_000);
        let b = target_body(3, 7, 1_000_015);
        let samples = |s: &str| s.lines().filter(|l| !l.starts_with('#')).count();
        assert_eq!(samples(&a), SERIES_PER_TARGET);
        let first = |s: &str| -> f64 {
            let line = s
                .lines()
                .find(|l| l.starts_with("http_requests_total"))
                .unwrap_or("");
            line.rsplit(' ')
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0.0)
        };
        assert!(first(&b) > first(&a));
        assert_eq!(parse_target_path(&target_path(3, 7)), Some((3, 7)));
        assert_eq!(parse_target_path("/metrics"), None);
    }
}
