//! Cross-executor round trip over the mesh (`livechat_shard_router::Mesh`, bounded flume
//! channels) between two glommio executors.
//!
//! Every chat command that lands on an executor other than the conversation's owner crosses
//! the mesh twice (command there, reply back), and polling requests are forwarded the same
//! way, so this latency is the floor under any cross-executor request. Executor A sends
//! `Ping(i)` to executor B's inbox with `MeshPort::send`; B answers `Pong(i)` into A's inbox.
//! Both sides await (`recv_async` / `send_async`), exactly like the gateway's mesh inbox, so a
//! wake-up crosses threads through glommio's foreign-waker path.
//!
//! - `sequential`: one ping in flight, so the time per element is the round-trip latency.
//! - `pipelined_window_64`: up to 64 pings in flight (A stops sending at 64 outstanding so
//!   neither bounded mailbox can deadlock), so the time per element is the round-trip
//!   throughput cost.
//!
//! Criterion drives the measurement from the main thread with `iter_custom`: it asks A (a
//! task on its executor) for N round trips, A times them with `Instant` and reports the
//! elapsed time back. Executors are built like `livechat_shard_router::launch` builds them
//! (64 KiB io memory, 5 ms preempt timer) but `Placement::Unbound`: the bench's main thread
//! shares the machine's 2 cores, so pinning would only add contention.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_main, Criterion, Throughput};
use glommio::{LocalExecutorBuilder, Placement};
use livechat_benches::{MEASUREMENT, SAMPLES, WARM_UP};
use livechat_shard_router::{Counters, Mesh, MeshPort};

/// What the two executors exchange.
enum Msg {
    Ping(u64),
    Pong(u64),
    Stop,
}

/// A request from the main thread to executor A.
#[derive(Clone, Copy)]
enum Run {
    /// `n` round trips with at most `window` pings in flight.
    RoundTrips {
        n: u64,
        window: u64,
    },
    Stop,
}

/// Mailbox capacity (`GatewayConfig::mailbox_capacity` defaults to 4,096; a window of 64
/// never fills either, so the bench measures channel hand-off, not backpressure).
const CAPACITY: usize = 1024;

async fn pinger(port: MeshPort<Msg>, runs: flume::Receiver<Run>, done: flume::Sender<Duration>) {
    let peer = port.executor(1).expect("two executors");
    while let Ok(run) = runs.recv_async().await {
        let Run::RoundTrips { n, window } = run else {
            break;
        };
        let start = Instant::now();
        let (mut sent, mut got) = (0u64, 0u64);
        while got < n {
            while sent < n && sent - got < window {
                port.send(peer, Msg::Ping(sent)).await.expect("peer alive");
                sent += 1;
            }
            match port.inbox().recv_async().await {
                Ok(Msg::Pong(i)) => {
                    assert_eq!(i, got, "pongs arrive in order");
                    got += 1;
                }
                _ => panic!("expected a pong"),
            }
        }
        let elapsed = start.elapsed();
        done.send_async(elapsed).await.expect("main thread waits");
    }
    let _ = port.send(peer, Msg::Stop).await;
}

async fn ponger(port: MeshPort<Msg>) {
    let peer = port.executor(0).expect("two executors");
    while let Ok(msg) = port.inbox().recv_async().await {
        match msg {
            Msg::Ping(i) => port.send(peer, Msg::Pong(i)).await.expect("peer alive"),
            Msg::Stop => break,
            Msg::Pong(_) => panic!("ponger got a pong"),
        }
    }
}

fn round_trip(c: &mut Criterion) {
    let mut ports = Mesh::build::<Msg>(2, CAPACITY, Arc::new(Counters::default())).into_iter();
    let (port_a, port_b) = (ports.next().expect("port 0"), ports.next().expect("port 1"));
    let (run_tx, run_rx) = flume::bounded::<Run>(1);
    let (done_tx, done_rx) = flume::bounded::<Duration>(1);

    let b_handle = LocalExecutorBuilder::new(Placement::Unbound)
        .name("mesh-b")
        .io_memory(64 << 10)
        .preempt_timer(Duration::from_millis(5))
        .spawn(move || ponger(port_b))
        .expect("executor B");
    let a_handle = LocalExecutorBuilder::new(Placement::Unbound)
        .name("mesh-a")
        .io_memory(64 << 10)
        .preempt_timer(Duration::from_millis(5))
        .spawn(move || pinger(port_a, run_rx, done_tx))
        .expect("executor A");

    let mut g = c.benchmark_group("mesh/round_trip");
    g.throughput(Throughput::Elements(1));
    for (name, window) in [("sequential", 1u64), ("pipelined_window_64", 64)] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                run_tx
                    .send(Run::RoundTrips { n: iters, window })
                    .expect("executor A alive");
                done_rx.recv().expect("executor A alive")
            });
        });
    }
    g.finish();

    run_tx.send(Run::Stop).expect("executor A alive");
    a_handle.join().expect("executor A exits cleanly");
    b_handle.join().expect("executor B exits cleanly");
}

/// This file's benchmarks with the suite's time budget (what `criterion_group!` would
/// generate, minus its undocumented `pub fn`).
fn benches() {
    let mut c = Criterion::default()
        .warm_up_time(WARM_UP)
        .measurement_time(MEASUREMENT)
        .sample_size(SAMPLES)
        .configure_from_args();
    round_trip(&mut c);
}
criterion_main!(benches);
