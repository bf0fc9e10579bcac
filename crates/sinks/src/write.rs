//! The batched write path: one transaction per batch, prepared statements reused across rows.

use rusqlite::{Transaction, params};

use model::{BookLevel, Event, InstrumentId, Side, Timestamp};

use crate::{AltRecord, SinkError, TickStore, WriteStats, seq_key};

impl TickStore {
    /// Stores the market-data events of a batch of journal records in one transaction.
    ///
    /// Ticks go to `trades` / `quotes` / `book_updates`, alt data to `bars` / `funding_rates`;
    /// other events (orders, fills, admin) are counted as ignored. Records whose seq is already
    /// stored are counted as duplicates and left unchanged, so replaying is safe. The resume
    /// point ([`TickStore::last_seq`]) advances to the highest seq in the batch, ignored events
    /// included.
    pub fn write_batch(&mut self, records: &[(u64, Event)]) -> Result<WriteStats, SinkError> {
        self.write_events(records.iter().map(|(seq, e)| (*seq, e)))
    }

    /// [`TickStore::write_batch`] over borrowed events (the journal consumer's deliveries).
    pub fn write_events<'a>(
        &mut self,
        records: impl IntoIterator<Item = (u64, &'a Event)>,
    ) -> Result<WriteStats, SinkError> {
        let tx = self.conn.transaction()?;
        let mut stats = WriteStats::default();
        let mut max_seq: Option<i64> = None;
        for (seq, event) in records {
            let seq = seq_key(seq)?;
            max_seq = max_seq.max(Some(seq));
            match insert_event(&tx, seq, event)? {
                Some((counter, true)) => *counter_mut(&mut stats, counter) += 1,
                Some((_, false)) => stats.duplicates += 1,
                None => stats.ignored += 1,
            }
        }
        if let Some(max_seq) = max_seq {
            advance(&tx, max_seq)?;
        }
        tx.commit()?;
        Ok(stats)
    }

    /// Stores non-tick series values that have no table of their own, keyed by journal seq
    /// like [`TickStore::write_batch`].
    pub fn write_alt_batch(
        &mut self,
        records: &[(u64, AltRecord)],
    ) -> Result<WriteStats, SinkError> {
        let tx = self.conn.transaction()?;
        let mut stats = WriteStats::default();
        let mut max_seq: Option<i64> = None;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT OR IGNORE INTO alt_series (seq, kind, venue, symbol, ts, payload)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for (seq, r) in records {
                let seq = seq_key(*seq)?;
                max_seq = max_seq.max(Some(seq));
                let n = stmt.execute(params![
                    seq,
                    r.kind,
                    r.instrument.venue.as_str(),
                    r.instrument.symbol.as_str(),
                    r.ts.as_nanos(),
                    r.payload.to_string(),
                ])?;
                if n == 1 {
                    stats.alt += 1;
                } else {
                    stats.duplicates += 1;
                }
            }
        }
        if let Some(max_seq) = max_seq {
            advance(&tx, max_seq)?;
        }
        tx.commit()?;
        Ok(stats)
    }
}

#[derive(Clone, Copy)]
enum Counter {
    Trades,
    Quotes,
    BookUpdates,
    Bars,
    FundingRates,
}

fn counter_mut(stats: &mut WriteStats, c: Counter) -> &mut usize {
    match c {
        Counter::Trades => &mut stats.trades,
        Counter::Quotes => &mut stats.quotes,
        Counter::BookUpdates => &mut stats.book_updates,
        Counter::Bars => &mut stats.bars,
        Counter::FundingRates => &mut stats.funding_rates,
    }
}

fn advance(tx: &Transaction<'_>, max_seq: i64) -> Result<(), SinkError> {
    // max(): replaying an old range must not move the resume point backwards.
    tx.prepare_cached(
        "INSERT INTO progress (id, last_seq) VALUES (1, ?1)
         ON CONFLICT (id) DO UPDATE SET last_seq = max(last_seq, excluded.last_seq)",
    )?
    .execute([max_seq])?;
    Ok(())
}

/// Inserts one event. `None` for non-market data; otherwise which table and whether a row was
/// written (false: the seq was already stored).
fn insert_event(
    tx: &Transaction<'_>,
    seq: i64,
    event: &Event,
) -> Result<Option<(Counter, bool)>, SinkError> {
    // Exhaustive on purpose: a new Event variant must decide here whether it is market data.
    let (counter, n) = match event {
        Event::Trade(t) => {
            let (venue, symbol) = names(&t.instrument);
            let n = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO trades
                     (seq, venue, symbol, ts, price, quantity, aggressor, trade_id)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )?
                .execute(params![
                    seq,
                    venue,
                    symbol,
                    t.ts.as_nanos(),
                    t.price.to_string(),
                    t.quantity.to_string(),
                    t.aggressor.map(side_text),
                    t.trade_id,
                ])?;
            (Counter::Trades, n)
        }
        Event::Quote(q) => {
            let (venue, symbol) = names(&q.instrument);
            let n = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO quotes
                     (seq, venue, symbol, ts, bid, bid_size, ask, ask_size)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )?
                .execute(params![
                    seq,
                    venue,
                    symbol,
                    q.ts.as_nanos(),
                    q.bid.to_string(),
                    q.bid_size.to_string(),
                    q.ask.to_string(),
                    q.ask_size.to_string(),
                ])?;
            (Counter::Quotes, n)
        }
        Event::BookSnapshot(b) => {
            let n = insert_book(
                tx,
                seq,
                &b.instrument,
                b.ts,
                true,
                &b.bids,
                &b.asks,
                None,
                b.sequence,
            )?;
            (Counter::BookUpdates, n)
        }
        Event::BookDelta(b) => {
            let n = insert_book(
                tx,
                seq,
                &b.instrument,
                b.ts,
                false,
                &b.bids,
                &b.asks,
                b.first_sequence,
                b.sequence,
            )?;
            (Counter::BookUpdates, n)
        }
        Event::Bar(b) => {
            let (venue, symbol) = names(&b.instrument);
            let n = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO bars
                     (seq, venue, symbol, interval, ts, start, open, high, low, close, volume, closed)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                )?
                .execute(params![
                    seq,
                    venue,
                    symbol,
                    b.interval,
                    b.ts.as_nanos(),
                    b.start.as_nanos(),
                    b.open.to_string(),
                    b.high.to_string(),
                    b.low.to_string(),
                    b.close.to_string(),
                    b.volume.to_string(),
                    b.closed,
                ])?;
            (Counter::Bars, n)
        }
        Event::FundingRate(f) => {
            let (venue, symbol) = names(&f.instrument);
            let n = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO funding_rates
                     (seq, venue, symbol, ts, rate, mark_price, next_funding)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?
                .execute(params![
                    seq,
                    venue,
                    symbol,
                    f.ts.as_nanos(),
                    f.rate.to_string(),
                    f.mark_price.map(|p| p.to_string()),
                    f.next_funding.map(Timestamp::as_nanos),
                ])?;
            (Counter::FundingRates, n)
        }
        Event::OrderSubmitted { .. }
        | Event::OrderAccepted { .. }
        | Event::OrderRejected { .. }
        | Event::OrderCanceled { .. }
        | Event::OrderExpired { .. }
        | Event::OrderFilled(_)
        | Event::OrderTriggered { .. }
        | Event::IdsReserved { .. }
        | Event::ConfigChanged { .. }
        | Event::ComplianceAlert { .. }
        | Event::AlertAcknowledged { .. } => return Ok(None),
    };
    Ok(Some((counter, n == 1)))
}

#[allow(clippy::too_many_arguments)] // one row's columns; a struct would only rename them
fn insert_book(
    tx: &Transaction<'_>,
    seq: i64,
    instrument: &InstrumentId,
    ts: Timestamp,
    is_snapshot: bool,
    bids: &[BookLevel],
    asks: &[BookLevel],
    first_sequence: Option<u64>,
    sequence: Option<u64>,
) -> Result<usize, SinkError> {
    let (venue, symbol) = names(instrument);
    let venue_seq = |v: Option<u64>| -> Result<Option<i64>, SinkError> {
        v.map(|v| {
            i64::try_from(v).map_err(|_| SinkError::OutOfRange {
                field: "book sequence",
                value: v,
            })
        })
        .transpose()
    };
    let n = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO book_updates
             (seq, venue, symbol, ts, is_snapshot, bids, asks, first_sequence, sequence)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?
        .execute(params![
            seq,
            venue,
            symbol,
            ts.as_nanos(),
            is_snapshot,
            levels_json(bids)?,
            levels_json(asks)?,
            venue_seq(first_sequence)?,
            venue_seq(sequence)?,
        ])?;
    Ok(n)
}

fn names(i: &InstrumentId) -> (&str, &str) {
    (i.venue.as_str(), i.symbol.as_str())
}

fn side_text(s: Side) -> &'static str {
    match s {
        Side::Buy => "buy",
        Side::Sell => "sell",
    }
}

/// `[{"price":"100.5","quantity":"2"}]`: the model's own serde form, decimals as strings.
fn levels_json(levels: &[BookLevel]) -> Result<String, SinkError> {
    Ok(serde_json::to_string(levels)?)
}
