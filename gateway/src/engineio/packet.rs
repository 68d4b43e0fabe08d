//! Engine.IO v4 packets and HTTP long-polling payloads, on byte slices (no sockets).
//!
//! A text packet is one type digit followed by its data (`4hello`, `2probe`); a binary packet
//! is raw bytes on WebSocket and `b` + base64 inside a polling payload. Payloads join packets
//! with the record separator `\x1e`.

use std::borrow::Cow;

use base64::Engine as _;
use bytes::Bytes;

use crate::error::GatewayError;

const SEPARATOR: u8 = 0x1e;
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// A packet received from a client, borrowing the received bytes where it can.
#[derive(Debug, PartialEq, Eq)]
pub enum Inbound<'a> {
    /// `1`: the client closes the session.
    Close,
    /// `2` + data: a ping (clients send `2probe` during upgrade).
    Ping(&'a str),
    /// `3` + data: the answer to our ping.
    Pong(&'a str),
    /// `4` + text: a message for the layer above (Socket.IO).
    Message(&'a str),
    /// A binary message (WebSocket binary frame, or `b` + base64 in a polling payload).
    Binary(Cow<'a, [u8]>),
    /// `5`: completes a transport upgrade.
    Upgrade,
    /// `6`: nothing.
    Noop,
}

/// Decodes one text packet. `0` (open) is server-to-client only and so invalid here.
pub fn decode_text(text: &str) -> Result<Inbound<'_>, GatewayError> {
    let mut chars = text.char_indices();
    let Some((_, ty)) = chars.next() else {
        return Err(GatewayError::InvalidPacket("empty packet"));
    };
    let data = &text[ty.len_utf8()..];
    Ok(match ty {
        '1' => Inbound::Close,
        '2' => Inbound::Ping(data),
        '3' => Inbound::Pong(data),
        '4' => Inbound::Message(data),
        '5' => Inbound::Upgrade,
        '6' => Inbound::Noop,
        _ => return Err(GatewayError::InvalidPacket("unknown packet type")),
    })
}

/// Splits a polling POST body into packets. The body must be UTF-8 text; every element must be a
/// valid packet, otherwise the whole body is refused (the caller closes the session).
pub fn decode_payload(body: &[u8]) -> Result<Vec<Inbound<'_>>, GatewayError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| GatewayError::InvalidPacket("payload is not UTF-8"))?;
    text.split(SEPARATOR as char)
        .map(|part| match part.strip_prefix('b') {
            Some(b64) => B64
                .decode(b64)
                .map(|v| Inbound::Binary(Cow::Owned(v)))
                .map_err(|_| GatewayError::InvalidPacket("invalid base64 in binary packet")),
            None => decode_text(part),
        })
        .collect()
}

/// A packet on its way to a client, encoded once and shared (broadcasts clone the `Bytes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A text packet including its type digit, e.g. `42["msg"]`. Always valid UTF-8.
    Text(Bytes),
    /// A binary packet (a Socket.IO attachment).
    Binary(Bytes),
}

impl Frame {
    /// `2`: a server ping.
    pub fn ping() -> Self {
        Self::Text(Bytes::from_static(b"2"))
    }

    /// `6`: a noop, used to release a parked polling GET.
    pub fn noop() -> Self {
        Self::Text(Bytes::from_static(b"6"))
    }

    /// `1`: the server closes the session.
    pub fn close() -> Self {
        Self::Text(Bytes::from_static(b"1"))
    }

    /// `4` + `text`: a message.
    pub fn message(text: &str) -> Self {
        let mut v = Vec::with_capacity(text.len() + 1);
        v.push(b'4');
        v.extend_from_slice(text.as_bytes());
        Self::Text(Bytes::from(v))
    }

    /// Wraps an already encoded text packet (type digit included). `text` must be UTF-8.
    pub fn text(text: Vec<u8>) -> Self {
        debug_assert!(std::str::from_utf8(&text).is_ok());
        Self::Text(Bytes::from(text))
    }

    /// Bytes this frame adds to a polling payload (used to respect `maxPayload` when batching).
    pub fn payload_len(&self) -> usize {
        match self {
            Self::Text(b) => b.len(),
            Self::Binary(b) => 1 + b.len().div_ceil(3) * 4,
        }
    }
}

/// The open packet: `0{"sid":..,"upgrades":[..],"pingInterval":..,"pingTimeout":..,"maxPayload":..}`.
pub fn open_packet(
    sid: &str,
    upgrades: &[&str],
    ping_interval_ms: u64,
    ping_timeout_ms: u64,
    max_payload: usize,
) -> Frame {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Open<'a> {
        sid: &'a str,
        upgrades: &'a [&'a str],
        ping_interval: u64,
        ping_timeout: u64,
        max_payload: usize,
    }
    let mut v = vec![b'0'];
    let open = Open {
        sid,
        upgrades,
        ping_interval: ping_interval_ms,
        ping_timeout: ping_timeout_ms,
        max_payload,
    };
    // Serializing a struct of strings and integers into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut v, &open);
    Frame::Text(Bytes::from(v))
}

/// Appends `frames` to a polling response body, `\x1e`-separated, binary as `b` + base64.
pub fn encode_payload<'a>(frames: impl IntoIterator<Item = &'a Frame>, out: &mut Vec<u8>) {
    for (i, f) in frames.into_iter().enumerate() {
        if i > 0 {
            out.push(SEPARATOR);
        }
        match f {
            Frame::Text(b) => out.extend_from_slice(b),
            Frame::Binary(b) => {
                out.push(b'b');
                let start = out.len();
                out.resize(start + b.len().div_ceil(3) * 4, 0);
                // The slice was sized for exactly this encoding, so it cannot be too small.
                let _ = B64.encode_slice(b, &mut out[start..]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_every_text_type() {
        assert_eq!(decode_text("1").ok(), Some(Inbound::Close));
        assert_eq!(decode_text("2probe").ok(), Some(Inbound::Ping("probe")));
        assert_eq!(decode_text("3").ok(), Some(Inbound::Pong("")));
        assert_eq!(decode_text("4héllo").ok(), Some(Inbound::Message("héllo")));
        assert_eq!(decode_text("5").ok(), Some(Inbound::Upgrade));
        assert_eq!(decode_text("6").ok(), Some(Inbound::Noop));
    }

    #[test]
    fn refuses_invalid_text() {
        for bad in ["", "0", "0{}", "7", "abc", "é"] {
            assert!(decode_text(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn payload_round_trip_with_binary() {
        let body = b"4hello\x1ebAQIDBA==\x1e2";
        let got = decode_payload(body).unwrap();
        assert_eq!(
            got,
            vec![
                Inbound::Message("hello"),
                Inbound::Binary(Cow::Owned(vec![1, 2, 3, 4])),
                Inbound::Ping("")
            ]
        );
        let frames = [
            Frame::message("hello"),
            Frame::Binary(Bytes::from_static(&[1, 2, 3, 4])),
            Frame::ping(),
        ];
        let mut out = Vec::new();
        encode_payload(&frames, &mut out);
        assert_eq!(out, body);
        assert_eq!(
            frames.iter().map(Frame::payload_len).sum::<usize>() + 2,
            body.len()
        );
    }

    #[test]
    fn payload_refuses_bad_parts() {
        assert!(decode_payload(b"abc").is_err());
        assert!(decode_payload(b"4a\x1e").is_err(), "empty trailing packet");
        assert!(decode_payload(b"b!!!").is_err());
        assert!(decode_payload(&[0x34, 0xff]).is_err());
    }

    #[test]
    fn open_packet_is_byte_exact() {
        let Frame::Text(b) = open_packet("abc", &["websocket"], 25000, 20000, 1_000_000) else {
            panic!("text expected");
        };
        assert_eq!(
            &b[..],
            br#"0{"sid":"abc","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#
        );
    }

    #[test]
    fn empty_binary_encodes_as_bare_b() {
        let mut out = Vec::new();
        encode_payload(&[Frame::Binary(Bytes::new())], &mut out);
        assert_eq!(out, b"b");
        assert_eq!(
            decode_payload(b"b").unwrap(),
            vec![Inbound::Binary(Cow::Owned(vec![]))]
        );
    }
}
