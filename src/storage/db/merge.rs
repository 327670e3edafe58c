//! Merging answers from several sources (blocks and the head) into one: series with the same
//! label set become one series whose chunks are ordered by time (overlaps are left to
//! `SeriesIterator`), and string lists become one sorted, unique list.

use std::collections::BTreeSet;

use rustc_hash::FxHashMap;

use crate::storage::model::{Labels, Series};

/// Merges per-source results into one list sorted by labels with one entry per label set.
/// Chunks keep source order on equal start times, so a later source wins on duplicate
/// timestamps. Series are joined through a hash map rather than by sorting all entries: a
/// query over many blocks sees the same series in each of them, and sorting blocks × series
/// label sets cost more than everything else such a query does.
pub fn merge_series(mut parts: Vec<Vec<Series>>) -> Vec<Series> {
    // A query within one block (the head empty) has nothing to join: every source answers
    // sorted and unique (the `Queryable` contract; a block index orders its series by label
    // set), and indexing or re-checking its label sets would only compare and copy them.
    parts.retain(|p| !p.is_empty());
    if parts.len() <= 1 {
        return parts.pop().unwrap_or_default();
    }
    let first = parts.first().map_or(0, Vec::len);
    let mut out: Vec<Series> = Vec::with_capacity(first);
    let mut index: FxHashMap<Labels, usize> = FxHashMap::default();
    index.reserve(first);
    let mut joined = false;
    for s in parts.into_iter().flatten() {
        match index.get(&s.labels) {
            Some(&i) => {
                out[i].chunks.extend(s.chunks);
                joined = true;
            }
            None => {
                index.insert(s.labels.clone(), out.len());
                out.push(s);
            }
        }
    }
    // Stable: equal label sets cannot occur any more; equal start times keep source order.
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    if joined {
        for s in out.iter_mut() {
            s.chunks.sort_by_key(|c| c.min_time);
        }
    }
    out
}

pub fn merge_strings(parts: Vec<Vec<String>>) -> Vec<String> {
    let set: BTreeSet<String> = parts.into_iter().flatten().collect();
    set.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::model::{EncodedChunk, Labels};
    use std::sync::Arc;

    fn chunk(min: i64) -> EncodedChunk {
        EncodedChunk {
            min_time: min,
            max_time: min + 1,
            encoding: 1,
            data: Arc::from(&[0u8, 0][..]),
        }
    }

    #[test]
    fn same_labels_are_merged_and_sorted() {
        let a = Labels::from_pairs([("a", "1")]);
        let b = Labels::from_pairs([("a", "2")]);
        let out = merge_series(vec![
            vec![
                Series {
                    labels: a.clone(),
                    chunks: vec![chunk(10)],
                },
                Series {
                    labels: b.clone(),
                    chunks: vec![chunk(0)],
                },
            ],
            vec![Series {
                labels: a.clone(),
                chunks: vec![chunk(5)],
            }],
        ]);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].labels, a);
        assert_eq!(
            out[0].chunks.iter().map(|c| c.min_time).collect::<Vec<_>>(),
            vec![5, 10]
        );
        assert_eq!(
            merge_strings(vec![vec!["b".into(), "a".into()], vec!["a".into()]]),
            vec!["a", "b"]
        );
    }
}
