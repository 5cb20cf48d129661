//! Reload: a re-read unit directory applied to the running table.

use super::*;

/// What a reload did, by unit count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReloadSummary {
    pub added: u8,
    pub changed: u8,
    pub removed: u8,
    pub unchanged: u8,
    /// Kept on their last good definition because their file is invalid.
    pub kept: u8,
    /// New units that did not fit the table.
    pub no_room: u8,
    /// Bit i set: slot i now holds a new unit (its edge state is stale).
    pub new_slots: u64,
}

impl Supervisor {
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
        let mut seen = 0u64;
        for def in defs {
            match self.index(&def.name) {
                Some(i) => {
                    seen |= 1 << i;
                    let Some(s) = self.units.get_mut(usize::from(i)) else {
                        continue;
                    };
                    if s.def == def {
                        sum.unchanged = sum.unchanged.saturating_add(1);
                        continue;
                    }
                    sum.changed = sum.changed.saturating_add(1);
                    s.def = def;
                    s.rt.want = true;
                    s.rt.probation = true;
                    s.rt.streak = 0;
                    s.rt.failures.clear();
                    match s.rt.phase {
                        Phase::Starting | Phase::Running | Phase::Stopping => {
                            s.rt.restart_pending = true;
                            self.stop_unit(now, i, out);
                        }
                        Phase::Exited | Phase::Stopped | Phase::Failed | Phase::Backoff => {
                            if s.rt.phase == Phase::Exited {
                                let _ = out.push(Action::KillCgroup(i));
                            }
                            s.rt.phase = Phase::Waiting;
                            s.rt.deadline = None;
                        }
                        Phase::Waiting => {}
                    }
                }
                None => match self.add(def) {
                    Ok(i) => {
                        seen |= 1 << i;
                        if let Some(s) = self.units.get_mut(usize::from(i)) {
                            s.rt.probation = true;
                        }
                        sum.added = sum.added.saturating_add(1);
                        sum.new_slots |= 1 << i;
                    }
                    Err(_) => sum.no_room = sum.no_room.saturating_add(1),
                },
            }
        }
        for i in 0..self.units.len() {
            let Some(s) = self.units.get(i) else { break };
            if s.retired != Retired::No || seen & (1 << i) != 0 {
                continue;
            }
            if invalid(&s.def.name) {
                sum.kept = sum.kept.saturating_add(1);
                continue;
            }
            sum.removed = sum.removed.saturating_add(1);
            if let Some(s) = self.units.get_mut(i) {
                s.retired = Retired::Leaving;
                s.rt.want = false;
                s.rt.probation = false;
                s.rt.restart_pending = false;
            }
            self.stop_unit(now, i as u8, out);
        }
        // A failed link leaves that unit failed; the loader has already
        // reported why.
        let _ = self.link();
        self.settle(now, out);
        sum
    }
}
