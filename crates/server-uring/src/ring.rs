//! Setting up a ring, and saying why when io_uring is not there.
//!
//! io_uring can be missing for several reasons that look alike from user space: a kernel too
//! old (or built without it), the `kernel.io_uring_disabled` sysctl, or a seccomp filter (the
//! default of Docker and of many sandboxes) that makes `io_uring_setup` fail. The server tells
//! them apart as far as the error and `/proc/sys/kernel/io_uring_disabled` allow, and refuses
//! to start with a message naming the cause: a server that started and then failed every
//! connection would be measured as a very slow server instead of a missing one.
//!
//! The loop needs three things past the basic ring, and checks them here, at start, too: the
//! wait with a timeout in one `io_uring_enter` (`IORING_FEAT_EXT_ARG`, Linux 5.11), completions
//! never dropped on a full completion queue (`IORING_FEAT_NODROP`, 5.5), and provided-buffer
//! rings (5.19, checked when [`crate::buffers::BufferRing`] registers).

use std::io;

use io_uring::IoUring;

/// Why io_uring cannot be used here; the message names the cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable(pub String);

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "io_uring unavailable: {}", self.0)
    }
}

impl std::error::Error for Unavailable {}

impl From<Unavailable> for io::Error {
    fn from(err: Unavailable) -> io::Error {
        io::Error::new(io::ErrorKind::Unsupported, err)
    }
}

/// A ring and whether it was created disabled (to be enabled on the thread that runs it).
pub struct Ring {
    /// The ring itself.
    pub ring: IoUring,
    /// Created with `IORING_SETUP_R_DISABLED` (with single-issuer and deferred task work):
    /// the loop thread must call [`Ring::enable`] before its first submission.
    disabled: bool,
}

impl Ring {
    /// A ring of `entries` submission slots and `4 * entries` completion slots.
    ///
    /// It asks first for `SINGLE_ISSUER | DEFER_TASKRUN` (Linux 6.1): completions are then
    /// processed only inside the loop's own `io_uring_enter`, never by interrupting the loop
    /// thread elsewhere, which is the cheapest mode for one thread owning one ring. On an older
    /// kernel it falls back to a plain ring.
    ///
    /// # Errors
    /// [`Unavailable`] naming why io_uring cannot be used.
    pub fn new(entries: u32) -> Result<Ring, Unavailable> {
        let cq = entries * 4;
        let fast = IoUring::builder()
            .setup_cqsize(cq)
            .setup_single_issuer()
            .setup_defer_taskrun()
            .setup_r_disabled()
            .build(entries);
        let (ring, disabled) = match fast {
            Ok(ring) => (ring, true),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                let plain = IoUring::builder().setup_cqsize(cq).build(entries);
                (plain.map_err(|e| cause(&e))?, false)
            }
            Err(e) => return Err(cause(&e)),
        };
        let params = ring.params();
        if !params.is_feature_ext_arg() {
            return Err(Unavailable(
                "the kernel lacks IORING_FEAT_EXT_ARG (a wait with a timeout; Linux 5.11 or \
                 later is needed)"
                    .to_owned(),
            ));
        }
        if !params.is_feature_nodrop() {
            return Err(Unavailable(
                "the kernel lacks IORING_FEAT_NODROP (Linux 5.5 or later is needed)".to_owned(),
            ));
        }
        Ok(Ring { ring, disabled })
    }

    /// Enables a ring created disabled; call it on the thread that submits from now on.
    ///
    /// # Errors
    /// When the kernel refuses (it does not after a successful [`Ring::new`]).
    pub fn enable(&mut self) -> io::Result<()> {
        if std::mem::take(&mut self.disabled) {
            self.ring.submitter().register_enable_rings()?;
        }
        Ok(())
    }
}

/// Exit status of a binary that cannot run here, with `skipped: <reason>` on stderr: the
/// convention the article's optional baselines follow too (uvloop), so that a study shows the
/// row as skipped with the reason instead of failed.
pub const EXIT_SKIPPED: u8 = 3;

/// Checks at start that this process can run the loop: sets up a small ring and registers a
/// buffer ring on it, as every loop will.
///
/// # Errors
/// [`Unavailable`] naming the cause.
pub fn probe() -> Result<(), Unavailable> {
    let ring = Ring::new(8)?;
    crate::buffers::BufferRing::register(&ring.ring).map_err(|e| {
        let text = e.to_string();
        let text = text.strip_prefix("io_uring unavailable: ").unwrap_or(&text);
        Unavailable(text.to_owned())
    })?;
    Ok(())
}

/// What an `io_uring_setup` error says about the machine.
fn cause(err: &io::Error) -> Unavailable {
    let disabled = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .ok()
        .and_then(|text| text.trim().parse::<u32>().ok());
    let why = match (err.raw_os_error(), disabled) {
        (Some(libc::ENOSYS), _) => "io_uring_setup is not implemented: the kernel is older than \
             5.1 or built without CONFIG_IO_URING, or a seccomp filter answers ENOSYS"
            .to_owned(),
        (Some(libc::EPERM), Some(2)) => {
            "kernel.io_uring_disabled is 2: io_uring is disabled for every process".to_owned()
        }
        (Some(libc::EPERM), Some(1)) => "kernel.io_uring_disabled is 1: only members of \
             kernel.io_uring_group (or CAP_SYS_ADMIN) may create rings"
            .to_owned(),
        (Some(libc::EPERM), _) => {
            "io_uring_setup was refused (EPERM): a seccomp filter or a security module forbids it"
                .to_owned()
        }
        (Some(libc::ENOMEM), _) => format!(
            "io_uring_setup failed for lack of locked memory ({err}); raise RLIMIT_MEMLOCK or \
             use Linux 5.12 or later"
        ),
        _ => format!("io_uring_setup failed: {err}"),
    };
    Unavailable(why)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setup_error_names_its_cause() {
        let enosys = cause(&io::Error::from_raw_os_error(libc::ENOSYS));
        assert!(enosys.0.contains("CONFIG_IO_URING"), "{enosys}");
        let eperm = cause(&io::Error::from_raw_os_error(libc::EPERM));
        assert!(
            eperm.0.contains("io_uring_disabled") || eperm.0.contains("seccomp"),
            "{eperm}"
        );
        let other = cause(&io::Error::from_raw_os_error(libc::EFAULT));
        assert!(
            other.to_string().starts_with("io_uring unavailable: "),
            "{other}"
        );
    }

    #[test]
    fn the_probe_passes_on_this_machine() {
        // Where this fails, the message says why io_uring cannot run here.
        let probed = probe().map_err(|e| e.to_string());
        assert!(probed.is_ok(), "{}", probed.err().unwrap_or_default());
    }
}
