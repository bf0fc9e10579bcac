//! What the tests that run services as separate processes over NATS share (`cluster.rs`,
//! `replicas.rs`): servers from the environment, `trade2026` processes and their banners, each
//! test's own streams and config, a deterministic market replay and orders.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{bin, http, http_get};

/// A server a test needs, from `var`: unreachable means skip, or fail under CI.
pub fn server(var: &str, default: &str) -> Option<String> {
    let url = std::env::var(var).unwrap_or_else(|_| default.to_owned());
    let hostport = url
        .split("://")
        .nth(1)
        .unwrap_or(&url)
        .trim_end_matches('/')
        .to_owned();
    let reachable = hostport
        .parse::<SocketAddr>()
        .ok()
        .is_some_and(|a| TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok());
    if reachable {
        return Some(url);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{var} ({url}) is required under CI"
    );
    eprintln!("skipped: nothing answers at {url}; set {var}");
    None
}

pub fn poll<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One `trade2026 run <service>` (or `up`) process and the addresses its banner printed.
pub struct Proc {
    pub name: String,
    pub child: Child,
    pub addrs: BTreeMap<String, SocketAddr>,
    pub stdout: BufReader<ChildStdout>,
}

impl Proc {
    pub fn start(args: &[&str], env: &[(String, String)]) -> Proc {
        let name = args.join(" ");
        let mut child = bin()
            .args(args)
            // TEST_CLUSTER_LOG=debug,... shows more of the processes when a test fails.
            .env(
                "RUST_LOG",
                std::env::var("TEST_CLUSTER_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn trade2026 {name}: {e}"));
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut addrs = BTreeMap::new();
        let mut banner = Vec::new();
        loop {
            let mut line = String::new();
            if stdout.read_line(&mut line).unwrap() == 0 {
                let status = child.wait().unwrap();
                panic!(
                    "trade2026 {name} exited ({status}) before it was ready; printed {banner:?}"
                );
            }
            let line = line.trim_end().to_owned();
            // "  ptrc         http://127.0.0.1:port ..." -> ("ptrc", addr)
            // (Not "-> http://..." lines: those name a store, not a port of this process.)
            if let Some(i) = line.find("http://").filter(|&i| !line[..i].contains("->")) {
                let key = line[..i].trim().to_owned();
                let addr = line[i + 7..].split_whitespace().next().unwrap();
                if let Ok(a) = addr.parse() {
                    addrs.insert(key, a);
                }
            }
            let done = line.starts_with("Press Ctrl-C");
            banner.push(line);
            if done {
                break;
            }
        }
        Proc {
            name,
            child,
            addrs,
            stdout,
        }
    }

    pub fn addr(&self, key: &str) -> SocketAddr {
        *self
            .addrs
            .get(key)
            .unwrap_or_else(|| panic!("{} printed no {key:?} address: {:?}", self.name, self.addrs))
    }

    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and a clean exit.
    pub fn stop(mut self) {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let mut rest = String::new();
        let _ = self.stdout.read_to_string(&mut rest);
        let status = self.child.wait().unwrap();
        assert!(
            status.success(),
            "{} exited with {status}: {rest}",
            self.name
        );
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The environment every process of one test shares: its own streams, ephemeral ports,
/// one key file, the test's config (the wash-trade owner map).
pub fn base_env(root: &Path, test: &str, nats: &str, redis: Option<&str>) -> Vec<(String, String)> {
    let id = format!("{}{}", std::process::id(), test);
    let config = root.join("cluster.yaml");
    std::fs::write(
        &config,
        "compliance_scanner:\n  account_owners:\n    wash-a: alice\n    wash-b: alice\n",
    )
    .unwrap();
    let mut env: Vec<(String, String)> = [
        ("TRADE2026_CONFIG", config.display().to_string()),
        ("TRADE2026_NATS__URL", nats.to_owned()),
        ("TRADE2026_NATS__STREAM", format!("T26C{id}")),
        ("TRADE2026_NATS__PREFIX", format!("t26c{id}")),
        ("TRADE2026_NATS__INGEST_STREAM", format!("T26CIN{id}")),
        ("TRADE2026_NATS__INGEST_PREFIX", format!("t26cin{id}")),
        (
            "TRADE2026_PLATFORM__KEYS_FILE",
            root.join("api_keys.json").display().to_string(),
        ),
        ("TRADE2026_SERVICES__GATEWAY", "0".into()),
        ("TRADE2026_SERVICES__PTRC", "0".into()),
        ("TRADE2026_SERVICES__EXECUTION_QUALITY", "0".into()),
        ("TRADE2026_SERVICES__COMPLIANCE_SCANNER", "0".into()),
        ("TRADE2026_SERVICES__FEATURE_PIPELINE", "0".into()),
        ("TRADE2026_SERVICES__LOGGER", "0".into()),
        ("TRADE2026_SERVICES__MONITORING", "0".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    if let Some(r) = redis {
        env.push(("TRADE2026_ONLINE_STORE".into(), r.to_owned()));
    }
    env
}

/// A replay file of BTCUSDT quotes and trades on the `sim` venue: the same market for `up`
/// and the cluster, whatever the wall clock does. Times end a few seconds before now.
pub fn market_file(root: &Path) -> PathBuf {
    let path = root.join("market.ndjson");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let start = now_ms / 1000 * 1000 - 120_000;
    let mut out = String::new();
    for i in 0..400i64 {
        let ts = chrono::DateTime::from_timestamp_millis(start + i * 250)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        // A deterministic walk around 45,000.
        let mid_cents = 4_500_000 + ((i * 37) % 101 - 50) * 7 + i * 3;
        let (bid, ask) = (mid_cents - 5, mid_cents + 5);
        let quote = json!({
            "type": "quote",
            "instrument": {"venue": "sim", "symbol": "BTCUSDT"},
            "bid": cents(bid), "bid_size": "2.5",
            "ask": cents(ask), "ask_size": "3.1",
            "ts": ts,
        });
        out.push_str(&quote.to_string());
        out.push('\n');
        if i % 4 == 0 {
            let trade = json!({
                "type": "trade",
                "instrument": {"venue": "sim", "symbol": "BTCUSDT"},
                "price": cents(if i % 8 == 0 { ask } else { bid }),
                "quantity": format!("0.{:03}", 10 + i % 50),
                "aggressor": if i % 8 == 0 { "buy" } else { "sell" },
                "trade_id": format!("t{i}"),
                "ts": ts,
            });
            out.push_str(&trade.to_string());
            out.push('\n');
        }
    }
    std::fs::write(&path, out).unwrap();
    path
}

pub fn cents(c: i64) -> String {
    format!("{}.{:02}", c / 100, c % 100)
}

/// The last replayed quote: its bid (as the gateway must show it once the replay is
/// journaled) and its time (the market features' event time once they took it all).
pub fn last_quote(market: &Path) -> (String, chrono::DateTime<chrono::Utc>) {
    let text = std::fs::read_to_string(market).unwrap();
    let last = text
        .lines()
        .rev()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v["type"] == "quote")
        .unwrap();
    (
        last["bid"].as_str().unwrap().to_owned(),
        last["ts"].as_str().unwrap().parse().unwrap(),
    )
}

pub fn post_order(gateway: SocketAddr, body: &str) -> Value {
    let (status, text) = http(gateway, "POST", "/orders", Some(body));
    assert_eq!(status, 201, "POST /orders {body}: {text}");
    serde_json::from_str(&text).unwrap()
}

pub fn order(account: &str, side: &str, qty: &str) -> String {
    json!({"account": account, "symbol": "BTCUSDT", "side": side, "type": "market", "quantity": qty})
        .to_string()
}

/// Waits until the gateway at `gateway` shows the replay's last quote: the whole replay is
/// journaled.
pub fn wait_for_replay(gateway: SocketAddr, market: &Path) {
    let (bid, _) = last_quote(market);
    poll("the whole replay in the gateway", 60, || {
        let (status, body) = http_get(gateway, "/marketdata/BTCUSDT");
        (status == 200 && serde_json::from_str::<Value>(&body).unwrap()["quote"]["bid"] == bid)
            .then_some(())
    });
}
