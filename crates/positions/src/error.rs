use thiserror::Error;

/// Why a fill or mark could not be applied. The positions are left unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PositionsError {
    /// A notional or P&L does not fit a `Decimal` (absurd magnitudes only).
    #[error("arithmetic overflow computing {what} for {account} {instrument}")]
    Overflow {
        what: &'static str,
        account: String,
        instrument: String,
    },
}
