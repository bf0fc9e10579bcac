//! Errors of this crate: [`ParseError`] for one message, [`NormalizeError`] for a whole input.

use thiserror::Error;

/// How many characters of an offending message an error keeps: enough to recognize the message,
/// short enough for a log line.
pub const SNIPPET_CHARS: usize = 120;

/// One message could not be turned into events: it is malformed, of an unknown kind, carries
/// an invalid value (e.g. a negative size), or is an error reply from the venue.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{exchange}: {reason} (message: {snippet})")]
pub struct ParseError {
    /// The exchange name as used on the CLI (`binance`, `okx`, ...).
    pub exchange: &'static str,
    pub reason: String,
    /// The first [`SNIPPET_CHARS`] characters of the message.
    pub snippet: String,
}

impl ParseError {
    pub fn new(exchange: &'static str, reason: impl Into<String>, message: &str) -> Self {
        ParseError {
            exchange,
            reason: reason.into(),
            snippet: snippet(message),
        }
    }
}

/// The first [`SNIPPET_CHARS`] characters of `s` (cut on a char boundary, never panics).
pub fn snippet(s: &str) -> String {
    let s = s.trim();
    match s.char_indices().nth(SNIPPET_CHARS) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_owned(),
    }
}

/// Why [`crate::normalize`] stopped. Line numbers are 1-based lines of the input (of the zip
/// entry named in `entry` for zipped input).
#[derive(Debug, Error)]
pub enum NormalizeError {
    #[error("reading input: {0}")]
    Read(#[source] std::io::Error),
    #[error("writing output: {0}")]
    Write(#[source] std::io::Error),
    #[error("{}line {line}: {source}", entry_prefix(.entry))]
    Parse {
        line: usize,
        entry: Option<String>,
        #[source]
        source: ParseError,
    },
    /// The input itself (not a message) is broken: a bad recording line, bad CSV row, bad zip.
    #[error("{}line {line}: {reason} (input: {snippet})", entry_prefix(.entry))]
    Input {
        line: usize,
        entry: Option<String>,
        reason: String,
        snippet: String,
    },
    /// A zip entry unpacks to more than [`crate::input::ZipLimits`] allows (a zip bomb, or a
    /// genuine archive larger than the limit).
    #[error(
        "zip entry {entry:?} unpacks to more than {limit} bytes, the {scope} limit on unpacked zip data"
    )]
    ZipLimit {
        entry: String,
        limit: u64,
        /// `per-entry` or `total`.
        scope: &'static str,
    },
}

fn entry_prefix(entry: &Option<String>) -> String {
    match entry {
        Some(e) => format!("{e}: "),
        None => String::new(),
    }
}

/// `Exchange::from_str` failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "unknown exchange {0:?}; valid names: binance, binance-futures, coinbase, kraken, bybit, okx"
)]
pub struct UnknownExchange(pub String);

/// Internal failure reason; the entry points add the exchange name and the message snippet.
#[derive(Debug)]
pub(crate) struct Fail(pub(crate) String);

impl From<serde_json::Error> for Fail {
    fn from(e: serde_json::Error) -> Self {
        Fail(format!("malformed JSON: {e}"))
    }
}

impl From<model::ModelError> for Fail {
    fn from(e: model::ModelError) -> Self {
        Fail(format!("invalid value: {e}"))
    }
}

impl From<&str> for Fail {
    fn from(s: &str) -> Self {
        Fail(s.to_owned())
    }
}

impl From<String> for Fail {
    fn from(s: String) -> Self {
        Fail(s)
    }
}

pub(crate) type Res<T> = Result<T, Fail>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippet_cuts_on_char_boundaries() {
        let long = "é".repeat(200);
        let s = snippet(&long);
        assert_eq!(s.chars().count(), SNIPPET_CHARS + 3);
        assert!(s.ends_with("..."));
        assert_eq!(snippet("  {\"a\":1}\n"), "{\"a\":1}");
    }
}
