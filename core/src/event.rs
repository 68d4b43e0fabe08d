//! Analytics events: one per lifecycle step and one per stored message, built from what a
//! commit stored. The gateway writes them as JSON envelopes to the analytics topics
//! (`chat.lifecycle`, `chat.messages`) or an embedded sink; this module only says what
//! happened and gives each event an identity that a retry reproduces, so consumers can drop
//! duplicates.

use crate::conversation::ConversationMetadata;
use crate::message::ChatMessage;
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
    /// The contract's name (`CONVERSATION_STARTED`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ConversationStarted => "CONVERSATION_STARTED",
            Self::ConversationQueued => "CONVERSATION_QUEUED",
            Self::ConversationAccepted => "CONVERSATION_ACCEPTED",
            Self::MessageReceived => "MESSAGE_RECEIVED",
            Self::ConversationClosed => "CONVERSATION_CLOSED",
        }
    }
}

/// What an event is about.
#[derive(Debug, Clone, PartialEq)]
pub enum EventSubject {
    /// The conversation right after the step (lifecycle events).
    Conversation(ConversationMetadata),
    /// A stored message, `seq` assigned ([`ChatEventType::MessageReceived`]).
    Message(ChatMessage),
}

/// An analytics event.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatEvent {
    /// Type.
    pub kind: ChatEventType,
    /// When it happened (the step's `now`; a message's timestamp).
    pub occurred_at: Timestamp,
    /// The conversation or message concerned.
    pub subject: EventSubject,
}

impl ChatEvent {
    /// The conversation.
    pub fn conversation_id(&self) -> &str {
        match &self.subject {
            EventSubject::Conversation(c) => &c.id,
            EventSubject::Message(m) => &m.conversation_id,
        }
    }

    /// The message's `seq` (message events only).
    pub fn seq(&self) -> Option<u64> {
        match &self.subject {
            EventSubject::Message(m) => Some(m.seq),
            EventSubject::Conversation(_) => None,
        }
    }

    /// A name for this event that every retry of the same step reproduces, and no other event
    /// has: the conversation, its version after the step and the type; or the message id. The
    /// gateway derives the envelope's `eventId` from it.
    pub fn identity(&self) -> String {
        match &self.subject {
            EventSubject::Conversation(c) => {
                format!("{}/v{}/{}", c.id, c.version, self.kind.as_str())
            }
            EventSubject::Message(m) => format!("{}/m/{}", m.conversation_id, m.id),
        }
    }
}

/// The events of one committed step: the lifecycle ones in `kinds` about `conversation` (the
/// metadata after the step; they happened at its `updated_at`, the step's instant), then one
/// [`ChatEventType::MessageReceived`] per stored message at its timestamp (system messages
/// included: the transcript on the analytics topic is complete).
///
/// Takes the messages: the events carry them on (a message is announced once, so nothing is
/// copied per message); only a lifecycle event copies the metadata.
pub fn events_of<'a>(
    kinds: &'a [ChatEventType],
    conversation: Option<&'a ConversationMetadata>,
    messages: Vec<ChatMessage>,
) -> impl Iterator<Item = ChatEvent> + 'a {
    let lifecycle = conversation.into_iter().flat_map(move |c| {
        kinds
            .iter()
            .filter(|&&k| k != ChatEventType::MessageReceived)
            .map(move |&kind| ChatEvent {
                kind,
                occurred_at: c.updated_at,
                subject: EventSubject::Conversation(c.clone()),
            })
    });
    lifecycle.chain(messages.into_iter().map(|m| ChatEvent {
        kind: ChatEventType::MessageReceived,
        occurred_at: m.timestamp,
        subject: EventSubject::Message(m),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::start;
    use crate::participant::{ChatParticipant, Metadata, ParticipantKind};

    #[test]
    fn lifecycle_then_one_event_per_message_with_stable_identities() {
        let c = start(
            "x".into(),
            ChatParticipant::new("c", ParticipantKind::Customer, "C"),
            Metadata::new(),
            Timestamp(1),
        )
        .conversation;
        let mut m = crate::message::MessageDraft {
            kind: crate::MessageType::System,
            sender: ChatParticipant::system(),
            content: "hi".into(),
            metadata: Metadata::new(),
            client_message_id: None,
        }
        .into_message("m1".into(), "x", 3, Timestamp(2));
        m.seq = 3;
        let kinds = [
            ChatEventType::ConversationClosed,
            ChatEventType::MessageReceived,
        ];
        let events: Vec<_> = events_of(&kinds, Some(&c), vec![m]).collect();
        assert_eq!(events[0].occurred_at, c.updated_at);
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].kind, ChatEventType::ConversationClosed);
        assert_eq!(events[0].identity(), "x/v1/CONVERSATION_CLOSED");
        assert_eq!(events[0].seq(), None);
        assert_eq!(events[1].kind, ChatEventType::MessageReceived);
        assert_eq!(events[1].identity(), "x/m/m1");
        assert_eq!(events[1].seq(), Some(3));
        assert_eq!(events[1].conversation_id(), "x");
    }
}
