//! Slots given back: the pages of idle slots before PID 1 sleeps
//! (`release_idle`), and a reload's wait for children still reading PID
//! 1's data (`quiesce`).

use super::trampoline::{claim_trampoline, TRAMPOLINE_BUSY, TRAMPOLINE_DIRTY};
use super::{claim_at, BASE, GUARD, POOL, SLOTS, SLOT_LEN, TRAMPOLINE_STACK};
use core::ffi::c_void;
use core::sync::atomic::{AtomicU32, Ordering};

/// How often, after a start, PID 1 wakes to give back the pages of a
/// slot whose child had not exec'd yet when it went to sleep (a reaper
/// execs some time after its service, at nice 19): RECHECKS sleeps that
/// end by their RECHECK timeout. Wake-ups for other events use none: a
/// boot's many handshakes used them all up before the last reapers
/// exec'd, and their slots' pages stayed resident (PID 1 `Anonymous`
/// +20 to +72 KiB in some boots at N = 100).
pub(super) const RECHECKS: u32 = 25;
const RECHECK: rustix::event::Timespec = rustix::event::Timespec {
    tv_sec: 0,
    tv_nsec: 20_000_000,
};
/// Recheck timeouts left since the last start.
pub(super) static RECHECKS_LEFT: AtomicU32 = AtomicU32::new(0);

/// Give back the pages of every free slot touched since: called by PID 1
/// before it sleeps, so that a burst of starts leaves no resident memory.
/// Some(timeout) for that sleep while a touched slot is still busy, until
/// RECHECKS such sleeps have timed out since the last start
/// (`recheck_timed_out`: a child stuck before its exec costs no wake-up
/// for ever).
pub fn release_idle() -> Option<rustix::event::Timespec> {
    #[cfg(test)]
    if !super::may_claim() {
        return None;
    }
    let pool = BASE.load(Ordering::Acquire);
    if pool == 0 {
        return None;
    }
    let mut busy = false;
    for (i, st) in POOL.iter().enumerate() {
        if !st.dirty.load(Ordering::Relaxed) {
            continue;
        }
        // Claimed for the release, so that no start takes it meanwhile.
        let Some(held) = claim_at(pool, i) else {
            busy = true;
            continue;
        };
        st.dirty.store(false, Ordering::Relaxed);
        // SAFETY: the whole of slot i, inside the pool's mapping, held
        // (`claim_at`: both words were 0, so no child or service runs on
        // it, and `a` is ours until `held` is dropped, so none starts).
        // MADV_DONTNEED on private anonymous memory only drops contents
        // no one holds.
        unsafe { libc::madvise(held.base as *mut c_void, SLOT_LEN, libc::MADV_DONTNEED) };
    }
    if TRAMPOLINE_DIRTY.load(Ordering::Relaxed) && claim_trampoline() {
        TRAMPOLINE_DIRTY.store(false, Ordering::Relaxed);
        // SAFETY: the trampoline's stack, after the slots in the pool's
        // mapping, claimed (no trampoline runs on it, none starts until
        // it is given back below); its contents are no one's.
        unsafe {
            libc::madvise(
                (pool + SLOT_LEN * SLOTS + GUARD) as *mut c_void,
                TRAMPOLINE_STACK,
                libc::MADV_DONTNEED,
            )
        };
        TRAMPOLINE_BUSY.store(0, Ordering::Release);
    }
    (busy && RECHECKS_LEFT.load(Ordering::Relaxed) > 0).then_some(RECHECK)
}

/// PID 1's sleep with `release_idle`'s timeout ended by that timeout: one
/// recheck used.
pub fn recheck_timed_out() {
    let left = RECHECKS_LEFT.load(Ordering::Relaxed);
    RECHECKS_LEFT.store(left.saturating_sub(1), Ordering::Relaxed);
}

/// Before PID 1 frees data that children on slots may read (a reload):
/// wait up to `patience` for them to exec, SIGKILL those that have not,
/// wait up to `patience` again. True when no slot still reads PID 1's
/// data; false (rare: a child in uninterruptible sleep) means the data
/// must be kept. Bounded: at most twice `patience`. `killed` hears each
/// pid killed: its status pipe's end of file is its death, not an exec.
pub fn quiesce(patience: core::time::Duration, killed: &mut dyn FnMut(u32)) -> bool {
    if BASE.load(Ordering::Acquire) == 0 || wait_clear(patience) {
        return true;
    }
    for st in POOL.iter().filter(|st| st.reading() && st.mine()) {
        let pid = st.pid.load(Ordering::Acquire);
        if st.a.load(Ordering::Acquire) == 0 || st.detached.load(Ordering::Acquire) {
            // Only the service is left: its reaper is gone, and with it
            // the namespace (the kernel kills the rest).
            continue;
        }
        if let Some(p) = rustix::process::Pid::from_raw(pid as i32) {
            if rustix::process::kill_process(p, rustix::process::Signal::KILL).is_ok() {
                killed(pid);
            }
        }
    }
    wait_clear(patience)
}

fn wait_clear(bound: core::time::Duration) -> bool {
    until(bound, 1_000_000, || {
        !POOL.iter().any(|st| st.reading() && st.mine())
    })
}

/// Whether `done` holds within `bound`, looked at every `pause_ns`.
fn until(bound: core::time::Duration, pause_ns: i64, done: impl Fn() -> bool) -> bool {
    let start = crate::sys::clock::now_ns();
    let bound = u64::try_from(bound.as_millis()).unwrap_or(u64::MAX);
    loop {
        if done() {
            return true;
        }
        if crate::sys::clock::since_ms(start) >= bound {
            return false;
        }
        let _ = rustix::thread::nanosleep(&rustix::thread::Timespec {
            tv_sec: 0,
            tv_nsec: pause_ns,
        });
    }
}

/// A slot's child `pid` still counts as reading PID 1's data (a reload
/// waits for it, then kills it).
pub(crate) fn reading(pid: u32) -> bool {
    POOL.iter()
        .any(|st| st.pid.load(Ordering::Acquire) == pid && st.reading())
}

/// Waits, `bound` at most, for slot child `pid`, just killed, to leave
/// PID 1's memory; true once it has (or it was on no slot). A kill lands
/// at the child's next entry to the kernel: until then, on another CPU,
/// it may still read what PID 1 is about to free. Not leaving within the
/// bound, it is in the kernel, and dies before it runs another
/// instruction of its own.
pub fn wait_left(pid: u32, bound: core::time::Duration) -> bool {
    until(bound, 100_000, || !reading(pid))
}
