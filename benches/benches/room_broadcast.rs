//! Broadcasting to a room of 1, 100 and 10,000 local members through the gateway's public
//! Socket.IO API (`io.to("room").emit("msg", &Json(&message))`), on one glommio executor.
//!
//! A chat message is one broadcast to its conversation's room; a big room (an agent
//! dashboard, a fan-out event) multiplies the per-member cost. The setup builds the real
//! stack: a one-executor mesh, a `Node`, a `SocketIo` whose `/` namespace joins every socket
//! to "room" in its connect handler, an Engine.IO `Engine`, and for every member an
//! Engine.IO session (WebSocket transport) that sends a Socket.IO CONNECT (`0`). It then
//! asserts that one emit queues exactly one `42["msg",...]` frame on every member session,
//! so the bench measures real deliveries.
//!
//! Measured: `emit` (encode the packet once, look the room up, clone the encoded `Bytes`
//! into every member's outbound queue and wake its writer). Outbound queues are drained with
//! `Session::drain_into` after every batch of at most 16 emits, outside the timed region
//! (`iter_custom`), so queues stay short and no session is closed as a slow consumer.
//! Throughput is deliveries (members × emits).

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_main, BenchmarkId, Criterion, Throughput};
use livechat_benches::{sample_message, MEASUREMENT, SAMPLES, WARM_UP};
use livechat_core::ChatMessage;
use livechat_gateway::chat::wire::Json;
use livechat_gateway::config::GatewayConfig;
use livechat_gateway::engineio::{Engine, Frame, Handshake, Inbound, Session, Transport};
use livechat_gateway::error::CloseReason;
use livechat_gateway::runtime::{MeshMsg, Node};
use livechat_gateway::socketio::{Io, Namespace, SocketIo};
use livechat_shard_router::Mesh;

/// Most emits between two drains.
const BATCH: u64 = 16;

/// One executor's Socket.IO server with `members` connected sockets in "room".
struct Room {
    io: Io,
    engine: Rc<Engine>,
    sessions: Vec<Rc<Session>>,
    payload: ChatMessage,
}

impl Room {
    async fn new(members: usize) -> Self {
        let hour = Duration::from_secs(3600);
        let cfg = GatewayConfig {
            // Room for BATCH frames per session (the default, 10,000, would do too).
            max_queued_packets: 1 << 20,
            // No heartbeat or connect timeout may fire during a run.
            ping_interval: hour,
            ping_timeout: hour,
            connect_timeout: hour,
            ..GatewayConfig::default()
        };
        let port = Mesh::build::<MeshMsg>(1, 1024, Default::default())
            .pop()
            .expect("one port");
        let node = Node::new(Arc::new(cfg), port);
        let socketio = SocketIo::new().namespace(Namespace::new("/").on_connect(|ctx| {
            ctx.socket.join("room");
            Ok(())
        }));
        let io = socketio.build_io(&node);
        let engine = Engine::new(node.clone(), io.engine_app());
        let peer: SocketAddr = "127.0.0.1:1".parse().expect("valid address");
        let sessions: Vec<Rc<Session>> = (0..members)
            .map(|_| {
                let handshake = Handshake {
                    query: String::new(),
                    headers: Default::default(),
                    remote_addr: peer,
                };
                let (session, _open) = engine.open(handshake, Transport::WebSocket);
                engine.receive(&session, Inbound::Message("0"));
                session
            })
            .collect();

        // The connect handler runs in a spawned task: let it run for every member, then take
        // each session's CONNECT reply (`40{"sid":...}`).
        let mut replies = vec![0usize; members];
        let mut frames = Vec::new();
        for _ in 0..1000 {
            glommio::executor().yield_now().await;
            for (s, n) in sessions.iter().zip(replies.iter_mut()) {
                frames.clear();
                s.drain_into(&mut frames);
                for f in &frames {
                    assert!(
                        matches!(f, Frame::Text(t) if t.starts_with(b"40{")),
                        "{f:?}"
                    );
                }
                *n += frames.len();
            }
            if replies.iter().all(|&n| n == 1) {
                break;
            }
        }
        assert!(
            replies.iter().all(|&n| n == 1),
            "every member gets exactly one CONNECT reply"
        );
        let room = Self {
            io,
            engine,
            sessions,
            payload: sample_message(),
        };

        // One emit must queue exactly one event frame on every member.
        room.emit();
        for s in &room.sessions {
            frames.clear();
            s.drain_into(&mut frames);
            assert_eq!(frames.len(), 1, "one frame per member per emit");
            assert!(matches!(&frames[0], Frame::Text(t) if t.starts_with(br#"42["msg",{"#)));
            assert!(!s.is_closed());
        }
        room
    }

    fn emit(&self) {
        self.io
            .to("room")
            .emit("msg", &Json(&self.payload))
            .expect("serializable");
    }

    fn drain(&self, frames: &mut Vec<Frame>) {
        for s in &self.sessions {
            frames.clear();
            s.drain_into(frames);
        }
    }
}

fn broadcast(c: &mut Criterion) {
    glommio::LocalExecutor::default().run(async {
        let mut g = c.benchmark_group("room_broadcast/emit");
        for members in [1usize, 100, 10_000] {
            let room = Room::new(members).await;
            g.throughput(Throughput::Elements(members as u64));
            let mut frames = Vec::new();
            g.bench_function(BenchmarkId::new("members", members), |b| {
                b.iter_custom(|iters| {
                    let mut timed = Duration::ZERO;
                    let mut left = iters;
                    while left > 0 {
                        let k = left.min(BATCH);
                        let start = Instant::now();
                        for _ in 0..k {
                            room.emit();
                        }
                        timed += start.elapsed();
                        room.drain(&mut frames);
                        left -= k;
                    }
                    timed
                });
            });
            assert!(room.sessions.iter().all(|s| !s.is_closed()));
            room.engine.close_all(CloseReason::ServerClose);
        }
        g.finish();
    });
}

/// This file's benchmarks with the suite's time budget (what `criterion_group!` would
/// generate, minus its undocumented `pub fn`).
fn benches() {
    let mut c = Criterion::default()
        .warm_up_time(WARM_UP)
        .measurement_time(MEASUREMENT)
        .sample_size(SAMPLES)
        .configure_from_args();
    broadcast(&mut c);
}
criterion_main!(benches);
