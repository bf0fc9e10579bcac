//! The compliance scan's HTML rendering.

use std::collections::BTreeMap;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A compliance scan as a self-contained page: alert counts per rule as an SVG bar chart, then
/// one table row per alert (no JavaScript).
pub fn alerts_to_html(alerts: &[surveillance::Alert]) -> String {
    let mut per_rule: BTreeMap<&str, usize> = BTreeMap::new();
    for a in alerts {
        *per_rule.entry(a.rule.as_str()).or_default() += 1;
    }
    let max = per_rule.values().copied().max().unwrap_or(1).max(1);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"520\" height=\"{}\" role=\"img\" aria-label=\"alerts per rule\">",
        per_rule.len() * 26 + 10
    );
    for (i, (rule, n)) in per_rule.iter().enumerate() {
        let y = i * 26 + 5;
        let w = 300 * n / max;
        svg.push_str(&format!(
            "<text x=\"0\" y=\"{}\" font-size=\"12\">{}</text><rect x=\"170\" y=\"{y}\" width=\"{w}\" height=\"18\" fill=\"#b5473a\"/><text x=\"{}\" y=\"{}\" font-size=\"12\">{n}</text>",
            y + 14,
            escape(rule),
            175 + w,
            y + 14
        ));
    }
    svg.push_str("</svg>");
    let mut rows = String::new();
    for a in alerts {
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:?}</td><td><code>{}</code></td></tr>",
            escape(&a.ts.to_string()),
            escape(a.rule.as_str()),
            escape(&a.subtype),
            escape(&a.owner),
            escape(&a.accounts.join(", ")),
            escape(&a.symbol),
            a.severity,
            escape(&a.key)
        ));
    }
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Compliance scan</title>\
         <style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;font-size:13px}}</style></head>\
         <body><h1>Compliance scan</h1><p>{} alert(s). Each is a candidate for review, not a finding.</p>{svg}\
         <table><tr><th>time</th><th>rule</th><th>subtype</th><th>owner</th><th>accounts</th><th>symbol</th><th>severity</th><th>key</th></tr>{rows}</table></body></html>",
        alerts.len()
    )
}
