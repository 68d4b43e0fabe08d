//! Requests per second per client address: one token bucket per address, per executor.
//!
//! Per executor, not node-wide: a bucket is touched on every request, and a shared map would
//! put a lock (or cache-line traffic) on the hot path of every core. The price is that the
//! limit is approximate: the kernel spreads one client's connections over executors
//! (SO_REUSEPORT), so a client with connections on k executors gets up to k times the rate
//! and burst. A client with one keep-alive connection (a browser tab, a Socket.IO client doing
//! one long-poll at a time) sees exactly the configured limit.
//!
//! Memory stays bounded by the addresses seen recently: a bucket that has refilled completely
//! carries no information and is dropped by a sweep that runs when the map has doubled since
//! the last one (amortised O(1) per request).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Smallest map size that triggers a sweep.
const MIN_SWEEP: usize = 1024;

/// One address's bucket.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The buckets of one executor.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: HashMap<IpAddr, Bucket>,
    sweep_at: usize,
}

impl RateLimiter {
    /// `rate` requests per second with bursts of `burst`; a rate of 0 disables the limit.
    pub fn new(rate: f64, burst: u32) -> Self {
        Self {
            rate: rate.max(0.0),
            // A burst below one request would refuse everything.
            burst: f64::from(burst.max(1)),
            buckets: HashMap::new(),
            sweep_at: MIN_SWEEP,
        }
    }

    /// Whether the limit is on.
    pub fn enabled(&self) -> bool {
        self.rate > 0.0
    }

    /// Takes one token for `key` at `now`. `Err(wait)`: refused, a token is back after `wait`.
    pub fn take(&mut self, key: IpAddr, now: Instant) -> Result<(), Duration> {
        if !self.enabled() {
            return Ok(());
        }
        if self.buckets.len() >= self.sweep_at {
            self.sweep(now);
        }
        let (rate, burst) = (self.rate, self.burst);
        let b = self.buckets.entry(key).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * rate).min(burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / rate))
        }
    }

    /// Drops every bucket that has refilled completely by `now`.
    fn sweep(&mut self, now: Instant) {
        let (rate, burst) = (self.rate, self.burst);
        self.buckets.retain(|_, b| {
            b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate < burst
        });
        self.sweep_at = (self.buckets.len() * 2).max(MIN_SWEEP);
    }

    /// Buckets currently kept (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.buckets.len()
    }
}

/// The `Retry-After` value for a wait: whole seconds, rounded up, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(i: u32) -> IpAddr {
        IpAddr::V4(i.into())
    }

    #[test]
    fn burst_then_rate() {
        let mut r = RateLimiter::new(10.0, 3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(r.take(ip(1), t0).is_ok());
        }
        let wait = r.take(ip(1), t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(100));
        // Another address has its own bucket.
        assert!(r.take(ip(2), t0).is_ok());
        // One token back after 100 ms, not two.
        let t1 = t0 + Duration::from_millis(100);
        assert!(r.take(ip(1), t1).is_ok());
        assert!(r.take(ip(1), t1).is_err());
        // Never more than the burst, however long the pause.
        let t2 = t1 + Duration::from_secs(3600);
        for _ in 0..3 {
            assert!(r.take(ip(1), t2).is_ok());
        }
        assert!(r.take(ip(1), t2).is_err());
    }

    #[test]
    fn zero_rate_is_off() {
        let mut r = RateLimiter::new(0.0, 1);
        let t = Instant::now();
        for _ in 0..1000 {
            assert!(r.take(ip(1), t).is_ok());
        }
    }

    #[test]
    fn full_buckets_are_forgotten() {
        let mut r = RateLimiter::new(100.0, 2);
        let t0 = Instant::now();
        for i in 0..(MIN_SWEEP as u32) {
            let _ = r.take(ip(i), t0);
        }
        assert_eq!(r.len(), MIN_SWEEP);
        // A second later all of them are full again; the next new address sweeps them.
        let t1 = t0 + Duration::from_secs(1);
        let _ = r.take(ip(1_000_000), t1);
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::from_millis(10)), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(2)), 2);
        assert_eq!(retry_after_secs(Duration::from_millis(2001)), 3);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }
}
