//! The store's in-memory cache for bytes fetched from the bucket (postings lists, series
//! entries, chunk records) and for resolved header symbols, shared by every block, with a hard
//! byte budget and CLOCK (second-chance) eviction. Keys name the block and the absolute offset
//! of the record, so a hit never needs the bucket. Counters make the hit rate observable.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use ulid::Ulid;

/// What kind of record a cache entry holds (part of the key and of the stats).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ItemKind {
    Postings,
    Series,
    Chunk,
    /// A resolved symbol of the index header (offset = symbol reference).
    Symbol,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheKey {
    pub block: Ulid,
    pub kind: ItemKind,
    /// Absolute offset in the index file, or the chunk reference.
    pub offset: u64,
}

impl std::hash::Hash for CacheKey {
    /// Offsets are multiples of 16 or 4 and blocks share their high bits, so the fields are
    /// mixed (splitmix64 finalizer) before hashing: a fast hasher then still spreads the keys.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let b = u128::from(self.block);
        let mut x = (b as u64) ^ ((b >> 64) as u64).rotate_left(17) ^ self.offset;
        x ^= (slot(self.kind) as u64) << 61;
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        state.write_u64(x ^ (x >> 31));
    }
}

/// Fixed per-entry overhead charged against the budget, so many tiny entries cannot exceed it.
const ENTRY_OVERHEAD: u64 = 64;

struct Slot {
    value: Bytes,
    /// Set on every hit; eviction gives referenced entries a second chance (CLOCK), which
    /// approximates LRU with O(1) work per hit.
    referenced: bool,
}

struct Inner {
    map: FxHashMap<CacheKey, Slot>,
    /// Keys in insertion order: the CLOCK hand walks from the front.
    queue: VecDeque<CacheKey>,
    bytes: u64,
}

/// A byte-bounded cache with (approximate) least-recently-used eviction. Values are `Bytes`,
/// so a hit hands out a cheap reference-counted view.
pub struct ByteLru {
    budget: u64,
    inner: Mutex<Inner>,
    hits: [AtomicU64; 4],
    misses: [AtomicU64; 4],
    evictions: AtomicU64,
}

/// A snapshot of the cache counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub budget_bytes: u64,
    pub used_bytes: u64,
    pub entries: u64,
    pub postings_hits: u64,
    pub postings_misses: u64,
    pub series_hits: u64,
    pub series_misses: u64,
    pub chunk_hits: u64,
    pub chunk_misses: u64,
    pub symbol_hits: u64,
    pub symbol_misses: u64,
    pub evictions: u64,
}

fn slot(kind: ItemKind) -> usize {
    match kind {
        ItemKind::Postings => 0,
        ItemKind::Series => 1,
        ItemKind::Chunk => 2,
        ItemKind::Symbol => 3,
    }
}

fn cost(value: &Bytes) -> u64 {
    value.len() as u64 + ENTRY_OVERHEAD
}

impl ByteLru {
    pub fn new(budget: u64) -> Self {
        ByteLru {
            budget,
            inner: Mutex::new(Inner {
                map: FxHashMap::default(),
                queue: VecDeque::new(),
                bytes: 0,
            }),
            hits: Default::default(),
            misses: Default::default(),
            evictions: AtomicU64::new(0),
        }
    }

    pub fn get(&self, key: &CacheKey) -> Option<Bytes> {
        let found = {
            let mut g = self.inner.lock();
            g.map.get_mut(key).map(|s| {
                s.referenced = true;
                s.value.clone()
            })
        };
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter[slot(key.kind)].fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Inserts `value`, evicting entries not used since the hand last passed them until the
    /// budget holds. Values larger than an eighth of the budget are not cached: one huge list
    /// must not flush everything else.
    pub fn insert(&self, key: CacheKey, value: Bytes) {
        let new_cost = cost(&value);
        if new_cost > self.budget / 8 {
            return;
        }
        let mut g = self.inner.lock();
        let inner = &mut *g;
        if let Some(old) = inner.map.get_mut(&key) {
            inner.bytes = inner.bytes - cost(&old.value) + new_cost;
            old.value = value;
            old.referenced = true;
        } else {
            inner.map.insert(
                key,
                Slot {
                    value,
                    referenced: false,
                },
            );
            inner.queue.push_back(key);
            inner.bytes += new_cost;
        }
        // Every entry gets at most one second chance per pass, so this ends.
        let mut chances = inner.queue.len();
        while inner.bytes > self.budget {
            let Some(k) = inner.queue.pop_front() else {
                break;
            };
            let Some(s) = inner.map.get_mut(&k) else {
                continue;
            };
            if s.referenced && chances > 0 && k != key {
                s.referenced = false;
                chances -= 1;
                inner.queue.push_back(k);
                continue;
            }
            if k == key && inner.map.len() > 1 {
                // Never evict what is being inserted while older entries remain.
                inner.queue.push_back(k);
                chances = chances.saturating_sub(1);
                continue;
            }
            if let Some(old) = inner.map.remove(&k) {
                inner.bytes -= cost(&old.value);
                self.evictions.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Drops every entry of `block` (when the block is released).
    pub fn remove_block(&self, block: Ulid) {
        let mut g = self.inner.lock();
        let inner = &mut *g;
        let mut freed = 0;
        inner.map.retain(|k, s| {
            let keep = k.block != block;
            if !keep {
                freed += cost(&s.value);
            }
            keep
        });
        inner.bytes -= freed;
        inner.queue.retain(|k| k.block != block);
    }

    pub fn stats(&self) -> CacheStats {
        let (used, entries) = {
            let g = self.inner.lock();
            (g.bytes, g.map.len() as u64)
        };
        let h = |i: usize| self.hits[i].load(Ordering::Relaxed);
        let m = |i: usize| self.misses[i].load(Ordering::Relaxed);
        CacheStats {
            budget_bytes: self.budget,
            used_bytes: used,
            entries,
            postings_hits: h(0),
            postings_misses: m(0),
            series_hits: h(1),
            series_misses: m(1),
            chunk_hits: h(2),
            chunk_misses: m(2),
            symbol_hits: h(3),
            symbol_misses: m(3),
            evictions: self.evictions.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(offset: u64) -> CacheKey {
        CacheKey {
            block: Ulid::nil(),
            kind: ItemKind::Chunk,
            offset,
        }
    }

    #[test]
    fn evicts_least_recently_used_within_budget() {
        let lru = ByteLru::new(8 * (100 + ENTRY_OVERHEAD));
        for i in 0..8 {
            lru.insert(key(i), Bytes::from(vec![0u8; 100]));
        }
        assert!(lru.get(&key(0)).is_some());
        lru.insert(key(100), Bytes::from(vec![0u8; 100]));
        // Key 1 was the oldest untouched entry.
        assert!(lru.get(&key(1)).is_none());
        assert!(lru.get(&key(0)).is_some());
        let s = lru.stats();
        assert!(s.used_bytes <= s.budget_bytes);
        assert_eq!(s.evictions, 1);
        assert_eq!(s.chunk_hits, 2);
        assert_eq!(s.chunk_misses, 1);
    }

    #[test]
    fn oversized_values_are_not_cached_and_blocks_can_be_dropped() {
        let lru = ByteLru::new(1000);
        lru.insert(key(1), Bytes::from(vec![0u8; 500]));
        assert!(lru.get(&key(1)).is_none());
        lru.insert(key(2), Bytes::from(vec![0u8; 10]));
        lru.remove_block(Ulid::nil());
        assert!(lru.get(&key(2)).is_none());
        assert_eq!(lru.stats().used_bytes, 0);
    }

    proptest::proptest! {
        #[test]
        fn budget_always_holds(ops in proptest::collection::vec((0u64..50, 0usize..300, proptest::bool::ANY), 1..300)) {
            let lru = ByteLru::new(4000);
            for (k, len, is_get) in ops {
                if is_get {
                    if let Some(v) = lru.get(&key(k)) {
                        proptest::prop_assert!(v.len() < 4000);
                    }
                } else {
                    lru.insert(key(k), Bytes::from(vec![k as u8; len]));
                    // What was just inserted (and fits an eighth of the budget) is cached.
                    if len as u64 + ENTRY_OVERHEAD <= 500 {
                        let got = lru.get(&key(k));
                        proptest::prop_assert_eq!(got.map(|b| b.len()), Some(len));
                    }
                }
                let st = lru.stats();
                proptest::prop_assert!(st.used_bytes <= st.budget_bytes);
            }
        }
    }
}
