//! Interned order keys (`account \x1f order_id`) and the orders kept under them.
//!
//! Every order key the scanner meets gets a small `Copy` id (`kid`); orders, fills, the
//! done-queue, spoofing accumulators and layering episodes refer to an order by its kid, so
//! the per-record work compares and hashes integers, and a key's text is stored once. The
//! slot of a kid holds the key's text and the order currently known under that key (if any).
//!
//! A kid keeps meaning the same key for as long as anything in the scanner refers to it, so
//! looking an order up by kid gives exactly what looking it up by the key's text would. Kids
//! nothing refers to any more are freed by [`OrderKeys::collect`] (run by the scanner when the
//! table has grown to twice what was referenced at the previous collection), so the table stays
//! bounded by the state that refers to it. A freed kid is reused lowest first: kids depend only
//! on the record sequence, and so does the snapshot.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::fxhash::FxMap;
use crate::scanner::Ord;

/// The table never collects below this many slots.
const MIN_GC: usize = 1024;

#[derive(Serialize, Deserialize)]
pub(crate) struct Slot {
    /// The key's text; `None` when the kid is free.
    key: Option<Arc<str>>,
    /// Byte offset of the order id in `key`.
    split: u32,
    /// Boxed: most slots (fills' keys, keys waiting to be collected) have no order.
    pub order: Option<Box<Ord>>,
}

pub(crate) struct OrderKeys {
    slots: Vec<Slot>,
    index: FxMap<Arc<str>, u32>,
    free: BinaryHeap<Reverse<u32>>,
    /// Collect when no kid is free and the table has this many slots.
    gc_at: usize,
}

impl Default for OrderKeys {
    fn default() -> Self {
        OrderKeys {
            slots: Vec::new(),
            index: FxMap::default(),
            free: BinaryHeap::new(),
            gc_at: MIN_GC,
        }
    }
}

impl OrderKeys {
    /// The kid of `key` (whose order id starts at byte `split`), interning it if new.
    pub fn intern(&mut self, key: &str, split: usize) -> u32 {
        if let Some(&kid) = self.index.get(key) {
            return kid;
        }
        let text: Arc<str> = Arc::from(key);
        let slot = Slot {
            key: Some(text.clone()),
            split: split as u32,
            order: None,
        };
        let kid = match self.free.pop() {
            Some(Reverse(kid)) => {
                self.slots[kid as usize] = slot;
                kid
            }
            None => {
                self.slots.push(slot);
                (self.slots.len() - 1) as u32
            }
        };
        self.index.insert(text, kid);
        kid
    }

    pub fn lookup(&self, key: &str) -> Option<u32> {
        self.index.get(key).copied()
    }

    /// The key's text (`account \x1f order_id`).
    pub fn key(&self, kid: u32) -> &str {
        self.slots
            .get(kid as usize)
            .and_then(|s| s.key.as_deref())
            .unwrap_or("")
    }

    /// The order id part of the key.
    pub fn order_id(&self, kid: u32) -> &str {
        self.slots
            .get(kid as usize)
            .and_then(|s| s.key.as_deref()?.get(s.split as usize..))
            .unwrap_or("")
    }

    pub fn order(&self, kid: u32) -> Option<&Ord> {
        self.slots.get(kid as usize)?.order.as_deref()
    }

    pub fn order_mut(&mut self, kid: u32) -> Option<&mut Ord> {
        self.slots.get_mut(kid as usize)?.order.as_deref_mut()
    }

    pub fn set_order(&mut self, kid: u32, o: Ord) {
        if let Some(s) = self.slots.get_mut(kid as usize) {
            s.order = Some(Box::new(o));
        }
    }

    pub fn take_order(&mut self, kid: u32) -> Option<Box<Ord>> {
        self.slots.get_mut(kid as usize)?.order.take()
    }

    /// Every order kept, with its kid, in kid order.
    pub fn orders(&self) -> impl Iterator<Item = (u32, &Ord)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| Some((i as u32, s.order.as_deref()?)))
    }

    /// Interned keys in use (not free).
    pub fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// Whether [`OrderKeys::collect`] is due: no kid is free and the table reached its limit.
    pub fn gc_due(&self) -> bool {
        self.free.is_empty() && self.slots.len() >= self.gc_at
    }

    /// Free every kid that has no order and is not marked (`referenced[kid]`; kids beyond its
    /// length count as unreferenced), then set the next limit to twice the kids kept.
    pub fn collect(&mut self, referenced: &[bool]) {
        for (i, s) in self.slots.iter_mut().enumerate() {
            if s.key.is_none() || s.order.is_some() || referenced.get(i).copied().unwrap_or(false) {
                continue;
            }
            if let Some(k) = s.key.take() {
                self.index.remove(&*k);
            }
            s.split = 0;
            self.free.push(Reverse(i as u32));
        }
        self.gc_at = (2 * self.len()).max(MIN_GC);
    }

    pub fn slots_len(&self) -> usize {
        self.slots.len()
    }
}

#[derive(Serialize)]
struct ReprRef<'a> {
    slots: &'a [Slot],
    gc_at: usize,
}

#[derive(Deserialize)]
struct Repr {
    slots: Vec<Slot>,
    gc_at: usize,
}

impl Serialize for OrderKeys {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ReprRef {
            slots: &self.slots,
            gc_at: self.gc_at,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for OrderKeys {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let r = Repr::deserialize(d)?;
        let mut index = FxMap::default();
        let mut free = BinaryHeap::new();
        for (i, s) in r.slots.iter().enumerate() {
            match &s.key {
                Some(k) => {
                    if s.split as usize > k.len() || !k.is_char_boundary(s.split as usize) {
                        return Err(D::Error::custom("order key split out of range"));
                    }
                    if index.insert(k.clone(), i as u32).is_some() {
                        return Err(D::Error::custom("duplicate order key in a snapshot"));
                    }
                }
                None => {
                    if s.order.is_some() {
                        return Err(D::Error::custom("an order under a free order key"));
                    }
                    free.push(Reverse(i as u32));
                }
            }
        }
        Ok(OrderKeys {
            slots: r.slots,
            index,
            free,
            gc_at: r.gc_at,
        })
    }
}
