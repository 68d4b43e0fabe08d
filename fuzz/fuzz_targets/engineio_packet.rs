//! Fuzzes the Engine.IO v4 codec (`gateway/src/engineio/packet.rs`): `decode_payload` (a
//! polling POST body: `\x1e`-separated packets, binary as `b` + base64) and `decode_text` (one
//! WebSocket text frame), on arbitrary bytes.
//!
//! Properties checked besides "no panic":
//! - decode → encode → decode is the identity: every decoded payload is turned back into
//!   outbound `Frame`s, written with `encode_payload`, and decoded again to the same packets;
//!   `Frame::payload_len` adds up to exactly the encoded length;
//! - a payload decodes to exactly one packet per separator-delimited part, and a part that
//!   is text decodes exactly as `decode_text` decodes it alone;
//! - `decode_text` only accepts the client packet types `1`–`6`, and the data it returns is
//!   the input after the type digit.
#![no_main]

use std::borrow::Cow;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use livechat_gateway::engineio::packet::{decode_payload, decode_text, encode_payload, Frame};
use livechat_gateway::engineio::Inbound;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        check_text(text);
    }
    check_payload(data);
});

fn check_text(text: &str) {
    let Ok(p) = decode_text(text) else {
        return;
    };
    let first = text.as_bytes()[0];
    assert!((b'1'..=b'6').contains(&first), "type {first:?} accepted");
    match p {
        Inbound::Ping(d) | Inbound::Pong(d) | Inbound::Message(d) => assert_eq!(d, &text[1..]),
        Inbound::Binary(_) => panic!("decode_text returned a binary packet"),
        Inbound::Close | Inbound::Upgrade | Inbound::Noop => {}
    }
    // Re-encoding the packet types that carry their data reproduces the text.
    let mut out = Vec::new();
    encode_payload([&to_frame(&p)], &mut out);
    match &p {
        Inbound::Ping(_) | Inbound::Pong(_) | Inbound::Message(_) => {
            assert_eq!(out, text.as_bytes())
        }
        _ => assert_eq!(out.len(), 1),
    }
}

fn check_payload(body: &[u8]) {
    let Ok(packets) = decode_payload(body) else {
        return;
    };
    let text = std::str::from_utf8(body).expect("a decoded payload was UTF-8");
    let parts: Vec<&str> = text.split('\x1e').collect();
    assert_eq!(packets.len(), parts.len());
    for (p, part) in packets.iter().zip(&parts) {
        if !part.starts_with('b') {
            assert_eq!(Some(p), decode_text(part).ok().as_ref(), "part {part:?}");
        }
    }

    let frames: Vec<Frame> = packets.iter().map(to_frame).collect();
    let mut out = Vec::new();
    encode_payload(&frames, &mut out);
    let expected_len =
        frames.iter().map(Frame::payload_len).sum::<usize>() + frames.len().saturating_sub(1);
    assert_eq!(
        out.len(),
        expected_len,
        "payload_len disagrees with encode_payload"
    );
    let again = decode_payload(&out).expect("an encoded payload decodes");
    assert_eq!(packets, again, "round trip of {body:?} via {out:?}");
}

/// The outbound frame that writes the same packet.
fn to_frame(p: &Inbound<'_>) -> Frame {
    match p {
        Inbound::Message(m) => Frame::message(m),
        Inbound::Ping(d) => Frame::text(format!("2{d}").into_bytes()),
        Inbound::Pong(d) => Frame::text(format!("3{d}").into_bytes()),
        Inbound::Close => Frame::close(),
        Inbound::Noop => Frame::noop(),
        Inbound::Upgrade => Frame::text(b"5".to_vec()),
        Inbound::Binary(b) => Frame::Binary(Bytes::copy_from_slice(match b {
            Cow::Borrowed(b) => b,
            Cow::Owned(b) => b,
        })),
    }
}
