//! The core's outbox: committed journal records to the JetStream stream, in order, exactly once.

use std::sync::Mutex;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::header::{NATS_EXPECTED_LAST_SEQUENCE, NATS_MESSAGE_ID};
use async_nats::jetstream::{
    self,
    context::{PublishAckFuture, PublishErrorKind},
    message::PublishMessage,
};
use journal::{Delivery, InProcessBus, Journal, JournalError, Record, StartAt, Subscription};
use model::{Event, Timestamp};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::{BusError, RECORDED_AT_NAME, SEQ_NAME, StreamSpec};

/// Journal records read and published per round (one ack, for the round's last record).
const BATCH: usize = 512;
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Publishes the journal to the stream. Its position is the stream's last sequence, which equals
/// the last journal sequence published (see the crate docs), so a restart continues exactly there.
pub struct Outbox {
    client: async_nats::Client,
    js: jetstream::Context,
    stream: jetstream::stream::Stream,
    spec: StreamSpec,
    journal: Journal,
    /// Reads committed records from the journal's in-memory tail (SQLite only for older ones):
    /// no read and no JSON decoding per record while the outbox keeps up.
    local: InProcessBus,
    published: watch::Sender<u64>,
    /// The stream's last sequence as this outbox left it after a sync that succeeded entirely,
    /// so the next round needs no stream-info request; `None` (at start and after any error)
    /// asks the stream. A stale value only ever lags (records published by `publish_records`
    /// or another outbox), and a republish of what the stream holds stores nothing.
    known_last: Mutex<Option<u64>>,
}

/// The ack of a round's last record, awaited after the next round went out.
struct Round {
    last: u64,
    ack: PublishAckFuture,
}

impl Outbox {
    /// Attaches to (or creates) the stream. Fails when NATS is unreachable: a core that starts
    /// while NATS is down runs [`Outbox::run`] later, or retries this.
    pub async fn new(
        client: async_nats::Client,
        spec: StreamSpec,
        journal: Journal,
    ) -> Result<Outbox, BusError> {
        let js = jetstream::new(client.clone());
        let stream = spec.ensure(&js).await?;
        let (_, last) = spec.bounds(&stream).await?;
        Ok(Outbox {
            client,
            js,
            stream,
            spec,
            local: InProcessBus::new(journal.clone()),
            journal,
            published: watch::channel(last).0,
            known_last: Mutex::new(None),
        })
    }

    /// The last journal sequence known to be in the stream.
    pub fn published(&self) -> watch::Receiver<u64> {
        self.published.subscribe()
    }

    fn known_last(&self) -> std::sync::MutexGuard<'_, Option<u64>> {
        self.known_last.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Publishes every journal record the stream does not hold yet; returns the stream's last
    /// sequence. Refuses a stream that is ahead of the journal (another journal's) or behind
    /// what the journal still retains (after `journal archive`).
    pub async fn sync(&self) -> Result<u64, BusError> {
        let known = self.known_last().take();
        let result = self.sync_from(known).await;
        *self.known_last() = result.as_ref().ok().copied();
        result
    }

    async fn sync_from(&self, known: Option<u64>) -> Result<u64, BusError> {
        let mut last = match known {
            Some(last) => last,
            None => self.spec.bounds(&self.stream).await?.1,
        };
        let journal_last = self.journal.last_seq();
        if last > journal_last {
            return Err(BusError::WrongStream {
                stream: self.spec.stream.clone(),
                stream_last: last,
                journal_last,
            });
        }
        if last < journal_last && last + 1 < self.journal.first_seq() {
            return Err(BusError::Gap {
                stream: self.spec.stream.clone(),
                stream_last: last,
                journal_first: self.journal.first_seq(),
            });
        }
        self.published.send_replace(last);
        if last == journal_last {
            return Ok(last);
        }
        let mut records = self
            .local
            .subscribe_ephemeral(">", StartAt::Sequence(last + 1))?;
        // One round in flight while the next is read and sent: the server stores a round
        // while this side prepares the next, instead of each waiting for the other. Records
        // committed meanwhile are taken in the same pass.
        let mut in_flight: Option<Round> = None;
        let mut next = last + 1;
        while next <= self.journal.last_seq() {
            let batch = records.next_batch(BATCH).await?;
            let Some(end) = batch.last().map(|d| d.seq) else {
                break;
            };
            let Some((last_sent, ack)) = self.send(&batch).await? else {
                break;
            };
            let round = Round {
                last: last_sent,
                ack,
            };
            next = end + 1;
            if let Some(done) = in_flight.replace(round) {
                self.confirm(done.last, done.ack).await?;
                last = done.last;
                self.published.send_replace(last);
            }
        }
        if let Some(done) = in_flight {
            self.confirm(done.last, done.ack).await?;
            last = done.last;
            self.published.send_replace(last);
        }
        Ok(last)
    }

    /// Publishes consecutive journal `records` (all sent, then the last one's ack awaited). A
    /// record the stream already holds stores nothing: within the duplicate window the server
    /// answers "duplicate" for its message id; after it, the expected-last-sequence check
    /// refuses it and the stream's last sequence shows it is there.
    pub async fn publish_records(&self, records: &[Record]) -> Result<(), BusError> {
        match self.send(records).await? {
            Some((last, ack)) => self.confirm(last, ack).await,
            None => Ok(()),
        }
    }

    /// Sends one message per record (a run of consecutive ones); only the last asks the stream
    /// for an ack, which is returned with its sequence (`None`: no records). One ack speaks for
    /// the whole round: a record is stored only at stream sequence = journal sequence, right
    /// after the one before it (`Nats-Expected-Last-Sequence`), so the last one stored where
    /// it belongs (or found already there) means every record before it is in the stream too;
    /// one that was lost or refused makes every later one fail the expected-sequence check,
    /// the last included. An ack per record costs the server a reply and this side a pending
    /// request each: bare JetStream moved 1.4-1.6x fewer events/s with them (docs/BENCHMARKS.md,
    /// "Cluster (NATS JetStream)").
    async fn send<T: Publishable + Sync>(
        &self,
        records: &[T],
    ) -> Result<Option<(u64, PublishAckFuture)>, BusError> {
        let mut records = records.iter().map(Publishable::sendable).peekable();
        while let Some(r) = records.next() {
            let failed = |e: &dyn std::fmt::Display| {
                BusError::nats(format!("publishing journal seq {}", r.seq), e)
            };
            let payload = serde_json::to_vec(r.event).map_err(JournalError::Serialize)?;
            let mut headers = HeaderMap::new();
            headers.insert(NATS_MESSAGE_ID, r.seq.to_string());
            headers.insert(NATS_EXPECTED_LAST_SEQUENCE, (r.seq - 1).to_string());
            headers.insert(SEQ_NAME.clone(), r.seq.to_string());
            headers.insert(
                RECORDED_AT_NAME.clone(),
                r.recorded_at.as_nanos().to_string(),
            );
            let subject = self.spec.subject(r.subject);
            if records.peek().is_some() {
                self.client
                    .publish_with_headers(subject, headers, payload.into())
                    .await
                    .map_err(|e| failed(&e))?;
            } else {
                let message = PublishMessage::build()
                    .payload(payload.into())
                    .headers(headers);
                let ack = self
                    .js
                    .send_publish(subject, message)
                    .await
                    .map_err(|e| failed(&e))?;
                return Ok(Some((r.seq, ack)));
            }
        }
        Ok(None)
    }

    /// Awaits the ack of a round whose last record is `seq`.
    async fn confirm(&self, seq: u64, ack: PublishAckFuture) -> Result<(), BusError> {
        match ack.await {
            Ok(ack) if ack.duplicate || ack.sequence == seq => Ok(()),
            Ok(ack) => Err(BusError::BadMessage {
                stream: self.spec.stream.clone(),
                stream_seq: ack.sequence,
                reason: format!(
                    "journal seq {seq} was stored at another stream sequence: the stream is \
                     written by something else than this outbox"
                ),
            }),
            Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => {
                // Stored before (by an earlier attempt or another outbox of this journal),
                // or a record before it was lost: the stream's end says which.
                let (_, last) = self.spec.bounds(&self.stream).await?;
                if last < seq {
                    return Err(BusError::nats(
                        format!(
                            "publishing journal seq {} (the stream ends at {last})",
                            last + 1
                        ),
                        e,
                    ));
                }
                Ok(())
            }
            Err(e) => Err(BusError::nats(format!("publishing journal seq {seq}"), e)),
        }
    }

    /// Publishes the journal as it grows until `shutdown`. NATS being down only delays it:
    /// every round starts from the stream's own last sequence, with backoff between failures,
    /// so nothing is lost, reordered or stored twice. Stops with an error only for a stream
    /// that does not fit the journal, or a journal that fails.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), BusError> {
        let mut committed = self.journal.watch();
        let mut backoff = MIN_BACKOFF;
        loop {
            // Seen before syncing, so a commit during the sync wakes the next round.
            committed.borrow_and_update();
            match self.sync().await {
                Ok(_) => backoff = MIN_BACKOFF,
                Err(e @ (BusError::WrongStream { .. } | BusError::Gap { .. })) => return Err(e),
                Err(BusError::Journal(e)) if e.is_fatal() => return Err(BusError::Journal(e)),
                Err(e) => {
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "outbox cannot publish to NATS; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                changed = committed.changed() => if changed.is_err() {
                    // The journal closed: publish what it committed last, then stop.
                    return self.sync().await.map(|_| ());
                },
            }
        }
    }
}

/// What a message is made of: a [`Record`] read by the caller or a [`Delivery`] from the tail.
struct Sendable<'a> {
    seq: u64,
    recorded_at: Timestamp,
    subject: &'a str,
    event: &'a Event,
}

trait Publishable {
    fn sendable(&self) -> Sendable<'_>;
}

impl Publishable for Record {
    fn sendable(&self) -> Sendable<'_> {
        Sendable {
            seq: self.seq,
            recorded_at: self.recorded_at,
            subject: &self.subject,
            event: &self.event,
        }
    }
}

impl Publishable for Delivery {
    fn sendable(&self) -> Sendable<'_> {
        Sendable {
            seq: self.seq,
            recorded_at: self.recorded_at,
            subject: &self.subject,
            event: &self.event,
        }
    }
}
