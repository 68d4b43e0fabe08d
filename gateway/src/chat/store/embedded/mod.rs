//! The embedded single-node backend: conversation state in executor-owned memory, the zero-config
//! default.
//!
//! Lives on: every executor (one `EmbeddedStore` each, registered as a `Node` extension so other
//! executors' closures find it). Who holds what: a conversation's cell → its owner executor
//! (`ShardMap::owner(id)`); the queue, agent slots and agent index → the queue owner
//! (`ShardMap::owner(QUEUE_KEY)`); a participant's presence → `ShardMap::owner(participant id)`.
//!
//! Atomicity of a commit: the conversation part is checked and applied on its owner without an
//! await in between. A commit that also changes the queue or slots first sends that part to the
//! queue owner as one synchronous closure ([`QueueState::apply`], all or nothing), with the cell
//! marked `committing` so a second commit decided on the same version is a conflict; only when
//! the queue owner has applied it is the conversation part applied. A refusal or a full mailbox
//! leaves both untouched. (In one process the reply cannot be lost: the closure always answers,
//! and the waiting task is detached, so it is never cancelled half way.)
//!
//! `load`, `commit` and `messages` must be called on the conversation's owner executor (the
//! engine routes there); every other method routes itself.

pub mod cell;
pub mod queue;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use livechat_core::store::{
    ConversationStore, Cutoffs, Due, MessagePage, MetadataRepository, Written,
};
use livechat_core::{
    Commit, Committed, ConversationMetadata, ConversationStatus, ExpireReason, MetaWrite,
    QueueEntry, Refusal, Timestamp,
};
use livechat_shard_router::{ExecutorId, RouterError, ShardMap};

use self::cell::{Appended, ConversationCell};
use self::queue::QueueState;
use crate::durable::Durable;
use crate::error::GatewayError;
use crate::runtime::Node;

/// The key whose owner executor holds the queue.
pub const QUEUE_KEY: &str = "livechat:queue";

/// One executor's part of the embedded backend.
#[derive(Debug)]
pub struct EmbeddedStore {
    node: Rc<Node>,
    map: Arc<ShardMap>,
    message_buffer: usize,
    presence_ttl_ms: i64,
    cells: RefCell<HashMap<String, Rc<ConversationCell>>>,
    queue: QueueState,
    /// PostgreSQL, when configured: every lifecycle step is written there first.
    durable: Option<Durable>,
    presence: RefCell<HashMap<String, Timestamp>>,
}

impl EmbeddedStore {
    /// Conversations held on this executor.
    pub fn live(&self) -> usize {
        self.cells.borrow().len()
    }

    /// Conversations held on this executor by status, in `OPEN`, `QUEUED`, `ASSIGNED`,
    /// `CLOSED` order (closed ones until retention forgets them). Walks the cells: for a
    /// scrape.
    pub fn count_by_status(&self) -> [u64; 4] {
        let mut out = [0; 4];
        for cell in self.cells.borrow().values() {
            out[super::status_index(cell.meta.borrow().status)] += 1;
        }
        out
    }

    /// The queue's length and its oldest entry's enqueue time (queue owner only; elsewhere
    /// the local queue is empty).
    pub fn queue_gauges(&self) -> (u64, Option<Timestamp>) {
        (self.queue.len() as u64, self.queue.oldest())
    }

    /// This executor's part; registers itself on `node`.
    pub fn install(
        node: &Rc<Node>,
        map: Arc<ShardMap>,
        message_buffer: usize,
        presence_ttl_ms: i64,
        durable: Option<Durable>,
    ) -> Rc<Self> {
        let store = Rc::new(Self {
            node: node.clone(),
            map,
            message_buffer,
            presence_ttl_ms,
            cells: RefCell::new(HashMap::new()),
            queue: QueueState::default(),
            durable,
            presence: RefCell::new(HashMap::new()),
        });
        node.set_extension(store.clone());
        store
    }

    fn queue_owner(&self) -> ExecutorId {
        self.map.owner(QUEUE_KEY)
    }

    /// Runs `f` with the store of executor `on` (synchronously here when it is this one) and
    /// waits for its answer. A full mailbox is refused at once (503), before anything runs.
    async fn call<R: Send + 'static>(
        &self,
        on: ExecutorId,
        f: impl FnOnce(&EmbeddedStore) -> R + Send + 'static,
    ) -> Result<R, GatewayError> {
        if on == self.node.executor() {
            return Ok(f(self));
        }
        let (tx, rx) = flume::bounded(1);
        self.node.run_on(on, move |node| {
            if let Some(store) = node.extension::<EmbeddedStore>() {
                let _ = tx.try_send(f(&store));
            }
        })?;
        rx.recv_async()
            .await
            .map_err(|_| GatewayError::Unavailable(RouterError::Disconnected(on)))
    }

    fn cell(&self, id: &str) -> Option<Rc<ConversationCell>> {
        self.cells.borrow().get(id).cloned()
    }

    /// The cells this executor owns that housekeeping must act on, and presence pruning.
    fn local_due(&self, c: Cutoffs) -> Vec<Due> {
        let mut due = Vec::new();
        for (id, cell) in self.cells.borrow().iter() {
            let m = cell.meta.borrow();
            if m.status != ConversationStatus::Closed {
                if m.created_at <= c.created_before {
                    due.push(Due::Expire(id.clone(), ExpireReason::MaxDuration));
                } else if m.updated_at <= c.idle_before {
                    due.push(Due::Expire(id.clone(), ExpireReason::Inactivity));
                }
            } else if m.closed_at.is_some_and(|at| at <= c.closed_before) {
                due.push(Due::Forget(id.clone()));
            }
            if due.len() >= c.limit {
                break;
            }
        }
        due
    }

    /// The parts of a commit that wait (the cell is marked `committing` meanwhile): the
    /// durable write of a lifecycle step (PostgreSQL, when configured), then the queue and
    /// slot changes on the queue owner. A failed durable write refuses the step before
    /// anything changed (503); a queue refusal after it puts the durable row back (if that
    /// fails too, the row is one version ahead until the next step rewrites it — the durable
    /// write allows an equal version for exactly this).
    async fn durable_then_queue(
        &self,
        c: &Commit,
        cell: Option<&Rc<ConversationCell>>,
    ) -> Result<Result<Option<usize>, Refusal>, GatewayError> {
        let written = match (&self.durable, &c.write) {
            (Some(d), MetaWrite::Replace { conversation, .. }) => {
                match d.write(conversation).await? {
                    Written::Applied => Some((d, conversation.version)),
                    Written::Stale { stored } => {
                        return Err(GatewayError::Stale(format!(
                            "conversation {} is at version {stored} in the database, ahead of this step ({})",
                            c.conversation_id, conversation.version
                        )))
                    }
                }
            }
            _ => None,
        };
        if c.queue.is_none() && c.agent.is_none() {
            return Ok(Ok(None));
        }
        let (queue, agent, conv) = (c.queue.clone(), c.agent.clone(), c.conversation_id.clone());
        let applied = self
            .call(self.queue_owner(), move |s| {
                s.queue.apply(&conv, queue, agent)
            })
            .await;
        if let (Some((d, version)), Err(_) | Ok(Err(_))) = (written, &applied) {
            let before = cell.map(|c| c.meta.borrow().clone());
            if let Err(e) = d.revert(&c.conversation_id, before.as_ref(), version).await {
                tracing::warn!(conversation = %c.conversation_id, error = %e, "durable row not put back; the next step rewrites it");
            }
        }
        applied
    }

    fn prune_presence(&self, now: Timestamp) {
        let ttl = self.presence_ttl_ms;
        self.presence
            .borrow_mut()
            .retain(|_, seen| now.since(*seen) < ttl);
    }
}

impl ConversationStore for EmbeddedStore {
    type Error = GatewayError;

    async fn load(&self, id: &str) -> Result<Option<ConversationMetadata>, GatewayError> {
        Ok(self.cell(id).map(|c| c.meta.borrow().clone()))
    }

    async fn commit(&self, c: Commit) -> Result<Result<Committed, Refusal>, GatewayError> {
        let id = c.conversation_id.clone();
        let existing = self.cell(&id);
        // Checks on the conversation part, before anything changes anywhere. `None`: a start
        // (the cell is created once the step is sure to happen).
        let target = match (&c.write, existing) {
            (
                MetaWrite::Replace {
                    expected_version: 0,
                    ..
                },
                None,
            ) => {
                if c.queue.is_some() || c.agent.is_some() {
                    // A start never touches the queue; refusing keeps the no-await rule simple.
                    return Ok(Err(Refusal::Conflict));
                }
                None
            }
            (
                MetaWrite::Replace {
                    expected_version: 0,
                    ..
                },
                Some(_),
            ) => return Ok(Err(Refusal::Conflict)),
            (_, None) => return Ok(Err(Refusal::NotFound)),
            (
                MetaWrite::Replace {
                    expected_version, ..
                },
                Some(cell),
            ) => {
                if cell.meta.borrow().version != *expected_version || cell.committing.get() {
                    return Ok(Err(Refusal::Conflict));
                }
                Some(cell)
            }
            (MetaWrite::Touch { author, .. }, Some(cell)) => {
                // Before the retry lookup, so nobody reads another sender's message by
                // presenting its clientMessageId.
                if author
                    .as_ref()
                    .is_some_and(|a| !a.admits(&cell.meta.borrow()))
                {
                    return Ok(Err(Refusal::Forbidden));
                }
                Some(cell)
            }
        };
        // A retried message (same clientMessageId): nothing is written (a retry after the
        // close still gets its message).
        if let (Some(cell), [m]) = (&target, c.append.as_slice()) {
            if let Some(first) = m
                .client_message_id
                .as_deref()
                .and_then(|k| cell.find_client_id(k))
            {
                return Ok(Ok(Committed {
                    duplicate: Some(first),
                    ..Committed::default()
                }));
            }
        }
        if let (MetaWrite::Touch { .. }, Some(cell)) = (&c.write, &target) {
            if cell.meta.borrow().status == ConversationStatus::Closed {
                return Ok(Err(Refusal::Closed));
            }
        }
        // Only a lifecycle step marks the cell: messages never wait here, and must not clear
        // the mark of a step that does.
        let marked = target
            .as_ref()
            .filter(|_| matches!(c.write, MetaWrite::Replace { .. }));
        if let Some(cell) = marked {
            cell.committing.set(true);
        }
        let result = self.durable_then_queue(&c, target.as_ref()).await;
        if let Some(cell) = marked {
            cell.committing.set(false);
        }
        let position = match result? {
            Ok(p) => p,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let cell = match target {
            Some(cell) => cell,
            None => {
                let MetaWrite::Replace { conversation, .. } = &c.write else {
                    return Ok(Err(Refusal::NotFound));
                };
                let cell = Rc::new(ConversationCell::new(
                    (**conversation).clone(),
                    self.message_buffer,
                ));
                self.cells.borrow_mut().insert(id.clone(), cell.clone());
                cell
            }
        };
        // The conversation part: synchronous, cannot fail.
        match c.write {
            MetaWrite::Replace { conversation, .. } => *cell.meta.borrow_mut() = *conversation,
            MetaWrite::Touch { at, .. } => {
                let mut meta = cell.meta.borrow_mut();
                meta.updated_at = meta.updated_at.max(at);
            }
        }
        cell.activity.set(crate::chat::ids::activity_stamp());
        let mut messages = Vec::with_capacity(c.append.len());
        for m in c.append {
            match cell.append(m) {
                Appended::New(m) => messages.push(m),
                // Several messages in one commit are system notices without a client id.
                Appended::Duplicate(_) => {}
            }
        }
        Ok(Ok(Committed {
            messages,
            duplicate: None,
            position,
        }))
    }

    async fn messages(
        &self,
        id: &str,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Option<(ConversationMetadata, MessagePage)>, GatewayError> {
        Ok(self
            .cell(id)
            .map(|c| (c.meta.borrow().clone(), c.page(after, limit))))
    }

    async fn queue_page(&self, page: usize, size: usize) -> Result<Vec<QueueEntry>, GatewayError> {
        self.call(self.queue_owner(), move |s| s.queue.page(page, size))
            .await
    }

    async fn queue_position(&self, id: &str) -> Result<Option<usize>, GatewayError> {
        let id = id.to_owned();
        self.call(self.queue_owner(), move |s| s.queue.position(&id))
            .await
    }

    async fn queue_ids(&self, limit: usize) -> Result<Vec<String>, GatewayError> {
        self.call(self.queue_owner(), move |s| s.queue.ids(limit))
            .await
    }

    async fn agent_conversations(
        &self,
        agent_id: &str,
        statuses: &[ConversationStatus],
    ) -> Result<Vec<ConversationMetadata>, GatewayError> {
        let agent = agent_id.to_owned();
        let ids = self
            .call(self.queue_owner(), move |s| {
                s.queue.agent_conversations(&agent)
            })
            .await?;
        let mut by_owner: HashMap<ExecutorId, Vec<String>> = HashMap::new();
        for id in ids {
            by_owner.entry(self.map.owner(&id)).or_default().push(id);
        }
        let mut out = Vec::new();
        for (owner, ids) in by_owner {
            let metas = self
                .call(owner, move |s| {
                    ids.iter()
                        .filter_map(|id| {
                            let c = s.cell(id)?;
                            let meta = c.meta.borrow().clone();
                            Some((meta, c.activity.get()))
                        })
                        .collect::<Vec<_>>()
                })
                .await?;
            out.extend(metas);
        }
        out.retain(|(m, _)| statuses.is_empty() || statuses.contains(&m.status));
        // Newest activity first; same-millisecond ties by the monotonic activity stamp.
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
        let id = participant_id.to_owned();
        // Fire and forget: presence is a hint, not worth a reply.
        let owner = self.map.owner(&id);
        self.node.run_on(owner, move |node| {
            if let Some(s) = node.extension::<EmbeddedStore>() {
                s.presence.borrow_mut().insert(id, now);
            }
        })?;
        Ok(())
    }

    async fn last_seen(&self, participant_id: &str) -> Result<Option<Timestamp>, GatewayError> {
        let id = participant_id.to_owned();
        self.call(self.map.owner(&id), move |s| {
            s.presence.borrow().get(&id).copied()
        })
        .await
    }

    async fn due(&self, c: Cutoffs) -> Result<Vec<Due>, GatewayError> {
        let mut due: Vec<Due> = self
            .call(self.queue_owner(), move |s| {
                s.queue.expired(c.queued_before)
            })
            .await?
            .into_iter()
            .map(Due::QueueTimeout)
            .take(c.limit)
            .collect();
        let executors: Vec<ExecutorId> = self.node.port().executors().collect();
        for e in executors {
            due.extend(
                self.call(e, move |s| {
                    s.prune_presence(c.now);
                    s.local_due(c)
                })
                .await?,
            );
        }
        due.truncate(c.limit);
        Ok(due)
    }

    async fn try_lead(&self, _lease_ms: u64) -> Result<bool, GatewayError> {
        // One node: its queue executor is the only one that asks.
        Ok(true)
    }

    async fn forget(&self, id: &str, closed_before: Timestamp) -> Result<bool, GatewayError> {
        let conv = id.to_owned();
        let forgotten = self
            .call(self.map.owner(id), move |s| {
                let cell = s.cell(&conv)?;
                let m = cell.meta.borrow();
                let closed = m.status == ConversationStatus::Closed
                    && m.closed_at.is_some_and(|at| at <= closed_before);
                if !closed {
                    return None;
                }
                let agent = m.agent.as_ref().map(|a| a.id.clone());
                drop(m);
                s.cells.borrow_mut().remove(&conv);
                Some(agent)
            })
            .await?;
        let Some(agent) = forgotten else {
            return Ok(false);
        };
        if let Some(agent) = agent {
            let conv = id.to_owned();
            self.call(self.queue_owner(), move |s| s.queue.forget(&agent, &conv))
                .await?;
        }
        Ok(true)
    }
}
