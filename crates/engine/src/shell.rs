//! The imperative shell: one task owns the [`TradingCore`]; callers talk to it through a channel.
//!
//! Why one task: the core's state changes only in event order, which keeps OMS, risk, venue and
//! positions consistent without locks (the LMAX design). The task never waits for the disk: it
//! queues each decision's events for the next group commit and hands the caller's reply to an
//! acknowledger task, which answers once the events are durable. So "2xx" always means "on disk".

use std::ops::RangeInclusive;
use std::time::Duration;

use chrono::{NaiveTime, Utc};
use journal::{InProcessBus, Journal, JournalError, StartAt, Subscription};
use model::{AccountId, Event, Fill, Order, OrderId, Timestamp};
use oms::{NewOrder, OrderFilter};
use positions::Position;
use risk::{LimitsChange, RiskLimits};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{CoreConfig, EngineError, Outcome, TradingCore};

/// Engine settings (the `engine` config section).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EngineConfig {
    #[serde(flatten)]
    pub core: CoreConfig,
    /// UTC time at which DAY orders expire (crypto trades around the clock, so the "session"
    /// is a convention). `null` disables expiry.
    pub day_session_end_utc: Option<NaiveTime>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            core: CoreConfig::default(),
            day_session_end_utc: NaiveTime::from_hms_opt(0, 0, 0),
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

/// Read-only questions, answered from the engine's current state.
#[derive(Debug, Clone)]
pub enum Query {
    /// One order; `account: Some` restricts it to that account's orders.
    Order {
        account: Option<AccountId>,
        id: OrderId,
    },
    Orders(OrderFilter),
    Fills {
        account: Option<AccountId>,
        symbol: Option<String>,
        since: Option<Timestamp>,
    },
    Positions {
        account: Option<AccountId>,
    },
    RiskLimits,
}

#[derive(Debug, Clone)]
pub enum QueryAnswer {
    Order(Option<Order>),
    Orders(Vec<Order>),
    Fills(Vec<Fill>),
    Positions(Vec<Position>),
    RiskLimits(Box<RiskLimits>),
}

enum Command {
    Submit {
        req: NewOrder,
        reply: oneshot::Sender<Result<Outcome, EngineError>>,
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

/// A pending reply, answered by the acknowledger once its events are durable.
enum Reply {
    Submit(oneshot::Sender<Result<Outcome, EngineError>>, Outcome),
    Cancel(oneshot::Sender<Result<Order, EngineError>>, Order),
    Risk(oneshot::Sender<Result<Event, EngineError>>, Event),
    None,
}

type Durable =
    std::pin::Pin<Box<dyn Future<Output = Result<RangeInclusive<u64>, JournalError>> + Send>>;

/// Handle to the running engine. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    tx: mpsc::Sender<Command>,
    reports: broadcast::Sender<ExecutionReport>,
}

const COMMAND_QUEUE: usize = 65_536;
const REPLAY_BATCH: usize = 10_000;

impl Engine {
    /// Rebuild the core from the journal, then start the engine task. Market data is consumed
    /// from the journal (after it is durable) starting right after the replayed history.
    pub async fn start(
        journal: Journal,
        config: EngineConfig,
        shutdown: CancellationToken,
    ) -> Result<(Engine, JoinHandle<Result<(), EngineError>>), EngineError> {
        let mut core = TradingCore::new(config.core.clone())?;
        // Replay up to what is in the journal now; the bus subscription below carries on from
        // there, so a fast feed cannot keep the replay from ever finishing.
        let replay_to = journal.last_seq();
        let mut next = 1;
        while next <= replay_to {
            let limit = REPLAY_BATCH.min((replay_to - next + 1) as usize);
            let records = journal.read_from(next, limit)?;
            let Some(last) = records.last().map(|r| r.seq) else {
                break;
            };
            for r in &records {
                core.replay(&r.event).map_err(|e| EngineError::Replay {
                    seq: r.seq,
                    reason: e.to_string(),
                })?;
            }
            next = last + 1;
        }
        tracing::info!(
            replayed_to = next - 1,
            orders = core.oms().len(),
            "trading core rebuilt from the journal"
        );
        let bus = InProcessBus::new(journal.clone());
        let market = forward_market_data(bus.subscribe_ephemeral("md.>", StartAt::Sequence(next))?);
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        let (reports, _) = broadcast::channel(16_384);
        let (ack_tx, ack_rx) = mpsc::unbounded_channel();
        let acker = tokio::spawn(acknowledge(ack_rx, reports.clone(), shutdown.clone()));
        let task = tokio::spawn(run(
            core, journal, market, rx, ack_tx, acker, config, shutdown,
        ));
        Ok((Engine { tx, reports }, task))
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
        self.call(|reply| Command::Submit { req, reply }).await?
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
    mut market: mpsc::Receiver<Result<Event, JournalError>>,
    mut rx: mpsc::Receiver<Command>,
    ack: mpsc::UnboundedSender<(Durable, Vec<Event>, Reply)>,
    acker: JoinHandle<()>,
    config: EngineConfig,
    shutdown: CancellationToken,
) -> Result<(), EngineError> {
    // An absolute deadline: the select below is re-entered on every command, so a relative
    // sleep rebuilt each time would never fire.
    let mut session_end =
        next_session_end(config.day_session_end_utc).map(|d| tokio::time::Instant::now() + d);
    let result = loop {
        let sleep = async {
            match session_end {
                Some(deadline) => tokio::time::sleep_until(deadline).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => break Ok(()),
            cmd = rx.recv() => {
                let Some(cmd) = cmd else { break Ok(()) };
                if let Err(e) = handle(&mut core, &journal, &ack, cmd) {
                    break Err(e);
                }
            }
            event = market.recv() => {
                let event = match event {
                    Some(Ok(e)) => e,
                    None | Some(Err(JournalError::Closed)) => break Ok(()),
                    Some(Err(e)) => break Err(e.into()),
                };
                match core.on_market_data(&event) {
                    Ok(events) if events.is_empty() => {}
                    Ok(events) => {
                        if let Err(e) = journal_then(&journal, &ack, events, Reply::None) {
                            break Err(e);
                        }
                    }
                    Err(e) => break Err(e),
                }
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

/// Market data reaches the engine through a channel fed by its own task, so that the engine's
/// `select!` only ever waits on cancel-safe channel receives.
fn forward_market_data(
    mut sub: journal::InProcessSubscription,
) -> mpsc::Receiver<Result<Event, JournalError>> {
    let (tx, rx) = mpsc::channel(8_192);
    tokio::spawn(async move {
        loop {
            let item = sub.next().await.map(|d| d.event);
            let end = item.is_err();
            if tx.send(item).await.is_err() || end {
                return;
            }
        }
    });
    rx
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
    journal: &Journal,
    ack: &mpsc::UnboundedSender<(Durable, Vec<Event>, Reply)>,
    cmd: Command,
) -> Result<(), EngineError> {
    let now = Timestamp::now();
    match cmd {
        Command::Submit { req, reply } => match core.submit(req, now) {
            Ok((outcome, events)) if events.is_empty() => {
                let _ = reply.send(Ok(outcome));
            }
            Ok((outcome, events)) => {
                journal_then(journal, ack, events, Reply::Submit(reply, outcome))?
            }
            Err(e) if e.is_fatal() => {
                let _ = reply.send(Err(EngineError::Stopped));
                return Err(e);
            }
            Err(e) => {
                let _ = reply.send(Err(e));
            }
        },
        Command::Cancel { account, id, reply } => match core.cancel(&account, id, now) {
            Ok((order, event)) => {
                journal_then(journal, ack, vec![event], Reply::Cancel(reply, order))?
            }
            Err(e) if e.is_fatal() => {
                let _ = reply.send(Err(EngineError::Stopped));
                return Err(e);
            }
            Err(e) => {
                let _ = reply.send(Err(e));
            }
        },
        Command::Risk { change, by, reply } => match core.change_risk(change, &by, now) {
            Ok(event) => {
                journal_then(journal, ack, vec![event.clone()], Reply::Risk(reply, event))?
            }
            Err(e) if e.is_fatal() => {
                let _ = reply.send(Err(EngineError::Stopped));
                return Err(e);
            }
            Err(e) => {
                let _ = reply.send(Err(e));
            }
        },
        Command::Query { query, reply } => {
            let _ = reply.send(answer(core, query));
        }
    }
    Ok(())
}

fn answer(core: &TradingCore, query: Query) -> QueryAnswer {
    match query {
        Query::Order { account, id } => QueryAnswer::Order(
            match &account {
                Some(a) => core.oms().order_for_account(a, id),
                None => core.oms().order(id),
            }
            .cloned(),
        ),
        Query::Orders(filter) => {
            QueryAnswer::Orders(core.oms().orders(&filter).into_iter().cloned().collect())
        }
        Query::Fills {
            account,
            symbol,
            since,
        } => {
            let filter = OrderFilter {
                account,
                ..OrderFilter::default()
            };
            let mut fills: Vec<Fill> = core
                .oms()
                .orders(&filter)
                .into_iter()
                .filter(|o| {
                    symbol
                        .as_deref()
                        .is_none_or(|s| o.instrument.symbol.as_str() == s)
                })
                .flat_map(|o| {
                    core.oms()
                        .fills(o.order_id)
                        .unwrap_or_default()
                        .iter()
                        .cloned()
                })
                .filter(|f| since.is_none_or(|t| f.ts >= t))
                .collect();
            fills.sort_by_key(|f| (f.ts, f.fill_id));
            QueryAnswer::Fills(fills)
        }
        Query::Positions { account } => QueryAnswer::Positions(match &account {
            Some(a) => core.positions().account_positions(a).cloned().collect(),
            None => core.positions().all().cloned().collect(),
        }),
        Query::RiskLimits => QueryAnswer::RiskLimits(Box::new(core.risk().limits().clone())),
    }
}

/// Queue `events` for the journal now (keeping decision order) and let the acknowledger answer
/// `reply` once they are durable.
fn journal_then(
    journal: &Journal,
    ack: &mpsc::UnboundedSender<(Durable, Vec<Event>, Reply)>,
    events: Vec<Event>,
    reply: Reply,
) -> Result<(), EngineError> {
    let durable = journal.enqueue_batch(events.clone())?;
    ack.send((Box::pin(durable), events, reply))
        .map_err(|_| EngineError::Stopped)
}

/// Answers callers in journal order as their batches become durable, and streams the events.
async fn acknowledge(
    mut rx: mpsc::UnboundedReceiver<(Durable, Vec<Event>, Reply)>,
    reports: broadcast::Sender<ExecutionReport>,
    shutdown: CancellationToken,
) {
    while let Some((durable, events, reply)) = rx.recv().await {
        match durable.await {
            Ok(range) => {
                for (seq, event) in range.zip(events) {
                    let _ = reports.send(ExecutionReport { seq, event });
                }
                match reply {
                    Reply::Submit(tx, outcome) => drop(tx.send(Ok(outcome))),
                    Reply::Cancel(tx, order) => drop(tx.send(Ok(order))),
                    Reply::Risk(tx, event) => drop(tx.send(Ok(event))),
                    Reply::None => {}
                }
            }
            Err(e) => {
                // The core already applied these events but they are not on disk: stop taking
                // orders rather than diverge from the journal.
                tracing::error!(error = %e, "journal append failed; stopping the engine");
                let err = || EngineError::Journal(JournalError::Closed);
                match reply {
                    Reply::Submit(tx, _) => drop(tx.send(Err(err()))),
                    Reply::Cancel(tx, _) => drop(tx.send(Err(err()))),
                    Reply::Risk(tx, _) => drop(tx.send(Err(err()))),
                    Reply::None => {}
                }
                shutdown.cancel();
            }
        }
    }
}
