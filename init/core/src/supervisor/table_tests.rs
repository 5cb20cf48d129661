//! The transition table of the module doc, as data: every phase of a unit
//! driven with every event, each outcome checked against its row, and the
//! doc's table checked to be this one rendered, so neither can drift.

use super::{Action, Actions, Event, Note, Phase, Retired, Supervisor};
use crate::unit::{Kind, LimitAction, StartLimit, UnitDef};
use crate::vocab::{Exit, Millis, ShutdownKind};
use std::fmt::Write as _;

/// How the unit under test is configured. Every unit is `u`, listed
/// after `d` (a `ready = started` service with `restart = never`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ctx {
    /// A service with `ready = notify`, `restart = always`.
    Service,
    /// The same with `ready = started`.
    Started,
    /// `type = oneshot`, `restart = never`.
    Oneshot,
    /// A service with `restart = never`.
    NoRestart,
    /// A service with `start_limit = 1/1m`: its next failure hits it.
    Limit(LimitAction),
    /// A service with `restart_delay = 0ms`.
    NoDelay,
}

/// Where `u` is: its phase, refined where the phase alone does not say
/// what the next event does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sit {
    /// Not in the table yet (only `ReloadAdded` applies).
    New,
    /// Waiting, with `d` not ready yet.
    Waiting,
    /// Starting, `Spawn` asked and not answered yet (no pid).
    Spawning,
    /// Starting, spawned, not ready yet.
    Starting,
    Running,
    Stopping,
    /// Stopping, to start again once stopped (`restart`, or a reload
    /// changed it).
    Restarting,
    /// Stopping, removed by a reload: leaves the table once stopped.
    Leaving,
    Stopped,
    Exited,
    Backoff,
    Failed,
    /// Removed by a reload and stopped: its slot is free.
    Gone,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum On {
    Boot,
    Spawned,
    SpawnError,
    Ready,
    /// `u`'s process (if it has one) exits 0.
    ExitOk,
    /// `u`'s process (if it has one) exits 1.
    ExitFail,
    /// `u`'s namespace reaper says its service exited 0 and that it
    /// started it again in place.
    RelaunchedOk,
    /// The same after an exit 1.
    RelaunchedFail,
    /// `Tick` at `u`'s deadline (if it has none, a bit later).
    Deadline,
    Start,
    Stop,
    Restart,
    /// A reload where `u`'s definition changed.
    ReloadChanged,
    /// A reload where `u`'s file is gone.
    ReloadRemoved,
    /// A reload where `u` is new.
    ReloadAdded,
    Shutdown,
    /// `d` becomes ready (`u` waiting for it).
    DepReady,
    /// `d` fails.
    DepFails,
}

/// What a note tells the operator, as far as the table goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ann {
    Running,
    Exited,
    /// Died, restart scheduled.
    DiedRestart,
    /// Died, not restarted.
    Died,
    SpawnFailedRestart,
    SpawnFailed,
    /// Not ready within `start_timeout`, restart scheduled.
    TimeoutRestart,
    Timeout,
    StartLimit,
    DepFailed,
    Stopped,
}

/// An action about `u`, or the supervisor beginning a shutdown by itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Act {
    Spawn,
    /// `stop_signal` to `u`'s process.
    Signal,
    /// `cgroup.kill`: SIGKILL to all of `u`.
    Kill,
    Announce(Ann),
    Finish,
    /// Not an action: the step began a shutdown (a start limit's action).
    Shutdown(ShutdownKind),
}

#[derive(Clone, Copy, Debug)]
enum To {
    /// Ignored: same place, no action.
    Same,
    Sit(Sit),
}

struct Row {
    ctx: Ctx,
    from: &'static [Sit],
    on: &'static [On],
    to: To,
    acts: &'static [Act],
    why: &'static str,
}

use Act::{Announce as A, Finish, Kill, Signal, Spawn};
use Ann::*;
use On::*;

const fn row(
    ctx: Ctx,
    from: &'static [Sit],
    on: &'static [On],
    to: Sit,
    acts: &'static [Act],
    why: &'static str,
) -> Row {
    Row {
        ctx,
        from,
        on,
        to: To::Sit(to),
        acts,
        why,
    }
}

const fn ignored(ctx: Ctx, from: &'static [Sit], on: &'static [On], why: &'static str) -> Row {
    Row {
        ctx,
        from,
        on,
        to: To::Same,
        acts: &[],
        why,
    }
}

const SVC: Ctx = Ctx::Service;

/// The table (rendered into the module doc).
#[rustfmt::skip]
const TABLE: &[Row] = &[
    // Waiting.
    row(SVC, &[Sit::Waiting], &[DepReady], Sit::Spawning, &[Spawn], "every `after` unit Running or Exited"),
    row(SVC, &[Sit::Waiting], &[DepFails], Sit::Stopped, &[A(DepFailed)], "not wanted until started by hand"),
    row(SVC, &[Sit::Waiting], &[Stop], Sit::Stopped, &[A(Stopped)], ""),
    row(SVC, &[Sit::Waiting], &[Shutdown], Sit::Stopped, &[A(Stopped), Finish], "the unit it waits for, its spawn not answered, stops in the same step"),
    row(SVC, &[Sit::Waiting], &[ReloadRemoved], Sit::Gone, &[A(Stopped)], ""),
    ignored(SVC, &[Sit::Waiting], &[ReloadChanged], "takes the new definition"),
    ignored(SVC, &[Sit::Waiting], &[Boot, Ready, ExitOk, ExitFail, Deadline], "no process: an exit is an orphan's"),
    ignored(SVC, &[Sit::Waiting], &[Start, Restart], "failures forgotten, as a start by hand of any unit without a process"),
    row(SVC, &[Sit::Waiting], &[Spawned], Sit::Starting, &[], "cannot happen"),
    row(SVC, &[Sit::Waiting], &[SpawnError], Sit::Backoff, &[A(SpawnFailedRestart)], "cannot happen"),
    // Starting, Spawn not answered yet.
    row(SVC, &[Sit::Spawning], &[Spawned], Sit::Starting, &[], "ready = notify or sd_notify: wait for Ready"),
    row(Ctx::Started, &[Sit::Spawning], &[Spawned], Sit::Running, &[A(Running)], ""),
    row(Ctx::Oneshot, &[Sit::Spawning], &[Spawned], Sit::Starting, &[], "runs until it exits"),
    row(SVC, &[Sit::Spawning], &[SpawnError], Sit::Backoff, &[A(SpawnFailedRestart)], "a failed start"),
    row(Ctx::NoRestart, &[Sit::Spawning], &[SpawnError], Sit::Failed, &[A(SpawnFailed)], ""),
    row(Ctx::NoDelay, &[Sit::Spawning], &[SpawnError], Sit::Spawning, &[A(SpawnFailedRestart), Spawn], "restart_delay = 0: the first retry in a row at once"),
    row(Ctx::Limit(LimitAction::None), &[Sit::Spawning], &[SpawnError], Sit::Failed, &[A(StartLimit)], "start limit hit"),
    row(SVC, &[Sit::Spawning], &[Shutdown, Stop], Sit::Stopped, &[A(Stopped)], "a shutdown begun by another unit's start limit"),
    row(SVC, &[Sit::Spawning], &[ReloadRemoved], Sit::Gone, &[A(Stopped)], "pid1 kills the child of its exec handshake"),
    row(SVC, &[Sit::Spawning], &[Restart, ReloadChanged], Sit::Spawning, &[A(Stopped), Spawn], "the child of its exec handshake is killed; started again"),
    row(SVC, &[Sit::Spawning], &[Ready], Sit::Spawning, &[], "kept until Spawned, then Running (a namespace's reaper may still hold the exec pipe)"),
    ignored(SVC, &[Sit::Spawning], &[Boot, ExitOk, ExitFail, Deadline, Start, DepFails], ""),
    // Starting, spawned: waiting for Ready (a oneshot: for its exit).
    row(SVC, &[Sit::Starting], &[Ready], Sit::Running, &[A(Running)], ""),
    row(SVC, &[Sit::Starting, Sit::Running], &[ExitOk, ExitFail], Sit::Backoff, &[Kill, A(DiedRestart)], "restart = always; the delay doubles per failure in a row"),
    row(Ctx::Oneshot, &[Sit::Starting], &[ExitOk], Sit::Exited, &[Kill, A(Exited)], ""),
    row(Ctx::Oneshot, &[Sit::Starting], &[ExitFail], Sit::Failed, &[Kill, A(Died)], "restart = never"),
    row(SVC, &[Sit::Starting, Sit::Running], &[Stop, Shutdown], Sit::Stopping, &[Signal], "stop_timeout starts"),
    row(SVC, &[Sit::Starting, Sit::Running], &[Restart, ReloadChanged], Sit::Restarting, &[Signal], ""),
    row(SVC, &[Sit::Starting, Sit::Running], &[ReloadRemoved], Sit::Leaving, &[Signal], ""),
    row(SVC, &[Sit::Starting, Sit::Running], &[Spawned], Sit::Starting, &[], "cannot happen (takes the new pid)"),
    row(SVC, &[Sit::Starting, Sit::Running], &[SpawnError], Sit::Backoff, &[A(SpawnFailedRestart)], "cannot happen (forgets the pid)"),
    row(SVC, &[Sit::Starting], &[Deadline], Sit::Backoff, &[Kill, A(TimeoutRestart)], "not ready within start_timeout: a failed start"),
    row(Ctx::NoDelay, &[Sit::Starting, Sit::Running], &[ExitFail], Sit::Spawning, &[Kill, A(DiedRestart), Spawn], "the first restart in a row is spawned by the same step (later ones in a row: Backoff)"),
    row(Ctx::NoDelay, &[Sit::Starting], &[ExitOk], Sit::Spawning, &[Kill, A(DiedRestart), Spawn], "never up: as a failure"),
    row(Ctx::NoDelay, &[Sit::Running], &[ExitOk], Sit::Backoff, &[Kill, A(DiedRestart)], "a clean exit is no failure: no doubling, and its restart takes the timer's turn"),
    row(Ctx::NoDelay, &[Sit::Starting], &[Deadline], Sit::Spawning, &[Kill, A(TimeoutRestart), Spawn], ""),
    row(Ctx::NoRestart, &[Sit::Starting], &[Deadline], Sit::Failed, &[Kill, A(Timeout)], ""),
    row(Ctx::Oneshot, &[Sit::Starting], &[Deadline], Sit::Failed, &[Kill, A(Timeout)], "a oneshot not done within start_timeout"),
    row(Ctx::Limit(LimitAction::None), &[Sit::Starting], &[Deadline], Sit::Failed, &[Kill, A(StartLimit)], "start limit hit"),
    ignored(SVC, &[Sit::Starting], &[Boot, Start, DepFails], ""),
    // Running.
    row(Ctx::NoRestart, &[Sit::Running], &[ExitOk], Sit::Stopped, &[Kill, A(Died)], ""),
    row(Ctx::NoRestart, &[Sit::Running], &[ExitFail], Sit::Failed, &[Kill, A(Died)], ""),
    row(Ctx::Limit(LimitAction::None), &[Sit::Running], &[ExitFail], Sit::Failed, &[Kill, A(StartLimit)], "start limit hit"),
    row(Ctx::Limit(LimitAction::Reboot), &[Sit::Running], &[ExitFail], Sit::Failed, &[Kill, A(StartLimit)], "PID 1 up less than `LIMIT_ACTION_FLOOR`: the reboot waits for it (a deadline)"),
    row(Ctx::Limit(LimitAction::Poweroff), &[Sit::Running], &[ExitFail], Sit::Failed, &[Kill, A(StartLimit)], "the same"),
    ignored(SVC, &[Sit::Running], &[Boot, Ready, Deadline, Start, DepFails], ""),
    // Stopping.
    row(SVC, &[Sit::Stopping], &[Deadline], Sit::Stopping, &[Kill], "stop_timeout passed: SIGKILL to the cgroup"),
    row(SVC, &[Sit::Restarting], &[Deadline], Sit::Restarting, &[Kill], ""),
    row(SVC, &[Sit::Leaving], &[Deadline], Sit::Leaving, &[Kill], ""),
    row(SVC, &[Sit::Stopping], &[ExitOk, ExitFail], Sit::Stopped, &[Kill, A(Stopped)], ""),
    row(SVC, &[Sit::Restarting], &[ExitOk, ExitFail], Sit::Spawning, &[Kill, A(Stopped), Spawn], "started again, failures forgotten"),
    row(SVC, &[Sit::Leaving], &[ExitOk, ExitFail], Sit::Gone, &[Kill, A(Stopped)], ""),
    row(Ctx::Started, &[Sit::Running], &[RelaunchedOk, RelaunchedFail], Sit::Running, &[A(DiedRestart), A(Running)], "the reaper's restart in place (`UnitDef::relaunches_in_place`): restarts + 1, no spawn"),
    row(SVC, &[Sit::Running], &[RelaunchedOk, RelaunchedFail], Sit::Starting, &[A(DiedRestart)], "the same, not ready until it says so (only `ready = started` units are restarted so)"),
    row(Ctx::NoRestart, &[Sit::Running], &[RelaunchedOk], Sit::Stopped, &[Kill, A(Died)], "not to be restarted: as an exit, whose kill ends the new run"),
    row(Ctx::NoRestart, &[Sit::Running], &[RelaunchedFail], Sit::Failed, &[Kill, A(Died)], "the same"),
    row(Ctx::Limit(LimitAction::None), &[Sit::Running], &[RelaunchedFail], Sit::Failed, &[Kill, A(StartLimit)], "the same"),
    row(SVC, &[Sit::Stopping], &[RelaunchedOk, RelaunchedFail], Sit::Stopped, &[Kill, A(Stopped)], "a stop on its way: as an exit"),
    row(SVC, &[Sit::Restarting], &[RelaunchedOk, RelaunchedFail], Sit::Spawning, &[Kill, A(Stopped), Spawn], "the same"),
    row(SVC, &[Sit::Leaving], &[RelaunchedOk, RelaunchedFail], Sit::Gone, &[Kill, A(Stopped)], "the same"),
    row(SVC, &[Sit::Stopping], &[Start, Restart, ReloadChanged], Sit::Restarting, &[], ""),
    row(SVC, &[Sit::Stopping, Sit::Restarting], &[ReloadRemoved], Sit::Leaving, &[], ""),
    row(SVC, &[Sit::Restarting], &[Stop, Shutdown], Sit::Stopping, &[], "the restart is dropped"),
    row(SVC, &[Sit::Stopping, Sit::Restarting], &[Spawned], Sit::Starting, &[], "cannot happen (takes the new pid)"),
    row(SVC, &[Sit::Stopping], &[SpawnError], Sit::Failed, &[A(SpawnFailed)], "cannot happen (forgets the pid)"),
    row(SVC, &[Sit::Restarting], &[SpawnError], Sit::Backoff, &[A(SpawnFailedRestart)], "cannot happen (forgets the pid)"),
    ignored(SVC, &[Sit::Stopping], &[Boot, Ready, Stop, Shutdown, DepFails], ""),
    ignored(SVC, &[Sit::Restarting], &[Boot, Ready, Start, Restart, ReloadChanged, DepFails], ""),
    // No process: Stopped, Exited, Backoff, Failed.
    row(SVC, &[Sit::Stopped, Sit::Backoff], &[Start, Restart, ReloadChanged], Sit::Spawning, &[Spawn], "a fresh start, failures forgotten"),
    row(Ctx::NoRestart, &[Sit::Failed], &[Start, Restart, ReloadChanged], Sit::Spawning, &[Spawn], ""),
    row(Ctx::Limit(LimitAction::Reboot), &[Sit::Failed], &[Deadline], Sit::Failed, &[A(StartLimit), Act::Shutdown(ShutdownKind::Reboot)], "PID 1 up `LIMIT_ACTION_FLOOR`, the unit still failed: the held reboot begins"),
    row(Ctx::Limit(LimitAction::Reboot), &[Sit::Failed], &[Start, Restart, ReloadChanged], Sit::Spawning, &[Spawn], "the held reboot is dropped"),
    row(Ctx::Limit(LimitAction::Reboot), &[Sit::Failed], &[Stop], Sit::Failed, &[], "the same"),
    row(Ctx::Limit(LimitAction::Reboot), &[Sit::Failed], &[ReloadRemoved], Sit::Gone, &[], "the same"),
    row(Ctx::Oneshot, &[Sit::Exited], &[Start, Restart], Sit::Spawning, &[Spawn], ""),
    row(Ctx::Oneshot, &[Sit::Exited], &[ReloadChanged], Sit::Spawning, &[Kill, Spawn], ""),
    row(SVC, &[Sit::Backoff], &[Deadline], Sit::Spawning, &[Spawn], "restarts + 1"),
    row(SVC, &[Sit::Backoff], &[Stop, Shutdown], Sit::Stopped, &[A(Stopped)], ""),
    row(Ctx::Oneshot, &[Sit::Exited], &[Stop, Shutdown], Sit::Stopped, &[Kill, A(Stopped)], ""),
    row(SVC, &[Sit::Stopped], &[ReloadRemoved], Sit::Gone, &[], ""),
    row(Ctx::NoRestart, &[Sit::Failed], &[ReloadRemoved], Sit::Gone, &[], ""),
    row(SVC, &[Sit::Backoff], &[ReloadRemoved], Sit::Gone, &[A(Stopped)], ""),
    row(Ctx::Oneshot, &[Sit::Exited], &[ReloadRemoved], Sit::Gone, &[Kill, A(Stopped)], ""),
    row(SVC, &[Sit::Stopped], &[Spawned], Sit::Starting, &[], "a shutdown stopped it before its Spawn was answered"),
    row(SVC, &[Sit::Stopped], &[SpawnError], Sit::Failed, &[A(SpawnFailed)], "the same"),
    row(SVC, &[Sit::Backoff], &[Spawned], Sit::Starting, &[], "cannot happen"),
    row(SVC, &[Sit::Backoff], &[SpawnError], Sit::Backoff, &[A(SpawnFailedRestart)], "cannot happen"),
    row(Ctx::NoRestart, &[Sit::Failed], &[Spawned], Sit::Starting, &[], "cannot happen"),
    row(Ctx::NoRestart, &[Sit::Failed], &[SpawnError], Sit::Failed, &[A(SpawnFailed)], "cannot happen"),
    row(Ctx::Oneshot, &[Sit::Exited], &[Spawned], Sit::Starting, &[], "cannot happen"),
    row(Ctx::Oneshot, &[Sit::Exited], &[SpawnError], Sit::Failed, &[A(SpawnFailed)], "cannot happen"),
    ignored(SVC, &[Sit::Stopped, Sit::Backoff], &[Boot, Ready, ExitOk, ExitFail, DepFails], "no process: an exit is an orphan's"),
    ignored(SVC, &[Sit::Stopped], &[Deadline, Stop, Shutdown], ""),
    ignored(Ctx::NoRestart, &[Sit::Failed], &[Boot, Ready, ExitOk, ExitFail, Deadline, Stop, Shutdown, DepFails], ""),
    ignored(Ctx::Oneshot, &[Sit::Exited], &[Boot, Ready, ExitOk, ExitFail, Deadline, DepFails], ""),
    // A unit that is not in the table yet.
    row(SVC, &[Sit::New], &[ReloadAdded], Sit::Spawning, &[Spawn], ""),
];

// ---------------------------------------------------------------------------
// Driving.

/// `d` is unit 0, `u` unit 1.
const D: u16 = 0;
const U: u16 = 1;

fn unit_d() -> UnitDef {
    let mut d = UnitDef::with_defaults("d");
    d.exec.push("/bin/true").unwrap();
    d.restart = crate::unit::Restart::Never;
    d
}

fn unit_u(ctx: Ctx) -> UnitDef {
    let mut u = UnitDef::with_defaults("u");
    u.exec.push("/bin/true").unwrap();
    u.after.push("d").unwrap();
    u.ready = crate::unit::Ready::Notify;
    match ctx {
        Ctx::Service => {}
        Ctx::Started => u.ready = crate::unit::Ready::Started,
        Ctx::Oneshot => {
            u.kind = Kind::Oneshot;
            u.restart = crate::unit::Restart::Never;
        }
        Ctx::NoRestart => u.restart = crate::unit::Restart::Never,
        Ctx::NoDelay => u.restart_delay = 0,
        Ctx::Limit(action) => {
            u.seldom.start_limit = Some(StartLimit {
                count: 1,
                window: 60_000,
            });
            u.start_limit_action = action;
        }
    }
    u
}

struct Rig {
    sup: Supervisor,
    ctx: Ctx,
    now: Millis,
    next_pid: u32,
}

impl Rig {
    fn step(&mut self, ev: Event) -> std::vec::Vec<Action> {
        let mut out = Actions::new();
        self.sup.step(self.now, ev, &mut out);
        out.to_vec()
    }

    fn pid(&mut self) -> u32 {
        self.next_pid += 1;
        self.next_pid
    }

    fn spawned(&mut self, unit: u16) {
        let pid = self.pid();
        self.step(Event::spawned(unit, pid));
    }

    fn exit(&mut self, unit: u16, code: i32) -> std::vec::Vec<Action> {
        let pid = self.sup.slot(unit).unwrap().rt.pid;
        // A unit without a process: the pid is nobody's.
        let pid = if pid == 0 { self.pid() } else { pid };
        self.step(Event::Exited {
            pid,
            exit: Exit::code(code),
        })
    }

    fn reload(&mut self, defs: std::vec::Vec<UnitDef>) -> std::vec::Vec<Action> {
        let mut out = Actions::new();
        self.sup
            .reload(self.now, &mut defs.into_iter(), &|_| false, &mut out);
        out.to_vec()
    }

    /// `u` in `ctx`, brought to `sit` through the events pid1 would feed.
    fn new(ctx: Ctx, sit: Sit) -> Rig {
        let mut sup = Supervisor::new();
        sup.add(unit_d()).unwrap();
        if sit != Sit::New {
            sup.add(unit_u(ctx)).unwrap();
        }
        sup.link().unwrap();
        let mut r = Rig {
            sup,
            ctx,
            now: 1_000,
            next_pid: 100,
        };
        assert_eq!(r.step(Event::Boot), vec![Action::Spawn(D)]);
        if matches!(sit, Sit::Waiting) {
            return r;
        }
        r.spawned(D);
        if sit == Sit::New || sit == Sit::Spawning {
            return r;
        }
        r.spawned(U);
        match sit {
            Sit::Starting => return r,
            Sit::Exited => {
                assert_eq!(ctx, Ctx::Oneshot);
                r.exit(U, 0);
                return r;
            }
            _ => {}
        }
        if ctx != Ctx::Oneshot {
            r.step(Event::Ready { unit: U });
        }
        match sit {
            Sit::Running => {}
            Sit::Stopping => {
                r.step(Event::Stop { unit: U });
            }
            Sit::Restarting => {
                r.step(Event::Restart {
                    unit: U,
                    by_hand: true,
                });
            }
            Sit::Leaving => {
                r.reload(vec![unit_d()]);
            }
            Sit::Stopped => {
                r.step(Event::Stop { unit: U });
                r.exit(U, 15);
            }
            Sit::Backoff | Sit::Failed => {
                r.exit(U, 1);
            }
            _ => unreachable!("{sit:?}"),
        }
        assert_eq!(r.sit(), sit, "{ctx:?}: reaching {sit:?}");
        r
    }

    fn sit(&self) -> Sit {
        let Some(s) = self.sup.slot(U) else {
            return Sit::New;
        };
        if s.retired == Retired::Free {
            return Sit::Gone;
        }
        match s.rt.phase {
            Phase::Waiting => Sit::Waiting,
            Phase::Starting if s.rt.pid == 0 => Sit::Spawning,
            Phase::Starting => Sit::Starting,
            Phase::Running => Sit::Running,
            Phase::Stopping if s.retired == Retired::Leaving => Sit::Leaving,
            Phase::Stopping if s.rt.restart_pending => Sit::Restarting,
            Phase::Stopping => Sit::Stopping,
            Phase::Stopped => Sit::Stopped,
            Phase::Exited => Sit::Exited,
            Phase::Backoff => Sit::Backoff,
            Phase::Failed => Sit::Failed,
        }
    }

    /// Feeds `on`; returns what it did to `u`.
    fn drive(&mut self, on: On) -> std::vec::Vec<Act> {
        let before = self.sup.slot(U).map(|s| (s.rt.pid, s.def.stop_signal));
        let shutting = self.sup.shutting_down();
        let out = match on {
            Boot => self.step(Event::Boot),
            Spawned => {
                let pid = self.pid();
                self.step(Event::spawned(U, pid))
            }
            SpawnError => self.step(Event::SpawnFailed { unit: U }),
            Ready => self.step(Event::Ready { unit: U }),
            ExitOk => self.exit(U, 0),
            ExitFail => self.exit(U, 1),
            RelaunchedOk | RelaunchedFail => self.step(Event::Relaunched {
                unit: U,
                exit: Exit::code(i32::from(on == RelaunchedFail)),
            }),
            Deadline => {
                let d = self.sup.slot(U).and_then(|s| s.rt.deadline);
                self.now = d.map_or(self.now + 3_600_000, |d| d.get());
                self.step(Event::Tick)
            }
            Start => self.step(Event::Start { unit: U }),
            Stop => self.step(Event::Stop { unit: U }),
            Restart => self.step(Event::Restart {
                unit: U,
                by_hand: true,
            }),
            ReloadChanged => {
                let mut u = unit_u(self.ctx);
                u.description.push_str("changed").unwrap();
                self.reload(vec![unit_d(), u])
            }
            ReloadRemoved => self.reload(vec![unit_d()]),
            ReloadAdded => self.reload(vec![unit_d(), unit_u(self.ctx)]),
            Shutdown => self.step(Event::Shutdown(ShutdownKind::Poweroff)),
            DepReady => self.step(Event::spawned(D, 7)),
            DepFails => {
                if self.sup.slot(D).unwrap().rt.pid == 0 {
                    self.step(Event::SpawnFailed { unit: D })
                } else {
                    self.exit(D, 1)
                }
            }
        };
        let mut acts: std::vec::Vec<Act> = out
            .iter()
            .filter_map(|a| match *a {
                Action::Spawn(U) => Some(Act::Spawn),
                Action::Signal { unit: U, pid, sig } => {
                    assert_eq!(Some((pid, sig)), before, "signal to the wrong process");
                    Some(Act::Signal)
                }
                Action::KillCgroup(U) => Some(Act::Kill),
                Action::Announce(U, n) => Some(Act::Announce(match n {
                    Note::Running { .. } => Running,
                    Note::Exited => Exited,
                    Note::Died {
                        restart_in: Some(_),
                        ..
                    } => DiedRestart,
                    Note::Died { .. } => Died,
                    Note::SpawnFailed {
                        restart_in: Some(_),
                    } => SpawnFailedRestart,
                    Note::SpawnFailed { .. } => Ann::SpawnFailed,
                    Note::StartTimeout {
                        restart_in: Some(_),
                    } => TimeoutRestart,
                    Note::StartTimeout { .. } => Timeout,
                    Note::StartLimit => StartLimit,
                    Note::DepFailed { .. } => Ann::DepFailed,
                    Note::Stopped => Stopped,
                    Note::WatchdogTimeout { .. } => panic!("no unit of the table has a watchdog"),
                    Note::DepMissing => panic!("no unit of the table names a unit not loaded"),
                })),
                Action::Finish(_) => Some(Act::Finish),
                _ => None,
            })
            .collect();
        if on != Shutdown && shutting.is_none() {
            if let Some(kind) = self.sup.shutting_down() {
                acts.push(Act::Shutdown(kind));
            }
        }
        acts
    }
}

/// The events that apply to `u` in `sit`.
fn events(sit: Sit) -> std::vec::Vec<On> {
    const COMMON: &[On] = &[
        Boot,
        Spawned,
        SpawnError,
        Ready,
        ExitOk,
        ExitFail,
        Deadline,
        Start,
        Stop,
        Restart,
        ReloadChanged,
        ReloadRemoved,
        Shutdown,
        DepFails,
    ];
    const WAITING: &[On] = &[
        Boot,
        Spawned,
        SpawnError,
        Ready,
        ExitOk,
        ExitFail,
        Deadline,
        Start,
        Stop,
        Restart,
        ReloadChanged,
        ReloadRemoved,
        Shutdown,
        DepReady,
        DepFails,
    ];
    let mut on = match sit {
        Sit::New => vec![ReloadAdded],
        Sit::Waiting => WAITING.to_vec(),
        _ => COMMON.to_vec(),
    };
    // Only a run the reaper started can be restarted in place: one
    // running, or being stopped when the service ended.
    if matches!(
        sit,
        Sit::Running | Sit::Stopping | Sit::Restarting | Sit::Leaving
    ) {
        on.extend([RelaunchedOk, RelaunchedFail]);
    }
    on
}

#[test]
fn every_row_holds() {
    for r in TABLE {
        for &from in r.from {
            for &on in r.on {
                let mut rig = Rig::new(r.ctx, from);
                let acts = rig.drive(on);
                let (want_sit, want_acts) = match r.to {
                    To::Same => (from, &[][..]),
                    To::Sit(s) => (s, r.acts),
                };
                assert_eq!(
                    (rig.sit(), acts.as_slice()),
                    (want_sit, want_acts),
                    "{:?} {from:?} + {on:?}",
                    r.ctx
                );
            }
        }
    }
}

/// Every phase meets every event that applies to it, once per unit kind.
#[test]
fn the_table_is_complete() {
    let mut cells: std::vec::Vec<(Ctx, Sit, On)> = vec![];
    for r in TABLE {
        for &from in r.from {
            for &on in r.on {
                assert!(
                    !cells.contains(&(r.ctx, from, on)),
                    "{:?} {from:?} + {on:?}: two rows",
                    r.ctx
                );
                assert!(
                    events(from).contains(&on),
                    "{from:?} + {on:?} does not apply"
                );
                cells.push((r.ctx, from, on));
            }
        }
    }
    // The phase each situation is, and the unit kind whose full row set
    // covers it.
    let full = [
        (Sit::Waiting, SVC),
        (Sit::Spawning, SVC),
        (Sit::Starting, SVC),
        (Sit::Running, SVC),
        (Sit::Stopping, SVC),
        (Sit::Restarting, SVC),
        (Sit::Stopped, SVC),
        (Sit::Exited, Ctx::Oneshot),
        (Sit::Backoff, SVC),
        (Sit::Failed, Ctx::NoRestart),
        (Sit::New, SVC),
    ];
    for (sit, ctx) in full {
        for on in events(sit) {
            assert!(
                cells.contains(&(ctx, sit, on)),
                "no row for {ctx:?} {sit:?} + {on:?}"
            );
        }
    }
    // Every phase is among them.
    for p in Phase::ALL {
        assert!(full
            .iter()
            .any(|(s, c)| Rig::new(*c, *s).sup.slot(U).unwrap().rt.phase == p));
    }
}

// ---------------------------------------------------------------------------
// The doc comment.

fn ctx_text(c: Ctx) -> &'static str {
    match c {
        Ctx::Service => "",
        Ctx::Started => "ready=started",
        Ctx::Oneshot => "oneshot",
        Ctx::NoRestart => "restart=never",
        Ctx::NoDelay => "restart_delay=0",
        Ctx::Limit(LimitAction::None) => "start limit",
        Ctx::Limit(LimitAction::Reboot) => "start limit, reboot",
        Ctx::Limit(LimitAction::Poweroff) => "start limit, poweroff",
    }
}

fn sit_text(s: Sit) -> &'static str {
    match s {
        Sit::New => "(new)",
        Sit::Waiting => "Waiting",
        Sit::Spawning => "Starting, no pid",
        Sit::Starting => "Starting",
        Sit::Running => "Running",
        Sit::Stopping => "Stopping",
        Sit::Restarting => "Stopping, restart",
        Sit::Leaving => "Stopping, removed",
        Sit::Stopped => "Stopped",
        Sit::Exited => "Exited",
        Sit::Backoff => "Backoff",
        Sit::Failed => "Failed",
        Sit::Gone => "(slot freed)",
    }
}

fn on_text(o: On) -> &'static str {
    match o {
        Boot => "Boot",
        Spawned => "Spawned",
        SpawnError => "SpawnFailed",
        Ready => "Ready",
        ExitOk => "exit 0",
        ExitFail => "exit 1",
        RelaunchedOk => "relaunched 0",
        RelaunchedFail => "relaunched 1",
        Deadline => "deadline",
        Start => "Start",
        Stop => "Stop",
        Restart => "Restart",
        ReloadChanged => "reload: changed",
        ReloadRemoved => "reload: removed",
        ReloadAdded => "reload: added",
        Shutdown => "Shutdown",
        DepReady => "dep ready",
        DepFails => "dep failed",
    }
}

fn act_text(a: Act) -> String {
    match a {
        Act::Spawn => "Spawn".into(),
        Act::Signal => "Signal(stop_signal)".into(),
        Act::Kill => "KillCgroup".into(),
        Act::Announce(n) => format!(
            "Announce({})",
            match n {
                Running => "Running",
                Exited => "Exited",
                DiedRestart => "Died, restart",
                Died => "Died",
                SpawnFailedRestart => "SpawnFailed, restart",
                Ann::SpawnFailed => "SpawnFailed",
                TimeoutRestart => "StartTimeout, restart",
                Timeout => "StartTimeout",
                StartLimit => "StartLimit",
                Ann::DepFailed => "DepFailed",
                Stopped => "Stopped",
            }
        ),
        Act::Finish => "Finish".into(),
        Act::Shutdown(k) => format!("{k:?} shutdown begins"),
    }
}

fn join<T: Copy>(xs: &[T], f: impl Fn(T) -> String) -> String {
    xs.iter()
        .map(|x| f(*x))
        .collect::<std::vec::Vec<_>>()
        .join(", ")
}

/// The table as the module doc shows it.
fn render() -> String {
    let mut t = String::new();
    t.push_str("//! | unit | phase | event | next | actions | note |\n");
    t.push_str("//! |------|-------|-------|------|---------|------|\n");
    for r in TABLE {
        let (next, acts) = match r.to {
            To::Same => ("=".to_string(), "(ignored)".to_string()),
            To::Sit(s) => (sit_text(s).to_string(), join(r.acts, act_text)),
        };
        writeln!(
            t,
            "//! | {} | {} | {} | {} | {} | {} |",
            ctx_text(r.ctx),
            join(r.from, |s| sit_text(s).to_string()),
            join(r.on, |o| on_text(o).to_string()),
            next,
            acts,
            r.why
        )
        .unwrap();
    }
    // The end of the table, so that a row dropped at the end is noticed.
    t.push_str("//!\n");
    t
}

#[test]
fn the_module_doc_shows_this_table() {
    let doc = include_str!("mod.rs");
    let table = render();
    assert!(
        doc.contains(&table),
        "the table in supervisor/mod.rs differs from TABLE; it should read:\n{table}"
    );
}
