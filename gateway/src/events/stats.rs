//! What the event sink did: published by executors, delivered by the sink, dropped (buffer
//! full, producer queue full, or not delivered within the message timeout). Dropping is the
//! design (analytics never block a user action), so it is counted and warned about at most
//! every ten seconds rather than logged per event.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::metrics::SharedHistogram;

/// Counters of the event sink.
#[derive(Debug, Default)]
pub struct EventStats {
    /// Events handed over by the executors.
    pub published: AtomicU64,
    /// Records the sink confirmed (Kafka delivery reports, lines written).
    pub delivered: AtomicU64,
    /// Events or records given up.
    pub dropped: AtomicU64,
    /// Records the broker did not take: refused by the producer or not delivered (Kafka only;
    /// a subset of `dropped`).
    pub kafka_errors: AtomicU64,
    /// From produce to delivery report, per delivered record (Kafka only; the record's
    /// CreateTime, stamped by librdkafka, to the report: millisecond resolution).
    pub kafka_latency: SharedHistogram,
    /// When the last drop warning was logged (milliseconds since the epoch).
    last_warning: AtomicU64,
}

/// A copy of [`EventStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct EventSnapshot {
    pub published: u64,
    pub delivered: u64,
    pub dropped: u64,
    pub kafka_errors: u64,
    pub kafka_latency: crate::metrics::Histogram,
}

impl EventStats {
    /// The current values.
    pub fn snapshot(&self) -> EventSnapshot {
        EventSnapshot {
            published: self.published.load(Relaxed),
            delivered: self.delivered.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            kafka_errors: self.kafka_errors.load(Relaxed),
            kafka_latency: self.kafka_latency.snapshot(),
        }
    }

    /// Counts `n` dropped records and warns if the last warning is over ten seconds old.
    pub fn drop_records(&self, n: u64, why: &str) {
        let total = self.dropped.fetch_add(n, Relaxed) + n;
        let now = crate::chat::ids::now().millis().max(0) as u64;
        let last = self.last_warning.load(Relaxed);
        if now.saturating_sub(last) >= 10_000
            && self
                .last_warning
                .compare_exchange(last, now, Relaxed, Relaxed)
                .is_ok()
        {
            tracing::warn!(
                dropped_total = total,
                reason = why,
                "analytics events dropped (chat continues)"
            );
        }
    }
}
