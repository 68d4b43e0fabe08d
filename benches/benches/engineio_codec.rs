//! Engine.IO packet and polling-payload codec (`livechat_gateway::engineio::packet`).
//!
//! Every inbound WebSocket message goes through `decode_text`, every polling POST through
//! `decode_payload`, and every polling GET response through `encode_payload`, so these are
//! the per-packet costs below Socket.IO. Payloads hold 1, 10 and 100 packets; every tenth is
//! a binary attachment (`b` + base64 of 256 bytes), which exercises the base64 paths.
//! Throughput is bytes of the encoded payload (packets for `decode_text`, which does not
//! read past the type character).

use std::hint::black_box;

use criterion::{criterion_main, BenchmarkId, Criterion, Throughput};
use livechat_benches::{engineio_payload, MEASUREMENT, SAMPLES, SIO_EVENT, WARM_UP};
use livechat_gateway::engineio::packet::{decode_payload, decode_text, encode_payload};

fn decode_text_bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("engineio/decode_text");
    // `decode_text` reads only the type character and borrows the rest, so its cost does not
    // grow with the packet: throughput is packets, not bytes.
    g.throughput(Throughput::Elements(1));
    let message = format!("4{SIO_EVENT}");
    for (name, text) in [("message", message.as_str()), ("pong", "3")] {
        g.bench_with_input(BenchmarkId::from_parameter(name), text, |b, t| {
            b.iter(|| decode_text(black_box(t)).expect("valid packet"));
        });
    }
    g.finish();
}

fn payload_benches(c: &mut Criterion) {
    let sizes = [1usize, 10, 100];
    let mut g = c.benchmark_group("engineio/decode_payload");
    for n in sizes {
        let (_, body) = engineio_payload(n);
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_with_input(BenchmarkId::new("packets", n), &body, |b, body| {
            b.iter(|| decode_payload(black_box(body)).expect("valid payload"));
        });
    }
    g.finish();

    let mut g = c.benchmark_group("engineio/encode_payload");
    for n in sizes {
        let (frames, body) = engineio_payload(n);
        g.throughput(Throughput::Bytes(body.len() as u64));
        // The output buffer is reused, as a polling response body of the same size would be
        // allocated once; the measured cost is copying and base64-encoding.
        let mut out = Vec::with_capacity(body.len());
        g.bench_with_input(BenchmarkId::new("packets", n), &frames, |b, frames| {
            b.iter(|| {
                out.clear();
                encode_payload(black_box(frames), &mut out);
                black_box(out.len())
            });
        });
        assert_eq!(out, body);
    }
    g.finish();
}

/// This file's benchmarks with the suite's time budget (what `criterion_group!` would
/// generate, minus its undocumented `pub fn`).
fn benches() {
    let mut c = Criterion::default()
        .warm_up_time(WARM_UP)
        .measurement_time(MEASUREMENT)
        .sample_size(SAMPLES)
        .configure_from_args();
    decode_text_bench(&mut c);
    payload_benches(&mut c);
}
criterion_main!(benches);
