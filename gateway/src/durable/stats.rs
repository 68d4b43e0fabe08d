//! What the durable writer did, for `/metrics`, the tests (group commit is asserted through
//! `commits` vs `rows`) and the benchmarks. Written on the IO pool only (a few atomic adds per
//! statement, never per executor operation).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::metrics::SharedHistogram;

/// Counters of the PostgreSQL service.
#[derive(Debug, Default)]
pub struct DurableStats {
    /// Write statements (group commits) that succeeded.
    pub commits: AtomicU64,
    /// Rows those statements carried.
    pub rows: AtomicU64,
    /// Writes refused because the row held a newer version.
    pub stale: AtomicU64,
    /// Failed statements (writes, reverts, touches).
    pub write_errors: AtomicU64,
    /// Reverts of writes whose step the live store then refused.
    pub reverts: AtomicU64,
    /// Writes refused at once because the writer's queue was full.
    pub queue_full: AtomicU64,
    /// Conversations whose activity was written.
    pub touches_written: AtomicU64,
    /// Activity not kept (the toucher's map or channel was full).
    pub touches_dropped: AtomicU64,
    /// Reads.
    pub reads: AtomicU64,
    /// Failed reads.
    pub read_errors: AtomicU64,
    /// How long each statement took (writes, reverts, touches, reads), failed ones included.
    pub latency: SharedHistogram,
}

/// A copy of [`DurableStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct DurableSnapshot {
    pub commits: u64,
    pub rows: u64,
    pub stale: u64,
    pub write_errors: u64,
    pub reverts: u64,
    pub queue_full: u64,
    pub touches_written: u64,
    pub touches_dropped: u64,
    pub reads: u64,
    pub read_errors: u64,
    pub latency: crate::metrics::Histogram,
}

impl DurableStats {
    /// The current values.
    pub fn snapshot(&self) -> DurableSnapshot {
        DurableSnapshot {
            commits: self.commits.load(Relaxed),
            rows: self.rows.load(Relaxed),
            stale: self.stale.load(Relaxed),
            write_errors: self.write_errors.load(Relaxed),
            reverts: self.reverts.load(Relaxed),
            queue_full: self.queue_full.load(Relaxed),
            touches_written: self.touches_written.load(Relaxed),
            touches_dropped: self.touches_dropped.load(Relaxed),
            reads: self.reads.load(Relaxed),
            read_errors: self.read_errors.load(Relaxed),
            latency: self.latency.snapshot(),
        }
    }
}
