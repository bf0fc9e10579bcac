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
//! **Snapshots.** [`Scanner`] is serde `Serialize + Deserialize`: serializing it, restoring it
//! and feeding the following records gives exactly the alerts (and the state) of feeding them
//! without interruption. The snapshot includes the parameters (checked again on restore) and is
//! canonical: the same state always serializes to the same bytes. [`Scanner::SNAPSHOT_VERSION`]
//! names the layout. Fills shared between the scanner's windows are restored as separate
//! copies (they are immutable), so a restored scanner may hold a few copies of a fill until it
//! leaves the windows.
//!
//! **Resuming after a restart.** Alerts are deterministic functions of the record sequence,
//! and keys are deterministic functions of the identifying orders/fills. The service keeps the
//! alerts it has delivered (its alert journal). On restart it restores the newest snapshot,
//! passes the `(key, ts)` of the alerts journaled after it to [`Scanner::with_known_alerts`]
//! and replays the records after the snapshot. Without a snapshot it builds
//! `Scanner::new(params)?.with_known_alerts(delivered)` and replays from a point far enough
//! back to rebuild the state (the start of the UTC day is enough for every rule except layers
//! living longer than that; evidence statistics such as the order-to-trade ratio are per UTC
//! day, so a replay from the day's start reproduces them exactly). An alert completed before
//! the crash is regenerated during the replay and suppressed by its key; one that was completed
//! but not yet delivered is delivered: none lost, none repeated.
//!
//! **Memory bounds.** Everything the scanner keeps is bounded by event time (the records'
//! timestamps, never a clock), so memory stays flat over weeks of records:
//! * orders: a live order is forgotten `order_max_live_ms` after placement (swept every minute
//!   of record time; a later cancel or fill of it is ignored), a finished one
//!   `max(spoof_t_post_ms, layer_t_post_ms)` after it finished;
//! * fills: kept for the spoofing/layering look-back, while a live order or an open layering
//!   episode could use them, but never longer than `order_max_live_ms +
//!   max(spoof_t_post_ms, layer_t_post_ms)`; unpaired round-trip candidates for
//!   `wash_window_ms`; self-match prints for `wash_window_ms`;
//! * layering episodes: dropped once their post-window has passed and no order placed before
//!   their end is live. An episode can chain overlapping orders without end (a market maker
//!   replacing its quotes); it then lists only the orders cancelled within
//!   `order_max_live_ms` (older ones still count in its total and levels; the alert's
//!   `orders_not_listed` says how many are left out), and looks for opposite fills that far
//!   back plus the post-window;
//! * quotes: the (time, mid) history of the last `mi_burst_window_ms + mi_settle_ms` per
//!   symbol; momentum-ignition bursts until their exit window ends; marking-the-close
//!   aggregates for the current session's window only;
//! * delivered alert keys: each until its alert time plus its rule's
//!   [`Scanner::dedupe_horizon`] (after that no rule can raise the key again), also those given
//!   to [`Scanner::with_known_alerts`] / [`Scanner::with_known_keys`];
//! * interned order keys (`account`, `order_id`; orders, fills and episodes refer to an order
//!   by a `Copy` id of its key): freed once nothing above refers to them, when the table has
//!   grown to twice what was referenced at the previous collection, so at most twice what the
//!   state refers to, or 1024;
//! * order-to-trade and cancel ratios: per owner group, for the current UTC day;
//! * per entity (interned names, account -> owner links, last trade price, quote state and
//!   close schedule per symbol): bounded by the accounts, owners and symbols of the platform,
//!   which do not grow with the number of orders, fills or alerts.
//!
//! [`Scanner::state_stats`] reports the size of each.

mod alert;
mod close;
mod fxhash;
mod keys;
mod momentum;
mod params;
mod scanner;
mod snapshot;
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
    let mut b = BatchScan::new(params)?;
    for r in records {
        b.push(r);
    }
    Ok(b.finish())
}

/// [`scan`] fed one record at a time (records read as a stream need not be held): push every
/// record in time order, then [`BatchScan::finish`].
pub struct BatchScan {
    scanner: Scanner,
    seen: HashSet<String>,
    alerts: Vec<Alert>,
}

impl BatchScan {
    pub fn new(params: &Params) -> Result<BatchScan, SurveillanceError> {
        Ok(BatchScan {
            scanner: Scanner::new(params.clone())?,
            seen: HashSet::new(),
            alerts: Vec::new(),
        })
    }

    pub fn push(&mut self, record: &Record) {
        let new = self.scanner.on_record(record);
        self.keep(new);
    }

    fn keep(&mut self, new: Vec<Alert>) {
        let seen = &mut self.seen;
        self.alerts
            .extend(new.into_iter().filter(|a| seen.insert(a.key.clone())));
    }

    /// The alerts of [`scan`] over the records pushed.
    pub fn finish(mut self) -> Vec<Alert> {
        let rest = self.scanner.finish();
        self.keep(rest);
        self.alerts
    }
}

/// The CLI / HTTP body: `{"alerts":[...]}`.
pub fn alerts_to_json(alerts: &[Alert]) -> serde_json::Value {
    serde_json::json!({ "alerts": alerts })
}

/// [`alerts_to_json`] as a value serialized one alert at a time: the same output (each alert
/// goes through `serde_json::Value`, so its keys come in the same order), without a `Value`
/// of every alert at once.
pub fn alerts_json(alerts: &[Alert]) -> impl serde::Serialize + '_ {
    AlertsBody(alerts)
}

struct AlertsBody<'a>(&'a [Alert]);
struct AlertList<'a>(&'a [Alert]);

impl serde::Serialize for AlertsBody<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry("alerts", &AlertList(self.0))?;
        m.end()
    }
}

impl serde::Serialize for AlertList<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for a in self.0 {
            seq.serialize_element(&serde_json::to_value(a).map_err(serde::ser::Error::custom)?)?;
        }
        seq.end()
    }
}
