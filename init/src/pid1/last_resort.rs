//! When the event loop cannot be built (a kernel without epoll, signalfd
//! or timerfd, no memory or fds for them at boot), no unit runs. The
//! device must still be reachable at its serial port and obey a shutdown
//! (CONTRACT: the console shell always comes up): the rescue shell on
//! `/dev/console`, started again when it ends (at most once a
//! `RESPAWN_MS`), every child reaped, and SIGTERM, SIGINT, SIGUSR1 and
//! SIGUSR2 lead to the final shutdown sequence as ever. Signals are taken
//! by rt_sigtimedwait (PID 1's mask blocks them), with a timeout only
//! while a shell is due to be started again.

use crate::boot::shutdown;
use crate::sys::clock::{now_ns, since_ms};
use crate::sys::exec::CStrings;
use crate::vocab::ShutdownKind;
use crate::watchdog::Watchdog;
use rustix::process::WaitOptions;
use std::time::Duration;

/// Between two starts of the rescue shell.
const RESPAWN_MS: u64 = 1000;
/// How long a start waits for the shell's exec (a stalled root).
const EXEC_WAIT_MS: u64 = 2000;

/// Never returns: see the module's doc.
pub(super) fn last_resort(mut watchdog: Option<Watchdog>) -> ! {
    let mut sh: CStrings<16, 2> = CStrings::new();
    let _ = sh.push(&["/bin/sh"]);
    serve(&sh, c"/dev/console", &mut |kind| {
        shutdown::finish(
            kind,
            Duration::from_millis(super::executor::SHUTDOWN_GRACE_MS),
            watchdog.take(),
        )
    })
}

/// The loop, with the shell, its terminal and the shutdown given (a
/// test's stand-ins).
fn serve<const B: usize, const P: usize>(
    shell: &CStrings<B, P>,
    tty: &core::ffi::CStr,
    // Does not return in PID 1 (nor in the test).
    finish: &mut dyn FnMut(ShutdownKind),
) -> ! {
    let mut running: Option<u32> = None;
    let mut last_start: Option<u64> = None;
    let mut said = None;
    loop {
        let due = last_start.map_or(0, |t| RESPAWN_MS.saturating_sub(since_ms(t)));
        if running.is_none() && due == 0 {
            last_start = Some(now_ns());
            let started = start_shell(shell, tty);
            if news(&mut said, started.map(drop)) {
                match started {
                    Ok(pid) => crate::warn!("rescue shell on the console (pid {pid})"),
                    Err(e) => crate::error!("rescue shell: {e}; tried again every second"),
                }
            }
            running = started.ok();
        }
        let wait = match running {
            Some(_) => None,
            None => Some(last_start.map_or(0, |t| RESPAWN_MS.saturating_sub(since_ms(t)))),
        };
        if let Ok(sig) = crate::sys::signal::wait_any_within(wait) {
            if let Some(kind) = ShutdownKind::for_signal(sig) {
                crate::info!("shutdown: {} (asked by signal {sig})", kind.verb());
                finish(kind);
            }
        }
        while let Ok(Some((pid, _))) = rustix::process::wait(WaitOptions::NOHANG) {
            let pid = pid.as_raw_nonzero().get().unsigned_abs();
            let _ = crate::sys::passed::reaped(pid);
            if running == Some(pid) {
                running = None;
            }
        }
    }
}

/// The shell on `tty`, in a session of its own: its pid.
fn start_shell<const B: usize, const P: usize>(
    shell: &CStrings<B, P>,
    tty: &core::ffi::CStr,
) -> Result<u32, rustix::io::Errno> {
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::openat(
        rustix::fs::CWD,
        tty,
        OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let child =
        crate::sys::child::spawn_on_tty(shell, rustix::fd::AsFd::as_fd(&fd), Some(EXEC_WAIT_MS))?;
    Ok(child.pid())
}

/// Whether a start's outcome is worth a log line: the first, and one
/// unlike the last. A shell that cannot start, or one that ends at once
/// (`console=null`), is tried every second for as long as the board runs:
/// a line each time, each a wait on a serial console, would soon push
/// the one line that says why (`event loop: ...`) out of the kernel log.
fn news(
    said: &mut Option<Result<(), rustix::io::Errno>>,
    now: Result<(), rustix::io::Errno>,
) -> bool {
    let new = *said != Some(now);
    *said = Some(now);
    new
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    /// The same outcome again and again is said once; a change is said.
    #[test]
    fn a_start_that_fails_the_same_way_again_is_said_once() {
        use rustix::io::Errno;
        let mut said = None;
        let seen: Vec<bool> = [
            Err(Errno::NOENT),
            Err(Errno::NOENT),
            Ok(()),
            Ok(()),
            Err(Errno::NOENT),
        ]
        .into_iter()
        .map(|r| news(&mut said, r))
        .collect();
        assert_eq!(seen, [true, false, true, false, true]);
    }

    /// The loop in a child standing in for PID 1 (its signals blocked as
    /// PID 1's are): the shell starts, is started again each time it
    /// ends, a second apart, and SIGUSR2 goes to the shutdown as a
    /// poweroff (here the stand-in's exit code, 2).
    #[test]
    fn the_rescue_shell_comes_back_and_a_signal_shuts_down() {
        let dir = TempDir::new("last-resort");
        let log = dir.join("starts");
        let script = format!("echo started >> {}", log.display());
        let mut sh: CStrings<256, 4> = CStrings::new();
        sh.push(&["/bin/sh"]).unwrap();
        sh.push(&["-c"]).unwrap();
        sh.push(&[&script]).unwrap();
        let pid = crate::sys::clone::clone_into(crate::unit::Namespaces::NONE, None, || {
            let _ = crate::sys::signal::block_all();
            // Other tests' fds are not the stand-in's to hold.
            crate::sys::fd::close_all_but(&[]);
            serve(&sh, c"/dev/null", &mut |kind| {
                crate::sys::clone::exit(kind as i32)
            })
        })
        .unwrap();
        std::thread::sleep(Duration::from_millis(2500));
        let starts = std::fs::read_to_string(&log).unwrap_or_default();
        let n = starts.lines().count();
        assert!((2..=4).contains(&n), "{n} starts in 2.5 s: {starts:?}");
        crate::sys::signal::kill(pid as i32, nix::sys::signal::Signal::SIGUSR2 as i32).unwrap();
        let code = crate::testutil::wait_exit(pid);
        assert_eq!(code, Some(ShutdownKind::Poweroff as i32));
    }
}
