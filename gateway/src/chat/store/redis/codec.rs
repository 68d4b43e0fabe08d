//! Values of the Redis backend: JSON of metadata, messages and queue entries (the contract's
//! spelling, from `chat::wire`), and the replies of its scripts. A value that does not decode
//! is reported as corrupt for that conversation (an error answer for it), never a panic.

use livechat_core::{ChatMessage, ConversationMetadata, Notice, QueueEntry, Timestamp};

use crate::chat::wire::{self, Announced, Json, WireType};
use crate::error::GatewayError;
use crate::redis::Value;

/// Decodes one stored JSON value of `what` (named in the error).
pub fn decode<T: WireType>(bytes: &[u8], what: &str) -> Result<T, GatewayError> {
    wire::decode(bytes).map_err(|e| {
        // Someone (or something) wrote this key: the operator needs to hear about it.
        tracing::warn!(value = what, error = %e, "corrupt value in Redis");
        GatewayError::Corrupt(format!("{what} in Redis does not decode: {e}"))
    })
}

/// The metadata from the `meta` and `up` fields of a conversation hash (`up` is the activity a
/// message touch writes without rewriting the JSON).
pub fn metadata(
    id: &str,
    meta: &[u8],
    updated_at: Option<&[u8]>,
) -> Result<ConversationMetadata, GatewayError> {
    let mut m: ConversationMetadata = decode(meta, &format!("conversation {id}"))?;
    if let Some(up) = updated_at.and_then(|b| std::str::from_utf8(b).ok()?.parse::<i64>().ok()) {
        m.updated_at = m.updated_at.max(Timestamp(up));
    }
    Ok(m)
}

/// A message as the commit script takes it: JSON without `seq` (the script writes the
/// assigned one in front).
pub fn message_without_seq(m: &ChatMessage) -> Result<String, GatewayError> {
    debug_assert_eq!(m.seq, 0);
    serde_json::to_string(&Json(m)).map_err(|e| GatewayError::BadRequest(e.to_string()))
}

/// `{"type":..,"conversation":..}`: a notice as published; each receiving socket's own
/// participant is spliced in at delivery.
pub fn notice(kind: Notice, meta: &ConversationMetadata) -> Result<String, GatewayError> {
    serde_json::to_string(&Announced::published(&kind, meta))
        .map_err(|e| GatewayError::BadRequest(e.to_string()))
}

/// A queue entry as stored.
pub fn entry(e: &QueueEntry) -> Result<String, GatewayError> {
    serde_json::to_string(&Json(e)).map_err(|e| GatewayError::BadRequest(e.to_string()))
}

/// The bytes of a bulk/simple string reply, if it is one.
pub fn bytes(v: &Value) -> Option<&[u8]> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.as_bytes()),
        Value::VerbatimString { text, .. } => Some(text.as_bytes()),
        _ => None,
    }
}

/// An integer reply (or a string holding one).
pub fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(n) => Some(*n),
        other => std::str::from_utf8(bytes(other)?).ok()?.parse().ok(),
    }
}

/// The elements of an array reply.
pub fn array(v: Value) -> Result<Vec<Value>, GatewayError> {
    match v {
        Value::Array(items) | Value::Set(items) => Ok(items),
        Value::Nil => Ok(Vec::new()),
        other => Err(GatewayError::Corrupt(format!(
            "unexpected Redis reply {other:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use livechat_core::{ChatParticipant, MessageType, Metadata, ParticipantKind};

    #[test]
    fn corrupt_json_is_an_error_not_a_panic() {
        let e = metadata("x", b"{not json", None).unwrap_err();
        assert_eq!(e.status(), 500);
        assert!(e.to_string().contains("conversation x"));
    }

    #[test]
    fn messages_go_in_without_seq_so_the_script_can_put_it_first() {
        let m = ChatMessage {
            id: "m1".into(),
            conversation_id: "c".into(),
            seq: 0,
            kind: MessageType::Text,
            sender: ChatParticipant::new("p", ParticipantKind::Customer, "P"),
            content: "hi".into(),
            metadata: Metadata::new(),
            timestamp: Timestamp(0),
            client_message_id: None,
        };
        let json = message_without_seq(&m).unwrap();
        assert!(json.starts_with("{\"id\":"));
        assert!(!json.contains("\"seq\""));
        let stored = format!("{{\"seq\":7,{}", &json[1..]);
        let back: ChatMessage = decode(stored.as_bytes(), "message").unwrap();
        assert_eq!(back.seq, 7);
        assert_eq!(back.content, "hi");
    }
}
