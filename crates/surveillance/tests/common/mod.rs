#![allow(dead_code)]
//! Record builders for the scenario tests.

use interchange::{Kind, Record};
use model::{Decimal, Liquidity, Side, Timestamp};

pub fn d(s: &str) -> Decimal {
    s.parse().expect("test decimal")
}

/// Milliseconds after a base instant.
pub fn at(base: &str, ms: i64) -> Timestamp {
    let b = Timestamp::parse_rfc3339(base).expect("test base time");
    Timestamp::from_nanos(b.as_nanos() + ms * 1_000_000)
}

pub fn quote(ts: Timestamp, sym: &str, bid: &str, ask: &str, bs: &str, asz: &str) -> Record {
    let mut r = Record::new(ts, Kind::Quote, sym);
    r.bid = Some(d(bid));
    r.ask = Some(d(ask));
    r.bid_size = Some(d(bs));
    r.ask_size = Some(d(asz));
    r
}

pub fn trade(ts: Timestamp, sym: &str, price: &str, qty: &str) -> Record {
    let mut r = Record::new(ts, Kind::Trade, sym);
    r.price = Some(d(price));
    r.qty = Some(d(qty));
    r
}

#[allow(clippy::too_many_arguments)]
pub fn new_limit(
    ts: Timestamp,
    acct: &str,
    owner: &str,
    sym: &str,
    side: Side,
    qty: &str,
    price: &str,
    id: &str,
) -> Record {
    let mut r = Record::new(ts, Kind::OrderNew, sym);
    r.account = Some(acct.into());
    r.owner = Some(owner.into());
    r.side = Some(side);
    r.qty = Some(d(qty));
    r.price = Some(d(price));
    r.order_id = Some(id.into());
    r.order_type = Some("limit".into());
    r.tif = Some("day".into());
    r
}

pub fn new_market(
    ts: Timestamp,
    acct: &str,
    owner: &str,
    sym: &str,
    side: Side,
    qty: &str,
    id: &str,
) -> Record {
    let mut r = Record::new(ts, Kind::OrderNew, sym);
    r.account = Some(acct.into());
    r.owner = Some(owner.into());
    r.side = Some(side);
    r.qty = Some(d(qty));
    r.order_id = Some(id.into());
    r.order_type = Some("market".into());
    r
}

/// A cancel as `journal export` writes it: account, side and remaining qty, no owner.
pub fn cancel(ts: Timestamp, acct: &str, sym: &str, side: Side, qty: &str, id: &str) -> Record {
    let mut r = Record::new(ts, Kind::OrderCancel, sym);
    r.account = Some(acct.into());
    r.side = Some(side);
    r.qty = Some(d(qty));
    r.order_id = Some(id.into());
    r
}

#[allow(clippy::too_many_arguments)]
pub fn fill(
    ts: Timestamp,
    acct: &str,
    sym: &str,
    side: Side,
    qty: &str,
    price: &str,
    order_id: &str,
    fill_id: &str,
    trade_id: &str,
    taker: bool,
) -> Record {
    let mut r = Record::new(ts, Kind::Fill, sym);
    r.account = Some(acct.into());
    r.side = Some(side);
    r.qty = Some(d(qty));
    r.price = Some(d(price));
    r.order_id = Some(order_id.into());
    r.fill_id = Some(fill_id.into());
    r.trade_id = Some(trade_id.into());
    r.liquidity = Some(if taker {
        Liquidity::Taker
    } else {
        Liquidity::Maker
    });
    r
}

/// Feed records one by one (streaming), then finish; collects everything emitted.
pub fn stream(records: &[Record], params: &surveillance::Params) -> Vec<surveillance::Alert> {
    let mut s = surveillance::Scanner::new(params.clone()).expect("params");
    let mut out = Vec::new();
    for r in records {
        out.extend(s.on_record(r));
    }
    out.extend(s.finish());
    out
}
