//! The trading core of trade2026.
//!
//! [`TradingCore`] is pure: it folds events into the OMS, risk, venue and positions state and
//! turns commands (submit, cancel, market data) into new events. [`Engine`] is the thin shell
//! around it: one task owns the core (no locks on the hot path, LMAX style), journals every
//! decision with group commit, and answers callers only once their events are durable.

mod core;
mod error;
mod lifecycle;
mod shell;

pub use crate::core::{CoreConfig, Outcome, Reserved, Stopwatch, TradingCore};
pub use error::EngineError;
pub use shell::{Engine, EngineConfig, EngineGauges, ExecutionReport, Query, QueryAnswer, Started};
