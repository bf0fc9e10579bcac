//! The engine's restart path: restoring a snapshot of the core and replaying the journal after
//! it gives the same core as replaying the whole journal, for random journals written by a live
//! core (orders of every type, cancels, market data that fills and triggers them, DAY expiry).

use engine::{CoreConfig, TradingCore};
use journal::Delivery;
use model::{
    AccountId, Event, InstrumentId, OrderId, OrderType, Price, Quantity, Quote, Side, Symbol,
    TimeInForce, Timestamp, TradeTick, Venue,
};
use oms::{NewOrder, Retention};
use proptest::prelude::*;
use runtime::consumer::restart_equivalence;

#[derive(Debug, Clone)]
enum Step {
    Quote {
        mid_ticks: i64,
    },
    Trade {
        ticks: i64,
    },
    Submit {
        account: u8,
        kind: u8,
        tif: u8,
        buy: bool,
        ticks: i64,
        qty: u8,
    },
    Cancel {
        pick: usize,
    },
    SessionEnd,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (-40i64..40).prop_map(|mid_ticks| Step::Quote { mid_ticks }),
        1 => (-40i64..40).prop_map(|ticks| Step::Trade { ticks }),
        4 => (0u8..3, 0u8..4, 0u8..4, any::<bool>(), -30i64..30, 1u8..5)
            .prop_map(|(account, kind, tif, buy, ticks, qty)| Step::Submit { account, kind, tif, buy, ticks, qty }),
        1 => any::<usize>().prop_map(|pick| Step::Cancel { pick }),
        1 => Just(Step::SessionEnd),
    ]
}

fn btc() -> InstrumentId {
    InstrumentId::new(Venue::new("sim").unwrap(), Symbol::new("BTCUSDT").unwrap())
}

/// 100 + ticks x 0.1
fn px(ticks: i64) -> Price {
    Price::new(model::Decimal::new(1_000 + ticks, 1)).unwrap()
}

/// Drives a live core through `steps` and returns the journal it would have written, in order.
fn journal_of(steps: &[Step], config: &CoreConfig) -> Vec<Event> {
    let mut core = TradingCore::new(config.clone()).unwrap();
    let mut out = Vec::new();
    let mut ids: Vec<OrderId> = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        let ts = Timestamp::from_secs(1_700_000_000 + i as i64);
        match *s {
            Step::Quote { mid_ticks } => {
                let e = Event::Quote(Quote {
                    instrument: btc(),
                    bid: px(mid_ticks - 1),
                    bid_size: Quantity::parse("3").unwrap(),
                    ask: px(mid_ticks + 1),
                    ask_size: Quantity::parse("3").unwrap(),
                    ts,
                });
                let decided = core.on_market_data(&e).unwrap();
                out.push(e);
                out.extend(decided);
            }
            Step::Trade { ticks } => {
                let e = Event::Trade(TradeTick {
                    instrument: btc(),
                    price: px(ticks),
                    quantity: Quantity::parse("1").unwrap(),
                    aggressor: None,
                    trade_id: format!("t{i}"),
                    ts,
                });
                let decided = core.on_market_data(&e).unwrap();
                out.push(e);
                out.extend(decided);
            }
            Step::Submit {
                account,
                kind,
                tif,
                buy,
                ticks,
                qty,
            } => {
                let order_type = [
                    OrderType::Market,
                    OrderType::Limit,
                    OrderType::Stop,
                    OrderType::StopLimit,
                ][kind as usize];
                let (price, stop) = match order_type {
                    OrderType::Market => (None, None),
                    OrderType::Limit => (Some(px(ticks)), None),
                    OrderType::Stop => (None, Some(px(ticks))),
                    OrderType::StopLimit => {
                        (Some(px(ticks)), Some(px(ticks + if buy { 1 } else { -1 })))
                    }
                };
                let req = NewOrder {
                    account: AccountId::new(format!("a{account}")).unwrap(),
                    client_order_id: None,
                    instrument: btc(),
                    side: if buy { Side::Buy } else { Side::Sell },
                    order_type,
                    time_in_force: [
                        TimeInForce::Gtc,
                        TimeInForce::Ioc,
                        TimeInForce::Fok,
                        TimeInForce::Day,
                    ][tif as usize],
                    quantity: Quantity::new(model::Decimal::from(qty)).unwrap(),
                    price,
                    stop_price: stop,
                    not_a_duplicate_of: None,
                };
                if let Ok((outcome, events)) = core.submit(req, ts) {
                    if let Some(o) = outcome.order() {
                        ids.push(o.order_id);
                    }
                    out.extend(events);
                }
            }
            Step::Cancel { pick } => {
                if ids.is_empty() {
                    continue;
                }
                let id = ids[pick % ids.len()];
                let Some(account) = core.oms().order(id).map(|o| o.account.clone()) else {
                    continue;
                };
                if let Ok((_, e)) = core.cancel(&account, id, ts) {
                    out.push(e);
                }
            }
            Step::SessionEnd => out.extend(core.expire_day_orders(ts).unwrap()),
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]
    #[test]
    fn snapshot_plus_tail_equals_a_full_replay(
        steps in proptest::collection::vec(step(), 1..120),
        batch in 1usize..9,
        cut in any::<prop::sample::Index>(),
        short_retention in any::<bool>(),
    ) {
        let mut config = CoreConfig::default();
        if short_retention {
            config.retention = Retention { terminal_order_secs: 3, max_terminal_orders: 4, client_order_id_secs: 10, max_client_order_ids: 8 };
        }
        let events = journal_of(&steps, &config);
        let deliveries: Vec<Delivery> = events.into_iter().enumerate().map(|(i, event)| Delivery {
            seq: i as u64 + 1,
            recorded_at: event.ts(),
            subject: event.subject(),
            event,
        }).collect();
        let batches: Vec<Vec<Delivery>> = deliveries.chunks(batch).map(<[Delivery]>::to_vec).collect();
        if batches.is_empty() {
            return Ok(());
        }
        let cut = cut.index(batches.len());
        let (full, restarted) = restart_equivalence(|| TradingCore::new(config.clone()).unwrap(), &batches, cut)
            .map_err(TestCaseError::fail)?;
        prop_assert_eq!(full, restarted);
    }
}

/// The generator must produce journals worth replaying: fills, stop triggers, cancels and
/// expiries, not only rejections.
#[test]
fn generated_journals_exercise_the_whole_lifecycle() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let mut kinds = std::collections::BTreeMap::<&str, usize>::new();
    for _ in 0..64 {
        let steps = proptest::collection::vec(step(), 60..120)
            .new_tree(&mut runner)
            .unwrap()
            .current();
        for e in journal_of(&steps, &CoreConfig::default()) {
            *kinds.entry(e.kind().as_str()).or_default() += 1;
        }
    }
    for kind in [
        "order_accepted",
        "order_filled",
        "order_triggered",
        "order_canceled",
        "order_expired",
        "order_rejected",
    ] {
        assert!(
            kinds.get(kind).copied().unwrap_or(0) > 5,
            "{kind}: {kinds:?}"
        );
    }
}
