//! One stripe of the series-by-ref index. Series refs are handed out in increasing order, so
//! a stripe keeps its refs in a dense ring of slots (ref / stripes → slot) instead of a hash
//! table: a lookup is an index, with no hashing and one memory access fewer on the append
//! path. Slots of removed series are trimmed from both ends; refs far outside the dense range
//! (possible only with a WAL written by someone else) go to a small overflow map so that a
//! huge ref can never make the ring allocate without bound.

use std::collections::VecDeque;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::series::MemSeries;

/// Refs further than this many slots beyond the dense range go to the overflow map.
const MAX_GAP: u64 = 1 << 16;

#[derive(Default)]
pub struct RefStripe {
    /// Slot index (ref / stripes) of `slots[0]`.
    base: u64,
    slots: VecDeque<Option<Arc<MemSeries>>>,
    overflow: FxHashMap<u64, Arc<MemSeries>>,
    live: usize,
}

impl RefStripe {
    pub fn get(&self, idx: u64) -> Option<&Arc<MemSeries>> {
        if let Some(off) = idx.checked_sub(self.base) {
            if let Some(Some(s)) = usize::try_from(off).ok().and_then(|o| self.slots.get(o)) {
                return Some(s);
            }
        }
        if self.overflow.is_empty() {
            None
        } else {
            self.overflow.get(&idx)
        }
    }

    pub fn contains(&self, idx: u64) -> bool {
        self.get(idx).is_some()
    }

    pub fn insert(&mut self, idx: u64, s: Arc<MemSeries>) {
        if self.slots.is_empty() {
            self.base = idx;
        }
        let end = self.base.saturating_add(self.slots.len() as u64);
        if idx < self.base {
            if self.base - idx > MAX_GAP {
                self.put_overflow(idx, s);
                return;
            }
            for _ in idx..self.base {
                self.slots.push_front(None);
            }
            self.base = idx;
        } else if idx >= end {
            if idx - end > MAX_GAP {
                self.put_overflow(idx, s);
                return;
            }
            for _ in end..=idx {
                self.slots.push_back(None);
            }
        }
        let off = (idx - self.base) as usize;
        if let Some(slot) = self.slots.get_mut(off) {
            if slot.replace(s).is_none() {
                self.live += 1;
            }
        }
    }

    fn put_overflow(&mut self, idx: u64, s: Arc<MemSeries>) {
        if self.overflow.insert(idx, s).is_none() {
            self.live += 1;
        }
    }

    pub fn remove(&mut self, idx: u64) {
        if let Some(off) = idx
            .checked_sub(self.base)
            .and_then(|o| usize::try_from(o).ok())
        {
            if let Some(slot) = self.slots.get_mut(off) {
                if slot.take().is_some() {
                    self.live -= 1;
                }
            }
        }
        if self.overflow.remove(&idx).is_some() {
            self.live -= 1;
        }
        while matches!(self.slots.front(), Some(None)) {
            self.slots.pop_front();
            self.base += 1;
        }
        while matches!(self.slots.back(), Some(None)) {
            self.slots.pop_back();
        }
        if self.slots.capacity() > 64 && self.slots.capacity() > 4 * self.slots.len() {
            self.slots.shrink_to_fit();
        }
    }

    pub fn len(&self) -> usize {
        self.live
    }

    pub fn values(&self) -> impl Iterator<Item = &Arc<MemSeries>> {
        self.slots.iter().flatten().chain(self.overflow.values())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::model::Labels;

    fn s(r: u64) -> Arc<MemSeries> {
        Arc::new(MemSeries::new(
            r,
            &Labels::from_pairs([("r", r.to_string())]),
            r,
            false,
        ))
    }

    #[test]
    fn dense_sparse_and_huge_refs() {
        let mut m = RefStripe::default();
        for i in [5u64, 6, 9, 2] {
            m.insert(i, s(i));
        }
        m.insert(u64::MAX / 1024, s(u64::MAX / 1024));
        assert_eq!(m.len(), 5);
        assert!(m.get(7).is_none());
        assert_eq!(m.get(9).map(|x| x.series_ref), Some(9));
        assert_eq!(
            m.get(u64::MAX / 1024).map(|x| x.series_ref),
            Some(u64::MAX / 1024)
        );
        m.remove(2);
        m.remove(5);
        assert_eq!(m.base, 6);
        m.remove(u64::MAX / 1024);
        m.remove(9);
        m.remove(9);
        assert_eq!(m.len(), 1);
        assert_eq!(
            m.values().map(|x| x.series_ref).collect::<Vec<_>>(),
            vec![6]
        );
        m.remove(6);
        assert_eq!(m.len(), 0);
        assert!(m.slots.is_empty());
        m.insert(1000, s(1000));
        assert_eq!(m.base, 1000);
    }
}
