//! The `trade2026` command. Thin by design: parse arguments, load config, call into the
//! libraries, turn errors into a message and a nonzero exit code.
// The argument structs' doc comments are the CLI's help text, written for a terminal
// (`<data dir>`, `TRADE2026_<SECTION>__<KEY>`), not rustdoc markup.
#![allow(rustdoc::invalid_html_tags, rustdoc::broken_intra_doc_links)]

use std::io::Write;
use std::path::PathBuf;

mod archive;
mod fanout;
mod keys;
mod logs;
mod offline;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(name = "trade2026", version, about = "A fast, honest paper-trading platform.", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole platform in one process on embedded defaults: event journal and market-data
    /// store under --data-dir, a synthetic market unless --feed says otherwise, and every service
    /// on its port. Stops cleanly on Ctrl-C / SIGTERM with everything acknowledged on disk.
    Up(UpArgs),
    /// Run one service on its own over NATS JetStream (nats.url), as one process of a cluster:
    /// core (gateway + engine + journal), marketdata, sinks, ptrc, execution-quality,
    /// compliance-scanner, feature-pipeline, logger or monitoring. Same ports and APIs as `up`;
    /// `scripts/cluster start` runs them all on one machine.
    Run(RunArgs),
    /// Market-data tools: normalize raw exchange messages, replay recordings.
    #[command(subcommand)]
    Md(MdCommand),
    /// Configuration tools.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Load generators against a running platform.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Event-journal tools.
    #[command(subcommand)]
    Journal(JournalCommand),
    /// Execution quality over an event file (interchange NDJSON, e.g. from `journal export`)
    /// or, with `--source clickhouse`, over the events the ClickHouse sink stored
    /// (clickhouse.http_url, clickhouse.database): per-order records under `orders` keyed by
    /// order id, and the aggregates. `--format html` renders the Rule 605-style monthly report.
    Execq {
        #[arg(long)]
        events: Option<PathBuf>,
        /// `file` (--events) or `clickhouse` (the same records `journal export` makes).
        #[arg(long, default_value = "file", value_parser = offline::EXECQ_SOURCES)]
        source: String,
        /// Parameters (YAML or JSON) with the spec's names: rs_horizons_ms, session_close, ...
        #[arg(long)]
        params: Option<PathBuf>,
        #[arg(long, default_value = "json", value_parser = ["json", "csv", "html"])]
        format: String,
        /// Month (YYYY-MM) of the Rule 605 report for `--format html`; default: the first
        /// order's month.
        #[arg(long)]
        month: Option<String>,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Feature pipeline tools: point-in-time history, materialization, Feast repo.
    #[command(subcommand)]
    Features(FeaturesCommand),
    /// P&L, tax, VaR and stress reports on CSV files (the same code as the ptrc service).
    #[command(subcommand)]
    Ptrc(PtrcCommand),
    /// API keys of a data dir: create (the key is printed once), list, revoke. Works while the
    /// platform runs.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Search the logger (port 8112): the newest matching lines, oldest of them first;
    /// `--follow` keeps printing new ones; `--order N` prints an order's timeline (its journal
    /// events and every log line carrying its id, in time order).
    Logs(logs::LogsArgs),
    /// Trade surveillance over an event file: prints {"alerts":[...]} (or CSV). The same
    /// detectors as the compliance scanner service.
    Surveil {
        #[arg(long)]
        events: PathBuf,
        /// Parameters (YAML or JSON) with the spec's names: wash_window_ms, spoof_k_size, ...
        #[arg(long)]
        params: Option<PathBuf>,
        #[arg(long, default_value = "json", value_parser = ["json", "csv"])]
        format: String,
    },
}

#[derive(Subcommand)]
enum FeaturesCommand {
    /// Point-in-time feature values for training: for each `entity,ts` row of the CSV, the
    /// view's values as of that time, never from the future. Reads the journal of --data-dir
    /// (the platform must not be running on it), or with `--source clickhouse` the events the
    /// ClickHouse sink stored (clickhouse.http_url, clickhouse.database): the same rows for the
    /// same events. ClickHouse holds no book snapshots or deltas: where the journal has them,
    /// the book-derived values differ.
    History {
        /// `journal` or `clickhouse`.
        #[arg(long, default_value = "journal", value_parser = offline::HISTORY_SOURCES)]
        source: String,
        #[arg(long)]
        entities: PathBuf,
        /// market_features, order_features, position_features or position_symbol_features.
        #[arg(long, default_value = "market_features")]
        view: String,
        /// Output CSV (default stdout).
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long)]
        data_dir: Option<PathBuf>,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Write features to the Redis/Valkey online store (feast.online_store.connection_string or
    /// TRADE2026_ONLINE_STORE), incrementally from the last materialized journal event.
    Materialize {
        /// One run, then exit (default: every materialization.interval_minutes until Ctrl-C).
        #[arg(long)]
        once: bool,
        /// Only entities with events at or after this time (RFC 3339).
        #[arg(long)]
        start: Option<String>,
        /// Values as of this time (RFC 3339; default: the journal's latest event).
        #[arg(long)]
        end: Option<String>,
        #[arg(long)]
        data_dir: Option<PathBuf>,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Write feature_store.yaml and features.py matching what trade2026 writes, so `feast apply`
    /// in DIR gives a registry that reads our online store with the Feast SDK.
    InitFeastRepo {
        dir: PathBuf,
        #[command(flatten)]
        common: CommonArgs,
    },
}

#[derive(Subcommand)]
enum PtrcCommand {
    /// Realized and unrealized P&L per account and symbol (trades CSV:
    /// ts,account,symbol,side,qty,price,fee[,owner,lot_id]).
    Pnl {
        #[arg(long)]
        trades: PathBuf,
        /// FIFO, LIFO, AVG, HIFO or SPECIFIC (sells name their lots in `lot_id`).
        #[arg(long, default_value = "FIFO")]
        method: String,
        /// Marks CSV (symbol,price); default: each symbol's last trade price.
        #[arg(long)]
        marks: Option<PathBuf>,
        /// Treat a sell beyond the long position as an error instead of opening a short.
        #[arg(long)]
        long_only: bool,
        #[arg(long, default_value = "json", value_parser = ["json", "csv", "html"])]
        format: String,
    },
    /// Form 8949 / 1099-B rows with wash sales for a tax year.
    Tax {
        #[arg(long)]
        trades: PathBuf,
        #[arg(long)]
        year: i32,
        /// Wash-sale window in days before and after a sale.
        #[arg(long, default_value_t = 30)]
        wash_sale_window_days: u32,
        #[arg(long, default_value = "json", value_parser = ["json", "csv", "html"])]
        format: String,
    },
    /// Value at Risk and Expected Shortfall (positions CSV: symbol,qty; prices CSV:
    /// date,symbol,close).
    Var {
        #[arg(long)]
        positions: PathBuf,
        #[arg(long)]
        prices: PathBuf,
        #[arg(long, default_value_t = 0.99)]
        confidence: f64,
        #[arg(long, default_value_t = 1)]
        horizon: u32,
        /// historical, parametric, ewma or montecarlo.
        #[arg(long, default_value = "historical")]
        method: String,
        /// Also backtest one-day VaR over the history with this estimation window (days):
        /// exceptions, Kupiec proportion-of-failures test, traffic light (JSON output).
        #[arg(long)]
        backtest: Option<usize>,
        #[arg(long, default_value = "json", value_parser = ["json", "csv", "html"])]
        format: String,
    },
    /// Stress test: a built-in historical scenario or user shocks (SYMBOL=-20%, class:NAME=-30%).
    Stress {
        #[arg(long)]
        positions: PathBuf,
        #[arg(long)]
        prices: PathBuf,
        #[arg(long)]
        scenario: Option<String>,
        #[arg(long = "shock")]
        shocks: Vec<String>,
        #[arg(long, default_value = "json", value_parser = ["json", "csv", "html"])]
        format: String,
    },
}

#[derive(Subcommand)]
enum JournalCommand {
    /// Write the journal to stdout, one JSON object per line. `ndjson` is the event interchange
    /// format that `execq` and `surveil` read (order_new, order_cancel, fill, quote, trade);
    /// `events` is every journal record as stored (seq, recorded_at, subject, event).
    /// Archived history is read from the archive (see `journal archive`) and checked.
    /// The platform must not be running on the same data dir (the journal has one owner).
    Export {
        /// The platform's data dir (default ./data, or platform.data_dir from --config).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        #[command(flatten)]
        common: CommonArgs,
        #[arg(long, default_value = "ndjson", value_parser = ["ndjson", "events"])]
        format: String,
        /// First sequence number to export.
        #[arg(long, default_value_t = 1)]
        from_seq: u64,
        /// The journal's archive (folder or s3://bucket/prefix); default: where the journal
        /// recorded archiving to.
        #[arg(long)]
        archive: Option<String>,
        /// S3 endpoint for an s3:// archive (default: seaweedfs.s3_endpoint).
        #[arg(long)]
        s3_endpoint: Option<String>,
    },
    /// Move the events every durable consumer has acked out of the journal into compressed,
    /// checksummed segment files (a folder or S3) plus a manifest, then delete them from the
    /// journal. Crash-safe: segments and manifest are durable before anything is deleted, and a
    /// rerun completes an interrupted one. The platform must not be running on the data dir.
    Archive(archive::ArchiveArgs),
}

#[derive(Args)]
struct CommonArgs {
    /// YAML config file (any subset of keys; the plan's per-service files load as written).
    /// Environment variables TRADE2026_<SECTION>__<KEY> override it.
    #[arg(long, short = 'c', env = "TRADE2026_CONFIG")]
    config: Option<PathBuf>,
}

#[derive(Args)]
struct UpArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Where the journal and market-data store live (overrides platform.data_dir; default ./data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Market-data source, repeatable: `synthetic` (default), `EXCHANGE:SYM,SYM` for a live
    /// WebSocket feed (binance, binance-futures, coinbase, kraken, bybit, okx; append
    /// `@ws://host:port/path` to point at another server), or `replay:FILE` to replay normalized
    /// NDJSON (from `md normalize`) at --replay-speed.
    #[arg(long = "feed", value_name = "SPEC")]
    feeds: Vec<String>,
    /// Replay pace for `replay:` feeds: `max` or a factor of recorded time (1, 10x, 0.5).
    #[arg(long, default_value = "1")]
    replay_speed: String,
    /// Accept gateway requests without an API key, as admin, so bare `curl` commands work.
    /// Loudly logged; never use it on a shared machine.
    #[arg(long)]
    insecure_dev: bool,
    /// Log format: text (terminal) or json (one object per line); overrides platform.log_format.
    #[arg(long, value_parser = ["text", "json"])]
    log_format: Option<String>,
}

#[derive(Args)]
struct RunArgs {
    /// The service to run.
    #[arg(value_parser = clap::builder::ValueParser::new(|s: &str| s.parse::<platform::Service>()))]
    service: platform::Service,
    /// Run as replica I of N (0 <= I < N; compliance-scanner and ptrc only): this replica
    /// folds the orders, fills and alerts of the owners hashing to I, and all market data.
    #[arg(long, value_name = "I/N")]
    partition: Option<platform::run::Partition>,
    #[command(flatten)]
    up: UpArgs,
}

#[derive(Subcommand)]
enum MdCommand {
    /// Read raw exchange messages and write normalized events as NDJSON to stdout. The input
    /// format is detected: one JSON message per line, one JSON document (a REST response), a
    /// cryptofeed recording (text, or JSON lines of `{"t":"recv",..}` records), a Binance
    /// T_DEPTH CSV, or a zip of any of these. Lines of no known kind are skipped and reported
    /// (count and first few); Kraken and OKX book checksums are verified and reported.
    Normalize {
        /// binance, binance-futures, coinbase, kraken, bybit or okx.
        #[arg(long)]
        exchange: String,
        /// The file to read (`-` for stdin).
        #[arg(long)]
        file: PathBuf,
        /// Symbol for REST responses that do not name it (Binance trades/klines/depth, Coinbase
        /// and OKX candles); recordings take it from the request URL.
        #[arg(long)]
        symbol: Option<String>,
        /// Skip messages that fail to parse (counted and reported) instead of stopping.
        #[arg(long, conflicts_with = "strict")]
        lenient: bool,
        /// Stop at the first line of no known kind (naming it) instead of skipping it.
        #[arg(long)]
        strict: bool,
        /// Most bytes a zip input may unpack to, per entry and in all (a zip bomb stops here).
        #[arg(long, value_name = "BYTES", default_value_t = marketdata::ZipLimits::DEFAULT_BYTES)]
        unzip_limit: u64,
    },
    /// Write recorded events (NDJSON from `md normalize`, or a raw recording with --exchange)
    /// to stdout at recorded pace, scaled, or as fast as possible.
    Replay {
        file: PathBuf,
        /// Treat FILE as raw messages of this exchange and normalize them first.
        #[arg(long)]
        exchange: Option<String>,
        /// `max` or a factor of recorded time (1 = real time, 10x, 0.5).
        #[arg(long, default_value = "1")]
        speed: String,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Send orders to a running gateway over HTTP/1.1 keep-alive connections and report counts
    /// and submit-to-ack latency (p50..max from an HdrHistogram). Open loop at --rate (latency
    /// from each order's scheduled time, so stalls are not hidden) or closed loop with
    /// `--rate max`. Exits nonzero on any transport error or 5xx answer.
    Orders(BenchOrdersArgs),
    /// A long run against a running gateway: a realistic order mix (market orders that fill,
    /// IOC limits that expire, resting GTC limits 2% from the mid and their cancels by id,
    /// collar rejects; per account in a 20-visit cycle of 8/4/3/3/2), optional concurrent reads
    /// (`GET /orders?limit=100`, `/fills?limit=100`), and the server's RSS sampled from
    /// `/metrics` with its peak and its slope after warm-up. Prints a table; `--json FILE`
    /// writes the full report. Exits nonzero on any transport error or 5xx answer.
    Soak(BenchSoakArgs),
    /// Fill a log store (`DIR/logs.db`) with realistic order-lifecycle lines through the
    /// logger's writer, report lines/s, then time searches over what it holds. Runs add to the
    /// store, so a large one can be built in steps.
    Logs(logs::BenchLogsArgs),
    /// Committed journal events through the core's outbox, NATS JetStream and a runtime
    /// consumer over NatsBus, beside bare async-nats publish/consume of the same messages in the
    /// same run: events/s and commit-to-consumer latency (p50..max). Streams of its own, deleted
    /// at the end.
    Fanout(fanout::BenchFanoutArgs),
}

#[derive(Args)]
struct BenchSoakArgs {
    /// Gateway base URL (http only).
    #[arg(long, default_value = "http://127.0.0.1:8099")]
    url: String,
    /// API key (admin, or one covering accounts bench-*; not needed against `up --insecure-dev`).
    #[arg(long, env = "TRADE2026_API_KEY", hide_env_values = true)]
    key: Option<String>,
    /// Requests (orders and cancels) per second on a fixed schedule, or `max` for closed loop.
    #[arg(long, default_value = "1000")]
    rate: String,
    /// How long to send: seconds, or with a unit (`300`, `90s`, `30m`, `8h`).
    #[arg(long, default_value = "300")]
    duration: String,
    /// Keep-alive connections for orders (one request in flight on each).
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Spread orders round-robin over accounts bench-0 .. bench-<N-1>; resting orders go to
    /// bench-<a>-maker (risk refuses a market order of an account with a resting order).
    #[arg(long, default_value_t = 64)]
    accounts: usize,
    /// Read the server's RSS from GET /metrics this often (seconds or with a unit).
    #[arg(long, default_value = "10")]
    sample_every: String,
    /// Leave the RSS samples of this first stretch out of the slope (seconds or with a unit).
    #[arg(long, default_value = "60")]
    warmup: String,
    /// Concurrent reads per second, alternating GET /orders?limit=100 and /fills?limit=100 (0: none).
    #[arg(long, default_value_t = 0)]
    reads_per_sec: u64,
    /// Keep-alive connections for the reads.
    #[arg(long, default_value_t = 2)]
    read_connections: usize,
    #[arg(long, default_value = "BTCUSDT")]
    symbol: String,
    /// Order quantity.
    #[arg(long, default_value = "0.001")]
    quantity: String,
    /// Seconds to wait for an answer before counting a transport error.
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    /// Loader worker threads (1 = a single-threaded runtime, leaving the other cores to the
    /// server when both run on one machine).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Also write the full report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

#[derive(Args)]
struct BenchOrdersArgs {
    /// Gateway base URL (http only).
    #[arg(long, default_value = "http://127.0.0.1:8099")]
    url: String,
    /// Orders per second on a fixed schedule, or `max` for closed loop.
    #[arg(long, default_value = "1000")]
    rate: String,
    /// Closed loop: each connection sends the next order as soon as the answer arrives
    /// (same as `--rate max`).
    #[arg(long)]
    closed_loop: bool,
    /// Seconds to send for.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Keep-alive connections (one request in flight on each).
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Spread orders round-robin over accounts bench-0 .. bench-<N-1>: the per-account order
    /// rate and open-order limits would otherwise cap the run.
    #[arg(long, default_value_t = 64)]
    accounts: usize,
    /// Appended to every account name (`bench-0<suffix>`), so two runs side by side use
    /// accounts of their own (e.g. a flood and the trader whose latency it must not hurt).
    #[arg(long, default_value = "")]
    account_suffix: String,
    /// API key (not needed against `up --insecure-dev`).
    #[arg(long, env = "TRADE2026_API_KEY", hide_env_values = true)]
    key: Option<String>,
    #[arg(long, default_value = "BTCUSDT")]
    symbol: String,
    /// `ioc-limit`: IOC limits 1% away from the mid read at start (pass risk, expire unfilled);
    /// `market`: small market orders alternating buy/sell per account.
    #[arg(long, default_value = "ioc-limit", value_parser = ["ioc-limit", "market"])]
    order: String,
    /// Order quantity.
    #[arg(long, default_value = "0.001")]
    quantity: String,
    /// Seconds to wait for an answer before counting a transport error.
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    /// Loader worker threads (1 = a single-threaded runtime, leaving the other cores to the
    /// server when both run on one machine).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Load the configuration (file + environment), print the effective values as YAML and any
    /// warnings; exit nonzero on errors.
    Check(CommonArgs),
}

fn main() {
    limit_malloc_arenas();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Up(args) => up(args, None, None),
        Command::Run(args) => up(args.up, Some(args.service), args.partition),
        Command::Md(cmd) => md(cmd),
        Command::Config(ConfigCommand::Check(args)) => config_check(args),
        Command::Bench(BenchCommand::Orders(args)) => bench_orders(args),
        Command::Bench(BenchCommand::Soak(args)) => bench_soak(args),
        Command::Bench(BenchCommand::Logs(args)) => logs::bench(args),
        Command::Bench(BenchCommand::Fanout(args)) => fanout::run(args),
        Command::Logs(args) => logs::run(args),
        Command::Journal(JournalCommand::Export {
            data_dir,
            common,
            format,
            from_seq,
            archive,
            s3_endpoint,
        }) => journal_export(
            data_dir,
            common,
            &format,
            from_seq,
            archive.as_deref(),
            s3_endpoint.as_deref(),
        ),
        Command::Journal(JournalCommand::Archive(args)) => archive::run(args),
        Command::Execq {
            events,
            source,
            params,
            format,
            month,
            common,
        } => match (source.as_str(), events.as_deref()) {
            // The file read into one reused record (the interchange reader's records and
            // errors, without a string per text field per line).
            (s, Some(path)) if s != "clickhouse" => std::fs::File::open(path)
                .with_context(|| format!("reading {}", path.display()))
                .map(|file| {
                    ExecqInput::File(Box::new(execq::RecordReader::new(
                        std::io::BufReader::with_capacity(1 << 16, file),
                        &path.display().to_string(),
                    )))
                }),
            _ => {
                offline::execq_records(&source, events.as_deref(), &common).map(ExecqInput::Records)
            }
        }
        .and_then(|r| execq_cli(r, params.as_deref(), &format, month.as_deref())),
        Command::Ptrc(cmd) => ptrc_cli(cmd),
        Command::Features(cmd) => features_cli(cmd),
        Command::Keys(cmd) => keys::run(cmd),
        Command::Surveil {
            events,
            params,
            format,
        } => surveil_cli(&events, params.as_deref(), &format),
    };
    if let Err(e) = result {
        eprintln!("trade2026: error: {}", error_chain(&e));
        std::process::exit(1);
    }
}

/// The error and its causes on one line, skipping a cause whose text the message already holds
/// (our error types embed their source's message).
fn error_chain(e: &anyhow::Error) -> String {
    let mut msg = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if msg.contains(&text) {
            continue;
        }
        if !msg.is_empty() {
            msg.push_str(": ");
        }
        msg.push_str(&text);
    }
    msg
}

fn load_config(common: &CommonArgs) -> Result<config::Loaded> {
    let loaded = config::load(common.config.as_deref())?;
    Ok(loaded)
}

fn config_check(args: CommonArgs) -> Result<()> {
    let loaded = load_config(&args)?;
    for w in &loaded.warnings {
        eprintln!("warning: {w}");
    }
    // Printed for a person (and pasted into tickets): never with a password or token in it.
    let yaml = config::to_yaml_redacted(&loaded.config, telemetry::redact::connection_string)?;
    print!("{yaml}");
    Ok(())
}

fn journal_export(
    data_dir: Option<PathBuf>,
    common: CommonArgs,
    format: &str,
    from_seq: u64,
    archive: Option<&str>,
    s3_endpoint: Option<&str>,
) -> Result<()> {
    let mut cfg = load_config(&common)?.config;
    if let Some(dir) = data_dir {
        cfg.platform.data_dir = dir;
    }
    let path = cfg.journal_path();
    if !path.exists() {
        bail!("no journal at {} (is --data-dir right?)", path.display());
    }
    let (journal, _) = journal::Journal::open(&path)?;
    let history = archive::history(
        &journal,
        &cfg,
        archive,
        s3_endpoint,
        export_start(format, from_seq),
    )?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let written = write_export(history, format, from_seq, &mut out)?;
    out.flush()?;
    journal.shutdown()?;
    eprintln!("exported {written} records from {}", path.display());
    Ok(())
}

/// Where an export must start reading: the exporter needs each order's history to size its
/// cancels, so `ndjson` replays from the start and prints from `from_seq` on.
fn export_start(format: &str, from_seq: u64) -> u64 {
    if format == "ndjson" {
        1
    } else {
        from_seq.max(1)
    }
}

/// Writes the export of `history` (read from [`export_start`]) to `out`; returns the records
/// written.
fn write_export(
    history: journal::HistoryReader,
    format: &str,
    from_seq: u64,
    out: &mut impl Write,
) -> Result<u64> {
    let mut exporter = interchange::Exporter::new();
    let mut interchange_records = Vec::new();
    let (first, mut written) = (from_seq.max(1), 0u64);
    for r in history {
        let r = r?;
        let print = r.seq >= first;
        match format {
            "events" => {
                if print {
                    serde_json::to_writer(
                        &mut *out,
                        &serde_json::json!({"seq": r.seq, "recorded_at": r.recorded_at, "subject": r.subject, "event": r.event}),
                    )?;
                    out.write_all(b"\n")?;
                    written += 1;
                }
            }
            _ => {
                if let Some(rec) = exporter.export(&r.event)
                    && print
                {
                    interchange_records.push(rec);
                }
            }
        }
    }
    // Journal order is commit order; the interchange format is in event-time order (a fill
    // stamped by the market data that caused it can be journaled after a later order).
    interchange_records.sort_by_key(|r| r.ts);
    for rec in &interchange_records {
        serde_json::to_writer(&mut *out, rec)?;
        out.write_all(b"\n")?;
        written += 1;
    }
    Ok(written)
}

/// The records of an interchange NDJSON file, read one at a time as the iterator advances (the
/// first bad line ends it with an error naming the file and line).
fn read_events(path: &std::path::Path) -> Result<offline::Records> {
    let file = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let reader = interchange::NdjsonReader::new(
        std::io::BufReader::with_capacity(1 << 16, file),
        &path.display().to_string(),
    );
    Ok(Box::new(reader.map(|r| r.map_err(anyhow::Error::from))))
}

fn read_text(path: &std::path::Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// What `execq` reads: the NDJSON file, or records from elsewhere (ClickHouse).
enum ExecqInput {
    // Boxed: the reader holds its reused record inline (~660 bytes).
    File(Box<execq::RecordReader<std::io::BufReader<std::fs::File>>>),
    Records(offline::Records),
}

fn execq_cli(
    input: ExecqInput,
    params: Option<&std::path::Path>,
    format: &str,
    month: Option<&str>,
) -> Result<()> {
    let params: execq::Params = match params {
        // JSON is YAML, so one parser reads both.
        Some(p) => {
            serde_yaml_ng::from_str(&read_text(p)?).with_context(|| format!("{}", p.display()))?
        }
        None => execq::Params::default(),
    };
    // The batch engine fed as the file is read; the report is written row by row after the
    // last record (nothing is written when a line is bad).
    let mut engine = execq::ExecQuality::batch(params)?;
    let mut first_order_month: Option<String> = None;
    let mut feed = |r: &interchange::Record| {
        if first_order_month.is_none() && r.kind == interchange::Kind::OrderNew {
            first_order_month = Some(r.ts.to_string()[..7].to_string());
        }
        engine.on_record(r);
    };
    match input {
        ExecqInput::File(mut reader) => {
            while let Some(r) = reader.next_record() {
                feed(r?);
            }
        }
        ExecqInput::Records(records) => {
            for r in records {
                feed(&r?);
            }
        }
    }
    let rows = || engine.held_rows_iter(&execq::ReportFilter::default());
    let mut out = offline::stdout_writer();
    match format {
        "csv" => {
            out.write_all(execq::report_csv_header(engine.params()).as_bytes())?;
            let mut line = Vec::with_capacity(1024);
            engine.for_each_held_row(&execq::ReportFilter::default(), |row| {
                line.clear();
                execq::write_report_csv_line(&mut line, row);
                out.write_all(&line)
            })?;
        }
        "html" => {
            let month = match month {
                Some(m) => m.to_string(),
                None => first_order_month.context("no order_new record: nothing to report")?,
            };
            let report = execq::rule605_from_rows(rows(), engine.params(), &month)?;
            out.write_all(execq::rule605_to_html(&report).as_bytes())?;
        }
        _ => {
            engine.write_report_json(&mut out)?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    Ok(())
}

fn render<T: serde::Serialize>(
    value: &T,
    format: &str,
    csv: impl Fn(&T) -> String,
    html: impl Fn(&T) -> String,
) -> Result<()> {
    let out = match format {
        "csv" => csv(value),
        "html" => html(value),
        _ => serde_json::to_string_pretty(value)? + "\n",
    };
    std::io::stdout().write_all(out.as_bytes())?;
    Ok(())
}

/// A spinner on stderr while a long computation runs (hidden when stderr is not a terminal, so
/// scripts and pipes see clean output).
fn progress(message: &str) -> indicatif::ProgressBar {
    let bar =
        indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    bar.set_message(message.to_string());
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}

/// A CSV input of `trade2026 ptrc`, read as a stream: ptrc parses it record by record and
/// refuses an over-long line, so a file is never held whole.
fn open_csv(path: &std::path::Path) -> Result<std::io::BufReader<std::fs::File>> {
    let file = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(std::io::BufReader::new(file))
}

fn ptrc_cli(cmd: PtrcCommand) -> Result<()> {
    let name = |p: &std::path::Path| p.display().to_string();
    let bar = progress("ptrc: reading inputs and computing");
    let result = ptrc_compute(cmd, &name);
    bar.finish_and_clear();
    result
}

fn ptrc_compute(cmd: PtrcCommand, name: &dyn Fn(&std::path::Path) -> String) -> Result<()> {
    match cmd {
        PtrcCommand::Pnl {
            trades,
            method,
            marks,
            long_only,
            format,
        } => {
            let method: ptrc::pnl::Method = method.parse().map_err(|_| {
                anyhow::anyhow!("--method {method:?}: expected FIFO, LIFO, AVG, HIFO or SPECIFIC")
            })?;
            let trades_v = ptrc::input::read_trades_from(open_csv(&trades)?, &name(&trades))?;
            let marks_v = match &marks {
                Some(m) => ptrc::input::read_marks_from(open_csv(m)?, &name(m))?,
                None => Default::default(),
            };
            let opts = ptrc::pnl::PnlOptions {
                long_only,
                ..Default::default()
            };
            let report =
                ptrc::pnl::compute(&trades_v, method, &marks_v, &opts).map_err(|e| match e {
                    // Trades are numbered from 1 in file order; the header is line 1.
                    ptrc::PtrcError::TradeRejected {
                        number,
                        column,
                        reason,
                        ..
                    } => anyhow::anyhow!(
                        "{}:{}: column {column:?}: {reason}",
                        trades.display(),
                        number + 1
                    ),
                    other => other.into(),
                })?;
            render(
                &report,
                &format,
                ptrc::pnl::pnl_to_csv,
                ptrc::pnl::pnl_to_html,
            )
        }
        PtrcCommand::Tax {
            trades,
            year,
            wash_sale_window_days,
            format,
        } => {
            let trades_v = ptrc::input::read_trades_from(open_csv(&trades)?, &name(&trades))?;
            let settings = ptrc::tax::TaxSettings {
                wash_sale_window_days,
                ..Default::default()
            };
            if format == "html" {
                let report = ptrc::tax::form_8949(&trades_v, year, &settings, None)?;
                std::io::stdout().write_all(ptrc::tax::tax_to_html(&report).as_bytes())?;
                return Ok(());
            }
            // Rows are written as they become final; Part II rows and the washes wait in
            // temporary files until Part I is out, so memory does not grow with the rows.
            let format = if format == "csv" {
                ptrc::tax::TaxFormat::Csv
            } else {
                ptrc::tax::TaxFormat::Json
            };
            let out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
            let (part2, washes) = (tempfile::tempfile()?, tempfile::tempfile()?);
            let mut stream = ptrc::tax::TaxStream::new(format, year, None, out, part2, washes)?;
            let summary = ptrc::tax::form_8949_to(&trades_v, year, &settings, None, &mut stream)?;
            stream.finish(&summary)?;
            Ok(())
        }
        PtrcCommand::Var {
            positions,
            prices,
            confidence,
            horizon,
            method,
            backtest,
            format,
        } => {
            let req = ptrc::risk::VarRequest {
                confidence,
                horizon_days: horizon,
                method: method.parse()?,
                ..Default::default()
            };
            let pos = ptrc::input::read_positions_from(open_csv(&positions)?, &name(&positions))?;
            let hist = ptrc::input::read_prices_from(open_csv(&prices)?, &name(&prices))?;
            let report = ptrc::risk::value_at_risk(&pos, &hist, &req)?;
            if let Some(window) = backtest {
                let bt = ptrc::risk::backtest(&pos, &hist, &req, window)?;
                let both = serde_json::json!({ "var": report, "backtest": bt });
                std::io::stdout()
                    .write_all((serde_json::to_string_pretty(&both)? + "\n").as_bytes())?;
                return Ok(());
            }
            render(
                &report,
                &format,
                ptrc::risk::var_to_csv,
                ptrc::risk::var_to_html,
            )
        }
        PtrcCommand::Stress {
            positions,
            prices,
            scenario,
            shocks,
            format,
        } => {
            let scenario = match (scenario, shocks.is_empty()) {
                (Some(name), true) => ptrc::stress::Scenario::Historical { name },
                (None, false) => ptrc::stress::Scenario::from_shocks(&shocks, Default::default())?,
                _ => bail!("give either --scenario NAME or one or more --shock SYMBOL=-20%"),
            };
            let pos = ptrc::input::read_positions_from(open_csv(&positions)?, &name(&positions))?;
            let hist = ptrc::input::read_prices_from(open_csv(&prices)?, &name(&prices))?;
            let report = ptrc::stress::stress(&pos, &hist, &scenario)?;
            render(
                &report,
                &format,
                ptrc::stress::stress_to_csv,
                ptrc::stress::stress_to_html,
            )
        }
    }
}

/// Every journal event of the data dir, in order.
fn journal_events(
    data_dir: Option<PathBuf>,
    common: &CommonArgs,
) -> Result<(config::Config, Vec<(u64, model::Event)>)> {
    let mut cfg = load_config(common)?.config;
    if let Some(dir) = data_dir {
        cfg.platform.data_dir = dir;
    }
    let path = cfg.journal_path();
    if !path.exists() {
        bail!("no journal at {} (is --data-dir right?)", path.display());
    }
    let (journal, _) = journal::Journal::open(&path)?;
    let mut events = Vec::new();
    // Archived history too, from where the journal recorded archiving it.
    for r in archive::history(&journal, &cfg, None, None, 1)? {
        let r = r?;
        events.push((r.seq, r.event));
    }
    journal.shutdown()?;
    Ok((cfg, events))
}

fn online_store_of(cfg: &config::Config) -> Result<String> {
    cfg.feast
        .online_store
        .connection_string
        .clone()
        .context("no online store configured: set feast.online_store.connection_string or TRADE2026_ONLINE_STORE")
}

fn features_cli(cmd: FeaturesCommand) -> Result<()> {
    match cmd {
        FeaturesCommand::History {
            source,
            entities,
            view,
            out,
            data_dir,
            common,
        } => {
            let v = features::view(&view).with_context(|| {
                format!(
                    "--view {view:?}: expected one of {}",
                    features::views()
                        .iter()
                        .map(|v| v.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?;
            let requests: Vec<(String, String, model::Timestamp)> =
                features::read_entities_csv(&read_text(&entities)?)
                    .with_context(|| entities.display().to_string())?
                    .into_iter()
                    .map(|(e, ts)| (view.clone(), e, ts))
                    .collect();
            let events = match source.as_str() {
                "clickhouse" => offline::clickhouse_events(&common)?,
                _ => journal_events(data_dir, &common)?.1,
            };
            let rows = features::history(events.iter().map(|(_, e)| e), &requests)?;
            let csv = features::rows_to_csv(v, &rows);
            match out {
                Some(path) => {
                    std::fs::write(&path, csv).with_context(|| path.display().to_string())?
                }
                None => std::io::stdout().write_all(csv.as_bytes())?,
            }
            Ok(())
        }
        FeaturesCommand::Materialize {
            once,
            start,
            end,
            data_dir,
            common,
        } => {
            let parse = |name: &str, v: &Option<String>| -> Result<Option<model::Timestamp>> {
                v.as_deref()
                    .map(|s| {
                        model::Timestamp::parse_rfc3339(s).with_context(|| format!("--{name}"))
                    })
                    .transpose()
            };
            let (start, end) = (parse("start", &start)?, parse("end", &end)?);
            loop {
                let (cfg, events) = journal_events(data_dir.clone(), &common)?;
                let url = online_store_of(&cfg)?;
                let state_path = cfg.platform.data_dir.join("features_materialized.json");
                let last_done: u64 = std::fs::read_to_string(&state_path)
                    .ok()
                    .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                    .and_then(|v| v["last_seq"].as_u64())
                    .unwrap_or(0);
                let mut engine = features::FeatureEngine::new(features::EngineParams::default());
                let mut touched = std::collections::BTreeSet::new();
                let mut last_seq = last_done;
                for (seq, e) in &events {
                    if end.is_some_and(|t| e.ts() > t) {
                        break;
                    }
                    let keys = engine.on_event(e);
                    if *seq > last_done && start.is_none_or(|t| e.ts() >= t) {
                        touched.extend(keys.into_iter().map(|k| (k.view, k.entity.to_string())));
                    }
                    last_seq = last_seq.max(*seq);
                }
                let as_of = end.or(engine.watermark());
                let rows: Vec<features::FeatureRow> = match as_of {
                    Some(t) => touched
                        .iter()
                        .filter_map(|(v, e)| engine.row(v, e, t))
                        .collect(),
                    None => Vec::new(),
                };
                let rows = feature_pipeline::public_rows(rows);
                let online: Vec<feast_store::OnlineRow> = rows
                    .iter()
                    .filter_map(feature_pipeline::online_row)
                    .collect();
                let written = runtime()?.block_on(async {
                    let writer = feast_store::OnlineStoreWriter::connect(&url).await?;
                    writer
                        .write_with_retry(
                            "trade2026",
                            &online,
                            &feast_store::RetryPolicy::default(),
                        )
                        .await
                })?;
                std::fs::write(
                    &state_path,
                    serde_json::json!({ "last_seq": last_seq }).to_string(),
                )?;
                eprintln!(
                    "materialized {} rows ({} skipped as not newer) for {} entities up to journal seq {last_seq} into {url}",
                    written.written,
                    written.skipped_stale,
                    touched.len()
                );
                if once {
                    return Ok(());
                }
                std::thread::sleep(std::time::Duration::from_secs(
                    u64::from(cfg.materialization.interval_minutes.max(1)) * 60,
                ));
            }
        }
        FeaturesCommand::InitFeastRepo { dir, common } => {
            let cfg = load_config(&common)?.config;
            let conn = cfg
                .feast
                .online_store
                .connection_string
                .clone()
                .unwrap_or_else(|| "localhost:6379".to_string());
            let specs: Vec<feast_store::ViewSpec> = features::views()
                .iter()
                .map(|v| feast_store::ViewSpec {
                    name: v.name.to_string(),
                    join_key: v.entity.to_string(),
                    features: v
                        .features
                        .iter()
                        .map(|f| {
                            let dtype = match f.dtype {
                                features::Dtype::Float64 => feast_store::FeatureDtype::Float64,
                                features::Dtype::Int64 => feast_store::FeatureDtype::Int64,
                                features::Dtype::String => feast_store::FeatureDtype::String,
                            };
                            (f.name.to_string(), dtype)
                        })
                        .collect(),
                    ttl_seconds: v.ttl_seconds,
                })
                .collect();
            std::fs::create_dir_all(&dir).with_context(|| dir.display().to_string())?;
            for (name, content) in feast_store::feast_repo_files("trade2026", &conn, &specs)? {
                let path = dir.join(&name);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::write(&path, content).with_context(|| path.display().to_string())?;
                eprintln!("wrote {}", path.display());
            }
            Ok(())
        }
    }
}

fn surveil_cli(
    events: &std::path::Path,
    params: Option<&std::path::Path>,
    format: &str,
) -> Result<()> {
    let params = match params {
        Some(p) => surveillance::Params::from_yaml_or_json(&read_text(p)?)
            .with_context(|| format!("{}", p.display()))?,
        None => surveillance::Params::default(),
    };
    // Records are scanned as the file is read; the alerts are written after the last one
    // (nothing is written when a line is bad).
    let mut scan = surveillance::BatchScan::new(&params)?;
    for r in read_events(events)? {
        scan.push(&r?);
    }
    let alerts = scan.finish();
    let mut out = offline::stdout_writer();
    match format {
        "csv" => out.write_all(surveillance::alerts_to_csv(&alerts).as_bytes())?,
        _ => {
            serde_json::to_writer_pretty(&mut out, &surveillance::alerts_json(&alerts))?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    Ok(())
}

/// The allocator: jemalloc instead of glibc's malloc. Every order allocates on one thread and
/// frees on another (HTTP worker, engine, journal writer, consumers); glibc serializes that on
/// its arenas' locks, and with the two arenas that keep its RSS flat (one per thread let freed
/// memory pile up in the arenas of short-lived blocking threads) malloc and free were a quarter
/// of the server's CPU in the closed-loop profile. jemalloc's thread caches avoid the locks, and
/// its decay returns freed pages to the OS on a background thread. docs/BENCHMARKS.md,
/// "Allocator", has the measurements (CPU per order, closed-loop rate, RSS in the soak).
#[cfg(target_os = "linux")]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings, read at its first allocation (`_RJEM_MALLOC_CONF` in the environment
/// overrides them): four arenas on top of the thread caches (the default is four per core),
/// freed pages returned after 2 s on jemalloc's own background thread rather than inside a
/// request, none kept in the lazily-purged state.
#[cfg(target_os = "linux")]
#[allow(non_upper_case_globals)]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static malloc_conf: &[u8] =
    b"background_thread:true,narenas:4,dirty_decay_ms:2000,muzzy_decay_ms:0\0";

/// SQLite and the other C libraries still allocate through glibc's malloc, which gives threads
/// their own arenas (up to eight per core). The platform's runtime starts dozens of short-lived
/// blocking threads (store reads, consumer batches), and memory freed on one arena is not reused
/// by the others, so RSS creeps up for minutes: in the soak at 1000 orders/s, 334 MB after 3
/// minutes with the default against 205 MB with two arenas (before jemalloc took Rust's
/// allocations). `MALLOC_ARENA_MAX` in the environment wins.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only changes allocator settings; it is called before any thread starts.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// `up` (every service, `service` None) or `run <service>`.
fn up(
    args: UpArgs,
    service: Option<platform::Service>,
    partition: Option<platform::run::Partition>,
) -> Result<()> {
    let loaded = load_config(&args.common)?;
    let mut cfg = loaded.config;
    if let Some(dir) = args.data_dir {
        cfg.platform.data_dir = dir;
    }
    let json_logs = match args.log_format.as_deref() {
        Some(f) => f == "json",
        None => cfg.platform.log_format == config::LogFormat::Json,
    };
    let log_format = if json_logs {
        telemetry::LogFormat::Json
    } else {
        telemetry::LogFormat::Text
    };
    // Every event at logger.level or above also goes to the logger service, whatever the
    // terminal shows.
    let log_intake = logger::Intake::new(logger::capture::DEFAULT_QUEUE);
    let capture_level = cfg
        .logger
        .level
        .as_filter()
        .parse::<tracing::Level>()
        .unwrap_or(tracing::Level::INFO);
    // Held until `up` returns: dropping it writes out the last lines (main exits after that).
    let _log = telemetry::init_tracing_with(
        log_format,
        &telemetry::terminal_filter(
            cfg.platform.log_level.as_filter(),
            cfg.platform.terminal_order_lines,
        ),
        vec![Box::new(log_intake.layer(capture_level))],
    );
    for w in &loaded.warnings {
        tracing::warn!("config: {w}");
    }
    let speed: feeds::replay::Speed = args.replay_speed.parse()?;
    let feeds = args
        .feeds
        .iter()
        .map(|s| platform::FeedSpec::parse(s, speed))
        .collect::<Result<Vec<_>, _>>()?;

    let opts = platform::Options {
        feeds,
        insecure_dev: args.insecure_dev,
        log_intake: Some(log_intake),
    };
    if let Some(service) = service {
        platform::run::feeds_allowed(service, &opts.feeds)?;
        platform::run::partition_allowed(service, partition)?;
    }
    let rt = runtime()?;
    rt.block_on(async move {
        let shutdown = CancellationToken::new();
        let running = match service {
            None => platform::start(cfg, opts, shutdown.clone()).await?,
            Some(service) => platform::run(cfg, service, partition, opts, shutdown.clone()).await?,
        };
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", running.banner())?;
        out.flush()?;
        drop(out);
        // A signal, or a platform task that failed and asked everything to stop.
        tokio::select! {
            _ = wait_for_signal() => {}
            _ = shutdown.cancelled() => {}
        }
        tracing::info!("shutdown requested; draining feeds and flushing the journal");
        shutdown.cancel();
        let summary = running.stopped().await?;
        println!("trade2026 stopped cleanly: {summary}");
        Ok(())
    })
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

fn bench_soak(args: BenchSoakArgs) -> Result<()> {
    let duration = |name: &str, v: &str| -> Result<std::time::Duration> {
        loadgen::soak::parse_duration(v).with_context(|| format!("--{name}"))
    };
    let timeout = std::time::Duration::try_from_secs_f64(args.timeout)
        .ok()
        .filter(|d| !d.is_zero())
        .with_context(|| {
            format!(
                "--timeout must be a positive number of seconds, not {}",
                args.timeout
            )
        })?;
    let opts = loadgen::soak::SoakOptions {
        url: args.url,
        mode: args.rate.parse()?,
        duration: duration("duration", &args.duration)?,
        connections: args.connections,
        accounts: args.accounts,
        api_key: args.key,
        symbol: args.symbol,
        quantity: args
            .quantity
            .parse()
            .with_context(|| format!("--quantity {:?} is not a decimal number", args.quantity))?,
        timeout,
        sample_every: duration("sample-every", &args.sample_every)?,
        warmup: duration("warmup", &args.warmup)?,
        reads_per_sec: args.reads_per_sec,
        read_connections: args.read_connections,
        ..loadgen::soak::SoakOptions::default()
    };
    let rt = match args.threads {
        0 => bail!("--threads must be at least 1"),
        1 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build(),
    }
    .context("starting the async runtime")?;
    let report = rt.block_on(loadgen::soak::run(opts))?;
    println!("{report}");
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if report.failed {
        bail!("the soak saw transport errors or 5xx answers (see the table above)");
    }
    Ok(())
}

fn bench_orders(args: BenchOrdersArgs) -> Result<()> {
    let mode: loadgen::Mode = if args.closed_loop {
        loadgen::Mode::Closed
    } else {
        args.rate.parse()?
    };
    let seconds = |name: &str, v: f64| -> Result<std::time::Duration> {
        std::time::Duration::try_from_secs_f64(v)
            .ok()
            .filter(|d| !d.is_zero())
            .with_context(|| format!("--{name} must be a positive number of seconds, not {v}"))
    };
    let opts = loadgen::BenchOptions {
        url: args.url,
        mode,
        duration: seconds("duration", args.duration)?,
        connections: args.connections,
        accounts: args.accounts,
        account_suffix: args.account_suffix,
        api_key: args.key,
        symbol: args.symbol,
        order: args.order.parse()?,
        quantity: args
            .quantity
            .parse()
            .with_context(|| format!("--quantity {:?} is not a decimal number", args.quantity))?,
        timeout: seconds("timeout", args.timeout)?,
    };
    let rt = match args.threads {
        0 => bail!("--threads must be at least 1"),
        1 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build(),
    }
    .context("starting the async runtime")?;
    let report = rt.block_on(loadgen::run(opts))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{report}");
    }
    if report.failed {
        bail!(
            "{} transport errors and {} 5xx answers",
            report.transport_errors,
            report.server_errors
        );
    }
    Ok(())
}

fn md(cmd: MdCommand) -> Result<()> {
    match cmd {
        MdCommand::Normalize {
            exchange,
            file,
            symbol,
            lenient,
            strict,
            unzip_limit,
        } => {
            let exchange: marketdata::Exchange = exchange.parse()?;
            let input = read_input(&file)?;
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let opts = marketdata::NormalizeOptions {
                lenient,
                strict,
                symbol,
                zip: marketdata::ZipLimits::total(unzip_limit),
                ..Default::default()
            };
            let stats = match marketdata::normalize_bytes(exchange, &input, &mut out, &opts) {
                Ok(stats) => stats,
                Err(e @ marketdata::NormalizeError::ZipLimit { .. }) => {
                    return Err(anyhow::Error::new(e).context(format!(
                        "normalizing {} (if the archive is genuine, raise --unzip-limit)",
                        file.display()
                    )));
                }
                Err(e) => {
                    return Err(
                        anyhow::Error::new(e).context(format!("normalizing {}", file.display()))
                    );
                }
            };
            out.flush()?;
            eprintln!("{}", md_summary(&file, &stats));
            Ok(())
        }
        MdCommand::Replay {
            file,
            exchange,
            speed,
        } => {
            let speed: feeds::replay::Speed = speed.parse()?;
            let events = match exchange {
                Some(ex) => {
                    let exchange: marketdata::Exchange = ex.parse()?;
                    let input = read_input(&file)?;
                    let mut buf = Vec::new();
                    let opts = marketdata::NormalizeOptions::default();
                    marketdata::normalize_bytes(exchange, &input, &mut buf, &opts)
                        .with_context(|| format!("normalizing {}", file.display()))?;
                    feeds::replay::parse_events(buf.as_slice(), &file.display().to_string())?
                }
                None => feeds::replay::read_events(&file)?,
            };
            if events.is_empty() {
                bail!("{}: no events to replay", file.display());
            }
            runtime()?.block_on(async move {
                let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
                let writer = tokio::task::spawn_blocking(move || -> Result<usize> {
                    let stdout = std::io::stdout();
                    let mut out = std::io::LineWriter::new(stdout.lock());
                    let mut n = 0;
                    while let Some(event) = rx.blocking_recv() {
                        serde_json::to_writer(&mut out, &event)?;
                        out.write_all(b"\n")?;
                        n += 1;
                    }
                    Ok(n)
                });
                feeds::replay::replay(events, speed, &tx).await?;
                drop(tx);
                let n = writer.await??;
                eprintln!("replayed {n} events");
                Ok(())
            })
        }
    }
}

/// The stderr summary of `md normalize`: counts, then what was skipped or failed verification.
fn md_summary(file: &std::path::Path, stats: &marketdata::NormalizeStats) -> String {
    let mut text = format!(
        "{}: {} messages ({} control, {} sent requests) -> {} events, {} skipped as errors",
        file.display(),
        stats.messages,
        stats.control,
        stats.sent,
        stats.events,
        stats.errors
    );
    if stats.unknown_lines > 0 {
        text += &format!(
            ", {} unknown lines skipped (--strict stops at them), e.g.:",
            stats.unknown_lines
        );
        for sample in &stats.unknown_samples {
            text += &format!("\n  {sample}");
        }
    }
    if stats.checksums_verified > 0 || stats.checksum_mismatches > 0 {
        text += &format!(
            "\nbook checksums: {} verified, {} mismatched",
            stats.checksums_verified, stats.checksum_mismatches
        );
        if let Some(first) = &stats.first_checksum_mismatch {
            text += &format!(" (first: {first})");
        }
    }
    text
}

fn read_input(file: &PathBuf) -> Result<Vec<u8>> {
    if file.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)?;
        return Ok(buf);
    }
    std::fs::read(file).with_context(|| format!("reading {}", file.display()))
}
