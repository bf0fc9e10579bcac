//! CSV and self-contained HTML (no JavaScript; an inline SVG chart) renderings of a
//! [`VarReport`].

use std::fmt::Write as _;

use model::text::csv_field;
use rust_decimal::prelude::ToPrimitive;

use super::VarReport;

/// Escape text for HTML element content and attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub(crate) const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}\
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}.neg{color:#b00}\
.note{color:#555;font-size:90%}";

/// One row per position and a `TOTAL` row (value = portfolio value, component_var = VaR,
/// component_es = ES); every row repeats method, confidence and horizon so it stands alone.
pub fn var_to_csv(r: &VarReport) -> String {
    let mut out = String::from(
        "method,confidence,horizon_days,symbol,qty,value,component_var,component_es\n",
    );
    let head = format!("{},{},{}", r.method, r.confidence, r.horizon_days);
    for c in &r.components {
        let _ = writeln!(
            out,
            "{head},{},{},{},{},{}",
            csv_field(&c.symbol),
            c.qty,
            c.value,
            c.component_var,
            c.component_es
        );
    }
    let _ = writeln!(
        out,
        "{head},TOTAL,,{},{},{}",
        r.portfolio_value, r.var, r.expected_shortfall
    );
    out
}

fn histogram_svg(r: &VarReport) -> String {
    let (w, h, pad) = (640.0, 260.0, 40.0);
    let bins = &r.histogram;
    let (Some(first), Some(last)) = (bins.first(), bins.last()) else {
        return "<p class=\"note\">No loss distribution to chart.</p>".into();
    };
    let lo = first.lower.to_f64().unwrap_or(0.0);
    let hi = last.upper.to_f64().unwrap_or(1.0);
    let span = if hi > lo { hi - lo } else { 1.0 };
    let pmax = bins
        .iter()
        .map(|b| b.probability)
        .fold(0.0, f64::max)
        .max(1e-12);
    let x = |v: f64| pad + (v - lo) / span * (w - 2.0 * pad);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" \
         viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"Loss distribution\">"
    );
    let base = h - pad;
    for b in bins {
        let (x0, x1) = (
            x(b.lower.to_f64().unwrap_or(lo)),
            x(b.upper.to_f64().unwrap_or(hi)),
        );
        let bh = b.probability / pmax * (h - 2.0 * pad);
        let _ = write!(
            s,
            "<rect x=\"{x0:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"#6a8caf\"/>",
            base - bh,
            (x1 - x0 - 0.5).max(0.5)
        );
    }
    let _ = write!(
        s,
        "<line x1=\"{pad}\" y1=\"{base}\" x2=\"{}\" y2=\"{base}\" stroke=\"#333\"/>",
        w - pad
    );
    for (label, v, color, dash) in [
        ("VaR", r.var, "#d62728", ""),
        (
            "ES",
            r.expected_shortfall,
            "#7b1113",
            " stroke-dasharray=\"5,3\"",
        ),
    ] {
        let xv = x(v.to_f64().unwrap_or(0.0)).clamp(pad, w - pad);
        let _ = write!(
            s,
            "<line x1=\"{xv:.1}\" y1=\"{pad}\" x2=\"{xv:.1}\" y2=\"{base}\" stroke=\"{color}\" \
             stroke-width=\"2\"{dash}/><text x=\"{xv:.1}\" y=\"{:.1}\" fill=\"{color}\" \
             font-size=\"12\" text-anchor=\"middle\">{label} {}</text>",
            if label == "VaR" {
                pad - 20.0
            } else {
                pad - 6.0
            },
            esc(&v.to_string())
        );
    }
    let _ = write!(
        s,
        "<text x=\"{pad}\" y=\"{}\" font-size=\"11\">{}</text><text x=\"{}\" y=\"{}\" \
         font-size=\"11\" text-anchor=\"end\">{}</text><text x=\"{}\" y=\"{}\" font-size=\"11\" \
         text-anchor=\"middle\">loss (positive) / gain (negative)</text></svg>",
        base + 16.0,
        esc(&first.lower.to_string()),
        w - pad,
        base + 16.0,
        esc(&last.upper.to_string()),
        w / 2.0,
        base + 32.0,
    );
    s
}

/// A self-contained HTML page: summary, loss histogram with VaR and ES marked, components.
pub fn var_to_html(r: &VarReport) -> String {
    let mut s = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>VaR {}</title>\
         <style>{STYLE}</style></head><body><h1>Value at Risk</h1><table>",
        esc(r.method.as_str())
    );
    let rows: [(&str, String); 9] = [
        ("Method", r.method.to_string()),
        ("Confidence", format!("{}", r.confidence)),
        ("Horizon (days)", r.horizon_days.to_string()),
        ("VaR", r.var.to_string()),
        ("Expected shortfall", r.expected_shortfall.to_string()),
        ("Portfolio value", r.portfolio_value.to_string()),
        ("Observations", r.observations.to_string()),
        ("Window", format!("{} to {}", r.window_start, r.as_of)),
        ("Returns", format!("{:?}", r.returns).to_ascii_lowercase()),
    ];
    for (k, v) in rows {
        let _ = write!(s, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(&v));
    }
    s.push_str("</table><h2>Loss distribution</h2>");
    s.push_str(&histogram_svg(r));
    s.push_str(
        "<h2>Components</h2><table><tr><th>Symbol</th><th>Qty</th><th>Value</th>\
         <th>Component VaR</th><th>Component ES</th></tr>",
    );
    for c in &r.components {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&c.symbol),
            c.qty,
            c.value,
            c.component_var,
            c.component_es
        );
    }
    let _ = write!(
        s,
        "<tr><th>Total</th><th></th><th>{}</th><th>{}</th><th>{}</th></tr></table>",
        r.portfolio_value, r.var, r.expected_shortfall
    );
    for n in &r.notes {
        let _ = write!(s, "<p class=\"note\">{}</p>", esc(n));
    }
    s.push_str("</body></html>\n");
    s
}
