//! The human-readable output of `initctl status`: the table, the detail of
//! one unit, and the short units (`1.2M`, `3m12s`) both use.

use crate::proto::{LastExit, UnitDetail, UnitStatus};
use crate::unit::Limit;
use std::fmt::Write as _;

/// `1.2M`: powers of 1024, one decimal below 10, rounded down (never
/// overstating use).
pub fn human_bytes(v: u64) -> String {
    if v < 1024 {
        return format!("{v}B");
    }
    // The largest unit not above `v`, P at most.
    let mut unit = 1024u64;
    // `&str`s, not `char`s: `char`'s `Display` is linked for nothing else.
    let mut suffix = "K";
    for next in ["M", "G", "T", "P"] {
        if v / 1024 < unit {
            break;
        }
        unit *= 1024;
        suffix = next;
    }
    let whole = v / unit;
    // Rounded down: `(v % unit) / (unit / 10)` made 1020-1023 of 1024
    // a tenth of 10 ("1.10K" for 2047).
    let tenths = (v % unit) * 10 / unit;
    if whole < 10 && tenths > 0 {
        format!("{whole}.{tenths}{suffix}")
    } else {
        format!("{whole}{suffix}")
    }
}

/// `5s`, `3m12s`, `2h5m`, `4d7h`: two units at most.
pub fn human_uptime(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h{}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{}h", s / 86_400, s % 86_400 / 3600),
    }
}

fn memory_column(u: &UnitStatus) -> String {
    match u.memory_current {
        None => "-".into(),
        Some(cur) => {
            let max = match u.memory_max {
                None | Some(Limit::Max) => "max".into(),
                Some(Limit::Value(v)) => human_bytes(v),
            };
            format!("{}/{max}", human_bytes(cur))
        }
    }
}

/// A number as text: one copy of the formatting, where `to_string` has
/// one per integer type (issue 10).
pub(super) fn num(n: u64) -> String {
    format!("{n}")
}

fn row(u: &UnitStatus) -> [String; 6] {
    let (pid, uptime) = if u.pid == 0 {
        ("-".into(), "-".into())
    } else {
        (num(u.pid.into()), human_uptime(u.uptime_ms))
    };
    [
        u.name.to_string(),
        u.state.as_str().into(),
        pid,
        num(u.restarts.into()),
        memory_column(u),
        uptime,
    ]
}

/// The `initctl status` table: a header and one line per unit, columns
/// left-aligned and separated by at least one space; 77 columns at most
/// with a 32-byte name.
pub fn status_table(units: &[UnitStatus]) -> String {
    let header = ["NAME", "STATE", "PID", "RESTARTS", "MEMORY", "UPTIME"].map(String::from);
    let rows: Vec<[String; 6]> = std::iter::once(header)
        .chain(units.iter().map(row))
        .collect();
    let mut width = [0usize; 6];
    for r in &rows {
        for (w, cell) in width.iter_mut().zip(r) {
            *w = (*w).max(cell.len());
        }
    }
    let mut s = String::new();
    for r in &rows {
        let mut line = String::new();
        for (i, (cell, w)) in r.iter().zip(width).enumerate() {
            if i + 1 == r.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<w$} ");
            }
        }
        s.push_str(line.trim_end());
        s.push('\n');
    }
    s
}

/// `SIGKILL` for 9: the name as `kill -l` and strace print it.
fn signal_name(n: i32) -> Option<String> {
    crate::vocab::signal::name(n).map(|s| format!("SIG{s}"))
}

fn last_exit_text(e: LastExit) -> String {
    match e {
        LastExit::None => "none".into(),
        LastExit::Code(c) => format!("code {c}"),
        LastExit::Signal(n) => match signal_name(n) {
            Some(name) => format!("signal {n} ({name})"),
            None => format!("signal {n}"),
        },
        LastExit::OomKill => "oom-kill".into(),
    }
}

/// `text` with its lines over 80 columns broken for the serial console,
/// each continuation indented two spaces: after a `,` when what follows up
/// to the next `, ` does not fit on the line, else at a blank where the
/// next word does not. Only a word longer than a line is cut, between
/// characters (a byte counts as a column: a UTF-8 character has no fewer).
fn wrapped(text: &[u8]) -> Vec<u8> {
    const WIDTH: usize = 80;
    let mut out = Vec::new();
    let mut col = 0;
    let mut rest = text;
    while let [b, tail @ ..] = rest {
        // The bytes up to the next word's end (after a `,`: the next `, `).
        let part = out.last() == Some(&b',');
        let n = tail
            .iter()
            .zip(rest)
            .position(|(&c, &p)| c == b'\n' || c == b' ' && (!part || p == b','))
            .unwrap_or(tail.len());
        rest = tail;
        let cut = if *b == b' ' {
            col + 1 + n > WIDTH && (n <= WIDTH - 2 || part || col + 1 >= WIDTH)
        } else {
            *b != b'\n' && col >= WIDTH && b & 0xc0 != 0x80
        };
        if cut {
            out.extend_from_slice(b"\n  ");
            col = 2;
            if *b == b' ' {
                continue;
            }
        }
        out.push(*b);
        col = if *b == b'\n' { 0 } else { col + 1 };
    }
    out
}

/// `initctl status NAME`: the table line, then what explains it.
pub fn detail_text(d: &UnitDetail, log: &[u8]) -> Vec<u8> {
    // The table as `status` prints it; the lines below it wrapped.
    let mut table = status_table(std::slice::from_ref(&d.status)).into_bytes();
    let mut s = String::new();
    let _ = writeln!(s, "last exit: {}", last_exit_text(d.last_exit));
    let _ = writeln!(s, "oom kills: {}", d.oom_kills);
    if let Some(p) = d.pressure_avg10 {
        let _ = writeln!(
            s,
            "pressure: {}.{:02}% (memory, some avg10); over pressure_limit: {}",
            p / 100,
            p % 100,
            d.pressure_events
        );
    }
    if !d.not_enforced.is_empty() {
        // `cgroup` first: no cgroup at all, not a controller missing.
        let first = d.not_enforced.split(' ').next();
        let why = if first == Some(crate::cgroup::missing::NO_CGROUP) {
            "no cgroup2"
        } else {
            "controller not available"
        };
        let _ = writeln!(s, "not enforced: {} ({why})", d.not_enforced);
    }
    if !d.confinement.is_empty() {
        let _ = writeln!(s, "confinement: {}", d.confinement);
    }
    let reason = if d.reason.is_empty() { "-" } else { &d.reason };
    let _ = writeln!(s, "reason: {reason}");
    // The confinement and the reason quote the unit file (its `root`, its
    // program): a control character in them is shown, not sent.
    table.extend_from_slice(&wrapped(&super::visible::render(s.as_bytes())));
    let mut s = table;
    if !log.is_empty() {
        // As `log` shows it: text that is not UTF-8 passes unchanged.
        s.extend_from_slice(b"log:\n");
        s.extend_from_slice(&super::visible::render(log));
        if !log.ends_with(b"\n") {
            s.push(b'\n');
        }
    }
    s
}

/// The line under the status table: which wren is PID 1 and how it began,
/// cut to 80 columns as `top` cuts its lines (`~` marks the cut).
pub(super) fn init_line(i: &crate::proto::InitInfo) -> String {
    use crate::proto::Origin;
    let path = super::visible::render(i.path.as_bytes());
    let mut s = format!(
        "init: wren {} {}, state format {}",
        i.version,
        String::from_utf8_lossy(&path),
        i.state_format
    );
    match i.origin {
        Origin::Boot => {}
        Origin::HandedOver { units } => {
            let _ = write!(s, ", re-exec {} took {units} units", i.reexecs);
        }
        // Format 0: no state at all could be read, the count with it.
        Origin::Adopted { units, format: 0 } => {
            let _ = write!(s, ", adopted {units} (state unreadable)");
        }
        Origin::Adopted { units, format } => {
            let _ = write!(
                s,
                ", re-exec {} adopted {units} (format {format})",
                i.reexecs
            );
        }
    }
    super::top::fit(&s, super::top::COLUMNS)
}
