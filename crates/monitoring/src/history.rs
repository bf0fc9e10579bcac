//! Recent history of the scraped series: a ring buffer of `(time, value)` points per series,
//! sized for the configured window at the scrape interval. Nothing here grows with time: a ring
//! drops its oldest point when full, a series that stopped reporting is forgotten once its last
//! point leaves the window, and the number of series is capped (what is refused is counted).

use std::collections::{HashMap, HashSet, VecDeque};

use crate::exposition::{Labels, Sample};

/// Milliseconds since the epoch.
pub type Millis = i64;

/// The points of one series, oldest first.
#[derive(Debug, Clone)]
pub struct Ring {
    points: VecDeque<(Millis, f64)>,
    capacity: usize,
}

impl Ring {
    fn new(capacity: usize) -> Ring {
        Ring {
            points: VecDeque::with_capacity(capacity.min(64)),
            capacity,
        }
    }

    fn push(&mut self, t: Millis, v: f64) {
        // A repeated or older time (a clock step back) replaces nothing: keep the ring ordered.
        if self.points.back().is_some_and(|(last, _)| *last >= t) {
            return;
        }
        if self.points.len() == self.capacity {
            self.points.pop_front();
        }
        self.points.push_back((t, v));
    }

    /// The points with `from <= t <= to`.
    pub fn range(&self, from: Millis, to: Millis) -> impl Iterator<Item = (Millis, f64)> + '_ {
        self.points
            .iter()
            .copied()
            .skip_while(move |(t, _)| *t < from)
            .take_while(move |(t, _)| *t <= to)
    }

    pub fn last(&self) -> Option<(Millis, f64)> {
        self.points.back().copied()
    }

    pub fn len(&self) -> usize {
        self.points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
}

/// What the history keeps and for how long.
#[derive(Debug, Clone)]
pub struct Limits {
    /// How far back points are kept (and a silent series is remembered), in milliseconds.
    pub window_ms: Millis,
    /// Points per series: the window divided by the scrape interval (plus slack).
    pub points: usize,
    /// Most series held at once.
    pub max_series: usize,
}

/// Every kept series by metric name, then by label set.
#[derive(Debug)]
pub struct History {
    limits: Limits,
    /// Metric names worth keeping (what the rules and the charts read); `None`: everything.
    keep: Option<HashSet<String>>,
    series: HashMap<String, HashMap<Labels, Ring>>,
    count: usize,
    /// Samples refused because `max_series` was reached.
    pub refused: u64,
}

impl History {
    pub fn new(limits: Limits, keep: Option<HashSet<String>>) -> History {
        History {
            limits,
            keep,
            series: HashMap::new(),
            count: 0,
            refused: 0,
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Records one scrape of `service` at `t`: each sample gets the `service` label (the
    /// target's name wins over a label of the same name in the exposition).
    pub fn record(&mut self, service: &str, t: Millis, samples: Vec<Sample>) {
        for s in samples {
            if self.keep.as_ref().is_some_and(|k| !k.contains(&s.name)) {
                continue;
            }
            let mut labels = s.labels;
            labels.insert("service".to_owned(), service.to_owned());
            self.push(s.name, labels, t, s.value);
        }
    }

    /// Records one point of a series the monitor computes itself (`up`).
    pub fn push(&mut self, name: String, labels: Labels, t: Millis, value: f64) {
        let capacity = self.limits.points;
        let full = self.count >= self.limits.max_series;
        let by_labels = self.series.entry(name).or_default();
        match by_labels.get_mut(&labels) {
            Some(ring) => ring.push(t, value),
            None if full => self.refused += 1,
            None => {
                let mut ring = Ring::new(capacity);
                ring.push(t, value);
                by_labels.insert(labels, ring);
                self.count += 1;
            }
        }
    }

    /// Forgets series whose newest point is older than the window.
    pub fn prune(&mut self, now: Millis) {
        let oldest = now - self.limits.window_ms;
        let mut removed = 0;
        for by_labels in self.series.values_mut() {
            let before = by_labels.len();
            by_labels.retain(|_, ring| ring.last().is_some_and(|(t, _)| t >= oldest));
            removed += before - by_labels.len();
        }
        self.series.retain(|_, by_labels| !by_labels.is_empty());
        self.count -= removed;
    }

    /// The series of metric `name`.
    pub fn series(&self, name: &str) -> impl Iterator<Item = (&Labels, &Ring)> {
        self.series.get(name).into_iter().flat_map(|m| m.iter())
    }

    /// Series held now.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(points: usize, max_series: usize) -> Limits {
        Limits {
            window_ms: 60_000,
            points,
            max_series,
        }
    }

    fn sample(name: &str, route: &str, value: f64) -> Sample {
        crate::exposition::test_support::sample(name, &[("route", route)], value)
    }

    #[test]
    fn a_ring_keeps_its_newest_points_in_time_order() {
        let mut h = History::new(limits(3, 10), None);
        for t in 1..=5 {
            h.record("gw", t * 1000, vec![sample("m", "/a", t as f64)]);
        }
        // A repeated time is ignored rather than reordering the ring.
        h.record("gw", 5000, vec![sample("m", "/a", 99.0)]);
        let (labels, ring) = h.series("m").next().unwrap();
        assert_eq!(labels["service"], "gw");
        assert_eq!(
            ring.range(0, i64::MAX).collect::<Vec<_>>(),
            [(3000, 3.0), (4000, 4.0), (5000, 5.0)]
        );
        assert_eq!(ring.range(3500, 4500).collect::<Vec<_>>(), [(4000, 4.0)]);
    }

    #[test]
    fn series_are_capped_pruned_and_filtered_by_name() {
        let keep = Some(["m".to_owned()].into());
        let mut h = History::new(limits(10, 2), keep);
        h.record(
            "gw",
            1000,
            vec![
                sample("m", "/a", 1.0),
                sample("m", "/b", 1.0),
                sample("m", "/c", 1.0),
                sample("other", "/a", 1.0),
            ],
        );
        assert_eq!((h.len(), h.refused), (2, 1));
        assert_eq!(h.series("other").count(), 0);
        // /a keeps reporting, /b stops: after the window only /a is left, and room is freed.
        h.record("gw", 50_000, vec![sample("m", "/a", 2.0)]);
        h.prune(70_000);
        assert_eq!(h.len(), 1);
        h.record("gw", 71_000, vec![sample("m", "/c", 1.0)]);
        assert_eq!(h.len(), 2);
        h.prune(200_000);
        assert!(h.is_empty());
    }

    #[test]
    fn the_target_name_wins_over_a_service_label() {
        let mut h = History::new(limits(10, 10), None);
        let mut s = sample("m", "/a", 1.0);
        s.labels.insert("service".into(), "claimed".into());
        h.record("gateway", 1, vec![s]);
        assert_eq!(h.series("m").next().unwrap().0["service"], "gateway");
    }
}
