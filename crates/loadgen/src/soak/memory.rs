//! The server's memory over a soak: RSS samples read from its Prometheus `/metrics`, the peak,
//! and the growth rate after warm-up.

use serde::{Deserialize, Serialize};

/// The gauge `telemetry` renders (Prometheus' usual name under the registry's prefix).
pub const RSS_METRIC: &str = "trade2026_process_resident_memory_bytes";

/// Bytes in the MB of the report's figures (decimal megabytes, as `ps`/`top` "M" is not).
pub const BYTES_PER_MB: f64 = 1_000_000.0;

/// One sample: seconds since the soak started and the resident set size in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RssSample {
    pub t_s: f64,
    pub rss_bytes: u64,
}

/// The value of the first sample of metric `name` in Prometheus text exposition format
/// (`name value [timestamp]` or `name{labels} value`); `None` when absent or not a number.
pub fn metric_value(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?;
        let rest = if let Some(labelled) = rest.strip_prefix('{') {
            // The value follows the closing brace of the label set.
            &labelled[labelled.rfind('}')? + 1..]
        } else {
            rest
        };
        // `name_other` must not match `name`.
        if !rest.starts_with([' ', '\t']) {
            return None;
        }
        rest.split_whitespace().next()?.parse::<f64>().ok()
    })
}

/// The RSS in bytes from a `/metrics` page.
pub fn rss_from_metrics(text: &str) -> Option<u64> {
    let v = metric_value(text, RSS_METRIC)?;
    // A gauge of bytes is a whole, non-negative number well inside f64's exact range.
    (v.is_finite() && v >= 0.0 && v <= u64::MAX as f64).then_some(v as u64)
}

/// The least-squares slope of RSS over time for the samples taken at or after `warmup_s`, in
/// MB per minute. `None` with fewer than two such samples or when they share one time.
pub fn rss_slope_mb_per_min(samples: &[RssSample], warmup_s: f64) -> Option<f64> {
    let after: Vec<(f64, f64)> = samples
        .iter()
        .filter(|s| s.t_s >= warmup_s)
        .map(|s| (s.t_s, s.rss_bytes as f64))
        .collect();
    if after.len() < 2 {
        return None;
    }
    let n = after.len() as f64;
    let mean_t = after.iter().map(|(t, _)| t).sum::<f64>() / n;
    let mean_y = after.iter().map(|(_, y)| y).sum::<f64>() / n;
    let (mut sty, mut stt) = (0.0, 0.0);
    for (t, y) in &after {
        sty += (t - mean_t) * (y - mean_y);
        stt += (t - mean_t) * (t - mean_t);
    }
    if stt <= 0.0 {
        return None;
    }
    let bytes_per_s = sty / stt;
    Some(bytes_per_s * 60.0 / BYTES_PER_MB)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t_s: f64, mb: f64) -> RssSample {
        RssSample {
            t_s,
            rss_bytes: (mb * BYTES_PER_MB) as u64,
        }
    }

    #[test]
    fn the_gauge_is_read_from_a_metrics_page() {
        let page = "# HELP trade2026_process_resident_memory_bytes Resident memory size in bytes.\n\
            # TYPE trade2026_process_resident_memory_bytes gauge\n\
            trade2026_process_resident_memory_bytes_other 5\n\
            trade2026_process_resident_memory_bytes 187527168\n\
            trade2026_http_responses_total{service=\"gateway\",status=\"201\"} 12\n";
        assert_eq!(rss_from_metrics(page), Some(187_527_168));
        assert_eq!(
            metric_value(page, "trade2026_http_responses_total"),
            Some(12.0)
        );
        assert_eq!(rss_from_metrics("trade2026_up 1\n"), None);
        assert_eq!(rss_from_metrics(&format!("{RSS_METRIC} NaN\n")), None);
        assert_eq!(rss_from_metrics(&format!("{RSS_METRIC} -1\n")), None);
        assert_eq!(
            rss_from_metrics(&format!("{RSS_METRIC} 1.5e3 1700000000\n")),
            Some(1500)
        );
    }

    #[test]
    fn slope_of_a_straight_line_is_exact() {
        // +2 MB every 30 s = 4 MB/min.
        let samples: Vec<RssSample> = (0..10)
            .map(|k| s(30.0 * k as f64, 100.0 + 2.0 * k as f64))
            .collect();
        let slope = rss_slope_mb_per_min(&samples, 0.0).unwrap();
        assert!((slope - 4.0).abs() < 1e-9, "{slope}");
    }

    #[test]
    fn warmup_samples_are_left_out() {
        // Fast growth during the first minute, flat afterwards.
        let samples = [
            s(0.0, 50.0),
            s(30.0, 150.0),
            s(60.0, 200.0),
            s(90.0, 200.0),
            s(120.0, 200.0),
        ];
        assert_eq!(rss_slope_mb_per_min(&samples, 60.0), Some(0.0));
        assert!(rss_slope_mb_per_min(&samples, 0.0).unwrap() > 50.0);
    }

    #[test]
    fn least_squares_over_noisy_samples() {
        // t = 0, 60, 120, 180 s; y = 10, 12, 11, 15 MB: slope = sum(dt*dy)/sum(dt^2)
        // = (-90*-2 + -30*0 + 30*-1 + 90*3) / (8100+900+900+8100) MB/s = 420/18000 MB/s
        // = 1.4 MB/min.
        let samples = [s(0.0, 10.0), s(60.0, 12.0), s(120.0, 11.0), s(180.0, 15.0)];
        let slope = rss_slope_mb_per_min(&samples, 0.0).unwrap();
        assert!((slope - 1.4).abs() < 1e-9, "{slope}");
        // Shrinking memory is a negative slope.
        let down = [s(0.0, 20.0), s(60.0, 19.0)];
        assert!((rss_slope_mb_per_min(&down, 0.0).unwrap() + 1.0).abs() < 1e-9);
    }

    #[test]
    fn too_few_samples_have_no_slope() {
        assert_eq!(rss_slope_mb_per_min(&[], 0.0), None);
        assert_eq!(rss_slope_mb_per_min(&[s(5.0, 1.0)], 0.0), None);
        assert_eq!(rss_slope_mb_per_min(&[s(5.0, 1.0), s(5.0, 2.0)], 0.0), None);
        assert_eq!(
            rss_slope_mb_per_min(&[s(5.0, 1.0), s(65.0, 2.0)], 10.0),
            None
        );
    }
}
