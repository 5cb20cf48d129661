//! `initctl`: the client. Not PID 1, so it may allocate and block (with
//! timeouts); it speaks `proto` to the server in `control`.
//!
//! By job: `args` (the command line), `client` (the connection to PID 1 and
//! the commands that need it), `edit` (`initctl edit`), `output` (the status
//! table and detail text), `json` (`status --json`), `metrics` (the
//! Prometheus text) and `top` (the live view), both from `sample` (the
//! cgroup files the client reads itself). `initctl check` needs
//! no PID 1: it is `config::check`.

mod args;
mod client;
mod conn;
mod edit;
mod json;
mod metrics;
pub mod out;
mod output;
mod sample;
mod top;
mod visible;

use crate::vocab::CONTROL_SOCKET;
use args::{Command, USAGE};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Overrides `CONTROL_SOCKET` (tests, or a second instance).
pub const CONTROL_ENV: &std::ffi::CStr = c"WREN_CONTROL";

/// Exit statuses, as docs/initctl.md, "Exit status" fixes them.
const OK: u8 = 0;
const FAIL: u8 = 1;
const USAGE_EXIT: u8 = 2;

/// `initctl ARGS` (argv[0] excluded); returns the exit status.
pub fn main(args: &[String]) -> u8 {
    use std::os::unix::ffi::OsStrExt;
    // libc's getenv in place (`sys::exec::env_var`), as for `EDITOR`,
    // `TMPDIR` and the state format's bump: std's `var` and `var_os`
    // (their lock, C-string conversion and copy) are not linked.
    let socket = crate::sys::exec::env_var(CONTROL_ENV)
        .map(|v| PathBuf::from(std::ffi::OsStr::from_bytes(v.to_bytes())))
        .unwrap_or_else(|| PathBuf::from(CONTROL_SOCKET));
    run(args, &socket, &mut Stdout::default(), &mut Stderr)
}

/// Standard error as std's `Stderr` writes it: unbuffered, each write
/// at once, a closed fd 2 taken as written; on fd 2 itself: std's
/// `Stderr` (its reentrant lock and vectored writes) is not linked.
struct Stderr;

impl Write for Stderr {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match rustix::io::write(rustix::stdio::stderr(), data) {
            Err(rustix::io::Errno::BADF) => Ok(data.len()),
            r => Ok(r?),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Standard output as `initctl` writes it: whole lines at once (as
/// std's line-buffered stdout, so that they keep their order with
/// standard error's), through one write(2) each, on fd 1 itself: std's
/// `Stdout` (its lock and line writer, 2 KB) is not linked for it.
#[derive(Default)]
struct Stdout {
    buf: Vec<u8>,
}

impl Write for Stdout {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if data.contains(&b'\n') || self.buf.len() >= 8192 {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let r = crate::sys::file::write_all(rustix::stdio::stdout(), &self.buf);
        // What could not be written is dropped with the error.
        self.buf.clear();
        r.map_err(io::Error::from)
    }
}

/// Standard output that remembers its first failed write: `initctl
/// metrics > file` on a full disk, or `status --json` into a closed
/// pipe, must not exit 0 with the output cut.
///
/// Generic over the stream, not `dyn`: only its `write` and `flush` are
/// then linked (through `dyn out::Out`, std's stdout brought its vectored
/// and line-buffered writes along, 2.5 KB).
struct Watched<'a, W: Write> {
    out: &'a mut W,
    failed: Option<io::Error>,
}

impl<W: Write> Write for Watched<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.write(buf).inspect_err(|e| self.note(e))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush().inspect_err(|e| self.note(e))
    }
}

impl<W: Write> Watched<'_, W> {
    /// A copy of `e` by its errno: an `io::Error` of a message would link
    /// std's custom-error code, 3 KB, and one of its kind the table from
    /// errno to kind. The writers `initctl` gives it (stdout, a `Vec`)
    /// fail only with an errno; one without (a writer of tests) is taken
    /// as a short write, an error that is not a closed pipe's.
    fn note(&mut self, e: &io::Error) {
        if self.failed.is_none() {
            self.failed = Some(match e.raw_os_error() {
                Some(code) => io::Error::from_raw_os_error(code),
                None => io::Error::from(io::ErrorKind::WriteZero),
            });
        }
    }
}

/// `main` with the socket and the output streams as parameters.
pub fn run<W: Write>(args: &[String], socket: &Path, out: &mut W, err: &mut dyn out::Out) -> u8 {
    let mut watched = Watched { out, failed: None };
    let code = run_to(args, socket, &mut watched, err);
    let _ = watched.flush();
    match watched.failed {
        // A reader that went away (`| head`) ends the output, as it does
        // `log -f`: what it read was whole.
        Some(e) if !crate::sys::file::is_errno(&e, rustix::io::Errno::PIPE) && code == OK => {
            fail(err, &format_args!("cannot write the output: {e}"))
        }
        _ => code,
    }
}

fn run_to(args: &[String], socket: &Path, out: &mut dyn out::Out, err: &mut dyn out::Out) -> u8 {
    let cmd = match args::parse(args) {
        Ok(c) => c,
        Err(msg) => {
            let _ = write!(err, "initctl: {msg}\n{USAGE}");
            return USAGE_EXIT;
        }
    };
    let code = match cmd {
        Command::Help => {
            let _ = out.write_all(USAGE.as_bytes());
            OK
        }
        Command::Check { root, files } => check(root.as_deref(), &files, out),
        Command::Edit(name) => edit::edit(&name, socket, out, err),
        Command::Metrics => match client::status_list(socket) {
            Ok(units) => {
                let root = Path::new(crate::vocab::CGROUP_ROOT).join("units");
                let samples: Vec<_> = units
                    .into_iter()
                    .map(|u| sample::sample(&root, u))
                    .collect();
                let _ = out.write_all(metrics::render(&samples).as_bytes());
                OK
            }
            Err(msg) => fail(err, &msg),
        },
        Command::Top { interval, count } => {
            let mut fetch = || client::status_list(socket);
            let every = std::time::Duration::from_secs(interval.into());
            match top::run(&mut fetch, every, count, out) {
                Ok(()) => OK,
                Err(msg) => fail(err, &msg),
            }
        }
        cmd => match client::talk(&cmd, socket, out, err) {
            Ok(code) => code,
            Err(msg) => fail(err, &msg),
        },
    };
    code
}

/// `initctl: MSG` on stderr; the exit status of a failure. One copy of
/// the formatting for every such message.
fn fail(err: &mut dyn out::Out, msg: &dyn std::fmt::Display) -> u8 {
    let _ = writeln!(err, "initctl: {msg}");
    FAIL
}

/// The unit directory PID 1 runs from: `wren.units=` on the kernel
/// command line, read as PID 1 reads it (a line not UTF-8 throughout
/// had `edit` install where PID 1 never reads), else /etc/units (also on
/// a build host).
fn units_dir() -> String {
    let mut buf = [0u8; 4096];
    let text = crate::boot::cmdline::read_text(&mut buf).unwrap_or("");
    crate::boot::cmdline::parse(text, &mut |_, _| {})
        .units_dir()
        .to_owned()
}

fn check(root: Option<&str>, files: &[String], out: &mut dyn out::Out) -> u8 {
    if let Some(root) = root {
        let paths: Vec<&Path> = files.iter().map(Path::new).collect();
        return if crate::config::check_root(Path::new(root), &paths, out) {
            OK
        } else {
            FAIL
        };
    }
    let dir = units_dir();
    let paths: Vec<&Path> = if files.is_empty() {
        vec![Path::new(&dir)]
    } else {
        files.iter().map(Path::new).collect()
    };
    if crate::config::check(&paths, out) {
        OK
    } else {
        FAIL
    }
}

#[cfg(test)]
mod tests;
