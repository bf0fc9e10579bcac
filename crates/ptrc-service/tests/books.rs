//! The P&L books consumer on its own: restart from a snapshot equals an uninterrupted fold, the
//! books agree with `ptrc::pnl::compute` over the same (re-timed) trades, and what it holds
//! follows open positions, not history.

mod common;

use std::collections::{BTreeMap, HashMap};

use common::{DAY0, F, deliveries, mixed_fills};
use journal::Delivery;
use model::{AccountId, Decimal, Event, OrderId, Side, Timestamp};
use proptest::prelude::*;
use ptrc::input::Trade;
use ptrc::pnl::{Method, PnlOptions};
use ptrc_service::books::{FillClock, OFFERED};
use ptrc_service::{BookConfig, PnlBooks};
use runtime::Consumer;
use runtime::consumer::restart_equivalence;

/// The fills' deliveries with an unrelated event between some of them (the consumer skips it).
fn stream(fills: &[F]) -> Vec<Delivery> {
    let mut events = Vec::new();
    for f in fills {
        events.push(Event::OrderFilled(f.fill()));
        if f.id % 4 == 0 {
            events.push(Event::OrderAccepted {
                order_id: OrderId(f.id),
                account: AccountId::new(f.account).unwrap(),
                ts: f.ts,
            });
        }
    }
    deliveries(&events, 1)
}

/// The trades the books fold: each fill through one fill clock.
fn retimed(fills: &[F]) -> Vec<Trade> {
    let mut clock = FillClock::default();
    fills
        .iter()
        .map(|f| clock.trade(&f.fill(), &HashMap::new()).0)
        .collect()
}

fn fold(fills: &[F]) -> PnlBooks {
    let mut books = PnlBooks::new(&BookConfig::default());
    books.apply(&stream(fills), &mut Vec::new()).unwrap();
    books
}

fn arb_fills() -> impl Strategy<Value = Vec<F>> {
    let one = (
        0usize..3,
        0usize..2,
        any::<bool>(),
        1i64..40,
        9_000i64..11_000,
        -5i64..40,
        0i64..40_000,
        prop::bool::weighted(0.2),
    );
    prop::collection::vec(one, 1..60).prop_map(|raw| {
        let mut t = DAY0;
        raw.into_iter()
            .enumerate()
            .map(|(i, (a, s, buy, qty, px, fee, step, early))| {
                t += step;
                // Some fills carry a time before the previous one.
                let ts = if early { t - step - 90 } else { t };
                F {
                    id: i as u64 + 1,
                    account: ["a", "b", "c"][a],
                    symbol: ["X", "Y"][s],
                    side: if buy { Side::Buy } else { Side::Sell },
                    qty: Decimal::new(qty, 1),
                    price: Decimal::new(px, 2),
                    fee: Decimal::new(fee, 2),
                    ts: Timestamp::from_secs(ts),
                }
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Snapshot after any batch, restore, continue: same state and output as never stopping.
    #[test]
    fn a_restart_from_a_snapshot_continues_exactly_like_an_uninterrupted_fold(
        fills in arb_fills(),
        sizes in prop::collection::vec(1usize..7, 1..30),
        cut_at in 0usize..40,
    ) {
        let all = stream(&fills);
        let mut batches = Vec::new();
        let mut rest = all.as_slice();
        for n in sizes.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let n = (*n).min(rest.len());
            batches.push(rest[..n].to_vec());
            rest = &rest[n..];
        }
        let cut = cut_at % (batches.len() + 1);
        let make = || PnlBooks::new(&BookConfig::default());
        let (uninterrupted, restarted) = restart_equivalence(make, &batches, cut).unwrap();
        prop_assert_eq!(&uninterrupted, &restarted);
        // And the state is the fills', not empty.
        let books: PnlBooks = serde_json::from_str(&uninterrupted.0).unwrap();
        prop_assert_eq!(books.stats().fills, fills.len() as u64);
    }

    /// Every book answers what `compute` answers over the re-timed trades, for any account and
    /// symbol filter and `from`.
    #[test]
    fn the_books_agree_with_compute_over_the_retimed_trades(
        fills in arb_fills(),
        account in prop::option::of(prop::sample::select(vec!["a", "b", "c"])),
        symbol in prop::option::of(prop::sample::select(vec!["X", "Y"])),
        from_day in prop::option::of(0i64..3),
    ) {
        let books = fold(&fills);
        let trades = retimed(&fills);
        let marks: BTreeMap<String, Decimal> = [("X".to_string(), Decimal::new(10_050, 2))].into();
        let opts = PnlOptions {
            account: account.map(str::to_string),
            symbol: symbol.map(str::to_string),
            from: from_day.map(|d| Timestamp::from_secs(DAY0 + d * 86_400).to_datetime().date_naive()),
            ..Default::default()
        };
        for method in OFFERED {
            let expected = ptrc::pnl::compute(&trades, method, &marks, &opts);
            let got = books.report(method, &marks, &opts).unwrap();
            prop_assert_eq!(got, expected, "{}", method);
        }
    }
}

#[test]
fn a_fill_stamped_before_the_previous_one_is_folded_at_the_previous_time() {
    let late = |id: u64, secs: i64| F {
        id,
        account: "a",
        symbol: "X",
        side: Side::Buy,
        qty: Decimal::ONE,
        price: Decimal::from(100),
        fee: Decimal::new(-3, 1),
        ts: Timestamp::from_secs(DAY0 + secs),
    };
    let fills = [late(1, 100), late(2, 40), late(3, 150)];
    let trades = retimed(&fills);
    let times: Vec<i64> = trades
        .iter()
        .map(|t| t.ts.as_nanos() / 1_000_000_000 - DAY0)
        .collect();
    assert_eq!(times, [100, 100, 150]);
    // A maker rebate is read as no fee (docs/ARCHITECTURE.md, known limits).
    assert!(trades.iter().all(|t| t.fee == Decimal::ZERO));
    let books = fold(&fills);
    assert_eq!(books.stats().retimed, 1);
    assert_eq!(books.stats().refused, 0);
    assert_eq!(books.last_fill_id(), Some(3));
    let report = books
        .report(Method::Fifo, &BTreeMap::new(), &PnlOptions::default())
        .unwrap()
        .unwrap();
    let lots = &report.accounts[0].symbols[0].open_lots;
    assert_eq!(lots.len(), 3);
    assert_eq!(lots[1].acquired, Timestamp::from_secs(DAY0 + 100));
    assert_eq!(
        books.positions(|_| true),
        BTreeMap::from([("X".to_string(), Decimal::from(3))])
    );
}

#[test]
fn specific_has_no_book_and_a_to_inside_the_history_needs_a_replay() {
    let books = fold(&mixed_fills(7, 200, 3));
    assert!(
        books
            .report(Method::Specific, &BTreeMap::new(), &PnlOptions::default())
            .is_none()
    );
    let first_day = Timestamp::from_secs(DAY0).to_datetime().date_naive();
    let opts = PnlOptions {
        to: Some(first_day),
        ..Default::default()
    };
    assert!(matches!(
        books.report(Method::Lifo, &BTreeMap::new(), &opts),
        Some(Err(ptrc::PtrcError::NeedsReplay(_)))
    ));
}

/// A long stream in which positions keep going flat: open lots, positions and stored days stay
/// bounded by open inventory and trading days, not by the 60,000 fills.
#[test]
fn held_state_follows_open_positions_not_history() {
    let mut books = PnlBooks::new(&BookConfig::default());
    let mut rng = common::Lcg(11);
    let (mut id, mut seq, mut max_lots, mut max_positions) = (0u64, 1u64, 0usize, 0usize);
    let days = 4i64;
    let cycles = 12_000;
    for cycle in 0..cycles {
        let account = ["a", "b"][cycle % 2];
        let symbol = ["X", "Y"][(cycle / 2) % 2];
        let ts = Timestamp::from_secs(DAY0 + days * 86_400 * cycle as i64 / cycles as i64);
        // A few buys, then one sell of everything: flat again.
        let buys = 1 + rng.below(4) as i64;
        let mut fills = Vec::new();
        for _ in 0..buys {
            id += 1;
            fills.push(F {
                id,
                account,
                symbol,
                side: Side::Buy,
                qty: Decimal::ONE,
                price: Decimal::new(9_000 + rng.below(2_000) as i64, 2),
                fee: Decimal::new(1, 2),
                ts,
            });
        }
        id += 1;
        fills.push(F {
            id,
            account,
            symbol,
            side: Side::Sell,
            qty: Decimal::from(buys),
            price: Decimal::new(9_000 + rng.below(2_000) as i64, 2),
            fee: Decimal::new(1, 2),
            ts,
        });
        let events: Vec<Event> = fills.iter().map(|f| Event::OrderFilled(f.fill())).collect();
        let batch = deliveries(&events, seq);
        seq += batch.len() as u64;
        // Mid-cycle (after the buys) is the most the books ever hold.
        let (buys_only, sell) = batch.split_at(batch.len() - 1);
        books.apply(buys_only, &mut Vec::new()).unwrap();
        max_lots = max_lots.max(books.footprint().open_lots);
        max_positions = max_positions.max(books.footprint().positions);
        books.apply(sell, &mut Vec::new()).unwrap();
    }
    assert!(id > 35_000, "a long stream: {id} fills");
    let fp = books.footprint();
    // At most 4 lots of one position open at a time, in each of the 4 books.
    assert!(max_lots <= 4 * OFFERED.len(), "{max_lots}");
    assert_eq!(max_positions, 1);
    assert_eq!(
        (fp.open_lots, fp.positions),
        (0, 0),
        "everything is flat at the end"
    );
    // One point per trading day per account and per position, in each book.
    let per_book_units = 2 /* accounts */ + 4 /* positions */;
    assert!(
        fp.stored_days <= OFFERED.len() * per_book_units * (days as usize + 1),
        "{fp:?}"
    );
    assert_eq!(books.stats().fills, id);
    // The snapshot is as small as the state: it does not grow with the fills.
    let bytes = serde_json::to_vec(&books).unwrap();
    assert!(bytes.len() < 64 * 1024, "{} bytes", bytes.len());
}
