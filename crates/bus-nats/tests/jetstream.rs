//! The outbox and NatsBus against a real NATS server (`TEST_NATS_URL`, default
//! nats://127.0.0.1:4222). Without a server the tests skip, except under `CI=true` where they
//! fail. Each test uses its own stream and subject prefix (the server is shared by parallel
//! tests) and deletes the stream at the end.

use std::collections::BTreeMap;
use std::time::Duration;

use async_nats::jetstream;
use bus_nats::{BusError, NatsBus, Outbox, StreamSpec};
use journal::{Bus, Delivery, InProcessBus, Journal, JournalError, StartAt, Subscription};
use model::{Decimal, Event};
use runtime::{Consumer, ConsumerMetrics, Runner, Snapshot, SnapshotPolicy, SnapshotStore, Spec};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

mod common;
use common::{event, nats};

/// A stream and prefix of this test's own.
fn spec(test: &str) -> StreamSpec {
    let id = format!("{}{}", std::process::id(), test.replace('_', ""));
    StreamSpec {
        stream: format!("T26TEST{id}"),
        prefix: format!("t26test{id}"),
        ..StreamSpec::default()
    }
}

async fn delete(client: &async_nats::Client, spec: &StreamSpec) {
    jetstream::new(client.clone())
        .delete_stream(&spec.stream)
        .await
        .expect("delete the test stream");
}

async fn journal_with(dir: &tempfile::TempDir, n: u64) -> Journal {
    let (journal, _) = Journal::open(&dir.path().join("events.db")).unwrap();
    if n > 0 {
        journal
            .append_batch((1..=n).map(event).collect())
            .await
            .unwrap();
    }
    journal
}

/// One test's world: a journal of `n` events, published by an outbox to the test's own stream,
/// and a NatsBus on it.
struct World {
    client: async_nats::Client,
    _dir: tempfile::TempDir,
    journal: Journal,
    spec: StreamSpec,
    outbox: Outbox,
    bus: NatsBus,
}

async fn world(test: &str, n: u64) -> Option<World> {
    let client = nats().await?;
    let dir = tempfile::tempdir().unwrap();
    let journal = journal_with(&dir, n).await;
    let spec = spec(test);
    let outbox = Outbox::new(client.clone(), spec.clone(), journal.clone())
        .await
        .unwrap();
    assert_eq!(outbox.sync().await.unwrap(), n);
    let bus = NatsBus::connect(client.clone(), spec.clone())
        .await
        .unwrap();
    Some(World {
        client,
        _dir: dir,
        journal,
        spec,
        outbox,
        bus,
    })
}

impl World {
    async fn publish(&self, seqs: std::ops::RangeInclusive<u64>) {
        let end = *seqs.end();
        self.journal
            .append_batch(seqs.map(event).collect())
            .await
            .unwrap();
        assert_eq!(self.outbox.sync().await.unwrap(), end);
    }

    async fn delete(&self) {
        delete(&self.client, &self.spec).await;
    }
}

async fn take(sub: &mut impl Subscription, n: usize) -> Vec<Delivery> {
    let mut out = Vec::new();
    while out.len() < n {
        let d = tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .expect("a delivery within 10 s")
            .unwrap();
        out.push(d);
    }
    out
}

/// Each delivery is event `seq` of the journal, on its subject, with the journal's commit time.
fn assert_stream(journal: &Journal, got: &[Delivery], seqs: impl IntoIterator<Item = u64>) {
    let seqs: Vec<u64> = seqs.into_iter().collect();
    assert_eq!(got.iter().map(|d| d.seq).collect::<Vec<_>>(), seqs);
    for d in got {
        let record = &journal.read_from(d.seq, 1).unwrap()[0];
        assert_eq!(d.event, event(d.seq), "seq {}", d.seq);
        assert_eq!(d.subject, d.event.subject(), "seq {}", d.seq);
        assert_eq!(d.recorded_at, record.recorded_at, "seq {}", d.seq);
    }
}

#[tokio::test]
async fn a_durable_consumer_receives_the_published_journal_in_order() {
    let Some(w) = world("inorder", 30).await else {
        return;
    };
    assert_eq!(w.bus.last_seq(), 30);
    let mut all = w
        .bus
        .subscribe("all", ">", StartAt::Beginning)
        .await
        .unwrap();
    assert_stream(&w.journal, &take(&mut all, 30).await, 1..=30);

    let mut orders_a = w
        .bus
        .subscribe("orders-a", "orders.a", StartAt::Sequence(10))
        .await
        .unwrap();
    let want: Vec<u64> = (10..=30).filter(|n| n % 3 != 0 && n % 2 == 0).collect();
    assert_stream(&w.journal, &take(&mut orders_a, want.len()).await, want);

    // Two alternatives (a server before 2.10 gets no filter and the subscription filters).
    let mut md_or_b = w
        .bus
        .subscribe("md-or-b", "md.> orders.b", StartAt::Beginning)
        .await
        .unwrap();
    let want: Vec<u64> = (1..=30).filter(|n| n % 3 == 0 || n % 2 == 1).collect();
    assert_stream(&w.journal, &take(&mut md_or_b, want.len()).await, want);

    // Events published later arrive too.
    w.publish(31..=33).await;
    assert_stream(&w.journal, &take(&mut all, 3).await, 31..=33);
    w.delete().await;
}

#[tokio::test]
async fn a_resubscribed_durable_resumes_after_its_last_ack() {
    let Some(w) = world("resume", 20).await else {
        return;
    };
    let mut sub = w.bus.subscribe("svc", ">", StartAt::Resume).await.unwrap();
    assert_stream(&w.journal, &take(&mut sub, 10).await, 1..=10);
    assert!(matches!(
        sub.ack(11).await,
        Err(JournalError::AckBeyondDelivered {
            seq: 11,
            delivered: 10
        })
    ));
    sub.ack(7).await.unwrap();
    drop(sub);

    let mut sub = w.bus.subscribe("svc", ">", StartAt::Resume).await.unwrap();
    assert_stream(&w.journal, &take(&mut sub, 13).await, 8..=20);
    sub.ack(20).await.unwrap();
    drop(sub);
    // Acked through the end: a resume waits for new events only.
    let mut sub = w.bus.subscribe("svc", ">", StartAt::Resume).await.unwrap();
    w.publish(21..=21).await;
    assert_stream(&w.journal, &take(&mut sub, 1).await, [21]);
    w.delete().await;
}

#[tokio::test]
async fn a_republish_after_an_outbox_crash_stores_nothing_twice() {
    let Some(w) = world("republish", 25).await else {
        return;
    };
    // The crash window: records published, the process dies before it knows. Publishing
    // them again stores nothing (message ids within the duplicate window).
    let records = w.journal.read_from(1, 100).unwrap();
    w.outbox.publish_records(&records).await.unwrap();
    w.outbox.publish_records(&records[10..]).await.unwrap();
    // A restarted outbox continues at the stream's end.
    let restarted = Outbox::new(w.client.clone(), w.spec.clone(), w.journal.clone())
        .await
        .unwrap();
    w.journal
        .append_batch((26..=28).map(event).collect())
        .await
        .unwrap();
    assert_eq!(restarted.sync().await.unwrap(), 28);

    let js = jetstream::new(w.client.clone());
    let state = js
        .get_stream(&w.spec.stream)
        .await
        .unwrap()
        .get_info()
        .await
        .unwrap()
        .state;
    assert_eq!(
        (state.messages, state.first_sequence, state.last_sequence),
        (28, 1, 28)
    );
    let mut all = w
        .bus
        .subscribe("all", ">", StartAt::Beginning)
        .await
        .unwrap();
    assert_stream(&w.journal, &take(&mut all, 28).await, 1..=28);

    // A journal with less than the stream holds is another journal: refused, naming the stream.
    let other_dir = tempfile::tempdir().unwrap();
    let other = journal_with(&other_dir, 5).await;
    let err = Outbox::new(w.client.clone(), w.spec.clone(), other)
        .await
        .unwrap()
        .sync()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            BusError::WrongStream {
                stream_last: 28,
                journal_last: 5,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains(&w.spec.stream), "{err}");
    w.delete().await;
}

#[tokio::test]
async fn a_record_missing_from_a_round_fails_the_round_and_the_next_sync_fills_it_in() {
    // Only a round's last record is acked: a record lost in the middle (here: never sent)
    // must make the round fail, naming the first record the stream lacks, and store nothing
    // after the gap; the next sync publishes from the stream's end.
    let Some(w) = world("gap", 0).await else {
        return;
    };
    w.journal
        .append_batch((1..=20).map(event).collect())
        .await
        .unwrap();
    let records = w.journal.read_from(1, 100).unwrap();
    w.outbox.publish_records(&records[..5]).await.unwrap();
    let err = w.outbox.publish_records(&records[6..]).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("publishing journal seq 6 (the stream ends at 5)"),
        "{err}"
    );
    let stream = || async {
        jetstream::new(w.client.clone())
            .get_stream(&w.spec.stream)
            .await
            .unwrap()
            .get_info()
            .await
            .unwrap()
            .state
    };
    let state = stream().await;
    assert_eq!((state.messages, state.last_sequence), (5, 5));

    assert_eq!(w.outbox.sync().await.unwrap(), 20);
    let state = stream().await;
    assert_eq!((state.messages, state.last_sequence), (20, 20));
    let mut all = w
        .bus
        .subscribe("all", ">", StartAt::Beginning)
        .await
        .unwrap();
    assert_stream(&w.journal, &take(&mut all, 20).await, 1..=20);
    w.delete().await;
}

#[tokio::test]
async fn a_filtered_consumer_moves_past_events_it_does_not_read() {
    // 33 is a trade, the last event: the position must move past it without a delivery.
    let Some(w) = world("scanned", 33).await else {
        return;
    };
    let mut orders = w
        .bus
        .subscribe("orders", "orders.*", StartAt::Beginning)
        .await
        .unwrap();
    let mut got = Vec::new();
    while orders.scanned() < 33 {
        let batch = tokio::time::timeout(Duration::from_secs(10), orders.next_batch(7))
            .await
            .expect("progress within 10 s")
            .unwrap();
        got.extend(batch);
    }
    assert_stream(&w.journal, &got, (1..=33).filter(|n| n % 3 != 0));
    orders.ack(33).await.unwrap();
    w.delete().await;
}

#[tokio::test]
async fn publishing_from_a_consumer_machine_is_refused_with_the_reason() {
    let Some(client) = nats().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let journal = journal_with(&dir, 1).await;
    let spec = spec("publish");
    Outbox::new(client.clone(), spec.clone(), journal)
        .await
        .unwrap();
    let bus = NatsBus::connect(client.clone(), spec.clone())
        .await
        .unwrap();
    let err = bus.publish(event(2)).await.unwrap_err().to_string();
    assert!(err.contains("journaled by the core"), "{err}");
    delete(&client, &spec).await;
    // A missing stream names itself and who creates it.
    let err = NatsBus::connect(client.clone(), spec.clone())
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains(&spec.stream) && err.contains("outbox"),
        "{err}"
    );
}

#[tokio::test]
async fn the_outbox_publishes_as_the_journal_commits() {
    let Some(client) = nats().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let journal = journal_with(&dir, 0).await;
    let spec = spec("run");
    let outbox = Outbox::new(client.clone(), spec.clone(), journal.clone())
        .await
        .unwrap();
    let mut published = outbox.published();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(outbox.run(shutdown.clone()));
    for n in 1..=40 {
        journal.append(event(n)).await.unwrap();
    }
    tokio::time::timeout(Duration::from_secs(10), published.wait_for(|p| *p == 40))
        .await
        .expect("published within 10 s")
        .unwrap();
    shutdown.cancel();
    task.await.unwrap().unwrap();
    let bus = NatsBus::connect(client.clone(), spec.clone())
        .await
        .unwrap();
    let mut all = bus.subscribe("all", ">", StartAt::Beginning).await.unwrap();
    assert_stream(&journal, &take(&mut all, 40).await, 1..=40);
    delete(&client, &spec).await;
}

/// Counts orders per account and the traded quantity: a snapshot consumer of the runtime.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
struct Tally {
    orders: BTreeMap<String, u64>,
    traded: Decimal,
    last_seq: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct Never;

impl Consumer for Tally {
    type Error = Never;
    fn apply(&mut self, batch: &[Delivery], _out: &mut Vec<Event>) -> Result<(), Never> {
        for d in batch {
            assert!(d.seq > self.last_seq, "seq {} applied twice", d.seq);
            self.last_seq = d.seq;
            match &d.event {
                Event::OrderAccepted { account, .. } => {
                    *self.orders.entry(account.to_string()).or_default() += 1;
                }
                Event::Trade(t) => self.traded += Decimal::from(t.quantity),
                _ => {}
            }
        }
        Ok(())
    }
}

impl Snapshot for Tally {
    const STATE_VERSION: u32 = 1;
}

/// Runs a Tally on `bus` until it has applied `upto`, then stops it; returns its state.
async fn run_tally<B: Bus>(bus: &B, snapshots: &std::path::Path, upto: u64) -> Tally {
    let shutdown = CancellationToken::new();
    let runner = Runner::new(
        bus.clone(),
        ConsumerMetrics::register(&telemetry::Metrics::new()),
        shutdown.clone(),
    );
    let mut spec = Spec::new("tally", "orders.* md.>");
    spec.batch = 8;
    let policy = SnapshotPolicy {
        every_events: 10,
        every: Duration::from_secs(3600),
        keep: 3,
    };
    let store = SnapshotStore::open(snapshots, "tally", 3).unwrap();
    let (handle, task) = runner
        .start_snapshotted(spec, store, policy, "test".into(), Tally::default)
        .await
        .unwrap();
    handle
        .wait_for(upto, Duration::from_secs(20))
        .await
        .unwrap();
    shutdown.cancel();
    task.await.unwrap().unwrap();
    handle.read(Tally::clone)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runtime_consumer_over_nats_ends_in_the_same_state_as_in_process() {
    let Some(w) = world("runtime", 50).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();

    // Over NATS: a run to 50, a restart from its snapshot, then 70 more events.
    let nats_snaps = dir.path().join("nats-snapshots");
    let first = run_tally(&w.bus, &nats_snaps, 50).await;
    assert_eq!(first.last_seq, 50);
    w.publish(51..=120).await;
    let over_nats = run_tally(&w.bus, &nats_snaps, 120).await;

    let local = run_tally(
        &InProcessBus::new(w.journal.clone()),
        &dir.path().join("local"),
        120,
    )
    .await;
    assert_eq!(over_nats, local);
    assert_eq!(local.orders.values().sum::<u64>(), 80);
    w.delete().await;
}
