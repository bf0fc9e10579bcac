//! Fuzz targets for every parser of outside input the logger has: Loki pushes (JSON and
//! protobuf in Snappy), Prometheus-style label sets, NDJSON pushes and the `q=` search text.
//! Whatever the input: no panic, errors are values, and what is accepted keeps the logger's
//! limits; label sets written back parse the same; any `q` becomes an FTS5 expression SQLite
//! accepts and that matches the text it came from.

use logger::ingest::parse_ndjson;
use logger::loki::{parse_json_push, parse_labels, parse_protobuf_push, proto};
use logger::query::{fts_expression, parse_terms, text_matches};
use logger::record::{MAX_MESSAGE_BYTES, Record};
use model::Timestamp;

fn check(records: &[Record]) {
    for r in records {
        assert!(r.message.len() <= MAX_MESSAGE_BYTES);
        assert!(r.ts.as_nanos() >= 0);
        // What is stored is indexed: the search text is built without a panic.
        let _ = r.search_text();
    }
}

fn loki_json_seeds() -> Vec<Vec<u8>> {
    [
        // Loki's HTTP API reference: the curl example and a line with structured metadata.
        r#"{"streams": [{ "stream": { "foo": "bar2" }, "values": [ [ "1570818238000000000", "fizzbuzz" ] ] }]}"#,
        r#"{"streams":[{"stream":{"service":"api","level":"warn"},"values":[["1570818238000000000","<log line>",{"trace_id":"0242ac120002","user_id":"superUser123"}]]}]}"#,
        r#"{"streams":[{"stream":{"job":"x"},"values":[["1767225600000000001","{\"msg\":\"json line\",\"order_id\":7,\"ts\":\"2026-01-01T00:00:00Z\"}"]]}]}"#,
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

#[test]
fn fuzz_loki_json_push() {
    fuzzing::run("loki-json-push", &loki_json_seeds(), |input| {
        if let Ok(records) = parse_json_push(input) {
            check(&records);
        }
    });
}

/// A Snappy block holding `raw` as literals of at most 60 bytes each (format_description.txt).
fn snappy_literals(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut n = raw.len();
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            break;
        }
        out.push(b | 0x80);
    }
    for chunk in raw.chunks(60) {
        out.push(((chunk.len() - 1) << 2) as u8);
        out.extend_from_slice(chunk);
    }
    out
}

#[test]
fn fuzz_loki_protobuf_push() {
    let request = proto::PushRequest {
        streams: vec![proto::StreamAdapter {
            labels: r#"{service="vector", level="info", account="a1"}"#.into(),
            entries: vec![proto::EntryAdapter {
                timestamp: Some(proto::Timestamp {
                    seconds: 1_570_818_238,
                    nanos: 5,
                }),
                line: "fizzbuzz".into(),
                structured_metadata: vec![proto::LabelPairAdapter {
                    name: "trace_id".into(),
                    value: "0242ac120002".into(),
                }],
            }],
            hash: 0,
        }],
    };
    let raw = prost::Message::encode_to_vec(&request);
    let seeds = vec![
        snap::raw::Encoder::new().compress_vec(&raw).unwrap(),
        // The raw message in Snappy literals: mutations then reach the protobuf decoder.
        snappy_literals(&raw),
    ];
    fuzzing::run("loki-protobuf-push", &seeds, |input| {
        if let Ok(records) = parse_protobuf_push(input) {
            check(&records);
        }
    });
}

#[test]
fn fuzz_label_sets_round_trip() {
    let seeds: Vec<Vec<u8>> = [
        r#"{foo="bar2"}"#,
        r#"{job="varlogs", level="info",msg="a \"b\"\\c\nd"}"#,
        "{}",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    fuzzing::run("label-sets", &seeds, |input| {
        let Ok(text) = std::str::from_utf8(input) else {
            return;
        };
        if let Ok(labels) = parse_labels(text) {
            let written: Vec<String> = labels
                .iter()
                .map(|(k, v)| {
                    let v = v
                        .replace('\\', "\\\\")
                        .replace('"', "\\\"")
                        .replace('\n', "\\n");
                    format!("{k}=\"{v}\"")
                })
                .collect();
            let again = parse_labels(&format!("{{{}}}", written.join(", "))).unwrap();
            assert_eq!(again, labels);
        }
    });
}

#[test]
fn fuzz_ndjson_push() {
    let seeds: Vec<Vec<u8>> = [
        "{\"ts\":\"2025-01-02T03:04:05.5Z\",\"level\":\"WARN\",\"service\":\"vector\",\"message\":\"disk slow\",\"account\":\"a1\",\"order_id\":17,\"fields\":{\"symbol\":\"BTCUSDT\"}}\n{\"msg\":\"x\",\"extra\":{\"k\":[1,2]}}\n",
        "[{\"message\":\"a\"},{\"message\":\"b\",\"ts\":1767225600000000000}]",
        // What `trade2026 up --log-format json` writes.
        "{\"timestamp\":\"2026-03-01T10:00:00.123456Z\",\"level\":\"INFO\",\"message\":\"order accepted\",\"order_id\":\"42\",\"target\":\"gateway::orders\"}\n",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    fuzzing::run("ndjson-push", &seeds, |input| {
        if let Ok(records) = parse_ndjson(input, Timestamp::from_nanos(1_767_225_600_000_000_000)) {
            check(&records);
        }
    });
}

#[test]
fn fuzz_search_text_is_only_ever_text() {
    let db = rusqlite::Connection::open_in_memory().unwrap();
    db.execute_batch(
        "CREATE VIRTUAL TABLE t USING fts5(body, tokenize='unicode61 remove_diacritics 0');
         INSERT INTO t(body) VALUES ('order accepted test_account 42');",
    )
    .unwrap();
    let seeds: Vec<Vec<u8>> = [
        "order accepted",
        "test_account acc*",
        r#"a" OR "b NEAR(c) -d ^e col:x"#,
        "İstanbul ß ǅ",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    fuzzing::run("search-text", &seeds, |input| {
        let Ok(q) = std::str::from_utf8(input) else {
            return;
        };
        let Ok(terms) = parse_terms(q) else {
            return;
        };
        if terms.is_empty() {
            return;
        }
        let expr = fts_expression(&terms);
        let n: Result<i64, _> =
            db.query_row("SELECT count(*) FROM t WHERE t MATCH ?1", [&expr], |r| {
                r.get(0)
            });
        assert!(n.is_ok(), "{q:?} -> {expr:?}: {n:?}");
        assert!(
            text_matches(&terms, q),
            "{q:?} does not match its own words"
        );
    });
}
