//! Telling the world what a commit changed: `chat:message` and `system:event` to the
//! conversation's room, coalesced `queue:snapshot`s to the queue room (each tick also runs the
//! live `queue:position`s of `queue_position.rs`), analytics events, and the join + backlog of
//! a resuming socket.
//!
//! Runs on: the conversation's owner executor for room broadcasts (so all of one conversation's
//! broadcasts leave one executor over FIFO channels and every receiver sees them in `seq`
//! order); the queue executor for snapshots.

use std::rc::Rc;

use livechat_core::store::{EventSink, MetadataRepository};
use livechat_core::{events_of, ChatMessage, ChatParticipant, ConversationMetadata, Notice};
use livechat_shard_router::ExecutorId;

use super::engine::{room, Chat};
use super::exec::Announcement;
use super::socket_ctx::SocketCtx;
use super::wire::{Announced, Joined, Json};
use crate::error::GatewayError;

impl Chat {
    /// Announces a committed step of conversation `id` (owner executor, still holding the
    /// conversation's turn); `meta` is the metadata after it (lifecycle steps). Takes the
    /// announcement: its messages end up in the analytics events, moved rather than copied.
    pub(super) fn announce(&self, id: &str, meta: Option<&ConversationMetadata>, a: Announcement) {
        if a.is_empty() {
            return;
        }
        // Every committed step passes here once, on the executor that committed it.
        self.node.metrics().messages_stored(a.messages.len());
        // A backend that publishes (Redis) already sent the room events and the queue ping
        // with the commit; every node, this one included, delivers them from its subscription.
        if self.store().publishes() {
            let pings = usize::from(a.queue_changed);
            self.node
                .metrics()
                .pubsub_published(a.messages.len() + a.notices.len() + pings);
            self.publish(id, meta, a);
            return;
        }
        let room = room(id);
        for m in &a.messages {
            let _ = self.io.to(&room).counted().emit("chat:message", &Json(m));
        }
        if let Some(meta) = meta {
            for &kind in &a.notices {
                self.notify(kind, meta);
            }
        }
        if a.queue_changed {
            let _ = self.node.run_on(self.queue_executor(), |node| {
                if let Some(chat) = Chat::current(node) {
                    chat.schedule_snapshot();
                }
            });
        }
        self.publish(id, meta, a);
    }

    /// `system:event {type, conversation, participant}` to every member of the room; the
    /// participant is each receiving socket's own, so the payload is built per socket, on the
    /// executor that owns it (in order with the room's `chat:message` broadcasts).
    fn notify(&self, kind: Notice, meta: &ConversationMetadata) {
        let room = room(&meta.id);
        for e in self.node.port().executors() {
            let (room, meta) = (room.clone(), meta.clone());
            let _ = self.node.run_on(e, move |node| {
                let Some(chat) = Chat::current(node) else {
                    return;
                };
                chat.io.for_each_local_member("/", &room, |s| {
                    let participant =
                        s.with_data(|d: Option<&SocketCtx>| d.map(|d| d.participant.clone()));
                    if let Some(p) = participant {
                        let _ = s.emit("system:event", &Announced::to(&kind, &meta, &p));
                    }
                });
                let queued = meta.status == livechat_core::ConversationStatus::Queued;
                chat.told_room(&meta.id, queued);
            });
        }
    }

    /// Analytics events of a committed step (published once, by the node that committed it),
    /// and message activity for the durable record (coalesced there).
    fn publish(&self, id: &str, meta: Option<&ConversationMetadata>, a: Announcement) {
        if let (Some(d), Some(last)) = (&self.services.durable, a.messages.last()) {
            d.touch(id, last.timestamp);
        }
        if self.services.events.wanted() {
            for e in events_of(&a.events, meta, a.messages) {
                self.services.events.publish(e);
            }
        }
    }

    /// Sends a resuming socket its join, `system:event` (with `recovered` when it asked for
    /// `lastSeq`) and backlog on the socket's executor, over the same ordered channel as the
    /// room's later broadcasts.
    pub(super) fn deliver_join(
        &self,
        socket_exec: ExecutorId,
        socket_id: String,
        meta: &ConversationMetadata,
        participant: ChatParticipant,
        recovered: Option<bool>,
        backlog: Vec<ChatMessage>,
    ) -> Result<(), GatewayError> {
        let meta = meta.clone();
        self.node.run_on(socket_exec, move |node| {
            let Some(chat) = Chat::current(node) else {
                return;
            };
            let Some(s) = chat.io.local_socket(&socket_id) else {
                return;
            };
            s.join(&room(&meta.id));
            let _ = s.emit("system:event", &Joined::new(&participant, &meta, recovered));
            let queued = meta.status == livechat_core::ConversationStatus::Queued;
            chat.told_socket(&s, &meta.id, queued);
            for m in &backlog {
                let _ = s.emit("chat:message", &Json(m));
            }
            node.metrics().delivered(backlog.len());
        })?;
        Ok(())
    }

    /// Coalesces queue changes: at most one `queue:snapshot` per `snapshot-interval`, always
    /// sent after the last change, then the live `queue:position`s (queue executor only).
    pub(super) fn schedule_snapshot(self: &Rc<Self>) {
        if self.snapshot_pending.replace(true) {
            return;
        }
        let chat = self.clone();
        glommio::spawn_local(async move {
            glommio::timer::sleep(chat.cfg.queue.snapshot_interval).await;
            chat.snapshot_pending.set(false);
            match chat.queue_page(0, chat.cfg.queue.broadcast_limit).await {
                Ok(entries) => {
                    let _ = chat
                        .io
                        .to(&chat.cfg.socket.queue_room)
                        .emit("queue:snapshot", &Json(&entries));
                }
                Err(e) => tracing::warn!(error = %e, "queue snapshot skipped"),
            }
            // The same tick tells queued conversations' sockets where they stand.
            chat.tick_positions().await;
        })
        .detach();
    }

    /// Sends the current queue to a `scope=queue` socket (which already joined the queue room),
    /// from the queue executor, in order with later snapshots.
    pub async fn watch_queue(&self, socket_id: String) -> Result<(), GatewayError> {
        let socket_exec = self
            .node
            .owner_of(&socket_id)
            .ok_or_else(|| GatewayError::BadRequest("unknown socket".into()))?;
        self.on(self.queue_executor(), move |chat| async move {
            let entries = chat.queue_page(0, chat.cfg.queue.broadcast_limit).await?;
            chat.node.run_on(socket_exec, move |node| {
                let Some(chat) = Chat::current(node) else {
                    return;
                };
                if let Some(s) = chat.io.local_socket(&socket_id) {
                    let _ = s.emit("queue:snapshot", &Json(&entries));
                }
            })?;
            Ok(())
        })
        .await?
    }
}
