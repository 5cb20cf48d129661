//! A `memory.max` or `memory.high` value written into a cgroup that still
//! holds charges: the kernel reclaims the cgroup down to it in the
//! writer's context before the write returns (throttled on the
//! writeback of dirty pages, writing anonymous ones to swap), and for
//! `memory.max` goes on to its OOM killer, looping while a victim that
//! cannot die (stuck on a card that does not answer) is there, until the
//! OOM reaper gives up on it, seconds later. PID 1 blocks every signal,
//! so nothing ends that loop sooner; a child copy of PID 1 makes the
//! write instead, waited for a bounded time and killed past it (a fatal
//! signal ends the loop). The kernel sets the value before it reclaims,
//! so a write cut short has put it in force, read back to be sure, and
//! leaves the rest of the reclaim to the cgroup's own allocations.
//!
//! Only a cgroup `prepare` keeps (still busy after the bounded wait for
//! its last run to go) needs this: a cgroup made anew holds nothing to
//! reclaim, and `max` never reclaims.
//!
//! A killed writer still inside the write (in an uninterruptible wait
//! of the reclaim) keeps the cgroup's files in use: an rmdir of that
//! cgroup would wait for it, uninterruptibly and holding the kernel's
//! cgroup lock. Such writers are kept in `INSIDE` until they have ended,
//! and `Cgroups::rmdir` leaves their cgroups alone meanwhile.

use core::sync::atomic::{AtomicU64, Ordering};

use rustix::fd::{AsFd, BorrowedFd};
use rustix::io::Errno;
use rustix::process::{Pid, Signal};

use crate::boot::shutdown::{bounded_code, Unfinished};
use crate::sys::file::{read_kernel_at, write_at};
use core::time::Duration;
use wren_core::num::dec;

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

/// A killed writer that had not ended: its pid in the high half, a hash
/// of the unit's name in the low; 0 when there is none. One at most:
/// while it is there, a write that may reclaim is refused (EAGAIN: the
/// start fails, as any failed start; docs/field.md).
static INSIDE: AtomicU64 = AtomicU64::new(0);

/// FNV-1a of the unit's name: two units sharing one only makes the other
/// keep its cgroup a while longer.
fn hash(name: &str) -> u64 {
    u64::from(name.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    }))
}

/// The writer kept in `INSIDE`, if it may still be inside its write: a
/// child of PID 1's not ended (a zombie has left it) nor reaped (by the
/// loop, which does not know it: its number may be another's by now);
/// else it is let go.
fn kept() -> Option<u64> {
    let v = INSIDE.load(Ordering::Relaxed);
    let pid = u32::try_from(v >> 32).ok().filter(|&p| p != 0)?;
    if !crate::sys::raw::running_child(pid) {
        let _ = INSIDE.compare_exchange(v, 0, Ordering::Relaxed, Ordering::Relaxed);
        return None;
    }
    Some(v)
}

/// PID 1's loop reaped `pid`. A writer kept under that number has ended,
/// and the number may go to the next child of PID 1's (a unit's run),
/// which `kept` would take for the writer still inside for as long as it
/// lives: every reclaiming write refused, the cgroup never removed.
pub(crate) fn reaped(pid: u32) {
    let v = INSIDE.load(Ordering::Relaxed);
    if pid != 0 && v >> 32 == u64::from(pid) {
        let _ = INSIDE.compare_exchange(v, 0, Ordering::Relaxed, Ordering::Relaxed);
    }
}

/// Writer `pid` of `unit`'s cgroup files, killed and not ended, into
/// `INSIDE`.
fn keep_inside(pid: u32, unit: &str) {
    INSIDE.store(u64::from(pid) << 32 | hash(unit), Ordering::Relaxed);
}

/// A writer this module killed may still be inside a write of `name`'s
/// cgroup files.
pub(super) fn inside(name: &str) -> bool {
    kept().is_some_and(|v| v & 0xffff_ffff == hash(name))
}

/// What the child's errno looks like on its way back: the raw errno, 0
/// for a write that went through.
type Said = [u8; 4];

/// `value` written into `dir/file` by a child, waited for `polls` of the
/// caller's budget (one at least), which the wait's time is taken from.
/// Past it the child is killed; the write counts as made if the value
/// reads back (said in PID 1's log), else ETIMEDOUT. Its errno comes back
/// through a pipe, not its exit code: a host test's other threads may
/// reap the child first.
pub(super) fn write(
    unit: &str,
    dir: BorrowedFd<'_>,
    file: &'static str,
    value: &str,
    polls: &mut u8,
) -> Result<(), Errno> {
    // Another writer might wait where the last one does.
    if kept().is_some() {
        return Err(Errno::AGAIN);
    }
    let flags = rustix::pipe::PipeFlags::CLOEXEC | rustix::pipe::PipeFlags::NONBLOCK;
    let (from_child, to_parent) = rustix::pipe::pipe_with(flags)?;
    let ms = u64::from((*polls).max(1)).saturating_mul(POLL_MS);
    let started = crate::sys::clock::now_ms();
    let code = bounded_code(Duration::from_millis(ms), None, &mut || {
        // A copy of PID 1's fds would stay open as long as the kernel
        // reclaims: a client's socket past PID 1's close of it, a file
        // being written (whose exec then fails with ETXTBSY).
        crate::sys::fd::close_all_but(&[dir, to_parent.as_fd()]);
        let errno = match write_at(dir, file, value.as_bytes()) {
            Ok(()) => 0,
            Err(e) => e.raw_os_error(),
        };
        let _ = rustix::io::write(&to_parent, &errno.to_ne_bytes());
        0
    });
    drop(to_parent);
    let running = match code {
        Err(Unfinished::NoChild(e)) => return Err(e),
        Err(Unfinished::Running(pid)) => Some(pid),
        Ok(_) => None,
    };
    if let Some(pid) = running {
        let p = i32::try_from(pid).ok().and_then(Pid::from_raw);
        if let Some(p) = p {
            let _ = rustix::process::kill_process(p, Signal::KILL);
            if crate::sys::child::wait_pid_within(p, KILLED_MS, &|| {}).is_none() {
                keep_inside(pid, unit);
            }
        }
    }
    let spent = crate::sys::clock::now_ms().saturating_sub(started);
    *polls = polls.saturating_sub(u8::try_from(spent.div_ceil(POLL_MS)).unwrap_or(u8::MAX));
    if running.is_some() {
        let mut buf = [0u8; 32];
        let now = read_kernel_at(dir, file, &mut buf)
            .ok()
            .and_then(|t| dec(t.trim()));
        if !in_force(now, value) {
            return Err(Errno::TIMEDOUT);
        }
        crate::warn!("{unit}: {file} set; the kernel's reclaim to it stopped after {spent} ms");
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

/// Whether a limit read back, `now`, is `value` as the kernel keeps it:
/// in whole pages (up to 64 KiB), rounded down.
fn in_force(now: Option<u64>, value: &str) -> bool {
    match (now, dec::<u64>(value)) {
        (Some(n), Some(v)) => n <= v && v - n < 1 << 16,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_read_back_is_in_force_to_the_page() {
        assert!(in_force(Some(16 << 20), "16777216"));
        // 1,000,000 bytes kept as 244 pages of 4 KiB, or 15 of 64 KiB.
        assert!(in_force(Some(999_424), "1000000"));
        assert!(in_force(Some(983_040), "1000000"));
        assert!(!in_force(Some(32 << 20), "16777216"));
        assert!(!in_force(Some(16 << 20), "33554432"));
        assert!(!in_force(None, "16777216"));
    }

    /// A writer still inside a write keeps its unit's cgroup from an
    /// rmdir, and every unit from another reclaiming write, until it has
    /// ended; a running child of this process stands for it. In a
    /// process of its own: `INSIDE` refuses every test's reclaiming
    /// writes while it is held.
    #[test]
    fn a_writer_kept_inside_keeps_its_cgroup_until_it_has_ended() {
        crate::testutil::alone!(a_writer_kept_inside_keeps_its_cgroup_until_it_has_ended);
        let root = crate::testutil::TempDir::new("cgroup-inside");
        std::fs::create_dir_all(root.join("units/stuckwriter")).unwrap();
        let cg = super::super::Cgroups::open(&root).unwrap();
        let mut writer = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        keep_inside(writer.id(), "stuckwriter");
        assert!(inside("stuckwriter"));
        assert!(!inside("web"));
        // Empty, it would be made anew; kept while the writer is there.
        let lim = crate::unit::Limits {
            memory_max: Some(crate::unit::Limit::Value(16 << 20)),
            ..crate::unit::Limits::default()
        };
        let p = cg.prepare("stuckwriter", &crate::unit::Limits::default(), &mut 10);
        assert!(!p.unwrap().fresh);
        let err = cg.prepare("stuckwriter", &lim, &mut 10).unwrap_err();
        assert_eq!(
            err,
            super::super::CgroupError::Write {
                unit: crate::proto::truncated("stuckwriter"),
                file: "memory.max",
                errno: Errno::AGAIN
            }
        );
        assert_eq!(cg.remove("stuckwriter"), Ok(false));
        writer.kill().unwrap();
        writer.wait().unwrap();
        assert!(!inside("stuckwriter"));
        assert_eq!(cg.remove("stuckwriter"), Ok(true));
    }

    /// A kept writer ends and is reaped by PID 1's loop, and its number
    /// goes to another child of PID 1 (pid_max wrapped: a unit's new
    /// run): that child is not taken for the writer still inside.
    #[test]
    fn a_reaped_writers_number_given_to_another_child_is_not_the_writer() {
        crate::testutil::alone!(a_reaped_writers_number_given_to_another_child_is_not_the_writer);
        let mut writer = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = writer.id();
        keep_inside(pid, "stuckwriter");
        writer.kill().unwrap();
        writer.wait().unwrap();
        reaped(pid.wrapping_add(1));
        reaped(pid);
        // The next child of this process gets the same number.
        let mut other = None;
        for _ in 0..50 {
            let last = format!("{}", pid - 1);
            std::fs::write("/proc/sys/kernel/ns_last_pid", last).unwrap();
            let mut c = std::process::Command::new("sleep")
                .arg("30")
                .spawn()
                .unwrap();
            if c.id() == pid {
                other = Some(c);
                break;
            }
            c.kill().unwrap();
            c.wait().unwrap();
        }
        let mut other = other.expect("the number given again");
        let held = inside("stuckwriter");
        other.kill().unwrap();
        other.wait().unwrap();
        assert!(!held, "another child taken for the writer");
    }

    #[test]
    fn names_hash_apart() {
        assert_ne!(hash("web"), hash("db"));
        assert_eq!(hash("web"), hash("web"));
        assert!(hash("web") <= 0xffff_ffff);
    }
}
