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
            waits: handshake::Waits::default(),
            one_cpu: crate::sys::sched::one_cpu(),
        }
    }
}

/// Every step before the loop: the table, the fds, the first starts.
fn begin() -> Box<Pid1> {
    let started_at = now();
    let handover = reexec::handover_fd();
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
mod tests {
    use super::*;

    /// A unit that never failed holds no buffer for a reason; its first
    /// failure allocates one (said to the caller, which counts it), later
    /// ones reuse it.
    #[test]
    fn the_failure_text_is_allocated_at_the_first_failure_only() {
        let mut e = Edge::new(&UnitDef::with_defaults("web"));
        assert!(e.rare.is_none());
        assert_eq!(e.last_error(), "");
        assert!(!e.set_last_error(Why::new()), "no reason: nothing held");
        assert!(e.rare.is_none());
        assert!(e.set_last_error(why(format_args!("exec: ENOENT"))));
        assert_eq!(e.last_error(), "exec: ENOENT");
        assert!(!e.set_last_error(why(format_args!("cgroup: EBUSY"))));
        assert_eq!(e.last_error(), "cgroup: EBUSY");
        assert!(!e.set_last_error(Why::new()));
        assert_eq!(e.last_error(), "");
        // Memory short (the start may have failed for want of it): the
        // reason is not kept, and PID 1 goes on. So for a pressure stop.
        let mut e = Edge::new(&UnitDef::with_defaults("web"));
        let short = |e: &mut Edge| e.set_last_error(why(format_args!("clone3: ENOMEM")));
        assert!(crate::sys::alloc::short_of_memory(16, || short(&mut e)));
        assert_eq!(e.last_error(), "");
        let stop = |e: &mut Edge| e.set_pressure_stopped(true);
        assert!(crate::sys::alloc::short_of_memory(16, || stop(&mut e)));
        assert!(!e.pressure_stopped());
        assert!(e.set_pressure_stopped(true), "said, once");
        assert!(e.pressure_stopped());
        assert!(!e.set_pressure_stopped(true));
    }

    /// An edge a unit beside the table's slot: docs/architecture.md,
    /// "Memory", says what it holds.
    #[test]
    fn an_edge_stays_small() {
        assert!(core::mem::size_of::<Edge>() <= 152);
        assert!(core::mem::size_of::<stopping::Drain>() <= 32);
    }

    /// A reload's put-back and rejection share the failure text's box; a
    /// verdict of good leaves it only if the unit has failed since.
    #[test]
    fn the_rare_box_goes_once_it_holds_nothing() {
        let def = UnitDef::with_defaults("web");
        let mut e = Edge::new(&def);
        e.rare().last_good = Some(Box::new(def.clone()));
        e.rare().rejected = Some("no".into());
        e.clear_gate(false);
        assert_eq!(e.rejected(), None);
        assert!(e.last_good().is_some(), "on probation: kept");
        e.clear_gate(true);
        assert!(e.rare.is_none(), "judged good, never failed: nothing held");
        e.rare().last_good = Some(Box::new(def));
        assert!(!e.set_last_error(why(format_args!("exec: ENOENT"))));
        e.clear_gate(true);
        assert_eq!(e.last_error(), "exec: ENOENT", "a failure's text stays");
        assert!(e.take_last_good().is_none());
    }

    /// A notify fd is read as what it is: a run's `ready = notify` pipe,
    /// its writers gone, is closed though a reload has made the unit
    /// `sd_notify` meanwhile (its end of file read as an empty datagram
    /// kept it in epoll, ready at every wake-up).
    #[test]
    fn a_notify_pipe_is_a_pipe_whatever_the_definition_says_now() {
        let mut p = with_web();
        p.fit_tables();
        step(&mut p, 0, Event::Boot);
        let mut sd = UnitDef::with_defaults("web");
        sd.exec.push("/bin/true").unwrap();
        sd.ready = crate::unit::Ready::SdNotify;
        let mut out = Actions::default();
        out.fit(4);
        p.sup
            .reload(1, &mut vec![sd].into_iter(), &|_| false, &mut out);
        let (rd, wr) = rustix::pipe::pipe_with(
            rustix::pipe::PipeFlags::NONBLOCK | rustix::pipe::PipeFlags::CLOEXEC,
        )
        .unwrap();
        drop(wr);
        p.edges[0].notify = Some(rd);
        p.on_notify(0);
        assert!(p.edges[0].notify.is_none(), "the ended pipe is kept");
    }

    /// A `web` of `ready = sd_notify` spawned as pid `NO_PID`, its notify
    /// socket one end of a datagram pair (the other returned).
    fn sd_notify_web(start_timeout: u64) -> (Pid1, OwnedFd) {
        use rustix::net::{socketpair, AddressFamily, SocketFlags, SocketType};
        let mut d = UnitDef::with_defaults("web");
        d.exec.push("/bin/true").unwrap();
        d.ready = crate::unit::Ready::SdNotify;
        d.start_timeout = start_timeout;
        let mut p = Pid1::new(None, 0, false);
        p.add_unit(d);
        p.sup.link().unwrap();
        p.fit_tables();
        step(&mut p, 0, Event::Boot);
        step(&mut p, 1, Event::spawned(0, NO_PID));
        let flags = SocketFlags::NONBLOCK | SocketFlags::CLOEXEC;
        let (ours, theirs) =
            socketpair(AddressFamily::UNIX, SocketType::DGRAM, flags, None).unwrap();
        p.edges[0].notify = Some(ours);
        (p, theirs)
    }

    /// An sd_notify datagram is read whole up to systemd's 4096 bytes:
    /// READY=1 after a long STATUS= line counts (a 512-byte read cut it
    /// off).
    #[test]
    fn ready_after_a_long_status_line_counts() {
        let (mut p, theirs) = sd_notify_web(0);
        let mut msg = b"STATUS=".to_vec();
        msg.resize(3000, b'x');
        msg.extend_from_slice(b"\nREADY=1");
        assert_eq!(rustix::io::write(&theirs, &msg).unwrap(), msg.len());
        p.on_notify(0);
        p.run_queue();
        assert_eq!(
            p.sup.slot(0).unwrap().rt.phase,
            crate::supervisor::Phase::Running
        );
    }

    /// A unit that passes with READY=1 a socket holding a lingering one
    /// four unix sockets down (20 s in PID 1's read without a closer)
    /// and closes its own copy: its bytes are peeked, the unit is ready,
    /// and a closer reads the datagram (`sys::passed`); the socket is out
    /// of the epoll set until that closer's pipe says it has it, then the
    /// next datagram is read while its close waits. With every place taken
    /// by closers that wait, the
    /// next datagram with fds waits, unread; PID 1's timer kills them once
    /// they have run their grace, and their reaps put the socket back.
    /// In a process of its own: the closers' places are global, and it
    /// reaps.
    #[test]
    fn an_fd_passed_with_ready_does_not_hold_the_read() {
        use crate::sys::passed::{recv_dgram, Dgram};
        use crate::testutil::{dgram_pair, nested, send_with_fd};
        use rustix::event::epoll;
        use rustix::fd::AsFd;
        use std::time::{Duration, Instant};
        crate::testutil::alone!(an_fd_passed_with_ready_does_not_hold_the_read);
        crate::sys::passed::reaps_itself();
        let (mut p, theirs) = sd_notify_web(0);
        let ep = epoll::create(epoll::CreateFlags::CLOEXEC).unwrap();
        let ours = p.edges[0].notify.take().unwrap();
        p.edges[0].notify = event_loop::watch(&ep, ours, event_loop::TOKEN_NOTIFY);
        p.epoll = Some(ep);
        // The tokens epoll has ready now.
        let ready = |p: &Pid1| {
            let mut buf = [core::mem::MaybeUninit::<epoll::Event>::uninit(); 4];
            let zero = rustix::event::Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            let (ready, _) = epoll::wait(p.epoll.as_ref().unwrap(), &mut buf, Some(&zero)).unwrap();
            ready.iter().map(|e| e.data.u64()).collect::<Vec<_>>()
        };
        let left = |p: &Pid1| {
            let fd = p.edges[0].notify.as_ref().unwrap();
            let flags = rustix::net::RecvFlags::PEEK | rustix::net::RecvFlags::DONTWAIT;
            rustix::net::recv(fd, &mut [0u8; 16], flags).map(|(n, _)| n)
        };
        let ended = |pid: u32, what: &str| {
            assert!(crate::testutil::ended_in(pid, 10), "{what} {pid} runs on");
        };
        let (c, server) = nested(4);
        send_with_fd(theirs.as_fd(), b"READY=1", c.as_fd());
        drop(c);
        let t = Instant::now();
        p.on_notify(0);
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        p.run_queue();
        assert_eq!(
            p.sup.slot(0).unwrap().rt.phase,
            crate::supervisor::Phase::Running
        );
        let closer = p.edges[0].notify_held;
        assert!(closer != 0, "held while a closer reads");
        rustix::net::send(&theirs, b"STATUS=x", rustix::net::SendFlags::empty()).unwrap();
        // The closer's pipe says it has the datagram; its close waits on.
        let said = crate::testutil::poll_in(p.edges[0].notify_read.as_ref().unwrap(), 10);
        assert!(!said.is_empty(), "the closer's pipe at its end");
        assert_eq!(ready(&p), [event_loop::TOKEN_NOTIFY_READ], "the socket out");
        p.on_notify(0);
        assert_eq!(
            left(&p),
            Ok(8),
            "not read before the closer has its datagram"
        );
        p.dispatch(event_loop::TOKEN_NOTIFY_READ, false);
        assert_eq!(p.edges[0].notify_held, 0);
        assert!(p.edges[0].notify_read.is_none());
        assert_eq!(ready(&p), [event_loop::TOKEN_NOTIFY], "the socket back");
        p.on_notify(0);
        assert_eq!(left(&p), Err(rustix::io::Errno::AGAIN));
        assert!(crate::sys::raw::running_child(closer), "its close waits");
        drop(server);
        ended(closer, "the first closer");
        p.reap(Some(closer));
        assert_eq!(p.edges[0].notify_held, 0);
        // Every place taken by a closer that waits on a linger.
        let mut busy = Vec::new();
        for _ in 0..4 {
            let (a, b) = dgram_pair();
            let (c, server) = nested(4);
            send_with_fd(a.as_fd(), b"x", c.as_fd());
            let Ok(Dgram::Reading { bytes: 1, pid, .. }) = recv_dgram(b.as_fd(), &mut [0u8; 4])
            else {
                panic!("a closer for each");
            };
            busy.push((pid, a, b, server));
        }
        let (_r, w) = rustix::pipe::pipe().unwrap();
        send_with_fd(theirs.as_fd(), b"BARRIER=1", w.as_fd());
        drop(w);
        p.on_notify(0);
        let held = p.edges[0].notify_held;
        assert!(
            held != 0 && busy.iter().all(|b| b.0 != held),
            "waits for a place"
        );
        assert!(p.edges[0].notify_read.is_none());
        assert_eq!(ready(&p), Vec::<u64>::new());
        let timer = rustix::time::timerfd_create(
            rustix::time::TimerfdClockId::Monotonic,
            rustix::time::TimerfdFlags::CLOEXEC | rustix::time::TimerfdFlags::NONBLOCK,
        )
        .unwrap();
        p.timer = Some(timer);
        p.arm_timer();
        let armed = rustix::time::timerfd_gettime(p.timer.as_ref().unwrap()).unwrap();
        let armed = Duration::new(armed.it_value.tv_sec as u64, armed.it_value.tv_nsec as u32);
        let at = crate::sys::passed::due().expect("the closers' grace is due");
        let until = Duration::from_millis(at.saturating_sub(now()) + 1);
        assert!(
            armed > Duration::ZERO && armed <= until,
            "the timer at the closers' grace ({until:?}) or before: {armed:?}"
        );
        assert!(
            busy.iter().all(|b| crate::sys::raw::running_child(b.0)),
            "spared"
        );
        std::thread::sleep(until + Duration::from_millis(1));
        p.dispatch(event_loop::TOKEN_TIMER, false);
        // Made one after the other, each is killed at its own grace, the
        // loop's timer armed again for the next.
        while let Some(at) = crate::sys::passed::due() {
            std::thread::sleep(Duration::from_millis(at.saturating_sub(now()) + 1));
            p.dispatch(event_loop::TOKEN_TIMER, false);
        }
        for b in &busy {
            ended(b.0, "a killed closer");
        }
        p.reap(None);
        assert_eq!(p.edges[0].notify_held, 0);
        assert_eq!(
            ready(&p),
            [event_loop::TOKEN_NOTIFY],
            "in the epoll set again"
        );
        p.on_notify(0);
        let closer = p.edges[0].notify_held;
        assert!(closer != 0, "a closer reads it now");
        ended(closer, "the pipe's closer");
        p.reap(Some(closer));
        assert_eq!(p.edges[0].notify_held, 0);
        assert!(p.edges[0].notify_read.is_none());
        assert_eq!(left(&p), Err(rustix::io::Errno::AGAIN));
    }

    /// A run killed at its start timeout is let go of: its notify socket
    /// goes with it, not at the unit's next start (which may never come).
    #[test]
    fn a_start_timeout_closes_the_runs_notify_socket() {
        let (mut p, _theirs) = sd_notify_web(100);
        let acts = step(&mut p, 200, Event::Tick);
        assert!(
            acts.iter().any(|a| matches!(
                a,
                crate::supervisor::Action::Announce(
                    0,
                    crate::supervisor::Note::StartTimeout { .. }
                )
            )),
            "{acts:?}"
        );
        for a in acts {
            if !matches!(a, crate::supervisor::Action::KillCgroup(_)) {
                p.perform(a);
            }
        }
        assert!(
            p.edges[0].notify.is_none(),
            "the killed run's socket is kept"
        );
    }

    /// A run's output is read to the last byte the pipe holds when asked
    /// for enough reads (the drain when the next run takes its place), a
    /// budget's worth otherwise; the end of file is said once every writer
    /// is gone.
    #[test]
    fn the_output_pipe_is_read_into_the_ring_to_its_last_line() {
        let mut e = Edge::new(&UnitDef::with_defaults("web"));
        let (rd, wr) = rustix::pipe::pipe_with(
            rustix::pipe::PipeFlags::NONBLOCK | rustix::pipe::PipeFlags::CLOEXEC,
        )
        .unwrap();
        e.log_rd = Some(rd);
        let mut out = vec![b'x'; 20_000];
        out.extend_from_slice(b"\nweb: dying\n");
        assert_eq!(rustix::io::write(&wr, &out).unwrap(), out.len());
        let r = e.read_log(16);
        assert!(r.allocated && !r.eof);
        let tail = |e: &Edge| {
            let mut b = [0u8; 12];
            let n = e.log.contents().copy_tail(&mut b);
            String::from_utf8_lossy(&b[..n]).into_owned()
        };
        assert_ne!(tail(&e), "\nweb: dying\n", "16 reads took it all");
        let r = e.read_log(super::sources::DRAIN_READS);
        assert!(!r.allocated && !r.eof);
        assert_eq!(tail(&e), "\nweb: dying\n");
        drop(wr);
        // Another test's fork may hold a copy of `wr` until its exec.
        crate::testutil::poll_in(e.log_rd.as_ref().unwrap(), 2);
        assert!(e.read_log(1).eof);
    }

    /// A unit's first line goes into a ring whose buffer the allocator
    /// handed over zeroed, not one written byte by byte: of a 40 MiB ring
    /// (over glibc's largest mmap threshold, so fresh pages here as a
    /// 1 MiB ring's are under musl), the page the line went to is in
    /// memory, not the whole buffer. Refused, the buffer is no abort: the
    /// line is counted as lost.
    #[test]
    fn a_rings_first_line_takes_a_page_not_the_whole_buffer() {
        let mut d = UnitDef::with_defaults("web");
        d.log_size = 40 << 20;
        let line = b"web: up\n";
        let piped = |e: &mut Edge| {
            let flags = rustix::pipe::PipeFlags::NONBLOCK;
            let (rd, wr) = rustix::pipe::pipe_with(flags).unwrap();
            assert_eq!(rustix::io::write(&wr, line).unwrap(), line.len());
            e.log_rd = Some(rd);
        };
        let mut e = Edge::new(&d);
        piped(&mut e);
        assert!(e.read_log(1).allocated);
        let held = e.log.contents();
        assert_eq!(held.first, line);
        let pages = crate::sys::alloc::resident_pages(held.first.as_ptr(), e.log.capacity());
        assert!(pages <= 2, "{pages} pages of the ring in memory");

        let mut short = Edge::new(&d);
        piped(&mut short);
        let r = crate::sys::alloc::short_of_memory(1 << 20, || short.read_log(1));
        assert!(!r.allocated && !short.log.is_allocated());
        assert_eq!(short.log.since(0).missed, line.len() as u64);
    }

    /// One read of the signalfd takes up to four signals and says whether
    /// more may wait: a wake-up for one signal costs one read.
    #[test]
    fn one_read_of_the_signalfd_takes_what_is_pending() {
        use super::sources::{read_signals, SIGNALS_PER_READ};
        use nix::sys::signal::{raise, SigSet, Signal};
        use nix::sys::signalfd::SfdFlags;
        use rustix::fd::AsFd;
        // A thread of its own: the mask and the pending signals are its.
        std::thread::spawn(|| {
            let all = [
                Signal::SIGUSR1,
                Signal::SIGUSR2,
                Signal::SIGWINCH,
                Signal::SIGURG,
                Signal::SIGPWR,
            ];
            let mut mask = SigSet::empty();
            all.iter().for_each(|&s| mask.add(s));
            mask.thread_block().unwrap();
            let sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK).unwrap();
            let raise = |sigs: &[Signal]| {
                for &s in sigs {
                    raise(s).unwrap(); // to this thread
                }
            };
            let mut got = [(0, 0); SIGNALS_PER_READ];
            raise(&all[..1]);
            assert_eq!(read_signals(sfd.as_fd(), &mut got), (1, false));
            // raise(3) is a tgkill of this thread: the sender is this
            // process.
            assert_eq!(got[0], (Signal::SIGUSR1 as i32, std::process::id()));
            raise(&all);
            assert_eq!(read_signals(sfd.as_fd(), &mut got), (4, true));
            let mut seen: Vec<i32> = got.iter().map(|&(s, _)| s).collect();
            assert_eq!(read_signals(sfd.as_fd(), &mut got), (1, false));
            seen.push(got[0].0);
            seen.sort();
            let mut want: Vec<i32> = all.iter().map(|&s| s as i32).collect();
            want.sort();
            assert_eq!(seen, want);
            assert_eq!(read_signals(sfd.as_fd(), &mut got), (0, false), "none left");
        })
        .join()
        .unwrap();
    }

    /// A pid no process can have (above the kernel's PID_MAX_LIMIT): what
    /// signals it reaches no one, whatever the host's pid_max.
    pub(super) const NO_PID: u32 = 4_194_305;

    /// A PID 1 without a loop holding one service, `web`, stepped by hand.
    pub(super) fn with_web() -> Pid1 {
        let mut p = Pid1::new(None, 0, false);
        let mut d = UnitDef::with_defaults("web");
        d.exec.push("/bin/true").unwrap();
        p.add_unit(d);
        p.sup.link().unwrap();
        p
    }

    /// A PID 1 without a loop holding `units` (name, unit file text),
    /// linked, its tables fitted.
    pub(super) fn pid1_with(units: &[(&str, &str)]) -> Pid1 {
        let mut p = Pid1::new(None, 0, false);
        for (name, text) in units {
            p.add_unit(crate::unit::parse(name, text).unwrap());
        }
        p.sup.link().unwrap();
        p.fit_tables();
        p
    }

    /// `p` with a watchdog on a memory file: its size counts the feeds.
    pub(super) fn watched(p: &mut Pid1) -> rustix::fd::OwnedFd {
        let dev = rustix::fs::memfd_create("wd", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        let fed = rustix::io::dup(&dev).unwrap();
        p.watchdog = Some(crate::watchdog::Watchdog::on(dev, 15));
        fed
    }

    /// `with_web` with a temp dir as its cgroup root and an epoll set, its
    /// tables fitted.
    pub(super) fn with_cgroups(root: &crate::testutil::TempDir) -> Pid1 {
        let mut p = with_web();
        p.cg = Some(crate::cgroup::Cgroups::open(root.path()).unwrap());
        let ep = rustix::event::epoll::CreateFlags::CLOEXEC;
        p.epoll = Some(rustix::event::epoll::create(ep).unwrap());
        p.fit_tables();
        p
    }

    /// A real start's exec handshake, taken as the loop would: PID 1
    /// waits 50 ms in place for the exec, which a loaded host can miss
    /// (the unit is then still `starting`). Gives up after 10 s.
    pub(super) fn until_execd(p: &mut Pid1, u: u16) {
        let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while p.exec_pid(u).is_some() && std::time::Instant::now() < end {
            std::thread::sleep(std::time::Duration::from_millis(5));
            p.on_exec(u);
        }
    }

    pub(super) fn step(p: &mut Pid1, t: Millis, ev: Event) -> Vec<crate::supervisor::Action> {
        let mut out = Actions::default();
        out.fit(p.sup.len());
        p.sup.step(t, ev, &mut out);
        out.as_slice().to_vec()
    }

    /// What the re-exec state does not carry refuses a re-exec: a start
    /// between its clone and exec, a stop's processes still draining.
    #[test]
    fn a_reexec_is_refused_while_a_start_or_a_stop_is_under_way() {
        let mut p = with_web();
        assert_eq!(p.in_between(), None);
        use rustix::event::epoll;
        p.epoll = Some(epoll::create(epoll::CreateFlags::CLOEXEC).unwrap());
        let flags = rustix::pipe::PipeFlags::CLOEXEC | rustix::pipe::PipeFlags::NONBLOCK;
        let (status, _w) = rustix::pipe::pipe_with(flags).unwrap();
        p.await_exec(0, crate::spawn::Pending { pid: 0, status });
        let (name, what) = p.in_between().unwrap();
        assert_eq!(name, "web");
        assert!(what.starts_with("starting"), "{what}");

        // Stopped, its main process gone, processes left in its cgroup:
        // their kill is due at the end of stop_timeout.
        let root = crate::testutil::TempDir::new("pid1-reexec-drain");
        root.file("units/web/cgroup.events", "populated 1\nfrozen 0\n");
        let mut p = with_web();
        p.cg = Some(crate::cgroup::Cgroups::open(root.path()).unwrap());
        p.signal_unit(0, 0, 15);
        p.kill_cgroup(0);
        let (_, what) = p.in_between().unwrap();
        assert!(what.starts_with("stopping"), "{what}");
        root.file("units/web/cgroup.events", "populated 0\nfrozen 0\n");
        p.check_empty(0);
        assert_eq!(p.in_between(), None);
    }

    /// Without cgroups a kill signals the run's process group even after
    /// the supervisor let go of its pid: a start timeout's kill would
    /// otherwise leave the run going beside the next. Also for a run a
    /// re-exec handed over (the state does not carry the group).
    #[test]
    fn without_cgroups_a_start_timeout_kills_the_runs_process_group() {
        for reexec in [false, true] {
            start_timeout_without_cgroups(reexec);
        }
    }

    fn start_timeout_without_cgroups(reexec: bool) {
        use crate::supervisor::Action;
        use std::os::unix::process::CommandExt;
        let mut child = std::process::Command::new("sleep")
            .arg("60")
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = child.id();
        let mut d = UnitDef::with_defaults("web");
        d.exec.push("/bin/sleep").unwrap();
        d.ready = crate::unit::Ready::Notify;
        d.start_timeout = 100;
        let mut p = Pid1::new(None, 0, false);
        p.add_unit(d);
        p.sup.link().unwrap();
        assert!(p.cg.is_none());
        p.fit_tables();
        assert_eq!(step(&mut p, 0, Event::Boot), [Action::Spawn(0)]);
        // As `start` notes it after the clone.
        p.note_pgid(0, pid);
        step(&mut p, 1, Event::spawned(0, pid));
        if reexec {
            let state = p.write_state(false).unwrap();
            p = Pid1::new(None, 0, false);
            p.resume(state, &crate::boot::cmdline::Options::default());
            p.fit_tables();
            assert_eq!(p.sup.slot(0).unwrap().rt.pid, pid);
        }
        let acts = step(&mut p, 200, Event::Tick);
        assert!(acts.contains(&Action::KillCgroup(0)), "{acts:?}");
        assert_eq!(p.sup.slot(0).unwrap().rt.pid, 0);
        for a in acts {
            if a == Action::KillCgroup(0) {
                p.perform(a);
            }
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("the run was not killed (after a re-exec: {reexec})");
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9));
    }

    /// Units shed before a re-exec come back after a calm period counted
    /// from the new PID 1's start, not only after pressure that fires
    /// again.
    #[test]
    fn units_shed_before_a_reexec_are_started_after_a_calm() {
        use rustix::event::epoll;
        let limit = crate::unit::PressureLimit {
            percent: 50,
            window: 1000,
        };
        let mut p = with_web();
        p.epoll = Some(epoll::create(epoll::CreateFlags::CLOEXEC).unwrap());
        p.watch_system_pressure(limit);
        assert_eq!(p.shed.as_ref().unwrap().calm_at, None, "nothing shed");
        let mut p = with_web();
        p.epoll = Some(epoll::create(epoll::CreateFlags::CLOEXEC).unwrap());
        p.edges[0].shed = true;
        let t = now();
        p.watch_system_pressure(limit);
        let shed = p.shed.as_ref().unwrap();
        let calm = shed.calm_at.unwrap();
        assert!(calm >= t + shed.calm() && calm <= now() + shed.calm());
    }

    /// A child that ends while still in its exec handshake (exec'd and
    /// killed at once, its pipe not yet served): its unit is known when
    /// its exit is, so that the exit gets a run's checks.
    #[test]
    fn a_run_reaped_in_its_handshake_is_its_units() {
        use rustix::event::epoll;
        let mut p = with_web();
        p.fit_tables();
        p.epoll = Some(epoll::create(epoll::CreateFlags::CLOEXEC).unwrap());
        step(&mut p, 0, Event::Boot);
        let flags = rustix::pipe::PipeFlags::CLOEXEC | rustix::pipe::PipeFlags::NONBLOCK;
        let (status, w) = rustix::pipe::pipe_with(flags).unwrap();
        p.await_exec(0, crate::spawn::Pending { pid: 4242, status });
        assert_eq!(p.sup.unit_of_pid(4242), None);
        // Exec'd (the close-on-exec end closed), then reaped.
        drop(w);
        assert_eq!(p.reaped_unit(4242), Some(0));
        assert_eq!(p.sup.slot(0).unwrap().rt.pid, 4242);
        assert_eq!(p.reaped_unit(4343), None);
    }

    /// A changed unit that gave up on its failed dependency is not waited
    /// for, but still on probation: started by hand later, it is judged,
    /// and a bad verdict's revert needs the gate's buffer.
    #[test]
    fn the_gate_buffer_is_sized_for_a_unit_on_probation_not_waited_for() {
        let mut d = UnitDef::with_defaults("d");
        d.exec.push("/bin/true").unwrap();
        d.kind = crate::unit::Kind::Oneshot;
        d.restart = crate::unit::Restart::Never;
        let mut x = UnitDef::with_defaults("x");
        x.exec.push("/bin/true").unwrap();
        x.after.push("d").unwrap();
        let mut p = Pid1::new(None, 0, false);
        p.add_unit(d.clone());
        p.add_unit(x.clone());
        p.sup.link().unwrap();
        p.fit_tables();
        step(&mut p, 0, Event::Boot);
        step(&mut p, 1, Event::spawned(0, 100));
        step(
            &mut p,
            2,
            Event::Exited {
                pid: 100,
                exit: crate::vocab::Exit::Code(1),
            },
        );
        x.description.push_str("v2").unwrap();
        let mut out = Actions::default();
        out.fit(2);
        p.sup
            .reload(3, &mut vec![d, x].into_iter(), &|_| false, &mut out);
        assert!(!p.sup.on_probation());
        assert!(p.sup.slot(1).unwrap().rt.probation);
        p.fit_tables();
        assert!(p.gate_actions.capacity() > 0);
    }

    /// A reload in a shutdown is refused, not answered with a summary of
    /// nothing done.
    #[test]
    fn a_reload_is_refused_in_a_shutdown() {
        let mut p = with_web();
        step(
            &mut p,
            0,
            Event::Shutdown(crate::vocab::ShutdownKind::Reboot),
        );
        let mut lines = vec![];
        let r = p.reload(&mut |l| lines.push(l.to_string()));
        let e = r.unwrap_err();
        assert_eq!(e.code, crate::proto::ErrCode::Refused);
        assert_eq!(
            e.message.as_str(),
            "reload refused: shutting down; nothing changed"
        );
        // Said once, as the error: no report line to say it again.
        assert!(lines.is_empty(), "{lines:?}");
    }

    /// The restart's grace is for a start after a death on one CPU: not
    /// for the boot's start, not on more CPUs, not for `initctl restart`.
    #[test]
    fn the_restart_grace_is_for_a_restart_after_a_death_on_one_cpu() {
        use crate::supervisor::Action;
        let mut p = with_web();
        p.one_cpu = true;
        assert_eq!(step(&mut p, 0, Event::Boot), [Action::Spawn(0)]);
        assert!(!p.restart_grace(0), "the boot's start");
        step(&mut p, 1, Event::spawned(0, 100));
        step(
            &mut p,
            2,
            Event::Exited {
                pid: 100,
                exit: crate::vocab::Exit::Signal(9),
            },
        );
        // The restart comes at the delay's deadline.
        let t = p.sup.next_deadline().unwrap();
        assert!(step(&mut p, t, Event::Tick).contains(&Action::Spawn(0)));
        assert!(p.restart_grace(0));
        p.one_cpu = false;
        assert!(!p.restart_grace(0), "more than one CPU");
        p.one_cpu = true;
        // `initctl restart`: a start by hand, not after a death.
        step(&mut p, t + 1, Event::spawned(0, 101));
        step(
            &mut p,
            t + 2,
            Event::Restart {
                unit: 0,
                by_hand: true,
            },
        );
        let out = step(
            &mut p,
            t + 3,
            Event::Exited {
                pid: 101,
                exit: crate::vocab::Exit::Signal(15),
            },
        );
        assert!(out.contains(&Action::Spawn(0)), "{out:?}");
        assert!(!p.restart_grace(0));
    }

    /// When a new run takes a unit's place, what the last run wrote and
    /// the loop has not read yet goes into the ring first, though a writer
    /// (the namespace's reaper) still holds the pipe; then the new pipe is
    /// the one watched.
    #[test]
    fn a_new_run_takes_the_last_runs_words_into_the_ring_first() {
        use rustix::fd::AsRawFd;
        let mut p = with_web();
        p.epoll =
            Some(rustix::event::epoll::create(rustix::event::epoll::CreateFlags::CLOEXEC).unwrap());
        let (old_rd, old_wr) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
        p.edges[0].log_rd = event_loop::watch(p.epoll.as_ref().unwrap(), old_rd, 1);
        rustix::io::write(&old_wr, b"web: last words\n").unwrap();
        let (new_rd, new_wr) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
        let new_no = new_rd.as_raw_fd();
        let (report_rd, _report_wr) =
            rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
        let report_no = report_rd.as_raw_fd();
        let ends = executor::Ends {
            log: Some((new_rd, new_wr)),
            notify: None,
            report: Some(report_rd),
        };
        p.watch_ends(0, ends);
        // The reaper's report pipe is watched with the rest, after the
        // wait in place.
        assert_eq!(
            p.edges[0].exit_report.as_ref().map(|f| f.as_raw_fd()),
            Some(report_no)
        );
        let mut b = [0u8; 16];
        let n = p.edges[0].log.contents().copy_tail(&mut b);
        assert_eq!(&b[..n], b"web: last words\n");
        assert_eq!(
            p.edges[0].log_rd.as_ref().map(|f| f.as_raw_fd()),
            Some(new_no)
        );
        drop(old_wr);
    }

    /// A restart's grace is not cut short by the last run's output pipe
    /// at its end of file: out of the epoll set, still held for the drain.
    #[test]
    fn the_last_runs_pipe_leaves_the_loop_before_the_grace() {
        let mut p = with_web();
        let ep = rustix::event::epoll::create(rustix::event::epoll::CreateFlags::CLOEXEC).unwrap();
        let (rd, wr) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
        p.edges[0].log_rd = event_loop::watch(&ep, rd, 1);
        p.epoll = Some(ep);
        drop(wr);
        let ready = |p: &Pid1| {
            let mut fds = [rustix::event::PollFd::new(
                p.epoll.as_ref().unwrap(),
                rustix::event::PollFlags::IN,
            )];
            rustix::event::poll(
                &mut fds,
                Some(&rustix::event::Timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                }),
            )
            .unwrap()
        };
        assert_eq!(ready(&p), 1, "the end of file is ready");
        p.unwatch_log(0);
        assert_eq!(ready(&p), 0);
        assert!(p.edges[0].log_rd.is_some());
    }

    /// A SIGKILL exit is told apart from the OOM killer's after the step
    /// it led to: `classify_exit` reads nothing, `settle_oom` then reads
    /// memory.events once and makes an OOM kill the unit's last exit.
    #[test]
    fn a_sigkill_is_told_apart_from_an_oom_kill_after_the_step() {
        use crate::vocab::Exit;
        let root = crate::testutil::TempDir::new("pid1-oom");
        let events = root.file(
            "units/web/memory.events",
            "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
        );
        let mut p = with_web();
        p.cg = Some(crate::cgroup::Cgroups::open(root.path()).unwrap());
        step(&mut p, 0, Event::Boot);
        step(&mut p, 1, Event::spawned(0, 100));
        assert_eq!(p.classify_exit(0, Exit::Signal(9)), Exit::Signal(9));
        assert!(p.edges[0].drain.oom_unread);
        assert_eq!(p.edges[0].oom_kills, 0, "nothing read yet");
        step(
            &mut p,
            2,
            Event::Exited {
                pid: 100,
                exit: Exit::Signal(9),
            },
        );
        assert!(p.settle_oom(0));
        assert_eq!(p.sup.slot(0).unwrap().rt.last_exit, Some(Exit::OomKill));
        assert_eq!(p.edges[0].oom_kills, 1);
        assert!(!p.settle_oom(0), "read once");
        // The next SIGKILL with no new oom_kill is a plain SIGKILL.
        let t = p.sup.next_deadline().unwrap();
        step(&mut p, t, Event::Tick);
        step(&mut p, t, Event::spawned(0, 101));
        p.classify_exit(0, Exit::Signal(9));
        step(
            &mut p,
            t + 1,
            Event::Exited {
                pid: 101,
                exit: Exit::Signal(9),
            },
        );
        assert!(!p.settle_oom(0));
        assert_eq!(p.sup.slot(0).unwrap().rt.last_exit, Some(Exit::Signal(9)));
        // Another end reads nothing at all.
        std::fs::remove_file(events).unwrap();
        assert_eq!(p.classify_exit(0, Exit::Code(1)), Exit::Code(1));
        assert!(!p.edges[0].drain.oom_unread);
    }

    /// Before a cgroup's limits are written afresh, its kills are counted
    /// in one read: with no SIGKILL to tell apart the last exit stays.
    #[test]
    fn kills_are_counted_before_the_cgroup_is_prepared_again() {
        use crate::vocab::Exit;
        let root = crate::testutil::TempDir::new("pid1-oom-count");
        root.file("units/web/memory.events", "oom 2\noom_kill 2\n");
        let mut p = with_web();
        p.cg = Some(crate::cgroup::Cgroups::open(root.path()).unwrap());
        step(&mut p, 0, Event::Boot);
        step(&mut p, 1, Event::spawned(0, 100));
        step(
            &mut p,
            2,
            Event::Exited {
                pid: 100,
                exit: Exit::Code(1),
            },
        );
        assert!(!p.count_oom(0), "no SIGKILL to tell apart");
        assert_eq!(p.edges[0].oom_kills, 2);
        assert_eq!(p.sup.slot(0).unwrap().rt.last_exit, Some(Exit::Code(1)));
        assert!(!p.count_oom(0));
        assert_eq!(p.edges[0].oom_kills, 2, "counted once");
    }

    /// memory.events' oom_kill over the baseline is counted once, at
    /// most up to u32::MAX; a count at or below the baseline is no kill.
    #[test]
    fn oom_kills_are_counted_over_the_baseline_once() {
        let mut e = Edge::new(&UnitDef::with_defaults("web"));
        e.oom_kills_at_spawn = 3;
        assert_eq!(e.oom_kills_with(2), 0);
        assert_eq!(e.oom_kills_with(5), 2);
        assert!(!e.count_oom_kills(3));
        assert_eq!((e.oom_kills, e.oom_kills_at_spawn), (0, 3));
        assert!(e.count_oom_kills(5));
        assert_eq!((e.oom_kills, e.oom_kills_at_spawn), (2, 5));
        assert!(!e.count_oom_kills(5));
        assert_eq!(e.oom_kills_with(6), 3);
        assert_eq!(e.oom_kills_with(u64::MAX), u32::MAX);
    }
}
