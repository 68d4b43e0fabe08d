//! The payloads of `system:event`: [`Joined`], what a socket gets when it joins a conversation,
//! and [`Announced`], a lifecycle notice to the conversation's room.
//!
//! A notice names the receiving socket's own participant, last. Over Redis it is published
//! without one and each executor splices the participant in before the closing brace
//! (`chat/fanout.rs`), so `participant` must stay the last field.

use livechat_core::{ChatParticipant, ConversationMetadata, Notice};
use serde::Serialize;

use super::json::Json;

/// `{"participant","conversation"}`, plus `"recovered"` when the socket resumed with `lastSeq`
/// (whether the backlog had everything after it).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Joined<'a> {
    participant: Json<'a, ChatParticipant>,
    conversation: Json<'a, ConversationMetadata>,
    #[serde(skip_serializing_if = "Option::is_none")]
    recovered: Option<bool>,
}

impl<'a> Joined<'a> {
    /// `participant` joined `conversation`; `recovered` only for a resume.
    pub fn new(
        participant: &'a ChatParticipant,
        conversation: &'a ConversationMetadata,
        recovered: Option<bool>,
    ) -> Self {
        Self {
            participant: Json(participant),
            conversation: Json(conversation),
            recovered,
        }
    }
}

/// `{"type","conversation","participant"}`: notice `type` about `conversation`, to the socket of
/// `participant`; without `participant` as published over Redis.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Announced<'a> {
    #[serde(rename = "type")]
    kind: Json<'a, Notice>,
    conversation: Json<'a, ConversationMetadata>,
    #[serde(skip_serializing_if = "Option::is_none")]
    participant: Option<Json<'a, ChatParticipant>>,
}

impl<'a> Announced<'a> {
    /// The notice as one socket of `participant` receives it.
    pub fn to(
        kind: &'a Notice,
        conversation: &'a ConversationMetadata,
        participant: &'a ChatParticipant,
    ) -> Self {
        Self {
            kind: Json(kind),
            conversation: Json(conversation),
            participant: Some(Json(participant)),
        }
    }

    /// The notice without a participant (published over Redis; completed at delivery).
    pub fn published(kind: &'a Notice, conversation: &'a ConversationMetadata) -> Self {
        Self {
            kind: Json(kind),
            conversation: Json(conversation),
            participant: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use livechat_core::{
        ChatParticipant, ConversationMetadata, ConversationStatus, Metadata, Notice,
        ParticipantKind, Timestamp,
    };

    use super::{Announced, Joined};
    use crate::chat::wire::Json;

    fn meta() -> ConversationMetadata {
        ConversationMetadata {
            id: "c1".into(),
            status: ConversationStatus::Queued,
            customer: ChatParticipant::new("u1", ParticipantKind::Customer, "Cy"),
            agent: None,
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
            accepted_at: None,
            closed_at: None,
            closed_by: None,
            close_reason: None,
            tags: Vec::new(),
            attributes: Metadata::new(),
            version: 1,
        }
    }

    #[test]
    fn joined_has_recovered_only_on_resume() {
        let (m, p) = (meta(), ChatParticipant::system());
        let (mj, pj) = (
            serde_json::to_string(&Json(&m)).unwrap(),
            serde_json::to_string(&Json(&p)).unwrap(),
        );
        assert_eq!(
            serde_json::to_string(&Joined::new(&p, &m, None)).unwrap(),
            format!(r#"{{"participant":{pj},"conversation":{mj}}}"#)
        );
        assert_eq!(
            serde_json::to_string(&Joined::new(&p, &m, Some(false))).unwrap(),
            format!(r#"{{"participant":{pj},"conversation":{mj},"recovered":false}}"#)
        );
    }

    #[test]
    fn a_published_notice_plus_the_participant_is_the_delivered_one() {
        let (m, p, n) = (meta(), ChatParticipant::system(), Notice::QueueTimeout);
        let published = serde_json::to_string(&Announced::published(&n, &m)).unwrap();
        assert!(published.starts_with(r#"{"type":"QUEUE_TIMEOUT","conversation":{"#));
        let pj = serde_json::to_string(&Json(&p)).unwrap();
        let spliced = format!(
            "{},\"participant\":{pj}}}",
            published.strip_suffix('}').unwrap()
        );
        assert_eq!(
            serde_json::to_string(&Announced::to(&n, &m, &p)).unwrap(),
            spliced
        );
    }
}
