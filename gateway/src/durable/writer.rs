//! The PostgreSQL side of the IO pool: the group-committing writer, the coalescing toucher
//! and the readers. Runs on: the tokio IO pool (never on an executor).
//!
//! Group commit: the writer takes one request, then everything else already waiting (up to
//! `batch-max` rows, each conversation once), and writes them with one statement — one
//! implicit transaction, one round trip, one WAL flush. While it runs, new requests queue up
//! and form the next batch, so under load a transaction carries many rows and at rest a
//! request waits for nothing.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use livechat_core::store::Written;
use livechat_core::{ConversationMetadata, ConversationStatus, Timestamp};
use serde_json::Value;
use sqlx::PgPool;

use super::row::{self, Row};
use super::stats::DurableStats;
use crate::iopool::Stop;

/// A write waiting in a batch, with where its answer goes.
type Pending = (
    Box<ConversationMetadata>,
    flume::Sender<Result<Written, String>>,
);

/// What an executor asks the writer.
#[derive(Debug)]
pub enum WriteReq {
    /// Write the conversation as of its version.
    Upsert {
        /// The metadata after the step.
        conversation: Box<ConversationMetadata>,
        /// The answer.
        reply: flume::Sender<Result<Written, String>>,
    },
    /// Undo a write (see `MetadataRepository::revert`).
    Revert {
        /// Conversation.
        id: String,
        /// The row before the write (`None`: delete, it was the start).
        before: Option<Box<ConversationMetadata>>,
        /// The version the write gave the row.
        written_version: u64,
        /// The answer.
        reply: flume::Sender<Result<(), String>>,
    },
}

/// What an executor asks the readers.
#[derive(Debug)]
pub enum ReadReq {
    /// One conversation.
    Get {
        /// Conversation.
        id: String,
        /// The answer.
        reply: flume::Sender<Result<Option<ConversationMetadata>, String>>,
    },
    /// An agent's conversations.
    ByAgent {
        /// Agent.
        agent_id: String,
        /// Statuses (empty = all).
        statuses: Vec<ConversationStatus>,
        /// At most.
        limit: usize,
        /// The answer.
        reply: flume::Sender<Result<Vec<ConversationMetadata>, String>>,
    },
    /// `SELECT 1`: whether the database answers (`/readyz`).
    Ping {
        /// The answer.
        reply: flume::Sender<Result<(), String>>,
    },
}

/// How long the pool side waits for one statement before answering an error itself (the
/// server's `statement_timeout` plus a margin, for a server that stopped answering at all).
fn deadline(statement_timeout: Duration, acquire: Duration) -> Duration {
    statement_timeout + acquire + Duration::from_millis(500)
}

/// The writer loop: until shutdown (or every sender is gone) and the queue is drained.
pub async fn run_writer(
    pool: PgPool,
    rx: flume::Receiver<WriteReq>,
    mut stop: Stop,
    stats: Arc<DurableStats>,
    batch_max: usize,
    limits: (Duration, Duration),
) {
    let mut waiting: VecDeque<WriteReq> = VecDeque::new();
    let wait = deadline(limits.0, limits.1);
    loop {
        if waiting.is_empty() {
            match stop.next(&rx).await {
                Some(r) => waiting.push_back(r),
                None => return,
            }
        }
        while waiting.len() < batch_max * 2 {
            match rx.try_recv() {
                Ok(r) => waiting.push_back(r),
                Err(_) => break,
            }
        }
        match waiting.pop_front() {
            Some(WriteReq::Revert {
                id,
                before,
                written_version,
                reply,
            }) => {
                let began = std::time::Instant::now();
                let r = revert(&pool, &id, before.as_deref(), written_version, wait).await;
                stats.latency.observe(began.elapsed());
                if let Err(e) = &r {
                    stats.write_errors.fetch_add(1, Relaxed);
                    tracing::warn!(conversation = %id, error = %e, "could not revert a durable write; the next transition rewrites the row");
                } else {
                    stats.reverts.fetch_add(1, Relaxed);
                }
                let _ = reply.send(r);
            }
            Some(first @ WriteReq::Upsert { .. }) => {
                waiting.push_front(first);
                let batch = take_batch(&mut waiting, batch_max);
                upsert(&pool, batch, &stats, wait).await;
            }
            None => {}
        }
    }
}

/// The leading run of upserts, each conversation once (a second write of one conversation
/// waits for the next batch: one statement cannot update a row twice).
fn take_batch(waiting: &mut VecDeque<WriteReq>, max: usize) -> Vec<Pending> {
    let mut batch = Vec::new();
    let mut ids = HashSet::new();
    while batch.len() < max {
        match waiting.front() {
            Some(WriteReq::Upsert { conversation, .. }) if !ids.contains(&conversation.id) => {}
            _ => break,
        }
        if let Some(WriteReq::Upsert {
            conversation,
            reply,
        }) = waiting.pop_front()
        {
            ids.insert(conversation.id.clone());
            batch.push((conversation, reply));
        }
    }
    batch
}

async fn upsert(pool: &PgPool, batch: Vec<Pending>, stats: &DurableStats, wait: Duration) {
    let rows: Vec<Value> = batch.iter().map(|(c, _)| row::to_json(c)).collect();
    let began = std::time::Instant::now();
    let result = tokio::time::timeout(
        wait,
        sqlx::query_as::<_, (String, bool, Option<i64>)>(row::UPSERT)
            .bind(Value::Array(rows))
            .fetch_all(pool),
    )
    .await;
    stats.latency.observe(began.elapsed());
    let lines = match result {
        Ok(Ok(lines)) => lines,
        Ok(Err(e)) => return fail(batch, stats, e.to_string()),
        Err(_) => return fail(batch, stats, format!("no answer within {wait:?}")),
    };
    stats.commits.fetch_add(1, Relaxed);
    stats.rows.fetch_add(batch.len() as u64, Relaxed);
    let outcome: HashMap<String, (bool, Option<i64>)> = lines
        .into_iter()
        .map(|(id, applied, stored)| (id, (applied, stored)))
        .collect();
    for (c, reply) in batch {
        let answer = match outcome.get(&c.id) {
            Some((true, _)) => Ok(Written::Applied),
            Some((false, stored)) => {
                stats.stale.fetch_add(1, Relaxed);
                Ok(Written::Stale {
                    stored: stored.unwrap_or(0).max(0) as u64,
                })
            }
            None => Err("the database did not answer for this row".to_owned()),
        };
        let _ = reply.send(answer);
    }
}

fn fail(batch: Vec<Pending>, stats: &DurableStats, error: String) {
    stats.write_errors.fetch_add(1, Relaxed);
    tracing::warn!(rows = batch.len(), error = %error, "durable write failed; the steps are refused (503)");
    for (_, reply) in batch {
        let _ = reply.send(Err(error.clone()));
    }
}

async fn revert(
    pool: &PgPool,
    id: &str,
    before: Option<&ConversationMetadata>,
    written_version: u64,
    wait: Duration,
) -> Result<(), String> {
    let q = match before {
        Some(b) => sqlx::query(row::REVERT)
            .bind(id)
            .bind(written_version as i64)
            .bind(row::to_json(b)),
        None => sqlx::query(row::UNSTART)
            .bind(id)
            .bind(written_version as i64),
    };
    match tokio::time::timeout(wait, q.execute(pool)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {wait:?}")),
    }
}

/// The reader loop: every read runs as its own task (the pool bounds how many at once).
pub async fn run_readers(
    pool: PgPool,
    rx: flume::Receiver<ReadReq>,
    mut stop: Stop,
    stats: Arc<DurableStats>,
    limits: (Duration, Duration),
) {
    let wait = deadline(limits.0, limits.1);
    while let Some(req) = stop.next(&rx).await {
        let (pool, stats) = (pool.clone(), stats.clone());
        tokio::spawn(async move {
            if let ReadReq::Ping { reply } = req {
                // Not a read of the table: not counted with them.
                let _ = reply.send(ping(&pool, wait).await);
                return;
            }
            stats.reads.fetch_add(1, Relaxed);
            let began = std::time::Instant::now();
            let _timed = Timed(&stats.latency, began);
            match req {
                ReadReq::Ping { .. } => {}
                ReadReq::Get { id, reply } => {
                    let r = tokio::time::timeout(
                        wait,
                        sqlx::query_as::<_, Row>(row::SELECT_ONE)
                            .bind(&id)
                            .fetch_optional(&pool),
                    )
                    .await;
                    let answer = match r {
                        Ok(Ok(row)) => Ok(row.and_then(|r| decode(r, &stats))),
                        Ok(Err(e)) => Err(e.to_string()),
                        Err(_) => Err(format!("no answer within {wait:?}")),
                    };
                    let _ = reply.send(answer.inspect_err(|_| {
                        stats.read_errors.fetch_add(1, Relaxed);
                    }));
                }
                ReadReq::ByAgent {
                    agent_id,
                    statuses,
                    limit,
                    reply,
                } => {
                    let names: Vec<&str> = statuses.iter().map(|s| s.as_str()).collect();
                    let r = tokio::time::timeout(
                        wait,
                        sqlx::query_as::<_, Row>(row::SELECT_BY_AGENT)
                            .bind(&agent_id)
                            .bind(&names)
                            .bind(limit.min(i64::MAX as usize) as i64)
                            .fetch_all(&pool),
                    )
                    .await;
                    let answer = match r {
                        Ok(Ok(rows)) => {
                            Ok(rows.into_iter().filter_map(|r| decode(r, &stats)).collect())
                        }
                        Ok(Err(e)) => Err(e.to_string()),
                        Err(_) => Err(format!("no answer within {wait:?}")),
                    };
                    let _ = reply.send(answer.inspect_err(|_| {
                        stats.read_errors.fetch_add(1, Relaxed);
                    }));
                }
            }
        });
    }
}

/// Observes the time since it was made into a histogram when dropped (a read's task, whichever
/// way it ends).
struct Timed<'a>(&'a crate::metrics::SharedHistogram, std::time::Instant);

impl Drop for Timed<'_> {
    fn drop(&mut self) {
        self.0.observe(self.1.elapsed());
    }
}

/// `SELECT 1` within `wait` (a pooled connection, so it also proves the pool can connect).
async fn ping(pool: &PgPool, wait: Duration) -> Result<(), String> {
    match tokio::time::timeout(wait, sqlx::query("SELECT 1").execute(pool)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {wait:?}")),
    }
}

fn decode(r: Row, stats: &DurableStats) -> Option<ConversationMetadata> {
    let m = r.into_metadata();
    if m.is_none() {
        stats.read_errors.fetch_add(1, Relaxed);
        tracing::error!("a conversations row holds values livechat never writes; skipped");
    }
    m
}

/// The toucher loop: collects activity per conversation and writes it once per `interval`
/// (one statement for all); a failed write keeps the entries for the next round. At shutdown
/// it writes what it holds once more and ends.
///
/// It never waits on the channel: it empties it every [`TOUCH_DRAIN`] instead. A receiver
/// parked on the channel would be woken by every stored message (a futex call on the executor
/// and two context switches each, for an update that is written once a second anyway).
pub async fn run_toucher(
    pool: PgPool,
    rx: flume::Receiver<(String, Timestamp)>,
    mut stop: Stop,
    stats: Arc<DurableStats>,
    interval: Duration,
    capacity: usize,
    limits: (Duration, Duration),
) {
    let wait = deadline(limits.0, limits.1);
    let mut pending: HashMap<String, i64> = HashMap::new();
    let interval = interval.max(Duration::from_millis(10));
    let mut last_write = tokio::time::Instant::now();
    loop {
        stop.pause(TOUCH_DRAIN.min(interval)).await;
        for (id, at) in rx.try_iter() {
            note(&mut pending, id, at.millis(), capacity, &stats);
        }
        if stop.is_stopping() {
            write_touches(&pool, &mut pending, &stats, wait).await;
            return;
        }
        if last_write.elapsed() >= interval {
            write_touches(&pool, &mut pending, &stats, wait).await;
            last_write = tokio::time::Instant::now();
        }
    }
}

/// How often the toucher empties its channel: at 10,000 messages/s, 500 entries of the
/// channel's `chat.database.queue-capacity` (8,192 by default).
const TOUCH_DRAIN: Duration = Duration::from_millis(50);

async fn write_touches(
    pool: &PgPool,
    pending: &mut HashMap<String, i64>,
    stats: &DurableStats,
    wait: Duration,
) {
    if pending.is_empty() {
        return;
    }
    let rows: Vec<Value> = pending
        .iter()
        .map(|(id, at)| serde_json::json!({"id": id, "at": at}))
        .collect();
    let write = sqlx::query(row::TOUCH)
        .bind(Value::Array(rows))
        .execute(pool);
    let began = std::time::Instant::now();
    let result = tokio::time::timeout(wait, write).await;
    stats.latency.observe(began.elapsed());
    match result {
        Ok(Ok(_)) => {
            stats
                .touches_written
                .fetch_add(pending.len() as u64, Relaxed);
            pending.clear();
        }
        Ok(Err(e)) => {
            stats.write_errors.fetch_add(1, Relaxed);
            tracing::warn!(conversations = pending.len(), error = %e, "activity not written yet; retried next interval");
        }
        Err(_) => {
            stats.write_errors.fetch_add(1, Relaxed);
            tracing::warn!(
                conversations = pending.len(),
                "activity write timed out; retried next interval"
            );
        }
    }
}

fn note(
    pending: &mut HashMap<String, i64>,
    id: String,
    at: i64,
    capacity: usize,
    stats: &DurableStats,
) {
    if let Some(t) = pending.get_mut(&id) {
        *t = (*t).max(at);
    } else if pending.len() < capacity {
        pending.insert(id, at);
    } else {
        stats.touches_dropped.fetch_add(1, Relaxed);
    }
}
