//! Binary operators: arithmetic, comparison (with and without `bool`), the set operators
//! `and`/`or`/`unless`, vector matching with `on`/`ignoring`/`group_left`/`group_right`,
//! the `fill*` modifiers, and Prometheus's matching errors.

use std::sync::Arc;

use promql_parser::parser::token::*;
use promql_parser::parser::{BinModifier, BinaryExpr, LabelModifier, VectorMatchCardinality};
use rustc_hash::{FxHashMap, FxHashSet};

use crate::promql::error::{PromqlError, Result};
use crate::promql::eval::Evaluator;
use crate::promql::value::{hash_labels_where, Elem, Val};
use crate::storage::model::{Labels, METRIC_NAME};

/// Applies `op` to two floats. Returns the value and whether a comparison kept it.
pub(crate) fn scalar_op(op: TokenId, l: f64, r: f64) -> Result<(f64, bool)> {
    Ok(match op {
        T_ADD => (l + r, true),
        T_SUB => (l - r, true),
        T_MUL => (l * r, true),
        T_DIV => (l / r, true),
        T_POW => (l.powf(r), true),
        T_MOD => (l % r, true),
        T_ATAN2 => (l.atan2(r), true),
        T_EQLC => (l, l == r),
        T_NEQ => (l, l != r),
        T_GTR => (l, l > r),
        T_LSS => (l, l < r),
        T_GTE => (l, l >= r),
        T_LTE => (l, l <= r),
        other => {
            return Err(PromqlError::exec(format!(
                "operator {} not allowed for float operations",
                promql_parser::parser::token::TokenType::new(other)
            )))
        }
    })
}

fn is_comparison(op: TokenId) -> bool {
    matches!(op, T_EQLC | T_NEQ | T_GTR | T_LSS | T_GTE | T_LTE)
}

pub(crate) fn eval_binary(ev: &mut Evaluator, b: &BinaryExpr, t: i64) -> Result<Val> {
    let op = b.op.id();
    let return_bool = b.modifier.as_ref().is_some_and(|m| m.return_bool);
    let lhs = ev.eval(&b.lhs, t)?;
    let rhs = ev.eval(&b.rhs, t)?;
    match (lhs, rhs) {
        (Val::Scalar(l), Val::Scalar(r)) => {
            let (v, keep) = scalar_op(op, l, r)?;
            if is_comparison(op) {
                Ok(Val::Scalar(if keep { 1.0 } else { 0.0 }))
            } else {
                Ok(Val::Scalar(v))
            }
        }
        (Val::Vector(l), Val::Scalar(r)) => {
            Ok(Val::Vector(vector_scalar(op, l, r, false, return_bool)?))
        }
        (Val::Scalar(l), Val::Vector(r)) => {
            Ok(Val::Vector(vector_scalar(op, r, l, true, return_bool)?))
        }
        (Val::Vector(l), Val::Vector(r)) => {
            let default_mod = BinModifier::default();
            let m = b.modifier.as_ref().unwrap_or(&default_mod);
            match op {
                T_LAND => Ok(Val::Vector(set_and(l, r, m, false))),
                T_LUNLESS => Ok(Val::Vector(set_and(l, r, m, true))),
                T_LOR => Ok(Val::Vector(set_or(l, r, m))),
                _ => {
                    let node = b as *const BinaryExpr as usize;
                    Ok(Val::Vector(vector_vector(
                        ev,
                        node,
                        op,
                        l,
                        r,
                        m,
                        return_bool,
                    )?))
                }
            }
        }
        (l, r) => Err(PromqlError::exec(format!(
            "binary operator between {} and {} is not supported",
            l.type_name(),
            r.type_name()
        ))),
    }
}

fn vector_scalar(
    op: TokenId,
    vec: Vec<Elem>,
    s: f64,
    swap: bool,
    return_bool: bool,
) -> Result<Vec<Elem>> {
    let mut out = Vec::with_capacity(vec.len());
    for mut e in vec {
        let (l, r) = if swap { (s, e.v) } else { (e.v, s) };
        let (mut v, mut keep) = scalar_op(op, l, r)?;
        if is_comparison(op) && swap {
            v = e.v;
        }
        if return_bool {
            v = if keep { 1.0 } else { 0.0 };
            keep = true;
        }
        if !keep {
            continue;
        }
        e.v = v;
        if return_bool || !is_comparison(op) {
            e.drop_name = true;
        }
        out.push(e);
    }
    Ok(out)
}

/// The labels that identify a match group (used for error messages).
fn match_labels(l: &Labels, matching: Option<&LabelModifier>) -> Labels {
    match matching {
        Some(LabelModifier::Include(names)) => {
            let keep: Vec<&str> = names.labels.iter().map(|s| s.as_str()).collect();
            l.keep_only(&keep)
        }
        Some(LabelModifier::Exclude(names)) => {
            let mut drop: Vec<&str> = names.labels.iter().map(|s| s.as_str()).collect();
            drop.push(METRIC_NAME);
            l.without(&drop)
        }
        None => l.without(&[METRIC_NAME]),
    }
}

/// A 64-bit hash of the match-group labels, computed without building them (as Prometheus
/// does with its label-set signatures).
fn signature(l: &Labels, matching: Option<&LabelModifier>) -> u64 {
    match matching {
        Some(LabelModifier::Include(names)) => {
            hash_labels_where(l, |n| names.labels.iter().any(|x| x == n))
        }
        Some(LabelModifier::Exclude(names)) => hash_labels_where(l, |n| {
            n != METRIC_NAME && !names.labels.iter().any(|x| x == n)
        }),
        None => hash_labels_where(l, |n| n != METRIC_NAME),
    }
}

/// A 64-bit hash of a whole label set.
fn full_hash(l: &Labels) -> u64 {
    hash_labels_where(l, |_| true)
}

fn set_and(l: Vec<Elem>, r: Vec<Elem>, m: &BinModifier, unless: bool) -> Vec<Elem> {
    let sigs: FxHashSet<u64> = r
        .iter()
        .map(|e| signature(&e.labels, m.matching.as_ref()))
        .collect();
    l.into_iter()
        .filter(|e| sigs.contains(&signature(&e.labels, m.matching.as_ref())) != unless)
        .collect()
}

fn set_or(l: Vec<Elem>, r: Vec<Elem>, m: &BinModifier) -> Vec<Elem> {
    let sigs: FxHashSet<u64> = l
        .iter()
        .map(|e| signature(&e.labels, m.matching.as_ref()))
        .collect();
    let mut out = l;
    for e in r {
        if !sigs.contains(&signature(&e.labels, m.matching.as_ref())) {
            out.push(e);
        }
    }
    out
}

/// The labels of a result sample; the `many` side's labels are shared when unchanged.
fn result_labels(many: &Arc<Labels>, one: Option<&Labels>, m: &BinModifier) -> Arc<Labels> {
    match &m.card {
        VectorMatchCardinality::OneToOne => match &m.matching {
            Some(LabelModifier::Include(names)) => {
                let keep: Vec<&str> = names.labels.iter().map(|s| s.as_str()).collect();
                Arc::new(many.keep_only(&keep))
            }
            Some(LabelModifier::Exclude(names)) if !names.labels.is_empty() => {
                let drop: Vec<&str> = names.labels.iter().map(|s| s.as_str()).collect();
                Arc::new(many.without(&drop))
            }
            _ => Arc::clone(many),
        },
        VectorMatchCardinality::ManyToOne(inc) | VectorMatchCardinality::OneToMany(inc) => {
            if inc.labels.is_empty() {
                return Arc::clone(many);
            }
            let mut out = (**many).clone();
            for name in &inc.labels {
                out = out.with(name, one.and_then(|o| o.get(name)).unwrap_or(""));
            }
            Arc::new(out)
        }
        VectorMatchCardinality::ManyToMany => Arc::clone(many),
    }
}

/// `node` names the operation for the evaluator's per-query hash memo.
#[allow(clippy::too_many_arguments)]
fn vector_vector(
    ev: &mut Evaluator,
    node: usize,
    op: TokenId,
    lhs: Vec<Elem>,
    rhs: Vec<Elem>,
    m: &BinModifier,
    return_bool: bool,
) -> Result<Vec<Elem>> {
    let swap = matches!(m.card, VectorMatchCardinality::OneToMany(_));
    let (many, one) = if swap { (rhs, lhs) } else { (lhs, rhs) };
    // Prometheus applies fill_left/fill_right to the sides after the group_right swap.
    let (fill_many, fill_one) = (m.fill_values.lhs, m.fill_values.rhs);
    let matching = m.matching.as_ref();
    let mut one_sigs: FxHashMap<u64, usize> = FxHashMap::default();
    for (i, e) in one.iter().enumerate() {
        let sig = ev.memo_hash(node, &e.labels, |l| signature(l, matching));
        if let Some(&prev) = one_sigs.get(&sig) {
            let side = if swap { "left" } else { "right" };
            return Err(PromqlError::exec(format!(
                "found duplicate series for the match group {} on the {} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                match_labels(&e.labels, matching), side, e.labels, one[prev].labels
            )));
        }
        one_sigs.insert(sig, i);
    }
    let mut out = Vec::new();
    let mut matched_one: FxHashSet<usize> = FxHashSet::default();
    let mut one_to_one_seen: FxHashSet<u64> = FxHashSet::default();
    let mut inserted: FxHashMap<u64, FxHashSet<u64>> = FxHashMap::default();
    let mut many_sigs: FxHashSet<u64> = FxHashSet::default();
    for ls in &many {
        let sig = ev.memo_hash(node, &ls.labels, |l| signature(l, matching));
        many_sigs.insert(sig);
        let (one_elem, one_v) = match one_sigs.get(&sig) {
            Some(&i) => {
                matched_one.insert(i);
                (Some(&one[i]), one[i].v)
            }
            None => match fill_one {
                Some(f) => (None, f),
                None => continue,
            },
        };
        let (l, r) = if swap { (one_v, ls.v) } else { (ls.v, one_v) };
        let (mut v, mut keep) = scalar_op(op, l, r)?;
        let labels = result_labels(&ls.labels, one_elem.map(|e| e.labels.as_ref()), m);
        if one_elem.is_some() {
            if matches!(m.card, VectorMatchCardinality::OneToOne) {
                if !one_to_one_seen.insert(sig) {
                    return Err(PromqlError::exec("multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"));
                }
            } else if !inserted.entry(sig).or_default().insert(full_hash(&labels)) {
                return Err(PromqlError::exec(
                    "multiple matches for labels: grouping labels must ensure unique matches",
                ));
            }
        }
        if return_bool {
            v = if keep { 1.0 } else { 0.0 };
            keep = true;
        }
        if !keep {
            continue;
        }
        let drop_name = return_bool || !is_comparison(op) || ls.drop_name;
        out.push(Elem {
            labels,
            v,
            drop_name,
        });
    }
    if let Some(f) = fill_many {
        for (i, rs) in one.iter().enumerate() {
            if matched_one.contains(&i) {
                continue;
            }
            let sig = signature(&rs.labels, matching);
            if many_sigs.contains(&sig) {
                continue;
            }
            let (l, r) = if swap { (rs.v, f) } else { (f, rs.v) };
            let (mut v, mut keep) = scalar_op(op, l, r)?;
            if return_bool {
                v = if keep { 1.0 } else { 0.0 };
                keep = true;
            }
            if !keep {
                continue;
            }
            let group = Arc::new(match_labels(&rs.labels, matching));
            let labels = result_labels(&group, Some(&rs.labels), m);
            out.push(Elem {
                labels,
                v,
                drop_name: return_bool || !is_comparison(op),
            });
        }
    }
    Ok(out)
}
