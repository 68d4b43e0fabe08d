//! What handlers receive (an [`Event`] and maybe an [`AckSender`]) and how outgoing packets
//! are encoded once into Engine.IO frames.

use std::rc::Rc;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::value::RawValue;

use super::packet::{write_ack_head, write_event_head};
use super::socket::Socket;
use crate::engineio::Frame;

/// An event received from a client.
#[derive(Debug)]
pub struct Event<'a> {
    /// Event name (the first element of the packet's array).
    pub name: &'a str,
    /// The other arguments, exactly as the client wrote them. Binary arguments are
    /// `{"_placeholder":true,"num":i}` objects pointing into [`Event::binary`].
    pub args: &'a [&'a RawValue],
    /// Binary attachments, in placeholder order.
    pub binary: &'a [Bytes],
    /// Present when the client asked for an acknowledgement.
    pub ack: Option<AckSender>,
}

impl Event<'_> {
    /// Deserializes argument `i`.
    pub fn arg<T: DeserializeOwned>(&self, i: usize) -> Result<T, serde_json::Error> {
        let raw = self.args.get(i).map_or("null", |r| r.get());
        serde_json::from_str(raw)
    }
}

/// Answers a client's emit-with-ack. Dropping it without sending leaves the client waiting
/// (its own timeout applies), as in the reference server.
#[derive(Debug)]
pub struct AckSender {
    pub(crate) socket: Rc<Socket>,
    pub(crate) id: u64,
}

impl AckSender {
    /// Acknowledges with one JSON value.
    pub fn send<T: Serialize + ?Sized>(self, data: &T) {
        let mut out = vec![b'4'];
        write_ack_head(&mut out, self.socket.namespace(), self.id, 0);
        if serde_json::to_writer(&mut out, data).is_err() {
            tracing::warn!(socket = self.socket.id(), "ack payload failed to serialize");
            return;
        }
        out.push(b']');
        self.socket.push_frames(vec![Frame::text(out)]);
        self.socket.count(|m| m.acked());
    }

    /// Acknowledges with arguments as raw JSON plus binary attachments (placeholders in `args`
    /// refer to `binary` by index).
    pub fn send_raw(self, args: &[&RawValue], binary: &[Bytes]) {
        let mut out = vec![b'4'];
        write_ack_head(&mut out, self.socket.namespace(), self.id, binary.len());
        push_args(&mut out, args.iter().map(|a| a.get()), false);
        out.push(b']');
        let frames = with_binary(out, binary);
        self.socket.push_frames(frames);
        self.socket.count(|m| m.acked());
    }
}

/// The arguments of an acknowledgement the server asked for.
#[derive(Debug, Clone)]
pub struct AckResponse {
    /// Arguments, raw JSON.
    pub args: Vec<Box<RawValue>>,
    /// Binary attachments.
    pub binary: Vec<Bytes>,
}

/// Why an emit-with-ack produced no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    /// The client did not answer in time.
    #[error("acknowledgement timed out")]
    Timeout,
    /// The socket disconnected first.
    #[error("socket disconnected")]
    Disconnected,
}

/// Encodes an event with one JSON argument: `4` + Socket.IO packet.
pub(crate) fn encode_json<T: Serialize + ?Sized>(
    nsp: &str,
    id: Option<u64>,
    event: &str,
    data: &T,
) -> Result<Vec<Frame>, serde_json::Error> {
    let mut out = Vec::with_capacity(64);
    out.push(b'4');
    write_event_head(&mut out, nsp, id, 0, event);
    out.push(b',');
    serde_json::to_writer(&mut out, data)?;
    out.push(b']');
    Ok(vec![Frame::text(out)])
}

/// Encodes an event with raw JSON arguments and binary attachments.
pub(crate) fn encode_raw<'a>(
    nsp: &str,
    id: Option<u64>,
    event: &str,
    args: impl IntoIterator<Item = &'a str>,
    binary: &[Bytes],
) -> Vec<Frame> {
    let mut out = Vec::with_capacity(64);
    out.push(b'4');
    write_event_head(&mut out, nsp, id, binary.len(), event);
    push_args(&mut out, args, true);
    out.push(b']');
    with_binary(out, binary)
}

fn push_args<'a>(out: &mut Vec<u8>, args: impl IntoIterator<Item = &'a str>, after_name: bool) {
    for (i, a) in args.into_iter().enumerate() {
        if after_name || i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(a.as_bytes());
    }
}

fn with_binary(text: Vec<u8>, binary: &[Bytes]) -> Vec<Frame> {
    let mut frames = Vec::with_capacity(1 + binary.len());
    frames.push(Frame::text(text));
    frames.extend(binary.iter().cloned().map(Frame::Binary));
    frames
}
