//! Market data from other machines into the core's journal.
//!
//! The `marketdata` service normalizes exchange messages and hands the events to an
//! [`IngestPublisher`], which stores them in the ingest stream (`TRADE2026_INGEST`, subjects
//! `<ingest prefix>.<event subject>`). The core's [`Ingest`] pulls them and journals each batch
//! together with the ingest-stream sequence it reaches ([`Journal::append_from_source`]), in one
//! transaction: a batch redelivered after a crash is recognised by that position, so every
//! message is journaled exactly once. Only then is it acked to NATS.
//!
//! The ingest stream is separate from the event stream on purpose: the event stream holds only
//! what the journal committed, in journal order (stream sequence = journal sequence).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::ConsumerErrorKind;
use async_nats::jetstream::{self, ErrorCode};
use futures_util::StreamExt;
use journal::{Journal, JournalError};
use model::Event;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::BusError;

/// A header naming the inbox the core answers with the journal sequence once it journaled
/// the message (a read-your-writes answer for a consumer service's HTTP request).
pub const NOTIFY_HEADER: &str = "Trade2026-Notify";
/// The core's durable consumer on the ingest stream, and its source name in the journal.
pub const INGEST_CONSUMER: &str = "core-ingest";
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long [`IngestPublisher::publish`] retries before it gives up with the error.
pub const OUTAGE_LIMIT: Duration = Duration::from_secs(120);
/// Messages journaled per transaction at most.
const BATCH: usize = 4_096;
/// How long a caught-up pull waits for the next message.
const WAIT: Duration = Duration::from_secs(1);

/// The ingest stream and its subjects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestSpec {
    pub stream: String,
    /// Events are published on `<prefix>.<event subject>`; must not lie under the event
    /// stream's prefix.
    pub prefix: String,
    /// How long the stream keeps messages (the core takes them within seconds; this only
    /// bounds what a core that is down for long can still catch up on).
    pub max_age: Duration,
    /// How long the stream remembers message ids (a publisher's retry stores nothing twice).
    pub duplicate_window: Duration,
}

impl Default for IngestSpec {
    fn default() -> Self {
        IngestSpec {
            stream: "TRADE2026_INGEST".to_owned(),
            prefix: "trade2026-ingest".to_owned(),
            max_age: Duration::from_secs(7 * 24 * 3600),
            duplicate_window: Duration::from_secs(10 * 60),
        }
    }
}

impl IngestSpec {
    /// Creates the stream if it does not exist.
    pub async fn ensure(
        &self,
        js: &jetstream::Context,
    ) -> Result<jetstream::stream::Stream, BusError> {
        crate::create_stream(
            js,
            jetstream::stream::Config {
                name: self.stream.clone(),
                subjects: vec![format!("{}.>", self.prefix)],
                storage: jetstream::stream::StorageType::File,
                max_age: self.max_age,
                duplicate_window: self.duplicate_window,
                ..Default::default()
            },
        )
        .await
    }
}

/// Publishes events to the ingest stream: the `marketdata` service's feeds, and events a
/// consumer service publishes in answer (compliance alerts and their acknowledgements).
pub struct IngestPublisher {
    client: async_nats::Client,
    js: jetstream::Context,
    spec: IngestSpec,
    /// Message ids are `<run>-<n>`: unique per process run, so a retry of a publish whose ack
    /// was lost is a duplicate the stream drops, and two runs never collide.
    run: String,
    next: AtomicU64,
}

impl IngestPublisher {
    pub async fn new(client: async_nats::Client, spec: IngestSpec) -> Result<Self, BusError> {
        let js = jetstream::new(client.clone());
        spec.ensure(&js).await?;
        let run = format!(
            "{:x}-{:x}",
            std::process::id(),
            model::Timestamp::now().as_nanos()
        );
        Ok(IngestPublisher {
            client,
            js,
            spec,
            run,
            next: AtomicU64::new(0),
        })
    }

    /// Publishes `events` and waits until the stream stored every one of them, retrying
    /// through a NATS outage of up to `OUTAGE_LIMIT` (two minutes) (a retry stores nothing twice: the ids
    /// already stored are answered "duplicate").
    pub async fn publish(&self, events: &[Event]) -> Result<(), BusError> {
        let first = self.next.fetch_add(events.len() as u64, Ordering::AcqRel);
        let ids: Vec<u64> = (first..first + events.len() as u64).collect();
        let started = std::time::Instant::now();
        let mut backoff = MIN_BACKOFF;
        loop {
            match self.publish_ids(events, &ids, None).await {
                Ok(()) => return Ok(()),
                Err(e) if started.elapsed() >= OUTAGE_LIMIT => return Err(e),
                Err(e) => {
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "cannot publish to the ingest stream; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// Publishes one event and waits until the core journaled it; returns its journal
    /// sequence, or `None` when the core did not confirm within `wait` (the event is stored
    /// in the ingest stream and the core journals it when it can).
    pub async fn publish_journaled(
        &self,
        event: &Event,
        wait: Duration,
    ) -> Result<Option<u64>, BusError> {
        let inbox = self.client.new_inbox();
        let mut replies = self
            .client
            .subscribe(inbox.clone())
            .await
            .map_err(|e| BusError::nats("subscribing to the journal confirmation", e))?;
        let id = self.next.fetch_add(1, Ordering::AcqRel);
        self.publish_ids(std::slice::from_ref(event), &[id], Some(&inbox))
            .await?;
        match tokio::time::timeout(wait, replies.next()).await {
            Ok(Some(reply)) => Ok(std::str::from_utf8(&reply.payload)
                .ok()
                .and_then(|s| s.parse().ok())),
            _ => Ok(None),
        }
    }

    async fn publish_ids(
        &self,
        events: &[Event],
        ids: &[u64],
        notify: Option<&str>,
    ) -> Result<(), BusError> {
        let mut acks = Vec::with_capacity(events.len());
        for (event, id) in events.iter().zip(ids) {
            let payload = serde_json::to_vec(event).map_err(JournalError::Serialize)?;
            let mut message = PublishMessage::build()
                .payload(payload.into())
                .message_id(format!("{}-{id}", self.run));
            if let Some(inbox) = notify {
                message = message.header(NOTIFY_HEADER, inbox);
            }
            let ack = self
                .js
                .send_publish(format!("{}.{}", self.spec.prefix, event.subject()), message)
                .await
                .map_err(|e| BusError::nats(format!("publishing to {}", self.spec.stream), e))?;
            acks.push(ack);
        }
        for ack in acks {
            ack.await
                .map_err(|e| BusError::nats(format!("publishing to {}", self.spec.stream), e))?;
        }
        Ok(())
    }

    /// Publishes what `rx` delivers until it closes or `shutdown`; NATS being down only delays
    /// it (the feeds slow down behind the full channel, nothing is dropped). Returns how many
    /// events were stored.
    pub async fn run(
        self,
        mut rx: mpsc::Receiver<Event>,
        shutdown: CancellationToken,
    ) -> Result<u64, BusError> {
        let mut total = 0u64;
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            tokio::select! {
                // At shutdown, what the feeds already handed over is still published.
                _ = shutdown.cancelled() => {
                    while batch.len() < BATCH && let Ok(event) = rx.try_recv() {
                        batch.push(event);
                    }
                }
                _ = rx.recv_many(&mut batch, BATCH) => {}
            };
            if batch.is_empty() {
                return Ok(total);
            }
            let mut backoff = MIN_BACKOFF;
            let first = self.next.fetch_add(batch.len() as u64, Ordering::AcqRel);
            let ids: Vec<u64> = (first..first + batch.len() as u64).collect();
            loop {
                match self.publish_ids(&batch, &ids, None).await {
                    Ok(()) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "marketdata cannot publish to NATS; retrying");
                        tokio::select! {
                            _ = shutdown.cancelled() => return Ok(total),
                            _ = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                    }
                }
            }
            total += batch.len() as u64;
            batch.clear();
        }
    }
}

/// Journals what the ingest stream holds (the core's side): exactly once, in stream order.
pub struct Ingest {
    client: async_nats::Client,
    stream: jetstream::stream::Stream,
    spec: IngestSpec,
    journal: Journal,
}

impl Ingest {
    /// Attaches to (or creates) the ingest stream.
    pub async fn new(
        client: async_nats::Client,
        spec: IngestSpec,
        journal: Journal,
    ) -> Result<Ingest, BusError> {
        let js = jetstream::new(client.clone());
        let stream = spec.ensure(&js).await?;
        Ok(Ingest {
            client,
            stream,
            spec,
            journal,
        })
    }

    /// The last ingest-stream sequence journaled.
    pub fn position(&self) -> u64 {
        self.journal.source_position(INGEST_CONSUMER)
    }

    /// Journals the stream until `shutdown`. NATS outages are waited out (the consumer is
    /// created afresh after the journaled position); only a failing journal stops it.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), BusError> {
        let mut backoff = MIN_BACKOFF;
        loop {
            let err = match self.consumer().await {
                Ok(pull) => match self.drain(&pull, &shutdown).await {
                    Ok(()) => return Ok(()),
                    Err(BusError::Journal(e)) => return Err(BusError::Journal(e)),
                    Err(e) => e,
                },
                Err(e) => e,
            };
            tracing::warn!(error = %err, retry_in_ms = backoff.as_millis() as u64, "core cannot read market data from NATS; retrying");
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// The durable consumer, created afresh right after the journaled position (the journal,
    /// not the server's ack floor, says what was taken: a crash between the journal commit and
    /// the NATS ack must not take a message twice).
    async fn consumer(&self) -> Result<PullConsumer, BusError> {
        match self.stream.delete_consumer(INGEST_CONSUMER).await {
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ConsumerErrorKind::JetStream(ref j) if j.error_code() == ErrorCode::CONSUMER_NOT_FOUND) =>
                {}
            Err(e) => {
                return Err(BusError::nats(
                    format!("deleting consumer {INGEST_CONSUMER}"),
                    e,
                ));
            }
        }
        self.stream
            .create_consumer(pull::Config {
                durable_name: Some(INGEST_CONSUMER.to_owned()),
                deliver_policy: DeliverPolicy::ByStartSequence {
                    start_sequence: self.position() + 1,
                },
                ack_policy: AckPolicy::All,
                max_ack_pending: -1,
                ..Default::default()
            })
            .await
            .map_err(|e| BusError::nats(format!("creating consumer {INGEST_CONSUMER}"), e))
    }

    async fn drain(
        &self,
        pull: &PullConsumer,
        shutdown: &CancellationToken,
    ) -> Result<(), BusError> {
        loop {
            let mut messages = tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                m = deadline(async { collect(pull.fetch().max_messages(BATCH).messages().await).await }) => m?,
            };
            if messages.is_empty() {
                messages = tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    m = deadline(async { collect(pull.batch().max_messages(1).expires(WAIT).messages().await).await }) => m?,
                };
            }
            let Some(last) = messages.last() else {
                continue;
            };
            let last_seq = stream_seq(last, &self.spec)?;
            let position = self.position();
            let mut events = Vec::with_capacity(messages.len());
            let mut notify = Vec::new();
            for m in &messages {
                let seq = stream_seq(m, &self.spec)?;
                if seq <= position {
                    continue; // journaled before a restart; only its ack was missing
                }
                match serde_json::from_slice::<Event>(&m.payload) {
                    Ok(event) => {
                        if let Some(inbox) = m.headers.as_ref().and_then(|h| h.get(NOTIFY_HEADER)) {
                            notify.push((events.len() as u64, inbox.to_string()));
                        }
                        events.push(event);
                    }
                    // One bad message must not stop market data for everyone: it is skipped
                    // (counted past by the position) and reported.
                    Err(e) => {
                        tracing::warn!(stream = %self.spec.stream, seq, subject = %m.subject, error = %e, "ingest message is not an event; skipped")
                    }
                }
            }
            if last_seq > position {
                let range = self
                    .journal
                    .append_from_source(events, INGEST_CONSUMER, last_seq)
                    .await?;
                for (index, inbox) in notify {
                    let seq = range.start() + index;
                    // Best effort: the publisher falls back to "journaled later".
                    let _ = self.client.publish(inbox, seq.to_string().into()).await;
                }
            }
            if let Err(e) = last.double_ack().await {
                // The next ack covers it; a redelivery is skipped by the position.
                tracing::warn!(seq = last_seq, error = %e, "NATS ack of ingested market data failed");
            }
        }
    }
}

fn stream_seq(m: &jetstream::Message, spec: &IngestSpec) -> Result<u64, BusError> {
    m.info()
        .map(|i| i.stream_sequence)
        .map_err(|e| BusError::BadMessage {
            stream: spec.stream.clone(),
            stream_seq: 0,
            reason: format!("no JetStream metadata: {e}"),
        })
}

/// A pull lost in a disconnect is never answered: give up on it after a deadline (the caller
/// recreates the consumer after the journaled position).
async fn deadline(
    pull: impl std::future::Future<Output = Result<Vec<jetstream::Message>, BusError>>,
) -> Result<Vec<jetstream::Message>, BusError> {
    tokio::time::timeout(crate::bus::PULL_DEADLINE, pull)
        .await
        .unwrap_or_else(|_| {
            Err(BusError::nats(
                "pulling market data",
                "pull request unanswered (NATS restarted?)",
            ))
        })
}

async fn collect<E: std::fmt::Display>(
    batch: Result<pull::Batch, E>,
) -> Result<Vec<jetstream::Message>, BusError> {
    let mut batch = batch.map_err(|e| BusError::nats("pulling market data", e))?;
    let mut out = Vec::new();
    while let Some(m) = batch.next().await {
        match m {
            Ok(m) => out.push(m),
            Err(e) if out.is_empty() => return Err(BusError::nats("pulling market data", e)),
            Err(_) => break,
        }
    }
    Ok(out)
}
