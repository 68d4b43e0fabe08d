//! Catching rooms up after the executor's connection to Redis was lost.
//!
//! Pub/Sub does not queue: what was published while the connection was down never reaches
//! this executor. The connection restores its subscriptions by itself when it reconnects
//! (`redis/pubsub.rs`); this fills the hole. On the disconnection notice every room is held
//! (live events queue in its gate, as during a resume). Once a request gets through again —
//! the subscriptions were restored in the new connection's handshake, before it — each room
//! gets the messages after its `last_seq` from the conversation's buffer, then every local
//! member a `system:event {participant, conversation, recovered}` with the conversation as it
//! is now (notices published meanwhile are lost, the current metadata replaces them) and
//! `recovered: false` when the buffer no longer had everything. Then the held events go out,
//! those the buffer already gave dropped by seq. The read and the pushes share one connection,
//! so every message is either in the buffer read or held after it: no gap, no duplicate.
//!
//! Runs on: the executor of the [`Fanout`], one task at a time.

use std::rc::Rc;
use std::time::Duration;

use livechat_core::store::ConversationStore;

use super::Fanout;
use crate::chat::engine::{room, Chat};
use crate::chat::socket_ctx::SocketCtx;
use crate::chat::wire::{Joined, Json};
use crate::error::GatewayError;

/// First wait between attempts while Redis is still unreachable; doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(50);
const MAX_PAUSE: Duration = Duration::from_secs(1);

/// What catching one room up came to.
enum CaughtUp {
    Done,
    /// Redis is unavailable again: try this room later.
    Retry(GatewayError),
}

impl Fanout {
    /// The connection died: hold every room until it is caught up, and start the resync.
    pub(super) fn connection_lost(self: &Rc<Self>) {
        let ids: Vec<String> = self.rooms.borrow().keys().cloned().collect();
        for id in ids {
            if self.stale.borrow_mut().insert(id.clone()) {
                self.hold(&id);
            }
        }
        if self.watches_queue.get() {
            self.queue_stale.set(true);
        }
        tracing::warn!(
            rooms = self.stale.borrow().len(),
            "Redis connection lost: rooms held until it is back"
        );
        if !self.resyncing.replace(true) {
            glommio::spawn_local(self.clone().resync()).detach();
        }
    }

    async fn resync(self: Rc<Self>) {
        let mut pause = FIRST_PAUSE;
        loop {
            if self.stale.borrow().is_empty() && !self.queue_stale.get() {
                break;
            }
            let Some(chat) = self.chat.upgrade() else {
                break;
            };
            if let Err(e) = self.conn.query::<String>(&::redis::cmd("PING")).await {
                tracing::debug!(error = %e, "resync waits for Redis");
                drop(chat);
                glommio::timer::sleep(pause).await;
                pause = (pause * 2).min(MAX_PAUSE);
                continue;
            }
            if self.queue_stale.replace(false) {
                chat.schedule_snapshot();
            }
            let ids: Vec<String> = self.stale.borrow().iter().cloned().collect();
            let mut retry = None;
            for id in ids {
                if let CaughtUp::Retry(e) = self.catch_up(&chat, &id).await {
                    retry = Some(e);
                    break;
                }
            }
            match retry {
                Some(e) => {
                    tracing::debug!(error = %e, "resync interrupted; retrying");
                    drop(chat);
                    glommio::timer::sleep(pause).await;
                    pause = (pause * 2).min(MAX_PAUSE);
                }
                None => pause = FIRST_PAUSE,
            }
        }
        self.resyncing.set(false);
        tracing::info!("Redis connection back: rooms caught up");
    }

    /// Sends room `id` what it missed, then lets its held events through.
    async fn catch_up(&self, chat: &Rc<Chat>, id: &str) -> CaughtUp {
        let Some(after) = self.rooms.borrow().get(id).map(|r| r.last_seq) else {
            // The last member left meanwhile.
            self.finish(chat, id);
            return CaughtUp::Done;
        };
        let read = chat.store().messages(id, Some(after), usize::MAX).await;
        let room = room(id);
        match read {
            Ok(Some((meta, page))) => {
                for m in &page.messages {
                    if self.advance(id, m.seq) {
                        let _ = chat
                            .io()
                            .to(&room)
                            .local()
                            .counted()
                            .emit("chat:message", &Json(m));
                    }
                }
                if let Some(r) = self.rooms.borrow_mut().get_mut(id) {
                    r.last_seq = r.last_seq.max(page.last_seq);
                }
                chat.io().for_each_local_member("/", &room, |s| {
                    let participant =
                        s.with_data(|d: Option<&SocketCtx>| d.map(|d| d.participant.clone()));
                    if let Some(p) = participant {
                        let joined = Joined::new(&p, &meta, Some(page.complete));
                        let _ = s.emit("system:event", &joined);
                    }
                });
                // Notices published meanwhile are lost: the status now decides, and a queued
                // conversation's sockets get a fresh position.
                chat.told_room(id, meta.status == livechat_core::ConversationStatus::Queued);
            }
            // Expired or deleted meanwhile: nothing more will come.
            Ok(None) => {}
            Err(e) if e.status() == 503 => return CaughtUp::Retry(e),
            Err(e) => {
                tracing::warn!(conversation = %id, error = %e, "room not caught up after a Redis outage");
            }
        }
        self.finish(chat, id);
        CaughtUp::Done
    }

    fn finish(&self, chat: &Chat, id: &str) {
        if self.stale.borrow_mut().remove(id) {
            self.release_held(chat, id, None);
        }
    }
}
