//! Range functions of a range query evaluated for all steps at once (`batched_range_function`):
//! each series is walked once from left to right instead of being searched again at every
//! step, and the per-step results are handed out as the steps are evaluated.

use std::sync::Arc;

use promql_parser::parser::MatrixSelector;

use super::{seek_after, Evaluator, DEADLINE_CHECK_EVERY};
use crate::promql::error::Result;
use crate::promql::fetch::{check_deadline, dur_ms, offset_ms, SeriesData};
use crate::promql::value::Elem;
use crate::storage::model::{is_stale_nan, Labels, Sample};

/// The series' label sets without their names, if those are still all distinct. A function
/// over them then cannot give a step two equal label sets, so its results can carry the
/// names dropped already, which spares the per-step removal and duplicate check of
/// `drop_names_now` (whose result this is).
fn distinct_without_names(list: &[SeriesData]) -> Option<Vec<Arc<Labels>>> {
    let nameless: Vec<Arc<Labels>> = list
        .iter()
        .map(|s| Arc::new(crate::promql::engine::drop_name_labels(&s.labels)))
        .collect();
    let mut sorted: Vec<&Labels> = nameless.iter().map(|l| l.as_ref()).collect();
    sorted.sort_unstable();
    sorted.windows(2).all(|w| w[0] != w[1]).then_some(nameless)
}

/// The steps of one batched range function (see `batched_range_function`).
pub(super) struct Batch {
    /// Output per step; taken when that step is evaluated.
    per_step: Vec<Option<Vec<Elem>>>,
    /// Samples the step's range selector holds, for the sample limit.
    samples: Vec<usize>,
}

/// Most output elements a batch may hold at once; larger queries take the step-by-step path.
const BATCH_LIMIT: usize = 8_000_000;

impl Evaluator<'_> {
    /// `f` over `ms` at step `t` of a range query, computed for every step on the first call,
    /// series by series: each series' windows are found by walking it once from left to right
    /// instead of searching all series again at every step (as Prometheus evaluates range
    /// functions). `None` where this does not apply (instant queries, inside subqueries, a
    /// `t` off the step grid, results too large to hold); the caller then evaluates the step
    /// itself. Results, their order and the sample accounting are those of the step path.
    pub(crate) fn batched_range_function(
        &mut self,
        node: usize,
        ms: &MatrixSelector,
        t: i64,
        f: &dyn Fn(&[Sample], crate::promql::range_functions::Window) -> Option<f64>,
        keep_name: bool,
    ) -> Result<Option<Vec<Elem>>> {
        if self.step <= 0 || self.start >= self.end || self.sub_depth != 0 {
            return Ok(None);
        }
        if t < self.start || t > self.end || (t - self.start) % self.step != 0 {
            return Ok(None);
        }
        let k = ((t - self.start) / self.step) as usize;
        if !self.batches.contains_key(&node) {
            let Some(batch) = self.compute_batch(ms, f, keep_name)? else {
                return Ok(None);
            };
            self.batches.insert(node, batch);
        }
        let Some(batch) = self.batches.get_mut(&node) else {
            return Ok(None);
        };
        let Some(out) = batch.per_step.get_mut(k).and_then(Option::take) else {
            return Ok(None);
        };
        let n = batch.samples.get(k).copied().unwrap_or(0);
        self.add_samples(n)?;
        Ok(Some(out))
    }

    fn compute_batch(
        &self,
        ms: &MatrixSelector,
        f: &dyn Fn(&[Sample], crate::promql::range_functions::Window) -> Option<f64>,
        keep_name: bool,
    ) -> Result<Option<Batch>> {
        let steps = ((self.end - self.start) / self.step + 1) as usize;
        let empty = Vec::new();
        let list = self.data.series(&ms.vs).unwrap_or(&empty);
        if list.len().saturating_mul(steps) > BATCH_LIMIT {
            return Ok(None);
        }
        let range = dur_ms(ms.range);
        let off = offset_ms(&ms.vs.offset);
        let at = self.at_of(&ms.vs.at);
        let mut per_step: Vec<Vec<Elem>> = (0..steps).map(|_| Vec::new()).collect();
        let mut samples = vec![0usize; steps];
        let mut live: Vec<Sample> = Vec::new();
        let nameless = if keep_name || self.opts.delayed_name_removal {
            None
        } else {
            distinct_without_names(list)
        };
        for (i, s) in list.iter().enumerate() {
            if i % DEADLINE_CHECK_EVERY == DEADLINE_CHECK_EVERY - 1 {
                check_deadline(self.deadline, self.cancel, "query execution")?;
            }
            let (mut lo, mut hi) = (0, 0);
            for (k, (out, held)) in per_step.iter_mut().zip(samples.iter_mut()).enumerate() {
                let base = at.unwrap_or(self.start + k as i64 * self.step) - off;
                lo = seek_after(&s.samples, lo, base - range);
                hi = seek_after(&s.samples, hi.max(lo), base);
                let Some(window) = s.samples.get(lo..hi) else {
                    continue;
                };
                // Stale markers are not part of a range (as in `matrix_selector`).
                let points = if window.iter().any(|p| is_stale_nan(p.v)) {
                    live.clear();
                    live.extend(window.iter().filter(|p| !is_stale_nan(p.v)));
                    &live[..]
                } else {
                    window
                };
                if points.is_empty() {
                    continue;
                }
                *held += points.len();
                let w = crate::promql::range_functions::Window { end: base, range };
                if let Some(v) = f(points, w) {
                    let elem = match nameless.as_ref().and_then(|n| n.get(i)) {
                        Some(labels) => Elem {
                            labels: Arc::clone(labels),
                            v,
                            drop_name: false,
                        },
                        None => Elem {
                            labels: Arc::clone(&s.labels),
                            v,
                            drop_name: !keep_name,
                        },
                    };
                    out.push(elem);
                }
            }
        }
        Ok(Some(Batch {
            per_step: per_step.into_iter().map(Some).collect(),
            samples,
        }))
    }
}
