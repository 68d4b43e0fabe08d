//! Analytics events (`chat.lifecycle`, `chat.messages`).

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// The kinds of analytics events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ChatEventType {
    /// A conversation started.
    ConversationStarted,
    /// It entered the queue.
    ConversationQueued,
    /// An agent accepted it.
    ConversationAccepted,
    /// A message was stored.
    MessageReceived,
    /// It closed.
    ConversationClosed,
}

impl ChatEventType {
    /// The topic an event of this type goes to.
    pub fn topic(self) -> &'static str {
        match self {
            Self::MessageReceived => "chat.messages",
            _ => "chat.lifecycle",
        }
    }
}

/// `ChatEvent {eventId, type, conversationId, occurredAt, payload}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatEvent {
    /// Unique id.
    pub event_id: String,
    /// Type.
    #[serde(rename = "type")]
    pub kind: ChatEventType,
    /// Conversation id.
    pub conversation_id: String,
    /// When it happened.
    pub occurred_at: Timestamp,
    /// The metadata or message concerned.
    pub payload: serde_json::Value,
}
