//! What `trade2026 ptrc tax --trades <csv> --year <y> --format csv|json` does, without the
//! binary (a release build of the whole binary takes most of an hour on a 2-core machine):
//! read the trades, stream the Form 8949 rows to stdout, Part II and the washes through
//! temporary files. For profiling and for timing the CLI path of one crate.
//! Run: `cargo run --release -p ptrc --example tax_cli -- <trades.csv> <year> [csv|json] > out`.

use std::io::{BufReader, BufWriter, Write};

use ptrc::tax::{TaxFormat, TaxSettings, TaxStream, form_8949_to};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(path), Some(year)) = (args.get(1), args.get(2)) else {
        return Err("usage: tax_cli <trades.csv> <year> [csv|json]".into());
    };
    let format = match args.get(3).map(String::as_str) {
        Some("json") => TaxFormat::Json,
        _ => TaxFormat::Csv,
    };
    let trades = ptrc::input::read_trades_from(BufReader::new(std::fs::File::open(path)?), path)?;
    let out = BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let (part2, washes) = (tempfile::tempfile()?, tempfile::tempfile()?);
    let mut stream = TaxStream::new(format, year.parse()?, None, out, part2, washes)?;
    let summary = form_8949_to(
        &trades,
        year.parse()?,
        &TaxSettings::default(),
        None,
        &mut stream,
    )?;
    stream.finish(&summary)?.flush()?;
    Ok(())
}
