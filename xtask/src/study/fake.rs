//! Stand-ins for servers in the studies' tests: tiny shell scripts run as `--external`
//! variants, so that what a study does with a server that cannot run is tested without one.

use std::path::Path;

use crate::catalogue::{self, Variant};

/// A stand-in for server-uring where io_uring is unavailable: it exits at start with status
/// 3 and a `skipped:` line, as the project's convention says.
pub(crate) fn skipping_server(dir: &Path) -> Variant {
    script_server(
        dir,
        "fake-uring",
        "echo 'probing the ring' >&2\necho 'skipped: io_uring unavailable: test' >&2\nexit 3\n",
    )
}

/// A server that dies at start for a reason of its own: a failure, not a skip.
pub(crate) fn crashing_server(dir: &Path) -> Variant {
    script_server(dir, "fake-crash", "echo 'bind: out of luck' >&2\nexit 1\n")
}

fn script_server(dir: &Path, name: &str, script: &str) -> Variant {
    std::fs::create_dir_all(dir).expect("a scratch directory");
    let path = dir.join(format!("{name}.sh"));
    std::fs::write(&path, script).expect("the script is written");
    catalogue::external(&format!("{name}=sh {} {{port}}", path.display()))
        .expect("a valid external spec")
}

/// A stand-in for a server and loadgen together, measuring the steps of a capacity search:
/// a server that meets the SLO up to `short` req/s over a step's window but only up to
/// `long` over a confirmation's, as one near saturation that passes a short window by luck
/// or falls behind slowly. Every other figure is the sample step's.
#[cfg(test)]
pub(crate) fn falling_behind(
    short: f64,
    long: f64,
    confirm_window: std::time::Duration,
) -> impl FnMut(
    crate::study::capacity::step::Load,
    bool,
    &str,
) -> Result<
    crate::study::capacity::step::Measurement,
    crate::study::capacity::step::StepError,
> {
    use crate::study::capacity::results::sample_step;
    move |load, confirmation, _name| {
        let rate = load.requests_per_second.unwrap_or(0.0);
        let mut step = sample_step(rate);
        step.connections = load.connections;
        if confirmation {
            step.window_seconds = confirm_window.as_secs_f64();
        }
        if rate > if confirmation { long } else { short } {
            step.latency.p99_ms = 300.0;
        }
        Ok(crate::study::capacity::step::Measurement {
            step,
            server_command: "fake-server --port {port}".to_owned(),
            faults: crate::results::Faults::default(),
            server_cpu_seconds: 0.0,
        })
    }
}
