//! B5 MOMENTUM_IGNITION: a burst of same-side taker fills, a price move measured `mi_settle_ms`
//! after the last burst fill, then an opposite-side exit at a better VWAP.
//!
//! The burst is known once its window has passed and the move once the settle time has passed
//! (both time-driven: the first record after the deadline, `advance_to` or `finish`). The alert
//! is raised at the exit fill that completes the exit, or at the settle deadline when the exit
//! was already complete by then.

use std::sync::Arc;

use model::{Decimal, Side, Timestamp};
use serde::{Deserialize, Serialize};

use crate::alert::{Alert, Evidence, MiEvidence, Rule, Severity, make_key};
use crate::params::ms;
use crate::scanner::{Fl, Scanner, Task, accounts, ns_to_ms, side_ix};

#[derive(Serialize, Deserialize)]
pub(crate) struct Burst {
    pub t0: i64,
    pub side: Side,
    pub fills: Vec<Arc<Fl>>,
    pub mid_pre: Option<Decimal>,
    pub exits: Vec<Arc<Fl>>,
    pub settled: Option<(Decimal, Decimal)>,
    pub alerted: bool,
}

#[derive(Default, Serialize, Deserialize)]
pub(crate) struct MiState {
    pub open: Option<Burst>,
    pub pending: Vec<Burst>,
}

impl MiState {
    pub(crate) fn is_empty(&self) -> bool {
        self.open.is_none() && self.pending.is_empty()
    }
}

fn vwap(fills: &[&Fl]) -> Option<Decimal> {
    let q: Decimal = fills.iter().map(|f| f.qty).sum();
    let n: Decimal = fills.iter().map(|f| f.qty * f.price).sum();
    n.checked_div(q)
}

impl Scanner {
    /// Mid of the last quote of `sym` with `ts < t` (strict) or `ts <= t`.
    fn mid_at(&self, sym: u32, t: i64, strict: bool) -> Option<Decimal> {
        let h = &self.quotes.get(&sym)?.hist;
        h.iter()
            .rev()
            .find(|(ts, _)| if strict { *ts < t } else { *ts <= t })
            .and_then(|(_, m)| *m)
    }

    pub(crate) fn mi_on_fill(&mut self, f: &Arc<Fl>, grp: u32, sym: u32, out: &mut Vec<Alert>) {
        let window = ms(self.c.p.mi_burst_window_ms);
        if f.taker {
            let key = (grp, sym, side_ix(f.side));
            let mid_pre = self.mid_at(sym, f.ts, true);
            let st = self.mi.entry(key).or_default();
            let joined = match &mut st.open {
                Some(b) if f.ts <= b.t0.saturating_add(window) => {
                    b.fills.push(f.clone());
                    true
                }
                _ => false,
            };
            if !joined {
                // A still-open burst past its window was closed by its deadline before this
                // record, so there is none: start a new window at this fill.
                st.open = Some(Burst {
                    t0: f.ts,
                    side: f.side,
                    fills: vec![f.clone()],
                    mid_pre,
                    exits: Vec::new(),
                    settled: None,
                    alerted: false,
                });
                self.schedule(f.ts.saturating_add(window), Task::MiClose { key, t0: f.ts });
            }
        }
        let okey = (grp, sym, side_ix(f.side.opposite()));
        let Some(st) = self.mi.get_mut(&okey) else {
            return;
        };
        if let Some(b) = &mut st.open {
            b.exits.push(f.clone());
        }
        for b in &mut st.pending {
            b.exits.push(f.clone());
        }
        let ready: Vec<usize> = (0..st.pending.len())
            .filter(|&i| st.pending[i].settled.is_some() && !st.pending[i].alerted)
            .collect();
        for i in ready {
            if let Some(a) = self.mi_evaluate(okey, i, f.ts) {
                out.push(a);
            }
        }
    }

    pub(crate) fn mi_close(&mut self, key: (u32, u32, usize), t0: i64) {
        let min = self.c.p.mi_min_burst_fills;
        let settle = ms(self.c.p.mi_settle_ms);
        let Some(st) = self.mi.get_mut(&key) else {
            return;
        };
        if st.open.as_ref().is_none_or(|b| b.t0 != t0) {
            return;
        }
        let Some(b) = st.open.take() else { return };
        if b.fills.len() < min || b.mid_pre.is_none() {
            return;
        }
        let last = b.fills.last().map_or(t0, |f| f.ts);
        st.pending.push(b);
        self.schedule(last.saturating_add(settle), Task::MiSettle { key, t0 });
    }

    pub(crate) fn mi_settle(
        &mut self,
        key: (u32, u32, usize),
        t0: i64,
        at: i64,
        out: &mut Vec<Alert>,
    ) {
        let Some(i) = self
            .mi
            .get(&key)
            .and_then(|st| st.pending.iter().position(|b| b.t0 == t0))
        else {
            return;
        };
        let Some(st) = self.mi.get(&key) else { return };
        let b = &st.pending[i];
        let mid_post = self.mid_at(key.1, at, false);
        let mv = match (b.mid_pre, mid_post) {
            (Some(pre), Some(post)) if pre > Decimal::ZERO => Some((
                post,
                Decimal::from(b.side.sign()) * (post - pre) / pre * Decimal::from(10_000),
            )),
            _ => None,
        };
        let last = b.fills.last().map_or(t0, |f| f.ts);
        let min_move = self.c.p.mi_min_move_bps;
        let exit_window = ms(self.c.p.mi_exit_window_ms);
        let Some(st) = self.mi.get_mut(&key) else {
            return;
        };
        match mv {
            Some((post, m)) if m >= min_move => {
                st.pending[i].settled = Some((post, m));
                self.schedule(last.saturating_add(exit_window), Task::MiExpire { key, t0 });
                if let Some(a) = self.mi_evaluate(key, i, at) {
                    out.push(a);
                }
            }
            _ => {
                st.pending.remove(i);
            }
        }
    }

    pub(crate) fn mi_expire(&mut self, key: (u32, u32, usize), t0: i64) {
        if let Some(st) = self.mi.get_mut(&key) {
            st.pending.retain(|b| b.t0 != t0);
        }
    }

    fn mi_evaluate(&mut self, key: (u32, u32, usize), i: usize, now: i64) -> Option<Alert> {
        let p = &self.c.p;
        let st = self.mi.get(&key)?;
        let b = st.pending.get(i)?;
        let (mid_post, mv) = b.settled?;
        let mid_pre = b.mid_pre?;
        let last = b.fills.last()?.ts;
        let hi = last.saturating_add(ms(p.mi_exit_window_ms));
        let burst: Vec<&Fl> = b.fills.iter().map(|f| &**f).collect();
        let exits: Vec<&Fl> = b
            .exits
            .iter()
            .map(|f| &**f)
            .filter(|f| f.ts >= last && f.ts <= hi && f.ts <= now)
            .collect();
        let bq: Decimal = burst.iter().map(|f| f.qty).sum();
        let eq: Decimal = exits.iter().map(|f| f.qty).sum();
        if exits.is_empty() || bq <= Decimal::ZERO || eq < p.mi_min_exit_ratio * bq {
            return None;
        }
        let (bv, ev) = (vwap(&burst)?, vwap(&exits)?);
        let sign = Decimal::from(b.side.sign());
        if sign * (ev - bv) <= Decimal::ZERO {
            return None;
        }
        let severity = if mv >= Decimal::TWO * p.mi_min_move_bps && eq >= bq {
            Severity::High
        } else {
            Severity::Medium
        };
        let first = burst.first()?;
        let first_key = format!("{}\u{1f}{}", self.name(first.acct), first.fill_id);
        let ids = |v: &[&Fl]| {
            let mut o: Vec<String> = Vec::new();
            for f in v {
                let id = self.order_id(f.kid);
                if !o.iter().any(|x| x == id) {
                    o.push(id.to_string());
                }
            }
            o
        };
        let alert = Alert {
            rule: Rule::MomentumIgnition,
            subtype: match b.side {
                Side::Buy => "buy_burst",
                Side::Sell => "sell_burst",
            }
            .to_string(),
            owner: self.name(first.owner).to_string(),
            accounts: accounts(
                burst
                    .iter()
                    .chain(exits.iter())
                    .map(|f| self.name(f.acct).to_string()),
            ),
            symbol: self.name(key.1).to_string(),
            ts: Timestamp::from_nanos(now),
            severity,
            key: make_key(Rule::MomentumIgnition, &[self.name(key.1), &first_key]),
            evidence: Evidence::MomentumIgnition(MiEvidence {
                side: b.side,
                burst_order_ids: ids(&burst),
                burst_fill_ids: burst.iter().map(|f| f.fill_id.to_string()).collect(),
                burst_fills: burst.len(),
                burst_qty: bq,
                burst_start: Timestamp::from_nanos(b.t0),
                burst_end: Timestamp::from_nanos(last),
                burst_duration_ms: ns_to_ms(last - b.t0),
                burst_vwap: bv.round_dp(6),
                mid_pre,
                mid_post,
                move_bps: mv.round_dp(6),
                exit_order_ids: ids(&exits),
                exit_fill_ids: exits.iter().map(|f| f.fill_id.to_string()).collect(),
                exit_qty: eq,
                exit_vwap: ev.round_dp(6),
                gross_pnl: (sign * (ev - bv) * eq.min(bq)).round_dp(6),
                cancel_ratio: self.cancel_ratio(key.0),
            }),
        };
        if let Some(st) = self.mi.get_mut(&key)
            && let Some(b) = st.pending.get_mut(i)
        {
            b.alerted = true;
        }
        Some(alert)
    }
}
