//! The platform as a cluster: every service its own `trade2026 run <service>` process over a
//! real NATS JetStream server (and Redis for the online store), checked with the plan's
//! validation gate, against `up` running the same scripted flow, and under faults.
//!
//! Needs `TEST_NATS_URL` (and `TEST_REDIS_URL`); without them the tests skip, except under
//! `CI=true` where they fail. The NATS fault test starts a NATS server of its own
//! (`TEST_NATS_SERVER`, the `nats-server` binary), so stopping it disturbs no other test.
//! Each test uses streams of its own and ephemeral ports.

mod common;

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::cluster::{
    Proc, base_env, last_quote, market_file, order, poll, post_order, server, wait_for_replay,
};
use common::{bin, http, http_get};
use serde_json::{Value, json};

/// Every service of the cluster, started in order: core, marketdata (replaying `market`),
/// the consumers, monitoring (watching the others).
struct Cluster {
    procs: BTreeMap<&'static str, Proc>,
    env: Vec<(String, String)>,
    root: PathBuf,
}

const CONSUMERS: [&str; 6] = [
    "sinks",
    "ptrc",
    "execution-quality",
    "compliance-scanner",
    "feature-pipeline",
    "logger",
];

impl Cluster {
    fn start(root: &Path, env: Vec<(String, String)>, market: &Path) -> Cluster {
        // (A cluster of some services only is built with `start_service` directly.)
        let mut c = Cluster {
            procs: BTreeMap::new(),
            env,
            root: root.to_owned(),
        };
        c.start_service("core");
        let feed = format!("replay:{}", market.display());
        c.start_with("marketdata", &["--feed", &feed, "--replay-speed", "max"]);
        for s in CONSUMERS {
            c.start_service(s);
        }
        // Monitoring watches every port the others printed.
        let targets: Vec<Value> = c
            .procs
            .values()
            .flat_map(|p| p.addrs.iter())
            .map(|(name, a)| json!({"service": name.replace(' ', "_"), "url": format!("http://{a}/metrics")}))
            .collect();
        c.env.push((
            "TRADE2026_MONITORING__TARGETS".into(),
            Value::Array(targets).to_string(),
        ));
        c.start_service("monitoring");
        c
    }

    fn start_service(&mut self, service: &'static str) {
        self.start_with(service, &[]);
    }

    fn start_with(&mut self, service: &'static str, extra: &[&str]) {
        let dir = self.root.join(service);
        let dir = dir.display().to_string();
        let mut args = vec!["run", service, "--data-dir", dir.as_str(), "--insecure-dev"];
        args.extend_from_slice(extra);
        let p = Proc::start(&args, &self.env);
        self.procs.insert(service, p);
    }

    fn addr(&self, service: &str, key: &str) -> SocketAddr {
        self.procs[service].addr(key)
    }

    fn take(&mut self, service: &str) -> Proc {
        self.procs.remove(service).unwrap()
    }
}

/// The port of each HTTP service, in `up` (one process) or the cluster (one each).
#[derive(Clone, Copy)]
struct Ports {
    gateway: SocketAddr,
    ptrc: SocketAddr,
    quality: SocketAddr,
    scanner: SocketAddr,
    features: SocketAddr,
}

impl Ports {
    fn of_up(p: &Proc) -> Ports {
        Ports {
            gateway: p.addr("gateway"),
            ptrc: p.addr("ptrc"),
            quality: p.addr("exec quality"),
            scanner: p.addr("compliance"),
            features: p.addr("features"),
        }
    }

    fn of_cluster(c: &Cluster) -> Ports {
        Ports {
            gateway: c.addr("core", "gateway"),
            ptrc: c.addr("ptrc", "ptrc"),
            quality: c.addr("execution-quality", "exec quality"),
            scanner: c.addr("compliance-scanner", "compliance"),
            features: c.addr("feature-pipeline", "features"),
        }
    }
}

/// The scripted flow: waits until the replay is journaled and in the market features (whose
/// windows end at the newest event, so they are read before orders add wall-clock events),
/// then trades (a wash pair of one owner, a round trip, a partial close). Returns the order
/// count and the market features of the replay.
fn scripted_flow(ports: Ports, market: &Path, mid_flow: impl FnOnce()) -> (usize, Value) {
    let (_, ts) = last_quote(market);
    wait_for_replay(ports.gateway, market);
    let features = poll("the whole replay in the market features", 60, || {
        let (status, body) = http_get(ports.features, "/features/market_features/BTCUSDT");
        let v: Value = serde_json::from_str(&body).ok()?;
        let at: chrono::DateTime<chrono::Utc> = v["event_ts"].as_str()?.parse().ok()?;
        (status == 200 && at == ts)
            .then(|| json!({"event_ts": v["event_ts"], "values": v["values"]}))
    });
    let orders = [
        order("wash-a", "buy", "0.5"),
        order("wash-b", "sell", "0.5"),
        order("trader-1", "buy", "0.3"),
        order("trader-1", "buy", "0.2"),
        order("trader-1", "sell", "0.4"),
        order("trader-2", "sell", "0.25"),
    ];
    let half = orders.len() / 2;
    for o in &orders[..half] {
        post_order(ports.gateway, o);
    }
    mid_flow();
    for o in &orders[half..] {
        post_order(ports.gateway, o);
    }
    (orders.len(), features)
}

/// What the flow produced, in the fields that do not depend on the wall clock.
#[derive(Debug, PartialEq)]
struct Outcome {
    pnl: Vec<Value>,
    quality: Value,
    alerts: Vec<Value>,
    features: Value,
}

fn outcome(ports: Ports, orders: usize, features: Value) -> Outcome {
    let quality = poll("every order in execution quality", 60, || {
        let (status, body) = http_get(ports.quality, "/quality");
        let v: Value = serde_json::from_str(&body).ok()?;
        (status == 200 && v["aggregates"]["overall"]["orders"] == orders).then_some(v)
    });
    let overall = &quality["aggregates"]["overall"];
    let quality = json!({
        "orders": overall["orders"],
        "fill_rate": overall["fill_rate"],
        "shares": overall.get("shares").cloned().unwrap_or(Value::Null),
        "avg_effective_spread_bps": overall.get("avg_effective_spread_bps").cloned().unwrap_or(Value::Null),
        "avg_price_improvement_bps": overall.get("avg_price_improvement_bps").cloned().unwrap_or(Value::Null),
    });
    // Each account's position once ptrc has every fill of `scripted_flow` (an account's fills
    // can reach ptrc in several batches; the position is final only after the last one).
    let pnl = [
        ("wash-a", 0.5),
        ("wash-b", -0.5),
        ("trader-1", 0.1),
        ("trader-2", -0.25),
    ]
    .iter()
    .map(|(account, position)| {
        let body = json!({"account": account, "method": "FIFO"}).to_string();
        let report: Value = poll(
            &format!("{account}'s position of {position} in ptrc"),
            60,
            || {
                let (status, text) = http(ports.ptrc, "POST", "/pnl/compute", Some(&body));
                let v: Value = serde_json::from_str(&text).ok()?;
                let qty: f64 = v["accounts"][0]["symbols"][0]["position_qty"]
                    .as_str()?
                    .parse()
                    .ok()?;
                (status == 200 && (qty - position).abs() < 1e-9).then_some(v)
            },
        );
        let sym = &report["accounts"][0]["symbols"][0];
        json!({
            "account": account,
            "trades": sym["trades"],
            "position_qty": sym["position_qty"],
            "realized_pnl": sym["realized_pnl"],
            "unrealized_pnl": sym["unrealized_pnl"],
            "mark": sym["mark"],
            "totals": report["accounts"][0]["totals"],
        })
    })
    .collect();
    let alerts = poll("the wash-trade alert", 60, || {
        let (status, body) = http_get(ports.scanner, "/alerts");
        let v: Value = serde_json::from_str(&body).ok()?;
        let list = v["alerts"].as_array()?.clone();
        (status == 200 && list.iter().any(|a| a["owner"] == "alice")).then_some(list)
    });
    let alerts = alerts
        .iter()
        .map(|a| json!({"type": a["type"], "subtype": a["subtype"], "owner": a["owner"], "symbol": a["symbol"]}))
        .collect();
    Outcome {
        pnl,
        quality,
        alerts,
        features,
    }
}

#[test]
fn the_cluster_passes_the_plans_gate_and_agrees_with_up_after_a_consumer_is_killed() {
    let Some(nats) = server("TEST_NATS_URL", "nats://127.0.0.1:4222") else {
        return;
    };
    let Some(redis) = server("TEST_REDIS_URL", "redis://127.0.0.1:6379") else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let market = market_file(root.path());

    // --- the flow through `up` -------------------------------------------------------------
    let up_dir = root.path().join("up");
    std::fs::create_dir_all(&up_dir).unwrap();
    let mut up_env = base_env(&up_dir, "up", &nats, None);
    up_env.retain(|(k, _)| !k.starts_with("TRADE2026_NATS"));
    let feed = format!("replay:{}", market.display());
    let up_data = up_dir.join("data").display().to_string();
    let up = Proc::start(
        &[
            "up",
            "--data-dir",
            &up_data,
            "--insecure-dev",
            "--feed",
            &feed,
            "--replay-speed",
            "max",
        ],
        &up_env,
    );
    let up_ports = Ports::of_up(&up);
    let (orders, features) = scripted_flow(up_ports, &market, || {});
    let expected = outcome(up_ports, orders, features);
    up.stop();

    // --- the same flow through the cluster, killing a consumer half-way ----------------------
    let cluster_dir = root.path().join("cluster");
    std::fs::create_dir_all(&cluster_dir).unwrap();
    let Some(clickhouse) = server("TEST_CLICKHOUSE_URL", "http://127.0.0.1:8123") else {
        return;
    };
    let database = format!("t26_gate_{}", std::process::id());
    let mut env = base_env(&cluster_dir, "gate", &nats, Some(&redis));
    env.push(("TRADE2026_CLICKHOUSE__HTTP_URL".into(), clickhouse.clone()));
    env.push(("TRADE2026_CLICKHOUSE__DATABASE".into(), database.clone()));
    let mut cluster = Cluster::start(&cluster_dir, env, &market);
    let ports = Ports::of_cluster(&cluster);

    // Test 1 of the gate: every service healthy.
    for (service, p) in &cluster.procs {
        for (key, addr) in &p.addrs {
            poll(&format!("{service} ({key}) healthy"), 60, || {
                (http_get(*addr, "/health").0 == 200).then_some(())
            });
        }
    }
    let (orders, features) = scripted_flow(ports, &market, || {
        // SIGKILL execution quality and the scanner mid-flow; restart them on their data.
        cluster.take("execution-quality").kill();
        cluster.take("compliance-scanner").kill();
    });
    cluster.start_service("execution-quality");
    cluster.start_service("compliance-scanner");
    let ports = Ports::of_cluster(&cluster);
    let got = outcome(ports, orders, features);
    assert_eq!(got, expected, "the cluster's figures are `up`'s");

    // Test 2 of the gate: the plan's calls, as written.
    let (status, body) = http(
        ports.ptrc,
        "POST",
        "/pnl/compute",
        Some(r#"{"account": "test_account", "method": "FIFO"}"#),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = http_get(ports.quality, "/metrics");
    assert_eq!(status, 200);
    assert!(body.contains("trade2026_execq_"), "{body}");
    // Test 3: core trading still works: the seed order.
    let seed = r#"{"account":"test_account","symbol":"BTCUSDT","side":"buy","type":"market","quantity":"0.01"}"#;
    post_order(ports.gateway, seed);
    // The plan's Valkey check: the online store holds BTCUSDT's market features.
    let key = "feast:market_features:BTCUSDT";
    let stored = poll("feast:market_features:BTCUSDT in Redis", 60, || {
        let out = Command::new("redis-cli")
            .args(["-u", &redis, "GET", key])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        serde_json::from_str::<Value>(&text).ok()
    });
    assert_eq!(stored["entity"], "BTCUSDT", "{stored}");
    assert!(stored["values"]["mid"].is_number(), "{stored}");

    // The analytics store: every fill of the cluster as a row of trade2026's `fills` table.
    let fills = common::get_all(ports.gateway, "/fills", "fill_id").len();
    poll("every fill in ClickHouse", 60, || {
        let row = clickhouse_row(
            &clickhouse,
            &format!("SELECT count(), uniqExact(fill_id) FROM {database}.fills"),
        );
        (row == [fills.to_string(), fills.to_string()]).then_some(())
    });

    // Monitoring sees every target up.
    let monitoring = cluster.addr("monitoring", "monitoring");
    poll("monitoring sees every target", 60, || {
        let (status, body) = http_get(monitoring, "/api/v1/alerts");
        let v: Value = serde_json::from_str(&body).ok()?;
        let down = v["data"]["alerts"]
            .as_array()?
            .iter()
            .any(|a| a["labels"]["alertname"] == "ServiceDown" && a["state"] == "firing");
        (status == 200 && !down).then_some(())
    });

    for (_, p) in std::mem::take(&mut cluster.procs).into_iter().rev() {
        p.stop();
    }
    clickhouse_row(&clickhouse, &format!("DROP DATABASE IF EXISTS {database}"));
}

/// A NATS server of this test's own (so stopping it disturbs no other test), on a free port,
/// storing JetStream under `dir` so a restart keeps the streams.
struct OwnNats {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl OwnNats {
    fn start(bin: PathBuf, dir: &Path) -> OwnNats {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut n = OwnNats {
            bin,
            dir: dir.to_owned(),
            port,
            child: None,
        };
        n.resume();
        n
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn resume(&mut self) {
        let child = Command::new(&self.bin)
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(&self.dir)
            .args(["-m", &(self.port + 1).to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server");
        self.child = Some(child);
        let addr: SocketAddr = format!("127.0.0.1:{}", self.port).parse().unwrap();
        poll("our NATS server", 20, || TcpStream::connect(addr).ok());
    }

    /// SIGTERM and wait: the server is gone, its stored streams stay on disk.
    fn halt(&mut self) {
        if let Some(mut c) = self.child.take() {
            Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status()
                .unwrap();
            c.wait().unwrap();
        }
    }
}

impl Drop for OwnNats {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn a_ten_second_nats_outage_under_load_loses_nothing_and_the_core_keeps_acknowledging() {
    let Some(bin) = common::tool("TEST_NATS_SERVER", "nats-server") else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let mut nats = OwnNats::start(bin, &root.path().join("nats"));
    eprintln!("our NATS: {} (monitoring on the next port)", nats.url());
    let market = market_file(root.path());
    let env = base_env(root.path(), "outage", &nats.url(), None);
    let mut cluster = Cluster {
        procs: BTreeMap::new(),
        env,
        root: root.path().to_owned(),
    };
    cluster.start_service("core");
    let feed = format!("replay:{}", market.display());
    cluster.start_with("marketdata", &["--feed", &feed, "--replay-speed", "max"]);
    cluster.start_service("execution-quality");
    cluster.start_service("ptrc");
    let gateway = cluster.addr("core", "gateway");
    let quality = cluster.addr("execution-quality", "exec quality");
    wait_for_replay(gateway, &market);

    // Orders at a steady pace before, during and after a 10 s outage of NATS; each answer is
    // checked (the core never stops acknowledging: its journal does not wait for NATS).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let loader = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut sent = 0usize;
            let mut slowest = Duration::ZERO;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let side = if sent.is_multiple_of(2) {
                    "buy"
                } else {
                    "sell"
                };
                let t0 = Instant::now();
                post_order(gateway, &order("steady", side, "0.01"));
                slowest = slowest.max(t0.elapsed());
                sent += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            (sent, slowest)
        })
    };
    std::thread::sleep(Duration::from_secs(2));
    nats.halt();
    let outage = Instant::now();
    std::thread::sleep(Duration::from_secs(10));
    nats.resume();
    let restarted = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (sent, slowest) = loader.join().unwrap();
    assert!(
        sent > 100,
        "the core acknowledged only {sent} orders in 14 s"
    );
    eprintln!(
        "outage {:?}: {sent} orders acknowledged, slowest acknowledgement {slowest:?}",
        restarted - outage
    );

    // Afterwards every order is in execution quality exactly once, and ptrc has every fill.
    let mut seen = Value::Null;
    let caught_up = poll("execution quality caught up after the outage", 60, || {
        let (status, body) = http_get(quality, "/quality?account=steady");
        let v: Value = serde_json::from_str(&body).ok()?;
        seen = v["aggregates"]["overall"]["orders"].clone();
        if seen != sent {
            eprintln!("execution quality has {seen} of {sent} orders");
        }
        (status == 200 && seen == sent).then(Instant::now)
    });
    let _ = &seen;
    eprintln!(
        "execution quality caught up {:?} after NATS came back",
        caught_up - restarted
    );
    let (_, fills) = http_get(gateway, "/fills?account=steady&limit=1000");
    let fills: Vec<Value> = serde_json::from_str(&fills).unwrap();
    let ptrc = cluster.addr("ptrc", "ptrc");
    let body = json!({"account": "steady", "method": "FIFO"}).to_string();
    poll("ptrc has every fill once", 60, || {
        let (status, text) = http(ptrc, "POST", "/pnl/compute", Some(&body));
        let v: Value = serde_json::from_str(&text).ok()?;
        (status == 200 && v["accounts"][0]["symbols"][0]["trades"] == fills.len()).then_some(())
    });
    // The outbox published the whole journal again.
    poll("the outbox caught up", 30, || {
        let (_, body) = http_get(gateway, "/health");
        let v: Value = serde_json::from_str(&body).ok()?;
        (v["nats"]["behind"] == 0 && v["nats"]["connected"] == true).then_some(())
    });
    for (_, p) in std::mem::take(&mut cluster.procs).into_iter().rev() {
        p.stop();
    }
}

/// `trade2026 run <args>` that must fail at start: its exit status and what it printed.
fn run_fails(args: &[&str], env: &[(String, String)]) -> String {
    let out = bin()
        .args(args)
        .env("RUST_LOG", "error")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .expect("run trade2026");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{args:?} should fail: {text}");
    text
}

#[test]
fn bad_settings_stop_a_service_with_a_message_naming_the_setting() {
    let root = tempfile::tempdir().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut env = base_env(
        root.path(),
        "badcfg",
        &format!("nats://127.0.0.1:{closed_port}"),
        None,
    );
    env.push(("TRADE2026_NATS__CONNECT_TIMEOUT_SECS".into(), "1".into()));
    let dir = root.path().join("svc").display().to_string();

    // NATS unreachable.
    let text = run_fails(&["run", "ptrc", "--data-dir", &dir], &env);
    assert!(text.contains("nats.url"), "{text}");

    let Some(nats) = server("TEST_NATS_URL", "nats://127.0.0.1:4222") else {
        return;
    };
    for (k, v) in env.iter_mut() {
        if k == "TRADE2026_NATS__URL" {
            v.clone_from(&nats);
        }
    }
    // A stream no core writes: the consumer waits its timeout, then names the setting.
    let text = run_fails(&["run", "execution-quality", "--data-dir", &dir], &env);
    assert!(
        text.contains("nats.stream") && text.contains("core"),
        "{text}"
    );

    // ClickHouse refusing the credentials.
    let Some(clickhouse) = server("TEST_CLICKHOUSE_URL", "http://127.0.0.1:8123") else {
        return;
    };
    let with_password = clickhouse.replacen("http://", "http://default:wrong-password@", 1);
    let mut ch_env = env.clone();
    ch_env.push(("TRADE2026_CLICKHOUSE__HTTP_URL".into(), with_password));
    // The core creates the stream the sinks read.
    let core_dir = root.path().join("core").display().to_string();
    let mut core_args = vec!["run", "core", "--data-dir", core_dir.as_str()];
    core_args.push("--insecure-dev");
    let core = Proc::start(&core_args, &env);
    let text = run_fails(&["run", "sinks", "--data-dir", &dir], &ch_env);
    assert!(text.contains("clickhouse.http_url"), "{text}");
    assert!(
        !text.contains("wrong-password"),
        "the password is never printed: {text}"
    );
    core.stop();
}

/// A TCP forwarder in front of a server, which a test can take away (every connection cut,
/// nothing accepted) and bring back on the same port: an outage of that server for its
/// clients, while the shared server itself keeps running for other tests.
struct Outage {
    port: u16,
    target: SocketAddr,
    down: std::sync::Arc<std::sync::atomic::AtomicBool>,
    conns: std::sync::Arc<std::sync::Mutex<Vec<TcpStream>>>,
}

impl Outage {
    fn new(target: SocketAddr) -> Outage {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let o = Outage {
            port,
            target,
            down: Default::default(),
            conns: Default::default(),
        };
        let (down, conns) = (o.down.clone(), o.conns.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if down.load(std::sync::atomic::Ordering::SeqCst) {
                    let _ = client.shutdown(std::net::Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(target) else {
                    continue;
                };
                {
                    let mut c = conns.lock().unwrap();
                    c.push(client.try_clone().unwrap());
                    c.push(server.try_clone().unwrap());
                }
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        o
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn cut(&self) {
        self.down.store(true, std::sync::atomic::Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }

    fn restore(&self) {
        let _ = self.target;
        self.down.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

/// `SELECT ...` on ClickHouse over HTTP: the first row's tab-separated values.
fn clickhouse_row(url: &str, sql: &str) -> Vec<String> {
    let addr: SocketAddr = url.trim_start_matches("http://").parse().unwrap();
    let encoded: String = sql
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    // POST: ClickHouse runs only reading queries for a GET.
    let (status, body) = http(addr, "POST", &format!("/?query={encoded}"), None);
    assert_eq!(status, 200, "{sql}: {body}");
    body.lines()
        .next()
        .unwrap_or("")
        .split('\t')
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_clickhouse_outage_under_load_loses_and_doubles_no_row() {
    let Some(nats) = server("TEST_NATS_URL", "nats://127.0.0.1:4222") else {
        return;
    };
    let Some(clickhouse) = server("TEST_CLICKHOUSE_URL", "http://127.0.0.1:8123") else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let market = market_file(root.path());
    let proxy = Outage::new(clickhouse.trim_start_matches("http://").parse().unwrap());
    let database = format!("t26_outage_{}", std::process::id());
    let mut env = base_env(root.path(), "chout", &nats, None);
    env.push(("TRADE2026_CLICKHOUSE__HTTP_URL".into(), proxy.url()));
    env.push(("TRADE2026_CLICKHOUSE__DATABASE".into(), database.clone()));
    let mut cluster = Cluster {
        procs: BTreeMap::new(),
        env,
        root: root.path().to_owned(),
    };
    cluster.start_service("core");
    let feed = format!("replay:{}", market.display());
    cluster.start_with("marketdata", &["--feed", &feed, "--replay-speed", "max"]);
    cluster.start_service("sinks");
    let gateway = cluster.addr("core", "gateway");
    wait_for_replay(gateway, &market);
    let mut sent = 0usize;
    let post_for = |secs: u64, sent: &mut usize| {
        let until = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < until {
            let side = if sent.is_multiple_of(2) {
                "buy"
            } else {
                "sell"
            };
            post_order(gateway, &order("ch-load", side, "0.01"));
            *sent += 1;
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    post_for(2, &mut sent);
    proxy.cut();
    post_for(10, &mut sent);
    proxy.restore();
    post_for(2, &mut sent);

    let fills = common::get_all(gateway, "/fills?account=ch-load", "fill_id").len();
    assert!(fills >= sent, "{fills} fills for {sent} market orders");
    let table = format!("{database}.fills");
    poll("every fill in ClickHouse once", 60, || {
        let row = clickhouse_row(
            &clickhouse,
            &format!("SELECT count(), uniqExact(seq) FROM {table} WHERE account = 'ch-load'"),
        );
        (row == [fills.to_string(), fills.to_string()]).then_some(())
    });
    let orders = clickhouse_row(
        &clickhouse,
        &format!("SELECT uniqExact(order_id) FROM {database}.orders WHERE account = 'ch-load'"),
    );
    assert_eq!(orders, [sent.to_string()]);
    let quotes = clickhouse_row(
        &clickhouse,
        &format!("SELECT count() FROM {database}.quotes"),
    );
    assert_eq!(quotes, ["400"], "every replayed quote once");
    for (_, p) in std::mem::take(&mut cluster.procs).into_iter().rev() {
        p.stop();
    }
    clickhouse_row(&clickhouse, &format!("DROP DATABASE IF EXISTS {database}"));
}
