//! Reading sample values out of Prometheus text exposition, for asserting on metrics.

use prometheus_client::registry::Registry;

/// The text exposition of a registry.
pub fn metrics_text(reg: &Registry) -> String {
    let mut s = String::new();
    prometheus_client::encoding::text::encode(&mut s, reg).expect("encode the registry");
    s
}

/// The value of the sample whose series is exactly `series` (a name, or a name with all its
/// labels as exposed, e.g. `strata_role_running{role="compactor"}`); None when there is none.
pub fn metric_value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let rest = l.strip_prefix(series)?;
            rest.starts_with([' ', '\t'])
                .then(|| rest.split_whitespace().next())
                .flatten()
        })
        .and_then(|v| v.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::metric_value;

    #[test]
    fn exact_series_only_and_the_value_not_the_timestamp() {
        let text = "# TYPE a counter\na_total 3\na_total_extra 9\nb{x=\"1 2\"} 4 1700000000\n";
        assert_eq!(metric_value(text, "a_total"), Some(3.0));
        assert_eq!(metric_value(text, "b{x=\"1 2\"}"), Some(4.0));
        assert_eq!(metric_value(text, "a"), None);
        assert_eq!(metric_value(text, "b"), None);
    }
}
