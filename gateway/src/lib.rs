//! `livechat-gateway`: the HTTP front door, Engine.IO v4 and Socket.IO v5 (ours), on glommio,
//! one executor per core.
//!
//! Architecture Invariant: this is the only crate that knows HTTP, Socket.IO and JSON wire
//! formats. `livechat-core` stays sans-IO; `livechat-shard-router` knows executors.
//!
//! - [`chat`]: the chat product: REST API, Socket.IO contract, embedded backend.
//! - [`config`]: settings and their defaults.
//! - [`error`]: the one error type and its mapping to statuses and close reasons.
//! - [`http`]: HTTP/1.1 parsing, responses, the connection loop.
//! - [`engineio`]: Engine.IO sessions, polling, WebSocket, upgrade, heartbeat.
//! - [`socketio`]: Socket.IO packets, namespaces, sockets, rooms, acks, broadcasts.
//! - [`redis`]: the per-executor pipelined Redis client (RESP3, Pub/Sub, scripts).
//! - [`iopool`]: the tokio runtime beside the executors, for PostgreSQL and Kafka IO.
//! - [`durable`]: conversation metadata in PostgreSQL (group-committed, versioned).
//! - [`events`]: analytics events to Kafka, a file or the log, and the host's listener.
//! - [`metrics`]: per-executor counters in `Cell`s, summed across executors at scrape.
//! - [`runtime`]: executors, the mesh inbox, connection hand-over, shutdown.
//! - [`serve`]: run until SIGINT/SIGTERM.
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use livechat_gateway::{config::GatewayConfig, socketio::{Namespace, SocketIo}};
//!
//! let io = SocketIo::new().namespace(
//!     Namespace::new("/")
//!         .on("join", |socket, ev| {
//!             if let Ok(room) = ev.arg::<String>(0) {
//!                 socket.join(&room);
//!             }
//!         })
//!         .on("say", |socket, ev| {
//!             // To everyone in the room, on every executor, sender included.
//!             if let (Some(io), Ok(room)) = (socket.io(), ev.arg::<String>(0)) {
//!                 io.to(&room).emit_raw("said", &ev.args[1..], ev.binary);
//!             }
//!             if let Some(ack) = ev.ack {
//!                 ack.send(&true);
//!             }
//!         }),
//! );
//! livechat_gateway::serve::serve_until_signal(GatewayConfig::default(), Arc::new(io)).unwrap();
//! ```

pub mod chat;
pub mod config;
pub mod durable;
pub mod engineio;
pub mod error;
pub mod events;
pub mod http;
pub mod iopool;
pub mod metrics;
pub mod redis;
pub mod runtime;
pub mod serve;
pub mod socketio;

pub use error::GatewayError;
