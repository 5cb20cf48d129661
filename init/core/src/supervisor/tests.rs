use super::*;
use crate::unit::{LimitAction, StartLimit};
use crate::vocab::State;

pub(super) fn def(name: &str) -> UnitDef {
    let mut d = UnitDef::with_defaults(name);
    d.exec.push("/bin/true").unwrap();
    d
}

pub(super) fn after(mut d: UnitDef, deps: &[&str]) -> UnitDef {
    for n in deps {
        d.after.push(n).unwrap();
    }
    d
}

/// `name` with `start_limit = COUNT/WINDOW` and that `action`.
fn limited(name: &str, count: u16, window: Millis, action: LimitAction) -> UnitDef {
    let mut d = def(name);
    d.seldom.start_limit = Some(StartLimit { count, window });
    d.start_limit_action = action;
    d
}

fn oneshot(name: &str) -> UnitDef {
    let mut d = def(name);
    d.kind = Kind::Oneshot;
    d.restart = Restart::Never;
    d
}

/// A supervisor plus a fake clock and fake pids, driving the edge's half
/// of the protocol (Spawn -> Spawned) the way pid1 does.
struct Rig {
    sup: Supervisor,
    now: Millis,
    next_pid: u32,
    log: std::vec::Vec<Action>,
}

impl Rig {
    fn new(defs: std::vec::Vec<UnitDef>) -> Rig {
        let mut sup = Supervisor::new();
        for d in defs {
            sup.add(d).unwrap();
        }
        sup.link().unwrap();
        Rig {
            sup,
            now: 1000,
            next_pid: 100,
            log: vec![],
        }
    }

    /// Feed one event, then answer every Spawn with Spawned (a new pid).
    fn ev(&mut self, e: Event) -> std::vec::Vec<Action> {
        let mut all = vec![];
        let mut queue = std::collections::VecDeque::from([e]);
        while let Some(e) = queue.pop_front() {
            let mut out = Actions::new();
            self.sup.step(self.now, e, &mut out);
            // As pid1 does after each step: this also checks, in every
            // test, that a skipped pass over the timers would find none.
            let _ = self.sup.next_deadline();
            for a in out.iter() {
                if let Action::Spawn(u) = *a {
                    self.next_pid += 1;
                    queue.push_back(Event::spawned(u, self.next_pid));
                }
                // As PID 1 does once the cgroup is empty (here at once).
                if let Action::KillCgroup(u) = *a {
                    if self.sup.shutting_down().is_some() {
                        queue.push_back(Event::Drained { unit: u });
                    }
                }
            }
            all.extend(out.iter().copied());
        }
        self.log.extend(all.iter().copied());
        all
    }

    fn at(&mut self, t: Millis) -> std::vec::Vec<Action> {
        self.now = t;
        self.ev(Event::Tick)
    }

    fn idx(&self, n: &str) -> u16 {
        self.sup.index(n).unwrap()
    }
    fn pid(&self, n: &str) -> u32 {
        self.sup.slot(self.idx(n)).unwrap().rt.pid
    }
    fn state(&self, n: &str) -> State {
        self.sup.slot(self.idx(n)).unwrap().rt.phase.state()
    }
    fn exit(&mut self, n: &str, exit: Exit) -> std::vec::Vec<Action> {
        let pid = self.pid(n);
        assert_ne!(pid, 0, "{n} has no process");
        self.ev(Event::Exited { pid, exit })
    }
    fn spawned(&self, acts: &[Action]) -> std::vec::Vec<String> {
        acts.iter()
            .filter_map(|a| match a {
                Action::Spawn(u) => Some(self.sup.slot(*u).unwrap().def.name.to_string()),
                _ => None,
            })
            .collect()
    }
}

/// Once every unit runs and none has a timer, a step does not pass over
/// every unit (the hints are clear); what gives a pass something to find
/// sets its hint again.
/// Unit `svc` of `d` booted and up for 5 s (a run long enough for the
/// restart in place): the rig, its index and its pid.
fn svc_up_five_seconds(d: UnitDef) -> (Rig, u16, u32) {
    let mut r = Rig::new(vec![d]);
    r.ev(Event::Boot);
    let (svc, pid) = (r.idx("svc"), r.pid("svc"));
    r.now += 5000;
    (r, svc, pid)
}

#[test]
fn passes_over_every_unit_stop_once_they_would_find_nothing() {
    let mut slow = def("slow");
    slow.restart_delay = 100;
    let mut r = Rig::new(vec![def("a"), slow, after(def("c"), &["a"])]);
    assert_eq!(r.sup.waiting, 0..3, "added units wait");
    r.ev(Event::Boot);
    assert_eq!(r.state("c"), State::Running);
    assert!(r.sup.waiting.is_empty());
    assert!(!r.sup.timed.get());
    assert!(!r.sup.leaving);
    // A failure with a restart delay: a timer, then a unit waiting.
    r.exit("slow", Exit::Signal(9));
    assert_eq!(r.state("slow"), State::Backoff);
    assert!(r.sup.waiting.is_empty());
    assert!(r.sup.timed.get());
    assert_eq!(r.sup.next_deadline(), Some(1100));
    r.at(1100);
    assert_eq!(r.state("slow"), State::Running);
    assert!(r.sup.waiting.is_empty());
    assert_eq!(r.sup.next_deadline(), None);
    assert!(!r.sup.timed.get());
    // A unit waiting for a dependency keeps the pass on until it starts.
    let mut db = def("db");
    db.ready = Ready::Notify;
    let mut r = Rig::new(vec![db, after(def("web"), &["db"])]);
    r.ev(Event::Boot);
    assert_eq!(r.state("web"), State::Starting, "waits for db");
    // The pass covers web alone, the one unit left waiting.
    assert_eq!(r.sup.waiting, 1..2);
    let db = r.idx("db");
    let a = r.ev(Event::Ready { unit: db });
    assert_eq!(r.spawned(&a), ["web"]);
    assert!(r.sup.waiting.is_empty());
}

/// A restart due now is settled by a pass over its one unit: the event
/// wakes that index only.
#[test]
fn a_restart_wakes_only_its_unit() {
    let mut r = Rig::new(
        (0..50)
            .map(|i| {
                let mut d = def(&format!("u{i:02}"));
                d.restart_delay = 0;
                d
            })
            .collect(),
    );
    r.ev(Event::Boot);
    assert!(r.sup.waiting.is_empty());
    let u = r.idx("u33");
    let acts = r.exit("u33", Exit::Signal(9));
    assert!(acts.contains(&Action::Spawn(u)), "{acts:?}");
    assert!(r.sup.waiting.is_empty(), "{:?}", r.sup.waiting);
    // A start of another unit by hand: its index only, while it waits.
    let v = r.idx("u07");
    r.ev(Event::Stop { unit: v });
    r.exit("u07", Exit::Signal(15));
    r.sup
        .step(r.now, Event::Start { unit: v }, &mut Actions::new());
    assert!(r.sup.waiting.is_empty());
    assert_eq!(r.state("u07"), State::Starting);
}

#[test]
fn boot_starts_in_dependency_order() {
    let mut r = Rig::new(vec![
        oneshot("lo"),
        after(def("web"), &["lo"]),
        after(def("app"), &["web"]),
        def("free"),
    ]);
    let a = r.ev(Event::Boot);
    // Only what has no unmet dependency starts at once; web waits for lo,
    // app for web.
    assert_eq!(r.spawned(&a), ["lo", "free"]);
    assert_eq!(r.state("web"), State::Starting);
    assert_eq!(r.pid("web"), 0);
    let a = r.exit("lo", Exit::Code(0));
    // web is ready as soon as it is exec'd (ready = started), so app follows
    // in the same step.
    assert_eq!(r.spawned(&a), ["web", "app"]);
    assert_eq!(r.state("lo"), State::Exited);
    assert_eq!(r.state("web"), State::Running);
    assert_eq!(r.state("app"), State::Running);
}

#[test]
fn failed_oneshot_blocks_its_dependents_transitively() {
    let mut r = Rig::new(vec![
        oneshot("setup"),
        after(def("web"), &["setup"]),
        after(def("app"), &["web"]),
        def("other"),
    ]);
    r.ev(Event::Boot);
    let a = r.exit("setup", Exit::Code(3));
    assert!(r.spawned(&a).is_empty());
    assert_eq!(r.state("setup"), State::Failed);
    assert_eq!(r.state("web"), State::Stopped);
    assert_eq!(r.state("app"), State::Stopped);
    assert_eq!(r.state("other"), State::Running);
    let web = r.idx("web");
    let setup = r.idx("setup");
    assert!(a.contains(&Action::Announce(web, Note::DepFailed { dep: setup })));
    // Nothing ever spawned web.
    assert!(!r.log.contains(&Action::Spawn(web)));
}

#[test]
fn notify_readiness_holds_dependents_back() {
    let mut n = def("db");
    n.ready = Ready::Notify;
    let mut r = Rig::new(vec![n, after(def("web"), &["db"])]);
    let a = r.ev(Event::Boot);
    assert_eq!(r.spawned(&a), ["db"]);
    assert_eq!(r.state("db"), State::Starting);
    // Time passes, still not ready: web must not start.
    let a = r.at(60_000);
    assert!(r.spawned(&a).is_empty());
    let db = r.idx("db");
    let a = r.ev(Event::Ready { unit: db });
    assert_eq!(r.state("db"), State::Running);
    assert_eq!(r.spawned(&a), ["web"]);
}

/// A dependency that ends by itself before it is ever ready, with no
/// restart to come (exit 0 under `restart = on-failure`): its dependents
/// are stopped, `dependency ... failed`, not left waiting for ever (which
/// held the boot's "all up" and a reload's verdict too).
#[test]
fn a_dependency_that_ends_without_restart_stops_its_dependents() {
    let mut n = def("db");
    n.ready = Ready::Notify;
    n.restart = Restart::OnFailure;
    let mut r = Rig::new(vec![n, after(def("web"), &["db"])]);
    r.ev(Event::Boot);
    let a = r.exit("db", Exit::Code(0));
    assert_eq!(r.state("db"), State::Stopped);
    assert_eq!(r.state("web"), State::Stopped);
    let (web, db) = (r.idx("web"), r.idx("db"));
    assert!(
        a.contains(&Action::Announce(web, Note::DepFailed { dep: db })),
        "{a:?}"
    );
    assert!(!r.log.contains(&Action::Spawn(web)));
}

/// A last good definition can come back only if the units loaded now
/// allow it: every `after` name loaded, no cycle through the unit.
#[test]
fn a_put_back_must_fit_the_units_loaded_now() {
    let mut r = Rig::new(vec![def("c"), after(def("b"), &["c"]), def("x")]);
    r.ev(Event::Boot);
    let good_b = after(def("b"), &["c"]);
    let b = r.idx("b");
    assert_eq!(r.sup.put_back_problem(b, &good_b), None);
    // c removed and b changed in one reload: b's old `after c` names a
    // unit no longer loaded.
    reload(&mut r, vec![def("b"), def("x")], &[]);
    let b = r.idx("b");
    assert_eq!(
        r.sup.put_back_problem(b, &good_b),
        Some(PutBack::Unknown("c".try_into().unwrap()))
    );
    // x now starts after b: b's definition starting after x closes a cycle.
    reload(&mut r, vec![def("b"), after(def("x"), &["b"])], &[]);
    let (b, x) = (r.idx("b"), r.idx("x"));
    assert_eq!(
        r.sup.put_back_problem(b, &after(def("b"), &["x"])),
        Some(PutBack::Cycle(x))
    );
}

#[test]
fn killed_service_restarts_after_its_delay() {
    let mut r = Rig::new(vec![def("svc")]);
    r.ev(Event::Boot);
    let first = r.pid("svc");
    let a = r.exit("svc", Exit::Signal(9));
    let svc = r.idx("svc");
    assert!(a.contains(&Action::KillCgroup(svc)));
    assert!(a.contains(&Action::Announce(
        svc,
        Note::Died {
            exit: Exit::Signal(9),
            restart_in: Some(Delay::ms(100))
        }
    )));
    assert_eq!(r.state("svc"), State::Backoff);
    assert_eq!(r.sup.next_deadline(), Some(1100));
    assert!({
        let a = r.at(1099);
        r.spawned(&a)
    }
    .is_empty());
    assert_eq!(
        {
            let a = r.at(1100);
            r.spawned(&a)
        },
        ["svc"]
    );
    assert_ne!(r.pid("svc"), first);
    assert_eq!(r.sup.slot(svc).unwrap().rt.restarts, 1);
}

/// A restart in place by the unit's reaper: the same pid runs on, the
/// restart is counted and its end kept as the last exit, its uptime starts
/// again, and a failure counts in the streak as an exit's does; nothing is
/// spawned or killed. A clean exit ends the streak.
#[test]
fn a_restart_in_place_is_counted_without_a_spawn() {
    let mut d = def("svc");
    d.restart_delay = 0;
    d.restart_delay_max = 1000;
    let (mut r, svc, pid) = svc_up_five_seconds(d);
    let a = r.ev(Event::Relaunched {
        unit: svc,
        exit: Exit::Signal(9),
    });
    assert_eq!(
        a,
        [
            Action::Announce(
                svc,
                Note::Died {
                    exit: Exit::Signal(9),
                    restart_in: Some(Delay::ms(0))
                }
            ),
            Action::Announce(svc, Note::Running { pid })
        ]
    );
    let rt = &r.sup.slot(svc).unwrap().rt;
    assert_eq!((rt.pid, rt.restarts, rt.streak), (pid, 1, 1));
    assert_eq!(rt.last_exit, Some(Exit::Signal(9)));
    assert_eq!(rt.spawned_at, r.now);
    assert_eq!(r.state("svc"), State::Running);
    // Up for less than restart_delay_max: the streak goes on.
    r.now += 500;
    r.ev(Event::Relaunched {
        unit: svc,
        exit: Exit::Code(1),
    });
    assert_eq!(r.sup.slot(svc).unwrap().rt.streak, 2);
    r.ev(Event::Relaunched {
        unit: svc,
        exit: Exit::Code(0),
    });
    let rt = &r.sup.slot(svc).unwrap().rt;
    assert_eq!((rt.restarts, rt.streak), (3, 0));
    // While a stop is on its way the end is the stop's: the run is over
    // and its cgroup killed (the reaper's new run with it).
    r.ev(Event::Stop { unit: svc });
    let a = r.ev(Event::Relaunched {
        unit: svc,
        exit: Exit::Signal(15),
    });
    assert!(a.contains(&Action::KillCgroup(svc)), "{a:?}");
    assert_eq!(r.state("svc"), State::Stopped);
    assert_eq!(r.sup.slot(svc).unwrap().rt.pid, 0);
}

#[test]
fn crash_loop_backs_off_doubling_and_capped() {
    let mut d = def("crash");
    d.restart_delay = 100;
    d.restart_delay_max = 1000;
    let mut r = Rig::new(vec![d]);
    r.ev(Event::Boot);
    let mut delays = vec![];
    for _ in 0..7 {
        r.exit("crash", Exit::Code(1));
        let due = r.sup.next_deadline().unwrap();
        delays.push(due - r.now);
        r.at(due);
        assert_eq!(r.state("crash"), State::Running);
    }
    assert_eq!(delays, [100, 200, 400, 800, 1000, 1000, 1000]);
    // Up exactly restart_delay_max is not longer: the row goes on.
    r.now += 1000;
    r.exit("crash", Exit::Code(1));
    let due = r.sup.next_deadline().unwrap();
    assert_eq!(due - r.now, 1000);
    r.at(due);
    // A run longer than restart_delay_max starts again from restart_delay.
    r.now += 1001;
    r.exit("crash", Exit::Code(1));
    assert_eq!(r.sup.next_deadline().unwrap() - r.now, 100);
}

#[test]
fn zero_restart_delay_respawns_in_the_same_step_once_per_streak() {
    let mut d = def("quick");
    d.restart_delay = 0;
    d.restart_delay_max = 1000;
    let mut r = Rig::new(vec![d]);
    r.ev(Event::Boot);
    let first = r.pid("quick");
    // The first death of a streak: spawned by the exit's own step, with
    // no timer to wait for.
    let a = r.exit("quick", Exit::Signal(9));
    assert_eq!(r.spawned(&a), ["quick"]);
    assert_ne!(r.pid("quick"), first);
    assert_eq!(r.state("quick"), State::Running);
    assert_eq!(r.sup.slot(r.idx("quick")).unwrap().rt.restarts, 1);
    assert_eq!(r.sup.next_deadline(), None);
    // Dying again at once is a crash loop: the restart waits, from
    // QUICK_FLOOR, doubling.
    let a = r.exit("quick", Exit::Code(1));
    assert!(r.spawned(&a).is_empty());
    assert_eq!(r.sup.next_deadline(), Some(r.now + 100));
    let a = r.at(r.now + 100);
    assert_eq!(r.spawned(&a), ["quick"]);
    assert_eq!(r.sup.slot(r.idx("quick")).unwrap().rt.restarts, 2);
    // Up longer than restart_delay_max: a new streak, at once again.
    r.now += 1001;
    let a = r.exit("quick", Exit::Signal(9));
    assert_eq!(r.spawned(&a), ["quick"]);
}

/// `restart_delay = 0` doubles to 0: a unit whose starts fail at once
/// (a missing program) was started again at every turn of PID 1's loop,
/// for ever. A quick failure after another in a row waits as if the delay
/// were 100 ms, doubled by the failures before it, to
/// `restart_delay_max`; a run of a second or more is restarted at once,
/// and `restart_delay_max = 0` keeps every restart at once.
#[test]
fn a_crash_loop_with_no_restart_delay_backs_off() {
    let gaps = |max: Millis, run: Millis, spawn_fails: bool| {
        let mut d = def("loop");
        d.restart_delay = 0;
        d.restart_delay_max = max;
        let mut r = Rig::new(vec![d]);
        r.ev(Event::Boot);
        let u = r.idx("loop");
        let mut gaps = vec![];
        for _ in 0..8 {
            r.now += run;
            match spawn_fails {
                true => drop(r.ev(Event::SpawnFailed { unit: u })),
                false => drop(r.exit("loop", Exit::Code(1))),
            }
            let due = r.sup.next_deadline().unwrap_or(r.now);
            gaps.push(due - r.now);
            r.at(due);
            assert_ne!(r.state("loop"), State::Failed);
        }
        gaps
    };
    assert_eq!(
        gaps(30_000, 0, true),
        [0, 100, 200, 400, 800, 1_600, 3_200, 6_400]
    );
    assert_eq!(
        gaps(1_000, 10, false),
        [0, 100, 200, 400, 800, 1_000, 1_000, 1_000]
    );
    assert_eq!(
        gaps(30_000, 1_500, false),
        [0; 8],
        "runs of a second or more"
    );
    assert_eq!(gaps(0, 0, true), [0; 8], "restart_delay_max = 0: as asked");
    // Long runs never ready are no crash loop: a oneshot's, a notify
    // service's that dies before it is ready.
    for (kind, ready) in [
        (Kind::Oneshot, Ready::Started),
        (Kind::Service, Ready::Notify),
    ] {
        let mut d = def("slow");
        d.kind = kind;
        d.ready = ready;
        d.restart = Restart::OnFailure;
        d.restart_delay = 0;
        let mut r = Rig::new(vec![d]);
        r.ev(Event::Boot);
        for _ in 0..4 {
            r.now += 10_000;
            r.exit("slow", Exit::Code(1));
            r.at(r.now);
            assert_eq!(r.state("slow"), State::Starting, "{kind:?}: not at once");
        }
    }
    // Long runs that crash, then a quick one: it waits as the row says.
    let mut d = def("loop");
    d.restart_delay = 0;
    let mut r = Rig::new(vec![d]);
    r.ev(Event::Boot);
    for _ in 0..8 {
        r.now += 5_000;
        r.exit("loop", Exit::Code(1));
        assert_eq!(r.sup.next_deadline().unwrap_or(r.now), r.now);
        r.at(r.now);
    }
    r.now += 500;
    r.exit("loop", Exit::Code(1));
    assert_eq!(r.sup.next_deadline(), Some(r.now + 12_800));
}

/// A clean exit under `restart = always` is not a failure: its restart is
/// after `restart_delay`, undoubled, and it ends a row of failures (the
/// contract: the delay "doubles after each failure in a row"). With no
/// delay it still takes the timer's turn, not the exit's own step.
#[test]
fn clean_exits_do_not_double_the_restart_delay() {
    let mut d = def("job");
    d.restart = Restart::Always;
    d.restart_delay = 1_000;
    d.restart_delay_max = 30_000;
    let mut r = Rig::new(vec![d]);
    r.ev(Event::Boot);
    let mut delays = vec![];
    let mut delay_after = |r: &mut Rig, exit: Exit| {
        r.now += 5_000;
        r.exit("job", exit);
        let due = r.sup.next_deadline().unwrap();
        delays.push(due - r.now);
        r.at(due);
        assert_eq!(r.state("job"), State::Running);
    };
    for exit in [Exit::Code(0), Exit::Code(0), Exit::Code(1), Exit::Code(1)] {
        delay_after(&mut r, exit);
    }
    for exit in [Exit::Code(0), Exit::Code(1)] {
        delay_after(&mut r, exit);
    }
    assert_eq!(delays, [1_000, 1_000, 1_000, 2_000, 1_000, 1_000]);

    // With no delay: a clean exit after a run of a second or more takes
    // the timer's turn, not the exit's own step; one after a quick run
    // waits the default delay, undoubled (a program that exits 0 at once
    // is no reason to start it as fast as the board goes);
    // `restart_delay_max = 0` keeps it at once.
    for (max, run, wait) in [(30_000, 1_500, 0), (30_000, 10, 100), (0, 10, 0)] {
        let mut d = def("quick");
        d.restart = Restart::Always;
        d.restart_delay = 0;
        d.restart_delay_max = max;
        let mut r = Rig::new(vec![d]);
        r.ev(Event::Boot);
        for _ in 0..3 {
            r.now += run;
            let a = r.exit("quick", Exit::Code(0));
            assert!(r.spawned(&a).is_empty(), "restarted in the exit's step");
            assert_eq!(r.sup.next_deadline(), Some(r.now + wait), "{max} {run}");
            r.now += wait;
            let a = r.at(r.now);
            assert_eq!(r.spawned(&a), ["quick"]);
        }
    }
}

/// A `ready = notify` unit that exits 0 before it is ready (a daemon that
/// forks and exits) was never up: its restarts back off as a failure's.
#[test]
fn a_clean_exit_before_ready_backs_off() {
    let mut d = def("forker");
    d.restart = Restart::Always;
    d.ready = crate::unit::Ready::Notify;
    d.restart_delay = 100;
    let mut r = Rig::new(vec![d]);
    r.ev(Event::Boot);
    let mut delays = vec![];
    for _ in 0..4 {
        r.exit("forker", Exit::Code(0));
        let due = r.sup.next_deadline().unwrap();
        delays.push(due - r.now);
        r.at(due);
    }
    assert_eq!(delays, [100, 200, 400, 800]);
}

/// A slow starter that crashes soon after it is ready is a crash loop:
/// the time up counts from ready, not from the spawn, so a start longer
/// than `restart_delay_max` does not end the row of failures.
#[test]
fn a_slow_start_that_crashes_once_ready_backs_off() {
    let mut d = def("slow");
    d.ready = crate::unit::Ready::Notify;
    d.restart_delay = 100;
    d.restart_delay_max = 1_000;
    let mut r = Rig::new(vec![d]);
    r.ev(Event::Boot);
    let u = r.idx("slow");
    let mut delays = vec![];
    for _ in 0..4 {
        r.now += 5_000;
        r.ev(Event::Ready { unit: u });
        assert_eq!(r.state("slow"), State::Running);
        r.now += 500;
        r.exit("slow", Exit::Code(1));
        let due = r.sup.next_deadline().unwrap();
        delays.push(due - r.now);
        r.at(due);
    }
    assert_eq!(delays, [100, 200, 400, 800]);
    // Up (ready) longer than the cap: the row ends.
    r.now += 5_000;
    r.ev(Event::Ready { unit: u });
    r.now += 1_001;
    r.exit("slow", Exit::Code(1));
    assert_eq!(r.sup.next_deadline().unwrap() - r.now, 100);
}

/// A start that times out was never up, though it lasted `start_timeout`
/// (longer than `restart_delay_max`): its restarts still double.
#[test]
fn start_timeouts_back_off() {
    let mut d = def("mute");
    d.ready = crate::unit::Ready::Notify;
    d.start_timeout = 60_000;
    d.restart_delay = 100;
    d.restart_delay_max = 30_000;
    let mut r = Rig::new(vec![d]);
    r.ev(Event::Boot);
    let mut delays = vec![];
    for _ in 0..4 {
        let timeout = r.sup.next_deadline().unwrap();
        r.at(timeout);
        assert_eq!(r.state("mute"), State::Backoff);
        let due = r.sup.next_deadline().unwrap();
        delays.push(due - r.now);
        r.at(due);
    }
    assert_eq!(delays, [100, 200, 400, 800]);
}

/// `vital` (start limit 3 in a minute, then reboot) after two crashes,
/// restarted (`by_hand`, or by its `pressure_action`).
fn two_crashes_then_a_restart(by_hand: bool) -> Rig {
    let mut r = Rig::new(vec![limited("vital", 3, 60_000, LimitAction::Reboot)]);
    // Up long enough that a start limit's reboot is not held.
    r.now = LIMIT_ACTION_FLOOR;
    r.ev(Event::Boot);
    for _ in 0..2 {
        r.exit("vital", Exit::Code(1));
        let due = r.sup.next_deadline().unwrap();
        r.at(due);
    }
    let unit = r.idx("vital");
    r.ev(Event::Restart { unit, by_hand });
    r.exit("vital", Exit::Signal(15));
    r
}

/// `initctl restart` of a unit that is up is a fresh start, as a hand
/// start of a failed one is: the failures before it are forgotten, so one
/// crash after it does not hit the start limit (and its reboot).
#[test]
fn a_hand_restart_forgets_the_failures_before_it() {
    let mut r = two_crashes_then_a_restart(true);
    assert_eq!(r.state("vital"), State::Running);
    r.exit("vital", Exit::Code(1));
    assert_eq!(r.sup.shutting_down(), None, "rebooted after one crash");
    assert_eq!(r.state("vital"), State::Backoff);
}

/// A `pressure_action = restart` is no restart by hand, and it ends the
/// run as a failure: after two crashes it is the third in the minute,
/// which hits the start limit (and its reboot).
#[test]
fn a_pressure_restart_is_a_failure_after_the_ones_before_it() {
    let r = two_crashes_then_a_restart(false);
    assert_eq!(r.sup.shutting_down(), Some(ShutdownKind::Reboot));
    assert_eq!(r.state("vital"), State::Failed);
    assert_eq!(r.sup.slot(0).unwrap().rt.streak, 2, "the row goes on");
}

/// Under memory pressure the trigger fires again after each restart. A
/// `pressure_action = restart` is a failed run, as an OOM kill is
/// (systemd's view): counted in `restarts`, its restart delayed by the
/// doubling `restart_delay` (whether the stop signal ended the run with
/// a signal or an exit 0), and the failures count towards the start
/// limit. It was restarted at once, for ever, `restarts` 0.
#[test]
fn repeated_pressure_restarts_back_off_and_hit_the_start_limit() {
    let mut d = limited("leaky", 4, 60_000, LimitAction::None);
    d.restart_delay = 100;
    let mut r = Rig::new(vec![d]);
    r.ev(Event::Boot);
    let unit = r.idx("leaky");
    let mut delays = vec![];
    for exit in [Exit::Signal(15), Exit::Code(0), Exit::Signal(15)] {
        r.now += 1_000;
        let a = r.ev(Event::Restart {
            unit,
            by_hand: false,
        });
        assert!(r.spawned(&a).is_empty(), "restarted at once: {a:?}");
        r.exit("leaky", exit);
        assert_eq!(r.state("leaky"), State::Backoff, "{exit:?}");
        let due = r.sup.next_deadline().unwrap();
        delays.push(due - r.now);
        r.at(due);
        assert_eq!(r.state("leaky"), State::Running);
    }
    assert_eq!(delays, [100, 200, 400]);
    assert_eq!(r.sup.slot(unit).unwrap().rt.restarts, 3);
    r.now += 1_000;
    r.ev(Event::Restart {
        unit,
        by_hand: false,
    });
    let a = r.exit("leaky", Exit::Signal(15));
    assert!(
        a.contains(&Action::Announce(unit, Note::StartLimit)),
        "{a:?}"
    );
    assert_eq!(r.state("leaky"), State::Failed);
    assert_eq!(r.sup.next_deadline(), None);
}

/// A pressure restart after a run up longer than `restart_delay_max`
/// starts the row of failures again, as a crash then would: its restart
/// waits `restart_delay`, not the doubling of the crashes long before.
#[test]
fn a_pressure_restart_after_a_long_run_starts_the_row_again() {
    let mut r = Rig::new(vec![UnitDef {
        restart_delay: 100,
        ..def("leaky")
    }]);
    r.ev(Event::Boot);
    for _ in 0..3 {
        r.exit("leaky", Exit::Code(1));
        let due = r.sup.next_deadline().unwrap();
        r.at(due);
    }
    r.now += 3_600_000;
    let unit = r.idx("leaky");
    r.ev(Event::Restart {
        unit,
        by_hand: false,
    });
    r.exit("leaky", Exit::Signal(15));
    assert_eq!(r.sup.next_deadline(), Some(r.now + 100));
}

/// A start timeout whose start limit reboots, and another unit's restart
/// delay over, at the same tick: the shutdown begins first, so the other
/// unit is not restarted (it was counted as one: restarts + 1).
#[test]
fn no_restart_is_counted_in_a_shutdown_begun_in_the_same_tick() {
    let mut vital = limited("vital", 1, 60_000, LimitAction::Reboot);
    vital.ready = Ready::Notify;
    vital.start_timeout = 500;
    let mut r = Rig::new(vec![vital, def("svc")]);
    r.now = LIMIT_ACTION_FLOOR;
    r.ev(Event::Boot);
    r.now += 400;
    r.exit("svc", Exit::Code(1));
    assert_eq!(r.sup.next_deadline(), Some(r.now + 100));
    r.at(r.now + 100);
    assert_eq!(r.sup.shutting_down(), Some(ShutdownKind::Reboot));
    let svc = r.sup.slot(r.idx("svc")).unwrap();
    assert_eq!((svc.rt.phase, svc.rt.restarts), (Phase::Stopped, 0));
}

#[test]
fn backoff_delay_saturates() {
    assert_eq!(backoff_delay(100, 30_000, 0), 100);
    assert_eq!(backoff_delay(100, 30_000, 3), 800);
    assert_eq!(backoff_delay(100, 30_000, 1000), 30_000);
    assert_eq!(backoff_delay(u64::MAX / 2, u64::MAX, 5), u64::MAX);
}

#[test]
fn start_limit_fails_the_unit_and_hand_start_resets_it() {
    let mut d = def("flaky");
    d.seldom.start_limit = Some(StartLimit {
        count: 3,
        window: 10_000,
    });
    let mut r = Rig::new(vec![d]);
    r.ev(Event::Boot);
    for i in 0..3 {
        let a = r.exit("flaky", Exit::Code(1));
        if i < 2 {
            let due = r.sup.next_deadline().unwrap();
            r.at(due);
        } else {
            let u = r.idx("flaky");
            assert!(a.contains(&Action::Announce(u, Note::StartLimit)));
        }
    }
    assert_eq!(r.state("flaky"), State::Failed);
    assert_eq!(r.sup.next_deadline(), None);
    // Not restarted, however long we wait.
    assert!({
        let a = r.at(1_000_000);
        r.spawned(&a)
    }
    .is_empty());
    let u = r.idx("flaky");
    assert_eq!(
        {
            let a = r.ev(Event::Start { unit: u });
            r.spawned(&a)
        },
        ["flaky"]
    );
}

/// A start by hand of a unit waiting for its `after` units after a
/// restart delay (no process) forgets its failures, as one of any unit
/// without a process does (docs/initctl.md). It kept them: one more crash
/// hit the start limit (with `start_limit_action = reboot`, a reboot).
#[test]
fn a_hand_start_of_a_waiting_unit_forgets_its_failures() {
    let mut app = after(def("app"), &["db"]);
    app.seldom.start_limit = Some(StartLimit {
        count: 2,
        window: 60_000,
    });
    app.restart_delay = 100;
    let mut db = def("db");
    db.restart_delay = 5_000;
    let mut r = Rig::new(vec![db, app]);
    r.ev(Event::Boot);
    r.exit("db", Exit::Code(1));
    r.exit("app", Exit::Code(1));
    r.at(r.now + 100);
    let u = r.idx("app");
    assert_eq!(r.sup.slot(u).unwrap().rt.phase, Phase::Waiting);
    r.ev(Event::Start { unit: u });
    let rt = &r.sup.slot(u).unwrap().rt;
    assert_eq!((rt.failures.len(), rt.streak), (0, 0));
    r.at(r.now + 5_000);
    r.exit("app", Exit::Code(1));
    assert_eq!(r.state("app"), State::Backoff, "backing off, not failed");
}

#[test]
fn failures_spread_beyond_the_window_do_not_hit_the_limit() {
    let mut d = def("slow");
    d.seldom.start_limit = Some(StartLimit {
        count: 2,
        window: 1000,
    });
    let mut r = Rig::new(vec![d]);
    r.ev(Event::Boot);
    for _ in 0..5 {
        r.exit("slow", Exit::Code(1));
        let due = r.sup.next_deadline().unwrap();
        r.at(due + 2000);
        assert_eq!(r.state("slow"), State::Running);
    }
}

#[test]
fn start_limit_action_poweroff_shuts_down() {
    let d = limited("vital", 1, 10_000, LimitAction::Poweroff);
    let mut r = Rig::new(vec![d, def("other")]);
    r.now = LIMIT_ACTION_FLOOR;
    r.ev(Event::Boot);
    r.exit("vital", Exit::Code(1));
    assert_eq!(r.sup.shutting_down(), Some(ShutdownKind::Poweroff));
    assert_eq!(r.state("other"), State::Stopping);
    let a = r.exit("other", Exit::Signal(15));
    assert!(a.contains(&Action::Finish(ShutdownKind::Poweroff)));
}

/// `vital` (`start_limit = 3/1m`, `start_limit_action = reboot`) fails at
/// once at every start, PID 1 up since 0: its third failure, at 300 ms,
/// hits the limit.
fn limit_hit_at_300ms(rescue: bool) -> Rig {
    let mut d = limited("vital", 3, 60_000, LimitAction::Reboot);
    d.restart_delay = 100;
    let mut r = Rig::new(vec![d]);
    r.sup.hold_limit_actions(0, rescue);
    r.now = 0;
    r.ev(Event::Boot);
    for t in [0, 200] {
        r.exit("vital", Exit::Code(1));
        r.at(t + 100);
    }
    let a = r.exit("vital", Exit::Code(1));
    assert_eq!(r.now, 300);
    assert!(a.contains(&Action::Announce(0, Note::StartLimit)), "{a:?}");
    assert_eq!(r.state("vital"), State::Failed);
    r
}

/// A start limit hit 300 ms after PID 1 started: the unit is failed at
/// once, its reboot waits until PID 1 has been up `LIMIT_ACTION_FLOOR`
/// (a timer), so that an operator on the console can stop it; then, the
/// unit still failed, the reboot begins. It began at 300 ms: every boot
/// rebooted before the console was of any use.
#[test]
fn a_start_limit_hit_early_holds_its_action_until_the_floor() {
    let mut r = limit_hit_at_300ms(false);
    assert_eq!(r.sup.shutting_down(), None, "rebooted at 300 ms");
    assert_eq!(r.sup.next_deadline(), Some(LIMIT_ACTION_FLOOR));
    r.at(LIMIT_ACTION_FLOOR - 1);
    assert_eq!(r.sup.shutting_down(), None);
    let a = r.at(LIMIT_ACTION_FLOOR);
    assert_eq!(r.sup.shutting_down(), Some(ShutdownKind::Reboot));
    assert!(a.contains(&Action::Announce(0, Note::StartLimit)), "{a:?}");
    assert!(a.contains(&Action::Finish(ShutdownKind::Reboot)), "{a:?}");
    // After the floor, a limit hit begins its action at once.
    let mut d = limited("vital", 1, 60_000, LimitAction::Poweroff);
    d.restart_delay = 100;
    let mut r = Rig::new(vec![d]);
    r.now = LIMIT_ACTION_FLOOR;
    r.ev(Event::Boot);
    r.exit("vital", Exit::Code(1));
    assert_eq!(r.sup.shutting_down(), Some(ShutdownKind::Poweroff));
}

/// Under `wren.rescue` no start limit's action is carried out, held or
/// not: an operator repairing the device at the console, who reloads the
/// unit that failed, is not rebooted under.
#[test]
fn under_rescue_a_start_limit_action_is_never_carried_out() {
    let mut r = limit_hit_at_300ms(true);
    assert_eq!(r.sup.next_deadline(), None);
    r.at(10 * LIMIT_ACTION_FLOOR);
    // Started by hand, failing at once again, past the floor.
    r.ev(Event::Start { unit: 0 });
    for _ in 0..3 {
        r.exit("vital", Exit::Code(1));
        if let Some(due) = r.sup.next_deadline() {
            r.at(due);
        }
    }
    assert_eq!(r.state("vital"), State::Failed);
    assert_eq!(r.sup.shutting_down(), None);
}

/// The held action is the operator's to take back: a start, stop or
/// restart by hand, or a reload that changes or removes the unit, before
/// the floor, and it is not carried out. A reload that leaves the unit as
/// it was keeps it.
#[test]
fn a_hand_start_stop_or_reload_before_the_floor_drops_the_held_action() {
    for what in [
        "start",
        "stop",
        "restart",
        "reload: removed",
        "reload: changed",
        "reload: unchanged",
    ] {
        let mut r = limit_hit_at_300ms(false);
        r.at(10_000);
        let mut d = r.sup.slot(0).unwrap().def.clone();
        match what {
            "start" => drop(r.ev(Event::Start { unit: 0 })),
            "stop" => drop(r.ev(Event::Stop { unit: 0 })),
            "restart" => drop(r.ev(Event::Restart {
                unit: 0,
                by_hand: true,
            })),
            "reload: removed" => drop(reload(&mut r, vec![], &[])),
            "reload: changed" => {
                d.restart_delay = 200;
                drop(reload(&mut r, vec![d], &[]));
            }
            _ => drop(reload(&mut r, vec![d], &[])),
        }
        r.at(LIMIT_ACTION_FLOOR);
        r.at(LIMIT_ACTION_FLOOR + 1);
        let kept = (what == "reload: unchanged").then_some(ShutdownKind::Reboot);
        assert_eq!(r.sup.shutting_down(), kept, "{what}");
    }
}

#[test]
fn on_failure_and_never_policies() {
    let mut a = def("a");
    a.restart = Restart::OnFailure;
    let mut b = def("b");
    b.restart = Restart::Never;
    let mut r = Rig::new(vec![a, b]);
    r.ev(Event::Boot);
    r.exit("a", Exit::Code(0));
    assert_eq!(r.state("a"), State::Stopped);
    r.exit("b", Exit::Code(2));
    assert_eq!(r.state("b"), State::Failed);
    assert_eq!(r.sup.next_deadline(), None);
}

#[test]
fn stop_signals_then_kills_the_cgroup_after_the_timeout() {
    let mut d = def("svc");
    d.stop_signal = 2;
    d.stop_timeout = 3000;
    let mut r = Rig::new(vec![d]);
    r.ev(Event::Boot);
    let u = r.idx("svc");
    let pid = r.pid("svc");
    let a = r.ev(Event::Stop { unit: u });
    assert_eq!(
        a,
        [Action::Signal {
            unit: u,
            pid,
            sig: 2
        }]
    );
    assert_eq!(r.state("svc"), State::Stopping);
    assert!(!r.at(3999).contains(&Action::KillCgroup(u)));
    assert!(r.at(4000).contains(&Action::KillCgroup(u)));
    let a = r.exit("svc", Exit::Signal(9));
    assert!(a.contains(&Action::Announce(u, Note::Stopped)));
    assert_eq!(r.state("svc"), State::Stopped);
    // Stopped by hand: not restarted.
    assert!({
        let a = r.at(100_000);
        r.spawned(&a)
    }
    .is_empty());
}

#[test]
fn restart_stops_then_starts_again() {
    let mut r = Rig::new(vec![def("svc")]);
    r.ev(Event::Boot);
    let u = r.idx("svc");
    let old = r.pid("svc");
    r.ev(Event::Restart {
        unit: u,
        by_hand: true,
    });
    assert_eq!(r.state("svc"), State::Stopping);
    let a = r.exit("svc", Exit::Signal(15));
    assert_eq!(r.spawned(&a), ["svc"]);
    assert_ne!(r.pid("svc"), old);
    assert_eq!(r.state("svc"), State::Running);
}

/// In a shutdown, a unit whose main process exited still holds its
/// `after` units up until PID 1 says nothing of its run is left
/// (`Drained`): a worker it forked may still be writing to them.
#[test]
fn a_dependency_is_stopped_once_its_dependents_leftovers_are_gone() {
    let mut sup = Supervisor::new();
    sup.add(def("db")).unwrap();
    sup.add(after(def("app"), &["db"])).unwrap();
    sup.link().unwrap();
    let (db, app) = (sup.index("db").unwrap(), sup.index("app").unwrap());
    let mut step = |t, ev| {
        let mut out = Actions::new();
        sup.step(t, ev, &mut out);
        out.as_slice().to_vec()
    };
    step(0, Event::Boot);
    step(1, Event::spawned(db, 100));
    step(2, Event::spawned(app, 101));
    step(3, Event::Shutdown(ShutdownKind::Reboot));
    let a = step(
        4,
        Event::Exited {
            pid: 101,
            exit: Exit::Signal(15),
        },
    );
    assert!(a.contains(&Action::KillCgroup(app)));
    assert!(
        !a.iter()
            .any(|x| matches!(x, Action::Signal { unit, .. } if *unit == db)),
        "db stopped while app's cgroup drains: {a:?}"
    );
    let a = step(5, Event::Drained { unit: app });
    assert!(
        a.iter()
            .any(|x| matches!(x, Action::Signal { unit, .. } if *unit == db)),
        "{a:?}"
    );
    let a = step(
        6,
        Event::Exited {
            pid: 100,
            exit: Exit::Signal(15),
        },
    );
    assert!(
        !a.contains(&Action::Finish(ShutdownKind::Reboot)),
        "db drains"
    );
    let a = step(7, Event::Drained { unit: db });
    assert_eq!(a.last(), Some(&Action::Finish(ShutdownKind::Reboot)));
}

#[test]
fn shutdown_stops_in_reverse_dependency_order() {
    let mut r = Rig::new(vec![
        oneshot("lo"),
        after(def("db"), &["lo"]),
        after(def("web"), &["db"]),
    ]);
    r.ev(Event::Boot);
    r.exit("lo", Exit::Code(0));
    let (db, web) = (r.idx("db"), r.idx("web"));
    let a = r.ev(Event::Shutdown(ShutdownKind::Reboot));
    // Only web, which nothing depends on, is asked to stop first.
    assert!(matches!(a.as_slice(), [Action::Signal { unit, .. }] if *unit == web));
    assert_eq!(r.state("db"), State::Running);
    let a = r.exit("web", Exit::Signal(15));
    assert!(a
        .iter()
        .any(|x| matches!(x, Action::Signal { unit, .. } if *unit == db)));
    let a = r.exit("db", Exit::Signal(15));
    // lo (an exited oneshot) goes last, then the machine.
    assert_eq!(r.state("lo"), State::Stopped);
    assert_eq!(a.last(), Some(&Action::Finish(ShutdownKind::Reboot)));
    // Nothing restarts during shutdown.
    assert_eq!(r.sup.next_deadline(), None);
}

/// A unit a reload removed, still stopping when the shutdown begins,
/// lets go of what it needed when it exits (its slot freed): that is
/// stopped next, and the shutdown ends.
#[test]
fn a_shutdown_stops_what_a_leaving_unit_needed() {
    let mut r = Rig::new(vec![def("db"), after(def("web"), &["db"])]);
    r.ev(Event::Boot);
    let db = r.idx("db");
    let web_pid = r.pid("web");
    reload(&mut r, vec![def("db")], &[]);
    let signals_db = |a: &[Action]| {
        a.iter()
            .any(|x| matches!(x, Action::Signal { unit, .. } if *unit == db))
    };
    let a = r.ev(Event::Shutdown(ShutdownKind::Poweroff));
    assert!(!signals_db(&a), "{a:?}");
    let a = r.ev(Event::Exited {
        pid: web_pid,
        exit: Exit::Signal(15),
    });
    assert!(signals_db(&a), "{a:?}");
    let a = r.exit("db", Exit::Signal(15));
    assert_eq!(a.last(), Some(&Action::Finish(ShutdownKind::Poweroff)));
}

/// A bad verdict's put-back during a shutdown (pid1 calls `revert`
/// outside a step): the unit stays stopped, keeps the dependencies it was
/// counted with, and what it needed is stopped once nothing else does.
#[test]
fn a_revert_during_a_shutdown_lets_go_of_what_the_unit_needed() {
    for good in [None, Some(after(def("u"), &["b"]))] {
        let mut r = Rig::new(vec![
            def("a"),
            def("b"),
            after(def("u"), &["a"]),
            after(def("w"), &["u"]),
        ]);
        r.ev(Event::Boot);
        r.exit("u", Exit::Code(1));
        assert_eq!(r.state("u"), State::Backoff);
        r.ev(Event::Shutdown(ShutdownKind::Reboot));
        let (a, u) = (r.idx("a"), r.idx("u"));
        assert_eq!(r.state("a"), State::Running);
        let mut out = Actions::new();
        let now = r.now;
        r.sup.revert(now, u, good.clone(), &mut out);
        assert_eq!(r.state("u"), State::Stopped);
        assert!(
            out.iter()
                .any(|x| matches!(x, Action::Signal { unit, .. } if *unit == a)),
            "{good:?}: {:?}",
            out.as_slice()
        );
        r.exit("w", Exit::Signal(15));
        r.exit("b", Exit::Signal(15));
        let last = r.exit("a", Exit::Signal(15));
        assert_eq!(last.last(), Some(&Action::Finish(ShutdownKind::Reboot)));
    }
}

#[test]
fn shutdown_with_nothing_running_finishes_at_once() {
    let mut r = Rig::new(vec![]);
    let a = r.ev(Event::Shutdown(ShutdownKind::Halt));
    assert_eq!(a, [Action::Finish(ShutdownKind::Halt)]);
    // Finish is emitted once.
    assert!(r.ev(Event::Tick).is_empty());
}

#[test]
fn exit_during_shutdown_is_not_restarted() {
    let mut r = Rig::new(vec![def("a"), after(def("b"), &["a"])]);
    r.ev(Event::Boot);
    r.ev(Event::Shutdown(ShutdownKind::Poweroff));
    // a is still needed by b, but dies on its own meanwhile.
    let a = r.exit("a", Exit::Code(1));
    assert!(r.spawned(&a).is_empty());
    assert_eq!(r.sup.next_deadline().map(|d| d - r.now), Some(5000));
    assert!(!matches!(r.state("a"), State::Backoff | State::Running));
}

#[test]
fn orphan_exit_changes_nothing() {
    let mut r = Rig::new(vec![def("svc")]);
    r.ev(Event::Boot);
    let a = r.ev(Event::Exited {
        pid: 99_999,
        exit: Exit::Code(0),
    });
    assert!(a.is_empty());
    assert_eq!(r.state("svc"), State::Running);
}

#[test]
fn spawn_failure_counts_as_a_failed_start() {
    let mut r = Rig::new(vec![def("bad")]);
    let u = r.idx("bad");
    let mut out = Actions::new();
    r.sup.step(r.now, Event::Boot, &mut out);
    assert_eq!(out.as_slice(), [Action::Spawn(u)]);
    out.clear();
    r.sup.step(r.now, Event::SpawnFailed { unit: u }, &mut out);
    assert!(out.contains(&Action::Announce(
        u,
        Note::SpawnFailed {
            restart_in: Some(Delay::ms(100))
        }
    )));
    assert_eq!(r.state("bad"), State::Backoff);
}

#[test]
fn unknown_dependency_is_refused() {
    let mut s = Supervisor::new();
    s.add(after(def("x"), &["nope"])).unwrap();
    s.add(def("y")).unwrap();
    assert_eq!(s.link(), Err((0, AddError::UnknownDep)));
    let mut out = Actions::new();
    s.step(0, Event::Boot, &mut out);
    // The unit with the dangling name is not started, and says why; the
    // other is.
    assert_eq!(
        out.as_slice(),
        [Action::Announce(0, Note::DepMissing), Action::Spawn(1)]
    );
    assert_eq!(s.slot(0).unwrap().rt.phase.state(), State::Failed);
}

/// A unit a reload removed is not started again by its index while it
/// stops (shedding's "start again" once held such an index), and leaves.
#[test]
fn a_removed_unit_is_not_started_again_while_it_leaves() {
    let mut r = Rig::new(vec![def("a"), def("b")]);
    r.ev(Event::Boot);
    let b = r.idx("b");
    let pid = r.pid("b");
    reload(&mut r, vec![def("a")], &[]);
    assert!(r.sup.index("b").is_none());
    r.ev(Event::Start { unit: b });
    r.ev(Event::Restart {
        unit: b,
        by_hand: true,
    });
    let acts = r.ev(Event::Exited {
        pid,
        exit: Exit::Signal(15),
    });
    assert!(!acts.contains(&Action::Spawn(b)), "{acts:?}");
    assert_eq!(r.sup.slot(b).map(|s| s.retired), Some(Retired::Free));
}

/// `link` finds every `after` name where `index` does, in a table whose
/// order is not the names' order, with a unit leaving under a name that
/// a new unit has taken.
#[test]
fn link_resolves_every_name_as_index_does() {
    let names: std::vec::Vec<String> = (0..60u32).map(|i| format!("u{}", (i * 37) % 61)).collect();
    let mut r = Rig::new(
        names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let deps: std::vec::Vec<&str> = [i * 7 + 3, i * 11 + 5, i + 59]
                    .iter()
                    .filter_map(|j| names.get(j % 60).map(String::as_str))
                    .filter(|d| *d != n && !d.is_empty())
                    .filter(|d| names.iter().position(|x| x == d) < Some(i))
                    .collect();
                after(def(n), &deps)
            })
            .collect(),
    );
    r.ev(Event::Boot);
    // "u0" leaves and comes back while still stopping, as a new unit in
    // its own slot.
    let old = r.idx("u0");
    let mut defs: std::vec::Vec<UnitDef> = r.sup.slots().map(|s| s.def.clone()).collect();
    defs.retain(|d| d.name != "u0");
    let stale = r.sup.by_name();
    reload(&mut r, defs.clone(), &[]);
    // A list made before the removal does not give the leaving unit.
    assert_eq!(r.sup.index_by(&stale, "u0"), None);
    let by_index_by = |r: &Rig| {
        let by = r.sup.by_name();
        let mut all: std::vec::Vec<&str> = names.iter().map(String::as_str).collect();
        all.extend(["", "u", "u00", "zz", "u9"]);
        for n in all {
            assert_eq!(r.sup.index_by(&by, n), r.sup.index(n), "{n}");
        }
    };
    // "u0" leaving: neither finds it.
    by_index_by(&r);
    let mut back = def("u0");
    back.stop_timeout = 77;
    defs.push(back);
    let sum = reload(&mut r, defs, &[]);
    assert_eq!((sum.added, sum.unchanged, sum.changed), (1, 59, 0));
    assert_eq!(r.idx("u0"), old);
    by_index_by(&r);
    r.sup.link().unwrap();
    let mut checked = 0;
    // Every unit in the table, the one leaving among them.
    for (u, s) in (0..r.sup.len() as u16)
        .filter_map(|u| r.sup.slot(u).map(|s| (u, s)))
        .filter(|(_, s)| s.retired != Retired::Free)
    {
        let want: std::vec::Vec<u16> = s
            .def
            .after
            .iter()
            .map(|n| r.sup.index(n).unwrap())
            .collect();
        assert_eq!(
            s.rt.deps.as_slice(),
            want.as_slice(),
            "unit {u} {}",
            s.def.name
        );
        checked += want.len();
    }
    assert!(checked > 60, "{checked}");
}

fn reload(r: &mut Rig, defs: std::vec::Vec<UnitDef>, invalid: &[&str]) -> ReloadSummary {
    let mut out = Actions::new();
    let now = r.now;
    let sum = r.sup.reload(
        now,
        &mut defs.into_iter(),
        &|n| invalid.contains(&n),
        &mut out,
    );
    // Answer spawns as the edge would.
    let acts: std::vec::Vec<Action> = out.iter().copied().collect();
    r.log.extend(acts.iter().copied());
    for a in acts {
        if let Action::Spawn(u) = a {
            r.next_pid += 1;
            let pid = r.next_pid;
            r.ev(Event::spawned(u, pid));
        }
    }
    sum
}

/// A new unit waiting on probation for a dependency that the next reload
/// removes (its own file then invalid, kept): it fails, says why, and is
/// not judged, so no reload's verdict waits for it for ever.
#[test]
fn a_waiting_unit_whose_dependency_goes_is_not_judged() {
    let mut b = def("b");
    b.restart_delay = 60_000;
    let mut r = Rig::new(vec![b.clone()]);
    r.ev(Event::Boot);
    r.exit("b", Exit::Code(1));
    assert_eq!(r.state("b"), State::Backoff);
    reload(&mut r, vec![b, after(def("a"), &["b"])], &[]);
    let a = r.idx("a");
    assert!(r.sup.slot(a).unwrap().rt.probation);
    assert!(r.sup.on_probation(), "a waits, on probation");
    // b.unit deleted: a's file names an unknown unit, kept as loaded.
    reload(&mut r, vec![], &["a"]);
    let s = r.sup.slot(a).unwrap();
    assert_eq!(s.rt.phase, Phase::Failed);
    assert_eq!(s.rt.last_note, Some(Note::DepMissing));
    assert!(!r.sup.on_probation(), "a verdict would wait for ever");
}

/// A unit in backoff (its file invalid, kept) whose `after` unit a reload
/// removed: when its restart is due it fails as one waiting then would,
/// and says why. It was started without the order it asks for.
#[test]
fn a_unit_whose_dependency_went_fails_when_next_due() {
    let mut a = after(def("a"), &["b"]);
    a.restart_delay = 60_000;
    let mut r = Rig::new(vec![def("b"), a]);
    r.ev(Event::Boot);
    r.exit("a", Exit::Code(1));
    assert_eq!(r.state("a"), State::Backoff);
    reload(&mut r, vec![], &["a"]);
    let out = r.at(r.now + 60_000);
    let a = r.idx("a");
    assert!(
        out.contains(&Action::Announce(a, Note::DepMissing)),
        "{out:?}"
    );
    assert!(!out.contains(&Action::Spawn(a)));
    assert_eq!(r.state("a"), State::Failed);
}

/// A file whose lines moved (a comment added above `exec` and `after`)
/// is the same definition: its running unit is not touched.
#[test]
fn reload_leaves_a_unit_whose_lines_only_moved() {
    let mut d = after(def("web"), &["db"]);
    d.exec_line = 1;
    let mut r = Rig::new(vec![def("db"), d.clone()]);
    r.ev(Event::Boot);
    let pid = r.pid("web");
    d.exec_line = 4;
    r.log.clear();
    let sum = reload(&mut r, vec![def("db"), d], &[]);
    assert_eq!((sum.changed, sum.unchanged), (0, 2));
    assert!(r.log.is_empty(), "{:?}", r.log);
    assert_eq!(r.pid("web"), pid);
}

#[test]
fn reload_touches_only_what_changed() {
    let mut r = Rig::new(vec![
        def("same"),
        def("changed"),
        def("gone"),
        def("broken"),
    ]);
    r.ev(Event::Boot);
    let same_pid = r.pid("same");
    let broken_pid = r.pid("broken");
    let old_changed = r.pid("changed");
    let mut c = def("changed");
    c.stop_timeout = 1234;
    let sum = reload(&mut r, vec![def("same"), c, def("new")], &["broken"]);
    assert_eq!(
        (sum.added, sum.changed, sum.removed, sum.unchanged, sum.kept),
        (1, 1, 1, 1, 1)
    );
    assert_eq!(r.pid("same"), same_pid);
    assert_eq!(r.pid("broken"), broken_pid);
    assert_eq!(r.state("new"), State::Running);
    // changed and gone are stopping; once they exit, changed comes back on
    // its new definition and gone leaves the table.
    assert_eq!(r.state("changed"), State::Stopping);
    r.exit("changed", Exit::Signal(15));
    assert_eq!(r.state("changed"), State::Running);
    assert_ne!(r.pid("changed"), old_changed);
    let u = r.idx("changed");
    assert_eq!(r.sup.slot(u).unwrap().def.stop_timeout, 1234);
    let gone = r.sup.slots().position(|s| s.def.name == "gone").unwrap();
    let pid = r.sup.slot(gone as u16).unwrap().rt.pid;
    assert!(r.sup.index("gone").is_none());
    r.ev(Event::Exited {
        pid,
        exit: Exit::Signal(15),
    });
    assert!(r.sup.slots().all(|s| s.def.name != "gone"));
    // Its slot is free: the units after it keep their own indices.
    let named: std::vec::Vec<(u16, String)> = r
        .sup
        .indexed()
        .map(|(u, s)| (u, s.def.name.to_string()))
        .collect();
    assert!(
        named.iter().all(|(u, _)| usize::from(*u) != gone),
        "{named:?}"
    );
    assert!(
        named.iter().any(|(u, _)| usize::from(*u) > gone),
        "{named:?}"
    );
    for (u, name) in &named {
        assert_eq!(r.idx(name), *u, "{named:?}");
    }
    // Its slot is reused by the next new unit.
    let sum = reload(
        &mut r,
        vec![def("same"), def("changed"), def("new"), def("newer")],
        &["broken"],
    );
    assert_eq!(sum.added, 1);
    assert_eq!(sum.new_slots, vec![gone as u16]);
    assert_eq!(r.idx("newer") as usize, gone);
    assert_eq!(r.state("newer"), State::Running);
}

#[test]
fn reload_starts_a_fixed_failed_unit() {
    let mut r = Rig::new(vec![oneshot("setup"), after(def("web"), &["setup"])]);
    r.ev(Event::Boot);
    r.exit("setup", Exit::Code(1));
    assert_eq!(r.state("web"), State::Stopped);
    let mut fixed = oneshot("setup");
    fixed.description.push_str("fixed").unwrap();
    reload(&mut r, vec![fixed, after(def("web"), &["setup"])], &[]);
    assert_eq!(r.state("setup"), State::Starting);
    // web is unchanged, so it is not touched: started by hand after.
    let u = r.idx("web");
    r.exit("setup", Exit::Code(0));
    r.ev(Event::Start { unit: u });
    assert_eq!(r.state("web"), State::Running);
}

#[test]
fn protection_is_the_sum_of_the_units_and_max_wins() {
    use crate::unit::Limit;
    let mut a = def("a");
    a.limits
        .edit(|l| l.memory_low = Some(Limit::Value(4 << 20)));
    let mut b = def("b");
    b.limits
        .edit(|l| l.memory_low = Some(Limit::Value(8 << 20)));
    b.limits
        .edit(|l| l.memory_min = Some(Limit::Value(1 << 20)));
    let r = Rig::new(vec![a.clone(), b.clone(), def("c")]);
    assert_eq!(
        r.sup.protection(),
        (Limit::Value(12 << 20), Limit::Value(1 << 20))
    );
    b.limits.edit(|l| l.memory_min = Some(Limit::Max));
    let r = Rig::new(vec![a, b]);
    assert_eq!(r.sup.protection().1, Limit::Max);
    assert_eq!(
        Rig::new(vec![]).sup.protection(),
        (Limit::Value(0), Limit::Value(0))
    );
}

fn notify(name: &str) -> UnitDef {
    let mut d = def(name);
    d.ready = crate::unit::Ready::Notify;
    d.start_timeout = 2_000;
    d
}

/// The restart each failure in `acts` announced.
fn restarts_announced(acts: &[Action]) -> std::vec::Vec<Option<Delay>> {
    acts.iter()
        .filter_map(|a| match *a {
            Action::Announce(
                _,
                Note::Died { restart_in, .. }
                | Note::SpawnFailed { restart_in }
                | Note::StartTimeout { restart_in }
                | Note::WatchdogTimeout { restart_in },
            ) => Some(restart_in),
            _ => None,
        })
        .collect()
}

fn verdicts(acts: &[Action]) -> std::vec::Vec<(u16, bool)> {
    acts.iter()
        .filter_map(|a| match *a {
            Action::Verdict { unit, good } => Some((unit, good)),
            _ => None,
        })
        .collect()
}

/// READY=1 read before the exec handshake's answer (a namespace's reaper
/// still held the exec pipe): the unit is running once its pid is known,
/// never running without one.
#[test]
fn ready_before_spawned_is_kept_until_the_pid_comes() {
    let mut r = Rig::new(vec![notify("web")]);
    let u = r.idx("web");
    let mut out = Actions::new();
    r.sup.step(r.now, Event::Boot, &mut out);
    assert_eq!(out.as_slice(), &[Action::Spawn(u)]);
    out.clear();
    r.sup.step(r.now, Event::Ready { unit: u }, &mut out);
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(r.state("web"), State::Starting);
    assert_eq!(r.pid("web"), 0);
    let a = r.ev(Event::spawned(u, 321));
    assert_eq!(a, vec![Action::Announce(u, Note::Running { pid: 321 })]);
    assert_eq!(r.state("web"), State::Running);
    // A later start does not inherit it.
    r.exit("web", Exit::Code(1));
    let t = r.sup.next_deadline().unwrap();
    r.at(t);
    assert_eq!(r.state("web"), State::Starting);
}

#[test]
fn start_timeout_is_a_failed_start_with_backoff() {
    let mut r = Rig::new(vec![notify("slow")]);
    r.ev(Event::Boot);
    let u = r.idx("slow");
    assert_eq!(r.state("slow"), State::Starting);
    assert_eq!(r.sup.next_deadline(), Some(3_000));
    let a = r.at(3_000);
    assert!(a.contains(&Action::KillCgroup(u)));
    assert!(a.contains(&Action::Announce(
        u,
        Note::StartTimeout {
            restart_in: Some(Delay::ms(100))
        }
    )));
    assert_eq!(r.state("slow"), State::Backoff);
    // The killed process is reaped as an orphan: the backoff stands.
    assert_eq!(r.pid("slow"), 0);
    r.ev(Event::Exited {
        pid: 101,
        exit: Exit::Signal(9),
    });
    assert_eq!(r.state("slow"), State::Backoff);
    r.at(3_100);
    assert_eq!(r.state("slow"), State::Starting);
    assert_eq!(r.sup.slot(u).unwrap().rt.restarts, 1);
    // Ready in time: the deadline goes.
    r.ev(Event::Ready { unit: u });
    assert_eq!(r.state("slow"), State::Running);
    assert_eq!(r.sup.next_deadline(), None);
    // 0: no limit.
    let mut d = notify("patient");
    d.start_timeout = 0;
    let mut r = Rig::new(vec![d]);
    r.ev(Event::Boot);
    assert_eq!(r.sup.next_deadline(), None);
}

#[test]
fn start_timeout_counts_against_the_start_limit() {
    let mut d = notify("slow");
    d.seldom.start_limit = Some(StartLimit {
        count: 2,
        window: 60_000,
    });
    let mut r = Rig::new(vec![d]);
    r.ev(Event::Boot);
    r.at(3_000);
    r.at(3_100);
    let a = r.at(5_100);
    assert_eq!(r.state("slow"), State::Failed);
    assert!(a.contains(&Action::Announce(0, Note::StartLimit)));
}

#[test]
fn reload_puts_changed_units_on_probation_until_ready() {
    let mut r = Rig::new(vec![notify("web"), def("other")]);
    r.ev(Event::Boot);
    let u = r.idx("web");
    r.ev(Event::Ready { unit: u });
    let other = r.pid("other");
    let mut c = notify("web");
    c.description.push_str("v2").unwrap();
    reload(&mut r, vec![c, def("other")], &[]);
    assert!(r.sup.on_probation());
    r.exit("web", Exit::Signal(15));
    assert_eq!(r.state("web"), State::Starting);
    let a = r.ev(Event::Ready { unit: u });
    assert_eq!(verdicts(&a), vec![(u, true)]);
    assert!(!r.sup.on_probation());
    assert_eq!(r.pid("other"), other);
}

#[test]
fn a_bad_change_is_judged_and_reverted() {
    for how in ["spawn", "exit", "timeout"] {
        let mut r = Rig::new(vec![notify("web")]);
        r.ev(Event::Boot);
        let u = r.idx("web");
        r.ev(Event::Ready { unit: u });
        let good = r.sup.slot(u).unwrap().def.clone();
        let mut bad = notify("web");
        bad.description.push_str("bad").unwrap();
        reload(&mut r, vec![bad], &[]);
        // Stopping the old one; answer its stop, and the new spawn.
        let pid = r.pid("web");
        let mut out = Actions::new();
        r.sup.step(
            r.now,
            Event::Exited {
                pid,
                exit: Exit::Signal(15),
            },
            &mut out,
        );
        assert!(out.contains(&Action::Spawn(u)), "{how}");
        let a = match how {
            "spawn" => r.ev(Event::SpawnFailed { unit: u }),
            "exit" => {
                r.ev(Event::spawned(u, 500));
                r.ev(Event::Exited {
                    pid: 500,
                    exit: Exit::Code(1),
                })
            }
            _ => {
                r.ev(Event::spawned(u, 500));
                let t = r.sup.next_deadline().unwrap();
                r.at(t)
            }
        };
        assert_eq!(verdicts(&a), vec![(u, false)], "{how}");
        // Said without a restart: the revert's start is the next one.
        assert_eq!(restarts_announced(&a), vec![None], "{how}");
        assert_eq!(r.state("web"), State::Backoff, "{how}");
        let mut out = Actions::new();
        r.sup.revert(r.now, u, Some(good.clone()), &mut out);
        assert_eq!(out.as_slice(), &[Action::Spawn(u)], "{how}");
        assert_eq!(r.sup.slot(u).unwrap().def, good);
        assert!(!r.sup.on_probation());
    }
}

/// With `restart_delay = 0` a failed start is restarted in its own step,
/// but not on probation: PID 1 performs the bad verdict (`revert`, which
/// starts the good definition) before the step's later actions, so a
/// spawn in the same step would start the unit twice, the first start
/// then killed by the second.
#[test]
fn a_bad_change_with_no_restart_delay_starts_once_on_the_good_definition() {
    for how in ["spawn", "exit", "timeout"] {
        let mut web = notify("web");
        web.restart_delay = 0;
        let mut r = Rig::new(vec![web.clone()]);
        r.ev(Event::Boot);
        let u = r.idx("web");
        r.ev(Event::Ready { unit: u });
        let good = r.sup.slot(u).unwrap().def.clone();
        let mut bad = web.clone();
        bad.description.push_str("bad").unwrap();
        reload(&mut r, vec![bad], &[]);
        // The old process's stop; the new definition's start not answered
        // yet.
        let pid = r.pid("web");
        let mut out = Actions::new();
        let exit = Exit::Signal(15);
        r.sup.step(r.now, Event::Exited { pid, exit }, &mut out);
        assert!(out.contains(&Action::Spawn(u)), "{how}");
        let ev = match how {
            "spawn" => Event::SpawnFailed { unit: u },
            "exit" => {
                r.ev(Event::spawned(u, 500));
                Event::Exited {
                    pid: 500,
                    exit: Exit::Code(1),
                }
            }
            _ => {
                r.ev(Event::spawned(u, 500));
                r.now = r.sup.next_deadline().unwrap();
                Event::Tick
            }
        };
        // The step and its actions in PID 1's order, the verdict's revert
        // in place.
        let mut out = Actions::new();
        r.sup.step(r.now, ev, &mut out);
        let mut spawns = 0;
        for a in out.iter() {
            match *a {
                Action::Spawn(s) if s == u => spawns += 1,
                Action::Verdict { unit, good: false } => {
                    let mut gate = Actions::new();
                    r.sup.revert(r.now, unit, Some(good.clone()), &mut gate);
                    assert_eq!(gate.as_slice(), &[Action::Spawn(u)], "{how}");
                    spawns += 1;
                }
                _ => {}
            }
        }
        assert_eq!(spawns, 1, "{how}: {out:?}");
        assert_eq!(r.sup.slot(u).unwrap().def, good, "{how}");
        assert_eq!(r.state("web"), State::Starting, "{how}");
    }
}

/// A changed unit whose first failure hits a start limit that reboots:
/// the bad verdict comes before the shutdown takes every unit off
/// probation, so PID 1 puts the good file back before the reboot (else
/// the board boots the bad file again, and again). Before PID 1 has been
/// up `LIMIT_ACTION_FLOOR` nothing is held, as the revert the verdict
/// brings starts the good definition at once (a reboot said to be coming
/// would not come).
#[test]
fn a_bad_change_that_hits_a_rebooting_start_limit_is_judged_first() {
    for (up, reboot) in [(LIMIT_ACTION_FLOOR, true), (1_000, false)] {
        let mut web = notify("web");
        web.seldom.start_limit = Some(StartLimit {
            count: 1,
            window: 60_000,
        });
        web.start_limit_action = LimitAction::Reboot;
        let mut r = Rig::new(vec![web.clone()]);
        r.now = up;
        r.ev(Event::Boot);
        let u = r.idx("web");
        r.ev(Event::Ready { unit: u });
        let mut bad = web.clone();
        bad.description.push_str("bad").unwrap();
        reload(&mut r, vec![bad], &[]);
        r.exit("web", Exit::Signal(15));
        let a = r.exit("web", Exit::Code(1));
        assert_eq!(verdicts(&a), vec![(u, false)], "{a:?}");
        let kind = reboot.then_some(ShutdownKind::Reboot);
        assert_eq!(r.sup.shutting_down(), kind);
        assert_eq!(r.sup.slot(u).unwrap().rt.deadline, None, "held");
    }
}

/// A unit on probation whose dependency failed is not judged (it never
/// ran), but its probation ends: a reload waiting for verdicts would
/// otherwise wait for one that never comes.
#[test]
fn a_changed_unit_whose_dependency_failed_leaves_probation() {
    let mut r = Rig::new(vec![oneshot("prep")]);
    r.ev(Event::Boot);
    r.exit("prep", Exit::Code(1));
    assert_eq!(r.state("prep"), State::Failed);
    reload(
        &mut r,
        vec![oneshot("prep"), after(notify("web"), &["prep"])],
        &[],
    );
    assert_eq!(r.state("web"), State::Stopped);
    assert!(!r.sup.on_probation());
}

/// A reload changes a oneshot and a unit after it; the oneshot's new
/// definition fails, and its dependant gives up in the same step. The
/// revert starts the oneshot's good definition again: its dependants
/// wait for it again, and start once it has.
#[test]
fn dependants_of_a_reverted_unit_wait_for_it_again() {
    let mut r = Rig::new(vec![oneshot("prep"), after(notify("web"), &["prep"])]);
    r.ev(Event::Boot);
    r.exit("prep", Exit::Code(0));
    let (p, w) = (r.idx("prep"), r.idx("web"));
    r.ev(Event::Ready { unit: w });
    assert_eq!(r.state("web"), State::Running);
    let good = r.sup.slot(p).unwrap().def.clone();
    let mut prep2 = oneshot("prep");
    prep2.description.push_str("v2").unwrap();
    let mut web2 = after(notify("web"), &["prep"]);
    web2.description.push_str("v2").unwrap();
    reload(&mut r, vec![prep2, web2], &[]);
    r.exit("web", Exit::Signal(15));
    let a = r.exit("prep", Exit::Code(1));
    assert_eq!(verdicts(&a), vec![(p, false)], "{a:?}");
    assert_eq!(r.state("web"), State::Stopped);
    let mut out = Actions::new();
    let now = r.now;
    r.sup.revert(now, p, Some(good), &mut out);
    assert_eq!(out.as_slice(), &[Action::Spawn(p)]);
    assert!(r.sup.slot(w).unwrap().rt.want);
    assert_eq!(r.state("web"), State::Starting);
    r.ev(Event::spawned(p, 900));
    let a = r.ev(Event::Exited {
        pid: 900,
        exit: Exit::Code(0),
    });
    assert_eq!(r.spawned(&a), ["web"]);
    // Its new definition was never judged: it is now.
    assert!(r.sup.on_probation());
    let a = r.ev(Event::Ready { unit: w });
    assert_eq!(verdicts(&a), vec![(w, true)]);
}

/// The units after those: a chain gave up, a chain waits again; but not
/// a unit an operator stopped meanwhile.
#[test]
fn a_revert_wakes_a_chain_of_dependants_but_not_one_stopped_by_hand() {
    // `top` before `mid` in the table: woken only by a second pass.
    let mut r = Rig::new(vec![
        oneshot("prep"),
        after(def("top"), &["mid"]),
        after(def("mid"), &["prep"]),
        after(def("aside"), &["prep"]),
    ]);
    r.ev(Event::Boot);
    r.exit("prep", Exit::Code(0));
    let p = r.idx("prep");
    let good = r.sup.slot(p).unwrap().def.clone();
    let mut prep2 = oneshot("prep");
    prep2.description.push_str("v2").unwrap();
    let mut defs: std::vec::Vec<UnitDef> = r.sup.slots().map(|s| s.def.clone()).collect();
    defs[usize::from(p)] = prep2;
    reload(&mut r, defs, &[]);
    // The new prep fails before its dependants started again? They run:
    // stop them first, then let them give up on it.
    for n in ["mid", "top", "aside"] {
        let u = r.idx(n);
        r.ev(Event::Stop { unit: u });
        r.exit(n, Exit::Signal(15));
        r.ev(Event::Start { unit: u });
    }
    let a = r.exit("prep", Exit::Code(1));
    assert_eq!(verdicts(&a), vec![(p, false)], "{a:?}");
    for n in ["mid", "top", "aside"] {
        assert_eq!(r.state(n), State::Stopped, "{n}");
    }
    r.ev(Event::Stop {
        unit: r.idx("aside"),
    });
    let mut out = Actions::new();
    let now = r.now;
    r.sup.revert(now, p, Some(good), &mut out);
    for n in ["mid", "top"] {
        assert!(r.sup.slot(r.idx(n)).unwrap().rt.want, "{n}");
    }
    assert!(!r.sup.slot(r.idx("aside")).unwrap().rt.want);
    assert_eq!(r.state("aside"), State::Stopped);
}

#[test]
fn a_unit_given_back_while_still_stopping_keeps_its_slot() {
    let mut slow = def("web");
    slow.stop_timeout = 10_000;
    let mut r = Rig::new(vec![slow.clone(), def("other")]);
    r.ev(Event::Boot);
    let u = r.idx("web");
    reload(&mut r, vec![def("other")], &[]);
    assert_eq!(r.sup.slot(u).unwrap().rt.phase, Phase::Stopping);
    let mut back = slow.clone();
    back.description.push_str("back").unwrap();
    let sum = reload(&mut r, vec![back.clone(), def("other")], &[]);
    assert_eq!(r.sup.index("web"), Some(u));
    assert_eq!(r.sup.len(), 2, "{sum:?}");
    assert_eq!(r.state("web"), State::Stopping);
    let a = r.exit("web", Exit::Signal(15));
    assert_eq!(r.spawned(&a), ["web"]);
    assert_eq!(r.sup.slot(u).unwrap().def, back);
}

#[test]
fn started_units_are_judged_after_the_hold_and_new_bad_units_stop() {
    let mut r = Rig::new(vec![def("a")]);
    r.ev(Event::Boot);
    reload(&mut r, vec![def("a"), def("b")], &[]);
    let b = r.idx("b");
    assert_eq!(r.state("b"), State::Running);
    assert_eq!(r.sup.next_deadline(), Some(r.now + GATE_HOLD));
    let a = r.at(r.now + GATE_HOLD);
    assert_eq!(verdicts(&a), vec![(b, true)]);
    // A new unit that exits at once has no good definition: stopped.
    reload(&mut r, vec![def("a"), def("b"), def("c")], &[]);
    let c = r.idx("c");
    let a = r.exit("c", Exit::Code(1));
    assert_eq!(verdicts(&a), vec![(c, false)]);
    let mut out = Actions::new();
    r.sup.revert(r.now, c, None, &mut out);
    assert_eq!(r.state("c"), State::Stopped);
    assert_eq!(r.sup.next_deadline(), None);
}

#[test]
fn stop_ends_probation_without_a_verdict() {
    let mut r = Rig::new(vec![]);
    reload(&mut r, vec![notify("n")], &[]);
    let a = r.ev(Event::Stop { unit: r.idx("n") });
    assert!(verdicts(&a).is_empty());
    assert!(!r.sup.on_probation());
}

/// A unit shed under memory pressure while on probation stays on it: not
/// waited for while it is down, and judged when it is started again
/// (the calm's `Unshed`). It left probation as a stop by hand does, and
/// its new definition then failed for ever unjudged.
#[test]
fn a_shed_unit_keeps_its_probation_for_its_next_start() {
    let mut r = Rig::new(vec![]);
    reload(&mut r, vec![notify("n")], &[]);
    let n = r.idx("n");
    let a = r.ev(Event::Shed { unit: n });
    assert!(verdicts(&a).is_empty());
    r.exit("n", Exit::Signal(15));
    assert_eq!(r.state("n"), State::Stopped);
    assert!(!r.sup.on_probation(), "waited for while shed");
    assert!(r.sup.slot(n).unwrap().judged_when_started());
    r.ev(Event::Unshed { unit: n });
    assert_eq!(r.state("n"), State::Starting);
    assert!(r.sup.on_probation());
    let a = r.exit("n", Exit::Code(1));
    assert_eq!(verdicts(&a), vec![(n, false)], "{a:?}");
}

#[test]
fn restored_and_adopted_units_are_supervised_as_before() {
    // A table handed over whole: same phases, pids, counts.
    let mut r = Rig::new(vec![def("a"), notify("b")]);
    r.ev(Event::Boot);
    r.exit("a", Exit::Code(1));
    let mut sup = Supervisor::new();
    for s in r.sup.slots() {
        sup.restore(s.def.clone(), s.rt.clone(), s.retired).unwrap();
    }
    sup.link().unwrap();
    assert_eq!(sup.slot(0).unwrap().rt.phase, Phase::Backoff);
    assert_eq!(sup.next_deadline(), r.sup.next_deadline());
    let b = sup.slot(1).unwrap().rt.pid;
    let mut out = Actions::new();
    sup.step(r.now, Event::Ready { unit: 1 }, &mut out);
    assert_eq!(
        out.as_slice(),
        &[Action::Announce(1, Note::Running { pid: b })]
    );
    // Adopted: running with the pid found, and its exit restarts it.
    let mut sup = Supervisor::new();
    sup.add(def("c")).unwrap();
    sup.add(oneshot("d")).unwrap();
    sup.link().unwrap();
    sup.adopt(0, 77, 5_000);
    sup.adopt(1, 78, 5_000);
    assert_eq!(sup.slot(0).unwrap().rt.phase, Phase::Running);
    assert_eq!(sup.slot(1).unwrap().rt.phase, Phase::Starting);
    let mut out = Actions::new();
    sup.step(5_000, Event::Boot, &mut out);
    assert!(out.is_empty(), "{out:?}");
    sup.step(
        6_000,
        Event::Exited {
            pid: 77,
            exit: Exit::Signal(9),
        },
        &mut out,
    );
    assert_eq!(sup.slot(0).unwrap().rt.phase, Phase::Backoff);
}

/// A reload that gives a unit a start limit sizes its failure history:
/// the new COUNT of failed starts in a row fails it.
#[test]
fn reload_sizes_the_start_limit_history() {
    let mut r = Rig::new(vec![def("late")]);
    r.ev(Event::Boot);
    let mut d = def("late");
    d.seldom.start_limit = Some(StartLimit {
        count: 2,
        window: 10_000,
    });
    reload(&mut r, vec![d], &[]);
    // Changed while running: stopped and started again on the new one.
    assert_eq!(r.state("late"), State::Stopping);
    r.exit("late", Exit::Signal(15));
    assert_eq!(r.state("late"), State::Running);
    r.exit("late", Exit::Code(1));
    let due = r.sup.next_deadline().unwrap();
    r.at(due);
    assert_eq!(r.state("late"), State::Running);
    let a = r.exit("late", Exit::Code(1));
    assert!(a.contains(&Action::Announce(r.idx("late"), Note::StartLimit)));
    assert_eq!(r.state("late"), State::Failed);
}

/// `limits_gen` moves when, and only when, a unit's limits change: PID 1
/// writes a cgroup's limits again on that alone.
#[test]
fn limits_gen_counts_changes_of_the_limits_only() {
    let mut r = Rig::new(vec![def("web"), def("db")]);
    r.ev(Event::Boot);
    let gen = |r: &Rig, n: &str| r.sup.slot(r.idx(n)).unwrap().limits_gen;
    let (web0, db0) = (gen(&r, "web"), gen(&r, "db"));
    let mut web = def("web");
    web.stop_timeout = 1234;
    let mut db = def("db");
    db.limits
        .edit(|l| l.memory_max = Some(crate::unit::Limit::Value(1 << 20)));
    reload(&mut r, vec![web.clone(), db.clone()], &[]);
    assert_eq!(gen(&r, "web"), web0, "stop_timeout is no limit");
    assert_ne!(gen(&r, "db"), db0, "memory.max changed");
    let db1 = gen(&r, "db");
    web.stop_timeout = 99;
    reload(&mut r, vec![web, db], &[]);
    assert_eq!(gen(&r, "db"), db1, "same limits again");
}

/// The loop's action buffer holds `max_actions(units)` of these for each
/// unit, and every slot a `Note`: a `Delay` (two `u32` halves, the high
/// one never 0) and an `Exit` of 4 bytes keep them at 16 and 12 bytes
/// where an `Option<u64>` and an `i32` made them 32 and 24.
#[test]
fn action_and_note_stay_small() {
    assert_eq!(core::mem::size_of::<Option<Delay>>(), 8);
    assert_eq!(core::mem::size_of::<Exit>(), 4);
    assert_eq!(core::mem::size_of::<Action>(), 16);
    assert_eq!(core::mem::size_of::<Note>(), 12);
    assert_eq!(core::mem::size_of::<Option<Note>>(), 12);
    assert_eq!(core::mem::size_of::<Event>(), 8);
    // A slot a unit, in PID 1's table: docs/architecture.md, "Memory".
    // (96 since `ready_early`: 88 and 304 before.)
    assert!(core::mem::size_of::<Runtime>() <= 96);
    assert!(core::mem::size_of::<Slot>() <= 312);
    for pid in [0, 1, 65_535, 65_536, 4_194_304, u32::MAX] {
        assert_eq!(PidHalves::new(pid).get(), pid);
    }
}

/// An `Exit` travels as it did when its numbers were `i32`s (a re-exec's
/// state, written by either binary, reads in the other), and the kernel's
/// `int`s beyond `i16` clamp.
#[test]
fn exit_is_its_old_wire_form() {
    #[derive(serde::Serialize)]
    enum Old {
        Code(i32),
        Signal(i32),
        OomKill,
    }
    for (old, new) in [
        (Old::Code(0), Exit::Code(0)),
        (Old::Code(255), Exit::Code(255)),
        (Old::Code(-1), Exit::Code(-1)),
        (Old::Signal(9), Exit::Signal(9)),
        (Old::Signal(64), Exit::Signal(64)),
        (Old::OomKill, Exit::OomKill),
    ] {
        let mut a = [0u8; 16];
        let mut b = [0u8; 16];
        let a = postcard::to_slice(&old, &mut a).unwrap();
        assert_eq!(a, postcard::to_slice(&new, &mut b).unwrap());
        assert_eq!(postcard::from_bytes::<Exit>(a).unwrap(), new);
    }
    assert_eq!(Exit::code(70_000), Exit::Code(i16::MAX));
    assert_eq!(Exit::code(-70_000), Exit::Code(i16::MIN));
    assert_eq!(Exit::signal(15), Exit::Signal(15));
}

/// A `Delay` is the `Millis` it was made from, in text and on the wire
/// (the handover's postcard bytes are those of the `u64`).
#[test]
fn delay_is_its_millis() {
    for ms in [
        0,
        1,
        100,
        u64::from(u32::MAX),
        u64::from(u32::MAX) + 1,
        u64::MAX - (1 << 32),
    ] {
        let d = Delay::ms(ms);
        assert_eq!(d.get(), ms);
        assert_eq!(format!("{d}"), format!("{ms}"));
        let mut a = [0u8; 16];
        let mut b = [0u8; 16];
        let a = postcard::to_slice(&Some(d), &mut a).unwrap();
        let b = postcard::to_slice(&Some(ms), &mut b).unwrap();
        assert_eq!(a, b);
        let back: Option<Delay> = postcard::from_bytes(a).unwrap();
        assert_eq!(back, Some(d));
    }
    assert!(Delay::ms(u64::from(u32::MAX)) < Delay::ms(u64::from(u32::MAX) + 1));
    // Past that it saturates: a delay over 2^64 - 2^32 - 1 ms (hundreds
    // of millions of years) reads back as one that long, in order.
    let top = u64::MAX - (1 << 32);
    for ms in [top + 1, top + (1 << 31), u64::MAX] {
        assert_eq!(Delay::ms(ms).get(), top);
        assert_eq!(Delay::ms(ms), Delay::ms(top));
    }
    assert!(Delay::ms(top - 1) < Delay::ms(u64::MAX));
}

/// The edge's later word on how a run ended (an OOM kill told apart after
/// the restart's spawn) replaces the unit's last exit; a unit that never
/// ended has none to replace.
#[test]
fn an_amended_exit_is_the_units_last_exit() {
    let mut r = Rig::new(vec![def("web"), def("idle")]);
    r.ev(Event::Boot);
    r.exit("web", Exit::Signal(9));
    let web = r.idx("web");
    r.sup.amend_exit(web, Exit::OomKill);
    assert_eq!(r.sup.slot(web).unwrap().rt.last_exit, Some(Exit::OomKill));
    let idle = r.idx("idle");
    r.sup.amend_exit(idle, Exit::OomKill);
    assert_eq!(r.sup.slot(idle).unwrap().rt.last_exit, None);
}

// ---- Behaviour no test checked before (the forty-fourth round's mutation run: each test fails under its mutant) ----

/// A reload whose new definition drops `after`: the unit no longer waits
/// for (nor gives up on) the unit it named.
#[test]
fn a_reload_that_drops_an_after_forgets_it() {
    let mut r = Rig::new(vec![def("b"), after(def("a"), &["b"])]);
    r.ev(Event::Boot);
    assert_eq!(r.state("a"), State::Running);
    r.ev(Event::Stop { unit: r.idx("b") });
    r.exit("b", Exit::Signal(15));
    assert_eq!(r.state("b"), State::Stopped);
    let mut a2 = def("a");
    a2.description.push_str("v2").unwrap();
    reload(&mut r, vec![def("b"), a2], &[]);
    r.exit("a", Exit::Signal(15));
    assert_eq!(r.state("a"), State::Running, "a still after b");
    assert!(r.sup.slot(r.idx("a")).unwrap().rt.deps.is_empty());
}

/// A put-back restores the good definition's `after`: the unit waits for
/// the unit its good definition starts after.
#[test]
fn a_revert_puts_the_good_after_back() {
    let mut db = notify("db");
    db.restart_delay = 60_000;
    let mut r = Rig::new(vec![db, after(def("web"), &["db"])]);
    r.ev(Event::Boot);
    let (d, w) = (r.idx("db"), r.idx("web"));
    r.ev(Event::Ready { unit: d });
    assert_eq!(r.state("web"), State::Running);
    let good = r.sup.slot(w).unwrap().def.clone();
    let bad = def("web"); // no `after`
    let db_def = r.sup.slot(d).unwrap().def.clone();
    reload(&mut r, vec![db_def, bad], &[]);
    r.exit("web", Exit::Signal(15));
    assert_eq!(r.state("web"), State::Running);
    r.exit("db", Exit::Code(1));
    assert_eq!(r.state("db"), State::Backoff);
    let a = r.exit("web", Exit::Code(3));
    assert_eq!(verdicts(&a), vec![(w, false)]);
    let mut out = Actions::new();
    let now = r.now;
    r.sup.revert(now, w, Some(good), &mut out);
    assert!(
        !out.contains(&Action::Spawn(w)),
        "web started before db is ready: {out:?}"
    );
    assert_eq!(r.sup.slot(w).unwrap().rt.deps.as_slice(), &[d]);
}

/// A unit that gave up on its dependency is not started again when that
/// dependency is started by hand, nor by a revert of an unrelated unit.
#[test]
fn an_unrelated_revert_does_not_wake_a_unit_that_gave_up() {
    let mut y = notify("y");
    y.restart_delay = 60_000;
    let mut c = after(def("c"), &["x"]);
    c.restart_delay = 100;
    let mut r = Rig::new(vec![oneshot("p"), y, after(def("x"), &["y"]), c]);
    r.ev(Event::Boot);
    r.exit("p", Exit::Code(0));
    r.ev(Event::Ready { unit: r.idx("y") });
    assert_eq!(r.state("c"), State::Running);
    // x stopped by hand; c crashes and, due again, gives up on x.
    r.ev(Event::Stop { unit: r.idx("x") });
    r.exit("x", Exit::Signal(15));
    r.exit("c", Exit::Code(1));
    r.at(r.now + 100);
    assert_eq!(r.state("c"), State::Stopped);
    assert!(r.sup.slot(r.idx("c")).unwrap().gave_up_on_dependency());
    // y goes into a long backoff; x started by hand waits for it.
    r.exit("y", Exit::Code(1));
    r.ev(Event::Start { unit: r.idx("x") });
    assert_eq!(r.sup.slot(r.idx("x")).unwrap().rt.phase, Phase::Waiting);
    // An unrelated oneshot p: changed, fails, reverted.
    let p = r.idx("p");
    let good = r.sup.slot(p).unwrap().def.clone();
    let mut p2 = oneshot("p");
    p2.description.push_str("v2").unwrap();
    let defs: std::vec::Vec<UnitDef> = r
        .sup
        .slots()
        .map(|s| {
            if s.def.name.as_str() == "p" {
                p2.clone()
            } else {
                s.def.clone()
            }
        })
        .collect();
    reload(&mut r, defs, &[]);
    let a = r.exit("p", Exit::Code(1));
    assert_eq!(verdicts(&a), vec![(p, false)]);
    let mut out = Actions::new();
    let now = r.now;
    r.sup.revert(now, p, Some(good), &mut out);
    let cs = r.sup.slot(r.idx("c")).unwrap();
    assert!(!cs.rt.want, "c woken by p's revert");
    assert_eq!(r.state("c"), State::Stopped);
}

/// `restart = on-failure` with `restart_delay = 0ms` is restarted in place
/// after a failure (the run goes on); a clean exit ends it.
#[test]
fn on_failure_restarts_in_place_only_after_a_failure() {
    let mut d = def("svc");
    d.restart = Restart::OnFailure;
    d.restart_delay = 0;
    let (mut r, svc, pid) = svc_up_five_seconds(d);
    let a = r.ev(Event::Relaunched {
        unit: svc,
        exit: Exit::Code(1),
    });
    assert!(!a.contains(&Action::KillCgroup(svc)), "{a:?}");
    assert_eq!(r.state("svc"), State::Running);
    assert_eq!(r.pid("svc"), pid);
    r.now += 5000;
    let a = r.ev(Event::Relaunched {
        unit: svc,
        exit: Exit::Code(0),
    });
    assert!(a.contains(&Action::KillCgroup(svc)), "{a:?}");
    assert_eq!(r.state("svc"), State::Stopped);
}

/// "A run of a second or more is restarted at once every time": a run of
/// exactly 1000 ms is no crash loop.
#[test]
fn a_run_of_exactly_a_second_is_restarted_at_once() {
    let mut d = def("svc");
    d.restart_delay = 0;
    let mut r = Rig::new(vec![d]);
    r.ev(Event::Boot);
    r.exit("svc", Exit::Code(1)); // first of a row: at once
    assert_eq!(r.state("svc"), State::Running);
    r.now += 1000;
    let a = r.exit("svc", Exit::Code(1));
    assert_eq!(restarts_announced(&a), vec![Some(Delay::ms(0))]);
}

/// A start limit's held action, with a shutdown begun meanwhile: at the
/// floor nothing more is said or done.
#[test]
fn a_held_limit_action_is_not_said_again_in_a_shutdown() {
    let mut r = limit_hit_at_300ms(false);
    r.ev(Event::Shutdown(ShutdownKind::Poweroff));
    let a = r.at(LIMIT_ACTION_FLOOR);
    assert!(!a.contains(&Action::Announce(0, Note::StartLimit)), "{a:?}");
}

/// A settle passes over its waiting units once, and once more a level of
/// failure cascade, not once a unit: 100 units boot in a few passes. A
/// pass a unit (quadratic) changed no outcome, so no other test saw it.
#[test]
fn a_settle_passes_over_its_units_a_few_times_not_once_a_unit() {
    let defs: std::vec::Vec<UnitDef> = (0..100).map(|i| def(&format!("u{i}"))).collect();
    let mut r = Rig::new(defs);
    super::settle::PASSES.with(|p| p.set(0));
    r.ev(Event::Boot);
    let passes = super::settle::PASSES.with(|p| p.get());
    assert!((1..=3).contains(&passes), "{passes} passes");
}
