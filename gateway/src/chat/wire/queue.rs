//! The agent queue in JSON: `QueueEntry` `{"conversationId","enqueuedAt","customerId","channel",
//! "customerName","customerPhone"}` (absent values `null`; as stored in Redis and sent in
//! `queue:snapshot` and `GET /api/agent/queue`) and `QueuePosition` `{"position",
//! "estimatedWait"}` (the answer to `POST .../queue`).

use livechat_core::{QueueEntry, QueuePosition, Timestamp};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::field;
use super::wire_type::WireType;

/// `QueueEntry`, fields in the contract's order.
#[derive(Serialize, Deserialize)]
#[serde(remote = "QueueEntry", rename = "QueueEntry", rename_all = "camelCase")]
struct QueueEntryDef {
    conversation_id: String,
    #[serde(with = "field")]
    enqueued_at: Timestamp,
    customer_id: String,
    channel: Option<String>,
    customer_name: Option<String>,
    customer_phone: Option<String>,
}

/// `QueuePosition`.
#[derive(Serialize, Deserialize)]
#[serde(
    remote = "QueuePosition",
    rename = "QueuePosition",
    rename_all = "camelCase"
)]
struct QueuePositionDef {
    position: usize,
    estimated_wait: String,
}

impl WireType for QueueEntry {
    fn encode<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        QueueEntryDef::serialize(self, serializer)
    }

    fn decode<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        QueueEntryDef::deserialize(deserializer)
    }
}

impl WireType for QueuePosition {
    fn encode<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        QueuePositionDef::serialize(self, serializer)
    }

    fn decode<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        QueuePositionDef::deserialize(deserializer)
    }
}

#[cfg(test)]
mod tests {
    use livechat_core::{QueueEntry, QueuePosition, Timestamp};

    use crate::chat::wire::{decode, Json};

    #[test]
    fn entries_and_positions_in_contract_order() {
        let e = QueueEntry {
            conversation_id: "c1".into(),
            enqueued_at: Timestamp(1_763_033_763_351),
            customer_id: "u1".into(),
            channel: Some("web".into()),
            customer_name: None,
            customer_phone: Some("+49".into()),
        };
        let json = serde_json::to_string(&Json(&vec![e.clone()])).unwrap();
        assert_eq!(
            json,
            concat!(
                r#"[{"conversationId":"c1","enqueuedAt":"2025-11-13T11:36:03.351Z","#,
                r#""customerId":"u1","channel":"web","customerName":null,"customerPhone":"+49"}]"#
            )
        );
        assert_eq!(decode::<Vec<QueueEntry>>(json.as_bytes()).unwrap(), vec![e]);
        assert_eq!(
            serde_json::to_string(&Json(&QueuePosition::estimate(2, 120_000))).unwrap(),
            r#"{"position":2,"estimatedWait":"PT6M"}"#
        );
    }
}
