//! `livechat_core::ChatMessage` to and from JSON: serde_json (what the gateway uses) against
//! simd-json's serde compatibility layer.
//!
//! Every chat message is serialized once per broadcast and every REST `POST .../messages`
//! body is parsed once, so this is the JSON cost per message. The message is realistic: a
//! customer sender with metadata, 100 characters of content, a small metadata object, an
//! ISO-8601 timestamp (~560 bytes of JSON).
//!
//! simd-json parses in place, so `simd_json::serde::from_slice` needs a `&mut [u8]`; the
//! gateway only holds borrowed `&str` packets, so the simd-json decode includes copying the
//! input into a reused buffer (a few tens of nanoseconds). `simd_json` allocates its scratch
//! buffers per call, as `from_slice` does; `simd_json_reused_buffers` keeps them across calls
//! (`from_slice_with_buffers`), which is how a long-lived connection would use it. After each
//! group the bench prints `WINNER ...` lines naming the faster library and the ratio of the
//! mean times.

use std::hint::black_box;
use std::time::SystemTime;

use criterion::{criterion_main, Criterion, Throughput};
use livechat_benches::{print_winner, sample_message, MEASUREMENT, SAMPLES, WARM_UP};
use livechat_core::ChatMessage;

const ENCODE: &str = "chat_message_json/encode";
const DECODE: &str = "chat_message_json/decode";

fn encode(c: &mut Criterion) {
    let start = SystemTime::now();
    let msg = sample_message();
    let json = serde_json::to_vec(&msg).expect("serializable");
    let mut g = c.benchmark_group(ENCODE);
    g.throughput(Throughput::Bytes(json.len() as u64));
    g.bench_function("serde_json", |b| {
        b.iter(|| serde_json::to_vec(black_box(&msg)).expect("serializable"));
    });
    g.bench_function("simd_json", |b| {
        b.iter(|| simd_json::serde::to_vec(black_box(&msg)).expect("serializable"));
    });
    g.finish();
    print_winner(ENCODE, "serde_json", "simd_json", start);
}

fn decode(c: &mut Criterion) {
    let start = SystemTime::now();
    let msg = sample_message();
    let json = serde_json::to_vec(&msg).expect("serializable");

    // Both libraries must read back the same message (and write JSON the other can read).
    let simd_out = simd_json::serde::to_vec(&msg).expect("serializable");
    assert_eq!(
        serde_json::from_slice::<ChatMessage>(&simd_out).expect("valid JSON"),
        msg
    );
    let mut copy = json.clone();
    assert_eq!(
        simd_json::serde::from_slice::<ChatMessage>(&mut copy).expect("valid JSON"),
        msg
    );

    let mut g = c.benchmark_group(DECODE);
    g.throughput(Throughput::Bytes(json.len() as u64));
    g.bench_function("serde_json", |b| {
        b.iter(|| serde_json::from_slice::<ChatMessage>(black_box(&json)).expect("valid JSON"));
    });
    let mut buf: Vec<u8> = Vec::with_capacity(json.len());
    g.bench_function("simd_json", |b| {
        b.iter(|| {
            buf.clear();
            buf.extend_from_slice(black_box(&json));
            simd_json::serde::from_slice::<ChatMessage>(&mut buf).expect("valid JSON")
        });
    });
    // The fast path simd-json offers: its scratch buffers (tape, string buffer, aligned
    // input copy) kept across calls instead of allocated per call.
    let mut buffers = simd_json::Buffers::new(json.len());
    g.bench_function("simd_json_reused_buffers", |b| {
        b.iter(|| {
            buf.clear();
            buf.extend_from_slice(black_box(&json));
            simd_json::serde::from_slice_with_buffers::<ChatMessage>(&mut buf, &mut buffers)
                .expect("valid JSON")
        });
    });
    g.finish();
    print_winner(DECODE, "serde_json", "simd_json", start);
    print_winner(DECODE, "serde_json", "simd_json_reused_buffers", start);
}

/// This file's benchmarks with the suite's time budget (what `criterion_group!` would
/// generate, minus its undocumented `pub fn`).
fn benches() {
    let mut c = Criterion::default()
        .warm_up_time(WARM_UP)
        .measurement_time(MEASUREMENT)
        .sample_size(SAMPLES)
        .configure_from_args();
    encode(&mut c);
    decode(&mut c);
}
criterion_main!(benches);
