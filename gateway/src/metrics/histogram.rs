//! Latency histograms with one fixed set of buckets: [`LocalHistogram`] (plain `Cell`s, for an
//! executor's hot path), [`SharedHistogram`] (relaxed atomics, for the IO pool's threads) and
//! [`Histogram`], the plain copy both produce, which sums across executors at scrape.
//!
//! Fixed buckets (not a configurable set) so every executor's copy adds up bucket by bucket and
//! dashboards can rely on the `le` values.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds of the buckets, in microseconds (0.1 ms … 10 s); one more bucket holds the rest.
const BOUNDS_US: [u64; 15] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 10_000_000,
];

/// Number of buckets, `+Inf` included.
pub const BUCKETS: usize = BOUNDS_US.len() + 1;

/// The bucket an observation of `us` microseconds falls in.
fn bucket_of(us: u64) -> usize {
    BOUNDS_US.partition_point(|&bound| bound < us)
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// A histogram read at one instant: per-bucket (not cumulative) counts and the sum.
///
/// Lives on: anywhere (plain data; it travels between executors in a scrape).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Histogram {
    /// Observations per bucket; the last is above every bound.
    pub counts: [u64; BUCKETS],
    /// Sum of the observations, in microseconds.
    pub sum_us: u64,
}

impl Histogram {
    /// Adds `other`'s observations (summing executors).
    pub fn add(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts) {
            *mine += theirs;
        }
        self.sum_us += other.sum_us;
    }

    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Sum of the observations, in seconds.
    pub fn sum_seconds(&self) -> f64 {
        self.sum_us as f64 / 1e6
    }

    /// `(upper bound in seconds, count in that bucket)`, the last bound `+Inf`: what the
    /// encoder takes (it makes them cumulative).
    pub fn buckets(&self) -> Vec<(f64, u64)> {
        BOUNDS_US
            .iter()
            .map(|&b| b as f64 / 1e6)
            .chain([f64::INFINITY])
            .zip(self.counts)
            .collect()
    }
}

/// A histogram one executor observes into: a `Cell` add per observation, no atomics.
///
/// Lives on: the executor that owns the value holding it (it is `!Sync`).
#[derive(Debug, Default)]
pub struct LocalHistogram {
    counts: [Cell<u64>; BUCKETS],
    sum_us: Cell<u64>,
}

impl LocalHistogram {
    /// Records one observation.
    pub fn observe(&self, d: Duration) {
        let us = micros(d);
        let c = &self.counts[bucket_of(us)];
        c.set(c.get() + 1);
        self.sum_us.set(self.sum_us.get().saturating_add(us));
    }

    /// The current values.
    pub fn snapshot(&self) -> Histogram {
        Histogram {
            counts: std::array::from_fn(|i| self.counts[i].get()),
            sum_us: self.sum_us.get(),
        }
    }
}

/// A histogram several threads observe into (the IO pool: PostgreSQL statements, Kafka
/// delivery reports — a few per batch, never per executor operation).
///
/// Lives on: anywhere (`Sync`; shared by `Arc`).
#[derive(Debug, Default)]
pub struct SharedHistogram {
    counts: [AtomicU64; BUCKETS],
    sum_us: AtomicU64,
}

impl SharedHistogram {
    /// Records one observation.
    pub fn observe(&self, d: Duration) {
        let us = micros(d);
        self.counts[bucket_of(us)].fetch_add(1, Relaxed);
        self.sum_us.fetch_add(us, Relaxed);
    }

    /// The current values (each bucket read on its own: a scrape racing an observation may see
    /// the count without the sum, which the next scrape corrects).
    pub fn snapshot(&self) -> Histogram {
        Histogram {
            counts: std::array::from_fn(|i| self.counts[i].load(Relaxed)),
            sum_us: self.sum_us.load(Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_that_holds_them() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(100), 0);
        assert_eq!(bucket_of(101), 1);
        assert_eq!(bucket_of(10_000_000), BUCKETS - 2);
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn local_and_shared_histograms_agree_and_sum() {
        let (local, shared) = (LocalHistogram::default(), SharedHistogram::default());
        for ms in [0, 1, 3, 40, 20_000] {
            local.observe(Duration::from_millis(ms));
            shared.observe(Duration::from_millis(ms));
        }
        let (a, b) = (local.snapshot(), shared.snapshot());
        assert_eq!(a, b);
        assert_eq!(a.count(), 5);
        assert_eq!(a.sum_us, 20_044_000);
        let mut total = a;
        total.add(&b);
        assert_eq!(total.count(), 10);
        assert_eq!(total.counts[BUCKETS - 1], 2, "20 s is above every bound");
        let buckets = total.buckets();
        assert_eq!(buckets.len(), BUCKETS);
        assert_eq!(buckets[3], (0.001, 2), "1 ms, twice");
        assert!(buckets[BUCKETS - 1].0.is_infinite());
    }
}
