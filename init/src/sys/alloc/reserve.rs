//! PID 1's reserve: a mapping made at boot that the allocator hands blocks
//! from when malloc refuses one. PID 1's rare events allocate a little
//! and cannot fail half-way (a probation's revert puts a definition
//! back, a removed unit's cgroup is remembered), and a refused
//! allocation aborts PID 1: a kernel panic. Refused is what malloc says
//! at the commit limit under strict overcommit (`vm.overcommit_memory =
//! 2`) or under an address-space limit; the reserve was charged at boot,
//! so its pages can always be had. Untouched, it costs no RAM.
//!
//! A bump allocator: blocks are cut from the bottom up, the top comes
//! back down when the topmost block is freed, and all of it when the
//! last block is. Blocks asked for with a way to do without (`zeroed`,
//! `try_box`: a connection's buffers, an output ring) are not served
//! from it, so that they cannot drain it.

use core::cell::Cell;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Bytes of PID 1's reserve: the largest event measured (a rejected
/// definition whose filter differs put back: about 13 KB, docs/field.md)
/// a few times over.
pub const BYTES: usize = 64 * 1024;

pub struct Reserve {
    /// The mapping's address; 0 until armed.
    base: AtomicUsize,
    len: AtomicUsize,
    /// Low half: bytes cut so far (the top); high half: blocks out.
    state: AtomicU64,
    /// Blocks ever handed out, for the loop's warning.
    served: AtomicU64,
}

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

fn pack(top: usize, out: u64) -> u64 {
    (out << 32) | top as u64
}

fn unpack(st: u64) -> (usize, u64) {
    ((st & 0xffff_ffff) as usize, st >> 32)
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
            state: AtomicU64::new(0),
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
        let len = len.min(u32::MAX as usize);
        if base == 0 || self.base.load(Ordering::Acquire) != 0 {
            return false;
        }
        self.len.store(len, Ordering::Relaxed);
        self.base
            .compare_exchange(0, base, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Whether `p` is one of the reserve's blocks.
    pub fn owns(&self, p: *mut u8) -> bool {
        let base = self.base.load(Ordering::Acquire);
        let at = p as usize;
        base != 0 && at >= base && at - base < self.len.load(Ordering::Relaxed)
    }

    /// A block of `layout`, or null: unarmed, asked for optionally, or no
    /// room left.
    pub fn take(&self, size: usize, align: usize) -> *mut u8 {
        let base = self.base.load(Ordering::Acquire);
        if base == 0 || OPTIONAL.try_with(|o| o.get()).unwrap_or(true) {
            return core::ptr::null_mut();
        }
        let len = self.len.load(Ordering::Relaxed);
        let mut st = self.state.load(Ordering::Acquire);
        loop {
            let (top, out) = unpack(st);
            // `align` is a power of two (a `Layout`'s).
            let Some(start) = (base + top)
                .checked_next_multiple_of(align.max(1))
                .map(|a| a - base)
            else {
                return core::ptr::null_mut();
            };
            let end = match start.checked_add(size.max(1)) {
                Some(e) if e <= len => e,
                _ => return core::ptr::null_mut(),
            };
            match self.state.compare_exchange_weak(
                st,
                pack(end, out + 1),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    self.served.fetch_add(1, Ordering::Relaxed);
                    return (base + start) as *mut u8;
                }
                Err(now) => st = now,
            }
        }
    }

    /// The block at `p` of `size` bytes, made `new_size` where it is if it
    /// is the topmost and there is room: true if so.
    pub fn grow_in_place(&self, p: *mut u8, size: usize, new_size: usize) -> bool {
        let off = (p as usize).wrapping_sub(self.base.load(Ordering::Acquire));
        let len = self.len.load(Ordering::Relaxed);
        let mut st = self.state.load(Ordering::Acquire);
        loop {
            let (top, out) = unpack(st);
            let end = off.saturating_add(new_size.max(1));
            if off.saturating_add(size.max(1)) != top || end > len {
                return false;
            }
            match self.state.compare_exchange_weak(
                st,
                pack(end, out),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(now) => st = now,
            }
        }
    }

    /// The block at `p` of `size` bytes given back.
    pub fn give(&self, p: *mut u8, size: usize) {
        let off = (p as usize).wrapping_sub(self.base.load(Ordering::Acquire));
        let mut st = self.state.load(Ordering::Acquire);
        loop {
            let (top, out) = unpack(st);
            let new = match out {
                0 | 1 => pack(0, 0),
                _ if off.saturating_add(size.max(1)) == top => pack(off, out - 1),
                _ => pack(top, out - 1),
            };
            match self
                .state
                .compare_exchange_weak(st, new, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return,
                Err(now) => st = now,
            }
        }
    }

    /// Blocks handed out so far, and the bytes cut now.
    pub fn usage(&self) -> (u64, usize) {
        let (top, _) = unpack(self.state.load(Ordering::Acquire));
        (self.served.load(Ordering::Relaxed), top)
    }
}

#[cfg(test)]
mod tests {
    use super::{optional, Reserve};

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
        assert!(b as usize >= a as usize + 10 && c as usize >= b as usize + 3);
        assert!(r.take(1024, 8).is_null(), "more than there is");
        assert!(!r.owns(buf.as_mut_ptr().wrapping_add(128).cast()));
        r.give(a, 10);
        r.give(c, 1);
        assert!(r.usage().1 > 0, "b is still out");
        r.give(b, 3);
        assert_eq!(r.usage(), (3, 0));
        let whole = r.take(1024, 8);
        assert_eq!(whole as usize, buf.as_ptr() as usize);
    }

    /// The topmost block freed gives its bytes back at once; one below
    /// it waits for the last block out.
    #[test]
    fn the_topmost_block_comes_back_at_once() {
        let mut buf = vec![0u64; 128];
        let r = armed(&mut buf);
        let a = r.take(100, 8);
        let b = r.take(100, 8);
        r.give(b, 100);
        assert_eq!(r.take(100, 8), b, "b's bytes again");
        r.give(a, 100);
        assert!(r.usage().1 >= 200, "a was not on top");
    }

    /// The topmost block grows where it is while there is room; another
    /// does not.
    #[test]
    fn only_the_topmost_block_grows_in_place() {
        let mut buf = vec![0u64; 128];
        let r = armed(&mut buf);
        let a = r.take(16, 8);
        let b = r.take(16, 8);
        assert!(!r.grow_in_place(a, 16, 32));
        assert!(r.grow_in_place(b, 16, 64));
        assert!(!r.grow_in_place(b, 64, 2048), "past the end");
        r.give(b, 64);
        assert_eq!(r.usage().1, 16);
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
