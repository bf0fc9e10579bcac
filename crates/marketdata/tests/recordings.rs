//! Recordings as people have them: JSON-lines recordings written from the real fixture
//! messages, unknown lines skipped with a count and a sample (or fatal with `strict`), and the
//! Kraken and OKX book checksums the fixtures carry, verified.

mod common;

use common::*;
use marketdata::{
    Exchange, InputFormat, NormalizeError, NormalizeOptions, NormalizeStats, normalize_bytes,
};
use model::{Event, Timestamp};

/// The records of a cryptofeed text recording: (receive time text, message) of each received
/// line, and the sent requests.
struct TextRecording {
    received: Vec<(String, String)>,
    sent: Vec<(String, String)>,
    url: String,
}

fn text_recording(bytes: &[u8]) -> TextRecording {
    let text = std::str::from_utf8(bytes).unwrap();
    let mut rec = TextRecording {
        received: Vec::new(),
        sent: Vec::new(),
        url: String::new(),
    };
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if let Some((url, rest)) = line.split_once(" <- ") {
            let (ts, msg) = rest.split_once(": ").unwrap();
            rec.url = url.to_owned();
            rec.sent.push((ts.to_owned(), msg.to_owned()));
        } else if let Some((url, _)) = line.split_once(" <-> ") {
            rec.url = url.to_owned();
        } else {
            let (ts, msg) = line.split_once(": ").unwrap();
            rec.received.push((ts.to_owned(), msg.to_owned()));
        }
    }
    rec
}

fn record(fields: serde_json::Value) -> String {
    fields.to_string()
}

/// A JSON-lines recording of `rec`: a header, the connection, the requests and every received
/// message, the message as a JSON string (the raw text) or, every third one, as JSON itself.
fn json_lines(rec: &TextRecording) -> String {
    let mut lines = vec![
        record(serde_json::json!({"t": "header", "version": 1, "exchange": "test"})),
        record(serde_json::json!({"t": "connect", "conn": 1, "url": rec.url})),
    ];
    for (ts, msg) in &rec.sent {
        lines.push(record(
            serde_json::json!({"t": "send", "conn": 1, "ts": ts, "data": msg}),
        ));
    }
    for (i, (ts, msg)) in rec.received.iter().enumerate() {
        // The receive time exactly as recorded: a JSON number with the recording's digits.
        let data = if i % 3 == 2 && msg.starts_with(['{', '[']) {
            msg.clone()
        } else {
            serde_json::Value::String(msg.clone()).to_string()
        };
        lines.push(format!(
            r#"{{"t":"recv","conn":1,"ts":{ts},"data":{data}}}"#
        ));
    }
    lines.join("\n") + "\n"
}

/// Every event of `messages` parsed one by one, each at its receive time.
fn parsed_one_by_one(exchange: Exchange, messages: &[(String, String)]) -> Vec<Event> {
    messages
        .iter()
        .flat_map(|(ts, msg)| {
            let recv = Timestamp::parse_decimal_secs(ts).unwrap();
            marketdata::parse(exchange, msg, recv).unwrap()
        })
        .collect()
}

fn normalize_events(
    exchange: Exchange,
    input: &[u8],
    opts: &NormalizeOptions,
) -> Result<(NormalizeStats, Vec<Event>), NormalizeError> {
    let mut out = Vec::new();
    let stats = normalize_bytes(exchange, input, &mut out, opts)?;
    let events = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    Ok((stats, events))
}

#[test]
fn json_lines_recordings_normalize_to_the_events_of_their_raw_messages() {
    for (exchange, rel, messages) in [
        (Exchange::Okx, "okx/cryptofeed_OKX.ws.1.0", 0),
        (Exchange::Kraken, "kraken/cryptofeed_KRAKEN.ws.48.0", 49),
        (
            Exchange::Binance,
            "binance-spot/cryptofeed_BINANCE.ws.1.0",
            0,
        ),
    ] {
        let Some(bytes) = read(rel) else { return };
        let rec = text_recording(&bytes);
        let jsonl = json_lines(&rec);
        assert_eq!(
            marketdata::detect_format(jsonl.as_bytes()),
            InputFormat::JsonLinesRecording
        );
        let (stats, events) = normalize_events(exchange, jsonl.as_bytes(), &opts(None))
            .unwrap_or_else(|e| panic!("{rel}: {e}"));
        let expected = parsed_one_by_one(exchange, &rec.received);
        assert!(expected.len() >= 10, "{rel}: {}", expected.len());
        assert_eq!(events, expected, "{rel}");
        assert_eq!(stats.sent, rec.sent.len() as u64, "{rel}");
        assert_eq!(stats.messages, rec.received.len() as u64, "{rel}");
        if messages > 0 {
            assert_eq!(stats.messages, messages, "{rel}");
        }
        assert_eq!((stats.unknown_lines, stats.errors), (0, 0), "{rel}");
    }
}

#[test]
fn json_lines_http_records_give_the_symbol_from_their_url() {
    let Some(bytes) = read("binance-spot/cryptofeed_BINANCE.http.0.0") else {
        return;
    };
    // The REST lines (`<url> -> <ts>: <body>`) as `http` records: same events as the
    // text recording, which takes the symbol of the body from the URL too.
    let text = String::from_utf8(bytes.clone()).unwrap();
    let records: Vec<String> = text
        .lines()
        .filter_map(|l| l.split_once(" -> "))
        .map(|(url, rest)| {
            let (ts, body) = rest.split_once(": ").unwrap();
            let body = serde_json::Value::String(body.to_owned());
            format!(r#"{{"t":"http","ts":{ts},"url":"{url}","data":{body}}}"#)
        })
        .collect();
    assert!(records.len() >= 2, "{}", records.len());
    let jsonl = records.join("\n");
    let (stats, events) =
        normalize_events(Exchange::Binance, jsonl.as_bytes(), &opts(None)).unwrap();
    let (text_stats, text_events) =
        normalize_events(Exchange::Binance, &bytes, &opts(None)).unwrap();
    assert_eq!(stats.format, InputFormat::JsonLinesRecording);
    assert_eq!(text_stats.format, InputFormat::CryptofeedRecording);
    assert!(!events.is_empty());
    assert_eq!(events, text_events);
}

#[test]
fn unknown_lines_are_skipped_counted_and_sampled_or_fatal_when_strict() {
    let Some(bytes) = read("kraken/cryptofeed_KRAKEN.ws.48.0") else {
        return;
    };
    let rec = text_recording(&bytes);
    let clean = json_lines(&rec);
    let mut lines: Vec<String> = clean.lines().map(str::to_owned).collect();
    // A banner before the header, a record of an unknown kind in the middle, a record cut
    // short at the end (as when a recorder is killed mid-write).
    lines.insert(0, "recorded with kraken-rec 0.3 on host-7".into());
    lines.insert(20, r#"{"t":"close","conn":1,"code":1006}"#.into());
    let last = lines.last().unwrap().clone();
    lines.push(last[..last.len() / 2].to_owned());
    let dirty = lines.join("\n");

    let (stats, events) =
        normalize_events(Exchange::Kraken, dirty.as_bytes(), &opts(None)).unwrap();
    let (_, clean_events) =
        normalize_events(Exchange::Kraken, clean.as_bytes(), &opts(None)).unwrap();
    assert_eq!(stats.format, InputFormat::JsonLinesRecording);
    assert_eq!(events, clean_events);
    assert_eq!(stats.unknown_lines, 3);
    let n = lines.len();
    assert_eq!(stats.unknown_samples.len(), 3);
    assert!(
        stats.unknown_samples[0].starts_with(
            "line 1: bad recording record: not a JSON record (input: recorded with kraken-rec"
        ),
        "{:?}",
        stats.unknown_samples
    );
    assert!(
        stats.unknown_samples[1].starts_with("line 21: bad recording record: unknown record tag"),
        "{:?}",
        stats.unknown_samples
    );
    assert!(
        stats.unknown_samples[2].starts_with(&format!("line {n}: ")),
        "{:?}",
        stats.unknown_samples
    );
    // Samples are truncated, however long the line.
    let long = format!("{}\n{clean}", "x".repeat(10_000));
    let (stats, _) = normalize_events(Exchange::Kraken, long.as_bytes(), &opts(None)).unwrap();
    assert!(
        stats.unknown_samples[0].len() < 300,
        "{}",
        stats.unknown_samples[0].len()
    );

    let strict = NormalizeOptions {
        strict: true,
        ..opts(None)
    };
    let err = normalize_events(Exchange::Kraken, dirty.as_bytes(), &strict).unwrap_err();
    assert!(
        err.to_string().starts_with("line 1: bad recording record"),
        "{err}"
    );
}

#[test]
fn ndjson_and_text_recordings_skip_unknown_lines_too() {
    let Some(bytes) = read("kraken/cryptofeed_KRAKEN.ws.48.0") else {
        return;
    };
    // cryptofeed's own header line, and a stray line in the middle.
    let text = String::from_utf8(bytes.clone()).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.insert(0, r#"configuration: {"trades": ["XMR-USD"]}"#);
    lines.insert(10, "-- reconnected --");
    let with_header = lines.join("\n");
    let (stats, events) =
        normalize_events(Exchange::Kraken, with_header.as_bytes(), &opts(None)).unwrap();
    let (_, plain) = normalize_events(Exchange::Kraken, &bytes, &opts(None)).unwrap();
    assert_eq!(stats.format, InputFormat::CryptofeedRecording);
    assert_eq!(events, plain);
    assert_eq!(stats.unknown_lines, 1);
    assert!(
        stats.unknown_samples[0].starts_with("line 11: "),
        "{:?}",
        stats.unknown_samples
    );

    // NDJSON of the raw messages with a line that is not JSON.
    let rec = text_recording(&bytes);
    let mut ndjson: Vec<&str> = rec.received.iter().map(|(_, m)| m.as_str()).collect();
    ndjson.insert(3, "<html>502 Bad Gateway</html>");
    let (stats, _) =
        normalize_events(Exchange::Kraken, ndjson.join("\n").as_bytes(), &opts(None)).unwrap();
    assert_eq!(
        (stats.format, stats.unknown_lines, stats.errors),
        (InputFormat::Ndjson, 1, 0)
    );
    // A JSON line the parser does not know is still a bad message, not an unknown line.
    ndjson.insert(3, r#"{"event":"teapot"}"#);
    let err =
        normalize_events(Exchange::Kraken, ndjson.join("\n").as_bytes(), &opts(None)).unwrap_err();
    assert!(err.to_string().starts_with("line 4: kraken:"), "{err}");
}

// ---- book checksums ---------------------------------------------------------------------------

fn checked(exchange: Exchange, input: &[u8]) -> NormalizeStats {
    normalize_events(exchange, input, &opts(None)).unwrap().0
}

#[test]
fn recorded_kraken_v1_book_checksums_verify() {
    let Some(bytes) = read("kraken/cryptofeed_KRAKEN.ws.50.0") else {
        return;
    };
    let stats = checked(Exchange::Kraken, &bytes);
    // Every one of the 4269 updates of 10 pairs at depth 1000 carries a checksum.
    assert_eq!(
        (stats.checksums_verified, stats.checksum_mismatches),
        (4269, 0)
    );
}

#[test]
fn a_corrupted_kraken_level_fails_its_checksum() {
    let Some(bytes) = read("kraken/cryptofeed_KRAKEN.ws.50.0") else {
        return;
    };
    // Line 25 sets the XMR/USD bid at 354.15 to 5; one satoshi more is another book.
    let text = String::from_utf8(bytes).unwrap();
    let line25 = text.lines().nth(24).unwrap();
    assert!(
        line25.contains(r#"["354.15000000","5.00000000""#),
        "{line25}"
    );
    let corrupted = text.replacen(
        r#"["354.15000000","5.00000000""#,
        r#"["354.15000000","5.00000001""#,
        1,
    );
    let stats = checked(Exchange::Kraken, corrupted.as_bytes());
    assert_eq!(stats.checksum_mismatches, 1);
    let first = stats.first_checksum_mismatch.unwrap();
    assert!(
        first.starts_with("line 25: XMR/USD: book checksum") && first.contains("2583817756"),
        "{first}"
    );
    // The XMR/USD book is dropped after the mismatch (there is no later snapshot), so its
    // later updates go unchecked; the other nine pairs still verify.
    assert!(stats.checksums_verified > 3000 && stats.checksums_verified < 4268);
}

#[test]
fn recorded_okx_book_checksums_verify_and_a_corrupted_level_fails() {
    let Some(bytes) = read("okx/cryptofeed_OKX.ws.1.0") else {
        return;
    };
    let stats = checked(Exchange::Okx, &bytes);
    // 3 snapshots and 287 updates, each with its checksum.
    assert_eq!(
        (stats.checksums_verified, stats.checksum_mismatches),
        (290, 0)
    );

    // The first update of BTC-USD-220527 removes the ask at 30249.4: keep it instead.
    let text = String::from_utf8(bytes).unwrap();
    let corrupted = text.replacen(
        r#"[["30249.4","0","0","0"]"#,
        r#"[["30249.4","1","0","0"]"#,
        1,
    );
    assert_ne!(corrupted, text);
    let stats = checked(Exchange::Okx, corrupted.as_bytes());
    assert_eq!(stats.checksum_mismatches, 1);
    assert!(
        stats
            .first_checksum_mismatch
            .as_deref()
            .is_some_and(|m| m.contains("BTC-USD-220527: book checksum")),
        "{:?}",
        stats.first_checksum_mismatch
    );
}

#[test]
fn checksums_are_checked_in_json_lines_recordings_and_zips() {
    let Some(bytes) = read("okx/cryptofeed_OKX.ws.1.0") else {
        return;
    };
    let jsonl = json_lines(&text_recording(&bytes));
    assert_eq!(
        checked(Exchange::Okx, jsonl.as_bytes()).checksums_verified,
        290
    );
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    for name in ["a.ws.1.0", "b.jsonl"] {
        zip.start_file(name, options).unwrap();
        let body: &[u8] = if name.ends_with("jsonl") {
            jsonl.as_bytes()
        } else {
            &bytes
        };
        std::io::Write::write_all(&mut zip, body).unwrap();
    }
    let zip = zip.finish().unwrap().into_inner();
    let stats = checked(Exchange::Okx, &zip);
    assert_eq!(
        (stats.checksums_verified, stats.checksum_mismatches),
        (580, 0)
    );
}
