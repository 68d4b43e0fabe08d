//! One Engine.IO session: its ordered outbound queue, its transport, its heartbeat.
//!
//! Lives on: the executor whose id is encoded in the sid (see `livechat_shard_router::OwnedIds`).
//! Every packet for the session, whatever executor produced it, is pushed here, so text packets
//! and binary attachments leave in exactly the order they were queued (one writer per session).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::{Rc, Weak};
use std::time::Instant;

use livechat_shard_router::Counters;

use super::handler::{Handshake, SessionHandler};
use super::packet::{encode_payload, Frame};
use super::polling::PollReply;
use super::Engine;
use crate::error::{CloseReason, EngineErrorCode, GatewayError};
use crate::runtime::LocalEvent;

/// Which transport currently carries the session's outbound packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// HTTP long-polling: packets wait for the next GET.
    Polling,
    /// WebSocket: a writer task drains the queue.
    WebSocket,
}

/// Progress of a polling → WebSocket upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upgrade {
    /// No WebSocket has asked to take over.
    None,
    /// A WebSocket with this sid is open but has not probed yet.
    Pending,
    /// The WebSocket answered `2probe`; polling GETs get a noop until `5` arrives.
    Probed,
}

/// An Engine.IO session.
pub struct Session {
    sid: Box<str>,
    engine: Weak<Engine>,
    handshake: Rc<Handshake>,
    transport: Cell<Transport>,
    upgrade: Cell<Upgrade>,
    closed: Cell<bool>,
    outbox: RefCell<VecDeque<Frame>>,
    /// Wakes the WebSocket writer (packets queued, or closed).
    pub(crate) writable: LocalEvent,
    /// Set when a pong arrives, and when the session closes; the heartbeat task waits on it.
    pub(crate) pong: LocalEvent,
    parked_get: RefCell<Option<flume::Sender<PollReply>>>,
    /// When the parked GET was read (orders it against a second one).
    parked_received: Cell<Instant>,
    handler: RefCell<Option<Rc<dyn SessionHandler>>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("sid", &self.sid)
            .field("transport", &self.transport.get())
            .field("closed", &self.closed.get())
            .finish()
    }
}

impl Session {
    pub(crate) fn new(
        sid: String,
        engine: &Rc<Engine>,
        handshake: Rc<Handshake>,
        transport: Transport,
    ) -> Rc<Self> {
        Rc::new(Self {
            sid: sid.into_boxed_str(),
            engine: Rc::downgrade(engine),
            handshake,
            transport: Cell::new(transport),
            upgrade: Cell::new(Upgrade::None),
            closed: Cell::new(false),
            outbox: RefCell::new(VecDeque::new()),
            writable: LocalEvent::default(),
            pong: LocalEvent::default(),
            parked_get: RefCell::new(None),
            parked_received: Cell::new(Instant::now()),
            handler: RefCell::new(None),
        })
    }

    /// The session id (carries the owner executor).
    pub fn sid(&self) -> &str {
        &self.sid
    }

    /// What the client sent when the session opened.
    pub fn handshake(&self) -> &Rc<Handshake> {
        &self.handshake
    }

    /// The current transport.
    pub fn transport(&self) -> Transport {
        self.transport.get()
    }

    /// Whether the session has ended.
    pub fn is_closed(&self) -> bool {
        self.closed.get()
    }

    pub(crate) fn upgrade_state(&self) -> Upgrade {
        self.upgrade.get()
    }

    pub(crate) fn set_upgrade_state(&self, u: Upgrade) {
        self.upgrade.set(u);
    }

    pub(crate) fn set_handler(&self, h: Rc<dyn SessionHandler>) {
        *self.handler.borrow_mut() = Some(h);
    }

    pub(crate) fn handler(&self) -> Option<Rc<dyn SessionHandler>> {
        self.handler.borrow().clone()
    }

    /// Queues one packet. Returns false when the session is closed (the packet is dropped).
    pub fn send(self: &Rc<Self>, frame: Frame) -> bool {
        self.send_all(std::iter::once(frame))
    }

    /// Queues packets back to back, so nothing queued by anyone else can come between them
    /// (a binary event's text part and its attachments).
    pub fn send_all(self: &Rc<Self>, frames: impl IntoIterator<Item = Frame>) -> bool {
        if self.closed.get() {
            return false;
        }
        let overflow = {
            let mut q = self.outbox.borrow_mut();
            q.extend(frames);
            let limit = self
                .engine
                .upgrade()
                .map_or(usize::MAX, |e| e.config().max_queued_packets);
            q.len() > limit
        };
        if overflow {
            if let Some(e) = self.engine.upgrade() {
                Counters::bump(&e.node().counters().outbox_overflow);
            }
            self.close(CloseReason::SlowConsumer);
            return false;
        }
        self.flush();
        true
    }

    /// Hands queued packets to whoever can carry them now: the parked GET or the WS writer.
    pub(crate) fn flush(self: &Rc<Self>) {
        match self.transport.get() {
            Transport::WebSocket => self.writable.notify(),
            Transport::Polling => {
                if self.outbox.borrow().is_empty() {
                    return;
                }
                let Some(tx) = self.parked_get.borrow_mut().take() else {
                    return;
                };
                let _ = tx.try_send(PollReply::ok_payload(self.drain_payload()));
            }
        }
    }

    /// Takes queued packets for one polling response, at most `maxPayload` bytes (at least one).
    pub(crate) fn drain_payload(&self) -> Vec<u8> {
        let max = self
            .engine
            .upgrade()
            .map_or(usize::MAX, |e| e.config().max_payload);
        let mut q = self.outbox.borrow_mut();
        let mut size = 0;
        let mut n = 0;
        for f in q.iter() {
            let add = f.payload_len() + usize::from(n > 0);
            if n > 0 && size + add > max {
                break;
            }
            size += add;
            n += 1;
        }
        let mut body = Vec::with_capacity(size);
        encode_payload(q.iter().take(n), &mut body);
        q.drain(..n);
        body
    }

    /// Takes the oldest queued packet (the WebSocket writer encodes them into one buffer).
    pub(crate) fn pop_outbound(&self) -> Option<Frame> {
        self.outbox.borrow_mut().pop_front()
    }

    /// Whether packets are waiting to be sent.
    pub(crate) fn has_outbound(&self) -> bool {
        !self.outbox.borrow().is_empty()
    }

    /// Takes every queued packet (tests and benches use it to read what a session would send).
    pub fn drain_into(&self, out: &mut Vec<Frame>) {
        out.extend(self.outbox.borrow_mut().drain(..));
    }

    /// Parks a polling GET, or answers it at once when packets are waiting. A second GET while
    /// one is parked is a protocol violation: the parked one gets a close packet, the session ends.
    ///
    /// Which of the two was first is decided by when they were read (`received`), not by
    /// arrival here: read by two executors, the earlier one may reach the owner second. The
    /// first gets the close packet and the later one 400, as in the reference server, whatever
    /// the order of arrival (a client that gave up on the first then sees its next GET refused).
    pub(crate) fn park_get(self: &Rc<Self>, reply: flume::Sender<PollReply>, received: Instant) {
        let parked = self.parked_get.borrow_mut().take();
        if let Some(parked) = parked {
            let (first, later) = if received < self.parked_received.get() {
                (reply, parked)
            } else {
                (parked, reply)
            };
            let _ = later.try_send(PollReply::bad_request());
            let _ = first.try_send(PollReply::ok_payload(b"1".to_vec()));
            self.close(CloseReason::TransportError);
            return;
        }
        if self.upgrade.get() == Upgrade::Probed {
            // The client is switching to WebSocket: release it at once.
            let _ = reply.try_send(PollReply::ok_payload(b"6".to_vec()));
            return;
        }
        if !self.outbox.borrow().is_empty() {
            let _ = reply.try_send(PollReply::ok_payload(self.drain_payload()));
            return;
        }
        self.parked_received.set(received);
        *self.parked_get.borrow_mut() = Some(reply);
    }

    /// Answers a parked GET with a noop (upgrade probe succeeded, or session closing).
    pub(crate) fn release_get(&self) {
        if let Some(tx) = self.parked_get.borrow_mut().take() {
            let _ = tx.try_send(PollReply::ok_payload(b"6".to_vec()));
        }
    }

    /// Switches outbound traffic to the WebSocket (after `5`).
    pub(crate) fn switch_to_websocket(self: &Rc<Self>) {
        self.release_get();
        self.transport.set(Transport::WebSocket);
        self.upgrade.set(Upgrade::None);
        self.writable.notify();
    }

    /// The client sent a close packet: ends the session. A polling client's next GET may
    /// still be on its way (from another executor) when none is parked: it is answered `6`
    /// like a parked one (see `closed_sids`).
    pub(crate) fn close_by_client(self: &Rc<Self>) {
        if self.closed.get() {
            return;
        }
        if self.parked_get.borrow().is_none() && self.transport.get() == Transport::Polling {
            if let Some(engine) = self.engine.upgrade() {
                engine.remember_client_close(&self.sid);
            }
        }
        self.close(CloseReason::TransportClose);
    }

    /// A polling GET that its client abandoned before the server read it (the connection was
    /// already closed): the session ends as for a cancelled parked GET. A GET parked now came
    /// later and overtook it between executors; it gets the 400 it would have got after the
    /// end.
    pub(crate) fn abandon_get(self: &Rc<Self>) {
        if let Some(tx) = self.parked_get.borrow_mut().take() {
            let err = GatewayError::Refused(EngineErrorCode::SessionIdUnknown);
            let _ = tx.try_send(PollReply::error(&err));
        }
        self.close(CloseReason::TransportClose);
    }

    /// Ends the session: tells the layer above, forgets the sid, releases a parked GET and
    /// stops the heartbeat. Idempotent.
    pub fn close(self: &Rc<Self>, reason: CloseReason) {
        if self.closed.replace(true) {
            return;
        }
        tracing::debug!(sid = %self.sid, reason = reason.as_str(), "session closed");
        let parked = self.parked_get.borrow_mut().take();
        if let Some(tx) = parked {
            // A client-sent close gets a noop (it already knows); so does a node shutting down,
            // whose clients must take it for a lost transport and reconnect elsewhere (their
            // next request fails), as WebSocket clients do on its bare close frame — a close
            // packet would tell some clients (python-socketio) not to come back. Anything
            // else is told.
            let body = if matches!(reason, CloseReason::TransportClose | CloseReason::Shutdown) {
                b"6"
            } else {
                b"1"
            };
            let _ = tx.try_send(PollReply::ok_payload(body.to_vec()));
        }
        self.writable.notify();
        if let Some(engine) = self.engine.upgrade() {
            engine.forget(&self.sid);
        }
        let handler = self.handler.borrow_mut().take();
        if let Some(h) = handler {
            h.on_close(self, reason);
        }
        // Ends the heartbeat task: it wakes, sees the session closed and returns. It is never
        // cancelled instead: cancelling a pending glommio 0.9 task (dropping its `Task`) leaks
        // the task's allocation (`JoinHandle::cancel` takes one reference too many), ~310 B
        // per session that was never given back.
        self.pong.notify();
    }
}
