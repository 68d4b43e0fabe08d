//! The chat product on top of the gateway: REST `/api/...`, the Socket.IO chat contract, and
//! the engine over a backend chosen at start.
//!
//! Dependencies point one way: `api`, `socket` → `engine` → `exec`, `announce` → `store`;
//! `housekeeping` → `engine`. Nothing below `engine` knows about REST or sockets.
//!
//! - [`config`]: `chat.*` settings (TOML + env).
//! - [`engine`]: one executor's engine: routing to owners, turns, the public API.
//! - [`exec`]: one lifecycle step against a store (load, decide, apply, commit, retry).
//! - [`announce`]: broadcasts, notices, queue snapshots, analytics after a commit.
//! - [`turns`]: per-conversation FIFO turns on the owner executor.
//! - [`store`]: the backend seam and its implementations.
//! - [`api`]: REST handlers.
//! - [`socket`]: Socket.IO handlers; [`socket_ctx`]: what is kept per socket.
//! - [`participant`]: development-mode authentication.
//! - [`housekeeping`]: timeouts and retention.
//! - [`ids`]: ids and the clock.

pub mod announce;
pub mod api;
pub mod config;
pub mod engine;
pub mod exec;
pub mod housekeeping;
pub mod ids;
pub mod participant;
pub mod socket;
pub mod socket_ctx;
pub mod store;
pub mod turns;

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;

use livechat_shard_router::ShardMap;

pub use config::ChatConfig;
pub use engine::Chat;

use crate::engineio::{EngineApp, Session, SessionHandler};
use crate::http::RequestHead;
use crate::runtime::{AppFactory, LocalApp, Node, ResponseFuture};
use crate::socketio::{Remote, SocketIo};

/// Builds the chat application on every executor.
#[derive(Debug, Clone)]
pub struct ChatApp {
    cfg: Arc<ChatConfig>,
    io: SocketIo,
    executors: usize,
}

impl ChatApp {
    /// The chat app for a node of `executors` executors.
    pub fn new(cfg: ChatConfig, executors: usize) -> Self {
        Self {
            cfg: Arc::new(cfg),
            io: SocketIo::new().namespace(socket::namespace()),
            executors,
        }
    }
}

impl AppFactory for ChatApp {
    fn build(&self, node: &Rc<Node>) -> Rc<dyn LocalApp> {
        let io = self.io.build_io(node);
        let map = Arc::new(ShardMap::new(self.executors));
        let store = store::Store::Embedded(store::EmbeddedStore::install(
            node,
            map.clone(),
            self.cfg.conversation.message_buffer,
            self.cfg.redis.presence_ttl.as_millis() as i64,
        ));
        let chat = Chat::install(node.clone(), io.clone(), self.cfg.clone(), map, store);
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
