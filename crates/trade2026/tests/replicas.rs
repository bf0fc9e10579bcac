//! Partitioned replicas (`trade2026 run <service> --partition i/N`): two replicas of the
//! compliance scanner and of ptrc, between them, give what one of each gives.
//!
//! Two clusters over the same NATS server, each with a stream of its own, replay the same
//! market and take the same orders: cluster "one" runs one scanner and one ptrc, cluster
//! "two" runs replicas 0/2 and 1/2 of each. They use separate streams because replicas answer
//! into the journal they read (alerts): on a shared stream one scanner's alerts would land in
//! the replicas' stores and hide what the replicas themselves found.
//!
//! Needs `TEST_NATS_URL`; without it the test skips, except under `CI=true` where it fails.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;

use common::cluster::{
    Proc, base_env, market_file, order, poll, post_order, server, wait_for_replay,
};
use common::{http, http_get};
use serde_json::{Value, json};

/// Owners with two accounts each (a wash pair per owner, so one alert each), and accounts
/// that are their own owner (buys only, so no alert).
const OWNERS: [&str; 6] = ["alice", "bob", "carol", "dave", "erin", "frank"];
const TRADERS: [&str; 4] = ["trader-1", "trader-2", "trader-3", "trader-4"];

fn accounts_of(owner: &str) -> [String; 2] {
    [format!("{owner}-a"), format!("{owner}-b")]
}

/// The replica a key belongs to: FNV-1a 64 modulo N, the contract of `runtime::partition`
/// (written out here so the test also pins it).
fn replica_of(key: &str, n: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h % n
}

/// The position `flow` leaves an account with, in its smallest unit (0.1): a wash pair's
/// buy and sell of 0.5, a trader's two buys. An order can fill in several parts, so this (and
/// not a count of fills) says when ptrc has all of them.
fn tenths_of(account: &str, owner: &str) -> i64 {
    match TRADERS.iter().position(|t| *t == account) {
        Some(i) => i as i64 + 2 + 1,
        None if account.ends_with("-a") && account != owner => 5,
        None => -5,
    }
}

/// Whether a P&L view shows the position of `tenths` tenths.
fn holds(v: &Value, tenths: i64) -> bool {
    let qty: f64 = v["position_qty"]
        .as_str()
        .and_then(|q| q.parse().ok())
        .unwrap_or(f64::NAN);
    (qty * 10.0 - tenths as f64).abs() < 1e-9
}

fn all_accounts() -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = OWNERS
        .iter()
        .flat_map(|o| accounts_of(o).map(|a| (a, (*o).to_owned())))
        .collect();
    v.extend(TRADERS.iter().map(|t| ((*t).to_owned(), (*t).to_owned())));
    v
}

/// One cluster's processes: core, marketdata replaying `market`, and the given services.
struct Cluster {
    procs: BTreeMap<String, Proc>,
}

impl Cluster {
    fn start(root: &Path, test: &str, nats: &str, market: &Path, services: &[&[&str]]) -> Cluster {
        let env = base_env(root, test, nats, None);
        // The owner map of this test (base_env's file, rewritten before any process reads it).
        let mut yaml = String::from("compliance_scanner:\n  account_owners:\n");
        for (account, owner) in all_accounts() {
            if account != owner {
                yaml.push_str(&format!("    {account}: {owner}\n"));
            }
        }
        std::fs::write(root.join("cluster.yaml"), yaml).unwrap();
        let mut procs = BTreeMap::new();
        let feed = format!("replay:{}", market.display());
        let mut all: Vec<Vec<&str>> = vec![
            vec!["core"],
            vec!["marketdata", "--feed", &feed, "--replay-speed", "max"],
        ];
        all.extend(services.iter().map(|s| s.to_vec()));
        for args in all {
            let name = args.join(" ");
            let dir = root
                .join(name.replace([' ', '/'], "_"))
                .display()
                .to_string();
            let mut full = vec!["run", args[0], "--data-dir", dir.as_str(), "--insecure-dev"];
            full.extend_from_slice(&args[1..]);
            procs.insert(name, Proc::start(&full, &env));
        }
        Cluster { procs }
    }

    fn addr(&self, proc: &str, key: &str) -> SocketAddr {
        self.procs[proc].addr(key)
    }

    fn stop(self) {
        for (_, p) in self.procs.into_iter().rev() {
            p.stop();
        }
    }
}

/// The same flow into each cluster: the whole replay journaled, then a wash pair per owner
/// and two buys per trader.
fn flow(gateway: SocketAddr, market: &Path) {
    wait_for_replay(gateway, market);
    for owner in OWNERS {
        let [a, b] = accounts_of(owner);
        post_order(gateway, &order(&a, "buy", "0.5"));
        post_order(gateway, &order(&b, "sell", "0.5"));
    }
    for (i, t) in TRADERS.iter().enumerate() {
        post_order(gateway, &order(t, "buy", &format!("0.{}", i + 2)));
        post_order(gateway, &order(t, "buy", "0.1"));
    }
}

/// A scanner's alerts, in the fields that do not depend on the wall clock (the key comes from
/// the order and fill ids, which two fresh cores hand out alike).
fn alerts(scanner: SocketAddr) -> BTreeSet<String> {
    let (status, body) = http_get(scanner, "/alerts?limit=1000");
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    v["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            json!({"key": a["key"], "type": a["type"], "subtype": a["subtype"],
                   "owner": a["owner"], "accounts": a["accounts"], "symbol": a["symbol"]})
            .to_string()
        })
        .collect()
}

fn owners_in(set: &BTreeSet<String>) -> BTreeSet<String> {
    set.iter()
        .map(|a| {
            serde_json::from_str::<Value>(a).unwrap()["owner"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

/// ptrc's P&L of `account`, in the fields that do not depend on the wall clock; `None` when
/// it holds no fill of the account.
fn pnl(ptrc: SocketAddr, account: &str) -> Option<Value> {
    let body = json!({"account": account, "method": "FIFO"}).to_string();
    let (status, text) = http(ptrc, "POST", "/pnl/compute", Some(&body));
    assert_eq!(status, 200, "{account}: {text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    let sym = &v["accounts"][0]["symbols"][0];
    (sym["trades"].as_u64() > Some(0)).then(|| {
        json!({
            "trades": sym["trades"],
            "position_qty": sym["position_qty"],
            "realized_pnl": sym["realized_pnl"],
            "mark": sym["mark"],
            "totals_realized": v["accounts"][0]["totals"]["realized_pnl"],
        })
    })
}

#[test]
fn two_replicas_of_the_scanner_and_of_ptrc_give_what_one_gives() {
    let Some(nats) = server("TEST_NATS_URL", "nats://127.0.0.1:4222") else {
        return;
    };
    // The owners must fall on both replicas, or the test shows nothing.
    let sides: BTreeSet<u64> = OWNERS.iter().map(|o| replica_of(o, 2)).collect();
    assert_eq!(sides.len(), 2, "pick owners that hash to both replicas");

    let root = tempfile::tempdir().unwrap();
    let market = market_file(root.path());
    let one_dir = root.path().join("one");
    let two_dir = root.path().join("two");
    std::fs::create_dir_all(&one_dir).unwrap();
    std::fs::create_dir_all(&two_dir).unwrap();

    let one = Cluster::start(
        &one_dir,
        "rep1",
        &nats,
        &market,
        &[&["compliance-scanner"], &["ptrc"]],
    );
    flow(one.addr("core", "gateway"), &market);
    let scanner = one.addr("compliance-scanner", "compliance");
    let owners: BTreeSet<String> = OWNERS.iter().map(|o| (*o).to_owned()).collect();
    let expected = poll("a wash alert per owner from the one scanner", 60, || {
        let got = alerts(scanner);
        (owners_in(&got) == owners).then_some(got)
    });
    assert_eq!(expected.len(), OWNERS.len(), "{expected:?}");
    let ptrc = one.addr("ptrc", "ptrc");
    let expected_pnl: BTreeMap<String, Value> = all_accounts()
        .into_iter()
        .map(|(account, owner)| {
            // Every fill of the flow, not the first one to arrive: a trader's fills can reach
            // ptrc in several batches.
            let tenths = tenths_of(&account, &owner);
            let v = poll(
                &format!("{account}'s position of {tenths}/10 in ptrc"),
                60,
                || pnl(ptrc, &account).filter(|v| holds(v, tenths)),
            );
            (account, v)
        })
        .collect();
    one.stop();

    let two = Cluster::start(
        &two_dir,
        "rep2",
        &nats,
        &market,
        &[
            &["compliance-scanner", "--partition", "0/2"],
            &["compliance-scanner", "--partition", "1/2"],
            &["ptrc", "--partition", "0/2"],
            &["ptrc", "--partition", "1/2"],
        ],
    );
    flow(two.addr("core", "gateway"), &market);
    let scanners = [
        two.addr("compliance-scanner --partition 0/2", "compliance"),
        two.addr("compliance-scanner --partition 1/2", "compliance"),
    ];
    let (a0, a1) = poll("the replicas' alerts", 60, || {
        let (a0, a1) = (alerts(scanners[0]), alerts(scanners[1]));
        let both: BTreeSet<String> = owners_in(&a0).union(&owners_in(&a1)).cloned().collect();
        (both == owners).then_some((a0, a1))
    });
    assert!(a0.is_disjoint(&a1), "replicas share alerts: {a0:?} {a1:?}");
    let union: BTreeSet<String> = a0.union(&a1).cloned().collect();
    assert_eq!(
        union, expected,
        "two replicas raise what one scanner raises"
    );
    for (i, got) in [&a0, &a1].into_iter().enumerate() {
        let owners = owners_in(got);
        assert!(!owners.is_empty(), "replica {i}/2 raised nothing");
        for o in owners {
            assert_eq!(replica_of(&o, 2), i as u64, "{o}'s alert on replica {i}/2");
        }
    }

    // P&L: the replica owning the account's owner serves what the one ptrc served; the other
    // holds none of its fills.
    let ptrcs = [
        two.addr("ptrc --partition 0/2", "ptrc"),
        two.addr("ptrc --partition 1/2", "ptrc"),
    ];
    for (account, owner) in all_accounts() {
        let home = replica_of(&owner, 2) as usize;
        let tenths = tenths_of(&account, &owner);
        let got = poll(
            &format!("{account}'s position of {tenths}/10 in ptrc {home}/2"),
            60,
            || pnl(ptrcs[home], &account).filter(|v| holds(v, tenths)),
        );
        assert_eq!(got, expected_pnl[&account], "{account} on ptrc {home}/2");
        assert_eq!(
            pnl(ptrcs[1 - home], &account),
            None,
            "{account} is not on ptrc {}/2",
            1 - home
        );
    }
    // Nothing more arrived on either scanner meanwhile (a late duplicate would show here).
    assert_eq!((alerts(scanners[0]), alerts(scanners[1])), (a0, a1));
    two.stop();
}

#[test]
fn only_the_scanner_and_ptrc_take_a_partition() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().display().to_string();
    for (service, partition, says) in [
        ("feature-pipeline", "0/2", "watermark"),
        (
            "execution-quality",
            "0/2",
            "only compliance-scanner and ptrc",
        ),
        ("ptrc", "2/2", "0 <= i < N"),
        ("ptrc", "one", "i/N"),
    ] {
        let out = common::bin()
            .args(["run", service, "--data-dir", &dir, "--partition", partition])
            .env("RUST_LOG", "error")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "{service} {partition}: {text}");
        assert!(text.contains(says), "{service} {partition}: {text}");
    }
}
