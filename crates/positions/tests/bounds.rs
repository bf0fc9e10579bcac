//! Memory bounds: 120 000 fills over 60 simulated days keep one position per (account,
//! instrument), one mark per instrument, and only today's figures, which stay exact.

use model::{
    AccountId, Decimal, Event, Fill, FillId, InstrumentId, Liquidity, Money, OrderId, Price,
    Quantity, Quote, Side, Symbol, Timestamp, Venue,
};
use positions::Positions;

struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

const ACCOUNTS: u64 = 20;
const INSTRUMENTS: u64 = 5;
const DAYS: i64 = 60;
const FILLS_PER_DAY: i64 = 2_000;

fn inst(i: u64) -> InstrumentId {
    InstrumentId::new(
        Venue::new("sim").unwrap(),
        Symbol::new(format!("SYM{i}")).unwrap(),
    )
}

#[test]
fn a_long_stream_over_many_days_keeps_positions_bounded_and_today_exact() {
    let mut p = Positions::new();
    let mut rng = Lcg(7);
    let accounts: Vec<AccountId> = (0..ACCOUNTS)
        .map(|a| AccountId::new(format!("a{a}")).unwrap())
        .collect();
    let mut cents: Vec<i64> = vec![10_000; INSTRUMENTS as usize];
    let mut fill_id = 0u64;
    let day0 = 1_704_153_600; // 2024-01-02T00:00:00Z
    let totals = |p: &Positions, a: &AccountId| {
        p.account_positions(a)
            .fold((Decimal::ZERO, Decimal::ZERO), |(r, f), pos| {
                (r + pos.realized_pnl, f + pos.fees)
            })
    };
    for day in 0..DAYS {
        let start: Vec<(Decimal, Decimal)> = accounts.iter().map(|a| totals(&p, a)).collect();
        for k in 0..FILLS_PER_DAY {
            let t = Timestamp::from_secs(day0 + day * 86_400 + k * 40);
            let i = rng.next(INSTRUMENTS);
            let c = &mut cents[i as usize];
            *c = (*c + rng.next(41) as i64 - 20).max(100);
            if k % 4 == 0 {
                p.on_event(&Event::Quote(Quote {
                    instrument: inst(i),
                    bid: Price::new(Decimal::new(*c - 1, 2)).unwrap(),
                    bid_size: Quantity::new(Decimal::ONE).unwrap(),
                    ask: Price::new(Decimal::new(*c + 1, 2)).unwrap(),
                    ask_size: Quantity::new(Decimal::ONE).unwrap(),
                    ts: t,
                }))
                .unwrap();
            }
            fill_id += 1;
            let fill = Fill {
                fill_id: FillId(fill_id),
                order_id: OrderId(fill_id),
                account: accounts[rng.next(ACCOUNTS) as usize].clone(),
                instrument: inst(i),
                side: if rng.next(2) == 0 {
                    Side::Buy
                } else {
                    Side::Sell
                },
                quantity: Quantity::new(Decimal::new(1 + rng.next(100) as i64, 2)).unwrap(),
                price: Price::new(Decimal::new(*c, 2)).unwrap(),
                fee: Money::new(Decimal::new(rng.next(50) as i64, 4)).unwrap(),
                liquidity: Liquidity::Taker,
                ts: t,
            };
            assert!(p.apply_fill(&fill).unwrap());
            let f = p.footprint();
            assert!(f.accounts as u64 <= ACCOUNTS, "{f:?}");
            assert!(f.positions as u64 <= ACCOUNTS * INSTRUMENTS, "{f:?}");
            assert!(f.marks as u64 <= INSTRUMENTS, "{f:?}");
        }
        // Today's figures are exactly the day's change of the totals: nothing older leaks in,
        // nothing of today is lost, with a single day kept per position.
        let date = Timestamp::from_secs(day0 + day * 86_400)
            .to_datetime()
            .date_naive();
        for (a, (r0, f0)) in accounts.iter().zip(start) {
            let (r1, f1) = totals(&p, a);
            let today = p.account_realized_on(a, date);
            assert_eq!(today.realized, r1 - r0, "{a} day {day}");
            assert_eq!(today.fees, f1 - f0, "{a} day {day}");
        }
    }
    let f = p.footprint();
    assert_eq!(fill_id, (DAYS * FILLS_PER_DAY) as u64);
    assert_eq!(f.positions as u64, ACCOUNTS * INSTRUMENTS);
    assert_eq!(f.marks as u64, INSTRUMENTS);
    // The snapshot is the same size whatever the history length: it has one entry per position.
    let json = serde_json::to_value(&p).unwrap();
    assert_eq!(
        json["positions"].as_array().unwrap().len() as u64,
        ACCOUNTS * INSTRUMENTS
    );
}
