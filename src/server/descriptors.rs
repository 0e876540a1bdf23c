//! The open-file limit. Every connection, served or opened by the load client, holds a file
//! descriptor, and the usual soft limit (1,024) stops a run long before memory does. The process
//! raises its soft limit to the hard limit when it starts; only the hard limit, which an
//! unprivileged process cannot raise, is left for the user to change.

/// The open-file limit before and after [`raise_open_files_limit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFilesLimit {
    pub before: u64,
    pub now: u64,
}

/// How the user raises the hard limit, for messages that name it.
pub const HOW_TO_RAISE: &str =
    "raise the hard limit: `ulimit -Hn` as root, `LimitNOFILE=` under systemd, `--ulimit nofile=` in Docker";

/// Raises the soft open-file limit as far as the hard limit allows (and the kernel's
/// `fs.nr_open`, when the hard limit is unlimited).
pub fn raise_open_files_limit() -> std::io::Result<OpenFilesLimit> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `limit` is a valid, writable rlimit for the duration of the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let before = limit.rlim_cur;
    let ceiling = if limit.rlim_max == libc::RLIM_INFINITY { kernel_ceiling() } else { limit.rlim_max };
    if limit.rlim_cur < ceiling {
        let raised = libc::rlimit { rlim_cur: ceiling, rlim_max: limit.rlim_max };
        // SAFETY: `raised` is a valid rlimit whose soft value does not exceed its hard value.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        limit.rlim_cur = ceiling;
    }
    Ok(OpenFilesLimit { before, now: limit.rlim_cur })
}

/// The soft open-file limit in force.
pub fn open_files_limit() -> Option<u64> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: as above.
    (unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0).then_some(limit.rlim_cur)
}

/// The most descriptors the kernel gives one process (`fs.nr_open`), 1,048,576 by default.
fn kernel_ceiling() -> u64 {
    std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(1 << 20)
}

/// Whether an accept or connect failed because descriptors ran out.
pub fn is_exhaustion(error: &std::io::Error) -> bool {
    matches!(error.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_ends_at_the_hard_limit() {
        let raised = raise_open_files_limit().unwrap();
        assert!(raised.now >= raised.before);
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: as in the module.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }, 0);
        assert_eq!(Some(limit.rlim_cur), open_files_limit());
        if limit.rlim_max != libc::RLIM_INFINITY {
            assert_eq!(limit.rlim_cur, limit.rlim_max);
        }
    }

    #[test]
    fn descriptor_exhaustion_is_told_apart() {
        assert!(is_exhaustion(&std::io::Error::from_raw_os_error(libc::EMFILE)));
        assert!(!is_exhaustion(&std::io::Error::from_raw_os_error(libc::ECONNRESET)));
    }
}
