//! Feast's Redis online-store byte layout (feast 0.67.0), pure: no I/O.
//!
//! See `shared/specs/feast-redis-online-store.md`. One Redis hash per (project, entity key):
//! key = `serialize_entity_key_v3(join keys) ++ project`, fields = 4-byte murmur3 of
//! `"<view>:<feature>"` holding a protobuf `feast.types.Value`, plus `"_ts:<view>"` holding a
//! protobuf `google.protobuf.Timestamp`. The protobuf messages are tiny and fixed, so they are
//! written by hand (varint / fixed64 / length-delimited) instead of pulling in a codegen step.

use model::Timestamp;

/// Feast `ValueType` numbers used in the entity key (`feast/types/Value.proto`).
const VALUE_TYPE_BYTES: u32 = 1;
const VALUE_TYPE_STRING: u32 = 2;
const VALUE_TYPE_INT32: u32 = 3;
const VALUE_TYPE_INT64: u32 = 4;

/// One entity join-key value, typed as the Feast `Entity` declares it. The reader rebuilds the
/// key from the entity's declared type, so the writer must use the same one (spec section 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntityValue<'a> {
    Str(&'a str),
    Bytes(&'a [u8]),
    I32(i32),
    I64(i64),
}

/// A feature value as stored in the online store.
#[derive(Debug, Clone, PartialEq)]
pub enum OnlineValue {
    F64(f64),
    I64(i64),
    Str(String),
    /// Missing. Stored as the empty `Value` message, as Feast does for `None`/`NaN`.
    Null,
}

/// `serialize_entity_key` version 3: `u32le(N)`, then every key name (`u32le(2) u32le(len)
/// utf8`), then every value (`u32le(type) u32le(len) bytes`), pairs sorted by join-key name.
pub fn serialize_entity_key_v3(keys: &[(&str, EntityValue<'_>)]) -> Vec<u8> {
    let mut sorted: Vec<&(&str, EntityValue<'_>)> = keys.iter().collect();
    // Python sorts `str` by code point, which is the same as UTF-8 byte order.
    sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut out = Vec::with_capacity(4 + keys.len() * 32);
    put_u32(&mut out, sorted.len());
    for (name, _) in &sorted {
        out.extend_from_slice(&VALUE_TYPE_STRING.to_le_bytes());
        put_u32(&mut out, name.len());
        out.extend_from_slice(name.as_bytes());
    }
    for (_, value) in &sorted {
        let (ty, bytes): (u32, std::borrow::Cow<'_, [u8]>) = match value {
            EntityValue::Str(s) => (VALUE_TYPE_STRING, s.as_bytes().into()),
            EntityValue::Bytes(b) => (VALUE_TYPE_BYTES, (*b).into()),
            EntityValue::I32(v) => (VALUE_TYPE_INT32, v.to_le_bytes().to_vec().into()),
            EntityValue::I64(v) => (VALUE_TYPE_INT64, v.to_le_bytes().to_vec().into()),
        };
        out.extend_from_slice(&ty.to_le_bytes());
        put_u32(&mut out, bytes.len());
        out.extend_from_slice(&bytes);
    }
    out
}

/// Lengths are `u32` on the wire; a join key or value over 4 GiB cannot reach here (Redis caps
/// a key at 512 MiB), so saturating is only a formality.
fn put_u32(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes());
}

/// The Redis key of a single string join key (`symbol`, `account`, ...) in `project`.
pub fn redis_key(project: &str, join_key: &str, entity: &str) -> Vec<u8> {
    redis_key_multi(project, &[(join_key, EntityValue::Str(entity))])
}

/// The Redis key of any (possibly composite) entity key in `project`: no separator, no
/// terminator between the serialized key and the project name.
pub fn redis_key_multi(project: &str, keys: &[(&str, EntityValue<'_>)]) -> Vec<u8> {
    let mut key = serialize_entity_key_v3(keys);
    key.extend_from_slice(project.as_bytes());
    key
}

/// The hash field of one feature: `u32le(murmur3_x86_32("<view>:<feature>", seed 0))`.
pub fn field_name(view: &str, feature: &str) -> [u8; 4] {
    // Runs once per feature value on the write path: hash from the stack when the name fits.
    let len = view.len() + 1 + feature.len();
    if len <= 128 {
        let mut buf = [0u8; 128];
        buf[..view.len()].copy_from_slice(view.as_bytes());
        buf[view.len()] = b':';
        buf[view.len() + 1..len].copy_from_slice(feature.as_bytes());
        return murmur3_32(&buf[..len], 0).to_le_bytes();
    }
    let mut s = Vec::with_capacity(len);
    s.extend_from_slice(view.as_bytes());
    s.push(b':');
    s.extend_from_slice(feature.as_bytes());
    murmur3_32(&s, 0).to_le_bytes()
}

/// The hash field holding a view's event timestamp: `"_ts:<view>"`.
pub fn ts_field_name(view: &str) -> String {
    format!("_ts:{view}")
}

/// MurmurHash3 x86_32 (Austin Appleby's reference `MurmurHash3_x86_32`), as `mmh3.hash`.
pub fn murmur3_32(data: &[u8], seed: u32) -> u32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;
    let mut h = seed;
    let mut blocks = data.chunks_exact(4);
    for block in &mut blocks {
        let mut k = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
        k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h ^= k;
        h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        let mut k: u32 = 0;
        for (i, b) in tail.iter().enumerate() {
            k |= u32::from(*b) << (8 * i);
        }
        k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h ^= k;
    }
    // The length is mixed in modulo 2^32, exactly as the C reference's `int len`.
    h ^= data.len() as u32;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends `value` as a serialized `feast.types.Value`. The oneof member is written even when it
/// holds the default (`0`, `0.0`, `""`), as protobuf does for a set oneof. `Null` and NaN become
/// the empty message: that is what Feast's own writer stores for `None`/`NaN`, and what its
/// reader turns back into `None`.
pub fn encode_value(value: &OnlineValue, out: &mut Vec<u8>) {
    match value {
        OnlineValue::F64(v) if v.is_nan() => {}
        OnlineValue::F64(v) => {
            out.push(0x29); // field 5 (double_val), wire type 1 (fixed64)
            out.extend_from_slice(&v.to_le_bytes());
        }
        OnlineValue::I64(v) => {
            out.push(0x20); // field 4 (int64_val), wire type 0 (varint)
            put_varint(out, *v as u64); // negative: 10-byte two's complement
        }
        OnlineValue::Str(s) => {
            out.push(0x12); // field 2 (string_val), wire type 2 (length-delimited)
            put_varint(out, s.len() as u64);
            out.extend_from_slice(s.as_bytes());
        }
        OnlineValue::Null => {}
    }
}

/// `encode_value` into a fresh buffer.
pub fn value_bytes(value: &OnlineValue) -> Vec<u8> {
    let mut out = Vec::with_capacity(16);
    encode_value(value, &mut out);
    out
}

/// Splits a timestamp into protobuf `Timestamp` (seconds, nanos): nanos is always in
/// `0..1e9`, so an instant before the epoch has negative seconds and positive nanos.
pub fn ts_parts(ts: Timestamp) -> (i64, i32) {
    let n = ts.as_nanos();
    (
        n.div_euclid(1_000_000_000),
        n.rem_euclid(1_000_000_000) as i32,
    )
}

/// Serialized `google.protobuf.Timestamp`; proto3 leaves out zero fields, so the epoch is `""`.
pub fn encode_timestamp(ts: Timestamp) -> Vec<u8> {
    let (secs, nanos) = ts_parts(ts);
    let mut out = Vec::with_capacity(12);
    if secs != 0 {
        out.push(0x08);
        put_varint(&mut out, secs as u64);
    }
    if nanos != 0 {
        out.push(0x10);
        put_varint(&mut out, nanos as u64);
    }
    out
}

/// Decodes a serialized `google.protobuf.Timestamp` (as written by Feast or by us) into
/// nanoseconds since the epoch; `None` if the bytes are not one.
pub fn decode_timestamp(bytes: &[u8]) -> Option<Timestamp> {
    let (mut secs, mut nanos) = (0i64, 0i64);
    let mut i = 0;
    while i < bytes.len() {
        let tag = bytes[i];
        i += 1;
        let mut v: u64 = 0;
        let mut shift = 0;
        loop {
            let b = *bytes.get(i)?;
            i += 1;
            if shift >= 64 {
                return None;
            }
            v |= u64::from(b & 0x7f) << shift;
            shift += 7;
            if b < 0x80 {
                break;
            }
        }
        match tag {
            0x08 => secs = v as i64,
            0x10 => nanos = i64::from(v as i32),
            _ => return None,
        }
    }
    secs.checked_mul(1_000_000_000)
        .and_then(|s| s.checked_add(nanos))
        .map(Timestamp::from_nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }
    fn unspace(s: &str) -> String {
        s.split_whitespace().collect()
    }

    #[test]
    fn entity_keys_match_spec_vectors() {
        let cases: Vec<(Vec<(&str, EntityValue<'_>)>, &str)> = vec![
            (
                vec![("symbol", EntityValue::Str("BTCUSDT"))],
                "01000000 02000000 06000000 73796d626f6c 02000000 07000000 42544355534454 747261646532303236",
            ),
            (
                vec![("account", EntityValue::Str("acct-001"))],
                "01000000 02000000 07000000 6163636f756e74 02000000 08000000 616363742d303031 747261646532303236",
            ),
            (
                // given unsorted: the key must sort them (account < symbol)
                vec![
                    ("symbol", EntityValue::Str("ETHUSDT")),
                    ("account", EntityValue::Str("acct-002")),
                ],
                "02000000 02000000 07000000 6163636f756e74 02000000 06000000 73796d626f6c 02000000 08000000 616363742d303032 02000000 07000000 45544855534454 747261646532303236",
            ),
            (
                vec![("user_id", EntityValue::I64(-42))],
                "01000000 02000000 07000000 757365725f6964 04000000 08000000 d6ffffffffffffff 747261646532303236",
            ),
            (
                vec![("shard", EntityValue::I32(7))],
                "01000000 02000000 05000000 7368617264 03000000 04000000 07000000 747261646532303236",
            ),
        ];
        for (keys, want) in cases {
            assert_eq!(hex(&redis_key_multi("trade2026", &keys)), unspace(want));
        }
    }

    #[test]
    fn redis_key_is_the_worked_example() {
        assert_eq!(
            hex(&redis_key("trade2026", "symbol", "BTCUSDT")),
            "01000000020000000600000073796d626f6c020000000700000042544355534454747261646532303236"
        );
        assert_eq!(
            hex(&redis_key("trade2026", "account", "acct-001")),
            "0100000002000000070000006163636f756e740200000008000000616363742d303031747261646532303236"
        );
    }

    #[test]
    fn murmur3_matches_mmh3_vectors() {
        let cases = [
            ("market_features", "last_price", "fe6e2789"),
            ("market_features", "vwap_5m", "8816e0da"),
            ("market_features", "volume_5m", "1bfdbc6a"),
            ("market_features", "trade_count_5m", "c9d9ac07"),
            ("market_features", "spread_bps", "ca2f717d"),
            ("position_features", "net_qty", "c66cd572"),
            ("position_features", "notional", "7717fe7e"),
            ("position_features", "unrealized_pnl", "fe9274f6"),
        ];
        for (view, feature, want) in cases {
            assert_eq!(hex(&field_name(view, feature)), want, "{view}:{feature}");
        }
        // Raw strings, covering every tail length (1, 3, 4 bytes and empty).
        for (s, want) in [
            ("a", "b269253c"),
            ("abc", "fa93ddb3"),
            ("abcd", "6a67ed43"),
            ("", "00000000"),
        ] {
            assert_eq!(
                hex(&murmur3_32(s.as_bytes(), 0).to_le_bytes()),
                want,
                "{s:?}"
            );
        }
    }

    #[test]
    fn ts_field_is_literal_text() {
        assert_eq!(
            hex(ts_field_name("market_features").as_bytes()),
            "5f74733a6d61726b65745f6665617475726573"
        );
    }

    #[test]
    fn values_match_worked_example() {
        let cases = [
            (OnlineValue::F64(97123.5), "290000000038b6f740"),
            (OnlineValue::F64(97100.25), "2900000000c4b4f740"),
            (OnlineValue::F64(12.5), "290000000000002940"),
            (OnlineValue::I64(345), "20d902"),
            (OnlineValue::F64(0.75), "29000000000000e83f"),
            // set oneof members are written even at their default value
            (OnlineValue::F64(0.0), "290000000000000000"),
            (OnlineValue::I64(0), "2000"),
            (OnlineValue::I64(-1), "20ffffffffffffffffff01"),
            (OnlineValue::Str("ab".into()), "12026162"),
            (OnlineValue::Str(String::new()), "1200"),
            (OnlineValue::Null, ""),
            (OnlineValue::F64(f64::NAN), ""),
        ];
        for (v, want) in cases {
            assert_eq!(hex(&value_bytes(&v)), want, "{v:?}");
        }
    }

    #[test]
    fn timestamps_match_spec() {
        let t = Timestamp::parse_rfc3339("2026-01-02T03:04:05Z").unwrap();
        assert_eq!(hex(&encode_timestamp(t)), "08a5ebdcca06");
        let t = Timestamp::parse_rfc3339("2026-01-02T03:04:05.678901Z").unwrap();
        assert_eq!(hex(&encode_timestamp(t)), "08a5ebdcca061088eadcc302");
        assert_eq!(ts_parts(t), (1_767_323_045, 678_901_000));
        assert_eq!(encode_timestamp(Timestamp::from_nanos(0)), Vec::<u8>::new());
    }

    #[test]
    fn timestamps_round_trip_including_pre_epoch() {
        for n in [
            0,
            1,
            999_999_999,
            1_767_323_045_678_901_000,
            -1,
            -1_500_000_000,
            i64::MAX / 2,
        ] {
            let t = Timestamp::from_nanos(n);
            assert_eq!(decode_timestamp(&encode_timestamp(t)), Some(t), "{n}");
        }
        assert_eq!(decode_timestamp(&[0x08]), None, "truncated varint");
        assert_eq!(decode_timestamp(&[0x18, 0x01]), None, "unknown field");
    }
}
