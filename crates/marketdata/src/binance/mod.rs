//! Binance spot and USD-M futures.
//!
//! WebSocket: `trade`, `aggTrade`, `bookTicker`, `depthUpdate`, `kline`, futures
//! `markPriceUpdate` and partial depth (`@depth5`), bare or in the combined-stream wrapper
//! `{"stream":..,"data":..}`. REST: depth snapshot, `trades` / `historicalTrades` /
//! `aggTrades`, `klines`, `ticker/bookTicker`. Subscription replies (`{"result":null,"id":1}`)
//! are control messages; `{"code":..,"msg":..}` error bodies are errors.
//!
//! Times: trades use the trade time `T`; depth and bookTicker use the transaction time `T`
//! when the venue sends one (futures), else the event time `E`, else the receive time.
//! `m` (buyer is maker) means the seller was the aggressor.

mod messages;

use model::{Bar, Event, FundingRate, Quote, Side, Timestamp, TradeTick};
use serde::Deserialize;

use crate::common::{Emit, MessageKind, first_key, from_str, levels, string_field};
use crate::error::{Fail, Res};
use messages::{
    AggTrade, BookTicker, Combined, DepthSnapshot, DepthUpdate, KlineEvent, KlineRow, MarkPrice,
    Peek, RestBookTicker, RestTrade, Trade,
};

pub(crate) fn parse(msg: &str, em: &mut Emit<'_, '_>) -> Res<MessageKind> {
    let t = msg.trim();
    match t.as_bytes().first() {
        Some(b'{') => object(t, em),
        Some(b'[') => rest_array(t, em),
        _ => Err("not a JSON object or array".into()),
    }
}

fn object(t: &str, em: &mut Emit<'_, '_>) -> Res<MessageKind> {
    // Fast path: the event type is found by a byte search and the message is parsed once,
    // straight into its typed struct. Anything unusual takes the general path below.
    let combined = match first_key(t) {
        Some("stream") => Some(true),
        Some("e") => Some(false),
        _ => None,
    };
    if let (Some(combined), Some(kind)) = (combined, string_field(t, r#""e":""#)) {
        let start = em.out.len();
        match event(kind, t, combined, em) {
            Ok(Some(k)) => return Ok(k),
            Ok(None) => {}
            Err(_) => em.out.truncate(start),
        }
    }
    general(t, None, em)
}

/// Parses a message whose event type is `kind`; `None` when `kind` is not a known event.
fn event(kind: &str, t: &str, combined: bool, em: &mut Emit<'_, '_>) -> Res<Option<MessageKind>> {
    match kind {
        "trade" => typed(t, combined, em, trade)?,
        "aggTrade" => typed(t, combined, em, agg_trade)?,
        "bookTicker" => typed(t, combined, em, book_ticker)?,
        "depthUpdate" => typed(t, combined, em, depth_update)?,
        "kline" => typed(t, combined, em, kline)?,
        "markPriceUpdate" => typed(t, combined, em, mark_price)?,
        _ => return Ok(None),
    }
    Ok(Some(MessageKind::Data))
}

/// Deserializes `t` as `T` (inside the combined wrapper when `combined`) and converts it.
fn typed<'a, T: Deserialize<'a>>(
    t: &'a str,
    combined: bool,
    em: &mut Emit<'_, '_>,
    convert: fn(T, &mut Emit<'_, '_>) -> Res<()>,
) -> Res<()> {
    let v = if combined {
        from_str::<Combined<T>>(t)?.data
    } else {
        from_str::<T>(t)?
    };
    convert(v, em)
}

/// Routes any object: wrapper, event, control reply, error body or REST body.
fn general(t: &str, stream: Option<&str>, em: &mut Emit<'_, '_>) -> Res<MessageKind> {
    let p: Peek = from_str(t)?;
    if let Some(data) = p.data {
        let inner = data.get();
        if !inner.starts_with('{') {
            return Err("combined-stream \"data\" is not an object".into());
        }
        // The stream name (`btcusdt@depth5`) names the symbol of bodies that lack one.
        return general(inner, p.stream.or(stream), em);
    }
    if let Some(kind) = p.e {
        return match event(kind, t, false, em)? {
            Some(k) => Ok(k),
            None => Err(Fail(format!("unsupported event type {kind:?}"))),
        };
    }
    if p.error.is_some() || (p.code.is_some() && p.msg.is_some()) {
        return Err(Fail(format!(
            "error reply from the venue: {}",
            p.error.or(p.msg).map(|r| r.get()).unwrap_or_default()
        )));
    }
    if p.id.is_some() {
        // `{"result":null,"id":1}`: the reply to a SUBSCRIBE / LIST_SUBSCRIPTIONS request.
        return Ok(MessageKind::Control);
    }
    if p.last_update_id.is_some() {
        let sym = stream.and_then(|s| s.split('@').next());
        depth_snapshot(from_str(t)?, sym, em)?;
        return Ok(MessageKind::Data);
    }
    if p.bid_price.is_some() {
        rest_book_ticker(from_str(t)?, em)?;
        return Ok(MessageKind::Data);
    }
    if p.big_b.is_some() {
        // Spot bookTicker has no "e" field.
        book_ticker(from_str(t)?, em)?;
        return Ok(MessageKind::Data);
    }
    Err("unknown message: no event type, reply id or known REST fields".into())
}

fn aggressor(buyer_is_maker: bool) -> Side {
    if buyer_is_maker {
        Side::Sell
    } else {
        Side::Buy
    }
}

fn trade(m: Trade<'_>, em: &mut Emit<'_, '_>) -> Res<()> {
    let e = Event::Trade(TradeTick {
        instrument: em.instrument(m.s)?,
        price: m.p.price()?,
        quantity: m.q.qty()?,
        aggressor: Some(aggressor(m.m)),
        trade_id: m.t.to_string(),
        ts: Timestamp::from_millis(m.trade_time),
    });
    em.push(e);
    Ok(())
}

fn agg_trade(m: AggTrade<'_>, em: &mut Emit<'_, '_>) -> Res<()> {
    let e = Event::Trade(TradeTick {
        instrument: em.instrument(m.s)?,
        price: m.p.price()?,
        quantity: m.q.qty()?,
        aggressor: Some(aggressor(m.m)),
        trade_id: m.a.to_string(),
        ts: Timestamp::from_millis(m.trade_time),
    });
    em.push(e);
    Ok(())
}

fn book_ticker(m: BookTicker<'_>, em: &mut Emit<'_, '_>) -> Res<()> {
    let ts = m
        .transaction_time
        .or(m.event_time)
        .map_or(em.recv_ts, Timestamp::from_millis);
    let e = Event::Quote(Quote {
        instrument: em.instrument(m.s)?,
        bid: m.b.price()?,
        bid_size: m.bid_qty.qty()?,
        ask: m.a.price()?,
        ask_size: m.ask_qty.qty()?,
        ts,
    });
    em.push(e);
    Ok(())
}

fn depth_update(m: DepthUpdate<'_>, em: &mut Emit<'_, '_>) -> Res<()> {
    let instrument = em.instrument(m.s)?;
    let ts = Timestamp::from_millis(m.transaction_time.unwrap_or(m.event_time));
    em.delta(
        instrument,
        levels(&m.b)?,
        levels(&m.a)?,
        Some(m.first_update_id),
        Some(m.u),
        ts,
    );
    Ok(())
}

fn kline(m: KlineEvent<'_>, em: &mut Emit<'_, '_>) -> Res<()> {
    let k = m.k;
    let e = Event::Bar(Bar {
        instrument: em.instrument(m.s)?,
        interval: k.i.to_owned(),
        open: k.o.price()?,
        high: k.h.price()?,
        low: k.l.price()?,
        close: k.c.price()?,
        volume: k.v.qty()?,
        start: Timestamp::from_millis(k.t),
        closed: k.x,
        ts: Timestamp::from_millis(m.event_time),
    });
    em.push(e);
    Ok(())
}

fn mark_price(m: MarkPrice<'_>, em: &mut Emit<'_, '_>) -> Res<()> {
    let Some(rate) = m.r.filter(|r| !r.is_empty()) else {
        return Ok(()); // no funding on this instrument (e.g. delivery contracts)
    };
    let e = Event::FundingRate(FundingRate {
        instrument: em.instrument(m.s)?,
        rate: crate::common::Num(rate).decimal()?,
        mark_price: Some(m.p.price()?),
        next_funding: m
            .next_funding
            .filter(|t| *t > 0)
            .map(Timestamp::from_millis),
        ts: Timestamp::from_millis(m.event_time),
    });
    em.push(e);
    Ok(())
}

fn depth_snapshot(m: DepthSnapshot<'_>, symbol: Option<&str>, em: &mut Emit<'_, '_>) -> Res<()> {
    let instrument = em.instrument_or_hint(symbol)?;
    let ts = m
        .transaction_time
        .or(m.event_time)
        .map_or(em.recv_ts, Timestamp::from_millis);
    em.snapshot(
        instrument,
        levels(&m.bids)?,
        levels(&m.asks)?,
        Some(m.last_update_id),
        ts,
    );
    Ok(())
}

fn rest_book_ticker(m: RestBookTicker<'_>, em: &mut Emit<'_, '_>) -> Res<()> {
    let e = Event::Quote(Quote {
        instrument: em.instrument(m.symbol)?,
        bid: m.bid_price.price()?,
        bid_size: m.bid_qty.qty()?,
        ask: m.ask_price.price()?,
        ask_size: m.ask_qty.qty()?,
        ts: m.time.map_or(em.recv_ts, Timestamp::from_millis),
    });
    em.push(e);
    Ok(())
}

fn rest_array(t: &str, em: &mut Emit<'_, '_>) -> Res<MessageKind> {
    let first = t[1..].trim_start().as_bytes().first().copied();
    match first {
        Some(b']') => Ok(MessageKind::Data), // an empty list: no trades / candles
        Some(b'[') => {
            rest_klines(from_str(t)?, em)?;
            Ok(MessageKind::Data)
        }
        Some(b'{') => {
            rest_trades(from_str(t)?, em)?;
            Ok(MessageKind::Data)
        }
        _ => Err("unknown REST array: expected trade objects or kline rows".into()),
    }
}

fn rest_trades(rows: Vec<RestTrade<'_>>, em: &mut Emit<'_, '_>) -> Res<()> {
    let instrument = em.instrument_or_hint(None)?;
    let start = em.out.len();
    for r in rows {
        let (id, price, qty, time, maker) = match (r.id, r.agg_id) {
            (Some(id), None) => (id, r.price, r.qty, r.time, r.is_buyer_maker),
            (None, Some(id)) => (id, r.agg_price, r.agg_qty, r.agg_time, r.agg_buyer_maker),
            _ => return Err("trade entry has neither \"id\" nor \"a\" (or both)".into()),
        };
        let (Some(price), Some(qty), Some(time)) = (price, qty, time) else {
            return Err("trade entry lacks price, quantity or time".into());
        };
        em.push(Event::Trade(TradeTick {
            instrument: instrument.clone(),
            price: price.price()?,
            quantity: qty.qty()?,
            aggressor: maker.map(aggressor),
            trade_id: id.to_string(),
            ts: Timestamp::from_millis(time),
        }));
    }
    em.chronological_since(start);
    Ok(())
}

fn rest_klines(rows: Vec<KlineRow<'_>>, em: &mut Emit<'_, '_>) -> Res<()> {
    let instrument = em.instrument_or_hint(None)?;
    for r in rows {
        // closeTime is the last millisecond of the bar, so the length is close - open + 1.
        let interval = em.interval(Some(
            crate::common::spacing(r.close_time, r.open_time, 1).saturating_add(1),
        ))?;
        let closed = Timestamp::from_millis(r.close_time) < em.recv_ts;
        em.push(Event::Bar(Bar {
            instrument: instrument.clone(),
            interval,
            open: r.o.price()?,
            high: r.h.price()?,
            low: r.l.price()?,
            close: r.c.price()?,
            volume: r.v.qty()?,
            start: Timestamp::from_millis(r.open_time),
            closed,
            ts: Timestamp::from_millis(r.close_time),
        }));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::{Exchange, MessageContext, parse, parse_with};
    use model::{Event, Side, Timestamp};

    const RECV: Timestamp = Timestamp::from_secs(1_700_000_000);

    #[test]
    fn bare_and_combined_trades_parse_the_same() {
        let bare = r#"{"e":"trade","E":1639351062244,"s":"ETHUSDT","t":705291099,"p":"4149.74000000","q":"0.43870000","b":7038593583,"a":7038593613,"T":1639351062243,"m":true,"M":true}"#;
        let combined = format!(r#"{{"stream":"ethusdt@trade","data":{bare}}}"#);
        let a = parse(Exchange::Binance, bare, RECV).unwrap();
        let b = parse(Exchange::Binance, &combined, RECV).unwrap();
        assert_eq!(a, b);
        let Event::Trade(t) = &a[0] else {
            panic!("{a:?}")
        };
        assert_eq!(t.price.to_string(), "4149.74");
        assert_eq!(t.aggressor, Some(Side::Sell));
        assert_eq!(t.ts.as_nanos(), 1_639_351_062_243_000_000);
    }

    #[test]
    fn replies_and_errors() {
        let ack = crate::parse_into(
            Exchange::Binance,
            r#"{"result":null,"id":1}"#,
            &MessageContext::new(RECV),
            &mut Vec::new(),
        )
        .unwrap();
        assert_eq!(ack, crate::MessageKind::Control);
        let err = parse(
            Exchange::Binance,
            r#"{"code":-1121,"msg":"Invalid symbol."}"#,
            RECV,
        )
        .unwrap_err();
        assert!(err.reason.contains("Invalid symbol"), "{err}");
        assert!(parse(Exchange::Binance, r#"{"e":"trade","s":"X"}"#, RECV).is_err());
        assert!(parse(Exchange::Binance, "[1,2]", RECV).is_err());
    }

    #[test]
    fn partial_depth_stream_takes_symbol_from_the_stream_name() {
        let m = r#"{"stream":"btcusdt@depth5","data":{"lastUpdateId":7,"bids":[["1.0","2"]],"asks":[["1.1","3"]]}}"#;
        let ev = parse(Exchange::Binance, m, RECV).unwrap();
        let Event::BookSnapshot(s) = &ev[0] else {
            panic!()
        };
        assert_eq!(s.instrument.symbol.as_str(), "BTCUSDT");
        assert_eq!(s.sequence, Some(7));
        assert_eq!(s.ts, RECV);
    }

    #[test]
    fn futures_mark_price_gives_a_funding_rate() {
        let m = r#"{"e":"markPriceUpdate","E":1562305380000,"s":"BTCUSDT","p":"11794.15000000","i":"11784.62659091","P":"11784.25641265","r":"-0.00038167","T":1562306400000}"#;
        let ev = parse(Exchange::BinanceFutures, m, RECV).unwrap();
        let Event::FundingRate(f) = &ev[0] else {
            panic!()
        };
        assert_eq!(f.rate.to_string(), "-0.00038167");
        assert_eq!(f.instrument.venue.as_str(), "binance-futures");
        assert_eq!(
            f.next_funding,
            Some(Timestamp::from_millis(1_562_306_400_000))
        );
    }

    #[test]
    fn rest_lists_need_a_symbol_hint() {
        let body = r#"[{"id":1,"price":"1.5","qty":"2","quoteQty":"3","time":1000,"isBuyerMaker":false,"isBestMatch":true}]"#;
        let err = parse(Exchange::Binance, body, RECV).unwrap_err();
        assert!(err.reason.contains("symbol hint"), "{err}");
        let ctx = MessageContext {
            symbol: Some("btcusdt"),
            ..MessageContext::new(RECV)
        };
        let ev = parse_with(Exchange::Binance, body, &ctx).unwrap();
        let Event::Trade(t) = &ev[0] else { panic!() };
        assert_eq!(t.instrument.symbol.as_str(), "BTCUSDT");
        assert_eq!(t.aggressor, Some(Side::Buy));
    }
}
