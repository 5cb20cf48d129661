//! PID 1: boot as a short sequence of named steps, then one wait point.
//!
//! Every signal is blocked and read from a signalfd; children, timers,
//! unit output, readiness and `initctl` are all fds in one epoll set, so
//! PID 1 sleeps in `epoll_wait` until something happens and an idle system
//! wakes it zero times. Each wake-up turns into `supervisor::Event`s; the
//! resulting `Action`s are performed here, at the edge.
//!
//! By job: `boot` (the steps before the loop), `event_loop` (epoll, the
//! timer, what each fd's token means), `sources` (signals, reaping, unit
//! output, readiness: events from the outside), `executor` (performing the
//! supervisor's actions, preparing a spawn), `reload` (re-reading the unit
//! directory), `queries` (executing `initctl` commands the control
//! server decoded), `pressure` (PSI triggers: per-unit actions and
//! system-wide shedding), `watchdog` (feeding the hardware watchdog) and
//! `rare` (what few units ever have: a failed start's reason, a
//! reload's put-back).

mod announce;
mod boot;
mod control_socket;
mod event_loop;
mod executor;
mod gate;
mod handshake;
mod last_resort;
mod not_enforced;
mod pressure;
mod queries;
mod rare;
mod reexec;
pub use reexec::print_handshake;
mod reload;
mod report;
mod shutdown;
mod sources;
mod stopping;
mod watchdog;

use crate::cgroup::Cgroups;
use crate::control::Server as ControlServer;
use crate::log_ring::LogRing;
use crate::supervisor::{Actions, Event, Supervisor};
use crate::unit::UnitDef;
use crate::vocab::Millis;
use nix::sys::signalfd::SignalFd;
use rustix::fd::OwnedFd;
use std::collections::VecDeque;

/// Events queued while performing one batch of actions, for a table of
/// `units` units.
const fn event_queue(units: usize) -> usize {
    2 * units + 8
}

/// Per-unit resources PID 1 holds besides the supervisor's record.
struct Edge {
    /// Read end of the unit's stdout/stderr pipe (`output = log`).
    log_rd: Option<OwnedFd>,
    log: LogRing,
    /// Readiness: the notify pipe's read end or the sd_notify socket.
    notify: Option<OwnedFd>,
    /// The socket is out of the epoll set while a closer reads its head
    /// datagram, which carries fds (the closer's pid), or while it waits
    /// for one (`HELD`): 0 when it is not (`sources::on_notify`).
    notify_held: u32,
    /// The pipe of the closer reading it, in the epoll set until its end
    /// of file: the closer has taken the datagram (`sources`).
    notify_read: Option<OwnedFd>,
    /// `memory.events` oom_kill count when the unit was spawned, so an
    /// exit by SIGKILL can be told apart as an OOM kill.
    oom_kills_at_spawn: u64,
    oom_kills: u32,
    /// With a PID namespace: read end of the reaper's exit report.
    exit_report: Option<OwnedFd>,
    /// What few units ever have (a failed start's reason, a reload's
    /// put-back and rejection): allocated when the first of them comes,
    /// once (`set_last_error`, `rare`).
    rare: Option<Box<rare::Rare>>,
    /// The unit's cgroup exists (made or adopted by this PID 1, not yet
    /// removed), with the `limits_gen` of its slot when the limits were
    /// written into it (a changed one: write them again). No fd of its
    /// directory is kept between starts: every clone3 copies PID 1's whole
    /// fd table, so at 1,000 units a kept fd per unit is a thousand more
    /// for each start to copy and each exec to close.
    cgroup: Option<u32>,
    /// The PSI trigger on the cgroup's memory.pressure (`pressure_limit`).
    pressure: Option<(OwnedFd, crate::unit::PressureLimit)>,
    /// Times the trigger fired while the unit ran.
    pressure_events: u32,
    /// Stopped by system shedding; started again when pressure calms.
    shed: bool,
    /// Limit keys the unit sets that its cgroup cannot enforce.
    not_enforced: not_enforced::KeySet,
    /// The last reload's verdict on this unit, if it changed it.
    verdict: Option<gate::Verdict>,
    /// The unit's seccomp filter, built when the definition was loaded
    /// (never on the restart path). Boxed: a unit without one pays 8 B.
    seccomp: Option<Box<crate::sys::seccomp::Program>>,
    /// A child cloned and not yet exec'd (`handshake`).
    exec: Option<handshake::ExecWait>,
    /// Processes of a stop or kill still in the cgroup (`stopping`).
    drain: stopping::Drain,
}

impl Edge {
    /// A removed unit's edge once its slot is free: its output ring (up to
    /// `log_size`, which nothing can read any more), the read end of its
    /// output pipe (a process that escaped the unit kept filling it), its
    /// other fds, filter and rare texts. The cgroup and its drain stay
    /// until they are done.
    fn let_go(&mut self, ep: Option<&OwnedFd>) {
        event_loop::unwatch(ep, self.log_rd.take());
        if self.log.is_allocated() {
            self.log = LogRing::default();
        }
        event_loop::unwatch_notify(ep, self.notify.take());
        event_loop::unwatch(ep, self.notify_read.take());
        event_loop::unwatch(ep, self.exit_report.take());
        self.rare = None;
        self.seccomp = None;
        self.verdict = None;
        // A unit gone is not waiting for the calm to start it again.
        self.shed = false;
    }

    /// The pressure trigger dropped, out of the epoll set first.
    fn drop_pressure(&mut self, ep: Option<&OwnedFd>) {
        event_loop::unwatch(ep, self.pressure.take().map(|(fd, _)| fd));
    }

    /// The OOM kills counted so far and those `memory.events` shows over
    /// the baseline (`now`: its oom_kill count).
    fn oom_kills_with(&self, now: u64) -> u32 {
        let since = now.saturating_sub(self.oom_kills_at_spawn);
        self.oom_kills
            .saturating_add(u32::try_from(since).unwrap_or(u32::MAX))
    }

    /// Count the kills over the baseline and make `now` the baseline;
    /// true when there were any.
    fn count_oom_kills(&mut self, now: u64) -> bool {
        if now <= self.oom_kills_at_spawn {
            return false;
        }
        self.oom_kills = self.oom_kills_with(now);
        self.oom_kills_at_spawn = now;
        true
    }

    fn new(def: &UnitDef) -> Self {
        Edge {
            log_rd: None,
            log: LogRing::with_capacity(def.log_size as usize),
            notify: None,
            notify_held: 0,
            notify_read: None,
            oom_kills_at_spawn: 0,
            oom_kills: 0,
            exit_report: None,
            rare: None,
            cgroup: None,
            pressure: None,
            pressure_events: 0,
            shed: false,
            not_enforced: not_enforced::KeySet::EMPTY,
            verdict: None,
            seccomp: None,
            exec: None,
            drain: stopping::Drain::default(),
        }
        .with_filter(def)
    }

    /// Up to `reads` reads of the output pipe (1 KiB each) into the ring,
    /// until it has nothing more for now or is at its end.
    fn read_log(&mut self, reads: usize) -> LogRead {
        let mut done = LogRead::default();
        let mut buf = [0u8; 1024];
        for _ in 0..reads {
            let Some(fd) = self.log_rd.as_ref() else {
                break;
            };
            match rustix::io::read(fd, &mut buf) {
                Ok(0) => {
                    done.eof = true;
                    break;
                }
                Ok(n) => {
                    let had = self.log.is_allocated();
                    self.log
                        .push_in(buf.get(..n).unwrap_or(&[]), crate::sys::alloc::zeroed);
                    done.allocated |= !had && self.log.is_allocated();
                }
                Err(rustix::io::Errno::INTR) => continue,
                Err(_) => break,
            }
        }
        done
    }

    /// (Re)build the seccomp filter when `def`'s differs from the one
    /// held: at boot and on reload, where PID 1 may allocate.
    fn with_filter(mut self, def: &UnitDef) -> Self {
        self.refresh_filter(def);
        self
    }

    fn refresh_filter(&mut self, def: &UnitDef) {
        let held = self.seccomp.as_ref().map(|p| p.spec);
        if held.as_ref() == def.seccomp.as_deref() {
            return;
        }
        self.seccomp = def.seccomp.as_ref().and_then(|sc| {
            let p = crate::sys::seccomp::Program::build(sc);
            if p.is_none() {
                crate::error!(
                    "{}: seccomp: no system call table for this architecture",
                    def.name
                );
            }
            p.map(Box::new)
        });
    }
}

/// What `Edge::read_log` did.
#[derive(Default)]
struct LogRead {
    /// The ring's buffer was allocated (the unit's first output).
    allocated: bool,
    /// The pipe is at its end: every writer is gone.
    eof: bool,
}

/// Why a start or a re-exec failed, in a fixed buffer (cut when longer).
/// Smaller than `status NAME`'s reason: it is returned in `Result`s by
/// value, and kept in a unit's `Rare`.
type Why = heapless::String<WHY_MAX>;
const WHY_MAX: usize = 96;

/// An `Edge::cgroup` for a directory that is there but whose limits the
/// next start writes again (a failed start's, a stopped unit's after a
/// re-exec): a generation `limits_gen` only comes back to after 2^32
/// changes. Known, the directory is deleted with its unit.
fn stale_limits(limits_gen: u32) -> u32 {
    limits_gen.wrapping_sub(1)
}

fn why(args: core::fmt::Arguments<'_>) -> Why {
    crate::proto::formatted(args)
}

pub struct Pid1 {
    sup: Supervisor,
    /// One per supervisor slot, at the same index.
    edges: Vec<Edge>,
    cg: Option<Cgroups>,
    /// Without cgroups only (`cg` is None; else empty): each unit's last
    /// run's process group, which a kill of the unit signals once, after
    /// the supervisor has let go of the run's pid (a start timeout, an
    /// exit with children left).
    pgids: Vec<u32>,
    epoll: Option<OwnedFd>,
    sigfd: Option<SignalFd>,
    timer: Option<OwnedFd>,
    control: Option<ControlServer>,
    /// When the control socket is tried again (`bind_control`); 0 while
    /// it is bound.
    control_retry: Millis,
    units_dir: heapless::String<128>,
    stamp: bool,
    /// Sized by `fit_tables` (boot, reload), never grown by the loop.
    queue: VecDeque<Event>,
    /// This wake-up served a control request (see `run`).
    served_control: bool,
    /// Output rings, failure texts and pressure stops' reasons allocated
    /// by this wake-up (a unit's first output, its first failed start, its
    /// first pressure stop): once per unit.
    rings_allocated: u64,
    /// Polls of an emptied cgroup left to this wake-up's starts that make
    /// one anew (`clear_for_spawn`): a reload of many units' limits waits
    /// a bounded time in all, not one per unit.
    remake_polls: u8,
    /// Nanoseconds this wake-up's starts may still wait in place
    /// (`IN_PLACE_NS`).
    in_place_ns: u64,
    /// When a verdict's file work last timed out (`gate::DiskStall`).
    disk_stall: gate::DiskStall,
    /// The actions of one step, sized by `fit_tables`.
    actions: Actions,
    /// The actions of a health gate's revert, which happens while
    /// `actions` is being performed; sized once a reload puts units on
    /// probation.
    gate_actions: Actions,
    started_at: Millis,
    all_up_reported: bool,
    /// Units before this index had all settled at the last look
    /// (`all_settled`).
    all_up_from: usize,
    shed: Option<pressure::Shed>,
    /// The hardware watchdog (`wren.watchdog`) and when it is fed next;
    /// `None` once a critical unit failed (it is left to reset the board).
    watchdog: Option<crate::watchdog::Watchdog>,
    watchdog_next: Option<Millis>,
    /// A reload removed units that may still be stopping: their cgroups
    /// are removed once they have left the table (see `forget_cgroups`).
    removing: bool,
    /// Cgroups of removed units not empty yet (`orphan_cgroup`,
    /// `forget_cgroups`): killed, removed once empty, with the time of the
    /// first try.
    orphans: Vec<(crate::unit::Name, Millis)>,
    /// Re-execs this boot has seen, and how this PID 1 began.
    reexecs: u32,
    origin: crate::proto::Origin,
    /// This binary, as /proc/self/exe names it at start.
    exe: heapless::String<{ crate::vocab::PATH_BYTES }>,
    /// Followers handed over, until the control server is up.
    followers: Vec<(OwnedFd, crate::vocab::Name, u64)>,
    /// When a shutdown that began goes on to its final sequence anyway
    /// (`shutdown::shutdown_budget`).
    shutdown_deadline: Option<Millis>,
    /// Every unit stopped; the final sequence waits for their cgroups.
    finish_pending: Option<crate::vocab::ShutdownKind>,
    /// A reload's answer owes its verdict until then (`gate::owe_verdict`).
    verdict_owed_until: Millis,
    /// Slots on probation that the reload being made leaves as they are
    /// (`gate::keep_last_good`): its verdict does not wait for them.
    gate_unchanged: Vec<u16>,
    /// Edges with a handshake or a drain's kill pending (`handshake::Waits`).
    waits: handshake::Waits,
    /// The machine has one CPU: a restart's new process runs before
    /// PID 1's work on it (`handshake::wait_in_place`).
    one_cpu: bool,
}

impl Pid1 {
    /// Size the loop's buffers to the unit table: at boot, after a reload
    /// or a re-exec, where PID 1 may allocate; the loop only uses them.
    fn fit_tables(&mut self) {
        let n = self.sup.len();
        self.actions.fit(n);
        // Any unit on probation, one not waited for included (it gave up
        // on a dependency): started by hand later, it is judged, and its
        // revert's actions go into this buffer.
        if self.sup.slots().any(|s| s.rt.probation) {
            self.gate_actions.fit(n);
        }
        if self.cg.is_none() {
            self.pgids.resize(n, 0);
            // Handed over by a re-exec, whose state does not carry them.
            self.note_running_pgids();
        }
        let q = event_queue(n);
        self.queue.reserve_exact(q.saturating_sub(self.queue.len()));
        self.edges.shrink_to_fit();
        crate::spawn::raise_nofile(n);
        // The fds its units make PID 1 keep: what every start would copy
        // but for the trampoline (`spawn::set_kept_fds`).
        let kept = (0..u16::try_from(n).unwrap_or(u16::MAX))
            .filter_map(|u| self.sup.slot(u))
            .map(|s| {
                usize::from(s.def.output == crate::unit::Output::Log)
                    + usize::from(s.def.namespaces.has(crate::unit::Namespaces::PID))
                    + usize::from(s.def.ready != crate::unit::Ready::Started)
                    + usize::from(s.def.seldom.pressure_limit.is_some())
            })
            .sum();
        crate::spawn::set_kept_fds(kept);
    }

    /// Queue `ev` unless the queue is full (it is sized so it never is).
    fn queue_event(&mut self, ev: Event) -> bool {
        if self.queue.len() < self.queue.capacity() {
            self.queue.push_back(ev);
            true
        } else {
            false
        }
    }
}

/// Say so when a step's actions did not fit their buffer (its bound,
/// `max_actions`, is checked by the core's random walks): what was lost
/// is a start, a stop or a line, so the operator must hear of it.
fn refused(out: &Actions) {
    if out.refused() > 0 {
        crate::error!(
            "{} actions of one step did not fit their buffer and were dropped",
            out.refused()
        );
    }
}

/// Polls of 10 ms a wake-up may spend waiting for emptied cgroups to be
/// made anew (`Pid1::remake_polls`): 100 ms at most, however many units
/// a reload gave new limits.
const REMAKE_POLLS: u8 = 10;

/// How long a wake-up's starts may wait in place in all
/// (`handshake::wait_in_place`): 100 ms, two slow execs' EXEC_WAIT_NS,
/// however many units a crash wave restarts in it; the later starts'
/// handshakes go to the loop. The boot's starts, before the first
/// wake-up, are not counted (`Pid1::new`): their waits, every 16th
/// start's, pace the boot's use of the spawn slots.
const IN_PLACE_NS: u64 = 100_000_000;

/// Why a unit whose `after` names a unit a reload removed is not started.
const DEP_MISSING: &str = "an after unit is no longer loaded";

/// Milliseconds of CLOCK_MONOTONIC: the clock of every deadline.
/// Never 0: a timer is due at 1 ms at the earliest (`vocab::due`), so a
/// clock that could not be read (0) still finds a timer set for "now" due.
pub fn now() -> Millis {
    (now_ns() / 1_000_000).max(1)
}

/// CLOCK_MONOTONIC in nanoseconds (for `wren.stamp`).
pub fn now_ns() -> u64 {
    crate::sys::clock::now_ns()
}

/// Runs `f` in a frame of its own. Every page of stack PID 1 touches
/// stays resident, and the compiler, inlining every callee into one
/// function, gives that function a frame as large as all of their locals
/// together (one such `run` was 29 KiB, `dispatch` 25 KiB): apart, a path
/// costs the frames along it only.
#[inline(never)]
pub(crate) fn apart<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// Boots (see `boot`), then serves the loop for ever.
pub fn run() -> ! {
    let mut p = apart(begin);
    let stack = crate::sys::stack::Stack::find();
    // Boot's frames went deeper than a wake-up's do: their pages back.
    // So after a control request (`reload` or `cat` build a 16 KiB text
    // and more on the stack), not after every wake-up: the pages a
    // wake-up touches would fault in again each time.
    let mut deep = true;
    loop {
        if deep {
            let _ = stack.as_ref().and_then(|s| s.release_unused());
        }
        p.wait_once();
        deep = std::mem::take(&mut p.served_control);
    }
}

impl Pid1 {
    /// A PID 1 with no unit, no loop and no fds yet (`begin`; tests).
    fn new(cg: Option<Cgroups>, started_at: Millis, stamp: bool) -> Pid1 {
        Pid1 {
            sup: Supervisor::new(),
            edges: Vec::new(),
            pgids: Vec::new(),
            cg,
            epoll: None,
            sigfd: None,
            timer: None,
            control: None,
            control_retry: 0,
            queue: VecDeque::new(),
            rings_allocated: 0,
            remake_polls: REMAKE_POLLS,
            in_place_ns: u64::MAX,
            disk_stall: gate::DiskStall::default(),
            served_control: false,
            actions: Actions::default(),
            gate_actions: Actions::default(),
            started_at,
            all_up_reported: false,
            all_up_from: 0,
            units_dir: heapless::String::new(),
            stamp,
            shed: None,
            watchdog: None,
            watchdog_next: None,
            removing: false,
            orphans: Vec::new(),
            reexecs: 0,
            origin: crate::proto::Origin::Boot,
            exe: crate::sys::file::exe_path(),
            followers: Vec::new(),
            shutdown_deadline: None,
            finish_pending: None,
            verdict_owed_until: 0,
            gate_unchanged: Vec::new(),
            waits: handshake::Waits::default(),
            one_cpu: crate::sys::sched::one_cpu(),
        }
    }
}

/// Every step before the loop: the table, the fds, the first starts.
fn begin() -> Box<Pid1> {
    let started_at = now();
    let handover = reexec::handover_fd();
    if handover.is_none() {
        crate::sys::fd::cloexec_inherited();
    }
    let (opts, mask, cg) = boot::early(handover.is_some());
    crate::spawn::reaper::open_exe();
    crate::spawn::open_null();
    // Step 6: units.
    let mut p = Box::new(Pid1::new(cg, started_at, opts.stamp));
    let resumed = handover.is_some();
    match handover {
        Some(fd) => p.resume(fd, &opts),
        None => p.load_units(&opts),
    }
    // From the first PID 1's start, which a re-exec hands over; the
    // kernel command line is the same for every PID 1 of a boot.
    p.sup.hold_limit_actions(p.started_at, opts.rescue);
    if !resumed {
        p.report_kernel_gaps();
    }
    p.fit_tables();
    p.apply_protection();
    // Step 7: the wait point.
    if let Err(e) = p.setup_loop(&mask) {
        crate::error!("event loop: {e}; no unit runs: the rescue shell only");
        // No unit runs from here on: a board asked to be watched is armed
        // and never fed again, so it resets (and may boot better) instead
        // of sitting without its units.
        p.start_watchdog(opts.watchdog.as_ref(), resumed);
        if let Some(w) = p.watchdog.as_ref() {
            crate::error!(
                "watchdog: not fed from here on; the board resets within {} s",
                w.timeout_s
            );
        }
        last_resort::last_resort(p.watchdog.take());
    }
    if let Some(limit) = opts.shed {
        p.watch_system_pressure(limit);
    }
    p.start_watchdog(opts.watchdog.as_ref(), resumed);
    if resumed {
        p.rewatch();
    }
    p.feed(Event::Boot);
    if resumed {
        // Units that ended during the hand-over are zombies by now.
        p.reap(None);
    }
    p.arm_timer();
    p
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod walk_tests;
