//! `strata`'s naming lint against the oracle it imitates: `promtool check metrics` of
//! Prometheus 2.42 (Debian's package, installed by scripts/test.sh). Each exposition below goes
//! to both; the `<metric> <text>` lines of the promtool checks must be the same, in the same
//! order (promtool sorts them by metric, then text). The bodies cover every problem promtool
//! 2.42 reports, untyped families, histograms and summaries, camelCase labels, abbreviations,
//! units (milliseconds, kilobytes, mebibytes), duplicate series, colons, escapes, HELP lines
//! that name a histogram's `_bucket` and families without samples. None of them names two
//! different units: promtool then picks one at random (Go map order).

use std::io::Write as _;
use std::process::{Command, Stdio};

use strata::scrape::lint::{check, lint_body, Problem, PROMTOOL_CHECKS};
use strata::scrape::parser::Format;
use strata_testing::require_binary;

const CASES: &[(&str, &str)] = &[
    (
        "good",
        r##"# HELP http_requests_total Total HTTP requests.
# TYPE http_requests_total counter
http_requests_total{method="get",code="200"} 1027 1395066363000
http_requests_total{method="post",code="400"} 3
# HELP process_resident_memory_bytes Resident memory.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 1.2e+07
"##,
    ),
    (
        "no_help",
        r##"# TYPE a_total counter
a_total 1
# HELP b_bytes 
# TYPE b_bytes gauge
b_bytes 2
# HELP c_seconds   
c_seconds 3
# HELP d_ok fine
d_ok 4
"##,
    ),
    (
        "units",
        r##"# HELP req_duration_milliseconds x
# TYPE req_duration_milliseconds gauge
req_duration_milliseconds 1
# HELP cache_kilobytes x
# TYPE cache_kilobytes gauge
cache_kilobytes 1
# HELP heap_mebibytes x
# TYPE heap_mebibytes gauge
heap_mebibytes 1
# HELP heap_mibibytes x
# TYPE heap_mibibytes gauge
heap_mibibytes 1
# HELP uptime_hours x
# TYPE uptime_hours gauge
uptime_hours 1
# HELP temp_fahrenheit x
temp_fahrenheit 1
# HELP link_bits_total x
# TYPE link_bits_total counter
link_bits_total 1
# HELP dist_miles x
dist_miles 1
# HELP temp_kelvins x
temp_kelvins 1
# HELP w_kilograms x
w_kilograms 1
# HELP e_kilocalories_total x
# TYPE e_kilocalories_total counter
e_kilocalories_total 1
# HELP t_Milliseconds x
t_Milliseconds 1
# HELP lag_seconds_milliseconds x
lag_seconds_milliseconds 1
# HELP x_microseconds_microseconds x
x_microseconds_microseconds 1
"##,
    ),
    (
        "counters",
        r##"# HELP requests x
# TYPE requests counter
requests 1
# HELP temperature_total x
# TYPE temperature_total gauge
temperature_total 1
# HELP untyped_total x
untyped_total 1
# HELP explicit_total x
# TYPE explicit_total untyped
explicit_total 1
# HELP sum_total x
# TYPE sum_total summary
sum_total{quantile="0.5"} 1
sum_total_sum 1
sum_total_count 1
"##,
    ),
    (
        "reserved",
        r##"# HELP q_bucket x
# TYPE q_bucket gauge
q_bucket{le="1"} 1
# HELP q_count x
# TYPE q_count counter
q_count 1
# HELP q_sum x
# TYPE q_sum gauge
q_sum 1
# HELP r x
# TYPE r gauge
r{quantile="0.9"} 1
r{quantile="0.5",le="3"} 2
# HELP u_bucket x
u_bucket{le="1"} 1
u_count{quantile="1"} 1
"##,
    ),
    (
        "histogram",
        r##"# HELP rpc_duration_seconds RPC latency.
# TYPE rpc_duration_seconds histogram
rpc_duration_seconds_bucket{service="a",le="0.1"} 1
rpc_duration_seconds_bucket{service="a",le="+Inf"} 2
rpc_duration_seconds_sum{service="a"} 0.3
rpc_duration_seconds_count{service="a"} 2
rpc_duration_seconds_bucket{service="b",le="+Inf"} 0
rpc_duration_seconds_sum{service="b"} 0
rpc_duration_seconds_count{service="b"} 0
# TYPE lat_ms histogram
lat_ms_bucket{le="+Inf",svcName="x"} 1
lat_ms_sum{svcName="x"} 1
lat_ms_count{svcName="x"} 1
lat_ms_bucket{le="+Inf",svcName="y"} 1
"##,
    ),
    (
        "summary",
        r##"# HELP gc_pause_seconds GC.
# TYPE gc_pause_seconds summary
gc_pause_seconds{quantile="0"} 0.1
gc_pause_seconds{quantile="1"} 0.5
gc_pause_seconds_sum 3
gc_pause_seconds_count 10
# TYPE rpc_summary summary
rpc_summary{quantile="0.5",le="1",peerId="a"} 1
rpc_summary_sum{le="1",peerId="a"} 1
rpc_summary_count{le="1",peerId="a"} 1
rpc_summary{quantile="0.5",le="1",peerId="b"} 1
"##,
    ),
    (
        "types",
        r##"# HELP jobs_counter x
# TYPE jobs_counter counter
jobs_counter 1
# HELP queue_gauge_value x
# TYPE queue_gauge_value gauge
queue_gauge_value 1
# HELP lat_histogram x
# TYPE lat_histogram gauge
lat_histogram 1
# HELP req_Summary_total x
# TYPE req_Summary_total counter
req_Summary_total 1
# HELP q_gauge_histogram x
q_gauge_histogram 1
# HELP x_untyped x
x_untyped 1
# HELP gaugeless x
gaugeless 1
# HELP my_counters x
my_counters 1
"##,
    ),
    (
        "colons",
        r##"# HELP job:requests:rate5m x
# TYPE job:requests:rate5m gauge
job:requests:rate5m 1
# HELP ns:x_total x
# TYPE ns:x_total counter
ns:x_total 1
plain:untyped 2
"##,
    ),
    (
        "camel",
        r##"# HELP httpRequests_total x
# TYPE httpRequests_total counter
httpRequests_total{statusCode="200",method="get"} 1
httpRequests_total{statusCode="500",method="get"} 1
# HELP HTTP_REQUESTS x
HTTP_REQUESTS{Method="GET"} 1
# HELP fooBAR x
fooBAR{xY="1",aBc="2"} 1
"##,
    ),
    (
        "abbrev",
        r##"# HELP req_latency_ms x
req_latency_ms 1
# HELP disk_mb_used x
disk_mb_used 1
# HELP t_MS_sec_S x
t_MS_sec_S 1
# HELP mem_kb x
mem_kb 1
# HELP up_h x
up_h 1
# HELP age_d_days x
age_d_days 1
# HELP us_east x
us_east 1
# HELP x_us_y x
x_us_y 1
# HELP seconds_total x
# TYPE seconds_total counter
seconds_total 1
# HELP bytes_b x
bytes_b 1
"##,
    ),
    (
        "duplicates",
        r##"# HELP dup x
# TYPE dup gauge
dup{a="1"} 1
dup{a="1"} 2
dup 1
dup 2
# HELP dup_total x
# TYPE dup_total counter
dup_total{a="1",b="2"} 1
dup_total{b="2",a="1"} 1
"##,
    ),
    (
        "untyped",
        r##"node_load1 0.5
node_load5 0.3
node_cpu_seconds_total{cpu="0",mode="idle"} 1e6
node_disk_io_time_seconds_total{device="sda"} 10
some_gauge_count 1
some_sum 2
some_bucket{le="1"} 3
"##,
    ),
    (
        "noncontiguous",
        r##"# HELP a_total x
# TYPE a_total counter
a_total{x="1"} 1
b 1
a_total{x="2"} 2
# HELP b late help
"##,
    ),
    (
        "nodeexporter",
        r##"# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.
# TYPE node_cpu_seconds_total counter
node_cpu_seconds_total{cpu="0",mode="idle"} 1.2e+06
node_cpu_seconds_total{cpu="0",mode="user"} 3000
# HELP node_filesystem_avail_bytes Filesystem space available.
# TYPE node_filesystem_avail_bytes gauge
node_filesystem_avail_bytes{device="/dev/sda1",fstype="ext4",mountpoint="/"} 1e+10
# HELP node_network_info Network info.
# TYPE node_network_info gauge
node_network_info{address="00:11:22:33:44:55",device="eth0",operstate="up"} 1
# HELP node_boot_time_seconds Boot time.
# TYPE node_boot_time_seconds gauge
node_boot_time_seconds 1.6e+09
"##,
    ),
    (
        "python",
        r##"# HELP python_gc_objects_collected_total Objects collected during gc
# TYPE python_gc_objects_collected_total counter
python_gc_objects_collected_total{generation="0"} 123.0
# HELP python_info Python platform information
# TYPE python_info gauge
python_info{implementation="CPython",major="3",minor="11",patchlevel="2",version="3.11.2"} 1.0
# HELP process_virtual_memory_bytes Virtual memory size in bytes.
# TYPE process_virtual_memory_bytes gauge
process_virtual_memory_bytes 1.9e+08
# HELP request_latency_seconds Latency
# TYPE request_latency_seconds summary
request_latency_seconds_count 5.0
request_latency_seconds_sum 0.2
# HELP request_latency_seconds_created Latency
# TYPE request_latency_seconds_created gauge
request_latency_seconds_created 1.7e+09
"##,
    ),
    (
        "mixed",
        r##"# HELP appMemoryKB memory
# TYPE appMemoryKB gauge
appMemoryKB{hostName="a"} 1
# HELP app:cpu_ms_total x
# TYPE app:cpu_ms_total gauge
app:cpu_ms_total 1
# HELP app_hits x
# TYPE app_hits counter
app_hits{le="1",quantile="2"} 1
"##,
    ),
    (
        "escapes",
        r##"# HELP esc_total Escaped \\ help \n text.
# TYPE esc_total counter
esc_total{path="C:\\dir",msg="a \"quoted\" value\n"} 1
# HELP nan_gauge x
# TYPE nan_gauge gauge
nan_gauge NaN
nan_gauge{a="b"} +Inf
"##,
    ),
    (
        "emptyfamilies",
        r##"# HELP ghost x
# TYPE ghost counter
# HELP ghost2_total y
# TYPE real gauge
real 1
"##,
    ),
    (
        "sumhelp",
        r##"# TYPE lat histogram
# HELP lat_bucket attached to lat
lat_bucket{le="+Inf"} 1
lat_count 1
lat_sum 1
# TYPE s summary
# HELP s_count attached to s
s_count 1
s_sum 1
# TYPE g gauge
# HELP g_count own family
g 1
g_count 1
"##,
    ),
    (
        "blanks",
        r##"# HELP  spaced_total   text with leading blanks
# TYPE spaced_total counter
spaced_total  1

# HELP	tabbed x
#	TYPE tabbed gauge
tabbed	{a="1"}	2
# comment line
"##,
    ),
    (
        "percent",
        r##"# HELP cpu_usage_percent x
# TYPE cpu_usage_percent gauge
cpu_usage_percent 50
# HELP disk_percentage x
disk_percentage 1
"##,
    ),
];

/// promtool's problem lines for a body (it prints them on stderr and exits 3 when there are
/// any, 0 when none).
pub(crate) fn promtool_lines(promtool: &str, body: &str) -> Vec<String> {
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let code = out.status.code();
    assert!(
        matches!(code, Some(0) | Some(3)) && !stderr.contains("error while linting"),
        "promtool refused the body (exit {code:?}): {stderr}"
    );
    stderr.lines().map(String::from).collect()
}

fn strata_problems(name: &str, body: &str) -> Vec<Problem> {
    lint_body(body.as_bytes(), Format::PrometheusText)
        .unwrap_or_else(|e| panic!("case {name}: Strata's parser refused the body: {e}"))
}

fn promtool_part(problems: &[Problem]) -> Vec<String> {
    problems
        .iter()
        .filter(|p| p.is_promtool())
        .map(|p| p.to_string())
        .collect()
}

#[test]
fn lint_matches_promtool_check_metrics() {
    let promtool = require_binary("promtool");
    assert!(CASES.len() >= 20);
    let mut mismatches = Vec::new();
    let mut checks_seen = std::collections::BTreeSet::new();
    let mut lines = 0;
    for (name, body) in CASES {
        let want = promtool_lines(&promtool, body);
        let problems = strata_problems(name, body);
        let got = promtool_part(&problems);
        if want != got {
            mismatches.push(format!(
                "case {name}:\n  promtool: {want:#?}\n  strata:   {got:#?}"
            ));
        }
        lines += want.len();
        checks_seen.extend(problems.iter().filter(|p| p.is_promtool()).map(|p| p.check));
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} cases differ from promtool:\n{}",
        mismatches.len(),
        CASES.len(),
        mismatches.join("\n")
    );
    // Every check promtool has is exercised, with many lines in all.
    for c in PROMTOOL_CHECKS {
        assert!(checks_seen.contains(c), "no case exercises {c}");
    }
    assert!(lines > 80, "only {lines} promtool lines");
    eprintln!("{} cases, {lines} promtool lines, all matched", CASES.len());
}

/// promtool 2.42 has no `metric not unique` check (newer promlint does); Strata reports
/// duplicates under its own id, and its other own checks, where promtool is silent.
#[test]
fn strata_only_checks_where_promtool_is_silent() {
    let promtool = require_binary("promtool");
    let case = |n: &str| CASES.iter().find(|(name, _)| *name == n).unwrap().1;
    let own = |n: &str| -> Vec<(String, &'static str)> {
        strata_problems(n, case(n))
            .into_iter()
            .filter(|p| !p.is_promtool())
            .map(|p| (p.metric, p.check))
            .collect()
    };

    assert!(promtool_lines(&promtool, case("duplicates")).is_empty());
    assert_eq!(
        own("duplicates"),
        [
            ("dup".to_string(), check::METRIC_NOT_UNIQUE),
            ("dup_total".to_string(), check::METRIC_NOT_UNIQUE)
        ]
    );
    assert!(promtool_lines(&promtool, case("percent")).is_empty());
    assert_eq!(
        own("percent"),
        [
            ("cpu_usage_percent".to_string(), check::PERCENT),
            ("disk_percentage".to_string(), check::PERCENT)
        ]
    );
    // promlint spells the prefix "mibi": Strata catches mebibytes under its own id.
    assert!(!promtool_lines(&promtool, case("units"))
        .iter()
        .any(|l| l.starts_with("heap_mebibytes ")));
    assert_eq!(
        own("units"),
        [("heap_mebibytes".to_string(), check::PREFIXED_UNIT)]
    );
    // node-exporter's MAC addresses are not IPs; python_info is a gauge with the value 1.
    assert!(own("nodeexporter").is_empty());
    assert!(own("python").is_empty());
}

/// A generated body of many families: name tokens (camelCase, colons, type names,
/// abbreviations, units with and without prefixes), suffixes, types and labels combined, one
/// unit at most per name. Each family starts with its own index token so none collides with
/// another's `_sum`/`_count`/`_bucket` samples.
fn generated_body() -> (String, usize) {
    let heads = ["app", "httpServer", "job:rule", "node"];
    let words = [
        "requests",
        "gauge",
        "counter",
        "ms",
        "sec",
        "MB",
        "histogram",
        "summary",
        "gauge_histogram",
        "us",
        "d",
        "untyped",
    ];
    let units = [
        "",
        "seconds",
        "milliseconds",
        "kilobytes",
        "mebibytes",
        "mibibytes",
        "bits",
        "hours",
        "kelvins",
        "Seconds",
    ];
    let suffixes = ["", "_total", "_count", "_sum", "_bucket", "_info"];
    let types = ["counter", "gauge", "untyped", "", "histogram", "summary"];
    let labels = [
        "",
        "code=\"200\"",
        "statusCode=\"1\"",
        "le=\"1\"",
        "quantile=\"0.5\"",
    ];
    let mut body = String::new();
    let mut n = 0;
    let total = heads.len() * words.len() * units.len() * suffixes.len() * types.len();
    for i in (0..total).step_by(7) {
        let mut k = i;
        let mut pick = |len: usize| {
            let v = k % len;
            k /= len;
            v
        };
        let (h, w, u, s, t) = (
            heads[pick(heads.len())],
            words[pick(words.len())],
            units[pick(units.len())],
            suffixes[pick(suffixes.len())],
            types[pick(types.len())],
        );
        let label = labels[i % labels.len()];
        let unit = if u.is_empty() {
            String::new()
        } else {
            format!("_{u}")
        };
        let name = format!("f{i}_{h}_{w}{unit}{s}");
        if i % 3 != 0 {
            body.push_str(&format!("# HELP {name} Generated.\n"));
        }
        if !t.is_empty() {
            body.push_str(&format!("# TYPE {name} {t}\n"));
        }
        let with = |extra: &str| match (label.is_empty(), extra.is_empty()) {
            (true, true) => String::new(),
            (true, false) => format!("{{{extra}}}"),
            (false, true) => format!("{{{label}}}"),
            (false, false) => format!("{{{label},{extra}}}"),
        };
        match t {
            "histogram" => {
                let le = if label.starts_with("le=") {
                    ""
                } else {
                    "le=\"+Inf\""
                };
                body.push_str(&format!("{name}_bucket{} 1\n", with(le)));
                let plain = if label.starts_with("le=") { "" } else { label };
                let braces = if plain.is_empty() {
                    String::new()
                } else {
                    format!("{{{plain}}}")
                };
                body.push_str(&format!("{name}_sum{braces} 1\n{name}_count{braces} 1\n"));
            }
            "summary" => {
                let q = if label.starts_with("quantile=") {
                    ""
                } else {
                    "quantile=\"0.9\""
                };
                body.push_str(&format!("{name}{} 1\n", with(q)));
                let plain = if label.starts_with("quantile=") {
                    ""
                } else {
                    label
                };
                let braces = if plain.is_empty() {
                    String::new()
                } else {
                    format!("{{{plain}}}")
                };
                body.push_str(&format!("{name}_sum{braces} 1\n{name}_count{braces} 1\n"));
            }
            _ => {
                body.push_str(&format!("{name}{} 1\n", with("")));
                body.push_str(&format!("{name}{} 2\n", with("x=\"2\"")));
            }
        }
        n += 1;
    }
    (body, n)
}

#[test]
fn generated_families_match_promtool() {
    let promtool = require_binary("promtool");
    let (body, families) = generated_body();
    assert!(families > 500, "{families}");
    let want = promtool_lines(&promtool, &body);
    let got = promtool_part(&strata_problems("generated", &body));
    let only_promtool: Vec<&String> = want.iter().filter(|l| !got.contains(l)).collect();
    let only_strata: Vec<&String> = got.iter().filter(|l| !want.contains(l)).collect();
    assert!(
        only_promtool.is_empty() && only_strata.is_empty(),
        "{families} families; only promtool: {only_promtool:#?}\nonly strata: {only_strata:#?}"
    );
    assert_eq!(want, got);
    assert!(want.len() > 1000, "{}", want.len());
    eprintln!(
        "{families} generated families, {} promtool lines, all matched",
        want.len()
    );
}
