//! The event interchange format: one JSON object per line.
//!
//! `ts` (ISO-8601 UTC), `kind` = `order_new` | `order_cancel` | `fill` | `quote` | `trade`, and
//! where they apply `account`, `owner`, `symbol`, `side`, `qty`, `price` (null for a market
//! order), `order_id`, `order_type`, `tif`, `trade_id`, `fill_id`, `liquidity`, `bid`, `ask`,
//! `bid_size`, `ask_size`, `fee` and `decision_price`. Fields that do not apply may be absent or
//! null. Numbers are exact decimals (JSON numbers or strings on input, strings on output).
//!
//! The offline commands (`trade2026 execq`, `trade2026 surveil`) read this format, and
//! `trade2026 journal export --format ndjson` writes the platform's own history in it
//! ([`Exporter`]), so both run on real platform history.
//!
//! The [`Exporter`] is a streaming state machine fed the live journal by the services: it is
//! serde-serializable for snapshots (restoring one and continuing exports exactly what the
//! uninterrupted exporter would), and its state is bounded by the orders open at a time, not by
//! the orders ever placed (see [`Exporter`] for the bound).

use std::collections::BTreeMap;
use std::io::{BufRead, Read};

use model::{Decimal, Event, Liquidity, Side, Timestamp};
use serde::{Deserialize, Serialize};
use thiserror::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    OrderNew,
    OrderCancel,
    Fill,
    Quote,
    Trade,
}

/// One interchange record. Optional fields are omitted from the output when absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub ts: Timestamp,
    pub kind: Kind,
    pub symbol: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Beneficial owner; surveillance links accounts through it. Defaults to the account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub side: Option<Side>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_decimal")]
    pub qty: Option<Decimal>,
    /// Limit price on `order_new` (null for a market order), execution price on `fill`/`trade`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_decimal")]
    pub price: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    /// `market`, `limit`, `stop`, `stop_limit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_type: Option<String>,
    /// `gtc`, `ioc`, `fok`, `day`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tif: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trade_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fill_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liquidity: Option<Liquidity>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_decimal")]
    pub bid: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_decimal")]
    pub ask: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_decimal")]
    pub bid_size: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_decimal")]
    pub ask_size: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_decimal")]
    pub fee: Option<Decimal>,
    /// Price when the trading decision was made (implementation shortfall), on `order_new`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_decimal")]
    pub decision_price: Option<Decimal>,
}

impl Record {
    /// A record of `kind` for `symbol` at `ts` with every optional field empty.
    pub fn new(ts: Timestamp, kind: Kind, symbol: impl Into<String>) -> Record {
        Record {
            ts,
            kind,
            symbol: symbol.into(),
            account: None,
            owner: None,
            side: None,
            qty: None,
            price: None,
            order_id: None,
            order_type: None,
            tif: None,
            trade_id: None,
            fill_id: None,
            liquidity: None,
            bid: None,
            ask: None,
            bid_size: None,
            ask_size: None,
            fee: None,
            decision_price: None,
        }
    }

    /// The owner, falling back to the account when the file gives none.
    pub fn owner_or_account(&self) -> Option<&str> {
        self.owner.as_deref().or(self.account.as_deref())
    }
}

/// Exact decimals: accept JSON numbers and strings, write strings.
mod opt_decimal {
    use model::Decimal;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.collect_str(&d.normalize()),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
        Option::<Decimal>::deserialize(d)
    }
}

#[derive(Debug, Error)]
pub enum InterchangeError {
    #[error("{source_name}:{line}: {reason}")]
    BadLine {
        source_name: String,
        line: usize,
        reason: String,
    },
    #[error("{source_name}: {source}")]
    Io {
        source_name: String,
        #[source]
        source: std::io::Error,
    },
}

/// The longest NDJSON line read (a record is a few hundred bytes; a longer line is not one).
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// Read NDJSON records; a bad line is an error naming the source and line. Blank lines are
/// skipped. Records must be in time order (the computations are streaming).
pub fn read_ndjson(
    reader: impl BufRead,
    source_name: &str,
) -> Result<Vec<Record>, InterchangeError> {
    NdjsonReader::new(reader, source_name).collect()
}

/// The lines of an interchange NDJSON input, for the readers that turn them into records
/// ([`NdjsonReader`], and the batch CLI's reader that reuses one record): blank lines skipped,
/// a line longer than [`MAX_LINE_BYTES`] refused, records held to time order, every error
/// naming the source and the line.
pub struct NdjsonLines<R> {
    reader: R,
    source_name: String,
    line: usize,
    buf: Vec<u8>,
    last_ts: Option<Timestamp>,
}

impl<R: BufRead> NdjsonLines<R> {
    pub fn new(reader: R, source_name: &str) -> Self {
        NdjsonLines {
            reader,
            source_name: source_name.to_string(),
            line: 0,
            buf: Vec::new(),
            last_ts: None,
        }
    }

    /// An error about the current line.
    pub fn bad(&self, reason: String) -> InterchangeError {
        InterchangeError::BadLine {
            source_name: self.source_name.clone(),
            line: self.line,
            reason,
        }
    }

    /// Moves to the next line that is not blank (read with [`Self::line`]); `false` at the
    /// end of the input.
    pub fn advance(&mut self) -> Result<bool, InterchangeError> {
        loop {
            self.buf.clear();
            self.line += 1;
            let limit = u64::try_from(MAX_LINE_BYTES).unwrap_or(u64::MAX) + 1;
            let read = (&mut self.reader)
                .take(limit)
                .read_until(b'\n', &mut self.buf)
                .map_err(|source| InterchangeError::Io {
                    source_name: self.source_name.clone(),
                    source,
                })?;
            if read == 0 {
                return Ok(false);
            }
            if self.buf.last() == Some(&b'\n') {
                self.buf.pop();
            } else if self.buf.len() > MAX_LINE_BYTES {
                return Err(self.bad(format!(
                    "line is longer than {MAX_LINE_BYTES} bytes (is this NDJSON?)"
                )));
            }
            if !self.buf.iter().all(u8::is_ascii_whitespace) {
                return Ok(true);
            }
        }
    }

    /// The current line, without its newline.
    pub fn line(&self) -> &[u8] {
        &self.buf
    }

    /// Accepts the current line's record time: an error when it is earlier than the one
    /// before (the computations are streaming).
    pub fn in_order(&mut self, ts: Timestamp) -> Result<(), InterchangeError> {
        if let Some(prev) = self.last_ts
            && ts < prev
        {
            return Err(self.bad(format!(
                "ts {ts} is earlier than the previous record's {prev}"
            )));
        }
        self.last_ts = Some(ts);
        Ok(())
    }
}

/// NDJSON records one at a time, for inputs of any length in bounded memory: a line longer
/// than [`MAX_LINE_BYTES`], a line that is not a record, or a record earlier than the one
/// before it is an error naming the source and line (and ends the iteration).
pub struct NdjsonReader<R> {
    lines: NdjsonLines<R>,
    failed: bool,
}

impl<R: BufRead> NdjsonReader<R> {
    pub fn new(reader: R, source_name: &str) -> Self {
        NdjsonReader {
            lines: NdjsonLines::new(reader, source_name),
            failed: false,
        }
    }

    fn next_record(&mut self) -> Result<Option<Record>, InterchangeError> {
        if !self.lines.advance()? {
            return Ok(None);
        }
        let rec: Record =
            serde_json::from_slice(self.lines.line()).map_err(|e| self.lines.bad(e.to_string()))?;
        self.lines.in_order(rec.ts)?;
        Ok(Some(rec))
    }
}

impl<R: BufRead> Iterator for NdjsonReader<R> {
    type Item = Result<Record, InterchangeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let next = self.next_record().transpose();
        self.failed = matches!(next, Some(Err(_)));
        next
    }
}

/// An accepted order's remaining quantity and what its `order_cancel` record needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct OpenOrder {
    leaves: Decimal,
    account: String,
    symbol: String,
    side: Side,
}

/// The `order_new` record of an order submitted but not yet accepted. Kept as plain fields
/// (decimals with their scale) rather than a [`Record`], whose serde form normalizes decimals:
/// a restored exporter must give exactly the records of an uninterrupted one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct NewOrder {
    ts: Timestamp,
    account: String,
    symbol: String,
    side: Side,
    qty: Decimal,
    price: Option<Decimal>,
    order_id: String,
    order_type: Option<String>,
    tif: Option<String>,
}

impl NewOrder {
    fn record(self) -> Record {
        let mut r = Record::new(self.ts, Kind::OrderNew, self.symbol);
        r.account = Some(self.account);
        r.side = Some(self.side);
        r.qty = Some(self.qty);
        r.price = self.price;
        r.order_id = Some(self.order_id);
        r.order_type = self.order_type;
        r.tif = self.tif;
        r
    }
}

/// Sizes of the exporter's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExporterStats {
    /// Orders submitted and not yet finished (filled, cancelled, expired or rejected).
    pub open_orders: usize,
    /// Orders submitted and not yet accepted or rejected.
    pub unaccepted: usize,
}

/// Turns the platform's journal events into interchange records, keeping the order state it
/// needs (the quantity a cancel or expiry removes is the order's remaining quantity).
///
/// Serializable (serde) for snapshots: serialize, deserialize and keep exporting gives exactly
/// the records and the state of exporting without interruption; the form is canonical (maps
/// ordered by order id). [`Exporter::SNAPSHOT_VERSION`] names the layout.
///
/// Memory: one entry per order between its submission and its end (completely filled,
/// cancelled, expired or rejected), and the `order_new` of an order only between its submission
/// and its acceptance (the same engine decision). So the state is bounded by the number of open
/// orders, which the risk limits (`max_open_orders` per account) bound, not by the number of
/// orders ever placed. An order that never ends (a resting GTC order) is kept, because its
/// eventual cancel must carry its remaining quantity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exporter {
    leaves: BTreeMap<u64, OpenOrder>,
    /// `order_new` records held until the order is accepted: a rejected order never entered
    /// the market, so it must not count as ordered shares or as a resting order.
    unaccepted: BTreeMap<u64, NewOrder>,
}

impl Exporter {
    /// Version of the snapshot layout (the serde form of `Exporter`), bumped when it changes.
    pub const SNAPSHOT_VERSION: u32 = 1;

    pub fn new() -> Self {
        Self::default()
    }

    pub fn stats(&self) -> ExporterStats {
        ExporterStats {
            open_orders: self.leaves.len(),
            unaccepted: self.unaccepted.len(),
        }
    }

    /// The record for one journal event, if it has an interchange form. An order's
    /// `order_new` comes out when the order is accepted (stamped with its receipt time); a
    /// rejected order produces nothing. Book snapshots/deltas, bars and config changes have none.
    pub fn export(&mut self, event: &Event) -> Option<Record> {
        match event {
            Event::Quote(q) => {
                let mut r = Record::new(q.ts, Kind::Quote, q.instrument.symbol.as_str());
                r.bid = Some(q.bid.get());
                r.ask = Some(q.ask.get());
                r.bid_size = Some(q.bid_size.get());
                r.ask_size = Some(q.ask_size.get());
                Some(r)
            }
            Event::Trade(t) => {
                let mut r = Record::new(t.ts, Kind::Trade, t.instrument.symbol.as_str());
                r.price = Some(t.price.get());
                r.qty = Some(t.quantity.get());
                r.side = t.aggressor;
                r.trade_id = Some(t.trade_id.clone());
                Some(r)
            }
            Event::OrderSubmitted { order } => {
                self.leaves.insert(
                    order.order_id.0,
                    OpenOrder {
                        leaves: order.quantity.get(),
                        account: order.account.to_string(),
                        symbol: order.instrument.symbol.to_string(),
                        side: order.side,
                    },
                );
                let name = |v: serde_json::Result<serde_json::Value>| {
                    v.ok().and_then(|v| v.as_str().map(str::to_string))
                };
                self.unaccepted.insert(
                    order.order_id.0,
                    NewOrder {
                        ts: order.created_at,
                        account: order.account.to_string(),
                        symbol: order.instrument.symbol.to_string(),
                        side: order.side,
                        qty: order.quantity.get(),
                        price: order.price.map(|p| p.get()),
                        order_id: order.order_id.to_string(),
                        order_type: name(serde_json::to_value(order.order_type)),
                        tif: name(serde_json::to_value(order.time_in_force)),
                    },
                );
                None
            }
            Event::OrderAccepted { order_id, .. } => {
                self.unaccepted.remove(&order_id.0).map(NewOrder::record)
            }
            Event::OrderFilled(f) => {
                if let Some(entry) = self.leaves.get_mut(&f.order_id.0) {
                    entry.leaves -= f.quantity.get();
                    if entry.leaves <= Decimal::ZERO {
                        // Completely filled: nothing left to cancel, forget the order.
                        self.leaves.remove(&f.order_id.0);
                    }
                }
                let mut r = Record::new(f.ts, Kind::Fill, f.instrument.symbol.as_str());
                r.account = Some(f.account.to_string());
                r.side = Some(f.side);
                r.qty = Some(f.quantity.get());
                r.price = Some(f.price.get());
                r.order_id = Some(f.order_id.to_string());
                r.fill_id = Some(f.fill_id.to_string());
                r.liquidity = Some(f.liquidity);
                r.fee = Some(f.fee.get());
                Some(r)
            }
            Event::OrderCanceled { order_id, ts, .. }
            | Event::OrderExpired { order_id, ts, .. } => {
                let o = self.leaves.remove(&order_id.0)?;
                let mut r = Record::new(*ts, Kind::OrderCancel, o.symbol);
                r.account = Some(o.account);
                r.side = Some(o.side);
                r.qty = Some(o.leaves);
                r.order_id = Some(order_id.to_string());
                Some(r)
            }
            Event::OrderRejected { order_id, .. } => {
                self.leaves.remove(&order_id.0);
                self.unaccepted.remove(&order_id.0);
                None
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_numbers_and_strings_exactly_and_names_bad_lines() {
        let text = r#"{"ts":"2024-01-02T14:30:00Z","kind":"quote","symbol":"XYZ","bid":10.00,"ask":"10.02","bid_size":100,"ask_size":200}
{"ts":"2024-01-02T14:30:01.5Z","kind":"order_new","account":"A1","owner":"O1","symbol":"XYZ","side":"buy","qty":100,"price":null,"order_id":"o1","order_type":"market","tif":"day","decision_price":"9.99"}

{"ts":"2024-01-02T14:30:02Z","kind":"fill","account":"A1","symbol":"XYZ","side":"buy","qty":"100","price":"10.01","order_id":"o1","fill_id":"f1","liquidity":"taker","fee":"0.1"}
"#;
        let recs = read_ndjson(text.as_bytes(), "events.ndjson").unwrap();
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[0].bid, Some("10".parse().unwrap()));
        assert_eq!(recs[1].price, None);
        assert_eq!(recs[1].owner_or_account(), Some("O1"));
        assert_eq!(recs[2].price, Some("10.01".parse().unwrap()));
        assert_eq!(recs[2].liquidity, Some(Liquidity::Taker));
        let out = serde_json::to_string(&recs[2]).unwrap();
        assert!(out.contains(r#""price":"10.01""#), "{out}");
        assert!(!out.contains("bid"), "absent fields are omitted: {out}");

        let err = read_ndjson("{\"ts\":\"x\"}\n".as_bytes(), "e.ndjson").unwrap_err();
        assert!(err.to_string().starts_with("e.ndjson:1:"), "{err}");
        let backwards = "{\"ts\":\"2024-01-02T00:00:01Z\",\"kind\":\"trade\",\"symbol\":\"X\"}\n{\"ts\":\"2024-01-02T00:00:00Z\",\"kind\":\"trade\",\"symbol\":\"X\"}\n";
        let err = read_ndjson(backwards.as_bytes(), "e").unwrap_err();
        assert!(err.to_string().contains("e:2: ts"), "{err}");
    }

    #[test]
    fn an_endless_line_is_refused_without_reading_it_whole() {
        let mut text =
            "{\"ts\":\"2024-01-02T00:00:01Z\",\"kind\":\"trade\",\"symbol\":\"X\"}\n".to_string();
        text.push_str(&"x".repeat(MAX_LINE_BYTES + 10));
        let mut it = NdjsonReader::new(text.as_bytes(), "big");
        assert!(it.next().unwrap().is_ok());
        let err = it.next().unwrap().unwrap_err();
        assert!(
            err.to_string().starts_with("big:2: line is longer"),
            "{err}"
        );
        assert!(it.next().is_none(), "an error ends the iteration");
    }
}
