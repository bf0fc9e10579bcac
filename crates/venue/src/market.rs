use std::collections::BTreeMap;

use model::{BookDelta, BookLevel, BookSnapshot, Decimal, Price, Quantity, Quote, Side, TradeTick};
use serde::{Deserialize, Serialize};

/// Most price levels kept per side of a book. Feeds that only publish a top-N window (Kraken
/// asks clients to truncate its book themselves) never delete the levels that fall out of the
/// window, so without a cap the book would grow as prices drift over weeks. Beyond this many
/// levels the worst (farthest from the top) are dropped; no realistic order walks that deep.
pub const MAX_LEVELS_PER_SIDE: usize = 5_000;

/// What the venue knows about one instrument's market: the book (bids and asks by price), the
/// liquidity its own taker fills consumed per level, and the last trade.
///
/// See the crate docs for how snapshots, deltas, quotes and trades update it. Serialized (for
/// snapshots) with each side as a list of `[price, quantity]` pairs in ascending price order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarketState {
    #[serde(with = "crate::pairs")]
    bids: BTreeMap<Price, Quantity>,
    #[serde(with = "crate::pairs")]
    asks: BTreeMap<Price, Quantity>,
    /// Quantity of each displayed level already used by this venue's fills. Only ever holds
    /// prices that are displayed levels, so it is bounded by the book.
    #[serde(with = "crate::pairs")]
    consumed_bids: BTreeMap<Price, Decimal>,
    #[serde(with = "crate::pairs")]
    consumed_asks: BTreeMap<Price, Decimal>,
    /// A snapshot or delta was seen: quotes then only overlay the top.
    depth_known: bool,
    has_data: bool,
    last_trade: Option<Price>,
}

impl MarketState {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether any quote, trade or book event was seen for this instrument.
    pub fn has_data(&self) -> bool {
        self.has_data
    }
    /// Whether depth (a snapshot or delta) is known, rather than only a quote.
    pub fn depth_known(&self) -> bool {
        self.depth_known
    }
    pub fn last_trade(&self) -> Option<Price> {
        self.last_trade
    }
    /// Best (highest) bid and its displayed size.
    pub fn best_bid(&self) -> Option<BookLevel> {
        self.bids().next()
    }
    /// Best (lowest) ask and its displayed size.
    pub fn best_ask(&self) -> Option<BookLevel> {
        self.asks().next()
    }
    /// (best bid + best ask) / 2, exact; `None` unless both sides have a level.
    pub fn mid(&self) -> Option<Decimal> {
        let (b, a) = (self.best_bid()?, self.best_ask()?);
        Some((b.price.get() + a.price.get()) / Decimal::TWO)
    }
    /// The stop reference price: the last trade, or the mid while no trade was seen.
    pub fn reference_price(&self) -> Option<Decimal> {
        self.last_trade.map(Price::get).or_else(|| self.mid())
    }
    /// Displayed bid levels, best (highest) first.
    pub fn bids(&self) -> impl Iterator<Item = BookLevel> + '_ {
        self.bids.iter().rev().map(|(p, q)| BookLevel {
            price: *p,
            quantity: *q,
        })
    }
    /// Displayed ask levels, best (lowest) first.
    pub fn asks(&self) -> impl Iterator<Item = BookLevel> + '_ {
        self.asks.iter().map(|(p, q)| BookLevel {
            price: *p,
            quantity: *q,
        })
    }
    /// Displayed size at `price` minus what this venue's fills consumed, on the side a taker
    /// of `taker_side` trades against.
    pub fn available(&self, taker_side: Side, price: Price) -> Decimal {
        let (levels, consumed) = self.opposite(taker_side);
        let shown = levels.get(&price).map_or(Decimal::ZERO, |q| q.get());
        let used = consumed.get(&price).copied().unwrap_or(Decimal::ZERO);
        (shown - used).max(Decimal::ZERO)
    }

    // --- updates -----------------------------------------------------------------------------

    pub fn apply_snapshot(&mut self, s: &BookSnapshot) {
        self.bids = levels(&s.bids);
        self.asks = levels(&s.asks);
        self.consumed_bids.clear();
        self.consumed_asks.clear();
        self.depth_known = true;
        self.has_data = true;
        self.truncate();
    }

    /// Deltas are applied on top of whatever book is known; sequencing and resyncs are the
    /// market-data layer's job.
    pub fn apply_delta(&mut self, d: &BookDelta) {
        for l in &d.bids {
            set_level(&mut self.bids, &mut self.consumed_bids, l.price, l.quantity);
        }
        for l in &d.asks {
            set_level(&mut self.asks, &mut self.consumed_asks, l.price, l.quantity);
        }
        self.depth_known = true;
        self.has_data = true;
        self.truncate();
    }

    pub fn apply_quote(&mut self, q: &Quote) {
        if self.depth_known {
            // Levels better than the quoted top are gone from the real market.
            let stale_bids: Vec<Price> = self.bids.range(q.bid..).map(|(p, _)| *p).collect();
            for p in stale_bids {
                self.bids.remove(&p);
                self.consumed_bids.remove(&p);
            }
            let stale_asks: Vec<Price> = self.asks.range(..=q.ask).map(|(p, _)| *p).collect();
            for p in stale_asks {
                self.asks.remove(&p);
                self.consumed_asks.remove(&p);
            }
        } else {
            self.bids.clear();
            self.asks.clear();
            self.consumed_bids.clear();
            self.consumed_asks.clear();
        }
        set_level(&mut self.bids, &mut self.consumed_bids, q.bid, q.bid_size);
        set_level(&mut self.asks, &mut self.consumed_asks, q.ask, q.ask_size);
        self.has_data = true;
        self.truncate();
    }

    pub fn apply_trade(&mut self, t: &TradeTick) {
        self.last_trade = Some(t.price);
        self.has_data = true;
    }

    /// Keep at most [`MAX_LEVELS_PER_SIDE`] levels per side, dropping the worst ones.
    fn truncate(&mut self) {
        while self.bids.len() > MAX_LEVELS_PER_SIDE {
            if let Some((p, _)) = self.bids.pop_first() {
                self.consumed_bids.remove(&p);
            }
        }
        while self.asks.len() > MAX_LEVELS_PER_SIDE {
            if let Some((p, _)) = self.asks.pop_last() {
                self.consumed_asks.remove(&p);
            }
        }
    }

    /// (displayed levels, levels with recorded consumption), both sides together.
    pub(crate) fn level_counts(&self) -> (usize, usize) {
        (
            self.bids.len() + self.asks.len(),
            self.consumed_bids.len() + self.consumed_asks.len(),
        )
    }

    // --- matching helpers (crate-internal) ----------------------------------------------------

    fn opposite(
        &self,
        taker_side: Side,
    ) -> (&BTreeMap<Price, Quantity>, &BTreeMap<Price, Decimal>) {
        match taker_side {
            Side::Buy => (&self.asks, &self.consumed_asks),
            Side::Sell => (&self.bids, &self.consumed_bids),
        }
    }

    /// Levels a taker of `taker_side` may trade against, in price priority, limited to prices at
    /// or better than `limit`, with their available (unconsumed) quantity (may be zero).
    pub(crate) fn takeable(
        &self,
        taker_side: Side,
        limit: Option<Price>,
    ) -> impl Iterator<Item = (Price, Decimal)> + '_ {
        let (levels, consumed) = self.opposite(taker_side);
        let avail = move |(p, q): (&Price, &Quantity)| {
            let used = consumed.get(p).copied().unwrap_or(Decimal::ZERO);
            (*p, (q.get() - used).max(Decimal::ZERO))
        };
        let it: Box<dyn Iterator<Item = (Price, Decimal)> + '_> = match (taker_side, limit) {
            (Side::Buy, Some(l)) => Box::new(levels.range(..=l).map(avail)),
            (Side::Buy, None) => Box::new(levels.iter().map(avail)),
            (Side::Sell, Some(l)) => Box::new(levels.range(l..).rev().map(avail)),
            (Side::Sell, None) => Box::new(levels.iter().rev().map(avail)),
        };
        it
    }

    /// `min(available quantity at or better than limit, cap)` for a taker of `taker_side`. The
    /// walk stops once `cap` is reached, so a deep book costs only the levels actually needed.
    pub(crate) fn available_up_to(
        &self,
        taker_side: Side,
        limit: Option<Price>,
        cap: Decimal,
    ) -> Decimal {
        let mut sum = Decimal::ZERO;
        for (_, q) in self.takeable(taker_side, limit) {
            if sum >= cap {
                break;
            }
            sum = sum.saturating_add(q);
        }
        sum.min(cap)
    }

    /// The levels (with their available quantity) a taker of `taker_side` needs to take `need`
    /// at or better than `limit`: in price priority, ending with the level that covers `need`
    /// (or with the last level when the book does not cover it).
    pub(crate) fn plan(
        &self,
        taker_side: Side,
        limit: Option<Price>,
        need: Decimal,
    ) -> Vec<(Price, Decimal)> {
        let mut sum = Decimal::ZERO;
        let mut plan = Vec::new();
        for (p, q) in self.takeable(taker_side, limit) {
            if sum >= need {
                break;
            }
            sum = sum.saturating_add(q);
            plan.push((p, q));
        }
        plan
    }

    /// The worst displayed level on the side a taker of `taker_side` trades against.
    pub(crate) fn worst_level(&self, taker_side: Side) -> Option<Price> {
        let (levels, _) = self.opposite(taker_side);
        match taker_side {
            Side::Buy => levels.keys().next_back().copied(),
            Side::Sell => levels.keys().next().copied(),
        }
    }

    /// Record that this venue used `qty` of the level at `price` (capped at the displayed size).
    pub(crate) fn consume(&mut self, taker_side: Side, price: Price, qty: Decimal) {
        let (levels, consumed) = match taker_side {
            Side::Buy => (&self.asks, &mut self.consumed_asks),
            Side::Sell => (&self.bids, &mut self.consumed_bids),
        };
        let Some(shown) = levels.get(&price) else {
            return;
        };
        let used = consumed.entry(price).or_insert(Decimal::ZERO);
        *used = (*used + qty).min(shown.get());
    }

    /// Consume up to `qty` of the available liquidity at or better than `limit`, in price
    /// priority; returns the quantity consumed.
    pub(crate) fn consume_within(
        &mut self,
        taker_side: Side,
        limit: Price,
        qty: Decimal,
    ) -> Decimal {
        let plan = self.plan(taker_side, Some(limit), qty);
        let mut left = qty;
        for (p, avail) in plan {
            if left <= Decimal::ZERO {
                break;
            }
            let take = avail.min(left);
            if take > Decimal::ZERO {
                self.consume(taker_side, p, take);
                left -= take;
            }
        }
        qty - left
    }
}

fn levels(src: &[BookLevel]) -> BTreeMap<Price, Quantity> {
    src.iter()
        .filter(|l| !l.quantity.is_zero())
        .map(|l| (l.price, l.quantity))
        .collect()
}

/// Set one level (zero removes it); new data for a level resets its consumption.
fn set_level(
    levels: &mut BTreeMap<Price, Quantity>,
    consumed: &mut BTreeMap<Price, Decimal>,
    price: Price,
    qty: Quantity,
) {
    consumed.remove(&price);
    if qty.is_zero() {
        levels.remove(&price);
    } else {
        levels.insert(price, qty);
    }
}
