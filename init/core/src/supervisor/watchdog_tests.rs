//! `watchdog`: armed at ready, moved on by each `WATCHDOG=1`, and on
//! expiry a kill that counts as a failure.

use super::*;
use crate::unit::StartLimit;

/// A `ready = sd_notify` service with `watchdog = 2s`.
fn watched(name: &str) -> UnitDef {
    let mut d = UnitDef::with_defaults(name);
    d.exec.push("/bin/true").unwrap();
    d.ready = Ready::SdNotify;
    d.seldom.watchdog = Some(2_000);
    d
}

/// One step; a Spawn is answered with Spawned (pid 100, 101, ...).
fn step(sup: &mut Supervisor, now: Millis, ev: Event, pid: &mut u32) -> std::vec::Vec<Action> {
    let mut all = std::vec::Vec::new();
    let mut queue = std::collections::VecDeque::from([ev]);
    while let Some(e) = queue.pop_front() {
        let mut out = Actions::new();
        sup.step(now, e, &mut out);
        for a in out.iter() {
            if let Action::Spawn(unit) = *a {
                *pid += 1;
                queue.push_back(Event::spawned(unit, *pid));
            }
        }
        all.extend(out.iter().copied());
    }
    all
}

/// Boxed: a supervisor is large, and a test holds several.
fn started(d: UnitDef) -> (Box<Supervisor>, u32) {
    let mut sup = Box::new(Supervisor::new());
    sup.add(d).unwrap();
    sup.link().unwrap();
    let mut pid = 99;
    step(&mut sup, 0, Event::Boot, &mut pid);
    (sup, pid)
}

fn phase(sup: &Supervisor) -> Phase {
    sup.slot(0).unwrap().rt.phase
}

#[test]
fn not_armed_before_ready_then_armed_and_moved_on_by_pings() {
    let (mut sup, mut pid) = started(watched("w"));
    assert_eq!(phase(&sup), Phase::Starting);
    // Starting: only the start timeout counts.
    assert_eq!(sup.slot(0).unwrap().rt.watchdog_at, None);
    step(&mut sup, 500, Event::Ready { unit: 0 }, &mut pid);
    assert_eq!(phase(&sup), Phase::Running);
    assert_eq!(sup.next_deadline(), Some(2_500));
    // A ping at 2400 gives it until 4400: the tick at 2500 does nothing.
    step(&mut sup, 2_400, Event::Watchdog { unit: 0 }, &mut pid);
    assert_eq!(sup.next_deadline(), Some(4_400));
    let out = step(&mut sup, 2_500, Event::Tick, &mut pid);
    assert!(out.is_empty(), "{out:?}");
    // Ten more periods of pings, each just in time.
    for k in 1..=10u64 {
        let t = 2_400 + k * 1_900;
        step(&mut sup, t, Event::Watchdog { unit: 0 }, &mut pid);
        let out = step(&mut sup, t + 50, Event::Tick, &mut pid);
        assert!(out.is_empty(), "ping {k}: {out:?}");
    }
    assert_eq!(phase(&sup), Phase::Running);
    assert_eq!(sup.slot(0).unwrap().rt.pid, 100);
    assert_eq!(sup.slot(0).unwrap().rt.restarts, 0);
}

#[test]
fn silence_kills_and_restarts_as_a_failure() {
    let (mut sup, mut pid) = started(watched("w"));
    step(&mut sup, 500, Event::Ready { unit: 0 }, &mut pid);
    step(&mut sup, 1_000, Event::Watchdog { unit: 0 }, &mut pid);
    // Just before the deadline: nothing.
    assert!(step(&mut sup, 2_999, Event::Tick, &mut pid).is_empty());
    let out = step(&mut sup, 3_000, Event::Tick, &mut pid);
    assert_eq!(
        out,
        [
            Action::KillCgroup(0),
            Action::Announce(
                0,
                Note::WatchdogTimeout {
                    restart_in: Some(Delay::ms(100))
                }
            )
        ]
    );
    let rt = &sup.slot(0).unwrap().rt;
    assert_eq!(rt.phase, Phase::Backoff);
    assert_eq!(rt.pid, 0, "its exit is an orphan's");
    assert_eq!(rt.streak, 1, "a failure in a row");
    assert_eq!(rt.watchdog_at, None);
    // The killed process's exit changes nothing.
    assert!(step(
        &mut sup,
        3_010,
        Event::Exited {
            pid: 100,
            exit: Exit::Signal(9)
        },
        &mut pid
    )
    .is_empty());
    // Restarted after the delay, with a new pid, counted; not watched
    // until ready again.
    let out = step(&mut sup, 3_100, Event::Tick, &mut pid);
    assert_eq!(out, [Action::Spawn(0)]);
    let rt = &sup.slot(0).unwrap().rt;
    assert_eq!((rt.phase, rt.pid, rt.restarts), (Phase::Starting, 101, 1));
    assert_eq!(rt.watchdog_at, None);
    step(&mut sup, 3_200, Event::Ready { unit: 0 }, &mut pid);
    assert_eq!(
        sup.slot(0).unwrap().rt.watchdog_at,
        crate::vocab::due(5_200)
    );
}

#[test]
fn expiry_follows_restart_policy_and_start_limit() {
    let mut d = watched("w");
    d.restart = Restart::Never;
    let (mut sup, mut pid) = started(d);
    step(&mut sup, 0, Event::Ready { unit: 0 }, &mut pid);
    let out = step(&mut sup, 2_000, Event::Tick, &mut pid);
    assert_eq!(
        out,
        [
            Action::KillCgroup(0),
            Action::Announce(0, Note::WatchdogTimeout { restart_in: None })
        ]
    );
    assert_eq!(phase(&sup), Phase::Failed);

    let mut d = watched("w");
    d.seldom.start_limit = Some(StartLimit {
        count: 1,
        window: 60_000,
    });
    let (mut sup, mut pid) = started(d);
    step(&mut sup, 0, Event::Ready { unit: 0 }, &mut pid);
    let out = step(&mut sup, 2_000, Event::Tick, &mut pid);
    assert_eq!(
        out,
        [Action::KillCgroup(0), Action::Announce(0, Note::StartLimit)]
    );
    assert_eq!(phase(&sup), Phase::Failed);
}

#[test]
fn only_a_running_unit_is_watched() {
    // Without `watchdog`, pings do nothing and nothing is armed.
    let mut d = watched("w");
    d.seldom.watchdog = None;
    let (mut sup, mut pid) = started(d);
    step(&mut sup, 0, Event::Ready { unit: 0 }, &mut pid);
    step(&mut sup, 10, Event::Watchdog { unit: 0 }, &mut pid);
    assert_eq!(sup.next_deadline(), None);

    // A ping before ready does not arm it.
    let (mut sup, mut pid) = started(watched("w"));
    step(&mut sup, 10, Event::Watchdog { unit: 0 }, &mut pid);
    assert_eq!(sup.slot(0).unwrap().rt.watchdog_at, None);

    // Stopping: the stop timeout rules, not the watchdog.
    let (mut sup, mut pid) = started(watched("w"));
    step(&mut sup, 0, Event::Ready { unit: 0 }, &mut pid);
    step(&mut sup, 100, Event::Stop { unit: 0 }, &mut pid);
    assert_eq!(phase(&sup), Phase::Stopping);
    let out = step(&mut sup, 2_000, Event::Tick, &mut pid);
    assert!(
        !out.iter()
            .any(|a| matches!(a, Action::Announce(_, Note::WatchdogTimeout { .. }))),
        "{out:?}"
    );
    assert_eq!(phase(&sup), Phase::Stopping);
    assert_eq!(sup.slot(0).unwrap().rt.watchdog_at, None);
}

#[test]
fn adopted_units_are_watched_again() {
    let (mut sup, mut pid) = started(watched("w"));
    step(&mut sup, 0, Event::Ready { unit: 0 }, &mut pid);
    sup.adopt(0, 555, 10_000);
    assert_eq!(
        sup.slot(0).unwrap().rt.watchdog_at,
        crate::vocab::due(12_000)
    );
}

/// A run's watchdog ends with it: a reload to `ready = started` without
/// `watchdog`, the old run's exit and the new run's start in one wake-up
/// (no tick between), and the new run is not killed at the old run's
/// deadline.
#[test]
fn a_new_run_is_not_killed_at_the_last_runs_watchdog_deadline() {
    let (mut sup, mut pid) = started(watched("w"));
    step(&mut sup, 500, Event::Ready { unit: 0 }, &mut pid);
    step(&mut sup, 1_000, Event::Watchdog { unit: 0 }, &mut pid);
    let mut plain = UnitDef::with_defaults("w");
    plain.exec.push("/bin/true").unwrap();
    let mut out = Actions::new();
    sup.reload(1_100, &mut vec![plain].into_iter(), &|_| false, &mut out);
    let old = sup.slot(0).unwrap().rt.pid;
    let exit = Exit::Signal(15);
    step(&mut sup, 1_200, Event::Exited { pid: old, exit }, &mut pid);
    assert_eq!(phase(&sup), Phase::Running);
    assert_eq!(sup.slot(0).unwrap().rt.watchdog_at, None);
    let out = step(&mut sup, 3_000, Event::Tick, &mut pid);
    assert!(!out.contains(&Action::KillCgroup(0)), "{out:?}");
    assert_eq!(phase(&sup), Phase::Running);
}

/// A stop ends the watch: the stopping run's watchdog deadline, earlier
/// than its stop_timeout, would wake PID 1 for nothing.
#[test]
fn a_stop_disarms_the_watchdog() {
    let mut d = watched("w");
    d.stop_timeout = 10_000;
    let (mut sup, mut pid) = started(d);
    step(&mut sup, 500, Event::Ready { unit: 0 }, &mut pid);
    assert_eq!(sup.next_deadline(), Some(2_500));
    step(&mut sup, 600, Event::Stop { unit: 0 }, &mut pid);
    assert_eq!(phase(&sup), Phase::Stopping);
    assert_eq!(sup.slot(0).unwrap().rt.watchdog_at, None);
    assert_eq!(sup.next_deadline(), Some(10_600));
}
