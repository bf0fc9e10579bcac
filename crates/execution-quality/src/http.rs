//! `GET /quality`, `GET /quality/orders/{id}`, `GET /reports/rule605?month=YYYY-MM&format=`.
//!
//! Every answer covers every order seen: the rows in the store plus what the engine still
//! holds (the rows of the orders it holds in full, its views of stored rows whose
//! realized-spread lookups still wait), merged by order id ([`MergeById`]). The engine's part
//! is taken first (under the consumer's lock, bounded by the held and settling orders), then
//! the store is read: a row handed out in between is already committed by then, so no order
//! falls between the two reads. Store reads run on the blocking pool; `/quality` streams its
//! body, so neither the rows nor the answer are ever all in memory.

use std::io::Write;

use auth::ApiKeys;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{FromRef, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use execq::{OrderQuality, ReportFilter, RowAggregator};
use model::Timestamp;
use runtime::http::ApiError;
use runtime::{Caller, Params, Scope};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::QualityHandle;
use crate::store::{MergeById, RowQuery};

/// What the routes share: the service and the API keys (a trader reads only its accounts).
#[derive(Clone)]
struct Http {
    quality: QualityHandle,
    keys: ApiKeys,
}

impl FromRef<Http> for ApiKeys {
    fn from_ref(h: &Http) -> ApiKeys {
        h.keys.clone()
    }
}

/// The routes of the service (the host adds `/health`, `/metrics` and the JSON 404).
pub fn router(quality: QualityHandle, keys: ApiKeys) -> Router {
    Router::new()
        .route("/openapi.json", runtime::openapi::route(crate::OPENAPI))
        .route("/quality", get(quality_report))
        .route("/quality/orders/{id}", get(order))
        .route("/reports/rule605", get(rule605))
        .with_state(Http { quality, keys })
}

fn store_error(e: crate::QualityError) -> ApiError {
    tracing::error!(error = %e, "execution-quality store read failed");
    ApiError::internal(format!("reading the execution-quality store: {e}"))
}

/// Runs a store read on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, crate::QualityError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("store reader failed: {e}")))?
        .map_err(store_error)
}

fn keeps(scope: &Scope, account: Option<&str>) -> bool {
    match (scope, account) {
        (Scope::All, _) => true,
        (Scope::Accounts(_), Some(a)) => scope.contains(a),
        (Scope::Accounts(_), None) => false,
    }
}

/// The part of the report served before the per-order rows.
#[derive(Serialize)]
struct Head<'a> {
    params: &'a execq::Params,
    records: u64,
    data_issues: &'a std::collections::BTreeMap<String, u64>,
}

/// `GET /quality?account=&symbol=&from=&to=`: the execq report (parameters, record count, data
/// issues, every order's row by id, aggregates) over the orders the filters keep.
async fn quality_report(
    State(h): State<Http>,
    caller: Caller,
    p: Params,
) -> Result<Response, ApiError> {
    p.allow(&["account", "symbol", "from", "to"])?;
    let scope = caller.read_scope(p.get("account"))?;
    let symbol = p.get("symbol").map(str::to_ascii_uppercase);
    let (from, to) = (p.time("from")?, p.time("to")?);
    let accounts = scope.accounts();
    let engine_filter = ReportFilter {
        // One account filters inside the engine; several are filtered below.
        account: accounts
            .as_ref()
            .filter(|a| a.len() == 1)
            .and_then(|a| a.first().cloned()),
        symbol: symbol.clone(),
        from,
        to,
    };
    h.quality.catch_up().await;
    let (mut held, views, records, data_issues) = h.quality.consumer.read(|c| {
        let e = c.engine();
        (
            e.held_rows(&engine_filter),
            // Views of orders outside the scope meet no stored row and are dropped.
            e.spread_views(&engine_filter),
            e.records(),
            e.data_issues(),
        )
    });
    held.retain(|r| keeps(&scope, r.account.as_deref()));
    let query = RowQuery {
        accounts,
        symbol,
        from,
        to,
        month: None,
    };
    let params = h.quality.params.clone();
    let updater = h.quality.updater().clone();
    let mut head = serde_json::to_vec(&Head {
        params: &params,
        records,
        data_issues: &data_issues,
    })
    .map_err(|e| ApiError::internal(e.to_string()))?;
    // `{"params":..,"records":..,"data_issues":..}` -> `{..,"orders":{`
    head.pop();
    head.extend_from_slice(b",\"orders\":{");

    let reader = h.quality.rows.clone();
    let (out, start) = ChunkWriter::new();
    tokio::task::spawn_blocking(move || {
        let mut out = out;
        let written = reader.with_rows(&query, |stored| {
            let rows = MergeById::new(stored, held.into_iter(), views.into_iter(), updater);
            write_report(&mut out, head, rows, &params)
        });
        match written {
            Ok(Ok(())) => out.finish(),
            // The client is gone.
            Ok(Err(e)) => tracing::debug!(error = %e, "quality answer not finished"),
            Err(e) => out.fail(store_error(e)),
        }
    });
    match start.await {
        Ok(Start::Whole(body)) => Ok((
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response()),
        Ok(Start::Streaming(rx)) => {
            let stream = futures_util::stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|chunk| (chunk, rx))
            });
            Ok((
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                Body::from_stream(stream),
            )
                .into_response())
        }
        Ok(Start::Failed(e)) => Err(e),
        Err(_) => Err(ApiError::internal("the store reader stopped")),
    }
}

/// Writes the report: `head`, each row (stored and held, merged by id) while aggregating it,
/// then the aggregates. The same bytes as serializing the `execq::Report` over those rows.
fn write_report(
    out: &mut ChunkWriter,
    head: Vec<u8>,
    rows: impl Iterator<Item = OrderQuality>,
    params: &execq::Params,
) -> std::io::Result<()> {
    out.write_all(&head)?;
    let mut agg =
        RowAggregator::new(params, ReportFilter::default()).map_err(std::io::Error::other)?;
    for (i, row) in rows.enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        serde_json::to_writer(&mut *out, &row.order_id)?;
        out.write_all(b":")?;
        serde_json::to_writer(&mut *out, &row)?;
        agg.add(&row);
    }
    out.write_all(b"},\"aggregates\":")?;
    serde_json::to_writer(&mut *out, &agg.finish())?;
    out.write_all(b"}")
}

type Chunks = mpsc::Receiver<Result<Bytes, std::io::Error>>;

/// How an answer starts.
enum Start {
    /// It fit in one chunk: sent whole, with its length.
    Whole(Bytes),
    /// Larger: its chunks follow (chunked transfer encoding).
    Streaming(Chunks),
    /// It failed before anything was sent (a 5xx, not a truncated 200).
    Failed(ApiError),
}

/// Buffers the body: an answer that fits in one chunk is handed over whole; a larger one goes
/// out chunk by chunk, so memory stays one chunk (plus the channel) whatever its size. Writes
/// fail once the client is gone.
struct ChunkWriter {
    start: Option<tokio::sync::oneshot::Sender<Start>>,
    tx: Option<mpsc::Sender<Result<Bytes, std::io::Error>>>,
    buf: Vec<u8>,
}

const CHUNK: usize = 256 * 1024;

impl ChunkWriter {
    fn new() -> (ChunkWriter, tokio::sync::oneshot::Receiver<Start>) {
        let (start, rx) = tokio::sync::oneshot::channel();
        let w = ChunkWriter {
            start: Some(start),
            tx: None,
            buf: Vec::with_capacity(CHUNK),
        };
        (w, rx)
    }

    fn gone() -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client gone")
    }

    fn send_chunk(&mut self) -> std::io::Result<()> {
        if let Some(start) = self.start.take() {
            let (tx, rx) = mpsc::channel(4);
            self.tx = Some(tx);
            start.send(Start::Streaming(rx)).map_err(|_| Self::gone())?;
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        match &self.tx {
            Some(tx) => tx.blocking_send(Ok(chunk)).map_err(|_| Self::gone()),
            None => Err(Self::gone()),
        }
    }

    /// The body is complete.
    fn finish(mut self) {
        let body = Bytes::from(std::mem::take(&mut self.buf));
        match (self.start.take(), &self.tx) {
            (Some(start), _) => {
                let _ = start.send(Start::Whole(body));
            }
            (None, Some(tx)) if !body.is_empty() => {
                let _ = tx.blocking_send(Ok(body));
            }
            _ => {}
        }
    }

    /// The answer failed: a 5xx if nothing was sent yet, else a broken body (never a wrong one).
    fn fail(mut self, e: ApiError) {
        match (self.start.take(), &self.tx) {
            (Some(start), _) => {
                let _ = start.send(Start::Failed(e));
            }
            (None, Some(tx)) => {
                let _ = tx.blocking_send(Err(std::io::Error::other(e.message)));
            }
            _ => {}
        }
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send_chunk()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `GET /quality/orders/{id}`: one order's row, finalized (store) or as of now (held).
async fn order(
    State(h): State<Http>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let not_found = || {
        ApiError::not_found(
            "order_not_found",
            format!("no order {id:?} seen by execution quality"),
        )
    };
    // The engine first: an order leaves its full state only once its row is committed, so it
    // is in one of the two whenever it is looked up. Merged as `MergeById` does.
    h.quality.catch_up().await;
    let (held, view) = h.quality.consumer.read(|c| {
        let e = c.engine();
        (e.order(&id), e.spread_view(&id))
    });
    let reader = h.quality.rows.clone();
    let key = id.clone();
    let stored = blocking(move || reader.row(&key)).await?;
    let merged = MergeById::new(
        stored.into_iter(),
        held.into_iter(),
        view.into_iter(),
        h.quality.updater().clone(),
    )
    .next();
    let row = merged.ok_or_else(not_found)?;
    let visible = match &row.account {
        Some(a) => caller.sees(a),
        None => caller.principal().account_filter().is_none(),
    };
    if !visible {
        return Err(not_found());
    }
    Ok(axum::Json(row).into_response())
}

/// The first instant of `YYYY-MM` and of the month after (`None` for anything else).
fn month_bounds(month: &str) -> Option<(Timestamp, Timestamp)> {
    let b = month.as_bytes();
    if b.len() != 7 || b[4] != b'-' {
        return None;
    }
    let year: i32 = month[..4].parse().ok()?;
    let m: u32 = month[5..].parse().ok().filter(|m| (1..=12).contains(m))?;
    let (ny, nm) = if m == 12 {
        (year + 1, 1)
    } else {
        (year, m + 1)
    };
    let at = |y: i32, m: u32| Timestamp::parse_rfc3339(&format!("{y:04}-{m:02}-01T00:00:00Z")).ok();
    Some((at(year, m)?, at(ny, nm)?))
}

/// `GET /reports/rule605?month=YYYY-MM&format=json|csv|html` (compliance or admin over every
/// account): the month's stored rows plus the held rows received in the month.
async fn rule605(State(h): State<Http>, caller: Caller, p: Params) -> Result<Response, ApiError> {
    caller.require_all_accounts("the Rule 605 report")?;
    p.allow(&["month", "format"])?;
    let month = p.required("month", "YYYY-MM")?.to_string();
    let format = p
        .choice("format", &["json", "csv", "html"])?
        .unwrap_or("json");
    let params = h.quality.params.clone();
    let updater = h.quality.updater().clone();
    h.quality.catch_up().await;
    let (held, views) = match month_bounds(&month) {
        Some((from, to)) => h.quality.consumer.read(|c| {
            let in_month = ReportFilter {
                from: Some(from),
                to: Some(to),
                ..ReportFilter::default()
            };
            let e = c.engine();
            (e.held_rows(&in_month), e.spread_views(&in_month))
        }),
        // Not a month: `rule605_from_rows` says so (422) without reading anything.
        None => (Vec::new(), Vec::new()),
    };
    let reader = h.quality.rows.clone();
    let query = RowQuery {
        month: Some(month.clone()),
        ..RowQuery::default()
    };
    let report = blocking(move || {
        reader.with_rows(&query, |stored| {
            let rows = MergeById::new(stored, held.into_iter(), views.into_iter(), updater);
            execq::rule605_from_rows(rows, &params, &month)
        })
    })
    .await?
    .map_err(|e| ApiError::unprocessable("invalid_field", format!("month: {e}")))?;
    Ok(match format {
        "csv" => (
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            execq::rule605_to_csv(&report),
        )
            .into_response(),
        "html" => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            execq::rule605_to_html(&report),
        )
            .into_response(),
        _ => axum::Json(report).into_response(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn month_bounds_cover_exactly_the_month() {
        let (from, to) = month_bounds("2025-12").unwrap();
        assert_eq!(
            from,
            Timestamp::parse_rfc3339("2025-12-01T00:00:00Z").unwrap()
        );
        assert_eq!(
            to,
            Timestamp::parse_rfc3339("2026-01-01T00:00:00Z").unwrap()
        );
        let (from, to) = month_bounds("2024-02").unwrap();
        assert_eq!(
            from,
            Timestamp::parse_rfc3339("2024-02-01T00:00:00Z").unwrap()
        );
        assert_eq!(
            to,
            Timestamp::parse_rfc3339("2024-03-01T00:00:00Z").unwrap()
        );
        for bad in ["2024-13", "2024-00", "2024-1", "24-01-01", "abcd-01", ""] {
            assert_eq!(month_bounds(bad), None, "{bad}");
        }
    }
}
