//! WebSocket framing (`livechat_gateway::engineio::ws_frame`): what every WebSocket byte costs
//! below Engine.IO.
//!
//! - `decode`: a read of N masked client frames (a typical `42["chat:message",...]` event)
//!   parsed in place, as the connection driver does with its executor-wide scratch buffer:
//!   header check, unmasking, UTF-8 validation, one callback per message. The input is
//!   re-masked outside the timed part each iteration (decoding unmasks it in place).
//! - `encode`: N server frames of the same event appended to one reused buffer — one `send`'s
//!   worth of a batched write.
//!
//! Throughput is bytes of frames.

use std::hint::black_box;

use criterion::{criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use livechat_benches::{MEASUREMENT, SAMPLES, SIO_EVENT, WARM_UP};
use livechat_gateway::engineio::ws_frame::{
    encode_frame, unmask, Flow, Opcode, WsDecoder, WsEvent,
};

const MASK: [u8; 4] = [0x1d, 0x7e, 0xa2, 0x05];

/// `n` masked client text frames carrying `4` + the Socket.IO event.
fn client_frames(n: usize) -> Vec<u8> {
    let text = format!("4{SIO_EVENT}");
    let mut out = Vec::new();
    for _ in 0..n {
        let start = out.len();
        encode_frame(&mut out, Opcode::Text, text.as_bytes());
        // Turn the server frame into a client one: set the mask bit, insert the key, mask.
        let header_len = if text.len() < 126 { 2 } else { 4 };
        out[start + 1] |= 0x80;
        let payload_at = start + header_len;
        out.splice(payload_at..payload_at, MASK);
        unmask(&mut out[payload_at + 4..], MASK);
    }
    out
}

fn decode_bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("ws_frame/decode");
    for n in [1usize, 16] {
        let input = client_frames(n);
        g.throughput(Throughput::Bytes(input.len() as u64));
        let mut decoder = WsDecoder::new(1_000_000);
        g.bench_with_input(BenchmarkId::new("frames", n), &input, |b, input| {
            b.iter_batched_ref(
                || input.clone(),
                |buf| {
                    let mut bytes = 0;
                    decoder
                        .feed(black_box(buf), |ev| {
                            if let WsEvent::Text(t) = ev {
                                bytes += t.len();
                            }
                            Flow::Continue
                        })
                        .expect("valid frames");
                    bytes
                },
                BatchSize::SmallInput,
            );
        });
    }
    g.finish();
}

fn encode_bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("ws_frame/encode");
    let text = format!("4{SIO_EVENT}");
    for n in [1usize, 16] {
        let mut out = Vec::with_capacity(n * (text.len() + 4));
        encode_frame(&mut out, Opcode::Text, text.as_bytes());
        g.throughput(Throughput::Bytes((out.len() * n) as u64));
        g.bench_function(BenchmarkId::new("frames", n), |b| {
            b.iter(|| {
                out.clear();
                for _ in 0..n {
                    encode_frame(&mut out, Opcode::Text, black_box(text.as_bytes()));
                }
                black_box(out.len())
            });
        });
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
    decode_bench(&mut c);
    encode_bench(&mut c);
}
criterion_main!(benches);
