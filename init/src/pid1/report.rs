//! A PID-namespace reaper's exit report as a loop source.
//!
//! The reaper writes how the service ended to its report pipe, then exits;
//! but the kernel tears the unit's PID and mount namespaces down in that
//! exit (every copied mount unmounted) before it tells PID 1, so waiting
//! for SIGCHLD would put the teardown on every restart's path. The report
//! is therefore the unit's exit: read here, it is fed as `Exited` of the
//! reaper's pid at once, and the restart spawns while the old reaper is
//! still going. The old reaper is reaped later like any child the
//! supervisor no longer knows (`sources::reap`). Not so for a unit with a
//! `pids.max`: a task counts against it until reaped, so its report only
//! lets the reaper go, and the reap is the exit.
//!
//! The reaper kills and reaps every other process of its namespace before
//! it reports (`spawn::reaper`), as the kernel would at its exit: when the
//! report comes, nothing of the run is left but the reaper itself, which
//! holds nothing of the service's but the report pipe and, as its stdout,
//! the output pipe (never written: so its end of file comes after the
//! report, `spawn::reaper_child`). PID 1 holds the report pipe open until
//! its timer turn after the new run has exec'd (the restart's console
//! line waits for the same turn, 20 ms), and the reaper exits only when
//! it is closed (at most a second
//! later): its teardown, and the kernel workers' after it, come after the
//! new service's first steps instead of among them on one CPU. So the new instance shares the cgroup with the exiting reaper:
//! the exit's `KillCgroup` kills nothing (`stopping::kill_cgroup`; the
//! reaper is on its way out), and the restart does not wait for the
//! cgroup to empty, which would put the teardown back on its path. A stop
//! still waits for `cgroup.events` to say the cgroup is empty, reaper
//! included, with its kills and their escalation, so `initctl stop` and
//! the shutdown see the old reaper until it is gone.

use super::event_loop::{self, watch};
use super::sources::pids_limited;
use super::Pid1;
use crate::spawn::reaper;
use crate::supervisor::{Event, Phase};
use crate::vocab::{signal, Exit};
use rustix::event::epoll;
use rustix::fd::OwnedFd;
use rustix::io::Errno;

impl Pid1 {
    /// After a spawn: the new reaper's report pipe into the loop.
    pub(super) fn watch_report(&mut self, u: u16, fd: Option<OwnedFd>) {
        let Some(edge) = self.edges.get_mut(usize::from(u)) else {
            return;
        };
        super::event_loop::unwatch(self.epoll.as_ref(), edge.exit_report.take());
        edge.exit_report = match self.epoll.as_ref() {
            Some(ep) => fd.and_then(|r| watch(ep, r, event_loop::TOKEN_REPORT + u64::from(u))),
            // No loop (tests): the reap reads the report.
            None => fd,
        };
    }

    /// The report pipe of unit `u` is readable: the service's end (or end
    /// of file: the reaper went without a report, and its own exit status,
    /// at the reap, is all there is).
    pub(super) fn on_report(&mut self, u: u16) {
        let pid = self
            .exec_pid(u)
            .or_else(|| self.sup.slot(u).map(|s| s.rt.pid).filter(|&p| p != 0));
        let Some(edge) = self.edges.get_mut(usize::from(u)) else {
            return;
        };
        let Some(fd) = edge.exit_report.as_ref() else {
            return;
        };
        let Some(pid) = pid else {
            // No process to say it of: left to the reap, out of the loop.
            if let Some(ep) = self.epoll.as_ref() {
                let _ = epoll::delete(ep, fd);
            }
            return;
        };
        let mut b = [0u8; reaper::REPORT_LEN];
        let exit = match rustix::io::read(fd, &mut b) {
            Ok(n) => b.get(..n).and_then(reaper::decode),
            Err(Errno::AGAIN | Errno::INTR) => return,
            Err(_) => None,
        };
        let exit = match exit {
            Some((e, true)) => {
                // The first run's exec answered first, should its handshake
                // be read in the same turn (PID 1 late by a second or
                // more): the supervisor must know the run this ends.
                self.reaped_unit(pid);
                return self.on_relaunched(u, e);
            }
            Some((e, false)) => Some(e),
            None => None,
        };
        if let (Some(fd), Some(ep)) = (edge.exit_report.take(), self.epoll.as_ref()) {
            let _ = epoll::delete(ep, &fd);
            edge.drain.held = Some(fd);
        }
        let Some(exit) = exit else {
            edge.drain.held = None;
            return;
        };
        // No cgroup to wait on for the reaper's end (`cgroup::missing`):
        // the run is over when the reaper is reaped, as a stop must not be
        // answered before. A `pids.max`: the old reaper counts against it
        // until it is reaped (and released first: `sources::reap`), so a
        // restart beside it could be refused its fork at the limit. Either
        // way the pipe closes now, so the reaper exits at once, and its
        // reap takes the report kept here.
        if self.cg.is_none() || pids_limited(self.sup.slot(u)) {
            edge.drain.held = None;
            edge.drain.early = Some(exit);
            return;
        }
        // As `reap` does for an exit: a handshake still open is settled
        // first (the service is gone and the reaper closed its end).
        let run = self.reaped_unit(pid);
        // Only while `pid` is still the unit's run: a handshake settled
        // just now as failed may have started the next run already
        // (`restart_delay = 0ms`), whose sd_notify socket and report pipe
        // `classify_exit` would close (as `reap` guards it).
        let ours = run == Some(u);
        let exit = match ours {
            true => self.classify_exit(u, exit),
            false => exit,
        };
        if ours {
            if let Some(e) = self.edges.get_mut(usize::from(u)) {
                e.drain.reported = true;
            }
        }
        self.feed(Event::Exited { pid, exit });
        if ours {
            self.settle_oom(u);
        }
        // The old reaper exits once its pipe is closed: at the loop's next
        // timer turn after the new run exec'd (`release_reports`), or now
        // if no run is on its way (a stop waits for it).
        let restarted = self
            .sup
            .slot(u)
            .is_some_and(|s| matches!(s.rt.phase, Phase::Starting | Phase::Running));
        if let Some(e) = self.edges.get_mut(usize::from(u)) {
            if !restarted {
                e.drain.held = None;
            }
        }
    }

    /// The reaper started the service again in place after it ended so
    /// (`reaper::Leave`): the run goes on, its report pipe still watched.
    /// The end is told apart from an OOM kill as an exit's is.
    fn on_relaunched(&mut self, u: u16, exit: Exit) {
        if let Some(e) = self.edges.get_mut(usize::from(u)) {
            if self.cg.is_some() && exit == Exit::signal(signal::KILL) {
                e.drain.oom_unread = true;
            }
        }
        self.feed(Event::Relaunched { unit: u, exit });
        self.settle_oom(u);
        // Taken as the run's end (a stop was on its way): the new run the
        // reaper started is killed now, as the stop's signal may have
        // come before it existed, and the reaper's last report is not
        // waited for; its pipe closes now, as after an end that is not
        // restarted. (A run started again by that step, `initctl
        // restart`'s, has its own pipe there already: the old one went
        // with `watch_report`, and its spawn cleared the cgroup.)
        let ended = !self
            .sup
            .slot(u)
            .is_some_and(|s| matches!(s.rt.phase, Phase::Starting | Phase::Running));
        if ended {
            self.kill_unless_killed(u);
        }
        let Some(fd) = self
            .edges
            .get_mut(usize::from(u))
            .filter(|_| ended)
            .and_then(|e| e.exit_report.take())
        else {
            return;
        };
        if let Some(ep) = self.epoll.as_ref() {
            let _ = epoll::delete(ep, &fd);
        }
    }

    /// On the loop's timer (the console's status lines wait for it, 20 ms
    /// after a restart): the reapers of runs whose next run has exec'd
    /// may exit now. Their teardown then comes after the new service's
    /// first steps, not among them.
    pub(super) fn release_reports(&mut self) {
        for e in self.edges.iter_mut() {
            if e.exec.is_none() {
                e.drain.held = None;
            }
        }
    }
}

#[cfg(test)]
mod tests;
