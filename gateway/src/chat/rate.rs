//! The per-socket token bucket over client events (`chat.security.rate`): `burst` tokens, refilled
//! at `events_per_second`; each event takes one. A refused event is answered (ack error
//! `rate_limited`) and counted; a socket refused `disconnect_after` times in a row is far over
//! the limit and is disconnected.
//!
//! Lives on: the socket's executor, inside its `SocketCtx` (12 bytes: it is per connection).
//! Time is the caller's (milliseconds), so the arithmetic is tested without a clock.

use std::cell::Cell;

use super::config::RateConfig;

/// What the bucket says about one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Go ahead.
    Allowed,
    /// Refused; the socket may go on.
    Refused,
    /// Refused, and the socket has been refused so often in a row that it is disconnected.
    Disconnect,
}

/// One socket's bucket.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    /// Tokens left, in thousandths (integer arithmetic: no float drift, 4 bytes).
    milli_tokens: Cell<u32>,
    /// Refusals since the last allowed event.
    refused: Cell<u32>,
    /// When the bucket was last refilled (epoch ms).
    at: Cell<i64>,
}

impl TokenBucket {
    /// A full bucket at `now`.
    pub fn new(cfg: &RateConfig, now: i64) -> Self {
        Self {
            milli_tokens: Cell::new(cfg.burst.saturating_mul(1000)),
            refused: Cell::new(0),
            at: Cell::new(now),
        }
    }

    /// Takes a token for one event at `now`.
    pub fn take(&self, cfg: &RateConfig, now: i64) -> Verdict {
        let elapsed = now.saturating_sub(self.at.get()).max(0) as f64;
        // Tokens per millisecond × 1000 (milli-tokens) = events_per_second per ms.
        let refill = (elapsed * cfg.events_per_second).min(u32::MAX as f64) as u32;
        let cap = cfg.burst.saturating_mul(1000);
        let have = self.milli_tokens.get().saturating_add(refill).min(cap);
        if refill > 0 {
            self.at.set(now);
        }
        if have >= 1000 {
            self.milli_tokens.set(have - 1000);
            self.refused.set(0);
            return Verdict::Allowed;
        }
        self.milli_tokens.set(have);
        let refused = self.refused.get().saturating_add(1);
        self.refused.set(refused);
        if refused >= cfg.disconnect_after.max(1) {
            Verdict::Disconnect
        } else {
            Verdict::Refused
        }
    }

    /// Milliseconds until the next token (for a `Retry-After`-like hint).
    pub fn wait_ms(&self, cfg: &RateConfig) -> u64 {
        let missing = 1000u32.saturating_sub(self.milli_tokens.get()) as f64;
        if cfg.events_per_second <= 0.0 {
            return u64::MAX;
        }
        (missing / cfg.events_per_second).ceil() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> RateConfig {
        RateConfig {
            events_per_second: 20.0,
            burst: 40,
            disconnect_after: 5,
        }
    }

    #[test]
    fn a_burst_then_the_sustained_rate() {
        let c = cfg();
        let b = TokenBucket::new(&c, 0);
        for _ in 0..40 {
            assert_eq!(b.take(&c, 0), Verdict::Allowed);
        }
        assert_eq!(b.take(&c, 0), Verdict::Refused);
        assert_eq!(b.wait_ms(&c), 50);
        // 20/s: one token every 50 ms.
        assert_eq!(b.take(&c, 49), Verdict::Refused);
        assert_eq!(b.take(&c, 50), Verdict::Allowed);
        assert_eq!(b.take(&c, 50), Verdict::Refused);
        // A second refills 20, never more than the burst.
        for _ in 0..20 {
            assert_eq!(b.take(&c, 1050), Verdict::Allowed);
        }
        assert_eq!(b.take(&c, 1050), Verdict::Refused);
        let quiet = TokenBucket::new(&c, 0);
        assert_eq!(quiet.take(&c, 3_600_000), Verdict::Allowed);
        for _ in 0..39 {
            assert_eq!(quiet.take(&c, 3_600_000), Verdict::Allowed);
        }
        assert_eq!(quiet.take(&c, 3_600_000), Verdict::Refused);
    }

    #[test]
    fn far_over_the_limit_disconnects_and_an_allowed_event_forgives() {
        let c = cfg();
        let b = TokenBucket::new(&c, 0);
        for _ in 0..40 {
            b.take(&c, 0);
        }
        for _ in 0..4 {
            assert_eq!(b.take(&c, 0), Verdict::Refused);
        }
        assert_eq!(b.take(&c, 50), Verdict::Allowed, "a token came back");
        for _ in 0..4 {
            assert_eq!(b.take(&c, 50), Verdict::Refused);
        }
        assert_eq!(b.take(&c, 50), Verdict::Disconnect);
        // A clock that goes backwards refills nothing and breaks nothing.
        assert_ne!(b.take(&c, 10), Verdict::Allowed);
    }
}
