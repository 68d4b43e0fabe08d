//! The text of one scrape: the summed executor reports, the node-wide atomics (drop counters,
//! the IO pool's database and event statistics) and the build, encoded by `prometheus-client`
//! in the Prometheus text format (0.0.4). Every metric, its labels and where it is counted:
//! `docs/metrics.md`.
//!
//! Runs on: the executor that received the scrape.

use livechat_shard_router::CountersSnapshot;
use prometheus_client::encoding::prometheus_text::encode as encode_text;
use prometheus_client::registry::Registry;

use super::super::store::STATUSES;
use crate::durable::stats::DurableSnapshot;
use crate::events::stats::EventSnapshot;
use crate::metrics::family::{ConstFamily, ConstHistograms};
use crate::metrics::{AcceptOutcome, Gathered};

/// Everything one scrape encodes.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// The executors' reports, summed.
    pub gathered: Gathered,
    /// The node-wide drop counters.
    pub counters: CountersSnapshot,
    /// The analytics sink's statistics, and which sink runs (`kafka`, `file`, `log`).
    pub events: EventSnapshot,
    /// `kafka`, `file` or `log`.
    pub sink: &'static str,
    /// PostgreSQL's statistics, when configured.
    pub durable: Option<DurableSnapshot>,
    /// Whether the store is Redis.
    pub redis: bool,
}

/// Counters that existed before the per-executor metrics: name (without `livechat_` and
/// `_total`), help, value. Their names are a contract: unchanged.
fn node_counters(c: &CountersSnapshot) -> [(&'static str, &'static str, u64); 16] {
    [
        (
            "mesh_full",
            "Cross-executor messages refused: mailbox full",
            c.mesh_full,
        ),
        (
            "mesh_disconnected",
            "Cross-executor messages dropped: executor stopped",
            c.mesh_disconnected,
        ),
        (
            "outbox_overflow",
            "Sessions closed because their send queue was full",
            c.outbox_overflow,
        ),
        (
            "broadcast_stale_member",
            "Broadcast deliveries skipped: session already gone",
            c.broadcast_stale_member,
        ),
        ("late_acks", "Acks dropped: late or unknown id", c.late_acks),
        (
            "chat_flood_refused",
            "chat:message refused: too many in flight on the socket",
            c.chat_flood_refused,
        ),
        (
            "chat_rate_limited",
            "Client events refused by the socket's rate limit (chat.security.rate)",
            c.chat_rate_limited,
        ),
        (
            "chat_rate_disconnects",
            "Sockets disconnected for staying far over their rate limit",
            c.chat_rate_disconnects,
        ),
        (
            "chat_capacity_refused",
            "Requests refused by a node-wide cap (live conversations, pending commands): 503",
            c.chat_capacity_refused,
        ),
        (
            "http_refused_node_cap",
            "Connections closed at accept: node-wide connection cap reached",
            c.http_refused_node_cap,
        ),
        (
            "http_refused_ip_conns",
            "Connections answered 429: too many concurrent connections from the client address",
            c.http_refused_ip_conns,
        ),
        (
            "http_rate_limited",
            "HTTP requests answered 429: client address over its request rate",
            c.http_rate_limited,
        ),
        (
            "http_timeouts",
            "HTTP requests answered 408: head or body missed its deadline",
            c.http_timeouts,
        ),
        (
            "http_malformed",
            "HTTP requests refused for their framing (connection closed)",
            c.http_malformed,
        ),
        (
            "http_origin_refused",
            "Engine.IO requests refused: Origin not allowed",
            c.http_origin_refused,
        ),
        (
            "http_accept_errors",
            "accept() failures (EMFILE, ENFILE, ENOBUFS ...)",
            c.http_accept_errors,
        ),
    ]
}

fn durable_counters(d: &DurableSnapshot) -> [(&'static str, &'static str, u64); 10] {
    [
        (
            "database_commits",
            "Group-commit statements written to PostgreSQL",
            d.commits,
        ),
        (
            "database_rows",
            "Conversation rows those statements carried",
            d.rows,
        ),
        (
            "database_stale",
            "Durable writes refused: the row held a newer version",
            d.stale,
        ),
        (
            "database_errors",
            "Failed PostgreSQL statements",
            d.write_errors,
        ),
        (
            "database_reverts",
            "Durable writes undone after the live store refused the step",
            d.reverts,
        ),
        (
            "database_queue_full",
            "Durable requests refused: the writer's queue was full",
            d.queue_full,
        ),
        (
            "database_touches",
            "Conversations whose message activity was written",
            d.touches_written,
        ),
        (
            "database_touches_dropped",
            "Message activity not kept for PostgreSQL",
            d.touches_dropped,
        ),
        ("database_reads", "Reads from PostgreSQL", d.reads),
        (
            "database_read_errors",
            "Failed reads from PostgreSQL",
            d.read_errors,
        ),
    ]
}

fn one(v: u64) -> ConstFamily {
    ConstFamily::counters().with(None, v as f64)
}

fn gauge(v: f64) -> ConstFamily {
    ConstFamily::gauges().with(None, v)
}

/// The scrape's text.
pub fn render(i: &Inputs) -> String {
    let mut r = Registry::with_prefix("livechat");
    let (t, c, e) = (&i.gathered.total, &i.counters, &i.events);
    for (name, help, v) in node_counters(c) {
        r.register(name, help, one(v));
    }
    r.register(
        "events_published",
        "Analytics events published by the executors (a message event becomes two records: lifecycle and messages topics)",
        one(e.published),
    );
    r.register(
        "events_delivered",
        "Analytics records the sink confirmed (Kafka delivery reports, file lines)",
        one(e.delivered),
    );
    r.register(
        "events_dropped",
        "Analytics given up: events when the buffer was full, records the broker did not take",
        one(e.dropped),
    );
    r.register(
        "kafka_events_dropped",
        "Alias of livechat_events_dropped_total: analytics events or records given up",
        one(e.dropped),
    );
    if let Some(d) = &i.durable {
        for (name, help, v) in durable_counters(d) {
            r.register(name, help, one(v));
        }
    }
    r.register(
        "connections",
        "Open Engine.IO sessions by current transport",
        ConstFamily::gauges()
            .with(Some(("transport", "polling")), t.polling as f64)
            .with(Some(("transport", "websocket")), t.websocket as f64),
    );
    r.register(
        "sockets",
        "Connected Socket.IO sockets",
        gauge(t.sockets as f64),
    );
    r.register(
        "rooms",
        "Socket.IO rooms with members, summed over executors (a room with members on k executors counts k times)",
        gauge(t.rooms as f64),
    );
    if let Some(by_status) = t.conversations {
        let mut f = ConstFamily::gauges();
        for (s, n) in STATUSES.iter().zip(by_status) {
            f = f.with(Some(("status", s.as_str())), n as f64);
        }
        r.register(
            "conversations",
            "Conversations held by the live store, by status",
            f,
        );
    }
    if let Some((len, wait_ms)) = t.queue {
        r.register(
            "queue_length",
            "Conversations waiting in the agent queue",
            gauge(len as f64),
        );
        r.register(
            "queue_oldest_wait_seconds",
            "How long the oldest queued conversation has waited (0 when the queue is empty)",
            gauge(wait_ms as f64 / 1000.0),
        );
    }
    r.register(
        "messages_stored",
        "Messages committed to the store (system messages included)",
        one(t.messages_stored),
    );
    r.register(
        "deliveries",
        "chat:message emits to sockets (live broadcasts and backlogs)",
        one(t.deliveries),
    );
    r.register(
        "acks",
        "Socket.IO acknowledgements sent to clients",
        one(t.acks),
    );
    let mut accepts = ConstFamily::counters();
    for (o, n) in AcceptOutcome::ALL.iter().zip(t.accepts) {
        accepts = accepts.with(Some(("outcome", o.as_str())), n as f64);
    }
    r.register(
        "accepts",
        "Agent accepts by outcome (HTTP 200 / 409 / 410 / 429)",
        accepts,
    );
    r.register(
        "rate_limited",
        "Refused for rate: HTTP requests (429) and socket events (aliases of http_rate_limited and chat_rate_limited)",
        ConstFamily::counters()
            .with(Some(("scope", "http")), c.http_rate_limited as f64)
            .with(Some(("scope", "socket")), c.chat_rate_limited as f64),
    );
    let (mut latency, mut errors) = (ConstHistograms::default(), ConstFamily::counters());
    if i.redis {
        latency = latency.with("backend", "redis", t.redis_latency);
        errors = errors.with(Some(("backend", "redis")), t.redis_errors as f64);
        r.register(
            "pubsub_messages",
            "Redis Pub/Sub messages: received by this node's subscriptions (in), published by the scripts it ran (out)",
            ConstFamily::counters()
                .with(Some(("direction", "in")), t.pubsub_in as f64)
                .with(Some(("direction", "out")), t.pubsub_out as f64),
        );
    }
    if let Some(d) = &i.durable {
        latency = latency.with("backend", "postgres", d.latency);
        errors = errors.with(
            Some(("backend", "postgres")),
            (d.write_errors + d.read_errors) as f64,
        );
    }
    if i.sink == "kafka" {
        latency = latency.with("backend", "kafka", e.kafka_latency);
        errors = errors.with(Some(("backend", "kafka")), e.kafka_errors as f64);
    }
    r.register(
        "backend_command_duration_seconds",
        "Backend round trips: Redis commands, PostgreSQL statements, Kafka produce-to-delivery-report",
        latency,
    );
    r.register("backend_errors", "Failed backend requests", errors);
    let mut depth = ConstFamily::gauges();
    for (index, n) in i.gathered.mailbox_depths.iter().enumerate() {
        depth = depth.with(Some(("executor", &index.to_string())), *n as f64);
    }
    r.register(
        "executor_mailbox_depth",
        "Messages waiting in each executor's mesh inbox",
        depth,
    );
    r.register(
        "scrape_executors_missing",
        "Executors that did not answer this scrape in time (their counters are left out of the sums)",
        gauge(i.gathered.missing as f64),
    );
    r.register(
        "build_info",
        "The running build (always 1)",
        ConstFamily::gauges().with(Some(("version", env!("CARGO_PKG_VERSION"))), 1.0),
    );
    let mut out = String::new();
    if let Err(e) = encode_text(&mut out, &r) {
        tracing::warn!(error = %e, "metrics not encoded");
    }
    out
}

#[cfg(test)]
#[path = "render_tests.rs"]
mod tests;
