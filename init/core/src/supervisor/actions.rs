//! The buffer a step's actions go into: sized with the unit table, never
//! grown by a step.

use super::Action;

/// Actions one step can emit for a table of `units` units: four per unit
/// at most (a tick's good verdict, then its watchdog's kill, line and
/// restart), plus the finish. The core's random walks check the bound.
pub const fn max_actions(units: usize) -> usize {
    4 * units + 4
}

/// The actions of one step, in a buffer sized when the table is (boot,
/// reload: `for_units`) and never grown: a push past its capacity is
/// refused, as a full `heapless::Vec` refuses it, so a step allocates
/// nothing. A refusal is counted (`refused`), for PID 1 to report: a
/// lost action is a unit that never starts or is never stopped, so the
/// bound must hold, and the core's random walks check that it does.
#[derive(Debug, Default)]
pub struct Actions {
    v: std::vec::Vec<Action>,
    refused: u32,
}

impl Actions {
    /// Room for a table of `MAX_UNITS`'s old size (64 units): tests and
    /// short-lived callers.
    pub fn new() -> Self {
        Self::for_units(64)
    }

    /// Room for every action a step over `units` units can emit.
    pub fn for_units(units: usize) -> Self {
        Actions {
            v: std::vec::Vec::with_capacity(max_actions(units)),
            refused: 0,
        }
    }

    /// Grow to fit `units` units (boot and reload only, where PID 1 may
    /// allocate).
    pub fn fit(&mut self, units: usize) {
        let want = max_actions(units);
        self.v.reserve_exact(want.saturating_sub(self.v.len()));
    }

    /// `a` at the end, or counted as refused when the buffer is full.
    pub fn push(&mut self, a: Action) {
        if self.v.len() < self.v.capacity() {
            self.v.push(a);
        } else {
            self.refused = self.refused.saturating_add(1);
        }
    }

    /// Empty, the refusals forgotten.
    pub fn clear(&mut self) {
        self.v.clear();
        self.refused = 0;
    }

    /// Pushes refused since the last `clear` (0 unless the bound of
    /// `max_actions` is wrong).
    pub fn refused(&self) -> u32 {
        self.refused
    }

    pub fn capacity(&self) -> usize {
        self.v.capacity()
    }

    pub fn as_slice(&self) -> &[Action] {
        &self.v
    }
}

impl core::ops::Deref for Actions {
    type Target = [Action];
    fn deref(&self) -> &[Action] {
        &self.v
    }
}

impl<'a> IntoIterator for &'a Actions {
    type Item = &'a Action;
    type IntoIter = core::slice::Iter<'a, Action>;
    fn into_iter(self) -> Self::IntoIter {
        self.v.iter()
    }
}
