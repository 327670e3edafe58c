//! Merging answers from several sources (blocks and the head) into one: series with the same
//! label set become one series whose chunks are ordered by time (overlaps are left to
//! `SeriesIterator`), and string lists become one sorted, unique list.

use std::collections::BTreeSet;

use crate::storage::model::Series;

/// Merges per-source results (each sorted by labels) into one sorted list with one entry
/// per label set. Chunks keep source order on equal start times, so a later source wins on
/// duplicate timestamps.
pub fn merge_series(parts: Vec<Vec<Series>>) -> Vec<Series> {
    let mut all: Vec<Series> = parts.into_iter().flatten().collect();
    // Stable: equal label sets stay in source order.
    all.sort_by(|a, b| a.labels.cmp(&b.labels));
    let mut out: Vec<Series> = Vec::with_capacity(all.len());
    for s in all {
        match out.last_mut() {
            Some(last) if last.labels == s.labels => last.chunks.extend(s.chunks),
            _ => out.push(s),
        }
    }
    for s in out.iter_mut() {
        s.chunks.sort_by_key(|c| c.min_time);
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
