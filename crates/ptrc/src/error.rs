use thiserror::Error;

/// Errors of the ptrc computations. Input errors name the source, line and column.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PtrcError {
    #[error("{source_name}:{line}: column {column:?}: {reason}")]
    BadField {
        source_name: String,
        line: u64,
        column: String,
        reason: String,
    },
    /// A line that is not a CSV record at all (too long, unbalanced quotes, wrong number of
    /// fields, not UTF-8).
    #[error("{source_name}:{line}: {reason}")]
    BadLine {
        source_name: String,
        line: u64,
        reason: String,
    },
    #[error("{source_name}: {reason}")]
    BadInput { source_name: String, reason: String },
    /// The computation cannot proceed on valid-looking input (e.g. a sell with no position
    /// under a long-only setting); says which trade.
    #[error("{0}")]
    Invalid(String),
    /// A question the incremental P&L book (`pnl::PnlBook`) cannot answer from the open lots and
    /// aggregates it holds (e.g. a `to` date before trades it has already folded): answer it with
    /// `pnl::compute_iter` over a replay of the trades.
    #[error("{0}")]
    NeedsReplay(String),
    /// Writing a streamed report failed (e.g. the output pipe closed): the I/O error's text.
    #[error("writing the report: {0}")]
    Write(String),
    /// A trade the computation cannot accept (e.g. a sell without a position under long-only).
    /// `number` is the trade's 1-based position in the slice given; for trades read by
    /// `input::read_trades` from a file without blank lines its CSV line is `number + 1`.
    #[error("{trade}: column {column:?}: {reason}")]
    TradeRejected {
        number: u64,
        trade: String,
        column: String,
        reason: String,
    },
}
