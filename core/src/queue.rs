//! The agent queue: entries and the wait estimate.

use crate::time::{iso_duration, Timestamp};

/// A conversation waiting in the agent queue, with what an agent sees before accepting it.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueEntry {
    /// Conversation id.
    pub conversation_id: String,
    /// When it entered the queue.
    pub enqueued_at: Timestamp,
    /// The customer's id.
    pub customer_id: String,
    /// Channel (`web`, ...).
    pub channel: Option<String>,
    /// The customer's display name.
    pub customer_name: Option<String>,
    /// The customer's phone, when the widget collected one (`customerPhone` / `phone` attribute).
    pub customer_phone: Option<String>,
}

/// The answer to "queue me": 0-based position and an ISO-8601 wait estimate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuePosition {
    /// 0 = next to be served.
    pub position: usize,
    /// e.g. `PT2M`.
    pub estimated_wait: String,
}

impl QueuePosition {
    /// The estimate is deliberately simple and documented: every conversation ahead, plus this
    /// one, is assumed to take `per_position_ms` (default two minutes) of one agent's time.
    pub fn estimate(position: usize, per_position_ms: i64) -> Self {
        let ms = per_position_ms.saturating_mul(position as i64 + 1);
        Self {
            position,
            estimated_wait: iso_duration(ms),
        }
    }
}

/// Orders queue entries oldest first (ties by conversation id, so every node agrees).
pub fn queue_order(a: &QueueEntry, b: &QueueEntry) -> std::cmp::Ordering {
    a.enqueued_at
        .cmp(&b.enqueued_at)
        .then_with(|| a.conversation_id.cmp(&b.conversation_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimate_counts_this_conversation_too() {
        assert_eq!(QueuePosition::estimate(0, 120_000).estimated_wait, "PT2M");
        assert_eq!(QueuePosition::estimate(2, 120_000).estimated_wait, "PT6M");
    }
}
