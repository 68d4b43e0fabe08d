//! The Redis backend: many `livechat` nodes share one Redis, the ephemeral source of truth.
//!
//! Lives on: every executor (one `RedisStore` each, over the executor's own pipelined
//! connection — no thread hop, no lock per command). Any executor of any node may call any
//! method; the engine still routes a conversation's commands to one executor per node, so a
//! node keeps its arrival order, and Redis orders the nodes.
//!
//! How a commit stays atomic (the argument in full, crash cases included, is in
//! ARCHITECTURE.md, "Redis key schema"):
//! - a message (`MetaWrite::Touch`) is one script on the conversation's slot: status check,
//!   dedupe, `seq`, append, trim, publish;
//! - a start is the index entries, then one script creating the conversation, in one write;
//! - every other step takes the conversation's lock, then: the agent claim (agent slot, refuses
//!   over the cap) or the queue add / expiry check (queue slot); then, with PostgreSQL
//!   configured, the version check and the durable row (a failed write refuses the step);
//!   then the conversation script (version compare-and-set, the only point of decision); then
//!   the queue removal, the agent release and the index updates. A refused compare-and-set or
//!   durable write undoes the first part; a crash in between leaves only states the
//!   housekeeping scan repairs (a queue entry of a conversation that is not QUEUED, a held slot
//!   without the assignment) or the next step rewrites (a durable row one step ahead).

pub mod codec;
pub mod failpoint;
pub mod gauges;
pub mod keys;
pub mod lock;
pub mod scan;
pub mod scripts;

use std::time::Duration;

use livechat_core::store::{
    ConversationStore, Cutoffs, Due, MessagePage, MetadataRepository, Written,
};
use livechat_core::{
    AgentChange, Author, ChatMessage, Commit, Committed, ConversationMetadata, ConversationStatus,
    MetaWrite, QueueChange, QueueEntry, Refusal, Timestamp,
};

use self::keys::Keys;
use self::lock::{Lock, LockPolicy};
use self::scripts::Scripts;
use crate::chat::wire::Json;
use crate::durable::Durable;
use crate::error::GatewayError;
use crate::redis::{Redis, Value};

/// Settings of the Redis backend.
#[derive(Debug, Clone)]
pub struct RedisStoreConfig {
    /// Key prefix (`chat.redis.key-prefix`).
    pub prefix: String,
    /// Messages kept per conversation (`chat.conversation.message-buffer`).
    pub message_buffer: usize,
    /// TTL of a conversation's keys, refreshed on every write (`chat.redis.conversation-ttl`).
    pub conversation_ttl: Duration,
    /// Presence expiry (`chat.redis.presence-ttl`).
    pub presence_ttl: Duration,
    /// Conversation locks.
    pub lock: LockPolicy,
}

/// One executor's handle on the shared Redis.
#[derive(Debug)]
pub struct RedisStore {
    conn: Redis,
    keys: Keys,
    scripts: Scripts,
    cfg: RedisStoreConfig,
    /// Where the slot repair's SCAN goes on next sweep.
    /// Where the slot repair's SCAN stopped: which shard, and its cursor there.
    scan_cursor: std::cell::Cell<(usize, u64)>,
    /// PostgreSQL, when configured: every lifecycle step is written there first.
    durable: Option<Durable>,
}

/// The outcome of the conversation script.
enum Scripted {
    Stored(Vec<u64>),
    Duplicate(ChatMessage),
    Refused(Refusal),
}

impl RedisStore {
    /// A store over `conn`.
    pub fn new(conn: Redis, cfg: RedisStoreConfig, durable: Option<Durable>) -> Self {
        Self {
            scripts: Scripts::publishing_with(conn.publish_command()),
            conn,
            keys: Keys::new(&cfg.prefix),
            cfg,
            scan_cursor: std::cell::Cell::new((0, 0)),
            durable,
        }
    }

    /// The connection (Pub/Sub subscriptions share it).
    pub fn conn(&self) -> &Redis {
        &self.conn
    }

    /// Key and channel names.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// The conversation script for `c` (see [`scripts::COMMIT`]).
    async fn conversation_step(&self, c: &Commit) -> Result<Scripted, GatewayError> {
        let id = &c.conversation_id;
        let mut args: Vec<String> = Vec::with_capacity(14 + 2 * c.append.len());
        match &c.write {
            MetaWrite::Replace {
                conversation,
                expected_version,
            } => {
                args.push("R".into());
                args.push(expected_version.to_string());
                args.push(
                    serde_json::to_string(&Json(&**conversation))
                        .map_err(|e| GatewayError::BadRequest(e.to_string()))?,
                );
                args.push(conversation.status.as_str().into());
                args.push(conversation.updated_at.millis().to_string());
            }
            MetaWrite::Touch { at, .. } => {
                args.extend(["T".into(), "0".into(), String::new(), String::new()]);
                args.push(at.millis().to_string());
            }
        }
        args.push(match &c.agent {
            Some(AgentChange::Claim { agent_id, .. }) => agent_id.clone(),
            Some(AgentChange::Release { .. }) => "-".into(),
            None => String::new(),
        });
        args.push(self.cfg.message_buffer.max(1).to_string());
        args.push(self.cfg.conversation_ttl.as_millis().to_string());
        args.push(self.keys.room_channel(id));
        match &c.write {
            MetaWrite::Replace { conversation, .. } => {
                args.push(conversation.customer.id.clone());
                args.push(
                    conversation
                        .agent
                        .as_ref()
                        .map(|a| a.id.clone())
                        .unwrap_or_default(),
                );
            }
            MetaWrite::Touch { author, .. } => {
                args.push(String::new());
                args.push(match author {
                    Some(Author::Customer(who)) => format!("c{who}"),
                    Some(Author::Agent(who)) => format!("a{who}"),
                    None => String::new(),
                });
            }
        }
        args.push(c.append.len().to_string());
        for m in &c.append {
            args.push(codec::message_without_seq(m)?);
            args.push(m.client_message_id.clone().unwrap_or_default());
        }
        args.push(c.notices.len().to_string());
        if let MetaWrite::Replace { conversation, .. } = &c.write {
            for &n in &c.notices {
                args.push(codec::notice(n, conversation)?);
            }
        }
        let keys = self.keys.conversation(id);
        let reply: Value = self.conn.eval(&self.scripts.commit, &keys, &args).await?;
        let items = codec::array(reply)?;
        let tag = items.first().and_then(codec::bytes).unwrap_or_default();
        Ok(match tag {
            b"ok" => Scripted::Stored(
                items[1..]
                    .iter()
                    .filter_map(codec::int)
                    .map(|n| n as u64)
                    .collect(),
            ),
            b"dup" => {
                let json = items.get(1).and_then(codec::bytes).unwrap_or_default();
                Scripted::Duplicate(codec::decode(json, &format!("a message of {id}"))?)
            }
            b"conflict" => Scripted::Refused(Refusal::Conflict),
            b"closed" => Scripted::Refused(Refusal::Closed),
            b"forbidden" => Scripted::Refused(Refusal::Forbidden),
            b"notfound" => Scripted::Refused(Refusal::NotFound),
            other => {
                return Err(GatewayError::Corrupt(format!(
                    "commit script answered {:?}",
                    String::from_utf8_lossy(other)
                )))
            }
        })
    }

    /// The stored messages of a successful conversation step.
    fn stored(c: Commit, seqs: Vec<u64>, position: Option<usize>) -> Committed {
        let messages = c
            .append
            .into_iter()
            .zip(seqs)
            .map(|(mut m, seq)| {
                m.seq = seq;
                m
            })
            .collect();
        Committed {
            messages,
            duplicate: None,
            position,
        }
    }

    async fn agent_step(
        &self,
        op: &str,
        agent: &str,
        conv: &str,
        max: usize,
        flag: bool,
    ) -> Result<[i64; 3], GatewayError> {
        let keys = [self.keys.agent_held(agent), self.keys.agent_history(agent)];
        let now = crate::chat::ids::now().millis().to_string();
        let args = [
            op,
            conv,
            &max.to_string(),
            &now,
            if flag { "1" } else { "0" },
        ];
        let reply: Vec<i64> = self.conn.eval(&self.scripts.agent, &keys, &args).await?;
        Ok([
            reply.first().copied().unwrap_or(0),
            reply.get(1).copied().unwrap_or(0),
            reply.get(2).copied().unwrap_or(0),
        ])
    }

    async fn queue_step(
        &self,
        op: &str,
        conv: &str,
        score: i64,
        entry: &str,
    ) -> Result<i64, GatewayError> {
        let keys = [self.keys.queue_pending(), self.keys.queue_entries()];
        let args = [
            op,
            conv,
            &score.to_string(),
            entry,
            &self.keys.queue_channel(),
        ];
        Ok(self.conn.eval(&self.scripts.queue, &keys, &args).await?)
    }

    /// Whether the conversation's stored version is `version` (after a commit whose answer was
    /// lost: did it apply?). `None` when Redis cannot tell us either.
    async fn has_version(&self, id: &str, version: u64) -> Option<bool> {
        let mut cmd = redis::cmd("HGET");
        cmd.arg(self.keys.meta(id)).arg("v");
        let v: Option<u64> = self.conn.query(&cmd).await.ok()?;
        Some(v == Some(version))
    }

    /// The cross-slot commit, holding the conversation's lock.
    async fn locked_commit(&self, c: Commit) -> Result<Result<Committed, Refusal>, GatewayError> {
        let id = c.conversation_id.clone();
        let MetaWrite::Replace {
            conversation,
            expected_version,
        } = &c.write
        else {
            return Err(GatewayError::Corrupt(
                "locked commit without a replace".into(),
            ));
        };
        let (next, expected) = ((**conversation).clone(), *expected_version);
        // 1. What must hold before the conversation changes.
        let mut undo_claim: Option<(String, bool)> = None;
        if let Some(AgentChange::Claim { agent_id, max }) = &c.agent {
            let [granted, newly, indexed] =
                self.agent_step("claim", agent_id, &id, *max, false).await?;
            if granted == 0 {
                return Ok(Err(Refusal::AtCapacity(*max)));
            }
            if newly == 1 {
                undo_claim = Some((agent_id.clone(), indexed == 1));
            }
            failpoint::hit("after-claim");
        }
        let mut position = None;
        let mut undo_add = false;
        match &c.queue {
            Some(QueueChange::Add(entry)) => {
                let json = codec::entry(entry)?;
                let at = entry.enqueued_at.millis();
                match self.queue_step("add", &id, at, &json).await {
                    Ok(p) => {
                        position = Some(p.max(0) as usize);
                        undo_add = true;
                    }
                    Err(e) => {
                        self.undo(&id, undo_claim, false).await;
                        return Err(e);
                    }
                }
            }
            Some(QueueChange::Expire(by)) => {
                match self.queue_step("check", &id, by.millis(), "").await {
                    Ok(1) => {}
                    Ok(_) => return Ok(Err(Refusal::Stale)),
                    Err(e) => return Err(e),
                }
            }
            _ => {}
        }
        // 2. The durable record (PostgreSQL, when configured), still under the lock: only if
        // Redis holds the version the step was decided on, so no other node can commit this
        // conversation between the check and the compare-and-set below (they all take this
        // lock), and a failed write refuses the step before Redis changed.
        let mut durable = None;
        if let Some(d) = &self.durable {
            match self.durable_step(d, &id, expected, &next).await {
                Ok(Ok(before)) => durable = Some((d, before)),
                Ok(Err(refusal)) => {
                    self.undo(&id, undo_claim, undo_add).await;
                    return Ok(Err(refusal));
                }
                Err(e) => {
                    self.undo(&id, undo_claim, undo_add).await;
                    return Err(e);
                }
            }
        }
        // 3. The decision: the conversation's compare-and-set.
        let step = self.conversation_step(&c).await;
        let applied = match &step {
            Ok(Scripted::Stored(_)) => true,
            Ok(_) => false,
            // The answer was lost: ask whether it applied; if Redis cannot say, keep the
            // claim and the queue entry (an over-count is repaired by the scan; an
            // under-count could let an agent past the cap).
            Err(_) => match self.has_version(&id, expected + 1).await {
                Some(v) => v,
                None => return step.map(|_| Err(Refusal::Conflict)),
            },
        };
        if !applied {
            self.undo(&id, undo_claim, undo_add).await;
            if let Some((d, before)) = durable {
                // Only when the lock's lease ran out mid-step (another node committed in
                // between): put the durable row back.
                if let Err(e) = d.revert(&id, Some(&before), next.version).await {
                    tracing::warn!(conversation = %id, error = %e, "durable row not put back; the next step rewrites it");
                }
            }
            return match step? {
                Scripted::Refused(r) => Ok(Err(r)),
                Scripted::Duplicate(_) | Scripted::Stored(_) => Ok(Err(Refusal::Conflict)),
            };
        }
        let seqs = match step {
            Ok(Scripted::Stored(seqs)) => seqs,
            _ => Vec::new(),
        };
        // 4. What follows from it; a failure here is repaired by the scan, not undone.
        failpoint::hit("after-decision");
        self.after_commit(&id, &c, &next).await;
        Ok(Ok(Self::stored(c, seqs, position)))
    }

    /// Under the conversation's lock: checks that Redis still holds `expected`, then writes
    /// `next` to the durable record. `Ok(Ok(before))`: written (with what Redis held, to put
    /// back if the step then fails); a refusal: Redis moved on (conflict: decide again).
    async fn durable_step(
        &self,
        d: &Durable,
        id: &str,
        expected: u64,
        next: &ConversationMetadata,
    ) -> Result<Result<ConversationMetadata, Refusal>, GatewayError> {
        let before = match self.load(id).await? {
            Some(b) if b.version == expected => b,
            Some(_) => return Ok(Err(Refusal::Conflict)),
            None => return Ok(Err(Refusal::NotFound)),
        };
        match d.write(next).await? {
            Written::Applied => Ok(Ok(before)),
            Written::Stale { stored } => Err(GatewayError::Stale(format!(
                "conversation {id} is at version {stored} in the database, ahead of Redis ({expected}); refusing to roll it back"
            ))),
        }
    }

    /// Undoes step 1 of a refused commit (best effort: what stays is repaired by the scan).
    async fn undo(&self, id: &str, claim: Option<(String, bool)>, added: bool) {
        if let Some((agent, drop_index)) = claim {
            if let Err(e) = self.agent_step("unclaim", &agent, id, 0, drop_index).await {
                tracing::warn!(conversation = %id, error = %e, "could not undo an agent claim; the scan will");
            }
        }
        if added {
            if let Err(e) = self.queue_step("remove", id, 0, "").await {
                tracing::warn!(conversation = %id, error = %e, "could not undo a queue add; the scan will");
            }
        }
    }

    /// Queue removal, agent release and index updates after a committed step, in one write.
    async fn after_commit(&self, id: &str, c: &Commit, next: &ConversationMetadata) {
        let remove = matches!(c.queue, Some(QueueChange::Remove | QueueChange::Expire(_)));
        let release = match &c.agent {
            Some(AgentChange::Release { agent_id }) => Some(agent_id.as_str()),
            _ => None,
        };
        let mut index = redis::pipe();
        if next.status == ConversationStatus::Assigned {
            index
                .cmd("ZADD")
                .arg(self.keys.assigned())
                .arg(next.updated_at.millis())
                .arg(id)
                .ignore();
        } else {
            index.cmd("ZREM").arg(self.keys.assigned()).arg(id).ignore();
        }
        if next.status == ConversationStatus::Closed {
            let closed = next.closed_at.unwrap_or(next.updated_at).millis();
            index.cmd("ZREM").arg(self.keys.open()).arg(id).ignore();
            index.cmd("ZREM").arg(self.keys.idle()).arg(id).ignore();
            index
                .cmd("ZADD")
                .arg(self.keys.closed())
                .arg(closed)
                .arg(id)
                .ignore();
        } else {
            index
                .cmd("ZADD")
                .arg(self.keys.idle())
                .arg(next.updated_at.millis())
                .arg(id)
                .ignore();
        }
        let q = remove.then(|| self.queue_step("remove", id, 0, ""));
        let a = release.map(|agent| self.agent_step("release", agent, id, 0, false));
        let results = futures_lite::future::zip(
            async {
                match q {
                    Some(f) => f.await.map(|_| ()),
                    None => Ok(()),
                }
            },
            async {
                match a {
                    Some(f) => f.await.map(|_| ()),
                    None => Ok(()),
                }
            },
        );
        let idx = self.pipeline(&index);
        let ((q, a), i) = futures_lite::future::zip(results, idx).await;
        for r in [q, a, i] {
            if let Err(e) = r {
                tracing::warn!(conversation = %id, error = %e, "follow-up of a commit failed; the scan repairs it");
            }
        }
    }

    /// Sends a pipeline of `ignore`d commands and waits for all replies.
    async fn pipeline(&self, p: &redis::Pipeline) -> Result<(), GatewayError> {
        let futures: Vec<_> = p.cmd_iter().map(|c| self.conn.query_value(c)).collect();
        for f in futures {
            f.await?;
        }
        Ok(())
    }

    async fn lock(&self, id: &str) -> Result<Lock, GatewayError> {
        Lock::acquire(&self.conn, self.keys.lock(id), self.cfg.lock).await
    }

    async fn unlock(&self, lock: Lock) {
        if let Err(e) = lock.release(&self.conn, &self.scripts).await {
            tracing::warn!(error = %e, "lock not released; its lease frees it");
        }
    }
}

impl ConversationStore for RedisStore {
    type Error = GatewayError;

    async fn load(&self, id: &str) -> Result<Option<ConversationMetadata>, GatewayError> {
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(self.keys.meta(id)).arg("meta").arg("up");
        let v: Vec<Option<Vec<u8>>> = self.conn.query(&cmd).await?;
        match v.as_slice() {
            [Some(meta), up] => Ok(Some(codec::metadata(id, meta, up.as_deref())?)),
            _ => Ok(None),
        }
    }

    async fn commit(&self, c: Commit) -> Result<Result<Committed, Refusal>, GatewayError> {
        match &c.write {
            // A message: one script, one round trip.
            MetaWrite::Touch { .. } => Ok(match self.conversation_step(&c).await? {
                Scripted::Stored(seqs) => Ok(Self::stored(c, seqs, None)),
                Scripted::Duplicate(m) => Ok(Committed {
                    duplicate: Some(m),
                    ..Committed::default()
                }),
                Scripted::Refused(r) => Err(r),
            }),
            // A start: the index entries first (a crash after them leaves entries the scan
            // drops), then the conversation — one write.
            MetaWrite::Replace {
                expected_version: 0,
                conversation,
            } if c.queue.is_none() && c.agent.is_none() => {
                let (id, created) = (c.conversation_id.as_str(), conversation.created_at.millis());
                // The durable row first: a start the database did not take does not happen.
                if let Some(d) = &self.durable {
                    if let Written::Stale { stored } = d.write(conversation).await? {
                        return Err(GatewayError::Stale(format!(
                            "conversation {id} already exists in the database (version {stored})"
                        )));
                    }
                }
                let mut index = redis::pipe();
                index
                    .cmd("ZADD")
                    .arg(self.keys.open())
                    .arg(created)
                    .arg(id)
                    .ignore();
                index
                    .cmd("ZADD")
                    .arg(self.keys.idle())
                    .arg(created)
                    .arg(id)
                    .ignore();
                let idx = self.pipeline(&index);
                let step = self.conversation_step(&c);
                let (idx, step) = futures_lite::future::zip(idx, step).await;
                let outcome = idx.and(step).map(|step| match step {
                    Scripted::Stored(seqs) => Ok(seqs),
                    Scripted::Refused(r) => Err(r),
                    Scripted::Duplicate(_) => Err(Refusal::Conflict),
                });
                if let (Some(d), Err(_) | Ok(Err(_))) = (&self.durable, &outcome) {
                    if let Err(e) = d.revert(id, None, conversation.version).await {
                        tracing::warn!(conversation = %id, error = %e, "durable row of a failed start not removed");
                    }
                }
                Ok(outcome?.map(|seqs| Self::stored(c, seqs, None)))
            }
            _ => {
                let lock = self.lock(&c.conversation_id).await?;
                let result = self.locked_commit(c).await;
                self.unlock(lock).await;
                result
            }
        }
    }

    async fn messages(
        &self,
        id: &str,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Option<(ConversationMetadata, MessagePage)>, GatewayError> {
        let keys = [
            self.keys.meta(id),
            self.keys.messages(id),
            self.keys.seq(id),
        ];
        let (mode, after) = match after {
            Some(a) => ("after", a.to_string()),
            None => ("latest", "0".to_string()),
        };
        let args = [mode, &after, &limit.to_string()];
        let reply: Value = self.conn.eval(&self.scripts.read, &keys, &args).await?;
        let items = codec::array(reply)?;
        let [meta, up, complete, last, rest @ ..] = items.as_slice() else {
            return Ok(None);
        };
        let meta = codec::metadata(id, codec::bytes(meta).unwrap_or_default(), codec::bytes(up))?;
        let what = format!("a message of {id}");
        let messages = rest
            .iter()
            .map(|m| codec::decode(codec::bytes(m).unwrap_or_default(), &what))
            .collect::<Result<Vec<ChatMessage>, _>>()?;
        let page = MessagePage {
            messages,
            complete: codec::int(complete) == Some(1),
            last_seq: codec::int(last)
                .and_then(|n| u64::try_from(n).ok())
                .unwrap_or(0),
        };
        Ok(Some((meta, page)))
    }

    async fn queue_page(&self, page: usize, size: usize) -> Result<Vec<QueueEntry>, GatewayError> {
        // Redis ranks are signed 64-bit: a page past them (a client asking for page 10^19)
        // is past the end of any queue, not a Redis error.
        let rank = |n: usize| i64::try_from(n).ok();
        let start = page.saturating_mul(size);
        let Some((start, stop)) = rank(start).zip(rank(start.saturating_add(size))) else {
            return Ok(Vec::new());
        };
        let stop = stop - 1;
        let mut cmd = redis::cmd("ZRANGE");
        cmd.arg(self.keys.queue_pending()).arg(start).arg(stop);
        let ids: Vec<String> = self.conn.query(&cmd).await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(self.keys.queue_entries()).arg(&ids);
        let entries: Vec<Option<Vec<u8>>> = self.conn.query(&cmd).await?;
        entries
            .into_iter()
            .flatten()
            .map(|e| codec::decode(&e, "a queue entry"))
            .collect()
    }

    async fn queue_position(&self, id: &str) -> Result<Option<usize>, GatewayError> {
        let mut cmd = redis::cmd("ZRANK");
        cmd.arg(self.keys.queue_pending()).arg(id);
        let rank: Option<usize> = self.conn.query(&cmd).await?;
        Ok(rank)
    }

    async fn queue_ids(&self, limit: usize) -> Result<Vec<String>, GatewayError> {
        // The ranks alone (no entries): live positions need only the order. A limit past
        // Redis's signed 64-bit ranks is the whole queue (stop -1).
        let Some(last) = limit.checked_sub(1) else {
            return Ok(Vec::new());
        };
        let stop = i64::try_from(last).unwrap_or(-1);
        let mut cmd = redis::cmd("ZRANGE");
        cmd.arg(self.keys.queue_pending()).arg(0).arg(stop);
        Ok(self.conn.query(&cmd).await?)
    }

    async fn agent_conversations(
        &self,
        agent_id: &str,
        statuses: &[ConversationStatus],
    ) -> Result<Vec<ConversationMetadata>, GatewayError> {
        let mut cmd = redis::cmd("ZRANGE");
        cmd.arg(self.keys.agent_history(agent_id)).arg(0).arg(-1);
        let ids: Vec<String> = self.conn.query(&cmd).await?;
        // One write for all of them.
        let reads: Vec<_> = ids
            .iter()
            .map(|id| {
                let mut cmd = redis::cmd("HMGET");
                cmd.arg(self.keys.meta(id)).arg("meta").arg("up").arg("act");
                self.conn.query::<Vec<Option<Vec<u8>>>>(&cmd)
            })
            .collect();
        let mut out = Vec::with_capacity(ids.len());
        for (id, read) in ids.iter().zip(reads) {
            let fields = read.await?;
            let [Some(meta), up, act] = fields.as_slice() else {
                continue;
            };
            // One corrupt conversation is an error for it, not for the agent's whole list.
            let Ok(m) = codec::metadata(id, meta, up.as_deref()) else {
                continue;
            };
            // The index may name a conversation the agent never got: a claim whose node died
            // before the decision (another agent won it). Only the metadata says whose it is.
            let theirs = m.agent.as_ref().is_some_and(|a| a.id == agent_id);
            if theirs && (statuses.is_empty() || statuses.contains(&m.status)) {
                let act = act
                    .as_deref()
                    .and_then(|a| std::str::from_utf8(a).ok()?.parse::<u64>().ok())
                    .unwrap_or(0);
                out.push((m, act));
            }
        }
        // Newest activity first; same-millisecond ties by Redis's microsecond clock.
        out.sort_by(|(a, a_at), (b, b_at)| {
            b.updated_at
                .cmp(&a.updated_at)
                .then_with(|| b_at.cmp(a_at))
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(out.into_iter().map(|(m, _)| m).collect())
    }

    async fn touch_presence(
        &self,
        participant_id: &str,
        now: Timestamp,
    ) -> Result<(), GatewayError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.keys.presence(participant_id))
            .arg(now.millis())
            .arg("PX")
            .arg(self.cfg.presence_ttl.as_millis() as u64);
        let _: () = self.conn.query(&cmd).await?;
        Ok(())
    }

    async fn last_seen(&self, participant_id: &str) -> Result<Option<Timestamp>, GatewayError> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.keys.presence(participant_id));
        let at: Option<i64> = self.conn.query(&cmd).await?;
        Ok(at.map(Timestamp))
    }

    async fn due(&self, c: Cutoffs) -> Result<Vec<Due>, GatewayError> {
        self.scan(c).await
    }

    async fn forget(&self, id: &str, closed_before: Timestamp) -> Result<bool, GatewayError> {
        self.forget_closed(id, closed_before).await
    }

    async fn try_lead(&self, lease_ms: u64) -> Result<bool, GatewayError> {
        let lease = Duration::from_millis(lease_ms.max(1));
        Ok(
            Lock::try_acquire(&self.conn, self.keys.housekeeping_lock(), lease)
                .await?
                .is_some(),
        )
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
