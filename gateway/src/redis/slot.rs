//! A reply slot: where the reader task puts the answer to one request, and the future that
//! waits for it.
//!
//! Why this and not a channel: a slot is one small allocation (an `Rc` holding a cell and a
//! waker), filled exactly once, by the task on the same executor. Slots queue in the
//! connection's FIFO in the order their commands were written; the reader completes the head
//! with each reply. A request that gave up (timed out, or its future was dropped) leaves its
//! slot in the FIFO — its reply still has to be consumed to keep replies and requests in step
//! — and the reply is then dropped without being parsed.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use ::redis::{PushKind, Value};

use super::error::Error;

/// The push frames that confirm a (un)subscription. Under RESP3 they are the whole answer to
/// `SUBSCRIBE` and friends: one per channel named, no ordinary reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AckKind {
    Subscribe,
    Unsubscribe,
    SSubscribe,
    SUnsubscribe,
    PSubscribe,
    PUnsubscribe,
}

impl AckKind {
    /// The acknowledgement kind a push frame of `kind` is, if any.
    pub(super) fn of(kind: &PushKind) -> Option<AckKind> {
        Some(match kind {
            PushKind::Subscribe => AckKind::Subscribe,
            PushKind::Unsubscribe => AckKind::Unsubscribe,
            PushKind::SSubscribe => AckKind::SSubscribe,
            PushKind::SUnsubscribe => AckKind::SUnsubscribe,
            PushKind::PSubscribe => AckKind::PSubscribe,
            PushKind::PUnsubscribe => AckKind::PUnsubscribe,
            _ => return None,
        })
    }
}

/// What completes a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expect {
    /// The next ordinary reply.
    Reply,
    /// This many acknowledgement pushes of this kind (or an ordinary reply, which can only be
    /// an error).
    Acks(AckKind, usize),
}

/// One request waiting for its reply.
///
/// Lives on: the executor that created it.
pub(super) struct Slot {
    /// When the request was queued.
    pub(super) created: Instant,
    /// When the request fails with a timeout; `None` for the connection's own handshake
    /// commands, which the connect timeout covers.
    pub(super) deadline: Option<Instant>,
    pub(super) expect: Cell<Expect>,
    done: Cell<bool>,
    result: Cell<Option<Result<Value, Error>>>,
    waker: Cell<Option<Waker>>,
}

impl Slot {
    pub(super) fn new(created: Instant, deadline: Option<Instant>, expect: Expect) -> Slot {
        Slot {
            created,
            deadline,
            expect: Cell::new(expect),
            done: Cell::new(false),
            result: Cell::new(None),
            waker: Cell::new(None),
        }
    }

    /// Fills the slot and wakes its future. Only the first call counts: a reply that arrives
    /// after the request timed out is dropped here.
    pub(super) fn complete(&self, result: Result<Value, Error>) {
        if self.done.replace(true) {
            return;
        }
        self.result.set(Some(result));
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    /// Whether the slot was completed (answered, timed out or failed).
    pub(super) fn is_done(&self) -> bool {
        self.done.get()
    }
}

/// Converts a reply into a request result: an error reply fails only this request.
pub(super) fn reply_result(value: Value) -> Result<Value, Error> {
    match value {
        Value::ServerError(e) => Err(Error::Server(e)),
        v => Ok(v),
    }
}

/// The reply to one request, as a future. Dropping it abandons the request (the command was
/// or will still be sent; its reply is discarded).
///
/// Lives on: the executor that created it.
#[must_use = "the request is sent anyway; dropping the Reply discards its answer"]
pub struct Reply {
    slot: Rc<Slot>,
}

impl Reply {
    pub(super) fn new(slot: Rc<Slot>) -> Reply {
        Reply { slot }
    }
}

impl Future for Reply {
    type Output = Result<Value, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(result) = self.slot.result.take() {
            return Poll::Ready(result);
        }
        if self.slot.is_done() {
            // Already taken by an earlier poll: a future polled after completion.
            return Poll::Ready(Err(Error::Closed("reply already taken")));
        }
        let old = self.slot.waker.take();
        match old {
            Some(w) if w.will_wake(cx.waker()) => self.slot.waker.set(Some(w)),
            _ => self.slot.waker.set(Some(cx.waker().clone())),
        }
        Poll::Pending
    }
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reply")
            .field("done", &self.slot.is_done())
            .finish()
    }
}
