//! The deterministic event stream of the execq benchmark, shared with `examples/phases.rs`:
//! per order 4 quotes, the `order_new`, 2 fills with their tape prints and a cancel = 10 records.

use interchange::{Kind, Record};
use model::{Decimal, Liquidity, Side, Timestamp};

pub fn events(orders: usize) -> Vec<Record> {
    let syms: Vec<String> = (0..50).map(|i| format!("S{i:02}")).collect();
    let mut mids: Vec<i64> = (0..50).map(|i| 5_000 + 100 * i).collect();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut rnd = move |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    let mut t = 1_704_205_800_000_000_000i64;
    let mut out = Vec::with_capacity(orders * 10);
    let tick = |t: &mut i64| {
        *t += 1_000_000; // 1 ms per record: 1 M records span ~17 minutes
        Timestamp::from_nanos(*t)
    };
    let cents = |c: i64| Decimal::new(c, 2);
    for i in 0..orders {
        let s = (rnd(50)) as usize;
        let sym = syms[s].as_str();
        for _ in 0..4 {
            let qs = (rnd(50)) as usize;
            mids[qs] += rnd(5) as i64 - 2;
            let mut q = Record::new(tick(&mut t), Kind::Quote, syms[qs].as_str());
            q.bid = Some(cents(mids[qs] - 1));
            q.ask = Some(cents(mids[qs] + 1));
            q.bid_size = Some(Decimal::from(100));
            q.ask_size = Some(Decimal::from(100));
            out.push(q);
        }
        let id = format!("o{i}");
        let side = if i % 2 == 0 { Side::Buy } else { Side::Sell };
        let mut o = Record::new(tick(&mut t), Kind::OrderNew, sym);
        o.account = Some(format!("a{}", i % 20));
        o.order_id = Some(id.clone());
        o.side = Some(side);
        o.qty = Some(Decimal::from(300));
        if i % 3 == 0 {
            o.order_type = Some("market".into());
        } else {
            o.order_type = Some("limit".into());
            o.price = Some(cents(mids[s] + rnd(5) as i64 - 2));
        }
        o.tif = Some("day".into());
        o.decision_price = Some(cents(mids[s]));
        out.push(o);
        for k in 0..2 {
            let px = cents(mids[s] + rnd(3) as i64 - 1);
            let mut f = Record::new(tick(&mut t), Kind::Fill, sym);
            f.order_id = Some(id.clone());
            f.side = Some(side);
            f.qty = Some(Decimal::from(100));
            f.price = Some(px);
            f.fee = Some(Decimal::new(5, 2));
            f.liquidity = Some(if k == 0 {
                Liquidity::Taker
            } else {
                Liquidity::Maker
            });
            f.fill_id = Some(format!("{id}-{k}"));
            let ts = f.ts;
            out.push(f);
            let mut tr = Record::new(ts, Kind::Trade, sym);
            tr.qty = Some(Decimal::from(100));
            tr.price = Some(px);
            out.push(tr);
        }
        let mut c = Record::new(tick(&mut t), Kind::OrderCancel, sym);
        c.order_id = Some(id);
        c.qty = Some(Decimal::from(100));
        out.push(c);
    }
    out
}
