//! A child that shares its parent's memory until it execs, as vfork(2)
//! and musl's posix_spawn make it (`CLONE_VM | CLONE_VFORK`), on a stack
//! of its own. A fork copies the parent's page tables, both then fault on
//! every page either writes (copy-on-write) and the child's exec tears its
//! copy down again: under TCG, with page faults expensive, about 3 ms per
//! start (docs/benchmarks.md, "Where a boot's time goes"). Only for
//! parents that may block until the child execs or exits: a unit's
//! namespace reaper forking the service, never PID 1 itself (a child that
//! stalls before its exec would stall it).

use core::sync::atomic::{AtomicUsize, Ordering};
use rustix::io::Errno;

/// Bytes of the child's stack: the spawn path keeps its argv/env tables
/// (a few KiB) and small frames on it. Only the pages it touches are ever
/// backed.
const STACK: usize = 256 * 1024;
/// Inaccessible bytes below the stack, so that an overflow faults rather
/// than writing into the parent's memory (a multiple of every page size
/// the kernels wren runs on use: 4, 16 and 64 KiB).
const GUARD: usize = 64 * 1024;

/// The stack mapped once by `reserve` (its lowest address), or 0.
static RESERVED: AtomicUsize = AtomicUsize::new(0);

/// Map the children's stack once, in PID 1 at boot, so that its copies
/// (the reapers) find it mapped and pay neither the mmap, mprotect and
/// munmap of a stack per spawn nor their TLB flushes. PID 1 never
/// touches it, so it costs it no resident page, and each copy's pages of
/// it are its own. Without it, `spawn` maps a stack each time.
pub fn reserve() -> Result<(), Errno> {
    let base = map()?;
    RESERVED.store(base as usize, Ordering::Relaxed);
    Ok(())
}

/// A new private anonymous mapping of `len` bytes for stacks, readable
/// and writable (also `sys::slot`'s).
pub(super) fn map_stacks(len: usize) -> Result<*mut libc::c_void, Errno> {
    // SAFETY: a new private anonymous mapping: no address hint, so it
    // overlaps nothing of this process; the result is checked.
    let base = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
            -1,
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return Err(super::clone::last_errno());
    }
    Ok(base)
}

/// A stack of STACK bytes above an inaccessible guard of GUARD bytes.
fn map() -> Result<*mut libc::c_void, Errno> {
    let base = map_stacks(STACK + GUARD)?;
    // SAFETY: the lowest GUARD bytes of the mapping just made
    // (page-aligned as every mapping is), which nothing uses yet.
    if unsafe { libc::mprotect(base, GUARD, libc::PROT_NONE) } != 0 {
        let e = super::clone::last_errno();
        unmap(base);
        return Err(e);
    }
    Ok(base)
}

fn unmap(base: *mut libc::c_void) {
    // SAFETY: a mapping made by `map`, of that length, that nothing runs
    // on any more (a child that used it has exec'd or ended: CLONE_VFORK).
    unsafe { libc::munmap(base, STACK + GUARD) };
}

/// Start a child that shares this process's memory and runs `child` on
/// its own stack; the caller is suspended until the child execs or ends,
/// then gets its pid. Should `child` return, the child exits with 127.
///
/// The child writes to the caller's memory when it writes anything but
/// its own stack, so `child` must make raw system calls only, on its own
/// stack's buffers: no allocation, no lock, no libc state (the child
/// shares libc's thread data with the caller). `Copy` keeps it to a
/// closure over references, so nothing it holds is dropped twice or
/// leaked. For single-threaded callers: the stack `reserve` mapped serves
/// one child at a time. Err when no stack could be mapped or clone
/// failed.
pub fn spawn<F: FnOnce() + Copy>(child: F) -> Result<u32, Errno> {
    match RESERVED.load(Ordering::Relaxed) {
        0 => {
            let base = map()?;
            let result = on_stack(base as usize, child);
            unmap(base);
            result
        }
        base => on_stack(base, child),
    }
}

/// `spawn` on the stack mapped at `base`.
fn on_stack<F: FnOnce() + Copy>(base: usize, child: F) -> Result<u32, Errno> {
    on_stack_by(base, child, false)
}

/// `on_stack`; `legacy`: by clone(2) at once, as after clone3's ENOSYS
/// (tests).
fn on_stack_by<F: FnOnce() + Copy>(base: usize, child: F, legacy: bool) -> Result<u32, Errno> {
    let mut slot = Some(child);
    let arg = (&mut slot as *mut Option<F>).cast::<libc::c_void>();
    let mut args = super::clone::CloneArgs {
        flags: (libc::CLONE_VM | libc::CLONE_VFORK) as u64,
        exit_signal: libc::SIGCHLD as u64,
        stack: base.saturating_add(GUARD) as u64,
        stack_size: STACK as u64,
        ..Default::default()
    };
    // SAFETY: the stack, [base + GUARD, base + GUARD + STACK), is a
    // writable mapping (`map`) whose top is page-aligned, used by no one
    // else: this process has one thread and its previous child on it has
    // exec'd or ended. `trampoline::<F>` reads `slot`, an Option<F> that
    // lives in this frame, which stays put because CLONE_VFORK suspends
    // this thread until the child has exec'd or exited, and the child
    // never returns into this frame (it ends with _exit).
    let ret = unsafe { clone_vfork(&mut args, trampoline::<F>, arg, legacy) }?;
    u32::try_from(ret).map_err(|_| Errno::INVAL)
}

/// A raw clone3 (`slot::clone3_on`), not libc's clone, which is linked
/// for nothing else; where the kernel has none (before Linux 5.3, or a
/// seccomp filter that answers it so), clone(2), as every start does then
/// (docs/boot.md). `legacy`: clone(2) at once (tests). One copy for every
/// closure type.
///
/// # Safety
/// `args` describes a vfork onto a stack as `on_stack_by` makes it, and
/// `entry(arg)` never returns.
unsafe fn clone_vfork(
    args: &mut super::clone::CloneArgs,
    entry: extern "C" fn(*mut libc::c_void) -> !,
    arg: *mut libc::c_void,
    legacy: bool,
) -> Result<usize, Errno> {
    let ret = match legacy {
        true => Err(Errno::NOSYS),
        // SAFETY: the caller's contract.
        false => unsafe { super::slot::clone3_on(args, entry, arg) },
    };
    match ret {
        // SAFETY: the caller's contract; the stack's top is its base plus
        // its size, page-aligned.
        Err(Errno::NOSYS) => unsafe {
            super::slot::clone_on(
                (libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD) as usize,
                args.stack.saturating_add(args.stack_size) as usize,
                entry,
                arg,
            )
        },
        r => r,
    }
}

/// The child's first frame: take the closure out of the suspended
/// parent's slot, run it, end.
extern "C" fn trampoline<F: FnOnce() + Copy>(arg: *mut libc::c_void) -> ! {
    // SAFETY: `arg` is the `&mut Option<F>` that `on_stack` passed, in
    // the frame of a parent suspended until this child execs or exits:
    // valid, and used by no one else meanwhile.
    let slot = unsafe { &mut *arg.cast::<Option<F>>() };
    if let Some(f) = slot.take() {
        // As in `clone::finish`: units get the default policy back.
        let _ = super::sched::normal();
        f();
    }
    super::clone::exit(127)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testutil::wait_exit as wait;

    #[test]
    fn a_child_runs_on_its_own_stack_and_exits_with_its_code() {
        let code = 5;
        let pid = spawn(|| super::super::clone::exit(code)).unwrap();
        assert_eq!(wait(pid), Some(5));
    }

    /// The parent resumes only once the child has ended, and sees what it
    /// wrote (the memory is shared): a fork would leave `seen` untouched.
    #[test]
    fn the_parent_waits_for_the_child_and_shares_its_memory() {
        let seen = core::sync::atomic::AtomicU32::new(0);
        let pid = spawn(|| {
            seen.store(
                rustix::process::getpid().as_raw_nonzero().get() as u32,
                core::sync::atomic::Ordering::SeqCst,
            );
            super::super::clone::exit(0)
        })
        .unwrap();
        assert_eq!(seen.load(core::sync::atomic::Ordering::SeqCst), pid);
        assert_eq!(wait(pid), Some(0));
    }

    /// The stack `reserve` maps once serves one child after another.
    #[test]
    fn a_mapped_stack_serves_one_child_after_another() {
        let base = map().unwrap();
        for code in [4, 6] {
            let pid = on_stack(base as usize, || super::super::clone::exit(code)).unwrap();
            assert_eq!(wait(pid), Some(code));
        }
        unmap(base);
    }

    /// Without clone3 (before Linux 5.3): the same child by clone(2).
    #[test]
    fn without_clone3_a_child_is_made_by_clone() {
        let base = map().unwrap();
        let seen = core::sync::atomic::AtomicU32::new(0);
        let pid = on_stack_by(
            base as usize,
            || {
                seen.store(
                    rustix::process::getpid().as_raw_nonzero().get() as u32,
                    core::sync::atomic::Ordering::SeqCst,
                );
                super::super::clone::exit(7)
            },
            true,
        )
        .unwrap();
        assert_eq!(seen.load(core::sync::atomic::Ordering::SeqCst), pid);
        assert_eq!(wait(pid), Some(7));
        unmap(base);
    }

    #[test]
    fn a_child_that_returns_exits_with_127() {
        let pid = spawn(|| {}).unwrap();
        assert_eq!(wait(pid), Some(127));
    }

    /// It execs: the parent resumes at the exec, the program runs.
    #[test]
    fn a_child_can_exec() {
        let mut argv: crate::sys::exec::CStrings<64, 4> = crate::sys::exec::CStrings::new();
        let _ = argv.push(&["/bin/sh"]);
        let _ = argv.push(&["-c"]);
        let _ = argv.push(&["exit 3"]);
        let env: crate::sys::exec::CStrings<8, 1> = crate::sys::exec::CStrings::new();
        let (argv, env) = (&argv, &env);
        let pid = spawn(|| {
            let _ = crate::sys::exec::execve(argv, env);
            super::super::clone::exit(126)
        })
        .unwrap();
        assert_eq!(wait(pid), Some(3));
    }
}
