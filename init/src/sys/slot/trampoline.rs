//! The trampoline of `sys::slot` (its module doc): a thread of PID 1's
//! that makes itself a small fd table and clones a start's child sharing
//! it, so that no start copies PID 1's whole table.

use super::{clone3_on, CloneArgs, LOW_FDS, TRAMPOLINE_STACK};
use core::ffi::c_void;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use rustix::io::Errno;

/// The kernel does not know `CLOSE_RANGE_UNSHARE` (before Linux 5.9): no
/// more trampolines, every child copies the whole table.
pub(super) static NO_TRAMPOLINE: AtomicBool = AtomicBool::new(false);
/// Nonzero while a trampoline runs on the trampoline's stack: set by its
/// claim, cleared by the kernel when the trampoline thread exits
/// (`CLONE_CHILD_CLEARTID`), before PID 1 goes on from its vfork. One
/// trampoline at a time: PID 1's next start comes after; a start that
/// finds it busy (threaded host tests) clones directly.
pub(super) static TRAMPOLINE_BUSY: AtomicU32 = AtomicU32::new(0);
/// The trampoline's stack was touched since its pages were given back.
pub(super) static TRAMPOLINE_DIRTY: AtomicBool = AtomicBool::new(false);
/// Children started through the trampoline, for the boot's "units up"
/// line.
static TRAMPOLINED: AtomicU32 = AtomicU32::new(0);

/// Children started through the trampoline so far.
pub fn trampolined() -> u32 {
    TRAMPOLINED.load(Ordering::Relaxed)
}

/// The trampoline's stack, if no trampoline runs on it (`TRAMPOLINE_BUSY`).
pub(super) fn claim_trampoline() -> bool {
    TRAMPOLINE_BUSY
        .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
}

/// What the trampoline works from, in its caller's frame.
struct Job {
    args: *mut CloneArgs,
    entry: extern "C" fn(*mut c_void) -> !,
    arg: *mut c_void,
    /// The child's pid, written by the kernel when the child exists
    /// (`CLONE_PARENT_SETTID`): 0 if it never did.
    pid: AtomicU32,
    /// The child's clone3 failed with this errno.
    errno: AtomicU32,
    /// The kernel does not know `CLOSE_RANGE_UNSHARE`.
    refused: AtomicBool,
}

/// Clone `args`' child (first frame `entry(arg)`) through a trampoline on
/// the stack whose low end is `stack` (the module's doc). None when the
/// trampoline could not be started (`args` then as given: the caller
/// clones directly); else the child's pid or clone3's error.
///
/// The trampoline is a thread of the caller's (`CLONE_THREAD`): its exit
/// needs no reaping and sends no SIGCHLD, which would wake PID 1 in the
/// middle of the start (a restart's grace, `pid1::handshake`). The child
/// it clones is the caller's once the trampoline is gone (the kernel
/// gives a dead thread's children to a live thread of its group), and
/// until then `getppid` already says the caller's pid. The hand-over is
/// also when the kernel sends a child its `PR_SET_PDEATHSIG` signal (the
/// parent that dies is the thread that cloned it): a program that set one
/// before the trampoline's exit got there would be killed for nothing.
/// So the kernel writes the trampoline's thread id to `tid` before it
/// runs (`CLONE_PARENT_SETTID`), and the child waits for that thread to
/// be gone (`wait_gone`) before it runs its start, and so its program.
///
/// # Safety
/// As for `clone3_on(args, entry, arg)`, and [stack, stack +
/// TRAMPOLINE_STACK) is writable, 16-byte aligned at its top and unused,
/// claimed (`TRAMPOLINE_BUSY`): this call gives it back.
pub(super) unsafe fn via_trampoline(
    args: &mut CloneArgs,
    entry: extern "C" fn(*mut c_void) -> !,
    arg: *mut c_void,
    stack: usize,
    tid: &AtomicU32,
) -> Option<Result<usize, Errno>> {
    let given = (args.flags, args.parent_tid);
    let job = Job {
        args,
        entry,
        arg,
        pid: AtomicU32::new(0),
        errno: AtomicU32::new(0),
        refused: AtomicBool::new(false),
    };
    // The child shares the trampoline's small table.
    // SAFETY: `job.args` is `args`, borrowed for this call.
    unsafe {
        (*job.args).flags |= (libc::CLONE_PARENT_SETTID | libc::CLONE_FILES) as u64;
        (*job.args).parent_tid = job.pid.as_ptr() as u64;
    }
    let mut t = CloneArgs {
        flags: (libc::CLONE_VM
            | libc::CLONE_SIGHAND
            | libc::CLONE_THREAD
            | libc::CLONE_VFORK
            | libc::CLONE_FILES
            | libc::CLONE_PARENT_SETTID
            | libc::CLONE_CHILD_CLEARTID) as u64,
        parent_tid: tid.as_ptr() as u64,
        child_tid: TRAMPOLINE_BUSY.as_ptr() as u64,
        stack: stack as u64,
        stack_size: TRAMPOLINE_STACK as u64,
        ..CloneArgs::default()
    };
    // SAFETY: the trampoline starts on [stack, stack + TRAMPOLINE_STACK)
    // (this function's contract) in `trampoline`, which reads `job` in
    // this frame: it stays put, since CLONE_VFORK suspends this thread
    // until the trampoline exits, and the trampoline never returns into
    // it. It shares this memory and fd table until its first call makes
    // the table its own; it writes nothing of the caller's but `job`, and
    // ends by exit(2), its thread alone.
    let ret = unsafe { clone3_on(&mut t, trampoline, (&job as *const Job).cast_mut().cast()) };
    if ret.is_err() {
        // SAFETY: as above; the trampoline never ran.
        unsafe { ((*job.args).flags, (*job.args).parent_tid) = given };
        TRAMPOLINE_BUSY.store(0, Ordering::Release);
        return None;
    }
    if job.refused.load(Ordering::Acquire) {
        NO_TRAMPOLINE.store(true, Ordering::Relaxed);
    }
    Some(match job.pid.load(Ordering::Acquire) {
        0 => Err(match job.errno.load(Ordering::Acquire) {
            0 => Errno::AGAIN,
            e => Errno::from_raw_os_error(e as i32),
        }),
        pid => {
            TRAMPOLINED.fetch_add(1, Ordering::Relaxed);
            Ok(pid as usize)
        }
    })
}

/// The trampoline's first frame: a table of its own with the fds below
/// LOW_FDS, the child's clone3 sharing it, the end of this thread.
extern "C" fn trampoline(arg: *mut c_void) -> ! {
    // SAFETY: `arg` is the Job of `via_trampoline`, in the frame of a
    // caller suspended until this thread exits: valid, and used by no one
    // else meanwhile.
    let job = unsafe { &*arg.cast::<Job>() };
    // SAFETY: close_range takes integers only.
    let unshared = unsafe {
        super::super::raw::syscall6(
            libc::SYS_close_range,
            [
                LOW_FDS as usize,
                u32::MAX as usize,
                CLOSE_RANGE_UNSHARE,
                0,
                0,
                0,
            ],
        )
    };
    // SAFETY: `job.args` is the caller's clone_args, alive and used by no
    // one else until this thread exits (above).
    let args = unsafe { &mut *job.args };
    if let Err(e) = unshared {
        // The table is still the caller's own: the child gets a copy of
        // it, never the table itself. Only a kernel without the flag
        // stops the trampolines; a copy that failed for memory may not
        // fail next time.
        args.flags &= !(libc::CLONE_FILES as u64);
        if e == Errno::NOSYS || e == Errno::INVAL {
            job.refused.store(true, Ordering::Release);
        }
    }
    // SAFETY: `via_trampoline`'s contract, which is `clone3_on`'s for
    // `args`, `job.entry` and `job.arg`.
    if let Err(e) = unsafe { clone3_on(args, job.entry, job.arg) } {
        job.errno
            .store(e.raw_os_error().unsigned_abs(), Ordering::Release);
    }
    #[cfg(test)]
    linger();
    // exit(2), not exit_group(2) (libc's `_exit`): this thread only, never
    // its caller's whole group (PID 1).
    loop {
        // SAFETY: exit takes an integer only and does not return.
        let _ = unsafe { super::super::raw::syscall6(libc::SYS_exit, [0; 6]) };
    }
}

/// close_range(2)'s flag: the caller's table becomes its own first.
const CLOSE_RANGE_UNSHARE: usize = 1 << 1;

/// Longest a child waits for its trampoline to be gone (`wait_gone`):
/// polls, the first `GONE_YIELDS` after a `sched_yield` (the trampoline
/// is mid-exit on another CPU, or waits for this one), the rest after a
/// sleep of `GONE_POLL`. A trampoline only has its exit left to make when
/// its child runs; should it be held up longer (a stalled host), the
/// child goes on, and the window is open again.
const GONE_POLLS: u32 = 200;
const GONE_YIELDS: u32 = 16;
const GONE_POLL: rustix::thread::Timespec = rustix::thread::Timespec {
    tv_sec: 0,
    tv_nsec: 50_000,
};

/// In the child of a trampoline whose thread id is in `tid` (0: none):
/// return once that thread is gone from the child's parent's thread group,
/// so that the child's parent is then PID 1's main thread, which never
/// exits (`via_trampoline`), or after `GONE_POLLS` polls. Raw system calls only
/// (a slot's child). A child in a PID namespace of its own sees no parent
/// (`getppid` 0) and is a namespace's reaper, which sets no such signal.
pub(super) fn wait_gone(tid: &AtomicU32) {
    let tid = tid.load(Ordering::Acquire);
    // Most children come from no trampoline: no call for them.
    if tid == 0 {
        return;
    }
    let tgid = rustix::process::getppid().map_or(0, |p| p.as_raw_nonzero().get());
    if tgid <= 0 {
        return;
    }
    for i in 0..GONE_POLLS {
        // SAFETY: tgkill with signal 0 takes integers only and sends
        // nothing: it says whether thread `tid` of group `tgid` exists.
        let alive = unsafe {
            super::super::raw::syscall6(libc::SYS_tgkill, [tgid as usize, tid as usize, 0, 0, 0, 0])
        };
        if alive.is_err() {
            return;
        }
        if i < GONE_YIELDS {
            rustix::thread::sched_yield();
        } else {
            let _ = rustix::thread::nanosleep(&GONE_POLL);
        }
    }
}

/// Tests: nanoseconds each trampoline sleeps before its exit, so that its
/// child reliably runs while it still exists.
#[cfg(test)]
pub(super) static LINGER_NS: AtomicU32 = AtomicU32::new(0);

#[cfg(test)]
fn linger() {
    let ns = LINGER_NS.load(Ordering::Acquire);
    if ns > 0 {
        let _ = rustix::thread::nanosleep(&rustix::thread::Timespec {
            tv_sec: 0,
            tv_nsec: i64::from(ns),
        });
    }
}
