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
        // A unit a reload removed, still stopping (`status` lists it): a
        // stop of it waits for the removal's, as one asked before it does.
        let leaving = want == Want::Stopped
            && self.sup.index(&name).is_none()
            && self.sup.retired_index(&name, Retired::Leaving).is_some();
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
            Err(_) if leaving => answer_of(&self.sup, &self.edges, &name, want),
            Err(e) => Some(Err(e)),
            Ok(ev) => {
                // The operator decides now: a shed unit is no longer
                // started again (or stopped) by the pressure watch, nor
                // is a unit its own pressure stopped, or one the health
                // gate put back, said to be so. A stop ends probation:
                // nothing is put back.
                if let Some(e) = self
                    .sup
                    .index(&name)
                    .and_then(|u| self.edges.get_mut(usize::from(u)))
                {
                    e.shed = false;
                    e.set_pressure_stopped(false);
                    e.clear_gate(want == Want::Stopped);
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
    // The gate's verdict while what it left runs (or a new unit stays
    // stopped); a later failure of the good definition is its own.
    let failed = matches!(slot.rt.phase, Phase::Backoff | Phase::Failed);
    if let Some(r) = edge.and_then(|e| e.rejected()).filter(|_| !failed) {
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
mod tests;
