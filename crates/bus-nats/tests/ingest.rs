//! Market data and consumer answers from other machines into the core's journal, over the
//! ingest stream of a real NATS server (`TEST_NATS_URL`; skipped without one, failing under
//! `CI=true`). Each test uses its own streams and deletes them at the end.

use std::time::Duration;

use async_nats::jetstream;
use bus_nats::{INGEST_CONSUMER, Ingest, IngestPublisher, IngestSpec, NatsBus, Outbox, StreamSpec};
use journal::{Bus, Journal};
use model::Event;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

mod common;
use common::{event, nats};

fn specs(test: &str) -> (IngestSpec, StreamSpec) {
    let id = format!("{}{test}", std::process::id());
    (
        IngestSpec {
            stream: format!("T26INGEST{id}"),
            prefix: format!("t26ingest{id}"),
            ..IngestSpec::default()
        },
        StreamSpec {
            stream: format!("T26EVENTS{id}"),
            prefix: format!("t26events{id}"),
            ..StreamSpec::default()
        },
    )
}

async fn delete(client: &async_nats::Client, streams: &[&str]) {
    let js = jetstream::new(client.clone());
    for s in streams {
        let _ = js.delete_stream(s).await;
    }
}

/// Every event of the journal, in order.
fn journaled(journal: &Journal) -> Vec<Event> {
    journal
        .read_from(1, 100_000)
        .unwrap()
        .into_iter()
        .map(|r| r.event)
        .collect()
}

async fn wait_for_len(journal: &Journal, n: u64) {
    for _ in 0..200 {
        if journal.last_seq() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("journal holds {} events, expected {n}", journal.last_seq());
}

#[tokio::test]
async fn published_market_data_is_journaled_once_in_order_across_core_restarts() {
    let Some(client) = nats().await else { return };
    let (ingest_spec, _) = specs("order");
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = Journal::open(&dir.path().join("events.db")).unwrap();

    // The marketdata side: 300 events through the channel the feeds fill.
    let publisher = IngestPublisher::new(client.clone(), ingest_spec.clone())
        .await
        .unwrap();
    let (tx, rx) = mpsc::channel(64);
    let feed_stop = CancellationToken::new();
    let feed = tokio::spawn(publisher.run(rx, feed_stop.clone()));
    for n in 1..=300 {
        tx.send(event(n)).await.unwrap();
    }
    drop(tx);
    assert_eq!(feed.await.unwrap().unwrap(), 300);

    // The core takes the first 100 "before a crash": journaled with their position, never
    // acked to NATS (as if the process died between the commit and the ack).
    journal
        .append_from_source((1..=100).map(event).collect(), INGEST_CONSUMER, 100)
        .await
        .unwrap();
    assert_eq!(journal.source_position(INGEST_CONSUMER), 100);

    // The restarted core goes on after what the journal holds, not after the NATS ack floor.
    for round in 0..2 {
        let stop = CancellationToken::new();
        let ingest = Ingest::new(client.clone(), ingest_spec.clone(), journal.clone())
            .await
            .unwrap();
        let task = tokio::spawn(ingest.run(stop.clone()));
        wait_for_len(&journal, 300).await;
        // Give a second round the chance to (wrongly) journal anything again.
        tokio::time::sleep(Duration::from_millis(if round == 0 { 0 } else { 1500 })).await;
        stop.cancel();
        task.await.unwrap().unwrap();
    }
    assert_eq!(
        journaled(&journal),
        (1..=300).map(event).collect::<Vec<_>>()
    );
    assert_eq!(journal.source_position(INGEST_CONSUMER), 300);
    // The source position is no consumer of the journal: it never holds back the archive.
    assert!(
        !journal
            .stored_consumer_positions()
            .unwrap()
            .keys()
            .any(|k| k.contains(INGEST_CONSUMER))
    );

    // Reopened from disk, the position is still there.
    journal.shutdown().unwrap();
    drop(journal);
    let (journal, _) = Journal::open(&dir.path().join("events.db")).unwrap();
    assert_eq!(journal.source_position(INGEST_CONSUMER), 300);
    journal.shutdown().unwrap();
    delete(&client, &[&ingest_spec.stream]).await;
}

#[tokio::test]
async fn a_consumer_service_publishes_through_the_core_and_learns_the_journal_sequence() {
    let Some(client) = nats().await else { return };
    let (ingest_spec, stream_spec) = specs("answer");
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = Journal::open(&dir.path().join("events.db")).unwrap();
    journal
        .append_batch((1..=5).map(event).collect())
        .await
        .unwrap();
    let stop = CancellationToken::new();
    // The core: outbox out, ingest in.
    let outbox = Outbox::new(client.clone(), stream_spec.clone(), journal.clone())
        .await
        .unwrap();
    let outbox_task = tokio::spawn(outbox.run(stop.clone()));
    let ingest = Ingest::new(client.clone(), ingest_spec.clone(), journal.clone())
        .await
        .unwrap();
    let ingest_task = tokio::spawn(ingest.run(stop.clone()));

    // A consumer service's bus, able to answer with events.
    let bus = NatsBus::connect(client.clone(), stream_spec.clone())
        .await
        .unwrap()
        .with_ingest(
            IngestPublisher::new(client.clone(), ingest_spec.clone())
                .await
                .unwrap(),
        );
    let seq = bus.publish(event(6)).await.unwrap();
    assert_eq!(
        seq, 6,
        "the answer is the journal sequence the core gave it"
    );
    assert_eq!(journal.read_from(6, 1).unwrap()[0].event, event(6));
    bus.publish_all((7..=9).map(event).collect()).await.unwrap();
    wait_for_len(&journal, 9).await;
    assert_eq!(journaled(&journal), (1..=9).map(event).collect::<Vec<_>>());

    stop.cancel();
    outbox_task.await.unwrap().unwrap();
    ingest_task.await.unwrap().unwrap();
    journal.shutdown().unwrap();
    delete(&client, &[&ingest_spec.stream, &stream_spec.stream]).await;
}
