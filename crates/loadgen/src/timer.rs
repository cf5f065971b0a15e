//! A wake-up with microsecond precision for the open loop's event loop: a Linux `timerfd`
//! registered in the loop's `mio::Poll`.
//!
//! `epoll_wait`'s timeout is whole milliseconds (mio rounds a wait up to the next one), so a
//! request waited for with it alone starts 0–1 ms late, the whole of the 1 ms lag budget. A
//! `timerfd` is an hrtimer: it fires within a few microseconds of its deadline, and its
//! readiness ends the loop's `epoll_wait` like any socket's. One per loop is enough, since the
//! loop waits for one due time at a time.
//!
//! Each expiry costs a `timerfd_settime`, an `epoll_wait` and usually a context switch, so
//! the timer fires at most once per [`QUANTUM`]: a due time within a quantum of the last
//! expiry waits for the next one, and that wake-up writes every request due by then. Measured
//! at 30,000 requests/s over 10000 connections without it: 0.76 `timerfd_settime`s, 1.1
//! `epoll_wait`s and 0.48 context switches per request (`perf trace -s`, `perf stat`).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};

/// The shortest time between two expiries; it bounds the lag the timer adds (half the 1 ms
/// `--max-lag` default). While replies come in, the loop wakes for them anyway and
/// writes what has fallen due with no wait for the timer.
///
/// Each expiry is a wake-up of the client's core, and on these virtual machines one costs
/// about 20 µs of the client's CPU, so the quantum sets the client's cost per request at
/// high rates. Against server-mio at 100 ms over 10000 connections, both under `chrt -f 5`
/// (`perf stat`, CPU per request over 10 s with the connects, schedule lag p99):
///
/// | quantum | 10,000 req/s | 30,000 req/s |
/// |---|---|---|
/// | 200 µs | 29.6 µs, 158 µs | 16.3 µs, 160 µs |
/// | 500 µs | 23.1 µs, 450 µs | 13.8 µs, 391 µs |
/// | 800 µs | 22.1 µs, 733 µs | 12.6 µs, 627 µs |
/// | d0f15d7's tokio loop | 20.8 µs, – | 15.5 µs, – (6.6 % late) |
///
/// 500 µs keeps the lag's p99 within half the budget, and over the schedule alone (a 1 s
/// run's CPU taken from a 10 s run's) costs 17.3 µs per request at 10,000/s, below
/// d0f15d7's 19.5 µs. Where requests are about a quantum apart the loop also lets one
/// wake-up take every request due within a quantum of the next (`Dues::batch_end` in
/// `open_loop`): at 2000/s over 10000 connections that halved its context switches (1.0 to
/// 0.5 per request) and its CPU per request went 71.7–76.9 → 56.3–63.0 µs (15 s runs with
/// the connects, alternated), its lag p99 85–117 → 586–618 µs; at 10,000/s 26.6–27.0 →
/// 24.3–24.5 µs, lag p99 444–452 → 597–608 µs.
pub const QUANTUM: Duration = Duration::from_micros(500);

/// One `timerfd` (CLOCK_MONOTONIC, the clock of [`Instant`]), armed for one deadline at a
/// time.
#[derive(Debug)]
pub struct Timer {
    fd: OwnedFd,
    armed: Option<Instant>,
    last_expiry: Option<Instant>,
}

impl Timer {
    /// Creates the timer and registers it readable (edge-triggered) under `token`.
    ///
    /// # Errors
    /// The `timerfd_create` or registration error.
    pub fn new(registry: &Registry, token: Token) -> io::Result<Timer> {
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
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        registry.register(&mut SourceFd(&fd.as_raw_fd()), token, Interest::READABLE)?;
        Ok(Timer {
            fd,
            armed: None,
            last_expiry: None,
        })
    }

    /// Makes the timer fire at `deadline` (never before it, and no sooner than a [`QUANTUM`]
    /// after its last expiry), unless it is already armed to
    /// fire no later: that wake-up finds nothing due and arms it again, which costs fewer
    /// `timerfd_settime`s than following every new due time while replies keep the loop
    /// awake. Re-arming resets the timerfd's expiry count, so its readiness
    /// need never be read away: with edge-triggered polling each expiry is a new event.
    ///
    /// # Errors
    /// A `timerfd_settime` error (none is expected on Linux).
    pub fn arm(&mut self, deadline: Instant, now: Instant) -> io::Result<()> {
        let deadline = self
            .last_expiry
            .map_or(deadline, |last| deadline.max(last + QUANTUM));
        if self.armed.is_some_and(|armed| armed <= deadline) {
            return Ok(());
        }
        // Relative, rounded up to a whole nanosecond, so it can only fire late; a zero
        // `it_value` would disarm it, hence at least one nanosecond.
        let wait = deadline
            .saturating_duration_since(now)
            .max(Duration::from_nanos(1));
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
        crate::net::os_status(status)?;
        self.armed = Some(deadline);
        Ok(())
    }

    /// The deadline it is armed for, until its expiry has been seen ([`Timer::fired`]).
    pub fn armed(&self) -> Option<Instant> {
        self.armed
    }

    /// Sleeps until the timer has fired, woken by nothing else: unlike the loop's poll, no
    /// socket's readiness ends this wait. It returns at once when the timer has already
    /// fired and not been armed since (its readiness lasts until the next
    /// [`Timer::arm`]), and on a signal. The expiry stays readable, so the poll that
    /// follows still sees its event.
    ///
    /// # Errors
    /// A `poll` error other than `EINTR` (none is expected on Linux).
    pub fn wait(&self) -> io::Result<()> {
        let mut fd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: `fd` is one valid pollfd for the whole call, and the count says one.
        let status = unsafe { libc::poll(&mut fd, 1, -1) };
        if status >= 0 {
            return Ok(());
        }
        match io::Error::last_os_error() {
            e if e.kind() == io::ErrorKind::Interrupted => Ok(()),
            e => Err(e),
        }
    }

    /// The timer has fired (its event came): the next [`Timer::arm`] must set it again even
    /// for the same instant, and no sooner than a quantum after this expiry.
    pub fn fired(&mut self) {
        self.last_expiry = self.armed.take().or(self.last_expiry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::{Events, Poll};

    #[test]
    fn an_armed_timer_ends_the_poll_and_never_before_its_deadline() {
        let mut poll = Poll::new().expect("a poll");
        let mut timer = Timer::new(poll.registry(), Token(0)).expect("a timerfd");
        let mut events = Events::with_capacity(4);
        for micros in [1, 50, 700, 2_500] {
            let now = Instant::now();
            let deadline = now + Duration::from_micros(micros);
            timer.arm(deadline, now).expect("arms");
            loop {
                poll.poll(&mut events, Some(Duration::from_secs(10)))
                    .expect("polls");
                if events.iter().any(|event| event.token() == Token(0)) {
                    break;
                }
            }
            timer.fired();
            assert!(Instant::now() >= deadline, "woke before {micros} µs");
        }
    }

    #[test]
    fn a_deadline_in_the_past_fires_at_once() {
        let mut poll = Poll::new().expect("a poll");
        let mut timer = Timer::new(poll.registry(), Token(7)).expect("a timerfd");
        let now = Instant::now();
        timer
            .arm(now - Duration::from_millis(1), now)
            .expect("arms");
        let mut events = Events::with_capacity(4);
        poll.poll(&mut events, Some(Duration::from_secs(10)))
            .expect("polls");
        assert!(events.iter().any(|event| event.token() == Token(7)));
    }

    #[test]
    fn waiting_on_the_timer_outlasts_a_ready_socket_and_leaves_both_events_to_the_poll() {
        let mut poll = Poll::new().expect("a poll");
        let mut timer = Timer::new(poll.registry(), Token(0)).expect("a timerfd");
        let (mut reader, mut writer) = mio::net::UnixStream::pair().expect("a socket pair");
        poll.registry()
            .register(&mut reader, Token(1), Interest::READABLE)
            .expect("registers");
        std::io::Write::write_all(&mut writer, b"ready").expect("writes");
        let now = Instant::now();
        let deadline = now + Duration::from_millis(30);
        timer.arm(deadline, now).expect("arms");
        timer.wait().expect("waits");
        assert!(Instant::now() >= deadline, "a ready socket ended the wait");
        let mut events = Events::with_capacity(4);
        poll.poll(&mut events, Some(Duration::ZERO)).expect("polls");
        let mut tokens: Vec<Token> = events.iter().map(|event| event.token()).collect();
        tokens.sort();
        assert_eq!(tokens, [Token(0), Token(1)]);
    }

    #[test]
    fn waiting_on_a_timer_that_has_fired_returns_at_once() {
        let poll = Poll::new().expect("a poll");
        let mut timer = Timer::new(poll.registry(), Token(0)).expect("a timerfd");
        let now = Instant::now();
        timer.arm(now, now).expect("arms");
        std::thread::sleep(Duration::from_millis(5));
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || done.send(timer.wait().is_ok()));
        let returned = finished.recv_timeout(Duration::from_secs(20));
        assert_eq!(returned, Ok(true), "the wait for a fired timer did not end");
    }
}
