//! The scanner's consumer: journal events -> interchange records -> the surveillance detectors
//! -> alerts to publish. Its pure part (detectors, exporter, owners) is snapshotted; the links
//! to the outside (the alert store, the latency histogram) are attached after a restore.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use alerts::AlertStore;
use interchange::{Exporter, ExporterStats};
use journal::Delivery;
use model::{Event, Timestamp};
use runtime::{Consumer, Snapshot};
use serde::{Deserialize, Serialize};
use surveillance::{Alert, Scanner, StateStats};
use telemetry::prometheus_client::metrics::histogram::Histogram;

use crate::{ScannerConfig, ScannerError};

/// Alerts published and not yet seen back from the journal, whose latency is still to be
/// measured. They come back within a batch or two; the cap only guards against a stream that
/// never returns them (then latencies are simply not observed).
const MAX_PENDING_LATENCY: usize = 10_000;

/// The compliance scanner's state: a pure fold of the journal (see the crate docs).
#[derive(Serialize, Deserialize)]
pub struct ScanState {
    scanner: Scanner,
    exporter: Exporter,
    /// Beneficial owner per account (part of the configuration, so of the snapshot too).
    owners: BTreeMap<String, String>,
    #[serde(skip)]
    live: Live,
}

/// What a running scanner has besides its pure state: never snapshotted.
#[derive(Default)]
struct Live {
    /// Alerts already raised (journaled) by an earlier run.
    store: Option<AlertStore>,
    latency: Option<Histogram>,
    /// Key of each alert published by this run -> when the event that completed it was
    /// journaled (or the clock time that completed it).
    pending: HashMap<String, Timestamp>,
    /// Set once the consumer has caught up with the journal: only then may the wall clock
    /// drive time-based detection (during a replay it is far ahead of the records).
    caught_up: Arc<AtomicBool>,
    /// Alerts the detectors raised again after a restart and the store already had.
    suppressed: u64,
    /// The newest record's time and when it was journaled: the clock advances event time
    /// from there at wall-clock pace, so a quiet stream still completes time-driven patterns
    /// and a stream with old timestamps (a replayed file) is not run ahead of its records.
    last_record: Option<(Timestamp, Timestamp)>,
}

/// Sizes of the scanner's state (what must stay flat over weeks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ScanStats {
    pub scanner: StateStats,
    pub exporter: ExporterStats,
    /// Published alerts whose latency is not measured yet.
    pub pending_latency: usize,
}

impl ScanState {
    /// A scanner that has seen nothing.
    pub fn new(config: &ScannerConfig) -> Result<ScanState, ScannerError> {
        Ok(ScanState {
            scanner: Scanner::new(config.params.clone())?,
            exporter: Exporter::new(),
            owners: config
                .account_owners
                .iter()
                .map(|(a, o)| (a.clone(), o.clone()))
                .collect(),
            live: Live::default(),
        })
    }

    /// Tells the detectors which alerts are already raised (`(key, alert time)`; after a
    /// restore: those journaled after the snapshot), so they are not raised again.
    pub fn with_known_alerts(self, known: impl IntoIterator<Item = (String, Timestamp)>) -> Self {
        ScanState {
            scanner: self.scanner.with_known_alerts(known),
            ..self
        }
    }

    /// Checks every alert against `store` before publishing it: an alert the store has was
    /// raised by an earlier run.
    pub fn with_store(mut self, store: AlertStore) -> Self {
        self.live.store = Some(store);
        self
    }

    /// Observes the time from the journaling of the event that completed a pattern to the
    /// alert being journaled.
    pub fn with_latency(mut self, latency: Histogram) -> Self {
        self.live.latency = Some(latency);
        self
    }

    /// The flag that lets the wall clock advance the detectors once set.
    pub fn caught_up_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.live.caught_up)
    }

    pub fn scanner(&self) -> &Scanner {
        &self.scanner
    }

    pub fn stats(&self) -> ScanStats {
        ScanStats {
            scanner: self.scanner.state_stats(),
            exporter: self.exporter.stats(),
            pending_latency: self.live.pending.len(),
        }
    }

    /// Alerts not published again because the store already had them (this run).
    pub fn suppressed(&self) -> u64 {
        self.live.suppressed
    }

    /// Publishes the alerts the store does not know yet.
    fn raise(
        &mut self,
        found: Vec<Alert>,
        completed_at: Timestamp,
        out: &mut Vec<Event>,
    ) -> Result<(), ScannerError> {
        for alert in found {
            let raised_before = match &self.live.store {
                Some(store) => store.contains(&alert.key)?,
                None => false,
            };
            if raised_before {
                self.live.suppressed += 1;
                tracing::debug!(key = %alert.key, "alert raised before the restart; not repeated");
                continue;
            }
            let value = serde_json::to_value(&alert)
                .map_err(|e| ScannerError::Encode(format!("alert {}: {e}", alert.key)))?;
            tracing::warn!(
                rule = alert.rule.as_str(),
                subtype = %alert.subtype,
                owner = %alert.owner,
                symbol = %alert.symbol,
                key = %alert.key,
                "compliance alert"
            );
            if self.live.latency.is_some() {
                if self.live.pending.len() >= MAX_PENDING_LATENCY {
                    self.live.pending.clear();
                }
                self.live.pending.insert(alert.key.clone(), completed_at);
            }
            out.push(Event::ComplianceAlert {
                key: alert.key,
                rule: alert.rule.as_str().to_string(),
                alert: value,
                ts: alert.ts,
            });
        }
        Ok(())
    }
}

impl Consumer for ScanState {
    type Error = ScannerError;

    fn apply(&mut self, batch: &[Delivery], out: &mut Vec<Event>) -> Result<(), ScannerError> {
        for d in batch {
            if let Event::ComplianceAlert { key, .. } = &d.event {
                // One of ours (or an earlier run's) is durable now.
                if let (Some(since), Some(h)) = (self.live.pending.remove(key), &self.live.latency)
                {
                    let ns = d.recorded_at.as_nanos().saturating_sub(since.as_nanos());
                    h.observe(ns.max(0) as f64 / 1e9);
                }
                continue;
            }
            let Some(mut record) = self.exporter.export(&d.event) else {
                continue;
            };
            if let Some(account) = &record.account {
                record.owner = self.owners.get(account).cloned();
            }
            self.live.last_record = Some((record.ts, d.recorded_at));
            let found = self.scanner.on_record(&record);
            self.raise(found, d.recorded_at, out)?;
        }
        Ok(())
    }

    /// Time-driven patterns (a session close, a settle window) complete without an event.
    fn tick(&mut self, now: Timestamp, out: &mut Vec<Event>) -> Result<(), ScannerError> {
        let Some((ts, journaled_at)) = self.live.last_record else {
            return Ok(());
        };
        if !self.live.caught_up.load(Ordering::Acquire) {
            return Ok(());
        }
        let quiet_for = now
            .as_nanos()
            .saturating_sub(journaled_at.as_nanos())
            .max(0);
        let event_now = Timestamp::from_nanos(ts.as_nanos().saturating_add(quiet_for));
        let found = self.scanner.advance_to(event_now);
        self.raise(found, now, out)
    }
}

impl Snapshot for ScanState {
    /// Changes with the layout of this struct (the leading 1) and with either part's own
    /// snapshot version, so a snapshot of another layout is never loaded.
    const STATE_VERSION: u32 =
        1_000_000 + Scanner::SNAPSHOT_VERSION * 1_000 + Exporter::SNAPSHOT_VERSION;
}
