//! A plain child process (no unit's cgroup or namespaces): what wren used
//! `std::process::Command` for (`initctl edit`'s editor, the re-exec
//! candidate's handshake), on the `clone_into` and execve wren already
//! has. Command's own spawn, with its environment map and `posix_spawn`
//! path, was about 15 KB of the binary.
//!
//! Like Command, the child gets this process's environment, an empty
//! signal mask and SIGPIPE's default action (`initctl` ignores it, and an
//! ignored signal stays ignored across exec), and a failed exec is
//! reported to the caller with its errno, through a close-on-exec pipe.

use super::clone::{clone_into, exit};
use super::exec::CStrings;
use crate::unit::Namespaces;
use core::fmt;
use nix::sys::signal::Signal;
use rustix::fd::{AsRawFd, BorrowedFd};
use rustix::io::Errno;
use rustix::process::{Pid, WaitOptions};

/// How long `spawn_within` waits for a child it killed (a child stuck in
/// an uninterruptible exec does not die at once).
const KILLED_WAIT_MS: u64 = 100;

/// A started child; waited for by `wait` (else it stays a zombie until
/// this process reaps it some other way).
pub struct Child {
    pid: Pid,
}

/// Start `argv` (its first string is the program's path, used as is: no
/// PATH search) with `stdio[i]`, when given, as fd `i`, else this
/// process's own. The error is the exec's (or the fork's) errno.
pub fn spawn<const B: usize, const P: usize>(
    argv: &CStrings<B, P>,
    stdio: [Option<BorrowedFd<'_>>; 3],
) -> Result<Child, Errno> {
    spawn_within(argv, stdio, None)
}

/// `spawn`, for PID 1: the wait for the exec's outcome ends after
/// `within_ms` (an exec can hang on a stalled file system), the child
/// then killed and `TIMEDOUT` returned; a child that does not die at once
/// is left to PID 1's reaping.
pub fn spawn_within<const B: usize, const P: usize>(
    argv: &CStrings<B, P>,
    stdio: [Option<BorrowedFd<'_>>; 3],
    within_ms: Option<u64>,
) -> Result<Child, Errno> {
    start(argv, stdio, within_ms, false)
}

/// `spawn_within` of a shell for the terminal `tty`: in a session of its
/// own with `tty` as its controlling terminal (job control, Ctrl-C) and
/// as its fds 0, 1 and 2.
pub fn spawn_on_tty<const B: usize, const P: usize>(
    argv: &CStrings<B, P>,
    tty: BorrowedFd<'_>,
    within_ms: Option<u64>,
) -> Result<Child, Errno> {
    start(argv, [Some(tty); 3], within_ms, true)
}

fn start<const B: usize, const P: usize>(
    argv: &CStrings<B, P>,
    stdio: [Option<BorrowedFd<'_>>; 3],
    within_ms: Option<u64>,
    session: bool,
) -> Result<Child, Errno> {
    if argv.is_empty() {
        return Err(Errno::INVAL);
    }
    let (report_r, report_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    let pid = clone_into(Namespaces::NONE, None, || {
        // Only raw system calls on what was built before the copy.
        let e = setup(stdio, session, rustix::fd::AsFd::as_fd(&report_w))
            .err()
            .unwrap_or_else(|| super::exec::execv(argv));
        let _ = rustix::io::write(&report_w, &e.raw_os_error().to_ne_bytes());
        exit(127)
    })?;
    drop(report_w);
    let child = Child {
        pid: Pid::from_raw(i32::try_from(pid).map_err(|_| Errno::INVAL)?).ok_or(Errno::INVAL)?,
    };
    // EOF: the exec closed the pipe (or the child died first, which the
    // caller will see in its wait status); four bytes: the exec failed.
    let mut buf = [0u8; 4];
    let mut len = 0;
    let start = super::clock::now_ns();
    while let Some(rest) = buf.get_mut(len..).filter(|r| !r.is_empty()) {
        if let Some(ms) = within_ms {
            let left = ms.saturating_sub(super::clock::since_ms(start));
            let ts = rustix::time::Timespec {
                tv_sec: (left / 1000) as i64,
                tv_nsec: ((left % 1000) * 1_000_000) as i64,
            };
            let mut pfd = [rustix::event::PollFd::new(
                &report_r,
                rustix::event::PollFlags::IN,
            )];
            match rustix::event::poll(&mut pfd, Some(&ts)) {
                Ok(0) => {
                    let _ = child.kill();
                    let _ = child.wait_within(KILLED_WAIT_MS);
                    return Err(Errno::TIMEDOUT);
                }
                Err(Errno::INTR) => continue,
                _ => {}
            }
        }
        match rustix::io::read(&report_r, rest) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(Errno::INTR) => {}
            Err(_) => break,
        }
    }
    if len == buf.len() {
        // It wrote its errno and is on its way to `_exit`: reaped within
        // a bound all the same (PID 1 waits on nothing without one).
        if child.wait_within(KILLED_WAIT_MS).is_none() {
            let _ = child.kill();
            let _ = child.wait_within(KILLED_WAIT_MS);
        }
        return Err(Errno::from_raw_os_error(i32::from_ne_bytes(buf)));
    }
    Ok(child)
}

/// In the child: the standard fds, the signal mask, and the default
/// action of SIGPIPE and of the signals `initctl edit` ignores while its
/// editor runs (an ignored signal stays ignored across exec).
fn setup(
    stdio: [Option<BorrowedFd<'_>>; 3],
    session: bool,
    report: BorrowedFd<'_>,
) -> Result<(), Errno> {
    if session {
        rustix::process::setsid()?;
        if let [Some(tty), ..] = stdio {
            // Not a terminal (a test's /dev/null): no controlling one.
            let _ = rustix::process::ioctl_tiocsctty(tty);
        }
    }
    for (target, fd) in (0..).zip(stdio) {
        let Some(fd) = fd else { continue };
        if fd.as_raw_fd() == target {
            // dup2 onto itself would keep close-on-exec set.
            rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty())?;
            continue;
        }
        match target {
            0 => rustix::stdio::dup2_stdin(fd)?,
            1 => rustix::stdio::dup2_stdout(fd)?,
            _ => rustix::stdio::dup2_stderr(fd)?,
        }
    }
    // Nothing of the caller's but stdio: PID 1 about to re-exec has made
    // its units' fds inheritable, which a candidate asked about the state
    // must not hold (nor an editor, a rescue shell). `report` goes at the
    // exec (close-on-exec).
    super::fd::close_all_but(&[report]);
    super::signal::unblock_all()?;
    for sig in [
        Signal::SIGPIPE,
        Signal::SIGINT,
        Signal::SIGQUIT,
        Signal::SIGHUP,
    ] {
        super::signal::set_default(sig)?;
    }
    Ok(())
}

impl Child {
    pub fn pid(&self) -> u32 {
        self.pid.as_raw_nonzero().get().unsigned_abs()
    }

    /// SIGKILL (a child that already exited is not an error to the caller).
    pub fn kill(&self) -> Result<(), Errno> {
        rustix::process::kill_process(self.pid, rustix::process::Signal::KILL)
    }

    /// Wait for it to end, `ms` at most (`None`: it has not ended; it is
    /// then left to whoever reaps this process's children).
    pub fn wait_within(&self, ms: u64) -> Option<Result<ExitStatus, Errno>> {
        wait_pid_within(self.pid, ms, &|| {})
    }

    /// Wait for it to end.
    pub fn wait(&self) -> Result<ExitStatus, Errno> {
        loop {
            match rustix::process::waitpid(Some(self.pid), WaitOptions::empty()) {
                Ok(Some((_, st))) => return Ok(ExitStatus(st.as_raw())),
                Ok(None) => return Err(Errno::CHILD),
                Err(Errno::INTR) => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Wait for `pid`, a child of this process, to end, `ms` at most (`None`:
/// it has not ended), calling `between` before each nap (PID 1 feeds its
/// watchdog there). Looks 1 ms apart at first, then twice as long each
/// time up to 50 ms: a child done in a few milliseconds (a killed one, a
/// reload's read of a warm directory) holds the caller no longer than
/// that, and one that takes seconds costs a few wake-ups a second.
pub fn wait_pid_within(pid: Pid, ms: u64, between: &dyn Fn()) -> Option<Result<ExitStatus, Errno>> {
    const MOST_NS: u64 = 50_000_000;
    let start = super::clock::now_ns();
    let limit = ms.saturating_mul(1_000_000);
    let mut nap: u64 = 1_000_000;
    loop {
        match rustix::process::waitpid(Some(pid), WaitOptions::NOHANG) {
            Ok(Some((_, st))) => return Some(Ok(ExitStatus(st.as_raw()))),
            Ok(None) => {}
            Err(Errno::INTR) => continue,
            Err(e) => return Some(Err(e)),
        }
        let left = limit.checked_sub(super::clock::now_ns().saturating_sub(start))?;
        if left == 0 {
            return None;
        }
        between();
        let _ = rustix::thread::nanosleep(&super::clock::timespec(left.min(nap)));
        nap = nap.saturating_mul(2).min(MOST_NS);
    }
}

/// A wait status, shown as `std::process::ExitStatus` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitStatus(pub i32);

impl ExitStatus {
    /// Exited with status 0.
    pub fn success(self) -> bool {
        self.code() == Some(0)
    }

    /// The exit status, when it exited.
    pub fn code(self) -> Option<i32> {
        (self.0 & 0x7f == 0).then_some((self.0 >> 8) & 0xff)
    }

    /// The signal that ended it, when one did.
    pub fn signal(self) -> Option<i32> {
        let sig = self.0 & 0x7f;
        (sig != 0 && sig != 0x7f).then_some(sig)
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(code) = self.code() {
            return write!(f, "exit status: {code}");
        }
        let Some(sig) = self.signal() else {
            return write!(f, "unrecognised wait status: {} {:#x}", self.0, self.0);
        };
        let name = Signal::try_from(sig).map(Signal::as_str).unwrap_or("");
        let core = if self.0 & 0x80 != 0 {
            " (core dumped)"
        } else {
            ""
        };
        write!(f, "signal: {sig} ({name}){core}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::signal::{SigSet, SigmaskHow};
    use rustix::fd::AsFd;
    use std::os::unix::process::ExitStatusExt;

    fn argv(args: &[&str]) -> CStrings<256, 8> {
        let mut t = CStrings::new();
        for a in args {
            t.push(&[a]).unwrap();
        }
        t
    }

    #[test]
    fn statuses_read_and_show_as_std_shows_them() {
        // waitpid without WUNTRACED reports only these two kinds.
        for raw in [0, 1 << 8, 127 << 8, 255 << 8, 9, 15, 6 | 0x80] {
            let ours = ExitStatus(raw);
            let std = std::process::ExitStatus::from_raw(raw);
            assert_eq!(ours.to_string(), std.to_string(), "{raw:#x}");
            assert_eq!(ours.success(), std.success());
            assert_eq!(ours.code(), std.code());
            assert_eq!(ours.signal(), std.signal());
        }
    }

    #[test]
    fn runs_a_program_with_its_stdio_and_reports_its_status() {
        let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
        let sh = argv(&["/bin/sh", "-c", "echo out; trap - PIPE; exit 3"]);
        let child = spawn(&sh, [None, Some(w.as_fd()), None]).unwrap();
        drop(w);
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut std::fs::File::from(r), &mut out).unwrap();
        assert_eq!(out, b"out\n");
        let st = child.wait().unwrap();
        assert_eq!(st.code(), Some(3));
        assert_eq!(st.to_string(), "exit status: 3");
        assert!(child.wait().is_err(), "reaped once");
    }

    /// PID 1's waits end: one for a child still running gives up after
    /// its bound, and reaps it once it has ended.
    #[test]
    fn bounded_waits_end() {
        let child = spawn_within(&argv(&["/bin/sleep", "5"]), [None; 3], Some(2_000)).unwrap();
        let t = std::time::Instant::now();
        assert!(child.wait_within(50).is_none());
        let waited = t.elapsed();
        assert!(waited >= std::time::Duration::from_millis(50), "{waited:?}");
        assert!(waited < std::time::Duration::from_secs(2), "{waited:?}");
        child.kill().unwrap();
        let st = child.wait_within(2_000).unwrap().unwrap();
        assert_eq!(st.signal(), Some(9));
        assert!(child.wait_within(10).unwrap().is_err(), "reaped once");
        let missing = argv(&["/nonexistent/wren-test"]);
        assert_eq!(
            spawn_within(&missing, [None; 3], Some(2_000)).err(),
            Some(Errno::NOENT)
        );
    }

    #[test]
    fn a_failed_exec_is_the_spawn_error() {
        let missing = argv(&["/nonexistent/wren-test"]);
        assert_eq!(spawn(&missing, [None; 3]).err(), Some(Errno::NOENT));
        let none: CStrings<8, 2> = CStrings::new();
        assert_eq!(spawn(&none, [None; 3]).err(), Some(Errno::INVAL));
    }

    #[test]
    fn the_child_has_an_empty_mask_and_default_sigpipe() {
        // Rust's runtime (the test harness's too) ignores SIGPIPE.
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let ign = status
            .lines()
            .find_map(|l| l.strip_prefix("SigIgn:\t"))
            .unwrap();
        assert_ne!(u64::from_str_radix(ign, 16).unwrap() & 0x1000, 0, "{ign}");
        // The mask is per thread: block all on this one only.
        let old = SigSet::all()
            .thread_swap_mask(SigmaskHow::SIG_SETMASK)
            .unwrap();
        let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
        let script = "sed -n 's/^\\(SigBlk\\|SigIgn\\):\\t/\\1 /p' /proc/self/status";
        let child = spawn(
            &argv(&["/bin/sh", "-c", script]),
            [None, Some(w.as_fd()), None],
        );
        old.thread_set_mask().unwrap();
        let child = child.unwrap();
        drop(w);
        let mut out = String::new();
        std::io::Read::read_to_string(&mut std::fs::File::from(r), &mut out).unwrap();
        assert!(child.wait().unwrap().success());
        assert!(out.contains("SigBlk 0000000000000000\n"), "{out}");
        let ign = out.lines().find_map(|l| l.strip_prefix("SigIgn ")).unwrap();
        assert_eq!(u64::from_str_radix(ign, 16).unwrap() & 0x1000, 0, "{out}");
    }
}
