//! Rough write/read throughput of the market-data store (not a test; nothing is asserted).
//!
//! `cargo run --release -p sinks --example write_rate -- [events] [batch]`

use std::time::Instant;

use model::{
    Event, InstrumentId, Price, Quantity, Quote, Side, Symbol, Timestamp, TradeTick, Venue,
};
use sinks::TickStore;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: u64 = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(500_000);
    let batch: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1_000);

    let dir = std::env::temp_dir().join(format!("sinks-write-rate-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut store = TickStore::open(dir.join("marketdata.db"))?;

    let symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT"];
    let instruments: Vec<InstrumentId> = symbols
        .iter()
        .map(|s| Ok(InstrumentId::new(Venue::new("sim")?, Symbol::new(*s)?)))
        .collect::<Result<_, model::ModelError>>()?;
    let t0 = 1_700_000_000_000_000_000i64;
    let event = |seq: u64| -> Result<Event, model::ModelError> {
        let instrument = instruments[(seq % 5) as usize].clone();
        let ts = Timestamp::from_nanos(t0 + seq as i64 * 1_000_000);
        let cents = 6_500_000 + (seq % 1000) as i64;
        let price = Price::new(model::Decimal::new(cents, 2))?;
        Ok(if seq.is_multiple_of(2) {
            Event::Trade(TradeTick {
                instrument,
                price,
                quantity: Quantity::parse("0.015")?,
                aggressor: Some(Side::Buy),
                trade_id: seq.to_string(),
                ts,
            })
        } else {
            Event::Quote(Quote {
                instrument,
                bid: price,
                bid_size: Quantity::parse("1.2")?,
                ask: Price::new(price.get() + model::Decimal::new(1, 2))?,
                ask_size: Quantity::parse("0.8")?,
                ts,
            })
        })
    };

    let records: Vec<(u64, Event)> = (1..=n)
        .map(|s| Ok((s, event(s)?)))
        .collect::<Result<_, model::ModelError>>()?;
    let start = Instant::now();
    for chunk in records.chunks(batch) {
        store.write_batch(chunk)?;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "write: {n} events in batches of {batch}: {secs:.2}s, {:.0} rows/s",
        n as f64 / secs
    );

    let start = Instant::now();
    let again = store.write_batch(&records[..records.len().min(100_000)])?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "replay: {} duplicates skipped in {secs:.2}s, {:.0} rows/s",
        again.duplicates,
        again.duplicates as f64 / secs
    );

    let start = Instant::now();
    let mut rows = 0;
    for (i, s) in symbols.iter().enumerate() {
        let from = Timestamp::from_nanos(t0 + i as i64 * 1_000_000_000);
        let to = Timestamp::from_nanos(from.as_nanos() + 60_000_000_000);
        rows += store.trades(s, None, from, to, 100_000)?.len();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "read: {rows} trades over 5 one-minute ranges in {secs:.3}s, {:.0} rows/s",
        rows as f64 / secs
    );

    drop(store);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
