//! The process's own vital signs — tasks alive on the async runtime, open file descriptors,
//! resident memory — read when `/metrics` is rendered, so a soak can tell from outside whether
//! streams and connections leave anything behind. Linux `/proc` supplies the last two; where it
//! is missing they are simply not exported.

use super::names;

/// Sets the process gauges from their current values (called at each scrape).
pub fn record_process_state() {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        metrics::gauge!(names::RUNTIME_TASKS_ALIVE).set(runtime.metrics().num_alive_tasks() as f64);
    }
    if let Some(fds) = open_fds() {
        metrics::gauge!(names::PROCESS_OPEN_FDS).set(fds as f64);
    }
    if let Some(bytes) = resident_bytes() {
        metrics::gauge!(names::PROCESS_RESIDENT_MEMORY).set(bytes as f64);
    }
}

/// Entries of `/proc/self/fd`, less the one the listing itself holds open.
fn open_fds() -> Option<usize> {
    let entries = std::fs::read_dir("/proc/self/fd").ok()?.count();
    Some(entries.saturating_sub(1))
}

/// `VmRSS` from `/proc/self/status`.
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_process_state_where_proc_exists() {
        if !std::path::Path::new("/proc/self/status").exists() {
            return;
        }
        // Other tests open files concurrently, so only the standard streams are certain.
        assert!(open_fds().expect("descriptors are countable") >= 3);
        assert!(resident_bytes().expect("VmRSS is reported") > 1024 * 1024);
    }
}
