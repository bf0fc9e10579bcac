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
    EngineParams, EngineStats, EntityKeyRef, FeatureEngine, WINDOW_1H_NS, WINDOW_1M_NS,
    WINDOW_5M_NS,
};
pub use error::FeaturesError;
pub use history::{history, history_with};
