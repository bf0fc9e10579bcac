//! Replay recorded, normalized events (the NDJSON that `trade2026 md normalize` writes) at the
//! pace they were recorded, scaled, or as fast as the receiver takes them.

use std::io::BufRead;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use model::Event;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::FeedError;

/// How fast to replay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Speed {
    /// No pauses at all.
    Max,
    /// Recorded pace multiplied by this factor (1.0 = real time, 10.0 = ten times faster).
    Factor(f64),
}

impl FromStr for Speed {
    type Err = FeedError;
    fn from_str(s: &str) -> Result<Self, FeedError> {
        let bad = |reason: &str| FeedError::BadSpec {
            spec: s.to_string(),
            reason: reason.to_string(),
        };
        if s.eq_ignore_ascii_case("max") {
            return Ok(Speed::Max);
        }
        let f: f64 = s
            .trim_end_matches(['x', 'X'])
            .parse()
            .map_err(|_| bad("expected `max` or a positive factor such as 1, 10 or 0.5x"))?;
        if f.is_finite() && f > 0.0 {
            Ok(Speed::Factor(f))
        } else {
            Err(bad("the factor must be a positive number"))
        }
    }
}

/// Read NDJSON events; a bad line is an error naming the file and line.
pub fn read_events(path: &Path) -> Result<Vec<Event>, FeedError> {
    let io = |source| FeedError::Io {
        path: path.display().to_string(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    parse_events(std::io::BufReader::new(file), &path.display().to_string())
}

/// Parse NDJSON events from any reader (blank lines are skipped).
pub fn parse_events(reader: impl BufRead, name: &str) -> Result<Vec<Event>, FeedError> {
    let mut out = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(|source| FeedError::Io {
            path: name.to_string(),
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let event = serde_json::from_str(&line).map_err(|e| FeedError::BadRecord {
            path: name.to_string(),
            line: i + 1,
            reason: e.to_string(),
        })?;
        out.push(event);
    }
    Ok(out)
}

/// Send `events` to `tx`, pausing between them according to their timestamps and `speed`.
/// Returns how many were sent. Timestamps that go backwards are sent without a pause.
pub async fn replay(
    events: Vec<Event>,
    speed: Speed,
    tx: &mpsc::Sender<Event>,
) -> Result<usize, FeedError> {
    let start = Instant::now();
    let first_ts = events.first().map(|e| e.ts().as_nanos()).unwrap_or(0);
    let mut sent = 0;
    for event in events {
        if let Speed::Factor(f) = speed {
            let offset_ns = (event.ts().as_nanos() - first_ts).max(0) as f64 / f;
            let due = start + Duration::from_nanos(offset_ns as u64);
            tokio::time::sleep_until(due).await;
        }
        tx.send(event).await.map_err(|_| FeedError::ReceiverGone)?;
        sent += 1;
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{InstrumentId, Price, Quantity, Symbol, Timestamp, TradeTick, Venue};

    fn trade(ms: i64) -> Event {
        Event::Trade(TradeTick {
            instrument: InstrumentId::new(Venue::new("sim").unwrap(), Symbol::new("X").unwrap()),
            price: Price::parse("1").unwrap(),
            quantity: Quantity::parse("1").unwrap(),
            aggressor: None,
            trade_id: ms.to_string(),
            ts: Timestamp::from_millis(ms),
        })
    }

    #[test]
    fn speed_parses() {
        assert_eq!("max".parse::<Speed>().unwrap(), Speed::Max);
        assert_eq!("10x".parse::<Speed>().unwrap(), Speed::Factor(10.0));
        assert!("0".parse::<Speed>().is_err());
        assert!("fast".parse::<Speed>().is_err());
    }

    #[test]
    fn bad_lines_name_the_line() {
        let text = format!(
            "{}\n\nnot json\n",
            serde_json::to_string(&trade(1)).unwrap()
        );
        let err = parse_events(text.as_bytes(), "f.ndjson")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("f.ndjson:3:"), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn recorded_pace_is_kept_and_scaled() {
        let events = vec![trade(0), trade(1_000), trade(3_000)];
        let (tx, mut rx) = mpsc::channel(16);
        let start = Instant::now();
        let task = tokio::spawn(async move { replay(events, Speed::Factor(2.0), &tx).await });
        let mut arrivals = Vec::new();
        while let Some(e) = rx.recv().await {
            arrivals.push((e.ts().as_millis(), start.elapsed().as_millis()));
        }
        assert_eq!(task.await.unwrap().unwrap(), 3);
        // At 2x, events recorded 1 s and 3 s after the first arrive 0.5 s and 1.5 s after it.
        assert_eq!(arrivals, vec![(0, 0), (1_000, 500), (3_000, 1_500)]);
    }
}
