//! `GET /metrics`: the node's counters in the Prometheus text format, encoded by
//! `prometheus-client`. Values are read at scrape time from where they are kept (node-wide
//! drop counters, the IO pool's database and event counters), so nothing on the hot path
//! knows about metrics.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::registry::Registry;

use super::engine::Chat;

/// The text of one scrape.
pub fn render(chat: &Chat) -> String {
    let mut r = Registry::with_prefix("livechat");
    let mut counter = |name: &str, help: &str, v: u64| {
        r.register(name, help, ConstCounter::new(v));
    };
    let c = chat.counters().snapshot();
    counter(
        "mesh_full",
        "Cross-executor messages refused: mailbox full",
        c.mesh_full,
    );
    counter(
        "mesh_disconnected",
        "Cross-executor messages dropped: executor stopped",
        c.mesh_disconnected,
    );
    counter(
        "outbox_overflow",
        "Sessions closed because their send queue was full",
        c.outbox_overflow,
    );
    counter(
        "broadcast_stale_member",
        "Broadcast deliveries skipped: session already gone",
        c.broadcast_stale_member,
    );
    counter("late_acks", "Acks dropped: late or unknown id", c.late_acks);
    counter(
        "chat_flood_refused",
        "chat:message refused: too many in flight on the socket",
        c.chat_flood_refused,
    );
    counter(
        "chat_rate_limited",
        "Client events refused by the socket's rate limit (chat.security.rate)",
        c.chat_rate_limited,
    );
    counter(
        "chat_rate_disconnects",
        "Sockets disconnected for staying far over their rate limit",
        c.chat_rate_disconnects,
    );
    counter(
        "chat_capacity_refused",
        "Requests refused by a node-wide cap (live conversations, pending commands): 503",
        c.chat_capacity_refused,
    );
    counter(
        "http_refused_node_cap",
        "Connections closed at accept: node-wide connection cap reached",
        c.http_refused_node_cap,
    );
    counter(
        "http_refused_ip_conns",
        "Connections answered 429: too many concurrent connections from the client address",
        c.http_refused_ip_conns,
    );
    counter(
        "http_rate_limited",
        "HTTP requests answered 429: client address over its request rate",
        c.http_rate_limited,
    );
    counter(
        "http_timeouts",
        "HTTP requests answered 408: head or body missed its deadline",
        c.http_timeouts,
    );
    counter(
        "http_malformed",
        "HTTP requests refused for their framing (connection closed)",
        c.http_malformed,
    );
    counter(
        "http_origin_refused",
        "Engine.IO requests refused: Origin not allowed",
        c.http_origin_refused,
    );
    counter(
        "http_accept_errors",
        "accept() failures (EMFILE, ENFILE, ENOBUFS ...)",
        c.http_accept_errors,
    );
    let e = chat.services.events.stats().snapshot();
    counter(
        "events_published",
        "Analytics events published by the executors (a message event becomes two records: lifecycle and messages topics)",
        e.published,
    );
    counter(
        "events_delivered",
        "Analytics records the sink confirmed (Kafka delivery reports, file lines)",
        e.delivered,
    );
    counter(
        "events_dropped",
        "Analytics given up: events when the buffer was full, records the broker did not take",
        e.dropped,
    );
    if let Some(d) = &chat.services.durable {
        let d = d.stats().snapshot();
        counter(
            "database_commits",
            "Group-commit statements written to PostgreSQL",
            d.commits,
        );
        counter(
            "database_rows",
            "Conversation rows those statements carried",
            d.rows,
        );
        counter(
            "database_stale",
            "Durable writes refused: the row held a newer version",
            d.stale,
        );
        counter(
            "database_errors",
            "Failed PostgreSQL statements",
            d.write_errors,
        );
        counter(
            "database_reverts",
            "Durable writes undone after the live store refused the step",
            d.reverts,
        );
        counter(
            "database_queue_full",
            "Durable requests refused: the writer's queue was full",
            d.queue_full,
        );
        counter(
            "database_touches",
            "Conversations whose message activity was written",
            d.touches_written,
        );
        counter(
            "database_touches_dropped",
            "Message activity not kept for PostgreSQL",
            d.touches_dropped,
        );
        counter("database_reads", "Reads from PostgreSQL", d.reads);
        counter(
            "database_read_errors",
            "Failed reads from PostgreSQL",
            d.read_errors,
        );
    }
    let mut out = String::new();
    if let Err(e) = encode(&mut out, &r) {
        tracing::warn!(error = %e, "metrics not encoded");
    }
    out
}
