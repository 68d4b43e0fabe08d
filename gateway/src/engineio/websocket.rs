//! The WebSocket transport: one task per WebSocket connection that reads frames and drains the
//! session's outbound queue, plus the polling → WebSocket upgrade (`2probe`, `3probe`, `5`).
//!
//! Lives on: the executor that owns the session (the sid names it).
//!
//! The task is one hand-written future ([`WsConn::poll_run`]), not a reader and a writer raced
//! against each other: a wake-up for outbound packets costs one `send` for everything queued,
//! and the read side is only a check of glommio's armed poll. Reads go into an executor-wide
//! scratch buffer and are parsed in place ([`super::ws_frame`]), so an idle connection holds no
//! read or write buffer at all.

use std::borrow::Cow;
use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_lite::{AsyncRead, AsyncWrite, AsyncWriteExt};
use glommio::net::TcpStream;
use glommio::timer::Timer;

use super::packet::{decode_text, Frame, Inbound};
use super::session::Upgrade;
use super::ws_frame::{encode_close, encode_frame, Flow, Opcode, WsDecoder, WsEvent};
use super::{Engine, Handshake, Session, Transport};
use crate::error::{CloseReason, EngineErrorCode, GatewayError};
use crate::http::Response;

/// Size of the executor-wide read scratch buffer: one `recv` takes at most this much.
const READ_SCRATCH: usize = 32 << 10;
/// Outbound packets are encoded into one buffer of about this size per `send`.
const WRITE_BATCH: usize = 64 << 10;
/// Reads per wake-up before the task yields to others (a client flooding us cannot starve the
/// executor).
const READ_BUDGET: usize = 16;
/// `unsent` buffers above this size are freed once drained.
const KEEP_UNSENT: usize = 4096;
/// Once the connection is ending (session closed, close frame queued), how long a peer that
/// does not read may keep it open while we try to flush: after that the TCP connection is
/// dropped, so a client that stopped reading cannot hold a descriptor and its unsent bytes.
const CLOSE_LINGER: Duration = Duration::from_secs(2);

thread_local! {
    // Executor-local (one executor per thread). Borrowed only inside one synchronous poll.
    static READ_BUF: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_SCRATCH].into_boxed_slice());
    static WRITE_BUF: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(WRITE_BATCH + 1024));
}

/// A WebSocket request that passed the HTTP checks, ready to be served on the session owner.
#[derive(Debug)]
pub struct WsRequest {
    /// `Sec-WebSocket-Key`.
    pub key: String,
    /// The sid to upgrade, or `None` for a WebSocket-only session.
    pub sid: Option<String>,
    /// The request, for new sessions.
    pub handshake: Handshake,
    /// Bytes read past the request head (normally none).
    pub leftover: Vec<u8>,
}

/// How a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The session ends for this reason.
    Session(CloseReason),
    /// An upgrade probe failed or timed out: the session goes on over polling.
    ProbeFailed,
}

/// What the connection carries right now.
enum Mode {
    /// Upgrading a polling session: only probe packets, until `5` or the deadline.
    Probe(Timer),
    /// The session's transport.
    Open,
}

/// Serves a WebSocket connection whose session (if any) this executor owns.
pub async fn serve(engine: Rc<Engine>, mut stream: TcpStream, req: WsRequest) {
    // `Some(None)`: the sid exists but cannot be upgraded (already on WebSocket, or another
    // upgrade in progress): like the reference server, accept the WebSocket and close it.
    let upgrading = match &req.sid {
        Some(sid) => match engine.session(sid) {
            Some(s)
                if s.transport() == Transport::Polling && s.upgrade_state() == Upgrade::None =>
            {
                Some(Some(s))
            }
            Some(_) => Some(None),
            None => {
                let err = GatewayError::Refused(EngineErrorCode::SessionIdUnknown);
                let _ = stream
                    .write_all(&Response::engine_error(&err).to_bytes())
                    .await;
                return;
            }
        },
        None => None,
    };
    let accept = tungstenite::handshake::derive_accept_key(req.key.as_bytes());
    let head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    if stream.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    let mut conn = WsConn {
        stream,
        decoder: WsDecoder::new(engine.config().max_payload),
        unsent: Vec::new(),
        leftover: req.leftover,
        end: None,
        linger: None,
    };
    let (session, mut mode) = match upgrading {
        Some(None) => {
            encode_close(&mut conn.unsent, 1000);
            let _ = conn.stream.write_all(&conn.unsent).await;
            return;
        }
        Some(Some(session)) => {
            session.set_upgrade_state(Upgrade::Pending);
            let deadline = Timer::new(engine.config().upgrade_timeout);
            (session, Mode::Probe(deadline))
        }
        None => {
            let (session, open) = engine.open(req.handshake, Transport::WebSocket);
            conn.encode(&open);
            (session, Mode::Open)
        }
    };
    let end = poll_fn(|cx| conn.poll_run(cx, &engine, &session, &mut mode)).await;
    match end {
        End::Session(reason) => session.close(reason),
        End::ProbeFailed => {
            if session.upgrade_state() != Upgrade::None && !session.is_closed() {
                session.set_upgrade_state(Upgrade::None);
            }
        }
    }
}

/// One WebSocket connection's state between wake-ups.
///
/// Lives on: the executor that owns the session.
struct WsConn {
    stream: TcpStream,
    decoder: WsDecoder,
    /// Encoded bytes the socket has not taken yet (empty unless the client reads slowly, or a
    /// pong / close frame was just queued).
    unsent: Vec<u8>,
    /// Bytes the HTTP layer read past the upgrade request, parsed before the first read.
    leftover: Vec<u8>,
    /// Set when the connection is ending; returned once `unsent` is flushed.
    end: Option<End>,
    /// Started when the connection starts ending: the flush may take this long, no longer.
    linger: Option<Timer>,
}

impl WsConn {
    fn poll_run(
        &mut self,
        cx: &mut Context<'_>,
        engine: &Rc<Engine>,
        session: &Rc<Session>,
        mode: &mut Mode,
    ) -> Poll<End> {
        loop {
            if self.end.is_none() {
                if let Poll::Ready(end) = self.poll_read(cx, engine, session, mode) {
                    return Poll::Ready(end);
                }
            }
            if self.end.is_none() {
                match mode {
                    Mode::Probe(deadline) => {
                        let timed_out = Pin::new(deadline).poll(cx).is_ready();
                        if timed_out || session.is_closed() {
                            encode_close(&mut self.unsent, 1000);
                            self.end = Some(End::ProbeFailed);
                        } else {
                            // Registers for `session.close()`, which notifies.
                            while session.writable.poll_wait(cx).is_ready() {}
                        }
                    }
                    Mode::Open => {
                        // The flag is cleared (and our waker left behind) before the outbox
                        // is looked at, so a packet queued after this point wakes us again.
                        while session.writable.poll_wait(cx).is_ready() {}
                    }
                }
            }
            // Armed before a write that may stay pending: a peer that does not read cannot
            // keep an ending connection open.
            let ending = self.end.is_some() || (matches!(mode, Mode::Open) && session.is_closed());
            if ending {
                let linger = self.linger.get_or_insert_with(|| Timer::new(CLOSE_LINGER));
                if Pin::new(linger).poll(cx).is_ready() {
                    tracing::debug!(sid = session.sid(), "peer did not read: connection dropped");
                    return Poll::Ready(self.end.unwrap_or(End::Session(CloseReason::ServerClose)));
                }
            }
            let drain_outbox = self.end.is_none() && matches!(mode, Mode::Open);
            match self.poll_write(cx, session, drain_outbox) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => {
                    tracing::debug!(sid = session.sid(), error = %e, "websocket write failed");
                    return Poll::Ready(End::Session(CloseReason::TransportError));
                }
                Poll::Pending => return Poll::Pending,
            }
            // Everything queued so far is on the wire.
            if let Some(end) = self.end {
                return Poll::Ready(end);
            }
            if matches!(mode, Mode::Open) && session.is_closed() {
                // The server ended the session; what its handlers queued has been flushed.
                encode_close(&mut self.unsent, 1000);
                self.end = Some(End::Session(CloseReason::ServerClose));
                continue;
            }
            if matches!(mode, Mode::Open) && session.has_outbound() {
                continue; // queued while we were writing (no wake-up is pending for it)
            }
            return Poll::Pending;
        }
    }

    /// Reads and handles frames until the socket has nothing more. `Ready` only when the
    /// connection is over at once (EOF, read error); a close handshake sets `self.end` instead.
    fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        engine: &Rc<Engine>,
        session: &Rc<Session>,
        mode: &mut Mode,
    ) -> Poll<End> {
        if !self.leftover.is_empty() {
            let mut leftover = std::mem::take(&mut self.leftover);
            self.handle_bytes(&mut leftover, engine, session, mode);
        }
        for _ in 0..READ_BUDGET {
            if self.end.is_some() || session.is_closed() {
                // Closing: `poll_run` flushes and ends the connection without reading more.
                return Poll::Pending;
            }
            let read = READ_BUF.with(|cell| {
                let Ok(mut scratch) = cell.try_borrow_mut() else {
                    // Not reachable (no callback reads a socket), but never panic over it.
                    let mut own = vec![0; READ_SCRATCH];
                    return self.read_into(cx, &mut own, engine, session, mode);
                };
                self.read_into(cx, &mut scratch, engine, session, mode)
            });
            match read {
                Poll::Ready(Some(end)) => return Poll::Ready(end),
                Poll::Ready(None) => {}
                Poll::Pending => return Poll::Pending,
            }
        }
        // Budget spent with data still coming: let the other connections run first.
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// One `recv` into `buf`, then the frames in it. `Ready(None)`: read something, go on.
    fn read_into(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
        engine: &Rc<Engine>,
        session: &Rc<Session>,
        mode: &mut Mode,
    ) -> Poll<Option<End>> {
        match Pin::new(&mut self.stream).poll_read(cx, buf) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(0)) => Poll::Ready(Some(match mode {
                Mode::Open => End::Session(CloseReason::TransportClose),
                Mode::Probe(_) => End::ProbeFailed,
            })),
            Poll::Ready(Ok(n)) => {
                self.handle_bytes(&mut buf[..n], engine, session, mode);
                Poll::Ready(None)
            }
            Poll::Ready(Err(e)) => {
                tracing::debug!(sid = session.sid(), error = %e, "websocket read failed");
                Poll::Ready(Some(match mode {
                    Mode::Open => End::Session(CloseReason::TransportError),
                    Mode::Probe(_) => End::ProbeFailed,
                }))
            }
        }
    }

    fn handle_bytes(
        &mut self,
        bytes: &mut [u8],
        engine: &Rc<Engine>,
        session: &Rc<Session>,
        mode: &mut Mode,
    ) {
        let Self {
            decoder,
            unsent,
            end,
            ..
        } = self;
        let result = decoder.feed(bytes, |event| match event {
            WsEvent::Ping(payload) => {
                encode_frame(unsent, Opcode::Pong, payload);
                Flow::Continue
            }
            WsEvent::Pong => Flow::Continue,
            WsEvent::Close(code) => {
                // Echo the status (RFC 6455 §5.5.1); 1005 "no status" must not be sent.
                encode_close(unsent, code.filter(|c| *c != 1005).unwrap_or(1000));
                *end = Some(match mode {
                    Mode::Open => End::Session(CloseReason::TransportClose),
                    Mode::Probe(_) => End::ProbeFailed,
                });
                Flow::Stop
            }
            WsEvent::Text(text) => match mode {
                Mode::Open => match decode_text(text) {
                    Ok(packet) => receive(engine, session, packet),
                    Err(_) => {
                        encode_close(unsent, 1002);
                        *end = Some(End::Session(CloseReason::ParseError));
                        Flow::Stop
                    }
                },
                Mode::Probe(_) => match decode_text(text) {
                    Ok(Inbound::Ping("probe")) => {
                        encode_frame(unsent, Opcode::Text, b"3probe");
                        session.set_upgrade_state(Upgrade::Probed);
                        session.release_get();
                        Flow::Continue
                    }
                    Ok(Inbound::Upgrade) if session.upgrade_state() == Upgrade::Probed => {
                        session.switch_to_websocket();
                        *mode = Mode::Open;
                        Flow::Continue
                    }
                    _ => {
                        encode_close(unsent, 1002);
                        *end = Some(End::ProbeFailed);
                        Flow::Stop
                    }
                },
            },
            WsEvent::Binary(data) => match mode {
                Mode::Open => receive(engine, session, Inbound::Binary(Cow::Borrowed(data))),
                Mode::Probe(_) => Flow::Continue, // nothing binary belongs to a probe
            },
        });
        if let Err(e) = result {
            tracing::debug!(sid = session.sid(), error = ?e, "invalid websocket frame");
            encode_close(unsent, e.close_code());
            *end = Some(match mode {
                Mode::Open => End::Session(e.close_reason()),
                Mode::Probe(_) => End::ProbeFailed,
            });
        }
    }

    /// Writes `unsent`, then (if `drain_outbox`) everything in the session's queue, as few
    /// `send`s as possible. `Ready(Ok)` once all of it is on the wire.
    fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
        session: &Rc<Session>,
        drain_outbox: bool,
    ) -> Poll<std::io::Result<()>> {
        loop {
            if !self.unsent.is_empty() {
                let n = std::task::ready!(Pin::new(&mut self.stream).poll_write(cx, &self.unsent))?;
                if n == 0 {
                    return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
                }
                self.unsent.drain(..n);
                if self.unsent.is_empty() && self.unsent.capacity() > KEEP_UNSENT {
                    self.unsent = Vec::new();
                }
                continue;
            }
            if !drain_outbox || !session.has_outbound() {
                return Poll::Ready(Ok(()));
            }
            let sent = WRITE_BUF.with(|cell| match cell.try_borrow_mut() {
                Ok(mut batch) => self.write_batch(cx, session, &mut batch),
                Err(_) => self.write_batch(cx, session, &mut Vec::new()),
            });
            std::task::ready!(sent)?;
        }
    }

    /// Encodes queued packets into `batch` (up to [`WRITE_BATCH`] bytes) and sends them with one
    /// `send`; what the socket does not take moves to `unsent`.
    fn write_batch(
        &mut self,
        cx: &mut Context<'_>,
        session: &Session,
        batch: &mut Vec<u8>,
    ) -> Poll<std::io::Result<()>> {
        batch.clear();
        while batch.len() < WRITE_BATCH {
            let Some(frame) = session.pop_outbound() else {
                break;
            };
            encode_packet(batch, &frame);
        }
        let result = match Pin::new(&mut self.stream).poll_write(cx, batch) {
            Poll::Ready(Ok(n)) => {
                self.unsent.extend_from_slice(&batch[n..]);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                self.unsent.extend_from_slice(batch);
                Poll::Pending
            }
        };
        if batch.capacity() > 4 * WRITE_BATCH {
            // One huge packet went through the shared buffer: give the memory back.
            *batch = Vec::with_capacity(WRITE_BATCH + 1024);
        } else {
            batch.clear();
        }
        result
    }

    fn encode(&mut self, frame: &Frame) {
        encode_packet(&mut self.unsent, frame);
    }
}

fn encode_packet(out: &mut Vec<u8>, frame: &Frame) {
    match frame {
        Frame::Text(b) => encode_frame(out, Opcode::Text, b),
        Frame::Binary(b) => encode_frame(out, Opcode::Binary, b),
    }
}

/// Hands a packet to the engine; stops reading once that closed the session (the writer
/// flushes what the handlers queued, then closes).
fn receive(engine: &Rc<Engine>, session: &Rc<Session>, packet: Inbound<'_>) -> Flow {
    engine.receive(session, packet);
    if session.is_closed() {
        Flow::Stop
    } else {
        Flow::Continue
    }
}
