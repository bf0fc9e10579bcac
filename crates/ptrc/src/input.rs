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

use std::collections::BTreeMap;

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

fn reader<'a>(
    text: &'a str,
    source: &'a str,
    required: &[&str],
) -> Result<(csv::Reader<&'a [u8]>, Table<'a>), PtrcError> {
    let mut rdr = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(false)
        .from_reader(text.as_bytes());
    let headers = rdr.headers().map_err(|e| PtrcError::BadInput {
        source_name: source.to_string(),
        reason: format!("cannot read the header line: {e}"),
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

fn records<'a>(
    rdr: &'a mut csv::Reader<&[u8]>,
    t: &'a Table<'_>,
) -> impl Iterator<Item = Result<(u64, csv::StringRecord), PtrcError>> + 'a {
    rdr.records().map(move |r| {
        let rec = r.map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            t.err(line, "", e.to_string())
        })?;
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        Ok((line, rec))
    })
}

/// Parse `2024-03-01` (00:00 UTC) or an RFC 3339 datetime (offset optional, UTC if absent).
pub fn parse_ts(text: &str) -> Option<Timestamp> {
    if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return d
            .and_hms_opt(0, 0, 0)?
            .and_utc()
            .timestamp_nanos_opt()
            .map(Timestamp::from_nanos);
    }
    if let Ok(t) = Timestamp::parse_rfc3339(text) {
        return Some(t);
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
    let required = ["ts", "account", "symbol", "side", "qty", "price", "fee"];
    let (mut rdr, t) = reader(text, source, &required)?;
    let mut out: Vec<Trade> = Vec::new();
    for item in records(&mut rdr, &t) {
        let (line, rec) = item?;
        let ts_text = t.required(&rec, line, "ts")?;
        let ts = parse_ts(ts_text).ok_or_else(|| {
            t.err(
                line,
                "ts",
                format!("{ts_text:?} is not an ISO-8601 date or datetime"),
            )
        })?;
        let side = match t
            .required(&rec, line, "side")?
            .to_ascii_lowercase()
            .as_str()
        {
            "buy" => Side::Buy,
            "sell" => Side::Sell,
            other => return Err(t.err(line, "side", format!("{other:?} is not buy or sell"))),
        };
        let qty = t.decimal(&rec, line, "qty")?;
        if qty <= Decimal::ZERO {
            return Err(t.err(line, "qty", format!("{qty} must be greater than zero")));
        }
        let price = t.decimal(&rec, line, "price")?;
        if price <= Decimal::ZERO {
            return Err(t.err(line, "price", format!("{price} must be greater than zero")));
        }
        let fee = t.decimal(&rec, line, "fee")?;
        if fee < Decimal::ZERO {
            return Err(t.err(line, "fee", format!("{fee} must not be negative")));
        }
        let account = t.required(&rec, line, "account")?.to_string();
        let owner = t
            .get(&rec, "owner")
            .filter(|o| !o.is_empty())
            .map_or_else(|| account.clone(), str::to_string);
        let lot_ids = t
            .get(&rec, "lot_id")
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
            symbol: t.required(&rec, line, "symbol")?.to_string(),
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
    let (mut rdr, t) = reader(text, source, &["symbol", "price"])?;
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

/// `symbol,qty`: signed position per symbol.
pub fn read_positions(text: &str, source: &str) -> Result<BTreeMap<String, Decimal>, PtrcError> {
    let (mut rdr, t) = reader(text, source, &["symbol", "qty"])?;
    let mut out = BTreeMap::new();
    for item in records(&mut rdr, &t) {
        let (line, rec) = item?;
        let qty = t.decimal(&rec, line, "qty")?;
        *out.entry(t.required(&rec, line, "symbol")?.to_string())
            .or_default() += qty;
    }
    Ok(out)
}

/// Daily closes per symbol, each series sorted by date.
pub type PriceHistory = BTreeMap<String, Vec<(NaiveDate, Decimal)>>;

/// `date,symbol,close`, any row order; a repeated (date, symbol) is an error.
pub fn read_prices(text: &str, source: &str) -> Result<PriceHistory, PtrcError> {
    let (mut rdr, t) = reader(text, source, &["date", "symbol", "close"])?;
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
}
