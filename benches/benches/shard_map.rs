//! `livechat_shard_router::ShardMap`: conversation id → owner executor.
//!
//! `owner` runs for every chat command and REST request (to route it to the conversation's
//! owner executor), so it must stay a hash plus one table read. Measured over 1,024 distinct
//! UUID-shaped ids (the gateway's conversation id format) so the shard table is read at
//! spread-out positions; throughput is lookups. `ShardMap::new(n)` (65,536 virtual shards
//! rendezvous-hashed onto `n` executors) runs once per process start and is measured
//! separately for 2 executors (this machine) and 64.

use std::hint::black_box;

use criterion::{criterion_main, BenchmarkId, Criterion, Throughput};
use livechat_benches::{uuid_like_ids, MEASUREMENT, SAMPLES, WARM_UP};
use livechat_shard_router::ShardMap;

fn owner(c: &mut Criterion) {
    let ids = uuid_like_ids(1024);
    let mut g = c.benchmark_group("shard_map/owner");
    g.throughput(Throughput::Elements(ids.len() as u64));
    for executors in [2usize, 16] {
        let map = ShardMap::new(executors);
        g.bench_with_input(
            BenchmarkId::new("1024_ids_executors", executors),
            &ids,
            |b, ids| {
                b.iter(|| {
                    for id in ids {
                        black_box(map.owner(black_box(id)));
                    }
                });
            },
        );
    }
    g.finish();
}

fn new(c: &mut Criterion) {
    let mut g = c.benchmark_group("shard_map/new");
    g.sample_size(10);
    for executors in [2usize, 64] {
        g.bench_with_input(
            BenchmarkId::new("executors", executors),
            &executors,
            |b, &n| b.iter(|| ShardMap::new(black_box(n))),
        );
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
    owner(&mut c);
    new(&mut c);
}
criterion_main!(benches);
