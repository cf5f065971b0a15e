//! How steady this machine's CPUs are with nothing else running: the speed probe alone
//! (`server_process::SpeedProbe`) on the given CPUs for a while, and what it saw, per CPU and
//! for both at once.
//!
//! ```text
//! cargo run --release -p server-process --example steadiness -- --seconds 20 --cpus 0,1
//! ```
//!
//! It prints, per CPU, the share of samples below half the CPU's fastest and the slowest
//! one, and the episodes of consecutive slowed samples (how many, how long); then how often
//! the CPUs were slowed at the same moment. Run it on an idle machine: it is the measurement
//! behind the "Why" of `server_process::steadiness`. `--real-time PRIORITY` runs the probe
//! under `SCHED_FIFO` at that priority (`SpeedProbe::start_real_time`), to see what it reads
//! beside a real-time client.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use server_process::steadiness::{PERIOD, SLOW, Sample};
use server_process::{SpeedProbe, Steadiness};

fn main() -> anyhow::Result<()> {
    let (seconds, cpus, real_time) = parse(std::env::args().skip(1).collect())?;
    let probe = match real_time {
        Some(priority) => SpeedProbe::start_real_time(&cpus, priority),
        None => SpeedProbe::start(&cpus),
    }
    .context("the speed probe")?;
    let began = Instant::now();
    std::thread::sleep(Duration::from_secs(seconds));
    probe.stop();
    let ended = Instant::now();
    println!(
        "{seconds} s, one sample per CPU every {} ms, slowed below {:.0} % of the CPU's fastest",
        PERIOD.as_millis(),
        SLOW * 100.0
    );
    for &cpu in &cpus {
        let samples = probe.samples(cpu);
        let seen = Steadiness::of(&samples, began, ended);
        let (episodes, longest) = episodes(&samples);
        let stalls = samples.iter().filter(|s| s.stall.is_some()).count();
        println!(
            "cpu {cpu}: {} samples, {:.1} % slowed, slowest at {:.0} %, {stalls} after a \
             stall; {episodes} episodes, the longest {} ms",
            seen.samples,
            seen.slowed_fraction().unwrap_or(0.0) * 100.0,
            seen.slowest * 100.0,
            longest.as_millis()
        );
    }
    if cpus.len() > 1 {
        let slowed: Vec<Vec<Instant>> = cpus
            .iter()
            .map(|&cpu| Steadiness::slowed_at(&probe.samples(cpu)))
            .collect();
        let together = slowed[0]
            .iter()
            .filter(|&&at| {
                slowed[1..]
                    .iter()
                    .all(|other| other.iter().any(|&o| o.max(at) - o.min(at) <= PERIOD))
            })
            .count();
        println!(
            "of cpu {}'s {} slowed samples, {together} had every other CPU slowed within one \
             period",
            cpus[0],
            slowed[0].len()
        );
    }
    Ok(())
}

/// Runs of consecutive slowed samples: how many, and the longest (its samples × the period).
fn episodes(samples: &[Sample]) -> (usize, Duration) {
    let slowed = Steadiness::slowed_at(samples);
    let mut count = 0;
    let mut longest = 0;
    let mut run = 0;
    let mut last: Option<Instant> = None;
    for at in slowed {
        let consecutive = last.is_some_and(|l| at - l <= PERIOD + PERIOD / 2);
        run = if consecutive { run + 1 } else { 1 };
        if !consecutive {
            count += 1;
        }
        longest = longest.max(run);
        last = Some(at);
    }
    (count, PERIOD * longest)
}

const USAGE: &str = "usage: steadiness [--seconds N (1..600, default 20)] [--cpus 0,1 (default)] \
     [--real-time PRIORITY (1..99: the probe under SCHED_FIFO)]";

fn parse(args: Vec<String>) -> anyhow::Result<(u64, Vec<usize>, Option<i32>)> {
    let mut seconds = 20;
    let mut cpus = vec![0, 1];
    let mut real_time = None;
    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--seconds" => {
                seconds = value
                    .parse()
                    .with_context(|| format!("--seconds {value:?}"))?;
            }
            "--cpus" => {
                cpus = value
                    .split(',')
                    .map(|c| c.parse().with_context(|| format!("--cpus {value:?}")))
                    .collect::<anyhow::Result<_>>()?;
            }
            "--real-time" => match value.parse() {
                Ok(priority @ 1..=99) => real_time = Some(priority),
                _ => bail!("--real-time {value:?}: a SCHED_FIFO priority from 1 to 99"),
            },
            other => bail!("unknown option {other}\n{USAGE}"),
        }
    }
    if seconds == 0 || seconds > 600 {
        bail!("--seconds {seconds}: between 1 and 600");
    }
    if cpus.is_empty() {
        bail!("--cpus: at least one CPU");
    }
    Ok((seconds, cpus, real_time))
}
