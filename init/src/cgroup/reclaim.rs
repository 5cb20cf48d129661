//! A lower `memory.max` or `memory.high` written into a cgroup that still
//! holds charges: the kernel reclaims the cgroup down to it in the
//! writer's context before the write returns, writing dirty pages back
//! first, and for `memory.max` goes on to its OOM killer, looping while a
//! victim that cannot die (stuck on a card that does not answer) is
//! still there. PID 1 blocks every signal, so nothing would end that
//! loop; a child copy of PID 1 makes the write instead, waited for a
//! bounded time and killed past it (a fatal signal ends the kernel's
//! loop). The value is in force from the start of the write: the kernel
//! sets it before it reclaims, so a write cut short leaves the rest of
//! the reclaim to the cgroup's own allocations.
//!
//! Only a cgroup `prepare` keeps (still busy after the bounded wait for
//! its last run to go) needs this: a cgroup made anew holds nothing to
//! reclaim, and `max` never reclaims.

use rustix::fd::{AsFd, BorrowedFd};
use rustix::io::Errno;
use rustix::process::{Pid, Signal};

use crate::sys::file::write_at;

/// Files whose write reclaims the cgroup down to the value written.
pub(super) fn may_reclaim(file: &str, value: &str) -> bool {
    matches!(file, "memory.max" | "memory.high") && value != "max"
}

/// Milliseconds of the wait a poll of the caller's budget stands for
/// (`Cgroups::wait_empty`'s polls).
const POLL_MS: u64 = 10;

/// How long a killed writer is waited for to be reaped here; past it, the
/// loop's reaping takes it.
const KILLED_MS: u64 = 20;

/// What the child's errno looks like on its way back: the raw errno, 0
/// for a write that went through.
type Said = [u8; 4];

/// `value` written into `dir/file` by a child, waited for `polls` of the
/// caller's budget (one at least), which the wait's time is taken from.
/// Past it the child is killed and the write counts as made, said once
/// in PID 1's log. Its errno comes back through a pipe, not its exit
/// code: a host test's other threads may reap the child first.
pub(super) fn write(
    unit: &str,
    dir: BorrowedFd<'_>,
    file: &'static str,
    value: &[u8],
    polls: &mut u8,
) -> Result<(), Errno> {
    let (from_child, to_parent) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    let pid = crate::sys::clone::clone_into(crate::unit::Namespaces::NONE, None, || {
        // A copy of PID 1's fds would stay open as long as the kernel
        // reclaims: a client's socket past PID 1's close of it, a file
        // being written (whose exec then fails with ETXTBSY).
        crate::sys::fd::close_all_but(&[dir, to_parent.as_fd()]);
        let errno = match write_at(dir, file, value) {
            Ok(()) => 0,
            Err(e) => e.raw_os_error(),
        };
        let _ = rustix::io::write(&to_parent, &errno.to_ne_bytes());
        crate::sys::clone::exit(0)
    })?;
    drop(to_parent);
    let pid = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or(Errno::SRCH)?;
    let ms = u64::from((*polls).max(1)).saturating_mul(POLL_MS);
    let started = crate::sys::clock::now_ms();
    let ended = crate::sys::child::wait_pid_within(pid, ms, &|| {});
    let spent = crate::sys::clock::now_ms().saturating_sub(started);
    let used = u8::try_from(spent.div_ceil(POLL_MS)).unwrap_or(u8::MAX);
    *polls = polls.saturating_sub(used);
    if ended.is_none() {
        let _ = rustix::process::kill_process(pid, Signal::KILL);
        let _ = crate::sys::child::wait_pid_within(pid, KILLED_MS, &|| {});
        crate::warn!("{unit}: {file} set; the kernel's reclaim to it stopped after {ms} ms");
        return Ok(());
    }
    // The child has ended (reaped here or by another thread): what it
    // wrote is in the pipe, or it never got to say.
    let mut said: Said = [0; 4];
    match rustix::io::read(&from_child, &mut said) {
        Ok(4) => match i32::from_ne_bytes(said) {
            0 => Ok(()),
            e => Err(Errno::from_raw_os_error(e)),
        },
        _ => Err(Errno::IO),
    }
}
