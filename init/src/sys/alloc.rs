//! A counting allocator, so PID 1 can check at run time that its loop
//! does not allocate (the binary installs it as the global allocator;
//! with `wren.debug`, a wake-up that allocated is logged).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    // Per thread as well, for host tests: the test harness's own threads
    // allocate as they please. A const-initialised thread local needs no
    // allocation to access, so the allocator cannot recurse into itself.
    static THREAD: core::cell::Cell<u64> = const { core::cell::Cell::new(0) };
}

fn counted() {
    ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    let _ = THREAD.try_with(|c| c.set(c.get().wrapping_add(1)));
}

pub struct Counting;

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counter is only an atomic increment.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        counted();
        // SAFETY: same contract as this function's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        counted();
        // SAFETY: same contract as this function's.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        counted();
        // SAFETY: same contract as this function's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as this function's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Allocations so far (0 when the counting allocator is not installed).
pub fn count() -> u64 {
    ALLOCATIONS.load(Ordering::Relaxed)
}

/// Allocations so far by the calling thread.
pub fn thread_count() -> u64 {
    THREAD.try_with(|c| c.get()).unwrap_or(0)
}
