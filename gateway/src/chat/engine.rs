//! The chat engine of one executor: routes every conversation command to the conversation's
//! owner executor, runs it there one at a time per conversation (its turn) against the store,
//! and announces what was committed.
//!
//! Lives on: every executor (one `Chat` each, registered as a `Node` extension). A conversation's
//! commands run on `ShardMap::owner(conversation id)`; queue snapshots and housekeeping on
//! `ShardMap::owner(QUEUE_KEY)`. Requests travel as `MeshMsg::Run` closures over the bounded
//! mesh; a full mailbox is a 503 before anything runs.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;

use livechat_core::access::{self, Action};
use livechat_core::store::{ConversationStore, MessagePage, MetadataRepository};
use livechat_core::{
    ChatMessage, ChatParticipant, Command, ConversationMetadata, ConversationStatus,
    LifecycleError, Metadata, Principal, QueueEntry,
};
use livechat_shard_router::{ExecutorId, RouterError, ShardMap};

use super::auth::Auth;
use super::config::ChatConfig;
use super::exec::{self, Decide, Executed};
use super::fanout::Fanout;
use super::ids::{new_uuid, now};
use super::store::embedded::QUEUE_KEY;
use super::store::Store;
use super::turns::Turns;
use super::wire::{Joined, Json};
use crate::error::GatewayError;
use crate::metrics::AcceptOutcome;
use crate::runtime::Node;
use crate::socketio::Io;

/// Most conversations `GET /api/agent/conversations` answers from the durable record (newest
/// activity first).
pub const AGENT_HISTORY_LIMIT: usize = 500;

/// `live` and `durable` together, one entry per conversation (the live one when both have it),
/// newest activity first, at most `limit`.
fn merge_newest_first(
    live: Vec<ConversationMetadata>,
    durable: Vec<ConversationMetadata>,
    limit: usize,
) -> Vec<ConversationMetadata> {
    let held: std::collections::HashSet<String> = live.iter().map(|c| c.id.clone()).collect();
    let mut all: Vec<ConversationMetadata> = live
        .into_iter()
        .chain(durable.into_iter().filter(|c| !held.contains(&c.id)))
        .collect();
    // Stable: the live list is already in order (its ties broken by activity stamps the
    // durable rows do not have), and stays so.
    all.sort_by_key(|c| std::cmp::Reverse(c.updated_at));
    all.truncate(limit);
    all
}

/// The room of a conversation.
pub fn room(conversation_id: &str) -> String {
    format!("conversation:{conversation_id}")
}

/// What the engine hands work to besides its store: both live on the IO pool.
#[derive(Debug, Clone)]
pub struct Services {
    /// PostgreSQL (the stores write lifecycle steps there; the engine touches activity and
    /// reads histories).
    pub durable: Option<crate::durable::Durable>,
    /// Analytics events.
    pub events: crate::events::Events,
}

/// One executor's chat engine.
pub struct Chat {
    pub(super) node: Rc<Node>,
    pub(super) io: Io,
    pub(super) cfg: Arc<ChatConfig>,
    map: Arc<ShardMap>,
    store: Store,
    turns: Turns,
    fanout: RefCell<Option<Rc<Fanout>>>,
    pub(super) snapshot_pending: Cell<bool>,
    pub(super) services: Services,
    auth: Auth,
    /// Commands running or waiting for their turn on this executor (owner side).
    pending: Cell<usize>,
}

/// One admitted command on its owner executor; leaving gives the place back.
struct Admitted(Rc<Chat>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.pending.set(self.0.pending.get().saturating_sub(1));
    }
}

impl std::fmt::Debug for Chat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chat")
            .field("executor", &self.node.executor())
            .field("store", &self.store.describe())
            .field("busy_conversations", &self.turns.busy())
            .finish()
    }
}

impl Chat {
    /// The engine of this executor, on `store`; registers itself on `node`.
    pub fn install(
        node: Rc<Node>,
        io: Io,
        cfg: Arc<ChatConfig>,
        map: Arc<ShardMap>,
        store: Store,
        services: Services,
        auth: Auth,
    ) -> Rc<Self> {
        let chat = Rc::new(Self {
            node,
            io,
            cfg,
            map,
            store,
            turns: Turns::default(),
            fanout: RefCell::new(None),
            snapshot_pending: Cell::new(false),
            services,
            auth,
            pending: Cell::new(0),
        });
        chat.node.set_extension(chat.clone());
        chat
    }

    /// Room events arrive from the backend's Pub/Sub through `fanout` (when the store
    /// publishes), instead of the owner's broadcasts.
    pub fn set_fanout(&self, fanout: Rc<Fanout>) {
        *self.fanout.borrow_mut() = Some(fanout);
    }

    /// Who callers are (the node's authentication provider).
    pub fn auth(&self) -> &Auth {
        &self.auth
    }

    /// This executor's Pub/Sub delivery, if the store publishes.
    pub fn fanout(&self) -> Option<Rc<Fanout>> {
        self.fanout.borrow().clone()
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

    /// PostgreSQL and the event sink.
    pub fn services(&self) -> &Services {
        &self.services
    }

    /// The backend.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Node-wide counters.
    pub fn counters(&self) -> &livechat_shard_router::Counters {
        self.node.counters()
    }

    fn owner(&self, id: &str) -> ExecutorId {
        self.map.owner(id)
    }

    /// The executor that coalesces queue snapshots and runs housekeeping for this node.
    pub(super) fn queue_executor(&self) -> ExecutorId {
        self.map.owner(QUEUE_KEY)
    }

    /// Whether this executor is [`Chat::queue_executor`].
    pub fn is_queue_executor(&self) -> bool {
        self.queue_executor() == self.node.executor()
    }

    /// Whether this executor may hold one more live conversation (embedded backend:
    /// `chat.limits.max-live-conversations`, split evenly between the executors).
    fn room_for_one_more(&self) -> Result<(), GatewayError> {
        let Some(live) = self.store.live_here() else {
            return Ok(());
        };
        let cap = self.cfg.limits.max_live_conversations / self.map.executors().max(1);
        if live >= cap.max(1) {
            livechat_shard_router::Counters::bump(&self.counters().chat_capacity_refused);
            return Err(GatewayError::OverCapacity(format!(
                "this node holds its maximum of {} live conversations; retry later",
                self.cfg.limits.max_live_conversations
            )));
        }
        Ok(())
    }

    /// Admits one more command on this (owner) executor, or refuses it: at most
    /// `chat.limits.max-pending-commands` run or wait for their turn at once.
    fn admit(self: &Rc<Self>) -> Result<Admitted, GatewayError> {
        let n = self.pending.get();
        if n >= self.cfg.limits.max_pending_commands {
            livechat_shard_router::Counters::bump(&self.counters().chat_capacity_refused);
            return Err(GatewayError::OverCapacity(format!(
                "executor {} is at its {} pending commands; retry",
                self.node.executor(),
                n
            )));
        }
        self.pending.set(n + 1);
        Ok(Admitted(self.clone()))
    }

    /// Runs `f` on executor `on` with its engine and waits for the result (or the owner's
    /// refusal when it is at its pending-command cap).
    pub(super) async fn on<R, F, Fut>(&self, on: ExecutorId, f: F) -> Result<R, GatewayError>
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
            let admitted = chat.admit()?;
            return glommio::spawn_local(async move {
                let out = f(chat).await;
                drop(admitted);
                out
            })
            .detach()
            .await
            .ok_or(GatewayError::Unavailable(RouterError::Disconnected(on)));
        }
        let (tx, rx) = flume::bounded::<Result<R, GatewayError>>(1);
        self.node.run_on(on, move |node| {
            let Some(chat) = Chat::current(node) else {
                return;
            };
            let admitted = match chat.admit() {
                Ok(a) => a,
                Err(e) => {
                    let _ = tx.try_send(Err(e));
                    return;
                }
            };
            glommio::spawn_local(async move {
                let out = f(chat).await;
                drop(admitted);
                let _ = tx.send_async(Ok(out)).await;
            })
            .detach();
        })?;
        rx.recv_async()
            .await
            .map_err(|_| GatewayError::Unavailable(RouterError::Disconnected(on)))?
    }

    // ---- API used by REST and socket handlers (any executor) ----

    /// Starts a conversation (status OPEN) on its owner executor.
    pub async fn start(
        &self,
        customer: ChatParticipant,
        attributes: Metadata,
    ) -> Result<ConversationMetadata, GatewayError> {
        let id = new_uuid();
        self.on(self.owner(&id), move |chat| async move {
            chat.room_for_one_more()?;
            let _turn = chat.turns.take(&id).await;
            let mut out = exec::create(&chat.store, id, customer, attributes, now()).await?;
            let announce = std::mem::take(&mut out.announce);
            chat.announce(&out.conversation.id, Some(&out.conversation), announce);
            Ok(out.conversation)
        })
        .await?
    }

    /// Runs a lifecycle command on the conversation's owner. An accept's outcome is counted
    /// here, on the executor that answers the agent.
    pub async fn command(&self, id: String, cmd: Command) -> Result<Executed, GatewayError> {
        let accept = matches!(cmd, Command::Accept { .. });
        let out = self.run(id, Box::new(move |_| Ok(Some(cmd.clone())))).await;
        if accept {
            let status = out.as_ref().map_or_else(GatewayError::status, |_| 200);
            if let Some(outcome) = AcceptOutcome::of_status(status) {
                self.node.metrics().accepted(outcome);
            }
        }
        out
    }

    /// Stores a message (`Command::Send`) whose sender needs nothing from the conversation: on
    /// the owner, in its turn, one store call. Returns the stored message (or the earlier one
    /// with the same `clientMessageId`).
    pub async fn send(&self, id: String, cmd: Command) -> Result<ChatMessage, GatewayError> {
        self.on(self.owner(&id), move |chat| async move {
            let _turn = chat.turns.take(&id).await;
            let (message, announce) = exec::append(&chat.store, &id, cmd, now()).await?;
            chat.announce(&id, None, announce);
            Ok(message)
        })
        .await?
    }

    /// Runs the command `decide` makes from the current metadata, on the conversation's owner.
    /// `decide` sees the state the commit checks (it runs again after a version conflict), so a
    /// REST handler's "who is the customer / the agent" is never taken from a stale read.
    pub async fn run(&self, id: String, decide: Decide) -> Result<Executed, GatewayError> {
        self.on(self.owner(&id), move |chat| chat.local_run(id, decide))
            .await?
    }

    /// Current metadata.
    pub async fn get(&self, id: String) -> Result<ConversationMetadata, GatewayError> {
        let key = id.clone();
        let live = self
            .on(self.owner(&id), move |chat| async move {
                chat.store.load(&key).await
            })
            .await??;
        match (live, &self.services.durable) {
            (Some(meta), _) => Ok(meta),
            // Closed and forgotten by the live store: the durable record still has it.
            (None, Some(d)) => d.get(&id).await?.ok_or_else(|| not_found(&id)),
            (None, None) => Err(not_found(&id)),
        }
    }

    /// A page of messages with the metadata (see `ConversationStore::messages`).
    pub async fn messages(
        &self,
        id: String,
        after: Option<u64>,
        limit: usize,
    ) -> Result<(ConversationMetadata, MessagePage), GatewayError> {
        self.on(self.owner(&id), move |chat| async move {
            chat.store
                .messages(&id, after, limit)
                .await?
                .ok_or_else(|| not_found(&id))
        })
        .await?
    }

    /// A page of the queue, oldest first.
    pub async fn queue_page(
        &self,
        page: usize,
        size: usize,
    ) -> Result<Vec<QueueEntry>, GatewayError> {
        self.store.queue_page(page, size).await
    }

    /// The 0-based queue position of a conversation, if queued.
    pub async fn queue_position(&self, id: &str) -> Result<Option<usize>, GatewayError> {
        self.store.queue_position(id).await
    }

    /// An agent's conversations with one of `statuses` (all when empty), newest activity first.
    pub async fn agent_conversations(
        &self,
        agent: &str,
        statuses: &[ConversationStatus],
    ) -> Result<Vec<ConversationMetadata>, GatewayError> {
        let Some(d) = &self.services.durable else {
            return self.store.agent_conversations(agent, statuses).await;
        };
        // PostgreSQL has every conversation, the forgotten ones too, but its activity lags by up
        // to `touch-interval`; the live store has the current activity of the ones it holds.
        // Both, the live copy winning, newest activity first.
        let (live, durable) = futures_lite::future::zip(
            self.store.agent_conversations(agent, statuses),
            d.by_agent(agent, statuses, AGENT_HISTORY_LIMIT),
        )
        .await;
        let live = live?;
        let durable = durable.unwrap_or_else(|e| {
            tracing::warn!(agent = %agent, error = %e, "agent history without PostgreSQL: live conversations only");
            Vec::new()
        });
        Ok(merge_newest_first(live, durable, AGENT_HISTORY_LIMIT))
    }

    /// Records that a participant was seen now (best effort, in the background).
    pub fn touch_presence(self: &Rc<Self>, participant_id: &str) {
        let (chat, id) = (self.clone(), participant_id.to_owned());
        glommio::spawn_local(async move {
            if let Err(e) = chat.store.touch_presence(&id, now()).await {
                tracing::debug!(participant = %id, error = %e, "presence not recorded");
            }
        })
        .detach();
    }

    /// Joins a socket to a conversation, in order with the conversation's broadcasts: the socket
    /// gets `system:event`, then every message after `last_seq`, then live messages.
    pub async fn attach(
        &self,
        id: String,
        socket_id: String,
        who: Principal,
        last_seq: Option<u64>,
    ) -> Result<ConversationMetadata, GatewayError> {
        if let Some(fanout) = self.fanout() {
            return self
                .attach_subscribed(&fanout, id, socket_id, who, last_seq)
                .await;
        }
        let socket_exec = self
            .node
            .owner_of(&socket_id)
            .ok_or_else(|| GatewayError::BadRequest("unknown socket".into()))?;
        self.on(self.owner(&id), move |chat| async move {
            // The turn keeps commits of this conversation out until the backlog is on its way,
            // and the backlog travels the same FIFO channel as later broadcasts.
            let _turn = chat.turns.take(&id).await;
            // Without `lastSeq` the socket wants live messages only: an empty page.
            let limit = if last_seq.is_some() { usize::MAX } else { 0 };
            let (meta, page) = chat
                .store
                .messages(&id, last_seq, limit)
                .await?
                .ok_or_else(|| not_found(&id))?;
            access::authorize(&who, Action::Join, &meta)?;
            if meta.status == ConversationStatus::Closed {
                return Err(LifecycleError::Closed.into());
            }
            let recovered = last_seq.map(|_| page.complete);
            chat.deliver_join(
                socket_exec,
                socket_id,
                &meta,
                who.acts_as(&meta),
                recovered,
                page.messages,
            )?;
            Ok(meta)
        })
        .await?
    }

    /// [`Chat::attach`] when room events come over Pub/Sub: runs on the socket's executor, which
    /// holds the room's live events while it subscribes and sends the backlog (no gap, no
    /// duplicate), then lets them through.
    async fn attach_subscribed(
        &self,
        fanout: &Fanout,
        id: String,
        socket_id: String,
        who: Principal,
        last_seq: Option<u64>,
    ) -> Result<ConversationMetadata, GatewayError> {
        let socket = self
            .io
            .local_socket(&socket_id)
            .ok_or_else(|| GatewayError::BadRequest("unknown socket".into()))?;
        fanout.hold(&id);
        let (mut sent_up_to, mut current) = (0, 0);
        let result = async {
            fanout.join(&id).await?;
            let limit = if last_seq.is_some() { usize::MAX } else { 0 };
            let read = self.store.messages(&id, last_seq, limit).await;
            let (meta, page) = match read {
                Ok(Some(found)) => found,
                Ok(None) => {
                    fanout.leave(&id);
                    return Err(not_found(&id));
                }
                Err(e) => {
                    fanout.leave(&id);
                    return Err(e);
                }
            };
            if let Err(denied) = access::authorize(&who, Action::Join, &meta) {
                fanout.leave(&id);
                return Err(denied.into());
            }
            if meta.status == ConversationStatus::Closed {
                fanout.leave(&id);
                return Err(LifecycleError::Closed.into());
            }
            socket.join(&room(&id));
            current = page.last_seq;
            let recovered = last_seq.map(|_| page.complete);
            let participant = who.acts_as(&meta);
            let _ = socket.emit("system:event", &Joined::new(&participant, &meta, recovered));
            self.told_socket(&socket, &id, meta.status == ConversationStatus::Queued);
            for m in &page.messages {
                let _ = socket.emit("chat:message", &Json(m));
                sent_up_to = m.seq;
            }
            self.node.metrics().delivered(page.messages.len());
            Ok(meta)
        }
        .await;
        let sent_up_to = sent_up_to.max(last_seq.unwrap_or(0));
        fanout.release(self, &id, &socket_id, sent_up_to, current);
        result
    }

    /// A socket that joined conversation `id` is gone (its executor may unsubscribe).
    pub fn detach(&self, id: &str) {
        if let Some(f) = self.fanout() {
            f.leave(id);
        }
    }

    // ---- owner side ----

    async fn local_run(
        self: Rc<Self>,
        id: String,
        mut decide: Decide,
    ) -> Result<Executed, GatewayError> {
        let _turn = self.turns.take(&id).await;
        let mut out = exec::execute(&self.store, &id, &mut decide, now).await?;
        // Announced here, on the owner, in the conversation's turn; the caller needs only the
        // outcome, so the announcement is moved, not copied.
        let announce = std::mem::take(&mut out.announce);
        self.announce(&id, Some(&out.conversation), announce);
        Ok(out)
    }
}

pub(super) fn not_found(id: &str) -> GatewayError {
    GatewayError::NotFound(format!("conversation {id} not found"))
}
