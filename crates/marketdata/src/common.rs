//! Building blocks shared by the exchange parsers: exact numbers borrowed from the message
//! text, book levels, and the [`Emit`] sink that turns parsed values into [`Event`]s.

use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

use model::{
    BookDelta, BookLevel, BookSnapshot, Decimal, Event, InstrumentId, Price, Quantity, Symbol,
    Timestamp, Venue,
};
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::error::{Fail, Res};

/// A number as the venue wrote it, either a JSON string (`"45000.10"`) or a JSON number
/// (`45000.1`). Borrowed from the message text, so nothing goes through f64: `0.1` stays `0.1`
/// and 20-digit quantities keep every digit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Num<'a>(pub(crate) &'a str);

impl<'de: 'a, 'a> Deserialize<'de> for Num<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <&'a RawValue>::deserialize(d)?;
        let text = raw.get();
        match text.as_bytes().first() {
            Some(b'"') => {
                let inner = &text[1..text.len().saturating_sub(1).max(1)];
                if inner.contains('\\') {
                    // Numbers never need escapes; refusing them keeps this zero-copy.
                    return Err(de::Error::custom("escaped characters in a number string"));
                }
                Ok(Num(inner))
            }
            Some(b'-' | b'0'..=b'9') => Ok(Num(text)),
            _ => Err(de::Error::invalid_type(
                de::Unexpected::Other(text),
                &"a number or a numeric string",
            )),
        }
    }
}

impl<'a> Num<'a> {
    pub(crate) fn as_str(self) -> &'a str {
        self.0
    }
    pub(crate) fn price(self) -> Res<Price> {
        Ok(Price::parse(self.0)?)
    }
    pub(crate) fn qty(self) -> Res<Quantity> {
        Ok(Quantity::parse(self.0)?)
    }
    /// A signed decimal (funding rates may be negative).
    pub(crate) fn decimal(self) -> Res<Decimal> {
        Decimal::from_str(self.0)
            .or_else(|_| Decimal::from_scientific(self.0))
            .map_err(|_| Fail(format!("not a decimal number: {:?}", self.0)))
    }
    pub(crate) fn i64(self) -> Res<i64> {
        self.0
            .parse()
            .map_err(|_| Fail(format!("not an integer: {:?}", self.0)))
    }
    pub(crate) fn u64(self) -> Res<u64> {
        self.0
            .parse()
            .map_err(|_| Fail(format!("not an unsigned integer: {:?}", self.0)))
    }
    pub(crate) fn millis(self) -> Res<Timestamp> {
        Ok(Timestamp::from_millis(self.i64()?))
    }
    /// Seconds with an optional fraction (`"1618678142.557535"` or `1762795433.9717445`).
    pub(crate) fn secs(self) -> Res<Timestamp> {
        decimal_secs(self.0).ok_or_else(|| Fail(format!("not a time in seconds: {:?}", self.0)))
    }
}

/// Decimal seconds (`"1618678142.557535"`) as a timestamp, `None` when malformed or outside
/// the `i64` nanosecond range. The range check comes first because
/// `Timestamp::parse_decimal_secs` adds the fraction without an overflow check.
pub(crate) fn decimal_secs(s: &str) -> Option<Timestamp> {
    let whole: i64 = s.split('.').next()?.parse().ok()?;
    if !(-9_223_372_035..=9_223_372_035).contains(&whole) {
        return None;
    }
    Timestamp::parse_decimal_secs(s).ok()
}

/// Distance between two bar starts, scaled to milliseconds, without overflow.
pub(crate) fn spacing(a: i64, b: i64, to_ms: i64) -> i64 {
    a.saturating_sub(b).saturating_abs().saturating_mul(to_ms)
}

/// `None` for a missing or empty (`""`) field: venues send `""` for "no value".
pub(crate) fn nonempty(n: Option<Num<'_>>) -> Option<Num<'_>> {
    n.filter(|n| !n.as_str().is_empty())
}

/// `[price, quantity, ...]`: the first two entries of a level array; later entries (order
/// counts, timestamps, flags) are ignored.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Level<'a> {
    pub(crate) price: Num<'a>,
    pub(crate) qty: Num<'a>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Level<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Level<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a [price, quantity, ...] array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Level<'a>, A::Error> {
                let price = next(&mut seq, 0, &self)?;
                let qty = next(&mut seq, 1, &self)?;
                drain(&mut seq)?;
                Ok(Level { price, qty })
            }
        }
        d.deserialize_seq(V(PhantomData))
    }
}

impl Level<'_> {
    pub(crate) fn book(self) -> Res<BookLevel> {
        Ok(BookLevel {
            price: self.price.price()?,
            quantity: self.qty.qty()?,
        })
    }
}

/// The next element of a row array, or an "invalid length" error naming the position.
pub(crate) fn next<'de, T: Deserialize<'de>, A: SeqAccess<'de>>(
    seq: &mut A,
    index: usize,
    exp: &dyn de::Expected,
) -> Result<T, A::Error> {
    seq.next_element()?
        .ok_or_else(|| de::Error::invalid_length(index, exp))
}

/// Skips the remaining elements of a row array (venues append columns over time).
pub(crate) fn drain<'de, A: SeqAccess<'de>>(seq: &mut A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

pub(crate) fn levels(v: &[Level<'_>]) -> Res<Vec<BookLevel>> {
    v.iter().map(|l| l.book()).collect()
}

/// Whether a parsed message carried market data or was a control message (ack, heartbeat,
/// pong, status) that is deliberately skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    Data,
    Control,
}

/// Where parsers put their events, plus what they need besides the message: the venue,
/// the receive time (used when a message has no exchange time) and hints for REST bodies
/// that do not name their symbol or bar interval.
pub(crate) struct Emit<'c, 'o> {
    pub(crate) venue: Venue,
    pub(crate) recv_ts: Timestamp,
    pub(crate) symbol_hint: Option<&'c str>,
    pub(crate) interval_hint: Option<&'c str>,
    pub(crate) out: &'o mut Vec<Event>,
}

impl Emit<'_, '_> {
    /// The venue's native symbol, uppercased (`btcusdt` -> `BTCUSDT`).
    pub(crate) fn instrument(&self, symbol: &str) -> Res<InstrumentId> {
        Ok(InstrumentId::new(
            self.venue.clone(),
            Symbol::new(symbol.to_ascii_uppercase())?,
        ))
    }

    /// For bodies that may lack a symbol (REST responses): the message's own symbol, else the
    /// caller's hint (from the request URL of a recording, or the CLI).
    pub(crate) fn instrument_or_hint(&self, symbol: Option<&str>) -> Res<InstrumentId> {
        match symbol.or(self.symbol_hint) {
            Some(s) => self.instrument(s),
            None => Err(Fail(
                "the message does not name its symbol; pass a symbol hint (e.g. --symbol BTCUSDT)"
                    .into(),
            )),
        }
    }

    /// The bar interval: the caller's hint, else derived from the spacing of two bar starts.
    pub(crate) fn interval(&self, spacing_ms: Option<i64>) -> Res<String> {
        if let Some(h) = self.interval_hint {
            return Ok(h.to_owned());
        }
        match spacing_ms {
            Some(ms) if ms > 0 => Ok(interval_name(ms)),
            _ => Err(Fail(
                "cannot tell the bar interval from a single candle; pass an interval hint".into(),
            )),
        }
    }

    pub(crate) fn push(&mut self, e: Event) {
        self.out.push(e);
    }

    /// Pushes a snapshot with bids best (highest) first and asks best (lowest) first, as
    /// [`BookSnapshot`] promises; some venues (Bybit legacy) send bids ascending.
    pub(crate) fn snapshot(
        &mut self,
        instrument: InstrumentId,
        mut bids: Vec<BookLevel>,
        mut asks: Vec<BookLevel>,
        sequence: Option<u64>,
        ts: Timestamp,
    ) {
        bids.sort_by_key(|l| std::cmp::Reverse(l.price));
        asks.sort_by_key(|l| l.price);
        self.out.push(Event::BookSnapshot(BookSnapshot {
            instrument,
            bids,
            asks,
            sequence,
            ts,
        }));
    }

    pub(crate) fn delta(
        &mut self,
        instrument: InstrumentId,
        bids: Vec<BookLevel>,
        asks: Vec<BookLevel>,
        first_sequence: Option<u64>,
        sequence: Option<u64>,
        ts: Timestamp,
    ) {
        self.out.push(Event::BookDelta(BookDelta {
            instrument,
            bids,
            asks,
            first_sequence,
            sequence,
            ts,
        }));
    }

    /// REST lists come newest first on some venues (Coinbase, OKX); downstream consumers
    /// want time order, so the events pushed since `from` are reversed when they run backwards.
    pub(crate) fn chronological_since(&mut self, from: usize) {
        let tail = &mut self.out[from..];
        if let (Some(first), Some(last)) = (tail.first(), tail.last())
            && first.ts() > last.ts()
        {
            tail.reverse();
        }
    }
}

/// `60000` -> `1m`, `3600000` -> `1h`, `86400000` -> `1d`, `604800000` -> `1w`.
pub(crate) fn interval_name(ms: i64) -> String {
    const UNITS: [(i64, &str); 5] = [
        (604_800_000, "w"),
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1_000, "s"),
    ];
    for (unit, name) in UNITS {
        if ms % unit == 0 {
            return format!("{}{name}", ms / unit);
        }
    }
    format!("{ms}ms")
}

/// Milliseconds of a venue interval name such as `1m`, `4h`, `1D`, `1W`, `1M`(month -> None).
pub(crate) fn interval_millis(name: &str) -> Option<i64> {
    let split = name.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = name.split_at(split);
    let n: i64 = n.parse().ok()?;
    let unit_ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" | "H" => 3_600_000,
        "d" | "D" | "Dutc" => 86_400_000,
        "w" | "W" | "Wutc" => 604_800_000,
        _ => return None,
    };
    n.checked_mul(unit_ms)
}

/// The name of the first key of a JSON object text (`{"stream":...` -> `stream`), found
/// without parsing; used to pick the right typed struct in one pass.
pub(crate) fn first_key(t: &str) -> Option<&str> {
    let rest = t.strip_prefix('{')?.trim_start().strip_prefix('"')?;
    let end = memchr::memchr(b'"', rest.as_bytes())?;
    Some(&rest[..end])
}

/// The string value of the first `"<key>":"<value>"` pair in the text, found by a byte
/// search. Only a hint to choose a typed struct: the typed parse validates the message.
pub(crate) fn string_field<'t>(t: &'t str, needle: &str) -> Option<&'t str> {
    let at = memchr::memmem::find(t.as_bytes(), needle.as_bytes())? + needle.len();
    let rest = &t[at..];
    let end = memchr::memchr(b'"', rest.as_bytes())?;
    Some(&rest[..end])
}

pub(crate) fn from_str<'a, T: Deserialize<'a>>(t: &'a str) -> Res<T> {
    Ok(serde_json::from_str(t)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_their_text() {
        let v: Vec<Num> =
            serde_json::from_str(r#"["0.10", 2.63, 1e-8, -3, "123456789.123456789012"]"#).unwrap();
        assert_eq!(v[0].as_str(), "0.10");
        assert_eq!(v[1].qty().unwrap().to_string(), "2.63");
        assert_eq!(v[2].price().unwrap().to_string(), "0.00000001");
        assert_eq!(v[3].i64().unwrap(), -3);
        assert_eq!(v[4].qty().unwrap().to_string(), "123456789.123456789012");
        assert!(serde_json::from_str::<Num>("null").is_err());
        assert!(serde_json::from_str::<Num>("{}").is_err());
        assert!(serde_json::from_str::<Num>(r#""1\u0030""#).is_err());
        assert!(
            serde_json::from_str::<Num>(r#""""#)
                .unwrap()
                .price()
                .is_err()
        );
    }

    #[test]
    fn levels_take_the_first_two_entries() {
        let v: Vec<Level> = serde_json::from_str(r#"[["1.5","2","0","1"],["3",4]]"#).unwrap();
        assert_eq!(v[0].book().unwrap().price.to_string(), "1.5");
        assert_eq!(v[1].book().unwrap().quantity.to_string(), "4");
        assert!(serde_json::from_str::<Vec<Level>>(r#"[["1"]]"#).is_err());
    }

    #[test]
    fn interval_names_round_trip() {
        assert_eq!(interval_name(60_000), "1m");
        assert_eq!(interval_name(3_600_000), "1h");
        assert_eq!(interval_name(86_400_000), "1d");
        assert_eq!(interval_name(300_000), "5m");
        assert_eq!(interval_name(1_500), "1500ms");
        assert_eq!(interval_millis("15m"), Some(900_000));
        assert_eq!(interval_millis("1H"), Some(3_600_000));
        assert_eq!(interval_millis("1M"), None);
        assert_eq!(interval_millis("m"), None);
    }

    #[test]
    fn key_peeking() {
        assert_eq!(first_key(r#"{ "stream":"x","data":{}}"#), Some("stream"));
        assert_eq!(first_key("[1]"), None);
        assert_eq!(
            string_field(r#"{"a":1,"e":"trade"}"#, r#""e":""#),
            Some("trade")
        );
        assert_eq!(string_field(r#"{"e":"#, r#""e":""#), None);
    }
}
