//! The HTTP handlers. Every route takes the [`Caller`] (API key) and scopes what it reads with
//! `Caller::read_scope`; bodies go through `runtime::http::parse_json_or_default` (every field
//! is optional, an empty body means all defaults) and times through `runtime::parse_time`.

use std::collections::{BTreeMap, BTreeSet};

use auth::Role;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use model::{Decimal, Timestamp};
use ptrc::PtrcError;
use ptrc::pnl::{Method, PnlOptions, PnlReport};
use reports::{Format, ReportMeta};
use runtime::http::{ApiError, parse_json_or_default};
use runtime::{Caller, Params, Scope, parse_time};
use serde::Deserialize;

use crate::books::OFFERED;
use crate::history::{self, HistoryError};
use crate::{Ptrc, marks_for};

fn ptrc_error(e: PtrcError) -> ApiError {
    ApiError::unprocessable("invalid_input", e.to_string())
}

fn unavailable(code: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
}

fn history_error(e: HistoryError) -> ApiError {
    match e {
        HistoryError::Blotter(e) => unavailable("history_unavailable", e.to_string()),
        HistoryError::Ptrc(e) => ptrc_error(e),
        e @ HistoryError::TooManyTrades { .. } => {
            ApiError::unprocessable("too_many_trades", e.to_string())
        }
    }
}

fn task_failed(e: tokio::task::JoinError) -> ApiError {
    ApiError::internal(format!("worker task failed: {e}"))
}

/// The one account a per-account computation covers: the named one (if the key covers it), or
/// the key's only account; `None` for every account (a key over all accounts naming none).
fn one_account(caller: &Caller, named: Option<&str>) -> Result<Option<String>, ApiError> {
    match caller.read_scope(named)? {
        Scope::All => Ok(None),
        Scope::Accounts(set) => match (set.len(), set.first()) {
            (1, Some(only)) => Ok(Some(only.to_string())),
            _ => Err(ApiError::bad_request(
                "missing_field",
                "missing field `account` (this API key covers several accounts)",
            )),
        },
    }
}

/// A P&L period bound: the UTC day of the time given (see the crate docs).
fn day(name: &str, v: &Option<String>) -> Result<Option<NaiveDate>, ApiError> {
    v.as_deref()
        .map(|s| parse_time(name, s).map(|t| t.to_datetime().date_naive()))
        .transpose()
}

fn instant(name: &str, v: &Option<String>) -> Result<Option<Timestamp>, ApiError> {
    v.as_deref().map(|s| parse_time(name, s)).transpose()
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<serde_json::Value, ApiError> {
    serde_json::to_value(v).map_err(|e| ApiError::internal(e.to_string()))
}

/// Answers a report request with its JSON. With `save`, the report is first stored in the
/// report store as JSON, CSV and HTML (`render` gives the CSV and HTML, and runs only then: a
/// large report is not rendered three times for nothing) and the body carries its `report_id`.
async fn answer_report(
    svc: &Ptrc,
    save: bool,
    (kind, account): (&str, Option<&str>),
    title: impl FnOnce() -> String,
    mut json: serde_json::Value,
    render: impl FnOnce() -> (String, String),
) -> Result<Response, ApiError> {
    if save {
        let pretty =
            serde_json::to_vec_pretty(&json).map_err(|e| ApiError::internal(e.to_string()))?;
        let (csv, html) = render();
        let renderings = [
            (Format::Json, pretty),
            (Format::Csv, csv.into_bytes()),
            (Format::Html, html.into_bytes()),
        ];
        let now = Timestamp::now();
        let meta = ReportMeta {
            id: reports::new_id(kind, now),
            kind: kind.to_string(),
            title: title(),
            created_at: now,
            formats: renderings.iter().map(|(f, _)| *f).collect(),
            account: account.map(str::to_string),
        };
        svc.reports.save(&meta, &renderings).await.map_err(|e| {
            tracing::error!(error = %e, "report save failed");
            unavailable("report_store_unavailable", e.to_string())
        })?;
        if let Some(obj) = json.as_object_mut() {
            obj.insert("report_id".into(), serde_json::Value::String(meta.id));
        }
    }
    Ok(axum::Json(json).into_response())
}

impl Ptrc {
    /// Waits until the blotter holds fill `through` (what the books have folded), so a replay
    /// sees every fill the books saw.
    async fn blotter_caught_up(&self, through: Option<u64>) -> Result<(), ApiError> {
        let deadline = tokio::time::Instant::now() + self.settings.limits.catch_up_wait;
        loop {
            let blotter = self.blotter.clone();
            let reached =
                tokio::task::spawn_blocking(move || history::blotter_reached(&blotter, through))
                    .await
                    .map_err(task_failed)?
                    .map_err(|e| unavailable("history_unavailable", e.to_string()))?;
            if reached {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(unavailable(
                    "history_catching_up",
                    format!(
                        "the blotter has not yet stored fill {} that ptrc has seen; retry shortly",
                        through.unwrap_or_default()
                    ),
                ));
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// The report the book of `method` gives, or a replay from the blotter when the book
    /// cannot answer.
    async fn pnl_report(&self, method: Method, opts: PnlOptions) -> Result<PnlReport, ApiError> {
        let symbols = self.books.read(|b| b.symbols());
        let marks = marks_for(&self.marks, &symbols);
        let (answer, through) = self
            .books
            .read(|b| (b.report(method, &marks, &opts), b.last_fill_id()));
        match answer {
            Some(Ok(report)) => Ok(report),
            Some(Err(PtrcError::NeedsReplay(_))) => {
                self.blotter_caught_up(through).await?;
                let blotter = self.blotter.clone();
                tokio::task::spawn_blocking(move || {
                    history::replay_pnl(&blotter, through, method, &marks, &opts)
                })
                .await
                .map_err(task_failed)?
                .map_err(history_error)
            }
            Some(Err(e)) => Err(ptrc_error(e)),
            None => Err(method_not_offered(method.as_str())),
        }
    }
}

fn method_not_offered(m: &str) -> ApiError {
    let names: Vec<&str> = OFFERED.iter().map(|m| m.as_str()).collect();
    ApiError::unprocessable(
        "invalid_field",
        format!("method: {m:?} is not one of {}", names.join(", ")),
    )
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct PnlRequest {
    account: Option<String>,
    method: Option<String>,
    symbol: Option<String>,
    /// First UTC day (inclusive) whose realized P&L and fees are reported.
    from: Option<String>,
    /// Last UTC day (inclusive) of fills taken into account.
    to: Option<String>,
    save: bool,
}

pub(crate) async fn pnl(
    State(svc): State<Ptrc>,
    caller: Caller,
    params: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    params.allow(&[])?;
    let req: PnlRequest = parse_json_or_default(&body)?;
    let account = one_account(&caller, req.account.as_deref())?;
    let method = match &req.method {
        Some(m) => m
            .parse::<Method>()
            .ok()
            .filter(|m| OFFERED.contains(m))
            .ok_or_else(|| method_not_offered(m))?,
        None => svc.settings.default_method,
    };
    let opts = PnlOptions {
        account: account.clone(),
        symbol: req.symbol.as_ref().map(|s| s.to_ascii_uppercase()),
        from: day("from", &req.from)?,
        to: day("to", &req.to)?,
        ..Default::default()
    };
    let report = svc.pnl_report(method, opts).await?;
    let json = to_json(&report)?;
    answer_report(
        &svc,
        req.save,
        ("pnl", account.as_deref()),
        || {
            format!(
                "P&L {} ({})",
                account.as_deref().unwrap_or("all accounts"),
                method.as_str()
            )
        },
        json,
        || {
            (
                ptrc::pnl::pnl_to_csv(&report),
                ptrc::pnl::pnl_to_html(&report),
            )
        },
    )
    .await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct TaxRequest {
    account: Option<String>,
    owner: Option<String>,
    year: Option<i32>,
    save: bool,
}

pub(crate) async fn tax(
    State(svc): State<Ptrc>,
    caller: Caller,
    params: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    params.allow(&[])?;
    let req: TaxRequest = parse_json_or_default(&body)?;
    let filter = match (&req.account, &req.owner) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "invalid_field",
                "give `account` or `owner`, not both",
            ));
        }
        (None, Some(o)) => {
            caller.require_all_accounts("an owner-wide tax report")?;
            Some(ptrc::tax::TaxFilter::Owner(o.clone()))
        }
        (named, None) => one_account(&caller, named.as_deref())?.map(ptrc::tax::TaxFilter::Account),
    };
    let year = req
        .year
        .ok_or_else(|| ApiError::bad_request("missing_field", "missing field `year`"))?;
    let settings = svc.settings.clone();
    let cutoff =
        history::tax_cutoff(year, settings.tax.wash_sale_window_days).ok_or_else(|| {
            ApiError::unprocessable("invalid_field", format!("year: {year} is out of range"))
        })?;
    // Wash sales cross an owner's accounts: collect every trade of the owners concerned.
    let owner_of = |account: &str| {
        settings
            .account_owners
            .get(account)
            .cloned()
            .unwrap_or_else(|| account.to_string())
    };
    let owners: Option<BTreeSet<String>> = match &filter {
        Some(ptrc::tax::TaxFilter::Account(a)) => Some([owner_of(a)].into()),
        Some(ptrc::tax::TaxFilter::Owner(o)) => Some([o.clone()].into()),
        None => None,
    };
    let through = svc.books.read(|b| b.last_fill_id());
    svc.blotter_caught_up(through).await?;
    let blotter = svc.blotter.clone();
    let task_settings = settings.clone();
    let task_filter = filter.clone();
    let report = tokio::task::spawn_blocking(move || {
        let s = &task_settings;
        let trades = history::tax_trades(
            &blotter,
            through,
            &s.account_owners,
            owners.as_ref(),
            cutoff,
            s.limits.tax_max_trades,
        )?;
        Ok::<_, HistoryError>(ptrc::tax::form_8949(
            &trades,
            year,
            &s.tax,
            task_filter.as_ref(),
        )?)
    })
    .await
    .map_err(task_failed)?
    .map_err(history_error)?;
    let json = to_json(&report)?;
    let account = match &filter {
        Some(ptrc::tax::TaxFilter::Account(a)) => Some(a.as_str()),
        _ => None,
    };
    answer_report(
        &svc,
        req.save,
        ("tax", account),
        || format!("Form 8949 {year}"),
        json,
        || {
            (
                ptrc::tax::tax_to_csv(&report),
                ptrc::tax::tax_to_html(&report),
            )
        },
    )
    .await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ScanRequest {
    account: Option<String>,
    /// Alerts raised at or after (inclusive).
    from: Option<String>,
    /// Alerts raised before (exclusive).
    to: Option<String>,
    save: bool,
}

/// Alerts from ptrc's alert store: those involving `named` in `[from, to)` that `scope` covers,
/// oldest first, at most `max` (`None` when there are more).
fn stored_alerts(
    store: &alerts::AlertStore,
    named: &Scope,
    scope: &Scope,
    from: Option<Timestamp>,
    to: Option<Timestamp>,
    max: usize,
) -> Result<Option<Vec<serde_json::Value>>, alerts::AlertsError> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = store.page_filtered(
            &alerts::AlertQuery {
                accounts: named.accounts(),
                from,
                to,
                cursor,
                limit: 1_000,
                ..Default::default()
            },
            |a| scope.covers_all(a.accounts.iter().map(String::as_str)),
        )?;
        for a in page.items {
            if out.len() == max {
                return Ok(None);
            }
            out.push(a.alert);
        }
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return Ok(Some(out)),
        }
    }
}

pub(crate) async fn compliance_scan(
    State(svc): State<Ptrc>,
    caller: Caller,
    params: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    params.allow(&[])?;
    let req: ScanRequest = parse_json_or_default(&body)?;
    caller.require(&[Role::Compliance, Role::Admin], "a compliance scan")?;
    // `account` narrows the scan to the alerts involving it; a key limited to some accounts
    // sees only the alerts all of whose accounts it covers (the one scope rule).
    let named = caller.read_scope(req.account.as_deref())?;
    let scope = caller.scope();
    let (from, to) = (instant("from", &req.from)?, instant("to", &req.to)?);
    // Read barrier: every alert journaled before this request is in the store.
    svc.alert_writer
        .caught_up(svc.settings.limits.catch_up_wait)
        .await
        .map_err(|e| {
            unavailable(
                "alerts_catching_up",
                format!(
                    "the alert store is still catching up with the journal ({e}); retry shortly"
                ),
            )
        })?;
    let store = svc.alerts.clone();
    let max = svc.settings.limits.scan_max_alerts;
    let raw =
        tokio::task::spawn_blocking(move || stored_alerts(&store, &named, &scope, from, to, max))
            .await
            .map_err(task_failed)?
            .map_err(|e| unavailable("alerts_unavailable", e.to_string()))?
            .ok_or_else(|| {
                ApiError::unprocessable(
                    "too_many_alerts",
                    format!(
                        "more than {max} alerts match; narrow `from`/`to` or page through the \
                     compliance scanner's GET /alerts"
                    ),
                )
            })?;
    // The alerts as the scanner raised them (`surveillance::Alert` as JSON); one that does not
    // read as such (another producer's) is left out of every rendering alike.
    let mut values = Vec::with_capacity(raw.len());
    let mut alerts = Vec::with_capacity(raw.len());
    for v in raw {
        match serde_json::from_value::<surveillance::Alert>(v.clone()) {
            Ok(a) => {
                values.push(v);
                alerts.push(a);
            }
            Err(e) => {
                tracing::warn!(error = %e, "ptrc: a stored alert is not a surveillance alert")
            }
        }
    }
    // The same document as `surveillance::alerts_to_json`, with the alerts exactly as journaled.
    let json = serde_json::json!({ "alerts": values });
    answer_report(
        &svc,
        req.save,
        ("compliance", None),
        || "Compliance scan".to_string(),
        json,
        || {
            (
                surveillance::alerts_to_csv(&alerts),
                crate::alerts_to_html(&alerts),
            )
        },
    )
    .await
}

/// Whether a key may read a report: its own account's reports; reports over several accounts
/// (no account named) need a key that covers every account (the one scope rule).
fn may_read(caller: &Caller, meta: &ReportMeta) -> bool {
    caller.sees_all(meta.account.as_deref())
}

fn store_error(e: reports::ReportError) -> ApiError {
    match e {
        reports::ReportError::NotFound(id) => {
            ApiError::not_found("report_not_found", format!("no report {id:?}"))
        }
        e @ reports::ReportError::NoFormat { .. } => {
            ApiError::not_found("format_not_available", e.to_string())
        }
        e => unavailable("report_store_unavailable", e.to_string()),
    }
}

pub(crate) async fn list_reports(
    State(svc): State<Ptrc>,
    caller: Caller,
    params: Params,
) -> Result<Response, ApiError> {
    params.allow(&[])?;
    let list: Vec<ReportMeta> = svc
        .reports
        .list()
        .await
        .map_err(store_error)?
        .into_iter()
        .filter(|m| may_read(&caller, m))
        .collect();
    Ok(axum::Json(serde_json::json!({ "reports": list })).into_response())
}

/// Report ids are `kind-YYYYMMDDTHHMMSS.ffffffZ-n` (`reports::new_id`).
fn could_be_report_id(id: &str) -> bool {
    (1..=200).contains(&id.len())
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

pub(crate) async fn get_report(
    State(svc): State<Ptrc>,
    caller: Caller,
    params: Params,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    params.allow(&["format"])?;
    let fmt = params
        .choice("format", &["json", "csv", "html"])?
        .unwrap_or("json");
    let format = Format::parse(fmt).unwrap_or(Format::Json);
    if !could_be_report_id(&id) {
        // Never handed to the store as a file name: no report has such an id.
        return Err(ApiError::not_found(
            "report_not_found",
            format!("no report {id:?}"),
        ));
    }
    let meta = svc.reports.meta(&id).await.map_err(store_error)?;
    if !may_read(&caller, &meta) {
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
pub(crate) struct PriceRow {
    date: String,
    symbol: String,
    close: Decimal,
}

/// Where VaR and stress get positions and prices: the request, or the books' net positions and
/// the market-data store.
struct RiskInputs {
    scope: Scope,
    /// Symbol -> signed quantity. Default: the net position of the scope's accounts.
    positions: Option<BTreeMap<String, Decimal>>,
    /// Daily closes. Default: the market-data store's daily closes of each position.
    prices: Option<Vec<PriceRow>>,
}

impl Ptrc {
    async fn risk_inputs(
        &self,
        inputs: RiskInputs,
    ) -> Result<(BTreeMap<String, Decimal>, ptrc::input::PriceHistory), ApiError> {
        let positions = match inputs.positions {
            Some(p) => p,
            None => self
                .books
                .read(|b| b.positions(|account| inputs.scope.contains(account))),
        };
        if positions.is_empty() {
            return Err(ApiError::unprocessable(
                "no_positions",
                "there are no positions to measure",
            ));
        }
        let prices = match inputs.prices {
            Some(rows) => {
                let mut text = String::from("date,symbol,close\n");
                for r in rows {
                    text.push_str(&format!("{},{},{}\n", r.date, r.symbol, r.close));
                }
                ptrc::input::read_prices(&text, "prices").map_err(ptrc_error)?
            }
            None => {
                let store = self.history.clone().ok_or_else(|| {
                    ApiError::unprocessable("no_price_history", "no market-data store configured")
                })?;
                let symbols: Vec<String> = positions.keys().cloned().collect();
                tokio::task::spawn_blocking(move || {
                    let store = store.lock().unwrap_or_else(|e| e.into_inner());
                    let (from, to) = (NaiveDate::MIN, chrono::Utc::now().date_naive());
                    let mut h = ptrc::input::PriceHistory::new();
                    for symbol in symbols {
                        let closes = store.daily_closes(&symbol, None, from, to)?;
                        h.insert(
                            symbol,
                            closes.into_iter().map(|(d, p)| (d, p.get())).collect(),
                        );
                    }
                    Ok::<_, sinks::SinkError>(h)
                })
                .await
                .map_err(task_failed)?
                .map_err(|e| unavailable("store_unavailable", e.to_string()))?
            }
        };
        Ok((positions, prices))
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct VarHttpRequest {
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

pub(crate) async fn var(
    State(svc): State<Ptrc>,
    caller: Caller,
    params: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    params.allow(&[])?;
    let req: VarHttpRequest = parse_json_or_default(&body)?;
    let scope = caller.read_scope(req.account.as_deref())?;
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
    let (positions, prices) = svc
        .risk_inputs(RiskInputs {
            scope,
            positions: req.positions,
            prices: req.prices,
        })
        .await?;
    let report = ptrc::risk::value_at_risk(&positions, &prices, &var_req).map_err(ptrc_error)?;
    let json = to_json(&report)?;
    answer_report(
        &svc,
        req.save,
        ("var", req.account.as_deref()),
        || format!("VaR {} {}", var_req.method.as_str(), var_req.confidence),
        json,
        || {
            (
                ptrc::risk::var_to_csv(&report),
                ptrc::risk::var_to_html(&report),
            )
        },
    )
    .await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct StressHttpRequest {
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

pub(crate) async fn stress(
    State(svc): State<Ptrc>,
    caller: Caller,
    params: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    params.allow(&[])?;
    let req: StressHttpRequest = parse_json_or_default(&body)?;
    let scope = caller.read_scope(req.account.as_deref())?;
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
    let (positions, prices) = svc
        .risk_inputs(RiskInputs {
            scope,
            positions: req.positions,
            prices: req.prices,
        })
        .await?;
    let report = ptrc::stress::stress(&positions, &prices, &scenario).map_err(ptrc_error)?;
    let json = to_json(&report)?;
    answer_report(
        &svc,
        req.save,
        ("stress", req.account.as_deref()),
        || "Stress test".to_string(),
        json,
        || {
            (
                ptrc::stress::stress_to_csv(&report),
                ptrc::stress::stress_to_html(&report),
            )
        },
    )
    .await
}
