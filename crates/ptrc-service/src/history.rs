//! What the books cannot answer, from the blotter: P&L replays and tax.
//!
//! Every function here reads the blotter page by page in fill-id order (journal order) from the
//! first fill and dates fills with the same [`FillClock`] as the books, so a replay sees exactly
//! the trades the books saw, in the same order, with the same times and trade numbers. They
//! block on SQLite: async callers run them on the blocking pool.
//!
//! - A P&L replay streams the pages through `ptrc::pnl::PnlStream`: memory is one page plus the
//!   stream's open lots and aggregates, never the fills.
//! - Tax collects the trades of the owners a report needs (every account of the requested
//!   account's or owner's beneficial owner, since wash sales cross an owner's accounts) up to
//!   the year's end plus the wash-sale window, at most [`crate::Limits::tax_max_trades`]: the
//!   tax engine (`ptrc::tax::form_8949`) takes a slice. Streaming tax is a later task.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use blotter::{Blotter, BlotterError, FillQuery};
use chrono::NaiveDate;
use model::{Decimal, Timestamp};
use ptrc::PtrcError;
use ptrc::input::Trade;
use ptrc::pnl::{Method, PnlOptions, PnlReport, PnlStream};

use crate::books::FillClock;

/// Fills per blotter page.
pub const PAGE: usize = 2_000;

/// Why a history read failed.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error(transparent)]
    Blotter(#[from] BlotterError),
    #[error(transparent)]
    Ptrc(#[from] PtrcError),
    #[error(
        "more than {limit} trades are needed for this tax report; name an account or an owner \
         with fewer trades"
    )]
    TooManyTrades { limit: usize },
}

/// Hands every fill with id up to `through` (all of them: `None` means none) to `f` as a trade,
/// in fill-id order, dated by a fresh [`FillClock`]; stops early when `f` answers false.
pub fn for_each_trade<E: From<BlotterError>>(
    blotter: &Blotter,
    through: Option<u64>,
    owners: &HashMap<String, String>,
    mut f: impl FnMut(Trade) -> Result<bool, E>,
) -> Result<(), E> {
    let Some(through) = through else {
        return Ok(());
    };
    let mut clock = FillClock::default();
    let mut cursor = None;
    loop {
        let page = blotter.fills(&FillQuery {
            cursor,
            limit: PAGE,
            newest_first: false,
            ..FillQuery::default()
        })?;
        for fill in &page.items {
            if fill.fill_id.0 > through {
                return Ok(());
            }
            let (trade, _) = clock.trade(fill, owners);
            if !f(trade)? {
                return Ok(());
            }
        }
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return Ok(()),
        }
    }
}

/// Whether the blotter has caught up with fill `fill_id` (it holds it or a later fill): a
/// replay bounded by that id then sees every fill the books saw.
pub fn blotter_reached(blotter: &Blotter, fill_id: Option<u64>) -> Result<bool, BlotterError> {
    let Some(id) = fill_id else {
        return Ok(true);
    };
    let page = blotter.fills(&FillQuery {
        cursor: Some(id.saturating_sub(1)),
        limit: 1,
        newest_first: false,
        ..FillQuery::default()
    })?;
    Ok(!page.items.is_empty())
}

/// `ptrc::pnl::compute` over the fills through `through`, streamed from the blotter.
pub fn replay_pnl(
    blotter: &Blotter,
    through: Option<u64>,
    method: Method,
    marks: &BTreeMap<String, Decimal>,
    opts: &PnlOptions,
) -> Result<PnlReport, HistoryError> {
    let mut stream = PnlStream::new(method, opts.clone());
    for_each_trade(
        blotter,
        through,
        &HashMap::new(),
        |t| -> Result<bool, HistoryError> {
            stream.push(&t)?;
            Ok(!stream.is_done())
        },
    )?;
    Ok(stream.finish(marks)?)
}

/// First instant after the trades a `year` report can depend on: the wash-sale window after the
/// year's end, plus a day of margin (the tax engine ignores what it does not need).
pub fn tax_cutoff(year: i32, wash_sale_window_days: u32) -> Option<Timestamp> {
    let next_year = NaiveDate::from_ymd_opt(year.checked_add(1)?, 1, 1)?;
    let end =
        next_year.checked_add_days(chrono::Days::new(u64::from(wash_sale_window_days) + 1))?;
    let nanos = end.and_hms_opt(0, 0, 0)?.and_utc().timestamp_nanos_opt()?;
    Some(Timestamp::from_nanos(nanos))
}

/// The trades a tax report over `owners` (`None`: every owner) needs: fills through `through`
/// dated before `cutoff`, at most `limit`.
pub fn tax_trades(
    blotter: &Blotter,
    through: Option<u64>,
    account_owners: &HashMap<String, String>,
    owners: Option<&BTreeSet<String>>,
    cutoff: Timestamp,
    limit: usize,
) -> Result<Vec<Trade>, HistoryError> {
    let mut out = Vec::new();
    for_each_trade(blotter, through, account_owners, |t| {
        // Dates only grow along the clock: nothing later can come before the cutoff.
        if t.ts >= cutoff {
            return Ok(false);
        }
        if owners.is_none_or(|o| o.contains(&t.owner)) {
            if out.len() == limit {
                return Err(HistoryError::TooManyTrades { limit });
            }
            out.push(t);
        }
        Ok(true)
    })?;
    Ok(out)
}
