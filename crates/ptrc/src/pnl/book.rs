//! The incremental P&L book: see [`PnlBook`].

use std::collections::BTreeMap;

use chrono::NaiveDate;
use model::{Decimal, Side, Timestamp};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{
    DailyPnl, DayClock, FxMap, Holding, MarkSource, Method, PnlOptions, PnlReport, account_pnl,
    add, check_trade, describe, finish_report, mul, out_of_order, short_sale, sub, symbol_row,
    too_large,
};
#[cfg(doc)]
use super::{compute, compute_iter};
use crate::PtrcError;
use crate::input::Trade;

#[cfg(test)]
mod tests;

/// Version of the [`PnlBook`] snapshot layout; a snapshot of another version is refused.
pub const SNAPSHOT_VERSION: u32 = 1;

/// Incremental P&L under one [`Method`]: feed trades in time order with
/// [`on_trade`](PnlBook::on_trade), ask for reports with [`report`](PnlBook::report).
///
/// The P&L of a growing, time-ordered trade stream (the platform's fills), kept
/// trade by trade so that memory follows the open lots, not the history.
///
/// # What the book holds
///
/// - Per (account, symbol): the open lots (kept by the same code [`compute`] runs), the
///   realized P&L, fees and trade count since its first trade, the current day's totals, the
///   first trade [`compute`] would refuse (and the first sell beyond the long position, refused
///   only under `long_only`), and its daily series.
/// - Per account: its positions in first-trade order, the open basis of all of them, the current
///   day's totals and the account's daily series.
/// - Per symbol: the last trade price (the fallback mark and the daily marks).
/// - Every date with a trade (the days of the daily series).
///
/// A daily series is one stored point per *closed* day (a date before the newest one) with that
/// day's realized P&L, fees, trade count and unrealized P&L at the day's marks. A day on which the
/// account (or position) had no trade and was flat at the close is not stored: its point is
/// realized 0, fees 0 and the previous point's unrealized (flat, so independent of the marks,
/// and the open basis has not moved without a trade). The newest day's point depends on the
/// report's marks, so it is computed by [`PnlBook::report`].
///
/// # Which reports the book answers
///
/// [`PnlBook::report`] equals [`compute`] over every trade folded so far (in the order folded)
/// for any account/symbol filter, `from`, `marks_date`, `long_only` and marks, and for a `to`
/// on or after the newest trade date (or before the first). A `to` in between needs the lots as
/// they were on that date, which the book no longer has: it answers
/// [`PtrcError::NeedsReplay`], and the caller runs [`compute_iter`] over a replay instead.
///
/// With `from` after a position's first trade, the period's realized P&L and fees are summed
/// from per-day totals instead of per trade. Decimal addition is exact while a sum fits
/// rust_decimal's 96-bit mantissa (below about 7.9e16 at 12 decimal places), so the grouping
/// does not change the result; only beyond that could the last digit differ. Amounts outside
/// the decimal range are refused by both, possibly naming a different trade.
///
/// # Order
///
/// Trades must come in time order (equal timestamps keep their arrival order): a trade earlier
/// than the previous one is refused with [`PtrcError::TradeRejected`] (column `ts`) and changes
/// nothing; [`PnlBook::last_ts`] lets a caller whose source is not strictly ordered clamp.
///
/// # Snapshots
///
/// `PnlBook` serializes as `{"version": SNAPSHOT_VERSION, "book": {...}}`; deserializing checks
/// the version and every internal reference, and rebuilds the lookup maps, so a restored book
/// continues exactly like the original.
#[derive(Debug, Clone)]
pub struct PnlBook {
    state: BookState,
    // Lookups rebuilt from `state` on restore.
    symbol_index: FxMap<String, usize>,
    account_index: FxMap<String, usize>,
    /// (account id, symbol id) -> position id.
    position_index: FxMap<(usize, usize), usize>,
    clock: DayClock,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct BookState {
    method: Method,
    /// Trades folded so far: the next one is trade number `trades + 1` (its `#n` lot name).
    trades: usize,
    last_ts: Option<Timestamp>,
    /// Every date with a trade, ascending; the last one is the open day (no stored points yet).
    days: Vec<NaiveDate>,
    symbols: Vec<BookSymbol>,
    /// In order of their first trade: [`compute`]'s account order for the daily points.
    accounts: Vec<BookAccount>,
    /// In order of their first trade.
    positions: Vec<BookPosition>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct BookSymbol {
    name: String,
    /// Price of the newest trade in this symbol (any account).
    last_price: Decimal,
}

/// Realized P&L, fees and trade count over some trades.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
struct Totals {
    realized: Decimal,
    fees: Decimal,
    trades: u64,
}

impl Totals {
    /// Add one trade (all or nothing).
    fn add_trade(&mut self, realized: Decimal, fee: Decimal) -> Result<(), String> {
        *self = Totals {
            realized: add(self.realized, realized)?,
            fees: add(self.fees, fee)?,
            trades: self.trades + 1,
        };
        Ok(())
    }

    fn add_totals(&mut self, other: &Totals) -> Result<(), String> {
        *self = Totals {
            realized: add(self.realized, other.realized)?,
            fees: add(self.fees, other.fees)?,
            trades: self.trades.saturating_add(other.trades),
        };
        Ok(())
    }
}

/// A stored point of a daily series (see [`PnlBook`] for the days not stored).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredDay {
    date: NaiveDate,
    totals: Totals,
    /// At the day's last trade prices; `None` when it exceeded the decimal range.
    unrealized: Option<Decimal>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Series {
    closed: Vec<StoredDay>,
    /// The open day's totals so far.
    today: Totals,
}

impl Series {
    /// End the open day: store its point unless nothing happened and nothing is held.
    fn close(&mut self, date: NaiveDate, flat: bool, unrealized: Option<Decimal>) {
        if self.today.trades > 0 || !flat {
            self.closed.push(StoredDay {
                date,
                totals: self.today,
                unrealized,
            });
        }
        self.today = Totals::default();
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct BookAccount {
    name: String,
    /// Position ids in first-trade order ([`compute`]'s holdings order).
    positions: Vec<usize>,
    /// Sum of the positions' open basis, updated per trade as [`compute`] does.
    open_cost: Decimal,
    series: Series,
    /// The first trade whose account totals left the decimal range (boxed: almost always None).
    fault: Option<Box<Rejection>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct BookPosition {
    account: usize,
    symbol: usize,
    held: Holding,
    first_date: NaiveDate,
    /// Since the first trade.
    totals: Totals,
    series: Series,
    /// The first trade [`compute`] refuses whatever the options: the position stops there.
    rejected: Option<Box<Rejection>>,
    /// The first sell beyond the long position, refused under `long_only` only.
    short_sale: Option<Box<Rejection>>,
}

/// A refused trade, kept to answer reports that include it with [`compute`]'s error.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Rejection {
    number: usize,
    date: NaiveDate,
    trade: String,
    column: String,
    reason: String,
}

impl Rejection {
    fn error(&self) -> PtrcError {
        PtrcError::TradeRejected {
            number: self.number as u64,
            trade: self.trade.clone(),
            column: self.column.clone(),
            reason: self.reason.clone(),
        }
    }
}

/// Market value of `(qty, mark)` holdings minus their open basis, summed in the given order
/// exactly as [`compute`]'s daily points (flat holdings skipped).
fn marked(
    holdings: impl Iterator<Item = (Decimal, Decimal)>,
    open_cost: Decimal,
) -> Result<Decimal, String> {
    let mut value = Decimal::ZERO;
    for (qty, mark) in holdings {
        if qty.is_zero() {
            continue;
        }
        value = add(value, mul(qty, mark)?)?;
    }
    sub(value, open_cost)
}

impl PnlBook {
    /// An empty book for `method`. Every method is supported: [`Method::Specific`] uses the
    /// trades' `lot_ids` (platform fills have none, so it then behaves as FIFO).
    pub fn new(method: Method) -> PnlBook {
        PnlBook {
            state: BookState {
                method,
                trades: 0,
                last_ts: None,
                days: Vec::new(),
                symbols: Vec::new(),
                accounts: Vec::new(),
                positions: Vec::new(),
            },
            symbol_index: FxMap::default(),
            account_index: FxMap::default(),
            position_index: FxMap::default(),
            clock: DayClock::default(),
        }
    }

    pub fn method(&self) -> Method {
        self.state.method
    }

    /// Trades folded so far (including refused ones, which keep their number as in
    /// [`compute`]; not those refused for coming out of time order).
    pub fn trades(&self) -> usize {
        self.state.trades
    }

    /// Timestamp of the newest trade folded: the next trade must not be earlier.
    pub fn last_ts(&self) -> Option<Timestamp> {
        self.state.last_ts
    }

    /// Every symbol traded so far (in first-trade order): the symbols a report needs marks for.
    pub fn symbols(&self) -> impl Iterator<Item = &str> {
        self.state.symbols.iter().map(|s| s.name.as_str())
    }

    /// Open lots held over all positions (what grows with open inventory, not with history).
    pub fn open_lot_count(&self) -> usize {
        self.state.positions.iter().map(|p| p.held.lots.len()).sum()
    }

    /// Stored daily points over all accounts and positions (what grows with trading days).
    pub fn stored_day_count(&self) -> usize {
        let s = &self.state;
        s.accounts
            .iter()
            .map(|a| a.series.closed.len())
            .sum::<usize>()
            + s.positions
                .iter()
                .map(|p| p.series.closed.len())
                .sum::<usize>()
    }

    /// Fold the next trade. `Err` when [`compute`] over the trades so far would refuse this
    /// trade (bad quantity or fee, an unknown or duplicate lot name under SPECIFIC, amounts out
    /// of range): the trade still counts (number, day, last price), its position stops there and
    /// every report including that position returns this error, as [`compute`] would. A trade
    /// earlier than the previous one is refused without changing anything.
    pub fn on_trade(&mut self, t: &Trade) -> Result<(), PtrcError> {
        let number = self.state.trades + 1;
        if let Some(last) = self.state.last_ts
            && t.ts < last
        {
            return Err(out_of_order(t, number, last));
        }
        let date = self.clock.date(t);
        if self.state.days.last() != Some(&date) {
            // As in compute: the previous day closes at the prices before this trade.
            self.close_day();
            self.state.days.push(date);
        }
        self.state.trades = number;
        self.state.last_ts = Some(t.ts);
        let sid = self.symbol_id(&t.symbol, t.price);
        let pid = self.position_id(&t.account, sid, date);
        let method = self.state.method;
        let BookState {
            accounts,
            positions,
            ..
        } = &mut self.state;
        let pos = &mut positions[pid];
        if pos.rejected.is_some() {
            return Ok(());
        }
        let rejection = |(column, reason): (String, String)| {
            Box::new(Rejection {
                number,
                date,
                trade: describe(t, number),
                column,
                reason,
            })
        };
        if let Err(e) = check_trade(t) {
            return Err(reject(&mut pos.rejected, rejection(e)));
        }
        if pos.short_sale.is_none() && t.side == Side::Sell && t.qty > pos.held.qty {
            pos.short_sale = Some(rejection(short_sale(t.qty, pos.held.qty)));
        }
        let cost_before = pos.held.cost;
        let realized = match pos.held.apply(t, number, method, false) {
            Ok(r) => r,
            Err(e) => return Err(reject(&mut pos.rejected, rejection(e))),
        };
        let overflow = |reason: String| rejection(("qty".into(), reason));
        if let Err(r) = pos
            .totals
            .add_trade(realized, t.fee)
            .and_then(|()| pos.series.today.add_trade(realized, t.fee))
        {
            return Err(reject(&mut pos.rejected, overflow(r)));
        }
        let acct = &mut accounts[pos.account];
        let updated = sub(acct.open_cost, cost_before)
            .and_then(|c| add(c, pos.held.cost))
            .and_then(|c| {
                acct.open_cost = c;
                acct.series.today.add_trade(realized, t.fee)
            });
        if let Err(r) = updated {
            let rej = overflow(r);
            let err = rej.error();
            acct.fault.get_or_insert(rej);
            return Err(err);
        }
        Ok(())
    }

    fn symbol_id(&mut self, symbol: &str, price: Decimal) -> usize {
        if let Some(&i) = self.symbol_index.get(symbol) {
            self.state.symbols[i].last_price = price;
            return i;
        }
        let i = self.state.symbols.len();
        self.symbol_index.insert(symbol.to_string(), i);
        self.state.symbols.push(BookSymbol {
            name: symbol.to_string(),
            last_price: price,
        });
        i
    }

    fn position_id(&mut self, account: &str, sid: usize, date: NaiveDate) -> usize {
        let s = &mut self.state;
        // Look up before inserting: no allocation per trade for a known account.
        let aid = match self.account_index.get(account) {
            Some(&a) => a,
            None => {
                s.accounts.push(BookAccount {
                    name: account.to_string(),
                    positions: Vec::new(),
                    open_cost: Decimal::ZERO,
                    series: Series::default(),
                    fault: None,
                });
                let a = s.accounts.len() - 1;
                self.account_index.insert(account.to_string(), a);
                a
            }
        };
        *self.position_index.entry((aid, sid)).or_insert_with(|| {
            let pid = s.positions.len();
            s.positions.push(BookPosition {
                account: aid,
                symbol: sid,
                held: Holding::default(),
                first_date: date,
                totals: Totals::default(),
                series: Series::default(),
                rejected: None,
                short_sale: None,
            });
            s.accounts[aid].positions.push(pid);
            pid
        })
    }

    /// Store the open day's points (accounts and positions) at the current last prices.
    fn close_day(&mut self) {
        let Some(&date) = self.state.days.last() else {
            return;
        };
        let BookState {
            symbols,
            accounts,
            positions,
            ..
        } = &mut self.state;
        for acct in accounts.iter_mut() {
            let held = acct.positions.iter().map(|&p| {
                let pos = &positions[p];
                (pos.held.qty, symbols[pos.symbol].last_price)
            });
            let flat = acct
                .positions
                .iter()
                .all(|&p| positions[p].held.qty.is_zero());
            let unrealized = marked(held, acct.open_cost).ok();
            acct.series.close(date, flat, unrealized);
        }
        for pos in positions.iter_mut() {
            let held = std::iter::once((pos.held.qty, symbols[pos.symbol].last_price));
            let unrealized = marked(held, pos.held.cost).ok();
            pos.series.close(date, pos.held.qty.is_zero(), unrealized);
        }
    }

    /// Whether [`report`](PnlBook::report) can answer `opts` (otherwise it returns
    /// [`PtrcError::NeedsReplay`]): always, except for a `to` between the first and the newest
    /// trade date.
    pub fn answers(&self, opts: &PnlOptions) -> bool {
        let days = &self.state.days;
        match (opts.to, days.first(), days.last()) {
            (Some(to), Some(&first), Some(&last)) => to < first || to >= last,
            _ => true,
        }
    }

    /// The report [`compute`] gives for every trade folded so far, `marks` and `opts` (see the
    /// [`PnlBook`] docs for the one option it cannot answer).
    pub fn report(
        &self,
        marks: &BTreeMap<String, Decimal>,
        opts: &PnlOptions,
    ) -> Result<PnlReport, PtrcError> {
        let s = &self.state;
        if !self.answers(opts) {
            return Err(PtrcError::NeedsReplay(format!(
                "to {} is before the newest trade date {}: the P&L book holds only the current \
                 lots; replay the trades up to that date",
                opts.to.map(|d| d.to_string()).unwrap_or_default(),
                s.days.last().map(|d| d.to_string()).unwrap_or_default(),
            )));
        }
        let Some(&last) = s.days.last() else {
            return finish_report(s.method, opts, Vec::new());
        };
        if opts.to.is_some_and(|to| to < last) {
            // `answers` let it through: before the first trade date, so no trade is in the period.
            return finish_report(s.method, opts, Vec::new());
        }
        let selected = |p: &BookPosition| {
            opts.account
                .as_ref()
                .is_none_or(|a| *a == s.accounts[p.account].name)
                && opts
                    .symbol
                    .as_ref()
                    .is_none_or(|x| *x == s.symbols[p.symbol].name)
        };
        // compute keeps one daily series per account: over all its symbols, or over the one
        // symbol of the filter, which is the position's own series.
        let units: Vec<Unit> = if opts.symbol.is_some() {
            (0..s.positions.len())
                .filter(|&p| selected(&s.positions[p]))
                .map(|p| Unit {
                    account: s.positions[p].account,
                    series: &s.positions[p].series,
                    holds: Holds::Position(p),
                })
                .collect()
        } else {
            (0..s.accounts.len())
                .filter(|&a| {
                    opts.account
                        .as_ref()
                        .is_none_or(|x| *x == s.accounts[a].name)
                })
                .map(|a| Unit {
                    account: a,
                    series: &s.accounts[a].series,
                    holds: Holds::Account(a),
                })
                .collect()
        };

        // Errors in the order compute meets them: a refused trade on date d comes after the
        // daily points of the days before d.
        let refused = self.first_refusal(&units, &selected, opts);
        let mut daily = Vec::with_capacity(units.len());
        let mut day_error: Option<(NaiveDate, PtrcError)> = None;
        for u in &units {
            match self.unit_daily(u, marks, opts, last) {
                Ok(points) => daily.push(points),
                Err((date, e)) => {
                    // Units are in compute's account order: the first one wins a tie.
                    if day_error.as_ref().is_none_or(|(d, _)| date < *d) {
                        day_error = Some((date, e));
                    }
                    daily.push(Vec::new());
                }
            }
        }
        match (refused, day_error) {
            (Some(r), Some((d, e))) => return Err(if d < r.date { e } else { r.error() }),
            (Some(r), None) => return Err(r.error()),
            (None, Some((_, e))) => return Err(e),
            (None, None) => {}
        }

        let mut order: Vec<usize> = (0..units.len()).collect();
        order.sort_by(|&x, &y| {
            let name = |i: usize| &s.accounts[units[i].account].name;
            name(x).cmp(name(y))
        });
        let mut accounts = Vec::new();
        for i in order {
            let acct = &s.accounts[units[i].account];
            let overflow = |r: String| PtrcError::Invalid(format!("account {}: {r}", acct.name));
            let mut rows = Vec::new();
            for &p in &acct.positions {
                let pos = &s.positions[p];
                if !selected(pos) {
                    continue;
                }
                let period = self.period(pos, opts.from, last).map_err(overflow)?;
                if period.trades == 0 && pos.held.qty.is_zero() {
                    continue;
                }
                rows.push(
                    symbol_row(
                        &s.symbols[pos.symbol].name,
                        &pos.held,
                        s.method,
                        self.final_mark(pos.symbol, marks),
                        (period.realized, period.fees, period.trades),
                    )
                    .map_err(overflow)?,
                );
            }
            let points = std::mem::take(&mut daily[i]);
            if let Some(a) = account_pnl(acct.name.clone(), rows, points).map_err(overflow)? {
                accounts.push(a);
            }
        }
        finish_report(s.method, opts, accounts)
    }

    /// The first trade compute would refuse among those the report covers.
    fn first_refusal(
        &self,
        units: &[Unit],
        selected: &dyn Fn(&BookPosition) -> bool,
        opts: &PnlOptions,
    ) -> Option<&Rejection> {
        let s = &self.state;
        fn consider<'a>(first: &mut Option<&'a Rejection>, r: Option<&'a Rejection>) {
            if let Some(r) = r
                && first.is_none_or(|f| r.number < f.number)
            {
                *first = Some(r);
            }
        }
        let mut first: Option<&Rejection> = None;
        for p in s.positions.iter().filter(|p| selected(p)) {
            // Under long_only compute checks the short sale before anything else can fail in
            // the same trade, so it goes first and wins a tie.
            if opts.long_only {
                consider(&mut first, p.short_sale.as_deref());
            }
            consider(&mut first, p.rejected.as_deref());
        }
        for u in units {
            if let Holds::Account(a) = u.holds {
                consider(&mut first, s.accounts[a].fault.as_deref());
            }
        }
        first
    }

    /// A unit's daily points within the period; an error comes with the date compute meets it.
    fn unit_daily(
        &self,
        u: &Unit,
        marks: &BTreeMap<String, Decimal>,
        opts: &PnlOptions,
        last: NaiveDate,
    ) -> Result<Vec<DailyPnl>, (NaiveDate, PtrcError)> {
        let s = &self.state;
        let name = &s.accounts[u.account].name;
        let mut out = Vec::new();
        let mut cum = Decimal::ZERO;
        let mut emit = |date: NaiveDate, totals: &Totals, unrealized: Result<Decimal, String>| {
            if opts.from.is_some_and(|f| date < f) {
                return Ok(());
            }
            let err = |r: String| (date, PtrcError::Invalid(format!("{name} on {date}: {r}")));
            let unrealized = unrealized.map_err(err)?;
            cum = add(cum, totals.realized).map_err(err)?;
            let equity = add(cum, unrealized).map_err(err)?;
            out.push(DailyPnl {
                date,
                realized: totals.realized.normalize(),
                unrealized: unrealized.normalize(),
                fees: totals.fees.normalize(),
                equity: equity.normalize(),
            });
            Ok(())
        };
        let closed = &u.series.closed;
        let mut next = 0;
        // The unrealized of the latest stored point: a day not stored repeats it.
        let mut carried: Option<Option<Decimal>> = None;
        let closed_days = &s.days[..s.days.len().saturating_sub(1)];
        for &date in closed_days {
            while let Some(d) = closed.get(next).filter(|d| d.date < date) {
                carried = Some(d.unrealized);
                next += 1;
            }
            if let Some(d) = closed.get(next).filter(|d| d.date == date) {
                emit(date, &d.totals, d.unrealized.ok_or_else(too_large))?;
                carried = Some(d.unrealized);
                next += 1;
            } else if let Some(unrealized) = carried {
                emit(date, &Totals::default(), unrealized.ok_or_else(too_large))?;
            }
            // Neither: the unit has no trade yet, so compute has no point for it either.
        }
        let day_marks = |sid: usize| s.symbols[sid].last_price;
        let final_marks = |sid: usize| self.final_mark(sid, marks).0;
        match opts.marks_date {
            Some(md) if md > last => {
                emit(last, &u.series.today, self.unit_value(u, &day_marks))?;
                emit(md, &Totals::default(), self.unit_value(u, &final_marks))?;
            }
            _ => emit(last, &u.series.today, self.unit_value(u, &final_marks))?,
        }
        Ok(out)
    }

    /// Unrealized P&L of a unit's holdings at `mark(symbol id)`.
    fn unit_value(&self, u: &Unit, mark: &dyn Fn(usize) -> Decimal) -> Result<Decimal, String> {
        let s = &self.state;
        match u.holds {
            Holds::Account(a) => {
                let acct = &s.accounts[a];
                let held = acct.positions.iter().map(|&p| {
                    let pos = &s.positions[p];
                    (pos.held.qty, mark(pos.symbol))
                });
                marked(held, acct.open_cost)
            }
            Holds::Position(p) => {
                let pos = &s.positions[p];
                marked(
                    std::iter::once((pos.held.qty, mark(pos.symbol))),
                    pos.held.cost,
                )
            }
        }
    }

    /// A position's realized P&L, fees and trades on or after `from`. Before its first trade
    /// that is the running total (summed per trade, as compute does); after, the per-day totals
    /// of the period.
    fn period(
        &self,
        pos: &BookPosition,
        from: Option<NaiveDate>,
        last: NaiveDate,
    ) -> Result<Totals, String> {
        match from {
            Some(f) if f > pos.first_date => {
                let mut t = Totals::default();
                for d in pos.series.closed.iter().filter(|d| d.date >= f) {
                    t.add_totals(&d.totals)?;
                }
                if last >= f {
                    t.add_totals(&pos.series.today)?;
                }
                Ok(t)
            }
            _ => Ok(pos.totals),
        }
    }

    fn final_mark(&self, sid: usize, marks: &BTreeMap<String, Decimal>) -> (Decimal, MarkSource) {
        let sym = &self.state.symbols[sid];
        match marks.get(&sym.name) {
            Some(&m) => (m, MarkSource::Marks),
            None => (sym.last_price, MarkSource::LastTrade),
        }
    }

    /// Check every internal reference of a restored state and rebuild the lookups.
    fn restore(state: BookState) -> Result<PnlBook, String> {
        let mut book = PnlBook::new(state.method);
        for (i, sym) in state.symbols.iter().enumerate() {
            if book.symbol_index.insert(sym.name.clone(), i).is_some() {
                return Err(format!("symbol {:?} listed twice", sym.name));
            }
        }
        for (i, acct) in state.accounts.iter().enumerate() {
            if book.account_index.insert(acct.name.clone(), i).is_some() {
                return Err(format!("account {:?} listed twice", acct.name));
            }
            check_series(&acct.series, &acct.name)?;
        }
        let mut listed = 0;
        for (a, acct) in state.accounts.iter().enumerate() {
            for &p in &acct.positions {
                if state.positions.get(p).is_none_or(|pos| pos.account != a) {
                    return Err(format!(
                        "account {:?} lists a position it does not own",
                        acct.name
                    ));
                }
                listed += 1;
            }
        }
        for (p, pos) in state.positions.iter().enumerate() {
            if pos.account >= state.accounts.len() || pos.symbol >= state.symbols.len() {
                return Err(format!(
                    "position {p} refers to an unknown account or symbol"
                ));
            }
            if book
                .position_index
                .insert((pos.account, pos.symbol), p)
                .is_some()
            {
                return Err(format!("position {p} is listed twice"));
            }
            check_series(&pos.series, &format!("position {p}"))?;
        }
        // Each position owned by its account (above) and listed as often as there are
        // positions, with (account, symbol) unique: every position is listed exactly once.
        if listed != state.positions.len()
            || state.accounts.iter().any(|a| {
                a.positions
                    .iter()
                    .collect::<std::collections::BTreeSet<_>>()
                    .len()
                    != a.positions.len()
            })
        {
            return Err("accounts do not list every position exactly once".into());
        }
        if !state.days.is_sorted_by(|a, b| a < b) {
            return Err("trade dates are not strictly ascending".into());
        }
        book.state = state;
        Ok(book)
    }
}

/// Stored points strictly ascending by date (the daily walk relies on it).
fn check_series(series: &Series, whose: &str) -> Result<(), String> {
    if series.closed.is_sorted_by(|a, b| a.date < b.date) {
        Ok(())
    } else {
        Err(format!("the daily points of {whose} are not in date order"))
    }
}

/// Where a unit's holdings are: all positions of an account, or one position.
#[derive(Clone, Copy)]
enum Holds {
    Account(usize),
    Position(usize),
}

/// The series a report's daily points come from: an account's (no symbol filter) or a
/// position's (symbol filter, where compute holds only that symbol per account).
struct Unit<'a> {
    account: usize,
    series: &'a Series,
    holds: Holds,
}

impl Serialize for PnlBook {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Snapshot<'a> {
            version: u32,
            book: &'a BookState,
        }
        Snapshot {
            version: SNAPSHOT_VERSION,
            book: &self.state,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for PnlBook {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Snapshot {
            version: u32,
            book: BookState,
        }
        let snap = Snapshot::deserialize(d)?;
        if snap.version != SNAPSHOT_VERSION {
            return Err(serde::de::Error::custom(format!(
                "P&L book snapshot version {} (this build reads version {SNAPSHOT_VERSION})",
                snap.version
            )));
        }
        PnlBook::restore(snap.book)
            .map_err(|e| serde::de::Error::custom(format!("inconsistent P&L book snapshot: {e}")))
    }
}

/// Record the first refusal of a position; returns its error.
fn reject(slot: &mut Option<Box<Rejection>>, r: Box<Rejection>) -> PtrcError {
    slot.get_or_insert(r).error()
}
