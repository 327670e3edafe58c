//! The experimental `info()` function: enriches series with the data labels of info metrics
//! (`target_info` unless the selector names others) that share their identifying labels
//! (`instance`, `job`), following Prometheus 3's rules for filters, conflicts and fallbacks.

use std::collections::BTreeMap;
use std::sync::Arc;

use promql_parser::label::{MatchOp as PMatchOp, Matcher as PMatcher, Matchers};
use promql_parser::parser::{Call, Expr, VectorSelector};

use crate::promql::error::{PromqlError, Result};
use crate::promql::eval::Evaluator;
use crate::promql::preprocess::MODIFIER_LABEL;
use crate::promql::value::{Elem, Val};
use crate::storage::model::{Label, Labels, MatchOp, Matcher, METRIC_NAME};

const IDENTIFYING: [&str; 2] = ["instance", "job"];

/// The selector of info series `info()` reads: its second argument (or `{}`), with
/// `__name__="target_info"` when it has no name matcher.
pub(crate) fn info_selector(c: &Call) -> VectorSelector {
    let mut vs = match c.args.args.get(1).map(|a| a.as_ref()) {
        Some(Expr::VectorSelector(vs)) => vs.clone(),
        _ => VectorSelector::new(None, Matchers::new(vec![])),
    };
    let has_name = vs.name.is_some() || vs.matchers.matchers.iter().any(|m| m.name == METRIC_NAME);
    let has_exact = vs.name.is_some()
        || vs
            .matchers
            .matchers
            .iter()
            .any(|m| m.name == METRIC_NAME && matches!(m.op, PMatchOp::Equal));
    if !has_name {
        vs.matchers
            .matchers
            .push(PMatcher::new(PMatchOp::Equal, METRIC_NAME, "target_info"));
    } else if !has_exact {
        // Without an exact name, only metrics named like info metrics qualify.
        if let Ok(re) = regex::Regex::new("^(?:.+_info)$") {
            vs.matchers
                .matchers
                .push(PMatcher::new(PMatchOp::Re(re), METRIC_NAME, ".+_info"));
        }
    }
    vs
}

fn to_model(m: &PMatcher) -> Result<Matcher> {
    let op = match m.op {
        PMatchOp::Equal => MatchOp::Equal,
        PMatchOp::NotEqual => MatchOp::NotEqual,
        PMatchOp::Re(_) => MatchOp::RegexMatch,
        PMatchOp::NotRe(_) => MatchOp::RegexNoMatch,
    };
    Matcher::new(op, m.name.clone(), m.value.clone()).map_err(|e| PromqlError::exec(e.to_string()))
}

pub(crate) fn eval_info(ev: &mut Evaluator, c: &Call, t: i64) -> Result<Val> {
    let base_expr = c
        .args
        .args
        .first()
        .ok_or_else(|| PromqlError::exec("info() needs an argument"))?;
    let base = ev.eval_vector(base_expr, t)?;
    let sel = info_selector(c);
    let mut name_matchers = Vec::new();
    let mut data_matchers = Vec::new();
    for m in &sel.matchers.matchers {
        if m.name == MODIFIER_LABEL {
            continue;
        }
        if m.name == METRIC_NAME {
            name_matchers.push(to_model(m)?);
        } else {
            data_matchers.push(to_model(m)?);
        }
    }
    if let Some(n) = &sel.name {
        name_matchers.push(Matcher::equal(METRIC_NAME, n.clone()));
    }
    // Latest info sample per (metric name, identifying labels).
    let mut infos: BTreeMap<(String, Labels), (i64, Arc<Labels>)> = BTreeMap::new();
    for (e, ts) in ev.vector_selector(&sel, t)? {
        let name = e.labels.metric_name().unwrap_or("").to_string();
        let id = e.labels.keep_only(&IDENTIFYING);
        let entry = infos.entry((name, id)).or_insert((ts, e.labels.clone()));
        if ts > entry.0 {
            *entry = (ts, e.labels);
        }
    }
    let all_accept_empty = data_matchers.iter().all(|m| m.matches_empty());
    let wanted: Vec<&str> = data_matchers.iter().map(|m| m.name.as_str()).collect();
    let mut out = Vec::with_capacity(base.len());
    for e in base {
        // A base series that is itself one of the requested info metrics is left alone.
        let positive = name_matchers
            .iter()
            .any(|m| matches!(m.op, MatchOp::Equal | MatchOp::RegexMatch));
        if positive && name_matchers.iter().all(|m| m.matches_labels(&e.labels)) {
            out.push(e);
            continue;
        }
        let id = e.labels.keep_only(&IDENTIFYING);
        let mut added: BTreeMap<String, String> = BTreeMap::new();
        let mut matched = false;
        if !id.is_empty() {
            for ((_, info_id), (_, info_labels)) in &infos {
                let same = id
                    .iter()
                    .all(|l| info_id.get(&l.name) == Some(l.value.as_str()));
                if !same {
                    continue;
                }
                matched = true;
                for l in info_labels.iter() {
                    if l.name == METRIC_NAME || IDENTIFYING.contains(&l.name.as_str()) {
                        continue;
                    }
                    if !wanted.is_empty() && !wanted.contains(&l.name.as_str()) {
                        continue;
                    }
                    if e.labels.get(&l.name).is_some() {
                        continue;
                    }
                    if let Some(prev) = added.get(l.name.as_str()) {
                        if *prev != l.value {
                            return Err(PromqlError::exec(format!(
                                "conflicting label: {} has values {:?} and {:?} in different info metrics",
                                l.name, prev, l.value
                            )));
                        }
                    }
                    added.insert(l.name.to_string(), l.value.to_string());
                }
            }
        }
        if !matched && !all_accept_empty {
            continue;
        }
        let mut pairs: Vec<Label> = e.labels.iter().cloned().collect();
        pairs.extend(added.into_iter().map(|(n, v)| Label::new(n, v)));
        out.push(Elem {
            labels: Arc::new(Labels::new(pairs)),
            v: e.v,
            drop_name: e.drop_name,
        });
    }
    Ok(Val::Vector(out))
}
