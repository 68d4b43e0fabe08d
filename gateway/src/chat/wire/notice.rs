//! `Notice` in JSON: the `type` of a `system:event` in upper snake case
//! (`CONVERSATION_QUEUED`, `CONVERSATION_ACCEPTED`, `CONVERSATION_CLOSED`, `QUEUE_TIMEOUT`).

use livechat_core::Notice;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::wire_type::WireType;

/// `Notice`: upper snake case.
#[derive(Serialize, Deserialize)]
#[serde(
    remote = "Notice",
    rename = "Notice",
    rename_all = "SCREAMING_SNAKE_CASE"
)]
enum NoticeDef {
    ConversationQueued,
    ConversationAccepted,
    ConversationClosed,
    QueueTimeout,
}

impl WireType for Notice {
    fn encode<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        NoticeDef::serialize(self, serializer)
    }

    fn decode<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        NoticeDef::deserialize(deserializer)
    }
}

#[cfg(test)]
mod tests {
    use livechat_core::Notice;

    use crate::chat::wire::{decode, Json};

    #[test]
    fn upper_snake_case() {
        for (n, s) in [
            (Notice::ConversationQueued, "\"CONVERSATION_QUEUED\""),
            (Notice::ConversationAccepted, "\"CONVERSATION_ACCEPTED\""),
            (Notice::ConversationClosed, "\"CONVERSATION_CLOSED\""),
            (Notice::QueueTimeout, "\"QUEUE_TIMEOUT\""),
        ] {
            assert_eq!(serde_json::to_string(&Json(&n)).unwrap(), s);
            assert_eq!(decode::<Notice>(s.as_bytes()).unwrap(), n);
        }
    }
}
