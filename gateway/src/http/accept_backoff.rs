//! What the accept loop does when `accept` fails (EMFILE / ENFILE when descriptors run out,
//! ENOBUFS / ENOMEM under memory pressure): wait, exponentially longer while it keeps failing
//! (capped, so the loop notices freed descriptors quickly), and log at a bounded rate — one line
//! per window with the number of failures — instead of a line per attempt.
//!
//! Sans-IO: the caller passes the time and does the sleeping and the logging.

use std::time::{Duration, Instant};

/// First wait after a failure.
pub const FIRST: Duration = Duration::from_millis(5);
/// Longest wait: how late at most the loop notices descriptors were freed.
pub const MAX: Duration = Duration::from_millis(200);
/// At most one log line per window.
pub const LOG_WINDOW: Duration = Duration::from_secs(10);

/// Back-off state of one accept loop.
#[derive(Debug, Default)]
pub struct AcceptBackoff {
    next: Option<Duration>,
    unlogged: u64,
    logged_at: Option<Instant>,
}

/// What to do after a failed `accept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AfterFailure {
    /// How long to wait before accepting again.
    pub wait: Duration,
    /// `Some(n)`: log one line now, covering `n` failures.
    pub log: Option<u64>,
}

impl AcceptBackoff {
    /// Records a failure at `now`.
    pub fn failed(&mut self, now: Instant) -> AfterFailure {
        let wait = self.next.unwrap_or(FIRST);
        self.next = Some((wait * 2).min(MAX));
        self.unlogged += 1;
        let due = self
            .logged_at
            .is_none_or(|t| now.saturating_duration_since(t) >= LOG_WINDOW);
        let log = due.then(|| {
            self.logged_at = Some(now);
            std::mem::take(&mut self.unlogged)
        });
        AfterFailure { wait, log }
    }

    /// Records a successful `accept`: the next failure waits the shortest time again (the log
    /// window stays, so a flapping loop still logs once per window).
    pub fn succeeded(&mut self) {
        self.next = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_capped_and_reset() {
        let mut b = AcceptBackoff::default();
        let t = Instant::now();
        let waits: Vec<_> = (0..8).map(|_| b.failed(t).wait.as_millis()).collect();
        assert_eq!(waits, [5, 10, 20, 40, 80, 160, 200, 200]);
        b.succeeded();
        assert_eq!(b.failed(t).wait, FIRST);
    }

    #[test]
    fn one_log_line_per_window_with_the_count() {
        let mut b = AcceptBackoff::default();
        let t0 = Instant::now();
        assert_eq!(b.failed(t0).log, Some(1));
        for _ in 0..99 {
            assert_eq!(b.failed(t0 + Duration::from_secs(1)).log, None);
        }
        b.succeeded();
        assert_eq!(b.failed(t0 + Duration::from_secs(9)).log, None);
        assert_eq!(b.failed(t0 + LOG_WINDOW).log, Some(101));
        assert_eq!(b.failed(t0 + LOG_WINDOW).log, None);
    }
}
