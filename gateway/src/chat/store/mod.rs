//! The backend seam: everything the chat engine reads and commits goes through
//! [`ConversationStore`] (defined in `livechat-core`), on the backend chosen once at start.
//!
//! - [`embedded`]: executor-owned memory, the zero-config single-node default.
//! - [`redis`]: one Redis shared by any number of nodes.
//!
//! [`Store`] is that choice: the engine holds one and never asks which it is. (An enum rather
//! than `dyn`: the trait's futures are `impl Future`, and static dispatch keeps the hot path free
//! of boxing.)

pub mod embedded;
pub mod redis;

#[cfg(test)]
mod durable_tests;

use livechat_core::store::{ConversationStore, Cutoffs, Due, MessagePage};
use livechat_core::{
    Commit, Committed, ConversationMetadata, ConversationStatus, QueueEntry, Refusal, Timestamp,
};

pub use embedded::EmbeddedStore;
pub use redis::{RedisStore, RedisStoreConfig};

use crate::error::GatewayError;

/// The backend of this node.
#[derive(Debug)]
pub enum Store {
    /// Executor-owned memory (no `chat.redis.url`).
    Embedded(std::rc::Rc<EmbeddedStore>),
    /// Redis (`chat.redis.url`).
    Redis(std::rc::Rc<RedisStore>),
}

impl Store {
    /// What it is, for the start-up log.
    pub fn describe(&self) -> &'static str {
        match self {
            Self::Embedded(_) => "embedded single-node backend",
            Self::Redis(_) => "Redis backend",
        }
    }

    /// Conversations this executor holds in memory (embedded backend); `None` on Redis, where
    /// Redis's memory is the bound.
    pub fn live_here(&self) -> Option<usize> {
        match self {
            Self::Embedded(e) => Some(e.live()),
            Self::Redis(_) => None,
        }
    }

    /// Whether the backend delivers room events itself (Redis Pub/Sub, published by the
    /// commit): then the engine does not broadcast them, every node's subscription does.
    pub fn publishes(&self) -> bool {
        matches!(self, Self::Redis(_))
    }
}

/// The position of `status` in per-status arrays (`OPEN`, `QUEUED`, `ASSIGNED`, `CLOSED`).
pub fn status_index(status: ConversationStatus) -> usize {
    match status {
        ConversationStatus::Open => 0,
        ConversationStatus::Queued => 1,
        ConversationStatus::Assigned => 2,
        ConversationStatus::Closed => 3,
    }
}

/// Every status, in [`status_index`] order.
pub const STATUSES: [ConversationStatus; 4] = [
    ConversationStatus::Open,
    ConversationStatus::Queued,
    ConversationStatus::Assigned,
    ConversationStatus::Closed,
];

macro_rules! dispatch {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            Store::Embedded($s) => $e,
            Store::Redis($s) => $e,
        }
    };
}

impl ConversationStore for Store {
    type Error = GatewayError;

    async fn load(&self, id: &str) -> Result<Option<ConversationMetadata>, GatewayError> {
        dispatch!(self, s => s.load(id).await)
    }

    async fn commit(&self, c: Commit) -> Result<Result<Committed, Refusal>, GatewayError> {
        dispatch!(self, s => s.commit(c).await)
    }

    async fn messages(
        &self,
        id: &str,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Option<(ConversationMetadata, MessagePage)>, GatewayError> {
        dispatch!(self, s => s.messages(id, after, limit).await)
    }

    async fn queue_page(&self, page: usize, size: usize) -> Result<Vec<QueueEntry>, GatewayError> {
        dispatch!(self, s => s.queue_page(page, size).await)
    }

    async fn queue_position(&self, id: &str) -> Result<Option<usize>, GatewayError> {
        dispatch!(self, s => s.queue_position(id).await)
    }

    async fn queue_ids(&self, limit: usize) -> Result<Vec<String>, GatewayError> {
        dispatch!(self, s => s.queue_ids(limit).await)
    }

    async fn agent_conversations(
        &self,
        agent_id: &str,
        statuses: &[ConversationStatus],
    ) -> Result<Vec<ConversationMetadata>, GatewayError> {
        dispatch!(self, s => s.agent_conversations(agent_id, statuses).await)
    }

    async fn touch_presence(
        &self,
        participant_id: &str,
        now: Timestamp,
    ) -> Result<(), GatewayError> {
        dispatch!(self, s => s.touch_presence(participant_id, now).await)
    }

    async fn last_seen(&self, participant_id: &str) -> Result<Option<Timestamp>, GatewayError> {
        dispatch!(self, s => s.last_seen(participant_id).await)
    }

    async fn due(&self, c: Cutoffs) -> Result<Vec<Due>, GatewayError> {
        dispatch!(self, s => s.due(c).await)
    }

    async fn try_lead(&self, lease_ms: u64) -> Result<bool, GatewayError> {
        dispatch!(self, s => s.try_lead(lease_ms).await)
    }

    async fn forget(&self, id: &str, closed_before: Timestamp) -> Result<bool, GatewayError> {
        dispatch!(self, s => s.forget(id, closed_before).await)
    }
}
