use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;

use model::{
    AccountId, Decimal, Event, Order, OrderStatus, OrderType, Price, Side, Symbol, Timestamp,
};
use serde::{Deserialize, Serialize, Serializer};

use crate::limits::{EffectiveLimits, Layers, LimitSet, RiskLimits, Scope, Source};
use crate::{RejectCode, RiskError};

/// `config_changed.section` of every risk change.
pub const SECTION: &str = "risk";

/// Length of the order-rate window.
const RATE_WINDOW_NANOS: i64 = 1_000_000_000;

/// Version of the serialized form of [`RiskEngine`] (its snapshot). A snapshot with another
/// version is refused on restore, so the runtime falls back to a full replay.
pub const SNAPSHOT_VERSION: u32 = 1;

/// What the caller knows about the account and the market when an order arrives. All money
/// in the instrument's quote currency, quantities in instrument units, exact decimals.
#[derive(Debug, Clone, Copy, Default)]
pub struct RiskContext<'a> {
    /// Current mid of the instrument. When `None` but both `best_bid` and `best_ask` are
    /// known, their mean is used.
    pub mid: Option<Decimal>,
    pub best_bid: Option<Price>,
    pub best_ask: Option<Price>,
    /// The account's signed position in the order's instrument (long > 0).
    pub position: Decimal,
    /// The account's gross exposure now: sum over instruments of |position| x mark.
    pub gross_exposure: Decimal,
    /// The account's open orders, NOT counting the order being checked. (With the OMS: run
    /// the check before applying the order's `order_submitted`, or subtract one.)
    pub open_orders: usize,
    /// The account's resting orders on the order's instrument (`Oms::resting_orders`).
    /// Orders of other accounts/instruments, terminal orders and the checked order itself
    /// are ignored, so passing a superset is harmless.
    pub resting_orders: &'a [&'a Order],
    /// Today's realized + unrealized P&L of the account (negative = loss).
    pub daily_pnl: Decimal,
}

impl RiskContext<'_> {
    fn mid(&self) -> Option<Decimal> {
        self.mid.or_else(|| match (self.best_bid, self.best_ask) {
            (Some(b), Some(a)) => Some((b.get() + a.get()) / Decimal::TWO),
            _ => None,
        })
    }
}

/// A refused order, as data: the stable code and a message naming the limit and the values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiskReject {
    pub code: RejectCode,
    pub message: String,
}

impl RiskReject {
    fn new(code: RejectCode, message: String) -> RiskReject {
        RiskReject { code, message }
    }
}

impl fmt::Display for RiskReject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// A run-time change, journaled as the `change` payload of
/// `Event::ConfigChanged { section: "risk", .. }`. JSON: `{"op": "set_limits", ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum LimitsChange {
    /// Merge: the keys present in `limits` overwrite the scope's values (`null` = no limit);
    /// absent keys are left as they are.
    SetLimits {
        #[serde(default)]
        scope: Scope,
        limits: LimitSet,
    },
    /// Replace the whole set at the scope (absent keys inherit); an empty set removes it.
    ReplaceLimits {
        #[serde(default)]
        scope: Scope,
        limits: LimitSet,
    },
    /// Replace every limit (e.g. the config file was reloaded).
    ReplaceAll { limits: RiskLimits },
    /// Block the account's new orders now (admin).
    EngageKillSwitch {
        account: AccountId,
        #[serde(default)]
        reason: String,
    },
    /// Let the account trade again.
    ResetKillSwitch { account: AccountId },
}

/// An engaged kill switch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KillSwitch {
    pub since: Timestamp,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct AccountState {
    /// Timestamps (nanos) of the orders admitted by the rate check in the last second.
    #[serde(default, skip_serializing_if = "VecDeque::is_empty")]
    window: VecDeque<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kill: Option<KillSwitch>,
}

/// Sizes of the risk engine's per-account state, to watch memory (see the crate docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct RiskFootprint {
    /// Accounts with state: a recent order in the rate window or an engaged kill switch.
    pub accounts: usize,
    /// Order timestamps held in all rate windows.
    pub rate_window_entries: usize,
    /// Engaged kill switches.
    pub kill_switches: usize,
}

/// The pre-trade risk gate. Pure: no I/O, no clock (time is the order's `created_at`).
///
/// State: the limits, and per account the order-rate window and the kill switch. Limits and
/// kill switches are rebuilt on restart by [`RiskEngine::apply`] over the journal
/// (`config_changed` with section `risk`, and `order_rejected` with code `daily_loss_limit`).
/// The rate window is not journaled: a replay from scratch starts it empty (it spans one
/// second), a snapshot carries it.
///
/// Serialize / Deserialize give its snapshot: restoring one and continuing behaves exactly like
/// continuing the original.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RiskSnapshot")]
pub struct RiskEngine {
    limits: RiskLimits,
    builtin: LimitSet,
    accounts: HashMap<AccountId, AccountState>,
    /// Event time (nanos) of the last sweep of idle accounts; sweeps run at most once per
    /// rate window, so their cost is amortized over the orders of a second.
    swept_at: Option<i64>,
}

impl Default for RiskEngine {
    fn default() -> RiskEngine {
        RiskEngine {
            limits: RiskLimits::default(),
            builtin: LimitSet::builtin(),
            accounts: HashMap::new(),
            swept_at: None,
        }
    }
}

#[derive(Serialize)]
struct RiskSnapshotRef<'a> {
    version: u32,
    limits: &'a RiskLimits,
    accounts: BTreeMap<&'a AccountId, &'a AccountState>,
    swept_at: Option<i64>,
}

/// The serialized form of [`RiskEngine`]. The built-in defaults are code, not state.
#[derive(Deserialize)]
struct RiskSnapshot {
    version: u32,
    limits: RiskLimits,
    accounts: BTreeMap<AccountId, AccountState>,
    swept_at: Option<i64>,
}

impl Serialize for RiskEngine {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        RiskSnapshotRef {
            version: SNAPSHOT_VERSION,
            limits: &self.limits,
            accounts: self.accounts.iter().collect(),
            swept_at: self.swept_at,
        }
        .serialize(s)
    }
}

impl TryFrom<RiskSnapshot> for RiskEngine {
    type Error = RiskError;

    fn try_from(snap: RiskSnapshot) -> Result<Self, RiskError> {
        if snap.version != SNAPSHOT_VERSION {
            return Err(RiskError::SnapshotVersion {
                found: snap.version,
                expected: SNAPSHOT_VERSION,
            });
        }
        let mut engine = RiskEngine::new(snap.limits)?;
        engine.accounts = snap.accounts.into_iter().collect();
        engine.swept_at = snap.swept_at;
        Ok(engine)
    }
}

fn mul(a: Decimal, b: Decimal) -> Option<Decimal> {
    a.checked_mul(b)
}

impl RiskEngine {
    /// An engine with validated limits (the config file's `risk` section).
    pub fn new(limits: RiskLimits) -> Result<RiskEngine, RiskError> {
        limits.validate()?;
        Ok(RiskEngine {
            limits,
            ..RiskEngine::default()
        })
    }

    pub fn limits(&self) -> &RiskLimits {
        &self.limits
    }

    /// The limits in force for `account` trading `symbol`.
    pub fn effective_limits(&self, account: &AccountId, symbol: &Symbol) -> EffectiveLimits {
        EffectiveLimits::from_layers(&Layers::new(&self.limits, &self.builtin, account, symbol))
    }

    pub fn kill_switch(&self, account: &AccountId) -> Option<&KillSwitch> {
        self.accounts.get(account).and_then(|s| s.kill.as_ref())
    }

    /// Sizes of the per-account state (for memory metrics and bound tests).
    pub fn footprint(&self) -> RiskFootprint {
        RiskFootprint {
            accounts: self.accounts.len(),
            rate_window_entries: self.accounts.values().map(|s| s.window.len()).sum(),
            kill_switches: self.accounts.values().filter(|s| s.kill.is_some()).count(),
        }
    }

    /// Forget what can no longer matter at event time `now`: rate-window entries older than
    /// the window, and accounts left with neither such entries nor a kill switch. Later checks
    /// (at `now` or after) would drop those entries anyway, so this changes no decision; it
    /// only keeps accounts that traded once, weeks ago, from staying in memory. Runs at most
    /// once per window length of event time.
    fn sweep(&mut self, now: i64) {
        if self
            .swept_at
            .is_some_and(|at| now.saturating_sub(at) < RATE_WINDOW_NANOS)
        {
            return;
        }
        self.swept_at = Some(now);
        let cutoff = now.saturating_sub(RATE_WINDOW_NANOS);
        self.accounts.retain(|_, s| {
            while s.window.front().is_some_and(|&old| old <= cutoff) {
                s.window.pop_front();
            }
            s.kill.is_some() || !s.window.is_empty()
        });
    }

    /// Check one new order. The checks run in this order and the first failure is returned:
    ///
    /// 1. `kill_switch` - the account's kill switch is engaged.
    /// 2. `daily_loss_limit` - `daily_pnl <= -daily_loss_limit`: engages the kill switch.
    /// 3. `restricted_symbol`.
    /// 4. `order_rate` - at most `max_orders_per_sec` orders in any sliding window of one
    ///    second, measured on `order.created_at`: an order at `t` counts the admitted orders
    ///    with timestamps in `(t - 1 s, t]`. Only orders that pass this step are recorded.
    /// 5. `max_order_quantity`.
    /// 6. `no_market_data` - a market order needs a reference price (the far touch: ask for a
    ///    buy, bid for a sell; else the mid), and a limit order needs a mid when the collar is
    ///    on. Fail closed: without data these orders cannot be checked, so they are refused.
    /// 7. `price_collar` - a limit order's price within `price_collar_pct` % of the mid; a
    ///    stop-limit's limit within the collar of its own stop price (it becomes a limit
    ///    order at about that price, and the mid now says nothing about the trigger time).
    ///    Market and stop orders have no price to collar.
    /// 8. `max_order_notional` - quantity x reference price (limit price; stop price for
    ///    stops; far touch or mid for market orders).
    /// 9. `max_open_orders` - `open_orders + 1 > max_open_orders`.
    /// 10. `max_position` - |position + signed quantity| after a full fill; an order that
    ///     does not increase |position| always passes (so reducing is always possible).
    /// 11. `max_gross_exposure` - gross + (|position after| - |position now|) x reference
    ///     price; likewise an order that does not increase it passes. Other open orders are
    ///     not counted (positions only).
    /// 12. `self_trade` - the order would cross a resting order of the same account on the
    ///     same instrument: a buy limit at or above a resting sell, a sell limit at or below a
    ///     resting buy, a market/stop order against any resting opposite order (stop orders are
    ///     judged as if triggered now). Resting orders without a limit price are ignored.
    pub fn check(&mut self, order: &Order, ctx: &RiskContext<'_>) -> Result<(), RiskReject> {
        self.sweep(order.created_at.as_nanos());
        let RiskEngine {
            limits,
            builtin,
            accounts,
            ..
        } = self;
        let layers = Layers::new(limits, builtin, &order.account, &order.instrument.symbol);
        let state = match accounts.get_mut(&order.account) {
            Some(s) => s,
            None => accounts.entry(order.account.clone()).or_default(),
        };
        let now = order.created_at;
        let qty = order.quantity.get();

        // 1. kill switch
        if let Some(k) = &state.kill {
            return Err(RiskReject::new(
                RejectCode::KillSwitch,
                format!(
                    "kill switch of account {} engaged since {} ({}); an admin must reset it",
                    order.account, k.since, k.reason
                ),
            ));
        }

        // 2. daily loss
        if let Some((limit, src)) = layers.account_wide(|s| &s.daily_loss_limit)
            && ctx.daily_pnl <= -limit
        {
            let reason = format!(
                "daily P&L {} reached daily_loss_limit {} ({})",
                ctx.daily_pnl,
                limit,
                src.as_str()
            );
            state.kill = Some(KillSwitch {
                since: now,
                reason: reason.clone(),
            });
            return Err(RiskReject::new(
                RejectCode::DailyLossLimit,
                format!(
                    "{reason}; kill switch engaged for account {}",
                    order.account
                ),
            ));
        }

        // 3. restricted symbol
        if let Some((true, src)) = layers.get(|s| &s.restricted) {
            return Err(RiskReject::new(
                RejectCode::RestrictedSymbol,
                format!(
                    "symbol {} is restricted for account {} ({})",
                    order.instrument.symbol,
                    order.account,
                    src.as_str()
                ),
            ));
        }

        // 4. order rate
        if let Some((max, src)) = layers.account_wide(|s| &s.max_orders_per_sec) {
            let t = now.as_nanos();
            let cutoff = t.saturating_sub(RATE_WINDOW_NANOS);
            while state.window.front().is_some_and(|&old| old <= cutoff) {
                state.window.pop_front();
            }
            if state.window.len() >= max as usize {
                return Err(RiskReject::new(
                    RejectCode::OrderRate,
                    format!(
                        "{} orders in the last second reach max_orders_per_sec {} ({})",
                        state.window.len(),
                        max,
                        src.as_str()
                    ),
                ));
            }
            state.window.push_back(t);
        }

        // 5. order quantity
        if let Some((max, src)) = layers.get(|s| &s.max_order_quantity)
            && qty > max
        {
            return Err(exceeds(
                RejectCode::MaxOrderQuantity,
                "order quantity",
                qty,
                max,
                src,
            ));
        }

        // 6. reference prices
        let mid = ctx.mid();
        let collar = layers.get(|s| &s.price_collar_pct);
        let reference = match order.order_type {
            OrderType::Limit | OrderType::StopLimit => order.price.map(Price::get),
            OrderType::Stop => order.stop_price.map(Price::get),
            OrderType::Market => match order.side {
                Side::Buy => ctx.best_ask.map(Price::get),
                Side::Sell => ctx.best_bid.map(Price::get),
            }
            .or(mid),
        };
        let Some(reference) = reference else {
            return Err(RiskReject::new(
                RejectCode::NoMarketData,
                format!(
                    "no bid, ask or mid for {} to value the market order",
                    order.instrument
                ),
            ));
        };

        // 7. price collar
        if let (Some((pct, src)), OrderType::Limit | OrderType::StopLimit, Some(price)) =
            (collar, order.order_type, order.price)
        {
            let anchor = match order.order_type {
                OrderType::StopLimit => order.stop_price.map(Price::get),
                _ => mid,
            };
            let Some(anchor) = anchor else {
                return Err(RiskReject::new(
                    RejectCode::NoMarketData,
                    format!(
                        "no mid for {} to apply price_collar_pct {pct}",
                        order.instrument
                    ),
                ));
            };
            let price = price.get();
            // |price - anchor| / anchor > pct / 100, without dividing.
            let dev = (price - anchor).abs();
            let outside = match (mul(dev, Decimal::ONE_HUNDRED), mul(pct, anchor)) {
                (Some(lhs), Some(rhs)) => lhs > rhs,
                _ => true,
            };
            if outside {
                // Checked: a stop price near zero makes the percentage too large for a Decimal
                // (found by fuzzing the gateway's bodies; it stopped the engine).
                let dev_pct = dev
                    .checked_mul(Decimal::ONE_HUNDRED)
                    .and_then(|d| d.checked_div(anchor))
                    .map_or_else(|| "beyond any".to_owned(), |d| format!("{}", d.round_dp(4)));
                let what = if order.order_type == OrderType::StopLimit {
                    "stop price"
                } else {
                    "mid"
                };
                return Err(RiskReject::new(
                    RejectCode::PriceCollar,
                    format!(
                        "limit price {price} is {dev_pct}% from the {what} {anchor}, beyond price_collar_pct {pct} ({})",
                        src.as_str()
                    ),
                ));
            }
        }

        // 8. notional
        if let Some((max, src)) = layers.get(|s| &s.max_order_notional) {
            match mul(qty, reference) {
                Some(n) if n <= max => {}
                n => {
                    return Err(RiskReject::new(
                        RejectCode::MaxOrderNotional,
                        format!(
                            "order notional {} ({qty} x {reference}) exceeds max_order_notional {max} ({})",
                            n.map_or_else(|| "overflow".to_owned(), |n| n.to_string()),
                            src.as_str()
                        ),
                    ));
                }
            }
        }

        // 9. open orders
        if let Some((max, src)) = layers.account_wide(|s| &s.max_open_orders)
            && ctx.open_orders >= max as usize
        {
            return Err(RiskReject::new(
                RejectCode::MaxOpenOrders,
                format!(
                    "account {} has {} open orders, max_open_orders {} ({})",
                    order.account,
                    ctx.open_orders,
                    max,
                    src.as_str()
                ),
            ));
        }

        // 10. position after a full fill
        let signed = match order.side {
            Side::Buy => qty,
            Side::Sell => -qty,
        };
        let before = ctx.position.abs();
        let after = (ctx.position + signed).abs();
        if let Some((max, src)) = layers.get(|s| &s.max_position)
            && after > max
            && after > before
        {
            return Err(RiskReject::new(
                RejectCode::MaxPosition,
                format!(
                    "position in {} would be {} (now {}), max_position {} ({})",
                    order.instrument,
                    ctx.position + signed,
                    ctx.position,
                    max,
                    src.as_str()
                ),
            ));
        }

        // 11. gross exposure
        if let Some((max, src)) = layers.account_wide(|s| &s.max_gross_exposure)
            && after > before
        {
            let new_gross =
                mul(after - before, reference).and_then(|d| d.checked_add(ctx.gross_exposure));
            match new_gross {
                Some(g) if g <= max => {}
                g => {
                    return Err(RiskReject::new(
                        RejectCode::MaxGrossExposure,
                        format!(
                            "gross exposure would be {} (now {}), max_gross_exposure {} ({})",
                            g.map_or_else(|| "overflow".to_owned(), |g| g.to_string()),
                            ctx.gross_exposure,
                            max,
                            src.as_str()
                        ),
                    ));
                }
            }
        }

        // 12. self-trade
        if let Some(other) = ctx.resting_orders.iter().find(|r| crosses(order, r)) {
            return Err(RiskReject::new(
                RejectCode::SelfTrade,
                format!(
                    "{:?} order would cross the account's resting {:?} order {} at {}",
                    order.side,
                    other.side,
                    other.order_id,
                    other
                        .price
                        .map_or_else(|| "market".to_owned(), |p| p.to_string()),
                ),
            ));
        }
        Ok(())
    }

    /// Apply a run-time change (admin endpoint) and return the event to journal. Invalid
    /// changes are refused and change nothing.
    pub fn update_limits(
        &mut self,
        change: LimitsChange,
        by: &str,
        ts: Timestamp,
    ) -> Result<Event, RiskError> {
        let payload =
            serde_json::to_value(&change).map_err(|e| RiskError::BadChange(e.to_string()))?;
        match &change {
            LimitsChange::ResetKillSwitch { account } if self.kill_switch(account).is_none() => {
                return Err(RiskError::KillSwitchNotEngaged(account.clone()));
            }
            LimitsChange::SetLimits { scope, limits } => {
                let mut candidate = self.limits.clone();
                candidate.merge(scope, limits);
                candidate.validate()?;
            }
            LimitsChange::ReplaceLimits { scope, limits } => {
                let mut candidate = self.limits.clone();
                candidate.replace(scope, limits.clone());
                candidate.validate()?;
            }
            LimitsChange::ReplaceAll { limits } => limits.validate()?,
            _ => {}
        }
        self.apply_change(change, ts);
        Ok(Event::ConfigChanged {
            by: by.to_owned(),
            section: SECTION.to_owned(),
            change: payload,
            ts,
        })
    }

    /// Shorthand for `update_limits(LimitsChange::ResetKillSwitch { account })`.
    pub fn reset_kill_switch(
        &mut self,
        account: &AccountId,
        by: &str,
        ts: Timestamp,
    ) -> Result<Event, RiskError> {
        self.update_limits(
            LimitsChange::ResetKillSwitch {
                account: account.clone(),
            },
            by,
            ts,
        )
    }

    /// Fold one journaled event (restart, or live if the caller applies everything it
    /// journals; every change is idempotent). Uses `config_changed` with section `risk` and
    /// `order_rejected` with code `daily_loss_limit` (which engaged the kill switch); ignores
    /// everything else (market data, fills, `order_triggered`, ...: positions and open orders
    /// reach the checks through [`RiskContext`]). A risk change that cannot be decoded is an
    /// error.
    pub fn apply(&mut self, event: &Event) -> Result<(), RiskError> {
        match event {
            Event::ConfigChanged {
                section,
                change,
                ts,
                ..
            } if section == SECTION => {
                let change: LimitsChange = serde_json::from_value(change.clone())
                    .map_err(|e| RiskError::BadChange(e.to_string()))?;
                self.apply_change(change, *ts);
            }
            Event::OrderRejected {
                account,
                code,
                message,
                ts,
                ..
            } if code == RejectCode::DailyLossLimit.as_str() => {
                let state = self.accounts.entry(account.clone()).or_default();
                if state.kill.is_none() {
                    state.kill = Some(KillSwitch {
                        since: *ts,
                        reason: message.clone(),
                    });
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn apply_change(&mut self, change: LimitsChange, ts: Timestamp) {
        match change {
            LimitsChange::SetLimits { scope, limits } => self.limits.merge(&scope, &limits),
            LimitsChange::ReplaceLimits { scope, limits } => self.limits.replace(&scope, limits),
            LimitsChange::ReplaceAll { limits } => self.limits = limits,
            LimitsChange::EngageKillSwitch { account, reason } => {
                let state = self.accounts.entry(account).or_default();
                if state.kill.is_none() {
                    let reason = if reason.is_empty() {
                        "engaged by admin".to_owned()
                    } else {
                        reason
                    };
                    state.kill = Some(KillSwitch { since: ts, reason });
                }
            }
            LimitsChange::ResetKillSwitch { account } => {
                if let Some(state) = self.accounts.get_mut(&account) {
                    state.kill = None;
                    if state.window.is_empty() {
                        self.accounts.remove(&account);
                    }
                }
            }
        }
    }
}

fn exceeds(code: RejectCode, what: &str, value: Decimal, max: Decimal, src: Source) -> RiskReject {
    RiskReject::new(
        code,
        format!(
            "{what} {value} exceeds {} {max} ({})",
            code.as_str(),
            src.as_str()
        ),
    )
}

/// Would `incoming` trade against `resting` (same account and instrument, opposite side)?
fn crosses(incoming: &Order, resting: &Order) -> bool {
    if resting.order_id == incoming.order_id
        || resting.account != incoming.account
        || resting.side == incoming.side
        || !matches!(
            resting.status,
            OrderStatus::Accepted | OrderStatus::PartiallyFilled
        )
        || resting.instrument != incoming.instrument
    {
        return false;
    }
    let Some(resting_price) = resting.price else {
        return false;
    };
    match (incoming.order_type, incoming.price) {
        (OrderType::Market | OrderType::Stop, _) | (_, None) => true,
        (OrderType::Limit | OrderType::StopLimit, Some(p)) => match incoming.side {
            Side::Buy => p >= resting_price,
            Side::Sell => p <= resting_price,
        },
    }
}
