//! `trade2026 bench soak`: a long run of a realistic order mix against a running gateway, with
//! concurrent reads and the server's memory sampled from its `/metrics`.
//!
//! It reuses `bench orders`' machinery: the same open-loop pacer thread (latency from each
//! request's scheduled time) or closed loop (`--rate max`), the same keep-alive connections and
//! HdrHistogram percentiles. On top of it:
//! - the order mix of [`mix`] (market, IOC, resting GTC limits and their cancels, rejects), each
//!   kind counted and timed on its own;
//! - reads (`GET /orders?limit=100`, `GET /fills?limit=100`, alternating) on their own
//!   connections and their own open-loop schedule, timed apart from the orders;
//! - an RSS sample from `GET /metrics` every `sample_every`, with the peak and the least-squares
//!   slope after warm-up;
//! - the mid re-read every `mid_refresh` and the bodies rebuilt, so a soak of hours keeps its
//!   limits where the mix says even when the market walks away from the starting price.
//!
//! Memory of the loader itself is bounded: fixed-size histograms, at most 32 outcome labels per
//! kind, at most [`MAX_RESTING_PER_ACCOUNT`] resting order ids per account; only the RSS samples
//! grow, one per `sample_every`.

pub mod memory;
pub mod mix;
mod report;

use std::collections::VecDeque;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex, RwLock};
use std::time::{Duration, Instant};

use hyper::{Method, Uri};
use rust_decimal::Decimal;
use tokio::sync::{Mutex, mpsc, watch};

pub use memory::{RSS_METRIC, RssSample, metric_value, rss_from_metrics, rss_slope_mb_per_min};
pub use mix::{MIX_CYCLE, SoakKind};
pub use report::{
    KindReport, MemoryReport, MixShare, READ_P99_GOAL_US, ReadsReport, RestingReport, SoakReport,
};

use crate::client::{self, Client, Exchange, Target};
use crate::{LATE, LoadError, Mode, due_offset, scheduled_orders, spawn_pacer};
use mix::MixBodies;
use report::{Gathered, OrderStats, READ_PATHS, ReadStats};

/// The most resting orders the soak keeps open per account: a resting slot of an account that
/// already has this many sends a cancel instead. The mix keeps 0-2 open; this bounds the
/// pathological case (cancels skipped because answers were slow).
pub const MAX_RESTING_PER_ACCOUNT: usize = 8;

/// Everything a soak needs; [`Default`] matches the command's defaults.
#[derive(Debug, Clone)]
pub struct SoakOptions {
    /// Base URL of the gateway, `http://host:port[/prefix]`.
    pub url: String,
    /// Open loop at a rate of requests (orders and cancels) per second, or closed loop.
    pub mode: Mode,
    pub duration: Duration,
    /// Order connections (reads have their own).
    pub connections: usize,
    /// Orders go round-robin to accounts `bench-0` .. `bench-<accounts-1>`; resting orders to
    /// their companions `bench-<a>-maker` (see [`mix`]).
    pub accounts: usize,
    /// Sent as `Authorization: Bearer <key>` when set (an admin key, or one covering the
    /// bench accounts).
    pub api_key: Option<String>,
    pub symbol: String,
    pub quantity: Decimal,
    /// A request without an answer after this long counts as a transport error.
    pub timeout: Duration,
    /// How often RSS is read from `/metrics`.
    pub sample_every: Duration,
    /// Samples before this are left out of the slope.
    pub warmup: Duration,
    /// Reads per second (0: none).
    pub reads_per_sec: u64,
    pub read_connections: usize,
    /// How often the mid is re-read and the bodies re-priced.
    pub mid_refresh: Duration,
}

impl Default for SoakOptions {
    fn default() -> Self {
        SoakOptions {
            url: "http://127.0.0.1:8099".to_string(),
            mode: Mode::Open { rate: 1000 },
            duration: Duration::from_secs(300),
            connections: 4,
            accounts: 64,
            api_key: None,
            symbol: "BTCUSDT".to_string(),
            quantity: Decimal::new(1, 3),
            timeout: Duration::from_secs(10),
            sample_every: Duration::from_secs(10),
            warmup: Duration::from_secs(60),
            reads_per_sec: 0,
            read_connections: 2,
            mid_refresh: Duration::from_secs(5),
        }
    }
}

/// A duration given as seconds (`90`, `2.5`) or with a unit: `500ms`, `30s`, `5m`, `2h`.
pub fn parse_duration(s: &str) -> Result<Duration, LoadError> {
    let bad = || {
        LoadError::InvalidOption(format!(
            "{s:?} is not a duration (seconds, or a number with ms, s, m or h)"
        ))
    };
    let t = s.trim();
    let (number, unit_s) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (t, 1.0)
    };
    let v: f64 = number.trim().parse().map_err(|_| bad())?;
    Duration::try_from_secs_f64(v * unit_s).map_err(|_| bad())
}

fn validate(opts: &SoakOptions) -> Result<(), LoadError> {
    let bad = |m: &str| Err(LoadError::InvalidOption(m.to_string()));
    if opts.connections == 0 {
        return bad("--connections must be at least 1");
    }
    if opts.accounts == 0 {
        return bad("--accounts must be at least 1");
    }
    if opts.duration.is_zero() {
        return bad("--duration must be positive");
    }
    if opts.timeout.is_zero() {
        return bad("--timeout must be positive");
    }
    if opts.sample_every.is_zero() {
        return bad("--sample-every must be positive");
    }
    if opts.mid_refresh.is_zero() {
        return bad("the mid refresh interval must be positive");
    }
    if opts.quantity <= Decimal::ZERO {
        return bad("--quantity must be positive");
    }
    if opts.mode == (Mode::Open { rate: 0 }) {
        return bad("--rate must be positive");
    }
    if opts.reads_per_sec > 0 && opts.read_connections == 0 {
        return bad("--read-connections must be at least 1 when reads are on");
    }
    Ok(())
}

/// State the order tasks share.
struct Shared {
    /// Replaced whole when the mid is re-read; a task clones the `Arc` per request.
    bodies: RwLock<Arc<MixBodies>>,
    /// Per account, the ids of its resting orders, oldest first.
    resting: Vec<StdMutex<VecDeque<u64>>>,
    accounts: usize,
    target: Arc<Target>,
    timeout: Duration,
}

impl Shared {
    fn bodies(&self) -> Arc<MixBodies> {
        self.bodies
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn resting(&self, account: usize) -> std::sync::MutexGuard<'_, VecDeque<u64>> {
        // The queue is only pushed and popped; a panic elsewhere cannot leave it inconsistent.
        self.resting[account]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}

/// One order connection.
struct Worker {
    client: Client,
    shared: Arc<Shared>,
    stats: OrderStats,
}

/// What a step did.
enum Did {
    /// A request went out; `connect_failed` when no connection could be made for it.
    Sent { connect_failed: bool },
    /// A cancel slot with nothing to cancel.
    Skipped,
}

impl Worker {
    /// Play step `i`; `due` is its scheduled time (open loop), `None` in closed loop.
    async fn step(&mut self, i: u64, due: Option<Instant>) -> Did {
        let mut step = mix::plan(i, self.shared.accounts);
        if step.kind == SoakKind::Resting
            && self.shared.resting(step.account).len() >= MAX_RESTING_PER_ACCOUNT
        {
            self.stats.rests_replaced += 1;
            step.kind = SoakKind::Cancel;
        }
        let sent_at = Instant::now();
        let answer = if step.kind == SoakKind::Cancel {
            let next = self.shared.resting(step.account).pop_front();
            let Some(id) = next else {
                self.stats.cancels_skipped += 1;
                return Did::Skipped;
            };
            match self.shared.target.uri(&format!("/orders/{id}")) {
                Ok(uri) => {
                    self.client
                        .bodiless(Method::DELETE, uri, self.shared.timeout)
                        .await
                }
                // A decimal id always forms a valid path; counted, should it ever not.
                Err(e) => Exchange::Failed(e.to_string()),
            }
        } else {
            let bodies = self.shared.bodies();
            let Some(body) = bodies.body(step) else {
                // Every non-cancel kind has a body for every account below `accounts`.
                return Did::Skipped;
            };
            self.client.exchange(body, self.shared.timeout).await
        };
        let done = Instant::now();
        let connect_failed = matches!(answer, Exchange::ConnectFailed(_));
        let service = done - sent_at;
        let latency = due.map_or(service, |d| done.saturating_duration_since(d));
        if let Some(d) = due {
            let lag = sent_at.saturating_duration_since(d);
            self.stats.lag.record(lag, lag > LATE);
        }
        let stats = &mut self.stats.kinds[step.kind.index()];
        let open_id = stats.record(answer, latency, service, &mut self.stats.errors);
        if let (SoakKind::Resting, Some(id)) = (step.kind, open_id) {
            self.shared.resting(step.account).push_back(id);
        }
        Did::Sent { connect_failed }
    }

    async fn run_open(
        mut self,
        queue: Arc<Mutex<mpsc::UnboundedReceiver<u64>>>,
        start: Instant,
        rate: u64,
    ) -> OrderStats {
        loop {
            // Holding the lock while waiting makes idle connections queue up in order: each
            // released step goes to exactly one idle connection.
            let next = queue.lock().await.recv().await;
            let Some(i) = next else { break };
            self.step(i, Some(start + due_offset(i, rate))).await;
        }
        self.stats
    }

    async fn run_closed(mut self, next: Arc<AtomicU64>, deadline: Instant) -> OrderStats {
        while Instant::now() < deadline {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if let Did::Sent {
                connect_failed: true,
            } = self.step(i, None).await
            {
                // Do not spin on a dead server; each failed attempt is still counted.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        self.stats
    }
}

/// One read connection: alternate `/orders?limit=100` and `/fills?limit=100` on schedule.
async fn run_reads(
    mut client: Client,
    uris: Arc<[Uri; 2]>,
    queue: Arc<Mutex<mpsc::UnboundedReceiver<u64>>>,
    start: Instant,
    rate: u64,
    timeout: Duration,
) -> ReadStats {
    let mut stats = ReadStats::new();
    loop {
        let next = queue.lock().await.recv().await;
        let Some(i) = next else { break };
        let due = start + due_offset(i, rate);
        // `i % 2` is 0 or 1.
        let which = (i % 2) as usize;
        let sent_at = Instant::now();
        let answer = client
            .bodiless(Method::GET, uris[which].clone(), timeout)
            .await;
        let done = Instant::now();
        let lag = sent_at.saturating_duration_since(due);
        stats.lag.record(lag, lag > LATE);
        stats.paths[which].record(
            answer,
            done.saturating_duration_since(due),
            done - sent_at,
            &mut stats.errors,
        );
    }
    stats
}

/// RSS from `/metrics` at the start, every `every`, and once more when `stop` flips.
async fn sample_memory(
    mut client: Client,
    uri: Uri,
    start: Instant,
    every: Duration,
    timeout: Duration,
    mut stop: watch::Receiver<bool>,
) -> (Vec<RssSample>, u64, Vec<String>) {
    let mut samples = Vec::new();
    let mut errors = 0u64;
    let mut messages = Vec::new();
    let mut k: u32 = 0;
    loop {
        let stopping = *stop.borrow();
        let t_s = start.elapsed().as_secs_f64();
        // The load stopped right on a grid sample: another one now would only repeat it.
        let just_sampled = samples
            .last()
            .is_some_and(|s: &RssSample| t_s - s.t_s < every.as_secs_f64() / 10.0);
        if stopping && just_sampled {
            break;
        }
        match client.bodiless(Method::GET, uri.clone(), timeout).await {
            Exchange::Answer { status, body } if status.is_success() => {
                match std::str::from_utf8(&body).ok().and_then(rss_from_metrics) {
                    Some(rss_bytes) => samples.push(RssSample { t_s, rss_bytes }),
                    None => {
                        errors += 1;
                        if messages.is_empty() {
                            messages.push(format!("GET /metrics has no {RSS_METRIC} gauge"));
                        }
                    }
                }
            }
            Exchange::Answer { status, .. } => {
                errors += 1;
                if messages.is_empty() {
                    messages.push(format!("GET /metrics answered {status}"));
                }
            }
            Exchange::ConnectFailed(e) | Exchange::Failed(e) => {
                errors += 1;
                if messages.is_empty() {
                    messages.push(format!("GET /metrics: {e}"));
                }
            }
        }
        if stopping {
            break;
        }
        k = k.saturating_add(1);
        // On a fixed grid from the start, so a slow scrape does not shift every later sample.
        let next = start + every.saturating_mul(k);
        tokio::select! {
            _ = tokio::time::sleep_until(next.into()) => {}
            // The final sample is taken right after the load stops.
            _ = stop.changed() => {}
        }
    }
    (samples, errors, messages)
}

/// Re-read the mid every `every` until `stop` and re-price the bodies; returns (refreshes,
/// failures).
async fn refresh_mid(
    shared: Arc<Shared>,
    symbol: String,
    quantity: Decimal,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) -> (u64, u64) {
    let (mut ok, mut failed) = (0u64, 0u64);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return (ok, failed),
        }
        if *stop.borrow() {
            return (ok, failed);
        }
        let rebuilt = match client::fetch_mid(&shared.target, &symbol, shared.timeout).await {
            Ok(mid) => MixBodies::build(&symbol, shared.accounts, quantity, mid),
            Err(e) => Err(e),
        };
        match rebuilt {
            Ok(b) => {
                *shared.bodies.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(b);
                ok += 1;
            }
            // Keep the old prices: a quote that is briefly missing should not stop a soak.
            Err(_) => failed += 1,
        }
    }
}

async fn connect(target: &Arc<Target>) -> Result<Client, LoadError> {
    Client::connect(target.clone())
        .await
        .map_err(|reason| LoadError::Connect {
            addr: target.addr.to_string(),
            reason,
        })
}

/// Run one soak against a running gateway and report what happened.
pub async fn run(opts: SoakOptions) -> Result<SoakReport, LoadError> {
    validate(&opts)?;
    let target = Arc::new(Target::parse(&opts.url, opts.api_key.as_deref()).await?);
    let mid = client::fetch_mid(&target, &opts.symbol, opts.timeout).await?;
    let bodies = MixBodies::build(&opts.symbol, opts.accounts, opts.quantity, mid)?;
    let shared = Arc::new(Shared {
        bodies: RwLock::new(Arc::new(bodies)),
        resting: (0..opts.accounts)
            .map(|_| StdMutex::new(VecDeque::new()))
            .collect(),
        accounts: opts.accounts,
        target: target.clone(),
        timeout: opts.timeout,
    });
    let metrics_uri = target.uri("/metrics")?;
    let read_uris = Arc::new([target.uri(READ_PATHS[0])?, target.uri(READ_PATHS[1])?]);

    // Connect everything before the clock starts: a target that is not there is an error, not
    // a run full of transport errors.
    let mut workers = Vec::with_capacity(opts.connections);
    for _ in 0..opts.connections {
        workers.push(Worker {
            client: connect(&target).await?,
            shared: shared.clone(),
            stats: OrderStats::new(),
        });
    }
    let read_connections = if opts.reads_per_sec > 0 {
        opts.read_connections
    } else {
        0
    };
    let mut readers = Vec::with_capacity(read_connections);
    for _ in 0..read_connections {
        readers.push(connect(&target).await?);
    }
    let sampler_client = connect(&target).await?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let start = Instant::now();
    let sampler = tokio::spawn(sample_memory(
        sampler_client,
        metrics_uri,
        start,
        opts.sample_every,
        opts.timeout,
        stop_rx.clone(),
    ));
    let refresher = tokio::spawn(refresh_mid(
        shared.clone(),
        opts.symbol.clone(),
        opts.quantity,
        opts.mid_refresh,
        stop_rx,
    ));

    let mut pacers = Vec::new();
    let mut order_tasks = Vec::with_capacity(opts.connections);
    match opts.mode {
        Mode::Open { rate } => {
            let (tx, rx) = mpsc::unbounded_channel();
            let queue = Arc::new(Mutex::new(rx));
            for w in workers {
                order_tasks.push(tokio::spawn(w.run_open(queue.clone(), start, rate)));
            }
            pacers.push(spawn_pacer(
                tx,
                start,
                rate,
                scheduled_orders(rate, opts.duration),
            )?);
        }
        Mode::Closed => {
            let next = Arc::new(AtomicU64::new(0));
            for w in workers {
                order_tasks.push(tokio::spawn(
                    w.run_closed(next.clone(), start + opts.duration),
                ));
            }
        }
    }
    let mut read_tasks = Vec::with_capacity(readers.len());
    if !readers.is_empty() {
        let rate = opts.reads_per_sec;
        let (tx, rx) = mpsc::unbounded_channel();
        let queue = Arc::new(Mutex::new(rx));
        for c in readers {
            read_tasks.push(tokio::spawn(run_reads(
                c,
                read_uris.clone(),
                queue.clone(),
                start,
                rate,
                opts.timeout,
            )));
        }
        pacers.push(spawn_pacer(
            tx,
            start,
            rate,
            scheduled_orders(rate, opts.duration),
        )?);
    }

    let task_failed = |e: tokio::task::JoinError| LoadError::Task(e.to_string());
    let mut orders = OrderStats::new();
    for t in order_tasks {
        orders.merge(t.await.map_err(task_failed)?);
    }
    let elapsed = start.elapsed();
    let mut reads = (!read_tasks.is_empty()).then(ReadStats::new);
    for t in read_tasks {
        if let Some(r) = reads.as_mut() {
            r.merge(t.await.map_err(task_failed)?);
        }
    }
    // Both queues are drained, so the pacers have already returned.
    for p in pacers {
        p.join()
            .map_err(|_| LoadError::Task("a pacer thread panicked".to_string()))?;
    }
    let _ = stop_tx.send(true);
    let (samples, sample_errors, sample_messages) = sampler.await.map_err(task_failed)?;
    let (mid_refreshes, mid_refresh_errors) = refresher.await.map_err(task_failed)?;
    for m in sample_messages {
        orders.errors.add(m);
    }

    let resting = cancel_leftovers(&shared).await;
    let start_mid = mid.normalize().to_string();
    let end_mid = shared.bodies().mid.normalize().to_string();
    let memory = MemoryReport::build(opts.sample_every, opts.warmup, samples, sample_errors);
    Ok(SoakReport::build(
        &opts,
        Gathered {
            orders,
            reads,
            elapsed,
            start_mid,
            end_mid,
            mid_refreshes,
            mid_refresh_errors,
            resting,
            memory,
            read_connections,
        },
    ))
}

/// Cancel the resting orders still open after the load (not measured), so repeated soaks do not
/// pile up open orders against the account limits.
async fn cancel_leftovers(shared: &Arc<Shared>) -> RestingReport {
    let ids: Vec<u64> = (0..shared.accounts)
        .flat_map(|a| shared.resting(a).drain(..).collect::<Vec<_>>())
        .collect();
    let mut report = RestingReport {
        open_at_end: ids.len() as u64,
        ..RestingReport::default()
    };
    if ids.is_empty() {
        return report;
    }
    let mut client = match Client::connect(shared.target.clone()).await {
        Ok(c) => c,
        Err(_) => {
            report.cleanup_failed = report.open_at_end;
            return report;
        }
    };
    for id in ids {
        let done = match shared.target.uri(&format!("/orders/{id}")) {
            Ok(uri) => matches!(
                client.bodiless(Method::DELETE, uri, shared.timeout).await,
                Exchange::Answer { status, .. } if status.is_success()
            ),
            Err(_) => false,
        };
        if done {
            report.cleanup_cancelled += 1;
        } else {
            report.cleanup_failed += 1;
        }
    }
    report
}

impl FromStr for SoakKind {
    type Err = LoadError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SoakKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| LoadError::InvalidOption(format!("unknown soak kind {s:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("2.5").unwrap(), Duration::from_millis(2500));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        for bad in ["", "m", "-1", "1x", "NaN", "1e400"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn options_are_checked() {
        assert!(validate(&SoakOptions::default()).is_ok());
        let bad = [
            SoakOptions {
                connections: 0,
                ..SoakOptions::default()
            },
            SoakOptions {
                accounts: 0,
                ..SoakOptions::default()
            },
            SoakOptions {
                sample_every: Duration::ZERO,
                ..SoakOptions::default()
            },
            SoakOptions {
                quantity: Decimal::ZERO,
                ..SoakOptions::default()
            },
            SoakOptions {
                reads_per_sec: 10,
                read_connections: 0,
                ..SoakOptions::default()
            },
        ];
        for o in bad {
            assert!(
                matches!(validate(&o), Err(LoadError::InvalidOption(_))),
                "{o:?}"
            );
        }
    }

    #[test]
    fn kinds_parse_by_name() {
        for k in SoakKind::ALL {
            assert_eq!(k.as_str().parse::<SoakKind>().unwrap(), k);
        }
        assert!("limit".parse::<SoakKind>().is_err());
    }
}
