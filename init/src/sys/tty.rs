//! A terminal's modes for `initctl top`: read, made raw, put back. The
//! same ioctls as rustix's `tcgetattr` and `tcsetattr` (`TCGETS2` and
//! `TCSETS2`, the old `TCGETS` and `TCSETS` where those are refused),
//! without their translation of the line speeds into numbers, which
//! nothing here reads (rustix's speed table: 500 bytes).

use rustix::fd::{AsRawFd, BorrowedFd};

/// A terminal's modes as the kernel gave them.
pub struct Modes(libc::termios2);

/// `NOTTY` or `ACCESS`, rustix's test for a kernel (or a seccomp filter,
/// or WSL) that knows only the old request.
fn old_only() -> bool {
    let e = super::clone::last_errno();
    e == rustix::io::Errno::NOTTY || e == rustix::io::Errno::ACCESS
}

/// The modes of the terminal `fd` is (`None`: not a terminal).
pub fn modes(fd: BorrowedFd<'_>) -> Option<Modes> {
    // SAFETY: all zeros is a valid `termios2` (integers and a byte array).
    let mut t: libc::termios2 = unsafe { std::mem::zeroed() };
    let fd = fd.as_raw_fd();
    // SAFETY: TCGETS2 writes one `struct termios2` through the pointer,
    // which points at `t`, alive across the call.
    let mut r = unsafe { libc::ioctl(fd, libc::TCGETS2 as _, &mut t) };
    if r < 0 && old_only() {
        // SAFETY: TCGETS writes one `struct termios`, the beginning of
        // `struct termios2`, through the pointer, which points at `t`.
        r = unsafe { libc::ioctl(fd, libc::TCGETS as _, &mut t) };
    }
    (r == 0).then_some(Modes(t))
}

impl Modes {
    /// The same modes without line editing, echo or the signal keys:
    /// input byte by byte, Ctrl-C a byte.
    pub fn raw(&self) -> Modes {
        let mut t = self.0;
        t.c_lflag &= !(libc::ICANON | libc::ECHO | libc::ISIG);
        Modes(t)
    }
}

/// Sets the terminal's modes now (`TCSANOW`); false if refused.
pub fn set(fd: BorrowedFd<'_>, m: &Modes) -> bool {
    let fd = fd.as_raw_fd();
    // SAFETY: TCSETS2 reads one `struct termios2` through the pointer,
    // which points at `m.0`, alive across the call.
    let mut r = unsafe { libc::ioctl(fd, libc::TCSETS2 as _, &m.0) };
    if r < 0 && old_only() {
        // The old request does not read the speeds a `BOTHER` line keeps
        // in the new fields: refused, as rustix refuses it.
        let c = m.0.c_cflag;
        if c & libc::CBAUD == libc::BOTHER || (c & libc::CIBAUD) >> libc::IBSHIFT == libc::BOTHER {
            return false;
        }
        // SAFETY: TCSETS reads one `struct termios`, the beginning of
        // `struct termios2`, through the pointer, which points at `m.0`.
        r = unsafe { libc::ioctl(fd, libc::TCSETS as _, &m.0) };
    }
    r == 0
}

#[cfg(test)]
mod tests {
    use rustix::fd::{AsFd, FromRawFd, OwnedFd};

    /// On a pseudo-terminal: the modes read, made raw, set, read back
    /// raw, and put back as they were; a pipe has none.
    #[test]
    fn modes_made_raw_and_put_back() {
        // SAFETY: posix_openpt, grantpt, unlockpt and ptsname on the fd
        // just opened; ptsname's string is copied before any other call.
        let (_main, tty) = unsafe {
            let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
            assert!(m >= 0);
            let main = OwnedFd::from_raw_fd(m);
            assert_eq!(libc::grantpt(m), 0);
            assert_eq!(libc::unlockpt(m), 0);
            let name = std::ffi::CStr::from_ptr(libc::ptsname(m)).to_owned();
            let s = libc::open(name.as_ptr(), libc::O_RDWR | libc::O_NOCTTY);
            assert!(s >= 0);
            (main, OwnedFd::from_raw_fd(s))
        };
        let lflags = libc::ICANON | libc::ECHO | libc::ISIG;
        let saved = super::modes(tty.as_fd()).unwrap();
        assert_eq!(saved.0.c_lflag & lflags, lflags);
        assert!(super::set(tty.as_fd(), &saved.raw()));
        assert_eq!(super::modes(tty.as_fd()).unwrap().0.c_lflag & lflags, 0);
        assert!(super::set(tty.as_fd(), &saved));
        let back = super::modes(tty.as_fd()).unwrap().0;
        assert_eq!(back.c_lflag, saved.0.c_lflag);
        let (r, _w) = rustix::pipe::pipe().unwrap();
        assert!(super::modes(r.as_fd()).is_none());
    }
}
