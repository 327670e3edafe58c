//! Postings algebra (sorted series-ID lists: intersect, union, subtract) and the resolution
//! of label matchers to postings with Prometheus semantics: matchers that accept the empty
//! value are applied by subtraction so series lacking the label are kept.

use super::index_reader::IndexReader;
use super::Result;
use crate::storage::model::{MatchOp, Matcher};

pub fn intersect(a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(a.len().min(b.len()));
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// `a` minus `b`.
pub fn subtract(a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(a.len());
    let mut j = 0;
    for &x in a {
        while j < b.len() && b[j] < x {
            j += 1;
        }
        if j < b.len() && b[j] == x {
            continue;
        }
        out.push(x);
    }
    out
}

/// Sorted, de-duplicated union of many lists.
pub fn union(lists: Vec<Vec<u32>>) -> Vec<u32> {
    let mut lists: Vec<Vec<u32>> = lists.into_iter().filter(|l| !l.is_empty()).collect();
    match lists.len() {
        0 => Vec::new(),
        1 => lists.pop().unwrap_or_default(),
        _ => {
            let mut all: Vec<u32> = lists.concat();
            all.sort_unstable();
            all.dedup();
            all
        }
    }
}

/// Union of the postings of every value of `m.name` for which `want(value)` holds.
fn postings_where(ix: &IndexReader, name: &str, want: impl Fn(&str) -> bool) -> Result<Vec<u32>> {
    let mut lists = Vec::new();
    for (value, off) in ix.label_values(name) {
        if want(value) {
            lists.push(ix.postings_at(*off)?);
        }
    }
    Ok(union(lists))
}

/// Postings of the series selected by all matchers. An empty matcher list selects nothing,
/// as in Prometheus (callers wanting every series pass no matchers to `all_postings`).
pub fn postings_for_matchers(ix: &IndexReader, matchers: &[Matcher]) -> Result<Vec<u32>> {
    if matchers.is_empty() {
        return Ok(Vec::new());
    }
    let mut result: Option<Vec<u32>> = None;
    // Positive (non-empty-matching) matchers first: they shrink the set cheaply.
    for m in matchers.iter().filter(|m| !m.matches_empty()) {
        let list = if m.op == MatchOp::Equal {
            ix.postings(&m.name, &m.value)?
        } else {
            postings_where(ix, &m.name, |v| m.matches(v))?
        };
        result = Some(match result {
            None => list,
            Some(r) => intersect(&r, &list),
        });
        if result.as_ref().is_some_and(Vec::is_empty) {
            return Ok(Vec::new());
        }
    }
    let mut result = match result {
        Some(r) => r,
        None => ix.all_postings()?,
    };
    for m in matchers.iter().filter(|m| m.matches_empty()) {
        // Remove the series whose (present) value is rejected.
        let drop = match m.op {
            MatchOp::NotEqual => ix.postings(&m.name, &m.value)?,
            _ => postings_where(ix, &m.name, |v| !m.matches(v))?,
        };
        result = subtract(&result, &drop);
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_operations() {
        assert_eq!(intersect(&[1, 3, 5, 7], &[3, 4, 5]), vec![3, 5]);
        assert_eq!(subtract(&[1, 3, 5, 7], &[3, 4, 7]), vec![1, 5]);
        assert_eq!(union(vec![vec![5, 9], vec![], vec![1, 5]]), vec![1, 5, 9]);
        assert!(intersect(&[], &[1]).is_empty());
    }
}
