//! Pure feature computations for trade2026's feature pipeline.
//!
//! * [`views`] — the feature-view table (names, entities, types, TTLs): the single source for
//!   the Feast repo generator and the online stores.
//! * [`FeatureEngine`] — folds journal [`model::Event`]s and computes [`FeatureRow`]s as of an
//!   event time, over sliding windows of fixed panes (see "Windows" below).
//! * [`history`] — point-in-time correct offline retrieval: each request's row uses only events
//!   with `ts <= request ts`.
//! * [`read_entities_csv`] / [`rows_to_csv`] — the CLI's CSV in and out.
//!
//! Windows are in event time, never processing time, so replaying the same events gives the
//! same values. Sums are exact (decimals, or integers of fixed small units for log returns and
//! slippage); every feature is converted to `f64` once, at the end: these are statistics for
//! models, not money. See `docs/FEATURES.md` for every definition.
//!
//! # Windows
//!
//! A window of length `L` (1 min, 5 min, 1 h) is kept as [`PANES`] = 600 panes of width
//! `w = L / 600` (100 ms, 500 ms, 6 s), each the running sums of its events: pane `k` holds the
//! events with `ts` in `[k·w, (k+1)·w)`. As of `t`, a windowed feature covers the panes that
//! intersect `[t - L, t]`, that is the events with `ts` in `[window_start(L, t), t]`, where
//! [`window_start`]`(L, t) = floor((t - L) / w) · w`. That is the exact window plus at most
//! `w - 1 ns` before it (none when `t - L` falls on a pane boundary), closed at both ends.
//! An exact sliding window needs memory proportional to the event rate times its length (an
//! hour of order events at 1,000 orders/s is millions of items); panes hold at most
//! `PANES + 1` sums per window whatever the rate, for an error of at most one pane (1/600 of
//! the length) at the old end. All three windows use panes: they are model inputs, and none
//! needs its old end to the nanosecond, so the 1-minute window is not kept exact either.
//!
//! * A late event (older than its window's newest) is added to its pane while that pane is
//!   still kept (it intersects the window as of the newest event); an older one is not in the
//!   window's sums (counted in [`EngineStats::outside_window`] for the 5-minute trade and the
//!   1-hour order windows). The panes depend only on the events and their journal order, so a
//!   replay or a `history` gives the same values as the live engine.
//! * `return_1m` / `return_5m` compare the last price with the **newest trade before the
//!   window's start** (`ts < window_start`; ties: the later in journal order), the price the
//!   window's trades moved away from. A pane sum cannot give a price, so each pane keeps the
//!   price of its newest trade and each window the newest price before its kept panes: one
//!   value each, not the trades. A late trade older than the window still becomes that
//!   reference when it is newer than the current one.
//!
//! # Snapshots
//!
//! [`FeatureEngine`] is serde `Serialize + Deserialize`: serializing it, restoring it and
//! folding the following events gives exactly the rows, changed keys and state of folding them
//! without interruption. The snapshot holds the parameters, every window's panes and running
//! total (exact sums, written as lists of numbers), the open orders, the positions (the
//! positions crate's own snapshot) and the entities changed since the last
//! [`FeatureEngine::changed_rows`]; it is canonical (the same state always serializes to the
//! same bytes) and checked on restore (window lengths, panes in order and inside their window). Entity names shared between
//! the engine's tables come back as separate copies. [`FeatureEngine::SNAPSHOT_VERSION`] names
//! the layout.
//!
//! # Memory bounds
//!
//! Nothing is kept per event, so memory stays flat over weeks of events whatever their rate
//! ([`FeatureEngine::state_stats`] reports each size):
//! * trades: per instrument, at most `PANES + 1` panes in each of the 1-minute and 5-minute
//!   windows (a pane exists only while it holds a trade), plus one reference price each;
//! * order events: per account, at most `PANES + 1` panes of the 1-hour window;
//! * open orders: from submission until rejected, cancelled, expired or completely filled. So
//!   they are bounded by the orders open at a time (the risk limit `max_open_orders` per
//!   account), not by the orders ever placed; a resting order is kept however old, because its
//!   later fills need its arrival mid;
//! * per entity: one state per instrument (top of book, the book's price levels as the venue
//!   reports them, cleared by each snapshot and at most [`MAX_BOOK_LEVELS`] per side, the
//!   accounts holding it), per account, per (account, instrument) that traded (names and the
//!   positions crate's position); the changed entities until `changed_rows`. Accounts and
//!   instruments are the platform's configured universe, which does not grow with the number
//!   of orders, fills or days.
//!
//! A trade pane takes 128 bytes of memory and ~120 of snapshot JSON, an order pane 96 and ~50:
//! with every pane full, an instrument's two trade windows take ~155 KB of memory (~145 KB of
//! snapshot) and an account's order window ~58 KB (~30 KB), at any event rate.

mod csv_io;
mod defs;
mod engine;
mod error;
mod history;
mod window;

pub use csv_io::{parse_ts, read_entities_csv, rows_to_csv};
pub use defs::{
    Dtype, FeatureDef, FeatureRow, FeatureValue, FeatureView, MARKET_FEATURES, ORDER_FEATURES,
    POSITION_FEATURES, POSITION_SYMBOL_FEATURES, view, views,
};
pub use engine::{
    EngineParams, EngineStats, EntityKeyRef, FeatureEngine, MAX_BOOK_LEVELS, StateStats,
    WINDOW_1H_NS, WINDOW_1M_NS, WINDOW_5M_NS,
};
pub use error::FeaturesError;
pub use history::{history, history_with};
pub use window::{PANES, window_start};
