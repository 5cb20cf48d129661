//! Reload: a re-read unit directory applied to the running table.

use super::*;

/// What a reload did, by unit count.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReloadSummary {
    pub added: u16,
    pub changed: u16,
    pub removed: u16,
    pub unchanged: u16,
    /// Kept on their last good definition because their file is invalid.
    pub kept: u16,
    /// New units that did not fit the table.
    pub no_room: u16,
    /// Slots that now hold a new unit (their edge state is stale).
    pub new_slots: std::vec::Vec<u16>,
}

impl Supervisor {
    /// Leaving unit `i` given back by this reload: the same unit, kept in
    /// its slot (its cgroup is its name's: a second slot would share it,
    /// and the old run's kill hit the new one), started on `def` once
    /// stopped, on probation as a new unit.
    fn revive(&mut self, i: u16, def: UnitDef) {
        let Some(s) = self.units.get_mut(usize::from(i)) else {
            return;
        };
        s.retired = Retired::No;
        s.rt.failures = Failures::for_limit(def.seldom.start_limit);
        s.set_def(def);
        s.rt.want = true;
        s.rt.probation = true;
        s.rt.streak = 0;
        s.rt.restart_pending = true;
    }

    /// Apply a re-read unit directory: new units start, removed units stop
    /// (and leave the table once stopped), changed units restart on their
    /// new definition, unchanged units are not touched. A unit whose file
    /// is now invalid (`invalid(name)`) keeps its last good definition.
    pub fn reload(
        &mut self,
        now: Millis,
        defs: &mut dyn Iterator<Item = UnitDef>,
        invalid: &dyn Fn(&str) -> bool,
        out: &mut Actions,
    ) -> ReloadSummary {
        let mut sum = ReloadSummary::default();
        if self.shutdown.is_some() {
            return sum;
        }
        // Units removed by an earlier reload still stopping (before this
        // reload's removals): only then is a new name looked for among
        // them (`revive`), not at each new unit of every reload.
        let were_leaving = self.leaving;
        // New, changed and removed units: every pass looks once.
        self.wake_all();
        self.leaving = true;
        // A reload may allocate: one flag per slot, the table as it grows.
        let mut seen: std::vec::Vec<bool> = std::vec::Vec::new();
        // Looked up in the table as it was: a unit `add`ed below is not
        // looked for again (the loader gives each name once).
        let by_name = self.by_name();
        for def in defs {
            match self.index_by(&by_name, &def.name) {
                Some(i) => {
                    mark(&mut seen, i);
                    let Some(s) = self.units.get_mut(usize::from(i)) else {
                        continue;
                    };
                    // Equal but for line numbers (a comment added): the
                    // running one stays, with its own; nothing reads them.
                    if s.def == def {
                        sum.unchanged = sum.unchanged.saturating_add(1);
                        continue;
                    }
                    sum.changed = sum.changed.saturating_add(1);
                    s.rt.failures = Failures::for_limit(def.seldom.start_limit);
                    s.set_def(def);
                    s.rt.want = true;
                    s.rt.probation = true;
                    s.rt.streak = 0;
                    match s.rt.phase {
                        Phase::Starting | Phase::Running | Phase::Stopping => {
                            s.rt.restart_pending = true;
                            self.stop_unit(now, i, out);
                        }
                        Phase::Exited | Phase::Stopped | Phase::Failed | Phase::Backoff => {
                            if s.rt.phase == Phase::Exited {
                                out.push(Action::KillCgroup(i));
                            }
                            s.rt.phase = Phase::Waiting;
                            s.rt.deadline = None;
                        }
                        Phase::Waiting => {}
                    }
                }
                None => {
                    let back = match were_leaving {
                        true => self.retired_index(&def.name, Retired::Leaving),
                        false => None,
                    };
                    match back {
                        Some(i) => {
                            self.revive(i, def);
                            mark(&mut seen, i);
                            sum.added = sum.added.saturating_add(1);
                        }
                        None => match self.add(def) {
                            Ok(i) => {
                                mark(&mut seen, i);
                                if let Some(s) = self.units.get_mut(usize::from(i)) {
                                    s.rt.probation = true;
                                }
                                sum.added = sum.added.saturating_add(1);
                                sum.new_slots.push(i);
                            }
                            Err(_) => sum.no_room = sum.no_room.saturating_add(1),
                        },
                    }
                }
            }
        }
        for i in 0..self.units.len() {
            let Some(s) = self.units.get(i) else { break };
            if s.retired != Retired::No || seen.get(i).copied().unwrap_or(false) {
                continue;
            }
            if invalid(&s.def.name) {
                sum.kept = sum.kept.saturating_add(1);
                continue;
            }
            sum.removed = sum.removed.saturating_add(1);
            if let Some(s) = self.units.get_mut(i) {
                s.retired = Retired::Leaving;
                // A removed unit holds nothing up (its `after` goes when
                // its slot is freed), leftovers or not (`note_draining`).
                s.rt.draining = false;
                s.rt.want = false;
                s.rt.probation = false;
                s.rt.restart_pending = false;
            }
            self.stop_unit(now, i as u16, out);
        }
        // A failed link leaves that unit failed; the loader has already
        // reported why.
        let _ = self.link();
        self.settle(now, out);
        sum
    }
}

/// Slot `i` is in the re-read directory.
fn mark(seen: &mut std::vec::Vec<bool>, i: u16) {
    let i = usize::from(i);
    if seen.len() <= i {
        seen.resize(i + 1, false);
    }
    if let Some(f) = seen.get_mut(i) {
        *f = true;
    }
}
