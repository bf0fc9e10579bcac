//! A seeded synthetic market: geometric Brownian motion mids on a tick grid, a quoted spread of
//! one to three ticks, random top-of-book sizes, trades that hit the bid or lift the offer, and a
//! ten-level book every few steps. The same seed and timestamps give byte-identical events, so
//! tests and demos are reproducible.
//!
//! Prices live as integer ticks; f64 is used only for the random walk's statistics and every
//! emitted price is an exact `Decimal` multiple of the tick size.

use model::{
    BookLevel, BookSnapshot, Decimal, Event, InstrumentId, Price, Quantity, Quote, Side, Symbol,
    Timestamp, TradeTick, Venue,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The venue name synthetic instruments trade on.
pub const SIM_VENUE: &str = "sim";

/// Seconds in a 365-day year: volatility is annualized over calendar time (crypto never closes).
const SECONDS_PER_YEAR: f64 = 365.0 * 24.0 * 3600.0;

/// One synthetic instrument's parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticSpec {
    pub symbol: Symbol,
    pub start_price: Decimal,
    pub tick_size: Decimal,
    pub lot_size: Decimal,
    /// Annualized volatility of the mid, e.g. 0.6 for 60 %.
    pub annual_vol: f64,
    /// Probability that a step prints a trade.
    pub trade_probability: f64,
}

impl SyntheticSpec {
    /// Sensible parameters for well-known symbols; anything else starts at 100 with a cent tick.
    pub fn for_symbol(symbol: &str) -> Result<SyntheticSpec, model::ModelError> {
        let d = |s: &str| s.parse::<Decimal>().unwrap_or(Decimal::ONE);
        let (start, tick, lot, vol) = match symbol {
            "BTCUSDT" => ("45000", "0.01", "0.0001", 0.6),
            "ETHUSDT" => ("2500", "0.01", "0.001", 0.75),
            "SOLUSDT" => ("100", "0.001", "0.01", 0.9),
            "BNBUSDT" => ("300", "0.01", "0.001", 0.7),
            "XRPUSDT" => ("0.5", "0.0001", "1", 0.9),
            _ => ("100", "0.01", "0.01", 0.5),
        };
        Ok(SyntheticSpec {
            symbol: Symbol::new(symbol)?,
            start_price: d(start),
            tick_size: d(tick),
            lot_size: d(lot),
            annual_vol: vol,
            trade_probability: 0.5,
        })
    }
}

struct SimInstrument {
    spec: SyntheticSpec,
    instrument: InstrumentId,
    mid_ticks: i64,
    trade_seq: u64,
}

/// The generator. Call [`SyntheticMarket::step`] with increasing timestamps.
pub struct SyntheticMarket {
    rng: ChaCha8Rng,
    instruments: Vec<SimInstrument>,
    steps: u64,
    last_ts: Option<Timestamp>,
    /// Emit a full ten-level book every this many steps (and on the first step).
    pub book_every: u64,
}

impl SyntheticMarket {
    pub fn new(seed: u64, specs: Vec<SyntheticSpec>) -> Result<Self, model::ModelError> {
        let venue = Venue::new(SIM_VENUE)?;
        let instruments = specs
            .into_iter()
            .map(|spec| {
                let mid_ticks = (spec.start_price / spec.tick_size)
                    .round()
                    .try_into()
                    .unwrap_or(1_000_000i64)
                    .max(10);
                SimInstrument {
                    instrument: InstrumentId::new(venue.clone(), spec.symbol.clone()),
                    spec,
                    mid_ticks,
                    trade_seq: 0,
                }
            })
            .collect();
        Ok(SyntheticMarket {
            rng: ChaCha8Rng::seed_from_u64(seed),
            instruments,
            steps: 0,
            last_ts: None,
            book_every: 10,
        })
    }

    pub fn instruments(&self) -> impl Iterator<Item = &InstrumentId> {
        self.instruments.iter().map(|i| &i.instrument)
    }

    /// Advance every instrument to `ts` and return the events of this step: for each instrument a
    /// quote, maybe a trade, and periodically a book snapshot.
    pub fn step(&mut self, ts: Timestamp) -> Vec<Event> {
        let dt_secs = match self.last_ts {
            Some(prev) => ((ts.as_nanos() - prev.as_nanos()).max(0) as f64) / 1e9,
            None => 0.0,
        };
        self.last_ts = Some(ts);
        let with_book = self.steps.is_multiple_of(self.book_every.max(1));
        self.steps += 1;
        let mut out = Vec::with_capacity(self.instruments.len() * 3);
        for inst in &mut self.instruments {
            let rng = &mut self.rng;
            // GBM step on the mid: d ln S = sigma sqrt(dt) Z (drift-free).
            let z = standard_normal(rng);
            let sigma = inst.spec.annual_vol * (dt_secs / SECONDS_PER_YEAR).sqrt();
            let next = (inst.mid_ticks as f64 * (sigma * z).exp()).round() as i64;
            inst.mid_ticks = next.max(10);

            let spread_ticks: i64 = rng.random_range(1..=3);
            let bid_ticks = inst.mid_ticks - spread_ticks / 2;
            let ask_ticks = bid_ticks + spread_ticks;
            let tick = inst.spec.tick_size;
            let lot = inst.spec.lot_size;
            let price = |t: i64| Price::new(Decimal::from(t) * tick).ok();
            let size =
                |lots: u32| Quantity::new(Decimal::from(lots) * lot).unwrap_or(Quantity::ZERO);
            let (Some(bid), Some(ask)) = (price(bid_ticks), price(ask_ticks)) else {
                continue;
            };
            out.push(Event::Quote(Quote {
                instrument: inst.instrument.clone(),
                bid,
                bid_size: size(rng.random_range(1..=500)),
                ask,
                ask_size: size(rng.random_range(1..=500)),
                ts,
            }));
            if rng.random_bool(inst.spec.trade_probability.clamp(0.0, 1.0)) {
                let side = if rng.random_bool(0.5) {
                    Side::Buy
                } else {
                    Side::Sell
                };
                inst.trade_seq += 1;
                out.push(Event::Trade(TradeTick {
                    instrument: inst.instrument.clone(),
                    price: if side == Side::Buy { ask } else { bid },
                    quantity: size(rng.random_range(1..=200)),
                    aggressor: Some(side),
                    trade_id: inst.trade_seq.to_string(),
                    ts,
                }));
            }
            if with_book {
                let mut level = |t: i64, n: u32| {
                    price(t).map(|p| BookLevel {
                        price: p,
                        quantity: size(n * 100 + rng.random_range(1..=100)),
                    })
                };
                let bids = (0..10)
                    .filter_map(|i| level(bid_ticks - i, i as u32 + 1))
                    .collect();
                let asks = (0..10)
                    .filter_map(|i| level(ask_ticks + i, i as u32 + 1))
                    .collect();
                out.push(Event::BookSnapshot(BookSnapshot {
                    instrument: inst.instrument.clone(),
                    bids,
                    asks,
                    sequence: Some(self.steps),
                    ts,
                }));
            }
        }
        out
    }
}

/// Box-Muller: two uniforms to one standard normal. Deterministic for a given RNG stream.
fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn market(seed: u64) -> SyntheticMarket {
        let specs = ["BTCUSDT", "ETHUSDT"]
            .iter()
            .map(|s| SyntheticSpec::for_symbol(s).unwrap())
            .collect();
        SyntheticMarket::new(seed, specs).unwrap()
    }

    fn run(seed: u64, steps: i64) -> Vec<Event> {
        let mut m = market(seed);
        (0..steps)
            .flat_map(|i| m.step(Timestamp::from_millis(1_700_000_000_000 + i * 250)))
            .collect()
    }

    #[test]
    fn same_seed_same_events_different_seed_different_events() {
        assert_eq!(run(7, 200), run(7, 200));
        assert_ne!(run(7, 200), run(8, 200));
    }

    #[test]
    fn quotes_are_on_the_tick_grid_with_a_positive_spread_and_prices_move() {
        let events = run(42, 400);
        let tick: Decimal = "0.01".parse().unwrap();
        let mut btc_mids = Vec::new();
        for e in &events {
            if let Event::Quote(q) = e {
                assert!(q.ask > q.bid, "crossed quote {q:?}");
                assert_eq!(q.bid.get() % tick, Decimal::ZERO);
                assert_eq!(q.ask.get() % tick, Decimal::ZERO);
                if q.instrument.symbol.as_str() == "BTCUSDT" {
                    btc_mids.push(q.mid());
                }
            }
        }
        assert_eq!(btc_mids.len(), 400);
        let first = btc_mids[0];
        assert!(
            (first - Decimal::from(45000)).abs() < Decimal::from(50),
            "{first}"
        );
        let distinct: std::collections::BTreeSet<_> = btc_mids.iter().collect();
        assert!(
            distinct.len() > 50,
            "mid barely moves: {} distinct values",
            distinct.len()
        );
    }

    #[test]
    fn trades_print_at_the_touch_and_books_are_sorted() {
        let mut m = market(3);
        let mut trades = 0;
        let mut books = 0;
        for i in 0..100 {
            let events = m.step(Timestamp::from_millis(1_000 + i * 100));
            let quote = |sym: &str| {
                events.iter().find_map(|e| match e {
                    Event::Quote(q) if q.instrument.symbol.as_str() == sym => Some(q.clone()),
                    _ => None,
                })
            };
            for e in &events {
                match e {
                    Event::Trade(t) => {
                        trades += 1;
                        let q = quote(t.instrument.symbol.as_str()).unwrap();
                        let expected = if t.aggressor == Some(Side::Buy) {
                            q.ask
                        } else {
                            q.bid
                        };
                        assert_eq!(t.price, expected);
                    }
                    Event::BookSnapshot(b) => {
                        books += 1;
                        assert_eq!(b.bids.len(), 10);
                        assert!(b.bids.windows(2).all(|w| w[0].price > w[1].price));
                        assert!(b.asks.windows(2).all(|w| w[0].price < w[1].price));
                        assert!(b.bids[0].price < b.asks[0].price);
                    }
                    _ => {}
                }
            }
        }
        assert!(trades > 50, "{trades}");
        assert_eq!(books, 20); // every 10th step, two instruments
    }
}
