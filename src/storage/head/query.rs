//! Reading the head through `model::Queryable`: postings narrow the candidates, labels are
//! checked with every matcher, and each hit carries its closed chunks plus a snapshot of the
//! open chunk that overlap the requested range.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::series::MemSeries;
use super::Head;
use crate::storage::model::{Matcher, QueryResult, Queryable, SelectHints, Series};

impl Head {
    fn overlaps(&self, mint: i64, maxt: i64) -> bool {
        self.max_time() >= mint && self.min_time() <= maxt
    }

    /// Series matching every matcher (no time filter).
    pub(crate) fn matching_series(&self, matchers: &[Matcher]) -> Vec<Arc<MemSeries>> {
        let candidates = self.postings.read().candidates(matchers);
        let series: Vec<Arc<MemSeries>> = match candidates {
            Some(refs) => refs
                .into_iter()
                .filter_map(|r| self.get_by_ref(r))
                .collect(),
            None => self.all_series(),
        };
        series
            .into_iter()
            .filter(|s| {
                matchers
                    .iter()
                    .all(|m| m.matches(s.labels.get(&m.name).unwrap_or("")))
            })
            .collect()
    }
}

impl Queryable for Head {
    fn select(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        hints: &SelectHints,
    ) -> QueryResult<Vec<Series>> {
        if !self.overlaps(mint, maxt) {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for s in self.matching_series(matchers) {
            let d = s.data.lock();
            if hints.labels_only {
                if d.has_data_in(mint, maxt) {
                    out.push(Series {
                        labels: s.labels.to_labels(),
                        chunks: Vec::new(),
                    });
                }
                continue;
            }
            let chunks = d.chunks_in(mint, maxt);
            drop(d);
            if !chunks.is_empty() {
                out.push(Series {
                    labels: s.labels.to_labels(),
                    chunks,
                });
            }
        }
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        if hints.limit > 0 && out.len() > hints.limit {
            out.truncate(hints.limit);
        }
        Ok(out)
    }

    fn label_names(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> QueryResult<Vec<String>> {
        if !self.overlaps(mint, maxt) {
            return Ok(Vec::new());
        }
        if matchers.is_empty() {
            return Ok(self.postings.read().names());
        }
        let mut names = BTreeSet::new();
        for s in self.matching_series(matchers) {
            if s.data.lock().has_data_in(mint, maxt) {
                names.extend(s.labels.iter().map(|(n, _)| n.to_string()));
            }
        }
        Ok(names.into_iter().collect())
    }

    fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> QueryResult<Vec<String>> {
        if !self.overlaps(mint, maxt) {
            return Ok(Vec::new());
        }
        if matchers.is_empty() {
            return Ok(self.postings.read().values(name));
        }
        let mut values = BTreeSet::new();
        for s in self.matching_series(matchers) {
            if let Some(v) = s.labels.get(name) {
                if s.data.lock().has_data_in(mint, maxt) {
                    values.insert(v.to_string());
                }
            }
        }
        Ok(values.into_iter().collect())
    }
}
