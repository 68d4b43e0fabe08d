//! Drop and backpressure counters shared by all executors of a node.
//!
//! Every place that drops something increments one of these; they are read by metrics and
//! logged at shutdown. Relaxed atomics: they are statistics, not synchronisation.

use std::sync::atomic::{AtomicU64, Ordering};

/// Node-wide counters. One instance, shared by `Arc`, lives as long as the process.
#[derive(Debug, Default)]
pub struct Counters {
    /// Messages refused because a mesh mailbox was full.
    pub mesh_full: AtomicU64,
    /// Messages dropped because the destination executor had stopped.
    pub mesh_disconnected: AtomicU64,
    /// Outbound packets dropped because a session's send queue was full (the session is closed).
    pub outbox_overflow: AtomicU64,
    /// Broadcast deliveries skipped because the member's session was already gone.
    pub broadcast_stale_member: AtomicU64,
    /// Acks that arrived after their timeout (or for an unknown id) and were dropped.
    pub late_acks: AtomicU64,
    /// `chat:message`s refused because their socket already had the most in flight.
    pub chat_flood_refused: AtomicU64,
}

/// A plain copy of [`Counters`] at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CountersSnapshot {
    /// See [`Counters::mesh_full`].
    pub mesh_full: u64,
    /// See [`Counters::mesh_disconnected`].
    pub mesh_disconnected: u64,
    /// See [`Counters::outbox_overflow`].
    pub outbox_overflow: u64,
    /// See [`Counters::broadcast_stale_member`].
    pub broadcast_stale_member: u64,
    /// See [`Counters::late_acks`].
    pub late_acks: u64,
    /// See [`Counters::chat_flood_refused`].
    pub chat_flood_refused: u64,
}

impl Counters {
    /// Adds one to `counter`.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Reads every counter.
    pub fn snapshot(&self) -> CountersSnapshot {
        let r = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CountersSnapshot {
            mesh_full: r(&self.mesh_full),
            mesh_disconnected: r(&self.mesh_disconnected),
            outbox_overflow: r(&self.outbox_overflow),
            broadcast_stale_member: r(&self.broadcast_stale_member),
            late_acks: r(&self.late_acks),
            chat_flood_refused: r(&self.chat_flood_refused),
        }
    }
}
