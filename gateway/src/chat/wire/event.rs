//! Analytics events in JSON: `ChatEvent` `{"eventId","type","conversationId","occurredAt",
//! "payload"}`, `type` in upper snake case (`CONVERSATION_STARTED`, `MESSAGE_RECEIVED`, ...).
//! Written for the analytics topics (Kafka, not built yet).

use livechat_core::{ChatEvent, ChatEventType, Timestamp};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::field;
use super::wire_type::WireType;

/// `ChatEventType`: upper snake case.
#[derive(Serialize, Deserialize)]
#[serde(
    remote = "ChatEventType",
    rename = "ChatEventType",
    rename_all = "SCREAMING_SNAKE_CASE"
)]
enum ChatEventTypeDef {
    ConversationStarted,
    ConversationQueued,
    ConversationAccepted,
    MessageReceived,
    ConversationClosed,
}

/// `ChatEvent`, fields in the contract's order.
#[derive(Serialize, Deserialize)]
#[serde(remote = "ChatEvent", rename = "ChatEvent", rename_all = "camelCase")]
struct ChatEventDef {
    event_id: String,
    #[serde(rename = "type", with = "field")]
    kind: ChatEventType,
    conversation_id: String,
    #[serde(with = "field")]
    occurred_at: Timestamp,
    payload: serde_json::Value,
}

impl WireType for ChatEventType {
    fn encode<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        ChatEventTypeDef::serialize(self, serializer)
    }

    fn decode<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        ChatEventTypeDef::deserialize(deserializer)
    }
}

impl WireType for ChatEvent {
    fn encode<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        ChatEventDef::serialize(self, serializer)
    }

    fn decode<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        ChatEventDef::deserialize(deserializer)
    }
}

#[cfg(test)]
mod tests {
    use livechat_core::{ChatEvent, ChatEventType, Timestamp};

    use crate::chat::wire::{decode, Json};

    #[test]
    fn written_in_contract_order() {
        let e = ChatEvent {
            event_id: "e1".into(),
            kind: ChatEventType::MessageReceived,
            conversation_id: "c1".into(),
            occurred_at: Timestamp(1_763_033_763_351),
            payload: serde_json::json!({"b": 1, "a": 2}),
        };
        let json = serde_json::to_string(&Json(&e)).unwrap();
        assert_eq!(
            json,
            concat!(
                r#"{"eventId":"e1","type":"MESSAGE_RECEIVED","conversationId":"c1","#,
                r#""occurredAt":"2025-11-13T11:36:03.351Z","payload":{"b":1,"a":2}}"#
            )
        );
        assert_eq!(decode::<ChatEvent>(json.as_bytes()).unwrap(), e);
    }
}
