//! The blotter written from journal deliveries and read back: lifecycle, filters, the
//! idempotency index, restart position, and pagination that never skips or repeats.

use blotter::{Blotter, BlotterWriter, FillQuery, OrderQuery, StatusFilter};
use journal::Delivery;
use model::{
    AccountId, ClientOrderId, Event, Fill, FillId, InstrumentId, Liquidity, Money, Order, OrderId,
    OrderStatus, OrderType, Price, Quantity, Side, Symbol, TimeInForce, Timestamp, Venue,
};

fn inst(sym: &str) -> InstrumentId {
    InstrumentId::new(Venue::new("sim").unwrap(), Symbol::new(sym).unwrap())
}

fn order(id: u64, account: &str, sym: &str, qty: &str, t: i64) -> Order {
    Order::new(
        OrderId(id),
        ClientOrderId::new(format!("c-{id}")).unwrap(),
        AccountId::new(account).unwrap(),
        inst(sym),
        Side::Buy,
        OrderType::Limit,
        TimeInForce::Gtc,
        Quantity::parse(qty).unwrap(),
        Some(Price::parse("100").unwrap()),
        None,
        Timestamp::from_secs(t),
    )
    .unwrap()
}

/// Events become deliveries with consecutive sequence numbers.
struct Feed {
    seq: u64,
    fill: u64,
}

impl Feed {
    fn batch(&mut self, events: Vec<Event>) -> Vec<Delivery> {
        events
            .into_iter()
            .map(|event| {
                self.seq += 1;
                Delivery {
                    seq: self.seq,
                    recorded_at: event.ts(),
                    subject: event.subject(),
                    event,
                }
            })
            .collect()
    }
    fn fill(&mut self, o: &Order, qty: &str, price: &str, t: i64) -> Event {
        self.fill += 1;
        Event::OrderFilled(Fill {
            fill_id: FillId(self.fill),
            order_id: o.order_id,
            account: o.account.clone(),
            instrument: o.instrument.clone(),
            side: o.side,
            quantity: Quantity::parse(qty).unwrap(),
            price: Price::parse(price).unwrap(),
            fee: Money::ZERO,
            liquidity: Liquidity::Maker,
            ts: Timestamp::from_secs(t),
        })
    }
}

fn accepted(o: &Order, t: i64) -> Event {
    Event::OrderAccepted {
        order_id: o.order_id,
        account: o.account.clone(),
        ts: Timestamp::from_secs(t),
    }
}

fn ids(orders: &[Order]) -> Vec<u64> {
    orders.iter().map(|o| o.order_id.0).collect()
}

#[test]
fn orders_and_fills_follow_the_journal_and_filter_and_restart_where_they_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blotter.db");
    let mut w = BlotterWriter::open(&path, 3600).unwrap();
    let mut feed = Feed { seq: 0, fill: 0 };
    let a1 = order(1, "alice", "BTCUSDT", "3", 1);
    let a2 = order(2, "alice", "ETHUSDT", "1", 2);
    let b3 = order(3, "bob", "BTCUSDT", "1", 3);
    let batch = feed.batch(vec![
        Event::OrderSubmitted { order: a1.clone() },
        accepted(&a1, 1),
        Event::OrderSubmitted { order: a2.clone() },
        Event::OrderSubmitted { order: b3.clone() },
    ]);
    w.write(&batch).unwrap();
    let first_fill = feed.fill(&a1, "1", "99", 4);
    let batch = feed.batch(vec![
        first_fill,
        Event::OrderRejected {
            order_id: a2.order_id,
            account: a2.account.clone(),
            code: "risk".into(),
            message: "x".into(),
            ts: Timestamp::from_secs(5),
        },
    ]);
    w.write(&batch).unwrap();
    let second_fill = feed.fill(&a1, "2", "100", 6);
    w.write(&feed.batch(vec![second_fill])).unwrap();
    assert_eq!(w.position().unwrap(), 7);

    let b = Blotter::open(&path);
    let o = b.order(1).unwrap().unwrap();
    assert_eq!(o.status, OrderStatus::Filled);
    assert_eq!(o.filled_quantity, Quantity::parse("3").unwrap());
    // (99 x 1 + 100 x 2) / 3, rounded half-even to 12 places: the OMS's own arithmetic.
    assert_eq!(
        o.avg_fill_price,
        Some(Price::parse("99.666666666667").unwrap())
    );
    assert_eq!(b.order(2).unwrap().unwrap().status, OrderStatus::Rejected);
    assert_eq!(b.order(99).unwrap(), None);

    let q = |f: &dyn Fn(&mut OrderQuery)| {
        let mut q = OrderQuery {
            limit: 100,
            newest_first: true,
            ..OrderQuery::default()
        };
        f(&mut q);
        ids(&b.orders(&q).unwrap().items)
    };
    assert_eq!(q(&|_| {}), vec![3, 2, 1]);
    assert_eq!(q(&|q| q.accounts = Some(vec!["alice".into()])), vec![2, 1]);
    assert_eq!(
        q(&|q| q.accounts = Some(vec!["alice".into(), "bob".into()])),
        vec![3, 2, 1]
    );
    assert_eq!(q(&|q| q.status = Some(StatusFilter::Open)), vec![3]);
    assert_eq!(q(&|q| q.status = Some(StatusFilter::Closed)), vec![2, 1]);
    assert_eq!(q(&|q| q.status = StatusFilter::parse("rejected")), vec![2]);
    assert_eq!(q(&|q| q.symbol = Some("BTCUSDT".into())), vec![3, 1]);
    assert_eq!(
        q(&|q| {
            q.from = Some(Timestamp::from_secs(2));
            q.to = Some(Timestamp::from_secs(3));
        }),
        vec![2]
    );
    assert_eq!(
        q(&|q| {
            q.newest_first = false;
        }),
        vec![1, 2, 3]
    );

    let fills = b
        .fills(&FillQuery {
            accounts: Some(vec!["alice".into()]),
            limit: 10,
            ..FillQuery::default()
        })
        .unwrap();
    assert_eq!(
        fills.items.iter().map(|f| f.fill_id.0).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert!(
        b.fills(&FillQuery {
            accounts: Some(vec!["bob".into()]),
            limit: 10,
            ..FillQuery::default()
        })
        .unwrap()
        .items
        .is_empty()
    );

    // The durable idempotency index.
    assert_eq!(
        b.order_by_client_id("alice", "c-2")
            .unwrap()
            .unwrap()
            .order_id,
        OrderId(2)
    );
    assert!(b.order_by_client_id("bob", "c-2").unwrap().is_none());

    // A reopened writer resumes after its stored position.
    drop(w);
    let w = BlotterWriter::open(&path, 3600).unwrap();
    assert_eq!(w.position().unwrap(), 7);
    assert_eq!(b.counts().unwrap(), (3, 2));
}

#[test]
fn client_order_ids_are_forgotten_after_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blotter.db");
    let mut w = BlotterWriter::open(&path, 60).unwrap();
    let mut feed = Feed { seq: 0, fill: 0 };
    w.write(&feed.batch(vec![
        Event::OrderSubmitted {
            order: order(1, "a", "X", "1", 100),
        },
        Event::OrderSubmitted {
            order: order(2, "a", "X", "1", 150),
        },
    ]))
    .unwrap();
    let b = Blotter::open(&path);
    assert_eq!(w.prune_client_ids(Timestamp::from_secs(170)).unwrap(), 1);
    assert!(b.order_by_client_id("a", "c-1").unwrap().is_none());
    assert!(b.order_by_client_id("a", "c-2").unwrap().is_some());
    // The order itself stays in the blotter.
    assert!(b.order(1).unwrap().is_some());
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
    /// Orders keep arriving between page reads: following the cursor visits every order that
    /// existed when the listing began exactly once (newest first), or every order including
    /// the new ones exactly once (oldest first), in order.
    #[test]
    fn pagination_never_skips_or_repeats_while_orders_are_added(
        initial in 0usize..40,
        added_per_page in 0usize..6,
        limit in 1usize..9,
        newest_first in proptest::bool::ANY,
        accounts in 1usize..3,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blotter.db");
        let mut w = BlotterWriter::open(&path, 3600).unwrap();
        let mut feed = Feed { seq: 0, fill: 0 };
        let mut next_id = 1u64;
        let mut add = |w: &mut BlotterWriter, feed: &mut Feed, n: usize| {
            let events: Vec<Event> = (0..n).map(|_| {
                let id = next_id;
                next_id += 1;
                let acct = format!("acct{}", id as usize % accounts);
                Event::OrderSubmitted { order: order(id, &acct, "BTCUSDT", "1", id as i64) }
            }).collect();
            if !events.is_empty() {
                w.write(&feed.batch(events)).unwrap();
            }
        };
        add(&mut w, &mut feed, initial);
        let b = Blotter::open(&path);
        let existing: Vec<u64> = (1..=initial as u64).collect();
        let mut seen = Vec::new();
        let mut cursor = None;
        for _ in 0..1000 {
            let page = b.orders(&OrderQuery { cursor, limit, newest_first, ..OrderQuery::default() }).unwrap();
            proptest::prop_assert!(page.items.len() <= limit);
            seen.extend(ids(&page.items));
            add(&mut w, &mut feed, added_per_page);
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        let mut sorted = seen.clone();
        sorted.dedup();
        proptest::prop_assert_eq!(sorted.len(), seen.len(), "repeated: {:?}", seen);
        if newest_first {
            let mut want = existing.clone();
            want.reverse();
            proptest::prop_assert_eq!(seen, want);
        } else {
            // Everything that existed, in order, then only newer orders, in order.
            proptest::prop_assert!(seen.windows(2).all(|p| p[0] < p[1]));
            proptest::prop_assert_eq!(&seen[..existing.len().min(seen.len())], &existing[..]);
            let last = seen.last().copied().unwrap_or(0);
            proptest::prop_assert_eq!(seen, (1..=last).collect::<Vec<_>>());
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    /// The positions view restarted from a snapshot anywhere equals one fold of the whole stream.
    #[test]
    fn the_positions_view_restarts_from_a_snapshot_like_an_uninterrupted_fold(
        steps in proptest::collection::vec((0u8..3, proptest::bool::ANY, 1i64..50, -20i64..20), 1..80),
        batch in 1usize..6,
        cut in proptest::prelude::any::<proptest::sample::Index>(),
    ) {
        let mut feed = Feed { seq: 0, fill: 0 };
        let mut events = Vec::new();
        for (i, (acct, buy, qty, px)) in steps.iter().enumerate() {
            let t = i as i64 + 1;
            let price = Price::new(model::Decimal::new(10_000 + px * 10, 2)).unwrap();
            if i % 3 == 0 {
                events.push(Event::Quote(model::Quote {
                    instrument: inst("BTCUSDT"),
                    bid: price,
                    bid_size: Quantity::parse("1").unwrap(),
                    ask: Price::new(price.get() + model::Decimal::ONE).unwrap(),
                    ask_size: Quantity::parse("1").unwrap(),
                    ts: Timestamp::from_secs(t),
                }));
            }
            let mut o = order(i as u64 + 1, &format!("a{acct}"), "BTCUSDT", "100", t);
            o.side = if *buy { Side::Buy } else { Side::Sell };
            let f = feed.fill(&o, &qty.to_string(), &price.to_string(), t);
            events.push(f);
        }
        let deliveries = feed.batch(events);
        let batches: Vec<Vec<Delivery>> = deliveries.chunks(batch).map(<[Delivery]>::to_vec).collect();
        let cut = cut.index(batches.len());
        let (a, b) = runtime::consumer::restart_equivalence(blotter::PositionsView::new, &batches, cut).unwrap();
        proptest::prop_assert_eq!(a, b);
    }
}
