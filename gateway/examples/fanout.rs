//! The fan-out server used by benchmarks and by peer comparisons.
//!
//! ```text
//! cargo run --release -p livechat-gateway --example fanout -- --listen 127.0.0.1:3000 --executors 2
//! ```
//!
//! A socket joins the room named by its handshake query parameter `room`; an incoming `pub`
//! event is broadcast as `msg` (same arguments) to everyone in that room, the sender included.
//! The Node `socket.io` and `socketioxide` peers behave exactly the same.

use std::net::SocketAddr;
use std::sync::Arc;

use clap::Parser;
use livechat_gateway::config::GatewayConfig;
use livechat_gateway::socketio::{Namespace, SocketIo};

#[derive(Parser, Debug)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: Vec<SocketAddr>,
    #[arg(long)]
    executors: Option<usize>,
    /// Do not pin executors to CPUs.
    #[arg(long)]
    no_pin: bool,
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
    let ns = Namespace::new("/")
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
        });
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
