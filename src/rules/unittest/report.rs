//! promtool's texts for failed checks: label sets and annotations as Go's `labels.Labels`
//! prints them, float values as Go's `strconv.FormatFloat(v, 'E', -1, 64)`, the
//! `labelsAndAnnotations` list layout and the line indentation of `indentLines`.

use std::collections::BTreeMap;
use std::fmt;

use crate::storage::model::escape_label_value;

/// A label set that keeps empty values (Go's `labels.FromMap`), sorted by name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pairs(pub Vec<(String, String)>);

impl Pairs {
    pub fn from_map(m: &BTreeMap<String, String>) -> Self {
        Pairs(m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    }
}

impl fmt::Display for Pairs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{k}=\"{}\"", escape_label_value(v))?;
        }
        f.write_str("}")
    }
}

/// One alert as compared: labels, then annotations.
pub type LabelsAndAnnotations = (Pairs, Pairs);

/// Prefixes every line but the first with `indent`.
pub fn indent_lines(lines: &str, indent: &str) -> String {
    let mut out = String::new();
    for (i, l) in lines.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
            out.push_str(indent);
        }
        out.push_str(l);
    }
    out
}

fn alert_string(a: &LabelsAndAnnotations) -> String {
    format!("Labels:{}\nAnnotations:{}", a.0, a.1)
}

/// promtool's `labelsAndAnnotations.String`.
pub fn alerts_string(list: &[LabelsAndAnnotations]) -> String {
    if list.is_empty() {
        return "[]".to_string();
    }
    let mut s = String::from("[");
    for (i, a) in list.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&format!(
            "\n{i}:{}",
            indent_lines(&format!("\n{}", alert_string(a)), "  ")
        ));
    }
    s.push_str("\n]");
    s
}

/// Go's `strconv.FormatFloat(v, 'E', -1, 64)`: `6E+00`, `1.5E+00`, `1E-05`, `NaN`, `+Inf`.
pub fn format_float_e(v: f64) -> String {
    // Go's 'E' verb is the 'e' one upper-cased; `NaN` and `±Inf` hold no 'e'.
    crate::gocompat::format_float_e(v).replace('e', "E")
}

/// promtool's `parsedSamplesString`: `nil`, or `{labels} value` joined by `, `.
pub fn samples_string(samples: &[(Pairs, f64)]) -> String {
    if samples.is_empty() {
        return "nil".to_string();
    }
    samples
        .iter()
        .map(|(l, v)| format!("{l} {}", format_float_e(*v)))
        .collect::<Vec<_>>()
        .join(", ")
}
