//! Point-in-time correct offline retrieval.

use model::{Event, Timestamp};

use crate::defs::{self, FeatureRow};
use crate::engine::{EngineParams, FeatureEngine};
use crate::error::FeaturesError;

/// [`history_with`] with default parameters.
pub fn history<'a, V: AsRef<str>, E: AsRef<str>>(
    events: impl IntoIterator<Item = &'a Event>,
    requests: &[(V, E, Timestamp)],
) -> Result<Vec<FeatureRow>, FeaturesError> {
    history_with(EngineParams::default(), events, requests)
}

/// For each request `(view, entity, ts)`, the row of `view` for `entity` as of `ts`, in request
/// order. An entity unknown at `ts` gets a row of nulls (as Feast does).
///
/// The events are stably sorted by event time (journal order breaks ties) and folded into one
/// engine; each request is answered just before the first event with a time *after* the request
/// time, so a request sees exactly the events with `ts <= request ts` and nothing later.
/// Refuses an unknown view name before doing any work.
pub fn history_with<'a, V: AsRef<str>, E: AsRef<str>>(
    params: EngineParams,
    events: impl IntoIterator<Item = &'a Event>,
    requests: &[(V, E, Timestamp)],
) -> Result<Vec<FeatureRow>, FeaturesError> {
    let views = requests
        .iter()
        .map(|(v, _, _)| {
            defs::view(v.as_ref()).ok_or_else(|| FeaturesError::UnknownView(v.as_ref().into()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut events: Vec<&Event> = events.into_iter().collect();
    events.sort_by_key(|e| e.ts());
    let mut order: Vec<usize> = (0..requests.len()).collect();
    order.sort_by_key(|i| requests[*i].2);

    let mut engine = FeatureEngine::new(params);
    let mut out: Vec<Option<FeatureRow>> = vec![None; requests.len()];
    let mut next = 0;
    let answer = |engine: &FeatureEngine, i: usize, out: &mut Vec<Option<FeatureRow>>| {
        let (_, entity, ts) = &requests[i];
        let entity = entity.as_ref();
        out[i] = Some(
            engine
                .row(views[i].name, entity, *ts)
                .unwrap_or_else(|| FeatureRow::null(views[i], entity, *ts)),
        );
    };
    for e in events {
        let ts = e.ts();
        while next < order.len() && requests[order[next]].2 < ts {
            answer(&engine, order[next], &mut out);
            next += 1;
        }
        engine.on_event(e);
    }
    for &i in &order[next..] {
        answer(&engine, i, &mut out);
    }
    Ok(out
        .into_iter()
        .zip(requests)
        .zip(views)
        .map(|((r, (_, entity, ts)), v)| {
            r.unwrap_or_else(|| FeatureRow::null(v, entity.as_ref(), *ts))
        })
        .collect())
}
