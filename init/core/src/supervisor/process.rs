//! What a unit's process does: it is spawned (or cannot be), becomes
//! ready, ends; and the timers that follow: restart after a growing delay,
//! give up, hit the start limit, or escalate a stop to SIGKILL.

use super::*;
use crate::vocab::{QUICK_RUN_MS, RESTART_DELAY_DEFAULT};

impl Supervisor {
    pub(super) fn on_spawned(&mut self, now: Millis, unit: u16, pid: u32, out: &mut Actions) {
        let Some(s) = self.units.get_mut(usize::from(unit)) else {
            return;
        };
        s.rt.pid = pid;
        s.rt.spawned_at = now;
        s.rt.ready_after = 0;
        let early = core::mem::take(&mut s.rt.ready_early);
        if s.def.kind == Kind::Service && s.def.ready == Ready::Started {
            s.rt.phase = Phase::Running;
            s.rt.deadline = None;
            if s.rt.probation {
                // Judged once it has stayed up a moment.
                let hold = match s.def.start_timeout {
                    0 => GATE_HOLD,
                    t => GATE_HOLD.min(t),
                };
                s.rt.deadline = due(now.saturating_add(hold));
                self.timed.set(true);
            }
            note(s, unit, Note::Running { pid }, out);
        } else {
            s.rt.phase = Phase::Starting;
            // Not ready (a oneshot: not done) by then: a failed start.
            s.rt.deadline = match s.def.start_timeout {
                0 => None,
                t => due(now.saturating_add(t)),
            };
            self.timed.set(true);
            if early {
                self.on_ready(now, unit, out);
            }
        }
    }

    pub(super) fn on_ready(&mut self, now: Millis, unit: u16, out: &mut Actions) {
        let Some(s) = self.units.get_mut(usize::from(unit)) else {
            return;
        };
        if s.rt.phase == Phase::Starting && s.def.kind == Kind::Service {
            // Before its `Spawned`: Running (with its pid) once that comes.
            if s.rt.pid == 0 {
                s.rt.ready_early = true;
                return;
            }
            s.rt.phase = Phase::Running;
            let after = now.saturating_sub(s.rt.spawned_at);
            s.rt.ready_after = u32::try_from(after).unwrap_or(u32::MAX);
            s.rt.deadline = None;
            s.rt.watchdog_at = s
                .def
                .seldom
                .watchdog
                .and_then(|w| due(now.saturating_add(w)));
            self.timed.set(true);
            let pid = s.rt.pid;
            note(s, unit, Note::Running { pid }, out);
            judge(s, unit, true, out);
        }
    }

    /// `WATCHDOG=1`: a running unit with a `watchdog` has that long again.
    pub(super) fn on_watchdog_ping(&mut self, now: Millis, unit: u16) {
        let Some(s) = self.units.get_mut(usize::from(unit)) else {
            return;
        };
        if s.rt.phase == Phase::Running {
            s.rt.watchdog_at = s
                .def
                .seldom
                .watchdog
                .and_then(|w| due(now.saturating_add(w)));
            self.timed.set(true);
        }
    }

    pub(super) fn on_tick(&mut self, now: Millis, out: &mut Actions) {
        // Deadlines before watchdogs: a watchdog's failure may set a
        // deadline due now (a unit on probation waits for its verdict's
        // revert: `schedule_restart`), which this tick must not take.
        self.deadlines_passed(now, out);
        self.watchdogs_expired(now, out);
    }

    fn deadlines_passed(&mut self, now: Millis, out: &mut Actions) {
        for i in 0..self.units.len() {
            // Each time: an earlier unit's start limit may have begun one.
            let shutting = self.shutdown.is_some();
            let Some(s) = self.units.get_mut(i) else {
                break;
            };
            let Some(d) = s.rt.deadline else { continue };
            if d.get() > now {
                continue;
            }
            s.rt.deadline = None;
            let unit = i as u16;
            match s.rt.phase {
                // A shutdown's: the restart is not coming (the unit waits,
                // without a process, to be stopped in its turn).
                Phase::Backoff if shutting => {}
                Phase::Backoff => {
                    s.rt.phase = Phase::Waiting;
                    s.rt.restarts = s.rt.restarts.saturating_add(1);
                }
                Phase::Stopping => {
                    // The stop signal was not enough: nothing in the
                    // cgroup survives this.
                    out.push(Action::KillCgroup(unit));
                }
                Phase::Starting => self.start_timed_out(now, unit, out),
                // A `ready = started` unit on probation stayed up.
                Phase::Running => judge(s, unit, true, out),
                // Its start limit's action, held until the floor.
                Phase::Failed if !shutting => {
                    if let Some(kind) = s.def.start_limit_action.shutdown() {
                        note(s, unit, Note::StartLimit, out);
                        self.begin_shutdown(kind);
                    }
                }
                _ => {}
            }
        }
    }

    /// Not ready within `start_timeout`: nothing of it is kept (its exit,
    /// when reaped, is an orphan's) and it counts as a failed start.
    fn start_timed_out(&mut self, now: Millis, unit: u16, out: &mut Actions) {
        let Some(s) = self.units.get_mut(usize::from(unit)) else {
            return;
        };
        s.rt.pid = 0;
        out.push(Action::KillCgroup(unit));
        let failure = self.fail(now, unit, out);
        self.drains_if_shutting(unit);
        if let Some(s) = self.units.get_mut(usize::from(unit)) {
            // At the start limit, that is what was announced.
            if let Some(restart_in) = failure.restart_in() {
                let restart_in = unless_judged(s, restart_in);
                note(s, unit, Note::StartTimeout { restart_in }, out);
            }
            judge(s, unit, false, out);
        }
    }

    /// `watchdog`: running units that sent no `WATCHDOG=1` in time are
    /// killed, and that counts as a failure (restart per `restart`, start
    /// limit). Like a start timeout, their exit, when reaped, is an
    /// orphan's. A deadline left from a unit no longer running is dropped.
    fn watchdogs_expired(&mut self, now: Millis, out: &mut Actions) {
        for i in 0..self.units.len() {
            let Some(s) = self.units.get_mut(i) else {
                break;
            };
            let Some(d) = s.rt.watchdog_at else { continue };
            if s.rt.phase != Phase::Running {
                s.rt.watchdog_at = None;
                continue;
            }
            if d.get() > now {
                continue;
            }
            s.rt.watchdog_at = None;
            s.rt.pid = 0;
            let unit = i as u16;
            out.push(Action::KillCgroup(unit));
            let failure = self.fail(now, unit, out);
            self.drains_if_shutting(unit);
            if let Some(s) = self.units.get_mut(i) {
                if let Some(restart_in) = failure.restart_in() {
                    let restart_in = unless_judged(s, restart_in);
                    note(s, unit, Note::WatchdogTimeout { restart_in }, out);
                }
                judge(s, unit, false, out);
            }
        }
    }

    pub(super) fn on_spawn_failed(&mut self, now: Millis, unit: u16, out: &mut Actions) {
        let Some(s) = self.units.get_mut(usize::from(unit)) else {
            return;
        };
        s.rt.pid = 0;
        s.rt.spawned_at = now;
        let failure = self.fail(now, unit, out);
        if let Some(s) = self.units.get_mut(usize::from(unit)) {
            if let Some(restart_in) = failure.restart_in() {
                let restart_in = unless_judged(s, restart_in);
                note(s, unit, Note::SpawnFailed { restart_in }, out);
            }
            judge(s, unit, false, out);
        }
    }

    pub(super) fn on_exit(&mut self, now: Millis, unit: u16, exit: Exit, out: &mut Actions) {
        let shutting = self.shutdown.is_some();
        let Some(s) = self.units.get_mut(usize::from(unit)) else {
            return;
        };
        s.rt.pid = 0;
        s.rt.last_exit = Some(exit);
        s.rt.deadline = None;
        // The run's watchdog ends with it: a new run started in the same
        // wake-up (no tick between) would be killed at the old deadline.
        s.rt.watchdog_at = None;
        out.push(Action::KillCgroup(unit));
        // What the run left in its cgroup keeps its `after` units up until
        // PID 1 says it is gone.
        s.rt.draining = shutting;
        // Stopped by its `pressure_action = restart` (`on_restart`; no
        // unit is wanted in a shutdown): the run failed, as an OOM-killed
        // one does, and ends as a running unit's crash would (a run up
        // long enough ends the row first).
        let pressed = s.rt.phase == Phase::Stopping && s.rt.want && !s.rt.restart_pending;
        if pressed {
            s.rt.phase = Phase::Running;
        }
        match s.rt.phase {
            Phase::Stopping => {
                s.rt.phase = Phase::Stopped;
                note(s, unit, Note::Stopped, out);
                if s.rt.restart_pending && s.rt.want && !shutting {
                    start_again(s);
                }
            }
            Phase::Starting | Phase::Running => {
                if s.def.kind == Kind::Oneshot && exit.success() {
                    s.rt.phase = Phase::Exited;
                    s.rt.streak = 0;
                    note(s, unit, Note::Exited, out);
                    judge(s, unit, true, out);
                    return;
                }
                let again = s.def.restart == Restart::Always && s.rt.want && !shutting;
                // A run that was never up (a daemon that forks and exits 0
                // before its READY) is a failure, start limit included;
                // only a clean exit of a running unit ends the row.
                let never_up = again && s.rt.phase != Phase::Running;
                let restart_in = if !exit.success() || never_up || pressed {
                    let failure = self.fail(now, unit, out);
                    // A start limit's shutdown begins in this step.
                    self.drains_if_shutting(unit);
                    match failure {
                        Failure::Limit => {
                            if let Some(s) = self.units.get_mut(usize::from(unit)) {
                                judge(s, unit, false, out);
                            }
                            return;
                        }
                        Failure::Restart(d) => Some(d),
                        Failure::GaveUp => None,
                    }
                } else if again {
                    self.schedule_restart(now, unit, false)
                } else {
                    s.rt.phase = Phase::Stopped;
                    None
                };
                if let Some(s) = self.units.get_mut(usize::from(unit)) {
                    note(
                        s,
                        unit,
                        Note::Died {
                            exit,
                            restart_in: unless_judged(s, restart_in.map(Delay::ms)),
                        },
                        out,
                    );
                    judge(s, unit, false, out);
                }
            }
            // An exit in any other phase changes nothing.
            _ => {}
        }
    }

    /// The reaper restarted the service in place: what `on_exit` and the
    /// spawn of a restart due now would record (the exit, the restart,
    /// the streak, the run's start: `on_spawned`), without the spawn.
    /// Where the supervisor would not have restarted it so (a stop or
    /// shutdown on its way, the start limit, probation, the policy), the
    /// run is taken as ended instead (`on_exit`), whose cgroup kill ends
    /// the new one too.
    pub(super) fn on_relaunched(&mut self, now: Millis, unit: u16, exit: Exit, out: &mut Actions) {
        let shutting = self.shutdown.is_some();
        let Some(s) = self.units.get_mut(usize::from(unit)) else {
            return;
        };
        let wanted = match s.def.restart {
            Restart::Always => true,
            Restart::OnFailure => !exit.success(),
            Restart::Never => false,
        };
        let in_place = wanted
            && s.rt.phase == Phase::Running
            && s.rt.want
            && !shutting
            && !s.rt.probation
            && s.def.seldom.start_limit.is_none();
        if !in_place {
            self.on_exit(now, unit, exit, out);
            return;
        }
        let failed = !exit.success();
        row_ends(s, now, failed);
        if failed {
            s.rt.streak = s.rt.streak.saturating_add(1);
        }
        s.rt.last_exit = Some(exit);
        s.rt.restarts = s.rt.restarts.saturating_add(1);
        s.rt.watchdog_at = None;
        note(
            s,
            unit,
            Note::Died {
                exit,
                restart_in: Some(Delay::ms(0)),
            },
            out,
        );
        // As a spawn of the same pid (the reaper's): Running, or with a
        // `ready` to wait for, Starting.
        let pid = s.rt.pid;
        self.on_spawned(now, unit, pid, out);
    }

    /// A run whose cgroup was just killed holds its `after` units up in a
    /// shutdown until PID 1 says what it left is gone (`Drained`): also
    /// when the shutdown began in this step (a start limit's action).
    fn drains_if_shutting(&mut self, unit: u16) {
        let shutting = self.shutdown.is_some();
        if let Some(s) = self.units.get_mut(usize::from(unit)) {
            s.rt.draining = shutting;
        }
    }

    /// The start limit is hit: said, and its `start_limit_action` begun,
    /// or held until PID 1 has been up `LIMIT_ACTION_FLOOR` (a deadline,
    /// which a start, stop or change of the unit clears; then
    /// `deadlines_passed`), or under `wren.rescue` skipped.
    fn limit_hit(&mut self, now: Millis, unit: u16, out: &mut Actions) {
        let shutting = self.shutdown.is_some();
        let Some(s) = self.units.get_mut(usize::from(unit)) else {
            return;
        };
        note(s, unit, Note::StartLimit, out);
        let Some(kind) = s.def.start_limit_action.shutdown() else {
            return;
        };
        // Judged before the shutdown takes every unit off probation: PID 1
        // puts the good file back before the reboot, which would otherwise
        // boot the bad one again. Before the floor nothing is held for it:
        // the good definition starts (a new unit stops) at once.
        let judged = s.rt.probation;
        judge(s, unit, false, out);
        if self.rescue {
            return;
        }
        if now < self.limit_floor && !shutting {
            if !judged {
                s.rt.deadline = due(self.limit_floor);
                self.timed.set(true);
            }
        } else {
            self.begin_shutdown(kind);
        }
    }

    /// Record a failed start; schedule the restart, or give up: for good
    /// when the policy says so, or because the start limit is hit.
    fn fail(&mut self, now: Millis, unit: u16, out: &mut Actions) -> Failure {
        let shutting = self.shutdown.is_some();
        let Some(s) = self.units.get_mut(usize::from(unit)) else {
            return Failure::GaveUp;
        };
        if let Some(limit) = s.def.seldom.start_limit {
            s.rt.failures.push(now);
            let recent =
                s.rt.failures
                    .iter()
                    .filter(|&t| now.saturating_sub(t) <= limit.window)
                    .count();
            if recent >= usize::from(limit.count) {
                s.rt.phase = Phase::Failed;
                s.rt.want = false;
                s.rt.deadline = None;
                self.limit_hit(now, unit, out);
                return Failure::Limit;
            }
        }
        let restart = s.def.restart != Restart::Never && s.rt.want && !shutting;
        if !restart {
            s.rt.phase = Phase::Failed;
            s.rt.deadline = None;
            return Failure::GaveUp;
        }
        match self.schedule_restart(now, unit, true) {
            Some(d) => Failure::Restart(d),
            None => Failure::GaveUp,
        }
    }

    /// Backoff: `restart_delay`, doubling for each failure in a row, capped
    /// at `restart_delay_max`; a run that was up (ready) longer than the cap
    /// resets the streak, and so does a clean exit (`failed` false: not a
    /// failure, so the row ends), whose restart is after `restart_delay`.
    /// A start that timed out was never up, however long it took.
    /// With no delay, the first restart of a streak is due now: the unit
    /// waits again and this step's settling spawns it (no timer turn of
    /// pid1's loop). Later ones in a row still go through Backoff, so a
    /// unit that dies at once cannot keep pid1 in one wake-up for ever.
    /// Nor does a unit on probation, whose bad verdict comes in this same
    /// step: PID 1's revert starts the good definition, and a start of
    /// this step's own would be a second one.
    fn schedule_restart(&mut self, now: Millis, unit: u16, failed: bool) -> Option<Millis> {
        let s = self.units.get_mut(usize::from(unit))?;
        row_ends(s, now, failed);
        let mut delay = backoff_delay(s.def.restart_delay, s.def.restart_delay_max, s.rt.streak);
        // `restart_delay = 0` doubles to 0: a unit that fails at once again
        // and again (a missing program, a crash at start) would be started
        // as fast as the machine goes, its failures said on the console as
        // fast, for ever (runit and s6 wait a second; systemd gives up).
        // A quick failure after others in a row waits as if the delay were
        // the default, doubled by the failures before it, and a quick clean
        // exit (no row: not a failure) the default, up to
        // `restart_delay_max` (`0ms` there keeps every restart at once, as
        // asked); a run of a second or more is restarted at once.
        if delay == 0 && (s.rt.streak > 0 || !failed) && quick_run(s, now) {
            let doublings = s.rt.streak.saturating_sub(1);
            delay = backoff_delay(RESTART_DELAY_DEFAULT, s.def.restart_delay_max, doublings);
        }
        // A clean exit's restart takes the timer's turn even with no delay:
        // its streak stays 0, so a program that exits at once would
        // otherwise be restarted within one wake-up for as long as its
        // exits are reaped there.
        let now_due = failed && delay == 0 && s.rt.streak == 0 && !s.rt.probation;
        if failed {
            s.rt.streak = s.rt.streak.saturating_add(1);
        }
        if now_due {
            s.rt.phase = Phase::Waiting;
            s.rt.restarts = s.rt.restarts.saturating_add(1);
            s.rt.deadline = None;
        } else {
            s.rt.phase = Phase::Backoff;
            s.rt.deadline = due(now.saturating_add(delay));
            self.timed.set(true);
        }
        Some(delay)
    }
}

/// The run that just ended lasted less than `QUICK_RUN_MS` from its start
/// (a start that failed, `spawned_at` its failure, too): by time alone,
/// so that a long run never ready (a oneshot, a start timeout) is no
/// crash loop.
fn quick_run(s: &Slot, now: Millis) -> bool {
    now.saturating_sub(s.rt.spawned_at) < QUICK_RUN_MS
}

/// The end of a run ends the row of failures when it is no failure, or
/// when the run was up (`Running`) longer than `restart_delay_max`: up
/// since it was ready, so a slow start that crashes once ready is a crash
/// loop however long each start took.
fn row_ends(s: &mut Slot, now: Millis, failed: bool) {
    let ready_at = s.rt.spawned_at.saturating_add(u64::from(s.rt.ready_after));
    let up = now.saturating_sub(ready_at);
    if !failed || (up > s.def.restart_delay_max && s.rt.phase == Phase::Running) {
        s.rt.streak = 0;
    }
}

/// A restart (or a start while stopping) done with the stop; its failures
/// were forgotten when it was asked for (by hand, or a reload's change).
pub(super) fn start_again(s: &mut Slot) {
    s.rt.restart_pending = false;
    s.rt.phase = Phase::Waiting;
}

/// The restart a failure announces: none for a unit on probation, whose
/// bad verdict comes in the same step and has PID 1 put its last good
/// definition back at once (or stop it, a new unit) instead: "restart in
/// 100ms" would announce a start that never comes.
fn unless_judged(s: &Slot, restart_in: Option<Delay>) -> Option<Delay> {
    restart_in.filter(|_| !s.rt.probation)
}

/// End a unit's probation with a verdict (nothing when it is not on
/// probation).
pub(super) fn judge(s: &mut Slot, unit: u16, good: bool, out: &mut Actions) {
    if s.rt.probation {
        s.rt.probation = false;
        out.push(Action::Verdict { unit, good });
    }
}

enum Failure {
    Restart(Millis),
    GaveUp,
    Limit,
}

impl Failure {
    /// What to announce: `Some(restart_in)`, or `None` at the start limit
    /// (already announced as such).
    fn restart_in(&self) -> Option<Option<Delay>> {
        match *self {
            Failure::Restart(d) => Some(Some(Delay::ms(d))),
            Failure::GaveUp => Some(None),
            Failure::Limit => None,
        }
    }
}

/// `base * 2^streak`, capped at `max`.
pub fn backoff_delay(base: Millis, max: Millis, streak: u32) -> Millis {
    let shift = streak.min(40);
    base.saturating_mul(1u64 << shift)
        .min(max)
        .max(base.min(max))
}
