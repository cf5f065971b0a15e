//! The markdown report of one comparison and the `LATEST.md` index: the document and its
//! tables, rendered from a [`Summary`] and nothing else.
//!
//! **Reports are a pure function of their JSON.** Nothing here reads the clock, the machine
//! or the file system, and every number is formatted with a fixed precision, so rendering the
//! same `summary.json` twice gives the same bytes; a test checks every committed report that
//! way. The prose comes from [`verdict`], the checks from [`targets`], the derived numbers
//! from [`figures`].

use std::fmt::Write as _;

use crate::export::figures::{
    self, delay_floor_seconds, fastest_wall, full_floor_seconds, reference_name, reference_row,
    rows_at, rss_per_conn_kib, server_names,
};
use crate::export::format::{GIB, MIB, dash, escape, num, ratio, secs, short_commit, yes_no};
use crate::export::{CHART_FILE, targets, verdict};
use crate::results::{Environment, Faults, Row, Summary};

/// The whole `README.md` of one comparison.
pub fn readme(summary: &Summary) -> String {
    let mut out = String::new();
    header(&mut out, summary);
    parameters(&mut out, summary);
    servers(&mut out, summary);
    out.push_str(&headline(summary));
    floor_section(&mut out, summary);
    targets_section(&mut out, summary);
    if summary.params.iterations.len() > 1 {
        sweep(&mut out, summary);
    }
    problems(&mut out, summary);
    let faults = summary.rows.iter().filter_map(|r| {
        let name = format!("{} at {}", r.server, r.iterations);
        Some((name, r.faults.as_ref()?))
    });
    faults_section(
        &mut out,
        "over its measured runs, failed ones included",
        faults,
    );
    out.push_str(&verdict::how_to_read(summary));
    out
}

/// The faults of the rows that had any, as a table under `## Faults`; nothing at all when
/// every row's are zero or unrecorded (summaries older than the figures), so that old reports
/// render as they did. `over` says what each row's figures cover.
pub fn faults_section<'a>(
    out: &mut String,
    over: &str,
    rows: impl Iterator<Item = (String, &'a Faults)>,
) {
    let rows: Vec<(String, &Faults)> = rows.filter(|(_, f)| !f.is_zero()).collect();
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "## Faults\n\nRows where a connection went wrong, {over}: refused, reset and timed out \
         (connect or reply) as loadgen saw them, shed (`ERR server busy`) as the server's own \
         summary line counts them (`-` where it prints none), and the kernel's listen \
         overflows while it ran (`/proc/net/netstat`, machine-wide: anything else overflowing \
         a listen queue meanwhile is counted too).\n"
    );
    out.push_str("| server | refused | reset | timed out | shed | listen overflows |\n");
    out.push_str("|---|---|---|---|---|---|\n");
    for (name, f) in rows {
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {} | {} | {} |",
            f.connections_refused,
            f.connections_reset,
            f.timed_out,
            f.shed.map_or_else(dash, |n| n.to_string()),
            f.listen_overflows
        );
    }
    out.push('\n');
}

/// The results table per iteration count and the verdict: what `compare` prints at the end.
pub fn headline(summary: &Summary) -> String {
    let mut out = String::new();
    for &n in &summary.params.iterations {
        results_table(&mut out, summary, n);
    }
    out.push_str("## Verdict\n\n");
    for &n in &summary.params.iterations {
        out.push_str(&verdict::verdict(summary, n));
        out.push_str("\n\n");
    }
    out
}

fn header(out: &mut String, summary: &Summary) {
    let _ = writeln!(out, "# Comparison `{}`\n", summary.label);
    out.push_str(
        "Rendered from `summary.json` by `cargo xtask report`; do not edit by hand. \
         Raw records of every run are under `runs/`.\n\n",
    );
    environment(out, &summary.env);
}

/// The machine and code table, and the limits that shape every run, of any study.
pub fn environment(out: &mut String, env: &Environment) {
    out.push_str("| CPU | cores | memory | kernel | rustc | python | git commit | date (UTC) |\n");
    out.push_str("|---|---|---|---|---|---|---|---|\n");
    let _ = writeln!(
        out,
        "| {} | {} | {:.1} GiB | {} | {} | {} | `{}` | {} |\n",
        env.cpu_model,
        env.cores,
        env.memory_bytes as f64 / GIB,
        env.kernel,
        env.rustc,
        env.python.as_deref().unwrap_or("not found"),
        short_commit(&env.git_commit),
        env.date_utc
    );
    let somaxconn = env
        .somaxconn
        .map_or_else(|| "unknown".to_owned(), |v| v.to_string());
    let _ = writeln!(
        out,
        "Open-file limit {}, `net.core.somaxconn` {somaxconn}.\n",
        env.open_files_limit
    );
}

fn parameters(out: &mut String, summary: &Summary) {
    let p = &summary.params;
    out.push_str("## Parameters\n\n");
    out.push_str(
        "| iterations | delay | delay kind | concurrency | requests/conn | measured runs | warm-up | zero-delay runs | backlog | pool size | loadgen timeout |\n",
    );
    out.push_str("|---|---|---|---|---|---|---|---|---|---|---|\n");
    let iterations: Vec<String> = p.iterations.iter().map(u64::to_string).collect();
    let _ = writeln!(
        out,
        "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} ms |\n",
        iterations.join(", "),
        p.delay,
        p.delay_kind,
        p.concurrency
            .map_or_else(|| "all".to_owned(), |c| c.to_string()),
        p.requests_per_conn,
        p.repeat,
        yes_no(p.warmup),
        yes_no(p.zero_delay),
        p.backlog,
        p.pool_size,
        p.timeout_ms
    );
    let _ = writeln!(out, "Command: `{}`\n", p.command);
    let _ = writeln!(out, "{}", verdict::backlog(summary));
}

fn servers(out: &mut String, summary: &Summary) {
    out.push_str(
        "## Servers\n\n| server | model | command (a fresh process per run) |\n|---|---|---|\n",
    );
    for name in server_names(summary) {
        let Some(row) = summary.rows.iter().find(|r| r.server == name) else {
            continue;
        };
        let command = if row.command.is_empty() {
            "never started"
        } else {
            &row.command
        };
        let _ = writeln!(out, "| {name} | {} | `{}` |", row.model, escape(command));
    }
    out.push('\n');
}

const HEADER: &str = "| server | model | wall s, median (min–max) | × fastest | × delay floor | req/s | p50 ms | p99 ms | max ms | failed runs | failed requests | peak RSS MiB | RSS/conn KiB | peak threads | CPU s | ctx switches vol / invol | listen overflows |\n\
                      |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";

fn results_table(out: &mut String, summary: &Summary, n: u64) {
    let rows = rows_at(summary, n);
    let concurrent = rows.first().map_or(n, |r| r.concurrent_connections);
    let _ = writeln!(
        out,
        "## Results at {n} connections ({concurrent} at once, delay floor {} s)\n",
        secs(delay_floor_seconds(&summary.params, n, concurrent))
    );
    out.push_str(HEADER);
    let fastest = fastest_wall(&rows);
    for row in &rows {
        out.push_str(&result_line(summary, row, fastest));
    }
    for skipped in &summary.skipped {
        let _ = writeln!(out, "| {} | skipped: {} |", skipped.server, skipped.reason);
    }
    out.push('\n');
    out.push_str(&client_lag_line(&rows));
}

/// loadgen's own schedule lag per row, where it was measured (open loop, issue 15); nothing
/// when no row has it, as in the closed-loop comparisons.
fn client_lag_line(rows: &[&Row]) -> String {
    let lags: Vec<String> = rows
        .iter()
        .filter_map(|r| Some((r, r.measured.as_ref()?.client_schedule_lag?)))
        .map(|(r, lag)| {
            format!(
                "{} {} / {} / {}",
                r.server,
                num(lag.p50_ms),
                num(lag.p99_ms),
                num(lag.max_ms)
            )
        })
        .collect();
    if lags.is_empty() {
        return String::new();
    }
    format!(
        "loadgen's own schedule lag, p50 / p99 / max ms (how late the client sent requests \
         against its schedule): {}.\n\n",
        lags.join("; ")
    )
}

fn result_line(summary: &Summary, row: &Row, fastest: Option<f64>) -> String {
    let runs = format!("{}/{}", row.runs_failed, row.runs);
    let Some(m) = &row.measured else {
        let why = row.failure_reasons.join("; ");
        return format!(
            "| {} | {} | all runs failed: {} | | | | | | | {runs} | {} |\n",
            row.server,
            row.model,
            escape(&why),
            row.requests_failed
        );
    };
    let wall = m.wall_seconds;
    let floor = delay_floor_seconds(&summary.params, row.iterations, row.concurrent_connections);
    format!(
        "| {} | {} | {} ({}–{}) | {} | {} | {:.0} | {} | {} | {} | {runs} | {} | {} | {} | {} | {} | {:.0} / {:.0} | {} |\n",
        row.server,
        row.model,
        secs(wall.median),
        secs(wall.min),
        secs(wall.max),
        fastest.map_or_else(dash, |f| ratio(wall.median / f)),
        if floor > 0.0 {
            ratio(wall.median / floor)
        } else {
            dash()
        },
        m.throughput_rps,
        num(m.latency_p50_ms),
        num(m.latency_p99_ms),
        num(m.latency_max_ms),
        row.requests_failed,
        num(m.peak_rss_bytes / MIB),
        rss_per_conn_kib(row).map_or_else(dash, num),
        m.peak_threads,
        num(m.cpu_seconds),
        m.voluntary_ctx_switches,
        m.involuntary_ctx_switches,
        m.listen_overflows
    )
}

fn floor_section(out: &mut String, summary: &Summary) {
    if !summary.params.zero_delay {
        return;
    }
    out.push_str("## Against the floor\n\n");
    out.push_str(&verdict::floor(summary));
    let _ = writeln!(
        out,
        "| server | connections | wall s | all connected after s | server CPU s | loadgen CPU s | cores busy | delay floor s | zero-delay s | floor s | wall / floor | × faster than {} |",
        reference_name(summary)
    );
    out.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for &n in &summary.params.iterations {
        let rows = rows_at(summary, n);
        let reference = reference_row(&rows).and_then(figures::wall);
        for row in &rows {
            out.push_str(&floor_line(summary, row, reference));
        }
    }
    out.push('\n');
}

fn floor_line(summary: &Summary, row: &Row, reference: Option<f64>) -> String {
    let delay = delay_floor_seconds(&summary.params, row.iterations, row.concurrent_connections);
    let wall = row.measured.as_ref().map(|m| m.wall_seconds.median);
    let floor = full_floor_seconds(summary, row);
    let connected = row.measured.as_ref().and_then(|m| m.all_connected_seconds);
    let cpu = row.measured.as_ref().map(|m| m.cpu_seconds);
    let client = row.measured.as_ref().and_then(|m| m.client_cpu_seconds);
    let busy = wall.zip(cpu).zip(client).map(|((w, s), c)| (s + c) / w);
    format!(
        "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
        row.server,
        row.iterations,
        wall.map_or_else(dash, secs),
        connected.map_or_else(dash, secs),
        cpu.map_or_else(dash, secs),
        client.map_or_else(dash, secs),
        busy.map_or_else(dash, |b| format!("{b:.2} of {}", summary.env.cores)),
        secs(delay),
        row.zero_delay_wall_seconds.map_or_else(dash, secs),
        floor.map_or_else(dash, secs),
        wall.zip(floor).map_or_else(dash, |(w, f)| ratio(w / f)),
        wall.zip(reference).map_or_else(dash, |(w, r)| ratio(r / w)),
    )
}

fn targets_section(out: &mut String, summary: &Summary) {
    out.push_str("## Targets\n\n");
    let _ = writeln!(out, "{}", verdict::targets(summary));
    let checks = targets::checks(summary);
    if checks.is_empty() {
        out.push_str("No Rust rows to check.\n\n");
        return;
    }
    check_list(out, &checks);
}

/// The checks as a list, each marked met or **MISSED**, and the tally: any study's targets.
pub fn check_list(out: &mut String, checks: &[targets::Check]) {
    for check in checks {
        let mark = if check.met { "met" } else { "**MISSED**" };
        let _ = writeln!(out, "- {mark}: {}", check.text);
    }
    let missed = checks.iter().filter(|c| !c.met).count();
    let _ = writeln!(
        out,
        "\n{} of {} checks met; {missed} missed.\n",
        checks.len() - missed,
        checks.len()
    );
}

/// One cell of a sweep table: a row's figure, formatted, or `None` when it has none.
type Metric = fn(&Summary, &Row) -> Option<String>;

fn sweep(out: &mut String, summary: &Summary) {
    out.push_str("## Sweep\n\n");
    let _ = writeln!(
        out,
        "![wall time and peak memory against iterations]({CHART_FILE})\n"
    );
    let metrics: [(&str, Metric); 9] = [
        ("wall time, median s", |_, r| Some(secs(figures::wall(r)?))),
        ("× delay floor", |s, r| {
            let floor = delay_floor_seconds(&s.params, r.iterations, r.concurrent_connections);
            (floor > 0.0)
                .then(|| Some(ratio(figures::wall(r)? / floor)))
                .flatten()
        }),
        ("req/s", |_, r| {
            Some(format!("{:.0}", r.measured.as_ref()?.throughput_rps))
        }),
        ("p99 latency ms", |_, r| {
            Some(num(r.measured.as_ref()?.latency_p99_ms))
        }),
        ("failed requests", |_, r| {
            Some(r.requests_failed.to_string())
        }),
        ("peak RSS MiB", |_, r| {
            Some(num(r.measured.as_ref()?.peak_rss_bytes / MIB))
        }),
        ("RSS per concurrent connection KiB", |_, r| {
            rss_per_conn_kib(r).map(num)
        }),
        ("peak threads", |_, r| {
            Some(r.measured.as_ref()?.peak_threads.to_string())
        }),
        ("CPU s", |_, r| Some(num(r.measured.as_ref()?.cpu_seconds))),
    ];
    for (title, metric) in metrics {
        sweep_table(out, summary, title, metric);
    }
}

fn sweep_table(
    out: &mut String,
    summary: &Summary,
    title: &str,
    metric: fn(&Summary, &Row) -> Option<String>,
) {
    let _ = writeln!(out, "### {title}\n");
    let counts = &summary.params.iterations;
    let columns: Vec<String> = counts.iter().map(|n| n.to_string()).collect();
    let _ = writeln!(out, "| server | {} |", columns.join(" | "));
    let _ = writeln!(out, "|---|{}", "---|".repeat(counts.len()));
    for server in server_names(summary) {
        let cells: Vec<String> = counts
            .iter()
            .map(|&n| {
                summary
                    .rows
                    .iter()
                    .find(|r| r.server == server && r.iterations == n)
                    .and_then(|r| metric(summary, r))
                    .unwrap_or_else(|| "failed".to_owned())
            })
            .collect();
        let _ = writeln!(out, "| {server} | {} |", cells.join(" | "));
    }
    out.push('\n');
}

fn problems(out: &mut String, summary: &Summary) {
    let failed: Vec<&Row> = summary.rows.iter().filter(|r| r.runs_failed > 0).collect();
    if failed.is_empty() && summary.skipped.is_empty() {
        return;
    }
    out.push_str("## Failed and skipped\n\n");
    for row in failed {
        let _ = writeln!(
            out,
            "- {} at {}: {} of {} runs failed: {}",
            row.server,
            row.iterations,
            row.runs_failed,
            row.runs,
            escape(&row.failure_reasons.join("; "))
        );
    }
    for skipped in &summary.skipped {
        let _ = writeln!(out, "- {} skipped: {}", skipped.server, skipped.reason);
    }
    out.push('\n');
}

/// The `LATEST.md` index of every comparison, newest first: `(directory name, summary)`.
pub fn latest(entries: &[(String, Summary)]) -> String {
    let mut out = String::from(
        "# Latest comparison\n\nGenerated by `cargo xtask compare` / `cargo xtask report` \
         from each directory's `summary.json`; do not edit by hand.\n\n",
    );
    let Some((dir, newest)) = entries.first() else {
        out.push_str("No comparison has been run yet: `cargo xtask compare --iterations 10000`.\n");
        return out;
    };
    let _ = writeln!(
        out,
        "The newest is [{dir}]({dir}/README.md), from {}:\n",
        newest.env.date_utc
    );
    for &n in &newest.params.iterations {
        let _ = writeln!(out, "> {}\n", verdict::verdict(newest, n));
    }
    out.push_str("## All comparisons\n\n| directory | date (UTC) | iterations | delay | commit |\n|---|---|---|---|---|\n");
    for (dir, s) in entries {
        let counts: Vec<String> = s.params.iterations.iter().map(u64::to_string).collect();
        let _ = writeln!(
            out,
            "| [{dir}]({dir}/README.md) | {} | {} | {} | `{}` |",
            s.env.date_utc,
            counts.join(", "),
            s.params.delay,
            short_commit(&s.env.git_commit)
        );
    }
    out
}
