//! HTTP load generator for the order gateway: the engine behind `trade2026 bench orders` and
//! `trade2026 bench soak` (the [`soak`] module: a long run of a realistic order mix with
//! concurrent reads and the server's memory sampled).
//!
//! Two modes:
//! - **Open loop** ([`Mode::Open`]): order `i` is due at `start + i/rate`, whatever the server
//!   does. A pacer thread releases orders on schedule into a shared queue; whichever connection
//!   is idle takes the next one. Latency is measured from the *scheduled* time, so a stalled
//!   server shows up as latency instead of silently lowering the offered rate (coordinated
//!   omission); service time from the actual send is reported beside it, and their difference
//!   (the send lag) tells whether the loader kept up.
//! - **Closed loop** ([`Mode::Closed`]): every connection sends its next order as soon as the
//!   previous answer arrives: a maximum-throughput measurement.
//!
//! Each connection is one HTTP/1.1 keep-alive connection driven by `hyper`'s low-level
//! `client::conn::http1` API on a tokio `TcpStream`: no pool, no per-request allocation beyond
//! the request head, and request bodies are built once before the clock starts.

mod client;
mod orders;
mod report;
pub mod soak;

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rust_decimal::Decimal;
use tokio::sync::{Mutex, mpsc};

pub use report::{BenchReport, Percentiles};

use client::{Client, Exchange, Target};
use report::TaskStats;

/// Errors that stop a run before it starts. Failures *during* a run (transport errors, 5xx)
/// are counted in the [`BenchReport`] instead, so one bad answer does not hide the figures.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("invalid option: {0}")]
    InvalidOption(String),
    #[error("invalid --url {url:?}: {reason}")]
    Url { url: String, reason: String },
    #[error("cannot connect to {addr}: {reason}")]
    Connect { addr: String, reason: String },
    #[error("cannot read the market price: {0}")]
    MarketData(String),
    #[error("a load task failed: {0}")]
    Task(String),
}

/// How orders are offered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// A fixed schedule of `rate` orders per second.
    Open { rate: u64 },
    /// Each connection sends the next order as soon as the previous answer is in.
    Closed,
}

impl FromStr for Mode {
    type Err = LoadError;

    /// `max` (closed loop) or a positive whole number of orders per second.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("max") {
            return Ok(Mode::Closed);
        }
        match s.parse::<u64>() {
            Ok(rate) if rate > 0 => Ok(Mode::Open { rate }),
            _ => Err(LoadError::InvalidOption(format!(
                "--rate must be `max` or a positive whole number of orders/s, not {s:?}"
            ))),
        }
    }
}

/// Which orders to send. Both keep the accounts near flat and without open orders, so a long
/// run measures the trading path rather than the risk limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderKind {
    /// IOC limit orders 1% away from the mid read once at start (buy below, sell above): inside
    /// the 5% price collar, so they pass risk, and they expire unfilled.
    IocLimit,
    /// Small market orders, alternating buy/sell per account so positions stay near flat.
    Market,
}

impl OrderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderKind::IocLimit => "ioc-limit",
            OrderKind::Market => "market",
        }
    }
}

impl FromStr for OrderKind {
    type Err = LoadError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ioc-limit" => Ok(OrderKind::IocLimit),
            "market" => Ok(OrderKind::Market),
            other => Err(LoadError::InvalidOption(format!(
                "--order must be `ioc-limit` or `market`, not {other:?}"
            ))),
        }
    }
}

/// Everything a run needs; [`Default`] matches the command's defaults.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Base URL of the gateway, `http://host:port[/prefix]`.
    pub url: String,
    pub mode: Mode,
    pub duration: Duration,
    pub connections: usize,
    /// Orders go round-robin to accounts `bench-0` .. `bench-<accounts-1>`: the gateway's
    /// per-account order-rate and open-order limits make one account a bottleneck.
    pub accounts: usize,
    /// Appended to every account name (`bench-0<suffix>`): two runs side by side on accounts
    /// of their own (the flood benchmark).
    pub account_suffix: String,
    /// Sent as `Authorization: Bearer <key>` when set.
    pub api_key: Option<String>,
    pub symbol: String,
    pub order: OrderKind,
    pub quantity: Decimal,
    /// A request without an answer after this long counts as a transport error.
    pub timeout: Duration,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            url: "http://127.0.0.1:8099".to_string(),
            mode: Mode::Open { rate: 1000 },
            duration: Duration::from_secs(10),
            connections: 4,
            accounts: 64,
            account_suffix: String::new(),
            api_key: None,
            symbol: "BTCUSDT".to_string(),
            order: OrderKind::IocLimit,
            quantity: Decimal::new(1, 3),
            timeout: Duration::from_secs(10),
        }
    }
}

/// An order is "late" when it leaves this long after its scheduled time.
const LATE: Duration = Duration::from_millis(1);

/// Run one benchmark against a running gateway and report what happened.
pub async fn run(opts: BenchOptions) -> Result<BenchReport, LoadError> {
    validate(&opts)?;
    let target = Arc::new(Target::parse(&opts.url, opts.api_key.as_deref()).await?);
    let bodies = Arc::new(match opts.order {
        OrderKind::IocLimit => {
            let mid = client::fetch_mid(&target, &opts.symbol, opts.timeout).await?;
            orders::ioc_limit_bodies(
                &opts.symbol,
                opts.accounts,
                &opts.account_suffix,
                opts.quantity,
                mid,
            )?
        }
        OrderKind::Market => orders::market_bodies(
            &opts.symbol,
            opts.accounts,
            &opts.account_suffix,
            opts.quantity,
        ),
    });

    // Connect everything before the clock starts: a target that is not there is an error, not
    // a run full of transport errors.
    let mut clients = Vec::with_capacity(opts.connections);
    for _ in 0..opts.connections {
        clients.push(Client::connect(target.clone()).await.map_err(|reason| {
            LoadError::Connect {
                addr: target.addr.to_string(),
                reason,
            }
        })?);
    }

    let start = Instant::now();
    let mut tasks = Vec::with_capacity(opts.connections);
    let mut pacer = None;
    match opts.mode {
        Mode::Open { rate } => {
            let total = scheduled_orders(rate, opts.duration);
            let (tx, rx) = mpsc::unbounded_channel();
            let queue = Arc::new(Mutex::new(rx));
            for client in clients {
                let job = OpenJob {
                    client,
                    queue: queue.clone(),
                    bodies: bodies.clone(),
                    start,
                    rate,
                    timeout: opts.timeout,
                };
                tasks.push(tokio::spawn(job.run()));
            }
            pacer = Some(spawn_pacer(tx, start, rate, total)?);
        }
        Mode::Closed => {
            let next = Arc::new(AtomicU64::new(0));
            let deadline = start + opts.duration;
            for client in clients {
                let job = ClosedJob {
                    client,
                    next: next.clone(),
                    bodies: bodies.clone(),
                    deadline,
                    timeout: opts.timeout,
                };
                tasks.push(tokio::spawn(job.run()));
            }
        }
    }

    let mut stats = TaskStats::new();
    for task in tasks {
        let s = task.await.map_err(|e| LoadError::Task(e.to_string()))?;
        stats.merge(s);
    }
    let elapsed = start.elapsed();
    if let Some(p) = pacer {
        // The queue is drained, so the pacer has already returned.
        p.join()
            .map_err(|_| LoadError::Task("the pacer thread panicked".to_string()))?;
    }
    Ok(BenchReport::build(&opts, stats, elapsed))
}

fn validate(opts: &BenchOptions) -> Result<(), LoadError> {
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
    if opts.quantity <= Decimal::ZERO {
        return bad("--quantity must be positive");
    }
    if opts.mode == (Mode::Open { rate: 0 }) {
        return bad("--rate must be positive");
    }
    Ok(())
}

/// How many orders an open-loop run offers: exactly `rate * duration`, rounded down.
pub fn scheduled_orders(rate: u64, duration: Duration) -> u64 {
    let n = u128::from(rate) * duration.as_nanos() / 1_000_000_000;
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// When order `i` is due, as an offset from the start.
fn due_offset(i: u64, rate: u64) -> Duration {
    let nanos = u128::from(i) * 1_000_000_000 / u128::from(rate);
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// The schedule runs on its own OS thread: tokio's timer has millisecond granularity, far too
/// coarse when orders are a millisecond apart and the latency budget is below one, while a
/// thread sleeping in `nanosleep` wakes within tens of microseconds and costs no CPU in between.
fn spawn_pacer(
    tx: mpsc::UnboundedSender<u64>,
    start: Instant,
    rate: u64,
    total: u64,
) -> Result<std::thread::JoinHandle<()>, LoadError> {
    std::thread::Builder::new()
        .name("loadgen-pacer".to_string())
        .spawn(move || {
            tighten_timer_slack();
            for i in 0..total {
                let due = start + due_offset(i, rate);
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                if tx.send(i).is_err() {
                    return; // the run was abandoned
                }
            }
        })
        .map_err(|e| LoadError::Task(format!("cannot start the pacer thread: {e}")))
}

/// Linux lets a sleeping thread wake up to 50 µs late by default ("timer slack", to batch
/// wake-ups); on the pacer that lateness lands directly in every order's measured latency.
/// One nanosecond of slack makes `nanosleep` as punctual as the scheduler allows.
#[cfg(target_os = "linux")]
fn tighten_timer_slack() {
    // SAFETY: PR_SET_TIMERSLACK takes one integer argument and only changes this thread's
    // timer slack; it touches no memory of ours. A failure (old kernel) just keeps the default.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong);
    }
}

#[cfg(not(target_os = "linux"))]
fn tighten_timer_slack() {}

struct OpenJob {
    client: Client,
    queue: Arc<Mutex<mpsc::UnboundedReceiver<u64>>>,
    bodies: Arc<Vec<Bytes>>,
    start: Instant,
    rate: u64,
    timeout: Duration,
}

impl OpenJob {
    async fn run(mut self) -> TaskStats {
        let mut stats = TaskStats::new();
        loop {
            // Holding the lock while waiting makes the idle connections queue up in order: each
            // released order goes to exactly one idle connection.
            let next = self.queue.lock().await.recv().await;
            let Some(i) = next else { break };
            let due = self.start + due_offset(i, self.rate);
            let body = orders::body_for(&self.bodies, i);
            let sent_at = Instant::now();
            let answer = self.client.exchange(body, self.timeout).await;
            let done = Instant::now();
            let lag = sent_at.saturating_duration_since(due);
            stats.record(answer, done.saturating_duration_since(due), done - sent_at);
            stats.record_lag(lag, lag > LATE);
        }
        stats
    }
}

struct ClosedJob {
    client: Client,
    next: Arc<AtomicU64>,
    bodies: Arc<Vec<Bytes>>,
    deadline: Instant,
    timeout: Duration,
}

impl ClosedJob {
    async fn run(mut self) -> TaskStats {
        let mut stats = TaskStats::new();
        while Instant::now() < self.deadline {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            let body = orders::body_for(&self.bodies, i);
            let sent_at = Instant::now();
            let answer = self.client.exchange(body, self.timeout).await;
            let service = sent_at.elapsed();
            let failed_connect = matches!(answer, Exchange::ConnectFailed(_));
            stats.record(answer, service, service);
            if failed_connect {
                // Do not spin on a dead server; each failed attempt is still counted.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        stats
    }
}

/// Resolve `host:port` once, before the run.
async fn resolve(host_port: &str) -> Result<SocketAddr, String> {
    tokio::net::lookup_host(host_port)
        .await
        .map_err(|e| e.to_string())?
        .next()
        .ok_or_else(|| format!("{host_port} resolves to no address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_is_exact() {
        assert_eq!(scheduled_orders(1000, Duration::from_secs(300)), 300_000);
        assert_eq!(scheduled_orders(3, Duration::from_millis(1500)), 4);
        assert_eq!(due_offset(0, 1000), Duration::ZERO);
        assert_eq!(due_offset(1500, 1000), Duration::from_millis(1500));
        assert_eq!(due_offset(1, 3), Duration::from_nanos(333_333_333));
    }

    #[test]
    fn rate_parses() {
        assert_eq!("max".parse::<Mode>().unwrap(), Mode::Closed);
        assert_eq!("250".parse::<Mode>().unwrap(), Mode::Open { rate: 250 });
        assert!("0".parse::<Mode>().is_err());
        assert!("1.5".parse::<Mode>().is_err());
        assert!("ioc".parse::<OrderKind>().is_err());
        assert_eq!("market".parse::<OrderKind>().unwrap(), OrderKind::Market);
    }
}
