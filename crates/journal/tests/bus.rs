//! The in-process bus over a real journal: wildcard filters, start positions, durable resume.

mod common;

use std::path::PathBuf;

use journal::{Bus, Delivery, InProcessBus, Journal, JournalError, StartAt, Subscription};

fn db(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("events.db")
}

fn open(dir: &tempfile::TempDir) -> InProcessBus {
    InProcessBus::new(Journal::open(&db(dir)).unwrap().0)
}

/// Publishes a fixed mix of subjects; returns them in publish order as (seq, subject).
async fn publish_mix(bus: &InProcessBus) -> Vec<(u64, String)> {
    let events = vec![
        common::trade("binance", "BTCUSDT", 1), // md.trade.binance.BTCUSDT
        common::trade("coinbase", "BTC-USD", 2), // md.trade.coinbase.BTC-USD
        common::accepted("acct1", 3),           // orders.acct1
        common::fill("acct1", 4),               // fills.acct1
        common::trade("coinbase", "BTCUSDT", 5), // md.trade.coinbase.BTCUSDT
        common::accepted("acct2", 6),           // orders.acct2
        common::fill("acct2", 7),               // fills.acct2
        common::trade("binance", "ETHUSDT", 8), // md.trade.binance.ETHUSDT
    ];
    let mut out = Vec::new();
    for e in events {
        let subject = e.subject();
        out.push((bus.publish(e).await.unwrap(), subject));
    }
    out
}

async fn take(sub: &mut impl Subscription, n: usize) -> Vec<Delivery> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(sub.next().await.unwrap());
    }
    out
}

fn subjects(ds: &[Delivery]) -> Vec<&str> {
    ds.iter().map(|d| d.subject.as_str()).collect()
}

#[tokio::test]
async fn wildcard_filters_select_subjects_with_nats_semantics() {
    let dir = tempfile::tempdir().unwrap();
    let bus = open(&dir);
    let published = publish_mix(&bus).await;
    assert_eq!(published[0].1, "md.trade.binance.BTCUSDT");

    let mut star = bus
        .subscribe("star", "md.trade.*.BTCUSDT", StartAt::Beginning)
        .await
        .unwrap();
    let got = take(&mut star, 2).await;
    assert_eq!(
        subjects(&got),
        ["md.trade.binance.BTCUSDT", "md.trade.coinbase.BTCUSDT"]
    );
    assert_eq!(got.iter().map(|d| d.seq).collect::<Vec<_>>(), [1, 5]);
    assert_eq!(got[1].event, common::trade("coinbase", "BTCUSDT", 5));

    let mut rest = bus
        .subscribe("rest", "md.>", StartAt::Beginning)
        .await
        .unwrap();
    let got = take(&mut rest, 4).await;
    assert_eq!(got.iter().map(|d| d.seq).collect::<Vec<_>>(), [1, 2, 5, 8]);

    let mut acct1 = bus
        .subscribe("acct1", "*.acct1", StartAt::Beginning)
        .await
        .unwrap();
    assert_eq!(
        subjects(&take(&mut acct1, 2).await),
        ["orders.acct1", "fills.acct1"]
    );

    let mut fills = bus
        .subscribe("fills", "fills.*", StartAt::Beginning)
        .await
        .unwrap();
    assert_eq!(
        subjects(&take(&mut fills, 2).await),
        ["fills.acct1", "fills.acct2"]
    );

    // Nothing else matches: the next delivery is the next matching publish, not an old event.
    let seq = bus.publish(common::fill("acct9", 9)).await.unwrap();
    let next = fills.next().await.unwrap();
    assert_eq!((next.seq, next.subject.as_str()), (seq, "fills.acct9"));

    assert!(matches!(
        bus.subscribe("bad", "md.>.x", StartAt::Beginning).await,
        Err(JournalError::InvalidFilter { .. })
    ));
    assert!(matches!(
        bus.subscribe("a.b", "md.>", StartAt::Beginning).await,
        Err(JournalError::InvalidConsumer { .. })
    ));
}

#[tokio::test]
async fn start_positions_beginning_sequence_and_new() {
    let dir = tempfile::tempdir().unwrap();
    let bus = open(&dir);
    publish_mix(&bus).await;

    let mut from3 = bus
        .subscribe("from3", ">", StartAt::Sequence(3))
        .await
        .unwrap();
    assert_eq!(from3.next().await.unwrap().seq, 3);

    let mut new = bus.subscribe("new", ">", StartAt::New).await.unwrap();
    let seq = bus.publish(common::accepted("acct3", 100)).await.unwrap();
    assert_eq!(seq, 9);
    let d = new.next().await.unwrap();
    assert_eq!((d.seq, d.event), (9, common::accepted("acct3", 100)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_subscriber_receives_events_published_after_it_waits() {
    let dir = tempfile::tempdir().unwrap();
    let bus = open(&dir);
    let mut sub = bus
        .subscribe("live", "orders.>", StartAt::New)
        .await
        .unwrap();
    let reader = tokio::spawn(async move { take(&mut sub, 100).await });
    for n in 0..200u64 {
        // Half of the events do not match the filter.
        let e = if n.is_multiple_of(2) {
            common::accepted("acct1", n)
        } else {
            common::fill("acct1", n)
        };
        bus.publish(e).await.unwrap();
    }
    let got = reader.await.unwrap();
    let expected: Vec<u64> = (0..100).map(|i| 2 * i + 1).collect();
    assert_eq!(got.iter().map(|d| d.seq).collect::<Vec<_>>(), expected);
    assert!(got.iter().all(|d| d.subject == "orders.acct1"));
}

#[tokio::test]
async fn a_durable_consumer_resumes_after_its_last_ack_across_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let bus = open(&dir);
        for n in 0..50 {
            bus.publish(common::mixed(n)).await.unwrap();
        }
        let mut sub = bus.subscribe("oms", ">", StartAt::Resume).await.unwrap();
        let got = take(&mut sub, 20).await;
        assert_eq!(got.first().map(|d| d.seq), Some(1));
        sub.ack(got[19].seq).await.unwrap(); // processed 1..=20
        // Acks never go backwards.
        sub.ack(5).await.unwrap();
        assert_eq!(bus.journal().consumer_position("oms"), Some(20));
        // Delivered but not acked: 21..=25 must come again after the restart.
        take(&mut sub, 5).await;
        // Cannot ack what was not delivered.
        assert!(matches!(
            sub.ack(40).await,
            Err(JournalError::AckBeyondDelivered {
                seq: 40,
                delivered: 25
            })
        ));
        // One active subscription per durable consumer.
        assert!(matches!(
            bus.subscribe("oms", ">", StartAt::Resume).await,
            Err(JournalError::ConsumerBusy { .. })
        ));
        drop(sub);
        bus.journal().shutdown().unwrap();
    }

    let dir_bus = open(&dir);
    let mut sub = dir_bus
        .subscribe("oms", ">", StartAt::Resume)
        .await
        .unwrap();
    let got = take(&mut sub, 30).await;
    let seqs: Vec<u64> = got.iter().map(|d| d.seq).collect();
    assert_eq!(seqs, (21..=50).collect::<Vec<_>>());
    for d in &got {
        assert_eq!(d.event, common::mixed(d.seq - 1));
    }

    // A consumer that never acked resumes from the beginning.
    let mut fresh = dir_bus
        .subscribe("fresh", ">", StartAt::Resume)
        .await
        .unwrap();
    assert_eq!(fresh.next().await.unwrap().seq, 1);
}

#[tokio::test]
async fn two_consumers_progress_and_resume_independently() {
    let dir = tempfile::tempdir().unwrap();
    {
        let bus = open(&dir);
        for n in 0..40 {
            bus.publish(common::mixed(n)).await.unwrap();
        }
        let mut a = bus.subscribe("a", ">", StartAt::Beginning).await.unwrap();
        let mut b = bus.subscribe("b", ">", StartAt::Beginning).await.unwrap();
        let a_got = take(&mut a, 30).await;
        let b_got = take(&mut b, 10).await;
        // Both see the same stream from the start, whatever the other did.
        assert_eq!(a_got[..10], b_got[..]);
        a.ack(30).await.unwrap();
        b.ack(10).await.unwrap();
        bus.journal().flush().await.unwrap();
    }
    let bus = open(&dir);
    let mut a = bus.subscribe("a", ">", StartAt::Resume).await.unwrap();
    let mut b = bus.subscribe("b", ">", StartAt::Resume).await.unwrap();
    assert_eq!(a.next().await.unwrap().seq, 31);
    assert_eq!(b.next().await.unwrap().seq, 11);
}

#[tokio::test]
async fn a_subscription_ends_with_closed_after_shutdown_once_drained() {
    let dir = tempfile::tempdir().unwrap();
    let bus = open(&dir);
    let mut sub = bus.subscribe_ephemeral(">", StartAt::Beginning).unwrap();
    bus.publish(common::mixed(0)).await.unwrap();
    bus.journal().shutdown().unwrap();
    assert_eq!(sub.next().await.unwrap().seq, 1);
    assert!(matches!(sub.next().await, Err(JournalError::Closed)));
    assert!(matches!(
        bus.subscribe_ephemeral(">", StartAt::Resume),
        Err(JournalError::ResumeWithoutDurable)
    ));
}
