//! The exec handshake as a loop source. After clone3 (and at most 50 ms
//! waiting in place for the common, quick case; a step that starts several
//! units, the boot, spawns them all first and waits in place only for
//! every 16th) the unit stays
//! `starting` while its child is on its way to execve; the child's
//! close-on-exec status pipe is in the epoll set, so PID 1 goes on reaping,
//! answering `initctl` and starting other units meanwhile. End of file is
//! `Spawned`, a report of the failed step `SpawnFailed`. A child that never
//! gets there (its cgroup frozen, a hung mount under `workdir` or `root`)
//! is bounded by the unit's `start_timeout`: its cgroup is killed and the
//! start has failed.

use super::event_loop::{self, watch};
use super::{now, why, Pid1, Why};
use crate::spawn::{Handshake, Pending};
use crate::supervisor::{Event, Note, Phase};
use crate::unit::{Ready, START_TIMEOUT_DEFAULT};
use crate::vocab::Millis;
use rustix::event::epoll;
use rustix::event::{PollFd, PollFlags};
use rustix::fd::{BorrowedFd, OwnedFd};

/// Longest wait in place for a child's exec (`await_exec`): 50 ms.
const EXEC_WAIT_NS: u64 = 50_000_000;

/// How many edges may have a handshake in flight (`ExecWait`) and a
/// drain's kill due (`stopping`): never fewer than do. With none, the
/// loop's walks over every edge for them (each wake-up's timer, each
/// reap, each timer turn) are skipped: a restart's exec wake-up touches
/// the unit concerned, not all of them.
#[derive(Default)]
pub(super) struct Waits {
    pub(super) execs: u16,
    pub(super) kills: u16,
    /// No handshake's deadline is before this (`exec_deadline`): taken
    /// down as handshakes begin, made exact again only when the timer
    /// fires, so a boot's wake-ups do not each pass over every edge for
    /// the timer. One that ended early at most fires the timer early.
    pub(super) soonest: Option<Millis>,
}

impl Waits {
    /// The counts of `edges` as they are: after a reload has replaced
    /// edges whole (which `put` does not see), so that a count left too
    /// high does not keep the walks on for good.
    pub(super) fn count(edges: &[super::Edge]) -> Waits {
        let n = |f: fn(&super::Edge) -> bool| {
            u16::try_from(edges.iter().filter(|e| f(e)).count()).unwrap_or(u16::MAX)
        };
        Waits {
            execs: n(|e| e.exec.is_some()),
            kills: n(|e| e.drain.kill_due()),
            soonest: soonest(edges),
        }
    }
}

/// The earliest handshake deadline of `edges`, exactly.
fn soonest(edges: &[super::Edge]) -> Option<Millis> {
    edges
        .iter()
        .filter_map(|e| e.exec.as_ref().map(|w| w.deadline))
        .min()
}

/// `*slot = v`, keeping `count` of the slots that are `Some`. A slot
/// dropped without this (an edge replaced) leaves `count` too high, which
/// only costs the walk until the reload that replaced it recounts
/// (`Waits::count`).
pub(super) fn put<T>(count: &mut u16, slot: &mut Option<T>, v: Option<T>) -> Option<T> {
    match (slot.is_some(), v.is_some()) {
        (false, true) => *count = count.saturating_add(1),
        (true, false) => *count = count.saturating_sub(1),
        _ => {}
    }
    core::mem::replace(slot, v)
}

/// A child cloned and not yet exec'd.
pub(super) struct ExecWait {
    pid: u32,
    /// The status pipe's read end, in the epoll set.
    status: OwnedFd,
    /// Not exec'd by then: killed, a failed start.
    deadline: Millis,
}

/// How long an exec timeout waits for its killed child to leave PID 1's
/// memory (`sys::slot::wait_left`): a kill lands within microseconds.
const KILL_LANDS: core::time::Duration = core::time::Duration::from_millis(20);

/// How long a start may take to reach exec: its `start_timeout`, or with
/// none (0) still a bound.
fn exec_bound(start_timeout: Millis) -> Millis {
    match start_timeout {
        0 => START_TIMEOUT_DEFAULT,
        t => t,
    }
}

impl Pid1 {
    /// Watch `p`'s handshake; the unit's `Spawned` or `SpawnFailed` comes
    /// when the pipe says, or at its `start_timeout` (the caller may have
    /// waited up to EXEC_WAIT_NS first: `wait_in_place`).
    pub(super) fn await_exec(&mut self, u: u16, p: Pending) {
        let timeout = exec_bound(self.sup.slot(u).map_or(0, |s| s.def.start_timeout));
        let Pending { pid, status } = p;
        match crate::spawn::poll_status(&status) {
            Handshake::Waiting => {}
            done => return self.exec_done(u, pid, done),
        }
        let watched = self
            .epoll
            .as_ref()
            .and_then(|ep| watch(ep, status, event_loop::TOKEN_EXEC + u64::from(u)));
        let Some(status) = watched else {
            // Nothing can tell when it execs: it counts as started, as it
            // would have after a blocking wait.
            crate::warn!("exec handshake: cannot watch the status pipe");
            return self.exec_done(u, pid, Handshake::Execd);
        };
        if let Some(e) = self.edges.get_mut(usize::from(u)) {
            let deadline = now().saturating_add(timeout);
            let w = ExecWait {
                pid,
                status,
                deadline,
            };
            put(&mut self.waits.execs, &mut e.exec, Some(w));
            self.waits.soonest = Some(self.waits.soonest.map_or(deadline, |s| s.min(deadline)));
        }
    }

    /// The status pipe of unit `u` is readable.
    pub(super) fn on_exec(&mut self, u: u16) {
        self.exec_settle(u);
        self.run_queue();
    }

    /// Before readiness of unit `u` is fed: a handshake whose answer is
    /// there is taken first, so the supervisor has the pid.
    pub(super) fn exec_settle(&mut self, u: u16) {
        let state = match self.edges.get(usize::from(u)).and_then(|e| e.exec.as_ref()) {
            Some(w) => poll(w),
            None => return,
        };
        if state != Handshake::Waiting {
            if let Some(w) = self.take_exec(u) {
                self.exec_done(u, w.pid, state);
            }
        }
    }

    /// Before an exit of `pid` is fed: a child still in its handshake is
    /// settled first (its pipe is at its end or holds the report by now),
    /// so that the supervisor knows the pid it is told about. True when
    /// one was (its answer is queued).
    pub(super) fn exec_reaped(&mut self, pid: u32) -> bool {
        if self.waits.execs == 0 {
            return false;
        }
        let found = self
            .edges
            .iter()
            .position(|e| e.exec.as_ref().is_some_and(|w: &ExecWait| w.pid == pid));
        let Some(u) = found.and_then(|i| u16::try_from(i).ok()) else {
            return false;
        };
        if let Some(w) = self.take_exec(u) {
            let state = match poll(&w) {
                // Gone without closing its end: it cannot have exec'd.
                Handshake::Waiting => Handshake::Failed(crate::spawn::SpawnError {
                    step: crate::spawn::Step::Unknown,
                    errno: 0,
                }),
                s => s,
            };
            self.exec_done(u, pid, state);
        }
        true
    }

    /// The unit whose run `pid` was, once reaped. A child still in its
    /// handshake is answered first and that answer stepped: else the
    /// supervisor would not know the pid yet, and the exit would go
    /// without what an exit of a unit's run needs (its OOM check, its
    /// readiness closed, its reaper's report read).
    pub(super) fn reaped_unit(&mut self, pid: u32) -> Option<u16> {
        if self.exec_reaped(pid) {
            self.run_queue();
        }
        self.sup.unit_of_pid(pid)
    }

    /// Children past their deadline: the cgroup is killed, a failed start.
    pub(super) fn exec_timeouts(&mut self, t: Millis) {
        if self.waits.execs == 0 {
            return;
        }
        // Made exact on the way: the deadlines of those left, and of any
        // handshake a failed start's restart begins meanwhile.
        self.waits.soonest = None;
        for i in 0..self.edges.len() {
            let Some(d) = self
                .edges
                .get(i)
                .and_then(|e| e.exec.as_ref())
                .map(|w| w.deadline)
            else {
                continue;
            };
            let Some(u) = u16::try_from(i).ok().filter(|_| d <= t) else {
                self.waits.soonest = Some(self.waits.soonest.map_or(d, |s| s.min(d)));
                continue;
            };
            let Some(w) = self.take_exec(u) else { continue };
            // Its answer may be in the pipe already, behind the timer's
            // token in the same batch (the loop busy past the deadline,
            // a reload's disk wait): read, not killed for a lateness
            // that was the loop's.
            match poll(&w) {
                Handshake::Waiting => {}
                done => {
                    self.exec_done(u, w.pid, done);
                    self.run_queue();
                    continue;
                }
            }
            let limit = exec_bound(self.sup.slot(u).map_or(0, |s| s.def.start_timeout));
            self.kill_cgroup_now(u);
            // The failure may revert the unit's probation, which frees
            // the definition a child on a slot reads until its exec:
            // the kill lands, briefly waited for, first.
            let _ = crate::sys::slot::wait_left(w.pid, KILL_LANDS);
            let why = why(format_args!(
                "did not exec within start_timeout ({limit}ms; pid {}): killed",
                w.pid
            ));
            self.start_failed(u, why);
            self.run_queue();
        }
    }

    /// The earliest handshake deadline, for the timer.
    pub(super) fn exec_deadline(&self) -> Option<Millis> {
        if self.waits.execs == 0 {
            return None;
        }
        // Never without a bound while a child is on its way to exec.
        self.waits.soonest.or_else(|| soonest(&self.edges))
    }

    /// A reload could not wait for the child of a start to exec and killed
    /// it (`sys::slot::quiesce`): the reload's doing, not the unit's. The
    /// start is made again, as if the kill had not happened: no failure
    /// counted, and a unit on probation is judged by the new start, not by
    /// the kill (which put a good definition's last good one back). Its
    /// status pipe's end of file is not read as an exec: `start` ends the
    /// killed run's handshake first. Several are started as a step's
    /// spawns are (`perform_all`): their execs awaited by the loop, every
    /// EXEC_BATCH-th in place, not each in place one after another. The
    /// answers of those in place are stepped here: a refused reload
    /// returns right after, and a `Spawned` left in the queue kept its
    /// unit `starting` with no pid and no deadline until some other event
    /// ran it.
    pub(super) fn start_killed_before_exec(&mut self, killed: &[u32]) {
        for (i, &pid) in killed.iter().enumerate() {
            let Some(u) = (0..self.edges.len())
                .filter_map(|i| u16::try_from(i).ok())
                .find(|&u| self.exec_pid(u) == Some(pid))
            else {
                continue;
            };
            let name = self.sup.slot(u).map_or("?", |s| s.def.name.as_str());
            crate::warn!("{name}: killed before its exec (pid {pid}) so that a reload could go on; starting it again");
            self.start(u, super::executor::waits_in_place(i + 1, killed.len()));
        }
        self.run_queue();
    }

    /// The supervisor gave up on a start still in its handshake (stopped,
    /// or a shutdown came first): the child goes with its cgroup.
    pub(super) fn cancel_exec(&mut self, u: u16) {
        if self.take_exec(u).is_some() {
            self.kill_cgroup_now(u);
            self.end_run_fds(u);
        }
    }

    /// The pid of unit `u`'s child still in its handshake.
    pub(super) fn exec_pid(&self, u: u16) -> Option<u32> {
        let w = self.edges.get(usize::from(u))?.exec.as_ref()?;
        Some(w.pid)
    }

    fn take_exec(&mut self, u: u16) -> Option<ExecWait> {
        let e = self.edges.get_mut(usize::from(u))?;
        let w = put(&mut self.waits.execs, &mut e.exec, None)?;
        if self.waits.execs == 0 {
            self.waits.soonest = None;
        }
        if let Some(ep) = self.epoll.as_ref() {
            let _ = epoll::delete(ep, &w.status);
        }
        Some(w)
    }

    /// Queues the answer to the unit's `Spawn` (the caller runs the queue).
    fn exec_done(&mut self, u: u16, pid: u32, state: Handshake) {
        // Only a start the supervisor still waits for is answered: one it
        // stopped meanwhile gets no process.
        let waited = self
            .sup
            .slot(u)
            .is_some_and(|s| s.rt.phase == Phase::Starting && s.rt.pid == 0);
        match state {
            Handshake::Execd if waited => {
                self.watch_pressure(u);
                if !self.queue_event(Event::spawned(u, pid)) {
                    crate::error!("event queue full");
                }
            }
            Handshake::Execd | Handshake::Waiting => self.kill_cgroup_now(u),
            Handshake::Failed(e) => {
                let (name, exec) = self.sup.slot(u).map_or(("", ""), |s| {
                    (s.def.name.as_str(), s.def.exec.first().unwrap_or(""))
                });
                let why = why(format_args!("cannot start {exec}: {e}"));
                if waited {
                    self.start_failed(u, why);
                } else {
                    // Named as every record of a unit is: `NAME: ...`.
                    crate::error!("{name}: {}", why.as_str());
                }
            }
        }
    }

    /// A start that failed after its clone3: readiness is over with it,
    /// then as a start that failed before (`spawn_failed`).
    fn start_failed(&mut self, u: u16, why: Why) {
        self.end_run_fds(u);
        self.spawn_failed(u, why);
    }

    /// A run that never exec'd, or one let go of: its readiness (the
    /// sd_notify socket, fd and file) and its reaper's report go with it
    /// (no exit of it comes to do so).
    fn end_run_fds(&mut self, u: u16) {
        self.end_readiness(u);
        self.watch_report(u, None);
    }

    /// The run's readiness channel closed, its socket file unlinked: at
    /// its exit (`classify_exit`), or when the supervisor lets go of a run
    /// it killed (no exit of it will come to do so).
    fn end_readiness(&mut self, u: u16) {
        let Some(e) = self.edges.get_mut(usize::from(u)) else {
            return;
        };
        let (name, sd) = self.sup.slot(u).map_or(("", false), |s| {
            (s.def.name.as_str(), s.def.ready == Ready::SdNotify)
        });
        super::event_loop::end_notify(self.epoll.as_ref(), e.notify.take(), name, sd);
    }

    /// Announcing a unit stopped: a handshake of it still running ends;
    /// off probation (stopped by hand, in a shutdown, or its `after` unit
    /// removed: no verdict), its last good definition goes.
    /// A run killed for its start timeout or watchdog is let go of: its
    /// notify socket would otherwise stay bound (and in epoll) until the
    /// unit's next start, for good if none comes; so its reaper's report
    /// pipe (no exit of the run is the unit's any more).
    pub(super) fn on_note(&mut self, u: u16, note: Note) {
        match note {
            Note::Stopped => self.cancel_exec(u),
            Note::StartTimeout { .. } | Note::WatchdogTimeout { .. } | Note::StartLimit => {
                self.end_run_fds(u)
            }
            _ => {}
        }
        let off = !self.sup.slot(u).is_some_and(|s| s.rt.probation);
        if off && matches!(note, Note::Stopped | Note::DepMissing) {
            if let Some(e) = self.edges.get_mut(usize::from(u)) {
                e.drop_last_good();
            }
        }
    }
}

/// The common case is answered in place: a child that execs within
/// EXEC_WAIT_NS. PID 1 asleep meanwhile leaves the CPU to it; with the loop
/// going on instead (serving a unit that floods its output, say), every
/// restart measured several times slower in the `fair` boot test. Only a
/// slower child is left to the loop.
///
/// `grace` (a restart, one CPU: the loop's epoll fd): once the child has
/// exec'd, PID 1 waits up to `spawn::RESTART_GRACE` more before its own work on
/// the exec, unless the loop has something for it first (another unit's
/// exit, a timer, an `initctl` client: the epoll fd turns readable).
/// Woken by the EOF, it would not preempt the new process
/// (`SCHED_BATCH`), but having slept it is the first the scheduler picks
/// at the next tick or preemption, and on a slow CPU (TCG's, a Pi Zero's)
/// an exec takes longer than a time slice: its bookkeeping (the unit's
/// new state, epoll, the timer, the slot) then ran before the new
/// process's first instruction, 1.5-2 ms of a 25 ms restart in a trace
/// (`bench/trace-restarts -a`). That work waits for nothing; the new
/// process does. Returns whether it waited the grace: only after an exec
/// (EOF and no report), not after a failure nor a timeout.
///
/// `left`: what the wake-up has left of `IN_PLACE_NS`, less the time
/// each wait here took. Both stop there, and with nothing left there is
/// no wait: a crash wave of units whose execs are slow (their programs'
/// pages read back from a card under memory pressure) holds a wake-up
/// about 100 ms, not EXEC_WAIT_NS and a grace for each restart in it.
pub(super) fn wait_in_place(p: &Pending, grace: Option<BorrowedFd<'_>>, left: &mut u64) -> bool {
    if *left == 0 {
        return false;
    }
    let mut fds = [PollFd::new(&p.status, PollFlags::IN)];
    let polled = waited(&mut fds, EXEC_WAIT_NS, left);
    // Every write end closed and nothing written: the exec happened.
    let execd = polled == Ok(1) && fds.iter().all(|f| f.revents() == PollFlags::HUP);
    let Some(ep) = grace.filter(|_| execd && *left > 0) else {
        return false;
    };
    let mut loop_fd = [PollFd::from_borrowed_fd(ep, PollFlags::IN)];
    let _ = waited(&mut loop_fd, crate::spawn::RESTART_GRACE_NS, left);
    true
}

/// `poll` of `fds` for `most` nanoseconds, or what is `left` if that is
/// less; the time it took is taken from `left`.
fn waited(fds: &mut [PollFd<'_>], most: u64, left: &mut u64) -> rustix::io::Result<usize> {
    let ns = most.min(*left);
    let from = crate::sys::clock::now_ns();
    let polled = rustix::event::poll(fds, Some(&crate::sys::clock::timespec(ns)));
    let took = match polled {
        Ok(0) => ns,
        _ => crate::sys::clock::now_ns().saturating_sub(from),
    };
    *left = left.saturating_sub(took);
    polled
}

fn poll(w: &ExecWait) -> Handshake {
    crate::spawn::poll_status(&w.status)
}

#[cfg(test)]
mod tests;
