//! `initctl top`: a live view of the units that fits a 80x24 serial
//! console: sorted by memory, with CPU % (from `cpu.stat` between two
//! refreshes) and memory pressure (PSI `some` avg10). On a terminal it
//! redraws in place and ends on `q` or Ctrl-C; elsewhere it prints plain
//! frames (`-n` of them, one by default) with no escape sequence.

use crate::sys::clock::Instant;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use rustix::event::{poll, PollFd, PollFlags, Timespec};

use super::output::{human_bytes, human_uptime, num};
use super::sample::{self, Sample};
use crate::proto::UnitStatus;
use crate::unit::Limit;

pub const COLUMNS: usize = 80;
pub const LINES: usize = 24;
/// Lines above the unit rows: the summary, a blank line, the header.
const HEAD: usize = 3;

/// The whole system, for the summary line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct System {
    pub mem_total: u64,
    pub mem_available: u64,
    /// `/proc/pressure/memory` some avg10, hundredths of a percent.
    pub pressure: Option<u32>,
}

/// Hundredths of a percent as `1.25`.
fn percent2(h: u32) -> String {
    format!("{}.{:02}", h / 100, h % 100)
}

/// Cuts `s` to `w` characters, marking a cut with `~`.
pub(super) fn fit(s: &str, w: usize) -> String {
    if s.chars().count() <= w {
        return s.to_string();
    }
    let mut t: String = s.chars().take(w.saturating_sub(1)).collect();
    t.push('~');
    t
}

/// `s` and a space, padded to `w` characters on the right (`left`
/// aligned) or on the left, as `{:<w$}` and `{:>w$}` pad.
fn pad(line: &mut String, s: &str, w: usize, left: bool) {
    let fill = w.saturating_sub(s.chars().count());
    if !left {
        line.extend(std::iter::repeat_n(' ', fill));
    }
    line.push_str(s);
    if left {
        line.extend(std::iter::repeat_n(' ', fill));
    }
    line.push(' ');
}

/// CPU time over wall time between two samples, in tenths of a percent.
fn cpu_tenths(now: &Sample, prev: Option<&Sample>, elapsed: Duration) -> Option<u64> {
    let (a, b) = (prev?.cpu_usage_us?, now.cpu_usage_us?);
    let wall = u64::try_from(elapsed.as_micros()).ok()?;
    if wall == 0 || b < a {
        return None;
    }
    (b - a).checked_mul(1000).map(|t| t / wall)
}

/// One screen (at most `LINES` lines of at most `COLUMNS` characters):
/// `prev` is the previous refresh's samples (None on the first) and
/// `elapsed` the time between the two.
pub fn frame(now: &[Sample], prev: Option<&[Sample]>, elapsed: Duration, sys: System) -> String {
    let mut units: Vec<&Sample> = now.iter().collect();
    wren_core::sort::sort_by(&mut units, |a, b| {
        let mem = |s: &Sample| s.status.memory_current.unwrap_or(0);
        (mem(b), &a.status.name) < (mem(a), &b.status.name)
    });
    let running = units
        .iter()
        .filter(|s| s.status.state == crate::vocab::State::Running)
        .count();
    let psi = sys
        .pressure
        .map_or_else(|| "-".to_string(), |p| format!("{}%", percent2(p)));
    let mut out = String::new();
    let summary = format!(
        "wren top: {} units, {running} running; memory {} available of {}; pressure {psi}",
        units.len(),
        human_bytes(sys.mem_available),
        human_bytes(sys.mem_total),
    );
    out.push_str(&fit(&summary, COLUMNS));
    out.push_str("\n\n");
    // The widths of the rows below (`pad`).
    out.push_str(
        "NAME                 STATE        PID  CPU%    MEM    MAX  PSI%     UP RESTARTS\n",
    );
    let room = LINES - HEAD;
    let shown = if units.len() > room {
        room - 1
    } else {
        units.len()
    };
    for s in units.iter().take(shown) {
        let st = &s.status;
        let before = prev.and_then(|p| p.iter().find(|x| x.status.name == st.name));
        let cpu = cpu_tenths(s, before, elapsed)
            .map_or_else(|| "-".into(), |c| format!("{}.{}", c / 10, c % 10));
        let pid = if st.pid == 0 {
            "-".into()
        } else {
            num(st.pid.into())
        };
        let mem = st.memory_current.map_or_else(|| "-".into(), human_bytes);
        let max = match s.memory_max {
            Some(Limit::Value(v)) => human_bytes(v),
            Some(Limit::Max) => "max".into(),
            None => "-".into(),
        };
        let psi = s.pressure.map_or_else(
            || "-".into(),
            |p| format!("{}.{}", p.some.avg10 / 100, p.some.avg10 % 100 / 10),
        );
        let up = if st.pid == 0 {
            "-".into()
        } else {
            human_uptime(st.uptime_ms)
        };
        // The columns of the header above, padded by hand: one padding
        // loop instead of a nine-placeholder format.
        let mut line = String::new();
        pad(&mut line, &fit(&st.name, 20), 20, true);
        pad(&mut line, st.state.as_str(), 8, true);
        for (text, w) in [
            (pid, 7),
            (cpu, 5),
            (mem, 6),
            (max, 6),
            (psi, 5),
            (up, 6),
            (num(st.restarts.into()), 8),
        ] {
            pad(&mut line, &fit(&text, w), w, false);
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    if shown < units.len() {
        let _ = writeln!(out, "... and {} more", units.len() - shown);
    }
    out
}

/// Home, clear, then `text` with CR LF (raw mode has no output
/// translation on some serial setups) and without its last line feed: a
/// full frame's 24th would put the cursor on row 25 and scroll the
/// summary line off an 80x24 terminal.
fn raw_frame(text: &str) -> String {
    let body = text.strip_suffix('\n').unwrap_or(text);
    format!("\x1b[H\x1b[2J{}", body.replace('\n', "\r\n"))
}

fn system(proc_root: &Path) -> System {
    let meminfo = crate::sys::file::read_string(&proc_root.join("meminfo")).unwrap_or_default();
    let (mem_total, mem_available) = sample::parse_meminfo(&meminfo).unwrap_or((0, 0));
    let pressure = crate::sys::file::read_string(&proc_root.join("pressure/memory"))
        .ok()
        .and_then(|t| sample::parse_pressure(&t))
        .map(|p| p.some.avg10);
    System {
        mem_total,
        mem_available,
        pressure,
    }
}

/// Restores the terminal's modes when dropped (on `q`, Ctrl-C, an error
/// or a signal that ends the process).
struct Raw {
    saved: crate::sys::tty::Modes,
    /// SIGTERM, SIGHUP, SIGQUIT and SIGINT blocked while the modes are
    /// changed, and seen here: `timeout 60 initctl top`, a hang-up or a
    /// `kill -INT` (Ctrl-C itself arrives as a byte) would end the process
    /// with the console left without echo.
    ending: Option<nix::sys::signalfd::SignalFd>,
}

fn ending_signals() -> nix::sys::signal::SigSet {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    for sig in [
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGINT,
    ] {
        set.add(sig);
    }
    set
}

impl Raw {
    /// Input byte by byte without echo; Ctrl-C arrives as a byte, not a
    /// signal, so the terminal is always restored.
    fn enter() -> Option<Raw> {
        let stdin = rustix::stdio::stdin();
        let saved = crate::sys::tty::modes(stdin)?;
        let raw = saved.raw();
        let set = ending_signals();
        let ending = set.thread_block().ok().and_then(|()| {
            nix::sys::signalfd::SignalFd::with_flags(
                &set,
                nix::sys::signalfd::SfdFlags::SFD_NONBLOCK,
            )
            .ok()
        });
        if !crate::sys::tty::set(stdin, &raw) {
            // Plain mode then: the signals that end it must end it.
            let _ = set.thread_unblock();
            return None;
        }
        Some(Raw { saved, ending })
    }
}

impl Drop for Raw {
    /// The modes first; then a signal that came meanwhile, still pending,
    /// is delivered as the signals are unblocked, and ends the process as
    /// it would have (exit status 128 + its number).
    fn drop(&mut self) {
        let _ = crate::sys::tty::set(rustix::stdio::stdin(), &self.saved);
        self.ending = None;
        let _ = ending_signals().thread_unblock();
    }
}

/// Waits up to `d` for a key; true when it asks to quit (`q`, `Q`, Ctrl-C,
/// end of input) or `raw` saw an ending signal come.
fn quit_within(d: Duration, raw: &Raw) -> bool {
    let stdin = rustix::stdio::stdin();
    let deadline = Instant::now() + d;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let ts = Timespec {
            tv_sec: left.as_secs().try_into().unwrap_or(i64::MAX),
            tv_nsec: left.subsec_nanos().into(),
        };
        let mut fds: heapless::Vec<PollFd<'_>, 2> = heapless::Vec::new();
        let _ = fds.push(PollFd::new(&stdin, PollFlags::IN));
        if let Some(sig) = raw.ending.as_ref() {
            let _ = fds.push(PollFd::new(sig, PollFlags::IN));
        }
        match poll(&mut fds, Some(&ts)) {
            Ok(0) => return false,
            // Not read: left pending for `Raw`'s drop to deliver.
            Ok(_) if fds.get(1).is_some_and(|f| !f.revents().is_empty()) => return true,
            Ok(_) => {
                let mut b = [0u8; 16];
                match rustix::io::read(stdin, &mut b) {
                    Ok(0) => return true,
                    Ok(n) => {
                        if b.iter().take(n).any(|c| matches!(c, b'q' | b'Q' | 3)) {
                            return true;
                        }
                    }
                    Err(_) => return true,
                }
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => return true,
        }
    }
}

/// Runs the view: `fetch` asks PID 1 for the status table. `count`: frames
/// to show (None: until `q` on a terminal, one elsewhere).
pub fn run(
    fetch: &mut dyn FnMut() -> Result<Vec<UnitStatus>, String>,
    interval: Duration,
    count: Option<u32>,
    out: &mut dyn crate::ctl::out::Out,
) -> Result<(), String> {
    let units_cgroup = Path::new(crate::vocab::CGROUP_ROOT).join("units");
    let proc_root = Path::new("/proc");
    let tty = rustix::termios::isatty(rustix::stdio::stdout())
        && rustix::termios::isatty(rustix::stdio::stdin());
    let raw = if tty { Raw::enter() } else { None };
    let take = |fetch: &mut dyn FnMut() -> Result<Vec<UnitStatus>, String>| {
        fetch().map(|v| {
            v.into_iter()
                .map(|s| sample::sample(&units_cgroup, s))
                .collect::<Vec<_>>()
        })
    };
    // A first sample so that even the first frame has CPU %.
    let mut prev = take(fetch)?;
    let mut at = Instant::now();
    let first_wait = interval.min(Duration::from_millis(500));
    if let Some(r) = raw.as_ref() {
        if quit_within(first_wait, r) {
            return Ok(());
        }
    } else {
        crate::sys::clock::sleep(first_wait);
    }
    let limit = count.unwrap_or(if raw.is_some() { u32::MAX } else { 1 });
    let mut shown = 0u32;
    loop {
        let now = take(fetch)?;
        let t = Instant::now();
        let text = frame(
            &now,
            Some(&prev),
            t.saturating_duration_since(at),
            system(proc_root),
        );
        let w = if raw.is_some() {
            write!(out, "{}", raw_frame(&text))
        } else {
            if shown > 0 {
                let _ = writeln!(out);
            }
            write!(out, "{text}")
        };
        match w.and_then(|_| out.flush()) {
            Ok(()) => {}
            // The reader is gone (`initctl top -n 5 | head -3`): done, quietly.
            Err(e) if crate::sys::file::is_errno(&e, rustix::io::Errno::PIPE) => return Ok(()),
            Err(e) => return Err(e.to_string()),
        }
        shown += 1;
        if shown >= limit {
            return Ok(());
        }
        prev = now;
        at = t;
        if let Some(r) = raw.as_ref() {
            if quit_within(interval, r) {
                let _ = write!(out, "\r\n");
                return Ok(());
            }
        } else {
            crate::sys::clock::sleep(interval);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::sample::{Pressure, Stall};
    use super::*;
    use crate::vocab::State;

    fn s(name: &str, mem: Option<u64>, cpu: u64) -> Sample {
        Sample {
            status: UnitStatus {
                name: name.try_into().unwrap(),
                state: State::Running,
                pid: 4_194_303,
                restarts: 99_999,
                memory_current: mem,
                memory_max: Some(Limit::Value(1023 << 20)),
                uptime_ms: 86_399_000,
            },
            memory_peak: Some(1023 << 20),
            memory_max: Some(Limit::Value(1023 << 20)),
            cpu_usage_us: Some(cpu),
            oom_kills: Some(0),
            pressure: Some(Pressure {
                some: Stall {
                    avg10: 9999,
                    ..Stall::default()
                },
                full: Stall::default(),
            }),
        }
    }

    #[test]
    fn sorted_by_memory_with_cpu_from_the_delta() {
        let prev = [s("a", Some(1 << 20), 0), s("b", Some(8 << 20), 1_000_000)];
        let now = [
            s("a", Some(1 << 20), 500_000),
            s("b", Some(8 << 20), 1_000_000),
        ];
        let sys = System {
            mem_total: 256 << 20,
            mem_available: 100 << 20,
            pressure: Some(50),
        };
        let t = frame(&now, Some(&prev), Duration::from_secs(2), sys);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].contains("2 units, 2 running"), "{t}");
        assert!(lines[0].contains("100M available of 256M"), "{t}");
        assert!(lines[0].ends_with("pressure 0.50%"), "{t}");
        assert!(lines[2].starts_with("NAME"));
        assert!(lines[3].starts_with("b "), "{t}");
        assert!(lines[4].starts_with("a "), "{t}");
        // a: 0.5 s of CPU in 2 s.
        let cols: Vec<&str> = lines[4].split_whitespace().collect();
        assert_eq!(cols[3], "25.0", "{t}");
        let cols: Vec<&str> = lines[3].split_whitespace().collect();
        assert_eq!(cols[3], "0.0", "{t}");
    }

    #[test]
    fn fits_80_by_24_with_many_long_units() {
        let many: Vec<Sample> = (0..40)
            .map(|i| s(&format!("{i:02}-{}", "x".repeat(29)), Some(i << 20), 0))
            .collect();
        let t = frame(&many, None, Duration::ZERO, System::default());
        assert!(t.lines().count() <= LINES, "{t}");
        assert!(t.lines().all(|l| l.chars().count() <= COLUMNS), "{t}");
        assert!(t.ends_with("... and 20 more\n"), "{t}");
        assert!(!t.contains('\x1b'));
        // Without a previous sample there is no CPU figure.
        let cols: Vec<&str> = t.lines().nth(3).unwrap().split_whitespace().collect();
        assert_eq!(cols[3], "-");
        // On a terminal: from row 1 after the home, each line feed a row
        // down; the last must leave the cursor on row 24, or the screen
        // scrolls and the summary line goes.
        let raw = raw_frame(&t);
        assert_eq!(raw.matches('\n').count() + 1, LINES, "{raw:?}");
        assert_eq!(raw.matches("\r\n").count(), LINES - 1);
        assert!(raw.starts_with("\x1b[H\x1b[2J") && raw.ends_with("... and 20 more"));
    }
}
