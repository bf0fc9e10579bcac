//! Pure feature computations for trade2026's feature pipeline.
//!
//! * [`views`] — the feature-view table (names, entities, types, TTLs): the single source for
//!   the Feast repo generator and the online stores.
//! * [`FeatureEngine`] — folds journal [`model::Event`]s and computes [`FeatureRow`]s as of an
//!   event time, over exact sliding windows `[as_of - w, as_of]` (closed at both ends).
//! * [`history`] — point-in-time correct offline retrieval: each request's row uses only events
//!   with `ts <= request ts`.
//! * [`read_entities_csv`] / [`rows_to_csv`] — the CLI's CSV in and out.
//!
//! Windows are in event time, never processing time, so replaying the same events gives the
//! same values. Sums are exact (decimals, or integers of fixed small units for log returns and
//! slippage); every feature is converted to `f64` once, at the end: these are statistics for
//! models, not money. See `docs/FEATURES.md` for every definition.
//!
//! # Snapshots
//!
//! [`FeatureEngine`] is serde `Serialize + Deserialize`: serializing it, restoring it and
//! folding the following events gives exactly the rows, changed keys and state of folding them
//! without interruption. The snapshot holds the parameters, every window with its exact running
//! sums, the open orders, the positions (the positions crate's own snapshot) and the entities
//! changed since the last [`FeatureEngine::changed_rows`]; it is canonical (the same state
//! always serializes to the same bytes) and checked on restore. Entity names shared between
//! the engine's tables come back as separate copies. [`FeatureEngine::SNAPSHOT_VERSION`] names
//! the layout.
//!
//! # Memory bounds
//!
//! Nothing is kept per event beyond the windows, so memory stays flat over weeks of events
//! ([`FeatureEngine::state_stats`] reports each size):
//! * trades: per instrument, those inside the 1-minute and 5-minute windows of its latest trade
//!   (plus the newest evicted one, the price reference); a trade older than the window when it
//!   arrives is counted in `EngineStats::outside_window`, not kept;
//! * order events: per account, those inside the 1-hour window of its latest order event;
//! * open orders: from submission until rejected, cancelled, expired or completely filled. So
//!   they are bounded by the orders open at a time (the risk limit `max_open_orders` per
//!   account), not by the orders ever placed; a resting order is kept however old, because its
//!   later fills need its arrival mid;
//! * per entity: one state per instrument (top of book, the book's price levels as the venue
//!   reports them, cleared by each snapshot, the accounts holding it), per account, per
//!   (account, instrument) that traded (names and the positions crate's position); the changed
//!   entities until `changed_rows`. Accounts and instruments are the platform's configured
//!   universe, which does not grow with the number of orders, fills or days.

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
