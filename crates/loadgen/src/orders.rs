//! Order bodies, built once before the clock starts so the loader spends no time serializing.
//!
//! Layout: `bodies[2 * account + side]`, side 0 = buy, 1 = sell. Order `i` goes to account
//! `i % accounts` and alternates side on each visit to that account, `(i / accounts) % 2`: with
//! an even account count a global buy/sell alternation would give each account one side only
//! and walk its position (and gross exposure) away from flat.

use bytes::Bytes;
use rust_decimal::Decimal;
use serde_json::json;

use crate::LoadError;

const SIDES: [&str; 2] = ["buy", "sell"];

pub(crate) fn account_name(account: usize) -> String {
    format!("bench-{account}")
}

/// The body of order `i`.
pub(crate) fn body_for(bodies: &[Bytes], i: u64) -> Bytes {
    let accounts = (bodies.len() / 2) as u64;
    let account = i % accounts;
    let side = (i / accounts) % 2;
    // Both factors are below `bodies.len()`, so the index is in range and fits usize.
    bodies[(2 * account + side) as usize].clone()
}

/// IOC limits 1% away from the mid (buy below, sell above), so they pass the
/// price collar, do not cross the spread, and expire at once without filling or resting.
pub(crate) fn ioc_limit_bodies(
    symbol: &str,
    accounts: usize,
    account_suffix: &str,
    quantity: Decimal,
    mid: Decimal,
) -> Result<Vec<Bytes>, LoadError> {
    limit_bodies(
        symbol,
        accounts,
        account_suffix,
        quantity,
        mid,
        Decimal::new(1, 2),
        "ioc",
    )
}

/// Limit orders `away` (a fraction: 0.01 = 1%) from the mid, buy below and sell above, with
/// time in force `tif`, for accounts `bench-<a><account_suffix>`; laid out like every body table
/// (`[2 * account + side]`).
pub(crate) fn limit_bodies(
    symbol: &str,
    accounts: usize,
    account_suffix: &str,
    quantity: Decimal,
    mid: Decimal,
    away: Decimal,
    tif: &str,
) -> Result<Vec<Bytes>, LoadError> {
    let overflow = || LoadError::MarketData(format!("mid {mid} is out of range"));
    let price = |factor: Option<Decimal>| -> Result<Decimal, LoadError> {
        factor
            .and_then(|f| mid.checked_mul(f))
            .map(|p| p.normalize())
            .ok_or_else(overflow)
    };
    let buy = price(Decimal::ONE.checked_sub(away))?;
    let sell = price(Decimal::ONE.checked_add(away))?;
    if buy <= Decimal::ZERO {
        return Err(LoadError::InvalidOption(format!(
            "a buy {away} below the mid {mid} is not a positive price"
        )));
    }
    let mut out = Vec::with_capacity(2 * accounts);
    for a in 0..accounts {
        for (side, price) in SIDES.iter().zip([buy, sell]) {
            let body = json!({
                "account": format!("{}{account_suffix}", account_name(a)),
                "symbol": symbol,
                "side": side,
                "type": "limit",
                "time_in_force": tif,
                "quantity": quantity.normalize().to_string(),
                "price": price.to_string(),
            });
            out.push(Bytes::from(body.to_string()));
        }
    }
    Ok(out)
}

/// Small market orders; each account alternates buy and sell so its position stays near flat.
pub(crate) fn market_bodies(
    symbol: &str,
    accounts: usize,
    account_suffix: &str,
    quantity: Decimal,
) -> Vec<Bytes> {
    let mut out = Vec::with_capacity(2 * accounts);
    for a in 0..accounts {
        for side in SIDES {
            let body = json!({
                "account": format!("{}{account_suffix}", account_name(a)),
                "symbol": symbol,
                "side": side,
                "type": "market",
                "quantity": quantity.normalize().to_string(),
            });
            out.push(Bytes::from(body.to_string()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(b: &Bytes) -> serde_json::Value {
        serde_json::from_slice(b).unwrap()
    }

    #[test]
    fn ioc_limits_are_one_percent_away_and_exact() {
        let bodies = ioc_limit_bodies(
            "BTCUSDT",
            3,
            "",
            Decimal::new(1, 3),
            Decimal::new(4500012, 2),
        )
        .unwrap();
        assert_eq!(bodies.len(), 6);
        let buy = parse(&bodies[0]);
        assert_eq!(buy["account"], "bench-0");
        assert_eq!(buy["side"], "buy");
        assert_eq!(buy["time_in_force"], "ioc");
        assert_eq!(buy["quantity"], "0.001");
        // 45000.12 * 0.99 and * 1.01, exactly.
        assert_eq!(buy["price"], "44550.1188");
        let sell = parse(&bodies[5]);
        assert_eq!(sell["account"], "bench-2");
        assert_eq!(sell["side"], "sell");
        assert_eq!(sell["price"], "45450.1212");
    }

    #[test]
    fn each_account_alternates_sides_even_with_an_even_account_count() {
        let bodies = market_bodies("BTCUSDT", 2, "", Decimal::ONE);
        let seq: Vec<(String, String)> = (0..8)
            .map(|i| {
                let v = parse(&body_for(&bodies, i));
                (
                    v["account"].as_str().unwrap().to_string(),
                    v["side"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let expect = [
            ("bench-0", "buy"),
            ("bench-1", "buy"),
            ("bench-0", "sell"),
            ("bench-1", "sell"),
            ("bench-0", "buy"),
            ("bench-1", "buy"),
            ("bench-0", "sell"),
            ("bench-1", "sell"),
        ];
        for (got, want) in seq.iter().zip(expect) {
            assert_eq!((got.0.as_str(), got.1.as_str()), want);
        }
        assert_eq!(parse(&bodies[0])["type"], "market");
        assert!(parse(&bodies[0]).get("price").is_none());
    }
}
