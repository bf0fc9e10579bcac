//! Deterministic random event streams (orders, cancels, fills, quotes, trades) for the
//! streaming-vs-batch property test and the benchmark. Shared via `#[path]`.
#![allow(dead_code)]

use interchange::{Kind, Record};
use model::{Decimal, Liquidity, Side, Timestamp};

pub struct GenCfg {
    pub accounts: usize,
    /// Accounts per owner (account i belongs to owner i / accounts_per_owner).
    pub accounts_per_owner: usize,
    pub symbols: usize,
    /// Time step between records, uniform in [0, step_us_max] microseconds.
    pub step_us_max: u64,
    /// Price levels around 100.00 (tick 0.01).
    pub levels: i64,
}

/// The benchmark's stream (`benches/surveillance.rs`, `examples/gen_events.rs`,
/// `examples/scan_cpu.rs`): ~5,000 events/s of record time (mean step 200 us), 500 accounts,
/// 100 owners, 50 symbols; seed 42.
pub fn bench_cfg() -> GenCfg {
    GenCfg {
        accounts: 500,
        accounts_per_owner: 5,
        symbols: 50,
        step_us_max: 400,
        levels: 5,
    }
}

/// The benchmark's parameters: the defaults, two related-owner groups and a daily close at
/// 14:32 UTC for every symbol (all five rules on).
pub fn bench_params() -> surveillance::Params {
    surveillance::Params {
        related_owner_groups: vec![
            vec!["O0".into(), "O1".into()],
            vec!["O7".into(), "O8".into()],
        ],
        mtc_close: [("*".into(), "14:32".into())].into(),
        ..surveillance::Params::default()
    }
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*: fast and deterministic; statistical quality is not the point here.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
}

struct Live {
    acct: usize,
    sym: usize,
    side: Side,
    qty: i64,
    left: i64,
    price: i64,
    id: u64,
}

pub fn events(seed: u64, n: usize, cfg: &GenCfg) -> Vec<Record> {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut out = Vec::with_capacity(n);
    let mut live: Vec<Live> = Vec::new();
    let mut now_us: i64 = 1_704_205_800_000_000; // 2024-01-02T14:30:00Z
    let mut next_id: u64 = 1;
    let px = |ticks: i64| Decimal::new(10_000 + ticks, 2);
    let mut mid: Vec<i64> = vec![0; cfg.symbols.max(1)];
    while out.len() < n {
        now_us += rng.below(cfg.step_us_max + 1) as i64;
        let ts = Timestamp::from_micros(now_us);
        let sym = rng.below(cfg.symbols as u64) as usize;
        let sname = format!("S{sym}");
        let roll = rng.below(100);
        if roll < 15 {
            // quote: a random walk of the mid
            mid[sym] = (mid[sym] + rng.below(3) as i64 - 1).clamp(-cfg.levels, cfg.levels);
            let mut r = Record::new(ts, Kind::Quote, sname);
            r.bid = Some(px(mid[sym] - 1));
            r.ask = Some(px(mid[sym] + 1));
            r.bid_size = Some(Decimal::from(100 + rng.below(400) as i64));
            r.ask_size = Some(Decimal::from(100 + rng.below(400) as i64));
            out.push(r);
        } else if roll < 55 || live.is_empty() {
            let acct = rng.below(cfg.accounts as u64) as usize;
            let side = if rng.below(2) == 0 {
                Side::Buy
            } else {
                Side::Sell
            };
            let qty = if rng.below(10) == 0 {
                500 + rng.below(1500) as i64
            } else {
                1 + rng.below(200) as i64
            };
            let off = rng.below(cfg.levels as u64 + 1) as i64;
            let price = match side {
                Side::Buy => mid[sym] - 1 - off,
                Side::Sell => mid[sym] + 1 + off,
            };
            let id = next_id;
            next_id += 1;
            let mut r = Record::new(ts, Kind::OrderNew, sname);
            r.account = Some(format!("A{acct}"));
            r.owner = Some(format!("O{}", acct / cfg.accounts_per_owner.max(1)));
            r.side = Some(side);
            r.qty = Some(Decimal::from(qty));
            r.price = Some(px(price));
            r.order_id = Some(id.to_string());
            r.order_type = Some("limit".into());
            out.push(r);
            live.push(Live {
                acct,
                sym,
                side,
                qty,
                left: qty,
                price,
                id,
            });
            // Bound the live book like a real one: the oldest orders get cancelled.
            if live.len() > 4 * cfg.accounts.max(1) {
                let o = live.remove(0);
                out.push(cancel_rec(ts, &o));
            }
        } else if roll < 82 {
            let i = rng.below(live.len() as u64) as usize;
            let o = live.swap_remove(i);
            let mut r = cancel_rec(ts, &o);
            r.symbol = format!("S{}", o.sym);
            out.push(r);
        } else if roll < 97 {
            let i = rng.below(live.len() as u64) as usize;
            let q = 1 + rng.below(live[i].left as u64) as i64;
            let o = &mut live[i];
            o.left -= q;
            let tid = format!("T{}", next_id);
            next_id += 1;
            let mut r = Record::new(ts, Kind::Fill, format!("S{}", o.sym));
            r.account = Some(format!("A{}", o.acct));
            r.side = Some(o.side);
            r.qty = Some(Decimal::from(q));
            r.price = Some(px(o.price));
            r.order_id = Some(o.id.to_string());
            r.fill_id = Some(format!("F{}", next_id));
            r.trade_id = Some(tid.clone());
            r.liquidity = Some(if rng.below(2) == 0 {
                Liquidity::Taker
            } else {
                Liquidity::Maker
            });
            let tape = {
                let mut t = Record::new(ts, Kind::Trade, format!("S{}", o.sym));
                t.price = r.price;
                t.qty = r.qty;
                t.trade_id = Some(tid);
                t
            };
            let done = o.left == 0;
            out.push(r);
            out.push(tape);
            if done {
                live.swap_remove(i);
            }
        } else {
            let mut t = Record::new(ts, Kind::Trade, sname);
            t.price = Some(px(mid[sym]));
            t.qty = Some(Decimal::from(1 + rng.below(300) as i64));
            out.push(t);
        }
    }
    out.truncate(n);
    out
}

fn cancel_rec(ts: Timestamp, o: &Live) -> Record {
    let mut r = Record::new(ts, Kind::OrderCancel, format!("S{}", o.sym));
    r.account = Some(format!("A{}", o.acct));
    r.side = Some(o.side);
    r.qty = Some(Decimal::from(o.left));
    r.order_id = Some(o.id.to_string());
    r
}
