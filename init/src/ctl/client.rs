//! Talking to PID 1: one connection per request, frames in and out, every
//! wait bounded by a timeout (except `log -f`, which waits for ever), and
//! each reply turned into output and an exit status.

use super::args::Command;
use super::{fail, json, output, FAIL, OK};
use crate::proto::{CtlError, ErrCode, InitInfo, Reply, Request, UnitStatus};
use crate::sys::clock::Instant;
use std::path::Path;
use std::time::Duration;

use super::conn::{ClientError, Conn};

/// How long start/stop/restart wait for the unit to settle: above the
/// default `stop_timeout` (5s) and restart delays with a wide margin, as
/// systemd's default job timeout. The action goes on after a timeout.
pub const WAIT_TIMEOUT: Duration = Duration::from_secs(90);
/// How long any other request waits for its reply.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// `reload` reads every unit file before answering.
pub const RELOAD_TIMEOUT: Duration = Duration::from_secs(30);
/// Waiting for a reload's verdict: past the default `start_timeout` (60s)
/// plus the old run's `stop_timeout`, with a margin.
pub const VERDICT_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the new PID 1 has to answer after a re-exec.
pub const REEXEC_TIMEOUT: Duration = Duration::from_secs(10);

fn show_error(e: &CtlError, name: Option<&str>, err: &mut dyn crate::ctl::out::Out) -> u8 {
    match name {
        Some(n) if e.code != ErrCode::NoSuchUnit || e.message.is_empty() => {
            let _ = writeln!(err, "initctl: {n}: {e}");
            FAIL
        }
        _ => fail(err, e),
    }
}

/// Output built in full before any of it is written.
fn show_text(
    text: Result<Vec<u8>, String>,
    out: &mut dyn crate::ctl::out::Out,
    err: &mut dyn crate::ctl::out::Out,
) -> u8 {
    match text {
        Ok(t) => {
            let _ = out.write_all(&t);
            OK
        }
        Err(msg) => fail(err, &msg),
    }
}

/// A reload's report (its lines, then its result), as both the reload
/// and its verdict answer.
fn show_report(
    r: Reply<'_>,
    out: &mut dyn crate::ctl::out::Out,
    err: &mut dyn crate::ctl::out::Out,
) -> u8 {
    match r {
        Reply::Reload { result, report } => {
            // Lines that quote unit files (a rejected start's program):
            // a control character in one is shown, not sent.
            for line in report.lines() {
                let _ = out.write_all(&super::visible::render(line.as_bytes()));
                let _ = out.write_all(b"\n");
            }
            match result {
                Ok(()) => OK,
                Err(e) => show_error(&e, None, err),
            }
        }
        Reply::Error(e) => show_error(&e, None, err),
        _ => unexpected(err),
    }
}

fn unexpected(err: &mut dyn crate::ctl::out::Out) -> u8 {
    let _ = writeln!(err, "initctl: unexpected reply from init");
    FAIL
}

/// Which wren runs as PID 1.
pub(super) fn info(socket: &Path) -> Result<InitInfo, String> {
    info_within(socket, REPLY_TIMEOUT)
}

fn info_within(socket: &Path, timeout: Duration) -> Result<InitInfo, String> {
    let mut conn = Conn::open_within(socket, timeout)?;
    let fail = |e: ClientError| e.to_string();
    conn.send(&Request::Info)?;
    conn.reply(timeout, |r| match r {
        Reply::Info(i) => Ok(i),
        Reply::Error(e) => Err(e.to_string()),
        _ => Err("unexpected reply from init".to_string()),
    })
    .map_err(fail)?
}

/// `reexec [PATH]`: PID 1 checks PATH and answers before it execs it;
/// then the new PID 1 must answer (`came_back`).
fn reexec(
    path: &str,
    socket: &Path,
    out: &mut dyn crate::ctl::out::Out,
    err: &mut dyn crate::ctl::out::Out,
) -> Result<u8, String> {
    let before = info(socket)?;
    let mut conn = Conn::open(socket)?;
    let fail = |e: ClientError| e.to_string();
    conn.send(&Request::Reexec { path })?;
    let code = conn
        .reply(REPLY_TIMEOUT, |r| match r {
            Reply::Ok => OK,
            Reply::Error(e) => show_error(&e, None, err),
            _ => unexpected(err),
        })
        .map_err(fail)?;
    if code != OK {
        return Ok(code);
    }
    drop(conn);
    let deadline = Instant::now() + REEXEC_TIMEOUT;
    loop {
        // Short tries: a connection made just before the exec may sit in
        // the old listener's queue, which a unit's PID-namespace reaper
        // (a fork of PID 1) can keep open; the new PID 1 listens anew.
        match info_within(socket, Duration::from_millis(500)) {
            Ok(now) if came_back(&before, &now) => {
                let _ = writeln!(out, "{}", output::init_line(&now));
                return Ok(OK);
            }
            Ok(_) if Instant::now() >= deadline => {
                return Err("init answered the re-exec but did not come back as a new one".into())
            }
            Err(e) if Instant::now() >= deadline => {
                return Err(format!("no answer from init after the re-exec: {e}"))
            }
            _ => crate::sys::clock::sleep(Duration::from_millis(50)),
        }
    }
}

/// The PID 1 answering now is not the one that answered `before`: it
/// counts one more re-exec, or (one that could not read the state handed
/// over, which holds the count) it began otherwise. The old one answers
/// as before until its exec.
pub(super) fn came_back(before: &crate::proto::InitInfo, now: &crate::proto::InitInfo) -> bool {
    now.reexecs != before.reexecs || now.origin != before.origin
}

/// The whole status table, one page per connection (`Reply::Status`'s
/// `next`), the first asked on `conn`. `Ok(Err(Some(e)))`: PID 1 answered
/// an error; `Ok(Err(None))`: it answered something else.
fn status_pages(
    mut conn: Conn,
    socket: &Path,
) -> Result<Result<Vec<UnitStatus>, Option<CtlError>>, String> {
    let fail = |e: ClientError| e.to_string();
    let mut all = Vec::new();
    let mut from = 0u16;
    loop {
        conn.send(&Request::Status { name: None, from })?;
        let page = conn
            .reply(REPLY_TIMEOUT, |r| match r {
                Reply::Status { units, next } => {
                    all.extend(units);
                    Ok(next)
                }
                Reply::Error(e) => Err(Some(e)),
                _ => Err(None),
            })
            .map_err(fail)?;
        match page {
            // A next page that does not move on would loop for ever.
            Ok(Some(next)) if next > from => from = next,
            Ok(_) => return Ok(Ok(all)),
            Err(e) => return Ok(Err(e)),
        }
        conn = Conn::open(socket)?;
    }
}

/// The status table as data (for `metrics` and `top`).
pub(super) fn status_list(socket: &Path) -> Result<Vec<UnitStatus>, String> {
    match status_pages(Conn::open(socket)?, socket)? {
        Ok(units) => Ok(units),
        Err(Some(e)) => Err(e.to_string()),
        Err(None) => Err("unexpected reply from init".to_string()),
    }
}

/// Commands that need PID 1. `Err` is a message for stderr (exit 1).
pub(super) fn talk(
    cmd: &Command,
    socket: &Path,
    out: &mut dyn crate::ctl::out::Out,
    err: &mut dyn crate::ctl::out::Out,
) -> Result<u8, String> {
    let mut conn = Conn::open(socket)?;
    let fail = |e: ClientError| e.to_string();
    match cmd {
        Command::Status { name: None, json } => {
            let code = match status_pages(conn, socket)? {
                Ok(units) => {
                    let text = if *json {
                        json::units(&units)
                    } else {
                        Ok(output::status_table(&units).into_bytes())
                    };
                    show_text(text, out, err)
                }
                Err(Some(e)) => show_error(&e, None, err),
                Err(None) => unexpected(err),
            };
            // Which wren is PID 1, under the table.
            if code == OK && !*json {
                if let Ok(i) = info(socket) {
                    let _ = writeln!(out, "{}", output::init_line(&i));
                }
            }
            Ok(code)
        }
        Command::Status {
            name: Some(name),
            json,
        } => {
            conn.send(&Request::Status {
                name: Some(name),
                from: 0,
            })?;
            conn.reply(REPLY_TIMEOUT, |r| match r {
                Reply::Detail { detail, log } => {
                    let text = if *json {
                        json::detail(&detail, log)
                    } else {
                        Ok(output::detail_text(&detail, log))
                    };
                    show_text(text, out, err)
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
            conn.send(&req)?;
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
            conn.send(&Request::Shutdown(*kind))?;
            conn.reply(REPLY_TIMEOUT, |r| match r {
                Reply::Ok => OK,
                Reply::Error(e) => show_error(&e, None, err),
                _ => unexpected(err),
            })
            .map_err(fail)
        }
        Command::Cat(name) => {
            conn.send(&Request::Cat { name })?;
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
            conn.send(&Request::Reload)?;
            let mut reloaded = false;
            let applied = conn
                .reply(RELOAD_TIMEOUT, |r| {
                    reloaded = match &r {
                        Reply::Reload { result: Err(e), .. } => e.code != ErrCode::Refused,
                        Reply::Reload { .. } => true,
                        _ => false,
                    };
                    show_report(r, out, err)
                })
                .map_err(fail)?;
            // Refused, nothing changed, or not a reload's answer at all (a
            // looker denied, too many clients, another protocol): there is
            // nothing to judge, and a verdict asked for would be denied
            // again, or wait on someone else's reload and print its lines.
            if !reloaded {
                return Ok(applied);
            }
            // Then the verdict on what it changed: ready, or put back.
            let mut conn = Conn::open(socket)?;
            conn.send(&Request::Verdict)?;
            let judged = match conn.reply(VERDICT_TIMEOUT, |r| show_report(r, out, err)) {
                Ok(code) => code,
                Err(ClientError::Timeout) => {
                    return Err(format!(
                        "no verdict after {}s; see 'initctl status'",
                        VERDICT_TIMEOUT.as_secs()
                    ))
                }
                Err(e) => return Err(e.to_string()),
            };
            Ok(if applied == OK { judged } else { applied })
        }
        Command::Log { name, follow } => {
            conn.send(&Request::Log {
                name,
                follow: *follow,
            })?;
            // Without -f the whole ring comes at once; with it, chunks come
            // as the unit writes, until init closes (unit removed).
            let deadline = (!follow).then(|| Instant::now() + REPLY_TIMEOUT);
            // A unit's control sequences are shown, not sent to the
            // terminal (`visible`).
            let mut visible = super::visible::Visible::default();
            let mut shown = Vec::new();
            loop {
                let step = conn.recv(deadline, |r| match r {
                    Reply::Log { missed, data } => {
                        if missed > 0 {
                            let _ = out.flush();
                            let _ = writeln!(err, "initctl: {missed} bytes of output lost");
                        }
                        shown.clear();
                        visible.feed(data, &mut shown);
                        // A reader that went away (`| head`) ends the follow.
                        match out.write_all(&shown).and_then(|()| out.flush()) {
                            Ok(()) => None,
                            Err(_) => Some(OK),
                        }
                    }
                    Reply::Error(e) => Some(show_error(&e, Some(name), err)),
                    _ => Some(unexpected(err)),
                });
                if !matches!(step, Ok(Some(None))) {
                    shown.clear();
                    visible.finish(&mut shown);
                    let _ = out.write_all(&shown).and_then(|()| out.flush());
                }
                match step {
                    Ok(Some(None)) => {}
                    Ok(Some(Some(code))) => return Ok(code),
                    // A follow has no clean end: init closing it cut it
                    // (its reader fell behind, or it re-executed then).
                    Ok(None) if *follow => {
                        let _ = writeln!(err, "initctl: {name}: init ended the follow");
                        return Ok(FAIL);
                    }
                    Ok(None) | Err(ClientError::OutputGone) => return Ok(OK),
                    Err(e) => return Err(e.to_string()),
                }
            }
        }
        Command::Reexec(path) => {
            drop(conn);
            reexec(path, socket, out, err)
        }
        Command::Help
        | Command::Check { .. }
        | Command::Edit(_)
        | Command::Metrics
        | Command::Top { .. } => Ok(OK),
    }
}
