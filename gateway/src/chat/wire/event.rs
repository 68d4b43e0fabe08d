//! Analytics events in JSON: the envelope every analytics record carries,
//! `{"eventId","type","conversationId","seq"?,"occurredAt","payload"}`, `type` in upper snake
//! case (`CONVERSATION_STARTED`, `MESSAGE_RECEIVED`, ...), `seq` only for message events.
//!
//! The payload is the conversation (its API JSON) for lifecycle events; for a message it is the
//! whole `ChatMessage` ([`Envelope::full`], the `chat.messages` topic) or a summary without
//! content or metadata (`chat.lifecycle`, whose consumers count and time, not read).

use livechat_core::{ChatEvent, EventSubject};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use super::Json;

/// One event as one topic writes it.
#[derive(Debug, Clone, Copy)]
pub struct Envelope<'a> {
    /// The event.
    pub event: &'a ChatEvent,
    /// Its id on this topic (stable across retries: derived from `ChatEvent::identity`).
    pub event_id: &'a str,
    /// A message event carries the whole message (else a summary).
    pub full: bool,
}

/// A message event's payload on the lifecycle topic.
struct Summary<'a>(&'a livechat_core::ChatMessage);

impl Serialize for Summary<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let m = self.0;
        let mut map = s.serialize_map(Some(5))?;
        map.serialize_entry("id", &m.id)?;
        map.serialize_entry("seq", &m.seq)?;
        map.serialize_entry("type", &Json(&m.kind))?;
        map.serialize_entry("senderId", &m.sender.id)?;
        map.serialize_entry("senderType", m.sender.kind.as_str())?;
        map.end()
    }
}

impl Serialize for Envelope<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let e = self.event;
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("eventId", self.event_id)?;
        map.serialize_entry("type", e.kind.as_str())?;
        map.serialize_entry("conversationId", e.conversation_id())?;
        if let Some(seq) = e.seq() {
            map.serialize_entry("seq", &seq)?;
        }
        map.serialize_entry("occurredAt", &Json(&e.occurred_at))?;
        match &e.subject {
            EventSubject::Conversation(c) => map.serialize_entry("payload", &Json(c))?,
            EventSubject::Message(m) if self.full => map.serialize_entry("payload", &Json(m))?,
            EventSubject::Message(m) => map.serialize_entry("payload", &Summary(m))?,
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use livechat_core::{
        ChatEvent, ChatEventType, ChatParticipant, EventSubject, MessageType, Metadata,
        ParticipantKind, Timestamp,
    };

    use super::Envelope;

    fn message_event() -> ChatEvent {
        let m = livechat_core::ChatMessage {
            id: "m1".into(),
            conversation_id: "c1".into(),
            seq: 4,
            kind: MessageType::Text,
            sender: ChatParticipant::new("u1", ParticipantKind::Customer, "Cy"),
            content: "hello".into(),
            metadata: Metadata::new(),
            timestamp: Timestamp(1_763_033_763_351),
            client_message_id: None,
        };
        ChatEvent {
            kind: ChatEventType::MessageReceived,
            occurred_at: m.timestamp,
            subject: EventSubject::Message(m),
        }
    }

    #[test]
    fn a_message_event_in_contract_order_summary_and_full() {
        let e = message_event();
        let summary = serde_json::to_string(&Envelope {
            event: &e,
            event_id: "e1",
            full: false,
        })
        .unwrap();
        assert_eq!(
            summary,
            concat!(
                r#"{"eventId":"e1","type":"MESSAGE_RECEIVED","conversationId":"c1","seq":4,"#,
                r#""occurredAt":"2025-11-13T11:36:03.351Z","payload":{"id":"m1","seq":4,"#,
                r#""type":"TEXT","senderId":"u1","senderType":"CUSTOMER"}}"#
            )
        );
        let full: serde_json::Value = serde_json::from_str(
            &serde_json::to_string(&Envelope {
                event: &e,
                event_id: "e2",
                full: true,
            })
            .unwrap(),
        )
        .unwrap();
        assert_eq!(full["payload"]["content"], "hello");
        assert_eq!(full["payload"]["conversationId"], "c1");
        assert_eq!(full["eventId"], "e2");
    }
}
