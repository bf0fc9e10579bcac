use model::{AccountId, ClientOrderId, EventKind, FillId, ModelError, OrderId, OrderStatus};
use thiserror::Error;

/// Everything the OMS refuses, as data. [`OmsError::code`] is the stable machine-readable
/// reason the HTTP layer returns; the `Display` text is for people and may change.
///
/// The same enum serves commands (`cancel`, `accept`, ...) and [`crate::Oms::apply`]: a command
/// is refused for exactly the reason its event would be refused, because commands are checked
/// by the same transition function `apply` uses.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OmsError {
    /// The request's shape is invalid (no price on a limit order, zero quantity, ...).
    #[error("invalid order: {0}")]
    InvalidOrder(#[from] ModelError),
    /// No such order, or the order belongs to another account (the two are indistinguishable
    /// on purpose, so one account cannot probe another's order ids).
    #[error("order {0} not found")]
    OrderNotFound(OrderId),
    #[error("order {0} is already filled")]
    OrderAlreadyFilled(OrderId),
    #[error("order {0} is already canceled")]
    OrderAlreadyCanceled(OrderId),
    #[error("order {0} is already rejected")]
    OrderAlreadyRejected(OrderId),
    #[error("order {0} is already expired")]
    OrderAlreadyExpired(OrderId),
    /// A transition that the lifecycle does not allow from a non-terminal status
    /// (accepting an accepted order, filling an order the venue has not accepted, ...).
    #[error("order {order_id}: {event} is not allowed in status {from:?}")]
    IllegalTransition {
        order_id: OrderId,
        from: OrderStatus,
        event: &'static str,
    },
    /// Order ids are assigned in journal order and must strictly increase.
    #[error("order id {got} is not greater than the last order id {last}")]
    OrderIdNotIncreasing { got: OrderId, last: u64 },
    /// A second order with a client order id the account already used.
    #[error("account {account} already has client order id {client_order_id} (order {existing})")]
    DuplicateClientOrderId {
        account: AccountId,
        client_order_id: ClientOrderId,
        existing: OrderId,
    },
    /// An `order_submitted` event whose order is not a fresh pending_new order.
    #[error("order {order_id}: submitted order is not fresh: {reason}")]
    NotFresh {
        order_id: OrderId,
        reason: &'static str,
    },
    /// An event names the order with an account that does not own it.
    #[error("order {order_id} belongs to account {expected}, event says {got}")]
    AccountMismatch {
        order_id: OrderId,
        expected: AccountId,
        got: AccountId,
    },
    /// A fill that does not fit its order (other instrument or side, price through the limit,
    /// non-positive quantity, notional overflow).
    #[error("fill for order {order_id} does not match the order: {field}: {reason}")]
    FillMismatch {
        order_id: OrderId,
        field: &'static str,
        reason: String,
    },
    /// A fill that would take the filled quantity above the order quantity.
    #[error(
        "fill of {fill} on order {order_id} would overfill it (quantity {quantity}, already filled {filled})"
    )]
    Overfill {
        order_id: OrderId,
        quantity: model::Quantity,
        filled: model::Quantity,
        fill: model::Quantity,
    },
    /// The same fill id twice (a replayed or duplicated venue report).
    #[error("fill {0} was already applied")]
    DuplicateFill(FillId),
}

impl OmsError {
    /// Stable machine-readable code (snake_case), for the HTTP error contract and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            OmsError::InvalidOrder(_) => "invalid_order",
            OmsError::OrderNotFound(_) => "order_not_found",
            OmsError::OrderAlreadyFilled(_) => "order_already_filled",
            OmsError::OrderAlreadyCanceled(_) => "order_already_canceled",
            OmsError::OrderAlreadyRejected(_) => "order_already_rejected",
            OmsError::OrderAlreadyExpired(_) => "order_already_expired",
            OmsError::IllegalTransition { .. } => "illegal_transition",
            OmsError::OrderIdNotIncreasing { .. } => "order_id_not_increasing",
            OmsError::DuplicateClientOrderId { .. } => "duplicate_client_order_id",
            OmsError::NotFresh { .. } => "order_not_fresh",
            OmsError::AccountMismatch { .. } => "account_mismatch",
            OmsError::FillMismatch { .. } => "fill_mismatch",
            OmsError::Overfill { .. } => "overfill",
            OmsError::DuplicateFill(_) => "duplicate_fill",
        }
    }

    /// Every code [`OmsError::code`] can return, for generated docs and contract tests.
    pub const CODES: [&'static str; 14] = [
        "invalid_order",
        "order_not_found",
        "order_already_filled",
        "order_already_canceled",
        "order_already_rejected",
        "order_already_expired",
        "illegal_transition",
        "order_id_not_increasing",
        "duplicate_client_order_id",
        "order_not_fresh",
        "account_mismatch",
        "fill_mismatch",
        "overfill",
        "duplicate_fill",
    ];

    /// The error for touching an order that is in terminal status `status`.
    pub(crate) fn terminal(order_id: OrderId, status: OrderStatus) -> Option<OmsError> {
        match status {
            OrderStatus::Filled => Some(OmsError::OrderAlreadyFilled(order_id)),
            OrderStatus::Canceled => Some(OmsError::OrderAlreadyCanceled(order_id)),
            OrderStatus::Rejected => Some(OmsError::OrderAlreadyRejected(order_id)),
            OrderStatus::Expired => Some(OmsError::OrderAlreadyExpired(order_id)),
            OrderStatus::PendingNew | OrderStatus::Accepted | OrderStatus::PartiallyFilled => None,
        }
    }
}

pub(crate) fn kind_name(kind: EventKind) -> &'static str {
    kind.as_str()
}
