//! Queries. Every range is half-open (`from <= t < to`) and results are in time order (ties in
//! journal order). `venue: None` matches the symbol on every venue.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate};
use rusqlite::{OptionalExtension, Row, params};

use model::{
    Bar, BookDelta, BookLevel, BookSnapshot, Decimal, FundingRate, InstrumentId, Price, Quantity,
    Quote, Side, Symbol, Timestamp, TradeTick, Venue,
};

use crate::{AltRecord, BookUpdate, SinkError, TickStore};

/// SQLite's `%` truncates toward zero; this floors so pre-1970 instants land on the right day.
const DAY_OF_TS: &str =
    "((ts - (((ts % 86400000000000) + 86400000000000) % 86400000000000)) / 86400000000000)";

impl TickStore {
    /// The highest journal seq this store has consumed (market data or not); 0 when empty.
    /// A restarted sink resumes reading the journal at `last_seq() + 1`.
    pub fn last_seq(&self) -> Result<u64, SinkError> {
        let seq: Option<i64> = self
            .conn
            .query_row("SELECT last_seq FROM progress WHERE id = 1", [], |r| {
                r.get(0)
            })
            .optional()?;
        // Stored from a u64 through seq_key, so never negative.
        Ok(seq.map_or(0, |s| u64::try_from(s).unwrap_or(0)))
    }

    /// Trades of `symbol` with `from <= ts < to`, oldest first, at most `limit`.
    pub fn trades(
        &self,
        symbol: &str,
        venue: Option<&str>,
        from: Timestamp,
        to: Timestamp,
        limit: usize,
    ) -> Result<Vec<TradeTick>, SinkError> {
        let sql = format!("SELECT {TRADE_COLS} FROM trades {IN_RANGE}");
        self.in_range(
            &sql,
            (symbol, venue, from, to, limit),
            raw_trade,
            decode_trade,
        )
    }

    /// The latest trade of `symbol` (greatest ts; ties broken by journal order).
    pub fn last_trade(
        &self,
        symbol: &str,
        venue: Option<&str>,
    ) -> Result<Option<TradeTick>, SinkError> {
        let sql = format!("SELECT {TRADE_COLS} FROM trades {LATEST}");
        self.latest(&sql, symbol, venue, raw_trade, decode_trade)
    }

    /// Quotes of `symbol` with `from <= ts < to`, oldest first, at most `limit`.
    pub fn quotes(
        &self,
        symbol: &str,
        venue: Option<&str>,
        from: Timestamp,
        to: Timestamp,
        limit: usize,
    ) -> Result<Vec<Quote>, SinkError> {
        let sql = format!("SELECT {QUOTE_COLS} FROM quotes {IN_RANGE}");
        self.in_range(
            &sql,
            (symbol, venue, from, to, limit),
            raw_quote,
            decode_quote,
        )
    }

    /// The latest quote of `symbol` (greatest ts; ties broken by journal order).
    pub fn last_quote(
        &self,
        symbol: &str,
        venue: Option<&str>,
    ) -> Result<Option<Quote>, SinkError> {
        let sql = format!("SELECT {QUOTE_COLS} FROM quotes {LATEST}");
        self.latest(&sql, symbol, venue, raw_quote, decode_quote)
    }

    /// Rows of one symbol (on one venue, or all) in `[from, to)`, in time order: `sql` ends
    /// in [`IN_RANGE`]; `raw` reads a row, `decode` turns it into its type.
    fn in_range<R, T>(
        &self,
        sql: &str,
        (symbol, venue, from, to, limit): (&str, Option<&str>, Timestamp, Timestamp, usize),
        raw: fn(&Row<'_>) -> rusqlite::Result<R>,
        decode: fn(R) -> Result<T, SinkError>,
    ) -> Result<Vec<T>, SinkError> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt.query_map(
            params![
                symbol,
                venue,
                from.as_nanos(),
                to.as_nanos(),
                sql_limit(limit)
            ],
            raw,
        )?;
        rows.map(|r| decode(r?)).collect()
    }

    /// The newest row of one symbol (on one venue, or all): `sql` ends in [`LATEST`].
    fn latest<R, T>(
        &self,
        sql: &str,
        symbol: &str,
        venue: Option<&str>,
        raw: fn(&Row<'_>) -> rusqlite::Result<R>,
        decode: fn(R) -> Result<T, SinkError>,
    ) -> Result<Option<T>, SinkError> {
        let found = self
            .conn
            .prepare_cached(sql)?
            .query_row(params![symbol, venue], raw)
            .optional()?;
        found.map(decode).transpose()
    }

    /// Book snapshots and deltas of `symbol` with `from <= ts < to`, in order, at most `limit`.
    pub fn book_updates(
        &self,
        symbol: &str,
        venue: Option<&str>,
        from: Timestamp,
        to: Timestamp,
        limit: usize,
    ) -> Result<Vec<BookUpdate>, SinkError> {
        let sql = format!("SELECT {BOOK_COLS} FROM book_updates {IN_RANGE}");
        self.in_range(
            &sql,
            (symbol, venue, from, to, limit),
            raw_book,
            decode_book,
        )
    }

    /// Bars of `symbol` and `interval` whose open time `start` is in `[from, to)`, by start
    /// (then venue). A candle journaled several times while live appears once, as its latest
    /// version (highest journal seq).
    pub fn bars(
        &self,
        symbol: &str,
        venue: Option<&str>,
        interval: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<Bar>, SinkError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, venue, symbol, interval, ts, start, open, high, low, close, volume, closed
             FROM bars b
             WHERE symbol = ?1 AND (?2 IS NULL OR venue = ?2) AND interval = ?3
               AND start >= ?4 AND start < ?5
               AND seq = (SELECT max(seq) FROM bars b2
                          WHERE b2.symbol = b.symbol AND b2.interval = b.interval
                            AND b2.start = b.start AND b2.venue = b.venue)
             ORDER BY start, venue",
        )?;
        let rows = stmt.query_map(
            params![symbol, venue, interval, from.as_nanos(), to.as_nanos()],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, i64>(5)?,
                    [
                        r.get::<_, String>(6)?,
                        r.get::<_, String>(7)?,
                        r.get::<_, String>(8)?,
                        r.get::<_, String>(9)?,
                    ],
                    r.get::<_, String>(10)?,
                    r.get::<_, bool>(11)?,
                ))
            },
        )?;
        rows.map(|r| {
            let (seq, venue, symbol, interval, ts, start, [o, h, l, c], volume, closed) = r?;
            let d = Decoder::new("bars", seq);
            Ok(Bar {
                instrument: d.instrument(venue, symbol)?,
                interval,
                open: d.parse("open", &o)?,
                high: d.parse("high", &h)?,
                low: d.parse("low", &l)?,
                close: d.parse("close", &c)?,
                volume: d.parse("volume", &volume)?,
                start: Timestamp::from_nanos(start),
                closed,
                ts: Timestamp::from_nanos(ts),
            })
        })
        .collect()
    }

    /// Funding rates of `symbol` with `from <= ts < to`, oldest first.
    pub fn funding_rates(
        &self,
        symbol: &str,
        venue: Option<&str>,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<FundingRate>, SinkError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, venue, symbol, ts, rate, mark_price, next_funding FROM funding_rates
             WHERE symbol = ?1 AND (?2 IS NULL OR venue = ?2) AND ts >= ?3 AND ts < ?4
             ORDER BY ts, seq",
        )?;
        let rows = stmt.query_map(
            params![symbol, venue, from.as_nanos(), to.as_nanos()],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, Option<String>>(5)?,
                    r.get::<_, Option<i64>>(6)?,
                ))
            },
        )?;
        rows.map(|r| {
            let (seq, venue, symbol, ts, rate, mark, next) = r?;
            let d = Decoder::new("funding_rates", seq);
            Ok(FundingRate {
                instrument: d.instrument(venue, symbol)?,
                rate: d.parse::<Decimal>("rate", &rate)?,
                mark_price: mark.map(|m| d.parse("mark_price", &m)).transpose()?,
                next_funding: next.map(Timestamp::from_nanos),
                ts: Timestamp::from_nanos(ts),
            })
        })
        .collect()
    }

    /// Values of the `kind` series for `symbol` with `from <= ts < to`, oldest first.
    pub fn alt_series(
        &self,
        kind: &str,
        symbol: &str,
        venue: Option<&str>,
        from: Timestamp,
        to: Timestamp,
        limit: usize,
    ) -> Result<Vec<AltRecord>, SinkError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, kind, venue, symbol, ts, payload FROM alt_series
             WHERE kind = ?1 AND symbol = ?2 AND (?3 IS NULL OR venue = ?3)
               AND ts >= ?4 AND ts < ?5
             ORDER BY ts, seq LIMIT ?6",
        )?;
        let rows = stmt.query_map(
            params![
                kind,
                symbol,
                venue,
                from.as_nanos(),
                to.as_nanos(),
                sql_limit(limit)
            ],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, String>(5)?,
                ))
            },
        )?;
        rows.map(|r| {
            let (seq, kind, venue, symbol, ts, payload) = r?;
            let d = Decoder::new("alt_series", seq);
            Ok(AltRecord {
                kind,
                instrument: d.instrument(venue, symbol)?,
                ts: Timestamp::from_nanos(ts),
                payload: serde_json::from_str(&payload).map_err(|e| d.corrupt("payload", e))?,
            })
        })
        .collect()
    }

    /// One closing price per UTC day from `from` to `to`, both days included, for VaR
    /// history: the day's last trade, or the mid of its last quote when it had no trade.
    /// Days with neither are absent. With `venue: None` the last print on any venue counts.
    pub fn daily_closes(
        &self,
        symbol: &str,
        venue: Option<&str>,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<(NaiveDate, Price)>, SinkError> {
        if from > to {
            return Ok(Vec::new());
        }
        let lo = day_start_nanos(from);
        let hi = to.succ_opt().map_or(i64::MAX, day_start_nanos);

        let last_per_day = |table: &str, cols: &str| {
            format!(
                "SELECT day, seq, {cols} FROM (
                   SELECT {DAY_OF_TS} AS day, seq, {cols},
                          row_number() OVER (PARTITION BY {DAY_OF_TS} ORDER BY ts DESC, seq DESC) AS rn
                   FROM {table}
                   WHERE symbol = ?1 AND (?2 IS NULL OR venue = ?2) AND ts >= ?3 AND ts < ?4)
                 WHERE rn = 1"
            )
        };

        let mut closes: BTreeMap<i64, Price> = BTreeMap::new();
        let mut stmt = self
            .conn
            .prepare_cached(&last_per_day("quotes", "bid, ask"))?;
        let rows = stmt.query_map(params![symbol, venue, lo, hi], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        })?;
        for r in rows {
            let (day, seq, bid, ask) = r?;
            let d = Decoder::new("quotes", seq);
            let bid: Price = d.parse("bid", &bid)?;
            let ask: Price = d.parse("ask", &ask)?;
            let mid = (bid.get() + ask.get()) / Decimal::TWO;
            closes.insert(day, Price::new(mid).map_err(|e| d.corrupt("mid", e))?);
        }
        // Trades second: a day's last trade replaces its quote mid.
        let mut stmt = self.conn.prepare_cached(&last_per_day("trades", "price"))?;
        let rows = stmt.query_map(params![symbol, venue, lo, hi], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        for r in rows {
            let (day, seq, price) = r?;
            closes.insert(day, Decoder::new("trades", seq).parse("price", &price)?);
        }

        closes
            .into_iter()
            .map(|(day, price)| {
                let date = day
                    .checked_mul(86_400)
                    .and_then(|secs| DateTime::from_timestamp(secs, 0))
                    .map(|dt| dt.date_naive())
                    .ok_or_else(|| SinkError::Corrupt {
                        table: "trades",
                        seq: 0,
                        reason: format!("day number {day} out of range"),
                    })?;
                Ok((date, price))
            })
            .collect()
    }
}

/// Nanoseconds at 00:00 UTC of `d`, clamped to the range a `Timestamp` can hold.
fn day_start_nanos(d: NaiveDate) -> i64 {
    let secs = d.and_time(chrono::NaiveTime::MIN).and_utc().timestamp();
    secs.checked_mul(1_000_000_000)
        .unwrap_or(if secs < 0 { i64::MIN } else { i64::MAX })
}

// Keep in step with `raw_trade` / `raw_quote`.
/// The end of a range query: one symbol (`?1`), on one venue or all (`?2`), `?3 <= ts < ?4`, in
/// time order (ties in journal order), at most `?5` rows.
const IN_RANGE: &str = "WHERE symbol = ?1 AND (?2 IS NULL OR venue = ?2) AND ts >= ?3 AND ts < ?4
     ORDER BY ts, seq LIMIT ?5";
/// The end of a latest-row query: greatest ts, ties broken by journal order.
const LATEST: &str =
    "WHERE symbol = ?1 AND (?2 IS NULL OR venue = ?2) ORDER BY ts DESC, seq DESC LIMIT 1";
const BOOK_COLS: &str = "seq, venue, symbol, ts, is_snapshot, bids, asks, first_sequence, sequence";
const TRADE_COLS: &str = "seq, venue, symbol, ts, price, quantity, aggressor, trade_id";
const QUOTE_COLS: &str = "seq, venue, symbol, ts, bid, bid_size, ask, ask_size";

type RawTrade = (
    i64,
    String,
    String,
    i64,
    String,
    String,
    Option<String>,
    String,
);
type RawQuote = (i64, String, String, i64, [String; 4]);

fn raw_trade(r: &Row<'_>) -> rusqlite::Result<RawTrade> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
    ))
}

fn raw_quote(r: &Row<'_>) -> rusqlite::Result<RawQuote> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        [r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?],
    ))
}

fn decode_trade(raw: RawTrade) -> Result<TradeTick, SinkError> {
    let (seq, venue, symbol, ts, price, quantity, aggressor, trade_id) = raw;
    let d = Decoder::new("trades", seq);
    Ok(TradeTick {
        instrument: d.instrument(venue, symbol)?,
        price: d.parse("price", &price)?,
        quantity: d.parse("quantity", &quantity)?,
        aggressor: aggressor.map(|a| d.side(&a)).transpose()?,
        trade_id,
        ts: Timestamp::from_nanos(ts),
    })
}

fn decode_quote(raw: RawQuote) -> Result<Quote, SinkError> {
    let (seq, venue, symbol, ts, [bid, bid_size, ask, ask_size]) = raw;
    let d = Decoder::new("quotes", seq);
    Ok(Quote {
        instrument: d.instrument(venue, symbol)?,
        bid: d.parse("bid", &bid)?,
        bid_size: d.parse::<Quantity>("bid_size", &bid_size)?,
        ask: d.parse("ask", &ask)?,
        ask_size: d.parse::<Quantity>("ask_size", &ask_size)?,
        ts: Timestamp::from_nanos(ts),
    })
}

type RawBook = (
    i64,
    String,
    String,
    i64,
    bool,
    String,
    String,
    Option<i64>,
    Option<i64>,
);

fn raw_book(r: &Row<'_>) -> rusqlite::Result<RawBook> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
    ))
}

fn decode_book(raw: RawBook) -> Result<BookUpdate, SinkError> {
    let (seq, venue, symbol, ts, is_snapshot, bids, asks, first, last) = raw;
    let d = Decoder::new("book_updates", seq);
    let instrument = d.instrument(venue, symbol)?;
    let bids = d.levels(&bids)?;
    let asks = d.levels(&asks)?;
    let ts = Timestamp::from_nanos(ts);
    let sequence = d.venue_seq(last)?;
    Ok(if is_snapshot {
        BookUpdate::Snapshot(BookSnapshot {
            instrument,
            bids,
            asks,
            sequence,
            ts,
        })
    } else {
        BookUpdate::Delta(BookDelta {
            instrument,
            bids,
            asks,
            first_sequence: d.venue_seq(first)?,
            sequence,
            ts,
        })
    })
}

fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// Turns stored text back into checked model values, naming the row when it cannot.
struct Decoder {
    table: &'static str,
    seq: i64,
}

impl Decoder {
    fn new(table: &'static str, seq: i64) -> Self {
        Decoder { table, seq }
    }

    fn corrupt(&self, column: &str, e: impl Display) -> SinkError {
        SinkError::Corrupt {
            table: self.table,
            seq: self.seq,
            reason: format!("{column}: {e}"),
        }
    }

    fn parse<T: FromStr>(&self, column: &str, text: &str) -> Result<T, SinkError>
    where
        T::Err: Display,
    {
        text.parse().map_err(|e| self.corrupt(column, e))
    }

    fn instrument(&self, venue: String, symbol: String) -> Result<InstrumentId, SinkError> {
        Ok(InstrumentId::new(
            Venue::new(venue).map_err(|e| self.corrupt("venue", e))?,
            Symbol::new(symbol).map_err(|e| self.corrupt("symbol", e))?,
        ))
    }

    fn side(&self, text: &str) -> Result<Side, SinkError> {
        match text {
            "buy" => Ok(Side::Buy),
            "sell" => Ok(Side::Sell),
            other => Err(self.corrupt("aggressor", format!("unknown side {other:?}"))),
        }
    }

    fn levels(&self, json: &str) -> Result<Vec<BookLevel>, SinkError> {
        serde_json::from_str(json).map_err(|e| self.corrupt("levels", e))
    }

    fn venue_seq(&self, v: Option<i64>) -> Result<Option<u64>, SinkError> {
        v.map(|v| u64::try_from(v).map_err(|e| self.corrupt("sequence", e)))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NANOS_PER_DAY: i64 = 86_400_000_000_000;

    #[test]
    fn days_start_at_utc_midnight() {
        let d = NaiveDate::from_ymd_opt(2024, 1, 2).unwrap();
        assert_eq!(day_start_nanos(d), 1_704_153_600 * 1_000_000_000);
        assert_eq!(day_start_nanos(d) % NANOS_PER_DAY, 0);
    }
}
