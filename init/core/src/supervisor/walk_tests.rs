//! Random walks: small tables of varied units fed thousands of events in
//! any order PID 1 can feed them (a start's answer late or never, exits
//! of units and of strangers, commands, reloads, a bad verdict's
//! revert, shutdown), checking after every step the bounds PID 1 sizes
//! its buffers by. A refused action is a start or a stop lost for good,
//! and no other test would notice one. Each walk ends in a shutdown,
//! which must come to its `Finish`.

use super::*;
use crate::unit::StartLimit;

/// xorshift64*: the walks are the same on every run.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub(super) fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// What `shut_down` needs of a walk.
pub(super) trait Walker {
    fn sup(&self) -> &Supervisor;
    fn feed(&mut self, ev: Event);
    /// Every start still waiting for its answer answered.
    fn answer_starts(&mut self);
    fn coin(&mut self, percent: u64) -> bool;
    fn finished(&self) -> bool;
    fn clock(&mut self) -> &mut Millis;
}

/// Shut down and answer as PID 1 would (starts, exits, timers, some
/// cgroups drained a turn later than others) until the supervisor says
/// `Finish`: a shutdown always ends. False if it did not.
pub(super) fn shut_down(w: &mut impl Walker) -> bool {
    w.feed(Event::Shutdown(ShutdownKind::Poweroff));
    for _ in 0..200 {
        if w.finished() {
            return true;
        }
        w.answer_starts();
        let pids: std::vec::Vec<u32> = w
            .sup()
            .slots()
            .map(|s| s.rt.pid)
            .filter(|&p| p != 0)
            .collect();
        for pid in pids {
            w.feed(Event::Exited {
                pid,
                exit: Exit::Signal(15),
            });
        }
        let drained: std::vec::Vec<u16> = (0..w.sup().len() as u16)
            .filter(|&u| w.sup().slot(u).is_some_and(|s| s.rt.draining))
            .collect();
        for unit in drained {
            if w.coin(70) {
                w.feed(Event::Drained { unit });
            }
        }
        if let Some(t) = w.sup().next_deadline() {
            let now = w.clock();
            *now = t.max(*now);
        }
        w.feed(Event::Tick);
    }
    w.finished()
}

/// Unit `i`, its `after` only on units before it that `there` says are
/// configured with it: no cycles and no missing name, as the loader ensures.
pub(super) fn random_def(
    rng: &mut Rng,
    i: usize,
    names: &[std::string::String],
    there: &dyn Fn(usize) -> bool,
) -> UnitDef {
    let mut d = UnitDef::with_defaults(&names[i]);
    d.exec.push("/bin/svc").unwrap();
    d.kind = match rng.below(4) {
        0 => Kind::Oneshot,
        _ => Kind::Service,
    };
    d.restart = match rng.below(3) {
        0 => Restart::Always,
        1 => Restart::OnFailure,
        _ => Restart::Never,
    };
    d.restart_delay = [0, 0, 100, 1000][rng.below(4) as usize];
    d.ready = match rng.below(4) {
        0 => Ready::Notify,
        1 => Ready::SdNotify,
        _ => Ready::Started,
    };
    if rng.chance(30) {
        d.start_timeout = 500;
    }
    d.stop_timeout = [0, 100, 2000][rng.below(3) as usize];
    if rng.chance(25) {
        d.seldom.start_limit = Some(StartLimit {
            count: 1 + rng.below(3) as u16,
            window: 1000,
        });
    }
    if rng.chance(20) {
        d.seldom.watchdog = Some(300);
    }
    if rng.chance(10) {
        d.critical = true;
    }
    for (j, name) in names.iter().enumerate().take(i) {
        if rng.chance(25) && there(j) {
            let _ = d.after.push(name);
        }
    }
    d
}

impl Walker for Walk {
    fn sup(&self) -> &Supervisor {
        &self.sup
    }
    fn feed(&mut self, ev: Event) {
        self.step(ev)
    }
    fn answer_starts(&mut self) {
        self.answer_all()
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

/// The walk's view of the edge: starts waiting for their exec handshake.
struct Walk {
    rng: Rng,
    sup: Supervisor,
    now: Millis,
    next_pid: u32,
    pending: std::vec::Vec<u16>,
    /// Largest number of actions one step gave one unit.
    most_per_unit: usize,
    steps: usize,
    finished: bool,
}

impl Walk {
    /// The bounds, for one buffer of actions; `spawns` counts the starts
    /// of a step with those of the reverts PID 1 performs within it.
    fn check(&mut self, out: &Actions, what: &str, spawns: &mut [usize]) {
        assert_eq!(
            out.refused(),
            0,
            "{what}: actions refused with {} units: {:?}",
            self.sup.len(),
            out.as_slice()
        );
        let mut per = std::vec![0usize; self.sup.len()];
        for a in out.iter() {
            let u = match *a {
                Action::Spawn(u) => {
                    spawns[usize::from(u)] += 1;
                    self.pending.push(u);
                    u
                }
                Action::Signal { unit, .. }
                | Action::KillCgroup(unit)
                | Action::Announce(unit, _)
                | Action::Verdict { unit, .. } => unit,
                Action::Finish(_) => {
                    self.finished = true;
                    continue;
                }
            };
            per[usize::from(u)] += 1;
        }
        // PID 1's event queue holds a Spawned or SpawnFailed per start:
        // one a unit a step at most, or it could overflow (and a second
        // start kills the first).
        assert!(spawns.iter().all(|&s| s <= 1), "{what}: {out:?}");
        let most = per.iter().copied().max().unwrap_or(0);
        self.most_per_unit = self.most_per_unit.max(most);
        // The bound `max_actions` is built on.
        assert!(most <= 4, "{what}: {most} actions for one unit: {out:?}");
        let _ = self.sup.next_deadline();
        self.steps += 1;
    }

    fn step(&mut self, ev: Event) {
        let shutting = self.sup.shutting_down().is_some();
        let mut out = Actions::for_units(self.sup.len());
        self.sup.step(self.now, ev, &mut out);
        let mut spawns = std::vec![0usize; self.sup.len()];
        self.check(&out, &std::format!("{ev:?}"), &mut spawns);
        // Nothing starts once a shutdown has begun.
        assert!(
            !shutting || !out.iter().any(|a| matches!(a, Action::Spawn(_))),
            "{ev:?} in a shutdown: {out:?}"
        );
        // A bad verdict: PID 1 puts the unit's old definition back (or
        // stops a new unit) as it comes to that action, before the
        // step's later ones: another step, with a buffer of its own.
        for a in out.iter() {
            if let Action::Verdict { unit, good: false } = *a {
                let good = match self.rng.chance(50) {
                    true => self.sup.slot(unit).map(|s| s.def.clone()),
                    false => None,
                };
                let mut gate = Actions::for_units(self.sup.len());
                self.sup.revert(self.now, unit, good, &mut gate);
                self.check(
                    &gate,
                    &std::format!("{ev:?} {out:?}, then revert"),
                    &mut spawns,
                );
            }
        }
    }

    fn random_unit(&mut self) -> u16 {
        self.rng.below(self.sup.len() as u64) as u16
    }

    /// One event PID 1 could feed now.
    fn one(&mut self, names: &[std::string::String]) {
        match self.rng.below(100) {
            // A start's exec handshake ends: the supervisor hears of it
            // only if it still waits for that start, as in PID 1.
            0..=24 if !self.pending.is_empty() => {
                let k = self.rng.below(self.pending.len() as u64) as usize;
                let u = self.pending.swap_remove(k);
                let waited = self
                    .sup
                    .slot(u)
                    .is_some_and(|s| s.rt.phase == Phase::Starting && s.rt.pid == 0);
                if waited {
                    if self.rng.chance(85) {
                        self.next_pid += 1;
                        self.step(Event::spawned(u, self.next_pid));
                    } else {
                        self.step(Event::SpawnFailed { unit: u });
                    }
                }
            }
            0..=44 => {
                let u = self.random_unit();
                let pid = self.sup.slot(u).map_or(0, |s| s.rt.pid);
                let exit = match self.rng.below(5) {
                    0 => Exit::Code(0),
                    1 => Exit::Code(1),
                    2 => Exit::Signal(9),
                    3 => Exit::Signal(15),
                    _ => Exit::OomKill,
                };
                // Now and then the end of a run its reaper restarted in
                // place (PID 1 feeds it for the unit, not the pid).
                if pid != 0 && self.rng.chance(15) {
                    self.step(Event::Relaunched { unit: u, exit });
                } else if pid != 0 {
                    self.step(Event::Exited { pid, exit });
                }
            }
            45..=49 => {
                // An orphan reparented to PID 1.
                let pid = 90_000 + self.rng.below(100) as u32;
                self.step(Event::Exited {
                    pid,
                    exit: Exit::Code(0),
                });
            }
            50..=64 => {
                // Time passes, to the next deadline or a little.
                let next = self.sup.next_deadline();
                self.now = match next {
                    Some(t) if self.rng.chance(70) => t.max(self.now),
                    _ => self.now + self.rng.below(700),
                };
                self.step(Event::Tick);
            }
            65..=71 => {
                let unit = self.random_unit();
                self.step(Event::Ready { unit });
            }
            72..=75 => {
                let unit = self.random_unit();
                self.step(Event::Watchdog { unit });
            }
            76..=80 => {
                let unit = self.random_unit();
                self.step(Event::Start { unit });
            }
            81..=85 => {
                let unit = self.random_unit();
                self.step(Event::Stop { unit });
            }
            86..=90 => {
                let unit = self.random_unit();
                // Also the `pressure_action`'s, which keeps the failures.
                let by_hand = self.rng.chance(50);
                self.step(Event::Restart { unit, by_hand });
            }
            91..=96 => self.reload(names),
            97 => self.step(Event::Boot),
            _ => {
                if self.rng.chance(20) {
                    self.step(Event::Shutdown(ShutdownKind::Reboot));
                }
            }
        }
    }

    /// Every start still waiting for its answer answered, as PID 1 would.
    fn answer_all(&mut self) {
        while let Some(u) = self.pending.pop() {
            let waited = self
                .sup
                .slot(u)
                .is_some_and(|s| s.rt.phase == Phase::Starting && s.rt.pid == 0);
            if waited {
                self.next_pid += 1;
                self.step(Event::spawned(u, self.next_pid));
            }
        }
    }

    /// A reload: some units changed, some removed, some added.
    fn reload(&mut self, names: &[std::string::String]) {
        let mut defs = std::vec::Vec::new();
        let mut taken = std::vec::Vec::new();
        for i in 0..names.len() {
            if self.rng.chance(75) {
                taken.push(i);
            }
        }
        for &i in &taken {
            let d = random_def(&mut self.rng, i, names, &|j| taken.contains(&j));
            defs.push(d);
        }
        let mut out = Actions::for_units(self.sup.len() + defs.len());
        let invalid = self.rng.chance(10).then(|| names[0].clone());
        self.sup.reload(
            self.now,
            &mut defs.into_iter(),
            &|n| invalid.as_deref() == Some(n),
            &mut out,
        );
        let mut spawns = std::vec![0usize; self.sup.len()];
        self.check(&out, "reload", &mut spawns);
    }
}

#[test]
fn random_walks_keep_the_bounds_pid1_relies_on_and_always_shut_down() {
    let mut most = 0;
    let mut steps = 0;
    for seed in 1..=300u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let n = 1 + rng.below(10) as usize;
        // More names than units: a reload may add some.
        let names: std::vec::Vec<std::string::String> =
            (0..n + 3).map(|i| std::format!("u{i}")).collect();
        let mut sup = Supervisor::new();
        for i in 0..n {
            sup.add(random_def(&mut rng, i, &names, &|_| true)).unwrap();
        }
        sup.link().unwrap();
        let mut w = Walk {
            rng,
            sup,
            now: 1000,
            next_pid: 100,
            pending: std::vec::Vec::new(),
            most_per_unit: 0,
            steps: 0,
            finished: false,
        };
        w.step(Event::Boot);
        for _ in 0..2000 {
            if w.finished {
                break;
            }
            w.one(&names);
        }
        if !w.finished {
            let done = shut_down(&mut w);
            assert!(
                done,
                "no Finish: {:?}",
                w.sup
                    .slots()
                    .map(|s| s.rt.phase)
                    .collect::<std::vec::Vec<_>>()
            );
        }
        most = most.max(w.most_per_unit);
        steps += w.steps;
    }
    // The walks reach the steps that give a unit the most actions.
    assert!(most >= 3, "at most {most} actions a unit in {steps} steps");
}
