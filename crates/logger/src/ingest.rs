//! Plain NDJSON lines (`POST /logs`) into records, and the mapping of one JSON log object that
//! Loki lines share: a line that is itself a JSON object (what `trade2026 up --log-format json`,
//! Docker's json-file and most structured loggers write) is read as fields, not as opaque text.
//!
//! Everything here is all-or-nothing: the first bad line stops the request with an error that
//! names it, and nothing of the request is stored.

use model::Timestamp;
use serde_json::{Map, Value};

use crate::record::{Level, Record};

/// Why a body was refused: where (`line 3`, `streams[0].values[2][0]`) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {problem}")]
pub struct BodyError {
    pub at: String,
    pub problem: String,
}

impl BodyError {
    pub fn new(at: impl Into<String>, problem: impl Into<String>) -> BodyError {
        BodyError {
            at: at.into(),
            problem: problem.into(),
        }
    }
}

/// Keys a JSON log object may carry its time in, in the order they are looked for.
const TIME_KEYS: [&str; 3] = ["ts", "timestamp", "time"];
/// Keys a JSON log object may carry its text in.
const MESSAGE_KEYS: [&str; 2] = ["message", "msg"];

/// What a line gets when it says nothing itself (a Loki stream's labels, the receipt time).
#[derive(Debug, Clone)]
pub struct Defaults {
    pub ts: Timestamp,
    pub level: Level,
    pub service: String,
    pub target: String,
}

/// Reads a time: a string of digits or an integer is Unix nanoseconds, any other string RFC
/// 3339. Times before 1970 or from 2223-07-06 on are refused (the store orders lines by time).
pub fn parse_time_value(v: &Value) -> Result<Timestamp, String> {
    let nanos = match v {
        // 5.0 is a whole number too (JSON Schema's `integer`).
        Value::Number(n) => n
            .as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18)
                    .map(|f| f as i64)
            })
            .ok_or_else(|| format!("{n} is not a whole number of Unix nanoseconds"))?,
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s
            .parse::<i64>()
            .map_err(|_| format!("{s:?} is too large for Unix nanoseconds"))?,
        Value::String(s) => Timestamp::parse_rfc3339(s)
            .map_err(|_| format!("{s:?} is neither Unix nanoseconds nor an RFC 3339 time"))?
            .as_nanos(),
        other => return Err(format!("{other} is not a time")),
    };
    check_time(nanos)
}

/// The first time the store does not take: 8e18 ns, 2223-07-06 (the ids' limit is 2248; a
/// round number keeps the documented range simple).
pub const MAX_NANOS: i64 = 8_000_000_000_000_000_000;

/// The range of times the store takes: 1970 up to [`MAX_NANOS`].
pub fn check_time(nanos: i64) -> Result<Timestamp, String> {
    if nanos < 0 {
        return Err(format!("{nanos} is before 1970"));
    }
    if nanos >= MAX_NANOS {
        return Err(format!("{nanos} is after 2223-07-06"));
    }
    Ok(Timestamp::from_nanos(nanos))
}

/// One JSON log object into a record. For an NDJSON line (`raw` is `None`) the object is the
/// whole request: it must carry its text, and a time, level, service or target of the wrong
/// kind refuses it. A Loki line that happens to be a JSON object (`raw` is the line) is the
/// application's, not the shipper's: it never refuses the push; what does not fit a column is
/// kept as a field, and without a message the whole line is the text.
pub fn from_object(
    mut obj: Map<String, Value>,
    defaults: &Defaults,
    raw: Option<&str>,
) -> Result<Record, String> {
    let lenient = raw.is_some();
    let mut kept: Vec<(String, Value)> = Vec::new();
    let take = |obj: &mut Map<String, Value>, keys: &[&str]| {
        keys.iter()
            .find_map(|k| obj.remove(*k).map(|v| ((*k).to_owned(), v)))
    };
    let ts = match take(&mut obj, &TIME_KEYS) {
        Some((k, v)) => match parse_time_value(&v) {
            Ok(t) => t,
            Err(_) if lenient => {
                kept.push((k, v));
                defaults.ts
            }
            Err(e) => return Err(e),
        },
        None => defaults.ts,
    };
    let message = match take(&mut obj, &MESSAGE_KEYS) {
        Some((_, Value::String(s))) => s,
        Some((_, other)) => other.to_string(),
        None => match raw {
            Some(raw) => raw.to_owned(),
            None => return Err("no `message` (or `msg`) field".into()),
        },
    };
    let mut text_field =
        |obj: &mut Map<String, Value>, key: &str| -> Result<Option<String>, String> {
            match obj.remove(key) {
                Some(Value::String(s)) => Ok(Some(s)),
                None => Ok(None),
                Some(other) if lenient => {
                    kept.push((key.to_owned(), other));
                    Ok(None)
                }
                Some(other) => Err(format!("{key}: {other} is not a string")),
            }
        };
    let level = text_field(&mut obj, "level")?.map_or(defaults.level, |l| Level::parse_lenient(&l));
    let service = text_field(&mut obj, "service")?
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| defaults.service.clone());
    let target = text_field(&mut obj, "target")?.unwrap_or_else(|| defaults.target.clone());
    let mut record = Record::new(ts, level, &service, &target, message);
    match obj.remove("fields") {
        Some(Value::Object(fields)) => {
            for (k, v) in fields {
                record.set_field(&k, v);
            }
        }
        Some(other) => record.set_field("fields", other),
        None => {}
    }
    for (k, v) in obj.into_iter().chain(kept) {
        record.set_field(&k, v);
    }
    Ok(record.bounded())
}

/// `POST /logs`: one JSON object per line (blank lines skipped), or one JSON array of objects.
/// A line without a time gets `now`; without a service, `unknown`.
pub fn parse_ndjson(body: &[u8], now: Timestamp) -> Result<Vec<Record>, BodyError> {
    let defaults = Defaults {
        ts: now,
        level: Level::Unknown,
        service: "unknown".into(),
        target: String::new(),
    };
    let text = std::str::from_utf8(body).map_err(|e| {
        BodyError::new(format!("byte {}", e.valid_up_to()), "the body is not UTF-8")
    })?;
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        let items: Vec<Value> = serde_json::from_str(trimmed)
            .map_err(|e| BodyError::new("body", format!("not a JSON array: {e}")))?;
        return items
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                object_record(v, &defaults).map_err(|p| BodyError::new(format!("[{i}]"), p))
            })
            .collect();
    }
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = || format!("line {}", i + 1);
        let v: Value = serde_json::from_str(line)
            .map_err(|e| BodyError::new(at(), format!("not JSON: {e}")))?;
        out.push(object_record(v, &defaults).map_err(|p| BodyError::new(at(), p))?);
    }
    Ok(out)
}

fn object_record(v: Value, defaults: &Defaults) -> Result<Record, String> {
    match v {
        Value::Object(obj) => from_object(obj, defaults, None),
        other => Err(format!("expected a JSON object, got {}", kind(&other))),
    }
}

/// The JSON type of a value, for messages.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000_000_000_000;

    #[test]
    fn ndjson_lines_map_to_columns_and_fields() {
        let body = br#"{"ts":"2025-01-02T03:04:05.5Z","level":"WARN","service":"vector","message":"disk slow","account":"a1","order_id":17,"fields":{"symbol":"BTCUSDT","ms":12}}

{"msg":"no time, no service","extra":{"k":[1,2]}}
"#;
        let r = parse_ndjson(body, Timestamp::from_nanos(NOW)).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].ts.to_string(), "2025-01-02T03:04:05.500000000Z");
        assert_eq!(
            (r[0].level, r[0].service.as_str(), r[0].message.as_str()),
            (Level::Warn, "vector", "disk slow")
        );
        assert_eq!(r[0].order_id.as_deref(), Some("17"));
        assert_eq!(r[0].account.as_deref(), Some("a1"));
        assert_eq!(r[0].symbol.as_deref(), Some("BTCUSDT"));
        assert_eq!(r[0].fields.get("ms"), Some(&Value::from(12)));
        assert_eq!(r[1].ts.as_nanos(), NOW);
        assert_eq!(
            (r[1].service.as_str(), r[1].level),
            ("unknown", Level::Unknown)
        );
        assert_eq!(r[1].fields["extra"]["k"][1], Value::from(2));
    }

    #[test]
    fn our_own_json_log_lines_read_back() {
        // What `trade2026 up --log-format json` writes (tracing-subscriber, flattened events).
        let line = br#"{"timestamp":"2026-03-01T10:00:00.123456000Z","level":"INFO","message":"order accepted","order_id":"42","account":"test_account","status":"Accepted","target":"gateway::orders"}"#;
        let r = &parse_ndjson(line, Timestamp::from_nanos(NOW)).unwrap()[0];
        assert_eq!(r.target, "gateway::orders");
        assert_eq!(r.order_id.as_deref(), Some("42"));
        assert_eq!(r.level, Level::Info);
        assert_eq!(r.ts.to_string(), "2026-03-01T10:00:00.123456000Z");
    }

    #[test]
    fn the_first_bad_line_is_named_and_nothing_is_returned() {
        let now = Timestamp::from_nanos(NOW);
        let cases: [(&[u8], &str); 7] = [
            (b"{\"message\":\"ok\"}\n{oops\n", "line 2: not JSON"),
            (
                b"{\"message\":\"ok\"}\n[1]\n",
                "line 2: expected a JSON object, got an array",
            ),
            (
                b"{\"level\":\"info\"}",
                "line 1: no `message` (or `msg`) field",
            ),
            (
                b"{\"message\":\"x\",\"ts\":\"yesterday\"}",
                "line 1: \"yesterday\" is neither",
            ),
            (
                b"{\"message\":\"x\",\"ts\":-5}",
                "line 1: -5 is before 1970",
            ),
            (
                b"[{\"message\":\"x\"}, 3]",
                "[1]: expected a JSON object, got a number",
            ),
            (
                b"{\"message\":\"x\",\"level\":3}",
                "line 1: level: 3 is not a string",
            ),
        ];
        for (body, want) in cases {
            let e = parse_ndjson(body, now).unwrap_err().to_string();
            assert!(e.starts_with(want), "{e} / {want}");
        }
        assert!(
            parse_ndjson(b"\xff\n", now)
                .unwrap_err()
                .to_string()
                .contains("UTF-8")
        );
        assert!(parse_ndjson(b"\n \n", now).unwrap().is_empty());
    }

    #[test]
    fn times_read_as_nanoseconds_or_rfc3339() {
        assert_eq!(
            parse_time_value(&Value::from("1570818238000000000"))
                .unwrap()
                .as_nanos(),
            1_570_818_238_000_000_000
        );
        assert_eq!(parse_time_value(&Value::from(5)).unwrap().as_nanos(), 5);
        assert!(parse_time_value(&Value::from("99999999999999999999")).is_err());
        assert!(parse_time_value(&Value::from(1.5)).is_err());
        assert_eq!(parse_time_value(&Value::from(7.0)).unwrap().as_nanos(), 7);
        assert_eq!(
            parse_time_value(&Value::from("0007")).unwrap().as_nanos(),
            7
        );
        assert!(parse_time_value(&Value::from("7999999999999999999")).is_ok());
        assert!(
            parse_time_value(&Value::from("8000000000000000000")).is_err(),
            "after 2223"
        );
    }
}
