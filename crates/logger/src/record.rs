//! The record model: one log line with the columns searches filter on, and what every way in
//! (the tracing layer, Loki pushes, NDJSON) agrees on: levels, the promoted fields, the limits.

use model::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Longest message kept; a longer one is cut at a character boundary and marked
/// `"truncated": true` in its fields (a shipper's batch is not refused for one huge line).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Most bytes of a line's other fields as JSON; beyond it they are replaced by
/// `{"fields_truncated": <their size>}`.
pub const MAX_FIELDS_BYTES: usize = 16 * 1024;
/// Longest service, target, order id, account or symbol value.
pub const MAX_NAME_BYTES: usize = 256;

/// Fields (or Loki labels) that become a line's columns instead of staying in `fields`.
pub const PROMOTED: [&str; 3] = ["order_id", "account", "symbol"];

/// Severity, least severe first. `Unknown` is what a pushed line without a recognisable level
/// gets (Loki's word for it too); a `level=` filter never matches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Unknown = 0,
    Trace = 1,
    Debug = 2,
    Info = 3,
    Warn = 4,
    Error = 5,
}

impl Level {
    pub const NAMES: [&'static str; 5] = ["trace", "debug", "info", "warn", "error"];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Unknown => "unknown",
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }

    /// The stored number (also the order of severity).
    pub fn code(self) -> i64 {
        self as i64
    }

    pub fn from_code(code: i64) -> Level {
        match code {
            1 => Level::Trace,
            2 => Level::Debug,
            3 => Level::Info,
            4 => Level::Warn,
            5 => Level::Error,
            _ => Level::Unknown,
        }
    }

    /// One of [`Level::NAMES`] exactly (a query parameter).
    pub fn parse_name(s: &str) -> Option<Level> {
        match s {
            "trace" => Some(Level::Trace),
            "debug" => Some(Level::Debug),
            "info" => Some(Level::Info),
            "warn" => Some(Level::Warn),
            "error" => Some(Level::Error),
            _ => None,
        }
    }

    /// What shippers and loggers write (`INFO`, `warning`, `err`, `fatal`, `critical`, ...);
    /// anything else is [`Level::Unknown`].
    pub fn parse_lenient(s: &str) -> Level {
        match s.trim().to_ascii_lowercase().as_str() {
            "trace" | "trc" => Level::Trace,
            "debug" | "dbg" => Level::Debug,
            "info" | "information" | "informational" | "notice" | "inf" => Level::Info,
            "warn" | "warning" | "wrn" => Level::Warn,
            "error" | "err" | "eror" | "fatal" | "critical" | "crit" | "alert" | "emerg"
            | "emergency" | "panic" => Level::Error,
            _ => Level::Unknown,
        }
    }

    pub fn from_tracing(level: &tracing::Level) -> Level {
        match *level {
            tracing::Level::TRACE => Level::Trace,
            tracing::Level::DEBUG => Level::Debug,
            tracing::Level::INFO => Level::Info,
            tracing::Level::WARN => Level::Warn,
            tracing::Level::ERROR => Level::Error,
        }
    }
}

/// One log line.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub ts: Timestamp,
    pub level: Level,
    /// The service that wrote it (`gateway`, `engine`, ... or a pushed `service` label).
    pub service: String,
    /// Where in the code (`gateway::orders`) or, for pushed lines, the `target` label if any.
    pub target: String,
    pub message: String,
    pub order_id: Option<String>,
    pub account: Option<String>,
    pub symbol: Option<String>,
    /// Every other field or label.
    pub fields: Map<String, Value>,
}

impl Record {
    /// A record with no fields yet.
    pub fn new(
        ts: Timestamp,
        level: Level,
        service: &str,
        target: &str,
        message: String,
    ) -> Record {
        Record {
            ts,
            level,
            service: service.to_owned(),
            target: target.to_owned(),
            message,
            order_id: None,
            account: None,
            symbol: None,
            fields: Map::new(),
        }
    }

    /// Adds a field, promoting `order_id`, `account` and `symbol` to their columns (a string,
    /// or a number written out; other JSON stays a field).
    pub fn set_field(&mut self, key: &str, value: Value) {
        if let Some(column) = self.column_mut(key) {
            match value {
                Value::String(s) if !s.is_empty() => {
                    *column = Some(s);
                    return;
                }
                Value::Number(n) => {
                    *column = Some(n.to_string());
                    return;
                }
                other => {
                    self.fields.insert(key.to_owned(), other);
                    return;
                }
            }
        }
        self.fields.insert(key.to_owned(), value);
    }

    /// The column a promoted field name stands for.
    pub fn column_mut(&mut self, key: &str) -> Option<&mut Option<String>> {
        match key {
            "order_id" => Some(&mut self.order_id),
            "account" => Some(&mut self.account),
            "symbol" => Some(&mut self.symbol),
            _ => None,
        }
    }

    /// Applies the limits: long values cut, oversize fields replaced (see the constants).
    pub fn bounded(mut self) -> Record {
        if self.message.len() > MAX_MESSAGE_BYTES {
            truncate(&mut self.message, MAX_MESSAGE_BYTES);
            self.fields.insert("truncated".into(), Value::Bool(true));
        }
        for name in [&mut self.service, &mut self.target] {
            truncate(name, MAX_NAME_BYTES);
        }
        for v in [&mut self.order_id, &mut self.account, &mut self.symbol]
            .into_iter()
            .flatten()
        {
            truncate(v, MAX_NAME_BYTES);
        }
        if !self.fields.is_empty() {
            let size = self
                .fields
                .iter()
                .map(|(k, v)| k.len() + 4 + json_size(v))
                .sum::<usize>();
            if size > MAX_FIELDS_BYTES {
                let truncated = self.fields.remove("truncated");
                self.fields = Map::new();
                self.fields
                    .insert("fields_truncated".into(), Value::from(size));
                if let Some(t) = truncated {
                    self.fields.insert("truncated".into(), t);
                }
            }
        }
        self
    }

    /// The text the full-text index holds for this line: the message, then the service, the
    /// level, the promoted columns and every field value (so `q=` finds a line by its order id
    /// or account too, and every exact filter can be narrowed by the index first). The tail
    /// filter matches against the same text.
    pub fn search_text(&self) -> String {
        let mut text = String::with_capacity(self.message.len() + 80);
        text.push_str(&self.message);
        for v in [&self.service, self.level.as_str()].into_iter().chain(
            [&self.order_id, &self.account, &self.symbol]
                .into_iter()
                .flatten()
                .map(String::as_str),
        ) {
            text.push(' ');
            text.push_str(v);
        }
        for v in self.fields.values() {
            push_value(&mut text, v);
        }
        text
    }

    /// The line as the API shows it (`id` is its place in the store, the cursor's unit).
    pub fn to_json(&self, id: Option<i64>) -> Value {
        let mut m = Map::new();
        if let Some(id) = id {
            // A string: ids exceed what a JavaScript number holds exactly.
            m.insert("id".into(), Value::String(id.to_string()));
        }
        m.insert("ts".into(), Value::String(self.ts.to_string()));
        m.insert("level".into(), Value::String(self.level.as_str().into()));
        m.insert("service".into(), Value::String(self.service.clone()));
        m.insert("target".into(), Value::String(self.target.clone()));
        m.insert("message".into(), Value::String(self.message.clone()));
        for (k, v) in [
            ("order_id", &self.order_id),
            ("account", &self.account),
            ("symbol", &self.symbol),
        ] {
            if let Some(v) = v {
                m.insert(k.into(), Value::String(v.clone()));
            }
        }
        m.insert("fields".into(), Value::Object(self.fields.clone()));
        Value::Object(m)
    }
}

/// About the length of `v` as JSON (strings without escapes), cheaply: the limits need an
/// order of magnitude, not the exact figure, and this runs for every captured event.
fn json_size(v: &Value) -> usize {
    match v {
        Value::Null | Value::Bool(_) => 5,
        Value::Number(_) => 20,
        Value::String(s) => s.len() + 2,
        Value::Array(items) => 2 + items.iter().map(|i| json_size(i) + 1).sum::<usize>(),
        Value::Object(m) => {
            2 + m
                .iter()
                .map(|(k, v)| k.len() + 4 + json_size(v))
                .sum::<usize>()
        }
    }
}

fn push_value(text: &mut String, v: &Value) {
    match v {
        Value::String(s) => {
            text.push(' ');
            text.push_str(s);
        }
        Value::Number(n) => {
            text.push(' ');
            text.push_str(&n.to_string());
        }
        Value::Bool(b) => {
            text.push(' ');
            text.push_str(if *b { "true" } else { "false" });
        }
        Value::Null => {}
        Value::Array(items) => items.iter().for_each(|i| push_value(text, i)),
        Value::Object(map) => map.values().for_each(|i| push_value(text, i)),
    }
}

/// Cuts `s` to at most `max` bytes at a character boundary.
pub fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}

/// The service a crate's events belong to, from the event's target (its module path). The
/// pure trading cores run inside the engine, the read stores inside the service that serves
/// them; shared plumbing (journal, runtime, feeds, sinks, the binary) is `platform`.
pub fn service_of_target(target: &str) -> &'static str {
    let krate = target.split("::").next().unwrap_or(target);
    match krate {
        "gateway" | "blotter" | "auth" => "gateway",
        "engine" | "oms" | "risk" | "venue" | "positions" => "engine",
        "ptrc_service" | "ptrc" | "reports" => "ptrc",
        "execution_quality" | "execq" => "execution_quality",
        "compliance_scanner" | "surveillance" | "alerts" => "compliance_scanner",
        "feature_pipeline" | "features" | "feast_store" => "feature_pipeline",
        "logger" => "logger",
        "monitoring" => "monitoring",
        "feeds" | "marketdata" => "feeds",
        "sinks" => "sinks",
        _ => "platform",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn promoted_fields_become_columns_and_numbers_are_written_out() {
        let mut r = Record::new(Timestamp::from_nanos(1), Level::Info, "s", "t", "m".into());
        r.set_field("order_id", Value::from(42));
        r.set_field("account", Value::from("acc-1"));
        r.set_field("symbol", Value::Null);
        r.set_field("qty", Value::from("0.5"));
        assert_eq!(r.order_id.as_deref(), Some("42"));
        assert_eq!(r.account.as_deref(), Some("acc-1"));
        assert_eq!(r.symbol, None);
        assert_eq!(r.fields.get("symbol"), Some(&Value::Null));
        assert_eq!(r.fields.get("qty"), Some(&Value::from("0.5")));
        assert_eq!(r.search_text(), "m s info 42 acc-1 0.5");
    }

    #[test]
    fn levels_read_what_shippers_write() {
        assert_eq!(Level::parse_lenient("WARNING"), Level::Warn);
        assert_eq!(Level::parse_lenient(" Fatal "), Level::Error);
        assert_eq!(Level::parse_lenient("notice"), Level::Info);
        assert_eq!(Level::parse_lenient("verbose"), Level::Unknown);
        assert_eq!(Level::parse_name("INFO"), None, "query names are exact");
        for code in 0..=5 {
            assert_eq!(Level::from_code(code).code(), code);
        }
        assert!(Level::Error > Level::Warn && Level::Trace > Level::Unknown);
    }

    #[test]
    fn limits_cut_long_values_and_oversize_fields() {
        let mut r = Record::new(
            Timestamp::from_nanos(1),
            Level::Info,
            "s",
            "t",
            "é".repeat(MAX_MESSAGE_BYTES),
        );
        r.set_field("blob", Value::from("x".repeat(MAX_FIELDS_BYTES)));
        let r = r.bounded();
        assert!(r.message.len() <= MAX_MESSAGE_BYTES && r.message.len() >= MAX_MESSAGE_BYTES - 1);
        assert_eq!(r.fields.get("truncated"), Some(&Value::Bool(true)));
        assert!(r.fields.contains_key("fields_truncated"));
        assert!(!r.fields.contains_key("blob"));
    }

    #[test]
    fn targets_map_to_the_service_that_runs_them() {
        assert_eq!(service_of_target("gateway::orders"), "gateway");
        assert_eq!(service_of_target("engine::shell"), "engine");
        assert_eq!(service_of_target("oms"), "engine");
        assert_eq!(service_of_target("ptrc_service::http"), "ptrc");
        assert_eq!(
            service_of_target("compliance_scanner"),
            "compliance_scanner"
        );
        assert_eq!(service_of_target("journal::writer"), "platform");
        assert_eq!(service_of_target("hyper::proto"), "platform");
    }
}
