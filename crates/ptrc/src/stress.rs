//! Stress tests: what today's positions would gain or lose under a historical episode or a
//! user-defined shock.
//!
//! - **Historical** ([`scenarios`]): each built-in is a date range. Every position's return over
//!   the range is `close(end) / close(start) − 1`, taking the last close on or before each date
//!   (so a weekend start uses the Friday close), and is applied to today's value. A scenario runs
//!   only when the history of *every* held symbol covers it (first close on or before `start`,
//!   last close on or after `end`); otherwise the error says which symbols fall short and which
//!   built-ins the history does cover. A custom range works the same way.
//! - **Shocks**: `SYMBOL=-20%` per symbol or `class:crypto=-30%` per asset class (classes come
//!   from the scenario's `asset_classes` map). A symbol shock overrides its class shock; an
//!   unshocked position has zero impact and is still listed.
//!
//! Values are qty × the symbol's latest close; P&L = value × shock (exact Decimal arithmetic,
//! rounded to cents at the end; the percentage shown for a historical return is rounded to 4
//! places but the P&L uses the exact ratio).

use std::collections::BTreeMap;
use std::fmt;
use std::fmt::Write as _;
use std::str::FromStr;

use chrono::NaiveDate;
use model::Decimal;
use model::text::csv_field;
use serde::{Deserialize, Serialize};

use crate::PtrcError;
use crate::input::PriceHistory;
use crate::risk::report::{STYLE, esc};

/// A built-in historical scenario.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScenarioInfo {
    pub name: String,
    pub description: String,
    pub start: NaiveDate,
    pub end: NaiveDate,
}

/// (year, month, day).
type Ymd = (i32, u32, u32);

const BUILT_INS: &[(&str, &str, Ymd, Ymd)] = &[
    (
        "dotcom_2000",
        "Dot-com bust: S&P 500 peak (2000-03-24) to trough (2002-10-09)",
        (2000, 3, 24),
        (2002, 10, 9),
    ),
    (
        "sept11_2001",
        "11 September 2001: last close before (09-10) to the post-reopening low (09-21)",
        (2001, 9, 10),
        (2001, 9, 21),
    ),
    (
        "gfc_2008",
        "Global financial crisis: Lehman weekend (2008-09-12) to the November low (2008-11-20)",
        (2008, 9, 12),
        (2008, 11, 20),
    ),
    (
        "flash_crash_2010",
        "Flash crash: 2010-05-05 close to 2010-05-06 close",
        (2010, 5, 5),
        (2010, 5, 6),
    ),
    (
        "us_downgrade_2011",
        "US debt-ceiling stand-off and S&P downgrade: 2011-07-22 to 2011-08-08",
        (2011, 7, 22),
        (2011, 8, 8),
    ),
    (
        "taper_tantrum_2013",
        "Taper tantrum: 2013-05-22 to 2013-06-24",
        (2013, 5, 22),
        (2013, 6, 24),
    ),
    (
        "china_deval_2015",
        "Yuan devaluation sell-off: 2015-08-10 to 2015-08-25",
        (2015, 8, 10),
        (2015, 8, 25),
    ),
    (
        "volmageddon_2018",
        "Short-volatility blow-up: 2018-01-26 to 2018-02-08",
        (2018, 1, 26),
        (2018, 2, 8),
    ),
    (
        "crypto_winter_2018",
        "Crypto winter: bitcoin peak (2017-12-17) to trough (2018-12-15)",
        (2017, 12, 17),
        (2018, 12, 15),
    ),
    (
        "covid_crash_2020",
        "COVID-19 crash: S&P 500 peak (2020-02-19) to trough (2020-03-23)",
        (2020, 2, 19),
        (2020, 3, 23),
    ),
    (
        "crypto_may_2021",
        "Crypto sell-off of May 2021: 2021-05-09 to 2021-05-23",
        (2021, 5, 9),
        (2021, 5, 23),
    ),
    (
        "rate_shock_2022",
        "2022 rate shock: S&P 500 peak (2022-01-03) to the October low (2022-10-12)",
        (2022, 1, 3),
        (2022, 10, 12),
    ),
];

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    // The table above holds only valid dates; the fallback keeps this total anyway.
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or(NaiveDate::MIN)
}

/// The built-in historical scenarios, oldest first.
pub fn scenarios() -> Vec<ScenarioInfo> {
    BUILT_INS
        .iter()
        .map(|(name, desc, s, e)| ScenarioInfo {
            name: (*name).to_string(),
            description: (*desc).to_string(),
            start: date(s.0, s.1, s.2),
            end: date(e.0, e.1, e.2),
        })
        .collect()
}

/// What a shock applies to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum ShockTarget {
    Symbol(String),
    Class(String),
}

/// A percentage move: `AAPL=-20%` or `class:crypto=-30%` (the `%` is optional).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Shock {
    pub target: ShockTarget,
    /// In percent: −20 means the price falls by a fifth.
    pub pct: Decimal,
}

impl FromStr for Shock {
    type Err = PtrcError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| {
            PtrcError::Invalid(format!(
                "bad shock {s:?}: {why} (expected SYMBOL=-20% or class:NAME=-30%)"
            ))
        };
        let (lhs, rhs) = s.split_once('=').ok_or_else(|| bad("no '='"))?;
        let lhs = lhs.trim();
        let num = rhs.trim().trim_end_matches('%').trim();
        let pct: Decimal = num.parse().map_err(|_| bad("not a percentage"))?;
        if pct < Decimal::from(-100) {
            return Err(bad("a price cannot fall by more than 100%"));
        }
        let target = match lhs.split_once(':') {
            Some((k, class))
                if k.trim().eq_ignore_ascii_case("class") && !class.trim().is_empty() =>
            {
                ShockTarget::Class(class.trim().to_string())
            }
            Some(_) => return Err(bad("only the prefix 'class:' is known")),
            None if !lhs.is_empty() => ShockTarget::Symbol(lhs.to_string()),
            None => return Err(bad("no symbol")),
        };
        Ok(Shock { target, pct })
    }
}

impl fmt::Display for Shock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            ShockTarget::Symbol(s) => write!(f, "{s}={}%", self.pct),
            ShockTarget::Class(c) => write!(f, "class:{c}={}%", self.pct),
        }
    }
}

impl TryFrom<String> for Shock {
    type Error = PtrcError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Shock> for String {
    fn from(s: Shock) -> String {
        s.to_string()
    }
}

/// A stress scenario. JSON: `{"kind":"historical","name":"covid_crash_2020"}`,
/// `{"kind":"range","start":"2020-02-19","end":"2020-03-23"}` or
/// `{"kind":"shocks","shocks":["AAPL=-20%","class:crypto=-30%"],"asset_classes":{"BTC":"crypto"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Scenario {
    /// A built-in from [`scenarios`], by name.
    Historical { name: String },
    /// A custom historical window.
    Range { start: NaiveDate, end: NaiveDate },
    /// User shocks.
    Shocks {
        shocks: Vec<Shock>,
        #[serde(default)]
        asset_classes: BTreeMap<String, String>,
    },
}

impl Scenario {
    /// Parse `--shock` arguments (`AAPL=-20%`, `class:crypto=-30%`).
    pub fn from_shocks<S: AsRef<str>>(
        shocks: &[S],
        asset_classes: BTreeMap<String, String>,
    ) -> Result<Scenario, PtrcError> {
        Ok(Scenario::Shocks {
            shocks: shocks
                .iter()
                .map(|s| s.as_ref().parse())
                .collect::<Result<_, _>>()?,
            asset_classes,
        })
    }
}

/// One position under the scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StressPosition {
    pub symbol: String,
    pub qty: Decimal,
    /// Latest close.
    pub price: Decimal,
    pub price_date: NaiveDate,
    /// qty × price, cents.
    pub value: Decimal,
    /// Price move applied, in percent (historical: rounded to 4 places).
    pub shock_pct: Decimal,
    /// value × shock, cents (negative = loss).
    pub pnl: Decimal,
    /// Where the shock came from: `symbol`, `class:<name>`, `history` or `none`.
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StressReport {
    pub scenario: String,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<NaiveDate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<NaiveDate>,
    pub positions: Vec<StressPosition>,
    /// Σ values, cents.
    pub total_value: Decimal,
    /// Σ position P&L, cents (the sum of the rounded rows).
    pub total_pnl: Decimal,
    /// total_pnl / |total_value| in percent (4 places); absent when the net value is zero.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_pnl_pct: Option<Decimal>,
    pub notes: Vec<String>,
}

use crate::risk::{beyond_range, round_cents as cents};

/// Last close on or before `d`.
fn close_on_or_before(s: &[(NaiveDate, Decimal)], d: NaiveDate) -> Option<Decimal> {
    let k = s.partition_point(|(x, _)| *x <= d);
    (k > 0).then(|| s[k - 1].1)
}

fn covers(s: &[(NaiveDate, Decimal)], start: NaiveDate, end: NaiveDate) -> bool {
    matches!((s.first(), s.last()), (Some(f), Some(l)) if f.0 <= start && l.0 >= end)
}

/// Apply `scenario` to `positions` (signed quantities; zero quantities are skipped).
pub fn stress(
    positions: &BTreeMap<String, Decimal>,
    prices: &PriceHistory,
    scenario: &Scenario,
) -> Result<StressReport, PtrcError> {
    let mut held = Vec::new();
    for (sym, qty) in positions.iter().filter(|(_, q)| !q.is_zero()) {
        let s = prices
            .get(sym)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| PtrcError::Invalid(format!("no price history for {sym}")))?;
        held.push((sym, *qty, s.as_slice()));
    }
    if held.is_empty() {
        return Err(PtrcError::Invalid(
            "no positions with a non-zero quantity".into(),
        ));
    }
    let mut notes = Vec::new();
    // (name, description, range, per-position (pct exact, source)).
    // Per position: the exact return to apply and where it came from.
    type Moves = Vec<(Decimal, String)>;
    let (name, description, range, moves): (String, String, Option<(NaiveDate, NaiveDate)>, Moves) =
        match scenario {
            Scenario::Historical { name } => {
                let info = scenarios()
                    .into_iter()
                    .find(|i| i.name == *name)
                    .ok_or_else(|| {
                        PtrcError::Invalid(format!(
                            "unknown scenario {name:?}; built-ins: {}",
                            scenarios()
                                .iter()
                                .map(|i| i.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ))
                    })?;
                let moves = historical_moves(&held, &info.name, info.start, info.end)?;
                (
                    info.name,
                    info.description,
                    Some((info.start, info.end)),
                    moves,
                )
            }
            Scenario::Range { start, end } => {
                if end <= start {
                    return Err(PtrcError::Invalid(format!(
                        "scenario range end {end} must be after its start {start}"
                    )));
                }
                let name = format!("range_{start}_{end}");
                let moves = historical_moves(&held, &name, *start, *end)?;
                (
                    name,
                    format!("Historical window {start} to {end}"),
                    Some((*start, *end)),
                    moves,
                )
            }
            Scenario::Shocks {
                shocks,
                asset_classes,
            } => {
                let mut by_symbol = BTreeMap::new();
                let mut by_class = BTreeMap::new();
                for s in shocks {
                    let dup = match &s.target {
                        ShockTarget::Symbol(x) => by_symbol.insert(x.clone(), s.pct).is_some(),
                        ShockTarget::Class(c) => by_class.insert(c.clone(), s.pct).is_some(),
                    };
                    if dup {
                        return Err(PtrcError::Invalid(format!("shock {s} is given twice")));
                    }
                }
                if shocks.is_empty() {
                    return Err(PtrcError::Invalid("no shocks given".into()));
                }
                for x in by_symbol.keys() {
                    if !held.iter().any(|(s, _, _)| *s == x) {
                        notes.push(format!("shock for {x} matches no position"));
                    }
                }
                for c in by_class.keys() {
                    if !held
                        .iter()
                        .any(|(s, _, _)| asset_classes.get(*s) == Some(c))
                    {
                        notes.push(format!("class shock {c} matches no position"));
                    }
                }
                let moves = held
                    .iter()
                    .map(|(sym, _, _)| {
                        if let Some(p) = by_symbol.get(*sym) {
                            (*p / Decimal::ONE_HUNDRED, "symbol".to_string())
                        } else if let Some((c, p)) = asset_classes
                            .get(*sym)
                            .and_then(|c| by_class.get(c).map(|p| (c, p)))
                        {
                            (*p / Decimal::ONE_HUNDRED, format!("class:{c}"))
                        } else {
                            (Decimal::ZERO, "none".to_string())
                        }
                    })
                    .collect();
                let label = shocks
                    .iter()
                    .map(Shock::to_string)
                    .collect::<Vec<_>>()
                    .join(" ");
                (
                    "shocks".to_string(),
                    format!("User shocks: {label}"),
                    None,
                    moves,
                )
            }
        };
    // Positions and closes come from outside: every product and sum is checked, and one beyond
    // the exact decimal range is an error naming the symbol, never a panic.
    let mut rows = Vec::with_capacity(held.len());
    let (mut total_value, mut total_pnl) = (Decimal::ZERO, Decimal::ZERO);
    for ((sym, qty, s), (ret, source)) in held.iter().zip(moves) {
        let (price_date, price) = s[s.len() - 1];
        let value = qty
            .checked_mul(price)
            .ok_or_else(|| beyond_range(&format!("the value of the {sym} position")))?;
        let pnl = cents(
            value
                .checked_mul(ret)
                .ok_or_else(|| beyond_range(&format!("the P&L of the {sym} position")))?,
        );
        let shock_pct = ret
            .checked_mul(Decimal::ONE_HUNDRED)
            .ok_or_else(|| beyond_range(&format!("the move of {sym}")))?;
        let value = cents(value);
        total_value = total_value
            .checked_add(value)
            .ok_or_else(|| beyond_range("the total value"))?;
        total_pnl = total_pnl
            .checked_add(pnl)
            .ok_or_else(|| beyond_range("the total P&L"))?;
        rows.push(StressPosition {
            symbol: (*sym).clone(),
            qty: *qty,
            price,
            price_date,
            value,
            shock_pct: shock_pct.round_dp(4).normalize(),
            pnl,
            source,
        });
    }
    let total_pnl_pct = match total_value.is_zero() {
        true => None,
        false => Some(
            total_pnl
                .checked_div(total_value.abs())
                .and_then(|r| r.checked_mul(Decimal::ONE_HUNDRED))
                .ok_or_else(|| beyond_range("the total P&L in percent"))?
                .round_dp(4),
        ),
    };
    Ok(StressReport {
        scenario: name,
        description,
        start: range.map(|r| r.0),
        end: range.map(|r| r.1),
        positions: rows,
        total_value,
        total_pnl,
        total_pnl_pct,
        notes,
    })
}

type Held<'a> = (&'a String, Decimal, &'a [(NaiveDate, Decimal)]);

fn historical_moves(
    held: &[Held<'_>],
    name: &str,
    start: NaiveDate,
    end: NaiveDate,
) -> Result<Vec<(Decimal, String)>, PtrcError> {
    let short: Vec<String> = held
        .iter()
        .filter(|(_, _, s)| !covers(s, start, end))
        .map(|(sym, _, s)| format!("{sym} ({} to {})", s[0].0, s[s.len() - 1].0))
        .collect();
    if !short.is_empty() {
        let covered: Vec<String> = scenarios()
            .into_iter()
            .filter(|i| held.iter().all(|(_, _, s)| covers(s, i.start, i.end)))
            .map(|i| i.name)
            .collect();
        return Err(PtrcError::Invalid(format!(
            "scenario {name} ({start} to {end}) is not covered by the price history of {}; \
             built-in scenarios covered by all positions: {}",
            short.join(", "),
            if covered.is_empty() {
                "none".to_string()
            } else {
                covered.join(", ")
            }
        )));
    }
    held.iter()
        .map(|(sym, _, s)| {
            let p0 = close_on_or_before(s, start);
            let p1 = close_on_or_before(s, end);
            match (p0, p1) {
                (Some(p0), Some(p1)) => p1
                    .checked_div(p0)
                    .map(|r| (r - Decimal::ONE, "history".to_string()))
                    .ok_or_else(|| {
                        PtrcError::Invalid(format!("cannot divide the closes of {sym}"))
                    }),
                _ => Err(PtrcError::Invalid(format!(
                    "no close of {sym} on or before {start}"
                ))),
            }
        })
        .collect()
}

/// One row per position plus a `TOTAL` row.
pub fn stress_to_csv(r: &StressReport) -> String {
    let mut out = String::from("scenario,symbol,qty,price,value,shock_pct,pnl,source\n");
    let sc = csv_field(&r.scenario);
    for p in &r.positions {
        let _ = writeln!(
            out,
            "{sc},{},{},{},{},{},{},{}",
            csv_field(&p.symbol),
            p.qty,
            p.price,
            p.value,
            p.shock_pct,
            p.pnl,
            csv_field(&p.source)
        );
    }
    let _ = writeln!(
        out,
        "{sc},TOTAL,,,{},{},{},",
        r.total_value,
        r.total_pnl_pct.map(|p| p.to_string()).unwrap_or_default(),
        r.total_pnl
    );
    out
}

/// A self-contained HTML page (no JavaScript): summary and the per-position table, with an
/// inline SVG bar per position's P&L.
pub fn stress_to_html(r: &StressReport) -> String {
    let mut s = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Stress {}</title>\
         <style>{STYLE}</style></head><body><h1>Stress test: {}</h1><p>{}</p>",
        esc(&r.scenario),
        esc(&r.scenario),
        esc(&r.description)
    );
    let _ = write!(
        s,
        "<table><tr><th>Total value</th><td>{}</td></tr><tr><th>Total P&amp;L</th>\
         <td class=\"{}\">{}</td></tr>{}</table>",
        r.total_value,
        if r.total_pnl.is_sign_negative() {
            "neg"
        } else {
            ""
        },
        r.total_pnl,
        r.total_pnl_pct
            .map(|p| format!("<tr><th>Total P&amp;L %</th><td>{p}</td></tr>"))
            .unwrap_or_default()
    );
    let max = r
        .positions
        .iter()
        .map(|p| p.pnl.abs())
        .max()
        .filter(|m| !m.is_zero())
        .unwrap_or(Decimal::ONE);
    s.push_str(
        "<h2>Positions</h2><table><tr><th>Symbol</th><th>Qty</th><th>Price</th><th>Value</th>\
         <th>Shock %</th><th>P&amp;L</th><th>Source</th><th></th></tr>",
    );
    for p in &r.positions {
        // Bars from a centre line: losses left in red, gains right in green.
        let frac = rust_decimal::prelude::ToPrimitive::to_f64(&(p.pnl.abs() / max)).unwrap_or(0.0);
        let wbar = 80.0 * frac;
        let (x, color) = if p.pnl.is_sign_negative() {
            (80.0 - wbar, "#d62728")
        } else {
            (80.0, "#2ca02c")
        };
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td>\
             <td>{}</td><td><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"160\" height=\"14\">\
             <rect x=\"{x:.1}\" y=\"2\" width=\"{wbar:.1}\" height=\"10\" fill=\"{color}\"/>\
             <line x1=\"80\" y1=\"0\" x2=\"80\" y2=\"14\" stroke=\"#333\"/></svg></td></tr>",
            esc(&p.symbol),
            p.qty,
            p.price,
            p.value,
            p.shock_pct,
            if p.pnl.is_sign_negative() { "neg" } else { "" },
            p.pnl,
            esc(&p.source)
        );
    }
    s.push_str("</table>");
    for n in &r.notes {
        let _ = write!(s, "<p class=\"note\">{}</p>", esc(n));
    }
    s.push_str("</body></html>\n");
    s
}

#[cfg(test)]
mod tests;
