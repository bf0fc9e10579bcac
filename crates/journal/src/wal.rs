//! Inspection of a SQLite `-wal` file before SQLite recovers it.
//!
//! WAL layout (<https://www.sqlite.org/fileformat.html#the_write_ahead_log>): a 32-byte header
//! (magic, format version, page size as big-endian u32 at offset 8, ...) followed by frames of
//! a 24-byte frame header plus one page. A crash in the middle of writing a frame leaves a file
//! whose length after the header is not a whole number of frames. SQLite itself ignores frames
//! that fail its checksum, so such a torn frame belonged to a transaction that never committed
//! (and was never acknowledged); we only measure it so the operator hears about it.

use std::path::Path;

pub(crate) const WAL_HEADER_LEN: u64 = 32;
pub(crate) const FRAME_HEADER_LEN: u64 = 24;
const MAGIC_LE: u32 = 0x377f_0682;
const MAGIC_BE: u32 = 0x377f_0683;

/// What the `-wal` file looked like when the journal was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WalInspection {
    /// Length of the `-wal` file in bytes (0 when absent).
    pub wal_bytes: u64,
    /// Page size from the WAL header (0 when there is no usable header).
    pub page_size: u32,
    /// Whole frames present in the file (valid or not: SQLite decides which ones count).
    pub frames: u64,
    /// Bytes after the last whole frame (or the whole file when even the header is torn).
    pub torn_tail_bytes: u64,
}

/// Classifies a WAL file from its length and its first 32 bytes (pure, for testing).
pub(crate) fn classify(len: u64, header: &[u8]) -> WalInspection {
    if len == 0 {
        return WalInspection::default();
    }
    let page_size = parse_page_size(header);
    match page_size {
        Some(page_size) if len >= WAL_HEADER_LEN => {
            let frame = FRAME_HEADER_LEN + u64::from(page_size);
            let body = len - WAL_HEADER_LEN;
            WalInspection {
                wal_bytes: len,
                page_size,
                frames: body / frame,
                torn_tail_bytes: body % frame,
            }
        }
        // No complete, valid header: SQLite treats the whole file as empty.
        _ => WalInspection {
            wal_bytes: len,
            page_size: 0,
            frames: 0,
            torn_tail_bytes: len,
        },
    }
}

fn parse_page_size(header: &[u8]) -> Option<u32> {
    let word = |at: usize| -> Option<u32> {
        let bytes: [u8; 4] = header.get(at..at + 4)?.try_into().ok()?;
        Some(u32::from_be_bytes(bytes))
    };
    let magic = word(0)?;
    if magic != MAGIC_LE && magic != MAGIC_BE {
        return None;
    }
    // The page size field holds 1 for 65536, which does not fit in 16 bits.
    match word(8)? {
        1 => Some(65_536),
        n if (512..=32_768).contains(&n) && n.is_power_of_two() => Some(n),
        _ => None,
    }
}

/// Reads the length and header of `<db>-wal` without modifying it.
pub(crate) fn inspect(db_path: &Path) -> std::io::Result<WalInspection> {
    use std::io::Read;
    let mut wal_path = db_path.as_os_str().to_owned();
    wal_path.push("-wal");
    let mut file = match std::fs::File::open(&wal_path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(WalInspection::default()),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    let mut header = Vec::with_capacity(WAL_HEADER_LEN as usize);
    file.by_ref()
        .take(WAL_HEADER_LEN)
        .read_to_end(&mut header)?;
    Ok(classify(len, &header))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(page_size: u32) -> Vec<u8> {
        let mut h = vec![0u8; 32];
        h[0..4].copy_from_slice(&MAGIC_LE.to_be_bytes());
        h[4..8].copy_from_slice(&3_007_000u32.to_be_bytes());
        h[8..12].copy_from_slice(&page_size.to_be_bytes());
        h
    }

    #[test]
    fn whole_frames_are_not_torn() {
        let w = classify(32 + 3 * (24 + 4096), &header(4096));
        assert_eq!((w.page_size, w.frames, w.torn_tail_bytes), (4096, 3, 0));
    }

    #[test]
    fn a_partial_frame_is_a_torn_tail() {
        let w = classify(32 + 2 * 4120 + 1000, &header(4096));
        assert_eq!((w.frames, w.torn_tail_bytes), (2, 1000));
    }

    #[test]
    fn page_size_one_means_64k() {
        let w = classify(32 + (24 + 65_536) + 7, &header(1));
        assert_eq!((w.page_size, w.frames, w.torn_tail_bytes), (65_536, 1, 7));
    }

    #[test]
    fn a_torn_or_foreign_header_makes_the_whole_file_a_tail() {
        assert_eq!(classify(20, &header(4096)[..20]).torn_tail_bytes, 20);
        let mut bad = header(4096);
        bad[0] = 0;
        assert_eq!(classify(5000, &bad).torn_tail_bytes, 5000);
        assert_eq!(classify(5000, &header(3000)).torn_tail_bytes, 5000);
        assert_eq!(classify(0, &[]), WalInspection::default());
    }
}
