//! Durable conversation metadata in PostgreSQL: the `conversations` table, written once per
//! lifecycle transition (group-committed), touched at most once per second per conversation by
//! messages, and read for agent histories and conversations the live store has forgotten.
//!
//! [`Durable`] is the executors' handle: `Send + Clone`, it only puts requests on bounded
//! flume channels and awaits flume replies. Everything that touches sqlx runs on the IO pool
//! ([`writer`]). It implements core's [`MetadataRepository`]; the stores call it at the point
//! of each commit where the step is decided but not yet applied (see ARCHITECTURE.md,
//! "PostgreSQL"), so a failed write refuses the step whole.
//!
//! - [`config`]: the settings, `chat.database.*`.
//! - [`row`]: the table's columns, the SQL.
//! - [`writer`]: the group-committing writer, the toucher, the readers (IO pool).
//! - [`stats`]: the counters.

pub mod config;
pub mod row;
pub mod stats;
pub mod writer;

use std::str::FromStr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use livechat_core::store::{MetadataRepository, Written};
use livechat_core::{ConversationMetadata, ConversationStatus, Timestamp};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

pub use config::DatabaseConfig;
pub use stats::{DurableSnapshot, DurableStats};

use self::writer::{ReadReq, WriteReq};
use crate::error::GatewayError;
use crate::iopool::IoPool;

/// The migrations of `migrations/` at the repository root, embedded at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// The executors' handle on the PostgreSQL service.
#[derive(Debug, Clone)]
pub struct Durable {
    writes: flume::Sender<WriteReq>,
    reads: flume::Sender<ReadReq>,
    touches: flume::Sender<(String, Timestamp)>,
    stats: Arc<DurableStats>,
}

/// The pool for `cfg`, living on `io` (connects lazily: a database that is down at start is a
/// 503 per request, not a failed start — unless migrations must run first).
pub fn pool(cfg: &DatabaseConfig, io: &IoPool) -> Result<PgPool, GatewayError> {
    let _runtime = io.handle().enter();
    let url = cfg
        .url
        .as_deref()
        .ok_or_else(|| GatewayError::Config("chat.database.url is not set".into()))?;
    let statement_ms = cfg.statement_timeout.as_millis().max(1);
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| GatewayError::Config(format!("chat.database.url: {e}")))?
        .application_name("livechat")
        .options([("statement_timeout", format!("{statement_ms}ms"))]);
    Ok(PgPoolOptions::new()
        .max_connections(cfg.pool_size.max(1))
        .acquire_timeout(cfg.acquire_timeout)
        .connect_lazy_with(options))
}

/// Applies the migrations `livechat` was built with (`livechat migrate`, and `serve` unless
/// `--no-migrate`).
pub async fn migrate(pool: &PgPool) -> Result<(), GatewayError> {
    MIGRATOR
        .run(pool)
        .await
        .map_err(|e| GatewayError::Database(format!("migrations: {e}")))
}

impl Durable {
    /// Starts the writer, toucher and readers on `io` over `pool`.
    pub fn start(cfg: &DatabaseConfig, pool: PgPool, io: &IoPool) -> Self {
        let stats = Arc::new(DurableStats::default());
        let limits = (cfg.statement_timeout, cfg.acquire_timeout);
        let (writes, write_rx) = flume::bounded(cfg.queue_capacity.max(1));
        let (reads, read_rx) = flume::bounded(cfg.queue_capacity.max(1));
        let (touches, touch_rx) = flume::bounded(cfg.queue_capacity.max(1));
        io.spawn_service(writer::run_writer(
            pool.clone(),
            write_rx,
            io.stop_signal(),
            stats.clone(),
            cfg.batch_max.max(1),
            limits,
        ));
        io.spawn_service(writer::run_readers(
            pool.clone(),
            read_rx,
            io.stop_signal(),
            stats.clone(),
            limits,
        ));
        io.spawn_service(writer::run_toucher(
            pool,
            touch_rx,
            io.stop_signal(),
            stats.clone(),
            cfg.touch_interval,
            cfg.touch_capacity,
            limits,
        ));
        Self {
            writes,
            reads,
            touches,
            stats,
        }
    }

    /// The counters.
    pub fn stats(&self) -> &Arc<DurableStats> {
        &self.stats
    }

    /// Whether the database answers a `SELECT 1` within the statement and acquire timeouts
    /// (`/readyz`).
    pub async fn ping(&self) -> Result<(), GatewayError> {
        let (reply, rx) = flume::bounded(1);
        self.send_read(ReadReq::Ping { reply })?;
        answer(rx).await
    }

    fn send_write(&self, req: WriteReq) -> Result<(), GatewayError> {
        self.writes.try_send(req).map_err(|e| match e {
            flume::TrySendError::Full(_) => {
                self.stats.queue_full.fetch_add(1, Relaxed);
                GatewayError::Database("too many writes waiting; retry".into())
            }
            flume::TrySendError::Disconnected(_) => {
                GatewayError::Database("the database writer has stopped".into())
            }
        })
    }

    fn send_read(&self, req: ReadReq) -> Result<(), GatewayError> {
        self.reads.try_send(req).map_err(|e| match e {
            flume::TrySendError::Full(_) => {
                self.stats.queue_full.fetch_add(1, Relaxed);
                GatewayError::Database("too many reads waiting; retry".into())
            }
            flume::TrySendError::Disconnected(_) => {
                GatewayError::Database("the database reader has stopped".into())
            }
        })
    }
}

async fn answer<T>(rx: flume::Receiver<Result<T, String>>) -> Result<T, GatewayError> {
    match rx.recv_async().await {
        Ok(r) => r.map_err(GatewayError::Database),
        Err(_) => Err(GatewayError::Database(
            "the database service stopped before answering".into(),
        )),
    }
}

impl MetadataRepository for Durable {
    type Error = GatewayError;

    async fn write(&self, conversation: &ConversationMetadata) -> Result<Written, GatewayError> {
        let (reply, rx) = flume::bounded(1);
        self.send_write(WriteReq::Upsert {
            conversation: Box::new(conversation.clone()),
            reply,
        })?;
        answer(rx).await
    }

    async fn revert(
        &self,
        id: &str,
        before: Option<&ConversationMetadata>,
        written_version: u64,
    ) -> Result<(), GatewayError> {
        let (reply, rx) = flume::bounded(1);
        self.send_write(WriteReq::Revert {
            id: id.to_owned(),
            before: before.map(|b| Box::new(b.clone())),
            written_version,
            reply,
        })?;
        answer(rx).await
    }

    fn touch(&self, id: &str, at: Timestamp) {
        if self.touches.try_send((id.to_owned(), at)).is_err() {
            self.stats.touches_dropped.fetch_add(1, Relaxed);
        }
    }

    async fn get(&self, id: &str) -> Result<Option<ConversationMetadata>, GatewayError> {
        let (reply, rx) = flume::bounded(1);
        self.send_read(ReadReq::Get {
            id: id.to_owned(),
            reply,
        })?;
        answer(rx).await
    }

    async fn by_agent(
        &self,
        agent_id: &str,
        statuses: &[ConversationStatus],
        limit: usize,
    ) -> Result<Vec<ConversationMetadata>, GatewayError> {
        let (reply, rx) = flume::bounded(1);
        self.send_read(ReadReq::ByAgent {
            agent_id: agent_id.to_owned(),
            statuses: statuses.to_vec(),
            limit,
            reply,
        })?;
        answer(rx).await
    }
}

#[cfg(test)]
pub(crate) mod test_db;
#[cfg(test)]
mod tests;
