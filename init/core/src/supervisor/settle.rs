//! Settling: after each event, start the waiting units whose
//! dependencies are ready and give up on those whose dependency failed.

use super::*;

#[cfg(test)]
std::thread_local! {
    /// Passes `settle` made over its waiting units: the tests' check that
    /// a settle stays linear in the units (a pass more per unit changes
    /// no outcome, only PID 1's time at N = 1,000).
    pub(super) static PASSES: core::cell::Cell<usize> = const { core::cell::Cell::new(0) };
}

impl Supervisor {
    /// Bring every unit towards what is wanted: start those whose
    /// dependencies are ready, give up on those whose dependency failed,
    /// and during shutdown stop those nothing active depends on.
    pub(super) fn settle(&mut self, now: Millis, out: &mut Actions) {
        if self.leaving {
            let mut still = false;
            for s in self.units.iter_mut() {
                if s.retired == Retired::Leaving {
                    if s.rt.phase.active() {
                        still = true;
                    } else {
                        s.retired = Retired::Free;
                        // A shutdown's counts let go of them next
                        // (`settle_shutdown`); no unit takes the slot
                        // before its end.
                        if self.shutdown.is_none() {
                            s.rt.deps = crate::unit::Few::new();
                        }
                        self.freed = true;
                    }
                }
            }
            self.leaving = still;
        } else {
            #[cfg(test)]
            assert!(
                !self.units.iter().any(|s| s.retired == Retired::Leaving),
                "a unit leaving without `leaving`"
            );
        }
        if self.shutdown.is_some() {
            self.settle_shutdown(now, out);
            return;
        }
        #[cfg(test)]
        assert!(
            !self.units.iter().enumerate().any(|(i, s)| {
                s.rt.phase == Phase::Waiting && s.rt.want && !self.waiting.contains(&i)
            }),
            "a unit waiting outside `waiting` {:?}",
            self.waiting
        );
        let range = self.waiting.start..self.waiting.end.min(self.units.len());
        if range.is_empty() {
            self.waiting = 0..0;
            return;
        }
        // A start can make another unit's dependency ready only through a
        // later event (Spawned/Ready/Exited), so one pass suffices except
        // for failure cascades, which a second pass per level resolves.
        let mut changed = true;
        let mut rounds = 0;
        // Units the last pass left waiting (their dependencies pending).
        let mut left = 0..0;
        while changed && rounds <= self.units.len() {
            changed = false;
            left = 0..0;
            rounds += 1;
            #[cfg(test)]
            PASSES.with(|p| p.set(p.get() + 1));
            for i in range.clone() {
                let Some(s) = self.units.get(i) else { break };
                if s.rt.phase != Phase::Waiting || !s.rt.want {
                    continue;
                }
                match self.deps_status(i) {
                    Deps::Ready => {
                        if let Some(s) = self.units.get_mut(i) {
                            s.rt.phase = Phase::Starting;
                            s.rt.pid = 0;
                            s.rt.ready_early = false;
                        }
                        out.push(Action::Spawn(i as u16));
                    }
                    Deps::Failed(dep) => {
                        if let Some(s) = self.units.get_mut(i) {
                            s.rt.want = false;
                            let n = if dep == super::link::MISSING {
                                // Nor judged: no revert brings the unit
                                // back, so a verdict would wait for ever.
                                s.rt.phase = Phase::Failed;
                                s.rt.probation = false;
                                Note::DepMissing
                            } else {
                                // Still on probation, but not waited for
                                // while it waits for its dependency
                                // (`on_probation`): judged if a revert
                                // brings it back.
                                s.rt.phase = Phase::Stopped;
                                Note::DepFailed { dep }
                            };
                            note(s, i as u16, n, out);
                        }
                        changed = true;
                    }
                    Deps::Pending => left = cover(&left, i),
                }
            }
        }
        // A pass cut short by the bound may have left more: look again.
        self.waiting = if changed { range } else { left };
        let _ = now;
    }

    fn deps_status(&self, i: usize) -> Deps {
        let Some(s) = self.units.get(i) else {
            return Deps::Pending;
        };
        let mut ready = true;
        for &d in s.rt.deps.iter() {
            let Some(dep) = self.units.get(usize::from(d)) else {
                return Deps::Failed(d);
            };
            match dep.rt.phase {
                p if p.lets_dependents_start() => {}
                Phase::Failed => return Deps::Failed(d),
                // A dependency that gave up (e.g. its own dependency
                // failed), was stopped by hand, or ended by itself with no
                // restart to come (a service's exit 0 under `restart =
                // on-failure`, before it was ever ready): it will not be
                // ready without an operator, so waiting would be for ever.
                Phase::Stopped => return Deps::Failed(d),
                _ => ready = false,
            }
        }
        if ready {
            Deps::Ready
        } else {
            Deps::Pending
        }
    }
}

enum Deps {
    Ready,
    Pending,
    Failed(u16),
}
