//! The pure half of the notifier: rule alerts in, the Alertmanager v2 `POST /api/v2/alerts`
//! body out, exactly as Prometheus 2.42 builds it (`rules/manager.go` `SendAlerts`,
//! `notifier.Manager.Send`, `alertsToOpenAPIAlerts`). In: [`Alert`]s of the state machine and
//! the expression text the caller re-printed. Out: [`OutgoingAlert`]s after the pipeline
//! (external labels where missing, `alert_relabel_configs`, the replica label removed) and
//! their JSON with Go's `encoding/json` escaping. No I/O; relabeling comes in as a function
//! because its implementation lives with the scraper.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::RelabelConfig;
use crate::rules::alerting::Alert;
use crate::storage::model::{Label, Labels};

/// Applies relabel rules to a label set, `None` when a rule dropped it
/// (`scrape::relabel::process` has this signature; the node passes it in).
pub type RelabelFn = fn(&Labels, &[RelabelConfig]) -> Option<Labels>;

/// What Go's `strfmt.DateTime` prints for a zero `time.Time`.
const GO_ZERO_TIME: &str = "0001-01-01T00:00:00.000Z";

const NS_PER_MS: i64 = 1_000_000;

/// One alert as it goes to Alertmanager. Times are unix milliseconds (`None` = Go's zero time).
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingAlert {
    pub labels: Labels,
    pub annotations: BTreeMap<String, String>,
    pub starts_at_ms: Option<i64>,
    pub ends_at_ms: Option<i64>,
    pub generator_url: String,
}

/// The fixed inputs of the pipeline between the rule evaluator and the queue.
#[derive(Debug, Clone)]
pub struct Pipeline {
    /// `global.external_labels`, added to an alert only where it lacks the name.
    pub external_labels: Labels,
    /// `alerting.alert_relabel_configs`.
    pub alert_relabel_configs: Vec<RelabelConfig>,
    /// Strata's `cluster.replica_label`, always removed last so the alerts of two rule
    /// evaluators are the same alert to Alertmanager; empty = none.
    pub replica_label: String,
    pub relabel: RelabelFn,
}

/// `<externalURL>/graph?g0.expr=<QueryEscape(expr)>&g0.tab=1` (`strutil.TableLinkForExpression`).
/// `expr` is the expression as PromQL re-prints it (`up==1` → `up == 1`); the caller prints it.
pub fn generator_url(external_url: &str, expr: &str) -> String {
    format!(
        "{external_url}/graph?g0.expr={}&g0.tab=1",
        go_query_escape(expr)
    )
}

/// Go's `url.QueryEscape`: unreserved bytes stay, a space becomes `+`, the rest `%XX`.
pub fn go_query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(hex_digit(b >> 4));
                out.push(hex_digit(b & 0xf));
            }
        }
    }
    out
}

fn hex_digit(n: u8) -> char {
    char::from(b"0123456789ABCDEF"[usize::from(n & 0xf)])
}

/// The conversion `SendAlerts` makes: `startsAt = FiredAt`, `endsAt = ResolvedAt` when
/// resolved, else `ValidUntil`. Nanoseconds are truncated to milliseconds, as the wire
/// format is.
pub fn from_rule_alert(a: &Alert, generator_url: &str) -> OutgoingAlert {
    let ends = a.resolved_at_ns.or(a.valid_until_ns);
    OutgoingAlert {
        labels: a.labels.clone(),
        annotations: a.annotations.clone(),
        starts_at_ms: a.fired_at_ns.map(|n| n.div_euclid(NS_PER_MS)),
        ends_at_ms: ends.map(|n| n.div_euclid(NS_PER_MS)),
        generator_url: generator_url.to_string(),
    }
}

impl Pipeline {
    /// A pipeline that only adds `external_labels` and removes `replica_label`.
    pub fn new(external_labels: Labels, replica_label: &str, relabel: RelabelFn) -> Self {
        Pipeline {
            external_labels,
            alert_relabel_configs: Vec::new(),
            replica_label: replica_label.to_string(),
            relabel,
        }
    }

    /// External labels where missing, then `alert_relabel_configs` (a drop removes the
    /// alert), then the replica label removed. An alert left without labels is removed too:
    /// Alertmanager would refuse it ("at least one label pair required").
    pub fn apply(&self, alerts: Vec<OutgoingAlert>) -> Vec<OutgoingAlert> {
        let mut out = Vec::with_capacity(alerts.len());
        for mut a in alerts {
            a.labels = self.with_external_labels(&a.labels);
            if !self.alert_relabel_configs.is_empty() {
                match (self.relabel)(&a.labels, &self.alert_relabel_configs) {
                    Some(l) => a.labels = l,
                    None => continue,
                }
            }
            if !self.replica_label.is_empty() && a.labels.get(&self.replica_label).is_some() {
                a.labels = a.labels.without(&[self.replica_label.as_str()]);
            }
            if a.labels.is_empty() {
                tracing::debug!("notifier: an alert lost all its labels to relabeling; not sent");
                continue;
            }
            out.push(a);
        }
        out
    }

    fn with_external_labels(&self, labels: &Labels) -> Labels {
        let missing: Vec<&Label> = self
            .external_labels
            .iter()
            .filter(|l| labels.get(&l.name).is_none())
            .collect();
        if missing.is_empty() {
            return labels.clone();
        }
        let mut pairs = labels.as_slice().to_vec();
        pairs.extend(missing.into_iter().cloned());
        Labels::new(pairs)
    }
}

/// Field order of Alertmanager's `PostableAlert` as Go marshals it.
#[derive(Serialize)]
struct WireAlert<'a> {
    annotations: &'a BTreeMap<String, String>,
    #[serde(rename = "endsAt")]
    ends_at: String,
    #[serde(rename = "startsAt")]
    starts_at: String,
    #[serde(rename = "generatorURL")]
    generator_url: &'a str,
    labels: BTreeMap<&'a str, &'a str>,
}

fn wire_time(ms: Option<i64>) -> String {
    match ms {
        Some(ms) => crate::time::format_rfc3339_millis(ms),
        None => GO_ZERO_TIME.to_string(),
    }
}

/// The request body for a batch, byte for byte what Prometheus 2.42 sends (Go escapes
/// `<`, `>`, `&`, U+2028 and U+2029 inside strings; serde_json does not).
pub fn encode_body(alerts: &[OutgoingAlert]) -> serde_json::Result<Vec<u8>> {
    let wire: Vec<WireAlert<'_>> = alerts
        .iter()
        .map(|a| WireAlert {
            annotations: &a.annotations,
            ends_at: wire_time(a.ends_at_ms),
            starts_at: wire_time(a.starts_at_ms),
            generator_url: &a.generator_url,
            labels: a
                .labels
                .iter()
                .map(|l| (l.name.as_str(), l.value.as_str()))
                .collect(),
        })
        .collect();
    let text = serde_json::to_string(&wire)?;
    Ok(go_html_escape(&text).into_bytes())
}

/// Go's `encoding/json` HTML-safe escaping. Safe on whole JSON text: these characters can
/// only occur inside strings.
fn go_html_escape(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
#[path = "payload_tests.rs"]
mod tests;
