//! The chat engine of one executor: runs lifecycle commands for the conversations this
//! executor owns, in arrival order, and routes everything else to its owner.
//!
//! Lives on: every executor (one `Chat` each, registered as a `Node` extension). Who owns what:
//! a conversation → `ShardMap::owner(conversation id)`; the queue, agent slots and the agent
//! index → `ShardMap::owner(QUEUE_KEY)`; a participant's presence → `ShardMap::owner(participant id)`.
//! Requests travel as `MeshMsg::Run` closures over the bounded mesh; a full mailbox is a 503.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;

use livechat_core::store::{Appended, Claim, MessagePage};
use livechat_core::{
    apply, start, ChatEventType, ChatMessage, ChatParticipant, Command, ConversationMetadata,
    ConversationStatus, Effect, ExpireReason, LifecycleError, Metadata, Notice, QueueEntry,
    Timestamp,
};
use livechat_shard_router::{ExecutorId, RouterError, ShardMap};

use super::config::ChatConfig;
use super::conversation_cell::ConversationCell;
use super::ids::{activity_stamp, fast_uuid, now, secure_uuid};
use super::queue_state::{QueueState, QUEUE_KEY};
use super::socket::SocketCtx;
use crate::error::GatewayError;
use crate::runtime::Node;
use crate::socketio::Io;

/// The room of a conversation.
pub fn room(conversation_id: &str) -> String {
    format!("conversation:{conversation_id}")
}

/// What a command produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Metadata after the command.
    pub conversation: ConversationMetadata,
    /// The message stored (or the earlier duplicate), if the command stored one.
    pub message: Option<ChatMessage>,
    /// Queue position, for enqueue.
    pub position: Option<usize>,
}

/// A precondition re-checked under the conversation's lock (housekeeping decisions are made on
/// a snapshot; a message may have arrived since).
#[derive(Debug, Clone, Copy)]
enum Guard {
    None,
    IdleSince(Timestamp),
    CreatedBefore(Timestamp),
}

/// One executor's chat engine.
pub struct Chat {
    node: Rc<Node>,
    io: Io,
    cfg: Arc<ChatConfig>,
    map: Arc<ShardMap>,
    conversations: RefCell<HashMap<String, Rc<ConversationCell>>>,
    queue: QueueState,
    presence: RefCell<HashMap<String, Timestamp>>,
    snapshot_pending: Cell<bool>,
}

impl std::fmt::Debug for Chat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chat")
            .field("executor", &self.node.executor())
            .field("conversations", &self.conversations.borrow().len())
            .finish()
    }
}

impl Chat {
    /// The engine of this executor; starts its housekeeping task.
    pub fn new(node: Rc<Node>, io: Io, cfg: Arc<ChatConfig>, map: Arc<ShardMap>) -> Rc<Self> {
        let chat = Rc::new(Self {
            node,
            io,
            cfg,
            map,
            conversations: RefCell::new(HashMap::new()),
            queue: QueueState::default(),
            presence: RefCell::new(HashMap::new()),
            snapshot_pending: Cell::new(false),
        });
        glommio::spawn_local(super::housekeeping::run(Rc::downgrade(&chat))).detach();
        chat
    }

    /// The engine of the executor that owns `node`.
    pub fn current(node: &Rc<Node>) -> Option<Rc<Chat>> {
        node.extension::<Chat>()
    }

    /// Settings.
    pub fn config(&self) -> &ChatConfig {
        &self.cfg
    }

    /// This executor's Socket.IO server.
    pub fn io(&self) -> &Io {
        &self.io
    }

    fn owner(&self, id: &str) -> ExecutorId {
        self.map.owner(id)
    }

    fn queue_owner(&self) -> ExecutorId {
        self.map.owner(QUEUE_KEY)
    }

    /// Runs `f` on executor `on` with its engine and waits for the result.
    async fn on<R, F, Fut>(&self, on: ExecutorId, f: F) -> Result<R, GatewayError>
    where
        R: Send + 'static,
        F: FnOnce(Rc<Chat>) -> Fut + Send + 'static,
        Fut: Future<Output = R> + 'static,
    {
        if on == self.node.executor() {
            // Owned here: no mesh message and no reply channel. Still a task of its own, so the
            // command runs to the end even if the caller (an HTTP connection) goes away.
            let Some(chat) = Chat::current(&self.node) else {
                return Err(GatewayError::Unavailable(RouterError::Disconnected(on)));
            };
            return glommio::spawn_local(f(chat))
                .detach()
                .await
                .ok_or(GatewayError::Unavailable(RouterError::Disconnected(on)));
        }
        let (tx, rx) = flume::bounded(1);
        self.node.run_on(on, move |node| {
            let Some(chat) = Chat::current(node) else {
                return;
            };
            glommio::spawn_local(async move {
                let _ = tx.send_async(f(chat).await).await;
            })
            .detach();
        })?;
        rx.recv_async()
            .await
            .map_err(|_| GatewayError::Unavailable(RouterError::Disconnected(on)))
    }

    // ---- API used by REST and socket handlers (any executor) ----

    /// Starts a conversation (status OPEN) on its owner executor.
    pub async fn start(
        &self,
        customer: ChatParticipant,
        attributes: Metadata,
    ) -> Result<ConversationMetadata, GatewayError> {
        let id = secure_uuid();
        self.on(self.owner(&id), move |chat| async move {
            chat.local_start(id, customer, attributes)
        })
        .await
    }

    /// Runs a lifecycle command on the conversation's owner.
    pub async fn command(&self, id: String, cmd: Command) -> Result<Outcome, GatewayError> {
        self.on(self.owner(&id), move |chat| {
            chat.local_exec(id, cmd, Guard::None)
        })
        .await?
    }

    /// Current metadata.
    pub async fn get(&self, id: String) -> Result<ConversationMetadata, GatewayError> {
        self.on(self.owner(&id), move |chat| async move {
            chat.cell(&id).map(|c| c.meta.borrow().clone())
        })
        .await?
    }

    /// A page of messages (see `ConversationCell::page`), with the metadata.
    pub async fn messages(
        &self,
        id: String,
        after: Option<u64>,
        limit: usize,
    ) -> Result<(ConversationMetadata, MessagePage), GatewayError> {
        self.on(self.owner(&id), move |chat| async move {
            let cell = chat.cell(&id)?;
            let meta = cell.meta.borrow().clone();
            Ok((meta, cell.page(after, limit)))
        })
        .await?
    }

    /// A page of the queue, oldest first.
    pub async fn queue_page(
        &self,
        page: usize,
        size: usize,
    ) -> Result<Vec<QueueEntry>, GatewayError> {
        self.on(self.queue_owner(), move |chat| async move {
            chat.queue.page(page, size)
        })
        .await
    }

    /// The 0-based queue position of a conversation, if queued.
    pub async fn queue_position(&self, id: String) -> Result<Option<usize>, GatewayError> {
        self.on(self.queue_owner(), move |chat| async move {
            chat.queue.position(&id)
        })
        .await
    }

    /// Joins a socket to a conversation, in order with the conversation's broadcasts: the socket
    /// gets `system:event`, then every message after `last_seq`, then live messages.
    pub async fn attach(
        &self,
        id: String,
        socket_id: String,
        participant: ChatParticipant,
        last_seq: Option<u64>,
    ) -> Result<ConversationMetadata, GatewayError> {
        let socket_exec = self
            .node
            .owner_of(&socket_id)
            .ok_or_else(|| GatewayError::BadRequest("unknown socket".into()))?;
        self.on(self.owner(&id), move |chat| {
            chat.local_attach(id, socket_id, socket_exec, participant, last_seq)
        })
        .await?
    }

    /// Sends the current queue to a `scope=queue` socket (which already joined the queue room),
    /// in order with later snapshots.
    pub async fn watch_queue(&self, socket_id: String) -> Result<(), GatewayError> {
        let socket_exec = self
            .node
            .owner_of(&socket_id)
            .ok_or_else(|| GatewayError::BadRequest("unknown socket".into()))?;
        self.on(self.queue_owner(), move |chat| async move {
            let entries = chat.queue.page(0, chat.cfg.queue.broadcast_limit);
            chat.node.run_on(socket_exec, move |node| {
                let Some(chat) = Chat::current(node) else {
                    return;
                };
                if let Some(s) = chat.io.local_socket(&socket_id) {
                    let _ = s.emit("queue:snapshot", &entries);
                }
            })
        })
        .await?
        .map_err(GatewayError::from)
    }

    /// An agent's conversations with one of `statuses` (all when empty), newest activity first.
    pub async fn agent_conversations(
        &self,
        agent: String,
        statuses: Vec<ConversationStatus>,
    ) -> Result<Vec<ConversationMetadata>, GatewayError> {
        let ids = self
            .on(self.queue_owner(), move |chat| async move {
                chat.queue.agent_conversations(&agent)
            })
            .await?;
        let mut by_owner: HashMap<ExecutorId, Vec<String>> = HashMap::new();
        for id in ids {
            by_owner.entry(self.owner(&id)).or_default().push(id);
        }
        let mut out = Vec::new();
        for (owner, ids) in by_owner {
            let metas = self
                .on(owner, move |chat| async move {
                    ids.iter()
                        .filter_map(|id| {
                            let c = chat.cell(id).ok()?;
                            let meta = c.meta.borrow().clone();
                            Some((meta, c.activity.get()))
                        })
                        .collect::<Vec<_>>()
                })
                .await?;
            out.extend(metas);
        }
        out.retain(|(m, _)| statuses.is_empty() || statuses.contains(&m.status));
        out.sort_by(|(a, a_at), (b, b_at)| {
            b.updated_at
                .cmp(&a.updated_at)
                .then_with(|| b_at.cmp(a_at))
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(out.into_iter().map(|(m, _)| m).collect())
    }

    /// Records that a participant was seen now (on the participant's owner executor).
    pub fn touch_presence(&self, participant_id: &str) {
        let id = participant_id.to_owned();
        let at = now();
        let _ = self.node.run_on(self.owner(&id), move |node| {
            if let Some(chat) = Chat::current(node) {
                chat.presence.borrow_mut().insert(id, at);
            }
        });
    }

    /// When a participant was last seen, if within the presence TTL (owner executor only).
    pub fn last_seen_local(&self, participant_id: &str) -> Option<Timestamp> {
        self.presence.borrow().get(participant_id).copied()
    }

    // ---- owner side ----

    fn cell(&self, id: &str) -> Result<Rc<ConversationCell>, GatewayError> {
        self.conversations
            .borrow()
            .get(id)
            .cloned()
            .ok_or_else(|| GatewayError::NotFound(format!("conversation {id} not found")))
    }

    fn local_start(
        &self,
        id: String,
        customer: ChatParticipant,
        attributes: Metadata,
    ) -> ConversationMetadata {
        let t = start(id.clone(), customer, attributes, now());
        let cell = Rc::new(ConversationCell::new(
            t.conversation.clone(),
            self.cfg.conversation.message_buffer,
        ));
        self.conversations.borrow_mut().insert(id, cell);
        self.publish(ChatEventType::ConversationStarted, &t.conversation);
        t.conversation
    }

    async fn local_exec(
        self: Rc<Self>,
        id: String,
        cmd: Command,
        guard: Guard,
    ) -> Result<Outcome, GatewayError> {
        let cell = self.cell(&id)?;
        let _turn = cell.lock().await;
        let now = now();
        // The metadata is read in place (no copy per message); only accept, which awaits the
        // queue owner in between, works on a copy.
        let unchanged = || Outcome {
            conversation: cell.meta.borrow().clone(),
            message: None,
            position: None,
        };
        let holds = {
            let current = cell.meta.borrow();
            match guard {
                Guard::None => true,
                Guard::IdleSince(cutoff) => current.updated_at <= cutoff,
                Guard::CreatedBefore(cutoff) => current.created_at <= cutoff,
            }
        };
        if !holds {
            return Ok(unchanged());
        }
        let claimed = matches!(cmd, Command::Accept { .. });
        let t = match cmd {
            Command::Accept {
                agent,
                max_per_agent,
                ..
            } => {
                let current = cell.meta.borrow().clone();
                // Dry run first: state errors (409/410) and the idempotent re-accept need no slot.
                let dry = Command::Accept {
                    agent: agent.clone(),
                    agent_active: 0,
                    max_per_agent: usize::MAX,
                };
                if apply(&current, dry, now)?.effects.is_empty() {
                    return Ok(unchanged());
                }
                let (agent_id, conv) = (agent.id.clone(), id.clone());
                let claim = self
                    .on(self.queue_owner(), move |chat| async move {
                        let c = chat.queue.claim(&agent_id, &conv, max_per_agent);
                        chat.schedule_snapshot();
                        c
                    })
                    .await?;
                match claim {
                    Claim::Granted(n) => apply(
                        &current,
                        Command::Accept {
                            agent,
                            agent_active: n - 1,
                            max_per_agent,
                        },
                        now,
                    )?,
                    Claim::AtCapacity(max) => {
                        return Err(LifecycleError::AgentAtCapacity(max).into())
                    }
                }
            }
            other => apply(&cell.meta.borrow(), other, now)?,
        };
        let (mut message, mut position) = (None, None);
        let mut stored = Vec::new();
        let mut notices = Vec::new();
        let mut duplicate = false;
        for effect in t.effects {
            match effect {
                Effect::Append(draft) => match cell.append(draft, fast_uuid(), now) {
                    Appended::New(m) => {
                        message = Some(m.clone());
                        stored.push(m);
                    }
                    Appended::Duplicate(m) => {
                        duplicate = true;
                        message = Some(m);
                    }
                },
                Effect::Notify(kind) => notices.push(kind),
                Effect::Publish(kind) => self.publish(kind, &t.conversation),
                Effect::QueueAdd(entry) => {
                    position = Some(self.queue_call(move |q| q.enqueue(entry)).await?);
                }
                // An accept's claim already took the conversation out of the queue.
                Effect::QueueRemove if claimed => {}
                Effect::QueueRemove => {
                    let conv = id.clone();
                    self.queue_call(move |q| q.remove(&conv)).await?;
                }
                Effect::ClaimAgent(_) => {}
                Effect::ReleaseAgent(agent) => {
                    let conv = id.clone();
                    self.queue_call(move |q| q.release(&agent, &conv)).await?;
                }
            }
        }
        if duplicate {
            // A retried message: nothing changed, nothing to announce.
            return Ok(Outcome {
                conversation: cell.meta.borrow().clone(),
                message,
                position,
            });
        }
        let out = Outcome {
            conversation: t.conversation.clone(),
            message,
            position,
        };
        // Stored before anything is announced, so whoever reacts to an event reads the new state.
        *cell.meta.borrow_mut() = t.conversation;
        cell.activity.set(activity_stamp());
        let room = room(&id);
        for m in &stored {
            let _ = self.io.to(&room).emit("chat:message", m);
        }
        for kind in notices {
            self.notify(kind, &out.conversation);
        }
        Ok(out)
    }

    async fn local_attach(
        self: Rc<Self>,
        id: String,
        socket_id: String,
        socket_exec: ExecutorId,
        participant: ChatParticipant,
        last_seq: Option<u64>,
    ) -> Result<ConversationMetadata, GatewayError> {
        let cell = self.cell(&id)?;
        let _turn = cell.lock().await;
        let meta = cell.meta.borrow().clone();
        if meta.status == ConversationStatus::Closed {
            return Err(LifecycleError::Closed.into());
        }
        let (backlog, recovered) = match last_seq {
            Some(seq) => {
                let page = cell.page(Some(seq), usize::MAX);
                (page.messages, Some(page.complete))
            }
            None => (Vec::new(), None),
        };
        let event_meta = meta.clone();
        self.node.run_on(socket_exec, move |node| {
            let Some(chat) = Chat::current(node) else {
                return;
            };
            let Some(s) = chat.io.local_socket(&socket_id) else {
                return;
            };
            s.join(&room(&id));
            let mut ev =
                serde_json::json!({ "participant": participant, "conversation": event_meta });
            if let Some(r) = recovered {
                ev["recovered"] = r.into();
            }
            let _ = s.emit("system:event", &ev);
            for m in &backlog {
                let _ = s.emit("chat:message", m);
            }
        })?;
        Ok(meta)
    }

    async fn queue_call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&QueueState) -> R + Send + 'static,
    ) -> Result<R, GatewayError> {
        self.on(self.queue_owner(), move |chat| async move {
            let r = f(&chat.queue);
            chat.schedule_snapshot();
            r
        })
        .await
    }

    /// Coalesces queue changes: at most one `queue:snapshot` per `snapshot-interval`, always
    /// sent after the last change (queue owner only).
    fn schedule_snapshot(self: &Rc<Self>) {
        if self.snapshot_pending.replace(true) {
            return;
        }
        let chat = self.clone();
        glommio::spawn_local(async move {
            glommio::timer::sleep(chat.cfg.queue.snapshot_interval).await;
            chat.snapshot_pending.set(false);
            let entries = chat.queue.page(0, chat.cfg.queue.broadcast_limit);
            let _ = chat
                .io
                .to(&chat.cfg.socket.queue_room)
                .emit("queue:snapshot", &entries);
        })
        .detach();
    }

    /// `system:event {type, conversation, participant}` to every member of the room; the
    /// participant is each receiving socket's own, so the payload is built per socket, on the
    /// executor that owns it (in order with the room's `chat:message` broadcasts).
    fn notify(&self, kind: Notice, meta: &ConversationMetadata) {
        let room = room(&meta.id);
        for e in self.node.port().executors() {
            let (room, meta) = (room.clone(), meta.clone());
            let _ = self.node.run_on(e, move |node| {
                let Some(chat) = Chat::current(node) else { return };
                chat.io.for_each_local_member("/", &room, |s| {
                    let participant = s.with_data(|d: Option<&SocketCtx>| d.map(|d| d.participant.clone()));
                    if let Some(p) = participant {
                        let ev = serde_json::json!({ "type": kind, "conversation": meta, "participant": p });
                        let _ = s.emit("system:event", &ev);
                    }
                });
            });
        }
    }

    /// Analytics: no Kafka in the embedded backend; the event is logged at debug level.
    fn publish(&self, kind: ChatEventType, meta: &ConversationMetadata) {
        tracing::debug!(topic = kind.topic(), event = ?kind, conversation = %meta.id, "chat event");
    }

    /// One housekeeping pass over what this executor owns.
    pub(crate) fn sweep(self: &Rc<Self>) {
        let now = now();
        let conv = &self.cfg.conversation;
        let idle_cutoff = now.plus_millis(-(conv.inactivity_timeout.as_millis() as i64));
        let age_cutoff = now.plus_millis(-(conv.max_duration.as_millis() as i64));
        let retention_cutoff = now.plus_millis(-(conv.retention.as_millis() as i64));
        let mut expire = Vec::new();
        let mut forget = Vec::new();
        for (id, cell) in self.conversations.borrow().iter() {
            let m = cell.meta.borrow();
            if m.status != ConversationStatus::Closed {
                if m.created_at <= age_cutoff {
                    expire.push((
                        id.clone(),
                        ExpireReason::MaxDuration,
                        Guard::CreatedBefore(age_cutoff),
                    ));
                } else if m.updated_at <= idle_cutoff {
                    expire.push((
                        id.clone(),
                        ExpireReason::Inactivity,
                        Guard::IdleSince(idle_cutoff),
                    ));
                }
            } else if m.closed_at.is_some_and(|c| c <= retention_cutoff) {
                forget.push((id.clone(), m.agent.as_ref().map(|a| a.id.clone())));
            }
        }
        for (id, why, guard) in expire {
            let chat = self.clone();
            glommio::spawn_local(async move {
                if let Err(e) = chat
                    .local_exec(id.clone(), Command::Expire(why), guard)
                    .await
                {
                    tracing::debug!(conversation = %id, error = %e, "expiry skipped");
                }
            })
            .detach();
        }
        for (id, agent) in forget {
            self.conversations.borrow_mut().remove(&id);
            if let Some(agent) = agent {
                let _ = self.node.run_on(self.queue_owner(), move |node| {
                    if let Some(chat) = Chat::current(node) {
                        chat.queue.forget(&agent, &id);
                    }
                });
            }
        }
        if self.queue_owner() == self.node.executor() {
            let cutoff = now.plus_millis(-(self.cfg.queue.max_wait.as_millis() as i64));
            for id in self.queue.expired(cutoff) {
                let chat = self.clone();
                glommio::spawn_local(async move {
                    if let Err(e) = chat.command(id.clone(), Command::QueueTimeout).await {
                        tracing::debug!(conversation = %id, error = %e, "queue timeout skipped");
                    }
                })
                .detach();
            }
        }
        let ttl = self.cfg.redis.presence_ttl.as_millis() as i64;
        self.presence
            .borrow_mut()
            .retain(|_, seen| now.since(*seen) < ttl);
    }
}
