//! [`NatsBus`]: the `journal::Bus` over the outbox's stream, for consumers on other machines.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::HeaderName;
use async_nats::jetstream::ErrorCode;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use async_nats::jetstream::message::Acker;
use async_nats::jetstream::stream::ConsumerErrorKind;
use async_nats::jetstream::{self, context::ConsumerInfoErrorKind};
use futures_util::StreamExt;
use journal::{Bus, Delivery, JournalError, StartAt, SubjectFilter, Subscription};
use model::{Event, Timestamp};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::{
    BusError, IngestPublisher, RECORDED_AT_HEADER, RECORDED_AT_NAME, SEQ_HEADER, SEQ_NAME,
    StreamSpec,
};

/// Messages asked for per pull request.
const FETCH: usize = 512;
/// How long a caught-up pull waits for a message before it looks at the stream's head again
/// (how fast a filtered consumer's position moves past events it does not read).
const WAIT: Duration = Duration::from_secs(1);
/// Unacked messages come back after this; a consumer that acks only at its snapshots
/// (the runtime's snapshot consumers) sees them again and the subscription drops them.
const ACK_WAIT: Duration = Duration::from_secs(300);
const RETRY: Duration = Duration::from_millis(250);

/// The bus over the JetStream stream the core's [`crate::Outbox`] writes.
#[derive(Clone)]
pub struct NatsBus {
    inner: Arc<Inner>,
    /// Where `publish` sends events for the core to journal (none: `publish` is refused).
    ingest: Option<Arc<IngestPublisher>>,
    /// Put before every durable consumer name: two services that run a consumer of the same
    /// name (ptrc's and the sinks' `sink-ticks`) must not share, and so steal, one consumer.
    namespace: String,
}

struct Inner {
    stream: jetstream::stream::Stream,
    spec: StreamSpec,
    /// The stream's last sequence as last seen (refreshed every second and by every pull).
    last: AtomicU64,
    /// NATS 2.10 takes several subject filters per consumer; older servers get none and the
    /// subscription filters alone.
    multi_filter: bool,
}

impl NatsBus {
    /// Attaches to the stream `spec.stream`, which must exist (the core's outbox creates it).
    pub async fn connect(
        client: async_nats::Client,
        spec: StreamSpec,
    ) -> Result<NatsBus, BusError> {
        let version = client.server_info().version;
        let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
        let multi_filter = (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) >= (2, 10);
        let js = jetstream::new(client);
        let stream = js.get_stream(&spec.stream).await.map_err(|e| {
            BusError::nats(
                format!(
                    "stream {} (it is created by the core's outbox: is the core running with this stream name?)",
                    spec.stream
                ),
                e,
            )
        })?;
        let (_, last) = spec.bounds(&stream).await?;
        let inner = Arc::new(Inner {
            stream,
            spec,
            last: AtomicU64::new(last),
            multi_filter,
        });
        let weak = Arc::downgrade(&inner);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(WAIT).await;
                let Some(inner) = weak.upgrade() else { break };
                let _ = inner.refresh().await;
            }
        });
        Ok(NatsBus {
            inner,
            ingest: None,
            namespace: String::new(),
        })
    }

    /// Durable consumers of this bus are named `<namespace>-<consumer>` on the server.
    pub fn with_namespace(mut self, namespace: &str) -> NatsBus {
        self.namespace = format!("{namespace}-");
        self
    }

    /// Lets `publish` send events to the core through the ingest stream (see
    /// [`IngestPublisher`]), as a consumer service that answers with events needs.
    pub fn with_ingest(mut self, ingest: IngestPublisher) -> NatsBus {
        self.ingest = Some(Arc::new(ingest));
        self
    }

    pub fn spec(&self) -> &StreamSpec {
        &self.inner.spec
    }
}

impl Inner {
    async fn refresh(&self) -> Result<(u64, u64), BusError> {
        let (first, last) = self.spec.bounds(&self.stream).await?;
        self.last.fetch_max(last, Ordering::AcqRel);
        Ok((first, last))
    }

    /// Creates the durable consumer of `config` afresh, delivering from stream sequence
    /// `from` on (a JetStream consumer's start cannot be changed).
    async fn create(&self, config: &pull::Config, from: u64) -> Result<PullConsumer, BusError> {
        let name = config.durable_name.clone().unwrap_or_default();
        match self.stream.delete_consumer(&name).await {
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ConsumerErrorKind::JetStream(ref j) if j.error_code() == ErrorCode::CONSUMER_NOT_FOUND) =>
                {}
            Err(e) => return Err(BusError::nats(format!("deleting consumer {name}"), e)),
        }
        let mut config = config.clone();
        config.deliver_policy = DeliverPolicy::ByStartSequence {
            start_sequence: from.max(1),
        };
        self.stream
            .create_consumer(config)
            .await
            .map_err(|e| BusError::nats(format!("creating consumer {name}"), e))
    }

    /// The consumer's acked position, if it exists.
    async fn acked(&self, consumer: &str) -> Result<Option<u64>, BusError> {
        match self.stream.consumer_info(consumer).await {
            Ok(info) => Ok(Some(info.ack_floor.stream_sequence)),
            Err(e) if e.kind() == ConsumerInfoErrorKind::NotFound => Ok(None),
            Err(e) => Err(BusError::nats(format!("consumer {consumer} info"), e)),
        }
    }
}

fn check_consumer_name(name: &str) -> Result<(), JournalError> {
    let reason = if name.is_empty() {
        "must not be empty"
    } else if name
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '.' | '*' | '>' | '/' | '\\'))
    {
        "contains whitespace, a control character or one of . * > / \\"
    } else {
        return Ok(());
    };
    Err(JournalError::InvalidConsumer {
        name: name.to_owned(),
        reason,
    })
}

/// How long `publish` waits for the core to say it journaled the event.
const JOURNALED_WAIT: Duration = Duration::from_secs(5);

impl NatsBus {
    fn ingest(&self, event: &Event) -> Result<&IngestPublisher, JournalError> {
        self.ingest.as_deref().ok_or_else(|| {
            JournalError::Io(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                format!(
                    "cannot publish {} over NATS: events are journaled by the core, and this bus \
                     has no ingest stream to send them there",
                    event.subject()
                ),
            ))
        })
    }
}

impl Bus for NatsBus {
    type Subscription = NatsSubscription;

    /// Events enter the stream only through the core's journal (the one sequencer): with an
    /// ingest publisher this stores the event in the ingest stream and waits (up to 5 s) for
    /// the core to journal it, returning its journal sequence; 0 when the core has not
    /// confirmed yet (the event is durable in the ingest stream and journaled when the core
    /// takes it). Without one it is refused.
    async fn publish(&self, event: Event) -> Result<u64, JournalError> {
        let ingest = self.ingest(&event)?;
        Ok(ingest
            .publish_journaled(&event, JOURNALED_WAIT)
            .await?
            .unwrap_or(0))
    }

    /// Durable in the ingest stream when this returns; the core journals them in order.
    async fn publish_all(&self, events: Vec<Event>) -> Result<(), JournalError> {
        let Some(first) = events.first() else {
            return Ok(());
        };
        let ingest = self.ingest(first)?;
        Ok(ingest.publish(&events).await?)
    }

    fn last_seq(&self) -> u64 {
        self.inner.last.load(Ordering::Acquire)
    }

    /// Creates the durable pull consumer afresh at the requested start (a JetStream consumer's
    /// start cannot be changed, and re-attaching to an old one would bring its unacked messages
    /// back only after the ack wait, out of order). `StartAt::Resume` starts after the old
    /// consumer's ack floor.
    async fn subscribe(
        &self,
        consumer: &str,
        filter: &str,
        start: StartAt,
    ) -> Result<NatsSubscription, JournalError> {
        let consumer = &format!("{}{consumer}", self.namespace);
        check_consumer_name(consumer)?;
        let filter = SubjectFilter::new(filter)?;
        let inner = &self.inner;
        let (first, last) = inner.refresh().await?;
        let from = match start {
            StartAt::Beginning => 1,
            StartAt::Sequence(seq) => seq.max(1),
            StartAt::New => last + 1,
            StartAt::Resume => inner.acked(consumer).await?.map_or(1, |acked| acked + 1),
        };
        if first > 1 && from < first {
            return Err(JournalError::Archived {
                seq: from,
                archived_through: first - 1,
                location: format!("NATS stream {}", inner.spec.stream),
            });
        }
        let subjects: Vec<String> = filter.parts().map(|p| inner.spec.subject(p)).collect();
        let mut config = pull::Config {
            durable_name: Some(consumer.to_owned()),
            ack_policy: AckPolicy::All,
            ack_wait: ACK_WAIT,
            max_ack_pending: -1,
            ..Default::default()
        };
        match subjects.len() {
            1 => config.filter_subject = subjects[0].clone(),
            _ if inner.multi_filter => config.filter_subjects = subjects,
            _ => {}
        }
        let pull = inner.create(&config, from).await?;
        let (tx, rx) = mpsc::channel(4);
        let pump = tokio::spawn(pump(pull, config, from - 1, Arc::clone(inner), tx));
        Ok(NatsSubscription {
            name: consumer.to_owned(),
            inner: Arc::clone(inner),
            filter,
            rx,
            pump,
            buffer: VecDeque::new(),
            ackers: VecDeque::new(),
            read_upto: from - 1,
            delivered: from - 1,
            reported: from - 1,
        })
    }
}

/// What the pull task hands the subscription.
enum Pulled {
    Messages(Vec<jetstream::Message>),
    /// A pull found nothing: every matching message up to this stream sequence was handed over.
    Scanned(u64),
}

/// Pulls from the consumer into the subscription's channel. A task of its own, so a dropped
/// `next_batch` future (the runtime's `select!`) never drops messages the server already
/// handed out. NATS errors are retried: a consumer waits through an outage. After an error the
/// consumer is created afresh right after the last message handed over: a message the server
/// delivered into a broken connection (or to a pull given up on) would otherwise come back only
/// after the ack wait, behind everything after it.
async fn pump(
    mut pull: PullConsumer,
    config: pull::Config,
    mut forwarded: u64,
    inner: Arc<Inner>,
    tx: mpsc::Sender<Pulled>,
) {
    let mut broken = false;
    loop {
        if broken {
            match inner.create(&config, forwarded + 1).await {
                Ok(fresh) => {
                    pull = fresh;
                    broken = false;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "NATS consumer cannot be recreated; retrying");
                    tokio::time::sleep(RETRY).await;
                    continue;
                }
            }
        }
        let mut got = bounded(collect(pull.fetch().max_messages(FETCH).messages().await)).await;
        if got.as_ref().is_ok_and(Vec::is_empty) {
            // The stream's head is asked for only now, when a pull came back empty (not before
            // every pull: a round trip per batch while messages flow).
            let head = match inner.refresh().await {
                Ok((_, last)) => last,
                Err(e) => {
                    tracing::warn!(error = %e, "NATS consumer cannot reach the stream; retrying");
                    broken = true;
                    tokio::time::sleep(RETRY).await;
                    continue;
                }
            };
            // An empty fetch alone does not prove that nothing up to `head` is left (a
            // consumer just created after a server restart answers "no messages" before it
            // caught up with its stream): the server must also say that nothing is pending,
            // asked after `head` was read, so whatever matching reached the stream by then is
            // counted. What it delivered earlier arrived (an error would have marked the
            // consumer broken), so everything matching up to `head` was handed over.
            let pending = tokio::time::timeout(PULL_DEADLINE, pull.get_info())
                .await
                .ok()
                .and_then(Result::ok)
                .map(|info| info.num_pending);
            if pending == Some(0) {
                if tx.send(Pulled::Scanned(head)).await.is_err() {
                    return;
                }
                forwarded = forwarded.max(head);
            }
            got = bounded(collect(
                pull.batch().max_messages(1).expires(WAIT).messages().await,
            ))
            .await;
        }
        match got {
            Ok(messages) if messages.is_empty() => {}
            Ok(messages) => {
                let last = messages
                    .iter()
                    .filter_map(|m| m.info().ok().map(|i| i.stream_sequence))
                    .max()
                    .unwrap_or(forwarded);
                if tx.send(Pulled::Messages(messages)).await.is_err() {
                    return;
                }
                forwarded = forwarded.max(last);
            }
            Err(e) => {
                tracing::warn!(error = %e, "NATS pull failed; recreating the consumer");
                broken = true;
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

/// A pull request lost in a disconnect (the server restarted) is never answered, and its
/// message stream would wait for ever: every pull gets a deadline, after which it is retried.
pub(crate) const PULL_DEADLINE: Duration = Duration::from_secs(5);

async fn bounded(
    pull: impl std::future::Future<Output = Result<Vec<jetstream::Message>, String>>,
) -> Result<Vec<jetstream::Message>, String> {
    tokio::time::timeout(PULL_DEADLINE, pull)
        .await
        .unwrap_or_else(|_| Err("pull request unanswered (NATS restarted?)".to_owned()))
}

async fn collect<E: std::fmt::Display>(
    batch: Result<pull::Batch, E>,
) -> Result<Vec<jetstream::Message>, String> {
    let mut batch = batch.map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    while let Some(m) = batch.next().await {
        match m {
            Ok(m) => out.push(m),
            // What arrived before the error is kept: the next pull continues after it.
            Err(e) if out.is_empty() => return Err(e.to_string()),
            Err(_) => break,
        }
    }
    Ok(out)
}

/// A durable pull consumer on the stream.
pub struct NatsSubscription {
    name: String,
    inner: Arc<Inner>,
    filter: SubjectFilter,
    rx: mpsc::Receiver<Pulled>,
    pump: JoinHandle<()>,
    buffer: VecDeque<Delivery>,
    /// The ack handles of messages read and not acked yet, by sequence.
    ackers: VecDeque<(u64, Acker)>,
    /// Highest sequence read (into the buffer or skipped); anything at or below it that comes
    /// again (a redelivery) is dropped.
    read_upto: u64,
    /// Highest sequence handed out (or reported scanned); acks beyond it are refused.
    delivered: u64,
    reported: u64,
}

impl NatsSubscription {
    /// Waits for what the pull task has and sorts it into the buffer. Cancel-safe: nothing
    /// is taken from the channel before the await completes.
    async fn receive(&mut self) -> Result<(), JournalError> {
        let Some(first) = self.rx.recv().await else {
            return Err(JournalError::Closed);
        };
        self.take(first)?;
        while let Ok(more) = self.rx.try_recv() {
            self.take(more)?;
        }
        Ok(())
    }

    fn take(&mut self, pulled: Pulled) -> Result<(), JournalError> {
        match pulled {
            Pulled::Scanned(head) => {
                self.read_upto = self.read_upto.max(head);
                Ok(())
            }
            Pulled::Messages(messages) => {
                for m in messages {
                    self.take_message(m)?;
                }
                Ok(())
            }
        }
    }

    fn take_message(&mut self, message: jetstream::Message) -> Result<(), JournalError> {
        let bad = |stream_seq, reason: String| -> JournalError {
            BusError::BadMessage {
                stream: self.inner.spec.stream.clone(),
                stream_seq,
                reason,
            }
            .into()
        };
        let stream_seq = message
            .info()
            .map_err(|e| bad(0, format!("no JetStream metadata: {e}")))?
            .stream_sequence;
        let (message, acker) = message.split();
        let header = |name: &HeaderName| {
            message
                .headers
                .as_ref()
                .and_then(|h| h.get(name.clone()))
                .and_then(|v| v.as_str().parse::<i64>().ok())
        };
        let seq = header(&SEQ_NAME)
            .and_then(|s| u64::try_from(s).ok())
            .ok_or_else(|| bad(stream_seq, format!("no {SEQ_HEADER} header")))?;
        if seq != stream_seq {
            return Err(bad(
                stream_seq,
                format!(
                    "carries journal seq {seq}: the stream was not written by the outbox alone"
                ),
            ));
        }
        self.inner.last.fetch_max(seq, Ordering::AcqRel);
        if seq <= self.read_upto {
            return Ok(()); // a redelivery of what this subscription already read
        }
        self.read_upto = seq;
        self.ackers.push_back((seq, acker));
        let Some(subject) = self.inner.spec.event_subject(message.subject.as_str()) else {
            return Err(bad(
                stream_seq,
                format!("subject {} outside the prefix", message.subject),
            ));
        };
        if !self.filter.matches(subject) {
            return Ok(());
        }
        let event: Event = serde_json::from_slice(&message.payload)
            .map_err(|e| bad(stream_seq, format!("not an event: {e}")))?;
        let recorded_at = header(&RECORDED_AT_NAME)
            .ok_or_else(|| bad(stream_seq, format!("no {RECORDED_AT_HEADER} header")))?;
        self.buffer.push_back(Delivery {
            seq,
            recorded_at: Timestamp::from_nanos(recorded_at),
            subject: subject.to_owned(),
            event,
        });
        Ok(())
    }
}

impl Subscription for NatsSubscription {
    async fn next(&mut self) -> Result<Delivery, JournalError> {
        loop {
            if let Some(d) = self.buffer.pop_front() {
                self.delivered = self.delivered.max(d.seq);
                return Ok(d);
            }
            self.receive().await?;
        }
    }

    async fn next_batch(&mut self, max: usize) -> Result<Vec<Delivery>, JournalError> {
        loop {
            if !self.buffer.is_empty() {
                let n = self.buffer.len().min(max.max(1));
                let out: Vec<Delivery> = self.buffer.drain(..n).collect();
                self.reported = self.scanned();
                self.delivered = self.delivered.max(out[n - 1].seq).max(self.reported);
                return Ok(out);
            }
            let scanned = self.scanned();
            if scanned > self.reported {
                self.delivered = self.delivered.max(scanned);
                self.reported = scanned;
                return Ok(Vec::new());
            }
            self.receive().await?;
        }
    }

    fn scanned(&self) -> u64 {
        match self.buffer.front() {
            Some(d) => d.seq - 1,
            None => self.read_upto,
        }
    }

    /// Acks the newest message read at or below `seq` (`AckAll` covers everything before it)
    /// and waits for the server to confirm. A failed ack is logged, not returned: the next ack
    /// covers it, and at worst a restart sees those events again (at-least-once; consumers
    /// skip what they already applied).
    async fn ack(&mut self, seq: u64) -> Result<(), JournalError> {
        if seq > self.delivered {
            return Err(JournalError::AckBeyondDelivered {
                seq,
                delivered: self.delivered,
            });
        }
        let mut newest = None;
        while self.ackers.front().is_some_and(|(s, _)| *s <= seq) {
            newest = self.ackers.pop_front();
        }
        if let Some((acked, acker)) = newest
            && let Err(e) = acker.double_ack().await
        {
            tracing::warn!(consumer = %self.name, seq = acked, error = %e, "NATS ack failed; the next ack covers it");
        }
        Ok(())
    }

    fn consumer(&self) -> Option<&str> {
        Some(&self.name)
    }
}

impl Drop for NatsSubscription {
    fn drop(&mut self) {
        self.pump.abort();
    }
}
