#![allow(dead_code)] // each test binary uses a different subset

//! A random but reproducible journal for the pipeline's tests.

pub mod service;

use journal::Delivery;
use model::{
    AccountId, BookLevel, BookSnapshot, ClientOrderId, Event, Fill, FillId, InstrumentId,
    Liquidity, Money, Order, OrderId, OrderType, Price, Quantity, Quote, Side, Symbol, TimeInForce,
    Timestamp, TradeTick, Venue,
};

/// 2023-11-14T22:13:20Z.
pub const T0: i64 = 1_700_000_000 * 1_000_000_000;
pub const MS: i64 = 1_000_000;

/// The instruments and accounts a journal uses.
#[derive(Debug, Clone)]
pub struct Universe {
    pub instruments: Vec<InstrumentId>,
    pub accounts: Vec<AccountId>,
}

impl Universe {
    /// `AAA` on two venues (so one public symbol has two candidates), `BBB` and `CCC` on one.
    pub fn standard() -> Universe {
        Universe::named("", &["AAA.sim", "AAA.alt", "BBB.sim", "CCC.sim"], 3)
    }

    /// Instruments `<prefix><SYMBOL>.<venue>` and accounts `<prefix>acc<i>`.
    pub fn named(prefix: &str, instruments: &[&str], accounts: usize) -> Universe {
        Universe {
            instruments: instruments
                .iter()
                .map(|i| {
                    let (s, v) = i.rsplit_once('.').unwrap();
                    InstrumentId::new(
                        Venue::new(v).unwrap(),
                        Symbol::new(format!("{prefix}{s}")).unwrap(),
                    )
                })
                .collect(),
            accounts: (1..=accounts)
                .map(|i| AccountId::new(format!("{prefix}acc{i}")).unwrap())
                .collect(),
        }
    }

    /// Public symbols (`AAA`), account names and `account|SYMBOL.venue` pairs: every entity the
    /// online API might be asked for, plus a few that never exist.
    pub fn entities(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        for i in &self.instruments {
            out.push((features::MARKET_FEATURES, i.symbol.to_string()));
            for a in &self.accounts {
                out.push((features::POSITION_SYMBOL_FEATURES, format!("{a}|{i}")));
            }
        }
        for a in &self.accounts {
            out.push((features::ORDER_FEATURES, a.to_string()));
            out.push((features::POSITION_FEATURES, a.to_string()));
        }
        out.push((features::MARKET_FEATURES, "NOPE".into()));
        out.push((features::ORDER_FEATURES, "nobody".into()));
        out.sort();
        out.dedup();
        out
    }
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*: deterministic and fast; quality is not the point.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn dec(r: &mut Rng, lo: u64, span: u64) -> String {
    let whole = lo + r.below(span);
    match r.below(3) {
        0 => format!("{whole}"),
        1 => format!("{whole}.{}", r.below(10)),
        _ => format!("{whole}.{:02}", r.below(100)),
    }
}

fn px(s: &str) -> Price {
    Price::parse(s).unwrap()
}
fn qty(s: &str) -> Quantity {
    Quantity::parse(s).unwrap()
}

/// How a journal is shaped.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub seed: u64,
    pub events: usize,
    /// Event time moves forward up to this many milliseconds per event.
    pub step_ms: u64,
    /// Ties, and now and then an event back in time (inside the windows or far outside);
    /// without, every event is strictly later than the one before.
    pub late: bool,
    /// Most orders open at once.
    pub max_open: usize,
    /// Event time of the first event.
    pub start_ns: i64,
}

impl Shape {
    pub fn new(seed: u64, events: usize) -> Shape {
        Shape {
            seed,
            events,
            step_ms: 400,
            late: true,
            max_open: 8,
            start_ns: T0,
        }
    }
}

/// Market data on every instrument, orders that are filled in pieces, cancelled, rejected or
/// expired, and fills of orders the engine never saw.
pub fn random_journal(u: &Universe, shape: Shape) -> Vec<Event> {
    let mut r = Rng(shape.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut t = shape.start_ns;
    let (mut next_order, mut next_fill) = (1u64, 1u64);
    // (order id, account, instrument, side, quantity left)
    let mut open: Vec<(u64, usize, usize, Side, u64)> = Vec::new();
    let mut out = Vec::with_capacity(shape.events);
    while out.len() < shape.events {
        let at = if shape.late {
            t += r.below(shape.step_ms + 1) as i64 * MS;
            match r.below(60) {
                0 => t - r.below(5_000) as i64 * MS,
                1 => t - 3_700_000 * MS,
                _ => t,
            }
        } else {
            t += (1 + r.below(shape.step_ms.max(1))) as i64 * MS;
            t
        };
        let ts = Timestamp::from_nanos(at);
        let i = r.below(u.instruments.len() as u64) as usize;
        let inst = u.instruments[i].clone();
        match r.below(12) {
            0..=2 => out.push(Event::Trade(TradeTick {
                instrument: inst,
                price: px(&dec(&mut r, 95, 10)),
                quantity: qty(&dec(&mut r, 1, 5)),
                aggressor: None,
                trade_id: format!("{at}"),
                ts,
            })),
            3 => {
                let b = 95 + r.below(10);
                out.push(Event::Quote(Quote {
                    instrument: inst,
                    bid: px(&format!("{b}.00")),
                    bid_size: qty("1"),
                    ask: px(&format!("{b}.10")),
                    ask_size: qty("2"),
                    ts,
                }));
            }
            4 => {
                let b = 95 + r.below(10);
                let level = |p: String, q: String| BookLevel {
                    price: px(&p),
                    quantity: qty(&q),
                };
                let bids = (0..1 + r.below(4))
                    .map(|k| level(format!("{b}.{:02}", 90 - k), dec(&mut r, 1, 5)))
                    .collect();
                let asks = (0..1 + r.below(4))
                    .map(|k| level(format!("{}.{:02}", b + 1, k), dec(&mut r, 1, 5)))
                    .collect();
                out.push(Event::BookSnapshot(BookSnapshot {
                    instrument: inst,
                    bids,
                    asks,
                    sequence: None,
                    ts,
                }));
            }
            5..=7 if open.len() < shape.max_open => {
                let a = r.below(u.accounts.len() as u64) as usize;
                let side = if r.below(2) == 0 {
                    Side::Buy
                } else {
                    Side::Sell
                };
                let q = 1 + r.below(4);
                let order = Order::new(
                    OrderId(next_order),
                    ClientOrderId::new(format!("c{next_order}")).unwrap(),
                    u.accounts[a].clone(),
                    inst,
                    side,
                    OrderType::Market,
                    TimeInForce::Gtc,
                    qty(&q.to_string()),
                    None,
                    None,
                    ts,
                )
                .unwrap();
                out.push(Event::OrderSubmitted { order });
                open.push((next_order, a, i, side, q));
                next_order += 1;
            }
            _ if !open.is_empty() => {
                let k = r.below(open.len() as u64) as usize;
                let (id, a, i, side, left) = open[k];
                let account = u.accounts[a].clone();
                let order_id = OrderId(id);
                match r.below(6) {
                    0 => out.push(Event::OrderCanceled {
                        order_id,
                        account,
                        reason: "user".into(),
                        ts,
                    }),
                    1 => out.push(Event::OrderRejected {
                        order_id,
                        account,
                        code: "risk".into(),
                        message: "limit".into(),
                        ts,
                    }),
                    2 => out.push(Event::OrderExpired {
                        order_id,
                        account,
                        reason: "ioc".into(),
                        ts,
                    }),
                    _ => {
                        let q = 1 + r.below(left);
                        out.push(Event::OrderFilled(Fill {
                            fill_id: FillId(next_fill),
                            order_id,
                            account,
                            instrument: u.instruments[i].clone(),
                            side,
                            quantity: qty(&q.to_string()),
                            price: px(&dec(&mut r, 95, 10)),
                            fee: Money::parse(&dec(&mut r, 0, 1)).unwrap(),
                            liquidity: Liquidity::Taker,
                            ts,
                        }));
                        next_fill += 1;
                        if q < left {
                            open[k].4 = left - q;
                            continue;
                        }
                    }
                }
                open.swap_remove(k);
            }
            _ => {
                // A fill of an order submitted before the journal began.
                out.push(Event::OrderFilled(Fill {
                    fill_id: FillId(next_fill),
                    order_id: OrderId(1_000_000 + r.below(1_000)),
                    account: u.accounts[r.below(u.accounts.len() as u64) as usize].clone(),
                    instrument: inst,
                    side: Side::Buy,
                    quantity: qty("1"),
                    price: px("100"),
                    fee: Money::parse("0").unwrap(),
                    liquidity: Liquidity::Maker,
                    ts,
                }));
                next_fill += 1;
            }
        }
    }
    out
}

/// The events as the bus delivers them, from sequence `first_seq`.
pub fn deliveries(events: &[Event], first_seq: u64) -> Vec<Delivery> {
    events
        .iter()
        .enumerate()
        .map(|(i, e)| Delivery {
            seq: first_seq + i as u64,
            recorded_at: e.ts(),
            subject: e.subject(),
            event: e.clone(),
        })
        .collect()
}
