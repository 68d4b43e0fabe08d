//! A conversation's metadata and status.

use crate::participant::{ChatParticipant, Metadata};
use crate::time::Timestamp;

/// Lifecycle status: OPEN → QUEUED → ASSIGNED → CLOSED (QUEUED ↔ OPEN on queue timeout,
/// ASSIGNED → QUEUED on re-queue).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConversationStatus {
    /// Started, no agent requested.
    Open,
    /// Waiting in the agent queue.
    Queued,
    /// An agent accepted it.
    Assigned,
    /// Over.
    Closed,
}

impl ConversationStatus {
    /// The canonical spelling: `OPEN`, `QUEUED`, `ASSIGNED`, `CLOSED`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "OPEN",
            Self::Queued => "QUEUED",
            Self::Assigned => "ASSIGNED",
            Self::Closed => "CLOSED",
        }
    }

    /// Parses the canonical spelling (any case).
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "OPEN" => Some(Self::Open),
            "QUEUED" => Some(Self::Queued),
            "ASSIGNED" => Some(Self::Assigned),
            "CLOSED" => Some(Self::Closed),
            _ => None,
        }
    }
}

/// A conversation's metadata: its customer and agent, status, lifecycle instants, tags,
/// attributes and version.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversationMetadata {
    /// Conversation id.
    pub id: String,
    /// Status.
    pub status: ConversationStatus,
    /// The customer.
    pub customer: ChatParticipant,
    /// The assigned agent, if any.
    pub agent: Option<ChatParticipant>,
    /// When it started.
    pub created_at: Timestamp,
    /// Last change or message.
    pub updated_at: Timestamp,
    /// When the current agent accepted.
    pub accepted_at: Option<Timestamp>,
    /// When it closed.
    pub closed_at: Option<Timestamp>,
    /// Who closed it: the participant's id, or `SYSTEM` for housekeeping.
    pub closed_by: Option<String>,
    /// Why: the closer's reason, or `INACTIVITY` / `MAX_DURATION` for housekeeping.
    pub close_reason: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Attributes given at start (`channel` among them).
    pub attributes: Metadata,
    /// Incremented on every metadata change (optimistic concurrency for stores).
    pub version: u64,
}

impl ConversationMetadata {
    /// The channel attribute (`web`, `ios`, ...), if any.
    pub fn channel(&self) -> Option<&str> {
        self.attributes.get("channel").and_then(|v| v.as_str())
    }
}
