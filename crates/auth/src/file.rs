//! The key file: read whole, written whole. A write goes to a temporary file created with mode
//! 0600 (before the hashes are in it), fsynced, renamed over the file, and the directory is
//! fsynced, so a crash leaves the old file or the new one, never a torn or world-readable one.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;
use std::time::SystemTime;

use crate::{AuthError, StoredKey};

/// What tells that the file changed: a rewrite renames a new file into place (a new inode on
/// unix), and an edit in place changes the modification time or the length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Stamp {
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(meta);
        #[cfg(not(unix))]
        let inode = 0;
        Stamp {
            modified: meta.modified().ok(),
            len: meta.len(),
            inode,
        }
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> AuthError + '_ {
    move |source| AuthError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The file's stamp now; `None` when there is no file.
pub(crate) fn stamp(path: &Path) -> Result<Option<Stamp>, AuthError> {
    match std::fs::metadata(path) {
        Ok(meta) => Ok(Some(Stamp::of(&meta))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(path)(e)),
    }
}

/// The stored keys and the stamp of what was read (no file: no keys).
pub(crate) fn read(path: &Path) -> Result<(Vec<StoredKey>, Option<Stamp>), AuthError> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), None)),
        Err(e) => return Err(io(path)(e)),
    };
    // The stamp of the very file read (a rename during the read shows as a change next time).
    let meta = file.metadata().map_err(io(path))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(io(path))?;
    let keys = serde_json::from_slice(&bytes).map_err(|source| AuthError::Format {
        path: path.display().to_string(),
        source,
    })?;
    Ok((keys, Some(Stamp::of(&meta))))
}

/// Replaces the file with `keys` (see the module docs); returns the new file's stamp.
pub(crate) fn write(path: &Path, keys: &[&StoredKey]) -> Result<Option<Stamp>, AuthError> {
    let json = serde_json::to_vec_pretty(keys).map_err(|source| AuthError::Format {
        path: path.display().to_string(),
        source,
    })?;
    let tmp = path.with_extension("json.tmp");
    // A leftover of an interrupted write is ours to replace; creating anew (never opening an
    // existing file) is what guarantees the mode and that no link is followed.
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(&tmp)(e)),
        _ => {}
    }
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp).map_err(io(&tmp))?;
    file.write_all(&json).map_err(io(&tmp))?;
    file.sync_all().map_err(io(&tmp))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(io(path))?;
    sync_dir(path)?;
    stamp(path)
}

/// Makes the rename durable: without it a crash can bring back the old file (a revoked key).
fn sync_dir(path: &Path) -> Result<(), AuthError> {
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(dir))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// A warning when others than the owner may read the file (a file written before keys were
/// kept 0600, or copied around); `None` when it is private or absent.
pub fn permissions_warning(path: &Path) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then(|| {
            format!(
                "{} has mode {mode:03o}: others on this machine can read the key hashes; \
                 run `chmod 600 {}`",
                path.display(),
                path.display()
            )
        })
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}
