//! The traits a backend implements. The gateway implements [`ConversationStore`] twice: the
//! embedded single-node backend (executor-owned memory) and Redis (Lua scripts, keyed with
//! Redis Cluster hash tags per conversation).
//!
//! Futures are not `Send`: a store runs on one executor (the embedded one only on the
//! conversation's owner executor).

use std::future::Future;

use crate::access::Principal;
use crate::commit::{Commit, Committed, Refusal};
use crate::conversation::{ConversationMetadata, ConversationStatus};
use crate::event::ChatEvent;
use crate::lifecycle::ExpireReason;
use crate::message::ChatMessage;
use crate::queue::QueueEntry;
use crate::time::Timestamp;

/// A page of messages, oldest first.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MessagePage {
    /// The messages.
    pub messages: Vec<ChatMessage>,
    /// False when messages the caller asked for are no longer kept (the buffer dropped them).
    pub complete: bool,
    /// The conversation's highest `seq` when the page was read (0 before its first message):
    /// where a reader that wants only later messages starts.
    pub last_seq: u64,
}

/// What housekeeping looks for: every conversation past one of these instants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cutoffs {
    /// Now (presence older than its TTL is dropped during the scan).
    pub now: Timestamp,
    /// QUEUED at or before this → queue timeout.
    pub queued_before: Timestamp,
    /// Not CLOSED and created at or before this → closed for max duration.
    pub created_before: Timestamp,
    /// Not CLOSED and no activity since this → closed for inactivity.
    pub idle_before: Timestamp,
    /// CLOSED at or before this → forgotten.
    pub closed_before: Timestamp,
    /// At most this many results per scan (the rest come next interval).
    pub limit: usize,
}

/// One thing housekeeping must do. Each is re-checked when it is carried out (the scan is a
/// snapshot; a message may arrive in between).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Due {
    /// Waited in the queue too long.
    QueueTimeout(String),
    /// Idle or too old.
    Expire(String, ExpireReason),
    /// Closed long enough ago to be forgotten.
    Forget(String),
}

/// Ephemeral conversation state: metadata, messages, the queue, agent slots and index,
/// presence. The engine reads and writes only through this; it never knows which backend
/// runs (the embedded one: executor-owned memory; Redis: scripts over one shared server).
///
/// Every lifecycle step is one [`ConversationStore::commit`], applied atomically or refused
/// whole ([`Refusal`]); an `Err` is a backend failure (unreachable, full mailbox, corrupt
/// value) after which nothing of the commit may be half-applied either.
pub trait ConversationStore {
    /// The backend's error.
    type Error: std::error::Error;

    /// Loads a conversation's metadata.
    fn load(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<ConversationMetadata>, Self::Error>>;

    /// Applies one step atomically (see [`Commit`]).
    fn commit(
        &self,
        commit: Commit,
    ) -> impl Future<Output = Result<Result<Committed, Refusal>, Self::Error>>;

    /// The metadata and messages with seq > `after` (first `limit`), or the latest `limit`
    /// when `after` is None; `None` when the conversation does not exist.
    fn messages(
        &self,
        id: &str,
        after: Option<u64>,
        limit: usize,
    ) -> impl Future<Output = Result<Option<(ConversationMetadata, MessagePage)>, Self::Error>>;

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

    /// The ids of the oldest `limit` queued conversations, oldest first (an id's index is its
    /// position): what live queue positions are computed from. The default reads whole entries
    /// through [`ConversationStore::queue_page`]; a backend that can list ids alone should.
    fn queue_ids(&self, limit: usize) -> impl Future<Output = Result<Vec<String>, Self::Error>> {
        async move {
            let page = self.queue_page(0, limit).await?;
            Ok(page.into_iter().map(|e| e.conversation_id).collect())
        }
    }

    /// The conversations an agent has accepted (and that are not forgotten) with one of
    /// `statuses` (all when empty), newest activity first.
    fn agent_conversations(
        &self,
        agent_id: &str,
        statuses: &[ConversationStatus],
    ) -> impl Future<Output = Result<Vec<ConversationMetadata>, Self::Error>>;

    /// Records that a participant was seen at `now` (expires after the presence TTL).
    fn touch_presence(
        &self,
        participant_id: &str,
        now: Timestamp,
    ) -> impl Future<Output = Result<(), Self::Error>>;

    /// When a participant was last seen, if within the presence TTL.
    fn last_seen(
        &self,
        participant_id: &str,
    ) -> impl Future<Output = Result<Option<Timestamp>, Self::Error>>;

    /// Housekeeping's scan: what is past one of `cutoffs`.
    fn due(&self, cutoffs: Cutoffs) -> impl Future<Output = Result<Vec<Due>, Self::Error>>;

    /// Whether this node runs housekeeping for the next `lease_ms` (one node per interval:
    /// a lease elected among nodes sharing the store; always true on a single node).
    fn try_lead(&self, lease_ms: u64) -> impl Future<Output = Result<bool, Self::Error>>;

    /// Forgets a conversation CLOSED at or before `closed_before`: metadata, messages, its
    /// entry in the agent index. False (nothing done) when it is not closed, or closed later.
    fn forget(
        &self,
        id: &str,
        closed_before: Timestamp,
    ) -> impl Future<Output = Result<bool, Self::Error>>;
}

/// What a durable write found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// The row now holds the given version.
    Applied,
    /// The row holds a newer version than the write (`stored`): nothing was written. The
    /// ephemeral store is behind the durable one (e.g. Redis lost writes); never applied
    /// silently.
    Stale {
        /// The version the row holds.
        stored: u64,
    },
}

/// Durable conversation metadata (PostgreSQL): the record reports and audits read, kept in
/// step with the ephemeral store one transition at a time.
///
/// Versions are the conversation's `version`: a write carries the version after its step and
/// is applied only over an older (or equal: a re-write of the same step) stored version, so a
/// late or replayed write can never roll a row back.
pub trait MetadataRepository {
    /// The backend's error (unreachable, timed out: the step must not happen).
    type Error: std::error::Error;

    /// Writes the conversation as of `conversation.version` (insert or update).
    fn write(
        &self,
        conversation: &ConversationMetadata,
    ) -> impl Future<Output = Result<Written, Self::Error>>;

    /// Undoes a write whose step the ephemeral store then refused: the row goes back to
    /// `before` (deleted when `None`, i.e. the step was the start), only if it still holds the
    /// version that write gave it (`written_version`).
    fn revert(
        &self,
        id: &str,
        before: Option<&ConversationMetadata>,
        written_version: u64,
    ) -> impl Future<Output = Result<(), Self::Error>>;

    /// Activity (a message) at `at`: `updated_at` moves forward, coalesced (at most one write per
    /// conversation per interval). Best effort, never waits.
    fn touch(&self, id: &str, at: Timestamp);

    /// One conversation, as last written.
    fn get(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<ConversationMetadata>, Self::Error>>;

    /// An agent's conversations with one of `statuses` (all when empty), newest activity first.
    fn by_agent(
        &self,
        agent_id: &str,
        statuses: &[ConversationStatus],
        limit: usize,
    ) -> impl Future<Output = Result<Vec<ConversationMetadata>, Self::Error>>;
}

/// Analytics (Kafka, a file, the log). Best effort: an implementation never blocks or fails a
/// user action; what it cannot take it counts as dropped.
pub trait EventSink {
    /// Hands an event over.
    fn publish(&self, event: ChatEvent);
}

/// Resolves who is calling from what a request or handshake presents. The gateway ships two
/// (development mode trusting presented ids, and verified JWTs); a host may plug its own.
/// Called on executor threads for every REST request and Socket.IO connection: it must not
/// block (no network IO — verify against keys held in memory).
pub trait AuthProvider {
    /// Refusal reason.
    type Error: std::error::Error;
    /// The caller these credentials prove, or why they prove nothing (the gateway answers
    /// 401 `unauthorized`).
    fn authenticate(&self, credentials: &Credentials) -> Result<Principal, Self::Error>;
    /// A token proving `principal` on later requests, when the provider made the identity up
    /// itself (an anonymous customer given a server-issued id); `None` otherwise.
    fn issue(&self, principal: &Principal) -> Option<String> {
        let _ = principal;
        None
    }
}

/// What a client presents (headers, query, CONNECT auth payload — gathered by the gateway).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// The role the client claims or the route implies (`customer`, `agent`, `admin`). A
    /// verifying provider takes the role from the token instead.
    pub role: Option<String>,
    /// A bearer token (`Authorization: Bearer`, `auth.token`, the `token` query parameter).
    /// In development mode, the participant id.
    pub token: Option<String>,
    /// The participant id the client names (`X-Participant-Id`, `X-Agent-Id`, a body's
    /// `agentId`); believed only in development mode.
    pub participant_id: Option<String>,
    /// Display name.
    pub display_name: Option<String>,
    /// Device fingerprint (anonymous customers).
    pub fingerprint: Option<String>,
    /// The request starts a conversation: the only place a provider that admits anonymous
    /// customers admits one (anywhere else, no proof is no identity).
    pub starting: bool,
}

/// A host's in-process hook: receives every analytics event the node publishes, on the
/// executor that committed the step, right after the commit. It must not block (hand the
/// event to a channel for anything slow).
pub trait EventListener {
    /// An event (the same ones the sink gets).
    fn on_event(&self, event: &ChatEvent);
}
