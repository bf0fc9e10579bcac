//! Bybit.
//!
//! * v5 public WebSocket: `publicTrade.<sym>` (trades; `S` is the taker side),
//!   `orderbook.<depth>.<sym>` (snapshot / delta, sequence `u`), `tickers.<sym>` (a quote when
//!   the message has all four best bid/ask fields, a funding rate when it has `fundingRate`;
//!   ticker deltas carry only changed fields, so a delta may give neither), `kline.<i>.<sym>`.
//! * Legacy (pre-v5, retired) feed in the 2021 recordings: `orderBookL2_25.<sym>` /
//!   `orderBook_200.100ms.<sym>` snapshot and delta (`delete` / `update` / `insert`; a delete is
//!   a level with quantity zero), and `trade.<sym>`. Times: `timestamp_e6` (microseconds),
//!   sequence `cross_seq`.
//! * `{"success":true,...}` replies and pongs are control; `success: false` is an error.

mod messages;

use model::{Bar, BookLevel, Event, FundingRate, Quantity, Quote, Side, Timestamp, TradeTick};

use crate::common::{Emit, MessageKind, from_str, interval_name, levels, nonempty};
use crate::error::{Fail, Res};
use messages::{
    Book, Envelope, Kline, LegacyDelta, LegacyLevel, LegacySnapshot, LegacyTrade, Peek, Ticker,
    Trade,
};

pub(crate) fn parse(msg: &str, em: &mut Emit<'_, '_>) -> Res<MessageKind> {
    let t = msg.trim();
    if !t.starts_with('{') {
        return Err("not a JSON object".into());
    }
    // Book deltas dominate the feed and start with their topic: route them without a peek.
    let topic = match crate::common::first_key(t) {
        Some("topic") => crate::common::string_field(t, r#""topic":""#),
        _ => None,
    };
    let topic = match topic {
        Some(topic) => topic,
        None => {
            let p: Peek = from_str(t)?;
            match (p.topic, p.success, p.op) {
                (Some(topic), _, _) => topic,
                (None, Some(false), _) => {
                    return Err(Fail(format!(
                        "error reply from the venue: {}",
                        p.ret_msg.map(|m| m.get()).unwrap_or_default()
                    )));
                }
                (None, Some(true), _) | (None, None, Some("pong" | "ping")) => {
                    return Ok(MessageKind::Control);
                }
                _ => return Err("unknown message: no topic and not a reply".into()),
            }
        }
    };
    let env: Envelope = from_str(t)?;
    let kind = topic.split('.').next().unwrap_or(topic);
    match kind {
        "publicTrade" => v5_trades(&env, em)?,
        "orderbook" => v5_book(&env, em)?,
        "tickers" => v5_ticker(&env, em)?,
        "kline" => v5_kline(&env, topic, em)?,
        "trade" => legacy_trades(&env, em)?,
        "orderBookL2_25" | "orderBookL2_200" | "orderBook_200" | "orderBook" => {
            legacy_book(&env, topic, em)?;
        }
        other => return Err(Fail(format!("unsupported topic {other:?}"))),
    }
    Ok(MessageKind::Data)
}

fn taker(side: &str) -> Res<Side> {
    match side {
        "Buy" => Ok(Side::Buy),
        "Sell" => Ok(Side::Sell),
        other => Err(Fail(format!("unknown side {other:?}"))),
    }
}

fn v5_ts(env: &Envelope<'_>, em: &Emit<'_, '_>) -> Res<Timestamp> {
    match env.ts {
        Some(ts) => ts.millis(),
        None => Ok(em.recv_ts),
    }
}

fn v5_trades(env: &Envelope<'_>, em: &mut Emit<'_, '_>) -> Res<()> {
    for tr in from_str::<Vec<Trade>>(env.data.get())? {
        let e = Event::Trade(TradeTick {
            instrument: em.instrument(tr.s)?,
            price: tr.p.price()?,
            quantity: tr.v.qty()?,
            aggressor: Some(taker(tr.side)?),
            trade_id: tr.i.to_owned(),
            ts: Timestamp::from_millis(tr.time),
        });
        em.push(e);
    }
    Ok(())
}

fn v5_book(env: &Envelope<'_>, em: &mut Emit<'_, '_>) -> Res<()> {
    let b: Book = from_str(env.data.get())?;
    let instrument = em.instrument(b.s)?;
    let ts = v5_ts(env, em)?;
    let (bids, asks) = (levels(&b.b)?, levels(&b.a)?);
    match env.kind {
        Some("snapshot") => em.snapshot(instrument, bids, asks, b.u, ts),
        Some("delta") => em.delta(instrument, bids, asks, None, b.u, ts),
        other => return Err(Fail(format!("unknown orderbook type {other:?}"))),
    }
    Ok(())
}

fn v5_ticker(env: &Envelope<'_>, em: &mut Emit<'_, '_>) -> Res<()> {
    let tk: Ticker = from_str(env.data.get())?;
    let ts = v5_ts(env, em)?;
    if let (Some(bid), Some(bid_size), Some(ask), Some(ask_size)) =
        (tk.bid1_price, tk.bid1_size, tk.ask1_price, tk.ask1_size)
    {
        let e = Event::Quote(Quote {
            instrument: em.instrument(tk.symbol)?,
            bid: bid.price()?,
            bid_size: bid_size.qty()?,
            ask: ask.price()?,
            ask_size: ask_size.qty()?,
            ts,
        });
        em.push(e);
    }
    if let Some(rate) = tk.funding_rate.filter(|r| !r.as_str().is_empty()) {
        let e = Event::FundingRate(FundingRate {
            instrument: em.instrument(tk.symbol)?,
            rate: rate.decimal()?,
            mark_price: nonempty(tk.mark_price).map(|p| p.price()).transpose()?,
            next_funding: nonempty(tk.next_funding_time)
                .map(|t| t.millis())
                .transpose()?,
            ts,
        });
        em.push(e);
    }
    Ok(())
}

fn v5_kline(env: &Envelope<'_>, topic: &str, em: &mut Emit<'_, '_>) -> Res<()> {
    let symbol = topic.rsplit('.').next().unwrap_or(topic);
    for k in from_str::<Vec<Kline>>(env.data.get())? {
        let interval = match k.interval {
            "D" => "1d".to_owned(),
            "W" => "1w".to_owned(),
            "M" => "1M".to_owned(),
            minutes => match minutes.parse::<i64>() {
                Ok(m) => interval_name(m.saturating_mul(60_000)),
                Err(_) => return Err(Fail(format!("unknown kline interval {minutes:?}"))),
            },
        };
        let e = Event::Bar(Bar {
            instrument: em.instrument(symbol)?,
            interval,
            open: k.open.price()?,
            high: k.high.price()?,
            low: k.low.price()?,
            close: k.close.price()?,
            volume: k.volume.qty()?,
            start: Timestamp::from_millis(k.start),
            closed: k.confirm,
            ts: Timestamp::from_millis(k.timestamp),
        });
        em.push(e);
    }
    Ok(())
}

fn legacy_ts(env: &Envelope<'_>, em: &Emit<'_, '_>) -> Res<Timestamp> {
    match env.timestamp_e6 {
        Some(us) => Ok(Timestamp::from_micros(us.i64()?)),
        None => Ok(em.recv_ts),
    }
}

fn legacy_trades(env: &Envelope<'_>, em: &mut Emit<'_, '_>) -> Res<()> {
    for tr in from_str::<Vec<LegacyTrade>>(env.data.get())? {
        let e = Event::Trade(TradeTick {
            instrument: em.instrument(tr.symbol)?,
            price: tr.price.price()?,
            quantity: tr.size.qty()?,
            aggressor: Some(taker(tr.side)?),
            trade_id: tr.trade_id.to_owned(),
            ts: tr.trade_time_ms.millis()?,
        });
        em.push(e);
    }
    Ok(())
}

/// Sorts legacy entries into bids and asks; `deleted` entries get quantity zero.
fn split_sides<'a>(
    entries: &[LegacyLevel<'a>],
    deleted: bool,
    symbol: &mut Option<&'a str>,
    bids: &mut Vec<BookLevel>,
    asks: &mut Vec<BookLevel>,
) -> Res<()> {
    for e in entries {
        match symbol {
            Some(s) if *s != e.symbol => return Err("book entries name different symbols".into()),
            _ => *symbol = Some(e.symbol),
        }
        let quantity = match (deleted, e.size) {
            (true, _) => Quantity::ZERO,
            (false, Some(size)) => size.qty()?,
            (false, None) => return Err("book entry without size".into()),
        };
        let level = BookLevel {
            price: e.price.price()?,
            quantity,
        };
        match e.side {
            "Buy" => bids.push(level),
            "Sell" => asks.push(level),
            other => return Err(Fail(format!("unknown side {other:?}"))),
        }
    }
    Ok(())
}

fn legacy_book(env: &Envelope<'_>, topic: &str, em: &mut Emit<'_, '_>) -> Res<()> {
    let ts = legacy_ts(env, em)?;
    let sequence = env.cross_seq.map(|s| s.u64()).transpose()?;
    let (mut bids, mut asks) = (Vec::new(), Vec::new());
    let mut symbol = None;
    let data = env.data.get();
    let snapshot = match env.kind {
        Some("snapshot") => {
            let entries: Vec<LegacyLevel> = if data.starts_with('[') {
                from_str(data)?
            } else {
                from_str::<LegacySnapshot>(data)?.order_book
            };
            split_sides(&entries, false, &mut symbol, &mut bids, &mut asks)?;
            true
        }
        Some("delta") => {
            let d: LegacyDelta = from_str(data)?;
            split_sides(&d.delete, true, &mut symbol, &mut bids, &mut asks)?;
            split_sides(&d.update, false, &mut symbol, &mut bids, &mut asks)?;
            split_sides(&d.insert, false, &mut symbol, &mut bids, &mut asks)?;
            false
        }
        other => return Err(Fail(format!("unknown book message type {other:?}"))),
    };
    // An empty delta names no symbol in its entries; the topic always does.
    let symbol = symbol.unwrap_or_else(|| topic.rsplit('.').next().unwrap_or(topic));
    let instrument = em.instrument(symbol)?;
    if snapshot {
        em.snapshot(instrument, bids, asks, sequence, ts);
    } else {
        em.delta(instrument, bids, asks, None, sequence, ts);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::{Exchange, parse};
    use model::{Event, Side, Timestamp};

    const RECV: Timestamp = Timestamp::from_secs(1_700_000_000);

    #[test]
    fn v5_trades_tickers_and_klines() {
        let m = r#"{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1672304486868,"data":[{"T":1672304486865,"s":"BTCUSDT","S":"Buy","v":"0.001","p":"16578.50","L":"PlusTick","i":"20f43950-d8dd-5b31-9112-a178eb6023af","BT":false}]}"#;
        let ev = parse(Exchange::Bybit, m, RECV).unwrap();
        let Event::Trade(t) = &ev[0] else { panic!() };
        assert_eq!(
            (t.price.to_string(), t.aggressor),
            ("16578.5".into(), Some(Side::Buy))
        );
        assert_eq!(t.ts, Timestamp::from_millis(1_672_304_486_865));

        let m = r#"{"topic":"tickers.BTCUSDT","type":"snapshot","data":{"symbol":"BTCUSDT","tickDirection":"PlusTick","price24hPcnt":"0.017103","lastPrice":"17216.00","markPrice":"17217.33","indexPrice":"17227.36","nextFundingTime":"1673280000000","fundingRate":"-0.000212","bid1Price":"17215.50","bid1Size":"84.489","ask1Price":"17216.00","ask1Size":"83.020"},"cs":24987956059,"ts":1673272861686}"#;
        let ev = parse(Exchange::Bybit, m, RECV).unwrap();
        assert_eq!(ev.len(), 2);
        let Event::Quote(q) = &ev[0] else { panic!() };
        assert_eq!(q.ask_size.to_string(), "83.02");
        let Event::FundingRate(f) = &ev[1] else {
            panic!()
        };
        assert_eq!(f.rate.to_string(), "-0.000212");
        assert_eq!(
            f.next_funding,
            Some(Timestamp::from_millis(1_673_280_000_000))
        );

        // A ticker delta with only the mark price changed gives nothing.
        let m = r#"{"topic":"tickers.BTCUSDT","type":"delta","data":{"symbol":"BTCUSDT","markPrice":"17217.00"},"cs":1,"ts":1673272861687}"#;
        assert!(parse(Exchange::Bybit, m, RECV).unwrap().is_empty());

        let m = r#"{"topic":"kline.5.BTCUSDT","data":[{"start":1672324800000,"end":1672325099999,"interval":"5","open":"16649.5","close":"16677","high":"16677","low":"16608","volume":"2.081","turnover":"34666.4005","confirm":false,"timestamp":1672324988882}],"ts":1672324988882,"type":"snapshot"}"#;
        let ev = parse(Exchange::Bybit, m, RECV).unwrap();
        let Event::Bar(b) = &ev[0] else { panic!() };
        assert_eq!((b.interval.as_str(), b.closed), ("5m", false));
    }

    #[test]
    fn replies() {
        for m in [
            r#"{"success":true,"ret_msg":"","conn_id":"x","req_id":"","op":"subscribe"}"#,
            r#"{"success":true,"ret_msg":"pong","conn_id":"x","op":"ping"}"#,
            r#"{"op":"pong","args":["1675418560633"],"conn_id":"x"}"#,
        ] {
            assert!(parse(Exchange::Bybit, m, RECV).unwrap().is_empty());
        }
        let err = parse(
            Exchange::Bybit,
            r#"{"success":false,"ret_msg":"error:handler not found","conn_id":"x","op":"subscribe"}"#,
            RECV,
        )
        .unwrap_err();
        assert!(err.reason.contains("handler not found"));
        assert!(
            parse(
                Exchange::Bybit,
                r#"{"topic":"liquidation.BTCUSDT","data":{}}"#,
                RECV
            )
            .is_err()
        );
    }
}
