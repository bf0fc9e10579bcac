//! Kraken spot.
//!
//! * WebSocket v1: arrays `[channelID, payload.., channelName, pair]` for `trade`, `ticker`,
//!   `book-<depth>` (snapshot `as`/`bs`, updates `a`/`b` with checksum `c`, possibly both
//!   sides in two objects), `spread` and `ohlc-<minutes>`. The pair name is in the message,
//!   so no channel-id state is needed. `heartbeat`, `systemStatus`, `subscriptionStatus`
//!   and `pong` events are control; a `subscriptionStatus` with status `error` is an error.
//! * WebSocket v2: `{"channel":"trade"|"ticker"|"book"|"ohlc",..}`; `heartbeat`, `status`,
//!   `instrument` channels and `{"method":..}` replies are control.
//! * REST: `{"error":[],"result":{...}}` from Ticker, Depth, Trades and OHLC.
//!
//! Times: v1 trades and book levels carry decimal seconds (book events use the newest level
//! time); v1 ticker has none (receive time). v1 trades have no id, so the trade time stands in
//! (with `-<n>` for the n-th trade of a message after the first). Book checksums need the book,
//! so [`crate::checksum::BookVerifier`] checks them, not this stateless parser.

pub(crate) mod messages;

use std::collections::HashMap;

use model::{Bar, BookLevel, Event, Quote, Side, Timestamp, TradeTick};
use serde_json::value::RawValue;

use crate::common::{Emit, MessageKind, Num, from_str};
use crate::error::{Fail, Res};
use messages::{
    BookPart, BookRow, Peek, RestDepth, RestOhlcRow, Spread, Ticker, TradeRow, V2Book, V2Envelope,
    V2Ohlc, V2Ticker, V2Trade, WsOhlcRow,
};

pub(crate) fn parse(msg: &str, em: &mut Emit<'_, '_>) -> Res<MessageKind> {
    let t = msg.trim();
    match t.as_bytes().first() {
        Some(b'[') => v1_array(t, em),
        Some(b'{') => object(t, em),
        _ => Err("not a JSON object or array".into()),
    }
}

fn side(s: &str) -> Res<Side> {
    match s {
        "b" | "buy" => Ok(Side::Buy),
        "s" | "sell" => Ok(Side::Sell),
        other => Err(Fail(format!("unknown side {other:?}"))),
    }
}

fn book_levels(rows: &[BookRow<'_>], newest: &mut Option<Timestamp>) -> Res<Vec<BookLevel>> {
    rows.iter()
        .map(|r| {
            let ts = r.time.secs()?;
            *newest = Some(newest.map_or(ts, |n| n.max(ts)));
            Ok(BookLevel {
                price: r.price.price()?,
                quantity: r.volume.qty()?,
            })
        })
        .collect()
}

// ---- WebSocket v1 -------------------------------------------------------------------------

fn v1_array(t: &str, em: &mut Emit<'_, '_>) -> Res<MessageKind> {
    let parts: Vec<&RawValue> = from_str(t)?;
    let [_channel_id, payload @ .., name, pair] = parts.as_slice() else {
        return Err("array message shorter than [channelID, payload, channelName, pair]".into());
    };
    if payload.is_empty() {
        return Err("array message without payload".into());
    }
    let name: &str = from_str(name.get())?;
    let pair: &str = from_str(pair.get())?;
    let instrument = em.instrument(pair)?;
    let channel = name.split('-').next().unwrap_or(name);
    match channel {
        "trade" => {
            let rows: Vec<TradeRow> = from_str(payload[0].get())?;
            for (i, r) in rows.iter().enumerate() {
                let id = if i == 0 {
                    r.time.as_str().to_owned()
                } else {
                    format!("{}-{i}", r.time.as_str())
                };
                em.push(Event::Trade(TradeTick {
                    instrument: instrument.clone(),
                    price: r.price.price()?,
                    quantity: r.volume.qty()?,
                    aggressor: Some(side(r.side)?),
                    trade_id: id,
                    ts: r.time.secs()?,
                }));
            }
        }
        "ticker" => {
            let tk: Ticker = from_str(payload[0].get())?;
            em.push(Event::Quote(Quote {
                instrument,
                bid: tk.b.price.price()?,
                bid_size: tk.b.volume.qty()?,
                ask: tk.a.price.price()?,
                ask_size: tk.a.volume.qty()?,
                ts: em.recv_ts,
            }));
        }
        "book" => {
            let (mut bids, mut asks) = (Vec::new(), Vec::new());
            let mut newest = None;
            let mut snapshot = None;
            for part in payload {
                let p: BookPart = from_str(part.get())?;
                let is_snapshot = p.snapshot_asks.is_some() || p.snapshot_bids.is_some();
                let is_update = p.a.is_some() || p.b.is_some();
                if is_snapshot == is_update || snapshot.is_some_and(|s| s != is_snapshot) {
                    return Err("book payload mixes or lacks snapshot and update keys".into());
                }
                snapshot = Some(is_snapshot);
                for rows in [p.snapshot_bids, p.b].into_iter().flatten() {
                    bids.extend(book_levels(&rows, &mut newest)?);
                }
                for rows in [p.snapshot_asks, p.a].into_iter().flatten() {
                    asks.extend(book_levels(&rows, &mut newest)?);
                }
            }
            let ts = newest.unwrap_or(em.recv_ts);
            if snapshot == Some(true) {
                em.snapshot(instrument, bids, asks, None, ts);
            } else {
                em.delta(instrument, bids, asks, None, None, ts);
            }
        }
        "spread" => {
            let s: Spread = from_str(payload[0].get())?;
            em.push(Event::Quote(Quote {
                instrument,
                bid: s.bid.price()?,
                bid_size: s.bid_volume.qty()?,
                ask: s.ask.price()?,
                ask_size: s.ask_volume.qty()?,
                ts: s.time.secs()?,
            }));
        }
        "ohlc" => {
            let minutes: i64 = name
                .strip_prefix("ohlc-")
                .and_then(|m| m.parse().ok())
                .ok_or_else(|| Fail(format!("bad ohlc channel name {name:?}")))?;
            let WsOhlcRow(r) = from_str(payload[0].get())?;
            let end = r.time.secs()?;
            let start = Timestamp::from_nanos(
                end.as_nanos()
                    .saturating_sub(minutes.saturating_mul(60_000_000_000)),
            );
            em.push(Event::Bar(Bar {
                instrument,
                interval: crate::common::interval_name(minutes.saturating_mul(60_000)),
                open: r.open.price()?,
                high: r.high.price()?,
                low: r.low.price()?,
                close: r.close.price()?,
                volume: r.volume.qty()?,
                start,
                closed: false, // v1 sends the running bar; it is final only once the next starts
                ts: em.recv_ts,
            }));
        }
        other => return Err(Fail(format!("unsupported channel {other:?}"))),
    }
    Ok(MessageKind::Data)
}

// ---- objects: v1 control, v2, REST ----------------------------------------------------------

fn object(t: &str, em: &mut Emit<'_, '_>) -> Res<MessageKind> {
    let p: Peek = from_str(t)?;
    if let Some(event) = p.event {
        return match event {
            "subscriptionStatus" if p.status == Some("error") => Err(Fail(format!(
                "subscription error: {}",
                p.error_message.map(|m| m.get()).unwrap_or_default()
            ))),
            "heartbeat" | "systemStatus" | "subscriptionStatus" | "pong" => {
                Ok(MessageKind::Control)
            }
            "error" => Err(Fail(format!(
                "error reply from the venue: {}",
                p.error_message.map(|m| m.get()).unwrap_or_default()
            ))),
            other => Err(Fail(format!("unsupported event {other:?}"))),
        };
    }
    if p.method.is_some() {
        return if p.success == Some(false) {
            Err(Fail(format!(
                "error reply from the venue: {}",
                p.error.map(|m| m.get()).unwrap_or_default()
            )))
        } else {
            Ok(MessageKind::Control)
        };
    }
    if p.channel.is_some() {
        return v2(t, em);
    }
    if let Some(result) = p.result {
        if let Some(err) = p.error
            && err.get().trim() != "[]"
        {
            return Err(Fail(format!("error reply from the venue: {}", err.get())));
        }
        rest(result.get(), em)?;
        return Ok(MessageKind::Data);
    }
    Err("unknown message: no event, channel, method or result".into())
}

fn v2_time(s: Option<&str>, em: &Emit<'_, '_>) -> Res<Timestamp> {
    match s {
        Some(s) => Ok(Timestamp::parse_rfc3339(s)?),
        None => Ok(em.recv_ts),
    }
}

fn v2(t: &str, em: &mut Emit<'_, '_>) -> Res<MessageKind> {
    let env: V2Envelope = from_str(t)?;
    let data = env.data.map_or("[]", |d| d.get());
    match env.channel {
        "heartbeat" | "status" | "instrument" | "pong" => return Ok(MessageKind::Control),
        "trade" => {
            for tr in from_str::<Vec<V2Trade>>(data)? {
                let e = Event::Trade(TradeTick {
                    instrument: em.instrument(tr.symbol)?,
                    price: tr.price.price()?,
                    quantity: tr.qty.qty()?,
                    aggressor: Some(side(tr.side)?),
                    trade_id: tr.trade_id.as_str().to_owned(),
                    ts: Timestamp::parse_rfc3339(tr.timestamp)?,
                });
                em.push(e);
            }
        }
        "ticker" => {
            for tk in from_str::<Vec<V2Ticker>>(data)? {
                let e = Event::Quote(Quote {
                    instrument: em.instrument(tk.symbol)?,
                    bid: tk.bid.price()?,
                    bid_size: tk.bid_qty.qty()?,
                    ask: tk.ask.price()?,
                    ask_size: tk.ask_qty.qty()?,
                    ts: v2_time(tk.timestamp, em)?,
                });
                em.push(e);
            }
        }
        "book" => {
            let snapshot = match env.kind {
                Some("snapshot") => true,
                Some("update") => false,
                other => return Err(Fail(format!("unknown book message type {other:?}"))),
            };
            for b in from_str::<Vec<V2Book>>(data)? {
                let conv = |v: &[messages::V2Level<'_>]| -> Res<Vec<BookLevel>> {
                    v.iter()
                        .map(|l| {
                            Ok(BookLevel {
                                price: l.price.price()?,
                                quantity: l.qty.qty()?,
                            })
                        })
                        .collect()
                };
                let instrument = em.instrument(b.symbol)?;
                let ts = v2_time(b.timestamp, em)?;
                let (bids, asks) = (conv(&b.bids)?, conv(&b.asks)?);
                if snapshot {
                    em.snapshot(instrument, bids, asks, None, ts);
                } else {
                    em.delta(instrument, bids, asks, None, None, ts);
                }
            }
        }
        "ohlc" => {
            for c in from_str::<Vec<V2Ohlc>>(data)? {
                let e = Event::Bar(Bar {
                    instrument: em.instrument(c.symbol)?,
                    interval: crate::common::interval_name(c.interval.saturating_mul(60_000)),
                    open: c.open.price()?,
                    high: c.high.price()?,
                    low: c.low.price()?,
                    close: c.close.price()?,
                    volume: c.volume.qty()?,
                    start: Timestamp::parse_rfc3339(c.interval_begin)?,
                    closed: false,
                    ts: v2_time(c.timestamp, em)?,
                });
                em.push(e);
            }
        }
        other => return Err(Fail(format!("unsupported channel {other:?}"))),
    }
    Ok(MessageKind::Data)
}

// ---- REST ----------------------------------------------------------------------------------

fn rest(result: &str, em: &mut Emit<'_, '_>) -> Res<()> {
    let map: HashMap<&str, &RawValue> = from_str(result)?;
    // OHLC's `last`: bars starting after it are still open.
    let last = match map.get("last") {
        Some(v) => Some(from_str::<Num>(v.get())?),
        None => None,
    };
    let mut pairs: Vec<(&str, &RawValue)> = map
        .iter()
        .filter(|(k, _)| **k != "last")
        .map(|(k, v)| (*k, *v))
        .collect();
    pairs.sort_by_key(|(k, _)| *k); // deterministic output for multi-pair answers
    for (pair, value) in pairs {
        let instrument = em.instrument(pair)?;
        let v = value.get();
        if v.starts_with('{') {
            let peek: HashMap<&str, serde::de::IgnoredAny> = from_str(v)?;
            if peek.contains_key("asks") {
                let d: RestDepth = from_str(v)?;
                let mut newest = None;
                let bids = book_levels(&d.bids, &mut newest)?;
                let asks = book_levels(&d.asks, &mut newest)?;
                em.snapshot(instrument, bids, asks, None, newest.unwrap_or(em.recv_ts));
            } else {
                let tk: Ticker = from_str(v)?;
                em.push(Event::Quote(Quote {
                    instrument,
                    bid: tk.b.price.price()?,
                    bid_size: tk.b.volume.qty()?,
                    ask: tk.a.price.price()?,
                    ask_size: tk.a.volume.qty()?,
                    ts: em.recv_ts,
                }));
            }
            continue;
        }
        // A list of trades (rows start with a price string) or of candles (with a time).
        let row_start = v
            .strip_prefix('[')
            .map(|r| r.trim_start())
            .and_then(|r| r.strip_prefix('['))
            .map(|r| r.trim_start().as_bytes().first().copied());
        match row_start {
            None if v.trim_start_matches('[').trim_start().starts_with(']') => {}
            Some(Some(b'"')) => {
                for r in from_str::<Vec<TradeRow>>(v)? {
                    em.push(Event::Trade(TradeTick {
                        instrument: instrument.clone(),
                        price: r.price.price()?,
                        quantity: r.volume.qty()?,
                        aggressor: Some(side(r.side)?),
                        trade_id: r
                            .trade_id
                            .map_or_else(|| r.time.as_str().to_owned(), |id| id.to_string()),
                        ts: r.time.secs()?,
                    }));
                }
            }
            Some(Some(_)) => {
                let rows: Vec<RestOhlcRow> = from_str(v)?;
                let spacing = match rows.as_slice() {
                    [a, b, ..] => Some(crate::common::spacing(
                        b.0.time.i64()?,
                        a.0.time.i64()?,
                        1000,
                    )),
                    _ => None,
                };
                let interval = em.interval(spacing)?;
                let ms = crate::common::interval_millis(&interval)
                    .ok_or_else(|| Fail(format!("unsupported interval {interval:?}")))?;
                let last = match last {
                    Some(l) => Some(l.i64()?),
                    None => None,
                };
                for RestOhlcRow(r) in rows {
                    let start_s = r.time.i64()?;
                    let end =
                        Timestamp::from_millis(start_s.saturating_mul(1000).saturating_add(ms));
                    let closed = match last {
                        Some(l) => start_s <= l,
                        None => end <= em.recv_ts,
                    };
                    em.push(Event::Bar(Bar {
                        instrument: instrument.clone(),
                        interval: interval.clone(),
                        open: r.open.price()?,
                        high: r.high.price()?,
                        low: r.low.price()?,
                        close: r.close.price()?,
                        volume: r.volume.qty()?,
                        start: Timestamp::from_secs(start_s),
                        closed,
                        ts: if closed { end } else { em.recv_ts },
                    }));
                }
            }
            _ => return Err(Fail(format!("unknown REST result for {pair:?}"))),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::{Exchange, parse};
    use model::{Event, Side, Timestamp};

    const RECV: Timestamp = Timestamp::from_secs(1_700_000_000);

    #[test]
    fn websocket_v2_channels() {
        let trade = r#"{"channel":"trade","type":"update","data":[{"symbol":"MATIC/USD","side":"sell","price":0.5117,"qty":40.0,"ord_type":"market","trade_id":4665906,"timestamp":"2023-09-25T07:49:37.708706Z"}]}"#;
        let ev = parse(Exchange::Kraken, trade, RECV).unwrap();
        let Event::Trade(t) = &ev[0] else { panic!() };
        assert_eq!(t.price.to_string(), "0.5117");
        assert_eq!(t.quantity.to_string(), "40");
        assert_eq!(t.aggressor, Some(Side::Sell));
        assert_eq!(t.trade_id, "4665906");
        assert_eq!(t.ts.as_nanos(), 1_695_628_177_708_706_000);

        let ticker = r#"{"channel":"ticker","type":"snapshot","data":[{"symbol":"ALGO/USD","bid":0.10025,"bid_qty":740.0,"ask":0.10036,"ask_qty":1361.44813783,"last":0.10035,"volume":997038.98383185,"vwap":0.10148,"low":0.09979,"high":0.10285,"change":-0.00017,"change_pct":-0.17}]}"#;
        let ev = parse(Exchange::Kraken, ticker, RECV).unwrap();
        let Event::Quote(q) = &ev[0] else { panic!() };
        assert_eq!(q.ask_size.to_string(), "1361.44813783");
        assert_eq!(q.ts, RECV);

        let book = r#"{"channel":"book","type":"update","data":[{"symbol":"MATIC/USD","bids":[{"price":0.5657,"qty":1098.3947558}],"asks":[],"checksum":2114181697,"timestamp":"2023-10-06T17:35:55.440295Z"}]}"#;
        let ev = parse(Exchange::Kraken, book, RECV).unwrap();
        let Event::BookDelta(d) = &ev[0] else {
            panic!()
        };
        assert_eq!(d.bids[0].quantity.to_string(), "1098.3947558");

        for control in [
            r#"{"channel":"heartbeat"}"#,
            r#"{"channel":"status","type":"update","data":[{"version":"2.0.0","system":"online","api_version":"v2","connection_id":123}]}"#,
            r#"{"method":"subscribe","result":{"channel":"ticker","snapshot":true,"symbol":"ALGO/USD"},"success":true,"time_in":"2023-09-25T09:04:31.742599Z","time_out":"2023-09-25T09:04:31.742648Z"}"#,
        ] {
            assert!(
                parse(Exchange::Kraken, control, RECV).unwrap().is_empty(),
                "{control}"
            );
        }
        let err = parse(
            Exchange::Kraken,
            r#"{"error":"Currency pair not supported","method":"subscribe","success":false}"#,
            RECV,
        )
        .unwrap_err();
        assert!(err.reason.contains("Currency pair not supported"));
    }

    #[test]
    fn v1_spread_and_ohlc() {
        let spread = r#"[0,["5698.40000","5700.00000","1542057299.545897","1.01234567","0.98765432"],"spread","XBT/USD"]"#;
        let ev = parse(Exchange::Kraken, spread, RECV).unwrap();
        let Event::Quote(q) = &ev[0] else { panic!() };
        assert_eq!(q.bid_size.to_string(), "1.01234567");
        assert_eq!(q.ts.as_nanos(), 1_542_057_299_545_897_000);
        let ohlc = r#"[42,["1542057314.748456","1542057360.435743","3586.70000","3586.70000","3586.60000","3586.60000","3586.68894","0.03373000",2],"ohlc-5","XBT/USD"]"#;
        let ev = parse(Exchange::Kraken, ohlc, RECV).unwrap();
        let Event::Bar(b) = &ev[0] else { panic!() };
        assert_eq!(b.interval, "5m");
        assert_eq!(b.start.as_nanos(), 1_542_057_060_435_743_000);
        assert_eq!(b.volume.to_string(), "0.03373");
    }

    #[test]
    fn out_of_range_times_are_errors_not_overflows() {
        for t in [
            "9223372036.999999999",
            "-9223372037.5",
            "99999999999999999999",
        ] {
            let m = format!(r#"[1,[["1.0","1.0","{t}","b","m",""]],"trade","XBT/USD"]"#);
            let err = parse(Exchange::Kraken, &m, RECV).unwrap_err();
            assert!(err.reason.contains("time in seconds"), "{err}");
        }
    }

    #[test]
    fn subscription_errors_and_rest_errors_are_errors() {
        let m = r#"{"errorMessage":"Subscription depth not supported","event":"subscriptionStatus","pair":"XBT/USD","status":"error","subscription":{"depth":42,"name":"book"}}"#;
        assert!(
            parse(Exchange::Kraken, m, RECV)
                .unwrap_err()
                .reason
                .contains("depth not supported")
        );
        let m = r#"{"error":["EQuery:Unknown asset pair"],"result":{}}"#;
        assert!(
            parse(Exchange::Kraken, m, RECV)
                .unwrap_err()
                .reason
                .contains("Unknown asset pair")
        );
    }
}
