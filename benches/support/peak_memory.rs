//! Peak memory of the benchmark process, as Linux's `VmHWM` (the high-water mark of the
//! resident set) in `/proc/self/status`.
//!
//! Resident memory rather than a counting global allocator: it is what a machine or container
//! must provide, allocator overhead and the runtime included, and it costs the measured code
//! nothing (a counting allocator would add atomic updates to every allocation it times). It is a
//! high-water mark of the whole process, so each measurement runs in a child process of its own.

/// The process's peak resident set in KiB (0 where `/proc` is unavailable).
pub fn peak_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
