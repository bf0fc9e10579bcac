use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use model::{
    AccountId, ClientOrderId, Decimal, Event, EventKind, Fill, FillId, InstrumentId, Order,
    OrderId, OrderStatus, OrderType, Price, Quantity, Side, Symbol, TimeInForce, Timestamp,
};
use rust_decimal::RoundingStrategy;

use crate::error::kind_name;
use crate::{NewOrder, OmsError};

/// Decimal places of [`Order::avg_fill_price`]. The average is the exact fill-weighted mean
/// `sum(price x qty) / sum(qty)` (the numerator is kept exactly per order, never re-derived
/// from a rounded average), rounded half-to-even to this many places. Twelve places is far
/// below any venue's tick, so the rounding never changes a displayed or booked price.
pub const AVG_PRICE_DP: u32 = 12;

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
    /// A new order: journal this `Event::OrderSubmitted` and then [`Oms::apply`] it.
    New(Event),
}

/// Filter for [`Oms::orders`]; `None` fields match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderFilter {
    pub account: Option<AccountId>,
    pub status: Option<OrderStatus>,
    /// Matches the instrument's symbol on any venue.
    pub symbol: Option<Symbol>,
    /// Only orders that are not terminal.
    pub open_only: bool,
}

/// One order with what the OMS needs to keep its invariants checkable.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    order: Order,
    fills: Vec<Fill>,
    /// Exact sum of price x quantity over `fills`: the numerator of the average fill price.
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

/// The order book of record: every order the platform has seen and its lifecycle.
///
/// Event sourced. Commands (`submit`, `accept`, `reject`, `cancel`, `expire`,
/// `expire_day_orders`) take `&self` and return the [`Event`] to journal; they change nothing.
/// [`Oms::apply`] is the only method that changes state, and it validates every transition.
/// The caller journals the event, then applies it; replaying the journal into
/// [`Oms::default`] rebuilds exactly the same state (restart).
///
/// Consequence of `submit` being `&self`: apply each `OrderSubmitted` before the next
/// `submit`, otherwise two submits propose the same order id and the second apply fails with
/// `order_id_not_increasing` (never a silent double order).
///
/// Lifecycle:
/// `pending_new -> accepted -> partially_filled -> filled`; any open status -> `canceled` or
/// `expired`; `pending_new | accepted` (nothing filled) -> `rejected`. A fill needs an accepted
/// order. Terminal statuses never change; touching one yields `order_already_<status>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Oms {
    orders: BTreeMap<OrderId, Entry>,
    client_ids: HashMap<AccountId, HashMap<ClientOrderId, OrderId>>,
    /// Every order of an account, in id order.
    by_account: HashMap<AccountId, Vec<OrderId>>,
    /// Open (non-terminal) orders per account. Empty sets are removed.
    open: HashMap<AccountId, BTreeSet<OrderId>>,
    /// Open orders per account and instrument (self-trade checks). Empty entries are removed.
    open_by_instrument: HashMap<AccountId, HashMap<InstrumentId, BTreeSet<OrderId>>>,
    fill_ids: HashSet<FillId>,
    last_order_id: u64,
}

impl Oms {
    pub fn new() -> Oms {
        Oms::default()
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
        if let Some(coid) = &req.client_order_id
            && let Some(existing) = self.order_by_client_id(&req.account, coid)
        {
            return Ok(Submit::Duplicate(existing.clone()));
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
        let mut ids: Vec<OrderId> = self
            .open
            .values()
            .flatten()
            .copied()
            .filter(|id| {
                self.orders
                    .get(id)
                    .is_some_and(|e| e.order.time_in_force == TimeInForce::Day)
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
        let used = |c: &ClientOrderId| self.order_by_client_id(account, c).is_some();
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
        self.commit(change);
        Ok(())
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
        if let Some(existing) = self
            .client_ids
            .get(&order.account)
            .and_then(|m| m.get(&order.client_order_id))
        {
            return Err(OmsError::DuplicateClientOrderId {
                account: order.account.clone(),
                client_order_id: order.client_order_id.clone(),
                existing: *existing,
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
        let filled = o.filled_quantity.get() + fill.quantity.get();
        if filled > o.quantity.get() {
            return Err(OmsError::Overfill {
                order_id: o.order_id,
                quantity: o.quantity,
                filled: o.filled_quantity,
                fill: fill.quantity,
            });
        }
        if self.fill_ids.contains(&fill.fill_id) {
            return Err(OmsError::DuplicateFill(fill.fill_id));
        }
        let overflow = || mismatch("price", "notional overflows".into());
        let notional = fill
            .price
            .get()
            .checked_mul(fill.quantity.get())
            .and_then(|n| n.checked_add(e.notional))
            .ok_or_else(overflow)?;
        let avg = notional
            .checked_div(filled)
            .ok_or_else(overflow)?
            .round_dp_with_strategy(AVG_PRICE_DP, RoundingStrategy::MidpointNearestEven);
        let avg = Price::new(avg).map_err(|err| mismatch("price", err.to_string()))?;
        let filled = Quantity::new(filled)?;
        let status = if filled == o.quantity {
            OrderStatus::Filled
        } else {
            OrderStatus::PartiallyFilled
        };
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
                self.client_ids
                    .entry(order.account.clone())
                    .or_default()
                    .insert(order.client_order_id.clone(), id);
                self.by_account
                    .entry(order.account.clone())
                    .or_default()
                    .push(id);
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
                self.orders.insert(
                    id,
                    Entry {
                        order: order.clone(),
                        fills: Vec::new(),
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
                    self.close(order_id);
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
                self.fill_ids.insert(fill.fill_id);
                if let Some(e) = self.orders.get_mut(&id) {
                    e.order.filled_quantity = filled;
                    e.order.avg_fill_price = Some(avg);
                    e.order.status = status;
                    e.order.updated_at = fill.ts;
                    e.notional = notional;
                    e.fills.push(fill.clone());
                }
                if status.is_terminal() {
                    self.close(id);
                }
            }
        }
    }

    /// Take a terminal order out of the open indices.
    fn close(&mut self, id: OrderId) {
        let Some(e) = self.orders.get(&id) else {
            return;
        };
        let (account, instrument) = (&e.order.account, &e.order.instrument);
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

    pub fn order_by_client_id(
        &self,
        account: &AccountId,
        client_order_id: &ClientOrderId,
    ) -> Option<&Order> {
        let id = self.client_ids.get(account)?.get(client_order_id)?;
        self.order(*id)
    }

    /// The fills of an order in the order they were applied.
    pub fn fills(&self, id: OrderId) -> Option<&[Fill]> {
        self.orders.get(&id).map(|e| e.fills.as_slice())
    }

    /// Orders matching `filter`, in order id order.
    pub fn orders(&self, filter: &OrderFilter) -> Vec<&Order> {
        let matches = |o: &&Order| {
            filter.status.is_none_or(|s| o.status == s)
                && filter
                    .symbol
                    .as_ref()
                    .is_none_or(|s| &o.instrument.symbol == s)
                && (!filter.open_only || o.status.is_open())
        };
        match &filter.account {
            Some(account) => self
                .by_account
                .get(account)
                .into_iter()
                .flatten()
                .filter_map(|id| self.order(*id))
                .filter(matches)
                .collect(),
            None => self
                .orders
                .values()
                .map(|e| &e.order)
                .filter(matches)
                .collect(),
        }
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

    /// Number of orders ever applied.
    pub fn len(&self) -> usize {
        self.orders.len()
    }

    pub fn is_empty(&self) -> bool {
        self.orders.is_empty()
    }
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
