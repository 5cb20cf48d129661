//! Feeding the hardware watchdog from the loop's timer: every third of its
//! timeout while the loop runs and no `critical` unit has failed. A loop
//! that stalls stops feeding by itself, and the board resets.

use super::{now, Pid1};
use crate::boot::cmdline::WatchdogOption;
use crate::kmsg;
use crate::supervisor::{Note, Phase, Slot};
use crate::watchdog::Watchdog;
use rustix::io::Errno;

impl Pid1 {
    /// `wren.watchdog`: open and arm the device (absent: said once, off).
    pub(super) fn arm_watchdog(&mut self, opt: &WatchdogOption) {
        let dev = opt.device.as_str();
        match Watchdog::open(dev, opt.timeout_s) {
            Ok(w) => {
                crate::info!(
                    "watchdog {dev}: armed, timeout {} s, fed every {} ms",
                    w.timeout_s,
                    w.period()
                );
                self.watchdog_next = Some(now().saturating_add(w.period()));
                self.watchdog = Some(w);
            }
            Err(Errno::NOENT) => crate::info!("watchdog {dev}: absent, not armed"),
            Err(Errno::NOTBLK | Errno::NOTTY) => {
                crate::error!("wren.watchdog: {dev} is not a watchdog device; not armed")
            }
            Err(e) => crate::error!("watchdog {dev}: {e}; not armed"),
        }
    }

    /// The watchdog the previous PID 1 kept open across its exec
    /// (`reexec`): taken as it is, never closed and opened again (a driver
    /// without the magic close would stop at that close).
    pub(super) fn take_watchdog(&mut self, fd: Option<rustix::fd::OwnedFd>, secs: u32) {
        let Some(fd) = fd else {
            crate::error!("handover: the watchdog's fd is not open");
            return;
        };
        match Watchdog::handed_over(fd, secs) {
            Ok(w) => self.watchdog = Some(w),
            Err(e) => crate::error!("handover: the watchdog's fd: {e}; not taken"),
        }
    }

    /// At the boot, `wren.watchdog`. After a re-exec: the feeding goes on
    /// (a device handed over), or the device is opened again (from a
    /// build that closed it), unless a `critical` unit has failed: then it
    /// is not fed, and the board resets as it would have without the
    /// re-exec.
    pub(super) fn start_watchdog(&mut self, opt: Option<&WatchdogOption>, resumed: bool) {
        if let Some(name) = self.critical_failed().filter(|_| resumed) {
            crate::error!("{name}: critical unit failed; watchdog not fed");
            return;
        }
        if let Some(w) = self.watchdog.as_ref() {
            w.feed();
            self.watchdog_next = Some(now().saturating_add(w.period()));
            crate::info!("watchdog: handed over, timeout {} s", w.timeout_s);
        } else if let Some(opt) = opt {
            self.arm_watchdog(opt);
        }
    }

    /// A `critical` unit that has failed: the watchdog is fed no more.
    /// Its own failure only: one held back because a reload removed a unit
    /// it is `after` (`DepMissing`) is the operator's doing, which a reset
    /// would not undo (docs/units.md, "Critical units").
    pub(super) fn critical_failed(&self) -> Option<&str> {
        self.sup
            .slots()
            .find(|s| failed_critically(s))
            .map(|s| s.def.name.as_str())
    }

    /// `status NAME` of a failed critical unit, with a watchdog armed:
    /// the board is about to reset. The console said so once; this is
    /// for the operator who logs in after. Said whole, the reason's own
    /// text cut to make room.
    pub(super) fn critical_reason(
        &self,
        name: &str,
        reason: &mut heapless::String<{ crate::proto::REASON_MAX }>,
    ) {
        const RESETS: &str = ", watchdog no longer fed: the board resets";
        let this = self.sup.slots().find(|s| s.def.name.as_str() == name);
        let shutting = self.sup.shutting_down().is_some();
        if self.watchdog.is_none() || shutting || !this.is_some_and(failed_critically) {
            return;
        }
        *reason = crate::proto::formatted_then(format_args!("{reason}"), RESETS);
    }

    /// A shutdown feeds the watchdog through its stops even once a critical
    /// unit's failure stopped the feeding: it ends in reboot(2) within its
    /// deadline, and a reset before its sync would lose what the units
    /// wrote (the operator's `reboot` after the failure, say).
    pub(super) fn feed_through_shutdown(&mut self) {
        if self.watchdog.is_some() && self.watchdog_next.is_none() {
            self.watchdog_next = Some(now());
        }
    }

    /// The watchdog for a bounded wait to feed (a reload's or a verdict's
    /// disk work), or none once the feeding has stopped: a critical
    /// unit's failure must reset the board, however often the units are
    /// reloaded meanwhile. (A shutdown feeds again: `feed_through_shutdown`.)
    pub(super) fn fed_watchdog(&self) -> Option<&crate::watchdog::Watchdog> {
        self.watchdog
            .as_ref()
            .filter(|_| self.watchdog_next.is_some())
    }

    /// Timer: feed when due, unless a critical unit has failed.
    pub(super) fn tend_watchdog(&mut self) {
        let t = now();
        let (Some(w), Some(next)) = (self.watchdog.as_ref(), self.watchdog_next) else {
            return;
        };
        if next > t {
            return;
        }
        // One failing while the shutdown stops what it serves does not
        // stop the feeding: the board would reset before the sync and
        // the unmounts (a failure before it has stopped it already).
        let failed = self
            .critical_failed()
            .filter(|_| self.sup.shutting_down().is_none());
        if let Some(name) = failed {
            kmsg::console_line(format_args!(
                "[FAILED] {name}: critical unit failed; the watchdog is no longer fed, the board resets within {} s",
                w.timeout_s
            ));
            crate::error!("{name}: critical unit failed; watchdog no longer fed");
            self.watchdog_next = None;
            // The reset loses what is only in the page cache: written
            // out now (units that go on writing lose what comes after).
            crate::boot::shutdown::sync_by_kernel();
            return;
        }
        w.feed();
        self.watchdog_next = Some(t.saturating_add(w.period()));
    }
}

/// Its own failure (`critical_failed`).
fn failed_critically(s: &Slot) -> bool {
    s.def.critical && s.rt.phase == Phase::Failed && s.rt.last_note != Some(Note::DepMissing)
}

#[cfg(test)]
mod tests {
    use super::super::now;
    use super::super::tests::{pid1_with, step, watched};
    use crate::supervisor::{Event, Phase};
    use crate::vocab::{Exit, ShutdownKind};

    /// A critical unit that fails while a shutdown stops the units after
    /// it: the watchdog is still fed (docs/boot.md: through the
    /// shutdown), not left to reset the board before the sync.
    #[test]
    fn a_critical_failure_during_a_shutdown_keeps_the_watchdog_fed() {
        let mut p = pid1_with(&[
            ("web", "exec = /bin/true\ncritical = yes\n"),
            ("app", "exec = /bin/true\nafter = web\n"),
        ]);
        let fed = watched(&mut p);
        p.watchdog_next = Some(0);
        let web = p.sup.index("web").unwrap();
        let app = p.sup.index("app").unwrap();
        step(&mut p, 1, Event::Boot);
        step(&mut p, 2, Event::spawned(web, 100));
        step(&mut p, 3, Event::spawned(app, 101));
        step(&mut p, 4, Event::Shutdown(ShutdownKind::Poweroff));
        let exit = Exit::Signal(11);
        step(&mut p, 5, Event::Exited { pid: 100, exit });
        assert_eq!(p.sup.slot(web).unwrap().rt.phase, Phase::Failed);
        assert!(p.critical_failed().is_some());
        p.tend_watchdog();
        assert!(p.watchdog_next.is_some_and(|n| n > now()), "no longer fed");
        let written = rustix::fs::fstat(&fed).unwrap().st_size;
        assert!(written > 0, "not fed");
    }

    /// After a re-exec the watchdog handed over is fed at once and its
    /// feeding goes on, unless a critical unit has failed: then the board
    /// resets as it would have without the re-exec.
    #[test]
    fn a_resumed_pid1_feeds_the_watchdog_unless_a_critical_unit_failed() {
        let units = [("web", "exec = /bin/true\ncritical = yes\nrestart = never\n")];
        for failed in [false, true] {
            let mut p = pid1_with(&units);
            if failed {
                fail_critically(&mut p);
            }
            let fed = watched(&mut p);
            p.start_watchdog(None, true);
            assert_eq!(p.watchdog_next.is_some(), !failed, "failed: {failed}");
            let written = rustix::fs::fstat(&fed).unwrap().st_size;
            assert_eq!(written > 0, !failed, "failed: {failed}");
        }
    }

    /// `web` (critical, `restart = never`) started and dead of SIGSEGV:
    /// the feeding stopped.
    fn fail_critically(p: &mut super::super::Pid1) {
        let web = p.sup.index("web").unwrap();
        step(p, 1, Event::Boot);
        step(p, 2, Event::spawned(web, 100));
        let exit = Exit::Signal(11);
        step(p, 3, Event::Exited { pid: 100, exit });
        p.tend_watchdog();
        assert_eq!(p.watchdog_next, None, "still fed after the failure");
    }

    /// A critical unit failed and the feeding stopped; the operator's
    /// `reboot` then stops the units with the watchdog fed again, so the
    /// board does not reset before the shutdown's sync.
    #[test]
    fn a_shutdown_after_a_critical_failure_is_fed_through() {
        let web = "exec = /bin/true\ncritical = yes\nrestart = never\n";
        let mut p = pid1_with(&[("web", web)]);
        let fed = watched(&mut p);
        p.watchdog_next = Some(0);
        fail_critically(&mut p);
        let before = rustix::fs::fstat(&fed).unwrap().st_size;
        step(&mut p, 4, Event::Shutdown(ShutdownKind::Reboot));
        p.tend_shutdown();
        p.tend_watchdog();
        assert!(p.watchdog_next.is_some(), "not fed through the shutdown");
        assert!(rustix::fs::fstat(&fed).unwrap().st_size > before, "not fed");
    }

    /// A critical unit waits for `net`, restarting; the operator removes
    /// net.unit and reloads. The unit cannot start now (its `after` names
    /// a unit not loaded), but by the operator's doing, not its own
    /// failure: the watchdog is still fed (a reset would boot without it
    /// all the same).
    #[test]
    fn a_dependency_removed_by_a_reload_does_not_stop_the_feeding() {
        use crate::supervisor::Actions;
        let mut p = pid1_with(&[
            (
                "net",
                "type = oneshot\nexec = /bin/false\nrestart = on-failure\n",
            ),
            ("app", "exec = /bin/true\ncritical = yes\nafter = net\n"),
        ]);
        let fed = watched(&mut p);
        let net = p.sup.index("net").unwrap();
        let app = p.sup.index("app").unwrap();
        step(&mut p, 1, Event::Boot);
        step(&mut p, 2, Event::spawned(net, 100));
        let exit = Exit::Code(1);
        step(&mut p, 3, Event::Exited { pid: 100, exit });
        assert_eq!(p.sup.slot(app).unwrap().rt.phase, Phase::Waiting);
        let mut out = Actions::default();
        out.fit(p.sup.len());
        let kept = |n: &str| n == "app";
        p.sup
            .reload(10, &mut Vec::new().into_iter(), &kept, &mut out);
        let app = p.sup.index("app").unwrap();
        assert_eq!(p.sup.slot(app).unwrap().rt.phase, Phase::Failed);
        assert_eq!(p.critical_failed(), None);
        p.watchdog_next = Some(0);
        p.tend_watchdog();
        assert!(rustix::fs::fstat(&fed).unwrap().st_size > 0, "not fed");
    }

    /// `status NAME` of a failed critical unit says the board is about to
    /// reset, whole even after a long reason; not for a unit that is not
    /// critical, nor without a watchdog.
    #[test]
    fn status_of_a_failed_critical_unit_says_the_board_resets() {
        let crit = "exec = /bin/true\ncritical = yes\nrestart = never\n";
        let plain = "exec = /bin/true\nrestart = never\n";
        let mut p = pid1_with(&[("web", crit), ("db", plain)]);
        let reason = |p: &crate::pid1::Pid1, name: &str, was: &str| {
            let mut r = heapless::String::new();
            let _ = r.push_str(was);
            p.critical_reason(name, &mut r);
            r.as_str().to_owned()
        };
        step(&mut p, 1, Event::Boot);
        step(&mut p, 2, Event::spawned(0, 100));
        step(&mut p, 2, Event::spawned(1, 101));
        for pid in [100, 101] {
            let exit = Exit::Code(1);
            step(&mut p, 3, Event::Exited { pid, exit });
        }
        assert_eq!(reason(&p, "web", "exit 1"), "exit 1", "no watchdog");
        let _fed = watched(&mut p);
        let resets = "exit 1, watchdog no longer fed: the board resets";
        assert_eq!(reason(&p, "web", "exit 1"), resets);
        assert_eq!(reason(&p, "db", "exit 1"), "exit 1");
        let long = "cannot start /usr/bin/app: execve: No such file or directory (os error 2)";
        let r = reason(&p, "web", long);
        assert!(
            r.ends_with(", watchdog no longer fed: the board resets"),
            "{r}"
        );
        assert!(r.starts_with("cannot start /usr/bin/app: execve"), "{r}");
        assert!(r.len() <= crate::proto::REASON_MAX);
    }

    /// A critical unit failed and the feeding stopped: a reload's first
    /// read of the unit directory (in a child, waited for with the
    /// watchdog fed while the feeding goes on) must not feed it, or
    /// reloads every few seconds would keep a failed board from its reset.
    #[test]
    fn a_reload_after_a_critical_failure_does_not_feed() {
        // Its reads fork: alone, as the gate's tests that reach the disk.
        crate::testutil::alone!(a_reload_after_a_critical_failure_does_not_feed);
        let web = "exec = /bin/true\ncritical = yes\nrestart = never\n";
        let mut p = pid1_with(&[("web", web)]);
        let fed = watched(&mut p);
        p.watchdog_next = Some(0);
        let slow = |_: &std::path::Path| std::thread::sleep(std::time::Duration::from_millis(30));
        // Fed while the feeding goes on: the test can see a feed.
        let before = rustix::fs::fstat(&fed).unwrap().st_size;
        p.warm_units(&slow).unwrap();
        let warmed = rustix::fs::fstat(&fed).unwrap().st_size;
        assert!(warmed > before, "a reload's wait did not feed");
        fail_critically(&mut p);
        let stopped = rustix::fs::fstat(&fed).unwrap().st_size;
        p.warm_units(&slow).unwrap();
        let after = rustix::fs::fstat(&fed).unwrap().st_size;
        assert_eq!(
            after, stopped,
            "a reload fed the watchdog after the failure"
        );
    }
}
