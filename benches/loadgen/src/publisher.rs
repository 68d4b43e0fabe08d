//! A paced sender on one client: sends at its share of the offered rate (token bucket) while
//! the current [`Phase`] lasts, and hands every received packet to a callback meanwhile.
//!
//! The controller changes the phase (rate, start, end) for all publishers through a
//! `tokio::sync::watch` channel; each message is stamped when it is actually written.

use std::cell::Cell;
use std::time::{Duration, Instant};

use anyhow::Result;
use tokio::sync::watch;

use crate::client::{SioClient, SioPacket};
use crate::clock::now_ns;
use crate::rate::TokenBucket;

/// What publishers should do now.
#[derive(Debug, Clone, Copy)]
pub struct Phase {
    /// Messages per second for each publisher (0 = pause).
    pub rate_each: f64,
    /// When the phase started (the token bucket's origin).
    pub start: Instant,
    /// When publishing stops.
    pub until: Instant,
}

impl Phase {
    /// No publishing.
    pub fn idle() -> Self {
        let now = Instant::now();
        Self {
            rate_each: 0.0,
            start: now,
            until: now,
        }
    }
}

/// Counters shared by all publishers of a run.
#[derive(Debug, Default)]
pub struct SendCounters {
    /// Messages written in the current phase.
    pub sent: Cell<u64>,
    /// Tokens dropped because a publisher fell behind (the loadgen was too slow).
    pub missed: Cell<u64>,
    /// Publishers whose connection closed.
    pub closed: Cell<u64>,
}

impl SendCounters {
    /// Resets `sent` and `missed` for a new phase.
    pub fn reset(&self) {
        self.sent.set(0);
        self.missed.set(0);
    }
}

/// Runs until the connection closes or the phase channel is dropped. `make(ts)` builds one
/// packet stamped `ts`; `on_packet` sees everything the server sends.
///
/// `offset` in `[0, 1)` shifts this publisher's ticks by that fraction of its interval, so that
/// P publishers (offsets `i / P`) together send evenly spaced messages instead of P-message
/// bursts.
pub async fn run(
    mut client: SioClient,
    mut phase_rx: watch::Receiver<Phase>,
    offset: f64,
    counters: &SendCounters,
    mut make: impl FnMut(u64) -> String,
    mut on_packet: impl FnMut(&SioPacket),
) -> Result<()> {
    let mut phase = *phase_rx.borrow_and_update();
    let mut bucket = TokenBucket::new(0.0, phase.start, 1);
    let mut missed_seen = 0;
    loop {
        let now = Instant::now();
        let active = phase.rate_each > 0.0 && now < phase.until;
        let wake = if active {
            bucket.next_due().min(phase.until)
        } else {
            now + Duration::from_secs(3600)
        };
        tokio::select! {
            r = client.recv() => match r? {
                Some(p) => on_packet(&p),
                None => {
                    counters.closed.set(counters.closed.get() + 1);
                    return Ok(());
                }
            },
            ch = phase_rx.changed() => {
                if ch.is_err() {
                    return Ok(());
                }
                phase = *phase_rx.borrow_and_update();
                let burst = TokenBucket::default_burst(phase.rate_each);
                let shift = if phase.rate_each > 0.0 {
                    Duration::from_secs_f64(offset / phase.rate_each)
                } else {
                    Duration::ZERO
                };
                bucket = TokenBucket::new(phase.rate_each, phase.start + shift, burst);
                missed_seen = 0;
            }
            _ = tokio::time::sleep_until(wake.into()), if active => {
                let now = Instant::now();
                if now >= phase.until {
                    continue;
                }
                let n = bucket.take(now);
                if n > 0 {
                    let ts = now_ns();
                    client.send_batch((0..n).map(|_| make(ts))).await?;
                    counters.sent.set(counters.sent.get() + n);
                }
                let m = bucket.missed();
                counters.missed.set(counters.missed.get() + (m - missed_seen));
                missed_seen = m;
            }
        }
    }
}
