//! Socket.IO protocol v5 packet codec (server side), sans-IO.
//!
//! A Socket.IO packet travels inside an Engine.IO "message" (`4`) packet; this
//! module only sees the text after that prefix:
//!
//! ```text
//! <type digit>[<attachments>-][<namespace>,][<ack id>][<JSON data>]
//! ```
//!
//! [`decode`] mirrors the reference JS `socket.io-parser` v4 decoder (any error
//! is fatal for the connection) and is zero-copy: namespace, event name and
//! arguments borrow from the input, and arguments stay [`RawValue`]s so they
//! can be echoed byte-for-byte later (key order, number text and whitespace
//! inside values are never reformatted).
//!
//! The encoders append to a caller-owned `Vec<u8>` (which may already hold the
//! Engine.IO prefix) and produce exactly what the JS encoder produces.

use std::borrow::Cow;
use std::fmt;

use serde_json::value::RawValue;

/// Upper bound on binary attachments per packet; the JS parser's default
/// `maxAttachments` is also 10. Bounding it stops a peer from making us
/// buffer an unbounded number of binary frames for one packet.
pub const MAX_ATTACHMENTS: usize = 10;

/// Event names the server-side Socket.IO API reserves for itself; a client
/// emitting one of them could spoof lifecycle events, so they are rejected.
const RESERVED_EVENTS: [&str; 6] = [
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

/// Socket.IO packet type, encoded as the first character of the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketKind {
    /// `0`: connect to a namespace (client) / connection accepted (server).
    Connect,
    /// `1`: leave a namespace.
    Disconnect,
    /// `2`: event with JSON-only arguments.
    Event,
    /// `3`: acknowledgement with JSON-only arguments.
    Ack,
    /// `4`: namespace connection refused.
    ConnectError,
    /// `5`: event whose arguments reference binary attachments.
    BinaryEvent,
    /// `6`: acknowledgement whose arguments reference binary attachments.
    BinaryAck,
}

impl PacketKind {
    /// Parses the type digit (`b'0'..=b'6'`).
    pub fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            b'0' => Self::Connect,
            b'1' => Self::Disconnect,
            b'2' => Self::Event,
            b'3' => Self::Ack,
            b'4' => Self::ConnectError,
            b'5' => Self::BinaryEvent,
            b'6' => Self::BinaryAck,
            _ => return None,
        })
    }

    /// The type digit as written on the wire.
    pub fn as_byte(self) -> u8 {
        match self {
            Self::Connect => b'0',
            Self::Disconnect => b'1',
            Self::Event => b'2',
            Self::Ack => b'3',
            Self::ConnectError => b'4',
            Self::BinaryEvent => b'5',
            Self::BinaryAck => b'6',
        }
    }

    /// Whether the packet carries an attachment count (`N-`).
    pub fn is_binary(self) -> bool {
        matches!(self, Self::BinaryEvent | Self::BinaryAck)
    }

    /// Protocol name of the type, e.g. `"BINARY_EVENT"`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Connect => "CONNECT",
            Self::Disconnect => "DISCONNECT",
            Self::Event => "EVENT",
            Self::Ack => "ACK",
            Self::ConnectError => "CONNECT_ERROR",
            Self::BinaryEvent => "BINARY_EVENT",
            Self::BinaryAck => "BINARY_ACK",
        }
    }
}

impl fmt::Display for PacketKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A decoded packet, borrowing from the decoded text.
#[derive(Debug, Clone)]
pub struct Packet<'a> {
    /// Packet type.
    pub kind: PacketKind,
    /// Namespace, `"/"` when the packet names none.
    pub nsp: &'a str,
    /// Number of binary attachments that follow (0 for non-binary kinds).
    pub attachments: usize,
    /// Ack id: on EVENT/BINARY_EVENT the sender wants an ACK with this id;
    /// on ACK/BINARY_ACK (where it is mandatory) the id being answered.
    pub id: Option<u64>,
    /// Type-specific JSON payload.
    pub payload: Payload<'a>,
}

/// The JSON part of a packet, already checked against the packet type.
#[derive(Debug, Clone)]
pub enum Payload<'a> {
    /// No JSON data (CONNECT without auth, DISCONNECT).
    None,
    /// CONNECT auth object (raw) or CONNECT_ERROR string/object (raw).
    Raw(&'a RawValue),
    /// EVENT / BINARY_EVENT: event name (a number is turned into its decimal
    /// text, as JS `String(n)` would) and the remaining args (raw).
    Event {
        /// Event name; borrowed unless it had JSON escapes or was a
        /// non-trivial number.
        name: Cow<'a, str>,
        /// Arguments after the name, exactly as sent.
        args: Vec<&'a RawValue>,
    },
    /// ACK / BINARY_ACK args (raw).
    Ack {
        /// Acknowledgement arguments, exactly as sent (may be empty).
        args: Vec<&'a RawValue>,
    },
}

/// Why a packet was rejected by [`decode`]; the connection should be closed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PacketError {
    /// The packet text was empty.
    #[error("empty packet")]
    Empty,
    /// The first character is not a type digit `0`..`6`.
    #[error("unknown packet type {0:?}")]
    UnknownType(char),
    /// BINARY_EVENT/BINARY_ACK without digits for the attachment count.
    #[error("binary packet is missing its attachment count")]
    MissingAttachments,
    /// Attachment count digits not followed by `-`.
    #[error("attachment count is not terminated by '-'")]
    MissingAttachmentsDelimiter,
    /// More than [`MAX_ATTACHMENTS`] attachments announced.
    #[error("too many attachments (max {})", MAX_ATTACHMENTS)]
    TooManyAttachments,
    /// Ack id digits do not fit in a `u64`.
    #[error("ack id does not fit in 64 bits")]
    AckIdOverflow,
    /// ACK/BINARY_ACK without an ack id.
    #[error("{0} packet requires an ack id")]
    MissingAckId(PacketKind),
    /// The data part is not valid JSON.
    #[error("invalid JSON payload (column {column})")]
    InvalidJson {
        /// 1-based column in the data part where the JSON parser gave up.
        column: usize,
    },
    /// The packet type requires data but none was sent.
    #[error("{0} packet requires a payload")]
    MissingPayload(PacketKind),
    /// DISCONNECT carried data.
    #[error("{0} packet must not carry a payload")]
    UnexpectedPayload(PacketKind),
    /// Valid JSON, but not the shape the packet type requires.
    #[error("payload has the wrong shape for a {0} packet")]
    InvalidPayload(PacketKind),
    /// EVENT/BINARY_EVENT with an empty array.
    #[error("event payload has no event name")]
    MissingEventName,
    /// The first event element is neither a string nor a number.
    #[error("event name must be a string or a number")]
    InvalidEventName,
    /// The event name is reserved (see [`is_reserved_event`]).
    #[error("event name {0:?} is reserved")]
    ReservedEventName(&'static str),
}

/// Whether `name` is one of the event names clients may not emit.
pub fn is_reserved_event(name: &str) -> bool {
    reserved_event(name).is_some()
}

fn reserved_event(name: &str) -> Option<&'static str> {
    RESERVED_EVENTS.iter().copied().find(|r| *r == name)
}

/// Decodes one Socket.IO packet (without the Engine.IO `4` prefix).
///
/// Only the argument `Vec` is allocated (plus the event name in the rare case
/// that it contains JSON escapes or is a non-integer number).
///
/// # Errors
///
/// Any framing, JSON or payload-shape violation, see [`PacketError`]; the
/// caller should close the connection, as the JS server does.
pub fn decode(input: &str) -> Result<Packet<'_>, PacketError> {
    let bytes = input.as_bytes();
    let Some(&first) = bytes.first() else {
        return Err(PacketError::Empty);
    };
    let kind = PacketKind::from_byte(first)
        .ok_or_else(|| PacketError::UnknownType(input.chars().next().unwrap_or('\0')))?;
    let mut pos = 1;

    let mut attachments = 0;
    if kind.is_binary() {
        let (end, value) = scan_u64(bytes, pos);
        if end == pos {
            return Err(PacketError::MissingAttachments);
        }
        if bytes.get(end) != Some(&b'-') {
            return Err(PacketError::MissingAttachmentsDelimiter);
        }
        attachments = match value {
            Some(n) if n <= MAX_ATTACHMENTS as u64 => n as usize,
            _ => return Err(PacketError::TooManyAttachments),
        };
        pos = end + 1;
    }

    // The JS decoder lets the namespace run to the end of the string when no
    // ',' follows, so `0/custom` (a CONNECT without auth) is legal.
    let mut nsp = "/";
    if bytes.get(pos) == Some(&b'/') {
        match bytes[pos..].iter().position(|&b| b == b',') {
            Some(off) => {
                nsp = &input[pos..pos + off];
                pos += off + 1;
            }
            None => {
                nsp = &input[pos..];
                pos = bytes.len();
            }
        }
    }

    let (end, value) = scan_u64(bytes, pos);
    let id = if end > pos {
        pos = end;
        Some(value.ok_or(PacketError::AckIdOverflow)?)
    } else {
        None
    };
    if id.is_none() && matches!(kind, PacketKind::Ack | PacketKind::BinaryAck) {
        return Err(PacketError::MissingAckId(kind));
    }

    let data = Some(&input[pos..]).filter(|d| !d.is_empty());
    let payload = match kind {
        PacketKind::Connect => match data {
            None => Payload::None,
            Some(d) => Payload::Raw(raw_starting_with(kind, d, b"{")?),
        },
        PacketKind::Disconnect => match data {
            None => Payload::None,
            Some(_) => return Err(PacketError::UnexpectedPayload(kind)),
        },
        PacketKind::ConnectError => {
            let d = data.ok_or(PacketError::MissingPayload(kind))?;
            Payload::Raw(raw_starting_with(kind, d, b"\"{")?)
        }
        PacketKind::Event | PacketKind::BinaryEvent => {
            let mut args = raw_array(kind, data)?;
            if args.is_empty() {
                return Err(PacketError::MissingEventName);
            }
            // Shifting a few pointers avoids a second allocation and is far
            // simpler than a custom seq visitor that splits off the name.
            let name = event_name(args.remove(0))?;
            Payload::Event { name, args }
        }
        PacketKind::Ack | PacketKind::BinaryAck => Payload::Ack {
            args: raw_array(kind, data)?,
        },
    };

    Ok(Packet {
        kind,
        nsp,
        attachments,
        id,
        payload,
    })
}

/// Scans ASCII digits from `start`; returns the end index and the value, or
/// `None` as value when it overflows `u64` (the digits are still consumed so
/// the caller can tell "absent" from "too large").
fn scan_u64(bytes: &[u8], start: usize) -> (usize, Option<u64>) {
    let mut value = Some(0u64);
    let mut i = start;
    while let Some(&b) = bytes.get(i) {
        if !b.is_ascii_digit() {
            break;
        }
        value = value
            .and_then(|v| v.checked_mul(10))
            .and_then(|v| v.checked_add(u64::from(b - b'0')));
        i += 1;
    }
    (i, value)
}

fn json_error(e: &serde_json::Error) -> PacketError {
    PacketError::InvalidJson { column: e.column() }
}

/// First byte of the JSON value, skipping JSON whitespace: enough to learn
/// its type without parsing it twice.
fn first_json_byte(data: &str) -> Option<u8> {
    data.bytes()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
}

/// Parses `data` as a single raw JSON value whose first byte is in `allowed`.
fn raw_starting_with<'a>(
    kind: PacketKind,
    data: &'a str,
    allowed: &[u8],
) -> Result<&'a RawValue, PacketError> {
    let raw: &RawValue = serde_json::from_str(data).map_err(|e| json_error(&e))?;
    match raw.get().as_bytes().first() {
        Some(b) if allowed.contains(b) => Ok(raw),
        _ => Err(PacketError::InvalidPayload(kind)),
    }
}

/// Parses the data part as a JSON array of raw elements.
fn raw_array(kind: PacketKind, data: Option<&str>) -> Result<Vec<&RawValue>, PacketError> {
    let d = data.ok_or(PacketError::MissingPayload(kind))?;
    if first_json_byte(d) != Some(b'[') {
        // Report broken JSON as such rather than as a shape error.
        serde_json::from_str::<&RawValue>(d).map_err(|e| json_error(&e))?;
        return Err(PacketError::InvalidPayload(kind));
    }
    serde_json::from_str(d).map_err(|e| json_error(&e))
}

/// Turns the first event element into the event name.
fn event_name(raw: &RawValue) -> Result<Cow<'_, str>, PacketError> {
    let text = raw.get();
    let name = match text.as_bytes().first() {
        // Already validated JSON: without a backslash the content between
        // the quotes is the string itself, so it can be borrowed.
        Some(b'"') if !text.contains('\\') => Cow::Borrowed(&text[1..text.len() - 1]),
        Some(b'"') => Cow::Owned(serde_json::from_str::<String>(text).map_err(|e| json_error(&e))?),
        Some(b'-' | b'0'..=b'9') => return Ok(number_name(text)),
        _ => return Err(PacketError::InvalidEventName),
    };
    // Checked after unescaping: "\u0063onnect" is still "connect" to JS.
    match reserved_event(&name) {
        Some(r) => Err(PacketError::ReservedEventName(r)),
        None => Ok(name),
    }
}

/// Event name for a numeric first element, formatted like JS `String(n)` so
/// handlers see the same name a Node server would.
fn number_name(text: &str) -> Cow<'_, str> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    // Short integers are exact in f64 and print identically in JS: borrow.
    if digits.len() <= 15 && digits.bytes().all(|b| b.is_ascii_digit()) && text != "-0" {
        return Cow::Borrowed(text);
    }
    // Valid JSON numbers always parse; huge ones become infinite, like JS.
    let n: f64 = text.parse().unwrap_or(f64::NAN);
    let abs = n.abs();
    Cow::Owned(if n.is_nan() {
        "NaN".to_owned()
    } else if n.is_infinite() {
        if n > 0.0 { "Infinity" } else { "-Infinity" }.to_owned()
    } else if n == 0.0 {
        "0".to_owned() // also -0, which JS prints as "0"
    } else if abs >= 1e21 {
        // Rust prints `1e21`, JS `1e+21`.
        format!("{n:e}").replacen('e', "e+", 1)
    } else if abs < 1e-6 {
        format!("{n:e}")
    } else {
        // Both use the shortest round-trip digits in plain notation here.
        format!("{n}")
    })
}

/// Appends the decimal text of `n` without going through `fmt`.
fn write_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// Appends `s` as a JSON string literal; serde_json escapes exactly the set
/// `JSON.stringify` escapes (quote, backslash, control chars as `\u00xx`).
fn write_json_str(out: &mut Vec<u8>, s: &str) {
    serde_json::to_writer(&mut *out, s).expect("serializing a str into a Vec cannot fail");
}

/// Writes `<type>[N-][nsp,][id]`, like the JS encoder: the namespace only
/// when it is not the default one, the count only for binary kinds.
fn write_head(out: &mut Vec<u8>, kind: PacketKind, attachments: usize, nsp: &str, id: Option<u64>) {
    out.push(kind.as_byte());
    if kind.is_binary() {
        write_u64(out, attachments as u64);
        out.push(b'-');
    }
    if !nsp.is_empty() && nsp != "/" {
        out.extend_from_slice(nsp.as_bytes());
        out.push(b',');
    }
    if let Some(id) = id {
        write_u64(out, id);
    }
}

/// Writes the comma-separated args (after a comma when something precedes
/// them) and the closing `]`.
fn write_args<A: AsRef<str>>(out: &mut Vec<u8>, args: &[A], leading_comma: bool) {
    for (i, arg) in args.iter().enumerate() {
        if leading_comma || i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(arg.as_ref().as_bytes());
    }
    out.push(b']');
}

fn args_len<A: AsRef<str>>(args: &[A]) -> usize {
    args.iter().map(|a| a.as_ref().len() + 1).sum()
}

/// Appends a CONNECT reply: `0[nsp,]{"sid":"<sid>"}`.
pub fn encode_connect(out: &mut Vec<u8>, nsp: &str, sid: &str) {
    out.reserve(12 + nsp.len() + sid.len());
    write_head(out, PacketKind::Connect, 0, nsp, None);
    out.extend_from_slice(b"{\"sid\":");
    write_json_str(out, sid);
    out.push(b'}');
}

/// Appends a CONNECT_ERROR: `4[nsp,]{"message":"<msg>"}`, or with
/// `,"data":<raw>` appended inside the object when `data` is given (same key
/// order as the JS server).
pub fn encode_connect_error(out: &mut Vec<u8>, nsp: &str, message: &str, data: Option<&RawValue>) {
    write_head(out, PacketKind::ConnectError, 0, nsp, None);
    out.extend_from_slice(b"{\"message\":");
    write_json_str(out, message);
    if let Some(data) = data {
        out.extend_from_slice(b",\"data\":");
        out.extend_from_slice(data.get().as_bytes());
    }
    out.push(b'}');
}

/// Appends a DISCONNECT: `1[nsp,]`.
pub fn encode_disconnect(out: &mut Vec<u8>, nsp: &str) {
    write_head(out, PacketKind::Disconnect, 0, nsp, None);
}

/// Appends an EVENT (`attachments == 0`) or BINARY_EVENT:
/// `2[nsp,][id]["event",arg1,arg2]` / `5N-[nsp,][id]["event",...]`.
///
/// `args` are already-serialized JSON values written verbatim, comma
/// separated; binary args must already be `{"_placeholder":true,"num":i}`.
pub fn encode_event<A: AsRef<str>>(
    out: &mut Vec<u8>,
    nsp: &str,
    id: Option<u64>,
    attachments: usize,
    event: &str,
    args: &[A],
) {
    out.reserve(28 + nsp.len() + event.len() + args_len(args));
    write_event_head(out, nsp, id, attachments, event);
    write_args(out, args, true);
}

/// Appends the start of an EVENT / BINARY_EVENT, up to and including the
/// JSON-escaped event name: `2/x,12["ev"`.
///
/// The caller then appends `,<arg>` for each argument (e.g. serializing it
/// straight into `out` with `serde_json::to_writer`) and a final `]`.
pub fn write_event_head(
    out: &mut Vec<u8>,
    nsp: &str,
    id: Option<u64>,
    attachments: usize,
    event: &str,
) {
    let kind = if attachments > 0 {
        PacketKind::BinaryEvent
    } else {
        PacketKind::Event
    };
    write_head(out, kind, attachments, nsp, id);
    out.push(b'[');
    write_json_str(out, event);
}

/// Appends an ACK (`attachments == 0`) or BINARY_ACK:
/// `3[nsp,]id[arg1,...]` / `6N-[nsp,]id[...]`; `args` are written verbatim.
pub fn encode_ack<A: AsRef<str>>(
    out: &mut Vec<u8>,
    nsp: &str,
    id: u64,
    attachments: usize,
    args: &[A],
) {
    out.reserve(28 + nsp.len() + args_len(args));
    write_ack_head(out, nsp, id, attachments);
    write_args(out, args, false);
}

/// Appends the start of an ACK / BINARY_ACK, up to and including the
/// opening bracket: `3/x,12[`.
///
/// The caller then appends the arguments separated by `,` (no leading
/// comma) and a final `]`.
pub fn write_ack_head(out: &mut Vec<u8>, nsp: &str, id: u64, attachments: usize) {
    let kind = if attachments > 0 {
        PacketKind::BinaryAck
    } else {
        PacketKind::Ack
    };
    write_head(out, kind, attachments, nsp, Some(id));
    out.push(b'[');
}

#[cfg(test)]
#[path = "packet_tests.rs"]
mod tests;
