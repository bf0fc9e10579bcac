//! The live feed over TLS against a local `wss://` server whose certificate is signed by a test
//! CA (tests/tls, made by tests/tls/make-certs.sh): it connects when the CA is given as an extra
//! root and refuses the server otherwise; a silent connection is dropped after the idle timeout,
//! its data shows as stale and fresh again once data resumes; a Kraken book that fails its
//! checksum makes the feed resubscribe.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use feeds::live::{Backoff, LiveOptions, LiveSpec};
use futures_util::SinkExt;
use model::{Event, Timestamp};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use telemetry::freshness::Freshness;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

type Ws = WebSocketStream<tokio_rustls::server::TlsStream<TcpStream>>;

fn tls_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/tls")
        .join(name)
}

fn test_ca() -> CertificateDer<'static> {
    CertificateDer::from_pem_file(tls_file("ca.pem")).unwrap()
}

fn acceptor() -> TlsAcceptor {
    let certs = CertificateDer::pem_file_iter(tls_file("server.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(tls_file("server.key")).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    TlsAcceptor::from(Arc::new(config))
}

/// A `wss://` server on a free port: every accepted connection (numbered from 0) goes to
/// `handle` in its own task; a failed handshake (a client refusing the certificate) just ends.
async fn wss_server<F, Fut>(handle: F) -> (u16, tokio::task::JoinHandle<()>)
where
    F: Fn(usize, Ws) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = acceptor();
    let handle = Arc::new(handle);
    let server = tokio::spawn(async move {
        for n in 0.. {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (acceptor, handle) = (acceptor.clone(), handle.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                if let Ok(ws) = tokio_tungstenite::accept_async(tls).await {
                    handle(n, ws).await;
                }
            });
        }
    });
    (port, server)
}

/// NKNUSDT's messages (book ticker and depth) from a real Binance capture.
fn nknusdt_messages() -> Option<Vec<String>> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/marketdata/binance-spot/cryptofeed_BINANCE.ws.1.0");
    if !p.exists() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "fixture {} missing under CI",
            p.display()
        );
        eprintln!("skipping: fixture {} not found", p.display());
        return None;
    }
    let text = std::fs::read_to_string(p).unwrap();
    Some(
        text.lines()
            .filter(|l| l.contains("\"stream\":\"nknusdt@") && !l.contains(" <-"))
            .filter_map(|l| l.split_once(": ").map(|(_, m)| m.to_owned()))
            .collect(),
    )
}

/// A running feed with its event receiver, metrics and freshness.
struct Feed {
    rx: mpsc::Receiver<Event>,
    metrics: telemetry::Metrics,
    freshness: Freshness,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), feeds::FeedError>>,
}

impl Feed {
    fn start(spec: &LiveSpec, idle: Duration, roots: Vec<CertificateDer<'static>>) -> Feed {
        let (tx, rx) = mpsc::channel::<Event>(100_000);
        let (metrics, freshness) = (telemetry::Metrics::new(), Freshness::new());
        let shutdown = CancellationToken::new();
        let options = LiveOptions {
            backoff: Backoff {
                initial: Duration::from_millis(20),
                max: Duration::from_millis(100),
            },
            idle_timeout: idle,
            extra_roots: roots,
            freshness: freshness.clone(),
        };
        let task = tokio::spawn(feeds::live::run(
            spec.clone(),
            options,
            tx,
            metrics.clone(),
            shutdown.clone(),
        ));
        Feed {
            rx,
            metrics,
            freshness,
            shutdown,
            task,
        }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap().unwrap();
    }
}

/// Polls `cond` until it holds; fails after a minute (a generous bound, not a measurement).
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..6000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for: {what}");
}

fn counter(metrics: &telemetry::Metrics, line_start: &str) -> u64 {
    metrics
        .render()
        .lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn wss_feed_trusts_an_extra_root_and_refuses_an_unknown_certificate() {
    let Some(messages) = nknusdt_messages() else {
        return;
    };
    let expected: usize = messages
        .iter()
        .map(|m| {
            marketdata::parse(marketdata::Exchange::Binance, m, Timestamp::from_secs(0))
                .unwrap()
                .len()
        })
        .sum();
    assert!(expected > 100, "{expected}");
    let to_send = messages.clone();
    let (port, server) = wss_server(move |_, mut ws| {
        let to_send = to_send.clone();
        async move {
            for m in to_send {
                ws.send(Message::text(m)).await.unwrap();
            }
            // Stay open (reading answers the client's pings).
            while futures_util::StreamExt::next(&mut ws).await.is_some() {}
        }
    })
    .await;
    let spec: LiveSpec = format!("binance:NKNUSDT@wss://localhost:{port}/stream")
        .parse()
        .unwrap();

    // Without the test CA the server's certificate is refused: no events, failures counted.
    let mut refused = Feed::start(&spec, Duration::from_secs(30), vec![]);
    let errors = "trade2026_feed_connects_total{exchange=\"binance\",outcome=\"error\"}";
    eventually("refused connections", || {
        counter(&refused.metrics, errors) >= 2
    })
    .await;
    assert!(refused.rx.try_recv().is_err(), "no event came through");
    assert!(refused.freshness.report()[0].stale);
    refused.stop().await;

    // With it, every recorded event arrives.
    let mut feed = Feed::start(&spec, Duration::from_secs(30), vec![test_ca()]);
    let mut got = Vec::new();
    while got.len() < expected {
        match tokio::time::timeout(Duration::from_secs(30), feed.rx.recv()).await {
            Ok(Some(e)) => got.push(e),
            other => panic!("feed stalled after {} of {expected}: {other:?}", got.len()),
        }
    }
    assert!(
        got.iter()
            .all(|e| e.instrument().unwrap().symbol.as_str() == "NKNUSDT")
    );
    let report = &feed.freshness.report()[0];
    assert_eq!(report.source, "binance:NKNUSDT");
    assert!(report.connected && !report.stale, "{report:?}");
    assert_eq!(
        (report.symbols[0].symbol.as_str(), report.symbols[0].stale),
        ("NKNUSDT", false)
    );
    assert_eq!(counter(&feed.metrics, errors), 0);
    feed.stop().await;
    server.abort();
}

#[tokio::test]
async fn a_silent_connection_is_replaced_and_its_data_is_stale_until_data_resumes() {
    let Some(messages) = nknusdt_messages() else {
        return;
    };
    // The first connection gets a few messages, then goes silent without closing (and without
    // reading, so the client's pings go unanswered: a half-open connection). Later connections
    // stay silent until the test says `resume`, then send data every 50 ms.
    let (resume_tx, resume_rx) = watch::channel(false);
    let (port, server) = wss_server(move |n, mut ws| {
        let messages = messages.clone();
        let mut resume = resume_rx.clone();
        async move {
            if n == 0 {
                for m in &messages[..5] {
                    ws.send(Message::text(m.clone())).await.unwrap();
                }
            } else if resume.wait_for(|go| *go).await.is_ok() {
                for m in messages.iter().cycle() {
                    if ws.send(Message::text(m.clone())).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            std::future::pending::<()>().await;
        }
    })
    .await;
    let spec: LiveSpec = format!("binance:NKNUSDT@wss://localhost:{port}/stream")
        .parse()
        .unwrap();
    let feed = Feed::start(&spec, Duration::from_millis(300), vec![test_ca()]);
    let (metrics, freshness) = (&feed.metrics, &feed.freshness);
    let symbol_stale = |f: &Freshness| f.is_stale("NKNUSDT");

    eventually("first data", || symbol_stale(freshness) == Some(false)).await;
    // Silence: the connection is dropped for idleness and replaced, the data goes stale.
    let idle = "trade2026_feed_connects_total{exchange=\"binance\",outcome=\"idle_timeout\"}";
    eventually("an idle timeout", || counter(metrics, idle) >= 1).await;
    eventually("a new connection", || freshness.report()[0].connects >= 2).await;
    eventually("stale data", || symbol_stale(freshness) == Some(true)).await;
    let report = &freshness.report()[0];
    assert!(report.symbols[0].stale, "{report:?}");

    // Data again: fresh.
    resume_tx.send(true).unwrap();
    eventually("fresh data", || symbol_stale(freshness) == Some(false)).await;
    let report = &freshness.report()[0];
    assert!(report.connected && !report.stale, "{report:?}");
    feed.stop().await;
    server.abort();
}

/// Kraken's documentation example (WebSocket v2 `book`, MATIC/USD) with its checksum.
const MATIC_SNAPSHOT: &str = r#"{"channel":"book","type":"snapshot","data":[{"symbol":"MATIC/USD","bids":[{"price":0.5666,"qty":4831.75496356},{"price":0.5665,"qty":6658.22734739},{"price":0.5664,"qty":18724.91513344},{"price":0.5663,"qty":11563.92544914},{"price":0.5662,"qty":14006.65365711},{"price":0.5661,"qty":17454.85679807},{"price":0.566,"qty":18097.1547},{"price":0.5659,"qty":33644.89175666},{"price":0.5658,"qty":148.3464},{"price":0.5657,"qty":606.70854372}],"asks":[{"price":0.5668,"qty":4410.79769741},{"price":0.5669,"qty":4655.40412487},{"price":0.567,"qty":49844.89424998},{"price":0.5671,"qty":24306.41678},{"price":0.5672,"qty":29783.25223475},{"price":0.5673,"qty":57234.71239278},{"price":0.5674,"qty":45065.04744},{"price":0.5675,"qty":5912.76380354},{"price":0.5676,"qty":42514.92434778},{"price":0.5677,"qty":36304.0847022}],"checksum":2439117997}]}"#;

const MATIC_TRADE: &str = r#"{"channel":"trade","type":"update","data":[{"symbol":"MATIC/USD","side":"sell","price":0.5117,"qty":40.0,"ord_type":"market","trade_id":4665906,"timestamp":"2023-09-25T07:49:37.708706Z"}]}"#;

#[tokio::test]
async fn a_book_failing_its_checksum_makes_the_feed_resubscribe() {
    // The first connection sends a snapshot with one level corrupted; the feed must drop it
    // and subscribe again, and the second connection's (correct) snapshot verifies.
    let (subscribed_tx, mut subscribed) = mpsc::unbounded_channel::<usize>();
    let (port, server) = wss_server(move |n, mut ws| {
        let subscribed_tx = subscribed_tx.clone();
        async move {
            // Wait for the subscription, as Kraken does.
            if futures_util::StreamExt::next(&mut ws).await.is_none() {
                return;
            }
            subscribed_tx.send(n).unwrap();
            let snapshot = if n == 0 {
                MATIC_SNAPSHOT.replace("4831.75496356", "4831.75496357")
            } else {
                MATIC_SNAPSHOT.to_owned()
            };
            ws.send(Message::text(snapshot)).await.unwrap();
            // A trade after it: once its event is out, the snapshot has been checked.
            ws.send(Message::text(MATIC_TRADE)).await.unwrap();
            while futures_util::StreamExt::next(&mut ws).await.is_some() {}
        }
    })
    .await;
    let spec: LiveSpec = format!("kraken:MATIC/USD@wss://localhost:{port}/v2")
        .parse()
        .unwrap();
    let mut feed = Feed::start(&spec, Duration::from_secs(30), vec![test_ca()]);
    assert_eq!(subscribed.recv().await, Some(0));
    assert_eq!(subscribed.recv().await, Some(1));
    // The first connection's snapshot is forwarded (the parser does not judge books), its
    // trade is not: the feed resubscribed right after the failed check.
    let mut kinds = Vec::new();
    while kinds.len() < 3 {
        let e = tokio::time::timeout(Duration::from_secs(30), feed.rx.recv())
            .await
            .unwrap();
        kinds.push(e.unwrap().kind().as_str());
    }
    assert_eq!(kinds, ["book_snapshot", "book_snapshot", "trade"]);
    let mismatches = "trade2026_feed_checksum_mismatches_total{exchange=\"kraken\"}";
    let resyncs = "trade2026_feed_connects_total{exchange=\"kraken\",outcome=\"resync\"}";
    assert_eq!(counter(&feed.metrics, mismatches), 1);
    assert_eq!(counter(&feed.metrics, resyncs), 1);
    // The good snapshot verified: no third subscription.
    assert!(subscribed.try_recv().is_err());
    feed.stop().await;
    server.abort();
}
