//! trade2026's event bus over NATS JetStream, for running services on other machines than the
//! core.
//!
//! The core (gateway + engine + the SQLite journal) stays the one sequencer: the journal's
//! sequence numbers are the truth. Two pieces carry them over NATS:
//!
//! - [`Outbox`] (runs in the core) publishes every committed journal record, in order, to one
//!   JetStream stream, on `<prefix>.<event subject>`. Each message carries the journal sequence
//!   as its message id (`Nats-Msg-Id`, deduplicated by the stream's duplicate window) and as
//!   `Nats-Expected-Last-Sequence = seq - 1`, so the stream refuses anything but the next record:
//!   **stream sequence = journal sequence**, whatever crashes or retries happen. The stream's last
//!   sequence is therefore the outbox's durable position (nothing to save separately, so no
//!   window where a saved position lags what was published); a republish of records the stream
//!   already holds is a duplicate and stores nothing.
//! - [`NatsBus`] is the [`journal::Bus`] over that stream for consumers elsewhere: a
//!   subscription is a durable pull consumer (explicit `AckAll` acks) that delivers the journal
//!   sequence, so a consumer's checkpoint is the last journal sequence it applied.
//!
//! Publishing from another machine goes through the core, which journals, then the outbox
//! publishes: market data travels over a separate ingest stream ([`IngestPublisher`] in the
//! `marketdata` service, [`Ingest`] in the core, exactly once into the journal), and
//! [`NatsBus`]'s `publish` refuses with an error saying so.

mod bus;
mod ingest;
mod outbox;

pub use bus::{NatsBus, NatsSubscription};
pub use ingest::{INGEST_CONSUMER, Ingest, IngestPublisher, IngestSpec};
pub use outbox::Outbox;

use std::time::Duration;

use async_nats::HeaderName;
use async_nats::jetstream;
use journal::JournalError;

/// Header holding the journal sequence of a message (also its `Nats-Msg-Id`).
pub const SEQ_HEADER: &str = "Trade2026-Seq";
/// Header holding when the journal committed the event (unix nanoseconds).
pub const RECORDED_AT_HEADER: &str = "Trade2026-Recorded-At";

/// The two names as built header names: a `&str` name is validated and copied into a fresh
/// allocation at every insert and lookup, twice per message on each side.
pub(crate) static SEQ_NAME: HeaderName = HeaderName::from_static(SEQ_HEADER);
pub(crate) static RECORDED_AT_NAME: HeaderName = HeaderName::from_static(RECORDED_AT_HEADER);

/// Everything that can go wrong on the NATS side.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// A NATS request failed (server unreachable, timed out, refused).
    #[error("NATS {what}: {message}")]
    Nats { what: String, message: String },
    /// The stream holds more than the journal: it belongs to another journal.
    #[error(
        "NATS stream {stream} ends at sequence {stream_last} but the journal ends at \
         {journal_last}: the stream belongs to another journal (configure another stream name)"
    )]
    WrongStream {
        stream: String,
        stream_last: u64,
        journal_last: u64,
    },
    /// The journal was archived past what the stream holds: the records in between are gone.
    #[error(
        "NATS stream {stream} ends at sequence {stream_last} but the journal starts at \
         {journal_first} (archived): publish the archive first or start a stream for it"
    )]
    Gap {
        stream: String,
        stream_last: u64,
        journal_first: u64,
    },
    /// A message in the stream is not one the outbox wrote.
    #[error("NATS stream {stream} message {stream_seq}: {reason}")]
    BadMessage {
        stream: String,
        stream_seq: u64,
        reason: String,
    },
    #[error(transparent)]
    Journal(#[from] JournalError),
}

impl BusError {
    pub(crate) fn nats(what: impl Into<String>, e: impl std::fmt::Display) -> BusError {
        BusError::Nats {
            what: what.into(),
            message: e.to_string(),
        }
    }
}

/// The bus traits speak [`JournalError`]: NATS failures become its I/O variant, with the message.
impl From<BusError> for JournalError {
    fn from(e: BusError) -> JournalError {
        match e {
            BusError::Journal(j) => j,
            other => JournalError::Io(std::io::Error::other(other.to_string())),
        }
    }
}

/// Which stream, and the subject namespace in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSpec {
    /// The JetStream stream name (`TRADE2026`).
    pub stream: String,
    /// Every event goes out on `<prefix>.<event subject>` and the stream holds `<prefix>.>`: a
    /// namespace, so the stream never captures other applications' subjects on a shared server.
    pub prefix: String,
    /// How long the stream remembers message ids (a republish within it stores nothing).
    pub duplicate_window: Duration,
}

impl Default for StreamSpec {
    fn default() -> Self {
        StreamSpec {
            stream: "TRADE2026".to_owned(),
            prefix: "trade2026".to_owned(),
            duplicate_window: Duration::from_secs(10 * 60),
        }
    }
}

/// Attempts at creating a stream whose creation failed on the server (status 500).
const CREATE_ATTEMPTS: u32 = 5;
const CREATE_RETRY_PAUSE: Duration = Duration::from_millis(100);

/// Whether a stream's creation failed inside the server (a JetStream status 500) rather than
/// being refused (a bad name or config, 400) or unanswered. Such a failure can pass: a server
/// deleting an account's last stream removes its store directory, and a stream created at that
/// moment fails with "could not create storage directory" (seen with nats-server 2.9 when
/// streams come and go; error code 10049).
fn server_failed(e: &jetstream::context::CreateStreamError) -> bool {
    matches!(
        e.kind(),
        jetstream::context::CreateStreamErrorKind::JetStream(j) if j.code() >= 500
    )
}

/// Creates `config`'s stream unless it exists, retrying a failure inside the server
/// ([`server_failed`]) up to [`CREATE_ATTEMPTS`] times. Both streams (journal and ingest) use it.
async fn create_stream(
    js: &jetstream::Context,
    config: jetstream::stream::Config,
) -> Result<jetstream::stream::Stream, BusError> {
    let mut attempt = 1;
    loop {
        match js.get_or_create_stream(config.clone()).await {
            Ok(stream) => return Ok(stream),
            Err(e) if attempt < CREATE_ATTEMPTS && server_failed(&e) => {
                tracing::warn!(stream = %config.name, attempt, error = %e, "creating the stream failed on the server; retrying");
                tokio::time::sleep(CREATE_RETRY_PAUSE * attempt).await;
                attempt += 1;
            }
            Err(e) => {
                return Err(BusError::nats(
                    format!("creating stream {}", config.name),
                    e,
                ));
            }
        }
    }
}

impl StreamSpec {
    fn subject(&self, event_subject: &str) -> String {
        format!("{}.{event_subject}", self.prefix)
    }

    fn event_subject<'a>(&self, subject: &'a str) -> Option<&'a str> {
        subject
            .strip_prefix(self.prefix.as_str())
            .and_then(|s| s.strip_prefix('.'))
    }

    /// Creates the stream if it does not exist (file storage, the subjects under the prefix).
    pub async fn ensure(
        &self,
        js: &jetstream::Context,
    ) -> Result<jetstream::stream::Stream, BusError> {
        let config = jetstream::stream::Config {
            name: self.stream.clone(),
            subjects: vec![format!("{}.>", self.prefix)],
            storage: jetstream::stream::StorageType::File,
            duplicate_window: self.duplicate_window,
            ..Default::default()
        };
        create_stream(js, config).await
    }

    /// The stream's last sequence (= the last journal sequence published), and its first.
    async fn bounds(&self, stream: &jetstream::stream::Stream) -> Result<(u64, u64), BusError> {
        let info = stream
            .get_info()
            .await
            .map_err(|e| BusError::nats(format!("stream {} info", self.stream), e))?;
        Ok((info.state.first_sequence, info.state.last_sequence))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jetstream::context::{CreateStreamError, CreateStreamErrorKind};

    fn jetstream_error(code: usize, err_code: u64) -> CreateStreamError {
        let e: jetstream::Error = serde_json::from_value(serde_json::json!({
            "code": code, "err_code": err_code, "description": "from the server"
        }))
        .expect("a JetStream error as the server sends it");
        CreateStreamError::new(CreateStreamErrorKind::JetStream(e))
    }

    #[test]
    fn only_failures_inside_the_server_are_retried() {
        assert!(server_failed(&jetstream_error(500, 10049)));
        // Refused: a bad config stays refused however often it is sent.
        assert!(!server_failed(&jetstream_error(400, 10058)));
        assert!(!server_failed(&CreateStreamError::new(
            CreateStreamErrorKind::TimedOut
        )));
        assert!(!server_failed(&CreateStreamError::new(
            CreateStreamErrorKind::InvalidStreamName
        )));
    }
}
