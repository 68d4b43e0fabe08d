//! The Socket.IO server: [`SocketIo`] (what the application configures, shared by all
//! executors) and [`Io`] (one executor's running server: its sockets, rooms and mesh).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;
use livechat_shard_router::{Counters, ExecutorId};
use serde::Serialize;

use super::broadcast::{deliver_local, BroadcastOperator};
use super::conn::SioConn;
use super::event::{encode_json, encode_raw};
use super::namespace::{LocalNamespace, Namespace};
use super::socket::Socket;
use crate::engineio::{EngineApp, Frame, Session, SessionHandler};
use crate::runtime::{AppFactory, LocalApp, MeshMsg, Node};

/// Work for the executor that owns a socket, or for every executor (broadcasts).
#[derive(Debug)]
pub enum Remote {
    /// Deliver encoded frames to local members of `rooms` in `nsp` (all when empty).
    Broadcast {
        /// Namespace.
        nsp: String,
        /// Rooms (union); empty = the whole namespace.
        rooms: Vec<String>,
        /// Socket ids or rooms to skip.
        except: Vec<String>,
        /// The encoded packet.
        frames: Vec<Frame>,
        /// Count each local socket reached as a delivery (`BroadcastOperator::counted`).
        counted: bool,
    },
    /// An operation on one socket owned by the receiver.
    Socket {
        /// Socket id.
        id: String,
        /// What to do.
        op: SocketOp,
    },
}

/// An operation on a socket addressed by id.
#[derive(Debug, Clone)]
pub enum SocketOp {
    /// Emit an event: name, raw JSON args, binary attachments.
    Emit {
        /// Event name.
        event: String,
        /// Arguments as JSON text.
        args: Vec<String>,
        /// Attachments.
        binary: Vec<Bytes>,
    },
    /// Join a room.
    Join(String),
    /// Leave a room.
    Leave(String),
    /// Disconnect from its namespace.
    Disconnect,
}

/// The application's Socket.IO configuration: namespaces and their handlers.
#[derive(Debug, Clone, Default)]
pub struct SocketIo {
    namespaces: HashMap<String, Arc<Namespace>>,
}

impl SocketIo {
    /// No namespaces yet: every CONNECT is refused with "Invalid namespace".
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a namespace.
    pub fn namespace(mut self, ns: Namespace) -> Self {
        self.namespaces.insert(ns.name().to_owned(), Arc::new(ns));
        self
    }
}

impl SocketIo {
    /// This executor's server (for applications that wrap the Socket.IO server).
    pub fn build_io(&self, node: &Rc<Node>) -> Io {
        Io(self.build_inner(node))
    }

    fn build_inner(&self, node: &Rc<Node>) -> Rc<IoInner> {
        let namespaces = self
            .namespaces
            .iter()
            .map(|(k, v)| (k.clone(), LocalNamespace::new(v.clone())))
            .collect();
        Rc::new(IoInner {
            node: node.clone(),
            namespaces,
            sockets: RefCell::new(HashMap::new()),
        })
    }
}

impl AppFactory for SocketIo {
    fn build(&self, node: &Rc<Node>) -> Rc<dyn LocalApp> {
        self.build_inner(node)
    }
}

/// One executor's Socket.IO server state.
///
/// Lives on: one executor.
pub struct IoInner {
    node: Rc<Node>,
    namespaces: HashMap<String, Rc<LocalNamespace>>,
    sockets: RefCell<HashMap<Rc<str>, Rc<Socket>>>,
}

impl std::fmt::Debug for IoInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IoInner")
            .field("executor", &self.node.executor())
            .field("sockets", &self.sockets.borrow().len())
            .finish()
    }
}

impl IoInner {
    pub(crate) fn node(&self) -> &Rc<Node> {
        &self.node
    }

    pub(crate) fn namespace(&self, name: &str) -> Option<&Rc<LocalNamespace>> {
        self.namespaces.get(name)
    }

    pub(crate) fn register_socket(&self, s: &Rc<Socket>) {
        self.sockets
            .borrow_mut()
            .insert(s.id_rc().clone(), s.clone());
    }

    pub(crate) fn forget_socket(&self, s: &Socket) {
        self.sockets.borrow_mut().remove(s.id());
    }

    fn apply(&self, id: &str, op: SocketOp) {
        let Some(socket) = self.sockets.borrow().get(id).cloned() else {
            Counters::bump(&self.node.counters().broadcast_stale_member);
            return;
        };
        match op {
            SocketOp::Emit {
                event,
                args,
                binary,
            } => {
                let frames = encode_raw(
                    socket.namespace(),
                    None,
                    &event,
                    args.iter().map(String::as_str),
                    &binary,
                );
                socket.push_frames(frames);
            }
            SocketOp::Join(room) => socket.join(&room),
            SocketOp::Leave(room) => socket.leave(&room),
            SocketOp::Disconnect => socket.disconnect(),
        }
    }
}

impl EngineApp for IoInner {
    fn open(self: Rc<Self>, session: &Rc<Session>) -> Rc<dyn SessionHandler> {
        SioConn::new(self, session)
    }
}

impl LocalApp for IoInner {
    fn on_remote(&self, msg: Remote) {
        match msg {
            Remote::Broadcast {
                nsp,
                rooms,
                except,
                frames,
                counted,
            } => {
                let rooms: Vec<Rc<str>> = rooms.iter().map(|r| Rc::from(r.as_str())).collect();
                let except: Vec<Rc<str>> = except.iter().map(|r| Rc::from(r.as_str())).collect();
                let reached = deliver_local(self, &nsp, &rooms, &except, &frames);
                if counted {
                    self.node.metrics().delivered(reached);
                }
            }
            Remote::Socket { id, op } => self.apply(&id, op),
        }
    }
}

/// A handle on this executor's Socket.IO server. Cheap to clone; not `Send`.
#[derive(Debug, Clone)]
pub struct Io(pub(crate) Rc<IoInner>);

impl Io {
    /// The executor this handle belongs to.
    pub fn executor(&self) -> ExecutorId {
        self.0.node.executor()
    }

    /// Broadcast to a room of namespace `/`, on every executor of the node.
    pub fn to(&self, room: &str) -> BroadcastOperator {
        self.of("/").to(room)
    }

    /// Broadcast to a namespace (narrow it with `.to(room)`).
    pub fn of(&self, nsp: &str) -> BroadcastOperator {
        BroadcastOperator::new(Rc::downgrade(&self.0), nsp.into())
    }

    /// A socket owned by this executor.
    pub fn local_socket(&self, id: &str) -> Option<Rc<Socket>> {
        self.0.sockets.borrow().get(id).cloned()
    }

    /// Runs `op` on the socket with this id, wherever it lives on this node. Unknown ids and
    /// full mailboxes are counted and dropped.
    pub fn socket_op(&self, id: &str, op: SocketOp) {
        match self.0.node.owner_of(id) {
            Some(owner) if owner == self.executor() => self.0.apply(id, op),
            Some(owner) => {
                let msg = MeshMsg::SocketIo(Remote::Socket {
                    id: id.to_owned(),
                    op,
                });
                if let Err(e) = self.0.node.port().try_send(owner, msg) {
                    tracing::warn!(socket = id, error = %e, "socket operation dropped");
                }
            }
            None => Counters::bump(&self.0.node.counters().broadcast_stale_member),
        }
    }

    /// Emits `event` with one JSON argument to the socket with this id, wherever it lives.
    pub fn emit_to_socket<T: Serialize + ?Sized>(
        &self,
        id: &str,
        event: &str,
        data: &T,
    ) -> Result<(), serde_json::Error> {
        if let Some(s) = self.local_socket(id) {
            s.push_frames(encode_json(s.namespace(), None, event, data)?);
            return Ok(());
        }
        let args = vec![serde_json::to_string(data)?];
        self.socket_op(
            id,
            SocketOp::Emit {
                event: event.to_owned(),
                args,
                binary: Vec::new(),
            },
        );
        Ok(())
    }

    /// Calls `f` for every connected socket of this executor in `room` of namespace `nsp`
    /// (for per-recipient payloads; pair it with [`crate::runtime::Node::run_on`] to reach
    /// the other executors).
    pub fn for_each_local_member(&self, nsp: &str, room: &str, f: impl FnMut(&Rc<Socket>)) {
        if let Some(ns) = self.0.namespace(nsp) {
            ns.for_each_member(&[Rc::from(room)], &[], f);
        }
    }

    /// The engine side of this server, for applications that wrap it.
    pub fn engine_app(&self) -> Rc<dyn LocalApp> {
        self.0.clone()
    }

    /// The node context of this executor.
    pub fn node(&self) -> &Rc<Node> {
        &self.0.node
    }

    /// Number of sockets connected on this executor.
    pub fn local_socket_count(&self) -> usize {
        self.0.sockets.borrow().len()
    }

    /// Rooms with at least one member on this executor, over every namespace.
    pub fn local_room_count(&self) -> usize {
        self.0.namespaces.values().map(|ns| ns.room_count()).sum()
    }
}
