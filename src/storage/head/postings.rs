//! The head's inverted index: label name → value → sorted series refs, and the Prometheus
//! "postings for matchers" logic that narrows a selection before labels are checked.

use rustc_hash::FxHashMap;

use crate::storage::model::{MatchOp, Matcher};

/// Sorted refs of one (name, value). Most values of high-cardinality labels belong to a
/// single series, so that case needs no heap allocation.
enum List {
    One(u64),
    Many(Vec<u64>),
}

impl List {
    fn as_slice(&self) -> &[u64] {
        match self {
            List::One(r) => std::slice::from_ref(r),
            List::Many(v) => v,
        }
    }

    fn insert(&mut self, r: u64) {
        match self {
            List::One(x) if *x == r => {}
            List::One(x) => {
                let x = *x;
                *self = List::Many(if x < r { vec![x, r] } else { vec![r, x] });
            }
            List::Many(v) => match v.last() {
                Some(&last) if last >= r => {
                    if let Err(i) = v.binary_search(&r) {
                        v.insert(i, r);
                    }
                }
                _ => v.push(r),
            },
        }
    }

    /// Removes `r`; true when the list is now empty.
    fn remove(&mut self, r: u64) -> bool {
        match self {
            List::One(x) => *x == r,
            List::Many(v) => {
                if let Ok(i) = v.binary_search(&r) {
                    v.remove(i);
                }
                match v.as_slice() {
                    [] => true,
                    [one] => {
                        *self = List::One(*one);
                        false
                    }
                    _ => {
                        if v.capacity() > 4 * v.len() {
                            v.shrink_to_fit();
                        }
                        false
                    }
                }
            }
        }
    }
}

#[derive(Default)]
pub struct Postings {
    map: FxHashMap<Box<str>, FxHashMap<Box<str>, List>>,
}

impl Postings {
    pub fn add<'a>(&mut self, r: u64, labels: impl Iterator<Item = (&'a str, &'a str)>) {
        for (name, value) in labels {
            let values = match self.map.get_mut(name) {
                Some(v) => v,
                None => self.map.entry(name.into()).or_default(),
            };
            match values.get_mut(value) {
                Some(list) => list.insert(r),
                None => {
                    values.insert(value.into(), List::One(r));
                }
            }
        }
    }

    pub fn remove<'a>(&mut self, r: u64, labels: impl Iterator<Item = (&'a str, &'a str)>) {
        for (name, value) in labels {
            let Some(values) = self.map.get_mut(name) else {
                continue;
            };
            if values.get_mut(value).is_some_and(|list| list.remove(r)) {
                values.remove(value);
            }
            if values.is_empty() {
                self.map.remove(name);
            }
        }
    }

    /// Sorted, unique label names.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.map.keys().map(|k| k.to_string()).collect();
        v.sort_unstable();
        v
    }

    /// Sorted values of one label name.
    pub fn values(&self, name: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .map
            .get(name)
            .map(|m| m.keys().map(|k| k.to_string()).collect())
            .unwrap_or_default();
        v.sort_unstable();
        v
    }

    /// Refs of series whose value for `m.name` matches `m` (the label must be present).
    fn matching(&self, m: &Matcher) -> Vec<u64> {
        let Some(values) = self.map.get(m.name.as_str()) else {
            return Vec::new();
        };
        if m.op == MatchOp::Equal {
            return values
                .get(m.value.as_str())
                .map(|l| l.as_slice().to_vec())
                .unwrap_or_default();
        }
        let lists: Vec<&[u64]> = values
            .iter()
            .filter(|(v, _)| m.matches(v))
            .map(|(_, l)| l.as_slice())
            .collect();
        merge(&lists)
    }

    /// Candidate refs for the matchers, sorted, or `None` when no matcher narrows the set
    /// (every matcher also matches series without the label: the caller scans all series).
    /// Candidates still need `matches_all` on their labels: negative matchers are only
    /// applied there.
    pub fn candidates(&self, matchers: &[Matcher]) -> Option<Vec<u64>> {
        let mut acc: Option<Vec<u64>> = None;
        for m in matchers.iter().filter(|m| !m.matches_empty()) {
            let refs = self.matching(m);
            acc = Some(match acc {
                None => refs,
                Some(prev) => intersect(&prev, &refs),
            });
            if acc.as_ref().is_some_and(|a| a.is_empty()) {
                break;
            }
        }
        acc
    }
}

/// Union of sorted lists.
fn merge(lists: &[&[u64]]) -> Vec<u64> {
    match lists {
        [] => Vec::new(),
        [one] => one.to_vec(),
        _ => {
            let mut out: Vec<u64> = lists.iter().flat_map(|l| l.iter().copied()).collect();
            out.sort_unstable();
            out.dedup();
            out
        }
    }
}

fn intersect(a: &[u64], b: &[u64]) -> Vec<u64> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::with_capacity(a.len().min(b.len()));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::model::Labels;

    fn pairs(l: &Labels) -> impl Iterator<Item = (&str, &str)> {
        l.iter().map(|l| (l.name.as_str(), l.value.as_str()))
    }

    fn idx() -> Postings {
        let mut p = Postings::default();
        p.add(3, pairs(&Labels::from_pairs([("job", "a"), ("x", "1")])));
        p.add(1, pairs(&Labels::from_pairs([("job", "b")])));
        p.add(2, pairs(&Labels::from_pairs([("job", "a"), ("x", "2")])));
        p
    }

    #[test]
    fn matchers_narrow_candidates() {
        let p = idx();
        assert_eq!(
            p.candidates(&[Matcher::equal("job", "a")]),
            Some(vec![2, 3])
        );
        let re = Matcher::new(MatchOp::RegexMatch, "x", "1|2").unwrap();
        assert_eq!(
            p.candidates(&[re.clone(), Matcher::equal("job", "a")]),
            Some(vec![2, 3])
        );
        assert_eq!(
            p.candidates(&[re, Matcher::equal("job", "b")]),
            Some(vec![])
        );
        // Matchers that accept "" cannot narrow.
        assert_eq!(
            p.candidates(&[Matcher::new(MatchOp::NotEqual, "x", "1").unwrap()]),
            None
        );
        assert_eq!(p.candidates(&[Matcher::equal("missing", "")]), None);
    }

    #[test]
    fn remove_cleans_up() {
        let mut p = idx();
        p.remove(3, pairs(&Labels::from_pairs([("job", "a"), ("x", "1")])));
        assert_eq!(p.values("x"), vec!["2".to_string()]);
        p.remove(2, pairs(&Labels::from_pairs([("job", "a"), ("x", "2")])));
        assert_eq!(p.names(), vec!["job".to_string()]);
    }
}
