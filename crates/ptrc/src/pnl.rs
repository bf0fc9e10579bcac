//! P&L: realized and unrealized profit and loss per account and symbol under a cost-basis method,
//! with open lots, fees, short positions and a daily series per account.
//!
//! [`compute`] is a pure function over trades and marks (no I/O); [`pnl_to_csv`] and
//! [`pnl_to_html`] render its [`PnlReport`]. Two streaming forms give the same report:
//!
//! - [`compute_iter`] (or its push form [`PnlStream`]) folds time-ordered trades without holding
//!   them: memory is the open lots plus aggregates (per position totals, the last price per
//!   symbol, the daily series), for any options.
//! - [`PnlBook`] is fed the trades of a live stream one by one and answers reports for all the
//!   trades so far, for any options except a `to` date inside its history (it holds only the
//!   current lots; see [`PnlBook`] for the details); it can be snapshotted with serde.
//!
//! # Conventions
//!
//! - **Methods.** [`Method::Fifo`] closes the oldest open lot first, [`Method::Lifo`] the newest,
//!   [`Method::Hifo`] the lot whose closing realizes the least gain (long: the highest unit cost;
//!   short: the lowest unit net proceeds; ties go to the oldest lot), [`Method::Avg`] keeps one
//!   running average cost per (account, symbol) for longs and shorts alike (lots are still listed,
//!   each at the average cost), and [`Method::Specific`] closes the lots a closing trade names in
//!   `lot_ids` (in the order given), then FIFO for any quantity the named lots do not cover.
//! - **Lots.** A trade that only opens (or adds to) a position opens one lot, named by its first
//!   `lot_id` if it has one, else `#n` where n is the trade's 1-based position in the input. The
//!   opening part of a trade that flips the position always gets `#n`. Under the other methods a
//!   closing trade's `lot_ids` are ignored.
//! - **Signed lots.** Lot and position quantities are signed (short < 0) and so is `cost_basis`:
//!   a long lot's basis is `qty x price + fee` (cash paid), a short lot's is
//!   `-(qty x price - fee)` (minus the net proceeds received). Unrealized P&L is then
//!   `position_qty x mark - cost_basis` on both sides, and `avg_cost` / `unit_cost`
//!   (`cost_basis / qty`) is a positive price per unit on both sides.
//! - **Fees.** An opening trade's fee is added to the basis of the lot it opens; a closing trade's
//!   fee is deducted from its proceeds. A trade that flips the position splits its fee between the
//!   closing and the opening part in proportion to quantity (a convention; the spec leaves it
//!   open). `realized_pnl` and `unrealized_pnl` are therefore net of all fees; the `fees` column
//!   reports the fees paid and must not be subtracted again.
//! - **Exactness.** Amounts are exact decimals. A pro-rated amount (part of a lot's basis, the
//!   average cost taken out of an AVG pool, one side of a flip's fee) is rounded to
//!   [`PRORATE_DP`] decimal places and the remainder stays with the lot or pool, so basis is
//!   conserved exactly: once a position is flat, every method has realized the same total.
//! - **Marks.** The final unrealized P&L uses the marks given (market data store or a marks file)
//!   and falls back to the symbol's last trade price in the input (`mark_source` says which).
//!   In the daily series, a day's mark is the symbol's last trade price (any account) up to that
//!   day, except the final point, which uses the final marks (see [`PnlOptions::marks_date`]).
//! - **Daily series.** One point per account for every date on which the input has a trade
//!   (in any account), from the account's first trade on: `realized` and `fees` of that day,
//!   `unrealized` at the day's marks, and `equity` = cumulative realized P&L (within the period)
//!   + unrealized P&L, i.e. a P&L curve: cash balances are not part of the input.
//! - **Period.** Trades after `to` are ignored. Trades before `from` still build the lots (and
//!   their basis), but their realized P&L, fees and trade counts are not reported and the daily
//!   series starts at `from`.
//! - **Order.** Trades are processed in time order; input that is not sorted by `ts` is sorted
//!   stably (equal timestamps keep their input order).

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::str::FromStr;

use chrono::NaiveDate;
use model::{Decimal, Side, Timestamp};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::PtrcError;
use crate::input::Trade;

mod book;
mod render;
pub use book::{PnlBook, SNAPSHOT_VERSION};
pub use render::{PNL_CSV_HEADER, pnl_to_csv, pnl_to_html};

#[cfg(test)]
mod tests;

const NANOS_PER_DAY: i64 = 86_400_000_000_000;

/// Decimal places of pro-rated amounts (partial lot basis, AVG cost removed, flip fee split).
pub const PRORATE_DP: u32 = 12;

/// Cost-basis method: which open lots a closing trade consumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Method {
    /// First in, first out (the default of `modules.pnl.default_method`).
    #[default]
    Fifo,
    /// Last in, first out.
    Lifo,
    /// Running average cost per (account, symbol).
    Avg,
    /// Highest cost first: the lot whose closing realizes the least gain.
    Hifo,
    /// The lots named by the closing trade's `lot_ids`, then FIFO for the rest.
    Specific,
}

impl Method {
    pub const ALL: [Method; 5] = [
        Method::Fifo,
        Method::Lifo,
        Method::Avg,
        Method::Hifo,
        Method::Specific,
    ];

    /// The canonical upper-case name (`FIFO`, `LIFO`, `AVG`, `HIFO`, `SPECIFIC`), as in config.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Fifo => "FIFO",
            Method::Lifo => "LIFO",
            Method::Avg => "AVG",
            Method::Hifo => "HIFO",
            Method::Specific => "SPECIFIC",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Method {
    type Err = PtrcError;

    /// Case-insensitive: `FIFO`/`fifo`, `LIFO`, `AVG` (also `average`), `HIFO`, `SPECIFIC`
    /// (also `specific_id`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "fifo" => Ok(Method::Fifo),
            "lifo" => Ok(Method::Lifo),
            "avg" | "average" => Ok(Method::Avg),
            "hifo" => Ok(Method::Hifo),
            "specific" | "specific_id" => Ok(Method::Specific),
            _ => Err(PtrcError::Invalid(format!(
                "{s:?} is not a P&L method (FIFO, LIFO, AVG, HIFO or SPECIFIC)"
            ))),
        }
    }
}

impl Serialize for Method {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Method {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Options of [`compute`]; the default allows shorts and covers all accounts, symbols and dates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PnlOptions {
    /// When true, a sell larger than the long position is an error naming the trade.
    pub long_only: bool,
    /// Only this account.
    pub account: Option<String>,
    /// Only this symbol.
    pub symbol: Option<String>,
    /// First date (inclusive) whose realized P&L and fees are reported.
    pub from: Option<NaiveDate>,
    /// Last date (inclusive) of trades taken into account.
    pub to: Option<NaiveDate>,
    /// The date the final marks refer to. When it is after the last trade date, the daily series
    /// gets one more point on that date at the final marks; otherwise (or when `None`) the last
    /// trade date's point uses the final marks.
    pub marks_date: Option<NaiveDate>,
}

/// Where a symbol's final mark came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarkSource {
    /// The marks handed to [`compute`] (market data store or marks file).
    Marks,
    /// No mark was given: the symbol's last trade price in the input.
    LastTrade,
}

/// The P&L of all selected accounts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PnlReport {
    pub method: Method,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    /// Sorted by account.
    pub accounts: Vec<AccountPnl>,
    /// Sum over the accounts.
    pub totals: PnlTotals,
}

/// One account: its symbols, totals and daily series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountPnl {
    pub account: String,
    /// Sorted by symbol; a symbol appears when it has a trade in the period or an open position.
    pub symbols: Vec<SymbolPnl>,
    pub totals: PnlTotals,
    pub daily: Vec<DailyPnl>,
}

/// One (account, symbol).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SymbolPnl {
    pub symbol: String,
    /// Signed: short < 0.
    pub position_qty: Decimal,
    /// `cost_basis / qty` of the open position (positive on both sides); `None` when flat.
    pub avg_cost: Option<Decimal>,
    /// The final mark used for `unrealized_pnl`.
    pub mark: Decimal,
    pub mark_source: MarkSource,
    /// Net of the fees of the closed quantity (opening fees via basis, closing fees via proceeds).
    pub realized_pnl: Decimal,
    /// `position_qty x mark - cost_basis` of the open lots (opening fees included in basis).
    pub unrealized_pnl: Decimal,
    /// `realized_pnl + unrealized_pnl`.
    pub total_pnl: Decimal,
    /// Fees paid in the period (already inside the P&L figures).
    pub fees: Decimal,
    /// Trades in the period.
    pub trades: u64,
    /// In acquisition order.
    pub open_lots: Vec<OpenLot>,
}

/// One open lot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenLot {
    pub lot_id: String,
    /// Signed: short < 0.
    pub qty: Decimal,
    /// Signed (see the module docs): long = cash paid incl. fee, short = -(net proceeds).
    pub cost_basis: Decimal,
    /// `cost_basis / qty`.
    pub unit_cost: Decimal,
    /// When the lot was opened.
    pub acquired: Timestamp,
}

/// Realized, unrealized and total P&L and fees.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PnlTotals {
    pub realized_pnl: Decimal,
    pub unrealized_pnl: Decimal,
    pub total_pnl: Decimal,
    pub fees: Decimal,
}

/// One day of an account's P&L series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DailyPnl {
    pub date: NaiveDate,
    /// Realized that day.
    pub realized: Decimal,
    /// Open positions at the day's marks, end of day.
    pub unrealized: Decimal,
    /// Fees paid that day (already inside realized/unrealized).
    pub fees: Decimal,
    /// Cumulative realized P&L of the period + unrealized.
    pub equity: Decimal,
}

// ---------------------------------------------------------------------------------------------
// Engine
// ---------------------------------------------------------------------------------------------

/// Checked arithmetic: amounts beyond rust_decimal's range are an error, not a panic.
#[inline]
fn mul(a: Decimal, b: Decimal) -> Result<Decimal, String> {
    a.checked_mul(b).ok_or_else(too_large)
}
#[inline]
fn add(a: Decimal, b: Decimal) -> Result<Decimal, String> {
    a.checked_add(b).ok_or_else(too_large)
}
#[inline]
fn sub(a: Decimal, b: Decimal) -> Result<Decimal, String> {
    a.checked_sub(b).ok_or_else(too_large)
}
#[inline]
fn div(a: Decimal, b: Decimal) -> Result<Decimal, String> {
    a.checked_div(b).ok_or_else(too_large)
}
fn too_large() -> String {
    "amounts too large for exact decimal arithmetic".to_string()
}

/// Attach the column a failed computation is about.
fn field(column: &'static str) -> impl Fn(String) -> (String, String) {
    move |r| (column.to_string(), r)
}

/// `total x part / whole`, rounded to [`PRORATE_DP`] places; multiplication first keeps precision.
fn prorate(total: Decimal, part: Decimal, whole: Decimal) -> Result<Decimal, String> {
    Ok(div(mul(total, part)?, whole)?.round_dp(PRORATE_DP))
}

/// FxHash-style hasher for the engine's maps: account and symbol names are the caller's own data
/// (no HashDoS concern) and SipHash showed up in the 1M-fill profile.
#[derive(Default, Clone, Copy)]
struct Fx(u64);

impl Fx {
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<Fx>>;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Lot {
    /// Signed quantity still open.
    qty: Decimal,
    /// Signed basis still open (unused under AVG, where the pool holds the basis).
    cost: Decimal,
    /// Basis per unit at opening (HIFO ordering key only).
    unit: Decimal,
    acquired: Timestamp,
    /// Index of the opening trade in the input.
    trade: usize,
    name: Option<String>,
}

impl Lot {
    fn id(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("#{}", self.trade + 1))
    }
}

/// The open lots of one (account, symbol): the state a trade changes, shared by [`compute`] and
/// [`PnlBook`] so both apply trades with the same code.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Holding {
    /// FIFO/AVG/Specific: acquisition order; LIFO: acquisition order, closed from the back;
    /// HIFO: sorted so that the next lot to close is at the front.
    lots: VecDeque<Lot>,
    qty: Decimal,
    /// Sum of the open lots' signed basis (the pool under AVG).
    cost: Decimal,
}

struct Position {
    symbol: usize,
    /// Index in the account's `positions` / `holdings`.
    slot: usize,
    held: Holding,
    realized: Decimal,
    fees: Decimal,
    trades: u64,
}

struct Account {
    name: String,
    /// Symbol id -> position index.
    by_symbol: FxMap<usize, usize>,
    positions: Vec<usize>,
    /// (symbol id, signed qty) per position, parallel to `positions`: a compact copy the daily
    /// mark-to-market walks instead of the full positions.
    holdings: Vec<(usize, Decimal)>,
    /// Sum of the positions' open basis, kept up to date per trade.
    open_cost: Decimal,
    day_realized: Decimal,
    day_fees: Decimal,
    cum_realized: Decimal,
    daily: Vec<DailyPnl>,
}

/// The checks every trade passes before it touches a position: (column, reason) on failure.
fn check_trade(t: &Trade) -> Result<(), (String, String)> {
    let q = t.qty;
    if q.is_sign_negative() || q.is_zero() {
        return Err(("qty".into(), format!("quantity {q} must be positive")));
    }
    if t.fee.is_sign_negative() && !t.fee.is_zero() {
        return Err(("fee".into(), format!("fee {} must not be negative", t.fee)));
    }
    Ok(())
}

/// A sell of `q` against a long position of `held` under `long_only` (the caller has checked
/// `q > held`): the (column, reason) of the rejection.
fn short_sale(q: Decimal, held: Decimal) -> (String, String) {
    (
        "side".into(),
        format!("sell of {q} with a long position of {held} (long-only: no short sales)"),
    )
}

impl Holding {
    /// Apply one trade; returns its realized P&L. `number` is the trade's 1-based input position.
    fn apply(
        &mut self,
        t: &Trade,
        number: usize,
        method: Method,
        long_only: bool,
    ) -> Result<Decimal, (String, String)> {
        check_trade(t)?;
        let q = t.qty;
        let buy = t.side == Side::Buy;
        if long_only && !buy && q > self.qty {
            return Err(short_sale(q, self.qty));
        }
        // Sign tests instead of Decimal comparisons: cmp rescales and showed in the profile.
        let closing = if self.qty.is_zero() || self.qty.is_sign_positive() == buy {
            Decimal::ZERO
        } else {
            q.min(self.qty.abs())
        };
        let opening = q - closing;
        let (fee_close, fee_open) = if closing.is_zero() {
            (Decimal::ZERO, t.fee)
        } else if opening.is_zero() {
            (t.fee, Decimal::ZERO)
        } else {
            let fc = prorate(t.fee, closing, q).map_err(field("fee"))?;
            (fc, t.fee - fc)
        };
        let dir = if buy {
            Decimal::ONE
        } else {
            Decimal::NEGATIVE_ONE
        };
        let mut realized = Decimal::ZERO;
        if !closing.is_zero() {
            let names: &[String] = if method == Method::Specific {
                &t.lot_ids
            } else {
                &[]
            };
            let removed = self.close(closing, method, names)?;
            // The closed quantity leaves at the trade price: +value for a long sold, -value for
            // a short bought back.
            let exit = mul(-dir, mul(closing, t.price).map_err(field("price"))?)
                .map_err(field("price"))?;
            realized = sub(sub(exit, removed).map_err(field("price"))?, fee_close)
                .map_err(field("fee"))?;
        }
        if !opening.is_zero() {
            let qty = dir * opening;
            let cost =
                add(mul(qty, t.price).map_err(field("price"))?, fee_open).map_err(field("fee"))?;
            let name = if closing.is_zero() {
                t.lot_ids.first().cloned()
            } else {
                None
            };
            if method == Method::Specific
                && let Some(n) = &name
                && self.lots.iter().any(|l| l.name.as_ref() == Some(n))
            {
                return Err((
                    "lot_id".into(),
                    format!("lot {n:?} is already open: lot ids must be unique"),
                ));
            }
            let unit = if method == Method::Hifo {
                div(cost, qty).map_err(field("price"))?
            } else {
                Decimal::ZERO
            };
            let lot = Lot {
                qty,
                cost,
                unit,
                acquired: t.ts,
                trade: number - 1,
                name,
            };
            if method == Method::Hifo {
                // Long: highest unit cost first; short: lowest unit proceeds first. Equal keys
                // go after the existing ones, so ties close oldest first.
                let at = if buy {
                    self.lots.partition_point(|l| l.unit >= unit)
                } else {
                    self.lots.partition_point(|l| l.unit <= unit)
                };
                self.lots.insert(at, lot);
            } else {
                self.lots.push_back(lot);
            }
            self.qty += qty;
            self.cost = add(self.cost, cost).map_err(field("price"))?;
        }
        Ok(realized)
    }

    /// Close `qty` (positive) of the position; returns the signed basis removed.
    fn close(
        &mut self,
        qty: Decimal,
        method: Method,
        names: &[String],
    ) -> Result<Decimal, (String, String)> {
        let mut remaining = qty;
        let mut removed = Decimal::ZERO;
        for name in names {
            if remaining.is_zero() {
                break;
            }
            let i = self
                .lots
                .iter()
                .position(|l| l.name.as_ref() == Some(name))
                .ok_or_else(|| {
                    (
                        "lot_id".to_string(),
                        format!("names lot {name:?}, which is not an open lot of this position"),
                    )
                })?;
            removed += self.take(i, &mut remaining, method)?;
        }
        while !remaining.is_zero() {
            if self.lots.is_empty() {
                // Unreachable while qty == sum of lot quantities; an error beats a panic.
                return Err((
                    "qty".into(),
                    "internal: open lots do not cover the position".into(),
                ));
            }
            let i = if method == Method::Lifo {
                self.lots.len() - 1
            } else {
                0
            };
            removed += self.take(i, &mut remaining, method)?;
        }
        Ok(removed)
    }

    /// Take up to `remaining` from lot `i`; returns the signed basis removed.
    fn take(
        &mut self,
        i: usize,
        remaining: &mut Decimal,
        method: Method,
    ) -> Result<Decimal, (String, String)> {
        let err = |r: String| ("qty".to_string(), r);
        let Some(lot) = self.lots.get_mut(i) else {
            return Err(err("internal: lot index out of range".into()));
        };
        let sign = if lot.qty.is_sign_positive() {
            Decimal::ONE
        } else {
            Decimal::NEGATIVE_ONE
        };
        let open = lot.qty.abs();
        let take = (*remaining).min(open);
        let whole = take == open;
        let basis = if method == Method::Avg {
            // The pool's average cost; the last unit out takes the remainder, so nothing leaks.
            if take == self.qty.abs() {
                self.cost
            } else {
                prorate(self.cost, take, self.qty.abs()).map_err(err)?
            }
        } else if whole {
            lot.cost
        } else {
            let part = prorate(lot.cost, take, open).map_err(err)?;
            lot.cost -= part;
            part
        };
        if whole {
            self.lots.remove(i);
        } else {
            lot.qty -= sign * take;
        }
        self.qty -= sign * take;
        self.cost -= basis;
        *remaining -= take;
        Ok(basis)
    }

    /// `qty x mark - cost`.
    fn unrealized(&self, mark: Decimal) -> Result<Decimal, String> {
        if self.qty.is_zero() {
            return Ok(Decimal::ZERO);
        }
        sub(mul(self.qty, mark)?, self.cost)
    }

    /// Open lots in acquisition order; under AVG each at the pool's average cost (the last lot
    /// takes the rounding remainder so the lots sum to the pool).
    fn open_lots(&self, method: Method) -> Result<Vec<OpenLot>, String> {
        let mut lots: Vec<&Lot> = self.lots.iter().collect();
        lots.sort_by_key(|l| l.trade);
        let mut out = Vec::with_capacity(lots.len());
        let mut left = self.cost;
        for (k, l) in lots.iter().enumerate() {
            let cost = if method != Method::Avg {
                l.cost
            } else if k + 1 == lots.len() {
                left
            } else {
                prorate(self.cost, l.qty, self.qty)?
            };
            left -= cost;
            out.push(OpenLot {
                lot_id: l.id(),
                qty: l.qty.normalize(),
                cost_basis: cost.normalize(),
                unit_cost: div(cost, l.qty)?.normalize(),
                acquired: l.acquired,
            });
        }
        Ok(out)
    }
}

struct Engine {
    method: Method,
    opts: PnlOptions,
    symbols: FxMap<String, usize>,
    symbol_names: Vec<String>,
    last_price: Vec<Decimal>,
    accounts: Vec<Account>,
    account_index: FxMap<String, usize>,
    positions: Vec<Position>,
    /// The date of the trades being folded (its daily point is not written yet).
    day: Option<NaiveDate>,
    clock: DayClock,
}

/// The UTC date of a timestamp, converted by the calendar once per day rather than per trade.
#[derive(Debug, Clone, Copy)]
struct DayClock {
    /// [start, end) of `date` in nanoseconds.
    span: (i64, i64),
    date: NaiveDate,
}

impl Default for DayClock {
    fn default() -> Self {
        DayClock {
            span: (i64::MAX, i64::MIN),
            date: NaiveDate::MIN,
        }
    }
}

impl DayClock {
    fn date(&mut self, t: &Trade) -> NaiveDate {
        let ns = t.ts.as_nanos();
        if ns < self.span.0 || ns >= self.span.1 {
            self.date = t.date();
            let start = ns - ns.rem_euclid(NANOS_PER_DAY);
            self.span = (start, start.saturating_add(NANOS_PER_DAY));
        }
        self.date
    }
}

impl Engine {
    fn new(method: Method, opts: PnlOptions) -> Engine {
        Engine {
            method,
            opts,
            symbols: FxMap::default(),
            symbol_names: Vec::new(),
            last_price: Vec::new(),
            accounts: Vec::new(),
            account_index: FxMap::default(),
            positions: Vec::new(),
            day: None,
            clock: DayClock::default(),
        }
    }

    fn symbol_id(&mut self, symbol: &str, price: Decimal) -> usize {
        if let Some(&i) = self.symbols.get(symbol) {
            self.last_price[i] = price;
            return i;
        }
        let i = self.symbol_names.len();
        self.symbols.insert(symbol.to_string(), i);
        self.symbol_names.push(symbol.to_string());
        self.last_price.push(price);
        i
    }

    fn position_id(&mut self, account: &str, sid: usize) -> (usize, usize) {
        let aid = match self.account_index.get(account) {
            Some(&a) => a,
            None => {
                let a = self.accounts.len();
                self.account_index.insert(account.to_string(), a);
                self.accounts.push(Account {
                    name: account.to_string(),
                    by_symbol: FxMap::default(),
                    positions: Vec::new(),
                    holdings: Vec::new(),
                    open_cost: Decimal::ZERO,
                    day_realized: Decimal::ZERO,
                    day_fees: Decimal::ZERO,
                    cum_realized: Decimal::ZERO,
                    daily: Vec::new(),
                });
                a
            }
        };
        let acct = &mut self.accounts[aid];
        let pid = match acct.by_symbol.get(&sid) {
            Some(&p) => p,
            None => {
                let p = self.positions.len();
                acct.by_symbol.insert(sid, p);
                let slot = acct.positions.len();
                acct.positions.push(p);
                acct.holdings.push((sid, Decimal::ZERO));
                self.positions.push(Position {
                    symbol: sid,
                    slot,
                    held: Holding::default(),
                    realized: Decimal::ZERO,
                    fees: Decimal::ZERO,
                    trades: 0,
                });
                p
            }
        };
        (aid, pid)
    }

    fn final_mark(&self, sid: usize, marks: &BTreeMap<String, Decimal>) -> (Decimal, MarkSource) {
        match marks.get(&self.symbol_names[sid]) {
            Some(&m) => (m, MarkSource::Marks),
            None => (self.last_price[sid], MarkSource::LastTrade),
        }
    }

    /// Append one daily point per account; `marks` = final marks, or `None` for the day's
    /// last trade prices.
    fn close_day(
        &mut self,
        date: NaiveDate,
        marks: Option<&BTreeMap<String, Decimal>>,
    ) -> Result<(), PtrcError> {
        if self.opts.from.is_some_and(|f| date < f) {
            return Ok(());
        }
        for a in 0..self.accounts.len() {
            let acct = &self.accounts[a];
            let overflow = |r| PtrcError::Invalid(format!("{} on {date}: {r}", acct.name));
            // Unrealized = market value of the holdings - their open basis (kept per trade).
            let mut value = Decimal::ZERO;
            for &(sid, qty) in &acct.holdings {
                if qty.is_zero() {
                    continue;
                }
                let mark = match marks {
                    Some(m) => self.final_mark(sid, m).0,
                    None => self.last_price[sid],
                };
                value = mul(qty, mark)
                    .and_then(|v| add(value, v))
                    .map_err(overflow)?;
            }
            let unrealized = sub(value, acct.open_cost).map_err(overflow)?;
            let acct = &mut self.accounts[a];
            let overflow = |r| PtrcError::Invalid(format!("{} on {date}: {r}", acct.name));
            acct.cum_realized = add(acct.cum_realized, acct.day_realized).map_err(overflow)?;
            let equity = add(acct.cum_realized, unrealized).map_err(overflow)?;
            acct.daily.push(DailyPnl {
                date,
                realized: acct.day_realized.normalize(),
                unrealized: unrealized.normalize(),
                fees: acct.day_fees.normalize(),
                equity: equity.normalize(),
            });
            acct.day_realized = Decimal::ZERO;
            acct.day_fees = Decimal::ZERO;
        }
        Ok(())
    }

    /// Fold one trade (time order); `number` is its 1-based position in the input. Returns
    /// `false` for a trade after `to`: it and every later trade are ignored.
    fn push(&mut self, t: &Trade, number: usize) -> Result<bool, PtrcError> {
        let date = self.clock.date(t);
        if self.opts.to.is_some_and(|to| date > to) {
            return Ok(false);
        }
        if self.day != Some(date) {
            if let Some(d) = self.day {
                self.close_day(d, None)?;
            }
            self.day = Some(date);
        }
        // Every trade in the input moves the symbol's mark, whichever account it belongs to.
        let sid = self.symbol_id(&t.symbol, t.price);
        if self.opts.account.as_ref().is_some_and(|a| *a != t.account)
            || self.opts.symbol.as_ref().is_some_and(|s| *s != t.symbol)
        {
            return Ok(true);
        }
        let (aid, pid) = self.position_id(&t.account, sid);
        let pos = &mut self.positions[pid];
        let cost_before = pos.held.cost;
        let realized = pos
            .held
            .apply(t, number, self.method, self.opts.long_only)
            .map_err(|(column, reason)| PtrcError::TradeRejected {
                number: number as u64,
                trade: describe(t, number),
                column,
                reason,
            })?;
        let overflow = |reason: String| PtrcError::TradeRejected {
            number: number as u64,
            trade: describe(t, number),
            column: "qty".into(),
            reason,
        };
        let acct = &mut self.accounts[aid];
        acct.holdings[pos.slot].1 = pos.held.qty;
        acct.open_cost = sub(acct.open_cost, cost_before)
            .and_then(|c| add(c, pos.held.cost))
            .map_err(overflow)?;
        if self.opts.from.is_none_or(|f| date >= f) {
            pos.realized = add(pos.realized, realized).map_err(overflow)?;
            pos.fees = add(pos.fees, t.fee).map_err(overflow)?;
            pos.trades += 1;
            acct.day_realized = add(acct.day_realized, realized).map_err(overflow)?;
            acct.day_fees = add(acct.day_fees, t.fee).map_err(overflow)?;
        }
        Ok(true)
    }

    /// Write the last day's point(s) at the final marks and build the report.
    fn finish(mut self, marks: &BTreeMap<String, Decimal>) -> Result<PnlReport, PtrcError> {
        if let Some(d) = self.day {
            match self.opts.marks_date {
                Some(md) if md > d => {
                    self.close_day(d, None)?;
                    self.close_day(md, Some(marks))?;
                }
                _ => self.close_day(d, Some(marks))?,
            }
        }
        report(self, marks)
    }
}

fn describe(t: &Trade, number: usize) -> String {
    let side = match t.side {
        Side::Buy => "buy",
        Side::Sell => "sell",
    };
    format!(
        "trade #{number} ({} {} {} {side} {} @ {})",
        t.ts, t.account, t.symbol, t.qty, t.price
    )
}

fn totals(rows: impl Iterator<Item = PnlTotals>) -> Result<PnlTotals, String> {
    let mut t = PnlTotals::default();
    for r in rows {
        t.realized_pnl = add(t.realized_pnl, r.realized_pnl)?;
        t.unrealized_pnl = add(t.unrealized_pnl, r.unrealized_pnl)?;
        t.fees = add(t.fees, r.fees)?;
    }
    t.total_pnl = add(t.realized_pnl, t.unrealized_pnl)?.normalize();
    t.realized_pnl = t.realized_pnl.normalize();
    t.unrealized_pnl = t.unrealized_pnl.normalize();
    t.fees = t.fees.normalize();
    Ok(t)
}

/// Compute the P&L of `trades` under `method`, marking open positions at `marks` (symbol ->
/// price; a missing symbol is marked at its last trade price). See the module docs for the
/// conventions. [`compute_iter`] gives the same report from a stream of time-ordered trades
/// without holding them; [`PnlBook`] keeps it up to date trade by trade.
///
/// Errors: [`PtrcError::TradeRejected`] naming the trade (1-based position in `trades`) and
/// column for a sell without a position under `long_only`, a lot name that is not open (or
/// opened twice) under [`Method::Specific`], a non-positive quantity or negative fee, or amounts
/// beyond the decimal range; [`PtrcError::Invalid`] for an overflow in the totals.
pub fn compute(
    trades: &[Trade],
    method: Method,
    marks: &BTreeMap<String, Decimal>,
    opts: &PnlOptions,
) -> Result<PnlReport, PtrcError> {
    // Time order matters for lots and days; a stable sort keeps same-instant trades in input order.
    let order: Vec<usize> = if trades.is_sorted_by_key(|t| t.ts) {
        (0..trades.len()).collect()
    } else {
        let mut o: Vec<usize> = (0..trades.len()).collect();
        o.sort_by_key(|&i| trades[i].ts);
        o
    };
    let mut e = Engine::new(method, opts.clone());
    for &i in &order {
        if !e.push(&trades[i], i + 1)? {
            break;
        }
    }
    e.finish(marks)
}

/// [`compute`] over trades that arrive in time order (a journal replay, a file read line by
/// line), holding only the open lots and the aggregates of the selected accounts and symbols
/// (plus the last price per symbol and the daily series), never the trades.
///
/// Gives exactly the report `compute` gives for the same trades in the same order; a trade is
/// numbered by its 1-based position in the stream. Trades after `opts.to` end the stream early.
///
/// Errors: those of [`compute`], and [`PtrcError::TradeRejected`] (column `ts`) for a trade
/// earlier than the one before it: sorting would need the whole input.
pub fn compute_iter<T: Borrow<Trade>>(
    trades: impl IntoIterator<Item = T>,
    method: Method,
    marks: &BTreeMap<String, Decimal>,
    opts: &PnlOptions,
) -> Result<PnlReport, PtrcError> {
    let mut s = PnlStream::new(method, opts.clone());
    for t in trades {
        s.push(t.borrow())?;
        if s.is_done() {
            break;
        }
    }
    s.finish(marks)
}

/// The push form of [`compute_iter`], for callers that receive trades one at a time (e.g. an
/// async journal reader): `push` each trade in time order, then `finish` with the marks.
///
/// The first error is final, as in [`compute`]: every later `push` and `finish` return it.
pub struct PnlStream {
    engine: Engine,
    pushed: usize,
    last_ts: Option<Timestamp>,
    done: bool,
    failed: Option<PtrcError>,
}

impl PnlStream {
    pub fn new(method: Method, opts: PnlOptions) -> PnlStream {
        PnlStream {
            engine: Engine::new(method, opts),
            pushed: 0,
            last_ts: None,
            done: false,
            failed: None,
        }
    }

    /// Fold the next trade. A trade after `opts.to` makes the stream done: it and every later
    /// trade are ignored (see [`PnlStream::is_done`]).
    pub fn push(&mut self, t: &Trade) -> Result<(), PtrcError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if self.done {
            return Ok(());
        }
        let number = self.pushed + 1;
        let folded = match self.last_ts {
            Some(last) if t.ts < last => Err(out_of_order(t, number, last)),
            _ => self.engine.push(t, number),
        };
        self.pushed = number;
        self.last_ts = Some(t.ts);
        match folded {
            Ok(more) => {
                self.done = !more;
                Ok(())
            }
            Err(e) => {
                self.failed = Some(e.clone());
                Err(e)
            }
        }
    }

    /// True once a trade after `opts.to` arrived (nothing more can change the report) or an
    /// error ended the stream.
    pub fn is_done(&self) -> bool {
        self.done || self.failed.is_some()
    }

    pub fn finish(self, marks: &BTreeMap<String, Decimal>) -> Result<PnlReport, PtrcError> {
        match self.failed {
            Some(e) => Err(e),
            None => self.engine.finish(marks),
        }
    }
}

/// A trade earlier than its predecessor, where trades must come in time order.
fn out_of_order(t: &Trade, number: usize, last: Timestamp) -> PtrcError {
    PtrcError::TradeRejected {
        number: number as u64,
        trade: describe(t, number),
        column: "ts".into(),
        reason: format!(
            "{} is earlier than the previous trade's {last}: trades must come in time order",
            t.ts
        ),
    }
}

fn report(mut e: Engine, marks: &BTreeMap<String, Decimal>) -> Result<PnlReport, PtrcError> {
    let mut accounts = Vec::new();
    let mut accts = std::mem::take(&mut e.accounts);
    accts.sort_by(|a, b| a.name.cmp(&b.name));
    for a in accts {
        let mut rows = Vec::new();
        let overflow = |r: String| PtrcError::Invalid(format!("account {}: {r}", a.name));
        for &p in &a.positions {
            let pos = &e.positions[p];
            if pos.trades == 0 && pos.held.qty.is_zero() {
                continue;
            }
            let (mark, mark_source) = e.final_mark(pos.symbol, marks);
            rows.push(
                symbol_row(
                    &e.symbol_names[pos.symbol],
                    &pos.held,
                    e.method,
                    (mark, mark_source),
                    (pos.realized, pos.fees, pos.trades),
                )
                .map_err(overflow)?,
            );
        }
        if let Some(acct) = account_pnl(a.name.clone(), rows, a.daily).map_err(overflow)? {
            accounts.push(acct);
        }
    }
    finish_report(e.method, &e.opts, accounts)
}

/// One report row: the held lots marked at `mark`, with the period's (realized, fees, trades).
fn symbol_row(
    symbol: &str,
    held: &Holding,
    method: Method,
    (mark, mark_source): (Decimal, MarkSource),
    (realized, fees, trades): (Decimal, Decimal, u64),
) -> Result<SymbolPnl, String> {
    let unrealized = held.unrealized(mark)?;
    let avg_cost = if held.qty.is_zero() {
        None
    } else {
        Some(div(held.cost, held.qty)?.normalize())
    };
    Ok(SymbolPnl {
        symbol: symbol.to_string(),
        position_qty: held.qty.normalize(),
        avg_cost,
        mark: mark.normalize(),
        mark_source,
        realized_pnl: realized.normalize(),
        unrealized_pnl: unrealized.normalize(),
        total_pnl: add(realized, unrealized)?.normalize(),
        fees: fees.normalize(),
        trades,
        open_lots: held.open_lots(method)?,
    })
}

/// An account's block of the report, or `None` when it has no rows.
fn account_pnl(
    account: String,
    mut rows: Vec<SymbolPnl>,
    daily: Vec<DailyPnl>,
) -> Result<Option<AccountPnl>, String> {
    if rows.is_empty() {
        return Ok(None);
    }
    rows.sort_by(|x, y| x.symbol.cmp(&y.symbol));
    let t = totals(rows.iter().map(|r| PnlTotals {
        realized_pnl: r.realized_pnl,
        unrealized_pnl: r.unrealized_pnl,
        total_pnl: r.total_pnl,
        fees: r.fees,
    }))?;
    Ok(Some(AccountPnl {
        account,
        symbols: rows,
        totals: t,
        daily,
    }))
}

/// The report from the accounts' blocks (sorted by account).
fn finish_report(
    method: Method,
    opts: &PnlOptions,
    accounts: Vec<AccountPnl>,
) -> Result<PnlReport, PtrcError> {
    let grand = totals(accounts.iter().map(|a| a.totals.clone()))
        .map_err(|r| PtrcError::Invalid(format!("totals: {r}")))?;
    Ok(PnlReport {
        method,
        from: opts.from,
        to: opts.to,
        accounts,
        totals: grand,
    })
}
