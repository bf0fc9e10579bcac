//! Bybit wire types: v5 public WebSocket and the legacy (pre-v5, retired) `realtime` /
//! `realtime_public` feeds, borrowed from the message text.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::common::{Level, Num};

/// Enough of any object to route it.
#[derive(Deserialize)]
pub(crate) struct Peek<'a> {
    #[serde(borrow)]
    pub topic: Option<&'a str>,
    pub success: Option<bool>,
    #[serde(borrow)]
    pub ret_msg: Option<&'a RawValue>,
    #[serde(borrow)]
    pub op: Option<&'a str>,
}

/// Any topic message: the payload stays raw until the topic says what it is.
#[derive(Deserialize)]
pub(crate) struct Envelope<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Option<&'a str>,
    /// v5: milliseconds.
    #[serde(borrow)]
    pub ts: Option<Num<'a>>,
    #[serde(borrow)]
    pub data: &'a RawValue,
    /// Legacy: microseconds, as a string (USDT perp) or a number (inverse).
    #[serde(borrow)]
    pub timestamp_e6: Option<Num<'a>>,
    #[serde(borrow)]
    pub cross_seq: Option<Num<'a>>,
}

// ---- v5 -------------------------------------------------------------------------------------

/// `publicTrade.<symbol>` entry. `S` is the taker side.
#[derive(Deserialize)]
pub(crate) struct Trade<'a> {
    #[serde(rename = "T")]
    pub time: i64,
    #[serde(borrow)]
    pub s: &'a str,
    #[serde(rename = "S", borrow)]
    pub side: &'a str,
    #[serde(borrow)]
    pub v: Num<'a>,
    #[serde(borrow)]
    pub p: Num<'a>,
    #[serde(borrow)]
    pub i: &'a str,
}

/// `orderbook.<depth>.<symbol>` payload.
#[derive(Deserialize)]
pub(crate) struct Book<'a> {
    #[serde(borrow)]
    pub s: &'a str,
    #[serde(borrow)]
    pub b: Vec<Level<'a>>,
    #[serde(borrow)]
    pub a: Vec<Level<'a>>,
    pub u: Option<u64>,
}

/// `tickers.<symbol>` payload. Deltas carry only the fields that changed.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Ticker<'a> {
    #[serde(borrow)]
    pub symbol: &'a str,
    #[serde(rename = "bid1Price", borrow)]
    pub bid1_price: Option<Num<'a>>,
    #[serde(rename = "bid1Size", borrow)]
    pub bid1_size: Option<Num<'a>>,
    #[serde(rename = "ask1Price", borrow)]
    pub ask1_price: Option<Num<'a>>,
    #[serde(rename = "ask1Size", borrow)]
    pub ask1_size: Option<Num<'a>>,
    #[serde(borrow)]
    pub funding_rate: Option<Num<'a>>,
    #[serde(borrow)]
    pub next_funding_time: Option<Num<'a>>,
    #[serde(borrow)]
    pub mark_price: Option<Num<'a>>,
}

/// `kline.<interval>.<symbol>` entry.
#[derive(Deserialize)]
pub(crate) struct Kline<'a> {
    pub start: i64,
    #[serde(borrow)]
    pub interval: &'a str,
    #[serde(borrow)]
    pub open: Num<'a>,
    #[serde(borrow)]
    pub close: Num<'a>,
    #[serde(borrow)]
    pub high: Num<'a>,
    #[serde(borrow)]
    pub low: Num<'a>,
    #[serde(borrow)]
    pub volume: Num<'a>,
    pub confirm: bool,
    pub timestamp: i64,
}

// ---- legacy ---------------------------------------------------------------------------------

/// `trade.<symbol>` entry; `side` is the taker side.
#[derive(Deserialize)]
pub(crate) struct LegacyTrade<'a> {
    #[serde(borrow)]
    pub symbol: &'a str,
    #[serde(borrow)]
    pub side: &'a str,
    #[serde(borrow)]
    pub size: Num<'a>,
    #[serde(borrow)]
    pub price: Num<'a>,
    #[serde(borrow)]
    pub trade_time_ms: Num<'a>,
    #[serde(borrow)]
    pub trade_id: &'a str,
}

/// An `orderBookL2_25` entry; deletes carry no size.
#[derive(Deserialize)]
pub(crate) struct LegacyLevel<'a> {
    #[serde(borrow)]
    pub price: Num<'a>,
    #[serde(borrow)]
    pub symbol: &'a str,
    #[serde(borrow)]
    pub side: &'a str,
    #[serde(borrow)]
    pub size: Option<Num<'a>>,
}

/// USDT-perp snapshot payload `{"order_book":[...]}` (inverse sends the bare list).
#[derive(Deserialize)]
pub(crate) struct LegacySnapshot<'a> {
    #[serde(borrow)]
    pub order_book: Vec<LegacyLevel<'a>>,
}

#[derive(Deserialize)]
pub(crate) struct LegacyDelta<'a> {
    #[serde(borrow, default)]
    pub delete: Vec<LegacyLevel<'a>>,
    #[serde(borrow, default)]
    pub update: Vec<LegacyLevel<'a>>,
    #[serde(borrow, default)]
    pub insert: Vec<LegacyLevel<'a>>,
}
