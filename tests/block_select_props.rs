//! Property test of block selection: for random label sets written to a block and random
//! matchers (all four operators, including ones that match the empty value), `select`,
//! `label_names` and `label_values` agree with brute-force filtering of the label sets.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::collections::BTreeSet;

use proptest::prelude::*;
use strata::storage::block::{BlockMeta, BlockReader, BlockWriter};
use strata::storage::chunkenc::XorAppender;
use strata::storage::model::{matches_all, Labels, MatchOp, Matcher, Queryable, SelectHints};

fn label_set() -> impl Strategy<Value = Labels> {
    (
        prop::sample::select(vec!["up", "req", "mem"]),
        prop::option::of(prop::sample::select(vec!["a", "b", "c", "a\nb"])),
        prop::option::of(prop::sample::select(vec!["x", "y", ""])),
        prop::option::of(0u8..4),
    )
        .prop_map(|(name, job, zone, inst)| {
            let mut pairs = vec![("__name__".to_string(), name.to_string())];
            if let Some(j) = job {
                pairs.push(("job".into(), j.into()));
            }
            if let Some(z) = zone {
                pairs.push(("zone".into(), z.into()));
            }
            if let Some(i) = inst {
                pairs.push(("instance".into(), format!("h{i}")));
            }
            Labels::from_pairs(pairs)
        })
}

fn matcher() -> impl Strategy<Value = Matcher> {
    (
        prop::sample::select(vec!["__name__", "job", "zone", "instance", "missing"]),
        prop::sample::select(vec![
            MatchOp::Equal,
            MatchOp::NotEqual,
            MatchOp::RegexMatch,
            MatchOp::RegexNoMatch,
        ]),
        prop::sample::select(vec![
            "", "a", "up", "x", "h1", "a|b", ".*", ".+", "h.*", "a.b", "(up|mem)", "b|",
        ]),
    )
        .prop_map(|(n, op, v)| Matcher::new(op, n, v).unwrap_or_else(|e| panic!("{e}")))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(120))]

    #[test]
    fn select_agrees_with_brute_force(sets in prop::collection::btree_set(label_set(), 1..25), ms in prop::collection::vec(matcher(), 0..3)) {
        let dir = tempfile::tempdir().unwrap();
        let sets: Vec<Labels> = sets.into_iter().collect::<BTreeSet<_>>().into_iter().collect();
        let symbols: Vec<String> = sets.iter().flat_map(|l| l.iter().flat_map(|x| [x.name.to_string(), x.value.to_string()]).collect::<Vec<_>>()).collect();
        let mut w = BlockWriter::create(dir.path(), symbols).unwrap();
        for (i, l) in sets.iter().enumerate() {
            let mut a = XorAppender::new();
            a.append(i as i64, 1.0);
            w.add_series(l, &a.to_encoded().into_iter().collect::<Vec<_>>()).unwrap();
        }
        let ulid = w.ulid();
        let meta = w.finish(BlockMeta::new(ulid, 0, 100)).unwrap();
        let b = BlockReader::open(&dir.path().join(meta.ulid.to_string())).unwrap();
        let want: Vec<&Labels> = sets.iter().filter(|l| matches_all(&ms, l)).collect();
        let got = b.select(&ms, i64::MIN, i64::MAX, &SelectHints::default()).unwrap();
        let got: Vec<&Labels> = got.iter().map(|s| &s.labels).collect();
        prop_assert_eq!(&got, &want);
        let names: BTreeSet<String> = want.iter().flat_map(|l| l.iter().map(|x| x.name.to_string())).collect();
        if !ms.is_empty() {
            prop_assert_eq!(b.label_names(&ms, 0, 100).unwrap(), names.into_iter().collect::<Vec<_>>());
        }
        let jobs: BTreeSet<String> = want.iter().filter_map(|l| l.get("job").map(str::to_string)).collect();
        if !ms.is_empty() {
            prop_assert_eq!(b.label_values("job", &ms, 0, 100).unwrap(), jobs.into_iter().collect::<Vec<_>>());
        }
    }
}
