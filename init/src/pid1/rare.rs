//! What few units ever have, boxed together on a unit's edge: a failed
//! start's reason, a reload's put-back and rejection, a pressure stop.
//! Boxed when the first of them comes, fallibly where the loop does it.

use super::{Edge, Why};
use crate::unit::UnitDef;

/// What few units ever have, boxed together: 8 bytes a unit instead of
/// 32 for the three.
#[derive(Default)]
pub(super) struct Rare {
    /// Why the last start failed, for `initctl status NAME`; empty while
    /// none did.
    pub(super) last_error: Why,
    /// While on probation after a reload: the definition to put back.
    pub(super) last_good: Option<Box<UnitDef>>,
    /// Why the last reload's definition was rejected, for `status NAME`.
    pub(super) rejected: Option<Box<str>>,
    /// A put-back the disk did not take (it did not answer): the good
    /// definition, the rejected one its file still holds, and why; made
    /// at the next reload that finds the disk answering (`gate::owed`).
    pub(super) owed: Option<Box<(UnitDef, UnitDef, Why)>>,
    /// Stopped by its own memory pressure trigger (`pressure_action =
    /// stop`), which `initctl status NAME` gives as the reason until it
    /// is spawned again or the operator acts on it. Not handed over: after
    /// a re-exec the reason is gone.
    pub(super) pressure_stopped: bool,
}

impl Edge {
    /// Stopped by its own pressure trigger (`Rare::pressure_stopped`).
    pub(super) fn pressure_stopped(&self) -> bool {
        self.rare.as_ref().is_some_and(|r| r.pressure_stopped)
    }

    /// Say (or no longer say) that its own pressure trigger stopped it;
    /// the box is made only to say so, once per unit (true then: growth
    /// with what is used). Refused (memory is short: a pressure stop's
    /// time), it is not said.
    pub(super) fn set_pressure_stopped(&mut self, stopped: bool) -> bool {
        match self.rare.as_mut() {
            Some(r) => r.pressure_stopped = stopped,
            None if stopped => {
                self.rare = crate::sys::alloc::try_box(Rare {
                    pressure_stopped: true,
                    ..Rare::default()
                });
                return true;
            }
            None => {}
        }
        false
    }

    /// Why the last start failed ("" if none did).
    pub(super) fn last_error(&self) -> &str {
        self.rare.as_deref().map_or("", |r| r.last_error.as_str())
    }

    /// Keep `why` as the last error; true when that allocated its buffer
    /// (the unit's first failure with a reason). Refused (the start may
    /// have failed for want of memory), the reason is not kept.
    pub(super) fn set_last_error(&mut self, why: Why) -> bool {
        match self.rare.as_deref_mut() {
            Some(held) => {
                held.last_error = why;
                false
            }
            None if why.is_empty() => false,
            None => {
                self.rare = crate::sys::alloc::try_box(Rare {
                    last_error: why,
                    ..Rare::default()
                });
                true
            }
        }
    }

    /// The rare part, allocated if it was not (boot, reload, re-exec and
    /// a reload's verdict only: not a unit's every start).
    pub(super) fn rare(&mut self) -> &mut Rare {
        self.rare.get_or_insert_with(Box::default)
    }

    /// The definition to put back, taken.
    pub(super) fn take_last_good(&mut self) -> Option<Box<UnitDef>> {
        self.rare.as_mut().and_then(|r| r.last_good.take())
    }

    pub(super) fn last_good(&self) -> Option<&UnitDef> {
        self.rare.as_ref().and_then(|r| r.last_good.as_deref())
    }

    pub(super) fn rejected(&self) -> Option<&str> {
        self.rare.as_ref().and_then(|r| r.rejected.as_deref())
    }

    /// Forget the put-back and the rejection (a verdict of good; a new
    /// reload's definition), without allocating. A box left holding
    /// nothing goes: a unit a reload changed, judged good and never failed
    /// keeps no memory for it (its first failure allocates, once).
    pub(super) fn clear_gate(&mut self, last_good: bool) {
        if let Some(r) = self.rare.as_mut() {
            if last_good {
                r.last_good = None;
            }
            r.rejected = None;
        }
        self.drop_if_empty();
    }

    /// The definition to put back dropped: the supervisor ended the
    /// unit's probation without a verdict (a stop by hand, an `after`
    /// unit removed, a shutdown), so none will be put back.
    pub(super) fn drop_last_good(&mut self) {
        if self.take_last_good().is_some() {
            self.drop_if_empty();
        }
    }

    pub(super) fn drop_if_empty(&mut self) {
        let empty = self.rare.as_deref().is_some_and(|r| {
            r.last_error.is_empty()
                && r.last_good.is_none()
                && r.rejected.is_none()
                && r.owed.is_none()
                && !r.pressure_stopped
        });
        if empty {
            self.rare = None;
        }
    }
}
