//! Exporter snapshots: serialize -> deserialize -> continue gives exactly the records and the
//! state of exporting without interruption; the state is bounded by the open orders.

use interchange::{Exporter, Record};
use model::{
    AccountId, BookDelta, BookLevel, ClientOrderId, Event, Fill, FillId, InstrumentId, Liquidity,
    Money, Order, OrderId, OrderType, Price, Quantity, Quote, Side, Symbol, TimeInForce, Timestamp,
    TradeTick, Venue,
};
use proptest::prelude::*;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*: deterministic and fast; quality is not the point.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn inst(sym: u64) -> InstrumentId {
    InstrumentId::new(
        Venue::new("sim").unwrap(),
        Symbol::new(format!("SYM{sym}")).unwrap(),
    )
}

/// A decimal literal with a random scale (0..=3 places), so a snapshot that lost the scale of
/// a quantity would show in the records.
fn dec(r: &mut Rng, whole_max: u64) -> String {
    let whole = 1 + r.below(whole_max);
    match r.below(4) {
        0 => format!("{whole}"),
        places => format!(
            "{whole}.{:0width$}",
            r.below(10u64.pow(places as u32)),
            width = places as usize
        ),
    }
}

struct Open {
    id: u64,
    account: AccountId,
    instrument: InstrumentId,
    side: Side,
    left: Quantity,
    accepted: bool,
}

/// A random journal: orders submitted, accepted or rejected, filled in pieces, cancelled or
/// expired; quotes, trades and book deltas between them; now and then an event about an order
/// the exporter never saw. At most `max_open` orders are open at once.
fn journal(seed: u64, n: usize, max_open: usize) -> Vec<Event> {
    let mut r = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut t: i64 = 1_704_205_800_000_000_000;
    let (mut next_id, mut next_fill) = (1u64, 1u64);
    let mut open: Vec<Open> = Vec::new();
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        t += r.below(50_000_000) as i64;
        let ts = Timestamp::from_nanos(t);
        let roll = r.below(100);
        if roll < 10 {
            out.push(Event::Quote(Quote {
                instrument: inst(r.below(3)),
                bid: Price::parse(&dec(&mut r, 100)).unwrap(),
                bid_size: Quantity::parse(&dec(&mut r, 10)).unwrap(),
                ask: Price::parse(&dec(&mut r, 100)).unwrap(),
                ask_size: Quantity::parse(&dec(&mut r, 10)).unwrap(),
                ts,
            }));
        } else if roll < 18 {
            out.push(Event::Trade(TradeTick {
                instrument: inst(r.below(3)),
                price: Price::parse(&dec(&mut r, 100)).unwrap(),
                quantity: Quantity::parse(&dec(&mut r, 10)).unwrap(),
                aggressor: [None, Some(Side::Buy), Some(Side::Sell)][r.below(3) as usize],
                trade_id: format!("t{}", r.below(1_000_000)),
                ts,
            }));
        } else if roll < 20 {
            out.push(Event::BookDelta(BookDelta {
                instrument: inst(r.below(3)),
                bids: vec![BookLevel {
                    price: Price::parse("10").unwrap(),
                    quantity: Quantity::parse("1").unwrap(),
                }],
                asks: Vec::new(),
                first_sequence: None,
                sequence: None,
                ts,
            }));
        } else if roll < 45 && open.len() < max_open || open.is_empty() {
            let id = next_id;
            next_id += 1;
            let account = AccountId::new(format!("acct{}", r.below(4))).unwrap();
            let instrument = inst(r.below(3));
            let side = if r.below(2) == 0 {
                Side::Buy
            } else {
                Side::Sell
            };
            let qty = Quantity::parse(&dec(&mut r, 50)).unwrap();
            let (order_type, price) = match r.below(3) {
                0 => (OrderType::Market, None),
                _ => (
                    OrderType::Limit,
                    Some(Price::parse(&dec(&mut r, 100)).unwrap()),
                ),
            };
            let tif = [
                TimeInForce::Gtc,
                TimeInForce::Ioc,
                TimeInForce::Fok,
                TimeInForce::Day,
            ][r.below(4) as usize];
            let order = Order::new(
                OrderId(id),
                ClientOrderId::new(format!("c{id}")).unwrap(),
                account.clone(),
                instrument.clone(),
                side,
                order_type,
                tif,
                qty,
                price,
                None,
                ts,
            )
            .unwrap();
            out.push(Event::OrderSubmitted { order });
            open.push(Open {
                id,
                account,
                instrument,
                side,
                left: qty,
                accepted: false,
            });
        } else {
            let i = r.below(open.len() as u64) as usize;
            let o = &mut open[i];
            let (order_id, account) = (OrderId(o.id), o.account.clone());
            match (o.accepted, r.below(10)) {
                (false, 0) => {
                    out.push(Event::OrderRejected {
                        order_id,
                        account,
                        code: "risk".into(),
                        message: "limit".into(),
                        ts,
                    });
                    open.swap_remove(i);
                }
                (false, _) => {
                    o.accepted = true;
                    out.push(Event::OrderAccepted {
                        order_id,
                        account,
                        ts,
                    });
                }
                (true, 0..=5) => {
                    // A piece of the remaining quantity, or all of it.
                    let left = o.left.get();
                    let piece = if r.below(3) == 0 {
                        left
                    } else {
                        (left / model::Decimal::from(1 + r.below(4))).round_dp(3)
                    };
                    let piece = if piece.is_zero() { left } else { piece };
                    o.left = Quantity::new(left - piece).unwrap();
                    out.push(Event::OrderFilled(Fill {
                        fill_id: FillId(next_fill),
                        order_id,
                        account,
                        instrument: o.instrument.clone(),
                        side: o.side,
                        quantity: Quantity::new(piece).unwrap(),
                        price: Price::parse(&dec(&mut r, 100)).unwrap(),
                        fee: Money::parse(&dec(&mut r, 2)).unwrap(),
                        liquidity: if r.below(2) == 0 {
                            Liquidity::Maker
                        } else {
                            Liquidity::Taker
                        },
                        ts,
                    }));
                    next_fill += 1;
                    if o.left.is_zero() {
                        open.swap_remove(i);
                    }
                }
                (true, 6..=8) => {
                    out.push(Event::OrderCanceled {
                        order_id,
                        account,
                        reason: "user".into(),
                        ts,
                    });
                    open.swap_remove(i);
                }
                (true, _) => {
                    out.push(Event::OrderExpired {
                        order_id,
                        account,
                        reason: "day".into(),
                        ts,
                    });
                    open.swap_remove(i);
                }
            }
        }
        if r.below(100) == 0 {
            // An order the exporter never saw (submitted before its history started).
            out.push(Event::OrderCanceled {
                order_id: OrderId(1_000_000_000 + r.below(1_000)),
                account: AccountId::new("ghost").unwrap(),
                reason: "user".into(),
                ts,
            });
        }
    }
    out.truncate(n);
    out
}

/// Records as text that shows every decimal's scale (the serde form normalizes them).
fn exact(records: &[Record]) -> String {
    format!("{records:?}")
}

fn snapshot(e: &Exporter) -> String {
    serde_json::to_string(e).expect("an exporter serializes")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn snapshot_and_continue_equals_uninterrupted(
        seed in any::<u64>(),
        n in 1usize..400,
        cuts in proptest::collection::vec(0.0f64..1.0, 1..4),
    ) {
        let events = journal(seed, n, 12);
        let mut plain = Exporter::new();
        let want: Vec<Record> = events.iter().filter_map(|e| plain.export(e)).collect();

        let mut cut_at: Vec<usize> = cuts.iter().map(|c| (c * n as f64) as usize).collect();
        cut_at.sort_unstable();
        let mut resumed = Exporter::new();
        let mut got = Vec::new();
        for (i, e) in events.iter().enumerate() {
            if cut_at.contains(&i) {
                let before = snapshot(&resumed);
                resumed = serde_json::from_str(&before).expect("a snapshot deserializes");
                prop_assert_eq!(snapshot(&resumed), before.clone(), "canonical");
            }
            got.extend(resumed.export(e));
        }
        prop_assert_eq!(exact(&got), exact(&want));
        prop_assert_eq!(snapshot(&resumed), snapshot(&plain));
        prop_assert_eq!(resumed, plain);
    }
}

#[test]
fn a_snapshot_keeps_the_scale_of_what_is_left_of_an_order() {
    let account = AccountId::new("a").unwrap();
    let order = Order::new(
        OrderId(7),
        ClientOrderId::new("c7").unwrap(),
        account.clone(),
        inst(0),
        Side::Buy,
        OrderType::Limit,
        TimeInForce::Day,
        Quantity::parse("10.5").unwrap(),
        Some(Price::parse("99.9").unwrap()),
        None,
        Timestamp::from_nanos(1),
    )
    .unwrap();
    let mut e = Exporter::new();
    assert_eq!(e.export(&Event::OrderSubmitted { order }), None);
    let mut e: Exporter = serde_json::from_str(&snapshot(&e)).unwrap();
    let new = e
        .export(&Event::OrderAccepted {
            order_id: OrderId(7),
            account: account.clone(),
            ts: Timestamp::from_nanos(2),
        })
        .expect("the accepted order's order_new");
    assert_eq!(new.tif.as_deref(), Some("day"));
    assert_eq!(new.order_type.as_deref(), Some("limit"));
    e.export(&Event::OrderFilled(Fill {
        fill_id: FillId(1),
        order_id: OrderId(7),
        account: account.clone(),
        instrument: inst(0),
        side: Side::Buy,
        quantity: Quantity::parse("0.5").unwrap(),
        price: Price::parse("99.9").unwrap(),
        fee: Money::parse("0").unwrap(),
        liquidity: Liquidity::Maker,
        ts: Timestamp::from_nanos(3),
    }))
    .expect("a fill record");
    // 10.5 - 0.5 = 10.0: the decimal keeps one place, and so must the snapshot.
    let mut e: Exporter = serde_json::from_str(&snapshot(&e)).unwrap();
    let cancel = e
        .export(&Event::OrderCanceled {
            order_id: OrderId(7),
            account,
            reason: "user".into(),
            ts: Timestamp::from_nanos(4),
        })
        .expect("the cancel record");
    assert_eq!(cancel.qty.map(|q| q.to_string()), Some("10.0".to_string()));
    assert_eq!(e.stats().open_orders, 0);
    assert_eq!(Exporter::SNAPSHOT_VERSION, 1);
}

#[test]
fn state_is_bounded_by_the_open_orders_over_a_long_journal() {
    const MAX_OPEN: usize = 25;
    let events = journal(99, 200_000, MAX_OPEN);
    let orders = events
        .iter()
        .filter(|e| matches!(e, Event::OrderSubmitted { .. }))
        .count();
    let span = events[events.len() - 1].ts().as_nanos() - events[0].ts().as_nanos();
    assert!(span > 3_600_000_000_000, "hours of journal: {span} ns");
    assert!(orders > 40_000, "many distinct orders: {orders}");

    let mut e = Exporter::new();
    let mut peak = e.stats();
    for (i, ev) in events.iter().enumerate() {
        e.export(ev);
        if i % 100 == 0 {
            let s = e.stats();
            peak.open_orders = peak.open_orders.max(s.open_orders);
            peak.unaccepted = peak.unaccepted.max(s.unaccepted);
        }
    }
    // The journal never has more than MAX_OPEN orders open (submitted, not yet finished);
    // every finished one is forgotten.
    assert!(peak.open_orders <= MAX_OPEN, "{peak:?}");
    assert!(peak.unaccepted <= MAX_OPEN, "{peak:?}");
    assert!(peak.open_orders > 0, "{peak:?}");
}
