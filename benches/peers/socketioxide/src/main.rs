//! The fan-out peer on socketioxide, behaving like livechat's `gateway/examples/fanout.rs`:
//! a socket joins the room named by its handshake query parameter `room`; an incoming `pub`
//! event is broadcast as `msg` (same argument) to everyone in that room, the sender included.
//!
//! ```text
//! livechat-peer-socketioxide --port 3000 --workers 1      # env: PORT, WORKERS, HOST
//! ```
//!
//! `--workers N` sizes the tokio runtime like livechat's `--executors N` (1 = current-thread).

use std::net::SocketAddr;

use socketioxide::extract::{Data, SocketRef};
use socketioxide::SocketIo;

fn flag(name: &str, env: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .or_else(|| std::env::var(env).ok())
        .unwrap_or_else(|| default.to_owned())
}

fn room_of(s: &SocketRef) -> Option<String> {
    s.req_parts().uri.query().and_then(|q| {
        q.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == "room").then(|| v.to_owned())
        })
    })
}

async fn serve(addr: SocketAddr) {
    let (layer, io) = SocketIo::new_layer();
    io.ns("/", async |s: SocketRef| {
        let room = room_of(&s);
        if let Some(room) = room.clone() {
            s.join(room);
        }
        s.on(
            "pub",
            move |io: SocketIo, Data(data): Data<serde_json::Value>| {
                let room = room.clone();
                async move {
                    if let Some(room) = room {
                        let _ = io.to(room).emit("msg", &data).await;
                    }
                }
            },
        );
    });
    let app = axum::Router::new().layer(layer);
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
    rt.block_on(serve(addr));
}
