//! B1 WASH_TRADE: self-match (both legs of one print ours) and round trip through the market.
//!
//! Self-matches alert at the second leg of the print. Round trips are paired only among fills
//! not used in a self-match; since both legs of a print carry the same timestamp, the pairing
//! of the fills stamped `t` runs when time moves past `t` (the next record with a later
//! timestamp, `advance_to` or `finish`), by which point every self-match at `t` is known.

use std::collections::hash_map::Entry;
use std::sync::Arc;

use model::{Decimal, Side, Timestamp};
use serde::{Deserialize, Serialize};

use crate::alert::{Alert, Evidence, Rule, Severity, WashEvidence, make_key};
use crate::params::ms;
use crate::scanner::{Fl, Scanner, accounts, ns_to_ms, ratio};

#[derive(Serialize, Deserialize)]
pub(crate) struct Leg {
    pub fl: Arc<Fl>,
    pub grp: u32,
    pub matched: bool,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct Pending {
    pub fl: Arc<Fl>,
    pub grp: u32,
    pub sym: u32,
    pub matched: bool,
}

fn bps_diff(a: Decimal, b: Decimal) -> Decimal {
    let mid = (a + b) / Decimal::TWO;
    ((a - b).abs() * Decimal::from(10_000))
        .checked_div(mid)
        .unwrap_or(Decimal::MAX)
}

fn qty_diff(a: Decimal, b: Decimal) -> Decimal {
    (a - b).abs().checked_div(a.max(b)).unwrap_or(Decimal::MAX)
}

/// `diff(a, b) <= tol` for a tolerance >= 0 (checked with the parameters), without the
/// division when `a == b != 0` (both differences are then exactly 0).
fn within(a: Decimal, b: Decimal, tol: Decimal, diff: fn(Decimal, Decimal) -> Decimal) -> bool {
    if a == b && !a.is_zero() && !tol.is_sign_negative() {
        return true;
    }
    diff(a, b) <= tol
}

impl Scanner {
    pub(crate) fn wash_on_fill(&mut self, fl: &Arc<Fl>, grp: u32, sym: u32, out: &mut Vec<Alert>) {
        let lo = self.now.saturating_sub(ms(self.c.p.wash_window_ms));
        while self.prints_q.front().is_some_and(|(t, _, _)| *t < lo) {
            if let Some((_, s, tid)) = self.prints_q.pop_front() {
                self.prints.remove(&(s, tid));
            }
        }
        let mut matched_with: Option<Arc<Fl>> = None;
        if let Some(tid) = &fl.trade_id {
            let legs = match self.prints.entry((sym, tid.clone())) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(e) => {
                    self.prints_q.push_back((fl.ts, sym, tid.clone()));
                    e.insert(Vec::new())
                }
            };
            if let Some(leg) = legs
                .iter_mut()
                .find(|l| !l.matched && l.grp == grp && l.fl.side == fl.side.opposite())
            {
                leg.matched = true;
                matched_with = Some(leg.fl.clone());
            }
            legs.push(Leg {
                fl: fl.clone(),
                grp,
                matched: matched_with.is_some(),
            });
        }
        if let Some(other) = &matched_with {
            for p in self.rt_pending.iter_mut().filter(|p| p.fl.seq == other.seq) {
                p.matched = true;
            }
            let (b, x) = if fl.side == Side::Buy {
                (fl, other)
            } else {
                (other, fl)
            };
            let subtype = if b.acct == x.acct {
                "same_account"
            } else {
                "cross_account_same_owner"
            };
            let sev = if subtype == "same_account" {
                Severity::Medium
            } else {
                Severity::High
            };
            out.push(self.wash_alert(subtype, sev, b, x, grp, sym, fl.ts));
        }
        self.rt_pending.push(Pending {
            fl: fl.clone(),
            grp,
            sym,
            matched: matched_with.is_some(),
        });
    }

    /// Greedy round-trip pairing of the pending fills (all older than the current time).
    pub(crate) fn wash_flush_round_trips(&mut self, out: &mut Vec<Alert>) {
        let pending = std::mem::take(&mut self.rt_pending);
        let window = ms(self.c.p.wash_window_ms);
        let price_tol = self.c.p.wash_price_tol_bps;
        let qty_tol = self.c.p.wash_qty_tol_ratio;
        for p in pending.into_iter().filter(|p| !p.matched) {
            let f = p.fl;
            let g = self.gs.entry((p.grp, p.sym)).or_default();
            while g
                .rt_unpaired
                .front()
                .is_some_and(|u| u.ts < f.ts.saturating_sub(window))
            {
                g.rt_unpaired.pop_front();
            }
            let hit = g.rt_unpaired.iter().position(|u| {
                u.side == f.side.opposite()
                    && !(u.trade_id.is_some() && u.trade_id == f.trade_id)
                    && within(u.price, f.price, price_tol, bps_diff)
                    && within(u.qty, f.qty, qty_tol, qty_diff)
            });
            match hit.and_then(|i| g.rt_unpaired.remove(i)) {
                Some(u) => {
                    let (b, x) = if f.side == Side::Buy {
                        (&f, &u)
                    } else {
                        (&u, &f)
                    };
                    out.push(self.wash_alert(
                        "round_trip",
                        Severity::Low,
                        b,
                        x,
                        p.grp,
                        p.sym,
                        f.ts,
                    ));
                }
                None => g.rt_unpaired.push_back(f),
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn wash_alert(
        &self,
        subtype: &str,
        severity: Severity,
        b: &Fl,
        x: &Fl,
        grp: u32,
        sym: u32,
        ts: i64,
    ) -> Alert {
        let bkey = format!("{}\u{1f}{}", self.name(b.acct), b.fill_id);
        let xkey = format!("{}\u{1f}{}", self.name(x.acct), x.fill_id);
        let mut trade_ids: Vec<String> = [&b.trade_id, &x.trade_id]
            .into_iter()
            .flatten()
            .map(|t| t.to_string())
            .collect();
        trade_ids.dedup();
        let key = if subtype == "round_trip" {
            make_key(Rule::WashTrade, &[subtype, self.name(sym), &bkey, &xkey])
        } else {
            make_key(
                Rule::WashTrade,
                &[
                    "self_match",
                    self.name(sym),
                    &trade_ids.join(","),
                    &bkey,
                    &xkey,
                ],
            )
        };
        Alert {
            rule: Rule::WashTrade,
            subtype: subtype.to_string(),
            owner: self.name(b.owner).to_string(),
            accounts: accounts([self.name(b.acct).to_string(), self.name(x.acct).to_string()]),
            symbol: self.name(sym).to_string(),
            ts: Timestamp::from_nanos(ts),
            severity,
            key,
            evidence: Evidence::Wash(WashEvidence {
                trade_ids,
                buy: self.fill_ref(b),
                sell: self.fill_ref(x),
                buy_owner: self.name(b.owner).to_string(),
                sell_owner: self.name(x.owner).to_string(),
                owner_group: self.group_members(grp),
                delta_ms: ns_to_ms((b.ts - x.ts).abs()),
                price_diff_bps: bps_diff(b.price, x.price).round_dp(6),
                qty_diff_ratio: ratio((b.qty - x.qty).abs(), b.qty.max(x.qty)),
                net_position_change: b.qty - x.qty,
                order_to_trade_ratio: self.otr(grp),
            }),
        }
    }
}
