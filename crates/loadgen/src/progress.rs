//! The progress bar on stderr, drawn by a small thread that samples the plan's counter, so
//! the workers pay one relaxed atomic add per request and nothing else.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::plan::Plan;

/// How often the bar is redrawn.
const TICK: Duration = Duration::from_millis(100);

/// A running progress bar; [`Progress::finish`] clears it.
#[derive(Debug)]
pub struct Progress {
    stop: mpsc::Sender<()>,
    drawer: thread::JoinHandle<()>,
}

impl Progress {
    /// Starts drawing progress of `plan`, out of `total` requests when the count is known.
    pub fn start(plan: Arc<Plan>, label: &'static str, total: Option<u64>) -> Progress {
        let bar = match total {
            Some(total) => ProgressBar::new(total).with_style(bar_style()),
            None => ProgressBar::new_spinner().with_style(spinner_style()),
        };
        bar.set_message(label);
        let (stop, stopped) = mpsc::channel::<()>();
        let drawer = thread::spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(TICK) {
                bar.set_position(plan.finished.load(Ordering::Relaxed));
            }
            bar.finish_and_clear();
        });
        Progress { stop, drawer }
    }

    /// Stops and clears the bar.
    pub fn finish(self) {
        drop(self.stop);
        let _ = self.drawer.join();
    }
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{msg} [{elapsed_precise}] {wide_bar} {pos}/{len} ({per_sec})")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
}

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{msg} [{elapsed_precise}] {spinner} {pos} requests ({per_sec})")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}
