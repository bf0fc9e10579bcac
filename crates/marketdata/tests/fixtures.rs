//! Every file in `shared/fixtures/marketdata` goes through the parsers: message counts per
//! kind as the fixture README states them, and values checked by hand against the raw text.

mod common;

use common::*;
use marketdata::{Exchange, InputFormat, normalize_with};
use model::{Event, Side};

macro_rules! get {
    ($events:expr, $variant:ident) => {{
        let ev: &[Event] = $events;
        match ev.first() {
            Some(Event::$variant(x)) => x,
            other => panic!("expected {}, got {other:?}", stringify!($variant)),
        }
    }};
}

// ---- Binance spot ---------------------------------------------------------------------------

#[test]
fn binance_spot_2021_08_capture() {
    let Some(r) = run(
        Exchange::Binance,
        "binance-spot/cryptofeed-2021-08_BINANCE.ws.1.0",
    ) else {
        return;
    };
    assert_eq!(r.stats.format, InputFormat::CryptofeedRecording);
    assert_eq!(
        r.message_kinds(),
        kinds(&[
            ("book_delta", 546),
            ("quote", 412),
            ("trade", 28),
            ("bar", 17)
        ])
    );

    let d = get!(r.at_line(2), BookDelta);
    assert_eq!(d.instrument.symbol.as_str(), "XMRBTC");
    assert_eq!(d.instrument.venue.as_str(), "binance");
    assert!(d.bids.is_empty());
    assert_eq!(
        d.asks.iter().map(lv).collect::<Vec<_>>(),
        [p("0.005787", "31.231"), p("0.005788", "26.049")]
    );
    assert_eq!(
        (d.first_sequence, d.sequence),
        (Some(717_720_856), Some(717_720_857))
    );
    assert_eq!(d.ts, ms(1_628_952_395_768));

    // Spot bookTicker has no exchange time: the recording's receive time stands in.
    let q = get!(r.at_line(8), Quote);
    assert_eq!(q.instrument.symbol.as_str(), "FTMUSDT");
    assert_eq!(
        (q.bid.to_string(), q.bid_size.to_string()),
        ("0.33989".into(), "1565.6".into())
    );
    assert_eq!(
        (q.ask.to_string(), q.ask_size.to_string()),
        ("0.34012".into(), "703".into())
    );
    assert_eq!(q.ts, secs("1628952397.5236201"));
    assert_eq!(q.ts.as_nanos(), 1_628_952_397_523_620_100);

    let b = get!(r.at_line(26), Bar);
    assert_eq!(
        (b.instrument.symbol.as_str(), b.interval.as_str()),
        ("FTMUSDT", "1m")
    );
    assert_eq!(
        [b.open, b.high, b.low, b.close].map(|p| p.to_string()),
        ["0.34064", "0.3407", "0.33934", "0.33993"]
    );
    assert_eq!(b.volume.to_string(), "208601");
    assert_eq!(
        (b.start, b.ts, b.closed),
        (ms(1_628_952_360_000), ms(1_628_952_396_573), false)
    );
}

#[test]
fn binance_spot_2021_10_capture_matches_its_rest_snapshots() {
    let Some(ws) = run(Exchange::Binance, "binance-spot/cryptofeed_BINANCE.ws.1.0") else {
        return;
    };
    assert_eq!(
        ws.message_kinds(),
        kinds(&[("book_delta", 177), ("quote", 84), ("trade", 2), ("bar", 2)])
    );
    let t = get!(ws.at_line(110), Trade);
    assert_eq!(t.instrument.symbol.as_str(), "NKNUSDT");
    assert_eq!(
        (t.price.to_string(), t.quantity.to_string()),
        ("0.3528".into(), "58".into())
    );
    assert_eq!(
        (t.aggressor, t.trade_id.as_str()),
        (Some(Side::Buy), "15683430")
    );
    assert_eq!(t.ts.as_nanos(), 1_633_998_523_963_000_000);
    let q = get!(ws.at_line(9), Quote);
    assert_eq!(
        (q.bid.to_string(), q.ask_size.to_string()),
        ("0.3521".into(), "3199".into())
    );
    assert_eq!(q.ts.as_nanos(), 1_633_998_513_377_805_000);

    let Some(rest) = run(
        Exchange::Binance,
        "binance-spot/cryptofeed_BINANCE.http.0.0",
    ) else {
        return;
    };
    assert_eq!(rest.message_kinds(), kinds(&[("book_snapshot", 4)]));
    let snaps: Vec<_> = rest
        .events()
        .map(|e| match e {
            Event::BookSnapshot(s) => s,
            other => panic!("{other:?}"),
        })
        .collect();
    // The symbol comes from the request URL of each REST line.
    assert_eq!(
        snaps
            .iter()
            .map(|s| s.instrument.symbol.as_str())
            .collect::<Vec<_>>(),
        ["NKNUSDT", "BLZETH", "LRCBTC", "RUNEEUR"]
    );
    let nkn = snaps[0];
    assert_eq!(nkn.sequence, Some(499_869_752));
    assert_eq!(lv(&nkn.bids[0]), p("0.3521", "672"));
    assert_eq!(nkn.ts.as_nanos(), 1_633_998_512_320_639_000);
    assert!(nkn.bids.windows(2).all(|w| w[0].price > w[1].price));
    assert!(nkn.asks.windows(2).all(|w| w[0].price < w[1].price));
    // The README: the snapshots match the depth stream through lastUpdateId. The first NKNUSDT
    // diff ends exactly at the snapshot's id.
    let first_diff = ws
        .events()
        .find_map(|e| match e {
            Event::BookDelta(d) if d.instrument.symbol.as_str() == "NKNUSDT" => Some(d),
            _ => None,
        })
        .unwrap();
    assert_eq!(first_diff.sequence, nkn.sequence);
}

#[test]
fn binance_spot_2021_08_rest_snapshots() {
    let Some(r) = run(
        Exchange::Binance,
        "binance-spot/cryptofeed-2021-08_BINANCE.http.0.0",
    ) else {
        return;
    };
    assert_eq!(r.message_kinds(), kinds(&[("book_snapshot", 4)]));
    let s = get!(r.at_line(1), BookSnapshot);
    assert_eq!(s.instrument.symbol.as_str(), "XMRBTC");
    assert_eq!(s.sequence, Some(717_720_857));
    assert_eq!(lv(&s.bids[0]), p("0.005773", "16.196"));
    assert_eq!(lv(&s.bids[1]), p("0.005772", "8.409"));
    assert_eq!(s.ts, secs("1628952396.228346"));
}

#[test]
fn binance_spot_rest_bodies() {
    let sym = || opts(Some("BTCUSDT"));
    let Some(r) = run_with(
        Exchange::Binance,
        "binance-spot/nautilus_http_spot_market_agg_trades.json",
        sym(),
    ) else {
        return;
    };
    assert_eq!(r.stats.format, InputFormat::JsonDocument);
    assert_eq!(r.event_count("trade"), 10);
    let t = get!(r.at_line(1), Trade);
    assert_eq!(
        (
            t.trade_id.as_str(),
            t.price.to_string(),
            t.quantity.to_string()
        ),
        ("966492862", "60759.6".into(), "0.00841".into())
    );
    assert_eq!(
        (t.aggressor, t.ts),
        (Some(Side::Buy), ms(1_634_944_096_633))
    );
    let Event::Trade(third) = &r.at_line(1)[2] else {
        panic!()
    };
    assert_eq!(
        (third.aggressor, third.price.to_string()),
        (Some(Side::Sell), "60759.59".into())
    );

    let r = run(
        Exchange::Binance,
        "binance-spot/nautilus_http_spot_market_book_ticker.json",
    )
    .unwrap();
    let q = get!(r.at_line(1), Quote);
    assert_eq!(q.instrument.symbol.as_str(), "BTCUSDT");
    assert_eq!(
        [
            q.bid.to_string(),
            q.bid_size.to_string(),
            q.ask.to_string(),
            q.ask_size.to_string()
        ],
        ["60741.67", "0.3658", "60741.68", "0.45178"]
    );
    assert_eq!(q.ts, RECV);

    let r = run_with(
        Exchange::Binance,
        "binance-spot/nautilus_http_spot_market_depth.json",
        sym(),
    )
    .unwrap();
    let s = get!(r.at_line(1), BookSnapshot);
    assert_eq!(
        (s.bids.len(), s.asks.len(), s.sequence),
        (10, 10, Some(14_527_958_487))
    );
    assert_eq!(lv(&s.bids[0]), p("60650", "0.00213"));
    assert_eq!(lv(&s.asks[0]), p("60650.01", "0.61982"));

    for file in [
        "nautilus_http_spot_market_historical_trades.json",
        "nautilus_http_spot_market_trades.json",
    ] {
        let r = run_with(Exchange::Binance, &format!("binance-spot/{file}"), sym()).unwrap();
        assert_eq!(r.event_count("trade"), 10, "{file}");
        let ids: Vec<u64> = r
            .events()
            .map(|e| match e {
                Event::Trade(t) => t.trade_id.parse().unwrap(),
                _ => panic!(),
            })
            .collect();
        assert!(
            ids.windows(2).all(|w| w[1] == w[0] + 1),
            "consecutive ids in {file}"
        );
    }
    let r = run_with(
        Exchange::Binance,
        "binance-spot/nautilus_http_spot_market_historical_trades.json",
        sym(),
    )
    .unwrap();
    let t = get!(r.at_line(1), Trade);
    assert_eq!(
        (
            t.trade_id.as_str(),
            t.price.to_string(),
            t.quantity.to_string()
        ),
        ("1111471896", "60814.78".into(), "0.00034".into())
    );
    assert_eq!(
        (t.aggressor, t.ts),
        (Some(Side::Sell), ms(1_634_943_219_887))
    );
    let r = run_with(
        Exchange::Binance,
        "binance-spot/nautilus_http_spot_market_trades.json",
        sym(),
    )
    .unwrap();
    let t = get!(r.at_line(1), Trade);
    assert_eq!(
        (
            t.trade_id.as_str(),
            t.price.to_string(),
            t.quantity.to_string()
        ),
        ("1111468873", "60650".into(), "0.02924".into())
    );
    assert_eq!(t.aggressor, Some(Side::Sell));

    let r = run_with(
        Exchange::Binance,
        "binance-spot/nautilus_http_spot_market_klines.json",
        sym(),
    )
    .unwrap();
    assert_eq!(r.event_count("bar"), 10);
    let b = get!(r.at_line(1), Bar);
    assert_eq!(
        (b.interval.as_str(), b.start, b.closed),
        ("1m", ms(1_634_943_780_000), true)
    );
    assert_eq!(
        [b.open, b.high, b.low, b.close].map(|p| p.to_string()),
        ["60685.22", "60729.84", "60670.9", "60719.27"]
    );
    assert_eq!(
        (b.volume.to_string(), b.ts),
        ("21.63272".into(), ms(1_634_943_839_999))
    );
    let Some(Event::Bar(last)) = r.events().last() else {
        panic!()
    };
    assert_eq!(last.start, ms(1_634_943_780_000 + 9 * 60_000)); // 23:12 UTC

    let r = run(
        Exchange::Binance,
        "binance-spot/nautilus_ws_spot_trade.json",
    )
    .unwrap();
    let t = get!(r.at_line(1), Trade);
    assert_eq!(t.instrument.symbol.as_str(), "ETHUSDT");
    assert_eq!(
        (
            t.trade_id.as_str(),
            t.price.to_string(),
            t.quantity.to_string()
        ),
        ("705291099", "4149.74".into(), "0.4387".into())
    );
    assert_eq!(
        (t.aggressor, t.ts),
        (Some(Side::Sell), ms(1_639_351_062_243))
    );
}

// ---- Binance USD-M ----------------------------------------------------------------------------

#[test]
fn binance_futures_capture() {
    let Some(r) = run(
        Exchange::BinanceFutures,
        "binance-usdm/cryptofeed_BINANCE_FUTURES.ws.1.0",
    ) else {
        return;
    };
    assert_eq!(
        r.message_kinds(),
        kinds(&[
            ("book_delta", 764),
            ("quote", 613),
            ("trade", 91),
            ("bar", 67)
        ])
    );
    let q = get!(r.at_line(2), Quote);
    assert_eq!(q.instrument.venue.as_str(), "binance-futures");
    assert_eq!(
        [
            q.bid.to_string(),
            q.bid_size.to_string(),
            q.ask.to_string(),
            q.ask_size.to_string()
        ],
        ["7.611", "2", "7.612", "297"]
    );
    assert_eq!(q.ts, ms(1_626_992_741_012)); // transaction time T, not event time E
    let d = get!(r.at_line(3), BookDelta);
    assert_eq!(
        (d.first_sequence, d.sequence),
        (Some(600_859_599_090), Some(600_859_600_917))
    );
    assert_eq!(
        d.bids.iter().map(lv).collect::<Vec<_>>(),
        [p("7.504", "813"), p("7.609", "0"), p("7.611", "2")]
    );
    assert_eq!(d.ts, ms(1_626_992_741_024));
    let t = get!(r.at_line(22), Trade);
    assert_eq!(
        (t.instrument.symbol.as_str(), t.trade_id.as_str()),
        ("CTKUSDT", "16599292")
    );
    assert_eq!(
        (t.price.to_string(), t.quantity.to_string(), t.aggressor),
        ("1.011".into(), "10".into(), Some(Side::Buy))
    );
    assert_eq!(t.ts, ms(1_626_992_741_421));
    let b = get!(r.at_line(16), Bar);
    assert_eq!(
        (
            b.open.to_string(),
            b.close.to_string(),
            b.volume.to_string()
        ),
        ("1.01".into(), "1.011".into(), "3917".into())
    );
}

#[test]
fn binance_futures_rest_snapshots() {
    let Some(r) = run(
        Exchange::BinanceFutures,
        "binance-usdm/cryptofeed_BINANCE_FUTURES.http.0.0",
    ) else {
        return;
    };
    assert_eq!(r.message_kinds(), kinds(&[("book_snapshot", 4)]));
    let s = get!(r.at_line(1), BookSnapshot);
    assert_eq!(s.instrument.symbol.as_str(), "SUSHIUSDT");
    assert_eq!(s.sequence, Some(600_859_605_926));
    assert_eq!(s.ts, ms(1_626_992_741_261));
    assert_eq!(
        (lv(&s.bids[0]), lv(&s.bids[1])),
        (p("7.611", "6"), p("7.608", "161"))
    );
    let syms: Vec<_> = r
        .events()
        .map(|e| e.instrument().unwrap().symbol.to_string())
        .collect();
    assert_eq!(syms, ["SUSHIUSDT", "AKROUSDT", "KEEPUSDT", "CTKUSDT"]);
}

#[test]
fn binance_t_depth_csv() {
    let Some(r) = run(
        Exchange::BinanceFutures,
        "binance-usdm/nautilus_btcusdt-depth-snap.csv",
    ) else {
        return;
    };
    assert_eq!(r.stats.format, InputFormat::BinanceDepthCsv);
    assert_eq!(r.message_kinds(), kinds(&[("book_snapshot", 1)]));
    let s = get!(r.at_line(2), BookSnapshot);
    assert_eq!((s.bids.len(), s.asks.len()), (100, 0));
    assert_eq!(
        (lv(&s.bids[0]), lv(&s.bids[99])),
        (p("20377", "1.77"), p("20365.9", "0.207"))
    );
    assert_eq!(
        (s.sequence, s.ts),
        (Some(2_098_021_528_332), ms(1_667_346_579_146))
    );

    let r = run(
        Exchange::BinanceFutures,
        "binance-usdm/nautilus_btcusdt-depth-update.csv",
    )
    .unwrap();
    assert_eq!(r.message_kinds(), kinds(&[("book_delta", 1)]));
    let d = get!(r.at_line(2), BookDelta);
    assert_eq!((d.bids.len(), d.asks.len()), (23, 77));
    assert_eq!(lv(&d.asks[0]), p("20472.8", "0"));
    assert_eq!(lv(&d.asks[76]), p("20879.1", "10.249"));
    assert_eq!(
        (d.first_sequence, d.sequence),
        (Some(2_098_041_693_435), Some(2_098_041_696_700))
    );
    assert_eq!(d.ts, ms(1_667_347_199_939));
}

// ---- Bybit --------------------------------------------------------------------------------------

#[test]
fn bybit_legacy_usdt_perp_capture() {
    let Some(r) = run(Exchange::Bybit, "bybit/cryptofeed_BYBIT.ws.25.0") else {
        return;
    };
    assert_eq!(
        r.message_kinds(),
        kinds(&[
            ("book_snapshot", 8),
            ("book_delta", 3252),
            ("trade", 66),
            ("control", 16)
        ])
    );
    assert_eq!(r.stats.sent, 16);
    let s = get!(r.at_line(36), BookSnapshot);
    assert_eq!(s.instrument.symbol.as_str(), "BCHUSDT");
    assert_eq!((s.bids.len(), s.asks.len()), (25, 25));
    // Bybit lists bids ascending; snapshots come out best first.
    assert_eq!(
        (lv(&s.bids[0]), lv(&s.bids[24])),
        (p("1054.35", "8.52"), p("1053.05", "2.63"))
    );
    assert_eq!(lv(&s.asks[0]), p("1054.5", "30"));
    assert_eq!(
        (s.sequence, s.ts),
        (Some(864_131_773), secs("1618677786.389362"))
    );

    let d = get!(r.at_line(37), BookDelta);
    assert_eq!((d.bids.len(), d.asks.len()), (9, 8));
    assert_eq!(lv(&d.bids[0]), p("1054.3", "0")); // a delete
    assert_eq!(lv(&d.bids[4]), p("1053.9", "3.66")); // the update
    assert_eq!(lv(&d.bids[7]), p("1054.15", "10.969999")); // JSON number, kept exact
    assert_eq!(
        (d.sequence, d.ts.as_nanos()),
        (Some(864_131_802), 1_618_677_786_430_132_000)
    );

    let t = get!(r.at_line(18), Trade);
    assert_eq!(
        (t.price.to_string(), t.quantity.to_string(), t.aggressor),
        ("1053.9".into(), "0.14".into(), Some(Side::Buy))
    );
    assert_eq!(
        (t.trade_id.as_str(), t.ts),
        (
            "01cacfe9-8d1c-5ee4-995d-d79a43f955a6",
            ms(1_618_677_785_116)
        )
    );
}

#[test]
fn bybit_legacy_inverse_capture() {
    let Some(r) = run(Exchange::Bybit, "bybit/cryptofeed_BYBIT.ws.26.0") else {
        return;
    };
    assert_eq!(
        r.message_kinds(),
        kinds(&[
            ("book_snapshot", 2),
            ("book_delta", 1016),
            ("trade", 76),
            ("control", 4)
        ])
    );
    let trades = r.at_line(55);
    let Event::Trade(t) = &trades[0] else {
        panic!()
    };
    assert_eq!(t.instrument.symbol.as_str(), "BTCUSD");
    assert_eq!(
        (t.price.to_string(), t.quantity.to_string(), t.aggressor),
        ("60621.5".into(), "4".into(), Some(Side::Sell))
    );
    assert_eq!(t.ts, ms(1_618_677_786_614));
    let d = get!(r.at_line(9), BookDelta);
    assert_eq!(
        d.bids.iter().map(lv).collect::<Vec<_>>(),
        [p("7.971", "47766")]
    );
    assert!(d.asks.is_empty());
    assert_eq!(
        (d.sequence, d.ts.as_nanos()),
        (Some(1_225_777_225), 1_618_677_786_598_877_000)
    );
}

#[test]
fn bybit_v5_zip() {
    let Some(r) = run(Exchange::Bybit, "bybit/nautilus_xrpusdt-ob500.data.zip") else {
        return;
    };
    assert_eq!(r.stats.format, InputFormat::Zip);
    assert_eq!(
        r.message_kinds(),
        kinds(&[("book_snapshot", 1), ("book_delta", 49)])
    );
    let s = get!(r.at_line(1), BookSnapshot);
    assert_eq!(s.instrument.symbol.as_str(), "XRPUSDT");
    assert_eq!(lv(&s.bids[0]), p("1.9531", "6203"));
    assert_eq!(
        (s.sequence, s.ts),
        (Some(20_254_869), ms(1_733_011_200_691))
    );
    let d = get!(r.at_line(2), BookDelta);
    assert_eq!(lv(&d.bids[0]), p("1.9531", "6198"));
    assert_eq!(
        (d.sequence, d.ts),
        (Some(20_254_870), ms(1_733_011_200_693))
    );
}

// ---- Coinbase -----------------------------------------------------------------------------------

#[test]
fn coinbase_exchange_capture() {
    let Some(r) = run(Exchange::Coinbase, "coinbase/cryptofeed_COINBASE.ws.28.0") else {
        return;
    };
    // 97 match + 10 last_match = 107 trade messages; 107 tickers; 3 subscriptions acks.
    assert_eq!(
        r.message_kinds(),
        kinds(&[
            ("book_delta", 9719),
            ("book_snapshot", 10),
            ("quote", 107),
            ("trade", 107),
            ("control", 3)
        ])
    );
    let t = get!(r.at_line(56), Trade);
    assert_eq!(
        (t.instrument.symbol.as_str(), t.trade_id.as_str()),
        ("SKL-BTC", "280232")
    );
    assert_eq!(
        (t.price.to_string(), t.quantity.to_string()),
        ("0.00001305".into(), "985".into())
    );
    assert_eq!(t.aggressor, Some(Side::Buy)); // the maker sold
    assert_eq!(t.ts, rfc("2021-04-17T16:43:37.089723Z"));
    let t = get!(r.at_line(11), Trade);
    assert_eq!(
        (t.trade_id.as_str(), t.quantity.to_string()),
        ("881613", "0.04".into())
    );

    let d = get!(r.at_line(35), BookDelta);
    assert!(d.bids.is_empty());
    assert_eq!(
        d.asks.iter().map(lv).collect::<Vec<_>>(),
        [p("0.00001306", "660.5")]
    );
    assert_eq!(d.ts.as_nanos(), 1_618_677_817_075_687_000);

    let q = get!(r.at_line(9), Quote);
    assert_eq!(
        (q.bid.to_string(), q.ask.to_string()),
        ("14.755".into(), "14.806".into())
    );
    assert!(q.bid_size.is_zero() && q.ask_size.is_zero()); // not reported by this feed
    assert_eq!(q.ts, rfc("2021-04-17T16:43:30.244075Z"));

    let s = get!(r.at_line(7), BookSnapshot);
    assert_eq!(s.instrument.symbol.as_str(), "BAND-GBP");
    assert_eq!(lv(&s.asks[0]), p("14.8024", "12.77"));
    assert_eq!(s.ts, secs("1618677817.077736"));
}

#[test]
fn coinbase_advanced_trade_rest() {
    let Some(r) = run_with(
        Exchange::Coinbase,
        "coinbase/nautilus_http_candles.json",
        opts(Some("BTC-USD")),
    ) else {
        return;
    };
    let bars: Vec<_> = r
        .events()
        .map(|e| match e {
            Event::Bar(b) => b,
            _ => panic!(),
        })
        .collect();
    assert_eq!(bars.len(), 2);
    // Served newest first; written oldest first.
    assert_eq!(
        (bars[0].start, bars[1].start),
        (ms(1_712_188_800_000), ms(1_712_192_400_000))
    );
    assert_eq!(bars[0].interval, "1h");
    assert_eq!(
        [bars[0].open, bars[0].high, bars[0].low, bars[0].close].map(|p| p.to_string()),
        ["65984.18", "66387.77", "65857.35", "66314.59"]
    );
    assert_eq!(bars[0].volume.to_string(), "358.74851052");
    assert!(bars[0].closed);
    assert_eq!(bars[0].ts, ms(1_712_192_400_000));

    let r = run(
        Exchange::Coinbase,
        "coinbase/nautilus_http_product_book.json",
    )
    .unwrap();
    let s = get!(r.at_line(1), BookSnapshot);
    assert_eq!(
        (s.instrument.symbol.as_str(), s.bids.len(), s.asks.len()),
        ("BTC-USD", 5, 5)
    );
    assert_eq!(
        (lv(&s.bids[0]), lv(&s.asks[0])),
        (p("68923.66", "0.17189468"), p("68923.67", "0.16987193"))
    );
    assert_eq!(lv(&s.bids[3]), p("68921.72", "0.000016"));
    assert_eq!(s.ts, rfc("2026-04-07T00:28:59.662782Z"));

    let r = run(Exchange::Coinbase, "coinbase/nautilus_http_ticker.json").unwrap();
    let ev = r.at_line(1);
    assert_eq!(ev.len(), 4);
    let Event::Trade(first) = &ev[0] else {
        panic!()
    };
    assert_eq!(
        (first.trade_id.as_str(), first.aggressor),
        ("995098661", Some(Side::Buy))
    );
    assert_eq!(
        (first.price.to_string(), first.quantity.to_string()),
        ("68924.94".into(), "0.01450854".into())
    );
    assert_eq!(first.ts, rfc("2026-04-07T00:28:57.296283Z"));
    let Event::Trade(last) = &ev[2] else { panic!() };
    assert_eq!(
        (last.trade_id.as_str(), last.aggressor),
        ("995098663", Some(Side::Sell))
    );
    let Event::Quote(q) = &ev[3] else { panic!() };
    assert_eq!(
        (q.bid.to_string(), q.ask.to_string(), q.ts),
        ("68923.66".into(), "68923.67".into(), RECV)
    );
}

// ---- Kraken -------------------------------------------------------------------------------------

#[test]
fn kraken_v1_trade_and_ticker_captures() {
    let Some(r) = run(Exchange::Kraken, "kraken/cryptofeed_KRAKEN.ws.48.0") else {
        return;
    };
    // 30 heartbeats + 10 subscriptionStatus + 1 systemStatus.
    assert_eq!(r.message_kinds(), kinds(&[("trade", 8), ("control", 41)]));
    let t = get!(r.at_line(23), Trade);
    assert_eq!(t.instrument.symbol.as_str(), "XMR/USD");
    assert_eq!(
        (t.price.to_string(), t.quantity.to_string(), t.aggressor),
        ("354.11".into(), "0.89594024".into(), Some(Side::Sell))
    );
    assert_eq!(t.ts.as_nanos(), 1_618_678_142_557_535_000);
    assert_eq!(t.trade_id, "1618678142.557535");

    let r = run(Exchange::Kraken, "kraken/cryptofeed_KRAKEN.ws.49.0").unwrap();
    assert_eq!(r.message_kinds(), kinds(&[("quote", 18), ("control", 42)]));
    let q = get!(r.at_line(14), Quote);
    assert_eq!(q.instrument.symbol.as_str(), "WAVES/EUR");
    assert_eq!(
        [
            q.bid.to_string(),
            q.bid_size.to_string(),
            q.ask.to_string(),
            q.ask_size.to_string()
        ],
        ["13.2329", "185.18432037", "13.2539", "35.72892241"]
    );
    assert_eq!(q.ts, secs("1618678132.9496498"));
}

#[test]
fn kraken_v1_book_capture() {
    let Some(r) = run(Exchange::Kraken, "kraken/cryptofeed_KRAKEN.ws.50.0") else {
        return;
    };
    assert_eq!(
        r.message_kinds(),
        kinds(&[("book_snapshot", 10), ("book_delta", 4269), ("control", 42)])
    );
    let s = get!(r.at_line(15), BookSnapshot);
    assert_eq!(s.instrument.symbol.as_str(), "ADA/XBT");
    assert_eq!((s.asks.len(), s.bids.len()), (841, 707));
    assert_eq!(
        (lv(&s.asks[0]), lv(&s.bids[0])),
        (
            p("0.0000229", "13355.87450757"),
            p("0.00002289", "31.75709827")
        )
    );
    assert_eq!(s.ts, secs("1618678132.136369")); // the newest level time

    let d = get!(r.at_line(25), BookDelta);
    assert_eq!(
        d.bids.iter().map(lv).collect::<Vec<_>>(),
        [p("354.15", "5")]
    );
    assert_eq!(d.ts, secs("1618678133.365913"));
    // The one message with both sides in two objects.
    let d = get!(r.at_line(1430), BookDelta);
    assert_eq!(
        d.asks.iter().map(lv).collect::<Vec<_>>(),
        [p("0.04299", "364630.28272081")]
    );
    assert_eq!(
        d.bids.iter().map(lv).collect::<Vec<_>>(),
        [p("0.04299", "0")]
    );
    assert_eq!(d.ts, secs("1618678145.920708"));
}

#[test]
fn kraken_rest() {
    let Some(r) = run(Exchange::Kraken, "kraken/nautilus_http_ticker.json") else {
        return;
    };
    let q = get!(r.at_line(1), Quote);
    assert_eq!(q.instrument.symbol.as_str(), "XBTUSDT");
    assert_eq!(
        [
            q.bid.to_string(),
            q.bid_size.to_string(),
            q.ask.to_string(),
            q.ask_size.to_string()
        ],
        ["105944.2", "1", "105944.3", "1"]
    );

    let r = run(Exchange::Kraken, "kraken/nautilus_http_order_book.json").unwrap();
    let s = get!(r.at_line(1), BookSnapshot);
    assert_eq!((s.bids.len(), s.asks.len()), (5, 5));
    assert_eq!(
        (lv(&s.bids[0]), lv(&s.asks[4])),
        (p("105944.2", "0.002"), p("105963.6", "0.024"))
    );
    assert_eq!(s.ts, model::Timestamp::from_secs(1_762_820_249));

    let r = run(Exchange::Kraken, "kraken/nautilus_http_trades.json").unwrap();
    let trades: Vec<_> = r
        .events()
        .map(|e| match e {
            Event::Trade(t) => t,
            _ => panic!(),
        })
        .collect();
    assert_eq!(trades.len(), 1000);
    let ids: Vec<u64> = trades.iter().map(|t| t.trade_id.parse().unwrap()).collect();
    assert_eq!((ids[0], ids[999]), (10_218_208, 10_219_207));
    assert!(
        ids.windows(2).all(|w| w[1] == w[0] + 1),
        "1000 consecutive trades"
    );
    assert_eq!(
        (trades[0].price.to_string(), trades[0].quantity.to_string()),
        ("105433.6".into(), "0.00027625".into())
    );
    assert_eq!(trades[0].ts.as_nanos(), 1_762_795_433_971_744_500); // JSON number, exact
    assert_eq!(
        (trades[0].aggressor, trades[999].aggressor),
        (Some(Side::Buy), Some(Side::Sell))
    );

    let r = run(Exchange::Kraken, "kraken/nautilus_http_ohlc.json").unwrap();
    let bars: Vec<_> = r
        .events()
        .map(|e| match e {
            Event::Bar(b) => b,
            _ => panic!(),
        })
        .collect();
    assert_eq!(bars.len(), 721);
    assert!(bars.iter().all(|b| b.interval == "1m"));
    assert_eq!(
        (bars[0].start, bars[720].start),
        (
            model::Timestamp::from_secs(1_762_777_020),
            model::Timestamp::from_secs(1_762_820_220)
        )
    );
    assert_eq!(bars[0].volume.to_string(), "0"); // a minute without trades
    // `last` = 1762820160: the final bar is still open.
    assert_eq!(bars.iter().filter(|b| b.closed).count(), 720);
    assert!(!bars[720].closed);
}

// ---- OKX ----------------------------------------------------------------------------------------

#[test]
fn okx_capture() {
    let Some(r) = run(Exchange::Okx, "okx/cryptofeed_OKX.ws.1.0") else {
        return;
    };
    // The README's 80 "trades" and 37 "tickers" messages include the subscribe acks of those
    // channels (6 and 9): 74 + 6 and 28 + 9.
    assert_eq!(
        r.message_kinds(),
        kinds(&[
            ("book_snapshot", 3),
            ("book_delta", 287),
            ("trade", 74),
            ("quote", 28),
            ("control", 18)
        ])
    );
    assert_eq!(r.stats.sent, 3);
    let s = get!(r.at_line(29), BookSnapshot);
    assert_eq!(s.instrument.symbol.as_str(), "BTC-USD-220527");
    assert_eq!((s.asks.len(), s.bids.len()), (64, 72));
    assert_eq!(
        (lv(&s.asks[0]), lv(&s.bids[0])),
        (p("30238.8", "2"), p("30233.6", "3"))
    );
    assert_eq!(s.ts, ms(1_652_459_225_393));
    let s = get!(r.at_line(31), BookSnapshot);
    assert_eq!((s.asks.len(), s.bids.len()), (400, 400));
    assert_eq!(lv(&s.bids[0]), p("30243.4", "0.0012029"));

    let d = get!(r.at_line(32), BookDelta);
    assert_eq!(
        d.asks.iter().map(lv).collect::<Vec<_>>(),
        [p("30249.4", "0"), p("30261", "4"), p("30310.3", "19")]
    );
    assert_eq!(
        d.bids.iter().map(lv).collect::<Vec<_>>(),
        [p("30182.6", "452")]
    );
    assert_eq!(d.ts, ms(1_652_459_225_464));

    let t = get!(r.at_line(26), Trade);
    assert_eq!(
        (
            t.trade_id.as_str(),
            t.price.to_string(),
            t.quantity.to_string()
        ),
        ("7849", "30218.8".into(), "1".into())
    );
    assert_eq!(
        (t.aggressor, t.ts),
        (Some(Side::Buy), ms(1_652_459_199_958))
    );
    let q = get!(r.at_line(23), Quote);
    assert_eq!(
        [
            q.bid.to_string(),
            q.bid_size.to_string(),
            q.ask.to_string(),
            q.ask_size.to_string()
        ],
        ["30210.4", "4", "30220.1", "3"]
    );
    assert_eq!(q.ts, ms(1_652_459_223_003));
}

#[test]
fn okx_rest() {
    let Some(r) = run_with(
        Exchange::Okx,
        "okx/nautilus_http_get_candlesticks_full.json",
        opts(Some("BTC-USDT-SWAP")),
    ) else {
        return;
    };
    let bars: Vec<_> = r
        .events()
        .map(|e| match e {
            Event::Bar(b) => b,
            _ => panic!(),
        })
        .collect();
    assert_eq!(bars.len(), 2);
    let b = bars[0]; // served newest first, written oldest first
    assert_eq!(
        (b.start, b.interval.as_str(), b.closed),
        (ms(1_747_093_980_000), "1m", true)
    );
    assert_eq!(
        [b.open, b.high, b.low, b.close].map(|p| p.to_string()),
        ["102806", "102820.5", "102783.1", "102806.1"]
    );
    assert_eq!(
        (b.volume.to_string(), b.ts),
        ("7164.04".into(), ms(1_747_094_040_000))
    );

    let r = run(Exchange::Okx, "okx/nautilus_http_get_trades.json").unwrap();
    let trades: Vec<_> = r
        .events()
        .map(|e| match e {
            Event::Trade(t) => t,
            _ => panic!(),
        })
        .collect();
    assert_eq!(trades.len(), 2);
    assert_eq!(
        (trades[0].trade_id.as_str(), trades[0].aggressor),
        ("734864332", Some(Side::Buy))
    );
    assert_eq!(
        (trades[0].quantity.to_string(), trades[0].ts),
        ("0.0000125".into(), ms(1_747_087_161_666))
    );
    assert_eq!(
        (trades[1].price.to_string(), trades[1].aggressor),
        ("102537.9".into(), Some(Side::Sell))
    );
}

// ---- normalize ----------------------------------------------------------------------------------

#[test]
fn normalize_writes_one_event_per_line_and_counts() {
    let Some(bytes) = read("kraken/cryptofeed_KRAKEN.ws.48.0") else {
        return;
    };
    let mut out = Vec::new();
    let stats = normalize_with(Exchange::Kraken, bytes.as_slice(), &mut out, &opts(None)).unwrap();
    assert_eq!(
        (stats.messages, stats.control, stats.sent, stats.errors),
        (49, 41, 1, 0)
    );
    let text = String::from_utf8(out).unwrap();
    let events: Vec<Event> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len() as u64, stats.events);
    assert_eq!(events.len(), 10); // 8 messages, two of them with two trades
    assert!(text.lines().next().unwrap().starts_with(
        r#"{"type":"trade","instrument":{"venue":"kraken","symbol":"XMR/USD"},"price":"354.11""#
    ));
}

#[test]
fn normalize_every_fixture_without_errors() {
    let Some(dir) = fixture_dir() else { return };
    let cases = [
        ("binance-spot", Exchange::Binance),
        ("binance-usdm", Exchange::BinanceFutures),
        ("bybit", Exchange::Bybit),
        ("coinbase", Exchange::Coinbase),
        ("kraken", Exchange::Kraken),
        ("okx", Exchange::Okx),
    ];
    let mut files = 0;
    for (sub, exchange) in cases {
        for entry in std::fs::read_dir(dir.join(sub)).unwrap() {
            let path = entry.unwrap().path();
            let o = marketdata::NormalizeOptions {
                symbol: Some("BTCUSDT".into()), // only used by bodies that name no symbol
                ..opts(None)
            };
            let mut out = Vec::new();
            let stats = normalize_with(exchange, std::fs::File::open(&path).unwrap(), &mut out, &o)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(stats.events > 0, "{}", path.display());
            assert_eq!(
                (stats.unknown_lines, stats.checksum_mismatches),
                (0, 0),
                "{}: {:?} {:?}",
                path.display(),
                stats.unknown_samples,
                stats.first_checksum_mismatch
            );
            assert_eq!(
                out.iter().filter(|b| **b == b'\n').count() as u64,
                stats.events
            );
            files += 1;
        }
    }
    assert_eq!(files, 32);
}
