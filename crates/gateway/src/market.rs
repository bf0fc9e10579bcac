use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use model::{Decimal, Event, Quote, TradeTick};
use serde::Serialize;
use telemetry::freshness::{Freshness, SourceReport};

/// The last quote and trade per symbol, fed from the event stream, and the freshness of the
/// live feeds that deliver them.
///
/// Keyed by symbol alone: the gateway's users name `BTCUSDT`, not a venue. When several venues
/// carry the same symbol the most recent event wins, and the answer says which venue it came from.
#[derive(Clone, Default)]
pub struct MarketCache {
    inner: Arc<RwLock<BTreeMap<String, Entry>>>,
    freshness: Freshness,
}

#[derive(Clone, Default)]
struct Entry {
    quote: Option<Quote>,
    trade: Option<TradeTick>,
}

/// What `GET /marketdata/{symbol}` answers.
#[derive(Debug, Clone, Serialize)]
pub struct MarketSnapshot {
    pub symbol: String,
    pub quote: Option<QuoteView>,
    pub trade: Option<TradeTick>,
    /// For a symbol of a live feed: no data for it within the feed's idle window (or the feed
    /// is down), so the quote and trade may be old. Absent for other sources (synthetic, replay).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stale: Option<bool>,
}

/// What `GET /marketdata` answers: the symbols, and each live feed's freshness.
#[derive(Debug, Clone, Serialize)]
pub struct MarketListing {
    pub symbols: Vec<String>,
    pub feeds: Vec<SourceReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct QuoteView {
    #[serde(flatten)]
    pub quote: Quote,
    #[serde(with = "rust_decimal_str")]
    pub mid: Decimal,
    #[serde(with = "rust_decimal_str")]
    pub spread: Decimal,
}

mod rust_decimal_str {
    use model::Decimal;
    pub fn serialize<S: serde::Serializer>(d: &Decimal, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&d.normalize())
    }
}

impl MarketCache {
    /// A cache that reports the freshness the live feeds record in `freshness`.
    pub fn with_freshness(freshness: Freshness) -> Self {
        MarketCache {
            inner: Arc::default(),
            freshness,
        }
    }

    /// The `feeds` part of the gateway's `/health`: each live feed's freshness.
    pub fn feeds_health(&self) -> serde_json::Value {
        serde_json::to_value(self.freshness.report()).unwrap_or_default()
    }

    /// `GET /marketdata`.
    pub fn listing(&self) -> MarketListing {
        MarketListing {
            symbols: self.symbols(),
            feeds: self.freshness.report(),
        }
    }

    /// Fold one event; anything but quotes and trades is ignored.
    pub fn apply(&self, event: &Event) {
        let (symbol, update): (&str, &dyn Fn(&mut Entry)) = match event {
            Event::Quote(q) => (q.instrument.symbol.as_str(), &|e: &mut Entry| {
                e.quote = Some(q.clone())
            }),
            Event::Trade(t) => (t.instrument.symbol.as_str(), &|e: &mut Entry| {
                e.trade = Some(t.clone())
            }),
            _ => return,
        };
        let mut map = self.inner.write().unwrap_or_else(|e| e.into_inner());
        match map.get_mut(symbol) {
            Some(entry) => update(entry),
            None => {
                let mut entry = Entry::default();
                update(&mut entry);
                map.insert(symbol.to_string(), entry);
            }
        }
    }

    pub fn snapshot(&self, symbol: &str) -> Option<MarketSnapshot> {
        let map = self.inner.read().unwrap_or_else(|e| e.into_inner());
        let entry = map
            .get(symbol)
            .or_else(|| map.get(&symbol.to_ascii_uppercase()))?;
        Some(MarketSnapshot {
            symbol: symbol.to_ascii_uppercase(),
            quote: entry.quote.clone().map(|q| QuoteView {
                mid: q.mid(),
                spread: q.ask.get() - q.bid.get(),
                quote: q,
            }),
            trade: entry.trade.clone(),
            stale: self.freshness.is_stale(symbol),
        })
    }

    /// The current mid of a symbol, if a quote is known.
    pub fn mid(&self, symbol: &str) -> Option<Decimal> {
        let map = self.inner.read().unwrap_or_else(|e| e.into_inner());
        map.get(symbol)?.quote.as_ref().map(Quote::mid)
    }

    /// The instrument a symbol trades as here (the venue of its latest market data).
    pub fn instrument(&self, symbol: &str) -> Option<model::InstrumentId> {
        let map = self.inner.read().unwrap_or_else(|e| e.into_inner());
        let entry = map.get(symbol)?;
        match (&entry.quote, &entry.trade) {
            (Some(q), Some(t)) if t.ts > q.ts => Some(t.instrument.clone()),
            (Some(q), _) => Some(q.instrument.clone()),
            (None, Some(t)) => Some(t.instrument.clone()),
            (None, None) => None,
        }
    }

    pub fn symbols(&self) -> Vec<String> {
        self.inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use model::{InstrumentId, Price, Quantity, Symbol, Timestamp, Venue};

    use super::*;

    fn quote(symbol: &str) -> Event {
        Event::Quote(Quote {
            instrument: InstrumentId::new(
                Venue::new("binance").unwrap(),
                Symbol::new(symbol).unwrap(),
            ),
            bid: Price::parse("100").unwrap(),
            bid_size: Quantity::parse("1").unwrap(),
            ask: Price::parse("101").unwrap(),
            ask_size: Quantity::parse("1").unwrap(),
            ts: Timestamp::from_secs(1),
        })
    }

    #[test]
    fn live_feed_symbols_say_whether_their_data_is_stale() {
        let freshness = Freshness::new();
        let cache = MarketCache::with_freshness(freshness.clone());
        cache.apply(&quote("BTCUSDT"));
        cache.apply(&quote("SIMUSD"));
        let feed = freshness.register(
            "binance:BTCUSDT",
            Duration::from_secs(3600),
            ["BTCUSDT".into()],
        );

        // Registered, never connected: stale.
        assert_eq!(cache.snapshot("btcusdt").unwrap().stale, Some(true));
        feed.connected(true);
        feed.data(["BTCUSDT"], std::time::Instant::now());
        assert_eq!(cache.snapshot("BTCUSDT").unwrap().stale, Some(false));
        // A symbol no live feed carries has no flag.
        let sim = cache.snapshot("SIMUSD").unwrap();
        assert_eq!(sim.stale, None);
        assert!(serde_json::to_value(&sim).unwrap().get("stale").is_none());

        let listing = serde_json::to_value(cache.listing()).unwrap();
        assert_eq!(listing["symbols"], serde_json::json!(["BTCUSDT", "SIMUSD"]));
        assert_eq!(listing["feeds"][0]["source"], "binance:BTCUSDT");
        assert_eq!(listing["feeds"][0]["stale"], false);
        assert_eq!(listing["feeds"][0]["symbols"][0]["symbol"], "BTCUSDT");
        feed.connected(false);
        assert!(cache.listing().feeds[0].stale);
    }
}
