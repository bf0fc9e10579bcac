//! Example-based tests of the lifecycle, the cancel codes, idempotency and replay.

use model::{
    AccountId, ClientOrderId, Event, Fill, FillId, InstrumentId, Liquidity, Money, OrderId,
    OrderStatus, OrderType, Price, Quantity, Side, Symbol, TimeInForce, Timestamp, Venue,
};
use rust_decimal_macros::dec;

use crate::{NewOrder, Oms, OmsError, Retention, Submit};

fn acct(s: &str) -> AccountId {
    AccountId::new(s).unwrap()
}
fn btc() -> InstrumentId {
    InstrumentId::new(Venue::new("sim").unwrap(), Symbol::new("BTCUSDT").unwrap())
}
fn eth() -> InstrumentId {
    InstrumentId::new(Venue::new("sim").unwrap(), Symbol::new("ETHUSDT").unwrap())
}
fn q(s: &str) -> Quantity {
    Quantity::parse(s).unwrap()
}
fn p(s: &str) -> Price {
    Price::parse(s).unwrap()
}
fn ts(n: i64) -> Timestamp {
    Timestamp::from_secs(n)
}

/// Test driver: runs a command and applies its event, recording the journal.
#[derive(Default)]
struct Harness {
    oms: Oms,
    journal: Vec<Event>,
    next_fill: u64,
}

impl Harness {
    fn apply(&mut self, e: Event) {
        self.oms.apply(&e).unwrap();
        self.journal.push(e);
    }
    fn submit(&mut self, req: NewOrder, t: i64) -> OrderId {
        match self.oms.submit(req, ts(t)).unwrap() {
            Submit::New(e) => {
                let Event::OrderSubmitted { order } = &e else {
                    panic!("submit returned {e:?}")
                };
                let id = order.order_id;
                self.apply(e);
                id
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    fn accept(&mut self, id: OrderId, t: i64) {
        let e = self.oms.accept(id, ts(t)).unwrap();
        self.apply(e);
    }
    fn fill_event(&mut self, id: OrderId, qty: &str, price: &str, t: i64) -> Event {
        let o = self.oms.order(id).unwrap().clone();
        self.next_fill += 1;
        Event::OrderFilled(Fill {
            fill_id: FillId(self.next_fill),
            order_id: id,
            account: o.account,
            instrument: o.instrument,
            side: o.side,
            quantity: q(qty),
            price: p(price),
            fee: Money::ZERO,
            liquidity: Liquidity::Taker,
            ts: ts(t),
        })
    }
    fn fill(&mut self, id: OrderId, qty: &str, price: &str, t: i64) {
        let e = self.fill_event(id, qty, price, t);
        self.apply(e);
    }
}

fn buy_limit(account: &str, qty: &str, price: &str) -> NewOrder {
    NewOrder::limit(acct(account), btc(), Side::Buy, q(qty), p(price))
}

#[test]
fn full_lifecycle_pending_accepted_partial_filled_with_weighted_average() {
    let mut h = Harness::default();
    let id = h.submit(buy_limit("a", "3", "100"), 1);
    assert_eq!(id, OrderId(1));
    let o = h.oms.order(id).unwrap();
    assert_eq!(o.status, OrderStatus::PendingNew);
    assert_eq!(o.client_order_id.as_str(), "o-1");
    h.accept(id, 2);
    assert_eq!(h.oms.order(id).unwrap().status, OrderStatus::Accepted);
    h.fill(id, "1", "99", 3);
    let o = h.oms.order(id).unwrap();
    assert_eq!(o.status, OrderStatus::PartiallyFilled);
    assert_eq!(o.filled_quantity, q("1"));
    assert_eq!(o.avg_fill_price, Some(p("99")));
    assert_eq!(o.updated_at, ts(3));
    h.fill(id, "2", "100", 4);
    let o = h.oms.order(id).unwrap();
    assert_eq!(o.status, OrderStatus::Filled);
    assert_eq!(o.filled_quantity, q("3"));
    // (99 x 1 + 100 x 2) / 3 = 99.666..., rounded half-even to 12 places.
    assert_eq!(o.avg_fill_price, Some(p("99.666666666667")));
    assert_eq!(h.oms.open_order_count(&acct("a")), 0);
    assert_eq!(h.oms.last_fill_id(), 2);
}

#[test]
fn average_price_is_exact_when_representable() {
    let mut h = Harness::default();
    let id = h.submit(buy_limit("a", "1", "50000"), 1);
    h.accept(id, 1);
    h.fill(id, "0.1", "45000.5", 2);
    h.fill(id, "0.3", "45001.5", 2);
    // (4500.05 + 13500.45) / 0.4 = 45001.25 exactly.
    assert_eq!(h.oms.order(id).unwrap().avg_fill_price, Some(p("45001.25")));
}

#[test]
fn cancel_codes_are_stable_for_every_terminal_status() {
    let mut h = Harness::default();
    let a = acct("a");
    let filled = h.submit(buy_limit("a", "1", "100"), 1);
    h.accept(filled, 1);
    h.fill(filled, "1", "100", 1);
    let canceled = h.submit(buy_limit("a", "1", "100"), 1);
    let e = h.oms.cancel(&a, canceled, ts(2)).unwrap();
    h.apply(e);
    let rejected = h.submit(buy_limit("a", "1", "100"), 1);
    let e = h
        .oms
        .reject(rejected, "max_order_quantity", "too big", ts(2))
        .unwrap();
    h.apply(e);
    let expired = h.submit(
        buy_limit("a", "1", "100").with_time_in_force(TimeInForce::Ioc),
        1,
    );
    h.accept(expired, 1);
    let e = h.oms.expire(expired, "ioc remainder", ts(2)).unwrap();
    h.apply(e);
    let other = h.submit(buy_limit("b", "1", "100"), 1);

    let cases = [
        ("filled", filled, "order_already_filled"),
        ("canceled", canceled, "order_already_canceled"),
        ("rejected", rejected, "order_already_rejected"),
        ("expired", expired, "order_already_expired"),
        ("other account", other, "order_not_found"),
        ("unknown id", OrderId(999), "order_not_found"),
    ];
    for (name, id, code) in cases {
        let err = h.oms.cancel(&a, id, ts(3)).unwrap_err();
        assert_eq!(err.code(), code, "case {name}: {err}");
        assert!(
            err.to_string().contains(&id.to_string()),
            "case {name}: {err}"
        );
    }
    // The owner can still cancel its open order.
    assert!(h.oms.cancel(&acct("b"), other, ts(3)).is_ok());
}

#[test]
fn repeated_client_order_id_returns_the_original_order() {
    let mut h = Harness::default();
    let coid = ClientOrderId::new("my-1").unwrap();
    let id = h.submit(
        buy_limit("a", "1", "100").with_client_order_id(coid.clone()),
        1,
    );
    h.accept(id, 2);
    // Same account, same client id, different content: still the original, nothing new.
    let again = h
        .oms
        .submit(
            buy_limit("a", "5", "90").with_client_order_id(coid.clone()),
            ts(3),
        )
        .unwrap();
    match again {
        Submit::Duplicate(o) => {
            assert_eq!(o.order_id, id);
            assert_eq!(o.status, OrderStatus::Accepted);
            assert_eq!(o.quantity, q("1"));
        }
        other => panic!("expected the original order, got {other:?}"),
    }
    // Another account may use the same client id.
    let other = h.submit(
        buy_limit("b", "1", "100").with_client_order_id(coid.clone()),
        4,
    );
    assert_eq!(other, OrderId(2));
    assert_eq!(h.oms.len(), 2);
    // A journal carrying a second order with a used client id is refused.
    let mut forged = h.oms.order(id).unwrap().clone();
    forged.order_id = OrderId(10);
    forged.status = OrderStatus::PendingNew;
    let err = h
        .oms
        .apply(&Event::OrderSubmitted { order: forged })
        .unwrap_err();
    assert_eq!(err.code(), "duplicate_client_order_id");
}

#[test]
fn generated_client_order_id_skips_ids_the_client_already_chose() {
    let mut h = Harness::default();
    h.submit(
        buy_limit("a", "1", "100").with_client_order_id(ClientOrderId::new("o-2").unwrap()),
        1,
    );
    let id = h.submit(buy_limit("a", "1", "100"), 2);
    assert_eq!(id, OrderId(2));
    assert_eq!(h.oms.order(id).unwrap().client_order_id.as_str(), "o-2-1");
}

#[test]
fn illegal_transitions_are_errors_and_change_nothing() {
    let mut h = Harness::default();
    let id = h.submit(buy_limit("a", "2", "100"), 1);
    let before = h.oms.clone();
    // Fill before the venue accepted.
    let e = h.fill_event(id, "1", "100", 2);
    assert_eq!(h.oms.apply(&e).unwrap_err().code(), "illegal_transition");
    assert_eq!(h.oms, before);
    h.accept(id, 2);
    // Accept twice.
    assert_eq!(
        h.oms.accept(id, ts(3)).unwrap_err().code(),
        "illegal_transition"
    );
    let cases: Vec<(&str, Event, &str)> = vec![
        ("overfill", h.fill_event(id, "3", "100", 3), "overfill"),
        (
            "buy above limit",
            h.fill_event(id, "1", "100.01", 3),
            "fill_mismatch",
        ),
        (
            "zero quantity",
            h.fill_event(id, "0", "100", 3),
            "fill_mismatch",
        ),
        (
            "wrong side",
            {
                let mut e = h.fill_event(id, "1", "100", 3);
                if let Event::OrderFilled(f) = &mut e {
                    f.side = Side::Sell;
                }
                e
            },
            "fill_mismatch",
        ),
        (
            "wrong instrument",
            {
                let mut e = h.fill_event(id, "1", "100", 3);
                if let Event::OrderFilled(f) = &mut e {
                    f.instrument = eth();
                }
                e
            },
            "fill_mismatch",
        ),
        (
            "wrong account",
            {
                let mut e = h.fill_event(id, "1", "100", 3);
                if let Event::OrderFilled(f) = &mut e {
                    f.account = acct("b");
                }
                e
            },
            "account_mismatch",
        ),
    ];
    let before = h.oms.clone();
    for (name, e, code) in cases {
        let err = h.oms.apply(&e).unwrap_err();
        assert_eq!(err.code(), code, "case {name}: {err}");
        assert_eq!(h.oms, before, "case {name} changed state");
    }
    // A partly filled order cannot be rejected, and a duplicate fill id is refused.
    let e = h.fill_event(id, "1", "99", 4);
    h.apply(e.clone());
    assert_eq!(
        h.oms.reject(id, "x", "y", ts(5)).unwrap_err().code(),
        "illegal_transition"
    );
    let mut dup = e;
    if let Event::OrderFilled(f) = &mut dup {
        f.quantity = q("0.5");
    }
    assert_eq!(h.oms.apply(&dup).unwrap_err().code(), "duplicate_fill");
    // Fill on a terminal order.
    h.fill(id, "1", "100", 5);
    let e = h.fill_event(id, "1", "100", 6);
    assert_eq!(h.oms.apply(&e).unwrap_err().code(), "order_already_filled");
}

#[test]
fn order_ids_must_strictly_increase_and_submitted_orders_must_be_fresh() {
    let mut h = Harness::default();
    let id = h.submit(buy_limit("a", "1", "100"), 1);
    let mut o = h.oms.order(id).unwrap().clone();
    o.client_order_id = ClientOrderId::new("x").unwrap();
    let err = h
        .oms
        .apply(&Event::OrderSubmitted { order: o.clone() })
        .unwrap_err();
    assert_eq!(err.code(), "order_id_not_increasing");
    o.order_id = OrderId(5);
    o.status = OrderStatus::Accepted;
    let err = h
        .oms
        .apply(&Event::OrderSubmitted { order: o.clone() })
        .unwrap_err();
    assert_eq!(err.code(), "order_not_fresh");
    // Two submits without applying propose the same id: the second apply is refused.
    let Submit::New(e1) = h.oms.submit(buy_limit("a", "1", "100"), ts(2)).unwrap() else {
        panic!()
    };
    let Submit::New(e2) = h.oms.submit(buy_limit("b", "1", "100"), ts(2)).unwrap() else {
        panic!()
    };
    h.apply(e1);
    assert_eq!(
        h.oms.apply(&e2).unwrap_err().code(),
        "order_id_not_increasing"
    );
}

#[test]
fn invalid_requests_are_refused_with_the_field() {
    let oms = Oms::new();
    let mut req = buy_limit("a", "1", "100");
    req.price = None;
    let err = oms.submit(req, ts(1)).unwrap_err();
    assert_eq!(err.code(), "invalid_order");
    assert!(err.to_string().contains("price"), "{err}");
    let mut req = NewOrder::market(acct("a"), btc(), Side::Sell, q("1"));
    req.stop_price = Some(p("1"));
    assert_eq!(oms.submit(req, ts(1)).unwrap_err().code(), "invalid_order");
    assert!(matches!(
        oms.submit(
            NewOrder::market(acct("a"), btc(), Side::Sell, Quantity::ZERO),
            ts(1)
        ),
        Err(OmsError::InvalidOrder(_))
    ));
}

#[test]
fn day_orders_expire_at_session_end_and_others_stay() {
    let mut h = Harness::default();
    let day = h.submit(
        buy_limit("a", "2", "100").with_time_in_force(TimeInForce::Day),
        1,
    );
    let gtc = h.submit(buy_limit("a", "1", "100"), 1);
    let day_b = h.submit(
        buy_limit("b", "1", "100").with_time_in_force(TimeInForce::Day),
        1,
    );
    h.accept(day, 1);
    h.fill(day, "1", "100", 2);
    let done = h.submit(
        buy_limit("a", "1", "100").with_time_in_force(TimeInForce::Day),
        1,
    );
    h.accept(done, 1);
    h.fill(done, "1", "100", 2);
    let events = h.oms.expire_day_orders(ts(10));
    let ids: Vec<OrderId> = events
        .iter()
        .map(|e| match e {
            Event::OrderExpired { order_id, .. } => *order_id,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(ids, vec![day, day_b]);
    for e in events {
        h.apply(e);
    }
    let o = h.oms.order(day).unwrap();
    assert_eq!(o.status, OrderStatus::Expired);
    assert_eq!(
        o.filled_quantity,
        q("1"),
        "an expired order keeps its fills"
    );
    assert_eq!(h.oms.order(gtc).unwrap().status, OrderStatus::PendingNew);
    assert_eq!(h.oms.open_order_count(&acct("a")), 1);
}

#[test]
fn queries_by_account_instrument_and_resting() {
    let mut h = Harness::default();
    let a = acct("a");
    let o1 = h.submit(buy_limit("a", "1", "100"), 1);
    let o2 = h.submit(
        NewOrder::limit(acct("a"), eth(), Side::Sell, q("1"), p("10")),
        1,
    );
    let o3 = h.submit(buy_limit("b", "1", "100"), 1);
    let o4 = h.submit(buy_limit("a", "1", "100"), 1);
    h.accept(o1, 2);
    h.accept(o3, 2);
    let ids = |v: Vec<&model::Order>| v.iter().map(|o| o.order_id).collect::<Vec<_>>();
    assert_eq!(ids(h.oms.open_orders(&a).collect()), vec![o1, o2, o4]);
    assert_eq!(h.oms.open_order_count(&a), 3);
    // Resting = accepted or partially filled on that instrument; o4 is still pending.
    assert_eq!(ids(h.oms.resting_orders(&a, &btc()).collect()), vec![o1]);
    assert_eq!(
        ids(h.oms.open_orders_on(&a, &btc()).collect()),
        vec![o1, o4]
    );
    assert!(h.oms.order_for_account(&a, o3).is_none());
    assert!(h.oms.order_for_account(&acct("b"), o3).is_some());
    let e = h.oms.cancel(&a, o1, ts(3)).unwrap();
    h.apply(e);
    assert_eq!(h.oms.resting_orders(&a, &btc()).count(), 0);
    assert_eq!(ids(h.oms.open_orders(&a).collect()), vec![o2, o4]);
}

#[test]
fn replay_of_the_journal_rebuilds_the_same_state_and_ignores_other_events() {
    let mut h = Harness::default();
    let a = h.submit(buy_limit("a", "2", "100"), 1);
    let b = h.submit(
        NewOrder {
            order_type: OrderType::StopLimit,
            stop_price: Some(p("101")),
            ..buy_limit("b", "1", "102")
        },
        1,
    );
    h.accept(a, 2);
    h.fill(a, "1", "100", 3);
    h.journal.push(Event::ConfigChanged {
        by: "admin".into(),
        section: "risk".into(),
        change: serde_json::json!({"op": "noop"}),
        ts: ts(3),
    });
    let e = h.oms.reject(b, "price_collar", "too far", ts(4)).unwrap();
    h.apply(e);
    // Through JSON, as the journal stores it.
    let text: Vec<String> = h
        .journal
        .iter()
        .map(|e| serde_json::to_string(e).unwrap())
        .collect();
    let events: Vec<Event> = text
        .iter()
        .map(|s| serde_json::from_str(s).unwrap())
        .collect();
    let rebuilt = Oms::replay(&events).unwrap();
    assert_eq!(rebuilt, h.oms);
    assert_eq!(
        rebuilt.order(a).unwrap().status,
        OrderStatus::PartiallyFilled
    );
    // The next id continues after the journal.
    let Submit::New(Event::OrderSubmitted { order }) =
        rebuilt.submit(buy_limit("a", "1", "100"), ts(5)).unwrap()
    else {
        panic!()
    };
    assert_eq!(order.order_id, OrderId(3));
    assert_eq!(order.price.unwrap().get(), dec!(100));
}

fn short_retention() -> Retention {
    Retention {
        terminal_order_secs: 10,
        max_terminal_orders: 3,
        client_order_id_secs: 100,
        max_client_order_ids: 1_000,
    }
}

#[test]
fn a_terminal_order_leaves_memory_after_its_retention_but_its_client_id_is_still_known() {
    let mut h = Harness {
        oms: Oms::with_retention(short_retention()),
        ..Harness::default()
    };
    let coid = ClientOrderId::new("keep-me").unwrap();
    let id = h.submit(
        buy_limit("a", "1", "100").with_client_order_id(coid.clone()),
        1,
    );
    h.accept(id, 2);
    h.fill(id, "1", "100", 3);
    // Still held at 13 s (ended at 3 s, retention 10 s): a duplicate gets the order itself.
    let open = h.submit(buy_limit("b", "1", "100"), 13);
    assert!(h.oms.order(id).is_some());
    assert!(matches!(
        h.oms.submit(buy_limit("a", "9", "1").with_client_order_id(coid.clone()), ts(13)),
        Ok(Submit::Duplicate(o)) if o.order_id == id
    ));
    // Any order event after 13 s evicts it; the client id is remembered by digest only.
    h.accept(open, 14);
    assert!(h.oms.order(id).is_none(), "evicted after its retention");
    assert_eq!(
        h.oms.cancel(&acct("a"), id, ts(14)).unwrap_err().code(),
        "order_not_found"
    );
    let again = h
        .oms
        .submit(
            buy_limit("a", "9", "1").with_client_order_id(coid.clone()),
            ts(14),
        )
        .unwrap();
    assert_eq!(again, Submit::DuplicateOf(id));
    // The caller found the stored order is not this request's (a digest collision): new order.
    let mut req = buy_limit("a", "9", "1").with_client_order_id(coid.clone());
    req.not_a_duplicate_of = Some(id);
    assert!(matches!(h.oms.submit(req, ts(14)), Ok(Submit::New(_))));
    // After the client-id window (100 s after the end) the id is free again.
    let late = h.submit(buy_limit("b", "1", "100"), 104);
    h.accept(late, 104);
    let reused = h.submit(buy_limit("a", "1", "100").with_client_order_id(coid), 104);
    assert!(reused > late);
    // Open orders are never evicted, however old.
    assert!(h.oms.order(open).is_some());
}

#[test]
fn memory_stays_bounded_over_a_long_stream_of_orders() {
    let mut h = Harness {
        oms: Oms::with_retention(Retention {
            terminal_order_secs: 5,
            max_terminal_orders: 50,
            client_order_id_secs: 30,
            max_client_order_ids: 200,
        }),
        ..Harness::default()
    };
    let mut resting = Vec::new();
    for n in 0..20_000i64 {
        let t = n / 10; // ten orders a second
        let coid = ClientOrderId::new(format!("c{n}")).unwrap();
        let id = h.submit(buy_limit("a", "1", "100").with_client_order_id(coid), t);
        h.accept(id, t);
        match n % 4 {
            0 => h.fill(id, "1", "100", t),
            1 => {
                let e = h.oms.cancel(&acct("a"), id, ts(t)).unwrap();
                h.apply(e);
            }
            2 => {
                let e = h.oms.expire(id, "ioc_remainder", ts(t)).unwrap();
                h.apply(e);
            }
            // Every fourth order rests until it is cancelled 100 orders later.
            _ => resting.push(id),
        }
        if resting.len() > 25 {
            let old = resting.remove(0);
            let e = h.oms.cancel(&acct("a"), old, ts(t)).unwrap();
            h.apply(e);
        }
        assert!(h.oms.open_len() <= 27);
        assert!(h.oms.len() <= h.oms.open_len() + 50, "{} held", h.oms.len());
        assert!(h.oms.client_ids_len() <= h.oms.open_len() + 200);
    }
    assert_eq!(h.oms.last_order_id(), 20_000);
    // The whole history replays into the same bounded state.
    let mut rebuilt = Oms::with_retention(*h.oms.retention());
    for e in &h.journal {
        rebuilt.apply(e).unwrap();
    }
    assert_eq!(rebuilt, h.oms);
}

#[test]
fn generated_client_order_ids_are_not_remembered_for_idempotency() {
    let mut h = Harness::default();
    for t in 1..=5 {
        h.submit(buy_limit("a", "1", "100"), t);
    }
    assert_eq!(
        h.oms.client_ids_len(),
        0,
        "o-<id> ids were never sent by a client"
    );
    h.submit(
        buy_limit("a", "1", "100").with_client_order_id(ClientOrderId::new("mine").unwrap()),
        6,
    );
    assert_eq!(h.oms.client_ids_len(), 1);
    // A client id that merely looks generated for another order is the client's own.
    h.submit(
        buy_limit("a", "1", "100").with_client_order_id(ClientOrderId::new("o-99").unwrap()),
        7,
    );
    assert_eq!(h.oms.client_ids_len(), 2);
}
