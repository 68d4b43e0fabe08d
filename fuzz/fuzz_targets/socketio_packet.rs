//! Fuzzes the Socket.IO v5 packet decoder (`gateway/src/socketio/packet.rs`): `decode` on
//! arbitrary text, and binary-attachment reassembly as the session does it (a `5N-` / `6N-`
//! packet, then `N` binary Engine.IO packets, then the text decoded again with them).
//!
//! Properties checked besides "no panic":
//! - decode → encode → decode: every decoded EVENT / ACK / BINARY_* is written back with the
//!   public encoders (`encode_event`, `encode_ack`, `encode_disconnect`; CONNECT and
//!   CONNECT_ERROR with their documented layout) and decodes to the same packet (namespace,
//!   id, attachments, event name, argument texts byte for byte); encoding that again gives the
//!   same bytes (the encoder is canonical);
//! - the header invariants: `attachments <= MAX_ATTACHMENTS` and 0 for non-binary kinds, an
//!   ACK always has an id, an event name is never a reserved one, every argument is valid JSON;
//! - `decode` is deterministic (the session decodes a binary packet's text a second time once
//!   its attachments arrived, and relies on getting the same packet).
//!
//! Input: the text before the first `\x1e` is the packet; every further `\x1e`-separated part
//! is one binary attachment frame, as a polling payload would carry them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use livechat_gateway::socketio::packet::{
    decode, encode_ack, encode_disconnect, encode_event, is_reserved_event, Packet, PacketKind,
    Payload, MAX_ATTACHMENTS,
};

fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|&b| b == 0x1e);
    let Some(text) = parts.next().and_then(|t| std::str::from_utf8(t).ok()) else {
        return;
    };
    let binaries: Vec<&[u8]> = parts.collect();

    let Ok(p) = decode(text) else {
        return;
    };
    invariants(&p);
    let again = decode(text).expect("decode is deterministic");
    assert_eq!(summary(&p), summary(&again));

    // Reassembly as `SioConn` does it: wait for exactly `attachments` binary frames.
    if p.kind.is_binary() && p.attachments > 0 {
        assert!(p.attachments <= MAX_ATTACHMENTS);
        let mut buffered = Vec::with_capacity(p.attachments);
        for b in binaries.iter().take(p.attachments) {
            buffered.push(b.to_vec());
        }
        if buffered.len() == p.attachments {
            let complete = decode(text).expect("the buffered text decodes again");
            assert_eq!(complete.attachments, buffered.len());
        }
    }

    let encoded = encode(&p);
    let q = decode(&encoded)
        .unwrap_or_else(|e| panic!("{text:?} re-encoded as {encoded:?} does not decode: {e}"));
    invariants(&q);
    let (mut want, got) = (summary(&p), summary(&q));
    // BINARY_EVENT / BINARY_ACK with 0 attachments are written as EVENT / ACK.
    if p.attachments == 0 {
        want.0 = match p.kind {
            PacketKind::BinaryEvent => PacketKind::Event,
            PacketKind::BinaryAck => PacketKind::Ack,
            k => k,
        };
    }
    assert_eq!(want, got, "{text:?} re-encoded as {encoded:?}");
    assert_eq!(
        encode(&q),
        encoded,
        "the encoder is not canonical for {text:?}"
    );
});

/// Everything a packet carries, owned and comparable.
type Summary = (
    PacketKind,
    String,
    usize,
    Option<u64>,
    Option<String>,
    Vec<String>,
);

fn summary(p: &Packet<'_>) -> Summary {
    let nsp = p.nsp.to_owned();
    let (name, args) = match &p.payload {
        Payload::None => (None, Vec::new()),
        Payload::Raw(r) => (None, vec![r.get().to_owned()]),
        Payload::Event { name, args } => (
            Some(name.to_string()),
            args.iter().map(|a| a.get().to_owned()).collect(),
        ),
        Payload::Ack { args } => (None, args.iter().map(|a| a.get().to_owned()).collect()),
    };
    (p.kind, nsp, p.attachments, p.id, name, args)
}

fn invariants(p: &Packet<'_>) {
    assert!(p.attachments <= MAX_ATTACHMENTS);
    if !p.kind.is_binary() {
        assert_eq!(p.attachments, 0);
    }
    if matches!(p.kind, PacketKind::Ack | PacketKind::BinaryAck) {
        assert!(p.id.is_some(), "ACK without id");
    }
    assert!(p.nsp == "/" || p.nsp.starts_with('/'), "nsp {:?}", p.nsp);
    assert!(!p.nsp.contains(','), "nsp {:?}", p.nsp);
    let args: &[&serde_json::value::RawValue] = match &p.payload {
        Payload::Event { name, args } => {
            assert!(!is_reserved_event(name), "reserved event {name:?} accepted");
            args
        }
        Payload::Ack { args } => args,
        Payload::Raw(r) => {
            let first = r.get().as_bytes()[0];
            match p.kind {
                PacketKind::Connect => assert_eq!(first, b'{'),
                PacketKind::ConnectError => assert!(first == b'{' || first == b'"'),
                k => panic!("raw payload on {k}"),
            }
            std::slice::from_ref(r)
        }
        Payload::None => {
            assert!(matches!(
                p.kind,
                PacketKind::Connect | PacketKind::Disconnect
            ));
            &[]
        }
    };
    for a in args {
        // Each argument is exactly one JSON value (what `Event::arg` deserializes from).
        // `IgnoredAny`, not `Value`: a number beyond f64 (`1e400`) is valid JSON that `Value`
        // refuses; handlers get a deserialization error for it, which is fine.
        serde_json::from_str::<serde::de::IgnoredAny>(a.get())
            .unwrap_or_else(|e| panic!("argument {:?} is not JSON: {e}", a.get()));
        assert_eq!(
            a.get().trim(),
            a.get(),
            "argument keeps surrounding whitespace"
        );
    }
}

/// Writes `p` back with the gateway's encoders.
fn encode(p: &Packet<'_>) -> String {
    let mut out = Vec::new();
    let args_of = |args: &[&serde_json::value::RawValue]| -> Vec<String> {
        args.iter().map(|a| a.get().to_owned()).collect()
    };
    match (&p.payload, p.kind) {
        (Payload::Event { name, args }, _) => {
            encode_event(&mut out, p.nsp, p.id, p.attachments, name, &args_of(args))
        }
        (Payload::Ack { args }, _) => encode_ack(
            &mut out,
            p.nsp,
            p.id.expect("ACK has an id"),
            p.attachments,
            &args_of(args),
        ),
        (Payload::None, PacketKind::Disconnect) => {
            encode_disconnect(&mut out, p.nsp);
            if let Some(id) = p.id {
                out.extend_from_slice(id.to_string().as_bytes());
            }
        }
        (Payload::None | Payload::Raw(_), kind) => {
            // `<type>[nsp,][id][raw]`, the layout the JS encoder uses for CONNECT / CONNECT_ERROR.
            out.push(kind.as_byte());
            if p.nsp != "/" {
                out.extend_from_slice(p.nsp.as_bytes());
                out.push(b',');
            }
            if let Some(id) = p.id {
                out.extend_from_slice(id.to_string().as_bytes());
            }
            if let Payload::Raw(r) = &p.payload {
                out.extend_from_slice(r.get().as_bytes());
            }
        }
    }
    String::from_utf8(out).expect("encoders write UTF-8")
}
