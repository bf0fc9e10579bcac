//! The consumer state on its own: restart anywhere (and crash-and-replay) equals an
//! uninterrupted fold, rows do not depend on batching, and the state stays bounded.

mod common;

use common::{Shape, Universe, deliveries, random_journal};
use feature_pipeline::{FeatureState, Outbox};
use features::{EngineParams, FeatureRow};
use journal::Delivery;
use proptest::prelude::*;
use runtime::Consumer;
use runtime::consumer::restart_equivalence;

fn fresh() -> FeatureState {
    FeatureState::new(EngineParams::default())
}

fn batches(d: &[Delivery], size: usize) -> Vec<Vec<Delivery>> {
    d.chunks(size.max(1)).map(<[Delivery]>::to_vec).collect()
}

fn fold(mut s: FeatureState, batches: &[Vec<Delivery>]) -> FeatureState {
    for b in batches {
        s.apply(b, &mut Vec::new()).unwrap();
    }
    s
}

fn json(s: &FeatureState) -> String {
    serde_json::to_string(s).unwrap()
}

/// Every row the online API would serve, as text (equal text: equal down to every float bit).
fn served(s: &FeatureState, u: &Universe) -> String {
    let rows: Vec<Option<FeatureRow>> = u
        .entities()
        .iter()
        .map(|(view, entity)| s.row(view, entity))
        .collect();
    format!("{rows:?}")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn a_restart_anywhere_equals_an_uninterrupted_fold(
        seed in any::<u64>(),
        n in 1usize..400,
        batch in 1usize..40,
        cut_frac in 0.0f64..1.0,
    ) {
        let u = Universe::standard();
        let d = deliveries(&random_journal(&u, Shape::new(seed, n)), 1);
        let b = batches(&d, batch);
        let cut = ((b.len() as f64) * cut_frac) as usize;
        let (whole, restarted) = restart_equivalence(fresh, &b, cut).unwrap();
        prop_assert_eq!(&whole, &restarted);
        prop_assert!(whole.1.is_empty(), "the pipeline publishes nothing");

        // The same events in other batches give the same state: rows are a function of the
        // journal prefix, so the runtime may batch however the load falls.
        let one_by_one = fold(fresh(), &batches(&d, 1));
        prop_assert_eq!(json(&one_by_one), whole.0.clone());
        let restored: FeatureState = serde_json::from_str(&whole.0).unwrap();
        prop_assert_eq!(served(&restored, &u), served(&one_by_one, &u));
    }

    /// With an online store, the rows staged for it survive a crash: the state restored from an
    /// older snapshot replays the tail and stages exactly the rows (values and event times) it
    /// staged before, whatever the batching, so the store ends where it would have anyway.
    #[test]
    fn a_crash_and_replay_stages_the_same_rows(
        seed in any::<u64>(),
        n in 1usize..300,
        batch in 1usize..30,
        cuts in (0.0f64..1.0, 0.0f64..1.0),
    ) {
        let u = Universe::standard();
        let d = deliveries(&random_journal(&u, Shape::new(seed, n)), 1);
        let whole_box = Outbox::default();
        let whole = fold(fresh().stage_into(whole_box.clone()), &batches(&d, 1));

        let b = batches(&d, batch);
        let (c1, c2) = (cuts.0.min(cuts.1), cuts.0.max(cuts.1));
        let (snap_at, crash_at) = (((b.len() as f64) * c1) as usize, ((b.len() as f64) * c2) as usize);
        let outbox = Outbox::default();
        let before = fold(fresh().stage_into(outbox.clone()), &b[..snap_at]);
        let snapshot = json(&before);
        // Runs on past the snapshot, staging rows (some written, some not), then crashes.
        let _lost = fold(before, &b[snap_at..crash_at]);
        let restored: FeatureState = serde_json::from_str(&snapshot).unwrap();
        let after = fold(restored.stage_into(outbox.clone()), &b[snap_at..]);

        prop_assert_eq!(json(&after), json(&whole));
        // Staging changes nothing in the state: with or without a store, the same snapshot.
        prop_assert_eq!(json(&fold(fresh(), &b)), json(&whole));
        prop_assert_eq!(whole.counts().engine.dirty, 0);
        prop_assert_eq!(format!("{:?}", outbox.rows()), format!("{:?}", whole_box.rows()));
        // Only served rows are staged; every entity an event changed has one (an account's
        // position row before its first fill is all zeros: the full pass writes it); and a
        // staged row is the row served when the entity changed with the last event.
        let staged = whole_box.rows();
        let wm = whole.watermark();
        for row in &staged {
            prop_assert!(whole.row(row.view, &row.entity).is_some(), "{:?}", row);
        }
        for (view, entity) in u.entities() {
            let served = whole.row(view, &entity);
            let row = staged.iter().find(|r| r.view == view && r.entity == entity);
            if view != features::POSITION_FEATURES {
                prop_assert_eq!(served.is_some(), row.is_some(), "{} {}", view, entity);
            }
            if let Some(row) = row.filter(|r| Some(r.event_ts) == wm) {
                prop_assert_eq!(format!("{served:?}"), format!("{:?}", Some(row)));
            }
        }
    }
}

/// A trade; prices tell the venues apart (`sim` 100 + secs, `alt` 200 + secs).
fn trade(inst: &str, secs: i64) -> model::Event {
    let (symbol, venue) = inst.split_once('.').unwrap();
    let base = if venue == "sim" { 100 } else { 200 };
    model::Event::Trade(model::TradeTick {
        instrument: model::InstrumentId::new(
            model::Venue::new(venue).unwrap(),
            model::Symbol::new(symbol).unwrap(),
        ),
        price: model::Price::parse(&format!("{}", base + secs)).unwrap(),
        quantity: model::Quantity::parse("1").unwrap(),
        aggressor: None,
        trade_id: format!("{inst}{secs}"),
        ts: model::Timestamp::from_secs(1_700_000_000 + secs),
    })
}

#[test]
fn a_symbol_is_served_from_the_venue_with_the_newest_event_time() {
    let outbox = Outbox::default();
    let mut s = fresh().stage_into(outbox.clone());
    let mut seq = 0;
    let mut feed = |s: &mut FeatureState, inst: &str, secs: i64| -> String {
        seq += 1;
        s.apply(&deliveries(&[trade(inst, secs)], seq), &mut Vec::new())
            .unwrap();
        let served = s.row(features::MARKET_FEATURES, "AAA").unwrap();
        // The online store gets the row served, never the other venue's.
        assert_eq!(format!("{:?}", outbox.rows()), format!("{:?}", [&served]));
        format!("{:?}", served.get("last_price").unwrap())
    };
    assert_eq!(feed(&mut s, "AAA.sim", 30), "F64(130.0)");
    // Older than the newest on `sim`: `alt` does not take over, not even after a late `sim`
    // print (an instrument's recency is its newest event, not its last).
    assert_eq!(feed(&mut s, "AAA.alt", 20), "F64(130.0)");
    assert_eq!(feed(&mut s, "AAA.sim", 5), "F64(130.0)");
    assert_eq!(feed(&mut s, "AAA.alt", 21), "F64(130.0)");
    assert_eq!(feed(&mut s, "AAA.alt", 31), "F64(231.0)");
    // Equal event times: the later in the journal wins.
    assert_eq!(feed(&mut s, "AAA.sim", 31), "F64(131.0)");
    assert_eq!(feed(&mut s, "AAA.alt", 31), "F64(231.0)");
    assert_eq!(s.counts().instruments, 2);
    assert_eq!(s.counts().public_symbols, 1);
}

#[test]
fn the_most_recent_venue_serves_a_symbol_listed_on_two() {
    let u = Universe::standard();
    let shape = Shape {
        late: false,
        ..Shape::new(7, 2_000)
    };
    let events = random_journal(&u, shape);
    let s = fold(fresh(), &batches(&deliveries(&events, 1), 64));
    // The instrument of the last market event on `AAA` (either venue) is the one served.
    let last_aaa = events
        .iter()
        .rev()
        .find_map(|e| match e {
            model::Event::Quote(q) if q.instrument.symbol.as_str() == "AAA" => {
                Some(q.instrument.clone())
            }
            model::Event::Trade(t) if t.instrument.symbol.as_str() == "AAA" => {
                Some(t.instrument.clone())
            }
            model::Event::BookSnapshot(b) if b.instrument.symbol.as_str() == "AAA" => {
                Some(b.instrument.clone())
            }
            model::Event::OrderFilled(f) if f.instrument.symbol.as_str() == "AAA" => {
                Some(f.instrument.clone())
            }
            _ => None,
        })
        .unwrap();
    let served = s.row(features::MARKET_FEATURES, "AAA").unwrap();
    let wm = s.watermark().unwrap();
    let mut direct = s
        .engine()
        .row(features::MARKET_FEATURES, &last_aaa.to_string(), wm)
        .unwrap();
    direct.entity = "AAA".into();
    assert_eq!(format!("{served:?}"), format!("{direct:?}"));
    assert_eq!(served.event_ts, wm, "rows are as of the watermark");
    // The engine's own names are not served: users name markets by symbol.
    assert!(s.row(features::MARKET_FEATURES, "AAA.sim").is_none());
    assert!(s.row(features::MARKET_FEATURES, "NOPE").is_none());
    // Position-symbol rows need the exact instrument (the engine alone would resolve `BBB`).
    let holder = s
        .engine()
        .entities(features::POSITION_SYMBOL_FEATURES)
        .into_iter()
        .find(|e| e.ends_with("|BBB.sim"))
        .unwrap();
    assert!(s.row(features::POSITION_SYMBOL_FEATURES, &holder).is_some());
    let bare = holder.replace("|BBB.sim", "|BBB");
    assert!(
        s.engine()
            .row(features::POSITION_SYMBOL_FEATURES, &bare, wm)
            .is_some()
    );
    assert!(s.row(features::POSITION_SYMBOL_FEATURES, &bare).is_none());
}

/// Days of events over a fixed universe: everything held stays within bounds set by the
/// universe and the windows, not by the number of events, and the snapshot stops growing.
#[test]
fn state_and_staged_rows_stay_bounded_over_days_of_events() {
    let u = Universe::standard();
    // 200k events, 1 s apart on average (0 to 2 s): about 55 hours of event time.
    let shape = Shape {
        step_ms: 2_000,
        ..Shape::new(42, 200_000)
    };
    let events = random_journal(&u, shape);
    let hours = (events.last().unwrap().ts().as_nanos() - common::T0) / 3_600_000_000_000;
    assert!(hours >= 48, "{hours} h");
    let d = deliveries(&events, 1);
    let outbox = Outbox::default();
    let mut s = fresh().stage_into(outbox.clone());
    let mut sizes = Vec::new();
    for (i, b) in batches(&d, 500).iter().enumerate() {
        s.apply(b, &mut Vec::new()).unwrap();
        if (i + 1) % 50 == 0 {
            let c = s.counts();
            // Universe: 4 instruments, 3 public symbols, 3 accounts, 12 account-instrument pairs.
            assert_eq!((c.instruments, c.public_symbols), (4, 3), "{c:?}");
            assert_eq!((c.engine.symbols, c.engine.accounts), (4, 3), "{c:?}");
            assert!(
                c.engine.account_symbols <= 12 && c.engine.positions <= 12,
                "{c:?}"
            );
            assert!(c.engine.open_orders <= 8, "{c:?}");
            assert!(c.engine.book_levels <= 4 * 8, "{c:?}");
            assert_eq!(c.engine.dirty, 0, "changed rows are drained every event");
            // Windows: panes of 1/600 of their length, each holding at least one event, so at
            // most PANES + 1 per window whatever the rate (4 instruments x 2 trade windows,
            // 3 accounts x 1 order window), and at this rate no more than the events of the
            // window: ~300 in 5 min (trades, counted in the 1- and 5-minute windows).
            let panes = features::PANES as usize + 1;
            assert!(
                c.engine.trade_panes <= (4 * 2 * panes).min(2 * 300),
                "{c:?}"
            );
            assert!(c.engine.order_panes <= 3 * panes, "{c:?}");
            // One staged row per served entity and view: 3 + 3 + 3 + 12.
            assert!(outbox.len() <= 21, "{}", outbox.len());
            sizes.push(json(&s).len());
        }
    }
    assert_eq!(sizes.len(), 8);
    let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
    assert!(
        *max < min * 3 / 2,
        "snapshot sizes over two days, every 25k events: {sizes:?}"
    );
}
