//! Tests for the WebSocket framing: every refusal rule, fragmentation, frames split at every
//! byte boundary, and server frames read back by tungstenite (an independent implementation).

use super::*;

/// A masked client frame, as a browser would send it.
fn client_frame(fin: bool, op: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut out = vec![if fin { 0x80 } else { 0 } | op];
    let n = payload.len();
    if n < 126 {
        out.push(0x80 | n as u8);
    } else if n <= 0xFFFF {
        out.push(0x80 | 126);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(n as u64).to_be_bytes());
    }
    out.extend_from_slice(&mask);
    let mut p = payload.to_vec();
    unmask(&mut p, mask);
    out.extend_from_slice(&p);
    out
}

#[derive(Debug, PartialEq, Eq)]
enum Got {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong,
    Close(Option<u16>),
}

fn collect(dec: &mut WsDecoder, input: &[u8], out: &mut Vec<Got>) -> Result<Flow, WsError> {
    let mut buf = input.to_vec();
    dec.feed(&mut buf, |ev| {
        out.push(match ev {
            WsEvent::Text(t) => Got::Text(t.to_owned()),
            WsEvent::Binary(b) => Got::Binary(b.to_vec()),
            WsEvent::Ping(p) => Got::Ping(p.to_vec()),
            WsEvent::Pong => Got::Pong,
            WsEvent::Close(c) => Got::Close(c),
        });
        Flow::Continue
    })
}

fn decode_all(input: &[u8]) -> Result<Vec<Got>, WsError> {
    let mut dec = WsDecoder::new(1 << 20);
    let mut out = Vec::new();
    collect(&mut dec, input, &mut out)?;
    Ok(out)
}

const M: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

#[test]
fn text_binary_and_control_frames() {
    let mut input = client_frame(true, 1, b"42[\"hi\"]", M);
    input.extend(client_frame(true, 2, &[0, 1, 2, 255], M));
    input.extend(client_frame(true, 9, b"p", M));
    input.extend(client_frame(true, 10, b"", M));
    input.extend(client_frame(true, 8, &[0x03, 0xE8, b'o', b'k'], M));
    assert_eq!(
        decode_all(&input).unwrap(),
        vec![
            Got::Text("42[\"hi\"]".into()),
            Got::Binary(vec![0, 1, 2, 255]),
            Got::Ping(b"p".to_vec()),
            Got::Pong,
            Got::Close(Some(1000)),
        ]
    );
    assert_eq!(
        decode_all(&client_frame(true, 8, b"", M)).unwrap(),
        vec![Got::Close(None)]
    );
}

#[test]
fn all_length_encodings() {
    for n in [0, 1, 125, 126, 127, 65_535, 65_536, 200_000] {
        let payload: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
        let got = decode_all(&client_frame(true, 2, &payload, M)).unwrap();
        assert_eq!(got, vec![Got::Binary(payload)], "length {n}");
    }
}

#[test]
fn split_at_every_byte_boundary() {
    let mut input = client_frame(true, 1, "héllo wörld".as_bytes(), M);
    input.extend(client_frame(false, 1, b"frag", M));
    input.extend(client_frame(true, 9, b"mid", M)); // control frames may interleave
    input.extend(client_frame(true, 0, b"mented", M));
    input.extend(client_frame(true, 2, &[7; 300], M));
    let want = decode_all(&input).unwrap();
    assert_eq!(want.len(), 4);
    for cut in 0..=input.len() {
        for cut2 in [cut, (cut + 3).min(input.len())] {
            let mut dec = WsDecoder::new(1 << 20);
            let mut got = Vec::new();
            collect(&mut dec, &input[..cut], &mut got).unwrap();
            collect(&mut dec, &input[cut..cut2], &mut got).unwrap();
            collect(&mut dec, &input[cut2..], &mut got).unwrap();
            assert_eq!(got, want, "cut at {cut}/{cut2}");
            assert!(dec.carry.is_empty());
        }
    }
}

#[test]
fn fragmented_messages_reassemble() {
    let mut input = client_frame(false, 2, &[1, 2], M);
    input.extend(client_frame(false, 0, &[3], M));
    input.extend(client_frame(true, 0, &[4, 5], M));
    input.extend(client_frame(false, 1, "é".as_bytes()[..1].as_ref(), M));
    input.extend(client_frame(true, 0, "é".as_bytes()[1..].as_ref(), M));
    assert_eq!(
        decode_all(&input).unwrap(),
        vec![Got::Binary(vec![1, 2, 3, 4, 5]), Got::Text("é".into())]
    );
}

#[test]
fn protocol_violations_are_refused() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("reserved bit", {
            let mut f = client_frame(true, 1, b"x", M);
            f[0] |= 0x40;
            f
        }),
        ("unknown opcode", client_frame(true, 3, b"x", M)),
        ("unmasked", vec![0x81, 0x01, b'x']),
        ("fragmented ping", client_frame(false, 9, b"x", M)),
        ("long ping", client_frame(true, 9, &[0; 126], M)),
        ("continuation first", client_frame(true, 0, b"x", M)),
        ("close with one byte", client_frame(true, 8, &[3], M)),
        ("new message inside a fragmented one", {
            let mut f = client_frame(false, 1, b"a", M);
            f.extend(client_frame(true, 1, b"b", M));
            f
        }),
        ("64-bit length with the top bit", {
            let mut f = vec![0x82, 0xFF];
            f.extend_from_slice(&u64::MAX.to_be_bytes());
            f.extend_from_slice(&M);
            f
        }),
    ];
    for (what, input) in cases {
        assert_eq!(decode_all(&input), Err(WsError::Protocol), "{what}");
    }
}

#[test]
fn invalid_utf8_is_refused() {
    assert_eq!(
        decode_all(&client_frame(true, 1, &[0xC3, 0x28], M)),
        Err(WsError::InvalidUtf8)
    );
    let mut split = client_frame(false, 1, &[0xC3], M);
    split.extend(client_frame(true, 0, &[0x28], M));
    assert_eq!(decode_all(&split), Err(WsError::InvalidUtf8));
    assert_eq!(
        decode_all(&client_frame(true, 8, &[3, 232, 0xFF], M)),
        Err(WsError::InvalidUtf8)
    );
    assert_eq!(WsError::InvalidUtf8.close_code(), 1007);
}

#[test]
fn too_big_is_refused_from_the_header() {
    let mut dec = WsDecoder::new(10);
    let frame = client_frame(true, 2, &[0; 11], M);
    // Only the header has arrived: refused before the payload is buffered.
    assert_eq!(
        collect(&mut dec, &frame[..6], &mut Vec::new()),
        Err(WsError::TooBig)
    );
    let mut dec = WsDecoder::new(10);
    let mut frags = client_frame(false, 2, &[0; 6], M);
    frags.extend(client_frame(true, 0, &[0; 6], M));
    assert_eq!(
        collect(&mut dec, &frags, &mut Vec::new()),
        Err(WsError::TooBig)
    );
    assert_eq!(WsError::TooBig.close_code(), 1009);
}

#[test]
fn stop_drops_the_rest() {
    let mut input = client_frame(true, 1, b"a", M);
    input.extend(client_frame(true, 1, b"b", M));
    let mut dec = WsDecoder::new(100);
    let mut seen = Vec::new();
    let flow = dec
        .feed(&mut input, |ev| {
            if let WsEvent::Text(t) = ev {
                seen.push(t.to_owned());
            }
            Flow::Stop
        })
        .unwrap();
    assert_eq!(flow, Flow::Stop);
    assert_eq!(seen, vec!["a"]);
}

#[test]
fn large_carry_over_is_freed() {
    let frame = client_frame(true, 2, &[9; 100_000], M);
    let mut dec = WsDecoder::new(1 << 20);
    let mut got = Vec::new();
    collect(&mut dec, &frame[..50_000], &mut got).unwrap();
    assert!(dec.carry.capacity() >= 50_000);
    collect(&mut dec, &frame[50_000..], &mut got).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(dec.carry.capacity(), 0);
}

#[test]
fn server_frames_read_back_by_tungstenite() {
    use std::io::Cursor;
    use tungstenite::protocol::{Role, WebSocket};
    let mut bytes = Vec::new();
    let big = "x".repeat(70_000);
    encode_frame(&mut bytes, Opcode::Text, b"40");
    encode_frame(&mut bytes, Opcode::Binary, &[1; 300]);
    encode_frame(&mut bytes, Opcode::Text, big.as_bytes());
    encode_close(&mut bytes, 1000);
    let mut ws = WebSocket::from_raw_socket(Cursor::new(bytes), Role::Client, None);
    assert_eq!(ws.read().unwrap(), tungstenite::Message::text("40"));
    assert_eq!(
        ws.read().unwrap(),
        tungstenite::Message::binary(vec![1u8; 300])
    );
    assert_eq!(ws.read().unwrap(), tungstenite::Message::text(big));
    assert!(matches!(
        ws.read().unwrap(),
        tungstenite::Message::Close(Some(f)) if u16::from(f.code) == 1000
    ));
}

#[test]
fn unmask_round_trips() {
    for n in 0..20 {
        let orig: Vec<u8> = (0..n).map(|i| i as u8 * 7).collect();
        let mut d = orig.clone();
        unmask(&mut d, M);
        if n > 0 {
            assert_ne!(d, orig);
        }
        unmask(&mut d, M);
        assert_eq!(d, orig);
    }
}
