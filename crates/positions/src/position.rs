use std::collections::BTreeMap;

use chrono::NaiveDate;
use model::{AccountId, Decimal, Event, Fill, FillId, InstrumentId, Side, Timestamp};
use rust_decimal::RoundingStrategy;
use serde::{Deserialize, Serialize, Serializer};

use crate::PositionsError;

/// Minimum decimal places kept when a partial close removes a repeating fraction of the cost.
const MIN_COST_DP: u32 = 12;

/// Version of the serialized form of [`Positions`] (its snapshot). A snapshot with another
/// version is refused on restore, so the runtime falls back to a full replay.
pub const SNAPSHOT_VERSION: u32 = 1;

/// One account's position in one instrument. Decimals serialize as strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub account: AccountId,
    pub instrument: InstrumentId,
    /// Signed: positive long, negative short.
    #[serde(with = "rust_decimal::serde::str")]
    pub net_qty: Decimal,
    /// Average entry price of the open quantity; `None` when flat.
    #[serde(with = "rust_decimal::serde::str_option")]
    pub avg_price: Option<Decimal>,
    /// Signed cost of the open quantity (`avg_price x net_qty`), kept exactly.
    #[serde(with = "rust_decimal::serde::str")]
    pub cost_basis: Decimal,
    /// Realized P&L before fees, since the position was first seen.
    #[serde(with = "rust_decimal::serde::str")]
    pub realized_pnl: Decimal,
    /// `(mark - avg_price) x net_qty`; zero when flat or unmarked.
    #[serde(with = "rust_decimal::serde::str")]
    pub unrealized_pnl: Decimal,
    /// Sum of fill fees (negative for net rebates).
    #[serde(with = "rust_decimal::serde::str")]
    pub fees: Decimal,
    #[serde(with = "rust_decimal::serde::str_option")]
    pub mark: Option<Decimal>,
    /// Realized P&L (before fees) of fills on `day`.
    #[serde(with = "rust_decimal::serde::str")]
    pub realized_today: Decimal,
    /// Fees of fills on `day`.
    #[serde(with = "rust_decimal::serde::str")]
    pub fees_today: Decimal,
    /// UTC date of the latest fill or mark seen.
    pub day: Option<NaiveDate>,
    /// The last fill applied (fills with an id not above it are ignored as replays).
    pub last_fill_id: Option<FillId>,
    pub updated_at: Timestamp,
}

impl Position {
    fn new(account: AccountId, instrument: InstrumentId) -> Self {
        Position {
            account,
            instrument,
            net_qty: Decimal::ZERO,
            avg_price: None,
            cost_basis: Decimal::ZERO,
            realized_pnl: Decimal::ZERO,
            unrealized_pnl: Decimal::ZERO,
            fees: Decimal::ZERO,
            mark: None,
            realized_today: Decimal::ZERO,
            fees_today: Decimal::ZERO,
            day: None,
            last_fill_id: None,
            updated_at: Timestamp::default(),
        }
    }

    pub fn is_flat(&self) -> bool {
        self.net_qty.is_zero()
    }

    /// Realized P&L after fees.
    pub fn net_realized_pnl(&self) -> Decimal {
        self.realized_pnl - self.fees
    }

    /// Realized after fees plus unrealized.
    pub fn total_pnl(&self) -> Decimal {
        self.net_realized_pnl() + self.unrealized_pnl
    }

    /// `|net_qty x mark|`, or `|cost_basis|` while unmarked. Saturates at `Decimal::MAX`
    /// instead of overflowing (risk then refuses further exposure; nothing panics).
    pub fn exposure(&self) -> Decimal {
        match self.mark {
            Some(m) => self
                .net_qty
                .checked_mul(m)
                .map_or(Decimal::MAX, |v| v.abs()),
            None => self.cost_basis.abs(),
        }
    }

    /// Move `day` forward to `date`, starting today's figures afresh on a new date.
    fn roll_day(&mut self, date: NaiveDate) {
        if self.day.is_none_or(|d| date > d) {
            self.day = Some(date);
            self.realized_today = Decimal::ZERO;
            self.fees_today = Decimal::ZERO;
        }
    }

    fn overflow(&self, what: &'static str) -> PositionsError {
        PositionsError::Overflow {
            what,
            account: self.account.to_string(),
            instrument: self.instrument.to_string(),
        }
    }

    fn set_mark(&mut self, mark: Decimal, ts: Timestamp) -> Result<(), PositionsError> {
        let unrealized = mark
            .checked_mul(self.net_qty)
            .and_then(|v| v.checked_sub(self.cost_basis))
            .ok_or_else(|| self.overflow("unrealized P&L"))?;
        self.mark = Some(mark.normalize());
        self.unrealized_pnl = unrealized.normalize();
        self.roll_day(date_of(ts));
        self.updated_at = self.updated_at.max(ts);
        Ok(())
    }

    /// The position after `fill`, or an error with `self` untouched.
    fn with_fill(&self, fill: &Fill, mark: Option<Decimal>) -> Result<Position, PositionsError> {
        let of = |what| self.overflow(what);
        let mut next = self.clone();
        let price = fill.price.get();
        let qty = fill.quantity.get();
        let dir = match fill.side {
            Side::Buy => Decimal::ONE,
            Side::Sell => Decimal::NEGATIVE_ONE,
        };
        let net = self.net_qty;
        let mut realized = Decimal::ZERO;
        if net.is_zero() || net.is_sign_positive() == (dir > Decimal::ZERO) {
            // Opening or increasing.
            let added = price.checked_mul(qty).ok_or_else(|| of("notional"))? * dir;
            next.cost_basis = next
                .cost_basis
                .checked_add(added)
                .ok_or_else(|| of("cost"))?;
            next.net_qty = net.checked_add(qty * dir).ok_or_else(|| of("quantity"))?;
        } else {
            // Reducing, closing or flipping.
            let open = net.abs();
            let closing = qty.min(open);
            let removed = if closing == open {
                self.cost_basis
            } else {
                let dp = self.cost_basis.scale().max(MIN_COST_DP);
                self.cost_basis
                    .checked_mul(closing)
                    .and_then(|v| v.checked_div(open))
                    .ok_or_else(|| of("cost"))?
                    .round_dp_with_strategy(dp, RoundingStrategy::MidpointNearestEven)
            };
            let proceeds = price.checked_mul(closing).ok_or_else(|| of("notional"))?;
            // Long (net > 0): proceeds - cost; short: cost is negative, -proceeds - cost.
            let signed_proceeds = if net.is_sign_positive() {
                proceeds
            } else {
                -proceeds
            };
            realized = signed_proceeds
                .checked_sub(removed)
                .ok_or_else(|| of("realized P&L"))?;
            next.cost_basis = self.cost_basis - removed;
            next.net_qty = net + closing * dir;
            let rest = qty - closing;
            if !rest.is_zero() {
                next.cost_basis = price.checked_mul(rest).ok_or_else(|| of("notional"))? * dir;
                next.net_qty = rest * dir;
            }
        }
        if next.net_qty.is_zero() {
            // Flat: no cost left (and no negative zero in the output).
            next.net_qty = Decimal::ZERO;
            next.cost_basis = Decimal::ZERO;
        }
        let fee = fill.fee.get();
        next.realized_pnl = next
            .realized_pnl
            .checked_add(realized)
            .ok_or_else(|| of("realized P&L"))?;
        next.fees = next.fees.checked_add(fee).ok_or_else(|| of("fees"))?;
        let date = date_of(fill.ts);
        next.roll_day(date);
        if next.day == Some(date) {
            next.realized_today = next
                .realized_today
                .checked_add(realized)
                .ok_or_else(|| of("realized P&L"))?;
            next.fees_today = next.fees_today.checked_add(fee).ok_or_else(|| of("fees"))?;
        }
        next.avg_price = if next.net_qty.is_zero() {
            None
        } else {
            next.cost_basis
                .checked_div(next.net_qty)
                .map(|a| a.normalize())
        };
        // Trailing zeros from the 12-dp rounding are noise in reports; values are unchanged.
        next.realized_pnl = next.realized_pnl.normalize();
        next.realized_today = next.realized_today.normalize();
        next.cost_basis = next.cost_basis.normalize();
        next.fees = next.fees.normalize();
        next.last_fill_id = Some(fill.fill_id);
        next.updated_at = next.updated_at.max(fill.ts);
        next.set_mark(mark.unwrap_or(price), fill.ts)?;
        Ok(next)
    }
}

/// Realized P&L and fees of one account on one UTC date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DailyPnl {
    #[serde(with = "rust_decimal::serde::str")]
    pub realized: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub fees: Decimal,
}

impl DailyPnl {
    /// Realized after fees.
    pub fn net(&self) -> Decimal {
        self.realized - self.fees
    }
}

/// Where the current mark of an instrument came from; better sources override worse ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum MarkSource {
    Fill,
    Trade,
    Mid,
}

/// All positions, keyed by account then instrument, plus the latest mark per instrument.
///
/// Serialize / Deserialize give its snapshot (every position and mark, with
/// [`SNAPSHOT_VERSION`]): restoring one and continuing behaves exactly like continuing the
/// original.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "PositionsSnapshot")]
pub struct Positions {
    accounts: BTreeMap<AccountId, BTreeMap<InstrumentId, Position>>,
    marks: BTreeMap<InstrumentId, (Decimal, MarkSource)>,
}

/// Sizes of the positions' collections, to watch memory (see the crate docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct PositionsFootprint {
    /// Accounts with at least one position.
    pub accounts: usize,
    /// (account, instrument) positions, flat ones included.
    pub positions: usize,
    /// Instruments with a mark.
    pub marks: usize,
}

#[derive(Serialize)]
struct SavedMarkRef<'a> {
    instrument: &'a InstrumentId,
    #[serde(with = "rust_decimal::serde::str")]
    price: Decimal,
    source: MarkSource,
}

#[derive(Serialize)]
struct PositionsSnapshotRef<'a> {
    version: u32,
    positions: Vec<&'a Position>,
    marks: Vec<SavedMarkRef<'a>>,
}

#[derive(Deserialize)]
struct SavedMark {
    instrument: InstrumentId,
    #[serde(with = "rust_decimal::serde::str")]
    price: Decimal,
    source: MarkSource,
}

/// The serialized form of [`Positions`]: lists, since JSON object keys must be strings.
#[derive(Deserialize)]
struct PositionsSnapshot {
    version: u32,
    positions: Vec<Position>,
    marks: Vec<SavedMark>,
}

impl Serialize for Positions {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        PositionsSnapshotRef {
            version: SNAPSHOT_VERSION,
            positions: self.all().collect(),
            marks: self
                .marks
                .iter()
                .map(|(instrument, (price, source))| SavedMarkRef {
                    instrument,
                    price: *price,
                    source: *source,
                })
                .collect(),
        }
        .serialize(s)
    }
}

impl TryFrom<PositionsSnapshot> for Positions {
    type Error = PositionsError;

    fn try_from(snap: PositionsSnapshot) -> Result<Self, PositionsError> {
        if snap.version != SNAPSHOT_VERSION {
            return Err(PositionsError::SnapshotVersion {
                found: snap.version,
                expected: SNAPSHOT_VERSION,
            });
        }
        let mut positions = Positions::new();
        for p in snap.positions {
            let (account, instrument) = (p.account.clone(), p.instrument.clone());
            if positions
                .accounts
                .entry(account)
                .or_default()
                .insert(instrument, p)
                .is_some()
            {
                return Err(PositionsError::InvalidSnapshot(
                    "a position appears twice".into(),
                ));
            }
        }
        for m in snap.marks {
            if positions
                .marks
                .insert(m.instrument, (m.price, m.source))
                .is_some()
            {
                return Err(PositionsError::InvalidSnapshot(
                    "an instrument has two marks".into(),
                ));
            }
        }
        Ok(positions)
    }
}

fn date_of(ts: Timestamp) -> NaiveDate {
    ts.to_datetime().date_naive()
}

impl Positions {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sizes of the collections (for memory metrics and bound tests).
    pub fn footprint(&self) -> PositionsFootprint {
        PositionsFootprint {
            accounts: self.accounts.len(),
            positions: self.accounts.values().map(BTreeMap::len).sum(),
            marks: self.marks.len(),
        }
    }

    /// Apply one fill. `Ok(true)` when applied, `Ok(false)` when ignored because its id is not
    /// above the last fill applied to that position (a replayed duplicate). On error nothing
    /// changes.
    pub fn apply_fill(&mut self, fill: &Fill) -> Result<bool, PositionsError> {
        // A fill marks at its own price unless a trade or mid is known for the instrument.
        let mark = match self.marks.get(&fill.instrument) {
            Some((m, s)) if *s > MarkSource::Fill => Some(*m),
            _ => None,
        };
        let slot = self
            .accounts
            .entry(fill.account.clone())
            .or_default()
            .entry(fill.instrument.clone())
            .or_insert_with(|| Position::new(fill.account.clone(), fill.instrument.clone()));
        if slot.last_fill_id.is_some_and(|last| fill.fill_id <= last) {
            return Ok(false);
        }
        match slot.with_fill(fill, mark) {
            Ok(next) => {
                *slot = next;
                if mark.is_none() {
                    // Other accounts' positions in the instrument follow the new fill price. Only
                    // an overflow (absurd magnitudes) can fail here; those positions then keep
                    // their previous mark while this fill stays applied.
                    let _ = self.mark_from(
                        &fill.instrument,
                        fill.price.get(),
                        fill.ts,
                        MarkSource::Fill,
                    );
                }
                Ok(true)
            }
            Err(e) => {
                // Do not leave an empty position behind for a fill that was refused.
                if slot.last_fill_id.is_none() {
                    self.remove_empty(&fill.account, &fill.instrument);
                }
                Err(e)
            }
        }
    }

    fn remove_empty(&mut self, account: &AccountId, instrument: &InstrumentId) {
        if let Some(m) = self.accounts.get_mut(account) {
            m.remove(instrument);
            if m.is_empty() {
                self.accounts.remove(account);
            }
        }
    }

    /// Mark every position in `instrument` at `mid` (a quote or book mid).
    pub fn mark(
        &mut self,
        instrument: &InstrumentId,
        mid: Decimal,
        ts: Timestamp,
    ) -> Result<(), PositionsError> {
        self.mark_from(instrument, mid, ts, MarkSource::Mid)
    }

    fn mark_from(
        &mut self,
        instrument: &InstrumentId,
        price: Decimal,
        ts: Timestamp,
        source: MarkSource,
    ) -> Result<(), PositionsError> {
        if self.marks.get(instrument).is_some_and(|(_, s)| *s > source) {
            return Ok(());
        }
        // Check every position first so a failure leaves all of them unchanged.
        let mut updated = Vec::new();
        for positions in self.accounts.values() {
            if let Some(p) = positions.get(instrument) {
                let mut p = p.clone();
                p.set_mark(price, ts)?;
                updated.push(p);
            }
        }
        for p in updated {
            if let Some(slot) = self
                .accounts
                .get_mut(&p.account)
                .and_then(|m| m.get_mut(instrument))
            {
                *slot = p;
            }
        }
        self.marks.insert(instrument.clone(), (price, source));
        Ok(())
    }

    /// Fold one journaled or live event: `OrderFilled` applies the fill; `Quote` and
    /// `BookSnapshot` (with both sides) mark at the mid; `Trade` marks at its price only while
    /// the instrument never had a mid. Everything else is ignored (order lifecycle events such
    /// as `OrderTriggered` change no position: only fills do).
    pub fn on_event(&mut self, event: &Event) -> Result<(), PositionsError> {
        match event {
            Event::OrderFilled(f) => self.apply_fill(f).map(|_| ()),
            Event::Quote(q) => self.mark(&q.instrument, q.mid(), q.ts),
            Event::BookSnapshot(s) => match (s.bids.first(), s.asks.first()) {
                (Some(b), Some(a)) => {
                    let mid = (b.price.get() + a.price.get()) / Decimal::TWO;
                    self.mark(&s.instrument, mid, s.ts)
                }
                _ => Ok(()),
            },
            Event::Trade(t) => {
                self.mark_from(&t.instrument, t.price.get(), t.ts, MarkSource::Trade)
            }
            _ => Ok(()),
        }
    }

    /// The latest mark of an instrument, if any.
    pub fn mark_price(&self, instrument: &InstrumentId) -> Option<Decimal> {
        self.marks.get(instrument).map(|(m, _)| *m)
    }

    pub fn position(&self, account: &AccountId, instrument: &InstrumentId) -> Option<&Position> {
        self.accounts.get(account)?.get(instrument)
    }

    /// Positions of `account` whose symbol is `symbol`, or whose instrument displays as
    /// `symbol` (`BTCUSDT.binance`); several venues may list the same symbol. Ordered by
    /// instrument.
    pub fn positions_by_symbol(&self, account: &AccountId, symbol: &str) -> Vec<&Position> {
        self.account_positions(account)
            .filter(|p| {
                p.instrument.symbol.as_str() == symbol || p.instrument.to_string() == symbol
            })
            .collect()
    }

    /// Every position of `account` (flat ones included: they carry realized P&L), by instrument.
    pub fn account_positions<'a>(
        &'a self,
        account: &AccountId,
    ) -> impl Iterator<Item = &'a Position> + 'a {
        self.accounts
            .get(account)
            .into_iter()
            .flat_map(|m| m.values())
    }

    /// Every position, by account then instrument.
    pub fn all(&self) -> impl Iterator<Item = &Position> + '_ {
        self.accounts.values().flat_map(|m| m.values())
    }

    pub fn accounts(&self) -> impl Iterator<Item = &AccountId> + '_ {
        self.accounts.keys()
    }

    /// Sum of `|net_qty x mark|` over the account's positions (unmarked ones at `|cost|`).
    pub fn gross_exposure(&self, account: &AccountId) -> Decimal {
        self.account_positions(account)
            .map(Position::exposure)
            .fold(Decimal::ZERO, Decimal::saturating_add)
    }

    /// Sum of signed `net_qty x mark` (unmarked ones at cost).
    pub fn net_exposure(&self, account: &AccountId) -> Decimal {
        self.account_positions(account)
            .map(|p| {
                p.mark.map_or(p.cost_basis, |m| {
                    p.net_qty
                        .checked_mul(m)
                        .unwrap_or(if p.net_qty.is_sign_negative() {
                            Decimal::MIN
                        } else {
                            Decimal::MAX
                        })
                })
            })
            .fold(Decimal::ZERO, Decimal::saturating_add)
    }

    /// (realized before fees, unrealized) summed over the account's positions.
    pub fn account_pnl(&self, account: &AccountId) -> (Decimal, Decimal) {
        self.account_positions(account)
            .fold((Decimal::ZERO, Decimal::ZERO), |(r, u), p| {
                (r + p.realized_pnl, u + p.unrealized_pnl)
            })
    }

    /// Sum of fees the account paid (negative for net rebates).
    pub fn account_fees(&self, account: &AccountId) -> Decimal {
        self.account_positions(account).map(|p| p.fees).sum()
    }

    /// Realized P&L and fees of the account's fills on UTC `date` (positions whose latest
    /// fill/mark date is `date`). Risk's daily loss check: `account_realized_on(a, d).net()`.
    pub fn account_realized_on(&self, account: &AccountId, date: NaiveDate) -> DailyPnl {
        self.account_positions(account)
            .filter(|p| p.day == Some(date))
            .fold(DailyPnl::default(), |acc, p| DailyPnl {
                realized: acc.realized + p.realized_today,
                fees: acc.fees + p.fees_today,
            })
    }
}
