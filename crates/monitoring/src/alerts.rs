//! Alert states (pending -> firing -> resolved) and what they look like to the outside:
//! Alertmanager's webhook payload (version 4) and Prometheus' `GET /api/v1/alerts` answer.
//! Pure: times are arguments.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::exposition::Labels;
use crate::history::Millis;
use crate::rules::{Rule, Vector};

/// Prometheus' label-set fingerprint (`model.LabelSet.Fingerprint` of prometheus/common): 64-bit
/// FNV-1a over the sorted names and values, each followed by the separator byte 0xff.
pub fn fingerprint(labels: &Labels) -> u64 {
    const OFFSET: u64 = 14_695_981_039_346_656_037;
    const PRIME: u64 = 1_099_511_628_211;
    let mut h = OFFSET;
    let mut add = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(PRIME);
        }
    };
    for (k, v) in labels {
        add(k.as_bytes());
        add(&[0xff]);
        add(v.as_bytes());
        add(&[0xff]);
    }
    h
}

/// `{{ $labels.name }}` and `{{ $value }}` filled in (the Prometheus template forms the rules
/// use); anything else is left as written.
pub fn expand(template: &str, labels: &Labels, value: f64) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let Some(len) = rest[start..].find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let inner = rest[start + 2..start + len].trim();
        match inner.strip_prefix("$labels.") {
            Some(name) => out.push_str(labels.get(name).map_or("", String::as_str)),
            None if inner == "$value" => out.push_str(&format!("{value}")),
            None => out.push_str(&rest[start..start + len + 2]),
        }
        rest = &rest[start + len + 2..];
    }
    out.push_str(rest);
    out
}

/// Go's `strconv.FormatFloat(v, 'e', -1, 64)`, how Prometheus prints an alert's value
/// (`1e+00`, `2.5e-03`).
pub fn go_exp(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let s = format!("{v:e}");
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exp.abs())
}

/// RFC 3339 with nanoseconds as Go prints `time.Time` in JSON (`0001-01-01T00:00:00Z` for
/// "not set", Alertmanager's `endsAt` of a firing alert).
pub fn rfc3339(ms: Option<Millis>) -> String {
    ms.and_then(DateTime::<Utc>::from_timestamp_millis)
        .map_or_else(
            || "0001-01-01T00:00:00Z".to_owned(),
            |t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Pending,
    Firing,
}

/// One alert instance (a rule and the labels of the value that broke it).
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub labels: Labels,
    pub annotations: Labels,
    pub state: State,
    /// When the condition started to hold.
    pub active_at: Millis,
    /// When it turned firing.
    pub fired_at: Option<Millis>,
    /// When it stopped holding (resolved alerts only).
    pub resolved_at: Option<Millis>,
    pub value: f64,
}

impl Alert {
    pub fn fingerprint(&self) -> String {
        format!("{:016x}", fingerprint(&self.labels))
    }

    pub fn alertname(&self) -> &str {
        self.labels.get("alertname").map_or("", String::as_str)
    }
}

/// Every alert instance the rules have raised, and what the webhook still has to hear.
#[derive(Debug, Default)]
pub struct Alerts {
    active: BTreeMap<Labels, Alert>,
    /// Resolved after firing, not yet delivered; capped so an unreachable webhook cannot make
    /// it grow.
    resolved: Vec<Alert>,
    /// Alert names whose group changed since the last delivery.
    dirty: std::collections::BTreeSet<String>,
    /// When each group was last delivered.
    sent_at: HashMap<String, Millis>,
    /// Resolved alerts dropped undelivered because of the cap.
    pub dropped: u64,
}

const MAX_RESOLVED: usize = 1_000;

impl Alerts {
    pub fn new() -> Alerts {
        Alerts::default()
    }

    /// Applies one evaluation of `rule`: `values` are the label sets where its expression has a
    /// value; those whose value meets the condition are active.
    pub fn evaluate(&mut self, rule: &Rule, values: &Vector, now: Millis) {
        let mut seen = std::collections::BTreeSet::new();
        for (series, value) in values {
            if !rule.op.holds(*value, rule.threshold) {
                continue;
            }
            let mut labels = series.clone();
            labels.extend(rule.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
            labels.insert("alertname".into(), rule.alert.clone());
            let annotations: Labels = rule
                .annotations
                .iter()
                .map(|(k, t)| (k.clone(), expand(t, &labels, *value)))
                .collect();
            seen.insert(labels.clone());
            let alert = self.active.entry(labels.clone()).or_insert_with(|| Alert {
                labels,
                annotations: Labels::new(),
                state: State::Pending,
                active_at: now,
                fired_at: None,
                resolved_at: None,
                value: *value,
            });
            alert.value = *value;
            alert.annotations = annotations;
            if alert.state == State::Pending
                && now - alert.active_at >= rule.for_.as_millis() as Millis
            {
                alert.state = State::Firing;
                alert.fired_at = Some(now);
                self.dirty.insert(rule.alert.clone());
            }
        }
        let gone: Vec<Labels> = self
            .active
            .iter()
            .filter(|(l, a)| a.alertname() == rule.alert && !seen.contains(*l))
            .map(|(l, _)| l.clone())
            .collect();
        for labels in gone {
            if let Some(mut alert) = self.active.remove(&labels)
                && alert.state == State::Firing
            {
                alert.resolved_at = Some(now);
                self.dirty.insert(rule.alert.clone());
                if self.resolved.len() >= MAX_RESOLVED {
                    self.resolved.remove(0);
                    self.dropped += 1;
                }
                self.resolved.push(alert);
            }
        }
    }

    /// Pending and firing alerts.
    pub fn active(&self) -> impl Iterator<Item = &Alert> {
        self.active.values()
    }

    /// The webhook payloads due now: one per alert name (Alertmanager grouping by
    /// `alertname`) whose alerts changed, or whose firing alerts were last sent more than
    /// `repeat_ms` ago. Call [`Alerts::delivered`] once a payload has been accepted.
    pub fn due(
        &self,
        now: Millis,
        repeat_ms: Millis,
        receiver: &str,
        external_url: &str,
    ) -> Vec<Payload> {
        let mut names: std::collections::BTreeSet<String> = self.dirty.clone();
        for a in self.active.values().filter(|a| a.state == State::Firing) {
            let name = a.alertname();
            if self.sent_at.get(name).is_none_or(|t| now - t >= repeat_ms) {
                names.insert(name.to_owned());
            }
        }
        names
            .into_iter()
            .filter_map(|name| {
                let alerts: Vec<&Alert> = self
                    .active
                    .values()
                    .filter(|a| a.state == State::Firing && a.alertname() == name)
                    .chain(self.resolved.iter().filter(|a| a.alertname() == name))
                    .collect();
                (!alerts.is_empty()).then(|| Payload::new(&name, &alerts, receiver, external_url))
            })
            .collect()
    }

    /// The group `alertname` was delivered at `now`: its resolved alerts are done.
    pub fn delivered(&mut self, alertname: &str, now: Millis) {
        self.dirty.remove(alertname);
        self.sent_at.insert(alertname.to_owned(), now);
        self.resolved.retain(|a| a.alertname() != alertname);
    }

    /// No webhook configured: nothing to wait for.
    pub fn forget_deliveries(&mut self) {
        self.dirty.clear();
        self.resolved.clear();
    }
}

// --- Alertmanager's webhook payload (version 4) -------------------------------------------------

/// The body Alertmanager POSTs to a `webhook_config` receiver (its documented format, version
/// 4), field for field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Payload {
    pub version: String,
    pub group_key: String,
    pub truncated_alerts: u64,
    pub status: String,
    pub receiver: String,
    pub group_labels: BTreeMap<String, String>,
    pub common_labels: BTreeMap<String, String>,
    pub common_annotations: BTreeMap<String, String>,
    #[serde(rename = "externalURL")]
    pub external_url: String,
    pub alerts: Vec<PayloadAlert>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PayloadAlert {
    pub status: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub starts_at: String,
    pub ends_at: String,
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
    pub fingerprint: String,
}

/// Pairs present with the same value in every map.
fn common(maps: &[&Labels]) -> BTreeMap<String, String> {
    let Some((first, rest)) = maps.split_first() else {
        return BTreeMap::new();
    };
    first
        .iter()
        .filter(|(k, v)| rest.iter().all(|m| m.get(*k) == Some(*v)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

impl Payload {
    fn new(alertname: &str, alerts: &[&Alert], receiver: &str, external_url: &str) -> Payload {
        let firing = alerts.iter().any(|a| a.resolved_at.is_none());
        let group_labels: BTreeMap<String, String> =
            [("alertname".to_owned(), alertname.to_owned())].into();
        Payload {
            version: "4".into(),
            // Alertmanager's form: the route's matchers, then the group's labels.
            group_key: format!("{{}}:{{alertname=\"{alertname}\"}}"),
            truncated_alerts: 0,
            status: if firing { "firing" } else { "resolved" }.into(),
            receiver: receiver.to_owned(),
            common_labels: common(&alerts.iter().map(|a| &a.labels).collect::<Vec<_>>()),
            common_annotations: common(&alerts.iter().map(|a| &a.annotations).collect::<Vec<_>>()),
            group_labels,
            external_url: external_url.to_owned(),
            alerts: alerts
                .iter()
                .map(|a| PayloadAlert {
                    status: if a.resolved_at.is_some() {
                        "resolved"
                    } else {
                        "firing"
                    }
                    .into(),
                    labels: a.labels.clone(),
                    annotations: a.annotations.clone(),
                    starts_at: rfc3339(a.fired_at.or(Some(a.active_at))),
                    ends_at: rfc3339(a.resolved_at),
                    generator_url: format!("{external_url}/#alert-{}", a.fingerprint()),
                    fingerprint: a.fingerprint(),
                })
                .collect(),
        }
    }

    pub fn alertname(&self) -> &str {
        self.group_labels
            .get("alertname")
            .map_or("", String::as_str)
    }
}

// --- Prometheus' GET /api/v1/alerts ---------------------------------------------------------------

/// `{"status":"success","data":{"alerts":[...]}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertsResponse {
    pub status: String,
    pub data: AlertsData,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertsData {
    pub alerts: Vec<ApiAlert>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiAlert {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub state: State,
    pub active_at: String,
    /// The value as Prometheus prints it (`1e+00`).
    pub value: String,
}

impl AlertsResponse {
    pub fn of<'a>(alerts: impl Iterator<Item = &'a Alert>) -> AlertsResponse {
        AlertsResponse {
            status: "success".into(),
            data: AlertsData {
                alerts: alerts
                    .map(|a| ApiAlert {
                        labels: a.labels.clone(),
                        annotations: a.annotations.clone(),
                        state: a.state,
                        active_at: rfc3339(Some(a.active_at)),
                        value: go_exp(a.value),
                    })
                    .collect(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::test_support::labels;
    use crate::rules::RuleFile;

    #[test]
    fn fingerprints_are_prometheus_ones() {
        // prometheus/common model/signature_test.go and fingerprinting_test.go.
        assert_eq!(fingerprint(&Labels::new()), 14_695_981_039_346_656_037);
        assert_eq!(
            fingerprint(&labels(&[
                ("name", "garland, briggs"),
                ("fear", "love is not enough")
            ])),
            5_799_056_148_416_392_346
        );
    }

    #[test]
    fn values_print_as_go_does() {
        assert_eq!(go_exp(1.0), "1e+00");
        assert_eq!(go_exp(0.0025), "2.5e-03");
        assert_eq!(go_exp(123_456.0), "1.23456e+05");
        assert_eq!(go_exp(-4e100), "-4e+100");
        assert_eq!(go_exp(0.0), "0e+00");
        assert_eq!(rfc3339(Some(1_700_000_000_123)), "2023-11-14T22:13:20.123Z");
        assert_eq!(rfc3339(None), "0001-01-01T00:00:00Z");
    }

    #[test]
    fn templates_fill_labels_and_value() {
        let l = labels(&[("service", "ptrc")]);
        assert_eq!(
            expand(
                "{{ $labels.service }} is down ({{$value}}) {{ other }}",
                &l,
                0.5
            ),
            "ptrc is down (0.5) {{ other }}"
        );
        assert_eq!(expand("open {{ $labels.x", &l, 1.0), "open {{ $labels.x");
    }

    fn down_rule(for_: &str) -> Rule {
        let yaml = format!(
            "groups:\n  - name: g\n    rules:\n      - alert: ServiceDown\n        expr: {{metric: up}}\n        \
             op: '=='\n        threshold: 0\n        for: {for_}\n        labels: {{severity: page}}\n        \
             annotations: {{summary: '{{{{ $labels.service }}}} is down'}}\n"
        );
        RuleFile::parse(&yaml, "test").unwrap().groups[0].rules[0].clone()
    }

    #[test]
    fn an_alert_is_pending_then_firing_then_resolved_and_each_change_is_sent_once() {
        let rule = down_rule("30s");
        let mut alerts = Alerts::new();
        let down = vec![
            (labels(&[("service", "ptrc")]), 0.0),
            (labels(&[("service", "gateway")]), 1.0),
        ];
        alerts.evaluate(&rule, &down, 0);
        let a: Vec<&Alert> = alerts.active().collect();
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].state, State::Pending);
        assert_eq!(a[0].annotations["summary"], "ptrc is down");
        assert!(
            alerts.due(0, 3_600_000, "r", "http://m").is_empty(),
            "pending is not sent"
        );

        alerts.evaluate(&rule, &down, 30_000);
        assert_eq!(alerts.active().next().unwrap().state, State::Firing);
        let due = alerts.due(30_000, 3_600_000, "r", "http://m");
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].status, "firing");
        assert_eq!(due[0].alerts[0].ends_at, "0001-01-01T00:00:00Z");
        alerts.delivered("ServiceDown", 30_000);
        assert!(
            alerts.due(35_000, 3_600_000, "r", "http://m").is_empty(),
            "sent once"
        );
        // Still firing an hour later: sent again.
        assert_eq!(alerts.due(3_630_000, 3_600_000, "r", "http://m").len(), 1);

        let up = vec![(labels(&[("service", "ptrc")]), 1.0)];
        alerts.evaluate(&rule, &up, 40_000);
        assert_eq!(alerts.active().count(), 0);
        let due = alerts.due(40_000, 3_600_000, "r", "http://m");
        assert_eq!(due[0].status, "resolved");
        assert_eq!(due[0].alerts[0].status, "resolved");
        assert_eq!(due[0].alerts[0].ends_at, rfc3339(Some(40_000)));
        alerts.delivered("ServiceDown", 40_000);
        assert!(alerts.due(41_000, 3_600_000, "r", "http://m").is_empty());
    }

    #[test]
    fn a_pending_alert_that_clears_is_never_sent() {
        let rule = down_rule("1m");
        let mut alerts = Alerts::new();
        alerts.evaluate(&rule, &vec![(labels(&[("service", "a")]), 0.0)], 0);
        alerts.evaluate(&rule, &vec![(labels(&[("service", "a")]), 1.0)], 10_000);
        assert_eq!(alerts.active().count(), 0);
        assert!(alerts.due(10_000, 1, "r", "x").is_empty());
    }

    #[test]
    fn the_payload_has_alertmanagers_shape() {
        let rule = down_rule("0s");
        let mut alerts = Alerts::new();
        alerts.evaluate(
            &rule,
            &vec![
                (labels(&[("service", "a")]), 0.0),
                (labels(&[("service", "b")]), 0.0),
            ],
            1_700_000_000_000,
        );
        let payload = &alerts.due(1_700_000_000_000, 1, "trade2026", "http://127.0.0.1:8113")[0];
        let json = serde_json::to_value(payload).unwrap();
        for key in [
            "version",
            "groupKey",
            "truncatedAlerts",
            "status",
            "receiver",
            "groupLabels",
            "commonLabels",
            "commonAnnotations",
            "externalURL",
            "alerts",
        ] {
            assert!(json.get(key).is_some(), "{key} in {json}");
        }
        assert_eq!(json["version"], "4");
        assert_eq!(json["groupKey"], "{}:{alertname=\"ServiceDown\"}");
        assert_eq!(
            json["commonLabels"],
            serde_json::json!({"alertname": "ServiceDown", "severity": "page"})
        );
        let alert = &json["alerts"][0];
        assert_eq!(alert["startsAt"], "2023-11-14T22:13:20Z");
        assert_eq!(
            alert["fingerprint"],
            format!(
                "{:016x}",
                fingerprint(&labels(&[
                    ("alertname", "ServiceDown"),
                    ("service", "a"),
                    ("severity", "page")
                ]))
            )
        );
        assert_eq!(
            alert["generatorURL"],
            format!(
                "http://127.0.0.1:8113/#alert-{}",
                alert["fingerprint"].as_str().unwrap()
            )
        );
    }
}
