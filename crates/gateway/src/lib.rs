//! The gateway service (port 8099): the platform's REST front door.
//!
//! Order entry (`POST /orders`), order/fill/position views, a live stream of execution reports
//! (server-sent events), market data, and the risk admin endpoints. Every route is described in
//! `openapi.json`, served at `/openapi.json`. Errors are `{"error":{"code","message"}}`.

mod market;
pub mod orders;
mod stream;

pub use stream::StreamSlots;

pub use auth::{Accounts, AllMarker, ApiKeys, Principal, Role};
pub use market::{MarketCache, MarketListing, MarketSnapshot};

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRef, Path, State};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use telemetry::http::ApiError;

/// The OpenAPI 3 description of every route.
pub const OPENAPI: &str = include_str!("openapi.json");

/// Everything the gateway's handlers share.
#[derive(Clone)]
pub struct Gateway {
    pub market: MarketCache,
    pub engine: engine::Engine,
    pub keys: ApiKeys,
    pub reads: Reads,
    /// Ends long-lived responses (the execution-report stream) at shutdown, so a connected
    /// client cannot keep the process from stopping.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// Open execution-report streams, capped in all and per key.
    pub streams: Arc<StreamSlots>,
}

/// Where reads come from: the blotter (orders, fills) and the positions view, both written
/// from the journal after commit (each read waits for its view to reach the journal's head).
#[derive(Clone)]
pub struct Reads {
    pub blotter: blotter::Blotter,
    pub blotter_writer: runtime::ConsumerHandle<blotter::BlotterWriter>,
    pub positions: runtime::ConsumerHandle<blotter::PositionsView>,
    /// The journal itself, for resuming the execution-report stream (`Last-Event-ID`).
    pub journal: journal::Journal,
}

/// The handlers' state: one `Arc`, so a request clones one pointer instead of every handle the
/// gateway holds (cloning and dropping the whole `Gateway` per request was ~7% of the HTTP time
/// in the closed-loop profile, issue 13).
#[derive(Clone)]
pub struct Shared(Arc<Gateway>);

impl std::ops::Deref for Shared {
    type Target = Gateway;
    fn deref(&self) -> &Gateway {
        &self.0
    }
}

impl FromRef<Shared> for ApiKeys {
    fn from_ref(gw: &Shared) -> ApiKeys {
        gw.keys.clone()
    }
}

/// Largest `POST /orders` body (413 above it).
pub const ORDER_BODY_LIMIT: usize = 16 * 1024;

/// The gateway's own routes (merge with `telemetry::service_router` for /health and /metrics).
pub fn router(gw: Gateway) -> Router {
    Router::new()
        .route("/openapi.json", get(openapi))
        .route("/marketdata", get(list_symbols))
        .route("/marketdata/{symbol}", get(market_data))
        .route(
            "/orders",
            // An order is a few hundred bytes: a megabyte "order" is an attack, not a typo.
            post(orders::submit)
                .layer(axum::extract::DefaultBodyLimit::max(ORDER_BODY_LIMIT))
                .get(orders::list_orders),
        )
        .route(
            "/orders/{id}",
            get(orders::get_order).delete(orders::cancel_order),
        )
        .route("/fills", get(orders::list_fills))
        .route("/positions", get(orders::list_positions))
        .route("/stream", get(stream::stream))
        .route(
            "/admin/risk",
            get(orders::risk_limits).post(orders::change_risk),
        )
        .fallback(telemetry::http::fallback)
        .with_state(Shared(Arc::new(gw)))
}

/// `GET /openapi.json`: the document completed with the host's parts (`runtime::openapi`);
/// asked with a key, tailored to it (its accounts), and listing the symbols traded now.
async fn openapi(
    State(gw): State<Shared>,
    caller: Result<runtime::Caller, ApiError>,
) -> axum::response::Response {
    static DOC: std::sync::LazyLock<Result<runtime::openapi::Document, String>> =
        std::sync::LazyLock::new(|| runtime::openapi::Document::new(OPENAPI));
    let doc = match &*DOC {
        Ok(doc) => doc,
        Err(e) => return ApiError::internal(e.clone()).into_response(),
    };
    let mut value = doc.for_caller(caller.ok().as_ref().map(runtime::Caller::principal));
    let symbols = gw.market.symbols();
    if let (false, Some(schema)) = (
        symbols.is_empty(),
        value.pointer_mut("/components/schemas/TradedSymbol"),
    ) {
        schema["enum"] = serde_json::json!(symbols);
    }
    runtime::openapi::response(&value)
}

async fn list_symbols(State(gw): State<Shared>) -> axum::Json<MarketListing> {
    axum::Json(gw.market.listing())
}

async fn market_data(
    State(gw): State<Shared>,
    Path(symbol): Path<String>,
) -> Result<axum::Json<MarketSnapshot>, ApiError> {
    gw.market.snapshot(&symbol).map(axum::Json).ok_or_else(|| {
        ApiError::not_found(
            "unknown_symbol",
            format!(
                "symbol {symbol:?} has no market data; GET /marketdata lists the known symbols"
            ),
        )
    })
}

/// Why the core (engine + read views) could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Engine(#[from] engine::EngineError),
    #[error(transparent)]
    Runtime(#[from] runtime::RuntimeError),
    #[error(transparent)]
    Blotter(#[from] blotter::BlotterError),
}

/// What [`start_core`] needs.
pub struct CoreSpec {
    pub journal: journal::Journal,
    pub engine: engine::EngineConfig,
    /// Snapshots go to `<data_dir>/snapshots`, the blotter to `<data_dir>/blotter.db`.
    pub data_dir: std::path::PathBuf,
    /// How long the blotter remembers client order ids.
    pub idempotency_window_secs: u64,
    /// Where the engine reports what it holds in memory.
    pub gauges: engine::EngineGauges,
}

/// The started core: the engine, the read views the gateway answers from, and their tasks.
pub struct Core {
    pub engine: engine::Engine,
    pub reads: Reads,
    pub snapshotter: runtime::ConsumerHandle<engine::TradingCore>,
    pub tasks: Vec<(&'static str, tokio::task::JoinHandle<Result<(), String>>)>,
}

fn flatten<E: std::fmt::Display + Send + 'static>(
    task: tokio::task::JoinHandle<Result<(), E>>,
) -> tokio::task::JoinHandle<Result<(), String>> {
    tokio::spawn(async move {
        match task.await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        }
    })
}

/// Starts the trading engine (restored from its newest snapshot plus the journal tail) and
/// the read views behind the gateway: the blotter and the positions view.
pub async fn start_core(
    spec: CoreSpec,
    runner: &runtime::Runner<journal::InProcessBus>,
    shutdown: tokio_util::sync::CancellationToken,
) -> Result<Core, StartError> {
    let snapshots_root = spec.data_dir.join("snapshots");
    let policy = spec.engine.snapshots;
    let started = engine::Engine::start(
        spec.journal.clone(),
        spec.engine,
        runtime::SnapshotStore::open(&snapshots_root, "engine", policy.keep)?,
        runner,
        spec.gauges,
        shutdown,
    )
    .await?;
    let blotter_path = spec.data_dir.join("blotter.db");
    let writer = blotter::BlotterWriter::open(&blotter_path, spec.idempotency_window_secs)?;
    let (blotter_writer, blotter_task) = runner
        .start_stored(
            // Every order and fill read waits for this consumer (`orders.rs`, READ_BARRIER).
            runtime::Spec::new("blotter", blotter::BlotterWriter::FILTER)
                .with_tick(std::time::Duration::from_secs(60))
                .read_through_wait(),
            writer,
        )
        .await?;
    let (positions, positions_task) = runner
        .start_snapshotted(
            runtime::Spec::new("positions", blotter::PositionsView::FILTER),
            runtime::SnapshotStore::open(&snapshots_root, "positions", policy.keep)?,
            policy,
            runtime::fingerprint("positions-v1"),
            blotter::PositionsView::new,
        )
        .await?;
    let journal = spec.journal;
    Ok(Core {
        engine: started.engine,
        reads: Reads {
            blotter: blotter::Blotter::open(&blotter_path),
            blotter_writer,
            positions,
            journal,
        },
        snapshotter: started.snapshotter,
        tasks: vec![
            ("engine", flatten(started.task)),
            ("engine-snapshots", flatten(started.snapshotter_task)),
            ("blotter", flatten(blotter_task)),
            ("positions", flatten(positions_task)),
        ],
    })
}
