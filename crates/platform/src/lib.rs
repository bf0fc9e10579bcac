//! The imperative shell of `trade2026 up`: opens the journal, starts the market-data sources,
//! the consumers (sinks, gateway market cache) and the HTTP ports, and stops them in the right
//! order so that nothing acknowledged is lost.
//!
//! Data flow: feed -> mpsc channel -> publisher (group-committed journal appends) -> bus
//! subscribers (each a durable consumer rebuilding its own state).

mod error;
mod feed_metrics;
mod feeds_spec;
mod parts;
pub mod run;
mod services;

pub use error::PlatformError;
pub use feeds_spec::FeedSpec;
pub use parts::Running;
pub use run::{Service, run};
pub use services::{Options, start};
