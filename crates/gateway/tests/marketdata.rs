use axum::body::Body;
use axum::http::{Request, StatusCode};
use gateway::{Gateway, MarketCache};
use model::{Event, InstrumentId, Price, Quantity, Quote, Side, Symbol, Timestamp, TradeTick, Venue};
use tower::ServiceExt;

fn inst() -> InstrumentId {
    InstrumentId::new(Venue::new("sim").unwrap(), Symbol::new("BTCUSDT").unwrap())
}

async fn get(app: axum::Router, uri: &str) -> (StatusCode, serde_json::Value) {
    let res = app.oneshot(Request::get(uri).body(Body::empty()).unwrap()).await.unwrap();
    let status = res.status();
    let body = axum::body::to_bytes(res.into_body(), 1 << 20).await.unwrap();
    (status, serde_json::from_slice(&body).unwrap())
}

#[tokio::test]
async fn market_data_answers_last_quote_and_trade() {
    let market = MarketCache::default();
    market.apply(&Event::Quote(Quote {
        instrument: inst(),
        bid: Price::parse("45000.10").unwrap(),
        bid_size: Quantity::parse("1.5").unwrap(),
        ask: Price::parse("45000.30").unwrap(),
        ask_size: Quantity::parse("2").unwrap(),
        ts: Timestamp::from_millis(1_700_000_000_000),
    }));
    market.apply(&Event::Trade(TradeTick {
        instrument: inst(),
        price: Price::parse("45000.30").unwrap(),
        quantity: Quantity::parse("0.25").unwrap(),
        aggressor: Some(Side::Buy),
        trade_id: "7".into(),
        ts: Timestamp::from_millis(1_700_000_000_500),
    }));
    let app = gateway::router(Gateway { market });

    let (status, v) = get(app.clone(), "/marketdata/BTCUSDT").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["symbol"], "BTCUSDT");
    assert_eq!(v["quote"]["bid"], "45000.1");
    assert_eq!(v["quote"]["ask"], "45000.3");
    assert_eq!(v["quote"]["mid"], "45000.2");
    assert_eq!(v["quote"]["spread"], "0.2");
    assert_eq!(v["quote"]["instrument"]["venue"], "sim");
    assert_eq!(v["trade"]["price"], "45000.3");
    assert_eq!(v["trade"]["aggressor"], "buy");
    assert_eq!(v["trade"]["ts"], "2023-11-14T22:13:20.500000000Z");

    let (status, v) = get(app.clone(), "/marketdata/btcusdt").await;
    assert_eq!(status, StatusCode::OK, "lower-case symbols are accepted");
    assert_eq!(v["symbol"], "BTCUSDT");

    let (status, v) = get(app.clone(), "/marketdata/NOPE").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(v["error"]["code"], "unknown_symbol");

    let (_, v) = get(app, "/marketdata").await;
    assert_eq!(v["symbols"], serde_json::json!(["BTCUSDT"]));
}
