//! ptrc: P&L, tax, risk and compliance computations for trade2026.
//!
//! Pure library code (no I/O beyond parsing text handed in): the ptrc HTTP service (port 8109),
//! the `trade2026 ptrc ...` CLI and the persisted reports all call these functions.
//!
//! - [`input`]: the CSV inputs (trades, marks, positions, prices) with errors naming line and
//!   column.

pub mod input;

mod error;
pub use error::PtrcError;
