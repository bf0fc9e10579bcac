//! The logger's routes.
//!
//! - `POST /loki/api/v1/push` (Loki JSON or protobuf+Snappy; JSON may be gzip'd) and
//!   `POST /logs` (NDJSON): admin keys (the shippers'). All or nothing: a bad line gets 400
//!   naming it and nothing of the request is stored; answered once the lines are stored (a
//!   search right after finds them). A full writer queue answers 503 with `Retry-After` (Loki
//!   clients retry), counted in `trade2026_logger_dropped_total{reason="push_refused"}`.
//! - `GET /logs`, `GET /logs/tail`, `GET /orders/{id}/timeline`: admin and compliance keys see
//!   every line; a trader key sees only lines whose `account` is one of its accounts (lines
//!   without an account are not shown to it), and only its own orders' timelines.

use std::convert::Infallible;
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use auth::{ApiKeys, Role};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRef, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::{Stream, StreamExt, stream};
use runtime::http::ApiError;
use runtime::{Caller, ConsumerHandle, Params, Scope};
use serde_json::{Value, json};
use tokio::sync::{Semaphore, oneshot};
use tokio_util::sync::CancellationToken;

use crate::OrderIndex;
use crate::capture::Intake;
use crate::ingest::BodyError;
use crate::loki::{MAX_DECODED_BYTES, PushDecodeError};
use crate::query::{Filter, parse_terms};
use crate::record::{Level, MAX_NAME_BYTES, Record};
use crate::store::Store;
use crate::timeline::{Entry, merge, order_account};
use crate::writer::{Job, Tail};

/// Largest push body (before decompression).
pub const MAX_PUSH_BYTES: usize = 8 * 1024 * 1024;
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1_000;
/// Most log lines in one timeline.
const MAX_TIMELINE_LINES: usize = 1_000;
/// How long a read waits for the order index to reach the journal's head, and for the log
/// writer to store the lines captured before it.
const READ_BARRIER: Duration = Duration::from_secs(2);

/// The filters every read takes.
const FILTERS: [&str; 8] = [
    "service", "level", "q", "from", "to", "order_id", "account", "symbol",
];

/// What the routes need.
#[derive(Clone)]
pub struct LogsApi {
    store: Store,
    intake: Intake,
    tail: Tail,
    keys: ApiKeys,
    streams: Arc<Semaphore>,
    /// The order index, for the timeline's read barrier.
    index: Option<ConsumerHandle<OrderIndex>>,
    shutdown: CancellationToken,
}

impl LogsApi {
    pub fn new(
        store: Store,
        intake: Intake,
        tail: Tail,
        keys: ApiKeys,
        max_streams: usize,
        shutdown: CancellationToken,
    ) -> LogsApi {
        LogsApi {
            store,
            intake,
            tail,
            keys,
            streams: Arc::new(Semaphore::new(max_streams.max(1))),
            index: None,
            shutdown,
        }
    }

    /// Timelines wait (briefly) until the order index has applied what the journal held when
    /// the request came.
    pub fn with_index_barrier(mut self, index: ConsumerHandle<OrderIndex>) -> LogsApi {
        self.index = Some(index);
        self
    }
}

impl FromRef<LogsApi> for ApiKeys {
    fn from_ref(api: &LogsApi) -> ApiKeys {
        api.keys.clone()
    }
}

/// The routes; the host adds `/health`, `/metrics` and the JSON 404. The host must let
/// `application/x-protobuf` through on the Loki path and `application/x-ndjson` on `/logs`.
pub fn routes(api: LogsApi) -> Router {
    let push_limit = DefaultBodyLimit::max(MAX_PUSH_BYTES);
    Router::new()
        .route("/openapi.json", runtime::openapi::route(crate::OPENAPI))
        .route("/loki/api/v1/push", post(loki_push).layer(push_limit))
        .route("/logs", get(search).post(ndjson_push).layer(push_limit))
        .route("/logs/tail", get(tail))
        .route("/orders/{id}/timeline", get(timeline))
        .with_state(api)
}

fn unavailable(code: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
}

fn store_error(e: impl std::fmt::Display) -> ApiError {
    unavailable("log_store_unavailable", e.to_string())
}

fn body_error(e: &BodyError) -> ApiError {
    ApiError::bad_request("malformed_push", e.to_string())
}

// --- pushes ---------------------------------------------------------------------------------------

/// The body, decompressed when `Content-Encoding: gzip` (at most [`MAX_DECODED_BYTES`]).
fn decoded(headers: &HeaderMap, body: Bytes) -> Result<Bytes, ApiError> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    match encoding.as_str() {
        "" | "identity" => Ok(body),
        "gzip" | "x-gzip" => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(body.as_ref())
                .take(MAX_DECODED_BYTES as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| {
                    ApiError::bad_request("malformed_push", format!("body: not gzip: {e}"))
                })?;
            if out.len() > MAX_DECODED_BYTES {
                return Err(too_large(out.len()));
            }
            Ok(out.into())
        }
        other => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("Content-Encoding {other:?} is not supported (use gzip or none)"),
        )),
    }
}

fn too_large(n: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("the body expands to {n} bytes or more, more than {MAX_DECODED_BYTES}"),
    )
}

fn media(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

const WRITERS: &[Role] = &[Role::Admin];

/// `POST /loki/api/v1/push`: 204 once stored.
async fn loki_push(
    State(api): State<LogsApi>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Refused> {
    caller.require(WRITERS, "pushing log lines")?;
    let records = if media(&headers) == "application/x-protobuf" {
        crate::loki::parse_protobuf_push(&body).map_err(|e| match e {
            PushDecodeError::Body(b) => body_error(&b),
            PushDecodeError::TooLarge(n) => too_large(n),
        })?
    } else {
        let body = decoded(&headers, body)?;
        crate::loki::parse_json_push(&body).map_err(|e| body_error(&e))?
    };
    store(&api, records).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /logs` (NDJSON): `{"stored": n}` once stored.
async fn ndjson_push(
    State(api): State<LogsApi>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Refused> {
    caller.require(WRITERS, "pushing log lines")?;
    let body = decoded(&headers, body)?;
    let records =
        crate::ingest::parse_ndjson(&body, model::Timestamp::now()).map_err(|e| body_error(&e))?;
    let n = store(&api, records).await?;
    Ok(axum::Json(json!({ "stored": n })).into_response())
}

/// A push not taken. `Busy` (the writer is behind) tells the client when to send it again.
enum Refused {
    Api(ApiError),
    Busy(ApiError),
}

impl From<ApiError> for Refused {
    fn from(e: ApiError) -> Refused {
        Refused::Api(e)
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Refused::Api(e) => e.into_response(),
            Refused::Busy(e) => {
                let mut res = e.into_response();
                res.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                res
            }
        }
    }
}

/// Queues the records as one job and waits until they are stored.
async fn store(api: &LogsApi, records: Vec<Record>) -> Result<usize, Refused> {
    let n = records.len();
    if n == 0 {
        return Ok(0);
    }
    let (done, stored) = oneshot::channel();
    if !api.intake.try_push(Job::Push { records, done }, n) {
        api.intake.count_dropped("push_refused", n as u64);
        return Err(Refused::Busy(unavailable(
            "logger_busy",
            format!("the log writer is behind; these {n} lines were not taken, send them again"),
        )));
    }
    match stored.await {
        Ok(Ok(n)) => Ok(n),
        Ok(Err(problem)) => Err(ApiError::bad_request("malformed_push", problem).into()),
        Err(_) => Err(Refused::Busy(unavailable(
            "log_store_unavailable",
            "the log store could not write these lines; send them again",
        ))),
    }
}

// --- reads -----------------------------------------------------------------------------------------

/// The filter of a read: the parameters, and the caller's accounts.
fn filter(p: &Params, caller: &Caller) -> Result<Filter, ApiError> {
    let scope = caller.read_scope(p.get("account"))?;
    let text = |name: &str| -> Result<Option<String>, ApiError> {
        match p.get(name) {
            Some(v) if v.chars().count() > MAX_NAME_BYTES => Err(ApiError::unprocessable(
                "invalid_field",
                format!("{name}: longer than {MAX_NAME_BYTES} characters"),
            )),
            Some(v) => Ok(Some(v.to_owned())),
            None => Ok(None),
        }
    };
    let terms = match p.get("q") {
        Some(q) => parse_terms(q)
            .map_err(|e| ApiError::unprocessable("invalid_field", format!("q: {e}")))?,
        None => Vec::new(),
    };
    Ok(Filter {
        service: text("service")?,
        min_level: p
            .choice("level", &Level::NAMES)?
            .and_then(Level::parse_name),
        terms,
        from: p.time("from")?.map(|t| t.as_nanos()),
        to: p.time("to")?.map(|t| t.as_nanos()),
        order_id: text("order_id")?,
        accounts: match scope {
            Scope::All => None,
            Scope::Accounts(set) => Some(set.iter().map(ToString::to_string).collect()),
        },
        symbol: text("symbol")?.map(|s| s.to_ascii_uppercase()),
    })
}

/// A read's barrier on the log writer: the read shows every line captured before it.
async fn lines_written(api: &LogsApi) {
    if !api.intake.written(READ_BARRIER).await {
        tracing::warn!("log writer behind; this read may miss the newest captured lines");
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, crate::LoggerError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(store_error)?
        .map_err(store_error)
}

/// `GET /logs?service=&level=&q=&from=&to=&order_id=&account=&symbol=&limit=&cursor=`: newest
/// first, `{"lines":[...],"next_cursor":...}` with the next page also in `Link` and
/// `X-Next-Cursor`.
async fn search(
    State(api): State<LogsApi>,
    caller: Caller,
    p: Params,
) -> Result<Response, ApiError> {
    let mut allowed = FILTERS.to_vec();
    allowed.extend(["limit", "cursor"]);
    p.allow(&allowed)?;
    let filter = filter(&p, &caller)?;
    let limit = p.limit(DEFAULT_LIMIT, MAX_LIMIT)?;
    let cursor = p
        .get("cursor")
        .map(|c| {
            c.parse::<i64>().map_err(|_| {
                ApiError::unprocessable(
                    "invalid_field",
                    format!("cursor: {c:?} is not a cursor from a previous page"),
                )
            })
        })
        .transpose()?;
    lines_written(&api).await;
    let store = api.store.clone();
    let page = blocking(move || store.page(&filter, cursor, limit)).await?;
    let lines: Vec<Value> = page.lines.iter().map(|l| l.to_json()).collect();
    let next = page.next_cursor.map(|c| c.to_string());
    let mut res = axum::Json(json!({ "lines": lines, "next_cursor": next })).into_response();
    if let Some(next) = next {
        p.link_next_page(&mut res, "/logs", &next);
    }
    Ok(res)
}

/// `GET /logs/tail?<filters>`: server-sent events, one `line` event per new stored line that
/// matches (`id` the line's id, `data` the line as JSON). A client too slow for the rate of new
/// lines gets a `lagged` event saying how many batches it missed.
async fn tail(
    State(api): State<LogsApi>,
    caller: Caller,
    p: Params,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    p.allow(&FILTERS)?;
    let filter = filter(&p, &caller)?;
    let slot = api.streams.clone().try_acquire_owned().map_err(|_| {
        unavailable(
            "too_many_streams",
            "every tail stream this logger serves is open; retry later",
        )
    })?;
    let lines = stream::unfold(
        (api.tail.subscribe(), filter),
        |(mut rx, filter)| async move {
            use tokio::sync::broadcast::error::RecvError;
            let events: Vec<SseEvent> = match rx.recv().await {
                Ok(batch) => batch
                    .iter()
                    .filter(|l| filter.matches(&l.record))
                    .map(|l| {
                        SseEvent::default()
                            .event("line")
                            .id(l.id.to_string())
                            .data(l.to_json().to_string())
                    })
                    .collect(),
                Err(RecvError::Lagged(n)) => vec![SseEvent::default().event("lagged").data(
                    format!("{n} batches of lines were skipped: this client reads too slowly"),
                )],
                Err(RecvError::Closed) => return None,
            };
            Some((stream::iter(events), (rx, filter)))
        },
    );
    let stop = api.shutdown.clone().cancelled_owned();
    let events = lines.flatten().take_until(stop).map(move |e| {
        // The stream holds its slot until the client goes away.
        let _held = &slot;
        Ok(e)
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

/// `GET /orders/{id}/timeline`: the order's journal events and every log line carrying its id,
/// in time order.
async fn timeline(
    State(api): State<LogsApi>,
    caller: Caller,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    p.allow(&[])?;
    // Order ids are whole numbers: no order has any other id.
    let order_id: u64 = id
        .parse()
        .map_err(|_| ApiError::not_found("order_not_found", format!("no order {id:?}")))?;
    if let Some(index) = &api.index
        && let Err(lag) = index.caught_up(READ_BARRIER).await
    {
        tracing::warn!(%lag, "order index behind the journal; the timeline may miss recent events");
    }
    lines_written(&api).await;
    let store = api.store.clone();
    let (events, lines) = blocking(move || {
        Ok((
            store.order_events(order_id)?,
            store.order_lines(&order_id.to_string(), MAX_TIMELINE_LINES + 1)?,
        ))
    })
    .await?;
    let not_found = || {
        ApiError::not_found(
            "order_not_found",
            format!("no order {order_id} in the journal index or the logs"),
        )
    };
    let account = order_account(&events)
        .map(str::to_owned)
        .or_else(|| lines.iter().find_map(|l| l.record.account.clone()));
    let scope = caller.scope();
    if events.is_empty() && lines.is_empty() {
        return Err(not_found());
    }
    if scope != Scope::All && !account.as_deref().is_some_and(|a| caller.sees(a)) {
        return Err(not_found());
    }
    let truncated = lines.len() > MAX_TIMELINE_LINES;
    let events = events
        .into_iter()
        .filter(|e| caller.sees_all(e.accounts.iter().map(String::as_str)))
        .collect();
    let lines = lines
        .into_iter()
        .take(MAX_TIMELINE_LINES)
        .filter(|l| {
            scope == Scope::All || l.record.account.as_deref().is_some_and(|a| caller.sees(a))
        })
        .collect();
    let entries: Vec<Value> = merge(events, lines).iter().map(Entry::to_json).collect();
    Ok(axum::Json(json!({
        "order_id": order_id.to_string(),
        "account": account,
        "entries": entries,
        "lines_truncated": truncated,
    }))
    .into_response())
}
