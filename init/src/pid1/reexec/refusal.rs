//! Why a re-exec is refused before anything is written: a state the
//! new PID 1 could not carry on from (a start or a stop under way, units
//! it would adopt without a file), a board about to reset, or memory
//! PID 1 may not have.

use super::state_format;
use crate::pid1::{why, Pid1, Why};

/// The name first, and whole in `Why` with the longest name (`initctl
/// reload` says what is wrong with the file).
pub(super) fn unadoptable_why(name: &str, format: u32) -> Why {
    why(format_args!(
        "{name}: unit file invalid or gone; format {format} adopts units from files"
    ))
}

impl Pid1 {
    /// A build of another state `format` cannot read the state: it adopts
    /// the running units from their files. One whose file is invalid or
    /// gone now (running on its last good definition, or removed without
    /// a reload) would be left to run unsupervised, its output pipe cut
    /// (the next write kills it): refused, the unit named.
    pub(super) fn unadoptable(&self, format: u32) -> Option<Why> {
        if format == state_format() {
            return None;
        }
        // Booted with `wren.rescue`, a build of an older format loads no
        // unit file but keeps the rescue shell, whatever ran since the
        // operator's reload (newer ones adopt what runs: `adopt`).
        let rescue = crate::pid1::boot::rescue_unit();
        let other = (self.sup.slots()).find(|s| s.rt.pid != 0 && s.def != rescue);
        if let Some(s) = other.filter(|_| self.sup.rescue() && format < state_format()) {
            let name = s.def.name.as_str();
            return Some(why(format_args!(
                "{name}: booted with wren.rescue, format {format} adopts only the rescue shell"
            )));
        }
        let mut defs = Vec::new();
        let dir = std::path::Path::new(self.units_dir_path());
        crate::config::load_dir(dir, &mut defs, &mut |_| {});
        let name = self
            .sup
            .slots()
            // The rescue shell has no file: the new PID 1 starts its own
            // when the directory has no valid unit.
            .filter(|s| s.rt.pid != 0 && s.def != crate::pid1::boot::rescue_unit())
            .map(|s| s.def.name.as_str())
            .find(|n| !defs.iter().any(|d| d.name.as_str() == *n))?;
        Some(unadoptable_why(name, format))
    }

    /// Why a re-exec cannot be made now, if it cannot. Once the watchdog
    /// is fed no more (a critical unit failed), the board resets: a new
    /// PID 1 would feed it again (one of another state format, adopting
    /// the units, does not even know of the failure; and a critical unit
    /// started again by hand meanwhile does not make the old one feed).
    /// Nor one PID 1 may not have the memory for (`short_for_rebuild`):
    /// the state's text and definitions are allocated as they go, and a
    /// build of another format has the unit files loaded first.
    pub(in crate::pid1) fn refusal(&self) -> Option<Why> {
        let feeding = self.watchdog_next.is_some() && self.critical_failed().is_none();
        if self.sup.shutting_down().is_some() {
            Some(why(format_args!("shutting down")))
        } else if let Some((name, what)) = self.in_between() {
            Some(why(format_args!("{name} is {what}; try again")))
        } else if self.watchdog.is_some() && !feeding {
            Some(why(format_args!(
                "a critical unit failed: the watchdog is no longer fed, and the board resets"
            )))
        } else if let Err(e) = self.warm_units(crate::pid1::reload::WARM) {
            // Read in a child first, as a reload reads it: PID 1 counts
            // the files next, and a build of another format has them
            // parsed (`unadoptable`), both from the caches then.
            Some(why(format_args!(
                "{} cannot be read now ({})",
                self.units_dir_path(),
                crate::pid1::gate::DiskError(e)
            )))
        } else {
            self.short_for_rebuild(self.unit_files()).map(|want| {
                why(format_args!(
                    "PID 1 is short of memory ({} KiB not to be had)",
                    want.div_ceil(1024)
                ))
            })
        }
    }

    /// A unit in a state the re-exec state does not carry: a child
    /// cloned and not yet exec'd (the new PID 1 would not know its pid,
    /// and the unit would stay starting for ever), or processes of a stop
    /// or kill still draining from its cgroup (their kill after
    /// `stop_timeout` would be lost). Both last milliseconds to a
    /// `stop_timeout`: the re-exec is refused until they are over. So is
    /// a removed unit's cgroup still tried (`orphans`, at most
    /// `ORPHAN_GRACE_MS`): not in the state, it stayed for good.
    pub(in crate::pid1) fn in_between(&self) -> Option<(&str, &'static str)> {
        let unit = self.edges.iter().enumerate().find_map(|(i, e)| {
            let what = match () {
                _ if e.exec.is_some() => "starting (between its clone and its exec)",
                _ if e.drain.active() => "stopping (processes left in its cgroup)",
                _ => return None,
            };
            let name = self.sup.slot(i as u16)?.def.name.as_str();
            Some((name, what))
        });
        // Only one still tried: past its grace it is left in place (said
        // at the next wake-up), which an idle device may not have had.
        let t = crate::pid1::now();
        let removed = || {
            let tried = |(_, since): &&(crate::unit::Name, crate::vocab::Millis)| {
                t.saturating_sub(*since) < crate::pid1::event_loop::ORPHAN_GRACE_MS
            };
            let (name, _) = self.orphans.iter().find(tried)?;
            Some((name.as_str(), "removed (its cgroup not empty yet)"))
        };
        unit.or_else(removed)
    }
}
