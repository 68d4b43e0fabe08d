//! Socket.IO v5 packet codec (`livechat_gateway::socketio::packet`).
//!
//! `decode` runs once per inbound Socket.IO packet (zero-copy: arguments stay `RawValue`s, so
//! its cost is mostly validating the JSON), and the encoders run once per emit or broadcast
//! (a broadcast encodes once for all members). Cases: an EVENT with a small JSON object
//! argument (`chat:message`), a BINARY_EVENT with two attachment placeholders, an ACK; and
//! encoding an event from an already-serialized argument (`encode_event`) or by serializing a
//! `ChatMessage` (its wire spelling, `Json(&message)`) straight after `write_event_head`.
//! Throughput is packets (elements).

use std::hint::black_box;

use criterion::{criterion_main, Criterion, Throughput};
use livechat_benches::{
    sample_message, MEASUREMENT, SAMPLES, SIO_ACK, SIO_BINARY_EVENT, SIO_EVENT, WARM_UP,
};
use livechat_gateway::chat::wire::Json;
use livechat_gateway::socketio::packet::{decode, encode_event, write_event_head, Payload};

fn decode_bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("socketio/decode");
    g.throughput(Throughput::Elements(1));
    for (name, text, args) in [
        ("event_object_arg", SIO_EVENT, 1),
        ("binary_event_2_placeholders", SIO_BINARY_EVENT, 3),
        ("ack", SIO_ACK, 1),
    ] {
        // Check the fixture decodes to what the name says, so the bench measures that path.
        let p = decode(text).expect("valid packet");
        let n = match &p.payload {
            Payload::Event { args, .. } | Payload::Ack { args } => args.len(),
            _ => 0,
        };
        assert_eq!(n, args, "{name}");
        g.bench_function(name, |b| {
            b.iter(|| decode(black_box(text)).expect("valid packet"));
        });
    }
    g.finish();
}

fn encode_bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("socketio/encode");
    g.throughput(Throughput::Elements(1));
    let msg = sample_message();
    let arg = serde_json::to_string(&Json(&msg)).expect("serializable");
    let mut out = Vec::with_capacity(1024);

    // Args already JSON (e.g. a relayed RawValue): copying bytes around the head.
    g.bench_function("encode_event_raw_arg", |b| {
        b.iter(|| {
            out.clear();
            out.push(b'4');
            encode_event(&mut out, "/", None, 0, black_box("chat:message"), &[&arg]);
            black_box(out.len())
        });
    });

    // What `emit(&Json(&message))` does: head, then serialize the value straight into the buffer.
    g.bench_function("write_event_head_plus_serialize", |b| {
        b.iter(|| {
            out.clear();
            out.push(b'4');
            write_event_head(&mut out, "/", None, 0, black_box("chat:message"));
            out.push(b',');
            serde_json::to_writer(&mut out, &Json(black_box(&msg))).expect("serializable");
            out.push(b']');
            black_box(out.len())
        });
    });
    g.finish();

    // Both encoders must produce the same packet.
    let mut raw = vec![b'4'];
    encode_event(&mut raw, "/", None, 0, "chat:message", &[&arg]);
    assert_eq!(raw, out);
}

/// This file's benchmarks with the suite's time budget (what `criterion_group!` would
/// generate, minus its undocumented `pub fn`).
fn benches() {
    let mut c = Criterion::default()
        .warm_up_time(WARM_UP)
        .measurement_time(MEASUREMENT)
        .sample_size(SAMPLES)
        .configure_from_args();
    decode_bench(&mut c);
    encode_bench(&mut c);
}
criterion_main!(benches);
