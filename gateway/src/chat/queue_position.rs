//! Live queue positions: `queue:position {conversationId, position, estimatedWait}` to the
//! sockets joined to a queued conversation whenever its place in the queue changes, and the
//! position a REST read (`GET /api/conversations/{id}/queue`) answers.
//!
//! Runs on: the queue executor for the reads — each coalesced snapshot tick, after
//! `queue:snapshot`, reads the ids of the oldest `chat.queue.position-limit` conversations
//! (one read, ids only) and hands the list to every executor of the node; it also answers
//! lookups of one conversation's position. Every executor delivers to its own members of each
//! listed conversation's room (`for_each_local_member`), so a tick costs work in proportion to
//! the list, never to the node's sockets. With Redis every node's queue executor ticks on the
//! queue channel's ping, so every node serves its own sockets.
//!
//! Why the reads happen on the queue executor: ticks and lookups leave it in the order they
//! were read and reach each executor over one FIFO mesh channel, so the last position a socket
//! is sent comes from the newest read.
//!
//! Ordering with `system:event`: a tick read just before an accept can reach a socket after
//! the accept's `CONVERSATION_ACCEPTED` (they travel different channels). Each socket keeps a
//! [`PositionWatch`]: whether the last `system:event` it was sent (its join, a notice, a resync
//! after a Redis outage) said QUEUED, and the last position it was sent. Positions reach it
//! only while that says QUEUED, so none follows the accept. A tick can also arrive before the
//! `CONVERSATION_QUEUED` of a (re-)queue and is then dropped; to make up for it, a socket that
//! is told QUEUED (that notice, or a join or resync of a queued conversation) makes its
//! executor look its position up — read after that step was committed. A socket is sent a
//! position only when it differs from the last one it was sent; leaving the queue forgets the
//! last one, so a conversation queued again at the same place is told again.

use std::cell::Cell;
use std::sync::Arc;

use livechat_core::store::ConversationStore;
use livechat_core::{ConversationMetadata, ConversationStatus, QueuePosition};

use super::engine::{room, Chat};
use super::socket_ctx::SocketCtx;
use super::wire::QueuePositionEvent;
use crate::error::GatewayError;
use crate::socketio::Socket;

/// What one socket was told about its conversation's place in the queue.
///
/// Lives on: the socket's executor, inside its [`SocketCtx`].
#[derive(Debug, Clone, Default)]
pub struct PositionWatch {
    /// Whether the last `system:event` the socket was sent said QUEUED.
    queued: Cell<bool>,
    /// The last position it was sent while queued.
    sent: Cell<Option<usize>>,
}

impl PositionWatch {
    /// The socket was sent a `system:event` saying whether its conversation is `queued`.
    /// Returns whether a fresh position should be looked up for it (it is queued).
    pub fn saw(&self, queued: bool) -> bool {
        self.queued.set(queued);
        if !queued {
            self.sent.set(None);
        }
        queued
    }

    /// A position read for the socket's conversation: whether to send it (the socket was
    /// last told QUEUED, and was not sent this position already). Records it when so.
    pub fn offer(&self, position: usize) -> bool {
        if !self.queued.get() || self.sent.get() == Some(position) {
            return false;
        }
        self.sent.set(Some(position));
        true
    }
}

/// Whether a notice as published over Redis (`{"type":...,"conversation":...}`, see
/// `wire::Announced::published`) says the conversation entered the queue.
pub(super) fn published_notice_queues(json: &str) -> bool {
    json.strip_prefix("{\"type\":")
        .is_some_and(|rest| rest.starts_with("\"CONVERSATION_QUEUED\""))
}

/// Conversation id and its 0-based position.
type Positions = Vec<(String, usize)>;

impl Chat {
    /// The answer for `position`: the wait estimate is `chat.queue.estimated-wait-per-position`
    /// for it and for every conversation ahead.
    pub fn estimate(&self, position: usize) -> QueuePosition {
        let per = self.cfg.queue.estimated_wait_per_position.as_millis();
        QueuePosition::estimate(position, i64::try_from(per).unwrap_or(i64::MAX))
    }

    /// Where the conversation `meta` describes stands now; `WrongStatus` (409) when it is not
    /// queued.
    pub async fn position_of(
        &self,
        meta: &ConversationMetadata,
    ) -> Result<QueuePosition, GatewayError> {
        if meta.status != ConversationStatus::Queued {
            return Err(GatewayError::WrongStatus(format!(
                "conversation {} is not queued (it is {})",
                meta.id,
                meta.status.as_str()
            )));
        }
        // Accepted (or closed) since `meta` was read.
        let gone = || GatewayError::WrongStatus(format!("conversation {} left the queue", meta.id));
        let position = self.queue_position(&meta.id).await?.ok_or_else(gone)?;
        Ok(self.estimate(position))
    }

    /// A snapshot tick's positions (queue executor, after its `queue:snapshot`): the oldest
    /// `position-limit` conversations, to every executor of this node.
    pub(super) async fn tick_positions(&self) {
        let limit = self.cfg.queue.position_limit;
        if limit == 0 {
            return;
        }
        match self.store().queue_ids(limit).await {
            Ok(ids) => {
                let positions = ids.into_iter().enumerate().map(|(p, id)| (id, p));
                self.spread(positions.collect());
            }
            Err(e) => tracing::warn!(error = %e, "queue positions skipped"),
        }
    }

    /// Hands `positions` to every executor of this node (this one inline), each delivering to
    /// its own members; one list shared by all of them.
    fn spread(&self, positions: Positions) {
        if positions.is_empty() {
            return;
        }
        let positions = Arc::new(positions);
        for e in self.node.port().executors() {
            let positions = positions.clone();
            // A full mailbox drops this tick there (counted by the mesh); the next one, or
            // the next lookup, carries the position again.
            let _ = self.node.run_on(e, move |node| {
                if let Some(chat) = Chat::current(node) {
                    chat.offer_positions(&positions);
                }
            });
        }
    }

    /// Sends each conversation's position to this executor's members of its room that should
    /// get it (see [`PositionWatch::offer`]).
    fn offer_positions(&self, positions: &[(String, usize)]) {
        for (id, position) in positions {
            let mut answer = None;
            self.io.for_each_local_member("/", &room(id), |s| {
                let send = s
                    .with_data(|d: Option<&SocketCtx>| d.is_some_and(|d| d.queue.offer(*position)));
                if send {
                    let answer = answer.get_or_insert_with(|| self.estimate(*position));
                    let _ = s.emit("queue:position", &QueuePositionEvent::new(id, answer));
                }
            });
        }
    }

    /// Looks conversation `id`'s position up on the queue executor, which sends it back to this
    /// executor's members of the room (in order with its ticks). Not queued: nothing is sent.
    fn look_up_position(&self, id: &str) {
        let (home, id) = (self.node.executor(), id.to_owned());
        let _ = self.node.run_on(self.queue_executor(), move |node| {
            let Some(chat) = Chat::current(node) else {
                return;
            };
            glommio::spawn_local(async move {
                match chat.queue_position(&id).await {
                    Ok(Some(position)) => {
                        let positions = vec![(id, position)];
                        let _ = chat.node.run_on(home, move |node| {
                            if let Some(chat) = Chat::current(node) {
                                chat.offer_positions(&positions);
                            }
                        });
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::debug!(conversation = %id, error = %e, "queue position not looked up");
                    }
                }
            })
            .detach();
        });
    }

    /// Socket `s` was just sent a `system:event` about conversation `id` — its join, on its
    /// executor — saying whether it is `queued`; a queued one gets its position next.
    pub(super) fn told_socket(&self, s: &Socket, id: &str, queued: bool) {
        if s.with_data(|d: Option<&SocketCtx>| d.is_some_and(|d| d.queue.saw(queued))) {
            self.look_up_position(id);
        }
    }

    /// This executor's members of conversation `id`'s room were just sent a `system:event`
    /// (a notice, a resync) saying whether it is `queued`; if so, one lookup serves them all.
    pub(super) fn told_room(&self, id: &str, queued: bool) {
        let mut look_up = false;
        self.io.for_each_local_member("/", &room(id), |s| {
            look_up |= s.with_data(|d: Option<&SocketCtx>| d.is_some_and(|d| d.queue.saw(queued)));
        });
        if look_up {
            self.look_up_position(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use livechat_core::{
        ChatParticipant, ConversationStatus, Metadata, Notice, ParticipantKind, Timestamp,
    };

    use super::{published_notice_queues, PositionWatch};
    use crate::chat::wire::Announced;
    use crate::error::GatewayError;

    #[test]
    fn nothing_is_sent_before_the_socket_is_told_its_conversation_is_queued() {
        let w = PositionWatch::default();
        assert!(!w.offer(3), "joined nothing queued yet");
        assert!(w.saw(true), "told QUEUED: look the position up");
        assert!(w.offer(3));
        assert!(!w.offer(3), "the same position is not sent twice");
        assert!(w.offer(2), "a change is");
        assert!(!w.saw(false), "accepted: nothing to look up");
        assert!(
            !w.offer(1),
            "a tick read before the accept arrives late: dropped"
        );
    }

    #[test]
    fn a_conversation_queued_again_at_the_same_place_is_told_again() {
        let w = PositionWatch::default();
        w.saw(true);
        assert!(w.offer(0));
        w.saw(false);
        w.saw(true);
        assert!(w.offer(0), "leaving the queue forgot what was sent");
        // A resync saying QUEUED again keeps what the socket has.
        assert!(w.saw(true));
        assert!(!w.offer(0));
    }

    #[test]
    fn only_a_queued_notice_queues() {
        let mut meta = livechat_core::start(
            "c1".into(),
            ChatParticipant::new("u1", ParticipantKind::Customer, "Cy"),
            Metadata::new(),
            Timestamp(0),
        )
        .conversation;
        meta.status = ConversationStatus::Queued;
        for (kind, queues) in [
            (Notice::ConversationQueued, true),
            (Notice::ConversationAccepted, false),
            (Notice::ConversationClosed, false),
            (Notice::QueueTimeout, false),
        ] {
            let json = serde_json::to_string(&Announced::published(&kind, &meta)).unwrap();
            assert_eq!(published_notice_queues(&json), queues, "{json}");
        }
        assert!(!published_notice_queues(""));
        assert!(!published_notice_queues("{\"conversation\":{}}"));
    }

    #[test]
    fn not_queued_is_a_conflict() {
        let e = GatewayError::WrongStatus("conversation c1 is not queued (it is OPEN)".into());
        assert_eq!((e.status(), e.code()), (409, "conflict"));
    }
}
