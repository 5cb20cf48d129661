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
mod tests {
    use super::{put, wait_in_place, ExecWait, Waits};
    use crate::pid1::Edge;
    use crate::spawn::Pending;
    use crate::unit::UnitDef;
    use rustix::fd::AsFd;
    use std::time::{Duration, Instant};

    fn pending() -> (Pending, rustix::fd::OwnedFd) {
        let (status, w) = rustix::pipe::pipe().unwrap();
        (Pending { pid: 7, status }, w)
    }

    /// Unit 0 of `p` booted and its start awaiting its exec (pid `NO_PID`);
    /// the child's end of the status pipe.
    fn booted_awaiting_exec(p: &mut crate::pid1::Pid1) -> rustix::fd::OwnedFd {
        use crate::pid1::tests::{step, NO_PID};
        p.epoll =
            Some(rustix::event::epoll::create(rustix::event::epoll::CreateFlags::CLOEXEC).unwrap());
        p.fit_tables();
        step(p, 0, crate::supervisor::Event::Boot);
        let (status, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::NONBLOCK).unwrap();
        p.await_exec(
            0,
            Pending {
                pid: NO_PID,
                status,
            },
        );
        w
    }

    /// A child a reload killed before its exec is the reload's doing: the
    /// start is made again, no failure counted, and a unit on probation
    /// stays on it (before, the kill was its bad verdict: a good
    /// definition rejected). The killed child's status pipe's end of file
    /// is not taken for an exec. A pid no handshake waits for (taken over
    /// by the reload) changes nothing.
    #[test]
    fn a_start_a_reload_killed_before_its_exec_is_made_again() {
        use crate::pid1::tests::NO_PID;
        use crate::supervisor::{Action, Actions, Phase};
        use rustix::event::epoll;
        // Added by a reload (on probation), its start awaiting its exec.
        let mut p = crate::pid1::Pid1::new(None, 0, false);
        p.epoll = Some(epoll::create(epoll::CreateFlags::CLOEXEC).unwrap());
        let mut d = UnitDef::with_defaults("web");
        d.exec.push("/bin/true").unwrap();
        d.namespaces = crate::unit::Namespaces::NONE;
        let mut out = Actions::default();
        out.fit(1);
        p.sup
            .reload(0, &mut vec![d.clone()].into_iter(), &|_| false, &mut out);
        p.edges.push(Edge::new(&d));
        p.fit_tables();
        assert_eq!(out.as_slice(), [Action::Spawn(0)]);
        assert!(p.sup.slot(0).unwrap().rt.probation);
        let (status, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::NONBLOCK).unwrap();
        p.await_exec(
            0,
            Pending {
                pid: NO_PID,
                status,
            },
        );
        drop(w); // the child's death
        p.start_killed_before_exec(&[NO_PID - 1]);
        assert_eq!(p.exec_pid(0), Some(NO_PID), "another pid's kill ended it");
        p.start_killed_before_exec(&[NO_PID]);
        assert!(p.queue.is_empty(), "answers left unstepped");
        // Exec'd (in place, or later on a loaded host: the loop's part
        // played here), `ready = started`: running, judged after
        // GATE_HOLD, as a new run: no failure, no restart.
        crate::pid1::tests::until_execd(&mut p, 0);
        let s = p.sup.slot(0).unwrap();
        assert_eq!(s.rt.phase, Phase::Running);
        assert!(![0, NO_PID].contains(&s.rt.pid), "{}", s.rt.pid);
        assert_eq!(s.rt.restarts, 0);
        assert!(s.rt.probation, "judged by the kill");
        assert_eq!(s.rt.failures.iter().count(), 0);
        assert_eq!(p.edges[0].last_error(), "");
        let pid = rustix::process::Pid::from_raw(s.rt.pid as i32);
        let _ = rustix::process::waitpid(pid, rustix::process::WaitOptions::empty());
    }

    /// Several starts a reload killed are made again as a step's spawns
    /// are: none of a few waits for its exec in place (each would hold
    /// PID 1 for its wait, one after another); the loop awaits them. Each
    /// is a new run.
    #[test]
    fn starts_a_reload_killed_are_made_again_without_a_wait_each() {
        use crate::pid1::tests::NO_PID;
        use crate::supervisor::{Actions, Phase};
        use rustix::event::epoll;
        let mut p = crate::pid1::Pid1::new(None, 0, false);
        p.epoll = Some(epoll::create(epoll::CreateFlags::CLOEXEC).unwrap());
        let defs: Vec<UnitDef> = ["db", "web"]
            .iter()
            .map(|n| {
                let mut d = UnitDef::with_defaults(n);
                d.exec.push("/bin/true").unwrap();
                d.namespaces = crate::unit::Namespaces::NONE;
                d
            })
            .collect();
        let mut out = Actions::default();
        out.fit(2);
        p.sup
            .reload(0, &mut defs.clone().into_iter(), &|_| false, &mut out);
        for d in &defs {
            p.edges.push(Edge::new(d));
        }
        p.fit_tables();
        let fake = [NO_PID, NO_PID - 1];
        let mut ends = Vec::new();
        for (u, &pid) in fake.iter().enumerate() {
            let (status, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::NONBLOCK).unwrap();
            p.await_exec(u as u16, Pending { pid, status });
            ends.push(w);
        }
        drop(ends); // the children's deaths
        p.start_killed_before_exec(&fake);
        for u in 0..2u16 {
            // Awaited by the loop, or seen exec'd at once (a fast child):
            // a new run either way.
            assert!(p.exec_pid(u).is_none_or(|pid| !fake.contains(&pid)));
            assert_eq!(p.sup.slot(u).unwrap().rt.phase, Phase::Starting);
        }
        p.run_queue();
        for u in 0..2u16 {
            let pid = p.exec_pid(u).unwrap_or(p.sup.slot(u).unwrap().rt.pid);
            let pid = rustix::process::Pid::from_raw(pid as i32).unwrap();
            let _ = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty());
        }
        use super::super::executor::waits_in_place;
        let waited = |of: usize| (1..=of).filter(|&n| waits_in_place(n, of)).count();
        assert_eq!(
            [waited(1), waited(2), waited(15), waited(16), waited(40)],
            [1, 0, 0, 1, 2]
        );
    }

    /// With no `start_timeout` (0) the exec still has its bound, and the
    /// failure names that bound, not 0ms.
    #[test]
    fn an_exec_past_the_bound_of_no_start_timeout_names_the_bound() {
        use crate::unit::START_TIMEOUT_DEFAULT;
        let mut p = crate::pid1::Pid1::new(None, 0, false);
        let mut d = UnitDef::with_defaults("web");
        d.exec.push("/bin/true").unwrap();
        d.start_timeout = 0;
        p.add_unit(d);
        p.sup.link().unwrap();
        let _w = booted_awaiting_exec(&mut p);
        p.exec_timeouts(crate::pid1::now() + START_TIMEOUT_DEFAULT + 1000);
        let e = p.edges[0].last_error();
        assert!(
            e.contains(&format!("start_timeout ({START_TIMEOUT_DEFAULT}ms;")),
            "{e}"
        );
    }

    /// A child that exec'd before its deadline, read only after it (the
    /// timer's token first in the loop's batch): started, not killed as
    /// one that did not exec.
    #[test]
    fn an_exec_read_after_the_deadline_it_was_in_time_for_is_a_start() {
        use crate::supervisor::Phase;
        let mut p = crate::pid1::Pid1::new(None, 0, false);
        let mut d = UnitDef::with_defaults("web");
        d.exec.push("/bin/true").unwrap();
        p.add_unit(d);
        p.sup.link().unwrap();
        let w = booted_awaiting_exec(&mut p);
        drop(w); // exec'd: the status pipe at its end, nothing written
        p.exec_timeouts(crate::pid1::now() + 60_000);
        assert_eq!(p.edges[0].last_error(), "");
        let s = p.sup.slot(0).unwrap();
        assert_eq!(s.rt.phase, Phase::Running);
        assert_eq!(s.rt.pid, crate::pid1::tests::NO_PID);
    }

    /// After a restart's exec (the write end closed, nothing written) PID
    /// 1 waits the grace, or less when the loop has something for it; not
    /// when no grace is asked, not after a failed start's report, not when
    /// the child has not exec'd within the wait.
    #[test]
    fn the_grace_follows_an_exec_only() {
        let ep = rustix::event::epoll::create(rustix::event::epoll::CreateFlags::CLOEXEC).unwrap();
        let grace = Some(ep.as_fd());
        let mut left = 10_000_000_000;
        let (p, w) = pending();
        drop(w);
        let t = Instant::now();
        assert!(wait_in_place(&p, grace, &mut left));
        assert!(t.elapsed() >= Duration::from_millis(10));

        let (p, w) = pending();
        drop(w);
        assert!(!wait_in_place(&p, None, &mut left));

        let (p, w) = pending();
        rustix::io::write(&w, &[9, 2, 0, 0, 0]).unwrap();
        drop(w);
        assert!(!wait_in_place(&p, grace, &mut left));

        let (p, w) = pending();
        let t = Instant::now();
        assert!(!wait_in_place(&p, grace, &mut left));
        assert!(t.elapsed() >= Duration::from_millis(50));
        drop(w);

        // Something for the loop: the grace ends at once (a 10 s grace
        // would not pass the 5 s bound).
        let (r, other) = rustix::pipe::pipe().unwrap();
        rustix::event::epoll::add(
            &ep,
            &r,
            rustix::event::epoll::EventData::new_u64(1),
            rustix::event::epoll::EventFlags::IN,
        )
        .unwrap();
        rustix::io::write(&other, b"x").unwrap();
        // The shortest of a few: a loaded host may not run this thread
        // again within the grace.
        let quickest = (0..5)
            .map(|_| {
                let (p, w) = pending();
                drop(w);
                let t = Instant::now();
                assert!(wait_in_place(&p, grace, &mut left));
                t.elapsed()
            })
            .min()
            .unwrap();
        assert!(quickest < Duration::from_millis(10), "{quickest:?}");
    }

    /// The waits in place of one wake-up stop at its budget: each takes
    /// what it waited from it (one that runs to its end, all of it), a
    /// wait has no more than is left, and with nothing left it returns
    /// at once.
    #[test]
    fn waits_in_place_stop_at_the_wake_ups_budget() {
        let mut left = 60_000_000;
        let (p, _w) = pending();
        let t = Instant::now();
        assert!(!wait_in_place(&p, None, &mut left));
        assert!(t.elapsed() >= Duration::from_millis(50));
        assert_eq!(left, 10_000_000);
        let (quick, w) = pending();
        drop(w);
        assert!(!wait_in_place(&quick, None, &mut left));
        assert!(
            left < 10_000_000 && left > 0,
            "an exec seen costs its moment: {left}"
        );
        // The last 10 ms are all a wait has: not EXEC_WAIT_NS's 50 (the
        // quickest of three, for a loaded host).
        let quickest = (0..3)
            .map(|_| {
                let mut last = 10_000_000;
                let t = Instant::now();
                assert!(!wait_in_place(&p, None, &mut last));
                assert_eq!(last, 0);
                t.elapsed()
            })
            .min()
            .unwrap();
        assert!(
            quickest >= Duration::from_millis(10) && quickest < Duration::from_millis(45),
            "{quickest:?}"
        );
        left = 0;
        let t = Instant::now();
        for _ in 0..100 {
            assert!(!wait_in_place(&p, None, &mut left));
        }
        assert!(t.elapsed() < Duration::from_millis(40), "{:?}", t.elapsed());
    }

    /// A reload's recount sees the handshakes the edges hold, whatever
    /// the counts said before.
    #[test]
    fn waits_count_the_edges_as_they_are() {
        let def = UnitDef::with_defaults("web");
        let mut edges = vec![Edge::new(&def), Edge::new(&def), Edge::new(&def)];
        let mut ends = vec![];
        for (i, pid, deadline) in [(1, 7, 5_000), (2, 8, 9_000)] {
            let (status, w) = rustix::pipe::pipe().unwrap();
            ends.push(w);
            edges[i].exec = Some(ExecWait {
                pid,
                status,
                deadline,
            });
        }
        let w = Waits::count(&edges);
        assert_eq!((w.execs, w.kills, w.soonest), (2, 0, Some(5_000)));
        let w = Waits::count(&edges[..1]);
        assert_eq!((w.execs, w.kills, w.soonest), (0, 0, None));
    }

    #[test]
    fn put_counts_the_slots_that_hold_something() {
        let mut n = 0u16;
        let (mut a, mut b) = (None, None);
        assert_eq!(put(&mut n, &mut a, Some(1)), None);
        assert_eq!(n, 1);
        // Replacing a value is no new one.
        assert_eq!(put(&mut n, &mut a, Some(2)), Some(1));
        assert_eq!(n, 1);
        put(&mut n, &mut b, Some(3));
        assert_eq!(n, 2);
        assert_eq!(put(&mut n, &mut a, None), Some(2));
        assert_eq!(put(&mut n, &mut a, None), None);
        assert_eq!((n, a, b), (1, None, Some(3)));
        put(&mut n, &mut b, None);
        assert_eq!(n, 0);
    }
}
