//! The fan-out server used by benchmarks and by peer comparisons.
//!
//! ```text
//! cargo run --release -p livechat-gateway --example fanout -- --listen 127.0.0.1:3000 --executors 2
//! ```
//!
//! A socket joins the room named by its handshake query parameter `room`; an incoming `pub`
//! event is broadcast as `msg` (same arguments) to everyone in that room, the sender included.
//! The Node `socket.io` and `socketioxide` peers behave exactly the same.
//!
//! With `--redis-url URL` the process is one node of a cluster sharing that Redis (the
//! cross-node benchmark, `benches/cross-node.sh`; the peers run with their standard Redis
//! adapters). A `pub` is then delivered to the publishing executor's own members of the room
//! at once, and its arguments, as one JSON array behind the executor's 16-hex-digit origin
//! tag, are `PUBLISH`ed on the room's channel `fanout:room:<room>`. Every executor (of every
//! node) that has local members of a room is subscribed to that channel on its own Redis
//! connection — `SUBSCRIBE` when its first local member joins, `UNSUBSCRIBE` once its last one
//! has left — and emits each message it receives as `msg` to its local members only, except
//! its own publications (already delivered), as the peers' adapters do. A socket's CONNECT is
//! answered once its executor's subscription to the room is confirmed. In this mode binary
//! attachments of `pub` are dropped (placeholders in the arguments are forwarded as they are),
//! and messages published while an executor's connection to Redis is down are lost.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;

use clap::Parser;
use futures_util::future::{FutureExt, LocalBoxFuture, Shared};
use livechat_gateway::config::GatewayConfig;
use livechat_gateway::redis::{Msg, PushInfo, PushKind, RedisConfig, RedisConn};
use livechat_gateway::socketio::{BroadcastOperator, Io, Namespace, Refusal, SocketIo};
use serde_json::value::RawValue;

#[derive(Parser, Debug)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: Vec<SocketAddr>,
    #[arg(long)]
    executors: Option<usize>,
    /// Do not pin executors to CPUs.
    #[arg(long)]
    no_pin: bool,
    /// Run as one node of a cluster: rooms span every node sharing this Redis
    /// (`redis://[user[:password]@]host[:port][/db]`).
    #[arg(long)]
    redis_url: Option<String>,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LIVECHAT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let ns = match &args.redis_url {
        None => local_namespace(),
        Some(url) => redis_namespace(Arc::new(RedisConfig::from_url(url)?)),
    };
    let cfg = GatewayConfig {
        listen: args.listen,
        executors: args.executors,
        pin: !args.no_pin,
        // A test and benchmark harness: thousands of connections from one loopback address.
        max_connections_per_ip: 0,
        rest_rate: 0.0,
        ..GatewayConfig::default()
    };
    livechat_gateway::serve::serve_until_signal(cfg, Arc::new(SocketIo::new().namespace(ns)))?;
    Ok(())
}

/// One node: `pub` is broadcast to the room on every executor of this process.
fn local_namespace() -> Namespace {
    Namespace::new("/")
        .on_connect(|ctx| {
            if let Some(room) = ctx.socket.handshake().query_param("room") {
                ctx.socket.join(&room);
            }
            Ok(())
        })
        .on("pub", |socket, ev| {
            let Some(io) = socket.io() else { return };
            if let Some(room) = socket.handshake().query_param("room") {
                io.to(&room).emit_raw("msg", ev.args, ev.binary);
            }
        })
}

/// One node of a cluster: `pub` goes through Redis Pub/Sub (see the module docs).
fn redis_namespace(config: Arc<RedisConfig>) -> Namespace {
    let (on_connect_cfg, on_pub_cfg) = (config.clone(), config);
    Namespace::new("/")
        .on_connect_async(move |ctx| {
            let socket = ctx.socket;
            let room = socket.handshake().query_param("room");
            // Join and (maybe) subscribe now, synchronously: the room index then shows this
            // member to a concurrent last-leave check before the handler's future first runs.
            let pending = match (room, socket.io()) {
                (Some(room), Some(io)) => {
                    socket.join(&room);
                    Some((Relay::get(&on_connect_cfg, &io).join(&room), room))
                }
                _ => None,
            };
            Box::pin(async move {
                let Some((subscribed, room)) = pending else {
                    return Ok(());
                };
                subscribed.await.map_err(|e| {
                    if let Some(relay) = Relay::existing() {
                        relay.forget(&room);
                    }
                    Refusal::new(format!("redis subscribe failed: {e}"))
                })
            })
        })
        .on_disconnect(|socket, _reason| {
            let (Some(io), Some(room), Some(relay)) = (
                socket.io(),
                socket.handshake().query_param("room"),
                Relay::existing(),
            ) else {
                return;
            };
            // The socket has already left the room index.
            relay.left(&io, &room);
        })
        .on("pub", move |socket, ev| {
            let (Some(io), Some(room)) = (socket.io(), socket.handshake().query_param("room"))
            else {
                return;
            };
            // This executor's members first, at once; the other executors and nodes through
            // Redis.
            io.to(&room).local().emit_raw("msg", ev.args, &[]);
            let relay = Relay::get(&on_pub_cfg, &io);
            let mut payload =
                Vec::with_capacity(18 + ev.args.iter().map(|a| a.get().len() + 1).sum::<usize>());
            payload.extend_from_slice(relay.origin.as_bytes());
            payload.push(b'[');
            for (i, a) in ev.args.iter().enumerate() {
                if i > 0 {
                    payload.push(b',');
                }
                payload.extend_from_slice(a.get().as_bytes());
            }
            payload.push(b']');
            relay.publish(&room, &payload);
        })
}

/// The Pub/Sub channel of a room.
const CHANNEL_PREFIX: &str = "fanout:room:";

fn channel(room: &str) -> String {
    format!("{CHANNEL_PREFIX}{room}")
}

/// A room's subscription: resolves once Redis confirmed it; sockets joining meanwhile wait
/// for the same confirmation.
type Subscribed = Shared<LocalBoxFuture<'static, Result<(), livechat_gateway::redis::Error>>>;

thread_local! {
    /// This executor's relay (each glommio executor is one thread), made on first use.
    static RELAY: RefCell<Option<Rc<Relay>>> = const { RefCell::new(None) };
}

/// One executor's Redis connection and room subscriptions.
///
/// Lives on: one executor.
struct Relay {
    conn: RedisConn,
    /// Rooms this executor is subscribed to (or subscribing to).
    rooms: RefCell<HashMap<String, Subscribed>>,
    /// `PUBLISH`es that could not be queued.
    publish_failures: std::cell::Cell<u64>,
    /// This executor's tag on what it publishes (16 hex digits), so it skips its own.
    origin: String,
}

impl Relay {
    /// This executor's relay, created (with its connection, which connects on first use) when
    /// missing.
    fn get(config: &RedisConfig, io: &Io) -> Rc<Relay> {
        RELAY.with(|r| {
            r.borrow_mut()
                .get_or_insert_with(|| Relay::new(config, io))
                .clone()
        })
    }

    /// This executor's relay, if a socket has connected on it (the connect handler makes it).
    fn existing() -> Option<Rc<Relay>> {
        RELAY.with(|r| r.borrow().clone())
    }

    fn new(config: &RedisConfig, io: &Io) -> Rc<Relay> {
        let conn = match RedisConn::new(config.clone()) {
            Ok(c) => c,
            Err(e) => {
                // The URL was parsed in main; only a TLS root file can fail here.
                tracing::error!(error = %e, "redis connection cannot be created");
                std::process::exit(1);
            }
        };
        // Holds the server only weakly (a `BroadcastOperator`), and not the connection.
        let to = io.of("/");
        let origin = format!("{:016x}", fastrand::u64(..));
        let own = origin.clone();
        conn.set_push_handler(move |push| deliver(&to, &own, push));
        Rc::new(Relay {
            origin,
            conn,
            rooms: RefCell::new(HashMap::new()),
            publish_failures: std::cell::Cell::new(0),
        })
    }

    /// A local socket joined `room` (already in the room index): the room's subscription,
    /// started if this executor had none.
    fn join(&self, room: &str) -> Subscribed {
        self.rooms
            .borrow_mut()
            .entry(room.to_owned())
            .or_insert_with(|| {
                let (conn, channel) = (self.conn.clone(), channel(room));
                let fut: LocalBoxFuture<'static, _> =
                    Box::pin(async move { conn.subscribe(&[channel]).await });
                fut.shared()
            })
            .clone()
    }

    /// Drops a failed subscription so that the next joiner tries again.
    fn forget(&self, room: &str) {
        self.rooms.borrow_mut().remove(room);
    }

    /// A local socket left `room`: unsubscribes when no local member is left. Checked in a
    /// task of its own, whose first poll both checks the room index and queues the
    /// `UNSUBSCRIBE`: a socket joining before that keeps the subscription, one joining after
    /// it sends its `SUBSCRIBE` behind the `UNSUBSCRIBE` on the same connection.
    fn left(self: &Rc<Self>, io: &Io, room: &str) {
        let (me, io, room) = (self.clone(), io.clone(), room.to_owned());
        glommio::spawn_local(async move {
            let mut members = 0usize;
            io.for_each_local_member("/", &room, |_| members += 1);
            if members > 0 || me.rooms.borrow_mut().remove(&room).is_none() {
                return;
            }
            if let Err(e) = me.conn.unsubscribe(&[channel(&room)]).await {
                tracing::debug!(error = %e, room, "unsubscribe failed");
            }
        })
        .detach();
    }

    /// `PUBLISH` of one `pub`'s arguments (a JSON array). Not awaited: the command is queued
    /// now (commands of one executor tick leave in one write) and its reply is discarded.
    fn publish(&self, room: &str, payload: &[u8]) {
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(channel(room)).arg(payload);
        if let Err(e) = self.conn.send(&cmd) {
            let n = self.publish_failures.get() + 1;
            self.publish_failures.set(n);
            if n.is_power_of_two() {
                tracing::warn!(error = %e, failures = n, "PUBLISH not sent");
            }
        }
    }
}

/// A push frame of an executor's connection: a room message goes as `msg` to the executor's
/// local members of the room.
fn deliver(to: &BroadcastOperator, own: &str, push: PushInfo) {
    if push.kind == PushKind::Disconnection {
        tracing::warn!("redis connection lost; messages published until it is back are lost");
        return;
    }
    let Some(msg) = Msg::from_push_info(push) else {
        return;
    };
    let Some(room) = msg.get_channel_name().strip_prefix(CHANNEL_PREFIX) else {
        return;
    };
    let payload = msg.get_payload_bytes();
    let Some((origin, json)) = payload.split_at_checked(own.len()) else {
        return;
    };
    if origin == own.as_bytes() {
        // Published here: its members already have it.
        return;
    }
    match serde_json::from_slice::<Vec<&RawValue>>(json) {
        Ok(args) => to.clone().to(room).local().emit_raw("msg", &args, &[]),
        Err(e) => tracing::warn!(error = %e, room, "unreadable published payload"),
    }
}
