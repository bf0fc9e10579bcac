//! OKX v5.
//!
//! * WebSocket `{"arg":{"channel":..,"instId":..},"data":[..]}`: `trades` / `trades-all`
//!   (`side` is the taker side), `tickers` and `bbo-tbt` (quotes), `books` / `books-l2-tbt` /
//!   `books50-l2-tbt` (`action` snapshot or update), `books5` (always a snapshot),
//!   `candle<interval>`, `funding-rate`. `{"event":"subscribe"|"unsubscribe"|..}` is control,
//!   `{"event":"error"}` an error, and the plain-text `pong` reply is control.
//! * REST `{"code":"0","msg":"","data":[..]}`: trades, tickers, books, candles (candles and
//!   books do not name the instrument: the symbol hint does).
//!
//! Candle volume is `vol`, in the instrument's own quantity unit (contracts for derivatives,
//! base currency for spot), matching the trade sizes of the same instrument.

pub(crate) mod messages;

use model::{Bar, Event, FundingRate, Quote, Side, Timestamp, TradeTick};
use serde_json::value::RawValue;

use crate::common::{Emit, MessageKind, from_str, interval_millis, interval_name, levels};
use crate::error::{Fail, Res};
use messages::{Book, Candle, Funding, ItemPeek, Peek, Ticker, Trade};

pub(crate) fn parse(msg: &str, em: &mut Emit<'_, '_>) -> Res<MessageKind> {
    let t = msg.trim();
    if t == "pong" {
        return Ok(MessageKind::Control);
    }
    if !t.starts_with('{') {
        return Err("not a JSON object".into());
    }
    let p: Peek = from_str(t)?;
    if let Some(event) = p.event {
        return match event {
            "error" => Err(Fail(format!(
                "error reply from the venue: {}",
                p.msg.map(|m| m.get()).unwrap_or_default()
            ))),
            "subscribe" | "unsubscribe" | "login" | "channel-conn-count" | "notice" => {
                Ok(MessageKind::Control)
            }
            other => Err(Fail(format!("unsupported event {other:?}"))),
        };
    }
    let Some(data) = p.data else {
        return Err("unknown message: no event and no data".into());
    };
    if let Some(arg) = p.arg {
        ws(arg.channel, arg.inst_id, p.action, data, em)?;
        return Ok(MessageKind::Data);
    }
    match p.code {
        Some(code) if code.as_str() == "0" => {
            rest(data, em)?;
            Ok(MessageKind::Data)
        }
        Some(code) => Err(Fail(format!(
            "error reply from the venue: code {} {}",
            code.as_str(),
            p.msg.map(|m| m.get()).unwrap_or_default()
        ))),
        None => Err("data without \"arg\" or \"code\"".into()),
    }
}

fn taker(side: &str) -> Res<Side> {
    match side {
        "buy" => Ok(Side::Buy),
        "sell" => Ok(Side::Sell),
        other => Err(Fail(format!("unknown side {other:?}"))),
    }
}

fn trades(data: &RawValue, em: &mut Emit<'_, '_>) -> Res<()> {
    let start = em.out.len();
    for tr in from_str::<Vec<Trade>>(data.get())? {
        let e = Event::Trade(TradeTick {
            instrument: em.instrument(tr.inst_id)?,
            price: tr.px.price()?,
            quantity: tr.sz.qty()?,
            aggressor: Some(taker(tr.side)?),
            trade_id: tr.trade_id.to_owned(),
            ts: tr.ts.millis()?,
        });
        em.push(e);
    }
    em.chronological_since(start);
    Ok(())
}

fn tickers(data: &RawValue, em: &mut Emit<'_, '_>) -> Res<()> {
    for tk in from_str::<Vec<Ticker>>(data.get())? {
        // An empty side (no bids or asks) is sent as "": no quote then.
        if [tk.bid_px, tk.bid_sz, tk.ask_px, tk.ask_sz]
            .iter()
            .any(|n| n.as_str().is_empty())
        {
            continue;
        }
        let e = Event::Quote(Quote {
            instrument: em.instrument(tk.inst_id)?,
            bid: tk.bid_px.price()?,
            bid_size: tk.bid_sz.qty()?,
            ask: tk.ask_px.price()?,
            ask_size: tk.ask_sz.qty()?,
            ts: tk.ts.millis()?,
        });
        em.push(e);
    }
    Ok(())
}

/// `snapshot`: Some(true) snapshot, Some(false) delta.
fn books(data: &RawValue, inst_id: Option<&str>, snapshot: bool, em: &mut Emit<'_, '_>) -> Res<()> {
    for b in from_str::<Vec<Book>>(data.get())? {
        let instrument = em.instrument_or_hint(b.inst_id.or(inst_id))?;
        let ts = b.ts.millis()?;
        let seq = b.seq_id.and_then(|s| u64::try_from(s).ok());
        let (bids, asks) = (levels(&b.bids)?, levels(&b.asks)?);
        if snapshot {
            em.snapshot(instrument, bids, asks, seq, ts);
        } else {
            em.delta(instrument, bids, asks, None, seq, ts);
        }
    }
    Ok(())
}

fn bbo(data: &RawValue, inst_id: Option<&str>, em: &mut Emit<'_, '_>) -> Res<()> {
    for b in from_str::<Vec<Book>>(data.get())? {
        let (Some(bid), Some(ask)) = (b.bids.first(), b.asks.first()) else {
            continue; // one side of the book is empty: no quote
        };
        let e = Event::Quote(Quote {
            instrument: em.instrument_or_hint(b.inst_id.or(inst_id))?,
            bid: bid.price.price()?,
            bid_size: bid.qty.qty()?,
            ask: ask.price.price()?,
            ask_size: ask.qty.qty()?,
            ts: b.ts.millis()?,
        });
        em.push(e);
    }
    Ok(())
}

/// `1m` stays, `1H` -> `1h`, `1Dutc` -> `1d`; months (`1M`) stay as they are.
fn okx_interval(bar: &str) -> String {
    interval_millis(bar).map_or_else(|| bar.to_owned(), interval_name)
}

fn candles(
    data: &RawValue,
    inst_id: Option<&str>,
    interval: Option<String>,
    em: &mut Emit<'_, '_>,
) -> Res<()> {
    let rows: Vec<Candle> = from_str(data.get())?;
    let instrument = em.instrument_or_hint(inst_id)?;
    let interval = match interval {
        Some(i) => i,
        None => {
            let spacing = match rows.as_slice() {
                [a, b, ..] => Some(crate::common::spacing(a.ts.i64()?, b.ts.i64()?, 1)),
                _ => None,
            };
            em.interval(spacing)?
        }
    };
    let len_ms = interval_millis(&interval);
    let start_idx = em.out.len();
    for r in &rows {
        let start = r.ts.millis()?;
        let closed = match r.confirm {
            Some(c) => c.as_str() == "1",
            None => len_ms.is_some_and(|ms| {
                start
                    .as_nanos()
                    .saturating_add(ms.saturating_mul(1_000_000))
                    <= em.recv_ts.as_nanos()
            }),
        };
        let ts = match (closed, len_ms) {
            (true, Some(ms)) => Timestamp::from_nanos(
                start
                    .as_nanos()
                    .saturating_add(ms.saturating_mul(1_000_000)),
            ),
            _ => em.recv_ts,
        };
        em.push(Event::Bar(Bar {
            instrument: instrument.clone(),
            interval: interval.clone(),
            open: r.o.price()?,
            high: r.h.price()?,
            low: r.l.price()?,
            close: r.c.price()?,
            volume: r.vol.qty()?,
            start,
            closed,
            ts,
        }));
    }
    em.chronological_since(start_idx);
    Ok(())
}

fn funding(data: &RawValue, em: &mut Emit<'_, '_>) -> Res<()> {
    for f in from_str::<Vec<Funding>>(data.get())? {
        let e = Event::FundingRate(FundingRate {
            instrument: em.instrument(f.inst_id)?,
            rate: f.funding_rate.decimal()?,
            mark_price: None,
            next_funding: f.funding_time.map(|t| t.millis()).transpose()?,
            ts: match f.ts {
                Some(ts) => ts.millis()?,
                None => em.recv_ts,
            },
        });
        em.push(e);
    }
    Ok(())
}

fn ws(
    channel: &str,
    inst_id: Option<&str>,
    action: Option<&str>,
    data: &RawValue,
    em: &mut Emit<'_, '_>,
) -> Res<()> {
    match channel {
        "trades" | "trades-all" => trades(data, em),
        "tickers" => tickers(data, em),
        "bbo-tbt" => bbo(data, inst_id, em),
        "books5" => books(data, inst_id, true, em),
        "books" | "books-l2-tbt" | "books50-l2-tbt" => match action {
            Some("snapshot") => books(data, inst_id, true, em),
            Some("update") => books(data, inst_id, false, em),
            other => Err(Fail(format!("unknown books action {other:?}"))),
        },
        "funding-rate" => funding(data, em),
        c if c.starts_with("candle") => {
            candles(data, inst_id, Some(okx_interval(&c["candle".len()..])), em)
        }
        other => Err(Fail(format!("unsupported channel {other:?}"))),
    }
}

fn rest(data: &RawValue, em: &mut Emit<'_, '_>) -> Res<()> {
    let text = data.get();
    let first = text.strip_prefix('[').map(|r| r.trim_start());
    match first.and_then(|r| r.as_bytes().first().copied()) {
        Some(b']') => Ok(()),
        Some(b'[') => candles(data, None, None, em),
        Some(b'{') => {
            let items: Vec<&RawValue> = from_str(text)?;
            let peek: ItemPeek = from_str(items.first().map_or("{}", |i| i.get()))?;
            if peek.trade_id.is_some() {
                trades(data, em)
            } else if peek.bid_px.is_some() {
                tickers(data, em)
            } else if peek.asks.is_some() {
                books(data, None, true, em)
            } else if peek.funding_rate.is_some() {
                funding(data, em)
            } else {
                Err("unknown REST data entries".into())
            }
        }
        _ => Err("REST \"data\" is not a list".into()),
    }
}

#[cfg(test)]
mod tests {
    use crate::{Exchange, parse};
    use model::{Event, Timestamp};

    const RECV: Timestamp = Timestamp::from_secs(1_700_000_000);

    #[test]
    fn bbo_candles_funding_and_replies() {
        let m = r#"{"arg":{"channel":"bbo-tbt","instId":"BCH-USDT-SWAP"},"data":[{"asks":[["111.06","55154","0","2"]],"bids":[["111.05","57745","0","2"]],"ts":"1670324386802","seqId":363996337}]}"#;
        let ev = parse(Exchange::Okx, m, RECV).unwrap();
        let Event::Quote(q) = &ev[0] else { panic!() };
        assert_eq!(q.instrument.symbol.as_str(), "BCH-USDT-SWAP");
        assert_eq!(
            (q.bid.to_string(), q.ask_size.to_string()),
            ("111.05".into(), "55154".into())
        );

        let m = r#"{"arg":{"channel":"candle1H","instId":"BTC-USDT"},"data":[["1597026383085","8533.02","8553.74","8527.17","8548.26","45247","529.5858061","529.58","0"]]}"#;
        let ev = parse(Exchange::Okx, m, RECV).unwrap();
        let Event::Bar(b) = &ev[0] else { panic!() };
        assert_eq!((b.interval.as_str(), b.closed), ("1h", false));

        let m = r#"{"arg":{"channel":"funding-rate","instId":"BTC-USD-SWAP"},"data":[{"fundingRate":"0.0001875391284828","fundingTime":"1700726400000","instId":"BTC-USD-SWAP","instType":"SWAP","nextFundingRate":"","nextFundingTime":"1700755200000","ts":"1700724675402"}]}"#;
        let ev = parse(Exchange::Okx, m, RECV).unwrap();
        let Event::FundingRate(f) = &ev[0] else {
            panic!()
        };
        assert_eq!(f.rate.to_string(), "0.0001875391284828");

        assert!(parse(Exchange::Okx, "pong", RECV).unwrap().is_empty());
        let err = parse(
            Exchange::Okx,
            r#"{"event":"error","code":"60012","msg":"Invalid request"}"#,
            RECV,
        )
        .unwrap_err();
        assert!(err.reason.contains("Invalid request"));
        let err = parse(
            Exchange::Okx,
            r#"{"code":"51001","msg":"Instrument ID does not exist","data":[]}"#,
            RECV,
        )
        .unwrap_err();
        assert!(err.reason.contains("51001"));
    }
}
