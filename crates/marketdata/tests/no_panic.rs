//! Robustness: random bytes and random mutations of real messages, fed to every parser and to
//! `normalize`, must give events or a `ParseError`, never a panic.

mod common;

use std::sync::OnceLock;

use marketdata::{Exchange, MessageContext, NormalizeOptions, normalize_bytes, parse_with};
use model::Timestamp;
use proptest::prelude::*;

/// Real messages: a sample of every recording and REST file in the fixtures, plus
/// hand-written samples of formats the recordings lack (Kraken v2, Bybit v5, Coinbase AT).
fn pool() -> &'static [(Exchange, String)] {
    static POOL: OnceLock<Vec<(Exchange, String)>> = OnceLock::new();
    POOL.get_or_init(|| {
        let mut v: Vec<(Exchange, String)> = [
            (Exchange::Kraken, r#"{"channel":"book","type":"snapshot","data":[{"symbol":"MATIC/USD","bids":[{"price":0.5666,"qty":4831.75496356}],"asks":[{"price":0.5668,"qty":4410.79769741}],"checksum":2439117997}]}"#),
            (Exchange::Kraken, r#"{"channel":"trade","type":"update","data":[{"symbol":"MATIC/USD","side":"sell","price":0.5117,"qty":40.0,"ord_type":"market","trade_id":4665906,"timestamp":"2023-09-25T07:49:37.708706Z"}]}"#),
            (Exchange::Bybit, r#"{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1672304486868,"data":[{"T":1672304486865,"s":"BTCUSDT","S":"Buy","v":"0.001","p":"16578.50","L":"PlusTick","i":"20f43950-d8dd-5b31-9112-a178eb6023af","BT":false}]}"#),
            (Exchange::Bybit, r#"{"topic":"tickers.BTCUSDT","type":"snapshot","data":{"symbol":"BTCUSDT","fundingRate":"-0.000212","nextFundingTime":"1673280000000","bid1Price":"17215.50","bid1Size":"84.489","ask1Price":"17216.00","ask1Size":"83.020"},"cs":24987956059,"ts":1673272861686}"#),
            (Exchange::Coinbase, r#"{"channel":"l2_data","client_id":"","timestamp":"2023-02-09T20:32:50.714964855Z","sequence_num":0,"events":[{"type":"snapshot","product_id":"BTC-USD","updates":[{"side":"bid","event_time":"1970-01-01T00:00:00Z","price_level":"21921.73","new_quantity":"0.06317902"}]}]}"#),
            (Exchange::Okx, r#"{"arg":{"channel":"candle1m","instId":"BTC-USDT"},"data":[["1597026383085","8533.02","8553.74","8527.17","8548.26","45247","529.5858061","529.58","0"]]}"#),
            (Exchange::BinanceFutures, r#"{"e":"markPriceUpdate","E":1562305380000,"s":"BTCUSDT","p":"11794.15000000","i":"11784.62659091","P":"11784.25641265","r":"0.00038167","T":1562306400000}"#),
        ]
        .into_iter()
        .map(|(e, s)| (e, s.to_owned()))
        .collect();
        let Some(dir) = common::fixture_dir() else { return v };
        let dirs = [
            ("binance-spot", Exchange::Binance),
            ("binance-usdm", Exchange::BinanceFutures),
            ("bybit", Exchange::Bybit),
            ("coinbase", Exchange::Coinbase),
            ("kraken", Exchange::Kraken),
            ("okx", Exchange::Okx),
        ];
        for (sub, exchange) in dirs {
            for entry in std::fs::read_dir(dir.join(sub)).unwrap() {
                let path = entry.unwrap().path();
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                if name.ends_with(".zip") || name.ends_with(".csv") {
                    continue; // covered through normalize below
                }
                let text = std::fs::read_to_string(&path).unwrap();
                if name.ends_with(".json") {
                    v.push((exchange, text));
                    continue;
                }
                // Recordings: the message part of up to 40 lines spread over the file, kept
                // short enough (4 KiB) that mutations hit the interesting parts.
                let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
                let step = (lines.len() / 40).max(1);
                for l in lines.iter().step_by(step) {
                    let body = l.split_once(": ").map_or(*l, |(_, b)| b);
                    if body.len() <= 4096 {
                        v.push((exchange, body.to_owned()));
                    }
                }
            }
        }
        v
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    Replace(usize, u8),
    Insert(usize, u8),
    Delete(usize, usize),
    Truncate(usize),
    Duplicate(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    // Bytes that matter to JSON and to numbers, plus anything.
    let byte = prop_oneof![
        prop::sample::select(b"{}[]\":,-.0123456789eE \\nulltrue".to_vec()),
        any::<u8>(),
    ];
    prop_oneof![
        (any::<usize>(), byte.clone()).prop_map(|(i, b)| Mutation::Replace(i, b)),
        (any::<usize>(), byte).prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<usize>(), 1..8usize).prop_map(|(i, n)| Mutation::Delete(i, n)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), 1..32usize).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
    ]
}

fn apply(mut b: Vec<u8>, muts: &[Mutation]) -> Vec<u8> {
    for m in muts {
        let len = b.len();
        if len == 0 {
            break;
        }
        match *m {
            Mutation::Replace(i, x) => b[i % len] = x,
            Mutation::Insert(i, x) => b.insert(i % (len + 1), x),
            Mutation::Delete(i, n) => {
                let s = i % len;
                b.drain(s..(s + n).min(len));
            }
            Mutation::Truncate(i) => b.truncate(i % len),
            Mutation::Duplicate(i, n) => {
                let s = i % len;
                let span = b[s..(s + n).min(len)].to_vec();
                b.splice(s..s, span);
            }
        }
    }
    b
}

fn parse_everywhere(text: &str) {
    let ctx = MessageContext {
        symbol: Some("BTCUSDT"),
        ..MessageContext::new(Timestamp::from_secs(1))
    };
    for exchange in Exchange::ALL {
        match parse_with(exchange, text, &ctx) {
            Ok(events) => {
                // Whatever comes out must serialize (valid model values).
                for e in events {
                    serde_json::to_string(&e).unwrap();
                }
            }
            Err(e) => {
                assert_eq!(e.exchange, exchange.as_str());
                assert!(e.snippet.chars().count() <= marketdata::error::SNIPPET_CHARS + 3);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        parse_everywhere(&String::from_utf8_lossy(&bytes));
        let opts = NormalizeOptions { lenient: true, recv_ts: Some(Timestamp::from_secs(1)), ..NormalizeOptions::default() };
        for exchange in Exchange::ALL {
            let _ = normalize_bytes(exchange, &bytes, &mut Vec::new(), &opts);
        }
    }

    #[test]
    fn mutated_real_messages_never_panic(
        pick in any::<prop::sample::Index>(),
        muts in prop::collection::vec(mutation(), 1..6),
    ) {
        let pool = pool();
        let (exchange, msg) = &pool[pick.index(pool.len())];
        let mutated = apply(msg.clone().into_bytes(), &muts);
        let text = String::from_utf8_lossy(&mutated);
        parse_everywhere(&text);
        // And as a one-line input of the right exchange, strict mode.
        let opts = NormalizeOptions { recv_ts: Some(Timestamp::from_secs(1)), ..NormalizeOptions::default() };
        let _ = normalize_bytes(*exchange, &mutated, &mut Vec::new(), &opts);
    }
}

#[test]
fn mutated_zip_and_csv_inputs_never_panic() {
    let (Some(zip), Some(csv)) = (
        common::read("bybit/nautilus_xrpusdt-ob500.data.zip"),
        common::read("binance-usdm/nautilus_btcusdt-depth-update.csv"),
    ) else {
        return;
    };
    let opts = NormalizeOptions {
        lenient: true,
        recv_ts: Some(Timestamp::from_secs(1)),
        ..NormalizeOptions::default()
    };
    // Deterministic sweep: flip a byte at many offsets, truncate at many lengths.
    for (exchange, input) in [(Exchange::Bybit, &zip), (Exchange::BinanceFutures, &csv)] {
        for i in (0..input.len()).step_by((input.len() / 300).max(1)) {
            let mut flipped = input.clone();
            flipped[i] ^= 0x5a;
            let _ = normalize_bytes(exchange, &flipped, &mut Vec::new(), &opts);
            let _ = normalize_bytes(exchange, &input[..i], &mut Vec::new(), &opts);
        }
    }
}
