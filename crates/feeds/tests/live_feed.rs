//! The live WebSocket feed against a local server that replays a real Binance capture
//! (../shared/fixtures), dropping the connection halfway to prove the client reconnects and
//! nothing after the reconnect is lost.

use std::path::PathBuf;
use std::time::Duration;

use feeds::live::{Backoff, LiveOptions, LiveSpec};
use futures_util::SinkExt;
use model::{Event, Timestamp};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

fn fixture(rel: &str) -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures")
        .join(rel);
    if p.exists() {
        return Some(p);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "fixture {} missing under CI",
        p.display()
    );
    eprintln!("skipping: fixture {} not found", p.display());
    None
}

/// The received messages of a cryptofeed recording (`<ts>: <message>` lines).
fn recorded_messages(path: &PathBuf) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.contains(" <- ") && !l.contains(" <-> ") && !l.contains(" -> "))
        .filter_map(|l| l.split_once(": ").map(|(_, m)| m.to_string()))
        .collect()
}

#[tokio::test]
async fn live_feed_parses_a_recorded_stream_and_reconnects_after_a_drop() {
    let Some(path) = fixture("marketdata/binance-spot/cryptofeed_BINANCE.ws.1.0") else {
        return;
    };
    let messages = recorded_messages(&path);
    assert!(messages.len() > 200, "{}", messages.len());
    let expected: usize = messages
        .iter()
        .map(|m| {
            marketdata::parse(marketdata::Exchange::Binance, m, Timestamp::from_secs(0))
                .unwrap()
                .len()
        })
        .sum();
    assert!(expected > 200);

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let half = messages.len() / 2;
    let server = tokio::spawn(async move {
        // First connection gets the first half then is dropped; the second gets the rest.
        for chunk in [messages[..half].to_vec(), messages[half..].to_vec()] {
            let (stream, _) = listener.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_async(stream).await.unwrap();
            for m in chunk {
                ws.send(Message::text(m)).await.unwrap();
            }
            ws.close(None).await.ok();
        }
        // Hold the listener open so the client's next reconnect attempt waits, not fails.
        let _ = listener.accept().await;
    });

    let spec: LiveSpec = format!("binance:BTCUSDT@ws://{addr}/stream")
        .parse()
        .unwrap();
    let (tx, mut rx) = mpsc::channel::<Event>(10_000);
    let shutdown = CancellationToken::new();
    let options = LiveOptions {
        backoff: Backoff {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(200),
        },
        ..LiveOptions::default()
    };
    let metrics = telemetry::Metrics::new();
    let feed = tokio::spawn(feeds::live::run(
        spec,
        options,
        tx,
        metrics.clone(),
        shutdown.clone(),
    ));

    let mut got = Vec::new();
    while got.len() < expected {
        match tokio::time::timeout(Duration::from_secs(20), rx.recv()).await {
            Ok(Some(e)) => got.push(e),
            other => panic!(
                "feed stalled after {} of {expected} events: {other:?}",
                got.len()
            ),
        }
    }
    shutdown.cancel();
    feed.await.unwrap().unwrap();
    server.abort();

    assert_eq!(got.len(), expected);
    let kinds: std::collections::BTreeSet<_> = got.iter().map(|e| e.kind().as_str()).collect();
    assert!(
        kinds.contains("quote") && kinds.contains("book_delta"),
        "{kinds:?}"
    );
    let text = metrics.render();
    assert!(
        text.contains("trade2026_feed_connects_total{exchange=\"binance\",outcome=\"closed\"}"),
        "{text}"
    );
}
