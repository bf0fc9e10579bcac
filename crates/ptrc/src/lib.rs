//! ptrc: P&L, tax, risk and compliance computations for trade2026.
//!
//! Pure library code (no I/O beyond parsing text handed in): the ptrc HTTP service (port 8109),
//! the `trade2026 ptrc ...` CLI and the persisted reports all call these functions.
//!
//! - [`input`]: the CSV inputs (trades, marks, positions, prices) with errors naming line and
//!   column.
//! - [`pnl`]: realized/unrealized P&L under FIFO, LIFO, AVG, HIFO or specific lots, open lots,
//!   fees, shorts and a daily series per account; CSV and HTML renderings.
//! - [`risk`]: VaR and Expected Shortfall (historical, parametric, EWMA, Monte Carlo),
//!   component VaR, Kupiec backtest; CSV and HTML renderings.
//! - [`stress`]: historical-scenario and user-shock stress tests; CSV and HTML renderings.
//! - [`tax`]: US tax lots (FIFO or named lots) and wash sales: Form 8949 / 1099-B rows per tax
//!   year with totals, carried open lots; CSV and HTML renderings (docs/TAX.md).

pub mod input;
pub mod pnl;
pub mod risk;
pub mod stress;
pub mod tax;

mod error;
pub use error::PtrcError;
