//! Pre-trade risk for trade2026: configurable limits, checks with stable reject codes, and a
//! per-account kill switch. Pure: no I/O, no clocks, no threads; time is the order's
//! timestamp. Decisions are data ([`RiskReject`]); run-time limit changes are journaled as
//! `Event::ConfigChanged { section: "risk" }` and replayed by [`RiskEngine::apply`].
//!
//! # Snapshots
//!
//! [`RiskEngine`] implements `Serialize` / `Deserialize`: the limits in force (config plus
//! run-time changes), and per account the order-rate window and the kill switch, tagged with
//! [`SNAPSHOT_VERSION`]. Restoring and continuing decides exactly as the original would.
//!
//! # Memory bounds
//!
//! The engine keeps no per-order or per-day history ([`RiskEngine::footprint`] reports sizes):
//! * a rate window holds the admitted orders of the last second only: at most
//!   `max_orders_per_sec` entries per account, pruned on each check;
//! * an account has state only while it has such a recent order or an engaged kill switch: a
//!   sweep, at most once per second of event time (on `check`), drops idle accounts, and a
//!   kill-switch reset drops an idle account at once. So accounts that traded once, weeks ago,
//!   cost nothing; engaged kill switches stay (an admin must reset them);
//! * the daily loss check reads today's P&L from the caller ([`RiskContext::daily_pnl`]):
//!   nothing is counted per day here;
//! * limits grow only with configured scopes (config file and admin changes), not with trading.

mod codes;
mod engine;
mod error;
mod limits;

#[cfg(test)]
mod tests;

pub use codes::RejectCode;
pub use engine::{
    KillSwitch, LimitsChange, RiskContext, RiskEngine, RiskFootprint, RiskReject, SECTION,
    SNAPSHOT_VERSION,
};
pub use error::RiskError;
pub use limits::{EffectiveLimits, LimitSet, RiskLimits, Scope, Setting, Source};
