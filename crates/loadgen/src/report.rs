//! Counting answers while running, and the final report (human table and JSON).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::client::Exchange;
use crate::{BenchOptions, Mode};

/// Histograms hold nanoseconds up to an hour at 3 significant digits (0.1% resolution).
const HIST_MAX_NS: u64 = 3_600_000_000_000;
/// Keep a few distinct transport-error messages so a failed run says why.
pub(crate) const MAX_ERROR_SAMPLES: usize = 5;

pub(crate) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIST_MAX_NS, 3).expect("constant histogram bounds are valid")
}

pub(crate) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// One task's counts; merged at the end so the hot path shares nothing between connections.
pub(crate) struct TaskStats {
    sent: u64,
    acked: u64,
    rejected: HashMap<String, u64>,
    client_errors: u64,
    server_errors: u64,
    other_status: u64,
    transport_errors: u64,
    error_samples: Vec<String>,
    latency: Histogram<u64>,
    service: Histogram<u64>,
    lag: Histogram<u64>,
    late: u64,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorCode,
}

#[derive(Deserialize)]
struct ErrorCode {
    code: String,
}

impl TaskStats {
    pub fn new() -> Self {
        TaskStats {
            sent: 0,
            acked: 0,
            rejected: HashMap::new(),
            client_errors: 0,
            server_errors: 0,
            other_status: 0,
            transport_errors: 0,
            error_samples: Vec::new(),
            latency: histogram(),
            service: histogram(),
            lag: histogram(),
            late: 0,
        }
    }

    /// Count one request. Latencies are recorded for answered requests only: a transport error's
    /// "latency" is a timeout or a connect failure, not a figure of the server.
    pub fn record(&mut self, answer: Exchange, latency: Duration, service: Duration) {
        self.sent += 1;
        match answer {
            Exchange::Answer { status, body } => {
                self.latency.saturating_record(nanos(latency));
                self.service.saturating_record(nanos(service));
                if status.is_success() {
                    self.acked += 1;
                } else if status.as_u16() == 422 {
                    match serde_json::from_slice::<ErrorBody>(&body) {
                        Ok(b) => *self.rejected.entry(b.error.code).or_insert(0) += 1,
                        Err(_) => self.client_errors += 1,
                    }
                } else if status.is_client_error() {
                    self.client_errors += 1;
                } else if status.is_server_error() {
                    self.server_errors += 1;
                    self.sample(format!(
                        "{status}: {}",
                        String::from_utf8_lossy(&body[..body.len().min(200)])
                    ));
                } else {
                    self.other_status += 1;
                }
            }
            Exchange::ConnectFailed(e) | Exchange::Failed(e) => {
                self.transport_errors += 1;
                self.sample(e);
            }
        }
    }

    /// Open loop only: how late the order left compared with its schedule.
    pub fn record_lag(&mut self, lag: Duration, late: bool) {
        self.lag.saturating_record(nanos(lag));
        if late {
            self.late += 1;
        }
    }

    fn sample(&mut self, msg: String) {
        if self.error_samples.len() < MAX_ERROR_SAMPLES && !self.error_samples.contains(&msg) {
            self.error_samples.push(msg);
        }
    }

    pub fn merge(&mut self, other: TaskStats) {
        self.sent += other.sent;
        self.acked += other.acked;
        for (code, n) in other.rejected {
            *self.rejected.entry(code).or_insert(0) += n;
        }
        self.client_errors += other.client_errors;
        self.server_errors += other.server_errors;
        self.other_status += other.other_status;
        self.transport_errors += other.transport_errors;
        for s in other.error_samples {
            self.sample(s);
        }
        // Same bounds on both sides, so adding cannot go out of range.
        let _ = self.latency.add(&other.latency);
        let _ = self.service.add(&other.service);
        let _ = self.lag.add(&other.lag);
        self.late += other.late;
    }
}

/// Latency summary in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub count: u64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Percentiles {
    pub(crate) fn of(h: &Histogram<u64>) -> Percentiles {
        let us = |ns: u64| ns as f64 / 1000.0;
        if h.is_empty() {
            return Percentiles {
                count: 0,
                mean: 0.0,
                p50: 0.0,
                p90: 0.0,
                p99: 0.0,
                p999: 0.0,
                max: 0.0,
            };
        }
        Percentiles {
            count: h.len(),
            mean: h.mean() / 1000.0,
            p50: us(h.value_at_quantile(0.50)),
            p90: us(h.value_at_quantile(0.90)),
            p99: us(h.value_at_quantile(0.99)),
            p999: us(h.value_at_quantile(0.999)),
            max: us(h.max()),
        }
    }
}

/// The outcome of one run. `failed` is set by any transport error or 5xx answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchReport {
    pub url: String,
    /// `open-loop` or `closed-loop`.
    pub mode: String,
    /// Open loop: the offered rate and how many orders that schedules over the duration.
    pub target_rate: Option<u64>,
    pub scheduled: Option<u64>,
    pub duration_s: f64,
    /// Wall time from the first send until the last answer.
    pub elapsed_s: f64,
    pub connections: usize,
    pub accounts: usize,
    pub order: String,
    pub sent: u64,
    /// 2xx answers.
    pub acked: u64,
    /// 422 answers with an error code, in total and by code.
    pub rejected: u64,
    pub rejected_by_code: BTreeMap<String, u64>,
    /// Other 4xx answers (and 422 without a parsable code).
    pub client_errors: u64,
    pub server_errors: u64,
    /// 1xx/3xx answers.
    pub other_status: u64,
    pub transport_errors: u64,
    /// `sent / elapsed_s`.
    pub achieved_rate: f64,
    /// Open loop: from the scheduled send time to the answer (coordinated-omission corrected).
    /// Closed loop: the same as `service_us`.
    pub latency_us: Percentiles,
    /// From the actual send to the answer.
    pub service_us: Percentiles,
    /// Open loop: how late orders left against their schedule.
    pub send_lag_us: Option<Percentiles>,
    /// Open loop: orders sent more than 1 ms after their scheduled time.
    pub late_sends: u64,
    /// Open loop: more than 1% of orders left late, or fewer left than were scheduled.
    pub fell_behind: bool,
    pub error_samples: Vec<String>,
    pub failed: bool,
}

impl BenchReport {
    pub(crate) fn build(opts: &BenchOptions, stats: TaskStats, elapsed: Duration) -> BenchReport {
        let elapsed_s = elapsed.as_secs_f64();
        let (mode, target_rate, scheduled) = match opts.mode {
            Mode::Open { rate } => (
                "open-loop",
                Some(rate),
                Some(crate::scheduled_orders(rate, opts.duration)),
            ),
            Mode::Closed => ("closed-loop", None, None),
        };
        let open = target_rate.is_some();
        let fell_behind = open
            && (stats.late.saturating_mul(100) > stats.sent
                || scheduled.is_some_and(|n| stats.sent < n));
        let rejected_by_code: BTreeMap<String, u64> = stats.rejected.into_iter().collect();
        BenchReport {
            url: opts.url.clone(),
            mode: mode.to_string(),
            target_rate,
            scheduled,
            duration_s: opts.duration.as_secs_f64(),
            elapsed_s,
            connections: opts.connections,
            accounts: opts.accounts,
            order: opts.order.as_str().to_string(),
            sent: stats.sent,
            acked: stats.acked,
            rejected: rejected_by_code.values().sum(),
            rejected_by_code,
            client_errors: stats.client_errors,
            server_errors: stats.server_errors,
            other_status: stats.other_status,
            transport_errors: stats.transport_errors,
            achieved_rate: if elapsed_s > 0.0 {
                stats.sent as f64 / elapsed_s
            } else {
                0.0
            },
            latency_us: Percentiles::of(&stats.latency),
            service_us: Percentiles::of(&stats.service),
            send_lag_us: open.then(|| Percentiles::of(&stats.lag)),
            late_sends: stats.late,
            fell_behind,
            error_samples: stats.error_samples,
            failed: stats.transport_errors > 0 || stats.server_errors > 0,
        }
    }
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.target_rate {
            Some(rate) => write!(f, "open loop at {rate} orders/s")?,
            None => write!(f, "closed loop (max throughput)")?,
        }
        writeln!(
            f,
            " for {} s against {}: {} connections, {} accounts, {} orders",
            self.duration_s, self.url, self.connections, self.accounts, self.order
        )?;
        let codes: Vec<String> = self
            .rejected_by_code
            .iter()
            .map(|(c, n)| format!("{c}={n}"))
            .collect();
        let row = |f: &mut fmt::Formatter<'_>, name: &str, n: u64, note: &str| {
            writeln!(f, "  {name:<18}{n:>10}  {note}")
        };
        let scheduled = match self.scheduled {
            Some(n) => format!("of {n} scheduled"),
            None => String::new(),
        };
        row(f, "sent", self.sent, &scheduled)?;
        row(f, "acked (2xx)", self.acked, "")?;
        row(f, "rejected (422)", self.rejected, &codes.join(" "))?;
        row(f, "other 4xx", self.client_errors, "")?;
        row(f, "5xx", self.server_errors, "")?;
        if self.other_status > 0 {
            row(f, "other status", self.other_status, "")?;
        }
        row(f, "transport errors", self.transport_errors, "")?;
        writeln!(
            f,
            "  achieved rate     {:>10.0}  orders/s over {:.2} s",
            self.achieved_rate, self.elapsed_s
        )?;
        writeln!(
            f,
            "latency (µs)      {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "p50", "p90", "p99", "p99.9", "max", "mean"
        )?;
        let lat = |f: &mut fmt::Formatter<'_>, name: &str, p: &Percentiles| {
            writeln!(
                f,
                "  {name:<16}{:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
                p.p50, p.p90, p.p99, p.p999, p.max, p.mean
            )
        };
        if let Some(lag) = &self.send_lag_us {
            lat(f, "from schedule", &self.latency_us)?;
            lat(f, "service time", &self.service_us)?;
            lat(f, "send lag", lag)?;
        } else {
            lat(f, "service time", &self.service_us)?;
        }
        if self.fell_behind {
            writeln!(
                f,
                "WARNING: the loader fell behind its schedule: {} of {} orders left more than 1 ms late \
                 (all connections busy waiting on the server, or the loader short of CPU); \
                 try more --connections",
                self.late_sends, self.sent
            )?;
        }
        for e in &self.error_samples {
            writeln!(f, "  error: {e}")?;
        }
        if self.failed {
            write!(
                f,
                "result: FAILED ({} transport errors, {} 5xx)",
                self.transport_errors, self.server_errors
            )
        } else {
            write!(f, "result: ok")
        }
    }
}
