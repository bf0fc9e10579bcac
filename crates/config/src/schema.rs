//! The configuration schema: every section, its keys and their defaults.
//!
//! Every struct is `#[serde(default)]`, so any subset of keys (including none at all) yields a
//! working platform. Field names are the YAML keys; docs/CONFIG.md documents each one.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use model::{Decimal, Price, Symbol, Venue};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// The whole platform configuration: the platform's own sections plus the plan's per-service
/// files (ptrc: `service`, `clickhouse`, `questdb`, `seaweedfs`, `modules`; feast-pipeline:
/// `feast`, `materialization`), which load unchanged.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    pub platform: PlatformConfig,
    pub services: ServicesConfig,
    pub feed: FeedConfig,
    pub journal: JournalConfig,
    pub sinks: SinksConfig,
    pub gateway: GatewayConfig,
    pub risk: RiskConfig,
    pub venue: VenueSection,
    pub engine: EngineSection,
    /// Execution-quality parameters (the spec's names: `rs_horizons_ms`, `session_close`, ...).
    pub execution_quality: execq::Params,
    /// Surveillance parameters (the spec's names: `wash_window_ms`, `spoof_k_size`, ...).
    pub surveillance: surveillance::Params,
    pub compliance_scanner: ComplianceScannerSection,
    pub logger: LoggerSection,
    pub monitoring: MonitoringSection,
    /// The NATS JetStream bus of `trade2026 run <service>` (unused by `up`).
    pub nats: NatsConfig,
    // --- the plan's per-service file keys ---------------------------------------------------
    pub service: ServiceHeader,
    pub clickhouse: ClickHouseConfig,
    pub questdb: QuestDbConfig,
    pub seaweedfs: SeaweedFsConfig,
    pub modules: ModulesConfig,
    pub feast: FeastConfig,
    pub materialization: MaterializationConfig,
}

impl Config {
    /// Where the journal lives: `journal.path`, relative to `platform.data_dir` unless absolute.
    pub fn journal_path(&self) -> PathBuf {
        self.platform.data_dir.join(&self.journal.path)
    }

    /// The API-key file every HTTP service checks: `platform.keys_file`, or
    /// `<data_dir>/api_keys.json`. Services of one cluster point at the same file.
    pub fn keys_path(&self) -> PathBuf {
        self.platform
            .keys_file
            .clone()
            .unwrap_or_else(|| self.platform.data_dir.join("api_keys.json"))
    }

    /// Where the market-data sinks store ticks and alt data (SQLite file).
    pub fn marketdata_path(&self) -> PathBuf {
        self.platform.data_dir.join(&self.sinks.path)
    }

    /// The port a named service listens on. A per-service file (`service: {name, port}`)
    /// overrides the platform-wide `services` table for the service it names.
    pub fn service_port(&self, name: &str) -> Option<u16> {
        if self.service.name.as_deref() == Some(name)
            && let Some(port) = self.service.port
        {
            return Some(port);
        }
        self.services.port(name)
    }

    /// The log level for a named service: `service.log_level` when the file configures that
    /// service, otherwise `platform.log_level`.
    pub fn log_level_for(&self, name: &str) -> LogLevel {
        match (&self.service.name, self.service.log_level) {
            (Some(n), Some(level)) if n == name => level,
            _ => self.platform.log_level,
        }
    }
}

/// Declares a string-valued enum that reads case-insensitively (the plan writes `"INFO"` and
/// `"FIFO"`, people type `info`) and writes its canonical spelling.
macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            fn expected() -> String {
                let names: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                format!("one of {}", names.join(", "))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str().eq_ignore_ascii_case(s.trim()))
                    .ok_or_else(|| format!("expected {}, got {:?}", Self::expected(), s))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl Visitor<'_> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str(&$name::expected())
                    }
                    fn visit_str<E: de::Error>(self, s: &str) -> Result<$name, E> {
                        s.parse().map_err(E::custom)
                    }
                }
                d.deserialize_str(V)
            }
        }
    };
}

text_enum!(
    /// Log output format.
    LogFormat {
        /// Human-readable lines.
        #[default]
        Text => "text",
        /// One JSON object per line (for log shippers).
        Json => "json",
    }
);

text_enum!(
    /// Log verbosity; read case-insensitively (`INFO` and `info` are the same).
    LogLevel {
        Trace => "trace",
        Debug => "debug",
        #[default]
        Info => "info",
        Warn => "warn",
        Error => "error",
    }
);

impl LogLevel {
    /// The level as a `tracing` / `EnvFilter` directive (`info`).
    pub fn as_filter(self) -> &'static str {
        self.as_str()
    }
}

text_enum!(
    /// How realized P&L matches sells against earlier buys.
    PnlMethod {
        /// First in, first out.
        #[default]
        Fifo => "FIFO",
        /// Last in, first out.
        Lifo => "LIFO",
        /// Average cost.
        Avg => "AVG",
        /// Highest cost first (minimizes realized gains).
        Hifo => "HIFO",
    }
);

text_enum!(
    /// Where market data comes from.
    FeedMode {
        /// The built-in deterministic random walk (no network).
        #[default]
        Synthetic => "synthetic",
        /// Public exchange websockets (`feed.live.instruments`).
        Live => "live",
    }
);

/// `platform`: process-wide settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PlatformConfig {
    /// Root directory for all state (journal, market-data database, reports).
    pub data_dir: PathBuf,
    pub log_format: LogFormat,
    pub log_level: LogLevel,
    /// Print the per-order lines (order accepted, rejected, filled, canceled, expired,
    /// triggered) on the terminal too. Off by default: at hundreds of orders a second they
    /// bury everything else there and cost the order path ~10% of its throughput; the logger
    /// (8112) stores every one of them either way (search, tail, order timeline).
    pub terminal_order_lines: bool,
    /// When every consumer snapshots its state (a restart replays only what came after).
    pub snapshots: SnapshotsConfig,
    /// The API-key file (`trade2026 keys` writes it). Unset: `<data_dir>/api_keys.json`.
    /// Services of one cluster, each with its own data dir, share one file through this key.
    pub keys_file: Option<PathBuf>,
}

impl Default for PlatformConfig {
    fn default() -> Self {
        PlatformConfig {
            data_dir: PathBuf::from("./data"),
            log_format: LogFormat::Text,
            log_level: LogLevel::Info,
            terminal_order_lines: false,
            snapshots: SnapshotsConfig::default(),
            keys_file: None,
        }
    }
}

/// `platform.snapshots`: a consumer snapshots after `every_events` events or `every_secs`
/// seconds (whichever comes first, if anything changed) and at shutdown, keeping `keep` files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SnapshotsConfig {
    pub every_events: u64,
    pub every_secs: u64,
    pub keep: usize,
}

impl Default for SnapshotsConfig {
    fn default() -> Self {
        SnapshotsConfig {
            every_events: 50_000,
            every_secs: 60,
            keep: 3,
        }
    }
}

/// `services`: the bind host and the port of each HTTP service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServicesConfig {
    /// Address every service binds to. Loopback by default so a fresh install exposes nothing.
    pub host: String,
    pub gateway: u16,
    pub ptrc: u16,
    pub execution_quality: u16,
    pub compliance_scanner: u16,
    pub logger: u16,
    pub monitoring: u16,
    pub feature_pipeline: u16,
    /// `services.http`: limits and browser rules of every listener.
    pub http: HttpConfig,
}

/// `services.http`: what every HTTP listener enforces (docs/SECURITY.md explains each).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HttpConfig {
    /// Open connections per service; one more is answered 503 and closed.
    pub max_connections: usize,
    /// Requests in progress per service; one more is answered 503 `overloaded`.
    pub max_in_flight: usize,
    /// A request not answered within this is answered 503 `timeout`.
    pub request_timeout_secs: u64,
    /// A connection with no bytes either way for this long is closed.
    pub idle_timeout_secs: u64,
    /// Largest request body (routes with smaller bodies, such as `POST /orders`, cap lower).
    pub max_body_bytes: usize,
    /// Requests per second per API key, by the key's role (0 = unlimited); burst = 2 x rate.
    pub rate_per_key: RatePerKey,
    /// A 429 for a key over its rate is answered after this wait (its Retry-After), so a
    /// client that ignores it slows itself down.
    pub rate_limit_penalty_ms: u64,
    /// Browser origins (`https://desk.example.com`) allowed to send writes.
    pub allowed_origins: Vec<String>,
    /// Host names accepted on a loopback listener besides localhost, 127.0.0.1 and `[::1]`.
    pub allowed_hosts: Vec<String>,
    /// Open execution-report streams (`GET /stream`), in all and per key.
    pub max_streams: usize,
    pub max_streams_per_key: usize,
}

/// `services.http.rate_per_key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RatePerKey {
    pub trader: u32,
    pub compliance: u32,
    pub admin: u32,
}

impl Default for RatePerKey {
    fn default() -> Self {
        RatePerKey {
            trader: 500,
            compliance: 200,
            admin: 0,
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_connections: 1024,
            max_in_flight: 4096,
            request_timeout_secs: 30,
            idle_timeout_secs: 120,
            max_body_bytes: 2 * 1024 * 1024,
            rate_per_key: RatePerKey::default(),
            rate_limit_penalty_ms: 1000,
            allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            max_streams: 256,
            max_streams_per_key: 16,
        }
    }
}

impl Default for ServicesConfig {
    fn default() -> Self {
        ServicesConfig {
            host: "127.0.0.1".to_owned(),
            gateway: 8099,
            ptrc: 8109,
            execution_quality: 8110,
            compliance_scanner: 8111,
            logger: 8112,
            monitoring: 8113,
            feature_pipeline: 6566,
            http: HttpConfig::default(),
        }
    }
}

impl ServicesConfig {
    /// Every service with its port, in a fixed order (for validation and listings).
    pub fn ports(&self) -> [(&'static str, u16); 7] {
        [
            ("gateway", self.gateway),
            ("ptrc", self.ptrc),
            ("execution_quality", self.execution_quality),
            ("compliance_scanner", self.compliance_scanner),
            ("logger", self.logger),
            ("monitoring", self.monitoring),
            ("feature_pipeline", self.feature_pipeline),
        ]
    }

    /// The port of a service by its key name (`execution_quality`; `-` is accepted for `_`).
    pub fn port(&self, name: &str) -> Option<u16> {
        let name = name.replace('-', "_");
        self.ports()
            .into_iter()
            .find(|(n, _)| *n == name)
            .map(|(_, p)| p)
    }
}

/// `feed`: the market-data source.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct FeedConfig {
    pub mode: FeedMode,
    pub synthetic: SyntheticFeedConfig,
    pub live: LiveFeedConfig,
}

/// `feed.synthetic`: the deterministic simulated market.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SyntheticFeedConfig {
    /// Venue name the simulated instruments trade on.
    pub venue: Venue,
    /// RNG seed: the same seed replays the same prices.
    pub seed: u64,
    /// Time between simulated ticks per symbol.
    pub tick_interval_ms: u64,
    pub symbols: Vec<SyntheticSymbol>,
}

/// One simulated instrument and the price its random walk starts from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyntheticSymbol {
    pub symbol: Symbol,
    pub start_price: Price,
}

impl Default for SyntheticFeedConfig {
    fn default() -> Self {
        // BTCUSDT and ETHUSDT start where the plan's example orders are priced (a limit buy of
        // BTCUSDT at 45000), so those orders pass the price collar on a fresh `up`.
        let symbols = [
            ("BTCUSDT", Decimal::new(45_000, 0)),
            ("ETHUSDT", Decimal::new(2_500, 0)),
            ("SOLUSDT", Decimal::new(150, 0)),
            ("BNBUSDT", Decimal::new(600, 0)),
            ("XRPUSDT", Decimal::new(6, 1)),
        ]
        .into_iter()
        .map(|(s, p)| SyntheticSymbol {
            symbol: builtin(Symbol::new(s)),
            start_price: builtin(Price::new(p)),
        })
        .collect();
        SyntheticFeedConfig {
            venue: builtin(Venue::new("sim")),
            seed: 42,
            tick_interval_ms: 250,
            symbols,
        }
    }
}

/// Unwraps a built-in default constant. These are compile-time literals checked by the
/// `defaults_are_valid` test, never user input.
fn builtin<T, E: fmt::Display>(r: Result<T, E>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => unreachable!("built-in default rejected: {e}"),
    }
}

/// `feed.live`: public exchange websocket feeds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LiveFeedConfig {
    /// `exchange:SYMBOL,SYMBOL` specs, e.g. `binance:BTCUSDT,ETHUSDT`.
    pub instruments: Vec<LiveSpec>,
    /// Websocket URL per exchange, replacing the built-in endpoint (tests point this at a
    /// local server).
    pub ws_urls: BTreeMap<Venue, String>,
    /// Seconds a connection may stay silent (not even a heartbeat or pong) before it is
    /// replaced; a symbol without data for this long is reported stale.
    pub idle_timeout_secs: u64,
}

impl Default for LiveFeedConfig {
    fn default() -> Self {
        LiveFeedConfig {
            instruments: Vec::new(),
            ws_urls: BTreeMap::new(),
            idle_timeout_secs: 30,
        }
    }
}

/// One `exchange:SYMBOL,SYMBOL,...` spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveSpec {
    pub venue: Venue,
    pub symbols: Vec<Symbol>,
}

impl FromStr for LiveSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad =
            |why: &str| format!("expected \"exchange:SYMBOL[,SYMBOL...]\" ({why}), got {s:?}");
        let (venue, symbols) = s.split_once(':').ok_or_else(|| bad("missing ':'"))?;
        let venue = Venue::new(venue.trim()).map_err(|e| bad(&e.to_string()))?;
        let symbols = symbols
            .split(',')
            .map(|sym| Symbol::new(sym.trim()).map_err(|e| bad(&e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(LiveSpec { venue, symbols })
    }
}

impl fmt::Display for LiveSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.venue)?;
        for (i, s) in self.symbols.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(s.as_str())?;
        }
        Ok(())
    }
}

impl Serialize for LiveSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for LiveSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = LiveSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"exchange:SYMBOL[,SYMBOL...]\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<LiveSpec, E> {
                s.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

/// `journal`: the append-only event log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct JournalConfig {
    /// Journal directory, relative to `platform.data_dir` unless absolute.
    pub path: PathBuf,
}

impl Default for JournalConfig {
    fn default() -> Self {
        JournalConfig {
            path: PathBuf::from("journal"),
        }
    }
}

/// `sinks`: the market-data store written by sink-ticks / sink-alt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SinksConfig {
    /// SQLite file, relative to `platform.data_dir` unless absolute. Kept apart from the
    /// journal so it can be deleted and rebuilt by replaying the journal.
    pub path: PathBuf,
    /// Journal records written per transaction.
    pub batch_size: usize,
}

impl Default for SinksConfig {
    fn default() -> Self {
        SinksConfig {
            path: PathBuf::from("marketdata.db"),
            batch_size: 1000,
        }
    }
}

/// `gateway`: the order-entry API (its port is `services.gateway`). Filled by the gateway issue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GatewayConfig {
    /// Account used when a request names none (the plan's examples use `test_account`).
    pub default_account: String,
    /// How long a client order id is remembered for idempotent order entry (seconds): a repeat
    /// within it returns the original order instead of placing a new one.
    pub idempotency_window_secs: u64,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            default_account: "test_account".to_owned(),
            idempotency_window_secs: 24 * 3600,
        }
    }
}

/// `risk`: pre-trade risk limits (defaults, per account, per symbol, per account+symbol); the
/// schema is the risk crate's `RiskLimits`, documented in docs/CONFIG.md.
pub type RiskConfig = risk::RiskLimits;

/// `venue`: the paper venue's fees, market-order slippage and latency model.
pub type VenueSection = venue::VenueConfig;

/// `compliance_scanner`: how the scanner links accounts to beneficial owners.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ComplianceScannerSection {
    /// Beneficial owner per account; an account not listed is its own owner.
    pub account_owners: BTreeMap<String, String>,
}

/// `logger`: the log store of the logger service (port `services.logger`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoggerSection {
    /// Lines (and order-timeline entries) older than this many days are deleted.
    pub retention_days: u32,
    /// Most bytes the store may use; beyond it the oldest lines are deleted first.
    pub max_bytes: u64,
    /// The least severe level of the platform's own `tracing` events the logger stores
    /// (independent of what the terminal shows, `platform.log_level`).
    pub level: LogLevel,
}

impl Default for LoggerSection {
    fn default() -> Self {
        LoggerSection {
            retention_days: 7,
            max_bytes: 1 << 30,
            level: LogLevel::Info,
        }
    }
}

/// `monitoring`: the monitoring service (port `services.monitoring`): what it scrapes, how much
/// history it keeps, its rules and where alerts go (docs/MONITORING.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MonitoringSection {
    /// Seconds between scrapes of every target; the rules are evaluated after each round.
    pub scrape_interval_secs: u64,
    /// A target that has not answered its scrape within this many seconds is down.
    pub scrape_timeout_secs: u64,
    /// Minutes of history kept per series in memory (charts and rule windows).
    pub history_minutes: u64,
    /// A YAML file of alert rules used instead of the built-in ones.
    pub rules_file: Option<PathBuf>,
    /// Where alerts are POSTed, in Alertmanager's webhook format (version 4); none: alerts are
    /// only shown (`GET /api/v1/alerts`, the status page).
    pub webhook_url: Option<String>,
    /// Minutes after which an alert still firing is sent to the webhook again.
    pub repeat_interval_minutes: u64,
    /// The address people open the status page at, for links in alerts (`generatorURL`,
    /// `externalURL`); default: the address the service bound.
    pub external_url: Option<String>,
    /// Targets scraped besides the platform's own services (under `up`); on their own (a
    /// monitoring process run apart) these are all it watches.
    pub targets: Vec<MonitoringTarget>,
}

/// One scrape target: the service name alerts and the status page show, and its metrics URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitoringTarget {
    pub service: String,
    /// `http://host:port/metrics`.
    pub url: String,
}

impl Default for MonitoringSection {
    fn default() -> Self {
        MonitoringSection {
            scrape_interval_secs: 5,
            scrape_timeout_secs: 2,
            history_minutes: 60,
            rules_file: None,
            webhook_url: None,
            repeat_interval_minutes: 60,
            external_url: None,
            targets: Vec::new(),
        }
    }
}

/// `engine`: the trading engine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EngineSection {
    /// UTC time (`HH:MM`) at which DAY orders expire; `null` disables expiry.
    pub day_session_end_utc: Option<String>,
    /// How long finished orders and their client order ids stay in the engine's memory.
    pub retention: oms::Retention,
}

impl Default for EngineSection {
    fn default() -> Self {
        EngineSection {
            day_session_end_utc: Some("00:00".to_owned()),
            retention: oms::Retention::default(),
        }
    }
}

/// `service`: the header of a per-service file (`name`, `port`, `log_level`). When set, `port`
/// and `log_level` apply to the service named by `name` (see [`Config::service_port`]).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceHeader {
    pub name: Option<String>,
    pub port: Option<u16>,
    pub log_level: Option<LogLevel>,
}

/// `nats`: the JetStream bus between the services of `trade2026 run <service>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NatsConfig {
    /// Server URL (`nats://host:4222`; several comma-separated). In the plan's containers
    /// `nats://nats:4222`.
    pub url: String,
    /// The stream holding every committed journal event (stream sequence = journal sequence).
    pub stream: String,
    /// Subject namespace: events go out on `<prefix>.<subject>` (`trade2026.orders.acct1`).
    pub prefix: String,
    /// The stream `marketdata` publishes normalized market data to, for the core to journal.
    pub ingest_stream: String,
    /// Its subject namespace (outside `prefix`, so the event stream never captures it).
    pub ingest_prefix: String,
    /// How long a service waits for NATS at start before it exits with an error.
    pub connect_timeout_secs: u64,
}

impl Default for NatsConfig {
    fn default() -> Self {
        NatsConfig {
            url: "nats://127.0.0.1:4222".to_owned(),
            stream: "TRADE2026".to_owned(),
            prefix: "trade2026".to_owned(),
            ingest_stream: "TRADE2026_INGEST".to_owned(),
            ingest_prefix: "trade2026-ingest".to_owned(),
            connect_timeout_secs: 10,
        }
    }
}

/// `clickhouse`: external ClickHouse (the plan's analytical store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClickHouseConfig {
    /// HTTP endpoint; credentials go in the URL (`http://user:password@clickhouse:8123`) so
    /// that `config check` and banners redact them like every connection string.
    pub http_url: String,
    pub database: String,
}

impl Default for ClickHouseConfig {
    fn default() -> Self {
        ClickHouseConfig {
            http_url: "http://127.0.0.1:8123".to_owned(),
            database: "trade2026".to_owned(),
        }
    }
}

/// `questdb`: external QuestDB (the plan's tick store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct QuestDbConfig {
    pub http_url: String,
    pub pg_url: String,
}

impl Default for QuestDbConfig {
    fn default() -> Self {
        QuestDbConfig {
            http_url: "http://127.0.0.1:9000".to_owned(),
            pg_url: "postgresql://127.0.0.1:8812/qdb".to_owned(),
        }
    }
}

/// `seaweedfs`: S3-compatible object store for reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SeaweedFsConfig {
    /// S3 endpoint for reports. Unset (the default): reports go to `<data_dir>/reports`.
    pub s3_endpoint: Option<String>,
    pub bucket: String,
    /// Key prefix for report objects.
    pub prefix: String,
}

impl Default for SeaweedFsConfig {
    fn default() -> Self {
        SeaweedFsConfig {
            s3_endpoint: None,
            bucket: "trader2026".to_owned(),
            prefix: "reports/".to_owned(),
        }
    }
}

/// `modules`: the ptrc (P&L, tax, risk, compliance) reporting modules.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ModulesConfig {
    pub pnl: PnlModule,
    pub tax: TaxModule,
    pub risk: RiskModule,
    pub compliance: ComplianceModule,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PnlModule {
    pub enabled: bool,
    pub default_method: PnlMethod,
}

impl Default for PnlModule {
    fn default() -> Self {
        PnlModule {
            enabled: true,
            default_method: PnlMethod::Fifo,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TaxModule {
    pub enabled: bool,
    /// Days before and after a loss sale in which a repurchase makes it a wash sale
    /// (30 under US rules).
    pub wash_sale_window_days: u32,
}

impl Default for TaxModule {
    fn default() -> Self {
        TaxModule {
            enabled: true,
            wash_sale_window_days: 30,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RiskModule {
    pub enabled: bool,
    /// VaR confidence level, strictly between 0 and 1; kept exact (`0.99`, not 0.98999...).
    #[serde(deserialize_with = "probability")]
    pub var_confidence: Decimal,
}

impl Default for RiskModule {
    fn default() -> Self {
        RiskModule {
            enabled: true,
            var_confidence: Decimal::new(99, 2),
        }
    }
}

/// Reads a probability from a YAML number (or a numeric string) exactly, with an error that
/// says what was expected rather than "expected a Decimal".
fn probability<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
    struct V;
    const EXPECTED: &str = "a number between 0 and 1";
    impl Visitor<'_> for V {
        type Value = Decimal;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(EXPECTED)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Decimal, E> {
            Ok(Decimal::from(v))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Decimal, E> {
            Ok(Decimal::from(v))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Decimal, E> {
            // f64's Display is the shortest text that round-trips, so 0.99 reads as exactly 0.99.
            Decimal::from_str(&v.to_string())
                .map_err(|_| E::custom(format!("expected {EXPECTED}, got {v}")))
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<Decimal, E> {
            Decimal::from_str(s.trim())
                .map_err(|_| E::custom(format!("expected {EXPECTED}, got {s:?}")))
        }
    }
    d.deserialize_any(V)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ComplianceModule {
    pub enabled: bool,
    /// Run wash-trading / spoofing surveillance over the order flow.
    pub surveillance_enabled: bool,
}

impl Default for ComplianceModule {
    fn default() -> Self {
        ComplianceModule {
            enabled: true,
            surveillance_enabled: true,
        }
    }
}

/// `feast`: the feature store the feature pipeline materializes into.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FeastConfig {
    /// Feature repository directory.
    pub repo_path: PathBuf,
    pub online_store: OnlineStoreConfig,
    pub offline_store: OfflineStoreConfig,
}

impl Default for FeastConfig {
    fn default() -> Self {
        FeastConfig {
            repo_path: PathBuf::from("feast"),
            online_store: OnlineStoreConfig::default(),
            offline_store: OfflineStoreConfig::default(),
        }
    }
}

/// `feast.online_store`: where served (latest) feature values live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OnlineStoreConfig {
    /// Store kind (`redis` covers Valkey).
    #[serde(rename = "type")]
    pub kind: String,
    /// `host:port` or `redis://host:port`. Unset means no external online store: features are
    /// kept in process.
    pub connection_string: Option<String>,
}

impl Default for OnlineStoreConfig {
    fn default() -> Self {
        OnlineStoreConfig {
            kind: "redis".to_owned(),
            connection_string: None,
        }
    }
}

/// `feast.offline_store`: the historical source features are computed from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OfflineStoreConfig {
    #[serde(rename = "type")]
    pub kind: String,
    pub host: String,
    pub port: u16,
    pub database: String,
}

impl Default for OfflineStoreConfig {
    fn default() -> Self {
        OfflineStoreConfig {
            kind: "clickhouse".to_owned(),
            host: "127.0.0.1".to_owned(),
            port: 8123,
            database: "trade2026".to_owned(),
        }
    }
}

/// `materialization`: the feature pipeline's schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MaterializationConfig {
    /// Minutes between runs; must be positive.
    pub interval_minutes: u32,
    /// Feature views to materialize.
    pub features: Vec<String>,
    /// A view whose newest materialized value is older than this is flagged stale.
    pub freshness_bound_minutes: u32,
}

impl Default for MaterializationConfig {
    fn default() -> Self {
        MaterializationConfig {
            interval_minutes: 5,
            freshness_bound_minutes: 5,
            features: ["market_features", "order_features", "position_features"]
                .map(str::to_owned)
                .to_vec(),
        }
    }
}
