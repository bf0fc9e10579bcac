//! A Prometheus histogram that records with atomics only, for hot paths (the order path observes
//! once per order). `prometheus_client`'s own histogram takes a mutex on every observation.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};

/// Fixed upper bounds (seconds) of the order path's latency histograms. 1.5 ms, 10 ms and 50 ms
/// are bounds so the plan's SLAs (risk P50 <= 1.5 ms, OMS P50 <= 10 ms and P99 <= 50 ms) are
/// decided exactly from the buckets, not interpolated.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.000_001,
    0.000_002_5,
    0.000_005,
    0.000_01,
    0.000_025,
    0.000_05,
    0.000_1,
    0.000_25,
    0.000_5,
    0.001,
    0.001_5,
    0.002_5,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
];

/// Upper bounds (seconds) for HTTP request durations.
pub const HTTP_BUCKETS: &[f64] = &[
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
];

/// A histogram over fixed bucket bounds. Cheap to clone; clones share the counts.
#[derive(Clone, Debug)]
pub struct AtomicHistogram {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    bounds: &'static [f64],
    /// One count per bound plus the +Inf bucket (not cumulative).
    counts: Box<[AtomicU64]>,
    /// The sum of observations as `f64` bits.
    sum: AtomicU64,
}

impl AtomicHistogram {
    /// `bounds` must be increasing (they are constants of this crate or the caller's).
    pub fn new(bounds: &'static [f64]) -> AtomicHistogram {
        debug_assert!(bounds.windows(2).all(|w| w[0] < w[1]), "{bounds:?}");
        AtomicHistogram {
            inner: Arc::new(Inner {
                bounds,
                counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
                sum: AtomicU64::new(0f64.to_bits()),
            }),
        }
    }

    /// The order path's latency buckets ([`LATENCY_BUCKETS`]).
    pub fn latency() -> AtomicHistogram {
        AtomicHistogram::new(LATENCY_BUCKETS)
    }

    /// The HTTP request buckets ([`HTTP_BUCKETS`]).
    pub fn http() -> AtomicHistogram {
        AtomicHistogram::new(HTTP_BUCKETS)
    }

    /// Records `v` (a NaN is ignored): two atomic adds and a compare-and-swap on the sum.
    pub fn observe(&self, v: f64) {
        if v.is_nan() {
            return;
        }
        let i = self.inner.bounds.partition_point(|&b| b < v);
        self.inner.counts[i].fetch_add(1, Ordering::Relaxed);
        let _ = self
            .inner
            .sum
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + v).to_bits())
            });
    }

    /// `(sum, count, per-bucket counts with their upper bound)`; the count is the sum of the
    /// buckets read, so `+Inf` always equals `_count` even while others observe.
    pub fn snapshot(&self) -> (f64, u64, Vec<(f64, u64)>) {
        let mut buckets = Vec::with_capacity(self.inner.counts.len());
        let mut count = 0u64;
        for (i, c) in self.inner.counts.iter().enumerate() {
            let n = c.load(Ordering::Relaxed);
            count += n;
            let bound = self.inner.bounds.get(i).copied().unwrap_or(f64::INFINITY);
            buckets.push((bound, n));
        }
        let sum = f64::from_bits(self.inner.sum.load(Ordering::Relaxed));
        (sum, count, buckets)
    }
}

impl TypedMetric for AtomicHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for AtomicHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let (sum, count, buckets) = self.snapshot();
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

/// A counter whose value is read from elsewhere at scrape time (the process CPU time), so it
/// is set rather than incremented. Cheap to clone; clones share the value.
#[derive(Clone, Debug, Default)]
pub struct SampledCounter {
    bits: Arc<AtomicU64>,
}

impl SampledCounter {
    pub fn set(&self, v: f64) {
        self.bits.store(v.to_bits(), Ordering::Relaxed);
    }

    pub fn get(&self) -> f64 {
        f64::from_bits(self.bits.load(Ordering::Relaxed))
    }
}

impl TypedMetric for SampledCounter {
    const TYPE: MetricType = MetricType::Counter;
}

impl EncodeMetric for SampledCounter {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        encoder.encode_counter::<NoLabelSet, f64, f64>(&self.get(), None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_whose_bound_is_not_below_them() {
        static BOUNDS: &[f64] = &[0.001, 0.01, 0.1];
        let h = AtomicHistogram::new(BOUNDS);
        // Prometheus buckets are `le` (less than or equal): 0.01 belongs to the 0.01 bucket.
        for v in [0.0005, 0.001, 0.005, 0.01, 0.05, 3.0, f64::NAN] {
            h.observe(v);
        }
        let (sum, count, buckets) = h.snapshot();
        assert_eq!(count, 6);
        assert!((sum - 3.0665).abs() < 1e-12, "{sum}");
        assert_eq!(
            buckets,
            vec![(0.001, 2), (0.01, 2), (0.1, 1), (f64::INFINITY, 1)]
        );
    }

    #[test]
    fn clones_share_the_counts() {
        let h = AtomicHistogram::latency();
        let c = h.clone();
        c.observe(0.0015);
        let (_, count, buckets) = h.snapshot();
        assert_eq!(count, 1);
        assert_eq!(buckets.iter().find(|(_, n)| *n == 1).unwrap().0, 0.0015);
    }
}
