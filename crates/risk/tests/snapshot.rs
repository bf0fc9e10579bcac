//! Snapshots of the risk engine: serialize -> deserialize -> keep deciding == keep deciding.

mod common;

use common::*;
use model::{Decimal, Event, OrderId, OrderType, Side, Timestamp};
use proptest::prelude::*;
use risk::{
    LimitSet, LimitsChange, RejectCode, RiskContext, RiskEngine, RiskLimits, SNAPSHOT_VERSION,
    Scope, Setting,
};

const LIMITS_YAML: &str = r#"
defaults:
  max_order_quantity: 8
  price_collar_pct: 5
  max_open_orders: 3
  max_orders_per_sec: 3
  daily_loss_limit: 500
symbols:
  LUNAUSDT:
    restricted: true
account_symbols:
  acct1:
    ETHUSDT:
      max_position: 4
"#;

fn limits() -> RiskLimits {
    serde_yaml_ng::from_str(LIMITS_YAML).unwrap()
}

#[derive(Debug, Clone)]
enum Op {
    /// account, symbol, side, type, quantity, price offset (%), gap (ms), daily P&L, open orders
    Check(u32, u8, bool, u8, u32, i32, u32, i32, u8),
    SetRate(u32, u32),
    EngageKill(u32),
    ResetKill(u32),
    /// A journaled `daily_loss_limit` rejection (replayed on restart).
    ReplayLossReject(u32),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (0u32..4, 0u8..3, any::<bool>(), 0u8..4, 1u32..12, -8i32..8, 0u32..1500, -700i32..100, 0u8..5)
            .prop_map(|(a, s, b, t, q, p, g, pnl, open)| Op::Check(a, s, b, t, q, p, g, pnl, open)),
        1 => (0u32..4, 1u32..6).prop_map(|(a, n)| Op::SetRate(a, n)),
        1 => (0u32..4).prop_map(Op::EngageKill),
        1 => (0u32..4).prop_map(Op::ResetKill),
        1 => (0u32..4).prop_map(Op::ReplayLossReject),
    ]
}

/// What one step decided, for comparison.
type Outcome = Result<Option<Event>, String>;

struct Driver {
    t: i64,
    next_id: u64,
}

impl Driver {
    fn step(&mut self, engine: &mut RiskEngine, op: &Op) -> Outcome {
        let at = Timestamp::from_nanos(self.t);
        match *op {
            Op::Check(a, s, buy, ty, q, off, gap, pnl, open) => {
                self.t += i64::from(gap) * 1_000_000;
                self.next_id += 1;
                let mid = Decimal::from(100);
                let price = mid + Decimal::from(off);
                let (t, price, stop) = match ty {
                    0 => (OrderType::Market, None, None),
                    1 => (OrderType::Limit, Some(price), None),
                    2 => (OrderType::Stop, None, Some(price)),
                    _ => (OrderType::StopLimit, Some(price), Some(mid)),
                };
                let side = if buy { Side::Buy } else { Side::Sell };
                let symbol = ["BTCUSDT", "ETHUSDT", "LUNAUSDT"][s as usize];
                let o = order(
                    self.next_id,
                    acct(a),
                    symbol,
                    side,
                    t,
                    Decimal::from(q),
                    price,
                    stop,
                    self.t,
                );
                let ctx = RiskContext {
                    mid: Some(mid),
                    daily_pnl: Decimal::from(pnl),
                    open_orders: open as usize,
                    ..RiskContext::default()
                };
                engine
                    .check(&o, &ctx)
                    .map(|()| None)
                    .map_err(|r| r.to_string())
            }
            Op::SetRate(a, n) => {
                let set = LimitSet {
                    max_orders_per_sec: Setting::Set(n),
                    ..LimitSet::default()
                };
                let change = LimitsChange::SetLimits {
                    scope: Scope {
                        account: Some(acct(a)),
                        symbol: None,
                    },
                    limits: set,
                };
                engine
                    .update_limits(change, "admin", at)
                    .map(Some)
                    .map_err(|e| e.to_string())
            }
            Op::EngageKill(a) => engine
                .update_limits(
                    LimitsChange::EngageKillSwitch {
                        account: acct(a),
                        reason: "test".into(),
                    },
                    "admin",
                    at,
                )
                .map(Some)
                .map_err(|e| e.to_string()),
            Op::ResetKill(a) => engine
                .reset_kill_switch(&acct(a), "admin", at)
                .map(Some)
                .map_err(|e| e.to_string()),
            Op::ReplayLossReject(a) => {
                self.next_id += 1;
                engine
                    .apply(&Event::OrderRejected {
                        order_id: OrderId(self.next_id),
                        account: acct(a),
                        code: RejectCode::DailyLossLimit.as_str().into(),
                        message: "daily P&L -600 reached daily_loss_limit 500".into(),
                        ts: at,
                    })
                    .map(|()| None)
                    .map_err(|e| e.to_string())
            }
        }
    }
}

fn round_trip(e: &RiskEngine) -> RiskEngine {
    serde_json::from_str(&serde_json::to_string(e).unwrap()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn a_restored_snapshot_decides_like_the_original(
        ops in prop::collection::vec(op(), 1..120),
        cut in any::<prop::sample::Index>(),
    ) {
        let cut = cut.index(ops.len() + 1);
        let mut original = RiskEngine::new(limits()).unwrap();
        let mut driver = Driver { t: 1_000_000_000, next_id: 0 };
        for op in &ops[..cut] {
            let _ = driver.step(&mut original, op);
        }
        let mut restored = round_trip(&original);
        prop_assert_eq!(&restored, &original);
        let mut other = Driver { t: driver.t, next_id: driver.next_id };
        for op in &ops[cut..] {
            let a = driver.step(&mut original, op);
            let b = other.step(&mut restored, op);
            prop_assert_eq!(a, b);
        }
        prop_assert_eq!(&restored, &original);
        prop_assert_eq!(restored.footprint(), original.footprint());
    }
}

#[test]
fn a_snapshot_carries_the_rate_window_kill_switches_and_run_time_limits() {
    let mut e = RiskEngine::new(limits()).unwrap();
    let mut d = Driver {
        t: 5_000_000_000,
        next_id: 0,
    };
    // Three orders within a second fill acct0's window (max 3 per second).
    for _ in 0..3 {
        let out = d.step(&mut e, &Op::Check(0, 0, true, 1, 1, 0, 100, 0, 0));
        assert_eq!(out, Ok(None));
    }
    d.step(&mut e, &Op::EngageKill(2)).unwrap();
    d.step(&mut e, &Op::SetRate(1, 1)).unwrap();
    let json = serde_json::to_value(&e).unwrap();
    assert_eq!(json["version"], SNAPSHOT_VERSION);
    assert_eq!(
        json["accounts"]["acct0"]["window"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let mut restored: RiskEngine = serde_json::from_value(json).unwrap();
    assert_eq!(restored, e);

    // The fourth order within the same second is refused by both, acct2 is still killed, and
    // acct1's run-time limit of one order per second holds.
    let mut d2 = Driver { t: d.t, ..d };
    for op in [
        Op::Check(0, 0, true, 1, 1, 0, 100, 0, 0),
        Op::Check(2, 0, true, 1, 1, 0, 0, 0, 0),
        Op::Check(1, 0, true, 1, 1, 0, 0, 0, 0),
        Op::Check(1, 0, true, 1, 1, 0, 0, 0, 0),
    ] {
        let want = match op {
            Op::Check(0, ..) => Some("order_rate"),
            Op::Check(2, ..) => Some("kill_switch"),
            _ => None,
        };
        let (a, b) = (d.step(&mut e, &op), d2.step(&mut restored, &op));
        assert_eq!(a, b);
        if let Some(code) = want {
            assert!(a.unwrap_err().starts_with(code));
        }
    }
    let refused = d.step(&mut e, &Op::Check(1, 0, true, 1, 1, 0, 0, 0, 0));
    assert!(refused.unwrap_err().starts_with("order_rate"));
}

#[test]
fn a_snapshot_of_another_version_is_refused() {
    let mut json = serde_json::to_value(RiskEngine::new(limits()).unwrap()).unwrap();
    json["version"] = serde_json::json!(SNAPSHOT_VERSION + 1);
    let err = serde_json::from_value::<RiskEngine>(json).unwrap_err();
    assert!(err.to_string().contains("version"), "{err}");
    // Limits are validated on restore like on start.
    let mut json = serde_json::to_value(RiskEngine::new(limits()).unwrap()).unwrap();
    json["limits"]["defaults"]["max_order_quantity"] = serde_json::json!("-1");
    assert!(serde_json::from_value::<RiskEngine>(json).is_err());
}
