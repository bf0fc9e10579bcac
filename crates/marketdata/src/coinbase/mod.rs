//! Coinbase.
//!
//! * Exchange (ex Pro) feed, messages with a `type`: `match` / `last_match` (trades; `side` is
//!   the maker's side, so the aggressor is the opposite), `ticker` (quote), `l2update`
//!   (delta), `snapshot` (level2 snapshot). `subscriptions` and `heartbeat` are control.
//! * Advanced Trade WebSocket, messages with a `channel`: `market_trades`, `ticker` /
//!   `ticker_batch`, `l2_data` (the `level2` channel), `candles`. `subscriptions`,
//!   `heartbeats` and `status` are control. Here `side` is the taker's side.
//! * Advanced Trade REST: market ticker (`trades` + best bid/ask), `product_book`
//!   (`pricebook`), `candles`.
//!
//! Quotes without sizes: the 2021 Exchange `ticker` and the REST ticker give best bid and ask
//! prices only. They become quotes with `bid_size` / `ask_size` zero, meaning "not reported";
//! consumers that need depth should use the book.

mod messages;

use model::{Bar, BookLevel, Event, Quote, Side, Timestamp, TradeTick};

use crate::common::{Emit, MessageKind, Num, from_str, levels, nonempty};
use crate::error::{Fail, Res};
use messages::{
    AtTicker, AtTrade, Candle, CandlesEvent, Envelope, L2Event, L2Update, Match, Peek, RestCandles,
    RestProductBook, RestTicker, Snapshot, Ticker, TickersEvent, TradesEvent,
};

pub(crate) fn parse(msg: &str, em: &mut Emit<'_, '_>) -> Res<MessageKind> {
    let t = msg.trim();
    if !t.starts_with('{') {
        return Err("not a JSON object".into());
    }
    let p: Peek = from_str(t)?;
    if let Some(kind) = p.kind {
        return exchange_feed(kind, t, p.message, em);
    }
    if let Some(channel) = p.channel {
        return advanced_trade(channel, t, em);
    }
    if p.candles.is_some() {
        rest_candles(from_str(t)?, em)?;
    } else if p.pricebook.is_some() {
        rest_product_book(from_str(t)?, em)?;
    } else if p.trades.is_some() {
        rest_ticker(from_str(t)?, em)?;
    } else {
        return Err("unknown message: no \"type\", \"channel\" or known REST field".into());
    }
    Ok(MessageKind::Data)
}

fn time(s: &str) -> Res<Timestamp> {
    Ok(Timestamp::parse_rfc3339(s)?)
}

fn exchange_feed(
    kind: &str,
    t: &str,
    message: Option<&serde_json::value::RawValue>,
    em: &mut Emit<'_, '_>,
) -> Res<MessageKind> {
    match kind {
        "match" | "last_match" => {
            let m: Match = from_str(t)?;
            let aggressor = match m.side {
                // The maker sold, so the taker bought.
                "sell" => Side::Buy,
                "buy" => Side::Sell,
                other => return Err(Fail(format!("unknown side {other:?}"))),
            };
            let e = Event::Trade(TradeTick {
                instrument: em.instrument(m.product_id)?,
                price: m.price.price()?,
                quantity: m.size.qty()?,
                aggressor: Some(aggressor),
                trade_id: m.trade_id.as_str().to_owned(),
                ts: time(m.time)?,
            });
            em.push(e);
        }
        "ticker" => {
            let m: Ticker = from_str(t)?;
            // A ticker sent right after subscribing may lack the book fields.
            if let (Some(bid), Some(ask)) = (m.best_bid, m.best_ask) {
                let ts = match m.time {
                    Some(s) => time(s)?,
                    None => em.recv_ts,
                };
                let e = quote(
                    em,
                    m.product_id,
                    bid,
                    m.best_bid_size,
                    ask,
                    m.best_ask_size,
                    ts,
                )?;
                em.push(e);
            }
        }
        "l2update" => {
            let m: L2Update = from_str(t)?;
            let instrument = em.instrument(m.product_id)?;
            let (mut bids, mut asks) = (Vec::new(), Vec::new());
            for c in &m.changes {
                let level = c.level.book()?;
                match c.side {
                    "buy" => bids.push(level),
                    "sell" => asks.push(level),
                    other => return Err(Fail(format!("unknown side {other:?}"))),
                }
            }
            let ts = match m.time {
                Some(s) => time(s)?,
                None => em.recv_ts,
            };
            em.delta(instrument, bids, asks, None, None, ts);
        }
        "snapshot" => {
            let m: Snapshot = from_str(t)?;
            let instrument = em.instrument(m.product_id)?;
            let ts = match m.time {
                Some(s) => time(s)?,
                None => em.recv_ts,
            };
            em.snapshot(instrument, levels(&m.bids)?, levels(&m.asks)?, None, ts);
        }
        "subscriptions" | "heartbeat" | "pong" => return Ok(MessageKind::Control),
        "error" => {
            return Err(Fail(format!(
                "error reply from the venue: {}",
                message.map(|m| m.get()).unwrap_or_default()
            )));
        }
        other => return Err(Fail(format!("unsupported message type {other:?}"))),
    }
    Ok(MessageKind::Data)
}

/// A quote; sizes the venue did not report are zero (see the module docs).
fn quote(
    em: &Emit<'_, '_>,
    product: &str,
    bid: Num<'_>,
    bid_size: Option<Num<'_>>,
    ask: Num<'_>,
    ask_size: Option<Num<'_>>,
    ts: Timestamp,
) -> Res<Event> {
    let size = |n: Option<Num<'_>>| -> Res<model::Quantity> {
        match n {
            Some(n) => n.qty(),
            None => Ok(model::Quantity::ZERO),
        }
    };
    Ok(Event::Quote(Quote {
        instrument: em.instrument(product)?,
        bid: bid.price()?,
        bid_size: size(bid_size)?,
        ask: ask.price()?,
        ask_size: size(ask_size)?,
        ts,
    }))
}

fn at_trade(em: &Emit<'_, '_>, tr: &AtTrade<'_>) -> Res<Event> {
    let aggressor = match tr.side {
        "BUY" | "buy" => Some(Side::Buy),
        "SELL" | "sell" => Some(Side::Sell),
        "" | "UNKNOWN_ORDER_SIDE" => None,
        other => return Err(Fail(format!("unknown side {other:?}"))),
    };
    Ok(Event::Trade(TradeTick {
        instrument: em.instrument(tr.product_id)?,
        price: tr.price.price()?,
        quantity: tr.size.qty()?,
        aggressor,
        trade_id: tr.trade_id.as_str().to_owned(),
        ts: time(tr.time)?,
    }))
}

fn advanced_trade(channel: &str, t: &str, em: &mut Emit<'_, '_>) -> Res<MessageKind> {
    match channel {
        "subscriptions" | "heartbeats" | "status" => return Ok(MessageKind::Control),
        "market_trades" | "ticker" | "ticker_batch" | "l2_data" | "level2" | "candles" => {}
        other => return Err(Fail(format!("unsupported channel {other:?}"))),
    }
    let env: Envelope = from_str(t)?;
    let ts = match env.timestamp {
        Some(s) => time(s)?,
        None => em.recv_ts,
    };
    let events = env.events.map_or("[]", |r| r.get());
    match env.channel {
        "market_trades" => {
            let start = em.out.len();
            for ev in from_str::<Vec<TradesEvent>>(events)? {
                for tr in &ev.trades {
                    let e = at_trade(em, tr)?;
                    em.push(e);
                }
            }
            em.chronological_since(start);
        }
        "ticker" | "ticker_batch" => {
            for ev in from_str::<Vec<TickersEvent>>(events)? {
                for tk in &ev.tickers {
                    let AtTicker {
                        product_id,
                        best_bid,
                        best_bid_quantity,
                        best_ask,
                        best_ask_quantity,
                    } = *tk;
                    let e = quote(
                        em,
                        product_id,
                        best_bid,
                        Some(best_bid_quantity),
                        best_ask,
                        Some(best_ask_quantity),
                        ts,
                    )?;
                    em.push(e);
                }
            }
        }
        "l2_data" | "level2" => {
            for ev in from_str::<Vec<L2Event>>(events)? {
                let instrument = em.instrument(ev.product_id)?;
                let (mut bids, mut asks) = (Vec::new(), Vec::new());
                for u in &ev.updates {
                    let level = BookLevel {
                        price: u.price_level.price()?,
                        quantity: u.new_quantity.qty()?,
                    };
                    match u.side {
                        "bid" => bids.push(level),
                        "offer" | "ask" => asks.push(level),
                        other => return Err(Fail(format!("unknown book side {other:?}"))),
                    }
                }
                match ev.kind {
                    "snapshot" => em.snapshot(instrument, bids, asks, None, ts),
                    "update" => em.delta(instrument, bids, asks, None, None, ts),
                    other => return Err(Fail(format!("unknown l2_data event type {other:?}"))),
                }
            }
        }
        _ => {
            // candles: Advanced Trade streams 5-minute candles.
            for ev in from_str::<Vec<CandlesEvent>>(events)? {
                for c in &ev.candles {
                    let e = bar(em, c, "5m", 300, ts)?;
                    em.push(e);
                }
            }
        }
    }
    Ok(MessageKind::Data)
}

fn bar(em: &Emit<'_, '_>, c: &Candle<'_>, interval: &str, secs: i64, now: Timestamp) -> Res<Event> {
    let start = c.start.i64()?;
    let end = Timestamp::from_secs(start.saturating_add(secs));
    Ok(Event::Bar(Bar {
        instrument: em.instrument_or_hint(c.product_id)?,
        interval: interval.to_owned(),
        open: c.open.price()?,
        high: c.high.price()?,
        low: c.low.price()?,
        close: c.close.price()?,
        volume: c.volume.qty()?,
        start: Timestamp::from_secs(start),
        closed: end <= now,
        ts: if end <= now { end } else { now },
    }))
}

fn rest_candles(m: RestCandles<'_>, em: &mut Emit<'_, '_>) -> Res<()> {
    // The interval is not in the body: it is the spacing of the bar starts (or the hint).
    let spacing = match m.candles.as_slice() {
        [a, b, ..] => Some(crate::common::spacing(a.start.i64()?, b.start.i64()?, 1000)),
        _ => None,
    };
    let interval = em.interval(spacing)?;
    let secs = crate::common::interval_millis(&interval)
        .map(|ms| ms / 1000)
        .ok_or_else(|| Fail(format!("unsupported interval {interval:?}")))?;
    let start = em.out.len();
    for c in &m.candles {
        let e = bar(em, c, &interval, secs, em.recv_ts)?;
        em.push(e);
    }
    em.chronological_since(start);
    Ok(())
}

fn rest_product_book(m: RestProductBook<'_>, em: &mut Emit<'_, '_>) -> Res<()> {
    let b = m.pricebook;
    let instrument = em.instrument(b.product_id)?;
    let conv = |v: &[messages::PriceSize<'_>]| -> Res<Vec<BookLevel>> {
        v.iter()
            .map(|l| {
                Ok(BookLevel {
                    price: l.price.price()?,
                    quantity: l.size.qty()?,
                })
            })
            .collect()
    };
    let ts = match b.time {
        Some(s) => time(s)?,
        None => em.recv_ts,
    };
    em.snapshot(instrument, conv(&b.bids)?, conv(&b.asks)?, None, ts);
    Ok(())
}

fn rest_ticker(m: RestTicker<'_>, em: &mut Emit<'_, '_>) -> Res<()> {
    let start = em.out.len();
    for tr in &m.trades {
        let e = at_trade(em, tr)?;
        em.push(e);
    }
    em.chronological_since(start);
    if let (Some(bid), Some(ask)) = (nonempty(m.best_bid), nonempty(m.best_ask)) {
        let product = m
            .trades
            .first()
            .map(|t| t.product_id)
            .or(em.symbol_hint)
            .ok_or_else(|| Fail("ticker names no product; pass a symbol hint".into()))?;
        let e = quote(em, product, bid, None, ask, None, em.recv_ts)?;
        em.push(e);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::{Exchange, parse};
    use model::{Event, Side, Timestamp};

    const RECV: Timestamp = Timestamp::from_secs(1_700_000_000);

    #[test]
    fn advanced_trade_channels() {
        let trades = r#"{"channel":"market_trades","client_id":"","timestamp":"2023-02-09T20:19:35.39625135Z","sequence_num":0,"events":[{"type":"snapshot","trades":[{"trade_id":"000000000","product_id":"ETH-USD","price":"1260.01","size":"0.3","side":"BUY","time":"2019-08-14T20:42:27.265Z"}]}]}"#;
        let ev = parse(Exchange::Coinbase, trades, RECV).unwrap();
        let Event::Trade(t) = &ev[0] else { panic!() };
        assert_eq!(t.aggressor, Some(Side::Buy));
        assert_eq!(t.trade_id, "000000000");
        assert_eq!(
            t.ts,
            Timestamp::parse_rfc3339("2019-08-14T20:42:27.265Z").unwrap()
        );

        let ticker = r#"{"channel":"ticker","client_id":"","timestamp":"2023-02-09T20:30:37.167359596Z","sequence_num":0,"events":[{"type":"snapshot","tickers":[{"type":"ticker","product_id":"BTC-USD","price":"21932.98","volume_24_h":"16038.28770938","low_24_h":"21835.29","high_24_h":"23011.18","low_52_w":"15460","high_52_w":"48240","price_percent_chg_24_h":"-4.15775596190603","best_bid":"21931.98","best_bid_quantity":"8000.21","best_ask":"21933.98","best_ask_quantity":"8038.07770938"}]}]}"#;
        let ev = parse(Exchange::Coinbase, ticker, RECV).unwrap();
        let Event::Quote(q) = &ev[0] else { panic!() };
        assert_eq!(q.ask_size.to_string(), "8038.07770938");
        assert_eq!(q.ts.as_nanos(), 1_675_974_637_167_359_596);

        let l2 = r#"{"channel":"l2_data","client_id":"","timestamp":"2023-02-09T20:32:50.714964855Z","sequence_num":0,"events":[{"type":"update","product_id":"BTC-USD","updates":[{"side":"bid","event_time":"2023-02-09T20:32:50.714964855Z","price_level":"21921.73","new_quantity":"0"},{"side":"offer","event_time":"2023-02-09T20:32:50.714964855Z","price_level":"21921.74","new_quantity":"0.5"}]}]}"#;
        let ev = parse(Exchange::Coinbase, l2, RECV).unwrap();
        let Event::BookDelta(d) = &ev[0] else {
            panic!()
        };
        assert!(d.bids[0].quantity.is_zero());
        assert_eq!(d.asks[0].price.to_string(), "21921.74");

        for control in [
            r#"{"channel":"subscriptions","client_id":"","timestamp":"2023-02-09T20:32:50Z","sequence_num":1,"events":[{"subscriptions":{"level2":["BTC-USD"]}}]}"#,
            r#"{"channel":"heartbeats","client_id":"","timestamp":"2023-06-23T20:31:26.122969572Z","sequence_num":0,"events":[{"current_time":"2023-06-23 20:31:56","heartbeat_counter":3049}]}"#,
            r#"{"type":"heartbeat","sequence":90,"last_trade_id":20,"product_id":"BTC-USD","time":"2014-11-07T08:19:28.464459Z"}"#,
        ] {
            assert!(parse(Exchange::Coinbase, control, RECV).unwrap().is_empty());
        }
        let err = parse(
            Exchange::Coinbase,
            r#"{"type":"error","message":"Failed to subscribe"}"#,
            RECV,
        )
        .unwrap_err();
        assert!(err.reason.contains("Failed to subscribe"));
        assert!(parse(Exchange::Coinbase, r#"{"type":"received"}"#, RECV).is_err());
    }

    #[test]
    fn newer_ticker_has_sizes() {
        let m = r#"{"type":"ticker","sequence":37475248783,"product_id":"ETH-USD","price":"1285.22","best_bid":"1285.04","best_bid_size":"0.46688654","best_ask":"1285.27","best_ask_size":"1.56637040","side":"buy","time":"2022-10-19T23:28:22.061769Z","trade_id":370843401,"last_size":"11.4396987"}"#;
        let ev = parse(Exchange::Coinbase, m, RECV).unwrap();
        let Event::Quote(q) = &ev[0] else { panic!() };
        assert_eq!(q.bid_size.to_string(), "0.46688654");
        assert_eq!(q.ask_size.to_string(), "1.5663704");
    }
}
