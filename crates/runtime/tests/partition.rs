//! Partitioned replicas over a real journal: two replicas of a consumer together apply exactly
//! what one unpartitioned consumer applies, each key in one replica only, events without a key
//! in both, and each replica's position reaches the head even when the last events are the
//! other replica's.

use std::collections::BTreeMap;
use std::time::Duration;

use journal::{Bus, Delivery, InProcessBus, Journal};
use model::{AccountId, Event, OrderId, Timestamp};
use runtime::partition::owner_key;
use runtime::{Consumer, ConsumerMetrics, Partition, Partitioning, Runner, Spec, StoredPosition};
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct Never;

/// Orders per account and keyless events seen; its "store" is memory shared with the test.
#[derive(Default)]
struct Seen {
    per_account: BTreeMap<String, u64>,
    keyless: u64,
    position: u64,
}

#[derive(Clone, Default)]
struct Shared(std::sync::Arc<std::sync::Mutex<Seen>>);

impl Consumer for Shared {
    type Error = Never;
    fn apply(&mut self, batch: &[Delivery], _out: &mut Vec<Event>) -> Result<(), Never> {
        let mut s = self.0.lock().unwrap();
        for d in batch {
            match &d.event {
                Event::OrderAccepted { account, .. } => {
                    *s.per_account.entry(account.to_string()).or_default() += 1;
                }
                _ => s.keyless += 1,
            }
            s.position = d.seq;
        }
        Ok(())
    }
}

impl StoredPosition for Shared {
    fn stored_position(&self) -> Result<u64, Never> {
        Ok(self.0.lock().unwrap().position)
    }
}

fn accepted(n: u64, account: &str) -> Event {
    Event::OrderAccepted {
        order_id: OrderId(n),
        account: AccountId::new(account).unwrap(),
        ts: Timestamp::from_secs(1_700_000_000 + n as i64),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_apply_together_what_one_consumer_applies() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = Journal::open(&dir.path().join("events.db")).unwrap();
    let bus = InProcessBus::new(journal.clone());
    // 12 accounts of 8 owners (acct-0 and acct-1 share one, so do acct-2 and acct-3 ...),
    // interleaved with keyless events.
    let owners: std::collections::HashMap<String, String> = (0..12)
        .map(|i| {
            (
                format!("acct-{i}"),
                format!("owner-{}", i / 2 + i % 2 * (i / 8)),
            )
        })
        .collect();
    let mut n = 0;
    for round in 0..30u64 {
        for i in 0..12 {
            n += 1;
            bus.publish(accepted(n, &format!("acct-{}", (i + round) % 12)))
                .await
                .unwrap();
        }
        bus.publish(Event::ConfigChanged {
            by: "test".into(),
            section: "risk".into(),
            change: serde_json::json!({}),
            ts: Timestamp::from_secs(1),
        })
        .await
        .unwrap();
    }
    let head = journal.last_seq();
    let shutdown = CancellationToken::new();
    let metrics = telemetry::Metrics::new();
    let base = Runner::new(
        bus.clone(),
        ConsumerMetrics::register(&metrics),
        shutdown.clone(),
    );
    let mut runs = Vec::new();
    for (name, partition) in [
        ("whole", None),
        ("p0of2", Some(Partition::new(0, 2).unwrap())),
        ("p1of2", Some(Partition::new(1, 2).unwrap())),
    ] {
        let runner = match partition {
            Some(p) => base
                .clone()
                .partitioned(Partitioning::new(p, owner_key(owners.clone(), &[]))),
            None => base.clone(),
        };
        let seen = Shared::default();
        let mut spec = Spec::new(name, ">");
        spec.batch = 5;
        let (h, task) = runner.start_stored(spec, seen.clone()).await.unwrap();
        h.wait_for(head, Duration::from_secs(10)).await.unwrap();
        runs.push((h, task, seen));
    }
    let view = |i: usize| {
        let s = runs[i].2.0.lock().unwrap();
        (s.per_account.clone(), s.keyless)
    };
    let (whole, whole_keyless) = view(0);
    let (p0, k0) = view(1);
    let (p1, k1) = view(2);
    assert_eq!(whole.len(), 12);
    assert!(!p0.is_empty() && !p1.is_empty(), "{p0:?} {p1:?}");
    // Disjoint, and together the whole.
    assert!(p0.keys().all(|a| !p1.contains_key(a)), "{p0:?} {p1:?}");
    let mut union = p0.clone();
    union.extend(p1.clone());
    assert_eq!(union, whole);
    // An owner's accounts stay together.
    for (account, owner) in &owners {
        for (other, o2) in &owners {
            if owner == o2 {
                assert_eq!(p0.contains_key(account), p0.contains_key(other));
            }
        }
    }
    // Keyless events reach both.
    assert_eq!((k0, k1), (whole_keyless, whole_keyless));
    for (h, _, _) in &runs {
        assert_eq!(h.position(), head, "{} reached the head", h.name());
    }
    shutdown.cancel();
    for (_, task, _) in runs {
        task.await.unwrap().unwrap();
    }
    for name in ["whole", "p0of2", "p1of2"] {
        assert_eq!(journal.consumer_position(name), Some(head), "{name} acked");
    }
}
