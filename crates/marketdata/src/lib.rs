//! Exchange market-data parsers: raw venue messages in, normalized [`model::Event`]s out.
//!
//! * [`parse`] / [`parse_with`] / [`parse_into`]: one message (a WebSocket frame or a REST
//!   body) of a given [`Exchange`] to zero or more events. Control messages (subscription
//!   acks, heartbeats, pongs, status) give no events and [`MessageKind::Control`]; anything
//!   unknown or malformed is a [`ParseError`], never a panic.
//! * [`normalize`] / [`normalize_with`]: a whole input (NDJSON, one JSON document, a
//!   cryptofeed recording, a Binance `T_DEPTH` CSV, or a zip of those), detected by
//!   [`input::detect_format`], written as one JSON event per line.
//!
//! Parsers are stateless: book messages become [`model::BookSnapshot`] or
//! [`model::BookDelta`] as the venue sent them. The one stateful piece is
//! [`checksum::BookVerifier`], which keeps Kraken and OKX books as sent to check the venues'
//! book checksums (used by `normalize` and by the live feeds).
//!
//! Layout follows barter-rs / nautilus: one folder per exchange (`binance/`, `coinbase/`,
//! `kraken/`, `bybit/`, `okx/`), each with `mod.rs` (dispatch and conversion to events) and
//! `messages.rs` (borrowed serde wire types).

pub mod binance;
pub mod bybit;
pub mod checksum;
pub mod coinbase;
mod common;
pub mod error;
pub mod input;
pub mod kraken;
pub mod okx;

use std::fmt;
use std::str::FromStr;

use model::{Event, Timestamp, Venue};

pub use checksum::{BookVerifier, Mismatch, MismatchKind, Verdict};
pub use common::MessageKind;
pub use error::{NormalizeError, ParseError, UnknownExchange};
pub use input::{
    InputFormat, NormalizeOptions, NormalizeStats, Position, ZipLimits, detect_format, normalize,
    normalize_bytes, normalize_with, scan,
};

/// The venues this crate parses. The CLI names (`binance`, `binance-futures`, `coinbase`,
/// `kraken`, `bybit`, `okx`) are also the [`Venue`] ids of the events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Exchange {
    /// Binance spot.
    Binance,
    /// Binance USD-M futures.
    BinanceFutures,
    /// Coinbase Exchange (ex Pro) and Coinbase Advanced Trade.
    Coinbase,
    /// Kraken spot, WebSocket v1 and v2 and REST.
    Kraken,
    /// Bybit v5 and the legacy (pre-v5) public WebSocket.
    Bybit,
    /// OKX v5.
    Okx,
}

impl Exchange {
    pub const ALL: [Exchange; 6] = [
        Exchange::Binance,
        Exchange::BinanceFutures,
        Exchange::Coinbase,
        Exchange::Kraken,
        Exchange::Bybit,
        Exchange::Okx,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Exchange::Binance => "binance",
            Exchange::BinanceFutures => "binance-futures",
            Exchange::Coinbase => "coinbase",
            Exchange::Kraken => "kraken",
            Exchange::Bybit => "bybit",
            Exchange::Okx => "okx",
        }
    }

    /// The venue id of this exchange's events.
    pub fn venue(self) -> Venue {
        // Validated once per exchange; later calls only clone (this runs for every message).
        static VENUES: [std::sync::OnceLock<Venue>; 6] = [const { std::sync::OnceLock::new() }; 6];
        VENUES[self as usize]
            .get_or_init(|| {
                // The names are lowercase letters and '-', which Venue accepts.
                Venue::new(self.as_str())
                    .unwrap_or_else(|_| unreachable!("static venue names are valid"))
            })
            .clone()
    }
}

impl fmt::Display for Exchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Exchange {
    type Err = UnknownExchange;
    /// Accepts the CLI names, case-insensitively.
    fn from_str(s: &str) -> Result<Self, UnknownExchange> {
        let lower = s.trim().to_ascii_lowercase();
        Exchange::ALL
            .into_iter()
            .find(|e| e.as_str() == lower)
            .ok_or_else(|| UnknownExchange(s.to_owned()))
    }
}

/// What a parser needs besides the message text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageContext<'a> {
    /// When the message was received; used as event time when the message has none
    /// (Binance spot bookTicker, Coinbase snapshot, Kraken ticker, REST bodies).
    pub recv_ts: Timestamp,
    /// Symbol for REST bodies that do not name one (Binance trades/klines/depth, OKX and
    /// Coinbase candles). A symbol in the message always wins.
    pub symbol: Option<&'a str>,
    /// Bar interval (`1m`) for REST candle lists; by default derived from the bar spacing.
    pub interval: Option<&'a str>,
}

impl MessageContext<'_> {
    pub fn new(recv_ts: Timestamp) -> Self {
        MessageContext {
            recv_ts,
            symbol: None,
            interval: None,
        }
    }
}

/// Parses one message; the entry point for live WebSocket feeds.
///
/// `recv_ts` is the local receive time, used only when the message carries no exchange time.
pub fn parse(exchange: Exchange, msg: &str, recv_ts: Timestamp) -> Result<Vec<Event>, ParseError> {
    let mut out = Vec::new();
    parse_into(exchange, msg, &MessageContext::new(recv_ts), &mut out)?;
    Ok(out)
}

/// [`parse`] with symbol / interval hints (for REST bodies).
pub fn parse_with(
    exchange: Exchange,
    msg: &str,
    ctx: &MessageContext<'_>,
) -> Result<Vec<Event>, ParseError> {
    let mut out = Vec::new();
    parse_into(exchange, msg, ctx, &mut out)?;
    Ok(out)
}

/// Parses one message, appending its events to `out` (reuse the Vec on hot paths).
///
/// On error nothing is appended. Returns whether the message was data or a control message.
pub fn parse_into(
    exchange: Exchange,
    msg: &str,
    ctx: &MessageContext<'_>,
    out: &mut Vec<Event>,
) -> Result<MessageKind, ParseError> {
    let start = out.len();
    let mut em = common::Emit {
        venue: exchange.venue(),
        recv_ts: ctx.recv_ts,
        symbol_hint: ctx.symbol,
        interval_hint: ctx.interval,
        out,
    };
    let res = match exchange {
        Exchange::Binance | Exchange::BinanceFutures => binance::parse(msg, &mut em),
        Exchange::Coinbase => coinbase::parse(msg, &mut em),
        Exchange::Kraken => kraken::parse(msg, &mut em),
        Exchange::Bybit => bybit::parse(msg, &mut em),
        Exchange::Okx => okx::parse(msg, &mut em),
    };
    res.map_err(|f| {
        out.truncate(start);
        ParseError::new(exchange.as_str(), f.0, msg)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exchange_names_round_trip_and_unknown_names_list_the_valid_ones() {
        for e in Exchange::ALL {
            assert_eq!(e.as_str().parse::<Exchange>().unwrap(), e);
            assert_eq!(e.venue().as_str(), e.as_str());
        }
        assert_eq!("OKX".parse::<Exchange>().unwrap(), Exchange::Okx);
        let err = "ftx".parse::<Exchange>().unwrap_err().to_string();
        assert!(err.contains("\"ftx\""), "{err}");
        assert!(
            err.contains("binance-futures") && err.contains("okx"),
            "{err}"
        );
    }

    #[test]
    fn errors_carry_exchange_reason_and_snippet() {
        let msg = format!("{{\"e\":\"bogus\",\"pad\":\"{}\"}}", "x".repeat(300));
        let err = parse(Exchange::Binance, &msg, Timestamp::from_secs(1)).unwrap_err();
        assert_eq!(err.exchange, "binance");
        assert!(err.reason.contains("bogus"), "{}", err.reason);
        assert!(err.snippet.starts_with("{\"e\":\"bogus\""));
        assert!(err.snippet.chars().count() <= error::SNIPPET_CHARS + 3);
    }
}
