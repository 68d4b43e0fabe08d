//! The IO pool: one tokio runtime beside the glommio executors, running what needs tokio —
//! PostgreSQL (sqlx) and Kafka (rdkafka) — on its own few threads.
//!
//! Built in `main` before any executor starts: a runtime built inside an executor thread would
//! inherit that executor's CPU pinning, and its workers would compete with the executor for
//! the core. Executors never poll a tokio future (they have no tokio context); they reach the
//! services here over bounded flume channels and await a flume reply, which needs no runtime.

use std::future::Future;
use std::time::Duration;

use crate::error::GatewayError;

/// The tokio runtime for database and broker IO.
#[derive(Debug)]
pub struct IoPool {
    runtime: tokio::runtime::Runtime,
}

impl IoPool {
    /// A runtime with `threads` workers (`--io-threads`, at least 1).
    pub fn new(threads: usize) -> Result<Self, GatewayError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("livechat-io")
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| GatewayError::Startup(format!("cannot start the IO pool: {e}")))?;
        Ok(Self { runtime })
    }

    /// The runtime's handle (services spawn their tasks on it).
    pub fn handle(&self) -> &tokio::runtime::Handle {
        self.runtime.handle()
    }

    /// Runs `f` to completion on the pool, from a thread that is not an executor (`main`,
    /// start-up and shutdown).
    pub fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }

    /// Stops the pool, giving running tasks up to `grace` to finish.
    pub fn shutdown(self, grace: Duration) {
        self.runtime.shutdown_timeout(grace);
    }
}
