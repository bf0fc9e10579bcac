//! Every choice the spec (`shared/specs/us-tax-lots-and-wash-sales.md`) leaves open, as a
//! documented setting. "Ambiguity N" below refers to the spec's numbered list "Ambiguities a
//! developer could get wrong"; "rule N" to its rules table. docs/TAX.md describes the same.

use serde::{Deserialize, Serialize};

/// Whose purchases can wash a loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WashSaleScope {
    /// The law: a purchase in any account of the same owner washes the loss (ambiguity 14).
    Owner,
    /// What brokers report in 1099-B box 1g: the same account only (rule 17). Shows fewer wash
    /// sales than the law requires.
    Account,
}

/// How the sold shares' holding period is tacked onto the replacement (rule 9, ambiguity 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TackMethod {
    /// The holding period is the union of the two periods: when the replacement was bought
    /// before the loss sale (overlap), the start is the earlier of the two real dates
    /// (Reg. §1.1091-1(h) Ex. 1 gives 1954-12-01); otherwise the sold shares' days are added.
    Union,
    /// Broker practice: the replacement's start moves back by the days the sold shares were
    /// held, even when the periods overlap (1954-11-12 for the same example: earlier than any
    /// real purchase).
    DayCount,
}

/// Which date Form 8949 column (b) shows for replacement shares (ambiguity 6). The term is
/// always decided from the tacked holding period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DateAcquiredDisplay {
    /// The holding-period-adjusted (tacked) date; the spec's known-answer tests use it.
    Adjusted,
    /// The real trade date of the replacement purchase (some brokers).
    Trade,
}

/// The one-year anniversary of a Feb 29 acquisition (ambiguity 10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Feb29Anniversary {
    /// Feb 28 of the next year (the spec's reference check): sold Feb 28 = short-term, sold
    /// Mar 1 = long-term.
    Feb28,
    /// Mar 1 of the next year: sold Mar 1 = short-term, sold Mar 2 = long-term.
    Mar1,
}

/// Where the selling commission appears (ambiguity 1, rule 20). Columns (g) and (h) are the
/// same either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeePresentation {
    /// (d) = proceeds net of the selling commission; (e) = cost including the buy commission.
    NetProceeds,
    /// (d) = gross proceeds; the selling commission is folded into (e) (some brokers).
    GrossProceeds,
}

/// Rows for a sold lot that is only partly washed (ambiguity 8). Totals are the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RowSplitting {
    /// One row per sold lot with a partial W adjustment (W 750, gain −250).
    OneRow,
    /// A washed row (gain 0) and an unwashed row per partly washed lot.
    Split,
}

/// Whether the lots closed by one sale share Form 8949 rows (issue 13; docs/TAX.md "Rows: one
/// per sale and acquisition date"). Totals are the same either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RowCombining {
    /// The lots closed by one sale (or one cover) that show the same date acquired, term,
    /// adjustment code and lot id are one row: their quantities, proceeds, basis and
    /// adjustments summed. Lots with another date acquired or another code keep their own row.
    PerSale,
    /// One row per closed lot (or per part of one, when wash sales split a purchase).
    PerLot,
}

/// Which part of a partly washed purchase a later FIFO sale takes first (ambiguity 3: "Nothing
/// official says which sub-lot a later FIFO sale takes first").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SublotOrder {
    /// The shares that absorbed a wash loss go first.
    WashedFirst,
    /// The unadjusted shares go first.
    UnwashedFirst,
}

/// Which lot FIFO relieves first after a wash (ambiguity 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FifoOrder {
    /// Real purchase order, as Reg. §1.1012-1(c) says ("earliest ... purchased or acquired").
    Purchase,
    /// The tacked (holding-period-adjusted) date, ties by purchase order (some systems).
    AdjustedDate,
}

/// Which symbols the wash-sale rule covers. Whether §1091 reaches a given asset class (e.g.
/// crypto currencies, which are property rather than "stock or securities" under current law)
/// is a legal question for the user; the default covers every symbol, the conservative choice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WashSaleCoverage {
    /// Cover every symbol not excluded below. When false, only `include` is covered.
    pub all: bool,
    /// Symbols covered when `all` is false (exact, case-sensitive).
    pub include: Vec<String>,
    /// Symbols never covered (exact, case-sensitive); wins over `include`.
    pub exclude: Vec<String>,
    /// Symbols ending with one of these are never covered (e.g. `-USD`, `USDT` for crypto
    /// pairs).
    pub exclude_suffixes: Vec<String>,
}

impl Default for WashSaleCoverage {
    fn default() -> Self {
        WashSaleCoverage {
            all: true,
            include: Vec::new(),
            exclude: Vec::new(),
            exclude_suffixes: Vec::new(),
        }
    }
}

impl WashSaleCoverage {
    /// Whether losses on `symbol` are subject to the wash-sale rule.
    pub fn covers(&self, symbol: &str) -> bool {
        if self.exclude.iter().any(|s| s == symbol)
            || self
                .exclude_suffixes
                .iter()
                .any(|s| !s.is_empty() && symbol.ends_with(s.as_str()))
        {
            return false;
        }
        self.all || self.include.iter().any(|s| s == symbol)
    }
}

/// The settings of [`super::form_8949`]. `Default` gives the documented defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TaxSettings {
    /// Days before and after the sale (rules 1-2): 30 gives the 61-day period. Config key
    /// `modules.tax.wash_sale_window_days`.
    pub wash_sale_window_days: u32,
    pub wash_sale_scope: WashSaleScope,
    pub coverage: WashSaleCoverage,
    pub tack_method: TackMethod,
    pub date_acquired_display: DateAcquiredDisplay,
    pub feb29_anniversary: Feb29Anniversary,
    pub fee_presentation: FeePresentation,
    pub row_splitting: RowSplitting,
    pub row_combining: RowCombining,
    pub sublot_order: SublotOrder,
    pub fifo_order: FifoOrder,
    /// Whether the unsold remainder of the same purchase can be the replacement for the sold
    /// part (ambiguity 4). The prevailing view (default false) is that it cannot.
    pub same_purchase_is_replacement: bool,
    /// Whether a sell beyond the long position opens a short (true) or is an error naming the
    /// trade (false, the long-only setting).
    pub allow_short_sales: bool,
    /// Whether the wash-sale rule also applies to a loss on covering a short sale (IRC §1091(e),
    /// spec rule 13): washed by a short sale entered into, or shares sold, within the window.
    /// True is the law; false reproduces reports that apply §1091 to long positions only.
    pub short_sale_wash_sales: bool,
    /// Decimal places to which a pro-rata split of a lot's basis, a sale's proceeds or a
    /// disallowed loss is rounded (ambiguity 16: round per row, not per share). The last part
    /// takes the remainder, so totals stay exact.
    pub rounding_dp: u32,
}

impl Default for TaxSettings {
    fn default() -> Self {
        TaxSettings {
            wash_sale_window_days: 30,
            wash_sale_scope: WashSaleScope::Owner,
            coverage: WashSaleCoverage::default(),
            tack_method: TackMethod::Union,
            date_acquired_display: DateAcquiredDisplay::Adjusted,
            feb29_anniversary: Feb29Anniversary::Feb28,
            fee_presentation: FeePresentation::NetProceeds,
            row_splitting: RowSplitting::OneRow,
            row_combining: RowCombining::PerSale,
            sublot_order: SublotOrder::WashedFirst,
            fifo_order: FifoOrder::Purchase,
            same_purchase_is_replacement: false,
            allow_short_sales: true,
            short_sale_wash_sales: true,
            rounding_dp: 2,
        }
    }
}
