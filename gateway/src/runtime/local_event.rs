//! A single-waiter, executor-local wake-up flag: cheaper than a channel when the only thing to
//! say is "look again" (outbox has packets, pong arrived).

use std::cell::Cell;
use std::future::poll_fn;
use std::task::{Context, Poll, Waker};

/// A flag plus the waker of the one task that waits on it.
///
/// Lives on: the executor that created it (not `Send`).
#[derive(Default)]
pub struct LocalEvent {
    set: Cell<bool>,
    waker: Cell<Option<Waker>>,
}

impl LocalEvent {
    /// Sets the flag and wakes the waiter, if any.
    pub fn notify(&self) {
        self.set.set(true);
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    /// Clears the flag without waking anyone.
    pub fn reset(&self) {
        self.set.set(false);
    }

    /// Waits until the flag is set, then clears it. One waiter at a time.
    pub async fn wait(&self) {
        poll_fn(|cx| self.poll_wait(cx)).await
    }

    /// Poll form of [`LocalEvent::wait`], for hand-written futures: `Ready` (and the flag
    /// cleared) if it was set, else remembers `cx`'s waker.
    pub fn poll_wait(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.set.replace(false) {
            return Poll::Ready(());
        }
        // Re-registering the same task is the common case: skip the waker clone.
        let old = self.waker.take();
        match old {
            Some(w) if w.will_wake(cx.waker()) => self.waker.set(Some(w)),
            _ => self.waker.set(Some(cx.waker().clone())),
        }
        Poll::Pending
    }
}

impl std::fmt::Debug for LocalEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalEvent")
            .field("set", &self.set.get())
            .finish()
    }
}
