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
//! journal in batches and waits on [`Journal::watch`] when it has caught up. A caught-up
//! subscription reads the journal's in-memory tail of recently committed records (no SQLite
//! query, no decoding); one that is behind it (history, or a slow consumer) reads SQLite until
//! it reaches the tail again. A slow consumer only falls behind; it never blocks publishers and
//! never loses events.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;

use model::{Event, Timestamp};
use tokio::sync::watch;

use crate::JournalError;
use crate::journal::{Journal, Record};
use crate::subject::SubjectFilter;

/// Where a new subscription starts. A start before the journal's first retained sequence
/// (after `journal archive`) is refused with [`JournalError::Archived`], except for a durable
/// consumer whose own acked position covers every archived event: it starts at the first
/// retained sequence (what it would miss, it already acknowledged).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// From the first event in the stream (sequence 1).
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
    /// When the journal committed the event.
    pub recorded_at: Timestamp,
    pub subject: String,
    pub event: Event,
}

impl From<Record> for Delivery {
    fn from(r: Record) -> Self {
        Delivery {
            seq: r.seq,
            recorded_at: r.recorded_at,
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

    /// Stores `events` in order; returns once all are durable. The default publishes one by one.
    fn publish_all(
        &self,
        events: Vec<Event>,
    ) -> impl Future<Output = Result<(), JournalError>> + Send {
        async move {
            for e in events {
                self.publish(e).await?;
            }
            Ok(())
        }
    }

    /// The highest sequence known to be stored (0 when empty): how far a consumer must get to be
    /// caught up.
    fn last_seq(&self) -> u64;

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

    /// The next deliveries at hand, up to `max`, so a consumer can work in batches. Also returns
    /// (possibly empty) once the subscription has read past events its filter skips, so the
    /// consumer's position ([`Subscription::scanned`]) keeps up with the stream.
    fn next_batch(
        &mut self,
        max: usize,
    ) -> impl Future<Output = Result<Vec<Delivery>, JournalError>> + Send;

    /// Every event up to here was delivered or does not match the filter.
    fn scanned(&self) -> u64;

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
    /// ignored, `StartAt::Resume` is refused. Starting before [`Journal::first_seq`] (events
    /// moved to the archive) is refused with [`JournalError::Archived`].
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
        // Archived history is not replayed silently from a later point: a consumer that needs
        // it must restore from a snapshot (or read the archive).
        self.journal.check_retained(from)?;
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
            reported: from.saturating_sub(1),
            #[cfg(test)]
            sqlite_reads: 0,
        }
    }
}

impl Bus for InProcessBus {
    type Subscription = InProcessSubscription;

    async fn publish(&self, event: Event) -> Result<u64, JournalError> {
        self.journal.append(event).await
    }

    async fn publish_all(&self, events: Vec<Event>) -> Result<(), JournalError> {
        self.journal.append_batch(events).await.map(|_| ())
    }

    fn last_seq(&self) -> u64 {
        self.journal.last_seq()
    }

    async fn subscribe(
        &self,
        consumer: &str,
        filter: &str,
        start: StartAt,
    ) -> Result<InProcessSubscription, JournalError> {
        check_consumer_name(consumer)?;
        let filter = SubjectFilter::new(filter)?;
        let mut from = self.start_seq(start, Some(consumer));
        let first = self.journal.first_seq();
        if from < first
            && self
                .journal
                .consumer_position(consumer)
                .is_some_and(|acked| acked.saturating_add(1) >= first)
        {
            // The archived events this consumer asks for again are ones it acknowledged as
            // processed (it restarts from its own store, which may record less than it acked,
            // e.g. not the events its filter skipped): redelivering acked events is the
            // at-least-once repeat it must already tolerate, so skipping them changes nothing.
            tracing::debug!(
                consumer,
                requested = from,
                first_retained = first,
                "durable consumer resumes at the journal's first retained sequence"
            );
            from = first;
        }
        self.journal.check_retained(from)?;
        self.journal.claim_consumer(consumer)?;
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
    /// Matching records read but not yet delivered (shared with the journal's tail).
    buffer: VecDeque<Arc<Record>>,
    /// Highest sequence handed out (or skipped past); acks beyond it are refused.
    delivered: u64,
    /// The scan position last reported by `next_batch`.
    reported: u64,
    /// SQLite reads done, so tests can tell which path served them.
    #[cfg(test)]
    sqlite_reads: u64,
}

/// The tail's records are shared by every subscription: each takes its own copy.
fn deliver(record: Arc<Record>) -> Delivery {
    Arc::unwrap_or_clone(record).into()
}

impl InProcessSubscription {
    pub fn filter(&self) -> &SubjectFilter {
        &self.filter
    }

    /// Everything matching that is durable and already in the journal's in-memory tail, up to
    /// `max`, without waiting: lets a decider catch up with committed events right before it
    /// decides (the engine applies the market data a client could already see). Empty when the
    /// subscription is behind the tail (it then catches up through `next`).
    pub fn try_next_batch(&mut self, max: usize) -> Vec<Delivery> {
        let mut out = Vec::new();
        while out.len() < max {
            if let Some(record) = self.buffer.pop_front() {
                self.delivered = record.seq;
                out.push(deliver(record));
                continue;
            }
            let durable = *self.durable.borrow();
            if self.next_read > durable || !self.fill_from_tail() {
                break;
            }
        }
        out
    }

    /// Takes the next batch from the journal's in-memory tail; false when `next_read` is not in
    /// it. Synchronous, so a cancelled `next()` cannot lose what it took.
    fn fill_from_tail(&mut self) -> bool {
        match self
            .journal
            .read_tail(self.next_read, READ_BATCH, &self.filter)
        {
            Some((records, next)) => {
                self.next_read = next;
                self.buffer.extend(records);
                true
            }
            None => false,
        }
    }

    /// Reads the next batch of the journal off the async threads. Cancel-safe: the position
    /// only moves together with the buffer, after the read completed.
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
        self.buffer.extend(records.into_iter().map(Arc::new));
        #[cfg(test)]
        {
            self.sqlite_reads += 1;
        }
        Ok(())
    }
}

impl Subscription for InProcessSubscription {
    async fn next(&mut self) -> Result<Delivery, JournalError> {
        loop {
            if let Some(record) = self.buffer.pop_front() {
                self.delivered = record.seq;
                return Ok(deliver(record));
            }
            // Mark the current value seen before comparing, so a commit that lands between
            // the comparison and `changed()` still wakes us.
            let durable = *self.durable.borrow_and_update();
            if self.next_read <= durable {
                if !self.fill_from_tail() {
                    self.fill().await?;
                }
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

    async fn next_batch(&mut self, max: usize) -> Result<Vec<Delivery>, JournalError> {
        loop {
            if !self.buffer.is_empty() {
                let mut out = Vec::with_capacity(self.buffer.len().min(max.max(1)));
                while out.len() < max.max(1) {
                    let Some(record) = self.buffer.pop_front() else {
                        break;
                    };
                    self.delivered = record.seq;
                    out.push(deliver(record));
                }
                self.reported = self.scanned();
                self.delivered = self.delivered.max(self.reported);
                return Ok(out);
            }
            // Read past events the filter skips: report the progress.
            let scanned = self.scanned();
            if scanned > self.reported {
                self.delivered = self.delivered.max(scanned);
                self.reported = scanned;
                return Ok(Vec::new());
            }
            let durable = *self.durable.borrow_and_update();
            if self.next_read <= durable {
                if !self.fill_from_tail() {
                    self.fill().await?;
                }
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

    fn scanned(&self) -> u64 {
        match self.buffer.front() {
            Some(r) => r.seq - 1,
            None => self.next_read - 1,
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
    use model::{
        AccountId, Decimal, InstrumentId, OrderId, Price, Quantity, Symbol, Timestamp, TradeTick,
        Venue,
    };
    use std::time::Duration;

    /// The `n`-th event of a deterministic stream: every third is market data (`md.>`), the
    /// rest order acks on two accounts.
    fn event(n: u64) -> Event {
        let n_i = i64::try_from(n).expect("small n");
        if n.is_multiple_of(3) {
            Event::Trade(TradeTick {
                instrument: InstrumentId::new(
                    Venue::new("binance").expect("venue"),
                    Symbol::new("BTCUSDT").expect("symbol"),
                ),
                price: Price::new(Decimal::new(4_500_000 + n_i, 2)).expect("price"),
                quantity: Quantity::new(Decimal::new(1 + n_i % 97, 3)).expect("quantity"),
                aggressor: None,
                trade_id: format!("t{n}"),
                ts: Timestamp::from_millis(1_700_000_000_000 + n_i),
            })
        } else {
            Event::OrderAccepted {
                order_id: OrderId(n),
                account: AccountId::new(if n.is_multiple_of(2) {
                    "acct1"
                } else {
                    "acct2"
                })
                .expect("account"),
                ts: Timestamp::from_millis(1_700_000_000_000 + n_i),
            }
        }
    }

    /// Event `n` is stored at sequence `n`; each delivery must be exactly that event.
    fn assert_stream(got: &[Delivery], seqs: impl IntoIterator<Item = u64>) {
        let seqs: Vec<u64> = seqs.into_iter().collect();
        assert_eq!(got.iter().map(|d| d.seq).collect::<Vec<_>>(), seqs);
        for d in got {
            assert_eq!(d.event, event(d.seq), "seq {}", d.seq);
            assert_eq!(d.subject, d.event.subject(), "seq {}", d.seq);
        }
    }

    fn bus_with_tail(dir: &tempfile::TempDir, tail: usize) -> InProcessBus {
        let (journal, _) =
            Journal::open_with_tail(&dir.path().join("events.db"), tail).expect("open");
        InProcessBus::new(journal)
    }

    async fn publish_range(bus: &InProcessBus, seqs: std::ops::RangeInclusive<u64>) {
        let range = bus
            .journal()
            .append_batch(seqs.clone().map(event).collect())
            .await
            .expect("append");
        assert_eq!(range, seqs);
    }

    async fn take(sub: &mut InProcessSubscription, n: usize) -> Vec<Delivery> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(sub.next().await.expect("next"));
        }
        out
    }

    #[tokio::test]
    async fn a_caught_up_subscriber_is_served_from_memory() {
        let dir = tempfile::tempdir().unwrap();
        let bus = bus_with_tail(&dir, 64);
        let mut all = bus.subscribe_ephemeral(">", StartAt::New).unwrap();
        let mut md = bus.subscribe_ephemeral("md.>", StartAt::New).unwrap();
        for n in 1..=30 {
            bus.publish(event(n)).await.unwrap();
            assert_stream(&[all.next().await.unwrap()], [n]);
        }
        // Market data is every third event; the rest is skipped without being delivered.
        assert_stream(&take(&mut md, 10).await, (3..=30).step_by(3));
        assert_eq!((all.sqlite_reads, md.sqlite_reads), (0, 0));
    }

    #[tokio::test]
    async fn a_subscriber_that_falls_out_of_the_memory_window_reads_the_rest_from_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let bus = bus_with_tail(&dir, 8);
        let mut all = bus.subscribe_ephemeral(">", StartAt::New).unwrap();
        let mut md = bus.subscribe_ephemeral("md.>", StartAt::New).unwrap();
        publish_range(&bus, 1..=3).await;
        assert_stream(&take(&mut all, 3).await, 1..=3);
        assert_eq!(all.sqlite_reads, 0);

        // 4..=1,200 (over READ_BATCH; one batch of 697, then single appends) while both lag:
        // the tail keeps only the last 8, so both must go back to SQLite for most of them.
        publish_range(&bus, 4..=700).await;
        for n in 701..=1_200 {
            bus.publish(event(n)).await.unwrap();
        }
        let got = take(&mut all, 1_197).await;
        assert_stream(&got, 4..=1_200);
        assert!(all.sqlite_reads >= 3, "{}", all.sqlite_reads);
        let got = take(&mut md, 400).await;
        assert_stream(&got, (3..=1_200).step_by(3));
        assert!(md.sqlite_reads >= 3, "{}", md.sqlite_reads);

        // Caught up again: the next events come from memory.
        let (all_reads, md_reads) = (all.sqlite_reads, md.sqlite_reads);
        publish_range(&bus, 1_201..=1_206).await;
        assert_stream(&take(&mut all, 6).await, 1_201..=1_206);
        assert_stream(&take(&mut md, 2).await, [1_203, 1_206]);
        assert_eq!((all.sqlite_reads, md.sqlite_reads), (all_reads, md_reads));
    }

    #[tokio::test]
    async fn a_subscriber_from_the_beginning_moves_from_history_to_the_live_tail() {
        let dir = tempfile::tempdir().unwrap();
        {
            let bus = bus_with_tail(&dir, 8);
            publish_range(&bus, 1..=600).await;
            bus.journal().shutdown().unwrap();
        }
        // Reopened: the tail is empty and starts at 601, so 1..=600 exist only in SQLite.
        let bus = bus_with_tail(&dir, 8);
        let mut sub = bus.subscribe_ephemeral(">", StartAt::Beginning).unwrap();
        let mut durable = bus
            .subscribe("durable", "orders.*", StartAt::Resume)
            .await
            .unwrap();
        let mut got = take(&mut sub, 550).await;
        assert!(sub.sqlite_reads >= 2, "{}", sub.sqlite_reads);
        // Live events while the subscriber still has history to read.
        publish_range(&bus, 601..=604).await;
        got.extend(take(&mut sub, 54).await);
        let history_reads = sub.sqlite_reads;
        for n in 605..=640 {
            bus.publish(event(n)).await.unwrap();
            got.push(sub.next().await.unwrap());
        }
        assert_stream(&got, 1..=640);
        assert_eq!(
            sub.sqlite_reads, history_reads,
            "live events came from memory"
        );

        let orders: Vec<u64> = (1..=640).filter(|n| n % 3 != 0).collect();
        let got = take(&mut durable, orders.len()).await;
        assert_stream(&got, orders);
    }

    /// Tiny deterministic PRNG (xorshift64): the test must be reproducible.
    fn next_rand(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn next_futures_dropped_at_random_points_lose_and_repeat_nothing() {
        const TOTAL: u64 = 3_000;
        let dir = tempfile::tempdir().unwrap();
        // A small tail so the subscriber keeps switching between SQLite and memory.
        let bus = bus_with_tail(&dir, 16);
        let mut sub = bus.subscribe_ephemeral(">", StartAt::Beginning).unwrap();
        let publisher = {
            let bus = bus.clone();
            tokio::spawn(async move {
                let mut rng = 0x9E37_79B9_7F4A_7C15u64;
                let mut n = 1;
                while n <= TOTAL {
                    let size = (next_rand(&mut rng) % 40 + 1).min(TOTAL - n + 1);
                    publish_range(&bus, n..=n + size - 1).await;
                    n += size;
                    if next_rand(&mut rng).is_multiple_of(4) {
                        tokio::task::yield_now().await;
                    }
                }
                // A lost record then ends the stream early (Closed) instead of waiting forever.
                bus.journal().shutdown().unwrap();
            })
        };

        let mut rng = 0x2545_F491_4F6C_DD1Du64;
        let mut got = Vec::with_capacity(TOTAL as usize);
        let mut dropped = 0u32;
        let early = "the stream ended before every record was delivered";
        while got.len() < TOTAL as usize {
            match next_rand(&mut rng) % 3 {
                // Dropped after its first polls, whatever it was waiting on.
                0 => tokio::select! {
                    biased;
                    d = sub.next() => got.push(d.expect(early)),
                    () = tokio::task::yield_now() => dropped += 1,
                },
                // Dropped after a random short wait (often mid-way through a SQLite read).
                1 => {
                    let wait = Duration::from_micros(next_rand(&mut rng) % 300);
                    match tokio::time::timeout(wait, sub.next()).await {
                        Ok(d) => got.push(d.expect(early)),
                        Err(_) => dropped += 1,
                    }
                }
                _ => got.push(sub.next().await.expect(early)),
            }
        }
        publisher.await.unwrap();
        assert_stream(&got, 1..=TOTAL);
        assert!(dropped > 0, "no next() future was dropped");
        assert!(sub.sqlite_reads > 0, "the SQLite path was not exercised");
        // Nothing beyond the published records (no duplicates at the end either).
        assert!(matches!(sub.next().await, Err(JournalError::Closed)));
    }

    #[tokio::test]
    async fn try_next_batch_takes_what_is_durable_without_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let bus = bus_with_tail(&dir, 64);
        let mut md = bus.subscribe_ephemeral("md.>", StartAt::New).unwrap();
        assert!(md.try_next_batch(10).is_empty(), "nothing published yet");
        publish_range(&bus, 1..=9).await;
        // Events 3, 6 and 9 are market data: all durable, all taken at once, in order.
        assert_stream(&md.try_next_batch(usize::MAX), [3, 6, 9]);
        assert!(md.try_next_batch(10).is_empty());
        publish_range(&bus, 10..=12).await;
        assert_stream(&md.try_next_batch(1), [12]);
        assert_eq!(md.sqlite_reads, 0);
    }

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
