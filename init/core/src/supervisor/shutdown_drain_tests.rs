//! A shutdown's holds and timers, and the start limit's count, on the
//! shortest event sequences that showed them wrong.
use super::tests::{after, def};
use super::*;
use crate::unit::{LimitAction, StartLimit};

fn sup(defs: std::vec::Vec<UnitDef>) -> Supervisor {
    let mut s = Supervisor::new();
    for d in defs {
        s.add(d).unwrap();
    }
    s.link().unwrap();
    s
}
fn step(s: &mut Supervisor, now: Millis, ev: Event) -> std::vec::Vec<Action> {
    let mut out = Actions::new();
    s.step(now, ev, &mut out);
    let _ = s.next_deadline();
    println!("t={now} {ev:?} -> {:?}", out.as_slice());
    out.to_vec()
}
fn signalled(out: &[Action], u: u16) -> bool {
    out.iter()
        .any(|a| matches!(*a, Action::Signal { unit, .. } if unit == u))
}

/// Reference: a dependent's exit in a shutdown holds its `after` unit up
/// until `Drained` (what the kill left is gone).
#[test]
fn reference_exit_in_shutdown_waits_for_drained() {
    let mut s = sup(vec![def("d"), after(def("a"), &["d"])]);
    step(&mut s, 0, Event::Boot);
    step(&mut s, 1, Event::spawned(0, 100));
    step(&mut s, 2, Event::spawned(1, 101));
    let out = step(&mut s, 3, Event::Shutdown(ShutdownKind::Reboot));
    assert!(signalled(&out, 1) && !signalled(&out, 0));
    let out = step(
        &mut s,
        4,
        Event::Exited {
            pid: 101,
            exit: Exit::Signal(15),
        },
    );
    assert!(out.contains(&Action::KillCgroup(1)));
    assert!(!signalled(&out, 0), "d stopped before a's cgroup drained");
    let out = step(&mut s, 5, Event::Drained { unit: 1 });
    assert!(signalled(&out, 0));
}

/// The same kill of `a`'s cgroup, from its start timeout during the
/// shutdown: `d` waits for `Drained` too (it was stopped in that step).
#[test]
fn a_start_timeout_in_a_shutdown_holds_the_dependency_until_drained() {
    let mut a = after(def("a"), &["d"]);
    a.ready = Ready::Notify;
    a.start_timeout = 500;
    let mut s = sup(vec![def("d"), a, after(def("b"), &["a"])]);
    step(&mut s, 0, Event::Boot);
    step(&mut s, 1, Event::spawned(0, 100));
    step(&mut s, 2, Event::spawned(1, 101));
    step(&mut s, 3, Event::Ready { unit: 1 });
    step(&mut s, 4, Event::spawned(2, 102));
    // a crashes and restarts (restart_delay 100ms), b keeps running.
    step(
        &mut s,
        10,
        Event::Exited {
            pid: 101,
            exit: Exit::Code(1),
        },
    );
    step(&mut s, 110, Event::Tick);
    step(&mut s, 111, Event::spawned(1, 103));
    assert_eq!(s.slot(1).unwrap().rt.phase, Phase::Starting);
    // Shutdown: b is stopped first; a (not ready) is held by b.
    let out = step(&mut s, 200, Event::Shutdown(ShutdownKind::Reboot));
    assert!(signalled(&out, 2));
    // a's start timeout passes while b is still stopping.
    let out = step(&mut s, 611, Event::Tick);
    assert!(out.contains(&Action::KillCgroup(1)));
    assert!(
        !signalled(&out, 0),
        "d signalled in the very step a's cgroup is killed, before Drained(a): {out:?}"
    );
}

/// A start limit with `start_limit_action = reboot`: the failing unit's
/// exit kills its cgroup, and the shutdown that begins in that step
/// holds its `after` unit until `Drained` (it was stopped at once).
#[test]
fn a_start_limits_reboot_holds_the_dependency_until_drained() {
    let mut a = after(def("a"), &["d"]);
    a.seldom.start_limit = Some(StartLimit {
        count: 1,
        window: 10_000,
    });
    a.start_limit_action = LimitAction::Reboot;
    let mut s = sup(vec![def("d"), a]);
    // Up long enough that the reboot is not held.
    let t = LIMIT_ACTION_FLOOR;
    step(&mut s, t, Event::Boot);
    step(&mut s, t + 1, Event::spawned(0, 100));
    step(&mut s, t + 2, Event::spawned(1, 101));
    let out = step(
        &mut s,
        t + 10,
        Event::Exited {
            pid: 101,
            exit: Exit::Code(1),
        },
    );
    assert!(out.contains(&Action::KillCgroup(1)));
    assert_eq!(s.shutting_down(), Some(ShutdownKind::Reboot));
    assert!(
        !signalled(&out, 0),
        "d signalled in the step a's cgroup is killed, before Drained(a): {out:?}"
    );
}

/// `start_limit = 3/10s` on a notify service that exits 0 before it is
/// ever ready (a daemon that forks and exits, a broken config check):
/// a failure, counted against the start limit as exits of 1 are (it
/// looped for ever, backing off, never `failed`).
#[test]
fn never_ready_clean_exits_count_against_the_start_limit() {
    for (code, want_failed) in [(1i16, true), (0i16, true)] {
        let mut a = def("a");
        a.ready = Ready::Notify;
        a.restart_delay = 10;
        a.seldom.start_limit = Some(StartLimit {
            count: 3,
            window: 10_000,
        });
        let mut s = sup(vec![a]);
        let mut now = 0;
        let mut pid = 100;
        step(&mut s, now, Event::Boot);
        for _ in 0..5 {
            if s.slot(0).unwrap().rt.phase != Phase::Starting {
                break;
            }
            pid += 1;
            step(&mut s, now, Event::spawned(0, pid));
            now += 1;
            step(
                &mut s,
                now,
                Event::Exited {
                    pid,
                    exit: Exit::Code(code),
                },
            );
            if let Some(t) = s.next_deadline() {
                now = t;
                step(&mut s, now, Event::Tick);
            }
        }
        let phase = s.slot(0).unwrap().rt.phase;
        assert_eq!(
            phase == Phase::Failed,
            want_failed,
            "exit {code}: 5 runs that never became ready within 10s, phase {phase:?}, streak {}",
            s.slot(0).unwrap().rt.streak
        );
    }
}

/// A unit backing off when a shutdown begins, held by a dependent still
/// stopping: its restart timer's firing changes nothing (it went to
/// `Waiting`, shown `starting`, its `restarts` counting a restart that
/// never came).
#[test]
fn a_shutdown_takes_no_restart_of_a_held_unit() {
    let mut s = sup(vec![def("a"), after(def("b"), &["a"])]);
    step(&mut s, 0, Event::Boot);
    step(&mut s, 1, Event::spawned(0, 100));
    step(&mut s, 2, Event::spawned(1, 101));
    // a crashes: Backoff for 100ms; b keeps running.
    step(
        &mut s,
        10,
        Event::Exited {
            pid: 100,
            exit: Exit::Signal(9),
        },
    );
    assert_eq!(s.slot(0).unwrap().rt.phase, Phase::Backoff);
    let restarts = s.slot(0).unwrap().rt.restarts;
    // Shutdown: b is stopping (slow to exit); a is held by b.
    step(&mut s, 20, Event::Shutdown(ShutdownKind::Reboot));
    assert_eq!(
        s.next_deadline(),
        Some(110),
        "a's restart timer is still armed in the shutdown"
    );
    step(&mut s, 110, Event::Tick);
    let a = &s.slot(0).unwrap().rt;
    assert_eq!(
        (a.phase, a.restarts),
        (Phase::Backoff, restarts),
        "a restart counted (and the unit shown `starting`) in a shutdown"
    );
}

/// A unit stopped before the shutdown whose leftovers still run (the
/// rest of its `stop_timeout`, PID 1 waiting on its cgroup) holds its
/// `after` unit up when the shutdown begins, until `Drained`.
#[test]
fn leftovers_of_a_stop_before_the_shutdown_hold_the_dependency() {
    let mut s = sup(vec![def("d"), after(def("a"), &["d"])]);
    step(&mut s, 0, Event::Boot);
    step(&mut s, 1, Event::spawned(0, 100));
    step(&mut s, 2, Event::spawned(1, 101));
    step(&mut s, 3, Event::Stop { unit: 1 });
    let exit = Exit::Signal(15);
    let out = step(&mut s, 4, Event::Exited { pid: 101, exit });
    assert!(out.contains(&Action::KillCgroup(1)));
    // PID 1 keeps the cgroup's leftovers in the stop's grace.
    s.note_draining(1, true);
    let out = step(&mut s, 5, Event::Shutdown(ShutdownKind::Reboot));
    assert!(!signalled(&out, 0), "d stopped while a's leftovers run");
    let out = step(&mut s, 6, Event::Drained { unit: 1 });
    assert!(signalled(&out, 0));
}

/// Told of leftovers gone before the shutdown, or of a unit that is up
/// or removed, the supervisor holds nothing for them.
#[test]
fn only_a_stopped_units_leftovers_hold_up() {
    let mut s = sup(vec![def("d"), after(def("a"), &["d"])]);
    step(&mut s, 0, Event::Boot);
    step(&mut s, 1, Event::spawned(0, 100));
    step(&mut s, 2, Event::spawned(1, 101));
    s.note_draining(1, true);
    assert!(!s.slot(1).unwrap().rt.draining, "up: its phase holds");
    step(&mut s, 3, Event::Stop { unit: 1 });
    step(
        &mut s,
        4,
        Event::Exited {
            pid: 101,
            exit: Exit::Signal(15),
        },
    );
    s.note_draining(1, true);
    s.note_draining(1, false);
    let out = step(&mut s, 5, Event::Shutdown(ShutdownKind::Reboot));
    assert!(signalled(&out, 0), "nothing left of a: d stops");
}
