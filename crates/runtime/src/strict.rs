//! JSON bodies read strictly: a struct is read from a JSON object only.
//!
//! serde's derived structs also take a JSON array of their fields in order, so `[]` or
//! `[null, null]` would pass for a request whose every field is optional, and an array would
//! pass where the documented body (and the OpenAPI document) says object. [`Strict`] reads a
//! parsed [`Value`] like `serde_json` does, except that a struct meets only objects, at every
//! depth, and that an integer may be written with a zero fraction (`5.0`), which JSON Schema
//! (and so the OpenAPI documents) counts as an integer, at every depth too (inside internally
//! tagged enums, whose contents serde buffers, as well).

use serde::de::{
    self, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};
use serde::forward_to_deserialize_any;
use serde_json::{Error, Value};

/// A parsed JSON value as a strict deserializer.
pub struct Strict(Value);

impl Strict {
    pub fn new(mut value: Value) -> Strict {
        integral(&mut value);
        Strict(value)
    }
}

/// Numbers with no fractional part become integers (`5.0` reads as `5`), as JSON Schema's
/// `integer` counts them, so an integer field takes them however they are written. Decimal and
/// float fields read the same value either way.
fn integral(v: &mut Value) {
    match v {
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            // Below 2^63 (2^64) in magnitude an f64 with no fraction is an exact i64 (u64).
            if f.fract() == 0.0 && f.abs() < 9.223_372_036_854_776e18 {
                *v = Value::from(f as i64);
            } else if f.fract() == 0.0 && (0.0..1.844_674_407_370_955_2e19).contains(&f) {
                *v = Value::from(f as u64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral),
        Value::Object(map) => map.values_mut().for_each(integral),
        _ => {}
    }
}

impl<'de> Deserializer<'de> for Strict {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Array(items) => visitor.visit_seq(Items(items.into_iter())),
            Value::Object(map) => visitor.visit_map(Entries {
                entries: map.into_iter(),
                value: None,
            }),
            scalar => scalar.deserialize_any(visitor),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.0 {
            Value::Object(_) => self.deserialize_any(visitor),
            other => Err(de::Error::invalid_type(
                unexpected(&other),
                &"a JSON object",
            )),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        // Externally tagged enums (a string, or an object of one key) are read as serde_json
        // reads them; internally tagged ones go through `deserialize_any` and stay strict.
        self.0.deserialize_enum(name, variants, visitor)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct seq tuple tuple_struct map identifier ignored_any
    }
}

fn unexpected(v: &Value) -> de::Unexpected<'_> {
    match v {
        Value::Null => de::Unexpected::Unit,
        Value::Bool(b) => de::Unexpected::Bool(*b),
        Value::Number(_) => de::Unexpected::Other("a number"),
        Value::String(s) => de::Unexpected::Str(s),
        Value::Array(_) => de::Unexpected::Seq,
        Value::Object(_) => de::Unexpected::Map,
    }
}

struct Items(std::vec::IntoIter<Value>);

impl<'de> SeqAccess<'de> for Items {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        self.0
            .next()
            .map(|v| seed.deserialize(Strict(v)))
            .transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct Entries {
    entries: serde_json::map::IntoIter,
    value: Option<Value>,
}

impl<'de> MapAccess<'de> for Entries {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        match self.entries.next() {
            Some((k, v)) => {
                self.value = Some(v);
                let key: de::value::StringDeserializer<Error> = k.into_deserializer();
                seed.deserialize(key).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let v = self
            .value
            .take()
            .ok_or_else(|| <Error as de::Error>::custom("a map value was read before its key"))?;
        seed.deserialize(Strict(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::collections::BTreeMap;

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct Inner {
        a: Option<u32>,
        b: Option<String>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        inner: Inner,
        #[serde(default)]
        rows: Vec<Inner>,
        #[serde(default)]
        by_name: BTreeMap<String, Inner>,
        n: Option<f64>,
    }

    fn strict<T: for<'de> Deserialize<'de>>(json: &str) -> Result<T, Error> {
        T::deserialize(Strict::new(serde_json::from_str(json).unwrap()))
    }

    #[test]
    fn structs_take_objects_only_at_every_depth() {
        let ok: Outer =
            strict(r#"{"inner":{"a":1},"rows":[{"b":"x"}],"by_name":{"k":{}},"n":1.5}"#).unwrap();
        assert_eq!(ok.inner.a, Some(1));
        assert_eq!(ok.rows[0].b.as_deref(), Some("x"));
        assert_eq!(ok.n, Some(1.5));
        // serde_json itself takes these; the strict reader does not.
        for json in [
            r#"{"inner":[1, "x"]}"#,
            r#"{"inner":{},"rows":[[null]]}"#,
            r#"{"inner":{},"by_name":{"k":[]}}"#,
        ] {
            assert!(serde_json::from_str::<Outer>(json).is_ok(), "{json}");
            assert!(strict::<Outer>(json).is_err(), "{json}");
        }
        assert!(strict::<Inner>("[]").is_err());
        // Integers however written; fractions and out-of-range values are refused.
        assert_eq!(strict::<Inner>(r#"{"a":5.0}"#).unwrap().a, Some(5));
        assert_eq!(
            strict::<Inner>(r#"{"a":4294967295.0}"#).unwrap().a,
            Some(u32::MAX)
        );
        for bad in [
            r#"{"a":5.5}"#,
            r#"{"a":-1.0}"#,
            r#"{"a":4294967296.0}"#,
            r#"{"a":1e300}"#,
        ] {
            assert!(strict::<Inner>(bad).is_err(), "{bad}");
        }
        assert_eq!(
            strict::<u64>("18446744073709549568.0").unwrap(),
            18446744073709549568
        );
        #[derive(Debug, Deserialize, PartialEq)]
        #[serde(tag = "op", rename_all = "snake_case")]
        enum Tagged {
            Set { n: u32 },
        }
        assert_eq!(
            strict::<Tagged>(r#"{"op":"set","n":7.0}"#).unwrap(),
            Tagged::Set { n: 7 }
        );
        assert!(strict::<Inner>("null").is_err());
        let e = strict::<Outer>(r#"{"inner":{},"x":1}"#).unwrap_err();
        assert!(e.to_string().starts_with("unknown field `x`"), "{e}");
        let e = strict::<Outer>(r#"{"rows":[]}"#).unwrap_err();
        assert!(e.to_string().starts_with("missing field `inner`"), "{e}");
    }
}
