//! The ptrc service (port 8109): the `ptrc` computations over the platform's own data.
//!
//! Memory follows open positions, never history:
//!
//! - **P&L** (`POST /pnl/compute`) answers from [`books::PnlBooks`], a snapshotted journal
//!   consumer of `fills.*` keeping one incremental `ptrc::pnl::PnlBook` per method offered
//!   ([`books::OFFERED`]: FIFO, LIFO, AVG, HIFO): open lots and aggregates only. What a book
//!   cannot answer (a `to` date inside its history) is replayed from the blotter through
//!   `ptrc::pnl::PnlStream` ([`history`]), page by page, never holding the fills.
//! - **Tax** (`POST /tax/1099b`) reads the fills it needs from the blotter per request: the
//!   requested account's or owner's (all accounts of that beneficial owner, for wash sales)
//!   trades up to the year's end plus the wash-sale window, at most
//!   [`Limits::tax_max_trades`]. This is the one request whose memory grows with the history it
//!   covers; a streaming tax engine is a later task.
//! - **VaR and stress** (`POST /risk/var`, `/risk/stress`) take positions from the request or
//!   the books' net positions, prices from the request or the market-data store.
//! - **Compliance scans** (`POST /compliance/scan`) no longer re-run the detectors over the
//!   journal: the compliance scanner raises alerts continuously (journaled on
//!   `alerts.compliance`) and ptrc answers from its own durable alert store
//!   (`<data_dir>/ptrc_alerts.db`, written by its own `alerts::AlertWriter`). A store of its
//!   own rather than the scanner's file: ptrc does not depend on where (or whether, in the same
//!   process) the scanner keeps its store, so it works unchanged when ptrc runs as its own
//!   process; the price is a second copy of the alerts, which are few.
//!
//! # Times
//!
//! Every time field goes through the platform's one parser (`runtime::parse_time`): an
//! RFC 3339 time or a date (00:00 UTC).
//!
//! - P&L works in whole UTC days, as `ptrc::pnl::PnlOptions`: `from` and `to` select the UTC
//!   days of the instants given, **both inclusive** (`"to": "2025-01-31"` includes January 31;
//!   a time's clock part is ignored, `"to": "2025-01-31T12:00:00Z"` also includes all of
//!   January 31).
//! - A compliance scan works on alert times (the time of the event that completed the
//!   pattern): `from` inclusive, `to` **exclusive**, the platform's rule for instants
//!   (`"to": "2025-02-01"` covers January 31 entirely).
//!
//! The fill-to-trade rules (time order, negative fees) are in [`books`].

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alerts::{AlertStore, AlertWriter};
use auth::ApiKeys;
use axum::Router;
use axum::extract::FromRef;
use axum::routing::{get, post};
use journal::Bus;
use model::Decimal;
use reports::ReportStore;
use runtime::{ConsumerHandle, Probe, Runner, RuntimeError, SnapshotPolicy, SnapshotStore, Spec};
use tokio::task::JoinHandle;

pub mod books;
pub mod history;
mod html;
mod http;

pub use books::{BookConfig, PnlBooks};
pub use html::alerts_to_html;

#[derive(Debug, thiserror::Error)]
pub enum PtrcServiceError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Alerts(#[from] alerts::AlertsError),
}

/// The current mark (mid) of a symbol, from live market data.
pub type MarkSource = Arc<dyn Fn(&str) -> Option<Decimal> + Send + Sync>;

/// Where the service reads what it does not fold itself.
pub struct Inputs {
    pub marks: MarkSource,
    /// The market-data store (VaR/stress price history).
    pub history: Option<sinks::TickStore>,
    /// Every fill, paged (P&L replays and tax).
    pub blotter: blotter::Blotter,
    pub reports: ReportStore,
    pub keys: ApiKeys,
}

/// The config the service reads (`modules.*` of the ptrc file).
#[derive(Clone, Debug)]
pub struct Settings {
    pub default_method: ptrc::pnl::Method,
    pub tax: ptrc::tax::TaxSettings,
    pub var_confidence: f64,
    pub account_owners: HashMap<String, String>,
    pub limits: Limits,
}

/// Bounds on what one request may hold or wait for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most trades a tax report collects (422 `too_many_trades` beyond).
    pub tax_max_trades: usize,
    /// Most alerts a compliance scan returns (422 `too_many_alerts` beyond: narrow `from`/`to`
    /// or page through the scanner's `GET /alerts`).
    pub scan_max_alerts: usize,
    /// How long a request waits for the blotter or the alert store to catch up with what the
    /// service has seen (503 after).
    pub catch_up_wait: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            tax_max_trades: 500_000,
            scan_max_alerts: 10_000,
            catch_up_wait: Duration::from_secs(5),
        }
    }
}

/// The durable consumer name of ptrc's alert store writer.
pub const ALERTS_CONSUMER: &str = "ptrc-alerts";

/// ptrc's alert store under the data directory.
pub const ALERTS_FILE: &str = "ptrc_alerts.db";

/// What the handlers share.
#[derive(Clone)]
pub struct Ptrc {
    books: ConsumerHandle<PnlBooks>,
    alert_writer: ConsumerHandle<AlertWriter>,
    alerts: AlertStore,
    blotter: blotter::Blotter,
    marks: MarkSource,
    history: Option<Arc<Mutex<sinks::TickStore>>>,
    reports: ReportStore,
    keys: ApiKeys,
    settings: Arc<Settings>,
}

impl FromRef<Ptrc> for ApiKeys {
    fn from_ref(svc: &Ptrc) -> ApiKeys {
        svc.keys.clone()
    }
}

impl Ptrc {
    /// The P&L books (state, position, readiness).
    pub fn books(&self) -> &ConsumerHandle<PnlBooks> {
        &self.books
    }

    /// The alert store writer (position, readiness).
    pub fn alert_writer(&self) -> &ConsumerHandle<AlertWriter> {
        &self.alert_writer
    }

    /// The consumers whose readiness `/health` reports.
    pub fn probes(&self) -> Vec<Box<dyn Probe>> {
        vec![
            Box::new(self.books.clone()),
            Box::new(self.alert_writer.clone()),
        ]
    }
}

/// A started service: its state for the router and its consumer tasks.
pub struct Started {
    pub service: Ptrc,
    pub tasks: Vec<(&'static str, JoinHandle<Result<(), RuntimeError>>)>,
}

/// Starts the service's consumers: the P&L books (newest snapshot under
/// `<data_dir>/snapshots/ptrc-books` plus the journal tail) and the alert store writer
/// (`<data_dir>/ptrc_alerts.db`, resuming after its stored position).
pub async fn start<B: Bus>(
    runner: &Runner<B>,
    data_dir: &Path,
    policy: SnapshotPolicy,
    inputs: Inputs,
    mut settings: Settings,
) -> Result<Started, PtrcServiceError> {
    if !books::OFFERED.contains(&settings.default_method) {
        tracing::warn!(
            method = %settings.default_method,
            "ptrc: no P&L book for the configured default method; using FIFO"
        );
        settings.default_method = ptrc::pnl::Method::Fifo;
    }
    let config = BookConfig::default();
    let snapshots = SnapshotStore::open(&data_dir.join("snapshots"), books::CONSUMER, policy.keep)?;
    let (books_handle, books_task) = runner
        .start_snapshotted(
            Spec::new(books::CONSUMER, books::FILTER),
            snapshots,
            policy,
            config.fingerprint(),
            || PnlBooks::new(&config),
        )
        .await?;
    let alerts_path = data_dir.join(ALERTS_FILE);
    let (writer_handle, writer_task) = runner
        .start_stored(
            Spec::new(ALERTS_CONSUMER, alerts::FILTER),
            AlertWriter::open(&alerts_path)?,
        )
        .await?;
    let service = Ptrc {
        books: books_handle,
        alert_writer: writer_handle,
        alerts: AlertStore::open(&alerts_path)?,
        blotter: inputs.blotter,
        marks: inputs.marks,
        history: inputs.history.map(|h| Arc::new(Mutex::new(h))),
        reports: inputs.reports,
        keys: inputs.keys,
        settings: Arc::new(settings),
    };
    Ok(Started {
        service,
        tasks: vec![
            (books::CONSUMER, books_task),
            (ALERTS_CONSUMER, writer_task),
        ],
    })
}

/// The OpenAPI document of the routes, served at `/openapi.json` (see `runtime::openapi`).
pub const OPENAPI: &str = include_str!("openapi.json");

/// The service's routes (the host adds `/health`, `/metrics` and the JSON 404).
pub fn router(svc: Ptrc) -> Router {
    Router::new()
        .route("/openapi.json", runtime::openapi::route(OPENAPI))
        .route("/pnl/compute", post(http::pnl))
        .route("/tax/1099b", post(http::tax))
        .route("/risk/var", post(http::var))
        .route("/risk/stress", post(http::stress))
        .route("/compliance/scan", post(http::compliance_scan))
        .route("/reports", get(http::list_reports))
        .route("/reports/{id}", get(http::get_report))
        .with_state(svc)
}

/// Marks for `symbols` from live market data (symbols without one fall back to their last
/// trade price in the report).
fn marks_for(marks: &MarkSource, symbols: &[String]) -> BTreeMap<String, Decimal> {
    symbols
        .iter()
        .filter_map(|s| marks(s).map(|m| (s.clone(), m)))
        .collect()
}
