//! Shared helpers for the fixture tests: locating `../../../shared/fixtures`, running a file
//! through `marketdata::scan` and tallying the result per message.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use marketdata::{Exchange, MessageKind, NormalizeOptions, NormalizeStats, scan};
use model::{Event, Timestamp};

/// The receive time given to inputs that are not recordings.
pub const RECV: Timestamp = Timestamp::from_secs(1_800_000_000);

/// `shared/fixtures/marketdata`, or `None` (with a message) when it is absent. Under
/// `CI=true` an absent fixture directory fails the test instead.
pub fn fixture_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/fixtures"
    ))
    .join("marketdata");
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("fixture directory {} is missing (CI=true)", dir.display());
    }
    eprintln!("skipping: fixture directory {} not found", dir.display());
    None
}

pub fn read(rel: &str) -> Option<Vec<u8>> {
    let path = fixture_dir()?.join(rel);
    Some(std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display())))
}

/// Everything one input produced, message by message.
pub struct Run {
    pub stats: NormalizeStats,
    /// (line, kind, events) per successfully parsed message.
    pub messages: Vec<(usize, MessageKind, Vec<Event>)>,
}

impl Run {
    /// Data messages per kind of their (first) event; `"empty"` for data without events.
    pub fn message_kinds(&self) -> BTreeMap<&'static str, usize> {
        let mut m = BTreeMap::new();
        for (_, kind, events) in &self.messages {
            let k = match (kind, events.first()) {
                (MessageKind::Control, _) => "control",
                (MessageKind::Data, Some(e)) => e.kind().as_str(),
                (MessageKind::Data, None) => "empty",
            };
            *m.entry(k).or_insert(0) += 1;
        }
        m
    }

    pub fn events(&self) -> impl Iterator<Item = &Event> {
        self.messages.iter().flat_map(|(_, _, e)| e.iter())
    }

    pub fn event_count(&self, kind: &str) -> usize {
        self.events().filter(|e| e.kind().as_str() == kind).count()
    }

    /// The events of the message on `line`.
    pub fn at_line(&self, line: usize) -> &[Event] {
        &self
            .messages
            .iter()
            .find(|(l, _, _)| *l == line)
            .unwrap_or_else(|| panic!("no message on line {line}"))
            .2
    }
}

pub fn run_with(exchange: Exchange, rel: &str, opts: NormalizeOptions) -> Option<Run> {
    let bytes = read(rel)?;
    let mut messages = Vec::new();
    let stats = scan(exchange, &bytes, &opts, |pos, kind, events| {
        messages.push((pos.line, kind, events.to_vec()));
        Ok(())
    })
    .unwrap_or_else(|e| panic!("{rel}: {e}"));
    assert_eq!(stats.errors, 0, "{rel}: {:?}", stats.first_error);
    Some(Run { stats, messages })
}

pub fn run(exchange: Exchange, rel: &str) -> Option<Run> {
    run_with(exchange, rel, opts(None))
}

pub fn opts(symbol: Option<&str>) -> NormalizeOptions {
    NormalizeOptions {
        symbol: symbol.map(str::to_owned),
        recv_ts: Some(RECV),
        ..NormalizeOptions::default()
    }
}

pub fn kinds(pairs: &[(&'static str, usize)]) -> BTreeMap<&'static str, usize> {
    pairs.iter().copied().collect()
}

pub fn ms(v: i64) -> Timestamp {
    Timestamp::from_millis(v)
}

pub fn rfc(s: &str) -> Timestamp {
    Timestamp::parse_rfc3339(s).unwrap()
}

pub fn secs(s: &str) -> Timestamp {
    Timestamp::parse_decimal_secs(s).unwrap()
}

/// `(price, quantity)` as strings, for compact level assertions.
pub fn lv(l: &model::BookLevel) -> (String, String) {
    (l.price.to_string(), l.quantity.to_string())
}

pub fn p(a: &str, b: &str) -> (String, String) {
    (a.to_owned(), b.to_owned())
}
