//! "What was acknowledged is durable": orders stream into a running platform, the process is
//! SIGKILLed mid-stream, and after a restart every order that got a 2xx is there in the same
//! state, no fill is duplicated, and positions equal the sum of fills. Consumers snapshot every
//! 50 events here, so the kill usually lands while snapshot files are being written.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Platform, http_get, try_http};
use serde_json::Value;

fn mid(addr: std::net::SocketAddr) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = http_get(addr, "/marketdata/BTCUSDT");
        if status == 200 {
            let v: Value = serde_json::from_str(&body).unwrap();
            if let Some(m) = v["quote"]["mid"].as_str() {
                return m.parse().unwrap();
            }
        }
        assert!(Instant::now() < deadline, "no market data");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn acknowledged_orders_fills_and_positions_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let env = [(
        "TRADE2026_PLATFORM__SNAPSHOTS__EVERY_EVENTS",
        "50".to_string(),
    )];
    let p = Platform::start_with_env(dir.path(), &["--insecure-dev"], &env);
    let addr = p.gateway;
    let m = mid(addr);
    // Resting limits 3% away from the mid (inside the 5% collar, far from filling during the
    // test) and small market orders that fill at once.
    let far_buy = format!("{:.2}", m * 0.97);
    let acked: Arc<Mutex<BTreeMap<u64, Value>>> = Arc::default();
    let count = Arc::new(AtomicUsize::new(0));
    let sender = {
        let (acked, count) = (acked.clone(), count.clone());
        std::thread::spawn(move || {
            for i in 0.. {
                let body = match i % 3 {
                    0 => format!(
                        r#"{{"account":"acct-{}","symbol":"BTCUSDT","side":"buy","type":"limit","quantity":"0.01","price":"{far_buy}"}}"#,
                        i % 4
                    ),
                    1 => format!(
                        r#"{{"account":"acct-{}","symbol":"BTCUSDT","side":"buy","type":"market","quantity":"0.002"}}"#,
                        i % 4
                    ),
                    _ => format!(
                        r#"{{"account":"acct-{}","symbol":"BTCUSDT","side":"sell","type":"market","quantity":"0.001"}}"#,
                        i % 4
                    ),
                };
                let Some((status, body)) = try_http(addr, "POST", "/orders", Some(&body)) else {
                    return;
                };
                assert!(
                    status == 201 || status == 422,
                    "unexpected {status}: {body}"
                );
                if status == 201 {
                    let v: Value = serde_json::from_str(&body).unwrap();
                    acked
                        .lock()
                        .unwrap()
                        .insert(v["order_id"].as_u64().unwrap(), v);
                    count.fetch_add(1, Ordering::SeqCst);
                }
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while count.load(Ordering::SeqCst) < 150 {
        assert!(
            Instant::now() < deadline,
            "orders are not being acknowledged"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    p.kill();
    sender.join().unwrap();
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 150);

    let p = Platform::start_with_env(dir.path(), &["--insecure-dev"], &env);
    for (id, before) in &acked {
        let (status, body) = http_get(p.gateway, &format!("/orders/{id}"));
        assert_eq!(status, 200, "acknowledged order {id} lost after SIGKILL");
        let after: Value = serde_json::from_str(&body).unwrap();
        for field in [
            "status",
            "filled_quantity",
            "avg_fill_price",
            "quantity",
            "price",
            "account",
        ] {
            assert_eq!(
                after[field], before[field],
                "order {id} field {field} changed across the crash"
            );
        }
    }
    let fills: Vec<Value> = common::get_all(p.gateway, "/fills", "fill_id");
    let mut ids: Vec<u64> = fills
        .iter()
        .map(|f| f["fill_id"].as_u64().unwrap())
        .collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "duplicated fills after replay");
    assert!(n > 0);

    // Positions equal the sum of fills, per account.
    let mut net: BTreeMap<String, f64> = BTreeMap::new();
    for f in &fills {
        let q: f64 = f["quantity"].as_str().unwrap().parse().unwrap();
        let sign = if f["side"] == "buy" { 1.0 } else { -1.0 };
        *net.entry(f["account"].as_str().unwrap().to_string())
            .or_default() += sign * q;
    }
    let (_, positions) = http_get(p.gateway, "/positions");
    let positions: Vec<Value> = serde_json::from_str(&positions).unwrap();
    assert_eq!(positions.len(), net.len());
    for pos in &positions {
        let account = pos["account"].as_str().unwrap();
        let qty: f64 = pos["net_qty"].as_str().unwrap().parse().unwrap();
        assert!(
            (qty - net[account]).abs() < 1e-9,
            "{account}: position {qty} != fills {}",
            net[account]
        );
    }
    // Filled quantities equal the sum of each order's fills.
    let mut per_order: BTreeMap<u64, f64> = BTreeMap::new();
    for f in &fills {
        *per_order
            .entry(f["order_id"].as_u64().unwrap())
            .or_default() += f["quantity"].as_str().unwrap().parse::<f64>().unwrap();
    }
    for (id, before) in &acked {
        let filled: f64 = before["filled_quantity"].as_str().unwrap().parse().unwrap();
        assert!(
            (per_order.get(id).copied().unwrap_or(0.0) - filled).abs() < 1e-12,
            "order {id}"
        );
    }
    p.stop();
}
