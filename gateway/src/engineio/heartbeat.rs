//! The server-driven heartbeat: ping every `pingInterval`, close after `pingTimeout` without pong.
//!
//! One small task per session, holding only a `Weak` so it never keeps a session alive; it is
//! cancelled when the session closes.

use std::rc::Weak;
use std::time::{Duration, Instant};

use futures_lite::future;
use glommio::timer::sleep;

use super::packet::Frame;
use super::Session;
use crate::error::CloseReason;

/// Runs the heartbeat of `session` until it closes.
pub async fn run(session: Weak<Session>, interval: Duration, timeout: Duration) {
    // Deadlines are absolute so that timer latency does not add up over ping + timeout
    // (clients close at pingInterval + pingTimeout; so must we, not a few ms later).
    let first = match session.upgrade() {
        Some(s) => interval - first_ping_advance(s.sid(), interval),
        None => return,
    };
    let mut next_ping = Instant::now() + first;
    loop {
        sleep_until(next_ping).await;
        let timeout_at = next_ping + timeout;
        let Some(s) = session.upgrade() else { return };
        if s.is_closed() {
            return;
        }
        s.pong.reset();
        s.send(Frame::ping());
        drop(s);
        let ponged = future::or(
            async {
                let Some(s) = session.upgrade() else {
                    return false;
                };
                s.pong.wait().await;
                true
            },
            async {
                sleep_until(timeout_at).await;
                false
            },
        )
        .await;
        next_ping = Instant::now() + interval;
        if !ponged {
            if let Some(s) = session.upgrade() {
                s.detach_heartbeat();
                s.close(CloseReason::PingTimeout);
            }
            return;
        }
    }
}

/// How much earlier than `interval` a session's first ping goes out: up to a quarter of the
/// interval, derived from the (random) sid. Sessions opened together — every client
/// reconnecting after a deploy — would otherwise be pinged together forever, and thousands of
/// pings in one instant stall the executor (~100 ms at 5,000 sockets). A ping sooner than
/// `pingInterval` is harmless: clients only require one within `pingInterval + pingTimeout`.
pub fn first_ping_advance(sid: &str, interval: Duration) -> Duration {
    // FNV-1a over the sid: its characters are already random; this only folds them.
    let h = sid.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let quarter = interval.as_micros() as u64 / 4;
    Duration::from_micros(if quarter == 0 { 0 } else { h % quarter })
}

async fn sleep_until(deadline: Instant) {
    sleep(deadline.saturating_duration_since(Instant::now())).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_ping_advance_spreads_sessions_over_a_quarter_interval() {
        let interval = Duration::from_secs(25);
        let advances: Vec<Duration> = (0..1000)
            .map(|i| first_ping_advance(&format!("sid-{i:016x}"), interval))
            .collect();
        assert!(advances.iter().all(|a| *a < interval / 4));
        // Spread, not clustered: every tenth of the range gets some sessions.
        let mut buckets = [0usize; 10];
        for a in &advances {
            buckets[(a.as_micros() * 10 / (interval / 4).as_micros()) as usize] += 1;
        }
        assert!(buckets.iter().all(|&n| n > 50), "{buckets:?}");
        assert_eq!(first_ping_advance("x", Duration::ZERO), Duration::ZERO);
    }
}
