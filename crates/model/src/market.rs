use serde::{Deserialize, Serialize};

use crate::{Decimal, InstrumentId, Price, Quantity, Side, Timestamp};

/// Best bid and offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    pub instrument: InstrumentId,
    pub bid: Price,
    pub bid_size: Quantity,
    pub ask: Price,
    pub ask_size: Quantity,
    /// Exchange time when the venue sends one, otherwise receive time.
    pub ts: Timestamp,
}

impl Quote {
    /// (bid + ask) / 2, exact.
    pub fn mid(&self) -> Decimal {
        (self.bid.get() + self.ask.get()) / Decimal::TWO
    }
}

/// One print on the tape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TradeTick {
    pub instrument: InstrumentId,
    pub price: Price,
    pub quantity: Quantity,
    /// The side of the taker (the aggressor), when the venue tells.
    pub aggressor: Option<Side>,
    pub trade_id: String,
    pub ts: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BookSide {
    Bid,
    Ask,
}

/// A price level. In a [`BookDelta`] a zero quantity removes the level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookLevel {
    pub price: Price,
    pub quantity: Quantity,
}

/// A full order book: bids best (highest) first, asks best (lowest) first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookSnapshot {
    pub instrument: InstrumentId,
    pub bids: Vec<BookLevel>,
    pub asks: Vec<BookLevel>,
    /// The venue's update id / sequence, when it has one.
    pub sequence: Option<u64>,
    pub ts: Timestamp,
}

/// Changed levels since the previous book state; quantity zero deletes a level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookDelta {
    pub instrument: InstrumentId,
    pub bids: Vec<BookLevel>,
    pub asks: Vec<BookLevel>,
    /// First and last venue update id covered by this delta, when the venue has them.
    pub first_sequence: Option<u64>,
    pub sequence: Option<u64>,
    pub ts: Timestamp,
}

/// An OHLCV candle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bar {
    pub instrument: InstrumentId,
    /// Bar length as the venue names it (`1m`, `1h`, `1d`).
    pub interval: String,
    pub open: Price,
    pub high: Price,
    pub low: Price,
    pub close: Price,
    pub volume: Quantity,
    /// Bar open time.
    pub start: Timestamp,
    /// Whether the bar is final (a live kline may still change).
    pub closed: bool,
    pub ts: Timestamp,
}

/// A perpetual swap's funding rate (a fraction per funding interval; may be negative).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FundingRate {
    pub instrument: InstrumentId,
    pub rate: Decimal,
    pub mark_price: Option<Price>,
    pub next_funding: Option<Timestamp>,
    pub ts: Timestamp,
}
