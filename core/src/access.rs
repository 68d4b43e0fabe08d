//! Who may do what: the authorization rules, as pure functions of the caller (a
//! [`Principal`], made by the gateway from a verified token or, in development mode, from the
//! ids a client presents) and of the conversation's metadata.
//!
//! The gateway asks [`authorize`] before every action on a conversation, with the metadata the
//! action is decided on (for lifecycle steps: inside the step, so the answer and the commit see
//! the same state). A message that skips the metadata read (a socket's `chat:message`) carries
//! an [`Author`] in its commit instead, and the store checks it atomically with the append —
//! so an agent whose conversation was re-queued or closed cannot slip one more message in.
//!
//! The rules (documented for operators in README.md, "Security"):
//! - customers: their own conversations (the customer id is theirs) and the ones their token
//!   names; every action on them but accept;
//! - agents (role `agent`): the queue (read, watch, accept); the conversations assigned to them
//!   (read, join, send, re-queue, close); their own conversation list;
//! - admins (role `admin`): everything an agent may, plus reading and joining (observing) any
//!   conversation, closing any, and any agent's conversation list — but sending only where
//!   assigned, so no message ever appears under a name that did not write it.

use crate::conversation::ConversationMetadata;
use crate::participant::{ChatParticipant, ParticipantKind};
use crate::time::Timestamp;

/// What the caller is allowed to be, from the token's role claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// A website or app visitor.
    Customer,
    /// A support agent.
    Agent,
    /// A supervisor or operator: an agent who may also observe every conversation.
    Admin,
}

impl Role {
    /// `customer`, `agent` or `admin` (any case); `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "customer" => Some(Self::Customer),
            "agent" => Some(Self::Agent),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Agent => "agent",
            Self::Admin => "admin",
        }
    }

    /// The participant kind this role takes part as (admins appear as agents).
    pub fn kind(self) -> ParticipantKind {
        match self {
            Self::Customer => ParticipantKind::Customer,
            Self::Agent | Self::Admin => ParticipantKind::Agent,
        }
    }

    /// Agent or admin.
    pub fn is_staff(self) -> bool {
        self >= Self::Agent
    }
}

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    /// The participant it acts as (id, kind from the role, display name).
    pub participant: ChatParticipant,
    /// Its role.
    pub role: Role,
    /// Conversations a customer's token names besides the ones it owns.
    pub conversations: Vec<String>,
    /// Development mode only: a caller who presented no id at all. As in the system we
    /// replace, the conversation id itself is the capability: whoever holds it acts as its
    /// customer (or, on agent routes, as its assigned agent). Never set from a verified token.
    pub bearer: bool,
    /// When the proof expires (a token's `exp`): a socket past it is told and disconnected.
    pub expires_at: Option<Timestamp>,
}

impl Principal {
    /// A caller with `role` acting as `participant`.
    pub fn new(participant: ChatParticipant, role: Role) -> Self {
        Self {
            participant,
            role,
            conversations: Vec::new(),
            bearer: false,
            expires_at: None,
        }
    }

    /// The participant id.
    pub fn id(&self) -> &str {
        &self.participant.id
    }

    /// Who this caller acts as in `meta` (once authorized): a customer as the conversation's
    /// customer, an agent as its assigned agent (as stored at accept), anyone else (an admin
    /// observing) as itself. Messages and closes are written in that name.
    pub fn acts_as(&self, meta: &ConversationMetadata) -> ChatParticipant {
        match self.role {
            Role::Customer => meta.customer.clone(),
            Role::Agent | Role::Admin => match &meta.agent {
                Some(a) if self.bearer || a.id == self.participant.id => a.clone(),
                _ => self.participant.clone(),
            },
        }
    }

    /// Whether this customer may act on `meta` as its customer.
    fn owns(&self, meta: &ConversationMetadata) -> bool {
        self.role == Role::Customer
            && (self.bearer
                || meta.customer.id == self.participant.id
                || self.conversations.contains(&meta.id))
    }

    /// Whether `meta` is assigned to this agent (or admin); a development-mode agent who named
    /// no one holds whatever is assigned (the conversation id is the capability).
    fn holds(&self, meta: &ConversationMetadata) -> bool {
        self.role.is_staff()
            && meta
                .agent
                .as_ref()
                .is_some_and(|a| self.bearer || a.id == self.participant.id)
    }
}

/// An action on one conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read its metadata or messages.
    Read,
    /// Join its room (receive its messages live).
    Join,
    /// Send a message.
    Send,
    /// Put it in the agent queue.
    Queue,
    /// Close it.
    Close,
}

impl Action {
    fn verb(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Join => "join",
            Self::Send => "send into",
            Self::Queue => "queue",
            Self::Close => "close",
        }
    }
}

/// Why an action is refused (403 `forbidden`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Denied(pub String);

/// Whether `who` may do `action` on the conversation `meta`.
pub fn authorize(
    who: &Principal,
    action: Action,
    meta: &ConversationMetadata,
) -> Result<(), Denied> {
    let allowed = match who.role {
        Role::Customer => who.owns(meta),
        Role::Agent => who.holds(meta),
        Role::Admin => match action {
            Action::Read | Action::Join | Action::Close => true,
            Action::Send | Action::Queue => who.holds(meta),
        },
    };
    if allowed {
        return Ok(());
    }
    Err(Denied(match who.role {
        Role::Customer => format!(
            "you may not {} conversation {}: it is not yours",
            action.verb(),
            meta.id
        ),
        Role::Agent | Role::Admin => format!(
            "you may not {} conversation {}: it is not assigned to you",
            action.verb(),
            meta.id
        ),
    }))
}

/// Reading the agent queue, watching it (`scope=queue`) and accepting from it: agents and
/// admins.
pub fn authorize_queue(who: &Principal) -> Result<(), Denied> {
    if who.role.is_staff() {
        Ok(())
    } else {
        Err(Denied("the agent queue needs the agent role".into()))
    }
}

/// Listing the conversations of agent `agent_id`: that agent, or an admin.
pub fn authorize_agent_list(who: &Principal, agent_id: &str) -> Result<(), Denied> {
    match who.role {
        Role::Admin => Ok(()),
        Role::Agent if who.participant.id == agent_id => Ok(()),
        Role::Agent => Err(Denied(
            "agents may list only their own conversations".into(),
        )),
        Role::Customer => Err(Denied(
            "agent conversation lists need the agent role".into(),
        )),
    }
}

/// Starting a conversation: customers (it is theirs).
pub fn authorize_start(who: &Principal) -> Result<(), Denied> {
    if who.role == Role::Customer {
        Ok(())
    } else {
        Err(Denied("only customers start conversations".into()))
    }
}

/// Who a message commit is written by, checked by the store atomically with the append: the
/// conversation's customer must be this id ([`Author::Customer`]), or its assigned agent
/// ([`Author::Agent`]); otherwise the commit is refused whole ([`crate::Refusal::Forbidden`]).
///
/// Every customer message is written as the conversation's customer (a caller with customer
/// access acts as that customer — see [`Principal::bearer`]), and every agent message by the
/// assigned agent: that is the invariant the store enforces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Author {
    /// The conversation's customer.
    Customer(String),
    /// The conversation's assigned agent.
    Agent(String),
}

impl Author {
    /// The check for a message from `sender` (`None` for the system's own messages).
    pub fn of(sender: &ChatParticipant) -> Option<Self> {
        match sender.kind {
            ParticipantKind::Customer => Some(Self::Customer(sender.id.clone())),
            ParticipantKind::Agent => Some(Self::Agent(sender.id.clone())),
            ParticipantKind::System => None,
        }
    }

    /// Whether `meta` lets this author write.
    pub fn admits(&self, meta: &ConversationMetadata) -> bool {
        match self {
            Self::Customer(id) => meta.customer.id == *id,
            Self::Agent(id) => meta.agent.as_ref().is_some_and(|a| a.id == *id),
        }
    }
}

#[cfg(test)]
#[path = "access_tests.rs"]
mod tests;
