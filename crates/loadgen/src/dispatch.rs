//! Open-loop dispatch on one client thread: every request due by now goes to the connection
//! idle longest, handed out by whichever task of the thread notices first that it is due.
//!
//! # Why every worker dispatches, and who writes
//! Before, one dispatcher task waited for each due time and handed it to an idle worker by
//! waking the worker's task, which then wrote the request. In tokio's current-thread
//! scheduler a woken task runs only after every task already in the run queue, and the IO
//! driver queues a task for every event of a batch (up to 1024; at 30,000 requests/s over
//! 10000 connections the replies of hundreds of requests arrive together, since the server
//! answers in bursts of its own). So a due request went through the queue twice, behind the
//! replies of a batch each time (the dispatcher's wake-up, then the worker's): measured
//! against server-mio at 100 ms with 10000 connections, the schedule lag was p99 15.6 ms at
//! 30,000 requests/s and 50 ms at 60,000 (olc, one C epoll loop, 2.3 and 19 ms), and `perf`
//! showed loadgen's core 82 % busy, not saturated.
//!
//! Now [`Dispatch::pump`] runs whenever a worker goes idle, that is after every reply it
//! reads, and hands what has fallen due to the connections idle longest at once, so a due
//! request goes through the queue once. The dispatcher task ([`crate::worker::dispatcher`])
//! only wakes on the timer when no reply comes to do it, and then writes the requests
//! itself ([`Write::ByPump`]: the send buffer of an idle connection is empty, so a ~45-byte
//! write completes at once; should it not, the worker writes the rest).
//!
//! A worker going idle does not write the requests it hands out, though
//! ([`Write::ByWorker`]): their workers' tasks write them after the replies already queued
//! are read, as one epoll loop (olc) reads its batch before it sends. Writing them at once,
//! in the middle of a batch, was tried: the schedule lag was mostly lower (p99 1.8 to 6.9 ms
//! at 30,000 requests/s, against 0.5 to 21 ms), but every reply of the batch was then read
//! only after the writes interleaved before it, and the latency from the send grew in each
//! of 14 pairs of runs (against the binary before and against this design: p99 +4 to
//! +46 ms at 30,000 requests/s), which hid the client's own slowness in what reads as the
//! server's latency.
//!
//! Measured on the shared machine (server and client under `chrt -f 5`, alternated with the
//! binary before, four pairs at each rate): lag p99 0.5–11.6 ms against 12.1–24.3 ms at
//! 30,000 requests/s and 25–39 ms against 36–59 ms at 60,000, latency p99 from the due time
//! unchanged within the runs' noise (±15 ms), and no more CPU per request (`perf stat`
//! task-clock over the same window: −23 % to +4 %). A lag-over-time trace showed no
//! resonance at the delay's period (a lag spike was no likelier 100 ms after another than
//! by chance); the lag left comes with stalls of the whole machine (windows of 5 ms and
//! more in which the client read no reply at all) and, at 60,000, with a client core
//! 70–80 % busy, 72 % of it in the kernel (`perf record`). olc shows lags of the same size
//! here.
//!
//! # Two lags
//! A request's **schedule lag** runs from its due time to its write. When no connection was
//! idle at its due time (every one waiting for a reply: the server's slowness, not the
//! client's) it also includes the wait for a connection; its **client lag** runs from the
//! later of its due time and the moment a connection became idle for it (the connection's
//! worker had read its previous reply), so it is the client's own delay alone. Such a
//! request counts as having waited for a connection.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::io;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use crate::exchange::Writer;
use crate::net::{Phase, classify};
use crate::report::FailureKind;

/// A request handed to a connection: when it was due, when a connection was free for it,
/// and how its write went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handed {
    /// Its due time in the schedule.
    pub due: Instant,
    /// The later of `due` and the moment the connection became idle.
    pub ready: Instant,
    /// When the dispatch began writing it.
    pub sent: Instant,
    /// Bytes of the request written by the dispatch (the worker writes the rest), or the
    /// failure of the write.
    pub written: Result<usize, FailureKind>,
}

impl Handed {
    /// Whether it waited for a connection to become idle after its due time.
    pub fn waited_for_connection(&self) -> bool {
        self.ready > self.due
    }
}

/// One connection's place in the idle queue of a [`Dispatch`].
#[derive(Debug)]
pub struct Turn<C> {
    /// The connection requests are written on.
    pub connection: C,
    idle_since: Cell<Instant>,
    handed: Cell<Option<Handed>>,
    waker: RefCell<Option<Waker>>,
}

impl<C> Turn<C> {
    /// A turn for `connection`, not yet idle.
    pub fn new(connection: C) -> Turn<C> {
        Turn {
            connection,
            idle_since: Cell::new(Instant::now()),
            handed: Cell::new(None),
            waker: RefCell::new(None),
        }
    }
}

/// The due times one client thread dispatches, in order.
pub type Dues = Box<dyn Iterator<Item = Instant>>;

/// The idle connections of one client thread, its share of the schedule, and the handoff
/// of due requests to them.
pub struct Dispatch<C> {
    request: Vec<u8>,
    dues: RefCell<std::iter::Peekable<Dues>>,
    give_up_after: Duration,
    given_up: Cell<u64>,
    idle: RefCell<VecDeque<Rc<Turn<C>>>>,
    dispatcher: RefCell<Option<Waker>>,
    live_workers: Cell<u64>,
    finished: Cell<bool>,
}

impl<C> std::fmt::Debug for Dispatch<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatch")
            .field("idle", &self.idle.borrow().len())
            .field("live_workers", &self.live_workers.get())
            .field("finished", &self.finished.get())
            .finish_non_exhaustive()
    }
}

/// Who writes a request [`Dispatch::pump`] hands out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    /// The pump, at once: the dispatcher's, woken by the timer while no reply is waiting.
    ByPump,
    /// The connection's worker, when its task runs: a worker going idle in the middle of a
    /// batch of replies hands requests out, and they are written after the replies already
    /// queued are read (see the module doc for why).
    ByWorker,
}

/// What the dispatcher task waits for after a [`Dispatch::pump`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// The next request is due then.
    DueAt(Instant),
    /// A request is overdue and no connection is idle: wait for a worker.
    Connection,
    /// The schedule or the workers are used up.
    Finished,
}

impl<C: Writer> Dispatch<C> {
    /// Dispatches `request` at each of `dues` (read lazily, so they may depend on a schedule
    /// that begins later), giving up on a request no connection was idle for within
    /// `give_up_after` of its due time.
    pub fn new(request: Vec<u8>, dues: Dues, give_up_after: Duration) -> Dispatch<C> {
        Dispatch {
            request,
            dues: RefCell::new(dues.peekable()),
            give_up_after,
            given_up: Cell::new(0),
            idle: RefCell::default(),
            dispatcher: RefCell::default(),
            live_workers: Cell::new(0),
            finished: Cell::new(false),
        }
    }

    /// Requests given up so far: due while every connection was busy, and still without one
    /// `give_up_after` later. They count as not sent.
    ///
    /// Without this bound an open loop against a server that cannot keep up sends its whole
    /// backlog after the schedule ends (offered 500 req/s, a server answering 50 leaves nine
    /// seconds of backlog per second of schedule), and every request of it counts as
    /// answered; with it, a phase ends within that bound and a reply timeout of its schedule,
    /// and what the server could not take is counted.
    pub fn given_up(&self) -> u64 {
        self.given_up.get()
    }

    /// Counts a worker that will ask for turns; pair with [`Dispatch::worker_done`].
    pub fn worker_started(&self) {
        self.live_workers.set(self.live_workers.get() + 1);
    }

    /// A worker will ask for no more turns (its connections are used up).
    pub fn worker_done(&self) {
        self.live_workers
            .set(self.live_workers.get().saturating_sub(1));
        self.wake_dispatcher();
    }

    /// Queues `turn` as idle from now, hands what is due to the connections idle longest
    /// (perhaps this very one; their tasks write the requests, after the replies already
    /// queued: [`Write::ByWorker`]) and waits for a request; `None` once the schedule is over.
    pub async fn next_turn(&self, turn: &Rc<Turn<C>>) -> Option<Handed> {
        turn.handed.set(None);
        if !self.finished.get() {
            turn.idle_since.set(Instant::now());
            self.idle.borrow_mut().push_back(Rc::clone(turn));
            self.pump(Write::ByWorker);
            self.wake_dispatcher();
        }
        poll_fn(|context| {
            if let Some(handed) = turn.handed.take() {
                return Poll::Ready(Some(handed));
            }
            if self.finished.get() {
                return Poll::Ready(None);
            }
            *turn.waker.borrow_mut() = Some(context.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// Hands every request due by now to the connections idle longest, until none is due or
    /// none is idle, writing it `by` the pump itself or by the connection's worker, and says
    /// what to wait for next. Cheap when nothing is due (one clock read), so every worker
    /// calls it as it goes idle.
    pub fn pump(&self, by: Write) -> Next {
        let mut now = Instant::now();
        loop {
            if self.finished.get() {
                return Next::Finished;
            }
            let next_due = self.dues.borrow_mut().peek().copied();
            let Some(due) = next_due else {
                self.finish();
                return Next::Finished;
            };
            if due > now {
                return Next::DueAt(due);
            }
            if now.saturating_duration_since(due) > self.give_up_after {
                self.dues.borrow_mut().next();
                self.given_up.set(self.given_up.get() + 1);
                continue;
            }
            let longest_idle = self.idle.borrow_mut().pop_front();
            let Some(turn) = longest_idle else {
                if self.live_workers.get() == 0 {
                    self.finish();
                    return Next::Finished;
                }
                return Next::Connection;
            };
            self.dues.borrow_mut().next();
            now = Instant::now();
            let attempt = match by {
                Write::ByPump => turn.connection.try_send(&self.request),
                Write::ByWorker => Ok(0),
            };
            let written = match attempt {
                Ok(n) => Ok(n),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) =>
                {
                    Ok(0)
                }
                Err(e) => Err(classify(&e, Phase::Exchange)),
            };
            turn.handed.set(Some(Handed {
                due,
                ready: due.max(turn.idle_since.get()),
                sent: now,
                written,
            }));
            if let Some(waker) = turn.waker.borrow_mut().take() {
                waker.wake();
            }
        }
    }

    /// Dispatches what is due and returns the next due time, first waiting (for a worker to
    /// go idle or end) while a request is overdue and no connection is idle; `None` once the
    /// schedule or the workers are used up.
    pub async fn pump_until_a_due_time(&self) -> Option<Instant> {
        poll_fn(|context| match self.pump(Write::ByPump) {
            Next::DueAt(due) => Poll::Ready(Some(due)),
            Next::Finished => Poll::Ready(None),
            Next::Connection => {
                *self.dispatcher.borrow_mut() = Some(context.waker().clone());
                Poll::Pending
            }
        })
        .await
    }

    /// The schedule is over: every idle worker, now and later, gets `None`.
    pub fn finish(&self) {
        self.finished.set(true);
        let idle: Vec<_> = self.idle.borrow_mut().drain(..).collect();
        for turn in idle {
            if let Some(waker) = turn.waker.borrow_mut().take() {
                waker.wake();
            }
        }
    }

    fn wake_dispatcher(&self) {
        if let Some(waker) = self.dispatcher.borrow_mut().take() {
            waker.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A connection that takes every byte and remembers them.
    #[derive(Debug, Default)]
    struct Recorder(RefCell<Vec<u8>>);

    impl Writer for Recorder {
        fn try_send(&self, bytes: &[u8]) -> io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        async fn writable(&self) -> io::Result<()> {
            Ok(())
        }
    }

    fn local<F: std::future::Future>(future: F) -> F::Output {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        tokio::task::LocalSet::new().block_on(&runtime, future)
    }

    fn dispatch(dues: Vec<Instant>) -> Rc<Dispatch<Recorder>> {
        Rc::new(Dispatch::new(
            b"x\n".to_vec(),
            Box::new(dues.into_iter()),
            Duration::from_secs(3600),
        ))
    }

    /// Starts a task waiting for a turn on a fresh connection, and lets it queue itself.
    async fn idle_worker(
        dispatch: &Rc<Dispatch<Recorder>>,
    ) -> (Rc<Turn<Recorder>>, tokio::task::JoinHandle<Option<Handed>>) {
        dispatch.worker_started();
        let turn = Rc::new(Turn::new(Recorder::default()));
        let handle = {
            let (dispatch, turn) = (Rc::clone(dispatch), Rc::clone(&turn));
            tokio::task::spawn_local(async move { dispatch.next_turn(&turn).await })
        };
        tokio::task::yield_now().await;
        (turn, handle)
    }

    /// Pumps (as the dispatcher would, without its timer) until the schedule is used up.
    async fn pump_until_finished(dispatch: &Dispatch<Recorder>) {
        while dispatch.pump_until_a_due_time().await.is_some() {
            tokio::task::yield_now().await;
        }
    }

    #[test]
    fn a_request_no_connection_was_free_for_within_the_bound_is_given_up_not_sent_late() {
        local(async {
            let long_ago = Instant::now() - Duration::from_secs(2);
            let soon = Instant::now() + Duration::from_millis(1);
            let dispatch = Rc::new(Dispatch::new(
                b"x\n".to_vec(),
                Box::new(vec![long_ago, soon].into_iter()),
                Duration::from_secs(1),
            ));
            let (turn, handle) = idle_worker(&dispatch).await;
            pump_until_finished(&dispatch).await;
            let handed = handle.await.expect("joins").expect("a turn");
            assert_eq!(handed.due, soon, "the overdue request was skipped");
            assert_eq!(dispatch.given_up(), 1);
            assert_eq!(*turn.connection.0.borrow(), b"x\n", "one request written");
        });
    }

    #[test]
    fn due_requests_are_written_by_the_pump_on_the_connections_idle_longest() {
        local(async {
            let first_due = Instant::now() + Duration::from_millis(2);
            let dues = vec![first_due, first_due + Duration::from_micros(1)];
            let dispatch = dispatch(dues.clone());
            let (first, first_handle) = idle_worker(&dispatch).await;
            let (second, second_handle) = idle_worker(&dispatch).await;
            assert_eq!(
                dispatch.pump(Write::ByPump),
                Next::DueAt(first_due),
                "nothing due yet"
            );
            assert!(first.connection.0.borrow().is_empty());
            pump_until_finished(&dispatch).await;
            for turn in [&first, &second] {
                assert_eq!(*turn.connection.0.borrow(), b"x\n", "written by the pump");
            }
            let handed = [first_handle.await, second_handle.await].map(|h| h.expect("joins"));
            let got: Vec<_> = handed.iter().map(|h| h.expect("a turn").due).collect();
            assert_eq!(got, dues, "in the order the connections went idle");
            for handed in handed.into_iter().flatten() {
                assert!(handed.sent >= handed.due, "never before its due time");
                assert_eq!(handed.written, Ok(2));
            }
        });
    }

    #[test]
    fn a_worker_going_idle_hands_what_fell_due_to_the_connection_idle_longest() {
        local(async {
            let due = Instant::now() + Duration::from_millis(2);
            let dispatch = dispatch(vec![due]);
            let (longest_idle, handle) = idle_worker(&dispatch).await;
            while Instant::now() < due {
                tokio::task::yield_now().await;
            }
            // No dispatcher runs: the next worker to go idle hands the overdue request to the
            // connection idle longest, whose own task writes it (after queued replies).
            let (just_idle, just_idle_handle) = idle_worker(&dispatch).await;
            let handed = handle.await.expect("joins").expect("a turn");
            assert_eq!(handed.due, due);
            assert_eq!(handed.written, Ok(0), "left to the worker");
            assert!(longest_idle.connection.0.borrow().is_empty());
            assert!(just_idle.connection.0.borrow().is_empty());
            assert!(!handed.waited_for_connection(), "{handed:?}");
            assert_eq!(
                just_idle_handle.await.expect("joins"),
                None,
                "nothing else due"
            );
        });
    }

    #[test]
    fn a_request_that_found_no_idle_connection_waited_for_one_and_its_client_lag_starts_then() {
        local(async {
            let due = Instant::now();
            let dispatch = dispatch(vec![due]);
            dispatch.worker_started();
            assert_eq!(
                dispatch.pump(Write::ByPump),
                Next::Connection,
                "due, but nobody is idle"
            );
            let turn = Rc::new(Turn::new(Recorder::default()));
            let handed = dispatch
                .next_turn(&turn)
                .await
                .expect("the overdue request");
            assert!(handed.waited_for_connection(), "{handed:?}");
            assert!(handed.ready >= turn.idle_since.get() && handed.ready > due);
            assert!(handed.sent >= handed.ready);
            assert_eq!(
                handed.written,
                Ok(0),
                "a worker going idle leaves the write to it"
            );
            assert_eq!(
                dispatch.next_turn(&turn).await,
                None,
                "the schedule is over"
            );
        });
    }

    #[test]
    fn a_request_due_while_a_connection_was_idle_did_not_wait_for_one() {
        local(async {
            let dispatch = dispatch(vec![Instant::now() + Duration::from_millis(2)]);
            let (turn, handle) = idle_worker(&dispatch).await;
            pump_until_finished(&dispatch).await;
            let handed = handle.await.expect("joins").expect("a turn");
            assert!(!handed.waited_for_connection(), "{handed:?}");
            assert_eq!(handed.ready, handed.due);
            assert!(handed.sent >= handed.due, "never before its due time");
            assert_eq!(*turn.connection.0.borrow(), b"x\n");
        });
    }

    #[test]
    fn without_workers_the_schedule_ends_and_idle_workers_end_when_finished() {
        local(async {
            let dispatch = dispatch(vec![Instant::now()]);
            assert_eq!(
                dispatch.pump(Write::ByPump),
                Next::Finished,
                "no worker to send on"
            );
            let dispatch = self::dispatch(vec![Instant::now() + Duration::from_secs(3600)]);
            let (_turn, handle) = idle_worker(&dispatch).await;
            dispatch.finish();
            assert_eq!(handle.await.expect("joins"), None);
        });
    }
}
