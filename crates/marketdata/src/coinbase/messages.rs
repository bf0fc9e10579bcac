//! Coinbase wire types: Exchange (ex Pro) WebSocket feed, Advanced Trade WebSocket and the
//! Advanced Trade REST bodies, borrowed from the message text.

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::common::{Level, Num, drain, next};

/// Enough of any object to route it.
#[derive(Deserialize)]
pub(crate) struct Peek<'a> {
    /// Exchange feed message type.
    #[serde(rename = "type", borrow)]
    pub kind: Option<&'a str>,
    /// Advanced Trade channel.
    #[serde(borrow)]
    pub channel: Option<&'a str>,
    #[serde(borrow)]
    pub message: Option<&'a RawValue>,
    pub candles: Option<IgnoredAny>,
    pub pricebook: Option<IgnoredAny>,
    pub trades: Option<IgnoredAny>,
}

// ---- Exchange feed ----------------------------------------------------------------------

/// `match` / `last_match`. `side` is the MAKER order's side.
#[derive(Deserialize)]
pub(crate) struct Match<'a> {
    #[serde(borrow)]
    pub trade_id: Num<'a>,
    #[serde(borrow)]
    pub side: &'a str,
    #[serde(borrow)]
    pub size: Num<'a>,
    #[serde(borrow)]
    pub price: Num<'a>,
    #[serde(borrow)]
    pub product_id: &'a str,
    #[serde(borrow)]
    pub time: &'a str,
}

/// `ticker`: best bid and ask (sizes only in newer feeds) plus the last trade.
#[derive(Deserialize)]
pub(crate) struct Ticker<'a> {
    #[serde(borrow)]
    pub product_id: &'a str,
    #[serde(borrow)]
    pub best_bid: Option<Num<'a>>,
    #[serde(borrow)]
    pub best_bid_size: Option<Num<'a>>,
    #[serde(borrow)]
    pub best_ask: Option<Num<'a>>,
    #[serde(borrow)]
    pub best_ask_size: Option<Num<'a>>,
    #[serde(borrow)]
    pub time: Option<&'a str>,
}

/// `l2update` (level2 / level2_batch channel).
#[derive(Deserialize)]
pub(crate) struct L2Update<'a> {
    #[serde(borrow)]
    pub product_id: &'a str,
    #[serde(borrow)]
    pub changes: Vec<Change<'a>>,
    #[serde(borrow)]
    pub time: Option<&'a str>,
}

/// `["buy"|"sell", price, new size]`.
pub(crate) struct Change<'a> {
    pub side: &'a str,
    pub level: Level<'a>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Change<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Change<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a [side, price, size] change")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Change<'a>, A::Error> {
                let side = next(&mut s, 0, &self)?;
                let price = next(&mut s, 1, &self)?;
                let qty = next(&mut s, 2, &self)?;
                drain(&mut s)?;
                Ok(Change {
                    side,
                    level: Level { price, qty },
                })
            }
        }
        d.deserialize_seq(V(PhantomData))
    }
}

/// level2 `snapshot`.
#[derive(Deserialize)]
pub(crate) struct Snapshot<'a> {
    #[serde(borrow)]
    pub product_id: &'a str,
    #[serde(borrow)]
    pub bids: Vec<Level<'a>>,
    #[serde(borrow)]
    pub asks: Vec<Level<'a>>,
    #[serde(borrow)]
    pub time: Option<&'a str>,
}

// ---- Advanced Trade WebSocket -----------------------------------------------------------

#[derive(Deserialize)]
pub(crate) struct Envelope<'a> {
    #[serde(borrow)]
    pub channel: &'a str,
    #[serde(borrow)]
    pub timestamp: Option<&'a str>,
    #[serde(borrow)]
    pub events: Option<&'a RawValue>,
}

#[derive(Deserialize)]
pub(crate) struct TradesEvent<'a> {
    #[serde(borrow, default)]
    pub trades: Vec<AtTrade<'a>>,
}

/// Advanced Trade trade (WS `market_trades` and REST ticker). `side` is the TAKER side.
#[derive(Deserialize)]
pub(crate) struct AtTrade<'a> {
    #[serde(borrow)]
    pub trade_id: Num<'a>,
    #[serde(borrow)]
    pub product_id: &'a str,
    #[serde(borrow)]
    pub price: Num<'a>,
    #[serde(borrow)]
    pub size: Num<'a>,
    #[serde(borrow)]
    pub side: &'a str,
    #[serde(borrow)]
    pub time: &'a str,
}

#[derive(Deserialize)]
pub(crate) struct TickersEvent<'a> {
    #[serde(borrow, default)]
    pub tickers: Vec<AtTicker<'a>>,
}

#[derive(Deserialize)]
pub(crate) struct AtTicker<'a> {
    #[serde(borrow)]
    pub product_id: &'a str,
    #[serde(borrow)]
    pub best_bid: Num<'a>,
    #[serde(borrow)]
    pub best_bid_quantity: Num<'a>,
    #[serde(borrow)]
    pub best_ask: Num<'a>,
    #[serde(borrow)]
    pub best_ask_quantity: Num<'a>,
}

/// `l2_data` event: a snapshot or an update of one product.
#[derive(Deserialize)]
pub(crate) struct L2Event<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: &'a str,
    #[serde(borrow)]
    pub product_id: &'a str,
    #[serde(borrow)]
    pub updates: Vec<L2Level<'a>>,
}

#[derive(Deserialize)]
pub(crate) struct L2Level<'a> {
    /// `bid` or `offer`.
    #[serde(borrow)]
    pub side: &'a str,
    #[serde(borrow)]
    pub price_level: Num<'a>,
    #[serde(borrow)]
    pub new_quantity: Num<'a>,
}

#[derive(Deserialize)]
pub(crate) struct CandlesEvent<'a> {
    #[serde(borrow, default)]
    pub candles: Vec<Candle<'a>>,
}

/// WS and REST candle; `start` is UNIX seconds.
#[derive(Deserialize)]
pub(crate) struct Candle<'a> {
    #[serde(borrow)]
    pub start: Num<'a>,
    #[serde(borrow)]
    pub low: Num<'a>,
    #[serde(borrow)]
    pub high: Num<'a>,
    #[serde(borrow)]
    pub open: Num<'a>,
    #[serde(borrow)]
    pub close: Num<'a>,
    #[serde(borrow)]
    pub volume: Num<'a>,
    #[serde(borrow)]
    pub product_id: Option<&'a str>,
}

// ---- Advanced Trade REST ----------------------------------------------------------------

#[derive(Deserialize)]
pub(crate) struct RestCandles<'a> {
    #[serde(borrow)]
    pub candles: Vec<Candle<'a>>,
}

#[derive(Deserialize)]
pub(crate) struct RestProductBook<'a> {
    #[serde(borrow)]
    pub pricebook: PriceBook<'a>,
}

#[derive(Deserialize)]
pub(crate) struct PriceBook<'a> {
    #[serde(borrow)]
    pub product_id: &'a str,
    #[serde(borrow)]
    pub bids: Vec<PriceSize<'a>>,
    #[serde(borrow)]
    pub asks: Vec<PriceSize<'a>>,
    #[serde(borrow)]
    pub time: Option<&'a str>,
}

#[derive(Deserialize)]
pub(crate) struct PriceSize<'a> {
    #[serde(borrow)]
    pub price: Num<'a>,
    #[serde(borrow)]
    pub size: Num<'a>,
}

/// REST market ticker: recent trades plus best bid and ask (without sizes).
#[derive(Deserialize)]
pub(crate) struct RestTicker<'a> {
    #[serde(borrow)]
    pub trades: Vec<AtTrade<'a>>,
    #[serde(borrow)]
    pub best_bid: Option<Num<'a>>,
    #[serde(borrow)]
    pub best_ask: Option<Num<'a>>,
}
