use model::{Decimal, Liquidity, Money};
use serde::{Deserialize, Serialize};

use crate::VenueError;

const BPS: Decimal = Decimal::from_parts(10_000, 0, 0, false, 0);

/// Maker and taker fee rates in basis points of notional. Negative rates are rebates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct FeeSchedule {
    pub maker_bps: Decimal,
    pub taker_bps: Decimal,
}

impl FeeSchedule {
    pub fn new(maker_bps: Decimal, taker_bps: Decimal) -> Self {
        FeeSchedule {
            maker_bps,
            taker_bps,
        }
    }

    pub fn rate_bps(&self, liquidity: Liquidity) -> Decimal {
        match liquidity {
            Liquidity::Maker => self.maker_bps,
            Liquidity::Taker => self.taker_bps,
        }
    }

    /// `price x quantity x bps / 10_000`, exact. `None` when the result does not fit a
    /// `Decimal` / `Money` (only for absurd magnitudes), so callers never panic.
    pub fn fee(&self, liquidity: Liquidity, price: Decimal, quantity: Decimal) -> Option<Money> {
        let fee = price
            .checked_mul(quantity)?
            .checked_mul(self.rate_bps(liquidity))?
            .checked_div(BPS)?;
        Money::new(fee).ok()
    }
}

/// Configuration of the paper venue. All fields have defaults (zero fees, no slippage, no
/// latency, fill ids from 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct VenueConfig {
    pub fees: FeeSchedule,
    /// Extra price move, in bps, for the part of a GTC/DAY market order beyond the displayed
    /// depth: it fills at the worst displayed level moved this far against the taker.
    /// Must be in `0..10_000`.
    pub market_slippage_bps: Decimal,
    /// Fixed delay in nanoseconds added to the events of an order's arrival. Must be >= 0.
    pub latency_ns: i64,
    /// The first fill id a fresh venue hands out. Must be >= 1.
    pub first_fill_id: u64,
}

impl Default for VenueConfig {
    fn default() -> Self {
        VenueConfig {
            fees: FeeSchedule::default(),
            market_slippage_bps: Decimal::ZERO,
            latency_ns: 0,
            first_fill_id: 1,
        }
    }
}

impl VenueConfig {
    pub fn validate(&self) -> Result<(), VenueError> {
        if self.market_slippage_bps < Decimal::ZERO || self.market_slippage_bps >= BPS {
            return Err(VenueError::InvalidConfig {
                field: "market_slippage_bps",
                reason: "must be at least 0 and below 10000",
            });
        }
        if self.latency_ns < 0 {
            return Err(VenueError::InvalidConfig {
                field: "latency_ns",
                reason: "must not be negative",
            });
        }
        if self.first_fill_id == 0 {
            return Err(VenueError::InvalidConfig {
                field: "first_fill_id",
                reason: "must be at least 1",
            });
        }
        // A fee rate beyond +-100% of notional is a typo, not a fee.
        for (field, v) in [
            ("fees.maker_bps", self.fees.maker_bps),
            ("fees.taker_bps", self.fees.taker_bps),
        ] {
            if v.abs() > BPS {
                return Err(VenueError::InvalidConfig {
                    field,
                    reason: "must be within -10000..=10000",
                });
            }
        }
        Ok(())
    }

    /// Price for the part of a market order beyond the displayed depth.
    pub(crate) fn slipped(&self, worst: Decimal, taker_buys: bool) -> Option<Decimal> {
        let factor = self.market_slippage_bps.checked_div(BPS)?;
        let mult = if taker_buys {
            Decimal::ONE.checked_add(factor)?
        } else {
            Decimal::ONE.checked_sub(factor)?
        };
        worst.checked_mul(mult)
    }
}
