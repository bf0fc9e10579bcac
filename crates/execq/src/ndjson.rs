//! Interchange NDJSON read into one reused [`Record`], for the batch CLI: the same records, the
//! same checks and the same errors as [`interchange::NdjsonReader`], without a fresh `String`
//! per text field per line.
//!
//! A line in the usual shape (a flat object of the record's own keys, strings without escapes,
//! decimals as strings or plain non-negative integers, `ts` as `YYYY-MM-DDTHH:MM:SS[.f]Z`) is
//! read by a small parser that reuses the record's strings; anything else (escapes, unknown or
//! repeated keys, JSON fractions or exponents, other time forms, a bad line) is handed to
//! serde_json exactly as the interchange reader does, so the result or the error is the same.

use std::io::BufRead;
use std::str::FromStr;

use interchange::{InterchangeError, Kind, NdjsonLines, Record};
use model::{Decimal, Liquidity, Side, Timestamp};

/// Records of an interchange NDJSON input, one at a time into one reused [`Record`]
/// ([`RecordReader::next_record`]): blank lines skipped, a line longer than
/// [`interchange::MAX_LINE_BYTES`], a line that is not a record, or a record earlier than the one before it
/// is an error naming the source and line (and ends the reading), as with
/// [`interchange::NdjsonReader`].
pub struct RecordReader<R> {
    lines: NdjsonLines<R>,
    failed: bool,
    rec: Record,
    spare: Spare,
}

impl<R: BufRead> RecordReader<R> {
    pub fn new(reader: R, source_name: &str) -> Self {
        RecordReader {
            lines: NdjsonLines::new(reader, source_name),
            failed: false,
            rec: Record::new(Timestamp::default(), Kind::Trade, String::new()),
            spare: Spare::default(),
        }
    }

    fn read(&mut self) -> Result<bool, InterchangeError> {
        if !self.lines.advance()? {
            return Ok(false);
        }
        if !parse_into(self.lines.line(), &mut self.rec, &mut self.spare) {
            self.rec = serde_json::from_slice(self.lines.line())
                .map_err(|e| self.lines.bad(e.to_string()))?;
        }
        self.lines.in_order(self.rec.ts)?;
        Ok(true)
    }

    /// The next record, `None` at the end of the input or after an error.
    pub fn next_record(&mut self) -> Option<Result<&Record, InterchangeError>> {
        if self.failed {
            return None;
        }
        match self.read() {
            Ok(true) => Some(Ok(&self.rec)),
            Ok(false) => None,
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// The strings of the record's optional text fields while they are absent, kept for reuse.
#[derive(Default)]
struct Spare([String; 7]);

/// Takes the optional text field `f` (index `i` in [`Spare`]) back into the spares.
fn recycle(f: &mut Option<String>, spare: &mut Spare, i: usize) {
    if let Some(s) = f.take() {
        spare.0[i] = s;
    }
}

fn fill(f: &mut Option<String>, spare: &mut Spare, i: usize, v: &str) {
    let mut s = std::mem::take(&mut spare.0[i]);
    s.clear();
    s.push_str(v);
    *f = Some(s);
}

struct Cursor<'a> {
    /// The line, checked as UTF-8 once: a string ends at an ASCII quote, so every string in
    /// it is a `str` slice.
    text: &'a str,
    s: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.s.get(self.i) {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// A string without escapes or control characters (anything else: `None`).
    fn string(&mut self) -> Option<&'a str> {
        if !self.eat(b'"') {
            return None;
        }
        let start = self.i;
        let rest = self.s.get(start..)?;
        let len = rest
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
        if rest[len] != b'"' {
            return None;
        }
        self.i = start + len + 1;
        self.text.get(start..start + len)
    }

    /// One of the record's keys (see [`known_key`]); anything else, `None`.
    fn key(&mut self) -> Option<Key> {
        if !self.eat(b'"') {
            return None;
        }
        let (len, key) = known_key(self.s.get(self.i..)?)?;
        self.i += len;
        Some(key)
    }

    /// The text up to the next quote, for [`fast_ts`] only: it checks every byte (a digit or
    /// its one separator), so a backslash or a control byte here fails there and the line is
    /// handed over, as [`Cursor::string`] would have it.
    fn ts_string(&mut self) -> Option<&'a str> {
        if !self.eat(b'"') {
            return None;
        }
        let start = self.i;
        let len = self.s.get(start..)?.iter().position(|&b| b == b'"')?;
        self.i = start + len + 1;
        self.text.get(start..start + len)
    }

    /// A record kind's string, told apart by its first byte and compared as a constant with
    /// its closing quote (anything else: `None`).
    fn kind(&mut self) -> Option<Kind> {
        if !self.eat(b'"') {
            return None;
        }
        let rest = self.s.get(self.i..)?;
        let (name, kind): (&[u8], Kind) = match rest.first()? {
            b'o' if rest.starts_with(b"order_new\"") => (b"order_new\"", Kind::OrderNew),
            b'o' => (b"order_cancel\"", Kind::OrderCancel),
            b'f' => (b"fill\"", Kind::Fill),
            b'q' => (b"quote\"", Kind::Quote),
            b't' => (b"trade\"", Kind::Trade),
            _ => return None,
        };
        if !rest.starts_with(name) {
            return None;
        }
        self.i += name.len();
        Some(kind)
    }

    /// A quoted [`plain_decimal`] (the same value and scale), read in the one pass that finds
    /// the closing quote; anything else: `None` with nothing consumed.
    fn quoted_plain_decimal(&mut self) -> Option<Decimal> {
        let rest = self.s.get(self.i + 1..)?;
        let mut m: u64 = 0;
        let mut dot = None;
        for (k, &c) in rest.iter().enumerate().take(19) {
            match c {
                b'0'..=b'9' => m = m * 10 + u64::from(c - b'0'),
                b'.' if dot.is_none() && k > 0 => dot = Some(k),
                b'"' if k > 0 && dot != Some(k - 1) => {
                    let scale = dot.map_or(0, |d| k - d - 1) as u32;
                    self.i += k + 2;
                    return Some(Decimal::from_i128_with_scale(i128::from(m), scale));
                }
                _ => return None,
            }
        }
        None
    }

    /// `null`: `true` (and consumed) if it is next.
    fn null(&mut self) -> bool {
        if self.s.get(self.i..self.i + 4) == Some(b"null") {
            self.i += 4;
            true
        } else {
            false
        }
    }

    fn opt_string(&mut self) -> Option<Option<&'a str>> {
        if self.null() {
            Some(None)
        } else {
            self.string().map(Some)
        }
    }

    /// A decimal: a string `Decimal::from_str` takes, or a plain non-negative JSON integer of
    /// at most 18 digits (read by serde_json as a `u64`: the same value, scale 0).
    fn opt_decimal(&mut self) -> Option<Option<Decimal>> {
        match self.peek()? {
            b'n' => self.null().then_some(None),
            b'"' => {
                if let Some(d) = self.quoted_plain_decimal() {
                    return Some(Some(d));
                }
                let s = self.string()?;
                match plain_decimal(s) {
                    Some(d) => Some(Some(d)),
                    None => Decimal::from_str(s).ok().map(Some),
                }
            }
            b'0'..=b'9' => {
                let start = self.i;
                while let Some(b'0'..=b'9') = self.peek() {
                    self.i += 1;
                }
                let digits = &self.s[start..self.i];
                if digits.len() > 18 || (digits.len() > 1 && digits[0] == b'0') {
                    return None;
                }
                // A fraction or exponent follows: a float for serde_json, not ours.
                if let Some(b'.' | b'e' | b'E') = self.peek() {
                    return None;
                }
                let v = digits
                    .iter()
                    .fold(0u64, |v, &b| v * 10 + u64::from(b - b'0'));
                Some(Some(Decimal::from(v)))
            }
            _ => None,
        }
    }
}

/// `digits[.digits]` of at most 18 characters (the usual decimal string: a price, a quantity),
/// mantissa and scale read straight from the bytes: the value and scale `Decimal::from_str`
/// gives. Anything else (a sign, an exponent, underscores, a bare point): `None`.
fn plain_decimal(s: &str) -> Option<Decimal> {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > 18 {
        return None;
    }
    let mut m: u64 = 0;
    let mut scale = 0;
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'0'..=b'9' => m = m * 10 + u64::from(c - b'0'),
            b'.' if scale == 0 && i > 0 && i + 1 < b.len() => scale = (b.len() - i - 1) as u32,
            _ => return None,
        }
    }
    Some(Decimal::from_i128_with_scale(i128::from(m), scale))
}

fn num(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |v, &c| {
        c.is_ascii_digit().then(|| v * 10 + u32::from(c - b'0'))
    })
}

/// Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z` within 1678-2261, as `Timestamp::parse_rfc3339` reads it;
/// `None` for any other form (which that parser may still take).
fn fast_ts(s: &str) -> Option<Timestamp> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return None;
    }
    if b[13] != b':' || b[16] != b':' || *b.last()? != b'Z' {
        return None;
    }
    let y = num(&b[0..4])?;
    let mo = num(&b[5..7])?;
    let d = num(&b[8..10])?;
    let h = num(&b[11..13])?;
    let mi = num(&b[14..16])?;
    let sec = num(&b[17..19])?;
    if !(1678..=2261).contains(&y) || !(1..=12).contains(&mo) || h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let dim = match mo {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if d == 0 || d > dim {
        return None;
    }
    let frac = &b[19..b.len() - 1];
    let nanos = match frac {
        [] => 0,
        [b'.', digits @ ..] if (1..=9).contains(&digits.len()) => {
            num(digits)? * 10u32.pow(9 - digits.len() as u32)
        }
        _ => return None,
    };
    let secs = days_from_civil(i64::from(y), mo, d) * 86_400 + i64::from(h * 3600 + mi * 60 + sec);
    Some(Timestamp::from_nanos(
        secs * 1_000_000_000 + i64::from(nanos),
    ))
}

/// The record's keys.
#[derive(Clone, Copy)]
enum Key {
    Ts,
    Qty,
    Tif,
    Bid,
    Ask,
    Fee,
    Kind,
    Side,
    Price,
    Owner,
    Symbol,
    Account,
    FillId,
    OrderId,
    TradeId,
    BidSize,
    AskSize,
    Liquidity,
    OrderType,
    DecisionPrice,
}

/// The record's key at the start of `rest` (just after the opening quote), with its length
/// and closing quote: `rest` is compared with the one to three keys of its first byte, each
/// a constant, instead of finding the key's end and comparing it with each key in turn.
/// `None` for anything else (an unknown key, an escape): serde's to read.
fn known_key(rest: &[u8]) -> Option<(usize, Key)> {
    macro_rules! pick {
        ($($name:literal => $k:ident),+) => {{
            $(
                if rest.starts_with($name) {
                    return Some(($name.len(), Key::$k));
                }
            )+
            None
        }};
    }
    match rest.first()? {
        b't' => pick!(b"ts\"" => Ts, b"tif\"" => Tif, b"trade_id\"" => TradeId),
        b'k' => pick!(b"kind\"" => Kind),
        b's' => pick!(b"symbol\"" => Symbol, b"side\"" => Side),
        b'q' => pick!(b"qty\"" => Qty),
        b'p' => pick!(b"price\"" => Price),
        b'a' => pick!(b"account\"" => Account, b"ask\"" => Ask, b"ask_size\"" => AskSize),
        b'o' => pick!(b"order_id\"" => OrderId, b"owner\"" => Owner, b"order_type\"" => OrderType),
        b'f' => pick!(b"fill_id\"" => FillId, b"fee\"" => Fee),
        b'b' => pick!(b"bid\"" => Bid, b"bid_size\"" => BidSize),
        b'l' => pick!(b"liquidity\"" => Liquidity),
        b'd' => pick!(b"decision_price\"" => DecisionPrice),
        _ => None,
    }
}

const F_TS: u32 = 1;
const F_KIND: u32 = 1 << 1;
const F_SYMBOL: u32 = 1 << 2;

/// Reads `line` into `rec` if it has the usual shape (see the module); `false` when the line
/// must go to serde_json (then `rec` is partly written and must be replaced).
fn parse_into(line: &[u8], rec: &mut Record, spare: &mut Spare) -> bool {
    recycle(&mut rec.account, spare, 0);
    recycle(&mut rec.owner, spare, 1);
    recycle(&mut rec.order_id, spare, 2);
    recycle(&mut rec.order_type, spare, 3);
    recycle(&mut rec.tif, spare, 4);
    recycle(&mut rec.trade_id, spare, 5);
    recycle(&mut rec.fill_id, spare, 6);
    rec.side = None;
    rec.qty = None;
    rec.price = None;
    rec.liquidity = None;
    rec.bid = None;
    rec.ask = None;
    rec.bid_size = None;
    rec.ask_size = None;
    rec.fee = None;
    rec.decision_price = None;
    parse_fields(line, rec, spare).is_some()
}

fn parse_fields(line: &[u8], rec: &mut Record, spare: &mut Spare) -> Option<()> {
    // Invalid UTF-8 anywhere is serde's error to report.
    let utf8 = std::str::from_utf8(line).ok()?;
    let mut c = Cursor {
        text: utf8,
        s: line,
        i: 0,
    };
    c.ws();
    if !c.eat(b'{') {
        return None;
    }
    let mut seen = 0u32;
    loop {
        c.ws();
        let key = c.key()?;
        c.ws();
        if !c.eat(b':') {
            return None;
        }
        c.ws();
        let bit = match key {
            Key::Ts => {
                rec.ts = fast_ts(c.ts_string()?)?;
                F_TS
            }
            Key::Kind => {
                rec.kind = c.kind()?;
                F_KIND
            }
            Key::Symbol => {
                let v = c.string()?;
                rec.symbol.clear();
                rec.symbol.push_str(v);
                F_SYMBOL
            }
            Key::Side => {
                rec.side = match c.opt_string()? {
                    None => None,
                    Some("buy") => Some(Side::Buy),
                    Some("sell") => Some(Side::Sell),
                    Some(_) => return None,
                };
                1 << 3
            }
            Key::Liquidity => {
                rec.liquidity = match c.opt_string()? {
                    None => None,
                    Some("maker") => Some(Liquidity::Maker),
                    Some("taker") => Some(Liquidity::Taker),
                    Some(_) => return None,
                };
                1 << 4
            }
            Key::Account => text(&mut c, &mut rec.account, spare, 0, 5)?,
            Key::Owner => text(&mut c, &mut rec.owner, spare, 1, 6)?,
            Key::OrderId => text(&mut c, &mut rec.order_id, spare, 2, 7)?,
            Key::OrderType => text(&mut c, &mut rec.order_type, spare, 3, 8)?,
            Key::Tif => text(&mut c, &mut rec.tif, spare, 4, 9)?,
            Key::TradeId => text(&mut c, &mut rec.trade_id, spare, 5, 10)?,
            Key::FillId => text(&mut c, &mut rec.fill_id, spare, 6, 11)?,
            Key::Qty => dec(&mut c, &mut rec.qty, 12)?,
            Key::Price => dec(&mut c, &mut rec.price, 13)?,
            Key::Bid => dec(&mut c, &mut rec.bid, 14)?,
            Key::Ask => dec(&mut c, &mut rec.ask, 15)?,
            Key::BidSize => dec(&mut c, &mut rec.bid_size, 16)?,
            Key::AskSize => dec(&mut c, &mut rec.ask_size, 17)?,
            Key::Fee => dec(&mut c, &mut rec.fee, 18)?,
            Key::DecisionPrice => dec(&mut c, &mut rec.decision_price, 19)?,
        };
        if seen & bit != 0 {
            return None; // a repeated key is serde's error to report
        }
        seen |= bit;
        c.ws();
        if c.eat(b'}') {
            break;
        }
        if !c.eat(b',') {
            return None;
        }
    }
    c.ws();
    let required = F_TS | F_KIND | F_SYMBOL;
    (c.i == line.len() && seen & required == required).then_some(())
}

fn text(
    c: &mut Cursor<'_>,
    f: &mut Option<String>,
    spare: &mut Spare,
    i: usize,
    bit: u32,
) -> Option<u32> {
    match c.opt_string()? {
        Some(v) => {
            if f.is_some() {
                return None; // repeated
            }
            fill(f, spare, i, v)
        }
        None => recycle(f, spare, i),
    }
    Some(1 << bit)
}

fn dec(c: &mut Cursor<'_>, f: &mut Option<Decimal>, bit: u32) -> Option<u32> {
    *f = c.opt_decimal()?;
    Some(1 << bit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_decimals_read_as_from_str_reads_them() {
        let mut cases: Vec<String> = [
            "0",
            "00",
            "0.0",
            "1",
            "99.99",
            "179",
            "0.000001",
            "007.50",
            "123456789012345678",
            "12345678901234567.8",
            "1.",
            ".5",
            "1..2",
            "1.2.3",
            "-1",
            "+1",
            "1_000",
            "1e3",
            "",
            "1234567890123456789",
            "0.1234567890123456",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let digits = (x % 19) as usize + 1;
            let mut s: String = (0..digits)
                .map(|k| char::from(b'0' + ((x >> (k * 3)) % 10) as u8))
                .collect();
            let dot = (x >> 60) as usize % (digits + 2);
            if dot <= digits {
                s.insert(dot, '.');
            }
            cases.push(s);
        }
        for s in cases {
            // The one-pass reader of a quoted decimal takes exactly what `plain_decimal` does.
            let quoted = format!("\"{s}\",");
            let mut c = Cursor {
                text: &quoted,
                s: quoted.as_bytes(),
                i: 0,
            };
            let one_pass = c.quoted_plain_decimal();
            assert_eq!(
                one_pass.map(|d| format!("{d:?}")),
                plain_decimal(&s).map(|d| format!("{d:?}")),
                "{s}"
            );
            assert_eq!(c.i, if one_pass.is_some() { s.len() + 2 } else { 0 }, "{s}");
            if let Some(d) = plain_decimal(&s) {
                let want = Decimal::from_str(&s).expect("from_str takes what plain_decimal does");
                assert_eq!(format!("{d:?}"), format!("{want:?}"), "{s}");
                assert_eq!(d.scale(), want.scale(), "{s}");
            }
        }
        assert!(plain_decimal("99.99").is_some() && plain_decimal("179").is_some());
    }

    #[test]
    fn keys_are_known_by_their_whole_name() {
        let keys = [
            "ts",
            "qty",
            "tif",
            "bid",
            "ask",
            "fee",
            "kind",
            "side",
            "price",
            "owner",
            "symbol",
            "account",
            "fill_id",
            "order_id",
            "trade_id",
            "bid_size",
            "ask_size",
            "liquidity",
            "order_type",
            "decision_price",
        ];
        let known = |k: &str| {
            let quoted = format!("{k}\":1");
            known_key(quoted.as_bytes()).map(|(len, _)| {
                assert_eq!(len, k.len() + 1, "{k}");
                len
            })
        };
        for k in keys {
            assert!(known(k).is_some(), "{k}");
            // One byte changed anywhere, one added or removed: not a key.
            for i in 0..k.len() {
                let mut m = k.as_bytes().to_vec();
                m[i] = b'x';
                let m = String::from_utf8(m).unwrap();
                assert!(known(&m).is_none() || keys.contains(&m.as_str()), "{m}");
            }
            assert!(known(&format!("{k}s")).is_none());
            assert!(known(&format!("{k}\\u0041")).is_none());
            assert!(known(&k[1..]).is_none() || keys.contains(&&k[1..]));
            assert!(known(&k[..k.len() - 1]).is_none() || keys.contains(&&k[..k.len() - 1]));
        }
        for k in [
            "",
            "t",
            "TS",
            "Ts",
            "qt",
            "sym",
            "symbols",
            "xx",
            "zzz",
            "decision_prices",
        ] {
            assert!(known(k).is_none(), "{k}");
        }
        assert!(known_key(b"ts").is_none() && known_key(b"").is_none());
        // Kinds: each one, and near misses handed over.
        for k in ["order_new", "order_cancel", "fill", "quote", "trade"] {
            let line = format!(r#"{{"ts":"2024-01-02T14:30:00Z","kind":"{k}","symbol":"S"}}"#);
            assert!(same_as_serde(&line), "{line}");
            for bad in [
                format!("{k}s"),
                k[1..].to_string(),
                k[..k.len() - 1].to_string(),
            ] {
                let line =
                    format!(r#"{{"ts":"2024-01-02T14:30:00Z","kind":"{bad}","symbol":"S"}}"#);
                assert!(!same_as_serde(&line), "{line}");
            }
        }
        for bad in ["", "order_", "order_x", "Fill", "fil\\u006c", "q\"uote"] {
            let line = format!(r#"{{"ts":"2024-01-02T14:30:00Z","kind":"{bad}","symbol":"S"}}"#);
            assert!(!same_as_serde(&line), "{line}");
        }
        // A ts with an escape or a control byte is handed over.
        for ts in [
            "2024-01-02T14:30:00\\u005a",
            "2024-01-02T14:30:0\\\"0Z",
            "2024-01-02T14:30:00\tZ",
        ] {
            let line = format!(r#"{{"ts":"{ts}","kind":"trade","symbol":"S"}}"#);
            assert!(!same_as_serde(&line), "{line}");
        }
        // Every key is read into its own field.
        let line = r#"{"ts":"2024-01-02T14:30:00Z","kind":"fill","symbol":"S","side":"sell","liquidity":"maker","account":"a","owner":"o","order_id":"i","order_type":"limit","tif":"ioc","trade_id":"t","fill_id":"f","qty":"1","price":"2","bid":"3","ask":"4","bid_size":"5","ask_size":"6","fee":"7","decision_price":"8"}"#;
        assert!(same_as_serde(line));
    }

    /// `line` read by the fast parser, if it takes it (then it must equal serde's record).
    fn fast(line: &str) -> Option<Record> {
        let mut rec = Record::new(Timestamp::default(), Kind::Trade, "junk");
        rec.account = Some("stale".into());
        rec.fee = Some(Decimal::ONE);
        let mut spare = Spare::default();
        parse_into(line.as_bytes(), &mut rec, &mut spare).then_some(rec)
    }

    fn same_as_serde(line: &str) -> bool {
        let serde = serde_json::from_str::<Record>(line).ok();
        match fast(line) {
            Some(r) => {
                assert_eq!(Some(&r), serde.as_ref(), "{line}");
                // Scales too (equality of decimals ignores them).
                assert_eq!(format!("{r:?}"), format!("{:?}", serde.unwrap()), "{line}");
                true
            }
            None => false,
        }
    }

    #[test]
    fn usual_lines_are_read_as_serde_reads_them() {
        let taken = [
            r#"{"ts":"2024-01-02T14:30:00Z","kind":"quote","symbol":"XYZ","bid":"10.00","ask":"10.02","bid_size":100,"ask_size":200}"#,
            r#"{"ts":"2024-01-02T14:30:01.5Z","kind":"order_new","account":"A1","owner":"O1","symbol":"XYZ","side":"buy","qty":100,"price":null,"order_id":"o1","order_type":"market","tif":"day","decision_price":"9.99"}"#,
            r#" { "ts" : "2024-02-29T23:59:59.123456789Z" , "kind" : "fill", "account":"A1","symbol":"XYZ","side":"sell","qty":"100","price":"10.01","order_id":"o1","fill_id":"f1","liquidity":"taker","fee":"0.1"} "#,
            r#"{"kind":"trade","symbol":"é✓","ts":"1970-01-01T00:00:00.000000001Z","price":"-1.50","qty":0,"side":null,"liquidity":null,"account":null,"trade_id":"t"}"#,
            r#"{"ts":"1969-12-31T23:59:59.9Z","kind":"order_cancel","symbol":"X","order_id":"o","qty":"0.0000"}"#,
            r#"{"ts":"1678-01-01T00:00:00Z","kind":"trade","symbol":"X"}"#,
            r#"{"ts":"2261-12-31T23:59:59.999999999Z","kind":"trade","symbol":"X"}"#,
        ];
        for line in taken {
            assert!(same_as_serde(line), "not taken: {line}");
        }
        // Either way the same record.
        same_as_serde(r#"{"ts":"2024-01-02T14:30:00Z","kind":"trade","symbol":"X","price":"1e2"}"#);
        let handed_over = [
            r#"{"ts":"2024-01-02T14:30:00Z","kind":"quote","symbol":"X","bid":10.00}"#,
            r#"{"ts":"2024-01-02T14:30:00Z","kind":"quote","symbol":"X","bid":1e3}"#,
            r#"{"ts":"2024-01-02T14:30:00Z","kind":"quote","symbol":"X","bid":-1}"#,
            r#"{"ts":"2024-01-02T14:30:00Z","kind":"quote","symbol":"X","bid":012}"#,
            r#"{"ts":"2024-01-02T14:30:00Z","kind":"quote","symbol":"X","bid":12345678901234567890}"#,
            r#"{"ts":"2024-01-02T14:30:00+01:00","kind":"quote","symbol":"X"}"#,
            r#"{"ts":"2024-01-02t14:30:00Z","kind":"quote","symbol":"X"}"#,
            r#"{"ts":"2024-02-30T14:30:00Z","kind":"quote","symbol":"X"}"#,
            r#"{"ts":"2023-02-29T14:30:00Z","kind":"quote","symbol":"X"}"#,
            r#"{"ts":"2024-01-02T14:30:60Z","kind":"quote","symbol":"X"}"#,
            r#"{"ts":"2024-01-02T14:30:00.1234567891Z","kind":"quote","symbol":"X"}"#,
            r#"{"ts":"2024-01-02T14:30:00.Z","kind":"quote","symbol":"X"}"#,
            r#"{"ts":"2262-06-01T00:00:00Z","kind":"quote","symbol":"X"}"#,
            r#"{"ts":"2024-01-02T14:30:00Z","kind":"quote","symbol":"X\"Y"}"#,
            r#"{"ts":"2024-01-02T14:30:00Z","kind":"quote","symbol":"X","extra":1}"#,
            r#"{"ts":"2024-01-02T14:30:00Z","kind":"quote","symbol":"X","symbol":"Y"}"#,
            r#"{"ts":"2024-01-02T14:30:00Z","kind":"quote","symbol":"X","account":"a","account":null}"#,
            r#"{"ts":"2024-01-02T14:30:00Z","kind":"quote","symbol":"X","account":null,"account":"a"}"#,
            r#"{"ts":"2024-01-02T14:30:00Z","kind":"quote"}"#,
            r#"{"ts":"2024-01-02T14:30:00Z","kind":"quote","symbol":null}"#,
            r#"{"ts":"2024-01-02T14:30:00Z","kind":"Quote","symbol":"X"}"#,
            r#"{"ts":"2024-01-02T14:30:00Z","kind":"quote","symbol":"X","side":"BUY"}"#,
            r#"{"ts":"2024-01-02T14:30:00Z","kind":"quote","symbol":"X","bid":""}"#,
            r#"{"ts":"2024-01-02T14:30:00Z","kind":"quote","symbol":"X"} x"#,
            r#"{"ts":"2024-01-02T14:30:00Z","kind":"quote","symbol":"X",}"#,
            r#"{}"#,
            r#"[]"#,
            "{\"ts\":\"2024-01-02T14:30:00Z\",\"kind\":\"quote\",\"symbol\":\"X\ty\"}",
        ];
        for line in handed_over {
            assert!(!same_as_serde(line), "taken: {line}");
        }
    }

    #[test]
    fn every_mutation_of_a_line_is_read_as_serde_reads_it_or_handed_over() {
        let base = r#"{"ts":"2024-01-02T14:30:01.5Z","kind":"fill","account":"A1","owner":"O1","symbol":"XYZ","side":"buy","qty":100,"price":"10.01","order_id":"o1","fill_id":"f1","liquidity":"maker","fee":"0.1","bid":null}"#;
        let bytes = base.as_bytes();
        let subst = b"0123456789\"{}[],:. -+eEnZTtu\\xa";
        let mut taken = 0;
        for i in 0..bytes.len() {
            for &b in subst.iter() {
                let mut m = bytes.to_vec();
                m[i] = b;
                if let Ok(line) = std::str::from_utf8(&m) {
                    taken += usize::from(same_as_serde(line));
                }
                let mut del = bytes.to_vec();
                del.remove(i);
                if let Ok(line) = std::str::from_utf8(&del) {
                    same_as_serde(line);
                }
            }
        }
        assert!(taken > 100, "{taken}");
    }

    #[test]
    fn the_reader_gives_the_interchange_readers_records_and_errors() {
        let text = r#"{"ts":"2024-01-02T14:30:00Z","kind":"quote","symbol":"XYZ","bid":10.00,"ask":"10.02","bid_size":100,"ask_size":200}
{"ts":"2024-01-02T14:30:01.5Z","kind":"order_new","account":"A1","owner":"O1","symbol":"XYZ","side":"buy","qty":100,"price":null,"order_id":"o1","order_type":"market","tif":"day","decision_price":"9.99"}

{"ts":"2024-01-02T14:30:02Z","kind":"fill","account":"A1","symbol":"XYZ","side":"buy","qty":"100","price":"10.01","order_id":"o1","fill_id":"f1","liquidity":"taker","fee":"0.1"}
{"ts":"2024-01-02T14:30:03Z","kind":"trade","symbol":"XYZ","price":"10.01","qty":"5"}
{"ts":"2024-01-02T14:30:01Z","kind":"trade","symbol":"XYZ","price":"10.01","qty":"5"}
"#;
        let theirs: Vec<_> = interchange::NdjsonReader::new(text.as_bytes(), "e.ndjson")
            .map(|r| r.map_err(|e| e.to_string()))
            .collect();
        let mut ours = Vec::new();
        let mut reader = RecordReader::new(text.as_bytes(), "e.ndjson");
        while let Some(r) = reader.next_record() {
            ours.push(r.cloned().map_err(|e| e.to_string()));
        }
        assert_eq!(format!("{ours:?}"), format!("{theirs:?}"));
        assert_eq!(ours.len(), 5);
        assert!(ours[4].as_ref().unwrap_err().starts_with("e.ndjson:6: ts"));

        let bad = "{\"ts\":\"x\"}\n";
        let mut reader = RecordReader::new(bad.as_bytes(), "e.ndjson");
        let err = reader.next_record().unwrap().unwrap_err().to_string();
        let theirs = interchange::read_ndjson(bad.as_bytes(), "e.ndjson").unwrap_err();
        assert_eq!(err, theirs.to_string());
        assert!(reader.next_record().is_none());
    }
}
