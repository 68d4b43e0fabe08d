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
    /// Client events refused by a socket's rate limit.
    pub chat_rate_limited: AtomicU64,
    /// Sockets disconnected for staying far over their rate limit.
    pub chat_rate_disconnects: AtomicU64,
    /// Requests refused by a node-wide cap (live conversations, pending commands).
    pub chat_capacity_refused: AtomicU64,
    /// Connections accepted and closed at once: the node-wide connection cap was reached.
    pub http_refused_node_cap: AtomicU64,
    /// Connections answered 429: their client address had the most concurrent connections.
    pub http_refused_ip_conns: AtomicU64,
    /// HTTP requests answered 429: their client address was over its request rate.
    pub http_rate_limited: AtomicU64,
    /// Requests answered 408: the head or the body missed its deadline.
    pub http_timeouts: AtomicU64,
    /// Requests refused for their framing (400 / 413 / 431; the connection is closed).
    pub http_malformed: AtomicU64,
    /// Engine.IO requests refused (403) for an `Origin` not in the CORS list.
    pub http_origin_refused: AtomicU64,
    /// `accept` failures (EMFILE, ENFILE, ENOBUFS ...), each followed by a back-off.
    pub http_accept_errors: AtomicU64,
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
    /// See [`Counters::chat_rate_limited`].
    pub chat_rate_limited: u64,
    /// See [`Counters::chat_rate_disconnects`].
    pub chat_rate_disconnects: u64,
    /// See [`Counters::chat_capacity_refused`].
    pub chat_capacity_refused: u64,
    /// See [`Counters::http_refused_node_cap`].
    pub http_refused_node_cap: u64,
    /// See [`Counters::http_refused_ip_conns`].
    pub http_refused_ip_conns: u64,
    /// See [`Counters::http_rate_limited`].
    pub http_rate_limited: u64,
    /// See [`Counters::http_timeouts`].
    pub http_timeouts: u64,
    /// See [`Counters::http_malformed`].
    pub http_malformed: u64,
    /// See [`Counters::http_origin_refused`].
    pub http_origin_refused: u64,
    /// See [`Counters::http_accept_errors`].
    pub http_accept_errors: u64,
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
            chat_rate_limited: r(&self.chat_rate_limited),
            chat_rate_disconnects: r(&self.chat_rate_disconnects),
            chat_capacity_refused: r(&self.chat_capacity_refused),
            http_refused_node_cap: r(&self.http_refused_node_cap),
            http_refused_ip_conns: r(&self.http_refused_ip_conns),
            http_rate_limited: r(&self.http_rate_limited),
            http_timeouts: r(&self.http_timeouts),
            http_malformed: r(&self.http_malformed),
            http_origin_refused: r(&self.http_origin_refused),
            http_accept_errors: r(&self.http_accept_errors),
        }
    }
}
