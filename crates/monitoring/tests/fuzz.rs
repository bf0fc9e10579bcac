//! Fuzz targets for what the monitor reads from outside: the Prometheus text format (every
//! scrape) and rule files (`monitoring.rules_file`). Any input gives a value or an error, never
//! a panic; what parses survives a round trip or an evaluation.

use monitoring::exposition::{Sample, parse};
use monitoring::history::{History, Limits};
use monitoring::rules::{RuleFile, eval};

/// A sample line in the text format (label values escaped as the format says).
fn write(samples: &[Sample]) -> String {
    let mut out = String::new();
    for s in samples {
        out.push_str(&s.name);
        if !s.labels.is_empty() {
            let pairs: Vec<String> = s
                .labels
                .iter()
                .map(|(k, v)| {
                    let v = v
                        .replace('\\', "\\\\")
                        .replace('"', "\\\"")
                        .replace('\n', "\\n");
                    format!("{k}=\"{v}\"")
                })
                .collect();
            out.push_str(&format!("{{{}}}", pairs.join(",")));
        }
        let value = match s.value {
            v if v.is_nan() => "NaN".to_owned(),
            v if v == f64::INFINITY => "+Inf".to_owned(),
            v if v == f64::NEG_INFINITY => "-Inf".to_owned(),
            v => format!("{v:e}"),
        };
        out.push_str(&format!(" {value}"));
        if let Some(t) = s.timestamp_ms {
            out.push_str(&format!(" {t}"));
        }
        out.push('\n');
    }
    out
}

fn same(a: &[Sample], b: &[Sample]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.name == y.name
                && x.labels == y.labels
                && x.timestamp_ms == y.timestamp_ms
                && (x.value == y.value || (x.value.is_nan() && y.value.is_nan()))
        })
}

#[test]
fn fuzz_exposition_text() {
    let metrics = telemetry::Metrics::new();
    metrics
        .http_request_seconds
        .get_or_create(&vec![
            ("service", "gateway".to_owned()),
            ("method", "GET".to_owned()),
            ("route", "/orders/{id}".to_owned()),
            ("status", "200".to_owned()),
        ])
        .observe(0.01);
    let seeds = vec![
        metrics.render().into_bytes(),
        b"# HELP m A \"quoted\" help.\nm{path=\"C:\\\\DIR\",error=\"a\\nb \\\"c\\\"\"} 1.5e9 1395066363000\nweird{x=\"\"} -Inf\nn NaN\n".to_vec(),
        b"h_bucket{le=\"0.05\"} 24054\nh_bucket{le=\"+Inf\"} 144320\nh_sum 53423\nh_count 144320\n".to_vec(),
    ];
    fuzzing::run("exposition-text", &seeds, |input| {
        let Ok(text) = std::str::from_utf8(input) else {
            return;
        };
        let Ok(samples) = parse(text) else {
            return;
        };
        let written = write(&samples);
        let again = parse(&written)
            .unwrap_or_else(|e| panic!("what parsed writes back and parses ({e}):\n{written}"));
        assert!(same(&samples, &again), "{text:?}\n{written}");
    });
}

#[test]
fn fuzz_rule_files() {
    let seeds = vec![monitoring::rules::DEFAULT_RULES.as_bytes().to_vec()];
    let mut history = History::new(
        Limits {
            window_ms: 3_600_000,
            points: 100,
            max_series: 1000,
        },
        None,
    );
    let scrape = parse(&telemetry::Metrics::new().render()).unwrap();
    history.record("gateway", 1_000, scrape.clone());
    history.record("gateway", 6_000, scrape);
    fuzzing::run("rule-files", &seeds, |input| {
        let Ok(text) = std::str::from_utf8(input) else {
            return;
        };
        let Ok(rules) = RuleFile::parse(text, "fuzz.yml") else {
            return;
        };
        let mut alerts = monitoring::alerts::Alerts::new();
        for rule in rules.rules() {
            let values = eval(&rule.expr, &history, 6_000, 15_000);
            alerts.evaluate(rule, &values, 6_000);
        }
        let _ = alerts.due(6_000, 1, "fuzz", "http://x");
    });
}
