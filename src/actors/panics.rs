//! Why a role thread died: the panic message of each watched thread, kept until the supervisor
//! reads it. Each node's supervisor owns its own `PanicLog` and watches only its role threads,
//! so nodes in one process (the tests) never see each other's panics, and a stopped node's log
//! goes away with it. Rust's panic hook is process-wide by nature: it is installed once, keeps
//! only weak references to the live logs, and defers to the default hook so the panic is still
//! printed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::thread::ThreadId;

/// Panic messages of the threads one supervisor watches.
#[derive(Default)]
pub struct PanicLog {
    watched: Mutex<HashMap<ThreadId, Option<String>>>,
}

/// The live logs the hook reports to.
fn logs() -> &'static Mutex<Vec<Weak<PanicLog>>> {
    static LOGS: OnceLock<Mutex<Vec<Weak<PanicLog>>>> = OnceLock::new();
    LOGS.get_or_init(|| Mutex::new(Vec::new()))
}

fn install_hook() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let msg = if let Some(s) = info.payload().downcast_ref::<&str>() {
                (*s).to_string()
            } else if let Some(s) = info.payload().downcast_ref::<String>() {
                s.clone()
            } else {
                "panic".to_string()
            };
            record(std::thread::current().id(), &msg);
            default(info);
        }));
    });
}

/// Hands a panic message to the log watching `thread`, pruning logs whose node is gone.
fn record(thread: ThreadId, msg: &str) {
    let Ok(mut all) = logs().lock() else {
        return;
    };
    all.retain(|w| w.strong_count() > 0);
    for log in all.iter().filter_map(Weak::upgrade) {
        if let Ok(mut watched) = log.watched.lock() {
            if let Some(slot) = watched.get_mut(&thread) {
                *slot = Some(msg.to_string());
            }
        }
    }
}

impl PanicLog {
    /// A new log, registered with the process's panic hook (installed on first use).
    pub fn new() -> Arc<Self> {
        install_hook();
        let log = Arc::new(PanicLog::default());
        if let Ok(mut all) = logs().lock() {
            all.push(Arc::downgrade(&log));
        }
        log
    }

    /// Starts remembering the panic message of `thread`.
    pub fn watch(&self, thread: ThreadId) {
        if let Ok(mut watched) = self.watched.lock() {
            watched.insert(thread, None);
        }
    }

    /// The panic message of `thread`, if it panicked; the thread is no longer watched.
    pub fn take(&self, thread: ThreadId) -> Option<String> {
        self.watched.lock().ok()?.remove(&thread).flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_gets_the_panics_of_its_threads_only() {
        let mine = PanicLog::new();
        let other = PanicLog::new();
        let (tx, rx) = std::sync::mpsc::channel();
        let log = mine.clone();
        let handle = std::thread::spawn(move || {
            log.watch(std::thread::current().id());
            let _ = tx.send(std::thread::current().id());
            panic!("role exploded");
        });
        let id = rx.recv().unwrap();
        assert!(handle.join().is_err());
        assert_eq!(other.take(id), None);
        assert_eq!(mine.take(id).as_deref(), Some("role exploded"));
        assert_eq!(mine.take(id), None, "taken once");
    }

    #[test]
    fn dropped_logs_are_pruned() {
        let log = PanicLog::new();
        drop(log);
        record(std::thread::current().id(), "nobody listens");
        let all = logs().lock().unwrap();
        assert!(all.iter().all(|w| w.strong_count() > 0));
    }
}
