//! The receive buffers: one provided-buffer ring per loop, shared by all its connections.
//!
//! # Why a provided-buffer ring, not a buffer per connection
//!
//! A completion-based read needs its buffer when it is *submitted*, and a connection waiting
//! for its next request always has a read submitted. With a buffer per connection, 10000
//! waiting connections would pin 10000 buffers that hold nothing; mio instead reads every
//! socket into one shared buffer once it is readable. A provided-buffer ring
//! (`IORING_REGISTER_PBUF_RING`) gets io_uring the same property: a read names a buffer
//! *group*, and the kernel takes a buffer from the ring only when data arrives. The loop copies
//! the bytes into the protocol at once and gives the buffer back in the same turn, so the ring
//! needs as many buffers as reads completing between two turns of the loop, not as many as
//! connections. When it runs dry anyway, a read completes with `ENOBUFS` and the loop submits
//! it again after this turn has given its buffers back (see `event_loop`).
//!
//! # Safety
//!
//! The kernel reads the ring's entries and writes into the buffers at any time while the ring
//! is registered. Both are heap allocations owned by [`BufferRing`] that never move or shrink;
//! the owner keeps it alive until it has unregistered it or destroyed the ring (the loop
//! declares the `IoUring` before the `BufferRing`, so the ring drops first).

use std::alloc::{self, Layout};
use std::io;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;
use io_uring::{IoUring, squeue};

/// The buffer group id of the loop's ring.
pub const GROUP: u16 = 0;

/// Buffers in the ring (a power of two, as the kernel requires).
pub const COUNT: u16 = 2048;

/// Bytes per buffer: a request line is usually a few dozen bytes, and a longer one simply
/// takes several reads.
pub const SIZE: usize = 2048;

/// The ring of entries the kernel takes buffers from, and the buffers.
pub struct BufferRing {
    entries: *mut BufRingEntry,
    layout: Layout,
    data: Box<[u8]>,
    /// Our copy of the tail: entries before it are the kernel's to take.
    tail: u16,
}

// SAFETY: the raw pointer is to memory this value owns; it is used from one thread at a time.
unsafe impl Send for BufferRing {}

impl std::fmt::Debug for BufferRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BufferRing")
            .field("count", &COUNT)
            .field("size", &SIZE)
            .finish()
    }
}

impl BufferRing {
    /// Allocates the ring and its buffers and registers them with `ring` as group [`GROUP`],
    /// every buffer given to the kernel.
    ///
    /// # Errors
    /// `Unsupported` naming the cause when the kernel has no provided-buffer rings (before
    /// 5.19); other registration errors as they come.
    pub fn register(ring: &IoUring) -> io::Result<BufferRing> {
        let bytes = std::mem::size_of::<BufRingEntry>() * usize::from(COUNT);
        let layout = Layout::from_size_align(bytes, 4096).map_err(io::Error::other)?;
        // SAFETY: the layout has a non-zero size.
        let entries = unsafe { alloc::alloc_zeroed(layout) }.cast::<BufRingEntry>();
        if entries.is_null() {
            alloc::handle_alloc_error(layout);
        }
        let mut buffers = BufferRing {
            entries,
            layout,
            data: vec![0; SIZE * usize::from(COUNT)].into_boxed_slice(),
            tail: 0,
        };
        // SAFETY: `entries` holds COUNT entries, page-aligned, and lives as long as `buffers`,
        // which the caller keeps until the ring is gone (see the module docs).
        let registered = unsafe {
            ring.submitter()
                .register_buf_ring_with_flags(entries as u64, COUNT, GROUP, 0)
        };
        registered.map_err(|e| match e.kind() {
            io::ErrorKind::InvalidInput => io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "io_uring unavailable: the kernel has no provided-buffer rings (Linux 5.19 \
                     or later is needed): {e}"
                ),
            ),
            _ => e,
        })?;
        for id in 0..COUNT {
            buffers.push(id);
        }
        buffers.publish();
        Ok(buffers)
    }

    /// The `len` bytes the kernel wrote into buffer `id`.
    ///
    /// # Panics
    /// When `id` or `len` is out of range (the kernel never reports such a completion).
    pub fn bytes(&self, id: u16, len: usize) -> &[u8] {
        let start = usize::from(id) * SIZE;
        &self.data[start..start + len.min(SIZE)]
    }

    /// Gives buffer `id` back to the kernel, once its bytes have been copied out.
    pub fn recycle(&mut self, id: u16) {
        self.push(id);
        self.publish();
    }

    fn push(&mut self, id: u16) {
        let slot = usize::from(self.tail & (COUNT - 1));
        let addr = self.data[usize::from(id) * SIZE..].as_ptr() as u64;
        // SAFETY: `slot < COUNT`, inside the allocation; the kernel does not read entries at or
        // past the published tail, so writing this one races with nothing.
        let entry = unsafe { &mut *self.entries.add(slot) };
        entry.set_addr(addr);
        entry.set_len(SIZE as u32);
        entry.set_bid(id);
        self.tail = self.tail.wrapping_add(1);
    }

    /// Makes the entries pushed so far visible to the kernel (a release store of the tail,
    /// which lives in the first entry's reserved field).
    fn publish(&self) {
        // SAFETY: the tail field is inside the allocation, 2-byte aligned, and only ever
        // accessed atomically by the kernel and by this store.
        unsafe {
            let tail = BufRingEntry::tail(self.entries).cast_mut();
            AtomicU16::from_ptr(tail).store(self.tail, Ordering::Release);
        }
    }

    /// A receive that takes its buffer from this ring: `recv` with buffer selection.
    pub fn recv(fd: io_uring::types::Fd) -> squeue::Entry {
        io_uring::opcode::Recv::new(fd, std::ptr::null_mut(), SIZE as u32)
            .buf_group(GROUP)
            .build()
            .flags(squeue::Flags::BUFFER_SELECT)
    }
}

impl Drop for BufferRing {
    fn drop(&mut self) {
        // SAFETY: allocated in `register` with this layout; the kernel no longer uses it (the
        // ring was dropped first or the group unregistered).
        unsafe { alloc::dealloc(self.entries.cast(), self.layout) };
    }
}
