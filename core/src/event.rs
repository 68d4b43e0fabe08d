//! Analytics events (`chat.lifecycle`, `chat.messages`).

use crate::time::Timestamp;

/// The kinds of analytics events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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

/// An analytics event: its id and type, the conversation, when it happened, and what it is
/// about.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatEvent {
    /// Unique id.
    pub event_id: String,
    /// Type.
    pub kind: ChatEventType,
    /// Conversation id.
    pub conversation_id: String,
    /// When it happened.
    pub occurred_at: Timestamp,
    /// The metadata or message concerned.
    pub payload: serde_json::Value,
}
