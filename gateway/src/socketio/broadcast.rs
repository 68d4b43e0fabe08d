//! Emitting to many sockets: rooms and namespaces, on every executor of the node.
//!
//! The packet is encoded once; local members get clones of the same `Bytes`, and every other
//! executor gets one mesh message carrying the encoded frames, which it delivers to its own
//! members. A full mailbox drops that executor's share and is counted (`mesh_full`).

use std::rc::{Rc, Weak};

use bytes::Bytes;
use serde::Serialize;
use serde_json::value::RawValue;

use super::event::{encode_json, encode_raw};
use super::{IoInner, Remote};
use crate::engineio::Frame;
use crate::runtime::MeshMsg;

/// Selects recipients (rooms, exceptions) and emits to them.
#[derive(Debug, Clone)]
pub struct BroadcastOperator {
    io: Weak<IoInner>,
    nsp: Rc<str>,
    rooms: Vec<Rc<str>>,
    except: Vec<Rc<str>>,
    local_only: bool,
    counted: bool,
}

impl BroadcastOperator {
    pub(crate) fn new(io: Weak<IoInner>, nsp: Rc<str>) -> Self {
        Self {
            io,
            nsp,
            rooms: Vec::new(),
            except: Vec::new(),
            local_only: false,
            counted: false,
        }
    }

    /// Adds a room (recipients are the union of the rooms; none = the whole namespace).
    pub fn to(mut self, room: &str) -> Self {
        self.rooms.push(room.into());
        self
    }

    /// Excludes a socket id, or every member of a room.
    pub fn except(mut self, id_or_room: &str) -> Self {
        self.except.push(id_or_room.into());
        self
    }

    /// Only this executor's members (for callers that already fan out per executor).
    pub fn local(mut self) -> Self {
        self.local_only = true;
        self
    }

    /// Counts every socket reached, on every executor, in that executor's `deliveries` metric
    /// (the chat's `chat:message`s).
    pub fn counted(mut self) -> Self {
        self.counted = true;
        self
    }

    /// Emits `event` with one JSON argument.
    pub fn emit<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
    ) -> Result<(), serde_json::Error> {
        self.deliver(encode_json(&self.nsp, None, event, data)?);
        Ok(())
    }

    /// Emits `event` with raw JSON arguments and binary attachments.
    pub fn emit_raw(&self, event: &str, args: &[&RawValue], binary: &[Bytes]) {
        self.deliver(encode_raw(
            &self.nsp,
            None,
            event,
            args.iter().map(|a| a.get()),
            binary,
        ));
    }

    /// Delivers already encoded frames.
    pub(crate) fn deliver(&self, frames: Vec<Frame>) {
        let Some(io) = self.io.upgrade() else { return };
        if !self.local_only {
            for other in io.node().port().others() {
                let msg = Remote::Broadcast {
                    nsp: self.nsp.to_string(),
                    rooms: self.rooms.iter().map(|r| r.to_string()).collect(),
                    except: self.except.iter().map(|r| r.to_string()).collect(),
                    frames: frames.clone(),
                    counted: self.counted,
                };
                if let Err(e) = io.node().port().try_send(other, MeshMsg::SocketIo(msg)) {
                    tracing::warn!(error = %e, "broadcast share dropped");
                }
            }
        }
        let reached = deliver_local(&io, &self.nsp, &self.rooms, &self.except, &frames);
        if self.counted {
            io.node().metrics().delivered(reached);
        }
    }
}

/// Delivers frames to this executor's members of `rooms` in namespace `nsp`; returns how many
/// sockets it reached.
pub(crate) fn deliver_local(
    io: &IoInner,
    nsp: &str,
    rooms: &[Rc<str>],
    except: &[Rc<str>],
    frames: &[Frame],
) -> usize {
    let mut reached = 0;
    if let Some(ns) = io.namespace(nsp) {
        ns.for_each_member(rooms, except, |s| {
            s.push_frames(frames.iter().cloned());
            reached += 1;
        });
    }
    reached
}
