//! Signalling a cgroup's processes: every pid in `cgroup.procs`, and the
//! SIGKILL of all of them through `cgroup.kill`, or pid by pid where that
//! file is missing (Linux before 5.14) or refuses the write.
//!
//! Each function takes the cgroup's directory fd, so a host test runs it on
//! a directory of plain files with real pids in `cgroup.procs` and no
//! `cgroup.kill`. Nothing here allocates: `cgroup.procs` is read in fixed
//! chunks, a pid split across two chunks carried over.

use rustix::fd::{AsFd, BorrowedFd};
use rustix::io::Errno;
use rustix::process::{kill_process, Pid, Signal};

use crate::sys::file::{open_regular, write_at};

/// How the processes of a cgroup were killed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Killed {
    /// `cgroup.kill` took the write: the kernel killed every process,
    /// those forking at the time included.
    CgroupKill,
    /// `cgroup.kill` could not be written (`errno`), so each pid listed in
    /// `cgroup.procs` got SIGKILL; `pids` of them.
    EachPid { errno: Errno, pids: usize },
}

/// Bytes of `cgroup.procs` read at a time.
const CHUNK: usize = 256;

/// Calls `f` with every pid listed in `dir/cgroup.procs` (one decimal per
/// line); returns how many. A line that is not a pid is skipped.
pub fn for_each_pid<Fd: AsFd>(dir: Fd, mut f: impl FnMut(u32)) -> Result<usize, Errno> {
    let fd = open_regular(dir, "cgroup.procs")?;
    let mut buf = [0u8; CHUNK];
    let mut n: usize = 0;
    // The number being read, carried across chunks; None between lines
    // and after a character that is not a digit.
    let mut cur: Option<u32> = None;
    let mut bad = false;
    loop {
        let got = match rustix::io::read(&fd, &mut buf) {
            Ok(0) => break,
            Ok(got) => got,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e),
        };
        for &c in buf.iter().take(got) {
            match c {
                b'0'..=b'9' if !bad => {
                    let v = cur
                        .unwrap_or(0)
                        .checked_mul(10)
                        .and_then(|v| v.checked_add(u32::from(c - b'0')));
                    bad = v.is_none();
                    cur = v;
                }
                b'\n' => {
                    if let (Some(p), false) = (cur.take(), bad) {
                        f(p);
                        n = n.saturating_add(1);
                    }
                    bad = false;
                }
                _ => {
                    bad = true;
                    cur = None;
                }
            }
        }
    }
    if let (Some(p), false) = (cur, bad) {
        f(p);
        n = n.saturating_add(1);
    }
    Ok(n)
}

/// `pid` is listed in `dir/cgroup.procs`.
pub fn lists<Fd: AsFd>(dir: Fd, pid: u32) -> Result<bool, Errno> {
    let mut found = false;
    for_each_pid(dir, |p| found |= p == pid)?;
    Ok(found)
}

/// Levels of cgroups below a unit's own that a walk reaches (`below`: a
/// stop's signal, a kill pid by pid, a removal's prune, an adoption); a
/// container runtime in a unit makes one or two.
pub(super) const SUB_DEPTH: u32 = 4;

/// Cgroups below a unit's own that a stop signal's walk visits: a unit
/// that made 100,000 must not hold PID 1's loop for seconds. Those past
/// it get the stop's SIGKILL (`cgroup.kill` takes the whole tree), and a
/// removal's prune (`nested::undo`) removes what its walk reached and
/// leaves the rest to its next try, which walks from the top again.
pub(crate) const SUB_CGROUPS: u32 = 256;

/// A walk of every cgroup below (`SUB_DEPTH` levels): a SIGKILL pid by
/// pid, where `cgroup.kill` is missing or refuses, must reach them all,
/// and an adoption (once, at a re-exec) must find the unit's main process
/// wherever it is.
pub(crate) const ALL_SUB_CGROUPS: u32 = u32::MAX;

/// Sends `sig` to every pid in `dir/cgroup.procs`, and in the cgroups the
/// unit made below it (`SUB_DEPTH` levels, `budget` of them), but
/// `except` (a PID namespace's reaper, which would forward it to the
/// service a second time). Returns how many were signalled; a pid that is
/// already gone is not an error, nor a sub-cgroup gone meanwhile.
pub fn signal_each<Fd: AsFd>(
    dir: Fd,
    sig: Signal,
    except: Option<u32>,
    budget: u32,
) -> Result<usize, Errno> {
    let mut sent = 0usize;
    let mut signal = |p: u32| {
        if Some(p) == except || p == 0 {
            return;
        }
        let Some(pid) = i32::try_from(p).ok().and_then(Pid::from_raw) else {
            return;
        };
        if kill_process(pid, sig).is_ok() {
            sent = sent.saturating_add(1);
        }
    };
    each_of_unit(dir.as_fd(), budget, &mut signal)?;
    Ok(sent)
}

/// `f` with every pid in `dir/cgroup.procs` and in the cgroups the unit
/// made below it (`SUB_DEPTH` levels, `budget` of them); an error only
/// for `dir`'s own.
pub fn each_of_unit(dir: BorrowedFd<'_>, budget: u32, f: &mut dyn FnMut(u32)) -> Result<(), Errno> {
    for_each_pid(dir, &mut *f)?;
    let _ = below(dir, budget, &mut |_, _, sub, _| {
        if let Some(sub) = sub {
            let _ = for_each_pid(sub, &mut *f);
        }
    });
    Ok(())
}

/// What `below` does with each cgroup: its parent, its name, the cgroup
/// itself when it could be opened, and whether every cgroup below it was
/// visited first (not when the budget ran out there).
pub(super) type Visit<'v> =
    dyn FnMut(BorrowedFd<'_>, &std::ffi::OsStr, Option<BorrowedFd<'_>>, bool) + 'v;

/// The cgroups a unit made below its own, `dir`: `SUB_DEPTH` levels down,
/// `budget` of them at most, each visited after those below it (deepest
/// first, as their removal needs). Whether all were visited; an error
/// only for listing `dir` itself.
pub(super) fn below(
    dir: BorrowedFd<'_>,
    budget: u32,
    visit: &mut Visit<'_>,
) -> Result<bool, Errno> {
    let mut left = budget;
    walk(dir, SUB_DEPTH, &mut left, visit)
}

fn walk(
    dir: BorrowedFd<'_>,
    depth: u32,
    left: &mut u32,
    visit: &mut Visit<'_>,
) -> Result<bool, Errno> {
    use crate::sys::file::openat;
    use rustix::fs::{FileType, Mode, OFlags};
    let Some(depth) = depth.checked_sub(1) else {
        return Ok(true);
    };
    let mut whole = true;
    crate::sys::file::entries_while(dir, ".", |name, ty| {
        if ty != FileType::Directory {
            return true;
        }
        let Some(l) = left.checked_sub(1) else {
            whole = false;
            return false;
        };
        *left = l;
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let sub = openat(dir, name, flags, Mode::empty()).ok();
        // A sub-cgroup that cannot be listed counts as walked: its
        // removal then says why.
        let all = sub
            .as_ref()
            .is_none_or(|sub| walk(sub.as_fd(), depth, left, visit).unwrap_or(true));
        whole &= all;
        visit(dir, name, sub.as_ref().map(AsFd::as_fd), all);
        true
    })?;
    Ok(whole)
}

/// Whether the cgroup at `dir` has `cgroup.kill` (Linux 5.14 added it to
/// every cgroup but the root).
pub fn supported<Fd: AsFd>(dir: Fd) -> bool {
    rustix::fs::accessat(
        dir,
        c"cgroup.kill",
        rustix::fs::Access::EXISTS,
        rustix::fs::AtFlags::empty(),
    )
    .is_ok()
}

/// SIGKILL to every process of the cgroup at `dir`: `cgroup.kill` when it
/// takes the write, else each pid of `cgroup.procs`.
pub fn kill_dir<Fd: AsFd>(dir: Fd) -> Result<Killed, Errno> {
    match write_at(&dir, "cgroup.kill", b"1") {
        Ok(()) => Ok(Killed::CgroupKill),
        Err(errno) => {
            let pids = signal_each(&dir, Signal::KILL, None, ALL_SUB_CGROUPS)?;
            Ok(Killed::EachPid { errno, pids })
        }
    }
}

#[cfg(test)]
mod tests;
