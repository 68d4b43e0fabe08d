//! Housekeeping's side of the Redis backend: the scan that finds what is due (queue timeouts,
//! max duration, inactivity, retention), the repairs of states a crash between two steps of a
//! cross-slot commit can leave, and forgetting a closed conversation.
//!
//! Every scan is bounded (`Cutoffs::limit` per kind) and every repair re-checks under the
//! conversation's lock, taken without waiting (a busy conversation is left for next time).

use livechat_core::store::{ConversationStore, Cutoffs, Due};
use livechat_core::{ConversationStatus, ExpireReason, Timestamp};

use super::lock::Lock;
use super::RedisStore;
use crate::error::GatewayError;

impl RedisStore {
    /// What is due, and repairs on the way.
    pub(super) async fn scan(&self, c: Cutoffs) -> Result<Vec<Due>, GatewayError> {
        let mut due = Vec::new();
        let queued = self
            .range(&self.keys.queue_pending(), c.queued_before, c.limit)
            .await?;
        due.extend(queued.into_iter().map(Due::QueueTimeout));
        let old = self
            .range(&self.keys.open(), c.created_before, c.limit)
            .await?;
        due.extend(
            old.into_iter()
                .map(|id| Due::Expire(id, ExpireReason::MaxDuration)),
        );
        // Inactivity: the idle index holds the activity of the last lifecycle step; messages
        // only touch the conversation hash, so candidates are re-checked and re-scored.
        let candidates = self
            .range(&self.keys.idle(), c.idle_before, c.limit)
            .await?;
        let states = self.states(&candidates).await?;
        for (id, state) in candidates.into_iter().zip(states) {
            match state {
                Some((status, up)) if status != ConversationStatus::Closed => {
                    if up <= c.idle_before {
                        due.push(Due::Expire(id, ExpireReason::Inactivity));
                    } else {
                        self.zadd(&self.keys.idle(), up.millis(), &id).await?;
                    }
                }
                // Closed or gone: not idle any more (a crash after a close's commit).
                _ => {
                    self.zrem(
                        &[self.keys.idle(), self.keys.open(), self.keys.assigned()],
                        &id,
                    )
                    .await?
                }
            }
        }
        let closed = self
            .range(&self.keys.closed(), c.closed_before, c.limit)
            .await?;
        due.extend(closed.into_iter().map(Due::Forget));
        self.repair_queue(c.limit).await?;
        self.repair_slots(c.limit).await?;
        Ok(due)
    }

    /// Members of a sorted set scored at or before `by`, oldest first, at most `limit`.
    async fn range(
        &self,
        key: &str,
        by: Timestamp,
        limit: usize,
    ) -> Result<Vec<String>, GatewayError> {
        let mut cmd = redis::cmd("ZRANGE");
        cmd.arg(key)
            .arg("-inf")
            .arg(by.millis())
            .arg("BYSCORE")
            .arg("LIMIT")
            .arg(0)
            .arg(limit);
        Ok(self.conn.query(&cmd).await?)
    }

    /// Status and activity of each conversation (one write for all); `None` when it is gone.
    async fn states(
        &self,
        ids: &[String],
    ) -> Result<Vec<Option<(ConversationStatus, Timestamp)>>, GatewayError> {
        let reads: Vec<_> = ids
            .iter()
            .map(|id| {
                let mut cmd = redis::cmd("HMGET");
                cmd.arg(self.keys.meta(id)).arg("st").arg("up");
                self.conn.query::<(Option<String>, Option<i64>)>(&cmd)
            })
            .collect();
        let mut out = Vec::with_capacity(ids.len());
        for read in reads {
            let (st, up) = read.await?;
            out.push(
                st.and_then(|s| ConversationStatus::parse(&s))
                    .map(|s| (s, Timestamp(up.unwrap_or(0)))),
            );
        }
        Ok(out)
    }

    async fn zadd(&self, key: &str, score: i64, id: &str) -> Result<(), GatewayError> {
        let mut cmd = redis::cmd("ZADD");
        cmd.arg(key).arg(score).arg(id);
        let _: i64 = self.conn.query(&cmd).await?;
        Ok(())
    }

    async fn zrem(&self, keys: &[String], id: &str) -> Result<(), GatewayError> {
        for key in keys {
            let mut cmd = redis::cmd("ZREM");
            cmd.arg(key).arg(id);
            let _: i64 = self.conn.query(&cmd).await?;
        }
        Ok(())
    }

    /// Queue entries whose conversation is not QUEUED (a crash after an accept's or close's
    /// commit, before the removal; or after a queue add whose commit never came) are removed.
    async fn repair_queue(&self, limit: usize) -> Result<(), GatewayError> {
        let mut cmd = redis::cmd("ZRANGE");
        cmd.arg(self.keys.queue_pending())
            .arg(0)
            .arg(limit.saturating_sub(1));
        let ids: Vec<String> = self.conn.query(&cmd).await?;
        let states = self.states(&ids).await?;
        for (id, state) in ids.into_iter().zip(states) {
            if matches!(state, Some((ConversationStatus::Queued, _))) {
                continue;
            }
            // Under the lock: an enqueue in flight holds it until its commit is done.
            let Some(lock) =
                Lock::try_acquire(&self.conn, self.keys.lock(&id), self.cfg.lock.lease).await?
            else {
                continue;
            };
            let still = self.states(std::slice::from_ref(&id)).await?;
            if !matches!(still.first(), Some(Some((ConversationStatus::Queued, _)))) {
                tracing::info!(conversation = %id, "removing a stale queue entry");
                self.queue_step("remove", &id, 0, "").await?;
            }
            self.unlock(lock).await;
        }
        Ok(())
    }

    /// Agent slots whose conversation is not assigned to that agent (a crash after a close's or
    /// re-queue's commit, before the release; or after a claim whose commit never came) are
    /// freed. Walks the agents' slot sets with SCAN, about `limit` keys per sweep, resuming
    /// where the last sweep stopped. SCAN walks one server's keys: on a cluster, one master
    /// after the other (a sweep goes on to the next master when one is done, each at most once).
    async fn repair_slots(&self, limit: usize) -> Result<(), GatewayError> {
        let pattern = self.keys.agent_held("*");
        let shards = self.conn.shards().await?;
        for _ in 0..shards.len() {
            let (shard, cursor) = self.scan_cursor.get();
            let shard = if shard < shards.len() { shard } else { 0 };
            let mut cmd = redis::cmd("SCAN");
            cmd.arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(limit.max(10));
            let (next, keys): (u64, Vec<String>) = shards[shard].query(&cmd).await?;
            let done = next == 0;
            self.scan_cursor
                .set(if done { (shard + 1, 0) } else { (shard, next) });
            for key in keys {
                if let Some(agent) = self.keys.agent_of_held(&key) {
                    self.repair_agent(&key, agent).await?;
                }
            }
            if !done {
                break;
            }
        }
        Ok(())
    }

    /// Frees the slots in `key` (agent `agent`'s set) whose conversation is not assigned to
    /// the agent, each under its conversation's lock.
    async fn repair_agent(&self, key: &str, agent: &str) -> Result<(), GatewayError> {
        let mut members = redis::cmd("SMEMBERS");
        members.arg(key);
        let held: Vec<String> = self.conn.query(&members).await?;
        for id in held {
            if self.assigned_to(&id).await?.as_deref() == Some(agent) {
                continue;
            }
            let Some(lock) =
                Lock::try_acquire(&self.conn, self.keys.lock(&id), self.cfg.lock.lease).await?
            else {
                continue;
            };
            if self.assigned_to(&id).await?.as_deref() != Some(agent) {
                tracing::info!(agent, conversation = %id, "freeing a slot without an assignment");
                self.agent_step("release", agent, &id, 0, false).await?;
            }
            self.unlock(lock).await;
        }
        Ok(())
    }

    async fn assigned_to(&self, id: &str) -> Result<Option<String>, GatewayError> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.keys.assignment(id));
        Ok(self.conn.query(&cmd).await?)
    }

    /// Forgets a conversation closed at or before `before`: its keys, its index entries, its
    /// place in the agent's history.
    pub(super) async fn forget_closed(
        &self,
        id: &str,
        before: Timestamp,
    ) -> Result<bool, GatewayError> {
        let lock = self.lock(id).await?;
        let result = async {
            let Some(meta) = self.load(id).await? else {
                // Already gone (TTL): drop the index entries that still name it.
                self.zrem(
                    &[
                        self.keys.closed(),
                        self.keys.open(),
                        self.keys.idle(),
                        self.keys.assigned(),
                    ],
                    id,
                )
                .await?;
                return Ok(false);
            };
            let closed = meta.status == ConversationStatus::Closed
                && meta.closed_at.is_some_and(|at| at <= before);
            if !closed {
                return Ok(false);
            }
            let mut del = redis::cmd("DEL");
            for key in self.keys.conversation(id) {
                del.arg(key);
            }
            let _: i64 = self.conn.query(&del).await?;
            self.zrem(
                &[
                    self.keys.closed(),
                    self.keys.open(),
                    self.keys.idle(),
                    self.keys.assigned(),
                ],
                id,
            )
            .await?;
            if let Some(agent) = &meta.agent {
                self.zrem(&[self.keys.agent_history(&agent.id)], id).await?;
            }
            Ok(true)
        }
        .await;
        self.unlock(lock).await;
        result
    }
}
