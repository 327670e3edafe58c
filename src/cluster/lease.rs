//! Singleton leases in the bucket: the guard that keeps a role that must never run twice (the
//! compactor of a bucket) single even when gossip is partitioned. A lease is a small JSON object
//! `strata/leases/<name>.json` naming its holder and expiry; a node may act only while it holds
//! an unexpired lease, and takes an expired one over. Because object stores have no
//! compare-and-swap, a writer waits a settle delay and reads the lease back: of two nodes that
//! raced, only the last writer sees itself. Holders stop acting a safety margin before expiry,
//! which bounds the clock skew tolerated between nodes.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::storage::bucket::{BucketError, ObjectStore};

pub const LEASE_PREFIX: &str = "strata/leases/";

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("lease {key}: {source}")]
    Bucket { key: String, source: BucketError },
    #[error("lease {key} is not valid JSON: {reason}")]
    Corrupt { key: String, reason: String },
}

pub type Result<T> = std::result::Result<T, LeaseError>;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    pub holder: String,
    pub expires_at_ms: i64,
    pub acquired_at_ms: i64,
}

/// What a node may do about a lease it read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Free or expired: write it.
    Take,
    /// Ours: extend it.
    Renew,
    /// Someone else holds it until then.
    Wait { holder: String, until_ms: i64 },
}

/// Pure: the decision for node `me` at `now_ms` given the current record.
pub fn decide(current: Option<&LeaseRecord>, me: &str, now_ms: i64) -> Decision {
    match current {
        None => Decision::Take,
        Some(r) if r.holder == me => Decision::Renew,
        Some(r) if r.expires_at_ms <= now_ms => Decision::Take,
        Some(r) => Decision::Wait {
            holder: r.holder.clone(),
            until_ms: r.expires_at_ms,
        },
    }
}

/// The outcome of one acquire attempt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LeaseState {
    /// We hold it and may act until `act_until_ms`.
    Held { act_until_ms: i64 },
    /// Someone else holds it.
    Standby { holder: String, until_ms: i64 },
}

pub struct Lease {
    store: Arc<dyn ObjectStore>,
    key: String,
    me: String,
    ttl: Duration,
    settle: Duration,
}

impl Lease {
    pub fn new(store: Arc<dyn ObjectStore>, name: &str, me: &str, ttl: Duration) -> Self {
        Lease {
            store,
            key: format!("{LEASE_PREFIX}{name}.json"),
            me: me.to_string(),
            ttl,
            settle: Duration::from_millis(500),
        }
    }

    /// The settle delay between writing a lease and reading it back.
    pub fn with_settle(mut self, settle: Duration) -> Self {
        self.settle = settle;
        self
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    /// The current record, if any.
    pub async fn read(&self) -> Result<Option<LeaseRecord>> {
        match self.store.get(&self.key).await {
            Ok(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| LeaseError::Corrupt {
                        key: self.key.clone(),
                        reason: e.to_string(),
                    })
            }
            Err(e) if e.is_not_found() => Ok(None),
            Err(source) => Err(LeaseError::Bucket {
                key: self.key.clone(),
                source,
            }),
        }
    }

    async fn write(&self, record: &LeaseRecord) -> Result<()> {
        let body = serde_json::to_vec(record).map_err(|e| LeaseError::Corrupt {
            key: self.key.clone(),
            reason: e.to_string(),
        })?;
        self.store
            .put_bytes(&self.key, Bytes::from(body))
            .await
            .map_err(|source| LeaseError::Bucket {
                key: self.key.clone(),
                source,
            })
    }

    /// Takes or renews the lease when allowed; a corrupt record counts as free.
    pub async fn acquire(&self) -> Result<LeaseState> {
        let current = match self.read().await {
            Ok(r) => r,
            Err(LeaseError::Corrupt { .. }) => None,
            Err(e) => return Err(e),
        };
        let now = crate::time::now_ms();
        let acquired_at_ms = match decide(current.as_ref(), &self.me, now) {
            Decision::Wait { holder, until_ms } => {
                return Ok(LeaseState::Standby { holder, until_ms })
            }
            Decision::Renew => current.as_ref().map(|r| r.acquired_at_ms).unwrap_or(now),
            Decision::Take => now,
        };
        let record = LeaseRecord {
            holder: self.me.clone(),
            expires_at_ms: now + self.ttl.as_millis() as i64,
            acquired_at_ms,
        };
        self.write(&record).await?;
        tokio::time::sleep(self.settle).await;
        match self.read().await? {
            Some(r) if r.holder == self.me => Ok(LeaseState::Held {
                act_until_ms: act_until(&r, self.ttl),
            }),
            Some(r) => Ok(LeaseState::Standby {
                holder: r.holder,
                until_ms: r.expires_at_ms,
            }),
            None => Ok(LeaseState::Standby {
                holder: String::new(),
                until_ms: now,
            }),
        }
    }

    /// Gives the lease up if we hold it (on a clean stop), so a successor need not wait.
    pub async fn release(&self) -> Result<()> {
        if let Some(r) = self.read().await? {
            if r.holder == self.me {
                return self
                    .store
                    .delete(&self.key)
                    .await
                    .map_err(|source| LeaseError::Bucket {
                        key: self.key.clone(),
                        source,
                    });
            }
        }
        Ok(())
    }
}

/// Every unexpired lease whose name starts with `prefix` (e.g. the compactor's stream leases),
/// as (name, record); unreadable records are skipped.
pub async fn live_leases(
    store: &dyn ObjectStore,
    prefix: &str,
) -> Result<Vec<(String, LeaseRecord)>> {
    let list_prefix = format!("{LEASE_PREFIX}{prefix}");
    let listed = store
        .list(&list_prefix, None)
        .await
        .map_err(|source| LeaseError::Bucket {
            key: list_prefix.clone(),
            source,
        })?;
    let now = crate::time::now_ms();
    let mut out = Vec::new();
    for entry in listed.objects {
        let Some(name) = entry
            .key
            .strip_prefix(LEASE_PREFIX)
            .and_then(|n| n.strip_suffix(".json"))
        else {
            continue;
        };
        let Ok(bytes) = store.get(&entry.key).await else {
            continue;
        };
        if let Ok(r) = serde_json::from_slice::<LeaseRecord>(&bytes) {
            if r.expires_at_ms > now {
                out.push((name.to_string(), r));
            }
        }
    }
    Ok(out)
}

/// A holder stops acting a third of the TTL before expiry: that margin absorbs clock skew and
/// the time a renewal takes.
pub fn act_until(record: &LeaseRecord, ttl: Duration) -> i64 {
    record.expires_at_ms - (ttl.as_millis() as i64) / 3
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::bucket::memory::MemoryStore;

    fn rec(holder: &str, exp: i64) -> LeaseRecord {
        LeaseRecord {
            holder: holder.into(),
            expires_at_ms: exp,
            acquired_at_ms: 0,
        }
    }

    #[test]
    fn decisions() {
        assert_eq!(decide(None, "a", 10), Decision::Take);
        assert_eq!(decide(Some(&rec("a", 5)), "a", 10), Decision::Renew);
        assert_eq!(decide(Some(&rec("b", 5)), "a", 10), Decision::Take);
        assert_eq!(
            decide(Some(&rec("b", 50)), "a", 10),
            Decision::Wait {
                holder: "b".into(),
                until_ms: 50
            }
        );
    }

    #[tokio::test]
    async fn only_one_of_two_nodes_holds_and_the_other_takes_over_after_expiry() {
        let store: Arc<dyn ObjectStore> = Arc::new(MemoryStore::new());
        let ttl = Duration::from_millis(400);
        let a =
            Lease::new(store.clone(), "compactor", "a", ttl).with_settle(Duration::from_millis(10));
        let b =
            Lease::new(store.clone(), "compactor", "b", ttl).with_settle(Duration::from_millis(10));
        assert!(matches!(
            a.acquire().await.unwrap(),
            LeaseState::Held { .. }
        ));
        assert!(
            matches!(b.acquire().await.unwrap(), LeaseState::Standby { ref holder, .. } if holder == "a")
        );
        assert!(
            matches!(a.acquire().await.unwrap(), LeaseState::Held { .. }),
            "renewal keeps it"
        );
        tokio::time::sleep(ttl + Duration::from_millis(50)).await;
        assert!(
            matches!(b.acquire().await.unwrap(), LeaseState::Held { .. }),
            "expired lease is taken over"
        );
        assert!(matches!(
            a.acquire().await.unwrap(),
            LeaseState::Standby { .. }
        ));
        b.release().await.unwrap();
        assert_eq!(b.read().await.unwrap(), None);
    }

    #[tokio::test]
    async fn racing_writers_end_with_one_holder() {
        let store: Arc<dyn ObjectStore> = Arc::new(MemoryStore::new());
        let ttl = Duration::from_secs(5);
        let a = Lease::new(store.clone(), "c", "a", ttl).with_settle(Duration::from_millis(50));
        let b = Lease::new(store.clone(), "c", "b", ttl).with_settle(Duration::from_millis(50));
        let (ra, rb) = tokio::join!(a.acquire(), b.acquire());
        let held = [ra.unwrap(), rb.unwrap()]
            .iter()
            .filter(|s| matches!(s, LeaseState::Held { .. }))
            .count();
        assert_eq!(held, 1);
    }

    #[tokio::test]
    async fn a_corrupt_record_counts_as_free() {
        let store: Arc<dyn ObjectStore> = Arc::new(MemoryStore::new());
        store
            .put_bytes("strata/leases/c.json", Bytes::from_static(b"{not json"))
            .await
            .unwrap();
        let a = Lease::new(store, "c", "a", Duration::from_secs(5))
            .with_settle(Duration::from_millis(1));
        assert!(matches!(
            a.acquire().await.unwrap(),
            LeaseState::Held { .. }
        ));
    }
}
