//! Loki's push API (`POST /loki/api/v1/push`) in both of its encodings, so Promtail, Grafana
//! Alloy, Vector and Docker's Loki logging driver ship here unchanged:
//!
//! - JSON (`Content-Type: application/json`, optionally `Content-Encoding: gzip`):
//!   `{"streams":[{"stream":{labels},"values":[["<unix ns>","<line>",{structured metadata}]]}]}`
//!   (the format in Loki's HTTP API reference);
//! - protobuf (`Content-Type: application/x-protobuf`): a Snappy block (not the framed format)
//!   holding `logproto.PushRequest`. The messages are declared below with `prost`'s derive, so
//!   no `.proto` file or build script is involved.
//!
//! Labels and structured metadata become the record's columns where they name one (`service`,
//! `level`, `target`, `order_id`, `account`, `symbol`) and stay as fields otherwise. A stream
//! without a `service` label takes `service_name` (what Loki 3 and Alloy fill in), `job` or
//! `app`, else `unknown`. A line that is a JSON object is read as structured (see
//! [`crate::ingest`]). Any bad stream, entry or label refuses the whole request.

use std::collections::BTreeMap;

use model::Timestamp;
use serde_json::{Map, Value};

use crate::ingest::{BodyError, Defaults, check_time, from_object, kind, parse_time_value};
use crate::record::{Level, Record};

/// Labels that name the stream's service, most specific first.
const SERVICE_LABELS: [&str; 4] = ["service", "service_name", "job", "app"];

/// Most bytes a compressed push may expand to.
pub const MAX_DECODED_BYTES: usize = 64 * 1024 * 1024;

/// `logproto.PushRequest` and the messages inside it (field numbers from Loki's push.proto).
pub mod proto {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PushRequest {
        #[prost(message, repeated, tag = "1")]
        pub streams: Vec<StreamAdapter>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct StreamAdapter {
        /// Prometheus-style label set: `{job="x", level="info"}`.
        #[prost(string, tag = "1")]
        pub labels: String,
        #[prost(message, repeated, tag = "2")]
        pub entries: Vec<EntryAdapter>,
        #[prost(uint64, tag = "3")]
        pub hash: u64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct EntryAdapter {
        #[prost(message, optional, tag = "1")]
        pub timestamp: Option<Timestamp>,
        #[prost(string, tag = "2")]
        pub line: String,
        #[prost(message, repeated, tag = "3")]
        pub structured_metadata: Vec<LabelPairAdapter>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct LabelPairAdapter {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "2")]
        pub value: String,
    }

    /// `google.protobuf.Timestamp`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Timestamp {
        #[prost(int64, tag = "1")]
        pub seconds: i64,
        #[prost(int32, tag = "2")]
        pub nanos: i32,
    }
}

/// A JSON push body into records.
pub fn parse_json_push(body: &[u8]) -> Result<Vec<Record>, BodyError> {
    let root: Value = serde_json::from_slice(body)
        .map_err(|e| BodyError::new("body", format!("not valid JSON: {e}")))?;
    let streams = match root.get("streams") {
        Some(Value::Array(s)) => s,
        Some(other) => {
            return Err(BodyError::new(
                "streams",
                format!("expected an array, got {}", kind(other)),
            ));
        }
        None => return Err(BodyError::new("body", "no `streams` array")),
    };
    let mut out = Vec::new();
    for (i, stream) in streams.iter().enumerate() {
        let at = |rest: &str| format!("streams[{i}]{rest}");
        let labels = match stream.get("stream") {
            Some(Value::Object(m)) => {
                let mut labels = BTreeMap::new();
                for (k, v) in m {
                    let Value::String(s) = v else {
                        return Err(BodyError::new(
                            at(&format!(".stream.{k}")),
                            format!("label values are strings, got {}", kind(v)),
                        ));
                    };
                    labels.insert(k.clone(), s.clone());
                }
                labels
            }
            Some(other) => {
                return Err(BodyError::new(
                    at(".stream"),
                    format!("expected an object of labels, got {}", kind(other)),
                ));
            }
            None => BTreeMap::new(),
        };
        let values = match stream.get("values") {
            Some(Value::Array(v)) => v,
            Some(other) => {
                return Err(BodyError::new(
                    at(".values"),
                    format!("expected an array, got {}", kind(other)),
                ));
            }
            None => return Err(BodyError::new(at(""), "no `values` array")),
        };
        let stream = StreamLabels::new(labels);
        for (j, entry) in values.iter().enumerate() {
            let at = |rest: &str| format!("streams[{i}].values[{j}]{rest}");
            let Value::Array(parts) = entry else {
                return Err(BodyError::new(
                    at(""),
                    format!(
                        "expected [\"<unix ns>\", \"<line>\"(, {{metadata}})], got {}",
                        kind(entry)
                    ),
                ));
            };
            if !(2..=3).contains(&parts.len()) {
                return Err(BodyError::new(
                    at(""),
                    format!(
                        "expected [\"<unix ns>\", \"<line>\"(, {{metadata}})], got {} items",
                        parts.len()
                    ),
                ));
            }
            // A string, as Loki itself demands (a number is a 400 there too).
            let ts = match &parts[0] {
                Value::String(_) => parse_time_value(&parts[0]),
                other => Err(format!(
                    "the time is a string of Unix nanoseconds, got {}",
                    kind(other)
                )),
            }
            .map_err(|p| BodyError::new(at("[0]"), p))?;
            let Value::String(line) = &parts[1] else {
                return Err(BodyError::new(
                    at("[1]"),
                    format!("the log line is a string, got {}", kind(&parts[1])),
                ));
            };
            let mut metadata = Vec::new();
            if let Some(m) = parts.get(2) {
                let Value::Object(m) = m else {
                    return Err(BodyError::new(
                        at("[2]"),
                        format!("structured metadata is an object, got {}", kind(m)),
                    ));
                };
                for (k, v) in m {
                    let Value::String(s) = v else {
                        return Err(BodyError::new(
                            at(&format!("[2].{k}")),
                            format!("structured metadata values are strings, got {}", kind(v)),
                        ));
                    };
                    metadata.push((k.clone(), s.clone()));
                }
            }
            out.push(
                stream
                    .record(ts, line, metadata)
                    .map_err(|p| BodyError::new(at("[1]"), p))?,
            );
        }
    }
    Ok(out)
}

/// A protobuf push body (a Snappy block) into records.
pub fn parse_protobuf_push(body: &[u8]) -> Result<Vec<Record>, PushDecodeError> {
    let len = snap::raw::decompress_len(body).map_err(|e| {
        PushDecodeError::Body(BodyError::new("body", format!("not a Snappy block: {e}")))
    })?;
    if len > MAX_DECODED_BYTES {
        return Err(PushDecodeError::TooLarge(len));
    }
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| {
            PushDecodeError::Body(BodyError::new("body", format!("not a Snappy block: {e}")))
        })?;
    let request = <proto::PushRequest as prost::Message>::decode(raw.as_slice()).map_err(|e| {
        PushDecodeError::Body(BodyError::new(
            "body",
            format!("not a logproto.PushRequest: {e}"),
        ))
    })?;
    let mut out = Vec::new();
    for (i, stream) in request.streams.into_iter().enumerate() {
        let labels = parse_labels(&stream.labels).map_err(|p| {
            PushDecodeError::Body(BodyError::new(format!("streams[{i}].labels"), p))
        })?;
        let labels = StreamLabels::new(labels);
        for (j, entry) in stream.entries.into_iter().enumerate() {
            let at = format!("streams[{i}].entries[{j}]");
            let ts = match &entry.timestamp {
                Some(t) if (0..1_000_000_000).contains(&t.nanos) => t
                    .seconds
                    .checked_mul(1_000_000_000)
                    .and_then(|s| s.checked_add(i64::from(t.nanos)))
                    .ok_or_else(|| format!("{}s is out of range", t.seconds))
                    .and_then(check_time),
                Some(t) => Err(format!("nanos {} is not within a second", t.nanos)),
                None => Err("no timestamp".to_owned()),
            }
            .map_err(|p| PushDecodeError::Body(BodyError::new(format!("{at}.timestamp"), p)))?;
            let metadata = entry
                .structured_metadata
                .into_iter()
                .map(|p| (p.name, p.value))
                .collect();
            out.push(
                labels
                    .record(ts, &entry.line, metadata)
                    .map_err(|p| PushDecodeError::Body(BodyError::new(format!("{at}.line"), p)))?,
            );
        }
    }
    Ok(out)
}

/// A protobuf push that cannot be taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushDecodeError {
    #[error(transparent)]
    Body(#[from] BodyError),
    #[error("the body expands to {0} bytes, more than {MAX_DECODED_BYTES}")]
    TooLarge(usize),
}

/// A stream's labels, split once into what every entry of the stream shares.
struct StreamLabels {
    defaults: Defaults,
    /// Labels that are not columns, kept as fields.
    rest: Vec<(String, String)>,
    /// Column labels other than service/level/target (`order_id`, `account`, `symbol`).
    columns: Vec<(String, String)>,
}

impl StreamLabels {
    fn new(mut labels: BTreeMap<String, String>) -> StreamLabels {
        let service = SERVICE_LABELS
            .iter()
            .find_map(|k| labels.get(*k).filter(|v| !v.is_empty()).cloned())
            .unwrap_or_else(|| "unknown".into());
        labels.remove("service");
        let level = labels
            .remove("level")
            .or_else(|| labels.remove("detected_level"))
            .map_or(Level::Unknown, |l| Level::parse_lenient(&l));
        let target = labels.remove("target").unwrap_or_default();
        let mut columns = Vec::new();
        for key in crate::record::PROMOTED {
            if let Some(v) = labels.remove(key) {
                columns.push((key.to_owned(), v));
            }
        }
        StreamLabels {
            defaults: Defaults {
                ts: Timestamp::from_nanos(0),
                level,
                service,
                target,
            },
            rest: labels.into_iter().collect(),
            columns,
        }
    }

    /// One entry: the line (read as fields when it is a JSON object), then the stream's
    /// labels, then the entry's structured metadata (the most specific wins).
    fn record(
        &self,
        ts: Timestamp,
        line: &str,
        metadata: Vec<(String, String)>,
    ) -> Result<Record, String> {
        let defaults = Defaults {
            ts,
            ..self.defaults.clone()
        };
        let mut record = match structured(line) {
            Some(obj) => from_object(obj, &defaults, Some(line))?,
            None => Record::new(
                ts,
                defaults.level,
                &defaults.service,
                &defaults.target,
                line.to_owned(),
            ),
        };
        // What the line says itself beats the stream's labels.
        for (k, v) in &self.rest {
            if !record.fields.contains_key(k) {
                record.fields.insert(k.clone(), Value::String(v.clone()));
            }
        }
        for (k, v) in &self.columns {
            if let Some(column) = record.column_mut(k)
                && column.is_none()
            {
                *column = Some(v.clone());
            }
        }
        for (k, v) in metadata {
            match k.as_str() {
                "level" | "detected_level" => record.level = Level::parse_lenient(&v),
                "service" => record.service = v,
                "target" => record.target = v,
                _ => record.set_field(&k, Value::String(v)),
            }
        }
        Ok(record.bounded())
    }
}

/// A line that is a JSON object, as its fields.
fn structured(line: &str) -> Option<Map<String, Value>> {
    if !line.trim_start().starts_with('{') {
        return None;
    }
    match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(m)) => Some(m),
        _ => None,
    }
}

/// A Prometheus-style label set, `{name="value", ...}` (values escape `\"`, `\\` and `\n`),
/// as Loki's protobuf streams carry it.
pub fn parse_labels(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut labels = BTreeMap::new();
    let s = text.trim();
    let inner = s
        .strip_prefix('{')
        .and_then(|r| r.strip_suffix('}'))
        .ok_or_else(|| format!("{text:?} is not a label set like {{job=\"x\"}}"))?;
    let mut chars = inner.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace() || *c == ',').is_some() {}
        if chars.peek().is_none() {
            break;
        }
        let mut name = String::new();
        while let Some(c) = chars.next_if(|c| c.is_ascii_alphanumeric() || *c == '_') {
            name.push(c);
        }
        if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(format!(
                "{text:?}: a label name is expected at {:?}",
                rest(&mut chars)
            ));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(format!("{text:?}: `=` is expected after label {name}"));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('"') {
            return Err(format!("{text:?}: the value of label {name} is not quoted"));
        }
        let mut value = String::new();
        loop {
            match chars.next() {
                None => return Err(format!("{text:?}: the value of label {name} is not closed")),
                Some('"') => break,
                Some('\\') => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(c @ ('"' | '\\')) => value.push(c),
                    Some(c) => {
                        value.push('\\');
                        value.push(c);
                    }
                    None => {
                        return Err(format!("{text:?}: the value of label {name} is not closed"));
                    }
                },
                Some(c) => value.push(c),
            }
        }
        labels.insert(name, value);
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        match chars.next() {
            None => break,
            Some(',') => {}
            Some(c) => return Err(format!("{text:?}: `,` is expected, got {c:?}")),
        }
    }
    Ok(labels)
}

fn rest(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> String {
    chars.take(20).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_sets_parse_with_escapes_and_refuse_garbage() {
        let l = parse_labels(r#"{job="varlogs", level="info",msg="a \"b\"\\c\nd"}"#).unwrap();
        assert_eq!(l["job"], "varlogs");
        assert_eq!(l["level"], "info");
        assert_eq!(l["msg"], "a \"b\"\\c\nd");
        assert!(parse_labels("{}").unwrap().is_empty());
        for bad in [
            "job=\"x\"",
            "{job=x}",
            "{job=\"x}",
            "{=\"x\"}",
            "{1a=\"x\"}",
            "{a=\"x\" b=\"y\"}",
        ] {
            assert!(parse_labels(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn stream_labels_fill_columns_and_metadata_wins() {
        let labels: BTreeMap<String, String> = [
            ("job", "varlogs"),
            ("level", "warning"),
            ("account", "acc"),
            ("host", "h1"),
        ]
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
        let s = StreamLabels::new(labels);
        let r = s
            .record(
                Timestamp::from_nanos(5),
                "plain text",
                vec![
                    ("level".into(), "error".into()),
                    ("order_id".into(), "9".into()),
                ],
            )
            .unwrap();
        assert_eq!(r.service, "varlogs");
        assert_eq!(r.level, Level::Error);
        assert_eq!(r.account.as_deref(), Some("acc"));
        assert_eq!(r.order_id.as_deref(), Some("9"));
        assert_eq!(r.fields.get("host"), Some(&Value::from("h1")));
        assert_eq!(r.fields.get("job"), Some(&Value::from("varlogs")));
        assert_eq!(r.message, "plain text");
        // A JSON line is the application's: odd keys never refuse the push.
        let odd = s
            .record(
                Timestamp::from_nanos(6),
                r#"{"ts":"yesterday","level":5,"message":"m","account":"own"}"#,
                Vec::new(),
            )
            .unwrap();
        assert_eq!(
            (odd.ts.as_nanos(), odd.level, odd.message.as_str()),
            (6, Level::Warn, "m")
        );
        assert_eq!(odd.fields.get("ts"), Some(&Value::from("yesterday")));
        assert_eq!(odd.fields.get("level"), Some(&Value::from(5)));
        assert_eq!(
            odd.account.as_deref(),
            Some("own"),
            "the line's own account wins"
        );
    }
}
