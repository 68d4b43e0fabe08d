//! Values computed at scrape time, in the shapes `prometheus-client` encodes: a family of
//! gauges or counters by one label, and a family of histograms. (The crate's own metric types
//! are live cells to update; ours are built fresh from the summed snapshots on every scrape.)
//!
//! Lives on: the executor running the scrape (built and encoded there, then dropped).

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};

use super::Histogram;

/// One label: `(name, value)`.
pub type Label = [(&'static str, String); 1];

/// Counters or gauges, one per label value (an empty label set encodes a plain sample).
#[derive(Debug)]
pub struct ConstFamily {
    kind: MetricType,
    samples: Vec<(Vec<(&'static str, String)>, f64)>,
}

impl ConstFamily {
    /// An empty family of gauges.
    pub fn gauges() -> Self {
        Self {
            kind: MetricType::Gauge,
            samples: Vec::new(),
        }
    }

    /// An empty family of counters.
    pub fn counters() -> Self {
        Self {
            kind: MetricType::Counter,
            samples: Vec::new(),
        }
    }

    /// Adds the sample `label = value` (`label` `None`: no labels).
    pub fn with(mut self, label: Option<(&'static str, &str)>, value: f64) -> Self {
        let labels = label.map(|(k, v)| (k, v.to_owned())).into_iter().collect();
        self.samples.push((labels, value));
        self
    }
}

impl EncodeMetric for ConstFamily {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        for (labels, v) in &self.samples {
            let mut e = encoder.encode_family(labels)?;
            // Whole numbers print as integers (`livechat_mesh_full_total 3`, as before).
            let whole = (v.fract() == 0.0 && (0.0..9.0e15).contains(v)).then_some(*v as u64);
            match (self.kind, whole) {
                (MetricType::Counter, Some(n)) => {
                    e.encode_counter::<NoLabelSet, _, u64>(&n, None)?
                }
                (MetricType::Counter, None) => e.encode_counter::<NoLabelSet, _, f64>(v, None)?,
                (_, Some(n)) => e.encode_gauge(&n)?,
                (_, None) => e.encode_gauge(v)?,
            }
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        self.kind
    }
}

/// Histograms, one per label value.
#[derive(Debug, Default)]
pub struct ConstHistograms {
    samples: Vec<(Label, Histogram)>,
}

impl ConstHistograms {
    /// Adds the histogram of `name = value`.
    pub fn with(mut self, name: &'static str, value: &str, h: Histogram) -> Self {
        self.samples.push(([(name, value.to_owned())], h));
        self
    }
}

impl TypedMetric for ConstHistograms {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for ConstHistograms {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        for (labels, h) in &self.samples {
            encoder
                .encode_family(labels)?
                .encode_histogram::<NoLabelSet>(h.sum_seconds(), h.count(), &h.buckets(), None)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}
