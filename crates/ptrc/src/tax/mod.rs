//! US tax lots and wash sales: Form 8949 / 1099-B rows for a tax year.
//!
//! Follows `shared/specs/us-tax-lots-and-wash-sales.md`; every choice it leaves open is a field of
//! [`TaxSettings`] (see docs/TAX.md). In short:
//!
//! - Lots are relieved FIFO in real purchase order (Reg. §1.1012-1(c)(1), spec rule 18) unless a
//!   sale names its lots (`lot_ids`, specific identification). AVG and LIFO are book methods and
//!   are not offered here (ambiguity 11).
//! - Gain or loss is computed per sold lot, never on the net of an order (ambiguity 9); buy
//!   commissions go into basis, sell commissions reduce proceeds (rule 20, ambiguity 1).
//! - A loss is washed by substantially identical shares (here: the same symbol) acquired in the
//!   61-day window (rules 1-2) by the same owner (or account, by setting), matched earliest
//!   acquisition first (rules 4-5), losses in order of sale (rule 7), one bite per replacement
//!   share (rule 6). The disallowed loss goes into the replacement's basis (rule 8) and the sold
//!   shares' holding period is tacked on (rule 9); chains carry through because a replacement's
//!   adjusted basis is what its own later sale is measured against.
//! - Long-term = held more than one year by calendar anniversary, counting from the day after
//!   acquisition (rule 10).
//!
//! - A loss on covering a short (IRC §1091(e), rule 13) is washed by a short sale entered into
//!   in the window (open at the cover or entered into after it) or by shares sold on or after
//!   the cover within it; the loss goes into the cost of covering that short, or the basis of the
//!   shares sold (§1091(d) by analogy). docs/TAX.md "Short sales and §1091(e)" gives the rule
//!   and why, since no regulation example covers it.
//!
//! Known gaps (documented in docs/TAX.md): shares sold before a loss cover do not wash it;
//! shares bought to cover a short are never replacements; options, IRAs and a spouse's accounts
//! are outside the model (ambiguity 14); "substantially identical" means the same symbol.

mod engine;
mod render;
mod settings;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::sync::Arc;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

pub use engine::{form_8949, form_8949_to};
pub use render::{TaxFormat, TaxStream, tax_to_csv, tax_to_html};
pub use settings::{
    DateAcquiredDisplay, Feb29Anniversary, FeePresentation, FifoOrder, RowCombining, RowSplitting,
    SublotOrder, TackMethod, TaxSettings, WashSaleCoverage, WashSaleScope,
};

/// Whose rows a report shows. Wash sales are still found across all of the owner's accounts
/// under [`WashSaleScope::Owner`], whatever the filter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaxFilter {
    Account(String),
    Owner(String),
}

/// Short-term (held one year or less) or long-term (more than one year).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Term {
    Short,
    Long,
}

impl Term {
    /// Form 8949 part: I for short-term, II for long-term.
    pub fn part(self) -> &'static str {
        match self {
            Term::Short => "I",
            Term::Long => "II",
        }
    }
}

/// One Form 8949 row: the lots one sale closed that share date acquired, term, code and lot id
/// ([`RowCombining::PerSale`]), or one closed lot ([`RowCombining::PerLot`]); a partly washed
/// lot gives a washed and an unwashed part under [`RowSplitting::Split`]. Amounts are exact
/// decimals, serialized as strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaxRow {
    /// Names are shared by every row of a book (a report holds a million rows).
    pub account: Arc<str>,
    pub owner: Arc<str>,
    pub symbol: Arc<str>,
    /// Column (a): quantity and symbol, e.g. `100 XYZ`.
    pub description: String,
    pub qty: Decimal,
    /// The lot id the buy named, if any.
    pub lot_id: Option<String>,
    /// Column (b): per [`DateAcquiredDisplay`]; for a short sale, the date the covering shares
    /// were bought.
    pub date_acquired: NaiveDate,
    /// Column (c).
    pub date_sold: NaiveDate,
    /// Column (d).
    pub proceeds: Decimal,
    /// Column (e).
    pub cost_basis: Decimal,
    /// Column (f): `W` for a wash sale, else empty.
    pub adjustment_code: Cow<'static, str>,
    /// Column (g): the disallowed loss as a positive number (rule 14), else 0.
    pub adjustment: Decimal,
    /// Column (h) = (d) − (e) + (g) (rule 15).
    pub gain_loss: Decimal,
    pub term: Term,
    /// `I` (short-term) or `II` (long-term).
    pub part: Cow<'static, str>,
    /// The closing of a short sale (always short-term here).
    pub short_sale: bool,
}

/// Column totals of one term (or of all rows).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TermTotals {
    pub rows: usize,
    pub proceeds: Decimal,
    pub cost_basis: Decimal,
    pub adjustment: Decimal,
    pub gain_loss: Decimal,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaxTotals {
    /// Part I.
    pub short: TermTotals,
    /// Part II.
    pub long: TermTotals,
    pub total: TermTotals,
}

/// A lot held at the end of the tax year, carried into the next year with its adjusted basis
/// and tacked holding period (ambiguity 15).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenLot {
    pub account: String,
    pub owner: String,
    pub symbol: String,
    pub lot_id: Option<String>,
    pub qty: Decimal,
    /// Basis including buy commission and any disallowed losses added to it.
    pub cost_basis: Decimal,
    /// The part of `cost_basis` that is deferred wash-sale loss (0 if none).
    pub wash_adjustment: Decimal,
    /// Real trade date of the purchase.
    pub date_acquired: NaiveDate,
    /// Start of the (tacked) holding period.
    pub holding_period_start: NaiveDate,
}

/// A short position open at the end of the tax year.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenShort {
    pub account: String,
    pub owner: String,
    pub symbol: String,
    pub qty: Decimal,
    /// Net proceeds of the short sale still open.
    pub proceeds: Decimal,
    /// Deferred loss of an earlier short covered at a loss that this short sale washed
    /// (§1091(e)); it is added to the cost basis when this short is covered (0 if none).
    pub wash_adjustment: Decimal,
    pub date_opened: NaiveDate,
}

/// What absorbed a disallowed loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Replacement {
    /// Shares acquired (§1091(a)): the loss went into their basis.
    Purchase,
    /// A short sale entered into (§1091(e)(2)): the loss goes into the cost of covering it.
    ShortSale,
    /// Shares sold (§1091(e)(1)): the loss went into the basis of the shares sold.
    Sale,
}

/// One replacement match: which purchase absorbed (part of) a loss sold in the tax year. A
/// replacement bought after the year end carries a year-1 disallowed loss into year 2
/// (ambiguity 15).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WashMatch {
    pub symbol: Arc<str>,
    pub sale_account: Arc<str>,
    /// The date of the loss: the sale, or the cover of a short sale.
    pub date_sold: NaiveDate,
    /// The loss was realized on covering a short sale (IRC §1091(e)).
    pub short_sale: bool,
    pub replacement: Replacement,
    pub replacement_account: Arc<str>,
    /// The purchase, the short sale entered into, or the sale of shares that absorbed the loss.
    pub replacement_date: NaiveDate,
    pub qty: Decimal,
    /// Disallowed loss moved into the replacement's basis.
    pub disallowed: Decimal,
    /// The replacement's tacked holding-period start (for a short sale or a sale replacement:
    /// its own date, since a short sale's holding period is that of the shares delivered to
    /// close it, none here).
    pub holding_period_start: NaiveDate,
}

/// Where [`form_8949_to`] sends rows and wash matches as they become final, in order of sale
/// (Part I and Part II rows interleaved: a writer keeps Part II aside, see [`TaxStream`]). A
/// row is final once no later trade can change it: its loss is fully washed or its window has
/// closed, so the engine holds only the rows of the last window, never the year's. Rows and
/// matches are lent: the engine refills one of each (no allocation per row for a sink that
/// writes them out); a sink that keeps them clones them.
pub trait TaxSink {
    type Error: From<crate::PtrcError>;
    fn row(&mut self, row: &TaxRow) -> Result<(), Self::Error>;
    fn wash(&mut self, wash: &WashMatch) -> Result<(), Self::Error>;
}

/// Everything of a [`TaxReport`] but its rows and washes (which went to a [`TaxSink`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaxSummary {
    pub year: i32,
    pub filter: Option<TaxFilter>,
    pub totals: TaxTotals,
    pub open_lots: Vec<OpenLot>,
    pub open_shorts: Vec<OpenShort>,
    pub notes: Vec<String>,
    pub settings: TaxSettings,
    /// Lots (or parts of lots) closed in the year and reported, before rows were combined.
    pub lots_closed: usize,
}

/// The Form 8949 data of one tax year.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaxReport {
    pub year: i32,
    pub filter: Option<TaxFilter>,
    /// Part I rows, then Part II rows, each in order of sale.
    pub rows: Vec<TaxRow>,
    pub totals: TaxTotals,
    /// The wash sales of losses sold in the year (for 1099-B box 1g and the audit trail).
    pub washes: Vec<WashMatch>,
    /// Lots held at the end of the year.
    pub open_lots: Vec<OpenLot>,
    pub open_shorts: Vec<OpenShort>,
    /// Caveats, e.g. a loss near the end of the input whose window reaches past the last trade.
    pub notes: Vec<String>,
    pub settings: TaxSettings,
}
