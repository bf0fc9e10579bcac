//! What the publisher tells `/metrics` about the feeds' events: counts by kind and, per
//! exchange, the seconds since its feed last delivered (`trade2026_feed_silence_seconds`, read
//! when `/metrics` renders, so a feed that went quiet shows a growing number, not a stale one).

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use model::{Event, EventKind};
use telemetry::Metrics;
use telemetry::prometheus_client::metrics::family::Family;
use telemetry::prometheus_client::metrics::gauge::Gauge;

/// Exchanges tracked at most (a replay file could name any number of venues).
const MAX_EXCHANGES: usize = 64;

/// When each exchange's feed last delivered. Cheap to clone; clones share the times.
#[derive(Clone, Default)]
pub(crate) struct FeedSilence {
    last: Arc<Mutex<BTreeMap<String, Instant>>>,
}

impl FeedSilence {
    pub(crate) fn register(metrics: &Metrics) -> FeedSilence {
        let silence = FeedSilence::default();
        let family = Family::<telemetry::Labels, Gauge<f64, AtomicU64>>::default();
        metrics.register(
            "feed_silence_seconds",
            "Seconds since the last market-data event from each exchange's feed (since the start for a feed that has sent nothing yet)",
            family.clone(),
        );
        let last = silence.last.clone();
        metrics.on_scrape(move || {
            let now = Instant::now();
            for (exchange, at) in last.lock().unwrap_or_else(|e| e.into_inner()).iter() {
                family
                    .get_or_create(&vec![("exchange", exchange.clone())])
                    .set(now.saturating_duration_since(*at).as_secs_f64());
            }
        });
        silence
    }

    /// A feed of `exchange` is starting: its silence counts from now until it delivers.
    pub(crate) fn expect(&self, exchange: &str) {
        self.heard([exchange], Instant::now());
    }

    fn heard<'a>(&self, exchanges: impl IntoIterator<Item = &'a str>, now: Instant) {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        for exchange in exchanges {
            if let Some(t) = last.get_mut(exchange) {
                *t = now;
            } else if last.len() < MAX_EXCHANGES {
                last.insert(exchange.to_owned(), now);
            }
        }
    }

    /// Records a batch on its way to the journal: per-kind counts and the exchanges heard
    /// from, with one lock and one counter update per kind rather than per event.
    pub(crate) fn batch(&self, metrics: &Metrics, batch: &[Event]) {
        let mut kinds: Vec<(EventKind, u64)> = Vec::new();
        let mut venues: Vec<&str> = Vec::new();
        for e in batch {
            match kinds.iter_mut().find(|(k, _)| *k == e.kind()) {
                Some((_, n)) => *n += 1,
                None => kinds.push((e.kind(), 1)),
            }
            if let Some(i) = e.instrument() {
                let venue = i.venue.as_str();
                if !venues.contains(&venue) {
                    venues.push(venue);
                }
            }
        }
        for (kind, n) in kinds {
            metrics
                .events_appended
                .get_or_create(&vec![("kind", kind.as_str().to_owned())])
                .inc_by(n);
        }
        self.heard(venues, Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_grows_until_a_feed_delivers_and_kinds_are_counted() {
        let metrics = Metrics::new();
        let silence = FeedSilence::register(&metrics);
        silence.expect("binance");
        std::thread::sleep(std::time::Duration::from_millis(20));
        let mut market = feeds::synthetic::SyntheticMarket::new(
            7,
            vec![feeds::synthetic::SyntheticSpec::for_symbol("BTCUSDT").unwrap()],
        )
        .unwrap();
        let events = market.step(model::Timestamp::from_secs(1_700_000_000));
        assert!(!events.is_empty());
        silence.batch(&metrics, &events);
        let text = metrics.render();
        let value = |exchange: &str| -> f64 {
            text.lines()
                .find_map(|l| {
                    l.strip_prefix(&format!(
                        "trade2026_feed_silence_seconds{{exchange=\"{exchange}\"}} "
                    ))
                })
                .unwrap_or_else(|| panic!("{exchange} in {text}"))
                .parse()
                .unwrap()
        };
        assert!(value("binance") >= 0.02, "{text}");
        assert!(value("sim") < value("binance"), "{text}");
        let quotes = events
            .iter()
            .filter(|e| e.kind() == EventKind::Quote)
            .count();
        assert!(
            text.contains(&format!(
                "trade2026_journal_events_appended_total{{kind=\"quote\"}} {quotes}\n"
            )),
            "{text}"
        );
    }
}
