//! Counting the soak's answers per kind while running, and its report (human table and JSON).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::SoakOptions;
use super::memory::{BYTES_PER_MB, RSS_METRIC, RssSample, rss_slope_mb_per_min};
use super::mix::{MIX_CYCLE, SoakKind};
use crate::Mode;
use crate::client::Exchange;
use crate::report::{MAX_ERROR_SAMPLES, Percentiles, histogram, nanos};

/// Distinct outcome labels kept per kind; more than this many (a server answering with ever new
/// codes) are counted under `other` so a long soak's report stays small.
const MAX_OUTCOMES: usize = 32;
/// The read latency the soak is meant to show (p99 of `GET /orders|/fills?limit=100`).
pub const READ_P99_GOAL_US: f64 = 5_000.0;
/// The human table lists at most this many RSS samples (evenly spread, always the last).
const MAX_PRINTED_SAMPLES: usize = 24;

/// What the soak needs from an answer body: the order's id and status (2xx) or the error code.
#[derive(Deserialize)]
struct AnswerBody<'a> {
    #[serde(default)]
    order_id: Option<u64>,
    #[serde(default, borrow)]
    status: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    error: Option<ErrorCode<'a>>,
}

#[derive(Deserialize)]
struct ErrorCode<'a> {
    #[serde(borrow)]
    code: Cow<'a, str>,
}

/// A few distinct error messages, so a failed run says why.
#[derive(Default)]
pub(crate) struct ErrorSamples(Vec<String>);

impl ErrorSamples {
    pub fn add(&mut self, msg: String) {
        if self.0.len() < MAX_ERROR_SAMPLES && !self.0.contains(&msg) {
            self.0.push(msg);
        }
    }

    fn merge(&mut self, other: ErrorSamples) {
        for m in other.0 {
            self.add(m);
        }
    }
}

/// Counts of one kind of request (an order kind, or the reads).
pub(crate) struct KindStats {
    sent: u64,
    ok: u64,
    client_errors: u64,
    server_errors: u64,
    other_status: u64,
    transport_errors: u64,
    outcomes: BTreeMap<String, u64>,
    latency: Histogram<u64>,
    service: Histogram<u64>,
}

impl KindStats {
    fn new() -> Self {
        KindStats {
            sent: 0,
            ok: 0,
            client_errors: 0,
            server_errors: 0,
            other_status: 0,
            transport_errors: 0,
            outcomes: BTreeMap::new(),
            latency: histogram(),
            service: histogram(),
        }
    }

    fn count_outcome(&mut self, label: &str) {
        if let Some(n) = self.outcomes.get_mut(label) {
            *n += 1;
        } else if self.outcomes.len() < MAX_OUTCOMES {
            self.outcomes.insert(label.to_string(), 1);
        } else {
            *self.outcomes.entry("other".to_string()).or_insert(0) += 1;
        }
    }

    /// Count one answer. Returns the order id when the answer is a 2xx for an order that is
    /// still open (accepted, partially filled): a resting order the soak may cancel later.
    /// Latencies are recorded for answered requests only (a transport error's "latency" is a
    /// timeout, not a figure of the server).
    pub fn record(
        &mut self,
        answer: Exchange,
        latency: Duration,
        service: Duration,
        errors: &mut ErrorSamples,
    ) -> Option<u64> {
        self.sent += 1;
        let (status, body) = match answer {
            Exchange::Answer { status, body } => (status, body),
            Exchange::ConnectFailed(e) | Exchange::Failed(e) => {
                self.transport_errors += 1;
                self.count_outcome("transport error");
                errors.add(e);
                return None;
            }
        };
        self.latency.saturating_record(nanos(latency));
        self.service.saturating_record(nanos(service));
        let parsed = serde_json::from_slice::<AnswerBody>(&body).ok();
        let code = status.as_u16();
        let detail = parsed.as_ref().and_then(|b| {
            if status.is_success() {
                b.status.as_deref()
            } else {
                b.error.as_ref().map(|e| e.code.as_ref())
            }
        });
        // Reads answer a JSON array: the status code alone is their outcome.
        match detail {
            Some(d) => self.count_outcome(&format!("{code} {d}")),
            None => self.count_outcome(&code.to_string()),
        }
        if status.is_success() {
            self.ok += 1;
            let b = parsed?;
            let open = matches!(
                b.status.as_deref(),
                Some("accepted" | "partially_filled" | "pending_new")
            );
            return b.order_id.filter(|_| open);
        }
        if status.is_client_error() {
            self.client_errors += 1;
        } else if status.is_server_error() {
            self.server_errors += 1;
            errors.add(format!(
                "{status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            ));
        } else {
            self.other_status += 1;
        }
        None
    }

    fn merge(&mut self, other: KindStats) {
        self.sent += other.sent;
        self.ok += other.ok;
        self.client_errors += other.client_errors;
        self.server_errors += other.server_errors;
        self.other_status += other.other_status;
        self.transport_errors += other.transport_errors;
        for (label, n) in other.outcomes {
            if let Some(m) = self.outcomes.get_mut(&label) {
                *m += n;
            } else if self.outcomes.len() < MAX_OUTCOMES {
                self.outcomes.insert(label, n);
            } else {
                *self.outcomes.entry("other".to_string()).or_insert(0) += n;
            }
        }
        // Same bounds on both sides, so adding cannot go out of range.
        let _ = self.latency.add(&other.latency);
        let _ = self.service.add(&other.service);
    }

    fn report(&self) -> KindReport {
        KindReport {
            sent: self.sent,
            ok: self.ok,
            client_errors: self.client_errors,
            server_errors: self.server_errors,
            other_status: self.other_status,
            transport_errors: self.transport_errors,
            outcomes: self.outcomes.clone(),
            latency_us: Percentiles::of(&self.latency),
            service_us: Percentiles::of(&self.service),
        }
    }
}

/// Send-lag bookkeeping of an open-loop stream.
pub(crate) struct Lag {
    hist: Histogram<u64>,
    late: u64,
}

impl Lag {
    fn new() -> Self {
        Lag {
            hist: histogram(),
            late: 0,
        }
    }

    pub fn record(&mut self, lag: Duration, late: bool) {
        self.hist.saturating_record(nanos(lag));
        if late {
            self.late += 1;
        }
    }

    fn merge(&mut self, other: Lag) {
        let _ = self.hist.add(&other.hist);
        self.late += other.late;
    }
}

/// One order task's counts, merged at the end so connections share nothing on the hot path.
pub(crate) struct OrderStats {
    pub kinds: [KindStats; 5],
    pub lag: Lag,
    /// Cancel slots that found nothing resting on their account (nothing was sent).
    pub cancels_skipped: u64,
    /// Resting slots sent as cancels because their account already had the most resting.
    pub rests_replaced: u64,
    pub errors: ErrorSamples,
}

impl OrderStats {
    pub fn new() -> Self {
        OrderStats {
            kinds: std::array::from_fn(|_| KindStats::new()),
            lag: Lag::new(),
            cancels_skipped: 0,
            rests_replaced: 0,
            errors: ErrorSamples::default(),
        }
    }

    pub fn merge(&mut self, other: OrderStats) {
        for (mine, theirs) in self.kinds.iter_mut().zip(other.kinds) {
            mine.merge(theirs);
        }
        self.lag.merge(other.lag);
        self.cancels_skipped += other.cancels_skipped;
        self.rests_replaced += other.rests_replaced;
        self.errors.merge(other.errors);
    }
}

/// One read task's counts: `/orders` and `/fills` kept apart.
pub(crate) struct ReadStats {
    pub paths: [KindStats; 2],
    pub lag: Lag,
    pub errors: ErrorSamples,
}

impl ReadStats {
    pub fn new() -> Self {
        ReadStats {
            paths: [KindStats::new(), KindStats::new()],
            lag: Lag::new(),
            errors: ErrorSamples::default(),
        }
    }

    pub fn merge(&mut self, other: ReadStats) {
        for (mine, theirs) in self.paths.iter_mut().zip(other.paths) {
            mine.merge(theirs);
        }
        self.lag.merge(other.lag);
        self.errors.merge(other.errors);
    }
}

/// Figures of one kind of request. Latency in µs: from the scheduled time in open loop
/// (coordinated-omission corrected), from the send in closed loop; `service_us` always from the
/// send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KindReport {
    pub sent: u64,
    /// 2xx answers.
    pub ok: u64,
    pub client_errors: u64,
    pub server_errors: u64,
    /// 1xx/3xx answers.
    pub other_status: u64,
    pub transport_errors: u64,
    /// Answers by `"<status> <order status or error code>"` (`"201 filled"`,
    /// `"422 price_collar"`, `"409 order_already_filled"`), or `"transport error"`.
    pub outcomes: BTreeMap<String, u64>,
    pub latency_us: Percentiles,
    pub service_us: Percentiles,
}

/// One line of the documented mix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MixShare {
    pub kind: SoakKind,
    /// Slots of this kind in each account's 20-visit cycle.
    pub per_cycle: usize,
    pub share_pct: f64,
}

/// The concurrent reads (`GET /orders?limit=100` and `GET /fills?limit=100`, alternating).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadsReport {
    pub target_rate: u64,
    pub scheduled: u64,
    pub connections: usize,
    pub sent: u64,
    pub ok: u64,
    pub client_errors: u64,
    pub server_errors: u64,
    pub transport_errors: u64,
    /// Both paths, from each read's scheduled time.
    pub latency_us: Percentiles,
    pub service_us: Percentiles,
    /// Per path (`/orders?limit=100`, `/fills?limit=100`): counts and latencies.
    pub by_path: BTreeMap<String, KindReport>,
    pub send_lag_us: Percentiles,
    pub late_sends: u64,
    /// More than 1% of reads left over 1 ms late, or fewer left than were scheduled.
    pub fell_behind: bool,
    pub p99_goal_us: f64,
    /// The p99 from schedule over both paths is below `p99_goal_us`.
    pub p99_goal_met: bool,
}

/// The server's memory over the soak.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryReport {
    /// The gauge sampled from `GET /metrics`.
    pub metric: String,
    pub sample_every_s: f64,
    pub warmup_s: f64,
    /// One at the start, one every `sample_every_s` and one after the last answer.
    pub samples: Vec<RssSample>,
    /// `/metrics` reads that failed or lacked the gauge.
    pub sample_errors: u64,
    pub peak_bytes: Option<u64>,
    pub peak_mb: Option<f64>,
    pub peak_at_s: Option<f64>,
    pub first_mb: Option<f64>,
    pub last_mb: Option<f64>,
    /// Samples at or after `warmup_s`, which the slope is fitted to.
    pub samples_after_warmup: usize,
    /// Least-squares slope of RSS over the samples after warm-up, MB (10^6 bytes) per minute;
    /// `None` with fewer than two samples after warm-up.
    pub slope_mb_per_min: Option<f64>,
}

impl MemoryReport {
    pub(crate) fn build(
        sample_every: Duration,
        warmup: Duration,
        samples: Vec<RssSample>,
        sample_errors: u64,
    ) -> MemoryReport {
        let warmup_s = warmup.as_secs_f64();
        let mb = |b: u64| b as f64 / BYTES_PER_MB;
        let peak = samples
            .iter()
            .copied()
            .reduce(|a, b| if b.rss_bytes > a.rss_bytes { b } else { a });
        MemoryReport {
            metric: RSS_METRIC.to_string(),
            sample_every_s: sample_every.as_secs_f64(),
            warmup_s,
            sample_errors,
            peak_bytes: peak.map(|p| p.rss_bytes),
            peak_mb: peak.map(|p| mb(p.rss_bytes)),
            peak_at_s: peak.map(|p| p.t_s),
            first_mb: samples.first().map(|s| mb(s.rss_bytes)),
            last_mb: samples.last().map(|s| mb(s.rss_bytes)),
            samples_after_warmup: samples.iter().filter(|s| s.t_s >= warmup_s).count(),
            slope_mb_per_min: rss_slope_mb_per_min(&samples, warmup_s),
            samples,
        }
    }
}

/// What happened to the resting orders the soak placed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RestingReport {
    /// Cancel slots that found no resting order of their account (its answer was not in yet);
    /// nothing was sent for them.
    pub cancels_skipped: u64,
    /// Resting slots sent as cancels instead, because the account already had the most resting
    /// orders the soak allows (bounds open orders when cancels were skipped).
    pub rests_replaced: u64,
    /// Resting orders still open when the load stopped; the soak cancels them afterwards
    /// (outside the measurement) so runs do not accumulate open orders.
    pub open_at_end: u64,
    pub cleanup_cancelled: u64,
    pub cleanup_failed: u64,
}

/// The outcome of one soak. `failed` is set by any transport error or 5xx answer to an order,
/// a cancel or a read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SoakReport {
    pub url: String,
    /// `open-loop` or `closed-loop`.
    pub mode: String,
    pub target_rate: Option<u64>,
    /// Open loop: the steps `rate * duration` schedules (a skipped cancel is a step that sends
    /// nothing).
    pub scheduled: Option<u64>,
    pub duration_s: f64,
    /// Wall time from the first send until the last order answer.
    pub elapsed_s: f64,
    pub connections: usize,
    pub accounts: usize,
    pub symbol: String,
    pub quantity: String,
    /// The mid the bodies were priced from at the start, and how often it was re-read.
    pub start_mid: String,
    /// The mid of the last successful re-read (the bodies' prices at the end).
    pub end_mid: String,
    pub mid_refreshes: u64,
    pub mid_refresh_errors: u64,
    pub mix: Vec<MixShare>,
    /// Order requests (POSTs and DELETEs) over every kind.
    pub sent: u64,
    pub ok: u64,
    pub client_errors: u64,
    pub server_errors: u64,
    pub transport_errors: u64,
    /// `sent / elapsed_s`.
    pub achieved_rate: f64,
    /// All order kinds together.
    pub latency_us: Percentiles,
    pub service_us: Percentiles,
    pub send_lag_us: Option<Percentiles>,
    pub late_sends: u64,
    pub fell_behind: bool,
    /// Per kind: `market`, `ioc-limit`, `resting`, `cancel`, `reject`.
    pub kinds: BTreeMap<SoakKind, KindReport>,
    pub resting: RestingReport,
    pub reads: Option<ReadsReport>,
    pub memory: MemoryReport,
    pub error_samples: Vec<String>,
    pub failed: bool,
}

/// Everything [`SoakReport::build`] gathers besides the options.
pub(crate) struct Gathered {
    pub orders: OrderStats,
    pub reads: Option<ReadStats>,
    pub elapsed: Duration,
    pub start_mid: String,
    pub end_mid: String,
    pub mid_refreshes: u64,
    pub mid_refresh_errors: u64,
    pub resting: RestingReport,
    pub memory: MemoryReport,
    pub read_connections: usize,
}

fn behind(late: u64, sent: u64, scheduled: u64) -> bool {
    late.saturating_mul(100) > sent || sent < scheduled
}

impl SoakReport {
    pub(crate) fn build(opts: &SoakOptions, g: Gathered) -> SoakReport {
        let elapsed_s = g.elapsed.as_secs_f64();
        let mut errors = ErrorSamples::default();
        let (mode, target_rate, scheduled) = match opts.mode {
            Mode::Open { rate } => (
                "open-loop",
                Some(rate),
                Some(crate::scheduled_orders(rate, opts.duration)),
            ),
            Mode::Closed => ("closed-loop", None, None),
        };
        let mut all = KindStats::new();
        let mut kinds = BTreeMap::new();
        for (kind, stats) in SoakKind::ALL.iter().zip(g.orders.kinds) {
            kinds.insert(*kind, stats.report());
            all.merge(stats);
        }
        // Steps: every request sent, plus the cancel slots that sent nothing.
        let steps = all.sent + g.orders.cancels_skipped;
        let total = all.report();
        errors.merge(g.orders.errors);

        let reads = g.reads.map(|r| {
            let rate = opts.reads_per_sec;
            let scheduled = crate::scheduled_orders(rate, opts.duration);
            let mut both = KindStats::new();
            let mut by_path = BTreeMap::new();
            for (path, stats) in READ_PATHS.iter().zip(r.paths) {
                by_path.insert(path.to_string(), stats.report());
                both.merge(stats);
            }
            errors.merge(r.errors);
            let rep = both.report();
            ReadsReport {
                target_rate: rate,
                scheduled,
                connections: g.read_connections,
                sent: rep.sent,
                ok: rep.ok,
                client_errors: rep.client_errors,
                server_errors: rep.server_errors,
                transport_errors: rep.transport_errors,
                p99_goal_us: READ_P99_GOAL_US,
                p99_goal_met: rep.latency_us.count > 0 && rep.latency_us.p99 < READ_P99_GOAL_US,
                latency_us: rep.latency_us,
                service_us: rep.service_us,
                by_path,
                send_lag_us: Percentiles::of(&r.lag.hist),
                late_sends: r.lag.late,
                fell_behind: behind(r.lag.late, rep.sent, scheduled),
            }
        });

        let open = target_rate.is_some();
        let read_failures = reads
            .as_ref()
            .map_or(0, |r| r.transport_errors + r.server_errors);
        let mix = SoakKind::ALL
            .iter()
            .map(|k| MixShare {
                kind: *k,
                per_cycle: k.per_cycle(),
                share_pct: 100.0 * k.per_cycle() as f64 / MIX_CYCLE.len() as f64,
            })
            .collect();
        SoakReport {
            url: opts.url.clone(),
            mode: mode.to_string(),
            target_rate,
            scheduled,
            duration_s: opts.duration.as_secs_f64(),
            elapsed_s,
            connections: opts.connections,
            accounts: opts.accounts,
            symbol: opts.symbol.clone(),
            quantity: opts.quantity.normalize().to_string(),
            start_mid: g.start_mid,
            end_mid: g.end_mid,
            mid_refreshes: g.mid_refreshes,
            mid_refresh_errors: g.mid_refresh_errors,
            mix,
            sent: total.sent,
            ok: total.ok,
            client_errors: total.client_errors,
            server_errors: total.server_errors,
            transport_errors: total.transport_errors,
            achieved_rate: if elapsed_s > 0.0 {
                total.sent as f64 / elapsed_s
            } else {
                0.0
            },
            latency_us: total.latency_us,
            service_us: total.service_us,
            send_lag_us: open.then(|| Percentiles::of(&g.orders.lag.hist)),
            late_sends: g.orders.lag.late,
            fell_behind: open && behind(g.orders.lag.late, steps, scheduled.unwrap_or(0)),
            kinds,
            resting: RestingReport {
                cancels_skipped: g.orders.cancels_skipped,
                rests_replaced: g.orders.rests_replaced,
                ..g.resting
            },
            failed: total.transport_errors + total.server_errors + read_failures > 0,
            reads,
            memory: g.memory,
            error_samples: errors.0,
        }
    }
}

/// The two read requests, alternating.
pub(crate) const READ_PATHS: [&str; 2] = ["/orders?limit=100", "/fills?limit=100"];

fn pct_row(f: &mut fmt::Formatter<'_>, name: &str, counts: &KindReport) -> fmt::Result {
    let p = &counts.latency_us;
    writeln!(
        f,
        "  {name:<18}{:>9}{:>9}{:>7}{:>6}{:>7} {:>9.1}{:>9.1}{:>9.1}{:>9.1}{:>10.1}",
        counts.sent,
        counts.ok,
        counts.client_errors,
        counts.server_errors,
        counts.transport_errors,
        p.p50,
        p.p90,
        p.p99,
        p.p999,
        p.max
    )
}

fn header(f: &mut fmt::Formatter<'_>, title: &str, basis: &str) -> fmt::Result {
    writeln!(
        f,
        "{title:<20}{:>9}{:>9}{:>7}{:>6}{:>7} {:>9}{:>9}{:>9}{:>9}{:>10}  (latency µs {basis})",
        "sent", "2xx", "4xx", "5xx", "neterr", "p50", "p90", "p99", "p99.9", "max"
    )
}

fn outcomes_line(outcomes: &BTreeMap<String, u64>) -> String {
    outcomes
        .iter()
        .map(|(k, n)| format!("{k}={n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for SoakReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let open = self.target_rate.is_some();
        match self.target_rate {
            Some(rate) => write!(f, "soak: open loop at {rate} requests/s")?,
            None => write!(f, "soak: closed loop (max throughput)")?,
        }
        writeln!(
            f,
            " for {} s against {}: {} connections, {} accounts, {} x {} (mid {} at start, {} at end; re-read {} times, {} failed)",
            self.duration_s,
            self.url,
            self.connections,
            self.accounts,
            self.symbol,
            self.quantity,
            self.start_mid,
            self.end_mid,
            self.mid_refreshes,
            self.mid_refresh_errors
        )?;
        let mix: Vec<String> = self
            .mix
            .iter()
            .map(|m| {
                format!(
                    "{} {}/20 ({:.0}%)",
                    m.kind.as_str(),
                    m.per_cycle,
                    m.share_pct
                )
            })
            .collect();
        writeln!(f, "mix per account: {}", mix.join(", "))?;
        let basis = if open {
            "from schedule"
        } else {
            "service time"
        };
        header(f, "orders", basis)?;
        for (kind, k) in &self.kinds {
            pct_row(f, kind.as_str(), k)?;
        }
        let all = KindReport {
            sent: self.sent,
            ok: self.ok,
            client_errors: self.client_errors,
            server_errors: self.server_errors,
            other_status: 0,
            transport_errors: self.transport_errors,
            outcomes: BTreeMap::new(),
            latency_us: self.latency_us,
            service_us: self.service_us,
        };
        pct_row(f, "all", &all)?;
        if open {
            let s = &self.service_us;
            writeln!(
                f,
                "  {:<18}{:>39} {:>9.1}{:>9.1}{:>9.1}{:>9.1}{:>10.1}",
                "all, service time", "", s.p50, s.p90, s.p99, s.p999, s.max
            )?;
        }
        for (kind, k) in &self.kinds {
            writeln!(f, "  {:<10} {}", kind.as_str(), outcomes_line(&k.outcomes))?;
        }
        writeln!(
            f,
            "  achieved {:.0} requests/s over {:.2} s; resting: {} cancels skipped (nothing resting yet), {} rests sent as cancels, {} open at end ({} cancelled after the run, {} failed)",
            self.achieved_rate,
            self.elapsed_s,
            self.resting.cancels_skipped,
            self.resting.rests_replaced,
            self.resting.open_at_end,
            self.resting.cleanup_cancelled,
            self.resting.cleanup_failed
        )?;
        if self.fell_behind {
            writeln!(
                f,
                "WARNING: the loader fell behind its order schedule: {} requests left more than 1 ms late; try more --connections",
                self.late_sends
            )?;
        }
        match &self.reads {
            Some(r) => {
                header(f, &format!("reads ({}/s)", r.target_rate), "from schedule")?;
                for (path, k) in &r.by_path {
                    pct_row(f, path, k)?;
                }
                writeln!(
                    f,
                    "  p99 {:.1} µs over both: goal < {:.0} µs {}",
                    r.latency_us.p99,
                    r.p99_goal_us,
                    if r.p99_goal_met { "met" } else { "MISSED" }
                )?;
                if r.fell_behind {
                    writeln!(
                        f,
                        "WARNING: the reads fell behind their schedule ({} of {} sent, {} late)",
                        r.sent, r.scheduled, r.late_sends
                    )?;
                }
            }
            None => writeln!(f, "reads: none (--reads-per-sec 0)")?,
        }
        let m = &self.memory;
        writeln!(
            f,
            "memory: {} every {} s, warm-up {} s, {} samples ({} failed reads)",
            m.metric,
            m.sample_every_s,
            m.warmup_s,
            m.samples.len(),
            m.sample_errors
        )?;
        let n = m.samples.len();
        let step = n.div_ceil(MAX_PRINTED_SAMPLES).max(1);
        for (i, s) in m.samples.iter().enumerate() {
            if i % step == 0 || i + 1 == n {
                writeln!(
                    f,
                    "  t {:>9.1} s  RSS {:>10.1} MB",
                    s.t_s,
                    s.rss_bytes as f64 / BYTES_PER_MB
                )?;
            }
        }
        match (m.peak_mb, m.peak_at_s) {
            (Some(peak), Some(at)) => write!(f, "  peak {peak:.1} MB at {at:.1} s")?,
            _ => write!(f, "  peak: no samples")?,
        }
        match m.slope_mb_per_min {
            Some(slope) => writeln!(
                f,
                "; slope after warm-up {slope:+.3} MB/min over {} samples",
                m.samples_after_warmup
            )?,
            None => writeln!(
                f,
                "; slope after warm-up: n/a ({} samples after warm-up)",
                m.samples_after_warmup
            )?,
        }
        for e in &self.error_samples {
            writeln!(f, "  error: {e}")?;
        }
        if self.failed {
            let (rt, r5) = self
                .reads
                .as_ref()
                .map_or((0, 0), |r| (r.transport_errors, r.server_errors));
            write!(
                f,
                "result: FAILED ({} transport errors, {} 5xx; reads: {rt} transport errors, {r5} 5xx)",
                self.transport_errors, self.server_errors
            )
        } else {
            write!(f, "result: ok")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use hyper::StatusCode;

    fn answer(status: u16, body: &str) -> Exchange {
        Exchange::Answer {
            status: StatusCode::from_u16(status).unwrap(),
            body: Bytes::from(body.to_string()),
        }
    }

    #[test]
    fn answers_are_counted_by_outcome_and_open_orders_return_their_id() {
        let mut k = KindStats::new();
        let mut e = ErrorSamples::default();
        let d = Duration::from_micros(100);
        let rest = r#"{"order_id":17,"status":"accepted","symbol":"BTCUSDT"}"#;
        assert_eq!(k.record(answer(201, rest), d, d, &mut e), Some(17));
        let filled = r#"{"order_id":18,"status":"filled"}"#;
        assert_eq!(k.record(answer(201, filled), d, d, &mut e), None);
        let collar = r#"{"error":{"code":"price_collar","message":"no"},"order":{"order_id":19}}"#;
        assert_eq!(k.record(answer(422, collar), d, d, &mut e), None);
        assert_eq!(k.record(answer(200, "[]"), d, d, &mut e), None);
        assert_eq!(k.record(answer(503, "busy"), d, d, &mut e), None);
        assert_eq!(
            k.record(Exchange::Failed("reset".into()), d, d, &mut e),
            None
        );
        let r = k.report();
        assert_eq!((r.sent, r.ok, r.client_errors), (6, 3, 1));
        assert_eq!((r.server_errors, r.transport_errors), (1, 1));
        assert_eq!(r.latency_us.count, 5, "no latency for the transport error");
        let labels: Vec<(&str, u64)> = r.outcomes.iter().map(|(k, n)| (k.as_str(), *n)).collect();
        assert_eq!(
            labels,
            [
                ("200", 1),
                ("201 accepted", 1),
                ("201 filled", 1),
                ("422 price_collar", 1),
                ("503", 1),
                ("transport error", 1)
            ]
        );
        assert_eq!(
            e.0,
            ["503 Service Unavailable: busy".to_string(), "reset".into()]
        );
    }

    #[test]
    fn outcome_labels_are_bounded() {
        let mut k = KindStats::new();
        let mut e = ErrorSamples::default();
        let d = Duration::from_micros(1);
        for i in 0..100 {
            let body = format!(r#"{{"error":{{"code":"c{i}"}}}}"#);
            k.record(answer(409, &body), d, d, &mut e);
        }
        assert_eq!(k.outcomes.len(), MAX_OUTCOMES + 1);
        assert_eq!(k.outcomes["other"], 100 - MAX_OUTCOMES as u64);
        assert_eq!(k.outcomes.values().sum::<u64>(), 100);
    }

    #[test]
    fn memory_report_finds_the_peak_and_the_slope() {
        let samples = vec![
            RssSample {
                t_s: 0.0,
                rss_bytes: 100_000_000,
            },
            RssSample {
                t_s: 60.0,
                rss_bytes: 300_000_000,
            },
            RssSample {
                t_s: 120.0,
                rss_bytes: 250_000_000,
            },
            RssSample {
                t_s: 180.0,
                rss_bytes: 250_000_000,
            },
        ];
        let m = MemoryReport::build(
            Duration::from_secs(60),
            Duration::from_secs(120),
            samples,
            1,
        );
        assert_eq!(m.peak_bytes, Some(300_000_000));
        assert_eq!(m.peak_at_s, Some(60.0));
        assert_eq!(m.peak_mb, Some(300.0));
        assert_eq!(m.first_mb, Some(100.0));
        assert_eq!(m.last_mb, Some(250.0));
        assert_eq!(m.samples_after_warmup, 2);
        assert_eq!(m.slope_mb_per_min, Some(0.0));
        assert_eq!(m.sample_errors, 1);
        assert_eq!(m.metric, RSS_METRIC);
    }
}
