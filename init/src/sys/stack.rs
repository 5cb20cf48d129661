//! Giving back the stack pages boot touched. A page of stack, once
//! touched, stays resident for the life of the process; PID 1's steps
//! before its loop (reading and checking unit files, building the table,
//! the first starts) go deeper than a wake-up of the loop does.

/// Pages below this function's own frame kept anyway: the frames of the
/// `madvise` call itself live there.
const MARGIN_PAGES: usize = 2;

/// The main thread's stack: where its mapping starts, and the page size.
/// Found once (reading `/proc/self/maps` allocates); releasing allocates
/// nothing.
#[derive(Clone, Copy, Debug)]
pub struct Stack {
    start: usize,
    page: usize,
}

impl Stack {
    /// The stack of the calling thread if it is the main thread's
    /// `[stack]` mapping.
    pub fn find() -> Option<Stack> {
        let marker = 0u8;
        let here = core::hint::black_box(core::ptr::addr_of!(marker)) as usize;
        // The kernel's own word for it, from the auxiliary vector: musl's
        // getauxval is linked anyway (the CPU features' start-up reads
        // AT_HWCAP), its sysconf, with its table of every name, would
        // cost 1 KB.
        // SAFETY: getauxval only reads the auxiliary vector the kernel
        // passed at exec; for a type it lacks it returns 0.
        let page = usize::try_from(unsafe { libc::getauxval(libc::AT_PAGESZ) }).ok()?;
        if !page.is_power_of_two() {
            return None;
        }
        let maps = crate::sys::file::read_string(std::path::Path::new("/proc/self/maps")).ok()?;
        let start = stack_start(&maps, here)?;
        Some(Stack { start, page })
    }

    /// Release the stack pages below the caller's live frames (from the
    /// bottom of the mapping to `MARGIN_PAGES` below this function's
    /// frame). Returns the bytes released. Call it on the thread `find`
    /// ran on, from a frame whose callees have all returned.
    #[inline(never)]
    pub fn release_unused(&self) -> Option<usize> {
        let marker = 0u8;
        let here = core::hint::black_box(core::ptr::addr_of!(marker)) as usize;
        let end = (here & !(self.page - 1)).checked_sub(MARGIN_PAGES.checked_mul(self.page)?)?;
        let len = end.checked_sub(self.start).filter(|&l| l > 0)?;
        // SAFETY: [start, end) is page-aligned (`start` begins a mapping)
        // and inside the `[stack]` mapping that holds this frame (`find`
        // checked it on this thread), below every live frame: this
        // function's own frame is above `end` by `MARGIN_PAGES`, deeper
        // calls have returned, and nothing else runs on this stack below
        // the stack pointer (PID 1 blocks every signal and reads them from
        // a signalfd). MADV_DONTNEED on private anonymous memory only
        // drops contents no one holds; a page touched again comes back
        // zeroed. munlock first: PID 1 locks the mappings it has at boot
        // (`alloc::lock_when_touched`), the stack among them, and a locked
        // range refuses MADV_DONTNEED; munlock only changes that flag.
        let r = unsafe {
            libc::munlock(self.start as *const libc::c_void, len);
            libc::madvise(self.start as *mut libc::c_void, len, libc::MADV_DONTNEED)
        };
        (r == 0).then_some(len)
    }
}

/// The start of the `[stack]` mapping of `maps` (`/proc/self/maps`), if
/// it holds `addr`.
fn stack_start(maps: &str, addr: usize) -> Option<usize> {
    let line = maps.lines().find(|l| l.ends_with("[stack]"))?;
    let range = line.split_whitespace().next()?;
    let (lo, hi) = range.split_once('-')?;
    let lo = usize::from_str_radix(lo, 16).ok()?;
    let hi = usize::from_str_radix(hi, 16).ok()?;
    (lo..hi).contains(&addr).then_some(lo)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stack_mapping_is_found_only_around_the_address() {
        let maps = "00400000-0047b000 r-xp 00000000 00:02 301 /sbin/init\n\
                    ffffc90be000-ffffc90df000 rw-p 00000000 00:00 0                          [stack]\n";
        assert_eq!(stack_start(maps, 0xffffc90d0000), Some(0xffffc90be000));
        assert_eq!(stack_start(maps, 0x00410000), None);
        assert_eq!(stack_start("", 0xffffc90d0000), None);
    }

    /// A test thread's stack is not `[stack]` (the main thread's), so
    /// there is nothing to release on it.
    #[test]
    fn a_thread_that_is_not_main_finds_no_stack_to_release() {
        assert!(Stack::find().is_none());
    }
}
