//! Positions per account and instrument, folded from fills: net quantity, average cost,
//! realized and unrealized P&L, fees, and today's realized P&L for daily loss limits.
//!
//! Pure and deterministic: no I/O, no clock; time comes from the fills' and marks' timestamps,
//! and maps are ordered. Rebuilding after a restart is replaying the journal's fills (and
//! quotes) through [`Positions::on_event`]; a fill whose id is not above the last fill applied
//! to that position is ignored, so replaying a fill twice cannot double it.
//!
//! # Average-cost method
//!
//! The position keeps an exact signed cost basis (`cost_basis = avg_price x net_qty`):
//! * a fill that increases the position (or opens it) adds `price x signed qty` to the cost;
//! * a fill that reduces it realizes `(price - avg) x closed qty x sign(position)`, i.e. the
//!   proceeds minus the share of the cost basis it removes;
//! * a fill that goes through zero realizes the closing part and opens the remainder at the
//!   fill price.
//!
//! A partial close removes `cost x closed / |net|`; when that is a repeating fraction it is
//! rounded to `max(12, scale of the cost basis)` decimal places and the remainder stays in the
//! cost basis. Closing the rest removes the whole basis, so over any sequence of fills that ends
//! flat, realized P&L is exactly `sum(sell notional) - sum(buy notional)`.
//!
//! Fees are tracked separately in `fees` (negative = rebates) and are *not* part of
//! `realized_pnl`; [`Position::net_realized_pnl`] is `realized_pnl - fees`.
//!
//! # Marks
//!
//! `unrealized_pnl = (mark - avg_price) x net_qty`, computed exactly as
//! `mark x net_qty - cost_basis`. Mark sources, best first: a quote's mid (or a book snapshot's
//! mid), then the last trade price (used only while the instrument never had a mid), then the
//! fill price (used only while the instrument has no mark at all). A mark applies to every
//! account's position in the instrument, and positions opened later start at the latest mark.
//!
//! # Today's realized P&L
//!
//! Each position keeps `realized_today` and `fees_today` for `day`, the UTC date of the latest
//! fill or mark timestamp it saw. A fill or mark on a later date starts a new day (both reset to
//! zero first); a fill stamped on an earlier date than `day` still counts in the totals but not
//! in today's figures. [`Positions::account_realized_on`] sums the positions whose `day` is the
//! asked date, so the answer depends only on the events, never on a clock.
//!
//! # Snapshots
//!
//! [`Positions`] implements `Serialize` / `Deserialize`: every position (decimals as strings,
//! exact) and every instrument's mark with its source, tagged with [`SNAPSHOT_VERSION`].
//! Restoring and continuing gives the same positions and answers as continuing the original.
//!
//! # Memory bounds
//!
//! Nothing is kept per fill or per day ([`Positions::footprint`] reports sizes): one
//! [`Position`] per (account, instrument) that ever traded (a flat one stays: it carries the
//! realized P&L and fees reported for the account), one mark per instrument, and for today's
//! figures only the latest day per position (`day`, `realized_today`, `fees_today`; a new day
//! overwrites them). The risk check needs nothing older than today.

mod error;
mod position;

pub use error::PositionsError;
pub use position::{DailyPnl, Position, Positions, PositionsFootprint, SNAPSHOT_VERSION};
