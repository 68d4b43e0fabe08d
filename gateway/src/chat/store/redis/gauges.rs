//! The Redis backend's node-wide gauges for `/metrics`: the queue (length and oldest entry)
//! and conversations by status, from cheap reads of the indexes — `ZCARD`s and one
//! `ZRANGE … WITHSCORES` of a single entry, five commands in one write.
//!
//! Runs on: the queue executor of each node, once per scrape (every node reads the same
//! shared numbers; dashboards take `max` over nodes, not `sum`).
//!
//! Why indexes rather than a counter the commit script bumps: the status changes in the
//! conversation script, which may only touch keys of the conversation's Redis Cluster slot, so
//! it cannot keep a node-wide hash. The indexes are kept beside the commit (`open`, `closed`,
//! `assigned` in its follow-up write, the queue in the queue script); they lag a step only
//! after a crash between the two, until the next step of that conversation or the scan.

use livechat_core::Timestamp;

use super::RedisStore;
use crate::error::GatewayError;

/// What one read of the indexes found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreGauges {
    /// Conversations by status (`OPEN`, `QUEUED`, `ASSIGNED`, `CLOSED`).
    pub conversations: [u64; 4],
    /// Queued conversations.
    pub queue_length: u64,
    /// When the oldest queued conversation was enqueued.
    pub oldest: Option<Timestamp>,
}

impl RedisStore {
    /// Reads the queue and the status indexes (one write, five replies).
    pub async fn gauges(&self) -> Result<StoreGauges, GatewayError> {
        let card = |key: String| {
            let mut cmd = redis::cmd("ZCARD");
            cmd.arg(key);
            self.conn.query::<u64>(&cmd)
        };
        let mut first = redis::cmd("ZRANGE");
        first
            .arg(self.keys.queue_pending())
            .arg(0)
            .arg(0)
            .arg("WITHSCORES");
        // Queued before they are awaited: one write carries them all.
        let queued = card(self.keys.queue_pending());
        let oldest = self.conn.query::<Vec<(String, f64)>>(&first);
        let open = card(self.keys.open());
        let assigned = card(self.keys.assigned());
        let closed = card(self.keys.closed());
        let (queued, oldest) = (queued.await?, oldest.await?);
        let (open, assigned, closed) = (open.await?, assigned.await?, closed.await?);
        Ok(StoreGauges {
            // `open` holds every conversation not closed; the queue and `assigned` are part
            // of it. Clamped: the indexes are updated one after another, not together.
            conversations: [
                open.saturating_sub(queued + assigned),
                queued,
                assigned,
                closed,
            ],
            queue_length: queued,
            oldest: oldest.first().map(|(_, score)| Timestamp(*score as i64)),
        })
    }
}
