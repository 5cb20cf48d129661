//! A child's signal mask and SIGPIPE's action before its exec, and a
//! namespace reaper's signals, by raw system calls (`raw`): a child on a
//! spawn slot shares PID 1's errno, which libc's sigprocmask, sigaction,
//! sigwait and kill write when they fail.

use nix::sys::signal::Signal;
use rustix::io::Errno;

/// Bytes of the kernel's signal set (`_NSIG / 8`): 64 signals on every
/// architecture wren builds for.
const SIGSET_SIZE: usize = 8;

/// rt_sigprocmask(`how`, `set`) without the old mask.
fn sigprocmask(how: i32, set: u64) -> Result<(), Errno> {
    // SAFETY: `set` is a kernel signal set (one bit a signal) on this
    // frame, read during the call; no old set is asked for.
    unsafe {
        super::raw::syscall6(
            libc::SYS_rt_sigprocmask,
            [
                how as usize,
                &set as *const u64 as usize,
                0,
                SIGSET_SIZE,
                0,
                0,
            ],
        )
    }
    .map(|_| ())
}

/// Wait for a signal, every one blocked: rt_sigtimedwait on the full set,
/// no timeout (a namespace's reaper, which has nothing else to do). The
/// signal's number.
pub fn wait_any() -> Result<i32, Errno> {
    wait_any_within(None)
}

/// The timeout of `rt_sigtimedwait` (not its `_time64` twin): two longs
/// on every architecture, whatever a libc's `time_t` is (musl's is 64
/// bits on 32-bit targets since 1.2, where the kernel reads 32-bit ones).
#[repr(C)]
struct OldTimespec {
    tv_sec: libc::c_long,
    tv_nsec: libc::c_long,
}

/// `wait_any`, for at most `ms` when given: `Errno::AGAIN` when none came.
pub fn wait_any_within(ms: Option<u64>) -> Result<i32, Errno> {
    let set: u64 = !0;
    let ts = ms.map(|ms| OldTimespec {
        tv_sec: (ms / 1000).try_into().unwrap_or(libc::c_long::MAX),
        tv_nsec: ((ms % 1000) * 1_000_000).try_into().unwrap_or(0),
    });
    let ts_ptr = ts.as_ref().map_or(0, |t| t as *const OldTimespec as usize);
    // SAFETY: `set` is a kernel signal set on this frame, read during the
    // call; `ts`, when given, a timespec on this frame read during it; the
    // info pointer is null, which the kernel takes as none asked, and a
    // null timeout as none.
    let sig = unsafe {
        super::raw::syscall6(
            libc::SYS_rt_sigtimedwait,
            [&set as *const u64 as usize, 0, ts_ptr, SIGSET_SIZE, 0, 0],
        )
    }?;
    i32::try_from(sig).map_err(|_| Errno::INVAL)
}

/// The signals pending for this process (blocked, not yet taken), one
/// bit a signal (signal N at bit N - 1).
pub fn pending() -> Result<u64, Errno> {
    let mut set: u64 = 0;
    // SAFETY: `set` is a kernel signal set on this frame, written by the
    // kernel during the call (SIGSET_SIZE bytes: its size).
    unsafe {
        super::raw::syscall6(
            libc::SYS_rt_sigpending,
            [&mut set as *mut u64 as usize, SIGSET_SIZE, 0, 0, 0, 0],
        )
    }?;
    Ok(set)
}

/// kill(2) of `pid` as the kernel takes it: a process, a group (`-pgid`)
/// or every process it may signal (`-1`), which rustix does not offer.
pub fn kill(pid: i32, sig: i32) -> Result<(), Errno> {
    // SAFETY: two integers; the kernel reads no memory of ours.
    unsafe { super::raw::syscall6(libc::SYS_kill, [pid as usize, sig as usize, 0, 0, 0, 0]) }
        .map(|_| ())
}

/// Unblock every signal (a program must not start with PID 1's mask).
pub fn unblock_all() -> Result<(), Errno> {
    sigprocmask(libc::SIG_SETMASK, 0)
}

/// Block every signal that can be blocked (the kernel leaves SIGKILL and
/// SIGSTOP out).
pub fn block_all() -> Result<(), Errno> {
    sigprocmask(libc::SIG_BLOCK, !0)
}

/// Give `sig` its default action (a program started from PID 1 must not
/// inherit an ignored SIGPIPE: `initctl` ignores it, and a PID 1 exec'd
/// by an older wren may have it ignored).
pub fn set_default(sig: Signal) -> Result<(), Errno> {
    set_handler(sig as usize, 0)
}

/// Ignore `sig` (`initctl`: a closed pipe on stdout is an error, as under
/// Rust's own start-up).
pub fn ignore(sig: Signal) -> Result<(), Errno> {
    set_handler(sig as usize, 1)
}

/// Every signal the process was started with ignored given its default
/// action again (PID 1, at its start). An ignored disposition survives
/// exec, so whatever ignored one before exec'ing init (an initramfs
/// script, `nohup`) had it reach every unit started without a PID
/// namespace of its own; an ignored SIGCHLD would have the kernel reap
/// PID 1's children itself. Handlers are left: exec reset them already,
/// and those after are the C library's own. How many were ignored.
pub fn default_the_ignored() -> u32 {
    let mut n = 0;
    for sig in 1..=64usize {
        let mut old = [0u64; 4];
        // SAFETY: no new action (null); `old`, four words on this frame,
        // the kernel's largest struct sigaction, written during the call.
        let asked = unsafe {
            super::raw::syscall6(
                libc::SYS_rt_sigaction,
                [sig, 0, old.as_mut_ptr() as usize, SIGSET_SIZE, 0, 0],
            )
        };
        if asked.is_ok() && old.first() == Some(&1) {
            n += u32::from(set_handler(sig, 0).is_ok());
        }
    }
    n
}

/// Signal number `sig`'s handler set to SIG_DFL (0) or SIG_IGN (1).
fn set_handler(sig: usize, handler: u64) -> Result<(), Errno> {
    // The kernel's struct sigaction: the handler, then no flags, no
    // restorer, an empty mask. Its largest layout is four words.
    let act = [handler, 0, 0, 0];
    // SAFETY: `act` is a kernel sigaction on this frame, read during the
    // call; SIG_DFL and SIG_IGN install no handler, so nothing of ours can
    // run asynchronously because of it; no old action is asked for.
    unsafe {
        super::raw::syscall6(
            libc::SYS_rt_sigaction,
            [sig, act.as_ptr() as usize, 0, SIGSET_SIZE, 0, 0],
        )
    }
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use crate::vocab::{signal, ShutdownKind};

    /// Ignored signals get their default action back, in a process of the
    /// test's own (dispositions are the process's).
    #[test]
    fn the_ignored_signals_get_their_default_action_back() {
        let name = "the_ignored_signals_get_their_default_action_back";
        if !crate::testutil::run_alone(module_path!(), name) {
            return;
        }
        let ignored = || {
            let st = std::fs::read_to_string("/proc/self/status").unwrap();
            let line = st.lines().find(|l| l.starts_with("SigIgn:")).unwrap();
            u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
        };
        super::ignore(Signal::SIGHUP).unwrap();
        super::ignore(Signal::SIGCHLD).unwrap();
        let before = ignored();
        assert_ne!(before & (1 << (libc::SIGHUP - 1)), 0);
        assert_eq!(super::default_the_ignored(), before.count_ones());
        assert_eq!(ignored(), 0);
    }
    use nix::sys::signal::Signal;
    use std::time::{Duration, Instant};

    /// A blocked signal sent is pending until it is taken.
    #[test]
    fn a_blocked_signal_is_pending_until_taken() {
        let (before, during, after) = std::thread::spawn(|| {
            super::block_all().unwrap();
            let before = super::pending().unwrap();
            // SAFETY: a signal to this thread, which blocks it.
            let sent = unsafe { libc::pthread_kill(libc::pthread_self(), libc::SIGUSR1) };
            assert_eq!(sent, 0);
            let during = super::pending().unwrap();
            assert_eq!(super::wait_any_within(Some(1000)), Ok(libc::SIGUSR1));
            (before, during, super::pending().unwrap())
        })
        .join()
        .unwrap();
        let bit = 1u64 << (libc::SIGUSR1 - 1);
        assert_eq!((before & bit, during & bit, after & bit), (0, bit, 0));
    }

    /// The last resort's wait: bounded by its timeout (seconds and
    /// nanoseconds both read), and a signal already pending taken at once.
    /// In a thread of its own: the mask is a thread's.
    #[test]
    fn a_bounded_wait_ends_at_its_bound_or_at_a_signal() {
        let waited = std::thread::spawn(|| {
            super::block_all().unwrap();
            let t = Instant::now();
            let timed_out = super::wait_any_within(Some(1050));
            let waited = t.elapsed();
            // SAFETY: a signal to this thread, which blocks it.
            let sent = unsafe { libc::pthread_kill(libc::pthread_self(), libc::SIGUSR2) };
            let took = super::wait_any_within(Some(10_000));
            (timed_out, waited, sent, took, t.elapsed() - waited)
        })
        .join()
        .unwrap();
        let (timed_out, waited, sent, took, then) = waited;
        assert_eq!(timed_out, Err(rustix::io::Errno::AGAIN));
        assert!(
            waited >= Duration::from_millis(1050) && waited < Duration::from_secs(5),
            "{waited:?}"
        );
        assert_eq!((sent, took), (0, Ok(libc::SIGUSR2)));
        assert!(then < Duration::from_secs(5), "{then:?}");
    }

    /// The core numbers signals without a syscall crate; they must be this
    /// target's C library's.
    #[test]
    fn the_core_signal_table_matches_the_c_library() {
        let libc: Vec<(String, i32)> = Signal::iterator()
            .map(|s| (s.as_str().trim_start_matches("SIG").to_owned(), s as i32))
            .collect();
        let core: Vec<(String, i32)> = signal::NAMES
            .iter()
            .map(|(n, v)| ((*n).to_owned(), *v))
            .collect();
        let mut l = libc.clone();
        l.sort_by_key(|(_, v)| *v);
        assert_eq!(core, l);
        for (name, n) in &libc {
            assert_eq!(signal::name(*n), Some(name.as_str()));
            assert_eq!(signal::parse(name), Some(*n));
            assert_eq!(signal::parse(&format!("SIG{name}")), Some(*n));
            assert_eq!(signal::parse(&name.to_lowercase()), Some(*n));
        }
        for n in [0, 32, 64, -1] {
            assert_eq!(signal::name(n), None);
        }
        assert_eq!(signal::HUP, Signal::SIGHUP as i32);
        assert_eq!(signal::INT, Signal::SIGINT as i32);
        assert_eq!(signal::KILL, Signal::SIGKILL as i32);
        assert_eq!(signal::USR1, Signal::SIGUSR1 as i32);
        assert_eq!(signal::USR2, Signal::SIGUSR2 as i32);
        assert_eq!(signal::TERM, Signal::SIGTERM as i32);
    }

    #[test]
    fn shutdown_kinds_follow_the_c_library_numbers() {
        for s in Signal::iterator() {
            let want = match s {
                Signal::SIGTERM | Signal::SIGINT => Some(ShutdownKind::Reboot),
                Signal::SIGUSR1 => Some(ShutdownKind::Halt),
                Signal::SIGUSR2 => Some(ShutdownKind::Poweroff),
                _ => None,
            };
            assert_eq!(ShutdownKind::for_signal(s as i32), want, "{s}");
        }
    }
}
