//! System calls made straight to the kernel, without libc: the kernel's
//! result comes back as a value and errno is never written.
//!
//! A child on a spawn slot (`slot`) shares PID 1's memory, its thread
//! pointer included, so libc's errno there is PID 1's: a libc call that
//! fails in the child would write it under PID 1, between one of PID 1's
//! own failing calls and its read of errno. The calls such a child makes
//! (execve, seccomp, close_range, the netdev ioctl, its signal mask,
//! SIGPIPE's action and its scheduling policy) go through here instead. On architectures without
//! an entry below, libc's `syscall` stands in (errno is then written, as
//! before).

use rustix::io::Errno;

/// The kernel's return value of a system call: `-errno` on failure.
pub(super) fn result(r: isize) -> Result<usize, Errno> {
    // The kernel's error returns are -4095..=-1; everything else is a value.
    if (-4095..0).contains(&r) {
        Err(Errno::from_raw_os_error(r.unsigned_abs() as i32))
    } else {
        Ok(r as usize)
    }
}

/// System call `nr` with six arguments (unused ones 0).
///
/// # Safety
/// As for the system call itself: every argument that is a pointer must be
/// valid for what the kernel does through it during the call.
#[cfg(target_arch = "aarch64")]
pub(super) unsafe fn syscall6(nr: libc::c_long, a: [usize; 6]) -> Result<usize, Errno> {
    let [a0, a1, a2, a3, a4, a5] = a;
    let r: isize;
    // SAFETY: `svc 0` with the number in x8 and the arguments in x0-x5 is
    // the aarch64 Linux system call convention; the kernel returns in x0
    // and preserves every other register. What it does through pointer
    // arguments is this function's caller's contract.
    unsafe {
        core::arch::asm!(
            "svc 0",
            in("x8") nr,
            inlateout("x0") a0 => r,
            in("x1") a1,
            in("x2") a2,
            in("x3") a3,
            in("x4") a4,
            in("x5") a5,
            options(nostack),
        );
    }
    result(r)
}

/// System call `nr` with six arguments (unused ones 0).
///
/// # Safety
/// As for the system call itself: every argument that is a pointer must be
/// valid for what the kernel does through it during the call.
#[cfg(target_arch = "x86_64")]
pub(super) unsafe fn syscall6(nr: libc::c_long, a: [usize; 6]) -> Result<usize, Errno> {
    let [a0, a1, a2, a3, a4, a5] = a;
    let r: isize;
    // SAFETY: `syscall` with the number in rax and the arguments in rdi,
    // rsi, rdx, r10, r8, r9 is the x86_64 Linux convention; the kernel
    // returns in rax and clobbers only rcx and r11. What it does through
    // pointer arguments is this function's caller's contract.
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") nr as isize => r,
            in("rdi") a0,
            in("rsi") a1,
            in("rdx") a2,
            in("r10") a3,
            in("r8") a4,
            in("r9") a5,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    result(r)
}

/// System call `nr` with six arguments (unused ones 0), through libc.
///
/// # Safety
/// As for the system call itself: every argument that is a pointer must be
/// valid for what the kernel does through it during the call.
#[cfg(not(any(target_arch = "aarch64", target_arch = "x86_64")))]
pub(super) unsafe fn syscall6(nr: libc::c_long, a: [usize; 6]) -> Result<usize, Errno> {
    let [a0, a1, a2, a3, a4, a5] = a;
    // SAFETY: the caller's contract, as above.
    let r = unsafe { libc::syscall(nr, a0, a1, a2, a3, a4, a5) };
    if r == -1 {
        Err(super::clone::last_errno())
    } else {
        Ok(r as usize)
    }
}

/// The first child that has ended, left waitable: `waitid(P_ALL, WEXITED |
/// WNOHANG | WNOWAIT)`. Its pid and its end: `Ok(code)` for an exit, `Err(signal)`
/// for a kill. None when no child has ended (or none is left). rustix's
/// `waitid` does not say the pid.
pub fn ended_child() -> Option<(u32, Result<i32, i32>)> {
    ended(libc::P_ALL, 0)
}

/// `ended_child` for child `pid` only (`P_PID`): since Linux 5.14 the
/// kernel looks at that task alone, where `P_ALL` walks every child of
/// PID 1 (one or two a unit: about 30 µs of a restart at 1,000 units on
/// the icount clock; older kernels walk for `P_PID` too, with a cheaper
/// test). None when it has not ended, or is not a child.
pub fn ended_child_of(pid: u32) -> Option<(u32, Result<i32, i32>)> {
    waitid_pid(pid).ok().flatten()
}

/// Whether `pid` is a child of this process, running or a zombie not yet
/// reaped (not ECHILD).
pub fn child(pid: u32) -> bool {
    waitid_pid(pid).is_ok()
}

/// Whether `pid` is a child of this process that has not ended: not a
/// zombie, not reaped (ECHILD, whoever took it; its number may be
/// another process's by now).
pub fn running_child(pid: u32) -> bool {
    matches!(waitid_pid(pid), Ok(None))
}

/// `waitid_nowait` for child `pid` (`P_PID`); ECHILD for 0, no child's
/// pid.
fn waitid_pid(pid: u32) -> Result<Option<Ended>, Errno> {
    let id = usize::try_from(pid).ok().filter(|&p| p != 0);
    waitid_nowait(libc::P_PID, id.ok_or(Errno::CHILD)?)
}

fn ended(idtype: libc::idtype_t, id: usize) -> Option<(u32, Result<i32, i32>)> {
    waitid_nowait(idtype, id).ok().flatten()
}

/// An ended child: its pid and its end, `Ok(code)` for an exit,
/// `Err(signal)` for a kill.
type Ended = (u32, Result<i32, i32>);

/// `waitid(idtype, id, WEXITED | WNOHANG | WNOWAIT)`: an ended child, None
/// when no child of those asked about has ended; an error for none at
/// all.
fn waitid_nowait(idtype: libc::idtype_t, id: usize) -> Result<Option<Ended>, Errno> {
    let mut info = core::mem::MaybeUninit::<libc::siginfo_t>::zeroed();
    let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
    // SAFETY: `info` is a siginfo_t, writable for the call; the rusage
    // pointer is null.
    unsafe {
        syscall6(
            libc::SYS_waitid,
            [
                idtype as usize,
                id,
                info.as_mut_ptr() as usize,
                flags as usize,
                0,
                0,
            ],
        )
    }?;
    // SAFETY: all zeroes is a valid siginfo_t (integers); the kernel wrote
    // a SIGCHLD one over it, or nothing (no child ended).
    let info = unsafe { info.assume_init() };
    // SAFETY: a SIGCHLD siginfo's union holds the sigchld fields, and the
    // zeroed one reads as pid 0.
    let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
    let Some(pid) = u32::try_from(pid).ok().filter(|&p| p != 0) else {
        return Ok(None);
    };
    match info.si_code {
        libc::CLD_EXITED => Ok(Some((pid, Ok(status)))),
        _ => Ok(Some((pid, Err(status)))),
    }
}

#[cfg(test)]
pub(crate) mod errno {
    pub(crate) fn get() -> i32 {
        // SAFETY: errno's address for the calling thread, valid for its life.
        unsafe { *libc::__errno_location() }
    }

    pub(crate) fn set(v: i32) {
        // SAFETY: as above; any int is a valid errno value.
        unsafe { *libc::__errno_location() = v };
    }
}

#[cfg(test)]
mod tests {
    use super::errno::{get as errno, set as set_errno};
    use super::*;

    /// In a copy of this process (its children are its own, not other
    /// tests'): an ended child is named with how it ended, and stays
    /// waitable until it is waited for.
    #[test]
    fn an_ended_child_is_named_and_left_waitable() {
        use crate::sys::clone::{clone_into, exit};
        use crate::unit::Namespaces;
        use rustix::process::{waitpid, Pid, WaitOptions};
        fn ended(pid: u32) -> Option<Result<i32, i32>> {
            for _ in 0..2000 {
                match ended_child() {
                    Some((p, end)) if p == pid => return Some(end),
                    Some(_) => return None,
                    None => std::thread::sleep(std::time::Duration::from_millis(1)),
                }
            }
            None
        }
        let reap = |pid: u32| {
            let p = Pid::from_raw(pid as i32).unwrap();
            waitpid(Some(p), WaitOptions::NOHANG)
                .ok()
                .flatten()
                .is_some()
        };
        let outer = clone_into(Namespaces(0), None, || {
            // Bit by bit, what went wrong.
            let mut bad = i32::from(ended_child().is_some());
            let Ok(a) = clone_into(Namespaces(0), None, || exit(7)) else {
                exit(64)
            };
            bad |= i32::from(ended(a) != Some(Ok(7))) << 1;
            bad |= i32::from(ended(a) != Some(Ok(7))) << 2; // still there
            bad |= i32::from(!reap(a)) << 3;
            bad |= i32::from(ended_child().is_some()) << 4;
            let Ok(b) = clone_into(Namespaces(0), None, || {
                std::thread::sleep(std::time::Duration::from_secs(30));
                exit(0)
            }) else {
                exit(64)
            };
            let _ = rustix::process::kill_process(
                Pid::from_raw(b as i32).unwrap(),
                rustix::process::Signal::KILL,
            );
            bad |= i32::from(ended(b) != Some(Err(libc::SIGKILL))) << 5;
            bad |= i32::from(!reap(b)) << 6;
            exit(bad)
        })
        .unwrap();
        assert_eq!(crate::testutil::wait_exit(outer), Some(0));
    }

    /// `ended_child_of` names only the child asked for, once it has ended,
    /// and leaves it waitable; a running child and a pid that is not a
    /// child give nothing, even while another child has ended.
    #[test]
    fn an_ended_child_is_found_by_its_pid_alone() {
        use crate::sys::clone::{clone_into, exit};
        use crate::unit::Namespaces;
        use rustix::process::{waitpid, Pid, WaitOptions};
        let outer = clone_into(Namespaces(0), None, || {
            let mut bad = 0;
            let Ok(slow) = clone_into(Namespaces(0), None, || {
                std::thread::sleep(std::time::Duration::from_secs(30));
                exit(0)
            }) else {
                exit(64)
            };
            let Ok(a) = clone_into(Namespaces(0), None, || exit(3)) else {
                exit(64)
            };
            let mut found = None;
            for _ in 0..2000 {
                found = ended_child_of(a);
                if found.is_some() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            bad |= i32::from(found != Some((a, Ok(3))));
            bad |= i32::from(ended_child_of(a) != Some((a, Ok(3)))) << 1; // still there
            bad |= i32::from(ended_child_of(slow).is_some()) << 2; // running
            bad |= i32::from(ended_child_of(1).is_some()) << 3; // not a child
            let p = Pid::from_raw(a as i32).unwrap();
            let reaped = waitpid(Some(p), WaitOptions::NOHANG).ok().flatten();
            bad |= i32::from(reaped.is_none()) << 4;
            bad |= i32::from(ended_child_of(a).is_some()) << 5; // gone
            let s = Pid::from_raw(slow as i32).unwrap();
            let _ = rustix::process::kill_process(s, rustix::process::Signal::KILL);
            bad |= i32::from(waitpid(Some(s), WaitOptions::empty()).is_err()) << 6;
            exit(bad)
        })
        .unwrap();
        assert_eq!(crate::testutil::wait_exit(outer), Some(0));
    }

    #[test]
    fn a_failing_call_returns_its_errno_and_leaves_errno_alone() {
        set_errno(0);
        // close_range with an unknown flag.
        // SAFETY: no pointer arguments.
        let r = unsafe { syscall6(libc::SYS_close_range, [3, 2, 1 << 30, 0, 0, 0]) };
        assert_eq!(r, Err(Errno::INVAL));
        #[cfg(any(target_arch = "aarch64", target_arch = "x86_64"))]
        assert_eq!(errno(), 0);
    }

    #[test]
    fn a_call_that_succeeds_returns_its_value() {
        // SAFETY: no arguments.
        let pid = unsafe { syscall6(libc::SYS_getpid, [0; 6]) };
        assert_eq!(pid, Ok(std::process::id() as usize));
    }

    #[test]
    fn results_in_the_error_range_only_are_errors() {
        assert_eq!(result(-1), Err(Errno::PERM));
        assert_eq!(result(-4095), Err(Errno::from_raw_os_error(4095)));
        assert_eq!(result(-4096), Ok((-4096isize) as usize));
        assert_eq!(result(0), Ok(0));
    }
}
