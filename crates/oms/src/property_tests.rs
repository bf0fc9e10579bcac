//! Property tests: random command sequences under a random retention, the lifecycle
//! invariants after every step, restarts from a snapshot at a random step, replay of the
//! produced journal into a fresh OMS, and memory bounded by the retention.

use std::collections::HashMap;

use model::{
    AccountId, ClientOrderId, Decimal, Event, Fill, FillId, InstrumentId, Liquidity, Money, Order,
    OrderId, OrderType, Price, Quantity, Side, Symbol, TimeInForce, Timestamp, Venue,
};
use proptest::prelude::*;
use rust_decimal::RoundingStrategy;

use crate::{AVG_PRICE_DP, NewOrder, Oms, Retention, Submit};

#[derive(Debug, Clone)]
enum Op {
    Submit {
        account: u8,
        client_id: Option<u8>,
        buy: bool,
        order_type: u8,
        tif: u8,
        /// Tenths of a unit.
        qty: i64,
        /// Cents.
        price: i64,
    },
    Accept(usize),
    /// Quantity in tenths; price offset in cents from the order's limit (or 100.00).
    Fill {
        idx: usize,
        qty: i64,
        price_off: i64,
        wrong_side: bool,
    },
    Cancel {
        account: u8,
        idx: usize,
    },
    Reject(usize),
    Expire(usize),
    SessionEnd,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u8..3, proptest::option::of(0u8..4), any::<bool>(), 0u8..4, 0u8..4, 1i64..=30, 9_000i64..=11_000)
            .prop_map(|(account, client_id, buy, order_type, tif, qty, price)| Op::Submit {
                account, client_id, buy, order_type, tif, qty, price
            }),
        3 => any::<usize>().prop_map(Op::Accept),
        5 => (any::<usize>(), 1i64..=20, -300i64..=300, proptest::bool::weighted(0.05))
            .prop_map(|(idx, qty, price_off, wrong_side)| Op::Fill { idx, qty, price_off, wrong_side }),
        1 => (0u8..3, any::<usize>()).prop_map(|(account, idx)| Op::Cancel { account, idx }),
        1 => any::<usize>().prop_map(Op::Reject),
        1 => any::<usize>().prop_map(Op::Expire),
        1 => Just(Op::SessionEnd),
    ]
}

fn account(n: u8) -> AccountId {
    AccountId::new(format!("acct{n}")).unwrap()
}

fn instrument() -> InstrumentId {
    InstrumentId::new(Venue::new("sim").unwrap(), Symbol::new("BTCUSDT").unwrap())
}

fn request(op: &Op) -> Option<NewOrder> {
    let Op::Submit {
        account: a,
        client_id,
        buy,
        order_type,
        tif,
        qty,
        price,
    } = *op
    else {
        return None;
    };
    let price = Price::new(Decimal::new(price, 2)).ok()?;
    let order_type = [
        OrderType::Market,
        OrderType::Limit,
        OrderType::Stop,
        OrderType::StopLimit,
    ][usize::from(order_type)];
    let (price, stop) = match order_type {
        OrderType::Market => (None, None),
        OrderType::Limit => (Some(price), None),
        OrderType::Stop => (None, Some(price)),
        OrderType::StopLimit => (Some(price), Some(price)),
    };
    Some(NewOrder {
        account: account(a),
        client_order_id: client_id.map(|c| ClientOrderId::new(format!("c{c}")).unwrap()),
        instrument: instrument(),
        side: if buy { Side::Buy } else { Side::Sell },
        order_type,
        time_in_force: [
            TimeInForce::Gtc,
            TimeInForce::Ioc,
            TimeInForce::Fok,
            TimeInForce::Day,
        ][usize::from(tif)],
        quantity: Quantity::new(Decimal::new(qty, 1)).ok()?,
        price,
        stop_price: stop,
        not_a_duplicate_of: None,
    })
}

/// The four invariants plus index consistency, for every order.
fn check_invariants(
    oms: &Oms,
    terminal: &mut HashMap<OrderId, Order>,
    fills_of: &HashMap<OrderId, Vec<Fill>>,
) -> Result<(), TestCaseError> {
    let r = oms.retention();
    prop_assert!(
        oms.len() <= oms.open_len() + r.max_terminal_orders,
        "{} held, {} open, retention {:?}",
        oms.len(),
        oms.open_len(),
        r
    );
    prop_assert!(oms.client_ids_len() <= oms.open_len() + r.max_client_order_ids);
    for o in oms.orders() {
        prop_assert!(o.filled_quantity <= o.quantity, "overfilled {o:?}");
        let fills: &[Fill] = fills_of.get(&o.order_id).map_or(&[], Vec::as_slice);
        let sum: Decimal = fills.iter().map(|f| f.quantity.get()).sum();
        prop_assert_eq!(
            sum,
            o.filled_quantity.get(),
            "fills do not add up for {:?}",
            o
        );
        if fills.is_empty() {
            prop_assert_eq!(o.avg_fill_price, None);
        } else {
            let notional: Decimal = fills.iter().map(|f| f.price.get() * f.quantity.get()).sum();
            let mean = (notional / sum)
                .round_dp_with_strategy(AVG_PRICE_DP, RoundingStrategy::MidpointNearestEven);
            prop_assert_eq!(
                o.avg_fill_price.map(Price::get),
                Some(mean),
                "avg of {:?}",
                o
            );
        }
        let in_open_index = oms
            .open_orders(&o.account)
            .any(|x| x.order_id == o.order_id);
        prop_assert_eq!(in_open_index, o.status.is_open(), "open index for {:?}", o);
        if let Some(before) = terminal.get(&o.order_id) {
            prop_assert_eq!(before, o, "a terminal order changed");
        } else if o.status.is_terminal() {
            terminal.insert(o.order_id, o.clone());
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_sequences_keep_the_invariants_and_replay_identically(
        ops in proptest::collection::vec(op(), 1..80),
        retention in (0u64..20, 0usize..6, 0u64..40, 0usize..8).prop_map(|(t, n, c, m)| Retention {
            terminal_order_secs: t,
            max_terminal_orders: n,
            client_order_id_secs: c,
            max_client_order_ids: m,
        }),
        snapshot_at in any::<prop::sample::Index>(),
    ) {
        let mut oms = Oms::with_retention(retention);
        let mut journal: Vec<Event> = Vec::new();
        let mut terminal = HashMap::new();
        let mut fills_of: HashMap<OrderId, Vec<Fill>> = HashMap::new();
        // Every order ever submitted: what the blotter would answer for an evicted order.
        let mut history: HashMap<OrderId, Order> = HashMap::new();
        let mut next_fill = 0u64;
        let restart = snapshot_at.index(ops.len());
        for (step, op) in ops.iter().enumerate() {
            if step == restart {
                // A restart from a snapshot: the restored OMS is the same OMS.
                let json = serde_json::to_string(&oms).unwrap();
                let restored: Oms = serde_json::from_str(&json).unwrap();
                prop_assert_eq!(&restored, &oms);
                oms = restored;
            }
            let t = Timestamp::from_secs(step as i64);
            let ids: Vec<OrderId> = oms.orders().map(|o| o.order_id).collect();
            let pick = |i: usize| (!ids.is_empty()).then(|| ids[i % ids.len()]);
            let proposed: Vec<Result<Event, crate::OmsError>> = match op {
                Op::Submit { .. } => {
                    let Some(req) = request(op) else { continue };
                    match oms.submit(req.clone(), t) {
                        Ok(Submit::New(e)) => vec![Ok(e)],
                        Ok(Submit::Duplicate(orig)) => {
                            // Idempotency: only for a client id the account really used.
                            let coid = req.client_order_id.as_ref();
                            prop_assert_eq!(Some(&orig.client_order_id), coid);
                            prop_assert_eq!(&orig.account, &req.account);
                            prop_assert_eq!(oms.order(orig.order_id), Some(&orig));
                            vec![]
                        }
                        Ok(Submit::DuplicateOf(id)) => {
                            // Left memory: the stored order must really be the same request's.
                            prop_assert!(oms.order(id).is_none());
                            let orig = &history[&id];
                            prop_assert_eq!(Some(&orig.client_order_id), req.client_order_id.as_ref());
                            prop_assert_eq!(&orig.account, &req.account);
                            vec![]
                        }
                        Err(e) => vec![Err(e)],
                    }
                }
                Op::Accept(i) => pick(*i).map(|id| oms.accept(id, t)).into_iter().collect(),
                Op::Reject(i) => pick(*i).map(|id| oms.reject(id, "risk", "x", t)).into_iter().collect(),
                Op::Expire(i) => pick(*i).map(|id| oms.expire(id, "ioc", t)).into_iter().collect(),
                Op::Cancel { account: a, idx } => pick(*idx).map(|id| oms.cancel(&account(*a), id, t)).into_iter().collect(),
                Op::SessionEnd => oms.expire_day_orders(t).into_iter().map(Ok).collect(),
                Op::Fill { idx, qty, price_off, wrong_side } => {
                    let Some(o) = pick(*idx).and_then(|id| oms.order(id)) else { continue };
                    let base = o.price.map_or(Decimal::ONE_HUNDRED, Price::get);
                    let Ok(price) = Price::new(base + Decimal::new(*price_off, 2)) else { continue };
                    next_fill += 1;
                    let side = if *wrong_side { o.side.opposite() } else { o.side };
                    vec![Ok(Event::OrderFilled(Fill {
                        fill_id: FillId(next_fill),
                        order_id: o.order_id,
                        account: o.account.clone(),
                        instrument: o.instrument.clone(),
                        side,
                        quantity: Quantity::new(Decimal::new(*qty, 1)).unwrap(),
                        price,
                        fee: Money::ZERO,
                        liquidity: Liquidity::Maker,
                        ts: t,
                    }))]
                }
            };
            for proposal in proposed {
                let before = oms.clone();
                match proposal {
                    // A command's event always applies: commands validate with the same rules.
                    Ok(e) => match oms.apply(&e) {
                        Ok(()) => {
                            match &e {
                                Event::OrderSubmitted { order } => {
                                    history.insert(order.order_id, order.clone());
                                }
                                Event::OrderFilled(f) => fills_of.entry(f.order_id).or_default().push(f.clone()),
                                _ => {}
                            }
                            journal.push(e);
                        }
                        Err(err) => {
                            prop_assert!(matches!(e, Event::OrderFilled(_)), "command event refused: {err}");
                            prop_assert_eq!(&oms, &before, "a refused event changed state");
                        }
                    },
                    Err(_) => prop_assert_eq!(&oms, &before),
                }
                check_invariants(&oms, &mut terminal, &fills_of)?;
            }
        }
        let mut rebuilt = Oms::with_retention(retention);
        for e in &journal {
            rebuilt.apply(e).map_err(|e| TestCaseError::fail(e.to_string()))?;
        }
        prop_assert_eq!(rebuilt, oms);
    }
}
