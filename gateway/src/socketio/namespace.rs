//! Namespaces: the handlers an application registers (shared by all executors) and each
//! executor's local index of the namespace's sockets and rooms.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;

use serde_json::value::RawValue;

use super::event::Event;
use super::socket::Socket;
use crate::error::CloseReason;

/// A refused namespace connection: the client gets `connect_error` with this message.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// `err.message` on the client.
    pub message: String,
    /// `err.data` on the client.
    pub data: Option<serde_json::Value>,
}

impl Refusal {
    /// A refusal with a message and no data.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            data: None,
        }
    }
}

/// What a connect handler sees.
#[derive(Debug)]
pub struct ConnectContext {
    /// The socket being connected; emits made now are sent right after the CONNECT reply.
    pub socket: Rc<Socket>,
    /// The CONNECT packet's auth payload, if any.
    pub auth: Option<Box<RawValue>>,
}

/// The future an async connect handler returns.
pub type ConnectFuture = Pin<Box<dyn Future<Output = Result<(), Refusal>>>>;
type ConnectFn = Arc<dyn Fn(ConnectContext) -> ConnectFuture + Send + Sync>;
type EventFn = Arc<dyn Fn(&Rc<Socket>, Event<'_>) + Send + Sync>;
type DisconnectFn = Arc<dyn Fn(&Rc<Socket>, CloseReason) + Send + Sync>;

/// A namespace and its handlers. Handlers are `Send + Sync` because every executor runs
/// them; they run on the executor that owns the socket, so they can use that executor's
/// state through [`super::Io::current`].
#[derive(Clone)]
pub struct Namespace {
    name: String,
    on_connect: Option<ConnectFn>,
    events: HashMap<String, EventFn>,
    fallback: Option<EventFn>,
    on_disconnect: Option<DisconnectFn>,
}

impl std::fmt::Debug for Namespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Namespace")
            .field("name", &self.name)
            .field("events", &self.events.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Namespace {
    /// A namespace named `name` (`/`, `/custom`) that accepts every connection.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            on_connect: None,
            events: HashMap::new(),
            fallback: None,
            on_disconnect: None,
        }
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Decides on connections synchronously (see [`Namespace::on_connect_async`]).
    pub fn on_connect<F>(self, f: F) -> Self
    where
        F: Fn(&ConnectContext) -> Result<(), Refusal> + Send + Sync + 'static,
    {
        self.on_connect_async(move |ctx| {
            let r = f(&ctx);
            Box::pin(async move { r })
        })
    }

    /// Decides on connections; may await (e.g. a reply from another executor). Emits made by
    /// the handler reach the client after the CONNECT reply; an `Err` refuses with
    /// CONNECT_ERROR.
    pub fn on_connect_async<F>(mut self, f: F) -> Self
    where
        F: Fn(ConnectContext) -> ConnectFuture + Send + Sync + 'static,
    {
        self.on_connect = Some(Arc::new(f));
        self
    }

    /// Handles event `name`.
    pub fn on<F>(mut self, name: impl Into<String>, f: F) -> Self
    where
        F: Fn(&Rc<Socket>, Event<'_>) + Send + Sync + 'static,
    {
        self.events.insert(name.into(), Arc::new(f));
        self
    }

    /// Handles every event that has no handler of its own.
    pub fn on_any<F>(mut self, f: F) -> Self
    where
        F: Fn(&Rc<Socket>, Event<'_>) + Send + Sync + 'static,
    {
        self.fallback = Some(Arc::new(f));
        self
    }

    /// Runs when a connected socket leaves (any reason).
    pub fn on_disconnect<F>(mut self, f: F) -> Self
    where
        F: Fn(&Rc<Socket>, CloseReason) + Send + Sync + 'static,
    {
        self.on_disconnect = Some(Arc::new(f));
        self
    }
}

/// Members of one room, by socket id.
type RoomMembers = HashMap<Rc<str>, Rc<Socket>>;

/// One executor's sockets and rooms of a namespace.
///
/// Lives on: one executor; knows only the sockets that executor owns.
pub struct LocalNamespace {
    cfg: Arc<Namespace>,
    name: Rc<str>,
    sockets: RefCell<HashMap<Rc<str>, Rc<Socket>>>,
    rooms: RefCell<HashMap<Rc<str>, RoomMembers>>,
}

impl std::fmt::Debug for LocalNamespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalNamespace")
            .field("name", &self.name)
            .finish()
    }
}

impl LocalNamespace {
    pub(crate) fn new(cfg: Arc<Namespace>) -> Rc<Self> {
        Rc::new(Self {
            name: cfg.name.as_str().into(),
            cfg,
            sockets: RefCell::new(HashMap::new()),
            rooms: RefCell::new(HashMap::new()),
        })
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn name_rc(&self) -> &Rc<str> {
        &self.name
    }

    pub(crate) fn connect_handler(&self) -> Option<&ConnectFn> {
        self.cfg.on_connect.as_ref()
    }

    pub(crate) fn insert(&self, socket: &Rc<Socket>) {
        self.sockets
            .borrow_mut()
            .insert(socket.id_rc().clone(), socket.clone());
    }

    pub(crate) fn remove(&self, id: &str) {
        self.sockets.borrow_mut().remove(id);
    }

    /// Rooms with at least one local member.
    pub fn room_count(&self) -> usize {
        self.rooms.borrow().len()
    }

    pub(crate) fn add_to_room(&self, room: &str, socket: &Rc<Socket>) -> Rc<str> {
        let mut rooms = self.rooms.borrow_mut();
        let key = match rooms.get_key_value(room) {
            Some((k, _)) => k.clone(),
            None => Rc::from(room),
        };
        rooms
            .entry(key.clone())
            .or_default()
            .insert(socket.id_rc().clone(), socket.clone());
        key
    }

    pub(crate) fn remove_from_room(&self, room: &str, id: &str) {
        let mut rooms = self.rooms.borrow_mut();
        if let Some(members) = rooms.get_mut(room) {
            members.remove(id);
            if members.is_empty() {
                rooms.remove(room);
            }
        }
    }

    /// Calls `f` for every live (connected or connecting) local socket in any of `rooms` (all sockets of the
    /// namespace when `rooms` is empty), once each, skipping sockets that are in `except`
    /// (by id or by room).
    pub(crate) fn for_each_member(
        &self,
        rooms: &[Rc<str>],
        except: &[Rc<str>],
        mut f: impl FnMut(&Rc<Socket>),
    ) {
        let excluded = |s: &Rc<Socket>| except.iter().any(|e| **e == *s.id() || s.in_room(e));
        // Collect first: `f` may make sockets join or leave rooms.
        let mut targets: Vec<Rc<Socket>> = Vec::new();
        if rooms.is_empty() {
            targets.extend(self.sockets.borrow().values().cloned());
        } else {
            let index = self.rooms.borrow();
            for room in rooms {
                if let Some(members) = index.get(room) {
                    targets.extend(members.values().cloned());
                }
            }
            if rooms.len() > 1 {
                targets.sort_by(|a, b| a.id().cmp(b.id()));
                targets.dedup_by(|a, b| a.id() == b.id());
            }
        }
        // Sockets still connecting are included: their frames are held until the CONNECT reply,
        // so a socket that joined a room during its connect handler misses nothing.
        let live = |s: &Rc<Socket>| s.state() != super::socket::State::Disconnected;
        for s in targets
            .iter()
            .filter(|s| live(s) && (except.is_empty() || !excluded(s)))
        {
            f(s);
        }
    }

    pub(crate) fn dispatch(&self, socket: &Rc<Socket>, event: Event<'_>) {
        let handler = self
            .cfg
            .events
            .get(event.name)
            .or(self.cfg.fallback.as_ref());
        if let Some(h) = handler {
            h(socket, event);
        }
    }

    pub(crate) fn on_disconnect(&self, socket: &Rc<Socket>, reason: CloseReason) {
        self.remove(socket.id());
        if let Some(h) = &self.cfg.on_disconnect {
            h(socket, reason);
        }
    }
}
