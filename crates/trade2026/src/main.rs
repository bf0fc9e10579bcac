//! The `trade2026` command. Thin by design: parse arguments, load config, call into the
//! libraries, turn errors into a message and a nonzero exit code.

use std::io::Write;
use std::path::PathBuf;

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
    /// Market-data tools: normalize raw exchange messages, replay recordings.
    #[command(subcommand)]
    Md(MdCommand),
    /// Configuration tools.
    #[command(subcommand)]
    Config(ConfigCommand),
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

#[derive(Subcommand)]
enum MdCommand {
    /// Read raw exchange messages and write normalized events as NDJSON to stdout. The input
    /// format is detected: one JSON message per line, one JSON document (a REST response), a
    /// cryptofeed recording, a Binance T_DEPTH CSV, or a zip of any of these.
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
        #[arg(long)]
        lenient: bool,
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
enum ConfigCommand {
    /// Load the configuration (file + environment), print the effective values as YAML and any
    /// warnings; exit nonzero on errors.
    Check(CommonArgs),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Up(args) => up(args),
        Command::Md(cmd) => md(cmd),
        Command::Config(ConfigCommand::Check(args)) => config_check(args),
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
    let yaml = config::to_yaml(&loaded.config)?;
    print!("{yaml}");
    Ok(())
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn up(args: UpArgs) -> Result<()> {
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
    telemetry::init_tracing(log_format, cfg.platform.log_level.as_filter());
    for w in &loaded.warnings {
        tracing::warn!("config: {w}");
    }
    let speed: feeds::replay::Speed = args.replay_speed.parse()?;
    let feeds = args
        .feeds
        .iter()
        .map(|s| platform::FeedSpec::parse(s, speed))
        .collect::<Result<Vec<_>, _>>()?;

    let rt = runtime()?;
    rt.block_on(async move {
        let shutdown = CancellationToken::new();
        let running = platform::start(
            cfg,
            platform::Options {
                feeds,
                insecure_dev: args.insecure_dev,
            },
            shutdown.clone(),
        )
        .await?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", running.banner())?;
        out.flush()?;
        drop(out);
        wait_for_signal().await;
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

fn md(cmd: MdCommand) -> Result<()> {
    match cmd {
        MdCommand::Normalize {
            exchange,
            file,
            symbol,
            lenient,
        } => {
            let exchange: marketdata::Exchange = exchange.parse()?;
            let input = read_input(&file)?;
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let opts = marketdata::NormalizeOptions {
                lenient,
                symbol,
                ..Default::default()
            };
            let stats = marketdata::normalize_bytes(exchange, &input, &mut out, &opts)
                .with_context(|| format!("normalizing {}", file.display()))?;
            out.flush()?;
            eprintln!(
                "{}: {} messages ({} control, {} sent requests) -> {} events, {} skipped as errors",
                file.display(),
                stats.messages,
                stats.control,
                stats.sent,
                stats.events,
                stats.errors
            );
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

fn read_input(file: &PathBuf) -> Result<Vec<u8>> {
    if file.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)?;
        return Ok(buf);
    }
    std::fs::read(file).with_context(|| format!("reading {}", file.display()))
}
