//! Freshness of live inputs: when each source (a live market-data feed) last delivered anything,
//! and each of its keys (symbols) last delivered data, judged against the source's idle window.
//! Feeds record into it; the gateway reads it for `GET /marketdata` and `/health`, so a
//! half-open connection shows up as stale data instead of silently serving old prices.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

/// The registry of sources. Cheap to clone; clones share the state.
#[derive(Clone, Default)]
pub struct Freshness {
    sources: Arc<Mutex<BTreeMap<String, Source>>>,
}

#[derive(Debug)]
struct Source {
    idle: Duration,
    connected: bool,
    connects: u64,
    last_message: Option<Instant>,
    keys: BTreeMap<String, Option<Instant>>,
}

/// One source's state, as `/marketdata` and `/health` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceReport {
    pub source: String,
    pub connected: bool,
    /// Not connected, or nothing received (not even a heartbeat) within the idle window.
    pub stale: bool,
    pub idle_timeout_ms: u64,
    /// Connections made so far (more than one: it reconnected).
    pub connects: u64,
    pub last_message_ms_ago: Option<u64>,
    pub symbols: Vec<KeyReport>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyReport {
    pub symbol: String,
    /// The source is stale, or no data for this symbol within the idle window.
    pub stale: bool,
    pub last_data_ms_ago: Option<u64>,
}

impl Freshness {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or resets) a source with its idle window and the keys it is expected to deliver.
    pub fn register(
        &self,
        source: &str,
        idle: Duration,
        keys: impl IntoIterator<Item = String>,
    ) -> SourceHandle {
        let entry = Source {
            idle,
            connected: false,
            connects: 0,
            last_message: None,
            keys: keys.into_iter().map(|k| (k, None)).collect(),
        };
        self.lock().insert(source.to_owned(), entry);
        SourceHandle {
            freshness: self.clone(),
            source: source.into(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Source>> {
        self.sources.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every source, as of `now`.
    pub fn report_at(&self, now: Instant) -> Vec<SourceReport> {
        let ago = |t: Option<Instant>| t.map(|t| now.saturating_duration_since(t));
        let ms = |d: Option<Duration>| d.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self.lock()
            .iter()
            .map(|(name, s)| {
                let quiet = |t: Option<Instant>| ago(t).is_none_or(|d| d > s.idle);
                let stale = !s.connected || quiet(s.last_message);
                SourceReport {
                    source: name.clone(),
                    connected: s.connected,
                    stale,
                    idle_timeout_ms: ms(Some(s.idle)).unwrap_or(u64::MAX),
                    connects: s.connects,
                    last_message_ms_ago: ms(ago(s.last_message)),
                    symbols: s
                        .keys
                        .iter()
                        .map(|(key, last)| KeyReport {
                            symbol: key.clone(),
                            stale: stale || quiet(*last),
                            last_data_ms_ago: ms(ago(*last)),
                        })
                        .collect(),
                }
            })
            .collect()
    }

    pub fn report(&self) -> Vec<SourceReport> {
        self.report_at(Instant::now())
    }

    /// Whether `key`'s data is stale: `Some(true)` when every source carrying it is stale for
    /// it, `None` when no source carries it (e.g. the synthetic market).
    pub fn is_stale(&self, key: &str) -> Option<bool> {
        let reports = self.report();
        let mut carried = reports
            .iter()
            .flat_map(|s| &s.symbols)
            .filter(|k| k.symbol.eq_ignore_ascii_case(key))
            .peekable();
        carried.peek()?;
        Some(carried.all(|k| k.stale))
    }

    /// Whether no source is registered.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

/// A source's writer, held by its feed.
#[derive(Clone)]
pub struct SourceHandle {
    freshness: Freshness,
    source: Arc<str>,
}

impl SourceHandle {
    fn update(&self, f: impl FnOnce(&mut Source)) {
        if let Some(s) = self.freshness.lock().get_mut(&*self.source) {
            f(s);
        }
    }

    /// The source connected (counted) or lost its connection.
    pub fn connected(&self, up: bool) {
        self.update(|s| {
            s.connected = up;
            if up {
                s.connects += 1;
            }
        });
    }

    /// Something arrived (data, a heartbeat, a pong) at `now`.
    pub fn message(&self, now: Instant) {
        self.update(|s| s.last_message = Some(now));
    }

    /// Data for these keys arrived at `now` (keys not registered yet are added).
    pub fn data<'k>(&self, keys: impl IntoIterator<Item = &'k str>, now: Instant) {
        self.update(|s| {
            s.last_message = Some(now);
            for key in keys {
                match s.keys.get_mut(key) {
                    Some(last) => *last = Some(now),
                    None => {
                        s.keys.insert(key.to_owned(), Some(now));
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_and_keys_go_stale_after_the_idle_window() {
        let f = Freshness::new();
        let t0 = Instant::now();
        let idle = Duration::from_secs(30);
        let h = f.register("binance:BTCUSDT", idle, ["BTCUSDT".to_owned()]);
        // Never connected: stale, and the key has no data yet.
        let r = &f.report_at(t0)[0];
        assert!(r.stale && r.symbols[0].stale && r.symbols[0].last_data_ms_ago.is_none());

        h.connected(true);
        h.data(["BTCUSDT", "ETHUSDT"], t0);
        let r = &f.report_at(t0 + Duration::from_secs(10))[0];
        assert!(!r.stale && r.connected);
        assert_eq!(r.connects, 1);
        assert_eq!(r.last_message_ms_ago, Some(10_000));
        assert_eq!(
            r.symbols
                .iter()
                .map(|k| (k.symbol.as_str(), k.stale))
                .collect::<Vec<_>>(),
            [("BTCUSDT", false), ("ETHUSDT", false)]
        );

        // A heartbeat keeps the source fresh, not the symbols.
        h.message(t0 + Duration::from_secs(35));
        let r = &f.report_at(t0 + Duration::from_secs(40))[0];
        assert!(!r.stale && r.symbols.iter().all(|k| k.stale));
        // Silence past the window: the source is stale too.
        let r = &f.report_at(t0 + Duration::from_secs(80))[0];
        assert!(r.stale);
        // Disconnected: stale at once.
        h.connected(false);
        h.data(["BTCUSDT"], t0 + Duration::from_secs(80));
        assert!(f.report_at(t0 + Duration::from_secs(80))[0].stale);
    }

    #[test]
    fn a_key_is_stale_only_when_every_source_carrying_it_is() {
        let f = Freshness::new();
        assert_eq!(f.is_stale("BTCUSDT"), None);
        let idle = Duration::from_secs(3600);
        let a = f.register("a", idle, ["BTCUSDT".to_owned()]);
        let _b = f.register("b", idle, ["BTCUSDT".to_owned()]);
        assert_eq!(f.is_stale("btcusdt"), Some(true));
        a.connected(true);
        a.data(["BTCUSDT"], Instant::now());
        assert_eq!(f.is_stale("BTCUSDT"), Some(false));
        assert_eq!(f.is_stale("ETHUSDT"), None);
    }
}
