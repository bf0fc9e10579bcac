use serde::{Deserialize, Serialize};

use crate::{
    AccountId, Bar, BookDelta, BookSnapshot, Fill, FundingRate, InstrumentId, Order, OrderId,
    Quote, Timestamp, TradeTick,
};

/// Every fact the platform records. The journal stores these in sequence; each service rebuilds
/// its state by folding them. New facts get new variants; existing variants only gain optional
/// fields, so old journals stay readable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    // --- market data ---------------------------------------------------------------------
    Quote(Quote),
    Trade(TradeTick),
    BookSnapshot(BookSnapshot),
    BookDelta(BookDelta),
    Bar(Bar),
    FundingRate(FundingRate),

    // --- order lifecycle -------------------------------------------------------------------
    /// A new order entered the platform (status pending_new).
    OrderSubmitted {
        order: Order,
    },
    OrderAccepted {
        order_id: OrderId,
        account: AccountId,
        ts: Timestamp,
    },
    /// Refused by risk or the venue; `code` is a stable machine-readable reason.
    OrderRejected {
        order_id: OrderId,
        account: AccountId,
        code: String,
        message: String,
        ts: Timestamp,
    },
    OrderCanceled {
        order_id: OrderId,
        account: AccountId,
        reason: String,
        ts: Timestamp,
    },
    /// DAY orders at session end, IOC/FOK remainders.
    OrderExpired {
        order_id: OrderId,
        account: AccountId,
        reason: String,
        ts: Timestamp,
    },
    OrderFilled(Fill),
    /// A stop or stop-limit order's stop price was reached: from here on it executes (a stop
    /// as a market order, a stop-limit as a limit order). Journaled so that a replay knows
    /// which stops fired instead of re-deriving it from market data.
    OrderTriggered {
        order_id: OrderId,
        account: AccountId,
        ts: Timestamp,
    },

    // --- administration ------------------------------------------------------------------
    /// The engine reserved order and fill ids up to these values before using them. A restart
    /// continues after the last reservation, so an id given to an order or fill that a crash
    /// took back is never given to another one.
    IdsReserved {
        orders_through: u64,
        fills_through: u64,
        ts: Timestamp,
    },
    /// A configuration change made at run time (e.g. risk limits), journaled for audit.
    ConfigChanged {
        by: String,
        section: String,
        change: serde_json::Value,
        ts: Timestamp,
    },

    // --- surveillance --------------------------------------------------------------------
    /// An alert raised by the compliance scanner. Journaled, so a restart neither loses nor
    /// repeats it (`key` is stable across runs).
    ComplianceAlert {
        key: String,
        rule: String,
        alert: serde_json::Value,
        ts: Timestamp,
    },
    /// A compliance user acknowledged an alert.
    AlertAcknowledged {
        key: String,
        by: String,
        ts: Timestamp,
    },
}

/// The kind of an event, used for subjects, metrics labels and filtering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Quote,
    Trade,
    BookSnapshot,
    BookDelta,
    Bar,
    FundingRate,
    OrderSubmitted,
    OrderAccepted,
    OrderRejected,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderTriggered,
    IdsReserved,
    ConfigChanged,
    ComplianceAlert,
    AlertAcknowledged,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Quote => "quote",
            EventKind::Trade => "trade",
            EventKind::BookSnapshot => "book_snapshot",
            EventKind::BookDelta => "book_delta",
            EventKind::Bar => "bar",
            EventKind::FundingRate => "funding_rate",
            EventKind::OrderSubmitted => "order_submitted",
            EventKind::OrderAccepted => "order_accepted",
            EventKind::OrderRejected => "order_rejected",
            EventKind::OrderCanceled => "order_canceled",
            EventKind::OrderExpired => "order_expired",
            EventKind::OrderFilled => "order_filled",
            EventKind::OrderTriggered => "order_triggered",
            EventKind::IdsReserved => "ids_reserved",
            EventKind::ConfigChanged => "config_changed",
            EventKind::ComplianceAlert => "compliance_alert",
            EventKind::AlertAcknowledged => "alert_acknowledged",
        }
    }
}

/// NATS subjects treat `.` as a separator and `*`, `>` and spaces as special.
fn token(s: &str) -> String {
    s.replace(['.', '*', '>', ' '], "_")
}

impl Event {
    pub fn kind(&self) -> EventKind {
        match self {
            Event::Quote(_) => EventKind::Quote,
            Event::Trade(_) => EventKind::Trade,
            Event::BookSnapshot(_) => EventKind::BookSnapshot,
            Event::BookDelta(_) => EventKind::BookDelta,
            Event::Bar(_) => EventKind::Bar,
            Event::FundingRate(_) => EventKind::FundingRate,
            Event::OrderSubmitted { .. } => EventKind::OrderSubmitted,
            Event::OrderAccepted { .. } => EventKind::OrderAccepted,
            Event::OrderRejected { .. } => EventKind::OrderRejected,
            Event::OrderCanceled { .. } => EventKind::OrderCanceled,
            Event::OrderExpired { .. } => EventKind::OrderExpired,
            Event::OrderFilled(_) => EventKind::OrderFilled,
            Event::OrderTriggered { .. } => EventKind::OrderTriggered,
            Event::IdsReserved { .. } => EventKind::IdsReserved,
            Event::ConfigChanged { .. } => EventKind::ConfigChanged,
            Event::ComplianceAlert { .. } => EventKind::ComplianceAlert,
            Event::AlertAcknowledged { .. } => EventKind::AlertAcknowledged,
        }
    }

    /// The time the fact happened (exchange time for market data, platform time otherwise).
    pub fn ts(&self) -> Timestamp {
        match self {
            Event::Quote(q) => q.ts,
            Event::Trade(t) => t.ts,
            Event::BookSnapshot(b) => b.ts,
            Event::BookDelta(b) => b.ts,
            Event::Bar(b) => b.ts,
            Event::FundingRate(f) => f.ts,
            Event::OrderSubmitted { order } => order.created_at,
            Event::OrderAccepted { ts, .. }
            | Event::OrderRejected { ts, .. }
            | Event::OrderCanceled { ts, .. }
            | Event::OrderExpired { ts, .. }
            | Event::OrderTriggered { ts, .. }
            | Event::IdsReserved { ts, .. }
            | Event::ConfigChanged { ts, .. }
            | Event::ComplianceAlert { ts, .. }
            | Event::AlertAcknowledged { ts, .. } => *ts,
            Event::OrderFilled(f) => f.ts,
        }
    }

    /// The instrument a market-data event is about.
    pub fn instrument(&self) -> Option<&InstrumentId> {
        match self {
            Event::Quote(q) => Some(&q.instrument),
            Event::Trade(t) => Some(&t.instrument),
            Event::BookSnapshot(b) => Some(&b.instrument),
            Event::BookDelta(b) => Some(&b.instrument),
            Event::Bar(b) => Some(&b.instrument),
            Event::FundingRate(f) => Some(&f.instrument),
            Event::OrderSubmitted { order } => Some(&order.instrument),
            Event::OrderFilled(f) => Some(&f.instrument),
            _ => None,
        }
    }

    /// The bus subject this event is published on:
    /// `md.<kind>.<venue>.<symbol>`, `orders.<account>`, `fills.<account>`, `admin.<section>`.
    pub fn subject(&self) -> String {
        let md = |kind: &str, i: &InstrumentId| {
            format!(
                "md.{kind}.{}.{}",
                token(i.venue.as_str()),
                token(i.symbol.as_str())
            )
        };
        match self {
            Event::Quote(q) => md("quote", &q.instrument),
            Event::Trade(t) => md("trade", &t.instrument),
            Event::BookSnapshot(b) => md("book", &b.instrument),
            Event::BookDelta(b) => md("book", &b.instrument),
            Event::Bar(b) => md("bar", &b.instrument),
            Event::FundingRate(f) => md("funding", &f.instrument),
            Event::OrderSubmitted { order } => format!("orders.{}", token(order.account.as_str())),
            Event::OrderAccepted { account, .. }
            | Event::OrderRejected { account, .. }
            | Event::OrderCanceled { account, .. }
            | Event::OrderExpired { account, .. }
            | Event::OrderTriggered { account, .. } => {
                format!("orders.{}", token(account.as_str()))
            }
            Event::OrderFilled(f) => format!("fills.{}", token(f.account.as_str())),
            Event::ConfigChanged { section, .. } => format!("admin.{}", token(section)),
            Event::IdsReserved { .. } => "admin.ids".into(),
            Event::ComplianceAlert { .. } | Event::AlertAcknowledged { .. } => {
                "alerts.compliance".into()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Price, Quantity, Symbol, Venue};

    fn quote() -> Event {
        Event::Quote(Quote {
            instrument: InstrumentId::new(
                Venue::new("binance").unwrap(),
                Symbol::new("BTCUSDT").unwrap(),
            ),
            bid: Price::parse("100.5").unwrap(),
            bid_size: Quantity::parse("2").unwrap(),
            ask: Price::parse("100.6").unwrap(),
            ask_size: Quantity::parse("3").unwrap(),
            ts: Timestamp::from_millis(1_700_000_000_000),
        })
    }

    #[test]
    fn events_serialize_with_a_snake_case_type_tag() {
        let json = serde_json::to_string(&quote()).unwrap();
        assert_eq!(
            json,
            r#"{"type":"quote","instrument":{"venue":"binance","symbol":"BTCUSDT"},"bid":"100.5","bid_size":"2","ask":"100.6","ask_size":"3","ts":"2023-11-14T22:13:20.000000000Z"}"#
        );
        assert_eq!(serde_json::from_str::<Event>(&json).unwrap(), quote());
    }

    #[test]
    fn subjects_follow_the_bus_naming() {
        assert_eq!(quote().subject(), "md.quote.binance.BTCUSDT");
        assert_eq!(quote().kind().as_str(), "quote");
    }

    #[test]
    fn a_negative_quantity_inside_an_event_is_refused() {
        let json = r#"{"type":"quote","instrument":{"venue":"binance","symbol":"BTCUSDT"},"bid":"100.5","bid_size":"-2","ask":"100.6","ask_size":"3","ts":"2023-11-14T22:13:20Z"}"#;
        let err = serde_json::from_str::<Event>(json).unwrap_err().to_string();
        assert!(err.contains("quantity"), "{err}");
    }
}
