//! The traits a backend implements. The embedded single-node backend (gateway) implements them
//! with executor-owned memory; the Redis backend will implement each operation as one atomic
//! round trip (a Lua script or a MULTI), keyed with Redis Cluster hash tags per conversation.
//!
//! Futures are not `Send`: implementations run on the executor that owns the conversation.

use std::future::Future;

use crate::conversation::ConversationMetadata;
use crate::event::ChatEvent;
use crate::message::{ChatMessage, MessageDraft};
use crate::participant::ChatParticipant;
use crate::queue::QueueEntry;
use crate::time::Timestamp;

/// The outcome of appending a message.
#[derive(Debug, Clone, PartialEq)]
pub enum Appended {
    /// Stored with the next `seq`.
    New(ChatMessage),
    /// The `clientMessageId` was seen before: the first message, unchanged.
    Duplicate(ChatMessage),
}

impl Appended {
    /// The stored message either way.
    pub fn message(&self) -> &ChatMessage {
        match self {
            Self::New(m) | Self::Duplicate(m) => m,
        }
    }
}

/// A page of messages, oldest first.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MessagePage {
    /// The messages.
    pub messages: Vec<ChatMessage>,
    /// False when messages the caller asked for are no longer kept (the buffer dropped them).
    pub complete: bool,
}

/// The outcome of an atomic claim of an agent slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Slot taken; the agent now holds this many conversations.
    Granted(usize),
    /// The agent already holds this many (the cap).
    AtCapacity(usize),
}

/// Ephemeral conversation state: metadata, queue, agent slots, message buffer, presence.
/// Each method is one atomic operation (one round trip on Redis).
pub trait ConversationStore {
    /// The backend's error.
    type Error: std::error::Error;

    /// Loads a conversation.
    fn load(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<ConversationMetadata>, Self::Error>>;

    /// Stores metadata if the stored version is `expected_version` (0: must not exist).
    /// Returns false on a version conflict.
    fn save(
        &self,
        meta: &ConversationMetadata,
        expected_version: u64,
    ) -> impl Future<Output = Result<bool, Self::Error>>;

    /// Adds a queue entry; returns its 0-based position.
    fn enqueue(&self, entry: &QueueEntry) -> impl Future<Output = Result<usize, Self::Error>>;

    /// Removes a conversation from the queue; false if it was not there.
    fn dequeue(&self, conversation_id: &str) -> impl Future<Output = Result<bool, Self::Error>>;

    /// Atomically: if the agent holds fewer than `max` conversations, count this one.
    fn claim_agent(
        &self,
        agent_id: &str,
        conversation_id: &str,
        max: usize,
    ) -> impl Future<Output = Result<Claim, Self::Error>>;

    /// Frees the agent's slot for this conversation (idempotent).
    fn release_agent(
        &self,
        agent_id: &str,
        conversation_id: &str,
    ) -> impl Future<Output = Result<(), Self::Error>>;

    /// Appends a message with the next seq (deduplicating `clientMessageId`).
    fn append(
        &self,
        conversation_id: &str,
        draft: MessageDraft,
        message_id: String,
        now: Timestamp,
    ) -> impl Future<Output = Result<Appended, Self::Error>>;

    /// Messages with seq > `after` (first `limit`), or the latest `limit` when `after` is None.
    fn messages(
        &self,
        conversation_id: &str,
        after: Option<u64>,
        limit: usize,
    ) -> impl Future<Output = Result<MessagePage, Self::Error>>;

    /// A page of the queue, oldest first.
    fn queue_page(
        &self,
        page: usize,
        size: usize,
    ) -> impl Future<Output = Result<Vec<QueueEntry>, Self::Error>>;

    /// The 0-based queue position of a conversation.
    fn queue_position(
        &self,
        conversation_id: &str,
    ) -> impl Future<Output = Result<Option<usize>, Self::Error>>;

    /// Records that a participant was seen at `now` (expires after the presence TTL).
    fn touch_presence(
        &self,
        participant_id: &str,
        now: Timestamp,
    ) -> impl Future<Output = Result<(), Self::Error>>;
}

/// Durable conversation metadata (PostgreSQL).
pub trait MetadataRepository {
    /// The backend's error.
    type Error: std::error::Error;
    /// Inserts or updates.
    fn upsert(&self, meta: &ConversationMetadata) -> impl Future<Output = Result<(), Self::Error>>;
    /// An agent's conversations with one of `statuses`, newest activity first.
    fn by_agent(
        &self,
        agent_id: &str,
        statuses: &[crate::ConversationStatus],
        limit: usize,
    ) -> impl Future<Output = Result<Vec<ConversationMetadata>, Self::Error>>;
}

/// Analytics (Kafka). Best effort: implementations never block a user action.
pub trait EventSink {
    /// Hands an event over; failures are counted and logged by the implementation.
    fn publish(&self, event: ChatEvent);
}

/// Resolves who is calling from a handshake or request.
pub trait AuthProvider {
    /// Refusal reason.
    type Error: std::error::Error;
    /// The participant for these credentials (`role`, `token`, display name, fingerprint).
    fn authenticate(&self, credentials: &Credentials) -> Result<ChatParticipant, Self::Error>;
}

/// What a client presents (query, auth payload, headers — already merged by the gateway).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// `customer` or `agent`.
    pub role: Option<String>,
    /// Participant id (development mode) or a token.
    pub token: Option<String>,
    /// Display name.
    pub display_name: Option<String>,
    /// Device fingerprint (anonymous customers).
    pub fingerprint: Option<String>,
}

/// Host hooks, called after each effect is applied.
pub trait EventListener {
    /// A conversation changed.
    fn on_conversation(&self, _meta: &ConversationMetadata) {}
    /// A message was stored.
    fn on_message(&self, _message: &ChatMessage) {}
}
