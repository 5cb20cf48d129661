//! Linking: every unit's `after` names resolved to table indices, after
//! the table changed (boot, reload, re-exec, a put-back).

use super::*;

/// The units `index` finds, sorted by name: for looking many names up at
/// once (boot, reload, re-exec, where PID 1 may allocate), each a binary
/// search instead of a scan of the table (a reload of 1,000 units made
/// half a million name comparisons). Indices stay valid while units are
/// added (a new unit is not in it) or changed in place; not across a
/// removal.
pub struct ByName(std::vec::Vec<u16>);

impl Supervisor {
    /// `ByName` of the table as it is now. Among equal names (none, but
    /// for a bug) the lowest index first, as `index` finds.
    pub fn by_name(&self) -> ByName {
        let mut v: std::vec::Vec<u16> = self.indexed().map(|(u, _)| u).collect();
        crate::sort::sort_by(&mut v, |a, b| self.name_of(*a) < self.name_of(*b));
        ByName(v)
    }

    /// `index(name)` through `by`, made from this table.
    pub fn index_by(&self, by: &ByName, name: &str) -> Option<u16> {
        crate::sort::find_first(&by.0, |u| self.name_of(*u), Some(name)).filter(|&u| {
            // A list kept past a removal would give a leaving unit.
            self.units
                .get(usize::from(u))
                .is_some_and(|s| s.retired == Retired::No)
        })
    }

    fn name_of(&self, u: u16) -> Option<&str> {
        self.units.get(usize::from(u)).map(|s| s.def.name.as_str())
    }

    /// Resolve every unit's `after` names to table indices. A name that is
    /// not in the table (the loader refuses those, so this is a bug guard)
    /// fails that unit rather than starting it out of order. Runs at boot,
    /// reload and re-exec, where PID 1 may allocate: the names are looked
    /// up in a sorted list of the table, not each in the whole table
    /// (1,000 units with two `after` each: 2,000 binary searches instead
    /// of a million name comparisons).
    pub fn link(&mut self) -> Result<(), (u16, AddError)> {
        // A unit without `after` has no dependencies: no lookup, and no
        // list when no unit has any (the benchmarks' 1,000 units).
        let mut named = 0usize;
        for s in self.units.iter_mut().filter(|s| s.retired != Retired::Free) {
            if s.def.after.is_empty() {
                if !s.rt.deps.is_empty() {
                    s.rt.deps = Few::new();
                }
            } else {
                named += 1;
            }
        }
        if named == 0 {
            return Ok(());
        }
        let by_name = self.by_name();
        let find = |n: &str| self.index_by(&by_name, n);
        let mut resolved: std::vec::Vec<(usize, Vec<u16, AFTER_MAX>)> =
            std::vec::Vec::with_capacity(named);
        for (i, s) in self.units.iter().enumerate() {
            if s.def.after.is_empty() {
                continue;
            }
            if let Some(deps) = self.resolve(i, &find) {
                resolved.push((i, deps));
            }
        }
        let mut first_err = Ok(());
        for (i, deps) in resolved {
            if self.set_deps(i, &deps) && first_err.is_ok() {
                first_err = Err((i as u16, AddError::UnknownDep));
            }
        }
        first_err
    }

    /// `link` for unit `u` alone, after its definition changed in place
    /// (a put-back): no other unit's dependencies change, since its index
    /// and name are the same.
    pub(super) fn link_one(&mut self, u: u16) {
        let i = usize::from(u);
        if let Some(deps) = self.resolve(i, &|n| self.index(n)) {
            self.set_deps(i, &deps);
        }
    }

    /// Unit `i`'s `after` names as indices, `MISSING` for one not in the
    /// table; None for a free slot.
    fn resolve(&self, i: usize, find: &dyn Fn(&str) -> Option<u16>) -> Option<Vec<u16, AFTER_MAX>> {
        let s = self.units.get(i).filter(|s| s.retired != Retired::Free)?;
        let mut deps: Vec<u16, AFTER_MAX> = Vec::new();
        for name in s.def.after.iter() {
            let _ = deps.push(find(name).unwrap_or(MISSING));
        }
        Some(deps)
    }

    /// Give unit `i` its resolved dependencies; true when one is missing.
    fn set_deps(&mut self, i: usize, deps: &[u16]) -> bool {
        let Some(s) = self.units.get_mut(i) else {
            return false;
        };
        // Allocated only where they changed (boot, reload, put-back).
        if s.rt.deps.as_slice() != deps {
            s.rt.deps = Few::from_slice(deps);
        }
        deps.contains(&MISSING)
    }
}

/// In a unit's `deps`, an `after` name not in the table (a reload removed
/// that unit; the loader refuses such a file, so it is one kept on its
/// last good definition): not started out of order, the unit fails
/// (`DepMissing`) whenever it is due to start (`settle`), and a running
/// one keeps running until then. No index: `MAX_UNITS` is far below.
pub(super) const MISSING: u16 = u16::MAX;

/// Why a unit's last good definition cannot be put back (`put_back_problem`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PutBack {
    /// One of its `after` names is not loaded any more.
    Unknown(crate::unit::Name),
    /// Its `after` order would close a cycle through this unit.
    Cycle(u16),
}

impl Supervisor {
    /// Whether `good` may replace unit `unit`'s definition now: its
    /// `after` names must all be loaded, and no unit it would start after
    /// may itself (through the definitions loaded now) start after this
    /// one. The loader checks a directory's set of files, not a mix of
    /// new definitions and a put-back old one: without this, a put-back
    /// could deadlock two units for good (and write the cycle back to
    /// their files). Allocates (a verdict, a configuration change).
    pub fn put_back_problem(&self, unit: u16, good: &UnitDef) -> Option<PutBack> {
        // (a unit to look at, the dependency of `good` it was reached from)
        let mut todo: std::vec::Vec<(u16, u16)> = std::vec::Vec::new();
        for name in good.after.iter() {
            match self.index(name) {
                Some(d) => todo.push((d, d)),
                None => {
                    return Some(PutBack::Unknown(
                        crate::unit::Name::try_from(name).unwrap_or_default(),
                    ))
                }
            }
        }
        let mut seen = std::vec![false; self.units.len()];
        while let Some((d, via)) = todo.pop() {
            if d == unit {
                return Some(PutBack::Cycle(via));
            }
            let Some(first) = seen.get_mut(usize::from(d)).filter(|s| !**s) else {
                continue;
            };
            *first = true;
            if let Some(s) = self.units.get(usize::from(d)) {
                todo.extend(s.rt.deps.iter().map(|&n| (n, via)));
            }
        }
        None
    }
}
