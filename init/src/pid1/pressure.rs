//! Memory pressure, decided in PID 1's loop with no polling: the kernel's
//! PSI triggers wake it (EPOLLPRI) only when a stall passes a limit.
//!
//! - Per unit (`pressure_limit`, `pressure_action`): a trigger on the
//!   unit's `memory.pressure`; when it fires the unit's action runs: a
//!   console line and a count (`log`), a restart, or a stop.
//! - The whole system (`wren.shed=P%/T`): a trigger on
//!   `/proc/pressure/memory`; each time it fires, the running unit with the
//!   lowest `shed_order` is stopped (units without one, and `critical`
//!   units, are never shed),
//!   before the kernel's OOM killer picks a victim of its own choosing.
//!   Once no trigger has fired for `calm` (ten windows, 10 s to 60 s), the
//!   shed units start again one at a time, the highest `shed_order` first,
//!   one more after each further calm period. A unit shed again within a
//!   calm period of its start again (its own start brought the pressure
//!   back) doubles the calm, up to 16 times: a device that cannot hold it
//!   does not cycle it every 10 s for ever.

use super::event_loop::{TOKEN_PRESSURE, TOKEN_SHED};
use super::{now, Pid1};
use crate::cgroup::psi;
use crate::kmsg;
use crate::supervisor::{Event, Phase};
use crate::sys::errno::Os;
use crate::unit::{PressureAction, PressureLimit};
use crate::vocab::Millis;
use rustix::event::epoll;
use rustix::fd::{AsFd, OwnedFd};

/// The system-wide watch and what it has shed.
pub(super) struct Shed {
    pub(super) limit: PressureLimit,
    pub(super) trigger: Option<OwnedFd>,
    /// When the next shed unit may start again (None: nothing to restore,
    /// or pressure has not calmed yet).
    pub(super) calm_at: Option<Millis>,
    /// "Nothing left to shed" was said since pressure last calmed: not
    /// again at every window of a long pressure.
    said_none: bool,
    /// The unit the calm last started again, and when: by name, as a
    /// reload may give its slot to another unit.
    back: Option<(crate::unit::Name, Millis)>,
    /// Sheds in a row of the unit just started again: the calm is
    /// doubled for each.
    strikes: u8,
}

/// 16 times the calm at most (160 s to 16 min).
const STRIKES_MAX: u8 = 4;

impl Shed {
    pub(super) fn calm(&self) -> Millis {
        Millis::from(self.limit.window)
            .saturating_mul(10)
            .clamp(10_000, 60_000)
            << self.strikes.min(STRIKES_MAX)
    }

    /// `victim` is shed at `t`: a strike if the calm started it again
    /// less than a calm ago, else the count starts over.
    fn strike(&mut self, victim: &str, t: Millis) -> bool {
        let again = self
            .back
            .take()
            .is_some_and(|(u, at)| u.as_str() == victim && t.saturating_sub(at) < self.calm());
        self.strikes = if again {
            self.strikes.saturating_add(1).min(STRIKES_MAX)
        } else {
            0
        };
        again
    }
}

fn register(ep: &OwnedFd, fd: &OwnedFd, token: u64) -> bool {
    epoll::add(
        ep,
        fd,
        epoll::EventData::new_u64(token),
        epoll::EventFlags::PRI,
    )
    .is_ok()
}

impl Pid1 {
    /// After a spawn: the unit's trigger, kept across restarts while its
    /// cgroup and limit are the same.
    pub(super) fn watch_pressure(&mut self, u: u16) {
        let Some(slot) = self.sup.slot(u) else { return };
        let want = slot.def.seldom.pressure_limit;
        let name = slot.def.name.as_str();
        let (Some(ep), Some(edge)) = (self.epoll.as_ref(), self.edges.get_mut(usize::from(u)))
        else {
            return;
        };
        if edge.pressure.as_ref().map(|(_, l)| *l) == want {
            return;
        }
        edge.drop_pressure(Some(ep));
        let (Some(limit), Some(cg), Some(_)) = (want, self.cg.as_ref(), edge.cgroup) else {
            return;
        };
        let dir = match cg.unit_dir(name) {
            Ok(d) => d,
            Err(e) => {
                crate::warn!("{name}: pressure_limit not watched: {e}");
                return;
            }
        };
        // Kept while the unit runs: above the fds a start by trampoline
        // gives its child (`spawn::kept`), raised before epoll knows it.
        let trigger =
            psi::trigger(dir.as_fd(), psi::MEMORY_PRESSURE, limit).map(crate::spawn::kept);
        match trigger {
            Ok(fd) if register(ep, &fd, TOKEN_PRESSURE + u64::from(u)) => {
                edge.pressure = Some((fd, limit));
            }
            Ok(_) => crate::error!("{name}: pressure watch: epoll refused it"),
            // Said once per start: a kernel without PSI (or with it off,
            // `psi=0`) cannot watch. (memory.pressure is a core file of
            // every cgroup, memory controller or not.)
            Err(e) => crate::warn!(
                "{name}: pressure_limit not watched: memory.pressure: {}",
                Os::from(e)
            ),
        }
    }

    /// A unit's trigger fired (or failed: `err`).
    pub(super) fn on_pressure(&mut self, u: u16, err: bool) {
        let Some(slot) = self.sup.slot(u) else { return };
        let name = slot.def.name.as_str();
        let phase = slot.rt.phase;
        let action = slot.def.pressure_action;
        let Some(edge) = self.edges.get_mut(usize::from(u)) else {
            return;
        };
        let Some(limit) = edge.pressure.as_ref().map(|(_, l)| *l) else {
            return;
        };
        if err {
            // The cgroup went away under the trigger: drop it (the next
            // start makes a new one) rather than be woken for ever.
            edge.drop_pressure(self.epoll.as_ref());
            return;
        }
        if phase != Phase::Running {
            return;
        }
        edge.pressure_events = edge.pressure_events.saturating_add(1);
        let avg = self
            .cg
            .as_ref()
            .and_then(|c| c.memory_pressure(name))
            .unwrap_or(0);
        kmsg::console_line(format_args!(
            "[ WARN ] {name}: memory pressure over {}% in {}ms (avg10 {}.{:02}%): {}",
            limit.percent,
            limit.window,
            avg / 100,
            avg % 100,
            match action {
                PressureAction::Log => "logged",
                PressureAction::Restart => "restarting",
                PressureAction::Stop => "stopping",
            }
        ));
        kmsg::event(format_args!(
            "{name}: memory pressure over {}% in {}ms, pressure_action = {}",
            limit.percent,
            limit.window,
            action.as_str()
        ));
        match action {
            PressureAction::Log => {}
            PressureAction::Restart => self.feed(Event::Restart {
                unit: u,
                by_hand: false,
            }),
            PressureAction::Stop => {
                if edge.set_pressure_stopped(true) {
                    self.rings_allocated = self.rings_allocated.saturating_add(1);
                }
                self.feed(Event::Shed { unit: u });
            }
        }
    }

    /// `wren.shed=`: the system trigger, registered with the loop.
    pub(super) fn watch_system_pressure(&mut self, limit: PressureLimit) {
        let Some(ep) = self.epoll.as_ref() else {
            return;
        };
        let mut shed = Shed {
            limit,
            trigger: None,
            calm_at: None,
            said_none: false,
            back: None,
            strikes: 0,
        };
        // Units shed before a re-exec (their edges came back shed): the
        // calm that starts them again is counted from now, or the trigger
        // alone would set it, and a calm system never fires it.
        if self.edges.iter().any(|e| e.shed) {
            shed.calm_at = Some(now().saturating_add(shed.calm()));
        }
        match psi::trigger(rustix::fs::CWD, psi::SYSTEM_MEMORY_PRESSURE, limit) {
            Ok(fd) if register(ep, &fd, TOKEN_SHED) => {
                crate::info!(
                    "shedding units when memory stalls over {}% in {}ms",
                    limit.percent,
                    limit.window
                );
                shed.trigger = Some(fd);
            }
            Ok(_) => crate::error!("wren.shed: epoll refused the trigger"),
            Err(e) => crate::error!(
                "wren.shed: {}: {e} (needs a kernel with PSI: CONFIG_PSI, and not psi=0)",
                psi::SYSTEM_MEMORY_PRESSURE
            ),
        }
        self.shed = Some(shed);
    }

    /// The system trigger fired: stop the least important running unit.
    pub(super) fn on_system_pressure(&mut self, err: bool) {
        let t = now();
        let Some(shed) = self.shed.as_mut() else {
            return;
        };
        if err {
            shed.trigger = None;
            crate::error!("wren.shed: the pressure trigger failed; no more shedding");
            return;
        }
        // A shutdown stops every unit in its order; a shed one would jump
        // it. No calm is kept either: one due for the rest of the
        // shutdown would keep the loop's timer in the past.
        if self.sup.shutting_down().is_some() {
            shed.calm_at = None;
            return;
        }
        shed.calm_at = Some(t.saturating_add(shed.calm()));
        let limit = shed.limit;
        // The last victim has not let go of its memory yet (the trigger
        // fires once a window, a stop may take its `stop_timeout`, what it
        // left is killed after): one more would be stopped for the same
        // pressure. Not once PID 1 gave up on it (stuck in the kernel):
        // shedding would stall as long as it.
        let letting_go = self.sup.indexed().any(|(u, s)| {
            self.edges.get(usize::from(u)).is_some_and(|e| {
                e.shed && !e.drain.gave_up && (s.rt.phase == Phase::Stopping || e.drain.active())
            })
        });
        if letting_go {
            return;
        }
        // By index, not by place among the units (a reload frees slots),
        // and not one a reload removed (`indexed`).
        let victim = self
            .sup
            .indexed()
            .filter(|(u, s)| {
                matches!(s.rt.phase, Phase::Running | Phase::Starting)
                    && s.def.shed_order.is_some()
                    && !s.def.critical
                    && !self.edges.get(usize::from(*u)).is_some_and(|e| e.shed)
            })
            .min_by_key(|(u, s)| (s.def.shed_order, u16::MAX - *u))
            .map(|(u, _)| u);
        let Some(u) = victim else {
            if !shed.said_none {
                shed.said_none = true;
                kmsg::console_line(format_args!(
                    "[ WARN ] memory pressure over {}% in {}ms, nothing left to shed",
                    limit.percent, limit.window
                ));
            }
            return;
        };
        shed.said_none = false;
        let name = self.sup.slot(u).map(|s| s.def.name.as_str()).unwrap_or("?");
        let again = shed.strike(name, t);
        let calm = shed.calm();
        shed.calm_at = Some(t.saturating_add(calm));
        if let Some(e) = self.edges.get_mut(usize::from(u)) {
            e.shed = true;
        }
        kmsg::console_line(format_args!(
            "[ SHED ] {name}: stopping, system memory pressure over {}% in {}ms{}",
            limit.percent,
            limit.window,
            if again {
                "; shed again since it started: calm doubled"
            } else {
                ""
            }
        ));
        kmsg::event(format_args!(
            "{name}: shed, system memory pressure over {}% in {}ms",
            limit.percent, limit.window
        ));
        self.feed(Event::Shed { unit: u });
    }

    /// A shed unit wanted again by other means than the calm (a reload
    /// that changed its definition starts it) is the operator's again, as
    /// after a hand start: not shed (status said so while it ran, and the
    /// calm would start it a second time) and a victim like any other.
    pub(super) fn unshed_wanted(&mut self) {
        for (i, e) in self.edges.iter_mut().enumerate() {
            let wanted = u16::try_from(i)
                .ok()
                .and_then(|u| self.sup.slot(u))
                .is_some_and(|s| s.rt.want);
            if e.shed && wanted {
                e.shed = false;
            }
        }
    }

    /// The shed unit the calm starts next: the most important (highest
    /// `shed_order`), of those whose `after` units are not shed (it would
    /// give up on one still stopped); not one a reload has removed
    /// meanwhile (`indexed`).
    fn next_unshed(&self) -> Option<u16> {
        let is_shed = |u: u16| self.edges.get(usize::from(u)).is_some_and(|e| e.shed);
        self.sup
            .indexed()
            .filter(|(u, s)| is_shed(*u) && !s.rt.deps.iter().any(|&d| is_shed(d)))
            .max_by_key(|(u, s)| (s.def.shed_order, u16::MAX - *u))
            .map(|(u, _)| u)
    }

    /// Timer: pressure stayed low for a calm period; start the most
    /// important shed unit again.
    pub(super) fn on_shed_calm(&mut self) {
        let t = now();
        let shutting = self.sup.shutting_down().is_some();
        let calm = match self.shed.as_mut() {
            // Nothing starts again in a shutdown, and a calm left due
            // would keep the loop's timer in the past (a spin).
            Some(shed) if shutting => {
                shed.calm_at = None;
                return;
            }
            Some(shed) if shed.calm_at.is_some_and(|c| c <= t) => {
                shed.said_none = false;
                shed.calm()
            }
            _ => return,
        };
        let back = self.next_unshed();
        if let Some(e) = back.and_then(|u| self.edges.get_mut(usize::from(u))) {
            e.shed = false;
        }
        // Only units in the table: a freed slot's edge is no one's.
        let more = (self.sup.indexed())
            .any(|(u, _)| self.edges.get(usize::from(u)).is_some_and(|e| e.shed));
        if let Some(shed) = self.shed.as_mut() {
            shed.calm_at = more.then(|| t.saturating_add(calm));
            shed.back = back
                .and_then(|u| self.sup.slot(u))
                .map(|s| (s.def.name.clone(), t));
        }
        let Some(u) = back else { return };
        let name = self.sup.slot(u).map(|s| s.def.name.as_str()).unwrap_or("?");
        kmsg::console_line(format_args!(
            "[ SHED ] {name}: starting again, memory pressure low for {calm}ms"
        ));
        kmsg::event(format_args!("{name}: unshed"));
        self.feed(Event::Unshed { unit: u });
    }
}

#[cfg(test)]
mod tests;
