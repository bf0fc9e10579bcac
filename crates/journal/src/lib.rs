//! trade2026's durable event journal and the event bus built on it.
//!
//! "The event log is the truth": orders, acks, rejects, fills, cancels and market data are
//! [`model::Event`]s with a sequence number. [`Journal`] stores them durably (SQLite WAL,
//! `synchronous=FULL`, group commit); every service is a consumer that rebuilds its state by
//! replaying them, through [`Journal::read_from`] or a [`Bus`] subscription.
//!
//! The journal does not grow forever: [`Journal::archive`] moves the events every durable
//! consumer has acked into compressed, checksummed segment files (format and crash safety in
//! [`archive`]), and [`HistoryReader`] reads archive and journal as one history.
//!
//! ```
//! use journal::{Bus, InProcessBus, Journal, StartAt, Subscription};
//! use model::{AccountId, Event, OrderId, Timestamp};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), journal::JournalError> {
//! let dir = tempfile::tempdir()?;
//! let (journal, report) = Journal::open(&dir.path().join("events.db"))?;
//! assert_eq!(report.last_seq, 0);
//!
//! let accepted = Event::OrderAccepted {
//!     order_id: OrderId(7),
//!     account: AccountId::new("acct1").unwrap(),
//!     ts: Timestamp::from_secs(1_700_000_000),
//! };
//! let bus = InProcessBus::new(journal.clone());
//! let mut oms = bus.subscribe("oms", "orders.*", StartAt::Resume).await?;
//! let seq = bus.publish(accepted.clone()).await?; // durable when this returns
//!
//! let delivery = oms.next().await?;
//! assert_eq!((delivery.seq, delivery.subject.as_str()), (seq, "orders.acct1"));
//! oms.ack(delivery.seq).await?; // a restarted "oms" resumes after this
//!
//! assert_eq!(journal.read_from(1, 100)?[0].event, accepted);
//! # Ok(())
//! # }
//! ```

pub mod archive;
pub mod bus;
pub mod derived;
mod error;
mod history;
mod journal;
pub mod sample;
mod subject;
mod wal;

pub use archive::{
    ArchiveOptions, ArchiveReport, ArchiveStore, ArchiveSummary, LocalArchive, Manifest,
    SegmentInfo, verify_archive,
};
pub use bus::{Bus, Delivery, InProcessBus, InProcessSubscription, StartAt, Subscription};
pub use error::JournalError;
pub use history::HistoryReader;
pub use journal::{DiskUsage, Fault, Journal, Record, RecoveryReport};
pub use subject::SubjectFilter;
pub use wal::WalInspection;
