//! The pure trading core: no I/O, no clock, deterministic.

use journal::Delivery;
use model::{AccountId, Event, Order, OrderId, Timestamp};
use oms::{NewOrder, Oms, Retention, Submit};
use positions::Positions;
use risk::{LimitsChange, RiskContext, RiskEngine, RiskLimits};
use serde::{Deserialize, Serialize};
use venue::{PaperVenue, VenueConfig};

use crate::EngineError;

/// Limits, venue behaviour and how much finished history stays in memory; all from the config
/// file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CoreConfig {
    pub risk: RiskLimits,
    pub venue: VenueConfig,
    pub retention: Retention,
}

/// What happened to a submitted order.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Accepted by risk and the venue; the order as it stands after any immediate fills.
    Accepted(Order),
    /// Refused by risk or the venue; `code` is the stable reason.
    Rejected {
        order: Order,
        code: String,
        message: String,
    },
    /// The account already sent this client order id: the original order, no new one.
    Duplicate(Order),
    /// The account sent this client order id for this order, which is no longer in memory:
    /// the caller answers with the stored order (see [`oms::Submit::DuplicateOf`]).
    DuplicateOf(OrderId),
}

impl Outcome {
    /// The order, unless only its id is known ([`Outcome::DuplicateOf`]).
    pub fn order(&self) -> Option<&Order> {
        match self {
            Outcome::Accepted(o) | Outcome::Duplicate(o) => Some(o),
            Outcome::Rejected { order, .. } => Some(order),
            Outcome::DuplicateOf(_) => None,
        }
    }
}

/// Told when a timed step of the core starts and stops (the core itself reads no clock).
pub trait Stopwatch {
    fn start(&mut self);
    fn stop(&mut self);
}

/// Nothing timed.
impl Stopwatch for () {
    fn start(&mut self) {}
    fn stop(&mut self) {}
}

/// OMS, risk, paper venue and positions, kept consistent by folding the same events.
///
/// Two ways in: `replay` for journaled events (restores state, emits nothing) and the command
/// methods (`submit`, `cancel`, `on_market_data`, ...) which decide, apply their own events and
/// return them for the journal. The caller must journal returned events in order.
///
/// Serializable: a snapshot of the core plus a replay of the journal after it restores the same
/// state as a replay from the beginning (the engine restarts that way).
#[derive(Clone, Serialize, Deserialize)]
pub struct TradingCore {
    oms: Oms,
    risk: RiskEngine,
    venue: PaperVenue,
    positions: Positions,
    /// The highest order and fill ids reserved in the journal (`ids_reserved`).
    #[serde(default)]
    reserved: Reserved,
}

/// Ids the journal says may be in use: everything up to these.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reserved {
    pub orders_through: u64,
    pub fills_through: u64,
}

impl TradingCore {
    pub fn new(config: CoreConfig) -> Result<Self, EngineError> {
        Ok(TradingCore {
            oms: Oms::with_retention(config.retention),
            risk: RiskEngine::new(config.risk)?,
            venue: PaperVenue::new(config.venue)?,
            positions: Positions::new(),
            reserved: Reserved::default(),
        })
    }

    pub fn oms(&self) -> &Oms {
        &self.oms
    }
    pub fn positions(&self) -> &Positions {
        &self.positions
    }
    pub fn venue(&self) -> &PaperVenue {
        &self.venue
    }
    pub fn risk(&self) -> &RiskEngine {
        &self.risk
    }

    /// The ids reserved so far.
    pub fn reserved(&self) -> Reserved {
        self.reserved
    }

    /// The next order id and fill id this core would hand out.
    pub fn next_ids(&self) -> (u64, u64) {
        (self.oms.last_order_id() + 1, self.venue.next_fill_id().0)
    }

    /// At a start, before deciding anything: continue after every id reserved before, since
    /// a crash may have taken back orders and fills that used them.
    pub fn skip_reserved_ids(&mut self) {
        self.oms
            .skip_order_ids_through(self.reserved.orders_through);
        let next_fill = self
            .venue
            .next_fill_id()
            .0
            .max(self.reserved.fills_through + 1);
        self.venue.set_next_fill_id(model::FillId(next_fill));
    }

    /// An `ids_reserved` event extending the reservation by `orders` order ids and `fills` fill
    /// ids past what is in use, applied to this core (the caller journals it).
    pub fn reserve_ids(&mut self, orders: u64, fills: u64, ts: Timestamp) -> Event {
        let (next_order, next_fill) = self.next_ids();
        let event = Event::IdsReserved {
            orders_through: self.reserved.orders_through.max(next_order - 1) + orders,
            fills_through: self.reserved.fills_through.max(next_fill.saturating_sub(1)) + fills,
            ts,
        };
        if let Event::IdsReserved {
            orders_through,
            fills_through,
            ..
        } = event
        {
            self.reserved = Reserved {
                orders_through,
                fills_through,
            };
        }
        event
    }

    /// Restore state from one journaled event. The venue re-reads it with `apply` (never
    /// `on_order`/`on_market_data`), so no fill is ever produced twice.
    pub fn replay(&mut self, event: &Event) -> Result<(), EngineError> {
        if let Event::IdsReserved {
            orders_through,
            fills_through,
            ..
        } = event
        {
            self.reserved.orders_through = self.reserved.orders_through.max(*orders_through);
            self.reserved.fills_through = self.reserved.fills_through.max(*fills_through);
        }
        self.oms.apply(event)?;
        self.risk.apply(event)?;
        self.venue.apply(event);
        self.positions.on_event(event)?;
        Ok(())
    }

    /// Fold an event this core just decided (the venue already holds its effect).
    fn fold(&mut self, event: &Event) -> Result<(), EngineError> {
        self.oms.apply(event)?;
        self.risk.apply(event)?;
        self.positions.on_event(event)?;
        Ok(())
    }

    /// Risk check, then the venue: returns the outcome and every event to journal, in order
    /// (`order_submitted`, then `order_accepted` / `order_rejected`, fills, expiry).
    pub fn submit(
        &mut self,
        req: NewOrder,
        ts: Timestamp,
    ) -> Result<(Outcome, Vec<Event>), EngineError> {
        self.submit_timed(req, ts, &mut ())
    }

    /// [`TradingCore::submit`], telling `risk` when the risk check starts and stops (the shell
    /// times it; the core reads no clock).
    pub fn submit_timed(
        &mut self,
        req: NewOrder,
        ts: Timestamp,
        risk: &mut impl Stopwatch,
    ) -> Result<(Outcome, Vec<Event>), EngineError> {
        let submitted = match self.oms.submit(req, ts)? {
            Submit::Duplicate(order) => return Ok((Outcome::Duplicate(order), Vec::new())),
            Submit::DuplicateOf(id) => return Ok((Outcome::DuplicateOf(id), Vec::new())),
            Submit::New(event) => event,
        };
        let Event::OrderSubmitted { order } = &submitted else {
            unreachable!("Oms::submit returns order_submitted for a new order");
        };
        let order = order.clone();
        risk.start();
        let verdict = self.risk_check(&order, ts);
        risk.stop();
        // From here on state changes: a failure can no longer be handed back to the caller as
        // "nothing happened", so it is fatal for the engine.
        let id = order.order_id;
        let diverged = |e: EngineError| EngineError::Diverged(format!("order {id}: {e}"));
        self.oms.apply(&submitted).map_err(|e| diverged(e.into()))?;
        let mut events = vec![submitted];
        match verdict {
            Err(reject) => {
                let rejected = self
                    .oms
                    .reject(id, reject.code.as_str(), &reject.message, ts)
                    .map_err(|e| diverged(e.into()))?;
                self.fold(&rejected).map_err(diverged)?;
                events.push(rejected);
            }
            Ok(()) => {
                for event in self.venue.on_order(&order, ts) {
                    self.fold(&event).map_err(diverged)?;
                    events.push(event);
                }
            }
        }
        let current = self.oms.order(order.order_id).cloned().unwrap_or(order);
        let outcome = match events.iter().find_map(|e| match e {
            Event::OrderRejected { code, message, .. } => Some((code.clone(), message.clone())),
            _ => None,
        }) {
            Some((code, message)) => Outcome::Rejected {
                order: current,
                code,
                message,
            },
            None => Outcome::Accepted(current),
        };
        Ok((outcome, events))
    }

    fn risk_check(&mut self, order: &Order, ts: Timestamp) -> Result<(), risk::RiskReject> {
        let market = self.venue.market(&order.instrument);
        let account = &order.account;
        let resting: Vec<&Order> = self
            .oms
            .resting_orders(account, &order.instrument)
            .collect();
        let position = self
            .positions
            .position(account, &order.instrument)
            .map(|p| p.net_qty)
            .unwrap_or_default();
        let day = ts.to_datetime().date_naive();
        let (_, unrealized) = self.positions.account_pnl(account);
        let ctx = RiskContext {
            mid: market.and_then(|m| m.mid()),
            best_bid: market.and_then(|m| m.best_bid()).map(|l| l.price),
            best_ask: market.and_then(|m| m.best_ask()).map(|l| l.price),
            position,
            gross_exposure: self.positions.gross_exposure(account),
            open_orders: self.oms.open_order_count(account),
            resting_orders: &resting,
            daily_pnl: self.positions.account_realized_on(account, day).net() + unrealized,
        };
        self.risk.check(order, &ctx)
    }

    /// Cancel an open order of `account`; returns the order after the cancel and the event.
    pub fn cancel(
        &mut self,
        account: &AccountId,
        id: OrderId,
        ts: Timestamp,
    ) -> Result<(Order, Event), EngineError> {
        let event = self.oms.cancel(account, id, ts)?;
        self.venue.cancel(id);
        self.fold(&event)
            .map_err(|e| EngineError::Diverged(format!("cancel of order {id}: {e}")))?;
        let order = self
            .oms
            .order(id)
            .cloned()
            .ok_or(EngineError::Oms(oms::OmsError::OrderNotFound(id)))?;
        Ok((order, event))
    }

    /// A journaled market-data event: update the book and marks, fill resting orders it makes
    /// executable. Returns the new events to journal.
    pub fn on_market_data(&mut self, event: &Event) -> Result<Vec<Event>, EngineError> {
        self.positions.on_event(event)?;
        let out = self.venue.on_market_data(event);
        for e in &out {
            self.fold(e)?;
        }
        Ok(out)
    }

    /// DAY orders at the end of the session.
    pub fn expire_day_orders(&mut self, ts: Timestamp) -> Result<Vec<Event>, EngineError> {
        self.expire_day_orders_of(ts, ts)
    }

    /// DAY orders created at or before `session_end` (a session that ended while the platform
    /// was down), expired as of `ts`.
    pub fn expire_day_orders_of(
        &mut self,
        session_end: Timestamp,
        ts: Timestamp,
    ) -> Result<Vec<Event>, EngineError> {
        let events = self.oms.expire_day_orders_of(session_end, ts);
        for e in &events {
            if let Event::OrderExpired { order_id, .. } = e {
                self.venue.cancel(*order_id);
            }
            self.fold(e)?;
        }
        Ok(events)
    }

    /// A run-time risk-limit change or kill-switch action; returns the event to journal.
    pub fn change_risk(
        &mut self,
        change: LimitsChange,
        by: &str,
        ts: Timestamp,
    ) -> Result<Event, EngineError> {
        let event = self.risk.update_limits(change, by, ts)?;
        self.fold(&event)?;
        Ok(event)
    }
}

/// The core as a journal consumer: the engine's snapshotter folds the durable stream with
/// [`TradingCore::replay`] (never deciding anything) and writes the snapshots a restart loads.
impl runtime::Consumer for TradingCore {
    type Error = EngineError;

    fn apply(&mut self, batch: &[Delivery], _out: &mut Vec<Event>) -> Result<(), EngineError> {
        for d in batch {
            self.replay(&d.event).map_err(|e| EngineError::Replay {
                seq: d.seq,
                reason: e.to_string(),
            })?;
        }
        Ok(())
    }
}

impl runtime::Snapshot for TradingCore {
    /// OMS, risk, venue and positions each version their own layout; this one moves with any.
    const STATE_VERSION: u32 = 1_000_000 * oms::Oms::SNAPSHOT_VERSION
        + 10_000 * risk::SNAPSHOT_VERSION
        + 100 * venue::SNAPSHOT_VERSION
        + positions::SNAPSHOT_VERSION;
}
