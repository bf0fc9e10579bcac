//! A bounded event-time sliding window: running sums over fixed panes.
//!
//! A window of length `L` cuts event time into panes of width `w = L / PANES`: pane `k` holds
//! the items with `ts` in `[k·w, (k+1)·w)` as one accumulator. The window's value as of `t` is
//! the sum of the panes that intersect `[t - L, t]`, i.e. of the items with
//! `ts in [start(t), t]` where `start(t) = floor((t - L) / w) · w`: the exact window plus at
//! most `w - 1 ns` before it (exactly the window when `t - L` falls on a pane boundary). So a
//! window holds at most `PANES + 1` panes whatever the event rate, where an exact window would
//! hold every item of the last `L`.
//!
//! Panes are kept for `[start(latest), latest]`, `latest` being the greatest event time added.
//! A late item (older than `latest`) is added to its pane while that pane is still kept, and
//! is *expired* otherwise: not in the sums. Sums are exact (decimals and integers), so removing
//! an expired pane by subtraction leaves no drift, and the panes are a function of the items
//! and their order only, so replaying the same items gives the same window.
//!
//! Some features need one value of the newest item before a time (a trade price as the
//! reference of a return); a pane sum cannot give it, so a window whose [`Acc::last_of`] gives
//! such a value keeps the newest one per pane and the newest one of the items no longer kept
//! ([`Window::newest_before`]): one value each, never the items.

use std::collections::VecDeque;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};

/// Panes per window: a window of length `L` has panes of `L / PANES` (1 min: 100 ms, 5 min:
/// 500 ms, 1 h: 6 s) and keeps at most `PANES + 1` of them.
pub const PANES: i64 = 600;

/// The first event time (ns) counted by a window of length `len_ns` as of `as_of_ns`: the start
/// of the pane (width `len_ns / PANES`) holding `as_of_ns - len_ns`. The window covers
/// `[window_start(len_ns, as_of_ns), as_of_ns]`: at least `len_ns`, at most one pane more.
/// `len_ns` must be at least [`PANES`] (the engine's windows are minutes); a shorter length
/// is treated as panes of 1 ns.
pub fn window_start(len_ns: i64, as_of_ns: i64) -> i64 {
    let width = pane_width(len_ns);
    pane_of(as_of_ns.saturating_sub(len_ns), width) * width
}

fn pane_width(len_ns: i64) -> i64 {
    (len_ns / PANES).max(1)
}

fn pane_of(ts: i64, width: i64) -> i64 {
    ts.div_euclid(width)
}

/// A sum that items can be added to and whose panes can be removed from it.
pub(crate) trait Acc: Clone + Default {
    type Item;
    /// The value kept of a pane's newest item (`()` for sums that need none).
    type Last: Clone;
    /// Add `item`, or leave `self` untouched and return false if a sum would overflow.
    fn try_add(&mut self, item: &Self::Item) -> bool;
    /// Remove a pane's sum (whose items were all added to `self` too).
    fn sub(&mut self, pane: &Self);
    /// The value to remember of `item` as the newest, or `None` when nothing is kept.
    fn last_of(item: &Self::Item) -> Option<Self::Last>;
}

/// What happened to a pushed item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Push {
    /// In the sums.
    Added,
    /// Older than the kept panes: not in the sums (only a candidate for `newest_before`).
    Expired,
    /// A sum would overflow: nothing changed.
    Overflow,
}

/// One pane: its index (`floor(ts / width)`), the sum of its items and the newest of them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound(
    serialize = "A: Serialize, A::Last: Serialize",
    deserialize = "A: Deserialize<'de>, A::Last: Deserialize<'de>"
))]
struct Pane<A: Acc> {
    #[serde(rename = "k")]
    idx: i64,
    #[serde(rename = "s")]
    acc: A,
    /// (ts, value) of the newest item (greatest ts; ties: the later push).
    #[serde(rename = "n", default, skip_serializing_if = "Option::is_none")]
    newest: Option<(i64, A::Last)>,
}

/// Serialized with its running total as it is (not recomputed from the panes): a decimal sum
/// keeps the scale of everything ever added, which a fresh sum of the kept panes may not have.
/// The pane width is derived from `len` on restore.
#[derive(Debug, Clone, Serialize)]
#[serde(bound(serialize = "A: Serialize, A::Last: Serialize"))]
pub(crate) struct Window<A: Acc> {
    len: i64,
    #[serde(skip)]
    width: i64,
    /// Panes holding at least one item, by increasing index.
    panes: VecDeque<Pane<A>>,
    /// The sum of every pane kept.
    total: A,
    /// The greatest event time added.
    latest: Option<i64>,
    /// (ts, value) of the newest item no longer (or never) in a kept pane.
    before: Option<(i64, A::Last)>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "A: Deserialize<'de>, A::Last: Deserialize<'de>"))]
struct WindowSnapshot<A: Acc> {
    len: i64,
    panes: VecDeque<Pane<A>>,
    total: A,
    latest: Option<i64>,
    before: Option<(i64, A::Last)>,
}

impl<'de, A> Deserialize<'de> for Window<A>
where
    A: Acc + Deserialize<'de>,
    A::Last: Deserialize<'de>,
{
    /// Checks what later calls rely on: a length of at least one pane per nanosecond, panes in
    /// strictly increasing order, all inside the window of `latest`.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = WindowSnapshot::<A>::deserialize(d)?;
        if s.len < PANES {
            return Err(D::Error::custom(format!(
                "window length {} too short",
                s.len
            )));
        }
        let width = pane_width(s.len);
        let ordered = s
            .panes
            .iter()
            .zip(s.panes.iter().skip(1))
            .all(|(a, b)| a.idx < b.idx);
        let inside = match s.latest {
            None => s.panes.is_empty(),
            Some(l) => s.panes.iter().all(|p| {
                p.idx >= pane_of(l.saturating_sub(s.len), width) && p.idx <= pane_of(l, width)
            }),
        };
        if !ordered || !inside {
            return Err(D::Error::custom("window panes out of order or range"));
        }
        Ok(Window {
            len: s.len,
            width,
            panes: s.panes,
            total: s.total,
            latest: s.latest,
            before: s.before,
        })
    }
}

impl<A: Acc> Window<A> {
    /// A window of `len_ns` (at least [`PANES`] ns).
    pub(crate) fn new(len_ns: i64) -> Self {
        Window {
            len: len_ns,
            width: pane_width(len_ns),
            panes: VecDeque::new(),
            total: A::default(),
            latest: None,
            before: None,
        }
    }

    pub(crate) fn len_ns(&self) -> i64 {
        self.len
    }

    /// The first pane counted as of `t`.
    fn first_pane(&self, t: i64) -> i64 {
        pane_of(t.saturating_sub(self.len), self.width)
    }

    /// Push an item at event time `ts` (see [`Push`]). An item whose pane is older than the
    /// window of the latest item is expired; its value may still become `newest_before`'s.
    pub(crate) fn push(&mut self, ts: i64, item: A::Item) -> Push {
        let idx = pane_of(ts, self.width);
        let last = A::last_of(&item);
        if let Some(l) = self.latest
            && idx < self.first_pane(l)
        {
            if let Some(v) = last
                && self.before.as_ref().is_none_or(|(b, _)| ts >= *b)
            {
                self.before = Some((ts, v));
            }
            return Push::Expired;
        }
        let pos = self.panes.partition_point(|p| p.idx < idx);
        let existing = self.panes.get(pos).filter(|p| p.idx == idx);
        let mut pane_acc = existing.map(|p| p.acc.clone()).unwrap_or_default();
        let mut total = self.total.clone();
        if !pane_acc.try_add(&item) || !total.try_add(&item) {
            return Push::Overflow;
        }
        self.total = total;
        match self.panes.get_mut(pos).filter(|p| p.idx == idx) {
            Some(p) => {
                p.acc = pane_acc;
                if let Some(v) = last
                    && p.newest.as_ref().is_none_or(|(n, _)| ts >= *n)
                {
                    p.newest = Some((ts, v));
                }
            }
            None => self.panes.insert(
                pos,
                Pane {
                    idx,
                    acc: pane_acc,
                    newest: last.map(|v| (ts, v)),
                },
            ),
        }
        if self.latest.is_none_or(|l| ts > l) {
            self.latest = Some(ts);
            let first = self.first_pane(ts);
            while self.panes.front().is_some_and(|p| p.idx < first) {
                if let Some(old) = self.panes.pop_front() {
                    self.total.sub(&old.acc);
                    // Panes leave oldest first, so this one's newest item is newer than any
                    // item expired or evicted before.
                    if old.newest.is_some() {
                        self.before = old.newest;
                    }
                }
            }
        }
        Push::Added
    }

    /// The sums of the panes intersecting `[as_of - len, as_of]`. Requires `as_of >= latest`
    /// (callers check the engine's watermark), so only front panes can fall out; the cost is the
    /// number of panes that expired between `latest` and `as_of`.
    pub(crate) fn acc_as_of(&self, as_of: i64) -> A {
        let first = self.first_pane(as_of);
        let mut acc = self.total.clone();
        for p in self.panes.iter().take_while(|p| p.idx < first) {
            acc.sub(&p.acc);
        }
        acc
    }

    /// The newest item pushed and not expired (greatest time; ties: the later push), for sums
    /// whose items leave a value ([`Acc::last_of`]).
    pub(crate) fn newest(&self) -> Option<&(i64, A::Last)> {
        match self.panes.back() {
            Some(p) => p.newest.as_ref(),
            None => self.before.as_ref(),
        }
    }

    /// The newest item with a time before the window as of `as_of` (`< window_start`), among
    /// every item pushed that did not overflow. Requires `as_of >= latest`.
    pub(crate) fn newest_before(&self, as_of: i64) -> Option<&(i64, A::Last)> {
        let first = self.first_pane(as_of);
        self.panes
            .iter()
            .take_while(|p| p.idx < first)
            .filter_map(|p| p.newest.as_ref())
            .last()
            .or(self.before.as_ref())
    }

    /// Number of panes kept (for memory statistics): at most `PANES + 1`.
    pub(crate) fn panes(&self) -> usize {
        self.panes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (sum of the items, number of items); an item's value is also what is remembered of it.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    struct Sum(i64, i64);
    impl Acc for Sum {
        type Item = i64;
        type Last = i64;
        fn try_add(&mut self, item: &i64) -> bool {
            match self.0.checked_add(*item) {
                Some(s) => {
                    self.0 = s;
                    self.1 += 1;
                    true
                }
                None => false,
            }
        }
        fn sub(&mut self, pane: &Sum) {
            self.0 -= pane.0;
            self.1 -= pane.1;
        }
        fn last_of(item: &i64) -> Option<i64> {
            Some(*item)
        }
    }

    /// Length 6000 ns: panes of 10 ns.
    const LEN: i64 = 6_000;

    #[test]
    fn window_start_is_the_pane_holding_as_of_minus_len() {
        assert_eq!(window_start(LEN, 10_000), 4_000, "on a boundary: exact");
        assert_eq!(window_start(LEN, 10_009), 4_000, "9 ns more than LEN");
        assert_eq!(window_start(LEN, 10_010), 4_010);
        assert_eq!(window_start(LEN, 5), -6_000, "panes floor below zero too");
        assert_eq!(window_start(60_000_000_000, 60_000_000_000), 0);
        assert_eq!(window_start(60_000_000_000, 60_099_999_999), 0);
        assert_eq!(window_start(60_000_000_000, 60_100_000_000), 100_000_000);
    }

    #[test]
    fn panes_cover_the_window_plus_at_most_one_pane() {
        let mut w: Window<Sum> = Window::new(LEN);
        assert_eq!(w.push(4_000, 1), Push::Added);
        assert_eq!(w.push(4_009, 2), Push::Added, "same pane as 4000");
        assert_eq!(w.push(7_000, 4), Push::Added);
        assert_eq!(w.push(10_000, 8), Push::Added);
        assert_eq!(w.panes(), 3);
        // As of 10000: [4000, 10000] exactly, everything.
        assert_eq!(w.acc_as_of(10_000), Sum(15, 4));
        // As of 10009: the pane [4000, 4010) still intersects [4009, 10009]: both items count,
        // the one at 4000 too (9 ns older than the exact window).
        assert_eq!(w.acc_as_of(10_009), Sum(15, 4));
        // As of 10010 the pane falls out as a whole.
        assert_eq!(w.acc_as_of(10_010), Sum(12, 2));
        assert_eq!(w.newest_before(10_009), None);
        assert_eq!(w.newest_before(10_010), Some(&(4_009, 2)));
        assert_eq!(w.newest(), Some(&(10_000, 8)));

        // Pushing at 10010 evicts it; its newest item becomes the reference before the window.
        assert_eq!(w.push(10_010, 16), Push::Added);
        assert_eq!(w.panes(), 3);
        assert_eq!(w.acc_as_of(10_010), Sum(28, 3));
        assert_eq!(w.newest_before(10_010), Some(&(4_009, 2)));
        // A late item in a kept pane is added to it; one older than the kept panes is expired
        // but is the newest before the window when it is newer than the evicted ones.
        assert_eq!(w.push(7_005, 32), Push::Added);
        assert_eq!(w.panes(), 3, "joined the pane of 7000");
        assert_eq!(w.acc_as_of(10_010), Sum(60, 4));
        assert_eq!(w.push(4_005, 64), Push::Expired);
        assert_eq!(
            w.newest_before(10_010),
            Some(&(4_009, 2)),
            "older than 4009"
        );
        assert_eq!(w.push(4_009, 128), Push::Expired);
        assert_eq!(
            w.newest_before(10_010),
            Some(&(4_009, 128)),
            "same time: the later push"
        );
        assert_eq!(
            w.acc_as_of(10_010),
            Sum(60, 4),
            "expired items are not summed"
        );
        // The newest item is the one with the greatest time, not the last pushed.
        assert_eq!(w.push(10_011, 256), Push::Added);
        assert_eq!(w.newest(), Some(&(10_011, 256)));
        assert_eq!(w.push(10_012, 1), Push::Added);
        assert_eq!(w.push(10_011, 2), Push::Added);
        assert_eq!(w.newest(), Some(&(10_012, 1)), "greatest time wins");
        // An overflow changes nothing.
        let before = format!("{:?}", w.acc_as_of(10_012));
        assert_eq!(w.push(10_012, i64::MAX), Push::Overflow);
        assert_eq!(format!("{:?}", w.acc_as_of(10_012)), before);
    }

    #[test]
    fn memory_is_at_most_panes_plus_one_whatever_the_rate() {
        for per_pane in [1i64, 7] {
            let mut w: Window<Sum> = Window::new(LEN);
            let mut peak = 0;
            for i in 0..(3 * PANES * per_pane) {
                // `per_pane` items per 10 ns pane, over three window lengths.
                w.push(i * 10 / per_pane, 1);
                peak = peak.max(w.panes());
            }
            assert_eq!(peak, PANES as usize + 1, "{per_pane} per pane");
            // The running total is the sum of the kept panes, all full.
            let latest = 3 * PANES * 10 - 1;
            assert_eq!(w.acc_as_of(latest).1, (PANES + 1) * per_pane);
        }
    }

    #[test]
    fn a_restored_window_refuses_inconsistent_panes() {
        let mut w: Window<Sum> = Window::new(LEN);
        w.push(10_000, 1);
        w.push(10_020, 1);
        let v = serde_json::to_value(&w).unwrap();
        let ok: Window<Sum> = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(ok.acc_as_of(10_020), Sum(2, 2));
        assert_eq!(ok.width, 10, "derived from the length");
        assert_eq!(serde_json::to_value(&ok).unwrap(), v);
        let mut bad = v.clone();
        bad["len"] = serde_json::json!(5);
        assert!(
            serde_json::from_value::<Window<Sum>>(bad).is_err(),
            "too short"
        );
        let mut bad = v.clone();
        bad["panes"].as_array_mut().unwrap().reverse();
        assert!(serde_json::from_value::<Window<Sum>>(bad).is_err(), "order");
        let mut bad = v;
        bad["panes"][0]["k"] = serde_json::json!(0);
        assert!(
            serde_json::from_value::<Window<Sum>>(bad).is_err(),
            "outside the window"
        );
    }
}
