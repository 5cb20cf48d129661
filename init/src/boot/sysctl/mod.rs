//! Kernel tuning at boot: `/etc/sysctl.d/*.conf` (in name order), then
//! `/etc/sysctl.conf`, applied to `/proc/sys` before any unit starts, in
//! the format of procps' `sysctl -p` (docs/units.md, "Kernel tuning").
//!
//! A line is `key = value`; `#` and `;` start a comment line; a leading `-`
//! on the key means a failure to set it is not reported. Keys use `.` or
//! `/` as separators: with `.`, a `/` stands for a literal dot (VLAN names
//! such as `eth0.100`), as procps swaps them. Files are applied in order,
//! so a later file overrides an earlier one. Every failure is reported as
//! `FILE:LINE: message`; none stops the boot.
//!
//! The paths are parameters, so the host tests run against a temp dir.

use crate::pathname::Show as _;
use core::fmt;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

/// Largest sysctl file read; the rest of a bigger one is not applied (and
/// the file is reported), so a runaway file cannot hold the boot.
pub const FILE_MAX: usize = 64 * 1024;
/// Longest key, as a path below /proc/sys.
pub const KEY_MAX: usize = 256;

/// One meaningful line of a sysctl file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Setting<'a> {
    pub key: &'a str,
    pub value: &'a str,
    /// `-key = value`: a failure is expected and not reported.
    pub ignore_failure: bool,
}

/// What a line says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// Blank or a comment.
    Nothing,
    Set(Setting<'a>),
    Bad(&'static str),
}

/// Parses one line (without its newline).
pub fn parse_line(text: &str) -> Line<'_> {
    let t = text.trim();
    if t.is_empty() || t.starts_with('#') || t.starts_with(';') {
        return Line::Nothing;
    }
    let Some((key, value)) = t.split_once('=') else {
        return Line::Bad("expected `key = value`");
    };
    let key = key.trim();
    let (key, ignore_failure) = match key.strip_prefix('-') {
        Some(k) => (k.trim_start(), true),
        None => (key, false),
    };
    if key.is_empty() {
        return Line::Bad("empty key");
    }
    Line::Set(Setting {
        key,
        value: value.trim(),
        ignore_failure,
    })
}

/// Why a key cannot name a file below /proc/sys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyError {
    TooLong,
    /// `*` and `?`: procps 4 expands globs; wren does not (yet).
    Glob,
    /// Empty component, `.` or `..`, or a leading separator.
    BadComponent,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyError::TooLong => "key too long",
            KeyError::Glob => "globs in keys are not supported",
            KeyError::BadComponent => "bad key (empty, `.` or `..` component)",
        })
    }
}

/// The path of `key` relative to /proc/sys: the first separator decides
/// which of `.` and `/` separates; the other one stands for a literal dot
/// or is kept (procps' rule).
pub fn key_path(key: &str) -> Result<heapless::String<KEY_MAX>, KeyError> {
    if key.contains(['*', '?', '[']) {
        return Err(KeyError::Glob);
    }
    let slash_first = key.find('/').unwrap_or(usize::MAX) < key.find('.').unwrap_or(usize::MAX);
    let mut out: heapless::String<KEY_MAX> = heapless::String::new();
    for c in key.chars() {
        let c = match (c, slash_first) {
            ('.', false) => '/',
            ('/', false) => '.',
            (c, _) => c,
        };
        out.push(c).map_err(|_| KeyError::TooLong)?;
    }
    let bad = out
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..");
    if bad {
        return Err(KeyError::BadComponent);
    }
    Ok(out)
}

/// The sysctl files under `etc`, in the order they are applied. A
/// directory or file that is there but cannot be read (a failing SD
/// card) goes to `report` (the directory) or stays in the list (the file,
/// whose read then reports it): only one that is not there is nothing.
pub fn files(etc: &Path, report: &mut dyn FnMut(&Failure<'_>)) -> Vec<PathBuf> {
    let dir = etc.join("sysctl.d");
    let mut out: Vec<PathBuf> = Vec::new();
    // `*.conf`, not the dotfile `.conf` (as systemd-sysctl and procps
    // take them); by the bytes of the name, all in one directory.
    let conf = |name: &[u8]| name.len() > 5 && name.ends_with(b".conf");
    let listed = crate::sys::file::for_each_entry(&dir, |name, _| {
        if conf(name.as_encoded_bytes()) {
            out.push(dir.join(name));
        }
    });
    match listed {
        Ok(()) | Err(Errno::NOENT) => {}
        Err(e) => report(&Failure {
            file: &dir,
            line: 0,
            what: Problem::Read(e),
        }),
    }
    crate::pathname::sort_in_dir(&mut out);
    let main = etc.join("sysctl.conf");
    // rustix's lstat: std's `symlink_metadata` path is not linked for it.
    match rustix::fs::lstat(&main) {
        Err(Errno::NOENT) => {}
        _ => out.push(main),
    }
    out
}

/// One failure, for the log: `FILE:LINE: message`.
#[derive(Debug)]
pub struct Failure<'a> {
    pub file: &'a Path,
    /// 0 for the file as a whole.
    pub line: usize,
    pub what: Problem<'a>,
}

#[derive(Debug)]
pub enum Problem<'a> {
    Read(Errno),
    NotRegular,
    TooBig,
    NotUtf8,
    Syntax(&'static str),
    Key(&'a str, KeyError),
    Write(&'a str, Errno),
}

impl fmt::Display for Failure<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.shown())?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
        }
        match &self.what {
            Problem::Read(e) => write!(f, ": cannot read: {e}"),
            Problem::NotRegular => f.write_str(": not a regular file, skipped"),
            Problem::TooBig => write!(f, ": larger than {FILE_MAX} bytes, the rest is skipped"),
            Problem::NotUtf8 => f.write_str(": not UTF-8, skipped"),
            Problem::Syntax(m) => write!(f, ": {m}"),
            Problem::Key(k, e) => write!(f, ": {k}: {e}"),
            Problem::Write(k, Errno::NOENT) => write!(f, ": {k}: unknown key"),
            Problem::Write(k, e) => write!(f, ": {k}: cannot set: {e}"),
        }
    }
}

/// What `apply` did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    pub set: usize,
    pub failed: usize,
}

/// Reads a regular file of at most `FILE_MAX` bytes without blocking on
/// a FIFO or a device (O_NONBLOCK, then fstat before reading).
fn read_bounded(path: &Path, buf: &mut Vec<u8>) -> Result<bool, Problem<'static>> {
    let fd = crate::sys::file::open_regular(rustix::fs::CWD, path).map_err(|e| match e {
        Errno::INVAL => Problem::NotRegular,
        e => Problem::Read(e),
    })?;
    buf.clear();
    buf.resize(FILE_MAX + 1, 0);
    let mut n = 0;
    while let Some(rest) = buf.get_mut(n..) {
        if rest.is_empty() {
            break;
        }
        match rustix::io::read(&fd, rest) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(Problem::Read(e)),
        }
    }
    let too_big = n > FILE_MAX;
    buf.truncate(n.min(FILE_MAX));
    if too_big {
        // The line the cut goes through is not applied: `= 65536` cut to
        // `= 655` would be set. Cut at a newline, the text stays UTF-8.
        let whole = buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        buf.truncate(whole);
    }
    Ok(too_big)
}

/// A file linked to `/dev/null`: masked, as systemd-sysctl has it (an
/// image turns a file off that way), so nothing to apply and nothing to
/// report.
fn masked(path: &Path) -> bool {
    rustix::fs::stat(path).is_ok_and(|st| {
        rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::CharacterDevice
            && st.st_rdev == rustix::fs::makedev(1, 3)
    })
}

fn write_value(proc_sys: &Path, rel: &str, value: &str) -> Result<(), Errno> {
    let fd = crate::sys::file::openat(
        rustix::fs::CWD,
        proc_sys.join(rel),
        OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NONBLOCK,
        Mode::empty(),
    )?;
    // One write of the value and its newline, as `echo value > file`.
    let mut line = Vec::with_capacity(value.len() + 1);
    line.extend_from_slice(value.as_bytes());
    line.push(b'\n');
    let n = rustix::io::write(&fd, &line)?;
    if n < line.len() {
        return Err(Errno::IO);
    }
    Ok(())
}

/// Applies every sysctl file under `etc` to `proc_sys`; each failure goes
/// to `report` (unless the line asked to ignore it).
pub fn apply(etc: &Path, proc_sys: &Path, report: &mut dyn FnMut(&Failure<'_>)) -> Applied {
    let mut done = Applied::default();
    let mut buf = Vec::new();
    for file in files(etc, &mut |f| {
        done.failed += 1;
        report(f)
    }) {
        let file = file.as_path();
        let fail = |line, what| Failure { file, line, what };
        if masked(file) {
            continue;
        }
        match read_bounded(file, &mut buf) {
            Ok(false) => {}
            Ok(true) => {
                done.failed += 1;
                report(&fail(0, Problem::TooBig));
            }
            Err(p) => {
                done.failed += 1;
                report(&fail(0, p));
                continue;
            }
        }
        let Ok(text) = core::str::from_utf8(&buf) else {
            done.failed += 1;
            report(&fail(0, Problem::NotUtf8));
            continue;
        };
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let s = match parse_line(raw) {
                Line::Nothing => continue,
                Line::Bad(m) => {
                    done.failed += 1;
                    report(&fail(line, Problem::Syntax(m)));
                    continue;
                }
                Line::Set(s) => s,
            };
            let result = match key_path(s.key) {
                Err(e) => Err(Problem::Key(s.key, e)),
                Ok(rel) => {
                    write_value(proc_sys, &rel, s.value).map_err(|e| Problem::Write(s.key, e))
                }
            };
            match result {
                Ok(()) => done.set += 1,
                Err(_) if s.ignore_failure => {}
                Err(p) => {
                    done.failed += 1;
                    report(&fail(line, p));
                }
            }
        }
    }
    done
}

#[cfg(test)]
mod tests;
