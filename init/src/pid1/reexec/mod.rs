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
                if running {
                    edge.not_enforced = self.running_not_enforced(u, cgroup);
                }
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
    /// The keys a running unit's start found not enforced, as its cgroup
    /// (or none) says: no start of the new PID 1's works them out until
    /// the limits change.
    fn running_not_enforced(&self, u: u16, cgroup: bool) -> super::not_enforced::KeySet {
        let Some(s) = self.sup.slot(u) else {
            return super::not_enforced::KeySet::EMPTY;
        };
        let limits = s.def.limits.get();
        let ne = match self.cg.as_ref().filter(|_| cgroup) {
            Some(cg) => cg.not_enforced_in(&s.def.name, &limits),
            None => crate::cgroup::missing::not_enforced(&limits),
        };
        super::not_enforced::KeySet::of(&ne)
    }

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
mod tests;
