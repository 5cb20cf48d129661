//! Taking ownership of an fd the previous PID 1 handed over by number
//! across `initctl reexec` (see `pid1::reexec`).

use rustix::fd::{FromRawFd, OwnedFd, RawFd};

/// The fd `n`, owned, if it is open. The caller takes each number once:
/// the state names every fd once, and `pid1::reexec` keeps a list of
/// those taken.
pub fn take_fd(n: RawFd) -> Option<OwnedFd> {
    if n < 0 {
        return None;
    }
    // SAFETY: fcntl(F_GETFD) on any number is harmless; it fails with
    // EBADF when nothing is open there.
    if unsafe { libc::fcntl(n, libc::F_GETFD) } < 0 {
        return None;
    }
    // SAFETY: `n` is open (checked above) and nothing else in this process
    // owns it: it was inherited across execve, and the previous PID 1
    // named it once in its state for exactly this purpose.
    Some(unsafe { OwnedFd::from_raw_fd(n) })
}
