//! B4 MARKING_THE_CLOSE. The pattern needs the whole window `[close - window, close]`, so the
//! alert is raised when time passes the close (the first record after it, `advance_to`, or
//! `finish`), with `ts` = the close. This is the one rule that inherently waits for a later
//! event.

use std::collections::BTreeMap;
use std::sync::Arc;

use interchange::Record;
use model::{Decimal, Timestamp};
use serde::{Deserialize, Serialize};

use crate::alert::{Alert, Evidence, MtcEvidence, Rule, Severity, make_key};
use crate::params::ms;
use crate::scanner::{Fl, Scanner, Task, accounts, ratio};

#[derive(Default, Serialize, Deserialize)]
pub(crate) struct Agg {
    pub owner: u32,
    /// Sorted, without duplicates (serialized as the `BTreeSet` it replaces).
    pub accts: Vec<u32>,
    pub buy: Decimal,
    pub sell: Decimal,
    pub taker: Decimal,
    pub fill_ids: Vec<Arc<str>>,
    pub cancels: usize,
    pub cancel_qty: Decimal,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct MtcSession {
    pub close: i64,
    pub ws: i64,
    pub ref_px: Option<Decimal>,
    pub ref_captured: bool,
    pub close_px: Option<Decimal>,
    pub tape: Decimal,
    pub owners: BTreeMap<u32, Agg>,
}

fn insert_sorted(v: &mut Vec<u32>, x: u32) {
    if let Err(i) = v.binary_search(&x) {
        v.insert(i, x);
    }
}

impl MtcSession {
    fn in_window(&self, ts: i64) -> bool {
        ts >= self.ws && ts <= self.close
    }
}

impl Scanner {
    pub(crate) fn mtc_ensure_session(&mut self, sym: u32, ts: i64) {
        if self.mtc.contains_key(&sym) {
            return;
        }
        let Some(spec) = self.mtc_spec_for(sym) else {
            return;
        };
        let Some(close) = spec.next_at_or_after(ts) else {
            return;
        };
        let ws = close.saturating_sub(ms(self.c.p.mtc_window_ms));
        self.mtc.insert(
            sym,
            MtcSession {
                close,
                ws,
                ref_px: None,
                ref_captured: false,
                close_px: None,
                tape: Decimal::ZERO,
                owners: BTreeMap::new(),
            },
        );
        self.schedule(close, Task::MtcClose { sym, close });
    }

    pub(crate) fn mtc_on_trade(&mut self, r: &Record, sym: u32, ts: i64) {
        let Some(px) = r.price else { return };
        let last = self.last_trade_px.insert(sym, px);
        if let Some(s) = self.mtc.get_mut(&sym)
            && s.in_window(ts)
        {
            if !s.ref_captured {
                s.ref_captured = true;
                s.ref_px = last;
            }
            s.close_px = Some(px);
            s.tape += r.qty.unwrap_or_default();
        }
    }

    pub(crate) fn mtc_on_fill(&mut self, f: &Fl, grp: u32, sym: u32) {
        let Some(s) = self.mtc.get_mut(&sym) else {
            return;
        };
        if !s.in_window(f.ts) {
            return;
        }
        let a = s.owners.entry(grp).or_insert_with(|| Agg {
            owner: f.owner,
            ..Agg::default()
        });
        insert_sorted(&mut a.accts, f.acct);
        match f.side {
            model::Side::Buy => a.buy += f.qty,
            model::Side::Sell => a.sell += f.qty,
        }
        if f.taker {
            a.taker += f.qty;
        }
        a.fill_ids.push(f.fill_id.clone());
    }

    pub(crate) fn mtc_on_cancel(
        &mut self,
        acct: u32,
        owner: u32,
        grp: u32,
        sym: u32,
        ts: i64,
        qty: Decimal,
    ) {
        let Some(s) = self.mtc.get_mut(&sym) else {
            return;
        };
        if !s.in_window(ts) {
            return;
        }
        let a = s.owners.entry(grp).or_insert_with(|| Agg {
            owner,
            ..Agg::default()
        });
        insert_sorted(&mut a.accts, acct);
        a.cancels += 1;
        a.cancel_qty += qty;
    }

    pub(crate) fn mtc_finalize(&mut self, sym: u32, close: i64, out: &mut Vec<Alert>) {
        if self.mtc.get(&sym).is_none_or(|s| s.close != close) {
            return;
        }
        let Some(s) = self.mtc.remove(&sym) else {
            return;
        };
        let (Some(ref_px), Some(close_px)) = (s.ref_px, s.close_px) else {
            return;
        };
        if s.tape <= Decimal::ZERO || ref_px <= Decimal::ZERO {
            return;
        }
        let p = &self.c.p;
        let bps = Decimal::from(10_000);
        for (grp, a) in &s.owners {
            let vol = a.buy + a.sell;
            if vol <= Decimal::ZERO {
                continue;
            }
            let share = vol / s.tape;
            let net = (a.buy - a.sell) / vol;
            let sign = if net.is_sign_negative() {
                -Decimal::ONE
            } else {
                Decimal::ONE
            };
            let mv = sign * (close_px - ref_px) / ref_px * bps;
            let taker = a.taker / vol;
            if share < p.mtc_min_volume_share
                || net.abs() < p.mtc_min_net_ratio
                || mv < p.mtc_min_move_bps
                || taker < p.mtc_min_aggressive_share
            {
                continue;
            }
            let severity = if share >= Decimal::TWO * p.mtc_min_volume_share
                && mv >= Decimal::TWO * p.mtc_min_move_bps
            {
                Severity::High
            } else {
                Severity::Medium
            };
            let close_s = close.to_string();
            out.push(Alert {
                rule: Rule::MarkingTheClose,
                subtype: if sign > Decimal::ZERO {
                    "marking_up"
                } else {
                    "marking_down"
                }
                .to_string(),
                owner: self.name(a.owner).to_string(),
                accounts: accounts(a.accts.iter().map(|x| self.name(*x).to_string())),
                symbol: self.name(sym).to_string(),
                ts: Timestamp::from_nanos(close),
                severity,
                key: make_key(
                    Rule::MarkingTheClose,
                    &[self.name(sym), &close_s, self.name(*grp)],
                ),
                evidence: Evidence::MarkingTheClose(MtcEvidence {
                    close: Timestamp::from_nanos(close),
                    window_start: Timestamp::from_nanos(s.ws),
                    ref_price: ref_px,
                    close_price: close_px,
                    tape_volume: s.tape,
                    owner_volume: vol,
                    volume_share: ratio(vol, s.tape),
                    buy_qty: a.buy,
                    sell_qty: a.sell,
                    net_ratio: net.round_dp(6),
                    move_bps: mv.round_dp(6),
                    taker_share: ratio(a.taker, vol),
                    fill_ids: a.fill_ids.iter().map(|f| f.to_string()).collect(),
                    cancelled_orders_in_window: a.cancels,
                    cancelled_qty_in_window: a.cancel_qty,
                }),
            });
        }
    }
}
