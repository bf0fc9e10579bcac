//! Journal lifecycle on real files: archiving acked history into segments, reopening a journal
//! that no longer starts at 1, reading history across archive and journal, crash points of an
//! archive run, damaged segments and refusals.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use journal::archive::{MANIFEST_NAME, load_manifest, segment_name};
use journal::{
    ArchiveOptions, ArchiveStore, Bus, HistoryReader, InProcessBus, Journal, JournalError,
    LocalArchive, StartAt, Subscription, verify_archive,
};

fn db(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("events.db")
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Appends `common::mixed(n)` for `n` in `range`; event `n` lands at sequence `n + 1`.
fn append_mixed(journal: &Journal, range: std::ops::Range<u64>) {
    let events = range.clone().map(common::mixed).collect();
    let seqs = block_on(journal.append_batch(events)).unwrap();
    assert_eq!(seqs, range.start + 1..=range.end);
}

/// Acks durably (the archiver reads the stored positions).
fn ack(journal: &Journal, consumer: &str, seq: u64) {
    journal.ack(consumer, seq).unwrap();
    block_on(journal.flush()).unwrap();
}

fn options(segment_events: u64) -> ArchiveOptions {
    ArchiveOptions {
        segment_events,
        ..ArchiveOptions::default()
    }
}

/// (seq, recorded_at, subject, event) of every record from `from`, archive first.
fn history(
    journal: &Journal,
    archive: Option<Arc<dyn ArchiveStore>>,
    from: u64,
) -> Result<Vec<journal::Record>, JournalError> {
    HistoryReader::new(journal, archive, from)?.collect()
}

fn local(dir: &Path) -> Arc<LocalArchive> {
    Arc::new(LocalArchive::new(dir).unwrap())
}

#[test]
fn archive_then_reopen_continues_the_sequence_and_serves_appends_and_subscriptions() {
    let dir = tempfile::tempdir().unwrap();
    let archive_dir = dir.path().join("archive");
    let (journal, _) = Journal::open(&db(&dir)).unwrap();
    append_mixed(&journal, 0..100);
    ack(&journal, "oms", 80);
    ack(&journal, "risk", 60);
    let before = history(&journal, None, 1).unwrap();

    let store = local(&archive_dir);
    let report = journal.archive(store.as_ref(), &options(25)).unwrap();
    // The slowest consumer bounds the run.
    assert_eq!((report.archived_before, report.archived_through), (0, 60));
    let ranges: Vec<(u64, u64)> = report
        .segments
        .iter()
        .map(|s| (s.first_seq, s.last_seq))
        .collect();
    assert_eq!(ranges, [(1, 25), (26, 50), (51, 60)]);
    assert_eq!((report.events_written(), report.events_deleted), (60, 60));
    assert!(archive_dir.join(segment_name(26, 50)).is_file());
    assert_eq!(
        load_manifest(store.as_ref()).unwrap().unwrap().last_seq(),
        60
    );

    // The journal now starts at 61; earlier reads name the archive.
    assert_eq!((journal.first_seq(), journal.archived_through()), (61, 60));
    match journal.read_from(10, 5) {
        Err(
            e @ JournalError::Archived {
                seq: 10,
                archived_through: 60,
                ..
            },
        ) => {
            assert!(e.to_string().contains(&store.location()), "{e}");
            assert!(e.is_recoverable());
        }
        other => panic!("expected Archived, got {other:?}"),
    }
    assert_eq!(journal.read_from(61, 1000).unwrap().len(), 40);
    assert_eq!(journal.verify_all().unwrap(), 100);

    // Subscriptions: from before the journal's start they fail clearly, from after they work.
    let bus = InProcessBus::new(journal.clone());
    assert!(matches!(
        bus.subscribe_ephemeral(">", StartAt::Beginning),
        Err(JournalError::Archived { seq: 1, .. })
    ));
    assert!(matches!(
        block_on(bus.subscribe("fresh", ">", StartAt::Resume)),
        Err(JournalError::Archived { seq: 1, .. })
    ));
    block_on(async {
        let mut risk = bus.subscribe("risk", ">", StartAt::Resume).await.unwrap();
        let d = risk.next().await.unwrap();
        assert_eq!((d.seq, &d.event), (61, &common::mixed(60)));
        drop(risk);
        // A consumer restarting from its own store may ask for events it already acked (its
        // store records only the events its filter kept): those were archived because it
        // acked them, so it resumes at the journal's first retained sequence.
        let mut again = bus
            .subscribe("risk", ">", StartAt::Sequence(41))
            .await
            .unwrap();
        assert_eq!(again.next().await.unwrap().seq, 61);
    });
    // Not so for a consumer whose acks do not cover the archived events.
    ack(&journal, "late", 30);
    assert!(matches!(
        block_on(bus.subscribe("late", ">", StartAt::Resume)),
        Err(JournalError::Archived { seq: 31, .. })
    ));
    journal.shutdown().unwrap();
    drop((journal, bus));

    // Reopened: the stored position says where the journal starts; the sequence continues.
    let (journal, report) = Journal::open(&db(&dir)).unwrap();
    assert_eq!(
        (report.last_seq, report.events, report.archived_through),
        (100, 40, 60)
    );
    assert_eq!(journal.first_seq(), 61);
    assert_eq!(journal.archive_location(), Some(store.location()));
    append_mixed(&journal, 100..110);
    assert_eq!(journal.last_seq(), 110);
    block_on(async {
        let bus = InProcessBus::new(journal.clone());
        let mut sub = bus
            .subscribe_ephemeral("md.>", StartAt::Sequence(61))
            .unwrap();
        let d = sub.next().await.unwrap();
        assert!(d.seq >= 61 && d.subject.starts_with("md."), "{d:?}");
    });

    // The whole history reads the same as before the archive, plus the new appends.
    let after = history(&journal, Some(store.clone()), 1).unwrap();
    assert_eq!(after[..100], before[..]);
    assert_eq!(after.len(), 110);
    for r in &after {
        assert_eq!(r.event, common::mixed(r.seq - 1), "seq {}", r.seq);
    }
    // From the middle of a segment, and from the journal part only.
    let from_30 = history(&journal, Some(store.clone()), 30).unwrap();
    assert_eq!(from_30[..], after[29..]);
    assert_eq!(history(&journal, None, 61).unwrap()[..], after[60..]);
    // Without the archive, history before the journal's start is refused, not skipped.
    assert!(matches!(
        history(&journal, None, 1),
        Err(JournalError::Archived { seq: 1, .. })
    ));
    assert_eq!(
        verify_archive(store.as_ref(), Some(journal.journal_id()))
            .unwrap()
            .last_seq,
        60
    );

    // A second run archives only what was acked since, into a new segment.
    ack(&journal, "oms", 105);
    ack(&journal, "risk", 90);
    ack(&journal, "late", 100);
    let report = journal.archive(store.as_ref(), &options(25)).unwrap();
    assert_eq!((report.archived_before, report.archived_through), (60, 90));
    assert_eq!(report.segments[0].name, segment_name(61, 85));
    assert_eq!(report.segments[1].name, segment_name(86, 90));
    assert_eq!(history(&journal, Some(store), 1).unwrap(), after);
}

#[test]
fn everything_acked_can_be_archived_and_an_empty_journal_continues_the_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let store = local(&dir.path().join("archive"));
    let (journal, _) = Journal::open(&db(&dir)).unwrap();
    append_mixed(&journal, 0..30);
    ack(&journal, "all", 30);
    let last_recorded = journal.read_from(30, 1).unwrap()[0].recorded_at;
    let report = journal
        .archive(store.as_ref(), &ArchiveOptions::default())
        .unwrap();
    assert_eq!(report.archived_through, 30);
    assert!(journal.read_from(31, 10).unwrap().is_empty());
    assert_eq!(journal.verify_all().unwrap(), 30);
    drop(journal);

    let (journal, report) = Journal::open(&db(&dir)).unwrap();
    assert_eq!((report.last_seq, report.events), (30, 0));
    append_mixed(&journal, 30..31);
    let records = history(&journal, Some(store), 1).unwrap();
    assert_eq!(records.len(), 31);
    assert!(records[30].recorded_at >= last_recorded);
    assert_eq!(records[30].event, common::mixed(30));
}

#[test]
fn archiving_refuses_without_acks_or_beyond_them_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let archive_dir = dir.path().join("archive");
    let store = local(&archive_dir);
    let (journal, _) = Journal::open(&db(&dir)).unwrap();
    append_mixed(&journal, 0..20);
    let refused = |r: Result<journal::ArchiveReport, JournalError>| match r {
        Err(e @ JournalError::ArchiveRefused(_)) => {
            assert!(e.is_recoverable());
            e.to_string()
        }
        other => panic!("expected a refusal, got {other:?}"),
    };
    let msg = refused(journal.archive(store.as_ref(), &ArchiveOptions::default()));
    assert!(
        msg.contains("no durable consumer has acknowledged any event"),
        "{msg}"
    );

    ack(&journal, "slow", 5);
    let beyond = ArchiveOptions {
        through: Some(10),
        ..ArchiveOptions::default()
    };
    let msg = refused(journal.archive(store.as_ref(), &beyond));
    assert!(msg.contains("\"slow\" acknowledged (5)"), "{msg}");
    // Nothing was written or deleted.
    assert_eq!(store.list().unwrap(), Vec::<String>::new());
    assert_eq!(journal.first_seq(), 1);
    assert_eq!(journal.read_from(1, 100).unwrap().len(), 20);

    // --force goes beyond the acks.
    let forced = ArchiveOptions {
        force: true,
        ..beyond
    };
    assert_eq!(
        journal
            .archive(store.as_ref(), &forced)
            .unwrap()
            .archived_through,
        10
    );

    // Another journal cannot use this archive.
    let other_dir = tempfile::tempdir().unwrap();
    let (other, _) = Journal::open(&db(&other_dir)).unwrap();
    append_mixed(&other, 0..5);
    ack(&other, "c", 5);
    let msg = refused(other.archive(store.as_ref(), &ArchiveOptions::default()));
    assert!(msg.contains("belongs to another journal"), "{msg}");
    assert!(matches!(
        history(&other, Some(store.clone()), 1),
        Ok(records) if records.len() == 5
    ));
    // And this journal cannot switch archives halfway through its history.
    ack(&journal, "slow", 15);
    let elsewhere = local(&dir.path().join("elsewhere"));
    let msg = refused(journal.archive(elsewhere.as_ref(), &ArchiveOptions::default()));
    assert!(msg.contains("archive to the same place"), "{msg}");
}

/// A store that stops (as a crash would) right before or right after the manifest is written:
/// the archive run ends there, before anything leaves the journal.
struct CrashAt {
    inner: LocalArchive,
    after_manifest: bool,
    armed: AtomicBool,
}

impl ArchiveStore for CrashAt {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn staging_dir(&self) -> PathBuf {
        self.inner.staging_dir()
    }
    fn put_file(&self, name: &str, staged: &Path) -> Result<(), JournalError> {
        self.inner.put_file(name, staged)
    }
    fn put(&self, name: &str, bytes: &[u8]) -> Result<(), JournalError> {
        let crash = || JournalError::Io(std::io::Error::other("simulated crash"));
        if name == MANIFEST_NAME && self.armed.load(Ordering::SeqCst) {
            if !self.after_manifest {
                return Err(crash());
            }
            self.inner.put(name, bytes)?;
            return Err(crash());
        }
        self.inner.put(name, bytes)
    }
    fn get(&self, name: &str) -> Result<Option<Vec<u8>>, JournalError> {
        self.inner.get(name)
    }
    fn open(&self, name: &str) -> Result<Box<dyn std::io::Read + Send>, JournalError> {
        self.inner.open(name)
    }
    fn list(&self) -> Result<Vec<String>, JournalError> {
        self.inner.list()
    }
    fn delete(&self, name: &str) -> Result<(), JournalError> {
        self.inner.delete(name)
    }
}

#[test]
fn a_crash_between_the_segment_and_the_deletion_loses_nothing_and_a_rerun_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let archive_dir = dir.path().join("archive");
    let (journal, _) = Journal::open(&db(&dir)).unwrap();
    append_mixed(&journal, 0..50);
    ack(&journal, "c", 40);
    let expected = history(&journal, None, 1).unwrap();

    // Segment and manifest durable, nothing deleted from the journal yet.
    let crashing = CrashAt {
        inner: LocalArchive::new(&archive_dir).unwrap(),
        after_manifest: true,
        armed: AtomicBool::new(true),
    };
    assert!(journal.archive(&crashing, &options(1_000)).is_err());
    assert_eq!(journal.first_seq(), 1);
    assert_eq!(journal.read_from(1, 100).unwrap().len(), 50);
    let store = local(&archive_dir);
    assert_eq!(
        load_manifest(store.as_ref()).unwrap().unwrap().last_seq(),
        40
    );
    // Both copies read as the same history meanwhile.
    assert_eq!(history(&journal, Some(store.clone()), 1).unwrap(), expected);

    // The rerun checks the archived copy against the journal before deleting: a copy that
    // differs where no checksum looks (a commit time) is refused and nothing is deleted.
    let segment = archive_dir.join(segment_name(1, 40));
    let (pristine, manifest) = (
        std::fs::read(&segment).unwrap(),
        std::fs::read(archive_dir.join(MANIFEST_NAME)).unwrap(),
    );
    rewrite_segment(&segment, |lines| {
        let at = b"\"recorded_at\":".len()
            + lines
                .windows(14)
                .position(|w| w == b"\"recorded_at\":")
                .unwrap();
        lines[at] = if lines[at] == b'1' { b'2' } else { b'1' };
    });
    refresh_manifest(&archive_dir, &segment_name(1, 40));
    match journal.archive(store.as_ref(), &options(1_000)) {
        Err(JournalError::ArchiveCorrupt { reason, .. }) => {
            assert!(
                reason.contains("record 1 differs from the journal"),
                "{reason}"
            )
        }
        other => panic!("expected ArchiveCorrupt, got {other:?}"),
    }
    assert_eq!(journal.first_seq(), 1);
    std::fs::write(&segment, pristine).unwrap();
    std::fs::write(archive_dir.join(MANIFEST_NAME), manifest).unwrap();

    // With the right copy, the rerun only deletes.
    let report = journal.archive(store.as_ref(), &options(1_000)).unwrap();
    assert!(report.segments.is_empty());
    assert_eq!((report.events_deleted, report.archived_through), (40, 40));
    assert_eq!(journal.first_seq(), 41);
    assert_eq!(history(&journal, Some(store.clone()), 1).unwrap(), expected);
    // Idempotent: nothing left to do.
    let again = journal.archive(store.as_ref(), &options(1_000)).unwrap();
    assert_eq!(
        (
            again.segments.len(),
            again.events_deleted,
            again.archived_through
        ),
        (0, 0, 40)
    );
    assert_eq!(store.list().unwrap(), [MANIFEST_NAME, &segment_name(1, 40)]);
}

#[test]
fn a_crash_before_the_manifest_leaves_an_orphan_that_the_rerun_replaces() {
    let dir = tempfile::tempdir().unwrap();
    let archive_dir = dir.path().join("archive");
    let (journal, _) = Journal::open(&db(&dir)).unwrap();
    append_mixed(&journal, 0..50);
    ack(&journal, "c", 30);
    let expected = history(&journal, None, 1).unwrap();
    let crashing = CrashAt {
        inner: LocalArchive::new(&archive_dir).unwrap(),
        after_manifest: false,
        armed: AtomicBool::new(true),
    };
    assert!(journal.archive(&crashing, &options(1_000)).is_err());
    let store = local(&archive_dir);
    assert_eq!(store.list().unwrap(), [segment_name(1, 30)]);
    assert!(load_manifest(store.as_ref()).unwrap().is_none());
    assert_eq!(journal.first_seq(), 1);

    // Meanwhile the consumer moved on: the rerun removes the orphan and archives 1..=45.
    ack(&journal, "c", 45);
    let report = journal.archive(store.as_ref(), &options(1_000)).unwrap();
    assert_eq!(report.orphans_removed, [segment_name(1, 30)]);
    assert_eq!(report.archived_through, 45);
    assert_eq!(store.list().unwrap(), [MANIFEST_NAME, &segment_name(1, 45)]);
    assert_eq!(history(&journal, Some(store), 1).unwrap(), expected);
}

/// Recompresses a segment with `edit` applied to its decompressed lines.
fn rewrite_segment(path: &Path, edit: impl FnOnce(&mut Vec<u8>)) {
    use std::io::{Read, Write};
    let mut lines = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_end(&mut lines)
        .unwrap();
    edit(&mut lines);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&lines).unwrap();
    std::fs::write(path, gz.finish().unwrap()).unwrap();
}

/// Points the manifest's SHA-256 and length of `name` at the file as it now is.
fn refresh_manifest(dir: &Path, name: &str) {
    use sha2::Digest;
    let bytes = std::fs::read(dir.join(name)).unwrap();
    let path = dir.join(MANIFEST_NAME);
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    for s in manifest["segments"].as_array_mut().unwrap() {
        if s["name"] == name {
            s["bytes"] = bytes.len().into();
            s["sha256"] = format!("{:x}", sha2::Sha256::digest(&bytes)).into();
        }
    }
    std::fs::write(&path, serde_json::to_vec(&manifest).unwrap()).unwrap();
}

#[test]
fn a_damaged_segment_is_reported_naming_the_segment_and_the_check_that_failed() {
    let dir = tempfile::tempdir().unwrap();
    let archive_dir = dir.path().join("archive");
    let store = local(&archive_dir);
    let (journal, _) = Journal::open(&db(&dir)).unwrap();
    append_mixed(&journal, 0..60);
    ack(&journal, "c", 60);
    journal.archive(store.as_ref(), &options(20)).unwrap();
    let name = segment_name(21, 40);
    let path = archive_dir.join(&name);
    let pristine = std::fs::read(&path).unwrap();
    let damaged = |store: &Arc<LocalArchive>| -> String {
        let err = history(&journal, Some(store.clone()), 1).unwrap_err();
        assert!(err.is_fatal(), "{err}");
        let JournalError::ArchiveCorrupt { name: got, .. } = &err else {
            panic!("expected ArchiveCorrupt, got {err:?}");
        };
        assert_eq!(got, &name);
        let verified = verify_archive(store.as_ref(), None).unwrap_err();
        assert_eq!(verified.to_string(), err.to_string());
        err.to_string()
    };

    // Bytes appended after the gzip member: only the SHA-256/length can tell.
    let mut longer = pristine.clone();
    longer.extend_from_slice(b"junk");
    std::fs::write(&path, &longer).unwrap();
    let msg = damaged(&store);
    assert!(msg.contains("SHA-256/length mismatch"), "{msg}");

    // A flipped bit in the compressed data.
    let mut flipped = pristine.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x10;
    std::fs::write(&path, &flipped).unwrap();
    damaged(&store);

    // A cut-off file.
    std::fs::write(&path, &pristine[..pristine.len() - 30]).unwrap();
    damaged(&store);

    // A payload digit changed and the file's SHA-256 updated to match: the record's CRC-32
    // still catches it.
    std::fs::write(&path, &pristine).unwrap();
    rewrite_segment(&path, |lines| {
        let at = lines.iter().position(|b| *b == b'\n').unwrap();
        let digit = lines[at + 1..]
            .iter()
            .rposition(u8::is_ascii_digit)
            .map(|i| i + at + 1)
            .unwrap();
        lines[digit] = if lines[digit] == b'9' {
            b'8'
        } else {
            lines[digit] + 1
        };
    });
    refresh_manifest(&archive_dir, &name);
    let msg = damaged(&store);
    assert!(msg.contains("checksum mismatch"), "{msg}");

    // A record missing from the middle, SHA-256 updated: the sequence check catches it.
    std::fs::write(&path, &pristine).unwrap();
    rewrite_segment(&path, |lines| {
        let first_end = lines.iter().position(|b| *b == b'\n').unwrap();
        lines.drain(..=first_end);
    });
    refresh_manifest(&archive_dir, &name);
    let msg = damaged(&store);
    assert!(
        msg.contains("holds record 22 where 21 was expected"),
        "{msg}"
    );

    // Restored, everything reads again; a missing file is a store error naming it.
    std::fs::write(&path, &pristine).unwrap();
    refresh_manifest(&archive_dir, &name);
    assert_eq!(history(&journal, Some(store.clone()), 1).unwrap().len(), 60);
    std::fs::remove_file(&path).unwrap();
    let err = history(&journal, Some(store), 1).unwrap_err();
    assert!(
        matches!(&err, JournalError::ArchiveStore { message, .. } if message.contains(&name)),
        "{err:?}"
    );
}

#[test]
fn freed_pages_are_reused_and_vacuum_returns_them_to_the_filesystem() {
    let dir = tempfile::tempdir().unwrap();
    let store = local(&dir.path().join("archive"));
    let (journal, _) = Journal::open(&db(&dir)).unwrap();
    for chunk in 0..10 {
        append_mixed(&journal, chunk * 500..(chunk + 1) * 500);
    }
    ack(&journal, "c", 4_500);
    let report = journal
        .archive(store.as_ref(), &ArchiveOptions::default())
        .unwrap();
    assert_eq!(report.archived_through, 4_500);
    assert!(report.disk_after.free_bytes > 0, "{report:?}");
    // The deletion's WAL pages were folded into the file, not left in the WAL.
    assert_eq!(report.disk_after.wal_bytes, 0, "{report:?}");

    // Appends fill the free pages before the file grows.
    let free = report.disk_after.free_bytes;
    append_mixed(&journal, 5_000..5_500);
    block_on(journal.flush()).unwrap();
    assert!(journal.disk_bytes().unwrap().free_bytes < free);

    ack(&journal, "c", 5_400);
    let vacuumed = ArchiveOptions {
        vacuum: true,
        ..ArchiveOptions::default()
    };
    let report = journal.archive(store.as_ref(), &vacuumed).unwrap();
    assert_eq!(report.disk_after.free_bytes, 0);
    assert!(
        report.disk_after.file_bytes < report.disk_before.file_bytes / 4,
        "{report:?}"
    );
    // Still the same journal.
    append_mixed(&journal, 5_500..5_501);
    let records = history(&journal, Some(store), 1).unwrap();
    assert_eq!(records.len(), 5_501);
    assert_eq!(journal.verify_all().unwrap(), 5_501);
}

#[test]
fn archiving_while_appends_continue_keeps_the_history_gap_free() {
    let dir = tempfile::tempdir().unwrap();
    let store = local(&dir.path().join("archive"));
    let (journal, _) = Journal::open(&db(&dir)).unwrap();
    append_mixed(&journal, 0..2_000);
    ack(&journal, "c", 1_900);
    let appender = {
        let journal = journal.clone();
        std::thread::spawn(move || {
            for n in 2_000..2_400 {
                journal.append_blocking(common::mixed(n)).unwrap();
            }
        })
    };
    // Small segments and several deletions while the appender runs.
    let report = journal.archive(store.as_ref(), &options(300)).unwrap();
    appender.join().unwrap();
    assert_eq!(report.archived_through, 1_900);
    let records = history(&journal, Some(store), 1).unwrap();
    assert_eq!(records.len(), 2_400);
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.seq, i as u64 + 1);
    }
}

#[test]
fn a_version_1_journal_is_upgraded_in_place() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (journal, _) = Journal::open(&db(&dir)).unwrap();
        append_mixed(&journal, 0..3);
    }
    // What a journal written before the meta table looks like.
    {
        let raw = rusqlite::Connection::open(db(&dir)).unwrap();
        raw.execute_batch("DROP TABLE meta; PRAGMA user_version = 1;")
            .unwrap();
    }
    let (journal, report) = Journal::open(&db(&dir)).unwrap();
    assert_eq!((report.last_seq, report.archived_through), (3, 0));
    assert_eq!(journal.journal_id().len(), 32);
    let id = journal.journal_id().to_owned();
    drop(journal);
    let (journal, _) = Journal::open(&db(&dir)).unwrap();
    assert_eq!(journal.journal_id(), id, "the id is created once");
}

#[test]
fn records_below_the_archived_position_are_reported_as_corruption_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let store = local(&dir.path().join("archive"));
    {
        let (journal, _) = Journal::open(&db(&dir)).unwrap();
        append_mixed(&journal, 0..10);
        ack(&journal, "c", 5);
        journal
            .archive(store.as_ref(), &ArchiveOptions::default())
            .unwrap();
    }
    let raw = rusqlite::Connection::open(db(&dir)).unwrap();
    raw.execute("DELETE FROM events WHERE seq = 6", []).unwrap();
    drop(raw);
    match Journal::open(&db(&dir)) {
        Err(JournalError::Corrupt { seq: 6, reason }) => {
            assert!(reason.contains("gap"), "{reason}")
        }
        other => panic!("expected Corrupt at 6, got {:?}", other.map(|(_, r)| r)),
    }
}
