//! The lot and wash-sale engine behind [`form_8949`].
//!
//! Trades are processed once, in time order. A sale relieves lots (FIFO or named), writes one raw
//! row per relieved lot and, for each losing lot on a covered symbol, immediately matches the
//! replacement shares already held that were bought in the window before the sale (earliest
//! purchase first); what stays unmatched waits in a per-(owner, symbol) queue in order of sale
//! and is matched by later purchases as they arrive, until its window closes. Matching at the
//! moment a purchase arrives means a replacement's basis already carries the disallowed loss
//! when it is itself sold, which is what makes chains come out right (rule 8) with no second
//! pass. Earlier losses always have first claim: a purchase is offered to the queue (oldest sale
//! first) before any later sale can see it (rule 7).
//!
//! Losses on covering shorts (§1091(e)) work the same way with the roles swapped: a cover first
//! matches short sales still open that were entered into in the window before it, and what is
//! left waits in a second queue for later sells, whose long shares sold and then the short they
//! open absorb it.
//!
//! A raw row is final once nothing can wash it any more (its loss fully matched, or its window
//! closed); the engine then combines the final rows of each sale into Form 8949 rows (per
//! `RowCombining`) and hands them to the sink in order of sale, so it holds only the rows of
//! the last window, never the year's.
//!
//! Amounts (quantities and money) are [`Amt`]s: `i64` units at one scale per run ([`Fixed`])
//! when the input's amounts fit ([`fixed_scale`], checked before the run), else [`Decimal`]s.
//! Both are exact and give the same values; a fixed-point run that meets an error (an invalid
//! trade, or an amount out of range) is redone on decimals, which decide and word it.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use chrono::{Datelike, NaiveDate, TimeDelta};
use model::Side;
use model::text::{DECIMAL_TEXT, decimal_str};
use rust_decimal::{Decimal, RoundingStrategy};

use super::{
    DateAcquiredDisplay, Feb29Anniversary, FeePresentation, FifoOrder, OpenLot, OpenShort,
    Replacement, RowCombining, RowSplitting, SublotOrder, TackMethod, TaxFilter, TaxReport, TaxRow,
    TaxSettings, TaxSink, TaxSummary, TaxTotals, Term, TermTotals, WashMatch, WashSaleScope,
};
use crate::PtrcError;
use crate::input::Trade;

/// Form 8949 rows, totals, wash matches and year-end open lots for `year`.
///
/// `trades` may span several years: earlier years build the lots (and their carried wash
/// adjustments), and trades up to `wash_sale_window_days` into the next year can wash a December
/// loss (ambiguity 15). Trades are taken in time order (a stable sort by `ts`; equal stamps keep
/// their input order). With a `filter`, only that account's or owner's rows, lots and washes are
/// reported, but an owner's other accounts still wash its losses under
/// [`WashSaleScope::Owner`].
///
/// Errors: a sale naming lots that do not hold its quantity, a sell beyond the position when
/// `allow_short_sales` is false, one account with two owners, amounts too large for exact
/// decimals, or a year without a calendar.
pub fn form_8949(
    trades: &[Trade],
    year: i32,
    settings: &TaxSettings,
    filter: Option<&TaxFilter>,
) -> Result<TaxReport, PtrcError> {
    #[derive(Default)]
    struct Collect {
        short: Vec<TaxRow>,
        long: Vec<TaxRow>,
        washes: Vec<WashMatch>,
    }
    impl TaxSink for Collect {
        type Error = PtrcError;
        fn row(&mut self, row: &TaxRow) -> Result<(), PtrcError> {
            match row.term {
                Term::Short => self.short.push(row.clone()),
                Term::Long => self.long.push(row.clone()),
            }
            Ok(())
        }
        fn wash(&mut self, wash: &WashMatch) -> Result<(), PtrcError> {
            self.washes.push(wash.clone());
            Ok(())
        }
    }
    let mut c = Collect::default();
    let sum = form_8949_to(trades, year, settings, filter, &mut c)?;
    // Part I then Part II, each in order of sale.
    let mut rows = c.short;
    rows.append(&mut c.long);
    Ok(TaxReport {
        year: sum.year,
        filter: sum.filter,
        rows,
        totals: sum.totals,
        washes: c.washes,
        open_lots: sum.open_lots,
        open_shorts: sum.open_shorts,
        notes: sum.notes,
        settings: sum.settings,
    })
}

/// [`form_8949`] with the rows and wash matches sent to `sink` as they become final (in order of
/// sale, both parts interleaved) instead of collected: memory then holds the open lots and the
/// rows of the last wash-sale window, not the year's rows. Returns the rest of the report.
pub fn form_8949_to<S: TaxSink>(
    trades: &[Trade],
    year: i32,
    settings: &TaxSettings,
    filter: Option<&TaxFilter>,
    sink: &mut S,
) -> Result<TaxSummary, S::Error> {
    form_8949_on(trades, year, settings, filter, sink, true)
}

/// [`form_8949_to`], on fixed-point amounts when `fixed` and the input fits them, else on
/// decimals (the tests compare the two).
pub(crate) fn form_8949_on<S: TaxSink>(
    trades: &[Trade],
    year: i32,
    settings: &TaxSettings,
    filter: Option<&TaxFilter>,
    sink: &mut S,
    fixed: bool,
) -> Result<TaxSummary, S::Error> {
    if let Some(scale) = fixed_scale(trades, settings.rounding_dp).filter(|_| fixed) {
        let mut counted = Counted {
            sink: &mut *sink,
            rows: 0,
            washes: 0,
        };
        match run::<Fixed, _>(trades, year, settings, filter, scale, &mut counted) {
            Ok(sum) => return Ok(sum),
            Err(Stop::Sink(e)) => return Err(e),
            // What the fixed-point run refuses (an invalid trade, or an amount out of its
            // range), the decimal run decides and words as before; the sink gets only what
            // the first run did not send it (both send the same rows in the same order).
            Err(Stop::Engine) => {
                let (rows, washes) = (counted.rows, counted.washes);
                let mut rest = Skip { sink, rows, washes };
                return run::<Decimal, _>(trades, year, settings, filter, 0, &mut rest);
            }
        }
    }
    run::<Decimal, _>(trades, year, settings, filter, 0, sink)
}

/// Why a fixed-point run stopped: the engine (the decimal run then decides) or the sink.
enum Stop<E> {
    Engine,
    Sink(E),
}

impl<E> From<PtrcError> for Stop<E> {
    fn from(_: PtrcError) -> Self {
        Stop::Engine
    }
}

/// A sink that counts what it passed on.
struct Counted<'s, S> {
    sink: &'s mut S,
    rows: usize,
    washes: usize,
}

impl<S: TaxSink> TaxSink for Counted<'_, S> {
    type Error = Stop<S::Error>;
    fn row(&mut self, row: &TaxRow) -> Result<(), Self::Error> {
        self.sink.row(row).map_err(Stop::Sink)?;
        self.rows += 1;
        Ok(())
    }
    fn wash(&mut self, wash: &WashMatch) -> Result<(), Self::Error> {
        self.sink.wash(wash).map_err(Stop::Sink)?;
        self.washes += 1;
        Ok(())
    }
}

/// A sink that drops the first `rows` rows and `washes` wash matches (already sent).
struct Skip<'s, S> {
    sink: &'s mut S,
    rows: usize,
    washes: usize,
}

impl<S: TaxSink> TaxSink for Skip<'_, S> {
    type Error = S::Error;
    fn row(&mut self, row: &TaxRow) -> Result<(), S::Error> {
        if self.rows > 0 {
            self.rows -= 1;
            return Ok(());
        }
        self.sink.row(row)
    }
    fn wash(&mut self, wash: &WashMatch) -> Result<(), S::Error> {
        if self.washes > 0 {
            self.washes -= 1;
            return Ok(());
        }
        self.sink.wash(wash)
    }
}

/// [`form_8949_to`] on amounts of type `A` (`scale`: see [`Fixed`]).
fn run<A: Amt, S: TaxSink>(
    trades: &[Trade],
    year: i32,
    settings: &TaxSettings,
    filter: Option<&TaxFilter>,
    scale: u32,
    sink: &mut S,
) -> Result<TaxSummary, S::Error> {
    let year_end = NaiveDate::from_ymd_opt(year, 12, 31).ok_or_else(|| PtrcError::BadInput {
        source_name: "tax".into(),
        reason: format!("{year} is not a supported year"),
    })?;
    let mut order: Vec<u32> = (0..trades.len() as u32).collect();
    if !trades.is_sorted_by_key(|t| t.ts) {
        order.sort_by_key(|&i| trades[i as usize].ts);
    }
    let mut eng = Engine::<A>::new(trades, settings, year, scale);
    let window = i64::from(settings.wash_sale_window_days);
    eng.intern_and_check(&order)?;
    let wanted = eng.relevant_owners(filter);

    let year_end_day = year_end.num_days_from_ce();
    let mut snapshot: Option<(Vec<OpenLot>, Vec<OpenShort>)> = None;
    let mut last_day: Option<i32> = None;
    for &i in &order {
        let t = &trades[i as usize];
        let owner = eng.owner_of[eng.acct_id(i)];
        if let Some(w) = &wanted
            && !w.contains(&owner)
        {
            continue;
        }
        let date = trade_date(t);
        let day = date.num_days_from_ce();
        if day > year_end_day {
            if snapshot.is_none() {
                snapshot = Some(eng.snapshot(filter));
            }
            // Nothing later can touch a row of `year`: its windows have all closed.
            if i64::from(day) > i64::from(year_end_day) + window {
                break;
            }
        }
        last_day = Some(day);
        // Rows no trade from today on can change; a trade past the window's end is not
        // processed, so it finalizes nothing (the last rows then get their open-window notes).
        eng.flush(Some(day), filter, None, sink)?;
        match t.side {
            Side::Buy => eng.buy(i, date)?,
            Side::Sell => eng.sell(i, date)?,
        }
    }
    let (open_lots, open_shorts) = match snapshot {
        Some(s) => s,
        None => eng.snapshot(filter),
    };
    eng.flush(None, filter, last_day, sink)?;
    Ok(eng.summary(year, filter, open_lots, open_shorts)?)
}

/// One tax lot, or one part of a purchase split by a wash (ambiguity 3).
#[derive(Debug, Clone, Copy)]
struct Lot<A> {
    /// Index of the buy trade: the order of acquisition, shared by the parts of one purchase.
    seq: u32,
    /// Rank of the buy in processing order: rises along the book (see [`Fresh`]).
    ord: u32,
    acquired: NaiveDate,
    /// Start of the holding period after tacking (rule 9).
    hp_start: NaiveDate,
    qty: A,
    /// Remaining basis: cost, buy commission and any disallowed loss added to it.
    basis: A,
    /// The part of `basis` that is deferred wash-sale loss.
    wash_adj: A,
    /// These shares already absorbed a loss and cannot absorb another (rule 6).
    absorbed: bool,
}

#[derive(Debug, Clone, Copy)]
struct ShortLot<A> {
    /// Index of the sell trade that opened it: the order in which short sales were entered
    /// into, shared by the parts of one short sale.
    seq: u32,
    /// Rank of the sell in processing order: rises along the book (see [`Fresh`]).
    ord: u32,
    opened: NaiveDate,
    qty: A,
    /// Net proceeds still open.
    proceeds: A,
    /// Selling commission inside the open proceeds (for the gross presentation).
    fee: A,
    /// Deferred loss of an earlier short covered at a loss (§1091(e)), added to the cost of
    /// covering this one.
    wash_adj: A,
    /// This short sale already absorbed a loss and cannot absorb another (rule 6 by analogy).
    absorbed: bool,
}

#[derive(Debug)]
struct Book<A> {
    acct: usize,
    sym: usize,
    /// Id of its wash-sale scope and symbol (the books whose lots can replace): `scopes`.
    scope: u32,
    /// In purchase order (ambiguity 7); a split keeps its parts adjacent.
    lots: Queue<Lot<A>>,
    /// The lots that have not absorbed a loss (the replacement candidates).
    unabsorbed: Fresh,
    shorts: Queue<ShortLot<A>>,
    /// The short sales that have not absorbed a loss.
    unabsorbed_shorts: Fresh,
}

/// A book's lots (or short sales) in book order: a `Vec` whose front is relieved by moving a
/// start index, so that FIFO relief stays O(1) (amortized) while the items are one slice (no
/// ring buffer that wraps): searches run on a plain slice, and the washed parts a sale's losses
/// carve off are inserted with one move of the tail ([`Queue::insert_carved`]).
#[derive(Debug)]
struct Queue<T> {
    v: Vec<T>,
    /// Items before it have been relieved.
    head: usize,
}

impl<T> Default for Queue<T> {
    fn default() -> Self {
        Queue {
            v: Vec::new(),
            head: 0,
        }
    }
}

impl<T> std::ops::Deref for Queue<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.v[self.head..]
    }
}

impl<T> std::ops::DerefMut for Queue<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.v[self.head..]
    }
}

impl<T: Copy> Queue<T> {
    fn push_back(&mut self, x: T) {
        self.v.push(x);
    }

    fn extend(&mut self, items: impl IntoIterator<Item = T>) {
        self.v.extend(items);
    }

    fn pop_back(&mut self) -> Option<T> {
        if self.v.len() > self.head {
            self.v.pop()
        } else {
            None
        }
    }

    fn pop_front(&mut self) -> Option<T> {
        let x = *self.v.get(self.head)?;
        self.head += 1;
        // The relieved slots are given back once they are half the vector: each live item is
        // moved at most once per relieved one.
        if self.head == self.v.len() {
            self.v.clear();
            self.head = 0;
        } else if self.head >= 16 && self.head * 2 >= self.v.len() {
            self.v.drain(..self.head);
            self.head = 0;
        }
        Some(x)
    }

    fn remove(&mut self, k: usize) -> Option<T> {
        if k == 0 {
            return self.pop_front();
        }
        (k < self.len()).then(|| self.v.remove(self.head + k))
    }

    /// Insert `parts` (sorted by place, [`sort_carved`]), each before the item that was at its
    /// `at` when it was carved (all places refer to the items before this call): the tail moves
    /// once for the batch instead of once per part (a sale's losses carve tens of parts, mostly
    /// off one lot).
    fn insert_carved(&mut self, parts: &[Carved<T>]) {
        let Some(first) = parts.first() else {
            return;
        };
        // One part: a plain insert.
        if parts.len() == 1 {
            self.v.insert(self.head + first.at, first.part);
            return;
        }
        let n = self.len();
        self.v.resize(self.v.len() + parts.len(), first.part);
        let s: &mut [T] = self;
        // Fill from the back: the items [at, end) move to just below `w`, then the part.
        let (mut end, mut w) = (n, s.len());
        for p in parts.iter().rev() {
            let len = end - p.at;
            // (Nothing to move between parts of one place.)
            if len > 0 {
                s.copy_within(p.at..end, w - len);
            }
            w -= len + 1;
            s[w] = p.part;
            end = p.at;
        }
    }
}

/// A lot (or short sale) that has not absorbed a loss: its purchase's (or short sale's)
/// processing rank, trade index and day.
#[derive(Debug, Clone, Copy)]
struct FreshLot {
    ord: u32,
    seq: u32,
    day: i32,
}

/// The lots of a book that have not absorbed a loss, in book order, so that a replacement
/// search visits only them instead of walking the book's absorbed parts. A purchase has at most
/// one such lot: lots are created one per purchase, and a wash only carves absorbed parts off
/// it (the rest stays the one unabsorbed lot) or marks it absorbed. Book order is purchase
/// (processing) order, parts of one purchase adjacent, so the ranks rise, and so do the days;
/// with `WashedFirst` the unabsorbed rest is the last lot of its purchase's parts, with
/// `UnwashedFirst` the first ([`Fresh::locate`]).
#[derive(Debug, Default)]
struct Fresh {
    v: VecDeque<FreshLot>,
}

impl Fresh {
    fn len(&self) -> usize {
        self.v.len()
    }

    fn push(&mut self, f: FreshLot) {
        debug_assert!(self.v.back().is_none_or(|b| b.ord < f.ord));
        self.v.push_back(f);
    }

    /// Forget the purchase of rank `ord` (its lot absorbed a loss or left the book).
    fn remove(&mut self, ord: u32) {
        if self.v.front().is_some_and(|f| f.ord == ord) {
            self.v.pop_front();
            return;
        }
        if self.v.back().is_some_and(|f| f.ord == ord) {
            self.v.pop_back();
            return;
        }
        let k = self.v.partition_point(|f| f.ord < ord);
        debug_assert!(self.v.get(k).is_some_and(|f| f.ord == ord));
        if self.v.get(k).is_some_and(|f| f.ord == ord) {
            self.v.remove(k);
        }
    }

    /// Index of the first bought on day `from` or later.
    fn first_since(&self, from: i64) -> usize {
        // Mostly all of them are recent.
        if self.v.front().is_none_or(|f| i64::from(f.day) >= from) {
            return 0;
        }
        self.v.partition_point(|f| i64::from(f.day) < from)
    }

    /// Those bought on day `from` or later, in book order.
    fn since(&self, from: i64) -> impl Iterator<Item = &FreshLot> {
        self.v.range(self.first_since(from)..)
    }

    fn get(&self, k: usize) -> Option<FreshLot> {
        self.v.get(k).copied()
    }

    /// Position in `items` (a book's lots or short sales: `key` gives rank and absorbed) of the
    /// unabsorbed part of rank `ord`.
    fn locate<T>(
        items: &[T],
        ord: u32,
        washed_first: bool,
        key: impl Fn(&T) -> (u32, bool),
    ) -> usize {
        // Mostly the last purchase's rest.
        if washed_first && items.last().is_some_and(|x| key(x) == (ord, false)) {
            return items.len() - 1;
        }
        let p = if washed_first {
            items.partition_point(|x| key(x).0 <= ord).saturating_sub(1)
        } else {
            items.partition_point(|x| key(x).0 < ord)
        };
        if items.get(p).is_some_and(|x| key(x) == (ord, false)) {
            return p;
        }
        // Not reached (the parts' order above); a walk of the purchase's parts.
        debug_assert!(false, "unabsorbed part of {ord} not where expected");
        let start = items.partition_point(|x| key(x).0 < ord);
        (start..items.len())
            .find(|&k| key(&items[k]) == (ord, false))
            .unwrap_or(p)
    }
}

/// Where a replacement search is ([`Engine::cands_start`]).
struct Cands {
    /// The scope's one book, else None (candidates in the buffer).
    one: Option<u32>,
    /// Next index in the book's [`Fresh`] list or in the buffer.
    k: usize,
    shorts: bool,
    lot_seq: u32,
    /// The walk's candidates and how many were taken (debug check).
    #[cfg(debug_assertions)]
    scanned: Vec<(u32, u32, usize)>,
    #[cfg(debug_assertions)]
    used: usize,
}

/// A washed part carved off the unabsorbed lot at `at` of book `book` by a loss matched
/// against held lots, waiting to be inserted next to it ([`Queue::insert_carved`]); `n` counts the
/// parts in carving order.
#[derive(Debug, Clone, Copy)]
struct Carved<T> {
    book: u32,
    at: usize,
    n: u32,
    part: T,
}

/// Where the last candidate of a batch of losses was found: (book, rank, position). The losses
/// of one sale mostly take parts of the same lot one after the other, and no lot moves while
/// they are matched (the parts are inserted after the batch), so its position is reused instead
/// of searched for again.
type Located = Option<(u32, u32, usize)>;

/// A closing of one lot (before display choices). The sale's date and kind are its
/// [`SaleRows`]'s, the replacements that absorbed its loss are in the sale's `matches`.
#[derive(Debug, Clone)]
struct RawRow<A> {
    lot_seq: u32,
    acquired: NaiveDate,
    hp_start: NaiveDate,
    /// Its loss may still be washed by a later trade (shares left, window open).
    pending: bool,
    qty: A,
    /// Net of the selling commission.
    proceeds: A,
    basis: A,
    sell_fee: A,
    adjustment: A,
    washed_qty: A,
}

/// The still-unmatched part of a losing lot (or of a short covered at a loss).
#[derive(Debug, Clone)]
struct Loss<A> {
    row: RowId,
    /// The purchase (or, for a short, the short sale) the loss was realized on: its unsold
    /// rest is not a replacement by default (ambiguity 4).
    lot_seq: u32,
    sold: NaiveDate,
    sold_day: i32,
    hp_start: NaiveDate,
    qty_rem: A,
    /// Loss not yet disallowed, as a positive amount.
    loss_rem: A,
}

#[derive(Debug, Clone)]
struct MatchRec<A> {
    kind: Replacement,
    repl_book: u32,
    repl_date: NaiveDate,
    qty: A,
    disallowed: A,
    hp_start: NaiveDate,
}

/// The replacement that absorbs (part of) a loss: its kind, book, date and the holding-period
/// start it gets.
#[derive(Debug, Clone, Copy)]
struct Absorber {
    kind: Replacement,
    book: u32,
    date: NaiveDate,
    hp_start: NaiveDate,
}

/// Where a closing's `RawRow` is: the id of its sale's [`SaleRows`] and its index there.
#[derive(Debug, Clone, Copy)]
struct RowId {
    slot: u32,
    k: u32,
}

/// `RawRow` id of a closing outside the tax year: not stored (only its losses matter).
const NO_ROW: RowId = RowId {
    slot: u32::MAX,
    k: 0,
};

/// The closings of one sale (one sell, or one buy covering shorts) not yet reported.
struct SaleRows<'a, A> {
    /// Index of the sell (or the covering buy).
    sale: u32,
    book: u32,
    sold: NaiveDate,
    /// The closing of short sales (a covering buy).
    short: bool,
    rows: Vec<RawRow<A>>,
    /// The replacements that absorbed the rows' losses, as (row index, match), in the order
    /// matched (so each row's in order).
    matches: Vec<(u32, MatchRec<A>)>,
    /// How many of `rows` are pending: while any is, the sale's rows may still change.
    pending: u32,
    /// The sale's Form 8949 rows and washes, once combined (its rows are then dropped).
    combined: Option<Combined<'a, A>>,
}

/// (date acquired, term, washed, lot id, short) of a Form 8949 row.
type RowKey<'k> = (NaiveDate, Term, bool, Option<&'k String>, bool);

/// One sale's rows combined per [`RowCombining`]: (key, [qty, d, e, g]) in order of first
/// appearance, and its wash matches.
struct Combined<'a, A> {
    parts: Vec<(RowKey<'a>, [A; 4])>,
    washes: Vec<MatchRec<A>>,
}

/// What has been reported so far: the running totals and the notes.
struct Emitted<A> {
    /// Part I, Part II and both: rows and the sums of (d), (e), (g) and (h), added in the
    /// engine's amounts (exact either way; converted once, in [`Engine::summary`]).
    totals: [(usize, [A; 4]); 3],
    notes: Vec<String>,
    open_windows: usize,
    lots_closed: usize,
}

impl<A: Amt> Default for Emitted<A> {
    fn default() -> Self {
        Emitted {
            totals: [(0, [A::ZERO; 4]); 3],
            notes: Vec::new(),
            open_windows: 0,
            lots_closed: 0,
        }
    }
}

struct Engine<'a, A> {
    trades: &'a [Trade],
    s: &'a TaxSettings,
    year: i32,
    /// Decimal places of a [`Fixed`] amount (unused by [`Decimal`] ones).
    scale: u32,
    /// Per trade: its book.
    bix: Vec<u32>,
    /// Names by id, shared with the rows and wash matches handed out.
    names_acct: Vec<Arc<str>>,
    names_owner: Vec<Arc<str>>,
    names_sym: Vec<Arc<str>>,
    /// Per trade: (account id, symbol id).
    ids: Vec<(u32, u32)>,
    /// Some trade names lots (`lot_id`).
    any_lot_ids: bool,
    owner_of: Vec<usize>,
    covered: Vec<bool>,
    books: Vec<Book<A>>,
    book_ix: FxMap<(usize, usize), u32>,
    /// (scope id, symbol) -> its index in `scopes`.
    scope_books: FxMap<(usize, usize), u32>,
    /// Per (scope, symbol) ([`Book::scope`]): the books whose lots can replace (the owner's
    /// accounts).
    scopes: Vec<Vec<u32>>,
    pending: FxMap<(usize, usize), VecDeque<Loss<A>>>,
    /// Losses on covering shorts still waiting for a sale or a short sale (§1091(e)).
    pending_short: FxMap<(usize, usize), VecDeque<Loss<A>>>,
    /// Reused buffer of replacement candidates (seq, book, rank).
    cands: Vec<(u32, u32, u32)>,
    /// Sales not yet reported, in order of sale; `sales[0]` has id `sale_base`. A sale behind
    /// a pending one is combined as soon as its own rows are final, so the window holds one
    /// compact record per sale, not its lots' parts.
    sales: VecDeque<SaleRows<'a, A>>,
    sale_base: u32,
    /// Id of the first sale not yet looked at for combining.
    unscanned: u32,
    /// Sales whose last pending row became final since the last flush.
    ready: Vec<u32>,
    /// Emptied row and match buffers, kept for their capacity.
    free_rows: Vec<Vec<RawRow<A>>>,
    free_matches: Vec<Vec<(u32, MatchRec<A>)>>,
    /// Emptied buffers of combined rows and washes, kept for their capacity.
    free_parts: Vec<Vec<(RowKey<'a>, [A; 4])>>,
    free_washes: Vec<Vec<MatchRec<A>>>,
    /// Reused buffers: a sale's losses, a loss's matches against held lots, a purchase's
    /// matches against waiting losses and its washed parts.
    buf_losses: Vec<Loss<A>>,
    buf_plan: Vec<(u32, usize, A, A, NaiveDate)>,
    buf_parts: Vec<(A, A, NaiveDate)>,
    buf_washed: Vec<Lot<A>>,
    /// Washed parts carved off held lots (short sales) by a sale's losses (a covering buy's),
    /// inserted into their books once all of them are matched.
    buf_carved: Vec<Carved<Lot<A>>>,
    buf_carved_shorts: Vec<Carved<ShortLot<A>>>,
    /// Reused buffers: a covering buy's losses, a short loss's matches against held shorts.
    buf_short_losses: Vec<Loss<A>>,
    buf_plan_short: Vec<(u32, usize, A, A)>,
    /// Processing rank of the next lot or short sale ([`Lot::ord`]).
    next_ord: u32,
    emitted: Emitted<A>,
    /// The row and wash match lent to the sink, refilled for each (their strings reused).
    out_row: Option<TaxRow>,
    out_wash: Option<WashMatch>,
}

/// A multiply-rotate hasher (the rustc "Fx" scheme) for the engine's internal maps, whose keys
/// are our own small integers and the input's names: SipHash's DoS resistance buys nothing here
/// and costs a sixth of the run time on a million trades.
#[derive(Default, Clone, Copy)]
struct Fx(u64);

impl Hasher for Fx {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.write_u64(u64::from_le_bytes(w));
        }
        for &b in chunks.remainder() {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }
    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<Fx>>;

fn overflow(what: &str) -> PtrcError {
    PtrcError::Invalid(format!(
        "{what}: amount too large for exact decimal arithmetic"
    ))
}

impl<'a, A: Amt> Engine<'a, A> {
    fn new(trades: &'a [Trade], s: &'a TaxSettings, year: i32, scale: u32) -> Self {
        Engine {
            trades,
            s,
            year,
            scale,
            bix: Vec::new(),
            names_acct: Vec::new(),
            names_owner: Vec::new(),
            names_sym: Vec::new(),
            ids: Vec::with_capacity(trades.len()),
            any_lot_ids: false,
            owner_of: Vec::new(),
            covered: Vec::new(),
            books: Vec::new(),
            book_ix: FxMap::default(),
            scope_books: FxMap::default(),
            scopes: Vec::new(),
            pending: FxMap::default(),
            pending_short: FxMap::default(),
            cands: Vec::new(),
            sales: VecDeque::new(),
            sale_base: 0,
            unscanned: 0,
            ready: Vec::new(),
            free_rows: Vec::new(),
            free_matches: Vec::new(),
            free_parts: Vec::new(),
            free_washes: Vec::new(),
            buf_losses: Vec::new(),
            buf_plan: Vec::new(),
            buf_parts: Vec::new(),
            buf_washed: Vec::new(),
            buf_carved: Vec::new(),
            buf_carved_shorts: Vec::new(),
            buf_short_losses: Vec::new(),
            buf_plan_short: Vec::new(),
            next_ord: 0,
            emitted: Emitted::default(),
            out_row: None,
            out_wash: None,
        }
    }

    fn describe(&self, i: u32) -> String {
        let t = &self.trades[i as usize];
        format!(
            "trade {} ({} {} {} {} {} @ {})",
            i + 1,
            t.ts,
            t.account,
            match t.side {
                Side::Buy => "buy",
                Side::Sell => "sell",
            },
            t.qty,
            t.symbol,
            t.price
        )
    }

    fn acct_id(&self, i: u32) -> usize {
        self.ids[i as usize].0 as usize
    }

    /// Interns names, checks that each account has one owner.
    fn intern_and_check(&mut self, order: &[u32]) -> Result<(), PtrcError> {
        let mut acct: FxMap<&'a str, u32> = FxMap::default();
        let mut owner: FxMap<&'a str, usize> = FxMap::default();
        let mut sym: FxMap<&'a str, u32> = FxMap::default();
        self.ids = vec![(0, 0); self.trades.len()];
        self.bix = vec![0; self.trades.len()];
        for &i in order {
            let t = &self.trades[i as usize];
            let o = match owner.get(t.owner.as_str()) {
                Some(&o) => o,
                None => {
                    self.names_owner.push(Arc::from(t.owner.as_str()));
                    owner.insert(&t.owner, self.names_owner.len() - 1);
                    self.names_owner.len() - 1
                }
            };
            let a = match acct.get(t.account.as_str()) {
                Some(&a) => {
                    if self.owner_of[a as usize] != o {
                        return Err(PtrcError::Invalid(format!(
                            "{}: account {:?} belongs to owner {:?} in an earlier trade and to {:?} here",
                            self.describe(i),
                            t.account,
                            self.names_owner[self.owner_of[a as usize]],
                            t.owner
                        )));
                    }
                    a
                }
                None => {
                    self.names_acct.push(Arc::from(t.account.as_str()));
                    self.owner_of.push(o);
                    let a = (self.names_acct.len() - 1) as u32;
                    acct.insert(&t.account, a);
                    a
                }
            };
            let s = match sym.get(t.symbol.as_str()) {
                Some(&s) => s,
                None => {
                    self.names_sym.push(Arc::from(t.symbol.as_str()));
                    self.covered.push(self.s.coverage.covers(&t.symbol));
                    let s = (self.names_sym.len() - 1) as u32;
                    sym.insert(&t.symbol, s);
                    s
                }
            };
            self.ids[i as usize] = (a, s);
            self.any_lot_ids |= !t.lot_ids.is_empty();
            self.bix[i as usize] = self.book(a as usize, s as usize);
        }
        Ok(())
    }

    /// The owners whose trades can affect the filtered report (None = all).
    fn relevant_owners(&self, filter: Option<&TaxFilter>) -> Option<Vec<usize>> {
        match filter? {
            TaxFilter::Owner(o) => Some(
                self.names_owner
                    .iter()
                    .position(|n| **n == **o)
                    .into_iter()
                    .collect(),
            ),
            TaxFilter::Account(a) => Some(
                self.names_acct
                    .iter()
                    .position(|n| **n == **a)
                    .map(|ai| self.owner_of[ai])
                    .into_iter()
                    .collect(),
            ),
        }
    }

    fn scope_of(&self, acct: usize) -> usize {
        match self.s.wash_sale_scope {
            WashSaleScope::Owner => self.owner_of[acct],
            WashSaleScope::Account => acct,
        }
    }

    fn book(&mut self, acct: usize, sym: usize) -> u32 {
        if let Some(&b) = self.book_ix.get(&(acct, sym)) {
            return b;
        }
        let b = self.books.len() as u32;
        let next = self.scopes.len() as u32;
        let scope = *self
            .scope_books
            .entry((self.scope_of(acct), sym))
            .or_insert(next);
        if scope == next {
            self.scopes.push(Vec::new());
        }
        self.scopes[scope as usize].push(b);
        self.books.push(Book {
            acct,
            sym,
            scope,
            lots: Queue::default(),
            unabsorbed: Fresh::default(),
            shorts: Queue::default(),
            unabsorbed_shorts: Fresh::default(),
        });
        self.book_ix.insert((acct, sym), b);
        b
    }

    /// `total * part / whole`, rounded per the settings; the whole when `part >= whole`, so the
    /// last part always takes the remainder and sums stay exact (ambiguity 16).
    #[inline(always)]
    fn alloc(&self, total: A, part: A, whole: A) -> Result<A, PtrcError> {
        if ge(part, whole) {
            return Ok(total);
        }
        if total.is_zero() {
            return Ok(A::ZERO);
        }
        A::split(total, part, whole, self.s.rounding_dp, self.scale)
            .ok_or_else(|| overflow("pro-rata split"))
    }

    /// An amount as a decimal (for the report).
    fn dec(&self, a: A) -> Decimal {
        a.to_dec(self.scale)
    }

    /// An amount as shown: no trailing zeros beyond the cents, at least two decimals, no `-0`
    /// (from the 64-bit units directly when they fit, not through a full decimal).
    fn shown_money(&self, a: A) -> Decimal {
        a.strip(self.scale, 2)
            .unwrap_or_else(|| money_slow(self.dec(a)))
    }

    /// A quantity as shown: `norm(self.dec(a))`, likewise.
    fn shown_qty(&self, a: A) -> Decimal {
        a.strip(self.scale, 0)
            .unwrap_or_else(|| self.dec(a).normalize())
    }

    /// A decimal of the input as an amount; an error (never in range: the bound is checked
    /// before a fixed-point run) when it does not fit.
    fn amt(&self, d: Decimal, what: u32) -> Result<A, PtrcError> {
        A::from_dec(d, self.scale).ok_or_else(|| overflow(&self.describe(what)))
    }

    /// Store a closing of the tax year; others are not reported and are dropped (their losses
    /// still travel in their `Loss`).
    #[inline(always)]
    fn push_row(
        &mut self,
        (sale, book, sold, short): (u32, u32, NaiveDate, bool),
        r: RawRow<A>,
    ) -> RowId {
        if sold.year() != self.year {
            return NO_ROW;
        }
        if self.sales.back().is_none_or(|s| s.sale != sale) {
            let rows = self.free_rows.pop().unwrap_or_default();
            let matches = self.free_matches.pop().unwrap_or_default();
            self.sales.push_back(SaleRows {
                sale,
                book,
                sold,
                short,
                rows,
                matches,
                pending: 0,
                combined: None,
            });
        }
        let ix = self.sales.len() - 1;
        let slot = &mut self.sales[ix];
        slot.pending += u32::from(r.pending);
        slot.rows.push(r);
        RowId {
            slot: self.sale_base + ix as u32,
            k: (slot.rows.len() - 1) as u32,
        }
    }

    fn tack(&self, sold_hp_start: NaiveDate, sold: NaiveDate, repl: NaiveDate) -> NaiveDate {
        // Overlapping periods: the union starts at the earlier real date.
        if self.s.tack_method == TackMethod::Union && repl < sold {
            return sold_hp_start.min(repl);
        }
        // Else the replacement's date moved back by the days the sold shares were held (the
        // date arithmetic only when they were held a day or more).
        if sold_hp_start >= sold {
            return repl;
        }
        let held = (sold - sold_hp_start).num_days();
        repl.checked_sub_signed(TimeDelta::days(held))
            .unwrap_or(NaiveDate::MIN)
    }

    fn buy(&mut self, i: u32, date: NaiveDate) -> Result<(), PtrcError> {
        let trades: &'a [Trade] = self.trades;
        let t = &trades[i as usize];
        let s = self.ids[i as usize].1;
        let b = self.bix[i as usize];
        let cost = t
            .qty
            .checked_mul(t.price)
            .and_then(|c| c.checked_add(t.fee))
            .ok_or_else(|| overflow(&self.describe(i)))?;
        let mut cost = self.amt(cost, i)?;
        let mut left = self.amt(t.qty, i)?;
        let short_wash = self.s.short_sale_wash_sales && self.covered[s as usize];
        let mut short_losses = std::mem::take(&mut self.buf_short_losses);
        short_losses.clear();
        // Cover open shorts first, oldest first.
        while is_pos(left) {
            let Some(front) = self.books[b as usize].shorts.first() else {
                break;
            };
            let (sq, sp, sf, sadj, sseq) = (
                front.qty,
                front.proceeds,
                front.fee,
                front.wash_adj,
                front.seq,
            );
            let m = dmin(sq, left);
            let c = self.alloc(cost, m, left)?;
            let p = self.alloc(sp, m, sq)?;
            let f = self.alloc(sf, m, sq)?;
            let adj = self.alloc(sadj, m, sq)?;
            let book = &mut self.books[b as usize];
            if ge(m, sq) {
                if let Some(sh) = book.shorts.pop_front()
                    && !sh.absorbed
                {
                    book.unabsorbed_shorts.remove(sh.ord);
                }
            } else if let Some(sh) = book.shorts.first_mut() {
                sh.qty -= m;
                sh.proceeds -= p;
                sh.fee -= f;
                sh.wash_adj -= adj;
            }
            // A deferred §1091(e) loss carried by this short is part of the cost of covering it.
            let basis = c
                .checked_add(adj)
                .ok_or_else(|| overflow(&self.describe(i)))?;
            let loss = short_wash && p < basis;
            let row = self.push_row(
                (i, b, date, true),
                RawRow {
                    lot_seq: i,
                    qty: m,
                    acquired: date,
                    hp_start: date,
                    proceeds: p,
                    basis,
                    sell_fee: f,
                    adjustment: A::ZERO,
                    washed_qty: A::ZERO,
                    pending: loss,
                },
            );
            if loss {
                short_losses.push(Loss {
                    row,
                    lot_seq: sseq,
                    sold: date,
                    sold_day: date.num_days_from_ce(),
                    hp_start: date,
                    qty_rem: m,
                    loss_rem: basis
                        .checked_sub(p)
                        .ok_or_else(|| overflow(&self.describe(i)))?,
                });
            }
            cost -= c;
            left -= m;
        }
        if !short_losses.is_empty() {
            let key = (self.scope_of(self.ids[i as usize].0 as usize), s as usize);
            let mut located = None;
            for mut loss in short_losses.drain(..) {
                self.match_held_shorts(&mut loss, b, &mut located)?;
                if is_pos(loss.qty_rem) {
                    self.pending_short.entry(key).or_default().push_back(loss);
                }
            }
            self.insert_carved_shorts();
        }
        self.buf_short_losses = short_losses;
        if !is_pos(left) {
            return Ok(());
        }
        let ord = self.new_fresh(b, i, date, false);
        self.books[b as usize].lots.push_back(Lot {
            seq: i,
            ord,
            acquired: date,
            hp_start: date,
            qty: left,
            basis: cost,
            wash_adj: A::ZERO,
            absorbed: false,
        });
        if self.covered[s as usize] {
            self.match_pending(b, date)?;
        }
        Ok(())
    }

    /// Offer the purchase just appended to book `b` to the losses waiting in its scope.
    fn match_pending(&mut self, b: u32, date: NaiveDate) -> Result<(), PtrcError> {
        let (acct, sym) = (self.books[b as usize].acct, self.books[b as usize].sym);
        let key = (self.scope_of(acct), sym);
        let day = date.num_days_from_ce();
        let window = i64::from(self.s.wash_sale_window_days);
        // An emptied queue stays in the map for its buffer (a key's losses come and go all
        // year), so the purchases of a key that has none wait return here.
        let Some(queue) = self.pending.get_mut(&key).filter(|q| !q.is_empty()) else {
            return Ok(());
        };
        let mut queue = std::mem::take(queue);
        while queue
            .front()
            .is_some_and(|l| i64::from(l.sold_day) + window < i64::from(day))
        {
            queue.pop_front();
        }
        let mut avail = self.books[b as usize]
            .lots
            .last()
            .map_or(A::ZERO, |l| l.qty);
        // (qty, disallowed, tacked start) per part, in order of the losses they absorb.
        let mut parts = std::mem::take(&mut self.buf_parts);
        parts.clear();
        for loss in queue.iter_mut() {
            if !is_pos(avail) {
                break;
            }
            let m = dmin(loss.qty_rem, avail);
            let hp = self.tack(loss.hp_start, loss.sold, date);
            let amount = self.take(
                loss,
                m,
                Absorber {
                    kind: Replacement::Purchase,
                    book: b,
                    date,
                    hp_start: hp,
                },
            )?;
            parts.push((m, amount, hp));
            avail -= m;
        }
        while queue.front().is_some_and(|l| !is_pos(l.qty_rem)) {
            queue.pop_front();
        }
        self.pending.insert(key, queue);
        if parts.is_empty() {
            self.buf_parts = parts;
            return Ok(());
        }
        let pos = self.books[b as usize].lots.len() - 1;
        // Split the purchase into its washed parts (in order) and the rest.
        let mut washed = std::mem::take(&mut self.buf_washed);
        washed.clear();
        for &(m, amount, hp) in &parts {
            washed.push(self.carve(b, pos, m, amount, hp)?);
        }
        self.buf_parts = parts;
        let book = &mut self.books[b as usize];
        let rest = book.lots.pop_back();
        if let Some(r) = &rest
            && !is_pos(r.qty)
        {
            book.unabsorbed.remove(r.ord);
        }
        match self.s.sublot_order {
            SublotOrder::WashedFirst => {
                book.lots.extend(washed.drain(..));
                book.lots.extend(rest.filter(|r| is_pos(r.qty)));
            }
            SublotOrder::UnwashedFirst => {
                book.lots.extend(rest.filter(|r| is_pos(r.qty)));
                book.lots.extend(washed.drain(..));
            }
        }
        self.buf_washed = washed;
        Ok(())
    }

    /// Take `m` shares of `lots[pos]` out as a washed part carrying `amount` and start `hp`;
    /// the lot keeps the rest (possibly zero shares: the caller drops it).
    #[inline(always)]
    fn carve(
        &mut self,
        b: u32,
        pos: usize,
        m: A,
        amount: A,
        hp: NaiveDate,
    ) -> Result<Lot<A>, PtrcError> {
        let lot = &self.books[b as usize].lots[pos];
        let (q, basis, wadj) = (lot.qty, lot.basis, lot.wash_adj);
        let part_basis = self.alloc(basis, m, q)?;
        let part_wadj = self.alloc(wadj, m, q)?;
        let lot = &mut self.books[b as usize].lots[pos];
        let mut part = *lot;
        lot.qty -= m;
        lot.basis -= part_basis;
        lot.wash_adj -= part_wadj;
        part.qty = m;
        part.basis = part_basis
            .checked_add(amount)
            .ok_or_else(|| overflow("replacement basis"))?;
        part.wash_adj = part_wadj + amount;
        part.absorbed = true;
        part.hp_start = hp;
        Ok(part)
    }

    /// Disallow the loss of `m` of the loss's remaining shares against replacement `by` and
    /// record the match; returns the amount.
    #[inline(always)]
    fn take(&mut self, loss: &mut Loss<A>, m: A, by: Absorber) -> Result<A, PtrcError> {
        let amount = if ge(m, loss.qty_rem) {
            loss.loss_rem
        } else {
            self.alloc(loss.loss_rem, m, loss.qty_rem)?
                .min(loss.loss_rem)
        };
        loss.qty_rem -= m;
        loss.loss_rem -= amount;
        let done = !is_pos(loss.qty_rem);
        // A row outside the tax year is not stored: only its loss travels.
        let id = loss.row;
        let slot = id
            .slot
            .checked_sub(self.sale_base)
            .and_then(|ix| self.sales.get_mut(ix as usize));
        if let Some(slot) = slot
            && let Some(row) = slot.rows.get_mut(id.k as usize)
        {
            row.adjustment += amount;
            row.washed_qty += m;
            if row.pending == done {
                if done {
                    slot.pending -= 1;
                    if slot.pending == 0 {
                        self.ready.push(id.slot);
                    }
                } else {
                    slot.pending += 1;
                }
            }
            row.pending = !done;
            let rec = MatchRec {
                kind: by.kind,
                repl_book: by.book,
                repl_date: by.date,
                qty: m,
                disallowed: amount,
                hp_start: by.hp_start,
            };
            slot.matches.push((id.k, rec));
        }
        Ok(amount)
    }

    fn sell(&mut self, i: u32, date: NaiveDate) -> Result<(), PtrcError> {
        let trades: &'a [Trade] = self.trades;
        let t = &trades[i as usize];
        let (a, s) = self.ids[i as usize];
        let b = self.bix[i as usize];
        let gross = t
            .qty
            .checked_mul(t.price)
            .ok_or_else(|| overflow(&self.describe(i)))?;
        let mut net = self.amt(gross - t.fee, i)?;
        let mut fee = self.amt(t.fee, i)?;
        let mut left = self.amt(t.qty, i)?;
        let mut losses = std::mem::take(&mut self.buf_losses);
        losses.clear();
        let covered = self.covered[s as usize];
        let key = (self.scope_of(a as usize), s as usize);
        // Losses on covering shorts that this sale can wash (§1091(e)(1) and (2)).
        // (Long-only input never fills the queue: no map lookup on its sells.)
        let mut short_losses =
            if self.s.short_sale_wash_sales && covered && !self.pending_short.is_empty() {
                self.open_short_losses(key, date.num_days_from_ce())
            } else {
                VecDeque::new()
            };
        let mut names = t.lot_ids.iter();
        let mut current: Option<&String> = names.next();
        let specific = current.is_some();
        while is_pos(left) {
            let pos = if specific {
                let Some(name) = current else { break };
                let found = self.books[b as usize]
                    .lots
                    .iter()
                    .position(|l| self.trades[l.seq as usize].lot_ids.first() == Some(name));
                match found {
                    Some(p) => p,
                    None => {
                        current = names.next();
                        continue;
                    }
                }
            } else {
                let lots = &self.books[b as usize].lots;
                if lots.is_empty() {
                    break;
                }
                match self.s.fifo_order {
                    FifoOrder::Purchase => 0,
                    FifoOrder::AdjustedDate => (0..lots.len())
                        .min_by_key(|&k| (lots[k].hp_start, lots[k].seq, k))
                        .unwrap_or(0),
                }
            };
            let lot = &self.books[b as usize].lots[pos];
            let (lq, lbasis, lwadj) = (lot.qty, lot.basis, lot.wash_adj);
            let (seq, acquired, hp_start) = (lot.seq, lot.acquired, lot.hp_start);
            let m = dmin(lq, left);
            let basis = self.alloc(lbasis, m, lq)?;
            let wadj = self.alloc(lwadj, m, lq)?;
            let proceeds = self.alloc(net, m, left)?;
            let f = self.alloc(fee, m, left)?;
            let book = &mut self.books[b as usize];
            if ge(m, lq) {
                // FIFO relieves the front: no shifting of the rest.
                let gone = if pos == 0 {
                    book.lots.pop_front()
                } else {
                    book.lots.remove(pos)
                };
                if let Some(l) = gone
                    && !l.absorbed
                {
                    book.unabsorbed.remove(l.ord);
                }
            } else {
                let lot = &mut book.lots[pos];
                lot.qty -= m;
                lot.basis -= basis;
                lot.wash_adj -= wadj;
            }
            net -= proceeds;
            fee -= f;
            left -= m;
            // Shares sold absorb a waiting short loss (§1091(e)(1)): it goes into the basis of
            // these shares, so it is deferred to this sale and never lost.
            let mut basis = basis;
            // (Mostly none waits: no call per lot sold.)
            if !short_losses.is_empty() {
                for (_, amount) in
                    self.absorb_short_losses(&mut short_losses, m, b, date, Replacement::Sale)?
                {
                    basis = basis
                        .checked_add(amount)
                        .ok_or_else(|| overflow(&self.describe(i)))?;
                }
            }
            // Per lot, never on the order's net result (ambiguity 9); gains are never washed.
            let loss = covered && proceeds < basis;
            let row = self.push_row(
                (i, b, date, false),
                RawRow {
                    lot_seq: seq,
                    qty: m,
                    acquired,
                    hp_start,
                    proceeds,
                    basis,
                    sell_fee: f,
                    adjustment: A::ZERO,
                    washed_qty: A::ZERO,
                    pending: loss,
                },
            );
            if loss {
                losses.push(Loss {
                    row,
                    lot_seq: seq,
                    sold: date,
                    sold_day: date.num_days_from_ce(),
                    hp_start,
                    qty_rem: m,
                    loss_rem: basis
                        .checked_sub(proceeds)
                        .ok_or_else(|| overflow(&self.describe(i)))?,
                });
            }
        }
        if is_pos(left) {
            if specific {
                return Err(PtrcError::Invalid(format!(
                    "{}: the lots it names ({}) hold {} less than the quantity sold",
                    self.describe(i),
                    t.lot_ids.join(";"),
                    self.dec(left)
                )));
            }
            if !self.s.allow_short_sales {
                return Err(PtrcError::Invalid(format!(
                    "{}: sells {} more than the position under the long-only setting",
                    self.describe(i),
                    self.dec(left)
                )));
            }
            let ord = self.new_fresh(b, i, date, true);
            self.books[b as usize].shorts.push_back(ShortLot {
                seq: i,
                ord,
                opened: date,
                qty: left,
                proceeds: net,
                fee,
                wash_adj: A::ZERO,
                absorbed: false,
            });
            // The short sale entered into absorbs a waiting short loss (§1091(e)(2)).
            let parts =
                self.absorb_short_losses(&mut short_losses, left, b, date, Replacement::ShortSale)?;
            if !parts.is_empty() {
                self.split_new_short(b, parts)?;
            }
        }
        while short_losses.front().is_some_and(|l| !is_pos(l.qty_rem)) {
            short_losses.pop_front();
        }
        if !short_losses.is_empty() {
            self.pending_short.insert(key, short_losses);
        }
        let mut located = None;
        for mut loss in losses.drain(..) {
            self.match_held(&mut loss, b, &mut located)?;
            if is_pos(loss.qty_rem) {
                self.pending.entry(key).or_default().push_back(loss);
            }
        }
        self.buf_losses = losses;
        self.insert_carved();
        Ok(())
    }

    /// Match a loss against shares already held that were bought in the window before the sale,
    /// earliest purchase first (rules 4-5), skipping shares that already absorbed a loss
    /// (rule 6) and, by default, the rest of the sold lot's own purchase (ambiguity 4).
    /// The washed parts carved off lots wait in `buf_carved` ([`Engine::insert_carved`]), so
    /// that no lot moves while a sale's losses are matched (`located`: see [`Located`]).
    fn match_held(
        &mut self,
        loss: &mut Loss<A>,
        b: u32,
        located: &mut Located,
    ) -> Result<(), PtrcError> {
        let from = i64::from(loss.sold_day) - i64::from(self.s.wash_sale_window_days);
        let mut cands = std::mem::take(&mut self.cands);
        cands.clear();
        let scope = self.books[b as usize].scope;
        let mut c = self.cands_start(scope, from, loss.lot_seq, false, &mut cands);
        let mut plan = std::mem::take(&mut self.buf_plan);
        plan.clear();
        while is_pos(loss.qty_rem) {
            let Some((b, pos)) = self.cands_next(&mut c, &cands, located) else {
                break;
            };
            let lot = &self.books[b as usize].lots[pos];
            let (lq, acquired) = (lot.qty, lot.acquired);
            let m = dmin(lq, loss.qty_rem);
            let hp = self.tack(loss.hp_start, loss.sold, acquired);
            let amount = self.take(
                loss,
                m,
                Absorber {
                    kind: Replacement::Purchase,
                    book: b,
                    date: acquired,
                    hp_start: hp,
                },
            )?;
            plan.push((b, pos, m, amount, hp));
        }
        // Out of candidates with shares left: the walk had no more either.
        #[cfg(debug_assertions)]
        assert!(!is_pos(loss.qty_rem) || c.used == c.scanned.len());
        self.cands = cands;
        // Applied from the back (the order of the walk this replaced, which inserted the parts
        // at once); each lot is in the plan once, so the order changes no amount.
        if c.one.is_some() {
            plan.reverse();
        } else {
            plan.sort_unstable_by_key(|x| std::cmp::Reverse((x.0, x.1)));
        }
        for &(b, pos, m, amount, hp) in &plan {
            let lq = self.books[b as usize].lots[pos].qty;
            if ge(m, lq) {
                let lot = &mut self.books[b as usize].lots[pos];
                lot.basis = lot
                    .basis
                    .checked_add(amount)
                    .ok_or_else(|| overflow("replacement basis"))?;
                lot.wash_adj += amount;
                lot.absorbed = true;
                lot.hp_start = hp;
                let ord = lot.ord;
                self.books[b as usize].unabsorbed.remove(ord);
                continue;
            }
            let part = self.carve(b, pos, m, amount, hp)?;
            let at = match self.s.sublot_order {
                SublotOrder::WashedFirst => pos,
                SublotOrder::UnwashedFirst => pos + 1,
            };
            let n = self.buf_carved.len() as u32;
            self.buf_carved.push(Carved {
                book: b,
                at,
                n,
                part,
            });
        }
        self.buf_plan = plan;
        Ok(())
    }

    /// The replacement candidates of a loss (on lots, or with `shorts` on short sales) in
    /// scope `key`: the unabsorbed ones bought (entered into) on day `from` or later, earliest
    /// first (seq, then book), by default not of the loss's own purchase `lot_seq`. One book
    /// (the scope is one account): its [`Fresh`] list in book order, visited only until the
    /// loss is matched; several: all of them collected into `buf` and sorted.
    #[inline(always)]
    fn cands_start(
        &self,
        scope: u32,
        from: i64,
        lot_seq: u32,
        shorts: bool,
        buf: &mut Vec<(u32, u32, u32)>,
    ) -> Cands {
        let same_ok = self.s.same_purchase_is_replacement;
        let books = &self.scopes[scope as usize];
        let one = if books.len() == 1 {
            Some(books[0])
        } else {
            for &b in books {
                for f in self.fresh(b, shorts).since(from) {
                    if same_ok || f.seq != lot_seq {
                        buf.push((f.seq, b, f.ord));
                    }
                }
            }
            // The seq is unique: one unabsorbed lot per purchase.
            buf.sort_unstable();
            None
        };
        Cands {
            one,
            k: one.map_or(0, |b| self.fresh(b, shorts).first_since(from)),
            shorts,
            lot_seq,
            #[cfg(debug_assertions)]
            scanned: self.scan_held(scope, from, lot_seq, shorts),
            #[cfg(debug_assertions)]
            used: 0,
        }
    }

    /// The next candidate of [`Engine::cands_start`]: (book, position in its lots or shorts).
    #[inline(always)]
    fn cands_next(
        &self,
        c: &mut Cands,
        buf: &[(u32, u32, u32)],
        located: &mut Located,
    ) -> Option<(u32, usize)> {
        let (b, ord) = loop {
            match c.one {
                Some(b) => {
                    let f = self.fresh(b, c.shorts).get(c.k)?;
                    c.k += 1;
                    if self.s.same_purchase_is_replacement || f.seq != c.lot_seq {
                        break (b, f.ord);
                    }
                }
                None => {
                    let &(_, b, ord) = buf.get(c.k)?;
                    c.k += 1;
                    break (b, ord);
                }
            }
        };
        let washed_first = self.s.sublot_order == SublotOrder::WashedFirst;
        let book = &self.books[b as usize];
        let pos = if let Some((lb, lord, lpos)) = *located
            && (lb, lord) == (b, ord)
        {
            debug_assert!(if c.shorts {
                book.shorts
                    .get(lpos)
                    .is_some_and(|s| (s.ord, s.absorbed) == (ord, false))
            } else {
                book.lots
                    .get(lpos)
                    .is_some_and(|l| (l.ord, l.absorbed) == (ord, false))
            });
            lpos
        } else if c.shorts {
            debug_assert_eq!(
                book.unabsorbed_shorts.len(),
                book.shorts.iter().filter(|s| !s.absorbed).count()
            );
            Fresh::locate(&book.shorts, ord, washed_first, |s| (s.ord, s.absorbed))
        } else {
            debug_assert_eq!(
                book.unabsorbed.len(),
                book.lots.iter().filter(|l| !l.absorbed).count()
            );
            Fresh::locate(&book.lots, ord, washed_first, |l| (l.ord, l.absorbed))
        };
        *located = Some((b, ord, pos));
        #[cfg(debug_assertions)]
        {
            assert_eq!(c.scanned.get(c.used).map(|x| (x.1, x.2)), Some((b, pos)));
            c.used += 1;
        }
        Some((b, pos))
    }

    /// Register the lot (or with `shorts` the short sale) trade `i` is about to append to book
    /// `b` as unabsorbed; returns its rank.
    fn new_fresh(&mut self, b: u32, i: u32, date: NaiveDate, shorts: bool) -> u32 {
        let ord = self.next_ord;
        self.next_ord += 1;
        let book = &mut self.books[b as usize];
        let fresh = if shorts {
            &mut book.unabsorbed_shorts
        } else {
            &mut book.unabsorbed
        };
        fresh.push(FreshLot {
            ord,
            seq: i,
            day: date.num_days_from_ce(),
        });
        ord
    }

    fn fresh(&self, b: u32, shorts: bool) -> &Fresh {
        let book = &self.books[b as usize];
        if shorts {
            &book.unabsorbed_shorts
        } else {
            &book.unabsorbed
        }
    }

    /// The replacement candidates of a loss sold on `from` + window, found by walking the books
    /// (lots, or short sales with `shorts`) as before [`Fresh`]: (seq, book, position) in the
    /// order matched. Debug builds check the search through [`Fresh`] against it.
    #[cfg(debug_assertions)]
    fn scan_held(
        &self,
        scope: u32,
        from: i64,
        lot_seq: u32,
        shorts: bool,
    ) -> Vec<(u32, u32, usize)> {
        let mut cands = Vec::new();
        let books = &self.scopes[scope as usize];
        for &b in books {
            let book = &self.books[b as usize];
            let items: Vec<(u32, NaiveDate, bool)> = if shorts {
                book.shorts
                    .iter()
                    .map(|s| (s.seq, s.opened, s.absorbed))
                    .collect()
            } else {
                book.lots
                    .iter()
                    .map(|l| (l.seq, l.acquired, l.absorbed))
                    .collect()
            };
            for (pos, &(seq, date, absorbed)) in items.iter().enumerate().rev() {
                if i64::from(date.num_days_from_ce()) < from {
                    break;
                }
                if !absorbed && (self.s.same_purchase_is_replacement || seq != lot_seq) {
                    cands.push((seq, b, pos));
                }
            }
        }
        if books.len() == 1 {
            cands.reverse();
        } else {
            cands.sort_unstable();
        }
        cands
    }

    /// The losses on covering shorts in scope `key` that a trade on `day` can still wash,
    /// oldest cover first; those whose window closed before `day` are dropped.
    fn open_short_losses(&mut self, key: (usize, usize), day: i32) -> VecDeque<Loss<A>> {
        let window = i64::from(self.s.wash_sale_window_days);
        let mut queue = self.pending_short.remove(&key).unwrap_or_default();
        while queue
            .front()
            .is_some_and(|l| i64::from(l.sold_day) + window < i64::from(day))
        {
            queue.pop_front();
        }
        queue
    }

    /// Let `avail` shares sold, or sold short, on `date` in book `b` absorb the waiting short
    /// losses, oldest cover first (rule 7 by analogy); returns (shares, disallowed) per loss
    /// absorbed, in order. Each share absorbs one loss at most (rule 6 by analogy).
    fn absorb_short_losses(
        &mut self,
        queue: &mut VecDeque<Loss<A>>,
        mut avail: A,
        b: u32,
        date: NaiveDate,
        kind: Replacement,
    ) -> Result<Vec<(A, A)>, PtrcError> {
        let mut parts = Vec::new();
        for loss in queue.iter_mut() {
            if !is_pos(avail) {
                break;
            }
            if !is_pos(loss.qty_rem) {
                continue;
            }
            let m = dmin(loss.qty_rem, avail);
            let amount = self.take(
                loss,
                m,
                Absorber {
                    kind,
                    book: b,
                    date,
                    hp_start: date,
                },
            )?;
            parts.push((m, amount));
            avail -= m;
        }
        Ok(parts)
    }

    /// Split the short sale just appended to book `b` into the parts that absorbed losses
    /// (each carrying its loss) and the rest, ordered per `sublot_order`.
    fn split_new_short(&mut self, b: u32, parts: Vec<(A, A)>) -> Result<(), PtrcError> {
        let pos = self.books[b as usize].shorts.len() - 1;
        let mut washed = Vec::with_capacity(parts.len());
        for (m, amount) in parts {
            washed.push(self.carve_short(b, pos, m, amount)?);
        }
        let book = &mut self.books[b as usize];
        let rest = book.shorts.pop_back();
        if let Some(r) = &rest
            && !is_pos(r.qty)
        {
            book.unabsorbed_shorts.remove(r.ord);
        }
        let rest = rest.filter(|r| is_pos(r.qty));
        match self.s.sublot_order {
            SublotOrder::WashedFirst => {
                book.shorts.extend(washed);
                book.shorts.extend(rest);
            }
            SublotOrder::UnwashedFirst => {
                book.shorts.extend(rest);
                book.shorts.extend(washed);
            }
        }
        Ok(())
    }

    /// Take `m` shares of `shorts[pos]` out as a part carrying the deferred loss `amount`; the
    /// short keeps the rest (possibly zero shares: the caller drops it).
    #[inline(always)]
    fn carve_short(
        &mut self,
        b: u32,
        pos: usize,
        m: A,
        amount: A,
    ) -> Result<ShortLot<A>, PtrcError> {
        let sh = &self.books[b as usize].shorts[pos];
        let (q, proceeds, fee, wadj) = (sh.qty, sh.proceeds, sh.fee, sh.wash_adj);
        let part_proceeds = self.alloc(proceeds, m, q)?;
        let part_fee = self.alloc(fee, m, q)?;
        let part_wadj = self.alloc(wadj, m, q)?;
        let sh = &mut self.books[b as usize].shorts[pos];
        let mut part = *sh;
        sh.qty -= m;
        sh.proceeds -= part_proceeds;
        sh.fee -= part_fee;
        sh.wash_adj -= part_wadj;
        part.qty = m;
        part.proceeds = part_proceeds;
        part.fee = part_fee;
        part.wash_adj = part_wadj
            .checked_add(amount)
            .ok_or_else(|| overflow("replacement short sale"))?;
        part.absorbed = true;
        Ok(part)
    }

    /// Match a loss on covering a short against short sales still open that were entered into
    /// in the window before the cover, earliest first (§1091(e)(2); rules 4-7 by analogy),
    /// skipping short sales that already absorbed a loss and, by default, the rest of the
    /// covered short sale itself (ambiguity 4 by analogy). Shares sold before the cover are not
    /// replacements: that sale is complete, so there is nothing to carry the loss into (see
    /// docs/TAX.md). The parts wait in `buf_carved_shorts`, as in [`Engine::match_held`].
    fn match_held_shorts(
        &mut self,
        loss: &mut Loss<A>,
        b: u32,
        located: &mut Located,
    ) -> Result<(), PtrcError> {
        let from = i64::from(loss.sold_day) - i64::from(self.s.wash_sale_window_days);
        let mut cands = std::mem::take(&mut self.cands);
        cands.clear();
        let scope = self.books[b as usize].scope;
        let mut c = self.cands_start(scope, from, loss.lot_seq, true, &mut cands);
        let mut plan = std::mem::take(&mut self.buf_plan_short);
        plan.clear();
        while is_pos(loss.qty_rem) {
            let Some((b, pos)) = self.cands_next(&mut c, &cands, located) else {
                break;
            };
            let sh = &self.books[b as usize].shorts[pos];
            let (sq, opened) = (sh.qty, sh.opened);
            let m = dmin(sq, loss.qty_rem);
            let amount = self.take(
                loss,
                m,
                Absorber {
                    kind: Replacement::ShortSale,
                    book: b,
                    date: opened,
                    hp_start: opened,
                },
            )?;
            plan.push((b, pos, m, amount));
        }
        // Out of candidates with shares left: the walk had no more either.
        #[cfg(debug_assertions)]
        assert!(!is_pos(loss.qty_rem) || c.used == c.scanned.len());
        self.cands = cands;
        // Applied from the back, as in `match_held`.
        if c.one.is_some() {
            plan.reverse();
        } else {
            plan.sort_unstable_by_key(|x| std::cmp::Reverse((x.0, x.1)));
        }
        for &(b, pos, m, amount) in &plan {
            let sq = self.books[b as usize].shorts[pos].qty;
            if ge(m, sq) {
                let sh = &mut self.books[b as usize].shorts[pos];
                sh.wash_adj = sh
                    .wash_adj
                    .checked_add(amount)
                    .ok_or_else(|| overflow("replacement short sale"))?;
                sh.absorbed = true;
                let ord = sh.ord;
                self.books[b as usize].unabsorbed_shorts.remove(ord);
                continue;
            }
            let part = self.carve_short(b, pos, m, amount)?;
            let at = match self.s.sublot_order {
                SublotOrder::WashedFirst => pos,
                SublotOrder::UnwashedFirst => pos + 1,
            };
            let n = self.buf_carved_shorts.len() as u32;
            self.buf_carved_shorts.push(Carved {
                book: b,
                at,
                n,
                part,
            });
        }
        self.buf_plan_short = plan;
        Ok(())
    }

    /// Insert the parts waiting in `buf_carved` into their books (see [`Queue::insert_carved`]).
    fn insert_carved(&mut self) {
        let washed_first = self.s.sublot_order == SublotOrder::WashedFirst;
        insert_carved_into(&mut self.books, &mut self.buf_carved, washed_first, |b| {
            &mut b.lots
        });
    }

    /// Insert the parts waiting in `buf_carved_shorts` into their books.
    fn insert_carved_shorts(&mut self) {
        let washed_first = self.s.sublot_order == SublotOrder::WashedFirst;
        insert_carved_into(
            &mut self.books,
            &mut self.buf_carved_shorts,
            washed_first,
            |b| &mut b.shorts,
        );
    }

    fn book_wanted(&self, b: u32, filter: Option<&TaxFilter>) -> bool {
        let acct = self.books[b as usize].acct;
        match filter {
            None => true,
            Some(TaxFilter::Account(a)) => *self.names_acct[acct] == **a,
            Some(TaxFilter::Owner(o)) => *self.names_owner[self.owner_of[acct]] == **o,
        }
    }

    fn snapshot(&self, filter: Option<&TaxFilter>) -> (Vec<OpenLot>, Vec<OpenShort>) {
        let mut order: Vec<u32> = (0..self.books.len() as u32)
            .filter(|&b| self.book_wanted(b, filter))
            .collect();
        // By account and symbol name: each name's rank among its kind (the names are sorted
        // once, and unique) instead of two string comparisons per pair of books.
        let rank = |names: &[Arc<str>]| -> Vec<u32> {
            let mut by_name: Vec<u32> = (0..names.len() as u32).collect();
            by_name.sort_unstable_by(|&x, &y| names[x as usize].cmp(&names[y as usize]));
            let mut r = vec![0; names.len()];
            for (k, &i) in by_name.iter().enumerate() {
                r[i as usize] = k as u32;
            }
            r
        };
        let (acct_rank, sym_rank) = (rank(&self.names_acct), rank(&self.names_sym));
        order.sort_unstable_by_key(|&b| {
            let bk = &self.books[b as usize];
            (acct_rank[bk.acct], sym_rank[bk.sym])
        });
        let held =
            |f: fn(&Book<A>) -> usize| order.iter().map(|&b| f(&self.books[b as usize])).sum();
        let mut lots = Vec::with_capacity(held(|bk| bk.lots.len()));
        let mut shorts = Vec::with_capacity(held(|bk| bk.shorts.len()));
        for b in order {
            let bk = &self.books[b as usize];
            let (account, symbol) = (&*self.names_acct[bk.acct], &*self.names_sym[bk.sym]);
            let owner = &*self.names_owner[self.owner_of[bk.acct]];
            for l in bk.lots.iter() {
                lots.push(OpenLot {
                    account: account.to_string(),
                    owner: owner.to_string(),
                    symbol: symbol.to_string(),
                    lot_id: self.trades[l.seq as usize].lot_ids.first().cloned(),
                    qty: self.shown_qty(l.qty),
                    cost_basis: self.shown_money(l.basis),
                    wash_adjustment: self.shown_money(l.wash_adj),
                    date_acquired: l.acquired,
                    holding_period_start: l.hp_start,
                });
            }
            for sh in bk.shorts.iter() {
                shorts.push(OpenShort {
                    account: account.to_string(),
                    owner: owner.to_string(),
                    symbol: symbol.to_string(),
                    qty: self.shown_qty(sh.qty),
                    proceeds: self.shown_money(sh.proceeds),
                    wash_adjustment: self.shown_money(sh.wash_adj),
                    date_opened: sh.opened,
                });
            }
        }
        (lots, shorts)
    }

    /// Report the rows that no trade on `day` or later can change (all of them when `day` is
    /// None), combining the rows of each sale per [`RowCombining`]. A sale waiting behind an
    /// earlier one whose loss may still be washed is combined as soon as its own rows are
    /// final, and reported when its turn comes.
    fn flush<S: TaxSink>(
        &mut self,
        day: Option<i32>,
        filter: Option<&TaxFilter>,
        last_day: Option<i32>,
        sink: &mut S,
    ) -> Result<(), S::Error> {
        let window = i64::from(self.s.wash_sale_window_days);
        let end = self.sale_base + self.sales.len() as u32;
        let mut ready = std::mem::take(&mut self.ready);
        ready.extend(self.unscanned.max(self.sale_base)..end);
        self.unscanned = end;
        for &id in &ready {
            let Some(ix) = id.checked_sub(self.sale_base).map(|ix| ix as usize) else {
                continue;
            };
            // The front is reported below; a sale still pending waits for its rows.
            if ix == 0
                || self
                    .sales
                    .get(ix)
                    .is_none_or(|s| s.pending > 0 || s.combined.is_some())
            {
                continue;
            }
            // No pending row: no note can concern it, whatever `last_day`.
            self.combine_slot(ix, filter, None)?;
        }
        ready.clear();
        self.ready = ready;
        while let Some(front) = self.sales.front() {
            let closed = match day {
                None => true,
                Some(d) => {
                    front.pending == 0
                        || i64::from(front.sold.num_days_from_ce()) + window < i64::from(d)
                }
            };
            if !closed {
                break;
            }
            if front.combined.is_none() {
                self.combine_slot(0, filter, last_day)?;
            }
            let Some(slot) = self.sales.pop_front() else {
                break;
            };
            self.sale_base += 1;
            if let Some(c) = slot.combined {
                self.emit((slot.book, slot.sold, slot.short), c, sink)?;
            }
        }
        Ok(())
    }

    /// Combine the rows of `sales[ix]` into its Form 8949 rows and wash matches (an empty
    /// record when the filter leaves its book out); its row buffer goes back to the free list.
    fn combine_slot(
        &mut self,
        ix: usize,
        filter: Option<&TaxFilter>,
        last_day: Option<i32>,
    ) -> Result<(), PtrcError> {
        let (book, sold, short, mut rows, mut matches) = {
            let slot = &mut self.sales[ix];
            (
                slot.book,
                slot.sold,
                slot.short,
                std::mem::take(&mut slot.rows),
                std::mem::take(&mut slot.matches),
            )
        };
        let c = if self.book_wanted(book, filter) {
            // Each row's matches in order, the rows in order (a stable sort).
            if !matches.is_sorted_by_key(|m| m.0) {
                matches.sort_by_key(|m| m.0);
            }
            self.combine((book, sold, short), &rows, &matches, last_day)?
        } else {
            Combined {
                parts: Vec::new(),
                washes: Vec::new(),
            }
        };
        self.sales[ix].combined = Some(c);
        rows.clear();
        self.free_rows.push(rows);
        matches.clear();
        self.free_matches.push(matches);
        Ok(())
    }

    /// The Form 8949 rows and wash matches of one sale's closings.
    fn combine(
        &mut self,
        (book, sold, short): (u32, NaiveDate, bool),
        group: &[RawRow<A>],
        matches: &[(u32, MatchRec<A>)],
        last_day: Option<i32>,
    ) -> Result<Combined<'a, A>, PtrcError> {
        let s = self.s;
        let trades: &'a [Trade] = self.trades;
        let window = i64::from(s.wash_sale_window_days);
        let bk = &self.books[book as usize];
        // Owned handles: the notes below are pushed while the names are in use.
        let (account, symbol) = (
            Arc::clone(&self.names_acct[bk.acct]),
            Arc::clone(&self.names_sym[bk.sym]),
        );
        let covered = self.covered[bk.sym];
        let combine = s.row_combining == RowCombining::PerSale;
        let mut parts = self.free_parts.pop().unwrap_or_default();
        let mut add = |key: RowKey<'a>, v: [A; 4]| add_part(&mut parts, combine, key, v);
        // The parts of one sale mostly share their holding-period start: its anniversary is
        // computed once per run of equal starts.
        let mut ann: Option<(NaiveDate, NaiveDate)> = None;
        self.emitted.lots_closed += group.len();
        for r in group {
            let term = if short {
                Term::Short
            } else {
                let a = match ann {
                    Some((hp, a)) if hp == r.hp_start => a,
                    _ => {
                        let a = anniversary(r.hp_start, s.feb29_anniversary);
                        ann = Some((r.hp_start, a));
                        a
                    }
                };
                if sold > a { Term::Long } else { Term::Short }
            };
            let date_acquired = match s.date_acquired_display {
                DateAcquiredDisplay::Adjusted => r.hp_start,
                DateAcquiredDisplay::Trade => r.acquired,
            };
            let (d, e) = match s.fee_presentation {
                FeePresentation::NetProceeds => (r.proceeds, r.basis),
                FeePresentation::GrossProceeds => (
                    r.proceeds
                        .checked_add(r.sell_fee)
                        .ok_or_else(|| overflow("gross proceeds"))?,
                    r.basis
                        .checked_add(r.sell_fee)
                        .ok_or_else(|| overflow("gross proceeds"))?,
                ),
            };
            // (No trade's record to read per row when no trade names lots.)
            let lot_id = if self.any_lot_ids {
                trades[r.lot_seq as usize].lot_ids.first()
            } else {
                None
            };
            let key = |g: A| (date_acquired, term, is_pos(g), lot_id, short);
            let partial = is_pos(r.adjustment) && r.washed_qty < r.qty;
            if s.row_splitting == RowSplitting::Split && partial {
                // The washed part nets to zero; the rest keeps the allowed loss.
                let dw = self.alloc(d, r.washed_qty, r.qty).unwrap_or(d);
                let ew = dw
                    .checked_add(r.adjustment)
                    .ok_or_else(|| overflow("Form 8949 column (e)"))?;
                add(key(r.adjustment), [r.washed_qty, dw, ew, r.adjustment])?;
                let e_rest = e
                    .checked_sub(ew)
                    .ok_or_else(|| overflow("Form 8949 column (e)"))?;
                add(
                    key(A::ZERO),
                    [r.qty - r.washed_qty, d - dw, e_rest, A::ZERO],
                )?;
            } else {
                add(key(r.adjustment), [r.qty, d, e, r.adjustment])?;
            }
            // (Only the last rows, reported at the end, can concern a note.)
            if let Some(last) = last_day
                && (!short || s.short_sale_wash_sales)
                && covered
                && r.proceeds < r.basis
                && r.washed_qty < r.qty
                && i64::from(sold.num_days_from_ce()) + window > i64::from(last)
            {
                self.emitted.open_windows += 1;
                if self.emitted.open_windows <= 20 {
                    let until = sold
                        .checked_add_signed(TimeDelta::days(window))
                        .unwrap_or(sold);
                    self.emitted.notes.push(if short {
                        format!(
                            "the loss on covering {} {symbol} short on {} in account {account} could still be washed by a sale or short sale through {until}, after the last trade in the input",
                            norm(self.dec(r.qty)),
                            sold
                        )
                    } else {
                        format!(
                            "the loss on {} {symbol} sold {} in account {account} could still be washed by a purchase through {until}, after the last trade in the input",
                            norm(self.dec(r.qty)),
                            sold
                        )
                    });
                }
            }
        }
        // The wash matches of the sale, those with one replacement (kind, account, date and
        // holding-period start) combined under `PerSale`.
        let mut washes = self.free_washes.pop().unwrap_or_default();
        {
            for (_, m) in matches {
                let same = |w: &&mut MatchRec<A>| {
                    (w.kind, w.repl_book, w.repl_date, w.hp_start)
                        == (m.kind, m.repl_book, m.repl_date, m.hp_start)
                };
                // Keys are unique in `washes`: searched from the back, where the match's
                // replacement mostly is.
                match washes.iter_mut().rev().find(|w| combine && same(w)) {
                    Some(w) => {
                        w.qty += m.qty;
                        w.disallowed = w
                            .disallowed
                            .checked_add(m.disallowed)
                            .ok_or_else(|| overflow("wash sale"))?;
                    }
                    None => washes.push(m.clone()),
                }
            }
        }
        Ok(Combined { parts, washes })
    }

    /// Add a combined sale to the totals and send its rows and wash matches to the sink.
    fn emit<S: TaxSink>(
        &mut self,
        (book, sold, short_sale): (u32, NaiveDate, bool),
        mut c: Combined<'a, A>,
        sink: &mut S,
    ) -> Result<(), S::Error> {
        let bk = &self.books[book as usize];
        let account = &self.names_acct[bk.acct];
        let owner = &self.names_owner[self.owner_of[bk.acct]];
        let symbol = &self.names_sym[bk.sym];
        for ((date_acquired, term, _, lot_id, short), amounts) in c.parts.drain(..) {
            let [qty, d, e, g] = amounts;
            let gain = d
                .checked_sub(e)
                .and_then(|x| x.checked_add(g))
                .ok_or_else(|| overflow("Form 8949 column (h)"))?;
            let [short_t, long_t, total_t] = &mut self.emitted.totals;
            let t = match term {
                Term::Short => short_t,
                Term::Long => long_t,
            };
            for (rows, sums) in [t, total_t] {
                *rows += 1;
                for (s, x) in sums.iter_mut().zip([d, e, g, gain]) {
                    *s = s
                        .checked_add(x)
                        .ok_or_else(|| overflow("Form 8949 column total"))?;
                }
            }
            let qty = self.shown_qty(qty);
            let [d_shown, e_shown, g_shown, gain_shown] =
                [d, e, g, gain].map(|a| self.shown_money(a));
            let mut num = [0; DECIMAL_TEXT];
            let q = decimal_str(&qty, &mut num);
            let row = self.out_row.get_or_insert_with(|| TaxRow {
                account: Arc::clone(account),
                owner: Arc::clone(owner),
                symbol: Arc::clone(symbol),
                description: String::new(),
                qty: Decimal::ZERO,
                lot_id: None,
                date_acquired,
                date_sold: sold,
                proceeds: Decimal::ZERO,
                cost_basis: Decimal::ZERO,
                adjustment_code: Cow::Borrowed(""),
                adjustment: Decimal::ZERO,
                gain_loss: Decimal::ZERO,
                term,
                part: Cow::Borrowed(""),
                short_sale: short,
            });
            share(&mut row.account, account);
            share(&mut row.owner, owner);
            share(&mut row.symbol, symbol);
            // Column (a): `{qty} {symbol}`.
            set(&mut row.description, q);
            row.description.push(' ');
            row.description.push_str(symbol);
            row.qty = qty;
            match (lot_id, &mut row.lot_id) {
                (Some(id), Some(held)) => set(held, id),
                (id, held) => *held = id.cloned(),
            }
            row.date_acquired = date_acquired;
            row.date_sold = sold;
            row.proceeds = d_shown;
            row.cost_basis = e_shown;
            row.adjustment_code = Cow::Borrowed(if is_pos(g) { "W" } else { "" });
            row.adjustment = g_shown;
            row.gain_loss = gain_shown;
            row.term = term;
            row.part = Cow::Borrowed(term.part());
            row.short_sale = short;
            sink.row(row)?;
        }
        for m in c.washes.drain(..) {
            let rb = &self.books[m.repl_book as usize];
            let (qty, disallowed) = (self.shown_qty(m.qty), self.shown_money(m.disallowed));
            let repl_account = &self.names_acct[rb.acct];
            let w = self.out_wash.get_or_insert_with(|| WashMatch {
                symbol: Arc::clone(symbol),
                sale_account: Arc::clone(account),
                date_sold: sold,
                short_sale,
                replacement: m.kind,
                replacement_account: Arc::clone(repl_account),
                replacement_date: m.repl_date,
                qty: Decimal::ZERO,
                disallowed: Decimal::ZERO,
                holding_period_start: m.hp_start,
            });
            share(&mut w.symbol, symbol);
            share(&mut w.sale_account, account);
            w.date_sold = sold;
            w.short_sale = short_sale;
            w.replacement = m.kind;
            share(&mut w.replacement_account, repl_account);
            w.replacement_date = m.repl_date;
            w.qty = qty;
            w.disallowed = disallowed;
            w.holding_period_start = m.hp_start;
            sink.wash(w)?;
        }
        self.free_parts.push(c.parts);
        self.free_washes.push(c.washes);
        Ok(())
    }

    /// The report but its rows and washes, once every row has been flushed.
    fn summary(
        &mut self,
        year: i32,
        filter: Option<&TaxFilter>,
        open_lots: Vec<OpenLot>,
        open_shorts: Vec<OpenShort>,
    ) -> Result<TaxSummary, PtrcError> {
        let e = std::mem::take(&mut self.emitted);
        let mut notes = e.notes;
        if e.open_windows > 20 {
            notes.push(format!(
                "... {} more losses whose wash-sale window reaches past the last trade",
                e.open_windows - 20
            ));
        }
        let [short, long, total] = e.totals.map(|(rows, sums)| {
            let [d, e, g, h] = sums.map(|a| self.shown_money(a));
            TermTotals {
                rows,
                proceeds: d,
                cost_basis: e,
                adjustment: g,
                gain_loss: h,
            }
        });
        let totals = TaxTotals { short, long, total };
        Ok(TaxSummary {
            year,
            filter: filter.cloned(),
            totals,
            open_lots,
            open_shorts,
            notes,
            settings: self.s.clone(),
            lots_closed: e.lots_closed,
        })
    }
}

/// An amount of the engine (quantity or money): exact, in one of two representations. The
/// engine runs on [`Fixed`] when every amount of the input fits it (checked before the run,
/// [`fixed_scale`]), else on [`Decimal`]; both give the same values, and the report shows
/// values (normalized), so the same bytes.
trait Amt:
    Copy
    + std::fmt::Debug
    + Ord
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::AddAssign
    + std::ops::SubAssign
{
    const ZERO: Self;
    fn checked_add(self, o: Self) -> Option<Self>;
    fn checked_sub(self, o: Self) -> Option<Self>;
    fn is_zero(self) -> bool;
    /// `self > 0`.
    fn is_pos(self) -> bool;
    /// `self >= o`.
    fn ge(self, o: Self) -> bool;
    /// `total * part / whole` rounded half away from zero to `dp` places (`part < whole`,
    /// both positive); None when it cannot be computed exactly.
    fn split(total: Self, part: Self, whole: Self, dp: u32, scale: u32) -> Option<Self>;
    fn to_dec(self, scale: u32) -> Decimal;
    fn from_dec(d: Decimal, scale: u32) -> Option<Self>;
    /// `strip_zeros(self.to_dec(scale), min)`.
    fn strip(self, scale: u32, min: u32) -> Option<Decimal>;
}

impl Amt for Decimal {
    const ZERO: Self = Decimal::ZERO;
    fn checked_add(self, o: Self) -> Option<Self> {
        Decimal::checked_add(self, o)
    }
    fn checked_sub(self, o: Self) -> Option<Self> {
        Decimal::checked_sub(self, o)
    }
    fn is_zero(self) -> bool {
        Decimal::is_zero(&self)
    }
    /// By its sign and mantissa (a comparison rescales).
    fn is_pos(self) -> bool {
        !self.is_sign_negative() && !Decimal::is_zero(&self)
    }
    /// Equal scales (nearly always: quantities keep the input's) compare mantissas.
    fn ge(self, o: Self) -> bool {
        if self.scale() == o.scale() {
            self.mantissa() >= o.mantissa()
        } else {
            self >= o
        }
    }
    fn split(total: Self, part: Self, whole: Self, dp: u32, _: u32) -> Option<Self> {
        if let Some(v) = alloc_exact(total, part, whole, dp) {
            return Some(v);
        }
        let raw = match total.checked_mul(part) {
            Some(p) => p.checked_div(whole),
            None => part.checked_div(whole).and_then(|f| total.checked_mul(f)),
        }?;
        if raw.scale() <= dp {
            return Some(raw);
        }
        Some(raw.round_dp_with_strategy(dp, RoundingStrategy::MidpointAwayFromZero))
    }
    fn to_dec(self, _: u32) -> Decimal {
        self
    }
    fn from_dec(d: Decimal, _: u32) -> Option<Self> {
        Some(d)
    }
    fn strip(self, _: u32, min: u32) -> Option<Decimal> {
        strip_zeros(self, min)
    }
}

/// A fixed-point amount: `self.0 / 10^scale`, one scale for every amount (quantities and
/// money) of a run, so that adding, comparing and splitting are integer instructions. The
/// scale is that of the input's most precise amount ([`fixed_scale`]), so every amount of the
/// run (costs, proceeds, fees, their pro-rata parts rounded to `rounding_dp`, sums and
/// differences of those) is a whole number of units; [`fixed_scale`] also checks that no
/// amount of the run can reach `i64` range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Fixed(i64);

impl std::ops::Add for Fixed {
    type Output = Fixed;
    fn add(self, o: Fixed) -> Fixed {
        Fixed(self.0 + o.0)
    }
}

impl std::ops::Sub for Fixed {
    type Output = Fixed;
    fn sub(self, o: Fixed) -> Fixed {
        Fixed(self.0 - o.0)
    }
}

impl std::ops::AddAssign for Fixed {
    fn add_assign(&mut self, o: Fixed) {
        self.0 += o.0;
    }
}

impl std::ops::SubAssign for Fixed {
    fn sub_assign(&mut self, o: Fixed) {
        self.0 -= o.0;
    }
}

impl Amt for Fixed {
    const ZERO: Self = Fixed(0);
    fn checked_add(self, o: Self) -> Option<Self> {
        self.0.checked_add(o.0).map(Fixed)
    }
    fn checked_sub(self, o: Self) -> Option<Self> {
        self.0.checked_sub(o.0).map(Fixed)
    }
    fn is_zero(self) -> bool {
        self.0 == 0
    }
    fn is_pos(self) -> bool {
        self.0 > 0
    }
    fn ge(self, o: Self) -> bool {
        self.0 >= o.0
    }
    /// total * part / whole = t * p / (w * 10^scale) in value; rounded to `dp` places that is
    /// q = round(t * p / (w * 10^(scale - dp))), q * 10^(scale - dp) units.
    #[inline]
    fn split(total: Self, part: Self, whole: Self, dp: u32, scale: u32) -> Option<Self> {
        let k = scale.checked_sub(dp)? as usize;
        // Nearly always every intermediate fits in 64 bits: the same quotient, rounded the
        // same way, without the 128-bit checks.
        if let Some(&unit) = POW10_I64.get(k)
            && let (Some(n), Some(d)) = (total.0.checked_mul(part.0), whole.0.checked_mul(unit))
            && d > 0
        {
            let (q, r) = (n / d, n % d);
            let q = if r.unsigned_abs() * 2 >= d.unsigned_abs() {
                q + n.signum()
            } else {
                q
            };
            return q.checked_mul(unit).map(Fixed);
        }
        split_wide(total, part, whole, k)
    }
    fn to_dec(self, scale: u32) -> Decimal {
        Decimal::new(self.0, scale)
    }
    fn from_dec(d: Decimal, scale: u32) -> Option<Self> {
        let k = scale.checked_sub(d.scale())? as usize;
        // Nearly always the mantissa fits 64 bits: no 128-bit multiplication (the same result:
        // a product beyond i64 is refused either way).
        if let Ok(m) = i64::try_from(d.mantissa())
            && let Some(&up) = POW10_I64.get(k)
        {
            return m.checked_mul(up).map(Fixed);
        }
        let up = POW10.get(k)?;
        i64::try_from(d.mantissa().checked_mul(*up)?)
            .ok()
            .map(Fixed)
    }
    fn strip(self, scale: u32, min: u32) -> Option<Decimal> {
        strip_i64(self.0, scale, min)
    }
}

/// [`Fixed::split`] in 128 bits (`k` = scale - dp), when an intermediate does not fit 64.
#[cold]
fn split_wide(total: Fixed, part: Fixed, whole: Fixed, k: usize) -> Option<Fixed> {
    let unit = POW10.get(k).copied()?;
    let num = i128::from(total.0).checked_mul(i128::from(part.0))?;
    let den = i128::from(whole.0).checked_mul(unit)?;
    if den <= 0 {
        return None;
    }
    let q = if let (Ok(n), Ok(d)) = (i64::try_from(num), i64::try_from(den)) {
        let (q, r) = (n / d, n % d);
        i128::from(if r.unsigned_abs() * 2 >= d.unsigned_abs() {
            q + n.signum()
        } else {
            q
        })
    } else {
        let (q, r) = (num / den, num % den);
        if r.unsigned_abs().checked_mul(2)? >= den.unsigned_abs() {
            q + num.signum()
        } else {
            q
        }
    };
    i64::try_from(q.checked_mul(unit)?).ok().map(Fixed)
}

/// The scale of a fixed-point run over `trades`, or None when the input needs the decimal
/// engine: the most decimals of any amount (qty x price, fee, qty, `rounding_dp`), at most 12,
/// and every trade's amounts summed at that scale far enough below `i64::MAX` that no amount
/// of the run can reach it. Every amount of the engine is a part of one trade's quantity,
/// cost or proceeds, plus disallowed losses moved between lots: a lot's basis never exceeds
/// the costs of the shares it descends from, a sale's rows never exceed what was held, so
/// `sum |qty| + |qty x price| + |fee|` bounds every amount and every sum of one sale's rows;
/// the factor 64 covers the differences and gross presentations. Totals over the year are
/// added in [`Decimal`] (checked).
pub(crate) fn fixed_scale(trades: &[Trade], dp: u32) -> Option<u32> {
    let mut scale = dp;
    for t in trades {
        scale = scale
            .max(t.qty.scale() + t.price.scale())
            .max(t.fee.scale());
    }
    if scale > 12 {
        return None;
    }
    let mut sum: i128 = 0;
    for t in trades {
        // Nearly always each amount fits 64 bits: the trade's term without 128-bit
        // multiplications (the same value; else computed in 128 bits below).
        let narrow = || -> Option<u64> {
            let m = |d: Decimal| u64::try_from(d.mantissa().unsigned_abs()).ok();
            let up = |s: u32| {
                POW10_I64
                    .get((scale - s) as usize)
                    .map(|&x| x.unsigned_abs())
            };
            let (q, p, f) = (m(t.qty)?, m(t.price)?, m(t.fee)?);
            let notional = q
                .checked_mul(p)?
                .checked_mul(up(t.qty.scale() + t.price.scale())?)?;
            q.checked_mul(up(t.qty.scale())?)?
                .checked_add(notional)?
                .checked_add(f.checked_mul(up(t.fee.scale())?)?)
        };
        if let Some(x) = narrow() {
            sum = sum.checked_add(i128::from(x))?;
            if sum > i128::from(i64::MAX / 64) {
                return None;
            }
            continue;
        }
        let up = |d: Decimal, s: u32| -> Option<i128> {
            d.mantissa()
                .unsigned_abs()
                .try_into()
                .ok()
                .and_then(|m: i128| m.checked_mul(POW10[(scale - s) as usize]))
        };
        let q = up(t.qty, t.qty.scale())?;
        let p = t.price.mantissa().unsigned_abs();
        let notional = i128::try_from(t.qty.mantissa().unsigned_abs())
            .ok()?
            .checked_mul(i128::try_from(p).ok()?)?
            .checked_mul(POW10[(scale - t.qty.scale() - t.price.scale()) as usize])?;
        let f = up(t.fee, t.fee.scale())?;
        sum = sum.checked_add(q)?.checked_add(notional)?.checked_add(f)?;
        if sum > i128::from(i64::MAX / 64) {
            return None;
        }
    }
    Some(scale)
}

/// Add a closed lot's (qty, d, e, g) to its sale's Form 8949 row of key `key` (a new row
/// unless `combine`).
#[inline(always)]
fn add_part<'k, A: Amt>(
    parts: &mut Vec<(RowKey<'k>, [A; 4])>,
    combine: bool,
    key: RowKey<'k>,
    v: [A; 4],
) -> Result<(), PtrcError> {
    // Keys are unique in `parts`; the row's key is most often the last one added.
    let at = if combine {
        parts.iter().rposition(|(k, _)| *k == key)
    } else {
        None
    };
    match at {
        Some(k) => {
            let acc = &mut parts[k].1;
            for (a, x) in acc.iter_mut().zip(v) {
                *a = a.checked_add(x).ok_or_else(|| overflow("Form 8949 row"))?;
            }
        }
        None => parts.push((key, v)),
    }
    Ok(())
}

/// Order carved parts by book and place, and the parts of one place as inserting them one by
/// one would leave them: in carving order before the lot they came from (`washed_first`, each
/// inserted at the lot's position), or in reverse carving order after it (each inserted right
/// behind the lot).
/// Sorts the waiting parts and inserts each book's run into the queue `queue` picks (its lots or
/// its short sales); the buffer is left empty for reuse.
fn insert_carved_into<A, T: Copy>(
    books: &mut [Book<A>],
    carved: &mut Vec<Carved<T>>,
    washed_first: bool,
    queue: impl Fn(&mut Book<A>) -> &mut Queue<T>,
) {
    if carved.is_empty() {
        return;
    }
    sort_carved(carved, washed_first);
    for run in carved.chunk_by(|x, y| x.book == y.book) {
        queue(&mut books[run[0].book as usize]).insert_carved(run);
    }
    carved.clear();
}

fn sort_carved<T>(carved: &mut [Carved<T>], washed_first: bool) {
    let key = |c: &Carved<T>| {
        (
            c.book,
            c.at,
            if washed_first { c.n } else { u32::MAX - c.n },
        )
    };
    if !carved.is_sorted_by_key(key) {
        carved.sort_unstable_by_key(key);
    }
}

/// `d > 0`.
fn is_pos<A: Amt>(d: A) -> bool {
    d.is_pos()
}

/// `a >= b`.
fn ge<A: Amt>(a: A, b: A) -> bool {
    a.ge(b)
}

/// `a.min(b)`.
fn dmin<A: Amt>(a: A, b: A) -> A {
    if ge(b, a) { a } else { b }
}

/// The UTC trade date, as [`Trade::date`] but by integer division (the chrono round trip costs
/// more than the rest of a buy).
fn trade_date(t: &Trade) -> NaiveDate {
    let days = t.ts.as_nanos().div_euclid(86_400_000_000_000);
    i32::try_from(days + 719_163)
        .ok()
        .and_then(NaiveDate::from_num_days_from_ce_opt)
        .unwrap_or_else(|| t.date())
}

/// Powers of ten that fit in an i64.
const POW10_I64: [i64; 19] = {
    let mut t = [1i64; 19];
    let mut i = 1;
    while i < 19 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

/// Powers of ten that fit in an i128.
const POW10: [i128; 39] = {
    let mut t = [1i128; 39];
    let mut i = 1;
    while i < 39 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

/// `total * part / whole` rounded half away from zero to `dp` places, in exact 128-bit integer
/// arithmetic on the mantissas (the decimal division and rounding it replaces were a fifth of
/// the active-trader run); None when an intermediate does not fit, and the caller takes the
/// decimal path. The value is the one that path gives: the exact quotient rounded once.
pub(crate) fn alloc_exact(
    total: Decimal,
    part: Decimal,
    whole: Decimal,
    dp: u32,
) -> Option<Decimal> {
    let pow = |e: u32| POW10.get(e as usize).copied();
    // total * part / whole * 10^dp = t * p * 10^(sw + dp) / (w * 10^(st + sp))
    let num = total
        .mantissa()
        .checked_mul(part.mantissa())?
        .checked_mul(pow(whole.scale().checked_add(dp)?)?)?;
    let den = whole
        .mantissa()
        .checked_mul(pow(total.scale().checked_add(part.scale())?)?)?;
    if den == 0 {
        return None;
    }
    // Nearly always both fit in 64 bits, where division is several times cheaper.
    if let (Ok(n), Ok(d)) = (i64::try_from(num), i64::try_from(den))
        && d > 0
    {
        let (q, r) = (n / d, n % d);
        let q = if r.unsigned_abs() * 2 >= d.unsigned_abs() {
            q + n.signum()
        } else {
            q
        };
        return Decimal::try_from_i128_with_scale(i128::from(q), dp).ok();
    }
    let (q, r) = (num / den, num % den);
    let q = if r.unsigned_abs().checked_mul(2)? >= den.unsigned_abs() {
        q + num.signum() * den.signum()
    } else {
        q
    };
    Decimal::try_from_i128_with_scale(q, dp).ok()
}

/// The first anniversary of `d`: sold on it = short-term, sold after it = long-term (rule 10).
pub(crate) fn anniversary(d: NaiveDate, feb29: Feb29Anniversary) -> NaiveDate {
    let next = d.year() + 1;
    NaiveDate::from_ymd_opt(next, d.month(), d.day()).unwrap_or_else(|| {
        // Only Feb 29 has no anniversary date (ambiguity 10).
        let (m, day) = match feb29 {
            Feb29Anniversary::Feb28 => (2, 28),
            Feb29Anniversary::Mar1 => (3, 1),
        };
        NaiveDate::from_ymd_opt(next, m, day).unwrap_or(d)
    })
}

/// `slot` := `name` (a reference count changes only when the name does).
fn share(slot: &mut Arc<str>, name: &Arc<str>) {
    if !Arc::ptr_eq(slot, name) {
        *slot = Arc::clone(name);
    }
}

/// `s` := `v`, in the string's own buffer.
fn set(s: &mut String, v: &str) {
    s.clear();
    s.push_str(v);
}

/// `d.normalize()` (no trailing zeros, no `-0`).
pub(crate) fn norm(d: Decimal) -> Decimal {
    strip_zeros(d, 0).unwrap_or_else(|| d.normalize())
}

/// `d` without trailing zeros beyond `min` decimals and with at least `min` (zero as `0` at
/// `min` decimals), in integer arithmetic on the mantissa when it fits 64 bits (the decimal
/// `normalize` divides 96 bits by ten per digit); None otherwise.
fn strip_zeros(d: Decimal, min: u32) -> Option<Decimal> {
    strip_i64(i64::try_from(d.mantissa()).ok()?, d.scale(), min)
}

/// [`strip_zeros`] of the decimal `m / 10^s`.
fn strip_i64(mut m: i64, mut s: u32, min: u32) -> Option<Decimal> {
    if m == 0 {
        return Some(Decimal::new(0, min));
    }
    while s > min && m % 10 == 0 {
        m /= 10;
        s -= 1;
    }
    if s < min {
        let up = POW10.get((min - s) as usize)?;
        return Decimal::try_from_i128_with_scale(i128::from(m).checked_mul(*up)?, min).ok();
    }
    Some(Decimal::new(m, s))
}

/// [`Engine::shown_money`] through `normalize` (mantissas beyond 64 bits).
fn money_slow(d: Decimal) -> Decimal {
    let mut n = if d.is_zero() {
        Decimal::ZERO
    } else {
        d.normalize()
    };
    if n.scale() < 2 {
        n.rescale(2);
    }
    n
}
