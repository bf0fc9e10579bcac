//! Aggregates, reports and the Rule 605 report built from per-order rows: the rows a service
//! stored (read back with [`OrderQuality::from_stored_json`], those still waiting for
//! realized-spread lookups brought up to now with [`crate::ExecQuality::spread_views`]) plus
//! the rows of the orders an engine still holds ([`crate::ExecQuality::held_rows`]). Same
//! results as the batch report over the same orders: a group's sums are the plain sum of its
//! orders' sums. A row still waiting, aggregated as stored, leaves its waiting lookups out.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};

use foldhash::fast::FixedState;

use crate::ExecqError;
use crate::engine::ReportFilter;
use crate::params::{Params, Resolved};
use crate::report::{Aggregates, OrderClass, OrderQuality, Report};
use crate::stats::{Stats, Sums};

/// A row's cell without its account (see [`RowAggregator`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct RestCell {
    symbol: String,
    class: OrderClass,
    bucket: &'static str,
    liquidity: &'static str,
    window: String,
}

/// A [`RestCell`] borrowed from a row, to look one up without building its key (same fields,
/// same order, so the same hash: a `String` hashes as its `str`).
#[derive(Hash)]
struct RestRef<'a> {
    symbol: &'a str,
    class: OrderClass,
    bucket: &'static str,
    liquidity: &'static str,
    window: &'a str,
}

impl hashbrown::Equivalent<RestCell> for RestRef<'_> {
    fn equivalent(&self, c: &RestCell) -> bool {
        self.symbol == c.symbol
            && self.class == c.class
            && self.bucket == c.bucket
            && self.liquidity == c.liquidity
            && self.window == c.window
    }
}

/// Folds rows into [`Aggregates`] one at a time (for rows streamed from storage). Rows the
/// filter drops are ignored. A row goes to its account's sums and to a cell of the five other
/// keys (symbol, class, size bucket, liquidity, time window: few), two additions instead of
/// seven; those cells are rolled up into the groupings whenever there are
/// [`RowAggregator::MAX_CELLS`] of them and at the end, so memory is bounded by that and by
/// the accounts, not by the rows. (A cell of all six keys gathers too few rows to pay for its
/// roll-up, seven additions, unless more than seven rows share it.) The sums are exact, so the
/// order of the additions changes nothing.
pub struct RowAggregator {
    r: Resolved,
    filter: ReportFilter,
    by_account: HashMap<String, Sums, FixedState>,
    rest: hashbrown::HashMap<RestCell, Sums, FixedState>,
    overall: Sums,
    groups: [BTreeMap<String, Sums>; 6],
}

impl RowAggregator {
    pub fn new(params: &Params, filter: ReportFilter) -> Result<RowAggregator, ExecqError> {
        Ok(Self::from_resolved(params.resolve()?, filter))
    }

    pub(crate) fn from_resolved(r: Resolved, filter: ReportFilter) -> RowAggregator {
        RowAggregator {
            overall: Sums::with_horizons(r.horizons_ns.len()),
            r,
            filter,
            by_account: HashMap::with_hasher(FixedState::default()),
            rest: hashbrown::HashMap::with_hasher(FixedState::default()),
            groups: Default::default(),
        }
    }

    /// Cells (of the keys other than the account) held before they are rolled up into the
    /// groupings.
    pub const MAX_CELLS: usize = 4096;

    pub fn add(&mut self, row: &OrderQuality) {
        if !self.filter.keeps(
            row.account.as_deref(),
            &row.symbol,
            row.receipt_ts.as_nanos(),
        ) {
            return;
        }
        self.add_split(row);
    }

    /// A row into its account's sums and its cell of the other keys.
    fn add_split(&mut self, row: &OrderQuality) {
        let account = row.account.as_deref().unwrap_or("(none)");
        match self.by_account.get_mut(account) {
            Some(acc) => acc.add(&row.sums),
            None => {
                self.by_account
                    .insert(account.to_string(), (*row.sums).clone());
            }
        }
        let key = RestRef {
            symbol: &row.symbol,
            class: row.order_class,
            bucket: row.size_bucket,
            liquidity: row.liquidity,
            window: &row.time_window,
        };
        match self.rest.get_mut(&key) {
            Some(acc) => acc.add(&row.sums),
            None => {
                if self.rest.len() >= Self::MAX_CELLS {
                    self.roll_up_rest();
                }
                let cell = RestCell {
                    symbol: row.symbol.clone(),
                    class: row.order_class,
                    bucket: row.size_bucket,
                    liquidity: row.liquidity,
                    window: row.time_window.clone(),
                };
                self.rest.insert(cell, (*row.sums).clone());
            }
        }
    }

    /// Add the cells without account into the overall sums and the five other groupings, and
    /// forget them (their rows' accounts are in `by_account`).
    fn roll_up_rest(&mut self) {
        for (cell, s) in self.rest.drain() {
            self.overall.add(&s);
            let keys: [&str; 5] = [
                &cell.symbol,
                cell.class.as_str(),
                cell.bucket,
                cell.liquidity,
                &cell.window,
            ];
            for (g, key) in self.groups[1..].iter_mut().zip(keys) {
                Self::add_to(g, key, &s);
            }
        }
    }

    fn add_to(g: &mut BTreeMap<String, Sums>, key: &str, s: &Sums) {
        match g.get_mut(key) {
            Some(acc) => acc.add(s),
            None => {
                g.insert(key.to_string(), s.clone());
            }
        }
    }

    /// The aggregates over the rows added: the cells rolled up into each grouping.
    pub fn finish(mut self) -> Aggregates {
        self.roll_up_rest();
        for (account, s) in std::mem::take(&mut self.by_account) {
            Self::add_to(&mut self.groups[0], &account, &s);
        }
        let overall = self.overall;
        let groups = self.groups;
        let r = &self.r;
        let st = |m: BTreeMap<String, Sums>| -> BTreeMap<String, Stats> {
            m.into_iter()
                .map(|(k, s)| (k, Stats::from_sums(&s, r)))
                .collect()
        };
        let [a, s, c, b, l, t] = groups;
        Aggregates {
            overall: Stats::from_sums(&overall, r),
            by_account: st(a),
            by_symbol: st(s),
            by_order_class: st(c),
            by_size_bucket: st(b),
            by_liquidity: st(l),
            by_time_window: st(t),
        }
    }
}

/// The aggregates over `rows` that `filter` keeps (account, symbol, receipt time), as the
/// batch report computes them over the same orders. `params` must be the engine's.
pub fn aggregate_rows<I>(
    rows: I,
    params: &Params,
    filter: &ReportFilter,
) -> Result<Aggregates, ExecqError>
where
    I: IntoIterator,
    I::Item: Borrow<OrderQuality>,
{
    let mut agg = RowAggregator::new(params, filter.clone())?;
    for row in rows {
        agg.add(row.borrow());
    }
    Ok(agg.finish())
}

/// A [`Report`] over `rows` that `filter` keeps, with the engine's record count and data
/// issues ([`crate::ExecQuality::records`], [`crate::ExecQuality::data_issues`]). A later row
/// with the id of an earlier one replaces it.
pub fn report_from_rows<I>(
    rows: I,
    params: &Params,
    filter: &ReportFilter,
    records: u64,
    data_issues: BTreeMap<String, u64>,
) -> Result<Report, ExecqError>
where
    I: IntoIterator<Item = OrderQuality>,
{
    let mut orders: BTreeMap<String, Box<OrderQuality>> = BTreeMap::new();
    for row in rows {
        if filter.keeps(
            row.account.as_deref(),
            &row.symbol,
            row.receipt_ts.as_nanos(),
        ) {
            orders.insert(row.order_id.clone(), Box::new(row));
        }
    }
    let aggregates = aggregate_rows(
        orders.values().map(|b| &**b),
        params,
        &ReportFilter::default(),
    )?;
    Ok(Report {
        params: params.clone(),
        records,
        data_issues,
        orders,
        aggregates,
    })
}

/// [`crate::ExecQuality::report`] built while it is serialized
/// ([`crate::ExecQuality::report_streamed`]): the same serde output (so the same JSON, byte for
/// byte), with one per-order row in memory at a time instead of the map of every row. The
/// aggregates, which follow the rows, are folded from the rows as they go out.
pub struct StreamedReport<'a> {
    pub(crate) engine: &'a crate::ExecQuality,
}

/// The `orders` map of a [`StreamedReport`], feeding `agg` as it goes.
struct StreamedOrders<'a> {
    engine: &'a crate::ExecQuality,
    agg: &'a std::cell::RefCell<RowAggregator>,
}

impl serde::Serialize for StreamedOrders<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let rows = self.engine.held_rows_iter(&ReportFilter::default());
        let mut map = s.serialize_map(None)?;
        for row in rows {
            self.agg.borrow_mut().add(&row);
            map.serialize_entry(&row.order_id, &row)?;
        }
        map.end()
    }
}

impl serde::Serialize for StreamedReport<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let e = self.engine;
        let agg = RowAggregator::new(e.params(), ReportFilter::default())
            .map_err(serde::ser::Error::custom)?;
        let agg = std::cell::RefCell::new(agg);
        // The fields of `Report`, in its order.
        let mut st = s.serialize_struct("Report", 5)?;
        st.serialize_field("params", e.params())?;
        st.serialize_field("records", &e.records())?;
        st.serialize_field("data_issues", &e.data_issues())?;
        st.serialize_field(
            "orders",
            &StreamedOrders {
                engine: e,
                agg: &agg,
            },
        )?;
        st.serialize_field("aggregates", &agg.into_inner().finish())?;
        st.end()
    }
}
