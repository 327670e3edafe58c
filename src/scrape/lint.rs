//! Naming lint for one scrape body: the problems `promtool check metrics` reports, with its
//! exact wording, plus the checks promtool lacks (issue #19, `reference/metrics-hygiene.md` §2
//! and §5 item 6). In: the [`Entry`]s the scrape parser yields, one by one ([`Linter`]) or a
//! whole body ([`lint_body`]). Out: [`Problem`]s `{metric, check, text}`, sorted by metric name
//! and then text as promtool prints them. Pure: no I/O, no clock, no state beyond one body
//! (the cross-target TYPE check is [`type_conflicts`], fed by the caller).
//!
//! The promlint rules are those of the promtool shipped with Prometheus 2.42 (its vendored
//! client_golang `testutil/promlint`), established by experiment against `/usr/bin/promtool`
//! and held to it by `integration/lint_vs_promtool.rs`: `no help text` (a missing or blank
//! HELP); `use base unit "<base>" instead of "<unit>"` (a name token that is a known unit, or a
//! metric prefix plus one, mapped to its base unit); `"_total"` only on counters; `_bucket`,
//! `_count`, `_sum` suffixes and `le`/`quantile` labels reserved to histograms and summaries
//! (untyped families exempt from both); `metric name should not include type '<t>'` (any of
//! counter, gauge, histogram, summary, gauge_histogram as `_t_` or a `_t` suffix: 2.42 has the
//! older, broader rule, not only the family's own type); no `:`; snake_case metric and label
//! names (once per label per child, as promtool counts); no abbreviated units. Families are
//! grouped as Go's text parser groups them (`foo_sum`/`foo_count`/`foo_bucket` join an earlier
//! summary or histogram `foo`; everything else is its own family; families without samples are
//! dropped). Promtool 2.42 has no `metric not unique` check (newer promlint does): Strata
//! reports it under its own id, outside [`PROMTOOL_CHECKS`].
//!
//! Strata's additions: an OpenMetrics `UNIT` that is not a `_`-suffix of the family name;
//! units with a prefix promlint misses (`mebibytes`, `exabytes`); `percent` in a name (use a `ratio`, 0–1); an `_info` metric that is not a gauge (or an
//! OpenMetrics info) or whose value is not 1; label values shaped like UUIDs, IP addresses or
//! e-mail addresses (unbounded: reported once per label name and family); the same family
//! declared with different TYPEs by different targets ([`type_conflicts`]).

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, SocketAddr};

use super::parser::{Entry, Format, MetricType, ParseError, Parser, SampleEntry};

/// Stable ids of the checks, for `strata_target_lint_problems{check}` and the targets API.
pub mod check {
    pub const NO_HELP: &str = "no_help";
    pub const BASE_UNIT: &str = "base_unit";
    pub const COUNTER_TOTAL_SUFFIX: &str = "counter_total_suffix";
    pub const HISTOGRAM_SUMMARY_RESERVED: &str = "histogram_summary_reserved";
    pub const TYPE_IN_NAME: &str = "type_in_name";
    pub const COLON_IN_NAME: &str = "colon_in_name";
    pub const CAMEL_CASE: &str = "camel_case";
    pub const ABBREVIATED_UNIT: &str = "abbreviated_unit";
    /// promlint's ninth check, newer than the promtool of Prometheus 2.42.
    pub const METRIC_NOT_UNIQUE: &str = "metric_not_unique";
    pub const UNIT_NOT_SUFFIX: &str = "unit_not_suffix";
    pub const PERCENT: &str = "percent";
    /// A unit with a prefix promlint misses (`mebi`, `exbi`, `exa`).
    pub const PREFIXED_UNIT: &str = "prefixed_unit";
    pub const INFO_METRIC: &str = "info_metric";
    pub const UNBOUNDED_LABEL_VALUES: &str = "unbounded_label_values";
    pub const TYPE_CONFLICT: &str = "type_conflict";
}

/// The checks `promtool check metrics` (Prometheus 2.42) performs, with its wording.
pub const PROMTOOL_CHECKS: &[&str] = &[
    check::NO_HELP,
    check::BASE_UNIT,
    check::COUNTER_TOTAL_SUFFIX,
    check::HISTOGRAM_SUMMARY_RESERVED,
    check::TYPE_IN_NAME,
    check::COLON_IN_NAME,
    check::CAMEL_CASE,
    check::ABBREVIATED_UNIT,
];

/// One naming problem of one metric family.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct Problem {
    /// The family name as promtool prints it (for OpenMetrics counters and infos, the name
    /// the samples carry: `foo_total`, `foo_info`).
    pub metric: String,
    /// A short stable id, one of [`check`].
    pub check: &'static str,
    pub text: String,
}

impl Problem {
    fn new(metric: &str, check: &'static str, text: impl Into<String>) -> Problem {
        Problem {
            metric: metric.to_string(),
            check,
            text: text.into(),
        }
    }

    /// Whether promtool 2.42 reports this problem too (same wording).
    pub fn is_promtool(&self) -> bool {
        PROMTOOL_CHECKS.contains(&self.check)
    }
}

impl std::fmt::Display for Problem {
    /// promtool's line: `<metric> <text>`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.metric, self.text)
    }
}

/// Lints a whole body. A body the parser refuses is an error, as it fails the scrape.
pub fn lint_body(body: &[u8], format: Format) -> Result<Vec<Problem>, ParseError> {
    let mut parser = Parser::new(body, format);
    let mut linter = Linter::new(format);
    while let Some(entry) = parser.next_entry()? {
        linter.push(&entry);
    }
    Ok(linter.finish())
}

/// What an unbounded-looking label value looks like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueShape {
    Uuid,
    Ip,
    Email,
}

impl ValueShape {
    fn as_str(self) -> &'static str {
        match self {
            ValueShape::Uuid => "UUIDs",
            ValueShape::Ip => "IP addresses",
            ValueShape::Email => "e-mail addresses",
        }
    }
}

/// One family as the linter accumulates it.
#[derive(Debug, Default)]
struct Family {
    name: String,
    metric_type: MetricType,
    help: Option<String>,
    unit: Option<String>,
    /// Hashes of the label sets (bar `le`/`quantile`) of the children (promtool's `Metric`s)
    /// of a histogram, a summary or any OpenMetrics family; in the text format any other
    /// sample line is a child of its own.
    children: HashSet<u64>,
    /// Hashes of the series (name and labels) seen, for duplicates.
    series: HashSet<u64>,
    duplicate: bool,
    camel_labels: usize,
    le_labels: usize,
    quantile_labels: usize,
    info_value_not_one: bool,
    /// Label names whose values look unbounded, in the order found.
    unbounded: Vec<(String, ValueShape)>,
    samples: usize,
}

/// Lints one body entry by entry; [`Linter::finish`] gives the problems.
#[derive(Debug)]
pub struct Linter {
    format: Format,
    families: Vec<Family>,
    by_name: HashMap<String, usize>,
}

impl Linter {
    pub fn new(format: Format) -> Linter {
        Linter {
            format,
            families: Vec::new(),
            by_name: HashMap::new(),
        }
    }

    /// Takes the next entry of the body.
    pub fn push(&mut self, entry: &Entry<'_>) {
        match entry {
            Entry::Help { family, help } => {
                let i = self.resolve(family);
                let f = &mut self.families[i];
                if f.help.is_none() {
                    f.help = Some(help.to_string());
                }
            }
            Entry::Type {
                family,
                metric_type,
            } => {
                let i = self.resolve(family);
                let f = &mut self.families[i];
                if f.metric_type == MetricType::Unknown {
                    f.metric_type = *metric_type;
                }
            }
            Entry::Unit { family, unit } => {
                let i = self.resolve(family);
                let f = &mut self.families[i];
                if f.unit.is_none() {
                    f.unit = Some(unit.to_string());
                }
            }
            Entry::Sample(s) => {
                let i = self.resolve(s.name);
                add_sample(&mut self.families[i], s, self.format);
            }
        }
    }

    /// The problems of the body, sorted by metric and text as promtool prints them.
    pub fn finish(self) -> Vec<Problem> {
        let mut out = Vec::new();
        for f in self.families.iter().filter(|f| f.samples > 0) {
            lint_family(f, self.format, &mut out);
        }
        out.sort_by(|a, b| (&a.metric, &a.text).cmp(&(&b.metric, &b.text)));
        out
    }

    /// The family a name belongs to, created (untyped) when none fits: the name itself, else
    /// for the text format an earlier summary (`_sum`, `_count`) or histogram (`_sum`,
    /// `_count`, `_bucket`) it is a sample of, as Go's text parser decides; for OpenMetrics
    /// the family whose type has that sample suffix.
    fn resolve(&mut self, name: &str) -> usize {
        if let Some(&i) = self.by_name.get(name) {
            return i;
        }
        if let Some(i) = self.owner(name) {
            return i;
        }
        let i = self.families.len();
        self.families.push(Family {
            name: name.to_string(),
            ..Family::default()
        });
        self.by_name.insert(name.to_string(), i);
        i
    }

    fn owner(&self, name: &str) -> Option<usize> {
        let typed = |base: &str, types: &[MetricType]| {
            let &i = self.by_name.get(base)?;
            types.contains(&self.families[i].metric_type).then_some(i)
        };
        let strip = |suffix: &str| name.strip_suffix(suffix);
        use MetricType::*;
        match self.format {
            Format::PrometheusText => {
                let summary = strip("_sum").or_else(|| strip("_count"));
                if let Some(i) = summary.and_then(|b| typed(b, &[Summary])) {
                    return Some(i);
                }
                let histogram = summary.or_else(|| strip("_bucket"));
                histogram.and_then(|b| typed(b, &[Histogram]))
            }
            Format::OpenMetrics => {
                let suffixes: [(&str, &[MetricType]); 8] = [
                    ("_total", &[Counter]),
                    ("_created", &[Counter, Histogram, Summary]),
                    ("_bucket", &[Histogram, GaugeHistogram]),
                    ("_count", &[Histogram, Summary]),
                    ("_sum", &[Histogram, Summary]),
                    ("_gcount", &[GaugeHistogram]),
                    ("_gsum", &[GaugeHistogram]),
                    ("_info", &[Info]),
                ];
                suffixes
                    .iter()
                    .find_map(|(s, types)| strip(s).and_then(|b| typed(b, types)))
            }
        }
    }
}

fn add_sample(f: &mut Family, s: &SampleEntry<'_>, format: Format) {
    f.samples += 1;
    // Go's text parser makes one child per line, except for histograms and summaries; an
    // OpenMetrics family's samples with the same labels (`_total` and `_created`) are one.
    let grouped = format == Format::OpenMetrics
        || matches!(f.metric_type, MetricType::Histogram | MetricType::Summary);
    let skipped = match f.metric_type {
        MetricType::Histogram | MetricType::GaugeHistogram => Some("le"),
        MetricType::Summary => Some("quantile"),
        _ => None,
    };
    let mut all: Vec<(&str, &str)> = s.labels.iter().map(|(n, v)| (*n, v.as_ref())).collect();
    all.sort_unstable();
    if !f.series.insert(hash_of(&(s.name, &all))) {
        f.duplicate = true;
    }
    let labels: Vec<(&str, &str)> = all
        .into_iter()
        .filter(|(n, _)| Some(*n) != skipped)
        .collect();
    let new_child = !grouped || f.children.insert(hash_of(&labels));
    if new_child {
        for (n, _) in &labels {
            f.camel_labels += usize::from(has_camel_case(n));
            f.le_labels += usize::from(*n == "le");
            f.quantile_labels += usize::from(*n == "quantile");
        }
    }
    if (f.metric_type == MetricType::Info || s.name.ends_with("_info")) && s.value != 1.0 {
        f.info_value_not_one = true;
    }
    for (n, v) in &labels {
        if f.unbounded.iter().any(|(u, _)| u == n) {
            continue;
        }
        if let Some(shape) = unbounded_shape(v) {
            f.unbounded.push((n.to_string(), shape));
        }
    }
}

fn hash_of(v: &impl Hash) -> u64 {
    let mut h = DefaultHasher::new();
    v.hash(&mut h);
    h.finish()
}

/// The name promlint would see for a family and the type it would judge it by: OpenMetrics
/// counters and infos are exposed as `foo_total` and `foo_info`, an info reads as a gauge, a
/// gauge histogram as a histogram and a state set as a gauge.
fn exposed(f: &Family, format: Format) -> (String, MetricType) {
    match (format, f.metric_type) {
        (Format::OpenMetrics, MetricType::Counter) => (format!("{}_total", f.name), f.metric_type),
        (Format::OpenMetrics, MetricType::Info) => (format!("{}_info", f.name), MetricType::Gauge),
        (_, MetricType::GaugeHistogram) => (f.name.clone(), MetricType::Histogram),
        (_, MetricType::StateSet | MetricType::Info) => (f.name.clone(), MetricType::Gauge),
        (_, t) => (f.name.clone(), t),
    }
}

fn lint_family(f: &Family, format: Format, out: &mut Vec<Problem>) {
    let (name, t) = exposed(f, format);
    let name = name.as_str();
    let mut add = |check: &'static str, text: String| out.push(Problem::new(name, check, text));
    if f.help.as_deref().is_none_or(is_blank_help) {
        add(check::NO_HELP, "no help text".into());
    }
    if let Some((unit, base)) = non_base_unit(name) {
        add(
            check::BASE_UNIT,
            format!("use base unit {base:?} instead of {unit:?}"),
        );
    }
    if let Some(text) = counter_suffix(name, t) {
        add(check::COUNTER_TOTAL_SUFFIX, text.into());
    }
    for text in reserved_suffixes(name, t) {
        add(check::HISTOGRAM_SUMMARY_RESERVED, text.into());
    }
    if t != MetricType::Histogram && t != MetricType::Unknown {
        for _ in 0..f.le_labels {
            add(
                check::HISTOGRAM_SUMMARY_RESERVED,
                r#"non-histogram metrics should not have "le" label"#.into(),
            );
        }
    }
    if t != MetricType::Summary && t != MetricType::Unknown {
        for _ in 0..f.quantile_labels {
            add(
                check::HISTOGRAM_SUMMARY_RESERVED,
                r#"non-summary metrics should not have "quantile" label"#.into(),
            );
        }
    }
    for typ in types_in_name(name) {
        add(
            check::TYPE_IN_NAME,
            format!("metric name should not include type '{typ}'"),
        );
    }
    if name.contains(':') {
        add(
            check::COLON_IN_NAME,
            "metric names should not contain ':'".into(),
        );
    }
    if has_camel_case(name) {
        add(
            check::CAMEL_CASE,
            "metric names should be written in 'snake_case' not 'camelCase'".into(),
        );
    }
    for _ in 0..f.camel_labels {
        add(
            check::CAMEL_CASE,
            "label names should be written in 'snake_case' not 'camelCase'".into(),
        );
    }
    for _ in 0..abbreviated_units(name) {
        add(
            check::ABBREVIATED_UNIT,
            "metric names should not contain abbreviated units".into(),
        );
    }
    if f.duplicate {
        add(check::METRIC_NOT_UNIQUE, "metric not unique".into());
    }
    // Strata's own checks.
    if let Some(unit) = f.unit.as_deref().filter(|u| !u.is_empty()) {
        if !is_name_suffix(&f.name, unit) {
            add(
                check::UNIT_NOT_SUFFIX,
                format!("unit {unit:?} should be a suffix of the metric name (\"_{unit}\")"),
            );
        }
    }
    if let Some((unit, base)) = missed_prefixed_unit(name) {
        add(
            check::PREFIXED_UNIT,
            format!("use base unit {base:?} instead of {unit:?}"),
        );
    }
    if let Some(token) = percent_token(name) {
        add(
            check::PERCENT,
            format!("use a \"ratio\" (0 to 1) instead of {token:?}"),
        );
    }
    for text in info_problems(name, f.metric_type, f.info_value_not_one) {
        add(check::INFO_METRIC, text);
    }
    for (label, shape) in &f.unbounded {
        add(
            check::UNBOUNDED_LABEL_VALUES,
            format!(
                "label {label:?} has values that look unbounded ({}); keep label values to a small fixed set",
                shape.as_str()
            ),
        );
    }
}

/// promtool reads a HELP whose text is empty after the leading blanks as no help.
fn is_blank_help(help: &str) -> bool {
    help.trim_start_matches([' ', '\t']).is_empty()
}

/// Base units and, for other units, the base unit they should be converted to.
const UNITS: &[(&str, &str)] = &[
    ("amperes", "amperes"),
    ("bytes", "bytes"),
    ("celsius", "celsius"),
    ("grams", "grams"),
    ("joules", "joules"),
    ("kelvin", "kelvin"),
    ("meters", "meters"),
    ("metres", "metres"),
    ("seconds", "seconds"),
    ("volts", "volts"),
    ("minutes", "seconds"),
    ("hours", "seconds"),
    ("days", "seconds"),
    ("weeks", "seconds"),
    ("kelvins", "kelvin"),
    ("fahrenheit", "celsius"),
    ("rankine", "celsius"),
    ("inches", "meters"),
    ("yards", "meters"),
    ("miles", "meters"),
    ("bits", "bytes"),
    ("calories", "joules"),
    ("pounds", "grams"),
    ("ounces", "grams"),
];

/// Metric prefixes promlint knows ("mibi" as it spells it: `mebibytes` is not recognised).
const UNIT_PREFIXES: &[&str] = &[
    "pico", "nano", "micro", "milli", "centi", "deci", "deca", "hecto", "kilo", "kibi", "mega",
    "mibi", "giga", "gibi", "tera", "tebi", "peta", "pebi",
];

/// A `_`-token of a name that is a unit (possibly prefixed) other than a base unit:
/// `(unit, base)`. promtool looks unit by unit, prefixed forms before the bare one, so
/// `foo_seconds_milliseconds` reports `milliseconds`; its unit order is Go's random map order,
/// so for names with two different units Strata takes the first in [`UNITS`] where promtool
/// answers either.
fn non_base_unit(name: &str) -> Option<(String, &'static str)> {
    let tokens: Vec<&str> = name.split('_').collect();
    for &(unit, base) in UNITS {
        for prefix in UNIT_PREFIXES.iter().chain(std::iter::once(&"")) {
            let candidate = format!("{prefix}{unit}");
            if tokens.contains(&candidate.as_str()) {
                return (candidate != base).then_some((candidate, base));
            }
        }
    }
    None
}

/// A token promlint's prefix list misses (it spells `mibi` for `mebi`): `(unit, base)`.
fn missed_prefixed_unit(name: &str) -> Option<(&str, &'static str)> {
    name.split('_').find_map(|token| {
        let rest = ["mebi", "exbi", "exa"]
            .iter()
            .find_map(|p| token.strip_prefix(p))?;
        UNITS
            .iter()
            .find(|(unit, _)| *unit == rest)
            .map(|&(_, base)| (token, base))
    })
}

fn counter_suffix(name: &str, t: MetricType) -> Option<&'static str> {
    let total = name.ends_with("_total");
    match t {
        MetricType::Counter if !total => Some(r#"counter metrics should have "_total" suffix"#),
        MetricType::Counter | MetricType::Unknown => None,
        _ if total => Some(r#"non-counter metrics should not have "_total" suffix"#),
        _ => None,
    }
}

fn reserved_suffixes(name: &str, t: MetricType) -> Vec<&'static str> {
    use MetricType::*;
    let mut v = Vec::new();
    if t == Unknown {
        return v;
    }
    if t != Histogram && name.ends_with("_bucket") {
        v.push(r#"non-histogram metrics should not have "_bucket" suffix"#);
    }
    if t != Histogram && t != Summary && name.ends_with("_count") {
        v.push(r#"non-histogram and non-summary metrics should not have "_count" suffix"#);
    }
    if t != Histogram && t != Summary && name.ends_with("_sum") {
        v.push(r#"non-histogram and non-summary metrics should not have "_sum" suffix"#);
    }
    v
}

/// Type names in a name (case-insensitive) as `_type_` or a `_type` suffix.
fn types_in_name(name: &str) -> Vec<&'static str> {
    let lower = name.to_ascii_lowercase();
    [
        "counter",
        "gauge",
        "histogram",
        "summary",
        "gauge_histogram",
    ]
    .into_iter()
    .filter(|t| has_token(&lower, t))
    .collect()
}

/// `_word_` inside, or `_word` at the end of, a lower-cased name.
fn has_token(lower: &str, word: &str) -> bool {
    lower.contains(&format!("_{word}_")) || lower.ends_with(&format!("_{word}"))
}

fn has_camel_case(name: &str) -> bool {
    name.as_bytes()
        .windows(2)
        .any(|w| w[0].is_ascii_lowercase() && w[1].is_ascii_uppercase())
}

/// How many abbreviated units a name holds (promtool reports each).
fn abbreviated_units(name: &str) -> usize {
    const ABBREVIATIONS: &[&str] = &[
        "s", "ms", "us", "ns", "sec", "b", "kb", "mb", "gb", "tb", "pb", "m", "h", "d",
    ];
    let lower = name.to_ascii_lowercase();
    ABBREVIATIONS
        .iter()
        .filter(|a| has_token(&lower, a))
        .count()
}

/// Whether `unit` ends `name` after a `_`.
fn is_name_suffix(name: &str, unit: &str) -> bool {
    name.strip_suffix(unit)
        .is_some_and(|rest| rest.ends_with('_'))
}

fn percent_token(name: &str) -> Option<&str> {
    name.split('_').find(|t| {
        let t = t.to_ascii_lowercase();
        t == "percent" || t == "percentage" || t == "pct"
    })
}

fn info_problems(name: &str, declared: MetricType, value_not_one: bool) -> Vec<String> {
    let is_info = declared == MetricType::Info || name.ends_with("_info");
    let mut v = Vec::new();
    if !is_info {
        return v;
    }
    if !matches!(
        declared,
        MetricType::Gauge | MetricType::Info | MetricType::Unknown
    ) {
        v.push(format!(
            "\"_info\" metrics should be gauges (or OpenMetrics info), not {declared}"
        ));
    }
    if value_not_one {
        v.push("\"_info\" metrics should always have the value 1".to_string());
    }
    v
}

/// The shape of a label value that is a UUID, an IP address (with or without a port) or an
/// e-mail address.
pub fn unbounded_shape(v: &str) -> Option<ValueShape> {
    if is_uuid(v) {
        Some(ValueShape::Uuid)
    } else if is_ip(v) {
        Some(ValueShape::Ip)
    } else if is_email(v) {
        Some(ValueShape::Email)
    } else {
        None
    }
}

fn is_uuid(v: &str) -> bool {
    let parts: Vec<&str> = v.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn is_ip(v: &str) -> bool {
    v.parse::<IpAddr>().is_ok() || v.parse::<SocketAddr>().is_ok()
}

fn is_email(v: &str) -> bool {
    let Some((local, domain)) = v.split_once('@') else {
        return false;
    };
    let ok_chars = |s: &str, extra: &[u8]| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
    };
    !local.is_empty()
        && ok_chars(local, b"._%+-")
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && ok_chars(domain, b".-")
}

/// The same family declared with different TYPEs by different targets: one problem per
/// family, naming each type with its targets. Input: `(target, family, type)` triples, e.g.
/// from each target's last scrape; untyped declarations are ignored.
pub fn type_conflicts(decls: &[(&str, &str, MetricType)]) -> Vec<Problem> {
    let mut by_family: BTreeMap<&str, BTreeMap<&'static str, Vec<&str>>> = BTreeMap::new();
    for &(target, family, t) in decls {
        if t == MetricType::Unknown {
            continue;
        }
        let targets = by_family
            .entry(family)
            .or_default()
            .entry(t.as_str())
            .or_default();
        if !targets.contains(&target) {
            targets.push(target);
        }
    }
    by_family
        .into_iter()
        .filter(|(_, types)| types.len() > 1)
        .map(|(family, types)| {
            let parts: Vec<String> = types
                .iter()
                .map(|(t, targets)| format!("{t} by {}", targets.join(", ")))
                .collect();
            Problem::new(
                family,
                check::TYPE_CONFLICT,
                format!("declared with different types: {}", parts.join("; ")),
            )
        })
        .collect()
}

#[cfg(test)]
#[path = "lint_tests.rs"]
mod tests;
