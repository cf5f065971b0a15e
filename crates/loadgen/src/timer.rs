//! A timer with microsecond precision for the open-loop dispatcher: a Linux `timerfd` read
//! through tokio's reactor.
//!
//! tokio's own timer rounds every deadline up to its next millisecond tick, so a request
//! waited for with `sleep_until` starts 0–1 ms late (plus the reactor's wake-up), which is
//! the whole of the 1 ms lag budget. A `timerfd` is an hrtimer: it fires within a few
//! microseconds of its deadline, and one per client thread is enough because the dispatcher
//! waits for one due time at a time.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// One `timerfd` (CLOCK_MONOTONIC, the clock of [`Instant`]) registered with the runtime of
/// the thread that made it.
#[derive(Debug)]
pub struct PreciseTimer {
    fd: AsyncFd<OwnedFd>,
}

impl PreciseTimer {
    /// Creates the timer; call inside a tokio runtime with IO enabled.
    ///
    /// # Errors
    /// The `timerfd_create` or reactor registration error.
    pub fn new() -> io::Result<PreciseTimer> {
        // SAFETY: timerfd_create takes no pointers; a non-negative result is a new
        // descriptor that nothing else owns.
        let raw = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a valid descriptor owned by no one else (checked above).
        let owned = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: the `OwnedFd` moves into the `AsyncFd` and is never closed or replaced
        // before it, so the registered descriptor stays the same open timerfd.
        let fd = unsafe { AsyncFd::register_with_interest(owned, Interest::READABLE) }?;
        Ok(PreciseTimer { fd })
    }

    /// Waits until `deadline`, never returning before it. Returns at once when it has passed.
    ///
    /// # Errors
    /// A `timerfd_settime` or `read` error (none is expected on Linux).
    pub async fn sleep_until(&self, deadline: Instant) -> io::Result<()> {
        loop {
            let now = Instant::now();
            let Some(wait) = deadline
                .checked_duration_since(now)
                .filter(|d| !d.is_zero())
            else {
                return Ok(());
            };
            self.arm(wait)?;
            // Re-arming resets the timerfd's expiry count, so its readiness need not be read
            // away: one `timerfd_settime` per wake-up is the whole cost. A spurious wake-up
            // is harmless, since the loop re-checks the clock.
            self.fd.readable().await?.clear_ready();
        }
    }

    /// Arms the timer to fire once, `wait` from now (relative, so it can only fire late).
    fn arm(&self, wait: Duration) -> io::Result<()> {
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: wait.as_secs() as libc::time_t,
                tv_nsec: libc::c_long::from(wait.subsec_nanos() as i32),
            },
        };
        // SAFETY: the descriptor is a live timerfd owned by `self`; `spec` is a valid
        // itimerspec for the whole call and the old value is not asked for (null).
        let status =
            unsafe { libc::timerfd_settime(self.fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
        crate::net::os_status(status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
    }

    #[test]
    fn sleeping_until_a_deadline_never_returns_before_it() {
        runtime().block_on(async {
            let timer = PreciseTimer::new().expect("timerfd");
            for micros in [1, 50, 700, 2_500] {
                let deadline = Instant::now() + Duration::from_micros(micros);
                timer.sleep_until(deadline).await.expect("sleeps");
                assert!(Instant::now() >= deadline, "woke before {micros} µs");
            }
        });
    }

    #[test]
    fn a_deadline_in_the_past_returns_at_once() {
        runtime().block_on(async {
            let timer = PreciseTimer::new().expect("timerfd");
            let past = Instant::now();
            timer.sleep_until(past).await.expect("returns");
        });
    }
}
