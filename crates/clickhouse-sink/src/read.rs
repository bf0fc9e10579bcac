//! Reading the events back: the four tables merged into journal order, page by page.
//!
//! Every value comes from the exact columns (`*_text`, `ts_ns`), never from the
//! `Decimal(38, 18)` or `DateTime` columns, so an event read back equals the event the sink
//! wrote (`PartialEq`) and prints the same digits.
//!
//! **Paging.** Each table is read by keyset on `seq` (`WHERE seq > last ORDER BY seq LIMIT n`),
//! and the four sorted streams are merged: memory holds at most one page per table plus the page
//! handed out, whatever the tables hold. `seq` is not in any table's sort key, so each page
//! reads the `seq` column of the table's rows in range (ClickHouse moves the condition to
//! PREWHERE and reads the other columns only for the rows it keeps); a time range narrows that
//! through `ts`, which is in every sort key.

use std::collections::VecDeque;

use model::{
    AccountId, ClientOrderId, Event, Fill, FillId, InstrumentId, Liquidity, Money, Order, OrderId,
    OrderType, Price, Quantity, Quote, Side, Symbol, TimeInForce, Timestamp, TradeTick, Venue,
};

use crate::client::ClickHouseClient;
use crate::error::ClickHouseError;
use crate::schema::Table;

/// Rows per request and events per page unless set otherwise.
pub const DEFAULT_PAGE: usize = 10_000;

/// Which events to read: journal sequences `from_seq..=to_seq` and event times
/// `from_ts <= ts < to_ts`, each bound optional (all of them: everything stored).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventRange {
    pub from_seq: Option<u64>,
    pub to_seq: Option<u64>,
    pub from_ts: Option<Timestamp>,
    pub to_ts: Option<Timestamp>,
}

impl EventRange {
    /// Everything stored.
    pub fn all() -> EventRange {
        EventRange::default()
    }

    /// The SQL conditions (after `WHERE`), besides the keyset.
    fn conditions(&self) -> String {
        let mut c = Vec::new();
        if let Some(s) = self.from_seq {
            c.push(format!("seq >= {s}"));
        }
        if let Some(s) = self.to_seq {
            c.push(format!("seq <= {s}"));
        }
        // `ts` (seconds, clamped to DateTime's range like the sink writes it) narrows by the
        // sort key; `ts_ns` is the exact bound.
        let secs = |t: Timestamp| {
            t.as_nanos()
                .div_euclid(1_000_000_000)
                .clamp(0, i64::from(u32::MAX))
        };
        if let Some(t) = self.from_ts {
            c.push(format!("ts >= toDateTime({})", secs(t)));
            c.push(format!("ts_ns >= {}", t.as_nanos()));
        }
        if let Some(t) = self.to_ts {
            c.push(format!("ts <= toDateTime({})", secs(t)));
            c.push(format!("ts_ns < {}", t.as_nanos()));
        }
        c.into_iter().map(|s| format!(" AND {s}")).collect()
    }
}

/// An event as stored, with its journal sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub seq: u64,
    pub event: Event,
}

/// Reads the stored quotes, trades, order events and fills in journal sequence order, one
/// page at a time ([`EventReader::next_page`]).
#[derive(Debug)]
pub struct EventReader {
    client: ClickHouseClient,
    range: EventRange,
    page: usize,
    cursors: Vec<Cursor>,
    /// The last sequence handed out: a row stored twice (written by hand; the sink never does)
    /// comes out once.
    last: Option<u64>,
}

impl ClickHouseClient {
    /// A reader of the stored events in `range`, in journal sequence order ([`EventReader`]).
    pub fn events(&self, range: EventRange) -> EventReader {
        EventReader::new(self, range)
    }
}

#[derive(Debug)]
struct Cursor {
    table: Table,
    buf: VecDeque<StoredEvent>,
    /// The highest sequence fetched so far (the keyset).
    after: Option<u64>,
    /// No rows left in range.
    done: bool,
}

impl EventReader {
    pub fn new(client: &ClickHouseClient, range: EventRange) -> EventReader {
        EventReader {
            client: client.clone(),
            range,
            page: DEFAULT_PAGE,
            cursors: Table::ALL
                .iter()
                .map(|&table| Cursor {
                    table,
                    buf: VecDeque::new(),
                    after: None,
                    done: false,
                })
                .collect(),
            last: None,
        }
    }

    /// Rows per request and events per page (at least 1).
    pub fn page_size(mut self, n: usize) -> EventReader {
        self.page = n.max(1);
        self
    }

    /// The next up to `page_size` events in sequence order; empty once everything is read.
    pub async fn next_page(&mut self) -> Result<Vec<StoredEvent>, ClickHouseError> {
        let mut out = Vec::with_capacity(self.page.min(1024));
        while out.len() < self.page {
            // Every table must show its next row before the smallest can be taken.
            for i in 0..self.cursors.len() {
                if self.cursors[i].buf.is_empty() && !self.cursors[i].done {
                    self.fill(i).await?;
                }
            }
            let Some(i) = (0..self.cursors.len())
                .filter(|&i| !self.cursors[i].buf.is_empty())
                .min_by_key(|&i| self.cursors[i].buf[0].seq)
            else {
                break;
            };
            let e = self.cursors[i].buf.pop_front().expect("not empty");
            if self.last.is_none_or(|l| e.seq > l) {
                self.last = Some(e.seq);
                out.push(e);
            }
        }
        Ok(out)
    }

    /// Every event in range (for callers that need them all at once, e.g. a point-in-time
    /// history, which sorts by event time).
    pub async fn read_all(mut self) -> Result<Vec<StoredEvent>, ClickHouseError> {
        let mut all = Vec::new();
        loop {
            let page = self.next_page().await?;
            if page.is_empty() {
                return Ok(all);
            }
            all.extend(page);
        }
    }

    async fn fill(&mut self, i: usize) -> Result<(), ClickHouseError> {
        let c = &self.cursors[i];
        let keyset = c
            .after
            .map(|s| format!(" AND seq > {s}"))
            .unwrap_or_default();
        let sql = format!(
            "SELECT {} FROM `{}`.`{}` WHERE 1{}{keyset} ORDER BY seq LIMIT {}",
            select_list(c.table),
            self.client.database(),
            c.table.name(),
            self.range.conditions(),
            self.page
        );
        let rows = self.client.query(&sql).await?;
        let c = &mut self.cursors[i];
        c.done = rows.len() < self.page;
        for r in &rows {
            let e = parse(c.table, r).map_err(|why| self.client.bad_answer(&sql, why))?;
            c.after = Some(e.seq);
            c.buf.push_back(e);
        }
        Ok(())
    }
}

/// The columns a table's events are rebuilt from: the exact ones only.
fn select_list(t: Table) -> &'static str {
    match t {
        Table::Quotes => {
            "seq, ts_ns, venue, symbol, bid_text, bid_size_text, ask_text, ask_size_text"
        }
        Table::Trades => {
            "seq, ts_ns, venue, symbol, trade_id, aggressor, price_text, quantity_text"
        }
        Table::Orders => {
            "seq, ts_ns, event, order_id, account, client_order_id, venue, symbol, side, \
             order_type, time_in_force, quantity_text, price_text, stop_price_text, reason, message"
        }
        Table::Fills => {
            "seq, ts_ns, fill_id, order_id, account, venue, symbol, side, liquidity, \
             price_text, quantity_text, fee_text"
        }
    }
}

const WIDTHS: [usize; 4] = [8, 8, 16, 12];

/// One row of [`select_list`] back into its event.
fn parse(t: Table, r: &[String]) -> Result<StoredEvent, String> {
    let want = WIDTHS[t.index()];
    if r.len() != want {
        return Err(format!(
            "{}: {} columns, expected {want}",
            t.name(),
            r.len()
        ));
    }
    let m = |e: model::ModelError| format!("{}: {e}", t.name());
    let u64_at = |i: usize| {
        r[i].parse::<u64>()
            .map_err(|_| format!("{}: expected a number, got {:?}", t.name(), r[i]))
    };
    let seq = u64_at(0)?;
    let ts = Timestamp::from_nanos(
        r[1].parse::<i64>()
            .map_err(|_| format!("{}: ts_ns {:?}", t.name(), r[1]))?,
    );
    let inst = |v: usize, s: usize| -> Result<InstrumentId, String> {
        Ok(InstrumentId::new(
            Venue::new(r[v].clone()).map_err(m)?,
            Symbol::new(r[s].clone()).map_err(m)?,
        ))
    };
    let event = match t {
        Table::Quotes => Event::Quote(Quote {
            instrument: inst(2, 3)?,
            bid: Price::parse(&r[4]).map_err(m)?,
            bid_size: Quantity::parse(&r[5]).map_err(m)?,
            ask: Price::parse(&r[6]).map_err(m)?,
            ask_size: Quantity::parse(&r[7]).map_err(m)?,
            ts,
        }),
        Table::Trades => Event::Trade(TradeTick {
            instrument: inst(2, 3)?,
            trade_id: r[4].clone(),
            aggressor: match r[5].as_str() {
                "" => None,
                s => Some(side(s)?),
            },
            price: Price::parse(&r[6]).map_err(m)?,
            quantity: Quantity::parse(&r[7]).map_err(m)?,
            ts,
        }),
        Table::Fills => Event::OrderFilled(Fill {
            fill_id: FillId(u64_at(2)?),
            order_id: OrderId(u64_at(3)?),
            account: AccountId::new(r[4].clone()).map_err(m)?,
            instrument: inst(5, 6)?,
            side: side(&r[7])?,
            liquidity: match r[8].as_str() {
                "maker" => Liquidity::Maker,
                "taker" => Liquidity::Taker,
                s => return Err(format!("fills: liquidity {s:?}")),
            },
            price: Price::parse(&r[9]).map_err(m)?,
            quantity: Quantity::parse(&r[10]).map_err(m)?,
            fee: Money::parse(&r[11]).map_err(m)?,
            ts,
        }),
        Table::Orders => {
            let order_id = OrderId(u64_at(3)?);
            let account = AccountId::new(r[4].clone()).map_err(m)?;
            let text = |i: usize| r[i].clone();
            match r[2].as_str() {
                "submitted" => {
                    let price = |i: usize| -> Result<Option<Price>, String> {
                        match r[i].as_str() {
                            "" => Ok(None),
                            s => Price::parse(s).map(Some).map_err(m),
                        }
                    };
                    // The OMS journals a submission as `Order::new` makes it (pending_new,
                    // nothing filled, updated = created), so that is what it is rebuilt as.
                    let order = Order::new(
                        order_id,
                        ClientOrderId::new(text(5)).map_err(m)?,
                        account,
                        inst(6, 7)?,
                        side(&r[8])?,
                        order_type(&r[9])?,
                        tif(&r[10])?,
                        Quantity::parse(&r[11]).map_err(m)?,
                        price(12)?,
                        price(13)?,
                        ts,
                    )
                    .map_err(m)?;
                    Event::OrderSubmitted { order }
                }
                "accepted" => Event::OrderAccepted {
                    order_id,
                    account,
                    ts,
                },
                "triggered" => Event::OrderTriggered {
                    order_id,
                    account,
                    ts,
                },
                "rejected" => Event::OrderRejected {
                    order_id,
                    account,
                    code: text(14),
                    message: text(15),
                    ts,
                },
                "canceled" => Event::OrderCanceled {
                    order_id,
                    account,
                    reason: text(14),
                    ts,
                },
                "expired" => Event::OrderExpired {
                    order_id,
                    account,
                    reason: text(14),
                    ts,
                },
                s => return Err(format!("orders: event {s:?}")),
            }
        }
    };
    Ok(StoredEvent { seq, event })
}

fn side(s: &str) -> Result<Side, String> {
    match s {
        "buy" => Ok(Side::Buy),
        "sell" => Ok(Side::Sell),
        s => Err(format!("side {s:?}")),
    }
}

fn order_type(s: &str) -> Result<OrderType, String> {
    match s {
        "market" => Ok(OrderType::Market),
        "limit" => Ok(OrderType::Limit),
        "stop" => Ok(OrderType::Stop),
        "stop_limit" => Ok(OrderType::StopLimit),
        s => Err(format!("order_type {s:?}")),
    }
}

fn tif(s: &str) -> Result<TimeInForce, String> {
    match s {
        "gtc" => Ok(TimeInForce::Gtc),
        "ioc" => Ok(TimeInForce::Ioc),
        "fok" => Ok(TimeInForce::Fok),
        "day" => Ok(TimeInForce::Day),
        s => Err(format!("time_in_force {s:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_bound_the_exact_columns_and_narrow_by_seconds() {
        assert_eq!(EventRange::all().conditions(), "");
        let r = EventRange {
            from_seq: Some(3),
            to_seq: Some(9),
            from_ts: Some(Timestamp::from_nanos(-1)),
            to_ts: Some(Timestamp::from_nanos(1_700_000_000_500_000_000)),
        };
        assert_eq!(
            r.conditions(),
            " AND seq >= 3 AND seq <= 9 AND ts >= toDateTime(0) AND ts_ns >= -1 \
             AND ts <= toDateTime(1700000000) AND ts_ns < 1700000000500000000"
        );
    }

    #[test]
    fn every_select_list_has_its_width() {
        for t in Table::ALL {
            assert_eq!(select_list(t).split(',').count(), WIDTHS[t.index()]);
        }
    }

    #[test]
    fn rows_parse_from_the_exact_text() {
        let row = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let e = parse(
            Table::Orders,
            &row(&[
                "4",
                "-7",
                "submitted",
                "12",
                "a",
                "c1",
                "sim",
                "X",
                "sell",
                "stop",
                "ioc",
                "0.000000000000000000000000123",
                "",
                "0.5",
                "",
                "",
            ]),
        )
        .unwrap();
        let Event::OrderSubmitted { order } = &e.event else {
            panic!("{e:?}")
        };
        assert_eq!(order.quantity.to_string(), "0.000000000000000000000000123");
        assert_eq!(order.price, None);
        assert_eq!(order.created_at, Timestamp::from_nanos(-7));
        let bad = parse(Table::Fills, &row(&["1"])).unwrap_err();
        assert!(bad.contains("expected 12"), "{bad}");
        let bad = parse(
            Table::Trades,
            &row(&["1", "0", "sim", "X", "t", "up", "1", "1"]),
        )
        .unwrap_err();
        assert!(bad.contains("side \"up\""), "{bad}");
    }
}
