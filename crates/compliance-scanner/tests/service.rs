//! The scanner as a service: a round-trip wash pattern in the journal raises one alert, which is
//! journaled, listed for compliance keys only, acknowledged, and never repeated after a restart.

use std::time::Duration;

use auth::{Accounts, AllMarker, ApiKeys, Role};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use compliance_scanner::{ScannerConfig, start};
use journal::Journal;
use model::{
    AccountId, ClientOrderId, Event, Fill, FillId, InstrumentId, Liquidity, Money, Order, OrderId,
    OrderType, Price, Quantity, Quote, Side, Symbol, TimeInForce, Timestamp, Venue,
};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

fn inst() -> InstrumentId {
    InstrumentId::new(Venue::new("sim").unwrap(), Symbol::new("BTCUSDT").unwrap())
}

fn order_and_fill(id: u64, side: Side, price: &str, ms: i64) -> Vec<Event> {
    let ts = Timestamp::from_millis(ms);
    let account = AccountId::new("washer").unwrap();
    let order = Order::new(
        OrderId(id),
        ClientOrderId::new(format!("c{id}")).unwrap(),
        account.clone(),
        inst(),
        side,
        OrderType::Market,
        TimeInForce::Ioc,
        Quantity::parse("1").unwrap(),
        None,
        None,
        ts,
    )
    .unwrap();
    vec![
        Event::OrderSubmitted { order },
        Event::OrderAccepted {
            order_id: OrderId(id),
            account: account.clone(),
            ts,
        },
        Event::OrderFilled(Fill {
            fill_id: FillId(id),
            order_id: OrderId(id),
            account,
            instrument: inst(),
            side,
            quantity: Quantity::parse("1").unwrap(),
            price: Price::parse(price).unwrap(),
            fee: Money::ZERO,
            liquidity: Liquidity::Taker,
            ts,
        }),
    ]
}

fn wash_history() -> Vec<Event> {
    let t0 = 1_700_000_000_000;
    let mut events = vec![Event::Quote(Quote {
        instrument: inst(),
        bid: Price::parse("44999.9").unwrap(),
        bid_size: Quantity::parse("5").unwrap(),
        ask: Price::parse("45000.1").unwrap(),
        ask_size: Quantity::parse("5").unwrap(),
        ts: Timestamp::from_millis(t0),
    })];
    // Buy 1 and sell 1 two seconds later, 0.2 apart (0.04 bps): a round trip.
    events.extend(order_and_fill(1, Side::Buy, "45000.1", t0 + 1_000));
    events.extend(order_and_fill(2, Side::Sell, "44999.9", t0 + 3_000));
    events
}

async fn wait_for_alerts(alerts: &compliance_scanner::AlertStore, n: usize) {
    for _ in 0..200 {
        if alerts.len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("expected {n} alert(s), have {}", alerts.len());
}

async fn call(
    app: &axum::Router,
    method: &str,
    uri: &str,
    key: &str,
) -> (StatusCode, serde_json::Value) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {key}"))
        .body(Body::empty())
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

fn alert_events(journal: &Journal) -> usize {
    journal
        .read_from(1, usize::MAX)
        .unwrap()
        .iter()
        .filter(|r| matches!(r.event, Event::ComplianceAlert { .. }))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wash_round_trip_raises_one_journaled_alert_that_survives_restarts_without_repeats() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal");
    let keys = ApiKeys::in_memory();
    let compliance = keys
        .create(Role::Compliance, Accounts::All(AllMarker::All))
        .unwrap();
    let trader = keys
        .create(
            Role::Trader,
            Accounts::Some([AccountId::new("washer").unwrap()].into()),
        )
        .unwrap();

    let key = {
        let (journal, _) = Journal::open(&path).unwrap();
        let shutdown = CancellationToken::new();
        let svc = start(
            journal.clone(),
            ScannerConfig::default(),
            telemetry::Metrics::new(),
            shutdown.clone(),
        )
        .unwrap();
        journal.append_batch(wash_history()).await.unwrap();
        wait_for_alerts(&svc.alerts, 1).await;
        let app = compliance_scanner::router(svc.alerts.clone(), keys.clone(), journal.clone());

        let (status, v) = call(&app, "GET", "/alerts?type=WASH_TRADE", &compliance).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        let list = v["alerts"].as_array().unwrap();
        assert_eq!(list.len(), 1, "{v}");
        assert_eq!(list[0]["type"], "WASH_TRADE");
        assert_eq!(list[0]["subtype"], "round_trip");
        assert_eq!(list[0]["owner"], "washer");
        assert_eq!(list[0]["symbol"], "BTCUSDT");
        let key = list[0]["key"].as_str().unwrap().to_string();

        let narrow = keys
            .create(
                Role::Compliance,
                Accounts::Some([AccountId::new("someone_else").unwrap()].into()),
            )
            .unwrap();
        let (status, v) = call(&app, "GET", "/alerts", &narrow).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            v["alerts"],
            serde_json::json!([]),
            "a key limited to other accounts sees none"
        );
        let (status, _) = call(&app, "GET", "/alerts", &trader).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "traders do not see alerts");
        let (status, v) = call(&app, "POST", &format!("/alerts/{key}/ack"), &compliance).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        let (status, _) = call(&app, "POST", "/alerts/nope/ack", &compliance).await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        shutdown.cancel();
        svc.task.await.unwrap().unwrap();
        assert_eq!(alert_events(&journal), 1);
        journal.shutdown().unwrap();
        key
    };

    // Restart: the replay rebuilds the same state; the alert is neither lost nor repeated.
    let (journal, _) = Journal::open(&path).unwrap();
    let shutdown = CancellationToken::new();
    let svc = start(
        journal.clone(),
        ScannerConfig::default(),
        telemetry::Metrics::new(),
        shutdown.clone(),
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(svc.alerts.len(), 1);
    let listed = svc.alerts.list(None, None, None, None);
    assert_eq!(listed[0].alert["key"], key.as_str());
    assert!(
        listed[0].acknowledged_by.is_some(),
        "the acknowledgement survives the restart"
    );
    shutdown.cancel();
    svc.task.await.unwrap().unwrap();
    assert_eq!(alert_events(&journal), 1, "no alert repeated after restart");
}
