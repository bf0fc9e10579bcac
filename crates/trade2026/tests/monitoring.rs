//! The monitoring service (8113) end to end: its `/health` answers (the plan's gate), its status
//! page renders with its SVG charts in a real browser (headless Chromium), and an alert fires
//! when a service it watches is stopped and resolves when the service comes back, reaching a
//! webhook in Alertmanager's payload format and `GET /api/v1/alerts` in Prometheus' shape.
//!
//! Chromium comes from the Debian package `chromium`: `.ci/run` installs it and sets
//! TEST_CHROMIUM; without it the browser part is skipped, except under CI=true where it fails.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Platform, http_as, http_get};
use serde::Deserialize;
use serde_json::Value;

/// Polls `f` until it returns `Some`, for at most `secs` (no timing is asserted: the deadline
/// only keeps a broken build from hanging).
fn eventually<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Headless Chromium on `url`: the DOM after it rendered, and a screenshot at `png`.
fn browse(chromium: &Path, url: &str, png: &Path) -> String {
    let profile = tempfile::tempdir().unwrap();
    let run = |extra: &[&str]| {
        let out = Command::new(chromium)
            .args([
                "--headless",
                "--disable-gpu",
                "--no-sandbox",
                "--window-size=800,1600",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg(url)
            .output()
            .expect("run chromium");
        assert!(
            out.status.success(),
            "chromium {extra:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let dom = run(&["--dump-dom"]);
    run(&[&format!("--screenshot={}", png.display())]);
    dom
}

#[test]
fn health_answers_and_the_status_page_renders_with_its_charts() {
    let dir = tempfile::tempdir().unwrap();
    let p = Platform::start_with_env(
        dir.path(),
        &[],
        &[("TRADE2026_MONITORING__SCRAPE_INTERVAL_SECS", "1".to_owned())],
    );
    let (status, body) = common::health_when_ready(p.monitoring);
    assert_eq!(status, 200, "{body}");
    let health: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["service"], "monitoring");
    assert_eq!(health["status"], "ok");

    // Orders over a few scrapes, so the order-rate and latency charts have lines.
    let order = r#"{"account":"test_account","symbol":"BTCUSDT","side":"buy","type":"market","quantity":"0.01"}"#;
    let page = eventually(60, "the order-rate chart draws a line", || {
        let (status, _) = http_as(p.gateway, &p.trader_key, "POST", "/orders", Some(order));
        assert_eq!(status, 201);
        let (status, page) = http_get(p.monitoring, "/");
        assert_eq!(status, 200, "{page}");
        let chart = page.split("<svg id=\"chart-order-rate\"").nth(1)?;
        let chart = chart.split("</svg>").next()?;
        chart.contains("<polyline").then_some(page)
    });
    assert!(page.starts_with("<!doctype html>"), "{page}");
    for chart in [
        "chart-order-rate",
        "chart-ack-latency",
        "chart-consumer-lag",
    ] {
        assert!(
            page.contains(&format!("<svg id=\"{chart}\"")),
            "{chart}: {page}"
        );
    }
    // Every service of the platform, each up.
    for service in [
        "gateway",
        "ptrc",
        "feature_pipeline",
        "execution_quality",
        "compliance_scanner",
        "logger",
        "monitoring",
    ] {
        let row = page
            .split(&format!("<tr id=\"service-{service}\">"))
            .nth(1)
            .unwrap_or_else(|| panic!("no row for {service}: {page}"));
        let row = row.split("</tr>").next().unwrap();
        assert!(row.contains(">up</span>"), "{service}: {row}");
    }
    // The plan's service levels, each with a value and a verdict.
    for objective in [
        "Risk check P50 ≤ 1.5 ms",
        "OMS P50 ≤ 10 ms",
        "OMS P99 ≤ 50 ms",
        "Features fresher than 5 minutes",
    ] {
        assert!(
            page.contains(&format!("<td>{objective}</td>")),
            "{objective}: {page}"
        );
    }
    assert!(page.contains("class=\"badge ok\">met</span>"), "{page}");

    let (status, alerts) = http_get(p.monitoring, "/api/v1/alerts");
    assert_eq!(status, 200);
    let alerts: Value = serde_json::from_str(&alerts).unwrap();
    assert_eq!(alerts["status"], "success");
    assert!(alerts["data"]["alerts"].is_array(), "{alerts}");

    let Some(chromium) = common::tool("TEST_CHROMIUM", "chromium") else {
        return;
    };
    let png = dir.path().join("status.png");
    let dom = browse(&chromium, &format!("http://{}/", p.monitoring), &png);
    // The browser built the page's DOM with the inline SVG charts and their lines.
    for chart in [
        "chart-order-rate",
        "chart-ack-latency",
        "chart-consumer-lag",
    ] {
        assert!(
            dom.contains(&format!("<svg id=\"{chart}\"")),
            "{chart} in {dom}"
        );
    }
    assert!(dom.contains("<polyline"), "{dom}");
    assert!(dom.contains("trade2026 status"), "{dom}");
    let shot = std::fs::read(&png).expect("chromium wrote the screenshot");
    assert_eq!(&shot[..8], b"\x89PNG\r\n\x1a\n");
    // Text, tables and three charts: far more than a blank page's few kilobytes.
    assert!(shot.len() > 20_000, "{} bytes", shot.len());
}

// --- an alert through a stopped and restarted service ------------------------------------------

/// Alertmanager's webhook payload, version 4, as its documentation states the format
/// (prometheus.io/docs/alerting/latest/configuration/#webhook_config); no other field allowed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AlertmanagerPayload {
    version: String,
    group_key: String,
    truncated_alerts: u64,
    status: String,
    receiver: String,
    group_labels: BTreeMap<String, String>,
    common_labels: BTreeMap<String, String>,
    common_annotations: BTreeMap<String, String>,
    #[serde(rename = "externalURL")]
    external_url: String,
    alerts: Vec<AlertmanagerAlert>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AlertmanagerAlert {
    status: String,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    starts_at: String,
    ends_at: String,
    #[serde(rename = "generatorURL")]
    generator_url: String,
    fingerprint: String,
}

/// A payload an Alertmanager (0.25) sent to a webhook receiver, as published with the
/// `alertmanager-webhook-types` crate (assets/sample-v4-payload.json).
const ALERTMANAGER_SAMPLE: &str = r#"{
  "receiver": "sms",
  "status": "firing",
  "alerts": [
    {
      "status": "firing",
      "labels": {
        "alertname": "ProbeFailure",
        "instance": "https://server.example.org",
        "job": "http_checks",
        "monitor": "master",
        "severity": "critical"
      },
      "annotations": {
        "description": "Instance https://server.example.org has been down for over 5m. Job: http_checks",
        "summary": "BlackBox Probe Failure: https://server.example.org"
      },
      "startsAt": "2023-02-06T13:08:45.828Z",
      "endsAt": "0001-01-01T00:00:00Z",
      "generatorURL": "http://prometheus.example.org:9090/graph?g0.expr=probe_success+%3D%3D+0\u0026g0.tab=1",
      "fingerprint": "1a30ba71cca2921f"
    }
  ],
  "groupLabels": {
    "alertname": "ProbeFailure"
  },
  "commonLabels": {
    "alertname": "ProbeFailure",
    "instance": "https://server.example.org",
    "job": "http_checks",
    "monitor": "master",
    "severity": "critical"
  },
  "commonAnnotations": {
    "description": "Instance https://server.example.org has been down for over 5m. Job: http_checks",
    "summary": "BlackBox Probe Failure: https://server.example.org"
  },
  "externalURL": "http://prometheus.example.org:9093",
  "version": "4",
  "groupKey": "{}/{severity=\"critical\"}:{alertname=\"ProbeFailure\"}",
  "truncatedAlerts": 0
}"#;

#[test]
fn the_mirror_of_alertmanagers_payload_reads_a_real_one() {
    let p: AlertmanagerPayload = serde_json::from_str(ALERTMANAGER_SAMPLE).unwrap();
    assert_eq!((p.version.as_str(), p.status.as_str()), ("4", "firing"));
    assert_eq!(p.receiver, "sms");
    assert_eq!(p.truncated_alerts, 0);
    assert_eq!(p.group_labels["alertname"], "ProbeFailure");
    assert_eq!(p.common_labels["severity"], "critical");
    assert!(p.common_annotations["summary"].starts_with("BlackBox"));
    assert_eq!(p.alerts[0].fingerprint, "1a30ba71cca2921f");
    assert_eq!(p.alerts[0].ends_at, "0001-01-01T00:00:00Z");
    assert!(p.external_url.ends_with(":9093") && p.group_key.contains("ProbeFailure"));
    // The mirror refuses what Alertmanager does not send.
    let extra = ALERTMANAGER_SAMPLE.replacen("\"receiver\"", "\"orgId\": 1, \"receiver\"", 1);
    assert!(serde_json::from_str::<AlertmanagerPayload>(&extra).is_err());
}

/// A webhook receiver: every POST body it got, answered 200.
fn webhook() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let seen = bodies.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let mut reader = BufReader::new(stream);
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                if let Some((k, v)) = line.split_once(':')
                    && k.eq_ignore_ascii_case("content-length")
                {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_ok() {
                seen.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&body).into_owned());
            }
            let _ = reader
                .get_mut()
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (addr, bodies)
}

/// `trade2026 up` whose gateway listens on `port`: the service the monitor watches and the
/// test stops.
fn watched_platform(dir: &Path, port: u16) -> Platform {
    Platform::start_with_env(
        dir,
        &[],
        &[("TRADE2026_SERVICES__GATEWAY", port.to_string())],
    )
}

/// The alerts `/api/v1/alerts` lists for `alertname` and `service`.
fn api_alerts(monitoring: SocketAddr, alertname: &str, service: &str) -> Vec<Value> {
    let (status, body) = http_get(monitoring, "/api/v1/alerts");
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "success", "{v}");
    v["data"]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["labels"]["alertname"] == alertname && a["labels"]["service"] == service)
        .cloned()
        .collect()
}

/// The webhook payloads for the watched service's ServiceDown with `status`.
fn payloads(bodies: &Mutex<Vec<String>>, status: &str) -> Vec<AlertmanagerPayload> {
    bodies
        .lock()
        .unwrap()
        .iter()
        .map(|b| {
            serde_json::from_str::<AlertmanagerPayload>(b)
                .unwrap_or_else(|e| panic!("not Alertmanager's payload ({e}): {b}"))
        })
        .filter(|p| {
            p.status == status
                && p.alerts
                    .iter()
                    .any(|a| a.labels.get("service").map(String::as_str) == Some("replica"))
        })
        .collect()
}

#[test]
fn an_alert_fires_when_a_service_stops_and_resolves_when_it_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let (hook, bodies) = webhook();
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let replica_dir = dir.path().join("replica");
    let replica = watched_platform(&replica_dir, port);

    let rules = dir.path().join("rules.yml");
    std::fs::write(
        &rules,
        "groups:\n  - name: test\n    rules:\n      - alert: ServiceDown\n        expr: {metric: up}\n        \
         op: '=='\n        threshold: 0\n        for: 2s\n        labels: {severity: page}\n        \
         annotations: {summary: '{{ $labels.service }} is down'}\n",
    )
    .unwrap();
    let config = dir.path().join("monitoring.yaml");
    std::fs::write(
        &config,
        format!(
            "monitoring:\n  scrape_interval_secs: 1\n  scrape_timeout_secs: 1\n  rules_file: {}\n  \
             webhook_url: http://{hook}/hook\n  targets:\n    - {{service: replica, url: 'http://127.0.0.1:{port}/metrics'}}\n",
            rules.display()
        ),
    )
    .unwrap();
    let p = Platform::start(
        &dir.path().join("main"),
        &["--config", config.to_str().unwrap()],
    );
    let page_row = |page: &str| -> String {
        page.split("<tr id=\"service-replica\">")
            .nth(1)
            .and_then(|r| r.split("</tr>").next())
            .unwrap_or_default()
            .to_owned()
    };
    eventually(60, "the replica is scraped and up", || {
        page_row(&http_get(p.monitoring, "/").1)
            .contains(">up</span>")
            .then_some(())
    });
    assert!(api_alerts(p.monitoring, "ServiceDown", "replica").is_empty());

    // Stopped: pending for two seconds, then firing, on the API and at the webhook.
    replica.kill();
    let firing = eventually(60, "ServiceDown fires for the replica", || {
        let alerts = api_alerts(p.monitoring, "ServiceDown", "replica");
        alerts.into_iter().find(|a| a["state"] == "firing")
    });
    assert_eq!(firing["labels"]["severity"], "page");
    assert_eq!(firing["annotations"]["summary"], "replica is down");
    assert_eq!(firing["value"], "0e+00");
    assert!(
        firing["activeAt"].as_str().unwrap().ends_with('Z'),
        "{firing}"
    );
    let sent = eventually(30, "the webhook hears the alert", || {
        payloads(&bodies, "firing").into_iter().next()
    });
    assert_eq!(sent.version, "4");
    assert_eq!(sent.receiver, "trade2026-monitoring");
    assert_eq!(sent.group_labels["alertname"], "ServiceDown");
    assert_eq!(sent.group_key, "{}:{alertname=\"ServiceDown\"}");
    assert_eq!(sent.common_labels["alertname"], "ServiceDown");
    assert_eq!(sent.truncated_alerts, 0);
    assert_eq!(sent.external_url, format!("http://{}", p.monitoring));
    let alert = sent
        .alerts
        .iter()
        .find(|a| a.labels["service"] == "replica")
        .unwrap();
    assert_eq!(alert.status, "firing");
    assert_eq!(alert.ends_at, "0001-01-01T00:00:00Z");
    assert_eq!(alert.annotations["summary"], "replica is down");
    assert_eq!(alert.fingerprint.len(), 16);
    assert!(alert.generator_url.starts_with(&sent.external_url));
    assert!(alert.starts_at.ends_with('Z'));
    let page = http_get(p.monitoring, "/").1;
    assert!(page_row(&page).contains(">down</span>"), "{page}");
    assert!(page.contains("replica is down"), "{page}");

    // Back on the same port: the alert resolves, and the webhook hears that too.
    let replica = watched_platform(&replica_dir, port);
    let resolved = eventually(60, "the webhook hears the resolution", || {
        payloads(&bodies, "resolved").into_iter().next()
    });
    let alert = resolved
        .alerts
        .iter()
        .find(|a| a.labels["service"] == "replica")
        .unwrap();
    assert_eq!(alert.status, "resolved");
    assert_ne!(alert.ends_at, "0001-01-01T00:00:00Z");
    let time = |t: &str| model::Timestamp::parse_rfc3339(t).unwrap();
    assert!(time(&alert.ends_at) > time(&alert.starts_at), "{alert:?}");
    assert!(api_alerts(p.monitoring, "ServiceDown", "replica").is_empty());
    assert!(page_row(&http_get(p.monitoring, "/").1).contains(">up</span>"));
    replica.kill();
}

#[test]
fn a_rules_file_with_a_mistake_stops_up_naming_the_file_and_the_rule() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yml");
    std::fs::write(
        &rules,
        "groups:\n  - name: mine\n    rules:\n      - alert: ErrorsUp\n        \
         expr: {rate: trade2026_http_responses_total}\n        op: '>'\n        threshold: 1\n",
    )
    .unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!("monitoring:\n  rules_file: {}\n", rules.display()),
    )
    .unwrap();
    let mut up = common::bin();
    up.args(["up", "--data-dir"])
        .arg(dir.path().join("data"))
        .arg("--config")
        .arg(&config);
    for service in [
        "GATEWAY",
        "PTRC",
        "EXECUTION_QUALITY",
        "COMPLIANCE_SCANNER",
        "FEATURE_PIPELINE",
        "LOGGER",
        "MONITORING",
    ] {
        up.env(format!("TRADE2026_SERVICES__{service}"), "0");
    }
    let out = up.output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{}: rule ErrorsUp: expr: rate, delta and quantile need a window",
            rules.display()
        )),
        "{stderr}"
    );
}
