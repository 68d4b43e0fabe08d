//! What one lifecycle step writes, as one unit: the store applies a [`Commit`] atomically —
//! metadata (with a `version` compare-and-set), the messages it appends (the store assigns
//! `seq`), the queue change and the agent-slot change — or refuses it whole.
//!
//! [`plan`] turns a [`Transition`] into a commit plus what to announce once it is stored
//! (notices to the room, analytics events). The caller gives the message ids and `now`: the
//! core draws no random numbers and reads no clock.

use crate::access::Author;
use crate::conversation::ConversationMetadata;
use crate::event::ChatEventType;
use crate::lifecycle::{Effect, Notice, Transition};
use crate::message::ChatMessage;
use crate::queue::QueueEntry;
use crate::time::Timestamp;

/// How the commit writes the conversation's metadata.
#[derive(Debug, Clone, PartialEq)]
pub enum MetaWrite {
    /// Replace the metadata, only if the store still holds `expected_version` (0: the
    /// conversation must not exist yet). Anything else is [`Refusal::Conflict`].
    Replace {
        /// The metadata after the step (`version` = `expected_version + 1`); boxed because
        /// `Touch`, the per-message case, is tiny.
        conversation: Box<ConversationMetadata>,
        /// The version the step was decided on.
        expected_version: u64,
    },
    /// Only activity: `updatedAt` becomes `at` if later; refused with [`Refusal::Closed`] once
    /// the conversation is CLOSED, and with [`Refusal::Forbidden`] when `author` is not the
    /// conversation's customer / assigned agent. Messages use this, so concurrent senders never
    /// conflict, and a sender loses its right the instant the conversation changes hands.
    Touch {
        /// When.
        at: Timestamp,
        /// Who writes the appended messages (see [`Author`]); `None` when nothing is appended.
        author: Option<Author>,
    },
}

/// A change to the agent queue.
#[derive(Debug, Clone, PartialEq)]
pub enum QueueChange {
    /// Put the conversation in the queue (replacing an older entry of it).
    Add(QueueEntry),
    /// Take it out (no-op if it is not there).
    Remove,
    /// Take it out only if it was enqueued at or before this instant; otherwise (re-queued
    /// since, or gone) refuse the whole commit with [`Refusal::Stale`].
    Expire(Timestamp),
}

/// A change to an agent's slots (and the per-agent conversation index).
#[derive(Debug, Clone, PartialEq)]
pub enum AgentChange {
    /// Take a slot; refused with [`Refusal::AtCapacity`] when the agent holds `max` already.
    /// Holding this conversation already is granted again (idempotent).
    Claim {
        /// The agent.
        agent_id: String,
        /// The cap.
        max: usize,
    },
    /// Free the slot (idempotent).
    Release {
        /// The agent.
        agent_id: String,
    },
}

impl AgentChange {
    /// The agent concerned.
    pub fn agent_id(&self) -> &str {
        match self {
            Self::Claim { agent_id, .. } | Self::Release { agent_id } => agent_id,
        }
    }
}

/// One atomic write of one conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct Commit {
    /// The conversation.
    pub conversation_id: String,
    /// Metadata.
    pub write: MetaWrite,
    /// Messages to append in order; their `seq` is assigned by the store (given as 0). A message
    /// whose `clientMessageId` the store has seen is not stored again (see
    /// [`Committed::duplicate`]).
    pub append: Vec<ChatMessage>,
    /// Queue change.
    pub queue: Option<QueueChange>,
    /// Agent-slot change.
    pub agent: Option<AgentChange>,
    /// `system:event`s for the room, after the messages. A store that delivers room events
    /// itself (Redis Pub/Sub) publishes them with the commit, so their order is the store's.
    pub notices: Vec<Notice>,
}

/// What a successful commit stored.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Committed {
    /// The appended messages with their `seq`.
    pub messages: Vec<ChatMessage>,
    /// The earlier message with the same `clientMessageId`, when the append was a retry:
    /// then nothing at all was written.
    pub duplicate: Option<ChatMessage>,
    /// 0-based queue position after a [`QueueChange::Add`].
    pub position: Option<usize>,
}

/// Why a store refused a commit. Nothing of it was applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No such conversation.
    NotFound,
    /// The stored `version` is not the expected one (someone else committed first).
    Conflict,
    /// A message for a CLOSED conversation.
    Closed,
    /// The agent already holds this many conversations.
    AtCapacity(usize),
    /// A housekeeping precondition no longer holds (see [`QueueChange::Expire`]).
    Stale,
    /// A message whose [`Author`] is not the conversation's customer / assigned agent.
    Forbidden,
}

/// A commit and what to announce once it is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The write.
    pub commit: Commit,
    /// Analytics events.
    pub events: Vec<ChatEventType>,
    /// The metadata after the step.
    pub conversation: ConversationMetadata,
}

/// A message on its own (see [`crate::compose`]): a touch commit appending it, refused by the
/// store once the conversation is CLOSED.
pub fn message_commit(
    conversation_id: &str,
    draft: crate::MessageDraft,
    message_id: String,
    now: Timestamp,
) -> Commit {
    Commit {
        conversation_id: conversation_id.to_owned(),
        write: MetaWrite::Touch {
            at: now,
            author: Author::of(&draft.sender),
        },
        append: vec![draft.into_message(message_id, conversation_id, 0, now)],
        queue: None,
        agent: None,
        notices: Vec::new(),
    }
}

/// Turns `t`, decided on `before`, into one commit. Message ids come from `new_id`.
pub fn plan(
    before: Option<&ConversationMetadata>,
    t: Transition,
    now: Timestamp,
    mut new_id: impl FnMut() -> String,
) -> Plan {
    let id = t.conversation.id.clone();
    let write = match before {
        Some(b) if b.version == t.conversation.version => MetaWrite::Touch {
            at: now,
            author: t.effects.iter().find_map(|e| match e {
                Effect::Append(draft) => Author::of(&draft.sender),
                _ => None,
            }),
        },
        _ => MetaWrite::Replace {
            conversation: Box::new(t.conversation.clone()),
            expected_version: before.map_or(0, |b| b.version),
        },
    };
    let mut commit = Commit {
        conversation_id: id.clone(),
        write,
        append: Vec::new(),
        queue: None,
        agent: None,
        notices: Vec::new(),
    };
    let mut events = Vec::new();
    for effect in t.effects {
        match effect {
            Effect::Append(draft) => commit
                .append
                .push(draft.into_message(new_id(), &id, 0, now)),
            Effect::Notify(n) => commit.notices.push(n),
            Effect::Publish(e) => events.push(e),
            Effect::QueueAdd(entry) => commit.queue = Some(QueueChange::Add(entry)),
            Effect::QueueRemove => commit.queue = Some(QueueChange::Remove),
            Effect::QueueExpire(by) => commit.queue = Some(QueueChange::Expire(by)),
            Effect::ClaimAgent { agent_id, max } => {
                commit.agent = Some(AgentChange::Claim { agent_id, max })
            }
            Effect::ReleaseAgent(agent_id) => {
                commit.agent = Some(AgentChange::Release { agent_id })
            }
        }
    }
    Plan {
        commit,
        events,
        conversation: t.conversation,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::{apply, start, Command};
    use crate::participant::{ChatParticipant, Metadata, ParticipantKind};
    use crate::ConversationStatus;

    fn ids() -> impl FnMut() -> String {
        let mut n = 0;
        move || {
            n += 1;
            format!("m{n}")
        }
    }

    fn customer() -> ChatParticipant {
        ChatParticipant::new("c", ParticipantKind::Customer, "C")
    }

    #[test]
    fn start_creates_with_expected_version_zero() {
        let t = start("x".into(), customer(), Metadata::new(), Timestamp(1));
        let p = plan(None, t, Timestamp(1), ids());
        assert!(matches!(
            p.commit.write,
            MetaWrite::Replace {
                expected_version: 0,
                ..
            }
        ));
        assert_eq!(p.events, vec![ChatEventType::ConversationStarted]);
    }

    #[test]
    fn accept_is_one_commit_with_claim_and_queue_removal() {
        let mut c = start("x".into(), customer(), Metadata::new(), Timestamp(1)).conversation;
        c.status = ConversationStatus::Queued;
        let agent = ChatParticipant::new("a", ParticipantKind::Agent, "A");
        let cmd = Command::Accept {
            agent,
            max_per_agent: 2,
        };
        let p = plan(
            Some(&c),
            apply(&c, cmd, Timestamp(2)).unwrap(),
            Timestamp(2),
            ids(),
        );
        assert_eq!(p.commit.queue, Some(QueueChange::Remove));
        assert_eq!(
            p.commit.agent,
            Some(AgentChange::Claim {
                agent_id: "a".into(),
                max: 2
            })
        );
        assert!(matches!(
            p.commit.write,
            MetaWrite::Replace {
                expected_version: 1,
                ..
            }
        ));
        assert_eq!(p.commit.notices, vec![Notice::ConversationAccepted]);
    }

    #[test]
    fn a_message_only_touches_and_appends() {
        let c = start("x".into(), customer(), Metadata::new(), Timestamp(1)).conversation;
        let cmd = Command::Send {
            sender: customer(),
            content: "hi".into(),
            kind: crate::MessageType::Text,
            metadata: Metadata::new(),
            client_message_id: Some("k".into()),
            max_length: 10,
        };
        let p = plan(
            Some(&c),
            apply(&c, cmd, Timestamp(5)).unwrap(),
            Timestamp(5),
            ids(),
        );
        assert_eq!(
            p.commit.write,
            MetaWrite::Touch {
                at: Timestamp(5),
                author: Some(Author::Customer("c".into()))
            }
        );
        assert_eq!(p.commit.append.len(), 1);
        assert_eq!(p.commit.append[0].id, "m1");
        assert_eq!(p.commit.append[0].client_message_id.as_deref(), Some("k"));
        assert_eq!(p.commit.queue, None);
    }
}
