//! Open-loop dispatch on one client thread: one dispatcher waits for each request's due time
//! on a [`PreciseTimer`] and hands the request to whichever connection has been idle
//! longest.
//!
//! This replaces a timer per connection: every idle worker used to claim the next due time
//! and `sleep_until` it on tokio's millisecond wheel, so each request started up to 1 ms
//! late (rounded up to the next tick) and that lag was hidden by timing the request from the
//! end of the wait. Now the due time is waited for once, precisely, and the worker it is
//! handed to records its actual send, so the lag (send − due) is measured for every request.
//!
//! When no connection is idle at a due time the dispatcher waits for the first one that
//! becomes idle; that request is late, its lag says by how much, and its latency still runs
//! from the due time (no coordinated omission).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Instant;

/// One worker's place in the idle queue: where the dispatcher puts its next due time.
#[derive(Debug, Default)]
pub struct Turn {
    due: Cell<Option<Instant>>,
    waker: RefCell<Option<Waker>>,
}

/// The idle connections of one client thread and the dispatcher's side of the handoff.
#[derive(Debug, Default)]
pub struct Dispatch {
    idle: RefCell<VecDeque<Rc<Turn>>>,
    dispatcher: RefCell<Option<Waker>>,
    live_workers: Cell<u64>,
    finished: Cell<bool>,
}

impl Dispatch {
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

    /// Queues `turn` as idle and waits for a due time; `None` once the schedule is over.
    pub async fn next_turn(&self, turn: &Rc<Turn>) -> Option<Instant> {
        turn.due.set(None);
        self.idle.borrow_mut().push_back(Rc::clone(turn));
        self.wake_dispatcher();
        poll_fn(|context| {
            if let Some(due) = turn.due.take() {
                return Poll::Ready(Some(due));
            }
            if self.finished.get() {
                return Poll::Ready(None);
            }
            *turn.waker.borrow_mut() = Some(context.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// Waits for an idle worker and gives it `due`; `false` when no worker is left to take
    /// it (every connection of the phase is used up).
    pub async fn hand_out(&self, due: Instant) -> bool {
        let turn = poll_fn(|context| {
            if let Some(turn) = self.idle.borrow_mut().pop_front() {
                return Poll::Ready(Some(turn));
            }
            if self.live_workers.get() == 0 {
                return Poll::Ready(None);
            }
            *self.dispatcher.borrow_mut() = Some(context.waker().clone());
            Poll::Pending
        })
        .await;
        let Some(turn) = turn else {
            return false;
        };
        turn.due.set(Some(due));
        if let Some(waker) = turn.waker.borrow_mut().take() {
            waker.wake();
        }
        true
    }

    /// Returns once `due` has passed, checking the clock each time a worker becomes idle:
    /// while replies are coming in, due requests are handed out between them without
    /// waiting for the dispatcher's timer. Never returns by itself when no worker becomes
    /// idle; race it against the timer.
    pub async fn passed_at_a_wake_up(&self, due: Instant) {
        poll_fn(|context| {
            if Instant::now() >= due {
                return Poll::Ready(());
            }
            *self.dispatcher.borrow_mut() = Some(context.waker().clone());
            Poll::Pending
        })
        .await;
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

    fn local<F: std::future::Future>(future: F) -> F::Output {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        tokio::task::LocalSet::new().block_on(&runtime, future)
    }

    #[test]
    fn a_due_time_goes_to_the_connection_idle_longest() {
        local(async {
            let dispatch = Rc::new(Dispatch::default());
            let start = Instant::now();
            let turns: Vec<Rc<Turn>> = (0..2).map(|_| Rc::default()).collect();
            let mut waiting = Vec::new();
            for turn in &turns {
                dispatch.worker_started();
                let (dispatch, turn) = (Rc::clone(&dispatch), Rc::clone(turn));
                waiting.push(tokio::task::spawn_local(async move {
                    dispatch.next_turn(&turn).await
                }));
                tokio::task::yield_now().await;
            }
            let dues = [start, start + Duration::from_millis(1)];
            for due in dues {
                assert!(dispatch.hand_out(due).await);
            }
            let got: Vec<_> = futures_join(waiting).await;
            assert_eq!(got, dues.map(Some));
        });
    }

    #[test]
    fn without_workers_nothing_is_handed_out_and_idle_workers_end_when_finished() {
        local(async {
            let dispatch = Rc::new(Dispatch::default());
            assert!(!dispatch.hand_out(Instant::now()).await);
            dispatch.worker_started();
            let turn = Rc::new(Turn::default());
            let waiter = {
                let (dispatch, turn) = (Rc::clone(&dispatch), Rc::clone(&turn));
                tokio::task::spawn_local(async move { dispatch.next_turn(&turn).await })
            };
            tokio::task::yield_now().await;
            dispatch.finish();
            assert_eq!(waiter.await.expect("joins"), None);
        });
    }

    async fn futures_join<T>(handles: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
        let mut out = Vec::new();
        for handle in handles {
            out.push(handle.await.expect("joins"));
        }
        out
    }
}
