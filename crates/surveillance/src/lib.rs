//! Trade-surveillance detectors over interchange records (spec
//! `execution-quality-and-surveillance.md`, section B): `WASH_TRADE`, `SPOOFING`, `LAYERING`,
//! `MARKING_THE_CLOSE`, `MOMENTUM_IGNITION`. Pure: no I/O, no clock.
//!
//! One implementation serves both modes:
//! * streaming: [`Scanner::on_record`] per record, in time order; it returns the alerts that
//!   record completes. Time-driven parts (marking the close, momentum-ignition settle and exit,
//!   round-trip wash pairing) run when a record with a later timestamp arrives, or on
//!   [`Scanner::advance_to`] (a heartbeat from the service's clock) or [`Scanner::finish`].
//! * batch: [`scan`] = a fresh scanner fed every record in order, then `finish`, deduplicated
//!   by key. Streaming and batch therefore give the same alerts with the same keys.
//!
//! State is bounded by the windows: finished orders are dropped `spoof_t_post_ms` after they
//! finish, fills once no rule can look back to them, live orders after `order_max_live_ms`.
//!
//! **Resuming after a restart.** Alerts are deterministic functions of the record sequence,
//! and keys are deterministic functions of the identifying orders/fills. The service keeps the
//! keys it has delivered (its alert journal). On restart it builds
//! `Scanner::new(params)?.with_known_keys(delivered_keys)` and replays the events from a point
//! far enough back to rebuild the state (the start of the UTC day is enough for every rule
//! except layers living longer than that; evidence statistics such as the order-to-trade ratio
//! are per UTC day, so a replay from the day's start reproduces them exactly), then continues
//! with live events. An alert completed before the crash is regenerated during the replay and
//! suppressed by its key; one that was completed but not yet delivered is delivered: none lost,
//! none repeated.

mod alert;
mod close;
mod fxhash;
mod momentum;
mod params;
mod scanner;
mod spoof_layer;
mod wash;

use std::collections::HashSet;

use interchange::Record;
use thiserror::Error;

pub use alert::{
    Alert, Evidence, FillRef, LayerOrder, LayeringEvidence, MiEvidence, MtcEvidence, QuoteSnap,
    Rule, Severity, SpoofOrder, SpoofingEvidence, WashEvidence, alerts_to_csv,
};
pub use params::{OwnerLinkage, Params, QuoteTiming};
pub use scanner::{Scanner, StateStats};

#[derive(Debug, Error)]
pub enum SurveillanceError {
    #[error("surveillance parameters: {0}")]
    Params(String),
}

/// Batch scan: exactly the streaming scanner fed `records` in order, then finished. Alerts come
/// in emission order, deduplicated by key.
pub fn scan(records: &[Record], params: &Params) -> Result<Vec<Alert>, SurveillanceError> {
    let mut s = Scanner::new(params.clone())?;
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for r in records {
        out.extend(
            s.on_record(r)
                .into_iter()
                .filter(|a| seen.insert(a.key.clone())),
        );
    }
    out.extend(
        s.finish()
            .into_iter()
            .filter(|a| seen.insert(a.key.clone())),
    );
    Ok(out)
}

/// The CLI / HTTP body: `{"alerts":[...]}`.
pub fn alerts_to_json(alerts: &[Alert]) -> serde_json::Value {
    serde_json::json!({ "alerts": alerts })
}
