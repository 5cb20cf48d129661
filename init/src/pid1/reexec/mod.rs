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
pub use candidate::print_handshake;
use candidate::{exec_self, handshake, refused_files};

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

    /// The new PID 1: take over from the state in `fd`, or adopt.
    pub(super) fn resume(&mut self, fd: OwnedFd, opts: &crate::boot::cmdline::Options) {
        self.units_dir = heapless::String::try_from(opts.units_dir()).unwrap_or_default();
        let mut bytes = Vec::new();
        let read = rustix::fs::seek(&fd, rustix::fs::SeekFrom::Start(0))
            .map_err(std::io::Error::from)
            .and_then(|_| crate::sys::file::read_to_end(std::fs::File::from(fd), &mut bytes));
        if let Err(e) = read {
            crate::error!("handover: cannot read the state: {e}");
        }
        let Some(parsed) = handover::parse_hints(&bytes) else {
            crate::error!("handover: not a wren state; adopting from the cgroup tree");
            self.close_inherited(opts);
            self.adopt(opts, &[], 0);
            return;
        };
        // Followers go on in either case (after an adoption, from the
        // start of the new, empty ring).
        if let Some((fd, secs)) = parsed.watchdog {
            self.take_watchdog(take_fd(fd), secs);
        }
        let same = parsed.format == state_format();
        for (fd, name, pos) in parsed.followers.iter() {
            if let Some(fd) = take_fd(*fd) {
                self.followers
                    .push((fd, name.clone(), if same { *pos } else { 0 }));
            }
        }
        if parsed.format != state_format() {
            crate::warn!(
                "handover: state format {}, this build reads {}; adopting the running units",
                parsed.format,
                state_format()
            );
            self.reexecs = parsed.reexecs;
            self.adopt(opts, &parsed.hints, parsed.format);
            return;
        }
        match decode(parsed.rest) {
            Ok((header, units)) => self.take_over(header, units),
            Err(_) => {
                crate::error!("handover: the state is damaged; adopting the running units");
                self.reexecs = parsed.reexecs;
                self.adopt(opts, &parsed.hints, parsed.format);
            }
        }
    }

    fn take_over(&mut self, header: Header, units: Vec<UnitState<'_>>) {
        self.started_at = header.started_at;
        self.all_up_reported = header.all_up_reported;
        self.reexecs = header.reexecs;
        for st in units {
            let mut edge = Edge::new(&st.def);
            // Sized by the definition (the parser's bound), not by the
            // state's own word for it: a damaged state asking for 4 GiB
            // would abort PID 1 at the allocation.
            let capacity = st.def.log_size.min(crate::vocab::LOG_SIZE_MAX);
            edge.log = LogRing::restored(
                capacity as usize,
                st.log_pos,
                st.log,
                crate::sys::alloc::zeroed,
            );
            edge.log_rd = take_fd(st.log_fd);
            edge.notify = take_fd(st.notify_fd);
            edge.exit_report = take_fd(st.report_fd);
            edge.oom_kills_at_spawn = st.oom_kills_at_spawn;
            edge.oom_kills = st.oom_kills;
            edge.pressure_events = st.pressure_events;
            edge.shed = st.shed;
            edge.set_last_error(crate::proto::truncated(st.last_error));
            if let Some(good) = st.last_good {
                edge.rare().last_good = Some(Box::new(good));
            }
            edge.verdict = match st.verdict {
                1 => Some(super::gate::Verdict::Pending),
                2 => Some(super::gate::Verdict::Good),
                3 => Some(super::gate::Verdict::Rejected),
                _ => None,
            };
            if let Some(r) = st.rejected {
                let r: super::gate::Rejection = crate::proto::truncated(r);
                edge.rare().rejected = Some(r.as_str().into());
            }
            let running = st.rt.pid != 0;
            let cgroup = self.cgroup_exists(&st.def.name);
            let name = st.def.name.clone();
            let restored = self.sup.restore(st.def, st.rt, st.retired);
            if restored.is_err() {
                // Its fds close with its edge, here; its processes, if it
                // runs, go on unsupervised (a build with a smaller table,
                // rolled back to).
                let left = if running {
                    "; left running unsupervised"
                } else {
                    ""
                };
                crate::error!("handover: {name}: no room in the table{left}");
                kmsg::console_line(format_args!(
                    "[FAILED] {name}: not taken over (no room in the table){left}"
                ));
            }
            if let Ok(u) = restored {
                // A running unit's limits are written; a stopped unit's
                // are written again at its next start.
                let gen = slot_limits(&self.sup, usize::from(u));
                let gen = if running {
                    gen
                } else {
                    super::stale_limits(gen)
                };
                edge.cgroup = cgroup.then_some(gen);
                self.edges.push(edge);
            }
        }
        if let Err((u, _)) = self.sup.link() {
            crate::error!("handover: unit {u}: unresolved dependency");
        }
        self.free_slots_let_go_of_live_cgroups();
        // A reload's removals go on: a unit still stopping is let go once
        // it has stopped, and the cgroups of units gone (the last PID 1's
        // `orphans`, not handed over) are tried once more, as after the
        // reload (`forget_cgroups`).
        self.removing = true;
        let n = self.sup.slots().filter(|s| s.rt.pid != 0).count() as u32;
        self.origin = Origin::HandedOver { units: n };
        kmsg::console_line(format_args!(
            "[  OK  ] wren {VERSION} took over as PID 1 ({n} running units handed over)"
        ));
        crate::info!("took over as PID 1: {n} running units handed over");
    }

    /// A free slot (a unit a reload removed) keeps the name it had: once a
    /// later reload has configured that name again in another slot, the
    /// `units/NAME` that `cgroup_exists` found is the live unit's, not
    /// what the removed one's stop left; claimed, the next reload ended it
    /// as leftovers (`cgroup.kill` of the running unit).
    fn free_slots_let_go_of_live_cgroups(&mut self) {
        for (i, e) in self.edges.iter_mut().enumerate() {
            // Free slots with a cgroup only: the lookups by name walk the
            // table, which every slot asking for would make quadratic.
            let free = u16::try_from(i)
                .ok()
                .and_then(|u| self.sup.slot(u))
                .filter(|s| s.retired == Retired::Free && e.cgroup.is_some());
            let Some(s) = free else { continue };
            let name = s.def.name.as_str();
            if self.sup.index(name).is_some()
                || self.sup.retired_index(name, Retired::Leaving).is_some()
            {
                e.cgroup = None;
            }
        }
    }

    /// `units/NAME` is there (a running unit's, handed over or adopted),
    /// opened through the cgroup layer like every start's.
    fn cgroup_exists(&self, name: &str) -> bool {
        self.cg.as_ref().is_some_and(|cg| cg.unit_dir(name).is_ok())
    }

    /// After the loop is set up: watch the units' fds again, and serve
    /// the handed-over followers.
    pub(super) fn rewatch(&mut self) {
        let followers = core::mem::take(&mut self.followers);
        if let Some(srv) = self.control.as_mut() {
            for (fd, name, pos) in followers {
                if !srv.adopt_follower(fd, name.clone(), pos) {
                    crate::warn!("log -f follower of {name} not kept: no free client slot");
                }
            }
        }
        let Some(ep) = self.epoll.as_ref() else {
            return;
        };
        for (i, e) in self.edges.iter_mut().enumerate() {
            let u = i as u64;
            e.log_rd = e
                .log_rd
                .take()
                .and_then(|fd| super::event_loop::watch(ep, fd, super::event_loop::TOKEN_LOG + u));
            e.notify = e.notify.take().and_then(|fd| {
                super::event_loop::watch(ep, fd, super::event_loop::TOKEN_NOTIFY + u)
            });
            e.exit_report = e.exit_report.take().and_then(|fd| {
                super::event_loop::watch(ep, fd, super::event_loop::TOKEN_REPORT + u)
            });
        }
        for i in 0..self.sup.len() {
            if self.sup.slot(i as u16).is_some_and(|s| s.rt.pid != 0) {
                self.watch_pressure(i as u16);
            }
        }
    }
}

/// The slot's `limits_gen`: its limits are in the adopted cgroup.
fn slot_limits(sup: &crate::supervisor::Supervisor, i: usize) -> u32 {
    sup.slot(i as u16).map(|s| s.limits_gen).unwrap_or_default()
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

/// What of a state `decode` could not read.
pub(super) enum Undecoded<'a> {
    Header,
    /// Fewer unit frames than the header says.
    Cut,
    /// This unit's frame (its definition's name and text first).
    Unit(&'a [u8]),
}

/// The state's header and units, as the new PID 1 takes them over, and
/// as a candidate asked about it reads them first (`candidate::unreadable`).
pub(super) fn decode(rest: &[u8]) -> Result<(Header, Vec<UnitState<'_>>), Undecoded<'_>> {
    let mut frames = handover::frames(rest);
    let header = frames
        .next()
        .and_then(wire::read_header)
        .ok_or(Undecoded::Header)?;
    let mut units = Vec::new();
    for _ in 0..header.units {
        let f = frames.next().ok_or(Undecoded::Cut)?;
        units.push(wire::read_unit(f).ok_or(Undecoded::Unit(f))?);
    }
    Ok((header, units))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A build of another state format adopts the units from their files:
    /// a re-exec into one is refused while a running unit's file is
    /// invalid (it runs on its last good definition) or gone, naming it
    /// (the new PID 1 left it unsupervised and cut its output pipe). Into
    /// a build of this format, which reads the state, it goes on.
    #[test]
    fn a_reexec_into_another_format_is_refused_while_a_unit_file_is_bad() {
        use crate::pid1::tests::{step, NO_PID};
        use crate::supervisor::Event;
        let dir = crate::testutil::TempDir::new("reexec-adoptable");
        let mut p = Pid1::new(None, 0, false);
        p.units_dir = dir.path().to_str().unwrap().try_into().unwrap();
        for name in ["db", "web"] {
            let d = crate::unit::parse(name, "exec = /bin/true\n").unwrap();
            p.add_unit(d);
        }
        p.sup.link().unwrap();
        p.fit_tables();
        step(&mut p, 1, Event::Boot);
        step(&mut p, 2, Event::spawned(0, NO_PID));
        step(&mut p, 2, Event::spawned(1, NO_PID - 1));
        dir.file("web.unit", "exec = /bin/true\n");
        dir.file("db.unit", "exec = /bin/true\nbogus = 1\n");
        let other = state_format() + 1;
        assert!(p.unadoptable(state_format()).is_none());
        let why = p.unadoptable(other).map(|w| w.as_str().to_owned());
        assert!(
            why.as_deref()
                .is_some_and(|w| w.starts_with("db: unit file invalid or gone")),
            "{why:?}"
        );
        dir.file("db.unit", "exec = /bin/true\n");
        assert!(p.unadoptable(other).is_none());
        std::fs::remove_file(dir.path().join("web.unit")).unwrap();
        assert!(p
            .unadoptable(other)
            .is_some_and(|w| w.as_str().starts_with("web: unit file")));
    }

    /// A refusal names the unit whole, the longest name included, and
    /// `initctl` is told that init keeps running whatever came before:
    /// the cause is cut (and says so) to leave those words room.
    #[test]
    fn a_refusal_says_init_keeps_running_whatever_its_cause() {
        let name = "n".repeat(crate::vocab::NAME_MAX);
        let why = super::refusal::unadoptable_why(&name, 99);
        assert!(why.ends_with("adopts units from files"), "{why}");
        let e = keeps_running(ErrCode::Refused, format_args!("/sbin/init refused: {why}"));
        let m = e.message.as_str();
        assert!(
            m.starts_with(&format!("/sbin/init refused: {name}: unit file")),
            "{m}"
        );
        assert!(m.ends_with("...; init keeps running"), "{m}");
        let short = keeps_running(
            ErrCode::Refused,
            format_args!("/sbin/init refused: shutting down"),
        );
        assert_eq!(
            short.message.as_str(),
            "/sbin/init refused: shutting down; init keeps running"
        );
    }

    /// Once a critical unit failed and the watchdog is fed no more, a
    /// re-exec is refused: the new PID 1 would feed it again (one of
    /// another state format adopts the units and knows nothing of the
    /// failure), and the board would not reset. So too after the unit was
    /// started again by hand: the old PID 1 does not feed again either.
    #[test]
    fn a_reexec_is_refused_once_the_watchdog_is_fed_no_more() {
        use crate::pid1::tests::{pid1_with, step, watched, NO_PID};
        use crate::supervisor::Event;
        let web = "exec = /bin/true\ncritical = yes\nrestart = never\n";
        let mut p = pid1_with(&[("web", web)]);
        let _fed = watched(&mut p);
        p.watchdog_next = Some(0);
        step(&mut p, 1, Event::Boot);
        step(&mut p, 2, Event::spawned(0, NO_PID));
        assert!(p.refusal().is_none(), "fed: a re-exec goes on");
        let exit = crate::vocab::Exit::code(1);
        step(&mut p, 3, Event::Exited { pid: NO_PID, exit });
        let why = p.refusal().map(|w| w.as_str().to_owned());
        assert!(
            why.as_deref().is_some_and(|w| w.contains("critical")),
            "{why:?}"
        );
        p.tend_watchdog();
        assert_eq!(p.watchdog_next, None, "fed no more");
        step(&mut p, 4, Event::Start { unit: 0 });
        step(&mut p, 5, Event::spawned(0, NO_PID + 1));
        assert!(p.critical_failed().is_none());
        assert!(p.refusal().is_some(), "started by hand: still not fed");
    }

    /// The unit directory is read in a child before PID 1 counts (and
    /// for another format parses) its files, as a reload reads it: within
    /// 30 s of a disk that did not answer, a re-exec is refused at once,
    /// naming the directory, and goes on once the disk answers again.
    #[test]
    fn a_reexec_is_refused_while_the_unit_directory_cannot_be_read() {
        use crate::pid1::tests::pid1_with;
        let mut p = pid1_with(&[("web", "exec = /bin/true\n")]);
        assert!(
            p.refusal().is_none(),
            "{:?}",
            p.refusal().map(|w| w.as_str().to_owned())
        );
        p.disk_stall = crate::pid1::gate::DiskStall::stalled_at(crate::pid1::now());
        let t = std::time::Instant::now();
        let why = p.refusal().map(|w| w.as_str().to_owned());
        assert!(t.elapsed() < std::time::Duration::from_millis(500));
        let dir = p.units_dir_path().to_owned();
        assert!(
            why.as_deref().is_some_and(|w| w.starts_with(&format!(
                "{dir} cannot be read now (the disk gave no answer"
            ))),
            "{why:?}"
        );
        p.disk_stall = Default::default();
        assert!(p.refusal().is_none());
    }

    /// Frames written one after another, after other bytes, read back
    /// whole by the new PID 1's reader; one whose body fails is refused.
    #[test]
    fn frames_read_back_as_written() {
        let mut out = b"head".to_vec();
        let big = vec![b'x'; 70_000];
        let put = |b: &[u8]| {
            let b = b.to_vec();
            move |o: &mut Vec<u8>| {
                o.extend_from_slice(&b);
                Some(())
            }
        };
        frame(&mut out, put(b"\x07")).unwrap();
        frame(&mut out, put(&big)).unwrap();
        frame(&mut out, put(b"")).unwrap();
        frame(&mut out, put(b"two")).unwrap();
        let rest = out.strip_prefix(b"head").unwrap();
        let frames: Vec<&[u8]> = handover::frames(rest).collect();
        assert_eq!(frames, [b"\x07", &big[..], b"", b"two"]);
        assert_eq!(frame(&mut out, |_| None), Err(Errno::INVAL));
    }

    fn units_in(dir: &std::path::Path) -> crate::boot::cmdline::Options {
        crate::boot::cmdline::Options {
            units_dir: heapless::String::try_from(dir.to_str().unwrap()).ok(),
            ..Default::default()
        }
    }

    fn memfd(bytes: &[u8]) -> OwnedFd {
        let fd = rustix::fs::memfd_create("state", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        assert_eq!(rustix::io::write(&fd, bytes).unwrap(), bytes.len());
        fd
    }

    /// A state this build cannot read, without cgroups: the running unit
    /// the text layer names (PID 1's child) is adopted, not started a
    /// second time, and its sd_notify socket kept for the watchdog's
    /// pings the adoption arms.
    #[test]
    fn without_cgroups_an_adopted_unit_keeps_its_process_and_notify_socket() {
        use crate::supervisor::{Action, Event};
        use rustix::fd::IntoRawFd;
        let units = crate::testutil::TempDir::new("reexec-adopt");
        units.file(
            "web.unit",
            "exec = /bin/sleep 60\nready = sd_notify\nwatchdog = 1s\n",
        );
        let mut child = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .unwrap();
        let pid = child.id();
        let sock = units.path().join("notify");
        let n = std::os::unix::net::UnixDatagram::bind(&sock).unwrap();
        // As handed over: inherited across the exec, so not close-on-exec.
        rustix::io::fcntl_setfd(&n, rustix::io::FdFlags::empty()).unwrap();
        let n = n.into_raw_fd();
        let text = format!("wren-state 999\nreexecs 1\nunit web {pid} -1 {n} -1\nend\n");
        let mut p = Pid1::new(None, 0, false);
        p.resume(memfd(text.as_bytes()), &units_in(units.path()));
        p.fit_tables();
        let adopted = p.sup.slot(0).unwrap().rt.pid;
        let acts = super::super::tests::step(&mut p, now(), Event::Boot);
        let ping = std::os::unix::net::UnixDatagram::unbound()
            .unwrap()
            .send_to(b"WATCHDOG=1", &sock);
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(adopted, pid, "not adopted; the boot's actions: {acts:?}");
        assert!(!acts.contains(&Action::Spawn(0)), "{acts:?}");
        assert!(p.edges[0].notify.is_some(), "the notify socket closed");
        assert!(ping.is_ok(), "{ping:?}");
    }

    /// A state that is not one: the fds the last PID 1 handed over cannot
    /// be named, and are closed rather than left to every unit started
    /// from here (the watchdog's among them). This PID 1's own stay.
    #[test]
    fn fds_handed_over_without_a_state_are_closed() {
        crate::testutil::alone!(fds_handed_over_without_a_state_are_closed);
        let (rd, wr) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
        rustix::io::fcntl_setfd(&wr, rustix::io::FdFlags::empty()).unwrap();
        let own = rustix::io::dup(&rd).unwrap();
        rustix::io::fcntl_setfd(&own, rustix::io::FdFlags::CLOEXEC).unwrap();
        let units = crate::testutil::TempDir::new("reexec-garbage");
        let mut p = Pid1::new(None, 0, false);
        p.resume(memfd(b"\x00garbage"), &units_in(units.path()));
        // Its number may be another fd's by now: the pipe says it closed.
        core::mem::forget(wr);
        let seen = crate::testutil::poll_in(&rd, 1);
        assert!(seen.contains(rustix::event::PollFlags::HUP), "left open");
        assert!(rustix::io::fcntl_getfd(&own).is_ok(), "its own closed");
    }

    /// The same, but the fd handed over is the run's s6 readiness pipe
    /// (the file on disk says sd_notify, not reloaded; or the unit was
    /// adopted while it started): kept, as the pipe it is, so that the
    /// unit's newline does not meet a closed pipe (SIGPIPE); its end of
    /// file lets it go, not read as an empty datagram again and again.
    #[test]
    fn an_adopted_units_readiness_pipe_is_kept_until_its_end() {
        use rustix::fd::IntoRawFd;
        let units = crate::testutil::TempDir::new("reexec-adopt-pipe");
        units.file("web.unit", "exec = /bin/sleep 60\nready = sd_notify\n");
        let mut child = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .unwrap();
        let pid = child.id();
        let (rd, wr) = rustix::pipe::pipe().unwrap();
        drop(wr);
        let n = rd.into_raw_fd();
        let text = format!("wren-state 999\nreexecs 1\nunit web {pid} -1 {n} -1\nend\n");
        let mut p = Pid1::new(None, 0, false);
        p.resume(memfd(text.as_bytes()), &units_in(units.path()));
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(p.sup.slot(0).unwrap().rt.pid, pid);
        assert!(p.edges[0].notify.is_some(), "its readiness pipe closed");
        p.on_notify(0);
        assert!(p.edges[0].notify.is_none(), "kept past its end of file");
        assert_eq!(
            p.sup.slot(0).unwrap().rt.phase,
            crate::supervisor::Phase::Running
        );
    }

    /// A unit whose part of the state cannot be written (here a
    /// definition that would not come back as it is) refuses the re-exec
    /// naming that unit, not "the state" alone.
    #[test]
    fn a_state_that_cannot_be_written_names_the_unit() {
        let mut p = super::super::tests::with_web();
        let mut def = crate::unit::UnitDef::with_defaults("odd");
        def.exec.push("/bin/echo").unwrap();
        def.exec.push("two\nlines").unwrap();
        p.add_unit(def);
        p.sup.link().unwrap();
        p.fit_tables();
        let (e, unit) = p.write_state(false).err().unwrap();
        assert_eq!(e, Errno::INVAL);
        assert_eq!(unit.as_deref(), Some("odd"));
    }

    /// A stopped unit's cgroup, there before the re-exec, is still known
    /// after it: a reload that removes the unit then deletes it; its next
    /// start writes its limits again.
    #[test]
    fn a_stopped_units_cgroup_is_known_after_a_reexec() {
        let root = crate::testutil::TempDir::new("reexec-stopped-cg");
        root.file("units/web/cgroup.events", "populated 0\n");
        let mut p = super::super::tests::with_web();
        p.cg = Some(crate::cgroup::Cgroups::open(root.path()).unwrap());
        p.edges[0].cgroup = Some(0);
        let state = p.write_state(false).unwrap();
        let cg = crate::cgroup::Cgroups::open(root.path()).unwrap();
        let mut q = Pid1::new(Some(cg), 0, false);
        q.resume(state, &crate::boot::cmdline::Options::default());
        assert_eq!(q.sup.slot(0).unwrap().rt.pid, 0);
        let gen = q.sup.slot(0).unwrap().limits_gen;
        assert_eq!(q.edges[0].cgroup, Some(gen.wrapping_sub(1)));
    }

    /// A state of this format whose ring is bigger than its unit's
    /// `log_size` (damaged; a build that changed the layout and not the
    /// format): the ring is the definition's size, not a 1 GiB one (or
    /// an abort, at 4 GiB).
    #[test]
    fn a_handed_over_ring_is_sized_by_its_definition() {
        let mut def = crate::unit::UnitDef::with_defaults("web");
        def.exec.push("/bin/true").unwrap();
        let mut sup = crate::supervisor::Supervisor::new();
        sup.add(def.clone()).unwrap();
        let st = UnitState {
            def: def.clone(),
            rt: sup.slot(0).unwrap().rt.clone(),
            retired: crate::supervisor::Retired::No,
            log_fd: -1,
            notify_fd: -1,
            report_fd: -1,
            log_capacity: 1 << 30,
            log_pos: 1,
            log: b"x",
            oom_kills_at_spawn: 0,
            oom_kills: 0,
            pressure_events: 0,
            shed: false,
            last_error: "",
            last_good: None,
            verdict: 0,
            rejected: None,
        };
        let mut out = format!("wren-state {}\nreexecs 1\nend\n", state_format()).into_bytes();
        let header = Header {
            started_at: 1,
            all_up_reported: true,
            reexecs: 1,
            units: 1,
        };
        frame(&mut out, |o| {
            wire::write_header(o, &header);
            Some(())
        })
        .unwrap();
        frame(&mut out, |o| wire::write_unit(o, &st)).unwrap();
        let mut p = Pid1::new(None, 0, false);
        p.resume(memfd(&out), &crate::boot::cmdline::Options::default());
        assert!(matches!(p.origin, Origin::HandedOver { .. }));
        assert_eq!(p.edges[0].log.capacity(), def.log_size as usize);
    }

    /// A free slot keeps its unit's name: after a reload removed `a` and
    /// `web` and a later one configured `web` again (in `a`'s slot), the
    /// free slot named `web` claimed the live `web`'s cgroup in a
    /// re-exec, and the next reload, changing nothing, killed the running
    /// `web` as the removed one's leftovers.
    #[test]
    fn a_free_slot_does_not_claim_a_live_units_cgroup() {
        use crate::supervisor::{Actions, Retired};
        use crate::unit::UnitDef;
        let root = crate::testutil::TempDir::new("reexec-free-slot");
        root.file("units/web/cgroup.events", "populated 1\n");
        let kill = root.file("units/web/cgroup.kill", "");
        let units = crate::testutil::TempDir::new("reexec-free-slot-units");
        units.file("web.unit", "exec = /bin/true\n");
        let cg = crate::cgroup::Cgroups::open(root.path()).unwrap();
        let mut p = Pid1::new(Some(cg), 0, false);
        let mut a = UnitDef::with_defaults("a");
        a.exec.push("/bin/true").unwrap();
        let web = crate::unit::parse("web", "exec = /bin/true\n").unwrap();
        p.add_unit(a);
        p.add_unit(web.clone());
        p.sup.link().unwrap();
        p.fit_tables();
        let reload = |p: &mut Pid1, t, defs: Vec<UnitDef>| {
            let mut out = Actions::default();
            out.fit(4);
            p.sup.reload(t, &mut defs.into_iter(), &|_| false, &mut out);
        };
        reload(&mut p, 1, vec![]);
        reload(&mut p, 2, vec![web.clone()]);
        assert_eq!(p.sup.slot(0).unwrap().def.name.as_str(), "web");
        let old = p.sup.slot(1).unwrap();
        assert_eq!((old.def.name.as_str(), old.retired), ("web", Retired::Free));
        p.edges[0] = Edge::new(&web);
        p.edges[0].cgroup = Some(p.sup.slot(0).unwrap().limits_gen);
        p.edges[1].cgroup = None;
        p.sup.adopt(0, 4_000_000, 5);
        let state = p.write_state(false).unwrap();
        let cg = crate::cgroup::Cgroups::open(root.path()).unwrap();
        let mut q = Pid1::new(Some(cg), 0, false);
        q.resume(state, &units_in(units.path()));
        q.fit_tables();
        assert_eq!(q.sup.slot(0).unwrap().rt.pid, 4_000_000);
        assert!(q.edges[0].cgroup.is_some() && q.edges[1].cgroup.is_none());
        let _ = q.reload(&mut |_| {});
        assert_eq!(
            std::fs::read_to_string(&kill).unwrap(),
            "",
            "the live web killed"
        );
    }

    /// A build of another state format adopts: the fds of a stopped unit
    /// (an output pipe a process that escaped the unit keeps open) are
    /// closed too, not left open without close-on-exec in the new PID 1
    /// and every unit it starts (the text layer named running units only).
    #[test]
    fn an_adoption_closes_a_stopped_units_fds() {
        let units = crate::testutil::TempDir::new("reexec-adopt-stopped-fds");
        units.file("web.unit", "exec = /bin/true\n");
        let mut p = super::super::tests::with_web();
        let (rd, wr) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
        let n = rustix::fd::AsRawFd::as_raw_fd(&rd);
        let pipe = rustix::fs::fstat(&wr).unwrap().st_ino;
        p.edges[0].log_rd = Some(rd);
        assert_eq!(p.sup.slot(0).unwrap().rt.pid, 0);
        let state = p.write_state(false).unwrap();
        // The exec: the old PID 1's fds are the new one's by number.
        std::mem::forget(p);
        let mut bytes = Vec::new();
        rustix::fs::seek(&state, rustix::fs::SeekFrom::Start(0)).unwrap();
        crate::sys::file::read_to_end(std::fs::File::from(state), &mut bytes).unwrap();
        let first = bytes.iter().position(|&c| c == b'\n').unwrap();
        let mut other = b"wren-state 999".to_vec();
        other.extend_from_slice(&bytes[first..]);
        let mut q = Pid1::new(None, 0, false);
        q.resume(memfd(&other), &units_in(units.path()));
        // Closed here: its number gone, or another file's already (tests
        // run in parallel). Not the pipe's end of file for its writer: a
        // child another test forks meanwhile inherits the read end while
        // the handover leaves it without close-on-exec.
        let now = std::fs::metadata(format!("/proc/self/fd/{n}"));
        assert!(
            now.map_or(true, |m| std::os::unix::fs::MetadataExt::ino(&m) != pipe),
            "its read end is open"
        );
        drop(wr);
    }

    /// A candidate of this format, given the state, names the first unit
    /// whose definition its parser refuses (as an older build, rolled
    /// back to, refuses a newer key): its second handshake line. A state
    /// it reads whole, or of another format, it says nothing of.
    #[test]
    fn a_candidate_names_the_unit_it_cannot_read() {
        let mut p = super::super::tests::with_web();
        let state = p.write_state(false).unwrap();
        assert_eq!(
            super::candidate::unreadable(rustix::fd::AsFd::as_fd(&state)),
            None
        );
        let mut bytes = Vec::new();
        rustix::fs::seek(&state, rustix::fs::SeekFrom::Start(0)).unwrap();
        crate::sys::file::read_to_end(std::fs::File::from(state), &mut bytes).unwrap();
        let at = bytes.windows(7).position(|w| w == b"exec = ").unwrap();
        bytes[at + 3] = b'f';
        let said = super::candidate::unreadable(rustix::fd::AsFd::as_fd(&memfd(&bytes)));
        let said = said.expect("the unit it cannot read");
        assert!(said.starts_with("web: line "), "{said}");
        assert!(said.contains("exef"), "{said}");
        let first = bytes.iter().position(|&c| c == b'\n').unwrap();
        let mut other = b"wren-state 999".to_vec();
        other.extend_from_slice(&bytes[first..]);
        assert_eq!(
            super::candidate::unreadable(rustix::fd::AsFd::as_fd(&memfd(&other))),
            None
        );
    }

    /// Close-on-exec of fd `n`, from /proc/self/fdinfo (O_CLOEXEC).
    fn cloexec(n: i32) -> bool {
        let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{n}")).unwrap();
        let flags = info.lines().find_map(|l| l.strip_prefix("flags:")).unwrap();
        u32::from_str_radix(flags.trim(), 8).unwrap() & 0o2000000 != 0
    }

    /// For a build of its own format, the re-exec keeps the hardware
    /// watchdog open across the exec and names it in the state (a driver
    /// without the magic close stops at the close an exec makes); for
    /// another, or an exec that failed, it stays close-on-exec. The new
    /// PID 1 takes only a device that answers the watchdog's ioctl.
    #[test]
    fn the_watchdog_is_handed_over_to_a_build_of_the_same_format() {
        use crate::watchdog::Watchdog;
        let dev = rustix::fs::memfd_create("wd", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        let n = dev.as_raw_fd();
        let mut p = super::super::tests::with_web();
        p.watchdog = Some(Watchdog::on(dev, 15));
        let text = |state: OwnedFd| {
            let mut bytes = Vec::new();
            rustix::fs::seek(&state, rustix::fs::SeekFrom::Start(0)).unwrap();
            crate::sys::file::read_to_end(std::fs::File::from(state), &mut bytes).unwrap();
            bytes
        };
        let other = text(p.write_state(false).unwrap());
        assert!(handover::parse_hints(&other).unwrap().watchdog.is_none());
        assert!(cloexec(n));
        let same = text(p.write_state(true).unwrap());
        assert_eq!(
            handover::parse_hints(&same).unwrap().watchdog,
            Some((n, 15))
        );
        assert!(!cloexec(n), "closed by the exec");
        p.set_cloexec(true);
        assert!(
            cloexec(n),
            "left open for the next start after a failed exec"
        );
        // A memfd is no watchdog: not taken by the new PID 1, and closed.
        let mut q = Pid1::new(None, 0, false);
        let not_one = rustix::fs::memfd_create("wd", rustix::fs::MemfdFlags::empty()).unwrap();
        q.take_watchdog(Some(not_one), 15);
        assert!(q.watchdog.is_none());
    }

    /// A unit a reload removed, still stopping at a re-exec: once it has
    /// stopped, the new PID 1 lets its edge go (its output pipe out of the
    /// epoll set, its ring freed), as the old one would have. The new one
    /// started with no removal pending and held them for good.
    #[test]
    fn a_removed_unit_still_stopping_at_a_reexec_is_let_go_once_stopped() {
        use crate::pid1::tests::{pid1_with, step, NO_PID};
        use crate::supervisor::{Event, Retired};
        let dir = crate::testutil::TempDir::new("reexec-removing");
        dir.file("db.unit", "exec = /bin/true\n");
        let mut p = pid1_with(&[("web", "exec = /bin/true\n"), ("db", "exec = /bin/true\n")]);
        p.units_dir = dir.path().to_str().unwrap().try_into().unwrap();
        step(&mut p, 1, Event::Boot);
        step(&mut p, 2, Event::spawned(0, NO_PID));
        step(&mut p, 2, Event::spawned(1, NO_PID - 1));
        let (rd, _wr) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
        p.edges[0].log_rd = Some(rd);
        p.reload(&mut |_| {}).unwrap();
        assert!(p.in_between().is_none(), "a re-exec would be refused");
        let state = p.write_state(false).unwrap();
        // The old PID 1's fds are the new one's: not closed by this one.
        std::mem::forget(p);
        let mut q = Pid1::new(None, 0, false);
        let opts = crate::boot::cmdline::Options {
            units_dir: heapless::String::try_from(dir.path().to_str().unwrap()).ok(),
            ..Default::default()
        };
        q.resume(state, &opts);
        q.fit_tables();
        assert!(q.sup.retired_index("web", Retired::Leaving).is_some());
        let exit = crate::vocab::Exit::code(0);
        step(&mut q, 3, Event::Exited { pid: NO_PID, exit });
        q.after_events();
        assert!(q.edges[0].log_rd.is_none(), "web's output pipe still held");
    }

    /// Booted with `wren.rescue`, the units loaded by the operator's
    /// reload since, then a re-exec whose state names `web` running but
    /// is of another format: `web` is adopted from its file, not left
    /// unsupervised (its output pipe cut) for the rescue shell alone. With
    /// nothing but the rescue shell running, rescue it stays.
    #[test]
    fn an_adoption_after_a_rescue_boot_keeps_the_units_loaded_since() {
        let units = crate::testutil::TempDir::new("reexec-rescue");
        units.file("web.unit", "exec = /bin/sleep 60\n");
        let mut child = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .unwrap();
        let opts = crate::boot::cmdline::Options {
            units_dir: heapless::String::try_from(units.path().to_str().unwrap()).ok(),
            rescue: true,
            ..Default::default()
        };
        let memfd = |text: String| {
            let fd = rustix::fs::memfd_create("state", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
            assert_eq!(rustix::io::write(&fd, text.as_bytes()).unwrap(), text.len());
            fd
        };
        let other = state_format() + 1;
        let pid = child.id();
        let mut p = Pid1::new(None, 0, false);
        p.resume(
            memfd(format!(
                "wren-state {other}\nunit web {pid} -1 -1 -1\nend\n"
            )),
            &opts,
        );
        let _ = child.kill();
        let _ = child.wait();
        let web = p.sup.index("web").and_then(|u| p.sup.slot(u));
        assert_eq!(web.map(|s| s.rt.pid), Some(pid), "web not adopted");
        let mut q = Pid1::new(None, 0, false);
        q.resume(
            memfd(format!("wren-state {other}\nunit rescue 1 -1 -1 -1\nend\n")),
            &opts,
        );
        let names: Vec<&str> = q.sup.slots().map(|s| s.def.name.as_str()).collect();
        assert_eq!(names, ["rescue"]);
    }

    /// Booted with `wren.rescue` and units loaded since: a re-exec into a
    /// build of an older format, which would keep only the rescue shell,
    /// is refused naming a running unit; a newer one adopts them.
    #[test]
    fn a_reexec_after_a_rescue_boot_into_an_older_format_is_refused() {
        use crate::pid1::tests::{step, NO_PID};
        use crate::supervisor::Event;
        let dir = crate::testutil::TempDir::new("reexec-rescue-older");
        dir.file("web.unit", "exec = /bin/true\n");
        let mut p = Pid1::new(None, 0, false);
        p.units_dir = dir.path().to_str().unwrap().try_into().unwrap();
        p.add_unit(crate::unit::parse("web", "exec = /bin/true\n").unwrap());
        p.sup.link().unwrap();
        p.fit_tables();
        step(&mut p, 1, Event::Boot);
        step(&mut p, 2, Event::spawned(0, NO_PID));
        let older = state_format() - 1;
        assert!(p.unadoptable(older).is_none(), "not booted in rescue");
        p.sup.hold_limit_actions(0, true);
        let why = p.unadoptable(older).map(|w| w.as_str().to_owned());
        let want =
            format!("web: booted with wren.rescue, format {older} adopts only the rescue shell");
        assert_eq!(why.as_deref(), Some(want.as_str()));
        assert!(p.unadoptable(state_format() + 1).is_none());
    }
}
