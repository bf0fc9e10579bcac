//! Parser throughput, one message per iteration (criterion reports elements/s = messages/s).
//!
//! `cargo bench -p marketdata --bench parsers -- --warm-up-time 1 --measurement-time 3`
//!
//! The messages are written here in each venue's documented layout with realistic sizes
//! (not copied from the fixtures).

use criterion::{Criterion, Throughput, black_box, criterion_group, criterion_main};
use marketdata::{Exchange, MessageContext, parse, parse_into};
use model::Timestamp;

const BINANCE_TRADE: &str = r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1700000000123,"s":"BTCUSDT","t":3301234567,"p":"37012.34000000","q":"0.01250000","b":22001234567,"a":22001234589,"T":1700000000122,"m":true,"M":true}}"#;
const BINANCE_TRADE_BARE: &str = r#"{"e":"trade","E":1700000000123,"s":"BTCUSDT","t":3301234567,"p":"37012.34000000","q":"0.01250000","b":22001234567,"a":22001234589,"T":1700000000122,"m":true,"M":true}"#;
const BINANCE_DEPTH: &str = r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1700000000223,"T":1700000000220,"s":"BTCUSDT","U":3300000001,"u":3300000012,"pu":3300000000,"b":[["37012.30","1.250"],["37012.20","0.000"],["37011.90","3.400"],["37010.00","12.005"],["37008.70","0.300"]],"a":[["37012.40","0.800"],["37012.50","0.000"],["37013.10","2.100"],["37015.00","5.500"],["37020.00","1.000"]]}}"#;
const COINBASE_L2: &str = r#"{"type":"l2update","product_id":"BTC-USD","changes":[["buy","37012.34","0.01250000"],["sell","37012.99","0.50000000"]],"time":"2023-11-14T22:13:20.123456Z"}"#;
const KRAKEN_BOOK: &str = r#"[336,{"a":[["37012.40000","0.80000000","1700000000.123456"],["37013.10000","0.00000000","1700000000.123501"]],"c":"2583817756"},"book-25","XBT/USD"]"#;
const OKX_BOOKS: &str = r#"{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":[{"asks":[["37012.4","0.8","0","2"],["37013.1","0","0","0"],["37015","5.5","0","3"]],"bids":[["37012.3","1.25","0","4"],["37011.9","3.4","0","1"]],"ts":"1700000000223","checksum":-914047754,"seqId":123456789,"prevSeqId":123456780}]}"#;
const BYBIT_DELTA: &str = r#"{"topic":"orderbook.50.BTCUSDT","type":"delta","ts":1700000000223,"data":{"s":"BTCUSDT","b":[["37012.30","1.250"],["37011.90","0"]],"a":[["37012.40","0.800"],["37013.10","2.100"],["37015.00","0"]],"u":18521288,"seq":7961638724},"cts":1700000000220}"#;

fn bench(c: &mut Criterion) {
    let ctx = MessageContext::new(Timestamp::from_secs(1_700_000_000));
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(1));
    let cases = [
        ("binance_trade", Exchange::Binance, BINANCE_TRADE),
        ("binance_trade_bare", Exchange::Binance, BINANCE_TRADE_BARE),
        (
            "binance_depth_update",
            Exchange::BinanceFutures,
            BINANCE_DEPTH,
        ),
        ("coinbase_l2update", Exchange::Coinbase, COINBASE_L2),
        ("kraken_book_update", Exchange::Kraken, KRAKEN_BOOK),
        ("okx_books_update", Exchange::Okx, OKX_BOOKS),
        ("bybit_orderbook_delta", Exchange::Bybit, BYBIT_DELTA),
    ];
    for (name, exchange, msg) in cases {
        // Fail loudly if a sample stops parsing: a bench of the error path would be meaningless.
        assert_eq!(
            parse(exchange, msg, ctx.recv_ts).map(|v| v.len()).ok(),
            Some(1),
            "{name}"
        );
        let mut out = Vec::with_capacity(4);
        g.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                parse_into(exchange, black_box(msg), &ctx, &mut out)
            })
        });
    }
    // The live-feed signature, allocating its Vec each time.
    g.bench_function("binance_trade_parse_fn", |b| {
        b.iter(|| parse(Exchange::Binance, black_box(BINANCE_TRADE), ctx.recv_ts))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
