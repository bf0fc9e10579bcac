//! Snapshots: the serialized venue restores to an equal venue that continues identically;
//! snapshots of another version or with contradictory content are refused.

mod common;

use common::*;
use model::{Event, OrderId, OrderType, Side, TimeInForce};
use venue::{FeeSchedule, PaperVenue, SNAPSHOT_VERSION, VenueConfig, VenueError};

fn config() -> VenueConfig {
    VenueConfig {
        fees: FeeSchedule::new(d("-1"), d("3")),
        first_fill_id: 7,
        latency_ns: 250,
        ..VenueConfig::default()
    }
}

/// A venue holding every kind of state: consumed liquidity, a resting limit, a pending stop,
/// a triggered stop-limit and (from replay) an order waiting for its acceptance.
fn busy_venue() -> PaperVenue {
    let mut live = Live::new(PaperVenue::new(config()).unwrap());
    live.md(snapshot(
        &[("99", "1"), ("98", "2")],
        &[("100", "1"), ("101", "2"), ("102", "3")],
        10,
    ));
    live.order(&market(1, Side::Buy, "1.5"), 11); // consumes 100 and half of 101
    live.order(&limit(2, Side::Buy, TimeInForce::Gtc, "1", "97"), 12);
    live.order(
        &order(
            3,
            Side::Sell,
            OrderType::Stop,
            TimeInForce::Day,
            "1",
            None,
            Some("90"),
        ),
        13,
    );
    live.order(
        &order(
            4,
            Side::Buy,
            OrderType::StopLimit,
            TimeInForce::Gtc,
            "1",
            Some("99.5"),
            Some("99"),
        ),
        14,
    ); // mid 99.5 >= 99: triggers on arrival, rests at 99.5
    let mut v = live.venue;
    v.apply(&Event::OrderSubmitted {
        order: limit(5, Side::Sell, TimeInForce::Gtc, "1", "120"),
    });
    v
}

#[test]
fn a_snapshot_restores_an_equal_venue_that_continues_identically() {
    let mut original = busy_venue();
    let f = original.footprint();
    assert_eq!(
        (f.resting_orders, f.pending_orders, f.consumed_levels),
        (3, 1, 2)
    );
    assert!(original.resting_order(OrderId(4)).unwrap().triggered);

    let json = serde_json::to_value(&original).unwrap();
    assert_eq!(json["version"], SNAPSHOT_VERSION);
    let mut restored: PaperVenue = serde_json::from_value(json).unwrap();
    assert_eq!(restored, original);

    type Step = Box<dyn Fn(&mut PaperVenue) -> Vec<Event>>;
    let steps: Vec<Step> = vec![
        Box::new(|v| v.on_market_data(&trade("101", "1", 20))),
        Box::new(|v| {
            v.apply(&Event::OrderAccepted {
                order_id: OrderId(5),
                account: model::AccountId::new("acct").unwrap(),
                ts: ts(21),
            });
            Vec::new()
        }),
        Box::new(|v| v.on_order(&market(6, Side::Buy, "3"), ts(22))),
        Box::new(|v| v.on_market_data(&quote("96", "2", "97", "2", 23))),
        Box::new(|v| v.on_market_data(&trade("89", "1", 24))),
    ];
    let mut produced = 0;
    for step in &steps {
        let (a, b) = (step(&mut original), step(&mut restored));
        produced += a.len();
        assert_eq!(a, b);
        assert_eq!(restored, original);
    }
    assert!(produced >= 5, "the continuation must exercise the state");
    assert_eq!(restored.next_fill_id(), original.next_fill_id());
}

#[test]
fn a_snapshot_of_another_version_is_refused() {
    let mut json = serde_json::to_value(busy_venue()).unwrap();
    json["version"] = serde_json::json!(SNAPSHOT_VERSION + 1);
    let err = serde_json::from_value::<PaperVenue>(json)
        .unwrap_err()
        .to_string();
    let want = VenueError::SnapshotVersion {
        found: SNAPSHOT_VERSION + 1,
        expected: SNAPSHOT_VERSION,
    }
    .to_string();
    assert!(err.contains(&want), "{err}");
}

#[test]
fn a_contradictory_snapshot_is_refused() {
    let good = serde_json::to_value(busy_venue()).unwrap();

    // The same order resting twice.
    let mut twice = good.clone();
    let orders = twice["books"][0]["orders"].as_array_mut().unwrap();
    let first = orders[0].clone();
    orders.push(first);
    let err = serde_json::from_value::<PaperVenue>(twice).unwrap_err();
    assert!(err.to_string().contains("rests twice"), "{err}");

    // An invalid config.
    let mut bad_config = good.clone();
    bad_config["config"]["first_fill_id"] = serde_json::json!(0);
    assert!(serde_json::from_value::<PaperVenue>(bad_config).is_err());

    // A negative displayed quantity cannot be built, not even from a snapshot.
    let mut negative = good;
    negative["books"][0]["market"]["bids"][0][1] = serde_json::json!("-1");
    assert!(serde_json::from_value::<PaperVenue>(negative).is_err());
}
