//! The child's standard fds: where a unit's stdin, stdout and stderr
//! come from (`Stdio`), set up between clone3 and execve.

use super::Step;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
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

/// Fds 0, 1 and 2 of the child as `stdio` says.
pub(super) fn setup_stdio(stdio: &Stdio<'_>) -> Result<(), (Step, Errno)> {
    use rustix::fs::{Mode, OFlags};
    let open = |p: &str, step| {
        rustix::fs::open(p, OFlags::RDWR | OFlags::NOCTTY, Mode::empty()).map_err(|e| (step, e))
    };
    let (input, output): (OwnedFd, Option<BorrowedFd<'_>>) = match stdio {
        Stdio::ConsoleTty { out } => {
            let c = open("/dev/console", Step::Console)?;
            rustix::process::ioctl_tiocsctty(&c).map_err(|e| (Step::Console, e))?;
            return dup_all(&c, *out);
        }
        Stdio::Console => {
            let c = open("/dev/console", Step::Console)?;
            let n = open("/dev/null", Step::Stdio)?;
            dup_all(&n, Some(c.as_fd()))?;
            return Ok(());
        }
        Stdio::Pipe(w) => (open("/dev/null", Step::Stdio)?, Some(*w)),
        Stdio::Null => (open("/dev/null", Step::Stdio)?, None),
    };
    dup_all(&input, output)
}

/// stdin from `input`, stdout and stderr from `output` (or `input`).
fn dup_all(input: &OwnedFd, output: Option<BorrowedFd<'_>>) -> Result<(), (Step, Errno)> {
    let out = output.unwrap_or(input.as_fd());
    rustix::stdio::dup2_stdin(input).map_err(|e| (Step::Stdio, e))?;
    rustix::stdio::dup2_stdout(out).map_err(|e| (Step::Stdio, e))?;
    rustix::stdio::dup2_stderr(out).map_err(|e| (Step::Stdio, e))?;
    Ok(())
}
