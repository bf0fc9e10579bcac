//! The status page (`GET /`): every service up or down, each service level green or red with its
//! value now, the alerts, and SVG charts of the last hour (order rate, order-ack latency,
//! consumer lag), all rendered here as one HTML document: no script, it refreshes itself.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::alerts::State as AlertState;
use crate::exposition::go_float;
use crate::history::{History, Millis};
use crate::rules::{bucket_quantile, eval, increase};

/// Trailing window of each chart point's rate or quantile.
const POINT_WINDOW_MS: Millis = 60_000;

/// One line of a chart: its name and `(time, value)` points.
pub type Line = (String, Vec<(Millis, f64)>);

/// HTML-escapes text and attribute values.
pub fn esc(s: &str) -> String {
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

/// Per-second rate of each series of counter `name` over a trailing minute at each of its
/// points, one line per `line_label` value.
pub fn rate_lines(h: &History, name: &str, line_label: &str, from: Millis) -> Vec<Line> {
    let mut lines = Vec::new();
    for (labels, ring) in h.series(name) {
        let points: Vec<(Millis, f64)> = ring.range(from - POINT_WINDOW_MS, Millis::MAX).collect();
        let mut out = Vec::new();
        let mut start = 0;
        for i in 0..points.len() {
            let t = points[i].0;
            while points[start].0 < t - POINT_WINDOW_MS {
                start += 1;
            }
            let span = t - points[start].0;
            if t >= from
                && span > 0
                && let Some(inc) = increase(&points[start..=i])
            {
                out.push((t, inc / (span as f64 / 1000.0)));
            }
        }
        lines.push((label_of(labels, line_label), out));
    }
    lines.sort_by(|a, b| a.0.cmp(&b.0));
    lines
}

fn label_of(labels: &BTreeMap<String, String>, key: &str) -> String {
    labels.get(key).cloned().unwrap_or_else(|| "-".to_owned())
}

/// One histogram bucket's bound and its points.
type Bucket = (f64, Vec<(Millis, f64)>);

/// Quantiles `qs` of histogram `name` over a trailing minute at each scrape, one line per
/// quantile (the first `service` carrying the histogram).
pub fn quantile_lines(h: &History, name: &str, qs: &[f64], from: Millis) -> Vec<Line> {
    // le -> points, for each service; the buckets of one scrape share its time.
    let mut by_service: BTreeMap<String, Vec<Bucket>> = BTreeMap::new();
    for (labels, ring) in h.series(&format!("{name}_bucket")) {
        let Some(bound) = labels.get("le").and_then(|le| go_float(le)) else {
            continue;
        };
        by_service
            .entry(label_of(labels, "service"))
            .or_default()
            .push((
                bound,
                ring.range(from - POINT_WINDOW_MS, Millis::MAX).collect(),
            ));
    }
    let Some((_, buckets)) = by_service.into_iter().next() else {
        return qs.iter().map(|q| (quantile_name(*q), Vec::new())).collect();
    };
    let times: Vec<Millis> = buckets
        .iter()
        .find(|(b, _)| *b == f64::INFINITY)
        .map(|(_, p)| p.iter().map(|(t, _)| *t).filter(|t| *t >= from).collect())
        .unwrap_or_default();
    let mut lines: Vec<Line> = qs.iter().map(|q| (quantile_name(*q), Vec::new())).collect();
    for t in times {
        let mut counts: Vec<(f64, f64)> = buckets
            .iter()
            .filter_map(|(bound, points)| {
                // Points are in time order: the window is a slice found by two binary searches.
                let start = points.partition_point(|(pt, _)| *pt < t - POINT_WINDOW_MS);
                let end = points.partition_point(|(pt, _)| *pt <= t);
                increase(&points[start..end.max(start)]).map(|inc| (*bound, inc))
            })
            .collect();
        for (line, q) in lines.iter_mut().zip(qs) {
            if let Some(v) = bucket_quantile(*q, &mut counts) {
                line.1.push((t, v));
            }
        }
    }
    lines
}

fn quantile_name(q: f64) -> String {
    format!("p{}", (q * 100.0).round())
}

/// The newest value of each series of gauge `name` at each point, one line per `line_label`.
pub fn gauge_lines(h: &History, name: &str, line_label: &str, from: Millis) -> Vec<Line> {
    let mut lines: Vec<Line> = h
        .series(name)
        .map(|(labels, ring)| {
            (
                label_of(labels, line_label),
                ring.range(from, Millis::MAX).collect(),
            )
        })
        .collect();
    lines.sort_by(|a, b| a.0.cmp(&b.0));
    lines
}

const PALETTE: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

/// A rounded top for the y axis (1, 2 or 5 times a power of ten).
fn nice_max(v: f64) -> f64 {
    if !v.is_finite() || v <= 0.0 {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if v <= m * p {
            return m * p;
        }
    }
    10.0 * p
}

/// An SVG line chart of `lines` over `[from, to]`, values shown through `unit` (scaled by
/// `scale` first, e.g. seconds to ms).
pub fn svg_chart(
    id: &str,
    title: &str,
    lines: &[Line],
    unit: &str,
    scale: f64,
    from: Millis,
    to: Millis,
) -> String {
    const W: f64 = 720.0;
    const PLOT_H: f64 = 200.0;
    const LEFT: f64 = 64.0;
    const RIGHT: f64 = 12.0;
    const TOP: f64 = 24.0;
    const BOTTOM: f64 = 24.0;
    // The legend: rows of four names under the x axis.
    const PER_ROW: usize = 4;
    let drawn: Vec<&Line> = lines.iter().filter(|(_, p)| !p.is_empty()).collect();
    let legend_rows = drawn.len().div_ceil(PER_ROW);
    let h = PLOT_H + 18.0 * legend_rows as f64;
    let (pw, ph) = (W - LEFT - RIGHT, PLOT_H - TOP - BOTTOM);
    let ymax = nice_max(
        lines
            .iter()
            .flat_map(|(_, p)| p.iter().map(|(_, v)| v * scale))
            .filter(|v| v.is_finite())
            .fold(0.0, f64::max),
    );
    let span = (to - from).max(1) as f64;
    let x = |t: Millis| LEFT + (t - from) as f64 / span * pw;
    let y = |v: f64| TOP + ph - (v * scale / ymax).clamp(0.0, 1.0) * ph;
    let mut s = String::new();
    let _ = write!(
        s,
        r##"<svg id="{id}" class="chart" xmlns="http://www.w3.org/2000/svg" width="{W}" height="{h}" viewBox="0 0 {W} {h}" role="img" aria-label="{t}"><title>{t}</title><text x="{LEFT}" y="16" class="title">{t}</text>"##,
        t = esc(title)
    );
    for i in 0..=4 {
        let v = ymax * f64::from(i) / 4.0;
        let yy = TOP + ph - ph * f64::from(i) / 4.0;
        let _ = write!(
            s,
            r##"<line x1="{LEFT}" x2="{}" y1="{yy:.1}" y2="{yy:.1}" class="grid"/><text x="{}" y="{:.1}" class="axis" text-anchor="end">{} {}</text>"##,
            W - RIGHT,
            LEFT - 6.0,
            yy + 4.0,
            short(v),
            esc(unit)
        );
    }
    let minutes = (to - from) / 60_000;
    for i in 0..=4 {
        let t = from + (to - from) * i / 4;
        let label = if i == 4 {
            "now".to_owned()
        } else {
            format!("-{}m", minutes - minutes * i / 4)
        };
        let _ = write!(
            s,
            r##"<text x="{:.1}" y="{}" class="axis" text-anchor="middle">{label}</text>"##,
            x(t),
            PLOT_H - 6.0
        );
    }
    if drawn.is_empty() {
        let _ = write!(
            s,
            r##"<text x="{:.1}" y="{:.1}" class="empty" text-anchor="middle">no data yet</text>"##,
            LEFT + pw / 2.0,
            TOP + ph / 2.0
        );
    }
    for (i, (name, points)) in drawn.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let coords: Vec<String> = points
            .iter()
            .filter(|(t, v)| *t >= from && v.is_finite())
            .map(|(t, v)| format!("{:.1},{:.1}", x(*t), y(*v)))
            .collect();
        let _ = write!(
            s,
            r##"<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{}"><title>{}</title></polyline>"##,
            coords.join(" "),
            esc(name)
        );
        let _ = write!(
            s,
            r##"<text x="{:.1}" y="{:.1}" class="legend" fill="{color}">&#9644; {}</text>"##,
            LEFT + (pw / PER_ROW as f64) * (i % PER_ROW) as f64,
            PLOT_H + 12.0 + 18.0 * (i / PER_ROW) as f64,
            esc(name)
        );
    }
    s.push_str("</svg>");
    s
}

/// A short number for an axis (`0.25`, `12`, `1.5k`).
fn short(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{}k", trim(v / 1000.0))
    } else {
        trim(v)
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn ago(now: Millis, t: Millis) -> String {
    let s = (now - t).max(0) / 1000;
    match s {
        0..=119 => format!("{s} s ago"),
        120..=7199 => format!("{} min ago", s / 60),
        _ => format!("{} h ago", s / 3600),
    }
}

/// The whole page as of `now`.
pub(crate) fn render(state: &crate::State, now: Millis) -> String {
    let from = now - state.settings.history.as_millis() as Millis;
    let stale = 3 * state.settings.interval.as_millis() as Millis;
    let mut s = String::new();
    let down: Vec<&crate::TargetStatus> = state.targets.iter().filter(|t| !t.up).collect();
    let firing = state
        .alerts
        .active()
        .filter(|a| a.state == AlertState::Firing)
        .count();
    s.push_str(concat!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8">"#,
        r#"<meta http-equiv="refresh" content="10"><meta name="viewport" content="width=device-width">"#,
        r#"<title>trade2026 status</title><style>"#,
        "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:780px}",
        "table{border-collapse:collapse;width:100%;margin-bottom:16px}",
        "td,th{text-align:left;padding:4px 8px;border-bottom:1px solid #ddd}",
        ".ok{background:#d4edda;color:#155724}.bad{background:#f8d7da;color:#721c24}",
        ".none{background:#eee;color:#666}.badge{padding:2px 8px;border-radius:3px;font-weight:600}",
        ".chart{display:block;margin:8px 0 20px;border:1px solid #ddd}",
        ".chart .grid{stroke:#eee}.chart .axis{font-size:11px;fill:#666}",
        ".chart .title{font-weight:600;font-size:13px}.chart .legend{font-size:12px}",
        ".chart .empty{fill:#999}small{color:#666}",
        "</style></head><body><h1>trade2026 status</h1>"
    ));
    let summary = match (state.evaluated_at, down.len(), firing) {
        (None, _, _) => ("none", "Waiting for the first scrape.".to_owned()),
        (Some(_), 0, 0) => (
            "ok",
            format!("All {} services up, no alerts firing.", state.targets.len()),
        ),
        (Some(_), d, f) => (
            "bad",
            format!(
                "{d} of {} services down, {f} alert{} firing.",
                state.targets.len(),
                if f == 1 { "" } else { "s" }
            ),
        ),
    };
    let _ = write!(
        s,
        r#"<p id="summary" class="badge {}">{}</p>"#,
        summary.0,
        esc(&summary.1)
    );

    s.push_str("<h2>Services</h2><table id=\"services\"><tr><th>service</th><th>status</th><th>scrape</th><th>last</th><th>detail</th></tr>");
    for t in &state.targets {
        let (class, word) = match (t.scraped_at, t.up) {
            (None, _) => ("none", "unknown"),
            (Some(_), true) => ("ok", "up"),
            (Some(_), false) => ("bad", "down"),
        };
        let _ = write!(
            s,
            r#"<tr id="service-{id}"><td>{name}</td><td><span class="badge {class}">{word}</span></td><td>{ms} ms</td><td>{last}</td><td><small>{detail}</small></td></tr>"#,
            id = esc(&t.service),
            name = esc(&t.service),
            ms = t.duration.as_millis(),
            last = t
                .scraped_at
                .map_or_else(|| "-".to_owned(), |at| ago(now, at)),
            detail = esc(t.error.as_deref().unwrap_or(&t.url)),
        );
    }
    s.push_str("</table>");

    s.push_str("<h2>Service levels</h2><table id=\"slas\"><tr><th>objective</th><th>now</th><th>status</th></tr>");
    for rule in state.rules.rules() {
        let Some(title) = &rule.sla else { continue };
        let values = eval(&rule.expr, &state.history, now, stale);
        let alert = state
            .alerts
            .active()
            .filter(|a| a.alertname() == rule.alert)
            .map(|a| a.state)
            .max_by_key(|s| matches!(s, AlertState::Firing));
        let (class, word, value) = match values.iter().map(|(_, v)| *v).reduce(f64::max) {
            None => ("none", "no data".to_owned(), "-".to_owned()),
            Some(v) if rule.op.holds(v, rule.threshold) => (
                "bad",
                match alert {
                    Some(AlertState::Firing) => "breached (firing)".to_owned(),
                    Some(AlertState::Pending) => "breached (pending)".to_owned(),
                    None => "breached".to_owned(),
                },
                rule.unit.format(v),
            ),
            Some(v) => ("ok", "met".to_owned(), rule.unit.format(v)),
        };
        let _ = write!(
            s,
            r#"<tr class="sla" data-alert="{alert}"><td>{title}</td><td>{value}</td><td><span class="badge {class}">{word}</span></td></tr>"#,
            alert = esc(&rule.alert),
            title = esc(title),
            value = esc(&value),
        );
    }
    s.push_str("</table>");

    s.push_str("<h2>Alerts</h2>");
    let active: Vec<_> = state.alerts.active().collect();
    if active.is_empty() {
        s.push_str(r#"<p id="alerts">No alerts.</p>"#);
    } else {
        s.push_str(r#"<table id="alerts"><tr><th>alert</th><th>state</th><th>since</th><th>summary</th></tr>"#);
        for a in active {
            let (class, word) = match a.state {
                AlertState::Firing => ("bad", "firing"),
                AlertState::Pending => ("none", "pending"),
            };
            let _ = write!(
                s,
                r#"<tr id="alert-{fp}"><td>{name}</td><td><span class="badge {class}">{word}</span></td><td>{since}</td><td>{summary}</td></tr>"#,
                fp = a.fingerprint(),
                name = esc(a.alertname()),
                since = ago(now, a.active_at),
                summary = esc(a.annotations.get("summary").map_or("", String::as_str)),
            );
        }
        s.push_str("</table>");
    }

    let minutes = state.settings.history.as_secs() / 60;
    let _ = write!(s, "<h2>Last {minutes} minutes</h2>");
    let h = &state.history;
    s.push_str(&svg_chart(
        "chart-order-rate",
        "Order rate (orders answered per second)",
        &rate_lines(h, "trade2026_order_ack_seconds_count", "service", from),
        "/s",
        1.0,
        from,
        now,
    ));
    s.push_str(&svg_chart(
        "chart-ack-latency",
        "Order-ack latency (submit to durable answer)",
        &quantile_lines(h, "trade2026_order_ack_seconds", &[0.5, 0.99], from),
        "ms",
        1000.0,
        from,
        now,
    ));
    s.push_str(&svg_chart(
        "chart-consumer-lag",
        "Consumer lag (journal events not yet applied)",
        &gauge_lines(h, "trade2026_consumer_lag_events", "consumer", from),
        "",
        1.0,
        from,
        now,
    ));
    let _ = write!(
        s,
        "<p><small>{} rules, {} series held, {} scraped every {} s. Alerts as JSON: <a href=\"/api/v1/alerts\">/api/v1/alerts</a>. Refreshes every 10 s.</small></p></body></html>",
        state.rules.rules().count(),
        h.len(),
        state.targets.len(),
        state.settings.interval.as_secs()
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::test_support::sample;
    use crate::history::Limits;

    fn history() -> History {
        History::new(
            Limits {
                window_ms: 3_600_000,
                points: 800,
                max_series: 1000,
            },
            None,
        )
    }

    #[test]
    fn order_rate_is_the_counter_increase_over_the_trailing_minute() {
        let mut h = history();
        // 10 orders a second, scraped every 5 s for two minutes.
        for i in 0..=24 {
            h.record(
                "gateway",
                i * 5000,
                vec![sample(
                    "trade2026_order_ack_seconds_count",
                    &[],
                    (i * 50) as f64,
                )],
            );
        }
        let lines = rate_lines(&h, "trade2026_order_ack_seconds_count", "service", 0);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].0, "gateway");
        assert_eq!(lines[0].1.len(), 24, "every point after the first");
        assert!(
            lines[0].1.iter().all(|(_, v)| (*v - 10.0).abs() < 1e-9),
            "{lines:?}"
        );
    }

    #[test]
    fn latency_lines_are_quantiles_of_the_trailing_minute() {
        let mut h = history();
        for i in 0..=12i64 {
            // Per 5 s: 9 answers within 1 ms, 1 within 10 ms.
            let n = i as f64;
            h.record(
                "gateway",
                i * 5000,
                vec![
                    sample(
                        "trade2026_order_ack_seconds_bucket",
                        &[("le", "0.001")],
                        9.0 * n,
                    ),
                    sample(
                        "trade2026_order_ack_seconds_bucket",
                        &[("le", "0.01")],
                        10.0 * n,
                    ),
                    sample(
                        "trade2026_order_ack_seconds_bucket",
                        &[("le", "+Inf")],
                        10.0 * n,
                    ),
                ],
            );
        }
        let lines = quantile_lines(&h, "trade2026_order_ack_seconds", &[0.5, 0.99], 0);
        assert_eq!(lines[0].0, "p50");
        assert_eq!(lines[1].0, "p99");
        let (_, p50) = *lines[0].1.last().unwrap();
        let (_, p99) = *lines[1].1.last().unwrap();
        // Of 120 answers in the minute: rank 60 in (0, 1 ms] of 108; rank 118.8 in (1, 10 ms].
        assert!((p50 - 0.001 * 60.0 / 108.0).abs() < 1e-12, "{p50}");
        assert!(
            (p99 - (0.001 + 0.009 * (118.8 - 108.0) / 12.0)).abs() < 1e-12,
            "{p99}"
        );
    }

    #[test]
    fn charts_are_svg_with_a_polyline_per_line_or_say_there_is_no_data() {
        let line = (
            "engine <1>".to_owned(),
            vec![(0, 0.0), (30_000, 50.0), (60_000, 100.0)],
        );
        let svg = svg_chart("c", "Lag & more", &[line], "", 1.0, 0, 60_000);
        assert!(
            svg.starts_with("<svg id=\"c\" class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\""),
            "{svg}"
        );
        assert!(svg.ends_with("</svg>"));
        assert!(
            svg.contains("Lag &amp; more") && svg.contains("engine &lt;1&gt;"),
            "{svg}"
        );
        // 100 is the top of the y axis: the last point is at the top right of the plot.
        assert!(
            svg.contains("points=\"64.0,176.0 386.0,100.0 708.0,24.0\""),
            "{svg}"
        );
        let empty = svg_chart(
            "e",
            "Nothing",
            &[("x".into(), vec![])],
            "ms",
            1.0,
            0,
            60_000,
        );
        assert!(
            empty.contains("no data yet") && !empty.contains("<polyline"),
            "{empty}"
        );
    }

    #[test]
    fn axes_round_up_to_readable_numbers() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(7.0), 10.0);
        assert_eq!(nice_max(0.0013), 0.002);
        assert_eq!(nice_max(420.0), 500.0);
        assert_eq!(short(25_000.0), "25k");
        assert_eq!(
            esc("<a href='x'>&\""),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;"
        );
    }
}
