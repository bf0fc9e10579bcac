//! Properties: positions are the sum of their fills, and a round trip that ends flat realizes
//! exactly sell notional minus buy notional, whatever the order of fills.

use model::{
    AccountId, Decimal, Fill, FillId, InstrumentId, Liquidity, Money, OrderId, Price, Quantity,
    Side, Symbol, Timestamp, Venue,
};
use positions::Positions;
use proptest::prelude::*;

fn fill(id: u64, side: Side, qty: Decimal, price: Decimal, fee: Decimal) -> Fill {
    Fill {
        fill_id: FillId(id),
        order_id: OrderId(id),
        account: AccountId::new("a").unwrap(),
        instrument: InstrumentId::new(Venue::new("sim").unwrap(), Symbol::new("X").unwrap()),
        side,
        quantity: Quantity::new(qty).unwrap(),
        price: Price::new(price).unwrap(),
        fee: Money::new(fee).unwrap(),
        liquidity: Liquidity::Taker,
        ts: Timestamp::from_secs(id as i64 * 3_600),
    }
}

/// (buy?, quantity in thousandths, price in cents, fee in hundredths of a cent)
fn raw_fills() -> impl Strategy<Value = Vec<(bool, u32, u32, i32)>> {
    prop::collection::vec(
        (any::<bool>(), 1u32..5_000, 1u32..2_000_000, -100i32..500),
        1..40,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn flat_round_trips_realize_sells_minus_buys_exactly(raw in raw_fills(), close_cents in 1u32..2_000_000) {
        let mut p = Positions::new();
        let (mut buys, mut sells, mut net, mut fees) =
            (Decimal::ZERO, Decimal::ZERO, Decimal::ZERO, Decimal::ZERO);
        let mut id = 0;
        let mut fills = Vec::new();
        for (buy, q, c, f) in raw {
            let (side, qty, price, fee) =
                (if buy { Side::Buy } else { Side::Sell }, Decimal::new(q.into(), 3), Decimal::new(c.into(), 2), Decimal::new(f.into(), 4));
            id += 1;
            fills.push(fill(id, side, qty, price, fee));
        }
        // Flatten with one last fill.
        let mut pre = Decimal::ZERO;
        for f in &fills {
            pre += f.quantity.get() * Decimal::from(f.side.sign());
        }
        if !pre.is_zero() {
            let side = if pre > Decimal::ZERO { Side::Sell } else { Side::Buy };
            fills.push(fill(id + 1, side, pre.abs(), Decimal::new(close_cents.into(), 2), Decimal::ZERO));
        }
        for f in &fills {
            prop_assert!(p.apply_fill(f).unwrap());
            let notional = f.quantity.get() * f.price.get();
            match f.side {
                Side::Buy => buys += notional,
                Side::Sell => sells += notional,
            }
            net += f.quantity.get() * Decimal::from(f.side.sign());
            fees += f.fee.get();
            let pos = p.all().next().unwrap();
            // Positions equal the sum of fills at every step.
            prop_assert_eq!(pos.net_qty, net);
            prop_assert_eq!(pos.fees, fees);
            prop_assert_eq!(pos.avg_price.is_none(), net.is_zero());
        }
        let pos = p.all().next().unwrap();
        prop_assert!(pos.is_flat());
        prop_assert_eq!(pos.cost_basis, Decimal::ZERO);
        prop_assert_eq!(pos.unrealized_pnl, Decimal::ZERO);
        prop_assert_eq!(pos.realized_pnl, sells - buys);
        prop_assert_eq!(pos.net_realized_pnl(), sells - buys - fees);

        // Replaying the same fills (a restart that re-reads the journal) changes nothing.
        let before = p.clone();
        for f in &fills {
            prop_assert!(!p.apply_fill(f).unwrap());
        }
        prop_assert_eq!(p, before);
    }

    #[test]
    fn unrealized_is_mark_minus_cost_for_open_positions(raw in raw_fills(), mark_cents in 1u32..2_000_000) {
        let mut p = Positions::new();
        let mut net = Decimal::ZERO;
        let mut cash = Decimal::ZERO; // buys pay, sells receive
        for (i, (buy, q, c, _)) in raw.into_iter().enumerate() {
            let side = if buy { Side::Buy } else { Side::Sell };
            let (qty, price) = (Decimal::new(q.into(), 3), Decimal::new(c.into(), 2));
            p.apply_fill(&fill(i as u64 + 1, side, qty, price, Decimal::ZERO)).unwrap();
            net += qty * Decimal::from(side.sign());
            cash -= qty * price * Decimal::from(side.sign());
        }
        let mark = Decimal::new(mark_cents.into(), 2);
        let pos = p.all().next().unwrap().clone();
        p.mark(&pos.instrument, mark, Timestamp::from_secs(1_000_000)).unwrap();
        let pos = p.all().next().unwrap();
        // Total P&L marked to market equals cash flow plus the open quantity at the mark.
        prop_assert_eq!(pos.realized_pnl + pos.unrealized_pnl, cash + net * mark);
        prop_assert_eq!(pos.unrealized_pnl, mark * pos.net_qty - pos.cost_basis);
    }
}
