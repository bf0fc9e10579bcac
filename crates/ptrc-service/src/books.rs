//! The P&L books: one incremental [`PnlBook`] per method offered, fed by the journal's fills.
//!
//! [`PnlBooks`] is a pure `runtime::Snapshot` consumer of `fills.*`: it holds, per method, the
//! open lots and aggregates of every (account, symbol) (never the fills), plus the net position
//! per (account, symbol) for VaR and stress. Restart = its newest snapshot plus the journal
//! tail.
//!
//! # Fills into trades (one rule for live feeding and for replays)
//!
//! [`FillClock`] turns a fill into the `ptrc` trade the books and every replay see:
//!
//! - **Time.** A fill is folded at `max(fill ts, newest time folded so far)`. Journal fills are
//!   not always in timestamp order: a fill decided on market data carries the exchange's time,
//!   which can be earlier than the previous fill's. The books need time order, and the journal
//!   order is the order in which positions really changed, so a late-stamped fill keeps its
//!   journal place and is dated at the newest time seen (it may then count on the day of the
//!   fill before it when the two straddle midnight UTC). Refusing such fills would lose them;
//!   re-sorting would need the whole history. Replays read the blotter in fill-id order, which
//!   is journal order (the venue hands out strictly increasing fill ids), from the first fill,
//!   and apply the same clock, so a replay dates every fill exactly as the books did.
//! - **Fees.** A negative fee (a maker rebate) counts as 0, as before: ptrc's figures then
//!   differ from the gateway's `/positions` by the rebates (docs/ARCHITECTURE.md, known limits).
//! - **Owner.** The configured beneficial owner of the account (the account itself if none).

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;

use journal::Delivery;
use model::{Decimal, Event, Fill, Side, Timestamp};
use ptrc::PtrcError;
use ptrc::input::Trade;
use ptrc::pnl::{Method, PnlBook, PnlOptions, PnlReport};
use runtime::{Consumer, Snapshot};
use serde::{Deserialize, Serialize};

/// The methods the service keeps a book for (SPECIFIC needs lot ids, which platform fills do
/// not carry).
pub const OFFERED: [Method; 4] = [Method::Fifo, Method::Lifo, Method::Avg, Method::Hifo];

/// The durable consumer name (also the snapshot folder).
pub const CONSUMER: &str = "ptrc-books";

/// The subjects the books read.
pub const FILTER: &str = "fills.*";

/// What shapes the books' state: a snapshot built under anything else is not loaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BookConfig {
    pub methods: Vec<Method>,
    /// The fill-to-trade rules of [`FillClock`] (bump when they change).
    pub trade_rules: &'static str,
}

impl Default for BookConfig {
    fn default() -> Self {
        BookConfig {
            methods: OFFERED.to_vec(),
            trade_rules: "v1: ts=max(ts,last), negative fee=0",
        }
    }
}

impl BookConfig {
    /// The snapshot fingerprint of this configuration.
    pub fn fingerprint(&self) -> String {
        runtime::fingerprint(self)
    }
}

/// Turns fills into time-ordered trades (see the module docs): the one rule shared by the live
/// books and every replay.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FillClock {
    /// The newest time folded so far.
    last_ts: Option<Timestamp>,
}

impl FillClock {
    /// The trade of `fill`, dated at `max(fill.ts, newest so far)`, and whether it was moved.
    pub fn trade(&mut self, fill: &Fill, owners: &HashMap<String, String>) -> (Trade, bool) {
        let ts = match self.last_ts {
            Some(last) if fill.ts < last => last,
            _ => fill.ts,
        };
        self.last_ts = Some(ts);
        let account = fill.account.to_string();
        let owner = owners
            .get(&account)
            .cloned()
            .unwrap_or_else(|| account.clone());
        let trade = Trade {
            ts,
            owner,
            account,
            symbol: fill.instrument.symbol.to_string(),
            side: fill.side,
            qty: fill.quantity.get(),
            price: fill.price.get(),
            // Maker rebates are not credited (docs/ARCHITECTURE.md, known limits).
            fee: fill.fee.get().max(Decimal::ZERO),
            lot_ids: Vec::new(),
        };
        (trade, ts != fill.ts)
    }

    pub fn last_ts(&self) -> Option<Timestamp> {
        self.last_ts
    }
}

/// Counters of what the books folded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookStats {
    /// Fills folded.
    pub fills: u64,
    /// Fills dated later than their own timestamp by [`FillClock`].
    pub retimed: u64,
    /// Fills a book refused (bad amounts): their position stops there in that book and reports
    /// including it answer the refusal, as `ptrc::pnl::compute` would.
    pub refused: u64,
}

/// What held state amounts to (the bounded-memory tests and operators look at this).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Footprint {
    /// Open lots over every book.
    pub open_lots: usize,
    /// Stored daily points over every book (one per account and position per trading day).
    pub stored_days: usize,
    /// Non-flat (account, symbol) positions.
    pub positions: usize,
}

/// The books consumer's state (see the module docs).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PnlBooks {
    /// One per method of [`BookConfig::methods`], in that order.
    books: Vec<PnlBook>,
    clock: FillClock,
    /// Fill id of the newest fill folded: a replay covers the blotter up to here.
    last_fill_id: Option<u64>,
    /// Account -> symbol -> net quantity (flat positions removed).
    positions: BTreeMap<String, BTreeMap<String, Decimal>>,
    stats: BookStats,
}

impl PnlBooks {
    pub fn new(config: &BookConfig) -> PnlBooks {
        PnlBooks {
            books: config.methods.iter().map(|&m| PnlBook::new(m)).collect(),
            clock: FillClock::default(),
            last_fill_id: None,
            positions: BTreeMap::new(),
            stats: BookStats::default(),
        }
    }

    /// Folds one fill into every book.
    pub fn on_fill(&mut self, fill: &Fill) {
        // P&L does not look at owners: the books hold none.
        let (trade, retimed) = self.clock.trade(fill, &HashMap::new());
        let mut refused = None;
        for book in &mut self.books {
            if let Err(e) = book.on_trade(&trade) {
                refused.get_or_insert(e);
            }
        }
        if let Some(e) = refused {
            self.stats.refused += 1;
            tracing::warn!(fill_id = fill.fill_id.0, error = %e, "ptrc: a P&L book refused a fill");
        }
        self.stats.fills += 1;
        self.stats.retimed += u64::from(retimed);
        self.last_fill_id = Some(fill.fill_id.0);
        let signed = match fill.side {
            Side::Buy => trade.qty,
            Side::Sell => -trade.qty,
        };
        let per_account = self.positions.entry(trade.account.clone()).or_default();
        let qty = per_account.entry(trade.symbol.clone()).or_default();
        *qty += signed;
        // Flat positions leave, so this map follows open positions, not history.
        if qty.is_zero() {
            per_account.remove(&trade.symbol);
            if per_account.is_empty() {
                self.positions.remove(&trade.account);
            }
        }
    }

    pub fn book(&self, method: Method) -> Option<&PnlBook> {
        self.books.iter().find(|b| b.method() == method)
    }

    /// The methods this state keeps a book for.
    pub fn methods(&self) -> impl Iterator<Item = Method> + '_ {
        self.books.iter().map(PnlBook::method)
    }

    /// The book's report, or `NeedsReplay` when only a replay can answer (see
    /// [`PnlBook::report`]). `None` when no book is kept for `method`.
    pub fn report(
        &self,
        method: Method,
        marks: &BTreeMap<String, Decimal>,
        opts: &PnlOptions,
    ) -> Option<Result<PnlReport, PtrcError>> {
        self.book(method).map(|b| b.report(marks, opts))
    }

    /// Every symbol traded so far (the symbols a report needs marks for).
    pub fn symbols(&self) -> Vec<String> {
        self.books
            .first()
            .map(|b| b.symbols().map(str::to_string).collect())
            .unwrap_or_default()
    }

    /// The fill id of the newest fill folded.
    pub fn last_fill_id(&self) -> Option<u64> {
        self.last_fill_id
    }

    pub fn stats(&self) -> BookStats {
        self.stats
    }

    /// Net positions (symbol -> signed quantity) summed over the accounts `accounts` selects.
    pub fn positions(&self, accounts: impl Fn(&str) -> bool) -> BTreeMap<String, Decimal> {
        let mut out: BTreeMap<String, Decimal> = BTreeMap::new();
        for (account, symbols) in &self.positions {
            if accounts(account) {
                for (symbol, qty) in symbols {
                    *out.entry(symbol.clone()).or_default() += *qty;
                }
            }
        }
        out.retain(|_, q| !q.is_zero());
        out
    }

    pub fn footprint(&self) -> Footprint {
        Footprint {
            open_lots: self.books.iter().map(PnlBook::open_lot_count).sum(),
            stored_days: self.books.iter().map(PnlBook::stored_day_count).sum(),
            positions: self.positions.values().map(BTreeMap::len).sum(),
        }
    }
}

impl Consumer for PnlBooks {
    type Error = Infallible;

    fn apply(&mut self, batch: &[Delivery], _out: &mut Vec<Event>) -> Result<(), Infallible> {
        for d in batch {
            if let Event::OrderFilled(fill) = &d.event {
                self.on_fill(fill);
            }
        }
        Ok(())
    }
}

/// Layout of [`PnlBooks`] itself; the books' own layout version is folded into
/// [`Snapshot::STATE_VERSION`] so a new `ptrc` book layout also retires old snapshots.
const LAYOUT: u32 = 1;

impl Snapshot for PnlBooks {
    const STATE_VERSION: u32 = LAYOUT * 1_000 + ptrc::pnl::SNAPSHOT_VERSION;
}
