//! Text for report writers. Decimals and dates written as their `Display` writes them, into a
//! stack buffer: report writers emit millions of them, and the formatting machinery
//! (`to_string`, `write!`) costs several times the digits themselves plus an allocation each.
//! CSV fields quoted the one way every CSV writer of the platform quotes them.

use std::fmt::Write as _;

use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;

/// Room for any `Decimal`: sign, 29 digits, a point and a leading `0` (31 bytes at most).
pub const DECIMAL_TEXT: usize = 40;

/// Room for any `NaiveDate` (`-262143-01-01` is the longest).
pub const DATE_TEXT: usize = 16;

/// The decimal digits of `v` at the end of `buf`; returns where they start (`buf.len()` for 0).
fn digits_into(buf: &mut [u8; DECIMAL_TEXT], mut v: u128) -> usize {
    let mut i = buf.len();
    // Most mantissas fit 64 bits, where division is several times cheaper.
    while v > u128::from(u64::MAX) {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    let mut w = v as u64;
    while w > 0 {
        i -= 1;
        buf[i] = b'0' + (w % 10) as u8;
        w /= 10;
    }
    i
}

/// `d` exactly as `d.to_string()` writes it: a `-` for any negative sign (also on zero), the
/// mantissa's digits with the point `scale` digits from the right, a `0` before a leading
/// point, `0` for a zero of scale 0.
pub fn decimal_str<'b>(d: &Decimal, buf: &'b mut [u8; DECIMAL_TEXT]) -> &'b str {
    let mut digits = [0u8; DECIMAL_TEXT];
    let start = digits_into(&mut digits, d.mantissa().unsigned_abs());
    let digits = &digits[start..];
    let scale = d.scale() as usize;
    let mut n = 0;
    let mut put = |bytes: &[u8]| {
        buf[n..n + bytes.len()].copy_from_slice(bytes);
        n += bytes.len();
    };
    if d.is_sign_negative() {
        put(b"-");
    }
    let len = digits.len();
    if scale == 0 {
        put(if len == 0 { b"0" } else { digits });
    } else if len <= scale {
        put(b"0.");
        for _ in len..scale {
            put(b"0");
        }
        put(digits);
    } else {
        put(&digits[..len - scale]);
        put(b".");
        put(&digits[len - scale..]);
    }
    // Only ASCII digits, '-', '.' and '0' were written.
    std::str::from_utf8(&buf[..n]).unwrap_or("")
}

/// `d` exactly as `d.to_string()` writes it (`YYYY-MM-DD`, by hand for years 0-9999).
pub fn date_str(d: NaiveDate, buf: &mut [u8; DATE_TEXT]) -> &str {
    let (y, m, day) = (d.year(), d.month(), d.day());
    if !(0..=9999).contains(&y) {
        let mut s = Fallback { buf, n: 0 };
        let _ = write!(s, "{d}");
        let n = s.n;
        return std::str::from_utf8(&buf[..n]).unwrap_or("");
    }
    let y = y as u32;
    let text = [
        b'0' + (y / 1000) as u8,
        b'0' + (y / 100 % 10) as u8,
        b'0' + (y / 10 % 10) as u8,
        b'0' + (y % 10) as u8,
        b'-',
        b'0' + (m / 10) as u8,
        b'0' + (m % 10) as u8,
        b'-',
        b'0' + (day / 10) as u8,
        b'0' + (day % 10) as u8,
    ];
    buf[..10].copy_from_slice(&text);
    std::str::from_utf8(&buf[..10]).unwrap_or("")
}

/// `write!` into a date buffer (years outside 0-9999, which chrono writes with a sign).
struct Fallback<'a> {
    buf: &'a mut [u8; DATE_TEXT],
    n: usize,
}

impl std::fmt::Write for Fallback<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.n + s.len();
        if end > self.buf.len() {
            return Err(std::fmt::Error);
        }
        self.buf[self.n..end].copy_from_slice(s.as_bytes());
        self.n = end;
        Ok(())
    }
}

/// `f` as a CSV field (RFC 4180): quoted, with quotes doubled, when it holds a comma, a quote
/// or a line break; as is otherwise.
pub fn push_csv_field(out: &mut String, f: &str) {
    if f.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&f.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(f);
    }
}

/// [`push_csv_field`] into a new string.
pub fn csv_field(f: &str) -> String {
    let mut out = String::with_capacity(f.len());
    push_csv_field(&mut out, f);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(d: Decimal) -> String {
        decimal_str(&d, &mut [0; DECIMAL_TEXT]).to_string()
    }

    #[test]
    fn decimals_read_as_display_writes_them() {
        let mut cases = vec![
            Decimal::ZERO,
            Decimal::new(0, 2),
            Decimal::new(0, 28),
            -Decimal::new(0, 2),
            Decimal::new(5, 2),
            Decimal::new(-5, 2),
            Decimal::new(123, 0),
            Decimal::new(-123_456, 3),
            Decimal::new(100, 2),
            Decimal::new(1, 28),
            Decimal::MAX,
            Decimal::MIN,
            Decimal::from_i128_with_scale(i128::from(u64::MAX) + 1, 5),
            Decimal::from_i128_with_scale(-(i128::from(u64::MAX) * 7), 28),
        ];
        assert_eq!(
            dec(-Decimal::new(0, 2)),
            "-0.00",
            "a negative zero keeps its sign"
        );
        // Mantissas of every size at every scale, both signs (xorshift, fixed seed).
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..20_000 {
            let bits = next() % 97;
            let hi = u128::from(next()) << 64 | u128::from(next());
            let m = if bits == 0 { 0 } else { hi >> (128 - bits) };
            let m = (m & ((1u128 << 96) - 1)) as i128;
            let scale = (next() % 29) as u32;
            let neg = next() % 2 == 0;
            cases.push(Decimal::from_i128_with_scale(
                if neg { -m } else { m },
                scale,
            ));
        }
        for d in cases {
            assert_eq!(dec(d), d.to_string(), "{d:?}");
        }
    }

    #[test]
    fn csv_fields_are_quoted_only_when_they_must_be() {
        for (f, want) in [
            ("", ""),
            ("plain text", "plain text"),
            ("a,b", "\"a,b\""),
            ("say \"hi\"", "\"say \"\"hi\"\"\""),
            ("two\nlines", "\"two\nlines\""),
            ("cr\r", "\"cr\r\""),
        ] {
            assert_eq!(csv_field(f), want);
        }
    }

    #[test]
    fn dates_read_as_display_writes_them() {
        let mut d = NaiveDate::from_ymd_opt(-3, 1, 1).expect("date");
        let end = NaiveDate::from_ymd_opt(10_004, 12, 31).expect("date");
        let mut checked = 0;
        while d <= end {
            assert_eq!(date_str(d, &mut [0; DATE_TEXT]), d.to_string());
            // Every day near the ends of the fast path, a day in 37 elsewhere.
            let step = if d.year() < 3 || d.year() > 9996 {
                1
            } else {
                37
            };
            d += chrono::Duration::days(step);
            checked += 1;
        }
        assert!(checked > 100_000);
        for d in [NaiveDate::MIN, NaiveDate::MAX] {
            assert_eq!(date_str(d, &mut [0; DATE_TEXT]), d.to_string());
        }
    }
}
