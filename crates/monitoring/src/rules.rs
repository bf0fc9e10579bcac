//! Alert rules: their YAML form, and their evaluation over the [`History`] (pure: the time is
//! an argument).
//!
//! A rule file has Prometheus' outer shape (`groups: [{name, rules: [...]}]`, each rule with
//! `alert`, `for`, `labels`, `annotations`), but `expr` is a small structured expression instead
//! of PromQL, with a comparison beside it:
//!
//! ```yaml
//! groups:
//!   - name: trade2026
//!     rules:
//!       - alert: HighErrorRate
//!         expr:
//!           ratio:
//!             numerator: {rate: trade2026_http_responses_total, match: {status: "5??"}, window: 5m, by: [service]}
//!             denominator: {rate: trade2026_http_responses_total, window: 5m, by: [service]}
//!         op: ">"
//!         threshold: 0.05
//!         for: 5m
//!         labels: {severity: warning}
//!         annotations: {summary: "{{ $labels.service }} answers {{ $value }} of requests with 5xx"}
//! ```
//!
//! Expressions (each gives one value per label set):
//! - `metric: NAME` — the newest value of each series (stale after three scrape intervals);
//! - `rate: NAME, window` — per-second increase of a counter over the window (resets handled);
//! - `delta: NAME, window` — newest minus oldest value of a gauge within the window;
//! - `quantile: Q, histogram: NAME, window` — Prometheus' `histogram_quantile` over the
//!   buckets' increase within the window;
//! - `ratio: {numerator, denominator}` — the two expressions divided where their labels match.
//!
//! Each takes `match: {label: pattern}` (`*` any run, `?` one character) and `by: [labels]`:
//! series are then combined per distinct value of those labels (summed for `rate` and
//! `quantile`, the largest for `metric` and `delta`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use crate::exposition::Labels;
use crate::history::{History, Millis};

/// The built-in rules (the same alerts as `deploy/prometheus/rules.yml`, in this format).
pub const DEFAULT_RULES: &str = include_str!("default_rules.yml");

/// A rule file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    pub groups: Vec<Group>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    pub name: String,
    pub rules: Vec<Rule>,
}

/// One alerting rule.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub alert: String,
    pub expr: Expr,
    pub op: Op,
    pub threshold: f64,
    /// How long the condition must hold before the alert fires (pending until then).
    #[serde(default, rename = "for", deserialize_with = "duration")]
    pub for_: Duration,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Shown on the status page as a service-level objective with this title.
    #[serde(default)]
    pub sla: Option<String>,
    /// How the status page prints values.
    #[serde(default)]
    pub unit: Unit,
}

/// The comparison that makes a value alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum Op {
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = "==")]
    Eq,
    #[serde(rename = "!=")]
    Ne,
}

impl Op {
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Op::Gt => value > threshold,
            Op::Ge => value >= threshold,
            Op::Lt => value < threshold,
            Op::Le => value <= threshold,
            Op::Eq => value == threshold,
            Op::Ne => value != threshold,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }
}

/// How values print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    #[default]
    Number,
    Seconds,
    Bytes,
    Ratio,
}

impl Unit {
    pub fn format(self, v: f64) -> String {
        if !v.is_finite() {
            return format!("{v}");
        }
        match self {
            Unit::Number => trim(format!("{v:.2}")),
            Unit::Ratio => format!("{}%", trim(format!("{:.2}", v * 100.0))),
            Unit::Seconds if v.abs() < 1e-3 => format!("{} µs", trim(format!("{:.1}", v * 1e6))),
            Unit::Seconds if v.abs() < 1.0 => format!("{} ms", trim(format!("{:.2}", v * 1e3))),
            Unit::Seconds => format!("{} s", trim(format!("{v:.1}"))),
            Unit::Bytes => {
                let mib = v / f64::from(1 << 20);
                format!("{} MiB", trim(format!("{mib:.1}")))
            }
        }
    }
}

fn trim(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

/// An expression as written in YAML; [`Expr::check`] says whether it is well formed.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expr {
    pub metric: Option<String>,
    pub rate: Option<String>,
    pub delta: Option<String>,
    pub histogram: Option<String>,
    pub quantile: Option<f64>,
    pub ratio: Option<Box<Ratio>>,
    #[serde(default, deserialize_with = "opt_duration")]
    pub window: Option<Duration>,
    #[serde(default, rename = "match")]
    pub matching: BTreeMap<String, String>,
    pub by: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ratio {
    pub numerator: Expr,
    pub denominator: Expr,
}

/// What went wrong reading rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RulesError {
    #[error("{origin}: {message}")]
    Syntax { origin: String, message: String },
    #[error("{origin}: rule {alert}: {message}")]
    Rule {
        origin: String,
        alert: String,
        message: String,
    },
}

/// The series an expression reads, for the history to keep.
fn names(e: &Expr, out: &mut Vec<String>) {
    for name in [&e.metric, &e.rate, &e.delta].into_iter().flatten() {
        out.push(name.clone());
    }
    if let Some(h) = &e.histogram {
        out.push(format!("{h}_bucket"));
    }
    if let Some(r) = &e.ratio {
        names(&r.numerator, out);
        names(&r.denominator, out);
    }
}

impl Expr {
    /// Exactly one kind, with the fields it needs.
    pub fn check(&self) -> Result<(), String> {
        let kinds = [
            self.metric.is_some(),
            self.rate.is_some(),
            self.delta.is_some(),
            self.histogram.is_some() || self.quantile.is_some(),
            self.ratio.is_some(),
        ];
        if kinds.iter().filter(|k| **k).count() != 1 {
            return Err(
                "expr: give exactly one of metric, rate, delta, quantile + histogram, ratio".into(),
            );
        }
        let windowed = self.rate.is_some() || self.delta.is_some() || self.histogram.is_some();
        if windowed && self.window.is_none_or(|w| w.is_zero()) {
            return Err("expr: rate, delta and quantile need a window (e.g. 5m)".into());
        }
        if self.histogram.is_some() != self.quantile.is_some() {
            return Err("expr: quantile and histogram go together".into());
        }
        if let Some(q) = self.quantile
            && !(0.0..=1.0).contains(&q)
        {
            return Err(format!("expr: quantile must be between 0 and 1, got {q}"));
        }
        if let Some(r) = &self.ratio {
            r.numerator.check()?;
            r.denominator.check()?;
        }
        Ok(())
    }
}

impl RuleFile {
    /// Reads and checks a rule file; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<RuleFile, RulesError> {
        let file: RuleFile = serde_yaml_ng::from_str(text).map_err(|e| RulesError::Syntax {
            origin: origin.to_owned(),
            message: e.to_string(),
        })?;
        let mut seen = std::collections::BTreeSet::new();
        for rule in file.rules() {
            let bad = |message: String| RulesError::Rule {
                origin: origin.to_owned(),
                alert: rule.alert.clone(),
                message,
            };
            if !valid_label_name(&rule.alert) {
                return Err(bad(
                    "the alert name must be a label value of letters, digits and _".into(),
                ));
            }
            rule.expr.check().map_err(bad)?;
            if !rule.threshold.is_finite() {
                return Err(bad("threshold must be a number".into()));
            }
            if let Some(name) = rule.labels.keys().find(|k| !valid_label_name(k)) {
                return Err(bad(format!(
                    "label name {name:?} is not [a-zA-Z_][a-zA-Z0-9_]*"
                )));
            }
            if !seen.insert(rule.alert.clone()) {
                return Err(bad("the alert name is used by another rule".into()));
            }
        }
        Ok(file)
    }

    /// The built-in rules.
    pub fn defaults() -> RuleFile {
        RuleFile::parse(DEFAULT_RULES, "built-in rules")
            .unwrap_or_else(|e| unreachable!("the built-in rules are tested: {e}"))
    }

    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.groups.iter().flat_map(|g| g.rules.iter())
    }

    /// Every metric name the rules read.
    pub fn metric_names(&self) -> Vec<String> {
        let mut out = Vec::new();
        for r in self.rules() {
            names(&r.expr, &mut out);
        }
        out.sort();
        out.dedup();
        out
    }
}

pub fn valid_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `30s`, `5m`, `1h`, `500ms`, `1h30m`, `0`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("{s:?} is not a duration (e.g. 30s, 5m, 1h)");
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(bad());
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n * 60),
            "h" => Duration::from_secs(n * 3600),
            "d" => Duration::from_secs(n * 86_400),
            _ => return Err(bad()),
        };
        total += unit;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    parse_duration(&s).map_err(serde::de::Error::custom)
}

fn opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d).map(Some)
}

// --- evaluation ---------------------------------------------------------------------------------

/// One value per label set.
pub type Vector = Vec<(Labels, f64)>;

/// `*` matches any run of characters, `?` one.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // Iterative matching with backtracking to the last `*`.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

fn matches(labels: &Labels, matching: &BTreeMap<String, String>) -> bool {
    matching
        .iter()
        .all(|(k, pattern)| glob(pattern, labels.get(k).map_or("", String::as_str)))
}

/// The labels `by` keeps (all of them but `drop` when `by` is not given).
fn group_key(labels: &Labels, by: Option<&[String]>, drop: &str) -> Labels {
    match by {
        Some(by) => by
            .iter()
            .filter_map(|k| labels.get(k).map(|v| (k.clone(), v.clone())))
            .collect(),
        None => labels
            .iter()
            .filter(|(k, _)| k.as_str() != drop)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

/// The increase of a counter over its points, a drop counted as a reset to 0.
pub fn increase(points: &[(Millis, f64)]) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    Some(
        points
            .windows(2)
            .map(|w| {
                let (a, b) = (w[0].1, w[1].1);
                if b >= a { b - a } else { b }
            })
            .sum(),
    )
}

/// Prometheus' `histogram_quantile` over cumulative `(upper bound, count)` buckets (which must
/// include `+Inf`): linear interpolation inside the bucket the rank falls in; a rank in the
/// `+Inf` bucket gives the highest finite bound. `None` without observations.
pub fn bucket_quantile(q: f64, buckets: &mut [(f64, f64)]) -> Option<f64> {
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    if buckets.len() < 2 || buckets.last()?.0 != f64::INFINITY {
        return None;
    }
    // Counts must not fall with the bound (rates of separately scraped buckets may jitter).
    let mut max = 0.0f64;
    for b in buckets.iter_mut() {
        max = max.max(b.1);
        b.1 = max;
    }
    let observations = buckets.last()?.1;
    if observations <= 0.0 {
        return None;
    }
    let rank = q * observations;
    let b = buckets.iter().position(|(_, c)| *c >= rank)?;
    if b == buckets.len() - 1 {
        return Some(buckets[b - 1].0);
    }
    if b == 0 && buckets[0].0 <= 0.0 {
        return Some(buckets[0].0);
    }
    let (mut start, end, mut count, mut rank) = (0.0, buckets[b].0, buckets[b].1, rank);
    if b > 0 {
        start = buckets[b - 1].0;
        count -= buckets[b - 1].1;
        rank -= buckets[b - 1].1;
    }
    if count <= 0.0 {
        return Some(end);
    }
    Some(start + (end - start) * (rank / count))
}

/// Evaluates `e` at `now`; `stale_ms` is how old a newest point may be and still count.
pub fn eval(e: &Expr, h: &History, now: Millis, stale_ms: Millis) -> Vector {
    let window_ms = |e: &Expr| e.window.map_or(0, |w| w.as_millis() as Millis);
    let by = e.by.as_deref();
    let mut groups: BTreeMap<Labels, f64> = BTreeMap::new();
    if let Some(name) = &e.metric {
        for (labels, ring) in h.series(name).filter(|(l, _)| matches(l, &e.matching)) {
            if let Some((t, v)) = ring.last().filter(|(t, _)| *t >= now - stale_ms) {
                let _ = t;
                let slot = groups.entry(group_key(labels, by, "")).or_insert(v);
                *slot = slot.max(v);
            }
        }
    } else if let Some(name) = &e.rate {
        let from = now - window_ms(e);
        for (labels, ring) in h.series(name).filter(|(l, _)| matches(l, &e.matching)) {
            let points: Vec<_> = ring.range(from, now).collect();
            let span = points.last().zip(points.first()).map(|(l, f)| l.0 - f.0);
            if let (Some(inc), Some(span)) = (increase(&points), span)
                && span > 0
            {
                *groups.entry(group_key(labels, by, "")).or_default() +=
                    inc / (span as f64 / 1000.0);
            }
        }
    } else if let Some(name) = &e.delta {
        let from = now - window_ms(e);
        for (labels, ring) in h.series(name).filter(|(l, _)| matches(l, &e.matching)) {
            let points: Vec<_> = ring.range(from, now).collect();
            if let (Some(first), Some(last)) = (points.first(), points.last())
                && points.len() >= 2
            {
                let v = last.1 - first.1;
                let slot = groups.entry(group_key(labels, by, "")).or_insert(v);
                *slot = slot.max(v);
            }
        }
    } else if let (Some(name), Some(q)) = (&e.histogram, e.quantile) {
        let from = now - window_ms(e);
        let mut per_group: BTreeMap<Labels, BTreeMap<String, (f64, f64)>> = BTreeMap::new();
        let bucket_name = format!("{name}_bucket");
        for (labels, ring) in h
            .series(&bucket_name)
            .filter(|(l, _)| matches(l, &e.matching))
        {
            let Some(le) = labels.get("le") else { continue };
            let Some(bound) = crate::exposition::go_float(le) else {
                continue;
            };
            let points: Vec<_> = ring.range(from, now).collect();
            if let Some(inc) = increase(&points) {
                let slot = per_group
                    .entry(group_key(labels, by, "le"))
                    .or_default()
                    .entry(le.clone())
                    .or_insert((bound, 0.0));
                slot.1 += inc;
            }
        }
        for (labels, buckets) in per_group {
            let mut buckets: Vec<(f64, f64)> = buckets.into_values().collect();
            if let Some(v) = bucket_quantile(q, &mut buckets) {
                groups.insert(labels, v);
            }
        }
    } else if let Some(r) = &e.ratio {
        let denominators: BTreeMap<Labels, f64> =
            eval(&r.denominator, h, now, stale_ms).into_iter().collect();
        for (labels, num) in eval(&r.numerator, h, now, stale_ms) {
            if let Some(den) = denominators.get(&labels).filter(|d| **d != 0.0) {
                groups.insert(labels, num / den);
            }
        }
        // A label set with a denominator but no numerator series (no 5xx yet) is 0.
        for (labels, den) in denominators {
            if den != 0.0 {
                groups.entry(labels).or_insert(0.0);
            }
        }
    }
    groups.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::test_support::sample as s;
    use crate::history::Limits;

    fn history() -> History {
        History::new(
            Limits {
                window_ms: 3_600_000,
                points: 1000,
                max_series: 10_000,
            },
            None,
        )
    }

    fn expr(yaml: &str) -> Expr {
        let e: Expr = serde_yaml_ng::from_str(yaml).unwrap();
        e.check().unwrap();
        e
    }

    #[test]
    fn the_built_in_rules_parse_and_name_what_they_read() {
        let rules = RuleFile::defaults();
        let names: Vec<&str> = rules.rules().map(|r| r.alert.as_str()).collect();
        for want in [
            "ServiceDown",
            "RiskCheckP50AboveSLA",
            "OmsP50AboveSLA",
            "OmsP99AboveSLA",
            "FeaturesStale",
            "ConsumerLagHigh",
            "FeedSilent",
            "HighErrorRate",
            "MemoryGrowth",
            "ConsumersStarvedOfCpu",
        ] {
            assert!(names.contains(&want), "{want} in {names:?}");
        }
        let read = rules.metric_names();
        assert!(
            read.contains(&"trade2026_risk_check_seconds_bucket".to_owned()),
            "{read:?}"
        );
        assert!(read.contains(&"up".to_owned()), "{read:?}");
        assert_eq!(rules.rules().filter(|r| r.sla.is_some()).count(), 4);
    }

    /// deploy/prometheus/rules.yml states the same alerts in PromQL: same names, same `for`, and
    /// each expression compares with the same threshold.
    #[test]
    fn the_built_in_rules_match_the_promql_ones_in_deploy() {
        let text = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../deploy/prometheus/rules.yml"
        ));
        let promql: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).unwrap();
        let promql: Vec<&serde_yaml_ng::Value> = promql["groups"][0]["rules"]
            .as_sequence()
            .unwrap()
            .iter()
            .collect();
        let ours = RuleFile::defaults();
        assert_eq!(promql.len(), ours.rules().count());
        for rule in ours.rules() {
            let theirs = promql
                .iter()
                .find(|r| r["alert"].as_str() == Some(rule.alert.as_str()))
                .unwrap_or_else(|| panic!("{} is not in deploy/prometheus/rules.yml", rule.alert));
            let for_ = parse_duration(theirs["for"].as_str().unwrap()).unwrap();
            assert_eq!(for_, rule.for_, "{}", rule.alert);
            let expr = theirs["expr"].as_str().unwrap().trim();
            let threshold = format!("{} {}", rule.op.as_str(), rule.threshold);
            assert!(
                expr.ends_with(&threshold),
                "{}: {expr} vs {threshold}",
                rule.alert
            );
            assert_eq!(
                theirs["labels"]["severity"].as_str(),
                rule.labels.get("severity").map(String::as_str)
            );
        }
    }

    #[test]
    fn bad_rule_files_are_refused_with_the_rule_named() {
        let base = "groups:\n  - name: g\n    rules:\n      - alert: A\n";
        for (tail, want) in [
            (
                "        expr: {metric: up}\n        op: '=='\n        threshold: 0\n        for: 5x\n",
                "\"5x\" is not a duration",
            ),
            (
                "        expr: {rate: x}\n        op: '>'\n        threshold: 1\n",
                "rule A: expr: rate, delta and quantile need a window",
            ),
            (
                "        expr: {metric: up, rate: x, window: 1m}\n        op: '>'\n        threshold: 1\n",
                "rule A: expr: give exactly one of",
            ),
            (
                "        expr: {quantile: 1.5, histogram: h, window: 1m}\n        op: '>'\n        threshold: 1\n",
                "rule A: expr: quantile must be between 0 and 1",
            ),
            (
                "        expr: {metric: up}\n        op: '=>'\n        threshold: 1\n",
                "unknown variant `=>`",
            ),
            (
                "        expr: {metric: up}\n        op: '>'\n        threshold: 1\n        lables: {}\n",
                "unknown field `lables`",
            ),
        ] {
            let err = RuleFile::parse(&format!("{base}{tail}"), "rules.yml")
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("rules.yml: "), "{err}");
            assert!(err.contains(want), "{want} in {err}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        for bad in ["", "5", "m", "5 m", "-5m", "5mm"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn globs() {
        assert!(glob("5??", "503") && !glob("5??", "200") && !glob("5??", "5031"));
        assert!(glob("*", "") && glob("/orders*", "/orders/{id}") && glob("a*b*c", "axxbyyc"));
        assert!(!glob("a*b", "ac"));
    }

    /// The known answers of Prometheus' own `histogram_quantile` on the buckets of the
    /// exposition-format documentation's example (le 0.05: 24054, 0.1: 33444, 0.2: 100392,
    /// 0.5: 129389, 1: 133988, +Inf: 144320), worked by its algorithm: the median's rank 72160
    /// falls in (0.1, 0.2] holding 66948: 0.1 + 0.1 * (72160 - 33444) / 66948.
    #[test]
    fn histogram_quantile_interpolates_like_prometheus() {
        let docs = [
            (0.05, 24054.0),
            (0.1, 33444.0),
            (0.2, 100_392.0),
            (0.5, 129_389.0),
            (1.0, 133_988.0),
            (f64::INFINITY, 144_320.0),
        ];
        let median = bucket_quantile(0.5, &mut docs.clone()).unwrap();
        assert!((median - (0.1 + 0.1 * (72160.0 - 33444.0) / 66948.0)).abs() < 1e-12);
        // The 99th percentile's rank is in +Inf: the highest finite bound.
        assert_eq!(bucket_quantile(0.99, &mut docs.clone()), Some(1.0));
        // At a bucket bound exactly (the SLA buckets): all 10 of 20 observations at or below.
        let mut sla = [(0.0015, 10.0), (0.0025, 20.0), (f64::INFINITY, 20.0)];
        assert_eq!(bucket_quantile(0.5, &mut sla), Some(0.0015));
        assert_eq!(
            bucket_quantile(0.5, &mut [(1.0, 0.0), (f64::INFINITY, 0.0)]),
            None
        );
        assert_eq!(bucket_quantile(0.5, &mut [(1.0, 3.0)]), None);
    }

    #[test]
    fn counter_increase_counts_a_reset_from_zero() {
        assert_eq!(
            increase(&[(0, 5.0), (1, 8.0), (2, 2.0), (3, 4.0)]),
            Some(3.0 + 2.0 + 2.0)
        );
        assert_eq!(increase(&[(0, 5.0)]), None);
    }

    #[test]
    fn rates_ratios_and_groups() {
        let mut h = history();
        // 10 s apart: gateway answers 100 requests, 5 of them 503; ptrc 10, none failing.
        let at = |h: &mut History, t: i64, ok: f64, bad: f64, ptrc: f64| {
            h.record(
                "gateway",
                t,
                vec![
                    s("req_total", &[("status", "201"), ("route", "/orders")], ok),
                    s("req_total", &[("status", "503"), ("route", "/orders")], bad),
                ],
            );
            h.record("ptrc", t, vec![s("req_total", &[("status", "200")], ptrc)]);
        };
        at(&mut h, 0, 100.0, 10.0, 5.0);
        at(&mut h, 10_000, 195.0, 15.0, 15.0);
        let e = expr(
            "ratio:\n  numerator: {rate: req_total, match: {status: '5??'}, window: 1m, by: [service]}\n  \
             denominator: {rate: req_total, window: 1m, by: [service]}\n",
        );
        let v = eval(&e, &h, 10_000, 15_000);
        let by_service: BTreeMap<String, f64> = v
            .into_iter()
            .map(|(l, v)| (l["service"].clone(), v))
            .collect();
        assert_eq!(by_service["gateway"], 0.05);
        assert_eq!(by_service["ptrc"], 0.0);
        // The plain rate, per series: (195 - 100) / 10 s.
        let v = eval(
            &expr("{rate: req_total, window: 1m, match: {status: '201'}}"),
            &h,
            10_000,
            15_000,
        );
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].1, 9.5);
        assert_eq!(v[0].0["route"], "/orders");
    }

    /// Every port of `up` shows the process-wide lane counter; the built-in rule reads the
    /// gateway's only, so one starved process raises one alert.
    #[test]
    fn starved_consumers_are_alerted_once_per_process() {
        let rules = RuleFile::defaults();
        let rule = rules
            .rules()
            .find(|r| r.alert == "ConsumersStarvedOfCpu")
            .expect("built-in rule");
        let mut h = history();
        for (t, raises) in [(0, 0.0), (60_000, 6.0), (120_000, 12.0)] {
            for service in ["gateway", "ptrc"] {
                h.record(
                    service,
                    t,
                    vec![s("trade2026_background_lane_raises_total", &[], raises)],
                );
            }
        }
        let v = eval(&rule.expr, &h, 120_000, 15_000);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].0["service"], "gateway");
        assert!(
            (v[0].1 - 0.1).abs() < 1e-12,
            "6 raises a minute: {}",
            v[0].1
        );
        assert!(v[0].1 > rule.threshold);
    }

    #[test]
    fn gauges_go_stale_and_deltas_take_the_largest_growth() {
        let mut h = history();
        h.record(
            "gateway",
            0,
            vec![s("rss", &[], 100.0), s("lag", &[("consumer", "a")], 5.0)],
        );
        h.record("ptrc", 0, vec![s("rss", &[], 100.0)]);
        h.record("gateway", 60_000, vec![s("rss", &[], 400.0)]);
        h.record("ptrc", 60_000, vec![s("rss", &[], 150.0)]);
        let v = eval(
            &expr("{delta: rss, window: 30m, by: []}"),
            &h,
            60_000,
            15_000,
        );
        assert_eq!(v, vec![(Labels::new(), 300.0)]);
        // The lag series stopped reporting a minute ago: no value rather than an old one.
        assert!(eval(&expr("{metric: lag}"), &h, 60_000, 15_000).is_empty());
        assert_eq!(eval(&expr("{metric: lag}"), &h, 10_000, 15_000).len(), 1);
    }

    #[test]
    fn quantiles_over_the_window_from_bucket_increases() {
        let mut h = history();
        let buckets = |h: &mut History, t: i64, fast: f64, slow: f64| {
            h.record(
                "gateway",
                t,
                vec![
                    s("lat_bucket", &[("le", "0.0015")], fast),
                    s("lat_bucket", &[("le", "0.0025")], fast + slow),
                    s("lat_bucket", &[("le", "+Inf")], fast + slow),
                ],
            );
        };
        // Before the window: 1000 fast ones. Within it: 10 fast, 30 slow -> P50 above 1.5 ms.
        buckets(&mut h, 0, 0.0, 0.0);
        buckets(&mut h, 300_000, 1000.0, 0.0);
        buckets(&mut h, 600_000, 1010.0, 30.0);
        let e = expr("{quantile: 0.5, histogram: lat, window: 5m}");
        let v = eval(&e, &h, 600_000, 15_000);
        assert_eq!(v.len(), 1);
        assert!(!v[0].0.contains_key("le"));
        // Rank 20 of 40 in (0.0015, 0.0025] holding 30: 0.0015 + 0.001 * 10 / 30.
        assert!(
            (v[0].1 - (0.0015 + 0.001 * 10.0 / 30.0)).abs() < 1e-12,
            "{v:?}"
        );
        // Over the whole hour the fast ones dominate: rank 520 of 1040 in (0, 0.0015].
        let e = expr("{quantile: 0.5, histogram: lat, window: 1h}");
        let v = eval(&e, &h, 600_000, 15_000);
        assert!((v[0].1 - 0.0015 * 520.0 / 1010.0).abs() < 1e-15, "{v:?}");
    }
}
