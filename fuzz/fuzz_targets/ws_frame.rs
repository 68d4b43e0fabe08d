//! Fuzzes the RFC 6455 frame decoder (`gateway/src/engineio/ws_frame.rs`): `WsDecoder::feed`
//! on an arbitrary client byte stream, fed whole and again split into arbitrary pieces (frames
//! cut anywhere, so the carry-over path runs), plus `check` and `encode_frame` / `unmask`.
//!
//! Properties checked besides "no panic":
//! - split-invariance: feeding the stream in pieces delivers exactly the events (and the
//!   error, if any) that feeding it whole does;
//! - `check` never claims more bytes than given, reports a 6-, 8- or 14-byte client header and
//!   never a payload over `max_payload`; control frames are final and at most 125 bytes;
//! - every message delivered is at most `max_payload` bytes (fragmented ones included);
//! - encode round-trip: each delivered text / binary / ping, written by the server encoder
//!   (`encode_frame`) and masked as a client would, decodes to the same event;
//! - `unmask` twice is the identity.
//!
//! Input layout: 2 bytes of `max_payload` selector, 1 byte seeding the split points, then the
//! stream.
#![no_main]

use libfuzzer_sys::fuzz_target;
use livechat_gateway::engineio::ws_frame::{
    check, encode_frame, unmask, Flow, Opcode, WsDecoder, WsError, WsEvent,
};

/// An owned copy of a delivered event.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Got {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong,
    Close(Option<u16>),
}

impl Got {
    fn of(ev: &WsEvent<'_>) -> Self {
        match *ev {
            WsEvent::Text(t) => Self::Text(t.to_owned()),
            WsEvent::Binary(b) => Self::Binary(b.to_vec()),
            WsEvent::Ping(p) => Self::Ping(p.to_vec()),
            WsEvent::Pong => Self::Pong,
            WsEvent::Close(c) => Self::Close(c),
        }
    }
}

/// What a whole run produced: the events, then how it ended.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    events: Vec<Got>,
    end: Result<Flow, String>,
}

fuzz_target!(|data: &[u8]| {
    let [m0, m1, seed, stream @ ..] = data else {
        return;
    };
    let max_payload = match u16::from_be_bytes([*m0, *m1]) {
        0xFFFF => usize::MAX,
        0xFFFE => 1_000_000, // the gateway's default maxPayload
        n => usize::from(n),
    };

    check_check(stream, max_payload);

    let whole = run(stream, &[stream.len()], max_payload);
    for ev in &whole.events {
        match ev {
            Got::Text(t) => assert!(t.len() <= max_payload),
            Got::Binary(b) => assert!(b.len() <= max_payload),
            Got::Ping(p) => assert!(p.len() <= 125),
            Got::Pong | Got::Close(_) => {}
        }
        round_trip(ev, max_payload);
    }

    // Split at pseudo-random points (xorshift from `seed`), then, for short streams, at
    // every byte.
    let mut cuts = Vec::new();
    let mut x = u32::from(*seed) | 0x100;
    let mut left = stream.len();
    while left > 0 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let n = (x as usize % 16 + 1).min(left);
        cuts.push(n);
        left -= n;
    }
    assert_eq!(run(stream, &cuts, max_payload), whole, "pieces {cuts:?}");
    if stream.len() <= 64 {
        let ones = vec![1; stream.len()];
        assert_eq!(run(stream, &ones, max_payload), whole, "byte by byte");
    }
});

/// Feeds `stream` in pieces of the given lengths; stops at the first error or `Stop` (a close
/// frame stops, as the gateway's connection loop does).
fn run(stream: &[u8], pieces: &[usize], max_payload: usize) -> Outcome {
    let mut dec = WsDecoder::new(max_payload);
    let mut events = Vec::new();
    let mut pos = 0;
    let mut end = Ok(Flow::Continue);
    for &n in pieces {
        let mut piece = stream[pos..pos + n].to_vec();
        pos += n;
        let r = dec.feed(&mut piece, |ev| {
            let got = Got::of(&ev);
            let stop = matches!(got, Got::Close(_));
            events.push(got);
            if stop {
                Flow::Stop
            } else {
                Flow::Continue
            }
        });
        match r {
            Ok(Flow::Continue) => {}
            Ok(Flow::Stop) => {
                end = Ok(Flow::Stop);
                break;
            }
            Err(e) => {
                end = Err(err_name(&e));
                break;
            }
        }
    }
    Outcome { events, end }
}

fn err_name(e: &WsError) -> String {
    format!("{e:?}")
}

fn check_check(buf: &[u8], max_payload: usize) {
    let Ok(Some(head)) = check(buf, max_payload) else {
        return;
    };
    assert!(
        head.total_len() <= buf.len(),
        "{head:?} over {} bytes",
        buf.len()
    );
    assert!(matches!(head.header_len, 6 | 8 | 14), "{head:?}");
    assert!(head.payload_len <= max_payload);
    if matches!(head.opcode, Opcode::Close | Opcode::Ping | Opcode::Pong) {
        assert!(head.fin && head.payload_len <= 125, "{head:?}");
    }
    // Unmasking twice restores the payload.
    let payload = &buf[head.header_len..head.total_len()];
    let mut p = payload.to_vec();
    unmask(&mut p, head.mask);
    unmask(&mut p, head.mask);
    assert_eq!(p, payload);
}

/// Writes `ev` as the server would, masks it as a client would and decodes it again.
fn round_trip(ev: &Got, max_payload: usize) {
    let (op, payload): (Opcode, &[u8]) = match ev {
        Got::Text(t) => (Opcode::Text, t.as_bytes()),
        Got::Binary(b) => (Opcode::Binary, b),
        Got::Ping(p) => (Opcode::Ping, p),
        Got::Pong | Got::Close(_) => return,
    };
    let mut server = Vec::new();
    encode_frame(&mut server, op, payload);
    let mut client = to_client(&server, [0x12, 0x34, 0x56, 0x78]);
    let mut got = Vec::new();
    let flow = WsDecoder::new(max_payload)
        .feed(&mut client, |e| {
            got.push(Got::of(&e));
            Flow::Continue
        })
        .expect("a re-encoded event decodes");
    assert_eq!(flow, Flow::Continue);
    assert_eq!(got, [ev.clone()]);
}

/// Turns an unmasked server frame into the masked frame a client would send.
fn to_client(server: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let header_len = match server[1] & 0x7F {
        126 => 4,
        127 => 10,
        _ => 2,
    };
    let mut out = server[..header_len].to_vec();
    out[1] |= 0x80;
    out.extend_from_slice(&mask);
    let mut payload = server[header_len..].to_vec();
    unmask(&mut payload, mask);
    out.extend_from_slice(&payload);
    out
}
