use serde::{Deserialize, Serialize};

use crate::{
    AccountId, ClientOrderId, FillId, InstrumentId, ModelError, Money, OrderId, Price, Quantity,
    Timestamp,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    pub fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }
    /// +1 for a buy, -1 for a sell: signed quantity = sign x quantity.
    pub fn sign(self) -> i32 {
        match self {
            Side::Buy => 1,
            Side::Sell => -1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderType {
    Market,
    Limit,
    Stop,
    StopLimit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeInForce {
    /// Good till cancelled.
    #[default]
    Gtc,
    /// Immediate or cancel: fill what is possible now, expire the rest.
    Ioc,
    /// Fill or kill: fill all now or nothing.
    Fok,
    /// Expires at the end of the trading session.
    Day,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    PendingNew,
    Accepted,
    PartiallyFilled,
    Filled,
    Canceled,
    Rejected,
    Expired,
}

impl OrderStatus {
    /// A terminal status never changes again.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            OrderStatus::Filled
                | OrderStatus::Canceled
                | OrderStatus::Rejected
                | OrderStatus::Expired
        )
    }
    pub fn is_open(self) -> bool {
        !self.is_terminal()
    }

    /// The snake_case name, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::PendingNew => "pending_new",
            OrderStatus::Accepted => "accepted",
            OrderStatus::PartiallyFilled => "partially_filled",
            OrderStatus::Filled => "filled",
            OrderStatus::Canceled => "canceled",
            OrderStatus::Rejected => "rejected",
            OrderStatus::Expired => "expired",
        }
    }

    pub const ALL: [OrderStatus; 7] = [
        OrderStatus::PendingNew,
        OrderStatus::Accepted,
        OrderStatus::PartiallyFilled,
        OrderStatus::Filled,
        OrderStatus::Canceled,
        OrderStatus::Rejected,
        OrderStatus::Expired,
    ];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Liquidity {
    Maker,
    Taker,
}

/// An order as the platform knows it. Built through [`Order::new`], which checks that the
/// prices the order type needs are present and the quantity is positive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub order_id: OrderId,
    pub client_order_id: ClientOrderId,
    pub account: AccountId,
    pub instrument: InstrumentId,
    pub side: Side,
    #[serde(rename = "type")]
    pub order_type: OrderType,
    pub time_in_force: TimeInForce,
    pub quantity: Quantity,
    pub price: Option<Price>,
    pub stop_price: Option<Price>,
    pub status: OrderStatus,
    pub filled_quantity: Quantity,
    pub avg_fill_price: Option<Price>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Order {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        order_id: OrderId,
        client_order_id: ClientOrderId,
        account: AccountId,
        instrument: InstrumentId,
        side: Side,
        order_type: OrderType,
        time_in_force: TimeInForce,
        quantity: Quantity,
        price: Option<Price>,
        stop_price: Option<Price>,
        ts: Timestamp,
    ) -> Result<Order, ModelError> {
        Self::check_shape(order_type, quantity, price, stop_price)?;
        Ok(Order {
            order_id,
            client_order_id,
            account,
            instrument,
            side,
            order_type,
            time_in_force,
            quantity,
            price,
            stop_price,
            status: OrderStatus::PendingNew,
            filled_quantity: Quantity::ZERO,
            avg_fill_price: None,
            created_at: ts,
            updated_at: ts,
        })
    }

    /// The rules every order obeys whatever its state: a positive quantity, a limit price on
    /// limit orders, a stop price on stop orders, no price where the type takes none.
    pub fn check_shape(
        order_type: OrderType,
        quantity: Quantity,
        price: Option<Price>,
        stop_price: Option<Price>,
    ) -> Result<(), ModelError> {
        if quantity.is_zero() {
            return Err(ModelError::invalid(
                "quantity",
                "must be greater than zero",
                quantity,
            ));
        }
        let needs_price = matches!(order_type, OrderType::Limit | OrderType::StopLimit);
        let needs_stop = matches!(order_type, OrderType::Stop | OrderType::StopLimit);
        match (needs_price, price) {
            (true, None) => {
                return Err(ModelError::invalid(
                    "price",
                    "required for this order type",
                    "null",
                ));
            }
            (false, Some(p)) => {
                return Err(ModelError::invalid(
                    "price",
                    "not allowed for this order type",
                    p,
                ));
            }
            _ => {}
        }
        match (needs_stop, stop_price) {
            (true, None) => Err(ModelError::invalid(
                "stop_price",
                "required for this order type",
                "null",
            )),
            (false, Some(p)) => Err(ModelError::invalid(
                "stop_price",
                "not allowed for this order type",
                p,
            )),
            _ => Ok(()),
        }
    }

    /// The quantity still working: what is left to fill while the order is open, nothing once
    /// it is done (filled, canceled, rejected, expired), as FIX's LeavesQty (151) reports it. An
    /// IOC that expired after a partial fill leaves nothing open, whatever it did not fill.
    pub fn leaves_quantity(&self) -> Quantity {
        if self.status.is_terminal() {
            return Quantity::ZERO;
        }
        Quantity::new(self.quantity.get() - self.filled_quantity.get()).unwrap_or(Quantity::ZERO)
    }

    /// The order's totals after one more fill of `qty` at `price`, given `notional`, the exact
    /// sum of price x quantity of its fills so far. The one place this arithmetic lives (the
    /// OMS and the blotter both use it).
    pub fn progress(
        &self,
        notional: rust_decimal::Decimal,
        qty: Quantity,
        price: Price,
    ) -> Result<FillProgress, FillProgressError> {
        let filled = self.filled_quantity.get() + qty.get();
        if filled > self.quantity.get() {
            return Err(FillProgressError::Overfill);
        }
        let notional = price
            .get()
            .checked_mul(qty.get())
            .and_then(|n| n.checked_add(notional))
            .ok_or(FillProgressError::Overflow)?;
        let avg = notional
            .checked_div(filled)
            .ok_or(FillProgressError::Overflow)?
            .round_dp_with_strategy(
                AVG_PRICE_DP,
                rust_decimal::RoundingStrategy::MidpointNearestEven,
            );
        let avg = Price::new(avg).map_err(|_| FillProgressError::Overflow)?;
        let filled = Quantity::new(filled).map_err(|_| FillProgressError::Overflow)?;
        let status = if filled == self.quantity {
            OrderStatus::Filled
        } else {
            OrderStatus::PartiallyFilled
        };
        Ok(FillProgress {
            filled,
            notional,
            avg,
            status,
        })
    }

    /// Takes the totals [`Order::progress`] computed, as of `ts`.
    pub fn apply_progress(&mut self, p: &FillProgress, ts: Timestamp) {
        self.filled_quantity = p.filled;
        self.avg_fill_price = Some(p.avg);
        self.status = p.status;
        self.updated_at = ts;
    }
}

/// Decimal places of [`Order::avg_fill_price`]. The average is the exact fill-weighted mean
/// `sum(price x qty) / sum(qty)` (the numerator is kept exactly per order, never re-derived
/// from a rounded average), rounded half-to-even to this many places. Twelve places is far
/// below any venue's tick, so the rounding never changes a displayed or booked price.
pub const AVG_PRICE_DP: u32 = 12;

/// An order's totals after a fill ([`Order::progress`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FillProgress {
    pub filled: Quantity,
    /// Exact sum of price x quantity over the order's fills.
    pub notional: rust_decimal::Decimal,
    pub avg: Price,
    pub status: OrderStatus,
}

/// Why a fill cannot be added to an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FillProgressError {
    /// The filled quantity would exceed the order quantity.
    Overfill,
    /// The notional or the average does not fit a decimal (absurd magnitudes only).
    Overflow,
}

/// One execution of (part of) an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fill {
    pub fill_id: FillId,
    pub order_id: OrderId,
    pub account: AccountId,
    pub instrument: InstrumentId,
    pub side: Side,
    pub quantity: Quantity,
    pub price: Price,
    /// Fee charged for this fill in the quote currency; negative for a rebate.
    pub fee: Money,
    pub liquidity: Liquidity,
    pub ts: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Symbol, Venue};
    use rust_decimal_macros::dec;

    fn order(
        t: OrderType,
        price: Option<Price>,
        stop: Option<Price>,
        qty: &str,
    ) -> Result<Order, ModelError> {
        Order::new(
            OrderId(1),
            ClientOrderId::new("c1").unwrap(),
            AccountId::new("a").unwrap(),
            InstrumentId::new(Venue::new("sim").unwrap(), Symbol::new("BTCUSDT").unwrap()),
            Side::Buy,
            t,
            TimeInForce::Gtc,
            Quantity::parse(qty).unwrap(),
            price,
            stop,
            Timestamp::from_secs(1),
        )
    }

    #[test]
    fn order_shape_is_checked() {
        let p = Some(Price::new(dec!(100)).unwrap());
        assert!(order(OrderType::Limit, p, None, "1").is_ok());
        assert_eq!(
            order(OrderType::Limit, None, None, "1")
                .unwrap_err()
                .field(),
            "price"
        );
        assert_eq!(
            order(OrderType::Market, p, None, "1").unwrap_err().field(),
            "price"
        );
        assert_eq!(
            order(OrderType::Stop, None, None, "1").unwrap_err().field(),
            "stop_price"
        );
        assert!(order(OrderType::StopLimit, p, p, "1").is_ok());
        assert_eq!(
            order(OrderType::Market, None, None, "0")
                .unwrap_err()
                .field(),
            "quantity"
        );
    }

    #[test]
    fn leaves_quantity_is_the_unfilled_rest_while_open_and_nothing_once_done() {
        let mut o = order(OrderType::Market, None, None, "2").unwrap();
        o.filled_quantity = Quantity::parse("0.5").unwrap();
        for (status, leaves) in [
            (OrderStatus::PendingNew, "1.5"),
            (OrderStatus::Accepted, "1.5"),
            (OrderStatus::PartiallyFilled, "1.5"),
            (OrderStatus::Filled, "0"),
            (OrderStatus::Canceled, "0"),
            (OrderStatus::Rejected, "0"),
            (OrderStatus::Expired, "0"),
        ] {
            o.status = status;
            assert_eq!(o.leaves_quantity().to_string(), leaves, "{status:?}");
        }
    }

    #[test]
    fn order_json_is_snake_case_with_exact_decimals() {
        let o = order(
            OrderType::Limit,
            Some(Price::parse("45000.0").unwrap()),
            None,
            "0.1",
        )
        .unwrap();
        let v = serde_json::to_value(&o).unwrap();
        assert_eq!(v["type"], "limit");
        assert_eq!(v["status"], "pending_new");
        assert_eq!(v["time_in_force"], "gtc");
        assert_eq!(v["price"], "45000");
        assert_eq!(v["quantity"], "0.1");
        let back: Order = serde_json::from_value(v).unwrap();
        assert_eq!(back, o);
    }
}
