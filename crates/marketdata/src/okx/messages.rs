//! OKX v5 wire types (public WebSocket and REST market endpoints), borrowed from the message
//! text.

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::common::{Level, Num, drain, next};

/// Enough of any object to route it.
#[derive(Deserialize)]
pub(crate) struct Peek<'a> {
    #[serde(borrow)]
    pub event: Option<&'a str>,
    #[serde(borrow)]
    pub arg: Option<Arg<'a>>,
    #[serde(borrow)]
    pub action: Option<&'a str>,
    #[serde(borrow)]
    pub data: Option<&'a RawValue>,
    /// REST status code, `"0"` on success; also on WS error events.
    #[serde(borrow)]
    pub code: Option<Num<'a>>,
    #[serde(borrow)]
    pub msg: Option<&'a RawValue>,
}

#[derive(Deserialize)]
pub(crate) struct Arg<'a> {
    #[serde(borrow)]
    pub channel: &'a str,
    #[serde(rename = "instId", borrow)]
    pub inst_id: Option<&'a str>,
}

/// `trades` / `trades-all` entry and REST `/market/trades` entry. `side` is the taker side.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Trade<'a> {
    #[serde(borrow)]
    pub inst_id: &'a str,
    #[serde(borrow)]
    pub trade_id: &'a str,
    #[serde(borrow)]
    pub px: Num<'a>,
    #[serde(borrow)]
    pub sz: Num<'a>,
    #[serde(borrow)]
    pub side: &'a str,
    #[serde(borrow)]
    pub ts: Num<'a>,
}

/// `tickers` entry and REST `/market/ticker(s)` entry. Prices are `""` when a side is empty.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Ticker<'a> {
    #[serde(borrow)]
    pub inst_id: &'a str,
    #[serde(borrow)]
    pub bid_px: Num<'a>,
    #[serde(borrow)]
    pub bid_sz: Num<'a>,
    #[serde(borrow)]
    pub ask_px: Num<'a>,
    #[serde(borrow)]
    pub ask_sz: Num<'a>,
    #[serde(borrow)]
    pub ts: Num<'a>,
}

/// `books`, `books5`, `bbo-tbt`, `books-l2-tbt`, `books50-l2-tbt` entry and REST `/market/books`.
/// Levels are `[price, size, "0", orders]`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Book<'a> {
    #[serde(borrow)]
    pub asks: Vec<Level<'a>>,
    #[serde(borrow)]
    pub bids: Vec<Level<'a>>,
    #[serde(borrow)]
    pub ts: Num<'a>,
    #[serde(borrow)]
    pub inst_id: Option<&'a str>,
    pub seq_id: Option<i64>,
}

/// `funding-rate` entry.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Funding<'a> {
    #[serde(borrow)]
    pub inst_id: &'a str,
    #[serde(borrow)]
    pub funding_rate: Num<'a>,
    #[serde(borrow)]
    pub funding_time: Option<Num<'a>>,
    #[serde(borrow)]
    pub ts: Option<Num<'a>>,
}

/// Candle row `[ts, o, h, l, c, vol, volCcy, volCcyQuote, confirm]` (WS `candle*` and REST).
pub(crate) struct Candle<'a> {
    pub ts: Num<'a>,
    pub o: Num<'a>,
    pub h: Num<'a>,
    pub l: Num<'a>,
    pub c: Num<'a>,
    pub vol: Num<'a>,
    /// `"1"` when the candle is complete; older answers lack the column.
    pub confirm: Option<Num<'a>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Candle<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Candle<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a candle [ts, o, h, l, c, vol, volCcy, volCcyQuote, confirm]")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Candle<'a>, A::Error> {
                let ts = next(&mut s, 0, &self)?;
                let o = next(&mut s, 1, &self)?;
                let h = next(&mut s, 2, &self)?;
                let l = next(&mut s, 3, &self)?;
                let c = next(&mut s, 4, &self)?;
                let vol = next(&mut s, 5, &self)?;
                let _vol_ccy: Option<IgnoredAny> = s.next_element()?;
                let _vol_ccy_quote: Option<IgnoredAny> = s.next_element()?;
                let confirm = s.next_element()?;
                drain(&mut s)?;
                Ok(Candle {
                    ts,
                    o,
                    h,
                    l,
                    c,
                    vol,
                    confirm,
                })
            }
        }
        d.deserialize_seq(V(PhantomData))
    }
}

/// Which REST list a `data` array holds, from its first entry.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ItemPeek {
    pub trade_id: Option<IgnoredAny>,
    pub bid_px: Option<IgnoredAny>,
    pub asks: Option<IgnoredAny>,
    pub funding_rate: Option<IgnoredAny>,
}
