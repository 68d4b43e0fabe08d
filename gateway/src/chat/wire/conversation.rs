//! `ConversationMetadata` in JSON: `{"id","status","customer","agent","createdAt","updatedAt",
//! "acceptedAt","closedAt","tags","attributes","version"}`, `status` one of `OPEN`, `QUEUED`,
//! `ASSIGNED`, `CLOSED`.
//!
//! Absent optional values are written as `null` (never left out) — except `closedBy` and
//! `closeReason` (after `closedAt`), added later and written only once a conversation is
//! closed, so everything else reads byte for byte as before. Reading takes a missing `agent`,
//! `acceptedAt`, `closedAt`, `closedBy`, `closeReason` as `null` and missing `tags` /
//! `attributes` as empty.

use livechat_core::{
    ChatParticipant, ConversationMetadata, ConversationStatus, Metadata, Timestamp,
};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::field;
use super::wire_type::WireType;

/// `ConversationStatus`: upper case.
#[derive(Serialize, Deserialize)]
#[serde(
    remote = "ConversationStatus",
    rename = "ConversationStatus",
    rename_all = "UPPERCASE"
)]
enum ConversationStatusDef {
    Open,
    Queued,
    Assigned,
    Closed,
}

/// `ConversationMetadata`, fields in the contract's order.
#[derive(Serialize, Deserialize)]
#[serde(
    remote = "ConversationMetadata",
    rename = "ConversationMetadata",
    rename_all = "camelCase"
)]
struct ConversationMetadataDef {
    id: String,
    #[serde(with = "field")]
    status: ConversationStatus,
    #[serde(with = "field")]
    customer: ChatParticipant,
    #[serde(with = "field", default)]
    agent: Option<ChatParticipant>,
    #[serde(with = "field")]
    created_at: Timestamp,
    #[serde(with = "field")]
    updated_at: Timestamp,
    #[serde(with = "field", default)]
    accepted_at: Option<Timestamp>,
    #[serde(with = "field", default)]
    closed_at: Option<Timestamp>,
    /// Who closed it (written only once set, so open conversations read as before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    closed_by: Option<String>,
    /// Why (written only once set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    close_reason: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    attributes: Metadata,
    version: u64,
}

impl WireType for ConversationStatus {
    fn encode<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        ConversationStatusDef::serialize(self, serializer)
    }

    fn decode<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        ConversationStatusDef::deserialize(deserializer)
    }
}

impl WireType for ConversationMetadata {
    fn encode<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        ConversationMetadataDef::serialize(self, serializer)
    }

    fn decode<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        ConversationMetadataDef::deserialize(deserializer)
    }
}

#[cfg(test)]
mod tests {
    use livechat_core::{
        ChatParticipant, ConversationMetadata, ConversationStatus, Metadata, ParticipantKind,
        Timestamp,
    };

    use crate::chat::wire::{decode, Json};

    fn meta() -> ConversationMetadata {
        let mut attributes = Metadata::new();
        attributes.insert("channel".into(), "web".into());
        ConversationMetadata {
            id: "c1".into(),
            status: ConversationStatus::Assigned,
            customer: ChatParticipant::new("u1", ParticipantKind::Customer, "Cy"),
            agent: Some(ChatParticipant::new("a1", ParticipantKind::Agent, "Ann")),
            created_at: Timestamp(1_763_033_763_351),
            updated_at: Timestamp(1_763_033_763_352),
            accepted_at: Some(Timestamp(1_763_033_763_353)),
            closed_at: None,
            closed_by: None,
            close_reason: None,
            tags: vec!["vip".into()],
            attributes,
            version: 3,
        }
    }

    #[test]
    fn written_in_contract_order_with_nulls() {
        assert_eq!(
            serde_json::to_string(&Json(&meta())).unwrap(),
            concat!(
                r#"{"id":"c1","status":"ASSIGNED","#,
                r#""customer":{"id":"u1","type":"CUSTOMER","displayName":"Cy","metadata":{"role":"customer"}},"#,
                r#""agent":{"id":"a1","type":"AGENT","displayName":"Ann","metadata":{"role":"agent"}},"#,
                r#""createdAt":"2025-11-13T11:36:03.351Z","updatedAt":"2025-11-13T11:36:03.352Z","#,
                r#""acceptedAt":"2025-11-13T11:36:03.353Z","closedAt":null,"tags":["vip"],"#,
                r#""attributes":{"channel":"web"},"version":3}"#
            )
        );
    }

    #[test]
    fn round_trips_and_reads_missing_optionals() {
        let m = meta();
        let json = serde_json::to_vec(&Json(&m)).unwrap();
        assert_eq!(decode::<ConversationMetadata>(&json).unwrap(), m);
        let short = concat!(
            r#"{"id":"c","status":"OPEN","#,
            r#""customer":{"id":"u","type":"CUSTOMER","displayName":"U"},"#,
            r#""createdAt":"2025-11-13T11:36:03.351Z","updatedAt":"2025-11-13T11:36:03.351Z","#,
            r#""version":1}"#
        );
        let m = decode::<ConversationMetadata>(short.as_bytes()).unwrap();
        assert_eq!((m.agent, m.accepted_at, m.closed_at), (None, None, None));
        assert!(m.tags.is_empty() && m.attributes.is_empty());
        let e = decode::<ConversationMetadata>(b"[]").unwrap_err();
        assert!(
            e.to_string()
                .contains("expected struct ConversationMetadata"),
            "{e}"
        );
    }

    /// Attributes are the client's JSON: a float must read back bit for bit, however often the
    /// metadata is stored and re-read (serde_json's default float parsing may be one ulp off;
    /// the workspace enables `float_roundtrip`). Found by the `chat_payload` fuzz target.
    #[test]
    fn attribute_floats_read_back_exactly() {
        let mut m = meta();
        // Rust's literals are exact; a client's `133333333333333333333e71` parses to the first.
        let x: Vec<serde_json::Value> = [
            1.333_333_333_333_333_3e91,
            2.225_073_858_507_201_4e-308,
            0.1,
        ]
        .into_iter()
        .map(serde_json::Value::from)
        .collect();
        m.attributes.insert("x".into(), x.into());
        let json = serde_json::to_vec(&Json(&m)).unwrap();
        assert_eq!(decode::<ConversationMetadata>(&json).unwrap(), m);
    }
}
