//! What executors send each other over the mesh.

use std::os::fd::OwnedFd;
use std::rc::Rc;

use crate::engineio::polling::PollRequest;
use crate::engineio::websocket::WsRequest;
use crate::socketio::Remote;

use super::Node;

/// Work to run on another executor, with that executor's context.
pub type RunFn = Box<dyn FnOnce(&Rc<Node>) + Send>;

/// A message for another executor of this node.
pub enum MeshMsg {
    /// A polling GET/POST for a session the receiver owns.
    Poll(PollRequest),
    /// The client gave up on a parked GET for this sid.
    PollAborted(String),
    /// A WebSocket upgrade for a session the receiver owns: the connection itself moves.
    WebSocket {
        /// The TCP connection.
        fd: OwnedFd,
        /// The checked upgrade request.
        req: WsRequest,
    },
    /// Socket.IO work: broadcasts and operations on sockets the receiver owns.
    SocketIo(Remote),
    /// Application work for the receiver (e.g. a command for a conversation it owns). Runs in
    /// arrival order, interleaved with the other messages of the same sender.
    Run(RunFn),
}

impl std::fmt::Debug for MeshMsg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Poll(r) => f.debug_tuple("Poll").field(r).finish(),
            Self::PollAborted(s) => f.debug_tuple("PollAborted").field(s).finish(),
            Self::WebSocket { req, .. } => f.debug_struct("WebSocket").field("req", req).finish(),
            Self::SocketIo(r) => f.debug_tuple("SocketIo").field(r).finish(),
            Self::Run(_) => f.write_str("Run(..)"),
        }
    }
}
