use std::fmt;

use serde::{Deserialize, Serialize};

/// Why the risk gate refused an order: a stable, machine-readable code. The snake_case name
/// (`as_str`, serde) is the public contract: it is journaled in `order_rejected.code` and
/// returned by the HTTP API, so variants are only ever added, never renamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectCode {
    MaxOrderQuantity,
    MaxOrderNotional,
    PriceCollar,
    MaxPosition,
    MaxGrossExposure,
    MaxOpenOrders,
    OrderRate,
    DailyLossLimit,
    KillSwitch,
    RestrictedSymbol,
    SelfTrade,
    NoMarketData,
}

impl RejectCode {
    /// Every code, in the order the checks run (see [`crate::RiskEngine::check`]).
    pub const ALL: [RejectCode; 12] = [
        RejectCode::KillSwitch,
        RejectCode::DailyLossLimit,
        RejectCode::RestrictedSymbol,
        RejectCode::OrderRate,
        RejectCode::MaxOrderQuantity,
        RejectCode::NoMarketData,
        RejectCode::PriceCollar,
        RejectCode::MaxOrderNotional,
        RejectCode::MaxOpenOrders,
        RejectCode::MaxPosition,
        RejectCode::MaxGrossExposure,
        RejectCode::SelfTrade,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            RejectCode::MaxOrderQuantity => "max_order_quantity",
            RejectCode::MaxOrderNotional => "max_order_notional",
            RejectCode::PriceCollar => "price_collar",
            RejectCode::MaxPosition => "max_position",
            RejectCode::MaxGrossExposure => "max_gross_exposure",
            RejectCode::MaxOpenOrders => "max_open_orders",
            RejectCode::OrderRate => "order_rate",
            RejectCode::DailyLossLimit => "daily_loss_limit",
            RejectCode::KillSwitch => "kill_switch",
            RejectCode::RestrictedSymbol => "restricted_symbol",
            RejectCode::SelfTrade => "self_trade",
            RejectCode::NoMarketData => "no_market_data",
        }
    }

    /// One sentence for generated docs and the HTTP error contract.
    pub const fn description(self) -> &'static str {
        match self {
            RejectCode::MaxOrderQuantity => {
                "The order quantity is above the max_order_quantity limit for the account and symbol."
            }
            RejectCode::MaxOrderNotional => {
                "The order notional (quantity x limit price, stop price, or for market orders the far touch / mid) is above max_order_notional."
            }
            RejectCode::PriceCollar => {
                "The limit price is further from the current mid than price_collar_pct percent (fat-finger check); a stop-limit's limit is measured against its stop price."
            }
            RejectCode::MaxPosition => {
                "The absolute position in the instrument after a full fill would exceed max_position (orders that reduce the position always pass)."
            }
            RejectCode::MaxGrossExposure => {
                "The account's gross exposure (sum of |position| x price) after a full fill would exceed max_gross_exposure (orders that reduce it always pass)."
            }
            RejectCode::MaxOpenOrders => "The account already has max_open_orders open orders.",
            RejectCode::OrderRate => {
                "The account sent max_orders_per_sec orders within the last second (sliding window on order timestamps)."
            }
            RejectCode::DailyLossLimit => {
                "Today's realized + unrealized P&L of the account reached -daily_loss_limit; the kill switch is now engaged."
            }
            RejectCode::KillSwitch => {
                "The account's kill switch is engaged (daily loss limit or admin); new orders are blocked until an admin resets it."
            }
            RejectCode::RestrictedSymbol => "The symbol is restricted for this account.",
            RejectCode::SelfTrade => {
                "The order would cross a resting order of the same account on the same instrument."
            }
            RejectCode::NoMarketData => {
                "A check needs a reference price (market order valuation, price collar) and no bid/ask/mid is known for the instrument."
            }
        }
    }
}

impl fmt::Display for RejectCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
