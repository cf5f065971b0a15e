//! The reply and connect timeouts of one event loop: a FIFO of `(deadline, key, ticket)`,
//! which is an ordered timer queue here because every deadline is the clock at its push plus
//! the one `--timeout`.
//!
//! A timer per request would cost a system call each; a deadline heap would cost `log n` per
//! request for an order the clock already gives. An entry is never removed when its request
//! completes: it goes stale (its connection has moved on to another ticket) and is dropped
//! when it reaches the front, so the queue holds about one entry per request in flight.

use std::collections::VecDeque;
use std::time::Instant;

/// One deadline: the slab key of its connection and the ticket that connection held then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// When it expires.
    pub deadline: Instant,
    /// The connection's slab key.
    pub key: usize,
    /// The connection's ticket when the deadline was set; unique in the loop.
    pub ticket: u64,
}

/// Deadlines in the order they expire.
#[derive(Debug, Default)]
pub struct Deadlines {
    queue: VecDeque<Entry>,
    next_ticket: u64,
}

impl Deadlines {
    /// Sets a deadline for the connection at `key` and returns its ticket. A deadline earlier
    /// than the last one set is moved up to it (never earlier), which keeps the queue in
    /// order when the caller's clock readings were taken a little out of order.
    pub fn push(&mut self, deadline: Instant, key: usize) -> u64 {
        let deadline = self
            .queue
            .back()
            .map_or(deadline, |last| deadline.max(last.deadline));
        self.next_ticket += 1;
        let ticket = self.next_ticket;
        self.queue.push_back(Entry {
            deadline,
            key,
            ticket,
        });
        ticket
    }

    /// Removes and returns the first entry still `live` and due by `now`, dropping the stale
    /// ones before it; `None` when the first live entry is not due.
    pub fn pop_expired(&mut self, now: Instant, live: impl Fn(&Entry) -> bool) -> Option<Entry> {
        while let Some(front) = self.queue.front() {
            if !live(front) {
                self.queue.pop_front();
            } else if front.deadline <= now {
                return self.queue.pop_front();
            } else {
                return None;
            }
        }
        None
    }

    /// The first deadline (live or stale: waking for a stale one only drops it).
    pub fn first(&self) -> Option<Instant> {
        self.queue.front().map(|entry| entry.deadline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn only_live_entries_due_by_now_expire_in_order() {
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let mut deadlines = Deadlines::default();
        let first = deadlines.push(at(10), 1);
        let stale = deadlines.push(at(20), 2);
        let third = deadlines.push(at(30), 3);
        let live = |entry: &Entry| entry.ticket != stale;
        assert_eq!(deadlines.pop_expired(at(5), live), None);
        let expired = deadlines.pop_expired(at(25), live).expect("the first");
        assert_eq!((expired.key, expired.ticket), (1, first));
        assert_eq!(
            deadlines.pop_expired(at(25), live),
            None,
            "the stale one is not due"
        );
        assert_eq!(
            deadlines.first(),
            Some(at(30)),
            "and was dropped on the way"
        );
        assert_eq!(
            deadlines.pop_expired(at(30), live).map(|e| e.ticket),
            Some(third)
        );
        assert_eq!(deadlines.first(), None);
    }

    #[test]
    fn a_deadline_set_out_of_order_is_never_earlier_than_the_one_before() {
        let start = Instant::now();
        let mut deadlines = Deadlines::default();
        deadlines.push(start + Duration::from_millis(10), 1);
        deadlines.push(start + Duration::from_millis(9), 2);
        let all = |_: &Entry| true;
        let early = start + Duration::from_millis(9);
        assert_eq!(deadlines.pop_expired(early, all), None);
        let late = start + Duration::from_millis(10);
        assert_eq!(deadlines.pop_expired(late, all).map(|e| e.key), Some(1));
        assert_eq!(deadlines.pop_expired(late, all).map(|e| e.key), Some(2));
    }
}
