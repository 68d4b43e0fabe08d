//! The Socket.IO side of one Engine.IO session: namespace connections, binary reassembly,
//! the connect timeout, and dispatch of decoded packets.
//!
//! Lives on: the session's owner executor.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::Poll;

use bytes::Bytes;
use livechat_shard_router::Counters;
use serde_json::value::RawValue;

use super::event::{AckResponse, AckSender, Event};
use super::namespace::{ConnectContext, Refusal};
use super::packet::{decode, encode_connect, encode_connect_error, Packet, PacketKind, Payload};
use super::socket::{Socket, State};
use super::IoInner;
use crate::engineio::{Frame, Session, SessionHandler};
use crate::error::CloseReason;
use crate::runtime::LocalEvent;

/// A packet whose binary attachments are still arriving.
struct Partial {
    text: String,
    needed: usize,
    binary: Vec<Bytes>,
}

/// Socket.IO state of one Engine.IO session.
pub(crate) struct SioConn {
    me: Weak<SioConn>,
    io: Rc<IoInner>,
    sockets: RefCell<HashMap<Rc<str>, Rc<Socket>>>,
    partial: RefCell<Option<Partial>>,
    /// Ends the connect-timeout task early: notified by the first CONNECT and by the close.
    connect_timer_stop: LocalEvent,
}

impl SioConn {
    pub(crate) fn new(io: Rc<IoInner>, session: &Rc<Session>) -> Rc<Self> {
        let timeout = io.node().config().connect_timeout;
        let weak_session = Rc::downgrade(session);
        let conn = Rc::new_cyclic(|me| SioConn {
            me: me.clone(),
            io,
            sockets: RefCell::new(HashMap::new()),
            partial: RefCell::new(None),
            connect_timer_stop: LocalEvent::default(),
        });
        let weak_conn = Rc::downgrade(&conn);
        // Detached, and stopped by `connect_timer_stop` rather than cancelled: cancelling a
        // pending glommio 0.9 task leaks its allocation (see `engineio::heartbeat`), one per
        // session here.
        glommio::spawn_local(async move {
            let mut timer = glommio::timer::Timer::new(timeout);
            let fired = poll_fn(|cx| {
                let Some(conn) = weak_conn.upgrade() else {
                    return Poll::Ready(false);
                };
                if conn.connect_timer_stop.poll_wait(cx).is_ready() {
                    return Poll::Ready(false);
                }
                Pin::new(&mut timer).poll(cx).map(|_| true)
            })
            .await;
            if !fired {
                return;
            }
            let (Some(session), Some(conn)) = (weak_session.upgrade(), weak_conn.upgrade()) else {
                return;
            };
            if conn.sockets.borrow().is_empty() {
                session.close(CloseReason::ConnectTimeout);
            }
        })
        .detach();
        conn
    }

    fn fail(&self, session: &Rc<Session>, why: &dyn std::fmt::Display) {
        tracing::debug!(sid = session.sid(), error = %why, "closing session on invalid socket.io packet");
        session.close(CloseReason::ParseError);
    }

    fn handle(&self, session: &Rc<Session>, p: Packet<'_>, binary: &[Bytes]) {
        match p.kind {
            PacketKind::Connect => {
                let auth = match p.payload {
                    Payload::Raw(raw) => Some(raw.to_owned()),
                    _ => None,
                };
                self.connect(session, p.nsp, auth);
            }
            PacketKind::Disconnect => {
                let socket = self.sockets.borrow_mut().remove(p.nsp);
                if let Some(s) = socket {
                    s.cleanup(CloseReason::ClientClose);
                }
            }
            PacketKind::Event | PacketKind::BinaryEvent => {
                let Some(socket) = self.connected(p.nsp) else {
                    return;
                };
                if let Payload::Event { name, args } = &p.payload {
                    let ack = p.id.map(|id| AckSender {
                        socket: socket.clone(),
                        id,
                    });
                    let event = Event {
                        name,
                        args,
                        binary,
                        ack,
                    };
                    socket.local_namespace().clone().dispatch(&socket, event);
                }
            }
            PacketKind::Ack | PacketKind::BinaryAck => {
                let (Some(socket), Some(id), Payload::Ack { args }) =
                    (self.connected(p.nsp), p.id, &p.payload)
                else {
                    return;
                };
                let resp = AckResponse {
                    args: args.iter().map(|a| (*a).to_owned()).collect(),
                    binary: binary.to_vec(),
                };
                if !socket.resolve_ack(id, resp) {
                    Counters::bump(&self.io.node().counters().late_acks);
                }
            }
            PacketKind::ConnectError => self.fail(session, &"client sent CONNECT_ERROR"),
        }
    }

    fn connected(&self, nsp: &str) -> Option<Rc<Socket>> {
        self.sockets
            .borrow()
            .get(nsp)
            .filter(|s| s.connected())
            .cloned()
    }

    fn connect(&self, session: &Rc<Session>, nsp_name: &str, auth: Option<Box<RawValue>>) {
        let Some(nsp) = self.io.namespace(nsp_name) else {
            let mut out = vec![b'4'];
            encode_connect_error(&mut out, nsp_name, "Invalid namespace", None);
            session.send(Frame::text(out));
            return;
        };
        if self.sockets.borrow().contains_key(nsp_name) {
            return;
        }
        self.connect_timer_stop.notify();
        let socket = Socket::new(
            self.io.node().ids().next_id(),
            nsp.clone(),
            session.clone(),
            Rc::downgrade(&self.io),
        );
        self.sockets
            .borrow_mut()
            .insert(nsp.name_rc().clone(), socket.clone());
        self.io.register_socket(&socket);
        match nsp.connect_handler() {
            None => self.accept(&socket),
            Some(handler) => {
                let fut = handler(ConnectContext {
                    socket: socket.clone(),
                    auth,
                });
                let me = self.me.clone();
                glommio::spawn_local(async move {
                    let result = fut.await;
                    let Some(conn) = me.upgrade() else { return };
                    match result {
                        Ok(()) => conn.accept(&socket),
                        Err(r) => conn.refuse(&socket, r),
                    }
                })
                .detach();
            }
        }
    }

    fn accept(&self, socket: &Rc<Socket>) {
        if socket.state() != State::Connecting || socket.session().is_closed() {
            return;
        }
        let mut out = vec![b'4'];
        encode_connect(&mut out, socket.namespace(), socket.id());
        socket.session().send(Frame::text(out));
        socket.local_namespace().insert(socket);
        socket.mark_connected();
    }

    fn refuse(&self, socket: &Rc<Socket>, refusal: Refusal) {
        if socket.state() != State::Connecting {
            return;
        }
        let data = refusal
            .data
            .as_ref()
            .and_then(|d| serde_json::value::to_raw_value(d).ok());
        let mut out = vec![b'4'];
        encode_connect_error(
            &mut out,
            socket.namespace(),
            &refusal.message,
            data.as_deref(),
        );
        socket.session().send(Frame::text(out));
        self.sockets.borrow_mut().remove(socket.namespace());
        socket.cleanup(CloseReason::ServerClose);
    }
}

impl SessionHandler for SioConn {
    fn on_message(&self, session: &Rc<Session>, text: &str) {
        if self.partial.borrow().is_some() {
            return self.fail(session, &"text packet during binary reassembly");
        }
        match decode(text) {
            Err(e) => self.fail(session, &e),
            Ok(p) if p.kind.is_binary() && p.attachments > 0 => {
                *self.partial.borrow_mut() = Some(Partial {
                    text: text.to_owned(),
                    needed: p.attachments,
                    binary: Vec::with_capacity(p.attachments),
                });
            }
            Ok(p) => self.handle(session, p, &[]),
        }
    }

    fn on_binary(&self, session: &Rc<Session>, data: &[u8]) {
        let complete = {
            let mut partial = self.partial.borrow_mut();
            let Some(p) = partial.as_mut() else {
                drop(partial);
                return self.fail(session, &"binary packet when none was expected");
            };
            p.binary.push(Bytes::copy_from_slice(data));
            if p.binary.len() == p.needed {
                partial.take()
            } else {
                None
            }
        };
        if let Some(p) = complete {
            match decode(&p.text) {
                Ok(packet) => self.handle(session, packet, &p.binary),
                Err(e) => self.fail(session, &e),
            }
        }
    }

    fn on_close(&self, _session: &Rc<Session>, reason: CloseReason) {
        self.connect_timer_stop.notify();
        let sockets: Vec<_> = self.sockets.borrow_mut().drain().map(|(_, s)| s).collect();
        for s in sockets {
            s.cleanup(reason);
        }
    }
}
