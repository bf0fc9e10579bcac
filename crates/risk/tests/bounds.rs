//! Memory bounds: the per-account state follows only recent activity and engaged kill switches,
//! and forgetting idle accounts never changes a decision.

mod common;

use std::collections::HashMap;

use common::*;
use model::{Decimal, OrderType, Side};
use proptest::prelude::*;
use risk::{LimitSet, RejectCode, RiskContext, RiskEngine, RiskLimits, Setting};

const SECOND: i64 = 1_000_000_000;

/// Only the order-rate limit (and the daily loss limit when given) is on, so every refusal
/// comes from them.
fn rate_only(max_per_sec: u32, daily_loss: Option<i64>) -> RiskEngine {
    let defaults = LimitSet {
        max_order_quantity: Setting::Off,
        max_order_notional: Setting::Off,
        price_collar_pct: Setting::Off,
        max_position: Setting::Off,
        max_gross_exposure: Setting::Off,
        max_open_orders: Setting::Off,
        max_orders_per_sec: Setting::Set(max_per_sec),
        daily_loss_limit: daily_loss.map_or(Setting::Off, |l| Setting::Set(l.into())),
        restricted: Setting::Inherit,
    };
    RiskEngine::new(RiskLimits {
        defaults,
        ..RiskLimits::default()
    })
    .unwrap()
}

fn ctx(daily_pnl: i64) -> RiskContext<'static> {
    RiskContext {
        mid: Some(Decimal::from(100)),
        daily_pnl: daily_pnl.into(),
        ..RiskContext::default()
    }
}

fn buy(id: u64, account: u32, at: i64) -> model::Order {
    order(
        id,
        acct(account),
        "BTCUSDT",
        Side::Buy,
        OrderType::Limit,
        Decimal::ONE,
        Some(Decimal::from(100)),
        None,
        at,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Rate decisions equal a model that keeps every admitted order forever, and the engine
    /// holds only accounts with an admitted order in the last two seconds.
    #[test]
    fn forgetting_idle_accounts_changes_no_rate_decision(
        steps in prop::collection::vec((0u32..40, 0i64..2_500), 1..400),
        max in 1u32..4,
    ) {
        let mut engine = rate_only(max, None);
        let mut admitted: HashMap<u32, Vec<i64>> = HashMap::new();
        let mut t = SECOND;
        for (i, (account, gap_ms)) in steps.into_iter().enumerate() {
            t += gap_ms * 1_000_000;
            let recent = admitted
                .get(&account)
                .map_or(0, |v| v.iter().filter(|&&a| a > t - SECOND).count());
            let want_ok = recent < max as usize;
            let got = engine.check(&buy(i as u64 + 1, account, t), &ctx(0));
            prop_assert_eq!(got.is_ok(), want_ok, "order {} of acct{} at {}", i, account, t);
            if let Err(r) = got {
                prop_assert_eq!(r.code, RejectCode::OrderRate);
            } else {
                admitted.entry(account).or_default().push(t);
            }
            let active = admitted
                .values()
                .filter(|v| v.iter().any(|&a| a > t - 2 * SECOND))
                .count();
            prop_assert!(engine.footprint().accounts <= active);
        }
    }
}

#[test]
fn a_long_stream_of_accounts_over_many_days_keeps_risk_state_bounded() {
    let mut engine = rate_only(5, Some(500));
    let mut t = SECOND;
    let mut max_accounts = 0;
    let mut killed = 0;
    let orders: u64 = 120_000;
    for i in 0..orders {
        // Each account sends 20 orders, 0.5 s apart, then never trades again: 6 000 accounts
        // over the run, 2 orders a second each (the last of every 500th account is a loss). Every 10 000th order comes with a loss beyond
        // the daily limit, which engages that account's kill switch for good.
        let account = (i / 20) as u32;
        t += SECOND / 2;
        // 20 simulated days: each day's orders start at its midnight.
        if i % 6_000 == 0 {
            t = (t / (86_400 * SECOND) + 1) * 86_400 * SECOND;
        }
        let loss = i % 10_000 == 9_999;
        let out = engine.check(&buy(i + 1, account, t), &ctx(if loss { -600 } else { 0 }));
        if loss {
            assert_eq!(out.unwrap_err().code, RejectCode::DailyLossLimit);
            killed += 1;
        } else {
            assert!(out.is_ok(), "{out:?}");
        }
        let f = engine.footprint();
        max_accounts = max_accounts.max(f.accounts);
        assert!(f.accounts <= 3 + killed, "{f:?}");
        assert!(f.rate_window_entries <= 3 * 5, "{f:?}");
        assert_eq!(f.kill_switches, killed);
    }
    assert_eq!(killed, 12);
    assert!(max_accounts >= 2, "accounts were tracked: {max_accounts}");
    // Killed accounts are remembered however long ago they were killed.
    assert!(engine.kill_switch(&acct(499)).is_some());
}
