//! The server the official Engine.IO v4 / Socket.IO v5 test suites expect, plus a few events
//! the project's own client tests use.
//!
//! ```text
//! cargo run --release -p livechat-gateway --example conformance -- --listen 127.0.0.1:3000 [--engine-io]
//! ```
//!
//! Settings of the suites: pingInterval 300 ms, pingTimeout 200 ms, maxPayload 1000000,
//! connectTimeout 1000 ms. `--engine-io`: raw Engine.IO at `/engine.io/`, echoing every message.
//! Otherwise Socket.IO at `/socket.io/` with namespaces `/` and `/custom`; both emit `auth` with
//! the CONNECT payload on connect; `/` echoes `message` as `message-back` and acks
//! `message-with-ack` with its arguments. Test helpers on `/`: `whoami`, `join`, `leave`,
//! `to-room`, `to-socket`, `server-disconnect`, `ask-ack`.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use livechat_gateway::config::{GatewayConfig, Transports};
use livechat_gateway::engineio::{EngineApp, Frame, Session, SessionHandler};
use livechat_gateway::error::CloseReason;
use livechat_gateway::runtime::{AppFactory, LocalApp, Node};
use livechat_gateway::socketio::{AckError, Namespace, Remote, SocketIo, SocketOp};
use serde_json::value::RawValue;

#[derive(Parser, Debug)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: Vec<SocketAddr>,
    #[arg(long)]
    executors: Option<usize>,
    /// Raw Engine.IO echo server at `/engine.io/`.
    #[arg(long)]
    engine_io: bool,
    #[arg(long, default_value_t = 300)]
    ping_interval_ms: u64,
    #[arg(long, default_value_t = 200)]
    ping_timeout_ms: u64,
    #[arg(long, default_value = "polling,websocket")]
    transports: Transports,
    /// Most packets queued for one session before it is closed as a slow consumer.
    #[arg(long, default_value_t = 10_000)]
    max_queued_packets: usize,
}

/// Echoes every Engine.IO message back to its sender.
struct Echo;

impl AppFactory for Echo {
    fn build(&self, _node: &Rc<Node>) -> Rc<dyn LocalApp> {
        Rc::new(Echo)
    }
}

impl EngineApp for Echo {
    fn open(self: Rc<Self>, _session: &Rc<Session>) -> Rc<dyn SessionHandler> {
        self
    }
}

impl LocalApp for Echo {
    fn on_remote(&self, _msg: Remote) {}
}

impl SessionHandler for Echo {
    fn on_message(&self, session: &Rc<Session>, text: &str) {
        session.send(Frame::message(text));
    }
    fn on_binary(&self, session: &Rc<Session>, data: &[u8]) {
        session.send(Frame::Binary(Bytes::copy_from_slice(data)));
    }
    fn on_close(&self, _session: &Rc<Session>, _reason: CloseReason) {}
}

fn raw(s: &str) -> Box<RawValue> {
    RawValue::from_string(s.to_owned())
        .unwrap_or_else(|_| RawValue::from_string("null".into()).unwrap_or_default())
}

fn emit_auth(
    ctx: &livechat_gateway::socketio::ConnectContext,
) -> Result<(), livechat_gateway::socketio::Refusal> {
    let auth = ctx.auth.as_deref().map_or("{}", |a| a.get());
    ctx.socket.emit_raw("auth", &[&raw(auth)], &[]);
    Ok(())
}

fn socket_io() -> SocketIo {
    let main = Namespace::new("/")
        .on_connect(emit_auth)
        .on("message", |s, ev| {
            s.emit_raw("message-back", ev.args, ev.binary)
        })
        .on("message-with-ack", |_, ev| {
            if let Some(ack) = ev.ack {
                ack.send_raw(ev.args, ev.binary);
            }
        })
        .on("whoami", |s, ev| {
            let executor = s.io().map_or(0, |io| io.executor().index());
            if let Some(ack) = ev.ack {
                ack.send(&serde_json::json!({ "executor": executor, "sid": s.id() }));
            }
        })
        .on("join", |s, ev| {
            if let Ok(room) = ev.arg::<String>(0) {
                s.join(&room);
            }
            if let Some(ack) = ev.ack {
                ack.send(&true);
            }
        })
        .on("leave", |s, ev| {
            if let Ok(room) = ev.arg::<String>(0) {
                s.leave(&room);
            }
            if let Some(ack) = ev.ack {
                ack.send(&true);
            }
        })
        .on("to-room", |s, ev| {
            if let (Some(io), Ok(room)) = (s.io(), ev.arg::<String>(0)) {
                io.to(&room)
                    .emit_raw("room-msg", ev.args.get(1..).unwrap_or(&[]), ev.binary);
            }
            if let Some(ack) = ev.ack {
                ack.send(&true);
            }
        })
        .on("to-socket", |s, ev| {
            if let (Some(io), Ok(id)) = (s.io(), ev.arg::<String>(0)) {
                let args = ev
                    .args
                    .get(1..)
                    .unwrap_or(&[])
                    .iter()
                    .map(|a| a.get().to_owned())
                    .collect();
                io.socket_op(
                    &id,
                    SocketOp::Emit {
                        event: "direct".into(),
                        args,
                        binary: ev.binary.to_vec(),
                    },
                );
            }
            if let Some(ack) = ev.ack {
                ack.send(&true);
            }
        })
        .on("server-disconnect", |s, _| s.disconnect())
        .on("ask-ack", |s, ev| {
            let socket = s.clone();
            let args: Vec<Box<RawValue>> = ev.args.iter().map(|a| (*a).to_owned()).collect();
            let binary = ev.binary.to_vec();
            glommio::spawn_local(async move {
                let refs: Vec<&RawValue> = args.iter().map(|a| &**a).collect();
                let result = socket
                    .emit_with_ack("ask", &refs, &binary, Duration::from_millis(2000))
                    .await;
                match result {
                    Ok(resp) => {
                        // Keep binary placeholders intact and send the attachments along,
                        // so binary ack arguments come back as binary.
                        let args: Vec<&str> = resp.args.iter().map(|a| a.get()).collect();
                        let report = raw(&format!(r#"{{"ok":true,"args":[{}]}}"#, args.join(",")));
                        socket.emit_raw("ask-result", &[&report], &resp.binary);
                    }
                    Err(AckError::Timeout) => {
                        let _ = socket.emit(
                            "ask-result",
                            &serde_json::json!({ "ok": false, "error": "timeout" }),
                        );
                    }
                    Err(AckError::Disconnected) => {}
                }
            })
            .detach();
        });
    let custom = Namespace::new("/custom").on_connect(emit_auth);
    SocketIo::new().namespace(main).namespace(custom)
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
    let cfg = GatewayConfig {
        listen: args.listen,
        executors: args.executors,
        path: if args.engine_io {
            "/engine.io/"
        } else {
            "/socket.io/"
        }
        .into(),
        ping_interval: Duration::from_millis(args.ping_interval_ms),
        ping_timeout: Duration::from_millis(args.ping_timeout_ms),
        connect_timeout: Duration::from_millis(1000),
        max_payload: 1_000_000,
        transports: args.transports,
        max_queued_packets: args.max_queued_packets,
        // A test and benchmark harness: thousands of connections from one loopback address.
        max_connections_per_ip: 0,
        rest_rate: 0.0,
        ..GatewayConfig::default()
    };
    let app: Arc<dyn AppFactory> = if args.engine_io {
        Arc::new(Echo)
    } else {
        Arc::new(socket_io())
    };
    livechat_gateway::serve::serve_until_signal(cfg, app)?;
    Ok(())
}
