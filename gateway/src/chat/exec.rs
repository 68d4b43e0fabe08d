//! One lifecycle step against a store: load the conversation, decide the command on what was
//! loaded, run the core state machine, commit the result in one store call — and when the
//! commit finds the version changed (another node or task committed first), start again from a
//! fresh load, so every decision is made on the state the commit checks.
//!
//! Generic over the store so the engine's tests can run it on a store that fails on demand.
//! Runs on: the conversation's owner executor, holding the conversation's turn.

use livechat_core::store::ConversationStore;
use livechat_core::{
    apply, compose, message_commit, plan, start, ChatEventType, ChatMessage, ChatParticipant,
    Command, Committed, ConversationMetadata, LifecycleError, Metadata, Notice, Refusal, Timestamp,
};

use super::ids::new_uuid;
use crate::error::GatewayError;

/// How often a step is retried after version conflicts before it gives up (409). Conflicts
/// need another writer of the same conversation in between, so more than a few in a row means
/// heavy contention, not bad luck.
pub const MAX_ATTEMPTS: usize = 8;

/// Decides the command from the freshly loaded metadata: `Ok(None)` when there is nothing to
/// do any more (a housekeeping precondition no longer holds), `Err` to refuse (e.g. 403).
pub type Decide =
    Box<dyn FnMut(&ConversationMetadata) -> Result<Option<Command>, GatewayError> + Send>;

/// What to tell the world after a commit: messages, room notices, analytics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Announcement {
    /// Stored messages, in `seq` order (`chat:message`).
    pub messages: Vec<ChatMessage>,
    /// `system:event`s, after the messages.
    pub notices: Vec<Notice>,
    /// Analytics events.
    pub events: Vec<ChatEventType>,
    /// The queue changed (a `queue:snapshot` is due).
    pub queue_changed: bool,
}

impl Announcement {
    /// Nothing to announce.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
            && self.notices.is_empty()
            && self.events.is_empty()
            && !self.queue_changed
    }
}

/// The result of one step.
#[derive(Debug, Clone)]
pub struct Executed {
    /// Metadata after the step.
    pub conversation: ConversationMetadata,
    /// The message stored (or the earlier duplicate), if the step stored one.
    pub message: Option<ChatMessage>,
    /// Queue position, after an enqueue.
    pub position: Option<usize>,
    /// What to announce (empty when nothing changed).
    pub announce: Announcement,
}

impl Executed {
    fn unchanged(conversation: ConversationMetadata) -> Self {
        Self {
            conversation,
            message: None,
            position: None,
            announce: Announcement::default(),
        }
    }
}

/// Runs one step on conversation `id`.
pub async fn execute<S: ConversationStore<Error = GatewayError>>(
    store: &S,
    id: &str,
    decide: &mut Decide,
    clock: impl Fn() -> Timestamp,
) -> Result<Executed, GatewayError> {
    for _ in 0..MAX_ATTEMPTS {
        let Some(current) = store.load(id).await? else {
            return Err(not_found(id));
        };
        let Some(cmd) = decide(&current)? else {
            return Ok(Executed::unchanged(current));
        };
        let now = clock();
        let t = apply(&current, cmd, now)?;
        if t.is_noop() {
            return Ok(Executed::unchanged(current));
        }
        let p = plan(Some(&current), t, now, new_uuid);
        let queue_changed = p.commit.queue.is_some();
        let notices = p.commit.notices.clone();
        match store.commit(p.commit).await? {
            Ok(Committed {
                duplicate: Some(first),
                ..
            }) => {
                // A retried message: nothing was written, nothing to announce.
                return Ok(Executed {
                    message: Some(first),
                    ..Executed::unchanged(current)
                });
            }
            Ok(c) => {
                return Ok(Executed {
                    conversation: p.conversation,
                    message: c.messages.last().cloned(),
                    position: c.position,
                    announce: Announcement {
                        messages: c.messages,
                        notices,
                        events: p.events,
                        queue_changed,
                    },
                })
            }
            Err(Refusal::Conflict) => continue,
            Err(Refusal::Stale) => return Ok(Executed::unchanged(current)),
            Err(Refusal::Closed) => return Err(LifecycleError::Closed.into()),
            Err(Refusal::AtCapacity(max)) => {
                return Err(LifecycleError::AgentAtCapacity(max).into())
            }
            Err(Refusal::NotFound) => return Err(not_found(id)),
            Err(Refusal::Forbidden) => return Err(forbidden_sender(id)),
        }
    }
    Err(GatewayError::Contended(format!(
        "conversation {id} kept changing during {MAX_ATTEMPTS} attempts; retry"
    )))
}

/// A message whose sender needs nothing from the conversation (a socket's participant): no
/// load, one store call — the store refuses it once the conversation is CLOSED.
pub async fn append<S: ConversationStore<Error = GatewayError>>(
    store: &S,
    id: &str,
    cmd: Command,
    now: Timestamp,
) -> Result<(ChatMessage, Announcement), GatewayError> {
    let Command::Send {
        sender,
        content,
        kind,
        metadata,
        client_message_id,
        max_length,
    } = cmd
    else {
        return Err(GatewayError::BadRequest("not a message".into()));
    };
    let draft = compose(
        sender,
        content,
        kind,
        metadata,
        client_message_id,
        max_length,
    )?;
    let commit = message_commit(id, draft, new_uuid(), now);
    match store.commit(commit).await? {
        Ok(Committed {
            duplicate: Some(first),
            ..
        }) => Ok((first, Announcement::default())),
        Ok(c) => {
            let Some(m) = c.messages.last().cloned() else {
                return Err(GatewayError::Corrupt(format!(
                    "append to {id} stored nothing"
                )));
            };
            let announce = Announcement {
                messages: c.messages,
                events: vec![ChatEventType::MessageReceived],
                ..Announcement::default()
            };
            Ok((m, announce))
        }
        Err(Refusal::Closed) => Err(LifecycleError::Closed.into()),
        Err(Refusal::NotFound) => Err(not_found(id)),
        Err(Refusal::Forbidden) => Err(forbidden_sender(id)),
        Err(other) => Err(GatewayError::Contended(format!(
            "message to {id} refused ({other:?}); retry"
        ))),
    }
}

/// Starts a conversation with id `id` (status OPEN).
pub async fn create<S: ConversationStore<Error = GatewayError>>(
    store: &S,
    id: String,
    customer: ChatParticipant,
    attributes: Metadata,
    now: Timestamp,
) -> Result<Executed, GatewayError> {
    let p = plan(None, start(id, customer, attributes, now), now, new_uuid);
    match store.commit(p.commit).await? {
        Ok(_) => Ok(Executed {
            conversation: p.conversation,
            message: None,
            position: None,
            announce: Announcement {
                events: p.events,
                ..Announcement::default()
            },
        }),
        // A fresh 122-bit random id already taken: say so rather than overwrite anything.
        Err(r) => Err(GatewayError::Contended(format!(
            "could not create the conversation ({r:?}); retry"
        ))),
    }
}

fn not_found(id: &str) -> GatewayError {
    GatewayError::NotFound(format!("conversation {id} not found"))
}

#[cfg(test)]
#[path = "exec_tests.rs"]
mod tests;

/// A message refused because its sender is not (or no longer) the conversation's customer or
/// assigned agent.
fn forbidden_sender(id: &str) -> GatewayError {
    GatewayError::Forbidden(format!(
        "you may not send into conversation {id}: you are not its customer or assigned agent"
    ))
}
