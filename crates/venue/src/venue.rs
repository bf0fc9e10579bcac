use std::collections::{BTreeMap, HashMap};

use model::{
    Decimal, Event, Fill, FillId, InstrumentId, Liquidity, Order, OrderId, OrderType, Price,
    Quantity, Side, TimeInForce, Timestamp,
};
use serde::{Deserialize, Serialize, Serializer};

use crate::{MarketState, VenueConfig, VenueError};

/// Version of the serialized form of [`PaperVenue`] (its snapshot). A snapshot with another
/// version is refused on restore, so the runtime falls back to a full replay.
pub const SNAPSHOT_VERSION: u32 = 1;

/// Most orders kept between their `OrderSubmitted` and `OrderAccepted` during replay. The engine
/// journals each decision as one batch, so the acceptance (or rejection) follows its submission
/// at once and at most one order is ever waiting; only a torn batch leaves one behind for good.
/// The cap keeps such leftovers from accumulating over weeks: the oldest (lowest id) is dropped.
pub const MAX_PENDING_ORDERS: usize = 1_024;

/// Stable `code`s of the `OrderRejected` events the venue emits.
pub mod codes {
    /// A market order for an instrument without any market data yet.
    pub const NO_MARKET_DATA: &str = "no_market_data";
    /// A market order while the opposite side of the book is empty.
    pub const NO_LIQUIDITY: &str = "no_liquidity";
    /// An order id the venue already holds.
    pub const DUPLICATE_ORDER_ID: &str = "duplicate_order_id";
    /// An order whose remaining quantity is zero.
    pub const NOTHING_TO_FILL: &str = "nothing_to_fill";
}

/// Stable `reason`s of the `OrderExpired` events the venue emits.
pub mod reasons {
    /// IOC (or market IOC) remainder after the immediate match.
    pub const IOC_REMAINDER: &str = "ioc_remainder";
    /// FOK whose quantity was not available at once: nothing filled.
    pub const FOK_UNFILLED: &str = "fok_unfilled";
    /// DAY order at session end ([`super::PaperVenue::expire_day_orders`]).
    pub const DAY_END: &str = "day_end";
    /// A triggered market stop found the opposite side of the book empty.
    pub const NO_LIQUIDITY: &str = "no_liquidity";
    /// A fill's notional or fee did not fit a decimal (absurd magnitudes only).
    pub const NOTIONAL_OVERFLOW: &str = "notional_overflow";
}

/// An order the venue holds after the immediate match: a resting limit, an untriggered stop,
/// or a triggered stop-limit resting at its limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestingOrder {
    /// The order as given to the venue (its `filled_quantity` is not updated here).
    pub order: Order,
    /// Quantity still open at the venue.
    pub leaves: Quantity,
    /// For stop and stop-limit orders: whether the venue triggered it (journaled as
    /// `OrderTriggered`). A pending stop whose stop price the market has reached but which no
    /// live update has acted on yet (after a restart) is still `false`.
    pub triggered: bool,
    /// The `OrderAccepted` time (`ts + latency_ns`).
    pub accepted_at: Timestamp,
}

impl RestingOrder {
    /// A stop or stop-limit still waiting for its stop price.
    pub fn is_pending_stop(&self) -> bool {
        !self.triggered
            && matches!(
                self.order.order_type,
                OrderType::Stop | OrderType::StopLimit
            )
    }

    /// The limit price when the order currently rests as a limit order.
    fn resting_limit(&self) -> Option<Price> {
        match self.order.order_type {
            OrderType::Limit => self.order.price,
            OrderType::StopLimit if self.triggered => self.order.price,
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Book {
    market: MarketState,
    orders: BTreeMap<OrderId, RestingOrder>,
}

/// Hands out fill ids and builds fills with their fees.
struct Filler<'a> {
    cfg: &'a VenueConfig,
    next: &'a mut u64,
}

impl Filler<'_> {
    /// `None` when quantity, notional or fee cannot be represented (nothing is consumed then).
    fn fill(
        &mut self,
        order: &Order,
        price: Price,
        qty: Decimal,
        liquidity: Liquidity,
        ts: Timestamp,
    ) -> Option<Event> {
        let quantity = Quantity::new(qty).ok()?;
        let fee = self.cfg.fees.fee(liquidity, price.get(), qty)?;
        let fill_id = FillId(*self.next);
        *self.next = self.next.checked_add(1)?;
        Some(Event::OrderFilled(Fill {
            fill_id,
            order_id: order.order_id,
            account: order.account.clone(),
            instrument: order.instrument.clone(),
            side: order.side,
            quantity,
            price,
            fee,
            liquidity,
            ts,
        }))
    }
}

/// What is left after an order's taker pass.
enum Outcome {
    /// Fully handled (filled, expired): nothing rests.
    Done,
    /// This quantity rests as a limit order.
    Rest(Quantity),
}

/// Sizes of the venue's collections, to watch memory (all bounded, see the crate docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct VenueFootprint {
    /// Instruments with a book (market data or orders seen).
    pub instruments: usize,
    /// Orders open at the venue (resting limits, pending stops, resting stop-limits).
    pub resting_orders: usize,
    /// Entries of the order-id index; always equal to `resting_orders`.
    pub indexed_orders: usize,
    /// Replayed orders waiting for their `OrderAccepted` (at most [`MAX_PENDING_ORDERS`]).
    pub pending_orders: usize,
    /// Displayed price levels over all books and sides.
    pub book_levels: usize,
    /// Levels with liquidity consumed by this venue's fills (a subset of `book_levels`).
    pub consumed_levels: usize,
}

/// The paper venue for all instruments. See the crate docs for the matching rules.
///
/// Serialize / Deserialize give its snapshot (see the crate docs, "Snapshots"): restoring one
/// and continuing behaves exactly like continuing the original.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "VenueSnapshot")]
pub struct PaperVenue {
    config: VenueConfig,
    next_fill_id: u64,
    books: BTreeMap<InstrumentId, Book>,
    /// Where each resting order lives (derived from `books`, not serialized).
    index: HashMap<OrderId, InstrumentId>,
    /// Replay only: orders seen in `OrderSubmitted`, waiting for their `OrderAccepted`.
    pending: BTreeMap<OrderId, Order>,
}

impl PaperVenue {
    pub fn new(config: VenueConfig) -> Result<Self, VenueError> {
        config.validate()?;
        Ok(PaperVenue {
            next_fill_id: config.first_fill_id,
            config,
            books: BTreeMap::new(),
            index: HashMap::new(),
            pending: BTreeMap::new(),
        })
    }

    /// Sizes of the venue's collections (for memory metrics and bound tests).
    pub fn footprint(&self) -> VenueFootprint {
        let mut f = VenueFootprint {
            instruments: self.books.len(),
            indexed_orders: self.index.len(),
            pending_orders: self.pending.len(),
            ..VenueFootprint::default()
        };
        for b in self.books.values() {
            f.resting_orders += b.orders.len();
            let (levels, consumed) = b.market.level_counts();
            f.book_levels += levels;
            f.consumed_levels += consumed;
        }
        f
    }

    pub fn config(&self) -> &VenueConfig {
        &self.config
    }

    /// The id the next fill will get.
    pub fn next_fill_id(&self) -> FillId {
        FillId(self.next_fill_id)
    }

    /// Continue fill ids from `next` (e.g. max replayed fill id + 1). `apply` already does this
    /// for every replayed fill, so this is only needed when fills are not replayed into the venue.
    pub fn set_next_fill_id(&mut self, next: FillId) {
        self.next_fill_id = next.0.max(1);
    }

    pub fn market(&self, instrument: &InstrumentId) -> Option<&MarketState> {
        self.books.get(instrument).map(|b| &b.market)
    }

    pub fn resting_order(&self, order_id: OrderId) -> Option<&RestingOrder> {
        let inst = self.index.get(&order_id)?;
        self.books.get(inst)?.orders.get(&order_id)
    }

    /// All resting orders, by instrument then order id.
    pub fn resting_orders(&self) -> impl Iterator<Item = &RestingOrder> + '_ {
        self.books.values().flat_map(|b| b.orders.values())
    }

    /// Resting orders of one instrument, by order id.
    pub fn resting_orders_for<'a>(
        &'a self,
        instrument: &InstrumentId,
    ) -> impl Iterator<Item = &'a RestingOrder> + 'a {
        self.books
            .get(instrument)
            .into_iter()
            .flat_map(|b| b.orders.values())
    }

    /// An order the OMS and risk accepted. Returns, in order: `OrderAccepted` (or a single
    /// `OrderRejected`, see [`codes`]), `OrderTriggered` for a stop or stop-limit whose stop
    /// price is already reached, the immediate taker fills, and an `OrderExpired` when an
    /// IOC/FOK remainder (see [`reasons`]) does not rest. All are stamped `ts + latency_ns`.
    pub fn on_order(&mut self, order: &Order, ts: Timestamp) -> Vec<Event> {
        let now = Timestamp::from_nanos(ts.as_nanos().saturating_add(self.config.latency_ns));
        self.pending.remove(&order.order_id);
        let reject = |code: &str, message: &str| {
            vec![Event::OrderRejected {
                order_id: order.order_id,
                account: order.account.clone(),
                code: code.to_owned(),
                message: message.to_owned(),
                ts: now,
            }]
        };
        if self.index.contains_key(&order.order_id) {
            return reject(
                codes::DUPLICATE_ORDER_ID,
                "the venue already holds this order id",
            );
        }
        let leaves = order.leaves_quantity();
        if leaves.is_zero() {
            return reject(codes::NOTHING_TO_FILL, "the order has no quantity left");
        }
        if order.order_type == OrderType::Market {
            let market = self.books.get(&order.instrument).map(|b| &b.market);
            match market {
                Some(m) if m.has_data() => {
                    if m.worst_level(order.side).is_none() {
                        return reject(
                            codes::NO_LIQUIDITY,
                            "the opposite side of the book is empty",
                        );
                    }
                }
                _ => {
                    return reject(
                        codes::NO_MARKET_DATA,
                        "no market data for this instrument yet",
                    );
                }
            }
        }
        let book = self.books.entry(order.instrument.clone()).or_default();
        let mut out = vec![Event::OrderAccepted {
            order_id: order.order_id,
            account: order.account.clone(),
            ts: now,
        }];
        let mut resting = RestingOrder {
            order: order.clone(),
            leaves,
            triggered: false,
            accepted_at: now,
        };
        if resting.is_pending_stop() {
            if !stop_reached(&book.market, order) {
                self.index.insert(order.order_id, order.instrument.clone());
                book.orders.insert(order.order_id, resting);
                return out;
            }
            resting.triggered = true;
            out.push(triggered(order, now));
        }
        let mut filler = Filler {
            cfg: &self.config,
            next: &mut self.next_fill_id,
        };
        if let Outcome::Rest(left) =
            execute_taker(&mut filler, &mut book.market, order, leaves, now, &mut out)
        {
            resting.leaves = left;
            self.index.insert(order.order_id, order.instrument.clone());
            book.orders.insert(order.order_id, resting);
        }
        out
    }

    /// Update the market from a `Quote`, `Trade`, `BookSnapshot` or `BookDelta` (other events
    /// are ignored) and return the fills and expiries of resting orders that the new data makes
    /// executable: first resting limit orders (trade-through on a trade, crossing on book and
    /// quote updates), then stops triggered by the new reference price, each as
    /// `OrderTriggered` followed by its own fills / expiry. Pending stops are checked against
    /// the market as it now stands, so after a restart a stop whose price was reached while the
    /// engine was down (market data replayed with `apply`) fires on the first live update.
    pub fn on_market_data(&mut self, event: &Event) -> Vec<Event> {
        let Some(instrument) = market_instrument(event) else {
            return Vec::new();
        };
        let ts = event.ts();
        let latency_on = self.config.latency_ns > 0;
        let book = self.books.entry(instrument.clone()).or_default();
        update_market(&mut book.market, event);
        let mut filler = Filler {
            cfg: &self.config,
            next: &mut self.next_fill_id,
        };
        let mut out = Vec::new();
        match event {
            Event::Trade(t) => trade_through(&mut filler, book, t, latency_on, &mut out),
            _ => cross(&mut filler, book, ts, latency_on, &mut out),
        }
        trigger_stops(&mut filler, book, ts, latency_on, &mut out);
        // Only orders named in the output can have left the book.
        for e in &out {
            if let Event::OrderFilled(Fill { order_id, .. }) | Event::OrderExpired { order_id, .. } =
                e
                && !book.orders.contains_key(order_id)
            {
                self.index.remove(order_id);
            }
        }
        out
    }

    /// Remove a resting order; `true` when it was resting. The OMS emits `OrderCanceled`.
    pub fn cancel(&mut self, order_id: OrderId) -> bool {
        self.pending.remove(&order_id);
        let Some(inst) = self.index.remove(&order_id) else {
            return false;
        };
        self.books
            .get_mut(&inst)
            .and_then(|b| b.orders.remove(&order_id))
            .is_some()
    }

    /// Session end: expire every resting DAY order (untriggered DAY stops included), in
    /// instrument then order-id order, with reason `day_end`, stamped `ts`.
    pub fn expire_day_orders(&mut self, ts: Timestamp) -> Vec<Event> {
        let mut out = Vec::new();
        for book in self.books.values_mut() {
            book.orders.retain(|id, r| {
                if r.order.time_in_force != TimeInForce::Day {
                    return true;
                }
                self.index.remove(id);
                out.push(expired(&r.order, reasons::DAY_END, ts));
                false
            });
        }
        out
    }

    /// Replay one journaled event into the venue's state without emitting anything.
    ///
    /// * market data: updates the market only. Whether a stop fired is a decision the live
    ///   venue journaled (`OrderTriggered`); re-deriving it here from market data the live
    ///   venue may never have acted on (it crashed first) would mark a stop triggered without
    ///   its execution. Such a stop stays pending and the next live update re-checks it;
    /// * `OrderSubmitted`: remembers the order until its `OrderAccepted`;
    /// * `OrderAccepted`: the order rests (a stop or stop-limit as not yet triggered);
    /// * `OrderTriggered`: the stop or stop-limit is triggered;
    /// * `OrderFilled`: reduces the order (removed at zero), re-records the consumed liquidity
    ///   and moves the fill-id counter past the fill's id. A fill of a stop also marks it
    ///   triggered (journals written before `OrderTriggered` existed);
    /// * `OrderCanceled` / `OrderExpired` / `OrderRejected`: removes the order.
    ///
    /// The engine must journal each batch the venue returns as a unit: replay is exact for
    /// complete batches. Consumed liquidity is transient (reset by the next update of a level),
    /// and is re-derived from fills as well as the journal allows.
    pub fn apply(&mut self, event: &Event) {
        if let Some(instrument) = market_instrument(event) {
            let book = self.books.entry(instrument.clone()).or_default();
            update_market(&mut book.market, event);
            return;
        }
        match event {
            Event::OrderSubmitted { order } => {
                self.pending.insert(order.order_id, order.clone());
                while self.pending.len() > MAX_PENDING_ORDERS {
                    self.pending.pop_first();
                }
            }
            Event::OrderAccepted { order_id, ts, .. } => {
                let Some(order) = self.pending.remove(order_id) else {
                    return;
                };
                let book = self.books.entry(order.instrument.clone()).or_default();
                let r = RestingOrder {
                    leaves: order.leaves_quantity(),
                    triggered: false,
                    accepted_at: *ts,
                    order,
                };
                if !r.leaves.is_zero() {
                    self.index.insert(*order_id, r.order.instrument.clone());
                    book.orders.insert(*order_id, r);
                }
            }
            Event::OrderFilled(f) => {
                self.next_fill_id = self.next_fill_id.max(f.fill_id.0.saturating_add(1));
                let book = self.books.entry(f.instrument.clone()).or_default();
                match f.liquidity {
                    Liquidity::Taker => book.market.consume(f.side, f.price, f.quantity.get()),
                    Liquidity::Maker => {
                        book.market
                            .consume_within(f.side, f.price, f.quantity.get());
                    }
                }
                if let Some(r) = book.orders.get_mut(&f.order_id) {
                    // A fill of a stop proves it was triggered.
                    if matches!(r.order.order_type, OrderType::Stop | OrderType::StopLimit) {
                        r.triggered = true;
                    }
                    let left = (r.leaves.get() - f.quantity.get()).max(Decimal::ZERO);
                    r.leaves = Quantity::new(left).unwrap_or(Quantity::ZERO);
                    if r.leaves.is_zero() {
                        book.orders.remove(&f.order_id);
                        self.index.remove(&f.order_id);
                    }
                }
            }
            Event::OrderTriggered { order_id, .. } => {
                if let Some(r) = self
                    .index
                    .get(order_id)
                    .and_then(|inst| self.books.get_mut(inst))
                    .and_then(|b| b.orders.get_mut(order_id))
                    && matches!(r.order.order_type, OrderType::Stop | OrderType::StopLimit)
                {
                    r.triggered = true;
                }
            }
            Event::OrderCanceled { order_id, .. }
            | Event::OrderExpired { order_id, .. }
            | Event::OrderRejected { order_id, .. } => {
                self.pending.remove(order_id);
                if let Some(inst) = self.index.remove(order_id)
                    && let Some(b) = self.books.get_mut(&inst)
                {
                    b.orders.remove(order_id);
                }
            }
            _ => {}
        }
    }
}

// --- snapshots -------------------------------------------------------------------------------

/// One instrument in a snapshot: its market and its resting orders in order-id order.
#[derive(Serialize)]
struct SavedBookRef<'a> {
    instrument: &'a InstrumentId,
    market: &'a MarketState,
    orders: Vec<&'a RestingOrder>,
}

#[derive(Serialize)]
struct VenueSnapshotRef<'a> {
    version: u32,
    config: &'a VenueConfig,
    next_fill_id: u64,
    books: Vec<SavedBookRef<'a>>,
    pending: Vec<&'a Order>,
}

#[derive(Deserialize)]
struct SavedBook {
    instrument: InstrumentId,
    market: MarketState,
    orders: Vec<RestingOrder>,
}

/// The serialized form of [`PaperVenue`]. The order-id index is derived, not stored.
#[derive(Deserialize)]
struct VenueSnapshot {
    version: u32,
    config: VenueConfig,
    next_fill_id: u64,
    books: Vec<SavedBook>,
    pending: Vec<Order>,
}

impl Serialize for PaperVenue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        VenueSnapshotRef {
            version: SNAPSHOT_VERSION,
            config: &self.config,
            next_fill_id: self.next_fill_id,
            books: self
                .books
                .iter()
                .map(|(instrument, b)| SavedBookRef {
                    instrument,
                    market: &b.market,
                    orders: b.orders.values().collect(),
                })
                .collect(),
            pending: self.pending.values().collect(),
        }
        .serialize(s)
    }
}

impl TryFrom<VenueSnapshot> for PaperVenue {
    type Error = VenueError;

    fn try_from(snap: VenueSnapshot) -> Result<Self, VenueError> {
        let bad = |reason: String| VenueError::InvalidSnapshot(reason);
        if snap.version != SNAPSHOT_VERSION {
            return Err(VenueError::SnapshotVersion {
                found: snap.version,
                expected: SNAPSHOT_VERSION,
            });
        }
        let mut venue = PaperVenue::new(snap.config)?;
        if snap.next_fill_id == 0 {
            return Err(bad("next_fill_id must be at least 1".into()));
        }
        venue.next_fill_id = snap.next_fill_id;
        for saved in snap.books {
            let mut book = Book {
                market: saved.market,
                orders: BTreeMap::new(),
            };
            for r in saved.orders {
                let id = r.order.order_id;
                if r.order.instrument != saved.instrument {
                    return Err(bad(format!(
                        "order {id} is filed under {} but trades {}",
                        saved.instrument, r.order.instrument
                    )));
                }
                if r.leaves.is_zero() {
                    return Err(bad(format!("resting order {id} has nothing left")));
                }
                if venue.index.insert(id, saved.instrument.clone()).is_some() {
                    return Err(bad(format!("order {id} rests twice")));
                }
                book.orders.insert(id, r);
            }
            if venue.books.insert(saved.instrument.clone(), book).is_some() {
                return Err(bad(format!(
                    "instrument {} appears twice",
                    saved.instrument
                )));
            }
        }
        for order in snap.pending {
            venue.pending.insert(order.order_id, order);
        }
        if venue.pending.len() > MAX_PENDING_ORDERS {
            return Err(bad(format!(
                "{} pending orders, more than {MAX_PENDING_ORDERS}",
                venue.pending.len()
            )));
        }
        Ok(venue)
    }
}

fn market_instrument(event: &Event) -> Option<&InstrumentId> {
    match event {
        Event::Quote(q) => Some(&q.instrument),
        Event::Trade(t) => Some(&t.instrument),
        Event::BookSnapshot(s) => Some(&s.instrument),
        Event::BookDelta(d) => Some(&d.instrument),
        _ => None,
    }
}

fn update_market(m: &mut MarketState, event: &Event) {
    match event {
        Event::Quote(q) => m.apply_quote(q),
        Event::Trade(t) => m.apply_trade(t),
        Event::BookSnapshot(s) => m.apply_snapshot(s),
        Event::BookDelta(d) => m.apply_delta(d),
        _ => {}
    }
}

/// With a latency model, market data stamped before the order's arrival cannot fill it.
fn eligible(r: &RestingOrder, ts: Timestamp, latency_on: bool) -> bool {
    !latency_on || ts >= r.accepted_at
}

fn stop_reached(m: &MarketState, order: &Order) -> bool {
    let (Some(reference), Some(stop)) = (m.reference_price(), order.stop_price) else {
        return false;
    };
    match order.side {
        Side::Buy => reference >= stop.get(),
        Side::Sell => reference <= stop.get(),
    }
}

fn triggered(order: &Order, ts: Timestamp) -> Event {
    Event::OrderTriggered {
        order_id: order.order_id,
        account: order.account.clone(),
        ts,
    }
}

fn expired(order: &Order, reason: &str, ts: Timestamp) -> Event {
    Event::OrderExpired {
        order_id: order.order_id,
        account: order.account.clone(),
        reason: reason.to_owned(),
        ts,
    }
}

/// The limit an order trades with when it takes liquidity now (`None` = market).
fn taker_limit(order: &Order) -> Option<Price> {
    match order.order_type {
        OrderType::Limit | OrderType::StopLimit => order.price,
        OrderType::Market | OrderType::Stop => None,
    }
}

/// Take liquidity for `leaves` of `order` as a taker, applying its time in force.
fn execute_taker(
    filler: &mut Filler<'_>,
    market: &mut MarketState,
    order: &Order,
    leaves: Quantity,
    ts: Timestamp,
    out: &mut Vec<Event>,
) -> Outcome {
    let side = order.side;
    let tif = order.time_in_force;
    let limit = taker_limit(order);
    if tif == TimeInForce::Fok && market.available_up_to(side, limit, leaves.get()) < leaves.get() {
        out.push(expired(order, reasons::FOK_UNFILLED, ts));
        return Outcome::Done;
    }
    let plan = market.plan(side, limit, leaves.get());
    let mut left = leaves.get();
    let mut overflow = false;
    for (price, avail) in plan {
        if left.is_zero() {
            break;
        }
        let take = avail.min(left);
        if take.is_zero() {
            continue;
        }
        match filler.fill(order, price, take, Liquidity::Taker, ts) {
            Some(fill) => {
                market.consume(side, price, take);
                left -= take;
                out.push(fill);
            }
            None => {
                overflow = true;
                break;
            }
        }
    }
    if left.is_zero() {
        return Outcome::Done;
    }
    let keep_open = matches!(tif, TimeInForce::Gtc | TimeInForce::Day);
    if limit.is_none() && keep_open && !overflow {
        // A market order completes beyond the displayed depth at the worst level + slippage.
        let price = market
            .worst_level(side)
            .and_then(|w| filler.cfg.slipped(w.get(), side == Side::Buy))
            .and_then(|p| Price::new(p).ok());
        let Some(price) = price else {
            out.push(expired(order, reasons::NO_LIQUIDITY, ts));
            return Outcome::Done;
        };
        match filler.fill(order, price, left, Liquidity::Taker, ts) {
            Some(fill) => out.push(fill),
            None => out.push(expired(order, reasons::NOTIONAL_OVERFLOW, ts)),
        }
        return Outcome::Done;
    }
    if overflow {
        out.push(expired(order, reasons::NOTIONAL_OVERFLOW, ts));
        return Outcome::Done;
    }
    if limit.is_some() && keep_open {
        return Quantity::new(left).map_or(Outcome::Done, Outcome::Rest);
    }
    out.push(expired(order, reasons::IOC_REMAINDER, ts));
    Outcome::Done
}

/// Reduce a resting order by a maker fill; `true` when it is now fully filled.
fn reduce(r: &mut RestingOrder, qty: Decimal) -> bool {
    let left = (r.leaves.get() - qty).max(Decimal::ZERO);
    r.leaves = Quantity::new(left).unwrap_or(Quantity::ZERO);
    r.leaves.is_zero()
}

/// Resting limit orders against a trade print (see crate docs for the rule).
fn trade_through(
    filler: &mut Filler<'_>,
    book: &mut Book,
    t: &model::TradeTick,
    latency_on: bool,
    out: &mut Vec<Event>,
) {
    // Quantity printed at exactly the limit, shared per side in order-id priority.
    let mut at_price_left = [t.quantity.get(), t.quantity.get()];
    let mut done = Vec::new();
    for (id, r) in book.orders.iter_mut() {
        let Some(limit) = r.resting_limit() else {
            continue;
        };
        if !eligible(r, t.ts, latency_on) {
            continue;
        }
        let (through, pool) = match r.order.side {
            Side::Buy => (t.price < limit, 0),
            Side::Sell => (t.price > limit, 1),
        };
        let qty = if through {
            r.leaves.get()
        } else if t.price == limit {
            r.leaves.get().min(at_price_left[pool])
        } else {
            continue;
        };
        if qty.is_zero() {
            continue;
        }
        let ts = t.ts.max(r.accepted_at);
        let Some(fill) = filler.fill(&r.order, limit, qty, Liquidity::Maker, ts) else {
            continue;
        };
        if !through {
            at_price_left[pool] -= qty;
        }
        // Like a crossing fill, a maker fill uses up displayed liquidity at or better than its
        // limit, if any is left (only possible with latency, for an order that was not yet
        // eligible when the book crossed it). Replay re-records every maker fill this way, so
        // doing the same live keeps replayed and live books identical.
        book.market.consume_within(r.order.side, limit, qty);
        out.push(fill);
        if reduce(r, qty) {
            done.push(*id);
        }
    }
    for id in done {
        book.orders.remove(&id);
    }
}

/// Resting limit orders against a book that crosses them (see crate docs for the rule).
fn cross(
    filler: &mut Filler<'_>,
    book: &mut Book,
    ts: Timestamp,
    latency_on: bool,
    out: &mut Vec<Event>,
) {
    // Price priority, then order id (time) priority.
    let mut queue: Vec<(Side, Price, OrderId)> = book
        .orders
        .iter()
        .filter(|(_, r)| eligible(r, ts, latency_on))
        .filter_map(|(id, r)| r.resting_limit().map(|p| (r.order.side, p, *id)))
        .collect();
    queue.sort_by(|a, b| match (a.0, b.0) {
        (Side::Buy, Side::Buy) => b.1.cmp(&a.1).then(a.2.cmp(&b.2)),
        (Side::Sell, Side::Sell) => a.1.cmp(&b.1).then(a.2.cmp(&b.2)),
        (Side::Buy, Side::Sell) => std::cmp::Ordering::Less,
        (Side::Sell, Side::Buy) => std::cmp::Ordering::Greater,
    });
    for (side, limit, id) in queue {
        let Some(r) = book.orders.get_mut(&id) else {
            continue;
        };
        let qty = book
            .market
            .available_up_to(side, Some(limit), r.leaves.get());
        if qty.is_zero() {
            continue;
        }
        let Some(fill) = filler.fill(
            &r.order,
            limit,
            qty,
            Liquidity::Maker,
            ts.max(r.accepted_at),
        ) else {
            continue;
        };
        book.market.consume_within(side, limit, qty);
        out.push(fill);
        if reduce(r, qty) {
            book.orders.remove(&id);
        }
    }
}

/// Trigger stops the reference price reached, in order-id order, and run them as takers.
fn trigger_stops(
    filler: &mut Filler<'_>,
    book: &mut Book,
    ts: Timestamp,
    latency_on: bool,
    out: &mut Vec<Event>,
) {
    let hit: Vec<OrderId> = book
        .orders
        .iter()
        .filter(|(_, r)| {
            r.is_pending_stop()
                && eligible(r, ts, latency_on)
                && stop_reached(&book.market, &r.order)
        })
        .map(|(id, _)| *id)
        .collect();
    for id in hit {
        let Some(mut r) = book.orders.remove(&id) else {
            continue;
        };
        r.triggered = true;
        let when = ts.max(r.accepted_at);
        out.push(triggered(&r.order, when));
        if let Outcome::Rest(left) =
            execute_taker(filler, &mut book.market, &r.order, r.leaves, when, out)
        {
            r.leaves = left;
            book.orders.insert(id, r);
        }
    }
}
