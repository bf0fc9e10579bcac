//! Reading events back from a real server (`TEST_CLICKHOUSE_URL`, default
//! http://127.0.0.1:8123; skipped without one, failing under `CI=true`): what the sink wrote
//! comes back equal, in journal sequence order, page by page and within a range.

use std::time::Duration;

use clickhouse_sink::{ClickHouseSink, EventRange, StoredEvent};
use journal::Delivery;
use model::{
    AccountId, ClientOrderId, Event, Fill, FillId, InstrumentId, Liquidity, Money, Order, OrderId,
    OrderType, Price, Quantity, Quote, Side, Symbol, TimeInForce, Timestamp, TradeTick, Venue,
};
use runtime::Consumer;

mod common;
use common::{TestDb, deliveries};

const WAIT: Duration = Duration::from_secs(10);

fn delivery(seq: u64, event: Event) -> Delivery {
    Delivery {
        seq,
        recorded_at: event.ts(),
        subject: event.subject(),
        event,
    }
}

/// Every kind of event the sink stores, with the awkward values (escapes, 27 places, before
/// 1970, absent prices and aggressor), and events it does not store in between.
fn awkward() -> Vec<Delivery> {
    let inst = InstrumentId::new(
        Venue::new("coinbase").unwrap(),
        Symbol::new("BTC-USD").unwrap(),
    );
    let account = AccountId::new("acct:1@x").unwrap();
    let order = |id: u64, t: OrderType, price: Option<&str>, stop: Option<&str>| {
        Order::new(
            OrderId(id),
            ClientOrderId::new(format!("it's\\mine-{id}")).unwrap(),
            account.clone(),
            inst.clone(),
            Side::Sell,
            t,
            TimeInForce::Day,
            Quantity::parse("0.000000000000000000000000123").unwrap(),
            price.map(|p| Price::parse(p).unwrap()),
            stop.map(|p| Price::parse(p).unwrap()),
            Timestamp::from_nanos(1_700_000_000_123_456_789 + id as i64),
        )
        .unwrap()
    };
    let ts = |n: i64| Timestamp::from_nanos(1_700_000_000_000_000_000 + n);
    let lifecycle = |id: u64| {
        let (order_id, account) = (OrderId(id), account.clone());
        [
            Event::OrderAccepted {
                order_id,
                account: account.clone(),
                ts: ts(1),
            },
            Event::OrderTriggered {
                order_id,
                account: account.clone(),
                ts: ts(2),
            },
            Event::OrderRejected {
                order_id,
                account: account.clone(),
                code: "PRICE_COLLAR".into(),
                message: "price 'x'\nout of band\\".into(),
                ts: ts(3),
            },
            Event::OrderCanceled {
                order_id,
                account: account.clone(),
                reason: "user".into(),
                ts: ts(4),
            },
            Event::OrderExpired {
                order_id,
                account,
                reason: "day".into(),
                ts: ts(5),
            },
        ]
    };
    let mut events = vec![
        Event::Quote(Quote {
            instrument: inst.clone(),
            bid: Price::parse("45000.10").unwrap(),
            bid_size: Quantity::parse("1.5").unwrap(),
            ask: Price::parse("45000.2").unwrap(),
            ask_size: Quantity::parse("0").unwrap(),
            ts: Timestamp::from_nanos(-1_500_000_000),
        }),
        Event::IdsReserved {
            orders_through: 1,
            fills_through: 1,
            ts: Timestamp::from_secs(1),
        },
        Event::Trade(TradeTick {
            instrument: inst.clone(),
            price: Price::parse("45000.15").unwrap(),
            quantity: Quantity::parse("0.001").unwrap(),
            aggressor: None,
            trade_id: "a\tb\nc\\d'e\\N".into(),
            ts: ts(0),
        }),
        Event::Trade(TradeTick {
            instrument: inst.clone(),
            price: Price::parse("999999999999999.999999999999").unwrap(),
            quantity: Quantity::parse("7").unwrap(),
            aggressor: Some(Side::Buy),
            trade_id: String::new(),
            ts: ts(-3),
        }),
        Event::OrderSubmitted {
            order: order(
                41,
                OrderType::StopLimit,
                Some("999999999999999.999999999999"),
                Some("0.5"),
            ),
        },
        Event::OrderSubmitted {
            order: order(42, OrderType::Market, None, None),
        },
        Event::OrderSubmitted {
            order: order(43, OrderType::Stop, None, Some("1")),
        },
        Event::OrderSubmitted {
            order: order(44, OrderType::Limit, Some("0.0001"), None),
        },
    ];
    events.extend(lifecycle(41));
    events.push(Event::OrderFilled(Fill {
        fill_id: FillId(7),
        order_id: OrderId(41),
        account: account.clone(),
        instrument: inst.clone(),
        side: Side::Sell,
        quantity: Quantity::parse("0.12345678").unwrap(),
        price: Price::parse("45000.12345678").unwrap(),
        // 21 places: only the text column holds it exactly.
        fee: Money::parse("-0.004166261940844253445").unwrap(),
        liquidity: Liquidity::Maker,
        ts: ts(9),
    }));
    events.push(Event::IdsReserved {
        orders_through: 2,
        fills_through: 2,
        ts: ts(10),
    });
    events
        .into_iter()
        .enumerate()
        .map(|(i, e)| delivery(100 + i as u64, e))
        .collect()
}

fn stored(batch: &[Delivery]) -> Vec<StoredEvent> {
    batch
        .iter()
        .filter(|d| !matches!(d.event, Event::IdsReserved { .. }))
        .map(|d| StoredEvent {
            seq: d.seq,
            event: d.event.clone(),
        })
        .collect()
}

#[tokio::test]
async fn every_kind_comes_back_equal_in_sequence_order() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let mut sink = ClickHouseSink::connect(&db.cfg, WAIT).await.unwrap();
    let batch = awkward();
    // Two batches, so the tables' rows sit in more than one part.
    sink.apply(&batch[..7], &mut Vec::new()).unwrap();
    sink.apply(&batch[7..], &mut Vec::new()).unwrap();
    let want = stored(&batch);
    let client = db.client();

    for page in [1, 2, 3, 1000] {
        let mut reader = client.events(EventRange::all()).page_size(page);
        let mut got = Vec::new();
        loop {
            let p = reader.next_page().await.unwrap();
            if p.is_empty() {
                break;
            }
            assert!(
                p.len() <= page,
                "a page of {} for page size {page}",
                p.len()
            );
            got.extend(p);
        }
        assert_eq!(got, want, "page size {page}");
        // The exact digits too (PartialEq on decimals ignores trailing zeros).
        assert_eq!(
            serde_json::to_string(&got.iter().map(|e| &e.event).collect::<Vec<_>>()).unwrap(),
            serde_json::to_string(&want.iter().map(|e| &e.event).collect::<Vec<_>>()).unwrap()
        );
    }
}

#[tokio::test]
async fn many_pages_in_order_and_ranges_by_sequence_and_time() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let mut sink = ClickHouseSink::connect(&db.cfg, WAIT).await.unwrap();
    // More than two default pages of each kind's mix; four batches.
    let all = deliveries(1, 25_003);
    for chunk in all.chunks(8_192) {
        sink.apply(chunk, &mut Vec::new()).unwrap();
    }
    let want = stored(&all);
    let client = db.client();
    let got = client.events(EventRange::all()).read_all().await.unwrap();
    assert_eq!(got.len(), want.len());
    assert!(got == want, "the events differ from what was written");

    let by_seq = EventRange {
        from_seq: Some(9_998),
        to_seq: Some(20_001),
        ..EventRange::default()
    };
    let got = client
        .events(by_seq)
        .page_size(777)
        .read_all()
        .await
        .unwrap();
    let expect: Vec<_> = want
        .iter()
        .filter(|e| (9_998..=20_001).contains(&e.seq))
        .cloned()
        .collect();
    assert_eq!(got.len(), 10_004);
    assert!(got == expect);

    // Event times of `event(n)` are 1,000,003 ns apart: a range cutting inside a second.
    let (from, to) = (want[3_000].event.ts(), want[17_000].event.ts());
    let by_time = EventRange {
        from_ts: Some(from),
        to_ts: Some(to),
        ..EventRange::default()
    };
    let got = client.events(by_time).read_all().await.unwrap();
    let expect: Vec<_> = want
        .iter()
        .filter(|e| e.event.ts() >= from && e.event.ts() < to)
        .cloned()
        .collect();
    assert_eq!(got.len(), 14_000);
    assert!(got == expect);
}

#[tokio::test]
async fn an_empty_database_reads_nothing() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let _sink = ClickHouseSink::connect(&db.cfg, WAIT).await.unwrap();
    let mut reader = db.client().events(EventRange::all());
    assert!(reader.next_page().await.unwrap().is_empty());
    assert!(reader.next_page().await.unwrap().is_empty());
}
