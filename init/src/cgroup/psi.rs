//! Pressure stall information (PSI): triggers the kernel wakes PID 1 with,
//! and the averages `initctl status NAME` shows. A trigger is a line
//! `some STALL_US WINDOW_US` written to a pressure file kept open; the
//! kernel then reports POLLPRI (EPOLLPRI in PID 1's loop) at most once per
//! window while the stall passes the threshold, and never otherwise, so a
//! watch costs no wake-up while all is well.

use core::fmt::Write as _;

use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use crate::unit::PressureLimit;

/// A unit's memory pressure file, under its cgroup directory.
pub const MEMORY_PRESSURE: &str = "memory.pressure";
/// The whole system's.
pub const SYSTEM_MEMORY_PRESSURE: &str = "/proc/pressure/memory";

/// The trigger line for `limit`.
pub fn trigger_line(limit: PressureLimit) -> heapless::String<48> {
    let mut s = heapless::String::new();
    // Two u64s of at most 8 digits (10 s in µs) fit in 48 bytes.
    let _ = write!(
        s.as_mut_view(),
        "some {} {}",
        limit.stall_us(),
        limit.window_us()
    );
    s
}

/// Opens `file` under `dir` and registers a trigger for `limit` on it;
/// the trigger lives as long as the returned fd.
pub fn trigger<Fd: AsFd>(dir: Fd, file: &str, limit: PressureLimit) -> Result<OwnedFd, Errno> {
    let fd = crate::sys::file::openat(
        dir,
        file,
        OFlags::RDWR | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut line = trigger_line(limit);
    // With its NUL, as the kernel's own example writes it: the write of
    // /proc/pressure/* makes the last byte of the buffer a NUL, so a line
    // without one would lose its last digit.
    let _ = line.push('\0');
    let n = rustix::io::write(&fd, line.as_bytes())?;
    if n != line.len() {
        return Err(Errno::IO);
    }
    Ok(fd)
}

/// `some avg10` of a pressure file, in hundredths of a percent.
pub fn some_avg10(text: &str) -> Option<u32> {
    let line = text.lines().find_map(|l| l.strip_prefix("some "))?;
    let v = line
        .split_ascii_whitespace()
        .find_map(|f| f.strip_prefix("avg10="))?;
    hundredths(v)
}

/// A PSI average (`12.34`, percent with two decimals) in hundredths of a
/// percent, without floating point (whose formatting and parsing would
/// cost the binary tens of KB).
pub fn hundredths(v: &str) -> Option<u32> {
    let (whole, frac) = v.split_once('.').unwrap_or((v, "0"));
    let whole: u32 = wren_core::num::dec(whole)?;
    let mut hundredths = 0u32;
    for (i, c) in frac.chars().take(2).enumerate() {
        let d = c.to_digit(10)?;
        hundredths += d * if i == 0 { 10 } else { 1 };
    }
    whole.checked_mul(100)?.checked_add(hundredths)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    #[test]
    fn lines_and_averages() {
        let l = PressureLimit {
            percent: 20,
            window: 10_000,
        };
        assert_eq!(trigger_line(l).as_str(), "some 2000000 10000000");
        let l = PressureLimit {
            percent: 100,
            window: 500,
        };
        assert_eq!(trigger_line(l).as_str(), "some 500000 500000");
        let t = "some avg10=12.34 avg60=0.50 avg300=0.00 total=1\nfull avg10=1.00 avg60=0 avg300=0 total=0\n";
        assert_eq!(some_avg10(t), Some(1234));
        assert_eq!(
            some_avg10("some avg10=0.00 avg60=0 avg300=0 total=0\n"),
            Some(0)
        );
        assert_eq!(some_avg10("some avg10=100.00\n"), Some(10_000));
        assert_eq!(some_avg10("full avg10=1.00\n"), None);
        assert_eq!(some_avg10("some avg10=x\n"), None);
    }

    /// On a plain file the trigger is just the line written; the kernel's
    /// side is exercised by the boot tests.
    #[test]
    fn trigger_writes_the_line() {
        let d = TempDir::new("psi");
        std::fs::write(d.join(MEMORY_PRESSURE), "").unwrap();
        let dir =
            rustix::fs::open(d.path(), OFlags::DIRECTORY | OFlags::RDONLY, Mode::empty()).unwrap();
        let l = PressureLimit {
            percent: 5,
            window: 2_000,
        };
        let _fd = trigger(&dir, MEMORY_PRESSURE, l).unwrap();
        assert_eq!(
            std::fs::read_to_string(d.join(MEMORY_PRESSURE)).unwrap(),
            "some 100000 2000000\0"
        );
        assert_eq!(trigger(&dir, "nope", l).unwrap_err(), Errno::NOENT);
    }
}
