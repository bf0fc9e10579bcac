//! A reader of the Prometheus text exposition format (version 0.0.4), what every trade2026 port's
//! `/metrics` serves and every Prometheus client library writes.
//!
//! Written here rather than taken from a crate: the parsers on crates.io split label values on
//! commas and fold a histogram's labelled series into one, which loses exactly the series the
//! rules read (`..._bucket{service,route,le}`).
//!
//! Grammar (prometheus.io/docs/instrumenting/exposition_formats): one sample per line,
//! `name[{label="value",...}] value [timestamp_ms]`; `# HELP` / `# TYPE` lines and other `#`
//! comments; blank lines. Label values escape `\\`, `\"` and `\n`; values are Go floats
//! (`NaN`, `+Inf`, `-Inf`, `1e-3`).

use std::collections::BTreeMap;

/// A label set: name -> value, ordered by name.
pub type Labels = BTreeMap<String, String>;

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Labels,
    pub value: f64,
    /// Milliseconds since the epoch, when the exposition gives one.
    pub timestamp_ms: Option<i64>,
}

/// A line that is not in the format; the whole scrape is refused, as Prometheus does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

/// Every sample of `text`, in order.
pub fn parse(text: &str) -> Result<Vec<Sample>, ParseError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_matches(|c| c == ' ' || c == '\t' || c == '\r');
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        out.push(sample(line).map_err(|message| ParseError {
            line: i + 1,
            message,
        })?);
    }
    Ok(out)
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// A cursor over one line.
struct Cursor<'a> {
    rest: &'a str,
}

impl<'a> Cursor<'a> {
    fn skip_blanks(&mut self) {
        self.rest = self.rest.trim_start_matches([' ', '\t']);
    }

    fn peek(&self) -> Option<char> {
        self.rest.chars().next()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.rest = &self.rest[c.len_utf8()..];
            true
        } else {
            false
        }
    }

    /// A metric or label name (label names may not contain `:`, which a scrape never sends).
    fn name(&mut self, what: &str) -> Result<&'a str, String> {
        let mut chars = self.rest.char_indices();
        match chars.next() {
            Some((_, c)) if is_name_start(c) => {}
            _ => return Err(format!("expected a {what}, found {:?}", snippet(self.rest))),
        }
        let end = chars
            .find(|(_, c)| !is_name_char(*c))
            .map_or(self.rest.len(), |(i, _)| i);
        let (name, rest) = self.rest.split_at(end);
        self.rest = rest;
        Ok(name)
    }

    /// A double-quoted label value with its escapes resolved.
    fn quoted(&mut self) -> Result<String, String> {
        if !self.eat('"') {
            return Err(format!(
                "expected a quoted label value, found {:?}",
                snippet(self.rest)
            ));
        }
        let mut value = String::new();
        let mut chars = self.rest.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.rest = &self.rest[i + 1..];
                    return Ok(value);
                }
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, other)) => {
                        return Err(format!("unknown escape \\{other} in a label value"));
                    }
                    None => break,
                },
                c => value.push(c),
            }
        }
        Err("a label value is not closed".to_owned())
    }

    /// The next blank-separated token.
    fn token(&mut self) -> &'a str {
        self.skip_blanks();
        let end = self.rest.find([' ', '\t']).unwrap_or(self.rest.len());
        let (token, rest) = self.rest.split_at(end);
        self.rest = rest;
        token
    }
}

fn snippet(s: &str) -> String {
    s.chars().take(24).collect()
}

fn sample(line: &str) -> Result<Sample, String> {
    let mut c = Cursor { rest: line };
    let name = c.name("metric name")?.to_owned();
    c.skip_blanks();
    let mut labels = Labels::new();
    if c.eat('{') {
        loop {
            c.skip_blanks();
            if c.eat('}') {
                break;
            }
            let label = c.name("label name")?.to_owned();
            c.skip_blanks();
            if !c.eat('=') {
                return Err(format!("expected = after label {label}"));
            }
            c.skip_blanks();
            let value = c.quoted()?;
            if labels.insert(label.clone(), value).is_some() {
                return Err(format!("label {label} given twice"));
            }
            c.skip_blanks();
            if c.eat(',') {
                continue;
            }
            if c.eat('}') {
                break;
            }
            return Err(format!(
                "expected , or }} after a label, found {:?}",
                snippet(c.rest)
            ));
        }
    }
    let value = c.token();
    let value = go_float(value).ok_or_else(|| format!("{value:?} is not a sample value"))?;
    let timestamp_ms = match c.token() {
        "" => None,
        t => Some(
            t.parse::<i64>()
                .map_err(|_| format!("{t:?} is not a timestamp in milliseconds"))?,
        ),
    };
    c.skip_blanks();
    if !c.rest.is_empty() {
        return Err(format!("unexpected {:?} after the sample", snippet(c.rest)));
    }
    Ok(Sample {
        name,
        labels,
        value,
        timestamp_ms,
    })
}

/// A value as Go's `strconv.ParseFloat` reads it in the exposition format.
pub fn go_float(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        // Rust also reads "inf", "infinity" and "nan" in any case, which the format does not use.
        s if s
            .bytes()
            .any(|b| b.is_ascii_alphabetic() && !matches!(b, b'e' | b'E')) =>
        {
            None
        }
        s => s.parse().ok(),
    }
}

/// Builders the crate's tests share.
#[cfg(test)]
pub(crate) mod test_support {
    use super::{Labels, Sample};

    pub(crate) fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    pub(crate) fn sample(name: &str, pairs: &[(&str, &str)], value: f64) -> Sample {
        Sample {
            name: name.into(),
            labels: labels(pairs),
            value,
            timestamp_ms: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::labels;
    use super::*;

    /// The example of prometheus.io/docs/instrumenting/exposition_formats ("Text format
    /// example"), as published.
    const DOCS_EXAMPLE: &str = r#"# HELP http_requests_total The total number of HTTP requests.
# TYPE http_requests_total counter
http_requests_total{method="post",code="200"} 1027 1395066363000
http_requests_total{method="post",code="400"}    3 1395066363000

# Escaping in label values:
msdos_file_access_time_seconds{path="C:\\DIR\\FILE.TXT",error="Cannot find file:\n\"FILE.TXT\""} 1.458255915e9

# Minimalistic line:
metric_without_timestamp_and_labels 12.47

# A weird metric from before the epoch:
something_weird{problem="division by zero"} +Inf -3982045

# A histogram, which has a pretty complex representation in the text format:
# HELP http_request_duration_seconds A histogram of the request duration.
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.05"} 24054
http_request_duration_seconds_bucket{le="0.1"} 33444
http_request_duration_seconds_bucket{le="0.2"} 100392
http_request_duration_seconds_bucket{le="0.5"} 129389
http_request_duration_seconds_bucket{le="1"} 133988
http_request_duration_seconds_bucket{le="+Inf"} 144320
http_request_duration_seconds_sum 53423
http_request_duration_seconds_count 144320

# Finally a summary, which has a complex representation, too:
# HELP rpc_duration_seconds A summary of the RPC duration in seconds.
# TYPE rpc_duration_seconds summary
rpc_duration_seconds{quantile="0.01"} 3102
rpc_duration_seconds{quantile="0.05"} 3272
rpc_duration_seconds{quantile="0.5"} 4773
rpc_duration_seconds{quantile="0.9"} 9001
rpc_duration_seconds{quantile="0.99"} 76656
rpc_duration_seconds_sum 1.7560473e+07
rpc_duration_seconds_count 2693
"#;

    #[test]
    fn the_documentation_example_reads_as_published() {
        let samples = parse(DOCS_EXAMPLE).unwrap();
        assert_eq!(samples.len(), 20);
        assert_eq!(
            samples[0],
            Sample {
                name: "http_requests_total".into(),
                labels: labels(&[("method", "post"), ("code", "200")]),
                value: 1027.0,
                timestamp_ms: Some(1_395_066_363_000),
            }
        );
        assert_eq!(samples[1].value, 3.0);
        assert_eq!(
            samples[2].labels,
            labels(&[
                ("path", r"C:\DIR\FILE.TXT"),
                ("error", "Cannot find file:\n\"FILE.TXT\"")
            ])
        );
        assert_eq!(samples[2].value, 1.458_255_915e9);
        assert_eq!(samples[3].name, "metric_without_timestamp_and_labels");
        assert!(samples[3].labels.is_empty() && samples[3].timestamp_ms.is_none());
        assert_eq!(samples[4].value, f64::INFINITY);
        assert_eq!(samples[4].timestamp_ms, Some(-3_982_045));
        assert_eq!(samples[10].labels, labels(&[("le", "+Inf")]));
        assert_eq!(samples[10].value, 144_320.0);
        assert_eq!(samples[19].name, "rpc_duration_seconds_count");
    }

    #[test]
    fn what_prometheus_client_writes_reads_back() {
        let m = telemetry::Metrics::service();
        m.http_request_seconds
            .get_or_create(&vec![
                ("service", "gateway".to_owned()),
                ("method", "POST".to_owned()),
                ("route", "/orders/{id}".to_owned()),
                ("status", "201".to_owned()),
            ])
            .observe(0.003);
        let samples = parse(&m.render()).unwrap();
        let bucket = samples
            .iter()
            .find(|s| {
                s.name == "trade2026_http_request_duration_seconds_bucket"
                    && s.labels.get("le").map(String::as_str) == Some("0.005")
            })
            .expect("the 5 ms bucket");
        assert_eq!(bucket.value, 1.0);
        assert_eq!(bucket.labels["route"], "/orders/{id}");
        assert!(
            samples
                .iter()
                .any(|s| s.name == "trade2026_process_resident_memory_bytes")
        );
    }

    #[test]
    fn blanks_and_trailing_commas_are_tolerated() {
        let s = parse("a_b{ x = \"1\" , y=\"2\", } 3\n\tc 4 \r\n").unwrap();
        assert_eq!(s[0].labels, labels(&[("x", "1"), ("y", "2")]));
        assert_eq!((s[0].value, s[1].value), (3.0, 4.0));
        assert!(parse("nan_metric NaN\n").unwrap()[0].value.is_nan());
    }

    #[test]
    fn malformed_lines_are_errors_naming_the_line() {
        for (text, want) in [
            ("ok 1\n{x=\"1\"} 2\n", "line 2: expected a metric name"),
            ("m{x=1} 2", "line 1: expected a quoted label value"),
            ("m{x=\"1\" 2", "line 1: expected , or }"),
            ("m{x=\"1} 2", "line 1: a label value is not closed"),
            ("m{x=\"\\q\"} 2", "line 1: unknown escape \\q"),
            ("m{x=\"1\",x=\"2\"} 2", "line 1: label x given twice"),
            ("m", "line 1: \"\" is not a sample value"),
            ("m one", "line 1: \"one\" is not a sample value"),
            ("m inf", "line 1: \"inf\" is not a sample value"),
            ("m 1 12.5", "line 1: \"12.5\" is not a timestamp"),
            ("m 1 2 3", "line 1: unexpected \"3\" after the sample"),
            ("9m 1", "line 1: expected a metric name"),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.starts_with(want), "{text:?}: {err}");
        }
    }
}
