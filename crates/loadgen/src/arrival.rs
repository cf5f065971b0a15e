//! When a reply arrived, as the kernel saw it: the software receive timestamp that Linux
//! attaches to a socket's data (`SO_TIMESTAMPING`), read back with each `recvmsg`.
//!
//! # Why
//! The open loop used to time a reply by the clock it read after the chunk of reads that
//! took it in. At tens of thousands of requests per second the loop is busy for
//! milliseconds at a time (a burst of replies, the writes that fell due meanwhile), and a
//! reply that arrived at the start of such a stretch waited in its socket until the loop
//! came to it: that wait, the client's own, was counted as the server's latency. The
//! kernel's timestamp is taken when the reply enters the receiving socket's stack, so a
//! latency that ends there leaves the client's read delay out; the delay itself is measured
//! as the read lag (read − arrival) and reported on its own, as the schedule lag is on the
//! sending side.
//!
//! # Clocks
//! The timestamp is `CLOCK_REALTIME`; every other time in loadgen is an [`Instant`]
//! (`CLOCK_MONOTONIC`). [`Clocks::now`] reads both together once per chunk, and
//! [`Clocks::instant_of`] carries a timestamp over by its distance from that reading, a few
//! milliseconds at most, over which the two clocks cannot drift apart measurably. Should the
//! wall clock be stepped between the two readings, a stamp could land outside the request's
//! life; the loop clamps it between the send and the read.
//!
//! A read that brings no timestamp leaves the reply timed by its read, as before; the
//! report counts the replies each way. That happens when the option could not be set, when
//! the data was queued before it was, and just after the first socket of the machine asks
//! for timestamps: the kernel switches its timestamping on from a work queue
//! (`net_enable_timestamp`), so the packets of the next moments may go unstamped.

use std::io;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use crate::net::os_status;

/// A kernel receive timestamp: nanoseconds of `CLOCK_REALTIME`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Stamp {
    realtime_ns: i128,
}

/// Asks the kernel to timestamp the data arriving on socket `fd` in software and to hand
/// the timestamp to `recvmsg` (the 64-bit-time form, `SO_TIMESTAMPING_NEW`).
///
/// # Errors
/// The `setsockopt` error: a kernel without the option (before 5.1) refuses it.
pub fn enable(fd: RawFd) -> io::Result<()> {
    let flags =
        (libc::SOF_TIMESTAMPING_RX_SOFTWARE | libc::SOF_TIMESTAMPING_SOFTWARE) as libc::c_int;
    // SAFETY: `fd` is a socket the caller owns for the whole call; the value points to a
    // live c_int and its exact size is passed.
    let status = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPING_NEW,
            (&raw const flags).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    os_status(status)
}

/// Room for one `SCM_TIMESTAMPING_NEW` control message (three 16-byte timespecs after a
/// 16-byte header), 8-byte aligned as `cmsghdr` needs, with room to spare for any other
/// message the kernel adds.
type ControlBuffer = [u64; 16];

/// Reads what socket `fd` has into `buf`, like `recv`, and the kernel's receive timestamp
/// of the last data read, when it gave one.
///
/// # Errors
/// The `recvmsg` error (`WouldBlock` when nothing is there).
pub fn recv(fd: RawFd, buf: &mut [u8]) -> io::Result<(usize, Option<Stamp>)> {
    let mut control: ControlBuffer = [0; 16];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: an all-zero msghdr is a valid value (null name, no iovecs, no control).
    let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
    message.msg_iov = &raw mut iov;
    message.msg_iovlen = 1;
    message.msg_control = control.as_mut_ptr().cast();
    message.msg_controllen = size_of::<ControlBuffer>();
    // SAFETY: `message` points to one iovec over `buf` and to `control`, both live and
    // writable for their stated lengths for the whole call.
    let n = unsafe { libc::recvmsg(fd, &raw mut message, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let read = usize::try_from(n).unwrap_or(0);
    // SAFETY: `message` was filled in by the kernel: its control fields describe the
    // messages written into `control`, which is still live.
    let stamp = unsafe { timestamp_of(&message) };
    Ok((read, stamp))
}

/// The software timestamp among the control messages of `message`.
///
/// # Safety
/// `message`'s control pointer and length must describe a live buffer holding the control
/// messages `recvmsg` wrote.
unsafe fn timestamp_of(message: &libc::msghdr) -> Option<Stamp> {
    // SAFETY (whole body): the caller guarantees the control buffer; CMSG_FIRSTHDR and
    // CMSG_NXTHDR stay within msg_controllen, and a timestamping message's data holds
    // three `__kernel_timespec`s (two i64 each), read unaligned.
    let mut header = unsafe { libc::CMSG_FIRSTHDR(message) };
    while !header.is_null() {
        let cmsg = unsafe { &*header };
        if cmsg.cmsg_level == libc::SOL_SOCKET && cmsg.cmsg_type == libc::SO_TIMESTAMPING_NEW {
            let data = unsafe { libc::CMSG_DATA(header) }.cast::<[i64; 2]>();
            // The first of the three is the software timestamp; zero means none was taken.
            let [seconds, nanoseconds] = unsafe { data.read_unaligned() };
            if seconds == 0 && nanoseconds == 0 {
                return None;
            }
            let realtime_ns = i128::from(seconds) * 1_000_000_000 + i128::from(nanoseconds);
            return Some(Stamp { realtime_ns });
        }
        header = unsafe { libc::CMSG_NXTHDR(message, header) };
    }
    None
}

/// The two clocks read together: the monotonic one of [`Instant`] and the wall clock of
/// the kernel's timestamps.
#[derive(Debug, Clone, Copy)]
pub struct Clocks {
    /// The monotonic reading.
    pub monotonic: Instant,
    realtime_ns: i128,
}

impl Clocks {
    /// Reads both clocks: the wall clock on either side of the monotonic one, averaged, so
    /// the pair is off by at most half the time between the readings (tens of nanoseconds).
    pub fn now() -> Clocks {
        let before = realtime_ns();
        let monotonic = Instant::now();
        let after = realtime_ns();
        Clocks {
            monotonic,
            realtime_ns: before + (after - before) / 2,
        }
    }

    /// The [`Instant`] at which the wall clock read `stamp`, if the clocks ran in step
    /// since: this reading less the stamp's distance before it (a stamp after the reading,
    /// which only a stepped wall clock gives, is this reading).
    pub fn instant_of(&self, stamp: Stamp) -> Instant {
        let before = u64::try_from(self.realtime_ns - stamp.realtime_ns).unwrap_or(0);
        self.monotonic
            .checked_sub(Duration::from_nanos(before))
            .unwrap_or(self.monotonic)
    }
}

fn realtime_ns() -> i128 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a live timespec the call writes; CLOCK_REALTIME always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &raw mut now) };
    i128::from(now.tv_sec) * 1_000_000_000 + i128::from(now.tv_nsec)
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;

    use super::*;

    /// A client socket with timestamps on, and the peer that writes to it, once the kernel
    /// stamps what arrives (it turns stamping on from a work queue: see the module's doc).
    fn stamped_pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let client = TcpStream::connect(listener.local_addr().expect("address")).expect("connects");
        enable(client.as_raw_fd()).expect("SO_TIMESTAMPING_NEW is set");
        let (mut peer, _) = listener.accept().expect("accepts");
        let mut buf = [0; 64];
        for _ in 0..1000 {
            peer.write_all(b"-").expect("writes");
            if recv_within(&client, &mut buf).1.is_some() {
                return (client, peer);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("no data was stamped within 10 s of asking for timestamps");
    }

    /// [`recv`] (which never blocks) once the data is there, within 10 s.
    fn recv_within(client: &TcpStream, buf: &mut [u8]) -> (usize, Option<Stamp>) {
        for _ in 0..1000 {
            match recv(client.as_raw_fd(), buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                read => return read.expect("reads"),
            }
        }
        panic!("nothing arrived within 10 s");
    }

    #[test]
    fn data_read_long_after_it_arrived_is_stamped_with_its_arrival() {
        let (client, mut peer) = stamped_pair();
        let written = Instant::now();
        peer.write_all(b"HELLO\n").expect("writes");
        let wrote = Instant::now();
        // The data waits in the socket, as a reply does while the loop is busy elsewhere.
        std::thread::sleep(Duration::from_millis(200));
        let mut buf = [0; 64];
        let (n, stamp) = recv_within(&client, &mut buf);
        let read = Clocks::now();
        assert_eq!(&buf[..n], b"HELLO\n");
        let arrived = read.instant_of(stamp.expect("the kernel stamped the data"));
        assert!(
            arrived >= written - Duration::from_millis(1),
            "stamped before the write"
        );
        // The stamp is the arrival, not the read: nearer the write than the read, by far.
        let waited = read.monotonic.duration_since(arrived);
        assert!(
            waited >= Duration::from_millis(100),
            "the stamp is {:?} after the write returned and {waited:?} before the read",
            arrived.saturating_duration_since(wrote)
        );
    }

    #[test]
    fn a_socket_without_the_option_reads_without_a_stamp() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let client = TcpStream::connect(listener.local_addr().expect("address")).expect("connects");
        let (mut peer, _) = listener.accept().expect("accepts");
        peer.write_all(b"HI\n").expect("writes");
        let mut buf = [0; 64];
        let (n, stamp) = recv_within(&client, &mut buf);
        assert_eq!(&buf[..n], b"HI\n");
        assert_eq!(stamp, None);
    }

    #[test]
    fn a_stamp_is_carried_over_to_the_monotonic_clock_by_its_distance() {
        let clocks = Clocks::now();
        let earlier = Stamp {
            realtime_ns: clocks.realtime_ns - 3_000_000,
        };
        assert_eq!(
            clocks.instant_of(earlier),
            clocks.monotonic - Duration::from_millis(3)
        );
        let later = Stamp {
            realtime_ns: clocks.realtime_ns + 5,
        };
        assert_eq!(
            clocks.instant_of(later),
            clocks.monotonic,
            "a stepped clock"
        );
    }
}
