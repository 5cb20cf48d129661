//! What the edges read of the table: units by name, index and pid, the
//! next timer, the memory protection their parent cgroup must hold.

use super::*;

impl Supervisor {
    pub fn index(&self, name: &str) -> Option<u16> {
        self.units
            .iter()
            .position(|s| s.retired == Retired::No && s.def.name.as_str() == name)
            .map(|i| i as u16)
    }

    /// The slot of a unit named `name` that a reload removed: one still
    /// stopping first, else one gone (its slot not reused yet).
    pub fn removed_index(&self, name: &str) -> Option<u16> {
        self.retired_index(name, Retired::Leaving)
            .or_else(|| self.retired_index(name, Retired::Free))
    }

    pub fn retired_index(&self, name: &str, r: Retired) -> Option<u16> {
        let i = self
            .units
            .iter()
            .position(|s| s.retired == r && s.def.name == name)?;
        u16::try_from(i).ok()
    }

    pub fn slot(&self, unit: u16) -> Option<&Slot> {
        self.units.get(usize::from(unit))
    }

    /// Every unit that is (still) in the table. Not numbered: a reload
    /// frees slots, so a unit's place in this sequence is not its index
    /// (`indexed`).
    pub fn slots(&self) -> impl Iterator<Item = &Slot> {
        self.units.iter().filter(|s| s.retired != Retired::Free)
    }

    /// Every unit in the table under its name (not one a reload removed:
    /// leaving or gone), with its index: the units `index` finds.
    pub fn indexed(&self) -> impl Iterator<Item = (u16, &Slot)> {
        self.units
            .iter()
            .zip(0..=u16::MAX)
            .filter(|(s, _)| s.retired == Retired::No)
            .map(|(s, u)| (u, s))
    }

    pub fn shutting_down(&self) -> Option<ShutdownKind> {
        self.shutdown
    }

    pub fn unit_of_pid(&self, pid: u32) -> Option<u16> {
        if pid == 0 {
            return None;
        }
        self.units
            .iter()
            .position(|s| s.rt.pid == pid)
            .map(|i| i as u16)
    }

    /// Sum of the units' `memory.low` and `memory.min` (`max` if any asks
    /// for it): what their parent cgroup must hold for them to get it.
    pub fn protection(&self) -> (crate::unit::Limit, crate::unit::Limit) {
        use crate::unit::Limit;
        let sum = |f: fn(&UnitDef) -> Option<Limit>| {
            self.slots()
                .filter(|s| s.retired == Retired::No)
                .filter_map(|s| f(&s.def))
                .try_fold(0u64, |acc, l| match l {
                    Limit::Max => None,
                    Limit::Value(v) => Some(acc.saturating_add(v)),
                })
                .map_or(Limit::Max, Limit::Value)
        };
        (
            sum(|d| d.limits.get().memory_low),
            sum(|d| d.limits.get().memory_min),
        )
    }

    /// Some unit still waits for its verdict.
    pub fn on_probation(&self) -> bool {
        self.slots()
            .any(|s| s.rt.probation && !s.judged_when_started())
    }

    /// The earliest timer any unit waits for.
    pub fn next_deadline(&self) -> Option<Millis> {
        if !self.timed.get() {
            #[cfg(test)]
            assert_eq!(self.earliest(), None, "a timer set without `timed`");
            return None;
        }
        let d = self.earliest();
        self.timed.set(d.is_some());
        d
    }

    fn earliest(&self) -> Option<Millis> {
        self.units
            .iter()
            .flat_map(|s| [s.rt.deadline, s.rt.watchdog_at])
            .flatten()
            .min()
            .map(Due::get)
    }
}
