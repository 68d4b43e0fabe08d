//! The server-driven heartbeat: ping every `pingInterval`, close after `pingTimeout` without pong.
//!
//! One small detached task per session, holding only a `Weak` so it never keeps a session
//! alive. It ends by itself as soon as the session closes: `Session::close` notifies the
//! session's `pong` event, which is the one thing the task waits on besides its deadline.
//!
//! Why not cancel it (drop its `glommio::Task`) on close: in glommio 0.9, cancelling a task
//! that is not scheduled or running takes one reference to it too many
//! (`JoinHandle::cancel` increments the count, then `schedule` increments it again, and only
//! one is ever given back), so the task's allocation — the whole future, ~310 B here — is
//! never freed. One per session added up to ~4.7 MB per 10,000 connections, for good.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::rc::Weak;
use std::task::Poll;
use std::time::{Duration, Instant};

use glommio::timer::Timer;

use super::packet::Frame;
use super::Session;
use crate::error::CloseReason;

/// What ended a wait of the heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Woken {
    /// The deadline passed.
    Deadline,
    /// A pong arrived (or the flag was set before the wait).
    Pong,
    /// The session closed (or is gone).
    Closed,
}

/// Runs the heartbeat of `session` until it closes.
pub async fn run(session: Weak<Session>, interval: Duration, timeout: Duration) {
    // The ping deadline is absolute so that timer latency does not add up from one ping to
    // the next (clients give up after pingInterval + pingTimeout without one).
    let first = match session.upgrade() {
        Some(s) => interval - first_ping_advance(s.sid(), interval),
        None => return,
    };
    let mut next_ping = Instant::now() + first;
    loop {
        // A pong nobody asked for does not bring the ping forward.
        loop {
            match wait(&session, next_ping).await {
                Woken::Deadline => break,
                Woken::Pong => {}
                Woken::Closed => return,
            }
        }
        let Some(s) = session.upgrade() else { return };
        if s.is_closed() {
            return;
        }
        s.pong.reset();
        s.send(Frame::ping());
        drop(s);
        // The pong is due `pingTimeout` after the ping went out, as in the reference server —
        // not after it was due: a ping sent late (a busy executor) must not shorten the time
        // the client has to answer it.
        let timeout_at = Instant::now() + timeout;
        let ponged = match wait(&session, timeout_at).await {
            Woken::Pong => true,
            Woken::Deadline => false,
            Woken::Closed => return,
        };
        next_ping = Instant::now() + interval;
        if !ponged {
            if let Some(s) = session.upgrade() {
                s.close(CloseReason::PingTimeout);
            }
            return;
        }
    }
}

/// Waits until `deadline`, a pong, or the close of the session, whichever comes first. Holds
/// the session only while polled.
async fn wait(session: &Weak<Session>, deadline: Instant) -> Woken {
    let mut timer = Timer::new(deadline.saturating_duration_since(Instant::now()));
    poll_fn(|cx| {
        let Some(s) = session.upgrade() else {
            return Poll::Ready(Woken::Closed);
        };
        // `close` sets the pong flag too: look at the session first.
        if s.is_closed() {
            return Poll::Ready(Woken::Closed);
        }
        if s.pong.poll_wait(cx).is_ready() {
            return Poll::Ready(if s.is_closed() {
                Woken::Closed
            } else {
                Woken::Pong
            });
        }
        if Pin::new(&mut timer).poll(cx).is_ready() {
            return Poll::Ready(Woken::Deadline);
        }
        Poll::Pending
    })
    .await
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use std::rc::Rc;
    use std::sync::Arc;

    use futures_lite::future;
    use livechat_shard_router::Mesh;

    use crate::config::GatewayConfig;
    use crate::engineio::{Engine, EngineApp, Handshake, SessionHandler, Transport};
    use crate::runtime::{MeshMsg, Node};

    struct NoApp;

    impl EngineApp for NoApp {
        fn open(self: Rc<Self>, _session: &Rc<Session>) -> Rc<dyn SessionHandler> {
            unreachable!("the tests make their sessions without Engine::open")
        }
    }

    /// A session (no handler, no heartbeat of its own) on a one-executor engine, which the
    /// caller keeps (the session only holds a `Weak` of it).
    fn session() -> (Rc<Engine>, Rc<Session>) {
        let port = Mesh::build::<MeshMsg>(1, 16, Default::default())
            .pop()
            .expect("one port");
        let node = Node::new(Arc::new(GatewayConfig::default()), port);
        let engine = Engine::new(node, Rc::new(NoApp));
        let peer: SocketAddr = "127.0.0.1:1".parse().expect("address");
        let handshake = Handshake {
            query: String::new(),
            headers: Default::default(),
            remote_addr: peer,
        };
        let s = Session::new(
            "s1".into(),
            &engine,
            Rc::new(handshake),
            Transport::WebSocket,
        );
        (engine, s)
    }

    /// Runs the future `f` makes on a fresh executor thread, until it ends.
    fn on_executor<F, Fut>(f: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        glommio::LocalExecutorBuilder::default()
            .spawn(f)
            .expect("executor")
            .join()
            .expect("test executor");
    }

    /// Awaits `task` for at most `limit`; whether it finished.
    async fn finishes(task: &mut glommio::Task<()>, limit: Duration) -> bool {
        future::or(
            async {
                task.await;
                true
            },
            async {
                glommio::timer::sleep(limit).await;
                false
            },
        )
        .await
    }

    #[test]
    fn the_task_ends_by_itself_when_its_session_closes() {
        on_executor(|| async {
            let hour = Duration::from_secs(3600);
            let (_engine, s) = session();
            let mut task = glommio::spawn_local(run(Rc::downgrade(&s), hour, hour));
            // A pong before any ping neither ends it nor brings the ping forward.
            s.pong.notify();
            assert!(!finishes(&mut task, Duration::from_millis(20)).await);
            let mut frames = Vec::new();
            s.drain_into(&mut frames);
            assert!(frames.is_empty(), "no ping yet: {frames:?}");
            // No cancellation (which leaks the task in glommio 0.9): the close wakes it.
            s.close(CloseReason::ServerClose);
            assert!(finishes(&mut task, Duration::from_secs(5)).await);
        });
    }

    #[test]
    fn a_missing_pong_closes_the_session_and_ends_the_task() {
        on_executor(|| async {
            let ms = Duration::from_millis;
            let (_engine, s) = session();
            let mut task = glommio::spawn_local(run(Rc::downgrade(&s), ms(20), ms(20)));
            assert!(finishes(&mut task, Duration::from_secs(5)).await);
            assert!(s.is_closed());
            let mut frames = Vec::new();
            s.drain_into(&mut frames);
            assert_eq!(frames.len(), 1, "one ping: {frames:?}");
        });
    }

    #[test]
    fn a_pong_in_time_keeps_the_session_open() {
        on_executor(|| async {
            let ms = Duration::from_millis;
            let (_engine, s) = session();
            let mut task =
                glommio::spawn_local(run(Rc::downgrade(&s), ms(10), Duration::from_secs(60)));
            let mut frames = Vec::new();
            for _ in 0..3 {
                // Wait for the next ping (queuing it wakes the WebSocket writer), answer it.
                while frames.is_empty() {
                    s.writable.wait().await;
                    s.drain_into(&mut frames);
                }
                assert_eq!(frames.len(), 1, "{frames:?}");
                frames.clear();
                s.pong.notify();
            }
            assert!(!s.is_closed());
            s.close(CloseReason::ServerClose);
            assert!(finishes(&mut task, Duration::from_secs(5)).await);
        });
    }

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
