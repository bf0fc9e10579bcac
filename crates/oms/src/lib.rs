//! Order management for trade2026: the order lifecycle as a pure, event-sourced state machine.
//!
//! No I/O, no clocks, no threads: time comes in as [`model::Timestamp`] arguments and every
//! state change is the fold of a journaled [`model::Event`] through [`Oms::apply`]. Commands
//! (`submit`, `cancel`, ...) only propose events. See [`Oms`] for the lifecycle and the
//! calling convention.

mod error;
mod oms;
mod request;

#[cfg(test)]
mod property_tests;
#[cfg(test)]
mod tests;

pub use error::OmsError;
pub use oms::{AVG_PRICE_DP, CLIENT_CANCEL_REASON, Oms, Retention, SESSION_END_REASON, Submit};
pub use request::NewOrder;
