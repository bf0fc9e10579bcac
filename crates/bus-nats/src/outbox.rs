//! The core's outbox: committed journal records to the JetStream stream, in order, exactly once.

use std::time::Duration;

use async_nats::jetstream::{self, context::PublishErrorKind, message::PublishMessage};
use journal::{Journal, JournalError, Record};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::{BusError, RECORDED_AT_HEADER, SEQ_HEADER, StreamSpec};

/// Journal records read and published per round (their acks are awaited together).
const BATCH: usize = 512;
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Publishes the journal to the stream. Its position is the stream's last sequence, which equals
/// the last journal sequence published (see the crate docs), so a restart continues exactly there.
pub struct Outbox {
    js: jetstream::Context,
    stream: jetstream::stream::Stream,
    spec: StreamSpec,
    journal: Journal,
    published: watch::Sender<u64>,
}

impl Outbox {
    /// Attaches to (or creates) the stream. Fails when NATS is unreachable: a core that starts
    /// while NATS is down runs [`Outbox::run`] later, or retries this.
    pub async fn new(
        client: async_nats::Client,
        spec: StreamSpec,
        journal: Journal,
    ) -> Result<Outbox, BusError> {
        let js = jetstream::new(client);
        let stream = spec.ensure(&js).await?;
        let (_, last) = spec.bounds(&stream).await?;
        Ok(Outbox {
            js,
            stream,
            spec,
            journal,
            published: watch::channel(last).0,
        })
    }

    /// The last journal sequence known to be in the stream.
    pub fn published(&self) -> watch::Receiver<u64> {
        self.published.subscribe()
    }

    /// Publishes every journal record the stream does not hold yet; returns the stream's last
    /// sequence. Refuses a stream that is ahead of the journal (another journal's) or behind
    /// what the journal still retains (after `journal archive`).
    pub async fn sync(&self) -> Result<u64, BusError> {
        let (_, mut last) = self.spec.bounds(&self.stream).await?;
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
        while last < journal_last {
            let journal = self.journal.clone();
            let from = last + 1;
            let records = tokio::task::spawn_blocking(move || journal.read_from(from, BATCH))
                .await
                .map_err(|e| JournalError::Io(std::io::Error::other(e.to_string())))??;
            let Some(end) = records.last().map(|r| r.seq) else {
                break;
            };
            self.publish_records(&records).await?;
            last = end;
            self.published.send_replace(last);
        }
        Ok(last)
    }

    /// Publishes consecutive journal `records` (all sent, then all acks awaited). A record the
    /// stream already holds stores nothing: within the duplicate window the server answers
    /// "duplicate" for its message id; after it, the expected-last-sequence check refuses it and
    /// the stream's last sequence shows it is there.
    pub async fn publish_records(&self, records: &[Record]) -> Result<(), BusError> {
        let mut acks = Vec::with_capacity(records.len());
        for r in records {
            let payload = serde_json::to_vec(&r.event).map_err(JournalError::Serialize)?;
            let message = PublishMessage::build()
                .payload(payload.into())
                .message_id(r.seq.to_string())
                .expected_last_sequence(r.seq - 1)
                .header(SEQ_HEADER, r.seq.to_string().as_str())
                .header(
                    RECORDED_AT_HEADER,
                    r.recorded_at.as_nanos().to_string().as_str(),
                );
            let ack = self
                .js
                .send_publish(self.spec.subject(&r.subject), message)
                .await
                .map_err(|e| BusError::nats(format!("publishing journal seq {}", r.seq), e))?;
            acks.push((r.seq, ack));
        }
        for (seq, ack) in acks {
            match ack.await {
                Ok(ack) if ack.duplicate || ack.sequence == seq => {}
                Ok(ack) => {
                    return Err(BusError::BadMessage {
                        stream: self.spec.stream.clone(),
                        stream_seq: ack.sequence,
                        reason: format!(
                            "journal seq {seq} was stored at another stream sequence: the \
                             stream is written by something else than this outbox"
                        ),
                    });
                }
                Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => {
                    let (_, last) = self.spec.bounds(&self.stream).await?;
                    if last < seq {
                        return Err(BusError::nats(format!("publishing journal seq {seq}"), e));
                    }
                }
                Err(e) => return Err(BusError::nats(format!("publishing journal seq {seq}"), e)),
            }
        }
        Ok(())
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
