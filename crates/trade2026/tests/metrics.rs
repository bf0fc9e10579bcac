//! Every port of `up` serves its own service's metrics, and `promtool check metrics` (the
//! Prometheus project's own linter: HELP text, types, counter and unit suffixes) accepts them.
//! promtool comes from the Debian package `prometheus`: `.ci/run` installs it and sets
//! TEST_PROMTOOL; without it the test is skipped, except under CI=true where it fails.

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use common::{Platform, http_as, http_get};

/// `promtool check metrics` on `text`: its exit code and what it printed.
fn check(promtool: &PathBuf, text: &str) -> (i32, String) {
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), printed)
}

#[test]
fn every_port_serves_its_own_metrics_and_promtool_finds_nothing_to_fix() {
    let Some(promtool) = common::tool("TEST_PROMTOOL", "promtool (package prometheus)") else {
        return;
    };
    // promtool itself: a metric without HELP is refused, so a clean result below means something.
    let (code, printed) = check(&promtool, "# TYPE x_total counter\nx_total 1\n");
    assert_ne!(code, 0, "{printed}");
    assert!(printed.contains("no help text"), "{printed}");

    let dir = tempfile::tempdir().unwrap();
    let p = Platform::start(dir.path(), &[]);
    // Traffic, so labelled series and histograms have samples: an order, and a 404 on each port.
    let order = r#"{"account":"test_account","symbol":"BTCUSDT","side":"buy","type":"market","quantity":"0.01"}"#;
    let (status, body) = http_as(p.gateway, &p.trader_key, "POST", "/orders", Some(order));
    assert_eq!(status, 201, "{body}");
    // A body that is not JSON: refused by the host (415), counted in trade2026_http_refused_total.
    let mut s = std::net::TcpStream::connect(p.gateway).unwrap();
    write!(
        s,
        "POST /orders HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi",
        p.gateway
    )
    .unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut s, &mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 415"), "{answer}");
    // The feature pipeline reports a view's freshness once that view holds an entity, which is
    // after its consumer has applied the journal's first events: wait for that (at most 10 s),
    // so the page read below is not taken while the consumer is still catching up.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !http_get(p.features, "/metrics")
        .1
        .contains("trade2026_feature_freshness_seconds{view=")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the feature pipeline reported no view's freshness within 10 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let ports = [
        ("gateway", p.gateway),
        ("ptrc", p.ptrc),
        ("feature_pipeline", p.features),
        ("execution_quality", p.quality),
        ("compliance_scanner", p.scanner),
        ("logger", p.logger),
        ("monitoring", p.monitoring),
    ];
    let mut pages = Vec::new();
    for (service, addr) in ports {
        assert_eq!(http_get(addr, "/no-such-route").0, 404);
        let (status, text) = http_get(addr, "/metrics");
        assert_eq!(status, 200, "{service}: {text}");
        let (code, printed) = check(&promtool, &text);
        assert!(
            code == 0 && printed.trim().is_empty(),
            "{service}: promtool exited {code}:\n{printed}"
        );
        // The process figures are on every port; the HTTP series name the port's own service.
        assert!(
            text.contains("\ntrade2026_process_resident_memory_bytes "),
            "{service}: {text}"
        );
        assert!(
            text.contains(&format!(
                "trade2026_http_responses_total{{service=\"{service}\",route=\"unmatched\",status=\"404\"}} 1\n"
            )),
            "{service}: {text}"
        );
        assert!(
            text.contains(&format!(
                "trade2026_http_request_duration_seconds_count{{service=\"{service}\",method=\"GET\",route=\"unmatched\",status=\"404\"}} 1\n"
            )),
            "{service}: {text}"
        );
        pages.push((service, text));
    }
    let page = |name: &str| &pages.iter().find(|(s, _)| *s == name).unwrap().1;
    // Each registry holds its own service's series only.
    let gateway = page("gateway");
    for own in [
        "trade2026_order_ack_seconds_count 1\n",
        "trade2026_oms_decision_seconds_count 1\n",
        "trade2026_risk_check_seconds_count 1\n",
        "trade2026_journal_events_appended_total{kind=\"quote\"}",
        "trade2026_feed_silence_seconds{exchange=\"sim\"}",
        "trade2026_consumer_lag_events{consumer=\"blotter\"}",
        "trade2026_background_lane_raises_total ",
    ] {
        assert!(gateway.contains(own), "gateway lacks {own}: {gateway}");
    }
    assert!(!gateway.contains("trade2026_execq_"), "{gateway}");
    assert!(
        !gateway.contains("consumer=\"execution-quality\""),
        "{gateway}"
    );
    let quality = page("execution_quality");
    assert!(
        quality.contains("consumer=\"execution-quality\""),
        "{quality}"
    );
    assert!(
        !quality.contains("trade2026_order_ack_seconds"),
        "{quality}"
    );
    assert!(
        !quality.contains("trade2026_journal_events_appended_total"),
        "{quality}"
    );
    assert!(
        page("feature_pipeline").contains("trade2026_feature_freshness_seconds{view="),
        "{}",
        page("feature_pipeline")
    );
    // What deploy/ (Prometheus rules, the Grafana dashboard) and the monitor's built-in rules
    // query is what the ports serve.
    let mut served = std::collections::BTreeSet::new();
    for (_, text) in &pages {
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("# TYPE ") else {
                continue;
            };
            let mut words = rest.split_whitespace();
            let (Some(name), Some(kind)) = (words.next(), words.next()) else {
                continue;
            };
            served.insert(name.to_owned());
            if kind == "histogram" {
                for suffix in ["_bucket", "_count", "_sum"] {
                    served.insert(format!("{name}{suffix}"));
                }
            }
        }
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    for file in [
        "deploy/prometheus/rules.yml",
        "deploy/grafana/dashboards/trade2026.json",
        "crates/monitoring/src/default_rules.yml",
    ] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        let mut rest = text.as_str();
        let mut queried = 0;
        while let Some(at) = rest.find("trade2026_") {
            let name: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            rest = &rest[at + name.len()..];
            // The dashboard's uid and title are not metric names.
            if name == "trade2026_" {
                continue;
            }
            queried += 1;
            assert!(
                served.contains(&name),
                "{file} queries {name}, which no port serves"
            );
        }
        assert!(queried >= 8, "{file}: {queried} metric names");
    }

    // The monitor counts its scrapes (its first round runs at start).
    let scraped = |text: &str| {
        text.contains("trade2026_monitoring_scrapes_total{service=\"gateway\",outcome=\"ok\"}")
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut text = page("monitoring").clone();
    while !scraped(&text) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(200));
        text = http_get(p.monitoring, "/metrics").1;
    }
    assert!(scraped(&text), "{text}");
}
