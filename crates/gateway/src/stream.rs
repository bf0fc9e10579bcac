//! `GET /stream`: durable execution reports as server-sent events, resumable.
//!
//! Every event's SSE id is its journal sequence. A client that reconnects with
//! `Last-Event-ID: N` (browsers' `EventSource` does this by itself) first gets every report of
//! its accounts after `N` from the journal, then the live ones, with none missing and none
//! twice: the live subscription is taken *before* the journal's head is read, the backlog runs
//! up to that head, and live reports at or below it are dropped.
//!
//! Streams are capped in all and per key (`services.http.max_streams*`): one client cannot
//! hold every connection open.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use engine::ExecutionReport;
use futures_util::{Stream, StreamExt, stream};
use journal::{Journal, SubjectFilter};
use runtime::http::{ApiError, Refusal};
use runtime::{Caller, Params, Scope};

use crate::Shared;

/// Journal records read per page while catching a resumed stream up.
const BACKLOG_PAGE: usize = 1_000;
/// The subjects that carry execution reports.
const REPORT_SUBJECTS: &str = "orders.* fills.*";

/// Open streams, in all and per key.
pub struct StreamSlots {
    max: usize,
    per_key: usize,
    open: Mutex<HashMap<String, usize>>,
    metrics: telemetry::Metrics,
}

impl StreamSlots {
    pub fn new(max: usize, per_key: usize, metrics: telemetry::Metrics) -> Arc<StreamSlots> {
        Arc::new(StreamSlots {
            max,
            per_key,
            open: Mutex::new(HashMap::new()),
            metrics,
        })
    }

    fn take(self: &Arc<Self>, key: &str) -> Result<Slot, ApiError> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let total: usize = open.values().sum();
        let mine = open.get(key).copied().unwrap_or(0);
        let refused = if mine >= self.per_key {
            Some(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_streams",
                format!("this key has {mine} open streams, the most it may hold; close one first"),
            ))
        } else if total >= self.max {
            Some(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "too_many_streams",
                format!("{total} streams are open, the most this gateway serves; retry later"),
            ))
        } else {
            None
        };
        if let Some(refused) = refused {
            drop(open);
            self.metrics
                .http_refused
                .get_or_create(&vec![
                    ("service", "gateway".to_owned()),
                    ("reason", Refusal::Streams.as_str().to_owned()),
                ])
                .inc();
            return Err(refused);
        }
        *open.entry(key.to_owned()).or_insert(0) += 1;
        Ok(Slot {
            slots: self.clone(),
            key: key.to_owned(),
        })
    }
}

/// One open stream; gives its place back when the client goes away.
struct Slot {
    slots: Arc<StreamSlots>,
    key: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// `GET /stream?account=` (+ `Last-Event-ID`).
pub async fn stream(
    State(gw): State<Shared>,
    caller: Caller,
    p: Params,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    p.allow(&["account"])?;
    let scope = caller.read_scope(p.get("account"))?;
    let resume_after = last_event_id(&headers)?;
    let slot = gw.streams.take(&caller.principal().key_id)?;

    // Subscribe first, then read the head: every report after the head arrives live.
    let live = tokio_stream::wrappers::BroadcastStream::new(gw.engine.reports());
    let head = gw.reads.journal.last_seq();
    let backlog = match resume_after {
        Some(after) => backlog(gw.reads.journal.clone(), after, head, scope.clone()),
        None => stream::empty().boxed(),
    };
    let live_scope = scope.clone();
    let live = live.filter_map(move |r| {
        let item = match r {
            Ok(report) if report.seq > head && in_scope(&live_scope, &report) => {
                Some(report_event(&report))
            }
            Ok(_) => None,
            // A slow client missed reports: say so (with the sequence to resume from is
            // unknown here), so it can reconnect with its last id or re-read state.
            Err(e) => Some(SseEvent::default().event("lagged").data(e.to_string())),
        };
        std::future::ready(item.map(Ok))
    });
    let stop = gw.shutdown.clone().cancelled_owned();
    let events = backlog.map(Ok).chain(live).take_until(stop).map(move |e| {
        // The slot lives as long as the stream.
        let _held = &slot;
        e
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

fn in_scope(scope: &Scope, report: &ExecutionReport) -> bool {
    report.account().is_some_and(|a| scope.contains(a.as_str()))
}

fn report_event(report: &ExecutionReport) -> SseEvent {
    SseEvent::default()
        .event(report.event.kind().as_str())
        .id(report.seq.to_string())
        .json_data(report)
        .unwrap_or_else(|_| SseEvent::default().comment("unserializable report"))
}

/// The `Last-Event-ID` header as a journal sequence (400 if it is not one).
fn last_event_id(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(value) = headers.get("last-event-id") else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or("").trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse::<u64>().map(Some).map_err(|_| {
        ApiError::bad_request(
            "invalid_last_event_id",
            format!("Last-Event-ID must be the id of an event of this stream (a journal sequence), got {text:?}"),
        )
    })
}

/// The reports in `(after, head]` from the journal, paged off the async threads. History that
/// was archived out of the hot journal is announced with a `reset` event (re-read state with
/// GET /orders and /fills), then the stream goes on from the oldest record still there.
fn backlog(
    journal: Journal,
    after: u64,
    head: u64,
    scope: Scope,
) -> futures_util::stream::BoxStream<'static, SseEvent> {
    let Ok(filter) = SubjectFilter::new(REPORT_SUBJECTS) else {
        return stream::empty().boxed();
    };
    let first = journal.first_seq();
    let mut start = after.saturating_add(1);
    let reset = (start < first).then(|| {
        start = first;
        SseEvent::default().event("reset").data(format!(
            "events {}..{} were archived; re-read GET /orders and /fills, then follow this stream",
            after + 1,
            first - 1
        ))
    });
    let pages = stream::unfold(Some(start), move |next| {
        let journal = journal.clone();
        let filter = filter.clone();
        let scope = scope.clone();
        async move {
            let from = next?;
            if from > head {
                return None;
            }
            let limit = usize::try_from(head - from + 1)
                .unwrap_or(usize::MAX)
                .min(BACKLOG_PAGE);
            let read = tokio::task::spawn_blocking(move || {
                journal.read_matching(from, limit, Some(&filter))
            })
            .await;
            match read {
                Ok(Ok((records, continue_at))) => {
                    let events: Vec<SseEvent> = records
                        .into_iter()
                        .filter(|r| r.seq <= head)
                        .map(|r| ExecutionReport {
                            seq: r.seq,
                            event: r.event,
                        })
                        .filter(|report| in_scope(&scope, report))
                        .map(|report| report_event(&report))
                        .collect();
                    let next = (continue_at > from && continue_at <= head).then_some(continue_at);
                    Some((stream::iter(events), next))
                }
                Ok(Err(e)) => Some((stream::iter(vec![error_event(&e.to_string())]), None)),
                Err(e) => Some((stream::iter(vec![error_event(&e.to_string())]), None)),
            }
        }
    })
    .flatten();
    stream::iter(reset).chain(pages).boxed()
}

fn error_event(message: &str) -> SseEvent {
    tracing::warn!(
        error = message,
        "execution-report stream: reading the journal failed"
    );
    SseEvent::default().event("reset").data(format!(
        "the backlog could not be read ({message}); re-read GET /orders and /fills"
    ))
}
