//! What an operator asks of one unit: start, stop, restart.

use super::*;

impl Supervisor {
    pub(super) fn on_start(&mut self, unit: u16) {
        if self.shutdown.is_some() {
            return;
        }
        // A unit a reload removed (leaving, or gone) is never started
        // again, whoever asks by its index.
        let Some(s) = self
            .units
            .get_mut(usize::from(unit))
            .filter(|s| s.retired == Retired::No)
        else {
            return;
        };
        s.rt.want = true;
        match s.rt.phase {
            Phase::Stopped | Phase::Failed | Phase::Exited | Phase::Backoff => {
                s.rt.phase = Phase::Waiting;
                s.rt.deadline = None;
            }
            Phase::Stopping => s.rt.restart_pending = true,
            // No process yet (its restart delay over, its `after` units
            // not ready): as a start of a unit without one.
            Phase::Waiting => {}
            Phase::Starting | Phase::Running => return,
        }
        // Started by hand: a fresh start, failures forgotten; for a unit
        // still stopping already now, as the end of that run is none.
        afresh(s);
    }

    /// `Event::Unshed`.
    pub(super) fn on_unshed(&mut self, unit: u16) {
        if self.shutdown.is_some() {
            return;
        }
        self.on_start(unit);
        self.want_dependants_again(unit);
    }

    pub(super) fn on_restart(&mut self, now: Millis, unit: u16, by_hand: bool, out: &mut Actions) {
        if self.shutdown.is_some() {
            return;
        }
        let Some(s) = self
            .units
            .get_mut(usize::from(unit))
            .filter(|s| s.retired == Retired::No)
        else {
            return;
        };
        match s.rt.phase {
            Phase::Starting | Phase::Running | Phase::Stopping => {
                s.rt.want = true;
                // A `pressure_action`'s is no restart asked for: wanted
                // and stopped, the run ends as a failure (`on_exit`), so
                // it backs off and counts towards the start limit, or a
                // device under memory pressure would restart it at every
                // window for ever.
                if by_hand {
                    s.rt.restart_pending = true;
                    afresh(s);
                }
                self.stop_unit(now, unit, out);
            }
            _ => self.on_start(unit),
        }
    }

    /// Stopped by hand (or shed): not wanted until started again, and a
    /// pending restart is dropped.
    pub(super) fn on_stop(&mut self, now: Millis, unit: u16, by_hand: bool, out: &mut Actions) {
        if let Some(s) = self.units.get_mut(usize::from(unit)) {
            s.rt.want = false;
            s.rt.restart_pending = false;
            // Stopped by hand before it could prove anything: the
            // operator's, not judged. A shed one is judged when the calm
            // (or a hand) starts it again (`judged_when_started`).
            if by_hand {
                s.rt.probation = false;
            }
            // Stopped by hand: a revert of its failed dependency does not
            // start it again (`want_dependants_again`).
            if s.gave_up_on_dependency() {
                s.rt.last_note = Some(Note::Stopped);
            }
        }
        self.stop_unit(now, unit, out);
    }

    pub(super) fn stop_unit(&mut self, now: Millis, unit: u16, out: &mut Actions) {
        let shutting = self.shutdown.is_some();
        let Some(s) = self.units.get_mut(usize::from(unit)) else {
            return;
        };
        match s.rt.phase {
            Phase::Waiting | Phase::Backoff => {
                s.rt.phase = Phase::Stopped;
                s.rt.deadline = None;
                note(s, unit, Note::Stopped, out);
            }
            Phase::Exited => {
                s.rt.phase = Phase::Stopped;
                out.push(Action::KillCgroup(unit));
                // What a oneshot left running (a daemon it started) holds
                // its `after` units up in a shutdown, as a service's does.
                s.rt.draining = shutting;
                note(s, unit, Note::Stopped, out);
            }
            Phase::Starting | Phase::Running if s.rt.pid != 0 => {
                s.rt.phase = Phase::Stopping;
                s.rt.deadline = due(now.saturating_add(s.def.stop_timeout));
                // A stopping run is not watched: its deadline would cost a
                // wake-up of its own, with nothing to do.
                s.rt.watchdog_at = None;
                self.timed.set(true);
                out.push(Action::Signal {
                    unit,
                    pid: s.rt.pid,
                    sig: s.def.stop_signal,
                });
            }
            // Spawned, its exec not answered yet: there is no process to
            // wait for (pid1 kills the child on Stopped), so a pending
            // restart starts again at once. Never a `pressure_action`'s
            // (a failed run): on_pressure acts only on a Running unit with
            // a pid.
            Phase::Starting | Phase::Running => {
                s.rt.phase = Phase::Stopped;
                note(s, unit, Note::Stopped, out);
                if s.rt.want && !shutting {
                    super::process::start_again(s);
                }
            }
            // By hand, or removed by a reload: its start limit's action,
            // if held (`limit_hit`), is not carried out.
            Phase::Failed => s.rt.deadline = None,
            Phase::Stopping | Phase::Stopped => {}
        }
    }
}

impl Supervisor {
    /// Units that gave up because `unit` failed (`DepFailed`), and those
    /// that gave up on them in turn, wait again: its good definition is
    /// starting. One on probation is judged when it runs. Without a list
    /// (this runs inside a verdict's step): a pass wakes the units whose
    /// dependency is `unit` or a unit already woken, until one wakes none.
    fn want_dependants_again(&mut self, unit: u16) {
        for _ in 0..self.units.len() {
            let mut woke = false;
            for i in 0..self.units.len() {
                let Some(s) = self.units.get(i) else { break };
                let Some(Note::DepFailed { dep }) = s.rt.last_note else {
                    continue;
                };
                let dep_back = dep == unit
                    || self.units.get(usize::from(dep)).is_some_and(|d| {
                        d.rt.want
                            && d.rt.phase == Phase::Waiting
                            && matches!(d.rt.last_note, Some(Note::DepFailed { .. }))
                    });
                if !dep_back || !s.gave_up_on_dependency() {
                    continue;
                }
                if let Some(s) = self.units.get_mut(i) {
                    s.rt.want = true;
                    s.rt.phase = Phase::Waiting;
                }
                self.waiting = cover(&self.waiting, i);
                woke = true;
            }
            if !woke {
                break;
            }
        }
    }

    /// After a bad verdict (the unit has no process: it is in backoff or
    /// failed): put `good` back and start it again, or, for a new unit
    /// with no good definition, stop it.
    pub fn revert(&mut self, now: Millis, unit: u16, good: Option<UnitDef>, out: &mut Actions) {
        let Some(s) = self.units.get_mut(usize::from(unit)) else {
            return;
        };
        s.rt.probation = false;
        s.rt.deadline = None;
        afresh(s);
        s.rt.restart_pending = false;
        match good {
            Some(def) => {
                s.rt.failures = Failures::for_limit(def.seldom.start_limit);
                s.set_def(def);
                s.rt.want = self.shutdown.is_none();
                s.rt.phase = if s.rt.want {
                    Phase::Waiting
                } else {
                    Phase::Stopped
                };
                // In a shutdown the unit keeps the dependencies it was
                // counted with (`settle_shutdown` lets go of them): it
                // will not start again.
                if self.shutdown.is_none() {
                    self.link_one(unit);
                    self.want_dependants_again(unit);
                }
            }
            None => {
                s.rt.want = false;
                s.rt.phase = Phase::Stopped;
                note(s, unit, Note::Stopped, out);
            }
        }
        // Its phase changed outside an event: looked at again.
        self.wake(usize::from(unit));
        self.settle(now, out);
    }
}

/// A start or restart by hand (or a revert's) counts afresh: one crash
/// after it must not hit the start limit that the crashes before it had
/// nearly reached.
fn afresh(s: &mut Slot) {
    s.rt.streak = 0;
    s.rt.failures.clear();
}
