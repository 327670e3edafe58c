use super::*;

fn lines(body: &str, format: Format) -> Vec<String> {
    lint_body(body.as_bytes(), format)
        .unwrap()
        .iter()
        .map(|p| p.to_string())
        .collect()
}

fn text(body: &str) -> Vec<String> {
    lines(body, Format::PrometheusText)
}

fn checks(body: &str, format: Format) -> Vec<(String, &'static str)> {
    lint_body(body.as_bytes(), format)
        .unwrap()
        .into_iter()
        .map(|p| (p.metric, p.check))
        .collect()
}

#[test]
fn clean_body_has_no_problems() {
    let body = "# HELP http_requests_total Requests.\n# TYPE http_requests_total counter\n\
                http_requests_total{code=\"200\"} 3\n\
                # HELP rpc_duration_seconds Latency.\n# TYPE rpc_duration_seconds histogram\n\
                rpc_duration_seconds_bucket{le=\"1\"} 1\nrpc_duration_seconds_bucket{le=\"+Inf\"} 1\n\
                rpc_duration_seconds_sum 0.5\nrpc_duration_seconds_count 1\n";
    assert!(text(body).is_empty(), "{:?}", text(body));
}

#[test]
fn promtool_wording_and_order() {
    // Observed with promtool 2.42 on the same body.
    let body = "# TYPE fooBar counter\nfooBar{aB=\"1\"} 1\nfooBar{aB=\"2\"} 1\n";
    assert_eq!(
        text(body),
        [
            "fooBar counter metrics should have \"_total\" suffix",
            "fooBar label names should be written in 'snake_case' not 'camelCase'",
            "fooBar label names should be written in 'snake_case' not 'camelCase'",
            "fooBar metric names should be written in 'snake_case' not 'camelCase'",
            "fooBar no help text",
        ]
    );
}

#[test]
fn base_units_as_promtool_finds_them() {
    assert_eq!(
        non_base_unit("a_milliseconds"),
        Some(("milliseconds".into(), "seconds"))
    );
    assert_eq!(
        non_base_unit("b_seconds_milliseconds"),
        Some(("milliseconds".into(), "seconds"))
    );
    assert_eq!(non_base_unit("c_seconds"), None);
    assert_eq!(non_base_unit("d_Milliseconds"), None);
    assert_eq!(
        non_base_unit("e_mibibytes"),
        Some(("mibibytes".into(), "bytes"))
    );
    assert_eq!(non_base_unit("f_mebibytes"), None);
    // ... which Strata reports under its own id.
    assert_eq!(
        missed_prefixed_unit("f_mebibytes"),
        Some(("mebibytes", "bytes"))
    );
    assert_eq!(
        missed_prefixed_unit("f_exaseconds_total"),
        Some(("exaseconds", "seconds"))
    );
    assert_eq!(missed_prefixed_unit("f_mebi_bytes"), None);
    assert_eq!(
        non_base_unit("g_kelvins"),
        Some(("kelvins".into(), "kelvin"))
    );
    assert_eq!(
        non_base_unit("h_kilograms"),
        Some(("kilograms".into(), "grams"))
    );
}

#[test]
fn broad_type_in_name_and_abbreviations_counted() {
    assert_eq!(
        types_in_name("foo_gauge_histogram"),
        ["gauge", "histogram", "gauge_histogram"]
    );
    assert_eq!(types_in_name("foo_untyped"), Vec::<&str>::new());
    assert_eq!(types_in_name("a_Gauge"), ["gauge"]);
    assert_eq!(abbreviated_units("f_ms_sec_s"), 3);
    assert_eq!(abbreviated_units("e_MS"), 1);
    assert_eq!(abbreviated_units("seconds"), 0);
}

#[test]
fn families_grouped_like_go_text_parser() {
    // Untyped: each suffix is its own family, and untyped families skip the type rules.
    let body = "foo_count 1\nfoo_sum 1\nfoo_total 1\n";
    assert_eq!(
        text(body),
        [
            "foo_count no help text",
            "foo_sum no help text",
            "foo_total no help text"
        ]
    );
    // A HELP for `foo_bucket` after `TYPE foo histogram` belongs to `foo`.
    let body =
        "# TYPE foo histogram\n# HELP foo_bucket h\nfoo_bucket{le=\"+Inf\"} 1\nfoo_count 1\n";
    assert!(text(body).is_empty());
    // A summary's `le` is counted once per child, not per line.
    let body = "# HELP z z\n# TYPE z summary\nz{quantile=\"0.5\",le=\"1\"} 1\nz_sum{le=\"1\"} 1\nz_count{le=\"1\"} 1\n";
    assert_eq!(
        text(body),
        ["z non-histogram metrics should not have \"le\" label"]
    );
    // Families without samples are not reported; blank help is no help.
    let body = "# HELP only x\n# TYPE only gauge\n# HELP g   \ng 1\n";
    assert_eq!(text(body), ["g no help text"]);
}

#[test]
fn duplicates_reported_under_own_id() {
    let body = "# HELP g x\n# TYPE g gauge\ng{a=\"1\",b=\"2\"} 1\ng{b=\"2\",a=\"1\"} 2\n";
    let p = lint_body(body.as_bytes(), Format::PrometheusText).unwrap();
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].check, check::METRIC_NOT_UNIQUE);
    assert_eq!(p[0].text, "metric not unique");
    assert!(!p[0].is_promtool());
    // A histogram's lines with the same labels are one child, not duplicates.
    let body = "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n";
    assert!(text(body).is_empty());
}

#[test]
fn openmetrics_families_and_units() {
    let body = "# TYPE req counter\n# HELP req Requests.\nreq_total 1\nreq_created 1\n\
                # TYPE build info\n# HELP build Build.\nbuild_info{version=\"1\"} 1\n\
                # TYPE lat_seconds histogram\n# UNIT lat_seconds seconds\n# HELP lat_seconds L.\n\
                lat_seconds_bucket{le=\"+Inf\"} 1\nlat_seconds_count 1\nlat_seconds_sum 1\n# EOF\n";
    let found = lines(body, Format::OpenMetrics);
    assert!(found.is_empty(), "{found:?}");
    let body = "# TYPE disk_usage_percent gauge\n# HELP disk_usage_percent D.\ndisk_usage_percent 1\n# EOF\n";
    assert_eq!(
        checks(body, Format::OpenMetrics),
        [("disk_usage_percent".to_string(), check::PERCENT)]
    );
}

#[test]
fn unit_suffix_checked_on_streamed_entries() {
    // The OpenMetrics parser refuses such a body; a caller streaming entries still gets it.
    let mut l = Linter::new(Format::OpenMetrics);
    l.push(&Entry::Type {
        family: "lat",
        metric_type: MetricType::Gauge,
    });
    l.push(&Entry::Help {
        family: "lat",
        help: "L".into(),
    });
    l.push(&Entry::Unit {
        family: "lat",
        unit: "seconds",
    });
    l.push(&Entry::Sample(SampleEntry {
        name: "lat",
        labels: vec![],
        value: 1.0,
        timestamp: None,
        line: 4,
    }));
    let p = l.finish();
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].check, check::UNIT_NOT_SUFFIX);
    assert_eq!(
        p[0].text,
        "unit \"seconds\" should be a suffix of the metric name (\"_seconds\")"
    );
}

#[test]
fn info_metrics() {
    let body = "# HELP a_info x\n# TYPE a_info counter\na_info 1\n\
                # HELP b_info x\n# TYPE b_info gauge\nb_info{v=\"1\"} 2\n\
                # HELP c_info x\n# TYPE c_info gauge\nc_info 1\n";
    let p = lint_body(body.as_bytes(), Format::PrometheusText).unwrap();
    let info: Vec<String> = p
        .iter()
        .filter(|p| p.check == check::INFO_METRIC)
        .map(|p| p.to_string())
        .collect();
    assert_eq!(
        info,
        [
            "a_info \"_info\" metrics should be gauges (or OpenMetrics info), not counter",
            "b_info \"_info\" metrics should always have the value 1",
        ]
    );
}

#[test]
fn unbounded_label_values_once_per_label() {
    assert_eq!(
        unbounded_shape("123e4567-e89b-12d3-a456-426614174000"),
        Some(ValueShape::Uuid)
    );
    assert_eq!(unbounded_shape("10.0.0.1"), Some(ValueShape::Ip));
    assert_eq!(unbounded_shape("10.0.0.1:9100"), Some(ValueShape::Ip));
    assert_eq!(unbounded_shape("fe80::1"), Some(ValueShape::Ip));
    assert_eq!(unbounded_shape("[::1]:80"), Some(ValueShape::Ip));
    assert_eq!(unbounded_shape("bob@example.com"), Some(ValueShape::Email));
    for v in ["GET", "200", "1.5", "eth0", "a@b", "abc-def", "2024-01-01"] {
        assert_eq!(unbounded_shape(v), None, "{v}");
    }
    let body = "# HELP r_total x\n# TYPE r_total counter\n\
                r_total{id=\"123e4567-e89b-12d3-a456-426614174000\",peer=\"10.0.0.1\"} 1\n\
                r_total{id=\"223e4567-e89b-12d3-a456-426614174000\",peer=\"10.0.0.2\"} 1\n";
    let p = lint_body(body.as_bytes(), Format::PrometheusText).unwrap();
    let texts: Vec<&str> = p.iter().map(|p| p.text.as_str()).collect();
    assert_eq!(
        texts,
        [
            "label \"id\" has values that look unbounded (UUIDs); keep label values to a small fixed set",
            "label \"peer\" has values that look unbounded (IP addresses); keep label values to a small fixed set",
        ]
    );
}

#[test]
fn type_conflicts_across_targets() {
    let decls = [
        ("a:9100", "up_total", MetricType::Counter),
        ("b:9100", "up_total", MetricType::Gauge),
        ("c:9100", "up_total", MetricType::Counter),
        ("a:9100", "x", MetricType::Gauge),
        ("b:9100", "x", MetricType::Unknown),
    ];
    let p = type_conflicts(&decls);
    assert_eq!(p.len(), 1);
    assert_eq!(
        p[0].to_string(),
        "up_total declared with different types: counter by a:9100, c:9100; gauge by b:9100"
    );
    assert_eq!(p[0].check, check::TYPE_CONFLICT);
}

#[test]
fn malformed_body_is_an_error() {
    assert!(lint_body(b"foo{", Format::PrometheusText).is_err());
}
