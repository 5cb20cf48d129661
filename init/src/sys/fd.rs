//! File descriptors beyond what `OwnedFd` and `BorrowedFd` express: an fd
//! opened once and lent out for the life of the process, and an fd moved
//! to a fixed number for a program about to be exec'd.

use core::sync::atomic::{AtomicI32, Ordering};
use rustix::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use rustix::io::Errno;

const EMPTY: RawFd = -1;
const GAVE_UP: RawFd = -2;

/// An fd kept for as long as the slot lives (a `static` one: the whole
/// process), lent out without a lock. It can also be marked given up, so
/// that a caller stops trying to open it.
pub struct FdSlot(AtomicI32);

/// What a slot holds.
#[derive(Clone, Copy, Debug)]
pub enum Slot<'a> {
    Empty,
    Open(BorrowedFd<'a>),
    GaveUp,
}

impl<'a> Slot<'a> {
    pub fn fd(self) -> Option<BorrowedFd<'a>> {
        match self {
            Slot::Open(fd) => Some(fd),
            Slot::Empty | Slot::GaveUp => None,
        }
    }
}

impl Default for FdSlot {
    fn default() -> Self {
        Self::new()
    }
}

impl FdSlot {
    pub const fn new() -> Self {
        FdSlot(AtomicI32::new(EMPTY))
    }

    pub fn get(&self) -> Slot<'_> {
        Self::slot(self.0.load(Ordering::Acquire))
    }

    fn slot(raw: RawFd) -> Slot<'static> {
        match raw {
            EMPTY => Slot::Empty,
            r if r < 0 => Slot::GaveUp,
            // SAFETY: a non-negative value in the slot was stored by `fill`
            // from an `OwnedFd` whose ownership the slot took; only `drop`
            // closes it, which needs every borrow of the slot to be over.
            // The 'static here is narrowed to the slot's borrow by callers.
            r => Slot::Open(unsafe { BorrowedFd::borrow_raw(r) }),
        }
    }

    /// Keep `fd` for good, unless the slot already holds one (another
    /// thread was first: `fd` is closed) or was given up. Returns what the
    /// slot holds now.
    pub fn fill(&self, fd: OwnedFd) -> Slot<'_> {
        let raw = fd.as_raw_fd();
        match self
            .0
            .compare_exchange(EMPTY, raw, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => {
                // The slot owns it now.
                let _ = fd.into_raw_fd();
                Self::slot(raw)
            }
            Err(theirs) => Self::slot(theirs),
        }
    }

    /// Mark an empty slot as given up; an open one stays open.
    pub fn give_up(&self) {
        let _ = self
            .0
            .compare_exchange(EMPTY, GAVE_UP, Ordering::AcqRel, Ordering::Acquire);
    }
}

impl Drop for FdSlot {
    fn drop(&mut self) {
        let raw = *self.0.get_mut();
        if raw >= 0 {
            // SAFETY: the slot owns this fd (see `slot`), and `&mut self`
            // means no borrow of it is left.
            drop(unsafe { OwnedFd::from_raw_fd(raw) });
        }
    }
}

/// Make fd number `target` a copy of `fd` that stays open across execve
/// (dup2 clears close-on-exec), replacing whatever `target` was.
///
/// For the child between clone3 and execve only: nothing in it uses the
/// old `target` again, and the new one belongs to the program it execs.
pub fn move_for_exec(fd: BorrowedFd<'_>, target: RawFd) -> Result<(), Errno> {
    if target < 0 {
        return Err(Errno::BADF);
    }
    // SAFETY: `target` is not negative. The `OwnedFd` is never dropped
    // (ManuallyDrop), so it closes nothing; dup2 onto it only replaces the
    // file behind the number, which per this function's contract no one in
    // this process uses any more.
    let mut t = core::mem::ManuallyDrop::new(unsafe { OwnedFd::from_raw_fd(target) });
    if fd.as_raw_fd() == target {
        // dup3 (dup2 on aarch64) refuses equal fds; only clear CLOEXEC.
        return rustix::io::fcntl_setfd(t.as_fd(), rustix::io::FdFlags::empty());
    }
    rustix::io::dup2(fd, &mut t)
}

/// `fd` moved to a number of at least `sys::slot::LOW_FDS`, close-on-exec:
/// for an fd PID 1 keeps past a start, out of the numbers a child started
/// through the trampoline gets (`sys::slot`). `fd` itself if the kernel
/// refuses.
pub fn raise(fd: OwnedFd) -> OwnedFd {
    let low = i32::try_from(super::slot::LOW_FDS).unwrap_or(i32::MAX);
    if fd.as_raw_fd() >= low {
        return fd;
    }
    rustix::io::fcntl_dupfd_cloexec(&fd, low).unwrap_or(fd)
}

/// Close every fd above 2 except those of `keep`: for a process forked
/// from PID 1 (a namespace's reaper), which must not hold PID 1's
/// listener, clients, epoll, signalfd or other units' pipes open.
///
/// Every `OwnedFd` the process inherited then names a closed number: the
/// caller uses none of them again and drops none (the reaper ends in
/// `_exit` or execs), and opens nothing that could take such a number.
pub fn close_all_but(keep: &[BorrowedFd<'_>]) {
    let mut from = 3u32;
    // The kept numbers in ascending order, closing the gaps between them.
    while let Some(k) = keep
        .iter()
        .filter_map(|fd| u32::try_from(fd.as_raw_fd()).ok())
        .filter(|&k| k >= from)
        .min()
    {
        if k > from {
            close_range(from, k - 1);
        }
        match k.checked_add(1) {
            Some(next) => from = next,
            None => return,
        }
    }
    close_range(from, u32::MAX);
}

/// Close `fd`'s number in a forked copy of PID 1, under `close_all_but`'s
/// contract: a namespace's reaper's copy of the status pipe, before its
/// grace; the shutdown's sync child's copy of the watchdog.
pub fn close_early(fd: BorrowedFd<'_>) {
    if let Ok(n) = u32::try_from(fd.as_raw_fd()) {
        close_range(n, n);
    }
}

/// Every fd numbered 3 and above made close-on-exec: at a boot's start
/// (not a re-exec's, whose fds are handed over), fds whatever exec'd
/// init left open (an initramfs's script) reached every unit started
/// without a PID namespace of its own. PID 1 opens its own close-on-exec.
pub fn cloexec_inherited() {
    const CLOSE_RANGE_CLOEXEC: usize = 1 << 2;
    // Closes nothing with the flag, only marks: no owner's fd is closed.
    if raw_close_range(3, u32::MAX, CLOSE_RANGE_CLOEXEC).is_ok() {
        return;
    }
    // Before Linux 5.11: the numbers a boot's start may hold, one by one.
    for fd in 3..1024 {
        // SAFETY: only passed to fcntl(F_GETFD/F_SETFD) below, harmless
        // on any number (EBADF when nothing is open there); the borrow
        // ends with the loop's turn.
        let f = unsafe { BorrowedFd::borrow_raw(fd) };
        if let Ok(flags) = rustix::io::fcntl_getfd(f) {
            let _ = rustix::io::fcntl_setfd(f, flags | rustix::io::FdFlags::CLOEXEC);
        }
    }
}

/// close_range(2) itself, with `flags`: its callers say what closing (or
/// marking) those numbers means for their owners. A raw call (`raw`): a
/// reaper on a spawn slot shares PID 1's errno.
fn raw_close_range(first: u32, last: u32, flags: usize) -> Result<usize, Errno> {
    // SAFETY: close_range takes three unsigned ints and touches no memory.
    unsafe {
        super::raw::syscall6(
            libc::SYS_close_range,
            [first as usize, last as usize, flags, 0, 0, 0],
        )
    }
}

/// close_range(2) from `first` to `last`; before Linux 5.9, close(2) on
/// each number below the fd limit.
fn close_range(first: u32, last: u32) {
    if first > last {
        return;
    }
    // Closing numbers that other code holds as `OwnedFd`s is what this
    // function's contract (`close_all_but`) makes that code's caller accept.
    if raw_close_range(first, last, 0).is_ok() {
        return;
    }
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(1024)
        .min(1 << 16);
    let top = u64::from(last).min(limit.saturating_sub(1));
    for fd in u64::from(first)..=top {
        if let Ok(fd) = usize::try_from(fd) {
            // SAFETY: as above; close on a number not open is EBADF and
            // harmless.
            let _ = unsafe { super::raw::syscall6(libc::SYS_close, [fd, 0, 0, 0, 0, 0]) };
        }
    }
}

/// Close fd 0, for a test that checks how missing standard fds are filled.
#[cfg(test)]
pub fn close_stdin() {
    // SAFETY: only called in a test process started for that one test,
    // in which nothing else reads stdin or holds a borrow of fd 0.
    drop(unsafe { rustix::stdio::take_stdin() });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// At a boot's start every inherited fd above 2 is made close-on-exec
    /// (in a process of the test's own: the flag is the process's table).
    #[test]
    fn the_fds_a_boot_inherits_are_made_close_on_exec() {
        let name = "the_fds_a_boot_inherits_are_made_close_on_exec";
        if !crate::testutil::run_alone(module_path!(), name) {
            return;
        }
        let (r, w) = rustix::pipe::pipe().unwrap();
        for fd in [&r, &w] {
            assert!(!rustix::io::fcntl_getfd(fd)
                .unwrap()
                .contains(rustix::io::FdFlags::CLOEXEC));
        }
        super::cloexec_inherited();
        for fd in [&r, &w] {
            assert!(rustix::io::fcntl_getfd(fd)
                .unwrap()
                .contains(rustix::io::FdFlags::CLOEXEC));
        }
        // fds 0-2 are left as they are.
        assert!(!rustix::io::fcntl_getfd(rustix::stdio::stdin())
            .unwrap()
            .contains(rustix::io::FdFlags::CLOEXEC));
    }

    #[test]
    fn a_slot_keeps_the_first_fd_and_closes_it_when_dropped() {
        let slot = FdSlot::new();
        assert!(matches!(slot.get(), Slot::Empty));
        let (r, w) = rustix::pipe::pipe().unwrap();
        let raw = w.as_raw_fd();
        assert_eq!(slot.fill(w).fd().unwrap().as_raw_fd(), raw);
        // A second fill keeps the first fd and closes the newcomer.
        let (_r2, w2) = rustix::pipe::pipe().unwrap();
        assert_eq!(slot.fill(w2).fd().unwrap().as_raw_fd(), raw);
        assert_eq!(slot.get().fd().unwrap().as_raw_fd(), raw);
        slot.give_up();
        assert!(matches!(slot.get(), Slot::Open(_)));
        rustix::io::write(slot.get().fd().unwrap(), b"x").unwrap();
        drop(slot);
        // The write end is closed: the reader sees the byte, then EOF.
        let mut b = [0u8; 2];
        assert_eq!(rustix::io::read(&r, &mut b).unwrap(), 1);
        assert_eq!(rustix::io::read(&r, &mut b).unwrap(), 0);

        let slot = FdSlot::new();
        slot.give_up();
        assert!(matches!(slot.get(), Slot::GaveUp));
        let (_r3, w3) = rustix::pipe::pipe().unwrap();
        assert!(slot.fill(w3).fd().is_none());
    }
}
