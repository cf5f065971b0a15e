//! Spending a `block` or `spin` delay (or such a phase of a request recipe) on the calling
//! thread, the same way in every server.
//!
//! A `wait` delay is each server's own business (a socket timeout, a tokio timer, a timer
//! queue entry). `block` and `spin` are the same everywhere: they hold the thread that runs
//! the connection, an event loop's thread included, which is the point of them.
//!
//! A `spin` is an amount of CPU work, counted on the thread's own CPU clock, not a wall-clock
//! deadline: spun until the deadline, fifty threads sharing two cores each "finished" their
//! 20 ms in 20 ms, so a thread per connection answered a CPU-bound load of ten cores' worth
//! on two (the scenarios study measured 497 of 500 req/s at `spin:20ms`). Counted on the
//! thread's clock, a spin that is preempted lasts longer, as real work does, and a server
//! carries at most its cores' worth of it.

use std::time::{Duration, Instant};

use echo_core::{DelayKind, Timeout};

/// How often a spin reads the thread's CPU clock: a system call, so not on every turn of the
/// loop (which would move the work into kernel time), at the cost of overshooting the work
/// by up to this much.
const CPU_CLOCK_EVERY: Duration = Duration::from_micros(50);

/// Holds the calling thread for what is left until `timeout.at`: sleeping for
/// [`DelayKind::Block`] (and `Wait`), and for [`DelayKind::Spin`] busy-looping until the
/// thread has had that much CPU time (until the deadline, where the thread's CPU clock cannot
/// be read). Returns at once when the deadline has passed.
pub fn spend_on_thread(timeout: Timeout) {
    Work::left_of(timeout, Instant::now()).spend();
}

/// A `block` or `spin` phase as work of a fixed length, taken from its deadline when it is
/// handed to a pool.
///
/// A thread pool may start a phase late, when all its threads are busy. A blocking call
/// still takes its whole length once it starts (a driver's 100 ms query is 100 ms on
/// whichever thread runs it), so a queued phase must not shrink to what is left of a
/// deadline that passed while it waited: the wait shows in the request's latency instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Work {
    /// How the thread spends it.
    pub kind: DelayKind,
    /// How long (of sleep, or of the thread's CPU time for a spin).
    pub length: Duration,
}

impl Work {
    /// The work of `timeout` if it began at `now`: what is left until its deadline.
    pub fn left_of(timeout: Timeout, now: Instant) -> Work {
        Work {
            kind: timeout.kind,
            length: timeout.at.saturating_duration_since(now),
        }
    }

    /// Holds the calling thread for the whole length, however late it starts.
    pub fn spend(self) {
        match self.kind {
            DelayKind::Spin => spin(self.length),
            DelayKind::Wait | DelayKind::Block => std::thread::sleep(self.length),
        }
    }
}

/// Burns `work` of the calling thread's CPU time.
fn spin(work: Duration) {
    let start = Instant::now();
    let Some(cpu_start) = thread_cpu_time() else {
        while start.elapsed() < work {
            std::hint::spin_loop();
        }
        return;
    };
    let mut next_check = start;
    loop {
        let now = Instant::now();
        if now >= next_check {
            match thread_cpu_time() {
                Some(cpu) if cpu.saturating_sub(cpu_start) >= work => return,
                Some(_) => {}
                None if now - start >= work => return,
                None => {}
            }
            next_check = now + CPU_CLOCK_EVERY;
        }
        std::hint::spin_loop();
    }
}

/// The calling thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), if it can be read.
fn thread_cpu_time() -> Option<Duration> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we pass and nothing else.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    (rc == 0).then(|| {
        Duration::new(
            u64::try_from(now.tv_sec).unwrap_or(0),
            u32::try_from(now.tv_nsec).unwrap_or(0),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spinning_and_blocking_both_last_until_the_deadline() {
        for kind in [DelayKind::Spin, DelayKind::Block] {
            let at = Instant::now() + Duration::from_millis(5);
            spend_on_thread(Timeout { at, kind });
            assert!(Instant::now() >= at, "{kind} returned before its deadline");
        }
    }

    #[test]
    fn a_spin_is_cpu_work_so_two_on_one_core_take_twice_as_long() {
        let start = Instant::now();
        let spins: Vec<_> = (0..2)
            .map(|_| {
                std::thread::spawn(move || {
                    pin_to_cpu_zero();
                    let at = Instant::now() + Duration::from_millis(50);
                    spend_on_thread(Timeout {
                        at,
                        kind: DelayKind::Spin,
                    });
                })
            })
            .collect();
        for spin in spins {
            spin.join().expect("the spin thread ends");
        }
        // 100 ms of CPU work on one CPU cannot be done in less than 100 ms.
        assert!(
            start.elapsed() >= Duration::from_millis(100),
            "{:?}",
            start.elapsed()
        );
    }

    fn pin_to_cpu_zero() {
        // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET and sched_setaffinity only
        // touch the set we pass, for the calling thread (pid 0).
        let rc = unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(0, &mut set);
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
        };
        assert_eq!(rc, 0, "cannot pin a test thread to CPU 0");
    }
}
