//! The chat application's part of `/readyz`: every backend it was configured with must answer
//! — Redis (`PING` on this executor's connection to every server that holds keys, within the
//! command timeout), PostgreSQL (`SELECT 1` through the IO pool), Kafka (a metadata request,
//! cached for a second). The embedded backend has nothing to check.
//!
//! A shared backend that is down makes every node unready at once, as the contract asks
//! (`/readyz`: can this node serve every chat action?). Balancers then have no node to send
//! new requests to, although messaging needs only Redis and keeps working through a
//! PostgreSQL or Kafka outage on connections already open; README ("Operating livechat") says
//! so next to the probe settings.
//!
//! Lives on: the executor that received the probe.

use std::rc::Rc;

use super::engine::Chat;
use super::store::Store;

/// One (name, outcome) per configured backend.
pub async fn check(chat: Rc<Chat>) -> Vec<(&'static str, Result<(), String>)> {
    let mut checks = Vec::with_capacity(3);
    if let Store::Redis(r) = chat.store() {
        checks.push(("redis", redis(r.conn()).await));
    }
    if let Some(d) = &chat.services().durable {
        checks.push(("database", d.ping().await.map_err(|e| e.to_string())));
    }
    if let Some(k) = chat.services().events.probe().await {
        checks.push(("kafka", k));
    }
    checks
}

/// `PING` to every server holding keys (every master of a cluster).
async fn redis(conn: &crate::redis::Redis) -> Result<(), String> {
    let shards = conn.shards().await.map_err(|e| e.to_string())?;
    let pings: Vec<_> = shards
        .iter()
        .map(|c| c.query_value(&redis::cmd("PING")))
        .collect();
    for p in pings {
        p.await.map_err(|e| e.to_string())?;
    }
    Ok(())
}
