//! The hardware watchdog (`wren.watchdog[=DEVICE[,SECONDS]]`,
//! docs/boot.md): opened at boot, fed from PID 1's loop by its timer (no
//! thread), so a stalled loop resets the board; no longer fed once a
//! `critical` unit has failed; disarmed with the magic close at the very
//! end of a clean shutdown, right before reboot(2).

use rustix::fd::OwnedFd;
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use crate::vocab::Millis;

pub struct Watchdog {
    fd: OwnedFd,
    /// The timeout the driver took, in seconds.
    pub timeout_s: u32,
}

impl Watchdog {
    /// Opens (which arms) `device` and sets its timeout to `secs`.
    pub fn open(device: &str, secs: u32) -> Result<Watchdog, Errno> {
        let fd = rustix::fs::open(device, OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty())?;
        // A driver without a settable timeout keeps its own; feeding at a
        // third of the asked one is then still the best guess.
        let timeout_s = crate::sys::watchdog::set_timeout(&fd, secs).unwrap_or(secs);
        let w = Watchdog { fd, timeout_s };
        w.feed();
        Ok(w)
    }

    /// Feeding three times per timeout: a late wake-up or two never
    /// resets a healthy board.
    pub fn period(&self) -> Millis {
        (u64::from(self.timeout_s) * 1000 / 3).max(200)
    }

    /// Any write is a keepalive.
    pub fn feed(&self) {
        let _ = rustix::io::write(&self.fd, b"\0");
    }

    /// The magic close: `V`, then close, so the driver stops the timer
    /// (a driver with nowayout ignores it and the reboot(2) that follows
    /// resets the board anyway).
    pub fn disarm(self) {
        let _ = rustix::io::write(&self.fd, b"V");
    }
}
