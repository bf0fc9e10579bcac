use thiserror::Error;

#[derive(Debug, Error)]
pub enum PlatformError {
    #[error(
        "--insecure-dev makes every port keyless admin, so it runs only on loopback; services.host is {host:?} (use 127.0.0.1, or run with API keys)"
    )]
    InsecureDevNotLoopback { host: String },
    #[error("creating data directory {path}: {source}")]
    DataDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Journal(#[from] journal::JournalError),
    #[error(transparent)]
    Sinks(#[from] sinks::SinkError),
    #[error(transparent)]
    Blotter(#[from] blotter::BlotterError),
    #[error(transparent)]
    ClickHouse(#[from] clickhouse_sink::ClickHouseError),
    #[error(
        "binding {service} on {addr}: {source} (is another trade2026 or program using the port?)"
    )]
    Bind {
        service: &'static str,
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Feed(#[from] feeds::FeedError),
    #[error("bad --feed {spec:?}: {reason}")]
    FeedSpec { spec: String, reason: String },
    #[error(transparent)]
    Engine(#[from] engine::EngineError),
    #[error(transparent)]
    Core(#[from] gateway::StartError),
    #[error(transparent)]
    Runtime(#[from] runtime::RuntimeError),
    #[error(transparent)]
    Keys(#[from] auth::AuthError),
    #[error(transparent)]
    Quality(#[from] execution_quality::QualityError),
    #[error(transparent)]
    Scanner(#[from] compliance_scanner::ScannerError),
    #[error(transparent)]
    Ptrc(#[from] ptrc_service::PtrcServiceError),
    #[error(transparent)]
    Reports(#[from] reports::ReportError),
    #[error(transparent)]
    Features(#[from] feature_pipeline::PipelineError),
    #[error(transparent)]
    Logger(#[from] logger::LoggerError),
    #[error(transparent)]
    Monitoring(#[from] monitoring::MonitorError),
    /// A setting that cannot work (a server that does not answer, a stream that is missing);
    /// the message names the setting.
    #[error("{setting}: {reason}")]
    Setting {
        setting: &'static str,
        reason: String,
    },
    #[error("a background task failed: {0}")]
    Task(String),
}
