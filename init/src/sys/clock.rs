//! The monotonic clock, read through libc's clock_gettime (musl's vDSO
//! call) rather than std's `Instant`: `Instant::now` unwraps the read,
//! and that unwrap's message links std's Debug of `io::Error`, `str` and
//! `char`, with Unicode's printable tables, into the binary (issue 10's
//! budget); rather than rustix's own vDSO parser (2 KB).

/// CLOCK_MONOTONIC in nanoseconds; 0 if it cannot be read.
pub fn now_ns() -> u64 {
    read_ns(nix::time::ClockId::CLOCK_MONOTONIC)
}

/// CLOCK_REALTIME in nanoseconds since the epoch (what
/// `SystemTime::now` gives, which unwraps its read as `Instant::now`
/// does); 0 if it cannot be read.
pub fn wall_ns() -> u64 {
    read_ns(nix::time::ClockId::CLOCK_REALTIME)
}

fn read_ns(clock: nix::time::ClockId) -> u64 {
    let Ok(t) = nix::time::clock_gettime(clock) else {
        return 0;
    };
    u64::try_from(t.tv_sec())
        .unwrap_or(0)
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::try_from(t.tv_nsec()).unwrap_or(0))
}

/// `ns` nanoseconds as a `Timespec` (a poll's or a sleep's timeout).
pub const fn timespec(ns: u64) -> rustix::thread::Timespec {
    const NS: u64 = 1_000_000_000;
    rustix::thread::Timespec {
        tv_sec: (ns / NS) as i64,
        tv_nsec: (ns % NS) as _,
    }
}

/// Sleeps for `d`, again for what is left after a signal, as
/// `std::thread::sleep` does; through rustix's nanosleep, without std's
/// (musl's `clock_nanosleep` and an `assert_eq!` on its errno).
pub fn sleep(d: core::time::Duration) {
    let mut ts = rustix::thread::Timespec {
        tv_sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: d.subsec_nanos().into(),
    };
    while let rustix::thread::NanosleepRelativeResult::Interrupted(left) =
        rustix::thread::nanosleep(&ts)
    {
        ts = left;
    }
}

/// CLOCK_MONOTONIC in milliseconds.
pub fn now_ms() -> u64 {
    now_ns() / 1_000_000
}

/// Whole milliseconds since `start` (a `now_ns`): a bound compared with
/// it has passed in full, not up to a millisecond less.
pub fn since_ms(start_ns: u64) -> u64 {
    now_ns().saturating_sub(start_ns) / 1_000_000
}

/// A point on the monotonic clock, to the millisecond: `std::time::
/// Instant` for code that only adds and compares (the `initctl` client's
/// deadlines), without it (see the module).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Instant(u64);

impl Instant {
    pub fn now() -> Instant {
        Instant(now_ms())
    }

    /// `self - earlier`, or None if `earlier` is later.
    pub fn checked_duration_since(self, earlier: Instant) -> Option<core::time::Duration> {
        self.0
            .checked_sub(earlier.0)
            .map(core::time::Duration::from_millis)
    }

    /// `self - earlier`, or zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> core::time::Duration {
        core::time::Duration::from_millis(self.0.saturating_sub(earlier.0))
    }

    pub fn elapsed(self) -> core::time::Duration {
        Instant::now().saturating_duration_since(self)
    }
}

impl core::ops::Add<core::time::Duration> for Instant {
    type Output = Instant;

    fn add(self, d: core::time::Duration) -> Instant {
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Instant(self.0.saturating_add(ms))
    }
}

#[cfg(test)]
mod tests {
    use super::Instant;
    use core::time::Duration;

    #[test]
    fn instants_add_and_compare() {
        let t = Instant::now();
        let later = t + Duration::from_millis(1_500);
        assert!(later > t);
        assert_eq!(
            later.checked_duration_since(t),
            Some(Duration::from_millis(1_500))
        );
        assert_eq!(t.checked_duration_since(later), None);
        assert_eq!(t.saturating_duration_since(later), Duration::ZERO);
        assert!(t.elapsed() < Duration::from_secs(60));
    }

    /// A sleep lasts at least what it was asked for, and not much longer.
    #[test]
    fn sleeps_for_its_duration() {
        let t = Instant::now();
        super::sleep(Duration::from_millis(30));
        let took = t.elapsed();
        assert!(took >= Duration::from_millis(29), "{took:?}");
        assert!(took < Duration::from_secs(2), "{took:?}");
    }
}
