//! The trade2026 paper venue: a pure, deterministic matching simulator.
//!
//! No I/O, no clocks, no threads: time only enters as [`model::Timestamp`] arguments and inside
//! events, and every collection that is iterated is ordered, so the same inputs always give the
//! same outputs. The engine owns one [`PaperVenue`] and drives it with three kinds of calls:
//!
//! * live: [`PaperVenue::on_order`] for an order the OMS and risk accepted, and
//!   [`PaperVenue::on_market_data`] for every market-data event; both return the events the venue
//!   produced (acceptances, stop triggers, fills, expiries, rejections) for the engine to journal
//!   and publish;
//! * [`PaperVenue::cancel`] and [`PaperVenue::expire_day_orders`] for order management;
//! * replay: [`PaperVenue::apply`] folds journaled events back into the venue's state after a
//!   restart **without emitting anything**. During replay the engine must call only `apply`,
//!   never `on_order` / `on_market_data` (those emit, and would duplicate fills). `apply` also
//!   advances the fill-id counter past every replayed fill, so live fills continue the sequence.
//!
//! # Matching rules (the documented paper model)
//!
//! **The book.** Each instrument has a [`MarketState`]: bid and ask levels in `BTreeMap`s keyed
//! by price. A `BookSnapshot` replaces both sides; a `BookDelta` sets levels (quantity zero
//! deletes). A `Quote` is treated as the book's top level: with no depth known the book *is* the
//! quote (one level per side, with its sizes); with depth known the quote overwrites the top
//! level of each side and drops levels better than it (they are stale). A `Trade` sets the last
//! trade price. `Bar` and `FundingRate` events are ignored. Each side keeps at most
//! [`MAX_LEVELS_PER_SIDE`] levels: beyond that the worst are dropped (feeds that publish only a
//! top-N window never delete the levels falling out of it).
//!
//! **Consumed liquidity.** Paper fills do not change the real market, so the book is kept as the
//! market shows it and the venue records per level how much of the displayed size its own taker
//! fills used. Available = displayed - consumed. New market data for a level (snapshot: all
//! levels; delta or quote: the levels it names or removes) resets that level's consumption.
//!
//! **Market orders** walk the opposite side in price order, one taker fill per level at the
//! level's price, limited by available size. With GTC/DAY a remainder beyond the displayed depth
//! fills at once at the worst displayed level's price moved against the taker by
//! `market_slippage_bps` (default 0), so such market orders always complete. With IOC the
//! remainder expires; with FOK the order fills only when available depth covers it, else it
//! expires with no fill. A market order is rejected (`OrderRejected`, no `OrderAccepted`) with
//! code `no_market_data` when the instrument has had no market data, and `no_liquidity` when the
//! opposite side of the book is empty.
//!
//! **Limit orders** first take available liquidity at or better than the limit (taker fills at
//! level prices); the remainder rests (GTC/DAY) or expires (IOC). FOK fills completely when the
//! available quantity within the limit covers it, else expires with no fill.
//!
//! **Resting limit orders** (maker, always at the resting limit price) fill when:
//! * a trade prints *through* the limit (buy: trade price < limit; sell: trade price > limit):
//!   the whole remaining quantity fills, whatever the print's size;
//! * a trade prints *at* the limit: fills up to the printed quantity, shared among the orders at
//!   that price in order-id (time) priority;
//! * the book crosses the limit (buy: available asks at or below the limit; sell: available bids
//!   at or above it): fills up to the crossing available quantity, which is then consumed.
//!   Orders are served in price then order-id priority; one fill per order per event.
//!   The trade's aggressor side is ignored, and the venue never matches its own resting orders
//!   against each other. Any maker fill uses up displayed liquidity at or better than its limit
//!   if some is left (which only happens with latency: an order not yet eligible when the book
//!   crossed it), so a replayed fill re-records exactly what the live one consumed.
//!
//! **Stops.** The reference price is the last trade, or the book mid while no trade has been
//! seen. A buy stop triggers when reference >= stop price, a sell stop when reference <= stop
//! price, checked when the order arrives and after every market-data event (after resting limit
//! orders were matched, so the print that triggers a stop-limit does not also fill it as a trade
//! through). A triggered stop behaves as a market order, a triggered stop-limit as a limit order
//! arriving at that moment (with its time in force). A triggered market stop that finds an empty
//! book side expires with reason `no_liquidity`. The venue emits `OrderTriggered` for the order
//! right before that order's fills / expiry (or, for a stop-limit that cannot trade, as the only
//! event saying it now rests at its limit).
//!
//! # Restarts
//!
//! Whether a stop fired is a decision, journaled as `OrderTriggered`; [`PaperVenue::apply`]
//! marks a stop triggered only on that event (or on a fill of the stop, for journals written
//! before the event existed) and never re-derives it from replayed market data. The journal may
//! end with market data the engine never acted on (it crashed first): replaying it updates the
//! book only, and the first live market-data event re-checks every pending stop against the
//! market as it then stands, so a stop reached while the engine was down fires and executes then
//! (as a taker when marketable), exactly as if that update had triggered it. Resting limit orders
//! that such a tail crossed are filled by the next live quote or book update that still crosses
//! them; a print in the tail that traded through them is not acted on.
//!
//! # Snapshots
//!
//! [`PaperVenue`] implements `Serialize` / `Deserialize` (serde_json in practice): config, fill-id
//! counter, every book (market, consumed liquidity, resting orders) and the replay's pending
//! orders, tagged with [`SNAPSHOT_VERSION`]. Restoring a snapshot and continuing gives the same
//! outputs and state as continuing the original; a snapshot of another version, or one that
//! contradicts itself, is refused with a [`VenueError`].
//!
//! # Memory bounds
//!
//! Nothing grows with history; [`PaperVenue::footprint`] reports every collection's size.
//! * resting orders and the order-id index: the orders open at the venue; an order leaves both
//!   on its last fill, expiry or cancel (live and in replay);
//! * pending orders (replay only, `OrderSubmitted` waiting for its `OrderAccepted`): the
//!   acceptance follows in the same journal batch, so normally none; at most
//!   [`MAX_PENDING_ORDERS`], oldest dropped, should torn batches leave some behind;
//! * books: one per instrument seen; each side at most [`MAX_LEVELS_PER_SIDE`] levels (the worst
//!   are dropped), consumed liquidity only for displayed levels.
//!
//! **Fees** are `notional x bps / 10_000` with the maker or taker rate (negative = rebate), exact
//! in `Decimal` (exact as long as the scales of price, quantity and rate sum to at most 28).
//! A fill whose notional or fee would overflow is not made: the walk stops there and the order's
//! time in force handles the rest (market remainders expire with reason `notional_overflow`).
//!
//! **Latency** (`latency_ns`, default 0): the events `on_order` returns (acceptance, immediate
//! fills, expiry) are stamped `ts + latency_ns`; the immediate match uses the book known at the
//! call (a pure model cannot see the future book). With a latency above zero a resting order
//! ignores market data stamped before its acceptance time. With latency zero every market-data
//! event after the call may fill it, whatever its timestamp (exchange clocks may lag). Fills made
//! by market data are stamped with the later of the event time and the order's acceptance time.
//!
//! **Fill ids** are strictly increasing, starting at `VenueConfig::first_fill_id`;
//! [`PaperVenue::set_next_fill_id`] moves the counter (it never moves backwards via `apply`).

mod config;
mod error;
mod market;
mod pairs;
mod venue;

pub use config::{FeeSchedule, VenueConfig};
pub use error::VenueError;
pub use market::{MAX_LEVELS_PER_SIDE, MarketState};
pub use venue::{
    MAX_PENDING_ORDERS, PaperVenue, RestingOrder, SNAPSHOT_VERSION, VenueFootprint, codes, reasons,
};
