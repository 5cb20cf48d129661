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

/// The lowest number `private_table` gives: `spawn::child` moves the
/// notify fd to 3 by way of a number at 10 or above, which must not be
/// one of them.
const PRIVATE_FROM: RawFd = 10;

/// In a child that shares its parent's fd table (`CLONE_FILES`, the
/// parent suspended by `CLONE_VFORK` until the child execs or ends): a
/// table of the child's own that holds only stdio and `fds`, made without
/// copying the parent's other fds (thousands: a copy of PID 1's) nor
/// closing them one by one. Each of `fds` is duplicated, close-on-exec, to
/// a number from PRIVATE_FROM up that is none of `fds` nor `spare` (fds
/// the parent goes on using); then `close_range(K, ~0,
/// CLOSE_RANGE_UNSHARE)`, which, closing every number from K up, copies
/// only those below K; then the numbers above 2 below K but the new ones
/// are closed. Returns the new numbers, in `fds`' order. Before Linux 5.9
/// (no close_range) the whole table is copied and closed instead.
///
/// The parent's table keeps the duplicates (what it had at those numbers
/// is replaced): it may rely on no number there but `spare`'s, and closes
/// the duplicates with the rest of what it does not use.
pub fn private_table<const N: usize>(
    fds: [Option<BorrowedFd<'_>>; N],
    spare: &[Option<BorrowedFd<'_>>],
) -> Result<[Option<BorrowedFd<'static>>; N], Errno> {
    let taken = |n: RawFd| {
        fds.iter()
            .chain(spare.iter())
            .flatten()
            .any(|f| f.as_raw_fd() == n)
    };
    let mut next = PRIVATE_FROM;
    let mut moved: [Option<RawFd>; N] = [None; N];
    for (to, fd) in moved.iter_mut().zip(fds.iter()) {
        let Some(fd) = fd else { continue };
        while taken(next) {
            next = next.checked_add(1).ok_or(Errno::MFILE)?;
        }
        // SAFETY: `next` is not negative. The `OwnedFd` is never dropped
        // (ManuallyDrop), so it closes nothing; dup3 onto it replaces the
        // file behind the number, which the parent may not rely on (this
        // function's contract) and which is none of `fds` or `spare`.
        let mut t = core::mem::ManuallyDrop::new(unsafe { OwnedFd::from_raw_fd(next) });
        rustix::io::dup3(fd, &mut t, rustix::io::DupFlags::CLOEXEC)?;
        *to = Some(next);
        next = next.checked_add(1).ok_or(Errno::MFILE)?;
    }
    let from = u32::try_from(next).map_err(|_| Errno::BADF)?;
    // SAFETY: close_range takes three unsigned ints and touches no memory;
    // the numbers it closes (from `from` up) are in the private table it
    // makes, which only this child uses. A raw call (`raw`): the child
    // shares its parent's memory, errno included.
    let unshared = unsafe {
        super::raw::syscall6(
            libc::SYS_close_range,
            [
                from as usize,
                u32::MAX as usize,
                libc::CLOSE_RANGE_UNSHARE as usize,
                0,
                0,
                0,
            ],
        )
    };
    if unshared.is_err() {
        // SAFETY: unshare(CLONE_FILES) copies the fd table; it touches no
        // memory of the caller's.
        unsafe {
            super::raw::syscall6(
                libc::SYS_unshare,
                [libc::CLONE_FILES as usize, 0, 0, 0, 0, 0],
            )
        }?;
    }
    let mut out: [Option<BorrowedFd<'static>>; N] = [None; N];
    for (o, m) in out.iter_mut().zip(moved.iter()) {
        // SAFETY: the number was just made open in this child's own table
        // (dup3 above), and stays open until the child execs or ends: it
        // closes none of its numbers but through `close_all_but`, which
        // keeps these.
        *o = m.map(|n| unsafe { BorrowedFd::borrow_raw(n) });
    }
    let mut kept: heapless::Vec<BorrowedFd<'_>, N> = heapless::Vec::new();
    for fd in out.iter().flatten() {
        // At most N: `out` has N entries.
        kept.push(*fd).map_err(|_| Errno::NOMEM)?;
    }
    close_all_but(&kept);
    Ok(out)
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

/// close_range(2) from `first` to `last`; before Linux 5.9, close(2) on
/// each number below the fd limit.
fn close_range(first: u32, last: u32) {
    if first > last {
        return;
    }
    // SAFETY: close_range takes three unsigned ints and touches no memory;
    // closing numbers that other code holds as `OwnedFd`s is what this
    // function's contract (`close_all_but`) makes that code's caller accept.
    // A raw call (`raw`): a reaper on a spawn slot shares PID 1's errno.
    let r = unsafe {
        super::raw::syscall6(
            libc::SYS_close_range,
            [first as usize, last as usize, 0, 0, 0, 0],
        )
    };
    if r.is_ok() {
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

    /// A child that shares its caller's fd table (`vfork::spawn`) takes a
    /// table of its own with only what it keeps: duplicates from 10 up,
    /// nothing else above 2 (neither the originals nor the spare nor the
    /// others). The caller keeps every fd it had, the spare's number
    /// included.
    #[test]
    fn a_vforked_child_takes_a_private_table_of_only_what_it_keeps() {
        let pipe = || rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
        let ((a_rd, a_wr), (b_rd, b_wr)) = (pipe(), pipe());
        let ((spare_rd, spare_wr), (other_rd, other_wr)) = (pipe(), pipe());
        // Whether a number is open, without allocating (a copy of a
        // threaded process) or borrowing a raw fd.
        let open = |fd: i32| {
            let path: heapless::String<32> =
                crate::proto::formatted(format_args!("/proc/self/fd/{fd}"));
            rustix::fs::stat(path.as_str()).is_ok()
        };
        let first: [i32; 5] =
            [&a_wr, &b_wr, &spare_wr, &other_rd, &other_wr].map(|f| f.as_raw_fd());
        let (a, b, spare) = (a_wr.as_fd(), b_wr.as_fd(), spare_wr.as_fd());
        let (a_in, b_in) = (a_rd.as_fd(), b_rd.as_fd());
        let all = [
            &a_rd, &a_wr, &b_rd, &b_wr, &spare_rd, &spare_wr, &other_rd, &other_wr,
        ]
        .map(|f| f.as_fd());
        // In a copy of this process: one thread, so no other thread's fds
        // at the numbers the child takes in the table it shares.
        let pid = crate::sys::clone::clone_into(crate::unit::Namespaces(0), None, || {
            let inner = crate::sys::vfork::spawn(|| {
                let Ok([Some(na), Some(nb)]) = private_table([Some(a), Some(b)], &[Some(spare)])
                else {
                    crate::sys::clone::exit(100)
                };
                let (na, nb) = (na.as_raw_fd(), nb.as_raw_fd());
                let mut code = i32::from(na >= PRIVATE_FROM && nb >= PRIVATE_FROM && na != nb);
                let wrote = rustix::io::write(unsafe_borrow(na), b"a") == Ok(1)
                    && rustix::io::write(unsafe_borrow(nb), b"b") == Ok(1);
                code |= i32::from(wrote) << 1;
                // (An original's number may be one the duplicates took:
                // what the caller had there is replaced, as said.)
                let gone = first
                    .iter()
                    .filter(|&&f| f != na && f != nb)
                    .all(|&f| !open(f));
                code |= i32::from(gone) << 2;
                code |= i32::from((3..256).filter(|&f| open(f)).count() == 2) << 3;
                crate::sys::clone::exit(code)
            });
            let inner = match inner {
                Ok(p) => crate::testutil::wait_exit(p).unwrap_or(101),
                Err(_) => 102,
            };
            // This copy's table: every fd still there, the pipes the same.
            let kept = all.iter().all(|f| rustix::io::fcntl_getfd(f).is_ok());
            let mut buf = [0u8; 1];
            let read_a = rustix::io::read(a_in, &mut buf) == Ok(1) && buf == *b"a";
            let read_b = rustix::io::read(b_in, &mut buf) == Ok(1) && buf == *b"b";
            crate::sys::clone::exit(inner | i32::from(kept) << 4 | i32::from(read_a && read_b) << 5)
        })
        .unwrap();
        assert_eq!(crate::testutil::wait_exit(pid), Some(0b11_1111));
        for fd in all {
            assert!(rustix::io::fcntl_getfd(fd).is_ok());
        }
    }

    /// A number the child has just made open in its own table.
    fn unsafe_borrow(n: RawFd) -> BorrowedFd<'static> {
        // SAFETY: used on the numbers `private_table` returned, open until
        // the child exits.
        unsafe { BorrowedFd::borrow_raw(n) }
    }
}
