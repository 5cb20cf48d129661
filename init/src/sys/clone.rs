//! clone3, which neither nix nor rustix wraps: a fork-like copy of PID 1
//! placed by the kernel straight into a unit's cgroup (`CLONE_INTO_CGROUP`)
//! and new namespaces, so no instruction of it runs outside them. And
//! `_exit`, the only way such a copy may end.

use crate::unit::Namespaces;
use rustix::fd::{AsRawFd, BorrowedFd};
use rustix::io::Errno;

/// The clone3 argument block (linux/sched.h, version 2 with `cgroup`).
#[repr(C)]
#[derive(Default)]
pub(super) struct CloneArgs {
    pub(super) flags: u64,
    pub(super) pidfd: u64,
    pub(super) child_tid: u64,
    pub(super) parent_tid: u64,
    pub(super) exit_signal: u64,
    pub(super) stack: u64,
    pub(super) stack_size: u64,
    pub(super) tls: u64,
    pub(super) set_tid: u64,
    pub(super) set_tid_size: u64,
    pub(super) cgroup: u64,
}

pub(super) const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// A network namespace of its own for the calling process (`net`, made
/// by the child: see `namespace_flags`).
pub fn unshare_net() -> Result<(), Errno> {
    // SAFETY: without `UnshareFlags::FILES` no fd table is unshared, so no
    // thread can be left with fds it cannot use (the function's one
    // hazard); a network namespace changes nothing of this process's
    // memory.
    unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNET) }
}

/// clone3 flags for `ns`, `net` left out: the child makes its network
/// namespace itself (`spawn::sandbox::enter`), as the kernel's work for
/// one waits for the rtnl lock, which PID 1 must not.
pub(super) fn namespace_flags(ns: Namespaces) -> u64 {
    let mut f = 0u64;
    for (bit, flag) in [
        (Namespaces::PID, libc::CLONE_NEWPID),
        (Namespaces::MOUNT, libc::CLONE_NEWNS),
        (Namespaces::UTS, libc::CLONE_NEWUTS),
        (Namespaces::IPC, libc::CLONE_NEWIPC),
        (Namespaces::CGROUP, libc::CLONE_NEWCGROUP),
        (Namespaces::USER, libc::CLONE_NEWUSER),
    ] {
        if ns.has(bit) {
            // The flags are positive bit masks; the cast only widens.
            f |= flag as u64;
        }
    }
    f
}

/// Start a copy of the calling process, as fork(2) does, in new
/// namespaces `ns` and, with `cgroup` (a cgroup directory fd), in that
/// cgroup. The copy runs `child`, which should exec or `exit`; should it
/// return, the copy exits with 127 rather than go on as its parent. The
/// caller gets the copy's pid.
///
/// The copy has only the calling thread and shares libc's cached state
/// (the thread id) with the caller, so `child` must do nothing but raw
/// system calls on fixed buffers: no allocation, no lock, no libc state.
/// PID 1, the only caller, is single-threaded.
pub fn clone_into(
    ns: Namespaces,
    cgroup: Option<BorrowedFd<'_>>,
    child: impl FnOnce(),
) -> Result<u32, Errno> {
    let mut child = Some(child);
    // One body for every caller's closure (issue 10's size budget).
    clone_dyn(ns, cgroup, &mut || {
        if let Some(c) = child.take() {
            c();
        }
    })
}

fn clone_dyn(
    ns: Namespaces,
    cgroup: Option<BorrowedFd<'_>>,
    child: &mut dyn FnMut(),
) -> Result<u32, Errno> {
    let mut args = CloneArgs {
        flags: namespace_flags(ns) | cgroup.map_or(0, |_| CLONE_INTO_CGROUP),
        exit_signal: libc::SIGCHLD as u64,
        // A valid fd is never negative, so the cast keeps its value.
        cgroup: cgroup.map_or(0, |c| c.as_raw_fd() as u64),
        ..CloneArgs::default()
    };
    // SAFETY: clone3 without CLONE_VM, CLONE_THREAD or a stack behaves like
    // fork: the child gets its own copy of this address space and returns
    // here on the copy of the calling thread's stack. `args` is a valid,
    // initialised clone_args of the size passed, alive across the call, and
    // `cgroup` is a borrowed, therefore open, fd.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            core::mem::size_of::<CloneArgs>(),
        )
    };
    // No clone3 (before Linux 5.3): without a cgroup to go into, clone(2)
    // does the same (PID 1 then runs its units without cgroups).
    let ret = if ret < 0 && cgroup.is_none() && last_errno() == Errno::NOSYS {
        legacy_clone(args.flags)
    } else {
        ret
    };
    finish(ret, child)
}

/// clone(2) as a fork in new namespaces `flags`: no cgroup placement.
fn legacy_clone(flags: u64) -> libc::c_long {
    // SAFETY: as clone3 above: without CLONE_VM, CLONE_THREAD and with a
    // null stack the child runs on its copy of this address space and
    // stack, as after fork. The pointer arguments are null, which clone
    // accepts as no CLONE_*TID or CLONE_SETTLS flag is given.
    unsafe {
        libc::syscall(
            libc::SYS_clone,
            flags | libc::SIGCHLD as u64,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    }
}

/// In the copy (0), run `child` and end; in the caller, the copy's pid.
fn finish(ret: libc::c_long, child: &mut dyn FnMut()) -> Result<u32, Errno> {
    match ret {
        0 => {
            // PID 1 runs as SCHED_BATCH (`sched`), which a copy inherits:
            // units and helpers get the default policy back. A refusal
            // leaves the copy as it is.
            let _ = super::sched::normal();
            child();
            exit(127)
        }
        r if r < 0 => Err(last_errno()),
        pid => u32::try_from(pid).map_err(|_| Errno::INVAL),
    }
}

/// End this process at once, without the destructors and atexit handlers
/// of the process it was copied from (they belong to PID 1).
pub fn exit(code: i32) -> ! {
    // SAFETY: _exit only ends the process; it has no precondition and does
    // not return.
    unsafe { libc::_exit(code) }
}

/// errno of the last failed libc call on this thread.
pub(crate) fn last_errno() -> Errno {
    Errno::from_raw_os_error(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_flags_are_the_kernel_clone_flags() {
        assert_eq!(namespace_flags(Namespaces::NONE), 0);
        assert_eq!(
            namespace_flags(Namespaces(Namespaces::PID | Namespaces::USER)),
            (libc::CLONE_NEWPID | libc::CLONE_NEWUSER) as u64
        );
        // `net` is the child's to make (`spawn::sandbox::enter`): the
        // kernel's rtnl lock is not PID 1's to wait for.
        assert_eq!(namespace_flags(Namespaces(Namespaces::NET)), 0);
        assert_eq!(
            namespace_flags(Namespaces(Namespaces::MOUNT)),
            libc::CLONE_NEWNS as u64
        );
    }

    #[test]
    fn a_copy_runs_the_child_and_exits_with_its_code() {
        let pid = clone_into(Namespaces::NONE, None, || exit(7)).unwrap();
        let p = rustix::process::Pid::from_raw(pid as i32);
        let (_, st) = rustix::process::waitpid(p, rustix::process::WaitOptions::empty())
            .unwrap()
            .unwrap();
        assert_eq!(st.exit_status(), Some(7));
    }

    /// The fallback for kernels without clone3 makes the same copy.
    #[test]
    fn a_legacy_clone_copy_runs_the_child_and_exits_with_its_code() {
        let pid = finish(legacy_clone(namespace_flags(Namespaces::NONE)), &mut || {
            exit(9)
        })
        .unwrap();
        let p = rustix::process::Pid::from_raw(pid as i32);
        let (_, st) = rustix::process::waitpid(p, rustix::process::WaitOptions::empty())
            .unwrap()
            .unwrap();
        assert_eq!(st.exit_status(), Some(9));
    }
}
