//! The embedded message store of one conversation
//! (`livechat_gateway::chat::store::embedded::cell::ConversationCell`).
//!
//! `append` runs for every chat message on the conversation's owner executor, holding the
//! conversation's turn, so its cost bounds one conversation's message rate. The buffer
//! keeps 1,000 messages and is full before measuring, so every append also evicts the oldest
//! (and forgets its `clientMessageId`). Cases: drafts without `clientMessageId`, with a fresh
//! one (index insert + remove), and a retried one (dedupe hit: returns the stored message).
//! `page` is what a reconnecting client's resume (`lastSeq`) and the REST history read: 50
//! messages, latest or after a seq. The draft and id are built outside the timed region
//! (`iter_batched`); the time includes moving the draft in and dropping the returned clone.

use std::cell::Cell;
use std::hint::black_box;

use criterion::{criterion_main, BatchSize, Criterion, Throughput};
use livechat_benches::{sample_draft, sample_sender, MEASUREMENT, SAMPLES, WARM_UP};
use livechat_core::{Metadata, Timestamp};
use livechat_gateway::chat::store::embedded::cell::{Appended, ConversationCell};

const BUFFER: usize = 1000;
const PAGE: usize = 50;

fn full_cell(with_keys: bool) -> ConversationCell {
    let meta = livechat_core::start(
        "5d2e8f1a-3b4c-4d5e-8f6a-7b8c9d0e1f2a".into(),
        sample_sender(),
        Metadata::new(),
        Timestamp(1_750_000_000_000),
    )
    .conversation;
    let cell = ConversationCell::new(meta, BUFFER);
    for i in 0..BUFFER {
        let key = with_keys.then(|| format!("prefill-{i}"));
        cell.append(sample_draft(key).into_message(format!("m-{i}"), "c", 0, Timestamp(0)));
    }
    cell
}

fn append(c: &mut Criterion) {
    let mut g = c.benchmark_group("store/append");
    g.throughput(Throughput::Elements(1));
    let now = Timestamp(1_750_000_000_000);
    let n = Cell::new(0u64);
    let next = || {
        n.set(n.get() + 1);
        n.get()
    };

    let cell = full_cell(false);
    g.bench_function("buffer_1000_no_client_id", |b| {
        b.iter_batched(
            || (sample_draft(None), format!("msg-{}", next())),
            |(draft, id)| cell.append(draft.into_message(id, "c", 0, now)),
            BatchSize::SmallInput,
        );
    });

    let cell = full_cell(true);
    g.bench_function("buffer_1000_new_client_id", |b| {
        b.iter_batched(
            || {
                let i = next();
                (sample_draft(Some(format!("cm-{i}"))), format!("msg-{i}"))
            },
            |(draft, id)| {
                let r = cell.append(draft.into_message(id, "c", 0, now));
                debug_assert!(matches!(r, Appended::New(_)));
                r
            },
            BatchSize::SmallInput,
        );
    });
    assert_eq!(cell.page(Some(0), usize::MAX).messages.len(), BUFFER);

    let cell = full_cell(true);
    let seq_before = cell.next_seq();
    g.bench_function("buffer_1000_duplicate_client_id", |b| {
        b.iter_batched(
            || (sample_draft(Some("prefill-500".into())), "retry".to_owned()),
            |(draft, id)| cell.append(draft.into_message(id, "c", 0, now)),
            BatchSize::SmallInput,
        );
    });
    assert_eq!(cell.next_seq(), seq_before, "duplicates must not append");
    g.finish();
}

fn page(c: &mut Criterion) {
    let cell = full_cell(false);
    let mut g = c.benchmark_group("store/page");
    g.throughput(Throughput::Elements(PAGE as u64));
    g.bench_function("latest_50_of_1000", |b| {
        b.iter(|| cell.page(black_box(None), PAGE));
    });
    let after = cell.next_seq() - 1 - 200;
    assert_eq!(cell.page(Some(after), PAGE).messages.len(), PAGE);
    g.bench_function("after_seq_50_of_1000", |b| {
        b.iter(|| cell.page(black_box(Some(after)), PAGE));
    });
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
    append(&mut c);
    page(&mut c);
}
criterion_main!(benches);
