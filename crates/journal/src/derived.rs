//! Opening a store derived from the journal: a consumer's read model in SQLite (the blotter,
//! the alert store, execution quality's rows). One policy for all of them:
//!
//! - WAL, so readers (HTTP handlers) never block the consumer's writer and vice versa;
//! - `synchronous=NORMAL`: a commit reaches the WAL without an fsync. The data is derived and
//!   its position is stored in the same transaction, so a commit lost to a power cut is applied
//!   again from the journal; an fsync per batch would buy nothing and would share the disk with
//!   the journal's group commits, which acknowledgements wait on;
//! - the schema's version in `PRAGMA user_version`: a file written by a newer build is refused,
//!   not altered.
//!
//! Each store keeps its own error type; it says how to build one ([`StoreError`]).

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// How long a connection waits for a lock (a checkpoint, the writer) before failing.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The errors a derived store reports while opening, in its own error type.
pub trait StoreError {
    fn io(path: &Path, source: std::io::Error) -> Self;
    fn sqlite(path: &Path, source: rusqlite::Error) -> Self;
    fn schema_too_new(path: &Path, found: i64, supported: i64) -> Self;
}

/// Opens (creating the file, its folder and `schema`) the store's read-write connection, and
/// records `version` as its schema version.
pub fn open_writer<E: StoreError>(
    path: &Path,
    schema: &str,
    version: i64,
) -> Result<Connection, E> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| E::io(dir, source))?;
    }
    let sqlite = |source| E::sqlite(path, source);
    let conn = Connection::open(path).map_err(sqlite)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(sqlite)?;
    conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))
        .map_err(sqlite)?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(sqlite)?;
    let found: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(sqlite)?;
    if found > version {
        return Err(E::schema_too_new(path, found, version));
    }
    conn.execute_batch(schema).map_err(sqlite)?;
    conn.pragma_update(None, "user_version", version)
        .map_err(sqlite)?;
    Ok(conn)
}

/// Opens a read-only connection to an existing store.
pub fn open_reader<E: StoreError>(path: &Path) -> Result<Connection, E> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|source| E::sqlite(path, source))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|source| E::sqlite(path, source))?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    enum Opened {
        Io(String),
        Sqlite(String),
        TooNew { found: i64, supported: i64 },
    }

    impl StoreError for Opened {
        fn io(path: &Path, _: std::io::Error) -> Self {
            Opened::Io(path.display().to_string())
        }
        fn sqlite(path: &Path, _: rusqlite::Error) -> Self {
            Opened::Sqlite(path.display().to_string())
        }
        fn schema_too_new(_: &Path, found: i64, supported: i64) -> Self {
            Opened::TooNew { found, supported }
        }
    }

    const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, v TEXT NOT NULL);";

    #[test]
    fn a_store_is_created_in_wal_with_its_version_and_read_back_read_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deep/er/store.db");
        let w = open_writer::<Opened>(&path, SCHEMA, 3).expect("created with its folders");
        let mode: String = w
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        let sync: i64 = w.query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap();
        let version: i64 = w
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!((mode.as_str(), sync, version), ("wal", 1, 3));
        w.execute("INSERT INTO t VALUES (1, 'x')", []).unwrap();

        let r = open_reader::<Opened>(&path).unwrap();
        let v: String = r.query_row("SELECT v FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(v, "x");
        assert!(
            r.execute("INSERT INTO t VALUES (2, 'y')", []).is_err(),
            "read-only"
        );
        // Opening again keeps the data (the schema is IF NOT EXISTS).
        drop(w);
        let again = open_writer::<Opened>(&path, SCHEMA, 3).unwrap();
        let n: i64 = again
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
    }

    #[test]
    fn a_store_of_a_newer_build_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        drop(open_writer::<Opened>(&path, SCHEMA, 5).unwrap());
        assert_eq!(
            open_writer::<Opened>(&path, SCHEMA, 4).unwrap_err(),
            Opened::TooNew {
                found: 5,
                supported: 4
            }
        );
        let c = Connection::open(&path).unwrap();
        let version: i64 = c
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, 5, "the newer file's version is kept");
    }

    #[test]
    fn a_missing_store_cannot_be_opened_for_reading() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.db");
        assert_eq!(
            open_reader::<Opened>(&path).unwrap_err(),
            Opened::Sqlite(path.display().to_string())
        );
        assert!(!path.exists(), "reading creates nothing");
    }

    #[test]
    fn a_folder_that_cannot_be_made_is_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain-file");
        std::fs::write(&file, b"x").unwrap();
        let path = file.join("store.db");
        assert_eq!(
            open_writer::<Opened>(&path, SCHEMA, 1).unwrap_err(),
            Opened::Io(file.display().to_string())
        );
    }
}
