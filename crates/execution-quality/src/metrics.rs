//! The Prometheus series of the service. Histograms take one observation per fill or order
//! completion, labelled by symbol and order class only (no order ids: label cardinality stays
//! bounded). Gauges come from the engine's running aggregates, which cost what is live (cells,
//! working orders, grouping keys), never a pass over history.

use std::sync::atomic::AtomicU64;

use execq::{ExecQuality, Metric, Observation};
use telemetry::Metrics;
use telemetry::prometheus_client::metrics::family::Family;
use telemetry::prometheus_client::metrics::gauge::Gauge;
use telemetry::prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

type Labels = Vec<(&'static str, String)>;

/// The series; clones share them. Register once per process ([`QualityMetrics::register`]).
#[derive(Clone)]
pub struct QualityMetrics {
    slippage_bps: Family<Labels, Histogram, fn() -> Histogram>,
    time_to_fill_seconds: Family<Labels, Histogram, fn() -> Histogram>,
    effective_spread_bps: Family<Labels, Histogram, fn() -> Histogram>,
    fill_rate_by_symbol: Family<Labels, Gauge<f64, AtomicU64>>,
    fill_rate_by_class: Family<Labels, Gauge<f64, AtomicU64>>,
    orders_held: Gauge,
    orders_settling: Gauge,
}

fn bps_histogram() -> Histogram {
    // -50 .. +50 bps in 5-bps steps: costs and improvements both land in range.
    Histogram::new((-10..=10).map(|i| f64::from(i) * 5.0))
}

/// 1 ms .. about 9 minutes, doubling (the same bounds as when the series was in ms).
fn seconds_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 20))
}

impl QualityMetrics {
    pub fn register(metrics: &Metrics) -> QualityMetrics {
        let m = QualityMetrics {
            slippage_bps: Family::new_with_constructor(bps_histogram),
            time_to_fill_seconds: Family::new_with_constructor(seconds_histogram),
            effective_spread_bps: Family::new_with_constructor(bps_histogram),
            fill_rate_by_symbol: Family::default(),
            fill_rate_by_class: Family::default(),
            orders_held: Gauge::default(),
            orders_settling: Gauge::default(),
        };
        metrics.register(
            "execq_arrival_slippage_bps",
            "Arrival-price slippage per completed order, bps (positive = cost), by symbol and order class",
            m.slippage_bps.clone(),
        );
        // In seconds, Prometheus' base unit (promtool refuses `_ms`); execq itself counts ms.
        metrics.register(
            "execq_time_to_first_fill_seconds",
            "Receipt to first fill per order, seconds, by symbol and order class",
            m.time_to_fill_seconds.clone(),
        );
        metrics.register(
            "execq_effective_spread_bps",
            "Effective spread per fill, bps of the receipt mid, by symbol and order class",
            m.effective_spread_bps.clone(),
        );
        metrics.register(
            "execq_fill_rate_by_symbol",
            "Shares executed / shares ordered, by symbol",
            m.fill_rate_by_symbol.clone(),
        );
        metrics.register(
            "execq_fill_rate_by_order_class",
            "Shares executed / shares ordered, by order class",
            m.fill_rate_by_class.clone(),
        );
        metrics.register(
            "execq_orders_held",
            "Orders the execution-quality engine holds in full (working, or ended within the late-fill grace)",
            m.orders_held.clone(),
        );
        metrics.register(
            "execq_orders_settling",
            "Ended orders whose row is stored while realized-spread lookups wait (a compact record each)",
            m.orders_settling.clone(),
        );
        m
    }

    pub fn observe(&self, o: &Observation) {
        let labels = vec![
            ("symbol", o.symbol.clone()),
            ("order_class", o.order_class.as_str().to_string()),
        ];
        match o.metric {
            Metric::ArrivalCostBps => self.slippage_bps.get_or_create(&labels).observe(o.value),
            Metric::TimeToFirstFillMs => self
                .time_to_fill_seconds
                .get_or_create(&labels)
                .observe(o.value / 1000.0),
            Metric::EffectiveSpreadBps => self
                .effective_spread_bps
                .get_or_create(&labels)
                .observe(o.value),
            _ => {}
        }
    }

    /// Fill-rate gauges from the running aggregates (every order seen, finalized or held).
    pub fn refresh_gauges(&self, engine: &ExecQuality) {
        let aggregates = engine.aggregates();
        let rate = |s: &execq::Stats| s.fill_rate.and_then(|d| d.to_string().parse::<f64>().ok());
        for (symbol, stats) in &aggregates.by_symbol {
            if let Some(r) = rate(stats) {
                self.fill_rate_by_symbol
                    .get_or_create(&vec![("symbol", symbol.clone())])
                    .set(r);
            }
        }
        for (class, stats) in &aggregates.by_order_class {
            if let Some(r) = rate(stats) {
                self.fill_rate_by_class
                    .get_or_create(&vec![("order_class", class.clone())])
                    .set(r);
            }
        }
        self.set_held(engine);
    }

    pub fn set_held(&self, engine: &ExecQuality) {
        self.orders_held
            .set(i64::try_from(engine.held_orders()).unwrap_or(i64::MAX));
        self.orders_settling
            .set(i64::try_from(engine.settling_orders()).unwrap_or(i64::MAX));
    }
}
