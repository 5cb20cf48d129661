//! Performing what the supervisor asks: spawning (everything a unit's
//! process needs first: cgroup, ids, pipes, the notify socket), signalling,
//! killing a cgroup, finishing the shutdown; state changes are said by
//! `announce`.

use super::event_loop::{self, watch};
use super::handshake;
use super::not_enforced::KeySet;
use super::{now, now_ns, why, Pid1, Why};
use crate::spawn;
use crate::supervisor::{Action, Event};
use crate::sys::errno::Os;
use crate::unit::{self, Output, Ready};
use crate::vocab::NOTIFY_DIR;
use rustix::event::epoll;
use rustix::fd::{AsFd, OwnedFd};
use rustix::io::Errno;

/// Spawns of one step between two waits in place for an exec.
const EXEC_BATCH: usize = 16;

/// Whether the `nth` (from 1) of `of` spawns in a row waits for its
/// exec in place: a lone one does; of several, every EXEC_BATCH-th.
pub(super) fn waits_in_place(nth: usize, of: usize) -> bool {
    of < 2 || nth.is_multiple_of(EXEC_BATCH)
}

/// How long processes left at shutdown get between TERM and KILL.
pub(super) const SHUTDOWN_GRACE_MS: u64 = 2000;

impl Pid1 {
    /// Step the supervisor with `ev` and everything it leads to.
    pub(super) fn feed(&mut self, ev: Event) {
        if !self.queue_event(ev) {
            crate::error!("event queue full");
        }
        self.run_queue();
    }

    /// Step the supervisor with every queued event, performing what it
    /// asks (which may queue more, e.g. Spawned after a Spawn).
    pub(super) fn run_queue(&mut self) {
        // Taken for the loop (leaving an empty one, no allocation) so the
        // actions can be performed on `self`.
        let mut out = std::mem::take(&mut self.actions);
        while let Some(ev) = self.queue.pop_front() {
            out.clear();
            self.sup.step(now(), ev, &mut out);
            self.perform_all(&out);
        }
        self.actions = out;
    }

    /// What one step (or a reload) asks, in order. A step that starts
    /// several units (the boot, a reload that adds them) spawns them all
    /// before it waits for any exec: their handshakes are taken by the
    /// loop, every EXEC_BATCH-th in place, so that not too many children
    /// wait to exec at once, and starts that stall before their exec hold
    /// PID 1 for one wait in place each batch, not each.
    pub(super) fn perform_all(&mut self, out: &crate::supervisor::Actions) {
        super::refused(out);
        let spawns = out.iter().filter(|a| matches!(a, Action::Spawn(_))).count();
        let mut spawned = 0usize;
        for a in out.iter() {
            match *a {
                // A step that spawns says what it did after its spawns: a
                // restart's new process (its child up to exec) does not
                // wait behind the lines. Other steps keep their order (a
                // stop's line before the next unit's stop signal makes it
                // write).
                Action::Announce(u, note) if spawns > 0 => self.on_note(u, note),
                Action::Spawn(u) => {
                    spawned = spawned.wrapping_add(1);
                    self.start(u, waits_in_place(spawned, spawns));
                }
                a => self.perform(a),
            }
        }
        for a in out.iter().filter(|_| spawns > 0) {
            if let Action::Announce(u, note) = *a {
                let note = self.settled(u, note);
                self.announce(u, note);
            }
        }
    }

    /// `Action::Spawn`; `in_place`: wait a moment for the child's exec
    /// here (`await_exec`).
    pub(super) fn start(&mut self, u: u16, in_place: bool) {
        // A handshake or a stop of an earlier run still going on ends
        // here: the new child goes into the same cgroup.
        self.cancel_exec(u);
        self.clear_for_spawn(u);
        self.oom_before_start(u);
        let had_cgroups = self.cg.is_some();
        let grace = self.restart_grace(u);
        let mut spawned = self.spawn(u, grace);
        if spawned.is_err() && had_cgroups && self.cg.is_none() {
            // The kernel refused CLONE_INTO_CGROUP: now without.
            spawned = self.spawn(u, grace);
        } else if spawned.is_err() && self.undo_nested(u) {
            // What a run made of its cgroup refused the new one: once more.
            spawned = self.spawn(u, grace);
        }
        match spawned {
            // Spawned (or SpawnFailed) comes with the handshake. The new
            // pipes go into the epoll set after the wait in place: on one
            // CPU the child runs to its exec first.
            Ok((p, ends)) => {
                if self.cg.is_none() {
                    self.note_pgid(u, p.pid);
                }
                if in_place {
                    if grace {
                        self.unwatch_log(u);
                    }
                    let ep = self.epoll.as_ref().filter(|_| grace);
                    handshake::wait_in_place(&p, ep.map(AsFd::as_fd), &mut self.in_place_ns);
                }
                self.watch_ends(u, ends);
                self.await_exec(u, p);
            }
            Err(why) => self.spawn_failed(u, why),
        }
    }

    /// The last run's output pipe out of the epoll set, still held:
    /// at its end of file (a bare unit's, served after the restart:
    /// `event_loop::in_turn`), it would end the restart's grace at once.
    /// `watch_ends` reads it to its end after the grace.
    pub(super) fn unwatch_log(&self, u: u16) {
        let log = self
            .edges
            .get(usize::from(u))
            .and_then(|e| e.log_rd.as_ref());
        if let (Some(ep), Some(fd)) = (self.epoll.as_ref(), log) {
            let _ = epoll::delete(ep, fd);
        }
    }

    /// A new run's output and readiness fds into the epoll set, in place
    /// of the last run's.
    pub(super) fn watch_ends(&mut self, u: u16, ends: Ends) {
        // What the last run wrote and the loop has not read yet goes to
        // the ring first, all of it: the report that restarted the unit
        // may have come in the batch that read only a budget of it, and
        // the pipe may not be at its end (a namespace's reaper holds it
        // until it exits: `spawn::reaper_child`).
        let old = self
            .edges
            .get(usize::from(u))
            .and_then(|e| e.log_rd.as_ref());
        self.read_log(u, super::sources::drain_reads(old));
        let Ends {
            log,
            notify,
            report,
        } = ends;
        self.watch_report(u, report);
        let Some(ep) = self.epoll.as_ref() else {
            return;
        };
        let Some(edge) = self.edges.get_mut(usize::from(u)) else {
            return;
        };
        super::event_loop::unwatch(Some(ep), edge.log_rd.take());
        super::event_loop::unwatch_notify(Some(ep), edge.notify.take());
        // Our copies of the write ends go, so EOF means the unit closed them.
        let log_rd = log.map(|(r, _w)| r);
        edge.log_rd = log_rd.and_then(|r| watch(ep, r, event_loop::TOKEN_LOG + u64::from(u)));
        edge.notify = notify.and_then(|r| watch(ep, r, event_loop::TOKEN_NOTIFY + u64::from(u)));
        edge.notify_held = 0;
        super::event_loop::unwatch(Some(ep), edge.notify_read.take());
    }

    pub(super) fn perform(&mut self, a: Action) {
        match a {
            Action::Spawn(u) => self.start(u, true),
            Action::Signal { unit, pid, sig } => self.signal_unit(unit, pid, sig),
            Action::KillCgroup(u) => {
                self.kill_cgroup(u);
                self.drained_if_done(u);
            }
            Action::Announce(u, note) => {
                self.on_note(u, note);
                let note = self.settled(u, note);
                self.announce(u, note);
            }
            Action::Verdict { unit, good } => self.on_verdict(unit, good),
            Action::Finish(kind) => self.finish_when_drained(kind),
        }
    }

    /// A start that failed: why, for `initctl status`, and `SpawnFailed`.
    pub(super) fn spawn_failed(&mut self, u: u16, why: Why) {
        let name = self.sup.slot(u).map(|s| s.def.name.as_str()).unwrap_or("?");
        crate::error!("{name}: {}", why.as_str());
        if let Some(e) = self.edges.get_mut(usize::from(u)) {
            if e.set_last_error(why) {
                self.rings_allocated = self.rings_allocated.saturating_add(1);
            }
            // Whatever went wrong, the next try prepares the cgroup
            // afresh (it may have been removed), and its pressure trigger
            // with it; a directory made is still known.
            let gen = self.sup.slot(u).map_or(0, |s| s.limits_gen);
            e.cgroup = e.cgroup.map(|_| super::stale_limits(gen));
            e.drop_pressure(self.epoll.as_ref());
        }
        if !self.queue_event(Event::SpawnFailed { unit: u }) {
            crate::error!("event queue full");
        }
    }

    /// A restart after a death (a failure streak is on) on one CPU: the
    /// new process runs before PID 1's and its reaper's work on it
    /// (`handshake::wait_in_place`, `spawn::Request::grace`).
    pub(super) fn restart_grace(&self, u: u16) -> bool {
        self.one_cpu && self.sup.slot(u).is_some_and(|s| s.rt.streak > 0)
    }

    /// Everything a unit's process needs, then `spawn::start`; the
    /// handshake is awaited in the loop (`handshake`). `grace`: see
    /// `restart_grace`.
    fn spawn(&mut self, u: u16, grace: bool) -> Result<(spawn::Pending, Ends), Why> {
        let decided_ns = self.stamp.then(now_ns);
        let Some(slot) = self.sup.slot(u) else {
            return Err(Why::new());
        };
        let def = &slot.def;
        let name = def.name.as_str();
        let cg = self.cg.as_ref();
        let Some(edge) = self.edges.get_mut(usize::from(u)) else {
            return Err(why(format_args!("no edge slot")));
        };
        // A reload (or a revert) changed the ring's size: the one
        // allocation a restart may make, and only then.
        if edge.log.capacity() != def.log_size as usize {
            edge.log = edge
                .log
                .resized(def.log_size as usize, crate::sys::alloc::zeroed);
        }
        if cg.is_none() {
            // No hierarchy (said once at boot): in PID 1's cgroup, unlimited.
            let ne = crate::cgroup::missing::not_enforced(&def.limits.get());
            // The boot message covers the cgroup itself; name the keys.
            if ne.len() > 1 && KeySet::of(&ne) != edge.not_enforced {
                crate::warn!(
                    "{name}: not enforced (no cgroup2): {}",
                    NotEnforcedText(&ne)
                );
            }
            edge.not_enforced = KeySet::of(&ne);
        }
        // Placed and limited before the first instruction, or not at all.
        // A restart with the limits already written only opens the
        // directory: nine cgroup file writes are most of a restart's cost.
        // Its fd lives until the clone3 that places the child.
        let mut dir = None;
        if let Some(cg) = cg.filter(|_| edge.cgroup != Some(slot.limits_gen)) {
            edge.drop_pressure(self.epoll.as_ref());
            // A run before has had its kills counted (`start`). Known but
            // not written until `prepare` says so: a failure after the
            // mkdir leaves a directory the unit's removal must delete.
            edge.cgroup = Some(super::stale_limits(slot.limits_gen));
            match cg.prepare(name, &def.limits.get(), &mut self.remake_polls) {
                Ok(p) => {
                    // OOM kills are counted from here; later SIGKILL
                    // exits move the baseline (settle_oom), so restarts
                    // need not read memory.events, nor a start in a new
                    // cgroup.
                    edge.oom_kills_at_spawn = if p.fresh {
                        0
                    } else {
                        cg.memory_events(name).map(|e| e.oom_kill).unwrap_or(0)
                    };
                    if !p.not_enforced.is_empty()
                        && KeySet::of(&p.not_enforced) != edge.not_enforced
                    {
                        crate::warn!(
                            "{name}: not enforced (controller not available): {}",
                            NotEnforcedText(&p.not_enforced)
                        );
                    }
                    edge.not_enforced = KeySet::of(&p.not_enforced);
                    edge.cgroup = Some(slot.limits_gen);
                    dir = Some(p.dir);
                }
                Err(e) => {
                    return Err(why(format_args!("{e}")));
                }
            }
        }
        let dir = match (cg, edge.cgroup, dir) {
            (None, _, _) => None,
            (Some(_), Some(_), Some(d)) => Some(d),
            (Some(cg), Some(_), None) => match cg.unit_dir(name) {
                Ok(d) => Some(d),
                Err(e) => return Err(why(format_args!("{e}"))),
            },
            (Some(_), None, _) => return Err(why(format_args!("cgroup: not prepared"))),
        };
        let cgfd = dir.as_ref().map(|d| d.as_fd());
        // A unit that asked for a filter never runs without one.
        let edge_filter = edge.seccomp.as_deref();
        if def.seccomp.is_some() && edge_filter.is_none() {
            return Err(why(format_args!(
                "seccomp: no filter for this architecture, not starting"
            )));
        }
        let flags = rustix::pipe::PipeFlags::CLOEXEC;
        // PID 1's ends, kept past the start (`spawn::kept`).
        let pipe = |f| rustix::pipe::pipe_with(f).map(|(r, w)| (spawn::kept(r), w));
        let log_pipe = if def.output == Output::Log {
            match pipe(flags) {
                Ok(p) => Some(p),
                Err(e) => {
                    return Err(why(format_args!("log pipe: {}", Os::from(e))));
                }
            }
        } else {
            None
        };
        let notify_pipe = if def.ready == Ready::Notify {
            match pipe(flags) {
                Ok(p) => Some(p),
                Err(e) => {
                    return Err(why(format_args!("notify pipe: {}", Os::from(e))));
                }
            }
        } else {
            None
        };
        // Before the notify socket: a failure after its bind leaves a file.
        let report_pipe = if def.namespaces.has(unit::Namespaces::PID) {
            match pipe(flags | rustix::pipe::PipeFlags::NONBLOCK) {
                Ok(p) => Some(p),
                Err(e) => {
                    return Err(why(format_args!("exit report pipe: {}", Os::from(e))));
                }
            }
        } else {
            None
        };
        let sock_path = notify_path(name);
        let notify_sock = if def.ready == Ready::SdNotify {
            match bind_notify_socket(sock_path.as_str(), notify_owner(def)) {
                Ok(s) => Some(spawn::kept(s)),
                Err(e) => {
                    return Err(why(format_args!(
                        "notify socket {}: {}",
                        sock_path.as_str(),
                        Os::from(e)
                    )));
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
            console: None,
            def,
            cgroup: cgfd,
            stdio,
            notify_fd: notify_pipe.as_ref().map(|(_, w)| w.as_fd()),
            notify_socket: notify_sock.as_ref().map(|_| sock_path.as_str()),
            uid: None,
            gid: None,
            groups: &[],
            exit_report: report_pipe.as_ref().map(|(_, w)| w.as_fd()),
            seccomp: edge_filter,
            decided_ns,
            grace,
            // Not on probation, stamped, or without a cgroup's memory.events.
            relaunch: def.relaunches_in_place()
                && !slot.rt.probation
                && decided_ns.is_none()
                && cgfd.is_some(),
        };
        let pending = match spawn::start(&req) {
            Ok(p) => p,
            Err(e) => {
                if notify_sock.is_some() {
                    unlink_notify(sock_path.as_str());
                }
                let errno = Errno::from_raw_os_error(e.errno);
                if e.step == spawn::Step::Clone
                    && cgfd.is_some()
                    && crate::cgroup::missing::clone_into_cgroup_refused(errno)
                {
                    self.drop_cgroups();
                    return Err(why(format_args!("clone3 into cgroup: {}", Os::from(errno))));
                }
                let userns =
                    e.step == spawn::Step::Clone && def.namespaces.has(unit::Namespaces::USER);
                if let Some(h) = crate::boot::kernel::user_ns_refused(errno).filter(|_| userns) {
                    return Err(why(format_args!("cannot start: {h}")));
                }
                return Err(why(format_args!(
                    "cannot start {}: {e}",
                    def.exec.first().unwrap_or("")
                )));
            }
        };
        let notify = notify_pipe.map(|(r, _w)| r).or(notify_sock);
        let ends = Ends {
            log: log_pipe,
            notify,
            report: report_pipe.map(|(r, _w)| r),
        };
        Ok((pending, ends))
    }
}

/// A new run's output pipe (with PID 1's copy of its write end),
/// readiness fd and reaper's report pipe, for `watch_ends`: into the
/// epoll set after the wait in place (two system calls each, in a
/// restart's window otherwise).
pub(super) struct Ends {
    pub(super) log: Option<(OwnedFd, OwnedFd)>,
    pub(super) notify: Option<OwnedFd>,
    pub(super) report: Option<OwnedFd>,
}

pub(super) fn notify_path(name: &str) -> heapless::String<64> {
    let mut p = heapless::String::new();
    let _ = p.push_str(NOTIFY_DIR);
    let _ = p.push('/');
    let _ = p.push_str(name);
    p
}

/// A unit's notify socket file (`notify_path`) removed, its path made a
/// C string by `CPath`: rustix's `unlink` of a `&str` compiled a path
/// conversion of its own for the two callers.
pub(super) fn unlink_notify(path: &str) {
    let mut c = crate::sys::path::CPath::new();
    if let Ok(p) = c.of_str(path) {
        let _ = rustix::fs::unlink(p);
    }
}

/// Who may send to a unit's notify socket until its child gives it to the
/// unit's `user` and `group` (`spawn::privs::lookup`, which reads the
/// passwd file PID 1 does not): root, as the host sees the unit's root
/// (through its user namespace's map, if it has one, so that the child,
/// root there, may give it away).
fn notify_owner(def: &unit::UnitDef) -> (u32, u32) {
    let shift = def.user_map_effective().map_or(0, |m| m.outside);
    (shift, shift)
}

/// The unit's `sd_notify` socket, reachable by its owner only: mode 0600
/// (sending needs write permission on the socket file) in a directory
/// others may pass through but not list. Units of other users cannot
/// send to it; a `root` unit gets it bound into its root and sees no
/// other (spawn::sandbox).
#[inline(never)]
fn bind_notify_socket(path: &str, (uid, gid): (u32, u32)) -> Result<OwnedFd, Errno> {
    use rustix::fs::{Gid, Mode, Uid};
    use rustix::net::{bind, socket_with, AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
    // The path as a C string once, for the five calls below.
    let mut c = crate::sys::path::CPath::new();
    let path = c.of_str(path)?;
    let _ = rustix::fs::unlink(path);
    let s = socket_with(
        AddressFamily::UNIX,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )?;
    let addr = SocketAddrUnix::new(path)?;
    bind(&s, &addr)?;
    let private = rustix::fs::chmod(path, Mode::RUSR | Mode::WUSR)
        .and_then(|()| rustix::fs::chown(path, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid))));
    if let Err(e) = private {
        let _ = rustix::fs::unlink(path);
        return Err(e);
    }
    Ok(s)
}

/// Limit keys as `memory.max memory.low`.
pub(super) struct NotEnforcedText<'a>(pub(super) &'a [&'static str]);

impl core::fmt::Display for NotEnforcedText<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for (i, k) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(k)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
