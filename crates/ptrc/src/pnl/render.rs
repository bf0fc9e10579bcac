//! CSV and HTML renderings of a [`PnlReport`].

use std::collections::BTreeMap;
use std::fmt::Write as _;

use model::Decimal;
use model::text::csv_field;
use rust_decimal::prelude::ToPrimitive;

use super::{AccountPnl, DailyPnl, PnlReport, PnlTotals};

/// The CSV header of [`pnl_to_csv`].
pub const PNL_CSV_HEADER: &str = "method,kind,account,symbol,date,lot_id,qty,avg_cost,cost_basis,mark,realized_pnl,unrealized_pnl,fees,total_pnl,equity";

fn opt(d: Option<Decimal>) -> String {
    d.map(|d| d.to_string()).unwrap_or_default()
}

/// One rectangular CSV (header [`PNL_CSV_HEADER`]) holding every part of the report, told apart by
/// `kind`: `symbol` (one per account and symbol; `qty` = position, `cost_basis` = sum of the
/// open lots), `lot` (open lots; `date` = acquired timestamp, `avg_cost` = unit cost),
/// `daily` (`realized_pnl`, `unrealized_pnl`, `fees`, `equity` of the day), `account`
/// (account totals) and `total` (all accounts). Numbers are exact decimals.
pub fn pnl_to_csv(r: &PnlReport) -> String {
    let mut out = String::with_capacity(256);
    out.push_str(PNL_CSV_HEADER);
    out.push('\n');
    let method = r.method.as_str();
    let mut row = |fields: [String; 14]| {
        out.push_str(method);
        for f in fields {
            out.push(',');
            out.push_str(&csv_field(&f));
        }
        out.push('\n');
    };
    let e = String::new;
    for a in &r.accounts {
        for s in &a.symbols {
            let basis: Decimal = s.open_lots.iter().map(|l| l.cost_basis).sum();
            row([
                "symbol".into(),
                a.account.clone(),
                s.symbol.clone(),
                e(),
                e(),
                s.position_qty.to_string(),
                opt(s.avg_cost),
                basis.to_string(),
                s.mark.to_string(),
                s.realized_pnl.to_string(),
                s.unrealized_pnl.to_string(),
                s.fees.to_string(),
                s.total_pnl.to_string(),
                e(),
            ]);
            for l in &s.open_lots {
                row([
                    "lot".into(),
                    a.account.clone(),
                    s.symbol.clone(),
                    l.acquired.to_string(),
                    l.lot_id.clone(),
                    l.qty.to_string(),
                    l.unit_cost.to_string(),
                    l.cost_basis.to_string(),
                    e(),
                    e(),
                    e(),
                    e(),
                    e(),
                    e(),
                ]);
            }
        }
        for d in &a.daily {
            row([
                "daily".into(),
                a.account.clone(),
                e(),
                d.date.to_string(),
                e(),
                e(),
                e(),
                e(),
                e(),
                d.realized.to_string(),
                d.unrealized.to_string(),
                d.fees.to_string(),
                e(),
                d.equity.to_string(),
            ]);
        }
        row(totals_row("account", &a.account, &a.totals));
    }
    row(totals_row("total", "", &r.totals));
    out
}

fn totals_row(kind: &str, account: &str, t: &PnlTotals) -> [String; 14] {
    let e = String::new;
    [
        kind.into(),
        account.into(),
        e(),
        e(),
        e(),
        e(),
        e(),
        e(),
        e(),
        t.realized_pnl.to_string(),
        t.unrealized_pnl.to_string(),
        t.fees.to_string(),
        t.total_pnl.to_string(),
        e(),
    ]
}

/// Escape text for HTML element content and attribute values.
fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// A money cell: rounded to cents for reading, the exact value in the tooltip, colored by sign.
fn money(d: Decimal) -> String {
    let class = if d < Decimal::ZERO {
        " class=\"neg\""
    } else {
        ""
    };
    format!(
        "<td{class} title=\"{}\">{}</td>",
        esc(&d.to_string()),
        esc(&format!("{:.2}", d.round_dp(2)))
    )
}

fn num(d: Decimal) -> String {
    format!("<td>{}</td>", esc(&d.to_string()))
}

/// Pixel coordinates only: f64 never feeds back into any amount.
fn f(d: Decimal) -> f64 {
    d.to_f64().unwrap_or(0.0)
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;margin:1em 0}\
th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}\
th{background:#f0f0f0}td:first-child,th:first-child{text-align:left}\
.neg{color:#b00}h2{margin-top:2em;border-bottom:1px solid #ccc}\
svg{background:#fafafa;border:1px solid #ddd}.note{color:#666;font-size:90%}";

/// A self-contained HTML page (inline CSS and SVG, no JavaScript): grand totals, a bar chart of
/// total P&L by symbol (all accounts), then per account an equity curve from the daily series
/// and tables of symbols, open lots and days. Money cells are rounded to cents for reading; the
/// exact value is in each cell's tooltip. All text is escaped.
pub fn pnl_to_html(r: &PnlReport) -> String {
    let mut h = String::with_capacity(4096);
    let period = match (r.from, r.to) {
        (None, None) => "all trades".to_string(),
        (f, t) => format!(
            "{} to {}",
            f.map_or("start".into(), |d| d.to_string()),
            t.map_or("end".into(), |d| d.to_string())
        ),
    };
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>P&amp;L report ({m})</title><style>{STYLE}</style></head><body>\n\
<h1>P&amp;L report</h1><p>Method <b>{m}</b>, period {p}. Realized and unrealized P&amp;L are net \
of fees; the fees column is for information.</p>\n",
        m = esc(r.method.as_str()),
        p = esc(&period)
    );
    h.push_str("<table><tr><th>account</th><th>realized</th><th>unrealized</th><th>total</th><th>fees</th></tr>\n");
    for a in &r.accounts {
        totals_tr(&mut h, &a.account, &a.totals);
    }
    totals_tr(&mut h, "all accounts", &r.totals);
    h.push_str("</table>\n");

    let mut by_symbol: BTreeMap<&str, Decimal> = BTreeMap::new();
    for a in &r.accounts {
        for s in &a.symbols {
            let v = by_symbol.entry(&s.symbol).or_default();
            *v = v.saturating_add(s.total_pnl);
        }
    }
    h.push_str("<h2>Total P&amp;L by symbol</h2>\n");
    bar_chart(&mut h, &by_symbol);

    for a in &r.accounts {
        account_section(&mut h, a);
    }
    h.push_str("</body></html>\n");
    h
}

fn totals_tr(h: &mut String, name: &str, t: &PnlTotals) {
    let _ = writeln!(
        h,
        "<tr><td>{}</td>{}{}{}{}</tr>",
        esc(name),
        money(t.realized_pnl),
        money(t.unrealized_pnl),
        money(t.total_pnl),
        money(t.fees)
    );
}

fn bar_chart(h: &mut String, values: &BTreeMap<&str, Decimal>) {
    if values.is_empty() {
        h.push_str("<p class=\"note\">No symbols.</p>\n");
        return;
    }
    let (w, row, label, pad) = (720.0_f64, 22.0_f64, 140.0_f64, 10.0_f64);
    let height = row * values.len() as f64 + 2.0 * pad;
    let max = values.values().map(|v| f(*v).abs()).fold(0.0_f64, f64::max);
    let scale = if max > 0.0 {
        (w - label - 2.0 * pad - 90.0) / 2.0 / max
    } else {
        0.0
    };
    let zero = label + pad + (w - label - 2.0 * pad - 90.0) / 2.0;
    let _ = writeln!(
        h,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{height}\" role=\"img\" \
aria-label=\"Total P&amp;L by symbol\">"
    );
    for (i, (sym, v)) in values.iter().enumerate() {
        let y = pad + row * i as f64;
        let len = f(*v) * scale;
        let (x, bw, color) = if len < 0.0 {
            (zero + len, -len, "#c0392b")
        } else {
            (zero, len, "#27ae60")
        };
        let _ = writeln!(
            h,
            "<text x=\"{lx}\" y=\"{ty:.1}\" font-size=\"12\" text-anchor=\"end\">{s}</text>\
<rect x=\"{x:.1}\" y=\"{ry:.1}\" width=\"{bw:.1}\" height=\"{rh:.1}\" fill=\"{color}\"><title>{s}: {val}</title></rect>\
<text x=\"{vx:.1}\" y=\"{ty:.1}\" font-size=\"11\">{disp}</text>",
            lx = label,
            ty = y + row * 0.7,
            s = esc(sym),
            ry = y + 3.0,
            rh = row - 6.0,
            val = esc(&v.to_string()),
            vx = zero.max(x + bw) + 4.0,
            disp = esc(&format!("{:.2}", v.round_dp(2))),
        );
    }
    let _ = writeln!(
        h,
        "<line x1=\"{zero:.1}\" y1=\"{pad}\" x2=\"{zero:.1}\" y2=\"{y2:.1}\" stroke=\"#333\"/></svg>",
        y2 = height - pad
    );
}

fn equity_chart(h: &mut String, account: &str, daily: &[DailyPnl]) {
    if daily.is_empty() {
        h.push_str("<p class=\"note\">No daily points in the period.</p>\n");
        return;
    }
    let (w, ht, left, right, top, bottom) = (720.0_f64, 240.0_f64, 90.0, 20.0, 15.0, 30.0);
    let ys: Vec<f64> = daily.iter().map(|d| f(d.equity)).collect();
    let mut lo = ys.iter().copied().fold(0.0_f64, f64::min);
    let mut hi = ys.iter().copied().fold(0.0_f64, f64::max);
    if hi <= lo {
        lo -= 1.0;
        hi += 1.0;
    }
    let n = daily.len();
    let x = |i: usize| {
        if n == 1 {
            left + (w - left - right) / 2.0
        } else {
            left + (w - left - right) * i as f64 / (n - 1) as f64
        }
    };
    let y = |v: f64| top + (ht - top - bottom) * (hi - v) / (hi - lo);
    let _ = writeln!(
        h,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{ht}\" role=\"img\" \
aria-label=\"Equity curve of {a}\">",
        a = esc(account)
    );
    let _ = writeln!(
        h,
        "<line x1=\"{left}\" y1=\"{z:.1}\" x2=\"{x2}\" y2=\"{z:.1}\" stroke=\"#999\" stroke-dasharray=\"4 3\"/>\
<text x=\"{tx}\" y=\"{hy:.1}\" font-size=\"11\" text-anchor=\"end\">{hi:.2}</text>\
<text x=\"{tx}\" y=\"{ly:.1}\" font-size=\"11\" text-anchor=\"end\">{lo:.2}</text>\
<text x=\"{tx}\" y=\"{zy:.1}\" font-size=\"11\" text-anchor=\"end\">0</text>",
        z = y(0.0),
        x2 = w - right,
        tx = left - 6.0,
        hy = y(hi) + 4.0,
        ly = y(lo),
        zy = y(0.0) + 4.0,
    );
    let points: Vec<String> = ys
        .iter()
        .enumerate()
        .map(|(i, v)| format!("{:.1},{:.1}", x(i), y(*v)))
        .collect();
    let _ = writeln!(
        h,
        "<polyline fill=\"none\" stroke=\"#2c3e50\" stroke-width=\"2\" points=\"{}\"/>",
        points.join(" ")
    );
    for (i, d) in daily.iter().enumerate() {
        let _ = write!(
            h,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"#2c3e50\"><title>{}: {}</title></circle>",
            x(i),
            y(ys[i]),
            esc(&d.date.to_string()),
            esc(&d.equity.to_string())
        );
    }
    let first = esc(&daily[0].date.to_string());
    let last = esc(&daily[n - 1].date.to_string());
    let _ = writeln!(
        h,
        "\n<text x=\"{left}\" y=\"{by}\" font-size=\"11\">{first}</text>\
<text x=\"{rx}\" y=\"{by}\" font-size=\"11\" text-anchor=\"end\">{last}</text></svg>",
        by = ht - 8.0,
        rx = w - right
    );
}

fn account_section(h: &mut String, a: &AccountPnl) {
    let _ = writeln!(h, "<h2>Account {}</h2>", esc(&a.account));
    h.push_str("<h3>Equity (cumulative realized + unrealized P&amp;L)</h3>\n");
    equity_chart(h, &a.account, &a.daily);
    h.push_str(
        "<h3>By symbol</h3><table><tr><th>symbol</th><th>position</th><th>avg cost</th>\
<th>mark</th><th>mark source</th><th>realized</th><th>unrealized</th><th>total</th><th>fees</th>\
<th>trades</th></tr>\n",
    );
    for s in &a.symbols {
        let source = match s.mark_source {
            super::MarkSource::Marks => "marks",
            super::MarkSource::LastTrade => "last trade",
        };
        let _ = writeln!(
            h,
            "<tr><td>{}</td>{}{}{}<td>{}</td>{}{}{}{}<td>{}</td></tr>",
            esc(&s.symbol),
            num(s.position_qty),
            s.avg_cost.map_or("<td></td>".to_string(), money),
            num(s.mark),
            source,
            money(s.realized_pnl),
            money(s.unrealized_pnl),
            money(s.total_pnl),
            money(s.fees),
            s.trades
        );
    }
    h.push_str("</table>\n");
    let lots: usize = a.symbols.iter().map(|s| s.open_lots.len()).sum();
    if lots > 0 {
        h.push_str(
            "<h3>Open lots</h3><table><tr><th>symbol</th><th>lot</th><th>acquired</th><th>qty</th>\
<th>unit cost</th><th>cost basis</th></tr>\n",
        );
        for s in &a.symbols {
            for l in &s.open_lots {
                let _ = writeln!(
                    h,
                    "<tr><td>{}</td><td>{}</td><td>{}</td>{}{}{}</tr>",
                    esc(&s.symbol),
                    esc(&l.lot_id),
                    esc(&l.acquired.to_string()),
                    num(l.qty),
                    money(l.unit_cost),
                    money(l.cost_basis)
                );
            }
        }
        h.push_str("</table>\n");
    }
    if !a.daily.is_empty() {
        h.push_str(
            "<h3>Daily</h3><table><tr><th>date</th><th>realized</th><th>unrealized</th>\
<th>fees</th><th>equity</th></tr>\n",
        );
        for d in &a.daily {
            let _ = writeln!(
                h,
                "<tr><td>{}</td>{}{}{}{}</tr>",
                esc(&d.date.to_string()),
                money(d.realized),
                money(d.unrealized),
                money(d.fees),
                money(d.equity)
            );
        }
        h.push_str("</table>\n");
    }
}
