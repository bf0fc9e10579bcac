use model::{
    AccountId, ClientOrderId, InstrumentId, Order, OrderId, OrderType, Price, Quantity, Side,
    TimeInForce,
};

use crate::OmsError;

/// A request for a new order, as the API receives it (before it has an order id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    pub account: AccountId,
    /// The client's idempotency key. `None` lets the OMS generate one (`o-<order_id>`).
    pub client_order_id: Option<ClientOrderId>,
    pub instrument: InstrumentId,
    pub side: Side,
    pub order_type: OrderType,
    pub time_in_force: TimeInForce,
    pub quantity: Quantity,
    pub price: Option<Price>,
    pub stop_price: Option<Price>,
    /// Set after [`crate::Submit::DuplicateOf`] named this order and the caller found that the
    /// stored order carries another account or client order id (two ids sharing a digest):
    /// the request is then a new order.
    pub not_a_duplicate_of: Option<OrderId>,
}

impl NewOrder {
    /// A limit order with GTC and a generated client order id: the common case in tests.
    pub fn limit(
        account: AccountId,
        instrument: InstrumentId,
        side: Side,
        quantity: Quantity,
        price: Price,
    ) -> NewOrder {
        NewOrder {
            account,
            client_order_id: None,
            instrument,
            side,
            order_type: OrderType::Limit,
            time_in_force: TimeInForce::Gtc,
            quantity,
            price: Some(price),
            stop_price: None,
            not_a_duplicate_of: None,
        }
    }

    /// A market order with IOC (what a market order effectively is) and a generated id.
    pub fn market(
        account: AccountId,
        instrument: InstrumentId,
        side: Side,
        quantity: Quantity,
    ) -> NewOrder {
        NewOrder {
            account,
            client_order_id: None,
            instrument,
            side,
            order_type: OrderType::Market,
            time_in_force: TimeInForce::Ioc,
            quantity,
            price: None,
            stop_price: None,
            not_a_duplicate_of: None,
        }
    }

    pub fn with_client_order_id(mut self, id: ClientOrderId) -> NewOrder {
        self.client_order_id = Some(id);
        self
    }

    pub fn with_time_in_force(mut self, tif: TimeInForce) -> NewOrder {
        self.time_in_force = tif;
        self
    }

    /// The shape rules every order obeys ([`Order::check_shape`]).
    pub fn validate(&self) -> Result<(), OmsError> {
        Order::check_shape(self.order_type, self.quantity, self.price, self.stop_price)?;
        Ok(())
    }
}
