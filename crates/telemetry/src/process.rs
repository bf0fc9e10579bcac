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

/// Clock ticks per second of the times in `/proc/<pid>/stat` (`USER_HZ`): the kernel reports
/// them in this fixed unit, 100 on every architecture Rust targets for Linux except Alpha.
const USER_HZ: f64 = 100.0;

/// CPU time (user + system) and start (ticks after boot) from the text of `/proc/<pid>/stat`.
/// The command name in parentheses may hold spaces and parentheses, so fields are counted from
/// the last `)`.
pub fn parse_stat(stat: &str) -> Option<(f64, u64)> {
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After the name: state is field 3 of proc(5), so field n is at index n - 3.
    let utime: u64 = fields.get(14 - 3)?.parse().ok()?;
    let stime: u64 = fields.get(15 - 3)?.parse().ok()?;
    let start_ticks: u64 = fields.get(22 - 3)?.parse().ok()?;
    Some(((utime + stime) as f64 / USER_HZ, start_ticks))
}

/// Boot time (unix seconds) from the `btime` line of `/proc/stat`.
pub fn parse_boot_time(stat: &str) -> Option<u64> {
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

/// The `Threads:` line of `/proc/<pid>/status`.
pub fn parse_threads(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))?
        .trim()
        .parse()
        .ok()
}

/// What `/metrics` reports about this process, read at scrape time. `None` fields could not be
/// read (not Linux).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcessFigures {
    pub resident_memory_bytes: Option<u64>,
    pub cpu_seconds: Option<f64>,
    pub start_time_seconds: Option<f64>,
    pub open_fds: Option<u64>,
    pub threads: Option<u64>,
}

/// Reads this process's figures from `/proc` (a few small file reads).
pub fn figures() -> ProcessFigures {
    let status = std::fs::read_to_string("/proc/self/status").ok();
    let stat = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .as_deref()
        .and_then(parse_stat);
    let boot = std::fs::read_to_string("/proc/stat")
        .ok()
        .as_deref()
        .and_then(parse_boot_time);
    ProcessFigures {
        resident_memory_bytes: status.as_deref().and_then(parse_vm_rss),
        cpu_seconds: stat.map(|(cpu, _)| cpu),
        start_time_seconds: stat
            .zip(boot)
            .map(|((_, ticks), boot)| boot as f64 + ticks as f64 / USER_HZ),
        open_fds: std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|d| d.count() as u64),
        threads: status.as_deref().and_then(parse_threads),
    }
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

    /// A real /proc/self/stat line (Linux 6.x) of a process named `tokio (rt) 1`: utime 1234,
    /// stime 567, starttime 98765 ticks after boot.
    const STAT: &str = "41872 (tokio (rt) 1) S 41000 41872 41000 34816 41872 4194560 2048 0 0 0 \
        1234 567 0 0 20 0 24 0 98765 2299142144 45779 18446744073709551615 1 1 0 0 0 0 0 4096 \
        17662 0 0 0 17 1 0 0 0 0 0";

    #[test]
    fn cpu_time_and_start_are_read_after_the_command_name() {
        let (cpu, start) = parse_stat(STAT).unwrap();
        assert!((cpu - 18.01).abs() < 1e-9, "{cpu}");
        assert_eq!(start, 98_765);
        assert_eq!(parse_stat("41872 (x) S 1 2"), None);
        assert_eq!(parse_stat("no parenthesis"), None);
    }

    #[test]
    fn boot_time_and_threads() {
        assert_eq!(
            parse_boot_time("cpu  1 2 3\nintr 5\nbtime 1767225600\nprocesses 9\n"),
            Some(1_767_225_600)
        );
        assert_eq!(parse_boot_time("cpu 1\n"), None);
        assert_eq!(parse_threads(SAMPLE), Some(24));
        assert_eq!(parse_threads("Name:\tx\n"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_has_figures() {
        let f = figures();
        assert!(f.threads.unwrap() >= 1, "{f:?}");
        assert!(f.open_fds.unwrap() >= 3, "{f:?}");
        // Started after 2020 and not in the future.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let start = f.start_time_seconds.unwrap();
        assert!(start > 1.577e9 && start <= now + 1.0, "{start}");
        assert!(f.cpu_seconds.unwrap() >= 0.0);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_has_a_resident_size() {
        let rss = resident_memory_bytes().expect("Linux has /proc/self/status");
        // A test binary with its runtime is at least a megabyte resident.
        assert!(rss > 1 << 20, "{rss}");
    }
}
