//! Binance spot and USD-M futures wire types (WebSocket streams and REST bodies), borrowed
//! from the message text.

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::common::{Level, Num, drain, next};

/// Combined-stream wrapper `{"stream":"btcusdt@trade","data":{...}}`; the stream name is
/// not needed when the event carries its symbol.
#[derive(Deserialize)]
pub(crate) struct Combined<T> {
    pub data: T,
}

/// `<symbol>@trade`.
#[derive(Deserialize)]
pub(crate) struct Trade<'a> {
    #[serde(borrow)]
    pub s: &'a str,
    pub t: u64,
    #[serde(borrow)]
    pub p: Num<'a>,
    #[serde(borrow)]
    pub q: Num<'a>,
    /// Trade time.
    #[serde(rename = "T")]
    pub trade_time: i64,
    /// Buyer is the maker, i.e. the seller was the aggressor.
    pub m: bool,
}

/// `<symbol>@aggTrade`.
#[derive(Deserialize)]
pub(crate) struct AggTrade<'a> {
    #[serde(borrow)]
    pub s: &'a str,
    pub a: u64,
    #[serde(borrow)]
    pub p: Num<'a>,
    #[serde(borrow)]
    pub q: Num<'a>,
    #[serde(rename = "T")]
    pub trade_time: i64,
    pub m: bool,
}

/// `<symbol>@bookTicker`. Spot has no times; futures add `E` and `T`.
#[derive(Deserialize)]
pub(crate) struct BookTicker<'a> {
    #[serde(borrow)]
    pub s: &'a str,
    #[serde(borrow)]
    pub b: Num<'a>,
    #[serde(rename = "B", borrow)]
    pub bid_qty: Num<'a>,
    #[serde(borrow)]
    pub a: Num<'a>,
    #[serde(rename = "A", borrow)]
    pub ask_qty: Num<'a>,
    #[serde(rename = "E")]
    pub event_time: Option<i64>,
    #[serde(rename = "T")]
    pub transaction_time: Option<i64>,
}

/// `<symbol>@depth` / `@depth@100ms` diff. Futures add `T` and `pu`.
#[derive(Deserialize)]
pub(crate) struct DepthUpdate<'a> {
    #[serde(borrow)]
    pub s: &'a str,
    #[serde(rename = "E")]
    pub event_time: i64,
    #[serde(rename = "T")]
    pub transaction_time: Option<i64>,
    #[serde(rename = "U")]
    pub first_update_id: u64,
    pub u: u64,
    #[serde(borrow)]
    pub b: Vec<Level<'a>>,
    #[serde(borrow)]
    pub a: Vec<Level<'a>>,
}

/// `<symbol>@kline_<interval>`.
#[derive(Deserialize)]
pub(crate) struct KlineEvent<'a> {
    #[serde(rename = "E")]
    pub event_time: i64,
    #[serde(borrow)]
    pub s: &'a str,
    #[serde(borrow)]
    pub k: Kline<'a>,
}

#[derive(Deserialize)]
pub(crate) struct Kline<'a> {
    pub t: i64,
    #[serde(borrow)]
    pub i: &'a str,
    #[serde(borrow)]
    pub o: Num<'a>,
    #[serde(borrow)]
    pub h: Num<'a>,
    #[serde(borrow)]
    pub l: Num<'a>,
    #[serde(borrow)]
    pub c: Num<'a>,
    #[serde(borrow)]
    pub v: Num<'a>,
    pub x: bool,
}

/// Futures `<symbol>@markPrice`: mark price and the current funding rate.
#[derive(Deserialize)]
pub(crate) struct MarkPrice<'a> {
    #[serde(rename = "E")]
    pub event_time: i64,
    #[serde(borrow)]
    pub s: &'a str,
    #[serde(borrow)]
    pub p: Num<'a>,
    /// Empty for instruments without funding.
    #[serde(borrow)]
    pub r: Option<&'a str>,
    /// Next funding time.
    #[serde(rename = "T")]
    pub next_funding: Option<i64>,
}

/// REST `/depth` body and the partial-depth WS stream (`@depth5`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DepthSnapshot<'a> {
    pub last_update_id: u64,
    #[serde(rename = "T")]
    pub transaction_time: Option<i64>,
    #[serde(rename = "E")]
    pub event_time: Option<i64>,
    #[serde(borrow)]
    pub bids: Vec<Level<'a>>,
    #[serde(borrow)]
    pub asks: Vec<Level<'a>>,
}

/// REST `/ticker/bookTicker`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RestBookTicker<'a> {
    #[serde(borrow)]
    pub symbol: &'a str,
    #[serde(borrow)]
    pub bid_price: Num<'a>,
    #[serde(borrow)]
    pub bid_qty: Num<'a>,
    #[serde(borrow)]
    pub ask_price: Num<'a>,
    #[serde(borrow)]
    pub ask_qty: Num<'a>,
    pub time: Option<i64>,
}

/// One entry of REST `/trades`, `/historicalTrades` (`id`, `price`, ...) or `/aggTrades`
/// (`a`, `p`, ...). The two layouts use disjoint keys, so one struct reads both.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RestTrade<'a> {
    pub id: Option<u64>,
    #[serde(borrow)]
    pub price: Option<Num<'a>>,
    #[serde(borrow)]
    pub qty: Option<Num<'a>>,
    pub time: Option<i64>,
    pub is_buyer_maker: Option<bool>,
    #[serde(rename = "a")]
    pub agg_id: Option<u64>,
    #[serde(rename = "p", borrow)]
    pub agg_price: Option<Num<'a>>,
    #[serde(rename = "q", borrow)]
    pub agg_qty: Option<Num<'a>>,
    #[serde(rename = "T")]
    pub agg_time: Option<i64>,
    #[serde(rename = "m")]
    pub agg_buyer_maker: Option<bool>,
}

/// One REST `/klines` row: `[open time, o, h, l, c, volume, close time, ...]`.
pub(crate) struct KlineRow<'a> {
    pub open_time: i64,
    pub o: Num<'a>,
    pub h: Num<'a>,
    pub l: Num<'a>,
    pub c: Num<'a>,
    pub v: Num<'a>,
    pub close_time: i64,
}

impl<'de: 'a, 'a> Deserialize<'de> for KlineRow<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = KlineRow<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "a kline row [openTime, open, high, low, close, volume, closeTime, ...]",
                )
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<KlineRow<'a>, A::Error> {
                let row = KlineRow {
                    open_time: next(&mut s, 0, &self)?,
                    o: next(&mut s, 1, &self)?,
                    h: next(&mut s, 2, &self)?,
                    l: next(&mut s, 3, &self)?,
                    c: next(&mut s, 4, &self)?,
                    v: next(&mut s, 5, &self)?,
                    close_time: next(&mut s, 6, &self)?,
                };
                drain(&mut s)?;
                Ok(row)
            }
        }
        d.deserialize_seq(V(PhantomData))
    }
}

/// Enough of an unknown object to route it.
#[derive(Deserialize)]
pub(crate) struct Peek<'a> {
    #[serde(borrow)]
    pub stream: Option<&'a str>,
    #[serde(borrow)]
    pub data: Option<&'a RawValue>,
    #[serde(borrow)]
    pub e: Option<&'a str>,
    pub id: Option<IgnoredAny>,
    pub code: Option<IgnoredAny>,
    #[serde(borrow)]
    pub msg: Option<&'a RawValue>,
    #[serde(borrow)]
    pub error: Option<&'a RawValue>,
    #[serde(rename = "lastUpdateId")]
    pub last_update_id: Option<IgnoredAny>,
    #[serde(rename = "bidPrice")]
    pub bid_price: Option<IgnoredAny>,
    #[serde(rename = "B")]
    pub big_b: Option<IgnoredAny>,
}
