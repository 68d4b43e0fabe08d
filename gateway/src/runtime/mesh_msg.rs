//! What executors send each other over the mesh.

use std::os::fd::OwnedFd;

use crate::engineio::polling::PollRequest;
use crate::engineio::websocket::WsRequest;
use crate::socketio::Remote;

/// A message for another executor of this node.
#[derive(Debug)]
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
}
