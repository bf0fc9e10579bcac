use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use model::{Decimal, Event, Quote, TradeTick};
use serde::Serialize;

/// The last quote and trade per symbol, fed from the event stream.
///
/// Keyed by symbol alone: the gateway's users name `BTCUSDT`, not a venue. When several venues
/// carry the same symbol the most recent event wins, and the answer says which venue it came from.
#[derive(Clone, Default)]
pub struct MarketCache {
    inner: Arc<RwLock<BTreeMap<String, Entry>>>,
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
