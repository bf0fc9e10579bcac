//! Rows waiting for the online store.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Arc, Mutex, MutexGuard};

use features::FeatureRow;

type Rows = HashMap<(&'static str, String), FeatureRow>;

/// The newest row per (view, entity) not yet written to the online store. Keyed, so a long
/// outage costs memory bounded by the number of entities, never by the number of events.
/// Shared between the consumer (which stages rows as it folds events) and the writer task.
#[derive(Clone, Default)]
pub struct Outbox(Arc<Mutex<Rows>>);

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox").field("rows", &self.len()).finish()
    }
}

impl Outbox {
    fn lock(&self) -> MutexGuard<'_, Rows> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds rows; a row replaces the staged one of its entity unless that one is newer (on equal
    /// times the later call wins: it was computed with more events folded).
    pub fn stage(&self, rows: impl IntoIterator<Item = FeatureRow>) {
        let mut map = self.lock();
        for row in rows {
            match map.entry((row.view, row.entity.clone())) {
                Entry::Occupied(mut o) => {
                    if o.get().event_ts <= row.event_ts {
                        o.insert(row);
                    }
                }
                Entry::Vacant(v) => {
                    v.insert(row);
                }
            }
        }
    }

    /// Puts back rows whose write failed, except where a row staged meanwhile is as new or newer.
    pub fn restage(&self, rows: Vec<FeatureRow>) {
        let mut map = self.lock();
        for row in rows {
            match map.entry((row.view, row.entity.clone())) {
                Entry::Occupied(_) => {} // staged after this one was taken: never older
                Entry::Vacant(v) => {
                    v.insert(row);
                }
            }
        }
    }

    /// Removes and returns every staged row.
    pub fn take(&self) -> Vec<FeatureRow> {
        std::mem::take(&mut *self.lock()).into_values().collect()
    }

    /// The staged rows sorted by view and entity, left in place.
    pub fn rows(&self) -> Vec<FeatureRow> {
        let mut rows: Vec<FeatureRow> = self.lock().values().cloned().collect();
        rows.sort_by(|a, b| (a.view, &a.entity).cmp(&(b.view, &b.entity)));
        rows
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use features::FeatureValue;
    use model::Timestamp;

    fn row(entity: &str, secs: i64, v: i64) -> FeatureRow {
        FeatureRow {
            view: features::ORDER_FEATURES,
            entity: entity.into(),
            event_ts: Timestamp::from_secs(secs),
            values: vec![("orders_1h", FeatureValue::I64(v))],
        }
    }

    #[test]
    fn one_row_per_entity_newest_wins_and_a_failed_write_never_overwrites_a_newer_row() {
        let o = Outbox::default();
        for i in 0..1_000 {
            o.stage([row(&format!("a{}", i % 3), 100 + i, i)]);
        }
        assert_eq!(o.len(), 3, "bounded by entities, not by rows staged");
        o.stage([row("a0", 50, -1)]);
        assert_eq!(
            o.rows()[0].values[0].1,
            FeatureValue::I64(999),
            "older row refused"
        );
        o.stage([row("a0", 1_099, 7)]);
        assert_eq!(
            o.rows()[0].values[0].1,
            FeatureValue::I64(7),
            "equal time: later wins"
        );

        let taken = o.take();
        assert!(o.is_empty());
        o.stage([row("a1", 2_000, 42)]);
        o.restage(taken);
        let rows = o.rows();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[1].entity, "a1");
        assert_eq!(
            rows[1].values[0].1,
            FeatureValue::I64(42),
            "newer staged row kept"
        );
    }
}
