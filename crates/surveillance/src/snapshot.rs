//! Serde helpers for the scanner snapshot (see the crate docs, "Snapshots").
//!
//! The snapshot must be canonical: the same scanner state always serializes to the same bytes,
//! whatever order its hash maps happen to iterate in (a restored map is rebuilt with a different
//! bucket layout). So hash maps are written as sequences of `(key, value)` pairs sorted by key
//! (which also allows tuple keys, which JSON objects cannot have), and the task heap as its
//! sorted contents. Nothing the scanner computes depends on hash-map iteration order, so
//! restoring from the sorted form behaves exactly like the original.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::{BuildHasher, Hash};

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::params::{Compiled, Params};

/// `HashMap<K, V>` as a key-sorted sequence of pairs.
pub(crate) mod sorted_map {
    use super::*;

    pub(crate) fn serialize<K, V, H, S>(m: &HashMap<K, V, H>, s: S) -> Result<S::Ok, S::Error>
    where
        K: Serialize + Ord,
        V: Serialize,
        S: Serializer,
    {
        let mut pairs: Vec<(&K, &V)> = m.iter().collect();
        pairs.sort_unstable_by(|a, b| a.0.cmp(b.0));
        s.collect_seq(pairs)
    }

    pub(crate) fn deserialize<'de, K, V, H, D>(d: D) -> Result<HashMap<K, V, H>, D::Error>
    where
        K: Deserialize<'de> + Eq + Hash,
        V: Deserialize<'de>,
        H: BuildHasher + Default,
        D: Deserializer<'de>,
    {
        let pairs: Vec<(K, V)> = Vec::deserialize(d)?;
        let n = pairs.len();
        let m: HashMap<K, V, H> = pairs.into_iter().collect();
        if m.len() != n {
            return Err(D::Error::custom("duplicate key in a snapshot map"));
        }
        Ok(m)
    }
}

/// A min-heap `BinaryHeap<Reverse<T>>` as its sorted contents.
pub(crate) mod sorted_heap {
    use super::*;

    pub(crate) fn serialize<T, S>(h: &BinaryHeap<Reverse<T>>, s: S) -> Result<S::Ok, S::Error>
    where
        T: Serialize + Ord,
        S: Serializer,
    {
        let mut items: Vec<&T> = h.iter().map(|r| &r.0).collect();
        items.sort_unstable();
        s.collect_seq(items)
    }

    pub(crate) fn deserialize<'de, T, D>(d: D) -> Result<BinaryHeap<Reverse<T>>, D::Error>
    where
        T: Deserialize<'de> + Ord,
        D: Deserializer<'de>,
    {
        let items: Vec<T> = Vec::deserialize(d)?;
        Ok(items.into_iter().map(Reverse).collect())
    }
}

/// The compiled parameters are written as the parameters they were compiled from and compiled
/// again (with the same checks) on restore.
impl Serialize for Compiled {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.p.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Compiled {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Params::deserialize(d)?.compile().map_err(D::Error::custom)
    }
}
