//! `initctl`: the client. Not PID 1, so it may allocate and block (with
//! timeouts); it speaks `proto` to the server in `control`.

use crate::proto::{
    decode_reply, encode_request, CtlError, ErrCode, FrameDecoder, LastExit, ProtoError, Reply,
    Request, UnitDetail, UnitStatus, FRAME_BUF,
};
use crate::unit::Limit;
use crate::vocab::ShutdownKind;
use crate::vocab::CONTROL_SOCKET;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Overrides `CONTROL_SOCKET` (tests, or a second instance).
pub const CONTROL_ENV: &str = "WREN_CONTROL";
/// How long start/stop/restart wait for the unit to settle: above the
/// default `stop_timeout` (5s) and restart delays with a wide margin, as
/// systemd's default job timeout. The action goes on after a timeout.
pub const WAIT_TIMEOUT: Duration = Duration::from_secs(90);
/// How long any other request waits for its reply.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// `reload` reads every unit file before answering.
pub const RELOAD_TIMEOUT: Duration = Duration::from_secs(30);

const USAGE: &str = "\
usage: initctl COMMAND [ARGS]
  status [NAME] [--json]   units, or one unit in detail
  start NAME               start and wait until ready
  stop NAME                stop and wait until stopped
  restart NAME             restart and wait until ready
  reload                   re-read the unit directory
  check [FILE...]          validate unit files (default /etc/units)
  cat NAME                 the unit's definition as loaded
  edit NAME                edit /etc/units/NAME.unit ($EDITOR), check, apply
  log NAME [-f]            the unit's output; -f follows
  poweroff | reboot | halt
";

/// Exit statuses, as CONTRACT section 5 fixes them.
const OK: u8 = 0;
const FAIL: u8 = 1;
const USAGE_EXIT: u8 = 2;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Command {
    Help,
    Status { name: Option<String>, json: bool },
    Start(String),
    Stop(String),
    Restart(String),
    Shutdown(ShutdownKind),
    Check(Vec<String>),
    Log { name: String, follow: bool },
    Cat(String),
    Edit(String),
    Reload,
}

/// `Err` is the usage message's first line.
fn parse_args(args: &[String]) -> Result<Command, String> {
    let Some((cmd, rest)) = args.split_first() else {
        return Err("missing command".into());
    };
    let one_name = |rest: &[String]| -> Result<String, String> {
        match rest {
            [n] => unit_name(n),
            [] => Err(format!("{cmd}: missing unit name")),
            _ => Err(format!("{cmd}: too many arguments")),
        }
    };
    let none = |rest: &[String]| -> Result<(), String> {
        if rest.is_empty() {
            Ok(())
        } else {
            Err(format!("{cmd}: takes no arguments"))
        }
    };
    Ok(match cmd.as_str() {
        "help" | "-h" | "--help" => Command::Help,
        "status" => {
            let mut name = None;
            let mut json = false;
            for a in rest {
                match a.as_str() {
                    "--json" => json = true,
                    s if s.starts_with('-') => return Err(format!("status: unknown option {s}")),
                    s if name.is_none() => name = Some(unit_name(s)?),
                    _ => return Err("status: too many arguments".into()),
                }
            }
            Command::Status { name, json }
        }
        "start" => Command::Start(one_name(rest)?),
        "stop" => Command::Stop(one_name(rest)?),
        "restart" => Command::Restart(one_name(rest)?),
        "poweroff" => none(rest).map(|_| Command::Shutdown(ShutdownKind::Poweroff))?,
        "reboot" => none(rest).map(|_| Command::Shutdown(ShutdownKind::Reboot))?,
        "halt" => none(rest).map(|_| Command::Shutdown(ShutdownKind::Halt))?,
        "reload" => none(rest).map(|_| Command::Reload)?,
        "check" => Command::Check(rest.to_vec()),
        "cat" => Command::Cat(one_name(rest)?),
        "edit" => Command::Edit(one_name(rest)?),
        "log" => {
            let mut name = None;
            let mut follow = false;
            for a in rest {
                match a.as_str() {
                    "-f" | "--follow" => follow = true,
                    s if s.starts_with('-') => return Err(format!("log: unknown option {s}")),
                    s if name.is_none() => name = Some(unit_name(s)?),
                    _ => return Err("log: too many arguments".into()),
                }
            }
            let name = name.ok_or("log: missing unit name")?;
            Command::Log { name, follow }
        }
        other => return Err(format!("unknown command '{other}'")),
    })
}

fn unit_name(s: &str) -> Result<String, String> {
    if crate::vocab::valid_name(s) {
        Ok(s.to_string())
    } else {
        Err(format!(
            "invalid unit name '{s}' (1-32 of a-z 0-9 . _ -, first a letter or digit)"
        ))
    }
}

/// `initctl ARGS` (argv[0] excluded); returns the exit status.
pub fn main(args: &[String]) -> u8 {
    let socket = std::env::var_os(CONTROL_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(CONTROL_SOCKET));
    let stdout = io::stdout();
    let stderr = io::stderr();
    run(args, &socket, &mut stdout.lock(), &mut stderr.lock())
}

/// `main` with the socket and the output streams as parameters.
pub fn run(args: &[String], socket: &Path, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let cmd = match parse_args(args) {
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
        Command::Check(files) => check(&files, out),
        Command::Edit(name) => edit(&name, socket, out, err),
        cmd => match talk(&cmd, socket, out, err) {
            Ok(code) => code,
            Err(msg) => {
                let _ = writeln!(err, "initctl: {msg}");
                FAIL
            }
        },
    };
    let _ = out.flush();
    code
}

/// The unit directory PID 1 runs from: `wren.units=` on the kernel
/// command line, else /etc/units (also on a build host).
fn units_dir() -> String {
    let text = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    crate::boot::cmdline::parse(&text, &mut |_, _| {})
        .units_dir()
        .to_owned()
}

fn check(files: &[String], out: &mut dyn Write) -> u8 {
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

/// What `edit_unit` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Edited {
    /// Saved as it was: nothing installed.
    Unchanged,
    /// The checked copy replaced the unit file.
    Installed,
    /// Invalid and the user declined to edit again: nothing installed.
    Aborted,
}

/// How `edit_unit` reaches the world, so tests can stand in.
struct EditEnv<'a> {
    /// The unit directory.
    dir: &'a Path,
    /// Where the working copy is made.
    tmp: &'a Path,
    /// Run through `/bin/sh -c` as git does, so it may carry arguments.
    editor: &'a str,
    /// Validates one file, writing problems to the writer.
    check: &'a dyn Fn(&Path, &mut dyn Write) -> bool,
}

/// `initctl edit NAME`: edit a copy, validate it, offer to re-edit while
/// invalid, install it (atomic rename) and have init reload.
fn edit(name: &str, socket: &Path, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let editor = std::env::var("EDITOR")
        .ok()
        .filter(|e| !e.trim().is_empty())
        .unwrap_or_else(|| "vi".into());
    let tmp = std::env::temp_dir();
    let dir = units_dir();
    // The copy is checked in place of the installed file, among its
    // siblings, so its `after` names resolve.
    let check = |p: &Path, w: &mut dyn Write| {
        crate::config::check_in_context(Path::new("/"), &[p], Path::new(&dir), w)
    };
    let env = EditEnv {
        dir: Path::new(&dir),
        tmp: &tmp,
        editor: &editor,
        check: &check,
    };
    let stdin = io::stdin();
    match edit_unit(name, &env, &mut stdin.lock(), err) {
        Err(msg) => {
            let _ = writeln!(err, "initctl: {msg}");
            FAIL
        }
        Ok(Edited::Aborted) => {
            let _ = writeln!(err, "initctl: {name}.unit left unchanged");
            FAIL
        }
        Ok(Edited::Unchanged) => {
            let _ = writeln!(out, "{name}.unit unchanged");
            OK
        }
        Ok(Edited::Installed) => {
            let _ = writeln!(out, "{name}.unit installed");
            match talk(&Command::Reload, socket, out, err) {
                Ok(code) => code,
                Err(msg) => {
                    let _ = writeln!(err, "initctl: installed but not applied: {msg}");
                    FAIL
                }
            }
        }
    }
}

fn edit_unit(
    name: &str,
    env: &EditEnv<'_>,
    input: &mut dyn io::BufRead,
    err: &mut dyn Write,
) -> Result<Edited, String> {
    let target = env.dir.join(format!("{name}.unit"));
    let original = match std::fs::read_to_string(&target) {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            format!("# {name}: new unit, see CONTRACT section 4\nexec = \n")
        }
        Err(e) => return Err(format!("{}: {e}", target.display())),
    };
    // The copy keeps the unit's file name so that `check` sees its name.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let work = env
        .tmp
        .join(format!("wren-edit-{}-{name}-{nanos}", std::process::id()));
    std::fs::create_dir(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    let result = edit_loop(name, env, &original, &target, &work, input, err);
    let _ = std::fs::remove_dir_all(&work);
    result
}

fn edit_loop(
    name: &str,
    env: &EditEnv<'_>,
    original: &str,
    target: &Path,
    work: &Path,
    input: &mut dyn io::BufRead,
    err: &mut dyn Write,
) -> Result<Edited, String> {
    let copy = work.join(format!("{name}.unit"));
    std::fs::write(&copy, original).map_err(|e| format!("{}: {e}", copy.display()))?;
    loop {
        let status = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("{} \"$@\"", env.editor))
            .arg(env.editor)
            .arg(&copy)
            .status()
            .map_err(|e| format!("cannot run /bin/sh for the editor: {e}"))?;
        if !status.success() {
            return Err(format!("editor '{}' failed ({status})", env.editor));
        }
        let text =
            std::fs::read_to_string(&copy).map_err(|e| format!("{}: {e}", copy.display()))?;
        if text == original {
            return Ok(Edited::Unchanged);
        }
        if (env.check)(&copy, err) {
            let staged = target.with_file_name(format!(".{name}.unit.new"));
            std::fs::write(&staged, &text)
                .and_then(|()| std::fs::File::open(&staged)?.sync_all())
                .and_then(|()| std::fs::rename(&staged, target))
                .map_err(|e| {
                    let _ = std::fs::remove_file(&staged);
                    format!("installing {}: {e}", target.display())
                })?;
            return Ok(Edited::Installed);
        }
        let _ = write!(err, "{name}.unit is invalid. Edit again? [Y/n] ");
        let _ = err.flush();
        let mut answer = String::new();
        let n = input.read_line(&mut answer).map_err(|e| e.to_string())?;
        if n == 0 || answer.trim_start().starts_with(['n', 'N']) {
            return Ok(Edited::Aborted);
        }
    }
}

#[derive(Debug)]
enum ClientError {
    Io(io::Error),
    Timeout,
    Proto(ProtoError),
    /// The server closed mid-frame.
    Truncated,
    /// The server closed without replying.
    Closed,
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Io(e) => write!(f, "control socket: {e}"),
            ClientError::Timeout => f.write_str("timed out waiting for init"),
            ClientError::Proto(e) => write!(f, "bad reply: {e}"),
            ClientError::Truncated => f.write_str("init closed the connection mid-reply"),
            ClientError::Closed => f.write_str("init closed the connection without replying"),
        }
    }
}

struct Conn {
    stream: UnixStream,
    dec: Box<FrameDecoder<FRAME_BUF>>,
}

impl Conn {
    fn open(path: &Path) -> Result<Conn, String> {
        let stream = UnixStream::connect(path).map_err(|e| {
            format!(
                "cannot connect to {}: {e} (is wren running as PID 1, and are you root?)",
                path.display()
            )
        })?;
        Ok(Conn {
            stream,
            dec: Box::new(FrameDecoder::new()),
        })
    }

    fn send(&mut self, req: &Request<'_>) -> Result<(), ClientError> {
        let mut buf = [0u8; 512];
        let n = encode_request(req, &mut buf).map_err(ClientError::Proto)?;
        self.stream.write_all(&buf[..n]).map_err(ClientError::Io)
    }

    /// The next reply handed to `f`; `Ok(None)` when the server closed
    /// cleanly. `deadline` `None` waits for ever (`log -f`).
    fn recv<R>(
        &mut self,
        deadline: Option<Instant>,
        f: impl FnOnce(Reply<'_>) -> R,
    ) -> Result<Option<R>, ClientError> {
        // Read until one whole frame is buffered (or the stream ends).
        while self.dec.frame().map_err(ClientError::Proto)?.is_none() {
            let wait = match deadline {
                None => None,
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(w) if !w.is_zero() => Some(w),
                    _ => return Err(ClientError::Timeout),
                },
            };
            self.stream
                .set_read_timeout(wait)
                .map_err(ClientError::Io)?;
            match self.stream.read(self.dec.spare()) {
                Ok(0) if self.dec.buffered() > 0 => return Err(ClientError::Truncated),
                Ok(0) => return Ok(None),
                Ok(n) => self.dec.advance(n),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(ClientError::Timeout)
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ClientError::Io(e)),
            }
        }
        let r = match self.dec.frame() {
            Ok(Some(p)) => f(decode_reply(p).map_err(ClientError::Proto)?),
            Ok(None) => return Err(ClientError::Truncated),
            Err(e) => return Err(ClientError::Proto(e)),
        };
        self.dec.consume();
        Ok(Some(r))
    }

    /// Exactly one reply is expected.
    fn reply<R>(
        &mut self,
        timeout: Duration,
        f: impl FnOnce(Reply<'_>) -> R,
    ) -> Result<R, ClientError> {
        self.recv(Some(Instant::now() + timeout), f)?
            .ok_or(ClientError::Closed)
    }
}

fn show_error(e: &CtlError, name: Option<&str>, err: &mut dyn Write) -> u8 {
    let _ = match name {
        Some(n) if e.code != ErrCode::NoSuchUnit || e.message.is_empty() => {
            writeln!(err, "initctl: {n}: {e}")
        }
        _ => writeln!(err, "initctl: {e}"),
    };
    FAIL
}

fn unexpected(err: &mut dyn Write) -> u8 {
    let _ = writeln!(err, "initctl: unexpected reply from init");
    FAIL
}

/// Commands that need PID 1. `Err` is a message for stderr (exit 1).
fn talk(
    cmd: &Command,
    socket: &Path,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<u8, String> {
    let mut conn = Conn::open(socket)?;
    let fail = |e: ClientError| e.to_string();
    match cmd {
        Command::Status { name: None, json } => {
            conn.send(&Request::Status { name: None }).map_err(fail)?;
            conn.reply(REPLY_TIMEOUT, |r| match r {
                Reply::Status(units) => {
                    let text = if *json {
                        json_units(&units)
                    } else {
                        status_table(&units)
                    };
                    let _ = out.write_all(text.as_bytes());
                    OK
                }
                Reply::Error(e) => show_error(&e, None, err),
                _ => unexpected(err),
            })
            .map_err(fail)
        }
        Command::Status {
            name: Some(name),
            json,
        } => {
            conn.send(&Request::Status { name: Some(name) })
                .map_err(fail)?;
            conn.reply(REPLY_TIMEOUT, |r| match r {
                Reply::Detail { detail, log } => {
                    let text = if *json {
                        json_detail(&detail, log)
                    } else {
                        detail_text(&detail, log)
                    };
                    let _ = out.write_all(text.as_bytes());
                    OK
                }
                Reply::Error(e) => show_error(&e, Some(name), err),
                _ => unexpected(err),
            })
            .map_err(fail)
        }
        Command::Start(name) | Command::Stop(name) | Command::Restart(name) => {
            let (req, done) = match cmd {
                Command::Start(_) => (Request::Start { name }, "started"),
                Command::Stop(_) => (Request::Stop { name }, "stopped"),
                _ => (Request::Restart { name }, "restarted"),
            };
            conn.send(&req).map_err(fail)?;
            match conn.reply(WAIT_TIMEOUT, |r| match r {
                Reply::Ok => {
                    let _ = writeln!(out, "{name}: {done}");
                    OK
                }
                Reply::Error(e) => show_error(&e, Some(name), err),
                _ => unexpected(err),
            }) {
                Ok(code) => Ok(code),
                Err(ClientError::Timeout) => Err(format!(
                    "{name}: not {done} after {}s; see 'initctl status {name}'",
                    WAIT_TIMEOUT.as_secs()
                )),
                Err(e) => Err(e.to_string()),
            }
        }
        Command::Shutdown(kind) => {
            conn.send(&Request::Shutdown(*kind)).map_err(fail)?;
            conn.reply(REPLY_TIMEOUT, |r| match r {
                Reply::Ok => OK,
                Reply::Error(e) => show_error(&e, None, err),
                _ => unexpected(err),
            })
            .map_err(fail)
        }
        Command::Cat(name) => {
            conn.send(&Request::Cat { name }).map_err(fail)?;
            conn.reply(REPLY_TIMEOUT, |r| match r {
                Reply::Cat(text) => {
                    let _ = out.write_all(text.as_bytes());
                    if !text.is_empty() && !text.ends_with('\n') {
                        let _ = out.write_all(b"\n");
                    }
                    OK
                }
                Reply::Error(e) => show_error(&e, Some(name), err),
                _ => unexpected(err),
            })
            .map_err(fail)
        }
        Command::Reload => {
            conn.send(&Request::Reload).map_err(fail)?;
            conn.reply(RELOAD_TIMEOUT, |r| match r {
                Reply::Reload { result, report } => {
                    for line in report.lines() {
                        let _ = writeln!(out, "{line}");
                    }
                    match result {
                        Ok(()) => OK,
                        Err(e) => show_error(&e, None, err),
                    }
                }
                Reply::Error(e) => show_error(&e, None, err),
                _ => unexpected(err),
            })
            .map_err(fail)
        }
        Command::Log { name, follow } => {
            conn.send(&Request::Log {
                name,
                follow: *follow,
            })
            .map_err(fail)?;
            // Without -f the whole ring comes at once; with it, chunks come
            // as the unit writes, until init closes (unit removed).
            let deadline = (!follow).then(|| Instant::now() + REPLY_TIMEOUT);
            loop {
                let step = conn.recv(deadline, |r| match r {
                    Reply::Log { missed, data } => {
                        if missed > 0 {
                            let _ = out.flush();
                            let _ = writeln!(err, "initctl: {missed} bytes of output lost");
                        }
                        // A reader that went away (`| head`) ends the follow.
                        match out.write_all(data).and_then(|()| out.flush()) {
                            Ok(()) => None,
                            Err(_) => Some(OK),
                        }
                    }
                    Reply::Error(e) => Some(show_error(&e, Some(name), err)),
                    _ => Some(unexpected(err)),
                });
                match step {
                    Ok(Some(None)) => {}
                    Ok(Some(Some(code))) => return Ok(code),
                    Ok(None) => return Ok(OK),
                    Err(e) => return Err(e.to_string()),
                }
            }
        }
        Command::Help | Command::Check(_) | Command::Edit(_) => Ok(OK),
    }
}

/// `1.2M`: powers of 1024, one decimal below 10, rounded down (never
/// overstating use).
pub fn human_bytes(v: u64) -> String {
    const UNITS: [&str; 5] = ["K", "M", "G", "T", "P"];
    if v < 1024 {
        return format!("{v}B");
    }
    let mut unit = 1024u64;
    let mut i = 0;
    while i + 1 < UNITS.len() && v / 1024 >= unit {
        unit *= 1024;
        i += 1;
    }
    let whole = v / unit;
    let tenths = (v % unit) / (unit / 10);
    if whole < 10 && tenths > 0 {
        format!("{whole}.{tenths}{}", UNITS[i])
    } else {
        format!("{whole}{}", UNITS[i])
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

fn row(u: &UnitStatus) -> [String; 6] {
    let (pid, uptime) = if u.pid == 0 {
        ("-".into(), "-".into())
    } else {
        (u.pid.to_string(), human_uptime(u.uptime_ms))
    };
    [
        u.name.to_string(),
        u.state.as_str().into(),
        pid,
        u.restarts.to_string(),
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
        for (i, cell) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$} ", w = width[i]));
            }
        }
        s.push_str(line.trim_end());
        s.push('\n');
    }
    s
}

fn signal_name(n: i32) -> Option<&'static str> {
    nix::sys::signal::Signal::try_from(n)
        .ok()
        .map(|s| s.as_str())
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

/// `initctl status NAME`: the table line, then what explains it.
pub fn detail_text(d: &UnitDetail, log: &[u8]) -> String {
    let mut s = status_table(std::slice::from_ref(&d.status));
    s.push_str(&format!("last exit: {}\n", last_exit_text(d.last_exit)));
    s.push_str(&format!("oom kills: {}\n", d.oom_kills));
    let reason = if d.reason.is_empty() { "-" } else { &d.reason };
    s.push_str(&format!("reason: {reason}\n"));
    if !log.is_empty() {
        s.push_str("log:\n");
        s.push_str(&String::from_utf8_lossy(log));
        if !log.ends_with(b"\n") {
            s.push('\n');
        }
    }
    s
}

/// A JSON string literal for `s`.
pub fn json_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            '\u{8}' => o.push_str("\\b"),
            '\u{c}' => o.push_str("\\f"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                o.push_str(&format!("\\u{:04x}", c as u32));
            }
            // U+2028/2029 are valid JSON but break JavaScript consumers.
            '\u{2028}' => o.push_str("\\u2028"),
            '\u{2029}' => o.push_str("\\u2029"),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn json_opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "null".into(), |v| v.to_string())
}

fn json_unit_fields(u: &UnitStatus) -> String {
    let max = match u.memory_max {
        None => "null".into(),
        Some(Limit::Max) => "\"max\"".into(),
        Some(Limit::Value(v)) => v.to_string(),
    };
    format!(
        "\"name\":{},\"state\":{},\"pid\":{},\"restarts\":{},\"memory_current\":{},\
         \"memory_max\":{},\"uptime_ms\":{}",
        json_str(&u.name),
        json_str(u.state.as_str()),
        json_opt((u.pid != 0).then_some(u.pid)),
        u.restarts,
        json_opt(u.memory_current),
        max,
        json_opt((u.pid != 0).then_some(u.uptime_ms)),
    )
}

/// `status --json`: an array with one object per unit. `pid` and
/// `uptime_ms` are null when not running, `memory_current` when unknown;
/// `memory_max` is null (unset), `"max"` or a number of bytes.
pub fn json_units(units: &[UnitStatus]) -> String {
    let objs: Vec<String> = units
        .iter()
        .map(|u| format!("{{{}}}", json_unit_fields(u)))
        .collect();
    format!("[{}]\n", objs.join(","))
}

/// `status NAME --json`: the unit's object with `last_exit` (null or
/// `{"code":N}` / `{"signal":N,"name":"SIGX"}` / `"oom-kill"`), `oom_kills`,
/// `reason` and `log` (the last lines, invalid UTF-8 replaced).
pub fn json_detail(d: &UnitDetail, log: &[u8]) -> String {
    let last = match d.last_exit {
        LastExit::None => "null".into(),
        LastExit::Code(c) => format!("{{\"code\":{c}}}"),
        LastExit::Signal(n) => format!(
            "{{\"signal\":{n},\"name\":{}}}",
            signal_name(n).map_or_else(|| "null".into(), json_str)
        ),
        LastExit::OomKill => "\"oom-kill\"".into(),
    };
    format!(
        "{{{},\"last_exit\":{last},\"oom_kills\":{},\"reason\":{},\"log\":{}}}\n",
        json_unit_fields(&d.status),
        d.oom_kills,
        json_str(&d.reason),
        json_str(&String::from_utf8_lossy(log)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::fake::{status, Fake, TempDir};
    use crate::control::Server;
    use crate::vocab::State;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    /// Runs `initctl ARGS` in a thread against a real server driven here;
    /// `step` may change the fake between polls.
    fn drive(
        tag: &str,
        fake: &mut Fake,
        a: &[&str],
        mut step: impl FnMut(&mut Fake, u32),
    ) -> (u8, String, String) {
        let dir = TempDir::new(tag);
        let path = dir.0.join("control");
        let uid = rustix::process::getuid().as_raw();
        let mut server = Server::bind(&path, uid).unwrap();
        let a = args(a);
        let p = path.clone();
        let h = std::thread::spawn(move || {
            let (mut o, mut e) = (Vec::new(), Vec::new());
            let code = run(&a, &p, &mut o, &mut e);
            (code, o, e)
        });
        let mut i = 0;
        while !h.is_finished() {
            server.on_ready(1_000, fake);
            server.poll_waiters(1_000, fake);
            step(fake, i);
            i += 1;
            assert!(i < 10_000, "initctl did not finish");
            std::thread::sleep(Duration::from_millis(1));
        }
        let (code, o, e) = h.join().unwrap();
        (
            code,
            String::from_utf8(o).unwrap(),
            String::from_utf8(e).unwrap(),
        )
    }

    fn offline(a: &[&str]) -> (u8, String, String) {
        let (mut o, mut e) = (Vec::new(), Vec::new());
        let code = run(
            &args(a),
            Path::new("/nonexistent/wren/control"),
            &mut o,
            &mut e,
        );
        (
            code,
            String::from_utf8(o).unwrap(),
            String::from_utf8(e).unwrap(),
        )
    }

    #[test]
    fn usage_errors_exit_2_without_contacting_init() {
        for a in [
            &[][..],
            &["frobnicate"],
            &["start"],
            &["start", "a", "b"],
            &["stop", "Bad/Name"],
            &["status", "a", "b"],
            &["status", "--yaml"],
            &["log"],
            &["log", "a", "-x"],
            &["reboot", "now"],
            &["reload", "x"],
        ] {
            let (code, out, err) = offline(a);
            assert_eq!(code, 2, "{a:?}");
            assert!(out.is_empty());
            assert!(err.starts_with("initctl: "), "{err}");
            assert!(err.contains("usage: initctl"));
        }
        let (code, out, _) = offline(&["--help"]);
        assert_eq!(code, 0);
        assert!(out.starts_with("usage: initctl"));
        assert!(USAGE.lines().all(|l| l.len() <= 80));
    }

    #[test]
    fn unreachable_init_is_a_failure() {
        let (code, out, err) = offline(&["status"]);
        assert_eq!(code, 1);
        assert!(out.is_empty());
        assert!(err.contains("cannot connect to /nonexistent/wren/control"));
    }

    #[test]
    fn parse_accepts_options_anywhere() {
        assert_eq!(
            parse_args(&args(&["status", "--json", "web"])),
            Ok(Command::Status {
                name: Some("web".into()),
                json: true
            })
        );
        assert_eq!(
            parse_args(&args(&["log", "-f", "db"])),
            Ok(Command::Log {
                name: "db".into(),
                follow: true
            })
        );
        assert_eq!(
            parse_args(&args(&["check", "a.unit", "b.unit"])),
            Ok(Command::Check(args(&["a.unit", "b.unit"])))
        );
        assert_eq!(
            parse_args(&args(&["halt"])),
            Ok(Command::Shutdown(ShutdownKind::Halt))
        );
    }

    #[test]
    fn sizes_and_uptimes_are_short() {
        assert_eq!(human_bytes(0), "0B");
        assert_eq!(human_bytes(1023), "1023B");
        assert_eq!(human_bytes(1024), "1K");
        assert_eq!(human_bytes(1536), "1.5K");
        assert_eq!(human_bytes(1_300_000), "1.2M");
        assert_eq!(human_bytes(8 << 20), "8M");
        assert_eq!(human_bytes((10 << 20) + 900_000), "10M");
        assert_eq!(human_bytes(1023 << 20), "1023M");
        assert_eq!(human_bytes(3 << 30), "3G");
        assert_eq!(human_bytes(u64::MAX), "16383P");
        assert_eq!(human_uptime(0), "0s");
        assert_eq!(human_uptime(5_999), "5s");
        assert_eq!(human_uptime(192_000), "3m12s");
        assert_eq!(human_uptime((2 * 3600 + 5 * 60 + 9) * 1000), "2h5m");
        assert_eq!(human_uptime((3 * 86_400 + 4 * 3600) * 1000), "3d4h");
    }

    fn units() -> Vec<UnitStatus> {
        let mut db = status("db", State::Backoff, 0);
        db.memory_current = None;
        db.memory_max = None;
        let mut cache = status(
            "a-long.unit_name-32-bytes-long.x",
            State::Starting,
            4_194_303,
        );
        cache.memory_current = Some(500);
        cache.memory_max = Some(Limit::Max);
        cache.uptime_ms = 3_000;
        cache.restarts = 12_345;
        vec![status("web", State::Running, 123), db, cache]
    }

    #[test]
    fn status_table_layout() {
        let t = status_table(&units());
        let expect = "\
NAME                             STATE    PID     RESTARTS MEMORY   UPTIME
web                              running  123     1        1.2M/8M  3m12s
db                               backoff  -       1        -        -
a-long.unit_name-32-bytes-long.x starting 4194303 12345    500B/max 3s
";
        assert_eq!(t, expect);
        assert!(t.lines().all(|l| l.len() <= 80));
        let fields: Vec<&str> = t.lines().nth(2).unwrap().split_whitespace().collect();
        assert_eq!(fields, ["db", "backoff", "-", "1", "-", "-"]);
    }

    #[test]
    fn widest_possible_line_fits_80_columns() {
        // Linux's largest pid (pid_max is at most 2^22) and 8-digit restarts.
        let mut u = status(&"x".repeat(32), State::Stopping, 4_194_304);
        u.restarts = 99_999_999;
        u.memory_current = Some(1023 << 20);
        u.memory_max = Some(Limit::Value(1023 << 20));
        u.uptime_ms = 86_399_000;
        let t = status_table(&[u]);
        assert!(t.lines().all(|l| l.len() <= 80), "{t}");
    }

    fn detail() -> UnitDetail {
        UnitDetail {
            status: status("web", State::Backoff, 0),
            last_exit: LastExit::Signal(9),
            oom_kills: 2,
            reason: crate::proto::truncated("exited with signal, restarting in 2s"),
        }
    }

    #[test]
    fn detail_lines() {
        let t = detail_text(&detail(), b"boom\nbang");
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0].split_whitespace().next(), Some("NAME"));
        assert!(lines[1].starts_with("web "));
        assert_eq!(lines[2], "last exit: signal 9 (SIGKILL)");
        assert_eq!(lines[3], "oom kills: 2");
        assert_eq!(lines[4], "reason: exited with signal, restarting in 2s");
        assert_eq!(&lines[5..], ["log:", "boom", "bang"]);
        let mut d = detail();
        d.last_exit = LastExit::OomKill;
        d.reason.clear();
        let t = detail_text(&d, b"");
        assert!(t.contains("last exit: oom-kill\n"));
        assert!(t.ends_with("reason: -\n"));
        d.last_exit = LastExit::Code(3);
        assert!(detail_text(&d, b"").contains("last exit: code 3\n"));
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_str("plain"), "\"plain\"");
        assert_eq!(json_str("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(json_str("l1\nl2\r\t"), r#""l1\nl2\r\t""#);
        assert_eq!(json_str("\u{1}\u{1f}\u{7f}"), r#""\u0001\u001f\u007f""#);
        assert_eq!(json_str("\u{8}\u{c}"), r#""\b\f""#);
        assert_eq!(json_str("é✓"), "\"é✓\"");
        assert_eq!(json_str("\u{2028}"), r#""\u2028""#);
    }

    #[test]
    fn json_status_shapes() {
        let j = json_units(&units()[..2]);
        assert_eq!(
            j,
            "[{\"name\":\"web\",\"state\":\"running\",\"pid\":123,\"restarts\":1,\
             \"memory_current\":1300000,\"memory_max\":8388608,\"uptime_ms\":192000},\
             {\"name\":\"db\",\"state\":\"backoff\",\"pid\":null,\"restarts\":1,\
             \"memory_current\":null,\"memory_max\":null,\"uptime_ms\":null}]\n"
        );
        assert_eq!(json_units(&[]), "[]\n");
        let j = json_detail(&detail(), b"say \"hi\"\n\xff");
        assert!(j.contains(",\"last_exit\":{\"signal\":9,\"name\":\"SIGKILL\"},"));
        assert!(j.contains("\"oom_kills\":2,"));
        assert!(
            j.ends_with("\"log\":\"say \\\"hi\\\"\\n\u{fffd}\"}\n"),
            "{j}"
        );
        let mut max = units()[2].clone();
        max.pid = 1;
        assert!(json_units(&[max]).contains("\"memory_max\":\"max\""));
    }

    #[test]
    fn status_over_the_socket() {
        let mut fake = Fake::with(&["web", "db"]);
        let (code, out, err) = drive("ctl-e2e-status", &mut fake, &["status"], |_, _| {});
        assert_eq!((code, err.as_str()), (0, ""));
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("NAME "));
        assert!(lines[2].starts_with("db "));
        let (code, out, _) = drive("ctl-e2e-json", &mut fake, &["status", "--json"], |_, _| {});
        assert_eq!(code, 0);
        assert!(out.starts_with("[{\"name\":\"web\""));
    }

    #[test]
    fn status_of_one_unit_over_the_socket() {
        let mut fake = Fake::with(&["web"]);
        fake.unit("web").log.push(b"hello\n");
        let (code, out, _) = drive("ctl-e2e-one", &mut fake, &["status", "web"], |_, _| {});
        assert_eq!(code, 0);
        assert!(out.contains("\nlast exit: code 3\n"));
        assert!(out.ends_with("log:\nhello\n"));
        let (code, out, err) = drive("ctl-e2e-none", &mut fake, &["status", "nope"], |_, _| {});
        assert_eq!(code, 1);
        assert!(out.is_empty());
        assert_eq!(err, "initctl: no unit nope\n");
    }

    #[test]
    fn start_waits_for_the_unit() {
        let mut fake = Fake::with(&["web"]);
        let (code, out, err) = drive("ctl-e2e-start", &mut fake, &["start", "web"], |f, i| {
            if i == 20 {
                f.settle = Some(Ok(()));
            }
        });
        assert_eq!(
            (code, out.as_str(), err.as_str()),
            (0, "web: started\n", "")
        );
        assert_eq!(fake.actions, ["start web"]);
        fake.settle = Some(Err(CtlError::new(ErrCode::Failed, "exited with code 1")));
        let (code, out, err) = drive("ctl-e2e-stop", &mut fake, &["restart", "web"], |_, _| {});
        assert_eq!(code, 1);
        assert!(out.is_empty());
        assert_eq!(err, "initctl: web: exited with code 1\n");
    }

    #[test]
    fn shutdown_cat_and_reload_over_the_socket() {
        let mut fake = Fake::with(&["web"]);
        let (code, out, _) = drive("ctl-e2e-off", &mut fake, &["poweroff"], |_, _| {});
        assert_eq!((code, out.as_str()), (0, ""));
        assert_eq!(fake.shutdowns, [ShutdownKind::Poweroff]);
        let (code, out, _) = drive("ctl-e2e-cat", &mut fake, &["cat", "web"], |_, _| {});
        assert_eq!((code, out.as_str()), (0, "exec = /bin/web\n"));
        fake.reload_lines = vec!["web.unit:2: unknown key 'exce' (did you mean 'exec'?)".into()];
        fake.reload_invalid = true;
        let (code, out, err) = drive("ctl-e2e-reload", &mut fake, &["reload"], |_, _| {});
        assert_eq!(code, 1);
        assert_eq!(
            out,
            "web.unit:2: unknown key 'exce' (did you mean 'exec'?)\n"
        );
        assert_eq!(err, "initctl: 1 unit file invalid\n");
        fake.reload_invalid = false;
        fake.reload_lines.clear();
        let (code, _, _) = drive("ctl-e2e-reload2", &mut fake, &["reload"], |_, _| {});
        assert_eq!(code, 0);
    }

    #[test]
    fn log_and_follow_over_the_socket() {
        let mut fake = Fake::with(&["web"]);
        fake.unit("web").log.push(b"one\n");
        let (code, out, _) = drive("ctl-e2e-log", &mut fake, &["log", "web"], |_, _| {});
        assert_eq!((code, out.as_str()), (0, "one\n"));
        let (code, out, err) = drive(
            "ctl-e2e-follow",
            &mut fake,
            &["log", "web", "-f"],
            |f, i| match i {
                20 => f.unit("web").log.push(b"two\n"),
                40 => f.unit("web").log.push(b"three\n"),
                60 => f.units.clear(),
                _ => {}
            },
        );
        assert_eq!(out, "one\ntwo\nthree\n");
        // The follow ends when the unit goes away.
        assert_eq!(code, 1);
        assert_eq!(err, "initctl: no unit web\n");
    }

    /// Valid when it holds an `exec` line and no `bogus`.
    fn fake_check(p: &Path, w: &mut dyn Write) -> bool {
        let t = std::fs::read_to_string(p).unwrap();
        let ok = t.contains("exec = /") && !t.contains("bogus");
        if !ok {
            let _ = writeln!(w, "{}:1: bad", p.display());
        }
        ok
    }

    fn edit_env<'a>(dir: &'a Path, editor: &'a str) -> EditEnv<'a> {
        EditEnv {
            dir,
            tmp: dir,
            editor,
            check: &fake_check,
        }
    }

    #[test]
    fn edit_installs_a_valid_change() {
        let d = TempDir::new("ctl-edit-ok");
        let unit = d.0.join("web.unit");
        std::fs::write(&unit, "exec = /bin/old\n").unwrap();
        let env = edit_env(&d.0, "sed -i s/old/new/");
        let mut err = Vec::new();
        let r = edit_unit("web", &env, &mut &b""[..], &mut err);
        assert_eq!(r, Ok(Edited::Installed));
        assert_eq!(std::fs::read_to_string(&unit).unwrap(), "exec = /bin/new\n");
        // Only the unit file is left: no staging file, no working copy.
        let left: Vec<_> = std::fs::read_dir(&d.0).unwrap().collect();
        assert_eq!(left.len(), 1);
    }

    #[test]
    fn edit_without_change_installs_nothing() {
        let d = TempDir::new("ctl-edit-same");
        let env = edit_env(&d.0, "true");
        let r = edit_unit("fresh", &env, &mut &b""[..], &mut Vec::new());
        assert_eq!(r, Ok(Edited::Unchanged));
        assert!(!d.0.join("fresh.unit").exists());
    }

    #[test]
    fn edit_reopens_an_invalid_copy_until_valid_or_declined() {
        let d = TempDir::new("ctl-edit-again");
        let unit = d.0.join("db.unit");
        std::fs::write(&unit, "exec = /bin/db\n").unwrap();
        // First run breaks the file, the second fixes it.
        let script = d.0.join("ed.sh");
        std::fs::write(
            &script,
            "c=\"$1.count\"; n=$(cat \"$c\" 2>/dev/null || echo 0); \
             echo $((n+1)) > \"$c\"; \
             if [ \"$n\" = 0 ]; then echo bogus > \"$1\"; \
             else echo 'exec = /bin/db2' > \"$1\"; fi\n",
        )
        .unwrap();
        let editor = format!("sh {}", script.display());
        let env = edit_env(&d.0, &editor);
        let mut err = Vec::new();
        let r = edit_unit("db", &env, &mut &b"\n"[..], &mut err);
        assert_eq!(r, Ok(Edited::Installed));
        assert_eq!(std::fs::read_to_string(&unit).unwrap(), "exec = /bin/db2\n");
        let err = String::from_utf8(err).unwrap();
        assert!(err.contains("db.unit:1: bad"), "{err}");
        assert!(err.contains("db.unit is invalid. Edit again? [Y/n]"));

        // Declined: the installed file is left as it was.
        let env = edit_env(&d.0, "sh -c 'echo bogus > \"$0\"'");
        let r = edit_unit("db", &env, &mut &b"n\n"[..], &mut Vec::new());
        assert_eq!(r, Ok(Edited::Aborted));
        assert_eq!(std::fs::read_to_string(&unit).unwrap(), "exec = /bin/db2\n");
        // End of input counts as no.
        let r = edit_unit("db", &env, &mut &b""[..], &mut Vec::new());
        assert_eq!(r, Ok(Edited::Aborted));
    }

    #[test]
    fn failing_editor_aborts() {
        let d = TempDir::new("ctl-edit-fail");
        let env = edit_env(&d.0, "false");
        let r = edit_unit("x", &env, &mut &b""[..], &mut Vec::new());
        assert!(r.unwrap_err().contains("editor 'false' failed"));
    }
}
