//! Runs of the client against the in-process test server: counts, failure kinds, modes.

mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use echo_core::Framing;
use loadgen::{Config, Error, FailureKind, Report};
use support::{Behaviour, TestServer, full_backlog_listener, refusing_addr};

fn config_for(server: &TestServer) -> Config {
    let mut config = Config::new(server.addr);
    config.n_connections = 20;
    config.timeout = Duration::from_secs(20);
    config
}

fn run(config: &Config) -> Report {
    loadgen::run(config).expect("the run can be made")
}

/// The attempted requests are exactly accounted for, and the histograms agree with counts.
fn assert_counts_add_up(report: &Report, config: &Config) {
    let planned = config.n_connections * config.requests_per_conn;
    let accounted = report.requests_ok + report.requests_failed + report.requests_not_sent;
    assert_eq!(accounted, planned, "{report:#?}");
    assert_eq!(report.requests_failed, report.failures.total());
    assert_eq!(report.latency.count, report.requests_ok);
    assert_eq!(report.connect_time.count, report.connections_established);
}

fn assert_every_request_ok_with_threads(n_threads: usize) {
    let server = TestServer::start(Behaviour::Echo);
    let mut config = config_for(&server);
    config.n_connections = 40;
    config.concurrency = Some(7);
    config.requests_per_conn = 3;
    config.n_threads = n_threads;
    let report = run(&config);
    assert_eq!(report.requests_ok, 120);
    assert_eq!(report.requests_failed, 0);
    assert_eq!(report.connections_established, 40);
    assert_eq!(report.parameters.concurrency, 7);
    assert!(report.all_connected_seconds.is_some());
    assert!(report.throughput_requests_per_second > 0.0);
    assert_counts_add_up(&report, &config);
}

#[test]
fn counts_add_up_when_every_request_succeeds_on_one_client_thread() {
    assert_every_request_ok_with_threads(1);
}

#[test]
fn counts_add_up_when_every_request_succeeds_on_three_client_threads() {
    assert_every_request_ok_with_threads(3);
}

#[test]
fn all_connections_open_at_once_by_default_as_in_the_article() {
    let server = TestServer::start(Behaviour::Echo);
    let mut config = config_for(&server);
    config.n_connections = 200;
    let report = run(&config);
    assert_eq!(report.parameters.concurrency, 200);
    assert_eq!(report.requests_ok, 200);
}

/// Runs 5 connections of 3 requests against a misbehaving server and checks that every
/// connection failed once, of `kind`, cancelling its 2 remaining requests.
fn assert_classified(behaviour: Behaviour, kind: FailureKind, timeout: Duration) {
    let server = TestServer::start(behaviour);
    let mut config = config_for(&server);
    config.n_connections = 5;
    config.requests_per_conn = 3;
    config.timeout = timeout;
    let report = run(&config);
    assert_eq!(
        report.failures.get(kind),
        5,
        "{kind:?}: {:#?}",
        report.failures
    );
    assert_eq!(report.requests_failed, 5);
    assert_eq!(report.requests_ok, 0);
    assert_eq!(report.requests_not_sent, 10);
    assert_counts_add_up(&report, &config);
}

#[test]
fn a_wrong_reply_is_classified_as_wrong_reply() {
    let timeout = Duration::from_secs(20);
    assert_classified(Behaviour::WrongReply, FailureKind::WrongReply, timeout);
}

#[test]
fn a_reset_is_classified_as_reset() {
    assert_classified(
        Behaviour::Reset,
        FailureKind::Reset,
        Duration::from_secs(20),
    );
}

#[test]
fn an_early_close_is_classified_as_early_eof() {
    let timeout = Duration::from_secs(20);
    assert_classified(Behaviour::EarlyClose, FailureKind::EarlyEof, timeout);
}

#[test]
fn a_missing_reply_is_classified_as_reply_timeout() {
    let timeout = Duration::from_millis(300);
    assert_classified(Behaviour::NeverReply, FailureKind::ReplyTimeout, timeout);
}

#[test]
fn a_refused_connection_is_classified_as_connection_refused() {
    let mut config = Config::new(refusing_addr());
    config.n_connections = 4;
    config.requests_per_conn = 2;
    let report = run(&config);
    assert_eq!(report.failures.connection_refused, 4);
    assert_eq!(report.connections_established, 0);
    assert_eq!(report.all_connected_seconds, None);
    assert_counts_add_up(&report, &config);
}

#[test]
fn a_connect_to_a_full_accept_queue_is_classified_as_connect_timeout() {
    let listener = full_backlog_listener();
    let mut config = Config::new(listener.local_addr().expect("address"));
    config.n_connections = 6;
    config.concurrency = Some(1); // one connect at a time, so the queue fills in order
    config.timeout = Duration::from_millis(300);
    let report = run(&config);
    // Connections that made it into the queue are never served: their replies time out.
    assert!(
        report.failures.connect_timeout >= 1,
        "{:#?}",
        report.failures
    );
    let timeouts = report.failures.connect_timeout + report.failures.reply_timeout;
    assert_eq!(timeouts, 6, "{:#?}", report.failures);
}

#[test]
fn raw_framing_reads_the_reply_until_the_server_closes() {
    let server = TestServer::start(Behaviour::RawEcho);
    let mut config = config_for(&server);
    config.framing = Framing::Raw;
    config.message = "grüße, straße".to_owned();
    let report = run(&config);
    assert_eq!(report.requests_ok, 20, "{:#?}", report.failures);
}

#[test]
fn raw_framing_expects_full_unicode_upper_casing() {
    let server = TestServer::start(Behaviour::RawEcho);
    let mut config = config_for(&server);
    config.framing = Framing::Raw;
    let expected = config.expected_reply();
    assert_eq!(expected, b"THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG");
    config.message = "ǆ".to_owned(); // upper-cases to "Ǆ", a different character
    let report = run(&config);
    assert_eq!(report.requests_ok, 20);
}

#[test]
fn raw_framing_classifies_a_wrong_reply_and_a_close_without_reply() {
    for (behaviour, kind) in [
        (Behaviour::RawUnchanged, FailureKind::WrongReply),
        (Behaviour::RawClose, FailureKind::EarlyEof),
    ] {
        let server = TestServer::start(behaviour);
        let mut config = config_for(&server);
        config.framing = Framing::Raw;
        let report = run(&config);
        assert_eq!(
            report.failures.get(kind),
            20,
            "{kind:?}: {:#?}",
            report.failures
        );
        assert_counts_add_up(&report, &config);
    }
}

#[test]
fn client_sockets_are_spread_over_loopback_source_addresses() {
    let server = TestServer::start(Behaviour::Echo);
    let mut config = config_for(&server);
    config.n_connections = 12;
    config.source_addresses = Some(4);
    let report = run(&config);
    assert_eq!(report.requests_ok, 12);
    let expected = (1..=4).map(|last| IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)));
    assert_eq!(server.peer_ips(), expected.collect());
}

#[test]
fn open_loop_mode_counts_late_starts_and_measures_from_the_schedule() {
    let delay = Duration::from_millis(20);
    let server = TestServer::start(Behaviour::DelayedEcho(delay));
    let mut config = config_for(&server);
    config.n_connections = 1;
    config.requests_per_conn = 10;
    config.rate = Some(1000.0); // one due every 1 ms, but each takes at least 20 ms
    let report = run(&config);
    assert_eq!(report.requests_ok, 10);
    assert!(report.requests_started_late >= 9, "{report:#?}");
    // The tenth request was due at 9 ms and cannot finish before 10 × 20 ms.
    assert!(report.latency.max_us >= 190_000.0, "{:#?}", report.latency);
}

#[test]
fn open_loop_tells_the_wait_for_a_busy_connection_from_the_clients_own_lag() {
    let delay = Duration::from_millis(20);
    let server = TestServer::start(Behaviour::DelayedEcho(delay));
    let mut config = config_for(&server);
    config.n_connections = 1;
    config.requests_per_conn = 10;
    config.rate = Some(1000.0); // one due every 1 ms on one connection busy for 20 ms each
    config.max_schedule_lag = Duration::from_millis(100);
    let report = run(&config);
    assert_eq!(report.requests_ok, 10);
    assert!(report.requests_waited_for_connection >= 9, "{report:#?}");
    assert_eq!(report.client_lag.count, 10);
    // The tenth request, due at 9 ms, could not be sent before 9 replies of 20 ms each.
    assert!(report.schedule_lag.max_us >= 171_000.0, "{report:#?}");
    assert!(
        report.client_lag.max_us < report.schedule_lag.max_us,
        "the wait for the connection is not the client's lag: {report:#?}"
    );
    assert!(
        !report.client_bound,
        "the server kept the connection busy: {report:#?}"
    );
}

/// An open-loop run of 20 requests at 200/s over 10 connections, each answered after 20 ms.
fn open_loop_config(server: &TestServer, n_threads: usize) -> Config {
    let mut config = config_for(server);
    config.n_connections = 10;
    config.requests_per_conn = 2;
    config.rate = Some(200.0);
    config.n_threads = n_threads;
    config
}

fn assert_both_clocks_measured(n_threads: usize) {
    let delay = Duration::from_millis(20);
    let server = TestServer::start(Behaviour::DelayedEcho(delay));
    let config = open_loop_config(&server, n_threads);
    let report = run(&config);
    assert_eq!(report.requests_ok, 20, "{:#?}", report.failures);
    assert_counts_add_up(&report, &config);
    assert_eq!(report.schedule_lag.count, 20);
    assert_eq!(report.client_lag.count, 20);
    assert_eq!(report.latency_from_send.count, 20);
    // Replies end at their arrival as the kernel stamped it, their read lag measured. The
    // kernel may switch its stamping on a moment after loadgen asks (from a work queue), so
    // the first replies of a machine with no other stamping socket may go unstamped.
    assert!(report.replies_timed_by_kernel >= 10, "{report:#?}");
    assert_eq!(report.read_lag.count, report.replies_timed_by_kernel);
    // Not before the delay, on either clock; the due time is never after the send.
    assert!(report.latency_from_send.min_us >= 20_000.0, "{report:#?}");
    assert!(report.latency.min_us >= report.latency_from_send.min_us);
    assert!(report.latency.max_us >= report.latency_from_send.max_us);
}

#[test]
fn open_loop_measures_latency_from_the_due_time_and_from_the_send_on_one_thread() {
    assert_both_clocks_measured(1);
}

#[test]
fn open_loop_measures_latency_from_the_due_time_and_from_the_send_on_two_threads() {
    assert_both_clocks_measured(2);
}

#[test]
fn open_loop_marks_a_run_client_bound_when_its_lag_p99_is_over_max_lag() {
    let server = TestServer::start(Behaviour::Echo);
    let mut config = open_loop_config(&server, 1);
    config.max_schedule_lag = Duration::ZERO;
    let report = run(&config);
    assert!(report.client_bound, "any lag is over zero: {report:#?}");
    assert_eq!(report.parameters.max_schedule_lag_us, 0.0);
    config.max_schedule_lag = Duration::from_secs(600);
    assert!(!run(&config).client_bound);
}

#[test]
fn open_loop_against_a_refused_address_accounts_for_every_request_and_ends() {
    let mut config = Config::new(refusing_addr());
    config.n_connections = 6;
    config.concurrency = Some(3);
    config.requests_per_conn = 2;
    config.rate = Some(1000.0);
    let report = run(&config);
    assert_eq!(report.failures.connection_refused, 6);
    assert_eq!(report.schedule_lag.count, 0);
    assert_counts_add_up(&report, &config);
}

#[test]
fn open_loop_for_a_duration_sends_no_request_due_after_it() {
    let server = TestServer::start(Behaviour::Echo);
    let mut config = open_loop_config(&server, 1);
    config.requests_per_conn = 1_000_000;
    config.duration = Some(Duration::from_millis(100));
    let report = run(&config);
    // Due at 0, 5, ..., 95 ms: exactly 20, whatever the machine's speed.
    assert_eq!(report.requests_ok, 20, "{report:#?}");
}

#[test]
fn closed_loop_mode_never_counts_late_starts() {
    let server = TestServer::start(Behaviour::DelayedEcho(Duration::from_millis(5)));
    let mut config = config_for(&server);
    config.n_connections = 2;
    config.requests_per_conn = 3;
    let report = run(&config);
    assert_eq!(report.requests_ok, 6);
    assert_eq!(report.requests_started_late, 0);
}

#[test]
fn a_duration_run_lasts_at_least_its_duration_and_stops() {
    let server = TestServer::start(Behaviour::Echo);
    let mut config = config_for(&server);
    config.concurrency = Some(2);
    config.requests_per_conn = 1_000_000;
    config.duration = Some(Duration::from_millis(300));
    let report = run(&config);
    assert!(report.requests_ok > 0);
    assert_eq!(report.requests_failed, 0);
    assert!(
        report.wall_time_seconds >= 0.3,
        "{}",
        report.wall_time_seconds
    );
}

#[test]
fn warmup_requests_are_not_counted() {
    let server = TestServer::start(Behaviour::Echo);
    let mut config = config_for(&server);
    config.n_connections = 5;
    config.warmup = Duration::from_millis(100);
    let report = run(&config);
    assert_eq!(report.requests_ok, 5);
    assert_eq!(report.parameters.warmup_seconds, 0.1);
}

#[test]
fn a_timed_open_loop_warms_up_on_the_connections_it_measures_and_measures_only_after() {
    let server = TestServer::start(Behaviour::Echo);
    let mut config = open_loop_config(&server, 2);
    config.n_connections = 5;
    config.requests_per_conn = 1_000_000;
    config.warmup = Duration::from_millis(100);
    config.duration = Some(Duration::from_millis(100));
    let report = run(&config);
    // Due at 100, 105, ..., 195 ms of a schedule that began at 0 on the same connections.
    assert_eq!(report.requests_ok, 20, "{report:#?}");
    assert_eq!(report.connections_established, 5);
    assert_eq!(
        server.accepted(),
        5,
        "the warm-up opened connections of its own"
    );
    assert_eq!(report.parameters.warmup_seconds, 0.1);
}

#[test]
fn a_timed_closed_loop_warms_up_on_the_connections_it_measures() {
    let server = TestServer::start(Behaviour::Echo);
    let mut config = config_for(&server);
    config.concurrency = Some(3);
    config.requests_per_conn = 1_000_000;
    config.warmup = Duration::from_millis(100);
    config.duration = Some(Duration::from_millis(100));
    let report = run(&config);
    assert!(report.requests_ok > 0, "{report:#?}");
    assert_eq!(report.requests_failed, 0);
    assert_eq!(
        server.accepted(),
        3,
        "the warm-up opened connections of its own"
    );
}

#[test]
fn what_fails_in_the_warmup_is_not_counted_against_the_measured_requests() {
    // The server ignores every request but a connection's first for 100 ms, so each request
    // due then times out (after 200 ms) and its connection is replaced, all within the 600 ms
    // warm-up; from then on every request is answered.
    let server = TestServer::start(Behaviour::SilentAtFirst(Duration::from_millis(100)));
    let mut config = config_for(&server);
    config.n_connections = 4;
    config.requests_per_conn = 1_000_000;
    config.rate = Some(100.0);
    config.timeout = Duration::from_millis(200);
    config.warmup = Duration::from_millis(600);
    config.duration = Some(Duration::from_millis(100));
    let report = run(&config);
    assert_eq!(report.failures.total(), 0, "{:#?}", report.failures);
    assert_eq!(report.requests_not_sent, 0, "{report:#?}");
    // Due at 600, 610, ..., 690 ms.
    assert_eq!(report.requests_ok, 10, "{report:#?}");
    assert!(
        server.accepted() > 4,
        "the warm-up's timeouts replaced connections"
    );
}

#[test]
fn a_concurrency_beyond_the_open_file_limit_is_refused_before_connecting() {
    let server = TestServer::start(Behaviour::Echo);
    let mut config = config_for(&server);
    config.n_connections = 10_000_000;
    let error = loadgen::run(&config).expect_err("ten million sockets cannot fit");
    assert!(matches!(error, Error::TooManyConnections { .. }), "{error}");
    assert!(error.to_string().contains("connections fit"), "{error}");
    assert!(server.peer_ips().is_empty(), "nothing was opened");
}

#[test]
fn invalid_configurations_are_refused() {
    let mut config = Config::new(refusing_addr());
    config.message = "two\nlines".to_owned();
    assert!(matches!(
        loadgen::run(&config),
        Err(Error::NewlineInMessage { .. })
    ));
    config.message = "one line".to_owned();
    config.framing = Framing::Raw;
    config.requests_per_conn = 2;
    assert!(matches!(
        loadgen::run(&config),
        Err(Error::RawManyRequests { .. })
    ));
    config.requests_per_conn = 0;
    assert!(matches!(
        loadgen::run(&config),
        Err(Error::NotPositive { .. })
    ));
}

#[test]
fn open_loop_gives_up_on_a_request_no_connection_could_send_in_time() {
    let server = TestServer::start(Behaviour::DelayedEcho(Duration::from_millis(100)));
    let mut config = config_for(&server);
    config.n_connections = 1;
    config.requests_per_conn = 30;
    config.rate = Some(1000.0); // all due within 30 ms, one connection answering every 100 ms
    config.give_up_after = Some(Duration::from_secs(1));
    let report = run(&config);
    assert_counts_add_up(&report, &config);
    assert_eq!(report.requests_failed, 0, "{report:#?}");
    // The j-th request sent goes out at least j × 100 ms after the start, so at least
    // j × 100 − 29 ms late: no more than 11 can start within the 1 s allowed, and the last
    // ones due are given up rather than sent seconds late.
    assert!(report.requests_ok <= 11, "{report:#?}");
    assert!(report.requests_ok >= 1, "{report:#?}");
    assert!(report.requests_not_sent >= 19, "{report:#?}");
}

#[test]
fn open_loop_times_out_a_scheduled_request_whose_reply_never_comes() {
    // Each connection's priming is answered, its first scheduled request never is.
    let server = TestServer::start(Behaviour::AnswerFirstOnly);
    let mut config = config_for(&server);
    config.n_connections = 3;
    config.requests_per_conn = 2;
    config.rate = Some(1000.0);
    config.timeout = Duration::from_millis(300);
    let report = run(&config);
    assert_eq!(report.failures.reply_timeout, 3, "{report:#?}");
    assert_eq!(report.requests_ok, 0, "{report:#?}");
    assert_eq!(
        report.requests_not_sent, 3,
        "each connection's second request"
    );
    assert_counts_add_up(&report, &config);
}

#[test]
fn open_loop_times_out_connects_to_a_full_accept_queue() {
    let listener = full_backlog_listener();
    let mut config = Config::new(listener.local_addr().expect("address"));
    config.n_connections = 6;
    config.concurrency = Some(1);
    config.rate = Some(1000.0);
    config.timeout = Duration::from_millis(300);
    let report = run(&config);
    assert!(
        report.failures.connect_timeout >= 1,
        "{:#?}",
        report.failures
    );
    // Connections that made it into the queue are never served: their primings time out.
    // Once the schedule is over (every request given up), what is left is not sent.
    let timeouts = report.failures.connect_timeout + report.failures.reply_timeout;
    assert_eq!(timeouts, report.requests_failed, "{:#?}", report.failures);
    assert_eq!(report.requests_ok, 0);
    assert_counts_add_up(&report, &config);
}

#[test]
fn open_loop_writes_a_request_larger_than_the_socket_takes_at_once_and_checks_its_reply() {
    // A 1 MiB line fills the socket's send buffer: the write stops at EAGAIN and resumes
    // on the socket's writable events, and the reply arrives over many reads.
    let server = TestServer::start(Behaviour::Echo);
    let mut config = config_for(&server);
    config.n_connections = 2;
    config.requests_per_conn = 2;
    config.rate = Some(100.0);
    config.message = "x".repeat(1 << 20);
    let report = run(&config);
    assert_eq!(report.requests_ok, 4, "{:#?}", report.failures);
    assert_counts_add_up(&report, &config);
}

#[test]
fn open_loop_counts_a_wrong_reply_to_a_scheduled_request() {
    // The priming's wrong reply already fails each connection: every one is counted once,
    // its other requests as not sent.
    let server = TestServer::start(Behaviour::WrongReply);
    let mut config = config_for(&server);
    config.n_connections = 4;
    config.requests_per_conn = 3;
    config.rate = Some(1000.0);
    let report = run(&config);
    assert_eq!(report.failures.wrong_reply, 4, "{:#?}", report.failures);
    assert_eq!(report.requests_not_sent, 8);
    assert_counts_add_up(&report, &config);
}

#[test]
fn the_request_log_has_every_answered_request_of_the_measured_phase_on_both_threads() {
    let delay = Duration::from_millis(20);
    let server = TestServer::start(Behaviour::DelayedEcho(delay));
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("requests.log");
    let mut config = open_loop_config(&server, 2);
    config.warmup = Duration::from_millis(50);
    config.request_log = Some(path.clone());
    let report = run(&config);
    let log = loadgen::request_log::RequestLog::read(&path).expect("a request log");
    // The measured phase's requests only, the warm-up's left out.
    assert_eq!(log.requests.len() as u64, report.requests_ok, "{report:#?}");
    assert_eq!(report.requests_ok, 20);
    let mut dues: Vec<u64> = log.requests.iter().map(|r| r.due_us).collect();
    dues.sort_unstable();
    // 200 requests/s: one due every 5 ms from the schedule's start, each due once.
    for (k, due) in dues.iter().enumerate() {
        assert_eq!(*due / 1000, 5 * k as u64, "{dues:?}");
    }
    for r in &log.requests {
        assert!(r.ready_us >= r.due_us && r.sent_us >= r.ready_us, "{r:?}");
        assert!(
            r.done_us >= r.sent_us + 20_000,
            "not before the delay: {r:?}"
        );
        assert!(r.read_us.is_none_or(|read| read >= r.done_us), "{r:?}");
    }
    // The same lags as the histogram's, to its precision (three significant digits).
    let worst = log.requests.iter().map(|r| r.lag_us()).max().unwrap_or(0) as f64;
    let max = report.schedule_lag.max_us;
    assert!(
        (worst - max).abs() <= 1.0 + max / 100.0,
        "{worst} against {max}"
    );
}

#[test]
fn a_request_log_is_refused_for_a_closed_loop_run_naming_the_file() {
    let mut config = Config::new(refusing_addr());
    config.request_log = Some("closed.log".into());
    let error = loadgen::run(&config).expect_err("a closed loop has no schedule to log");
    assert!(
        matches!(error, Error::RequestLogNeedsRate { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("closed.log"), "{error}");
}
