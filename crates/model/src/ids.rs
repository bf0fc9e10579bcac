use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ModelError;

/// A validated string identifier. `allowed` decides which bytes may appear; length is 1..=max.
macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $field:literal, $max:expr, $allowed:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn new(s: impl Into<String>) -> Result<Self, ModelError> {
                let s = s.into();
                let allowed: fn(u8) -> bool = $allowed;
                if s.is_empty() {
                    return Err(ModelError::invalid($field, "must not be empty", s));
                }
                if s.len() > $max {
                    return Err(ModelError::invalid($field, concat!("longer than ", stringify!($max), " bytes"), s));
                }
                if !s.bytes().all(allowed) {
                    return Err(ModelError::invalid($field, "contains a character that is not allowed", s));
                }
                Ok($name(s))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl TryFrom<String> for $name {
            type Error = ModelError;
            fn try_from(s: String) -> Result<Self, ModelError> {
                $name::new(s)
            }
        }
        impl TryFrom<&str> for $name {
            type Error = ModelError;
            fn try_from(s: &str) -> Result<Self, ModelError> {
                $name::new(s)
            }
        }
        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

fn id_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':' | b'@')
}

string_id!(
    /// A trading account (`test_account`). Letters, digits and `_ - . : @`.
    AccountId, "account", 64, id_byte
);
string_id!(
    /// The client's own id for an order, unique per account; makes order entry idempotent.
    ClientOrderId, "client_order_id", 64, |b| b.is_ascii_graphic()
);
string_id!(
    /// An instrument's name as its venue spells it (`BTCUSDT`, `BTC-USD`, `XBT/USD`).
    Symbol, "symbol", 48, |b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'/' | b'.' | b':')
);
string_id!(
    /// Where an instrument trades: `binance`, `binance-futures`, `coinbase`, `kraken`, `bybit`,
    /// `okx`, or `sim` for the built-in synthetic market.
    Venue, "venue", 32, |b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
);

/// An instrument: a symbol on a venue.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct InstrumentId {
    pub venue: Venue,
    pub symbol: Symbol,
}

impl InstrumentId {
    pub fn new(venue: Venue, symbol: Symbol) -> Self {
        InstrumentId { venue, symbol }
    }
}

impl fmt::Display for InstrumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.symbol, self.venue)
    }
}

/// The platform's id for an order, assigned by the OMS in journal order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrderId(pub u64);

/// The platform's id for a fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FillId(pub u64);

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
impl fmt::Display for FillId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_reject_empty_long_and_odd_characters() {
        assert!(AccountId::new("test_account").is_ok());
        assert_eq!(AccountId::new("").unwrap_err().field(), "account");
        assert!(AccountId::new("a b").is_err());
        assert!(AccountId::new("x".repeat(65)).is_err());
        assert!(Symbol::new("XBT/USD").is_ok());
        assert!(Symbol::new("BTC USD").is_err());
        assert!(Venue::new("Binance").is_err());
        assert!(serde_json::from_str::<AccountId>("\"\"").is_err());
        assert!(serde_json::from_str::<Symbol>("\"BTCUSDT\"").is_ok());
    }
}
