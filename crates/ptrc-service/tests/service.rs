//! The service end to end over a real journal, blotter and alert store: P&L from the books and
//! from blotter replays agree, tax reads the blotter, VaR/stress positions come from the books,
//! compliance scans answer from the scanner's journaled alerts, every route is scoped by the
//! API key, and a restart continues from the snapshot.

mod common;

use std::collections::{BTreeMap, HashMap};

use auth::Role;
use axum::http::StatusCode;
use common::{DAY0, F, Harness, code, mixed_fills, settings};
use model::{AccountId, Decimal, Event, OrderId, Price, Quantity, Quote, Side, Timestamp};
use ptrc::pnl::PnlOptions;
use ptrc_service::books::{FillClock, OFFERED};
use serde_json::{Value, json};

fn retimed(fills: &[F], owners: &HashMap<String, String>) -> Vec<ptrc::input::Trade> {
    let mut clock = FillClock::default();
    fills
        .iter()
        .map(|f| clock.trade(&f.fill(), owners).0)
        .collect()
}

fn date(secs: i64) -> String {
    Timestamp::from_secs(secs)
        .to_datetime()
        .date_naive()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn book_answers_equal_blotter_replay_answers_for_the_same_fills() {
    let fills = mixed_fills(3, 300, 3);
    let trades = retimed(&fills, &HashMap::new());
    let first_day = date(DAY0);
    // The fills the books date on the first day: a prefix, since the fill clock only grows.
    let prefix = trades
        .iter()
        .take_while(|t| t.date().to_string() == first_day)
        .count();
    assert!(prefix > 50 && prefix < 200, "{prefix}");
    assert!(
        trades.iter().zip(&fills).any(|(t, f)| t.ts != f.ts),
        "some fills are re-timed"
    );

    let (dir_all, dir_prefix) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let all = Harness::start(dir_all.path(), settings()).await;
    all.publish_fills(&fills).await;
    all.settle().await;
    let head = Harness::start(dir_prefix.path(), settings()).await;
    head.publish_fills(&fills[..prefix]).await;
    head.settle().await;

    let bodies = [
        json!({}),
        json!({"account": "alice"}),
        json!({"account": "bob", "symbol": "ethusdt"}),
        json!({"from": first_day}),
    ];
    for method in OFFERED {
        for body in &bodies {
            let mut body = body.clone();
            body["method"] = json!(method.as_str());
            body["to"] = json!(first_day);
            // `to` inside the first service's history: its book cannot answer, a blotter
            // replay does. The second service holds only those fills: its book answers.
            let opts: PnlOptions = PnlOptions {
                to: Some(Timestamp::from_secs(DAY0).to_datetime().date_naive()),
                ..Default::default()
            };
            assert!(
                all.svc
                    .books()
                    .read(|b| !b.book(method).unwrap().answers(&opts))
            );
            assert!(
                head.svc
                    .books()
                    .read(|b| b.book(method).unwrap().answers(&opts))
            );
            let (s1, replayed) = all
                .post("/pnl/compute", &all.admin, &body.to_string())
                .await;
            let (s2, booked) = head
                .post("/pnl/compute", &head.admin, &body.to_string())
                .await;
            assert_eq!(
                (s1, s2),
                (StatusCode::OK, StatusCode::OK),
                "{replayed} {booked}"
            );
            assert_eq!(replayed, booked, "{method} {body}");
            assert!(
                replayed["accounts"]
                    .as_array()
                    .is_some_and(|a| !a.is_empty())
            );
            // A time names its UTC day, both bounds inclusive: the same answer.
            body["to"] = json!(format!("{first_day}T13:45:00Z"));
            let (_, by_time) = all
                .post("/pnl/compute", &all.admin, &body.to_string())
                .await;
            assert_eq!(by_time, replayed);
        }
        // Without `to` the full service's book answers; a replay of the same fills agrees.
        let through = all.svc.books().read(|b| b.last_fill_id());
        for opts in [
            PnlOptions::default(),
            PnlOptions {
                account: Some("bob".into()),
                ..Default::default()
            },
        ] {
            let booked = all
                .svc
                .books()
                .read(|b| b.report(method, &BTreeMap::new(), &opts))
                .unwrap()
                .unwrap();
            let replayed = ptrc_service::history::replay_pnl(
                &all.blotter,
                through,
                method,
                &BTreeMap::new(),
                &opts,
            )
            .unwrap();
            assert_eq!(booked, replayed, "{method}");
            // And both are compute over the re-timed trades.
            let computed = ptrc::pnl::compute(&trades, method, &BTreeMap::new(), &opts).unwrap();
            assert_eq!(booked, computed);
        }
    }
    all.stop().await;
    head.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tax_collects_the_owners_fills_from_the_blotter() {
    let owners: HashMap<String, String> = [("alice".to_string(), "family".to_string())].into();
    let mut fills = mixed_fills(5, 200, 20);
    // Fills long after the year and its wash-sale window: not read, and no difference.
    let n = fills.len() as u64;
    for (i, f) in mixed_fills(6, 20, 2).into_iter().enumerate() {
        fills.push(F {
            id: n + 1 + i as u64,
            ts: Timestamp::from_secs(f.ts.as_nanos() / 1_000_000_000 + 400 * 86_400),
            ..f
        });
    }
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings();
    s.account_owners = owners.clone();
    let h = Harness::start(dir.path(), s.clone()).await;
    h.publish_fills(&fills).await;
    h.settle().await;
    let trades = retimed(&fills, &owners);
    for (body, filter) in [
        (
            json!({"account": "alice", "year": 2024}),
            Some(ptrc::tax::TaxFilter::Account("alice".into())),
        ),
        (
            json!({"owner": "bob", "year": 2024}),
            Some(ptrc::tax::TaxFilter::Owner("bob".into())),
        ),
        (json!({"year": 2024}), None),
    ] {
        let (status, got) = h.post("/tax/1099b", &h.admin, &body.to_string()).await;
        assert_eq!(status, StatusCode::OK, "{got}");
        let expected = ptrc::tax::form_8949(&trades, 2024, &s.tax, filter.as_ref()).unwrap();
        assert!(
            !expected.rows.is_empty() && !expected.washes.is_empty(),
            "{body}"
        );
        assert_eq!(got, serde_json::to_value(&expected).unwrap(), "{body}");
    }
    // Scope: a trader reads its own account, not another's, and no owner-wide report.
    let trader = h.key(Role::Trader, &["alice"]);
    let (status, mine) = h.post("/tax/1099b", &trader, r#"{"year":2024}"#).await;
    assert_eq!(status, StatusCode::OK, "{mine}");
    let (_, named) = h
        .post("/tax/1099b", &trader, r#"{"account":"alice","year":2024}"#)
        .await;
    assert_eq!(mine, named, "the key's only account is the default");
    let (status, v) = h
        .post("/tax/1099b", &trader, r#"{"account":"bob","year":2024}"#)
        .await;
    assert_eq!(
        (status, code(&v)),
        (StatusCode::NOT_FOUND, "account_not_found")
    );
    let (status, _) = h
        .post("/tax/1099b", &trader, r#"{"owner":"family","year":2024}"#)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, v) = h
        .post("/tax/1099b", &h.admin, r#"{"account":"alice"}"#)
        .await;
    assert_eq!(
        (status, code(&v)),
        (StatusCode::BAD_REQUEST, "missing_field")
    );
    h.stop().await;

    // A request that would collect more trades than allowed is refused, not held.
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings();
    s.limits.tax_max_trades = 10;
    let h = Harness::start(dir.path(), s).await;
    h.publish_fills(&fills[..40]).await;
    h.settle().await;
    let (status, v) = h.post("/tax/1099b", &h.admin, r#"{"year":2024}"#).await;
    assert_eq!(
        (status, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "too_many_trades"),
        "{v}"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn var_and_stress_positions_come_from_the_books_within_the_keys_scope() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(dir.path(), settings()).await;
    let fill = |id: u64, account: &'static str, side: Side, qty: i64| F {
        id,
        account,
        symbol: "BTCUSDT",
        side,
        qty: Decimal::from(qty),
        price: Decimal::from(100),
        fee: Decimal::ZERO,
        ts: Timestamp::from_secs(DAY0 + id as i64),
    };
    h.publish_fills(&[
        fill(1, "alice", Side::Buy, 3),
        fill(2, "bob", Side::Buy, 2),
        fill(3, "bob", Side::Sell, 2),
        fill(4, "alice", Side::Sell, 1),
    ])
    .await;
    h.settle().await;
    let prices: Vec<Value> = (1..=12)
        .map(|d| json!({"date": format!("2024-01-{d:02}"), "symbol": "BTCUSDT", "close": 100 + d}))
        .collect();
    let body = json!({"prices": prices, "shocks": ["BTCUSDT=-10%"]}).to_string();
    let qty = |v: &Value| v["positions"][0]["qty"].as_str().unwrap_or("").to_string();

    let (status, v) = h.post("/risk/stress", &h.admin, &body).await;
    assert_eq!((status, qty(&v)), (StatusCode::OK, "2".to_string()), "{v}");
    let alice = h.key(Role::Trader, &["alice"]);
    let (status, v) = h.post("/risk/stress", &alice, &body).await;
    assert_eq!((status, qty(&v)), (StatusCode::OK, "2".to_string()), "{v}");
    // Bob is flat: nothing to measure, and alice's position is not his.
    let bob = h.key(Role::Trader, &["bob"]);
    let (status, v) = h.post("/risk/stress", &bob, &body).await;
    assert_eq!(
        (status, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "no_positions")
    );
    let var_body = json!({"prices": prices, "method": "parametric", "confidence": 0.95});
    let (status, v) = h.post("/risk/var", &bob, &var_body.to_string()).await;
    assert_eq!(
        (status, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "no_positions")
    );
    let (status, v) = h.post("/risk/var", &alice, &var_body.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let mut other = var_body.clone();
    other["account"] = json!("alice");
    let (status, _) = h.post("/risk/var", &bob, &other.to_string()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    h.stop().await;
}

/// What the compliance scanner does: the detectors over the exported stream, each alert
/// journaled as `compliance_alert`.
fn scanner_alerts(events: &[Event]) -> Vec<surveillance::Alert> {
    let mut exporter = interchange::Exporter::new();
    let mut scanner = surveillance::Scanner::new(surveillance::Params::default()).unwrap();
    let mut alerts = Vec::new();
    for e in events {
        if let Some(r) = exporter.export(e) {
            alerts.extend(scanner.on_record(&r));
        }
    }
    alerts.extend(scanner.finish());
    alerts
}

fn journaled(alert: &surveillance::Alert) -> Event {
    Event::ComplianceAlert {
        key: alert.key.clone(),
        rule: alert.rule.as_str().to_string(),
        alert: serde_json::to_value(alert).unwrap(),
        ts: alert.ts,
    }
}

/// Buy 1 and sell 1 two seconds later at almost the same price: a wash round trip.
fn wash(account: &'static str, first: u64, secs: i64) -> Vec<Event> {
    let ts = Timestamp::from_secs(secs);
    let mut events = vec![Event::Quote(Quote {
        instrument: common::inst("BTCUSDT"),
        bid: Price::parse("44999.9").unwrap(),
        bid_size: Quantity::parse("5").unwrap(),
        ask: Price::parse("45000.1").unwrap(),
        ask_size: Quantity::parse("5").unwrap(),
        ts,
    })];
    for (i, (side, price)) in [(Side::Buy, "45000.1"), (Side::Sell, "44999.9")]
        .into_iter()
        .enumerate()
    {
        let f = F {
            id: first + i as u64,
            account,
            symbol: "BTCUSDT",
            side,
            qty: Decimal::ONE,
            price: price.parse().unwrap(),
            fee: Decimal::ZERO,
            ts: Timestamp::from_secs(secs + 1 + 2 * i as i64),
        };
        let mut ev = f.events();
        ev.insert(
            1,
            Event::OrderAccepted {
                order_id: OrderId(f.id),
                account: AccountId::new(account).unwrap(),
                ts: f.ts,
            },
        );
        events.extend(ev);
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compliance_scan_returns_the_scanners_alerts_within_the_keys_scope() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(dir.path(), settings()).await;
    let mut events = wash("washer", 1, DAY0);
    events.extend(wash("other", 3, DAY0 + 3_600));
    let alerts = scanner_alerts(&events);
    let rules: Vec<&str> = alerts.iter().map(|a| a.rule.as_str()).collect();
    assert_eq!(rules, ["WASH_TRADE", "WASH_TRADE"], "{alerts:?}");
    h.publish(events).await;
    h.publish(alerts.iter().map(journaled).collect()).await;
    let (washer_alert, other_alert) = (&alerts[0], &alerts[1]);
    assert_eq!(washer_alert.accounts, ["washer"]);

    // No waiting: the scan itself waits until its store has what was journaled before it.
    let (status, v) = h.post("/compliance/scan", &h.admin, "").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        v,
        surveillance::alerts_to_json(&alerts),
        "as the scanner raised them"
    );

    // Account scope: a compliance key for some accounts sees the alerts involving them only.
    let compliance_washer = h.key(Role::Compliance, &["washer"]);
    let (status, v) = h.post("/compliance/scan", &compliance_washer, "{}").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        v,
        surveillance::alerts_to_json(std::slice::from_ref(washer_alert))
    );
    let (status, v) = h
        .post(
            "/compliance/scan",
            &compliance_washer,
            r#"{"account":"other"}"#,
        )
        .await;
    assert_eq!(
        (status, code(&v)),
        (StatusCode::NOT_FOUND, "account_not_found")
    );
    let compliance_other = h.key(Role::Compliance, &["other"]);
    let (_, v) = h.post("/compliance/scan", &compliance_other, "{}").await;
    assert_eq!(
        v,
        surveillance::alerts_to_json(std::slice::from_ref(other_alert))
    );
    let (_, v) = h
        .post("/compliance/scan", &h.admin, r#"{"account":"washer"}"#)
        .await;
    assert_eq!(
        v,
        surveillance::alerts_to_json(std::slice::from_ref(washer_alert))
    );
    let trader = h.key(Role::Trader, &["washer"]);
    let (status, _) = h.post("/compliance/scan", &trader, "{}").await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Time range on the alert time: from inclusive, to exclusive; dates and RFC 3339 alike.
    let at = washer_alert.ts.to_datetime().to_rfc3339();
    let count = |v: &Value| v["alerts"].as_array().map_or(usize::MAX, Vec::len);
    let (_, v) = h
        .post("/compliance/scan", &h.admin, &json!({"to": at}).to_string())
        .await;
    assert_eq!(count(&v), 0);
    let (_, v) = h
        .post(
            "/compliance/scan",
            &h.admin,
            &json!({"from": at, "to": date(DAY0 + 86_400)}).to_string(),
        )
        .await;
    assert_eq!(count(&v), 2);
    assert!(
        v.get("report_id").is_none(),
        "an answer not saved names no report: {v}"
    );
    let (status, v) = h
        .post("/compliance/scan", &h.admin, r#"{"from":"yesterday"}"#)
        .await;
    assert_eq!(
        (status, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")
    );

    // Saved: JSON, CSV and HTML of the same alerts.
    let (status, v) = h
        .post("/compliance/scan", &h.admin, r#"{"save":true}"#)
        .await;
    assert_eq!(status, StatusCode::OK);
    let id = v["report_id"].as_str().unwrap().to_string();
    let (status, csv) = h
        .call_raw("GET", &format!("/reports/{id}?format=csv"), &h.admin, "")
        .await;
    assert_eq!(status, StatusCode::OK);
    let csv = String::from_utf8(csv).unwrap();
    assert!(
        csv.contains(&washer_alert.key) && csv.contains(&other_alert.key),
        "{csv}"
    );
    let (_, html) = h
        .call_raw("GET", &format!("/reports/{id}?format=html"), &h.admin, "")
        .await;
    assert!(String::from_utf8(html).unwrap().contains("WASH_TRADE"));
    // An owner-wide scan report is not a trader's to read.
    let (status, _) = h.call("GET", &format!("/reports/{id}"), &trader, "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Bounded answers: more alerts than allowed is a 422 naming the way out.
    let dir2 = tempfile::tempdir().unwrap();
    let mut s = settings();
    s.limits.scan_max_alerts = 1;
    let small = Harness::start(dir2.path(), s).await;
    small.publish(alerts.iter().map(journaled).collect()).await;
    let (status, v) = small.post("/compliance/scan", &small.admin, "").await;
    assert_eq!(
        (status, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "too_many_alerts")
    );
    let (status, v) = small
        .post("/compliance/scan", &small.admin, r#"{"account":"other"}"#)
        .await;
    assert_eq!((status, count(&v)), (StatusCode::OK, 1));
    small.stop().await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pnl_requests_are_checked_and_scoped_by_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(dir.path(), settings()).await;
    h.publish_fills(&mixed_fills(9, 40, 2)).await;
    h.settle().await;
    let alice = h.key(Role::Trader, &["alice"]);
    let (status, mine) = h.post("/pnl/compute", &alice, "").await;
    assert_eq!(status, StatusCode::OK, "{mine}");
    let accounts: Vec<&str> = mine["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["account"].as_str().unwrap())
        .collect();
    assert_eq!(accounts, ["alice"]);
    assert_eq!(mine["method"], "FIFO", "the configured default");
    let cases = [
        (
            &alice,
            r#"{"account":"bob"}"#,
            StatusCode::NOT_FOUND,
            "account_not_found",
        ),
        (
            &alice,
            r#"{"method":"MAGIC"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            &alice,
            r#"{"method":"SPECIFIC"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            &alice,
            r#"{"from":"2024-13-01"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            &alice,
            r#"{"acount":"alice"}"#,
            StatusCode::BAD_REQUEST,
            "unknown_field",
        ),
        (&alice, r#"{"#, StatusCode::BAD_REQUEST, "malformed_json"),
    ];
    for (key, body, status, expected) in cases {
        let (s, v) = h.post("/pnl/compute", key, body).await;
        assert_eq!((s, code(&v)), (status, expected), "{body}");
    }
    let both = h.key(Role::Trader, &["alice", "bob"]);
    let (s, v) = h.post("/pnl/compute", &both, "{}").await;
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "missing_field"));
    let (s, v) = h.post("/pnl/compute?account=alice", &alice, "{}").await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::BAD_REQUEST, "unknown_parameter")
    );
    let (s, _) = h.call("POST", "/pnl/compute", "t26_nope", "{}").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    for method in ["lifo", "AVG", "hifo"] {
        let (s, v) = h
            .post(
                "/pnl/compute",
                &alice,
                &json!({"method": method}).to_string(),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["method"], method.to_ascii_uppercase());
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_continues_from_the_snapshot_with_the_same_books_as_a_full_replay() {
    let fills = mixed_fills(21, 240, 3);
    let (dir, fresh_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let h = Harness::start(dir.path(), settings()).await;
    h.publish_fills(&fills[..150]).await;
    h.settle().await;
    h.stop().await;

    let h = Harness::start(dir.path(), settings()).await;
    let snapshot_seq = h.svc.books().snapshot_seq();
    assert!(snapshot_seq > 0, "restored from the shutdown snapshot");
    assert_eq!(h.svc.books().position(), snapshot_seq, "nothing replayed");
    h.publish_fills(&fills[150..]).await;
    h.settle().await;

    let fresh = Harness::start(fresh_dir.path(), settings()).await;
    fresh.publish_fills(&fills).await;
    fresh.settle().await;
    let state = |h: &Harness| h.svc.books().read(|b| serde_json::to_string(b).unwrap());
    assert_eq!(state(&h), state(&fresh));
    let body = json!({"to": date(DAY0)}).to_string();
    assert_eq!(
        h.post("/pnl/compute", &h.admin, &body).await,
        fresh.post("/pnl/compute", &fresh.admin, &body).await
    );
    h.stop().await;
    fresh.stop().await;
}
