//! Snapshots of a consumer's state: versioned, checksummed, written atomically.
//!
//! A consumer folds journal events into state. Replaying the whole journal at every start grows
//! with history, so the runtime periodically writes the state together with the journal sequence
//! it reflects, and a restart loads the newest valid snapshot and replays only the tail after it.
//!
//! One file per snapshot, `<root>/<consumer>/<seq, 20 digits>.snap`:
//!
//! ```text
//! "T26SNAP\n"            8 bytes magic
//! header length          u32 little endian
//! header                 JSON: consumer, state_version, seq, fingerprint, written_at, payload_len
//! payload                the state (JSON)
//! crc32                  u32 little endian, of every byte before it
//! ```
//!
//! A file is written under a temporary name, fsynced, renamed into place and the folder fsynced,
//! so a crash (even SIGKILL mid-write) leaves either the old set of snapshots or the new one,
//! never a half-written file under a real name. On load, a file that is torn, fails its
//! checksum, belongs to another consumer, was written by another state version or under another
//! configuration (`fingerprint`), or claims a sequence the journal does not have, is skipped with
//! a log line naming the reason, and the next older one is tried; with none left the consumer
//! replays from the beginning. A wrong state is never loaded.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use model::Timestamp;
use serde::{Deserialize, Serialize};

use crate::RuntimeError;

const MAGIC: &[u8; 8] = b"T26SNAP\n";
const SUFFIX: &str = ".snap";

/// What a snapshot file says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    pub consumer: String,
    /// The layout version of the consumer's state type.
    pub state_version: u32,
    /// The journal sequence the state reflects: every event up to here is folded in.
    pub seq: u64,
    /// Fingerprint of the configuration the state was built under (see [`fingerprint`]).
    pub fingerprint: String,
    pub written_at: Timestamp,
    pub payload_len: u64,
}

/// What a loaded snapshot must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expect {
    pub state_version: u32,
    pub fingerprint: String,
    /// The journal's last sequence: a snapshot beyond it belongs to another journal.
    pub max_seq: u64,
}

/// What [`SnapshotStore::load`] found: the snapshot used (if any) and the files it skipped.
pub type Loaded<T> = (Option<(SnapshotMeta, T)>, Vec<Rejected>);

/// A snapshot file that was not used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub path: PathBuf,
    pub reason: String,
}

/// The snapshots of one consumer.
#[derive(Debug, Clone)]
pub struct SnapshotStore {
    dir: PathBuf,
    consumer: String,
    keep: usize,
}

/// A stable fingerprint of a configuration value: hex CRC-32 of its JSON. Snapshots built under
/// another configuration are not loaded (their state would differ from a replay under this one).
pub fn fingerprint<T: Serialize + ?Sized>(config: &T) -> String {
    let bytes = serde_json::to_vec(config).unwrap_or_default();
    format!("{:08x}", crc32fast::hash(&bytes))
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RuntimeError + '_ {
    move |source| RuntimeError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl SnapshotStore {
    /// The store of `consumer` under `root` (created if missing); `keep` newest files are kept.
    pub fn open(root: &Path, consumer: &str, keep: usize) -> Result<SnapshotStore, RuntimeError> {
        let dir = root.join(consumer);
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        Ok(SnapshotStore {
            dir,
            consumer: consumer.to_owned(),
            keep: keep.max(1),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Snapshot files by sequence, newest first.
    pub fn list(&self) -> Result<Vec<(u64, PathBuf)>, RuntimeError> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(io(&self.dir))? {
            let entry = entry.map_err(io(&self.dir))?;
            let name = entry.file_name();
            let Some(seq) = name
                .to_str()
                .and_then(|n| n.strip_suffix(SUFFIX))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            out.push((seq, entry.path()));
        }
        out.sort_by_key(|e| std::cmp::Reverse(e.0));
        Ok(out)
    }

    /// Writes a snapshot of the state at `seq` atomically and durably, then prunes old ones.
    pub fn write(
        &self,
        seq: u64,
        state_version: u32,
        fingerprint: &str,
        payload: &[u8],
    ) -> Result<PathBuf, RuntimeError> {
        let meta = SnapshotMeta {
            consumer: self.consumer.clone(),
            state_version,
            seq,
            fingerprint: fingerprint.to_owned(),
            written_at: Timestamp::now(),
            payload_len: payload.len() as u64,
        };
        let header = serde_json::to_vec(&meta).map_err(|e| RuntimeError::Snapshot {
            consumer: self.consumer.clone(),
            reason: format!("header does not serialize: {e}"),
        })?;
        let header_len = u32::try_from(header.len()).map_err(|_| RuntimeError::Snapshot {
            consumer: self.consumer.clone(),
            reason: "header too large".into(),
        })?;
        let mut crc = crc32fast::Hasher::new();
        let path = self.dir.join(format!("{seq:020}{SUFFIX}"));
        let tmp = self.dir.join(format!(".{seq:020}{SUFFIX}.tmp"));
        {
            let file = File::create(&tmp).map_err(io(&tmp))?;
            let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
            for part in [
                &MAGIC[..],
                &header_len.to_le_bytes()[..],
                &header[..],
                payload,
            ] {
                crc.update(part);
                w.write_all(part).map_err(io(&tmp))?;
            }
            w.write_all(&crc.finalize().to_le_bytes())
                .map_err(io(&tmp))?;
            let file = w.into_inner().map_err(|e| io(&tmp)(e.into_error()))?;
            file.sync_all().map_err(io(&tmp))?;
        }
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        sync_dir(&self.dir)?;
        self.prune()?;
        Ok(path)
    }

    /// Removes all but the newest `keep` snapshots, and temporary files of interrupted writes.
    fn prune(&self) -> Result<(), RuntimeError> {
        for (_, path) in self.list()?.into_iter().skip(self.keep) {
            std::fs::remove_file(&path).map_err(io(&path))?;
        }
        for entry in std::fs::read_dir(&self.dir).map_err(io(&self.dir))? {
            let entry = entry.map_err(io(&self.dir))?;
            if entry
                .file_name()
                .to_str()
                .is_some_and(|n| n.ends_with(".tmp"))
            {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(())
    }

    /// Reads and checks one file: magic, checksum, header; returns the header and payload.
    pub fn read(&self, path: &Path) -> Result<(SnapshotMeta, Vec<u8>), String> {
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
        let min = MAGIC.len() + 4 + 4;
        if bytes.len() < min || &bytes[..MAGIC.len()] != MAGIC {
            return Err("not a snapshot file (bad magic or too short)".into());
        }
        let (body, trailer) = bytes.split_at(bytes.len() - 4);
        let stored = u32::from_le_bytes(trailer.try_into().map_err(|_| "short trailer")?);
        let computed = crc32fast::hash(body);
        if stored != computed {
            return Err(format!(
                "checksum mismatch (stored {stored:#010x}, computed {computed:#010x}): torn or damaged"
            ));
        }
        let header_len = u32::from_le_bytes(
            body[MAGIC.len()..MAGIC.len() + 4]
                .try_into()
                .map_err(|_| "short header length")?,
        ) as usize;
        let header_end = MAGIC.len() + 4 + header_len;
        if header_end > body.len() {
            return Err("header length beyond the end of the file".into());
        }
        let meta: SnapshotMeta = serde_json::from_slice(&body[MAGIC.len() + 4..header_end])
            .map_err(|e| format!("header does not decode: {e}"))?;
        let payload = body[header_end..].to_vec();
        if payload.len() as u64 != meta.payload_len {
            return Err(format!(
                "payload is {} bytes, header says {}",
                payload.len(),
                meta.payload_len
            ));
        }
        Ok((meta, payload))
    }

    /// The newest snapshot that matches `expect` and that `decode` accepts, plus every file that
    /// was skipped and why (each is also logged).
    pub fn load<T>(
        &self,
        expect: &Expect,
        mut decode: impl FnMut(&[u8]) -> Result<T, String>,
    ) -> Result<Loaded<T>, RuntimeError> {
        let mut rejected = Vec::new();
        for (_, path) in self.list()? {
            let outcome = self.read(&path).and_then(|(meta, payload)| {
                if meta.consumer != self.consumer {
                    return Err(format!("written for consumer {:?}", meta.consumer));
                }
                if meta.state_version != expect.state_version {
                    return Err(format!(
                        "written by state version {}, this build reads version {}",
                        meta.state_version, expect.state_version
                    ));
                }
                if meta.fingerprint != expect.fingerprint {
                    return Err(format!(
                        "built under another configuration (fingerprint {}, now {})",
                        meta.fingerprint, expect.fingerprint
                    ));
                }
                if meta.seq > expect.max_seq {
                    return Err(format!(
                        "reflects journal sequence {} but the journal ends at {}",
                        meta.seq, expect.max_seq
                    ));
                }
                let state = decode(&payload).map_err(|e| format!("state does not decode: {e}"))?;
                Ok((meta, state))
            });
            match outcome {
                Ok(found) => return Ok((Some(found), rejected)),
                Err(reason) => {
                    tracing::warn!(
                        consumer = %self.consumer,
                        snapshot = %path.display(),
                        %reason,
                        "snapshot not usable; trying an older one"
                    );
                    rejected.push(Rejected { path, reason });
                }
            }
        }
        Ok((None, rejected))
    }
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> Result<(), RuntimeError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> Result<(), RuntimeError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expect(max_seq: u64) -> Expect {
        Expect {
            state_version: 2,
            fingerprint: "cafe".into(),
            max_seq,
        }
    }

    fn decode(b: &[u8]) -> Result<Vec<u64>, String> {
        serde_json::from_slice(b).map_err(|e| e.to_string())
    }

    #[test]
    fn the_newest_valid_snapshot_wins_and_bad_ones_are_skipped_with_reasons() {
        let dir = tempfile::tempdir().unwrap();
        let store = SnapshotStore::open(dir.path(), "engine", 10).unwrap();
        store.write(10, 2, "cafe", b"[1,2,3]").unwrap();
        store.write(20, 2, "cafe", b"[4]").unwrap();
        let (found, rejected) = store.load(&expect(100), decode).unwrap();
        let (meta, state) = found.unwrap();
        assert_eq!((meta.seq, state), (20, vec![4]));
        assert!(rejected.is_empty());

        // Newer files that must not be used: other version, other config, damaged, beyond the
        // journal, undecodable state.
        store.write(30, 1, "cafe", b"[5]").unwrap();
        store.write(40, 2, "beef", b"[6]").unwrap();
        let p = store.write(50, 2, "cafe", b"[7]").unwrap();
        let mut bytes = std::fs::read(&p).unwrap();
        let n = bytes.len();
        bytes[n - 6] ^= 0xff;
        std::fs::write(&p, &bytes).unwrap();
        store.write(60, 2, "cafe", b"not json").unwrap();
        store.write(200, 2, "cafe", b"[8]").unwrap();

        let (found, rejected) = store.load(&expect(100), decode).unwrap();
        assert_eq!(found.unwrap().0.seq, 20);
        let reasons: Vec<&str> = rejected.iter().map(|r| r.reason.as_str()).collect();
        assert_eq!(reasons.len(), 5, "{reasons:?}");
        assert!(reasons[0].contains("journal ends at 100"), "{reasons:?}");
        assert!(reasons[1].contains("does not decode"), "{reasons:?}");
        assert!(reasons[2].contains("checksum mismatch"), "{reasons:?}");
        assert!(reasons[3].contains("another configuration"), "{reasons:?}");
        assert!(reasons[4].contains("state version 1"), "{reasons:?}");
    }

    #[test]
    fn a_torn_file_or_a_leftover_temporary_is_never_loaded_and_old_files_are_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let store = SnapshotStore::open(dir.path(), "sinks", 2).unwrap();
        for seq in 1..=4 {
            store
                .write(seq, 2, "cafe", format!("[{seq}]").as_bytes())
                .unwrap();
        }
        let seqs: Vec<u64> = store.list().unwrap().iter().map(|(s, _)| *s).collect();
        assert_eq!(seqs, vec![4, 3], "only the newest two are kept");

        // A crash mid-write leaves a temporary (ignored) or, at worst, a truncated file.
        std::fs::write(
            store.dir().join(".00000000000000000009.snap.tmp"),
            b"T26SNAP\n",
        )
        .unwrap();
        let p = store.write(5, 2, "cafe", b"[5]").unwrap();
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
        let (found, rejected) = store.load(&expect(10), decode).unwrap();
        assert_eq!(found.unwrap().1, vec![4]);
        assert_eq!(rejected.len(), 1);
        assert!(
            !store.dir().join(".00000000000000000009.snap.tmp").exists(),
            "temporaries are cleaned up by the next write"
        );
    }

    #[test]
    fn with_no_usable_snapshot_the_answer_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let store = SnapshotStore::open(dir.path(), "x", 3).unwrap();
        let (found, rejected) = store.load(&expect(10), decode).unwrap();
        assert!(found.is_none() && rejected.is_empty());
        std::fs::write(store.dir().join("00000000000000000001.snap"), b"garbage").unwrap();
        let (found, rejected) = store.load(&expect(10), decode).unwrap();
        assert!(found.is_none());
        assert!(rejected[0].reason.contains("bad magic"));
    }

    #[test]
    fn fingerprints_follow_the_configuration() {
        assert_eq!(fingerprint(&("a", 1)), fingerprint(&("a", 1)));
        assert_ne!(fingerprint(&("a", 1)), fingerprint(&("a", 2)));
    }
}
