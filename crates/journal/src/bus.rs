//! The event bus: publish events on their subject, consume them through durable consumers.
//!
//! The traits follow NATS JetStream so a JetStream implementation can replace
//! [`InProcessBus`] without touching callers:
//! - `publish` stores the event in the stream and returns its stream sequence;
//! - a consumer has a durable name, a subject filter (`*` one token, `>` the rest) and a start
//!   position ([`StartAt`], JetStream's deliver policy);
//! - deliveries arrive in sequence order; `ack(seq)` acknowledges everything up to `seq`
//!   (JetStream's `AckAll` policy), and a durable consumer resumes after its last ack.
//!
//! Delivery is at-least-once: acks are persisted with the journal's next group commit, so after
//! a crash a consumer may see again the few events it acked just before.
//!
//! [`InProcessBus`] is the journal itself: publishing is an append, a subscription reads the
//! journal in batches and waits on [`Journal::watch`] when it has caught up. A slow consumer
//! only falls behind; it never blocks publishers and never loses events.

use std::collections::VecDeque;
use std::future::Future;

use model::Event;
use tokio::sync::watch;

use crate::JournalError;
use crate::journal::{Journal, Record};
use crate::subject::SubjectFilter;

/// Where a new subscription starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// From the first event in the stream.
    Beginning,
    /// From this sequence number on (inclusive).
    Sequence(u64),
    /// Only events published after the subscription is created.
    New,
    /// After the consumer's last ack; from the beginning if it never acked.
    Resume,
}

/// One event handed to a consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub seq: u64,
    pub subject: String,
    pub event: Event,
}

impl From<Record> for Delivery {
    fn from(r: Record) -> Self {
        Delivery {
            seq: r.seq,
            subject: r.subject,
            event: r.event,
        }
    }
}

/// Publish/subscribe over a persistent, sequenced stream of events.
pub trait Bus: Clone + Send + Sync + 'static {
    type Subscription: Subscription;

    /// Stores `event` on `event.subject()`; returns its sequence once durable.
    fn publish(&self, event: Event) -> impl Future<Output = Result<u64, JournalError>> + Send;

    /// Creates (or re-attaches to) the durable consumer `consumer` for subjects matching
    /// `filter`. A durable consumer has at most one active subscription.
    fn subscribe(
        &self,
        consumer: &str,
        filter: &str,
        start: StartAt,
    ) -> impl Future<Output = Result<Self::Subscription, JournalError>> + Send;
}

/// A stream of deliveries for one consumer.
pub trait Subscription: Send {
    /// The next matching event, in sequence order; waits for one to be published.
    /// Fails with [`JournalError::Closed`] once the bus is shut down and everything
    /// published before was delivered.
    fn next(&mut self) -> impl Future<Output = Result<Delivery, JournalError>> + Send;

    /// Acknowledges every delivery up to and including `seq`.
    fn ack(&mut self, seq: u64) -> impl Future<Output = Result<(), JournalError>> + Send;

    /// The durable consumer name (`None` for an ephemeral subscription).
    fn consumer(&self) -> Option<&str>;
}

/// NATS durable names: non-empty, printable, and free of the subject separators and wildcards.
fn check_consumer_name(name: &str) -> Result<(), JournalError> {
    let bad = |reason| JournalError::InvalidConsumer {
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() {
        return Err(bad("must not be empty"));
    }
    if name.len() > 128 {
        return Err(bad("longer than 128 bytes"));
    }
    if name
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '.' | '*' | '>' | '/' | '\\'))
    {
        return Err(bad(
            "contains whitespace, a control character or one of . * > / \\",
        ));
    }
    Ok(())
}

/// Records scanned per journal read.
const READ_BATCH: usize = 512;

/// The bus over a local [`Journal`].
#[derive(Clone, Debug)]
pub struct InProcessBus {
    journal: Journal,
}

impl InProcessBus {
    pub fn new(journal: Journal) -> Self {
        InProcessBus { journal }
    }

    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// A subscription without a stored position (for live views); acks are accepted and
    /// ignored, `StartAt::Resume` is refused.
    pub fn subscribe_ephemeral(
        &self,
        filter: &str,
        start: StartAt,
    ) -> Result<InProcessSubscription, JournalError> {
        let filter = SubjectFilter::new(filter)?;
        let from = match start {
            StartAt::Resume => return Err(JournalError::ResumeWithoutDurable),
            other => self.start_seq(other, None),
        };
        Ok(self.make_subscription(None, filter, from))
    }

    fn start_seq(&self, start: StartAt, consumer: Option<&str>) -> u64 {
        match start {
            StartAt::Beginning => 1,
            StartAt::Sequence(seq) => seq.max(1),
            StartAt::New => self.journal.last_seq() + 1,
            StartAt::Resume => consumer
                .and_then(|c| self.journal.consumer_position(c))
                .map_or(1, |acked| acked + 1),
        }
    }

    fn make_subscription(
        &self,
        consumer: Option<String>,
        filter: SubjectFilter,
        from: u64,
    ) -> InProcessSubscription {
        InProcessSubscription {
            journal: self.journal.clone(),
            durable: self.journal.watch(),
            consumer,
            filter,
            next_read: from,
            buffer: VecDeque::new(),
            delivered: from.saturating_sub(1),
        }
    }
}

impl Bus for InProcessBus {
    type Subscription = InProcessSubscription;

    async fn publish(&self, event: Event) -> Result<u64, JournalError> {
        self.journal.append(event).await
    }

    async fn subscribe(
        &self,
        consumer: &str,
        filter: &str,
        start: StartAt,
    ) -> Result<InProcessSubscription, JournalError> {
        check_consumer_name(consumer)?;
        let filter = SubjectFilter::new(filter)?;
        self.journal.claim_consumer(consumer)?;
        let from = self.start_seq(start, Some(consumer));
        Ok(self.make_subscription(Some(consumer.to_owned()), filter, from))
    }
}

/// A subscription of [`InProcessBus`].
pub struct InProcessSubscription {
    journal: Journal,
    durable: watch::Receiver<u64>,
    consumer: Option<String>,
    filter: SubjectFilter,
    /// Next journal sequence to scan.
    next_read: u64,
    /// Matching records read but not yet delivered.
    buffer: VecDeque<Record>,
    /// Highest sequence handed out (or skipped past); acks beyond it are refused.
    delivered: u64,
}

impl InProcessSubscription {
    pub fn filter(&self) -> &SubjectFilter {
        &self.filter
    }

    /// The next delivery plus whatever else is already buffered, up to `max` (at least one).
    /// Lets a consumer write in batches (one store transaction per batch).
    pub async fn next_batch(&mut self, max: usize) -> Result<Vec<Delivery>, JournalError> {
        let first = self.next().await?;
        let mut out = Vec::with_capacity(max.clamp(1, READ_BATCH));
        out.push(first);
        while out.len() < max {
            let Some(record) = self.buffer.pop_front() else {
                break;
            };
            self.delivered = record.seq;
            out.push(record.into());
        }
        Ok(out)
    }

    /// Reads the next batch of the journal off the async threads.
    async fn fill(&mut self) -> Result<(), JournalError> {
        let journal = self.journal.clone();
        let filter = self.filter.clone();
        let from = self.next_read;
        let (records, next) = tokio::task::spawn_blocking(move || {
            journal.read_matching(from, READ_BATCH, Some(&filter))
        })
        .await
        .map_err(|e| {
            JournalError::Io(std::io::Error::other(format!(
                "journal reader task failed: {e}"
            )))
        })??;
        self.next_read = next;
        self.buffer.extend(records);
        Ok(())
    }
}

impl Subscription for InProcessSubscription {
    async fn next(&mut self) -> Result<Delivery, JournalError> {
        loop {
            if let Some(record) = self.buffer.pop_front() {
                self.delivered = record.seq;
                return Ok(record.into());
            }
            // Mark the current value seen before comparing, so a commit that lands between
            // the comparison and `changed()` still wakes us.
            let durable = *self.durable.borrow_and_update();
            if self.next_read <= durable {
                self.fill().await?;
                continue;
            }
            if self.journal.is_closed() {
                return Err(JournalError::Closed);
            }
            if self.durable.changed().await.is_err() {
                return Err(JournalError::Closed);
            }
        }
    }

    async fn ack(&mut self, seq: u64) -> Result<(), JournalError> {
        let delivered = self.delivered;
        if seq > delivered {
            return Err(JournalError::AckBeyondDelivered { seq, delivered });
        }
        match &self.consumer {
            Some(name) => self.journal.ack(name, seq),
            None => Ok(()),
        }
    }

    fn consumer(&self) -> Option<&str> {
        self.consumer.as_deref()
    }
}

impl Drop for InProcessSubscription {
    fn drop(&mut self) {
        if let Some(name) = &self.consumer {
            self.journal.release_consumer(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumer_names_follow_nats_rules() {
        assert!(check_consumer_name("risk-engine_1").is_ok());
        for bad in ["", "a.b", "a b", "a*", "a>", "a/b", "a\\b"] {
            assert!(
                matches!(
                    check_consumer_name(bad),
                    Err(JournalError::InvalidConsumer { .. })
                ),
                "{bad:?}"
            );
        }
    }
}
