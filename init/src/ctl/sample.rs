//! What `initctl metrics` and `initctl top` read about a unit besides what
//! PID 1 tells: its cgroup's files, read by the client itself so that PID 1
//! does no work for a scrape. The cgroup root is a parameter (tests run on
//! a fixture directory).

use std::path::Path;

use crate::cgroup::psi::hundredths;
use crate::cgroup::{parse_limit, parse_memory_events, parse_u64};
use crate::proto::UnitStatus;
use crate::unit::Limit;

/// A `some` or `full` line of a PSI file (`memory.pressure`,
/// `/proc/pressure/memory`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stall {
    /// Share of the last 10, 60 and 300 s, in hundredths of a percent.
    pub avg10: u32,
    pub avg60: u32,
    pub avg300: u32,
    /// Microseconds stalled since the cgroup was made.
    pub total_us: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pressure {
    pub some: Stall,
    pub full: Stall,
}

/// Parses a PSI file; `None` when it has no `some` line (a kernel without
/// PSI has no file at all).
pub fn parse_pressure(text: &str) -> Option<Pressure> {
    let mut p = Pressure::default();
    let mut some = false;
    for line in text.lines() {
        let mut it = line.split_ascii_whitespace();
        let slot = match it.next() {
            Some("some") => {
                some = true;
                &mut p.some
            }
            Some("full") => &mut p.full,
            _ => continue,
        };
        for field in it {
            let Some((k, v)) = field.split_once('=') else {
                continue;
            };
            match k {
                "avg10" => slot.avg10 = hundredths(v)?,
                "avg60" => slot.avg60 = hundredths(v)?,
                "avg300" => slot.avg300 = hundredths(v)?,
                "total" => slot.total_us = wren_core::num::dec(v)?,
                _ => {}
            }
        }
    }
    some.then_some(p)
}

/// `usage_usec` of `cpu.stat` (present without the cpu controller).
pub fn parse_cpu_usage(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("usage_usec "))
        .and_then(|v| wren_core::num::dec(v.trim()))
}

/// One unit at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    pub status: UnitStatus,
    pub memory_peak: Option<u64>,
    /// `memory.max` as the kernel has it (None: no such file).
    pub memory_max: Option<Limit>,
    pub cpu_usage_us: Option<u64>,
    pub oom_kills: Option<u64>,
    pub pressure: Option<Pressure>,
}

fn read(dir: &Path, file: &str) -> Option<String> {
    // cgroup files are a few hundred bytes; a bound keeps a strange mount
    // from making the client read for ever. A plain read loop: `take` and
    // `read_to_string` would link a third copy of std's read-to-end.
    use std::io::Read;
    // 4 KiB first, grown to the bound only for a file that fills it: a
    // refresh of `top` reads several files a unit, and 64 KiB zeroed for
    // each was 390 MB of memset a refresh at 1,000 units.
    const BOUND: usize = 64 * 1024;
    let mut f = crate::sys::file::open(&dir.join(file), rustix::fs::OFlags::RDONLY, 0).ok()?;
    let mut buf = vec![0u8; 4096];
    let mut n = 0;
    loop {
        if n == buf.len() && n < BOUND {
            buf.resize((n * 4).min(BOUND), 0);
        }
        let Some(spare) = buf.get_mut(n..).filter(|s| !s.is_empty()) else {
            break;
        };
        match f.read(spare) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if crate::sys::file::is_errno(&e, rustix::io::Errno::INTR) => {}
            Err(_) => return None,
        }
    }
    buf.truncate(n);
    String::from_utf8(buf).ok()
}

/// Reads the cgroup files of `status.name` under `units_cgroup`
/// (normally `/sys/fs/cgroup/units`).
pub fn sample(units_cgroup: &Path, status: UnitStatus) -> Sample {
    let dir = units_cgroup.join(status.name.as_str());
    let mut status = status;
    // memory.current read now, beside the other files, rather than PID 1's
    // reading of a moment ago.
    if let Some(v) = read(&dir, "memory.current").and_then(|t| parse_u64(&t)) {
        status.memory_current = Some(v);
    }
    Sample {
        memory_peak: read(&dir, "memory.peak").and_then(|t| parse_u64(&t)),
        memory_max: read(&dir, "memory.max").and_then(|t| parse_limit(&t)),
        cpu_usage_us: read(&dir, "cpu.stat").and_then(|t| parse_cpu_usage(&t)),
        oom_kills: read(&dir, "memory.events")
            .and_then(|t| parse_memory_events(&t))
            .map(|e| e.oom_kill),
        pressure: read(&dir, "memory.pressure").and_then(|t| parse_pressure(&t)),
        status,
    }
}

/// The whole system's memory: (MemTotal, MemAvailable) in bytes from
/// `/proc/meminfo`.
pub fn parse_meminfo(text: &str) -> Option<(u64, u64)> {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| {
                // As `trim_end_matches("kB")`, without its substring
                // searcher (2 KB of code).
                let mut v = v.trim();
                while let Some(rest) = v.strip_suffix("kB") {
                    v = rest;
                }
                wren_core::num::dec::<u64>(v.trim())
            })
            .map(|kb| kb.saturating_mul(1024))
    };
    Some((field("MemTotal:")?, field("MemAvailable:")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PSI: &str = "some avg10=1.50 avg60=0.25 avg300=0.00 total=123456\n\
                       full avg10=0.75 avg60=0.00 avg300=0.00 total=6543\n";

    /// A file is read whole up to 64 KiB, past the first 4 KiB buffer,
    /// and no further.
    #[test]
    fn a_file_is_read_whole_up_to_the_bound() {
        let dir = crate::testutil::TempDir::new("sample-read");
        for (len, want) in [
            (0, 0),
            (100, 100),
            (4096, 4096),
            (10_000, 10_000),
            (100_000, 65_536),
        ] {
            dir.file("f", &"x".repeat(len));
            assert_eq!(read(dir.path(), "f").map(|t| t.len()), Some(want), "{len}");
        }
        assert_eq!(read(dir.path(), "none"), None);
    }

    #[test]
    fn pressure() {
        let p = parse_pressure(PSI).unwrap();
        assert_eq!(p.some.avg10, 150);
        assert_eq!(p.some.avg60, 25);
        assert_eq!(p.some.total_us, 123_456);
        assert_eq!(p.full.avg10, 75);
        assert_eq!(p.full.total_us, 6543);
        // /proc/pressure/cpu on older kernels has only `some`.
        let only = parse_pressure("some avg10=0.00 avg60=0.00 avg300=0.00 total=7\n").unwrap();
        assert_eq!(only.full, Stall::default());
        assert_eq!(parse_pressure(""), None);
        assert_eq!(parse_pressure("some avg10=x\n"), None);
    }

    #[test]
    fn cpu_and_events_and_meminfo() {
        let stat = "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n";
        assert_eq!(parse_cpu_usage(stat), Some(2_500_000));
        assert_eq!(parse_cpu_usage("user_usec 1\n"), None);
        let ev = "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(parse_memory_events(ev).map(|e| e.oom_kill), Some(1));
        let mi = "MemTotal:         251800 kB\nMemFree:  1 kB\nMemAvailable:     200000 kB\n";
        assert_eq!(parse_meminfo(mi), Some((251_800 * 1024, 200_000 * 1024)));
        assert_eq!(parse_limit("max\n"), Some(Limit::Max));
        assert_eq!(parse_limit("16777216\n"), Some(Limit::Value(16 << 20)));
    }
}
