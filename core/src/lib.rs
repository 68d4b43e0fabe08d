//! `livechat-core`: the livechat domain, sans-IO.
//!
//! Architecture Invariant: this crate does no IO, reads no clock and draws no random numbers.
//! State machines take a command and `now` and return the new state plus effects; the gateway
//! executes the effects. That keeps every rule unit-testable and identical on every backend.
//!
//! - [`participant`]: who takes part in a conversation.

pub mod participant;

pub use participant::{ParticipantKind, ParticipantKindError};
