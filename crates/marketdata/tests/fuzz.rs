//! Fuzz targets (crates/fuzzing): every exchange parser over mutants of its recorded messages,
//! the book-checksum verifier on the same stream, and whole inputs (format detection, text and
//! JSON-lines recordings, NDJSON, REST documents, T_DEPTH CSV, zip) through `normalize`.
//! Whatever the input: no panic, errors are values, and what parses re-serializes to the same
//! events.

mod common;

use std::io::Write;

use marketdata::{
    BookVerifier, Exchange, MessageContext, NormalizeOptions, ZipLimits, normalize_bytes,
    parse_with,
};
use model::{Event, Timestamp};

/// Up to `max` messages of each fixture file of `dir`: the message part of recording lines and
/// whole REST documents, each at most 8 KiB so mutations land in the interesting parts.
fn fixture_messages(dir: &str, max: usize) -> Vec<Vec<u8>> {
    let Some(root) = common::fixture_dir() else {
        return Vec::new();
    };
    let mut seeds = Vec::new();
    for entry in std::fs::read_dir(root.join(dir)).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".zip") || name.ends_with(".csv") {
            continue; // whole inputs, below
        }
        let text = std::fs::read_to_string(&path).unwrap();
        if name.ends_with(".json") {
            if text.len() <= 8192 {
                seeds.push(text.into_bytes());
            }
            continue;
        }
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let step = (lines.len() / max).max(1);
        for line in lines.iter().step_by(step) {
            let body = line.split_once(": ").map_or(*line, |(_, b)| b);
            if body.len() <= 8192 {
                seeds.push(body.as_bytes().to_vec());
            }
        }
    }
    seeds
}

/// Parses `input` as a message of `exchange`: events re-serialize to themselves, errors name
/// the exchange; the checksum verifier takes the message too.
fn parse_target(exchange: Exchange, verifier: &std::cell::RefCell<BookVerifier>, input: &[u8]) {
    let Ok(text) = std::str::from_utf8(input) else {
        return; // the feeds hand the parsers text only
    };
    let ctx = MessageContext {
        recv_ts: Timestamp::from_secs(1_700_000_000),
        symbol: Some("BTCUSDT"),
        interval: None,
    };
    match parse_with(exchange, text, &ctx) {
        Ok(events) => {
            for e in &events {
                let json = serde_json::to_string(e).expect("an event serializes");
                let back: Event = serde_json::from_str(&json).expect("an event reads back");
                assert_eq!(&back, e, "{json}");
            }
        }
        Err(e) => assert_eq!(e.exchange, exchange.as_str()),
    }
    let verdict = verifier.borrow_mut().check(text);
    for m in &verdict.mismatches {
        assert!(!m.symbol.is_empty() && !m.to_string().is_empty());
    }
}

fn fuzz_exchange(name: &str, exchange: Exchange, seeds: Vec<Vec<u8>>) {
    let verifier = std::cell::RefCell::new(BookVerifier::new(exchange));
    fuzzing::run(name, &seeds, |input| {
        parse_target(exchange, &verifier, input)
    });
}

#[test]
fn fuzz_binance_spot_parser() {
    fuzz_exchange(
        "binance",
        Exchange::Binance,
        fixture_messages("binance-spot", 200),
    );
}

#[test]
fn fuzz_binance_futures_parser() {
    fuzz_exchange(
        "binance-futures",
        Exchange::BinanceFutures,
        fixture_messages("binance-usdm", 200),
    );
}

#[test]
fn fuzz_coinbase_parser() {
    fuzz_exchange(
        "coinbase",
        Exchange::Coinbase,
        fixture_messages("coinbase", 200),
    );
}

#[test]
fn fuzz_kraken_parser_and_checksums() {
    let mut seeds = fixture_messages("kraken", 300);
    // WebSocket v2 (the fixtures are v1): Kraken's documentation examples.
    seeds.push(br#"{"channel":"book","type":"snapshot","data":[{"symbol":"MATIC/USD","bids":[{"price":0.5666,"qty":4831.75496356},{"price":0.566,"qty":18097.1547}],"asks":[{"price":0.5668,"qty":4410.79769741}],"checksum":2439117997}]}"#.to_vec());
    seeds.push(br#"{"channel":"book","type":"update","data":[{"symbol":"MATIC/USD","bids":[{"price":0.5657,"qty":1098.3947558}],"asks":[],"checksum":2114181697,"timestamp":"2023-10-06T17:35:55.440295Z"}]}"#.to_vec());
    seeds.push(br#"{"method":"subscribe","result":{"channel":"book","depth":10,"snapshot":true,"symbol":"MATIC/USD"},"success":true}"#.to_vec());
    seeds.push(br#"{"channel":"trade","type":"update","data":[{"symbol":"MATIC/USD","side":"sell","price":0.5117,"qty":40.0,"ord_type":"market","trade_id":4665906,"timestamp":"2023-09-25T07:49:37.708706Z"}]}"#.to_vec());
    fuzz_exchange("kraken", Exchange::Kraken, seeds);
}

#[test]
fn fuzz_bybit_parser() {
    fuzz_exchange("bybit", Exchange::Bybit, fixture_messages("bybit", 200));
}

#[test]
fn fuzz_okx_parser_and_checksums() {
    let mut seeds = fixture_messages("okx", 300);
    seeds.push(br#"{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":[{"asks":[],"bids":[["3366.1","8","0","3"]],"ts":"2","checksum":0,"seqId":101,"prevSeqId":100}]}"#.to_vec());
    fuzz_exchange("okx", Exchange::Okx, seeds);
}

/// Small whole inputs of every format, from the fixtures.
fn whole_inputs() -> Vec<(Exchange, Vec<u8>)> {
    let Some(root) = common::fixture_dir() else {
        return Vec::new();
    };
    let head = |rel: &str, lines: usize| -> Vec<u8> {
        let text = std::fs::read_to_string(root.join(rel)).unwrap();
        let mut out = String::new();
        for l in text.lines().take(lines) {
            out.push_str(l);
            out.push('\n');
        }
        out.into_bytes()
    };
    let kraken_text = head("kraken/cryptofeed_KRAKEN.ws.48.0", 30);
    // The same records as JSON lines.
    let mut kraken_jsonl = String::from("{\"t\":\"header\",\"v\":1}\n");
    for line in String::from_utf8(kraken_text.clone()).unwrap().lines() {
        if let Some((ts, msg)) = line.split_once(": ")
            && !line.contains(" <-")
        {
            let data = serde_json::Value::String(msg.to_owned());
            kraken_jsonl.push_str(&format!("{{\"t\":\"recv\",\"ts\":{ts},\"data\":{data}}}\n"));
        }
    }
    let csv = head("binance-usdm/nautilus_btcusdt-depth-snap.csv", 40);
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    zip.start_file("depth.csv", options).unwrap();
    zip.write_all(&csv).unwrap();
    let zip = zip.finish().unwrap().into_inner();
    vec![
        (Exchange::Kraken, kraken_text),
        (Exchange::Kraken, kraken_jsonl.into_bytes()),
        (Exchange::Okx, head("okx/cryptofeed_OKX.ws.1.0", 40)),
        (
            Exchange::Binance,
            head("binance-spot/cryptofeed_BINANCE.http.0.0", 2),
        ),
        (
            Exchange::Kraken,
            std::fs::read(root.join("kraken/nautilus_http_ticker.json")).unwrap(),
        ),
        (Exchange::BinanceFutures, csv),
        (Exchange::BinanceFutures, zip),
    ]
}

#[test]
fn fuzz_whole_inputs_and_recordings() {
    let inputs = whole_inputs();
    // The exchange travels in the first byte of the fuzzed input, so mutants of one
    // exchange's input are also tried on the others' readers.
    let seeds: Vec<Vec<u8>> = inputs
        .iter()
        .map(|(e, bytes)| {
            let mut v = vec![Exchange::ALL.iter().position(|x| x == e).unwrap() as u8];
            v.extend_from_slice(bytes);
            v
        })
        .collect();
    fuzzing::run("marketdata-inputs", &seeds, |input| {
        let Some((first, body)) = input.split_first() else {
            return;
        };
        let exchange = Exchange::ALL[usize::from(*first) % Exchange::ALL.len()];
        for strict in [false, true] {
            let opts = NormalizeOptions {
                lenient: !strict,
                strict,
                recv_ts: Some(Timestamp::from_secs(1_700_000_000)),
                // A mutated archive may declare anything; what it unpacks to stays small.
                zip: ZipLimits::total(4 << 20),
                ..NormalizeOptions::default()
            };
            let mut out = Vec::new();
            let Ok(stats) = normalize_bytes(exchange, body, &mut out, &opts) else {
                continue; // an error value, e.g. a bad zip, non-UTF-8 or (strict) unknown line
            };
            let text = String::from_utf8(out).expect("the output is UTF-8");
            assert_eq!(text.lines().count() as u64, stats.events);
            for line in text.lines() {
                serde_json::from_str::<Event>(line).expect("each output line is an event");
            }
            assert!(stats.unknown_samples.len() as u64 <= stats.unknown_lines);
            if strict {
                assert_eq!(stats.unknown_lines, 0);
            }
        }
    });
}
