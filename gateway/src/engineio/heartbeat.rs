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
    let mut next_ping = Instant::now() + interval;
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

async fn sleep_until(deadline: Instant) {
    sleep(deadline.saturating_duration_since(Instant::now())).await;
}
