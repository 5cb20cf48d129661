//! `initctl` commands, executed in the loop: the control server decodes a
//! request into a `Command` and hands it here; the answer goes back through
//! the server. Status texts come from the supervisor's table and the edge
//! state; start/stop/restart feed the supervisor and leave the client
//! waiting until `tend_waiters` sees its unit settle.

use super::announce::{Again, ExitText};
use super::{apart, now, Edge, Pid1};
use crate::cgroup::Cgroups;
use crate::control::{ClientId, Command, Server, Text, Waiter, Want};
use crate::log_ring::LogRing;
use crate::proto::STATUS_PAGE;
use crate::proto::{CtlError, ErrCode, LastExit, Reply, UnitDetail, UnitStatus};
use crate::supervisor::{Event, Note, Phase, Retired, Supervisor};
use crate::unit::{self, Output};
use crate::vocab::{Exit, Millis, Name};

impl Pid1 {
    /// The control fd is readable: execute and answer every request that
    /// is ready, one at a time (so a finished client frees its slot for the
    /// next connection, as before).
    pub(super) fn serve_control(&mut self) {
        while let Some((id, cmd)) = self.control.as_mut().and_then(|s| s.poll(now())) {
            self.execute(id, cmd);
        }
    }

    fn execute(&mut self, id: ClientId, cmd: Command) {
        let t = now();
        // Each command in a frame of its own (`apart`): their buffers
        // (a status page, a 16 KiB text) are never on the stack together.
        match cmd {
            Command::Status { from } => apart(|| {
                let (units, next) = status(&self.sup, self.cg.as_ref(), from);
                if let Some(srv) = self.control.as_mut() {
                    srv.answer(id, &Reply::Status { units, next }, t);
                }
            }),
            Command::Detail(name) => apart(|| {
                let mut d = detail(&self.sup, &self.edges, self.cg.as_ref(), &name, t);
                if let Ok(d) = d.as_mut() {
                    self.critical_reason(&name, &mut d.reason);
                }
                let ring = log_of(&self.sup, &self.edges, &name).ok();
                if let Some(srv) = self.control.as_mut() {
                    srv.answer_detail(id, d, ring, t);
                }
            }),
            Command::Start(name) => self.act(id, name, Want::Started),
            Command::Stop(name) => self.act(id, name, Want::Stopped),
            Command::Restart(name) => self.act(id, name, Want::Restarted),
            Command::Shutdown(kind) => {
                // Acknowledged before it begins: the reply must reach the
                // kernel while the loop still runs.
                let reply = match self.sup.shutting_down() {
                    Some(k) if k != kind => Reply::Error(CtlError::fmt(
                        ErrCode::Refused,
                        format_args!("already {}", k.verb()),
                    )),
                    _ => Reply::Ok,
                };
                if let Some(srv) = self.control.as_mut() {
                    srv.answer(id, &reply, t);
                }
                let _ = self.ask_shutdown(kind, format_args!("initctl"));
            }
            Command::Log { name, follow } => apart(|| {
                let ring = log_of(&self.sup, &self.edges, &name);
                if let Some(srv) = self.control.as_mut() {
                    srv.answer_log(id, name.clone(), follow, ring, t);
                }
            }),
            Command::Cat(name) => apart(|| {
                let mut text = Text::default();
                let r = unit_index(&self.sup, &name).and_then(|u| {
                    let slot = self
                        .sup
                        .slot(u)
                        .ok_or_else(|| CtlError::code(ErrCode::NoSuchUnit))?;
                    unit::render(&slot.def, &mut text)
                        .map_err(|_| CtlError::code(ErrCode::Internal))
                });
                let reply = match &r {
                    Ok(()) => Reply::Cat(text.unit_file()),
                    Err(e) => Reply::Error(e.clone()),
                };
                if let Some(srv) = self.control.as_mut() {
                    srv.answer(id, &reply, t);
                }
            }),
            Command::Reload => apart(|| {
                let mut text = Text::default();
                let result = self.reload_for_client(&mut |line| text.line(line));
                let reply = Reply::Reload {
                    result,
                    report: text.report(),
                };
                if let Some(srv) = self.control.as_mut() {
                    srv.answer(id, &reply, now());
                }
            }),
            Command::Verdict => apart(|| {
                self.verdict_asked();
                let mut text = Text::default();
                match self.verdicts(&mut |line| text.line(line)) {
                    Some(rejected) => {
                        let reply = verdict_reply(rejected, text.report());
                        if let Some(srv) = self.control.as_mut() {
                            srv.answer(id, &reply, t);
                        }
                    }
                    None => {
                        if let Some(srv) = self.control.as_mut() {
                            srv.wait_for(id, Name::new(), Want::Verdict);
                        }
                    }
                }
            }),
            Command::Reexec(path) => apart(|| self.reexec(id, &path)),
            Command::Info => apart(|| {
                let reply = Reply::Info(self.info());
                if let Some(srv) = self.control.as_mut() {
                    srv.answer(id, &reply, t);
                }
            }),
        }
    }

    /// Start, stop or restart; the reply waits until the unit settles.
    fn act(&mut self, id: ClientId, name: Name, want: Want) {
        let begun = unit_index(&self.sup, &name).and_then(|unit| {
            let refused = || Err(CtlError::new(ErrCode::Refused, "shutting down"));
            match want {
                Want::Started if self.sup.shutting_down().is_some() => refused(),
                Want::Restarted if self.sup.shutting_down().is_some() => refused(),
                Want::Started => Ok(Event::Start { unit }),
                Want::Stopped => Ok(Event::Stop { unit }),
                Want::Restarted => Ok(Event::Restart {
                    unit,
                    by_hand: true,
                }),
                Want::Verdict => Err(CtlError::code(ErrCode::Internal)),
            }
        });
        let settled = match begun {
            Err(e) => Some(Err(e)),
            Ok(ev) => {
                // The operator decides now: a shed unit is no longer
                // started again (or stopped) by the pressure watch, nor
                // is a unit its own pressure stopped said to be stopped
                // for that.
                if let Some(e) = self
                    .sup
                    .index(&name)
                    .and_then(|u| self.edges.get_mut(usize::from(u)))
                {
                    e.shed = false;
                    e.set_pressure_stopped(false);
                }
                self.feed(ev);
                if want == Want::Stopped {
                    self.recheck_survivors(&name);
                }
                answer_of(&self.sup, &self.edges, &name, want)
            }
        };
        let t = now();
        let Some(srv) = self.control.as_mut() else {
            return;
        };
        match settled {
            Some(r) => srv.answer(id, &result_reply(r), t),
            None => srv.wait_for(id, name, want),
        }
    }

    /// After every batch: answer the clients whose unit settled and feed
    /// `log -f` followers what their unit wrote.
    pub(super) fn tend_waiters(&mut self) {
        let Some(waiters) = self.control.as_ref().map(|s| s.waiters()) else {
            return;
        };
        let t = now();
        for (id, w) in waiters {
            if let Waiter::Settle {
                want: Want::Verdict,
                ..
            } = w
            {
                // Apart: the 16 KiB text is on the stack only while used.
                apart(|| {
                    let mut text = Text::default();
                    if let Some(rejected) = self.verdicts(&mut |line| text.line(line)) {
                        let reply = verdict_reply(rejected, text.report());
                        if let Some(srv) = self.control.as_mut() {
                            srv.answer(id, &reply, t);
                        }
                    }
                });
                continue;
            }
            if let Some(srv) = self.control.as_mut() {
                tend(srv, &self.sup, &self.edges, id, w, t);
            }
        }
    }
}

/// `reload`'s verdict: `Err` when a unit was put back or is down for a
/// dependency.
fn verdict_reply(rejected: usize, report: &str) -> Reply<'_> {
    Reply::Reload {
        result: if rejected == 0 {
            Ok(())
        } else {
            Err(CtlError::fmt(
                ErrCode::Failed,
                format_args!("{rejected} unit(s) rejected or not started"),
            ))
        },
        report,
    }
}

fn tend(srv: &mut Server, sup: &Supervisor, edges: &[Edge], id: ClientId, w: Waiter, t: u64) {
    match w {
        Waiter::Settle { name, want } => {
            if let Some(r) = answer_of(sup, edges, &name, want) {
                srv.answer(id, &result_reply(r), t);
            }
        }
        Waiter::Follow { name } => srv.feed(id, log_of(sup, edges, &name), t),
    }
}

impl Pid1 {
    /// Processes a stop gave up on (`gave_up`: they survived every kill)
    /// that are gone since (stuck in the kernel a while): the stop is
    /// over, and a later one succeeds.
    fn recheck_survivors(&mut self, name: &str) {
        let Some(u) = self.sup.index(name) else {
            return;
        };
        let gone = self
            .cg
            .as_ref()
            .is_some_and(|cg| cg.populated(name) == Some(false));
        if let Some(e) = self.edges.get_mut(usize::from(u)).filter(|_| gone) {
            e.drain.gave_up = false;
        }
    }
}

/// What a client waiting for `want` of `name` is told, if it is settled: a
/// stop is done when the cgroup is empty too (`stopping`), and fails when
/// processes survived every kill; also for a unit stopped before the
/// client asked.
fn answer_of(
    sup: &Supervisor,
    edges: &[Edge],
    name: &str,
    want: Want,
) -> Option<Result<(), CtlError>> {
    // A stop a reload's removal overtook goes on as the removal's: done
    // when that is (`removed_index`), not refused at the removal.
    let u = match want {
        Want::Stopped => sup.index(name).or_else(|| sup.removed_index(name)),
        _ => sup.index(name),
    };
    let r = settled(sup, u, name, want)?;
    let drain = u.and_then(|u| edges.get(usize::from(u))).map(|e| &e.drain);
    match (want, drain) {
        (Want::Stopped, Some(d)) if d.active() => None,
        (Want::Stopped, Some(d)) if d.gave_up => Some(Err(CtlError::fmt(
            ErrCode::Failed,
            format_args!("processes survived SIGKILL (see the kernel log)"),
        ))),
        _ => Some(r),
    }
}

fn result_reply(r: Result<(), CtlError>) -> Reply<'static> {
    match r {
        Ok(()) => Reply::Ok,
        Err(e) => Reply::Error(e),
    }
}

fn unit_index(sup: &Supervisor, name: &str) -> Result<u16, CtlError> {
    sup.index(name)
        .ok_or_else(|| CtlError::fmt(ErrCode::NoSuchUnit, format_args!("no unit named `{name}`")))
}

fn line(sup: &Supervisor, cg: Option<&Cgroups>, u: u16) -> Option<UnitStatus> {
    let slot = sup.slot(u)?;
    let name = slot.def.name.as_str();
    let live = slot.rt.pid != 0;
    Some(UnitStatus {
        name: slot.def.name.clone(),
        state: slot.rt.phase.state(),
        pid: slot.rt.pid,
        restarts: slot.rt.restarts,
        memory_current: cg.and_then(|c| c.memory_current(name)),
        memory_max: slot.def.limits.get().memory_max,
        uptime_ms: if live {
            now().saturating_sub(slot.rt.spawned_at)
        } else {
            0
        },
    })
}

/// One line per unit, in the unit table's order: the page of at most
/// `STATUS_PAGE` from slot `from` on, and the slot the next page starts at.
fn status(
    sup: &Supervisor,
    cg: Option<&Cgroups>,
    from: u16,
) -> (heapless::Vec<UnitStatus, STATUS_PAGE>, Option<u16>) {
    let mut out = heapless::Vec::new();
    let mut i = from;
    while let Some(s) = sup.slot(i) {
        if out.is_full() {
            return (out, Some(i));
        }
        if s.retired != Retired::Free {
            if let Some(l) = line(sup, cg, i) {
                let _ = out.push(l);
            }
        }
        let Some(n) = i.checked_add(1) else { break };
        i = n;
    }
    (out, None)
}

/// `status NAME`; the server adds the log tail.
fn detail(
    sup: &Supervisor,
    edges: &[Edge],
    cg: Option<&Cgroups>,
    name: &str,
    now: Millis,
) -> Result<UnitDetail, CtlError> {
    // A unit a reload removed is listed while it stops: so it has a
    // detail too.
    let leaving = sup.index(name).is_none();
    let u =
        unit_index(sup, name).or_else(|e| sup.retired_index(name, Retired::Leaving).ok_or(e))?;
    let status = line(sup, cg, u).ok_or_else(|| CtlError::code(ErrCode::NoSuchUnit))?;
    let slot = sup
        .slot(u)
        .ok_or_else(|| CtlError::code(ErrCode::NoSuchUnit))?;
    let edge = edges.get(usize::from(u));
    let mut reason: heapless::String<{ crate::proto::REASON_MAX }> = heapless::String::new();
    match slot.rt.last_note {
        Some(Note::SpawnFailed { restart_in }) => {
            let e = edge.map(|e| e.last_error()).unwrap_or("");
            let again = Again::retry(restart_in);
            let _ = core::fmt::write(&mut reason.as_mut_view(), format_args!("{e}{again}"));
        }
        Some(n) => {
            let _ = core::fmt::write(
                &mut reason.as_mut_view(),
                format_args!("{}", NoteText(n, sup)),
            );
        }
        None => {}
    }
    // A start limit's action waiting for PID 1's first minute: the
    // operator the wait is for reads here when it comes and what stops it.
    let rt = &slot.rt;
    let held = (rt.last_note, rt.phase, rt.deadline);
    if let ((Some(Note::StartLimit), Phase::Failed, Some(d)), Some(kind)) =
        (held, slot.def.start_limit_action.shutdown())
    {
        let _ = core::fmt::write(
            &mut reason.as_mut_view(),
            format_args!(
                ", {} in {}ms (a stop or start by hand cancels)",
                kind.verb(),
                d.get().saturating_sub(now)
            ),
        );
    }
    if edge.is_some_and(|e| e.pressure_stopped()) {
        reason.clear();
        let _ = reason.push_str("stopped: memory pressure over pressure_limit");
    }
    if let Some(r) = edge.and_then(|e| e.rejected()) {
        reason = crate::proto::truncated(r);
    }
    if edge.is_some_and(|e| e.shed) {
        reason.clear();
        let _ =
            reason.push_str("shed: system memory pressure (wren.shed), starts again once it calms");
    }
    if leaving {
        reason.clear();
        let _ = reason.push_str("removed by a reload: stopping");
    }
    if slot.rt.phase == Phase::Waiting {
        reason.clear();
        let _ = reason.push_str("waiting for");
        // Those it still waits on (not those already up), each whole; a
        // list that does not fit ends in "...".
        let pending = slot
            .rt
            .deps
            .iter()
            .filter_map(|d| sup.slot(*d))
            .filter(|ds| !ds.rt.phase.lets_dependents_start());
        for ds in pending {
            let fits = reason.len() + 1 + ds.def.name.len() + 4 <= reason.capacity();
            if !fits {
                let _ = reason.push_str(" ...");
                break;
            }
            let _ = reason.push(' ');
            let _ = reason.push_str(&ds.def.name);
        }
    }
    Ok(UnitDetail {
        status,
        last_exit: match slot.rt.last_exit {
            None => LastExit::None,
            Some(Exit::Code(c)) => LastExit::Code(c.into()),
            Some(Exit::Signal(s)) => LastExit::Signal(s.into()),
            Some(Exit::OomKill) => LastExit::OomKill,
        },
        // Kills since the last SIGKILL exit (settle_oom reads
        // memory.events only then): a killed child of a run that ended
        // otherwise, or of the running one.
        oom_kills: edge
            .map(|e| {
                let now = cg.and_then(|c| c.memory_events(name)).map(|m| m.oom_kill);
                now.map_or(e.oom_kills, |k| e.oom_kills_with(k))
            })
            .unwrap_or(0),
        pressure_avg10: cg.and_then(|c| c.memory_pressure(name)),
        pressure_events: edge.map(|e| e.pressure_events).unwrap_or(0),
        not_enforced: edge
            .map(|e| crate::proto::formatted(format_args!("{}", e.not_enforced)))
            .unwrap_or_default(),
        reason,
        confinement: crate::proto::formatted(format_args!(
            "{}",
            wren_core::confine::SummaryAs(&slot.def, runs_as_root(&slot.def, slot.rt.pid))
        )),
    })
}

/// Whether `def` runs as uid 0 (it keeps its capabilities as root): for
/// a `user` name (`toor` may be uid 0), the uid its program (`pid`'s, or
/// with a PID namespace its reaper's child's) runs as, from /proc; by its
/// name when it does not run, or that cannot be read. No passwd file is
/// read, the host's no more than a `root`'s: an answer to `initctl
/// status` must not wait on a card (the start looks the name up in its
/// own child).
fn runs_as_root(def: &crate::unit::UnitDef, pid: u32) -> bool {
    match &def.seldom.user {
        // uid 0 of a user namespace is its map's first outside.
        Some(crate::unit::IdSpec::Name(n)) if n.as_str() != "root" => {
            running_uid(pid, def.namespaces.has(crate::unit::Namespaces::PID))
                == Some(def.user_map_effective().map_or(0, |m| m.outside))
        }
        _ => def.named_root(),
    }
}

/// The real uid process `pid` (with `reaped`, its only child: a PID
/// namespace's reaper's service) runs as, as the host sees it.
fn running_uid(pid: u32, reaped: bool) -> Option<u32> {
    let cwd = rustix::fs::CWD;
    let mut buf = [0u8; 512];
    let pid = match reaped {
        false => pid,
        true => {
            let path: heapless::String<48> =
                crate::proto::formatted(format_args!("/proc/{pid}/task/{pid}/children"));
            let text = crate::sys::file::read_kernel_at(cwd, &path, &mut buf).ok()?;
            wren_core::num::dec(text.split_whitespace().next()?)?
        }
    };
    let path: heapless::String<32> = crate::proto::formatted(format_args!("/proc/{pid}/status"));
    let text = crate::sys::file::read_kernel_at(cwd, &path, &mut buf).ok()?;
    let uid = text.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    wren_core::num::dec(uid.split_whitespace().next()?)
}

/// Whether the action a client waits on is over: `None` while pending,
/// `Some(Err)` when it cannot happen any more (the unit failed, or was
/// removed).
fn settled(
    sup: &Supervisor,
    u: Option<u16>,
    name: &str,
    want: Want,
) -> Option<Result<(), CtlError>> {
    let Some(u) = u else {
        return Some(Err(CtlError::fmt(
            ErrCode::NoSuchUnit,
            format_args!("no unit named `{name}` (removed by a reload)"),
        )));
    };
    let slot = sup.slot(u)?;
    let failed = |what: &str| Some(Err(CtlError::new(ErrCode::Failed, what)));
    match want {
        Want::Started | Want::Restarted => match slot.rt.phase {
            Phase::Running | Phase::Exited => Some(Ok(())),
            Phase::Failed => failed("failed"),
            Phase::Backoff => failed("exited during start, will retry"),
            Phase::Stopped if slot.gave_up_on_dependency() => {
                failed("did not start (dependency failed)")
            }
            // By hand, shed, or a new unit's definition rejected.
            Phase::Stopped if !slot.rt.want => failed("stopped"),
            // Ended by itself before it was ready (exit 0, and no restart
            // for it): nothing more comes of this start.
            Phase::Stopped => failed("exited before it was ready"),
            _ => None,
        },
        Want::Stopped => match slot.rt.phase {
            Phase::Stopped | Phase::Failed => Some(Ok(())),
            // Wanted again (a start, a restart, a reload that changed it):
            // the stop is cancelled, as a start cancels systemd's stop job;
            // the unit runs again, so it is no success.
            _ if slot.rt.want => failed("started again before it stopped"),
            _ => None,
        },
        // Answered by `tend_waiters` itself.
        Want::Verdict => None,
    }
}

/// The unit's output ring; `ErrCode::NoLog` when output is not captured.
fn log_of<'a>(sup: &Supervisor, edges: &'a [Edge], name: &str) -> Result<&'a LogRing, CtlError> {
    let u = unit_index(sup, name)?;
    let slot = sup
        .slot(u)
        .ok_or_else(|| CtlError::code(ErrCode::NoSuchUnit))?;
    if slot.def.output != Output::Log {
        return Err(CtlError::code(ErrCode::NoLog));
    }
    edges
        .get(usize::from(u))
        .map(|e| &e.log)
        .ok_or_else(|| CtlError::code(ErrCode::NoLog))
}

struct NoteText<'a>(Note, &'a Supervisor);

impl core::fmt::Display for NoteText<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Note::Running { .. } | Note::Exited | Note::Stopped => Ok(()),
            Note::Died { exit, restart_in } => {
                write!(f, "{}{}", ExitText(exit), Again::restart(restart_in))
            }
            Note::SpawnFailed { .. } => write!(f, "could not start (see dmesg)"),
            Note::StartTimeout { restart_in } => {
                write!(
                    f,
                    "not ready within start_timeout{}",
                    Again::restart(restart_in)
                )
            }
            Note::WatchdogTimeout { restart_in } => {
                write!(f, "watchdog timeout{}", Again::restart(restart_in))
            }
            Note::StartLimit => write!(f, "start limit hit"),
            Note::DepFailed { dep } => {
                let d = sup_name(self.1, dep);
                write!(f, "dependency {d} failed")
            }
            Note::DepMissing => f.write_str(super::DEP_MISSING),
        }
    }
}

fn sup_name(sup: &Supervisor, u: u16) -> &str {
    sup.slot(u).map(|s| s.def.name.as_str()).unwrap_or("?")
}

#[cfg(test)]
mod tests {
    use super::super::tests::{pid1_with, step, with_cgroups, NO_PID};
    use crate::control::Server;
    use crate::proto::{decode_reply, encode_request, FrameDecoder, Reply, Request, FRAME_BUF};
    use crate::supervisor::Event;
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    /// `req` over a real socket to `p`'s control server: the replies.
    fn ask(p: &mut super::Pid1, path: &std::path::Path, req: Request<'_>) -> Vec<Reply<'static>> {
        let mut s = UnixStream::connect(path).unwrap();
        let mut buf = [0u8; 256];
        let n = encode_request(&req, &mut buf).unwrap();
        s.write_all(&buf[..n]).unwrap();
        p.serve_control();
        p.tend_waiters();
        replies(&mut s)
    }

    /// What `p`'s server answered on `s` so far.
    fn replies(s: &mut UnixStream) -> Vec<Reply<'static>> {
        s.set_nonblocking(true).unwrap();
        let mut dec = Box::new(FrameDecoder::<FRAME_BUF>::new());
        let mut out = Vec::new();
        while let Ok(n @ 1..) = s.read(dec.spare()) {
            dec.advance(n);
        }
        while let Some(f) = dec.frame().unwrap() {
            match decode_reply(f).unwrap() {
                Reply::Ok => out.push(Reply::Ok),
                Reply::Error(e) => out.push(Reply::Error(e)),
                r => panic!("{r:?}"),
            }
            dec.consume();
        }
        out
    }

    /// `stop` of a unit already stopped whose cgroup still drains (what
    /// its stop left, in the grace) waits as a stop under way does; one
    /// whose processes survived every kill says so.
    #[test]
    fn a_stop_of_a_stopped_unit_waits_for_its_drain() {
        let root = crate::testutil::TempDir::new("pid1-stop-answer");
        root.file("units/web/cgroup.events", "populated 1\nfrozen 0\n");
        let mut p = with_cgroups(&root);
        step(&mut p, 0, Event::Boot);
        step(&mut p, 1, Event::spawned(0, NO_PID));
        step(&mut p, 2, Event::Stop { unit: 0 });
        p.signal_unit(0, NO_PID, 15);
        let exit = crate::vocab::Exit::Signal(15);
        step(&mut p, 3, Event::Exited { pid: NO_PID, exit });
        p.kill_cgroup(0);
        assert!(p.draining(), "in the stop's grace");
        let sock = crate::testutil::TempDir::new("pid1-stop-answer-sock");
        let path = sock.path().join("control");
        let uid = rustix::process::getuid().as_raw();
        p.control = Some(Server::bind(&path, uid).unwrap());
        let replies = ask(&mut p, &path, Request::Stop { name: "web" });
        assert!(replies.is_empty(), "answered while draining: {replies:?}");
        assert_eq!(p.control.as_ref().unwrap().clients(), 1, "waits");
        // Processes that survive every kill: given up on, and said.
        for _ in 0..=super::super::stopping::KILL_TRIES {
            p.drain_timeouts(super::super::now().saturating_add(60_000));
        }
        assert!(p.edges[0].drain.gave_up && !p.draining());
        let replies = ask(&mut p, &path, Request::Stop { name: "web" });
        // Not named again: `initctl` says `initctl: web: ` before it.
        assert!(
            matches!(replies.as_slice(), [Reply::Error(e)]
                if e.message == "processes survived SIGKILL (see the kernel log)"),
            "{replies:?}"
        );
        // Gone later after all (stuck in the kernel, then not): a stop
        // succeeds again.
        root.file("units/web/cgroup.events", "populated 0\nfrozen 0\n");
        let replies = ask(&mut p, &path, Request::Stop { name: "web" });
        assert!(matches!(replies.as_slice(), [Reply::Ok]), "{replies:?}");
    }

    /// What a waiting client is told of its unit does not name it again
    /// (`initctl` says `initctl: web: ` before it: it printed `web: web
    /// failed`); a removed unit is named as a unit never there is.
    #[test]
    fn a_waiter_is_told_its_unit_once() {
        use super::{settled, Want};
        // What a waiting start is told of `web` (`text`) once its first
        // run exited with `code`.
        let told = |text: &str, code: i32| {
            let mut p = super::Pid1::new(None, 0, false);
            p.add_unit(crate::unit::parse("web", text).unwrap());
            p.sup.link().unwrap();
            p.fit_tables();
            step(&mut p, 0, Event::Boot);
            step(&mut p, 1, Event::spawned(0, NO_PID));
            let exit = crate::vocab::Exit::code(code);
            step(&mut p, 2, Event::Exited { pid: NO_PID, exit });
            let r = settled(&p.sup, Some(0), "web", Want::Started);
            r.unwrap().unwrap_err().message
        };
        assert_eq!(told("exec = /bin/x\nrestart = never\n", 1), "failed");
        let p = super::Pid1::new(None, 0, false);
        let e = settled(&p.sup, None, "web", Want::Started)
            .unwrap()
            .unwrap_err();
        assert_eq!(e.message, "no unit named `web` (removed by a reload)");
        // Exit 0 before READY=1 with no restart for it: stopped for good,
        // told at once (the client waited its 90 s for nothing).
        let text = "exec = /bin/x\nready = notify\nrestart = on-failure\n";
        assert_eq!(told(text, 0), "exited before it was ready");
    }

    /// A start stopped before it was ready (by hand, shed, a new unit's
    /// rejection) is told so; it was told that a dependency failed, as
    /// one whose dependency failed is.
    #[test]
    fn a_start_is_told_why_it_stopped() {
        use super::{settled, Want};
        let db = "exec = /bin/x\nrestart = never\n";
        let web = "exec = /bin/x\nready = notify\nafter = db\n";
        let mut p = super::super::tests::pid1_with(&[("db", db), ("web", web)]);
        let told = |p: &super::Pid1| {
            let r = settled(&p.sup, Some(1), "web", Want::Started);
            r.unwrap().unwrap_err().message
        };
        step(&mut p, 0, Event::Boot);
        step(&mut p, 1, Event::SpawnFailed { unit: 0 });
        assert_eq!(told(&p), "did not start (dependency failed)");
        step(&mut p, 2, Event::Start { unit: 0 });
        step(&mut p, 3, Event::spawned(0, 100));
        step(&mut p, 4, Event::Start { unit: 1 });
        step(&mut p, 5, Event::spawned(1, NO_PID));
        step(&mut p, 6, Event::Stop { unit: 1 });
        let exit = crate::vocab::Exit::Signal(15);
        step(&mut p, 7, Event::Exited { pid: NO_PID, exit });
        assert_eq!(told(&p), "stopped");
    }

    /// A running `web` whose `initctl stop` waits (its client `s`), its
    /// control socket in `sock`.
    fn stopping_web(sock: &crate::testutil::TempDir) -> (super::Pid1, UnixStream) {
        let mut p = super::super::tests::with_web();
        p.fit_tables();
        step(&mut p, 0, Event::Boot);
        step(&mut p, 1, Event::spawned(0, NO_PID));
        let path = sock.path().join("control");
        let uid = rustix::process::getuid().as_raw();
        p.control = Some(Server::bind(&path, uid).unwrap());
        let mut s = UnixStream::connect(&path).unwrap();
        let mut buf = [0u8; 256];
        let n = encode_request(&Request::Stop { name: "web" }, &mut buf).unwrap();
        s.write_all(&buf[..n]).unwrap();
        p.serve_control();
        p.tend_waiters();
        assert_eq!(replies(&mut s), vec![], "answered before the stop");
        (p, s)
    }

    /// A start (or a restart, or a reload that changes it) while a stop
    /// is on its way cancels the stop, as a start job cancels systemd's
    /// stop job: its client is told at once. It was never answered (the
    /// unit ran again, neither stopped nor failed), and `initctl` gave up
    /// after 90 s with "not stopped".
    #[test]
    fn a_stop_overtaken_by_a_start_is_answered() {
        let sock = crate::testutil::TempDir::new("pid1-stop-started-sock");
        let (mut p, mut s) = stopping_web(&sock);
        step(&mut p, 2, Event::Start { unit: 0 });
        p.tend_waiters();
        let told = replies(&mut s);
        assert!(
            matches!(told.as_slice(), [Reply::Error(e)]
                if e.message == "started again before it stopped"),
            "{told:?}"
        );
    }

    /// A waiting `stop` of a unit that a reload then removes goes on as
    /// the removal's stop: answered Ok once the unit is stopped and gone,
    /// not refused at the reload while it still stops.
    #[test]
    fn a_stop_overtaken_by_a_removal_is_answered_when_stopped() {
        let sock = crate::testutil::TempDir::new("pid1-stop-removed-sock");
        let (mut p, mut s) = stopping_web(&sock);
        let mut out = crate::supervisor::Actions::default();
        out.fit(4);
        p.sup
            .reload(2, &mut Vec::new().into_iter(), &|_| false, &mut out);
        assert_eq!(
            p.sup.slot(0).unwrap().retired,
            crate::supervisor::Retired::Leaving
        );
        p.tend_waiters();
        assert_eq!(replies(&mut s), vec![], "answered while still stopping");
        let exit = crate::vocab::Exit::Signal(15);
        step(&mut p, 3, Event::Exited { pid: NO_PID, exit });
        assert_eq!(p.sup.index("web"), None);
        p.tend_waiters();
        assert_eq!(replies(&mut s), vec![Reply::Ok]);
    }

    /// A unit a reload removed is listed while it stops, so `status NAME`
    /// shows it too (it said there was no such unit), saying why.
    #[test]
    fn a_unit_leaving_after_a_reload_has_a_detail() {
        let mut p = pid1_with(&[("web", "exec = /bin/true\n")]);
        step(&mut p, 0, Event::Boot);
        step(&mut p, 1, Event::spawned(0, NO_PID));
        let mut out = crate::supervisor::Actions::default();
        out.fit(4);
        p.sup
            .reload(2, &mut Vec::new().into_iter(), &|_| false, &mut out);
        let (units, _) = super::status(&p.sup, None, 0);
        assert_eq!(units.len(), 1);
        assert_eq!(units[0].name.as_str(), "web");
        let d = super::detail(&p.sup, &p.edges, None, "web", 0).unwrap();
        assert_eq!(d.status.state, units[0].state);
        assert_eq!(d.reason.as_str(), "removed by a reload: stopping");
        assert!(super::detail(&p.sup, &p.edges, None, "db", 0).is_err());
    }

    /// A start limit whose reboot waits for PID 1's first minute says in
    /// `status NAME` when it comes and what cancels it (the console said
    /// it once, within a second of boot); a stop by hand drops it, and
    /// the reason with it.
    #[test]
    fn a_held_start_limit_action_says_when_and_what_cancels_it() {
        let unit = "exec = /bin/false\nstart_limit = 1/1m\nstart_limit_action = reboot\n";
        let mut p = pid1_with(&[("vital", unit)]);
        step(&mut p, 0, Event::Boot);
        step(&mut p, 1, Event::spawned(0, NO_PID));
        let exit = crate::vocab::Exit::Code(1);
        step(&mut p, 300, Event::Exited { pid: NO_PID, exit });
        let reason = |p: &super::Pid1, now| {
            let d = super::detail(&p.sup, &p.edges, None, "vital", now).unwrap();
            d.reason.as_str().to_owned()
        };
        assert_eq!(
            reason(&p, 300),
            "start limit hit, rebooting in 59700ms (a stop or start by hand cancels)"
        );
        step(&mut p, 400, Event::Stop { unit: 0 });
        assert!(
            !reason(&p, 400).contains("rebooting"),
            "{}",
            reason(&p, 400)
        );
        assert_eq!(p.sup.shutting_down(), None);
    }

    /// A unit its memory pressure trigger stopped (`pressure_action =
    /// stop`) says so while it stops and once stopped, until it is
    /// started again; one stopped by hand says nothing of it.
    #[test]
    fn a_unit_stopped_by_its_pressure_limit_says_why() {
        let unit = "exec = /bin/true\npressure_limit = 20%/10s\npressure_action = stop\n";
        let mut p = pid1_with(&[("web", unit)]);
        step(&mut p, 0, Event::Boot);
        step(&mut p, 1, Event::spawned(0, NO_PID));
        let reason = |p: &super::Pid1| {
            super::detail(&p.sup, &p.edges, None, "web", 0)
                .unwrap()
                .reason
        };
        let (trigger, _w) = rustix::pipe::pipe().unwrap();
        let limit = crate::unit::PressureLimit {
            percent: 20,
            window: 10_000,
        };
        p.edges[0].pressure = Some((trigger, limit));
        p.on_pressure(0, false);
        assert_eq!(
            p.sup.slot(0).unwrap().rt.phase,
            crate::supervisor::Phase::Stopping
        );
        let said = "stopped: memory pressure over pressure_limit";
        assert_eq!(reason(&p).as_str(), said);
        let exit = crate::vocab::Exit::Signal(15);
        step(&mut p, 2, Event::Exited { pid: NO_PID, exit });
        assert_eq!(
            p.sup.slot(0).unwrap().rt.phase,
            crate::supervisor::Phase::Stopped
        );
        assert_eq!(reason(&p).as_str(), said);
        step(&mut p, 3, Event::Start { unit: 0 });
        // What `Action::Spawn`'s start clears (`start`).
        p.clear_for_spawn(0);
        step(&mut p, 4, Event::spawned(0, NO_PID));
        assert_eq!(reason(&p).as_str(), "");
        step(&mut p, 5, Event::Stop { unit: 0 });
        step(&mut p, 6, Event::Exited { pid: NO_PID, exit });
        assert_eq!(reason(&p).as_str(), "", "stopped by hand");
        // Stopped by pressure again, and by hand while that stop runs:
        // the operator's stop, not pressure's.
        step(&mut p, 7, Event::Start { unit: 0 });
        p.clear_for_spawn(0);
        step(&mut p, 8, Event::spawned(0, NO_PID));
        p.on_pressure(0, false);
        assert_eq!(reason(&p).as_str(), said);
        let sock = crate::testutil::TempDir::new("pid1-pressure-stop-sock");
        let path = sock.path().join("control");
        let uid = rustix::process::getuid().as_raw();
        p.control = Some(Server::bind(&path, uid).unwrap());
        let replies = ask(&mut p, &path, Request::Stop { name: "web" });
        assert!(replies.is_empty(), "answered while stopping: {replies:?}");
        assert_eq!(reason(&p).as_str(), "", "stopped by hand while stopping");
        step(&mut p, 9, Event::Exited { pid: NO_PID, exit });
        assert_eq!(reason(&p).as_str(), "", "stopped by hand");
    }

    /// `waiting for` names the units still awaited, not those already up;
    /// a list too long for the field ends in "..." (a name cut in the
    /// middle was dropped, and shorter ones after it kept).
    #[test]
    fn waiting_for_names_only_the_units_awaited() {
        let mut p = pid1_with(&[
            ("lo", "exec = /bin/true\n"),
            ("db", "exec = /bin/true\n"),
            ("app", "exec = /bin/true\nafter = lo db\n"),
        ]);
        step(&mut p, 0, Event::Boot);
        step(&mut p, 1, Event::spawned(0, NO_PID));
        let d = super::detail(&p.sup, &p.edges, None, "app", 0).unwrap();
        assert_eq!(d.reason.as_str(), "waiting for db");

        // Seven names of the longest do not fit: six whole, then "...".
        let long: Vec<String> = ('a'..='g')
            .map(|c| c.to_string().repeat(crate::vocab::NAME_MAX))
            .collect();
        let after = format!("exec = /bin/true\nafter = {} z\n", long.join(" "));
        let mut units: Vec<(&str, &str)> = long
            .iter()
            .map(|n| (n.as_str(), "exec = /bin/true\n"))
            .collect();
        units.extend([("z", "exec = /bin/true\n"), ("app", after.as_str())]);
        let mut p = pid1_with(&units);
        step(&mut p, 0, Event::Boot);
        let d = super::detail(&p.sup, &p.edges, None, "app", 0).unwrap();
        let six = long.get(..6).unwrap().join(" ");
        assert_eq!(d.reason.as_str(), format!("waiting for {six} ..."));
    }

    /// On the host (no `root`) too, no passwd file: `daemon` (uid 1 in
    /// the host's files) taken for what its program runs as, and while
    /// it does not run, for its name.
    #[test]
    fn the_confinement_line_reads_no_passwd_file_of_the_host_either() {
        let mut def =
            crate::unit::parse("d", "exec = /bin/true\nuser = daemon\nnamespaces = none\n")
                .unwrap();
        assert!(!super::runs_as_root(&def, 0), "not running: by its name");
        let me = std::process::id();
        let root = rustix::process::getuid().is_root();
        assert_eq!(super::runs_as_root(&def, me), root, "running: its uid");
        def.seldom.user = Some(crate::unit::IdSpec::Name("root".try_into().unwrap()));
        assert!(super::runs_as_root(&def, 0));
    }

    /// The confinement line's capabilities for a named `user` in a unit's
    /// `root`: PID 1 does not read the root's passwd file (a mount that
    /// hangs would stall it). While the unit does not run the name says
    /// it, even for `toor`, uid 0 there; while it runs, the uid its
    /// program has (docs/initctl.md says so).
    #[test]
    fn the_confinement_line_reads_no_file_of_a_units_root_but_proc() {
        let img = crate::testutil::TempDir::new("queries-toor");
        img.file(
            "etc/passwd",
            "toor:x:0:0::/:/bin/sh\nwww:x:33:33::/:/bin/sh\n",
        );
        let root = img.path().display().to_string();
        let unit = |user: &str| format!("exec = /bin/true\nroot = {root}\nuser = {user}\n");
        let (toor, www) = (unit("toor"), unit("www"));
        let p = pid1_with(&[("a", toor.as_str()), ("b", www.as_str())]);
        let caps = |name: &str| {
            let d = super::detail(&p.sup, &p.edges, None, name, 0).unwrap();
            let line = d.confinement.as_str().to_owned();
            line.split(", ")
                .find_map(|f| f.strip_prefix("capabilities ").map(str::to_owned))
                .unwrap()
        };
        assert_eq!(caps("a"), "none");
        assert_eq!(caps("b"), "none");
        // Running, it is what its program runs as (this test's uid, root
        // in CI; with a PID namespace, the reaper's child's).
        let mut toor = p.sup.slot(0).unwrap().def.clone();
        toor.namespaces = crate::unit::Namespaces::NONE;
        let me = std::process::id();
        let root = rustix::process::getuid().is_root();
        assert_eq!(super::runs_as_root(&toor, me), root);
        if !root {
            return;
        }
        let mut reaper = std::process::Command::new("/bin/sh")
            .args([
                "-c",
                "setpriv --reuid=65534 --regid=65534 --clear-groups sleep 30 & wait",
            ])
            .spawn()
            .unwrap();
        let pid = reaper.id();
        let started = std::time::Instant::now();
        while super::running_uid(pid, true) != Some(65534) && started.elapsed().as_secs() < 5 {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let seen = (
            super::running_uid(pid, true),
            super::running_uid(pid, false),
        );
        let _ = std::process::Command::new("pkill")
            .args(["-P", &pid.to_string()])
            .status();
        let _ = reaper.kill();
        let _ = reaper.wait();
        assert_eq!(seen, (Some(65534), Some(0)));
    }

    /// `initctl poweroff` during a reboot is refused, not answered `ok`
    /// while the machine goes on to reboot; the same kind again is ok.
    /// (`web` stays stopping: its pid is nobody's, so the final sequence,
    /// which signals every process, is never reached.)
    #[test]
    fn another_shutdown_during_one_is_refused() {
        use crate::vocab::ShutdownKind;
        let mut p = pid1_with(&[("web", "exec = /bin/true\n")]);
        step(&mut p, 0, Event::Boot);
        step(&mut p, 1, Event::spawned(0, NO_PID));
        let sock = crate::testutil::TempDir::new("pid1-shutdown-twice");
        let path = sock.path().join("control");
        let uid = rustix::process::getuid().as_raw();
        p.control = Some(Server::bind(&path, uid).unwrap());
        let first = ask(&mut p, &path, Request::Shutdown(ShutdownKind::Reboot));
        assert!(matches!(first.as_slice(), [Reply::Ok]), "{first:?}");
        let again = ask(&mut p, &path, Request::Shutdown(ShutdownKind::Reboot));
        assert!(matches!(again.as_slice(), [Reply::Ok]), "{again:?}");
        let other = ask(&mut p, &path, Request::Shutdown(ShutdownKind::Poweroff));
        assert_eq!(p.sup.shutting_down(), Some(ShutdownKind::Reboot));
        match other.as_slice() {
            [Reply::Error(e)] => assert_eq!(e.to_string(), "already rebooting"),
            r => panic!("poweroff answered {r:?} while the machine goes on to reboot"),
        }
        assert_eq!(
            p.ask_shutdown(ShutdownKind::Halt, format_args!("signal 10 from pid 7")),
            Err(ShutdownKind::Reboot)
        );
    }
}
