//! The durable, append-only event journal.
//!
//! One SQLite database in WAL mode with `synchronous=FULL`: a transaction is on disk when
//! `COMMIT` returns. A single writer thread owns the write connection and does group commit:
//! it takes every append waiting in its channel, inserts them all in one transaction, commits
//! once (one fsync for the whole batch), then answers each waiter and wakes the tailers.
//! Callers serialize and checksum their event before queueing it, so the writer thread only
//! does SQLite work.
//!
//! After each commit the writer also appends the batch's records (the callers' `Event`s, moved
//! through the channel, so nothing is decoded) to an in-memory tail of the last
//! [`TAIL_RECORDS`] committed records. Caught-up bus subscribers read from that tail instead of
//! querying SQLite; a subscriber behind the tail (history, or a slow consumer) reads SQLite.

use std::collections::VecDeque;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use model::{Event, Timestamp};
use rusqlite::{Connection, OpenFlags, TransactionBehavior, params};
use tokio::sync::{oneshot, watch};

use crate::JournalError;
use crate::subject::SubjectFilter;
use crate::wal::{self, WalInspection};

/// Schema version stored in `PRAGMA user_version`. 2 added the `meta` table (journal id,
/// archived position): a version-1 binary would take an archived journal (whose first record
/// is not 1) for a corrupt one, so it is told "newer version" instead. Version-1 files are
/// upgraded in place on open (the table is added; nothing else changes).
const SCHEMA_VERSION: i64 = 2;
/// Upper bound of events in one transaction, so one batch cannot hold the lock (and the
/// waiters of the next batch) for long, nor grow memory without bound.
const MAX_BATCH_EVENTS: usize = 16_384;
/// WAL bytes before the writer checkpoints it, which lets the next commit restart the WAL from
/// its beginning and so bounds its size. A background checkpointer has usually copied most of
/// the frames by then, so this stays cheap. Set in pages of the file's own page size (journals
/// made before 4 KiB pages have 16 KiB ones).
const WAL_AUTOCHECKPOINT_BYTES: i64 = 32 * 1024 * 1024;
/// Records at the end of the journal checked for gaps when it opens (the rest is checked as it
/// is read, and by `verify_all`).
const OPEN_CHECK_RECORDS: i64 = 65_536;
/// Page size of a new journal file (an existing file keeps its own). Every commit writes each
/// page it changed into the WAL in full (the events table's last leaf, the consumers'
/// positions), so at 1000 orders/s, about one small commit per order, the page size sets the
/// bytes written per commit: 16 KiB pages wrote ~26 KB per commit (727 MB in 30 s), 4 KiB
/// pages ~11 KB (313 MB). A big batch fills its pages either way.
const PAGE_SIZE: i64 = 4_096;
/// Read connections kept for reuse.
const MAX_IDLE_READERS: usize = 8;
/// Committed records kept in memory for caught-up subscribers: seconds of traffic at the
/// rates the platform sees (subscribers are woken at every commit, so they stay near the head),
/// and a bounded amount of memory (~10 MiB for typical events of a few hundred bytes; more if
/// the window is full of large book snapshots).
pub(crate) const TAIL_RECORDS: usize = 16_384;

const INSERT_EVENT: &str = "INSERT INTO events (seq, recorded_at, kind, subject, payload, crc) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
/// Acks never move backwards, even if a stale one is written after a newer one.
const UPSERT_ACK: &str = "INSERT INTO consumers (name, acked_seq) VALUES (?1, ?2) \
     ON CONFLICT(name) DO UPDATE SET acked_seq = max(acked_seq, excluded.acked_seq)";
/// No `LIMIT ?`: SQLite (3.4x) treats a bound LIMIT as a query-planner input, so every rebind
/// of it expires the cached statement and the next step re-prepares it (`sqlite3Reprepare`
/// was ~13% of server CPU). The reader stops stepping after `limit` rows instead; rows come
/// in rowid order straight off the b-tree, so nothing beyond them is computed.
const SELECT_FROM: &str =
    "SELECT seq, recorded_at, subject, payload, crc FROM events WHERE seq >= ?1 ORDER BY seq";
const SELECT_RAW_FROM: &str =
    "SELECT seq, recorded_at, kind, subject, payload, crc FROM events WHERE seq >= ?1 ORDER BY seq";
/// Rows deleted per transaction when archived events leave the journal, so appends queued
/// meanwhile wait for one bounded transaction, not for the whole archive.
pub(crate) const DISCARD_CHUNK: u64 = 50_000;

/// A stored row as it is on disk (checksum verified, payload not decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawRecord {
    pub seq: u64,
    /// ns since the Unix epoch.
    pub recorded_at: i64,
    pub kind: String,
    pub subject: String,
    /// The event's JSON exactly as stored.
    pub payload: Vec<u8>,
    /// CRC-32 of `payload`.
    pub crc: u32,
}

/// The journal's footprint on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskUsage {
    /// The database file.
    pub file_bytes: u64,
    /// Its `-wal` file (bounded by the checkpoints; truncated at shutdown).
    pub wal_bytes: u64,
    /// Pages of the database file on SQLite's free list: freed by deletions (an archive) and
    /// reused by later appends before the file grows again.
    pub free_bytes: u64,
}

impl DiskUsage {
    pub fn total_bytes(&self) -> u64 {
        self.file_bytes + self.wal_bytes
    }
}

/// The `meta` table: one row per key.
struct Meta {
    journal_id: String,
    archived_through: u64,
    /// `recorded_at` of the last archived record, so commit times stay non-decreasing even when
    /// the archive moved every record out.
    archived_recorded_at: i64,
    archive_location: Option<String>,
}

impl Meta {
    fn load(conn: &Connection) -> Result<Meta, JournalError> {
        let get = |key: &str| -> Result<Option<rusqlite::types::Value>, JournalError> {
            match conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0)) {
                Ok(v) => Ok(Some(v)),
                Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
                Err(e) => Err(e.into()),
            }
        };
        use rusqlite::types::Value;
        let int = |key: &str| -> Result<i64, JournalError> {
            match get(key)? {
                None => Ok(0),
                Some(Value::Integer(v)) => Ok(v),
                Some(other) => Err(JournalError::Corrupt {
                    seq: 0,
                    reason: format!("meta {key} is not an integer: {other:?}"),
                }),
            }
        };
        let text = |key: &str| -> Result<Option<String>, JournalError> {
            match get(key)? {
                None => Ok(None),
                Some(Value::Text(v)) => Ok(Some(v)),
                Some(other) => Err(JournalError::Corrupt {
                    seq: 0,
                    reason: format!("meta {key} is not text: {other:?}"),
                }),
            }
        };
        Ok(Meta {
            journal_id: text(META_JOURNAL_ID)?.ok_or_else(|| JournalError::Corrupt {
                seq: 0,
                reason: "the meta table has no journal id".to_owned(),
            })?,
            archived_through: to_u64(int(META_ARCHIVED_THROUGH)?),
            archived_recorded_at: int(META_ARCHIVED_RECORDED_AT)?,
            archive_location: text(META_ARCHIVE_LOCATION)?,
        })
    }
}

const META_JOURNAL_ID: &str = "journal_id";
const META_ARCHIVED_THROUGH: &str = "archived_through";
const META_ARCHIVED_RECORDED_AT: &str = "archived_recorded_at";
const META_ARCHIVE_LOCATION: &str = "archive_location";
const UPSERT_META: &str = "INSERT INTO meta (key, value) VALUES (?1, ?2) \
     ON CONFLICT(key) DO UPDATE SET value = excluded.value";

/// One journaled event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Position in the journal: 1, 2, 3, ... without gaps.
    pub seq: u64,
    /// When the journal committed the event (non-decreasing with `seq`).
    pub recorded_at: Timestamp,
    /// The bus subject the event was published on (`Event::subject()` at append time).
    pub subject: String,
    pub event: Event,
}

/// What `open` found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Highest sequence number in the journal (0 when empty; after an archive that moved
    /// everything out, the last archived sequence).
    pub last_seq: u64,
    /// Number of events stored in the journal file: `last_seq - archived_through`, since
    /// sequences are gap-free from `archived_through + 1`.
    pub events: u64,
    /// Events `1..=archived_through` were moved to the archive (0: none).
    pub archived_through: u64,
    /// Durable consumers with a stored position.
    pub consumers: usize,
    /// The `-wal` file as it was before SQLite recovered it.
    pub wal: WalInspection,
    /// Bytes of a partially written WAL frame that were discarded (0 when the WAL was clean).
    /// Such a frame belongs to a commit that never completed, so no acknowledged append is lost.
    pub torn_tail_bytes: u64,
}

impl RecoveryReport {
    pub fn had_torn_tail(&self) -> bool {
        self.torn_tail_bytes > 0
    }
}

/// An event serialized and checksummed by the caller, ready for the writer. The event itself
/// travels along so the writer can hand it to the in-memory tail without decoding the payload.
struct Prepared {
    kind: &'static str,
    subject: String,
    payload: Vec<u8>,
    crc: u32,
    event: Event,
}

impl Prepared {
    fn new(event: Event) -> Result<Self, JournalError> {
        // Most events serialize to 150..400 bytes: one allocation instead of a few regrowths.
        let mut payload = Vec::with_capacity(384);
        serde_json::to_writer(&mut payload, &event).map_err(JournalError::Serialize)?;
        Ok(Prepared {
            kind: event.kind().as_str(),
            subject: event.subject(),
            crc: crc32fast::hash(&payload),
            payload,
            event,
        })
    }
}

/// The last committed records, in sequence order, for subscribers that have caught up.
/// Only the writer appends, and only after the commit is durable.
pub(crate) struct Tail {
    /// Sequence of `records[0]` (of the next record when empty).
    first_seq: u64,
    records: VecDeque<Arc<Record>>,
    capacity: usize,
}

impl Tail {
    fn new(next_seq: u64, capacity: usize) -> Self {
        Tail {
            first_seq: next_seq,
            records: VecDeque::with_capacity(capacity.min(TAIL_RECORDS)),
            capacity: capacity.max(1),
        }
    }

    /// Appends records that directly follow the retained ones; returns the evicted ones so the
    /// caller frees them after releasing the lock.
    fn push(&mut self, batch: Vec<Arc<Record>>) -> Vec<Arc<Record>> {
        debug_assert!(
            batch
                .first()
                .is_none_or(|r| r.seq == self.first_seq + self.records.len() as u64)
        );
        self.records.extend(batch);
        let excess = self.records.len().saturating_sub(self.capacity);
        self.first_seq += excess as u64;
        self.records.drain(..excess).collect()
    }

    /// Scans up to `limit` records from `from` and returns the matching ones plus the sequence
    /// to continue from; `None` when `from` is outside the retained records (the caller reads
    /// SQLite instead).
    fn read(
        &self,
        from: u64,
        limit: usize,
        filter: &SubjectFilter,
    ) -> Option<(Vec<Arc<Record>>, u64)> {
        let start = usize::try_from(from.checked_sub(self.first_seq)?).ok()?;
        if start >= self.records.len() {
            return None;
        }
        let end = self.records.len().min(start.saturating_add(limit.max(1)));
        let matching = self
            .records
            .range(start..end)
            .filter(|r| filter.matches(&r.subject))
            .cloned()
            .collect();
        Some((matching, self.first_seq + end as u64))
    }
}

/// Names under which [`Journal::append_from_source`] keeps source positions in the consumer
/// table (a consumer name never starts with it).
const SOURCE_PREFIX: &str = "source:";

type AppendReply = oneshot::Sender<Result<RangeInclusive<u64>, JournalError>>;

enum Command {
    Append {
        events: Vec<Prepared>,
        reply: AppendReply,
        /// A source position committed in the same transaction as the events.
        source: Option<(String, u64)>,
    },
    /// Fire-and-forget: persisted with the next commit.
    Ack {
        consumer: String,
        seq: u64,
    },
    /// Answered once every command queued before it is committed.
    Flush {
        reply: oneshot::Sender<Result<(), JournalError>>,
    },
    /// Run after the batch it arrives in is committed, in its own transaction.
    Maintenance(Maintenance),
    Shutdown,
}

/// Writer work other than appends. Replies go through std channels: the archiver waiting for
/// them is synchronous code (a CLI, or a blocking task).
enum Maintenance {
    Discard {
        through: u64,
        location: String,
        last_recorded_at: i64,
        reply: mpsc::SyncSender<Result<u64, JournalError>>,
    },
    Vacuum {
        reply: mpsc::SyncSender<Result<u64, JournalError>>,
    },
    Checkpoint {
        reply: mpsc::SyncSender<Result<u64, JournalError>>,
    },
}

/// State shared between the handles and the writer thread.
struct Shared {
    last_seq: AtomicU64,
    durable: watch::Sender<u64>,
    closed: AtomicBool,
    /// Set after a failed commit; every later append is refused with this message.
    failed: Mutex<Option<String>>,
    /// Updated before `durable`, so a woken tailer finds the new records here.
    tail: RwLock<Tail>,
    /// The first sequence still stored in the journal (`archived_through + 1`). Raised by the
    /// writer *before* it commits the deletion of archived records, so a reader that sees the
    /// records gone also sees why.
    first_seq: AtomicU64,
    /// Where the archived records went (for error messages), as last recorded by an archive.
    archive_location: Mutex<Option<String>>,
    /// A fault injected by a test ([`Journal::inject_fault`]).
    fault: Mutex<Fault>,
}

/// A fault a test injects into the writer, to check what callers show while a commit is slow or
/// after it fails. Never used by the platform itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fault {
    #[default]
    None,
    /// Every commit waits this long before writing (a slow disk).
    DelayCommits(Duration),
    /// The next commit fails as if the disk refused it (the journal then refuses every append).
    FailNextCommit,
}

struct Inner {
    path: PathBuf,
    tx: mpsc::Sender<Command>,
    shared: Arc<Shared>,
    writer: Mutex<Option<JoinHandle<Result<(), JournalError>>>>,
    readers: Mutex<Vec<Connection>>,
    /// Durable consumer positions as acked so far (the writer persists them).
    acked: Mutex<HashMap<String, u64>>,
    /// Durable consumers that currently have a subscription.
    active: Mutex<HashSet<String>>,
    /// Identifies this journal's history, so an archive is never mixed up with another one.
    journal_id: String,
    /// One archive run at a time.
    archiving: Mutex<()>,
    /// Held for the life of the journal: one owning process per journal file.
    _lock: File,
}

/// Handle to a journal. Cheap to clone; the journal shuts down (flushing pending appends) when
/// `shutdown` is called or the last handle is dropped.
#[derive(Clone)]
pub struct Journal {
    inner: Arc<Inner>,
}

/// A poisoned mutex only means another thread panicked while holding it; the data it guards
/// (connection pool, positions) stays consistent, so keep going.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

impl Journal {
    /// Opens (creating if missing) the journal at `path`, recovers it and starts the writer.
    ///
    /// Refuses with [`JournalError::Locked`] if another process has it open, and with
    /// [`JournalError::Corrupt`] if the stored sequence has gaps or the last record fails its
    /// checksum.
    pub fn open(path: &Path) -> Result<(Journal, RecoveryReport), JournalError> {
        Self::open_with_tail(path, TAIL_RECORDS)
    }

    /// [`Journal::open`] with `tail_records` committed records kept in memory (tests use a
    /// small tail to exercise the fallback to SQLite).
    pub(crate) fn open_with_tail(
        path: &Path,
        tail_records: usize,
    ) -> Result<(Journal, RecoveryReport), JournalError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let lock_path = sibling(path, ".lock");
        let lock_file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)?;
        lock_exclusively(&lock_file, path)?;

        // Must happen before the first connection: SQLite recovers (and later rewrites) the WAL.
        let wal = wal::inspect(path)?;
        if wal.torn_tail_bytes > 0 {
            tracing::warn!(
                journal = %path.display(),
                torn_bytes = wal.torn_tail_bytes,
                wal_bytes = wal.wal_bytes,
                whole_frames = wal.frames,
                "journal WAL ends in a torn (partially written) frame; it is discarded: it belongs \
                 to a commit that never completed, so no acknowledged event is lost"
            );
        }

        let mut conn = Connection::open(path)?;
        configure_writer(&conn)?;
        create_schema(&mut conn, path)?;
        // Fold the recovered WAL into the database and truncate it, so the torn tail is gone
        // for good and the next open starts from a clean WAL.
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;

        let meta = Meta::load(&conn)?;
        // min and max walk the b-tree ends: O(log n). Counting every record would make every
        // start O(history) (a second at 7 M events), so the start checks only the most recent
        // `OPEN_CHECK_RECORDS` for gaps (where a torn or damaged write shows); every read checks
        // contiguity anyway, and `verify_all` checks the whole journal.
        let (min_seq, max_seq, last_recorded): (Option<i64>, Option<i64>, i64) = conn.query_row(
            "SELECT (SELECT seq FROM events ORDER BY seq ASC LIMIT 1), \
                    (SELECT seq FROM events ORDER BY seq DESC LIMIT 1), \
                    coalesce((SELECT recorded_at FROM events ORDER BY seq DESC LIMIT 1), 0)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        // Gap-free from the first record after the archived ones (1 when nothing was archived).
        let first = to_i64(meta.archived_through) + 1;
        let count = match (min_seq, max_seq) {
            (Some(min_seq), Some(max_seq)) => {
                if min_seq < first {
                    return Err(JournalError::Corrupt {
                        seq: to_u64(min_seq),
                        reason: format!(
                            "record {min_seq} is still stored although records 1..={} were archived",
                            meta.archived_through
                        ),
                    });
                }
                let check_from = first.max(max_seq - OPEN_CHECK_RECORDS + 1);
                let recent: i64 = conn.query_row(
                    "SELECT count(*) FROM events WHERE seq >= ?1",
                    [check_from],
                    |r| r.get(0),
                )?;
                if min_seq != first || recent != max_seq - check_from + 1 {
                    let missing = first_missing(&conn, first, min_seq)?;
                    return Err(JournalError::Corrupt {
                        seq: missing,
                        reason: format!(
                            "the sequence has gaps: records {first}..={max_seq} are not all stored, first missing is {missing}"
                        ),
                    });
                }
                max_seq - first + 1
            }
            _ => 0,
        };
        let max_seq = max_seq.unwrap_or(0);
        let last_seq = if count > 0 {
            to_u64(max_seq)
        } else {
            meta.archived_through
        };
        let last_recorded = last_recorded.max(meta.archived_recorded_at);

        let consumers: HashMap<String, u64> = {
            let mut stmt = conn.prepare("SELECT name, acked_seq FROM consumers")?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            rows.map(|r| r.map(|(n, s)| (n, to_u64(s))))
                .collect::<Result<_, _>>()?
        };

        let (durable, _) = watch::channel(last_seq);
        let shared = Arc::new(Shared {
            last_seq: AtomicU64::new(last_seq),
            durable,
            closed: AtomicBool::new(false),
            failed: Mutex::new(None),
            tail: RwLock::new(Tail::new(last_seq + 1, tail_records)),
            first_seq: AtomicU64::new(meta.archived_through + 1),
            archive_location: Mutex::new(meta.archive_location.clone()),
            fault: Mutex::new(Fault::None),
        });
        let (tx, rx) = mpsc::channel();
        let writer = {
            let shared = Arc::clone(&shared);
            let checkpointer = Checkpointer::start(path, Arc::clone(&shared))?;
            let state = WriterState {
                conn,
                shared,
                next_seq: last_seq + 1,
                last_recorded,
                checkpointer: Some(checkpointer),
                lone_acks: HashMap::new(),
                lone_acks_since: None,
            };
            std::thread::Builder::new()
                .name("journal-writer".into())
                .spawn(move || state.run(rx))?
        };

        let report = RecoveryReport {
            last_seq,
            events: to_u64(count),
            archived_through: meta.archived_through,
            consumers: consumers.len(),
            wal,
            torn_tail_bytes: wal.torn_tail_bytes,
        };
        let journal = Journal {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                tx,
                shared,
                writer: Mutex::new(Some(writer)),
                readers: Mutex::new(Vec::new()),
                acked: Mutex::new(consumers),
                active: Mutex::new(HashSet::new()),
                journal_id: meta.journal_id,
                archiving: Mutex::new(()),
                _lock: lock_file,
            }),
        };
        // The tail is where an interrupted write would show; check it decodes before serving.
        if count > 0 {
            journal.read_from(last_seq, 1)?;
        }
        tracing::info!(
            journal = %path.display(),
            last_seq,
            archived_through = meta.archived_through,
            consumers = report.consumers,
            "journal opened"
        );
        Ok((journal, report))
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Appends one event; returns its sequence number once the event is durable on disk.
    ///
    /// Dropping the future after it was first polled does not withdraw the event: it may still
    /// be written.
    pub async fn append(&self, event: Event) -> Result<u64, JournalError> {
        let range = self.append_prepared(vec![Prepared::new(event)?]).await?;
        Ok(*range.start())
    }

    /// Appends events atomically (all or none) with consecutive sequence numbers; returns the
    /// range once durable. An empty batch returns the empty range `last_seq+1..=last_seq`.
    pub async fn append_batch(
        &self,
        events: Vec<Event>,
    ) -> Result<RangeInclusive<u64>, JournalError> {
        if events.is_empty() {
            let last = self.last_seq();
            #[allow(clippy::reversed_empty_ranges)]
            return Ok(last + 1..=last);
        }
        let prepared = events
            .into_iter()
            .map(Prepared::new)
            .collect::<Result<Vec<_>, _>>()?;
        self.append_prepared(prepared).await
    }

    /// Queues `events` for the next group commit *now*, so appends keep the order of the calls,
    /// and returns a future that resolves once they are durable. For a single-threaded decider
    /// (the trading engine) that must not wait for the disk between decisions.
    pub fn enqueue_batch(
        &self,
        events: Vec<Event>,
    ) -> Result<
        impl Future<Output = Result<RangeInclusive<u64>, JournalError>> + Send + 'static,
        JournalError,
    > {
        let prepared = events
            .into_iter()
            .map(Prepared::new)
            .collect::<Result<Vec<_>, _>>()?;
        let rx = self.submit(prepared)?;
        Ok(async move { rx.await.map_err(|_| JournalError::Closed)? })
    }

    /// [`Journal::append`] for synchronous code. Blocks the thread until the event is durable.
    ///
    /// # Panics
    /// When called from inside an async task (use `append` there; `spawn_blocking` is fine).
    pub fn append_blocking(&self, event: Event) -> Result<u64, JournalError> {
        let rx = self.submit(vec![Prepared::new(event)?])?;
        let range = rx.blocking_recv().map_err(|_| JournalError::Closed)??;
        Ok(*range.start())
    }

    async fn append_prepared(
        &self,
        events: Vec<Prepared>,
    ) -> Result<RangeInclusive<u64>, JournalError> {
        let rx = self.submit(events)?;
        rx.await.map_err(|_| JournalError::Closed)?
    }

    fn submit(
        &self,
        events: Vec<Prepared>,
    ) -> Result<oneshot::Receiver<Result<RangeInclusive<u64>, JournalError>>, JournalError> {
        if self.inner.shared.closed.load(Ordering::Acquire) {
            return Err(JournalError::Closed);
        }
        let (reply, rx) = oneshot::channel();
        self.inner
            .tx
            .send(Command::Append {
                events,
                reply,
                source: None,
            })
            .map_err(|_| JournalError::Closed)?;
        Ok(rx)
    }

    /// Appends events taken from an outside stream together with how far into that stream they
    /// reach, in one transaction: after a crash either both are on disk or neither, so a
    /// re-delivery from the stream is recognised (its position is at or below
    /// [`Journal::source_position`]) and journaled exactly once. An empty batch still records
    /// the position (the source's messages were all skipped).
    pub async fn append_from_source(
        &self,
        events: Vec<Event>,
        source: &str,
        position: u64,
    ) -> Result<RangeInclusive<u64>, JournalError> {
        let prepared = events
            .into_iter()
            .map(Prepared::new)
            .collect::<Result<Vec<_>, _>>()?;
        if self.inner.shared.closed.load(Ordering::Acquire) {
            return Err(JournalError::Closed);
        }
        let name = format!("{SOURCE_PREFIX}{source}");
        {
            let mut acked = lock(&self.inner.acked);
            let current = acked.entry(name.clone()).or_insert(0);
            *current = (*current).max(position);
        }
        let (reply, rx) = oneshot::channel();
        self.inner
            .tx
            .send(Command::Append {
                events: prepared,
                reply,
                source: Some((name, position)),
            })
            .map_err(|_| JournalError::Closed)?;
        rx.await.map_err(|_| JournalError::Closed)?
    }

    /// The last position of `source` recorded by [`Journal::append_from_source`] (0: none).
    pub fn source_position(&self, source: &str) -> u64 {
        lock(&self.inner.acked)
            .get(&format!("{SOURCE_PREFIX}{source}"))
            .copied()
            .unwrap_or(0)
    }

    /// Waits until everything queued before this call (appends and consumer acks) is durable.
    pub async fn flush(&self) -> Result<(), JournalError> {
        if self.inner.shared.closed.load(Ordering::Acquire) {
            return Err(JournalError::Closed);
        }
        let (reply, rx) = oneshot::channel();
        self.inner
            .tx
            .send(Command::Flush { reply })
            .map_err(|_| JournalError::Closed)?;
        rx.await.map_err(|_| JournalError::Closed)?
    }

    /// Up to `limit` records from `from_seq` on (0 is treated as 1), in order, checksums
    /// verified. A record that fails its checksum, does not decode, or is missing from the
    /// sequence is an error, never data.
    pub fn read_from(&self, from_seq: u64, limit: usize) -> Result<Vec<Record>, JournalError> {
        self.read_matching(from_seq, limit, None)
            .map(|(records, _)| records)
    }

    /// [`Journal::read_matching`] from the in-memory tail: `None` when `from_seq` is not among
    /// the retained committed records (read SQLite then). Never blocks on I/O.
    pub(crate) fn read_tail(
        &self,
        from_seq: u64,
        limit: usize,
        filter: &SubjectFilter,
    ) -> Option<(Vec<Arc<Record>>, u64)> {
        self.inner
            .shared
            .tail
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .read(from_seq, limit, filter)
    }

    /// Scans up to `limit` records from `from_seq` and returns those whose subject matches
    /// `filter` (all when `None`), plus the sequence to continue from. Records that do not
    /// match are skipped without being decoded.
    pub fn read_matching(
        &self,
        from_seq: u64,
        limit: usize,
        filter: Option<&SubjectFilter>,
    ) -> Result<(Vec<Record>, u64), JournalError> {
        let from_seq = from_seq.max(1);
        self.check_retained(from_seq)?;
        // Loaded before querying: everything up to here is committed and must be visible.
        let durable = self.last_seq();
        let conn = self.reader()?;
        let mut out = Vec::new();
        let mut expected = from_seq;
        let mut scanned = 0usize;
        {
            let mut stmt = conn.prepare_cached(SELECT_FROM)?;
            let mut rows = stmt.query(params![to_i64(from_seq)])?;
            while scanned < limit {
                let Some(row) = rows.next()? else {
                    break;
                };
                scanned += 1;
                let seq = to_u64(row.get::<_, i64>(0)?);
                if seq != expected {
                    // An archive may have removed them since the check above.
                    self.check_retained(expected)?;
                    return Err(JournalError::Corrupt {
                        seq: expected,
                        reason: format!("record is missing (the next stored record is {seq})"),
                    });
                }
                expected += 1;
                let subject_ref = row.get_ref(2)?;
                let subject = subject_ref.as_str().map_err(|e| JournalError::Corrupt {
                    seq,
                    reason: format!("subject is not text: {e}"),
                })?;
                if filter.is_some_and(|f| !f.matches(subject)) {
                    continue;
                }
                let subject = subject.to_owned();
                let recorded_at = Timestamp::from_nanos(row.get::<_, i64>(1)?);
                let payload = row
                    .get_ref(3)?
                    .as_blob()
                    .map_err(|e| JournalError::Corrupt {
                        seq,
                        reason: format!("payload is not a blob: {e}"),
                    })?;
                let stored_crc = row.get::<_, i64>(4)?;
                let crc = crc32fast::hash(payload);
                if i64::from(crc) != stored_crc {
                    return Err(JournalError::Corrupt {
                        seq,
                        reason: format!(
                            "payload checksum mismatch (stored {stored_crc:#010x}, computed {crc:#010x})"
                        ),
                    });
                }
                let event: Event =
                    serde_json::from_slice(payload).map_err(|e| JournalError::Corrupt {
                        seq,
                        reason: format!("payload does not decode as an event: {e}"),
                    })?;
                out.push(Record {
                    seq,
                    recorded_at,
                    subject,
                    event,
                });
            }
        }
        if scanned < limit && expected <= durable {
            self.check_retained(expected)?;
            return Err(JournalError::Corrupt {
                seq: expected,
                reason: format!("record is missing (the journal is durable up to {durable})"),
            });
        }
        self.release(conn);
        Ok((out, expected))
    }

    /// The stored rows `from_seq..` (at most `limit`), checksums and contiguity verified but
    /// not decoded: what the archiver copies into segments byte for byte.
    pub(crate) fn read_raw(
        &self,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<RawRecord>, JournalError> {
        let from_seq = from_seq.max(1);
        self.check_retained(from_seq)?;
        let durable = self.last_seq();
        let conn = self.reader()?;
        let mut out = Vec::with_capacity(limit.min(4_096));
        let mut expected = from_seq;
        {
            let mut stmt = conn.prepare_cached(SELECT_RAW_FROM)?;
            let mut rows = stmt.query(params![to_i64(from_seq)])?;
            while out.len() < limit {
                let Some(row) = rows.next()? else {
                    break;
                };
                let seq = to_u64(row.get::<_, i64>(0)?);
                if seq != expected {
                    self.check_retained(expected)?;
                    return Err(JournalError::Corrupt {
                        seq: expected,
                        reason: format!("record is missing (the next stored record is {seq})"),
                    });
                }
                expected += 1;
                let text = |i: usize, what: &str| -> Result<String, JournalError> {
                    Ok(row
                        .get_ref(i)?
                        .as_str()
                        .map_err(|e| JournalError::Corrupt {
                            seq,
                            reason: format!("{what} is not text: {e}"),
                        })?
                        .to_owned())
                };
                let kind = text(2, "kind")?;
                let subject = text(3, "subject")?;
                let payload = row
                    .get_ref(4)?
                    .as_blob()
                    .map_err(|e| JournalError::Corrupt {
                        seq,
                        reason: format!("payload is not a blob: {e}"),
                    })?
                    .to_vec();
                let stored_crc = row.get::<_, i64>(5)?;
                let crc = crc32fast::hash(&payload);
                if i64::from(crc) != stored_crc {
                    return Err(JournalError::Corrupt {
                        seq,
                        reason: format!(
                            "payload checksum mismatch (stored {stored_crc:#010x}, computed {crc:#010x})"
                        ),
                    });
                }
                out.push(RawRecord {
                    seq,
                    recorded_at: row.get(1)?,
                    kind,
                    subject,
                    payload,
                    crc,
                });
            }
        }
        if out.len() < limit && expected <= durable {
            self.check_retained(expected)?;
            return Err(JournalError::Corrupt {
                seq: expected,
                reason: format!("record is missing (the journal is durable up to {durable})"),
            });
        }
        self.release(conn);
        Ok(out)
    }

    /// `Err(Archived)` when `seq` was moved to the archive.
    pub(crate) fn check_retained(&self, seq: u64) -> Result<(), JournalError> {
        let first = self.first_seq();
        if seq >= first {
            return Ok(());
        }
        Err(JournalError::Archived {
            seq,
            archived_through: first - 1,
            location: self
                .archive_location()
                .unwrap_or_else(|| "an unrecorded location".to_owned()),
        })
    }

    /// Reads every record still in the journal (from [`Journal::first_seq`]) and checks
    /// checksums, decoding and contiguity; returns the last sequence verified (0 when the
    /// journal never held anything). O(journal size): for an operator's `verify` command, not
    /// for startup. Archived records are verified by reading the archive
    /// ([`crate::verify_archive`], [`crate::HistoryReader`]).
    pub fn verify_all(&self) -> Result<u64, JournalError> {
        let mut next = self.first_seq();
        loop {
            let (records, after) = self.read_matching(next, 4_096, None)?;
            if records.is_empty() {
                return Ok(next - 1);
            }
            next = after;
        }
    }

    /// The first sequence number still stored in the journal: 1, or `archived_through + 1`
    /// after an archive (then also when nothing is stored yet after it).
    pub fn first_seq(&self) -> u64 {
        self.inner.shared.first_seq.load(Ordering::Acquire)
    }

    /// Events `1..=archived_through()` were moved to the archive (0: none).
    pub fn archived_through(&self) -> u64 {
        self.first_seq() - 1
    }

    /// Where the last archive run put the archived events (a folder or an `s3://` URL).
    pub fn archive_location(&self) -> Option<String> {
        lock(&self.inner.shared.archive_location).clone()
    }

    /// An identifier of this journal's history, created with the journal and kept in its
    /// archive's manifest, so segments of two journals are never mixed.
    pub fn journal_id(&self) -> &str {
        &self.inner.journal_id
    }

    /// Durable consumer positions as stored on disk (not the in-memory acks that a later
    /// commit persists, see [`Journal::ack`]): what survives a crash, so what a restart
    /// resumes from.
    pub fn stored_consumer_positions(&self) -> Result<BTreeMap<String, u64>, JournalError> {
        let conn = self.reader()?;
        let positions = {
            let mut stmt = conn.prepare("SELECT name, acked_seq FROM consumers")?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            // Source positions count another stream's messages, not journal sequences.
            rows.filter(|r| !matches!(r, Ok((n, _)) if n.starts_with(SOURCE_PREFIX)))
                .map(|r| r.map(|(n, s)| (n, to_u64(s))))
                .collect::<Result<BTreeMap<_, _>, _>>()?
        };
        self.release(conn);
        Ok(positions)
    }

    /// Bytes of the journal on disk: the database file and its WAL.
    pub fn disk_bytes(&self) -> Result<DiskUsage, JournalError> {
        let file_len = |p: &Path| match std::fs::metadata(p) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(e),
        };
        let conn = self.reader()?;
        let (page_size, free_pages): (i64, i64) = conn.query_row(
            "SELECT page_size, freelist_count FROM pragma_page_size, pragma_freelist_count",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        self.release(conn);
        Ok(DiskUsage {
            file_bytes: file_len(&self.inner.path)?,
            wal_bytes: file_len(&sibling(&self.inner.path, "-wal"))?,
            free_bytes: to_u64(page_size * free_pages),
        })
    }

    /// Deletes events `..=through` from the journal and records `archived_through = through`
    /// (and where they went) in the same transaction, through the writer so appends keep
    /// going around it. The caller has made the events durable in the archive first.
    pub(crate) fn discard_through(
        &self,
        through: u64,
        location: &str,
        last_recorded_at: i64,
    ) -> Result<u64, JournalError> {
        let (reply, rx) = mpsc::sync_channel(1);
        self.send_maintenance(Maintenance::Discard {
            through,
            location: location.to_owned(),
            last_recorded_at,
            reply,
        })?;
        rx.recv().map_err(|_| JournalError::Closed)?
    }

    /// Rewrites the database file (SQLite `VACUUM`) through the writer, so pages freed by an
    /// archive go back to the filesystem; appends wait meanwhile. Returns the file size after.
    pub(crate) fn vacuum(&self) -> Result<u64, JournalError> {
        let (reply, rx) = mpsc::sync_channel(1);
        self.send_maintenance(Maintenance::Vacuum { reply })?;
        rx.recv().map_err(|_| JournalError::Closed)?
    }

    /// Folds the WAL into the database file and truncates it, through the writer. Deleting
    /// archived events writes about as many WAL pages as they occupied; without this the WAL
    /// would hold them until the checkpointers get to it. Returns the file size after.
    pub(crate) fn checkpoint(&self) -> Result<u64, JournalError> {
        let (reply, rx) = mpsc::sync_channel(1);
        self.send_maintenance(Maintenance::Checkpoint { reply })?;
        rx.recv().map_err(|_| JournalError::Closed)?
    }

    fn send_maintenance(&self, m: Maintenance) -> Result<(), JournalError> {
        if self.is_closed() {
            return Err(JournalError::Closed);
        }
        self.inner
            .tx
            .send(Command::Maintenance(m))
            .map_err(|_| JournalError::Closed)
    }

    /// Highest durable sequence number (0 when empty).
    pub fn last_seq(&self) -> u64 {
        self.inner.shared.last_seq.load(Ordering::Acquire)
    }

    /// The last durable sequence number, updated after every commit, for live tailing.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.inner.shared.durable.subscribe()
    }

    /// Tests only: make the writer slow or fail (see [`Fault`]).
    #[doc(hidden)]
    pub fn inject_fault(&self, fault: Fault) {
        *lock(&self.inner.shared.fault) = fault;
    }

    /// True once `shutdown` was called (appends are refused).
    pub fn is_closed(&self) -> bool {
        self.inner.shared.closed.load(Ordering::Acquire)
    }

    /// Commits pending appends, stops the writer and checkpoints the WAL into the database.
    /// Idempotent; also done when the last handle is dropped. Blocks until finished. Reads keep
    /// working afterwards; appends fail with [`JournalError::Closed`].
    pub fn shutdown(&self) -> Result<(), JournalError> {
        self.inner.shutdown()
    }

    /// The last sequence a durable consumer acked, as this process knows it: on disk once a
    /// later commit carries it (see [`Journal::ack`]); [`Journal::stored_consumer_positions`]
    /// reads what is on disk.
    pub fn consumer_position(&self, consumer: &str) -> Option<u64> {
        lock(&self.inner.acked).get(consumer).copied()
    }

    /// Records that `consumer` processed everything up to `seq`. Never moves a position
    /// backwards. Persisted with the next append's commit, or on its own after at most a
    /// second without appends (use [`Journal::flush`] to wait for it): acks never cost an
    /// fsync that an order would wait behind.
    pub fn ack(&self, consumer: &str, seq: u64) -> Result<(), JournalError> {
        {
            let mut acked = lock(&self.inner.acked);
            let current = acked.entry(consumer.to_owned()).or_insert(0);
            if seq <= *current {
                return Ok(());
            }
            *current = seq;
        }
        if self.is_closed() {
            return Err(JournalError::Closed);
        }
        self.inner
            .tx
            .send(Command::Ack {
                consumer: consumer.to_owned(),
                seq,
            })
            .map_err(|_| JournalError::Closed)
    }

    /// Held for the duration of an archive run: one at a time.
    pub(crate) fn archive_guard(&self) -> MutexGuard<'_, ()> {
        lock(&self.inner.archiving)
    }

    /// Marks a durable consumer as having an active subscription.
    pub(crate) fn claim_consumer(&self, consumer: &str) -> Result<(), JournalError> {
        if lock(&self.inner.active).insert(consumer.to_owned()) {
            Ok(())
        } else {
            Err(JournalError::ConsumerBusy {
                name: consumer.to_owned(),
            })
        }
    }

    pub(crate) fn release_consumer(&self, consumer: &str) {
        lock(&self.inner.active).remove(consumer);
    }

    fn reader(&self) -> Result<Connection, JournalError> {
        if let Some(conn) = lock(&self.inner.readers).pop() {
            return Ok(conn);
        }
        let conn = Connection::open_with_flags(
            &self.inner.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(5))?;
        Ok(conn)
    }

    /// Returns a connection to the pool (only after a successful read, so a connection that
    /// hit an error is dropped rather than reused).
    fn release(&self, conn: Connection) {
        let mut pool = lock(&self.inner.readers);
        if pool.len() < MAX_IDLE_READERS {
            pool.push(conn);
        }
    }
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("path", &self.inner.path)
            .field("last_seq", &self.last_seq())
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl Inner {
    fn shutdown(&self) -> Result<(), JournalError> {
        let Some(handle) = lock(&self.writer).take() else {
            return Ok(());
        };
        self.shared.closed.store(true, Ordering::Release);
        // If the writer is already gone the send fails; joining still reports why.
        let _ = self.tx.send(Command::Shutdown);
        let result = handle
            .join()
            .unwrap_or_else(|_| Err(JournalError::WriterFailed("writer thread panicked".into())));
        // Wake tailers so they notice the journal is closed.
        self.shared.durable.send_modify(|_| {});
        result
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::error!(journal = %self.path.display(), error = %e, "journal shutdown failed");
        }
    }
}

/// Takes the journal's lock file. A lock that is busy for a moment is retried: a process that
/// spawns a child shares the lock with it until the child's `exec`, so a handle that was just
/// dropped can still look held for a few milliseconds.
fn lock_exclusively(lock_file: &File, path: &Path) -> Result<(), JournalError> {
    const ATTEMPTS: u32 = 50;
    for attempt in 1..=ATTEMPTS {
        match lock_file.try_lock() {
            Ok(()) => return Ok(()),
            Err(std::fs::TryLockError::WouldBlock) if attempt < ATTEMPTS => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(JournalError::Locked {
                    path: path.to_owned(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e.into()),
        }
    }
    Err(JournalError::Locked {
        path: path.to_owned(),
    })
}

fn configure_writer(conn: &Connection) -> Result<(), JournalError> {
    conn.busy_timeout(Duration::from_secs(5))?;
    // Only effective on a new file (before WAL mode writes the header); see PAGE_SIZE.
    conn.pragma_update(None, "page_size", PAGE_SIZE)?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(JournalError::Io(std::io::Error::other(format!(
            "cannot switch the journal to WAL mode (got {mode})"
        ))));
    }
    // FULL: the WAL is fsynced at every commit, so a returned commit survives power loss.
    conn.pragma_update(None, "synchronous", "FULL")?;
    let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    conn.pragma_update(
        None,
        "wal_autocheckpoint",
        WAL_AUTOCHECKPOINT_BYTES / page_size.max(512),
    )?;
    // After a checkpoint resets the WAL, shrink the file back to this size.
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
    conn.pragma_update(None, "cache_size", -65_536)?;
    conn.pragma_update(None, "foreign_keys", false)?;
    conn.set_prepared_statement_cache_capacity(16);
    Ok(())
}

fn create_schema(conn: &mut Connection, path: &Path) -> Result<(), JournalError> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(JournalError::UnsupportedSchema {
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS events (
             seq         INTEGER PRIMARY KEY,  -- gap-free from 1, assigned by the writer
             recorded_at INTEGER NOT NULL,     -- commit time, ns since the Unix epoch
             kind        TEXT    NOT NULL,     -- model::EventKind::as_str()
             subject     TEXT    NOT NULL,     -- bus subject (model::Event::subject())
             payload     BLOB    NOT NULL,     -- JSON of model::Event
             crc         INTEGER NOT NULL      -- crc32 of payload
         );
         CREATE TABLE IF NOT EXISTS consumers (
             name      TEXT PRIMARY KEY,       -- durable consumer name
             acked_seq INTEGER NOT NULL        -- everything up to here is processed
         );
         -- journal_id; archived_through (events 1..=it were moved to the archive and deleted
         -- in the same transaction), archived_recorded_at, archive_location
         -- (no declared type for value: no affinity, so text stays text and numbers numbers)
         CREATE TABLE IF NOT EXISTS meta (
             key   TEXT PRIMARY KEY,
             value
         );",
    )?;
    tx.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO NOTHING",
        params![META_JOURNAL_ID, new_journal_id(path)],
    )?;
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    Ok(())
}

/// A new journal's id: unique enough to tell two journals' archives apart (where and when it
/// was created, and by which process), not a secret.
fn new_journal_id(path: &Path) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(path.as_os_str().as_encoded_bytes());
    h.update(Timestamp::now().as_nanos().to_le_bytes());
    h.update(std::process::id().to_le_bytes());
    let digest = format!("{:x}", h.finalize());
    digest[..32].to_owned()
}

/// The first sequence number absent from `events` at or after `first` (called only when a gap
/// is known).
fn first_missing(conn: &Connection, first: i64, min_seq: i64) -> Result<u64, JournalError> {
    if min_seq != first {
        return Ok(to_u64(first));
    }
    let gap: i64 = conn.query_row(
        "SELECT coalesce(min(e.seq) + 1, 0) FROM events e \
         WHERE NOT EXISTS (SELECT 1 FROM events n WHERE n.seq = e.seq + 1) \
         AND e.seq < (SELECT max(seq) FROM events)",
        [],
        |r| r.get(0),
    )?;
    Ok(to_u64(gap))
}

/// Commands collected for one transaction.
#[derive(Default)]
struct Batch {
    appends: Vec<(Vec<Prepared>, AppendReply)>,
    events: usize,
    acks: HashMap<String, u64>,
    flushes: Vec<oneshot::Sender<Result<(), JournalError>>>,
    maintenance: Vec<Maintenance>,
    shutdown: bool,
}

impl Batch {
    fn add(&mut self, cmd: Command) {
        match cmd {
            Command::Append {
                events,
                reply,
                source,
            } => {
                self.events += events.len();
                self.appends.push((events, reply));
                if let Some((name, seq)) = source {
                    let e = self.acks.entry(name).or_insert(seq);
                    *e = (*e).max(seq);
                }
            }
            Command::Ack { consumer, seq } => {
                let e = self.acks.entry(consumer).or_insert(seq);
                *e = (*e).max(seq);
            }
            Command::Flush { reply } => self.flushes.push(reply),
            Command::Maintenance(m) => self.maintenance.push(m),
            Command::Shutdown => self.shutdown = true,
        }
    }

    /// Maintenance ends a batch: appends queued after it are committed after it.
    fn is_full(&self) -> bool {
        self.shutdown || self.events >= MAX_BATCH_EVENTS || !self.maintenance.is_empty()
    }

    fn is_empty(&self) -> bool {
        self.appends.is_empty()
            && self.acks.is_empty()
            && self.flushes.is_empty()
            && self.maintenance.is_empty()
    }
}

struct WriterState {
    conn: Connection,
    shared: Arc<Shared>,
    next_seq: u64,
    last_recorded: i64,
    checkpointer: Option<Checkpointer>,
    /// Consumer acks not yet written, and since when the oldest has waited.
    lone_acks: HashMap<String, u64>,
    lone_acks_since: Option<Instant>,
}

/// How long consumer acks wait for an append to ride with before they get a commit of their
/// own. An ack is a hint (a restarted durable consumer resumes after it; archiving keeps what
/// is not acked): losing the newest ones in a crash only repeats deliveries, which a consumer
/// must tolerate anyway (at-least-once). A commit of their own costs an fsync that the next
/// order waits behind, which at one commit per order was the ack's price.
const ACK_LINGER: Duration = Duration::from_secs(1);

/// Copies committed WAL frames into the database on its own connection and thread, so the
/// writer's own (automatic) checkpoint, which it needs to reset the WAL, finds almost nothing
/// left to copy and the group-commit loop is not stalled by large page copies and fsyncs.
struct Checkpointer {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

impl Checkpointer {
    /// How often the checkpointer looks for new commits.
    const INTERVAL: Duration = Duration::from_millis(50);

    fn start(path: &Path, shared: Arc<Shared>) -> Result<Checkpointer, JournalError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("journal-checkpoint".into())
            .spawn(move || {
                let mut done = shared.last_seq.load(Ordering::Acquire);
                while let Err(mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(Self::INTERVAL)
                {
                    let last = shared.last_seq.load(Ordering::Acquire);
                    if last == done {
                        continue;
                    }
                    // PASSIVE never blocks the writer or readers; a busy result just means
                    // another checkpoint is running, and the next round catches up.
                    match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                        Ok(()) => done = last,
                        Err(e) => tracing::debug!(error = %e, "background checkpoint skipped"),
                    }
                }
            })?;
        Ok(Checkpointer { stop, thread })
    }

    fn stop(self) {
        drop(self.stop);
        if self.thread.join().is_err() {
            tracing::error!("journal checkpoint thread panicked");
        }
    }
}

impl WriterState {
    fn run(mut self, rx: mpsc::Receiver<Command>) -> Result<(), JournalError> {
        // Ends when Shutdown arrives, or when every sender is gone (cannot happen before the
        // Inner drops, which sends Shutdown first).
        loop {
            let first = match self.lone_acks_since {
                None => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
                Some(since) => rx.recv_timeout(ACK_LINGER.saturating_sub(since.elapsed())),
            };
            let mut batch = Batch::default();
            match first {
                Ok(cmd) => batch.add(cmd),
                // The acks waited long enough: they are the batch.
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            while !batch.is_full() {
                match rx.try_recv() {
                    Ok(cmd) => batch.add(cmd),
                    Err(_) => break,
                }
            }
            if self.hold_lone_acks(&mut batch) {
                continue;
            }
            let shutdown = batch.shutdown;
            self.commit_and_maintain(batch);
            if shutdown {
                // Appends that raced with shutdown and are already queued still get written.
                loop {
                    let mut batch = Batch::default();
                    while !batch.is_full() {
                        match rx.try_recv() {
                            Ok(cmd) => batch.add(cmd),
                            Err(_) => break,
                        }
                    }
                    if batch.is_empty() {
                        break;
                    }
                    self.commit_and_maintain(batch);
                }
                return self.close();
            }
        }
        // Every handle is gone: the held acks are written before closing.
        let held = Batch {
            acks: std::mem::take(&mut self.lone_acks),
            ..Batch::default()
        };
        self.commit(held);
        self.close()
    }

    /// Keeps a batch of acks only (no append, flush, maintenance or shutdown) for later,
    /// unless its oldest ack has waited [`ACK_LINGER`]; otherwise adds the held acks to the
    /// batch. True when the batch was held.
    fn hold_lone_acks(&mut self, batch: &mut Batch) -> bool {
        for (name, seq) in batch.acks.drain() {
            let held = self.lone_acks.entry(name).or_insert(seq);
            *held = (*held).max(seq);
        }
        let lone = batch.appends.is_empty()
            && batch.flushes.is_empty()
            && batch.maintenance.is_empty()
            && !batch.shutdown;
        let waited = self
            .lone_acks_since
            .is_some_and(|since| since.elapsed() >= ACK_LINGER);
        if lone && !waited {
            if !self.lone_acks.is_empty() && self.lone_acks_since.is_none() {
                self.lone_acks_since = Some(Instant::now());
            }
            return true;
        }
        batch.acks = std::mem::take(&mut self.lone_acks);
        self.lone_acks_since = None;
        false
    }

    fn commit_and_maintain(&mut self, mut batch: Batch) {
        let maintenance = std::mem::take(&mut batch.maintenance);
        self.commit(batch);
        for m in maintenance {
            match m {
                Maintenance::Discard {
                    through,
                    location,
                    last_recorded_at,
                    reply,
                } => {
                    let result = self.guarded(|w| w.discard(through, &location, last_recorded_at));
                    let _ = reply.send(result);
                }
                Maintenance::Vacuum { reply } => {
                    let _ = reply.send(self.guarded(WriterState::vacuum));
                }
                Maintenance::Checkpoint { reply } => {
                    let _ = reply.send(self.guarded(WriterState::checkpoint_truncate));
                }
            }
        }
    }

    /// Runs a maintenance transaction unless the writer has failed; a failure of it fails the
    /// writer like a failed append commit (the state on disk is then unknown).
    fn guarded<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, JournalError>,
    ) -> Result<T, JournalError> {
        if let Some(msg) = lock(&self.shared.failed).clone() {
            return Err(JournalError::WriterFailed(msg));
        }
        let result = f(self);
        if let Err(e @ (JournalError::Sqlite(_) | JournalError::Io(_))) = &result {
            let msg = e.to_string();
            tracing::error!(error = %msg, "journal maintenance failed; the journal stops accepting appends");
            *lock(&self.shared.failed) = Some(msg);
        }
        result
    }

    /// Deletes `..=through` and records the archived position in one transaction; returns the
    /// number of rows deleted.
    fn discard(
        &mut self,
        through: u64,
        location: &str,
        last_recorded_at: i64,
    ) -> Result<u64, JournalError> {
        let first = self.shared.first_seq.load(Ordering::Acquire);
        if through < first {
            return Ok(0);
        }
        let last = self.next_seq - 1;
        if through > last {
            return Err(JournalError::ArchiveRefused(format!(
                "cannot archive through {through}: the journal ends at {last}"
            )));
        }
        // Raised before the commit (readers that find the rows gone must find the reason) and
        // lowered again if the transaction does not commit.
        self.shared.first_seq.store(through + 1, Ordering::Release);
        let result = (|| {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            let deleted = tx.execute(
                "DELETE FROM events WHERE seq <= ?1",
                params![to_i64(through)],
            )?;
            let expected = through - first + 1;
            if deleted as u64 != expected {
                // Dropping `tx` rolls the deletion back.
                return Err(JournalError::Corrupt {
                    seq: first,
                    reason: format!(
                        "archiving {first}..={through} found {deleted} records instead of {expected}"
                    ),
                });
            }
            {
                let mut upsert = tx.prepare_cached(UPSERT_META)?;
                upsert.execute(params![META_ARCHIVED_THROUGH, to_i64(through)])?;
                upsert.execute(params![META_ARCHIVED_RECORDED_AT, last_recorded_at])?;
                upsert.execute(params![META_ARCHIVE_LOCATION, location])?;
            }
            tx.commit()?;
            Ok(expected)
        })();
        match &result {
            Ok(_) => *lock(&self.shared.archive_location) = Some(location.to_owned()),
            Err(_) => self.shared.first_seq.store(first, Ordering::Release),
        }
        result
    }

    fn vacuum(&mut self) -> Result<u64, JournalError> {
        self.conn.execute_batch("VACUUM")?;
        // The rewritten pages went through the WAL: fold them in and shrink the WAL again.
        self.checkpoint_truncate()
    }

    /// Copies the WAL into the database and truncates it (unless a reader still needs its
    /// frames: then the checkpointers finish later); returns the database file's size.
    fn checkpoint_truncate(&mut self) -> Result<u64, JournalError> {
        // The background checkpointer's PASSIVE round may hold the checkpoint lock for a
        // moment (busy): maintenance is rare, so it waits a little for it rather than leave
        // the WAL at its largest.
        let mut busy: i64 = 1;
        for attempt in 0..20 {
            busy = self
                .conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
            if busy == 0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5 * (attempt + 1)));
        }
        if busy != 0 {
            tracing::debug!("journal checkpoint after maintenance deferred: readers are busy");
        }
        let (pages, page_size): (i64, i64) = self.conn.query_row(
            "SELECT page_count, page_size FROM pragma_page_count, pragma_page_size",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(to_u64(pages * page_size))
    }

    fn close(mut self) -> Result<(), JournalError> {
        if let Some(c) = self.checkpointer.take() {
            c.stop();
        }
        if lock(&self.shared.failed).is_none() {
            self.conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        }
        self.conn.close().map_err(|(_, e)| JournalError::Sqlite(e))
    }

    fn commit(&mut self, batch: Batch) {
        // A flush is a barrier behind everything queued before it: after a failed commit that
        // is never "durable" (a caller would show state the disk does not hold).
        if let Some(msg) = lock(&self.shared.failed).clone() {
            return fail(batch, &msg);
        }
        if batch.appends.is_empty() && batch.acks.is_empty() {
            for f in batch.flushes {
                let _ = f.send(Ok(()));
            }
            return;
        }
        let fault = std::mem::replace(&mut *lock(&self.shared.fault), Fault::None);
        match fault {
            Fault::None => {}
            Fault::DelayCommits(d) => {
                *lock(&self.shared.fault) = fault;
                std::thread::sleep(d);
            }
            Fault::FailNextCommit => {
                let msg = "injected commit failure".to_string();
                tracing::error!(error = %msg, "journal commit failed; the journal stops accepting appends");
                *lock(&self.shared.failed) = Some(msg.clone());
                return fail(batch, &msg);
            }
        }
        // Commit time for the whole batch, never earlier than the previous batch.
        let recorded_at = Timestamp::now().as_nanos().max(self.last_recorded);
        match self.write(&batch, recorded_at) {
            Ok(next_seq) => {
                let first = self.next_seq;
                self.next_seq = next_seq;
                self.last_recorded = recorded_at;
                let last = next_seq - 1;
                let recorded = Timestamp::from_nanos(recorded_at);
                let mut records = Vec::with_capacity(batch.events);
                let mut replies = Vec::with_capacity(batch.appends.len());
                let mut seq = first;
                for (events, reply) in batch.appends {
                    let start = seq;
                    for p in events {
                        records.push(Arc::new(Record {
                            seq,
                            recorded_at: recorded,
                            subject: p.subject,
                            event: p.event,
                        }));
                        seq += 1;
                    }
                    replies.push((reply, start..=seq - 1));
                }
                // The tail first, then `durable`: a tailer woken by `durable` finds the records
                // in memory. Evicted records are freed after the lock is released.
                let evicted = self
                    .shared
                    .tail
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(records);
                // Published before the replies, so a caller that sees its ack also sees
                // `last_seq()` and `watch()` at or past its sequence.
                self.shared.last_seq.store(last, Ordering::Release);
                self.shared.durable.send_replace(last);
                for (reply, range) in replies {
                    let _ = reply.send(Ok(range));
                }
                drop(evicted);
                for f in batch.flushes {
                    let _ = f.send(Ok(()));
                }
            }
            Err(e) => {
                // After a failed commit (and possibly a failed fsync) what is on disk is
                // unknown; refusing every later append is the only safe answer.
                let msg = e.to_string();
                tracing::error!(error = %msg, "journal commit failed; the journal stops accepting appends");
                *lock(&self.shared.failed) = Some(msg.clone());
                fail(batch, &msg);
            }
        }
    }

    /// Writes the batch in one transaction; returns the next free sequence number.
    fn write(&mut self, batch: &Batch, recorded_at: i64) -> Result<u64, rusqlite::Error> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut seq = self.next_seq;
        {
            let mut insert = tx.prepare_cached(INSERT_EVENT)?;
            for (events, _) in &batch.appends {
                for p in events {
                    insert.execute(params![
                        to_i64(seq),
                        recorded_at,
                        p.kind,
                        p.subject,
                        p.payload,
                        i64::from(p.crc)
                    ])?;
                    seq += 1;
                }
            }
        }
        if !batch.acks.is_empty() {
            let mut upsert = tx.prepare_cached(UPSERT_ACK)?;
            for (name, acked) in &batch.acks {
                upsert.execute(params![name, to_i64(*acked)])?;
            }
        }
        tx.commit()?;
        Ok(seq)
    }
}

fn fail(batch: Batch, msg: &str) {
    for (_, reply) in batch.appends {
        let _ = reply.send(Err(JournalError::WriterFailed(msg.to_owned())));
    }
    for f in batch.flushes {
        let _ = f.send(Err(JournalError::WriterFailed(msg.to_owned())));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{AccountId, OrderId};

    #[test]
    fn the_wal_bound_is_32_mib_in_the_page_size_of_new_and_existing_files() {
        let dir = tempfile::tempdir().expect("dir");
        let pragmas = |c: &Connection| -> (i64, i64) {
            let get = |p: &str| {
                c.query_row(&format!("PRAGMA {p}"), [], |r| r.get(0))
                    .expect(p)
            };
            (get("page_size"), get("wal_autocheckpoint"))
        };
        let fresh = Connection::open(dir.path().join("new")).expect("open");
        configure_writer(&fresh).expect("configure");
        assert_eq!(pragmas(&fresh), (4_096, 8_192));

        // A journal made with 16 KiB pages keeps them, and its WAL bound stays 32 MiB.
        let old = dir.path().join("old");
        {
            let c = Connection::open(&old).expect("open");
            c.pragma_update(None, "page_size", 16_384)
                .expect("page size");
            c.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))
                .expect("wal");
            c.execute_batch("CREATE TABLE t (x)").expect("table");
        }
        let c = Connection::open(&old).expect("reopen");
        configure_writer(&c).expect("configure");
        assert_eq!(pragmas(&c), (16_384, 2_048));
    }

    fn accepted(n: u64) -> Event {
        Event::OrderAccepted {
            order_id: OrderId(n),
            account: AccountId::new("acct1").expect("account"),
            ts: Timestamp::from_secs(1_700_000_000),
        }
    }

    #[test]
    fn a_lone_ack_waits_for_the_next_append_or_its_linger_instead_of_a_commit_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.db");
        let (journal, _) = Journal::open(&path).unwrap();
        journal.append_blocking(accepted(1)).unwrap();
        journal.append_blocking(accepted(2)).unwrap();
        let stored = |j: &Journal| j.stored_consumer_positions().unwrap().get("c").copied();

        // Alone, the ack is not written at once (each commit is an fsync an order waits for).
        let acked_at = Instant::now();
        journal.ack("c", 1).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let early = stored(&journal);
        if acked_at.elapsed() < ACK_LINGER / 2 {
            assert_eq!(early, None, "a lone ack was committed on its own");
        }
        // The next append carries it.
        journal.append_blocking(accepted(3)).unwrap();
        assert_eq!(stored(&journal), Some(1));

        // Without appends it is written after its linger.
        journal.ack("c", 2).unwrap();
        let deadline = Instant::now() + ACK_LINGER * 5;
        while stored(&journal) != Some(2) {
            assert!(Instant::now() < deadline, "a lone ack was never written");
            std::thread::sleep(Duration::from_millis(20));
        }

        // A flush writes held acks, and closing the journal writes them too.
        journal.ack("c", 3).unwrap();
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(journal.flush())
            .unwrap();
        assert_eq!(stored(&journal), Some(3));
        journal.ack("d", 3).unwrap();
        drop(journal);
        let (journal, _) = Journal::open(&path).unwrap();
        assert_eq!(journal.consumer_position("d"), Some(3));
        assert_eq!(journal.consumer_position("c"), Some(3));
    }

    #[test]
    fn repeated_reads_reuse_the_cached_statement_without_re_preparing_it() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, _) = Journal::open(&dir.path().join("events.db")).unwrap();
        for n in 1..=20 {
            journal.append_blocking(accepted(n)).unwrap();
        }
        // Different positions and limits, as subscriptions and `read_from` callers use them.
        for (from, limit) in [(1, 5), (3, 512), (7, 1), (20, 4_096), (1, 20), (21, 10)] {
            let records = journal.read_from(from, limit).unwrap();
            let expected: Vec<u64> = (from..=20).take(limit).collect();
            assert_eq!(records.iter().map(|r| r.seq).collect::<Vec<_>>(), expected);
        }
        // One thread: every read above used the one pooled connection.
        let conn = journal.reader().unwrap();
        assert_eq!(lock(&journal.inner.readers).len(), 0);
        let stmt = conn.prepare_cached(SELECT_FROM).unwrap();
        assert_eq!(stmt.get_status(rusqlite::StatementStatus::RePrepare), 0);
        assert!(stmt.get_status(rusqlite::StatementStatus::VmStep) > 0);
    }

    #[test]
    fn the_tail_keeps_the_last_records_and_refuses_positions_outside_them() {
        let filter = SubjectFilter::all();
        let mut tail = Tail::new(5, 3);
        assert!(tail.read(5, 10, &filter).is_none());
        let record = |seq| {
            Arc::new(Record {
                seq,
                recorded_at: Timestamp::from_secs(1),
                subject: accepted(seq).subject(),
                event: accepted(seq),
            })
        };
        assert!(tail.push((5..=6).map(record).collect()).is_empty());
        let evicted = tail.push((7..=9).map(record).collect());
        assert_eq!(evicted.iter().map(|r| r.seq).collect::<Vec<_>>(), [5, 6]);
        assert!(tail.read(6, 10, &filter).is_none(), "evicted");
        assert!(tail.read(10, 10, &filter).is_none(), "not committed yet");
        let (got, next) = tail.read(7, 2, &filter).unwrap();
        assert_eq!(
            (got.iter().map(|r| r.seq).collect::<Vec<_>>(), next),
            (vec![7, 8], 9)
        );
        let other = SubjectFilter::new("fills.>").unwrap();
        let (got, next) = tail.read(8, 10, &other).unwrap();
        assert_eq!((got.len(), next), (0, 10));
    }
}
