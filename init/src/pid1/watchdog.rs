//! Feeding the hardware watchdog from the loop's timer: every third of its
//! timeout while the loop runs and no `critical` unit has failed. A loop
//! that stalls stops feeding by itself, and the board resets.

use super::{now, Pid1};
use crate::boot::cmdline::WatchdogOption;
use crate::kmsg;
use crate::supervisor::{Note, Phase, Slot, LIMIT_ACTION_FLOOR};
use crate::vocab::Millis;
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
    /// would not undo, and one stopped by hand since (`Stopped`) is theirs
    /// to repair (docs/units.md, "Critical units").
    pub(super) fn critical_failed(&self) -> Option<&str> {
        self.sup
            .slots()
            .find(|s| failed_critically(s))
            .map(|s| s.def.name.as_str())
    }

    /// `status NAME` of a failed critical unit, with a watchdog: whether
    /// and how long the board is still fed, for an operator who logs in
    /// after the console said so.
    pub(super) fn critical_reason(&self, name: &str, t: Millis, reason: &mut Reason) {
        let this = self.sup.slots().find(|s| s.def.name.as_str() == name);
        if self.watchdog.is_none() || !this.is_some_and(failed_critically) {
            return;
        }
        let floor = self.started_at.saturating_add(LIMIT_ACTION_FLOOR);
        let mut r = reason.as_mut_view();
        let _ = match (self.watchdog_next, self.sup.rescue()) {
            (None, _) => r.push_str(", watchdog no longer fed: the board resets"),
            (Some(_), true) => r.push_str(", watchdog still fed (wren.rescue)"),
            (Some(_), false) => {
                let left = floor.saturating_sub(t);
                let _ = core::fmt::write(&mut r, format_args!(", watchdog fed {left}ms more"));
                r.push_str(" (a stop or start by hand cancels)")
            }
        };
    }

    /// Whether a failed critical unit's reset waits, said on the console
    /// once: until PID 1 has been up `LIMIT_ACTION_FLOOR` (counted from
    /// the first PID 1's start), so that a unit failing at every boot
    /// leaves the operator a minute at the console to stop it, not the
    /// watchdog's seconds, and the card a boot a minute at most; and
    /// always under `wren.rescue`, where the operator is at the console
    /// to repair. The start limit's reboot waits the same way.
    fn critical_held(&self, name: &str, t: Millis) -> bool {
        let floor = self.started_at.saturating_add(LIMIT_ACTION_FLOOR);
        let rescue = self.sup.rescue();
        if t >= floor && !rescue {
            return false;
        }
        if !self.critical_said {
            let why = Held(rescue, floor.saturating_sub(t));
            kmsg::console_line(format_args!("[FAILED] {name}: critical unit failed; {why}"));
            crate::error!("{name}: critical unit failed; {why}");
        }
        true
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
        let held = failed.is_some_and(|name| self.critical_held(name, t));
        if let Some(name) = failed.filter(|_| !held) {
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
        self.critical_said = held;
        w.feed();
        self.watchdog_next = Some(t.saturating_add(w.period()));
    }
}

/// Its own failure (`critical_failed`).
fn failed_critically(s: &Slot) -> bool {
    s.def.critical
        && s.rt.phase == Phase::Failed
        && !matches!(s.rt.last_note, Some(Note::DepMissing | Note::Stopped))
}

type Reason = heapless::String<{ crate::proto::REASON_MAX }>;

/// How long a failed critical unit's reset waits, in words.
struct Held(bool, Millis);

impl core::fmt::Display for Held {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Held(true, _) => f.write_str("the watchdog is still fed under wren.rescue"),
            Held(false, ms) => write!(
                f,
                "the watchdog is fed for {ms}ms more, until PID 1 has been up a minute, then no longer (a stop or start of it by hand cancels)"
            ),
        }
    }
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

    /// A critical unit failed and the feeding stopped; the operator's
    /// `reboot` then stops the units with the watchdog fed again, so the
    /// board does not reset before the shutdown's sync.
    #[test]
    fn a_shutdown_after_a_critical_failure_is_fed_through() {
        let web = "exec = /bin/true\ncritical = yes\nrestart = never\n";
        let mut p = pid1_with(&[("web", web)]);
        let fed = watched(&mut p);
        p.watchdog_next = Some(0);
        let web = p.sup.index("web").unwrap();
        step(&mut p, 1, Event::Boot);
        step(&mut p, 2, Event::spawned(web, 100));
        let exit = Exit::Signal(11);
        step(&mut p, 3, Event::Exited { pid: 100, exit });
        p.tend_watchdog();
        assert_eq!(p.watchdog_next, None, "still fed after the failure");
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

    /// A critical unit that fails at every boot: PID 1 has been up less
    /// than a minute, so the watchdog is still fed (the operator has the
    /// minute to log in and stop it); once that minute is over the
    /// feeding stops. Said once, not at every feed.
    #[test]
    fn a_critical_failure_in_the_first_minute_is_held_until_then() {
        use crate::supervisor::LIMIT_ACTION_FLOOR;
        let web = "exec = /bin/true\ncritical = yes\nrestart = never\n";
        let mut p = pid1_with(&[("web", web)]);
        let fed = watched(&mut p);
        p.started_at = now();
        let web = p.sup.index("web").unwrap();
        step(&mut p, 1, Event::Boot);
        step(&mut p, 2, Event::spawned(web, 100));
        let exit = Exit::Signal(11);
        step(&mut p, 3, Event::Exited { pid: 100, exit });
        assert!(p.critical_failed().is_some());
        for _ in 0..2 {
            p.watchdog_next = Some(0);
            p.tend_watchdog();
            assert!(p.watchdog_next.is_some(), "not held");
            assert!(p.critical_said);
        }
        assert!(rustix::fs::fstat(&fed).unwrap().st_size > 0, "not fed");
        // The minute is over (counted from the first PID 1's start).
        p.started_at = now() - LIMIT_ACTION_FLOOR;
        p.watchdog_next = Some(0);
        p.tend_watchdog();
        assert_eq!(p.watchdog_next, None, "fed past the first minute");
    }

    /// Within the minute the operator stops the failed critical unit by
    /// hand: it is `stopped`, not `failed`, and the feeding goes on past
    /// the minute. Under `wren.rescue` a failure never stops it.
    #[test]
    fn a_held_critical_failure_is_cancelled_by_hand_and_under_rescue() {
        use crate::supervisor::LIMIT_ACTION_FLOOR;
        let text = "exec = /bin/true\ncritical = yes\nrestart = never\n";
        for rescue in [false, true] {
            let mut p = pid1_with(&[("web", text)]);
            let _fed = watched(&mut p);
            p.started_at = now();
            p.sup.hold_limit_actions(p.started_at, rescue);
            let web = p.sup.index("web").unwrap();
            step(&mut p, 1, Event::Boot);
            step(&mut p, 2, Event::spawned(web, 100));
            let exit = Exit::Code(1);
            step(&mut p, 3, Event::Exited { pid: 100, exit });
            p.watchdog_next = Some(0);
            p.tend_watchdog();
            if !rescue {
                step(&mut p, 4, Event::Stop { unit: web });
                assert_eq!(p.sup.slot(web).unwrap().rt.phase, Phase::Failed);
                assert_eq!(p.critical_failed(), None, "stopped by hand");
            }
            p.started_at = now() - LIMIT_ACTION_FLOOR;
            p.watchdog_next = Some(0);
            p.tend_watchdog();
            assert!(p.watchdog_next.is_some(), "rescue {rescue}: not fed");
            assert_eq!(p.critical_said, rescue, "rescue {rescue}");
        }
    }

    /// `status NAME` says what the console said once: how long the board
    /// is still fed, what cancels it; then that it is fed no more. Not for
    /// a unit that is not critical, nor without a watchdog.
    #[test]
    fn status_of_a_failed_critical_unit_says_when_the_board_resets() {
        use crate::supervisor::LIMIT_ACTION_FLOOR;
        let crit = "exec = /bin/true\ncritical = yes\nrestart = never\n";
        let plain = "exec = /bin/true\nrestart = never\n";
        let mut p = pid1_with(&[("web", crit), ("db", plain)]);
        let reason = |p: &crate::pid1::Pid1, name: &str, t| {
            let mut r = heapless::String::new();
            let _ = r.push_str("exit 1");
            p.critical_reason(name, t, &mut r);
            r.as_str().to_owned()
        };
        let t = now();
        p.started_at = t;
        step(&mut p, 1, Event::Boot);
        step(&mut p, 2, Event::spawned(0, 100));
        step(&mut p, 2, Event::spawned(1, 101));
        for pid in [100, 101] {
            let exit = Exit::Code(1);
            step(&mut p, 3, Event::Exited { pid, exit });
        }
        assert_eq!(reason(&p, "web", t + 100), "exit 1", "no watchdog");
        let _fed = watched(&mut p);
        p.watchdog_next = Some(0);
        assert_eq!(
            reason(&p, "web", t + 100),
            "exit 1, watchdog fed 59900ms more (a stop or start by hand cancels)"
        );
        assert_eq!(reason(&p, "db", t + 100), "exit 1");
        p.started_at = t - LIMIT_ACTION_FLOOR;
        p.tend_watchdog();
        assert_eq!(
            reason(&p, "web", t),
            "exit 1, watchdog no longer fed: the board resets"
        );
    }
}
