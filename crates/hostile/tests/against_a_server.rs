//! Every kind of hostile client against a real server (server-mio, in-process): each sees
//! what `docs/PROTOCOL.md` promises; and against a server that breaks its word (a listener
//! that answers nothing and closes), the clients that expect an answer say so.

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use echo_core::{Config, DelayModel};
use hostile::{Kind, Settings, run_wave};
use server_common::{Server, ServerConfig};

const MAX_LINE_BYTES: usize = 1024;

fn settings() -> Settings {
    Settings {
        max_line_bytes: MAX_LINE_BYTES,
        dribble_interval: Duration::from_millis(5),
        hold: Duration::from_millis(300),
        never_reader_bytes: 64 * 1024,
        patience: Duration::from_secs(10),
    }
}

fn server() -> Box<dyn Server> {
    let config = ServerConfig {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        protocol: Config {
            delay: DelayModel::Fixed(Duration::from_millis(20)).into(),
            max_line_bytes: MAX_LINE_BYTES,
            ..Config::default()
        },
        ..ServerConfig::default()
    };
    Box::new(server_mio::start(config, 1).expect("server-mio starts on 127.0.0.1:0"))
}

#[test]
fn every_kind_of_hostile_client_sees_the_server_keep_the_protocol() {
    let server = server();
    let clients: Vec<(Kind, usize)> = Kind::ALL.iter().map(|&k| (k, 3)).collect();
    let report = run_wave(server.local_addr(), &clients, &settings()).expect("a small wave");
    let tally = report.tally();
    assert_eq!(tally.len(), Kind::ALL.len());
    for (kind, t) in &tally {
        assert_eq!(t.clients, 3, "{kind}");
        assert_eq!(t.conforming, 3, "{kind}: {:?}", t.problems);
    }
    let oversized = report
        .outcomes
        .iter()
        .find(|o| o.kind == Kind::OversizedLine)
        .expect("an oversized client ran");
    assert_eq!(oversized.saw, "ERR line too long (limit 1024 bytes)\n");
    let summary = server.shutdown().expect("the server stops");
    assert_eq!(summary.connections_open, 0, "{summary}");
}

#[test]
fn against_a_listener_that_answers_nothing_the_clients_that_expect_a_reply_report_it() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("bound");
    let closer = std::thread::spawn(move || {
        for _ in 0..3 {
            // Accept and close at once: a server that drops every client in silence.
            drop(listener.accept());
        }
    });
    let kinds = [Kind::Dribbler, Kind::OversizedLine, Kind::InvalidUtf8];
    let clients: Vec<(Kind, usize)> = kinds.iter().map(|&k| (k, 1)).collect();
    let report = run_wave(addr, &clients, &settings()).expect("a small wave");
    closer.join().expect("the closer does not panic");
    for outcome in &report.outcomes {
        assert!(!outcome.conforms(), "{outcome:?}");
    }
    assert!(!report.conforms());
}

#[test]
fn a_wave_refuses_addresses_off_the_machine_and_more_clients_than_its_bound() {
    let off = SocketAddr::from(([192, 0, 2, 1], 7));
    let err = run_wave(off, &[(Kind::Idle, 1)], &settings()).expect_err("not loopback");
    assert!(err.contains("192.0.2.1:7"), "{err}");
    let local = SocketAddr::from(([127, 0, 0, 1], 9));
    let err = run_wave(
        local,
        &[(Kind::Idle, hostile::wave::MAX_CLIENTS + 1)],
        &settings(),
    )
    .expect_err("too many");
    assert!(err.contains("1001"), "{err}");
}
