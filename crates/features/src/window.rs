//! An exact event-time sliding window with running sums.
//!
//! Items are kept sorted by event time (a late item is inserted at its place, after items with
//! the same time so journal order breaks ties). The running accumulator covers every kept item;
//! items are evicted once they are older than `latest - len`, where `latest` is the greatest
//! event time pushed. The window is closed at both ends: an item exactly at `as_of - len` is in.
//! Sums are exact (decimals and integers), so evicting by subtraction leaves no drift.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// A sum that items can be added to and removed from.
pub(crate) trait Acc: Clone + Default {
    type Item: Clone;
    /// Add `item`, or leave `self` untouched and return false if a sum would overflow.
    fn try_add(&mut self, item: &Self::Item) -> bool;
    /// Remove an item previously added.
    fn sub(&mut self, item: &Self::Item);
}

/// Serialized with its running sums as they are (not recomputed from the items): a decimal sum
/// keeps the scale of everything ever added, which a fresh sum of the kept items may not have.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound(
    serialize = "A: Serialize, A::Item: Serialize",
    deserialize = "A: Deserialize<'de>, A::Item: Deserialize<'de>"
))]
pub(crate) struct Window<A: Acc> {
    len: i64,
    items: VecDeque<(i64, A::Item)>,
    acc: A,
    latest: Option<i64>,
    /// The newest item evicted, kept as the "price at or before t" reference for older t.
    last_evicted: Option<(i64, A::Item)>,
}

impl<A: Acc> Window<A> {
    pub(crate) fn new(len_ns: i64) -> Self {
        Window {
            len: len_ns,
            items: VecDeque::new(),
            acc: A::default(),
            latest: None,
            last_evicted: None,
        }
    }

    /// Push an item at event time `ts`. Returns false (nothing changes) when the item is already
    /// outside the window of the latest item, or when a sum would overflow.
    pub(crate) fn push(&mut self, ts: i64, item: A::Item) -> bool {
        if let Some(l) = self.latest
            && ts < l.saturating_sub(self.len)
        {
            return false;
        }
        if !self.acc.try_add(&item) {
            return false;
        }
        match self.items.back() {
            Some((b, _)) if *b > ts => {
                let pos = self.items.partition_point(|(t, _)| *t <= ts);
                self.items.insert(pos, (ts, item));
            }
            _ => self.items.push_back((ts, item)),
        }
        if self.latest.is_none_or(|l| ts > l) {
            self.latest = Some(ts);
            let horizon = ts.saturating_sub(self.len);
            while self.items.front().is_some_and(|(t, _)| *t < horizon) {
                if let Some(old) = self.items.pop_front() {
                    self.acc.sub(&old.1);
                    self.last_evicted = Some(old);
                }
            }
        }
        true
    }

    /// The sums over `[as_of - len, as_of]`. Requires `as_of >= latest` (callers check the
    /// engine's watermark), so only the front can fall out; the cost is the number of items
    /// that expired between `latest` and `as_of`.
    pub(crate) fn acc_as_of(&self, as_of: i64) -> A {
        let start = as_of.saturating_sub(self.len);
        let mut acc = self.acc.clone();
        for (t, item) in &self.items {
            if *t >= start {
                break;
            }
            acc.sub(item);
        }
        acc
    }

    /// The newest item (greatest time; ties: the later push).
    pub(crate) fn back(&self) -> Option<&(i64, A::Item)> {
        self.items.back().or(self.last_evicted.as_ref())
    }

    /// The newest item with time `<= t`, looking at evicted history's newest item too.
    pub(crate) fn last_at_or_before(&self, t: i64) -> Option<&(i64, A::Item)> {
        let idx = self.items.partition_point(|(x, _)| *x <= t);
        if idx > 0 {
            self.items.get(idx - 1)
        } else {
            self.last_evicted.as_ref().filter(|(x, _)| *x <= t)
        }
    }

    /// Number of items kept (for memory statistics).
    pub(crate) fn len_items(&self) -> usize {
        self.items.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Default, PartialEq)]
    struct Sum(i64, i64);
    impl Acc for Sum {
        type Item = i64;
        fn try_add(&mut self, item: &i64) -> bool {
            self.0 += item;
            self.1 += 1;
            true
        }
        fn sub(&mut self, item: &i64) {
            self.0 -= item;
            self.1 -= 1;
        }
    }

    #[test]
    fn closed_window_keeps_the_boundary_item_and_evicts_older_ones() {
        let mut w: Window<Sum> = Window::new(10);
        assert!(w.push(0, 1)); // exactly latest - len after the push at 10: kept
        assert!(w.push(5, 2));
        assert!(w.push(10, 4));
        // [0, 10] holds all three: 1 + 2 + 4.
        assert_eq!(w.acc_as_of(10), Sum(7, 3));
        // [1, 11]: the item at 0 falls out.
        assert_eq!(w.acc_as_of(11), Sum(6, 2));
        assert!(w.push(11, 8)); // evicts the item at 0
        assert_eq!(w.len_items(), 3);
        assert_eq!(w.acc_as_of(11), Sum(14, 3));
        // A late item inside the window is inserted in order; one before the horizon is refused.
        assert!(w.push(3, 16));
        assert!(!w.push(0, 32));
        assert_eq!(w.acc_as_of(11), Sum(30, 4));
        assert_eq!(
            w.acc_as_of(14),
            Sum(14, 3),
            "[4, 14]: 2 + 4 + 8, the late item at 3 is out"
        );
        assert_eq!(w.last_at_or_before(4).map(|x| x.1), Some(16));
        assert_eq!(
            w.last_at_or_before(0).map(|x| x.1),
            Some(1),
            "evicted newest"
        );
        assert_eq!(w.back().map(|x| x.1), Some(8));
    }
}
