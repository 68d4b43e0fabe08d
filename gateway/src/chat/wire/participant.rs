//! `ChatParticipant` in JSON: `{"id","type","displayName","metadata"}` with `type` one of
//! `CUSTOMER`, `AGENT`, `SYSTEM`.
//!
//! `metadata` is written as the participant holds it (with the `role` core puts there) and read
//! as given, `{}` when absent: reading neither adds nor checks `role`.

use livechat_core::{ChatParticipant, Metadata, ParticipantKind};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::field;
use super::wire_type::WireType;

/// `ParticipantKind`: upper case.
#[derive(Serialize, Deserialize)]
#[serde(
    remote = "ParticipantKind",
    rename = "ParticipantKind",
    rename_all = "UPPERCASE"
)]
enum ParticipantKindDef {
    Customer,
    Agent,
    System,
}

/// `ChatParticipant`, fields in the contract's order.
#[derive(Serialize, Deserialize)]
#[serde(
    remote = "ChatParticipant",
    rename = "ChatParticipant",
    rename_all = "camelCase"
)]
struct ChatParticipantDef {
    id: String,
    #[serde(rename = "type", with = "field")]
    kind: ParticipantKind,
    display_name: String,
    #[serde(default)]
    metadata: Metadata,
}

impl WireType for ParticipantKind {
    fn encode<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        ParticipantKindDef::serialize(self, serializer)
    }

    fn decode<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        ParticipantKindDef::deserialize(deserializer)
    }
}

impl WireType for ChatParticipant {
    fn encode<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        ChatParticipantDef::serialize(self, serializer)
    }

    fn decode<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        ChatParticipantDef::deserialize(deserializer)
    }
}

#[cfg(test)]
mod tests {
    use livechat_core::{ChatParticipant, Metadata, ParticipantKind};

    use crate::chat::wire::{decode, Json};

    #[test]
    fn written_in_contract_order_with_role() {
        let p = ChatParticipant::new("a1", ParticipantKind::Agent, "Ann");
        assert_eq!(
            serde_json::to_string(&Json(&p)).unwrap(),
            r#"{"id":"a1","type":"AGENT","displayName":"Ann","metadata":{"role":"agent"}}"#
        );
        assert_eq!(
            serde_json::to_string(&Json(&ParticipantKind::Customer)).unwrap(),
            "\"CUSTOMER\""
        );
    }

    #[test]
    fn read_as_given() {
        let p: ChatParticipant =
            decode(br#"{"id":"s","type":"SYSTEM","displayName":"S","extra":1}"#).unwrap();
        assert_eq!(p.kind, ParticipantKind::System);
        assert_eq!(p.metadata, Metadata::new());
        let e = decode::<ChatParticipant>(br#"{"id":"s","type":"agent","displayName":"S"}"#)
            .unwrap_err();
        assert!(e.to_string().starts_with("unknown variant `agent`"), "{e}");
    }
}
