//! One TCP connection's life: connect, handshake, then a writer task, a reader task and an
//! expiry task until it dies. A [`RedisConn`](super::RedisConn) runs one session at a time and
//! starts a new one when the last one died.
//!
//! How a tick's commands become one write: a request appends its encoded command to the
//! session's `out` buffer and its [`Slot`] to the `pending` FIFO, and wakes the writer only when
//! `out` was empty. The writer task runs after the requesting tasks yield, swaps `out` with its
//! own (empty, already allocated) buffer and writes everything in one `write_all`; commands
//! queued meanwhile go into the other buffer. The two buffers ping-pong, so steady traffic
//! allocates nothing for writing.
//!
//! The reader task reads into a [`FrameReader`], cuts complete frames and completes `pending`
//! from the front; push frames go to the push handler (or complete a (un)subscribe's slot).
//!
//! The expiry task fails requests whose deadline passed. Deadlines grow along the FIFO, so
//! it sleeps until the first unexpired one instead of arming a timer per request. It also
//! declares the connection dead when the oldest request waited `stall_timeout` and nothing at
//! all was read meanwhile.
//!
//! Death (IO error, bad frame, EOF, stall, handle dropped) is [`Session::fail`]: every pending
//! request fails with the error, the three tasks wake and end, the socket closes with them.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Instant;

use ::redis::{PushInfo, PushKind, Value};
use futures_lite::future;

use super::conn::Shared;
use super::error::Error;
use super::frame::{self, Frame, FrameReader};
use super::slot::{reply_result, AckKind, Expect, Reply, Slot};
use super::transport::Transport;

/// A write buffer that grew above this is shrunk back after it is flushed.
const KEEP_WRITE_CAPACITY: usize = 256 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// TCP connect and handshake in progress; requests queue in `out`.
    Connecting,
    /// Handshake done; the writer flushes `out` whenever it has bytes.
    Ready,
    /// Failed or closed; nothing more is sent or read.
    Dead,
}

/// One connection to Redis and the requests in flight on it.
///
/// Lives on: the executor that created it.
pub(super) struct Session {
    shared: Rc<Shared>,
    phase: Cell<Phase>,
    /// Encoded commands not yet handed to the writer.
    out: RefCell<Vec<u8>>,
    /// Requests written (or about to be) and not yet answered, oldest first.
    pending: RefCell<VecDeque<Rc<Slot>>>,
    writer: Cell<Option<Waker>>,
    reader: Cell<Option<Waker>>,
    expiry: Cell<Option<Waker>>,
    /// When the expiry task wakes up next (`None`: when a request comes). A request wakes it
    /// only if its deadline is earlier — as deadlines grow along the FIFO, that is rare, so
    /// there is no wake-up per request.
    expiry_at: Cell<Option<Instant>>,
    /// Set with that wake-up: look again now.
    expiry_kick: Cell<bool>,
    last_read: Cell<Instant>,
}

impl Session {
    /// Creates a session and spawns its tasks; requests can be queued at once and go out
    /// after the handshake. The handshake (`HELLO 3` with `AUTH`, `SELECT`, re-subscribing
    /// what the connection was subscribed to) is queued first.
    pub(super) fn start(shared: Rc<Shared>) -> Rc<Session> {
        let now = Instant::now();
        let session = Rc::new(Session {
            shared: shared.clone(),
            phase: Cell::new(Phase::Connecting),
            out: RefCell::new(Vec::new()),
            pending: RefCell::new(VecDeque::new()),
            writer: Cell::new(None),
            reader: Cell::new(None),
            expiry: Cell::new(None),
            expiry_at: Cell::new(None),
            expiry_kick: Cell::new(false),
            last_read: Cell::new(now),
        });
        let mut hello = Vec::new();
        let mut expects = Vec::new();
        shared.encode_handshake(&mut hello, &mut expects);
        let slots: Vec<Rc<Slot>> = {
            let mut pending = session.pending.borrow_mut();
            expects
                .into_iter()
                .map(|expect| {
                    let slot = Rc::new(Slot::new(now, None, expect));
                    pending.push_back(slot.clone());
                    slot
                })
                .collect()
        };
        shared.bump(|s| s.commands += slots.len() as u64);
        glommio::spawn_local(drive(session.clone(), hello, slots)).detach();
        glommio::spawn_local(expire_loop(session.clone())).detach();
        session
    }

    /// Whether the session failed or was closed.
    pub(super) fn is_dead(&self) -> bool {
        self.phase.get() == Phase::Dead
    }

    /// Whether the handshake completed and the session is serving requests.
    pub(super) fn is_ready(&self) -> bool {
        self.phase.get() == Phase::Ready
    }

    /// Requests in flight (sent or queued, not answered), abandoned ones included: their
    /// replies are still owed.
    pub(super) fn in_flight(&self) -> usize {
        self.pending.borrow().len()
    }

    /// Queues one request: `encode` appends its command bytes to the write buffer. Refused
    /// with [`Error::Busy`] when `max_in_flight` requests are already waiting.
    pub(super) fn request(
        &self,
        expect: Expect,
        encode: impl FnOnce(&mut Vec<u8>),
    ) -> Result<Reply, Error> {
        if self.is_dead() {
            return Err(Error::Closed("connection lost"));
        }
        let config = &self.shared.config;
        let mut pending = self.pending.borrow_mut();
        if pending.len() >= config.max_in_flight {
            self.shared.bump(|s| s.refused += 1);
            return Err(Error::Busy(pending.len()));
        }
        let mut out = self.out.borrow_mut();
        let was_empty = out.is_empty();
        encode(&mut out);
        let now = Instant::now();
        // No deadline if the timeout is too large to add (effectively none).
        let deadline = now.checked_add(config.request_timeout);
        let slot = Rc::new(Slot::new(now, deadline, expect));
        pending.push_back(slot.clone());
        drop((out, pending));
        self.shared.bump(|s| s.commands += 1);
        if was_empty {
            wake(&self.writer);
        }
        if let Some(deadline) = deadline {
            if self.expiry_at.get().is_none_or(|at| deadline < at) {
                self.expiry_at.set(Some(deadline));
                self.expiry_kick.set(true);
                wake(&self.expiry);
            }
        }
        Ok(Reply::new(slot))
    }

    /// Kills the session: every pending request fails with `err`, the tasks end, the socket
    /// closes. Idempotent.
    pub(super) fn fail(&self, err: Error) {
        let was = self.phase.replace(Phase::Dead);
        if was == Phase::Dead {
            return;
        }
        let slots = std::mem::take(&mut *self.pending.borrow_mut());
        self.out.borrow_mut().clear();
        let waiting = slots.iter().filter(|s| !s.is_done()).count();
        self.shared.failed(waiting as u64);
        for slot in slots {
            slot.complete(Err(err.clone()));
        }
        wake(&self.writer);
        wake(&self.reader);
        wake(&self.expiry);
        tracing::debug!(error = %err, was_ready = was == Phase::Ready, "redis connection closed");
        self.shared.session_ended(was == Phase::Ready, &err);
    }

    /// Completes requests from the frames buffered in `frames`.
    fn dispatch(&self, frames: &mut FrameReader) -> Result<(), Error> {
        while let Some(bytes) = frames.next_raw()? {
            if frame::is_push(bytes) {
                match frame::parse_frame(bytes)? {
                    Frame::Push(push) => self.on_push(push),
                    Frame::Reply(v) => self.on_reply(Some(v))?,
                }
                continue;
            }
            let abandoned = match self.pending.borrow().front() {
                // Only the FIFO holds it: the request's future is gone.
                Some(slot) => slot.is_done() || Rc::strong_count(slot) == 1,
                None => false,
            };
            if abandoned {
                self.on_reply(None)?;
            } else {
                match frame::parse_frame(bytes)? {
                    Frame::Reply(v) => self.on_reply(Some(v))?,
                    Frame::Push(push) => self.on_push(push),
                }
            }
        }
        Ok(())
    }

    /// Completes the oldest request with `value` (`None`: nobody waits, drop the reply).
    fn on_reply(&self, value: Option<Value>) -> Result<(), Error> {
        let slot = self.pending.borrow_mut().pop_front();
        let Some(slot) = slot else {
            return Err(Error::Protocol(
                "a reply arrived with no request waiting".to_owned(),
            ));
        };
        match value {
            Some(v) => {
                self.shared.bump(|s| s.replies += 1);
                // `last_read` is when the bytes of this reply arrived: no clock read per reply.
                self.shared
                    .answered(self.last_read.get().saturating_duration_since(slot.created));
                if matches!(&v, Value::ServerError(e) if e.code() != "NOSCRIPT") {
                    self.shared.failed(1);
                }
                slot.complete(reply_result(v));
            }
            None => self.shared.bump(|s| s.discarded += 1),
        }
        Ok(())
    }

    /// A push frame: the acknowledgement the oldest request waits for, or something for the
    /// push handler.
    fn on_push(&self, push: PushInfo) {
        if let Some(kind) = AckKind::of(&push.kind) {
            let mut pending = self.pending.borrow_mut();
            if let Some(head) = pending.front() {
                if let Expect::Acks(want, left) = head.expect.get() {
                    if want == kind {
                        if left > 1 {
                            head.expect.set(Expect::Acks(want, left - 1));
                        } else if let Some(slot) = pending.pop_front() {
                            drop(pending);
                            self.shared.bump(|s| s.replies += 1);
                            self.shared.answered(
                                self.last_read.get().saturating_duration_since(slot.created),
                            );
                            slot.complete(Ok(Value::Push {
                                kind: push.kind,
                                data: push.data,
                            }));
                        }
                        return;
                    }
                }
            }
        }
        self.shared.deliver_push(push);
    }

    /// Fails requests whose deadline passed; returns when to look again (`None`: nothing to
    /// watch), or the error that kills a stalled connection.
    fn expire(&self, now: Instant) -> Result<Option<Instant>, Error> {
        let config = &self.shared.config;
        let pending = self.pending.borrow();
        let mut next = None;
        let mut expired = 0;
        for slot in pending.iter() {
            let Some(deadline) = slot.deadline else {
                continue;
            };
            if slot.is_done() {
                continue;
            }
            if deadline > now {
                next = Some(deadline);
                break;
            }
            slot.complete(Err(Error::Timeout(config.request_timeout)));
            expired += 1;
        }
        if expired > 0 {
            self.shared.failed(expired);
            self.shared.bump(|s| s.timeouts += expired);
        }
        // While connecting, the connect timeout is the watchdog.
        let head = pending.front().filter(|_| self.is_ready());
        if let Some(stall_at) = head.and_then(|head| {
            let since = head.created.max(self.last_read.get());
            since.checked_add(config.stall_timeout)
        }) {
            if now >= stall_at {
                return Err(Error::Timeout(config.stall_timeout));
            }
            next = Some(next.map_or(stall_at, |n: Instant| n.min(stall_at)));
        }
        Ok(next)
    }
}

fn wake(cell: &Cell<Option<Waker>>) {
    if let Some(w) = cell.take() {
        w.wake();
    }
}

fn park(cell: &Cell<Option<Waker>>, waker: &Waker) {
    let old = cell.take();
    match old {
        Some(w) if w.will_wake(waker) => cell.set(Some(w)),
        _ => cell.set(Some(waker.clone())),
    }
}

/// The writer task: connects, runs the handshake, then flushes the write buffer each time it
/// has bytes, until the session dies.
async fn drive(session: Rc<Session>, hello: Vec<u8>, hello_slots: Vec<Rc<Slot>>) {
    if let Err(e) = drive_inner(&session, hello, hello_slots).await {
        session.fail(e);
    }
}

async fn drive_inner(
    session: &Rc<Session>,
    hello: Vec<u8>,
    hello_slots: Vec<Rc<Slot>>,
) -> Result<(), Error> {
    let shared = &session.shared;
    let limit = shared.config.connect_timeout;
    let setup = async {
        let transport = Rc::new(RefCell::new(
            Transport::connect(&shared.config, shared.tls.as_ref()).await?,
        ));
        if session.is_dead() {
            return Ok(None);
        }
        glommio::spawn_local(read_loop(session.clone(), transport.clone())).detach();
        write_all(session, &transport, &hello).await?;
        for slot in hello_slots {
            Reply::new(slot).await?;
        }
        Ok(Some(transport))
    };
    let expired = async {
        glommio::timer::sleep(limit).await;
        Err(Error::Timeout(limit))
    };
    let died = poll_fn(|cx| {
        if session.is_dead() {
            Poll::Ready(Ok(None))
        } else {
            park(&session.writer, cx.waker());
            Poll::Pending
        }
    });
    let Some(transport) = future::or(setup, future::or(expired, died)).await? else {
        return Ok(());
    };
    if session.is_dead() {
        return Ok(());
    }
    session.phase.set(Phase::Ready);
    shared.session_ready();

    let mut buf = Vec::new();
    loop {
        let more = poll_fn(|cx| {
            if session.is_dead() {
                Poll::Ready(false)
            } else if !session.out.borrow().is_empty() {
                Poll::Ready(true)
            } else {
                park(&session.writer, cx.waker());
                Poll::Pending
            }
        })
        .await;
        if !more {
            return Ok(());
        }
        std::mem::swap(&mut *session.out.borrow_mut(), &mut buf);
        write_all(session, &transport, &buf).await?;
        let written = buf.len() as u64;
        shared.bump(|s| {
            s.flushes += 1;
            s.bytes_written += written;
        });
        buf.clear();
        if buf.capacity() > KEEP_WRITE_CAPACITY {
            buf = Vec::new();
        }
        glommio::yield_if_needed().await;
    }
}

/// Writes all of `bytes`, then flushes. Gives up when the session dies meanwhile.
async fn write_all(
    session: &Session,
    transport: &RefCell<Transport>,
    mut bytes: &[u8],
) -> Result<(), Error> {
    while !bytes.is_empty() {
        let n = poll_fn(|cx| {
            if session.is_dead() {
                return Poll::Ready(Err(Error::Closed("connection lost")));
            }
            let r = transport.borrow_mut().poll_write(cx, bytes);
            if r.is_pending() {
                park(&session.writer, cx.waker());
            }
            r.map_err(Error::from)
        })
        .await?;
        if n == 0 {
            return Err(std::io::Error::from(std::io::ErrorKind::WriteZero).into());
        }
        bytes = &bytes[n..];
    }
    poll_fn(|cx| {
        if session.is_dead() {
            return Poll::Ready(Err(Error::Closed("connection lost")));
        }
        let r = transport.borrow_mut().poll_flush(cx);
        if r.is_pending() {
            park(&session.writer, cx.waker());
        }
        r.map_err(Error::from)
    })
    .await
}

/// The reader task: reads, frames, completes requests, until EOF, an error or death.
async fn read_loop(session: Rc<Session>, transport: Rc<RefCell<Transport>>) {
    let mut frames = FrameReader::new();
    let err = loop {
        let read = poll_fn(|cx| {
            if session.is_dead() {
                return Poll::Ready(None);
            }
            let r = transport.borrow_mut().poll_read(cx, frames.read_buf());
            match r {
                Poll::Ready(r) => Poll::Ready(Some(r)),
                Poll::Pending => {
                    park(&session.reader, cx.waker());
                    Poll::Pending
                }
            }
        })
        .await;
        match read {
            None => return,
            Some(Ok(0)) => break Error::Closed("the server closed the connection"),
            Some(Ok(n)) => {
                frames.filled(n);
                session.last_read.set(Instant::now());
            }
            Some(Err(e)) => break e.into(),
        }
        if let Err(e) = session.dispatch(&mut frames) {
            break e;
        }
        glommio::yield_if_needed().await;
    };
    session.fail(err);
}

/// The expiry task: times requests out, detects a stalled connection.
async fn expire_loop(session: Rc<Session>) {
    loop {
        if session.is_dead() {
            return;
        }
        let now = Instant::now();
        let next = match session.expire(now) {
            Ok(next) => next,
            Err(e) => {
                session.fail(e);
                return;
            }
        };
        // Wakes on death, and on new requests when idle; otherwise at the next deadline.
        session.expiry_at.set(next);
        let woken = poll_fn(|cx| {
            if session.is_dead() || session.expiry_kick.replace(false) {
                Poll::Ready(())
            } else {
                park(&session.expiry, cx.waker());
                Poll::Pending
            }
        });
        match next {
            Some(at) => {
                future::or(
                    glommio::timer::sleep(at.saturating_duration_since(now)),
                    woken,
                )
                .await
            }
            None => woken.await,
        }
    }
}

/// The push sent to the handler when a connection that was up is lost: Pub/Sub messages
/// published until the next connection re-subscribes are lost.
pub(super) fn disconnection_push() -> PushInfo {
    PushInfo {
        kind: PushKind::Disconnection,
        data: Vec::new(),
    }
}
