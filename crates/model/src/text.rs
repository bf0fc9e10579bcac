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

/// Two-digit pairs `00` to `99`: digits are written two per division.
pub const DIGIT_PAIRS: [u8; 200] = {
    let mut t = [0u8; 200];
    let mut i = 0;
    while i < 100 {
        t[2 * i] = b'0' + (i / 10) as u8;
        t[2 * i + 1] = b'0' + (i % 10) as u8;
        i += 1;
    }
    t
};

/// The number of decimal digits of `v`, none for zero.
#[inline(always)]
fn digit_count(v: u64) -> usize {
    v.checked_ilog10().map_or(0, |l| l as usize + 1)
}

/// Writes the digits of `v` (none for zero) to end just before `end`, two at a time.
#[inline(always)]
pub fn digits_before(out: &mut [u8], end: usize, v: u64) {
    let mut i = end;
    let mut v = v;
    while v >= 100 {
        let r = (v % 100) as usize * 2;
        v /= 100;
        i -= 2;
        out[i..i + 2].copy_from_slice(&DIGIT_PAIRS[r..r + 2]);
    }
    if v >= 10 {
        let r = v as usize * 2;
        out[i - 2..i].copy_from_slice(&DIGIT_PAIRS[r..r + 2]);
    } else if v > 0 {
        out[i - 1] = b'0' + v as u8;
    }
}

/// `-` when `neg`, then `v` (`0` for zero), from `at` in `out` (filled with `b'0'`); returns
/// the end. At most 21 bytes.
#[inline(always)]
pub fn integer_into(out: &mut [u8], at: usize, v: u64, neg: bool) -> usize {
    let mut p = at;
    if neg {
        out[p] = b'-';
        p += 1;
    }
    let end = p + digit_count(v).max(1);
    digits_before(out, end, v);
    end
}

/// `(m / 10^scale, m % 10^scale)` with a constant divisor in each arm (a multiplication, not a
/// division instruction); `scale` in `1..=28`.
#[inline(always)]
fn split_at_scale(m: u64, scale: usize) -> (u64, u64) {
    macro_rules! arms {
        ($($s:literal)*) => {
            match scale {
                $($s => (m / 10u64.pow($s), m % 10u64.pow($s)),)*
                // A mantissa below 2^64 has at most 20 digits: all fraction.
                _ => (0, m),
            }
        };
    }
    arms!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19)
}

/// `d` exactly as `d.to_string()` writes it, from `at` in `out`: a `-` for any negative sign
/// (also on zero), the mantissa's digits with the point `scale` digits from the right, a `0`
/// before a leading point, `0` for a zero of scale 0. `out` must be filled with `b'0'` from
/// `at` on (the zeros that pad a fraction are not written) and hold `at + 31` bytes; returns
/// the end.
#[inline]
pub fn decimal_into(out: &mut [u8], at: usize, d: &Decimal) -> usize {
    let neg = d.is_sign_negative();
    let scale = d.scale() as usize;
    let Ok(m) = u64::try_from(d.mantissa().unsigned_abs()) else {
        return wide_decimal_into(out, at, d);
    };
    if scale == 0 {
        return integer_into(out, at, m, neg);
    }
    let (int, frac) = split_at_scale(m, scale);
    let p = integer_into(out, at, int, neg);
    out[p] = b'.';
    let end = p + 1 + scale;
    digits_before(out, end, frac);
    end
}

/// [`decimal_into`] of a mantissa of 2^64 or more (20 digits or more), a digit per division.
#[cold]
fn wide_decimal_into(out: &mut [u8], at: usize, d: &Decimal) -> usize {
    let mut tmp = [0u8; DECIMAL_TEXT];
    let mut i = tmp.len();
    let mut v = d.mantissa().unsigned_abs();
    while v > 0 {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    let digits = &tmp[i..];
    let (len, scale) = (digits.len(), d.scale() as usize);
    let mut p = at;
    let mut put = |bytes: &[u8]| {
        out[p..p + bytes.len()].copy_from_slice(bytes);
        p += bytes.len();
    };
    if d.is_sign_negative() {
        put(b"-");
    }
    if scale == 0 {
        put(digits);
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
    p
}

/// [`decimal_into`] a stack buffer, as text.
pub fn decimal_str<'b>(d: &Decimal, buf: &'b mut [u8; DECIMAL_TEXT]) -> &'b str {
    *buf = [b'0'; DECIMAL_TEXT];
    let n = decimal_into(buf, 0, d);
    // Only ASCII digits, '-' and '.' were written.
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
