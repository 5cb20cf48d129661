//! Stopping a unit's whole cgroup, and the bound on shutdown.
//!
//! The stop signal goes to every process of the unit's cgroup (not just
//! its process group). Processes left once the main one has ended keep
//! the rest of `stop_timeout`; then SIGKILL through `cgroup.kill` (or pid
//! by pid without it). Whatever survives that (a process the kernel does
//! not let die yet, a `cgroup.kill` that took the write and did nothing)
//! is killed pid by pid again, every `KILL_RETRY_MS`, at most `KILL_TRIES`
//! times, each logged; then PID 1 gives up on it, says so, and goes on.
//!
//! Emptiness is learnt from `cgroup.events` in the epoll set (the kernel
//! marks it with EPOLLPRI when `populated` changes), not by polling.
//! `initctl stop` is answered once the cgroup is empty, and the final
//! shutdown sequence waits for the same (`shutdown`).

use super::event_loop::TOKEN_CGEVENTS;
use super::handshake::put;
use super::{now, Pid1};
use crate::cgroup::kill::{self, Killed};
use crate::cgroup::Cgroups;
use crate::supervisor::{Event, Phase};
use crate::sys::errno::Os;
use crate::vocab::{due, Due, Millis};
use rustix::event::epoll;
use rustix::fd::OwnedFd;
use rustix::process::Signal;

/// Between two kills of processes that survived the last.
pub(super) const KILL_RETRY_MS: Millis = 200;
/// Kills of one cgroup before PID 1 gives up on what is left.
pub(super) const KILL_TRIES: u8 = 5;

/// How far a unit's cgroup is from empty, after a stop signal or a kill.
#[derive(Default)]
pub(super) struct Drain {
    /// `cgroup.events`, in the epoll set while the cgroup is not empty.
    events: Option<OwnedFd>,
    /// Sent the stop signal: processes left after the main one ended
    /// are killed at this time, not before.
    stop_by: Option<Due>,
    /// When the cgroup is killed (again) if it is not empty by then.
    next_kill: Option<Due>,
    kills: u8,
    /// Processes survived every kill: the last stop is answered with an
    /// error.
    pub(super) gave_up: bool,
    /// The exit came as a reaper's report (`report`): the reaper emptied
    /// its namespace first and is exiting, the one process of the run
    /// left in the cgroup.
    pub(super) reported: bool,
    /// That report's pipe, held until the loop's timer turn after the next
    /// run exec'd (or no run follows): its reaper exits when it is closed
    /// (`report`).
    pub(super) held: Option<OwnedFd>,
    /// Without cgroups (`report`): the report, read and kept for the
    /// reaper's reap, which alone says that the run is gone.
    pub(super) early: Option<crate::vocab::Exit>,
    /// The run ended by SIGKILL and memory.events has not told yet
    /// whether it was the OOM killer (`sources::settle_oom`). Here, not
    /// in `Edge`, where one more bool took 8 bytes a unit of padding.
    pub(super) oom_unread: bool,
}

impl Drain {
    /// Processes of the unit may be left that PID 1 still waits for.
    pub(super) fn active(&self) -> bool {
        self.events.is_some() || self.kill_due()
    }

    /// A kill of the cgroup is due at `next_kill`.
    pub(super) fn kill_due(&self) -> bool {
        self.next_kill.is_some()
    }

    /// Nothing more to wait for: `cgroup.events` out of the epoll set `ep`,
    /// no kill due (`kills`: the loop's count of those).
    pub(super) fn end(&mut self, ep: Option<&OwnedFd>, kills: &mut u16) {
        super::event_loop::unwatch(ep, self.events.take());
        self.stop_by = None;
        put(kills, &mut self.next_kill, None);
        self.kills = 0;
    }
}

impl Pid1 {
    /// `Action::Signal`: `sig` to every process of the cgroup (with a PID
    /// namespace, to all but its reaper `pid`, which would forward it to
    /// the service's group a second time); the process group of `pid` if
    /// the cgroup cannot be read.
    pub(super) fn signal_unit(&mut self, u: u16, pid: u32, sig: i32) {
        let Some(slot) = self.sup.slot(u) else { return };
        let Some(sig) = Signal::from_named_raw(sig) else {
            return;
        };
        // Whether the run has a reaper is the run's, not the definition's
        // (a reload's new one is set before its stop): a reaper's run has
        // its report pipe until it ends; one adopted without it (from the
        // cgroup tree) is in a PID namespace of its own.
        let reaper = self
            .edges
            .get(usize::from(u))
            .is_some_and(|e| {
                e.exit_report.is_some()
                    || crate::sys::file::same_namespace(pid, "pid") == Some(false)
            })
            .then_some(pid);
        // A reaper that may start its service again in place must know
        // first that this end is a stop: told before any process of the
        // run is signalled, it is told before the service can die of it.
        if let Some(r) = reaper
            .and_then(|r| i32::try_from(r).ok())
            .filter(|&r| r > 0)
        {
            let _ = crate::sys::signal::kill(r, crate::spawn::reaper::REVOKE);
        }
        // Then SIGCONT, as systemd, s6 and runit send it: a stopped
        // process (SIGSTOP, a debugger, a shell's job control) would
        // otherwise hold the stop signal until the SIGKILL at the end of
        // `stop_timeout`, never running its handler.
        let cont = !matches!(sig, Signal::KILL | Signal::CONT);
        let dir = self
            .cg
            .as_ref()
            .and_then(|cg| cg.unit_dir(&slot.def.name).ok());
        let sent = dir
            .as_ref()
            .and_then(|dir| kill::signal_each(dir, sig, reaper, kill::SUB_CGROUPS).ok())
            .unwrap_or(0);
        if sent == 0 {
            signal_group(pid, sig);
            if cont {
                signal_group(pid, Signal::CONT);
            }
        } else if let Some(dir) = dir.as_ref().filter(|_| cont) {
            let _ = kill::signal_each(dir, Signal::CONT, reaper, kill::SUB_CGROUPS);
        }
        let by = now().saturating_add(slot.def.stop_timeout);
        if let Some(e) = self.edges.get_mut(usize::from(u)) {
            e.drain.stop_by = due(by);
            e.drain.kills = 0;
            e.drain.gave_up = false;
        }
        self.watch_events(u);
    }

    /// `Action::KillCgroup`. After a stop signal, processes left once the
    /// main one ended get until the stop's deadline; otherwise now.
    pub(super) fn kill_cgroup(&mut self, u: u16) {
        let t = now();
        let stopped = self
            .sup
            .slot(u)
            .is_some_and(|s| s.rt.phase != Phase::Stopping);
        let Some(e) = self.edges.get_mut(usize::from(u)) else {
            return;
        };
        let reported = core::mem::take(&mut e.drain.reported);
        // Without cgroups nothing says when what the stop left has gone:
        // the run's process group is killed at once.
        let grace = e
            .drain
            .stop_by
            .filter(|&by| by.get() > t && stopped && self.cg.is_some());
        match grace {
            Some(by) => {
                put(&mut self.waits.kills, &mut e.drain.next_kill, Some(by));
                self.watch_events(u);
                self.check_empty(u);
            }
            // Nothing to kill but a reaper on its way out (which a restart
            // does not wait for: the new run shares the cgroup with it).
            None if reported => {}
            None => self.kill_cgroup_now(u),
        }
    }

    /// Without cgroups: `pid`, the new run of unit `u`, leads its process
    /// group (its child calls setsid first).
    pub(super) fn note_pgid(&mut self, u: u16, pid: u32) {
        let i = usize::from(u);
        if self.pgids.len() <= i {
            // The kernel refused cgroups after the boot (`start`): sized
            // once, as at a reload.
            self.pgids.resize(self.edges.len().max(i + 1), 0);
        }
        if let Some(g) = self.pgids.get_mut(i) {
            *g = pid;
        }
    }

    /// The kernel refused clone3 into a cgroup (before Linux 5.7): said
    /// once, and from now on every unit runs without cgroups, the running
    /// ones' process groups noted for their kills.
    pub(super) fn drop_cgroups(&mut self) {
        crate::error!(
            "{}",
            crate::cgroup::missing::Message {
                root: crate::vocab::CGROUP_ROOT,
                found: crate::cgroup::missing::Found::NoCloneIntoCgroup,
                error: None,
            }
        );
        self.cg = None;
        self.note_running_pgids();
    }

    /// Without cgroups: every running unit's process group, from its pid
    /// (its child's setsid made it the group's leader), also where no
    /// start noted it: after a re-exec, whose state does not carry them
    /// (`fit_tables`), and once the kernel refused cgroups after the boot,
    /// for the units started before.
    pub(super) fn note_running_pgids(&mut self) {
        if self.cg.is_some() {
            return;
        }
        for u in 0..u16::try_from(self.sup.len()).unwrap_or(u16::MAX) {
            match self.sup.slot(u).map_or(0, |s| s.rt.pid) {
                0 => {}
                pid => self.note_pgid(u, pid),
            }
        }
    }

    /// SIGKILL to the cgroup now (first `cgroup.kill`, then pid by pid),
    /// and again later if it is not empty by then.
    pub(super) fn kill_cgroup_now(&mut self, u: u16) {
        let Some(slot) = self.sup.slot(u) else {
            return;
        };
        let Some(cg) = self.cg.as_ref() else {
            // No cgroups (cgroup::missing): the run's process group is
            // all there is to kill. The supervisor has often let go of
            // its pid by now (a start timeout, a watchdog, an exit): the
            // group noted at the start, taken so that it is signalled once
            // (its number is free again once the group is gone).
            let noted = self
                .pgids
                .get_mut(usize::from(u))
                .map(core::mem::take)
                .unwrap_or(0);
            let pid = match slot.rt.pid {
                0 => noted,
                p => p,
            };
            signal_group(pid, Signal::KILL);
            // Nothing tells when the group is gone: no drain to wait on (a
            // kill left due would fire at once, again and again, once the
            // kernel refused cgroups after the boot: `start`).
            self.end_drain(u);
            return;
        };
        let name = slot.def.name.as_str();
        let main = slot.rt.pid;
        let (first, unread) = self
            .edges
            .get(usize::from(u))
            .map_or((false, false), |e| (e.drain.kills == 0, e.drain.oom_unread));
        if first && slot.rt.phase == Phase::Stopping && main != 0 {
            // The main process a stop waits for, should it have left the
            // cgroup (moved itself; the directory gone since): the stop,
            // whose deadline this kill is, would wait for it with no
            // deadline left. Its process group, as the stop signal's
            // fallback has it.
            let inside = cg
                .unit_dir(name)
                .ok()
                .and_then(|d| kill::lists(&d, main).ok());
            if inside != Some(true) {
                signal_group(main, Signal::KILL);
            }
        }
        if cg.populated(name) == Some(false) {
            self.end_drain(u);
            return;
        }
        // PID 1's own SIGKILL of a run (a stop's, a start or watchdog
        // timeout's) would be taken for the OOM killer's if a worker of
        // the run was OOM-killed before it: the kills so far are counted
        // first. Not where a SIGKILL exit is still to tell apart (that
        // read comes after a restart's spawn), nor after an exit that left
        // nothing (a crash's restart reads nothing more).
        if first && !unread {
            self.count_oom(u);
        }
        let (Some(cg), Some(slot), Some(e)) = (
            self.cg.as_ref(),
            self.sup.slot(u),
            self.edges.get_mut(usize::from(u)),
        ) else {
            return;
        };
        let name = slot.def.name.as_str();
        let result = if first {
            cg.kill(name)
                .map_err(|err| crate::warn!("{name}: {err}"))
                .ok()
        } else {
            cg.unit_dir(name)
                .ok()
                .and_then(|d| kill::signal_each(&d, Signal::KILL, None, kill::ALL_SUB_CGROUPS).ok())
                .map(|pids| Killed::EachPid {
                    errno: rustix::io::Errno::SRCH,
                    pids,
                })
        };
        if let Some(Killed::EachPid { errno, pids }) = result {
            // No such file: a kernel without it, said once at boot.
            if first && errno != rustix::io::Errno::NOENT {
                crate::warn!(
                    "{name}: cgroup.kill: {}; SIGKILL to each of {pids} processes",
                    Os::from(errno)
                );
            }
        }
        e.drain.kills = e.drain.kills.saturating_add(1);
        e.drain.stop_by = None;
        let next = due(now().saturating_add(KILL_RETRY_MS));
        put(&mut self.waits.kills, &mut e.drain.next_kill, next);
        self.watch_events(u);
        self.check_empty(u);
    }

    /// `kill_cgroup_now`, unless it was made since the drain began (the
    /// step's `KillCgroup` of an end that was not a stop's): not twice.
    pub(super) fn kill_unless_killed(&mut self, u: u16) {
        let killed = self
            .edges
            .get(usize::from(u))
            .is_some_and(|e| e.drain.kills > 0);
        if !killed {
            self.kill_cgroup_now(u);
        }
    }

    /// A spawn into a cgroup that may still hold a stopped run's
    /// processes: they go now, once (escalating later would hit the new
    /// process), and nothing of the old stop is waited for.
    pub(super) fn clear_for_spawn(&mut self, u: u16) {
        let draining = self
            .edges
            .get(usize::from(u))
            .is_some_and(|e| e.drain.active());
        if draining {
            if let (Some(cg), Some(slot)) = (self.cg.as_ref(), self.sup.slot(u)) {
                let name = slot.def.name.as_str();
                if cg.populated(name) != Some(false) {
                    let _ = cg.kill(name);
                    // New limits: the spawn makes the cgroup anew, which
                    // it can only once what was killed has gone (a
                    // reaper held for its report among them): given a
                    // moment (10 ms a poll, REMAKE_POLLS a wake-up at
                    // most), as the exec's wait in place is.
                    if let Some(e) = self.edges.get_mut(usize::from(u)) {
                        if e.cgroup != Some(slot.limits_gen) {
                            e.drain.held = None;
                            cg.wait_empty(name, &mut self.remake_polls);
                        }
                    }
                }
            }
        }
        self.end_drain(u);
        if let Some(e) = self.edges.get_mut(usize::from(u)) {
            e.drain.gave_up = false;
            e.drain.reported = false;
            // A report kept for a reap that never took it (the handshake
            // settled as a failed start): not the next run's exit.
            e.drain.early = None;
            // Spawned again: no longer stopped by its pressure trigger.
            e.set_pressure_stopped(false);
        }
    }

    /// After a refused start: what unit `u`'s last run made of its
    /// cgroup (clone3 into a cgroup that hands `memory` or `io` to
    /// children is EBUSY) undone (`Cgroups::undo_nested`), said; true
    /// when something was.
    pub(super) fn undo_nested(&self, u: u16) -> bool {
        let (Some(cg), Some(slot)) = (self.cg.as_ref(), self.sup.slot(u)) else {
            return false;
        };
        let name = slot.def.name.as_str();
        match cg.undo_nested(name) {
            Ok(true) => {
                crate::warn!("{name}: removed the cgroups its last run made below its own");
                true
            }
            Ok(false) => false,
            Err(e) => {
                let e = Os::from(e);
                crate::warn!("{name}: cgroups its last run made below its own: {e}");
                false
            }
        }
    }

    /// `cgroup.events` of unit `u` changed.
    pub(super) fn on_cgroup_events(&mut self, u: u16) {
        self.check_empty(u);
    }

    /// Kills that are due: the stop's grace is over, or the last kill left
    /// processes.
    pub(super) fn drain_timeouts(&mut self, t: Millis) {
        if self.waits.kills == 0 {
            return;
        }
        for i in 0..self.edges.len() {
            let due = self
                .edges
                .get(i)
                .and_then(|e| e.drain.next_kill)
                .is_some_and(|k| k.get() <= t);
            let Some(u) = u16::try_from(i).ok().filter(|_| due) else {
                continue;
            };
            self.check_empty(u);
            let Some(e) = self.edges.get(i) else { continue };
            if !e.drain.active() {
                continue;
            }
            let kills = e.drain.kills;
            let name = self.sup.slot(u).map_or("?", |s| s.def.name.as_str());
            let left = self
                .cg
                .as_ref()
                .and_then(|cg| cg.pids_current(name))
                .unwrap_or(0);
            if kills >= KILL_TRIES {
                crate::error!(
                    "{name}: processes survived {kills} kills (pids.current {left}); giving up on them"
                );
                self.end_drain(u);
                if let Some(e) = self.edges.get_mut(i) {
                    e.drain.gave_up = true;
                }
                continue;
            }
            if kills > 0 {
                crate::warn!(
                    "{name}: processes survived the kill (pids.current {left}); killing each again ({} of {KILL_TRIES})",
                    kills.saturating_add(1)
                );
            }
            self.kill_cgroup_now(u);
        }
    }

    /// The earliest kill due, for the timer.
    pub(super) fn drain_deadline(&self) -> Option<Millis> {
        if self.waits.kills == 0 {
            return None;
        }
        self.edges
            .iter()
            .filter_map(|e| e.drain.next_kill)
            .min()
            .map(Due::get)
    }

    /// Any unit whose cgroup PID 1 still waits to see empty.
    pub(super) fn draining(&self) -> bool {
        self.edges.iter().any(|e| e.drain.active())
    }

    fn watch_events(&mut self, u: u16) {
        let (Some(cg), Some(slot), Some(ep)) =
            (self.cg.as_ref(), self.sup.slot(u), self.epoll.as_ref())
        else {
            return;
        };
        let Some(e) = self.edges.get_mut(usize::from(u)) else {
            return;
        };
        if e.drain.events.is_some() {
            return;
        }
        let Ok(fd) = cg.events(&slot.def.name) else {
            return;
        };
        let data = epoll::EventData::new_u64(TOKEN_CGEVENTS + u64::from(u));
        if epoll::add(ep, &fd, data, epoll::EventFlags::PRI).is_ok() {
            e.drain.events = Some(fd);
        }
    }

    /// Ends the drain once `cgroup.events` says the cgroup is empty (or
    /// cannot be read: then nothing can tell, and nobody waits past the
    /// one kill the stop's grace ends in).
    pub(super) fn check_empty(&mut self, u: u16) {
        let populated = match self
            .edges
            .get(usize::from(u))
            .and_then(|e| e.drain.events.as_ref())
        {
            Some(fd) => Cgroups::populated_at(fd),
            None => self
                .cg
                .as_ref()
                .zip(self.sup.slot(u))
                .and_then(|(cg, s)| cg.populated(&s.def.name)),
        };
        // `cgroup.events` could never be read, and the kill the stop's
        // grace ends in is still to come: it is kept (ended here, nothing
        // would ever kill what the stop left). After it, nobody waits. One
        // that was watched and fails now is a cgroup removed since (its fd
        // stays ready in the epoll set: kept, PID 1 would spin).
        let kept = self.edges.get(usize::from(u)).is_some_and(|e| {
            populated.is_none()
                && e.drain.events.is_none()
                && e.drain.kills == 0
                && e.drain.kill_due()
        });
        if kept {
            return;
        }
        if populated != Some(true) {
            self.end_drain(u);
        }
    }

    /// In a shutdown: `Event::Drained` queued for unit `u` if the
    /// supervisor counts it as draining (its exit's leftovers hold its
    /// `after` units up) and its drain is over here: at the exit's kill,
    /// and at the drain's end (`end_drain`). One unit, not a pass over
    /// the table: a shutdown's exits each cost their own unit. Outside
    /// one, the supervisor is told whether the unit drains, directly.
    pub(super) fn drained_if_done(&mut self, u: u16) {
        // Said already by the kill that ended the drain (`end_drain`),
        // whose action's own check comes right after: not twice.
        if matches!(self.queue.back(), Some(Event::Drained { unit }) if *unit == u) {
            return;
        }
        let draining = self.sup.slot(u).is_some_and(|s| s.rt.draining);
        let active = self
            .edges
            .get(usize::from(u))
            .is_some_and(|e| e.drain.active());
        // Outside a shutdown the supervisor is told directly (no step):
        // one that begins while a stop's leftovers still run must find
        // the unit holding its `after` units up.
        if self.sup.shutting_down().is_none() {
            if draining != active {
                self.sup.note_draining(u, active);
            }
            return;
        }
        if draining && !active && !self.queue_event(Event::Drained { unit: u }) {
            crate::error!("event queue full");
        }
    }

    fn end_drain(&mut self, u: u16) {
        if let Some(e) = self.edges.get_mut(usize::from(u)) {
            e.drain.end(self.epoll.as_ref(), &mut self.waits.kills);
        }
        self.drained_if_done(u);
    }
}

/// `sig` to the process group `pid` leads, or to `pid` alone when it does
/// not lead one yet (signalled before its setsid). Nothing for pid 0.
fn signal_group(pid: u32, sig: Signal) {
    let Some(p) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return;
    };
    // Group 1 is kill(-1): every process of the host but init and this
    // one. A test's PID 1 that took pid 1 for a unit's (a mutant of the
    // adoption did) fails here instead.
    #[cfg(test)]
    assert_ne!(pid, 1, "signal_group(1) would be kill(-1)");
    if rustix::process::kill_process_group(p, sig).is_err() {
        let _ = rustix::process::kill_process(p, sig);
    }
}

#[cfg(test)]
mod tests;
