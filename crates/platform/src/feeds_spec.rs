use std::path::PathBuf;

use feeds::live::LiveSpec;
use feeds::replay::Speed;

use crate::PlatformError;

/// One market-data source of `trade2026 up --feed <spec>`.
#[derive(Debug, Clone, PartialEq)]
pub enum FeedSpec {
    /// The seeded synthetic market from the `feed.synthetic` config section.
    Synthetic,
    /// A live exchange WebSocket feed.
    Live(LiveSpec),
    /// Normalized NDJSON events replayed at a pace.
    Replay { path: PathBuf, speed: Speed },
}

impl FeedSpec {
    pub fn parse(spec: &str, replay_speed: Speed) -> Result<FeedSpec, PlatformError> {
        if spec == "synthetic" {
            return Ok(FeedSpec::Synthetic);
        }
        if let Some(path) = spec.strip_prefix("replay:") {
            let path = PathBuf::from(path);
            if !path.is_file() {
                return Err(PlatformError::FeedSpec {
                    spec: spec.into(),
                    reason: format!("{} is not a readable file", path.display()),
                });
            }
            return Ok(FeedSpec::Replay {
                path,
                speed: replay_speed,
            });
        }
        spec.parse::<LiveSpec>()
            .map(FeedSpec::Live)
            .map_err(|e| PlatformError::FeedSpec {
                spec: spec.into(),
                reason: format!("{e}; use `synthetic`, `replay:FILE` or `EXCHANGE:SYM,SYM`"),
            })
    }

    pub fn describe(&self) -> String {
        match self {
            FeedSpec::Synthetic => "synthetic market".into(),
            FeedSpec::Live(l) => format!("live {} {}", l.exchange, l.symbols.join(",")),
            FeedSpec::Replay { path, speed } => format!("replay {} at {speed:?}", path.display()),
        }
    }
}
