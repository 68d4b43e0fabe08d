//! The node's health as every executor sees it: whether it is draining (SIGTERM received, so
//! `/readyz` answers 503 and balancers take it out of rotation) and when each executor last
//! ran its heartbeat (an executor blocked in a long synchronous step, or wedged, stops beating,
//! and the node is not ready although the other executors still answer).
//!
//! Lives on: shared by every executor and the main thread (`Arc`, atomics only — it is read
//! by probes, never on a message's path).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often each executor beats.
pub const BEAT: Duration = Duration::from_millis(250);

/// An executor silent this long is reported as not running.
pub const SILENT: Duration = Duration::from_secs(2);

/// Node-wide health.
#[derive(Debug)]
pub struct NodeHealth {
    draining: AtomicBool,
    started: Instant,
    /// Per executor (by index): milliseconds since `started` of its last beat.
    beats: Box<[AtomicU64]>,
}

impl NodeHealth {
    /// Health of a node with `executors` executors, each counted as having just beaten.
    pub fn new(executors: usize) -> Arc<Self> {
        Arc::new(Self {
            draining: AtomicBool::new(false),
            started: Instant::now(),
            beats: (0..executors).map(|_| AtomicU64::new(0)).collect(),
        })
    }

    /// From now on the node reports itself not ready (idempotent).
    pub fn begin_drain(&self) {
        self.draining.store(true, Relaxed);
    }

    /// Whether the node is draining.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Relaxed)
    }

    /// Executor `index` is running (called every [`BEAT`] from a task on it).
    pub fn beat(&self, index: usize, now: Instant) {
        if let Some(b) = self.beats.get(index) {
            b.store(self.millis(now), Relaxed);
        }
    }

    /// The executors (index, silence) that have not beaten for [`SILENT`] or longer.
    pub fn silent(&self, now: Instant) -> Vec<(usize, Duration)> {
        let now = self.millis(now);
        self.beats
            .iter()
            .enumerate()
            .filter_map(|(i, b)| {
                let quiet = Duration::from_millis(now.saturating_sub(b.load(Relaxed)));
                (quiet >= SILENT).then_some((i, quiet))
            })
            .collect()
    }

    fn millis(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.started).as_millis()).unwrap_or(u64::MAX)
    }
}

/// Beats for the executor `index` until `owner` (its long-lived context) is dropped. Call once
/// per executor, from inside it.
pub fn start_beating<T: 'static>(health: Arc<NodeHealth>, index: usize, owner: std::rc::Weak<T>) {
    glommio::spawn_local(async move {
        while owner.strong_count() > 0 {
            health.beat(index, Instant::now());
            glommio::timer::sleep(BEAT).await;
        }
    })
    .detach();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_executor_that_stops_beating_is_reported_and_draining_is_sticky() {
        let h = NodeHealth::new(2);
        let t0 = h.started;
        assert!(h.silent(t0 + Duration::from_millis(500)).is_empty());
        h.beat(0, t0 + Duration::from_secs(3));
        let silent = h.silent(t0 + Duration::from_secs(3));
        assert_eq!(silent, vec![(1, Duration::from_secs(3))]);
        // An index the node does not have is ignored, not a panic.
        h.beat(7, t0);
        assert!(!h.is_draining());
        h.begin_drain();
        h.begin_drain();
        assert!(h.is_draining());
    }
}
