//! PID 1's reserve: a mapping made at boot that the allocator hands blocks
//! from when malloc refuses one. PID 1's rare events allocate a little
//! and cannot fail half-way (a probation's revert puts a definition
//! back, a removed unit's cgroup is remembered), and a refused
//! allocation aborts PID 1: a kernel panic. Refused is what malloc says
//! at the commit limit under strict overcommit (`vm.overcommit_memory =
//! 2`) or under an address-space limit; the reserve was charged at boot,
//! so its pages can always be had. Untouched, it costs no RAM.
//!
//! First fit over a small table of the blocks out, sorted by address,
//! under a spin lock (PID 1 allocates from one thread; its children on
//! spawn slots never allocate): a block freed leaves a hole the next one
//! that fits takes, whatever else stays out. Blocks asked for with a way
//! to do without (`zeroed`, `try_box`, a read's `try_reserve`: a
//! connection's buffers, an output ring, a file) are not served from
//! it, so that they cannot drain it.

use core::cell::{Cell, UnsafeCell};
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// Bytes of PID 1's reserve: the largest event measured (a rejected
/// definition whose filter differs put back: about 13 KB, docs/field.md)
/// a few times over.
pub const BYTES: usize = 64 * 1024;
/// Blocks out at once, at most: a rare event's few, a few times over.
const BLOCKS: usize = 64;

/// The blocks out: (offset, bytes), the first `n` sorted by offset.
struct Table {
    out: [(usize, usize); BLOCKS],
    n: usize,
}

pub struct Reserve {
    /// The mapping's address; 0 until armed.
    base: AtomicUsize,
    len: AtomicUsize,
    lock: AtomicBool,
    table: UnsafeCell<Table>,
    /// Blocks ever handed out, for the loop's warning.
    served: AtomicU64,
}

// SAFETY: `table` is only touched under `lock` (`locked`); the rest are
// atomics.
unsafe impl Sync for Reserve {}

thread_local! {
    // Set while a caller that can do without the block asks for it.
    static OPTIONAL: Cell<bool> = const { Cell::new(false) };
}

/// `f`'s allocations are ones the caller can do without: the reserve
/// refuses them.
pub fn optional<R>(f: impl FnOnce() -> R) -> R {
    let was = OPTIONAL.try_with(|o| o.replace(true)).unwrap_or(false);
    let r = f();
    let _ = OPTIONAL.try_with(|o| o.set(was));
    r
}

impl Default for Reserve {
    fn default() -> Reserve {
        Reserve::new()
    }
}

impl Reserve {
    pub const fn new() -> Reserve {
        Reserve {
            base: AtomicUsize::new(0),
            len: AtomicUsize::new(0),
            lock: AtomicBool::new(false),
            table: UnsafeCell::new(Table {
                out: [(0, 0); BLOCKS],
                n: 0,
            }),
            served: AtomicU64::new(0),
        }
    }

    /// Serves from the `len` bytes at `base` from now on (once: a second
    /// call is ignored and says false).
    ///
    /// # Safety
    ///
    /// The bytes are writable, used by nothing else, and stay mapped for
    /// as long as the reserve is.
    pub unsafe fn arm(&self, base: usize, len: usize) -> bool {
        if base == 0 || self.base.load(Ordering::Acquire) != 0 {
            return false;
        }
        self.len.store(len, Ordering::Relaxed);
        self.base
            .compare_exchange(0, base, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// `f` on the table, under the lock.
    fn locked<R>(&self, f: impl FnOnce(&mut Table) -> R) -> R {
        while self
            .lock
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            core::hint::spin_loop();
        }
        // SAFETY: the lock is held: no other reference to the table.
        let r = f(unsafe { &mut *self.table.get() });
        self.lock.store(false, Ordering::Release);
        r
    }

    /// Whether `p` is one of the reserve's blocks.
    pub fn owns(&self, p: *mut u8) -> bool {
        let base = self.base.load(Ordering::Acquire);
        let at = p as usize;
        base != 0 && at >= base && at - base < self.len.load(Ordering::Relaxed)
    }

    /// A block of `size` bytes aligned to `align` (a power of two), or
    /// null: unarmed, asked for optionally, or no room left.
    pub fn take(&self, size: usize, align: usize) -> *mut u8 {
        let base = self.base.load(Ordering::Acquire);
        if base == 0 || OPTIONAL.try_with(|o| o.get()).unwrap_or(true) {
            return core::ptr::null_mut();
        }
        let (len, size) = (self.len.load(Ordering::Relaxed), size.max(1));
        let at = self.locked(|t| {
            if t.n >= BLOCKS {
                return None;
            }
            // The first gap, from the bottom, the block fits in.
            let mut from = 0usize;
            let mut i = 0;
            let start = loop {
                let start = (base + from).checked_next_multiple_of(align.max(1))? - base;
                let limit = t.out.get(..t.n)?.get(i).map_or(len, |b| b.0);
                if start.checked_add(size)? <= limit {
                    break start;
                }
                let b = t.out.get(..t.n)?.get(i)?;
                from = b.0 + b.1;
                i += 1;
            };
            let s = t.out.get_mut(i..=t.n)?;
            shift(s.iter_mut().rev());
            *s.first_mut()? = (start, size);
            t.n += 1;
            Some(start)
        });
        match at {
            Some(start) => {
                self.served.fetch_add(1, Ordering::Relaxed);
                (base + start) as *mut u8
            }
            None => core::ptr::null_mut(),
        }
    }

    /// The block at `p` made `new_size` bytes where it is, if the next
    /// block out (or the end) leaves room and, to grow, it was not asked
    /// optionally: true if so.
    pub fn grow_in_place(&self, p: *mut u8, new_size: usize) -> bool {
        let off = (p as usize).wrapping_sub(self.base.load(Ordering::Acquire));
        let (len, new_size) = (self.len.load(Ordering::Relaxed), new_size.max(1));
        let optional = OPTIONAL.try_with(|o| o.get()).unwrap_or(true);
        self.locked(|t| {
            let out = t.out.get_mut(..t.n)?;
            let i = out.iter().position(|b| b.0 == off)?;
            let limit = out.get(i + 1).map_or(len, |b| b.0);
            let grows = new_size > out.get(i)?.1;
            if off.checked_add(new_size)? > limit || (grows && optional) {
                return None;
            }
            out.get_mut(i)?.1 = new_size;
            Some(())
        })
        .is_some()
    }

    /// The block at `p` given back.
    pub fn give(&self, p: *mut u8) {
        let off = (p as usize).wrapping_sub(self.base.load(Ordering::Acquire));
        self.locked(|t| {
            let i = t.out.get(..t.n)?.iter().position(|b| b.0 == off)?;
            shift(t.out.get_mut(i..t.n)?.iter_mut());
            t.n -= 1;
            Some(())
        });
    }

    /// Blocks handed out so far.
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }

    /// Blocks handed out so far, and the bytes of those out now (summed
    /// from the table: asked only when something was served).
    pub fn usage(&self) -> (u64, usize) {
        let used = self.locked(|t| t.out.get(..t.n).map_or(0, |o| o.iter().map(|b| b.1).sum()));
        (self.served(), used)
    }
}

/// Each block in `it` moved one place back along it (the first one's
/// value dropped, the last one's left as it was): the blocks out moved
/// to open or close a slot. Not `rotate_left`/`rotate_right`, whose
/// general rotation was 432 bytes; the slot this leaves stale is the
/// one overwritten (an add) or past the blocks out (a give), never read.
fn shift<'a>(mut it: impl Iterator<Item = &'a mut (usize, usize)>) {
    if let Some(mut to) = it.next() {
        for from in it {
            *to = *from;
            to = from;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{optional, Reserve, BLOCKS};

    fn armed(buf: &mut [u64]) -> Reserve {
        let r = Reserve::new();
        // SAFETY: the test's own buffer, which outlives the reserve's use.
        assert!(unsafe { r.arm(buf.as_mut_ptr() as usize, buf.len() * 8) });
        r
    }

    /// Blocks are aligned, apart, and within the reserve; past its end it
    /// says no; once all are back, all of it is there again.
    #[test]
    fn blocks_are_cut_apart_until_the_reserve_is_spent() {
        let mut buf = vec![0u64; 128];
        let r = armed(&mut buf);
        let a = r.take(10, 8);
        let b = r.take(3, 64);
        let c = r.take(1, 1);
        for (p, align) in [(a, 8), (b, 64), (c, 1)] {
            assert!(!p.is_null() && r.owns(p));
            assert_eq!(p as usize % align, 0);
        }
        // Apart: c, first fit, in the gap a's alignment left below b.
        let mut spans = [(a as usize, 10), (b as usize, 3), (c as usize, 1)];
        spans.sort();
        assert!(
            spans.windows(2).all(|w| w[0].0 + w[0].1 <= w[1].0),
            "{spans:?}"
        );
        assert_eq!(c as usize, a as usize + 10);
        assert!(r.take(1024, 8).is_null(), "more than there is");
        assert!(!r.owns(buf.as_mut_ptr().wrapping_add(128).cast()));
        r.give(a);
        r.give(c);
        assert_eq!(r.usage(), (3, 3), "b is still out");
        r.give(b);
        assert_eq!(r.usage(), (3, 0));
        let whole = r.take(1024, 8);
        assert_eq!(whole as usize, buf.as_ptr() as usize);
    }

    /// A block freed leaves a hole the next that fits takes, while
    /// another block stays out for good (a definition put back): events
    /// that free in any order do not wear the reserve down.
    #[test]
    fn holes_are_taken_again_while_a_block_stays_out() {
        let mut buf = vec![0u64; 1024];
        let r = armed(&mut buf);
        let kept = r.take(64, 8);
        for event in 0..10_000 {
            let big = r.take(1000, 8);
            let small = r.take(100, 8);
            assert!(!big.is_null() && !small.is_null(), "event {event}");
            r.give(big);
            r.give(small);
        }
        assert_eq!(r.usage().1, 64);
        let strings: Vec<_> = (0..8).map(|_| r.take(40, 8)).collect();
        let list = r.take(8 * 24, 8);
        for p in strings.iter().chain([&list]) {
            assert!(!p.is_null());
            r.give(*p);
        }
        assert_eq!(
            r.take(8192 - 64, 8) as usize,
            kept as usize + 64,
            "all after it free"
        );
    }

    /// A block grows where it is while the next block out leaves room,
    /// and shrinks where it is.
    #[test]
    fn a_block_grows_up_to_the_next() {
        let mut buf = vec![0u64; 128];
        let r = armed(&mut buf);
        let a = r.take(16, 8);
        let b = r.take(16, 8);
        assert!(!r.grow_in_place(a, 32), "b is in the way");
        assert!(r.grow_in_place(a, 8));
        assert!(r.grow_in_place(a, 16));
        assert!(r.grow_in_place(b, 64));
        assert!(!r.grow_in_place(b, 2048), "past the end");
        assert!(!optional(|| r.grow_in_place(b, 65)), "grown when optional");
        assert!(optional(|| r.grow_in_place(b, 64)));
        assert_eq!(r.usage().1, 80);
        r.give(b);
        r.give(a);
        assert_eq!(r.usage().1, 0);
    }

    /// The table of blocks out is bounded: past it, nothing, room or not.
    #[test]
    fn blocks_out_at_once_are_bounded() {
        let mut buf = vec![0u64; 1024];
        let r = armed(&mut buf);
        let out: Vec<_> = (0..BLOCKS).map(|_| r.take(1, 1)).collect();
        assert!(out.iter().all(|p| !p.is_null()));
        assert!(r.take(1, 1).is_null());
        r.give(out[5]);
        assert_eq!(r.take(1, 1), out[5], "its place again");
    }

    /// An unarmed reserve, and one asked optionally, give nothing.
    #[test]
    fn an_unarmed_or_optional_ask_gets_nothing() {
        assert!(Reserve::new().take(8, 8).is_null());
        let mut buf = vec![0u64; 16];
        let r = armed(&mut buf);
        assert!(optional(|| r.take(8, 8)).is_null());
        assert!(!r.take(8, 8).is_null());
        // SAFETY: a second buffer, never used.
        assert!(!unsafe { r.arm(8, 8) }, "armed once");
    }
}
