//! The whole history of a journal: its archived segments, then the records still in the
//! journal, as one verified sequence.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::JournalError;
use crate::archive::{ArchiveStore, SegmentInfo, SegmentReader, load_manifest};
use crate::journal::{Journal, Record};

/// Journal records read per query.
const JOURNAL_BATCH: usize = 4_096;

/// Yields every record from `from_seq` on: first from the archive's segments (each line's
/// CRC-32, each file's length and SHA-256, and the gap-free sequence checked), then from the
/// journal, continuing exactly where the archive ends. Memory is one segment's decoder and one
/// batch of journal records, whatever the history's length.
///
/// The reader switches to the journal at the journal's first retained sequence as it was when
/// the reader was created; an archive run that moves more records out meanwhile makes the
/// journal part fail with [`JournalError::Archived`] (read again).
///
/// After an error the iterator ends.
pub struct HistoryReader {
    journal: Journal,
    archive: Option<Arc<dyn ArchiveStore>>,
    /// Segments still to read.
    segments: VecDeque<SegmentInfo>,
    current: Option<SegmentReader>,
    /// The last sequence taken from the archive; the journal holds the rest.
    archive_end: u64,
    /// The next sequence to yield.
    next: u64,
    batch: std::vec::IntoIter<Record>,
    done: bool,
}

impl HistoryReader {
    /// Reads from `from_seq` (0 is treated as 1). `archive` is needed only when `from_seq` is
    /// before the journal's first retained sequence; it must be this journal's archive.
    pub fn new(
        journal: &Journal,
        archive: Option<Arc<dyn ArchiveStore>>,
        from_seq: u64,
    ) -> Result<HistoryReader, JournalError> {
        let from = from_seq.max(1);
        let first_retained = journal.first_seq();
        let mut reader = HistoryReader {
            journal: journal.clone(),
            archive: None,
            segments: VecDeque::new(),
            current: None,
            archive_end: first_retained - 1,
            next: from,
            batch: Vec::new().into_iter(),
            done: false,
        };
        if from >= first_retained {
            return Ok(reader);
        }
        let Some(store) = archive else {
            return Err(JournalError::Archived {
                seq: from,
                archived_through: first_retained - 1,
                location: journal
                    .archive_location()
                    .unwrap_or_else(|| "an unrecorded location".into()),
            });
        };
        let location = store.location();
        let Some(manifest) = load_manifest(store.as_ref())? else {
            return Err(JournalError::ArchiveStore {
                location,
                message: format!(
                    "there is no archive here, but events 1..={} of the journal were archived to {}",
                    first_retained - 1,
                    journal
                        .archive_location()
                        .unwrap_or_else(|| "an unrecorded location".into())
                ),
            });
        };
        if manifest.journal_id != journal.journal_id() {
            return Err(JournalError::ArchiveStore {
                location,
                message: format!(
                    "the archive belongs to journal {}, not to this one ({})",
                    manifest.journal_id,
                    journal.journal_id()
                ),
            });
        }
        if manifest.last_seq() < first_retained - 1 {
            return Err(JournalError::ArchiveStore {
                location,
                message: format!(
                    "the archive ends at {} but the journal starts at {first_retained}: events {}..={} \
                     are in neither (was part of the history archived elsewhere?)",
                    manifest.last_seq(),
                    manifest.last_seq() + 1,
                    first_retained - 1
                ),
            });
        }
        reader.segments = manifest
            .segments
            .into_iter()
            .filter(|s| s.last_seq >= from && s.first_seq < first_retained)
            .collect();
        reader.archive = Some(store);
        Ok(reader)
    }

    /// The next sequence the reader yields.
    pub fn next_seq(&self) -> u64 {
        self.next
    }

    fn next_record(&mut self) -> Result<Option<Record>, JournalError> {
        loop {
            if self.next <= self.archive_end {
                if self.current.is_none() {
                    let (Some(info), Some(store)) = (self.segments.pop_front(), &self.archive)
                    else {
                        return Err(JournalError::ArchiveStore {
                            location: self
                                .archive
                                .as_ref()
                                .map_or_else(String::new, |s| s.location()),
                            message: format!("no segment holds record {}", self.next),
                        });
                    };
                    self.current = Some(SegmentReader::open(store.as_ref(), &info)?);
                }
                let Some(segment) = self.current.as_mut() else {
                    continue;
                };
                match segment.next_raw()? {
                    // Before `from_seq` (only in the first segment): checked, not decoded.
                    Some(raw) if raw.seq < self.next => continue,
                    Some(raw) if raw.seq == self.next => {
                        self.next += 1;
                        return segment.decode(raw).map(Some);
                    }
                    Some(raw) => {
                        return Err(segment.corrupt(format!(
                            "holds record {} where {} was expected",
                            raw.seq, self.next
                        )));
                    }
                    None => {
                        // Verified to its end; the manifest guarantees the next one follows.
                        self.current = None;
                    }
                }
                continue;
            }
            // The archive part is done. A segment that reaches into the journal's records
            // (archived, deletion interrupted) is still read to its end to verify it.
            if let Some(mut segment) = self.current.take() {
                while segment.next_raw()?.is_some() {}
            }
            if let Some(record) = self.batch.next() {
                if record.seq != self.next {
                    return Err(JournalError::Corrupt {
                        seq: self.next,
                        reason: format!("the journal returned record {} instead", record.seq),
                    });
                }
                self.next += 1;
                return Ok(Some(record));
            }
            let records = self.journal.read_from(self.next, JOURNAL_BATCH)?;
            if records.is_empty() {
                return Ok(None);
            }
            self.batch = records.into_iter();
        }
    }
}

impl Iterator for HistoryReader {
    type Item = Result<Record, JournalError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_record() {
            Ok(Some(record)) => Some(Ok(record)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl std::fmt::Debug for HistoryReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HistoryReader")
            .field("next", &self.next)
            .field("archive_end", &self.archive_end)
            .field(
                "segment",
                &self.current.as_ref().map(|s| s.name().to_owned()),
            )
            .finish()
    }
}
