//! `livechat-core`: the livechat domain, sans-IO.
//!
//! Architecture Invariant: this crate does no IO, reads no clock and draws no random numbers.
//! State machines take a command and `now` and return the new state plus effects; the gateway
//! executes the effects. That keeps every rule unit-testable and identical on every backend.
//! It never parses or prints JSON and has no serde derives (`serde_json::Value` is only the
//! container for free-form client metadata); the gateway's `chat::wire` module spells these
//! types in the JSON of the contract.
//!
//! - [`access`]: who may do what (roles, principals, the authorization rules).
//! - [`participant`]: who takes part (customers, agents, the system).
//! - [`conversation`]: conversation metadata and status.
//! - [`message`]: chat messages and drafts.
//! - [`queue`]: queue entries and the wait estimate.
//! - [`event`]: analytics events.
//! - [`lifecycle`]: the state machine.
//! - [`commit`]: what one step writes, atomically, and what it announces.
//! - [`store`]: the traits a backend implements (store, metadata, events, auth, listener).
//! - [`time`]: timestamps given by the caller; ISO-8601 formatting.
//! - [`error`]: why a command is refused.

pub mod access;
pub mod commit;
pub mod conversation;
pub mod error;
pub mod event;
pub mod lifecycle;
pub mod message;
pub mod participant;
pub mod queue;
pub mod store;
pub mod time;

pub use access::{Action, Author, Denied, Principal, Role};
pub use commit::{
    message_commit, plan, AgentChange, Commit, Committed, MetaWrite, Plan, QueueChange, Refusal,
};
pub use conversation::{ConversationMetadata, ConversationStatus};
pub use error::LifecycleError;
pub use event::{events_of, ChatEvent, ChatEventType, EventSubject};
pub use lifecycle::{apply, compose, start, Command, Effect, ExpireReason, Notice, Transition};
pub use message::{ChatMessage, MessageDraft, MessageType};
pub use participant::{ChatParticipant, Metadata, ParticipantKind, ParticipantKindError};
pub use queue::{QueueEntry, QueuePosition};
pub use time::Timestamp;
