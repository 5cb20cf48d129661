//! The child's standard fds: where a unit's stdin, stdout and stderr
//! come from (`Stdio`), set up between clone3 and execve.

use super::Step;
use rustix::fd::{AsFd, BorrowedFd};
use rustix::io::Errno;

/// Where the unit's stdout/stderr go (stdin is /dev/null unless console).
#[derive(Clone, Copy)]
pub enum Stdio<'a> {
    /// `console = yes`: /dev/console as controlling terminal and stdin;
    /// stdout/stderr on it too, or on `out` when the unit's `output` says
    /// otherwise.
    ConsoleTty {
        out: Option<BorrowedFd<'a>>,
    },
    /// `output = console`.
    Console,
    /// `output = log`: the write end of the unit's log pipe.
    Pipe(BorrowedFd<'a>),
    Null,
}

impl<'a> Stdio<'a> {
    /// The fd of PID 1's that the child's stdout and stderr go to, if any.
    pub(super) fn fd(&self) -> Option<BorrowedFd<'a>> {
        match *self {
            Stdio::ConsoleTty { out } => out,
            Stdio::Pipe(w) => Some(w),
            Stdio::Console | Stdio::Null => None,
        }
    }
}

/// /dev/null, opened once by PID 1 (`open_null`): what a child's stdin
/// (and its stdout without a pipe) is duplicated from, instead of an open
/// of the path by every child (0.4 ms of a restart under TCG).
pub(super) static NULL: crate::sys::fd::FdSlot = crate::sys::fd::FdSlot::new();

/// Open /dev/null for the children (at boot, once /dev is there); without
/// it each child opens the path itself.
pub fn open_null() {
    match open_above_2("/dev/null") {
        Ok(fd) => {
            NULL.fill(fd);
        }
        Err(e) => crate::warn!("/dev/null: {e}; each unit's start opens it"),
    }
}

/// Host tests: /dev/null opened before any start looks at it, as PID 1
/// opens it at boot. Filled by a test thread while another's start ran,
/// the child would find a number its start had not checked
/// (`slot::all_low`) and not have it (EBADF in its stdio).
#[cfg(test)]
pub(super) fn open_null_before_a_start() {
    if matches!(NULL.get(), crate::sys::fd::Slot::Empty) {
        open_null();
    }
}

/// `path` opened close-on-exec at a number above 2: at 0-2 (boot could
/// not open them), a child's dup onto its own number would keep it
/// close-on-exec (dup3 refuses it outright).
pub(super) fn open_above_2(path: &str) -> Result<rustix::fd::OwnedFd, Errno> {
    use rustix::fd::AsRawFd;
    use rustix::fs::{Mode, OFlags};
    let flags = OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC;
    let fd = crate::sys::file::openat(rustix::fs::CWD, path, flags, Mode::empty())?;
    match fd.as_raw_fd() {
        0..=2 => rustix::io::fcntl_dupfd_cloexec(&fd, 3),
        _ => Ok(fd),
    }
}

/// PID 1's /dev/null (`open_null`), which a namespace's reaper keeps for
/// its service.
pub(super) fn null() -> Option<BorrowedFd<'static>> {
    NULL.get().fd()
}

/// Fds 0, 1 and 2 of the child as `stdio` says; the console is `console`
/// if opened already (`spawn::early_console`).
pub(super) fn setup_stdio(
    stdio: &Stdio<'_>,
    console: Option<BorrowedFd<'_>>,
) -> Result<(), (Step, Errno)> {
    use rustix::fs::{Mode, OFlags};
    let open = |p: &str, step| {
        crate::sys::file::openat(
            rustix::fs::CWD,
            p,
            OFlags::RDWR | OFlags::NOCTTY,
            Mode::empty(),
        )
        .map_err(|e| (step, e))
    };
    let own = match (null(), stdio) {
        (None, Stdio::Console | Stdio::Pipe(_) | Stdio::Null) => {
            Some(open("/dev/null", Step::Stdio)?)
        }
        _ => None,
    };
    let null = null()
        .or(own.as_ref().map(AsFd::as_fd))
        .ok_or((Step::Stdio, Errno::BADF));
    let own_console = match (console, stdio) {
        (None, Stdio::ConsoleTty { .. } | Stdio::Console) => {
            Some(open("/dev/console", Step::Console)?)
        }
        _ => None,
    };
    let console = console
        .or(own_console.as_ref().map(AsFd::as_fd))
        .ok_or((Step::Console, Errno::BADF));
    match stdio {
        Stdio::ConsoleTty { out } => {
            let c = console?;
            rustix::process::ioctl_tiocsctty(c).map_err(|e| (Step::Console, e))?;
            dup_all(c, *out)
        }
        Stdio::Console => dup_all(null?, Some(console?)),
        Stdio::Pipe(w) => dup_all(null?, Some(*w)),
        Stdio::Null => dup_all(null?, None),
    }
}

/// stdin from `input`, stdout and stderr from `output` (or `input`).
fn dup_all(input: BorrowedFd<'_>, output: Option<BorrowedFd<'_>>) -> Result<(), (Step, Errno)> {
    let out = output.unwrap_or(input);
    rustix::stdio::dup2_stdin(input).map_err(|e| (Step::Stdio, e))?;
    rustix::stdio::dup2_stdout(out).map_err(|e| (Step::Stdio, e))?;
    rustix::stdio::dup2_stderr(out).map_err(|e| (Step::Stdio, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    /// With fd 0 free, /dev/null still lands above 2 (in a copy of this
    /// process, whose fd 0 is closed first).
    #[test]
    fn dev_null_is_opened_above_stdio() {
        use rustix::fd::AsRawFd;
        let pid = crate::sys::clone::clone_into(crate::unit::Namespaces(0), None, || {
            let _ = nix::unistd::close(0);
            let code = match super::open_above_2("/dev/null") {
                Ok(fd) if fd.as_raw_fd() > 2 => 0,
                Ok(_) => 1,
                Err(_) => 2,
            };
            crate::sys::clone::exit(code)
        })
        .unwrap();
        assert_eq!(crate::testutil::wait_exit(pid), Some(0));
    }
}
