//! B2 SPOOFING (opposite-fill-anchored) and B3 LAYERING (multi-level, lifetime-free).
//!
//! Both complete at a cancel (the last spoof/layer order pulled) or, for layering, at an
//! opposite-side fill up to `layer_t_post_ms` after the episode's last cancel. The alert is
//! raised when the conditions first hold; later orders joining the same genuine order (spoofing)
//! or episode (layering) do not raise it again (same key), so the evidence lists the orders
//! known at that moment.

use std::collections::{BTreeMap, BTreeSet};

use model::{Decimal, Side, Timestamp};
use serde::{Deserialize, Serialize};

use crate::alert::{
    Alert, Evidence, LayerOrder, LayeringEvidence, Rule, Severity, SpoofOrder, SpoofingEvidence,
    make_key,
};
use crate::params::ms;
use crate::scanner::{Scanner, accounts, ns_to_ms, ratio, side_ix};

#[derive(Default, Serialize, Deserialize)]
pub(crate) struct SpoofAcc {
    /// Order keys (kids) of the spoof orders counted.
    pub keys: Vec<u32>,
    pub members: Vec<SpoofOrder>,
    pub total: Decimal,
    pub alerted: bool,
}

#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Member {
    pub seq: u64,
    /// Order key (kid).
    pub kid: u32,
    pub acct: u32,
    pub price: Decimal,
    pub qty: Decimal,
    pub filled: Decimal,
    pub new_ts: i64,
    pub cancel_ts: i64,
    pub ticks: Option<Decimal>,
    /// Same-side touch size at placement.
    pub touch_size: Option<Decimal>,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct Episode {
    /// Order key (kid) of the founding member: the alert key, stable when episodes merge.
    pub founder: u32,
    pub founded_seq: u64,
    pub owner: u32,
    /// Members cancelled within `order_max_live_ms` of the latest cancel (older ones are
    /// pruned, see [`Episode::prune`]); frozen once the episode has alerted.
    pub members: Vec<Member>,
    pub start: i64,
    pub end: i64,
    /// Simultaneous price levels as the rule reads them: the maximum over the episode until it
    /// first reached `layer_min_levels`, then frozen.
    pub max_levels: usize,
    /// The maximum number of distinct prices live at one instant over every member ever
    /// added (maintained while not alerted).
    pub levels_seen: usize,
    pub alerted: bool,
    /// Running totals so evaluation is O(1) until the alert (episodes can grow long).
    pub total: Decimal,
    pub members_seen: usize,
    /// Members dropped from `members` by [`Episode::prune`] (counted in the totals, not listed).
    pub members_pruned: usize,
    pub any_far: bool,
    /// (placement ts, seq, same-side touch size) of the earliest-placed member.
    pub first: (i64, u64, Option<Decimal>),
}

impl Episode {
    /// The running totals (every member counts, listed or not).
    fn account(&mut self, m: &Member, min_ticks: Decimal) {
        self.total += m.qty;
        self.members_seen += 1;
        self.any_far |= m.ticks.is_some_and(|t| t >= min_ticks);
        if (m.new_ts, m.seq) < (self.first.0, self.first.1) {
            self.first = (m.new_ts, m.seq, m.touch_size);
        }
        self.start = self.start.min(m.new_ts);
        self.end = self.end.max(m.cancel_ts);
    }

    /// Add a member cancelled now (no earlier than any member already there).
    fn add(&mut self, m: Member, min_ticks: Decimal) {
        self.account(&m, min_ticks);
        // After the alert the member list is evidence already delivered: keep it bounded.
        if !self.alerted {
            // Only members cancelled at or after `m`'s placement can be live during its life;
            // before it the count is that of the members already there (`levels_seen`).
            let from = self.members.partition_point(|x| x.cancel_ts < m.new_ts);
            // Alone during its life (the usual case), `m` is one level.
            let during = if from == self.members.len() {
                1
            } else {
                max_simultaneous_levels(
                    self.members[from..]
                        .iter()
                        .chain(std::iter::once(&m))
                        .map(|x| (x.new_ts, x.cancel_ts, x.price)),
                )
            };
            self.levels_seen = self.levels_seen.max(during);
            self.members.push(m);
        }
    }

    /// Merge an episode in. Open episodes of one side have disjoint spans (an order overlapping
    /// several merges them all), so no member of `other` was ever live with one of `self` and
    /// the maximum simultaneous levels of the union is the larger of the two.
    fn absorb(&mut self, other: Episode, min_ticks: Decimal) {
        self.alerted |= other.alerted;
        self.levels_seen = self.levels_seen.max(other.levels_seen);
        self.members_pruned += other.members_pruned;
        for m in other.members {
            self.account(&m, min_ticks);
            if !self.alerted {
                self.members.push(m);
            }
        }
        // Keep the list in cancel order (stable: equal cancel times keep their order).
        self.members.sort_by_key(|m| m.cancel_ts);
    }

    /// Drop the members cancelled before `horizon` = now - `order_max_live_ms`. A member's
    /// lifetime is at most `order_max_live_ms` (an older order is forgotten, not cancelled
    /// into an episode), so every later member is placed at or after `horizon` and can never
    /// be live at the same time as a dropped one: `levels_seen` stays exact. Without this an
    /// episode chaining overlapping orders without end (a market maker replacing its quotes)
    /// would keep every order it ever placed.
    fn prune(&mut self, horizon: i64) {
        if self.alerted {
            return;
        }
        let n = self.members.partition_point(|m| m.cancel_ts < horizon);
        if n > 0 {
            self.members.drain(..n);
            self.members_pruned += n;
        }
    }
}

/// An episode can be dropped once the post-window has passed and no live order placed before
/// its end exists (only such an order could still overlap it).
pub(crate) fn episode_closed(
    e: &Episode,
    now: i64,
    t_post: i64,
    earliest_live: Option<i64>,
) -> bool {
    now > e.end.saturating_add(t_post) && earliest_live.is_none_or(|t| t > e.end)
}

/// Maximum number of distinct prices live at one instant over `(placed, cancelled, price)`
/// intervals (closed at both ends).
fn max_simultaneous_levels(members: impl Iterator<Item = (i64, i64, Decimal)>) -> usize {
    let mut ev: Vec<(i64, u8, Decimal)> = Vec::new();
    for (placed, cancelled, p) in members {
        ev.push((placed, 0, p));
        ev.push((cancelled, 1, p));
    }
    ev.sort();
    let mut live: BTreeMap<Decimal, usize> = BTreeMap::new();
    let mut best = 0;
    for (_, kind, p) in ev {
        if kind == 0 {
            *live.entry(p).or_default() += 1;
            best = best.max(live.len());
        } else if let Some(c) = live.get_mut(&p) {
            *c -= 1;
            if *c == 0 {
                live.remove(&p);
            }
        }
    }
    best
}

impl Scanner {
    pub(crate) fn spoof_on_cancel(&mut self, xkey: u32, ts: i64, out: &mut Vec<Alert>) {
        let p = &self.c.p;
        let (t_post, t_life, k, max_fill) = (
            ms(p.spoof_t_post_ms),
            ms(p.spoof_t_life_ms),
            p.spoof_k_size,
            p.spoof_max_fill_ratio,
        );
        let max_ticks = p.spoof_max_ticks_from_touch;
        let Some(x) = self.orders.order(xkey) else {
            return;
        };
        let lifetime = ts - x.new_ts;
        if lifetime > t_life || x.qty <= Decimal::ZERO || x.filled / x.qty > max_fill {
            return;
        }
        if let Some(n) = max_ticks
            && x.ticks_from_touch.is_none_or(|t| t > n)
        {
            return;
        }
        let lo = x.new_ts.max(ts.saturating_sub(t_post));
        let want = x.side.opposite();
        let mut genuine: Vec<u32> = Vec::new();
        if let Some(g) = self.gs.get(&(x.grp, x.sym)) {
            for f in g.fills.iter().rev() {
                if f.ts < lo {
                    break;
                }
                if f.ts <= ts && f.side == want && !genuine.contains(&f.kid) {
                    genuine.push(f.kid);
                }
            }
        }
        genuine.reverse();
        if genuine.is_empty() {
            return;
        }
        let member = SpoofOrder {
            order_id: self.order_id(xkey).to_string(),
            account: self.name(x.acct).to_string(),
            side: x.side,
            qty: x.qty,
            price: x.price,
            filled_qty: x.filled,
            placed: Timestamp::from_nanos(x.new_ts),
            cancelled: Timestamp::from_nanos(ts),
            lifetime_ms: ns_to_ms(lifetime),
            cancel_latency_ms: 0,
            ticks_from_touch: x.ticks_from_touch,
        };
        let xqty = x.qty;
        for gkey in genuine {
            let Some(g) = self.orders.order_mut(gkey) else {
                continue;
            };
            let last_fill = g.fills.iter().filter(|f| f.ts <= ts).map(|f| f.ts).max();
            let acc = g.spoof.get_or_insert_with(Box::default);
            if acc.keys.contains(&xkey) {
                continue;
            }
            let mut m = member.clone();
            m.cancel_latency_ms = last_fill.map_or(0, |t| ns_to_ms(ts - t));
            acc.keys.push(xkey);
            acc.members.push(m);
            acc.total += xqty;
            if !acc.alerted && acc.total >= k * g.qty {
                acc.alerted = true;
                if let Some(a) = self.spoof_alert(gkey, ts) {
                    out.push(a);
                }
            }
        }
    }

    fn spoof_alert(&self, gkey: u32, ts: i64) -> Option<Alert> {
        let g = self.orders.order(gkey)?;
        let acc = g.spoof.as_ref()?;
        let size_ratio = ratio(acc.total, g.qty);
        let lifetimes = acc.members.iter().map(|m| m.lifetime_ms);
        let levels: BTreeSet<Decimal> = acc.members.iter().filter_map(|m| m.price).collect();
        let severity = if acc.total >= self.c.p.spoof_k_size * Decimal::TWO * g.qty {
            Severity::High
        } else {
            Severity::Medium
        };
        Some(Alert {
            rule: Rule::Spoofing,
            subtype: "opposite_fill_anchored".to_string(),
            owner: self.name(g.owner).to_string(),
            accounts: accounts(
                std::iter::once(self.name(g.acct).to_string())
                    .chain(acc.members.iter().map(|m| m.account.clone())),
            ),
            symbol: self.name(g.sym).to_string(),
            ts: Timestamp::from_nanos(ts),
            severity,
            key: make_key(Rule::Spoofing, &[self.orders.key(gkey)]),
            evidence: Evidence::Spoofing(SpoofingEvidence {
                genuine_order_id: self.order_id(gkey).to_string(),
                genuine_account: self.name(g.acct).to_string(),
                genuine_side: g.side,
                genuine_qty: g.qty,
                genuine_price: g.price,
                genuine_filled_qty: g.filled,
                genuine_fills: g.fills.iter().map(|f| self.fill_ref(f)).collect(),
                entry_to_first_fill_ms: g.fills.first().map(|f| ns_to_ms(f.ts - g.new_ts)),
                spoof_order_ids: acc.members.iter().map(|m| m.order_id.clone()).collect(),
                spoof_orders: acc.members.clone(),
                total_spoof_qty: acc.total,
                size_ratio,
                price_levels: levels.into_iter().collect(),
                min_lifetime_ms: lifetimes.clone().min().unwrap_or(0),
                max_lifetime_ms: lifetimes.max().unwrap_or(0),
                max_cancel_latency_ms: acc
                    .members
                    .iter()
                    .map(|m| m.cancel_latency_ms)
                    .max()
                    .unwrap_or(0),
                order_to_trade_ratio: self.otr(g.grp),
                quote_at_genuine_entry: g.touch.as_ref().map(|q| q.snap()),
                quote_at_alert: self.prevailing(g.sym, ts).map(|q| q.snap()),
            }),
        })
    }

    pub(crate) fn layer_on_cancel(&mut self, xkey: u32, ts: i64, out: &mut Vec<Alert>) {
        let max_fill = self.c.p.layer_max_fill_ratio;
        let min_ticks = self.c.p.layer_min_ticks_away;
        let t_post = ms(self.c.p.layer_t_post_ms);
        let Some(x) = self.orders.order(xkey) else {
            return;
        };
        let Some(price) = x.price else { return };
        if !x.limit || x.qty <= Decimal::ZERO || x.filled / x.qty > max_fill {
            return;
        }
        let m = Member {
            seq: x.seq,
            kid: xkey,
            acct: x.acct,
            price,
            qty: x.qty,
            filled: x.filled,
            new_ts: x.new_ts,
            cancel_ts: ts,
            ticks: x.ticks_from_touch,
            touch_size: x.touch.as_ref().and_then(|q| match x.side {
                Side::Buy => q.bid_size,
                Side::Sell => q.ask_size,
            }),
        };
        let (grp, sym, side, owner, seq) = (x.grp, x.sym, x.side, x.owner, self.seq);
        let s = side_ix(side);
        let g = self.gs.entry((grp, sym)).or_default();
        // The order being cancelled has just left the live set, but it was live until now:
        // an episode it overlaps is not closed.
        let earliest_live = g.live[s].earliest().map_or(m.new_ts, |t| t.min(m.new_ts));
        g.episodes[s].retain(|e| !episode_closed(e, ts, t_post, Some(earliest_live)));
        // Cancels arrive in time order, so the new interval overlaps an episode iff it was
        // placed at or before that episode's end.
        let eps = &mut g.episodes[s];
        let mut overlapping: Vec<Episode> = Vec::new();
        for i in (0..eps.len()).rev() {
            if eps[i].end >= m.new_ts {
                overlapping.push(eps.swap_remove(i));
            }
        }
        overlapping.sort_by_key(|e| e.founded_seq);
        let mut it = overlapping.into_iter();
        let mut ep = match it.next() {
            None => Episode {
                founder: xkey,
                founded_seq: seq,
                owner,
                members: Vec::new(),
                start: m.new_ts,
                end: ts,
                max_levels: 0,
                levels_seen: 0,
                alerted: false,
                total: Decimal::ZERO,
                members_seen: 0,
                members_pruned: 0,
                any_far: false,
                first: (i64::MAX, u64::MAX, None),
            },
            Some(mut first) => {
                for e in it {
                    first.absorb(e, min_ticks);
                }
                first
            }
        };
        ep.prune(ts.saturating_sub(ms(self.c.p.order_max_live_ms)));
        ep.add(m, min_ticks);
        if !ep.alerted && ep.max_levels < self.c.p.layer_min_levels {
            ep.max_levels = ep.levels_seen;
        }
        if let Some(a) = self.layer_evaluate(&ep, grp, sym, side, ts) {
            ep.alerted = true;
            out.push(a);
        }
        if let Some(g) = self.gs.get_mut(&(grp, sym)) {
            g.episodes[s].push(ep);
        }
    }

    pub(crate) fn layer_on_fill(
        &mut self,
        f: &crate::scanner::Fl,
        grp: u32,
        sym: u32,
        out: &mut Vec<Alert>,
    ) {
        let t_post = ms(self.c.p.layer_t_post_ms);
        let layer_side = f.side.opposite();
        let s = side_ix(layer_side);
        let Some(g) = self.gs.get_mut(&(grp, sym)) else {
            return;
        };
        if g.episodes[s].is_empty() {
            return;
        }
        let earliest_live = g.live[s].earliest();
        g.episodes[s].retain(|e| !episode_closed(e, f.ts, t_post, earliest_live));
        let mut eps = std::mem::take(&mut g.episodes[s]);
        for ep in eps.iter_mut() {
            if !ep.alerted
                && f.ts >= ep.start
                && f.ts <= ep.end.saturating_add(t_post)
                && let Some(a) = self.layer_evaluate(ep, grp, sym, layer_side, f.ts)
            {
                ep.alerted = true;
                out.push(a);
            }
        }
        if let Some(g) = self.gs.get_mut(&(grp, sym)) {
            eps.append(&mut g.episodes[s]);
            g.episodes[s] = eps;
        }
    }

    fn layer_evaluate(
        &self,
        ep: &Episode,
        grp: u32,
        sym: u32,
        side: Side,
        now: i64,
    ) -> Option<Alert> {
        let p = &self.c.p;
        if ep.alerted || ep.max_levels < p.layer_min_levels {
            return None;
        }
        if !ep.any_far {
            return None;
        }
        let touch_size = ep.first.2?;
        let total = ep.total;
        if total < p.layer_k_touch * touch_size {
            return None;
        }
        let hi = now.min(ep.end.saturating_add(ms(p.layer_t_post_ms)));
        // Opposite fills are looked for at most as far back as the scanner keeps fills (see
        // `Scanner::fill_bound`), whatever eviction has already run.
        let look = ms(p.spoof_t_post_ms).max(ms(p.layer_t_post_ms));
        let lo = ep
            .start
            .max(now.saturating_sub(ms(p.order_max_live_ms).saturating_add(look)));
        let opp: Vec<_> = self
            .gs
            .get(&(grp, sym))?
            .fills
            .iter()
            .filter(|f| f.side == side.opposite() && f.ts >= lo && f.ts <= hi)
            .collect();
        if opp.is_empty() {
            return None;
        }
        let mut members = ep.members.clone();
        members.sort_by_key(|m| (m.new_ts, m.seq));
        let distinct: BTreeSet<Decimal> = members.iter().map(|m| m.price).collect();
        let severity = if ep.max_levels > p.layer_min_levels
            && total >= Decimal::from(3) * p.layer_k_touch * touch_size
        {
            Severity::High
        } else {
            Severity::Medium
        };
        Some(Alert {
            rule: Rule::Layering,
            subtype: "multi_level".to_string(),
            owner: self.name(ep.owner).to_string(),
            accounts: accounts(members.iter().map(|m| self.name(m.acct).to_string())),
            symbol: self.name(sym).to_string(),
            ts: Timestamp::from_nanos(now),
            severity,
            key: make_key(Rule::Layering, &[self.orders.key(ep.founder)]),
            evidence: Evidence::Layering(LayeringEvidence {
                side,
                order_ids: members
                    .iter()
                    .map(|m| self.order_id(m.kid).to_string())
                    .collect(),
                orders: members
                    .iter()
                    .map(|m| LayerOrder {
                        order_id: self.order_id(m.kid).to_string(),
                        account: self.name(m.acct).to_string(),
                        price: m.price,
                        qty: m.qty,
                        filled_qty: m.filled,
                        placed: Timestamp::from_nanos(m.new_ts),
                        cancelled: Timestamp::from_nanos(m.cancel_ts),
                        lifetime_ms: ns_to_ms(m.cancel_ts - m.new_ts),
                        ticks_from_touch: m.ticks,
                    })
                    .collect(),
                distinct_levels: distinct.len(),
                max_simultaneous_levels: ep.max_levels,
                total_qty: total,
                touch_size,
                layer_fill_qty: members.iter().map(|m| m.filled).sum(),
                episode_start: Timestamp::from_nanos(ep.start),
                episode_end: Timestamp::from_nanos(ep.end),
                episode_duration_ms: ns_to_ms(ep.end - ep.start),
                opposite_fill_qty: opp.iter().map(|f| f.qty).sum(),
                opposite_fills: opp.iter().map(|f| self.fill_ref(f)).collect(),
                order_to_trade_ratio: self.otr(grp),
                orders_not_listed: ep.members_pruned,
            }),
        })
    }
}
