//! The fan-out peer on socketioxide, behaving like livechat's `gateway/examples/fanout.rs`:
//! a socket joins the room named by its handshake query parameter `room`; an incoming `pub`
//! event is broadcast as `msg` (same argument) to everyone in that room, the sender included.
//!
//! ```text
//! livechat-peer-socketioxide --port 3000 --workers 1 [--redis-url redis://127.0.0.1:6379]
//!                                                     # env: PORT, WORKERS, HOST, REDIS_URL
//! ```
//!
//! `--workers N` sizes the tokio runtime like livechat's `--executors N` (1 = current-thread).
//!
//! `--redis-url URL` makes this process one node of a multi-node deployment: socketioxide's
//! official Redis adapter (`socketioxide-redis`, `redis` crate driver) carries each room
//! broadcast to the other nodes sharing that Redis, so a room's members may be spread over
//! nodes. The adapter's drivers need RESP3 (Redis 7+): `protocol=resp3` is appended to the URL
//! unless it names a protocol. Its wire format is its own; it does not interoperate with the
//! Node peer's `@socket.io/redis-adapter`. Without the flag the server is the plain in-memory one.

use std::net::SocketAddr;

use socketioxide::adapter::{Adapter, LocalAdapter};
use socketioxide::extract::{Data, SocketRef};
use socketioxide::SocketIo;
use socketioxide_redis::drivers::redis::redis_client as redis;
use socketioxide_redis::{RedisAdapter, RedisAdapterCtr};

fn flag(name: &str, env: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .or_else(|| std::env::var(env).ok())
        .unwrap_or_else(|| default.to_owned())
}

fn room_of<A: Adapter>(s: &SocketRef<A>) -> Option<String> {
    s.req_parts().uri.query().and_then(|q| {
        q.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == "room").then(|| v.to_owned())
        })
    })
}

async fn on_connect<A: Adapter>(s: SocketRef<A>) {
    let room = room_of(&s);
    if let Some(room) = room.clone() {
        s.join(room);
    }
    s.on(
        "pub",
        move |io: SocketIo<A>, Data(data): Data<serde_json::Value>| {
            let room = room.clone();
            async move {
                if let Some(room) = room {
                    let _ = io.to(room).emit("msg", &data).await;
                }
            }
        },
    );
}

/// `redis://…` with `protocol=resp3` added unless the URL already names a protocol.
fn resp3_url(url: &str) -> String {
    if url.contains("protocol=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&protocol=resp3")
    } else {
        format!("{url}?protocol=resp3")
    }
}

async fn serve(addr: SocketAddr, redis_url: Option<String>) {
    let app = match redis_url {
        None => {
            let (layer, io) = SocketIo::new_layer();
            io.ns("/", on_connect::<LocalAdapter>);
            axum::Router::new().layer(layer)
        }
        Some(url) => {
            let fail = |what: &str, e: &dyn std::fmt::Display| -> ! {
                eprintln!("{what} ({url}): {e}");
                std::process::exit(1)
            };
            let client = redis::Client::open(resp3_url(&url))
                .unwrap_or_else(|e| fail("bad --redis-url", &e));
            // Connects (and fails here if Redis is unreachable) before anything listens.
            let adapter = RedisAdapterCtr::new_with_redis(&client)
                .await
                .unwrap_or_else(|e| fail("cannot connect to redis", &e));
            let (layer, io) = SocketIo::builder()
                .with_adapter::<RedisAdapter<_>>(adapter)
                .build_layer();
            // Subscribes the namespace's channels; awaited so that `listening` means ready.
            if let Err(e) = io.ns("/", on_connect).await {
                fail("redis adapter init", &e);
            }
            axum::Router::new().layer(layer)
        }
    };
    let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
    println!(
        "listening on http://{}",
        listener.local_addr().expect("local addr")
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .expect("serve");
}

fn main() {
    let port: u16 = flag("--port", "PORT", "3000").parse().expect("--port");
    let host = flag("--host", "HOST", "127.0.0.1");
    let workers: usize = flag("--workers", "WORKERS", "1")
        .parse()
        .expect("--workers");
    let addr: SocketAddr = format!("{host}:{port}").parse().expect("address");
    let redis_url = Some(flag("--redis-url", "REDIS_URL", "")).filter(|u| !u.is_empty());
    let rt = if workers <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
    }
    .expect("tokio runtime");
    rt.block_on(serve(addr, redis_url));
}
