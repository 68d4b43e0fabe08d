//! Latency histograms (HDR, microsecond resolution, 1 µs .. 10 min, 3 significant digits) and
//! their one-line summary.

use hdrhistogram::Histogram;
use serde::Serialize;

/// One latency distribution.
#[derive(Debug, Clone)]
pub struct Latency {
    h: Histogram<u64>,
}

/// Percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Summary {
    /// Samples recorded.
    pub count: u64,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Largest sample.
    pub max_ms: f64,
}

impl Default for Latency {
    fn default() -> Self {
        Self::new()
    }
}

impl Latency {
    /// An empty histogram.
    pub fn new() -> Self {
        let h = Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds");
        Self { h }
    }

    /// Records a latency given in nanoseconds (clamped into the histogram's range).
    pub fn record_ns(&mut self, ns: u64) {
        let us = (ns / 1_000).clamp(1, 600_000_000);
        self.h.saturating_record(us);
    }

    /// Percentiles in milliseconds.
    pub fn summary(&self) -> Summary {
        if self.h.is_empty() {
            return Summary::default();
        }
        let ms = |us: u64| us as f64 / 1_000.0;
        Summary {
            count: self.h.len(),
            p50_ms: ms(self.h.value_at_quantile(0.50)),
            p99_ms: ms(self.h.value_at_quantile(0.99)),
            p999_ms: ms(self.h.value_at_quantile(0.999)),
            max_ms: ms(self.h.max()),
        }
    }
}

impl Summary {
    /// `p50 1.23 / p99 4.56 / p999 7.89 / max 10.1 ms (n)`.
    pub fn line(&self) -> String {
        format!(
            "p50 {:.2} / p99 {:.2} / p999 {:.2} / max {:.2} ms (n={})",
            self.p50_ms, self.p99_ms, self.p999_ms, self.max_ms, self.count
        )
    }
}
