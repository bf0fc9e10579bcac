//! The trade2026 domain model.
//!
//! Every fact the platform records is an [`Event`]; every value inside one is a checked type:
//! a [`Price`] is positive, a [`Quantity`] is never negative, identifiers are non-empty and
//! bounded. Constructors (`new` / `TryFrom` / `Deserialize`) enforce this, so code downstream
//! never re-validates. This crate does no I/O.

mod error;
mod event;
mod ids;
mod market;
mod num;
mod order;
pub mod text;
mod time;

pub use error::ModelError;
pub use event::{Event, EventKind};
pub use ids::{AccountId, ClientOrderId, FillId, InstrumentId, OrderId, Symbol, Venue};
pub use market::{
    Bar, BookDelta, BookLevel, BookSide, BookSnapshot, FundingRate, Quote, TradeTick,
};
pub use num::{Money, Price, Quantity};
pub use order::{
    AVG_PRICE_DP, Fill, FillProgress, FillProgressError, Liquidity, Order, OrderStatus, OrderType,
    Side, TimeInForce,
};
pub use rust_decimal::Decimal;
pub use time::Timestamp;
