//! The one wait point: an epoll set holding the signalfd, the timerfd, the
//! control server and every unit's output and readiness fd, each under a
//! token that says which source it is; and the timer, armed at the next
//! deadline anybody has.

use super::{apart, now, Pid1};
use crate::kmsg;
use crate::supervisor::{Event, Phase};
use crate::sys::errno::Os;
use crate::vocab::{Millis, CONTROL_SOCKET};
use nix::sys::signal::SigSet;
use nix::sys::signalfd::{SfdFlags, SignalFd};
use rustix::event::epoll;
use rustix::fd::OwnedFd;
use rustix::io::Errno;
use std::mem::MaybeUninit;
use std::path::Path;

const TOKEN_SIGNAL: u64 = 1;
pub(super) const TOKEN_TIMER: u64 = 2;
pub(super) const TOKEN_CONTROL: u64 = 3;
/// The system's memory pressure trigger (`wren.shed=`).
pub(super) const TOKEN_SHED: u64 = 4;
/// Tokens for per-unit fds: base + unit index (a `u16`, below the next
/// base).
pub(super) const TOKEN_LOG: u64 = 1 << 32;
pub(super) const TOKEN_NOTIFY: u64 = 2 << 32;
pub(super) const TOKEN_PRESSURE: u64 = 3 << 32;
/// A child's exec status pipe (`handshake`).
pub(super) const TOKEN_EXEC: u64 = 6 << 32;
/// A stopping unit's `cgroup.events` (`stopping`).
pub(super) const TOKEN_CGEVENTS: u64 = 7 << 32;
/// A PID-namespace reaper's exit report (`report`).
pub(super) const TOKEN_REPORT: u64 = 8 << 32;
/// The pipe of a closer reading a unit's notify datagram (`sources`).
pub(super) const TOKEN_NOTIFY_READ: u64 = 9 << 32;

/// epoll events taken per wake-up.
const EPOLL_BATCH: usize = 16;

/// `fd` out of the epoll set, then closed. Closing alone is not enough:
/// a copy of it elsewhere (the fd table of a start's child before its
/// exec, of a verdict's fork) keeps the registration, which PID 1, the
/// fd gone, can no longer delete; readable for good (a pipe at its end,
/// a trigger on a removed cgroup), it would wake the loop for ever.
pub(super) fn unwatch(ep: Option<&OwnedFd>, fd: Option<OwnedFd>) {
    if let (Some(ep), Some(fd)) = (ep, fd.as_ref()) {
        let _ = epoll::delete(ep, fd);
    }
}

/// `unwatch` of a unit's readiness fd, closed by `sys::passed::close`: a
/// socket with datagrams still queued goes to a closer, so that the fds
/// passed with them are not released in PID 1's close (a pipe has none).
/// A run's readiness fd out of the loop and closed, at the run's end,
/// and its socket file unlinked: when the definition says `sd_notify`,
/// or when the fd is a socket (a reload may have changed `ready` since
/// the run's socket was bound; its file was left in /run for good).
pub(super) fn end_notify(ep: Option<&OwnedFd>, fd: Option<OwnedFd>, name: &str, sd: bool) {
    let socket = fd.as_ref().is_some_and(crate::sys::file::is_socket);
    unwatch_notify(ep, fd);
    if sd || socket {
        super::executor::unlink_notify(super::executor::notify_path(name).as_str());
    }
}

pub(super) fn unwatch_notify(ep: Option<&OwnedFd>, fd: Option<OwnedFd>) {
    if let Some(f) = fd {
        if let Some(ep) = ep {
            let _ = epoll::delete(ep, &f);
        }
        crate::sys::passed::close(f);
    }
}

/// Make `fd` non-blocking and add it to the loop under `token`; the fd is
/// kept only if both worked (an fd nobody waits on is useless, and one
/// that blocks could hang PID 1: the output drain reads without waiting
/// for readiness, with a reaper still holding the writer). Said when not:
/// the unit then loses what it was for (its output: the next write
/// kills it; its readiness: its start times out), and epoll refuses
/// once `fs.epoll.max_user_watches` is reached.
pub(super) fn watch(ep: &OwnedFd, fd: OwnedFd, token: u64) -> Option<OwnedFd> {
    let added = rustix::io::ioctl_fionbio(&fd, true).and_then(|()| {
        epoll::add(
            ep,
            &fd,
            epoll::EventData::new_u64(token),
            epoll::EventFlags::IN,
        )
    });
    match added {
        Ok(()) => Some(fd),
        Err(e) => {
            crate::warn!(
                "epoll: a unit's fd not watched (token {token}): {}",
                Os::from(e)
            );
            None
        }
    }
}

/// The unit index a per-unit token carries, when `tok` is `base + index`.
pub(super) fn unit_of(tok: u64, base: u64) -> Option<u16> {
    u16::try_from(tok.checked_sub(base)?).ok()
}

/// A batch's tokens as their `Debug` list (`[(TOKEN, ERR), ...]`),
/// without linking core's list and tuple builders for one debug line.
struct Batch<'a>(&'a [(u64, bool)]);

impl std::fmt::Display for Batch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut sep = "";
        f.write_str("[")?;
        for (tok, err) in self.0 {
            write!(f, "{sep}({tok}, {err})")?;
            sep = ", ";
        }
        f.write_str("]")
    }
}

/// A wake-up's fds, by token, each with whether epoll reported an error
/// on it.
type Tokens = heapless::Vec<(u64, bool), EPOLL_BATCH>;

/// What epoll has ready within `timeout` (none: until something is).
fn ready(ep: &OwnedFd, timeout: Option<&rustix::event::Timespec>) -> Result<Tokens, Errno> {
    let mut buf = [MaybeUninit::<epoll::Event>::uninit(); EPOLL_BATCH];
    let (ready, _) = epoll::wait(ep, &mut buf, timeout)?;
    let mut tokens = Tokens::new();
    for ev in ready.iter() {
        let flags = ev.flags;
        let _ = tokens.push((ev.data.u64(), flags.contains(epoll::EventFlags::ERR)));
    }
    Ok(tokens)
}

/// A batch's tokens in the order they are served: units' output after
/// everything else, each group in the order epoll gave. A bare unit's
/// death wakes PID 1 with its output pipe's end of file before SIGCHLD:
/// served first, its read and epoll removal (0.5 ms under TCG) came
/// before the restart's clone3; now the restart's `watch_ends` reads the
/// pipe to its end after the new process started, and the stale token
/// then reads the new run's pipe. Other units' output of the same batch
/// is unread during a restart's grace, which it ends at once (the epoll
/// fd is ready): with chatty units the grace seldom applies, as with
/// output arriving during it.
fn in_turn(tokens: &[(u64, bool)]) -> impl Iterator<Item = &(u64, bool)> {
    let output = |t: u64| unit_of(t, TOKEN_LOG).is_some();
    let others = tokens.iter().filter(move |(t, _)| !output(*t));
    others.chain(tokens.iter().filter(move |(t, _)| output(*t)))
}

impl Pid1 {
    pub(super) fn setup_loop(&mut self, mask: &SigSet) -> Result<(), Errno> {
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
        self.epoll = Some(ep);
        self.sigfd = Some(sfd);
        self.timer = Some(timer);
        self.bind_control(Path::new(CONTROL_SOCKET));
        Ok(())
    }

    pub(super) fn wait_once(&mut self) {
        let Some(ep) = self.epoll.as_ref() else {
            super::last_resort::last_resort(self.watchdog.take());
        };
        // Slots whose children have exec'd give their pages back (a
        // short sleep while one has yet to: a few times, not for ever).
        let recheck = crate::sys::slot::release_idle();
        let tokens = match ready(ep, recheck.as_ref()) {
            Ok(tokens) => {
                if recheck.is_some() && tokens.is_empty() {
                    crate::sys::slot::recheck_timed_out();
                }
                tokens
            }
            Err(Errno::INTR) => Tokens::new(),
            Err(e) => {
                crate::error!("epoll_wait: {}", Os::from(e));
                return;
            }
        };
        let n = self.handle(&tokens);
        if let Some((blocks, used)) = crate::sys::alloc::reserve_news() {
            crate::warn!(
                "malloc refused {blocks} block(s): PID 1 took them from its reserve \
                 ({used} of {} bytes in use)",
                crate::sys::alloc::reserve::BYTES
            );
        }
        if n > 0 {
            // The loop is meant to be allocation-free once units run;
            // reload is the known exception.
            // The heap's live bytes after it: a reload with no change
            // finds them where the last one did, unless something leaks
            // (the soak reads them, docs/field.md).
            crate::debug!(
                "{n} allocation(s) in one wake-up (tokens {}), heap {} bytes live",
                Batch(&tokens),
                crate::sys::alloc::live()
            );
        }
    }

    /// One wake-up's work on what epoll said: the allocations it made,
    /// less a unit's first output's ring and a control connection's
    /// buffers (growth with what is used, not steady state). This
    /// thread's: PID 1's other (the trampoline's) allocates nothing, and
    /// a host test counts its own.
    pub(super) fn handle(&mut self, tokens: &[(u64, bool)]) -> u64 {
        let count = crate::sys::alloc::thread_count;
        let before = count();
        self.rings_allocated = 0;
        self.remake_polls = super::REMAKE_POLLS;
        self.in_place_ns = super::IN_PLACE_NS;
        if let Some(c) = self.control.as_mut() {
            c.take_grown();
        }
        for &(tok, err) in in_turn(tokens) {
            self.dispatch(tok, err);
        }
        apart(|| self.after_events());
        let grown = self.control.as_mut().map_or(0, |c| c.take_grown());
        count()
            .wrapping_sub(before)
            .saturating_sub(self.rings_allocated)
            .saturating_sub(grown)
    }

    /// `err`: epoll reported an error on the fd (only pressure triggers
    /// care: theirs means the cgroup is gone).
    pub(super) fn dispatch(&mut self, tok: u64, err: bool) {
        // Each handler in a frame of its own (`apart`): the stack this
        // loop keeps resident is its deepest path, not all of them.
        match tok {
            TOKEN_SIGNAL => apart(|| self.on_signals()),
            TOKEN_TIMER => apart(|| {
                if let Some(t) = self.timer.as_ref() {
                    let mut b = [0u8; 8];
                    let _ = rustix::io::read(t, &mut b);
                }
                let _ = kmsg::console_flush();
                self.release_reports();
                self.notify_before_deadlines(now());
                self.feed(Event::Tick);
                let t = now();
                self.exec_timeouts(t);
                self.drain_timeouts(t);
                self.on_shed_calm();
                self.tend_watchdog();
                crate::sys::passed::tend();
                if let Some(srv) = self.control.as_mut() {
                    srv.on_timer(now());
                }
                self.retry_control(now(), Path::new(CONTROL_SOCKET));
            }),
            TOKEN_CONTROL => {
                self.served_control = true;
                apart(|| self.serve_control());
            }
            TOKEN_SHED => apart(|| self.on_system_pressure(err)),
            t => {
                if let Some(u) = unit_of(t, TOKEN_LOG) {
                    apart(|| self.on_log(u));
                } else if let Some(u) = unit_of(t, TOKEN_NOTIFY) {
                    apart(|| self.on_notify(u));
                } else if let Some(u) = unit_of(t, TOKEN_PRESSURE) {
                    apart(|| self.on_pressure(u, err));
                } else if let Some(u) = unit_of(t, TOKEN_EXEC) {
                    apart(|| self.on_exec(u));
                } else if let Some(u) = unit_of(t, TOKEN_CGEVENTS) {
                    apart(|| self.on_cgroup_events(u));
                } else if let Some(u) = unit_of(t, TOKEN_REPORT) {
                    apart(|| self.on_report(u));
                } else if let Some(u) = unit_of(t, TOKEN_NOTIFY_READ) {
                    self.on_notify_read(u);
                }
            }
        }
    }

    /// After every batch: control clients waiting on a unit, the next
    /// timer, and a one-time "all up" line for boot timing.
    pub(super) fn after_events(&mut self) {
        self.tend_shutdown();
        self.tend_waiters();
        if self.removing {
            self.forget_cgroups();
        }
        self.arm_timer();
        if !self.all_up_reported && self.sup.shutting_down().is_none() && self.all_settled() {
            self.all_up_reported = true;
            let up = self
                .sup
                .slots()
                .filter(|s| matches!(s.rt.phase, Phase::Running | Phase::Exited))
                .count();
            let ms = now().saturating_sub(self.started_at);
            crate::info!(
                "{up} of {} units up {ms} ms after PID 1 started ({} allocations so far, {} starts forked, {} by trampoline)",
                self.sup.len(),
                crate::sys::alloc::count(),
                crate::spawn::forked(),
                crate::sys::slot::trampolined()
            );
        }
    }

    /// Every unit up, done or given up, for the one "all up" line. Units
    /// settle in about the order they start, so a look goes on from where
    /// the last one stopped instead of from the first unit after every
    /// wake-up (at N = 1,000 those looks were a pass over every unit per
    /// wake-up). Only a look that reaches the end goes over all once more:
    /// one may have left its settled state since.
    fn all_settled(&mut self) -> bool {
        all_settled(&self.sup, &mut self.all_up_from)
    }

    pub(super) fn arm_timer(&mut self) {
        let Some(t) = self.timer.as_ref() else { return };
        let sup = self.sup.next_deadline();
        let calm = self.shed.as_ref().and_then(|s| s.calm_at);
        let own = [
            self.exec_deadline(),
            self.drain_deadline(),
            self.shutdown_deadline,
            // Closers to kill for what waits for a place (`sys::passed`).
            crate::sys::passed::due(),
            (self.control_retry != 0).then_some(self.control_retry),
        ];
        let sup = [sup, calm, self.watchdog_next]
            .into_iter()
            .chain(own)
            .flatten()
            .min();
        let ctl = self.control.as_ref().and_then(|c| c.next_deadline());
        // Console text waiting (unit status lines, or what a busy serial
        // line refused): written shortly, on the timer, so not before the
        // new processes of this wake-up ran. Only while some is waiting, so
        // an idle system still sleeps.
        let ctl = if kmsg::console_waiting() {
            let retry = now().saturating_add(kmsg::console_retry_ms());
            Some(ctl.map_or(retry, |c| c.min(retry)))
        } else {
            ctl
        };
        let when = sup.into_iter().chain(ctl).min();
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
            crate::error!("timerfd_settime: {}", Os::from(e));
        }
    }

    /// Before a tick judges the deadlines due by `t`: the sd_notify
    /// datagrams of their units are read first. A `WATCHDOG=1` or a
    /// `READY=1` sent in time waits in the socket behind the timer's token
    /// when the loop was busy past the deadline (a re-exec's handshake, a
    /// reload's disk wait); judged first, the unit was killed for a
    /// lateness that was the loop's (as the exec handshake's answer is
    /// read first: `exec_timeouts`).
    pub(super) fn notify_before_deadlines(&mut self, t: Millis) {
        for u in 0..u16::try_from(self.edges.len()).unwrap_or(u16::MAX) {
            let due = self.sup.slot(u).is_some_and(|s| {
                let passed = |d: Option<crate::vocab::Due>| d.is_some_and(|d| d.get() <= t);
                passed(s.rt.watchdog_at) || (s.rt.phase == Phase::Starting && passed(s.rt.deadline))
            });
            if due
                && self
                    .edges
                    .get(usize::from(u))
                    .is_some_and(|e| e.notify.is_some())
            {
                self.on_notify(u);
            }
        }
    }

    /// A unit removed by a reload leaves the table once it has stopped;
    /// its cgroup goes with it. Only while a reload's removals are
    /// pending, not on every wake-up. The cgroup may still hold a
    /// namespace reaper on its way out (the stop ended on its report,
    /// `report`): then it is tried again at the next wake-ups, which that
    /// reaper's exit brings, for `ORPHAN_GRACE_MS` (`orphans`: a cgroup
    /// the unit made below its own stays busy however empty). One whose
    /// processes survived every kill is left in place, said once.
    pub(super) fn forget_cgroups(&mut self) {
        self.removing = self
            .sup
            .slots()
            .any(|s| s.retired == crate::supervisor::Retired::Leaving);
        let cg = self.cg.as_ref();
        for (i, edge) in self.edges.iter_mut().enumerate() {
            let Some(slot) = u16::try_from(i).ok().and_then(|u| self.sup.slot(u)) else {
                continue;
            };
            if slot.retired != crate::supervisor::Retired::Free {
                continue;
            }
            edge.let_go(self.epoll.as_ref());
            let (Some(cg), Some(_)) = (cg, edge.cgroup) else {
                continue;
            };
            // Closed before the rmdir, not by it: the kernel tears an open
            // pressure trigger down (an RCU grace period, its thread's
            // stop) inside the rmdir, under the lock of every cgroup.
            edge.drop_pressure(self.epoll.as_ref());
            match cg.remove(&slot.def.name) {
                Ok(true) => {
                    crate::debug!("{}: cgroup removed", slot.def.name);
                    // Its `cgroup.events` would stay ready for ever.
                    edge.drain.end(self.epoll.as_ref(), &mut self.waits.kills);
                }
                Ok(false) if edge.drain.active() => {
                    self.removing = true;
                    continue;
                }
                Ok(false) if !edge.drain.gave_up => add_orphan(&mut self.orphans, &slot.def.name),
                Ok(false) => crate::warn!("{}: cgroup still busy, left in place", slot.def.name),
                Err(e) => crate::warn!("{e}"),
            }
            edge.cgroup = None;
        }
        let Some(cg) = cg else { return };
        let sup = &self.sup;
        let t = if self.orphans.is_empty() { 0 } else { now() };
        self.orphans.retain(|(name, since)| {
            // The name is configured again: its cgroup is the new unit's,
            // not to be removed (asked before the rmdir).
            if sup.index(name).is_some() {
                return false;
            }
            match cg.remove(name) {
                Ok(true) => false,
                Ok(false) if t.saturating_sub(*since) < ORPHAN_GRACE_MS => true,
                Ok(false) => {
                    crate::warn!("{name}: cgroup still busy, left in place");
                    false
                }
                Err(e) => {
                    crate::warn!("{e}");
                    false
                }
            }
        });
        self.removing |= !self.orphans.is_empty();
    }

    /// A removed unit's cgroup whose name a reload configures again: what
    /// its stop left is killed now (the new unit starts in that cgroup
    /// after this), and the old slot's drain lets go of it, unless the
    /// slot's edge is replaced anyway (`taken`).
    pub(super) fn end_leftovers(&mut self, u: u16, name: &crate::unit::Name, taken: bool) {
        if let Some(cg) = self.cg.as_ref() {
            kill_left(cg, name);
        }
        if let Some(e) = self.edges.get_mut(usize::from(u)).filter(|_| !taken) {
            e.drain.end(self.epoll.as_ref(), &mut self.waits.kills);
            self.sup.note_draining(u, false);
            e.drain = super::stopping::Drain::default();
            e.cgroup = None;
            e.drop_pressure(self.epoll.as_ref());
        }
    }

    /// A removed unit's cgroup, still holding what its stop left, whose
    /// slot a new unit takes: what is left is killed now (its stop_timeout
    /// cut short), and the cgroup removed once empty (`forget_cgroups`),
    /// or it would stay, its processes never killed.
    pub(super) fn orphan_cgroup(&mut self, name: &crate::unit::Name) {
        let Some(cg) = self.cg.as_ref() else { return };
        kill_left(cg, name);
        match cg.remove(name) {
            Ok(true) => {}
            Ok(false) => {
                add_orphan(&mut self.orphans, name);
                self.removing = true;
            }
            Err(e) => crate::warn!("{e}"),
        }
    }
}

/// SIGKILL to what a removed unit's stop left in cgroup `name`, if any.
fn kill_left(cg: &crate::cgroup::Cgroups, name: &str) {
    if cg.populated(name) == Some(true) {
        if let Err(e) = cg.kill(name) {
            crate::warn!("{name}: {e}");
        }
    }
}

/// How long an orphaned cgroup still busy is tried again, at each of PID
/// 1's wake-ups (a time, not a count: chatty units wake it often), before
/// it is left in place: its processes killed but not gone (stuck in the
/// kernel), or a cgroup below it. A namespace reaper's exit takes far less.
pub(super) const ORPHAN_GRACE_MS: Millis = 10_000;

/// Cgroup `name` to be removed once empty, tried since now (once: a name
/// removed, given back and removed again is one cgroup).
fn add_orphan(orphans: &mut Vec<(crate::unit::Name, Millis)>, name: &crate::unit::Name) {
    if !orphans.iter().any(|(n, _)| n == name) {
        orphans.push((name.clone(), now()));
    }
}

/// `Pid1::all_settled`, with `from` the index the last look stopped at.
fn all_settled(sup: &crate::supervisor::Supervisor, from: &mut usize) -> bool {
    if let Some(i) = first_unsettled(sup, *from) {
        *from = i;
        return false;
    }
    if *from == 0 {
        return true;
    }
    match first_unsettled(sup, 0) {
        Some(i) => {
            *from = i;
            false
        }
        None => true,
    }
}

/// The first unit from index `from` on that has not settled.
fn first_unsettled(sup: &crate::supervisor::Supervisor, from: usize) -> Option<usize> {
    (from..sup.len()).find(|&i| {
        u16::try_from(i)
            .ok()
            .and_then(|u| sup.slot(u))
            .is_some_and(|s| {
                s.retired != crate::supervisor::Retired::Free
                    && !matches!(
                        s.rt.phase,
                        Phase::Running | Phase::Exited | Phase::Failed | Phase::Stopped
                    )
            })
    })
}

#[cfg(test)]
#[path = "steady_tests.rs"]
mod steady_tests;

#[cfg(test)]
mod tests;
