//! Where market data comes from.
//!
//! - [`synthetic`]: a deterministic, seeded market (the embedded default) so a fresh
//!   `trade2026 up` has moving prices with no network.
//! - [`live`]: WebSocket clients for the exchanges' public streams, reconnecting with backoff.
//! - [`replay`]: recorded events played back at recorded pace or as fast as possible.
//!
//! Every source sends `model::Event`s into a `tokio::sync::mpsc::Sender`; the caller decides
//! where they go (the bus/journal in `trade2026 up`, stdout in `trade2026 md replay`).

pub mod live;
pub mod replay;
pub mod synthetic;

mod error;
pub use error::FeedError;
