//! Pre-trade risk for trade2026: configurable limits, checks with stable reject codes, and a
//! per-account kill switch. Pure: no I/O, no clocks, no threads; time is the order's
//! timestamp. Decisions are data ([`RiskReject`]); run-time limit changes are journaled as
//! `Event::ConfigChanged { section: "risk" }` and replayed by [`RiskEngine::apply`].

mod codes;
mod engine;
mod error;
mod limits;

#[cfg(test)]
mod tests;

pub use codes::RejectCode;
pub use engine::{KillSwitch, LimitsChange, RiskContext, RiskEngine, RiskReject, SECTION};
pub use error::RiskError;
pub use limits::{EffectiveLimits, LimitSet, RiskLimits, Scope, Setting, Source};
