//! Shared by the tests: a random journal of orders, fills, quotes and trades, its deliveries,
//! the test parameters, and the report the service gave before it evicted anything.

#![allow(dead_code)] // each test file uses part of this

use std::path::Path;

use execq::{ExecQuality, OrderQuality, Params, ReportFilter};
use interchange::Exporter;
use journal::Delivery;
use model::{
    AccountId, BookDelta, BookLevel, ClientOrderId, Decimal, Event, Fill, FillId, InstrumentId,
    Liquidity, Money, Order, OrderId, OrderType, Price, Quantity, Quote, Side, Symbol, TimeInForce,
    Timestamp, TradeTick, Venue,
};

/// xorshift64*: deterministic, so a failing seed replays exactly.
pub struct Rng(u64);
impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

pub fn inst(sym: usize) -> InstrumentId {
    InstrumentId::new(
        Venue::new("sim").unwrap(),
        Symbol::new(["AAAUSD", "BBBUSD", "CCCUSD"][sym]).unwrap(),
    )
}

fn cents(c: i64) -> Price {
    Price::new(Decimal::new(c.max(1), 2)).unwrap()
}

struct Open {
    id: u64,
    account: AccountId,
    sym: usize,
    side: Side,
    left: Decimal,
}

/// 2024-01-31T23:59:00Z: a stream of a few minutes crosses into February, so Rule 605 months
/// and time filters split it.
pub const T0_NS: i64 = 1_706_745_540_000_000_000;

/// A random journal starting at `T0_NS`: orders submitted (on four accounts), accepted or
/// rejected at once, filled in pieces (maker and taker), cancelled or expired; quotes (a few crossed),
/// trades and book deltas between them. At most `max_open` orders are open at once; events are
/// up to `max_gap_ms` apart, so with the test parameters orders end and become final.
pub fn journal(seed: u64, n: usize, max_open: usize, max_gap_ms: u64) -> Vec<Event> {
    let mut r = Rng::new(seed);
    let mut t = T0_NS;
    let mut mid = [10_000i64, 5_000, 20_000]; // cents
    let (mut next_id, mut next_fill) = (1u64, 1u64);
    let mut open: Vec<Open> = Vec::new();
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        t += (r.below(max_gap_ms + 1) * 1_000_000) as i64;
        let ts = Timestamp::from_nanos(t);
        let roll = r.below(100);
        if roll < 30 {
            let s = r.below(3) as usize;
            mid[s] += r.below(7) as i64 - 3;
            let half = 1 + r.below(3) as i64;
            let (mut bid, mut ask) = (mid[s] - half, mid[s] + half);
            if r.below(40) == 0 {
                std::mem::swap(&mut bid, &mut ask); // crossed
            }
            out.push(Event::Quote(Quote {
                instrument: inst(s),
                bid: cents(bid),
                bid_size: Quantity::new(Decimal::from(1 + r.below(500))).unwrap(),
                ask: cents(ask),
                ask_size: Quantity::new(Decimal::from(1 + r.below(500))).unwrap(),
                ts,
            }));
        } else if roll < 40 {
            let s = r.below(3) as usize;
            out.push(Event::Trade(TradeTick {
                instrument: inst(s),
                price: cents(mid[s] + r.below(5) as i64 - 2),
                quantity: Quantity::new(Decimal::from(1 + r.below(300))).unwrap(),
                aggressor: [None, Some(Side::Buy), Some(Side::Sell)][r.below(3) as usize],
                trade_id: format!("t{}", r.below(1_000_000)),
                ts,
            }));
        } else if roll < 42 {
            out.push(Event::BookDelta(BookDelta {
                instrument: inst(r.below(3) as usize),
                bids: vec![BookLevel {
                    price: cents(100),
                    quantity: Quantity::new(Decimal::ONE).unwrap(),
                }],
                asks: Vec::new(),
                first_sequence: None,
                sequence: None,
                ts,
            }));
        } else if (roll < 62 && open.len() < max_open) || open.is_empty() {
            let id = next_id;
            next_id += 1;
            let account = AccountId::new(format!("acct{}", r.below(4))).unwrap();
            let s = r.below(3) as usize;
            let side = if r.below(2) == 0 {
                Side::Buy
            } else {
                Side::Sell
            };
            let qty = Decimal::from([50u64, 100, 300, 700, 2500][r.below(5) as usize]);
            let (order_type, price) = match r.below(3) {
                0 => (OrderType::Market, None),
                _ => (
                    OrderType::Limit,
                    Some(cents(mid[s] + r.below(21) as i64 - 10)),
                ),
            };
            let tif = [TimeInForce::Gtc, TimeInForce::Ioc, TimeInForce::Day][r.below(3) as usize];
            let order = Order::new(
                OrderId(id),
                ClientOrderId::new(format!("c{id}")).unwrap(),
                account.clone(),
                inst(s),
                side,
                order_type,
                tif,
                Quantity::new(qty).unwrap(),
                price,
                None,
                ts,
            )
            .unwrap();
            out.push(Event::OrderSubmitted { order });
            // The engine accepts or rejects in the same decision (same time), as the platform
            // journals it: the exporter's `order_new` carries the receipt time.
            if r.below(10) == 0 {
                out.push(Event::OrderRejected {
                    order_id: OrderId(id),
                    account,
                    code: "risk".into(),
                    message: "limit".into(),
                    ts,
                });
            } else {
                out.push(Event::OrderAccepted {
                    order_id: OrderId(id),
                    account: account.clone(),
                    ts,
                });
                open.push(Open {
                    id,
                    account,
                    sym: s,
                    side,
                    left: qty,
                });
            }
        } else {
            let i = r.below(open.len() as u64) as usize;
            let o = &mut open[i];
            let (order_id, account) = (OrderId(o.id), o.account.clone());
            match r.below(10) {
                0..=5 => {
                    let piece = if r.below(3) == 0 {
                        o.left
                    } else {
                        (o.left / Decimal::from(1 + r.below(4))).round()
                    };
                    let piece = if piece.is_zero() { o.left } else { piece };
                    o.left -= piece;
                    out.push(Event::OrderFilled(Fill {
                        fill_id: FillId(next_fill),
                        order_id,
                        account,
                        instrument: inst(o.sym),
                        side: o.side,
                        quantity: Quantity::new(piece).unwrap(),
                        price: cents(mid[o.sym] + r.below(7) as i64 - 3),
                        fee: Money::new(Decimal::new(r.below(100) as i64, 2)).unwrap(),
                        liquidity: if r.below(2) == 0 {
                            Liquidity::Maker
                        } else {
                            Liquidity::Taker
                        },
                        ts,
                    }));
                    next_fill += 1;
                    if o.left.is_zero() {
                        open.swap_remove(i);
                    }
                }
                6..=8 => {
                    out.push(Event::OrderCanceled {
                        order_id,
                        account,
                        reason: "user".into(),
                        ts,
                    });
                    open.swap_remove(i);
                }
                _ => {
                    out.push(Event::OrderExpired {
                        order_id,
                        account,
                        reason: "day".into(),
                        ts,
                    });
                    open.swap_remove(i);
                }
            }
        }
    }
    out.truncate(n);
    out
}

/// The events as the consumer's subscription delivers them (its subjects only), numbered as
/// if they were the whole journal.
pub fn deliveries(events: &[Event]) -> Vec<Delivery> {
    events
        .iter()
        .enumerate()
        .filter(|(_, e)| {
            let s = e.subject();
            s.starts_with("orders.")
                || s.starts_with("fills.")
                || s.starts_with("md.quote.")
                || s.starts_with("md.trade.")
        })
        .map(|(i, e)| Delivery {
            seq: i as u64 + 1,
            recorded_at: e.ts(),
            subject: e.subject(),
            event: e.clone(),
        })
        .collect()
}

/// Short horizons and grace, so orders in a test stream of seconds become final and leave.
pub fn params() -> Params {
    Params {
        rs_horizons_ms: vec![500, 2_000],
        rs_primary_horizon_ms: 2_000,
        late_fill_grace_ms: 1_000,
        decision_price_fallback: execq::DecisionPriceFallback::ArrivalMid,
        ..Params::default()
    }
}

/// The engine as the service ran it before: every order kept, nothing evicted.
pub fn keep_everything(events: &[Event], params: &Params) -> ExecQuality {
    let mut exporter = Exporter::new();
    let mut engine = ExecQuality::new(params.clone()).unwrap();
    for e in events {
        if let Some(r) = exporter.export(e) {
            engine.on_record(&r);
        }
    }
    engine
}

/// Every row in the store at `db`, in order-id order.
pub fn stored_rows(db: &Path) -> Vec<OrderQuality> {
    if !db.exists() {
        return Vec::new();
    }
    execution_quality::RowReader::new(db)
        .with_rows(&Default::default(), |rows| rows.collect())
        .unwrap()
}

pub fn all() -> ReportFilter {
    ReportFilter::default()
}
