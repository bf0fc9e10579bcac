//! The API contract: every service serves an OpenAPI document (`GET /openapi.json`) that is
//! exactly what it enforces. Schemathesis generates requests from each document, valid and
//! invalid, sends them to a running platform and checks every answer against the document:
//! no server errors, every status and body as documented, invalid requests refused, valid ones
//! accepted (see `contract/hooks.py` for the one refinement: refusals that depend on the
//! platform's state, which each operation lists in `x-state-errors`).
//!
//! The schemathesis executable comes from `TEST_SCHEMATHESIS` (`.ci/run` installs it); without
//! it the schemathesis part is skipped with a message, except under `CI=true`, where that fails.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Platform, http_as, http_get};
use serde_json::Value;

fn schemathesis() -> Option<PathBuf> {
    match std::env::var_os("TEST_SCHEMATHESIS") {
        Some(p) => Some(PathBuf::from(p)),
        None => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "TEST_SCHEMATHESIS must name schemathesis's `st` executable under CI (.ci/run installs it)"
            );
            eprintln!(
                "skipping the schemathesis runs: TEST_SCHEMATHESIS (the path of schemathesis's `st`) is not set"
            );
            None
        }
    }
}

/// One schemathesis run against the service at `addr` as `key`; `Err` holds its report.
fn schemathesis_run(
    st: &Path,
    workdir: &Path,
    addr: SocketAddr,
    key: &str,
    extra: &[&str],
) -> Result<(), String> {
    let hooks = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/contract/hooks.py");
    let out = Command::new(st)
        .current_dir(workdir)
        .env("SCHEMATHESIS_HOOKS", hooks)
        .arg("run")
        .arg(format!("http://{addr}/openapi.json"))
        .args(["-H", &format!("Authorization: Bearer {key}")])
        // Every check, with `valid_requests_are_accepted` (hooks.py) in place of the built-in
        // positive_data_acceptance, which cannot know which refusals depend on state; and
        // without use_after_free: DELETE /orders/{id} cancels, and the order stays readable.
        .args(["--checks", "all", "--exclude-checks"])
        .arg("positive_data_acceptance,use_after_free")
        // Bounded and reproducible: the same cases on every run.
        .args(["--max-examples", "25", "--seed", "20261206"])
        .args(["--generation-database", "none", "--no-color"])
        .args(["--request-timeout", "10"])
        .args(extra)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", st.display()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "schemathesis exited with {}\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn document(addr: SocketAddr, key: Option<&str>) -> Value {
    let (status, body) = match key {
        Some(k) => http_as(addr, k, "GET", "/openapi.json", None),
        None => http_get(addr, "/openapi.json"),
    };
    assert_eq!(status, 200, "{addr}/openapi.json: {body}");
    serde_json::from_str(&body).unwrap()
}

#[test]
fn every_service_serves_the_contract_it_enforces() {
    let dir = tempfile::tempdir().unwrap();
    let p = Platform::start(dir.path(), &[]);
    let services = [
        ("gateway", p.gateway, "/orders"),
        ("ptrc", p.ptrc, "/pnl/compute"),
        ("execution quality", p.quality, "/quality"),
        ("compliance scanner", p.scanner, "/alerts"),
        ("feature pipeline", p.features, "/get-online-features"),
        ("logger", p.logger, "/logs"),
        ("monitoring", p.monitoring, "/api/v1/alerts"),
    ];
    for (name, addr, route) in services {
        let doc = document(addr, None);
        assert_eq!(doc["openapi"], "3.1.0", "{name}");
        let paths = doc["paths"].as_object().unwrap();
        for p in [route, "/health", "/metrics", "/openapi.json"] {
            assert!(paths.contains_key(p), "{name}'s document lacks {p}");
        }
        // The host's answers are on every operation.
        assert!(
            doc["paths"]["/openapi.json"]["get"]["responses"]["503"].is_object(),
            "{name}"
        );
        assert!(doc["components"]["schemas"]["Error"].is_object(), "{name}");
    }
    // Asked with a trader key of one account, a document names that account and lets an order
    // leave it out; asked as admin, an order must name its account.
    let gw = document(p.gateway, Some(&p.trader_key));
    assert_eq!(
        gw["components"]["schemas"]["AccountId"]["enum"],
        serde_json::json!(["test_account"])
    );
    let required = |doc: &Value| doc["components"]["schemas"]["MarketOrder"]["required"].clone();
    assert!(
        !required(&gw)
            .as_array()
            .unwrap()
            .contains(&"account".into())
    );
    // The symbols listed are those with market data: wait for the synthetic market's first.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while http_get(p.gateway, "/marketdata")
        .1
        .contains("\"symbols\":[]")
    {
        assert!(std::time::Instant::now() < deadline, "no market data");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let admin = document(p.gateway, Some(&p.admin_key));
    assert!(admin["components"]["schemas"]["AccountId"]["enum"].is_null());
    assert!(
        required(&admin)
            .as_array()
            .unwrap()
            .contains(&"account".into())
    );
    assert!(
        admin["components"]["schemas"]["TradedSymbol"]["enum"]
            .as_array()
            .is_some_and(|s| s.contains(&"BTCUSDT".into())),
        "the gateway's document lists the symbols it trades"
    );

    // A trader key of two accounts (made while the platform runs): its orders and P&L
    // requests must name the account, and its document says so.
    let made = common::bin()
        .args(["keys", "create", "--role", "trader"])
        .args(["--accounts", "test_account,desk_b", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let two_key = String::from_utf8_lossy(&made.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("key "))
        .map(|k| k.trim().to_owned())
        .expect("keys create prints the key");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let two = loop {
        let doc = document(p.gateway, Some(&two_key));
        if doc["components"]["schemas"]["AccountId"]["enum"]
            == serde_json::json!(["desk_b", "test_account"])
        {
            break doc;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the new key is not taken: {doc}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(
        required(&two)
            .as_array()
            .unwrap()
            .contains(&"account".into())
    );
    let pnl = document(p.ptrc, Some(&two_key));
    assert_eq!(
        pnl["paths"]["/pnl/compute"]["post"]["requestBody"]["required"],
        true
    );
    assert!(
        pnl["components"]["schemas"]["PnlRequest"]["required"]
            .as_array()
            .unwrap()
            .contains(&"account".into())
    );

    let Some(st) = schemathesis() else { return };
    let workdir = tempfile::tempdir().unwrap();
    // The trader key first (its account rules were where the contract drifted), before the
    // admin run changes risk limits at random.
    let runs: Vec<(&str, SocketAddr, &str, &[&str])> = vec![
        // /stream never ends: its contract is tested by the gateway's own tests.
        (
            "gateway (trader key)",
            p.gateway,
            &p.trader_key,
            &["--exclude-path", "/stream"],
        ),
        (
            "gateway (trader key of two accounts)",
            p.gateway,
            &two_key,
            &["--exclude-path", "/stream"],
        ),
        ("ptrc (trader key of two accounts)", p.ptrc, &two_key, &[]),
        (
            "gateway (admin key)",
            p.gateway,
            &p.admin_key,
            &["--exclude-path", "/stream"],
        ),
        ("ptrc", p.ptrc, &p.admin_key, &[]),
        ("execution quality", p.quality, &p.admin_key, &[]),
        ("compliance scanner", p.scanner, &p.admin_key, &[]),
        ("feature pipeline", p.features, &p.admin_key, &[]),
        // The tail never ends: the logger's own tests read it.
        (
            "logger",
            p.logger,
            &p.admin_key,
            &["--exclude-path", "/logs/tail"],
        ),
        ("monitoring", p.monitoring, &p.admin_key, &[]),
    ];
    let failures: Vec<String> = runs
        .iter()
        .filter_map(|(name, addr, key, extra)| {
            schemathesis_run(&st, workdir.path(), *addr, key, extra)
                .err()
                .map(|report| format!("===== {name} =====\n{report}"))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
