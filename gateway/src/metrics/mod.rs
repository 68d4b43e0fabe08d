//! Metrics kept per executor and summed at scrape (`GET /metrics`, see `docs/metrics.md`).
//!
//! Hot paths bump plain `Cell`s in their executor's [`ExecutorMetrics`] (inside its `Node`) or
//! in executor-local structs that already exist (a Redis connection's round-trip histogram);
//! no atomics, no allocation per message. A scrape ([`gather`]) asks every executor for an
//! [`ExecutorSnapshot`] over the mesh and adds them up; node-wide atomics that existed before
//! (drop counters, the IO pool's database and event statistics) are read directly.
//!
//! - [`histogram`]: fixed-bucket latency histograms (`Cell`s, atomics, and their sum).
//! - [`executor_metrics`]: one executor's counters.
//! - [`snapshot`]: what one executor reports, and how reports add up.
//! - [`gather`]: the scrape across executors, bounded by a deadline.
//! - [`family`]: pre-computed values in the shapes `prometheus-client` encodes.

pub mod executor_metrics;
pub mod family;
pub mod gather;
pub mod histogram;
pub mod snapshot;

pub use executor_metrics::{AcceptOutcome, ExecutorMetrics};
pub use gather::{gather, Collect, Gathered, Tally};
pub use histogram::{Histogram, LocalHistogram, SharedHistogram};
pub use snapshot::ExecutorSnapshot;
