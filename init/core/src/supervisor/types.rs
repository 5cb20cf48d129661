//! The machine's vocabulary: a unit's phases, the notes it announces,
//! the events it is stepped with and the actions it asks for, and a
//! slot's definition and run-time record.

use super::Failures;
use crate::unit::{Few, UnitDef};
use crate::vocab::{Delay, Due, Exit, Millis, ShutdownKind, State, AFTER_MAX};

/// Where a unit is in its life; finer than `State` (waiting for
/// dependencies shows as `starting`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Phase {
    /// Wanted, not spawned yet: waiting for its `after` units.
    Waiting,
    /// Spawned, not ready yet (oneshot: still running).
    Starting,
    Running,
    Stopping,
    Stopped,
    /// Oneshot that exited 0.
    Exited,
    /// Waiting for the restart delay.
    Backoff,
    Failed,
}

impl Phase {
    /// Every phase, in declaration order (for the tests).
    #[cfg(test)]
    pub(crate) const ALL: [Phase; 8] = [
        Phase::Waiting,
        Phase::Starting,
        Phase::Running,
        Phase::Stopping,
        Phase::Stopped,
        Phase::Exited,
        Phase::Backoff,
        Phase::Failed,
    ];

    pub fn state(self) -> State {
        match self {
            Phase::Waiting | Phase::Starting => State::Starting,
            Phase::Running => State::Running,
            Phase::Stopping => State::Stopping,
            Phase::Stopped => State::Stopped,
            Phase::Exited => State::Exited,
            Phase::Backoff => State::Backoff,
            Phase::Failed => State::Failed,
        }
    }

    /// Lets the units `after` it start.
    pub fn lets_dependents_start(self) -> bool {
        matches!(self, Phase::Running | Phase::Exited)
    }

    /// Has a process (or may get one without an operator's say).
    pub(super) fn active(self) -> bool {
        !matches!(self, Phase::Stopped | Phase::Failed)
    }
}

/// Why a unit is where it is, for the console line and `status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Note {
    Running {
        pid: u32,
    },
    Exited,
    /// Ended on its own; `restart_in` when it will be started again.
    Died {
        exit: Exit,
        restart_in: Option<Delay>,
    },
    SpawnFailed {
        restart_in: Option<Delay>,
    },
    /// Not ready within its `start_timeout`: killed, a failed start.
    StartTimeout {
        restart_in: Option<Delay>,
    },
    StartLimit,
    /// A unit in `after` failed, so this one will not start.
    DepFailed {
        dep: u16,
    },
    /// A name in `after` is no longer loaded (a reload removed it): the
    /// unit, due to start, will not.
    DepMissing,
    Stopped,
    /// `watchdog`: no `WATCHDOG=1` for that long while running: killed,
    /// a failure like an exit.
    WatchdogTimeout {
        restart_in: Option<Delay>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Start unit's process (clone3 into its cgroup, exec); answer with
    /// `Spawned` or `SpawnFailed`.
    Spawn(u16),
    /// Send `sig` to the unit's process group.
    Signal { unit: u16, pid: u32, sig: i32 },
    /// Write `cgroup.kill`: nothing of the unit may outlive this.
    KillCgroup(u16),
    /// Tell the operator (console line, log).
    Announce(u16, Note),
    /// Every unit is down: kill the rest, sync, unmount, reboot(2).
    Finish(ShutdownKind),
    /// A unit on probation (changed or added by a reload) proved itself
    /// (`good`: ready, and for `ready = started` still up after
    /// `GATE_HOLD`) or did not (spawn error, exit, start timeout). On a bad
    /// verdict pid1 puts its last good definition back (`revert`).
    Verdict { unit: u16, good: bool },
}

impl Event {
    pub fn spawned(unit: u16, pid: u32) -> Event {
        Event::Spawned {
            unit,
            pid: PidHalves::new(pid),
        }
    }
}

/// A pid in two `u16` halves: 2-byte aligned, so that `Spawned` fits
/// beside `Exited`'s `Exit` and an `Event` is 8 bytes, not 12 (PID 1's
/// event queue holds two a unit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PidHalves([u16; 2]);

impl PidHalves {
    pub const fn new(pid: u32) -> Self {
        PidHalves([(pid >> 16) as u16, pid as u16])
    }

    pub const fn get(self) -> u32 {
        ((self.0[0] as u32) << 16) | self.0[1] as u32
    }
}

/// How long a `ready = started` unit on probation must stay up after its
/// exec to be judged good (it is "ready" at once, so an exit just after
/// would otherwise pass); at most its `start_timeout`.
pub const GATE_HOLD: Millis = 1_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// Start every wanted unit whose dependencies are ready.
    Boot,
    /// (`Event::spawned`.)
    Spawned {
        unit: u16,
        pid: PidHalves,
    },
    SpawnFailed {
        unit: u16,
    },
    /// Some child was reaped: a unit's main process or an adopted orphan.
    Exited {
        pid: u32,
        exit: Exit,
    },
    /// The unit's namespace reaper started its service again in place
    /// after it ended so (`UnitDef::relaunches_in_place`): the run goes on
    /// under the same pid, the reaper's.
    Relaunched {
        unit: u16,
        exit: Exit,
    },
    /// The unit signalled readiness (`notify` / `sd_notify`).
    Ready {
        unit: u16,
    },
    /// A `WATCHDOG=1` from the unit (`watchdog`): it is alive.
    Watchdog {
        unit: u16,
    },
    /// The timer for `next_deadline()` fired.
    Tick,
    Start {
        unit: u16,
    },
    Stop {
        unit: u16,
    },
    /// Stopped under memory pressure (`wren.shed`, `pressure_action =
    /// stop`): as `Stop`, but a unit on probation stays on it, judged
    /// when it is started again; its new definition did not fail.
    Shed {
        unit: u16,
    },
    /// `by_hand` (the operator's): its failures are forgotten, as at a
    /// start by hand. Else the `pressure_action`'s: the run ends as a
    /// failure (backoff, start limit).
    Restart {
        unit: u16,
        by_hand: bool,
    },
    Shutdown(ShutdownKind),
    /// A unit stopped under system memory pressure (`wren.shed`) started
    /// again: as `Start`, and the units that gave up on it meanwhile
    /// (`DepFailed`: a restart while it was stopped) wait for it again.
    Unshed {
        unit: u16,
    },
    /// In a shutdown: nothing is left of the unit's run (its cgroup is
    /// empty, or PID 1 gave up on it) after the exit that stopped it.
    Drained {
        unit: u16,
    },
}

/// Run-time record of one unit (handed over whole on `reexec`; `deps`
/// is resolved again by `link`).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Runtime {
    pub phase: Phase,
    pub pid: u32,
    /// Should be up: cleared by `stop`, a start limit, a failed dependency
    /// or shutdown.
    pub want: bool,
    pub spawned_at: Millis,
    /// How long after `spawned_at` this run became ready (`Running`), so
    /// the restart delay's streak counts the time it was up. Not handed
    /// over (the state format stays): after a re-exec, 0, and the run
    /// counts from its spawn.
    #[serde(skip)]
    pub ready_after: u32,
    pub deadline: Option<Due>,
    /// Failures in a row, for the doubling restart delay.
    pub streak: u32,
    pub restarts: u32,
    /// Times of recent failed starts, for `start_limit`.
    pub failures: Failures,
    pub last_exit: Option<Exit>,
    pub last_note: Option<Note>,
    /// Dependencies as table indices (resolved from `after`), at their
    /// real number.
    pub deps: Few<u16, AFTER_MAX>,
    /// `restart` asked while running: start again once stopped. Stopping
    /// and wanted without it: a `pressure_action`'s restart, whose end is
    /// a failed run's.
    pub restart_pending: bool,
    /// Changed or added by a reload and not judged yet: its next start
    /// decides whether the new definition stays (`Action::Verdict`).
    pub probation: bool,
    /// `watchdog`: when a running unit that has sent no `WATCHDOG=1` since
    /// is killed (armed at ready, moved on by each ping).
    pub watchdog_at: Option<Due>,
    /// Ready came before `Spawned` (a namespace's reaper still held the
    /// exec pipe when the service said READY=1): ready once the pid is
    /// known. Not handed over: a re-exec is refused while a start is
    /// between its clone and its `Spawned`.
    #[serde(skip)]
    pub ready_early: bool,
    /// In a shutdown: the main process has exited, what it left in the
    /// cgroup may still be going (`Event::Drained` ends that). Holds the
    /// unit's `after` units up as a running unit does. Not handed over:
    /// a re-exec is refused in a shutdown.
    #[serde(skip)]
    pub draining: bool,
}

impl Runtime {
    pub(super) fn new() -> Self {
        Runtime {
            phase: Phase::Stopped,
            pid: 0,
            want: false,
            spawned_at: 0,
            ready_after: 0,
            deadline: None,
            streak: 0,
            restarts: 0,
            failures: Failures::default(),
            last_exit: None,
            last_note: None,
            deps: Few::new(),
            restart_pending: false,
            ready_early: false,
            draining: false,
            probation: false,
            watchdog_at: None,
        }
    }
}

pub struct Slot {
    pub def: UnitDef,
    pub rt: Runtime,
    pub retired: Retired,
    /// Counts changes of `def.limits` (reload, put-back, a new unit in a
    /// freed slot), so PID 1 knows whether the limits it wrote into the
    /// unit's cgroup are still these without keeping a copy of them.
    pub limits_gen: u32,
}

impl Slot {
    /// Put `def` in place of the definition (reload, put-back).
    pub(super) fn set_def(&mut self, def: UnitDef) {
        if self.def.limits != def.limits {
            self.limits_gen = self.limits_gen.wrapping_add(1);
        }
        self.def = def;
    }
}

/// Units removed by a reload keep their slot (indices are stable: deps,
/// fds and epoll tokens refer to them) until stopped; then it is free for
/// the next new unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Retired {
    No,
    /// Removed from the unit directory, still stopping.
    Leaving,
    Free,
}

/// Why `add` refused a unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddError {
    TableFull,
    /// An `after` name is not in the table (the loader checks this first).
    UnknownDep,
}
