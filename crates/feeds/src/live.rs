//! Live market data from the exchanges' public WebSocket streams.
//!
//! One task per `exchange:SYMBOL,SYMBOL` spec: connect, subscribe, parse every message with the
//! `marketdata` parsers, forward the events. When the connection drops or fails it reconnects
//! with exponential backoff (0.5 s doubling to 30 s; reset once a connection delivered data).

use std::str::FromStr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use marketdata::Exchange;
use model::{Event, Timestamp};
use telemetry::Metrics;
use tokio::sync::mpsc;
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

/// Run one live feed until `shutdown` is cancelled or the receiver goes away.
pub async fn run(
    spec: LiveSpec,
    backoff: Backoff,
    tx: mpsc::Sender<Event>,
    metrics: Metrics,
    shutdown: CancellationToken,
) -> Result<(), FeedError> {
    let exchange_label = spec.exchange.to_string();
    let mut delay = backoff.initial;
    loop {
        let outcome = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            r = connect_once(&spec, &tx, &metrics, &exchange_label) => r,
        };
        match outcome {
            Ok(delivered) => {
                metrics
                    .feed_connects
                    .get_or_create(&vec![
                        ("exchange", exchange_label.clone()),
                        ("outcome", "closed".into()),
                    ])
                    .inc();
                tracing::warn!(exchange = %exchange_label, delivered, "feed connection closed; reconnecting");
                if delivered > 0 {
                    delay = backoff.initial;
                }
            }
            Err(ConnectError::ReceiverGone) => return Err(FeedError::ReceiverGone),
            Err(ConnectError::Ws(e)) => {
                metrics
                    .feed_connects
                    .get_or_create(&vec![
                        ("exchange", exchange_label.clone()),
                        ("outcome", "error".into()),
                    ])
                    .inc();
                tracing::warn!(exchange = %exchange_label, error = %e, retry_in_ms = delay.as_millis() as u64, "feed connection failed");
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(backoff.max);
    }
}

enum ConnectError {
    Ws(tokio_tungstenite::tungstenite::Error),
    ReceiverGone,
}

/// One connection's life: returns the number of events delivered when the server closes it.
async fn connect_once(
    spec: &LiveSpec,
    tx: &mpsc::Sender<Event>,
    metrics: &Metrics,
    exchange_label: &str,
) -> Result<u64, ConnectError> {
    let (ws, _) = tokio_tungstenite::connect_async(spec.url())
        .await
        .map_err(ConnectError::Ws)?;
    let (mut write, mut read) = ws.split();
    for msg in spec.subscribe_messages() {
        write
            .send(Message::text(msg))
            .await
            .map_err(ConnectError::Ws)?;
    }
    tracing::info!(exchange = exchange_label, symbols = ?spec.symbols, "feed connected");
    let keepalive = spec.keepalive();
    let mut ping =
        tokio::time::interval(keepalive.map(|k| k.0).unwrap_or(Duration::from_secs(3600)));
    ping.tick().await;
    let mut delivered = 0u64;
    loop {
        let msg = tokio::select! {
            m = read.next() => m,
            _ = ping.tick() => {
                if let Some((_, text)) = keepalive {
                    write.send(Message::text(text)).await.map_err(ConnectError::Ws)?;
                }
                continue;
            }
        };
        let Some(msg) = msg else { return Ok(delivered) };
        let text = match msg.map_err(ConnectError::Ws)? {
            Message::Text(t) => t,
            Message::Binary(b) => match String::from_utf8(b.to_vec()) {
                Ok(s) => s.into(),
                Err(_) => continue,
            },
            Message::Close(_) => return Ok(delivered),
            _ => continue,
        };
        match marketdata::parse(spec.exchange, text.as_str(), Timestamp::now()) {
            Ok(events) => {
                for event in events {
                    metrics
                        .feed_messages
                        .get_or_create(&vec![
                            ("exchange", exchange_label.to_string()),
                            ("kind", event.kind().as_str().to_string()),
                        ])
                        .inc();
                    tx.send(event)
                        .await
                        .map_err(|_| ConnectError::ReceiverGone)?;
                    delivered += 1;
                }
            }
            Err(e) => {
                metrics
                    .feed_parse_errors
                    .get_or_create(&vec![("exchange", exchange_label.to_string())])
                    .inc();
                tracing::warn!(exchange = exchange_label, error = %e, "unparseable feed message");
            }
        }
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
