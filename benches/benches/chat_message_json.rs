//! `livechat_core::ChatMessage` to and from JSON through the gateway's wire spelling
//! (`livechat_gateway::chat::wire`: `Json(&message)` to write, `Decoded<ChatMessage>` to read,
//! exactly what every emit, ack and Redis value goes through): serde_json (what the gateway
//! uses) against simd-json's serde compatibility layer driving the same wire definitions.
//!
//! Every chat message is serialized once per broadcast and every REST `POST .../messages`
//! body is parsed once, so this is the JSON cost per message. The message is realistic: a
//! customer sender with metadata, 100 characters of content, a small metadata object, an
//! ISO-8601 timestamp (~500 bytes of JSON).
//!
//! simd-json parses in place, so `simd_json::serde::from_slice` needs a `&mut [u8]`; the
//! gateway only holds borrowed `&str` packets, so every simd-json decode includes copying the
//! input into a reused buffer (a few tens of nanoseconds). `simd_json` allocates its scratch
//! buffers per call, as `from_slice` does; `simd_json_reused_buffers` keeps them across calls
//! (`from_slice_with_buffers`), which is how a long-lived connection would use it.
//!
//! After the criterion groups the bench prints `WINNER ...` lines: serde_json and each
//! simd-json variant timed interleaved (201 rounds of 200 calls each, median per call), so a
//! shared machine's drift cannot pick the winner (skipped when a command-line filter
//! deselects the group's last benchmark).

use std::cell::Cell;
use std::hint::black_box;

use criterion::{criterion_main, Criterion, Throughput};
use livechat_benches::{
    paired_medians, print_winner, sample_message, MEASUREMENT, SAMPLES, WARM_UP,
};
use livechat_core::ChatMessage;
use livechat_gateway::chat::wire::{Decoded, Json};

const ROUNDS: usize = 201;
const CALLS: usize = 200;

/// The message as JSON, checked to round-trip through both libraries.
fn fixture() -> (ChatMessage, Vec<u8>) {
    let msg = sample_message();
    let json = serde_json::to_vec(&Json(&msg)).expect("serializable");
    let simd_out = simd_json::serde::to_vec(&Json(&msg)).expect("serializable");
    assert_eq!(simd_out, json, "both libraries write the same bytes");
    assert_eq!(
        serde_json::from_slice::<Decoded<ChatMessage>>(&simd_out)
            .expect("valid JSON")
            .0,
        msg
    );
    let mut copy = json.clone();
    assert_eq!(
        simd_json::serde::from_slice::<Decoded<ChatMessage>>(&mut copy)
            .expect("valid JSON")
            .0,
        msg
    );
    (msg, json)
}

fn serde_encode(msg: &ChatMessage) -> Vec<u8> {
    serde_json::to_vec(&Json(black_box(msg))).expect("serializable")
}

fn simd_encode(msg: &ChatMessage) -> Vec<u8> {
    simd_json::serde::to_vec(&Json(black_box(msg))).expect("serializable")
}

fn serde_decode(json: &[u8]) -> ChatMessage {
    serde_json::from_slice::<Decoded<ChatMessage>>(black_box(json))
        .expect("valid JSON")
        .0
}

fn simd_decode(json: &[u8], buf: &mut Vec<u8>) -> ChatMessage {
    buf.clear();
    buf.extend_from_slice(black_box(json));
    simd_json::serde::from_slice::<Decoded<ChatMessage>>(buf)
        .expect("valid JSON")
        .0
}

fn simd_decode_reused(
    json: &[u8],
    buf: &mut Vec<u8>,
    buffers: &mut simd_json::Buffers,
) -> ChatMessage {
    buf.clear();
    buf.extend_from_slice(black_box(json));
    simd_json::serde::from_slice_with_buffers::<Decoded<ChatMessage>>(buf, buffers)
        .expect("valid JSON")
        .0
}

fn encode(c: &mut Criterion) {
    let (msg, json) = fixture();
    let mut g = c.benchmark_group("chat_message_json/encode");
    g.throughput(Throughput::Bytes(json.len() as u64));
    let ran = Cell::new(false);
    g.bench_function("serde_json", |b| b.iter(|| serde_encode(&msg)));
    g.bench_function("simd_json", |b| {
        ran.set(true);
        b.iter(|| simd_encode(&msg));
    });
    g.finish();
    if !ran.get() {
        return; // filtered out on the command line
    }

    let (ts, tm) = paired_medians(
        || drop(black_box(serde_encode(&msg))),
        || drop(black_box(simd_encode(&msg))),
        ROUNDS,
        CALLS,
    );
    print_winner(
        "chat_message_json/encode",
        ("serde_json", ts),
        ("simd_json", tm),
    );
}

fn decode(c: &mut Criterion) {
    let (_, json) = fixture();
    let mut buf: Vec<u8> = Vec::with_capacity(json.len());
    let mut buffers = simd_json::Buffers::new(json.len());
    let mut g = c.benchmark_group("chat_message_json/decode");
    g.throughput(Throughput::Bytes(json.len() as u64));
    g.bench_function("serde_json", |b| b.iter(|| serde_decode(&json)));
    g.bench_function("simd_json", |b| b.iter(|| simd_decode(&json, &mut buf)));
    let ran = Cell::new(false);
    g.bench_function("simd_json_reused_buffers", |b| {
        ran.set(true);
        b.iter(|| simd_decode_reused(&json, &mut buf, &mut buffers));
    });
    g.finish();
    if !ran.get() {
        return; // filtered out on the command line
    }

    let (ts, tm) = paired_medians(
        || drop(black_box(serde_decode(&json))),
        || drop(black_box(simd_decode(&json, &mut buf))),
        ROUNDS,
        CALLS,
    );
    print_winner(
        "chat_message_json/decode",
        ("serde_json", ts),
        ("simd_json", tm),
    );
    let mut buf2: Vec<u8> = Vec::with_capacity(json.len());
    let (ts, tr) = paired_medians(
        || drop(black_box(serde_decode(&json))),
        || {
            drop(black_box(simd_decode_reused(
                &json,
                &mut buf2,
                &mut buffers,
            )))
        },
        ROUNDS,
        CALLS,
    );
    print_winner(
        "chat_message_json/decode",
        ("serde_json", ts),
        ("simd_json_reused_buffers", tr),
    );
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
