//! The imperative shell: one task owns the [`TradingCore`]; callers talk to it through a channel.
//!
//! Why one task: the core's state changes only in event order, which keeps OMS, risk, venue and
//! positions consistent without locks (the LMAX design). The task never waits for the disk: it
//! queues each decision's events for the next group commit and hands the caller's reply to an
//! acknowledger task, which answers once the events are durable. So "2xx" always means "on disk".

use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

use chrono::{NaiveTime, Utc};
use journal::{InProcessBus, Journal, JournalError, StartAt, Subscription};
use model::{AccountId, Event, Order, OrderId, Timestamp};
use oms::NewOrder;
use risk::{LimitsChange, RiskLimits};
use runtime::{
    ConsumerHandle, Restored, Runner, RuntimeError, SnapshotPolicy, SnapshotStore, Spec,
};
use serde::{Deserialize, Serialize};
use telemetry::AtomicHistogram;
use telemetry::histogram::LATENCY_BUCKETS;
use telemetry::prometheus_client::metrics::gauge::Gauge;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{CoreConfig, EngineError, Outcome, Reserved, TradingCore};

/// Engine settings (the `engine` config section).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EngineConfig {
    #[serde(flatten)]
    pub core: CoreConfig,
    /// UTC time at which DAY orders expire (crypto trades around the clock, so the "session"
    /// is a convention). `null` disables expiry.
    pub day_session_end_utc: Option<NaiveTime>,
    /// When the engine's state is snapshotted (a restart replays only what came after).
    #[serde(skip)]
    pub snapshots: SnapshotPolicy,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            core: CoreConfig::default(),
            day_session_end_utc: NaiveTime::from_hms_opt(0, 0, 0),
            snapshots: SnapshotPolicy::default(),
        }
    }
}

/// A journaled order-lifecycle event, as streamed to clients (`GET /stream`).
#[derive(Debug, Clone, Serialize)]
pub struct ExecutionReport {
    pub seq: u64,
    #[serde(flatten)]
    pub event: Event,
}

impl ExecutionReport {
    pub fn account(&self) -> Option<&AccountId> {
        match &self.event {
            Event::OrderSubmitted { order } => Some(&order.account),
            Event::OrderAccepted { account, .. }
            | Event::OrderRejected { account, .. }
            | Event::OrderCanceled { account, .. }
            | Event::OrderExpired { account, .. }
            | Event::OrderTriggered { account, .. } => Some(account),
            Event::OrderFilled(f) => Some(&f.account),
            _ => None,
        }
    }
}

/// Questions answered from the engine's own state. Orders, fills and positions are read from
/// the blotter instead, off the engine task.
#[derive(Debug, Clone)]
pub enum Query {
    RiskLimits,
    /// The journal sequence of the last market-data event the engine has acted on (tests and
    /// operators: how far the engine's view of the market has got).
    MarketDataApplied,
}

#[derive(Debug, Clone)]
pub enum QueryAnswer {
    RiskLimits(Box<RiskLimits>),
    MarketDataApplied(u64),
}

enum Command {
    Submit {
        req: NewOrder,
        reply: oneshot::Sender<Result<Outcome, EngineError>>,
        /// When the caller handed the order over (the OMS latency starts here).
        at: Instant,
    },
    Cancel {
        account: AccountId,
        id: OrderId,
        reply: oneshot::Sender<Result<Order, EngineError>>,
    },
    Risk {
        change: LimitsChange,
        by: String,
        reply: oneshot::Sender<Result<Event, EngineError>>,
    },
    Query {
        query: Query,
        reply: oneshot::Sender<QueryAnswer>,
    },
}

/// A pending reply, answered by the acknowledger once its events, and every event decided
/// before it, are durable. Answers with no events of their own (a repeated client order id,
/// a query) wait in the same line: they reflect state that includes earlier decisions, which
/// must not be shown before they are on disk.
enum Reply {
    Submit(oneshot::Sender<Result<Outcome, EngineError>>, Outcome),
    Cancel(oneshot::Sender<Result<Order, EngineError>>, Order),
    Risk(oneshot::Sender<Result<Event, EngineError>>, Event),
    Query(oneshot::Sender<QueryAnswer>, QueryAnswer),
    /// An id reservation is durable: the engine may use the ids.
    Reserved(oneshot::Sender<Reserved>, Reserved),
    None,
}

type Durable =
    std::pin::Pin<Box<dyn Future<Output = Result<RangeInclusive<u64>, JournalError>> + Send>>;

/// One journal batch for the acknowledger: when it is durable, its events are streamed and its
/// replies answered, in order.
type Pending = (Durable, Vec<Event>, Vec<Reply>);
type AckQueue = mpsc::UnboundedSender<Pending>;

/// Most commands decided in one wake-up of the engine task and journaled as one batch.
const COMMANDS_PER_BATCH: usize = 256;

/// The decisions of one wake-up of the engine task. Their events go to the journal as one
/// batch and their replies wait for it together: one hand-over to the journal's writer and one
/// to the acknowledger per wake-up instead of per order (under load, the writer's group commit
/// takes them together anyway). Decision order is journal order either way.
#[derive(Default)]
struct Decisions {
    events: Vec<Event>,
    replies: Vec<Reply>,
}

impl Decisions {
    fn push(&mut self, events: Vec<Event>, reply: Reply) {
        self.events.extend(events);
        self.replies.push(reply);
    }

    fn len(&self) -> usize {
        self.replies.len()
    }

    /// Queues the events for the journal now and the replies for the acknowledger, which
    /// answers them once the events (and everything queued before) are durable. Replies without
    /// events of their own wait in the same line.
    fn send(self, journal: &Journal, ack: &AckQueue) -> Result<(), EngineError> {
        if self.replies.is_empty() && self.events.is_empty() {
            return Ok(());
        }
        let durable: Durable = if self.events.is_empty() {
            #[allow(clippy::reversed_empty_ranges)]
            Box::pin(async { Ok(1..=0) })
        } else {
            Box::pin(journal.enqueue_batch(self.events.clone())?)
        };
        ack.send((durable, self.events, self.replies))
            .map_err(|_| EngineError::Stopped)
    }
}

/// Handle to the running engine. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    tx: mpsc::Sender<Command>,
    reports: broadcast::Sender<ExecutionReport>,
    order_ack: AtomicHistogram,
}

const COMMAND_QUEUE: usize = 65_536;

/// What the engine holds in memory, for `/metrics`: bounded by the retention, whatever the
/// history (a soak watches these stay flat); and the order path's latencies, each recorded with
/// a few atomic operations per order (no lock on the engine task).
#[derive(Clone)]
pub struct EngineGauges {
    orders_held: Gauge,
    open_orders: Gauge,
    client_ids: Gauge,
    /// `Engine::submit` called -> answered after the order's events are durable.
    order_ack: AtomicHistogram,
    /// `Engine::submit` called -> the engine's decision (queue wait, OMS, risk, venue).
    oms_decision: AtomicHistogram,
    /// The pre-trade risk check of one order.
    risk_check: AtomicHistogram,
}

impl Default for EngineGauges {
    fn default() -> Self {
        EngineGauges {
            orders_held: Gauge::default(),
            open_orders: Gauge::default(),
            client_ids: Gauge::default(),
            order_ack: AtomicHistogram::new(LATENCY_BUCKETS),
            oms_decision: AtomicHistogram::new(LATENCY_BUCKETS),
            risk_check: AtomicHistogram::new(LATENCY_BUCKETS),
        }
    }
}

impl EngineGauges {
    pub fn register(metrics: &telemetry::Metrics) -> EngineGauges {
        let g = EngineGauges::default();
        metrics.register(
            "order_ack_seconds",
            "Time from an order reaching the engine to its answer once its events are durable (what POST /orders waits for), accepted or rejected",
            g.order_ack.clone(),
        );
        metrics.register(
            "oms_decision_seconds",
            "Time from an order reaching the engine to its decision (queue wait, OMS, risk check, venue), before it is journaled",
            g.oms_decision.clone(),
        );
        metrics.register(
            "risk_check_seconds",
            "Time the pre-trade risk check of one order takes",
            g.risk_check.clone(),
        );
        metrics.register(
            "engine_orders_held",
            "Orders in the engine's memory: open ones plus recently finished ones (retention)",
            g.orders_held.clone(),
        );
        metrics.register(
            "engine_open_orders",
            "Open orders (pending, accepted, partially filled)",
            g.open_orders.clone(),
        );
        metrics.register(
            "engine_client_order_ids",
            "Client order ids remembered in memory for idempotent order entry",
            g.client_ids.clone(),
        );
        g
    }

    fn update(&self, core: &TradingCore) {
        let oms = core.oms();
        let n = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
        self.orders_held.set(n(oms.len()));
        self.open_orders.set(n(oms.open_len()));
        self.client_ids.set(n(oms.client_ids_len()));
    }
}

/// A started engine: its handle and task, and the snapshotter that keeps its restart short.
pub struct Started {
    pub engine: Engine,
    pub task: JoinHandle<Result<(), EngineError>>,
    /// A replica of the core fed by the durable stream (it only replays, never decides); its
    /// snapshots are what the next start loads.
    pub snapshotter: ConsumerHandle<TradingCore>,
    pub snapshotter_task: JoinHandle<Result<(), RuntimeError>>,
    /// The journal sequence of the snapshot the core was restored from (`None`: from scratch).
    pub restored_from: Option<u64>,
    /// Events replayed after the snapshot.
    pub replayed: u64,
}

impl Engine {
    /// Restore the core from its newest valid snapshot (or from scratch), replay the journal
    /// after it, expire DAY orders of sessions that ended while the platform was down, then
    /// start the engine task. Market data is consumed from the journal (after it is durable)
    /// right after the replayed history.
    pub async fn start(
        journal: Journal,
        config: EngineConfig,
        snapshots: SnapshotStore,
        runner: &Runner<InProcessBus>,
        gauges: EngineGauges,
        shutdown: CancellationToken,
    ) -> Result<Started, EngineError> {
        let fingerprint = runtime::fingerprint(&config.core);
        // Replay up to what is in the journal now; the bus subscription below carries on from
        // there, so a fast feed cannot keep the replay from ever finishing.
        let replay_to = journal.last_seq();
        let fresh = TradingCore::new(config.core.clone())?;
        let restored = runtime::restore(&snapshots, &fingerprint, replay_to, || fresh)?;
        let restored_from = restored.snapshot.as_ref().map(|m| m.seq);
        let mut core = restored.state;
        let bus = InProcessBus::new(journal.clone());
        let mut replayed = 0u64;
        runtime::replay(
            &bus,
            "engine-replay",
            ">",
            restored.position + 1,
            replay_to,
            |batch| {
                for d in batch {
                    core.replay(&d.event).map_err(|e| EngineError::Replay {
                        seq: d.seq,
                        reason: e.to_string(),
                    })?;
                }
                replayed += batch.len() as u64;
                Ok::<(), EngineError>(())
            },
        )
        .await
        .map_err(|e| match e {
            runtime::ReplayError::Bus(e) => EngineError::Journal(e),
            runtime::ReplayError::Apply(e) => e,
        })?;
        tracing::info!(
            snapshot = ?restored_from,
            replayed,
            replayed_to = replay_to,
            open_orders = core.oms().open_len(),
            "trading core restored"
        );
        let (snapshotter, snapshotter_task) = runner
            .start_restored(
                Spec::new("engine", ">"),
                snapshots,
                config.snapshots,
                fingerprint,
                Restored {
                    state: core.clone(),
                    position: replay_to,
                    snapshot: restored.snapshot,
                    rejected: restored.rejected,
                },
            )
            .await?;

        // Ids handed out before a crash may belong to orders and fills the crash took back:
        // continue after the last reservation, and reserve the next block before deciding.
        core.skip_reserved_ids();
        let reservation = core.reserve_ids(ORDER_ID_BLOCK, FILL_ID_BLOCK, Timestamp::now());
        journal.append(reservation).await?;

        // DAY orders of a session that ended while the platform was down expire now, before
        // anything else is decided.
        if let Some(ended) = last_session_end(config.day_session_end_utc) {
            let events = core.expire_day_orders_of(ended, Timestamp::now())?;
            if !events.is_empty() {
                tracing::info!(
                    expired = events.len(),
                    session_end = %ended,
                    "DAY orders of a session that ended while the platform was down expired"
                );
                journal.append_batch(events).await?;
            }
        }

        // Market data right after the replayed history: what the feeds journaled while this
        // start ran is still to be acted on (only the engine's own events, applied above, follow).
        let market = bus.subscribe_ephemeral("md.>", StartAt::Sequence(replay_to + 1))?;
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        let (reports, _) = broadcast::channel(16_384);
        let (ack_tx, ack_rx) = mpsc::unbounded_channel();
        let acker = tokio::spawn(acknowledge(ack_rx, reports.clone(), shutdown.clone()));
        crate::lifecycle::spawn(reports.subscribe(), shutdown.clone());
        let order_ack = gauges.order_ack.clone();
        let task = tokio::spawn(run(
            core, journal, market, rx, ack_tx, acker, config, gauges, shutdown,
        ));
        Ok(Started {
            engine: Engine {
                tx,
                reports,
                order_ack,
            },
            task,
            snapshotter,
            snapshotter_task,
            restored_from,
            replayed,
        })
    }

    async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, EngineError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(make(reply))
            .await
            .map_err(|_| EngineError::Stopped)?;
        rx.await.map_err(|_| EngineError::Stopped)
    }

    /// Submit an order; answers once its events are durable.
    pub async fn submit(&self, req: NewOrder) -> Result<Outcome, EngineError> {
        let at = Instant::now();
        let answer = self
            .call(|reply| Command::Submit { req, reply, at })
            .await?;
        if answer.is_ok() {
            self.order_ack.observe(at.elapsed().as_secs_f64());
        }
        answer
    }

    /// Cancel an order of `account` (another account's order is `order_not_found`).
    pub async fn cancel(&self, account: AccountId, id: OrderId) -> Result<Order, EngineError> {
        self.call(|reply| Command::Cancel { account, id, reply })
            .await?
    }

    /// Change risk limits or kill switches at run time; journaled before it answers.
    pub async fn change_risk(
        &self,
        change: LimitsChange,
        by: String,
    ) -> Result<Event, EngineError> {
        self.call(|reply| Command::Risk { change, by, reply })
            .await?
    }

    /// Answered once everything decided before it is durable.
    pub async fn query(&self, query: Query) -> Result<QueryAnswer, EngineError> {
        self.call(|reply| Command::Query { query, reply }).await
    }

    /// Durable order-lifecycle events as they happen.
    pub fn reports(&self) -> broadcast::Receiver<ExecutionReport> {
        self.reports.subscribe()
    }
}

#[allow(clippy::too_many_arguments)]
async fn run(
    mut core: TradingCore,
    journal: Journal,
    mut market: journal::InProcessSubscription,
    mut rx: mpsc::Receiver<Command>,
    ack: AckQueue,
    acker: JoinHandle<()>,
    config: EngineConfig,
    gauges: EngineGauges,
    shutdown: CancellationToken,
) -> Result<(), EngineError> {
    // An absolute deadline: the select below is re-entered on every command, so a relative
    // sleep rebuilt each time would never fire.
    let mut session_end =
        next_session_end(config.day_session_end_utc).map(|d| tokio::time::Instant::now() + d);
    let mut md_applied = 0u64;
    // Ids durably reserved: decisions use only these (see `Event::IdsReserved`).
    let mut usable = core.reserved();
    let mut reserving: Option<oneshot::Receiver<Reserved>> = None;
    let mut gauges_at = std::time::Instant::now();
    let result = loop {
        if gauges_at.elapsed() >= Duration::from_millis(250) {
            gauges.update(&core);
            gauges_at = std::time::Instant::now();
        }
        if reserving.is_none() && low_on_ids(&core, usable) {
            let event = core.reserve_ids(ORDER_ID_BLOCK, FILL_ID_BLOCK, Timestamp::now());
            let (tx, rx) = oneshot::channel();
            if let Err(e) = journal_then(
                &journal,
                &ack,
                vec![event],
                Reply::Reserved(tx, core.reserved()),
            ) {
                break Err(e);
            }
            reserving = Some(rx);
        }
        // Out of durable ids (a burst faster than one commit): wait for the reservation.
        let exhausted = out_of_ids(&core, usable);
        let reserved = async {
            match reserving.as_mut() {
                Some(rx) => rx.await,
                None => std::future::pending().await,
            }
        };
        let sleep = async {
            match session_end {
                Some(deadline) => tokio::time::sleep_until(deadline).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => break Ok(()),
            r = reserved => {
                reserving = None;
                match r {
                    Ok(r) => usable = r,
                    // The acknowledger stops the engine when a commit fails.
                    Err(_) => break Err(EngineError::Stopped),
                }
            }
            cmd = rx.recv(), if !exhausted => {
                let Some(cmd) = cmd else { break Ok(()) };
                // Market data already durable (a client may have seen it) is applied before the
                // decision, so an order never meets a market older than what the gateway showed.
                let pending = market.try_next_batch(usize::MAX);
                if let Err(e) = on_market_data(&mut core, &journal, &ack, &pending, &mut md_applied) {
                    break Err(e);
                }
                // Then this command and whatever else is queued, as one journal batch.
                let mut decided = Decisions::default();
                let mut failed = handle(&mut core, &mut decided, cmd, md_applied, &gauges).err();
                while failed.is_none()
                    && decided.len() < COMMANDS_PER_BATCH
                    && !out_of_ids(&core, usable)
                {
                    let Ok(cmd) = rx.try_recv() else { break };
                    failed = handle(&mut core, &mut decided, cmd, md_applied, &gauges).err();
                }
                // Decisions the core already applied are journaled even when a later one failed.
                if let Err(e) = decided.send(&journal, &ack) {
                    break Err(e);
                }
                if let Some(e) = failed {
                    break Err(e);
                }
            }
            batch = market.next_batch(512), if !exhausted => {
                let batch = match batch {
                    Ok(b) => b,
                    Err(JournalError::Closed) => break Ok(()),
                    Err(e) => break Err(e.into()),
                };
                if let Err(e) = on_market_data(&mut core, &journal, &ack, &batch, &mut md_applied) {
                    break Err(e);
                }
                md_applied = md_applied.max(market.scanned());
            }
            _ = sleep => {
                match core.expire_day_orders(Timestamp::now()) {
                    Ok(events) if !events.is_empty() => {
                        tracing::info!(expired = events.len(), "DAY orders expired at session end");
                        if let Err(e) = journal_then(&journal, &ack, events, Reply::None) {
                            break Err(e);
                        }
                    }
                    Ok(_) => {}
                    Err(e) => break Err(e),
                }
                session_end = next_session_end(config.day_session_end_utc).map(|d| tokio::time::Instant::now() + d);
            }
        }
    };
    // Let the acknowledger answer everything already queued before reporting back.
    drop(ack);
    let _ = acker.await;
    if let Err(e) = &result {
        tracing::error!(error = %e, "trading engine stopped on an error");
    }
    result
}

/// Order ids reserved per `ids_reserved` event: a restart skips at most this many.
const ORDER_ID_BLOCK: u64 = 1_000_000;
const FILL_ID_BLOCK: u64 = 1_000_000;
/// Most fills one decision can make (a market order walking the book, market data crossing
/// resting orders), kept in hand before deciding.
const FILLS_PER_DECISION: u64 = 100_000;

/// Time to reserve the next block (half of the current one is used).
fn low_on_ids(core: &TradingCore, usable: Reserved) -> bool {
    let (order, fill) = core.next_ids();
    usable.orders_through.saturating_sub(order) < ORDER_ID_BLOCK / 2
        || usable.fills_through.saturating_sub(fill) < FILL_ID_BLOCK / 2
}

/// The next decision could use an id that is not durably reserved yet.
fn out_of_ids(core: &TradingCore, usable: Reserved) -> bool {
    let (order, fill) = core.next_ids();
    order > usable.orders_through || fill + FILLS_PER_DECISION > usable.fills_through
}

/// Market data (durable, in journal order) into the core; the fills it makes are journaled.
fn on_market_data(
    core: &mut TradingCore,
    journal: &Journal,
    ack: &AckQueue,
    batch: &[journal::Delivery],
    md_applied: &mut u64,
) -> Result<(), EngineError> {
    for d in batch {
        *md_applied = d.seq;
        let events = core.on_market_data(&d.event)?;
        if !events.is_empty() {
            journal_then(journal, ack, events, Reply::None)?;
        }
    }
    Ok(())
}

/// The most recent session end at or before now (`None` when DAY expiry is off).
fn last_session_end(at: Option<NaiveTime>) -> Option<Timestamp> {
    let at = at?;
    let now = Utc::now();
    let today = now.date_naive().and_time(at).and_utc();
    let last = if today <= now {
        today
    } else {
        today - chrono::Duration::days(1)
    };
    Some(Timestamp::from_nanos(last.timestamp_nanos_opt()?))
}

fn next_session_end(at: Option<NaiveTime>) -> Option<Duration> {
    let at = at?;
    let now = Utc::now();
    let today = now.date_naive().and_time(at).and_utc();
    let next = if today > now {
        today
    } else {
        today + chrono::Duration::days(1)
    };
    (next - now).to_std().ok()
}

/// Decide one command. Errors returned from here are fatal for the engine (journal gone);
/// the caller's own mistakes go back to the caller.
fn handle(
    core: &mut TradingCore,
    decided: &mut Decisions,
    cmd: Command,
    md_applied: u64,
    gauges: &EngineGauges,
) -> Result<(), EngineError> {
    let now = Timestamp::now();
    match cmd {
        Command::Submit { req, reply, at } => match decide(core, req, now, at, gauges) {
            // A repeat of an earlier order has no events: it is answered once what was
            // decided before it (that order included) is durable.
            Ok((outcome, events)) => decided.push(events, Reply::Submit(reply, outcome)),
            Err(e) if e.is_fatal() => {
                let _ = reply.send(Err(EngineError::Stopped));
                return Err(e);
            }
            Err(e) => {
                let _ = reply.send(Err(e));
            }
        },
        Command::Cancel { account, id, reply } => match core.cancel(&account, id, now) {
            Ok((order, event)) => decided.push(vec![event], Reply::Cancel(reply, order)),
            Err(e) if e.is_fatal() => {
                let _ = reply.send(Err(EngineError::Stopped));
                return Err(e);
            }
            Err(e) => {
                let _ = reply.send(Err(e));
            }
        },
        Command::Risk { change, by, reply } => match core.change_risk(change, &by, now) {
            Ok(event) => decided.push(vec![event.clone()], Reply::Risk(reply, event)),
            Err(e) if e.is_fatal() => {
                let _ = reply.send(Err(EngineError::Stopped));
                return Err(e);
            }
            Err(e) => {
                let _ = reply.send(Err(e));
            }
        },
        Command::Query { query, reply } => decided.push(
            Vec::new(),
            Reply::Query(reply, answer(core, query, md_applied)),
        ),
    }
    Ok(())
}

fn answer(core: &TradingCore, query: Query, md_applied: u64) -> QueryAnswer {
    match query {
        Query::RiskLimits => QueryAnswer::RiskLimits(Box::new(core.risk().limits().clone())),
        Query::MarketDataApplied => QueryAnswer::MarketDataApplied(md_applied),
    }
}

/// The core's decision on an order, with its OMS and risk-check latencies recorded.
fn decide(
    core: &mut TradingCore,
    req: NewOrder,
    now: Timestamp,
    at: Instant,
    gauges: &EngineGauges,
) -> Result<(Outcome, Vec<Event>), EngineError> {
    let mut risk = RiskTimer {
        started: None,
        histogram: &gauges.risk_check,
    };
    let decided = core.submit_timed(req, now, &mut risk);
    gauges.oms_decision.observe(at.elapsed().as_secs_f64());
    decided
}

/// Times the core's risk check with the wall clock the core itself does not read.
struct RiskTimer<'a> {
    started: Option<Instant>,
    histogram: &'a AtomicHistogram,
}

impl crate::Stopwatch for RiskTimer<'_> {
    fn start(&mut self) {
        self.started = Some(Instant::now());
    }

    fn stop(&mut self) {
        if let Some(t) = self.started.take() {
            self.histogram.observe(t.elapsed().as_secs_f64());
        }
    }
}

/// Queue `events` for the journal now (keeping decision order) and let the acknowledger answer
/// `reply` once they are durable.
fn journal_then(
    journal: &Journal,
    ack: &AckQueue,
    events: Vec<Event>,
    reply: Reply,
) -> Result<(), EngineError> {
    let mut decided = Decisions::default();
    decided.push(events, reply);
    decided.send(journal, ack)
}

/// Answers callers in journal order as their batches become durable, and streams the events.
async fn acknowledge(
    mut rx: mpsc::UnboundedReceiver<Pending>,
    reports: broadcast::Sender<ExecutionReport>,
    shutdown: CancellationToken,
) {
    while let Some((durable, events, replies)) = rx.recv().await {
        match durable.await {
            Ok(range) => {
                for (seq, event) in range.zip(events) {
                    let _ = reports.send(ExecutionReport { seq, event });
                }
                for reply in replies {
                    answer_durable(reply);
                }
            }
            Err(e) => {
                // The core already applied these events but they are not on disk: stop taking
                // orders rather than diverge from the journal.
                tracing::error!(error = %e, "journal append failed; stopping the engine");
                for reply in replies {
                    answer_failed(reply);
                }
                shutdown.cancel();
            }
        }
    }
}

fn answer_durable(reply: Reply) {
    match reply {
        Reply::Submit(tx, outcome) => drop(tx.send(Ok(outcome))),
        Reply::Cancel(tx, order) => drop(tx.send(Ok(order))),
        Reply::Risk(tx, event) => drop(tx.send(Ok(event))),
        Reply::Query(tx, answer) => drop(tx.send(answer)),
        Reply::Reserved(tx, r) => drop(tx.send(r)),
        Reply::None => {}
    }
}

fn answer_failed(reply: Reply) {
    let err = || EngineError::Journal(JournalError::Closed);
    match reply {
        Reply::Submit(tx, _) => drop(tx.send(Err(err()))),
        Reply::Cancel(tx, _) => drop(tx.send(Err(err()))),
        Reply::Risk(tx, _) => drop(tx.send(Err(err()))),
        Reply::Query(..) | Reply::Reserved(..) | Reply::None => {}
    }
}
