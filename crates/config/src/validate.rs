//! Range checks that types alone cannot express. Errors are (key path, message) with the same
//! `expected ..., got ...` wording as type errors; the caller adds the file or variable name.

use model::Decimal;

use crate::{Config, FeedMode};

type Check = Result<(), (String, String)>;

fn fail(key: impl Into<String>, message: impl Into<String>) -> Check {
    Err((key.into(), message.into()))
}

fn port(key: &str, p: u16) -> Check {
    if p == 0 {
        return fail(key, "expected a port number between 1 and 65535, got 0");
    }
    Ok(())
}

pub(crate) fn validate(c: &Config) -> Check {
    if c.services.host.trim().is_empty() {
        fail(
            "services.host",
            "expected a host name or IP address, got \"\"",
        )?;
    }
    let h = &c.services.http;
    for (key, value) in [
        ("services.http.max_connections", h.max_connections),
        ("services.http.max_in_flight", h.max_in_flight),
        ("services.http.max_body_bytes", h.max_body_bytes),
        ("services.http.max_streams", h.max_streams),
        ("services.http.max_streams_per_key", h.max_streams_per_key),
        (
            "services.http.request_timeout_secs",
            h.request_timeout_secs as usize,
        ),
        (
            "services.http.idle_timeout_secs",
            h.idle_timeout_secs as usize,
        ),
    ] {
        if value == 0 {
            fail(key, "expected a positive number, got 0")?;
        }
    }
    if c.logger.retention_days == 0 {
        fail(
            "logger.retention_days",
            "expected a positive number of days, got 0",
        )?;
    }
    if c.logger.max_bytes < 1 << 20 {
        fail(
            "logger.max_bytes",
            format!(
                "expected at least 1048576 (1 MiB), got {}",
                c.logger.max_bytes
            ),
        )?;
    }
    let m = &c.monitoring;
    for (key, value) in [
        ("monitoring.scrape_interval_secs", m.scrape_interval_secs),
        ("monitoring.scrape_timeout_secs", m.scrape_timeout_secs),
        (
            "monitoring.repeat_interval_minutes",
            m.repeat_interval_minutes,
        ),
    ] {
        if value == 0 {
            fail(key, "expected a positive number, got 0")?;
        }
    }
    if !(1..=1440).contains(&m.history_minutes) {
        fail(
            "monitoring.history_minutes",
            format!("expected 1 to 1440 minutes, got {}", m.history_minutes),
        )?;
    }
    let http_url = |u: &str| u.starts_with("http://") || u.starts_with("https://");
    if let Some(url) = m.webhook_url.as_deref().filter(|u| !http_url(u)) {
        fail(
            "monitoring.webhook_url",
            format!("expected an http:// or https:// URL, got {url:?}"),
        )?;
    }
    for (i, t) in m.targets.iter().enumerate() {
        if t.service.trim().is_empty() {
            fail(
                format!("monitoring.targets[{i}].service"),
                "expected a service name, got \"\"",
            )?;
        }
        if !http_url(&t.url) {
            fail(
                format!("monitoring.targets[{i}].url"),
                format!("expected an http:// or https:// URL, got {:?}", t.url),
            )?;
        }
    }
    // Service ports may be 0: bind any free port (tests run several platforms side by side);
    // `trade2026 up` prints the port it got.
    port("feast.offline_store.port", c.feast.offline_store.port)?;

    let v = c.modules.risk.var_confidence;
    if v <= Decimal::ZERO || v >= Decimal::ONE {
        fail(
            "modules.risk.var_confidence",
            format!("expected a number between 0 and 1 (exclusive), got {v}"),
        )?;
    }
    if c.materialization.interval_minutes == 0 {
        fail(
            "materialization.interval_minutes",
            "expected a positive number of minutes, got 0",
        )?;
    }
    if c.feed.synthetic.tick_interval_ms == 0 {
        fail(
            "feed.synthetic.tick_interval_ms",
            "expected a positive number of milliseconds, got 0",
        )?;
    }
    match c.feed.mode {
        FeedMode::Synthetic if c.feed.synthetic.symbols.is_empty() => fail(
            "feed.synthetic.symbols",
            "expected at least one symbol when feed.mode is synthetic, got none",
        )?,
        FeedMode::Live if c.feed.live.instruments.is_empty() => fail(
            "feed.live.instruments",
            "expected at least one exchange:SYMBOL spec when feed.mode is live, got none",
        )?,
        _ => {}
    }
    if c.journal.path.as_os_str().is_empty() {
        fail("journal.path", "expected a path, got \"\"")?;
    }
    if c.sinks.path.as_os_str().is_empty() {
        fail("sinks.path", "expected a path, got \"\"")?;
    }
    if c.sinks.batch_size == 0 {
        fail("sinks.batch_size", "expected a positive number, got 0")?;
    }
    if let Err(e) = c.risk.validate() {
        fail("risk", e.to_string())?;
    }
    if let Err(e) = c.venue.validate() {
        fail("venue", e.to_string())?;
    }
    if let Err(e) = c.execution_quality.validate() {
        fail("execution_quality", e.to_string())?;
    }
    if let Err(e) = surveillance::Scanner::new(c.surveillance.clone()) {
        fail("surveillance", e.to_string())?;
    }
    if let Some(t) = &c.engine.day_session_end_utc
        && parse_hh_mm(t).is_none()
    {
        fail(
            "engine.day_session_end_utc",
            format!("expected a UTC time as HH:MM, got {t:?}"),
        )?;
    }
    Ok(())
}

/// `HH:MM` as (hours, minutes).
pub fn parse_hh_mm(s: &str) -> Option<(u32, u32)> {
    let (h, m) = s.split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60 && s.len() == 5).then_some((h, m))
}
