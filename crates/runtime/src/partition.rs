//! Partitioned replicas: N copies of one service over the same stream, each folding the events
//! of its share of the keys.
//!
//! A service that scales out names, per event, the key its state is grouped by (the compliance
//! scanner and ptrc: the owner of the account an order, fill or alert is about). Replica `i` of
//! `N` ([`Partition`]) applies an event when the key's stable hash ([`PartitionKey::of`],
//! FNV-1a 64, the same on every machine and run, unlike std's seeded hasher) modulo `N` is `i`;
//! events without a key (market data, administration, alert acknowledgements) go to every
//! replica, because every replica's state needs them. The consumer loop drops the other events
//! before [`crate::Consumer::apply`] and still moves its position past them, so checkpoints and
//! read barriers work as for an unpartitioned consumer.
//!
//! The filter runs in the consumer: every replica still reads the whole subject filter from the
//! bus (JetStream on Debian's NATS 2.9 cannot partition by a hash of a subject token), but its
//! state, work and stores hold only its share.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use model::Event;

use crate::RuntimeError;

/// The stable hash of a partition key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PartitionKey(u64);

impl PartitionKey {
    /// FNV-1a 64 of the key's UTF-8 bytes: fixed constants, so every replica, on every
    /// machine and after every restart, puts a key in the same partition.
    pub fn of(key: &str) -> PartitionKey {
        const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
        const PRIME: u64 = 0x0000_0100_0000_01b3;
        let mut h = OFFSET;
        for b in key.as_bytes() {
            h ^= u64::from(*b);
            h = h.wrapping_mul(PRIME);
        }
        PartitionKey(h)
    }

    pub fn hash(self) -> u64 {
        self.0
    }
}

/// Replica `index` of `count` (`0 <= index < count`), written `index/count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    index: u32,
    count: u32,
}

impl Partition {
    pub fn new(index: u32, count: u32) -> Result<Partition, RuntimeError> {
        if count == 0 || index >= count {
            return Err(RuntimeError::Partition {
                spec: format!("{index}/{count}"),
                reason: "needs 0 <= i < N".into(),
            });
        }
        Ok(Partition { index, count })
    }

    pub fn index(self) -> u32 {
        self.index
    }

    pub fn count(self) -> u32 {
        self.count
    }

    /// Whether this replica owns `key`.
    pub fn owns(self, key: PartitionKey) -> bool {
        key.0 % u64::from(self.count) == u64::from(self.index)
    }

    /// `p<i>of<N>`: for names (durable consumers, data folders) that must differ per replica
    /// and per partitioning (a replica of another N holds another share).
    pub fn label(self) -> String {
        format!("p{}of{}", self.index, self.count)
    }
}

impl FromStr for Partition {
    type Err = RuntimeError;

    fn from_str(s: &str) -> Result<Partition, RuntimeError> {
        let bad = |reason: &str| RuntimeError::Partition {
            spec: s.to_owned(),
            reason: reason.to_owned(),
        };
        let (i, n) = s
            .trim()
            .split_once('/')
            .ok_or_else(|| bad("write it i/N, e.g. 0/2"))?;
        let i: u32 = i.trim().parse().map_err(|_| bad("i is not a number"))?;
        let n: u32 = n.trim().parse().map_err(|_| bad("N is not a number"))?;
        Partition::new(i, n).map_err(|_| bad("needs 0 <= i < N"))
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The key an event is partitioned by; `None`: every replica needs it.
pub type KeyFn = Arc<dyn Fn(&Event) -> Option<PartitionKey> + Send + Sync>;

/// A replica's partition and its service's key function: what a [`crate::Runner`] filters its
/// consumers' events with.
#[derive(Clone)]
pub struct Partitioning {
    partition: Partition,
    key: KeyFn,
}

impl fmt::Debug for Partitioning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Partitioning")
            .field("partition", &self.partition)
            .finish_non_exhaustive()
    }
}

impl Partitioning {
    pub fn new(
        partition: Partition,
        key: impl Fn(&Event) -> Option<PartitionKey> + Send + Sync + 'static,
    ) -> Partitioning {
        Partitioning {
            partition,
            key: Arc::new(key),
        }
    }

    pub fn partition(&self) -> Partition {
        self.partition
    }

    /// Whether this replica applies `event`: it has no key, or its key is ours.
    pub fn keeps(&self, event: &Event) -> bool {
        (self.key)(event).is_none_or(|k| self.partition.owns(k))
    }
}

/// The account an order or fill event is about.
pub fn account_of(event: &Event) -> Option<&str> {
    match event {
        Event::OrderSubmitted { order } => Some(order.account.as_str()),
        Event::OrderAccepted { account, .. }
        | Event::OrderRejected { account, .. }
        | Event::OrderCanceled { account, .. }
        | Event::OrderExpired { account, .. }
        | Event::OrderTriggered { account, .. } => Some(account.as_str()),
        Event::OrderFilled(f) => Some(f.account.as_str()),
        _ => None,
    }
}

/// The owner-group key of the compliance scanner and ptrc: an order or fill by the beneficial
/// owner of its account (`owners`, an account not listed is its own owner), a compliance alert
/// by the `owner` its detector wrote; owners listed together in a related-owner group
/// (`groups`, which the detectors treat as one) share the key of the group's smallest name,
/// and overlapping groups merge. Every detector (and ptrc's per-owner tax lots) looks at one
/// account, owner or group at a time, so each replica sees all it needs of its keys.
pub fn owner_key(
    owners: impl IntoIterator<Item = (String, String)>,
    groups: &[Vec<String>],
) -> impl Fn(&Event) -> Option<PartitionKey> + Send + Sync + 'static {
    let canonical = merge_groups(groups);
    let owners: HashMap<String, String> = owners.into_iter().collect();
    move |event| {
        let owner = match event {
            Event::ComplianceAlert { alert, .. } => alert.get("owner")?.as_str()?,
            other => {
                let account = account_of(other)?;
                owners.get(account).map_or(account, String::as_str)
            }
        };
        let key = canonical.get(owner).map_or(owner, String::as_str);
        Some(PartitionKey::of(key))
    }
}

/// Owner -> the smallest name of its (merged) related group.
fn merge_groups(groups: &[Vec<String>]) -> BTreeMap<String, String> {
    // Union-find over names; the root of a set is its smallest name.
    let mut parent: BTreeMap<String, String> = BTreeMap::new();
    fn root(parent: &BTreeMap<String, String>, mut x: String) -> String {
        while let Some(p) = parent.get(&x).filter(|p| **p != x) {
            x = p.clone();
        }
        x
    }
    for group in groups {
        for name in group {
            parent.entry(name.clone()).or_insert_with(|| name.clone());
        }
        for pair in group.windows(2) {
            let (a, b) = (
                root(&parent, pair[0].clone()),
                root(&parent, pair[1].clone()),
            );
            if a != b {
                let (small, big) = if a < b { (a, b) } else { (b, a) };
                parent.insert(big, small);
            }
        }
    }
    let names: Vec<String> = parent.keys().cloned().collect();
    names
        .into_iter()
        .map(|n| {
            let r = root(&parent, n.clone());
            (n, r)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{AccountId, OrderId, Timestamp};

    #[test]
    fn partitions_parse_and_refuse_what_is_not_i_of_n() {
        let p: Partition = "1/3".parse().unwrap();
        assert_eq!((p.index(), p.count()), (1, 3));
        assert_eq!(p.to_string(), "1/3");
        assert_eq!(p.label(), "p1of3");
        for bad in ["", "2", "2/2", "3/2", "0/0", "a/2", "1/b", "-1/2"] {
            let err = bad.parse::<Partition>().unwrap_err().to_string();
            assert!(err.contains(&format!("{bad:?}")), "{bad}: {err}");
        }
    }

    #[test]
    fn every_key_lands_in_exactly_one_partition() {
        for count in 1..=7u32 {
            let parts: Vec<Partition> = (0..count)
                .map(|i| Partition::new(i, count).unwrap())
                .collect();
            let mut used = vec![0usize; count as usize];
            for k in 0..2_000 {
                let key = PartitionKey::of(&format!("account-{k}"));
                let owners: Vec<u32> = parts
                    .iter()
                    .filter(|p| p.owns(key))
                    .map(|p| p.index())
                    .collect();
                assert_eq!(owners.len(), 1, "key {k} of {count}: {owners:?}");
                used[owners[0] as usize] += 1;
            }
            // The hash spreads keys: no replica is left (nearly) idle.
            for (i, n) in used.iter().enumerate() {
                assert!(*n > 2_000 / count as usize / 2, "{i}/{count} got {n}");
            }
        }
    }

    #[test]
    fn the_hash_is_fnv1a_and_the_same_in_every_run() {
        // Published FNV-1a 64 test vectors: a seeded or changed hash would move keys between
        // replicas across restarts.
        assert_eq!(PartitionKey::of("").hash(), 0xcbf2_9ce4_8422_2325);
        assert_eq!(PartitionKey::of("a").hash(), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(PartitionKey::of("foobar").hash(), 0x8594_4171_f739_67e8);
    }

    fn accepted(account: &str) -> Event {
        Event::OrderAccepted {
            order_id: OrderId(1),
            account: AccountId::new(account).unwrap(),
            ts: Timestamp::from_millis(0),
        }
    }

    fn alert(owner: &str) -> Event {
        Event::ComplianceAlert {
            key: "k".into(),
            rule: "WASH_TRADE".into(),
            alert: serde_json::json!({"owner": owner}),
            ts: Timestamp::from_millis(0),
        }
    }

    #[test]
    fn the_owner_key_follows_owners_and_related_groups() {
        let owners: HashMap<String, String> = [("a1", "alice"), ("a2", "alice"), ("b1", "bob")]
            .into_iter()
            .map(|(a, o)| (a.to_owned(), o.to_owned()))
            .collect();
        let groups = vec![
            vec!["zed".to_owned(), "bob".to_owned()],
            vec!["yan".to_owned(), "zed".to_owned()],
        ];
        let key = owner_key(owners, &groups);
        let k = |e: &Event| key(e).unwrap();
        assert_eq!(k(&accepted("a1")), PartitionKey::of("alice"));
        assert_eq!(k(&accepted("a2")), PartitionKey::of("alice"));
        assert_eq!(k(&alert("alice")), PartitionKey::of("alice"));
        // An account with no owner listed is its own owner.
        assert_eq!(k(&accepted("solo")), PartitionKey::of("solo"));
        // bob, zed and yan are one group (the two groups overlap in zed): one key.
        for e in [accepted("b1"), alert("bob"), alert("zed"), alert("yan")] {
            assert_eq!(k(&e), PartitionKey::of("bob"));
        }
        let ack = Event::AlertAcknowledged {
            key: "k".into(),
            by: "c".into(),
            ts: Timestamp::from_millis(0),
        };
        assert_eq!(key(&ack), None, "an acknowledgement goes to every replica");
        let p = Partitioning::new(Partition::new(0, 2).unwrap(), |_: &Event| None);
        assert!(p.keeps(&ack));
    }
}
