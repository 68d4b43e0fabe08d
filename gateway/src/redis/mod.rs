//! The Redis client the chat engine's Redis backend uses: each glommio executor talks to
//! Redis itself over its own pipelined RESP3 connection on glommio sockets — no tokio, no
//! thread hop, no lock per command, nothing that blocks the executor.
//!
//! The `redis` crate (without its async runtime) only builds and encodes commands and gives
//! us `Value` and `FromRedisValue`; `redis-protocol` finds where each reply ends. This module
//! drives the bytes.
//!
//! - [`config`]: [`RedisConfig`] and the `redis://` / `rediss://` URL parser.
//! - [`error`]: [`Error`], the module's one error type (per-request vs connection errors).
//! - [`frame`]: sans-IO RESP3 framing of the read buffer into replies and push frames.
//! - `slot`: a request's reply slot in the FIFO, and [`Reply`], the future of it.
//! - `session`: one TCP connection — handshake, writer, reader and expiry tasks.
//! - `conn`: [`RedisConn`], the handle, and the reconnect policy; [`ConnStats`].
//! - `pubsub`: subscribe helpers on the same connection; subscriptions survive reconnects.
//! - `script`: [`Script`] and [`RedisConn::eval`] (`EVALSHA`, `EVAL` on `NOSCRIPT`).
//! - `cluster`: [`ClusterConn`], a Redis Cluster: a connection per master, the slot map,
//!   redirections, sharded Pub/Sub.
//! - `client`: [`Redis`], one Redis or a cluster behind the same calls, and [`RedisTarget`]
//!   (`redis://` or `redis+cluster://`).
//! - `transport`: the glommio TCP stream (plain or TLS) under a connection.
//! - `tls`: the rustls client configuration for `rediss://`.
//!
//! # Example
//!
//! ```no_run
//! use livechat_gateway::redis::{RedisConfig, RedisConn, Script};
//!
//! glommio::LocalExecutor::default().run(async {
//!     let conn = RedisConn::connect(RedisConfig::from_url("redis://127.0.0.1:6379/0")?).await?;
//!     // Issued in one tick: one write, replies in order.
//!     let (a, b) = futures_lite::future::zip(
//!         conn.query::<i64>(redis::cmd("INCR").arg("n")),
//!         conn.query::<Option<String>>(redis::cmd("GET").arg("k")),
//!     )
//!     .await;
//!     let bump = Script::new("return redis.call('INCRBY', KEYS[1], ARGV[1])");
//!     let n: i64 = conn.eval(&bump, &["n"], &[5]).await?;
//!     # let _ = (a, b, n);
//!     Ok::<(), livechat_gateway::redis::Error>(())
//! })
//! .unwrap();
//! ```

mod client;
mod cluster;
pub mod config;
mod conn;
pub mod error;
pub mod frame;
mod pubsub;
mod script;
mod session;
mod slot;
mod tls;
mod transport;

#[cfg(test)]
mod cluster_tests;
#[cfg(test)]
mod conn_tests;
#[cfg(test)]
pub(crate) mod test_cluster;
#[cfg(test)]
pub(crate) mod test_server;

pub use client::{Redis, RedisTarget};
pub use cluster::ClusterConn;
pub use config::RedisConfig;
pub use conn::{ConnStats, RedisConn};
pub use error::Error;
pub use frame::{Frame, FrameReader};
pub use script::Script;
pub use slot::Reply;

/// Re-exported so callers decode push frames without naming the `redis` crate.
pub use ::redis::{Msg, PushInfo, PushKind, Value};
