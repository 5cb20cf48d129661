//! `initctl reexec [PATH]`: PID 1 replaces itself with PATH in place
//! (docs/initctl.md, "reexec"). PATH is first run as a normal process and
//! must answer the handshake (`wren::handover`) within `HANDSHAKE_MS`, or
//! it is refused and nothing changes. Then the state goes into a memfd
//! (`handover`: units, PIDs, phases, restart counts and backoff, output
//! rings, the readiness and exit-report fds, which are kept open across
//! the exec) and PATH is exec'd as PID 1 with `--handover FD`. The new
//! PID 1 (`resume`) takes every unit over as it was; when it cannot read
//! the state (another format), it adopts what runs from the text layer and
//! the cgroup tree instead. No unit is restarted either way.

use super::{now, why, Edge, Pid1};
use crate::control::ClientId;
use crate::handover::{self, wire, Header, Hint, RawFd, UnitState, HANDOVER_ARG};
use crate::kmsg;
use crate::log_ring::LogRing;
use crate::proto::{CtlError, ErrCode, InitInfo, Origin, Reply};
use crate::supervisor::Retired;
use crate::sys::alloc::reserve::optional;
use crate::sys::handover::take_fd;
use rustix::fd::{AsRawFd, OwnedFd};
use rustix::io::{Errno, FdFlags};

mod adopt;
mod candidate;
mod refusal;
mod take_over;
pub use candidate::print_handshake;
use candidate::{exec_self, handshake, refused_files};
use take_over::{decode, slot_limits, Undecoded};

/// How long a candidate binary has to print its handshake line.
const HANDSHAKE_MS: u64 = 500;
/// Where `initctl reexec` without PATH goes.
pub const DEFAULT_PATH: &str = "/sbin/init";

/// This build's state format. `WREN_STATE_FORMAT_BUMP=N` in the
/// environment adds N: a test hook that makes a build that cannot read
/// the state of the one before (docs/initctl.md, "reexec").
pub fn state_format() -> u32 {
    // Read in place (`sys::exec::env_var`): std's `var` not linked.
    let bump = crate::sys::exec::env_var(c"WREN_STATE_FORMAT_BUMP")
        .and_then(|v| v.to_str().ok())
        .and_then(wren_core::num::dec::<u32>)
        .unwrap_or(0);
    handover::STATE_FORMAT.saturating_add(bump)
}

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The memfd the previous PID 1 named on the command line, if any.
pub fn handover_fd() -> Option<OwnedFd> {
    let mut args = crate::sys::entry::args().skip(1);
    while let Some(a) = args.next() {
        if a == HANDOVER_ARG {
            let n: RawFd = wren_core::num::dec_signed(args.next()?.to_str()?)?;
            return crate::sys::handover::take_fd(n);
        }
    }
    None
}

/// A refusal as `initctl` shows it: the cause cut if it must be, so that
/// the words saying nothing changed always end the message.
fn keeps_running(code: ErrCode, cause: core::fmt::Arguments<'_>) -> CtlError {
    CtlError {
        code,
        message: crate::proto::formatted_then(cause, "; init keeps running"),
    }
}

impl Pid1 {
    pub(super) fn reexec(&mut self, id: ClientId, path: &str) {
        let path = if path.is_empty() { DEFAULT_PATH } else { path };
        // Removed units' cgroups are tried at wake-ups only: after an idle
        // stretch, one long empty (or past its 10 s) still counted, and
        // refused the first re-exec (`in_between`).
        if self.removing {
            self.forget_cgroups();
        }
        let refused = match self.refusal() {
            Some(e) => Err(e),
            None => {
                // The handshake may take a second or more (a candidate on
                // a stalled disk): fed through, so a short timeout does
                // not reset the board for a re-exec that is refused.
                let feed = || {
                    if let Some(w) = self.watchdog.as_ref() {
                        w.feed();
                    }
                };
                feed();
                handshake(path, None, &feed).and_then(|(format, v)| {
                    let runs = |n: &str| {
                        let mut slots = self.sup.slots();
                        slots.any(|s| s.rt.pid != 0 && s.def.name.as_str() == n)
                    };
                    let other = format != state_format();
                    match self.unadoptable(format) {
                        Some(e) => Err(e),
                        // Its own parser on the files it would adopt from.
                        None => match other.then(|| refused_files(path, &runs, &feed)) {
                            Some(Some(e)) => Err(e),
                            _ => Ok((format, v)),
                        },
                    }
                })
            }
        };
        let t = now();
        let (format, version) = match refused {
            Ok(v) => v,
            Err(e) => {
                crate::error!("reexec {path} refused: {e}");
                kmsg::console_line(format_args!("[FAILED] reexec {path} refused: {e}"));
                let reply = Reply::Error(keeps_running(
                    ErrCode::Refused,
                    format_args!("{path} refused: {e}"),
                ));
                if let Some(srv) = self.control.as_mut() {
                    srv.answer(id, &reply, t);
                }
                return;
            }
        };
        // The watchdog goes on open in a build of this state format, which
        // reads the line that names it; another keeps the old way (closed
        // by the exec, opened again).
        let same = format == state_format();
        let written = self.write_state(same).map_err(|(e, unit)| {
            let why = match unit {
                Some(u) => why(format_args!("cannot write the state of unit {u}: {e}")),
                None => why(format_args!("cannot write the state: {e}")),
            };
            (ErrCode::Internal, why)
        });
        // A build of this format reads the state itself: asked first
        // whether it can (`handshake`), with it on its stdin.
        let checked = written.and_then(|fd| match same {
            true => {
                let feed = || {
                    if let Some(w) = self.watchdog.as_ref() {
                        w.feed();
                    }
                };
                handshake(path, Some(rustix::fd::AsFd::as_fd(&fd)), &feed)
                    .map(|_| fd)
                    .map_err(|e| (ErrCode::Refused, why(format_args!("{path} refused: {e}"))))
            }
            false => Ok(fd),
        });
        let state = match checked {
            Ok(fd) => fd,
            Err((code, e)) => {
                // `write_state` let the followers' sockets be inherited
                // first; no exec follows, so the next units must not get
                // them.
                if let Some(srv) = self.control.as_ref() {
                    srv.unkeep_followers();
                }
                // The units' fds and the watchdog's, made inheritable
                // before the step that failed, are close-on-exec again.
                self.set_cloexec(true);
                crate::error!("reexec: {e}");
                let reply = Reply::Error(keeps_running(code, format_args!("{e}")));
                if let Some(srv) = self.control.as_mut() {
                    srv.answer(id, &reply, t);
                }
                return;
            }
        };
        if format != state_format() {
            crate::warn!(
                "reexec {path}: it reads state format {format}, this is {}: it will adopt the running units",
                state_format()
            );
        }
        kmsg::console_line(format_args!(
            "[ INFO ] re-executing {path} (wren {version}, state format {format})"
        ));
        crate::info!("re-executing {path}");
        if let Some(srv) = self.control.as_mut() {
            srv.answer(id, &Reply::Ok, t);
        }
        let _ = kmsg::console_flush();
        // Fed now, the new PID 1 has a whole timeout to take it over (or,
        // another format, to open it again). (Once feeding has stopped, a
        // re-exec is refused: `refusal`.)
        if let Some(w) = self.watchdog.as_ref() {
            w.feed();
        }
        // Closers yet to read a datagram killed first (the new PID 1 knows
        // nothing of them); the park to a closer, which the exec would
        // close (close-on-exec) in PID 1's time.
        crate::sys::passed::before_exec();
        let err = exec_self(path, &state);
        // Still here: the exec failed after the handshake worked (the file
        // changed under us?). Carry on as before.
        crate::error!("reexec {path}: execve: {err}");
        kmsg::console_line(format_args!(
            "[FAILED] reexec {path}: execve: {err}; init keeps running"
        ));
        self.set_cloexec(true);
        if let Some(srv) = self.control.as_ref() {
            srv.unkeep_followers();
        }
    }

    /// `initctl status`'s last line.
    pub(super) fn info(&self) -> InitInfo {
        InitInfo {
            path: self.exe.clone(),
            version: crate::proto::truncated(VERSION),
            state_format: state_format(),
            reexecs: self.reexecs,
            origin: self.origin,
        }
    }

    /// Every fd a unit holds, kept across the exec (or not, again), and
    /// the watchdog's (not kept: only `write_state` hands it over).
    fn set_cloexec(&self, on: bool) {
        if let Some(w) = self.watchdog.as_ref().filter(|_| on) {
            let _ = w.inherit(false);
        }
        let flags = if on {
            FdFlags::CLOEXEC
        } else {
            FdFlags::empty()
        };
        for e in self.edges.iter() {
            for fd in [&e.log_rd, &e.notify, &e.exit_report].into_iter().flatten() {
                let _ = rustix::io::fcntl_setfd(fd, flags);
            }
        }
    }

    /// The state in a memfd that survives the exec; with `watchdog`, the
    /// hardware watchdog's fd kept open across it and named in the state.
    /// The state for the new PID 1, in a memory file; an error names the
    /// unit whose part could not be written, if one.
    pub(super) fn write_state(
        &mut self,
        watchdog: bool,
    ) -> Result<OwnedFd, (Errno, Option<crate::vocab::Name>)> {
        let whole = |e| (e, None);
        let fd = rustix::fs::memfd_create(c"wren-state", rustix::fs::MemfdFlags::CLOEXEC)
            .map_err(whole)?;
        let raw = |f: &Option<OwnedFd>| f.as_ref().map_or(-1, |f| f.as_raw_fd());
        let mut text = String::new();
        // By index: `slots()` would skip free slots and shift the edges.
        // Every slot holding a process or an fd: a build that adopts
        // closes the fds it does not take, those of a stopped unit too
        // (an output pipe a process that escaped the unit keeps open),
        // which close-on-exec cleared here would otherwise leave open
        // in the new PID 1 and in every unit it starts.
        let mut hints = (0..self.sup.len()).filter_map(|i| {
            let s = self.sup.slot(i as u16)?;
            let e = self.edges.get(i)?;
            let fds = e.log_rd.is_some() || e.notify.is_some() || e.exit_report.is_some();
            (s.rt.pid != 0 || fds).then(|| Hint {
                name: s.def.name.clone(),
                pid: s.rt.pid,
                log_fd: raw(&e.log_rd),
                notify_fd: raw(&e.notify),
                report_fd: raw(&e.exit_report),
            })
        });
        let reexecs = self.reexecs.saturating_add(1);
        let followers = self
            .control
            .as_mut()
            .map(|s| s.keep_followers())
            .unwrap_or_default();
        let handed = self
            .watchdog
            .as_ref()
            .filter(|_| watchdog)
            .and_then(|w| Some((w.inherit(true)?, w.timeout_s)));
        handover::write_hints(
            &mut text,
            state_format(),
            reexecs,
            &mut hints,
            &followers,
            handed,
        )
        .map_err(|_| (Errno::NOMEM, None))?;
        let mut out: Vec<u8> = text.into_bytes();
        let header = Header {
            started_at: self.started_at,
            all_up_reported: self.all_up_reported,
            reexecs,
            units: self.sup.len() as u32,
        };
        frame(&mut out, |o| {
            wire::write_header(o, &header);
            Some(())
        })
        .map_err(whole)?;
        crate::sys::file::write_all(&fd, &out).map_err(whole)?;
        // A unit's frame at a time, its room asked for first: a failed
        // allocation (rings of 1 MiB under `vm.overcommit_memory=2`) is a
        // refused re-exec, not PID 1 aborting.
        let mut ring = Vec::new();
        for i in 0..self.sup.len() {
            let (Some(slot), Some(e)) = (self.sup.slot(i as u16), self.edges.get(i)) else {
                return Err((Errno::INVAL, None));
            };
            let of_unit = |e| (e, Some(slot.def.name.clone()));
            let len = e.log.len();
            out.clear();
            ring.clear();
            // Not from PID 1's reserve: a refused ring refuses the re-exec.
            optional(|| ring.try_reserve(len)).map_err(|_| of_unit(Errno::NOMEM))?;
            optional(|| out.try_reserve(len.saturating_add(FRAME_ROOM)))
                .map_err(|_| of_unit(Errno::NOMEM))?;
            ring.resize(len, 0);
            e.log.contents().copy_head(&mut ring);
            let st = UnitState {
                def: slot.def.clone(),
                rt: slot.rt.clone(),
                retired: slot.retired,
                log_fd: raw(&e.log_rd),
                notify_fd: raw(&e.notify),
                report_fd: raw(&e.exit_report),
                log_capacity: e.log.capacity() as u32,
                log_pos: e.log.write_pos(),
                log: &ring,
                oom_kills_at_spawn: e.oom_kills_at_spawn,
                oom_kills: e.oom_kills,
                pressure_events: e.pressure_events,
                shed: e.shed,
                last_error: e.last_error(),
                last_good: e.last_good().cloned(),
                verdict: match e.verdict {
                    None => 0,
                    Some(super::gate::Verdict::Pending) => 1,
                    Some(super::gate::Verdict::Good) => 2,
                    Some(super::gate::Verdict::Rejected) => 3,
                },
                rejected: e.rejected(),
            };
            frame(&mut out, |o| wire::write_unit(o, &st)).map_err(of_unit)?;
            crate::sys::file::write_all(&fd, &out).map_err(of_unit)?;
        }
        // The new PID 1 gets it without close-on-exec, and so do the
        // units' fds.
        rustix::io::fcntl_setfd(&fd, FdFlags::empty()).map_err(whole)?;
        self.set_cloexec(false);
        Ok(fd)
    }
}

/// A frame of `out`: its length (u32, little-endian), then the bytes
/// `body` writes, straight into `out` (a scratch buffer for each frame,
/// zeroed at 64 KiB, was 64 MB of writes at 1,000 units). `body` fails
/// for a unit definition that would not come back (handover's
/// `def_text`); on an error the caller gives the re-exec up.
fn frame(out: &mut Vec<u8>, body: impl FnOnce(&mut Vec<u8>) -> Option<()>) -> Result<(), Errno> {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    body(out).ok_or(Errno::INVAL)?;
    let body = at.saturating_add(4);
    let len = u32::try_from(out.len().saturating_sub(body)).map_err(|_| Errno::NOMEM)?;
    out.get_mut(at..body)
        .ok_or(Errno::INVAL)?
        .copy_from_slice(&len.to_le_bytes());
    Ok(())
}

/// Room a unit's frame takes beside its ring: its definition (a unit
/// file is at most 8 KiB, `UNIT_FILE_MAX`; its last good one too) and its
/// run-time record.
const FRAME_ROOM: usize = 3 * crate::vocab::UNIT_FILE_MAX;

#[cfg(test)]
mod tests;
