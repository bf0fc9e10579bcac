//! A soak-like record stream (shared by the boundedness test and `examples/soak_memory.rs`):
//! orders arrive at a fixed rate, each with a quote update just before it; every order gets
//! exactly one fill (with its tape print) within 200 ms, and a quarter of them are only
//! partially filled and then cancelled within `MAX_LIFE_MS`. Generated lazily (a heap of
//! scheduled records), so a long stream is never all in memory.

#![allow(dead_code)] // each user takes part of it

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use interchange::{Kind, Record};
use model::{Decimal, Liquidity, Side, Timestamp};

/// 2024-01-02T14:30:00Z.
pub const SOAK_T0_NS: i64 = 1_704_205_800_000_000_000;

/// The longest an order works (receipt to its cancel).
pub const MAX_LIFE_MS: i64 = 10_000;

const SYMS: [&str; 5] = ["S0", "S1", "S2", "S3", "S4"];

struct Due {
    ts: i64,
    seq: u64,
    rec: Record,
}

impl PartialEq for Due {
    fn eq(&self, o: &Due) -> bool {
        (self.ts, self.seq) == (o.ts, o.seq)
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, o: &Due) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Due {
    fn cmp(&self, o: &Due) -> std::cmp::Ordering {
        (self.ts, self.seq).cmp(&(o.ts, o.seq))
    }
}

pub struct Soak {
    rng: u64,
    spacing_ns: i64,
    orders: u64,
    next_order: u64,
    seq: u64,
    mids: [i64; 5],
    due: BinaryHeap<Reverse<Due>>,
}

impl Soak {
    /// `rate` orders per second for `seconds` of event time.
    pub fn new(rate: u64, seconds: u64, seed: u64) -> Soak {
        Soak {
            rng: seed | 1,
            spacing_ns: 1_000_000_000 / rate.max(1) as i64,
            orders: rate * seconds,
            next_order: 0,
            seq: 0,
            mids: [10_000, 5_000, 20_000, 7_500, 12_500],
            due: BinaryHeap::new(),
        }
    }

    /// Orders the whole stream places.
    pub fn orders(&self) -> u64 {
        self.orders
    }

    fn below(&mut self, n: u64) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng % n.max(1)
    }

    fn push(&mut self, rec: Record) {
        self.seq += 1;
        self.due.push(Reverse(Due {
            ts: rec.ts.as_nanos(),
            seq: self.seq,
            rec,
        }));
    }

    /// Schedules order `i`: its quote and `order_new` now, its fill and maybe its cancel later.
    fn place(&mut self, i: u64) {
        let t = SOAK_T0_NS + i as i64 * self.spacing_ns;
        let s = (i % 5) as usize;
        let sym = SYMS[s];
        let cents = |c: i64| Decimal::new(c, 2);
        self.mids[s] += self.below(5) as i64 - 2;
        let mid = self.mids[s];
        let mut q = Record::new(Timestamp::from_nanos(t), Kind::Quote, sym);
        q.bid = Some(cents(mid - 1));
        q.ask = Some(cents(mid + 1 + (i % 3) as i64));
        self.push(q);
        let id = format!("{}", 1_000_000 + i);
        let side = if i.is_multiple_of(2) {
            Side::Buy
        } else {
            Side::Sell
        };
        let mut o = Record::new(Timestamp::from_nanos(t), Kind::OrderNew, sym);
        o.order_id = Some(id.clone());
        o.account = Some(format!("bench-{}", i % 10));
        o.side = Some(side);
        o.qty = Some(Decimal::from(300));
        if i.is_multiple_of(2) {
            o.order_type = Some("market".into());
            o.tif = Some("ioc".into());
        } else {
            o.order_type = Some("limit".into());
            o.tif = Some("gtc".into());
            o.price = Some(cents(mid + self.below(5) as i64 - 2));
        }
        self.push(o);
        let partial = self.below(4) == 0;
        let ft = t + 1 + self.below(200_000_000) as i64;
        let px = cents(mid + self.below(3) as i64 - 1);
        let mut f = Record::new(Timestamp::from_nanos(ft), Kind::Fill, sym);
        f.order_id = Some(id.clone());
        f.side = Some(side);
        f.qty = Some(Decimal::from(if partial { 100 } else { 300 }));
        f.price = Some(px);
        f.fee = Some(Decimal::new(3, 2));
        f.liquidity = Some(if i.is_multiple_of(2) {
            Liquidity::Taker
        } else {
            Liquidity::Maker
        });
        let mut tr = Record::new(Timestamp::from_nanos(ft), Kind::Trade, sym);
        tr.qty = f.qty;
        tr.price = Some(px);
        self.push(f);
        self.push(tr);
        if partial {
            let life = 200_000_000 + self.below((MAX_LIFE_MS as u64 - 200) * 1_000_000) as i64;
            let mut c = Record::new(Timestamp::from_nanos(t + life), Kind::OrderCancel, sym);
            c.order_id = Some(id);
            self.push(c);
        }
    }
}

impl Iterator for Soak {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        loop {
            let next_t = SOAK_T0_NS + self.next_order as i64 * self.spacing_ns;
            let placing = self.next_order < self.orders;
            match self.due.peek() {
                Some(Reverse(d)) if !placing || d.ts < next_t => {
                    return self.due.pop().map(|Reverse(d)| d.rec);
                }
                _ if placing => {
                    let i = self.next_order;
                    self.next_order += 1;
                    self.place(i);
                }
                _ => return None,
            }
        }
    }
}
