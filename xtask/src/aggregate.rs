//! Turning the runs of one server at one iteration count into a table [`Row`].
//!
//! **A failed run is never averaged in.** A run whose loadgen counted any failed request, or
//! whose server did not start or did not exit cleanly, only adds to `runs_failed` and to the
//! reasons; every figure is the median (or the extreme, where noted) over the other runs.

use crate::results::{
    Faults, LoadFigures, Measured, Model, Row, RunKind, RunRecord, ScheduleLag, Spread,
};
use crate::run::server::shed_connections;

/// Who a row is about.
#[derive(Debug, Clone)]
pub struct RowKey<'a> {
    /// Variant name.
    pub server: &'a str,
    /// Its model.
    pub model: Model,
    /// Its command line (for the record).
    pub command: String,
    /// Connections per run.
    pub iterations: u64,
    /// Connections open at once.
    pub concurrent_connections: u64,
}

/// Builds the row for `key` from every record of that server and iteration count (warm-up,
/// measured and zero-delay runs alike; each is used for what it is).
pub fn row(key: RowKey<'_>, records: &[RunRecord]) -> Row {
    let of_kind = |kind| records.iter().filter(move |r| r.kind == kind);
    let measured: Vec<&RunRecord> = of_kind(RunKind::Measured).collect();
    let ok: Vec<&RunRecord> = measured
        .iter()
        .copied()
        .filter(|r| r.failure.is_none())
        .collect();
    let mut failure_reasons: Vec<String> = Vec::new();
    for reason in measured.iter().filter_map(|r| r.failure.as_deref()) {
        let first_line = reason.lines().next().unwrap_or(reason).to_owned();
        if !failure_reasons.contains(&first_line) {
            failure_reasons.push(first_line);
        }
    }
    let zero: Vec<f64> = of_kind(RunKind::ZeroDelay)
        .filter(|r| r.failure.is_none())
        .filter_map(|r| Some(r.load.as_ref()?.wall_seconds))
        .collect();
    Row {
        server: key.server.to_owned(),
        model: key.model,
        command: key.command,
        iterations: key.iterations,
        concurrent_connections: key.concurrent_connections,
        runs: measured.len() as u32,
        runs_failed: (measured.len() - ok.len()) as u32,
        failure_reasons,
        requests_failed: measured
            .iter()
            .filter_map(|r| Some(r.load.as_ref()?.requests_failed))
            .sum(),
        measured: measure(&ok),
        zero_delay_wall_seconds: Spread::of(&zero).map(|s| s.median),
        faults: Some(
            measured
                .iter()
                .map(|r| faults(r))
                .fold(Faults::default(), Faults::plus),
        ),
    }
}

/// What went wrong with one run's connections: loadgen's failures by kind, what the server's
/// summary line says it shed, and the listen overflows while it ran.
pub fn faults(record: &RunRecord) -> Faults {
    let client = record.load.as_ref().map_or_else(Faults::default, |l| {
        Faults::from_failures(&l.failures_by_kind)
    });
    let shed = record
        .exit
        .as_ref()
        .and_then(|e| e.last_stderr_line.as_deref())
        .and_then(shed_connections);
    Faults {
        shed,
        listen_overflows: record.listen_overflows,
        ..client
    }
}

/// The figures over successful runs; `None` when there are none (or they lack figures).
fn measure(ok: &[&RunRecord]) -> Option<Measured> {
    let pairs: Vec<_> = ok
        .iter()
        .filter_map(|r| Some((r.load.as_ref()?, r.process.as_ref()?, *r)))
        .collect();
    if pairs.is_empty() {
        return None;
    }
    let median = |f: &dyn Fn(usize) -> f64| {
        let values: Vec<f64> = (0..pairs.len()).map(f).collect();
        Spread::of(&values).map_or(0.0, |s| s.median)
    };
    let wall: Vec<f64> = pairs.iter().map(|(l, _, _)| l.wall_seconds).collect();
    Some(Measured {
        wall_seconds: Spread::of(&wall)?,
        throughput_rps: median(&|i| pairs[i].0.throughput_rps),
        latency_p50_ms: median(&|i| pairs[i].0.latency_p50_ms),
        latency_p99_ms: median(&|i| pairs[i].0.latency_p99_ms),
        latency_max_ms: pairs
            .iter()
            .map(|(l, _, _)| l.latency_max_ms)
            .fold(0.0, f64::max),
        all_connected_seconds: Spread::of(
            &pairs
                .iter()
                .filter_map(|(l, _, _)| l.all_connected_seconds)
                .collect::<Vec<_>>(),
        )
        .map(|s| s.median),
        peak_rss_bytes: median(&|i| pairs[i].1.peak_rss_bytes as f64),
        idle_rss_bytes: median(&|i| pairs[i].1.idle_rss_bytes as f64),
        peak_threads: pairs
            .iter()
            .map(|(_, p, _)| p.peak_threads)
            .max()
            .unwrap_or(0),
        cpu_seconds: median(&|i| pairs[i].1.user_cpu_seconds + pairs[i].1.system_cpu_seconds),
        client_cpu_seconds: Spread::of(
            &pairs
                .iter()
                .filter_map(|(_, _, r)| r.client_cpu_seconds)
                .collect::<Vec<_>>(),
        )
        .map(|s| s.median),
        client_schedule_lag: client_lag(&pairs.iter().map(|(l, _, _)| *l).collect::<Vec<_>>()),
        voluntary_ctx_switches: median(&|i| pairs[i].1.voluntary_ctx_switches as f64),
        involuntary_ctx_switches: median(&|i| pairs[i].1.involuntary_ctx_switches as f64),
        listen_overflows: pairs.iter().map(|(_, _, r)| r.listen_overflows).sum(),
        listen_drops: pairs.iter().map(|(_, _, r)| r.listen_drops).sum(),
    })
}

/// loadgen's lag over the runs that measured it: medians of p50 and p99, the largest max.
fn client_lag(loads: &[&LoadFigures]) -> Option<ScheduleLag> {
    let lags: Vec<ScheduleLag> = loads.iter().filter_map(|l| l.schedule_lag).collect();
    let median = |f: fn(&ScheduleLag) -> f64| {
        Spread::of(&lags.iter().map(f).collect::<Vec<_>>()).map(|s| s.median)
    };
    Some(ScheduleLag {
        p50_ms: median(|l| l.p50_ms)?,
        p99_ms: median(|l| l.p99_ms)?,
        max_ms: lags.iter().map(|l| l.max_ms).fold(0.0, f64::max),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::ProcessFigures;

    fn record(kind: RunKind, wall: f64, failure: Option<&str>) -> RunRecord {
        RunRecord {
            server: "mio".to_owned(),
            iterations: 100,
            kind,
            index: 1,
            server_command: String::new(),
            loadgen_command: String::new(),
            failure: failure.map(str::to_owned),
            skipped: None,
            load: Some(LoadFigures {
                wall_seconds: wall,
                requests_ok: 100,
                requests_failed: 0,
                failures_by_kind: Default::default(),
                throughput_rps: 100.0 / wall,
                latency_p50_ms: 100.0,
                latency_p99_ms: 101.0,
                latency_max_ms: wall * 1000.0,
                all_connected_seconds: Some(wall / 2.0),
                schedule_lag: None,
            }),
            process: Some(ProcessFigures {
                peak_rss_bytes: 1 << 20,
                idle_rss_bytes: 1 << 19,
                peak_threads: 1,
                user_cpu_seconds: 0.1,
                system_cpu_seconds: 0.1,
                voluntary_ctx_switches: 10,
                involuntary_ctx_switches: 1,
                samples: 3,
            }),
            client_cpu_seconds: Some(0.3),
            listen_overflows: 0,
            listen_drops: 0,
            exit: None,
            loadgen_report: None,
        }
    }

    fn key() -> RowKey<'static> {
        RowKey {
            server: "mio",
            model: Model::new("mio"),
            command: "server-mio".to_owned(),
            iterations: 100,
            concurrent_connections: 100,
        }
    }

    #[test]
    fn failed_runs_are_counted_but_never_averaged_in() {
        let records = [
            record(RunKind::Measured, 0.2, None),
            record(RunKind::Measured, 9.0, Some("3 of 100 requests failed")),
            record(RunKind::Measured, 0.4, None),
        ];
        let row = row(key(), &records);
        assert_eq!((row.runs, row.runs_failed), (3, 1));
        assert_eq!(
            row.failure_reasons,
            vec!["3 of 100 requests failed".to_owned()]
        );
        let wall = row.measured.expect("two runs succeeded").wall_seconds;
        assert!(
            (wall.median - 0.3).abs() < 1e-9,
            "median of 0.2 and 0.4: {}",
            wall.median
        );
        assert_eq!((wall.min, wall.max), (0.2, 0.4));
    }

    #[test]
    fn warmup_runs_do_not_count_and_zero_delay_runs_fill_their_own_column() {
        let records = [
            record(RunKind::Warmup, 5.0, None),
            record(RunKind::Measured, 0.2, None),
            record(RunKind::ZeroDelay, 0.05, None),
        ];
        let row = row(key(), &records);
        assert_eq!(row.runs, 1);
        assert_eq!(row.measured.expect("one run").wall_seconds.max, 0.2);
        assert_eq!(row.zero_delay_wall_seconds, Some(0.05));
    }

    #[test]
    fn faults_add_up_over_every_measured_run_failed_ones_included() {
        let mut failed = record(RunKind::Measured, 9.0, Some("2 of 100 requests failed"));
        let load = failed.load.as_mut().expect("figures");
        load.failures_by_kind = [("reset".to_owned(), 1), ("reply_timeout".to_owned(), 1)].into();
        failed.listen_overflows = 5;
        failed.exit = Some(crate::results::ExitRecord {
            code: Some(0),
            signal: None,
            clean: true,
            stop_seconds: 0.1,
            last_stderr_line: Some(
                "connections 100, requests 98, errors 0 (peak open 100, connection errors 0, \
                 accept errors 0, accept back-offs 0, shed 2)"
                    .to_owned(),
            ),
        });
        let mut warmup = record(RunKind::Warmup, 1.0, None);
        warmup.listen_overflows = 100;
        let records = [record(RunKind::Measured, 0.2, None), failed, warmup];
        let faults = row(key(), &records).faults.expect("recorded");
        assert_eq!(
            faults,
            Faults {
                connections_refused: 0,
                connections_reset: 1,
                timed_out: 1,
                shed: Some(2),
                listen_overflows: 5,
            }
        );
    }

    #[test]
    fn a_row_whose_every_run_failed_has_no_figures() {
        let records = [record(RunKind::Measured, 1.0, Some("server crashed"))];
        let row = row(key(), &records);
        assert_eq!(row.runs_failed, 1);
        assert!(row.measured.is_none());
    }
}
