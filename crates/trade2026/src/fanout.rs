//! `trade2026 bench fanout`: committed journal events to a consumer elsewhere, through the core's
//! outbox, NATS JetStream and a runtime consumer over `NatsBus` (the path every
//! `trade2026 run <service>` consumer sits behind), beside the bare JetStream ceiling measured
//! in the same run: async-nats publishing the same messages (payload, subjects, headers) and a
//! pull consumer reading them, none of our code in between, once with the outbox's protocol
//! (one acked publish per 512, the rest unacked) and once with an ack per message (what
//! `jetstream::Context::publish` does).
//!
//! Each run uses streams of its own (`FANOUT_<pid>_<ms>`, `FANOUTRAW<n>_<pid>_<ms>`) and a
//! fresh journal in a temporary folder, and deletes the streams at the end, so it can run
//! against the server a cluster uses.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::fmt;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use async_nats::header::{NATS_EXPECTED_LAST_SEQUENCE, NATS_MESSAGE_ID};
use async_nats::jetstream::{
    self,
    consumer::{AckPolicy, pull},
    context::PublishAckFuture,
    message::PublishMessage,
};
use async_nats::{HeaderMap, HeaderName};
use bus_nats::{NatsBus, Outbox, RECORDED_AT_HEADER, SEQ_HEADER, StreamSpec};
use clap::Args;
use futures_util::StreamExt;
use hdrhistogram::Histogram;
use journal::{Delivery, Journal};
use model::{AccountId, Event, OrderId, Timestamp};
use runtime::{Consumer, ConsumerMetrics, Runner, Spec, StoredPosition};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

#[derive(Args)]
pub struct BenchFanoutArgs {
    /// NATS server with JetStream.
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    nats: String,
    /// Events sent through each path.
    #[arg(long, default_value_t = 500_000)]
    events: u64,
    /// Events per second on a fixed schedule (for latency at a steady rate), or `max`
    /// (throughput: as fast as the journal takes them).
    #[arg(long, default_value = "max")]
    rate: String,
    /// Events per journal append (and per burst of raw publishes): the producer side's batch.
    #[arg(long, default_value_t = 100)]
    batch: u64,
    /// Skip the bare JetStream runs.
    #[arg(long)]
    no_ceiling: bool,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(args: BenchFanoutArgs) -> Result<()> {
    let rate = match args.rate.as_str() {
        "max" => None,
        r => Some(
            r.parse::<f64>()
                .ok()
                .filter(|r| r.is_finite() && *r > 0.0)
                .with_context(|| format!("--rate {r:?}: a positive number of events/s or max"))?,
        ),
    };
    if args.events == 0 || args.batch == 0 {
        bail!("--events and --batch must be at least 1");
    }
    let opts = Opts {
        events: args.events,
        rate,
        batch: args.batch,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let report = rt.block_on(bench(&args.nats, opts, !args.no_ceiling))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{report}");
    }
    Ok(())
}

#[derive(Debug, Clone, Copy)]
struct Opts {
    events: u64,
    /// Events/s; `None`: as fast as possible.
    rate: Option<f64>,
    batch: u64,
}

impl Opts {
    /// Waits until batch `sent / batch` is due (open loop: a late batch goes at once).
    async fn pace(&self, start: Instant, sent: u64) {
        if let Some(rate) = self.rate {
            let at = start + Duration::from_secs_f64(sent as f64 / rate);
            tokio::time::sleep_until(at.into()).await;
        }
    }

    /// How long a path may take before the run is called stuck.
    fn deadline(&self) -> Duration {
        let sending = self.rate.map_or(0.0, |r| self.events as f64 / r);
        Duration::from_secs_f64(120.0 + sending + self.events as f64 / 5_000.0)
    }
}

/// Order-shaped events like the order path journals: an IOC order's accept and expiry, over
/// 64 accounts.
fn event(i: u64) -> Event {
    let account = AccountId::new(format!("bench-{}", i % 64)).expect("valid account id");
    let order_id = OrderId(i / 2 + 1);
    let ts = Timestamp::now();
    if i.is_multiple_of(2) {
        Event::OrderAccepted {
            order_id,
            account,
            ts,
        }
    } else {
        Event::OrderExpired {
            order_id,
            account,
            reason: "ioc".to_owned(),
            ts,
        }
    }
}

fn histogram() -> Histogram<u64> {
    // Nanoseconds up to an hour, 3 significant digits.
    Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("constant histogram bounds")
}

fn record_since(h: &mut Histogram<u64>, from_ns: i64, now_ns: i64) {
    h.saturating_record(u64::try_from(now_ns - from_ns).unwrap_or(0).max(1));
}

#[derive(Debug, Serialize)]
pub struct Report {
    nats: String,
    server_version: String,
    events: u64,
    /// Events/s asked for; `None`: max.
    rate: Option<f64>,
    batch: u64,
    /// Mean JSON payload of the events, bytes.
    payload_bytes: f64,
    load_before: String,
    load_after: String,
    ours: PathReport,
    /// Bare async-nats, one acked publish per 512 (the outbox's protocol): the ceiling.
    ceiling: Option<PathReport>,
    /// Bare async-nats, every publish acked.
    ceiling_acked_each: Option<PathReport>,
}

#[derive(Debug, Serialize)]
pub struct PathReport {
    /// First event sent to the last one received by the consumer.
    seconds: f64,
    events_per_sec: f64,
    /// When the producer side had everything stored: the journal durable (ours), every
    /// publish acknowledged by the stream (bare).
    stored_secs: f64,
    /// When the outbox had published the last record (ours only).
    published_secs: Option<f64>,
    /// Journal commit (ours) or publish (bare) to the consumer receiving the event.
    latency: Percentiles,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Percentiles {
    p50_us: f64,
    p90_us: f64,
    p99_us: f64,
    p999_us: f64,
    max_us: f64,
}

impl Percentiles {
    fn of(h: &Histogram<u64>) -> Percentiles {
        let us = |ns: u64| ns as f64 / 1_000.0;
        Percentiles {
            p50_us: us(h.value_at_quantile(0.50)),
            p90_us: us(h.value_at_quantile(0.90)),
            p99_us: us(h.value_at_quantile(0.99)),
            p999_us: us(h.value_at_quantile(0.999)),
            max_us: us(h.max()),
        }
    }
}

/// The 1, 5 and 15 minute load averages.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

async fn connect(url: &str) -> Result<async_nats::Client> {
    tokio::time::timeout(Duration::from_secs(10), async_nats::connect(url))
        .await
        .map_err(|_| anyhow!("--nats {url}: no answer within 10 s"))?
        .with_context(|| format!("--nats {url}"))
}

async fn bench(url: &str, opts: Opts, ceiling: bool) -> Result<Report> {
    // Separate connections for the producer and the consumer side, as on separate machines.
    let producer = connect(url).await?;
    let consumer = connect(url).await?;
    let unique = format!(
        "{}_{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis()
    );
    let ours_spec = StreamSpec {
        stream: format!("FANOUT_{unique}"),
        prefix: format!("fanout_{unique}"),
        ..StreamSpec::default()
    };
    let raw_spec = |n: u32| StreamSpec {
        stream: format!("FANOUTRAW{n}_{unique}"),
        prefix: format!("fanoutraw{n}_{unique}"),
        ..StreamSpec::default()
    };
    let raw_specs = [raw_spec(1), raw_spec(2)];
    let sample = 1_000.min(opts.events);
    let payload_bytes = (0..sample)
        .map(|i| serde_json::to_vec(&event(i)).map(|v| v.len()))
        .sum::<Result<usize, _>>()? as f64
        / sample as f64;
    let load_before = load_average();
    let measured = async {
        let ours = ours(&producer, &consumer, &ours_spec, opts).await?;
        if !ceiling {
            return anyhow::Ok((ours, None, None));
        }
        let per_round = bare(&producer, &consumer, &raw_specs[0], opts, ROUND).await?;
        let each = bare(&producer, &consumer, &raw_specs[1], opts, 1).await?;
        anyhow::Ok((ours, Some(per_round), Some(each)))
    }
    .await;
    let load_after = load_average();
    // Deleted whatever happened, so failed runs leave nothing on a shared server.
    let js = jetstream::new(producer.clone());
    for spec in [&ours_spec, &raw_specs[0], &raw_specs[1]] {
        let _ = js.delete_stream(&spec.stream).await;
    }
    let (ours, ceiling, ceiling_acked_each) = measured?;
    Ok(Report {
        nats: url.to_owned(),
        server_version: producer.server_info().version,
        events: opts.events,
        rate: opts.rate,
        batch: opts.batch,
        payload_bytes,
        load_before,
        load_after,
        ours,
        ceiling,
        ceiling_acked_each,
    })
}

/// The runtime consumer at the end of our path: records how long each event took from its
/// journal commit, and when the last one arrived.
struct Probe {
    latency: Histogram<u64>,
    last: u64,
    done_at: Option<Instant>,
}

impl Consumer for Probe {
    type Error = Infallible;

    fn apply(&mut self, batch: &[Delivery], _out: &mut Vec<Event>) -> Result<(), Infallible> {
        let now = Timestamp::now().as_nanos();
        for d in batch {
            record_since(&mut self.latency, d.recorded_at.as_nanos(), now);
        }
        if batch.last().is_some_and(|d| d.seq >= self.last) && self.done_at.is_none() {
            self.done_at = Some(Instant::now());
        }
        Ok(())
    }
}

impl StoredPosition for Probe {
    /// A fresh consumer: it starts at the stream's beginning.
    fn stored_position(&self) -> Result<u64, Infallible> {
        Ok(0)
    }
}

/// Journal -> Outbox -> JetStream -> NatsBus -> runtime consumer.
async fn ours(
    producer: &async_nats::Client,
    consumer: &async_nats::Client,
    spec: &StreamSpec,
    opts: Opts,
) -> Result<PathReport> {
    let dir = tempfile::tempdir().context("creating a temporary folder for the journal")?;
    let (journal, _) = Journal::open(&dir.path().join("events.db"))?;
    let shutdown = CancellationToken::new();
    let outbox = Outbox::new(producer.clone(), spec.clone(), journal.clone()).await?;
    let mut published = outbox.published();
    let outbox_task = tokio::spawn(outbox.run(shutdown.clone()));
    let bus = NatsBus::connect(consumer.clone(), spec.clone()).await?;
    let runner = Runner::new(
        bus,
        ConsumerMetrics::register(&telemetry::Metrics::new()),
        shutdown.clone(),
    );
    let probe = Probe {
        latency: histogram(),
        last: opts.events,
        done_at: None,
    };
    let (handle, consumer_task) = runner.start_stored(Spec::new("fanout", ">"), probe).await?;

    let deadline = opts.deadline();
    let measured = async {
        // Appends are queued in order and awaited behind, a bounded number in flight, so the
        // journal's group commit sees the load a busy engine gives it.
        const IN_FLIGHT: usize = 64;
        let start = Instant::now();
        let mut pending = VecDeque::new();
        let mut sent = 0;
        while sent < opts.events {
            opts.pace(start, sent).await;
            let n = opts.batch.min(opts.events - sent);
            pending.push_back(journal.enqueue_batch((sent..sent + n).map(event).collect())?);
            sent += n;
            while pending.len() > IN_FLIGHT {
                pending.pop_front().expect("non-empty").await?;
            }
        }
        for commit in pending {
            commit.await?;
        }
        let stored = start.elapsed();
        tokio::time::timeout(deadline, published.wait_for(|p| *p >= opts.events))
            .await
            .map_err(|_| anyhow!("the outbox did not publish everything within {deadline:?}"))?
            .map_err(|_| anyhow!("the outbox stopped"))?;
        let published_at = start.elapsed();
        handle
            .wait_for(opts.events, deadline)
            .await
            .map_err(|l| anyhow!("{l:?}"))?;
        let (latency, done_at) = handle.read(|p| (p.latency.clone(), p.done_at));
        let seconds = done_at
            .map_or_else(|| start.elapsed(), |t| t - start)
            .as_secs_f64();
        anyhow::Ok(PathReport {
            seconds,
            events_per_sec: opts.events as f64 / seconds,
            stored_secs: stored.as_secs_f64(),
            published_secs: Some(published_at.as_secs_f64()),
            latency: Percentiles::of(&latency),
        })
    }
    .await;
    shutdown.cancel();
    if let Ok(Err(e)) = outbox_task.await {
        tracing::warn!(error = %e, "outbox");
    }
    if let Ok(Err(e)) = consumer_task.await {
        tracing::warn!(error = %e, "consumer");
    }
    journal.shutdown()?;
    measured
}

/// Messages per acked publish and per consumer ack in the bare runs: the outbox's round and
/// the consumer's fetch.
const ROUND: u64 = 512;

/// A bare run: the same messages (payload, subject shape and headers) published by async-nats
/// into a stream like ours, every `ack_every`-th one (and the last) asking for the stream's ack
/// and the others sent without, read by a durable pull consumer (`AckAll`, acked every 512),
/// with none of our code in between.
async fn bare(
    producer: &async_nats::Client,
    consumer: &async_nats::Client,
    spec: &StreamSpec,
    opts: Opts,
    ack_every: u64,
) -> Result<PathReport> {
    let js = jetstream::new(producer.clone());
    spec.ensure(&js).await?;
    let pull = jetstream::new(consumer.clone())
        .get_stream(&spec.stream)
        .await?
        .create_consumer(pull::Config {
            durable_name: Some("fanout".to_owned()),
            ack_policy: AckPolicy::All,
            max_ack_pending: -1,
            ..Default::default()
        })
        .await?;
    let events = opts.events;
    // Header names built once, as the outbox and NatsBus do.
    let seq_name = HeaderName::from_static(SEQ_HEADER);
    let sent_at_name = HeaderName::from_static(RECORDED_AT_HEADER);
    let sent_at = sent_at_name.clone();
    let reader = tokio::spawn(async move {
        let mut messages = pull
            .stream()
            .max_messages_per_batch(ROUND as usize)
            .messages()
            .await?;
        let mut latency = histogram();
        let mut received: u64 = 0;
        while let Some(m) = messages.next().await {
            let m = m.map_err(|e| anyhow!("reading: {e}"))?;
            let now = Timestamp::now().as_nanos();
            let sent_at = m
                .headers
                .as_ref()
                .and_then(|h| h.get(sent_at.clone()))
                .and_then(|v| v.as_str().parse::<i64>().ok())
                .context("a message without its send time")?;
            record_since(&mut latency, sent_at, now);
            received += 1;
            if received.is_multiple_of(ROUND) || received == events {
                m.ack().await.map_err(|e| anyhow!("ack: {e}"))?;
            }
            if received == events {
                return anyhow::Ok((latency, Instant::now()));
            }
        }
        bail!("the consumer's message stream ended after {received} messages")
    });
    // Publish acks are awaited on a task of their own, a window of them in flight. An acked
    // message stored at its own sequence means every one before it was stored too (each
    // expects the one before it).
    let (acks, mut ack_rx) = mpsc::channel::<(u64, PublishAckFuture)>(4_096);
    let acker = tokio::spawn(async move {
        while let Some((seq, ack)) = ack_rx.recv().await {
            let ack = ack.await.map_err(|e| anyhow!("publish {seq}: {e}"))?;
            if ack.sequence != seq {
                bail!("message {seq} stored at stream sequence {}", ack.sequence);
            }
        }
        anyhow::Ok(())
    });
    let start = Instant::now();
    let mut sent = 0;
    while sent < events {
        opts.pace(start, sent).await;
        for i in sent..(sent + opts.batch).min(events) {
            let e = event(i);
            let seq = i + 1;
            let mut headers = HeaderMap::new();
            headers.insert(NATS_MESSAGE_ID, seq.to_string());
            headers.insert(NATS_EXPECTED_LAST_SEQUENCE, (seq - 1).to_string());
            headers.insert(seq_name.clone(), seq.to_string());
            headers.insert(
                sent_at_name.clone(),
                Timestamp::now().as_nanos().to_string(),
            );
            let payload = serde_json::to_vec(&e)?.into();
            let subject = format!("{}.{}", spec.prefix, e.subject());
            if !seq.is_multiple_of(ack_every) && seq != events {
                producer
                    .publish_with_headers(subject, headers, payload)
                    .await?;
                continue;
            }
            let message = PublishMessage::build().payload(payload).headers(headers);
            let ack = js.send_publish(subject, message).await?;
            if acks.send((seq, ack)).await.is_err() {
                break; // the acker failed: its error is reported below
            }
        }
        sent = (sent + opts.batch).min(events);
    }
    drop(acks);
    acker.await??;
    let stored = start.elapsed();
    let (latency, done_at) = tokio::time::timeout(opts.deadline(), reader)
        .await
        .map_err(|_| anyhow!("the raw consumer did not receive everything"))???;
    let seconds = (done_at - start).as_secs_f64();
    Ok(PathReport {
        seconds,
        events_per_sec: events as f64 / seconds,
        stored_secs: stored.as_secs_f64(),
        published_secs: None,
        latency: Percentiles::of(&latency),
    })
}

fn ms(us: f64) -> String {
    if us >= 1_000.0 {
        format!("{:.1} ms", us / 1_000.0)
    } else {
        format!("{us:.0} µs")
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rate = self
            .rate
            .map_or_else(|| "max".to_owned(), |r| format!("{r:.0}/s"));
        writeln!(
            f,
            "bench fanout: {} events (OrderAccepted/OrderExpired, {:.0} B of JSON each), rate {rate}, \
             batch {}; NATS {} (server {})",
            self.events, self.payload_bytes, self.batch, self.nats, self.server_version
        )?;
        writeln!(
            f,
            "load average {} -> {}",
            self.load_before, self.load_after
        )?;
        writeln!(
            f,
            "{:<44} {:>10} {:>8} {:>9} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "path",
            "events/s",
            "stored",
            "published",
            "received",
            "p50",
            "p90",
            "p99",
            "p99.9",
            "max"
        )?;
        let row = |f: &mut fmt::Formatter<'_>, name: &str, p: &PathReport| {
            let l = p.latency;
            writeln!(
                f,
                "{:<44} {:>10.0} {:>7.2}s {:>9} {:>7.2}s {:>9} {:>9} {:>9} {:>9} {:>9}",
                name,
                p.events_per_sec,
                p.stored_secs,
                p.published_secs
                    .map_or_else(|| "-".to_owned(), |s| format!("{s:.2}s")),
                p.seconds,
                ms(l.p50_us),
                ms(l.p90_us),
                ms(l.p99_us),
                ms(l.p999_us),
                ms(l.max_us)
            )
        };
        row(f, "ours: journal > outbox > NatsBus > runtime", &self.ours)?;
        if let Some(c) = &self.ceiling_acked_each {
            row(f, "bare: publish, each acked > pull consumer", c)?;
        }
        if let Some(c) = &self.ceiling {
            row(f, "ceiling: publish, 1 ack/512 > pull consumer", c)?;
            writeln!(
                f,
                "ours / ceiling: throughput {:.0}%, p50 {:.1}x, p99 {:.1}x",
                100.0 * self.ours.events_per_sec / c.events_per_sec,
                self.ours.latency.p50_us / c.latency.p50_us,
                self.ours.latency.p99_us / c.latency.p99_us
            )?;
        }
        writeln!(
            f,
            "latency: journal commit (ours) or publish (bare) to the consumer receiving it; \
             stored: journal durable / publishes acked; received: the last event consumed"
        )
    }
}
