//! The path of `trade2026 execq --events FILE --format json|csv` without the CLI around it:
//! read the NDJSON file into the batch engine, write the report to stdout. For profiling and
//! timing the CLI's work with a quick build of this crate only.
//!
//! `cargo run --release -p execq --example cli_path -- /tmp/events.ndjson json > /dev/null`
//! (`csv` for the CSV; a third argument `serde` reads through `interchange::NdjsonReader` and
//! writes the JSON through serde, as the CLI did before).
use std::io::{BufReader, BufWriter, Write};

use execq::{ExecQuality, Params, ReportFilter};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let path = args.get(1).map_or("/tmp/events.ndjson", String::as_str);
    let format = args.get(2).map_or("json", String::as_str);
    let old = args.get(3).is_some_and(|a| a == "serde");
    let file = BufReader::with_capacity(1 << 16, std::fs::File::open(path)?);
    let mut engine = ExecQuality::batch(Params::default())?;
    if old {
        for r in interchange::NdjsonReader::new(file, path) {
            engine.on_record(&r?);
        }
    } else {
        let mut reader = execq::RecordReader::new(file, path);
        while let Some(r) = reader.next_record() {
            engine.on_record(r?);
        }
    }
    let mut out = BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    match (format, old) {
        ("csv", _) => {
            out.write_all(execq::report_csv_header(engine.params()).as_bytes())?;
            if old {
                for row in engine.held_rows_iter(&ReportFilter::default()) {
                    out.write_all(execq::report_csv_line(&row).as_bytes())?;
                }
            } else {
                let mut line = Vec::new();
                engine.for_each_held_row(&ReportFilter::default(), |row| {
                    line.clear();
                    execq::write_report_csv_line(&mut line, row);
                    out.write_all(&line)
                })?;
            }
        }
        (_, true) => serde_json::to_writer_pretty(&mut out, &engine.report_streamed())?,
        (_, false) => engine.write_report_json(&mut out)?,
    }
    out.write_all(if format == "csv" { b"" } else { b"\n" })?;
    out.flush()?;
    Ok(())
}
