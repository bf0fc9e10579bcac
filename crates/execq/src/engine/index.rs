//! The order-id index: id -> slot of the order table. An entry holds the slot number and, for
//! an id of up to [`INLINE`] bytes (the usual ones), a copy of the id, so that a lookup
//! compares in the table instead of following slot, boxed order and shared id (three cache
//! misses per lookup over a large table). A longer id is read from its slot, so it is held
//! once (a map keyed by the id would hold each of the ~250 000 settling orders' ids a second
//! time).

use std::hash::BuildHasher;

use foldhash::fast::FixedState;
use hashbrown::HashTable;

use super::settle::Slot;

/// Ids up to this length are copied into their entry (24 bytes with the slot and length).
const INLINE: usize = 19;
/// `Entry::len` of an id longer than [`INLINE`].
const LONG: u8 = u8::MAX;

#[derive(Debug, Clone, Copy)]
struct Entry {
    slot: u32,
    len: u8,
    bytes: [u8; INLINE],
}

impl Entry {
    fn new(slot: u32, id: &str) -> Entry {
        let mut bytes = [0; INLINE];
        let len = match bytes.get_mut(..id.len()) {
            Some(b) => {
                b.copy_from_slice(id.as_bytes());
                id.len() as u8
            }
            None => LONG,
        };
        Entry { slot, len, bytes }
    }

    /// The id's bytes if they are inline.
    fn inline(&self) -> Option<&[u8]> {
        (self.len != LONG).then(|| &self.bytes[..usize::from(self.len)])
    }

    /// Whether this entry is the id that `query` (an entry made of it) was made of: inline
    /// ids compare as fixed-size arrays (zero-padded, so with their lengths they are equal
    /// exactly when the ids are).
    fn is(&self, query: &Entry, id: &str, slots: &[Option<Slot>]) -> bool {
        if self.len != query.len {
            return false;
        }
        if self.len == LONG {
            id_at(slots, self.slot) == id
        } else {
            self.bytes == query.bytes
        }
    }
}

#[derive(Debug, Clone, Default)]
pub(super) struct IdIndex {
    table: HashTable<Entry>,
    hasher: FixedState,
}

/// The id of the order in slot `ix` ("" for an empty slot: the index never holds one).
fn id_at(slots: &[Option<Slot>], ix: u32) -> &str {
    match slots.get(ix as usize) {
        Some(Some(Slot::Full(o))) => &o.id,
        Some(Some(Slot::Settling(s))) => &s.id,
        _ => "",
    }
}

impl IdIndex {
    pub fn len(&self) -> usize {
        self.table.len()
    }

    fn hash(&self, id: &[u8]) -> u64 {
        self.hasher.hash_one(id)
    }

    pub fn get(&self, id: &str, slots: &[Option<Slot>]) -> Option<u32> {
        let hash = self.hash(id.as_bytes());
        let q = Entry::new(0, id);
        self.table
            .find(hash, |e| e.is(&q, id, slots))
            .map(|e| e.slot)
    }

    /// Indexes slot `ix` under the id it holds; `false` (and nothing changes) if that id is
    /// indexed already.
    pub fn insert(&mut self, ix: u32, slots: &[Option<Slot>]) -> bool {
        let id = id_at(slots, ix);
        let hash = self.hash(id.as_bytes());
        let q = Entry::new(ix, id);
        if self.table.find(hash, |e| e.is(&q, id, slots)).is_some() {
            return false;
        }
        let hasher = &self.hasher;
        self.table.insert_unique(hash, q, |e| match e.inline() {
            Some(b) => hasher.hash_one(b),
            None => hasher.hash_one(id_at(slots, e.slot).as_bytes()),
        });
        true
    }

    /// Removes `id` if it is indexed at slot `ix`.
    pub fn remove(&mut self, id: &str, ix: u32) {
        let hash = self.hash(id.as_bytes());
        if let Ok(entry) = self.table.find_entry(hash, |e| e.slot == ix) {
            entry.remove();
        }
    }
}
