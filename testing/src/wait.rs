//! Waiting on a condition with a deadline, the tests' only way to synchronise with something
//! that happens in another task, thread or process (never a fixed sleep).
//!
//! A condition is an async closure returning `bool` (or `Option<T>` for [`Wait::until_some`]).
//! A synchronous check that needs `&mut` state can return `std::future::ready(..)`. It is
//! evaluated first at once, then every poll period until it holds or the timeout passes; the
//! timeout is measured on tokio's clock, so tests with paused time work too.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// How often a condition is checked unless [`Wait::poll`] says otherwise.
pub const DEFAULT_POLL: Duration = Duration::from_millis(20);

/// A condition did not hold before its deadline. `Debug` prints the same sentence as `Display`,
/// so `.unwrap()` on a [`Wait`] result fails with a readable message.
#[derive(Clone, PartialEq, Eq)]
pub struct TimedOut {
    /// The condition's name, as given to [`Wait::new`].
    pub what: String,
    /// How long it was waited for.
    pub after: Duration,
}

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "timed out after {:?} waiting for {}",
            self.after, self.what
        )
    }
}

impl fmt::Debug for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for TimedOut {}

/// A named condition's deadline and poll period.
#[derive(Clone, Debug)]
pub struct Wait {
    what: String,
    timeout: Duration,
    poll: Duration,
}

impl Wait {
    /// Waits up to `timeout` for the condition called `what` (named in the error).
    pub fn new(what: impl Into<String>, timeout: Duration) -> Self {
        Wait {
            what: what.into(),
            timeout,
            poll: DEFAULT_POLL,
        }
    }

    /// Checks the condition every `period` (for checks that are costly, e.g. on big clusters).
    pub fn poll(mut self, period: Duration) -> Self {
        self.poll = period;
        self
    }

    /// Polls `probe` until it returns `Some`, and returns that value.
    pub async fn until_some<T, F, Fut>(&self, mut probe: F) -> Result<T, TimedOut>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        let start = Instant::now();
        loop {
            if let Some(v) = probe().await {
                return Ok(v);
            }
            if start.elapsed() >= self.timeout {
                return Err(TimedOut {
                    what: self.what.clone(),
                    after: self.timeout,
                });
            }
            tokio::time::sleep(self.poll).await;
        }
    }

    /// Polls `cond` until it returns true; returns how long that took.
    pub async fn until<F, Fut>(&self, mut cond: F) -> Result<Duration, TimedOut>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        let start = Instant::now();
        self.until_some(|| {
            let holds = cond();
            async move { holds.await.then_some(()) }
        })
        .await?;
        Ok(start.elapsed())
    }
}

/// Polls `cond` until it returns true and returns how long that took; panics naming `what`
/// after `timeout`. Use [`Wait`] to add diagnostics to the failure or change the poll period.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, cond: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    match Wait::new(what, timeout).until(cond).await {
        Ok(took) => took,
        Err(e) => panic!("{e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(start_paused = true)]
    async fn a_condition_that_becomes_true_ends_the_wait() {
        let calls = AtomicUsize::new(0);
        let took = Wait::new("third call", Duration::from_secs(5))
            .until(|| async { calls.fetch_add(1, Ordering::SeqCst) == 2 })
            .await
            .expect("holds on the third call");
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(took, 2 * DEFAULT_POLL);
    }

    #[tokio::test(start_paused = true)]
    async fn a_timeout_names_the_condition() {
        let err = Wait::new("the moon to turn blue", Duration::from_secs(1))
            .until(|| std::future::ready(false))
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "timed out after 1s waiting for the moon to turn blue"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn until_some_returns_the_value_and_sync_checks_may_mutate() {
        let mut seen = Vec::new();
        let v = Wait::new("a value", Duration::from_secs(1))
            .until_some(|| {
                seen.push(seen.len());
                std::future::ready((seen.len() == 3).then_some("found"))
            })
            .await;
        assert_eq!(v, Ok("found"));
        assert_eq!(seen, [0, 1, 2]);
    }

    #[tokio::test(start_paused = true)]
    #[should_panic(expected = "timed out after 1s waiting for never")]
    async fn wait_until_panics_with_the_name() {
        wait_until("never", Duration::from_secs(1), || async { false }).await;
    }
}
