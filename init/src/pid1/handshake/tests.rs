use super::{put, wait_in_place, ExecWait, Waits};
use crate::pid1::Edge;
use crate::spawn::Pending;
use crate::unit::UnitDef;
use rustix::fd::AsFd;
use std::time::{Duration, Instant};

fn pending() -> (Pending, rustix::fd::OwnedFd) {
    let (status, w) = rustix::pipe::pipe().unwrap();
    (Pending { pid: 7, status }, w)
}

/// Unit 0 of `p` booted and its start awaiting its exec (pid `NO_PID`);
/// the child's end of the status pipe.
fn booted_awaiting_exec(p: &mut crate::pid1::Pid1) -> rustix::fd::OwnedFd {
    use crate::pid1::tests::{step, NO_PID};
    p.epoll =
        Some(rustix::event::epoll::create(rustix::event::epoll::CreateFlags::CLOEXEC).unwrap());
    p.fit_tables();
    step(p, 0, crate::supervisor::Event::Boot);
    let (status, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::NONBLOCK).unwrap();
    p.await_exec(
        0,
        Pending {
            pid: NO_PID,
            status,
        },
    );
    w
}

/// A child a reload killed before its exec is the reload's doing: the
/// start is made again, no failure counted, and a unit on probation
/// stays on it (before, the kill was its bad verdict: a good
/// definition rejected). The killed child's status pipe's end of file
/// is not taken for an exec. A pid no handshake waits for (taken over
/// by the reload) changes nothing.
#[test]
fn a_start_a_reload_killed_before_its_exec_is_made_again() {
    use crate::pid1::tests::NO_PID;
    use crate::supervisor::{Action, Actions, Phase};
    use rustix::event::epoll;
    // Added by a reload (on probation), its start awaiting its exec.
    let mut p = crate::pid1::Pid1::new(None, 0, false);
    p.epoll = Some(epoll::create(epoll::CreateFlags::CLOEXEC).unwrap());
    let mut d = UnitDef::with_defaults("web");
    d.exec.push("/bin/true").unwrap();
    d.namespaces = crate::unit::Namespaces::NONE;
    let mut out = Actions::default();
    out.fit(1);
    p.sup
        .reload(0, &mut vec![d.clone()].into_iter(), &|_| false, &mut out);
    p.edges.push(Edge::new(&d));
    p.fit_tables();
    assert_eq!(out.as_slice(), [Action::Spawn(0)]);
    assert!(p.sup.slot(0).unwrap().rt.probation);
    let (status, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::NONBLOCK).unwrap();
    p.await_exec(
        0,
        Pending {
            pid: NO_PID,
            status,
        },
    );
    drop(w); // the child's death
    p.start_killed_before_exec(&[NO_PID - 1]);
    assert_eq!(p.exec_pid(0), Some(NO_PID), "another pid's kill ended it");
    p.start_killed_before_exec(&[NO_PID]);
    assert!(p.queue.is_empty(), "answers left unstepped");
    // Exec'd (in place, or later on a loaded host: the loop's part
    // played here), `ready = started`: running, judged after
    // GATE_HOLD, as a new run: no failure, no restart.
    crate::pid1::tests::until_execd(&mut p, 0);
    let s = p.sup.slot(0).unwrap();
    assert_eq!(s.rt.phase, Phase::Running);
    assert!(![0, NO_PID].contains(&s.rt.pid), "{}", s.rt.pid);
    assert_eq!(s.rt.restarts, 0);
    assert!(s.rt.probation, "judged by the kill");
    assert_eq!(s.rt.failures.iter().count(), 0);
    assert_eq!(p.edges[0].last_error(), "");
    let pid = rustix::process::Pid::from_raw(s.rt.pid as i32);
    let _ = rustix::process::waitpid(pid, rustix::process::WaitOptions::empty());
}

/// Several starts a reload killed are made again as a step's spawns
/// are: none of a few waits for its exec in place (each would hold
/// PID 1 for its wait, one after another); the loop awaits them. Each
/// is a new run.
#[test]
fn starts_a_reload_killed_are_made_again_without_a_wait_each() {
    use crate::pid1::tests::NO_PID;
    use crate::supervisor::{Actions, Phase};
    use rustix::event::epoll;
    let mut p = crate::pid1::Pid1::new(None, 0, false);
    p.epoll = Some(epoll::create(epoll::CreateFlags::CLOEXEC).unwrap());
    let defs: Vec<UnitDef> = ["db", "web"]
        .iter()
        .map(|n| {
            let mut d = UnitDef::with_defaults(n);
            d.exec.push("/bin/true").unwrap();
            d.namespaces = crate::unit::Namespaces::NONE;
            d
        })
        .collect();
    let mut out = Actions::default();
    out.fit(2);
    p.sup
        .reload(0, &mut defs.clone().into_iter(), &|_| false, &mut out);
    for d in &defs {
        p.edges.push(Edge::new(d));
    }
    p.fit_tables();
    let fake = [NO_PID, NO_PID - 1];
    let mut ends = Vec::new();
    for (u, &pid) in fake.iter().enumerate() {
        let (status, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::NONBLOCK).unwrap();
        p.await_exec(u as u16, Pending { pid, status });
        ends.push(w);
    }
    drop(ends); // the children's deaths
    p.start_killed_before_exec(&fake);
    for u in 0..2u16 {
        // Awaited by the loop, or seen exec'd at once (a fast child):
        // a new run either way.
        assert!(p.exec_pid(u).is_none_or(|pid| !fake.contains(&pid)));
        let phase = p.sup.slot(u).unwrap().rt.phase;
        assert!(
            matches!(phase, Phase::Starting | Phase::Running),
            "{phase:?}"
        );
    }
    p.run_queue();
    for u in 0..2u16 {
        let pid = p.exec_pid(u).unwrap_or(p.sup.slot(u).unwrap().rt.pid);
        let pid = rustix::process::Pid::from_raw(pid as i32).unwrap();
        let _ = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty());
    }
    use super::super::executor::waits_in_place;
    let waited = |of: usize| (1..=of).filter(|&n| waits_in_place(n, of)).count();
    assert_eq!(
        [waited(1), waited(2), waited(15), waited(16), waited(40)],
        [1, 0, 0, 1, 2]
    );
}

/// With no `start_timeout` (0) the exec still has its bound, and the
/// failure names that bound, not 0ms.
#[test]
fn an_exec_past_the_bound_of_no_start_timeout_names_the_bound() {
    use crate::unit::START_TIMEOUT_DEFAULT;
    let mut p = crate::pid1::Pid1::new(None, 0, false);
    let mut d = UnitDef::with_defaults("web");
    d.exec.push("/bin/true").unwrap();
    d.start_timeout = 0;
    p.add_unit(d);
    p.sup.link().unwrap();
    let _w = booted_awaiting_exec(&mut p);
    p.exec_timeouts(crate::pid1::now() + START_TIMEOUT_DEFAULT + 1000);
    let e = p.edges[0].last_error();
    assert!(
        e.contains(&format!("start_timeout ({START_TIMEOUT_DEFAULT}ms;")),
        "{e}"
    );
}

/// A child that exec'd before its deadline, read only after it (the
/// timer's token first in the loop's batch): started, not killed as
/// one that did not exec.
#[test]
fn an_exec_read_after_the_deadline_it_was_in_time_for_is_a_start() {
    use crate::supervisor::Phase;
    let mut p = crate::pid1::Pid1::new(None, 0, false);
    let mut d = UnitDef::with_defaults("web");
    d.exec.push("/bin/true").unwrap();
    p.add_unit(d);
    p.sup.link().unwrap();
    let w = booted_awaiting_exec(&mut p);
    drop(w); // exec'd: the status pipe at its end, nothing written
    p.exec_timeouts(crate::pid1::now() + 60_000);
    assert_eq!(p.edges[0].last_error(), "");
    let s = p.sup.slot(0).unwrap();
    assert_eq!(s.rt.phase, Phase::Running);
    assert_eq!(s.rt.pid, crate::pid1::tests::NO_PID);
}

/// After a restart's exec (the write end closed, nothing written) PID
/// 1 waits the grace, or less when the loop has something for it; not
/// when no grace is asked, not after a failed start's report, not when
/// the child has not exec'd within the wait.
#[test]
fn the_grace_follows_an_exec_only() {
    let ep = rustix::event::epoll::create(rustix::event::epoll::CreateFlags::CLOEXEC).unwrap();
    let grace = Some(ep.as_fd());
    let mut left = 10_000_000_000;
    let (p, w) = pending();
    drop(w);
    let t = Instant::now();
    assert!(wait_in_place(&p, grace, &mut left));
    assert!(t.elapsed() >= Duration::from_millis(10));

    let (p, w) = pending();
    drop(w);
    assert!(!wait_in_place(&p, None, &mut left));

    let (p, w) = pending();
    rustix::io::write(&w, &[9, 2, 0, 0, 0]).unwrap();
    drop(w);
    assert!(!wait_in_place(&p, grace, &mut left));

    let (p, w) = pending();
    let t = Instant::now();
    assert!(!wait_in_place(&p, grace, &mut left));
    assert!(t.elapsed() >= Duration::from_millis(50));
    drop(w);

    // Something for the loop: the grace ends at once (a 10 s grace
    // would not pass the 5 s bound).
    let (r, other) = rustix::pipe::pipe().unwrap();
    rustix::event::epoll::add(
        &ep,
        &r,
        rustix::event::epoll::EventData::new_u64(1),
        rustix::event::epoll::EventFlags::IN,
    )
    .unwrap();
    rustix::io::write(&other, b"x").unwrap();
    // The shortest of a few: a loaded host may not run this thread
    // again within the grace.
    let quickest = (0..5)
        .map(|_| {
            let (p, w) = pending();
            drop(w);
            let t = Instant::now();
            assert!(wait_in_place(&p, grace, &mut left));
            t.elapsed()
        })
        .min()
        .unwrap();
    assert!(quickest < Duration::from_millis(10), "{quickest:?}");
}

/// The waits in place of one wake-up stop at its budget: each takes
/// what it waited from it (one that runs to its end, all of it), a
/// wait has no more than is left, and with nothing left it returns
/// at once.
#[test]
fn waits_in_place_stop_at_the_wake_ups_budget() {
    let mut left = 60_000_000;
    let (p, _w) = pending();
    let t = Instant::now();
    assert!(!wait_in_place(&p, None, &mut left));
    assert!(t.elapsed() >= Duration::from_millis(50));
    assert_eq!(left, 10_000_000);
    let (quick, w) = pending();
    drop(w);
    assert!(!wait_in_place(&quick, None, &mut left));
    assert!(
        left < 10_000_000 && left > 0,
        "an exec seen costs its moment: {left}"
    );
    // The last 10 ms are all a wait has: not EXEC_WAIT_NS's 50 (the
    // quickest of three, for a loaded host).
    let quickest = (0..3)
        .map(|_| {
            let mut last = 10_000_000;
            let t = Instant::now();
            assert!(!wait_in_place(&p, None, &mut last));
            assert_eq!(last, 0);
            t.elapsed()
        })
        .min()
        .unwrap();
    assert!(
        quickest >= Duration::from_millis(10) && quickest < Duration::from_millis(45),
        "{quickest:?}"
    );
    left = 0;
    let t = Instant::now();
    for _ in 0..100 {
        assert!(!wait_in_place(&p, None, &mut left));
    }
    assert!(t.elapsed() < Duration::from_millis(40), "{:?}", t.elapsed());
}

/// A reload's recount sees the handshakes the edges hold, whatever
/// the counts said before.
#[test]
fn waits_count_the_edges_as_they_are() {
    let def = UnitDef::with_defaults("web");
    let mut edges = vec![Edge::new(&def), Edge::new(&def), Edge::new(&def)];
    let mut ends = vec![];
    for (i, pid, deadline) in [(1, 7, 5_000), (2, 8, 9_000)] {
        let (status, w) = rustix::pipe::pipe().unwrap();
        ends.push(w);
        edges[i].exec = Some(ExecWait {
            pid,
            status,
            deadline,
        });
    }
    let w = Waits::count(&edges);
    assert_eq!((w.execs, w.kills, w.soonest), (2, 0, Some(5_000)));
    let w = Waits::count(&edges[..1]);
    assert_eq!((w.execs, w.kills, w.soonest), (0, 0, None));
}

#[test]
fn put_counts_the_slots_that_hold_something() {
    let mut n = 0u16;
    let (mut a, mut b) = (None, None);
    assert_eq!(put(&mut n, &mut a, Some(1)), None);
    assert_eq!(n, 1);
    // Replacing a value is no new one.
    assert_eq!(put(&mut n, &mut a, Some(2)), Some(1));
    assert_eq!(n, 1);
    put(&mut n, &mut b, Some(3));
    assert_eq!(n, 2);
    assert_eq!(put(&mut n, &mut a, None), Some(2));
    assert_eq!(put(&mut n, &mut a, None), None);
    assert_eq!((n, a, b), (1, None, Some(3)));
    put(&mut n, &mut b, None);
    assert_eq!(n, 0);
}

/// A child slower to exec than the wait in place is awaited by the
/// loop: its status pipe is in the epoll set under its unit's token, and
/// when that pipe says it exec'd (end of file, no report) the loop's
/// `on_exec` makes the unit running with that pid, its pipe out of the
/// set. A pipe left out, or under another unit's token, or an answer
/// not taken, leaves the unit `starting` until its start_timeout kills
/// a service that runs.
#[test]
fn a_slow_exec_is_awaited_by_the_loop_under_its_units_token() {
    use crate::pid1::event_loop::TOKEN_EXEC;
    use crate::pid1::tests::{step, NO_PID};
    use crate::supervisor::Phase;
    use rustix::event::epoll;
    use rustix::fd::AsRawFd;
    let unit = "exec = /bin/true\n";
    let mut p = crate::pid1::tests::pid1_with(&[("web", unit), ("db", unit)]);
    p.epoll = Some(epoll::create(epoll::CreateFlags::CLOEXEC).unwrap());
    step(&mut p, 0, crate::supervisor::Event::Boot);
    let (status, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::NONBLOCK).unwrap();
    let fd = status.as_raw_fd();
    p.await_exec(
        1,
        Pending {
            pid: NO_PID,
            status,
        },
    );
    let watched = crate::testutil::epoll_watches(p.epoll.as_ref().unwrap());
    let r#in = epoll::EventFlags::IN.bits();
    assert_eq!(watched, [(fd, r#in, TOKEN_EXEC + 1)]);
    p.on_exec(1);
    assert_eq!(p.exec_pid(1), Some(NO_PID), "not exec'd yet: still awaited");
    drop(w); // exec'd: the status pipe at its end, nothing written
    p.on_exec(1);
    assert_eq!(p.exec_pid(1), None);
    let s = p.sup.slot(1).unwrap();
    assert_eq!((s.rt.phase, s.rt.pid), (Phase::Running, NO_PID));
    assert!(p.queue.is_empty(), "the answer left unstepped");
    assert_eq!(
        crate::testutil::epoll_watches(p.epoll.as_ref().unwrap()),
        []
    );
}

/// The loop's timer is armed for the children awaited on their way to
/// exec, at the earliest `start_timeout`: without that deadline one that
/// never gets there (its cgroup frozen, a hung mount under `workdir`)
/// keeps its unit `starting` for ever. None once none is awaited.
#[test]
fn the_timer_is_armed_for_the_earliest_exec_awaited() {
    use crate::pid1::tests::{step, NO_PID};
    use rustix::event::epoll;
    let web = "exec = /bin/true\nstart_timeout = 5s\n";
    let db = "exec = /bin/true\nstart_timeout = 2s\n";
    let mut p = crate::pid1::tests::pid1_with(&[("web", web), ("db", db)]);
    p.epoll = Some(epoll::create(epoll::CreateFlags::CLOEXEC).unwrap());
    step(&mut p, 0, crate::supervisor::Event::Boot);
    assert_eq!(p.exec_deadline(), None);
    let from = crate::pid1::now();
    let mut ends = Vec::new();
    for u in 0..2u16 {
        let (status, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::NONBLOCK).unwrap();
        let pid = NO_PID - u32::from(u);
        p.await_exec(u, Pending { pid, status });
        ends.push(w);
    }
    let d = p.exec_deadline().unwrap();
    assert!(
        (from + 2000..=crate::pid1::now() + 2000).contains(&d),
        "{d}"
    );
    drop(ends);
    p.on_exec(0);
    p.on_exec(1);
    assert_eq!(p.exec_deadline(), None);
}
