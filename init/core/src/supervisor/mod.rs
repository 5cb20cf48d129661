//! The supervisor: a pure state machine over the unit table.
//!
//! `step(now, event)` takes one thing that happened (a child exited, a timer
//! fired, an operator asked for something) and returns what to do about it
//! as `Action`s; the event loop in `pid1` performs them and feeds the
//! results back as further events. Nothing here touches the system, so the
//! whole life cycle — ordering, readiness, backoff, start limits, shutdown
//! order — is tested on the host without a kernel.
//!
//! A unit's life, as a table. It is the data in `table_tests.rs`, which
//! drives every row through `step` (and `reload`) and checks that this
//! copy is the same, so the table is what the code does. Reading it:
//! - unit: how the unit is configured; blank is a service with
//!   `ready = notify` and `restart = always`; "start limit" is one whose
//!   next failure hits its `start_limit` (then its `start_limit_action`).
//!   The unit is listed after another one; "dep ready" and "dep failed"
//!   are about that one.
//! - phase: a `Phase`, refined where that matters. "Starting, no pid" is
//!   between `Spawn` and its answer. "Stopping, restart" starts again once
//!   stopped (`restart`, or a reload changed it). "Stopping, removed" was
//!   removed by a reload and frees its slot once stopped.
//! - next and actions are after the step's `settle`: a unit that becomes
//!   Waiting with its dependencies ready is started in the same step
//!   ("Starting, no pid", Spawn). `=`: ignored, nothing changes.
//! - "cannot happen": a unit's notify fd and process exist only after
//!   `Spawn`; the row is what the code would do. pid1 answers a `Spawn`
//!   (Spawned or SpawnFailed) once the child has exec'd or failed (its
//!   exec handshake is a loop source), so other events may come first:
//!   "Starting, no pid" lasts; pid1 settles the handshake before it feeds
//!   the child's exit or readiness.
//! - exit 0 and exit 1 of a unit without a process are an orphan's.
//! - relaunched 0 and relaunched 1: the unit's namespace reaper says its
//!   service exited so and that it started it again in place (`Relaunched`).
//! - deadline: `stop_timeout` (Stopping) or the restart delay (Backoff).
//! - KillCgroup is SIGKILL to everything in the unit's cgroup.
//!
//! | unit | phase | event | next | actions | note |
//! |------|-------|-------|------|---------|------|
//! |  | Waiting | dep ready | Starting, no pid | Spawn | every `after` unit Running or Exited |
//! |  | Waiting | dep failed | Stopped | Announce(DepFailed) | not wanted until started by hand |
//! |  | Waiting | Stop | Stopped | Announce(Stopped) |  |
//! |  | Waiting | Shutdown | Stopped | Announce(Stopped), Finish | the unit it waits for, its spawn not answered, stops in the same step |
//! |  | Waiting | reload: removed | (slot freed) | Announce(Stopped) |  |
//! |  | Waiting | reload: changed | = | (ignored) | takes the new definition |
//! |  | Waiting | Boot, Ready, exit 0, exit 1, deadline | = | (ignored) | no process: an exit is an orphan's |
//! |  | Waiting | Start, Restart | = | (ignored) | failures forgotten, as a start by hand of any unit without a process |
//! |  | Waiting | Spawned | Starting |  | cannot happen |
//! |  | Waiting | SpawnFailed | Backoff | Announce(SpawnFailed, restart) | cannot happen |
//! |  | Starting, no pid | Spawned | Starting |  | ready = notify or sd_notify: wait for Ready |
//! | ready=started | Starting, no pid | Spawned | Running | Announce(Running) |  |
//! | oneshot | Starting, no pid | Spawned | Starting |  | runs until it exits |
//! |  | Starting, no pid | SpawnFailed | Backoff | Announce(SpawnFailed, restart) | a failed start |
//! | restart=never | Starting, no pid | SpawnFailed | Failed | Announce(SpawnFailed) |  |
//! | restart_delay=0 | Starting, no pid | SpawnFailed | Starting, no pid | Announce(SpawnFailed, restart), Spawn | restart_delay = 0: the first retry in a row at once |
//! | start limit | Starting, no pid | SpawnFailed | Failed | Announce(StartLimit) | start limit hit |
//! |  | Starting, no pid | Shutdown, Stop | Stopped | Announce(Stopped) | a shutdown begun by another unit's start limit |
//! |  | Starting, no pid | reload: removed | (slot freed) | Announce(Stopped) | pid1 kills the child of its exec handshake |
//! |  | Starting, no pid | Restart, reload: changed | Starting, no pid | Announce(Stopped), Spawn | the child of its exec handshake is killed; started again |
//! |  | Starting, no pid | Ready | Starting, no pid |  | kept until Spawned, then Running (a namespace's reaper may still hold the exec pipe) |
//! |  | Starting, no pid | Boot, exit 0, exit 1, deadline, Start, dep failed | = | (ignored) |  |
//! |  | Starting | Ready | Running | Announce(Running) |  |
//! |  | Starting, Running | exit 0, exit 1 | Backoff | KillCgroup, Announce(Died, restart) | restart = always; the delay doubles per failure in a row |
//! | oneshot | Starting | exit 0 | Exited | KillCgroup, Announce(Exited) |  |
//! | oneshot | Starting | exit 1 | Failed | KillCgroup, Announce(Died) | restart = never |
//! |  | Starting, Running | Stop, Shutdown | Stopping | Signal(stop_signal) | stop_timeout starts |
//! |  | Starting, Running | Restart, reload: changed | Stopping, restart | Signal(stop_signal) |  |
//! |  | Starting, Running | reload: removed | Stopping, removed | Signal(stop_signal) |  |
//! |  | Starting, Running | Spawned | Starting |  | cannot happen (takes the new pid) |
//! |  | Starting, Running | SpawnFailed | Backoff | Announce(SpawnFailed, restart) | cannot happen (forgets the pid) |
//! |  | Starting | deadline | Backoff | KillCgroup, Announce(StartTimeout, restart) | not ready within start_timeout: a failed start |
//! | restart_delay=0 | Starting, Running | exit 1 | Starting, no pid | KillCgroup, Announce(Died, restart), Spawn | the first restart in a row is spawned by the same step (later ones in a row: Backoff) |
//! | restart_delay=0 | Starting | exit 0 | Starting, no pid | KillCgroup, Announce(Died, restart), Spawn | never up: as a failure |
//! | restart_delay=0 | Running | exit 0 | Backoff | KillCgroup, Announce(Died, restart) | a clean exit is no failure: no doubling, and its restart takes the timer's turn |
//! | restart_delay=0 | Starting | deadline | Starting, no pid | KillCgroup, Announce(StartTimeout, restart), Spawn |  |
//! | restart=never | Starting | deadline | Failed | KillCgroup, Announce(StartTimeout) |  |
//! | oneshot | Starting | deadline | Failed | KillCgroup, Announce(StartTimeout) | a oneshot not done within start_timeout |
//! | start limit | Starting | deadline | Failed | KillCgroup, Announce(StartLimit) | start limit hit |
//! |  | Starting | Boot, Start, dep failed | = | (ignored) |  |
//! | restart=never | Running | exit 0 | Stopped | KillCgroup, Announce(Died) |  |
//! | restart=never | Running | exit 1 | Failed | KillCgroup, Announce(Died) |  |
//! | start limit | Running | exit 1 | Failed | KillCgroup, Announce(StartLimit) | start limit hit |
//! | start limit, reboot | Running | exit 1 | Failed | KillCgroup, Announce(StartLimit) | PID 1 up less than `LIMIT_ACTION_FLOOR`: the reboot waits for it (a deadline) |
//! | start limit, poweroff | Running | exit 1 | Failed | KillCgroup, Announce(StartLimit) | the same |
//! |  | Running | Boot, Ready, deadline, Start, dep failed | = | (ignored) |  |
//! |  | Stopping | deadline | Stopping | KillCgroup | stop_timeout passed: SIGKILL to the cgroup |
//! |  | Stopping, restart | deadline | Stopping, restart | KillCgroup |  |
//! |  | Stopping, removed | deadline | Stopping, removed | KillCgroup |  |
//! |  | Stopping | exit 0, exit 1 | Stopped | KillCgroup, Announce(Stopped) |  |
//! |  | Stopping, restart | exit 0, exit 1 | Starting, no pid | KillCgroup, Announce(Stopped), Spawn | started again, failures forgotten |
//! |  | Stopping, removed | exit 0, exit 1 | (slot freed) | KillCgroup, Announce(Stopped) |  |
//! | ready=started | Running | relaunched 0, relaunched 1 | Running | Announce(Died, restart), Announce(Running) | the reaper's restart in place (`UnitDef::relaunches_in_place`): restarts + 1, no spawn |
//! |  | Running | relaunched 0, relaunched 1 | Starting | Announce(Died, restart) | the same, not ready until it says so (only `ready = started` units are restarted so) |
//! | restart=never | Running | relaunched 0 | Stopped | KillCgroup, Announce(Died) | not to be restarted: as an exit, whose kill ends the new run |
//! | restart=never | Running | relaunched 1 | Failed | KillCgroup, Announce(Died) | the same |
//! | start limit | Running | relaunched 1 | Failed | KillCgroup, Announce(StartLimit) | the same |
//! |  | Stopping | relaunched 0, relaunched 1 | Stopped | KillCgroup, Announce(Stopped) | a stop on its way: as an exit |
//! |  | Stopping, restart | relaunched 0, relaunched 1 | Starting, no pid | KillCgroup, Announce(Stopped), Spawn | the same |
//! |  | Stopping, removed | relaunched 0, relaunched 1 | (slot freed) | KillCgroup, Announce(Stopped) | the same |
//! |  | Stopping | Start, Restart, reload: changed | Stopping, restart |  |  |
//! |  | Stopping, Stopping, restart | reload: removed | Stopping, removed |  |  |
//! |  | Stopping, restart | Stop, Shutdown | Stopping |  | the restart is dropped |
//! |  | Stopping, Stopping, restart | Spawned | Starting |  | cannot happen (takes the new pid) |
//! |  | Stopping | SpawnFailed | Failed | Announce(SpawnFailed) | cannot happen (forgets the pid) |
//! |  | Stopping, restart | SpawnFailed | Backoff | Announce(SpawnFailed, restart) | cannot happen (forgets the pid) |
//! |  | Stopping | Boot, Ready, Stop, Shutdown, dep failed | = | (ignored) |  |
//! |  | Stopping, restart | Boot, Ready, Start, Restart, reload: changed, dep failed | = | (ignored) |  |
//! |  | Stopped, Backoff | Start, Restart, reload: changed | Starting, no pid | Spawn | a fresh start, failures forgotten |
//! | restart=never | Failed | Start, Restart, reload: changed | Starting, no pid | Spawn |  |
//! | start limit, reboot | Failed | deadline | Failed | Announce(StartLimit), Reboot shutdown begins | PID 1 up `LIMIT_ACTION_FLOOR`, the unit still failed: the held reboot begins |
//! | start limit, reboot | Failed | Start, Restart, reload: changed | Starting, no pid | Spawn | the held reboot is dropped |
//! | start limit, reboot | Failed | Stop | Failed |  | the same |
//! | start limit, reboot | Failed | reload: removed | (slot freed) |  | the same |
//! | oneshot | Exited | Start, Restart | Starting, no pid | Spawn |  |
//! | oneshot | Exited | reload: changed | Starting, no pid | KillCgroup, Spawn |  |
//! |  | Backoff | deadline | Starting, no pid | Spawn | restarts + 1 |
//! |  | Backoff | Stop, Shutdown | Stopped | Announce(Stopped) |  |
//! | oneshot | Exited | Stop, Shutdown | Stopped | KillCgroup, Announce(Stopped) |  |
//! |  | Stopped | reload: removed | (slot freed) |  |  |
//! | restart=never | Failed | reload: removed | (slot freed) |  |  |
//! |  | Backoff | reload: removed | (slot freed) | Announce(Stopped) |  |
//! | oneshot | Exited | reload: removed | (slot freed) | KillCgroup, Announce(Stopped) |  |
//! |  | Stopped | Spawned | Starting |  | a shutdown stopped it before its Spawn was answered |
//! |  | Stopped | SpawnFailed | Failed | Announce(SpawnFailed) | the same |
//! |  | Backoff | Spawned | Starting |  | cannot happen |
//! |  | Backoff | SpawnFailed | Backoff | Announce(SpawnFailed, restart) | cannot happen |
//! | restart=never | Failed | Spawned | Starting |  | cannot happen |
//! | restart=never | Failed | SpawnFailed | Failed | Announce(SpawnFailed) | cannot happen |
//! | oneshot | Exited | Spawned | Starting |  | cannot happen |
//! | oneshot | Exited | SpawnFailed | Failed | Announce(SpawnFailed) | cannot happen |
//! |  | Stopped, Backoff | Boot, Ready, exit 0, exit 1, dep failed | = | (ignored) | no process: an exit is an orphan's |
//! |  | Stopped | deadline, Stop, Shutdown | = | (ignored) |  |
//! | restart=never | Failed | Boot, Ready, exit 0, exit 1, deadline, Stop, Shutdown, dep failed | = | (ignored) |  |
//! | oneshot | Exited | Boot, Ready, exit 0, exit 1, deadline, dep failed | = | (ignored) |  |
//! |  | (new) | reload: added | Starting, no pid | Spawn |  |
//!
//!
//! Shutdown stops units in reverse dependency order: a unit is stopped once
//! no active unit lists it in `after` (active until PID 1's `Drained`
//! after its exit: its cgroup's leftovers count); when none is active,
//! `Finish`.

use crate::unit::{Few, Kind, Ready, Restart, UnitDef};
pub use crate::vocab::Delay;
use crate::vocab::{due, Due, Exit, Millis, ShutdownKind, AFTER_MAX, MAX_UNITS};
pub use failures::Failures;
use heapless::Vec;

mod types;
pub use types::{
    Action, AddError, Event, Note, Phase, PidHalves, Retired, Runtime, Slot, GATE_HOLD,
};

pub struct Supervisor {
    /// Grows on `add` (boot, reload), up to `MAX_UNITS`; never in a step.
    units: std::vec::Vec<Slot>,
    /// Shutdown's counts, kept from event to event: per slot, how many
    /// active units need it, and whether it counts as active itself
    /// (`shutdown`); sized with `units` so a step allocates nothing.
    needed: std::vec::Vec<u32>,
    /// Units counted as active in `needed`: none left, the shutdown ends.
    held: usize,
    shutdown: Option<ShutdownKind>,
    finished: bool,
    /// Hints that let a step skip a pass over every unit when it would
    /// find nothing (at N = 1,000 such passes were a fifth of PID 1's
    /// boot, issue 10). Each is true (`waiting`: covers the unit)
    /// whenever its pass could find something: set by whatever may give
    /// it something to find, cleared (`waiting`: narrowed to the units
    /// left waiting) only by a pass. The core's tests check every skip
    /// against the whole pass.
    /// Every unit that is `Waiting` and wanted lies in this range of
    /// indices (`settle` passes over it only): a restart's event wakes its
    /// one unit, not a pass over 1,000; units left waiting for their
    /// dependencies keep it as wide as they lie. Empty: none waits.
    waiting: core::ops::Range<usize>,
    /// Some slot may be `Retired::Leaving` (`settle`).
    leaving: bool,
    /// Some slot may be `Retired::Free` (`add`: at boot none is, and a
    /// search for one at each of 1,000 adds was a million slot visits).
    freed: bool,
    /// Some unit may have a `deadline` or `watchdog_at` (`next_deadline`,
    /// which takes `&self`).
    timed: core::cell::Cell<bool>,
    /// No `start_limit_action` is carried out before then
    /// (`hold_limit_actions`).
    limit_floor: Millis,
    /// Booted with `wren.rescue`: no `start_limit_action` is carried out.
    rescue: bool,
}

/// How long PID 1 is up before a `start_limit_action` is carried out: a
/// unit that fails at every boot would otherwise reboot the device within
/// a second of each, and an operator on the console would never get the
/// moment it takes to log in and stop it. A minute, not the unit's
/// `start_limit` window: that may be an hour, for a unit the device
/// cannot live without.
pub const LIMIT_ACTION_FLOOR: Millis = 60_000;

impl Default for Supervisor {
    fn default() -> Self {
        Self::new()
    }
}

impl Supervisor {
    pub const fn new() -> Self {
        Supervisor {
            units: std::vec::Vec::new(),
            needed: std::vec::Vec::new(),
            held: 0,
            shutdown: None,
            finished: false,
            waiting: 0..0,
            leaving: false,
            freed: false,
            timed: core::cell::Cell::new(false),
            limit_floor: LIMIT_ACTION_FLOOR,
            rescue: false,
        }
    }

    /// PID 1 started at `up` (its first start's, kept over re-execs):
    /// a start limit hit before `up + LIMIT_ACTION_FLOOR` has its action
    /// wait until then. Under `rescue` (`wren.rescue`) none is carried
    /// out: the operator is at the console to repair, and a reload that
    /// brings back the unit that failed must not reboot under them.
    pub fn hold_limit_actions(&mut self, up: Millis, rescue: bool) {
        self.limit_floor = up.saturating_add(LIMIT_ACTION_FLOOR);
        self.rescue = rescue;
    }

    /// Booted with `wren.rescue` (`hold_limit_actions`).
    pub fn rescue(&self) -> bool {
        self.rescue
    }

    /// Add a unit, wanted; its `after` names are resolved by `link` once
    /// every unit is in.
    pub fn add(&mut self, def: UnitDef) -> Result<u16, AddError> {
        let mut rt = Runtime::new();
        rt.failures = Failures::for_limit(def.seldom.start_limit);
        rt.want = true;
        rt.phase = Phase::Waiting;
        #[cfg(test)]
        assert!(
            self.freed || !self.units.iter().any(|s| s.retired == Retired::Free),
            "a free slot without `freed`"
        );
        let free = match self.freed {
            true => self.units.iter().position(|s| s.retired == Retired::Free),
            false => None,
        };
        self.freed = free.is_some();
        if let Some(i) = free {
            if let Some(slot) = self.units.get_mut(i) {
                *slot = Slot {
                    def,
                    rt,
                    retired: Retired::No,
                    limits_gen: slot.limits_gen.wrapping_add(1),
                };
                self.wake(i);
                return Ok(i as u16);
            }
        }
        let idx = u16::try_from(self.units.len()).map_err(|_| AddError::TableFull)?;
        if usize::from(idx) >= MAX_UNITS {
            return Err(AddError::TableFull);
        }
        self.units.push(Slot {
            def,
            rt,
            retired: Retired::No,
            limits_gen: 0,
        });
        self.needed.resize(self.units.len(), 0);
        self.wake(usize::from(idx));
        Ok(idx)
    }

    pub fn len(&self) -> usize {
        self.units.len()
    }

    /// Room for `n` more units, exactly (boot: the table at its real size).
    pub fn reserve(&mut self, n: usize) {
        self.units.reserve_exact(n);
        self.needed.reserve_exact(n);
    }

    pub fn is_empty(&self) -> bool {
        self.units.is_empty()
    }

    /// How unit `unit`'s last run ended, as the edge learnt after the
    /// step (an OOM kill, told apart from another SIGKILL once a restart
    /// had started): its last exit, if it has one.
    pub fn amend_exit(&mut self, unit: u16, exit: Exit) {
        if let Some(s) = self.units.get_mut(usize::from(unit)) {
            if s.rt.last_exit.is_some() {
                s.rt.last_exit = Some(exit);
            }
        }
    }

    pub fn step(&mut self, now: Millis, ev: Event, out: &mut Actions) {
        // What an event may leave waiting: the unit it is about (a start,
        // a restart due now), or any (a boot, a backoff's end at a tick).
        // Spawned, Ready and Watchdog only make units run, so they matter
        // to `settle` only through units already waiting.
        match ev {
            // Except in a shutdown, where any unit whose phase changes is
            // looked at again (`settle_shutdown`).
            Event::Spawned { unit, .. } | Event::Ready { unit } | Event::Watchdog { unit } => {
                if self.shutdown.is_some() {
                    self.wake(usize::from(unit));
                }
            }
            Event::SpawnFailed { unit }
            | Event::Start { unit }
            | Event::Stop { unit }
            | Event::Shed { unit }
            | Event::Restart { unit, .. }
            | Event::Unshed { unit }
            | Event::Drained { unit }
            | Event::Relaunched { unit, .. } => self.wake(usize::from(unit)),
            // Woken below, once its unit is known.
            Event::Exited { .. } => {}
            Event::Boot | Event::Tick | Event::Shutdown(_) => self.wake_all(),
        }
        match ev {
            Event::Boot => {}
            Event::Spawned { unit, pid } => self.on_spawned(now, unit, pid.get(), out),
            Event::SpawnFailed { unit } => self.on_spawn_failed(now, unit, out),
            Event::Exited { pid, exit } => {
                if let Some(unit) = self.unit_of_pid(pid) {
                    self.wake(usize::from(unit));
                    self.on_exit(now, unit, exit, out);
                }
                // Otherwise an adopted orphan: reaping it was all it needed.
            }
            Event::Relaunched { unit, exit } => self.on_relaunched(now, unit, exit, out),
            Event::Ready { unit } => self.on_ready(now, unit, out),
            Event::Watchdog { unit } => self.on_watchdog_ping(now, unit),
            Event::Tick => self.on_tick(now, out),
            Event::Start { unit } => self.on_start(unit),
            Event::Stop { unit } => self.on_stop(now, unit, true, out),
            Event::Shed { unit } => self.on_stop(now, unit, false, out),
            Event::Restart { unit, by_hand } => self.on_restart(now, unit, by_hand, out),
            Event::Shutdown(kind) => self.begin_shutdown(kind),
            Event::Unshed { unit } => self.on_unshed(unit),
            Event::Drained { unit } => {
                if let Some(s) = self.units.get_mut(usize::from(unit)) {
                    s.rt.draining = false;
                }
            }
        }
        self.settle(now, out);
    }
}

impl Slot {
    /// Stopped because a unit it is `after` failed (`DepFailed`), and not
    /// stopped or started by hand since.
    pub fn gave_up_on_dependency(&self) -> bool {
        self.rt.phase == Phase::Stopped
            && !self.rt.want
            && self.retired == Retired::No
            && matches!(self.rt.last_note, Some(Note::DepFailed { .. }))
    }

    /// On probation, but stopped and not wanted: it gave up on a
    /// dependency, or was shed. Judged when something starts it again,
    /// not waited for meanwhile (`on_probation`).
    pub fn judged_when_started(&self) -> bool {
        self.rt.probation
            && self.rt.phase == Phase::Stopped
            && !self.rt.want
            && self.retired == Retired::No
    }
}

impl Supervisor {
    /// Unit `i` may be waiting now (`waiting`).
    fn wake(&mut self, i: usize) {
        self.waiting = cover(&self.waiting, i);
    }

    /// Any unit may be waiting now.
    fn wake_all(&mut self) {
        self.waiting = 0..usize::MAX;
    }
}

/// The smallest range holding `r` and index `i`.
fn cover(r: &core::ops::Range<usize>, i: usize) -> core::ops::Range<usize> {
    let end = i.saturating_add(1);
    match r.is_empty() {
        true => i..end,
        false => r.start.min(i)..r.end.max(end),
    }
}

fn note(s: &mut Slot, unit: u16, n: Note, out: &mut Actions) {
    s.rt.last_note = Some(n);
    out.push(Action::Announce(unit, n));
}

mod actions;
mod commands;
mod failures;
mod link;
mod process;
mod queries;
mod reload;
mod settle;
mod shutdown;
mod takeover;

pub use actions::{max_actions, Actions};
pub use link::{ByName, PutBack};
pub use process::backoff_delay;
pub use reload::ReloadSummary;

#[cfg(test)]
mod invariant_walk_tests;
#[cfg(test)]
mod shutdown_drain_tests;
#[cfg(test)]
mod table_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod walk_tests;
#[cfg(test)]
mod watchdog_tests;
