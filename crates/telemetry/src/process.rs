//! Figures about this process read from the kernel at scrape time, so `/metrics` shows the value
//! of the moment without a background sampler (plain file reads: no C dependency).

/// Resident set size in bytes from the text of `/proc/<pid>/status`: the `VmRSS:` line, which
/// the kernel writes in kibibytes (`VmRSS:\t  123456 kB`). `None` when the line is missing or
/// not in that form.
pub fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    let mut parts = line.split_whitespace();
    let value: u64 = parts.next()?.parse().ok()?;
    match parts.next() {
        Some("kB") => value.checked_mul(1024),
        _ => None,
    }
}

/// This process's resident set size in bytes; `None` where `/proc/self/status` does not exist
/// (not Linux) or cannot be read.
pub fn resident_memory_bytes() -> Option<u64> {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .as_deref()
        .and_then(parse_vm_rss)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The head of a real /proc/self/status (Linux 6.x), tabs and padding as the kernel writes.
    const SAMPLE: &str = "Name:\ttrade2026\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t41872\n\
        VmPeak:\t 2310788 kB\nVmSize:\t 2245252 kB\nVmLck:\t       0 kB\nVmHWM:\t  187420 kB\n\
        VmRSS:\t  183116 kB\nRssAnon:\t  160212 kB\nRssFile:\t   22904 kB\nThreads:\t24\n";

    #[test]
    fn vm_rss_is_read_in_bytes() {
        assert_eq!(parse_vm_rss(SAMPLE), Some(183_116 * 1024));
    }

    #[test]
    fn missing_or_malformed_vm_rss_is_none() {
        assert_eq!(parse_vm_rss("Name:\tx\nVmHWM:\t 10 kB\n"), None);
        assert_eq!(parse_vm_rss("VmRSS:\t 10 MB\n"), None);
        assert_eq!(parse_vm_rss("VmRSS:\t kB\n"), None);
        assert_eq!(parse_vm_rss("VmRSS:\t -5 kB\n"), None);
        assert_eq!(parse_vm_rss(""), None);
        // 2^64 / 1024 kB would overflow u64 in bytes.
        assert_eq!(parse_vm_rss("VmRSS:\t18446744073709551615 kB\n"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_has_a_resident_size() {
        let rss = resident_memory_bytes().expect("Linux has /proc/self/status");
        // A test binary with its runtime is at least a megabyte resident.
        assert!(rss > 1 << 20, "{rss}");
    }
}
