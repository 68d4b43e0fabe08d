//! What the chat keeps per socket: who is on it, the conversation it joined, when it last
//! refreshed presence, how many of its `chat:message`s are still being processed, and what it
//! was told about its conversation's place in the queue.
//!
//! Lives on: the socket's executor (inside the socket's typed data).

use std::cell::Cell;

use livechat_core::{ChatParticipant, Timestamp};

use super::config::RateConfig;
use super::queue_position::PositionWatch;
use super::rate::TokenBucket;

/// How many `chat:message`s of one socket may be in flight at once; more are refused with an
/// ack error (`too_many_requests`) and counted. A well-behaved client waits for acks long
/// before this; the bound keeps a flooding client from piling up tasks and memory.
pub const MAX_IN_FLIGHT: u32 = 64;

/// How often a busy socket refreshes presence (the TTL is minutes); each refresh is a trip to
/// the store, so messages refresh it at most this often (milliseconds).
pub const PRESENCE_REFRESH_MS: i64 = 5_000;

/// Per-socket chat state.
#[derive(Debug, Clone)]
pub struct SocketCtx {
    /// Who is on this socket.
    pub participant: ChatParticipant,
    /// The conversation it joined, if any.
    pub conversation_id: Option<String>,
    /// When this socket last refreshed the participant's presence.
    pub presence_at: Cell<Timestamp>,
    /// `chat:message`s received and not answered yet.
    pub in_flight: Cell<u32>,
    /// The socket's rate limit over the events it sends.
    pub bucket: TokenBucket,
    /// When the token the socket connected with expires (epoch ms); past it, the socket is
    /// told and disconnected on its next message.
    pub expires_at: Option<Timestamp>,
    /// Whether it was last told its conversation is queued, and the position it was sent.
    pub queue: PositionWatch,
}

impl SocketCtx {
    /// A socket's state at connect time.
    pub fn new(
        participant: ChatParticipant,
        conversation_id: Option<String>,
        now: Timestamp,
        rate: &RateConfig,
    ) -> Self {
        Self {
            participant,
            conversation_id,
            presence_at: Cell::new(now),
            in_flight: Cell::new(0),
            bucket: TokenBucket::new(rate, now.millis()),
            expires_at: None,
            queue: PositionWatch::default(),
        }
    }

    /// The same, keeping what an earlier context of the socket was told about the queue (the
    /// join runs before the handshake's final context is set, and may be told first).
    pub fn watching(mut self, queue: PositionWatch) -> Self {
        self.queue = queue;
        self
    }

    /// The same, proven by a token that expires at `at`.
    pub fn expiring(mut self, at: Option<Timestamp>) -> Self {
        self.expires_at = at;
        self
    }

    /// Whether the socket's proof has expired at `now`.
    pub fn expired(&self, now: Timestamp) -> bool {
        self.expires_at.is_some_and(|at| now > at)
    }

    /// Whether presence should be refreshed now (and records that it is).
    pub fn presence_due(&self, now: Timestamp) -> bool {
        let due = now.since(self.presence_at.get()) >= PRESENCE_REFRESH_MS;
        if due {
            self.presence_at.set(now);
        }
        due
    }

    /// Takes an in-flight slot; false when the socket already has [`MAX_IN_FLIGHT`].
    pub fn begin(&self) -> bool {
        let n = self.in_flight.get();
        if n >= MAX_IN_FLIGHT {
            return false;
        }
        self.in_flight.set(n + 1);
        true
    }

    /// Returns an in-flight slot.
    pub fn end(&self) {
        self.in_flight.set(self.in_flight.get().saturating_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use livechat_core::ParticipantKind;

    #[test]
    fn at_most_max_in_flight_and_slots_come_back() {
        let ctx = SocketCtx::new(
            ChatParticipant::new("c", ParticipantKind::Customer, "C"),
            None,
            Timestamp(0),
            &RateConfig::default(),
        );
        for _ in 0..MAX_IN_FLIGHT {
            assert!(ctx.begin());
        }
        assert!(!ctx.begin(), "one more than the bound is refused");
        ctx.end();
        assert!(ctx.begin(), "a returned slot can be taken again");
        for _ in 0..=MAX_IN_FLIGHT {
            ctx.end();
        }
        assert_eq!(ctx.in_flight.get(), 0, "never below zero");
    }

    #[test]
    fn presence_is_refreshed_at_most_every_few_seconds() {
        let ctx = SocketCtx::new(
            ChatParticipant::new("c", ParticipantKind::Customer, "C"),
            None,
            Timestamp(0),
            &RateConfig::default(),
        );
        assert!(!ctx.presence_due(Timestamp(PRESENCE_REFRESH_MS - 1)));
        assert!(ctx.presence_due(Timestamp(PRESENCE_REFRESH_MS)));
        assert!(!ctx.presence_due(Timestamp(PRESENCE_REFRESH_MS + 1)));
    }
}
