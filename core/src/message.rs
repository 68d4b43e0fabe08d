//! Chat messages and the drafts the lifecycle asks the store to append.

use crate::participant::{ChatParticipant, Metadata};
use crate::time::Timestamp;

/// `TEXT` from people, `SYSTEM` for endings (close, queue timeout, inactivity), `EVENT` for
/// client-defined events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// Text written by a participant.
    Text,
    /// A notice from the backend. Existing frontends treat any SYSTEM message as the end.
    System,
    /// A client-defined event.
    Event,
}

impl MessageType {
    /// Parses the canonical spelling, `TEXT`, `SYSTEM` or `EVENT` (any case).
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "TEXT" => Some(Self::Text),
            "SYSTEM" => Some(Self::System),
            "EVENT" => Some(Self::Event),
            _ => None,
        }
    }
}

/// A stored chat message. `seq` is per conversation, from 1, without gaps.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatMessage {
    /// Message id.
    pub id: String,
    /// Conversation id.
    pub conversation_id: String,
    /// Position in the conversation, from 1; 0 until the store assigns it.
    pub seq: u64,
    /// Type.
    pub kind: MessageType,
    /// Who sent it.
    pub sender: ChatParticipant,
    /// Text.
    pub content: String,
    /// Free-form metadata.
    pub metadata: Metadata,
    /// When it was stored.
    pub timestamp: Timestamp,
    /// The client's idempotency key, if it sent one: the store deduplicates on it; it is
    /// never shown to the participants.
    pub client_message_id: Option<String>,
}

/// A message the lifecycle wants appended; the store assigns `id` and `seq`.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageDraft {
    /// Type.
    pub kind: MessageType,
    /// Sender.
    pub sender: ChatParticipant,
    /// Text.
    pub content: String,
    /// Metadata.
    pub metadata: Metadata,
    /// Idempotency key.
    pub client_message_id: Option<String>,
}

impl MessageDraft {
    /// Turns the draft into a stored message.
    pub fn into_message(
        self,
        id: String,
        conversation_id: &str,
        seq: u64,
        now: Timestamp,
    ) -> ChatMessage {
        ChatMessage {
            id,
            conversation_id: conversation_id.to_owned(),
            seq,
            kind: self.kind,
            sender: self.sender,
            content: self.content,
            metadata: self.metadata,
            timestamp: now,
            client_message_id: self.client_message_id,
        }
    }
}
