//! `trade2026 bench soak` against a real `trade2026 up --insecure-dev`: a short, slow soak sends
//! every kind of the mix, its cancels find the resting orders, nothing fails, and the server's
//! RSS is sampled from the gateway's /metrics. (No timing assertions: the figures of a 5-second
//! run on a shared test machine say nothing.)

mod common;

use std::time::{Duration, Instant};

use common::{Platform, bin, http, http_get};
use serde_json::Value;

/// Wait until the engine fills a market order, so the soak's first orders do not meet a venue
/// without a quote (`no_market_data`).
fn wait_for_a_fill(gateway: std::net::SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let order =
        r#"{"account":"probe","symbol":"BTCUSDT","side":"buy","type":"market","quantity":"0.001"}"#;
    loop {
        if http_get(gateway, "/marketdata/BTCUSDT").0 == 200 {
            let (status, body) = http(gateway, "POST", "/orders", Some(order));
            if status == 201 && body.contains("\"status\":\"filled\"") {
                return;
            }
        }
        assert!(Instant::now() < deadline, "no fill from the platform");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_short_soak_sends_every_kind_cancels_its_resting_orders_and_samples_rss() {
    let dir = tempfile::tempdir().unwrap();
    let p = Platform::start(dir.path(), &["--insecure-dev"]);
    wait_for_a_fill(p.gateway);

    // 40 requests/s for 5 s over 2 accounts: 200 steps, 5 cycles of the mix per account.
    let json_path = dir.path().join("soak.json");
    let out = bin()
        .args(["bench", "soak", "--url"])
        .arg(format!("http://{}", p.gateway))
        .args(["--rate", "40", "--duration", "5s", "--connections", "2"])
        .args(["--accounts", "2", "--sample-every", "1", "--warmup", "0"])
        .args(["--reads-per-sec", "10", "--json"])
        .arg(&json_path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.trim_end().ends_with("result: ok"), "{stdout}");
    assert!(
        stdout.contains("mix per account: market 8/20 (40%)"),
        "{stdout}"
    );

    let r: Value = serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    let kind = |k: &str| &r["kinds"][k];
    let count = |v: &Value| v.as_u64().unwrap_or(0);
    for k in ["market", "ioc-limit", "resting", "cancel", "reject"] {
        assert!(count(&kind(k)["sent"]) > 0, "no {k} sent: {stdout}");
        assert_eq!(count(&kind(k)["server_errors"]), 0, "{k}: {stdout}");
        assert_eq!(count(&kind(k)["transport_errors"]), 0, "{k}: {stdout}");
    }
    // Each kind got the answer the mix is built for.
    let all_are = |k: &str, outcome: &str| {
        assert_eq!(
            kind(k)["outcomes"][outcome],
            kind(k)["sent"],
            "{k}: {}",
            kind(k)["outcomes"]
        );
    };
    all_are("market", "201 filled");
    all_are("ioc-limit", "201 expired");
    all_are("resting", "201 accepted");
    all_are("reject", "422 price_collar");
    // Cancels found their resting orders; one whose order a 2% move filled first is a 409.
    let cancels = count(&kind("cancel")["sent"]);
    let cancelled = count(&kind("cancel")["outcomes"]["200 canceled"]);
    let filled_first = count(&kind("cancel")["outcomes"]["409 order_already_filled"]);
    assert!(cancelled > 0, "{stdout}");
    assert_eq!(cancelled + filled_first, cancels, "{}", kind("cancel"));
    assert_eq!(
        cancels + count(&r["resting"]["cancels_skipped"]),
        count(&kind("resting")["sent"]) + count(&r["resting"]["rests_replaced"]),
        "every resting slot is matched by a cancel slot: {}",
        r["resting"]
    );
    assert_eq!(
        (count(&r["server_errors"]), count(&r["transport_errors"])),
        (0, 0)
    );
    assert_eq!(r["failed"], false);

    let reads = &r["reads"];
    assert!(count(&reads["sent"]) > 0);
    assert_eq!(reads["ok"], reads["sent"], "{reads}");
    assert!(count(&reads["by_path"]["/orders?limit=100"]["sent"]) > 0);
    assert!(count(&reads["by_path"]["/fills?limit=100"]["sent"]) > 0);

    let samples = r["memory"]["samples"].as_array().unwrap();
    assert!(samples.len() >= 2, "{}", r["memory"]);
    for s in samples {
        assert!(count(&s["rss_bytes"]) > 1 << 20, "{s}");
    }
    assert_eq!(r["memory"]["sample_errors"], 0);
    assert!(count(&r["memory"]["peak_bytes"]) >= count(&samples[0]["rss_bytes"]));

    // Nothing the soak placed is left open (leftovers are cancelled after the run).
    for a in ["bench-0-maker", "bench-1-maker"] {
        let (status, body) = http_get(p.gateway, &format!("/orders?account={a}&status=open"));
        assert_eq!(status, 200, "{body}");
        assert_eq!(body.trim(), "[]", "{a} has open orders");
    }
    p.stop();
}
