//! One client's connection to one namespace: its id, rooms, pending acks and typed data.
//!
//! Lives on: the executor that owns the underlying Engine.IO session (and so the socket id's
//! owner executor). Other executors reach it through [`super::Io::socket_op`].

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::{Rc, Weak};
use std::time::Duration;

use bytes::Bytes;
use futures_lite::future;
use serde::Serialize;
use serde_json::value::RawValue;

use super::event::{encode_json, encode_raw, AckError, AckResponse};
use super::namespace::LocalNamespace;
use super::packet::encode_disconnect;
use super::{BroadcastOperator, IoInner};
use crate::engineio::{Frame, Handshake, Session};
use crate::error::CloseReason;

/// Lifecycle of a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    /// The connect handler is running; emits are held until the CONNECT reply is out.
    Connecting,
    /// Connected.
    Connected,
    /// Gone.
    Disconnected,
}

/// A connected (or connecting) socket. Handlers get `&Rc<Socket>`.
pub struct Socket {
    id: Rc<str>,
    nsp: Rc<LocalNamespace>,
    session: Rc<Session>,
    io: Weak<IoInner>,
    state: Cell<State>,
    held: RefCell<Vec<Frame>>,
    disconnect_when_connected: Cell<bool>,
    rooms: RefCell<Vec<Rc<str>>>,
    acks: RefCell<HashMap<u64, flume::Sender<AckResponse>>>,
    next_ack: Cell<u64>,
    data: RefCell<Option<Box<dyn Any>>>,
}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("id", &self.id)
            .field("nsp", &self.nsp.name())
            .field("state", &self.state.get())
            .finish()
    }
}

impl Socket {
    pub(crate) fn new(
        id: String,
        nsp: Rc<LocalNamespace>,
        session: Rc<Session>,
        io: Weak<IoInner>,
    ) -> Rc<Self> {
        Rc::new(Self {
            id: id.into(),
            nsp,
            session,
            io,
            state: Cell::new(State::Connecting),
            held: RefCell::new(Vec::new()),
            disconnect_when_connected: Cell::new(false),
            rooms: RefCell::new(Vec::new()),
            acks: RefCell::new(HashMap::new()),
            next_ack: Cell::new(0),
            data: RefCell::new(None),
        })
    }

    /// The socket id (not the Engine.IO sid); it names the owner executor.
    pub fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn id_rc(&self) -> &Rc<str> {
        &self.id
    }

    /// The namespace name.
    pub fn namespace(&self) -> &str {
        self.nsp.name()
    }

    pub(crate) fn local_namespace(&self) -> &Rc<LocalNamespace> {
        &self.nsp
    }

    /// The HTTP request that opened the underlying session.
    pub fn handshake(&self) -> &Rc<Handshake> {
        self.session.handshake()
    }

    /// Whether the socket is connected.
    pub fn connected(&self) -> bool {
        self.state.get() == State::Connected
    }

    pub(crate) fn state(&self) -> State {
        self.state.get()
    }

    pub(crate) fn session(&self) -> &Rc<Session> {
        &self.session
    }

    /// Queues encoded frames for this client, in order. Frames queued while the connect handler
    /// runs wait for the CONNECT reply.
    pub(crate) fn push_frames(&self, frames: impl IntoIterator<Item = Frame>) {
        match self.state.get() {
            State::Connected => {
                self.session.send_all(frames);
            }
            State::Connecting => self.held.borrow_mut().extend(frames),
            State::Disconnected => {}
        }
    }

    /// Marks the socket connected, after the CONNECT reply, and releases held emits.
    pub(crate) fn mark_connected(self: &Rc<Self>) {
        self.state.set(State::Connected);
        let held = std::mem::take(&mut *self.held.borrow_mut());
        if !held.is_empty() {
            self.session.send_all(held);
        }
        if self.disconnect_when_connected.get() {
            self.disconnect();
        }
    }

    /// Emits `event` with one JSON argument.
    pub fn emit<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
    ) -> Result<(), serde_json::Error> {
        self.push_frames(encode_json(self.namespace(), None, event, data)?);
        Ok(())
    }

    /// Emits `event` with raw JSON arguments and binary attachments (placeholders in `args`
    /// refer to `binary` by index).
    pub fn emit_raw(&self, event: &str, args: &[&RawValue], binary: &[Bytes]) {
        let frames = encode_raw(
            self.namespace(),
            None,
            event,
            args.iter().map(|a| a.get()),
            binary,
        );
        self.push_frames(frames);
    }

    /// Emits `event` with raw arguments and waits up to `timeout` for the client's ack.
    pub async fn emit_with_ack(
        &self,
        event: &str,
        args: &[&RawValue],
        binary: &[Bytes],
        timeout: Duration,
    ) -> Result<AckResponse, AckError> {
        if self.state.get() == State::Disconnected {
            return Err(AckError::Disconnected);
        }
        let id = self.next_ack.get();
        self.next_ack.set(id + 1);
        let (tx, rx) = flume::bounded(1);
        self.acks.borrow_mut().insert(id, tx);
        let frames = encode_raw(
            self.namespace(),
            Some(id),
            event,
            args.iter().map(|a| a.get()),
            binary,
        );
        self.push_frames(frames);
        let result = future::or(
            async { rx.recv_async().await.map_err(|_| AckError::Disconnected) },
            async {
                glommio::timer::sleep(timeout).await;
                Err(AckError::Timeout)
            },
        )
        .await;
        self.acks.borrow_mut().remove(&id);
        result
    }

    /// Delivers a client's ACK; false when nobody waits for that id any more.
    pub(crate) fn resolve_ack(&self, id: u64, resp: AckResponse) -> bool {
        match self.acks.borrow_mut().remove(&id) {
            Some(tx) => tx.try_send(resp).is_ok(),
            None => false,
        }
    }

    /// Joins a room of this namespace (on this executor's room index).
    pub fn join(self: &Rc<Self>, room: &str) {
        if self.state.get() == State::Disconnected
            || self.rooms.borrow().iter().any(|r| &**r == room)
        {
            return;
        }
        let room = self.nsp.add_to_room(room, self);
        self.rooms.borrow_mut().push(room);
    }

    /// Leaves a room.
    pub fn leave(&self, room: &str) {
        let mut rooms = self.rooms.borrow_mut();
        if let Some(i) = rooms.iter().position(|r| &**r == room) {
            rooms.swap_remove(i);
            self.nsp.remove_from_room(room, &self.id);
        }
    }

    /// The rooms this socket is in.
    pub fn rooms(&self) -> Vec<String> {
        self.rooms.borrow().iter().map(|r| r.to_string()).collect()
    }

    /// Whether the socket is in `room`.
    pub fn in_room(&self, room: &str) -> bool {
        self.rooms.borrow().iter().any(|r| &**r == room)
    }

    /// Bumps this executor's counters (nothing once the server is gone).
    pub(crate) fn count(&self, f: impl FnOnce(&crate::metrics::ExecutorMetrics)) {
        if let Some(io) = self.io.upgrade() {
            f(io.node().metrics());
        }
    }

    /// This executor's Socket.IO server.
    pub fn io(&self) -> Option<super::Io> {
        self.io.upgrade().map(super::Io)
    }

    /// Broadcast to `room`, excluding this socket (like `socket.to(room)` in Node).
    pub fn to(&self, room: &str) -> BroadcastOperator {
        BroadcastOperator::new(self.io.clone(), self.nsp.name_rc().clone())
            .to(room)
            .except(&self.id)
    }

    /// Stores typed per-socket data (replacing any previous value).
    pub fn set_data<T: Any>(&self, value: T) {
        *self.data.borrow_mut() = Some(Box::new(value));
    }

    /// Reads the typed per-socket data, if it is a `T`.
    pub fn with_data<T: Any, R>(&self, f: impl FnOnce(Option<&T>) -> R) -> R {
        let data = self.data.borrow();
        f(data.as_ref().and_then(|d| d.downcast_ref::<T>()))
    }

    /// Disconnects this socket from its namespace: the client gets a DISCONNECT packet
    /// (`io server disconnect`); the Engine.IO session stays open for other namespaces.
    /// Called while the connect handler runs, it takes effect right after the CONNECT reply
    /// and the emits made so far (a refusal explained with an event, then a disconnect).
    pub fn disconnect(self: &Rc<Self>) {
        match self.state.get() {
            State::Disconnected => return,
            State::Connecting => {
                self.disconnect_when_connected.set(true);
                return;
            }
            State::Connected => {}
        }
        let mut out = vec![b'4'];
        encode_disconnect(&mut out, self.namespace());
        self.session.send(Frame::text(out));
        self.cleanup(CloseReason::ServerClose);
    }

    /// Removes the socket from rooms and indexes and runs the disconnect handler. Idempotent.
    pub(crate) fn cleanup(self: &Rc<Self>, reason: CloseReason) {
        let was = self.state.replace(State::Disconnected);
        if was == State::Disconnected {
            return;
        }
        self.held.borrow_mut().clear();
        // Wake ack waiters with "disconnected".
        self.acks.borrow_mut().clear();
        for room in std::mem::take(&mut *self.rooms.borrow_mut()) {
            self.nsp.remove_from_room(&room, &self.id);
        }
        if let Some(io) = self.io.upgrade() {
            io.forget_socket(self);
        }
        if was == State::Connected {
            self.nsp.on_disconnect(self, reason);
        }
    }
}
