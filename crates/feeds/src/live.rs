//! Live market data from the exchanges' public WebSocket streams.
//!
//! One task per `exchange:SYMBOL,SYMBOL` spec: connect (TLS through rustls, trusting the
//! webpki roots plus any given ones), subscribe, parse every message with the `marketdata`
//! parsers, forward the events. It reconnects with exponential backoff (0.5 s doubling to 30 s;
//! reset once a connection delivered data) when the connection drops or fails, when nothing at
//! all arrived for the idle timeout (a half-open connection: the feed pings every third of it,
//! so a live connection always answers), and when a Kraken or OKX book fails its checksum (the
//! new subscription starts with fresh snapshots). Each feed records its freshness (connected,
//! last message, last data per symbol) for `/marketdata` and `/health`.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use marketdata::{BookVerifier, Exchange};
use model::{Event, Timestamp};
use rustls::ClientConfig;
use rustls::pki_types::CertificateDer;
use telemetry::Metrics;
use telemetry::freshness::{Freshness, SourceHandle};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::Connector;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use crate::FeedError;

/// What to subscribe to: `binance:BTCUSDT,ETHUSDT`, optionally with a URL override
/// (`binance:BTCUSDT@ws://127.0.0.1:9000/stream`) for tests and proxies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveSpec {
    pub exchange: Exchange,
    pub symbols: Vec<String>,
    pub url: Option<String>,
}

impl FromStr for LiveSpec {
    type Err = FeedError;
    fn from_str(spec: &str) -> Result<Self, FeedError> {
        let bad = |reason: String| FeedError::BadSpec {
            spec: spec.to_string(),
            reason,
        };
        let (exchange, rest) = spec
            .split_once(':')
            .ok_or_else(|| bad("expected exchange:SYMBOL[,SYMBOL...]".into()))?;
        let exchange: Exchange = exchange.parse().map_err(|e| bad(format!("{e}")))?;
        let (symbols, url) = match rest.split_once('@') {
            Some((s, u)) => (s, Some(u.to_string())),
            None => (rest, None),
        };
        let symbols: Vec<String> = symbols
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        if symbols.is_empty() {
            return Err(bad("no symbols given".into()));
        }
        Ok(LiveSpec {
            exchange,
            symbols,
            url,
        })
    }
}

impl LiveSpec {
    /// The public endpoint of the exchange, with the streams in the URL where the exchange
    /// subscribes that way (Binance).
    pub fn url(&self) -> String {
        if let Some(u) = &self.url {
            return u.clone();
        }
        let binance_streams = || {
            self.symbols
                .iter()
                .flat_map(|s| {
                    let s = s.to_lowercase();
                    [
                        format!("{s}@trade"),
                        format!("{s}@bookTicker"),
                        format!("{s}@depth@100ms"),
                    ]
                })
                .collect::<Vec<_>>()
                .join("/")
        };
        match self.exchange {
            Exchange::Binance => format!(
                "wss://stream.binance.com:9443/stream?streams={}",
                binance_streams()
            ),
            Exchange::BinanceFutures => format!(
                "wss://fstream.binance.com/stream?streams={}",
                binance_streams()
            ),
            Exchange::Coinbase => "wss://ws-feed.exchange.coinbase.com".into(),
            Exchange::Kraken => "wss://ws.kraken.com/v2".into(),
            Exchange::Bybit => "wss://stream.bybit.com/v5/public/spot".into(),
            Exchange::Okx => "wss://ws.okx.com:8443/ws/v5/public".into(),
        }
    }

    /// Messages to send after connecting (none for Binance, whose streams are in the URL).
    pub fn subscribe_messages(&self) -> Vec<String> {
        let syms = &self.symbols;
        match self.exchange {
            Exchange::Binance | Exchange::BinanceFutures => vec![],
            Exchange::Coinbase => vec![
                serde_json::json!({"type":"subscribe","product_ids":syms,"channels":["matches","ticker","level2_batch"]})
                    .to_string(),
            ],
            Exchange::Kraken => ["trade", "ticker", "book"]
                .iter()
                .map(|c| serde_json::json!({"method":"subscribe","params":{"channel":c,"symbol":syms}}).to_string())
                .collect(),
            Exchange::Bybit => {
                let args: Vec<String> = syms
                    .iter()
                    .flat_map(|s| [format!("publicTrade.{s}"), format!("orderbook.50.{s}"), format!("tickers.{s}")])
                    .collect();
                vec![serde_json::json!({"op":"subscribe","args":args}).to_string()]
            }
            Exchange::Okx => {
                let args: Vec<_> = syms
                    .iter()
                    .flat_map(|s| {
                        ["trades", "bbo-tbt", "books"].map(|c| serde_json::json!({"channel":c,"instId":s}))
                    })
                    .collect();
                vec![serde_json::json!({"op":"subscribe","args":args}).to_string()]
            }
        }
    }

    /// The feed's name in `/marketdata` and `/health`: the spec without its URL override.
    pub fn name(&self) -> String {
        format!("{}:{}", self.exchange, self.symbols.join(","))
    }

    /// Application-level keep-alive some exchanges require (they drop silent clients).
    fn keepalive(&self) -> Option<(Duration, &'static str)> {
        match self.exchange {
            Exchange::Bybit => Some((Duration::from_secs(20), r#"{"op":"ping"}"#)),
            Exchange::Okx => Some((Duration::from_secs(25), "ping")),
            _ => None,
        }
    }
}

/// Backoff between reconnection attempts.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(30),
        }
    }
}

/// How long a connection may stay silent (not even a heartbeat or pong) before it is dropped
/// and the feed's data counts as stale.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// How a live feed connects, and what it reports.
#[derive(Clone)]
pub struct LiveOptions {
    pub backoff: Backoff,
    /// Silence after which the connection is replaced (see [`DEFAULT_IDLE_TIMEOUT`]).
    pub idle_timeout: Duration,
    /// Certificates trusted as roots besides the webpki (Mozilla) set: a private CA of a proxy,
    /// or a test server's.
    pub extra_roots: Vec<CertificateDer<'static>>,
    /// Where the feed records its freshness, under [`LiveSpec::name`].
    pub freshness: Freshness,
}

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            backoff: Backoff::default(),
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            extra_roots: Vec::new(),
            freshness: Freshness::new(),
        }
    }
}

/// The TLS client configuration of every feed connection: TLS 1.2 and 1.3 with the aws-lc-rs
/// provider (named here, so another crate enabling a second provider cannot make the choice
/// ambiguous), trusting the webpki roots and `extra_roots`.
pub fn tls_config(extra_roots: &[CertificateDer<'static>]) -> Result<Arc<ClientConfig>, FeedError> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for cert in extra_roots {
        roots
            .add(cert.clone())
            .map_err(|e| FeedError::Tls(format!("extra root certificate: {e}")))?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| FeedError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Run one live feed until `shutdown` is cancelled or the receiver goes away.
pub async fn run(
    spec: LiveSpec,
    options: LiveOptions,
    tx: mpsc::Sender<Event>,
    metrics: Metrics,
    shutdown: CancellationToken,
) -> Result<(), FeedError> {
    let tls = tls_config(&options.extra_roots)?;
    let symbols = spec.symbols.iter().map(|s| s.to_ascii_uppercase());
    let source = options
        .freshness
        .register(&spec.name(), options.idle_timeout, symbols);
    let mut conn = Connection {
        spec: &spec,
        tls,
        idle: options.idle_timeout,
        verifier: BookVerifier::new(spec.exchange),
        source,
        tx: &tx,
        metrics: &metrics,
        label: spec.exchange.to_string(),
    };
    let backoff = options.backoff;
    let mut delay = backoff.initial;
    loop {
        let outcome = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            r = conn.run_once() => r,
        };
        conn.source.connected(false);
        let counted = |outcome: &str| {
            metrics
                .feed_connects
                .get_or_create(&vec![
                    ("exchange", conn.label.clone()),
                    ("outcome", outcome.to_string()),
                ])
                .inc();
        };
        match outcome {
            Ok(end) => {
                let (outcome, delivered) = match end {
                    End::Closed { delivered } => ("closed", delivered),
                    End::Idle { delivered } => ("idle_timeout", delivered),
                    End::Resync { delivered } => ("resync", delivered),
                };
                counted(outcome);
                tracing::warn!(exchange = %conn.label, outcome, delivered, "feed connection ended; reconnecting");
                if delivered > 0 {
                    delay = backoff.initial;
                }
            }
            Err(ConnectError::ReceiverGone) => return Err(FeedError::ReceiverGone),
            Err(ConnectError::Ws(e)) => {
                counted("error");
                tracing::warn!(exchange = %conn.label, error = %e, retry_in_ms = delay.as_millis() as u64, "feed connection failed");
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(backoff.max);
    }
}

/// How a connection that was up ended.
enum End {
    /// The server closed it.
    Closed { delivered: u64 },
    /// Nothing arrived for the idle timeout.
    Idle { delivered: u64 },
    /// A book failed its checksum: a new subscription brings fresh snapshots.
    Resync { delivered: u64 },
}

enum ConnectError {
    Ws(tokio_tungstenite::tungstenite::Error),
    ReceiverGone,
}

/// What every connection of one feed shares.
struct Connection<'a> {
    spec: &'a LiveSpec,
    tls: Arc<ClientConfig>,
    idle: Duration,
    verifier: BookVerifier,
    source: SourceHandle,
    tx: &'a mpsc::Sender<Event>,
    metrics: &'a Metrics,
    label: String,
}

impl Connection<'_> {
    /// One connection's life.
    async fn run_once(&mut self) -> Result<End, ConnectError> {
        let connector = Connector::Rustls(self.tls.clone());
        let (ws, _) = tokio_tungstenite::connect_async_tls_with_config(
            self.spec.url(),
            None,
            false,
            Some(connector),
        )
        .await
        .map_err(ConnectError::Ws)?;
        let (mut write, mut read) = ws.split();
        for msg in self.spec.subscribe_messages() {
            write
                .send(Message::text(msg))
                .await
                .map_err(ConnectError::Ws)?;
        }
        tracing::info!(exchange = %self.label, symbols = ?self.spec.symbols, "feed connected");
        self.source.connected(true);
        self.verifier.reset();
        // Something must arrive within the idle timeout: ping often enough that a live server
        // always answers in time (with the exchange's own ping where it wants one).
        let keepalive = self.spec.keepalive();
        let period = keepalive
            .map_or(self.idle / 3, |(every, _)| every.min(self.idle / 3))
            .max(Duration::from_millis(10));
        let mut ping = tokio::time::interval_at(Instant::now() + period, period);
        let idle = tokio::time::sleep(self.idle);
        tokio::pin!(idle);
        let mut delivered = 0u64;
        loop {
            let msg = tokio::select! {
                m = read.next() => m,
                _ = ping.tick() => {
                    let ping = match keepalive {
                        Some((_, text)) => Message::text(text),
                        None => Message::Ping(Default::default()),
                    };
                    write.send(ping).await.map_err(ConnectError::Ws)?;
                    continue;
                }
                _ = &mut idle => return Ok(End::Idle { delivered }),
            };
            let Some(msg) = msg else {
                return Ok(End::Closed { delivered });
            };
            let now = Instant::now();
            idle.as_mut().reset(now + self.idle);
            self.source.message(now.into_std());
            let text = match msg.map_err(ConnectError::Ws)? {
                Message::Text(t) => t,
                Message::Binary(b) => match String::from_utf8(b.to_vec()) {
                    Ok(s) => s.into(),
                    Err(_) => continue,
                },
                Message::Close(_) => return Ok(End::Closed { delivered }),
                _ => continue,
            };
            delivered += self.deliver(text.as_str(), now).await?;
            if !self.books_verified(text.as_str()) {
                return Ok(End::Resync { delivered });
            }
        }
    }

    /// Parses one message and sends its events on; returns how many.
    async fn deliver(&self, text: &str, now: Instant) -> Result<u64, ConnectError> {
        let events = match marketdata::parse(self.spec.exchange, text, Timestamp::now()) {
            Ok(events) => events,
            Err(e) => {
                self.metrics
                    .feed_parse_errors
                    .get_or_create(&vec![("exchange", self.label.clone())])
                    .inc();
                tracing::warn!(exchange = %self.label, error = %e, "unparseable feed message");
                return Ok(0);
            }
        };
        let symbols = events
            .iter()
            .filter_map(|e| e.instrument().map(|i| i.symbol.as_str()));
        self.source.data(symbols, now.into_std());
        let n = events.len() as u64;
        for event in events {
            self.metrics
                .feed_messages
                .get_or_create(&vec![
                    ("exchange", self.label.clone()),
                    ("kind", event.kind().as_str().to_string()),
                ])
                .inc();
            self.tx
                .send(event)
                .await
                .map_err(|_| ConnectError::ReceiverGone)?;
        }
        Ok(n)
    }

    /// Checks the book checksums a message carries; false after a mismatch (counted).
    fn books_verified(&mut self, text: &str) -> bool {
        let verdict = self.verifier.check(text);
        for m in &verdict.mismatches {
            self.metrics
                .feed_checksum_mismatches
                .get_or_create(&vec![("exchange", self.label.clone())])
                .inc();
            tracing::warn!(exchange = %self.label, mismatch = %m, "order book out of sync; resubscribing");
        }
        verdict.mismatches.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_with_and_without_url() {
        let s: LiveSpec = "binance:BTCUSDT,ETHUSDT".parse().unwrap();
        assert_eq!(s.symbols, vec!["BTCUSDT", "ETHUSDT"]);
        assert!(
            s.url().contains("btcusdt@trade/btcusdt@bookTicker"),
            "{}",
            s.url()
        );
        let s: LiveSpec = "okx:BTC-USDT@ws://127.0.0.1:1/x".parse().unwrap();
        assert_eq!(s.url(), "ws://127.0.0.1:1/x");
        assert!(s.subscribe_messages()[0].contains("\"instId\":\"BTC-USDT\""));
        assert!("nowhere:BTC".parse::<LiveSpec>().is_err());
        assert!("binance:".parse::<LiveSpec>().is_err());
        assert!("binance".parse::<LiveSpec>().is_err());
    }
}
