//! The JSON spelling of the domain: how every `livechat-core` type that crosses the wire
//! (REST bodies, Socket.IO events and acks, values stored in and published over Redis) is
//! written and read.
//!
//! `livechat-core` has no serde derives; this module is the one place that knows the contract's
//! field names, their order, what is left out and how enums and instants are spelled. Each
//! core type gets a serde *remote* definition here (`#[serde(remote = "...")]`), so the derive
//! checks at compile time that the definition names every field of the core type. Call sites
//! never see those definitions: they write `Json(&value)` and read with [`decode`].
//!
//! - [`json`]: [`Json`], the value to hand to `emit`, `ack.send` or `serde_json`; [`decode`] and
//!   [`Decoded`] to read one back.
//! - [`wire_type`]: [`WireType`], what every core type with a JSON spelling implements (also
//!   `Option` and `Vec` of them).
//! - [`field`]: the `#[serde(with = "field")]` adapter for a field of a core type.
//! - [`participant`]: `ChatParticipant`, `ParticipantKind`.
//! - [`conversation`]: `ConversationMetadata`, `ConversationStatus`.
//! - [`message`]: `ChatMessage` (`seq` left out while 0, `clientMessageId` never written),
//!   `MessageType`.
//! - [`queue`]: `QueueEntry`, `QueuePosition`.
//! - [`queue_position_event`]: [`QueuePositionEvent`], the `queue:position` payload.
//! - [`event`]: `ChatEvent`, `ChatEventType`.
//! - [`notice`]: `Notice`, the `type` of a `system:event`.
//! - [`timestamp`]: `Timestamp` as ISO-8601 UTC with milliseconds.
//! - [`system_event`]: the `system:event` payloads, [`Joined`] and [`Announced`].
//!
//! Field order is declaration order: keep every definition in the order the contract shows.

pub mod conversation;
pub mod event;
pub mod field;
pub mod json;
pub mod message;
pub mod notice;
pub mod participant;
pub mod queue;
pub mod queue_position_event;
pub mod system_event;
pub mod timestamp;
pub mod wire_type;

pub use json::{decode, Decoded, Json};
pub use queue_position_event::QueuePositionEvent;
pub use system_event::{Announced, Joined};
pub use wire_type::WireType;
