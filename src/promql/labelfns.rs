//! Label-manipulating functions: `label_replace`, `label_join`, and `sort_by_label(_desc)`
//! with the natural ("natsort") ordering Prometheus uses.

use std::cmp::Ordering;
use std::collections::HashSet;
use std::sync::Arc;

use promql_parser::parser::{Call, Expr};

use crate::promql::error::{PromqlError, Result};
use crate::promql::eval::Evaluator;
use crate::promql::value::{Elem, Val};
use crate::storage::model::{Labels, METRIC_NAME};

fn string_arg(ev: &mut Evaluator, e: &Expr, t: i64) -> Result<String> {
    match ev.eval(e, t)? {
        Val::Str(s) => Ok(s),
        other => Err(PromqlError::exec(format!(
            "expected string argument, got {}",
            other.type_name()
        ))),
    }
}

fn args(c: &Call) -> Vec<&Expr> {
    c.args.args.iter().map(|b| b.as_ref()).collect()
}

use crate::promql::preprocess::{display_raw, valid_label_name};

fn check_unique(v: &[Elem]) -> Result<()> {
    let mut seen = HashSet::new();
    for e in v {
        if !seen.insert(&e.labels) {
            return Err(PromqlError::exec(
                "vector cannot contain metrics with the same labelset",
            ));
        }
    }
    Ok(())
}

pub(crate) fn label_replace(ev: &mut Evaluator, c: &Call, t: i64) -> Result<Val> {
    let a = args(c);
    if a.len() != 5 {
        return Err(PromqlError::exec("label_replace needs 5 arguments"));
    }
    let v = ev.eval_vector(a[0], t)?;
    let dst = string_arg(ev, a[1], t)?;
    let repl = string_arg(ev, a[2], t)?;
    let src = string_arg(ev, a[3], t)?;
    let re_text = string_arg(ev, a[4], t)?;
    let re = regex::Regex::new(&format!("^(?s:{re_text})$")).map_err(|_| {
        PromqlError::exec(format!(
            "invalid regular expression in label_replace(): {re_text}"
        ))
    })?;
    if !valid_label_name(&dst) {
        return Err(PromqlError::exec(format!(
            "invalid destination label name in label_replace(): {}",
            display_raw(&dst)
        )));
    }
    let mut out = Vec::with_capacity(v.len());
    for mut e in v {
        let src_val = e.labels.get(&src).unwrap_or("").to_string();
        if let Some(caps) = re.captures(&src_val) {
            let mut res = String::new();
            caps.expand(&repl, &mut res);
            e.labels = Arc::new(e.labels.with(&dst, &res));
            if dst == METRIC_NAME {
                e.drop_name = false;
            }
        }
        out.push(e);
    }
    check_unique(&out)?;
    Ok(Val::Vector(out))
}

pub(crate) fn label_join(ev: &mut Evaluator, c: &Call, t: i64) -> Result<Val> {
    let a = args(c);
    if a.len() < 3 {
        return Err(PromqlError::exec("label_join needs at least 3 arguments"));
    }
    let v = ev.eval_vector(a[0], t)?;
    let dst = string_arg(ev, a[1], t)?;
    let sep = string_arg(ev, a[2], t)?;
    let mut srcs = Vec::new();
    for e in &a[3..] {
        let s = string_arg(ev, e, t)?;
        if !valid_label_name(&s) {
            return Err(PromqlError::exec(format!(
                "invalid source label name in label_join(): {}",
                display_raw(&s)
            )));
        }
        srcs.push(s);
    }
    if !valid_label_name(&dst) {
        return Err(PromqlError::exec(format!(
            "invalid destination label name in label_join(): {}",
            display_raw(&dst)
        )));
    }
    let mut out = Vec::with_capacity(v.len());
    for mut e in v {
        let vals: Vec<&str> = srcs.iter().map(|s| e.labels.get(s).unwrap_or("")).collect();
        let joined = vals.join(&sep);
        e.labels = Arc::new(e.labels.with(&dst, &joined));
        if dst == METRIC_NAME {
            e.drop_name = false;
        }
        out.push(e);
    }
    check_unique(&out)?;
    Ok(Val::Vector(out))
}

pub(crate) fn sort_by_label(ev: &mut Evaluator, c: &Call, t: i64, desc: bool) -> Result<Val> {
    let a = args(c);
    let mut v = ev.eval_vector(
        a.first()
            .copied()
            .ok_or_else(|| PromqlError::exec("sort_by_label needs a vector"))?,
        t,
    )?;
    let mut names = Vec::new();
    for e in a.iter().skip(1) {
        names.push(string_arg(ev, e, t)?);
    }
    if ev.start != ev.end {
        ev.warn(
            "sort is ineffective for range queries since results are always ordered by labels"
                .into(),
        );
    }
    v.sort_by(|x, y| {
        let o = compare_by_labels(&x.labels, &y.labels, &names);
        if desc {
            o.reverse()
        } else {
            o
        }
    });
    Ok(Val::Vector(v))
}

fn compare_by_labels(a: &Labels, b: &Labels, names: &[String]) -> Ordering {
    for n in names {
        let (x, y) = (a.get(n).unwrap_or(""), b.get(n).unwrap_or(""));
        if x == y {
            continue;
        }
        return if natural_less(x, y) {
            Ordering::Less
        } else {
            Ordering::Greater
        };
    }
    a.cmp(b)
}

fn chunks(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut prev_digit: Option<bool> = None;
    for (i, ch) in s.char_indices() {
        let d = ch.is_ascii_digit();
        if prev_digit.is_some_and(|p| p != d) {
            out.push(&s[start..i]);
            start = i;
        }
        prev_digit = Some(d);
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out
}

/// Natural order: digit runs compare as numbers, other runs as strings.
pub(crate) fn natural_less(a: &str, b: &str) -> bool {
    let ca = chunks(a);
    let cb = chunks(b);
    for (i, x) in ca.iter().enumerate() {
        let Some(y) = cb.get(i) else { return false };
        let last_a = i + 1 == ca.len();
        let last_b = i + 1 == cb.len();
        match (x.parse::<i64>(), y.parse::<i64>()) {
            (Ok(p), Ok(q)) => {
                if p == q {
                    if last_a {
                        return true;
                    } else if last_b {
                        return false;
                    }
                    continue;
                }
                return p < q;
            }
            _ => {
                if x == y {
                    if last_a {
                        return true;
                    } else if last_b {
                        return false;
                    }
                    continue;
                }
                return x < y;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order_compares_numbers() {
        assert!(natural_less("a2", "a10"));
        assert!(!natural_less("a10", "a2"));
        assert!(natural_less("abc", "abd"));
    }
}
