//! The order-id index: id -> slot of the order table. It stores slot numbers only and reads
//! the ids from the slots, so an id is held once however many orders are held (a map keyed by
//! the id would hold each of the ~250 000 settling orders' ids a second time).

use std::hash::BuildHasher;

use foldhash::fast::FixedState;
use hashbrown::HashTable;

use super::settle::Slot;

#[derive(Debug, Clone, Default)]
pub(super) struct IdIndex {
    table: HashTable<u32>,
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

    pub fn get(&self, id: &str, slots: &[Option<Slot>]) -> Option<u32> {
        let hash = self.hasher.hash_one(id);
        self.table.find(hash, |&ix| id_at(slots, ix) == id).copied()
    }

    /// Indexes slot `ix` under the id it holds; `false` (and nothing changes) if that id is
    /// indexed already.
    pub fn insert(&mut self, ix: u32, slots: &[Option<Slot>]) -> bool {
        let id = id_at(slots, ix);
        let hash = self.hasher.hash_one(id);
        if self.table.find(hash, |&j| id_at(slots, j) == id).is_some() {
            return false;
        }
        let hasher = &self.hasher;
        self.table
            .insert_unique(hash, ix, |&j| hasher.hash_one(id_at(slots, j)));
        true
    }

    /// Removes `id` if it is indexed at slot `ix`.
    pub fn remove(&mut self, id: &str, ix: u32) {
        let hash = self.hasher.hash_one(id);
        if let Ok(entry) = self.table.find_entry(hash, |&j| j == ix) {
            entry.remove();
        }
    }
}
