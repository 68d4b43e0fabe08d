//! Room events between nodes over Redis Pub/Sub: what a commit script published reaches every
//! socket of the room on every node, exactly once and in the script's order.
//!
//! Lives on: every executor, when the backend publishes (Redis). Each executor subscribes on
//! its own connection to the room channel of each conversation it has local members of, and
//! only while it has them — so a message costs one delivery per executor with members, not per
//! node or per executor of the cluster. (Per executor rather than per node: delivery needs no
//! hop between executors, and the subscription rides the connection the executor already has.)
//! The queue executor also listens to the queue channel and coalesces snapshots.
//!
//! A socket that resumes (`lastSeq`) joins without a gap or a duplicate: its executor holds the
//! room's live events while it subscribes, reads the backlog and sends it, then releases what
//! it held — to the resuming socket only what is newer than its backlog.
//!
//! Each room remembers the highest `seq` its members have (`last_seq`). When the executor's
//! connection to Redis is lost, whatever was published meanwhile is lost with it; [`resync`]
//! holds every room, waits for the reconnection (which restores the subscriptions), sends each
//! room the messages after its `last_seq` from the conversation's buffer and then a
//! `system:event` with the current conversation and `recovered` (false when the buffer no
//! longer had them all), and lets the held events through without duplicates.

mod resync;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::{Rc, Weak};

use futures_util::future::{FutureExt, LocalBoxFuture, Shared};
use serde_json::value::RawValue;

use super::engine::{room, Chat};
use super::queue_position::published_notice_queues;
use super::socket_ctx::SocketCtx;
use super::store::redis::keys::Keys;
use super::wire::Json;
use crate::error::GatewayError;
use crate::redis::{Msg, PushInfo, PushKind, Redis};

/// An event held while a socket of its room resumes.
#[derive(Debug)]
enum Held {
    /// `chat:message` JSON and its seq.
    Message(u64, Box<RawValue>),
    /// `{"type","conversation"}` of a `system:event`.
    Notice(String),
}

/// The subscription of one room channel: resolves once Redis confirmed it; every socket that
/// joins meanwhile waits for the same confirmation (a backlog read before it could miss what
/// is published between the read and the subscription).
type Subscribed = Shared<LocalBoxFuture<'static, Result<(), crate::redis::Error>>>;

/// This executor's local members of one room and its subscription.
struct Room {
    members: usize,
    subscribed: Subscribed,
    /// The highest `seq` delivered to the room's members (or current when the first joined):
    /// where a resync starts, and below which a message is a duplicate.
    last_seq: u64,
}

impl std::fmt::Debug for Room {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Room")
            .field("members", &self.members)
            .finish()
    }
}

#[derive(Debug, Default)]
struct Gate {
    resumes: usize,
    held: Vec<Held>,
}

/// One executor's subscriptions and delivery.
///
/// Lives on: one executor (every executor when the backend publishes).
#[derive(Debug)]
pub struct Fanout {
    conn: Redis,
    keys: Keys,
    rooms: RefCell<HashMap<String, Room>>,
    gates: RefCell<HashMap<String, Gate>>,
    /// Rooms held until a resync after a lost connection has caught them up.
    stale: RefCell<std::collections::HashSet<String>>,
    /// Whether a resync task runs.
    resyncing: std::cell::Cell<bool>,
    /// Whether this executor listens to the queue channel (a resync refreshes the snapshot).
    watches_queue: std::cell::Cell<bool>,
    /// The queue changed unseen while the connection was down: a snapshot is due.
    queue_stale: std::cell::Cell<bool>,
    chat: Weak<Chat>,
    /// Itself, for the tasks it spawns.
    me: Weak<Fanout>,
}

impl Fanout {
    /// Delivery over `conn`; pushes go to `chat`'s sockets.
    pub fn install(conn: Redis, keys: Keys, chat: Weak<Chat>) -> Rc<Self> {
        let fanout = Rc::new_cyclic(|me| Self {
            me: me.clone(),
            conn: conn.clone(),
            keys,
            rooms: RefCell::new(HashMap::new()),
            gates: RefCell::new(HashMap::new()),
            stale: RefCell::default(),
            resyncing: std::cell::Cell::new(false),
            watches_queue: std::cell::Cell::new(false),
            queue_stale: std::cell::Cell::new(false),
            chat: chat.clone(),
        });
        // The handler holds neither the connection nor the engine strongly (no cycle).
        let weak = Rc::downgrade(&fanout);
        conn.set_push_handler(move |push| {
            if let (Some(f), Some(c)) = (weak.upgrade(), chat.upgrade()) {
                f.on_push(&c, push);
            }
        });
        fanout
    }

    /// Listens to queue changes (queue executor).
    pub async fn watch_queue(&self) -> Result<(), GatewayError> {
        self.conn.subscribe(&[self.keys.queue_channel()]).await?;
        self.watches_queue.set(true);
        Ok(())
    }

    /// A local socket joins conversation `id`'s room: subscribes if it is the first, and returns
    /// once the subscription is confirmed (also for later joiners while it is pending).
    pub async fn join(&self, id: &str) -> Result<(), GatewayError> {
        let subscribed = {
            let mut rooms = self.rooms.borrow_mut();
            let room = rooms.entry(id.to_owned()).or_insert_with(|| {
                let (conn, channel) = (self.conn.clone(), self.keys.room_channel(id));
                let fut: LocalBoxFuture<'static, _> =
                    Box::pin(async move { conn.subscribe(&[channel]).await });
                Room {
                    members: 0,
                    subscribed: fut.shared(),
                    last_seq: 0,
                }
            });
            room.members += 1;
            room.subscribed.clone()
        };
        if let Err(e) = subscribed.await {
            self.leave(id);
            return Err(e.into());
        }
        Ok(())
    }

    /// A local socket left conversation `id`'s room: unsubscribes after the last.
    pub fn leave(&self, id: &str) {
        let last = {
            let mut rooms = self.rooms.borrow_mut();
            match rooms.get_mut(id) {
                Some(r) if r.members > 1 => {
                    r.members -= 1;
                    false
                }
                Some(_) => {
                    rooms.remove(id);
                    true
                }
                None => false,
            }
        };
        if last {
            // Sent after the SUBSCRIBE on the same connection, so Redis applies them in order.
            // A socket may join the room again before this task runs; its SUBSCRIBE is then
            // already out, and this UNSUBSCRIBE would cancel it while the room has a member. So
            // the task looks at the room first, and queues the UNSUBSCRIBE in the same step: a
            // join after that sends a new SUBSCRIBE after it.
            let (me, id) = (self.me.clone(), id.to_owned());
            glommio::spawn_local(async move {
                let Some(f) = me.upgrade() else { return };
                if f.rooms.borrow().contains_key(&id) {
                    return;
                }
                let (conn, channel) = (f.conn.clone(), f.keys.room_channel(&id));
                drop(f);
                // No await between the look and this first poll, which queues the command.
                if let Err(e) = conn.unsubscribe(&[channel]).await {
                    tracing::debug!(error = %e, "unsubscribe failed (dropped with the connection)");
                }
            })
            .detach();
        }
    }

    /// Holds `id`'s live events until [`Fanout::release`].
    pub fn hold(&self, id: &str) {
        self.gates
            .borrow_mut()
            .entry(id.to_owned())
            .or_default()
            .resumes += 1;
    }

    /// Ends one resume of `id`: delivers what was held (to `socket_id` only messages after
    /// `sent_up_to`, which its backlog already had). `current` is the conversation's highest
    /// seq when the joiner read it: the room is caught up at least to there once the held
    /// events are out.
    pub fn release(&self, chat: &Chat, id: &str, socket_id: &str, sent_up_to: u64, current: u64) {
        self.release_held(chat, id, Some((socket_id, sent_up_to)));
        if let Some(r) = self.rooms.borrow_mut().get_mut(id) {
            r.last_seq = r.last_seq.max(current);
        }
    }

    /// Ends one hold of `id` and delivers what it held: messages the room already has (at or
    /// below its `last_seq`) are dropped; with `joiner`, messages up to its backlog skip that
    /// socket.
    fn release_held(&self, chat: &Chat, id: &str, joiner: Option<(&str, u64)>) {
        let held = {
            let mut gates = self.gates.borrow_mut();
            let Some(g) = gates.get_mut(id) else { return };
            g.resumes -= 1;
            let held = std::mem::take(&mut g.held);
            if g.resumes == 0 {
                gates.remove(id);
            }
            held
        };
        let room = room(id);
        for h in held {
            match h {
                Held::Message(seq, json) => {
                    if !self.advance(id, seq) {
                        continue;
                    }
                    let to = chat.io().to(&room).local();
                    let to = match joiner {
                        Some((socket_id, sent_up_to)) if seq <= sent_up_to => to.except(socket_id),
                        _ => to,
                    };
                    to.counted().emit_raw("chat:message", &[&json], &[]);
                }
                Held::Notice(n) => notice(chat, id, &room, &n),
            }
        }
    }

    /// Records that the room of `id` gets message `seq`; false when it already had it (a
    /// resync delivered it from the buffer). Seq 0 (unreadable) always passes.
    fn advance(&self, id: &str, seq: u64) -> bool {
        let mut rooms = self.rooms.borrow_mut();
        let Some(r) = rooms.get_mut(id) else {
            return true;
        };
        if seq != 0 && seq <= r.last_seq {
            return false;
        }
        r.last_seq = r.last_seq.max(seq);
        true
    }

    fn on_push(self: &Rc<Self>, chat: &Rc<Chat>, push: PushInfo) {
        if push.kind == PushKind::Disconnection {
            self.connection_lost();
            return;
        }
        let Some(msg) = Msg::from_push_info(push) else {
            return;
        };
        chat.node.metrics().pubsub_received();
        let channel = msg.get_channel_name();
        if channel == self.keys.queue_channel() {
            chat.schedule_snapshot();
            return;
        }
        let Some(id) = self.keys.room_of(channel) else {
            return;
        };
        let payload = msg.get_payload_bytes();
        let Ok(text) = std::str::from_utf8(payload.get(1..).unwrap_or_default()) else {
            return;
        };
        let held = match payload.first() {
            Some(b'm') => match RawValue::from_string(text.to_owned()) {
                Ok(json) => Held::Message(seq_of(text), json),
                Err(_) => return,
            },
            Some(b'n') => Held::Notice(text.to_owned()),
            _ => return,
        };
        if let Some(g) = self.gates.borrow_mut().get_mut(id) {
            g.held.push(held);
            return;
        }
        let room = room(id);
        match held {
            Held::Message(seq, json) => {
                if self.advance(id, seq) {
                    chat.io()
                        .to(&room)
                        .local()
                        .counted()
                        .emit_raw("chat:message", &[&json], &[])
                }
            }
            Held::Notice(n) => notice(chat, id, &room, &n),
        }
    }
}

/// `system:event` to this executor's members of `room` (conversation `id`'s): the published
/// `{"type", "conversation"}` with each socket's own participant spliced in (no re-parse).
fn notice(chat: &Chat, id: &str, room: &str, json: &str) {
    let Some(body) = json.strip_suffix('}') else {
        return;
    };
    chat.io().for_each_local_member("/", room, |s| {
        let participant = s.with_data(|d: Option<&SocketCtx>| {
            d.and_then(|d| serde_json::to_string(&Json(&d.participant)).ok())
        });
        if let Some(p) = participant {
            if let Ok(ev) = RawValue::from_string(format!("{body},\"participant\":{p}}}")) {
                s.emit_raw("system:event", &[&ev], &[]);
            }
        }
    });
    chat.told_room(id, published_notice_queues(json));
}

/// The `seq` the commit script wrote first: `{"seq":N,...`.
fn seq_of(json: &str) -> u64 {
    json.strip_prefix("{\"seq\":")
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn seq_comes_from_the_front_of_the_published_json() {
        assert_eq!(super::seq_of("{\"seq\":42,\"id\":\"x\"}"), 42);
        assert_eq!(super::seq_of("{\"id\":\"x\"}"), 0);
    }
}
