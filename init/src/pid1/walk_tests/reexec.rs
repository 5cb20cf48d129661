//! A re-exec in the middle of a walk: PID 1's state handed over to a new
//! `Pid1` in this process as `reexec` hands it to the binary it execs
//! (`write_state`, the closers killed, every fd but those handed over
//! closed, `resume` and the steps of `begin` after it), or refused, which
//! must leave every unit as it was. docs/update.md: "Every unit keeps
//! running with the same PID".

use super::*;

/// What a re-exec must not change of a unit: its definition, its
/// supervisor's record (phase, pid, restarts, backoff, deadlines), and
/// what its edge carries over (the rare box's failure, last good
/// definition and rejection, the verdict, the keys not enforced, the
/// output ring, the fds handed over). Not carried, known: a pressure
/// stop's reason and an owed put-back (`rare::Rare`); some keys not
/// enforced (below).
pub(super) fn units_as_they_are(p: &Pid1) -> Vec<String> {
    (0..p.sup.len())
        .filter_map(|i| {
            let s = p.sup.slot(i as u16)?;
            let e = p.edges.get(i)?;
            // Not handed over (the state format stays): `Runtime`.
            let mut rt = s.rt.clone();
            (rt.ready_after, rt.ready_early, rt.draining) = (0, false, false);
            Some(format!(
                "{}: {:?} {:?}\n  def {:?}\n  error {:?} last good {:?} rejected {:?} \
                 verdict {:?} not enforced [{}] shed {} oom {}/{} pressure {} \
                 ring {}@{} fds {}{}{}",
                s.def.name,
                s.retired,
                rt,
                s.def,
                e.last_error(),
                e.last_good().map(|d| format!("{d:?}")),
                e.rejected(),
                e.verdict,
                // Worked out again by `take_over` from the definition and
                // the cgroup: a stopped unit's too, but a reload since its
                // last start may have changed its limits (the plain test:
                // `a_stopped_units_not_enforced_keys_survive_a_reexec`);
                // nor a run's that a reload's restart is to end (those of
                // the definition it was started with).
                if s.rt.pid != 0 && !s.rt.restart_pending {
                    e.not_enforced.to_string()
                } else {
                    String::new()
                },
                e.shed,
                e.oom_kills,
                e.oom_kills_at_spawn,
                e.pressure_events,
                e.log.len(),
                e.log.write_pos(),
                if e.log_rd.is_some() { "L" } else { "-" },
                if e.notify.is_some() { "N" } else { "-" },
                if e.exit_report.is_some() { "R" } else { "-" },
            ))
        })
        .collect()
}

impl Walk {
    /// `initctl reexec` of a candidate that fails its handshake, or the
    /// hand-over itself when PID 1 would make it (`refusal`): a refusal
    /// changes nothing; a hand-over changes no unit.
    pub(super) fn reexec(&mut self) -> String {
        // As `Pid1::reexec` does first: removed units' cgroups tried.
        if self.p.removing {
            self.p.forget_cgroups();
        }
        // Right after a start, its child may not have exec'd yet: the
        // wake-up's time to wait for it in place spent, its handshake
        // goes to the loop.
        let mut what = String::new();
        if self.rng.chance(40) {
            self.p.in_place_ns = 0;
            let name = self.name();
            let up = self.p.sup.index(name).and_then(|u| self.p.sup.slot(u));
            if up.is_some_and(|s| s.rt.pid != 0) {
                self.ask(Request::Restart { name });
                what = format!("restart {name}, ");
            } else {
                self.ask(Request::Start { name });
                what = format!("start {name}, ");
            }
        }
        let before = units_as_they_are(&self.p);
        if self.rng.chance(30) {
            self.ask(Request::Reexec { path: "/bin/false" });
            self.same_units(&before, "a refused re-exec");
            return format!("{what}reexec /bin/false (refused)");
        }
        if let Some(why) = self.p.refusal() {
            let said = format!("{what}reexec refused: {why}");
            self.same_units(&before, &said);
            return said;
        }
        let state = match self.p.write_state(true) {
            Ok(fd) => fd,
            Err((e, u)) => self.fail("reexec", format!("state not written: {e} ({u:?})")),
        };
        // Into a build of another state format, which adopts the running
        // units: by their pids, and in a cgroup by its processes too;
        // there, half the time, with no pid named (a text layer that
        // names none: found by their cgroups alone).
        let adopting = self.rng.chance(40);
        let unnamed = adopting && self.cg_root.is_some() && self.rng.chance(50);
        let state = if adopting {
            other_format(state, unnamed)
        } else {
            state
        };
        let runs: Vec<(String, u32)> = self
            .p
            .sup
            .slots()
            .filter(|s| s.rt.pid != 0)
            .map(|s| (s.def.name.as_str().to_owned(), s.rt.pid))
            .collect();
        crate::sys::passed::before_exec();
        // The exec: the fds handed over live on by number; every other
        // (close-on-exec) closes with the old PID 1.
        let mut old = std::mem::replace(&mut self.p, Pid1::new(None, now(), false));
        for e in old.edges.iter_mut() {
            std::mem::forget(e.log_rd.take());
            std::mem::forget(e.notify.take());
            std::mem::forget(e.exit_report.take());
        }
        drop(old);
        self.clients.clear();
        let mut p = Pid1::new(open_cgroups(self.cg_root.as_deref()), now(), false);
        p.resume(state, &units_opts(&self.dir.path().join("units")));
        p.fit_tables();
        into_loop(&mut p, &self.sock);
        p.rewatch();
        self.p = p;
        match adopting {
            true => self.adopted(&runs, unnamed),
            false => self.same_units(&before, "a re-exec"),
        }
        self.p.feed(Event::Boot);
        self.p.reap(None);
        self.p.arm_timer();
        format!("{what}reexec (origin {:?})", self.p.origin)
    }

    /// After an adoption: every unit that ran and is in the directory
    /// still (or again) runs, with the same pid, a service as running,
    /// and in a cgroup hierarchy with its cgroup known (its stop kills
    /// it there). The process of one that is not is left alone by PID
    /// 1: killed here, as an operator would. `unnamed` (the text layer
    /// named no pid), a process that had begun its exit is in no
    /// `cgroup.procs`: its unit is not adopted. A unit that did not run
    /// is not adopted either (nothing in its cgroup is PID 1's child).
    fn adopted(&self, runs: &[(String, u32)], unnamed: bool) {
        for s in self.p.sup.slots() {
            let ran = runs.iter().any(|(n, _)| n == s.def.name.as_str());
            if s.rt.pid != 0 && !ran {
                let msg = format!("{} did not run, adopted as {}", s.def.name, s.rt.pid);
                self.fail("an adoption", msg);
            }
        }
        for (name, pid) in runs {
            let u = self.p.sup.index(name);
            let Some(s) = u.and_then(|u| self.p.sup.slot(u)) else {
                let _ = crate::sys::signal::kill(*pid as i32, 9);
                continue;
            };
            // Its readiness cannot be known: a service counts as ready,
            // a oneshot runs on until it exits.
            let phase = match s.def.kind {
                crate::unit::Kind::Service => Phase::Running,
                crate::unit::Kind::Oneshot => Phase::Starting,
            };
            if unnamed && s.rt.pid == 0 && crate::testutil::exiting(*pid) {
                continue;
            }
            if s.rt.pid != *pid || s.rt.phase != phase {
                self.fail(
                    "an adoption",
                    format!(
                        "{name} ran as {pid}, adopted as {} {:?}",
                        s.rt.pid, s.rt.phase
                    ),
                );
            }
            let edge = u.and_then(|u| self.p.edges.get(usize::from(u)));
            if self.p.cg.is_some() && edge.is_none_or(|e| e.cgroup.is_none()) {
                self.fail("an adoption", format!("{name} adopted without its cgroup"));
            }
        }
    }

    fn same_units(&self, before: &[String], what: &str) {
        let after = units_as_they_are(&self.p);
        if after.len() != before.len() {
            self.fail(
                what,
                format!("{} units before, {}", before.len(), after.len()),
            );
        }
        for (b, a) in before.iter().zip(after.iter()) {
            if a != b {
                self.fail(what, format!("a unit changed:\nwas {b}\nnow {a}"));
            }
        }
    }
}

/// `state` as a build of the next state format would find it: its first
/// line (`wren-state F`) says F + 1, so the new PID 1 cannot read the
/// rest and adopts (`reexec::adopt`) from the text layer; `unnamed`,
/// with every unit's pid there 0.
fn other_format(state: OwnedFd, unnamed: bool) -> OwnedFd {
    use std::io::{Read, Seek, Write};
    let mut f = std::fs::File::from(state);
    let mut bytes = Vec::new();
    f.seek(std::io::SeekFrom::Start(0)).unwrap();
    f.read_to_end(&mut bytes).unwrap();
    let line = bytes.iter().position(|&c| c == b'\n').unwrap();
    let format = super::super::reexec::state_format() + 1;
    let mut out = format!("wren-state {format}").into_bytes();
    let end = bytes.windows(5).position(|w| w == b"\nend\n").unwrap() + 5;
    for l in std::str::from_utf8(&bytes[line..end])
        .unwrap()
        .split_inclusive('\n')
    {
        let mut f: Vec<&str> = l.split(' ').collect();
        if unnamed && f[0] == "unit" {
            f[2] = "0";
        }
        out.extend_from_slice(f.join(" ").as_bytes());
    }
    out.extend_from_slice(&bytes[end..]);
    let fd = rustix::fs::memfd_create("wren-state", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    std::fs::File::from(fd.try_clone().unwrap())
        .write_all(&out)
        .unwrap();
    fd
}
