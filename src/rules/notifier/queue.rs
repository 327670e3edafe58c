//! The notification queue between `Notifier::send` and the sending task: a bounded FIFO of
//! alerts that drops the oldest when full (Prometheus's `--alertmanager.notification-queue-
//! capacity` behaviour) and hands out batches. Pure; the caller holds it under a lock and
//! counts what `push` reports as dropped.

use std::collections::VecDeque;

use super::payload::OutgoingAlert;

/// Prometheus's default queue capacity.
pub const DEFAULT_CAPACITY: usize = 10_000;
/// Prometheus 2.42's batch size (`maxBatchSize`).
pub const DEFAULT_BATCH_SIZE: usize = 64;

#[derive(Debug)]
pub struct AlertQueue {
    items: VecDeque<OutgoingAlert>,
    capacity: usize,
}

impl AlertQueue {
    /// A queue of at most `capacity` alerts (at least one).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        AlertQueue {
            items: VecDeque::new(),
            capacity,
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Appends `alerts`, dropping the oldest queued ones (and, when `alerts` alone is over
    /// capacity, its own oldest) so the newest state wins. Returns how many were dropped.
    pub fn push(&mut self, alerts: Vec<OutgoingAlert>) -> usize {
        let mut dropped = 0;
        let mut alerts = alerts;
        if alerts.len() > self.capacity {
            let over = alerts.len() - self.capacity;
            alerts.drain(..over);
            dropped += over;
        }
        let over = (self.items.len() + alerts.len()).saturating_sub(self.capacity);
        self.items.drain(..over);
        dropped += over;
        self.items.extend(alerts);
        dropped
    }

    /// Takes up to `max` of the oldest alerts.
    pub fn next_batch(&mut self, max: usize) -> Vec<OutgoingAlert> {
        let n = self.items.len().min(max.max(1));
        self.items.drain(..n).collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::storage::model::Labels;
    use std::collections::BTreeMap;

    fn alert(i: usize) -> OutgoingAlert {
        OutgoingAlert {
            labels: Labels::from_pairs([("alertname", format!("a{i}"))]),
            annotations: BTreeMap::new(),
            starts_at_ms: Some(0),
            ends_at_ms: None,
            generator_url: String::new(),
        }
    }

    fn names(v: &[OutgoingAlert]) -> Vec<String> {
        v.iter()
            .map(|a| a.labels.get("alertname").unwrap().to_string())
            .collect()
    }

    #[test]
    fn full_queue_drops_the_oldest() {
        let mut q = AlertQueue::new(3);
        assert_eq!(q.push((0..2).map(alert).collect()), 0);
        assert_eq!(q.push((2..4).map(alert).collect()), 1);
        assert_eq!(q.len(), 3);
        assert_eq!(names(&q.next_batch(10)), ["a1", "a2", "a3"]);
        assert!(q.is_empty());
    }

    #[test]
    fn a_push_larger_than_capacity_keeps_its_newest() {
        let mut q = AlertQueue::new(2);
        q.push(vec![alert(9)]);
        assert_eq!(q.push((0..5).map(alert).collect()), 4);
        assert_eq!(names(&q.next_batch(10)), ["a3", "a4"]);
    }

    #[test]
    fn batches_are_bounded_and_in_order() {
        let mut q = AlertQueue::new(DEFAULT_CAPACITY);
        q.push((0..150).map(alert).collect());
        let sizes: Vec<usize> = std::iter::from_fn(|| {
            let b = q.next_batch(DEFAULT_BATCH_SIZE);
            (!b.is_empty()).then_some(b.len())
        })
        .collect();
        assert_eq!(sizes, [64, 64, 22]);
        assert_eq!(AlertQueue::new(0).capacity(), 1);
    }
}
