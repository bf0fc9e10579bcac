//! CSV inputs of the offline commands, parsed exactly (decimals as text, never through f64).
//!
//! - Trades: `ts,account,symbol,side,qty,price,fee` plus optional `owner` and `lot_id`
//!   columns (any order; header required). `ts` is an ISO-8601 date (`2024-03-01`, taken as
//!   00:00 UTC) or a datetime (`2024-03-01T14:30:00Z`, UTC when no offset). `side` is `buy` or
//!   `sell`. On a sell, `lot_id` names the lot(s) it closes (`L1` or `L1;L3`, specific
//!   identification); on a buy it names the lot it opens.
//! - Marks: `symbol,price`. Positions: `symbol,qty` (signed). Prices: `date,symbol,close`.
//!
//! Errors name the source, the 1-based line (the header is line 1) and the column.
//!
//! Each reader has a streaming form (`read_trades_from` and so on) over any `Read` (a file, a
//! pipe): the CSV is parsed record by record, never held whole, and a line longer than
//! [`MAX_LINE_BYTES`] (a record, when quotes span lines) is refused with an error naming it, so one endless line cannot take the
//! memory. The `&str` forms are the same readers over text already in memory.

use std::collections::BTreeMap;
use std::io::Read;

use chrono::NaiveDate;
use model::{Decimal, Side, Timestamp};
use serde::{Deserialize, Serialize};

use crate::PtrcError;

/// One executed trade.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trade {
    pub ts: Timestamp,
    pub account: String,
    /// Beneficial owner (wash sales apply across an owner's accounts); defaults to the account.
    pub owner: String,
    pub symbol: String,
    pub side: Side,
    /// Positive quantity.
    pub qty: Decimal,
    /// Positive price per unit.
    pub price: Decimal,
    /// Commission and fees of this trade (non-negative), in the quote currency.
    pub fee: Decimal,
    /// On a buy: the id of the lot it opens. On a sell: the lots it closes (specific
    /// identification), in the order given.
    pub lot_ids: Vec<String>,
}

impl Trade {
    /// The UTC trade date (tax uses trade dates, not settlement dates).
    pub fn date(&self) -> NaiveDate {
        self.ts.to_datetime().date_naive()
    }
}

/// The longest record (line, or lines when a quoted field spans several) a CSV input may have,
/// in bytes, line ends excluded. A trades line is about a hundred bytes; the limit leaves room
/// for a sale naming thousands of lots.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// The error a [`RecordCap`] reader fails with, carried inside the `io::Error` the CSV reader
/// reports.
#[derive(Debug)]
struct LineTooLong {
    /// The line the record starts on.
    line: u64,
    cap: usize,
}

impl std::fmt::Display for LineTooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the record on this line is longer than {} bytes, the limit of a CSV line",
            self.cap
        )
    }
}

impl std::error::Error for LineTooLong {}

/// Where the reader is in the CSV grammar, as far as record ends go (the csv crate's default
/// dialect: `"` quotes a field only at its start, `""` inside quotes is a quote, CR, LF and
/// CRLF end a record outside quotes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lexeme {
    FieldStart,
    Unquoted,
    Quoted,
    QuoteInQuoted,
}

/// A reader that fails once a record grows past `cap` bytes: the CSV reader keeps a whole
/// record in memory, so this bounds what one record can take, however its quotes are placed.
struct RecordCap<R> {
    inner: R,
    /// 1-based number of the line being read, and of the line the current record started on.
    line: u64,
    record_line: u64,
    len: usize,
    cap: usize,
    state: Lexeme,
}

impl<R> RecordCap<R> {
    fn new(inner: R, cap: usize) -> Self {
        RecordCap {
            inner,
            line: 1,
            record_line: 1,
            len: 0,
            cap,
            state: Lexeme::FieldStart,
        }
    }

    /// Advance over one byte; false once the record is too long.
    fn step(&mut self, b: u8) -> bool {
        if b == b'\n' {
            self.line += 1;
        }
        let next = match (self.state, b) {
            (Lexeme::Quoted, b'"') => Some(Lexeme::QuoteInQuoted),
            (Lexeme::Quoted, _) => Some(Lexeme::Quoted),
            (Lexeme::QuoteInQuoted, b'"') => Some(Lexeme::Quoted),
            (Lexeme::FieldStart, b'"') => Some(Lexeme::Quoted),
            (_, b',') => Some(Lexeme::FieldStart),
            // The end of a record (a line end outside quotes).
            (_, b'\n' | b'\r') => None,
            _ => Some(Lexeme::Unquoted),
        };
        match next {
            Some(state) => {
                self.state = state;
                self.len += 1;
                self.len <= self.cap
            }
            None => {
                self.state = Lexeme::FieldStart;
                self.len = 0;
                self.record_line = self.line;
                true
            }
        }
    }
}

impl<R> RecordCap<R> {
    /// [`Self::step`] over every byte of `buf`; false once a record is too long. A buffer
    /// without a quote, read outside a quoted field (nearly every CSV), cannot enter one: only
    /// line ends (records) and lengths matter, found a line at a time with `memchr` instead of
    /// a state transition per byte (the per-byte walk was ~12% of `ptrc pnl`). The same lines,
    /// lengths, state and failing record as the walk; a property test compares the two.
    fn scan(&mut self, buf: &[u8]) -> bool {
        if matches!(self.state, Lexeme::Quoted | Lexeme::QuoteInQuoted)
            || memchr::memchr(b'"', buf).is_some()
        {
            return buf.iter().all(|&b| self.step(b));
        }
        let mut rest = buf;
        while let Some(end) = memchr::memchr2(b'\n', b'\r', rest) {
            self.len += end;
            if self.len > self.cap {
                return false;
            }
            if rest[end] == b'\n' {
                self.line += 1;
            }
            self.state = Lexeme::FieldStart;
            self.len = 0;
            self.record_line = self.line;
            rest = &rest[end + 1..];
        }
        if let Some(&last) = rest.last() {
            self.len += rest.len();
            if self.len > self.cap {
                return false;
            }
            self.state = if last == b',' {
                Lexeme::FieldStart
            } else {
                Lexeme::Unquoted
            };
        }
        true
    }
}

impl<R: Read> Read for RecordCap<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if !self.scan(&buf[..n]) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                LineTooLong {
                    line: self.record_line,
                    cap: self.cap,
                },
            ));
        }
        Ok(n)
    }
}

/// The error of a CSV read failure: the line it happened on, and what happened.
fn csv_error(source: &str, e: &csv::Error) -> PtrcError {
    if let csv::ErrorKind::Io(io) = e.kind()
        && let Some(long) = io.get_ref().and_then(|x| x.downcast_ref::<LineTooLong>())
    {
        return PtrcError::BadLine {
            source_name: source.to_string(),
            line: long.line,
            reason: long.to_string(),
        };
    }
    match e.position() {
        Some(p) => PtrcError::BadLine {
            source_name: source.to_string(),
            line: p.line(),
            reason: e.to_string(),
        },
        None => PtrcError::BadInput {
            source_name: source.to_string(),
            reason: e.to_string(),
        },
    }
}

/// A column of a [`Table`], resolved to its index once.
#[derive(Clone, Copy)]
struct Col {
    name: &'static str,
    at: Option<usize>,
}

struct Table<'a> {
    source: &'a str,
    columns: BTreeMap<String, usize>,
}

impl Table<'_> {
    fn err(&self, line: u64, column: &str, reason: impl Into<String>) -> PtrcError {
        PtrcError::BadField {
            source_name: self.source.to_string(),
            line,
            column: column.to_string(),
            reason: reason.into(),
        }
    }

    fn get<'r>(&self, rec: &'r csv::StringRecord, column: &str) -> Option<&'r str> {
        self.columns
            .get(column)
            .and_then(|&i| rec.get(i))
            .map(str::trim)
    }

    /// The index of `column`, looked up once per file rather than once per record (the lookup by
    /// name showed in the profile of a 1M-trade file).
    fn index(&self, column: &'static str) -> Col {
        Col {
            name: column,
            at: self.columns.get(column).copied(),
        }
    }

    fn get_at<'r>(&self, rec: &'r csv::StringRecord, c: Col) -> Option<&'r str> {
        c.at.and_then(|i| rec.get(i)).map(str::trim)
    }

    fn required_at<'r>(
        &self,
        rec: &'r csv::StringRecord,
        line: u64,
        c: Col,
    ) -> Result<&'r str, PtrcError> {
        match self.get_at(rec, c) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(self.err(line, c.name, "missing value")),
        }
    }

    fn decimal_at(&self, rec: &csv::StringRecord, line: u64, c: Col) -> Result<Decimal, PtrcError> {
        let text = self.required_at(rec, line, c)?;
        text.parse::<Decimal>()
            .or_else(|_| Decimal::from_scientific(text))
            .map_err(|_| self.err(line, c.name, format!("{text:?} is not a decimal number")))
    }

    fn required<'r>(
        &self,
        rec: &'r csv::StringRecord,
        line: u64,
        column: &str,
    ) -> Result<&'r str, PtrcError> {
        match self.get(rec, column) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(self.err(line, column, "missing value")),
        }
    }

    fn decimal(
        &self,
        rec: &csv::StringRecord,
        line: u64,
        column: &str,
    ) -> Result<Decimal, PtrcError> {
        let text = self.required(rec, line, column)?;
        text.parse::<Decimal>()
            .or_else(|_| Decimal::from_scientific(text))
            .map_err(|_| self.err(line, column, format!("{text:?} is not a decimal number")))
    }
}

type CsvReader<R> = csv::Reader<RecordCap<R>>;

fn reader<'a, R: Read>(
    input: R,
    source: &'a str,
    required: &[&str],
) -> Result<(CsvReader<R>, Table<'a>), PtrcError> {
    // Fields are trimmed where they are read (`Table::get`, `get_at`: `str::trim` removes the
    // ASCII whitespace the reader's own trimming would, and more); the reader's trimming copied
    // every record into a new allocation.
    let mut rdr = csv::ReaderBuilder::new()
        .trim(csv::Trim::Headers)
        .flexible(false)
        .from_reader(RecordCap::new(input, MAX_LINE_BYTES));
    let headers = rdr.headers().map_err(|e| match csv_error(source, &e) {
        PtrcError::BadInput { .. } => PtrcError::BadInput {
            source_name: source.to_string(),
            reason: format!("cannot read the header line: {e}"),
        },
        located => located,
    })?;
    let columns: BTreeMap<String, usize> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| (h.trim().to_ascii_lowercase(), i))
        .collect();
    for c in required {
        if !columns.contains_key(*c) {
            return Err(PtrcError::BadInput {
                source_name: source.to_string(),
                reason: format!("missing column {c:?} (required: {})", required.join(",")),
            });
        }
    }
    Ok((rdr, Table { source, columns }))
}

fn records<'a, R: Read>(
    rdr: &'a mut CsvReader<R>,
    t: &'a Table<'_>,
) -> impl Iterator<Item = Result<(u64, csv::StringRecord), PtrcError>> + 'a {
    rdr.records().map(move |r| {
        let rec = r.map_err(|e| csv_error(t.source, &e))?;
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        Ok((line, rec))
    })
}

/// Parse `2024-03-01` (00:00 UTC) or an RFC 3339 datetime (offset optional, UTC if absent).
pub fn parse_ts(text: &str) -> Option<Timestamp> {
    // RFC 3339 first: it is the common form of a trades file, a bare date never parses as one
    // (so the order does not change any result), and a failed strftime-style date parse per
    // record showed in the 1M-trade profile.
    if let Ok(t) = Timestamp::parse_rfc3339(text) {
        return Some(t);
    }
    if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return d
            .and_hms_opt(0, 0, 0)?
            .and_utc()
            .timestamp_nanos_opt()
            .map(Timestamp::from_nanos);
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(dt) = chrono::NaiveDateTime::parse_from_str(text, fmt) {
            return dt
                .and_utc()
                .timestamp_nanos_opt()
                .map(Timestamp::from_nanos);
        }
    }
    None
}

/// Read a trades CSV. Trades must be in time order (an error names the first one that is not).
pub fn read_trades(text: &str, source: &str) -> Result<Vec<Trade>, PtrcError> {
    read_trades_from(text.as_bytes(), source)
}

/// [`read_trades`] streaming from a reader.
pub fn read_trades_from(input: impl Read, source: &str) -> Result<Vec<Trade>, PtrcError> {
    let required = ["ts", "account", "symbol", "side", "qty", "price", "fee"];
    let (mut rdr, t) = reader(input, source, &required)?;
    let [c_ts, c_account, c_symbol, c_side, c_qty, c_price, c_fee] = required.map(|c| t.index(c));
    let (c_owner, c_lot) = (t.index("owner"), t.index("lot_id"));
    let mut out: Vec<Trade> = Vec::new();
    // One record buffer for the whole file: a fresh record per line was an allocation per trade.
    let mut rec = csv::StringRecord::new();
    while rdr
        .read_record(&mut rec)
        .map_err(|e| csv_error(t.source, &e))?
    {
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        let ts_text = t.required_at(&rec, line, c_ts)?;
        let ts = parse_ts(ts_text).ok_or_else(|| {
            t.err(
                line,
                "ts",
                format!("{ts_text:?} is not an ISO-8601 date or datetime"),
            )
        })?;
        let side_text = t.required_at(&rec, line, c_side)?;
        let side = if side_text.eq_ignore_ascii_case("buy") {
            Side::Buy
        } else if side_text.eq_ignore_ascii_case("sell") {
            Side::Sell
        } else {
            let other = side_text.to_ascii_lowercase();
            return Err(t.err(line, "side", format!("{other:?} is not buy or sell")));
        };
        // Sign tests instead of comparisons with zero: same answers, no rescaling.
        let qty = t.decimal_at(&rec, line, c_qty)?;
        if qty.is_sign_negative() || qty.is_zero() {
            return Err(t.err(line, "qty", format!("{qty} must be greater than zero")));
        }
        let price = t.decimal_at(&rec, line, c_price)?;
        if price.is_sign_negative() || price.is_zero() {
            return Err(t.err(line, "price", format!("{price} must be greater than zero")));
        }
        let fee = t.decimal_at(&rec, line, c_fee)?;
        if fee.is_sign_negative() && !fee.is_zero() {
            return Err(t.err(line, "fee", format!("{fee} must not be negative")));
        }
        let account = t.required_at(&rec, line, c_account)?.to_string();
        let owner = t
            .get_at(&rec, c_owner)
            .filter(|o| !o.is_empty())
            .map_or_else(|| account.clone(), str::to_string);
        let lot_ids = t
            .get_at(&rec, c_lot)
            .map(|l| {
                l.split(';')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        if let Some(prev) = out.last()
            && ts < prev.ts
        {
            return Err(t.err(
                line,
                "ts",
                format!(
                    "{ts} is earlier than the previous trade's {}: trades must be in time order",
                    prev.ts
                ),
            ));
        }
        out.push(Trade {
            ts,
            account,
            owner,
            symbol: t.required_at(&rec, line, c_symbol)?.to_string(),
            side,
            qty,
            price,
            fee,
            lot_ids,
        });
    }
    Ok(out)
}

/// `symbol,price`: the mark per symbol.
pub fn read_marks(text: &str, source: &str) -> Result<BTreeMap<String, Decimal>, PtrcError> {
    read_marks_from(text.as_bytes(), source)
}

/// [`read_marks`] streaming from a reader.
pub fn read_marks_from(
    input: impl Read,
    source: &str,
) -> Result<BTreeMap<String, Decimal>, PtrcError> {
    let (mut rdr, t) = reader(input, source, &["symbol", "price"])?;
    let mut out = BTreeMap::new();
    for item in records(&mut rdr, &t) {
        let (line, rec) = item?;
        let price = t.decimal(&rec, line, "price")?;
        if price <= Decimal::ZERO {
            return Err(t.err(line, "price", format!("{price} must be greater than zero")));
        }
        out.insert(t.required(&rec, line, "symbol")?.to_string(), price);
    }
    Ok(out)
}

/// `symbol,qty`: signed position per symbol; rows of the same symbol add up (an error names the
/// row whose sum leaves the exact decimal range).
pub fn read_positions(text: &str, source: &str) -> Result<BTreeMap<String, Decimal>, PtrcError> {
    read_positions_from(text.as_bytes(), source)
}

/// [`read_positions`] streaming from a reader.
pub fn read_positions_from(
    input: impl Read,
    source: &str,
) -> Result<BTreeMap<String, Decimal>, PtrcError> {
    let (mut rdr, t) = reader(input, source, &["symbol", "qty"])?;
    let mut out: BTreeMap<String, Decimal> = BTreeMap::new();
    for item in records(&mut rdr, &t) {
        let (line, rec) = item?;
        let qty = t.decimal(&rec, line, "qty")?;
        let symbol = t.required(&rec, line, "symbol")?;
        let sum = out.entry(symbol.to_string()).or_default();
        *sum = sum.checked_add(qty).ok_or_else(|| {
            t.err(
                line,
                "qty",
                format!("the position in {symbol} adds up past the exact decimal range"),
            )
        })?;
    }
    Ok(out)
}

/// Daily closes per symbol, each series sorted by date.
pub type PriceHistory = BTreeMap<String, Vec<(NaiveDate, Decimal)>>;

/// `date,symbol,close`, any row order; a repeated (date, symbol) is an error.
pub fn read_prices(text: &str, source: &str) -> Result<PriceHistory, PtrcError> {
    read_prices_from(text.as_bytes(), source)
}

/// [`read_prices`] streaming from a reader.
pub fn read_prices_from(input: impl Read, source: &str) -> Result<PriceHistory, PtrcError> {
    let (mut rdr, t) = reader(input, source, &["date", "symbol", "close"])?;
    let mut out: BTreeMap<String, BTreeMap<NaiveDate, Decimal>> = BTreeMap::new();
    for item in records(&mut rdr, &t) {
        let (line, rec) = item?;
        let d = t.required(&rec, line, "date")?;
        let date = NaiveDate::parse_from_str(d, "%Y-%m-%d")
            .map_err(|_| t.err(line, "date", format!("{d:?} is not a YYYY-MM-DD date")))?;
        let close = t.decimal(&rec, line, "close")?;
        if close <= Decimal::ZERO {
            return Err(t.err(line, "close", format!("{close} must be greater than zero")));
        }
        let symbol = t.required(&rec, line, "symbol")?.to_string();
        if out
            .entry(symbol.clone())
            .or_default()
            .insert(date, close)
            .is_some()
        {
            return Err(t.err(
                line,
                "date",
                format!("a second close for {symbol} on {date}"),
            ));
        }
    }
    Ok(out
        .into_iter()
        .map(|(s, m)| (s, m.into_iter().collect()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trades_parse_exactly_with_optional_columns() {
        let text = "ts,account,symbol,side,qty,price,fee,owner,lot_id\n2024-01-02,A,XYZ,buy,100,10.01,1.5,O,L1\n2024-01-03T15:00:00Z,A,XYZ,sell,40,12,0,,L1\n";
        let t = read_trades(text, "t.csv").unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].price.to_string(), "10.01");
        assert_eq!(t[0].owner, "O");
        assert_eq!(t[1].owner, "A", "owner defaults to the account");
        assert_eq!(t[1].lot_ids, vec!["L1"]);
        assert_eq!(t[0].date().to_string(), "2024-01-02");
    }

    // The trades reader resolves columns once and reuses one record buffer (issue 13): columns
    // in any order, case-insensitive sides, every timestamp form, and the zero/negative checks
    // must read as before.
    #[test]
    fn trades_read_with_columns_in_any_order_and_every_ts_form() {
        let text = "fee,lot_id,price,qty,side,symbol,account,ts\n\
            0,,10,1,BUY,X,A,2024-01-02\n\
            0.5,L9,10.5,2,Sell,X,A,2024-01-02T10:00:00+01:00\n\
            0.000,,9.99,3,buy,Y,B,2024-01-02T10:00:00.5\n\
            0,,9,4, sell ,Y,B,2024-01-02 11:00:00\n";
        let t = read_trades(text, "t.csv").unwrap();
        let got: Vec<String> = t
            .iter()
            .map(|t| {
                format!(
                    "{} {} {} {:?} {} {} {} {:?} {}",
                    t.ts, t.account, t.symbol, t.side, t.qty, t.price, t.fee, t.lot_ids, t.owner
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                "2024-01-02T00:00:00.000000000Z A X Buy 1 10 0 [] A",
                "2024-01-02T09:00:00.000000000Z A X Sell 2 10.5 0.5 [\"L9\"] A",
                "2024-01-02T10:00:00.500000000Z B Y Buy 3 9.99 0.000 [] B",
                "2024-01-02T11:00:00.000000000Z B Y Sell 4 9 0 [] B",
            ]
        );
        for (row, want) in [
            ("2024-01-02,A,X,buy,0,1,0", "column \"qty\""),
            ("2024-01-02,A,X,buy,-0,1,0", "column \"qty\""),
            ("2024-01-02,A,X,buy,1,0.00,0", "column \"price\""),
            ("2024-01-02,A,X,buy,1,-1,0", "column \"price\""),
            ("2024-01-02,A,X,buy,1,1,-0.01", "column \"fee\""),
            ("2024-01-02,A,X,,1,1,0", "column \"side\": missing value"),
            (
                "2024-01-02,,X,buy,1,1,0",
                "column \"account\": missing value",
            ),
        ] {
            let text = format!("ts,account,symbol,side,qty,price,fee\n{row}\n");
            let err = read_trades(&text, "t.csv").unwrap_err().to_string();
            assert!(err.contains(&format!("t.csv:2: {want}")), "{row}: {err}");
        }
        let ok = read_trades(
            "ts,account,symbol,side,qty,price,fee\n2024-01-02,A,X,buy,1,1,-0\n",
            "t.csv",
        );
        assert!(ok.is_ok(), "a fee of -0 is zero, not negative: {ok:?}");
    }

    #[test]
    fn errors_name_line_and_column() {
        let cases = [
            (
                "ts,account,symbol,side,qty,price\n",
                "missing column \"fee\"",
            ),
            (
                "ts,account,symbol,side,qty,price,fee\n2024-01-02,A,X,buy,abc,1,0\n",
                "t.csv:2: column \"qty\"",
            ),
            (
                "ts,account,symbol,side,qty,price,fee\n2024-01-02,A,X,hold,1,1,0\n",
                "t.csv:2: column \"side\"",
            ),
            (
                "ts,account,symbol,side,qty,price,fee\n2024-13-02,A,X,buy,1,1,0\n",
                "t.csv:2: column \"ts\"",
            ),
            (
                "ts,account,symbol,side,qty,price,fee\n2024-01-02,A,X,buy,1,1,0\n2024-01-01,A,X,buy,1,1,0\n",
                "t.csv:3: column \"ts\"",
            ),
            (
                "ts,account,symbol,side,qty,price,fee\n2024-01-02,A,X,buy,-1,1,0\n",
                "t.csv:2: column \"qty\"",
            ),
        ];
        for (text, want) in cases {
            let err = read_trades(text, "t.csv").unwrap_err().to_string();
            assert!(err.contains(want), "{text:?}: {err}");
        }
        let err = read_prices(
            "date,symbol,close\n2024-01-02,X,1\n2024-01-02,X,2\n",
            "p.csv",
        )
        .unwrap_err();
        assert!(err.to_string().contains("p.csv:3"), "{err}");
    }

    // Issue 10 item 7: position rows of one symbol add up with checked arithmetic; a sum past
    // the decimal range is an error naming the row, where `+=` used to panic.
    #[test]
    fn positions_that_overflow_decimal_are_an_error_not_a_panic() {
        let max = Decimal::MAX.to_string();
        let text = format!("symbol,qty\nX,{max}\nY,1\nX,1\n");
        let err = read_positions(&text, "p.csv").unwrap_err().to_string();
        assert!(
            err.contains("p.csv:4: column \"qty\"") && err.contains("exact decimal range"),
            "{err}"
        );
        let text = format!("symbol,qty\nX,-{max}\nX,{max}\nX,-1\n");
        let pos = read_positions(&text, "p.csv").expect("sums inside the range");
        assert_eq!(pos["X"], Decimal::NEGATIVE_ONE);
        // A quantity past the range is not a decimal at all.
        let err = read_trades(
            "ts,account,symbol,side,qty,price,fee\n2024-01-02,A,X,buy,79228162514264337593543950336,1,0\n",
            "t.csv",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("t.csv:2: column \"qty\""), "{err}");
    }

    const HEADER: &str = "ts,account,symbol,side,qty,price,fee,lot_id\n";

    // Issue 10 item 7: one endless line is refused, naming it, before it is held in memory;
    // a quoted field cannot dodge the limit by spanning lines. Lines under it parse.
    #[test]
    fn a_huge_line_is_refused_with_its_line_number() {
        let ok = "2024-01-02,A,X,buy,1,1,0,L1\n";
        let long = format!("2024-01-03,A,X,buy,1,1,0,{}\n", "L".repeat(MAX_LINE_BYTES));
        let text = format!("{HEADER}{ok}{ok}{long}{ok}");
        let err = read_trades(&text, "t.csv").unwrap_err();
        assert_eq!(
            err.to_string(),
            "t.csv:4: the record on this line is longer than 65536 bytes, the limit of a CSV line"
        );
        let quoted = format!(
            "2024-01-03,A,X,buy,1,1,0,\"{}\"\n",
            "L\n".repeat(MAX_LINE_BYTES)
        );
        let err = read_trades(&format!("{HEADER}{ok}{quoted}"), "t.csv").unwrap_err();
        assert!(err.to_string().starts_with("t.csv:3: the record"), "{err}");
        let header = format!("{}\n", "x".repeat(MAX_LINE_BYTES + 1));
        let err = read_prices(&header, "p.csv").unwrap_err();
        assert!(err.to_string().starts_with("p.csv:1: the record"), "{err}");

        // Just under the limit, and a quoted field over two lines (CRLF ends), parse.
        let ids = "L;".repeat((MAX_LINE_BYTES - 40) / 2);
        let near = format!("2024-01-03,A,X,sell,1,1,0,\"{ids}\"\r\n");
        let spans = "2024-01-04,\"A\r\nB\",X,buy,1,1,0,\"say \"\"hi\"\"\"\r\n";
        let t = read_trades(&format!("{HEADER}{ok}{near}{spans}"), "t.csv").expect("parses");
        assert_eq!(t[1].lot_ids.len(), (MAX_LINE_BYTES - 40) / 2);
        assert_eq!(t[2].account, "A\r\nB");
    }

    proptest::proptest! {
        /// The line-at-a-time scan and the byte-at-a-time walk agree on every chunk of every
        /// input: the same verdict, lines, record start, length and state.
        #[test]
        fn the_fast_scan_is_the_byte_walk(
            text in proptest::collection::vec(
                proptest::sample::select(vec![b'a', b',', b'"', b'\n', b'\r', b'x']), 0..200),
            cuts in proptest::collection::vec(0usize..200, 0..8),
            cap in 1usize..24,
        ) {
            let mut cuts: Vec<usize> = cuts.into_iter().filter(|&c| c <= text.len()).collect();
            cuts.push(text.len());
            cuts.sort_unstable();
            let (mut fast, mut walk) = (RecordCap::new((), cap), RecordCap::new((), cap));
            let mut from = 0;
            for to in cuts {
                let chunk = &text[from..to];
                from = to;
                let a = fast.scan(chunk);
                let b = chunk.iter().all(|&b| walk.step(b));
                proptest::prop_assert_eq!(a, b);
                if !a {
                    // Reading stops at the failure; the record it names must agree.
                    proptest::prop_assert_eq!(fast.record_line, walk.record_line);
                    break;
                }
                proptest::prop_assert_eq!(
                    (fast.line, fast.record_line, fast.len, fast.state),
                    (walk.line, walk.record_line, walk.len, walk.state)
                );
            }
        }
    }

    /// A reader that hands out one byte per call, as a slow pipe might.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let Some((&b, rest)) = self.0.split_first() else {
                return Ok(0);
            };
            if buf.is_empty() {
                return Ok(0);
            }
            buf[0] = b;
            self.0 = rest;
            Ok(1)
        }
    }

    // The streaming readers give what the text readers give, and their errors name the line
    // (here a bad byte sequence on line 3).
    #[test]
    fn streaming_readers_match_text_readers_and_name_lines() {
        let text = format!(
            "{HEADER}2024-01-02,A,X,buy,100,10.01,1.5,L1\n2024-01-03T15:00:00Z,A,X,sell,40,12,0,L1\n"
        );
        let streamed = read_trades_from(Trickle(text.as_bytes()), "t.csv").unwrap();
        assert_eq!(streamed, read_trades(&text, "t.csv").unwrap());
        let prices = "date,symbol,close\n2024-01-02,X,1\n2024-01-03,X,2\n";
        assert_eq!(
            read_prices_from(Trickle(prices.as_bytes()), "p.csv").unwrap(),
            read_prices(prices, "p.csv").unwrap()
        );
        let mut bad = b"symbol,price\nX,1\nY,".to_vec();
        bad.extend_from_slice(&[0xff, 0xfe, b'\n']);
        let err = read_marks_from(&bad[..], "m.csv").unwrap_err().to_string();
        assert!(err.starts_with("m.csv:3: "), "{err}");
        let err = read_positions_from(&b"symbol,qty\nX,1,2\n"[..], "q.csv")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("q.csv:2: "), "{err}");
    }
}
