//! A stand-in for PID 1's loop in host tests (here and in `ctl`): unit
//! state in plain vectors, and the loop's side of the exchange (execute a
//! `Command`, answer it, walk the waiters) done the way `pid1::queries`
//! does it.

use super::*;
use crate::log_ring::LogRing;
use crate::proto::UnitDetail;
use crate::proto::{UnitStatus, STATUS_PAGE};
use crate::unit::Limit;
use crate::vocab::{ShutdownKind, State};
use core::fmt::Write;

pub struct Unit {
    pub status: UnitStatus,
    pub log: Box<LogRing>,
    pub captured: bool,
}

#[derive(Default)]
pub struct Fake {
    pub units: Vec<Unit>,
    /// Whether every unit has settled as a waiter wants.
    pub settle: Option<Result<(), CtlError>>,
    pub actions: Vec<String>,
    pub shutdowns: Vec<ShutdownKind>,
    pub reload_lines: Vec<String>,
    pub reload_invalid: bool,
    /// The reload refused with this error when set.
    pub reload_refusal: Option<CtlError>,
    /// The reload answered with this plain error when set (a looker
    /// denied, too many clients).
    pub reload_error: Option<CtlError>,
    /// The reload's verdict lines and how many of them are rejections.
    pub verdict_lines: Vec<String>,
    pub verdict_rejected: usize,
    /// Verdicts asked for.
    pub verdicts: usize,
    /// `reexec` paths asked for; refused with this error when set.
    pub reexecs: Vec<String>,
    pub reexec_refusal: Option<CtlError>,
    pub info: crate::proto::InitInfo,
    pub cat_bytes: usize,
}

pub fn status(name: &str, state: State, pid: u32) -> UnitStatus {
    UnitStatus {
        name: crate::proto::truncated(name),
        state,
        pid,
        restarts: 1,
        memory_current: Some(1_300_000),
        memory_max: Some(Limit::Value(8 << 20)),
        uptime_ms: 192_000,
    }
}

impl Fake {
    pub fn with(names: &[&str]) -> Self {
        let mut f = Fake::default();
        for (i, n) in names.iter().enumerate() {
            f.units.push(Unit {
                status: status(n, State::Running, 100 + i as u32),
                log: Box::new(LogRing::default()),
                captured: true,
            });
        }
        f
    }

    pub fn unit(&mut self, name: &str) -> &mut Unit {
        self.units
            .iter_mut()
            .find(|u| u.status.name == name)
            .unwrap()
    }

    fn find(&self, name: &str) -> Result<&Unit, CtlError> {
        self.units
            .iter()
            .find(|u| u.status.name == name)
            .ok_or_else(|| CtlError::fmt(ErrCode::NoSuchUnit, format_args!("no unit {name}")))
    }

    fn log(&self, name: &str) -> Result<&LogRing, CtlError> {
        let u = self.find(name)?;
        if u.captured {
            Ok(&u.log)
        } else {
            Err(CtlError::code(ErrCode::NoLog))
        }
    }

    /// Executes one command and answers it, as PID 1's loop does.
    pub fn execute(&mut self, srv: &mut Server, id: ClientId, cmd: Command, now: u64) {
        match cmd {
            Command::Status { from } => {
                let from = usize::from(from);
                let mut units = heapless::Vec::new();
                for u in self.units.iter().skip(from).take(STATUS_PAGE) {
                    let _ = units.push(u.status.clone());
                }
                let end = from + units.len();
                let next = (end < self.units.len())
                    .then(|| u16::try_from(end).ok())
                    .flatten();
                srv.answer(id, &Reply::Status { units, next }, now);
            }
            Command::Detail(name) => {
                let detail = self.find(&name).map(|u| UnitDetail {
                    status: u.status.clone(),
                    last_exit: crate::proto::LastExit::Code(3),
                    oom_kills: 1,
                    pressure_avg10: Some(125),
                    pressure_events: 1,
                    not_enforced: crate::proto::truncated("memory.max"),
                    reason: crate::proto::truncated("restarting in 2s"),
                    // As long as a real unit's (about 100 bytes).
                    confinement: crate::proto::truncated(
                        "namespaces pid mount, user www, capabilities net_bind_service, \
                         no_new_privs, seccomp allow 212 calls, / read-only",
                    ),
                });
                srv.answer_detail(id, detail, self.log(&name).ok(), now);
            }
            Command::Start(name) => self.act(srv, id, name, Want::Started, now),
            Command::Stop(name) => self.act(srv, id, name, Want::Stopped, now),
            Command::Restart(name) => self.act(srv, id, name, Want::Restarted, now),
            Command::Shutdown(kind) => {
                srv.answer(id, &Reply::Ok, now);
                self.shutdowns.push(kind);
            }
            Command::Log { name, follow } => {
                let ring = self.log(&name);
                srv.answer_log(id, name.clone(), follow, ring, now);
            }
            Command::Cat(name) => {
                let mut text = Box::<Text>::default();
                let r = self.find(&name).map(|_| {
                    let _ = writeln!(text, "exec = /bin/{name}");
                    for _ in 0..self.cat_bytes {
                        if text.write_char('x').is_err() {
                            break;
                        }
                    }
                });
                match r {
                    Ok(()) => srv.answer(id, &Reply::Cat(text.unit_file()), now),
                    Err(e) => srv.answer(id, &Reply::Error(e), now),
                }
            }
            Command::Reload if self.reload_error.is_some() => {
                if let Some(e) = self.reload_error.clone() {
                    srv.answer(id, &Reply::Error(e), now);
                }
            }
            Command::Reload => {
                let mut text = Box::<Text>::default();
                for l in &self.reload_lines {
                    text.line(l);
                }
                let result = if let Some(e) = self.reload_refusal.clone() {
                    Err(e)
                } else if self.reload_invalid {
                    Err(CtlError::new(ErrCode::Invalid, "1 unit file invalid"))
                } else {
                    Ok(())
                };
                srv.answer(
                    id,
                    &Reply::Reload {
                        result,
                        report: text.report(),
                    },
                    now,
                );
            }
            Command::Verdict => {
                self.verdicts += 1;
                let mut text = Box::<Text>::default();
                for l in &self.verdict_lines {
                    text.line(l);
                }
                let result = match self.verdict_rejected {
                    0 => Ok(()),
                    n => Err(CtlError::fmt(
                        ErrCode::Failed,
                        format_args!("{n} unit(s) rejected or not started"),
                    )),
                };
                srv.answer(
                    id,
                    &Reply::Reload {
                        result,
                        report: text.report(),
                    },
                    now,
                );
            }
            Command::Info => srv.answer(id, &Reply::Info(self.info.clone()), now),
            Command::Reexec(path) => {
                if self.reexec_refusal.is_none() {
                    // The new init answers as one that took every unit over,
                    // in the same turn: a client asking at once sees it whole.
                    self.info.reexecs += 1;
                    let units = u32::try_from(self.units.len()).unwrap_or(u32::MAX);
                    self.info.origin = crate::proto::Origin::HandedOver { units };
                }
                self.reexecs.push(path.to_string());
                let reply = match self.reexec_refusal.clone() {
                    Some(e) => Reply::Error(e),
                    None => Reply::Ok,
                };
                srv.answer(id, &reply, now);
            }
        }
    }

    fn act(&mut self, srv: &mut Server, id: ClientId, name: Name, want: Want, now: u64) {
        if let Err(e) = self.find(&name) {
            return srv.answer(id, &Reply::Error(e), now);
        }
        let verb = match want {
            Want::Started => "start",
            Want::Stopped => "stop",
            Want::Restarted => "restart",
            Want::Verdict => "verdict",
        };
        self.actions.push(format!("{verb} {name}"));
        match self.settle.clone() {
            Some(r) => srv.answer(id, &result_reply(r), now),
            None => srv.wait_for(id, name, want),
        }
    }

    /// Answers settled waiters and feeds followers, as PID 1's loop does
    /// after every supervisor step.
    pub fn tend(&mut self, srv: &mut Server, now: u64) {
        for (id, w) in srv.waiters() {
            match w {
                Waiter::Settle { .. } => {
                    if let Some(r) = self.settle.clone() {
                        srv.answer(id, &result_reply(r), now);
                    }
                }
                Waiter::Follow { name } => srv.feed(id, self.log(&name), now),
            }
        }
    }
}

fn result_reply(r: Result<(), CtlError>) -> Reply<'static> {
    match r {
        Ok(()) => Reply::Ok,
        Err(e) => Reply::Error(e),
    }
}

/// The two halves of a loop turn, under the names the tests use.
impl Server {
    /// Serves every request that is ready, answering from `fake`.
    pub fn on_ready(&mut self, now: u64, fake: &mut Fake) {
        while let Some((id, cmd)) = self.poll(now) {
            fake.execute(self, id, cmd, now);
        }
    }

    /// After a supervisor step: settled waiters and followers.
    pub fn poll_waiters(&mut self, now: u64, fake: &mut Fake) {
        fake.tend(self, now);
    }
}
