//! The chat product on top of the gateway: REST `/api/...`, the Socket.IO chat contract, and
//! the engine over a backend chosen at start.
//!
//! Dependencies point one way: `api`, `socket` → `engine` → `exec`, `announce` → `store`;
//! `housekeeping` → `engine`. Nothing below `engine` knows about REST or sockets. `wire` (the
//! JSON of core's types) depends on nothing here; any of them may write or read with it.
//!
//! - [`config`]: `chat.*` settings (TOML + env).
//! - [`engine`]: one executor's engine: routing to owners, turns, the public API.
//! - [`exec`]: one lifecycle step against a store (load, decide, apply, commit, retry).
//! - [`announce`]: broadcasts, notices, queue snapshots, analytics after a commit.
//! - [`queue_position`]: live `queue:position` updates to queued conversations' sockets.
//! - [`fanout`]: room events between nodes over Redis Pub/Sub (when the backend publishes).
//! - [`turns`]: per-conversation FIFO turns on the owner executor.
//! - [`store`]: the backend seam and its implementations.
//! - [`api`]: REST handlers.
//! - [`socket`]: Socket.IO handlers; [`socket_ctx`]: what is kept per socket.
//! - [`auth`]: who is calling (`chat.security.*`: development mode, verified JWTs).
//! - [`housekeeping`]: timeouts and retention.
//! - [`ids`]: ids and the clock.
//! - [`input`]: shapes and sizes of what clients send (ids, names, JSON depth, metadata).
//! - [`rate`]: the per-socket token bucket over client events.
//! - [`readiness`]: the backends' part of `/readyz`.
//! - [`metrics`]: `GET /metrics` (Prometheus text; every executor's counters, summed).
//! - [`demo`]: the built-in demo pages (`/`, `/agent`), outside the REST route table.
//! - [`openapi`]: `GET /api/openapi.json`, the REST API's description (`docs/openapi.json`).
//! - [`wire`]: the JSON spelling of the domain's types (the contract's field names).

pub mod announce;
pub mod api;
pub mod auth;
pub mod config;
pub mod demo;
pub mod engine;
pub mod exec;
pub mod fanout;
pub mod housekeeping;
pub mod ids;
pub mod input;
pub mod metrics;
pub mod openapi;
pub mod queue_position;
pub mod rate;
pub mod readiness;
pub mod socket;
pub mod socket_ctx;
pub mod store;
pub mod turns;
pub mod wire;

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;

use livechat_shard_router::ShardMap;

pub use config::ChatConfig;
pub use engine::{Chat, Services};

use crate::durable::Durable;
use crate::events::Events;

use crate::engineio::{EngineApp, Session, SessionHandler};
use crate::http::RequestHead;
use crate::runtime::{AppFactory, LocalApp, Node, ResponseFuture};
use crate::socketio::{Remote, SocketIo};

/// Builds the chat application on every executor.
#[derive(Debug, Clone)]
pub struct ChatApp {
    cfg: Arc<ChatConfig>,
    redis: Option<crate::redis::RedisTarget>,
    io: SocketIo,
    executors: usize,
    durable: Option<Durable>,
    events: Events,
    auth: auth::Auth,
}

impl ChatApp {
    /// The chat app for a node of `executors` executors; the backend is Redis when
    /// `chat.redis.url` is set (checked here, so a bad URL stops the start), else embedded.
    pub fn new(cfg: ChatConfig, executors: usize) -> Result<Self, crate::error::GatewayError> {
        let redis = match &cfg.redis.url {
            Some(url) => {
                let mut target = crate::redis::RedisTarget::from_url(url)?;
                let r = target.config_mut();
                r.request_timeout = cfg.redis.command_timeout;
                r.stall_timeout = r.stall_timeout.max(cfg.redis.command_timeout * 2);
                // A bad TLS file or in-flight limit fails here, not on an executor.
                target.open()?;
                Some(target)
            }
            None => None,
        };
        let auth = auth::Auth::from_config(&cfg.security)?;
        Ok(Self {
            auth,
            cfg: Arc::new(cfg),
            redis,
            io: SocketIo::new().namespace(socket::namespace()),
            executors,
            durable: None,
            events: Events::log(),
        })
    }

    /// Writes every lifecycle step to PostgreSQL through `durable` (started on the IO pool).
    pub fn with_durable(mut self, durable: Durable) -> Self {
        self.durable = Some(durable);
        self
    }

    /// Authenticates callers with a host's own provider instead of `chat.security.mode`'s.
    pub fn with_auth(mut self, auth: auth::Auth) -> Self {
        self.auth = auth;
        self
    }

    /// The authentication mode, for the start-up log.
    pub fn auth_mode(&self) -> &'static str {
        self.auth.mode()
    }

    /// Publishes analytics events to `events` (by default: the debug log).
    pub fn with_events(mut self, events: Events) -> Self {
        self.events = events;
        self
    }

    /// The backend this node runs, for the start-up log.
    pub fn backend(&self) -> &'static str {
        if self.redis.is_some() {
            "Redis"
        } else {
            "embedded single-node"
        }
    }

    fn store(&self, node: &Rc<Node>, map: &Arc<ShardMap>) -> store::Store {
        let conv = &self.cfg.conversation;
        match &self.redis {
            None => store::Store::Embedded(store::EmbeddedStore::install(
                node,
                map.clone(),
                conv.message_buffer,
                self.cfg.redis.presence_ttl.as_millis() as i64,
                self.durable.clone(),
            )),
            Some(r) => {
                // Validated in `new`; a connection connects on first use and after each loss.
                let conn = match r.open() {
                    Ok(c) => c,
                    Err(e) => unreachable_config(e),
                };
                let cfg = store::RedisStoreConfig {
                    prefix: self.cfg.redis.key_prefix.clone(),
                    message_buffer: conv.message_buffer,
                    conversation_ttl: self.cfg.redis.conversation_ttl,
                    presence_ttl: self.cfg.redis.presence_ttl,
                    lock: store::redis::lock::LockPolicy::default(),
                };
                store::Store::Redis(Rc::new(store::RedisStore::new(
                    conn,
                    cfg,
                    self.durable.clone(),
                )))
            }
        }
    }
}

/// Opening a Redis handle fails only on settings `ChatApp::new` already checked.
fn unreachable_config(e: crate::redis::Error) -> ! {
    tracing::error!(error = %e, "invalid Redis settings");
    std::process::exit(2)
}

impl AppFactory for ChatApp {
    fn build(&self, node: &Rc<Node>) -> Rc<dyn LocalApp> {
        let io = self.io.build_io(node);
        let map = Arc::new(ShardMap::new(self.executors));
        let store = self.store(node, &map);
        let chat = Chat::install(
            node.clone(),
            io.clone(),
            self.cfg.clone(),
            map,
            store,
            Services {
                durable: self.durable.clone(),
                events: self.events.clone(),
            },
            self.auth.clone(),
        );
        if let store::Store::Redis(r) = chat.store() {
            let f =
                fanout::Fanout::install(r.conn().clone(), r.keys().clone(), Rc::downgrade(&chat));
            chat.set_fanout(f.clone());
            // What this executor's connection did, for the operator (and the benchmarks'
            // round trips per message), when the node stops.
            let (conn, stopping) = (r.conn().single().cloned(), node.stopping());
            glommio::spawn_local(async move {
                stopping.await;
                let Some(conn) = conn else { return };
                let s = conn.stats();
                tracing::info!(
                    connects = s.connects,
                    disconnects = s.disconnects,
                    commands = s.commands,
                    writes = s.flushes,
                    replies = s.replies,
                    pushes = s.pushes,
                    timeouts = s.timeouts,
                    refused = s.refused,
                    script_reloads = s.script_reloads,
                    "redis connection"
                );
            })
            .detach();
            if chat.is_queue_executor() {
                glommio::spawn_local(async move {
                    // Until Redis answers; the subscription then survives reconnects.
                    while let Err(e) = f.watch_queue().await {
                        tracing::warn!(error = %e, "cannot subscribe to queue changes yet");
                        glommio::timer::sleep(std::time::Duration::from_secs(1)).await;
                    }
                })
                .detach();
            }
        }
        glommio::spawn_local(housekeeping::run(Rc::downgrade(&chat))).detach();
        Rc::new(ChatLocal {
            sio: io.engine_app(),
            chat,
            api: api::Api::default(),
        })
    }
}

/// One executor's chat application: Socket.IO plus the REST API.
struct ChatLocal {
    sio: Rc<dyn LocalApp>,
    chat: Rc<Chat>,
    api: api::Api,
}

impl EngineApp for ChatLocal {
    fn open(self: Rc<Self>, session: &Rc<Session>) -> Rc<dyn SessionHandler> {
        self.sio.clone().open(session)
    }
}

impl LocalApp for ChatLocal {
    fn on_remote(&self, msg: Remote) {
        self.sio.on_remote(msg);
    }

    fn readiness(self: Rc<Self>) -> crate::runtime::Readiness {
        Box::pin(readiness::check(self.chat.clone()))
    }

    fn http(
        self: Rc<Self>,
        req: RequestHead,
        body: Vec<u8>,
        _peer: SocketAddr,
    ) -> Option<ResponseFuture> {
        if !self.api.matches(&req.path) {
            return None;
        }
        Some(Box::pin(async move {
            self.api.serve(self.chat.clone(), req, body).await
        }))
    }
}
