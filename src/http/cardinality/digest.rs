//! The pure part of the cluster-wide cardinality report: a node's `Digest` of the series it
//! holds (head rows from its ScraperShipper, bucket rows from the blocks its StoreShard
//! serves), built from storage footprints, and the merge of every node's digest into one
//! `Report`. Rules:
//!
//! * A series is identified by its labels with the source's external labels added and the
//!   replica labels removed, hashed to 64 bits (every node runs the same build, so the hash
//!   agrees; a collision would merge two series and is accepted as negligible). Head and
//!   bucket rows with the same identity are one series.
//! * Head: HA replicas hold the same series in different heads; the series counts once and
//!   its head bytes and samples per second are those of the replica with the most bytes (the
//!   max), not the sum.
//! * Bucket: per series, bytes of blocks without a replica label (compacted, deduplicated or
//!   single-replica streams) are summed, and of blocks carrying a replica label only the
//!   replica with the most bytes counts (HA blocks hold the same samples).
//! * Lists are sorted largest first (ties by name) and cut at `limit`; totals are over all.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::storage::head::{labels_hash, SeriesFootprint};
use crate::storage::model::Labels;
use crate::storage::store::footprint::BlockFootprint;

/// A head series: identity, metric, job, label-name set, focus value (indices into the
/// digest's strings and name sets), chunk bytes, samples per second.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HeadRow(
    pub u64,
    pub u32,
    pub u32,
    pub u32,
    pub Option<u32>,
    pub u64,
    pub f64,
);

/// A series in the bucket for one replica (string index of the replica label's value, that
/// of `""` without one): identity, metric, job, name set, focus value, replica, bytes summed
/// over the node's blocks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BucketRow(
    pub u64,
    pub u32,
    pub u32,
    pub u32,
    pub Option<u32>,
    pub u32,
    pub u64,
);

/// What one node holds of the selected series, as it answers a peer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Digest {
    pub node: String,
    pub strings: Vec<String>,
    /// Label-name sets (indices into `strings`), shared by the rows.
    pub name_sets: Vec<Vec<u32>>,
    /// Distinct values per label name over the selected series.
    pub values: BTreeMap<String, BTreeSet<String>>,
    pub head: Vec<HeadRow>,
    pub bucket: Vec<BucketRow>,
    /// ULIDs of the blocks that answered.
    pub blocks: Vec<String>,
    pub warnings: Vec<String>,
}

/// Builds a digest; `replica_labels` are removed from identities, `focus` picks the label
/// whose values are reported.
pub struct DigestBuilder<'a> {
    digest: Digest,
    interned: HashMap<String, u32>,
    sets: HashMap<Vec<u32>, u32>,
    replica_labels: &'a [String],
    focus: Option<&'a str>,
    bucket: HashMap<(u64, u32), BucketRow>,
}

/// Per-series samples per second from its head chunks.
pub fn samples_per_second(f: &SeriesFootprint) -> f64 {
    if f.samples < 2 || f.last <= f.first {
        return 0.0;
    }
    (f.samples - 1) as f64 * 1000.0 / (f.last - f.first) as f64
}

impl<'a> DigestBuilder<'a> {
    pub fn new(node: &str, replica_labels: &'a [String], focus: Option<&'a str>) -> Self {
        DigestBuilder {
            digest: Digest {
                node: node.to_string(),
                ..Digest::default()
            },
            interned: HashMap::new(),
            sets: HashMap::new(),
            replica_labels,
            focus,
            bucket: HashMap::new(),
        }
    }

    fn intern(&mut self, s: &str) -> u32 {
        if let Some(i) = self.interned.get(s) {
            return *i;
        }
        let i = self.digest.strings.len() as u32;
        self.digest.strings.push(s.to_string());
        self.interned.insert(s.to_string(), i);
        i
    }

    /// Identity hash, metric, job, name set and focus value of a label set (replica labels
    /// already removed); records its label values.
    fn describe(&mut self, labels: &Labels) -> (u64, u32, u32, u32, Option<u32>) {
        let metric = self.intern(labels.metric_name().unwrap_or(""));
        let job = self.intern(labels.get("job").unwrap_or(""));
        let mut names = Vec::with_capacity(labels.len());
        for l in labels.iter() {
            names.push(self.intern(&l.name));
            let values = self.digest.values.entry(l.name.to_string()).or_default();
            if !values.contains(&*l.value) {
                values.insert(l.value.to_string());
            }
        }
        let set = match self.sets.get(&names) {
            Some(i) => *i,
            None => {
                let i = self.digest.name_sets.len() as u32;
                self.digest.name_sets.push(names.clone());
                self.sets.insert(names, i);
                i
            }
        };
        let focus = self
            .focus
            .and_then(|f| labels.get(f))
            .map(|v| v.to_string());
        let focus = focus.map(|v| self.intern(&v));
        (labels_hash(labels), metric, job, set, focus)
    }

    fn strip(&self, labels: &Labels) -> Labels {
        let names: Vec<&str> = self.replica_labels.iter().map(String::as_str).collect();
        labels.without(&names)
    }

    /// Adds head series; `external` are the node's external labels (a series label of the
    /// same name wins, as at query time).
    pub fn add_head(&mut self, series: &[SeriesFootprint], external: &Labels) {
        for f in series {
            let mut labels = f.labels.clone();
            for l in external.iter() {
                if labels.get(&l.name).is_none() {
                    labels = labels.with(&l.name, &l.value);
                }
            }
            let labels = self.strip(&labels);
            let (key, metric, job, set, focus) = self.describe(&labels);
            self.digest.head.push(HeadRow(
                key,
                metric,
                job,
                set,
                focus,
                f.bytes,
                samples_per_second(f),
            ));
        }
    }

    /// Adds the series of served blocks (labels already carry the external labels).
    pub fn add_blocks(&mut self, blocks: &[BlockFootprint]) {
        for b in blocks {
            self.digest.blocks.push(b.ulid.to_string());
            for s in &b.series {
                let replica = self
                    .replica_labels
                    .iter()
                    .find_map(|r| s.labels.get(r))
                    .unwrap_or("")
                    .to_string();
                let replica = self.intern(&replica);
                let labels = self.strip(&s.labels);
                let (key, metric, job, set, focus) = self.describe(&labels);
                self.bucket
                    .entry((key, replica))
                    .and_modify(|r| r.6 += s.bytes)
                    .or_insert(BucketRow(key, metric, job, set, focus, replica, s.bytes));
            }
        }
    }

    pub fn warn(&mut self, w: impl Into<String>) {
        self.digest.warnings.push(w.into());
    }

    pub fn finish(mut self) -> Digest {
        let mut rows: Vec<BucketRow> = self.bucket.into_values().collect();
        rows.sort_by_key(|r| (r.0, r.5));
        self.digest.bucket = rows;
        self.digest
    }
}

/// One entry of the per-metric, per-job and per-focus-value lists.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CostStat {
    pub name: String,
    pub series: u64,
    pub samples_per_second: f64,
    pub head_bytes: u64,
    pub bucket_bytes: u64,
}

/// One entry of the per-label-name list.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelStat {
    pub name: String,
    pub series: u64,
    pub values: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Totals {
    pub series: u64,
    pub head_series: u64,
    pub bucket_series: u64,
    pub metrics: u64,
    pub label_names: u64,
    pub label_value_pairs: u64,
    pub samples_per_second: f64,
    pub head_bytes: u64,
    pub bucket_bytes: u64,
    pub blocks: u64,
}

/// What each node contributed, before deduplication.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeStat {
    pub node: String,
    pub head_series: u64,
    pub bucket_series: u64,
    pub blocks: u64,
}

/// The merged answer.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub totals: Totals,
    pub series_count_by_metric_name: Vec<CostStat>,
    pub series_count_by_job: Vec<CostStat>,
    pub series_count_by_label_name: Vec<LabelStat>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub focus_label: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub series_count_by_focus_label_value: Option<Vec<CostStat>>,
    pub nodes: Vec<NodeStat>,
}

/// One deduplicated series while merging (strings as global indices).
#[derive(Default)]
struct SeriesAgg {
    metric: u32,
    job: u32,
    set: u32,
    focus: Option<u32>,
    in_head: bool,
    head_bytes: u64,
    rate: f64,
    /// Bytes per replica (string index; `""` = no replica label), summed over nodes.
    bucket: Vec<(u32, u64)>,
}

impl SeriesAgg {
    fn bucket_bytes(&self, none: Option<u32>) -> u64 {
        let plain: u64 = self
            .bucket
            .iter()
            .filter(|(r, _)| Some(*r) == none)
            .map(|(_, b)| b)
            .sum();
        let replicated = self
            .bucket
            .iter()
            .filter(|(r, _)| Some(*r) != none)
            .map(|(_, b)| *b)
            .max()
            .unwrap_or(0);
        plain + replicated
    }
}

/// Warnings for blocks more than one node answered for (while StoreShards rebalance, a block
/// can be served twice for a moment): their bytes may count twice.
pub fn doubly_served_blocks(digests: &[Digest]) -> Vec<String> {
    let mut by_block: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for d in digests {
        for b in &d.blocks {
            by_block
                .entry(b.as_str())
                .or_default()
                .push(d.node.as_str());
        }
    }
    by_block
        .into_iter()
        .filter_map(|(b, mut nodes)| {
            nodes.sort_unstable();
            nodes.dedup();
            (nodes.len() > 1).then(|| {
                format!(
                    "block {b} is served by {} at once (the StoreShards are rebalancing); its bytes may count twice",
                    nodes.join(" and ")
                )
            })
        })
        .collect()
}

/// Merges the digests (one per node; a node answering twice counts once) into the report.
pub fn merge(digests: &[Digest], focus: Option<&str>, limit: usize) -> Report {
    let mut strings: Vec<String> = Vec::new();
    let mut interned: HashMap<String, u32> = HashMap::new();
    let mut intern = |s: &str| -> u32 {
        if let Some(i) = interned.get(s) {
            return *i;
        }
        let i = strings.len() as u32;
        strings.push(s.to_string());
        interned.insert(s.to_string(), i);
        i
    };
    let mut sets: Vec<Vec<u32>> = Vec::new();
    let mut set_ids: HashMap<Vec<u32>, u32> = HashMap::new();
    let mut series: HashMap<u64, SeriesAgg> = HashMap::new();
    let mut values: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut nodes = Vec::new();
    let mut blocks: BTreeSet<&str> = BTreeSet::new();
    let mut seen_nodes = BTreeSet::new();
    for d in digests {
        if !seen_nodes.insert(d.node.as_str()) {
            continue;
        }
        let map: Vec<u32> = d.strings.iter().map(|s| intern(s)).collect();
        let s = |i: u32| map.get(i as usize).copied().unwrap_or(0);
        let set_map: Vec<u32> = d
            .name_sets
            .iter()
            .map(|names| {
                let names: Vec<u32> = names.iter().map(|i| s(*i)).collect();
                let next = sets.len() as u32;
                *set_ids.entry(names.clone()).or_insert_with(|| {
                    sets.push(names);
                    next
                })
            })
            .collect();
        let set = |i: u32| set_map.get(i as usize).copied().unwrap_or(0);
        for r in &d.head {
            let agg = series.entry(r.0).or_default();
            agg.metric = s(r.1);
            agg.job = s(r.2);
            agg.set = set(r.3);
            agg.focus = r.4.map(s);
            if !agg.in_head || r.5 > agg.head_bytes {
                agg.head_bytes = r.5;
                agg.rate = r.6;
            }
            agg.in_head = true;
        }
        for r in &d.bucket {
            let agg = series.entry(r.0).or_default();
            if !agg.in_head {
                agg.metric = s(r.1);
                agg.job = s(r.2);
                agg.set = set(r.3);
                agg.focus = r.4.map(s);
            }
            let replica = s(r.5);
            match agg.bucket.iter_mut().find(|(rep, _)| *rep == replica) {
                Some(e) => e.1 += r.6,
                None => agg.bucket.push((replica, r.6)),
            }
        }
        for (name, vs) in &d.values {
            values
                .entry(name.as_str())
                .or_default()
                .extend(vs.iter().map(String::as_str));
        }
        blocks.extend(d.blocks.iter().map(String::as_str));
        nodes.push(NodeStat {
            node: d.node.clone(),
            head_series: d.head.len() as u64,
            bucket_series: d.bucket.iter().map(|r| r.0).collect::<BTreeSet<_>>().len() as u64,
            blocks: d.blocks.len() as u64,
        });
    }
    nodes.sort_by(|a, b| a.node.cmp(&b.node));
    let none = interned.get("").copied();
    let name = |i: u32| strings.get(i as usize).cloned().unwrap_or_default();
    let mut totals = Totals::default();
    let mut by_metric: HashMap<u32, CostStat> = HashMap::new();
    let mut by_job: HashMap<u32, CostStat> = HashMap::new();
    let mut by_focus: HashMap<u32, CostStat> = HashMap::new();
    let mut by_set: HashMap<u32, u64> = HashMap::new();
    // In key order, so that float sums come out the same on every node.
    let mut ordered: Vec<(&u64, &SeriesAgg)> = series.iter().collect();
    ordered.sort_unstable_by_key(|(k, _)| **k);
    for (_, agg) in ordered {
        let bucket = agg.bucket_bytes(none);
        let add = |c: &mut CostStat| {
            c.series += 1;
            c.samples_per_second += agg.rate;
            c.head_bytes += agg.head_bytes;
            c.bucket_bytes += bucket;
        };
        add(by_metric.entry(agg.metric).or_default());
        add(by_job.entry(agg.job).or_default());
        if let Some(f) = agg.focus {
            add(by_focus.entry(f).or_default());
        }
        *by_set.entry(agg.set).or_default() += 1;
        totals.series += 1;
        totals.head_series += u64::from(agg.in_head);
        totals.bucket_series += u64::from(!agg.bucket.is_empty());
        totals.samples_per_second += agg.rate;
        totals.head_bytes += agg.head_bytes;
        totals.bucket_bytes += bucket;
    }
    let mut per_label: BTreeMap<String, u64> = BTreeMap::new();
    for (set, n) in &by_set {
        for l in sets.get(*set as usize).into_iter().flatten() {
            *per_label.entry(name(*l)).or_default() += n;
        }
    }
    let mut labels: Vec<LabelStat> = per_label
        .into_iter()
        .map(|(n, series)| LabelStat {
            values: values.get(n.as_str()).map_or(0, |v| v.len() as u64),
            name: n,
            series,
        })
        .collect();
    totals.metrics = by_metric.len() as u64;
    totals.label_names = labels.len() as u64;
    totals.label_value_pairs = labels.iter().map(|l| l.values).sum();
    totals.blocks = blocks.len() as u64;
    labels.sort_by(|a, b| (b.values, b.series, &a.name).cmp(&(a.values, a.series, &b.name)));
    labels.truncate(limit);
    let named = |m: HashMap<u32, CostStat>| -> Vec<CostStat> {
        let mut v: Vec<CostStat> = m
            .into_iter()
            .map(|(i, mut c)| {
                c.name = name(i);
                c
            })
            .collect();
        v.sort_by(|a, b| (b.series, &a.name).cmp(&(a.series, &b.name)));
        v.truncate(limit);
        v
    };
    Report {
        totals,
        series_count_by_metric_name: named(by_metric),
        series_count_by_job: named(by_job),
        series_count_by_label_name: labels,
        focus_label: focus.map(str::to_string),
        series_count_by_focus_label_value: focus.map(|_| named(by_focus)),
        nodes,
    }
}

#[cfg(test)]
#[path = "digest_tests.rs"]
mod tests;
