//! The logger as a service over a real journal and store: Loki pushes (the API reference's own
//! example, JSON and protobuf), NDJSON, all-or-nothing refusals, the caller's scope, captured
//! `tracing` events, the tail and an order's timeline.

use std::io::Write;
use std::time::Duration;

use auth::{Accounts, AllMarker, ApiKeys, Role};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use futures_util::StreamExt;
use journal::{Bus, InProcessBus, Journal};
use logger::{Intake, LoggerConfig, LoggerService, Retention};
use model::{
    AccountId, ClientOrderId, Event, Fill, FillId, InstrumentId, Liquidity, Money, Order, OrderId,
    OrderType, Price, Quantity, Side, Symbol, TimeInForce, Timestamp, Venue,
};
use runtime::{ConsumerMetrics, Runner};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// The JSON push example of Loki's HTTP API reference ("Ingest logs", docs/sources/reference/
/// loki-http-api.md): one stream labelled foo=bar2 with the line "fizzbuzz".
const LOKI_EXAMPLE: &str = r#"{"streams": [{ "stream": { "foo": "bar2" }, "values": [ [ "1570818238000000000", "fizzbuzz" ] ] }]}"#;

/// The same push as `logproto.PushRequest` on the wire, assembled by hand from push.proto
/// (field numbers, wire types): streams(1) { labels(1) "{foo=\"bar2\"}", entries(2) {
/// timestamp(1) { seconds(1) varint 1570818238 }, line(2) "fizzbuzz" } }.
const PUSH_REQUEST_BYTES: [u8; 36] = [
    0x0a, 0x22, // streams, 34 bytes
    0x0a, 0x0c, b'{', b'f', b'o', b'o', b'=', b'"', b'b', b'a', b'r', b'2', b'"',
    b'}', // labels
    0x12, 0x12, // entries, 18 bytes
    0x0a, 0x06, 0x08, 0xbe, 0x91, 0x83, 0xed, 0x05, // timestamp { seconds: 1570818238 }
    0x12, 0x08, b'f', b'i', b'z', b'z', b'b', b'u', b'z', b'z', // line
];

/// A Snappy block holding `raw` as one literal (format_description.txt: the uncompressed length
/// as a varint, then a literal tag `(len-1)<<2` for up to 60 bytes, then the bytes).
fn snappy_literal(raw: &[u8]) -> Vec<u8> {
    assert!(!raw.is_empty() && raw.len() <= 60 && raw.len() < 128);
    let mut out = vec![raw.len() as u8, ((raw.len() - 1) << 2) as u8];
    out.extend_from_slice(raw);
    out
}

struct Harness {
    _dir: tempfile::TempDir,
    bus: InProcessBus,
    svc: Option<LoggerService>,
    app: axum::Router,
    intake: Intake,
    shutdown: CancellationToken,
    admin: String,
    compliance: String,
    trader: String,
}

async fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = Journal::open(&dir.path().join("events.db")).unwrap();
    let bus = InProcessBus::new(journal);
    let shutdown = CancellationToken::new();
    let metrics = telemetry::Metrics::new();
    let runner = Runner::new(
        bus.clone(),
        ConsumerMetrics::register(&metrics),
        shutdown.clone(),
    );
    let intake = Intake::new(1024);
    let svc = logger::start(
        &runner,
        dir.path(),
        intake.clone(),
        LoggerConfig {
            retention: Retention {
                max_age_ms: 365 * 86_400_000 * 100,
                max_bytes: u64::MAX,
            },
        },
        &metrics,
        shutdown.clone(),
    )
    .await
    .unwrap();
    let keys = ApiKeys::in_memory();
    let admin = keys
        .create(Role::Admin, Accounts::All(AllMarker::All))
        .unwrap();
    let compliance = keys
        .create(Role::Compliance, Accounts::All(AllMarker::All))
        .unwrap();
    let trader = keys
        .create(
            Role::Trader,
            Accounts::Some([AccountId::new("acc-a").unwrap()].into()),
        )
        .unwrap();
    let app = svc.router(keys, 4, shutdown.clone());
    Harness {
        _dir: dir,
        bus,
        svc: Some(svc),
        app,
        intake,
        shutdown,
        admin,
        compliance,
        trader,
    }
}

struct Reply {
    status: StatusCode,
    body: Value,
    next_cursor: Option<String>,
    link: Option<String>,
}

impl Harness {
    async fn call(
        &self,
        method: &str,
        uri: &str,
        key: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Reply {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", format!("Bearer {key}"));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = self
            .app
            .clone()
            .oneshot(req.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = res.status();
        let header = |name: &str| {
            res.headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        let (next_cursor, link) = (header("x-next-cursor"), header("link"));
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 24)
            .await
            .unwrap();
        Reply {
            status,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            next_cursor,
            link,
        }
    }

    async fn get(&self, uri: &str, key: &str) -> Reply {
        self.call("GET", uri, key, &[], Vec::new()).await
    }

    async fn push_json(&self, body: &str) -> Reply {
        self.call(
            "POST",
            "/loki/api/v1/push",
            &self.admin,
            &[("content-type", "application/json")],
            body.as_bytes().to_vec(),
        )
        .await
    }

    /// A Loki protobuf push (a Snappy block).
    async fn push_protobuf(&self, body: Vec<u8>) -> Reply {
        self.call(
            "POST",
            "/loki/api/v1/push",
            &self.admin,
            &[("content-type", "application/x-protobuf")],
            body,
        )
        .await
    }

    /// A Loki JSON push, gzip'd.
    async fn push_gzip(&self, raw: &[u8]) -> Reply {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(raw).unwrap();
        let body = gz.finish().unwrap();
        assert!(body.len() < logger::http::MAX_PUSH_BYTES);
        self.call(
            "POST",
            "/loki/api/v1/push",
            &self.admin,
            &[
                ("content-type", "application/json"),
                ("content-encoding", "gzip"),
            ],
            body,
        )
        .await
    }

    async fn ndjson(&self, key: &str, body: &str) -> Reply {
        self.call(
            "POST",
            "/logs",
            key,
            &[("content-type", "application/x-ndjson")],
            body.as_bytes().to_vec(),
        )
        .await
    }

    fn stored(&self) -> u64 {
        self.svc.as_ref().unwrap().store.count().unwrap()
    }

    async fn stop(mut self) {
        self.shutdown.cancel();
        for (name, task) in self.svc.take().unwrap().tasks {
            task.await
                .unwrap()
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}

fn lines(r: &Reply) -> Vec<Value> {
    r.body["lines"]
        .as_array()
        .unwrap_or_else(|| panic!("{} {}", r.status, r.body))
        .clone()
}

fn messages(r: &Reply) -> Vec<String> {
    lines(r)
        .iter()
        .map(|l| l["message"].as_str().unwrap().to_owned())
        .collect()
}

fn code(r: &Reply) -> &str {
    r.body["error"]["code"].as_str().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lokis_own_example_push_round_trips_as_json_and_as_protobuf() {
    let h = harness().await;
    let r = h.push_json(LOKI_EXAMPLE).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let found = h.get("/logs?q=fizzbuzz", &h.admin).await;
    let got = lines(&found);
    assert_eq!(got.len(), 1);
    let line = &got[0];
    assert_eq!(line["message"], "fizzbuzz");
    assert_eq!(line["ts"], "2019-10-11T18:23:58.000000000Z");
    assert_eq!(line["fields"], json!({"foo": "bar2"}));
    assert_eq!(
        (line["service"].as_str(), line["level"].as_str()),
        (Some("unknown"), Some("unknown"))
    );

    // The same push, protobuf in a Snappy block, assembled by hand from the specs.
    let r = h.push_protobuf(snappy_literal(&PUSH_REQUEST_BYTES)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let both = lines(&h.get("/logs?q=fizzbuzz", &h.admin).await);
    assert_eq!(both.len(), 2);
    let strip = |v: &Value| {
        let mut v = v.clone();
        v.as_object_mut().unwrap().remove("id");
        v
    };
    assert_eq!(
        strip(&both[0]),
        strip(&both[1]),
        "JSON and protobuf store the same line"
    );

    // What Promtail actually sends: prost's encoding, compressed by a Snappy encoder.
    let request = logger::loki::proto::PushRequest {
        streams: vec![logger::loki::proto::StreamAdapter {
            labels: r#"{service="vector", level="warn", account="acc-a", host="h1"}"#.into(),
            entries: vec![logger::loki::proto::EntryAdapter {
                timestamp: Some(logger::loki::proto::Timestamp {
                    seconds: 1_767_225_600,
                    nanos: 5,
                }),
                line: "disk almost full".into(),
                structured_metadata: vec![logger::loki::proto::LabelPairAdapter {
                    name: "trace_id".into(),
                    value: "0242ac120002".into(),
                }],
            }],
            hash: 0,
        }],
    };
    let raw = prost::Message::encode_to_vec(&request);
    let body = snap::raw::Encoder::new().compress_vec(&raw).unwrap();
    let r = h.push_protobuf(body).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let got = lines(&h.get("/logs?service=vector&level=warn", &h.admin).await);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["ts"], "2026-01-01T00:00:00.000000005Z");
    assert_eq!(got[0]["account"], "acc-a");
    assert_eq!(
        got[0]["fields"],
        json!({"host": "h1", "trace_id": "0242ac120002"})
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_and_structured_metadata_fill_the_columns_and_gzip_is_read() {
    let h = harness().await;
    // Structured metadata as the API reference shows it, plus column labels.
    let body = json!({"streams": [{
        "stream": {"service_name": "payments", "level": "ERROR", "symbol": "ETHUSDT"},
        "values": [
            ["1767225600000000000", "payment failed", {"trace_id": "0242ac120002", "user_id": "superUser123", "order_id": "77"}],
            ["1767225600000000001", "{\"msg\":\"structured\",\"account\":\"acc-a\",\"latency_ms\":12}"]
        ]
    }]})
    .to_string();
    let r = h.push_gzip(body.as_bytes()).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let got = lines(&h.get("/logs?service=payments", &h.admin).await);
    assert_eq!(got.len(), 2);
    let (json_line, failed) = (&got[0], &got[1]);
    assert_eq!(failed["message"], "payment failed");
    assert_eq!(failed["level"], "error");
    assert_eq!(failed["order_id"], "77");
    assert_eq!(failed["symbol"], "ETHUSDT");
    assert_eq!(
        failed["fields"],
        json!({"service_name": "payments", "trace_id": "0242ac120002", "user_id": "superUser123"})
    );
    assert_eq!(json_line["message"], "structured");
    assert_eq!(json_line["account"], "acc-a");
    assert_eq!(json_line["fields"]["latency_ms"], 12);
    assert_eq!(
        messages(&h.get("/logs?order_id=77", &h.admin).await),
        ["payment failed"]
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_push_is_refused_whole_naming_the_problem() {
    let h = harness().await;
    let before = h.stored();
    let bad_json: [(&str, &str); 7] = [
        ("{", "body: not valid JSON"),
        (
            r#"{"streams": {}}"#,
            "streams: expected an array, got an object",
        ),
        (
            r#"{"streams":[{"stream":{"a":"b"},"values":[["1570818238000000000","good"],["1570818238000000001"]]}]}"#,
            "streams[0].values[1]: expected [\"<unix ns>\", \"<line>\"(, {metadata})], got 1 items",
        ),
        (
            r#"{"streams":[{"stream":{"a":"b"},"values":[["1570818238000000000","good"]]},{"stream":{"a":1},"values":[]}]}"#,
            "streams[1].stream.a: label values are strings, got a number",
        ),
        (
            r#"{"streams":[{"values":[["1570818238000000000","good"],["yesterday","bad"]]}]}"#,
            "streams[0].values[1][0]: \"yesterday\" is neither Unix nanoseconds nor an RFC 3339 time",
        ),
        (
            r#"{"streams":[{"values":[["1570818238000000000",7]]}]}"#,
            "streams[0].values[0][1]: the log line is a string, got a number",
        ),
        (
            r#"{"streams":[{"values":[["1570818238000000000","x",{"k":{"nested":1}}]]}]}"#,
            "streams[0].values[0][2].k: structured metadata values are strings, got an object",
        ),
    ];
    for (body, message) in bad_json {
        let r = h.push_json(body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(code(&r), "malformed_push");
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with(message),
            "{} / {message}",
            r.body
        );
    }
    let proto = |body: Vec<u8>| h.push_protobuf(body);
    let r = proto(b"not snappy at all".to_vec()).await;
    assert_eq!(
        (r.status, code(&r)),
        (StatusCode::BAD_REQUEST, "malformed_push")
    );
    // Valid Snappy around bytes that are not a PushRequest.
    let r = proto(snappy_literal(&[0x0a, 0xff, 0x01])).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("logproto.PushRequest")
    );
    // A stream whose labels are not a label set.
    let mut bytes = PUSH_REQUEST_BYTES;
    bytes[4] = b'['; // `[foo="bar2"}`
    let r = proto(snappy_literal(&bytes)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("streams[0].labels: ")
    );
    let r = h
        .ndjson(&h.admin, "{\"message\":\"good\"}\nnot json\n")
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("line 2: not JSON")
    );
    assert_eq!(h.stored(), before, "nothing of a refused push is stored");
    assert!(messages(&h.get("/logs?q=good", &h.admin).await).is_empty());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_bodies_get_413_and_pushes_need_an_admin_key() {
    let h = harness().await;
    let big = vec![b' '; logger::http::MAX_PUSH_BYTES + 1];
    let r = h
        .call(
            "POST",
            "/logs",
            &h.admin,
            &[("content-type", "application/x-ndjson")],
            big,
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    // A small gzip body that expands beyond the limit.
    let r = h
        .push_gzip(&vec![b' '; logger::loki::MAX_DECODED_BYTES + 10])
        .await;
    assert_eq!(
        (r.status, code(&r)),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );
    for key in [&h.trader, &h.compliance] {
        let r = h.ndjson(key, "{\"message\":\"x\"}").await;
        assert_eq!((r.status, code(&r)), (StatusCode::FORBIDDEN, "forbidden"));
    }
    assert_eq!(h.stored(), 0);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trader_key_sees_only_lines_of_its_accounts() {
    let h = harness().await;
    let r = h
        .ndjson(
            &h.admin,
            r#"{"ts":"2026-01-01T00:00:01Z","message":"order accepted","service":"gateway","account":"acc-a","order_id":"1"}
{"ts":"2026-01-01T00:00:02Z","message":"order accepted","service":"gateway","account":"acc-b","order_id":"2"}
{"ts":"2026-01-01T00:00:03Z","message":"journal slow","service":"platform"}
"#,
        )
        .await;
    assert_eq!(
        (r.status, r.body.clone()),
        (StatusCode::OK, json!({"stored": 3}))
    );
    let all = ["journal slow", "order accepted", "order accepted"];
    assert_eq!(messages(&h.get("/logs", &h.admin).await), all);
    assert_eq!(messages(&h.get("/logs", &h.compliance).await), all);
    let mine = lines(&h.get("/logs", &h.trader).await);
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["account"], "acc-a");
    assert_eq!(lines(&h.get("/logs?q=accepted", &h.trader).await).len(), 1);
    assert_eq!(lines(&h.get("/logs?order_id=2", &h.trader).await).len(), 0);
    let r = h.get("/logs?account=acc-b", &h.trader).await;
    assert_eq!(
        (r.status, code(&r)),
        (StatusCode::NOT_FOUND, "account_not_found")
    );
    assert_eq!(
        messages(&h.get("/logs?account=acc-b", &h.admin).await),
        ["order accepted"]
    );
    // Bad filters are named.
    for (uri, want) in [
        ("/logs?levle=info", "unknown_parameter"),
        ("/logs?level=WARN", "invalid_field"),
        ("/logs?from=yesterday", "invalid_field"),
        ("/logs?cursor=abc", "invalid_field"),
        ("/logs?limit=0", "invalid_field"),
    ] {
        assert_eq!(code(&h.get(uri, &h.admin).await), want, "{uri}");
    }
    let long_q = h
        .get(&format!("/logs?q={}", "x".repeat(1025)), &h.admin)
        .await;
    assert_eq!(code(&long_q), "invalid_field");
    let r = h.get("/logs", "t26_not_a_key").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_link_to_the_next_one() {
    let h = harness().await;
    let body: String = (0..5)
        .map(|i| {
            format!(
                "{{\"ts\":\"2026-01-01T00:00:0{i}Z\",\"message\":\"n{i}\",\"service\":\"s\"}}\n"
            )
        })
        .collect();
    h.ndjson(&h.admin, &body).await;
    let first = h.get("/logs?service=s&limit=2", &h.admin).await;
    assert_eq!(messages(&first), ["n4", "n3"]);
    let cursor = first.next_cursor.clone().unwrap();
    assert_eq!(first.body["next_cursor"], cursor.as_str());
    let link = first.link.clone().unwrap();
    assert_eq!(
        link,
        format!("</logs?limit=2&service=s&cursor={cursor}>; rel=\"next\"")
    );
    let second = h
        .get(
            &format!("/logs?service=s&limit=2&cursor={cursor}"),
            &h.admin,
        )
        .await;
    assert_eq!(messages(&second), ["n2", "n1"]);
    let third = h
        .get(
            &format!(
                "/logs?service=s&limit=2&cursor={}",
                second.next_cursor.unwrap()
            ),
            &h.admin,
        )
        .await;
    assert_eq!(messages(&third), ["n0"]);
    assert!(third.next_cursor.is_none() && third.link.is_none());
    assert_eq!(third.body["next_cursor"], Value::Null);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn captured_tracing_events_are_stored_with_their_fields() {
    use tracing_subscriber::layer::SubscriberExt;
    let h = harness().await;
    let subscriber = tracing_subscriber::registry().with(h.intake.layer(tracing::Level::INFO));
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!(target: "gateway::orders", order_id = 5u64, account = %"acc-a", symbol = "BTCUSDT", "order accepted");
        tracing::debug!(target: "gateway::orders", "below the capture level");
    });
    // Nobody waits for captured lines, so the writer lets them gather (CAPTURED_LINGER)...
    tokio::time::sleep(Duration::from_millis(300)).await;
    let store = h.svc.as_ref().unwrap().store.clone();
    let stored = tokio::task::spawn_blocking(move || store.page(&Default::default(), None, 10))
        .await
        .unwrap()
        .unwrap();
    assert!(stored.lines.is_empty(), "written before the linger ended");
    // ... and a search ends the wait: it shows every line captured before it, on the first read.
    let found = lines(&h.get("/logs?order_id=5", &h.admin).await);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["service"], "gateway");
    assert_eq!(found[0]["target"], "gateway::orders");
    assert_eq!(found[0]["symbol"], "BTCUSDT");
    assert!(messages(&h.get("/logs?q=below", &h.admin).await).is_empty());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tail_streams_new_matching_lines_in_scope() {
    let h = harness().await;
    let res = h
        .app
        .clone()
        .oneshot(
            Request::get("/logs/tail?q=filled")
                .header("authorization", format!("Bearer {}", h.trader))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let mut body = res.into_body().into_data_stream();
    h.ndjson(
        &h.admin,
        r#"{"message":"order filled","account":"acc-b"}
{"message":"order accepted","account":"acc-a"}
{"message":"order filled","account":"acc-a","order_id":"9"}
"#,
    )
    .await;
    let mut text = String::new();
    while !text.contains("\n\n") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), body.next())
            .await
            .expect("a tail event")
            .unwrap()
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.starts_with("event: line\n"), "{text}");
    let data = text.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
    let line: Value = serde_json::from_str(data).unwrap();
    assert_eq!(
        (line["message"].as_str(), line["order_id"].as_str()),
        (Some("order filled"), Some("9"))
    );
    h.stop().await;
}

fn inst() -> InstrumentId {
    InstrumentId::new(Venue::new("sim").unwrap(), Symbol::new("BTCUSDT").unwrap())
}

fn submitted(id: u64, account: &str, ms: i64) -> Event {
    Event::OrderSubmitted {
        order: Order::new(
            OrderId(id),
            ClientOrderId::new(format!("c{id}")).unwrap(),
            AccountId::new(account).unwrap(),
            inst(),
            Side::Buy,
            OrderType::Market,
            TimeInForce::Ioc,
            Quantity::parse("1").unwrap(),
            None,
            None,
            Timestamp::from_millis(ms),
        )
        .unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filled_orders_timeline_merges_journal_events_and_lines_in_time_order() {
    let h = harness().await;
    let ms = 1_767_225_600_000;
    let acct = AccountId::new("acc-a").unwrap();
    for e in [
        submitted(42, "acc-a", ms),
        Event::OrderAccepted {
            order_id: OrderId(42),
            account: acct.clone(),
            ts: Timestamp::from_millis(ms + 1),
        },
        Event::OrderFilled(Fill {
            fill_id: FillId(1),
            order_id: OrderId(42),
            account: acct.clone(),
            instrument: inst(),
            side: Side::Buy,
            quantity: Quantity::parse("1").unwrap(),
            price: Price::parse("45000").unwrap(),
            fee: Money::ZERO,
            liquidity: Liquidity::Taker,
            ts: Timestamp::from_millis(ms + 3),
        }),
        Event::ComplianceAlert {
            key: "wash-1".into(),
            rule: "WASH_TRADE".into(),
            alert: json!({"owner": "o", "accounts": ["acc-a", "acc-b"], "evidence": {"buy": {"order_id": "42", "account": "acc-a"}, "sell": {"order_id": "43", "account": "acc-b"}}}),
            ts: Timestamp::from_millis(ms + 10),
        },
        submitted(43, "acc-b", ms + 5),
    ] {
        h.bus.publish(e).await.unwrap();
    }
    h.ndjson(
        &h.admin,
        r#"{"ts":"2026-01-01T00:00:00.002Z","message":"order accepted","service":"gateway","order_id":"42","account":"acc-a"}
{"ts":"2026-01-01T00:00:00.004Z","message":"order filled","service":"engine","order_id":"42","account":"acc-a"}
{"ts":"2026-01-01T00:00:00.000Z","message":"unrelated","service":"engine","order_id":"43","account":"acc-b"}
"#,
    )
    .await;
    let r = h.get("/orders/42/timeline", &h.compliance).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["order_id"], "42");
    assert_eq!(r.body["account"], "acc-a");
    let entries = r.body["entries"].as_array().unwrap();
    let seen: Vec<String> = entries
        .iter()
        .map(|e| match e["source"].as_str().unwrap() {
            "journal" => format!("journal {}", e["kind"].as_str().unwrap()),
            _ => format!("log {}", e["message"].as_str().unwrap()),
        })
        .collect();
    assert_eq!(
        seen,
        [
            "journal order_submitted",
            "journal order_accepted",
            "log order accepted",
            "journal order_filled",
            "log order filled",
            "journal compliance_alert"
        ]
    );
    let times: Vec<&str> = entries.iter().map(|e| e["ts"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    assert_eq!(entries[3]["summary"]["price"], "45000");
    assert_eq!(entries[5]["summary"]["key"], "wash-1");

    // The account's trader sees its order, without the alert that involves another account.
    let mine = h.get("/orders/42/timeline", &h.trader).await;
    assert_eq!(mine.status, StatusCode::OK);
    assert_eq!(mine.body["entries"].as_array().unwrap().len(), 5);
    let theirs = h.get("/orders/43/timeline", &h.trader).await;
    assert_eq!(
        (theirs.status, code(&theirs)),
        (StatusCode::NOT_FOUND, "order_not_found")
    );
    let unknown = h.get("/orders/999/timeline", &h.admin).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let bad = h.get("/orders/x/timeline", &h.admin).await;
    assert_eq!(
        (bad.status, code(&bad)),
        (StatusCode::NOT_FOUND, "order_not_found")
    );
    h.stop().await;
}
