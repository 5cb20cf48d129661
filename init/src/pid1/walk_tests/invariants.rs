//! What must hold after every step: PID 1's edges against the
//! supervisor's slots, its epoll set against its fds.

use super::*;

pub(super) fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

impl Walk {
    /// Each unit's phase, pid, and what its edge holds, for the trace.
    pub(super) fn state(&self) -> String {
        let mut s = String::new();
        for (i, e) in self.p.edges.iter().enumerate() {
            let Some(slot) = self.p.sup.slot(i as u16) else {
                continue;
            };
            let r = &slot.rt;
            let _ = write!(
                s,
                "{}:{:?}{}{}{}{}{}{} ",
                slot.def.name,
                r.phase,
                if r.probation { "/prob" } else { "" },
                if e.shed { "/shed" } else { "" },
                if e.exec.is_some() { "/exec" } else { "" },
                if e.drain.active() { "/drain" } else { "" },
                match (e.notify.is_some(), e.notify_held, e.notify_read.is_some()) {
                    (_, 0, _) => "",
                    (_, super::super::sources::HELD, _) => "/notify-waits",
                    (_, _, true) => "/notify-closer",
                    _ => "/notify-held",
                },
                match slot.retired {
                    Retired::No => "",
                    Retired::Leaving => "/leaving",
                    Retired::Free => "/free",
                }
            );
        }
        s
    }

    /// PID 1's state agrees with the supervisor's.
    pub(super) fn check(&self, what: &str) {
        let p = &self.p;
        let bad = |msg: String| self.fail(what, msg);
        // (fd, events, token) of each registration.
        let reg = p
            .epoll
            .as_ref()
            .map(crate::testutil::epoll_watches)
            .unwrap_or_default();
        let watched = |fd: Option<&OwnedFd>, base: u64, u: u16| {
            let (fd, tok) = fd.map(|fd| (fd.as_raw_fd(), base + u64::from(u))).unzip();
            fd.is_none_or(|fd| reg.iter().any(|r| (r.0, r.2) == (fd, tok.unwrap_or(0))))
        };
        let shutting = p.sup.shutting_down().is_some();
        for (i, e) in p.edges.iter().enumerate() {
            let u = i as u16;
            let Some(s) = p.sup.slot(u) else {
                self.fail(what, format!("edge {i} without a slot"));
            };
            let (name, r) = (s.def.name.as_str(), &s.rt);
            let exec = p.exec_pid(u).is_some();
            // A handshake is a start the supervisor has in flight, and
            // such a start has its handshake.
            if exec != (r.phase == Phase::Starting && r.pid == 0) {
                bad(format!(
                    "{name} {:?} pid {} exec wait {exec}",
                    r.phase, r.pid
                ));
            }
            // Every fd the loop waits on is in the epoll set, under its
            // unit's token.
            for (fd, base, role) in [
                (e.log_rd.as_ref(), TOKEN_LOG, "output"),
                (
                    e.notify.as_ref().filter(|_| e.notify_held == 0),
                    TOKEN_NOTIFY,
                    "notify",
                ),
                (e.notify_read.as_ref(), TOKEN_NOTIFY_READ, "closer"),
                (e.exit_report.as_ref(), TOKEN_REPORT, "report"),
                (
                    e.pressure.as_ref().map(|(f, _)| f),
                    TOKEN_PRESSURE,
                    "pressure",
                ),
            ] {
                if !watched(fd, base, u) {
                    bad(format!("{name}'s {role} fd is not in the epoll set"));
                }
            }
            // An exit report is a run's (a PID namespace's reaper's): over
            // with its process, or when the supervisor lets go of it.
            // (Not the converse: a reaper killed closes its pipe before
            // its reap, at a time the walk cannot see.)
            if e.exit_report.is_some() && r.pid == 0 && !exec {
                bad(format!(
                    "{name} {:?} holds an exit report with no run",
                    r.phase
                ));
            }
            // Readiness is a run's: over with its process.
            if e.notify.is_some() && r.pid == 0 && !exec {
                bad(format!(
                    "{name} {:?} holds a notify fd with no run",
                    r.phase
                ));
            }
            // Shed: stopped, until the calm or the operator starts it.
            if e.shed
                && (s.retired == Retired::Free
                    || matches!(r.phase, Phase::Running | Phase::Starting))
            {
                bad(format!("{name} shed but {:?} {:?}", r.phase, s.retired));
            }
            if let Some(b) = e.rare.as_deref() {
                let holds = !b.last_error.is_empty()
                    || b.last_good.is_some()
                    || b.rejected.is_some()
                    || b.owed.is_some()
                    || b.pressure_stopped;
                if !holds {
                    bad(format!("{name}'s rare box holds nothing"));
                }
                if b.last_good.is_some() && !r.probation && s.retired == Retired::No && !shutting {
                    bad(format!("{name} keeps a last good definition off probation"));
                }
            }
            if (e.drain.active() || e.pressure.is_some()) && e.cgroup.is_none() {
                bad(format!(
                    "{name} drains or watches pressure without a cgroup"
                ));
            }
            if e.cgroup.is_some() && p.cg.is_none() {
                bad(format!("{name} has a cgroup without a hierarchy"));
            }
            // A freed slot's edge has let go of everything but a cgroup
            // still draining.
            if s.retired == Retired::Free {
                let holds = e.log_rd.is_some()
                    || e.log.is_allocated()
                    || e.notify.is_some()
                    || e.notify_read.is_some()
                    || e.exit_report.is_some()
                    || e.rare.is_some()
                    || e.verdict.is_some()
                    || (e.cgroup.is_some() && !p.removing)
                    || exec;
                if holds {
                    bad(format!("{name}'s freed slot keeps its run's state"));
                }
            }
            // A verdict waited for is on its way.
            let judged = r.probation && !s.judged_when_started() && s.retired == Retired::No;
            if e.verdict == Some(gate::Verdict::Pending) && judged && !shutting {
                let coming = match r.phase {
                    Phase::Waiting | Phase::Starting | Phase::Stopping => true,
                    Phase::Running => r.deadline.is_some(),
                    _ => false,
                };
                if !coming {
                    bad(format!(
                        "{name} waits for a verdict that is not coming, {:?}",
                        r.phase
                    ));
                }
            }
        }
        // Every registration is an fd some edge (or the loop) waits on.
        for &(fd, _, tok) in reg.iter() {
            let owner = |base: u64| {
                unit_of(tok, base).and_then(|u| Some((u, p.edges.get(usize::from(u))?)))
            };
            let is = |f: Option<&OwnedFd>| f.is_some_and(|f| f.as_raw_fd() == fd);
            let ok = tok == TOKEN_TIMER
                || p.shed.as_ref().is_some_and(|s| is(s.trigger.as_ref()))
                || owner(TOKEN_LOG).is_some_and(|(_, e)| is(e.log_rd.as_ref()))
                || owner(TOKEN_NOTIFY).is_some_and(|(_, e)| is(e.notify.as_ref()))
                || owner(TOKEN_NOTIFY_READ).is_some_and(|(_, e)| is(e.notify_read.as_ref()))
                || owner(TOKEN_REPORT).is_some_and(|(_, e)| is(e.exit_report.as_ref()))
                || owner(TOKEN_PRESSURE)
                    .is_some_and(|(_, e)| is(e.pressure.as_ref().map(|x| &x.0)))
                || owner(TOKEN_EXEC).is_some_and(|(u, _)| p.exec_pid(u).is_some())
                || owner(TOKEN_CGEVENTS).is_some_and(|(_, e)| e.drain.active());
            if !ok {
                bad(format!(
                    "epoll watches fd {fd} (token {tok:#x}) that nobody holds"
                ));
            }
        }
        self.check_notify(what, &reg);
        let fds = open_fds();
        let bound = self.fds_before + 16 + FDS_PER_UNIT * p.edges.len();
        if fds > bound {
            bad(format!("{fds} fds open, more than {bound}"));
        }
    }

    /// The units' notify sockets: a socket is out of the epoll set (there
    /// with no events) while a closer reads its head datagram (`notify_read`,
    /// its pipe, meanwhile) or while it waits for a closer's place; each
    /// held is the one bound at its unit's path, and that file is there
    /// only while a run holds its socket.
    fn check_notify(&self, what: &str, reg: &[(i32, u32, u64)]) {
        use crate::sys::passed::places;
        let bad = |msg: String| self.fail(what, msg);
        let p = &self.p;
        let closers = places();
        let child = |pid: u32| crate::sys::raw::child(pid);
        // A place came free (a closer's reap): the park went to a closer.
        if crate::sys::passed::parked() && !closers.iter().all(|&c| child(c)) {
            bad(format!(
                "sockets wait in the park, a place free: {closers:?}"
            ));
        }
        for (i, e) in p.edges.iter().enumerate() {
            let Some(name) = p.sup.slot(i as u16).map(|s| s.def.name.as_str()) else {
                continue;
            };
            let held = e.notify_held;
            // A closer's pipe is watched only while the socket is held by
            // that closer, and that only until its reap (which reads the
            // socket again). (Not the converse: a freed slot lets go of
            // the pipe, its `notify_held` left to the closer's reap.)
            let by_closer = held != 0 && held != super::super::sources::HELD;
            if e.notify_read.is_some() && !by_closer {
                bad(format!(
                    "{name}'s notify socket held by {held}, closer's pipe {}",
                    e.notify_read.is_some()
                ));
            }
            if by_closer && !closers.contains(&held) {
                bad(format!(
                    "{name}'s notify socket held by {held}, no closer's"
                ));
            }
            // Waiting for a place: a closer's reap is to come.
            if held == super::super::sources::HELD && !closers.iter().any(|&c| child(c)) {
                bad(format!("{name}'s notify socket waits, no closer runs"));
            }
            let Some(fd) = e.notify.as_ref() else {
                continue;
            };
            let events = reg.iter().find(|r| r.0 == fd.as_raw_fd()).map(|r| r.1);
            let reading = events.is_some_and(|ev| ev & epoll::EventFlags::IN.bits() != 0);
            if reading == (held != 0) {
                bad(format!(
                    "{name}'s notify socket held by {held}, epoll events {events:?}"
                ));
            }
            if crate::sys::file::is_socket(fd) {
                let at = fd
                    .try_clone()
                    .ok()
                    .map(std::os::unix::net::UnixDatagram::from)
                    .and_then(|s| s.local_addr().ok()?.as_pathname().map(PathBuf::from));
                let path = super::super::executor::notify_path(name);
                if at.as_deref() != Some(std::path::Path::new(path.as_str())) {
                    bad(format!("{name} holds the notify socket bound at {at:?}"));
                }
            }
        }
        // A socket's file is there only while a run holds that socket
        // (where the walk's /run/wren is its own: as root).
        if !rustix::process::geteuid().is_root() {
            return;
        }
        for name in NAMES {
            let path = super::super::executor::notify_path(name);
            let there = std::path::Path::new(path.as_str()).exists();
            let holds = (0..p.sup.len()).any(|i| {
                let named = p
                    .sup
                    .slot(i as u16)
                    .is_some_and(|s| s.def.name.as_str() == name);
                let sock = p.edges.get(i).and_then(|e| e.notify.as_ref());
                named && sock.is_some_and(crate::sys::file::is_socket)
            });
            if there != holds {
                bad(format!(
                    "{path} there {there}, a socket of {name}'s held {holds}"
                ));
            }
        }
    }
}
