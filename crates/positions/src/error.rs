use thiserror::Error;

/// Why a fill or mark could not be applied (the positions are left unchanged), or a snapshot
/// could not be restored.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PositionsError {
    /// A notional or P&L does not fit a `Decimal` (absurd magnitudes only).
    #[error("arithmetic overflow computing {what} for {account} {instrument}")]
    Overflow {
        what: &'static str,
        account: String,
        instrument: String,
    },
    /// A snapshot written by another version of the positions' state layout.
    #[error("positions snapshot version {found} is not the supported version {expected}")]
    SnapshotVersion { found: u32, expected: u32 },
    /// A snapshot whose content contradicts itself (it was not written by this crate).
    #[error("invalid positions snapshot: {0}")]
    InvalidSnapshot(String),
}
