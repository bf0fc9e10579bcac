//! The rows the writer stores, and their pure translation into Redis hash fields and the JSON
//! document (no I/O).

use model::Timestamp;
use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::encoding::{OnlineValue, encode_timestamp, encode_value, field_name, ts_field_name};
use crate::error::FeastStoreError;

/// The latest values of one feature view for one entity.
#[derive(Debug, Clone, PartialEq)]
pub struct OnlineRow {
    /// Feature view name, e.g. `market_features`.
    pub view: String,
    /// The view's single string join key: `symbol` or `account`.
    pub join_key: String,
    /// The entity's value for that key, e.g. `BTCUSDT`.
    pub entity: String,
    pub event_ts: Timestamp,
    /// Feature name and value; features left out keep what the hash already holds.
    pub values: Vec<(String, OnlineValue)>,
}

impl OnlineRow {
    /// Rejects rows whose Redis names would be ambiguous or unreadable by Feast.
    pub fn validate(&self) -> Result<(), FeastStoreError> {
        let bad = |reason: &str| FeastStoreError::InvalidRow {
            view: self.view.clone(),
            entity: self.entity.clone(),
            reason: reason.to_string(),
        };
        if self.view.is_empty() {
            return Err(bad("empty view name"));
        }
        if self.join_key.is_empty() {
            return Err(bad("empty join key"));
        }
        // `feast:<view>:<entity>` must stay unambiguous for the JSON key.
        if self.view.contains(':') {
            return Err(bad("view name contains ':'"));
        }
        if self.values.iter().any(|(name, _)| name.is_empty()) {
            return Err(bad("empty feature name"));
        }
        Ok(())
    }

    /// The Feast hash fields of this row: `(u32le(murmur3("<view>:<feature>")), Value)` for each
    /// feature, then `("_ts:<view>", Timestamp)`.
    pub fn hash_fields(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out = Vec::with_capacity(self.values.len() + 1);
        for (name, value) in &self.values {
            let mut v = Vec::with_capacity(16);
            encode_value(value, &mut v);
            out.push((field_name(&self.view, name).to_vec(), v));
        }
        out.push((
            ts_field_name(&self.view).into_bytes(),
            encode_timestamp(self.event_ts),
        ));
        out
    }

    /// `feast:<view>:<entity>`, the key of the JSON document.
    pub fn json_key(&self) -> String {
        json_key(&self.view, &self.entity)
    }

    /// The JSON document: `{"view", "join_key", "entity", "event_ts" (RFC 3339, UTC, ns),
    /// "event_ts_nanos", "values": {feature: number | string | null}}`. The values sit under
    /// their own object so a feature called `view` cannot clash with the metadata. NaN and
    /// infinities are `null` (JSON has no such numbers; Feast stores NaN as null too).
    pub fn json_doc(&self) -> String {
        // Serialized straight from the row (no intermediate `Map`): this runs once per row on
        // the materialization hot path.
        serde_json::to_string(&JsonDoc(self)).unwrap_or_default()
    }
}

struct JsonDoc<'a>(&'a OnlineRow);
struct JsonValues<'a>(&'a [(String, OnlineValue)]);

impl Serialize for JsonDoc<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = self.0;
        let mut m = s.serialize_map(Some(6))?;
        m.serialize_entry("view", &r.view)?;
        m.serialize_entry("join_key", &r.join_key)?;
        m.serialize_entry("entity", &r.entity)?;
        m.serialize_entry("event_ts", &r.event_ts.to_string())?;
        m.serialize_entry("event_ts_nanos", &r.event_ts.as_nanos())?;
        m.serialize_entry("values", &JsonValues(&r.values))?;
        m.end()
    }
}

impl Serialize for JsonValues<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (name, value) in self.0 {
            match value {
                OnlineValue::F64(f) if f.is_finite() => m.serialize_entry(name, f)?,
                OnlineValue::F64(_) | OnlineValue::Null => m.serialize_entry(name, &())?,
                OnlineValue::I64(i) => m.serialize_entry(name, i)?,
                OnlineValue::Str(v) => m.serialize_entry(name, v)?,
            }
        }
        m.end()
    }
}

/// `feast:<view>:<entity>`, e.g. `feast:market_features:BTCUSDT`.
pub fn json_key(view: &str, entity: &str) -> String {
    format!("feast:{view}:{entity}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    /// Spec section 6: the hash Feast wrote for BTCUSDT, field by field.
    #[test]
    fn worked_example_hash() {
        let row = OnlineRow {
            view: "market_features".into(),
            join_key: "symbol".into(),
            entity: "BTCUSDT".into(),
            event_ts: Timestamp::parse_rfc3339("2026-01-02T03:04:05.678901Z").unwrap(),
            values: vec![
                ("last_price".into(), OnlineValue::F64(97123.5)),
                ("vwap_5m".into(), OnlineValue::F64(97100.25)),
                ("volume_5m".into(), OnlineValue::F64(12.5)),
                ("trade_count_5m".into(), OnlineValue::I64(345)),
                ("spread_bps".into(), OnlineValue::F64(0.75)),
            ],
        };
        row.validate().unwrap();
        let got: Vec<(String, String)> = row
            .hash_fields()
            .iter()
            .map(|(f, v)| (hex(f), hex(v)))
            .collect();
        let want = [
            ("fe6e2789", "290000000038b6f740"),
            ("8816e0da", "2900000000c4b4f740"),
            ("1bfdbc6a", "290000000000002940"),
            ("c9d9ac07", "20d902"),
            ("ca2f717d", "29000000000000e83f"),
            (
                "5f74733a6d61726b65745f6665617475726573",
                "08a5ebdcca061088eadcc302",
            ),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn json_doc_shape() {
        let row = OnlineRow {
            view: "market_features".into(),
            join_key: "symbol".into(),
            entity: "BTCUSDT".into(),
            event_ts: Timestamp::from_secs(1_767_323_045),
            values: vec![
                ("last_price".into(), OnlineValue::F64(97123.5)),
                ("n".into(), OnlineValue::I64(-3)),
                ("s".into(), OnlineValue::Str("x\"y".into())),
                ("gone".into(), OnlineValue::Null),
                ("nan".into(), OnlineValue::F64(f64::NAN)),
            ],
        };
        assert_eq!(row.json_key(), "feast:market_features:BTCUSDT");
        let v: Value = serde_json::from_str(&row.json_doc()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "view": "market_features", "join_key": "symbol", "entity": "BTCUSDT",
                "event_ts": "2026-01-02T03:04:05.000000000Z",
                "event_ts_nanos": 1_767_323_045_000_000_000i64,
                "values": {"last_price": 97123.5, "n": -3, "s": "x\"y", "gone": null, "nan": null}
            })
        );
    }

    #[test]
    fn validation_rejects_ambiguous_names() {
        let ok = OnlineRow {
            view: "v".into(),
            join_key: "symbol".into(),
            entity: "E".into(),
            event_ts: Timestamp::from_secs(1),
            values: vec![("f".into(), OnlineValue::Null)],
        };
        assert!(ok.validate().is_ok());
        for bad in [
            OnlineRow {
                view: String::new(),
                ..ok.clone()
            },
            OnlineRow {
                view: "a:b".into(),
                ..ok.clone()
            },
            OnlineRow {
                join_key: String::new(),
                ..ok.clone()
            },
            OnlineRow {
                values: vec![(String::new(), OnlineValue::I64(1))],
                ..ok.clone()
            },
        ] {
            assert!(matches!(
                bad.validate(),
                Err(FeastStoreError::InvalidRow { .. })
            ));
        }
    }
}
