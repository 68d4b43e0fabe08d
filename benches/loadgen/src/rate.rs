//! A token bucket for a fixed offered rate (never "as fast as possible").
//!
//! Tokens accrue at `rate` per second from `start`; a sender sleeps until [`TokenBucket::next_due`]
//! and then sends [`TokenBucket::take`] messages. When the sender falls behind by more than
//! `burst` tokens the excess is dropped and counted in [`TokenBucket::missed`], so a slow
//! loadgen shows up as a shortfall instead of a hidden catch-up burst.

use std::time::{Duration, Instant};

/// Fixed-rate token bucket.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    start: Instant,
    issued: u64,
    burst: u64,
    missed: u64,
}

impl TokenBucket {
    /// `rate` tokens per second starting at `start`; at most `burst` tokens are handed out at once.
    pub fn new(rate: f64, start: Instant, burst: u64) -> Self {
        Self {
            rate,
            start,
            issued: 0,
            burst: burst.max(1),
            missed: 0,
        }
    }

    /// Burst size for `rate`: 10 ms worth of tokens, at least 1.
    pub fn default_burst(rate: f64) -> u64 {
        (rate * 0.010).ceil().max(1.0) as u64
    }

    /// Tokens due by `now`: the first one at `start`, then one every `1/rate` seconds.
    fn due_by(&self, now: Instant) -> u64 {
        (now.saturating_duration_since(self.start).as_secs_f64() * self.rate) as u64 + 1
    }

    /// Tokens available at `now` (and consumed).
    pub fn take(&mut self, now: Instant) -> u64 {
        if self.rate <= 0.0 {
            return 0;
        }
        let due = self.due_by(now);
        let mut n = due.saturating_sub(self.issued);
        self.issued = self.issued.max(due);
        if n > self.burst {
            self.missed += n - self.burst;
            n = self.burst;
        }
        n
    }

    /// When the next token is due (far future for a zero rate).
    pub fn next_due(&self) -> Instant {
        if self.rate <= 0.0 {
            return self.start + Duration::from_secs(86_400);
        }
        self.start + Duration::from_secs_f64(self.issued as f64 / self.rate)
    }

    /// Tokens dropped because the sender was more than `burst` behind.
    pub fn missed(&self) -> u64 {
        self.missed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paces_at_the_rate_and_counts_misses() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(1000.0, t0, 5);
        assert_eq!(b.next_due(), t0);
        assert_eq!(b.take(t0), 1);
        assert_eq!(b.take(t0 + Duration::from_millis(3)), 3);
        assert_eq!(b.next_due(), t0 + Duration::from_millis(4));
        assert_eq!(b.take(t0 + Duration::from_millis(20)), 5);
        assert_eq!(b.missed(), 12);
        assert_eq!(b.take(t0 + Duration::from_millis(21)), 1);
        // 10/s over [0, 3 s) is exactly 30 tokens.
        let mut b = TokenBucket::new(10.0, t0, 5);
        let n: u64 = (0..300)
            .map(|ms| b.take(t0 + Duration::from_millis(ms * 10)))
            .sum();
        assert_eq!(n, 30);
    }
}
