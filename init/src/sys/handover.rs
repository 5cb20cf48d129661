//! Taking ownership of an fd the previous PID 1 handed over by number
//! across `initctl reexec` (see `pid1::reexec`).

use rustix::fd::{FromRawFd, OwnedFd, RawFd};

/// The fd `n`, owned, if it is open and inherited: an fd survives the
/// execve only without close-on-exec, and every fd this process opens
/// itself has it. Taking it sets the flag, so the flag is the mark of an
/// owner: a number named twice (a damaged hand-over state), or one this
/// process already holds, is refused instead of getting a second owner.
/// So is stdin, stdout or stderr, which never has the flag: PID 1's
/// console (or /dev/null), never an fd handed over (those come after it).
pub fn take_fd(n: RawFd) -> Option<OwnedFd> {
    if n <= 2 {
        return None;
    }
    // SAFETY: the number is only passed to fcntl(F_GETFD) and F_SETFD
    // (rustix's raw calls, not musl's fcntl and its 400 bytes), which are
    // harmless on any number: they fail with EBADF when nothing is open
    // there, and change only the close-on-exec flag of what is. The
    // borrow ends before the fd is owned below.
    let fd = unsafe { rustix::fd::BorrowedFd::borrow_raw(n) };
    let flags = rustix::io::fcntl_getfd(fd).ok()?;
    if flags.contains(rustix::io::FdFlags::CLOEXEC) {
        return None;
    }
    rustix::io::fcntl_setfd(fd, flags | rustix::io::FdFlags::CLOEXEC).ok()?;
    // SAFETY: `n` is open (checked above), was inherited across execve
    // without close-on-exec, and no owner in this process has marked it
    // (every owner's fd has close-on-exec): nothing else owns it.
    Some(unsafe { OwnedFd::from_raw_fd(n) })
}

#[cfg(test)]
mod tests {
    use super::take_fd;
    use rustix::fd::{AsRawFd, IntoRawFd};
    use rustix::io::FdFlags;

    /// A damaged state naming fd 1 as a unit's output pipe does not give
    /// the unit PID 1's stdout: closed with the unit's pipe, its number
    /// would go to whatever PID 1 opened next.
    #[test]
    fn the_standard_fds_are_never_taken() {
        // SAFETY: F_GETFD only, harmless on any number (as in `take_fd`).
        let flags = |n| rustix::io::fcntl_getfd(unsafe { rustix::fd::BorrowedFd::borrow_raw(n) });
        for n in 0..=2 {
            let before = flags(n);
            assert!(take_fd(n).is_none(), "fd {n}");
            assert_eq!(before, flags(n), "fd {n} left as it was");
        }
    }

    #[test]
    fn an_fd_is_taken_once_and_only_without_close_on_exec() {
        let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
        // Owned here, close-on-exec: not inherited, so not taken.
        assert!(take_fd(r.as_raw_fd()).is_none());
        rustix::io::fcntl_setfd(&w, FdFlags::empty()).unwrap();
        let n = w.into_raw_fd();
        let taken = take_fd(n).expect("an inherited fd is taken");
        assert_eq!(taken.as_raw_fd(), n);
        assert!(rustix::io::fcntl_getfd(&taken)
            .unwrap()
            .contains(FdFlags::CLOEXEC));
        // Named again: it has an owner now.
        assert!(take_fd(n).is_none());
        assert!(take_fd(-1).is_none());
        drop(taken);
        drop(r);
    }
}
