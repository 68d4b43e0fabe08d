//! The payload of `queue:position`: `{"conversationId","position","estimatedWait"}` — the
//! answer to `POST /api/conversations/{id}/queue` (`QueuePosition`, see `queue.rs`) with the
//! conversation it is about in front, so a client holding several conversations can tell
//! them apart.
//!
//! Flattened from `QueuePosition`'s own definition rather than repeating its fields, so the
//! REST answer and the event cannot drift apart.

use livechat_core::QueuePosition;
use serde::Serialize;

use super::json::Json;

/// `{"conversationId","position","estimatedWait"}`.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueuePositionEvent<'a> {
    conversation_id: &'a str,
    #[serde(flatten)]
    position: Json<'a, QueuePosition>,
}

impl<'a> QueuePositionEvent<'a> {
    /// Conversation `conversation_id` stands at `position`.
    pub fn new(conversation_id: &'a str, position: &'a QueuePosition) -> Self {
        Self {
            conversation_id,
            position: Json(position),
        }
    }
}

#[cfg(test)]
mod tests {
    use livechat_core::QueuePosition;

    use super::QueuePositionEvent;
    use crate::chat::wire::Json;

    #[test]
    fn the_rest_answer_with_the_conversation_in_front() {
        let p = QueuePosition::estimate(2, 120_000);
        let event = serde_json::to_string(&QueuePositionEvent::new("c1", &p)).unwrap();
        assert_eq!(
            event,
            r#"{"conversationId":"c1","position":2,"estimatedWait":"PT6M"}"#
        );
        let rest = serde_json::to_string(&Json(&p)).unwrap();
        assert_eq!(
            event.replacen(r#""conversationId":"c1","#, "", 1),
            rest,
            "the same fields as the REST answer, in its order"
        );
    }

    #[test]
    fn next_in_line_is_position_zero_and_one_estimate() {
        let p = QueuePosition::estimate(0, 90_000);
        let v: serde_json::Value =
            serde_json::to_value(QueuePositionEvent::new("x-\"quoted\"", &p)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "conversationId": "x-\"quoted\"",
                "position": 0,
                "estimatedWait": "PT1M30S",
            })
        );
    }
}
