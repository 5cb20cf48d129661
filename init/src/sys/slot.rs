//! PID 1's children sharing its memory until they exec (`CLONE_VM`
//! without `CLONE_VFORK`), each on a "slot": two stacks mapped once at
//! boot, with a guard below each. A fork copies PID 1's page tables, both
//! then fault on every page either writes (copy-on-write) and the child's
//! exec tears its copy down again: under TCG about 3 ms of every start
//! (docs/benchmarks.md, "Where a boot's time goes"). A child on a slot
//! costs none of that. PID 1 is not suspended (no `CLONE_VFORK`): a child
//! that stalls before its exec (a frozen cgroup, a hung mount) only keeps
//! its slot busy.
//!
//! When is a slot free again? `CLONE_CHILD_CLEARTID` points at the slot's
//! word `a`: the kernel zeroes it when the child execs or exits (it leaves
//! PID 1's memory), so PID 1 knows by an atomic load, without waiting. A
//! namespace reaper (the child, on stack A) forks its service on stack B
//! of the same slot with `CLONE_VM | CLONE_VFORK`, `CLONE_PARENT_SETTID`
//! and `CLONE_CHILD_CLEARTID` on word `b`: set by the kernel when the
//! service exists, zeroed when it execs or exits. A slot is free when
//! both words are 0.
//!
//! The rules that make sharing PID 1's memory safe (each caller's part is
//! said where it stands):
//! - What the child reads of the caller's frame (the closure and all it
//!   captures: the request, argv/env tables) is moved into the slot before
//!   the clone; the child then runs only on the slot's stacks. `spawn`
//!   takes only closures with nothing to drop, so nothing is dropped twice.
//! - Heap data the child reads through references it captures must stay
//!   put while it may read it: a reload first waits for busy slots, kills
//!   their children if they are slow, and refuses if a slot still does
//!   not clear (`quiesce`), never an unbounded wait; a probation's revert
//!   replaces a unit's definition once its start failed, so a reaper
//!   copies what it keeps of it before its service exists (`spawn`), and
//!   a start killed for its timeout is waited for, briefly, to leave
//!   (`wait_left`).
//! - The child makes raw system calls only, on its stack: no allocation,
//!   no lock (one held by a child that stalls or is killed would deadlock
//!   PID 1), no libc state (it shares PID 1's thread pointer, so a libc
//!   call that fails writes PID 1's errno).
//! - A child with a new user namespace, or anything else unusual, takes
//!   the fork path (`clone::clone_into`), as does every child when no
//!   slot is free or the pool could not be mapped.
//!
//! A clone copies the caller's whole fd table, and the child's exec (or a
//! reaper's `close_all_but`) closes the copy again: PID 1 holds an fd or
//! two per unit, so at 1,000 units that is a third of a restart
//! (docs/benchmarks.md, "Fifteenth round"). A child whose fds are all
//! below `LOW_FDS` (`Slot::low_fds`) is started through a trampoline
//! instead: a thread of PID 1's sharing its fd table, on a stack of its
//! own after the slots', PID 1 suspended until it exits (`CLONE_VFORK`;
//! it blocks on nothing a unit controls but the kernel's cgroup lock,
//! which its clone into the unit's cgroup takes as PID 1's own would:
//! docs/field.md).
//! The trampoline takes a table of its own holding only the fds below
//! `LOW_FDS` (`close_range(LOW_FDS, ~0, CLOSE_RANGE_UNSHARE)`), clones the
//! child sharing that small table, and exits; the child is then PID 1's.
//! When PID 1 runs again the child's copies exist, so PID 1 closes its
//! own at once, as after a plain clone. The child waits for the
//! trampoline thread to be gone before it runs (`wait_gone`): that
//! thread's exit would send it a parent-death signal it asked for. PID 1 keeps its long-lived fds
//! above `LOW_FDS` (`sys::fd::raise`).

use super::clone::{namespace_flags, CloneArgs, CLONE_INTO_CGROUP};
pub use trampoline::trampolined;
use trampoline::{claim_trampoline, via_trampoline, wait_gone, NO_TRAMPOLINE, TRAMPOLINE_DIRTY};

mod idle;
mod trampoline;
use crate::unit::Namespaces;
use core::ffi::c_void;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
#[cfg(test)]
pub(crate) use idle::reading;
pub use idle::{quiesce, recheck_timed_out, release_idle, wait_left};
use idle::{RECHECKS, RECHECKS_LEFT};
use rustix::fd::{AsRawFd, BorrowedFd};
use rustix::io::Errno;

/// Slots in the pool: one per start of a boot's batch (`EXEC_BATCH`, 16
/// starts before PID 1 waits for any exec), whose children mostly run
/// only once PID 1 waits (`SCHED_BATCH`: they do not preempt it); a start
/// that finds none free forks. Each costs
/// address space only (two stacks), backed while a child uses it.
pub const SLOTS: usize = 16;
/// Bytes of each stack: the spawn path's argv/env tables (a few KiB) and
/// small frames. Only the pages touched are ever backed.
const STACK: usize = 256 * 1024;
/// Inaccessible bytes below each stack, so that an overflow faults rather
/// than writing into PID 1's memory (a multiple of every page size the
/// kernels wren runs on use: 4, 16 and 64 KiB).
const GUARD: usize = 64 * 1024;
/// A guard and a stack: stack B (the service's) is the lower half of a
/// slot, stack A (the child's) the upper.
const HALF: usize = GUARD + STACK;
const SLOT_LEN: usize = 2 * HALF;
/// Most of stack A the closure may take.
const CLOSURE_MAX: usize = STACK / 4;
/// The trampoline's stack, mapped after the slots above a guard of its
/// own (so that no child's stack overflows into it, nor it into one).
const TRAMPOLINE_STACK: usize = GUARD;
/// What a child started through the trampoline gets of its caller's fd
/// table: the open fds numbered below this (with `CLOSE_RANGE_UNSHARE`
/// the kernel copies those below the range's start, at least the first
/// 64 numbers of a table).
pub const LOW_FDS: u32 = 64;

/// One slot's words.
struct State {
    /// Nonzero from the claim until the child on stack A execs or exits.
    a: AtomicU32,
    /// Nonzero while the service on stack B exists and has not exec'd.
    b: AtomicU32,
    /// The child's pid, for `quiesce`.
    pid: AtomicU32,
    /// The thread id of the trampoline that cloned the child, or 0.
    tramp: AtomicU32,
    /// The child went on running in PID 1's memory without reading any
    /// of PID 1's data (a reaper whose exec failed): its slot stays busy
    /// but a reload need not wait for it.
    detached: AtomicBool,
    /// Touched since its pages were last given back (`release_idle`).
    dirty: AtomicBool,
    /// Host tests: the thread that claimed it (`this_thread`), whose
    /// waits and kills alone regard it (`mine`).
    #[cfg(test)]
    by: AtomicUsize,
}

impl State {
    const fn new() -> Self {
        State {
            a: AtomicU32::new(0),
            b: AtomicU32::new(0),
            pid: AtomicU32::new(0),
            tramp: AtomicU32::new(0),
            detached: AtomicBool::new(false),
            dirty: AtomicBool::new(false),
            #[cfg(test)]
            by: AtomicUsize::new(0),
        }
    }

    /// The caller's to wait for and kill: PID 1's one thread claims and
    /// quiesces every slot; a host test's thread, only those it claimed
    /// (another test's children on slots are not its to kill).
    #[cfg(not(test))]
    fn mine(&self) -> bool {
        true
    }

    #[cfg(test)]
    fn mine(&self) -> bool {
        self.by.load(Ordering::Acquire) == this_thread()
    }

    /// Holds PID 1's data: its child or service has not exec'd yet.
    fn reading(&self) -> bool {
        (self.a.load(Ordering::Acquire) != 0 && !self.detached.load(Ordering::Acquire))
            || self.b.load(Ordering::Acquire) != 0
    }
}

static POOL: [State; SLOTS] = [const { State::new() }; SLOTS];
/// The pool's mapping (its lowest address), or 0.
static BASE: AtomicUsize = AtomicUsize::new(0);

/// Map the pool once, at boot. Its pages are backed only where children
/// touch them, and given back by `release_idle`.
pub fn reserve() -> Result<(), Errno> {
    if BASE.load(Ordering::Acquire) != 0 {
        return Ok(());
    }
    // The slots, then a guard and the trampoline's stack.
    let len = SLOT_LEN * SLOTS + GUARD + TRAMPOLINE_STACK;
    let base = super::vfork::map_stacks(len)? as usize;
    for guard in (0..SLOTS * 2 + 1).map(|h| base + h * HALF) {
        // SAFETY: the lowest GUARD bytes of a half of the mapping just
        // made, or of the trampoline's part after the last slot
        // (page-aligned: HALF is a multiple of every page size), which
        // nothing uses yet.
        if unsafe { libc::mprotect(guard as *mut c_void, GUARD, libc::PROT_NONE) } != 0 {
            let e = super::clone::last_errno();
            // SAFETY: the mapping made above, which nothing uses.
            unsafe { libc::munmap(base as *mut c_void, len) };
            return Err(e);
        }
    }
    if BASE
        .compare_exchange(0, base, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        // Another thread (host tests) mapped it first.
        // SAFETY: the mapping made above, which nothing uses.
        unsafe { libc::munmap(base as *mut c_void, len) };
    }
    Ok(())
}

/// A claimed slot, free for one child; given back if not used.
pub struct Slot {
    i: usize,
    base: usize,
    /// The child uses no fd numbered `LOW_FDS` or above (`low_fds`).
    low_fds: bool,
}

/// Claim a free slot, if the pool is mapped and one is free.
pub fn claim() -> Option<Slot> {
    #[cfg(test)]
    if !may_claim() {
        return None;
    }
    let pool = BASE.load(Ordering::Acquire);
    if pool == 0 {
        return None;
    }
    (0..SLOTS).find_map(|i| claim_at(pool, i))
}

/// Slot `i` of the pool mapped at `pool`, if free. Word `a` is claimed
/// first and `b` looked at after: looked at first, a reaper could vfork
/// its service (setting `b`) and be killed (clearing `a`) in between, and
/// the slot be taken with the service still on stack B.
fn claim_at(pool: usize, i: usize) -> Option<Slot> {
    let st = POOL.get(i)?;
    st.a.compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire)
        .ok()?;
    #[cfg(test)]
    st.by.store(this_thread(), Ordering::Release);
    let slot = Slot {
        i,
        base: pool + i * SLOT_LEN,
        low_fds: false,
    };
    // Busy after all: given back by the drop.
    (st.b.load(Ordering::Acquire) == 0).then_some(slot)
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(st) = POOL.get(self.i) {
            st.a.store(0, Ordering::Release);
        }
    }
}

/// The slot a child runs on, for the reaper's service and `detach`.
#[derive(Clone, Copy)]
pub struct InSlot {
    i: usize,
    base: usize,
}

impl Slot {
    /// The child will use no fd of its caller numbered `LOW_FDS` or above
    /// (those the caller holds then and any it opens later): it may get
    /// only the fds below, through the trampoline (the module's doc).
    pub fn low_fds(mut self) -> Self {
        self.low_fds = true;
        self
    }

    /// Start a child that shares this process's memory and runs
    /// `child(data)` on stack A, in new namespaces `ns` and, with
    /// `cgroup`, in that cgroup; returns its pid once it exists. Should
    /// `child` return, the child exits with 127. It runs with the
    /// caller's scheduling policy (PID 1's `SCHED_BATCH`): one that execs
    /// a program sets its own first (`sched::normal`).
    ///
    /// A copy of `data`, `child` and all it captures are put in the slot
    /// first (the caller's frame may be gone before the child runs; the
    /// child reads the copy in place, and neither is ever dropped); it
    /// must make raw system calls only (the module's rules), and whatever
    /// it reaches through references must outlive the child's exec.
    pub fn spawn<T, F: FnOnce(&T, InSlot)>(
        self,
        ns: Namespaces,
        cgroup: Option<BorrowedFd<'_>>,
        data: &T,
        child: F,
    ) -> Result<u32, Errno> {
        const { assert!(!core::mem::needs_drop::<T>() && !core::mem::needs_drop::<F>()) };
        let st = POOL.get(self.i).ok_or(Errno::INVAL)?;
        let size = core::mem::size_of::<Moved<T, F>>();
        if size > CLOSURE_MAX || core::mem::align_of::<Moved<T, F>>() > 64 {
            return Err(Errno::NOSPC);
        }
        let low = self.base + HALF + GUARD;
        let at = (self.base + SLOT_LEN - size) & !63;
        let here = InSlot {
            i: self.i,
            base: self.base,
        };
        let moved = at as *mut Moved<T, F>;
        // SAFETY: [at, at + size) lies at the top of stack A of this slot
        // (CLOSURE_MAX < STACK), aligned to 64 (at least Moved's
        // alignment), writable, and used by no one: the slot was free
        // when claimed and its word `a` has been nonzero since. `data` is
        // copied bit for bit: T has no drop glue (asserted above), so the
        // copy, never dropped, and the caller's value share nothing that
        // either would release.
        unsafe {
            core::ptr::addr_of_mut!((*moved).here).write(here);
            core::ptr::addr_of_mut!((*moved).child).write(child);
            core::ptr::copy_nonoverlapping(data, core::ptr::addr_of_mut!((*moved).data), 1);
        }
        st.b.store(0, Ordering::Release);
        st.tramp.store(0, Ordering::Release);
        st.detached.store(false, Ordering::Release);
        st.dirty.store(true, Ordering::Relaxed);
        RECHECKS_LEFT.store(RECHECKS, Ordering::Relaxed);
        let mut args = CloneArgs {
            flags: namespace_flags(ns)
                | cgroup.map_or(0, |_| CLONE_INTO_CGROUP)
                | (libc::CLONE_VM | libc::CLONE_CHILD_CLEARTID) as u64,
            child_tid: st.a.as_ptr() as u64,
            exit_signal: libc::SIGCHLD as u64,
            stack: low as u64,
            // The child's stack ends below the closure, 16-byte aligned.
            stack_size: ((at & !15) - low) as u64,
            // A valid fd is never negative, so the cast keeps its value.
            cgroup: cgroup.map_or(0, |c| c.as_raw_fd() as u64),
            ..CloneArgs::default()
        };
        let pool = BASE.load(Ordering::Acquire);
        let via = (self.low_fds && !NO_TRAMPOLINE.load(Ordering::Relaxed) && claim_trampoline())
            .then(|| {
                TRAMPOLINE_DIRTY.store(true, Ordering::Relaxed);
                // SAFETY: as for the direct clone3 below, which the
                // trampoline makes instead; its own stack, after the
                // slots' (`reserve`), is writable and, claimed just now,
                // unused.
                unsafe {
                    via_trampoline(
                        &mut args,
                        enter::<T, F>,
                        at as *mut c_void,
                        pool + SLOT_LEN * SLOTS + GUARD,
                        &st.tramp,
                    )
                }
            })
            .flatten();
        let ret = match via {
            Some(r) => r,
            // SAFETY: the child starts on [low, at & !15), writable, unused
            // (above), with its first frame `enter::<F>`, which reads the
            // pair just written once and never returns. CLONE_VM without
            // CLONE_THREAD or CLONE_SETTLS: a process of its own sharing
            // this address space, whose only writes outside its stack are
            // what `child` does (the module's rules). `args` is a valid
            // clone_args alive across the call; `cgroup` a borrowed,
            // therefore open, fd.
            None => unsafe { clone3_on(&mut args, enter::<T, F>, at as *mut c_void) },
        };
        // No child (an error): the slot goes back (Drop), the pair is
        // forgotten (it has nothing to drop).
        let ret = ret?;
        let pid = u32::try_from(ret).map_err(|_| Errno::INVAL)?;
        st.pid.store(pid, Ordering::Release);
        // The child's exec or exit gives the slot back, not this handle.
        core::mem::forget(self);
        Ok(pid)
    }
}

/// What `Slot::spawn` puts at the top of stack A.
struct Moved<T, F> {
    here: InSlot,
    child: F,
    data: T,
}

/// The child's first frame, on stack A: take the closure out of the slot,
/// run it on the data left there, end.
extern "C" fn enter<T, F: FnOnce(&T, InSlot)>(arg: *mut c_void) -> ! {
    let moved = arg.cast::<Moved<T, F>>();
    // SAFETY: `arg` is the Moved that `Slot::spawn` wrote above this stack
    // before the clone: initialised, the closure and handle read once,
    // here, the data only borrowed, and all left alone by PID 1 until this
    // child's exec or exit clears word `a`.
    let (here, f, data) = unsafe {
        (
            core::ptr::read(core::ptr::addr_of!((*moved).here)),
            core::ptr::read(core::ptr::addr_of!((*moved).child)),
            &*core::ptr::addr_of!((*moved).data),
        )
    };
    if let Some(st) = POOL.get(here.i) {
        wait_gone(&st.tramp);
    }
    // PID 1's SCHED_BATCH (`sched`) stays: a child that execs a unit's
    // program sets the default policy back itself; a namespace's reaper
    // keeps it, so that when its service's exec wakes it (`CLONE_VFORK`)
    // it does not preempt that exec (`enter_service` sets it back).
    f(data, here);
    super::clone::exit(127)
}

impl InSlot {
    /// Start the service on stack B, sharing this memory and suspending
    /// the caller until it execs or exits (`CLONE_VFORK`: the caller, a
    /// namespace's reaper, may wait): returns its pid (in the caller's
    /// PID namespace). Should `child` return, the service exits with 127.
    /// The same rules as `Slot::spawn`'s child apply to `child`.
    pub fn vfork<F: FnOnce()>(&self, child: F) -> Result<u32, Errno> {
        let st = POOL.get(self.i).ok_or(Errno::INVAL)?;
        let mut holder = Some(child);
        let word = st.b.as_ptr() as u64;
        let mut args = CloneArgs {
            flags: (libc::CLONE_VM
                | libc::CLONE_VFORK
                | libc::CLONE_PARENT_SETTID
                | libc::CLONE_CHILD_CLEARTID) as u64,
            parent_tid: word,
            child_tid: word,
            exit_signal: libc::SIGCHLD as u64,
            stack: (self.base + GUARD) as u64,
            stack_size: STACK as u64,
            ..CloneArgs::default()
        };
        // SAFETY: stack B, [base + GUARD, base + HALF), is writable and
        // unused (the slot's one service; its top, base + HALF, is 16-byte
        // aligned). `enter_service::<F>` takes the closure out of
        // `holder`, in this frame, which stays put because CLONE_VFORK
        // suspends this thread until the service has exec'd or exited,
        // and the service never returns into it. The kernel writes the
        // service's pid to word `b` before the service runs and zeroes it
        // at its exec or exit.
        let ret = unsafe {
            clone3_on(
                &mut args,
                enter_service::<F>,
                (&mut holder as *mut Option<F>).cast::<c_void>(),
            )
        };
        u32::try_from(ret?).map_err(|_| Errno::INVAL)
    }

    /// The caller goes on running in PID 1's memory, reading none of its
    /// data: a reload need not wait for this slot (it stays busy).
    pub fn detach(&self) {
        if let Some(st) = POOL.get(self.i) {
            st.detached.store(true, Ordering::Release);
        }
    }
}

/// The service's first frame, on stack B.
extern "C" fn enter_service<F: FnOnce()>(arg: *mut c_void) -> ! {
    // SAFETY: `arg` is the `&mut Option<F>` of `InSlot::vfork`, in the
    // frame of a caller suspended until this service execs or exits:
    // valid, and used by no one else meanwhile.
    let holder = unsafe { &mut *arg.cast::<Option<F>>() };
    if let Some(f) = holder.take() {
        // The service gets the default policy back (its reaper keeps
        // PID 1's SCHED_BATCH: see `enter`).
        let _ = super::sched::normal();
        f();
    }
    super::clone::exit(127)
}

/// clone3 whose child starts on `args`' stack in `entry(arg)`. Returns
/// the child's pid, or the kernel's errno (`raw::result`). A raw
/// `syscall` instruction: libc's wrapper would return in the child on a
/// stack that has no caller's frame, and set errno on failure.
///
/// # Safety
/// `args.stack`/`stack_size` describe a writable stack whose top is
/// 16-byte aligned and which nothing else uses; `entry` must never
/// return and may read `arg` only as its caller's contract says.
pub(super) unsafe fn clone3_on(
    args: &mut CloneArgs,
    entry: extern "C" fn(*mut c_void) -> !,
    arg: *mut c_void,
) -> Result<usize, Errno> {
    let size = core::mem::size_of::<CloneArgs>();
    // SAFETY: the caller's contract.
    unsafe {
        clone_raw(
            libc::SYS_clone3 as usize,
            args as *mut CloneArgs as usize,
            size,
            entry,
            arg,
        )
    }
}

/// `clone3_on` by clone(2), which kernels before 5.3 (and seccomp
/// filters that answer clone3 with ENOSYS) still have: `flags` with the
/// exit signal in its low byte, the child's stack pointer `top`. No
/// cgroup to clone into (clone(2) has none).
///
/// # Safety
/// As `clone3_on`: `top` is the (16-byte aligned) top of a writable stack
/// no one else uses, and `entry(arg)` never returns.
pub(super) unsafe fn clone_on(
    flags: usize,
    top: usize,
    entry: extern "C" fn(*mut c_void) -> !,
    arg: *mut c_void,
) -> Result<usize, Errno> {
    // SAFETY: the caller's contract.
    unsafe { clone_raw(libc::SYS_clone as usize, flags, top, entry, arg) }
}

/// System call `nr` with `a0`, `a1` and zeros for the next three (clone3:
/// its args and their size; clone: flags, stack top, and no parent tid,
/// child tid or TLS), whose child, on its new stack, calls `entry(arg)`.
///
/// # Safety
/// As `clone3_on`.
unsafe fn clone_raw(
    nr: usize,
    a0: usize,
    a1: usize,
    entry: extern "C" fn(*mut c_void) -> !,
    arg: *mut c_void,
) -> Result<usize, Errno> {
    let ret: isize;
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: clone3 or clone (the caller's contract). In the child
        // (rax 0), on its new stack: no frame to return to, so a null
        // frame pointer and a call of `entry`, which never returns (ud2
        // otherwise).
        unsafe {
            core::arch::asm!(
                "syscall",
                "test rax, rax",
                "jnz 2f",
                "xor ebp, ebp",
                "mov rdi, r12",
                "call r13",
                "ud2",
                "2:",
                inlateout("rax") nr as isize => ret,
                in("rdi") a0,
                in("rsi") a1,
                in("rdx") 0usize,
                in("r10") 0usize,
                in("r8") 0usize,
                in("r12") arg,
                in("r13") entry,
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack),
            );
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        // SAFETY: as for x86_64: the call, then in the child (x0 0) null
        // frame and link registers and a call of `entry`.
        unsafe {
            core::arch::asm!(
                "svc #0",
                "cbnz x0, 2f",
                "mov x29, xzr",
                "mov x30, xzr",
                "mov x0, x20",
                "blr x21",
                "brk #1",
                "2:",
                inlateout("x0") a0 as isize => ret,
                in("x1") a1,
                in("x2") 0usize,
                in("x3") 0usize,
                in("x4") 0usize,
                in("x8") nr,
                in("x20") arg,
                in("x21") entry,
                options(nostack),
            );
        }
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        // No raw clone written for this architecture: the fork path.
        let _ = (nr, a0, a1, entry, arg);
        ret = -(libc::ENOSYS as isize);
    }
    super::raw::result(ret)
}

/// Host tests that claim slots themselves run one at a time.
#[cfg(test)]
static TEST_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The thread holding `TEST_LOCK` (its `MARK`'s address), 0 when none
/// does: while one does, other threads' starts find no slot and fork, so
/// that test alone claims, gives back and waits for slots (`quiesce`
/// waits for every busy slot, whoever took it).
#[cfg(test)]
static OWNER: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);

#[cfg(test)]
std::thread_local!(static MARK: u8 = const { 0 });

#[cfg(test)]
fn this_thread() -> usize {
    MARK.with(|m| core::ptr::from_ref(m) as usize)
}

/// Whether this thread may use the slots now (tests): claim one, give
/// back idle pages, wait for or kill children on them.
#[cfg(test)]
pub(super) fn may_claim() -> bool {
    let owner = OWNER.load(Ordering::Acquire);
    owner == 0 || owner == this_thread()
}

/// `TEST_LOCK` held, and the slots this thread's alone while it is.
#[cfg(test)]
pub(crate) struct TestLock {
    _held: std::sync::MutexGuard<'static, ()>,
}

#[cfg(test)]
impl Drop for TestLock {
    fn drop(&mut self) {
        OWNER.store(0, Ordering::Release);
    }
}

/// Held by a host test that claims slots itself (or needs them not all
/// claimed), whatever a test that held it before did; the slots are its
/// thread's alone until it is dropped.
#[cfg(test)]
pub(crate) fn test_lock() -> TestLock {
    let g = TEST_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    OWNER.store(this_thread(), Ordering::Release);
    TestLock { _held: g }
}

/// Whether `pid` was started on a slot (tests).
#[cfg(test)]
pub(crate) fn ran_on_slot(pid: u32) -> bool {
    POOL.iter().any(|st| st.pid.load(Ordering::Acquire) == pid)
}

/// A slot, waiting (tests: other tests' children hold some for a moment).
#[cfg(test)]
pub(crate) fn claim_within(d: core::time::Duration) -> Option<Slot> {
    let start = std::time::Instant::now();
    loop {
        if let Some(s) = claim() {
            return Some(s);
        }
        if start.elapsed() > d {
            return None;
        }
        std::thread::sleep(core::time::Duration::from_millis(1));
    }
}

#[cfg(test)]
mod tests;
