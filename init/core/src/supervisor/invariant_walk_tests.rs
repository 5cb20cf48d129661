//! Random walks that check what the steps mean, not only their bounds:
//! no double start, no start after `initctl stop`, no start before the
//! `after` units are ready, no unit stuck without a timer or a start in
//! flight, a killed cgroup's `after` units held in a shutdown until
//! `Drained`, every `Signal` to the current pid, `Finish` only when
//! nothing is active or draining. `WALK_SEEDS=N` runs N seeds.
use super::walk_tests::{random_def, shut_down, Rng, Walker};
use super::*;

struct W {
    rng: Rng,
    sup: Supervisor,
    now: Millis,
    next_pid: u32,
    outstanding: std::vec::Vec<bool>,
    hand_stopped: std::vec::Vec<bool>,
    /// Each unit's `restarts` when the shutdown began.
    restarts_at: std::vec::Vec<u32>,
    finished: bool,
    trace: std::vec::Vec<String>,
}

impl W {
    fn fail(&self, msg: String) -> ! {
        let tail: std::vec::Vec<_> = self.trace.iter().rev().take(25).rev().collect();
        panic!(
            "{msg}\ntrace:\n{}",
            tail.iter()
                .map(|s| s.as_str())
                .collect::<std::vec::Vec<_>>()
                .join("\n")
        );
    }

    fn grow(&mut self) {
        let n = self.sup.len();
        self.outstanding.resize(n, false);
        self.hand_stopped.resize(n, false);
    }

    fn check(&mut self, out: &Actions, what: &str) {
        self.grow();
        self.trace.push(format!("{what} -> {:?}", out.as_slice()));
        let shutting = self.sup.shutting_down().is_some();
        for a in out.iter() {
            match *a {
                Action::Spawn(u) => {
                    let ui = usize::from(u);
                    if self.outstanding[ui] {
                        self.fail(format!("double start of {u} ({what})"));
                    }
                    if self.hand_stopped[ui] {
                        self.fail(format!("start of {u} after initctl stop ({what})"));
                    }
                    self.outstanding[ui] = true;
                    let s = self.sup.slot(u).unwrap();
                    for &d in s.rt.deps.iter() {
                        let dp = self.sup.slot(d).unwrap().rt.phase;
                        if !dp.lets_dependents_start() {
                            self.fail(format!("{u} started while its dep {d} is {dp:?} ({what})"));
                        }
                    }
                }
                Action::Announce(u, Note::Stopped) => {
                    // pid1: cancel_exec
                    self.outstanding[usize::from(u)] = false;
                }
                Action::Finish(_) => {
                    self.finished = true;
                    for (i, s) in self.sup.slots().enumerate() {
                        if s.rt.phase.active() || s.rt.draining {
                            self.fail(format!(
                                "Finish while unit {i} is {:?} draining {} ({what})",
                                s.rt.phase, s.rt.draining
                            ));
                        }
                    }
                }
                _ => {}
            }
        }
        let _ = self.sup.next_deadline();
        for u in 0..self.sup.len() {
            let s = self.sup.slot(u as u16).unwrap();
            if s.retired == Retired::Free {
                continue;
            }
            let r = &s.rt;
            match r.phase {
                Phase::Starting if r.pid == 0 && !self.outstanding[u] && !self.finished => self
                    .fail(format!(
                        "{u} Starting with no pid and no start in flight ({what})"
                    )),
                Phase::Starting
                    if r.pid != 0 && s.def.start_timeout != 0 && r.deadline.is_none() =>
                {
                    self.fail(format!("{u} Starting with no timer ({what})"))
                }
                // In a shutdown the restart is not coming: no timer.
                Phase::Backoff if r.deadline.is_none() && !shutting => {
                    self.fail(format!("{u} Backoff with no timer ({what})"))
                }
                Phase::Stopping if r.pid == 0 => {
                    self.fail(format!("{u} Stopping with no pid ({what})"))
                }
                Phase::Running if r.pid == 0 => {
                    self.fail(format!("{u} Running with no pid ({what})"))
                }
                Phase::Waiting if !shutting && !r.want => {
                    self.fail(format!("{u} Waiting unwanted ({what})"))
                }
                _ => {}
            }
            // A verdict `initctl reload` waits for (`on_probation`) is on
            // its way: a start, a run's hold, or a stop to come back from.
            if r.probation && !s.judged_when_started() && !shutting && s.retired == Retired::No {
                let coming = match r.phase {
                    Phase::Waiting | Phase::Starting | Phase::Stopping => true,
                    Phase::Running => r.deadline.is_some(),
                    _ => false,
                };
                if !coming {
                    self.fail(format!(
                        "{u} on probation {:?} pid {} with no verdict coming ({what})",
                        r.phase, r.pid
                    ));
                }
            }
            if !shutting && r.phase == Phase::Waiting && r.want && s.retired == Retired::No {
                let ready = s.rt.deps.iter().all(|&d| {
                    self.sup
                        .slot(d)
                        .is_none_or(|x| x.rt.phase.lets_dependents_start())
                });
                if ready {
                    self.fail(format!("{u} Waiting with deps ready, not started ({what})"));
                }
            }
            let stale = match r.phase {
                Phase::Waiting | Phase::Stopped | Phase::Exited => r.deadline.is_some(),
                // A start limit's action held until the floor.
                Phase::Failed => {
                    r.deadline.is_some() && s.def.start_limit_action.shutdown().is_none()
                }
                Phase::Starting => r.pid == 0 && r.deadline.is_some(),
                _ => false,
            };
            if stale && !self.finished {
                self.fail(format!(
                    "{u} {:?} pid {} with a stale deadline {:?} ({what})",
                    r.phase, r.pid, r.deadline
                ));
            }
            if r.watchdog_at.is_some()
                && r.phase != Phase::Running
                && r.phase != Phase::Stopped
                && r.phase != Phase::Failed
            {
                // lazily dropped at the next tick; a new run must not inherit it
                if r.phase == Phase::Starting {
                    self.fail(format!("{u} Starting with an old watchdog ({what})"));
                }
            }
            let announced = out.iter().rev().find_map(|a| match *a {
                Action::Announce(x, n) if usize::from(x) == u => Some(n),
                _ => None,
            });
            let announced = matches!(
                announced,
                Some(Note::Died {
                    restart_in: Some(_),
                    ..
                }) | Some(Note::SpawnFailed {
                    restart_in: Some(_),
                }) | Some(Note::StartTimeout {
                    restart_in: Some(_),
                }) | Some(Note::WatchdogTimeout {
                    restart_in: Some(_),
                })
            );
            if announced
                && !shutting
                && !matches!(
                    r.phase,
                    Phase::Backoff | Phase::Waiting | Phase::Starting | Phase::Running
                )
            {
                self.fail(format!(
                    "{u} announced a restart but is {:?} ({what})",
                    r.phase
                ));
            }
            // A cgroup killed in a shutdown holds its `after` units up
            // until PID 1 says it is empty, whatever killed it.
            let killed = out.contains(&Action::KillCgroup(u as u16));
            if shutting && killed && !r.phase.active() && !r.draining {
                self.fail(format!(
                    "{u} killed in a shutdown, {:?}, not draining ({what})",
                    r.phase
                ));
            }
            // (From the step after the one the shutdown began in: that
            // step may take a due restart first.)
            let since = self.restarts_at.get(u).copied().unwrap_or(u32::MAX);
            if shutting && r.phase == Phase::Waiting && r.restarts > since {
                self.fail(format!("{u} restart counted in a shutdown ({what})"));
            }
            if r.restart_pending && !matches!(r.phase, Phase::Stopping) {
                self.fail(format!("{u} restart_pending in {:?} ({what})", r.phase));
            }
        }
    }

    fn step(&mut self, ev: Event) {
        if self.sup.shutting_down().is_none() {
            // Taken after the step the shutdown begins in.
            self.restarts_at.clear();
        } else if self.restarts_at.is_empty() {
            self.restarts_at = (0..self.sup.len() as u16)
                .map(|u| self.sup.slot(u).map_or(u32::MAX, |s| s.rt.restarts))
                .collect();
        }
        let mut out = Actions::for_units(self.sup.len());
        self.sup.step(self.now, ev, &mut out);
        let what = format!("t={} {ev:?}", self.now);
        self.check(&out, &what);
        let mut spawned: std::vec::Vec<u16> = vec![];
        for a in out.iter() {
            match *a {
                Action::Spawn(u) => spawned.push(u),
                Action::KillCgroup(u) | Action::Signal { unit: u, .. } if spawned.contains(&u) => {
                    self.fail(format!(
                        "kill/signal of {u} after its spawn in one step ({what})"
                    ))
                }
                Action::Signal { unit, pid, .. } => {
                    let p = self.sup.slot(unit).unwrap().rt.pid;
                    if p != pid {
                        self.fail(format!(
                            "signal to {pid} for {unit} whose pid is {p} ({what})"
                        ));
                    }
                }
                _ => {}
            }
            if let Action::Verdict { unit, good: false } = *a {
                let good = match self.rng.chance(50) {
                    true => self.sup.slot(unit).map(|s| s.def.clone()),
                    false => None,
                };
                let mut gate = Actions::for_units(self.sup.len());
                self.sup.revert(self.now, unit, good, &mut gate);
                self.check(&gate, &format!("revert {unit}"));
                for b in gate.iter() {
                    match *b {
                        Action::Spawn(u) => spawned.push(u),
                        Action::KillCgroup(u) | Action::Signal { unit: u, .. }
                            if spawned.contains(&u) =>
                        {
                            self.fail(format!(
                                "kill/signal of {u} after its spawn in revert ({what})"
                            ))
                        }
                        _ => {}
                    }
                }
            }
        }
    }

    fn unit(&mut self) -> u16 {
        self.rng.below(self.sup.len() as u64) as u16
    }

    fn answer(&mut self) -> bool {
        let c: std::vec::Vec<usize> = (0..self.outstanding.len())
            .filter(|&u| self.outstanding[u])
            .collect();
        if c.is_empty() {
            return false;
        }
        let u = c[self.rng.below(c.len() as u64) as usize];
        self.outstanding[u] = false;
        let waited = self
            .sup
            .slot(u as u16)
            .is_some_and(|s| s.rt.phase == Phase::Starting && s.rt.pid == 0);
        if waited {
            if self.rng.chance(85) {
                self.next_pid += 1;
                self.step(Event::spawned(u as u16, self.next_pid));
            } else {
                self.step(Event::SpawnFailed { unit: u as u16 });
            }
        }
        true
    }

    fn one(&mut self, names: &[String]) {
        match self.rng.below(100) {
            0..=24 => {
                self.answer();
            }
            25..=44 => {
                let u = self.unit();
                let pid = self.sup.slot(u).map_or(0, |s| s.rt.pid);
                let exit = match self.rng.below(4) {
                    0 | 1 => Exit::Code(0),
                    2 => Exit::Code(1),
                    _ => Exit::Signal(9),
                };
                // Now and then the end of a run its reaper restarted in
                // place (PID 1 feeds it for the unit, not the pid).
                if pid != 0 && self.rng.chance(15) {
                    self.step(Event::Relaunched { unit: u, exit });
                } else if pid != 0 {
                    self.step(Event::Exited { pid, exit });
                }
            }
            45..=62 => {
                let next = self.sup.next_deadline();
                self.now = match next {
                    Some(t) if self.rng.chance(70) => t.max(self.now),
                    _ => self.now + self.rng.below(700),
                };
                self.step(Event::Tick);
            }
            63..=70 => {
                let unit = self.unit();
                self.step(Event::Ready { unit });
            }
            71..=73 => {
                let unit = self.unit();
                self.step(Event::Watchdog { unit });
            }
            74..=78 => {
                let unit = self.unit();
                self.hand_stopped[usize::from(unit)] = false;
                // Also the calm's start of a shed unit.
                match self.rng.chance(30) {
                    true => self.step(Event::Unshed { unit }),
                    false => self.step(Event::Start { unit }),
                }
            }
            79..=84 => {
                let unit = self.unit();
                if self.sup.shutting_down().is_none() {
                    self.hand_stopped[usize::from(unit)] = true;
                }
                // Also shedding's, which keeps a unit's probation.
                match self.rng.chance(30) {
                    true => self.step(Event::Shed { unit }),
                    false => self.step(Event::Stop { unit }),
                }
            }
            85..=89 => {
                let unit = self.unit();
                self.hand_stopped[usize::from(unit)] = false;
                // Also the `pressure_action`'s, which keeps the failures.
                let by_hand = self.rng.chance(50);
                self.step(Event::Restart { unit, by_hand });
            }
            90..=96 => self.reload(names),
            97 => self.step(Event::Boot),
            _ => {
                if self.rng.chance(20) {
                    self.step(Event::Shutdown(ShutdownKind::Reboot));
                }
            }
        }
    }

    fn reload(&mut self, names: &[String]) {
        let mut defs = std::vec::Vec::new();
        let mut taken = std::vec::Vec::new();
        for i in 0..names.len() {
            if self.rng.chance(75) {
                taken.push(i);
            }
        }
        for &i in &taken {
            // Half the time keep the current definition (unchanged).
            let cur = self
                .sup
                .index(&names[i])
                .and_then(|u| self.sup.slot(u))
                .map(|s| s.def.clone());
            let d = match cur {
                Some(c) if self.rng.chance(50) => c,
                _ => random_def(&mut self.rng, i, names, &|j| taken.contains(&j)),
            };
            defs.push(d);
        }
        // A reload can start a hand-stopped unit only if its def changed;
        // be lenient: clear for every unit whose def changes.
        for d in &defs {
            if let Some(u) = self.sup.index(&d.name) {
                if self.sup.slot(u).is_some_and(|s| s.def != *d) {
                    self.hand_stopped[usize::from(u)] = false;
                }
            }
        }
        let before: std::vec::Vec<(String, Retired)> = (0..self.sup.len() as u16)
            .map(|u| {
                let s = self.sup.slot(u).unwrap();
                (s.def.name.to_string(), s.retired)
            })
            .collect();
        let mut out = Actions::for_units(self.sup.len() + defs.len());
        let sum = self
            .sup
            .reload(self.now, &mut defs.into_iter(), &|_| false, &mut out);
        self.grow();
        for &u in &sum.new_slots {
            self.hand_stopped[usize::from(u)] = false;
        }
        for (u, (name, r)) in before.iter().enumerate() {
            let s = self.sup.slot(u as u16).unwrap();
            if s.def.name.as_str() != name || (*r != Retired::No && s.retired == Retired::No) {
                self.hand_stopped[u] = false;
            }
        }
        self.check(&out, "reload");
    }
}

impl Walker for W {
    fn sup(&self) -> &Supervisor {
        &self.sup
    }
    fn feed(&mut self, ev: Event) {
        self.step(ev)
    }
    fn answer_starts(&mut self) {
        while self.answer() {}
    }
    fn coin(&mut self, percent: u64) -> bool {
        self.rng.chance(percent)
    }
    fn finished(&self) -> bool {
        self.finished
    }
    fn clock(&mut self) -> &mut Millis {
        &mut self.now
    }
}

#[test]
fn random_walks_keep_the_supervisors_invariants() {
    let seeds: u64 = std::env::var("WALK_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    for seed in 1..=seeds {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let n = 1 + rng.below(8) as usize;
        let names: std::vec::Vec<String> = (0..n + 2).map(|i| format!("u{i}")).collect();
        let mut sup = Supervisor::new();
        for i in 0..n {
            sup.add(random_def(&mut rng, i, &names, &|_| true)).unwrap();
        }
        sup.link().unwrap();
        let mut w = W {
            rng,
            sup,
            now: 1000,
            next_pid: 100,
            outstanding: vec![],
            hand_stopped: vec![],
            restarts_at: vec![],
            finished: false,
            trace: vec![],
        };
        w.grow();
        w.trace.push(format!("seed {seed}"));
        w.step(Event::Boot);
        for _ in 0..1500 {
            if w.finished {
                break;
            }
            w.one(&names);
        }
        if !w.finished && !shut_down(&mut w) {
            w.fail("no Finish".into());
        }
    }
}
