//! The lines a connection has queued live in one buffer, not in an allocation each: counted
//! with a global allocator that tracks live allocations. (Alone in its test binary, so that
//! no other test allocates meanwhile.)
//!
//! Why it matters: a client that never reads has up to 64 KiB of short lines queued; as
//! thousands of small allocations they raised a server's heap for good (the soak's RSS
//! growth), where one large buffer is returned to the system when it is freed.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use echo_core::{Config, DelayModel, EchoProtocol, Protocol};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is passed on to the system allocator unchanged; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc` is passed on as it is.
        let pointer = unsafe { System.alloc(layout) };
        if !pointer.is_null() {
            LIVE.fetch_add(1, Ordering::Relaxed);
        }
        pointer
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        // SAFETY: `pointer` came from `alloc` above, with this layout.
        unsafe { System.dealloc(pointer, layout) };
        LIVE.fetch_sub(1, Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[test]
fn five_thousand_queued_lines_are_a_handful_of_allocations() {
    let config = Config {
        delay: DelayModel::Fixed(Duration::from_secs(1)).into(),
        ..Config::default()
    };
    let mut conn = EchoProtocol::new(&config, 0);
    let t0 = Instant::now();
    conn.connection_made(t0);
    let lines = "never read\n".repeat(5000);
    let before = LIVE.load(Ordering::Relaxed);
    conn.data_received(lines.as_bytes(), t0);
    let held = LIVE.load(Ordering::Relaxed) - before;
    assert!(
        held < 20,
        "{held} live allocations for 5000 queued lines (one request in flight)"
    );
    // They are all still there, and answered in order once their delays pass.
    let mut now = t0;
    let mut answered = 0;
    while answered < 5000 {
        now = conn
            .next_timeout()
            .expect("a request waits on its delay")
            .at;
        conn.timeout(now);
        let replies = conn.output().len() / "NEVER READ\n".len();
        assert_eq!(conn.output(), "NEVER READ\n".repeat(replies).as_bytes());
        let written = conn.output().len();
        conn.output_written(written, now);
        answered += replies;
    }
    assert_eq!(answered, 5000);
    assert!(
        now >= t0 + Duration::from_secs(5000),
        "one delay per request, in turn"
    );
}
