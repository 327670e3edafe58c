//! Parser tests: both formats' grammar and errors, value and timestamp forms, metadata,
//! content negotiation, a property test that no input makes the parser panic, and one that
//! the known-series fast path (`next_known`) reads every body exactly as `next_entry` does.

use super::*;
use proptest::prelude::*;

fn samples(body: &str, format: Format) -> Vec<(String, f64, Option<i64>)> {
    let exp = parse(body.as_bytes(), format).unwrap_or_else(|e| panic!("{e}\n{body}"));
    exp.samples
        .iter()
        .map(|s| (s.labels.to_string(), s.value, s.timestamp))
        .collect()
}

fn err(body: &[u8], format: Format) -> ParseError {
    match parse(body, format) {
        Ok(exp) => panic!("accepted {:?}: {exp:?}", String::from_utf8_lossy(body)),
        Err(e) => e,
    }
}

const TEXT: &str = r#"# HELP http_requests_total The total number of HTTP requests.
# TYPE http_requests_total counter
http_requests_total{method="post",code="200"} 1027 1395066363000
http_requests_total{method="post",code="400"}    3 1395066363000

# A normal comment
#also a comment
msdos_file_access_time_seconds{path="C:\\DIR\\FILE.TXT",error="Cannot find file:\n\"FILE.TXT\""} 1.458255915e9
metric_without_timestamp_and_labels 12.47
something_weird{problem="division by zero"} +Inf 3982045
# HELP rpc_duration_seconds A summary of the RPC duration in seconds.
# TYPE rpc_duration_seconds summary
rpc_duration_seconds{quantile="0.5"} 4773
rpc_duration_seconds_sum 1.7560473e+07
rpc_duration_seconds_count 2693
spaced	{ a = "1" , b="2", } 	-Inf 
nan_metric NaN
no_commas{a="1" b="2"} 5
"#;

#[test]
fn text_format_samples() {
    let got = samples(TEXT, Format::PrometheusText);
    let want: Vec<(&str, f64, Option<i64>)> = vec![
        (
            r#"{__name__="http_requests_total", code="200", method="post"}"#,
            1027.0,
            Some(1395066363000),
        ),
        (
            r#"{__name__="http_requests_total", code="400", method="post"}"#,
            3.0,
            Some(1395066363000),
        ),
        (
            r#"{__name__="msdos_file_access_time_seconds", error="Cannot find file:\n\"FILE.TXT\"", path="C:\\DIR\\FILE.TXT"}"#,
            1.458255915e9,
            None,
        ),
        (
            r#"{__name__="metric_without_timestamp_and_labels"}"#,
            12.47,
            None,
        ),
        (
            r#"{__name__="something_weird", problem="division by zero"}"#,
            f64::INFINITY,
            Some(3982045),
        ),
        (
            r#"{__name__="rpc_duration_seconds", quantile="0.5"}"#,
            4773.0,
            None,
        ),
        (
            r#"{__name__="rpc_duration_seconds_sum"}"#,
            1.7560473e7,
            None,
        ),
        (r#"{__name__="rpc_duration_seconds_count"}"#, 2693.0, None),
        (
            r#"{__name__="spaced", a="1", b="2"}"#,
            f64::NEG_INFINITY,
            None,
        ),
    ];
    assert_eq!(got.len(), 11, "{got:?}");
    for (i, (l, v, t)) in want.iter().enumerate() {
        assert_eq!(got[i].0, *l);
        assert_eq!(got[i].1, *v, "{l}");
        assert_eq!(got[i].2, *t, "{l}");
    }
    assert_eq!(got[9].0, r#"{__name__="nan_metric"}"#);
    assert_eq!(got[9].1.to_bits(), NORMAL_NAN_BITS);
    assert_eq!(got[10].0, r#"{__name__="no_commas", a="1", b="2"}"#);
}

#[test]
fn text_format_metadata_and_help_escapes() {
    let body = "# HELP a Line\\nwith \\\\ and \\\" kept\n# TYPE a gauge\n# TYPE b untyped\n# TYPE c histogram\na 1\n";
    let exp = parse(body.as_bytes(), Format::PrometheusText).unwrap();
    let a = &exp.metadata["a"];
    assert_eq!(a.help, "Line\nwith \\ and \\\" kept");
    assert_eq!(a.metric_type, MetricType::Gauge);
    assert_eq!(exp.metadata["b"].metric_type, MetricType::Unknown);
    assert_eq!(exp.metadata["c"].metric_type, MetricType::Histogram);
}

#[test]
fn text_format_streams_borrowed_values() {
    let body = b"m{a=\"plain\",b=\"esc\\\"aped\"} 1\n";
    let mut p = Parser::new(body, Format::PrometheusText);
    let Some(Entry::Sample(s)) = p.next_entry().unwrap() else {
        panic!("no sample")
    };
    assert!(matches!(s.labels[0].1, Cow::Borrowed("plain")));
    assert_eq!(s.labels[1].1, "esc\"aped");
    assert_eq!(s.name, "m");
    assert_eq!(s.line, 1);
    assert!(p.next_entry().unwrap().is_none());
}

#[test]
fn text_format_errors_name_the_line() {
    let cases: &[(&[u8], usize, &str)] = &[
        (b"a 1\nb", 2, "expected value after metric, got EOF"),
        (
            b"a 1\nb 2 -3982045\n",
            2,
            "expected timestamp or new record, got \"-3982045\"",
        ),
        (b"a{b=\n", 1, "expected label value, got linebreak"),
        (b"a\x00{b=\"c\"} 1", 1, "expected value after metric"),
        (b"a 0 1\x00", 1, "expected next entry after timestamp"),
        (b"a 1\nb{c=\"d\"} x\n", 2, "invalid value \"x\""),
        (
            b"a 1\n\nb{1c=\"d\"} 1\n",
            3,
            "expected label name, got \"1c=\\\"d\\\"}\"",
        ),
        (b"b{c=\"d} 1\n", 1, "expected label value"),
        (b"b{c \"d\"} 1\n", 1, "expected equal"),
        (
            b"b{c=\"d\"}\n",
            1,
            "expected value after metric, got linebreak",
        ),
        (b"b 1 -5\n", 1, "expected timestamp or new record"),
        (b"b 1 5 6\n", 1, "expected next entry after timestamp"),
        (b"b 1 99999999999999999999\n", 1, "timestamp"),
        (b"# TYPE a countr\n", 1, "invalid metric type \"countr\""),
        (b"# TYPE 1a counter\n", 1, "expected metric name after TYPE"),
        (b"# HELP #\n", 1, "expected metric name after HELP"),
        (
            b"a 1\n  b 2\n",
            2,
            "invalid metric name \"b\": sample lines must not be indented",
        ),
        (b"{a=\"b\"} 1\n", 1, "expected a valid start token"),
        (b"a 0x10\n", 1, "invalid value"),
        (b"a 1_000\n", 1, "invalid value"),
        (b"a +NaN\n", 1, "invalid value"),
        (b"a 1e400\n", 1, "invalid value"),
        (b"a 1\r\n", 1, "invalid value"),
    ];
    for (body, line, want) in cases {
        let e = err(body, Format::PrometheusText);
        assert_eq!(
            e.line(),
            Some(*line),
            "{:?}: {e}",
            String::from_utf8_lossy(body)
        );
        assert!(
            e.to_string().contains(want),
            "{:?}: {e}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn invalid_utf8_and_duplicates_are_errors() {
    let e = err(b"a 1\nb{c=\"\xff\"} 1\n", Format::PrometheusText);
    assert_eq!(
        e,
        ParseError::InvalidUtf8 {
            line: 2,
            what: "label value"
        }
    );
    let e = err(b"# HELP a \xfe\n", Format::PrometheusText);
    assert_eq!(
        e,
        ParseError::InvalidUtf8 {
            line: 1,
            what: "help text"
        }
    );
    let e = err(
        b"a 1\na{x=\"1\",y=\"2\",x=\"3\"} 1\n",
        Format::PrometheusText,
    );
    assert_eq!(
        e,
        ParseError::DuplicateLabel {
            line: 2,
            name: "x".into()
        }
    );
    let e = err(b"a{__name__=\"b\"} 1\n", Format::PrometheusText);
    assert_eq!(
        e,
        ParseError::DuplicateLabel {
            line: 1,
            name: "__name__".into()
        }
    );
    let e = err(b"a{x=\"1\",x=\"1\"} 1\n# EOF\n", Format::OpenMetrics);
    assert_eq!(
        e,
        ParseError::DuplicateLabel {
            line: 1,
            name: "x".into()
        }
    );
}

#[test]
fn text_format_edge_cases_accepted() {
    // Comments may contain anything and the last comment needs no newline; a NUL byte at
    // an entry start ends the body as in Prometheus's lexer.
    let got = samples(
        "# \u{1F600} \\ comment\na 1\n# TYPE",
        Format::PrometheusText,
    );
    assert_eq!(got.len(), 1);
    // Prometheus appends a newline to the body: the last line needs none.
    let exp = parse(
        b"# HELP m foo\x00bar\nm{a=\"abc\x00\"} 1",
        Format::PrometheusText,
    )
    .unwrap();
    assert_eq!(exp.metadata["m"].help, "foo\u{0}bar");
    assert_eq!(exp.samples[0].labels.get("a"), Some("abc\u{0}"));
    let exp = parse(
        b"# HELP nohelp1\n# HELP nohelp2 \n# \tTYPE t summary\n",
        Format::PrometheusText,
    )
    .unwrap();
    assert_eq!(exp.metadata["nohelp1"].help, "");
    assert_eq!(exp.metadata["nohelp2"].help, "");
    assert_eq!(exp.metadata["t"].metric_type, MetricType::Summary);
    assert_eq!(samples("a 1\n\0garbage", Format::PrometheusText).len(), 1);
    assert_eq!(samples("", Format::PrometheusText).len(), 0);
    let got = samples("a{b=\"multi\nline\"} 1\nc 2\n", Format::PrometheusText);
    assert_eq!(got[0].0, "{__name__=\"a\", b=\"multi\\nline\"}");
    for (v, want) in [
        ("1e3", 1000.0),
        (".5", 0.5),
        ("-0", -0.0),
        ("+Inf", f64::INFINITY),
        ("inf", f64::INFINITY),
        ("-infinity", f64::NEG_INFINITY),
        ("5.", 5.0),
    ] {
        let got = samples(&format!("a {v}\n"), Format::PrometheusText);
        assert_eq!(got[0].1, want, "{v}");
    }
    // Unknown escapes stay as written.
    let got = samples("a{b=\"x\\ty\"} 1\n", Format::PrometheusText);
    assert_eq!(got[0].0, "{__name__=\"a\", b=\"x\\\\ty\"}");
}

const OM: &str = r#"# TYPE go_goroutines gauge
# HELP go_goroutines Number of goroutines that currently exist.
go_goroutines 69
# TYPE request_seconds histogram
# UNIT request_seconds seconds
# HELP request_seconds Request "latency".
request_seconds_bucket{le="0.1"} 8 1520879607.789 # {trace_id="abc"} 0.05 1520879607.7
request_seconds_bucket{le="+Inf"} 10 # {} 2.5
request_seconds_count 10
request_seconds_sum 3.2
request_seconds_created 1520430000.123
# TYPE build info
build_info{version="1.0"} 1
# TYPE door stateset
door{door="open"} 1
door{door="closed"} 0
# TYPE pending unknown
pending{} NaN
ts_negative -1 -1.5
# EOF
"#;

#[test]
fn openmetrics_samples_and_metadata() {
    let exp = parse(OM.as_bytes(), Format::OpenMetrics).unwrap();
    let got: Vec<(String, f64, Option<i64>)> = exp
        .samples
        .iter()
        .map(|s| (s.labels.to_string(), s.value, s.timestamp))
        .collect();
    assert_eq!(got.len(), 11);
    assert_eq!(got[0], ("{__name__=\"go_goroutines\"}".into(), 69.0, None));
    assert_eq!(
        got[1],
        (
            "{__name__=\"request_seconds_bucket\", le=\"0.1\"}".into(),
            8.0,
            Some(1520879607789)
        )
    );
    assert_eq!(
        got[2],
        (
            "{__name__=\"request_seconds_bucket\", le=\"+Inf\"}".into(),
            10.0,
            None
        )
    );
    assert_eq!(
        got[5],
        (
            "{__name__=\"request_seconds_created\"}".into(),
            1520430000.123,
            None
        )
    );
    assert_eq!(got[6].0, "{__name__=\"build_info\", version=\"1.0\"}");
    assert_eq!(got[9].1.to_bits(), NORMAL_NAN_BITS);
    assert_eq!(
        got[10],
        ("{__name__=\"ts_negative\"}".into(), -1.0, Some(-1500))
    );
    let m = &exp.metadata["request_seconds"];
    assert_eq!(
        (m.metric_type, m.unit.as_str(), m.help.as_str()),
        (MetricType::Histogram, "seconds", "Request \"latency\".")
    );
    assert_eq!(exp.metadata["door"].metric_type, MetricType::StateSet);
    assert_eq!(exp.metadata["build"].metric_type, MetricType::Info);
    assert_eq!(
        exp.metadata["go_goroutines"].help,
        "Number of goroutines that currently exist."
    );
}

#[test]
fn openmetrics_errors_name_the_line() {
    let cases: &[(&[u8], usize, &str)] = &[
        (b"a 1\n", 2, "data does not end with # EOF"),
        (b"a 1", 1, "data does not end with # EOF"),
        (b"a 1\n# EOF\nb 2\n", 3, "unexpected data after # EOF"),
        (
            b"a 1\n\n# EOF\n",
            2,
            "expected a valid start token, got linebreak",
        ),
        (
            b"# random comment\n# EOF\n",
            1,
            "expected a valid start token",
        ),
        (b"#EOF\n", 1, "expected a valid start token"),
        (
            b"a{b=\"c\",} 1\n# EOF\n",
            1,
            "expected label name, got \"}\"",
        ),
        (
            b"a{b=\"c\" d=\"e\"} 1\n# EOF\n",
            1,
            "expected comma or brace close",
        ),
        (
            b"a  1\n# EOF\n",
            1,
            "expected value after metric, got \" \"",
        ),
        (b"a\t1\n# EOF\n", 1, "expected value after metric"),
        (b"a 1 NaN\n# EOF\n", 1, "invalid timestamp"),
        (
            b"a 1 1 2\n# EOF\n",
            1,
            "expected next entry after timestamp",
        ),
        (
            b"# UNIT a_bytes seconds\n# EOF\n",
            1,
            "unit not a suffix of metric \"a_bytes\"",
        ),
        (
            b"# TYPE a untyped\n# EOF\n",
            1,
            "invalid metric type \"untyped\"",
        ),
        (b"# HELP a\n# EOF\n", 1, "expected text in HELP"),
        (b"a{b=\"c\nd\"} 1\n# EOF\n", 1, "expected label value"),
        (
            b"a_total 1 # {x=\"y\"}\n# EOF\n",
            1,
            "expected value after exemplar labels",
        ),
        (
            b"a_total 1 # {x=\"y\"} 1 2 3\n# EOF\n",
            1,
            "expected next entry after exemplar timestamp",
        ),
        (
            b"a 1\nb_total 2 # {x=y} 1\n# EOF\n",
            2,
            "expected label value",
        ),
        (
            b"a_total 1 # {x=\"y\"} 1 NaN\n# EOF\n",
            1,
            "invalid exemplar timestamp",
        ),
        (
            b"a_total 1 # {x=\"y\",} 1\n# EOF\n",
            1,
            "expected label name",
        ),
        (
            b"a 1 1 # {x=\"y\"} 1\n# EOF\n",
            1,
            "metric name a does not support exemplars",
        ),
        (b"a 1 1 \n# EOF\n", 1, "expected next entry after timestamp"),
    ];
    for (body, line, want) in cases {
        let e = err(body, Format::OpenMetrics);
        assert_eq!(
            e.line(),
            Some(*line),
            "{:?}: {e}",
            String::from_utf8_lossy(body)
        );
        assert!(
            e.to_string().contains(want),
            "{:?}: {e}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn openmetrics_eof_variants() {
    assert_eq!(samples("a 1\n# EOF", Format::OpenMetrics).len(), 1);
    assert_eq!(samples("# EOF\n", Format::OpenMetrics).len(), 0);
    assert!(parse(b"", Format::OpenMetrics).is_err());
    assert_eq!(
        samples("# UNIT a_seconds \n# EOF\n", Format::OpenMetrics).len(),
        0
    );
}

#[test]
fn content_type_negotiation() {
    let n = |ct: &str| negotiate(ct).unwrap();
    assert_eq!(n("").format, Format::PrometheusText);
    assert_eq!(
        n("text/plain; version=0.0.4; charset=utf-8").format,
        Format::PrometheusText
    );
    assert_eq!(
        n("application/openmetrics-text; version=1.0.0; charset=utf-8").format,
        Format::OpenMetrics
    );
    assert_eq!(
        n("Application/OpenMetrics-Text;version=0.0.1").format,
        Format::OpenMetrics
    );
    assert_eq!(n("application/json").format, Format::PrometheusText);
    let bad = n("text/plain; version");
    assert_eq!(bad.format, Format::PrometheusText);
    assert!(bad.fallback_reason.is_some());
    assert!(n("te xt/plain").fallback_reason.is_some());
    assert!(matches!(
        negotiate("application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"),
        Err(ParseError::UnsupportedContentType(_))
    ));
    assert!(SCRAPE_ACCEPT_HEADER.starts_with("application/openmetrics-text;version=1.0.0,"));
    assert!(SCRAPE_ACCEPT_HEADER.ends_with("text/plain;version=0.0.4;q=0.5,*/*;q=0.1"));
}

fn drain(body: &[u8], format: Format) -> usize {
    Parser::new(body, format).take_while(|r| r.is_ok()).count()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..256)) {
        let n = drain(&body, Format::PrometheusText) + drain(&body, Format::OpenMetrics);
        prop_assert!(n <= 2 * body.len() + 2);
    }

    #[test]
    fn mutated_bodies_never_panic(
        which in 0usize..2,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..8),
    ) {
        let mut body = if which == 0 { TEXT.as_bytes().to_vec() } else { OM.as_bytes().to_vec() };
        for (at, byte, op) in edits {
            let i = at % (body.len() + 1);
            match op {
                0 => body.insert(i, byte),
                1 if i < body.len() => { body.remove(i); }
                _ if i < body.len() => body[i] = byte,
                _ => body.push(byte),
            }
        }
        for format in [Format::PrometheusText, Format::OpenMetrics] {
            // Either a result or an error with a line inside the body.
            match parse(&body, format) {
                Ok(exp) => prop_assert!(exp.samples.len() <= body.len()),
                Err(e) => {
                    let lines = body.iter().filter(|&&b| b == b'\n').count() + 1;
                    prop_assert!(e.line().is_some_and(|l| l >= 1 && l <= lines), "{e}");
                }
            }
        }
    }

    #[test]
    fn generated_samples_round_trip(
        name in "[a-zA-Z_:][a-zA-Z0-9_:]{0,12}",
        lvals in proptest::collection::vec("[ -~]{0,8}", 0..4),
        value in -1e12f64..1e12,
        ts in proptest::option::of(0i64..4_000_000_000_000),
    ) {
        let mut text = format!("{name}{{");
        for (i, v) in lvals.iter().enumerate() {
            let esc = v.replace('\\', "\\\\").replace('"', "\\\"");
            text.push_str(&format!("l{i}=\"{esc}\","));
        }
        text.push_str(&format!("}} {value}"));
        if let Some(ts) = ts { text.push_str(&format!(" {ts}")); }
        text.push('\n');
        let exp = parse(text.as_bytes(), Format::PrometheusText).map_err(|e| TestCaseError::fail(format!("{e}: {text}")))?;
        prop_assert_eq!(exp.samples.len(), 1);
        let s = &exp.samples[0];
        prop_assert_eq!(s.value, value);
        prop_assert_eq!(s.timestamp, ts);
        prop_assert_eq!(s.labels.metric_name(), Some(name.as_str()));
        for (i, v) in lvals.iter().enumerate() {
            let got = s.labels.get(&format!("l{i}")).unwrap_or("");
            prop_assert_eq!(got, v.as_str());
        }
    }

    #[test]
    fn known_series_fast_path_reads_like_the_full_parser(
        om in any::<bool>(),
        first in proptest::collection::vec(line_strategy(), 0..12),
        second in proptest::collection::vec(line_strategy(), 0..12),
    ) {
        let format = if om { Format::OpenMetrics } else { Format::PrometheusText };
        let body = |lines: &[String]| {
            let mut b = lines.concat();
            if om { b.push_str("# EOF\n"); }
            b
        };
        let (first, second) = (body(&first), body(&second));
        // Series texts of the first body, with the labels they stand for.
        let mut known: Vec<(Vec<u8>, String)> = Vec::new();
        let mut p = Parser::new(first.as_bytes(), format);
        while let Ok(Some(e)) = p.next_entry() {
            if let (Entry::Sample(s), Some(series)) = (e, p.last_series()) {
                known.push((series.to_vec(), s.to_labels().to_string()));
            }
        }
        prop_assert_eq!(events(second.as_bytes(), format, &[]), events(second.as_bytes(), format, &known));
    }
}

/// A line built from fragments that recur across bodies with different separators, values
/// and suffixes, valid or not in either format.
fn line_strategy() -> impl Strategy<Value = String> {
    let series = prop::sample::select(vec![
        "a",
        "a{x=\"1\"}",
        "a{x=\"1\",}",
        "a{x=\"1\",y=\"2\"}",
        "a {x=\"1\"}",
        "b_total{x=\"q\\\"r\"}",
        "b_total{x=\"line\nbreak\"}",
        "c{x=\"1\",x=\"2\"}",
        "c{__name__=\"z\"}",
        "d{}",
        "a{x=\"1\"",
        "e\u{e9}",
        "a{x=\"\u{e9}\"}",
    ]);
    let sep = prop::sample::select(vec![" ", "  ", "\t", "", " \t"]);
    let value = prop::sample::select(vec![
        "1",
        "2.5",
        "NaN",
        "+Inf",
        "x",
        "{",
        "",
        "1 123",
        "1 1.5",
        "1  7 ",
        "3 # {t=\"x\"} 1",
        "4 # {t=\"x\"} 1 2",
        "\u{e9}",
        "\u{0}",
    ]);
    let tail = prop::sample::select(vec![
        "\n",
        "\n",
        "\n",
        "",
        "\n\n",
        "\n# HELP a h\n",
        "\n# TYPE a counter\n",
    ]);
    (series, sep, value, tail).prop_map(|(s, sep, v, t)| format!("{s}{sep}{v}{t}"))
}

/// Everything a parse yields, as comparable text; `known` series texts are tried first at
/// every line, the way the scrape cache does.
fn events(body: &[u8], format: Format, known: &[(Vec<u8>, String)]) -> Vec<String> {
    let mut out = Vec::new();
    let mut p = Parser::new(body, format);
    'lines: loop {
        for (series, labels) in known {
            match p.next_known(series) {
                Ok(Some((v, ts))) => {
                    out.push(format!("{labels} {:x} {ts:?}", v.to_bits()));
                    continue 'lines;
                }
                Ok(None) => {}
                Err(e) => {
                    out.push(format!("error {e}"));
                    break 'lines;
                }
            }
        }
        match p.next_entry() {
            Ok(Some(Entry::Sample(s))) => out.push(format!(
                "{} {:x} {:?}",
                s.to_labels(),
                s.value.to_bits(),
                s.timestamp
            )),
            Ok(Some(e)) => out.push(format!("{e:?}")),
            Ok(None) => break,
            Err(e) => {
                out.push(format!("error {e}"));
                break;
            }
        }
    }
    out
}
