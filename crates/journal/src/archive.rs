//! Journal lifecycle: moving old events out of the hot journal into compressed, checksummed
//! segment files, so the journal file stops growing with history.
//!
//! # What may be archived
//!
//! Every durable consumer stores its acked position in the journal's `consumers` table, and a
//! consumer acks only what its snapshot or store made durable. So events up to the *minimum*
//! stored position of all durable consumers are never needed for a restart: those (or fewer,
//! with [`ArchiveOptions::through`]) are what [`Journal::archive`] moves. It refuses (and
//! changes nothing) when no consumer has acked anything, or when `through` is beyond the
//! minimum (unless [`ArchiveOptions::force`]).
//!
//! # Segment format (version 1)
//!
//! An archive is a folder (or an S3 prefix) holding segment files and one manifest.
//!
//! * `segment-<first:020>-<last:020>.ndjson.gz`: a single gzip member (deflate, mtime 0, so the
//!   same records always compress to the same bytes) of UTF-8 lines, one per event, in sequence
//!   order, without gaps, each ending in `\n`:
//!
//!   ```text
//!   {"seq":17,"recorded_at":1700000000123456789,"subject":"orders.acct1","kind":"order_accepted","crc":305419896,"payload":{...}}
//!   ```
//!
//!   `recorded_at` is the commit time in ns since the Unix epoch; `payload` is the stored JSON
//!   of the `model::Event`, byte for byte as it was in the journal, and `crc` its CRC-32
//!   (the journal's own checksum), so `zcat segment-*.ndjson.gz | jq .payload` shows the events
//!   and a reader can verify every record. `payload` is always the last key: a reader finds it
//!   by the first `,"payload":` in the line (which cannot occur inside the JSON strings before
//!   it, since a quote in a string is escaped) and checks the CRC over the exact bytes.
//! * `manifest.json`: `{"format":"trade2026-journal-archive","version":1,"journal_id":..,
//!   "segments":[{"name","first_seq","last_seq","count","bytes","sha256","ndjson_bytes",
//!   "first_recorded_at","last_recorded_at"},..]}`. Segments are listed in order and cover
//!   `1..=last_seq` contiguously; `bytes` and `sha256` (lower-case hex) are of the `.gz` file,
//!   `ndjson_bytes` of its decompressed lines. `journal_id` is the journal's own id: an archive
//!   never takes segments of another journal.
//!
//! A reader ([`crate::HistoryReader`], [`verify_archive`]) checks each line's CRC, the gzip
//! trailer, the file's length and SHA-256 against the manifest, and that sequences run without
//! gaps from segment to segment and on into the journal.
//!
//! # Crash safety
//!
//! For each segment: the file is written under a temporary name, fsynced, renamed to its final
//! name and the folder fsynced; then the manifest is rewritten the same way (temporary file,
//! fsync, rename); only then are the segment's events deleted from the journal, in
//! transactions of at most 50,000 rows that also record the new
//! `archived_through` in the journal's `meta` table. (In S3 an object appears whole when its
//! upload completes, so the same order holds.) A crash therefore leaves one of:
//! * a segment file not in the manifest: unreferenced; the next run deletes it and writes the
//!   range again;
//! * a segment in the manifest whose events are still (partly) in the journal: the next run
//!   checks the archived copy against the journal record by record and then deletes them (a
//!   rerun is idempotent);
//! * a consistent state.
//!
//! Nothing is ever deleted from the journal before a durable archived copy exists.
//!
//! # Disk behaviour
//!
//! SQLite puts the pages freed by the deletion on its free list and reuses them for later
//! appends before growing the file, so with periodic archiving the journal file stays at its
//! high-water mark instead of growing with history ([`DiskUsage::free_bytes`] shows the reusable
//! part). [`ArchiveOptions::vacuum`] rewrites the file (`VACUUM`) to return the free pages to
//! the filesystem: it costs a copy of the retained events (small right after an archive) and
//! blocks appends meanwhile, so it is for an operator's one-off shrink. The journal does not use
//! `auto_vacuum=INCREMENTAL` (which `PRAGMA incremental_vacuum` needs): it would add a
//! pointer-map page write to many group commits to save a rewrite that is rarely wanted.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::bufread::GzDecoder;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::JournalError;
use crate::journal::{DISCARD_CHUNK, DiskUsage, Journal, RawRecord, Record};

/// The manifest's object name.
pub const MANIFEST_NAME: &str = "manifest.json";
/// `format` of a manifest.
pub const ARCHIVE_FORMAT: &str = "trade2026-journal-archive";
/// `version` of the manifest and segment format this crate writes and reads.
pub const ARCHIVE_VERSION: u32 = 1;
/// Prefix of temporary files; a leftover one is from an interrupted write.
const TMP_PREFIX: &str = ".tmp-";
/// A line longer than this is damage, not an event (the largest events, book snapshots, are
/// a few hundred KiB); it bounds the memory a damaged file can make a reader allocate.
const MAX_LINE_BYTES: u64 = 64 << 20;
/// Journal rows read per query while writing a segment.
const READ_BATCH: usize = 4_096;

/// The file name of the segment holding `first..=last`.
pub fn segment_name(first: u64, last: u64) -> String {
    format!("segment-{first:020}-{last:020}.ndjson.gz")
}

/// `(first, last)` of a segment file name.
pub fn parse_segment_name(name: &str) -> Option<(u64, u64)> {
    let rest = name.strip_prefix("segment-")?.strip_suffix(".ndjson.gz")?;
    let (first, last) = rest.split_once('-')?;
    if first.len() != 20 || last.len() != 20 {
        return None;
    }
    Some((first.parse().ok()?, last.parse().ok()?))
}

/// One segment file as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentInfo {
    pub name: String,
    pub first_seq: u64,
    pub last_seq: u64,
    /// Events in the segment (`last_seq - first_seq + 1`).
    pub count: u64,
    /// Size of the compressed file.
    pub bytes: u64,
    /// SHA-256 of the compressed file, lower-case hex.
    pub sha256: String,
    /// Size of the decompressed NDJSON.
    pub ndjson_bytes: u64,
    /// Commit times (ns since the Unix epoch) of the first and last event.
    pub first_recorded_at: i64,
    pub last_recorded_at: i64,
}

/// The archive's table of contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    /// [`Journal::journal_id`] of the journal the events came from.
    pub journal_id: String,
    /// In sequence order, contiguous from 1.
    pub segments: Vec<SegmentInfo>,
}

impl Manifest {
    pub fn new(journal_id: &str) -> Manifest {
        Manifest {
            format: ARCHIVE_FORMAT.to_owned(),
            version: ARCHIVE_VERSION,
            journal_id: journal_id.to_owned(),
            segments: Vec::new(),
        }
    }

    /// The last archived sequence (0 when empty).
    pub fn last_seq(&self) -> u64 {
        self.segments.last().map_or(0, |s| s.last_seq)
    }

    /// Events in all segments.
    pub fn events(&self) -> u64 {
        self.segments.iter().map(|s| s.count).sum()
    }

    /// Compressed bytes of all segments.
    pub fn bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.bytes).sum()
    }

    /// Format, version, names and contiguity from 1; the reason when invalid.
    pub fn validate(&self) -> Result<(), String> {
        if self.format != ARCHIVE_FORMAT {
            return Err(format!(
                "format is {:?}, not {ARCHIVE_FORMAT:?}",
                self.format
            ));
        }
        if self.version != ARCHIVE_VERSION {
            return Err(format!(
                "version {} is not the supported version {ARCHIVE_VERSION}",
                self.version
            ));
        }
        let mut next = 1;
        for s in &self.segments {
            if s.first_seq != next || s.last_seq < s.first_seq {
                return Err(format!(
                    "segment {} covers {}..={} but the next sequence is {next}",
                    s.name, s.first_seq, s.last_seq
                ));
            }
            if s.count != s.last_seq - s.first_seq + 1 {
                return Err(format!("segment {} counts {} events", s.name, s.count));
            }
            if s.name != segment_name(s.first_seq, s.last_seq) {
                return Err(format!("segment {} is misnamed", s.name));
            }
            next = s.last_seq + 1;
        }
        Ok(())
    }
}

/// Where archived segments live: a local folder ([`LocalArchive`]) or an object store (the
/// binary implements S3). Objects are addressed by plain names (no `/`).
///
/// Contract: `put` and `put_file` make the object durable and visible *whole* under `name`
/// (replacing an older one atomically) before they return; the archiver relies on it to
/// delete events only after their segment and the manifest are durable.
pub trait ArchiveStore: Send + Sync {
    /// A folder path or an `s3://bucket/prefix` URL: shown in messages and stored in the
    /// journal as where its archived events are.
    fn location(&self) -> String;
    /// A local folder for building a segment before `put_file`. For a local archive it is the
    /// archive folder itself, so `put_file` is a rename.
    fn staging_dir(&self) -> PathBuf;
    /// Stores the (fsynced) file at `staged` as `name`; the staged file is gone afterwards.
    fn put_file(&self, name: &str, staged: &Path) -> Result<(), JournalError>;
    /// Stores `bytes` as `name`.
    fn put(&self, name: &str, bytes: &[u8]) -> Result<(), JournalError>;
    /// The whole object, `None` when absent.
    fn get(&self, name: &str) -> Result<Option<Vec<u8>>, JournalError>;
    /// A stream of the object's bytes.
    fn open(&self, name: &str) -> Result<Box<dyn Read + Send>, JournalError>;
    /// Names of every object.
    fn list(&self) -> Result<Vec<String>, JournalError>;
    /// Removes `name` (absent is fine).
    fn delete(&self, name: &str) -> Result<(), JournalError>;
}

/// An archive in a local folder.
#[derive(Debug, Clone)]
pub struct LocalArchive {
    dir: PathBuf,
}

impl LocalArchive {
    /// The folder `dir` (created if missing; stored as an absolute path).
    pub fn new(dir: &Path) -> Result<LocalArchive, JournalError> {
        std::fs::create_dir_all(dir)?;
        Ok(LocalArchive {
            dir: std::fs::canonicalize(dir)?,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, name: &str) -> Result<PathBuf, JournalError> {
        if name.is_empty() || name.contains(['/', '\\']) || name == "." || name == ".." {
            return Err(self.err(format!("{name:?} is not a plain object name")));
        }
        Ok(self.dir.join(name))
    }

    fn err(&self, message: impl std::fmt::Display) -> JournalError {
        JournalError::ArchiveStore {
            location: self.location(),
            message: message.to_string(),
        }
    }

    /// A rename is durable once the directory entry is.
    fn sync_dir(&self) -> Result<(), JournalError> {
        File::open(&self.dir)?.sync_all()?;
        Ok(())
    }
}

impl ArchiveStore for LocalArchive {
    fn location(&self) -> String {
        self.dir.display().to_string()
    }

    fn staging_dir(&self) -> PathBuf {
        self.dir.clone()
    }

    fn put_file(&self, name: &str, staged: &Path) -> Result<(), JournalError> {
        std::fs::rename(staged, self.path(name)?)?;
        self.sync_dir()
    }

    fn put(&self, name: &str, bytes: &[u8]) -> Result<(), JournalError> {
        let tmp = self.path(&format!("{TMP_PREFIX}{name}"))?;
        {
            let mut f = File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
        }
        self.put_file(name, &tmp)
    }

    fn get(&self, name: &str) -> Result<Option<Vec<u8>>, JournalError> {
        match std::fs::read(self.path(name)?) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn open(&self, name: &str) -> Result<Box<dyn Read + Send>, JournalError> {
        match File::open(self.path(name)?) {
            Ok(f) => Ok(Box::new(f)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(self.err(format!("{name} is missing")))
            }
            Err(e) => Err(e.into()),
        }
    }

    fn list(&self) -> Result<Vec<String>, JournalError> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            if entry.file_type()?.is_file()
                && let Some(name) = entry.file_name().to_str()
            {
                names.push(name.to_owned());
            }
        }
        names.sort();
        Ok(names)
    }

    fn delete(&self, name: &str) -> Result<(), JournalError> {
        match std::fs::remove_file(self.path(name)?) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// The archive's manifest, checked; `None` when the archive is empty (no manifest yet).
pub fn load_manifest(store: &dyn ArchiveStore) -> Result<Option<Manifest>, JournalError> {
    let Some(bytes) = store.get(MANIFEST_NAME)? else {
        return Ok(None);
    };
    let corrupt = |reason: String| JournalError::ArchiveCorrupt {
        location: store.location(),
        name: MANIFEST_NAME.to_owned(),
        reason,
    };
    let manifest: Manifest =
        serde_json::from_slice(&bytes).map_err(|e| corrupt(format!("does not decode: {e}")))?;
    manifest.validate().map_err(corrupt)?;
    Ok(Some(manifest))
}

fn write_manifest(store: &dyn ArchiveStore, manifest: &Manifest) -> Result<(), JournalError> {
    let mut bytes =
        serde_json::to_vec_pretty(manifest).map_err(|e| JournalError::ArchiveStore {
            location: store.location(),
            message: format!("cannot encode the manifest: {e}"),
        })?;
    bytes.push(b'\n');
    store.put(MANIFEST_NAME, &bytes)
}

/// How much to archive and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveOptions {
    /// Archive through this sequence instead of the minimum stored consumer position; refused
    /// when beyond that minimum unless `force`.
    pub through: Option<u64>,
    /// Allow `through` beyond what every durable consumer acked (or with no acks at all): a
    /// consumer that then restarts from before `through` fails with [`JournalError::Archived`].
    pub force: bool,
    /// Events per segment file at most (a run's last segment may be shorter).
    pub segment_events: u64,
    /// Rewrite the journal file afterwards (`VACUUM`) so the freed pages go back to the
    /// filesystem; without it they are reused by later appends.
    pub vacuum: bool,
}

impl Default for ArchiveOptions {
    fn default() -> Self {
        ArchiveOptions {
            through: None,
            force: false,
            // ~1 M events: a few hundred MB of NDJSON, tens of MB compressed.
            segment_events: 1_000_000,
            vacuum: false,
        }
    }
}

/// What an archive run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveReport {
    pub location: String,
    /// The durable consumers' stored positions that bounded the run.
    pub consumer_positions: BTreeMap<String, u64>,
    /// `archived_through` before and after the run.
    pub archived_before: u64,
    pub archived_through: u64,
    /// Segments this run wrote (and added to the manifest).
    pub segments: Vec<SegmentInfo>,
    /// Events deleted from the journal (including any archived by an interrupted run).
    pub events_deleted: u64,
    /// Files of interrupted runs removed (never listed in the manifest).
    pub orphans_removed: Vec<String>,
    /// The journal on disk before and after.
    pub disk_before: DiskUsage,
    pub disk_after: DiskUsage,
    /// The whole archive after the run: events and compressed bytes.
    pub archive_events: u64,
    pub archive_bytes: u64,
}

impl ArchiveReport {
    /// Events written to new segments by this run.
    pub fn events_written(&self) -> u64 {
        self.segments.iter().map(|s| s.count).sum()
    }

    /// Compressed bytes written by this run.
    pub fn bytes_written(&self) -> u64 {
        self.segments.iter().map(|s| s.bytes).sum()
    }

    /// Decompressed NDJSON bytes written by this run.
    pub fn ndjson_bytes_written(&self) -> u64 {
        self.segments.iter().map(|s| s.ndjson_bytes).sum()
    }
}

impl Journal {
    /// Moves events that every durable consumer has acked (see the [module docs](self)) into
    /// segment files in `store`, then deletes them from the journal. Works on an open journal
    /// while appends continue (they wait only for each bounded deletion transaction).
    ///
    /// Blocking (SQLite reads, file or network writes): call it from a blocking thread.
    pub fn archive(
        &self,
        store: &dyn ArchiveStore,
        options: &ArchiveOptions,
    ) -> Result<ArchiveReport, JournalError> {
        let _one_run = self.archive_guard();
        let location = store.location();
        let disk_before = self.disk_bytes()?;
        let positions = self.stored_consumer_positions()?;
        let limit = archive_limit(&positions, options, self.last_seq())?;
        let before = self.archived_through();

        let mut manifest = match load_manifest(store)? {
            Some(m) => m,
            None if before > 0 => {
                return Err(JournalError::ArchiveRefused(format!(
                    "events 1..={before} of this journal were archived to {}, and {location} \
                     holds no archive: archive to the same place, so its history stays in one archive",
                    self.archive_location()
                        .unwrap_or_else(|| "an unrecorded location".into())
                )));
            }
            None => Manifest::new(self.journal_id()),
        };
        if manifest.journal_id != self.journal_id() {
            return Err(JournalError::ArchiveRefused(format!(
                "the archive at {location} belongs to another journal (id {}, this journal is {})",
                manifest.journal_id,
                self.journal_id()
            )));
        }
        if manifest.last_seq() < before {
            return Err(JournalError::ArchiveRefused(format!(
                "the archive at {location} ends at {}, but this journal already archived 1..={before} \
                 (to {}): archive to the same place",
                manifest.last_seq(),
                self.archive_location()
                    .unwrap_or_else(|| "an unrecorded location".into())
            )));
        }
        let orphans_removed = remove_orphans(store, &manifest)?;

        let mut report = ArchiveReport {
            location: location.clone(),
            consumer_positions: positions,
            archived_before: before,
            archived_through: before,
            segments: Vec::new(),
            events_deleted: 0,
            orphans_removed,
            disk_before,
            disk_after: disk_before,
            archive_events: manifest.events(),
            archive_bytes: manifest.bytes(),
        };

        // 1. Archived by an earlier run that stopped before deleting them from the journal.
        let archived = manifest.last_seq();
        if archived > before && limit > before {
            let upto = archived.min(limit);
            let last_recorded_at = compare_with_journal(self, store, &manifest, before + 1, upto)?;
            report.events_deleted +=
                self.discard_in_chunks(before + 1, upto, &location, last_recorded_at)?;
            report.archived_through = upto;
        }

        // 2. New segments, each durable (and listed) before its events leave the journal.
        let mut next = archived.max(before) + 1;
        let per_segment = options.segment_events.max(1);
        while next <= limit {
            let last = next.saturating_add(per_segment - 1).min(limit);
            let info = write_segment(self, store, next, last)?;
            manifest.segments.push(info.clone());
            write_manifest(store, &manifest)?;
            tracing::info!(
                segment = %info.name,
                events = info.count,
                bytes = info.bytes,
                "journal segment archived"
            );
            report.events_deleted +=
                self.discard_in_chunks(next, last, &location, info.last_recorded_at)?;
            report.archived_through = last;
            report.segments.push(info);
            next = last + 1;
        }
        report.archive_events = manifest.events();
        report.archive_bytes = manifest.bytes();

        if options.vacuum {
            self.vacuum()?;
        } else if report.events_deleted > 0 {
            self.checkpoint()?;
        }
        report.disk_after = self.disk_bytes()?;
        Ok(report)
    }

    fn discard_in_chunks(
        &self,
        first: u64,
        last: u64,
        location: &str,
        last_recorded_at: i64,
    ) -> Result<u64, JournalError> {
        let mut deleted = 0;
        let mut through = first.saturating_sub(1);
        while through < last {
            through = through.saturating_add(DISCARD_CHUNK).min(last);
            deleted += self.discard_through(through, location, last_recorded_at)?;
        }
        Ok(deleted)
    }
}

/// The sequence to archive through, or why not.
fn archive_limit(
    positions: &BTreeMap<String, u64>,
    options: &ArchiveOptions,
    last: u64,
) -> Result<u64, JournalError> {
    let listed = || {
        positions
            .iter()
            .map(|(name, seq)| format!("{name}={seq}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let minimum = positions
        .iter()
        .min_by_key(|(_, seq)| **seq)
        .map(|(name, seq)| (name.as_str(), *seq));
    match options.through {
        Some(through) => {
            if through > last {
                return Err(JournalError::ArchiveRefused(format!(
                    "--through {through} is beyond the journal's last event {last}"
                )));
            }
            match minimum {
                None if !options.force => Err(JournalError::ArchiveRefused(format!(
                    "no durable consumer has acknowledged any event (the consumers table is empty), \
                     so nothing is known to be safe to archive; --force archives through {through} anyway"
                ))),
                Some((name, acked)) if through > acked && !options.force => {
                    Err(JournalError::ArchiveRefused(format!(
                        "--through {through} is beyond what durable consumer {name:?} acknowledged \
                         ({acked}); a restart of it would need the events after {acked} \
                         (positions: {}); --force archives anyway",
                        listed()
                    )))
                }
                _ => Ok(through),
            }
        }
        None => match minimum {
            None => Err(JournalError::ArchiveRefused(
                "no durable consumer has acknowledged any event (the consumers table is empty), \
                 so nothing is known to be safe to archive"
                    .to_owned(),
            )),
            Some((name, 0)) => Err(JournalError::ArchiveRefused(format!(
                "durable consumer {name:?} has not acknowledged any event yet, so nothing is \
                 known to be safe to archive (positions: {})",
                listed()
            ))),
            Some((_, acked)) => Ok(acked.min(last)),
        },
    }
}

/// Deletes segment files and temporary files the manifest does not list (left by a run that
/// stopped before its manifest write); returns their names.
fn remove_orphans(
    store: &dyn ArchiveStore,
    manifest: &Manifest,
) -> Result<Vec<String>, JournalError> {
    let listed: std::collections::HashSet<&str> =
        manifest.segments.iter().map(|s| s.name.as_str()).collect();
    let mut removed = Vec::new();
    for name in store.list()? {
        let is_tmp = name
            .strip_prefix(TMP_PREFIX)
            .is_some_and(|rest| rest == MANIFEST_NAME || parse_segment_name(rest).is_some());
        let orphan = parse_segment_name(&name).is_some() && !listed.contains(name.as_str());
        if is_tmp || orphan {
            tracing::warn!(name, location = %store.location(), "removing a file of an interrupted archive run");
            store.delete(&name)?;
            removed.push(name);
        }
    }
    Ok(removed)
}

/// Checks the archived copy of `first..=last` (archived, not yet deleted) against the journal
/// record by record; returns the `recorded_at` of `last`.
fn compare_with_journal(
    journal: &Journal,
    store: &dyn ArchiveStore,
    manifest: &Manifest,
    first: u64,
    last: u64,
) -> Result<i64, JournalError> {
    let location = store.location();
    let mut pending: std::collections::VecDeque<RawRecord> = Default::default();
    let mut next_read = first;
    let mut last_recorded_at = 0;
    for info in manifest
        .segments
        .iter()
        .filter(|s| s.last_seq >= first && s.first_seq <= last)
    {
        // The whole segment is read, so its length and SHA-256 are checked too.
        let mut reader = SegmentReader::open(store, info)?;
        while let Some(archived) = reader.next_raw()? {
            if archived.seq < first || archived.seq > last {
                continue;
            }
            if pending.is_empty() {
                pending.extend(journal.read_raw(next_read, READ_BATCH)?);
                next_read += pending.len() as u64;
            }
            let Some(stored) = pending.pop_front() else {
                return Err(JournalError::ArchiveRefused(format!(
                    "the archive at {location} holds {} but the journal has no such record",
                    archived.seq
                )));
            };
            if stored != archived {
                return Err(JournalError::ArchiveCorrupt {
                    location,
                    name: info.name.clone(),
                    reason: format!(
                        "record {} differs from the journal's (is the archive from this journal?)",
                        archived.seq
                    ),
                });
            }
            last_recorded_at = archived.recorded_at;
        }
    }
    Ok(last_recorded_at)
}

/// Counts and hashes what passes through.
struct Hashing<T> {
    inner: T,
    sha: Sha256,
    bytes: u64,
}

impl<T> Hashing<T> {
    fn new(inner: T) -> Self {
        Hashing {
            inner,
            sha: Sha256::new(),
            bytes: 0,
        }
    }

    fn finish(self) -> (T, String, u64) {
        (self.inner, format!("{:x}", self.sha.finalize()), self.bytes)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sha.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sha.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// One NDJSON line of a segment (see the module docs); `payload` goes last, verbatim.
fn write_line(out: &mut impl Write, r: &RawRecord) -> std::io::Result<()> {
    write!(
        out,
        "{{\"seq\":{},\"recorded_at\":{},\"subject\":",
        r.seq, r.recorded_at
    )?;
    serde_json::to_writer(&mut *out, &r.subject)?;
    out.write_all(b",\"kind\":")?;
    serde_json::to_writer(&mut *out, &r.kind)?;
    write!(out, ",\"crc\":{},\"payload\":", r.crc)?;
    out.write_all(&r.payload)?;
    out.write_all(b"}\n")
}

const PAYLOAD_KEY: &[u8] = b",\"payload\":";

#[derive(Deserialize)]
struct LineHeader {
    seq: u64,
    recorded_at: i64,
    subject: String,
    kind: String,
    crc: u32,
}

/// Parses a line (without its `\n`) and checks its CRC.
fn parse_line(line: &[u8]) -> Result<RawRecord, String> {
    let at = line
        .windows(PAYLOAD_KEY.len())
        .position(|w| w == PAYLOAD_KEY)
        .ok_or("the line has no payload")?;
    let payload = line[at + PAYLOAD_KEY.len()..]
        .strip_suffix(b"}")
        .ok_or("the line does not end with }")?;
    let mut header = Vec::with_capacity(at + 1);
    header.extend_from_slice(&line[..at]);
    header.push(b'}');
    let h: LineHeader =
        serde_json::from_slice(&header).map_err(|e| format!("the line does not decode: {e}"))?;
    let crc = crc32fast::hash(payload);
    if crc != h.crc {
        return Err(format!(
            "record {}: payload checksum mismatch (stored {:#010x}, computed {crc:#010x})",
            h.seq, h.crc
        ));
    }
    Ok(RawRecord {
        seq: h.seq,
        recorded_at: h.recorded_at,
        kind: h.kind,
        subject: h.subject,
        payload: payload.to_vec(),
        crc,
    })
}

/// Writes `first..=last` from the journal into a new segment in `store`.
fn write_segment(
    journal: &Journal,
    store: &dyn ArchiveStore,
    first: u64,
    last: u64,
) -> Result<SegmentInfo, JournalError> {
    let name = segment_name(first, last);
    let staged = store.staging_dir().join(format!("{TMP_PREFIX}{name}"));
    let result = (|| {
        let file = File::create(&staged)?;
        let mut gz = GzEncoder::new(Hashing::new(BufWriter::new(file)), Compression::default());
        let (mut next, mut ndjson_bytes) = (first, 0u64);
        let (mut first_recorded_at, mut last_recorded_at) = (0, 0);
        let mut line = Vec::with_capacity(1024);
        while next <= last {
            let want = usize::try_from(last - next + 1).unwrap_or(usize::MAX);
            let records = journal.read_raw(next, want.min(READ_BATCH))?;
            if records.is_empty() {
                return Err(JournalError::Corrupt {
                    seq: next,
                    reason: "record is missing while archiving".to_owned(),
                });
            }
            for r in &records {
                if r.payload.contains(&b'\n') {
                    // Compact serde_json never writes one; it would split the line.
                    return Err(JournalError::Corrupt {
                        seq: r.seq,
                        reason: "payload contains a raw newline".to_owned(),
                    });
                }
                if r.seq == first {
                    first_recorded_at = r.recorded_at;
                }
                last_recorded_at = r.recorded_at;
                line.clear();
                write_line(&mut line, r)?;
                gz.write_all(&line)?;
                ndjson_bytes += line.len() as u64;
            }
            next += records.len() as u64;
        }
        let (buffered, sha256, bytes) = gz.finish()?.finish();
        let file = buffered.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        store.put_file(&name, &staged)?;
        Ok(SegmentInfo {
            name: name.clone(),
            first_seq: first,
            last_seq: last,
            count: last - first + 1,
            bytes,
            sha256,
            ndjson_bytes,
            first_recorded_at,
            last_recorded_at,
        })
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&staged);
    }
    result
}

type SegmentLines = BufReader<GzDecoder<BufReader<Hashing<Box<dyn Read + Send>>>>>;

/// Reads one segment line by line, verifying each line's CRC and the sequence, and at the end
/// the segment's length and SHA-256 against the manifest.
pub(crate) struct SegmentReader {
    location: String,
    info: SegmentInfo,
    lines: Option<SegmentLines>,
    next_seq: u64,
    line: Vec<u8>,
}

impl SegmentReader {
    pub(crate) fn open(
        store: &dyn ArchiveStore,
        info: &SegmentInfo,
    ) -> Result<SegmentReader, JournalError> {
        let raw = store.open(&info.name)?;
        Ok(SegmentReader {
            location: store.location(),
            info: info.clone(),
            lines: Some(BufReader::with_capacity(
                64 * 1024,
                GzDecoder::new(BufReader::with_capacity(64 * 1024, Hashing::new(raw))),
            )),
            next_seq: info.first_seq,
            line: Vec::with_capacity(1024),
        })
    }

    pub(crate) fn name(&self) -> &str {
        &self.info.name
    }

    pub(crate) fn corrupt(&self, reason: impl Into<String>) -> JournalError {
        JournalError::ArchiveCorrupt {
            location: self.location.clone(),
            name: self.info.name.clone(),
            reason: reason.into(),
        }
    }

    /// A damaged compressed stream reads as invalid data or an early end; anything else is the
    /// store failing.
    fn read_error(&self, e: std::io::Error) -> JournalError {
        use std::io::ErrorKind::{InvalidData, InvalidInput, UnexpectedEof};
        if matches!(e.kind(), InvalidData | InvalidInput | UnexpectedEof) {
            self.corrupt(format!("cannot decompress: {e}"))
        } else {
            JournalError::ArchiveStore {
                location: self.location.clone(),
                message: format!("reading {}: {e}", self.info.name),
            }
        }
    }

    /// The next record, or `None` after the last one once the whole file checked out.
    pub(crate) fn next_raw(&mut self) -> Result<Option<RawRecord>, JournalError> {
        let Some(lines) = self.lines.as_mut() else {
            return Ok(None);
        };
        self.line.clear();
        let n = lines
            .by_ref()
            .take(MAX_LINE_BYTES)
            .read_until(b'\n', &mut self.line);
        let n = n.map_err(|e| self.read_error(e))?;
        if n == 0 {
            self.finish()?;
            return Ok(None);
        }
        let Some(line) = self.line.strip_suffix(b"\n") else {
            return Err(self.corrupt(format!(
                "the line after record {} is cut off",
                self.next_seq.saturating_sub(1)
            )));
        };
        let record = parse_line(line).map_err(|reason| self.corrupt(reason))?;
        if record.seq != self.next_seq || record.seq > self.info.last_seq {
            return Err(self.corrupt(format!(
                "holds record {} where {} was expected",
                record.seq, self.next_seq
            )));
        }
        self.next_seq += 1;
        Ok(Some(record))
    }

    /// End of the lines: every listed record seen, and length and SHA-256 as listed.
    fn finish(&mut self) -> Result<(), JournalError> {
        let Some(lines) = self.lines.take() else {
            return Ok(());
        };
        if self.next_seq != self.info.last_seq + 1 {
            return Err(self.corrupt(format!(
                "ends after record {} but the manifest lists {}..={}",
                self.next_seq.saturating_sub(1),
                self.info.first_seq,
                self.info.last_seq
            )));
        }
        // Whatever follows the gzip member still counts towards length and hash.
        let mut compressed = lines.into_inner().into_inner();
        std::io::copy(&mut compressed, &mut std::io::sink()).map_err(|e| self.read_error(e))?;
        let (_, sha256, bytes) = compressed.into_inner().finish();
        if bytes != self.info.bytes || sha256 != self.info.sha256 {
            return Err(self.corrupt(format!(
                "SHA-256/length mismatch: the file has {bytes} bytes with SHA-256 {sha256}, \
                 the manifest lists {} bytes with {}",
                self.info.bytes, self.info.sha256
            )));
        }
        Ok(())
    }

    /// The record decoded into an event.
    pub(crate) fn decode(&self, raw: RawRecord) -> Result<Record, JournalError> {
        let event = serde_json::from_slice(&raw.payload).map_err(|e| {
            self.corrupt(format!(
                "record {}: payload does not decode as an event: {e}",
                raw.seq
            ))
        })?;
        Ok(Record {
            seq: raw.seq,
            recorded_at: model::Timestamp::from_nanos(raw.recorded_at),
            subject: raw.subject,
            event,
        })
    }
}

/// What [`verify_archive`] checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveSummary {
    pub segments: usize,
    /// The archive holds `1..=last_seq`.
    pub last_seq: u64,
    /// Compressed bytes.
    pub bytes: u64,
}

/// Reads the whole archive: manifest, every segment's length and SHA-256, every record's CRC,
/// decoding and sequence. `journal_id`, when given, must be the manifest's.
pub fn verify_archive(
    store: &dyn ArchiveStore,
    journal_id: Option<&str>,
) -> Result<ArchiveSummary, JournalError> {
    let Some(manifest) = load_manifest(store)? else {
        return Err(JournalError::ArchiveStore {
            location: store.location(),
            message: format!("there is no archive here (no {MANIFEST_NAME})"),
        });
    };
    if let Some(id) = journal_id
        && id != manifest.journal_id
    {
        return Err(JournalError::ArchiveStore {
            location: store.location(),
            message: format!(
                "the archive belongs to journal {}, not {id}",
                manifest.journal_id
            ),
        });
    }
    for info in &manifest.segments {
        let mut reader = SegmentReader::open(store, info)?;
        while let Some(raw) = reader.next_raw()? {
            reader.decode(raw)?;
        }
    }
    Ok(ArchiveSummary {
        segments: manifest.segments.len(),
        last_seq: manifest.last_seq(),
        bytes: manifest.bytes(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(seq: u64, subject: &str, payload: &[u8]) -> RawRecord {
        RawRecord {
            seq,
            recorded_at: 1_700_000_000_000_000_000 + seq as i64,
            kind: "order_accepted".to_owned(),
            subject: subject.to_owned(),
            payload: payload.to_vec(),
            crc: crc32fast::hash(payload),
        }
    }

    #[test]
    fn a_line_round_trips_byte_for_byte_even_with_tricky_subjects() {
        // A subject holding the payload key (escaped inside its string) and a payload holding
        // it too: the parser must split at the real key.
        let subject = "orders.a,\"payload\":x";
        let payload = br#"{"OrderAccepted":{"note":",\"payload\":{}","n":1}}"#;
        let r = raw(42, subject, payload);
        let mut line = Vec::new();
        write_line(&mut line, &r).unwrap();
        assert_eq!(line.last(), Some(&b'\n'));
        let parsed = parse_line(line.strip_suffix(b"\n").unwrap()).unwrap();
        assert_eq!(parsed, r);
        // The line is plain JSON for tools.
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v["subject"], subject);
        assert_eq!(v["payload"]["OrderAccepted"]["n"], 1);
    }

    #[test]
    fn a_changed_payload_byte_fails_the_crc() {
        let r = raw(7, "orders.acct1", br#"{"a":12345}"#);
        let mut line = Vec::new();
        write_line(&mut line, &r).unwrap();
        let at = line.iter().rposition(|b| *b == b'5').unwrap();
        line[at] = b'6';
        let err = parse_line(line.strip_suffix(b"\n").unwrap()).unwrap_err();
        assert!(err.contains("record 7: payload checksum mismatch"), "{err}");
    }

    #[test]
    fn segment_names_sort_by_sequence_and_parse_back() {
        let a = segment_name(1, 999);
        let b = segment_name(1_000, 12_345_678_901);
        assert_eq!(
            a,
            "segment-00000000000000000001-00000000000000000999.ndjson.gz"
        );
        assert!(a < b);
        assert_eq!(parse_segment_name(&b), Some((1_000, 12_345_678_901)));
        for bad in [
            "segment-1-2.ndjson.gz",
            "manifest.json",
            ".tmp-manifest.json",
            &format!("{a}.x"),
        ] {
            assert_eq!(parse_segment_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_manifest_with_a_gap_or_foreign_format_is_invalid() {
        let seg = |first, last| SegmentInfo {
            name: segment_name(first, last),
            first_seq: first,
            last_seq: last,
            count: last - first + 1,
            bytes: 1,
            sha256: String::new(),
            ndjson_bytes: 1,
            first_recorded_at: 0,
            last_recorded_at: 0,
        };
        let mut m = Manifest::new("j");
        m.segments = vec![seg(1, 10), seg(11, 20)];
        assert_eq!(m.validate(), Ok(()));
        assert_eq!((m.last_seq(), m.events()), (20, 20));
        m.segments[1] = seg(12, 20);
        assert!(m.validate().unwrap_err().contains("next sequence is 11"));
        m.segments = vec![seg(2, 10)];
        assert!(m.validate().is_err(), "must start at 1");
        m.segments = vec![seg(1, 10)];
        m.version = 2;
        assert!(m.validate().unwrap_err().contains("version 2"));
    }

    #[test]
    fn the_limit_follows_the_slowest_consumer_and_refuses_without_acks() {
        let opts = ArchiveOptions::default();
        let positions = |list: &[(&str, u64)]| -> BTreeMap<String, u64> {
            list.iter().map(|(n, s)| (n.to_string(), *s)).collect()
        };
        assert_eq!(
            archive_limit(&positions(&[("a", 50), ("b", 30)]), &opts, 100).unwrap(),
            30
        );
        let refused = |r: Result<u64, JournalError>| match r {
            Err(JournalError::ArchiveRefused(msg)) => msg,
            other => panic!("expected a refusal, got {other:?}"),
        };
        assert!(
            refused(archive_limit(&positions(&[]), &opts, 100)).contains("no durable consumer")
        );
        assert!(
            refused(archive_limit(&positions(&[("a", 5), ("b", 0)]), &opts, 100))
                .contains("\"b\" has not acknowledged")
        );
        let through = |t, force| ArchiveOptions {
            through: Some(t),
            force,
            ..ArchiveOptions::default()
        };
        let ab = positions(&[("a", 50), ("b", 30)]);
        assert_eq!(archive_limit(&ab, &through(20, false), 100).unwrap(), 20);
        assert!(
            refused(archive_limit(&ab, &through(31, false), 100))
                .contains("\"b\" acknowledged (30)")
        );
        assert_eq!(archive_limit(&ab, &through(31, true), 100).unwrap(), 31);
        assert!(
            refused(archive_limit(&ab, &through(101, true), 100))
                .contains("beyond the journal's last")
        );
        assert_eq!(
            archive_limit(&positions(&[]), &through(10, true), 100).unwrap(),
            10
        );
    }
}
