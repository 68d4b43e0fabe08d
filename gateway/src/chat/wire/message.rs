//! `ChatMessage` in JSON: `{"id","conversationId","seq","type","sender","content","metadata",
//! "timestamp"}`, `type` one of `TEXT`, `SYSTEM`, `EVENT`.
//!
//! Two omissions are part of the contract: `seq` is left out while it is 0 (not yet assigned),
//! so the Redis commit script can take a message starting with `{"id":` and write
//! `{"seq":N,` in front of it; and `clientMessageId` is never written (it is the sender's
//! idempotency key, not something other participants see) and ignored when read.

use livechat_core::{ChatMessage, ChatParticipant, MessageType, Metadata, Timestamp};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::field;
use super::wire_type::WireType;

/// `MessageType`: upper case.
#[derive(Serialize, Deserialize)]
#[serde(
    remote = "MessageType",
    rename = "MessageType",
    rename_all = "UPPERCASE"
)]
enum MessageTypeDef {
    Text,
    System,
    Event,
}

/// `ChatMessage`, fields in the contract's order.
#[derive(Serialize, Deserialize)]
#[serde(
    remote = "ChatMessage",
    rename = "ChatMessage",
    rename_all = "camelCase"
)]
struct ChatMessageDef {
    id: String,
    conversation_id: String,
    #[serde(skip_serializing_if = "unassigned")]
    seq: u64,
    #[serde(rename = "type", with = "field")]
    kind: MessageType,
    #[serde(with = "field")]
    sender: ChatParticipant,
    content: String,
    #[serde(default)]
    metadata: Metadata,
    #[serde(with = "field")]
    timestamp: Timestamp,
    #[serde(skip)]
    client_message_id: Option<String>,
}

/// `seq` 0: the store has not assigned one yet.
fn unassigned(seq: &u64) -> bool {
    *seq == 0
}

impl WireType for MessageType {
    fn encode<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        MessageTypeDef::serialize(self, serializer)
    }

    fn decode<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        MessageTypeDef::deserialize(deserializer)
    }
}

impl WireType for ChatMessage {
    fn encode<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        ChatMessageDef::serialize(self, serializer)
    }

    fn decode<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        ChatMessageDef::deserialize(deserializer)
    }
}

#[cfg(test)]
mod tests {
    use livechat_core::{
        ChatMessage, ChatParticipant, MessageType, Metadata, ParticipantKind, Timestamp,
    };

    use crate::chat::wire::{decode, Json};

    fn message(seq: u64) -> ChatMessage {
        let mut metadata = Metadata::new();
        metadata.insert("locale".into(), "de-DE".into());
        ChatMessage {
            id: "m1".into(),
            conversation_id: "c1".into(),
            seq,
            kind: MessageType::Event,
            sender: ChatParticipant::new("u1", ParticipantKind::Customer, "Cy"),
            content: "hi \"there\"".into(),
            metadata,
            timestamp: Timestamp(1_763_033_763_351),
            client_message_id: Some("cm-1".into()),
        }
    }

    #[test]
    fn written_in_contract_order_without_client_message_id() {
        assert_eq!(
            serde_json::to_string(&Json(&message(7))).unwrap(),
            concat!(
                r#"{"id":"m1","conversationId":"c1","seq":7,"type":"EVENT","#,
                r#""sender":{"id":"u1","type":"CUSTOMER","displayName":"Cy","metadata":{"role":"customer"}},"#,
                r#""content":"hi \"there\"","metadata":{"locale":"de-DE"},"#,
                r#""timestamp":"2025-11-13T11:36:03.351Z"}"#
            )
        );
    }

    #[test]
    fn seq_is_left_out_until_assigned_and_read_back_from_the_front() {
        let json = serde_json::to_string(&Json(&message(0))).unwrap();
        assert!(json.starts_with("{\"id\":"), "{json}");
        assert!(!json.contains("\"seq\"") && !json.contains("clientMessageId"));
        let stored = format!("{{\"seq\":9,{}", &json[1..]);
        let back: ChatMessage = decode(stored.as_bytes()).unwrap();
        assert_eq!(
            back,
            ChatMessage {
                seq: 9,
                client_message_id: None,
                ..message(0)
            }
        );
        // Reading needs the seq (a stored message always has one).
        let e = decode::<ChatMessage>(json.as_bytes()).unwrap_err();
        assert!(e.to_string().starts_with("missing field `seq`"), "{e}");
    }

    #[test]
    fn client_message_id_is_ignored_when_read() {
        let json = concat!(
            r#"{"id":"m","conversationId":"c","seq":1,"type":"TEXT","#,
            r#""sender":{"id":"u","type":"CUSTOMER","displayName":"U"},"content":"x","#,
            r#""timestamp":"2025-11-13T11:36:03.351Z","clientMessageId":"cm"}"#
        );
        let m: ChatMessage = decode(json.as_bytes()).unwrap();
        assert_eq!(m.client_message_id, None);
        assert!(m.metadata.is_empty());
    }
}
