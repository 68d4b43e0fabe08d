//! The conversation lifecycle as a pure state machine.
//!
//! `apply(current, command, now)` returns the new metadata and the effects the executor must
//! carry out (append messages, notify the room, publish analytics, change the queue, claim or
//! release an agent slot) — or the error that refuses the command. No IO, no clock, no ids:
//! the caller supplies `now`, and the store assigns message ids and `seq`.
//!
//! ```text
//!   start ─▶ OPEN ──enqueue──▶ QUEUED ──accept──▶ ASSIGNED
//!             ▲                  │  ▲               │
//!             └──queue timeout───┘  └───enqueue─────┘ (releases the agent)
//!   any non-closed ──close / inactivity / max duration──▶ CLOSED
//! ```

use crate::conversation::{ConversationMetadata, ConversationStatus};
use crate::error::LifecycleError;
use crate::event::ChatEventType;
use crate::message::{MessageDraft, MessageType};
use crate::participant::{ChatParticipant, Metadata, ParticipantKind};
use crate::queue::QueueEntry;
use crate::time::Timestamp;

/// Why the backend closed a conversation on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpireReason {
    /// Idle longer than `chat.conversation.inactivity-timeout`.
    Inactivity,
    /// Older than `chat.conversation.max-duration`.
    MaxDuration,
}

/// What someone wants to happen to a conversation.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Ask for an agent.
    Enqueue {
        /// Channel override (`web`, ...).
        channel: Option<String>,
    },
    /// An agent takes the conversation. The cap is not checked here: the store checks it
    /// inside the same atomic commit that takes the slot (a count read earlier could be stale).
    Accept {
        /// The agent.
        agent: ChatParticipant,
        /// `chat.queue.max-concurrent-by-agent`.
        max_per_agent: usize,
    },
    /// A participant writes.
    Send {
        /// Who.
        sender: ChatParticipant,
        /// Text.
        content: String,
        /// TEXT or EVENT (SYSTEM is reserved for the backend).
        kind: MessageType,
        /// Metadata.
        metadata: Metadata,
        /// Idempotency key (the store deduplicates).
        client_message_id: Option<String>,
        /// `chat.message.max-length`, in characters.
        max_length: usize,
    },
    /// A participant closes.
    Close {
        /// Who.
        by: ChatParticipant,
        /// Optional reason, kept in the notice's metadata.
        reason: Option<String>,
    },
    /// The queue entry is older than `chat.queue.max-wait`: it was enqueued at or before
    /// `enqueued_by` (checked by the store in the same commit; a re-queue since then wins).
    QueueTimeout {
        /// The cutoff.
        enqueued_by: Timestamp,
    },
    /// Housekeeping closes it.
    Expire(ExpireReason),
}

/// What a `system:event` to the conversation's room announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Notice {
    /// Entered the queue.
    ConversationQueued,
    /// An agent accepted.
    ConversationAccepted,
    /// Closed.
    ConversationClosed,
    /// Left the queue after `chat.queue.max-wait` (status OPEN again).
    QueueTimeout,
}

/// Something the executor must do because of a transition, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Append this message (the store assigns id and seq) and broadcast it as `chat:message`.
    Append(MessageDraft),
    /// Tell the room (`system:event` with this type).
    Notify(Notice),
    /// Publish an analytics event of this type about the conversation.
    Publish(ChatEventType),
    /// Put this entry in the agent queue.
    QueueAdd(QueueEntry),
    /// Remove the conversation from the agent queue.
    QueueRemove,
    /// Remove it only if it was enqueued at or before this instant (else refuse the step).
    QueueExpire(Timestamp),
    /// Take one of this agent's slots, refused when the agent already holds `max`.
    ClaimAgent {
        /// The agent.
        agent_id: String,
        /// The cap.
        max: usize,
    },
    /// Free one of this agent's slots.
    ReleaseAgent(String),
}

/// The result of a command: new metadata plus effects.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// The conversation after the command.
    pub conversation: ConversationMetadata,
    /// What to do, in order.
    pub effects: Vec<Effect>,
}

impl Transition {
    /// Nothing changes (an idempotent repeat such as accepting twice).
    pub fn is_noop(&self) -> bool {
        self.effects.is_empty()
    }
}

/// Starts a conversation (status OPEN).
pub fn start(
    id: String,
    customer: ChatParticipant,
    attributes: Metadata,
    now: Timestamp,
) -> Transition {
    Transition {
        conversation: ConversationMetadata {
            id,
            status: ConversationStatus::Open,
            customer,
            agent: None,
            created_at: now,
            updated_at: now,
            accepted_at: None,
            closed_at: None,
            closed_by: None,
            close_reason: None,
            tags: Vec::new(),
            attributes,
            version: 1,
        },
        effects: vec![Effect::Publish(ChatEventType::ConversationStarted)],
    }
}

/// A message, checked without the conversation: everything `apply(Send)` checks but the
/// status. A sender that does not read the conversation first (a socket's `chat:message`)
/// relies on the store refusing the append once the conversation is CLOSED, atomically.
pub fn compose(
    sender: ChatParticipant,
    content: String,
    kind: MessageType,
    metadata: Metadata,
    client_message_id: Option<String>,
    max_length: usize,
) -> Result<MessageDraft, LifecycleError> {
    if kind == MessageType::System || sender.kind == ParticipantKind::System {
        return Err(LifecycleError::SystemReserved);
    }
    if content.trim().is_empty() {
        return Err(LifecycleError::EmptyContent);
    }
    if content.chars().count() > max_length {
        return Err(LifecycleError::ContentTooLong(max_length));
    }
    // Text only: line breaks and tabs, no other control characters (terminal escapes, NULs,
    // C1 codes) reach the other side.
    if content
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(LifecycleError::ControlCharacters);
    }
    Ok(MessageDraft {
        kind,
        sender,
        content,
        metadata,
        client_message_id,
    })
}

/// Applies `cmd` to `current` at `now`.
pub fn apply(
    current: &ConversationMetadata,
    cmd: Command,
    now: Timestamp,
) -> Result<Transition, LifecycleError> {
    use ConversationStatus::*;
    let mut next = current.clone();
    let mut effects = Vec::new();
    match cmd {
        Command::Enqueue { channel } => match current.status {
            Closed => return Err(LifecycleError::Closed),
            Queued => return Ok(unchanged(current)),
            Open | Assigned => {
                if let Some(agent) = next.agent.take() {
                    effects.push(Effect::ReleaseAgent(agent.id));
                }
                if let Some(c) = channel.filter(|c| !c.is_empty()) {
                    next.attributes.insert("channel".into(), c.into());
                }
                next.status = Queued;
                next.accepted_at = None;
                effects.push(Effect::QueueAdd(queue_entry(&next, now)));
                effects.push(Effect::Notify(Notice::ConversationQueued));
                effects.push(Effect::Publish(ChatEventType::ConversationQueued));
            }
        },
        Command::Accept {
            agent,
            max_per_agent,
        } => match (&current.status, &current.agent) {
            (Closed, _) => return Err(LifecycleError::Closed),
            (Assigned, Some(a)) if a.id == agent.id => return Ok(unchanged(current)),
            (Assigned, Some(a)) => return Err(LifecycleError::AssignedToOther(a.id.clone())),
            (Open | Assigned, _) => return Err(LifecycleError::NotQueued),
            (Queued, _) => {
                effects.push(Effect::QueueRemove);
                effects.push(Effect::ClaimAgent {
                    agent_id: agent.id.clone(),
                    max: max_per_agent,
                });
                next.status = Assigned;
                next.agent = Some(agent);
                next.accepted_at = Some(now);
                effects.push(Effect::Notify(Notice::ConversationAccepted));
                effects.push(Effect::Publish(ChatEventType::ConversationAccepted));
            }
        },
        Command::Send {
            sender,
            content,
            kind,
            metadata,
            client_message_id,
            max_length,
        } => {
            if current.status == Closed {
                return Err(LifecycleError::Closed);
            }
            effects.push(Effect::Append(compose(
                sender,
                content,
                kind,
                metadata,
                client_message_id,
                max_length,
            )?));
            effects.push(Effect::Publish(ChatEventType::MessageReceived));
            // A message is activity, not a metadata change: `version` stays, so concurrent
            // senders never conflict with each other; the store refuses it once CLOSED.
            next.updated_at = now;
            return Ok(Transition {
                conversation: next,
                effects,
            });
        }
        Command::Close { by, reason } => {
            if current.status == Closed {
                return Ok(unchanged(current));
            }
            let verb = if by.kind == ParticipantKind::Agent {
                "closed"
            } else {
                "ended"
            };
            let content = format!("{} {verb} the chat.", by.display_name);
            let mut meta = closed_metadata(by.kind.as_str(), &by.display_name);
            next.closed_by = Some(by.id.clone());
            if let Some(r) = reason.filter(|r| !r.is_empty()) {
                meta.insert("reason".into(), r.clone().into());
                next.close_reason = Some(r);
            }
            close(&mut next, &mut effects, content, meta);
        }
        Command::Expire(why) => {
            if current.status == Closed {
                return Ok(unchanged(current));
            }
            let (content, reason) = match why {
                ExpireReason::Inactivity => (
                    "The chat was closed after a period of inactivity.",
                    "INACTIVITY",
                ),
                ExpireReason::MaxDuration => (
                    "The chat was closed because it reached its maximum duration.",
                    "MAX_DURATION",
                ),
            };
            let mut meta = closed_metadata("SYSTEM", "System");
            meta.insert("reason".into(), reason.into());
            next.closed_by = Some("SYSTEM".into());
            next.close_reason = Some(reason.into());
            close(&mut next, &mut effects, content.into(), meta);
        }
        Command::QueueTimeout { enqueued_by } => {
            if current.status != Queued {
                return Ok(unchanged(current));
            }
            next.status = Open;
            effects.push(Effect::QueueExpire(enqueued_by));
            let mut meta = Metadata::new();
            meta.insert("event".into(), "QUEUE_TIMEOUT".into());
            effects.push(Effect::Append(system_draft(
                "No agent is available right now. Please try again later.".into(),
                meta,
            )));
            effects.push(Effect::Notify(Notice::QueueTimeout));
        }
    }
    next.updated_at = now;
    next.version += 1;
    if next.status == Closed && current.status != Closed {
        next.closed_at = Some(now);
    }
    Ok(Transition {
        conversation: next,
        effects,
    })
}

/// Nothing to do (an idempotent repeat).
fn unchanged(current: &ConversationMetadata) -> Transition {
    Transition {
        conversation: current.clone(),
        effects: Vec::new(),
    }
}

fn close(
    next: &mut ConversationMetadata,
    effects: &mut Vec<Effect>,
    content: String,
    meta: Metadata,
) {
    match next.status {
        ConversationStatus::Queued => effects.push(Effect::QueueRemove),
        ConversationStatus::Assigned => {
            if let Some(a) = &next.agent {
                effects.push(Effect::ReleaseAgent(a.id.clone()));
            }
        }
        _ => {}
    }
    next.status = ConversationStatus::Closed;
    effects.push(Effect::Append(system_draft(content, meta)));
    effects.push(Effect::Notify(Notice::ConversationClosed));
    effects.push(Effect::Publish(ChatEventType::ConversationClosed));
}

fn closed_metadata(by_type: &str, by_name: &str) -> Metadata {
    let mut meta = Metadata::new();
    meta.insert("event".into(), "CHAT_CLOSED".into());
    meta.insert("closedByType".into(), by_type.into());
    meta.insert("closedByDisplayName".into(), by_name.into());
    meta
}

fn system_draft(content: String, metadata: Metadata) -> MessageDraft {
    MessageDraft {
        kind: MessageType::System,
        sender: ChatParticipant::system(),
        content,
        metadata,
        client_message_id: None,
    }
}

fn queue_entry(c: &ConversationMetadata, now: Timestamp) -> QueueEntry {
    let attr = |k: &str| {
        c.attributes
            .get(k)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    QueueEntry {
        conversation_id: c.id.clone(),
        enqueued_at: now,
        customer_id: c.customer.id.clone(),
        channel: attr("channel"),
        customer_name: Some(c.customer.display_name.clone()),
        customer_phone: attr("customerPhone").or_else(|| attr("phone")),
    }
}

#[cfg(test)]
#[path = "lifecycle_tests.rs"]
mod tests;
