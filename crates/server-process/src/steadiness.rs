//! How fast the machine's CPUs ran while something was measured, by a probe that costs them
//! little.
//!
//! # Why
//! The development machines are virtual, and their CPUs do not always run at the same
//! speed. This probe alone on an idle machine for 20 s
//! (`cargo run --release -p server-process --example steadiness -- --seconds 20 --cpus 0,1`)
//! found 6.7 % of each CPU's samples below half its fastest, in 30 and 31 episodes of up to
//! 110 ms, the slowest at 5 % of full speed; 131 of CPU 0's 133 slowed samples had CPU 1
//! slowed within one period too. The kernel's steal time moved by one tick over those 20 s,
//! so nothing inside the machine reports it. A server or loadgen slowed to a fifth for 50 ms
//! falls behind its schedule and catches up after, and that shows in a p99, a late start or
//! a broken step as if the program had done it. [`SpeedProbe`] measures those slowdowns
//! during a run, so a report can say how much of it ran on slowed CPUs.
//!
//! # How
//! One thread per CPU, pinned to it, wakes every [`PERIOD`], runs a fixed amount of
//! arithmetic twice, and keeps the faster run's thread CPU time. Thread CPU time is what the
//! machine's own scheduler gave the thread, so a preemption by another task of the machine
//! is not taken for slowness, while a slowdown from outside is, because the machine cannot
//! see it and counts the time as run. Keeping the faster of two runs drops one interrupt.
//! A sample's speed is its CPU's full-speed time over its own; one below [`SLOW`] is a
//! slowed sample. Full speed is the record's 1st percentile rather than its fastest sample,
//! because the thread clock now and then reads no time at all for the work: in one capacity
//! run a single such sample on CPU 0 made every later sample of that CPU look stopped
//! (100 % slowed, the slowest at 0), and the study then judged nothing away from the
//! slowdowns. The work takes about 2 × 34 µs per period: 0.7 % of each CPU.
//!
//! A probe started real-time ([`SpeedProbe::start_real_time`], above real-time clients)
//! also wakes every [`CHECK`] between samples, and a wake-up later than [`STALL`] marks the
//! next sample slowed from the wake-up's due time: the CPU was stopped from outside, which
//! the arithmetic sees only when the stop falls inside its 70 µs. A default-policy probe
//! does not, since its wake-ups also wait for the machine's other tasks.

use std::hint::black_box;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How often each probe thread measures its CPU: finer than the slowdowns seen (25 ms and
/// longer), coarse enough to cost the measured programs nothing noticeable.
pub const PERIOD: Duration = Duration::from_millis(10);

/// A sample slower than this fraction of its CPU's fastest is a slowed one.
pub const SLOW: f64 = 0.5;

/// Iterations of the probe's arithmetic: about 34 µs on the development machines.
const WORK: u64 = 25_000;

/// How often a real-time probe thread wakes between two samples to see whether its CPU was
/// stopped: a wake-up later than [`STALL`] marks the sample that follows as slowed.
pub const CHECK: Duration = Duration::from_millis(2);

/// A real-time probe's wake-up later than this was a stall of its CPU. Above a real-time
/// client nothing of the machine's own makes it wait that long, so the CPU itself did not
/// run: these virtual CPUs are now and then stopped by their host for 3–25 ms, most often
/// starting at the same phase of each 100 ms, and the machine sees that time as run by
/// whatever was on the CPU (`perf sched timehist`: loadgen "ran" 22.7 ms at once at 2000
/// requests/s, where its turns take 0.5 ms, while a 10 kHz `perf record` took no sample of
/// it). The arithmetic's speed does not see such a stall unless it falls inside the 70 µs
/// of a sample.
pub const STALL: Duration = Duration::from_millis(1);

/// One measurement of one CPU.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// When it was taken.
    pub at: Instant,
    /// Thread CPU time of the faster of its two runs of the work, in nanoseconds.
    pub nanos: u64,
    /// A real-time probe's latest wake-up since the sample before that came more than
    /// [`STALL`] late: when it was due, and how late it came (`None` for a probe of the
    /// default policy, whose wake-ups wait for other tasks too).
    pub stall: Option<Stall>,
}

/// A stop of a probed CPU, seen as a late wake-up of its real-time probe thread.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stall {
    /// When the wake-up was due: the CPU was stopped from at most a [`CHECK`] before.
    pub from: Instant,
    /// How late it came.
    pub nanos: u64,
}

impl Sample {
    /// Whether it ran slower than [`SLOW`] of `fastest` or followed a stall of its CPU.
    fn slowed(&self, fastest: u64) -> bool {
        (fastest as f64 / self.nanos.max(1) as f64) < SLOW || self.stall.is_some()
    }

    /// When it saw its CPU slowed: the stall's start, or the sample's own time.
    fn slowed_from(&self) -> Instant {
        self.stall.map_or(self.at, |stall| stall.from)
    }
}

/// How fast the probed CPUs ran over a stretch of time.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Steadiness {
    /// Samples taken in the stretch, every CPU together.
    pub samples: u64,
    /// Those slower than [`SLOW`] of their CPU's fastest.
    pub slowed: u64,
    /// The slowest sample's speed as a fraction of its CPU's fastest (1 when none was
    /// taken).
    pub slowest: f64,
}

impl Steadiness {
    /// The share of slowed samples; `None` when there were none to judge.
    pub fn slowed_fraction(&self) -> Option<f64> {
        (self.samples > 0).then(|| self.slowed as f64 / self.samples as f64)
    }

    /// Judges the samples of one CPU taken between `from` and `to` against the full speed of
    /// all of `samples` ([`full_speed_nanos`] of the CPU's whole record, so a stretch that ran
    /// slowed throughout is still seen as slowed).
    pub fn of(samples: &[Sample], from: Instant, to: Instant) -> Steadiness {
        let fastest = full_speed_nanos(samples).unwrap_or(1);
        let mut out = Steadiness {
            slowest: 1.0,
            ..Steadiness::default()
        };
        for sample in samples.iter().filter(|s| s.at >= from && s.at <= to) {
            let speed = fastest as f64 / sample.nanos.max(1) as f64;
            out.samples += 1;
            out.slowed += u64::from(sample.slowed(fastest));
            out.slowest = out.slowest.min(speed);
        }
        out
    }

    /// When the slowed samples of `samples` saw their CPU slowed (a stall from its start),
    /// judged against the full speed of them all, in order.
    pub fn slowed_at(samples: &[Sample]) -> Vec<Instant> {
        let Some(fastest) = full_speed_nanos(samples) else {
            return Vec::new();
        };
        let mut at: Vec<Instant> = samples
            .iter()
            .filter(|s| s.slowed(fastest))
            .map(Sample::slowed_from)
            .collect();
        at.sort_unstable();
        at
    }

    /// Both stretches' samples together.
    #[must_use]
    pub fn and(self, other: Steadiness) -> Steadiness {
        Steadiness {
            samples: self.samples + other.samples,
            slowed: self.slowed + other.slowed,
            slowest: self.slowest.min(other.slowest),
        }
    }
}

/// A CPU's time for the work at full speed: the 1st percentile of its record's times that
/// read any time at all; `None` for a record with none. A low percentile rather than the
/// minimum, so that one reading of the thread clock that missed the work (0 ns, or far
/// below what the CPU can do) does not make every other sample look slowed; the CPU ran
/// at full speed for far more than 1 % of any record seen here (over 90 %).
pub fn full_speed_nanos(samples: &[Sample]) -> Option<u64> {
    let mut nanos: Vec<u64> = samples.iter().map(|s| s.nanos).filter(|&n| n > 0).collect();
    if nanos.is_empty() {
        return None;
    }
    let at = nanos.len() / 100;
    Some(*nanos.select_nth_unstable(at).1)
}

/// The probe's threads, one per CPU, running until [`SpeedProbe::stop`] or drop.
#[derive(Debug)]
pub struct SpeedProbe {
    cpus: Vec<usize>,
    checks_stalls: bool,
    records: Vec<Arc<Mutex<Vec<Sample>>>>,
    stop: Arc<AtomicBool>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl SpeedProbe {
    /// Starts one probe thread pinned to each of `cpus`, under the default policy.
    ///
    /// # Errors
    /// When a thread cannot be pinned (the CPU does not exist or is not allowed), naming
    /// the CPU; the threads already started are stopped.
    pub fn start(cpus: &[usize]) -> io::Result<SpeedProbe> {
        SpeedProbe::start_with(cpus, None)
    }

    /// Starts the probe with its threads under `SCHED_FIFO` at `priority`, for runs whose
    /// clients are real-time (see [`crate::run_fifo`]) at a lower one. A probe of the default
    /// policy beside such a client runs only while the client sleeps, in pieces between the
    /// client's wake-ups (in one capacity study with loadgen under `SCHED_FIFO` 5 on CPU 1 it
    /// took 23.8 % of that CPU's samples for slowed while the machine showed none, though
    /// at 2000 and 30000 requests/s against server-mio it read 0.0 % so), and it cannot see
    /// a stall of its CPU (see [`STALL`]). Above the client each sample runs whole and every
    /// late wake-up is the CPU's: beside loadgen at 2000 requests/s for 15 s it saw 13 and
    /// 14 stalls on CPUs 0 and 1, 10 of them on both at once, where the default probe saw
    /// none while loadgen started 52 requests late by up to 10.7 ms. It delays the client by
    /// its ~70 µs every [`PERIOD`] and a wake-up every [`CHECK`].
    ///
    /// # Errors
    /// As [`SpeedProbe::start`], and when a thread may not take the policy, naming the
    /// priority and the system's reason.
    pub fn start_real_time(cpus: &[usize], priority: i32) -> io::Result<SpeedProbe> {
        SpeedProbe::start_with(cpus, Some(priority))
    }

    /// The probe for a run whose clients run under `SCHED_FIFO` at `clients_priority`
    /// (`None`: the default policy): real-time one priority above them, or of the default
    /// policy like them.
    ///
    /// # Errors
    /// As [`SpeedProbe::start_real_time`].
    pub fn beside_clients(cpus: &[usize], clients_priority: Option<i32>) -> io::Result<SpeedProbe> {
        SpeedProbe::start_with(cpus, clients_priority.map(|priority| priority + 1))
    }

    fn start_with(cpus: &[usize], fifo_priority: Option<i32>) -> io::Result<SpeedProbe> {
        let mut probe = SpeedProbe {
            cpus: cpus.to_vec(),
            checks_stalls: fifo_priority.is_some(),
            records: Vec::new(),
            stop: Arc::new(AtomicBool::new(false)),
            threads: Mutex::new(Vec::new()),
        };
        for &cpu in cpus {
            let record = Arc::new(Mutex::new(Vec::new()));
            let (pinned_tx, pinned_rx) = std::sync::mpsc::channel();
            let thread = {
                let record = Arc::clone(&record);
                let stop = Arc::clone(&probe.stop);
                thread::Builder::new()
                    .name(format!("speed-probe-{cpu}"))
                    .spawn(move || {
                        let pinned = pin_this_thread(cpu)
                            .and_then(|()| fifo_priority.map_or(Ok(()), fifo_thread));
                        let ok = pinned.is_ok();
                        let _ = pinned_tx.send(pinned);
                        if ok {
                            probe_loop(&record, &stop, fifo_priority.is_some());
                        }
                    })?
            };
            probe.records.push(record);
            probe.lock_threads().push(thread);
            let pinned = pinned_rx.recv().unwrap_or_else(|_| {
                Err(io::Error::other(
                    "the probe thread ended before it was pinned",
                ))
            });
            if let Err(e) = pinned {
                probe.stop();
                return Err(io::Error::new(
                    e.kind(),
                    format!("cannot start the speed probe on cpu {cpu}: {e}"),
                ));
            }
        }
        Ok(probe)
    }

    /// Whether its threads are real-time and look for stalls every [`CHECK`].
    pub fn checks_stalls(&self) -> bool {
        self.checks_stalls
    }

    /// How the CPUs in `cpus` (all probed ones when empty) ran between `from` and `to`;
    /// CPUs not probed are left out.
    pub fn over(&self, cpus: &[usize], from: Instant, to: Instant) -> Steadiness {
        self.cpus
            .iter()
            .zip(&self.records)
            .filter(|(cpu, _)| cpus.is_empty() || cpus.contains(cpu))
            .map(|(_, record)| {
                let samples = record.lock().unwrap_or_else(PoisonError::into_inner);
                Steadiness::of(&samples, from, to)
            })
            .fold(
                Steadiness {
                    slowest: 1.0,
                    ..Steadiness::default()
                },
                Steadiness::and,
            )
    }

    /// When any of `cpus` (all probed ones when empty) ran slowed, in order.
    pub fn slowed_at(&self, cpus: &[usize]) -> Vec<Instant> {
        let mut at: Vec<Instant> = self
            .cpus
            .iter()
            .filter(|cpu| cpus.is_empty() || cpus.contains(cpu))
            .flat_map(|&cpu| Steadiness::slowed_at(&self.samples(cpu)))
            .collect();
        at.sort_unstable();
        at
    }

    /// Every sample of `cpu` so far (empty for a CPU not probed).
    pub fn samples(&self, cpu: usize) -> Vec<Sample> {
        self.cpus
            .iter()
            .position(|&c| c == cpu)
            .map(|i| {
                self.records[i]
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone()
            })
            .unwrap_or_default()
    }

    /// Stops and joins the probe threads; the samples stay readable.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.lock_threads().drain(..) {
            let _ = thread.join();
        }
    }

    fn lock_threads(&self) -> std::sync::MutexGuard<'_, Vec<JoinHandle<()>>> {
        self.threads.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for SpeedProbe {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Samples every [`PERIOD`] until `stop`; a real-time probe (`checks_stalls`) also wakes
/// every [`CHECK`] in between and keeps its latest wake-up later than [`STALL`].
fn probe_loop(record: &Mutex<Vec<Sample>>, stop: &AtomicBool, checks_stalls: bool) {
    let mut next = Instant::now();
    let mut stall = None;
    while !stop.load(Ordering::Relaxed) {
        let nanos = work_nanos().min(work_nanos());
        let sample = Sample {
            at: Instant::now(),
            nanos,
            stall: stall.take(),
        };
        record
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(sample);
        next += PERIOD;
        if Instant::now() >= next {
            // Behind (the work itself was slowed): sample again at once, from now on.
            next = Instant::now();
            continue;
        }
        loop {
            let now = Instant::now();
            if now >= next {
                break;
            }
            let wake = if checks_stalls {
                (now + CHECK).min(next)
            } else {
                next
            };
            thread::sleep(wake - now);
            let late = Instant::now().saturating_duration_since(wake);
            if checks_stalls && late > STALL {
                stall = Some(Stall {
                    from: wake,
                    nanos: u64::try_from(late.as_nanos()).unwrap_or(u64::MAX),
                });
            }
        }
    }
}

/// Thread CPU time of one run of the probe's arithmetic.
fn work_nanos() -> u64 {
    let before = thread_cpu_nanos();
    let mut x: u64 = black_box(1);
    for _ in 0..black_box(WORK) {
        x = black_box(
            x.wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407),
        );
    }
    black_box(x);
    thread_cpu_nanos().saturating_sub(before)
}

fn thread_cpu_nanos() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the call to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    u64::try_from(ts.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(ts.tv_nsec).unwrap_or(0)
}

/// Pins the calling thread to `cpu`.
fn pin_this_thread(cpu: usize) -> io::Result<()> {
    let set = crate::launch::cpu_set(&[cpu])?;
    // SAFETY: pid 0 is the calling thread; `set` is a valid cpu_set_t of the size passed.
    if unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Puts the calling thread under `SCHED_FIFO` at `priority`, the refusal naming it.
fn fifo_thread(priority: i32) -> io::Result<()> {
    crate::launch::set_fifo(priority).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot run under SCHED_FIFO priority {priority}: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(start: Instant, nanos: &[u64]) -> Vec<Sample> {
        nanos
            .iter()
            .enumerate()
            .map(|(i, &nanos)| Sample {
                at: start + PERIOD * u32::try_from(i).expect("few samples"),
                nanos,
                stall: None,
            })
            .collect()
    }

    #[test]
    fn a_sample_slower_than_half_the_fastest_is_slowed_and_the_window_bounds_what_counts() {
        let t0 = Instant::now();
        let record = samples(t0, &[25_000, 26_000, 60_000, 49_000, 100_000, 25_500]);
        let all = Steadiness::of(&record, t0, t0 + PERIOD * 10);
        assert_eq!((all.samples, all.slowed), (6, 2), "{all:?}");
        assert!((all.slowest - 0.25).abs() < 1e-9, "{all:?}");
        assert_eq!(all.slowed_fraction(), Some(2.0 / 6.0));
        assert_eq!(
            Steadiness::slowed_at(&record),
            [t0 + PERIOD * 2, t0 + PERIOD * 4]
        );
        // The last three only, still judged against the fastest of the whole record.
        let tail = Steadiness::of(&record, t0 + PERIOD * 3, t0 + PERIOD * 5);
        assert_eq!((tail.samples, tail.slowed), (3, 1), "{tail:?}");
        let none = Steadiness::of(&record, t0 + PERIOD * 7, t0 + PERIOD * 9);
        assert_eq!((none.samples, none.slowed_fraction()), (0, None));
    }

    #[test]
    fn a_clock_reading_that_missed_the_work_does_not_make_the_cpu_look_slowed() {
        let t0 = Instant::now();
        // 300 samples at full speed with a few slowed ones, and two readings of (almost) no
        // time: 0 ns and 500 ns against a work of about 34 µs.
        let mut nanos = vec![34_000; 300];
        nanos[10] = 0;
        nanos[20] = 500;
        nanos[100] = 90_000;
        nanos[101] = 120_000;
        let record = samples(t0, &nanos);
        assert_eq!(full_speed_nanos(&record), Some(34_000));
        let all = Steadiness::of(&record, t0, t0 + PERIOD * 300);
        assert_eq!((all.samples, all.slowed), (300, 2), "{all:?}");
        assert!((all.slowest - 34.0 / 120.0).abs() < 1e-9, "{all:?}");
        assert_eq!(
            Steadiness::slowed_at(&record),
            [t0 + PERIOD * 100, t0 + PERIOD * 101]
        );
        assert_eq!(full_speed_nanos(&samples(t0, &[0, 0])), None);
    }

    #[test]
    fn a_sample_after_a_stall_is_slowed_from_the_stall_at_full_speed() {
        let t0 = Instant::now();
        let mut record = samples(t0, &[34_000; 100]);
        let from = t0 + PERIOD * 41 + Duration::from_millis(3);
        record[42].stall = Some(Stall {
            from,
            nanos: 12_000_000,
        });
        let all = Steadiness::of(&record, t0, t0 + PERIOD * 100);
        assert_eq!((all.samples, all.slowed), (100, 1), "{all:?}");
        assert!(
            (all.slowest - 1.0).abs() < 1e-9,
            "a stall is not a slow sample: {all:?}"
        );
        assert_eq!(
            Steadiness::slowed_at(&record),
            [from],
            "from the stall's start"
        );
    }

    #[test]
    fn stretches_add_up_and_keep_the_slowest() {
        let a = Steadiness {
            samples: 10,
            slowed: 1,
            slowest: 0.4,
        };
        let b = Steadiness {
            samples: 30,
            slowed: 3,
            slowest: 0.2,
        };
        assert_eq!(
            a.and(b),
            Steadiness {
                samples: 40,
                slowed: 4,
                slowest: 0.2
            }
        );
    }

    #[test]
    fn the_probe_samples_each_cpu_it_was_given_until_stopped() {
        let cpus: Vec<usize> = (0..thread::available_parallelism().map_or(1, |n| n.get()))
            .take(2)
            .collect();
        let probe = SpeedProbe::start(&cpus).expect("the probe starts on CPUs this machine has");
        let from = Instant::now();
        thread::sleep(PERIOD * 8);
        probe.stop();
        let to = Instant::now();
        for &cpu in &cpus {
            let n = probe.samples(cpu).len();
            assert!(n >= 2, "cpu {cpu}: {n} samples in 8 periods");
            assert!(probe.samples(cpu).iter().all(|s| s.nanos > 0));
        }
        let after = probe.samples(cpus[0]).len();
        thread::sleep(PERIOD * 3);
        assert_eq!(probe.samples(cpus[0]).len(), after, "sampled after stop");
        let seen = probe.over(&[], from, to);
        assert!(seen.samples >= 2 * cpus.len() as u64 - 1, "{seen:?}");
        assert_eq!(probe.over(&[usize::MAX], from, to).samples, 0);
        assert!(probe.samples(usize::MAX).is_empty());
    }

    #[test]
    fn a_cpu_the_thread_cannot_be_pinned_to_is_refused_by_name() {
        let err = SpeedProbe::start(&[100_000]).expect_err("no machine has cpu 100000");
        assert!(err.to_string().contains("cpu 100000"), "{err}");
    }

    /// The policies of the threads of this process named `name` (tests run at once, so
    /// another test's probe may have the same name), from field 41 of their `stat`.
    fn policies_of_threads_named(name: &str) -> Vec<u32> {
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return Vec::new();
        };
        tasks
            .flatten()
            .filter_map(|task| {
                let comm = std::fs::read_to_string(task.path().join("comm")).ok()?;
                if comm.trim() != name {
                    return None;
                }
                let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
                let after_name = stat.rsplit_once(')')?.1;
                after_name.split_whitespace().nth(38)?.parse().ok()
            })
            .collect()
    }

    #[test]
    fn a_probe_beside_real_time_clients_samples_one_priority_above_them_or_says_why_it_cannot() {
        let beside_default = SpeedProbe::beside_clients(&[0], None).expect("cpu 0 exists");
        assert!(
            !beside_default.checks_stalls(),
            "a default-policy probe checks no stalls"
        );
        beside_default.stop();
        // Clients at 8: the probe at 9.
        match SpeedProbe::beside_clients(&[0], Some(8)) {
            Ok(probe) => {
                assert!(probe.checks_stalls());
                thread::sleep(PERIOD * 3);
                let policies = policies_of_threads_named("speed-probe-0");
                assert!(
                    policies.contains(&1),
                    "no probe thread under SCHED_FIFO: {policies:?}"
                );
                probe.stop();
                assert!(!probe.samples(0).is_empty());
            }
            Err(e) => {
                // A machine without the privilege: the refusal names the priority, and the
                // default policy is what such a thread has.
                let text = e.to_string();
                assert!(text.contains("SCHED_FIFO priority 9"), "{text}");
                assert!(text.contains("cpu 0"), "{text}");
            }
        }
    }
}
