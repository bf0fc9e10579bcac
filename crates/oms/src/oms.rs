use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use model::{
    AccountId, ClientOrderId, Decimal, Event, EventKind, Fill, InstrumentId, Order, OrderId,
    OrderStatus, OrderType, Price, Quantity, Side, TimeInForce, Timestamp,
};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::kind_name;
use crate::{NewOrder, OmsError};

pub use model::AVG_PRICE_DP;

/// Reason recorded on a cancel the account asked for.
pub const CLIENT_CANCEL_REASON: &str = "canceled by client";
/// Reason recorded when DAY orders expire at the session end.
pub const SESSION_END_REASON: &str = "day order expired at session end";

/// What [`Oms::submit`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submit {
    /// The account already used this client order id: the original order (current state) is
    /// returned and nothing is to be journaled. Idempotent order entry.
    Duplicate(Order),
    /// The client order id is remembered for this order, which has left memory: the caller
    /// answers with the stored order after checking it really carries the same account and
    /// client order id (the memory keeps a 64-bit digest of them, not the strings); if it does
    /// not, the caller resubmits with [`NewOrder::not_a_duplicate_of`] set to this id.
    DuplicateOf(OrderId),
    /// A new order: journal this `Event::OrderSubmitted` and then [`Oms::apply`] it.
    New(Event),
}

/// How long finished orders and their client order ids stay in memory. The OMS holds what is
/// live (open orders) plus this bounded recent past; the full history is in the journal and the
/// blotter (the read store), so memory stays flat however long the platform runs.
///
/// Both windows are measured in event time (the timestamps of the events applied), so a replay
/// of the same journal evicts exactly what the live engine evicted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Retention {
    /// A terminal order (filled, canceled, rejected, expired) leaves memory this many seconds
    /// after it ended...
    pub terminal_order_secs: u64,
    /// ...or earlier, when more than this many terminal orders are held.
    pub max_terminal_orders: usize,
    /// A client order id is remembered for idempotent order entry this many seconds after its
    /// order ended (open orders' ids are always remembered)...
    pub client_order_id_secs: u64,
    /// ...or until more than this many ended orders' ids are remembered.
    pub max_client_order_ids: usize,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            terminal_order_secs: 10,
            max_terminal_orders: 10_000,
            // The blotter's durable index answers older repeats (24 h by default): memory only
            // has to cover the moment until the blotter holds an order, which is milliseconds.
            client_order_id_secs: 60,
            max_client_order_ids: 200_000,
        }
    }
}

/// One order with the exact numerator of its average fill price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    order: Order,
    /// Exact sum of price x quantity over the order's fills.
    notional: Decimal,
}

/// The validated effect of one event, computed from `&self` before anything changes, so a
/// refused event leaves the state untouched (all-or-nothing).
enum Change<'e> {
    Ignore,
    Submit(&'e Order),
    Status {
        order_id: OrderId,
        status: OrderStatus,
        ts: Timestamp,
    },
    Fill {
        fill: &'e Fill,
        filled: Quantity,
        notional: Decimal,
        avg: Price,
        status: OrderStatus,
    },
}

/// Whether the order's client order id is one the OMS generated (`o-<order_id>`, or with a
/// `-<n>` suffix): those are not idempotency keys (the client never sent them), so they are not
/// remembered, which keeps memory to the ids clients actually chose.
fn is_generated(order: &Order) -> bool {
    let base = format!("o-{}", order.order_id);
    let c = order.client_order_id.as_str();
    c == base
        || c.strip_prefix(&base)
            .is_some_and(|rest| rest.starts_with('-'))
}

/// A 64-bit digest of (account, client order id): what idempotent order entry remembers, so a
/// remembered id costs a few bytes instead of two strings. FNV-1a, fixed forever because
/// snapshots store these digests.
fn client_key(account: &AccountId, client_order_id: &ClientOrderId) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = OFFSET;
    let bytes = account
        .as_str()
        .bytes()
        .chain(std::iter::once(0xff))
        .chain(client_order_id.as_str().bytes());
    for b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(PRIME);
    }
    h
}

/// The live orders of the platform and a bounded recent past ([`Retention`]).
///
/// Event sourced. Commands (`submit`, `accept`, `reject`, `cancel`, `expire`,
/// `expire_day_orders`) take `&self` and return the [`Event`] to journal; they change nothing.
/// [`Oms::apply`] is the only method that changes state, and it validates every transition.
/// The caller journals the event, then applies it; replaying the journal into
/// [`Oms::default`] rebuilds exactly the same state (restart), and so does restoring a
/// serialized `Oms` (a snapshot) and replaying the events after it.
///
/// Consequence of `submit` being `&self`: apply each `OrderSubmitted` before the next
/// `submit`, otherwise two submits propose the same order id and the second apply fails with
/// `order_id_not_increasing` (never a silent double order).
///
/// Lifecycle:
/// `pending_new -> accepted -> partially_filled -> filled`; any open status -> `canceled` or
/// `expired`; `pending_new | accepted` (nothing filled) -> `rejected`. A fill needs an accepted
/// order. Terminal statuses never change; touching one yields `order_already_<status>` while
/// the order is retained, `order_not_found` after it left memory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Oms {
    retention: Retention,
    /// Open orders and retained terminal ones.
    orders: BTreeMap<OrderId, Entry>,
    /// Open (non-terminal) orders per account. Empty sets are removed.
    open: HashMap<AccountId, BTreeSet<OrderId>>,
    /// Open orders per account and instrument (self-trade checks). Empty entries are removed.
    open_by_instrument: HashMap<AccountId, HashMap<InstrumentId, BTreeSet<OrderId>>>,
    /// Terminal orders still in memory, oldest end first, with when they ended.
    ended: VecDeque<(OrderId, Timestamp)>,
    /// Remembered client order ids: digest -> order (see [`client_key`]).
    client_ids: BTreeMap<u64, OrderId>,
    /// Client order ids of ended orders, oldest end first: they are forgotten in this order.
    client_ids_ended: VecDeque<(u64, OrderId, Timestamp)>,
    last_order_id: u64,
    /// Fill ids increase with every fill the venue makes: a fill at or below this one is a
    /// duplicate (a set of every fill id ever seen would grow without bound).
    last_fill_id: u64,
}

/// What a snapshot holds: the indexes are rebuilt from the orders on restore. The remembered
/// ids are plain number arrays (times in ns): hundreds of thousands of them are common, and a
/// JSON object per entry would make the engine's snapshot several times larger and slower.
#[derive(Serialize)]
struct StateRef<'a> {
    retention: &'a Retention,
    orders: Vec<&'a Entry>,
    ended: Vec<(u64, i64)>,
    client_ids: Vec<(u64, u64)>,
    client_ids_ended: Vec<(u64, u64, i64)>,
    last_order_id: u64,
    last_fill_id: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct State {
    retention: Retention,
    orders: Vec<Entry>,
    ended: Vec<(u64, i64)>,
    client_ids: Vec<(u64, u64)>,
    client_ids_ended: Vec<(u64, u64, i64)>,
    last_order_id: u64,
    last_fill_id: u64,
}

impl Serialize for Oms {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        StateRef {
            retention: &self.retention,
            orders: self.orders.values().collect(),
            ended: self
                .ended
                .iter()
                .map(|(id, t)| (id.0, t.as_nanos()))
                .collect(),
            client_ids: self.client_ids.iter().map(|(k, id)| (*k, id.0)).collect(),
            client_ids_ended: self
                .client_ids_ended
                .iter()
                .map(|(k, id, t)| (*k, id.0, t.as_nanos()))
                .collect(),
            last_order_id: self.last_order_id,
            last_fill_id: self.last_fill_id,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Oms {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let st = State::deserialize(d)?;
        let mut oms = Oms {
            retention: st.retention,
            orders: BTreeMap::new(),
            open: HashMap::new(),
            open_by_instrument: HashMap::new(),
            ended: st
                .ended
                .into_iter()
                .map(|(id, t)| (OrderId(id), Timestamp::from_nanos(t)))
                .collect(),
            client_ids: st
                .client_ids
                .into_iter()
                .map(|(k, id)| (k, OrderId(id)))
                .collect(),
            client_ids_ended: st
                .client_ids_ended
                .into_iter()
                .map(|(k, id, t)| (k, OrderId(id), Timestamp::from_nanos(t)))
                .collect(),
            last_order_id: st.last_order_id,
            last_fill_id: st.last_fill_id,
        };
        for e in st.orders {
            if e.order.status.is_open() {
                oms.index_open(&e.order);
            }
            oms.orders.insert(e.order.order_id, e);
        }
        Ok(oms)
    }
}

impl Oms {
    /// The layout version of a serialized `Oms` (snapshots of another version are not loaded).
    pub const SNAPSHOT_VERSION: u32 = 2;

    pub fn new() -> Oms {
        Oms::default()
    }

    pub fn with_retention(retention: Retention) -> Oms {
        Oms {
            retention,
            ..Oms::default()
        }
    }

    pub fn retention(&self) -> &Retention {
        &self.retention
    }

    /// Rebuild from journaled events (restart). Market data and config events are skipped;
    /// the first invalid event stops the replay with its error.
    pub fn replay<'a>(events: impl IntoIterator<Item = &'a Event>) -> Result<Oms, OmsError> {
        let mut oms = Oms::new();
        for e in events {
            oms.apply(e)?;
        }
        Ok(oms)
    }

    // --- commands ---------------------------------------------------------------------------

    /// Enter an order. A repeated client order id of the same account returns
    /// [`Submit::Duplicate`] with the original order. Otherwise returns the `OrderSubmitted`
    /// event for a pending_new order with the next order id; a missing client order id
    /// becomes `o-<order_id>` (`o-<order_id>-<n>` if the account already used that string).
    pub fn submit(&self, req: NewOrder, ts: Timestamp) -> Result<Submit, OmsError> {
        req.validate()?;
        if let Some(coid) = &req.client_order_id {
            match self.remembered(&req.account, coid) {
                Remembered::No => {}
                Remembered::Held(order) => return Ok(Submit::Duplicate(order.clone())),
                // The caller checked the stored order: another id shares the digest.
                Remembered::Evicted(id) if req.not_a_duplicate_of == Some(id) => {}
                Remembered::Evicted(id) => return Ok(Submit::DuplicateOf(id)),
            }
        }
        let order_id = OrderId(self.last_order_id + 1);
        let client_order_id = match req.client_order_id {
            Some(c) => c,
            None => self.generate_client_order_id(&req.account, order_id)?,
        };
        let order = Order::new(
            order_id,
            client_order_id,
            req.account,
            req.instrument,
            req.side,
            req.order_type,
            req.time_in_force,
            req.quantity,
            req.price,
            req.stop_price,
            ts,
        )?;
        Ok(Submit::New(Event::OrderSubmitted { order }))
    }

    /// The venue (or the risk gate) accepted a pending order.
    pub fn accept(&self, order_id: OrderId, ts: Timestamp) -> Result<Event, OmsError> {
        let account = self.entry(order_id)?.order.account.clone();
        self.checked(Event::OrderAccepted {
            order_id,
            account,
            ts,
        })
    }

    /// Refuse an order that has not traded (`code` is the stable reason, e.g. a risk code).
    /// A rejection is terminal and takes the order out of every open index at once.
    pub fn reject(
        &self,
        order_id: OrderId,
        code: &str,
        message: &str,
        ts: Timestamp,
    ) -> Result<Event, OmsError> {
        let account = self.entry(order_id)?.order.account.clone();
        self.checked(Event::OrderRejected {
            order_id,
            account,
            code: code.to_owned(),
            message: message.to_owned(),
            ts,
        })
    }

    /// The account cancels its order. Another account's order is `order_not_found`; a
    /// terminal one is `order_already_filled` / `_canceled` / `_rejected` / `_expired`.
    pub fn cancel(
        &self,
        account: &AccountId,
        order_id: OrderId,
        ts: Timestamp,
    ) -> Result<Event, OmsError> {
        if self.order_for_account(account, order_id).is_none() {
            return Err(OmsError::OrderNotFound(order_id));
        }
        self.checked(Event::OrderCanceled {
            order_id,
            account: account.clone(),
            reason: CLIENT_CANCEL_REASON.to_owned(),
            ts,
        })
    }

    /// A cancel the platform decides (venue cancel, self-trade prevention, cancel-on-reject of
    /// a follow-up request, admin). Same rules as [`Oms::cancel`] without the account check.
    pub fn system_cancel(
        &self,
        order_id: OrderId,
        reason: &str,
        ts: Timestamp,
    ) -> Result<Event, OmsError> {
        let account = self.entry(order_id)?.order.account.clone();
        self.checked(Event::OrderCanceled {
            order_id,
            account,
            reason: reason.to_owned(),
            ts,
        })
    }

    /// Expire the rest of an open order (IOC/FOK remainder after matching, DAY at session end).
    pub fn expire(
        &self,
        order_id: OrderId,
        reason: &str,
        ts: Timestamp,
    ) -> Result<Event, OmsError> {
        let account = self.entry(order_id)?.order.account.clone();
        self.checked(Event::OrderExpired {
            order_id,
            account,
            reason: reason.to_owned(),
            ts,
        })
    }

    /// Session end: one `OrderExpired` for every open DAY order, in order id order.
    pub fn expire_day_orders(&self, ts: Timestamp) -> Vec<Event> {
        self.expire_day_orders_of(ts, ts)
    }

    /// One `OrderExpired` (stamped `ts`) for every open DAY order created at or before
    /// `session_end`, in order id order: at a start after a session end passed while the
    /// platform was down, only the orders of sessions that ended expire.
    pub fn expire_day_orders_of(&self, session_end: Timestamp, ts: Timestamp) -> Vec<Event> {
        let mut ids: Vec<OrderId> = self
            .open
            .values()
            .flatten()
            .copied()
            .filter(|id| {
                self.orders.get(id).is_some_and(|e| {
                    e.order.time_in_force == TimeInForce::Day && e.order.created_at <= session_end
                })
            })
            .collect();
        ids.sort_unstable();
        ids.into_iter()
            .filter_map(|id| self.expire(id, SESSION_END_REASON, ts).ok())
            .collect()
    }

    /// Check that `event` would apply, without applying it.
    pub fn validate(&self, event: &Event) -> Result<(), OmsError> {
        self.change_for(event).map(|_| ())
    }

    fn checked(&self, event: Event) -> Result<Event, OmsError> {
        self.validate(&event)?;
        Ok(event)
    }

    fn generate_client_order_id(
        &self,
        account: &AccountId,
        order_id: OrderId,
    ) -> Result<ClientOrderId, OmsError> {
        let base = format!("o-{order_id}");
        // A digest match counts as used: at worst a suffix is added needlessly.
        let used = |c: &ClientOrderId| self.client_ids.contains_key(&client_key(account, c));
        let first = ClientOrderId::new(base.clone())?;
        if !used(&first) {
            return Ok(first);
        }
        // A client chose the string we would generate; suffixes keep the id unique and the
        // choice deterministic. Each suffix is a distinct used id, so this ends.
        let mut n: u64 = 1;
        loop {
            let c = ClientOrderId::new(format!("{base}-{n}"))?;
            if !used(&c) {
                return Ok(c);
            }
            n += 1;
        }
    }

    // --- the single place where state changes --------------------------------------------

    /// Fold one journaled event into the state. Market data and `config_changed` are ignored.
    /// An illegal transition is an error and changes nothing.
    pub fn apply(&mut self, event: &Event) -> Result<(), OmsError> {
        let change = self.change_for(event)?;
        if matches!(change, Change::Ignore) {
            return Ok(());
        }
        self.commit(change);
        self.evict(event.ts());
        Ok(())
    }

    /// Forgets what the retention no longer covers at event time `now`: terminal orders, then
    /// client order ids of ended orders (an id still mapped to a newer order stays).
    fn evict(&mut self, now: Timestamp) {
        let r = self.retention;
        let older_than = |secs: u64, then: Timestamp| {
            let window = i64::try_from(secs.saturating_mul(1_000_000_000)).unwrap_or(i64::MAX);
            now.as_nanos().saturating_sub(then.as_nanos()) > window
        };
        while let Some(&(id, ended)) = self.ended.front() {
            if self.ended.len() <= r.max_terminal_orders
                && !older_than(r.terminal_order_secs, ended)
            {
                break;
            }
            self.ended.pop_front();
            // Only a terminal order is ever queued here, and terminal orders never reopen.
            self.orders.remove(&id);
        }
        while let Some(&(key, id, ended)) = self.client_ids_ended.front() {
            if self.client_ids_ended.len() <= r.max_client_order_ids
                && !older_than(r.client_order_id_secs, ended)
            {
                break;
            }
            self.client_ids_ended.pop_front();
            if self.client_ids.get(&key) == Some(&id) {
                self.client_ids.remove(&key);
            }
        }
    }

    fn change_for<'e>(&self, event: &'e Event) -> Result<Change<'e>, OmsError> {
        match event {
            Event::OrderSubmitted { order } => {
                self.check_submitted(order).map(|()| Change::Submit(order))
            }
            Event::OrderAccepted {
                order_id,
                account,
                ts,
            } => {
                let e = self.entry_of(*order_id, account)?;
                Self::open_or_err(e)?;
                if e.order.status != OrderStatus::PendingNew {
                    return Err(illegal(e, EventKind::OrderAccepted));
                }
                Ok(status(*order_id, OrderStatus::Accepted, *ts))
            }
            Event::OrderRejected {
                order_id,
                account,
                ts,
                ..
            } => {
                let e = self.entry_of(*order_id, account)?;
                Self::open_or_err(e)?;
                // A partly filled order has traded: it can be canceled or expired, but a
                // "rejection" of it would misstate history.
                if !e.order.filled_quantity.is_zero() {
                    return Err(illegal(e, EventKind::OrderRejected));
                }
                Ok(status(*order_id, OrderStatus::Rejected, *ts))
            }
            Event::OrderCanceled {
                order_id,
                account,
                ts,
                ..
            } => {
                let e = self.entry_of(*order_id, account)?;
                Self::open_or_err(e)?;
                Ok(status(*order_id, OrderStatus::Canceled, *ts))
            }
            Event::OrderExpired {
                order_id,
                account,
                ts,
                ..
            } => {
                let e = self.entry_of(*order_id, account)?;
                Self::open_or_err(e)?;
                Ok(status(*order_id, OrderStatus::Expired, *ts))
            }
            Event::OrderFilled(fill) => self.check_fill(fill),
            Event::Quote(_)
            | Event::Trade(_)
            | Event::BookSnapshot(_)
            | Event::BookDelta(_)
            | Event::Bar(_)
            | Event::FundingRate(_)
            // A stop's trigger changes how the venue treats it, not its order status.
            | Event::OrderTriggered { .. }
            | Event::IdsReserved { .. }
            | Event::ConfigChanged { .. }
            | Event::ComplianceAlert { .. }
            | Event::AlertAcknowledged { .. } => Ok(Change::Ignore),
        }
    }

    fn check_submitted(&self, order: &Order) -> Result<(), OmsError> {
        if order.order_id.0 <= self.last_order_id {
            return Err(OmsError::OrderIdNotIncreasing {
                got: order.order_id,
                last: self.last_order_id,
            });
        }
        Order::check_shape(
            order.order_type,
            order.quantity,
            order.price,
            order.stop_price,
        )?;
        let not_fresh = |reason| {
            Err(OmsError::NotFresh {
                order_id: order.order_id,
                reason,
            })
        };
        if order.status != OrderStatus::PendingNew {
            return not_fresh("status is not pending_new");
        }
        if !order.filled_quantity.is_zero() || order.avg_fill_price.is_some() {
            return not_fresh("it already has fills");
        }
        // Only a held order can be compared exactly; an evicted one's digest may be shared.
        if let Remembered::Held(existing) = self.remembered(&order.account, &order.client_order_id)
        {
            return Err(OmsError::DuplicateClientOrderId {
                account: order.account.clone(),
                client_order_id: order.client_order_id.clone(),
                existing: existing.order_id,
            });
        }
        Ok(())
    }

    fn check_fill<'e>(&self, fill: &'e Fill) -> Result<Change<'e>, OmsError> {
        let e = self.entry_of(fill.order_id, &fill.account)?;
        Self::open_or_err(e)?;
        let o = &e.order;
        if o.status == OrderStatus::PendingNew {
            return Err(illegal(e, EventKind::OrderFilled));
        }
        let mismatch = |field, reason: String| OmsError::FillMismatch {
            order_id: o.order_id,
            field,
            reason,
        };
        if fill.instrument != o.instrument {
            return Err(mismatch(
                "instrument",
                format!("fill is on {}, order on {}", fill.instrument, o.instrument),
            ));
        }
        if fill.side != o.side {
            return Err(mismatch(
                "side",
                format!("fill side {:?}, order side {:?}", fill.side, o.side),
            ));
        }
        if fill.quantity.is_zero() {
            return Err(mismatch("quantity", "must be greater than zero".into()));
        }
        if let (OrderType::Limit | OrderType::StopLimit, Some(limit)) = (o.order_type, o.price) {
            let through = match o.side {
                Side::Buy => fill.price > limit,
                Side::Sell => fill.price < limit,
            };
            if through {
                return Err(mismatch(
                    "price",
                    format!(
                        "{:?} fill at {} is worse than the limit {}",
                        o.side, fill.price, limit
                    ),
                ));
            }
        }
        if fill.fill_id.0 <= self.last_fill_id {
            return Err(OmsError::DuplicateFill(fill.fill_id));
        }
        let progress =
            o.progress(e.notional, fill.quantity, fill.price)
                .map_err(|err| match err {
                    model::FillProgressError::Overfill => OmsError::Overfill {
                        order_id: o.order_id,
                        quantity: o.quantity,
                        filled: o.filled_quantity,
                        fill: fill.quantity,
                    },
                    model::FillProgressError::Overflow => {
                        mismatch("price", "notional overflows".into())
                    }
                })?;
        let model::FillProgress {
            filled,
            notional,
            avg,
            status,
        } = progress;
        Ok(Change::Fill {
            fill,
            filled,
            notional,
            avg,
            status,
        })
    }

    fn commit(&mut self, change: Change<'_>) {
        match change {
            Change::Ignore => {}
            Change::Submit(order) => {
                let id = order.order_id;
                self.last_order_id = id.0;
                if !is_generated(order) {
                    self.client_ids
                        .insert(client_key(&order.account, &order.client_order_id), id);
                }
                self.index_open(order);
                self.orders.insert(
                    id,
                    Entry {
                        order: order.clone(),
                        notional: Decimal::ZERO,
                    },
                );
            }
            Change::Status {
                order_id,
                status,
                ts,
            } => {
                if let Some(e) = self.orders.get_mut(&order_id) {
                    e.order.status = status;
                    e.order.updated_at = ts;
                }
                if status.is_terminal() {
                    self.close(order_id, ts);
                }
            }
            Change::Fill {
                fill,
                filled,
                notional,
                avg,
                status,
            } => {
                let id = fill.order_id;
                self.last_fill_id = fill.fill_id.0;
                if let Some(e) = self.orders.get_mut(&id) {
                    e.order.filled_quantity = filled;
                    e.order.avg_fill_price = Some(avg);
                    e.order.status = status;
                    e.order.updated_at = fill.ts;
                    e.notional = notional;
                }
                if status.is_terminal() {
                    self.close(id, fill.ts);
                }
            }
        }
    }

    fn index_open(&mut self, order: &Order) {
        let id = order.order_id;
        self.open
            .entry(order.account.clone())
            .or_default()
            .insert(id);
        self.open_by_instrument
            .entry(order.account.clone())
            .or_default()
            .entry(order.instrument.clone())
            .or_default()
            .insert(id);
    }

    /// A terminal order leaves the open indexes and starts its retention.
    fn close(&mut self, id: OrderId, ended: Timestamp) {
        let Some(e) = self.orders.get(&id) else {
            return;
        };
        let (account, instrument) = (&e.order.account, &e.order.instrument);
        self.ended.push_back((id, ended));
        if !is_generated(&e.order) {
            self.client_ids_ended.push_back((
                client_key(account, &e.order.client_order_id),
                id,
                ended,
            ));
        }
        if let Some(set) = self.open.get_mut(account) {
            set.remove(&id);
            if set.is_empty() {
                self.open.remove(account);
            }
        }
        if let Some(by_inst) = self.open_by_instrument.get_mut(account) {
            if let Some(set) = by_inst.get_mut(instrument) {
                set.remove(&id);
                if set.is_empty() {
                    by_inst.remove(instrument);
                }
            }
            if by_inst.is_empty() {
                self.open_by_instrument.remove(account);
            }
        }
    }

    /// Whether the account used this client order id recently, and what memory still holds.
    fn remembered(&self, account: &AccountId, client_order_id: &ClientOrderId) -> Remembered<'_> {
        let Some(&id) = self.client_ids.get(&client_key(account, client_order_id)) else {
            return Remembered::No;
        };
        match self.orders.get(&id) {
            Some(e)
                if &e.order.account == account && &e.order.client_order_id == client_order_id =>
            {
                Remembered::Held(&e.order)
            }
            // Held but different strings: another (account, id) with the same digest.
            Some(_) => Remembered::No,
            None => Remembered::Evicted(id),
        }
    }

    fn entry(&self, id: OrderId) -> Result<&Entry, OmsError> {
        self.orders.get(&id).ok_or(OmsError::OrderNotFound(id))
    }

    /// The order, checked to belong to `account` (journal consistency).
    fn entry_of(&self, id: OrderId, account: &AccountId) -> Result<&Entry, OmsError> {
        let e = self.entry(id)?;
        if &e.order.account != account {
            return Err(OmsError::AccountMismatch {
                order_id: id,
                expected: e.order.account.clone(),
                got: account.clone(),
            });
        }
        Ok(e)
    }

    fn open_or_err(e: &Entry) -> Result<(), OmsError> {
        match OmsError::terminal(e.order.order_id, e.order.status) {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }

    // --- queries ------------------------------------------------------------------------------

    pub fn order(&self, id: OrderId) -> Option<&Order> {
        self.orders.get(&id).map(|e| &e.order)
    }

    /// The order if it belongs to `account`; `None` for another account's order.
    pub fn order_for_account(&self, account: &AccountId, id: OrderId) -> Option<&Order> {
        self.order(id).filter(|o| &o.account == account)
    }

    /// The order with this client order id, if it is still held in memory.
    pub fn order_by_client_id(
        &self,
        account: &AccountId,
        client_order_id: &ClientOrderId,
    ) -> Option<&Order> {
        match self.remembered(account, client_order_id) {
            Remembered::Held(o) => Some(o),
            _ => None,
        }
    }

    /// Every order held (open and retained terminal ones), in order id order.
    pub fn orders(&self) -> impl Iterator<Item = &Order> {
        self.orders.values().map(|e| &e.order)
    }

    /// The account's open (non-terminal, including pending_new) orders, in order id order.
    pub fn open_orders<'s>(&'s self, account: &AccountId) -> impl Iterator<Item = &'s Order> + 's {
        self.open
            .get(account)
            .into_iter()
            .flatten()
            .filter_map(|id| self.order(*id))
    }

    /// Number of the account's open orders, including pending_new ones.
    pub fn open_order_count(&self, account: &AccountId) -> usize {
        self.open.get(account).map_or(0, BTreeSet::len)
    }

    /// The account's open orders on one instrument (including pending_new), in id order.
    pub fn open_orders_on<'s>(
        &'s self,
        account: &AccountId,
        instrument: &InstrumentId,
    ) -> impl Iterator<Item = &'s Order> + 's {
        self.open_by_instrument
            .get(account)
            .and_then(|m| m.get(instrument))
            .into_iter()
            .flatten()
            .filter_map(|id| self.order(*id))
    }

    /// The account's orders working at the venue on one instrument (accepted or partially
    /// filled), in id order: what an incoming order of the same account could trade against.
    pub fn resting_orders<'s>(
        &'s self,
        account: &AccountId,
        instrument: &InstrumentId,
    ) -> impl Iterator<Item = &'s Order> + 's {
        self.open_orders_on(account, instrument).filter(|o| {
            matches!(
                o.status,
                OrderStatus::Accepted | OrderStatus::PartiallyFilled
            )
        })
    }

    /// The id of the last applied order (0 before any); the next submit proposes this + 1.
    pub fn last_order_id(&self) -> u64 {
        self.last_order_id
    }

    /// After a restart: the next order id comes after `through` (ids up to it may have been
    /// given to orders a crash took back). Never moves backwards.
    pub fn skip_order_ids_through(&mut self, through: u64) {
        self.last_order_id = self.last_order_id.max(through);
    }

    /// Orders held in memory: open ones plus retained terminal ones.
    pub fn len(&self) -> usize {
        self.orders.len()
    }

    /// Open orders (all accounts).
    pub fn open_len(&self) -> usize {
        self.open.values().map(BTreeSet::len).sum()
    }

    /// Client order ids remembered for idempotent order entry.
    pub fn client_ids_len(&self) -> usize {
        self.client_ids.len()
    }

    /// The last fill id applied (0 before any).
    pub fn last_fill_id(&self) -> u64 {
        self.last_fill_id
    }

    pub fn is_empty(&self) -> bool {
        self.orders.is_empty()
    }
}

/// What memory holds about a client order id.
enum Remembered<'a> {
    No,
    Held(&'a Order),
    Evicted(OrderId),
}

fn status(order_id: OrderId, status: OrderStatus, ts: Timestamp) -> Change<'static> {
    Change::Status {
        order_id,
        status,
        ts,
    }
}

fn illegal(e: &Entry, kind: EventKind) -> OmsError {
    OmsError::IllegalTransition {
        order_id: e.order.order_id,
        from: e.order.status,
        event: kind_name(kind),
    }
}
