//! Snapshots of the positions: serialize -> deserialize -> keep folding == keep folding.

use model::{
    AccountId, BookLevel, BookSnapshot, Decimal, Event, Fill, FillId, InstrumentId, Liquidity,
    Money, OrderId, Price, Quantity, Quote, Side, Symbol, Timestamp, TradeTick, Venue,
};
use positions::{Positions, SNAPSHOT_VERSION};
use proptest::prelude::*;

fn inst(i: u8) -> InstrumentId {
    InstrumentId::new(
        Venue::new("sim").unwrap(),
        Symbol::new(["BTCUSDT", "ETHUSDT"][i as usize]).unwrap(),
    )
}
fn acct(i: u8) -> AccountId {
    AccountId::new(format!("a{i}")).unwrap()
}
fn px(cents: u32) -> Price {
    Price::new(Decimal::new(cents.into(), 2)).unwrap()
}

#[derive(Debug, Clone)]
enum Step {
    /// account, instrument, buy?, thousandths, cents, fee in hundredths of a cent, id back-step
    Fill(u8, u8, bool, u32, u32, i32, u8),
    Quote(u8, u32, u32),
    Trade(u8, u32),
    Book(u8, u32, u32),
    Triggered(u8),
}

fn step() -> impl Strategy<Value = (Step, u32)> {
    let s = prop_oneof![
        6 => (0u8..3, 0u8..2, any::<bool>(), 1u32..3_000, 1u32..20_000, -50i32..300, 0u8..4)
            .prop_map(|(a, i, b, q, c, f, back)| Step::Fill(a, i, b, q, c, f, back)),
        2 => (0u8..2, 1u32..20_000, 1u32..500).prop_map(|(i, b, spread)| Step::Quote(i, b, spread)),
        1 => (0u8..2, 1u32..20_000).prop_map(|(i, c)| Step::Trade(i, c)),
        1 => (0u8..2, 1u32..20_000, 1u32..500).prop_map(|(i, b, spread)| Step::Book(i, b, spread)),
        1 => (0u8..3).prop_map(Step::Triggered),
    ];
    // Minutes since the previous step: days roll over now and then.
    (s, 0u32..600)
}

/// Turns steps into events; fill ids mostly increase, sometimes repeat (replayed duplicates).
struct Script {
    t: i64,
    fill_id: u64,
}

impl Script {
    fn event(&mut self, (step, minutes): &(Step, u32)) -> Event {
        self.t += i64::from(*minutes) * 60;
        let ts = Timestamp::from_secs(self.t);
        match *step {
            Step::Fill(a, i, buy, q, c, fee, back) => {
                self.fill_id += 1;
                Event::OrderFilled(Fill {
                    fill_id: FillId(self.fill_id.saturating_sub(back.into()).max(1)),
                    order_id: OrderId(self.fill_id),
                    account: acct(a),
                    instrument: inst(i),
                    side: if buy { Side::Buy } else { Side::Sell },
                    quantity: Quantity::new(Decimal::new(q.into(), 3)).unwrap(),
                    price: px(c),
                    fee: Money::new(Decimal::new(fee.into(), 4)).unwrap(),
                    liquidity: Liquidity::Taker,
                    ts,
                })
            }
            Step::Quote(i, bid, spread) => Event::Quote(Quote {
                instrument: inst(i),
                bid: px(bid),
                bid_size: Quantity::new(Decimal::ONE).unwrap(),
                ask: px(bid + spread),
                ask_size: Quantity::new(Decimal::ONE).unwrap(),
                ts,
            }),
            Step::Trade(i, c) => Event::Trade(TradeTick {
                instrument: inst(i),
                price: px(c),
                quantity: Quantity::new(Decimal::ONE).unwrap(),
                aggressor: None,
                trade_id: format!("t{}", self.t),
                ts,
            }),
            Step::Book(i, bid, spread) => {
                let level = |c| BookLevel {
                    price: px(c),
                    quantity: Quantity::new(Decimal::TWO).unwrap(),
                };
                Event::BookSnapshot(BookSnapshot {
                    instrument: inst(i),
                    bids: vec![level(bid)],
                    asks: vec![level(bid + spread)],
                    sequence: None,
                    ts,
                })
            }
            Step::Triggered(a) => Event::OrderTriggered {
                order_id: OrderId(self.fill_id + 1),
                account: acct(a),
                ts,
            },
        }
    }
}

fn round_trip(p: &Positions) -> Positions {
    serde_json::from_str(&serde_json::to_string(p).unwrap()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn a_restored_snapshot_folds_like_the_original(
        steps in prop::collection::vec(step(), 1..100),
        cut in any::<prop::sample::Index>(),
    ) {
        let cut = cut.index(steps.len() + 1);
        let mut script = Script { t: 1_704_153_600, fill_id: 0 };
        let events: Vec<Event> = steps.iter().map(|s| script.event(s)).collect();
        let mut original = Positions::new();
        for e in &events[..cut] {
            original.on_event(e).unwrap();
        }
        let mut restored = round_trip(&original);
        prop_assert_eq!(&restored, &original);
        for e in &events[cut..] {
            prop_assert_eq!(original.on_event(e), restored.on_event(e));
        }
        prop_assert_eq!(&restored, &original);
        // Exact decimals: the same text, not only the same value.
        prop_assert_eq!(
            serde_json::to_string(&restored).unwrap(),
            serde_json::to_string(&original).unwrap()
        );
        let last_day = Timestamp::from_secs(script.t).to_datetime().date_naive();
        for a in 0..3 {
            prop_assert_eq!(
                restored.account_realized_on(&acct(a), last_day),
                original.account_realized_on(&acct(a), last_day)
            );
        }
    }

    /// `order_triggered` (and other order lifecycle events) change no position.
    #[test]
    fn order_lifecycle_events_are_ignored(steps in prop::collection::vec(step(), 1..60)) {
        let mut script = Script { t: 1_704_153_600, fill_id: 0 };
        let mut p = Positions::new();
        for s in &steps {
            let e = script.event(s);
            let before = p.clone();
            p.on_event(&e).unwrap();
            if matches!(e, Event::OrderTriggered { .. }) {
                prop_assert_eq!(&p, &before);
            }
        }
    }
}

#[test]
fn a_snapshot_of_another_version_or_with_a_position_twice_is_refused() {
    let mut p = Positions::new();
    let mut script = Script {
        t: 1_704_153_600,
        fill_id: 0,
    };
    p.on_event(&script.event(&(Step::Fill(0, 0, true, 1_000, 10_000, 0, 0), 0)))
        .unwrap();
    p.on_event(&script.event(&(Step::Quote(0, 10_100, 2), 1)))
        .unwrap();
    let json = serde_json::to_value(&p).unwrap();
    assert_eq!(json["version"], SNAPSHOT_VERSION);
    assert_eq!(json["marks"][0]["source"], "mid");
    assert_eq!(
        serde_json::from_value::<Positions>(json.clone()).unwrap(),
        p
    );

    let mut other = json.clone();
    other["version"] = serde_json::json!(SNAPSHOT_VERSION + 1);
    let err = serde_json::from_value::<Positions>(other).unwrap_err();
    assert!(err.to_string().contains("version"), "{err}");

    let mut twice = json;
    let first = twice["positions"][0].clone();
    twice["positions"].as_array_mut().unwrap().push(first);
    let err = serde_json::from_value::<Positions>(twice).unwrap_err();
    assert!(err.to_string().contains("twice"), "{err}");
}
