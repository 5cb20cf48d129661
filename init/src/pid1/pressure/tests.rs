use super::super::tests::with_web;
use crate::unit::PressureLimit;

/// A shed unit that a reload changed is started again by the reload:
/// no longer shed (status said "shed" while it ran, the next pressure
/// spared it and shed a unit of a higher order, the calm started it a
/// second time). One still stopped stays shed.
#[test]
fn a_shed_unit_a_reload_starts_is_no_longer_shed() {
    use super::super::tests::{step, NO_PID};
    use crate::supervisor::{Action, Actions, Event, Phase};
    let mut p = super::Pid1::new(None, 0, false);
    let d = crate::unit::parse("web", "exec = /bin/true\nshed_order = 5\n").unwrap();
    p.add_unit(d.clone());
    p.sup.link().unwrap();
    p.fit_tables();
    step(&mut p, 0, Event::Boot);
    step(&mut p, 1, Event::spawned(0, NO_PID));
    // What on_system_pressure does to its victim.
    p.edges[0].shed = true;
    step(&mut p, 2, Event::Shed { unit: 0 });
    let gone = Event::Exited {
        pid: NO_PID,
        exit: crate::vocab::Exit::Signal(15),
    };
    step(&mut p, 3, gone);
    assert_eq!(p.sup.slot(0).unwrap().rt.phase, Phase::Stopped);
    p.unshed_wanted();
    assert!(p.edges[0].shed, "still stopped: still shed");
    let mut d2 = d;
    d2.description.push_str("v2").unwrap();
    let mut out = Actions::default();
    out.fit(2);
    p.sup
        .reload(4, &mut vec![d2].into_iter(), &|_| false, &mut out);
    assert!(out.as_slice().contains(&Action::Spawn(0)));
    p.unshed_wanted();
    assert!(!p.edges[0].shed);
}

/// A unit a reload changed, shed while on probation: the reload's
/// answer names it and counts it (not "applied and ready"), and its
/// start by the calm is judged: a failure is the bad verdict that
/// puts the last good definition back. It was never judged, the
/// reload answered 0, and the rejected definition restarted for ever.
#[test]
fn a_unit_shed_on_probation_is_named_and_judged_at_its_next_start() {
    use super::super::now;
    use super::super::tests::{step, NO_PID};
    use crate::supervisor::{Action, Event};
    use crate::vocab::Exit;
    let db = "exec = /bin/true\nshed_order = 1\nready = notify\n";
    let mut p = super::super::tests::pid1_with(&[("db", db)]);
    let ep = rustix::event::epoll::CreateFlags::CLOEXEC;
    p.epoll = Some(rustix::event::epoll::create(ep).unwrap());
    p.watch_system_pressure(PressureLimit {
        percent: 10,
        window: 1000,
    });
    let t = now();
    step(&mut p, t, Event::Boot);
    step(&mut p, t, Event::spawned(0, NO_PID));
    step(&mut p, t, Event::Ready { unit: 0 });
    let bad = crate::unit::parse("db", &db.replace("true", "false")).unwrap();
    let mut out = crate::supervisor::Actions::default();
    out.fit(8);
    p.keep_last_good(core::slice::from_ref(&bad));
    p.sup
        .reload(t, &mut vec![bad].into_iter(), &|_| false, &mut out);
    p.mark_pending();
    let signalled = |pid| Event::Exited {
        pid,
        exit: Exit::Signal(15),
    };
    step(&mut p, t, signalled(NO_PID));
    step(&mut p, t, Event::spawned(0, NO_PID + 1));
    assert_eq!(p.verdicts(&mut |_| {}), None, "waits for the verdict");
    p.on_system_pressure(false);
    assert!(p.edges[0].shed);
    step(&mut p, t, signalled(NO_PID + 1));
    let mut lines = Vec::new();
    let v = p.verdicts(&mut |l| lines.push(l.to_owned()));
    assert_eq!(v, Some(1));
    assert_eq!(lines, ["db: not judged: stopped under memory pressure"]);
    step(&mut p, t + 60_000, Event::Unshed { unit: 0 });
    step(&mut p, t + 60_000, Event::spawned(0, NO_PID + 2));
    let failed = Event::Exited {
        pid: NO_PID + 2,
        exit: Exit::Code(1),
    };
    let acts = step(&mut p, t + 60_100, failed);
    assert!(
        acts.contains(&Action::Verdict {
            unit: 0,
            good: false
        }),
        "{acts:?}"
    );
}

/// With nothing left to shed, a long pressure says so once, not at
/// every window; once it calmed, the next pressure says it again.
#[test]
fn nothing_left_to_shed_is_said_once_a_pressure() {
    let mut p = with_web();
    let ep = rustix::event::epoll::CreateFlags::CLOEXEC;
    p.epoll = Some(rustix::event::epoll::create(ep).unwrap());
    p.watch_system_pressure(PressureLimit {
        percent: 50,
        window: 1000,
    });
    let said = |p: &super::Pid1| p.shed.as_ref().unwrap().said_none;
    assert!(!said(&p));
    p.on_system_pressure(false);
    assert!(said(&p), "web has no shed_order: nothing to shed, said");
    p.on_system_pressure(false);
    assert!(said(&p));
    p.shed.as_mut().unwrap().calm_at = Some(0);
    p.on_shed_calm();
    assert!(!said(&p), "calm: the next pressure says it again");
}

/// Two units, the second `after` the first: db with `shed_order`.
fn db_and_app(app: &str) -> super::Pid1 {
    let db = "exec = /bin/true\nshed_order = 1\nstop_timeout = 5s\n";
    let app = format!("exec = /bin/true\nafter = db\n{app}");
    shedding(&[("db", db), ("app", &app)])
}

/// `units` (name, text) linked, and `wren.shed` watched.
fn shedding(units: &[(&str, &str)]) -> super::Pid1 {
    let mut p = super::Pid1::new(None, 0, false);
    for (name, text) in units {
        p.add_unit(crate::unit::parse(name, text).unwrap());
    }
    p.sup.link().unwrap();
    p.fit_tables();
    let ep = rustix::event::epoll::CreateFlags::CLOEXEC;
    p.epoll = Some(rustix::event::epoll::create(ep).unwrap());
    p.watch_system_pressure(PressureLimit {
        percent: 10,
        window: 1000,
    });
    p
}

fn boot_both(p: &mut super::Pid1) {
    use super::super::tests::{step, NO_PID};
    use crate::supervisor::Event;
    let t = super::super::now();
    step(p, t, Event::Boot);
    step(p, t, Event::spawned(0, NO_PID));
    step(p, t, Event::spawned(1, NO_PID + 1));
}

/// A unit `after` a shed unit, restarted while that is shed (an OOM
/// kill under the same pressure), gives up on it (`DepFailed`); when
/// the calm starts the shed unit again, it waits for it again. (It
/// stayed stopped for good.)
#[test]
fn a_unit_after_a_shed_one_comes_back_with_it() {
    use super::super::now;
    use super::super::tests::{step, NO_PID};
    use crate::supervisor::{Event, Phase};
    use crate::vocab::Exit;
    let mut p = db_and_app("restart = always\nrestart_delay = 0ms\n");
    boot_both(&mut p);
    p.on_system_pressure(false);
    assert!(p.edges[0].shed);
    let exit = |pid, sig| Event::Exited {
        pid,
        exit: Exit::Signal(sig),
    };
    step(&mut p, now(), exit(NO_PID, 15));
    step(&mut p, now(), exit(NO_PID + 1, 9));
    step(&mut p, now() + 1000, Event::Tick);
    assert_eq!(p.sup.slot(1).unwrap().rt.phase, Phase::Stopped);
    // The calm's choice and its event (fed here: no process spawned).
    assert_eq!(p.next_unshed(), Some(0));
    p.edges[0].shed = false;
    step(&mut p, now() + 20_000, Event::Unshed { unit: 0 });
    step(&mut p, now() + 20_000, Event::spawned(0, NO_PID + 2));
    step(&mut p, now() + 30_000, Event::Tick);
    let app = p.sup.slot(1).unwrap();
    assert!(
        app.rt.want && matches!(app.rt.phase, Phase::Waiting | Phase::Starting),
        "app {:?} want {}",
        app.rt.phase,
        app.rt.want
    );
}

/// Both shed: the calm brings back the one the other is `after` first
/// (it brought back the higher `shed_order`, which gave up on its
/// dependency still stopped).
#[test]
fn the_calm_starts_a_dependency_before_what_is_after_it() {
    use super::super::now;
    use super::super::tests::{step, NO_PID};
    use crate::supervisor::Event;
    use crate::vocab::Exit;
    let mut p = db_and_app("shed_order = 2\n");
    boot_both(&mut p);
    let gone = |pid| Event::Exited {
        pid,
        exit: Exit::Signal(15),
    };
    p.on_system_pressure(false);
    step(&mut p, now(), gone(NO_PID));
    p.on_system_pressure(false);
    step(&mut p, now(), gone(NO_PID + 1));
    assert!(p.edges[0].shed && p.edges[1].shed);
    assert_eq!(p.next_unshed(), Some(0), "db first");
    p.edges[0].shed = false;
    assert_eq!(p.next_unshed(), Some(1), "then app");
}

/// The trigger fires once a window; a victim still stopping (its
/// `stop_timeout` may be longer) has not freed its memory yet: no
/// second victim for the same pressure.
#[test]
fn no_second_victim_while_the_first_is_stopping() {
    use crate::supervisor::Phase;
    let mut p = db_and_app("shed_order = 2\n");
    boot_both(&mut p);
    p.on_system_pressure(false);
    p.on_system_pressure(false);
    let phase = |p: &super::Pid1, u: u16| p.sup.slot(u).unwrap().rt.phase;
    assert_eq!(phase(&p, 0), Phase::Stopping);
    assert_eq!(phase(&p, 1), Phase::Running);
    assert!(!p.edges[1].shed);
}

/// In a shutdown, units stop in reverse dependency order; shedding
/// would stop db while app, after it, is still stopping.
#[test]
fn no_shedding_in_a_shutdown() {
    use super::super::now;
    use super::super::tests::step;
    use crate::supervisor::{Event, Phase};
    use crate::vocab::ShutdownKind;
    let mut p = db_and_app("stop_timeout = 30s\n");
    boot_both(&mut p);
    step(&mut p, now(), Event::Shutdown(ShutdownKind::Poweroff));
    p.on_system_pressure(false);
    assert_eq!(
        p.sup.slot(0).unwrap().rt.phase,
        Phase::Running,
        "db waits for app"
    );
    assert!(!p.edges[0].shed);
}

/// A victim stuck stopping (uninterruptible sleep: heavy reclaim, a
/// hung file system) once PID 1 has given up killing it: shedding goes
/// on. (It waited as long as the victim, which is when it is needed.)
#[test]
fn a_victim_stuck_stopping_does_not_stall_shedding() {
    use super::super::now;
    use super::super::tests::step;
    use crate::supervisor::{Event, Phase};
    let mut p = db_and_app("shed_order = 2\n");
    boot_both(&mut p);
    p.on_system_pressure(false);
    assert_eq!(p.sup.slot(0).unwrap().rt.phase, Phase::Stopping);
    p.on_system_pressure(false);
    assert!(!p.edges[1].shed, "its stop is still going on");
    // Its stop deadline past, and every kill: PID 1 gives up on what
    // survived (`stopping::drain_timeouts`, here by hand: no cgroup).
    step(&mut p, now() + 600_000, Event::Tick);
    assert_eq!(p.sup.slot(0).unwrap().rt.phase, Phase::Stopping);
    p.edges[0].drain.gave_up = true;
    p.on_system_pressure(false);
    assert!(p.edges[1].shed, "app not shed while db is stuck stopping");
}

/// A calm that comes due in a shutdown is not left due: the loop's
/// timer, armed for it, would fire at once again and again (a spin
/// for the rest of the shutdown), nor armed again for a second shed
/// unit; none is started again, all stay shed. Nor does a pressure set
/// a calm.
#[test]
fn no_calm_is_left_due_in_a_shutdown() {
    use super::super::now;
    use super::super::tests::{step, NO_PID};
    use crate::supervisor::Event;
    use crate::vocab::ShutdownKind;
    let mut p = db_and_app("shed_order = 2\nstop_timeout = 30s\n");
    boot_both(&mut p);
    p.on_system_pressure(false);
    assert!(p.edges[0].shed);
    // db stopped, then app shed too: two for the calm to start.
    let exit = crate::vocab::Exit::Signal(15);
    step(&mut p, now(), Event::Exited { pid: NO_PID, exit });
    p.on_system_pressure(false);
    assert!(p.edges[1].shed);
    step(&mut p, now(), Event::Shutdown(ShutdownKind::Poweroff));
    p.shed.as_mut().unwrap().calm_at = Some(now().saturating_sub(1));
    p.on_shed_calm();
    assert_eq!(p.shed.as_ref().unwrap().calm_at, None);
    assert!(p.edges[0].shed && p.edges[1].shed, "one started again");
    p.on_system_pressure(false);
    assert_eq!(p.shed.as_ref().unwrap().calm_at, None);
}

/// The loop looks for a calm at every timer wake-up (another unit's
/// restart, a stop's deadline): before the calm is due nothing starts
/// again; the unit shed stays so, its calm where it was. (Started at the
/// first such wake-up, it would be back in the pressure it was shed for.)
#[test]
fn a_timer_before_the_calm_starts_nothing_again() {
    use super::super::now;
    use super::super::tests::{step, NO_PID};
    use crate::supervisor::{Event, Phase};
    let mut p = db_and_app("");
    boot_both(&mut p);
    p.on_system_pressure(false);
    let exit = crate::vocab::Exit::Signal(15);
    step(&mut p, now(), Event::Exited { pid: NO_PID, exit });
    let calm = p.shed.as_ref().unwrap().calm_at;
    assert!(calm.is_some_and(|c| c > now() + 1000), "{calm:?}");
    p.on_shed_calm();
    assert!(p.edges[0].shed, "started again before the calm");
    assert_eq!(p.shed.as_ref().unwrap().calm_at, calm);
    assert_eq!(p.sup.slot(0).unwrap().rt.phase, Phase::Stopped);
}

/// A unit whose own start brings the pressure back is shed again
/// within a calm of its start: the calm doubles, so that it is not
/// cycled every 10 s for ever (shed, calm, start, shed...).
#[test]
fn a_unit_shed_again_soon_after_its_start_doubles_the_calm() {
    use super::super::now;
    use super::super::tests::{step, until_execd, NO_PID};
    use crate::supervisor::{Event, Phase};
    let db = "exec = /bin/sleep 60\nshed_order = 1\nnamespaces = none\n";
    let mut p = shedding(&[("db", db)]);
    step(&mut p, now(), Event::Boot);
    step(&mut p, now(), Event::spawned(0, NO_PID));
    let base = p.shed.as_ref().unwrap().calm();
    p.on_system_pressure(false);
    let gone = |pid| Event::Exited {
        pid,
        exit: crate::vocab::Exit::Signal(15),
    };
    step(&mut p, now(), gone(NO_PID));
    p.shed.as_mut().unwrap().calm_at = Some(0);
    p.on_shed_calm();
    until_execd(&mut p, 0);
    // Started again for real (a bare `sleep`), and at once shed again.
    let s = p.sup.slot(0).unwrap();
    assert_eq!(s.rt.phase, Phase::Running);
    let pid = s.rt.pid;
    let t = now();
    p.on_system_pressure(false);
    let shed = p.shed.as_ref().unwrap();
    assert!(p.edges[0].shed);
    assert_eq!(shed.calm(), 2 * base);
    assert!(shed.calm_at.is_some_and(|c| c >= t + 2 * base));
    let pid = rustix::process::Pid::from_raw(pid as i32).unwrap();
    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    let _ = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty());
}

/// The strikes: at most 16 times the calm; they start over when the
/// unit shed is not the one just started again (by name: a reload
/// may have given its slot to another unit since), or it stayed up a
/// calm.
#[test]
fn strikes_are_capped_and_start_over() {
    let mut shed = super::Shed {
        limit: PressureLimit {
            percent: 10,
            window: 1000,
        },
        trigger: None,
        calm_at: None,
        said_none: false,
        back: None,
        strikes: 0,
    };
    let back = |n: &str, t| Some((crate::unit::Name::try_from(n).unwrap(), t));
    for _ in 0..6 {
        shed.back = back("sensor", 100);
        assert!(shed.strike("sensor", 200));
    }
    assert_eq!(shed.calm(), 16 * 10_000);
    shed.back = back("sensor", 100);
    assert!(!shed.strike("sensor-v2", 200), "another unit (its slot)");
    assert_eq!(shed.calm(), 10_000);
    shed.strikes = 1;
    shed.back = back("sensor", 100);
    assert!(
        !shed.strike("sensor", 100 + 20_000),
        "up a calm: not its start"
    );
    assert_eq!(shed.strikes, 0);
    shed.strikes = 1;
    assert!(!shed.strike("sensor", 200), "not started again since");
    assert_eq!(shed.strikes, 0);
}

/// A shed unit a reload removed: it leaves the table with its edge,
/// and nothing is left to start again, so the calm timer is not kept
/// armed (an idle PID 1 woke every calm period for nothing).
#[test]
fn a_shed_unit_a_reload_removes_leaves_no_calm_timer() {
    use super::super::tests::{step, NO_PID};
    use crate::supervisor::{Actions, Event};
    let web = "exec = /bin/true\n";
    let mut p = shedding(&[("db", "exec = /bin/true\nshed_order = 1\n"), ("web", web)]);
    boot_both(&mut p);
    let db = p.sup.index("db").unwrap();
    let web = p.sup.slot(1).unwrap().def.clone();
    p.on_system_pressure(false);
    assert!(p.edges[usize::from(db)].shed, "db not shed");
    let gone = Event::Exited {
        pid: NO_PID,
        exit: crate::vocab::Exit::Signal(15),
    };
    step(&mut p, 3, gone);
    let mut out = Actions::default();
    out.fit(2);
    p.sup
        .reload(4, &mut vec![web].into_iter(), &|_| false, &mut out);
    assert_eq!(p.sup.index("db"), None, "db still in the table");
    p.forget_cgroups();
    for _ in 0..3 {
        p.shed.as_mut().unwrap().calm_at = Some(0);
        p.on_shed_calm();
    }
    assert_eq!(
        p.shed.as_ref().unwrap().calm_at,
        None,
        "the calm timer kept armed"
    );
}

/// A unit's `pressure_limit` trigger is in the loop's epoll set for
/// EPOLLPRI (how PSI says a stall passed the limit) with that unit's
/// token: one left out, or under another unit's token, is never acted
/// on (the thrashing unit is never restarted). A start with the limit
/// unchanged keeps it: no new trigger each restart. (Its memory.pressure
/// here is a FIFO, which epoll takes as it takes the kernel's file.)
#[test]
fn a_units_pressure_trigger_is_watched_under_its_token() {
    use super::super::event_loop::TOKEN_PRESSURE;
    use rustix::fd::AsRawFd;
    let root = crate::testutil::TempDir::new("pid1-pressure-watch");
    std::fs::create_dir_all(root.path().join("units/db")).unwrap();
    let file = root.path().join("units/db/memory.pressure");
    crate::testutil::fifo(&file);
    let flags = rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::NONBLOCK;
    let written = rustix::fs::open(&file, flags, rustix::fs::Mode::empty()).unwrap();
    // db second: its token is not the first unit's, whatever the sum.
    let db = "exec = /bin/true\npressure_limit = 20%/2s\n";
    let mut p = super::super::tests::pid1_with(&[("web", "exec = /bin/true\n"), ("db", db)]);
    p.cg = Some(crate::cgroup::Cgroups::open(root.path()).unwrap());
    let ep = rustix::event::epoll::CreateFlags::CLOEXEC;
    p.epoll = Some(rustix::event::epoll::create(ep).unwrap());
    p.edges[1].cgroup = Some(0);
    let limit = PressureLimit {
        percent: 20,
        window: 2000,
    };
    for start in 0..2 {
        p.watch_pressure(1);
        let (fd, l) = p.edges[1].pressure.as_ref().unwrap();
        assert_eq!(*l, limit);
        let pri = rustix::event::epoll::EventFlags::PRI.bits();
        let want = [(fd.as_raw_fd(), pri, TOKEN_PRESSURE + 1)];
        assert_eq!(
            crate::testutil::epoll_watches(p.epoll.as_ref().unwrap()),
            want,
            "start {start}"
        );
        let mut b = [0u8; 64];
        let n = rustix::io::read(&written, &mut b).unwrap_or(0);
        let line = crate::cgroup::psi::trigger_line(limit);
        let want = if start == 0 { line.len() + 1 } else { 0 };
        assert_eq!(n, want, "start {start}: {:?}", b.get(..n));
    }
}
