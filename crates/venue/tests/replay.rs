//! Durability: rebuilding the venue from the journal with `apply` gives the live state, and
//! fill ids continue after the replayed ones (so a restart never duplicates a fill id).

mod common;

use common::*;
use model::{Event, OrderId, OrderType, Side, TimeInForce};
use venue::{FeeSchedule, PaperVenue, VenueConfig};

/// What the engine does live: journal each input and then the venue's output batch.
struct Live {
    venue: PaperVenue,
    journal: Vec<Event>,
}

impl Live {
    fn md(&mut self, e: Event) {
        let out = self.venue.on_market_data(&e);
        self.journal.push(e);
        self.journal.extend(out);
    }
    fn order(&mut self, o: model::Order, t: i64) {
        self.journal
            .push(Event::OrderSubmitted { order: o.clone() });
        let out = self.venue.on_order(&o, ts(t));
        self.journal.extend(out);
    }
    fn cancel(&mut self, id: u64, t: i64) {
        if self.venue.cancel(OrderId(id)) {
            self.journal.push(Event::OrderCanceled {
                order_id: OrderId(id),
                account: model::AccountId::new("acct").unwrap(),
                reason: "user".into(),
                ts: ts(t),
            });
        }
    }
}

fn config() -> VenueConfig {
    VenueConfig {
        fees: FeeSchedule::new(d("-0.5"), d("4")),
        first_fill_id: 10,
        ..VenueConfig::default()
    }
}

fn scenario() -> Live {
    let mut live = Live {
        venue: PaperVenue::new(config()).unwrap(),
        journal: Vec::new(),
    };
    use Side::*;
    use TimeInForce::*;
    live.md(snapshot(
        &[("97", "1"), ("96", "2")],
        &[("100", "1"), ("101", "2"), ("103", "5")],
        1,
    ));
    live.order(market(1, Buy, "1.5"), 2); // consumes 100 and half of 101
    live.order(limit(2, Buy, Gtc, "3", "98.5"), 3); // rests
    live.order(limit(3, Sell, Gtc, "2", "102"), 4); // rests
    live.order(
        order(
            4,
            Sell,
            OrderType::StopLimit,
            Gtc,
            "1",
            Some("97.5"),
            Some("98"),
        ),
        5,
    ); // waits
    live.order(
        order(5, Buy, OrderType::Stop, Day, "1", None, Some("110")),
        6,
    ); // waits
    live.md(trade("98.5", "1", 7)); // order 2 fills 1 at the limit
    live.md(trade("98", "0.1", 8)); // order 2 fills the rest through; order 4 triggers, rests
    live.md(quote("97", "1", "97.4", "0.4", 9)); // bid below 97.5: no fill for sell 4
    live.md(delta(&[("97.6", "0.3")], &[], 10)); // bid 97.6 crosses sell 4: 0.3 at 97.5
    live.order(limit(6, Buy, Gtc, "1", "90"), 11);
    live.cancel(6, 12);
    live.order(limit(7, Sell, Ioc, "5", "97"), 13); // takes bids, expires the rest
    live
}

fn state(v: &PaperVenue) -> (Vec<venue::RestingOrder>, Option<venue::MarketState>, u64) {
    (
        v.resting_orders().cloned().collect(),
        v.market(&inst()).cloned(),
        v.next_fill_id().0,
    )
}

#[test]
fn replaying_the_journal_rebuilds_the_live_state() {
    let live = scenario();
    // The scenario really exercised resting, triggering and partial fills.
    let resting = state(&live.venue).0;
    let ids: Vec<u64> = resting.iter().map(|r| r.order.order_id.0).collect();
    assert_eq!(ids, [3, 4, 5]);
    assert!(resting[1].triggered && resting[1].leaves == q("0.7"));
    assert!(!resting[2].triggered);
    let rows = fill_rows(&live.journal);
    let want: Vec<(u64, String, String, String, model::Liquidity)> = [
        (1, "1", "100", "0.04", model::Liquidity::Taker),
        (1, "0.5", "101", "0.0202", model::Liquidity::Taker),
        (2, "1", "98.5", "-0.004925", model::Liquidity::Maker),
        (2, "2", "98.5", "-0.00985", model::Liquidity::Maker),
        (4, "0.3", "97.5", "-0.0014625", model::Liquidity::Maker),
        (7, "1", "97", "0.0388", model::Liquidity::Taker),
    ]
    .iter()
    .map(|(i, a, b, c, l)| (*i, a.to_string(), b.to_string(), c.to_string(), *l))
    .collect();
    assert_eq!(rows, want);

    let mut replayed = PaperVenue::new(config()).unwrap();
    for e in &live.journal {
        replayed.apply(e);
    }
    assert_eq!(state(&replayed), state(&live.venue));

    // Replay emitted nothing and fill ids continue after the last journaled fill.
    let last_fill = live
        .journal
        .iter()
        .filter_map(|e| match e {
            Event::OrderFilled(f) => Some(f.fill_id.0),
            _ => None,
        })
        .max()
        .unwrap();
    assert_eq!(replayed.next_fill_id().0, last_fill + 1);

    // After the restart both continue identically.
    let mut live = live;
    let next = [trade("102.5", "1", 20), quote("101", "1", "102", "1", 21)];
    for e in next {
        let a = live.venue.on_market_data(&e);
        let b = replayed.on_market_data(&e);
        assert_eq!(a, b);
        assert!(!a.is_empty() || matches!(e, Event::Quote(_)));
    }
}

#[test]
fn replaying_twice_from_scratch_is_deterministic() {
    let a = scenario();
    let b = scenario();
    assert_eq!(a.journal, b.journal);
}
