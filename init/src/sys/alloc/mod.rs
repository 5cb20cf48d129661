//! A counting allocator, so PID 1 can check at run time that its loop
//! does not allocate (the binary installs it as the global allocator;
//! with `wren.debug`, a wake-up that allocated is logged).

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

pub mod reserve;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
/// Bytes handed out and not given back, as the layouts asked for them
/// (musl's own headers and free lists not counted): unlike the pages the
/// kernel counts, this moves only when PID 1's live data does, so a leak
/// of a byte a restart shows as such (the soak, docs/field.md).
static LIVE: AtomicUsize = AtomicUsize::new(0);

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

/// `p`, a block of `size` bytes or null, counted as live if not null.
fn held(p: *mut u8, size: usize) -> *mut u8 {
    if !p.is_null() {
        LIVE.fetch_add(size, Ordering::Relaxed);
    }
    p
}

pub struct Counting;

/// What `malloc` aligns every block to, at the least: two words (std's
/// `MIN_ALIGN` on the 64-bit targets; musl aligns to 16 bytes on every
/// target). A layout aligned to no more is a plain `malloc`, `calloc` or
/// `realloc`, whatever its size.
const MALLOC_ALIGN: usize = 2 * std::mem::size_of::<usize>();

/// A block aligned to more than `MALLOC_ALIGN`, zeroed if asked: `malloc`
/// of its size and its alignment, the address `malloc` gave stored in the
/// word below the one handed out (there are at least `MALLOC_ALIGN` bytes
/// below it).
/// In place of std's `posix_memalign` path, so that musl's
/// `aligned_alloc` (750 bytes) is not linked for alignments wren does
/// not use.
///
/// # Safety
///
/// `layout.align()` is more than `MALLOC_ALIGN` (a power of two).
#[cold]
unsafe fn over_aligned(layout: Layout, zeroed: bool) -> *mut u8 {
    let align = layout.align();
    let Some(total) = layout.size().checked_add(align) else {
        return std::ptr::null_mut();
    };
    // SAFETY: malloc of a non-zero size.
    let raw = unsafe { libc::malloc(total) }.cast::<u8>();
    if raw.is_null() {
        return raw;
    }
    // `raw` is `MALLOC_ALIGN`-aligned and `align` at least twice that:
    // the offset to the next multiple of `align` past `raw` is between
    // `MALLOC_ALIGN` (two words) and `align`, so the block and the word
    // below it lie within the `total` bytes.
    let off = align - (raw as usize & (align - 1));
    // SAFETY: `off <= align`, within the allocation (see above).
    let p = unsafe { raw.add(off) };
    // SAFETY: the word below `p` is at least a word past `raw`, inside
    // the allocation, and aligned (`p` is aligned to `align`).
    unsafe { p.cast::<*mut u8>().sub(1).write(raw) };
    if zeroed {
        // SAFETY: `p` has `layout.size()` bytes of the allocation.
        unsafe { p.write_bytes(0, layout.size()) };
    }
    p
}

/// PID 1's reserve (`reserve`), armed at boot (`arm_reserve`).
static RESERVE: reserve::Reserve = reserve::Reserve::new();

/// A block of `layout` from malloc, or null; zeroed if asked.
///
/// # Safety
///
/// `layout`'s size is not zero.
unsafe fn from_malloc(layout: Layout, zeroed: bool) -> *mut u8 {
    match (layout.align() <= MALLOC_ALIGN, zeroed) {
        // SAFETY: malloc of the layout's non-zero size.
        (true, false) => unsafe { libc::malloc(layout.size()).cast() },
        // SAFETY: calloc of the layout's non-zero size.
        (true, true) => unsafe { libc::calloc(layout.size(), 1).cast() },
        // SAFETY: the alignment is above `MALLOC_ALIGN`.
        (false, _) => unsafe { over_aligned(layout, zeroed) },
    }
}

/// A block of `layout` from malloc, or from the reserve when malloc
/// refuses it; zeroed if asked. Not counted.
///
/// # Safety
///
/// `layout`'s size is not zero.
unsafe fn fresh(layout: Layout, zeroed: bool) -> *mut u8 {
    // SAFETY: the caller's non-zero size.
    let p = unsafe { from_malloc(layout, zeroed) };
    if !p.is_null() {
        return p;
    }
    let p = RESERVE.take(layout.size(), layout.align());
    if zeroed && !p.is_null() {
        // SAFETY: a reserve block of `layout.size()` bytes, ours now (it
        // may hold what an earlier block left).
        unsafe { p.write_bytes(0, layout.size()) };
    }
    p
}

// SAFETY: every block comes from musl's allocator (one aligned above
// `MALLOC_ALIGN` from a larger `malloc`, freed through the address kept
// below it) or from the reserve, which owns the addresses of its mapping
// and no other, and gets its blocks back; the counters are atomic
// increments.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        counted();
        // SAFETY: `GlobalAlloc::alloc`'s contract: a non-zero size.
        held(unsafe { fresh(layout, false) }, layout.size())
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        counted();
        // SAFETY: as `alloc`.
        held(unsafe { fresh(layout, true) }, layout.size())
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        counted();
        // SAFETY: `GlobalAlloc::realloc`'s contract: the new layout is valid.
        let new = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        let p = if RESERVE.owns(ptr) {
            // A reserve block: back to malloc when it grows and malloc
            // gives again, else in place if there is room, else moved.
            let grows = new_size > layout.size();
            // SAFETY: a non-zero size (the contract again).
            let out = grows.then(|| unsafe { from_malloc(new, false) });
            match out.filter(|p| !p.is_null()) {
                Some(p) => p,
                None if RESERVE.grow_in_place(ptr, new_size) => {
                    LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
                    return held(ptr, new_size);
                }
                // SAFETY: as above.
                None => unsafe { fresh(new, false) },
            }
        } else {
            if layout.align() <= MALLOC_ALIGN {
                // SAFETY: `ptr` came from malloc, calloc or realloc (above).
                let p: *mut u8 = unsafe { libc::realloc(ptr.cast(), new_size).cast() };
                if !p.is_null() {
                    LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
                    return held(p, new_size);
                }
            }
            // Over-aligned, or refused: a new block (the reserve's when
            // malloc refuses it).
            // SAFETY: as above.
            unsafe { fresh(new, false) }
        };
        // A new block, the bytes moved.
        let p = held(p, new_size);
        if !p.is_null() {
            // SAFETY: both blocks hold the smaller of the two sizes; they
            // are distinct allocations.
            unsafe { std::ptr::copy_nonoverlapping(ptr, p, layout.size().min(new_size)) };
            // SAFETY: `ptr` was allocated with `layout`.
            unsafe { self.dealloc(ptr, layout) };
        }
        p
    }

    #[inline(never)]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        if RESERVE.owns(ptr) {
            RESERVE.give(ptr);
            return;
        }
        let raw = if layout.align() <= MALLOC_ALIGN {
            ptr
        } else {
            // SAFETY: `over_aligned` kept `malloc`'s address in the word
            // below the block.
            unsafe { ptr.cast::<*mut u8>().sub(1).read() }
        };
        // SAFETY: `raw` came from malloc, calloc or realloc.
        unsafe { libc::free(raw.cast()) }
    }
}

/// Maps PID 1's reserve (`reserve::BYTES`), which the allocator serves
/// from when malloc refuses a block: charged to the commit limit now,
/// no page touched. False if it could not be mapped (PID 1 goes on
/// without).
pub fn arm_reserve() -> bool {
    let len = reserve::BYTES;
    let Some(p) = map_anon(len) else {
        return false;
    };
    // SAFETY: the mapping is writable, only the reserve uses it, and it is
    // never unmapped.
    let armed = unsafe { RESERVE.arm(p as usize, len) };
    if !armed {
        // SAFETY: the mapping just made, which nothing uses.
        unsafe { libc::munmap(p, len) };
    }
    armed
}

/// Reserve blocks already said (`reserve_news`).
static RESERVE_TOLD: AtomicU64 = AtomicU64::new(0);

/// Blocks the reserve has served since the last call, and its bytes in
/// use now; None if it served none.
pub fn reserve_news() -> Option<(u64, usize)> {
    // One load a wake-up; the table is read only when it served.
    let told = RESERVE_TOLD.load(Ordering::Relaxed);
    if RESERVE.served() == told {
        return None;
    }
    let (served, used) = RESERVE.usage();
    RESERVE_TOLD.store(served, Ordering::Relaxed);
    Some((served.wrapping_sub(told), used))
}

/// `len` zero bytes, or none when memory is short (`log_ring::Zeroed`):
/// from the allocator's calloc, which does not write a block the kernel
/// has just mapped (musl's mallocng: any above its mmap threshold, some
/// 128 KiB; glibc: any it mmaps), so the kernel backs its pages only as
/// they are written: a 1 MiB ring that holds a line takes a page of RAM,
/// not 256. (Strict overcommit still charges the whole block to the
/// commit limit at the allocation, which is where it can fail.)
pub fn zeroed(len: usize) -> Option<Box<[u8]>> {
    if len == 0 {
        return Some(Box::default());
    }
    let layout = Layout::array::<u8>(len).ok()?;
    // SAFETY: the layout's size is not zero. Optional: never the
    // reserve's (a connection's buffers or a ring would drain it).
    let p = reserve::optional(|| unsafe { std::alloc::alloc_zeroed(layout) });
    if p.is_null() {
        return None;
    }
    // SAFETY: `p` is a block of `len` bytes from the global allocator,
    // with the layout that a `Box<[u8]>` of `len` bytes frees it with; its
    // bytes are zero (initialised `u8`s); nothing else owns it.
    Some(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(p, len)) })
}

/// `v` in a box, or `None` where the allocator refuses the block: a
/// `Box::new` refused aborts the process, PID 1's too, and what PID 1
/// boxes in its loop (a failed start's reason: the start may have failed
/// for want of memory) can go without.
pub fn try_box<T>(v: T) -> Option<Box<T>> {
    let layout = Layout::new::<T>();
    if layout.size() == 0 {
        return Some(Box::new(v));
    }
    // SAFETY: the layout's size is not zero. Optional, as `zeroed`.
    let p = reserve::optional(|| unsafe { std::alloc::alloc(layout) }).cast::<T>();
    if p.is_null() {
        return None;
    }
    // SAFETY: `p` is a block of `T`'s layout from the global allocator,
    // which a `Box<T>` frees with that layout; the write initialises it
    // (nothing to drop there before); nothing else owns it.
    unsafe {
        p.write(v);
        Some(Box::from_raw(p))
    }
}

/// Every page of the mappings this process has now (its executable's
/// text and data, its stack, the heap so far) kept in memory once it is
/// touched (`mlockall(MCL_CURRENT | MCL_ONFAULT)`; none is brought in for
/// it, so the resident memory is what it was). Under memory pressure the
/// kernel would otherwise evict PID 1's text and read it again from the
/// card at its next wake-up, a card that may not answer then. Not the
/// mappings to come (no `MCL_FUTURE`): the spawn slots' stacks and the
/// heap's growth give their pages back with `MADV_DONTNEED`, which a
/// locked mapping refuses (with `MCL_FUTURE`, PID 1's `Anonymous` grew by
/// 40 KiB isolated and 136 KiB bare at 100 units). So called before
/// those are mapped; the stack, locked with the rest, is unlocked where
/// `stack::Stack::release_unused` gives its pages back.
/// (Locking only the executable's mappings, with `mlock2`, cost an
/// isolated boot of 100 units 2.5 ms more on the icount clock, 25 µs a
/// unit, and a restart 12 µs, for reasons not traced; this, nothing
/// measurable.) Not inherited by a fork, cleared by an exec. EINVAL
/// before Linux 4.4 (no MCL_ONFAULT).
pub fn lock_when_touched() -> Result<(), rustix::io::Errno> {
    // SAFETY: mlockall takes flags only and changes no memory's contents.
    let r = unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_ONFAULT) };
    match r {
        0 => Ok(()),
        _ => Err(crate::sys::clone::last_errno()),
    }
}

/// Whether `len` more bytes of memory could be had now: a private
/// writable mapping of them, made and unmade at once, untouched. It is
/// charged as the heap's next growth would be, against the commit limit
/// under strict overcommit (`vm.overcommit_memory = 2`) and against
/// `RLIMIT_AS`, and refused where that growth would be. For work made of
/// many infallible allocations (a reload, a re-exec's state), any of
/// which refused would abort PID 1 (a kernel panic): asked first, it is
/// refused whole instead.
pub fn can_map(len: usize) -> Result<(), rustix::io::Errno> {
    let p = map_anon(len.max(1)).ok_or(rustix::io::Errno::NOMEM)?;
    // SAFETY: the mapping just made, which nothing else knows of.
    unsafe { libc::munmap(p, len.max(1)) };
    Ok(())
}

/// A new private, writable, anonymous mapping of `len` (non-zero) bytes,
/// placed by the kernel and charged as such; None if refused.
fn map_anon(len: usize) -> Option<*mut libc::c_void> {
    let (prot, flags) = (
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
    );
    // SAFETY: no address hint: the mapping overlaps nothing of ours; the
    // result is checked.
    let p = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, flags, -1, 0) };
    (p != libc::MAP_FAILED).then_some(p)
}

/// Allocations so far (0 when the counting allocator is not installed).
pub fn count() -> u64 {
    ALLOCATIONS.load(Ordering::Relaxed)
}

/// Bytes allocated and not freed (0 when the counting allocator is not
/// installed).
pub fn live() -> usize {
    LIVE.load(Ordering::Relaxed)
}

/// Allocations so far by the calling thread.
pub fn thread_count() -> u64 {
    THREAD.try_with(|c| c.get()).unwrap_or(0)
}

/// For host tests: a value in an anonymous mapping of its own, unmapped
/// when dropped, so that a read of it after that faults. (A block of the
/// allocator's may stay mapped: glibc raises its mmap threshold once an
/// mmapped block is freed, so a large `Vec` freed later in a test run
/// went back to the heap, and a stale read of it read on.)
#[cfg(test)]
pub(crate) struct OwnMapping<T> {
    at: *mut T,
    len: usize,
}

#[cfg(test)]
impl<T> OwnMapping<T> {
    pub(crate) fn new(v: T) -> Self {
        let len = std::mem::size_of::<T>().max(1).next_multiple_of(1 << 16);
        assert!(std::mem::align_of::<T>() <= 4096);
        let at = map_anon(len).expect("a mapping").cast::<T>();
        // SAFETY: `at` is page-aligned (at least `T`'s alignment), and the
        // mapping writable and large enough for one `T`.
        unsafe { at.write(v) };
        OwnMapping { at, len }
    }
}

#[cfg(test)]
impl<T> std::ops::Deref for OwnMapping<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: written by `new`, valid until the drop.
        unsafe { &*self.at }
    }
}

#[cfg(test)]
impl<T> Drop for OwnMapping<T> {
    fn drop(&mut self) {
        // SAFETY: the `T` written by `new`, dropped once, then its
        // mapping, which nothing else uses, unmapped.
        unsafe {
            std::ptr::drop_in_place(self.at);
            libc::munmap(self.at.cast(), self.len);
        }
    }
}

/// For host tests: the lib tests' allocator is the system's, except that
/// `short_of_memory` makes the calling thread's large allocations fail, as
/// they do at the commit limit under strict overcommit
/// (`vm.overcommit_memory = 2`). It counts as the binary's does, so that
/// `thread_count` means the same in a host test.
#[cfg(test)]
mod short {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    thread_local! {
        static FROM: Cell<usize> = const { Cell::new(usize::MAX) };
    }

    fn refused(size: usize) -> bool {
        FROM.try_with(|f| size >= f.get()).unwrap_or(false)
    }

    struct Short;

    #[global_allocator]
    static ALLOC: Short = Short;

    // SAFETY: every block comes from `System` and goes back to it; a
    // refused one is a null pointer, as `GlobalAlloc` allows.
    unsafe impl GlobalAlloc for Short {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            super::counted();
            if refused(layout.size()) {
                return std::ptr::null_mut();
            }
            // SAFETY: the caller's `GlobalAlloc::alloc` contract.
            unsafe { System.alloc(layout) }
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            super::counted();
            if refused(layout.size()) {
                return std::ptr::null_mut();
            }
            // SAFETY: the caller's `GlobalAlloc::alloc_zeroed` contract.
            unsafe { System.alloc_zeroed(layout) }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            super::counted();
            if refused(new_size) {
                return std::ptr::null_mut();
            }
            // SAFETY: the caller's `GlobalAlloc::realloc` contract.
            unsafe { System.realloc(ptr, layout, new_size) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: the caller's `GlobalAlloc::dealloc` contract.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    /// `f` run while this thread's allocations of `from` bytes or more
    /// fail.
    pub fn short_of_memory<R>(from: usize, f: impl FnOnce() -> R) -> R {
        let old = FROM.with(|c| c.replace(from));
        let r = f();
        FROM.with(|c| c.set(old));
        r
    }
}

#[cfg(test)]
pub use short::short_of_memory;

/// For host tests: how many pages of the `len` bytes at `p` are in
/// memory (mincore(2)); the range is mapped.
#[cfg(test)]
pub fn resident_pages(p: *const u8, len: usize) -> usize {
    // SAFETY: sysconf reads no memory of ours.
    let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap();
    let start = p as usize & !(page - 1);
    let end = (p as usize + len).next_multiple_of(page);
    let mut pages = vec![0u8; (end - start) / page];
    // SAFETY: mincore reads no byte of the range; it writes one byte a
    // page into `pages`, which has one for each.
    let r = unsafe { libc::mincore(start as *mut libc::c_void, end - start, pages.as_mut_ptr()) };
    assert_eq!(r, 0, "mincore: {}", std::io::Error::last_os_error());
    pages.iter().filter(|&&b| b & 1 != 0).count()
}

#[cfg(test)]
mod tests {
    use super::Counting;
    use std::alloc::{GlobalAlloc, Layout};

    /// A zeroed block is all zero; one the allocator refuses (strict
    /// overcommit at its limit) is None, for PID 1 to go on without it,
    /// not an abort.
    #[test]
    fn a_zeroed_block_is_zero_and_a_refused_one_is_none() {
        let b = super::zeroed(5000).unwrap();
        assert_eq!(b.len(), 5000);
        assert!(b.iter().all(|&x| x == 0));
        assert_eq!(super::zeroed(0).map(|b| b.len()), Some(0));
        assert!(super::short_of_memory(1 << 20, || super::zeroed(1 << 20)).is_none());
        assert!(super::zeroed(usize::MAX).is_none(), "no layout that large");
    }

    /// A mapping the address space has room for can be had; one an
    /// address-space limit refuses cannot (the reload's and re-exec's
    /// check: `pid1::reload`).
    #[test]
    fn a_mapping_past_the_limits_cannot_be_had() {
        assert_eq!(super::can_map(1 << 20), Ok(()));
        assert_eq!(super::can_map(0), Ok(()));
        assert_eq!(
            super::can_map(usize::MAX / 2),
            Err(rustix::io::Errno::NOMEM)
        );
    }

    /// A box holds its value and drops it; one the allocator refuses is
    /// None, not an abort.
    #[test]
    fn a_box_tried_holds_its_value_and_a_refused_one_is_none() {
        let b = super::try_box([7u64; 4]).unwrap();
        assert_eq!(*b, [7; 4]);
        let s = super::try_box(String::from("kept")).unwrap();
        assert_eq!(s.as_str(), "kept");
        assert_eq!(super::try_box(()), Some(Box::new(())));
        assert!(super::short_of_memory(64, || super::try_box([0u8; 64])).is_none());
    }

    /// Where malloc refuses (this process's data and address-space
    /// limits at 0, the C heap's free blocks taken first), the allocator
    /// serves blocks from PID 1's reserve: zeroed when asked even where an
    /// earlier block wrote, shrunk or grown in place when there is room,
    /// moved with their bytes when not, an over-aligned malloc block too;
    /// freed, they go back to the reserve (never to free()), an optional
    /// ask gets nothing, and once malloc gives again a reserve block that
    /// grows moves back to it. Alone in a process: the limits are the
    /// whole process's.
    #[test]
    fn refused_blocks_come_from_the_reserve_and_go_back_to_it() {
        crate::testutil::alone!(refused_blocks_come_from_the_reserve_and_go_back_to_it);
        in_a_child(refused_blocks_in_this_process);
    }

    /// `f` in a forked child with this thread alone in it: libtest's main
    /// thread, which may yet make its first allocation of a wait (a TLS
    /// destructor's) when the limits hold and abort the process, is not
    /// copied. A panic of `f`, or an abort, fails the test.
    fn in_a_child(f: fn()) {
        // SAFETY: fork (libc's: its atfork handling leaves malloc's locks
        // usable in the child); the child runs `f` and `_exit`s, never
        // returning into libtest.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork");
        if pid == 0 {
            let ok = std::panic::catch_unwind(f).is_ok();
            // SAFETY: ends the child, which holds nothing to flush.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        let code = crate::testutil::wait_exit(pid as u32);
        assert_eq!(code, Some(0), "the child's exit");
    }

    fn refused_blocks_in_this_process() {
        use super::{LIVE, RESERVE};
        use std::sync::atomic::Ordering;
        assert!(super::arm_reserve());
        let (big, l) = (
            Layout::from_size_align(64, 64).unwrap(),
            Layout::from_size_align(300, 8).unwrap(),
        );
        let limit = |cur| libc::rlimit {
            rlim_cur: cur,
            rlim_max: libc::RLIM_INFINITY,
        };
        // SAFETY: each block is used within its size and freed with its
        // layout; the raw mallocs that spend the heap are never freed
        // (the process ends); nothing allocates through the global
        // allocator while the limits hold.
        unsafe {
            let over = Counting.alloc(big);
            assert!(!over.is_null() && !RESERVE.owns(over));
            for i in 0..64 {
                over.add(i).write(i as u8 + 1);
            }
            assert_eq!(libc::setrlimit(libc::RLIMIT_DATA, &limit(0)), 0);
            assert_eq!(libc::setrlimit(libc::RLIMIT_AS, &limit(0)), 0);
            for size in [65536usize, 4096]
                .into_iter()
                .chain((1..=256).rev().map(|k| k * 8))
            {
                // black_box: an optimiser deletes a malloc whose block is unused
                // and takes it for a success, and the loop never ends.
                while !core::hint::black_box(libc::malloc(size)).is_null() {}
            }
            let live = LIVE.load(Ordering::Relaxed);
            let a = Counting.alloc(l);
            assert!(RESERVE.owns(a));
            a.write_bytes(0xAA, 300);
            Counting.dealloc(a, l);
            assert_eq!(RESERVE.usage().1, 0);
            let z = Counting.alloc_zeroed(l);
            assert_eq!(z, a, "first fit");
            assert!((0..300).all(|i| z.add(i).read() == 0));
            let b = Counting.alloc(l);
            assert!(RESERVE.owns(b));
            for i in 0..300 {
                z.add(i).write(i as u8);
            }
            let small = Counting.realloc(z, l, 50);
            assert_eq!(small, z, "shrunk in place");
            let moved = Counting.realloc(small, Layout::from_size_align(50, 8).unwrap(), 1000);
            assert!(moved != small && RESERVE.owns(moved), "b is in the way");
            assert!((0..50).all(|i| moved.add(i).read() == i as u8));
            let o2 = Counting.realloc(over, big, 128);
            assert!(RESERVE.owns(o2) && (o2 as usize).is_multiple_of(64));
            assert!((0..64).all(|i| o2.add(i).read() == i as u8 + 1));
            assert!(super::reserve::optional(|| Counting.alloc(l)).is_null());
            Counting.dealloc(o2, Layout::from_size_align(128, 64).unwrap());
            Counting.dealloc(moved, Layout::from_size_align(1000, 8).unwrap());
            Counting.dealloc(b, l);
            assert_eq!(RESERVE.usage().1, 0);
            // `over`, counted before, was freed since.
            assert_eq!(LIVE.load(Ordering::Relaxed) + 64, live);
            // Once malloc gives again, a reserve block that grows goes
            // back to it.
            let kept = Counting.alloc(l);
            kept.write_bytes(7, 300);
            assert!(RESERVE.owns(kept));
            let unlimited = limit(libc::RLIM_INFINITY);
            assert_eq!(libc::setrlimit(libc::RLIMIT_AS, &unlimited), 0);
            assert_eq!(libc::setrlimit(libc::RLIMIT_DATA, &unlimited), 0);
            let back = Counting.realloc(kept, l, 600);
            assert!(!back.is_null() && !RESERVE.owns(back));
            assert!((0..300).all(|i| back.add(i).read() == 7));
            assert_eq!(RESERVE.usage().1, 0);
            Counting.dealloc(back, Layout::from_size_align(600, 8).unwrap());
        }
    }

    /// Blocks of every alignment come back aligned, keep their bytes
    /// through a `realloc` and go back to `free` whole.
    #[test]
    fn blocks_of_every_alignment() {
        for align in [1, 8, 16, 32, 64, 4096] {
            for size in [1, 24, 100] {
                let Ok(layout) = Layout::from_size_align(size, align) else {
                    continue;
                };
                // SAFETY: non-zero sizes; each block is used within its
                // size and freed with the layout it has.
                unsafe {
                    let z = Counting.alloc_zeroed(layout);
                    assert!(!z.is_null() && (z as usize).is_multiple_of(align));
                    assert!(std::slice::from_raw_parts(z, size).iter().all(|&b| b == 0));
                    Counting.dealloc(z, layout);
                    let p = Counting.alloc(layout);
                    assert!(!p.is_null() && (p as usize).is_multiple_of(align));
                    for i in 0..size {
                        p.add(i).write(i as u8);
                    }
                    let q = Counting.realloc(p, layout, size * 3);
                    assert!(!q.is_null() && (q as usize).is_multiple_of(align));
                    for i in 0..size {
                        assert_eq!(q.add(i).read(), i as u8);
                    }
                    let grown = Layout::from_size_align(size * 3, align).unwrap();
                    Counting.dealloc(q, grown);
                }
            }
        }
    }

    /// In a process of its own: the lock stays on this test binary's
    /// pages for the rest of its life. Locked (as
    /// smaps counts it): some of the executable's pages (this code's,
    /// resident), without bringing in the rest; none of a mapping made
    /// after, touched (a spawn slot's stack must give its pages back).
    #[test]
    fn pages_mapped_now_are_locked_when_touched_and_later_ones_not() {
        crate::testutil::alone!(pages_mapped_now_are_locked_when_touched_and_later_ones_not);
        if !rustix::process::getuid().is_root() {
            // RLIMIT_MEMLOCK (8 MiB) counts what is mapped, not touched.
            println!("LOCK-NOW-OK (not root: not run)");
            return;
        }
        super::lock_when_touched().unwrap();
        let later = super::map_anon(1 << 16).unwrap();
        // SAFETY: the mapping just made, 64 KiB, writable.
        unsafe { later.cast::<u8>().write_bytes(1, 1 << 16) };
        let at = format!("{:x}-", later as usize);
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let (mut exe_locked, mut exe_size, mut exe_rss, mut later_locked) =
            (0u64, 0u64, 0u64, None);
        let (mut exe, mut is_later) = (false, false);
        for l in smaps.lines() {
            let mut f = l.split_whitespace();
            let first = f.next().unwrap_or("");
            if first.contains('-') && !first.ends_with(':') {
                exe = f.nth(3).is_some_and(|inode| inode != "0");
                is_later = first.starts_with(&at);
                continue;
            }
            let kb: u64 = f.next().and_then(|v| v.parse().ok()).unwrap_or(0);
            match first {
                "Locked:" if is_later => later_locked = Some(kb),
                "Locked:" if exe => exe_locked += kb,
                "Size:" if exe => exe_size += kb,
                "Rss:" if exe => exe_rss += kb,
                _ => {}
            }
        }
        assert!(exe_locked > 0, "{smaps}");
        assert!(
            exe_rss < exe_size,
            "everything brought in: {exe_rss} of {exe_size} KiB"
        );
        assert_eq!(later_locked, Some(0), "{smaps}");
        println!("LOCK-NOW-OK {exe_locked} KiB locked, {exe_rss} of {exe_size} resident");
    }
}
