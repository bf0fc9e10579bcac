use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ModelError;

/// Largest magnitude accepted for a price or quantity. Far above any real instrument, low enough
/// that notional = price x quantity (and sums of millions of those) cannot overflow a `Decimal`.
fn max_abs() -> Decimal {
    Decimal::new(1_000_000_000_000_000, 0)
}

/// Deserialize a decimal from a JSON string (`"45000.1"`) or number (`45000.1`).
///
/// Numbers go through the shortest round-trip text of the f64 (what rust_decimal does), so
/// `0.1` stays exactly `0.1`. Non-finite values are rejected.
fn decimal_from_any<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
    <Decimal as Deserialize>::deserialize(d)
}

macro_rules! decimal_newtype {
    ($(#[$doc:meta])* $name:ident, $field:literal, $check:expr, $why:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(Decimal);

        impl $name {
            pub fn new(d: Decimal) -> Result<Self, ModelError> {
                let check: fn(Decimal) -> bool = $check;
                if d.abs() > max_abs() {
                    return Err(ModelError::invalid($field, "magnitude too large", d));
                }
                if !check(d) {
                    return Err(ModelError::invalid($field, $why, d));
                }
                Ok($name(d.normalize()))
            }
            pub fn parse(s: &str) -> Result<Self, ModelError> {
                let d = Decimal::from_str(s)
                    .or_else(|_| Decimal::from_scientific(s))
                    .map_err(|_| ModelError::invalid($field, "not a decimal number", s))?;
                $name::new(d)
            }
            pub const fn get(self) -> Decimal {
                self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
        impl FromStr for $name {
            type Err = ModelError;
            fn from_str(s: &str) -> Result<Self, ModelError> {
                $name::parse(s)
            }
        }
        impl TryFrom<Decimal> for $name {
            type Error = ModelError;
            fn try_from(d: Decimal) -> Result<Self, ModelError> {
                $name::new(d)
            }
        }
        impl From<$name> for Decimal {
            fn from(v: $name) -> Decimal {
                v.0
            }
        }
        /// Serialized as a JSON string so no reader loses precision through f64.
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(&self.0)
            }
        }
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let v = decimal_from_any(d)?;
                $name::new(v).map_err(serde::de::Error::custom)
            }
        }
    };
}

decimal_newtype!(
    /// A price: strictly positive, exact. Negative-priced instruments are out of scope.
    Price, "price", |d| d > Decimal::ZERO, "must be greater than zero"
);
decimal_newtype!(
    /// A quantity: zero or positive, exact. Orders additionally require it to be positive.
    Quantity, "quantity", |d| d >= Decimal::ZERO, "must not be negative"
);
decimal_newtype!(
    /// A signed amount of cash (P&L, fees, notional), exact.
    Money, "money", |_| true, ""
);

impl Quantity {
    pub const ZERO: Quantity = Quantity(Decimal::ZERO);
    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }
}

impl Money {
    pub const ZERO: Money = Money(Decimal::ZERO);
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn prices_must_be_positive_and_quantities_not_negative() {
        assert!(Price::new(dec!(0)).is_err());
        assert!(Price::new(dec!(-1)).is_err());
        assert_eq!(Price::parse("45000.10").unwrap().get(), dec!(45000.1));
        assert!(Quantity::new(dec!(-0.1)).is_err());
        assert!(Quantity::new(dec!(0)).is_ok());
        assert!(Quantity::parse("1e100").is_err());
        assert!(Price::parse("NaN").is_err());
        assert!(Price::parse("abc").is_err());
    }

    #[test]
    fn json_numbers_and_strings_are_kept_exact() {
        let p: Price = serde_json::from_str("45000.0").unwrap();
        assert_eq!(p.get(), dec!(45000));
        let q: Quantity = serde_json::from_str("0.1").unwrap();
        assert_eq!(q.get(), dec!(0.1));
        let q: Quantity = serde_json::from_str("\"0.30000000000000004\"").unwrap();
        assert_eq!(q.to_string(), "0.30000000000000004");
        assert_eq!(
            serde_json::to_string(&q).unwrap(),
            "\"0.30000000000000004\""
        );
        assert!(serde_json::from_str::<Quantity>("-1").is_err());
        assert!(serde_json::from_str::<Price>("\"NaN\"").is_err());
        assert!(serde_json::from_str::<Price>("1e400").is_err());
    }
}
