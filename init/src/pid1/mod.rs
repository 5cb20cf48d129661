//! PID 1: boot as a short sequence of named steps, then one wait point.
//!
//! Every signal is blocked and read from a signalfd; children, timers,
//! unit output, readiness and `initctl` are all fds in one epoll set, so
//! PID 1 sleeps in `epoll_wait` until something happens and an idle system
//! wakes it zero times. Each wake-up turns into `supervisor::Event`s; the
//! resulting `Action`s are performed here, at the edge.

use crate::boot::cmdline;
use crate::boot::mounts;
use crate::boot::shutdown;
use crate::cgroup::Cgroups;
use crate::config;
use crate::control::{ControlTarget, Server as ControlServer, UnitLog, Want};
use crate::kmsg;
use crate::log_ring::LogRing;
use crate::proto::{CtlError, ErrCode, LastExit, UnitDetail, UnitStatus};
use crate::spawn;
use crate::supervisor::{Action, Actions, Event, Note, Supervisor};
use crate::unit::{self, IdSpec, Output, Ready, UnitDef};
use crate::vocab::{Exit, ShutdownKind};
use crate::vocab::{Millis, MAX_UNITS};
use heapless::Deque;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use rustix::event::epoll;
use rustix::fd::{AsFd, OwnedFd};
use rustix::io::Errno;
use std::mem::MaybeUninit;
use std::path::Path;

const TOKEN_SIGNAL: u64 = 1;
const TOKEN_TIMER: u64 = 2;
const TOKEN_CONTROL: u64 = 3;
/// Tokens for per-unit fds: base + unit index.
const TOKEN_LOG: u64 = 0x1000;
const TOKEN_NOTIFY: u64 = 0x2000;

const CGROUP_ROOT: &str = "/sys/fs/cgroup";
const RUN_DIR: &str = "/run/wren";
const NOTIFY_DIR: &str = "/run/wren/notify";
const CONTROL_SOCKET: &str = "/run/wren/control";
/// Events queued while performing one batch of actions.
const EVENT_QUEUE: usize = 2 * MAX_UNITS + 8;
/// How long processes left at shutdown get between TERM and KILL.
const SHUTDOWN_GRACE_MS: u64 = 2000;
/// Retry interval for console text a busy serial line refused.
const CONSOLE_RETRY_MS: u64 = 20;
/// epoll events taken per wake-up.
const EPOLL_BATCH: usize = 16;

/// Per-unit resources PID 1 holds besides the supervisor's record.
struct Edge {
    /// Read end of the unit's stdout/stderr pipe (`output = log`).
    log_rd: Option<OwnedFd>,
    log: LogRing,
    /// Readiness: the notify pipe's read end or the sd_notify socket.
    notify: Option<OwnedFd>,
    /// `memory.events` oom_kill count when the unit was spawned, so an
    /// exit by SIGKILL can be told apart as an OOM kill.
    oom_kills_at_spawn: u64,
    oom_kills: u32,
    /// With a PID namespace: read end of the reaper's exit report.
    exit_report: Option<OwnedFd>,
    /// Why the last start failed, for `initctl status NAME`.
    last_error: Why,
    /// The unit's cgroup directory and the limits last written into it.
    cgroup: Option<(OwnedFd, crate::unit::Limits)>,
}

impl Edge {
    fn new(def: &UnitDef) -> Self {
        Edge {
            log_rd: None,
            log: LogRing::with_capacity(def.log_size as usize),
            notify: None,
            oom_kills_at_spawn: 0,
            oom_kills: 0,
            exit_report: None,
            last_error: Why::new(),
            cgroup: None,
        }
    }
}

pub struct Pid1 {
    sup: Supervisor,
    edges: heapless::Vec<Edge, MAX_UNITS>,
    cg: Option<Cgroups>,
    epoll: Option<OwnedFd>,
    sigfd: Option<SignalFd>,
    timer: Option<OwnedFd>,
    control: Option<ControlServer>,
    units_dir: heapless::String<128>,
    stamp: bool,
    queue: Deque<Event, EVENT_QUEUE>,
    started_at: Millis,
    all_up_reported: bool,
}

/// Milliseconds of CLOCK_MONOTONIC: the clock of every deadline.
pub fn now() -> Millis {
    now_ns() / 1_000_000
}

/// CLOCK_MONOTONIC in nanoseconds (for `wren.stamp`).
pub fn now_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    (t.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(t.tv_nsec as u64)
}

pub fn run() -> ! {
    let started_at = now();
    // Step 1: signals. Blocked before anything else so that none is lost
    // or delivered with a default action while we boot.
    let mask = SigSet::all();
    let _ = mask.thread_block();
    let _ = mounts::ensure_console_fds();
    // Step 2: early mounts (/proc first; everything after reads it).
    mounts::early_mounts(Path::new("/proc/self/mounts"), &mut |e| {
        log::error!("mount: {e}")
    });
    // An initramfs without /dev/console starts us with no stdio at all.
    let _ = mounts::ensure_console_fds();
    // Step 3: options and logging. /dev/kmsg rate-limits each writer to
    // 10 lines per 5 s by default, which would drop PID 1's own records in
    // a crash loop; lift it unless the command line fixed the setting
    // (then the kernel refuses the write, which is fine).
    let _ = write_file("/proc/sys/kernel/printk_devkmsg", b"on\n");
    let opts = read_cmdline();
    kmsg::init(opts.debug);
    kmsg::set_quiet(opts.quiet);
    log::info!("starting (pid 1)");
    set_hostname();
    // Step 4: cgroups.
    let cg = match crate::cgroup::setup_units(Path::new(CGROUP_ROOT))
        .and_then(|_| Cgroups::open(Path::new(CGROUP_ROOT)))
    {
        Ok(c) => Some(c),
        Err(e) => {
            log::error!("cgroup: {e}; units cannot be started");
            None
        }
    };
    for dir in [RUN_DIR, NOTIFY_DIR] {
        let _ = rustix::fs::mkdir(dir, rustix::fs::Mode::from_raw_mode(0o700));
    }
    // Step 5: units.
    let mut p = Box::new(Pid1 {
        sup: Supervisor::new(),
        edges: heapless::Vec::new(),
        cg,
        epoll: None,
        sigfd: None,
        timer: None,
        control: None,
        queue: Deque::new(),
        started_at,
        all_up_reported: false,
        units_dir: heapless::String::new(),
        stamp: opts.stamp,
    });
    p.load_units(&opts);
    p.apply_protection();
    // Step 6: the wait point.
    if let Err(e) = p.setup_loop(&mask) {
        log::error!("event loop: {e}; falling back to reaping only");
        reap_forever();
    }
    p.feed(Event::Boot);
    p.arm_timer();
    loop {
        p.wait_once();
    }
}

/// A small text file read with one read(2) into `buf` (the files PID 1
/// reads this way, /proc/cmdline, /etc/hostname, passwd and group, fit).
fn read_small<'b>(path: &str, buf: &'b mut [u8]) -> Option<&'b str> {
    let fd = rustix::fs::open(
        path,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .ok()?;
    let n = rustix::io::read(&fd, &mut *buf).ok()?;
    core::str::from_utf8(buf.get(..n)?).ok()
}

fn read_cmdline() -> cmdline::Options {
    let mut buf = [0u8; 4096];
    let text = read_small("/proc/cmdline", &mut buf).unwrap_or("");
    // Warnings wait until the logger is up, so collect the first few.
    let mut warnings: heapless::Vec<(heapless::String<64>, &'static str), 4> = heapless::Vec::new();
    let opts = cmdline::parse(text, &mut |tok, why| {
        let _ = warnings.push((crate::proto::truncated(tok), why));
    });
    kmsg::init(opts.debug);
    for (tok, why) in warnings.iter() {
        log::warn!("kernel option `{tok}`: {why}");
    }
    opts
}

fn write_file(path: &str, data: &[u8]) -> Result<(), Errno> {
    let fd = rustix::fs::open(
        path,
        rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?;
    rustix::io::write(&fd, data).map(|_| ())
}

fn set_hostname() {
    let mut buf = [0u8; 128];
    let name = read_small("/etc/hostname", &mut buf).unwrap_or("").trim();
    if name.is_empty() {
        return;
    }
    if let Err(e) = nix::unistd::sethostname(name) {
        log::warn!("/etc/hostname: sethostname: {e}");
    }
}

/// Last resort when the event loop cannot be built: still reap, never exit.
fn reap_forever() -> ! {
    loop {
        if waitpid(None, None).is_err() {
            let _ = rustix::thread::nanosleep(&rustix::time::Timespec {
                tv_sec: 3600,
                tv_nsec: 0,
            });
        }
    }
}

/// The rescue shell: a console unit that always comes back.
fn rescue_unit() -> UnitDef {
    let mut d = UnitDef::with_defaults("rescue");
    let _ = d.exec.push("/bin/sh");
    let _ = d.description.push_str("emergency shell");
    d.console = true;
    d.output = Output::Console;
    d.namespaces = unit::Namespaces::NONE;
    d.restart_delay = 1000;
    d
}

impl Pid1 {
    fn load_units(&mut self, opts: &cmdline::Options) {
        if opts.rescue {
            log::warn!("wren.rescue given, starting rescue shell");
        } else {
            let dir = opts.units_dir();
            self.units_dir = heapless::String::try_from(dir).unwrap_or_default();
            let mut defs: Box<heapless::Vec<UnitDef, MAX_UNITS>> = Box::default();
            config::load_dir(Path::new(dir), &mut defs, &mut |e| log::error!("{e}"));
            for d in defs.into_iter() {
                self.add_unit(d);
            }
            if let Err((u, _)) = self.sup.link() {
                log::error!("unit {u}: unresolved dependency");
            }
            if self.sup.is_empty() {
                log::warn!("no valid unit, starting rescue shell (unit directory {dir})");
            } else {
                log::info!("{} units loaded from {dir}", self.sup.len());
            }
        }
        if self.sup.is_empty() {
            self.add_unit(rescue_unit());
            let _ = self.sup.link();
        }
    }

    /// A unit into the table at boot, with its edge state beside it.
    fn add_unit(&mut self, d: UnitDef) {
        let edge = Edge::new(&d);
        if self.sup.add(d).is_ok() {
            let _ = self.edges.push(edge);
        }
    }

    /// `units/` must hold the protection its units ask for (see
    /// `Cgroups::set_units_protection`).
    fn apply_protection(&self) {
        if let Some(cg) = self.cg.as_ref() {
            let (low, min) = self.sup.protection();
            if let Err(e) = cg.set_units_protection(low, min) {
                log::warn!("{e}");
            }
        }
    }

    fn setup_loop(&mut self, mask: &SigSet) -> Result<(), Errno> {
        let ep = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        let sfd = SignalFd::with_flags(mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(|e| Errno::from_raw_os_error(e as i32))?;
        epoll::add(
            &ep,
            &sfd,
            epoll::EventData::new_u64(TOKEN_SIGNAL),
            epoll::EventFlags::IN,
        )?;
        let timer = rustix::time::timerfd_create(
            rustix::time::TimerfdClockId::Monotonic,
            rustix::time::TimerfdFlags::NONBLOCK | rustix::time::TimerfdFlags::CLOEXEC,
        )?;
        epoll::add(
            &ep,
            &timer,
            epoll::EventData::new_u64(TOKEN_TIMER),
            epoll::EventFlags::IN,
        )?;
        match ControlServer::bind(Path::new(CONTROL_SOCKET), 0) {
            Ok(srv) => {
                if let Err(e) = epoll::add(
                    &ep,
                    srv.fd(),
                    epoll::EventData::new_u64(TOKEN_CONTROL),
                    epoll::EventFlags::IN,
                ) {
                    log::error!("control socket: epoll: {e}");
                }
                self.control = Some(srv);
            }
            Err(e) => log::error!("control socket {CONTROL_SOCKET}: {e}"),
        }
        self.epoll = Some(ep);
        self.sigfd = Some(sfd);
        self.timer = Some(timer);
        Ok(())
    }

    fn wait_once(&mut self) {
        let Some(ep) = self.epoll.as_ref() else {
            reap_forever();
        };
        let mut buf = [MaybeUninit::<epoll::Event>::uninit(); EPOLL_BATCH];
        let mut tokens: heapless::Vec<u64, EPOLL_BATCH> = heapless::Vec::new();
        match epoll::wait(ep, &mut buf, None) {
            Ok((ready, _)) => {
                for ev in ready.iter() {
                    let _ = tokens.push(ev.data.u64());
                }
            }
            Err(Errno::INTR) => {}
            Err(e) => {
                log::error!("epoll_wait: {e}");
                return;
            }
        }
        let before = crate::sys::alloc::count();
        for tok in tokens.iter() {
            self.dispatch(*tok);
        }
        self.after_events();
        let n = crate::sys::alloc::count().wrapping_sub(before);
        if n > 0 {
            // The loop is meant to be allocation-free once units run;
            // reload is the known exception.
            log::debug!(
                "{n} allocation(s) in one wake-up (tokens {:?})",
                tokens.as_slice()
            );
        }
    }

    fn dispatch(&mut self, tok: u64) {
        match tok {
            TOKEN_SIGNAL => self.on_signals(),
            TOKEN_TIMER => {
                if let Some(t) = self.timer.as_ref() {
                    let mut b = [0u8; 8];
                    let _ = rustix::io::read(t, &mut b);
                }
                self.feed(Event::Tick);
                if let Some(mut srv) = self.control.take() {
                    srv.on_timer(now());
                    self.control = Some(srv);
                }
            }
            TOKEN_CONTROL => {
                if let Some(mut srv) = self.control.take() {
                    srv.on_ready(now(), self);
                    self.control = Some(srv);
                }
            }
            t if (TOKEN_LOG..TOKEN_LOG + MAX_UNITS as u64).contains(&t) => {
                self.on_log((t - TOKEN_LOG) as u8)
            }
            t if (TOKEN_NOTIFY..TOKEN_NOTIFY + MAX_UNITS as u64).contains(&t) => {
                self.on_notify((t - TOKEN_NOTIFY) as u8)
            }
            _ => {}
        }
    }

    /// After every batch: deferred control replies, the next timer, and a
    /// one-time "all up" line for boot timing.
    fn after_events(&mut self) {
        if let Some(mut srv) = self.control.take() {
            srv.poll_waiters(now(), self);
            self.control = Some(srv);
        }
        self.arm_timer();
        if !self.all_up_reported && self.sup.shutting_down().is_none() {
            let settled = self.sup.slots().all(|s| {
                use crate::supervisor::Phase::*;
                matches!(s.rt.phase, Running | Exited | Failed | Stopped)
            });
            if settled {
                self.all_up_reported = true;
                let up = self
                    .sup
                    .slots()
                    .filter(|s| {
                        matches!(
                            s.rt.phase,
                            crate::supervisor::Phase::Running | crate::supervisor::Phase::Exited
                        )
                    })
                    .count();
                let ms = now().saturating_sub(self.started_at);
                log::info!(
                    "{up} of {} units up {ms} ms after PID 1 started ({} allocations so far)",
                    self.sup.len(),
                    crate::sys::alloc::count()
                );
            }
        }
    }

    fn arm_timer(&mut self) {
        let Some(t) = self.timer.as_ref() else { return };
        let sup = self.sup.next_deadline();
        let ctl = self.control.as_ref().and_then(|c| c.next_deadline());
        // Console text a busy serial line refused: retry shortly. Only
        // while some is waiting, so an idle system still sleeps.
        let ctl = if kmsg::console_flush() {
            let retry = now().saturating_add(CONSOLE_RETRY_MS);
            Some(ctl.map_or(retry, |c| c.min(retry)))
        } else {
            ctl
        };
        let when = match (sup, ctl) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let value = match when {
            // A deadline already due still needs a non-zero value: zero
            // would disarm the timer.
            Some(ms) => rustix::time::Timespec {
                tv_sec: (ms / 1000) as i64,
                tv_nsec: ((ms % 1000) * 1_000_000).max(1) as i64,
            },
            None => rustix::time::Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
        };
        let spec = rustix::time::Itimerspec {
            it_interval: rustix::time::Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: value,
        };
        if let Err(e) =
            rustix::time::timerfd_settime(t, rustix::time::TimerfdTimerFlags::ABSTIME, &spec)
        {
            log::error!("timerfd_settime: {e}");
        }
    }

    fn on_signals(&mut self) {
        let mut reap = false;
        while let Some(Ok(Some(info))) = self.sigfd.as_ref().map(|s| s.read_signal()) {
            let sig = info.ssi_signo as i32;
            match Signal::try_from(sig) {
                Ok(Signal::SIGCHLD) => reap = true,
                Ok(Signal::SIGTERM) | Ok(Signal::SIGINT) => {
                    self.feed(Event::Shutdown(ShutdownKind::Reboot))
                }
                Ok(Signal::SIGUSR1) => self.feed(Event::Shutdown(ShutdownKind::Halt)),
                Ok(Signal::SIGUSR2) => self.feed(Event::Shutdown(ShutdownKind::Poweroff)),
                Ok(Signal::SIGHUP) => {
                    let _ = self.do_reload(&mut |_| {});
                }
                _ => log::debug!("ignoring signal {sig}"),
            }
        }
        // Reap after the signals: SIGCHLD coalesces, so drain every child
        // that has exited, adopted orphans included.
        if reap {
            self.reap();
        }
    }

    fn reap(&mut self) {
        loop {
            let (pid, exit) = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid.as_raw() as u32, Exit::Code(code)),
                Ok(WaitStatus::Signaled(pid, sig, _)) => {
                    (pid.as_raw() as u32, Exit::Signal(sig as i32))
                }
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => continue,
            };
            let exit = match self.sup.unit_of_pid(pid) {
                Some(u) => self.classify_exit(u, exit),
                None => exit,
            };
            self.feed(Event::Exited { pid, exit });
        }
    }

    /// A SIGKILL while the cgroup's oom_kill count rose is the OOM killer.
    fn classify_exit(&mut self, u: u8, exit: Exit) -> Exit {
        let Some(slot) = self.sup.slot(u) else {
            return exit;
        };
        let name = slot.def.name.clone();
        let Some(edge) = self.edges.get_mut(usize::from(u)) else {
            return exit;
        };
        // Readiness is over with the process.
        if let (Some(fd), Some(ep)) = (edge.notify.take(), self.epoll.as_ref()) {
            let _ = epoll::delete(ep, &fd);
        }
        if slot.def.ready == Ready::SdNotify {
            let _ = rustix::fs::unlink(notify_path(&name).as_str());
        }
        // In a PID namespace the reaped pid is the reaper's, which exits
        // 128+N for a signal; its report says what really happened.
        let mut exit = exit;
        if let Some(fd) = edge.exit_report.take() {
            let mut b = [0u8; crate::spawn::reaper::REPORT_LEN];
            if let Ok(n) = rustix::io::read(&fd, &mut b) {
                if let Some(e) = crate::spawn::reaper::decode(b.get(..n).unwrap_or(&[])) {
                    exit = e;
                }
            }
        }
        let Some(cg) = self.cg.as_ref() else {
            return exit;
        };
        let kills = cg.memory_events(&name).map(|e| e.oom_kill).unwrap_or(0);
        if kills > edge.oom_kills_at_spawn {
            edge.oom_kills = edge
                .oom_kills
                .saturating_add((kills - edge.oom_kills_at_spawn) as u32);
            edge.oom_kills_at_spawn = kills;
            if exit == Exit::Signal(Signal::SIGKILL as i32) {
                return Exit::OomKill;
            }
        }
        exit
    }

    fn on_log(&mut self, u: u8) {
        let Some(edge) = self.edges.get_mut(usize::from(u)) else {
            return;
        };
        let mut buf = [0u8; 1024];
        loop {
            let Some(fd) = edge.log_rd.as_ref() else {
                return;
            };
            match rustix::io::read(fd, &mut buf) {
                Ok(0) => {
                    // Every writer is gone.
                    if let (Some(fd), Some(ep)) = (edge.log_rd.take(), self.epoll.as_ref()) {
                        let _ = epoll::delete(ep, &fd);
                    }
                    return;
                }
                Ok(n) => edge.log.push(buf.get(..n).unwrap_or(&[])),
                Err(Errno::INTR) => continue,
                Err(_) => return,
            }
        }
    }

    fn on_notify(&mut self, u: u8) {
        let sd = self
            .sup
            .slot(u)
            .is_some_and(|s| s.def.ready == Ready::SdNotify);
        let ready = {
            let Some(edge) = self.edges.get_mut(usize::from(u)) else {
                return;
            };
            let Some(fd) = edge.notify.as_ref() else {
                return;
            };
            let mut buf = [0u8; 512];
            let mut ready = false;
            let mut closed = false;
            loop {
                match rustix::io::read(fd, &mut buf) {
                    // An empty datagram, not an end of stream.
                    Ok(0) if sd => continue,
                    Ok(0) => {
                        closed = true;
                        break;
                    }
                    Ok(n) => {
                        let got = buf.get(..n).unwrap_or(&[]);
                        // s6 readiness is a newline; sd_notify is a
                        // datagram of NAME=VALUE lines, READY=1 among them.
                        ready |= if sd {
                            got.split(|&c| c == b'\n').any(|l| l == b"READY=1")
                        } else {
                            got.contains(&b'\n')
                        };
                    }
                    Err(Errno::INTR) => continue,
                    Err(_) => break,
                }
            }
            if closed || ready {
                if let (Some(fd), Some(ep)) = (edge.notify.take(), self.epoll.as_ref()) {
                    let _ = epoll::delete(ep, &fd);
                }
            }
            ready
        };
        if ready {
            self.feed(Event::Ready { unit: u });
        }
    }

    /// Step the supervisor with `ev` and everything it leads to.
    fn feed(&mut self, ev: Event) {
        let _ = self.queue.push_back(ev);
        self.run_queue();
    }

    /// Step the supervisor with every queued event, performing what it
    /// asks (which may queue more, e.g. Spawned after a Spawn).
    fn run_queue(&mut self) {
        let mut out = Actions::new();
        while let Some(ev) = self.queue.pop_front() {
            out.clear();
            self.sup.step(now(), ev, &mut out);
            for a in out.iter() {
                self.perform(*a);
            }
        }
    }

    fn perform(&mut self, a: Action) {
        match a {
            Action::Spawn(u) => {
                let ev = match self.spawn(u) {
                    Ok(pid) => Event::Spawned { unit: u, pid },
                    Err(why) => {
                        let name = self.sup.slot(u).map(|s| s.def.name.as_str()).unwrap_or("?");
                        log::error!("{name}: {}", why.as_str());
                        if let Some(e) = self.edges.get_mut(usize::from(u)) {
                            e.last_error = why;
                            // Whatever went wrong, the next try prepares
                            // the cgroup afresh (it may have been removed).
                            e.cgroup = None;
                        }
                        Event::SpawnFailed { unit: u }
                    }
                };
                if self.queue.push_back(ev).is_err() {
                    log::error!("event queue full");
                }
            }
            Action::Signal { unit: _, pid, sig } => {
                let Ok(sig) = Signal::try_from(sig) else {
                    return;
                };
                let pg = nix::unistd::Pid::from_raw(-(pid as i32));
                if nix::sys::signal::kill(pg, sig).is_err() {
                    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig);
                }
            }
            Action::KillCgroup(u) => {
                if let (Some(cg), Some(slot)) = (self.cg.as_ref(), self.sup.slot(u)) {
                    if cg.populated(&slot.def.name) != Some(false) {
                        if let Err(e) = cg.kill(&slot.def.name) {
                            log::warn!("{}: {e}", slot.def.name);
                        }
                    }
                }
            }
            Action::Announce(u, note) => self.announce(u, note),
            Action::Finish(kind) => {
                log::info!("all units stopped; {kind:?}");
                shutdown::finish(kind, std::time::Duration::from_millis(SHUTDOWN_GRACE_MS));
            }
        }
    }

    fn announce(&self, u: u8, note: Note) {
        let Some(slot) = self.sup.slot(u) else { return };
        let name = slot.def.name.as_str();
        match note {
            Note::Running { pid } => {
                kmsg::console_line(format_args!("[  OK  ] {name}: running (pid {pid})"));
                kmsg::event(format_args!("{name}: running (pid {pid})"));
            }
            Note::Exited => {
                kmsg::console_line(format_args!("[  OK  ] {name}: exited"));
                kmsg::event(format_args!("{name}: exited"));
            }
            Note::Died { exit, restart_in } => {
                let tag = if exit.success() {
                    "[ INFO ]"
                } else {
                    "[FAILED]"
                };
                let e = ExitText(exit);
                match restart_in {
                    Some(d) => {
                        kmsg::console_line(format_args!("{tag} {name}: {e}, restart in {d}ms"));
                        kmsg::event(format_args!("{name}: {e}, restart in {d}ms"));
                    }
                    None => {
                        kmsg::console_line(format_args!("{tag} {name}: {e}"));
                        kmsg::event(format_args!("{name}: {e}"));
                    }
                }
            }
            Note::SpawnFailed { restart_in } => match restart_in {
                Some(d) => {
                    kmsg::console_line(format_args!(
                        "[FAILED] {name}: cannot start, retry in {d}ms"
                    ));
                }
                None => kmsg::console_line(format_args!("[FAILED] {name}: cannot start")),
            },
            Note::StartLimit => {
                kmsg::console_line(format_args!("[FAILED] {name}: start limit hit"));
                kmsg::event(format_args!("{name}: start limit hit, not restarting"));
            }
            Note::DepFailed { dep } => {
                let d = self
                    .sup
                    .slot(dep)
                    .map(|s| s.def.name.as_str())
                    .unwrap_or("?");
                kmsg::console_line(format_args!("[FAILED] {name}: dependency {d} failed"));
                kmsg::event(format_args!("{name}: not started, dependency {d} failed"));
            }
            Note::Stopped => {
                kmsg::console_line(format_args!("[ STOP ] {name}: stopped"));
                kmsg::event(format_args!("{name}: stopped"));
            }
        }
    }

    /// Everything a unit's process needs, then `spawn::spawn`.
    fn spawn(&mut self, u: u8) -> Result<u32, Why> {
        let decided_ns = self.stamp.then(now_ns);
        let Some(slot) = self.sup.slot(u) else {
            return Err(Why::new());
        };
        let def = &slot.def;
        let name = def.name.as_str();
        let Some(cg) = self.cg.as_ref() else {
            return Err(why(format_args!("no cgroup hierarchy, not starting")));
        };
        let Some(edge) = self.edges.get_mut(usize::from(u)) else {
            return Err(why(format_args!("no edge slot")));
        };
        // A reload changed the ring's size: the one allocation a restart
        // may make, and only then.
        if edge.log.capacity() != def.log_size as usize {
            edge.log = LogRing::with_capacity(def.log_size as usize);
        }
        // Placed and limited before the first instruction, or not at all.
        // A restart with the limits already written reuses the directory
        // fd: nine cgroup file writes are most of a restart's cost.
        if edge.cgroup.as_ref().map(|(_, l)| l) != Some(&def.limits) {
            edge.cgroup = None;
            match cg.prepare(name, &def.limits) {
                Ok(fd) => {
                    // OOM kills are counted from here; later exits move
                    // the baseline (classify_exit), so restarts need not
                    // read memory.events.
                    edge.oom_kills_at_spawn =
                        cg.memory_events(name).map(|e| e.oom_kill).unwrap_or(0);
                    edge.cgroup = Some((fd, def.limits));
                }
                Err(e) => {
                    return Err(why(format_args!("cgroup: {e}")));
                }
            }
        }
        let Some((cgfd, _)) = edge.cgroup.as_ref() else {
            return Err(why(format_args!("cgroup: not prepared")));
        };
        let (uid, gid) = match resolve_ids(def) {
            Ok(ids) => ids,
            Err(msg) => {
                return Err(why(format_args!("{msg}")));
            }
        };
        let flags = rustix::pipe::PipeFlags::CLOEXEC;
        let log_pipe = if def.output == Output::Log {
            match rustix::pipe::pipe_with(flags) {
                Ok(p) => Some(p),
                Err(e) => {
                    return Err(why(format_args!("log pipe: {e}")));
                }
            }
        } else {
            None
        };
        let notify_pipe = if def.ready == Ready::Notify {
            match rustix::pipe::pipe_with(flags) {
                Ok(p) => Some(p),
                Err(e) => {
                    return Err(why(format_args!("notify pipe: {e}")));
                }
            }
        } else {
            None
        };
        let sock_path = notify_path(name);
        let notify_sock = if def.ready == Ready::SdNotify {
            match bind_notify_socket(sock_path.as_str()) {
                Ok(s) => Some(s),
                Err(e) => {
                    return Err(why(format_args!(
                        "notify socket {}: {e}",
                        sock_path.as_str()
                    )));
                }
            }
        } else {
            None
        };
        let report_pipe = if def.namespaces.has(unit::Namespaces::PID) {
            match rustix::pipe::pipe_with(flags | rustix::pipe::PipeFlags::NONBLOCK) {
                Ok(p) => Some(p),
                Err(e) => {
                    return Err(why(format_args!("exit report pipe: {e}")));
                }
            }
        } else {
            None
        };
        let stdio = if def.console {
            spawn::Stdio::ConsoleTty {
                out: log_pipe.as_ref().map(|(_, w)| w.as_fd()),
            }
        } else {
            match (def.output, log_pipe.as_ref()) {
                (Output::Log, Some((_, w))) => spawn::Stdio::Pipe(w.as_fd()),
                (Output::Console, _) => spawn::Stdio::Console,
                _ => spawn::Stdio::Null,
            }
        };
        let req = spawn::Request {
            def,
            cgroup: cgfd.as_fd(),
            stdio,
            notify_fd: notify_pipe.as_ref().map(|(_, w)| w.as_fd()),
            notify_socket: notify_sock.as_ref().map(|_| sock_path.as_str()),
            uid,
            gid,
            exit_report: report_pipe.as_ref().map(|(_, w)| w.as_fd()),
            decided_ns,
        };
        let pid = match spawn::spawn(&req) {
            Ok(pid) => pid,
            Err(e) => {
                if notify_sock.is_some() {
                    let _ = rustix::fs::unlink(sock_path.as_str());
                }
                return Err(why(format_args!(
                    "cannot start {}: {e}",
                    def.exec.first().unwrap_or("")
                )));
            }
        };
        // Our copies of the write ends go, so EOF means the unit closed them.
        let log_rd = log_pipe.map(|(r, _w)| r);
        let notify_rd = notify_pipe.map(|(r, _w)| r).or(notify_sock);
        let Some(ep) = self.epoll.as_ref() else {
            return Ok(pid);
        };
        let Some(edge) = self.edges.get_mut(usize::from(u)) else {
            return Ok(pid);
        };
        edge.exit_report = report_pipe.map(|(r, _w)| r);
        if let Some(old) = edge.log_rd.take() {
            let _ = epoll::delete(ep, &old);
        }
        if let Some(old) = edge.notify.take() {
            let _ = epoll::delete(ep, &old);
        }
        edge.log_rd = log_rd.and_then(|r| watch(ep, r, TOKEN_LOG + u64::from(u)));
        edge.notify = notify_rd.and_then(|r| watch(ep, r, TOKEN_NOTIFY + u64::from(u)));
        Ok(pid)
    }

    /// Re-read the unit directory and apply it (`initctl reload`, SIGHUP).
    fn do_reload(&mut self, report: &mut dyn FnMut(&str)) -> Result<(), CtlError> {
        let dir = if self.units_dir.is_empty() {
            cmdline::DEFAULT_UNITS_DIR
        } else {
            self.units_dir.as_str()
        };
        let mut defs: Box<heapless::Vec<UnitDef, MAX_UNITS>> = Box::default();
        // Names whose file exists but is invalid keep their last good
        // definition.
        let mut invalid: heapless::Vec<unit::Name, MAX_UNITS> = heapless::Vec::new();
        let mut errors = 0usize;
        config::load_dir(Path::new(dir), &mut defs, &mut |e| {
            errors += 1;
            let line = e.to_string();
            log::error!("{line}");
            report(&line);
            let stem = Path::new(&e.file)
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("");
            if let Ok(n) = unit::Name::try_from(stem) {
                if !invalid.contains(&n) {
                    let _ = invalid.push(n);
                }
            }
        });
        let mut out = Actions::new();
        let sum = self.sup.reload(
            now(),
            &mut defs.into_iter(),
            &|n| invalid.iter().any(|i| i.as_str() == n),
            &mut out,
        );
        for i in 0..MAX_UNITS {
            if sum.new_slots & (1u64 << i) != 0 {
                let Some(slot) = self.sup.slot(i as u8) else {
                    continue;
                };
                let edge = Edge::new(&slot.def);
                match self.edges.get_mut(i) {
                    Some(e) => *e = edge,
                    None => {
                        let _ = self.edges.push(edge);
                    }
                }
            }
        }
        for a in out.iter() {
            self.perform(*a);
        }
        // Spawned / SpawnFailed queued by the actions above.
        self.run_queue();
        let line: heapless::String<160> = crate::proto::formatted(format_args!(
            "{} added, {} changed, {} removed, {} unchanged, {} kept on last good definition{}",
            sum.added,
            sum.changed,
            sum.removed,
            sum.unchanged,
            sum.kept,
            if sum.no_room > 0 {
                ", some did not fit"
            } else {
                ""
            }
        ));
        log::info!("reload: {line}");
        report(&line);
        if errors > 0 {
            Err(CtlError::fmt(
                ErrCode::Invalid,
                format_args!("{errors} problem(s) in unit files"),
            ))
        } else {
            Ok(())
        }
    }

    fn unit(&self, name: &str) -> Result<u8, CtlError> {
        self.sup.index(name).ok_or_else(|| {
            CtlError::fmt(ErrCode::NoSuchUnit, format_args!("no unit named `{name}`"))
        })
    }

    fn line(&self, u: u8) -> Option<UnitStatus> {
        let slot = self.sup.slot(u)?;
        let name = slot.def.name.as_str();
        let live = slot.rt.pid != 0;
        Some(UnitStatus {
            name: slot.def.name.clone(),
            state: slot.rt.phase.state(),
            pid: slot.rt.pid,
            restarts: slot.rt.restarts,
            memory_current: self.cg.as_ref().and_then(|c| c.memory_current(name)),
            memory_max: slot.def.limits.memory_max,
            uptime_ms: if live {
                now().saturating_sub(slot.rt.spawned_at)
            } else {
                0
            },
        })
    }
}

impl ControlTarget for Pid1 {
    fn status(&self, out: &mut heapless::Vec<UnitStatus, MAX_UNITS>) {
        for i in 0..MAX_UNITS as u8 {
            match self.sup.slot(i) {
                Some(s) if s.retired != crate::supervisor::Retired::Free => {
                    if let Some(l) = self.line(i) {
                        let _ = out.push(l);
                    }
                }
                Some(_) => {}
                None => break,
            }
        }
    }

    fn detail(&self, name: &str) -> Result<UnitDetail, CtlError> {
        let u = self.unit(name)?;
        let status = self
            .line(u)
            .ok_or_else(|| CtlError::code(ErrCode::NoSuchUnit))?;
        let slot = self
            .sup
            .slot(u)
            .ok_or_else(|| CtlError::code(ErrCode::NoSuchUnit))?;
        let edge = self.edges.get(usize::from(u));
        let mut reason: heapless::String<{ crate::proto::REASON_MAX }> = heapless::String::new();
        match slot.rt.last_note {
            Some(Note::SpawnFailed { restart_in }) => {
                let e = edge.map(|e| e.last_error.as_str()).unwrap_or("");
                let _ = core::fmt::write(&mut reason, format_args!("{e}"));
                if let Some(d) = restart_in {
                    let _ = core::fmt::write(&mut reason, format_args!(", retry in {d}ms"));
                }
            }
            Some(n) => {
                let _ = core::fmt::write(&mut reason, format_args!("{}", NoteText(n, &self.sup)));
            }
            None => {}
        }
        if slot.rt.phase == crate::supervisor::Phase::Waiting {
            reason.clear();
            let _ = reason.push_str("waiting for");
            for d in slot.rt.deps.iter() {
                if let Some(ds) = self.sup.slot(*d) {
                    let _ = reason.push(' ');
                    let _ = reason.push_str(&ds.def.name);
                }
            }
        }
        Ok(UnitDetail {
            status,
            last_exit: match slot.rt.last_exit {
                None => LastExit::None,
                Some(Exit::Code(c)) => LastExit::Code(c),
                Some(Exit::Signal(s)) => LastExit::Signal(s),
                Some(Exit::OomKill) => LastExit::OomKill,
            },
            oom_kills: edge.map(|e| e.oom_kills).unwrap_or(0),
            reason,
        })
    }

    fn start(&mut self, name: &str) -> Result<(), CtlError> {
        let unit = self.unit(name)?;
        if self.sup.shutting_down().is_some() {
            return Err(CtlError::new(ErrCode::Refused, "shutting down"));
        }
        self.feed(Event::Start { unit });
        Ok(())
    }

    fn stop(&mut self, name: &str) -> Result<(), CtlError> {
        let unit = self.unit(name)?;
        self.feed(Event::Stop { unit });
        Ok(())
    }

    fn restart(&mut self, name: &str) -> Result<(), CtlError> {
        let unit = self.unit(name)?;
        if self.sup.shutting_down().is_some() {
            return Err(CtlError::new(ErrCode::Refused, "shutting down"));
        }
        self.feed(Event::Restart { unit });
        Ok(())
    }

    fn settled(&self, name: &str, want: Want) -> Option<Result<(), CtlError>> {
        use crate::supervisor::Phase;
        let Some(u) = self.sup.index(name) else {
            return Some(Err(CtlError::new(ErrCode::NoSuchUnit, "unit removed")));
        };
        let slot = self.sup.slot(u)?;
        let failed = |what: &str| {
            Some(Err(CtlError::fmt(
                ErrCode::Failed,
                format_args!("{name} {what}"),
            )))
        };
        match want {
            Want::Started | Want::Restarted => match slot.rt.phase {
                Phase::Running | Phase::Exited => Some(Ok(())),
                Phase::Failed => failed("failed"),
                Phase::Backoff => failed("exited during start, will retry"),
                Phase::Stopped if !slot.rt.want => failed("did not start (dependency failed)"),
                _ => None,
            },
            Want::Stopped => match slot.rt.phase {
                Phase::Stopped | Phase::Failed => Some(Ok(())),
                _ => None,
            },
        }
    }

    fn shutdown(&mut self, kind: ShutdownKind) {
        self.feed(Event::Shutdown(kind));
    }

    fn reload(&mut self, report: &mut dyn FnMut(&str)) -> Result<(), CtlError> {
        self.do_reload(report)
    }

    fn log(&self, name: &str) -> Result<&UnitLog, CtlError> {
        let u = self.unit(name)?;
        let slot = self
            .sup
            .slot(u)
            .ok_or_else(|| CtlError::code(ErrCode::NoSuchUnit))?;
        if slot.def.output != Output::Log {
            return Err(CtlError::code(ErrCode::NoLog));
        }
        self.edges
            .get(usize::from(u))
            .map(|e| &e.log)
            .ok_or_else(|| CtlError::code(ErrCode::NoLog))
    }

    fn cat(&self, name: &str, out: &mut dyn core::fmt::Write) -> Result<(), CtlError> {
        let u = self.unit(name)?;
        let slot = self
            .sup
            .slot(u)
            .ok_or_else(|| CtlError::code(ErrCode::NoSuchUnit))?;
        unit::render(&slot.def, out).map_err(|_| CtlError::code(ErrCode::Internal))
    }
}

struct NoteText<'a>(Note, &'a Supervisor);

impl core::fmt::Display for NoteText<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Note::Running { .. } | Note::Exited | Note::Stopped => Ok(()),
            Note::Died { exit, restart_in } => {
                write!(f, "{}", ExitText(exit))?;
                if let Some(d) = restart_in {
                    write!(f, ", restart in {d}ms")?;
                }
                Ok(())
            }
            Note::SpawnFailed { .. } => write!(f, "could not start (see dmesg)"),
            Note::StartLimit => write!(f, "start limit hit"),
            Note::DepFailed { dep } => {
                let d = self.1.slot(dep).map(|s| s.def.name.as_str()).unwrap_or("?");
                write!(f, "dependency {d} failed")
            }
        }
    }
}

/// Why a start failed, in a fixed buffer (cut when longer).
type Why = heapless::String<{ crate::proto::REASON_MAX }>;

fn why(args: core::fmt::Arguments<'_>) -> Why {
    crate::proto::formatted(args)
}

struct ExitText(Exit);

impl core::fmt::Display for ExitText {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Exit::Code(c) => write!(f, "exit {c}"),
            Exit::Signal(s) => match Signal::try_from(s) {
                Ok(sig) => write!(f, "killed by {}", sig.as_str()),
                Err(_) => write!(f, "killed by signal {s}"),
            },
            Exit::OomKill => write!(f, "oom-kill"),
        }
    }
}

/// Make `fd` non-blocking and add it to the loop under `token`; the fd is
/// kept only if that worked (an fd nobody waits on is useless).
fn watch(ep: &OwnedFd, fd: OwnedFd, token: u64) -> Option<OwnedFd> {
    let _ = rustix::io::ioctl_fionbio(&fd, true);
    epoll::add(
        ep,
        &fd,
        epoll::EventData::new_u64(token),
        epoll::EventFlags::IN,
    )
    .ok()
    .map(|()| fd)
}

fn notify_path(name: &str) -> heapless::String<64> {
    let mut p = heapless::String::new();
    let _ = p.push_str(NOTIFY_DIR);
    let _ = p.push('/');
    let _ = p.push_str(name);
    p
}

fn bind_notify_socket(path: &str) -> Result<OwnedFd, Errno> {
    use rustix::net::{bind, socket_with, AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
    let _ = rustix::fs::unlink(path);
    let s = socket_with(
        AddressFamily::UNIX,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )?;
    let addr = SocketAddrUnix::new(path)?;
    bind(&s, &addr)?;
    Ok(s)
}

/// `user` / `group` to numbers: numbers as given, names from /etc/passwd
/// and /etc/group (no NSS: a static binary has none).
fn resolve_ids(def: &UnitDef) -> Result<(Option<u32>, Option<u32>), &'static str> {
    let mut uid = None;
    let mut gid = None;
    match &def.user {
        None => {}
        Some(IdSpec::Id(n)) => uid = Some(*n),
        Some(IdSpec::Name(n)) => {
            let (u, g) = lookup(def, "/etc/passwd", n).ok_or("user not found in /etc/passwd")?;
            uid = Some(u);
            gid = Some(g);
        }
    }
    match &def.group {
        None => {}
        Some(IdSpec::Id(n)) => gid = Some(*n),
        Some(IdSpec::Name(n)) => {
            let (g, _) = lookup(def, "/etc/group", n).ok_or("group not found in /etc/group")?;
            gid = Some(g);
        }
    }
    Ok((uid, gid))
}

/// Field 3 (and 4) of the line whose first field is `name`, read through a
/// fixed buffer, from the unit's root when it has one.
fn lookup(def: &UnitDef, file: &str, name: &str) -> Option<(u32, u32)> {
    let mut path: heapless::String<{ crate::vocab::PATH_BYTES + 16 }> = heapless::String::new();
    if let Some(r) = def.root.as_deref() {
        path.push_str(r.trim_end_matches('/')).ok()?;
    }
    path.push_str(file).ok()?;
    let mut buf = [0u8; 8192];
    find_ids(read_small(&path, &mut buf)?, name)
}

pub fn find_ids(text: &str, name: &str) -> Option<(u32, u32)> {
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        if f.next()? != name {
            return None;
        }
        let _pw = f.next()?;
        let a = f.next()?.parse().ok()?;
        let b = f.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        Some((a, b))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_from_passwd_and_group_text() {
        let pw = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n";
        assert_eq!(find_ids(pw, "nobody"), Some((65534, 65534)));
        assert_eq!(find_ids(pw, "root"), Some((0, 0)));
        assert_eq!(find_ids(pw, "nob"), None);
        assert_eq!(find_ids("wheel:x:10:root,a\n", "wheel"), Some((10, 0)));
    }

    #[test]
    fn rescue_unit_is_a_console_shell_that_comes_back() {
        let d = rescue_unit();
        assert_eq!(d.exec.first(), Some("/bin/sh"));
        assert!(d.console);
        assert_eq!(d.restart, unit::Restart::Always);
        assert_eq!(d.namespaces, unit::Namespaces::NONE);
    }
}
