//! Behaviour of the uppercase echo protocol, driven through the `Protocol` trait with a
//! simulated clock: framing, ordering, delays, errors, limits, half-close, idle and shutdown.

mod sim;

use echo_core::{Config, DelayKind, DelayModel, Framing, Protocol, Refusal};
use sim::{Sim, ms};

fn config(delay_ms: u64) -> Config {
    Config {
        delay: DelayModel::Fixed(ms(delay_ms)).into(),
        idle_timeout: None,
        ..Config::default()
    }
}

#[test]
fn a_line_is_answered_upper_cased_after_the_delay_and_not_before() {
    let mut sim = Sim::new(&config(100));
    sim.send(b"hello\n");
    sim.run_until(ms(99));
    assert_eq!(sim.text(), "", "nothing may be sent before the delay");
    sim.run_until(ms(100));
    assert_eq!(sim.text(), "HELLO\n");
    assert_eq!(sim.conn.stats().requests, 1);
    assert!(
        !sim.conn.is_closed(),
        "a line connection stays open for more requests"
    );
}

#[test]
fn full_unicode_case_mapping_is_used() {
    let mut sim = Sim::new(&config(0));
    sim.send("straße ǆ ﬁ ω\n".as_bytes());
    sim.flush();
    assert_eq!(sim.text(), "STRASSE Ǆ FI Ω\n");
}

#[test]
fn requests_on_one_connection_are_served_one_after_another() {
    let mut sim = Sim::new(&config(100));
    sim.send(b"one\ntwo\nthree\n");
    sim.run_until(ms(150));
    assert_eq!(
        sim.text(),
        "ONE\n",
        "the second delay starts when the first is answered"
    );
    sim.run_until(ms(200));
    assert_eq!(sim.text(), "ONE\nTWO\n");
    sim.run_until(ms(300));
    assert_eq!(sim.text(), "ONE\nTWO\nTHREE\n");
}

#[test]
fn a_line_and_a_character_split_across_reads_are_reassembled() {
    let mut sim = Sim::new(&config(0));
    let bytes = "aß\n".as_bytes(); // ß is two bytes: split between them
    sim.send(&bytes[..2]);
    sim.send(&bytes[2..3]);
    sim.flush();
    assert_eq!(sim.text(), "");
    sim.send(&bytes[3..]);
    sim.flush();
    assert_eq!(sim.text(), "ASS\n");
}

#[test]
fn invalid_utf8_gets_an_error_line_and_the_connection_lives_on() {
    let mut sim = Sim::new(&config(10));
    sim.send(b"ok\n\xff\xfe\nafter\n");
    sim.run_until(ms(1000));
    assert_eq!(sim.text(), "OK\nERR invalid utf-8\nAFTER\n");
    assert_eq!(sim.conn.stats().errors, 1);
    assert_eq!(sim.conn.stats().requests, 2);
    assert!(!sim.conn.is_closed());
}

#[test]
fn a_line_over_the_limit_gets_an_error_naming_the_limit_and_a_close() {
    let cfg = Config {
        max_line_bytes: 8,
        ..config(10)
    };
    let mut sim = Sim::new(&cfg);
    sim.send(b"12345678\n123456789\nnever\n");
    sim.run_until(ms(1000));
    assert_eq!(sim.text(), "12345678\nERR line too long (limit 8 bytes)\n");
    assert!(sim.conn.is_closed());
}

#[test]
fn an_unterminated_line_over_the_limit_is_refused_without_buffering_it() {
    let cfg = Config {
        max_line_bytes: 8,
        ..config(0)
    };
    let mut sim = Sim::new(&cfg);
    sim.send(b"1234");
    sim.send(b"56789");
    assert!(
        !sim.conn.wants_read(),
        "no more input once the line is known to be too long"
    );
    sim.flush();
    assert_eq!(sim.text(), "ERR line too long (limit 8 bytes)\n");
    assert!(sim.conn.is_closed());
}

#[test]
fn half_close_answers_every_line_including_an_unterminated_last_one_then_closes() {
    let mut sim = Sim::new(&config(10));
    sim.send(b"a\nb\nlast");
    sim.conn.eof_received(sim.now);
    assert!(!sim.conn.wants_read(), "nothing is read after EOF");
    assert!(
        !sim.conn.is_closed(),
        "EOF does not drop requests in progress"
    );
    sim.run_until(ms(1000));
    assert_eq!(sim.text(), "A\nB\nLAST\n");
    assert!(sim.conn.is_closed());
}

#[test]
fn raw_framing_answers_the_first_chunk_without_newline_and_closes() {
    let cfg = Config {
        framing: Framing::Raw,
        ..config(100)
    };
    let mut sim = Sim::new(&cfg);
    sim.send(b"the quick brown fox");
    assert!(!sim.conn.wants_read(), "one message per connection");
    sim.run_until(ms(99));
    assert_eq!(sim.text(), "");
    sim.run_until(ms(100));
    assert_eq!(sim.text(), "THE QUICK BROWN FOX");
    assert!(
        sim.conn.is_closed(),
        "the article's server closes after its one reply"
    );
}

#[test]
fn raw_framing_closes_silently_on_eof_before_any_data() {
    let cfg = Config {
        framing: Framing::Raw,
        ..config(100)
    };
    let mut sim = Sim::new(&cfg);
    sim.conn.eof_received(sim.now);
    assert!(sim.conn.is_closed());
    assert_eq!(sim.conn.output(), b"");
}

#[test]
fn an_idle_client_is_told_and_closed_after_the_idle_limit() {
    let cfg = Config {
        idle_timeout: Some(ms(5000)),
        ..config(100)
    };
    let mut sim = Sim::new(&cfg);
    sim.send(b"x\n");
    sim.run_until(ms(5099));
    assert_eq!(
        sim.text(),
        "X\n",
        "the idle clock restarts when a reply is finished"
    );
    sim.run_until(ms(5100));
    assert_eq!(sim.text(), "X\nERR idle timeout (limit 5s)\n");
    assert!(sim.conn.is_closed());
}

#[test]
fn a_client_that_never_reads_is_cut_off_after_an_idle_period_without_progress() {
    let cfg = Config {
        idle_timeout: Some(ms(1000)),
        max_output_bytes: 64,
        ..config(0)
    };
    let mut sim = Sim::new(&cfg);
    sim.conn.data_received(&b"0123456789\n".repeat(10), sim.now);
    assert!(
        !sim.conn.wants_read(),
        "output over its bound pauses reading"
    );
    let pending = sim.conn.output().len();
    assert!(
        (64..=64 + 11).contains(&pending),
        "bounded output, got {pending}"
    );
    let t = sim.conn.next_timeout().expect("the idle limit is armed");
    sim.conn.timeout(t.at);
    assert!(
        sim.conn.is_closed(),
        "stuck output for a whole idle period aborts"
    );
}

#[test]
fn output_backpressure_pauses_reads_and_new_requests_until_the_output_drains() {
    let cfg = Config {
        max_output_bytes: 16,
        ..config(0)
    };
    let mut sim = Sim::new(&cfg);
    sim.conn
        .data_received(b"aaaaaaa\nbbbbbbb\nccccccc\n", sim.now);
    assert_eq!(sim.conn.output(), b"AAAAAAA\nBBBBBBB\n");
    assert!(!sim.conn.wants_read());
    sim.conn.output_written(8, sim.now);
    assert_eq!(sim.conn.output(), b"BBBBBBB\nCCCCCCC\n");
    sim.flush();
    assert!(
        sim.conn.wants_read(),
        "reads resume once the output drained"
    );
}

#[test]
fn pipelined_input_is_bounded_while_a_request_waits() {
    let cfg = Config {
        max_line_bytes: 32,
        ..config(100)
    };
    let mut sim = Sim::new(&cfg);
    let mut chunks = 0;
    while sim.conn.wants_read() {
        sim.conn.data_received(b"line\n", sim.now);
        chunks += 1;
        assert!(chunks < 100, "reads never paused");
    }
    assert!(
        sim.conn.next_timeout().is_some(),
        "something to wait for while reads pause"
    );
}

#[test]
fn shutdown_answers_requests_already_received_then_closes() {
    let mut sim = Sim::new(&config(100));
    sim.send(b"a\nb\n");
    sim.conn.shutdown(sim.now, sim.now + ms(1000));
    assert!(!sim.conn.is_closed());
    sim.run_until(ms(1000));
    assert_eq!(sim.text(), "A\nB\n");
    assert!(sim.conn.is_closed());
}

#[test]
fn shutdown_of_an_idle_connection_closes_it_at_once() {
    let mut sim = Sim::new(&config(100));
    sim.conn.shutdown(sim.now, sim.now + ms(1000));
    assert!(sim.conn.is_closed());
}

#[test]
fn past_the_shutdown_give_up_instant_an_unanswered_request_is_told_the_server_is_shutting_down() {
    let mut sim = Sim::new(&config(1000));
    sim.send(b"answered\n");
    sim.run_until(ms(1000));
    sim.send(b"slow\nqueued\n");
    sim.conn.shutdown(sim.now, sim.now + ms(200));
    let wake = sim.conn.next_timeout().expect("the give-up instant");
    assert_eq!(wake.at, sim.now + ms(200));
    sim.run_until(ms(2000));
    assert_eq!(sim.text(), "ANSWERED\nERR server shutting down\n");
    assert!(sim.conn.is_closed());
}

#[test]
fn a_shutdown_whose_requests_finish_before_the_give_up_instant_answers_them_all() {
    let mut sim = Sim::new(&config(100));
    sim.send(b"a\n");
    sim.conn.shutdown(sim.now, sim.now + ms(500));
    sim.run_until(ms(1000));
    assert_eq!(sim.text(), "A\n");
    assert!(sim.conn.is_closed());
}

#[test]
fn the_configured_delay_kind_is_handed_to_the_server_but_idle_waits_are_always_waits() {
    let cfg = Config {
        delay_kind: DelayKind::Spin,
        idle_timeout: Some(ms(1000)),
        ..config(50)
    };
    let mut sim = Sim::new(&cfg);
    assert_eq!(
        sim.conn.next_timeout().map(|t| t.kind),
        Some(DelayKind::Wait)
    );
    sim.send(b"x\n");
    let t = sim.conn.next_timeout().expect("the request's delay");
    assert_eq!((t.kind, t.at - sim.start), (DelayKind::Spin, ms(50)));
}

#[test]
fn early_or_spurious_timeouts_change_nothing() {
    let mut sim = Sim::new(&config(100));
    sim.send(b"x\n");
    sim.conn.timeout(sim.now + ms(50));
    assert_eq!(sim.conn.output(), b"");
    sim.run_until(ms(100));
    assert_eq!(sim.text(), "X\n");
}

#[test]
fn connection_lost_closes_and_forgets_everything() {
    let mut sim = Sim::new(&config(100));
    sim.send(b"x\n");
    sim.conn.connection_lost();
    assert!(sim.conn.is_closed());
    assert_eq!(sim.conn.next_timeout(), None);
    assert_eq!(sim.conn.output(), b"");
}

#[test]
fn the_time_to_answer_n_requests_is_n_delays() {
    let mut sim = Sim::new(&config(100));
    sim.send(&b"x\n".repeat(5));
    sim.run_until(ms(10_000));
    assert_eq!(sim.text(), "X\n".repeat(5));
    assert_eq!(sim.elapsed(), ms(10_000));
    assert_eq!(sim.conn.stats().requests, 5);
}

#[test]
fn a_refusal_is_an_err_line_in_the_framing_of_the_server() {
    assert_eq!(Refusal::Busy.message(Framing::Line), b"ERR server busy\n");
    assert_eq!(
        Refusal::ShuttingDown.message(Framing::Line),
        b"ERR server shutting down\n"
    );
    assert_eq!(Refusal::Busy.message(Framing::Raw), b"ERR server busy");
    for refusal in [Refusal::Busy, Refusal::ShuttingDown] {
        let text = refusal.text();
        assert!(
            text.bytes().any(|b| b.is_ascii_lowercase()),
            "{text:?} could be mistaken for a reply"
        );
    }
}
