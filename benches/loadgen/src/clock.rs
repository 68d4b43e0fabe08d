//! The shared monotonic clock: nanoseconds since the loadgen started.
//!
//! Senders put `now_ns()` in each payload; receivers (in the same process) subtract it from
//! their own `now_ns()`, so latencies never depend on wall-clock adjustments.

use std::sync::OnceLock;
use std::time::Instant;

static START: OnceLock<Instant> = OnceLock::new();

/// The process-wide start instant (fixed by the first call).
pub fn start() -> Instant {
    *START.get_or_init(Instant::now)
}

/// Monotonic nanoseconds since [`start`].
pub fn now_ns() -> u64 {
    u64::try_from(start().elapsed().as_nanos()).unwrap_or(u64::MAX)
}
