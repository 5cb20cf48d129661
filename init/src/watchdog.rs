//! The hardware watchdog (`wren.watchdog[=DEVICE[,SECONDS]]`,
//! docs/boot.md): opened at boot, fed from PID 1's loop by its timer (no
//! thread), so a stalled loop resets the board; no longer fed once a
//! `critical` unit has failed; disarmed with the magic close at the very
//! end of a clean shutdown, right before reboot(2).

use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use crate::sys::errno::Os;
use crate::vocab::Millis;

pub struct Watchdog {
    fd: OwnedFd,
    /// The timeout the driver took, in seconds.
    pub timeout_s: u32,
    /// The last feed failed (`feed`).
    failing: core::cell::Cell<bool>,
}

impl Watchdog {
    /// Opens (which arms) `device` and sets its timeout to `secs`. Only
    /// a character device that answers the watchdog's ioctl is written
    /// to: a mistyped `/dev/mmcblk0` would get a byte written at every
    /// feed (refused before the open: ENOTBLK), a FIFO or a tty would
    /// block PID 1 at the open or the writes (O_NONBLOCK, then ENOTTY).
    pub fn open(device: &str, secs: u32) -> Result<Watchdog, Errno> {
        let st = rustix::fs::stat(device)?;
        if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::CharacterDevice
        {
            return Err(Errno::NOTBLK);
        }
        let flags = OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY;
        let fd = crate::sys::file::openat(rustix::fs::CWD, device, flags, Mode::empty())?;
        crate::sys::watchdog::is_watchdog(&fd)?;
        // A driver without a settable timeout keeps its own: fed by that
        // one's third (fed by the asked one's, a shorter one would reset
        // a healthy board), or, told neither, by the asked one's.
        let timeout_s = crate::sys::watchdog::set_timeout(&fd, secs)
            .or_else(|_| crate::sys::watchdog::timeout(&fd))
            .unwrap_or(secs);
        let w = Watchdog::on(fd, timeout_s);
        w.feed();
        Ok(w)
    }

    /// A watchdog on `fd` (any fd, in tests of what feeds it).
    pub(crate) fn on(fd: OwnedFd, timeout_s: u32) -> Watchdog {
        Watchdog {
            fd,
            timeout_s,
            failing: core::cell::Cell::new(false),
        }
    }

    /// The device the previous PID 1 handed over across its exec, still
    /// open (so still armed, whatever its driver does at a close), if it
    /// answers the watchdog's ioctl.
    pub fn handed_over(fd: OwnedFd, timeout_s: u32) -> Result<Watchdog, Errno> {
        crate::sys::watchdog::is_watchdog(&fd)?;
        rustix::io::fcntl_setfd(&fd, rustix::io::FdFlags::CLOEXEC)?;
        Ok(Watchdog::on(fd, timeout_s))
    }

    /// For `reexec`: kept open across the exec (`inherit`), for the new
    /// PID 1 to go on with (a driver without the magic close stops at the
    /// close an exec makes, and a board whose PID 1 stopped feeding
    /// would then never reset); close-on-exec again if the exec failed.
    /// The fd's number.
    pub fn inherit(&self, inherit: bool) -> Option<i32> {
        use rustix::fd::AsRawFd;
        let flags = if inherit {
            rustix::io::FdFlags::empty()
        } else {
            rustix::io::FdFlags::CLOEXEC
        };
        rustix::io::fcntl_setfd(&self.fd, flags).ok()?;
        Some(self.fd.as_raw_fd())
    }

    /// Feeding three times per timeout: a late wake-up or two never
    /// resets a healthy board.
    pub fn period(&self) -> Millis {
        (u64::from(self.timeout_s) * 1000 / 3).max(200)
    }

    /// Any write is a keepalive. One that fails (a driver unbound: ENODEV)
    /// is logged, once until a write works again: the board may reset, and
    /// the log is the clue left of why. True when this write worked.
    pub fn feed(&self) -> bool {
        let failed = rustix::io::write(&self.fd, b"\0").err();
        if failed.is_some() != self.failing.replace(failed.is_some()) {
            match failed {
                Some(e) => crate::error!(
                    "watchdog: cannot feed it: {}; the board may reset",
                    Os::from(e)
                ),
                None => crate::info!("watchdog: fed again"),
            }
        }
        failed.is_none()
    }

    /// Closes this fd's number in a forked copy of PID 1, which goes on
    /// without it (`sys::fd::close_early`'s contract: the copy ends in
    /// `_exit` and never uses or drops the `Watchdog`).
    pub fn close_in_copy(&self) {
        crate::sys::fd::close_early(self.fd.as_fd());
    }

    /// The magic close: `V`, then close, so the driver stops the timer
    /// (a driver with nowayout ignores it and the reboot(2) that follows
    /// resets the board anyway). The write's error when it failed: the
    /// timer then runs on, and the board resets after the halt.
    pub fn disarm(self) -> Result<(), Errno> {
        rustix::io::write(&self.fd, b"V").map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::Watchdog;
    use rustix::io::Errno;

    /// A feed that fails is said (once while it keeps failing), not
    /// dropped without a word, and without the heap: PID 1's loop feeds,
    /// and where memory is short an allocation refused aborts it.
    #[test]
    fn a_failed_feed_is_told() {
        let (rd, wr) = rustix::pipe::pipe().unwrap();
        let w = Watchdog::on(rd, 15);
        // The real logger, so that the line is made as PID 1 makes it.
        crate::kmsg::init(false);
        let before = crate::sys::alloc::thread_count();
        assert!(!w.feed(), "a read end took a write");
        assert_eq!(
            crate::sys::alloc::thread_count(),
            before,
            "the error's text allocated"
        );
        assert!(w.failing.get());
        let w = Watchdog::on(wr, 15);
        assert!(w.feed());
        assert!(!w.failing.get());
    }

    /// A magic close whose write fails says so (the shutdown logs it:
    /// the board will reset after a halt), not that it disarmed.
    #[test]
    fn a_failed_magic_close_is_told() {
        let (rd, _wr) = rustix::pipe::pipe().unwrap();
        assert_eq!(Watchdog::on(rd, 15).disarm(), Err(Errno::BADF));
        let (rd, wr) = rustix::pipe::pipe().unwrap();
        assert_eq!(Watchdog::on(wr, 15).disarm(), Ok(()));
        let mut v = [0u8; 2];
        assert_eq!(rustix::io::read(&rd, &mut v), Ok(1));
        assert_eq!(&v[..1], b"V");
    }

    /// Only a watchdog is armed: a file (a mistyped disk's stand-in) is
    /// neither opened nor written, a FIFO does not block the open, a
    /// character device that is not a watchdog is let go.
    #[test]
    fn what_is_not_a_watchdog_is_not_armed() {
        let t = crate::testutil::TempDir::new("watchdog-open");
        let file = t.file("disk", "data");
        let path = file.to_str().unwrap();
        assert_eq!(Watchdog::open(path, 15).err(), Some(Errno::NOTBLK));
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "data");
        let fifo = t.path().join("fifo");
        crate::testutil::fifo(&fifo);
        let started = std::time::Instant::now();
        let fifo = fifo.to_str().unwrap();
        assert_eq!(Watchdog::open(fifo, 15).err(), Some(Errno::NOTBLK));
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        assert_eq!(Watchdog::open("/dev/null", 15).err(), Some(Errno::NOTTY));
        assert_eq!(
            Watchdog::open("/nonexistent/watchdog", 15).err(),
            Some(Errno::NOENT)
        );
    }
}
