//! Kraken spot wire types: WebSocket v1 (array messages), WebSocket v2 (`channel` objects)
//! and REST bodies, borrowed from the message text.

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::common::{Num, drain, next};

/// Enough of any object to route it.
#[derive(Deserialize)]
pub(crate) struct Peek<'a> {
    /// v1 control: `heartbeat`, `systemStatus`, `subscriptionStatus`, `pong`.
    #[serde(borrow)]
    pub event: Option<&'a str>,
    #[serde(borrow)]
    pub status: Option<&'a str>,
    #[serde(rename = "errorMessage", borrow)]
    pub error_message: Option<&'a RawValue>,
    /// v2 data and status.
    #[serde(borrow)]
    pub channel: Option<&'a str>,
    /// v2 request replies.
    #[serde(borrow)]
    pub method: Option<&'a str>,
    pub success: Option<bool>,
    /// REST error list, or the v2 reply error string.
    #[serde(borrow)]
    pub error: Option<&'a RawValue>,
    #[serde(borrow)]
    pub result: Option<&'a RawValue>,
}

/// v1 `[price, volume, time, side, orderType, misc]`; REST trades add a trade id.
pub(crate) struct TradeRow<'a> {
    pub price: Num<'a>,
    pub volume: Num<'a>,
    pub time: Num<'a>,
    pub side: &'a str,
    pub trade_id: Option<u64>,
}

impl<'de: 'a, 'a> Deserialize<'de> for TradeRow<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = TradeRow<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a trade row [price, volume, time, side, type, misc, (id)]")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<TradeRow<'a>, A::Error> {
                let price = next(&mut s, 0, &self)?;
                let volume = next(&mut s, 1, &self)?;
                let time = next(&mut s, 2, &self)?;
                let side = next(&mut s, 3, &self)?;
                let _order_type: IgnoredAny = next(&mut s, 4, &self)?;
                let _misc: IgnoredAny = next(&mut s, 5, &self)?;
                let trade_id = s.next_element()?;
                drain(&mut s)?;
                Ok(TradeRow {
                    price,
                    volume,
                    time,
                    side,
                    trade_id,
                })
            }
        }
        d.deserialize_seq(V(PhantomData))
    }
}

/// A book level `[price, volume, timestamp, ("r")]` (v1 WS; REST has an integer timestamp).
pub(crate) struct BookRow<'a> {
    pub price: Num<'a>,
    pub volume: Num<'a>,
    pub time: Num<'a>,
}

impl<'de: 'a, 'a> Deserialize<'de> for BookRow<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = BookRow<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a book level [price, volume, timestamp, ...]")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<BookRow<'a>, A::Error> {
                let row = BookRow {
                    price: next(&mut s, 0, &self)?,
                    volume: next(&mut s, 1, &self)?,
                    time: next(&mut s, 2, &self)?,
                };
                drain(&mut s)?; // the "r" (republish) flag changes nothing for a delta
                Ok(row)
            }
        }
        d.deserialize_seq(V(PhantomData))
    }
}

/// One object of a v1 book message: a snapshot (`as`/`bs`) or an update (`a`/`b`, `c`).
#[derive(Deserialize)]
pub(crate) struct BookPart<'a> {
    #[serde(rename = "as", borrow)]
    pub snapshot_asks: Option<Vec<BookRow<'a>>>,
    #[serde(rename = "bs", borrow)]
    pub snapshot_bids: Option<Vec<BookRow<'a>>>,
    #[serde(borrow)]
    pub a: Option<Vec<BookRow<'a>>>,
    #[serde(borrow)]
    pub b: Option<Vec<BookRow<'a>>>,
}

/// `[price, wholeLotVolume, lotVolume]` (v1 ticker and REST Ticker `a` / `b`).
pub(crate) struct PriceLots<'a> {
    pub price: Num<'a>,
    pub volume: Num<'a>,
}

impl<'de: 'a, 'a> Deserialize<'de> for PriceLots<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = PriceLots<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("[price, wholeLotVolume, lotVolume]")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<PriceLots<'a>, A::Error> {
                let price = next(&mut s, 0, &self)?;
                let _whole: IgnoredAny = next(&mut s, 1, &self)?;
                let volume = next(&mut s, 2, &self)?;
                drain(&mut s)?;
                Ok(PriceLots { price, volume })
            }
        }
        d.deserialize_seq(V(PhantomData))
    }
}

#[derive(Deserialize)]
pub(crate) struct Ticker<'a> {
    #[serde(borrow)]
    pub a: PriceLots<'a>,
    #[serde(borrow)]
    pub b: PriceLots<'a>,
}

/// v1 spread `[bid, ask, timestamp, bidVolume, askVolume]`.
pub(crate) struct Spread<'a> {
    pub bid: Num<'a>,
    pub ask: Num<'a>,
    pub time: Num<'a>,
    pub bid_volume: Num<'a>,
    pub ask_volume: Num<'a>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Spread<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Spread<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("[bid, ask, timestamp, bidVolume, askVolume]")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Spread<'a>, A::Error> {
                let row = Spread {
                    bid: next(&mut s, 0, &self)?,
                    ask: next(&mut s, 1, &self)?,
                    time: next(&mut s, 2, &self)?,
                    bid_volume: next(&mut s, 3, &self)?,
                    ask_volume: next(&mut s, 4, &self)?,
                };
                drain(&mut s)?;
                Ok(row)
            }
        }
        d.deserialize_seq(V(PhantomData))
    }
}

/// v1 ohlc `[time, etime, open, high, low, close, vwap, volume, count]` and REST OHLC
/// `[time, open, high, low, close, vwap, volume, count]`.
pub(crate) struct OhlcRow<'a> {
    /// v1: the end time of the bar; REST: the start time.
    pub time: Num<'a>,
    pub open: Num<'a>,
    pub high: Num<'a>,
    pub low: Num<'a>,
    pub close: Num<'a>,
    pub volume: Num<'a>,
}

fn ohlc_row<'de: 'a, 'a, A: SeqAccess<'de>>(
    mut s: A,
    with_end_time: bool,
    exp: &dyn serde::de::Expected,
) -> Result<OhlcRow<'a>, A::Error> {
    let mut i = 0;
    let mut n = |s: &mut A| -> Result<Num<'a>, A::Error> {
        i += 1;
        next(s, i - 1, exp)
    };
    let first = n(&mut s)?;
    let time = if with_end_time { n(&mut s)? } else { first };
    let open = n(&mut s)?;
    let high = n(&mut s)?;
    let low = n(&mut s)?;
    let close = n(&mut s)?;
    let _vwap = n(&mut s)?;
    let volume = n(&mut s)?;
    drain(&mut s)?;
    Ok(OhlcRow {
        time,
        open,
        high,
        low,
        close,
        volume,
    })
}

/// REST OHLC row (start time first).
pub(crate) struct RestOhlcRow<'a>(pub OhlcRow<'a>);
/// v1 WS ohlc payload (end time second).
pub(crate) struct WsOhlcRow<'a>(pub OhlcRow<'a>);

macro_rules! ohlc_impl {
    ($t:ident, $end:expr, $what:literal) => {
        impl<'de: 'a, 'a> Deserialize<'de> for $t<'a> {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V<'a>(PhantomData<&'a ()>);
                impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
                    type Value = $t<'a>;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str($what)
                    }
                    fn visit_seq<A: SeqAccess<'de>>(self, s: A) -> Result<$t<'a>, A::Error> {
                        Ok($t(ohlc_row(s, $end, &self)?))
                    }
                }
                d.deserialize_seq(V(PhantomData))
            }
        }
    };
}
ohlc_impl!(
    RestOhlcRow,
    false,
    "[time, open, high, low, close, vwap, volume, count]"
);
ohlc_impl!(
    WsOhlcRow,
    true,
    "[time, etime, open, high, low, close, vwap, volume, count]"
);

/// REST Depth result value.
#[derive(Deserialize)]
pub(crate) struct RestDepth<'a> {
    #[serde(borrow)]
    pub asks: Vec<BookRow<'a>>,
    #[serde(borrow)]
    pub bids: Vec<BookRow<'a>>,
}

// ---- WebSocket v2 -------------------------------------------------------------------------

#[derive(Deserialize)]
pub(crate) struct V2Envelope<'a> {
    #[serde(borrow)]
    pub channel: &'a str,
    #[serde(rename = "type", borrow)]
    pub kind: Option<&'a str>,
    #[serde(borrow)]
    pub data: Option<&'a RawValue>,
}

#[derive(Deserialize)]
pub(crate) struct V2Trade<'a> {
    #[serde(borrow)]
    pub symbol: &'a str,
    #[serde(borrow)]
    pub side: &'a str,
    #[serde(borrow)]
    pub price: Num<'a>,
    #[serde(borrow)]
    pub qty: Num<'a>,
    #[serde(borrow)]
    pub trade_id: Num<'a>,
    #[serde(borrow)]
    pub timestamp: &'a str,
}

#[derive(Deserialize)]
pub(crate) struct V2Ticker<'a> {
    #[serde(borrow)]
    pub symbol: &'a str,
    #[serde(borrow)]
    pub bid: Num<'a>,
    #[serde(borrow)]
    pub bid_qty: Num<'a>,
    #[serde(borrow)]
    pub ask: Num<'a>,
    #[serde(borrow)]
    pub ask_qty: Num<'a>,
    #[serde(borrow)]
    pub timestamp: Option<&'a str>,
}

#[derive(Deserialize)]
pub(crate) struct V2Level<'a> {
    #[serde(borrow)]
    pub price: Num<'a>,
    #[serde(borrow)]
    pub qty: Num<'a>,
}

#[derive(Deserialize)]
pub(crate) struct V2Book<'a> {
    #[serde(borrow)]
    pub symbol: &'a str,
    #[serde(borrow, default)]
    pub bids: Vec<V2Level<'a>>,
    #[serde(borrow, default)]
    pub asks: Vec<V2Level<'a>>,
    #[serde(borrow)]
    pub timestamp: Option<&'a str>,
}

#[derive(Deserialize)]
pub(crate) struct V2Ohlc<'a> {
    #[serde(borrow)]
    pub symbol: &'a str,
    #[serde(borrow)]
    pub open: Num<'a>,
    #[serde(borrow)]
    pub high: Num<'a>,
    #[serde(borrow)]
    pub low: Num<'a>,
    #[serde(borrow)]
    pub close: Num<'a>,
    #[serde(borrow)]
    pub volume: Num<'a>,
    #[serde(borrow)]
    pub interval_begin: &'a str,
    /// Minutes.
    pub interval: i64,
    #[serde(borrow)]
    pub timestamp: Option<&'a str>,
}
