//! The machine and the date a benchmark ran on, printed above its figures so that a quoted
//! figure can be traced to the hardware that produced it, with the load average at the start:
//! on a shared build machine, other work competes for the same cores.

/// `<date> on <n> CPUs (<model>), load average <1 min> at the start`, the date in UTC.
pub fn describe() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU", |(_, m)| m.trim())
        .to_owned();
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let date = now.split('T').next().unwrap_or(&now).to_owned();
    format!("{date} on {cpus} CPUs ({model}), load average {} at the start", load_average())
}

/// The one-minute load average, from `/proc/loadavg`.
pub fn load_average() -> String {
    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    loadavg.split_whitespace().next().unwrap_or("unknown").to_owned()
}
