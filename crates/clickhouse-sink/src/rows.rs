//! Events as TabSeparated rows, in the column order of [`crate::schema`].
//!
//! TabSeparated is the cheapest text format for ClickHouse to parse and reads the same on 18.16
//! and current releases. One row is one line (strings escape tab, newline and backslash), the
//! journal sequence first, which lets a retry drop rows already stored by looking at line starts.

use std::io::Write;

use chrono::{Datelike, Timelike};
use model::{
    Decimal, Event, Fill, Liquidity, OrderType, Quote, Side, TimeInForce, Timestamp, TradeTick,
};
use rust_decimal::RoundingStrategy;

use crate::schema::Table;

/// Decimal places of the `Decimal(38, 18)` columns.
const SCALE: u32 = 18;

/// The table an event goes to (`None`: the sink does not store it).
pub fn table_of(e: &Event) -> Option<Table> {
    match e {
        Event::Quote(_) => Some(Table::Quotes),
        Event::Trade(_) => Some(Table::Trades),
        Event::OrderSubmitted { .. }
        | Event::OrderAccepted { .. }
        | Event::OrderRejected { .. }
        | Event::OrderCanceled { .. }
        | Event::OrderExpired { .. }
        | Event::OrderTriggered { .. } => Some(Table::Orders),
        Event::OrderFilled(_) => Some(Table::Fills),
        _ => None,
    }
}

/// Appends `e` as one line; false (nothing written) for an event the sink does not store.
pub fn encode(out: &mut Vec<u8>, seq: u64, e: &Event) -> bool {
    match e {
        Event::Quote(q) => quote(out, seq, q),
        Event::Trade(t) => trade(out, seq, t),
        Event::OrderFilled(f) => fill(out, seq, f),
        Event::OrderSubmitted { order } => {
            head(out, seq, order.created_at);
            out.extend_from_slice(b"submitted\t");
            num(out, order.order_id.0);
            text(out, order.account.as_str());
            text(out, order.client_order_id.as_str());
            text(out, order.instrument.venue.as_str());
            text(out, order.instrument.symbol.as_str());
            raw(out, side(order.side));
            raw(out, order_type(order.order_type));
            raw(out, tif(order.time_in_force));
            let (q, p, s) = (
                Some(order.quantity.get()),
                order.price.map(|p| p.get()),
                order.stop_price.map(|p| p.get()),
            );
            for d in [q, p, s] {
                match d {
                    Some(d) => rounded(out, d),
                    None => raw(out, "\\N"),
                }
            }
            for d in [q, p, s] {
                match d {
                    Some(d) => exact(out, d),
                    None => raw(out, ""),
                }
            }
            text(out, "");
            last_text(out, "");
        }
        Event::OrderAccepted {
            order_id,
            account,
            ts,
        }
        | Event::OrderTriggered {
            order_id,
            account,
            ts,
        } => {
            let kind = if matches!(e, Event::OrderAccepted { .. }) {
                "accepted"
            } else {
                "triggered"
            };
            lifecycle(out, seq, *ts, kind, order_id.0, account.as_str(), "", "");
        }
        Event::OrderRejected {
            order_id,
            account,
            code,
            message,
            ts,
        } => lifecycle(
            out,
            seq,
            *ts,
            "rejected",
            order_id.0,
            account.as_str(),
            code,
            message,
        ),
        Event::OrderCanceled {
            order_id,
            account,
            reason,
            ts,
        }
        | Event::OrderExpired {
            order_id,
            account,
            reason,
            ts,
        } => {
            let kind = if matches!(e, Event::OrderCanceled { .. }) {
                "canceled"
            } else {
                "expired"
            };
            lifecycle(
                out,
                seq,
                *ts,
                kind,
                order_id.0,
                account.as_str(),
                reason,
                "",
            );
        }
        _ => return false,
    }
    true
}

fn quote(out: &mut Vec<u8>, seq: u64, q: &Quote) {
    head(out, seq, q.ts);
    text(out, q.instrument.venue.as_str());
    text(out, q.instrument.symbol.as_str());
    let ds = [q.bid.get(), q.bid_size.get(), q.ask.get(), q.ask_size.get()];
    ds.iter().for_each(|d| rounded(out, *d));
    ds.iter().for_each(|d| exact(out, *d));
    end(out);
}

fn trade(out: &mut Vec<u8>, seq: u64, t: &TradeTick) {
    head(out, seq, t.ts);
    text(out, t.instrument.venue.as_str());
    text(out, t.instrument.symbol.as_str());
    text(out, &t.trade_id);
    raw(out, t.aggressor.map_or("", side));
    let ds = [t.price.get(), t.quantity.get()];
    ds.iter().for_each(|d| rounded(out, *d));
    ds.iter().for_each(|d| exact(out, *d));
    end(out);
}

fn fill(out: &mut Vec<u8>, seq: u64, f: &Fill) {
    head(out, seq, f.ts);
    num(out, f.fill_id.0);
    num(out, f.order_id.0);
    text(out, f.account.as_str());
    text(out, f.instrument.venue.as_str());
    text(out, f.instrument.symbol.as_str());
    raw(out, side(f.side));
    raw(
        out,
        match f.liquidity {
            Liquidity::Maker => "maker",
            Liquidity::Taker => "taker",
        },
    );
    let ds = [f.price.get(), f.quantity.get(), f.fee.get()];
    ds.iter().for_each(|d| rounded(out, *d));
    ds.iter().for_each(|d| exact(out, *d));
    end(out);
}

/// An order event other than the submission: no instrument, side, type or quantities.
#[allow(clippy::too_many_arguments)]
fn lifecycle(
    out: &mut Vec<u8>,
    seq: u64,
    ts: Timestamp,
    kind: &str,
    order_id: u64,
    account: &str,
    reason: &str,
    message: &str,
) {
    head(out, seq, ts);
    raw(out, kind);
    num(out, order_id);
    text(out, account);
    // client_order_id, venue, symbol, side, order_type, time_in_force
    out.extend_from_slice(b"\t\t\t\t\t\t");
    // quantity, price, stop_price and their texts
    out.extend_from_slice(b"\\N\t\\N\t\\N\t\t\t\t");
    text(out, reason);
    last_text(out, message);
}

pub(crate) fn side(s: Side) -> &'static str {
    match s {
        Side::Buy => "buy",
        Side::Sell => "sell",
    }
}

fn order_type(t: OrderType) -> &'static str {
    match t {
        OrderType::Market => "market",
        OrderType::Limit => "limit",
        OrderType::Stop => "stop",
        OrderType::StopLimit => "stop_limit",
    }
}

fn tif(t: TimeInForce) -> &'static str {
    match t {
        TimeInForce::Gtc => "gtc",
        TimeInForce::Ioc => "ioc",
        TimeInForce::Fok => "fok",
        TimeInForce::Day => "day",
    }
}

/// `seq`, `ts` (seconds, clamped to DateTime's 1970..2106), `ts_ns` (exact).
fn head(out: &mut Vec<u8>, seq: u64, ts: Timestamp) {
    num(out, seq);
    let ns = ts.as_nanos();
    let secs = ns.div_euclid(1_000_000_000).clamp(0, i64::from(u32::MAX));
    let dt = chrono::DateTime::from_timestamp(secs, 0).unwrap_or_default();
    let _ = write!(
        out,
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}\t{ns}\t",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    );
}

fn num(out: &mut Vec<u8>, n: u64) {
    let _ = write!(out, "{n}\t");
}

fn raw(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(s.as_bytes());
    out.push(b'\t');
}

/// The value for a `Decimal(38, 18)` column: ClickHouse refuses more places than the scale.
fn rounded(out: &mut Vec<u8>, d: Decimal) {
    let d = if d.scale() > SCALE {
        d.round_dp_with_strategy(SCALE, RoundingStrategy::MidpointNearestEven)
    } else {
        d
    };
    let _ = write!(out, "{d}\t");
}

/// The decimal's exact text (no characters to escape).
fn exact(out: &mut Vec<u8>, d: Decimal) {
    let _ = write!(out, "{d}\t");
}

fn text(out: &mut Vec<u8>, s: &str) {
    escape(out, s);
    out.push(b'\t');
}

fn last_text(out: &mut Vec<u8>, s: &str) {
    escape(out, s);
    out.push(b'\n');
}

/// The row's last field was written with its tab: turn it into the line end.
fn end(out: &mut [u8]) {
    if let Some(b) = out.last_mut() {
        *b = b'\n';
    }
}

/// TabSeparated escaping: what would end a field or a row, and the escape character itself.
fn escape(out: &mut Vec<u8>, s: &str) {
    for &b in s.as_bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            0 => out.extend_from_slice(b"\\0"),
            _ => out.push(b),
        }
    }
}

/// The inverse of ClickHouse's TabSeparated escaping, for query results.
pub fn unescape(field: &str) -> String {
    if !field.contains('\\') {
        return field.to_owned();
    }
    let mut out = String::with_capacity(field.len());
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('0') => out.push('\0'),
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some('a') => out.push('\u{7}'),
            Some('v') => out.push('\u{b}'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// The journal sequence a row line starts with.
pub fn line_seq(line: &[u8]) -> Option<u64> {
    let end = line.iter().position(|&b| b == b'\t')?;
    std::str::from_utf8(&line[..end]).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{
        AccountId, ClientOrderId, FillId, InstrumentId, Money, Order, OrderId, Price, Quantity,
        Symbol, Venue,
    };

    fn inst() -> InstrumentId {
        InstrumentId::new(Venue::new("sim").unwrap(), Symbol::new("BTC-USD").unwrap())
    }

    fn fields(e: &Event) -> Vec<String> {
        let mut out = Vec::new();
        assert!(encode(&mut out, 7, e));
        let line = String::from_utf8(out).unwrap();
        assert!(line.ends_with('\n'));
        assert_eq!(line.matches('\n').count(), 1, "one row is one line");
        line.trim_end_matches('\n')
            .split('\t')
            .map(|f| {
                if f == "\\N" {
                    f.to_owned()
                } else {
                    unescape(f)
                }
            })
            .collect()
    }

    fn events() -> Vec<Event> {
        let order = Order::new(
            OrderId(5),
            ClientOrderId::new("c\\1").unwrap(),
            AccountId::new("acct").unwrap(),
            inst(),
            Side::Buy,
            OrderType::Limit,
            TimeInForce::Day,
            Quantity::parse("0.5").unwrap(),
            Some(Price::parse("100.25").unwrap()),
            None,
            Timestamp::from_secs(1_700_000_000),
        )
        .unwrap();
        vec![
            Event::Quote(Quote {
                instrument: inst(),
                bid: Price::parse("1").unwrap(),
                bid_size: Quantity::parse("2").unwrap(),
                ask: Price::parse("3").unwrap(),
                ask_size: Quantity::parse("4").unwrap(),
                ts: Timestamp::from_nanos(-5),
            }),
            Event::Trade(TradeTick {
                instrument: inst(),
                price: Price::parse("1").unwrap(),
                quantity: Quantity::parse("2").unwrap(),
                aggressor: None,
                trade_id: "a\tb\nc".into(),
                ts: Timestamp::from_secs(1),
            }),
            Event::OrderSubmitted { order },
            Event::OrderAccepted {
                order_id: OrderId(5),
                account: AccountId::new("acct").unwrap(),
                ts: Timestamp::from_secs(2),
            },
            Event::OrderRejected {
                order_id: OrderId(5),
                account: AccountId::new("acct").unwrap(),
                code: "R1".into(),
                message: "why\\not".into(),
                ts: Timestamp::from_secs(2),
            },
            Event::OrderCanceled {
                order_id: OrderId(5),
                account: AccountId::new("acct").unwrap(),
                reason: "user".into(),
                ts: Timestamp::from_secs(2),
            },
            Event::OrderExpired {
                order_id: OrderId(5),
                account: AccountId::new("acct").unwrap(),
                reason: "day".into(),
                ts: Timestamp::from_secs(2),
            },
            Event::OrderTriggered {
                order_id: OrderId(5),
                account: AccountId::new("acct").unwrap(),
                ts: Timestamp::from_secs(2),
            },
            Event::OrderFilled(Fill {
                fill_id: FillId(9),
                order_id: OrderId(5),
                account: AccountId::new("acct").unwrap(),
                instrument: inst(),
                side: Side::Sell,
                quantity: Quantity::parse("0.5").unwrap(),
                price: Price::parse("100.25").unwrap(),
                fee: Money::parse("-0.1234567890123456785012").unwrap(),
                liquidity: Liquidity::Maker,
                ts: Timestamp::from_secs(3),
            }),
        ]
    }

    #[test]
    fn every_row_has_its_tables_columns_in_order() {
        for e in events() {
            let table = table_of(&e).unwrap();
            let f = fields(&e);
            assert_eq!(f.len(), table.columns().len(), "{table:?}: {f:?}");
            assert_eq!(f[0], "7");
        }
    }

    #[test]
    fn strings_survive_escaping_and_decimals_keep_their_exact_text() {
        let e = events();
        let trade = fields(&e[1]);
        assert_eq!(trade[5], "a\tb\nc");
        assert_eq!(trade[6], "", "no aggressor");
        let submitted = fields(&e[2]);
        assert_eq!(submitted[6], "c\\1");
        assert_eq!(
            submitted[12..18],
            ["0.5", "100.25", "\\N", "0.5", "100.25", ""]
        );
        let fill = fields(&e[8]);
        // 22 places: rounded half-even to 18 in the Decimal column, exact in the text.
        assert_eq!(fill[12], "-0.123456789012345679");
        assert_eq!(fill[15], "-0.1234567890123456785012");
    }

    #[test]
    fn times_before_1970_clamp_in_the_seconds_column_only() {
        let q = fields(&events()[0]);
        assert_eq!(q[1], "1970-01-01 00:00:00");
        assert_eq!(q[2], "-5");
        let s = fields(&events()[2]);
        assert_eq!(s[1], "2023-11-14 22:13:20");
    }

    #[test]
    fn a_line_starts_with_its_sequence() {
        assert_eq!(line_seq(b"42\tx\n"), Some(42));
        assert_eq!(line_seq(b"x"), None);
    }
}
