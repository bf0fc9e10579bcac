use std::fmt;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ModelError;

/// A UTC instant with nanosecond resolution, stored as nanoseconds since the Unix epoch.
///
/// An `i64` of nanoseconds covers 1677..2262, is `Copy`, orders and subtracts cheaply on the hot
/// path; it serializes as RFC 3339 with nine fractional digits (`2024-01-02T03:04:05.000000006Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const fn from_nanos(nanos: i64) -> Self {
        Timestamp(nanos)
    }
    pub const fn from_micros(micros: i64) -> Self {
        Timestamp(micros.saturating_mul(1_000))
    }
    pub const fn from_millis(millis: i64) -> Self {
        Timestamp(millis.saturating_mul(1_000_000))
    }
    pub const fn from_secs(secs: i64) -> Self {
        Timestamp(secs.saturating_mul(1_000_000_000))
    }
    /// Seconds with a fractional part, as some exchanges send them (`"1618660000.123456"`).
    /// Parsed digit by digit so no precision is lost through f64.
    pub fn parse_decimal_secs(s: &str) -> Result<Self, ModelError> {
        let bad = || ModelError::invalid("timestamp", "expected decimal seconds", s);
        let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
        let secs: i64 = whole.parse().map_err(|_| bad())?;
        if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let mut nanos: i64 = 0;
        for (i, b) in frac.bytes().enumerate() {
            nanos += i64::from(b - b'0') * 10i64.pow(8 - i as u32);
        }
        // "-1.5" is one and a half seconds before the epoch: the fraction carries the sign.
        let nanos = if whole.starts_with('-') {
            -nanos
        } else {
            nanos
        };
        secs.checked_mul(1_000_000_000)
            .and_then(|n| n.checked_add(nanos))
            .map(Timestamp)
            .ok_or_else(bad)
    }
    pub fn now() -> Self {
        Timestamp(Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX))
    }
    pub const fn as_nanos(self) -> i64 {
        self.0
    }
    pub const fn as_millis(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }
    pub fn to_datetime(self) -> DateTime<Utc> {
        Utc.timestamp_nanos(self.0)
    }
    pub fn parse_rfc3339(s: &str) -> Result<Self, ModelError> {
        let dt = DateTime::parse_from_rfc3339(s)
            .map_err(|_| ModelError::invalid("timestamp", "expected RFC 3339 / ISO-8601", s))?;
        dt.timestamp_nanos_opt()
            .map(Timestamp)
            .ok_or_else(|| ModelError::invalid("timestamp", "out of range", s))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            &self
                .to_datetime()
                .to_rfc3339_opts(SecondsFormat::Nanos, true),
        )
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Timestamp::parse_rfc3339(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trip_keeps_nanoseconds() {
        let t = Timestamp::from_nanos(1_700_000_000_123_456_789);
        let s = serde_json::to_string(&t).unwrap();
        assert_eq!(s, "\"2023-11-14T22:13:20.123456789Z\"");
        assert_eq!(serde_json::from_str::<Timestamp>(&s).unwrap(), t);
    }

    #[test]
    fn decimal_seconds_parse_exactly() {
        let t = Timestamp::parse_decimal_secs("1618660000.123456").unwrap();
        assert_eq!(t.as_nanos(), 1_618_660_000_123_456_000);
        assert!(Timestamp::parse_decimal_secs("1.2x").is_err());
        assert_eq!(
            Timestamp::parse_decimal_secs("-1.5").unwrap().as_nanos(),
            -1_500_000_000
        );
        assert!(Timestamp::parse_decimal_secs("1.1234567891").is_err());
        assert!(
            Timestamp::parse_decimal_secs("9223372036.999999999").is_err(),
            "overflow is an error, not a panic"
        );
    }

    #[test]
    fn offsets_are_normalized_to_utc() {
        let t = Timestamp::parse_rfc3339("2024-01-01T01:00:00+01:00").unwrap();
        assert_eq!(t.to_string(), "2024-01-01T00:00:00.000000000Z");
    }
}
