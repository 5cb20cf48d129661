//! Shutdown: stop every unit in reverse dependency order, then `Finish`.
//!
//! `needed[i]` counts the units that hold unit `i` up: active units that
//! list it in `after`. Its top bit (`HOLDS`) says unit `i` itself is
//! counted as active in the others' counts. The counts are kept from
//! event to event, so an exit costs the exited unit's `after` list, not a
//! pass over the table: every exit of a shutdown recounting the whole
//! table made a 1,000-unit shutdown 31 M host instructions, 4,000 units
//! half a billion (issue 10).

use super::*;

/// In `needed[i]`: unit `i` counts as active in its `after` units' counts.
const HOLDS: u32 = 1 << 31;

/// Holds its `after` units up: it runs (or may), or what its exit left is
/// still going (`draining`): a dependency stopped then could be gone
/// while the dependent's leftovers still write to it.
fn holds_up(s: &Slot) -> bool {
    s.rt.phase.active() || s.rt.draining
}

impl Supervisor {
    /// PID 1 waits (`on`), or no longer, for what unit's last run left in
    /// its cgroup: a stop's leftovers given the rest of its `stop_timeout`.
    /// Outside a shutdown only, where an exit does not mark it: a shutdown
    /// begun meanwhile then finds the unit still holding its `after` units
    /// up (docs/units.md, "Order and readiness"). In a shutdown an exit
    /// marks it and `Event::Drained` clears it, in steps, as the counts
    /// kept from step to step need.
    pub fn note_draining(&mut self, unit: u16, on: bool) {
        if self.shutdown.is_some() {
            return;
        }
        if let Some(s) = self.units.get_mut(usize::from(unit)) {
            s.rt.draining = on && !s.rt.phase.active() && s.retired == Retired::No;
        }
    }

    pub(super) fn begin_shutdown(&mut self, kind: ShutdownKind) {
        if self.shutdown.is_some() {
            return;
        }
        self.shutdown = Some(kind);
        for s in self.units.iter_mut() {
            s.rt.want = false;
            s.rt.restart_pending = false;
            s.rt.probation = false;
        }
        // The first pass counts every unit (a start limit's shutdown comes
        // in the step of one unit's exit).
        self.wake_all();
    }

    pub(super) fn settle_shutdown(&mut self, now: Millis, out: &mut Actions) {
        if self.finished {
            return;
        }
        let mut needed = core::mem::take(&mut self.needed);
        // Units whose phase may have changed since the last pass: every
        // unit at the first and at a tick, else the event's (`waiting`).
        let range = self.waiting.start..self.waiting.end.min(self.units.len());
        self.waiting = 0..0;
        let mut pass = false;
        for i in range {
            let Some(s) = self.units.get(i) else { break };
            let holds = needed.get(i).is_some_and(|n| n & HOLDS != 0);
            if holds_up(s) != holds {
                pass |= self.hold(&mut needed, i, !holds);
            }
        }
        // A unit nothing holds any more is stopped; one that stops at
        // once (it had no process) lets go of its own `after` units,
        // which a later index may already have passed: again until none.
        while pass {
            pass = false;
            for i in 0..self.units.len() {
                let Some(s) = self.units.get(i) else { break };
                let free = needed.get(i).is_some_and(|n| n & !HOLDS == 0);
                if !free || !s.rt.phase.active() || s.rt.phase == Phase::Stopping {
                    continue;
                }
                self.stop_unit(now, i as u16, out);
                if self.units.get(i).is_some_and(|s| !holds_up(s)) {
                    pass |= self.hold(&mut needed, i, false);
                }
            }
        }
        #[cfg(test)]
        self.check_counts(&needed);
        self.needed = needed;
        if self.held == 0 {
            self.finished = true;
            if let Some(kind) = self.shutdown {
                out.push(Action::Finish(kind));
            }
        }
    }

    /// Count unit `i` as active (`on`) in its `after` units' counts, or
    /// not any more. True when that may leave a unit to stop: it was
    /// counted (its own count is to be judged), or one of its `after`
    /// units is now held by none.
    fn hold(&mut self, needed: &mut [u32], i: usize, on: bool) -> bool {
        let Some(s) = self.units.get(i) else {
            return false;
        };
        let mut pass = on;
        for &d in s.rt.deps.iter() {
            if let Some(n) = needed.get_mut(usize::from(d)) {
                if on {
                    *n = n.saturating_add(1);
                } else {
                    *n = n.saturating_sub(1);
                    pass |= *n & !HOLDS == 0;
                }
            }
        }
        if let Some(n) = needed.get_mut(i) {
            *n = if on { *n | HOLDS } else { *n & !HOLDS };
        }
        self.held = if on {
            self.held.saturating_add(1)
        } else {
            self.held.saturating_sub(1)
        };
        pass
    }

    /// The counts kept from event to event are those a pass over the
    /// whole table would make, and no unit is left to stop.
    #[cfg(test)]
    fn check_counts(&self, needed: &[u32]) {
        let active = holds_up;
        for (i, s) in self.units.iter().enumerate() {
            let want = self
                .units
                .iter()
                .filter(|o| active(o) && o.rt.deps.contains(&(i as u16)))
                .count() as u32;
            let n = needed[i];
            assert_eq!(n & !HOLDS, want, "unit {i}'s count");
            assert_eq!(n & HOLDS != 0, active(s), "unit {i} counted as active");
            if want == 0 && s.rt.phase.active() {
                assert_eq!(s.rt.phase, Phase::Stopping, "unit {i} not stopped");
            }
        }
        assert_eq!(self.held, self.units.iter().filter(|s| active(s)).count());
    }
}
