//! Feeding the hardware watchdog from the loop's timer: every third of its
//! timeout while the loop runs and no `critical` unit has failed. A loop
//! that stalls stops feeding by itself, and the board resets.

use super::{now, Pid1};
use crate::boot::cmdline::WatchdogOption;
use crate::kmsg;
use crate::supervisor::Phase;
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
            Err(e) => crate::error!("watchdog {dev}: {e}; not armed"),
        }
    }

    /// A `critical` unit that has failed: the watchdog is fed no more.
    pub(super) fn critical_failed(&self) -> Option<&str> {
        self.sup
            .slots()
            .find(|s| s.def.critical && s.rt.phase == Phase::Failed)
            .map(|s| s.def.name.as_str())
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
        if let Some(name) = self.critical_failed() {
            kmsg::console_line(format_args!(
                "[FAILED] {name}: critical unit failed; the watchdog is no longer fed, the board resets within {} s",
                w.timeout_s
            ));
            crate::error!("{name}: critical unit failed; watchdog no longer fed");
            self.watchdog_next = None;
            return;
        }
        w.feed();
        self.watchdog_next = Some(t.saturating_add(w.period()));
    }
}
