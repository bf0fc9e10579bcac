//! The ptrc service (port 8109): the `ptrc` computations over the platform's own data.
//!
//! Fills come from the journal (a consumer of `fills.>`, rebuilt by replay like every service),
//! marks from the live market data, price history from the market-data store, and compliance
//! scans run the same `surveillance` detectors as the scanner over the journal's history.
//! Every computation can be saved as a report (JSON, CSV, HTML) to the report store.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use auth::ApiKeys;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::NaiveDate;
use journal::{InProcessBus, Journal, JournalError, StartAt, Subscription};
use model::{Decimal, Event, Timestamp};
use ptrc::input::Trade;
use reports::{Format, ReportMeta, ReportStore};
use serde::Deserialize;
use telemetry::http::ApiError;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum PtrcServiceError {
    #[error(transparent)]
    Journal(#[from] JournalError),
}

/// The current mark (mid) of a symbol, from live market data.
pub type MarkSource = Arc<dyn Fn(&str) -> Option<Decimal> + Send + Sync>;

/// What the handlers share.
#[derive(Clone)]
pub struct Ptrc {
    trades: Arc<RwLock<Vec<Trade>>>,
    journal: Journal,
    marks: MarkSource,
    history: Option<Arc<Mutex<sinks::TickStore>>>,
    reports: ReportStore,
    keys: ApiKeys,
    settings: Settings,
}

/// The config the service reads (`modules.*` of the ptrc file, surveillance parameters).
#[derive(Clone, Debug)]
pub struct Settings {
    pub default_method: ptrc::pnl::Method,
    pub tax: ptrc::tax::TaxSettings,
    pub var_confidence: f64,
    pub surveillance: surveillance::Params,
    pub account_owners: HashMap<String, String>,
}

/// The fills of the journal as ptrc trades (maker rebates are not credited yet: a negative fee
/// counts as zero, documented in docs/ARCHITECTURE.md).
fn trade_of(event: &Event, owners: &HashMap<String, String>) -> Option<Trade> {
    let Event::OrderFilled(f) = event else {
        return None;
    };
    let account = f.account.to_string();
    Some(Trade {
        ts: f.ts,
        owner: owners
            .get(&account)
            .cloned()
            .unwrap_or_else(|| account.clone()),
        account,
        symbol: f.instrument.symbol.to_string(),
        side: f.side,
        qty: f.quantity.get(),
        price: f.price.get(),
        fee: f.fee.get().max(Decimal::ZERO),
        lot_ids: Vec::new(),
    })
}

/// Start following the journal's fills.
#[allow(clippy::too_many_arguments)]
pub fn start(
    journal: Journal,
    marks: MarkSource,
    history: Option<sinks::TickStore>,
    reports: ReportStore,
    keys: ApiKeys,
    settings: Settings,
    shutdown: CancellationToken,
) -> Result<(Ptrc, JoinHandle<Result<(), PtrcServiceError>>), PtrcServiceError> {
    let trades: Arc<RwLock<Vec<Trade>>> = Arc::default();
    let mut sub =
        InProcessBus::new(journal.clone()).subscribe_ephemeral("fills.>", StartAt::Beginning)?;
    let (book, owners) = (trades.clone(), settings.account_owners.clone());
    let task = tokio::spawn(async move {
        loop {
            let d = tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                d = sub.next() => d,
            };
            match d {
                Ok(d) => {
                    if let Some(t) = trade_of(&d.event, &owners) {
                        book.write().unwrap_or_else(|e| e.into_inner()).push(t);
                    }
                }
                Err(JournalError::Closed) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
    });
    let svc = Ptrc {
        trades,
        journal,
        marks,
        history: history.map(|h| Arc::new(Mutex::new(h))),
        reports,
        keys,
        settings,
    };
    Ok((svc, task))
}

/// The service's routes.
pub fn router(svc: Ptrc) -> Router {
    Router::new()
        .route("/pnl/compute", post(pnl))
        .route("/tax/1099b", post(tax))
        .route("/risk/var", post(var))
        .route("/risk/stress", post(stress))
        .route("/compliance/scan", post(compliance_scan))
        .route("/reports", get(list_reports))
        .route("/reports/{id}", get(get_report))
        .fallback(telemetry::http::fallback)
        .with_state(svc)
}

fn parse_body<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    // An empty body means "all defaults".
    let text: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(text).map_err(|e| {
        if e.is_syntax() || e.is_eof() {
            ApiError::bad_request("malformed_json", format!("the body is not valid JSON: {e}"))
        } else {
            ApiError::unprocessable("invalid_field", e.to_string())
        }
    })
}

fn ptrc_error(e: ptrc::PtrcError) -> ApiError {
    ApiError::unprocessable("invalid_input", e.to_string())
}

/// Who may read which accounts: a trader its own, compliance/admin all.
fn authorize(svc: &Ptrc, headers: &HeaderMap, account: Option<&str>) -> Result<(), ApiError> {
    let p = svc.keys.authenticate(headers)?;
    match account {
        Some(a) => match model::AccountId::new(a) {
            Ok(id) if p.sees(&id) => Ok(()),
            _ => Err(ApiError::not_found(
                "account_not_found",
                format!("no account {a} for this API key"),
            )),
        },
        None if p.account_filter().is_none() => Ok(()),
        None => Err(ApiError::bad_request(
            "missing_field",
            "missing field `account`",
        )),
    }
}

fn date_field(name: &str, v: &Option<String>) -> Result<Option<NaiveDate>, ApiError> {
    v.as_deref()
        .map(|s| {
            NaiveDate::parse_from_str(s.get(..10).unwrap_or(s), "%Y-%m-%d").map_err(|_| {
                ApiError::unprocessable(
                    "invalid_field",
                    format!("{name}: {s:?} is not a YYYY-MM-DD date"),
                )
            })
        })
        .transpose()
}

/// Save renderings when asked; the answer carries the report id.
async fn maybe_save(
    svc: &Ptrc,
    save: bool,
    (kind, account): (&str, Option<&str>),
    title: String,
    renderings: Vec<(Format, Vec<u8>)>,
) -> Result<Option<String>, ApiError> {
    if !save {
        return Ok(None);
    }
    let now = Timestamp::now();
    let meta = ReportMeta {
        id: reports::new_id(kind, now),
        kind: kind.to_string(),
        title,
        created_at: now,
        formats: renderings.iter().map(|(f, _)| *f).collect(),
        account: account.map(str::to_string),
    };
    svc.reports.save(&meta, &renderings).await.map_err(|e| {
        tracing::error!(error = %e, "report save failed");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "report_store_unavailable",
            e.to_string(),
        )
    })?;
    Ok(Some(meta.id))
}

fn with_report_id(mut value: serde_json::Value, id: Option<String>) -> serde_json::Value {
    if let (Some(id), Some(obj)) = (id, value.as_object_mut()) {
        obj.insert("report_id".into(), serde_json::Value::String(id));
    }
    value
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct PnlRequest {
    account: Option<String>,
    method: Option<String>,
    symbol: Option<String>,
    from: Option<String>,
    to: Option<String>,
    save: bool,
}

async fn pnl(
    State(svc): State<Ptrc>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: PnlRequest = parse_body(&body)?;
    authorize(&svc, &headers, req.account.as_deref())?;
    let method = match &req.method {
        Some(m) => m.parse::<ptrc::pnl::Method>().map_err(|_| {
            ApiError::unprocessable(
                "invalid_field",
                format!("method: {m:?} is not one of FIFO, LIFO, AVG, HIFO"),
            )
        })?,
        None => svc.settings.default_method,
    };
    let opts = ptrc::pnl::PnlOptions {
        account: req.account.clone(),
        symbol: req.symbol.as_ref().map(|s| s.to_ascii_uppercase()),
        from: date_field("from", &req.from)?,
        to: date_field("to", &req.to)?,
        ..Default::default()
    };
    let trades = svc.trades.read().unwrap_or_else(|e| e.into_inner()).clone();
    let symbols: std::collections::BTreeSet<&str> =
        trades.iter().map(|t| t.symbol.as_str()).collect();
    let marks: BTreeMap<String, Decimal> = symbols
        .into_iter()
        .filter_map(|s| (svc.marks)(s).map(|m| (s.to_string(), m)))
        .collect();
    let report = ptrc::pnl::compute(&trades, method, &marks, &opts).map_err(ptrc_error)?;
    let json = serde_json::to_value(&report).map_err(|e| ApiError::internal(e.to_string()))?;
    let id = maybe_save(
        &svc,
        req.save,
        ("pnl", req.account.as_deref()),
        format!(
            "P&L {} ({})",
            req.account.as_deref().unwrap_or("all accounts"),
            method.as_str()
        ),
        vec![
            (
                Format::Json,
                serde_json::to_vec_pretty(&json).unwrap_or_default(),
            ),
            (Format::Csv, ptrc::pnl::pnl_to_csv(&report).into_bytes()),
            (Format::Html, ptrc::pnl::pnl_to_html(&report).into_bytes()),
        ],
    )
    .await?;
    Ok(axum::Json(with_report_id(json, id)).into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct TaxRequest {
    account: Option<String>,
    owner: Option<String>,
    year: Option<i32>,
    save: bool,
}

async fn tax(
    State(svc): State<Ptrc>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: TaxRequest = parse_body(&body)?;
    let p = svc.keys.authenticate(&headers)?;
    let filter = match (&req.account, &req.owner) {
        (Some(a), None) => {
            authorize(&svc, &headers, Some(a))?;
            Some(ptrc::tax::TaxFilter::Account(a.clone()))
        }
        (None, Some(o)) => {
            if p.account_filter().is_some() {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    "an owner-wide report needs a compliance or admin key",
                ));
            }
            Some(ptrc::tax::TaxFilter::Owner(o.clone()))
        }
        (None, None) => {
            authorize(&svc, &headers, None)?;
            None
        }
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "invalid_field",
                "give `account` or `owner`, not both",
            ));
        }
    };
    let year = req
        .year
        .ok_or_else(|| ApiError::bad_request("missing_field", "missing field `year`"))?;
    let trades = svc.trades.read().unwrap_or_else(|e| e.into_inner()).clone();
    let report = ptrc::tax::form_8949(&trades, year, &svc.settings.tax, filter.as_ref())
        .map_err(ptrc_error)?;
    let json = serde_json::to_value(&report).map_err(|e| ApiError::internal(e.to_string()))?;
    let id = maybe_save(
        &svc,
        req.save,
        ("tax", req.account.as_deref()),
        format!("Form 8949 {year}"),
        vec![
            (
                Format::Json,
                serde_json::to_vec_pretty(&json).unwrap_or_default(),
            ),
            (Format::Csv, ptrc::tax::tax_to_csv(&report).into_bytes()),
            (Format::Html, ptrc::tax::tax_to_html(&report).into_bytes()),
        ],
    )
    .await?;
    Ok(axum::Json(with_report_id(json, id)).into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct ScanRequest {
    account: Option<String>,
    from: Option<String>,
    to: Option<String>,
    save: bool,
}

async fn compliance_scan(
    State(svc): State<Ptrc>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: ScanRequest = parse_body(&body)?;
    let p = svc.keys.authenticate(&headers)?;
    if !matches!(p.role, auth::Role::Compliance | auth::Role::Admin) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "compliance scans need a compliance or admin key",
        ));
    }
    let time = |name: &str, v: &Option<String>| {
        v.as_deref()
            .map(|s| {
                ptrc::input::parse_ts(s).ok_or_else(|| {
                    ApiError::unprocessable(
                        "invalid_field",
                        format!("{name}: {s:?} is not an ISO-8601 date or time"),
                    )
                })
            })
            .transpose()
    };
    let (from, to) = (time("from", &req.from)?, time("to", &req.to)?);
    // The journal's history in the interchange form, then the same detectors as the scanner.
    let journal = svc.journal.clone();
    let owners = svc.settings.account_owners.clone();
    let records =
        tokio::task::spawn_blocking(move || -> Result<Vec<interchange::Record>, JournalError> {
            let mut exporter = interchange::Exporter::new();
            let mut out = Vec::new();
            let mut next = 1;
            loop {
                let batch = journal.read_from(next, 10_000)?;
                let Some(last) = batch.last().map(|r| r.seq) else {
                    break;
                };
                for r in &batch {
                    if let Some(mut rec) = exporter.export(&r.event) {
                        if let Some(a) = &rec.account {
                            rec.owner = owners.get(a).cloned();
                        }
                        out.push(rec);
                    }
                }
                next = last + 1;
            }
            Ok(out)
        })
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "journal_unavailable",
                e.to_string(),
            )
        })?;
    let records: Vec<_> = records
        .into_iter()
        .filter(|r| from.is_none_or(|f| r.ts >= f) && to.is_none_or(|t| r.ts < t))
        .collect();
    let alerts = surveillance::scan(&records, &svc.settings.surveillance)
        .map_err(|e| ApiError::unprocessable("invalid_params", e.to_string()))?;
    let alerts: Vec<_> = alerts
        .into_iter()
        .filter(|a| {
            req.account
                .as_ref()
                .is_none_or(|acct| a.accounts.contains(acct))
        })
        .collect();
    let json = surveillance::alerts_to_json(&alerts);
    let id = maybe_save(
        &svc,
        req.save,
        ("compliance", None),
        "Compliance scan".to_string(),
        vec![
            (
                Format::Json,
                serde_json::to_vec_pretty(&json).unwrap_or_default(),
            ),
            (
                Format::Csv,
                surveillance::alerts_to_csv(&alerts).into_bytes(),
            ),
            (Format::Html, alerts_to_html(&alerts).into_bytes()),
        ],
    )
    .await?;
    Ok(axum::Json(with_report_id(json, id)).into_response())
}

/// Whether a key may read a report: its own account's reports; reports over several accounts
/// need a key that covers every account (compliance, admin).
fn may_read(p: &auth::Principal, meta: &ReportMeta) -> bool {
    match (&meta.account, p.account_filter()) {
        (_, None) => true,
        (Some(a), Some(_)) => model::AccountId::new(a.as_str()).is_ok_and(|id| p.sees(&id)),
        (None, Some(_)) => false,
    }
}

fn store_error(e: reports::ReportError) -> ApiError {
    match e {
        reports::ReportError::NotFound(id) => {
            ApiError::not_found("report_not_found", format!("no report {id:?}"))
        }
        e @ reports::ReportError::NoFormat { .. } => {
            ApiError::not_found("format_not_available", e.to_string())
        }
        e => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "report_store_unavailable",
            e.to_string(),
        ),
    }
}

async fn list_reports(State(svc): State<Ptrc>, headers: HeaderMap) -> Result<Response, ApiError> {
    let p = svc.keys.authenticate(&headers)?;
    let list: Vec<ReportMeta> = svc
        .reports
        .list()
        .await
        .map_err(store_error)?
        .into_iter()
        .filter(|m| may_read(&p, m))
        .collect();
    Ok(axum::Json(serde_json::json!({ "reports": list })).into_response())
}

async fn get_report(
    State(svc): State<Ptrc>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let p = svc.keys.authenticate(&headers)?;
    telemetry::http::check_params(&q, &["format"])?;
    let fmt = q.get("format").map(String::as_str).unwrap_or("json");
    let format = Format::parse(fmt).ok_or_else(|| {
        ApiError::unprocessable(
            "invalid_field",
            format!("format: {fmt:?} is not one of json, csv, html"),
        )
    })?;
    let meta = svc.reports.meta(&id).await.map_err(store_error)?;
    if !may_read(&p, &meta) {
        // As for orders: another account's report does not exist for this key.
        return Err(ApiError::not_found(
            "report_not_found",
            format!("no report {id:?}"),
        ));
    }
    let bytes = svc.reports.get(&id, format).await.map_err(store_error)?;
    Ok(([(header::CONTENT_TYPE, format.content_type())], bytes).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceRow {
    date: String,
    symbol: String,
    close: Decimal,
}

/// Where VaR and stress get positions and prices: the request, or the platform's own fills
/// and market-data store.
struct RiskInputs {
    account: Option<String>,
    /// Symbol -> signed quantity. Default: the account's net position from its fills.
    positions: Option<BTreeMap<String, Decimal>>,
    /// Daily closes. Default: the market-data store's daily closes of each position.
    prices: Option<Vec<PriceRow>>,
}

impl Ptrc {
    fn positions_of(&self, account: Option<&str>) -> BTreeMap<String, Decimal> {
        let mut out: BTreeMap<String, Decimal> = BTreeMap::new();
        for t in self.trades.read().unwrap_or_else(|e| e.into_inner()).iter() {
            if account.is_none_or(|a| t.account == a) {
                let signed = if t.side == model::Side::Buy {
                    t.qty
                } else {
                    -t.qty
                };
                *out.entry(t.symbol.clone()).or_default() += signed;
            }
        }
        out.retain(|_, q| !q.is_zero());
        out
    }

    fn risk_inputs(
        &self,
        inputs: &RiskInputs,
    ) -> Result<(BTreeMap<String, Decimal>, ptrc::input::PriceHistory), ApiError> {
        let positions = match &inputs.positions {
            Some(p) => p.clone(),
            None => self.positions_of(inputs.account.as_deref()),
        };
        if positions.is_empty() {
            return Err(ApiError::unprocessable(
                "no_positions",
                "there are no positions to measure",
            ));
        }
        let prices = match &inputs.prices {
            Some(rows) => {
                let mut text = String::from("date,symbol,close\n");
                for r in rows {
                    text.push_str(&format!("{},{},{}\n", r.date, r.symbol, r.close));
                }
                ptrc::input::read_prices(&text, "prices").map_err(ptrc_error)?
            }
            None => {
                let store = self.history.as_ref().ok_or_else(|| {
                    ApiError::unprocessable("no_price_history", "no market-data store configured")
                })?;
                let store = store.lock().unwrap_or_else(|e| e.into_inner());
                let (from, to) = (NaiveDate::MIN, chrono::Utc::now().date_naive());
                let mut h = ptrc::input::PriceHistory::new();
                for symbol in positions.keys() {
                    let closes = store.daily_closes(symbol, None, from, to).map_err(|e| {
                        ApiError::new(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "store_unavailable",
                            e.to_string(),
                        )
                    })?;
                    h.insert(
                        symbol.clone(),
                        closes.into_iter().map(|(d, p)| (d, p.get())).collect(),
                    );
                }
                h
            }
        };
        Ok((positions, prices))
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct VarHttpRequest {
    account: Option<String>,
    positions: Option<BTreeMap<String, Decimal>>,
    prices: Option<Vec<PriceRow>>,
    method: Option<String>,
    confidence: Option<f64>,
    horizon_days: Option<u32>,
    lookback_days: Option<usize>,
    seed: Option<u64>,
    save: bool,
}

async fn var(
    State(svc): State<Ptrc>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: VarHttpRequest = parse_body(&body)?;
    authorize(&svc, &headers, req.account.as_deref())?;
    let inputs = RiskInputs {
        account: req.account.clone(),
        positions: req.positions.clone(),
        prices: req.prices,
    };
    let mut var_req = ptrc::risk::VarRequest {
        confidence: req.confidence.unwrap_or(svc.settings.var_confidence),
        ..Default::default()
    };
    if let Some(m) = &req.method {
        var_req.method = m.parse().map_err(ptrc_error)?;
    }
    if let Some(h) = req.horizon_days {
        var_req.horizon_days = h;
    }
    var_req.lookback_days = req.lookback_days;
    if let Some(seed) = req.seed {
        var_req.seed = seed;
    }
    let (positions, prices) = svc.risk_inputs(&inputs)?;
    let report = ptrc::risk::value_at_risk(&positions, &prices, &var_req).map_err(ptrc_error)?;
    let json = serde_json::to_value(&report).map_err(|e| ApiError::internal(e.to_string()))?;
    let id = maybe_save(
        &svc,
        req.save,
        ("var", req.account.as_deref()),
        format!("VaR {} {}", var_req.method.as_str(), var_req.confidence),
        vec![
            (
                Format::Json,
                serde_json::to_vec_pretty(&json).unwrap_or_default(),
            ),
            (Format::Csv, ptrc::risk::var_to_csv(&report).into_bytes()),
            (Format::Html, ptrc::risk::var_to_html(&report).into_bytes()),
        ],
    )
    .await?;
    Ok(axum::Json(with_report_id(json, id)).into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct StressHttpRequest {
    account: Option<String>,
    positions: Option<BTreeMap<String, Decimal>>,
    prices: Option<Vec<PriceRow>>,
    /// A built-in historical scenario (see `ptrc::stress::scenarios`).
    scenario: Option<String>,
    /// User shocks: `BTCUSDT=-20%`, `class:crypto=-30%`.
    shocks: Vec<String>,
    asset_classes: BTreeMap<String, String>,
    save: bool,
}

async fn stress(
    State(svc): State<Ptrc>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: StressHttpRequest = parse_body(&body)?;
    authorize(&svc, &headers, req.account.as_deref())?;
    let inputs = RiskInputs {
        account: req.account.clone(),
        positions: req.positions.clone(),
        prices: req.prices,
    };
    let scenario = match (&req.scenario, req.shocks.is_empty()) {
        (Some(name), true) => ptrc::stress::Scenario::Historical { name: name.clone() },
        (None, false) => {
            ptrc::stress::Scenario::from_shocks(&req.shocks, req.asset_classes.clone())
                .map_err(ptrc_error)?
        }
        _ => {
            return Err(ApiError::bad_request(
                "invalid_field",
                "give either `scenario` or `shocks`",
            ));
        }
    };
    let (positions, prices) = svc.risk_inputs(&inputs)?;
    let report = ptrc::stress::stress(&positions, &prices, &scenario).map_err(ptrc_error)?;
    let json = serde_json::to_value(&report).map_err(|e| ApiError::internal(e.to_string()))?;
    let id = maybe_save(
        &svc,
        req.save,
        ("stress", req.account.as_deref()),
        "Stress test".to_string(),
        vec![
            (
                Format::Json,
                serde_json::to_vec_pretty(&json).unwrap_or_default(),
            ),
            (
                Format::Csv,
                ptrc::stress::stress_to_csv(&report).into_bytes(),
            ),
            (
                Format::Html,
                ptrc::stress::stress_to_html(&report).into_bytes(),
            ),
        ],
    )
    .await?;
    Ok(axum::Json(with_report_id(json, id)).into_response())
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A compliance scan as a self-contained page: alert counts per rule as an SVG bar chart, then
/// one table row per alert (no JavaScript).
pub fn alerts_to_html(alerts: &[surveillance::Alert]) -> String {
    let mut per_rule: BTreeMap<&str, usize> = BTreeMap::new();
    for a in alerts {
        *per_rule.entry(a.rule.as_str()).or_default() += 1;
    }
    let max = per_rule.values().copied().max().unwrap_or(1).max(1);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"520\" height=\"{}\" role=\"img\" aria-label=\"alerts per rule\">",
        per_rule.len() * 26 + 10
    );
    for (i, (rule, n)) in per_rule.iter().enumerate() {
        let y = i * 26 + 5;
        let w = 300 * n / max;
        svg.push_str(&format!(
            "<text x=\"0\" y=\"{}\" font-size=\"12\">{}</text><rect x=\"170\" y=\"{y}\" width=\"{w}\" height=\"18\" fill=\"#b5473a\"/><text x=\"{}\" y=\"{}\" font-size=\"12\">{n}</text>",
            y + 14,
            escape(rule),
            175 + w,
            y + 14
        ));
    }
    svg.push_str("</svg>");
    let mut rows = String::new();
    for a in alerts {
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:?}</td><td><code>{}</code></td></tr>",
            escape(&a.ts.to_string()),
            escape(a.rule.as_str()),
            escape(&a.subtype),
            escape(&a.owner),
            escape(&a.accounts.join(", ")),
            escape(&a.symbol),
            a.severity,
            escape(&a.key)
        ));
    }
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Compliance scan</title>\
         <style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;font-size:13px}}</style></head>\
         <body><h1>Compliance scan</h1><p>{} alert(s). Each is a candidate for review, not a finding.</p>{svg}\
         <table><tr><th>time</th><th>rule</th><th>subtype</th><th>owner</th><th>accounts</th><th>symbol</th><th>severity</th><th>key</th></tr>{rows}</table></body></html>",
        alerts.len()
    )
}
