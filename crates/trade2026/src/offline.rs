//! ClickHouse as the offline source of the batch tools (`features history --source
//! clickhouse`, `execq --source clickhouse`): the events the ClickHouse sink stored, rebuilt
//! exactly and in journal order, instead of the journal or an NDJSON file.

use std::time::Duration;

use anyhow::{Context, Result};

use crate::CommonArgs;

/// How long to wait for the server before saying it does not answer.
const READY_WAIT: Duration = Duration::from_secs(10);

/// `--source` values of `features history`.
pub const HISTORY_SOURCES: [&str; 2] = ["journal", "clickhouse"];
/// `--source` values of `execq`.
pub const EXECQ_SOURCES: [&str; 2] = ["file", "clickhouse"];

/// Every event stored in `clickhouse.database` at `clickhouse.http_url`, with its journal
/// sequence, in journal order: quotes, trades, order events and fills (what the sink stores).
pub fn clickhouse_events(common: &CommonArgs) -> Result<Vec<(u64, model::Event)>> {
    let cfg = crate::load_config(common)?.config;
    let client = clickhouse_sink::ClickHouseClient::new(&cfg.clickhouse)?;
    let where_ = format!(
        "reading events from ClickHouse database {} at {} (clickhouse.database, clickhouse.http_url)",
        client.database(),
        client.url()
    );
    let events = crate::runtime()?
        .block_on(async {
            client.wait_ready(READY_WAIT).await?;
            client
                .events(clickhouse_sink::EventRange::all())
                .read_all()
                .await
        })
        .context(where_)?;
    Ok(events.into_iter().map(|e| (e.seq, e.event)).collect())
}

/// Interchange records read one at a time (from an NDJSON file or ClickHouse).
pub type Records = Box<dyn Iterator<Item = Result<interchange::Record>>>;

/// Standard output through one large buffer: the batch tools write their reports row by row.
pub fn stdout_writer() -> std::io::BufWriter<std::io::StdoutLock<'static>> {
    std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock())
}

/// The interchange records of `execq`: from the NDJSON file (read as the iterator advances),
/// or (`--source clickhouse`) from the stored events exactly as `journal export --format
/// ndjson` makes them from the journal.
pub fn execq_records(
    source: &str,
    events: Option<&std::path::Path>,
    common: &CommonArgs,
) -> Result<Records> {
    match (source, events) {
        ("clickhouse", None) => {
            let mut exporter = interchange::Exporter::new();
            let mut records: Vec<interchange::Record> = clickhouse_events(common)?
                .iter()
                .filter_map(|(_, e)| exporter.export(e))
                .collect();
            // As `journal export`: journal order in, event-time order out (a stable sort).
            records.sort_by_key(|r| r.ts);
            Ok(Box::new(records.into_iter().map(Ok)))
        }
        ("clickhouse", Some(_)) => {
            anyhow::bail!("--events and --source clickhouse exclude each other")
        }
        (_, Some(path)) => crate::read_events(path),
        (_, None) => anyhow::bail!("--events FILE is required (or --source clickhouse)"),
    }
}
