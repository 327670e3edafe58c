//! Freeing query results off the answer's path. Dropping every label string and sample vector
//! of a query takes a sizeable share of a short one and nothing needs to wait for it, so a
//! node's engine hands them to one background thread. The thread belongs to whoever holds the
//! `Freer` (the node's query service): it ends when the last clone is dropped. A bounded queue
//! keeps a burst of queries from piling up unfreed memory; beyond it the caller frees inline.

use std::sync::mpsc::{sync_channel, SyncSender};

/// Query results waiting for the background thread; beyond this the caller frees inline.
const FREE_QUEUE: usize = 16;

/// Where finished query data goes to be dropped. The default frees inline (no thread).
#[derive(Clone, Default)]
pub struct Freer {
    tx: Option<SyncSender<Box<dyn Send>>>,
}

impl std::fmt::Debug for Freer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Freer")
            .field("background", &self.tx.is_some())
            .finish()
    }
}

impl Freer {
    /// Frees on a new background thread, or inline when the thread cannot start.
    pub fn spawn() -> Self {
        let (tx, rx) = sync_channel::<Box<dyn Send>>(FREE_QUEUE);
        let started = std::thread::Builder::new()
            .name("strata-query-free".to_string())
            .spawn(move || rx.into_iter().for_each(drop));
        match started {
            Ok(_) => Freer { tx: Some(tx) },
            Err(e) => {
                tracing::warn!(error = %e, "cannot start the query freeing thread; freeing inline");
                Freer { tx: None }
            }
        }
    }

    /// Drops `garbage` in the background, or here when the queue is full or closed.
    pub fn free(&self, garbage: Box<dyn Send>) {
        if let Some(tx) = &self.tx {
            // A full or closed channel hands the value back, and it is dropped here instead.
            let _ = tx.try_send(garbage);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn inline_freer_drops_at_once() {
        let n = Arc::new(AtomicUsize::new(0));
        Freer::default().free(Box::new(Counted(n.clone())));
        assert_eq!(n.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn background_freer_drops_everything_and_its_thread_ends_with_it() {
        let n = Arc::new(AtomicUsize::new(0));
        let freer = Freer::spawn();
        for _ in 0..100 {
            freer.free(Box::new(Counted(n.clone())));
        }
        drop(freer);
        // The thread drains the queue and ends once the last sender is gone.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while n.load(Ordering::SeqCst) < 100 && std::time::Instant::now() < deadline {
            std::thread::yield_now();
        }
        assert_eq!(n.load(Ordering::SeqCst), 100);
    }
}
