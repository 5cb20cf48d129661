//! A stop's kills when the cgroup does not say what it holds: the main
//! process outside it, `cgroup.events` unreadable, cgroups refused after
//! the boot. Against a temp dir as the cgroup root and real children.

use super::super::tests::{step, with_cgroups, with_web, NO_PID};
use super::super::{now, Pid1};
use crate::supervisor::{Action, Event, Phase};
use crate::testutil::TempDir;
use crate::vocab::Exit;
use std::io::{BufRead, BufReader};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A process that ignores SIGTERM, leading its own process group; back
/// once its trap is set.
fn stubborn() -> Child {
    up("trap '' TERM; echo up; exec sleep 30")
}

/// `script` (sh) leading its own process group, back once it said `up`.
fn up(script: &str) -> Child {
    let mut c = Command::new("/bin/sh")
        .args(["-c", script])
        .stdout(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(c.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "up\n");
    c
}

/// How `c` ended within 5 s, or None if it still runs (then killed
/// here).
fn ended_within(c: &mut Child) -> Option<ExitStatus> {
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end {
        if let Some(st) = c.try_wait().unwrap() {
            return Some(st);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = c.kill();
    let _ = c.wait();
    None
}

/// The signal `c` died of within 5 s, or None if it still runs (then
/// killed here).
fn died_of(c: &mut Child) -> Option<i32> {
    ended_within(c).and_then(|st| st.signal())
}

/// The stop's SIGKILL, at `stop_timeout`, reaches a main process that
/// ignores SIGTERM and is not in the unit's cgroup (it moved itself, or
/// the directory is gone since): the stop waits for that process, and
/// would wait with no deadline left.
#[test]
fn a_stops_kill_reaches_a_main_process_outside_the_cgroup() {
    for gone in [true, false] {
        let root = TempDir::new("pid1-stop-outside");
        if gone {
            std::fs::create_dir_all(root.path().join("units")).unwrap();
        } else {
            root.file("units/web/cgroup.events", "populated 0\nfrozen 0\n");
            root.file("units/web/cgroup.procs", "");
        }
        let mut p = with_cgroups(&root);
        let mut main = stubborn();
        assert_eq!(step(&mut p, 1, Event::Boot), [Action::Spawn(0)]);
        step(&mut p, 2, Event::spawned(0, main.id()));
        for a in step(&mut p, 10, Event::Stop { unit: 0 }) {
            if matches!(a, Action::Signal { .. }) {
                p.perform(a);
            }
        }
        let t = p.sup.next_deadline().unwrap();
        let acts = step(&mut p, t, Event::Tick);
        assert!(acts.contains(&Action::KillCgroup(0)), "{acts:?}");
        assert_eq!(p.sup.slot(0).unwrap().rt.phase, Phase::Stopping);
        p.perform(Action::KillCgroup(0));
        assert_eq!(died_of(&mut main), Some(9), "cgroup gone: {gone}");
    }
}

/// `cgroup.events` cannot be read (here: not there): what the stop left
/// in the cgroup after the main process ended still gets its kill at the
/// end of the stop's grace, and after it nobody waits.
#[test]
fn a_stops_leftovers_are_killed_when_cgroup_events_cannot_be_read() {
    let root = TempDir::new("pid1-stop-noevents");
    let mut left = stubborn();
    root.file("units/web/cgroup.procs", &format!("{}\n", left.id()));
    let mut p = with_cgroups(&root);
    step(&mut p, 1, Event::Boot);
    step(&mut p, 2, Event::spawned(0, NO_PID));
    for a in step(&mut p, 10, Event::Stop { unit: 0 }) {
        if matches!(a, Action::Signal { .. }) {
            p.perform(a);
        }
    }
    let acts = step(
        &mut p,
        20,
        Event::Exited {
            pid: NO_PID,
            exit: Exit::Code(0),
        },
    );
    assert!(acts.contains(&Action::KillCgroup(0)), "{acts:?}");
    p.perform(Action::KillCgroup(0));
    assert!(p.draining(), "the stop's grace is kept");
    assert!(left.try_wait().unwrap().is_none(), "killed before its time");
    p.drain_timeouts(now().saturating_add(60_000));
    assert_eq!(died_of(&mut left), Some(9));
    assert!(!p.draining(), "nothing to wait for once killed");
}

/// A kill due while the kernel refused cgroups after the boot (`start`
/// drops them): done once, without cgroups, not due again and again.
#[test]
fn a_due_kill_is_done_once_when_cgroups_are_dropped() {
    let root = TempDir::new("pid1-stop-dropped");
    root.file("units/web/cgroup.events", "populated 1\nfrozen 0\n");
    let mut p = with_cgroups(&root);
    p.signal_unit(0, 0, 18);
    // `cgroup.events` as the epoll set would hold it (a temp dir's file
    // cannot be in one): still populated.
    let events = rustix::fs::memfd_create("events", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    rustix::io::write(&events, b"populated 1\nfrozen 0\n").unwrap();
    p.edges[0].drain.events = Some(events);
    p.kill_cgroup(0);
    assert!(p.draining());
    p.cg = None;
    let t = now().saturating_add(60_000);
    let mut turns = 0;
    while p.drain_deadline().is_some_and(|d| d <= t) && turns < 100 {
        p.drain_timeouts(t);
        turns += 1;
    }
    assert_eq!(
        turns, 1,
        "the kill stays due: the timer fires at once, for ever"
    );
    assert!(!p.draining());
}

/// Gone, or a zombie left for its new parent to reap.
fn ended(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s
            .rsplit(')')
            .next()
            .is_some_and(|r| r.trim_start().starts_with('Z')),
    }
}

/// Without cgroups, what a run's exit leaves in its process group (here
/// a `sleep` its shell started) is killed at once: nothing would tell
/// when it is gone.
#[test]
fn without_cgroups_what_an_exit_leaves_in_the_group_is_killed_at_once() {
    let mut p = with_web();
    p.fit_tables();
    let mut run = Command::new("/bin/sh")
        .args(["-c", "sleep 30 & echo $!"])
        .stdout(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(run.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let left: u32 = line.trim().parse().unwrap();
    assert!(run.wait().unwrap().success());
    assert!(!ended(left));
    assert_eq!(step(&mut p, 1, Event::Boot), [Action::Spawn(0)]);
    p.note_pgid(0, run.id());
    step(&mut p, 2, Event::spawned(0, run.id()));
    let acts = step(
        &mut p,
        3,
        Event::Exited {
            pid: run.id(),
            exit: Exit::Code(0),
        },
    );
    assert!(acts.contains(&Action::KillCgroup(0)), "{acts:?}");
    p.perform(Action::KillCgroup(0));
    let end = Instant::now() + Duration::from_secs(5);
    while !ended(left) {
        assert!(Instant::now() < end, "what the exit left lives on");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!p.draining());
}

/// `web` with its cgroup under `root` populated: PID 1, and the path of
/// its `cgroup.kill` (empty until written).
fn populated(root: &TempDir) -> (Pid1, std::path::PathBuf) {
    root.file("units/web/cgroup.events", "populated 1\nfrozen 0\n");
    let kill = root.file("units/web/cgroup.kill", "");
    (with_cgroups(root), kill)
}

/// A start while the last stop's processes are still there (their kill
/// due at the end of its grace): they are killed now, once, and nothing
/// of that stop is waited for any more.
#[test]
fn a_start_during_a_stops_grace_kills_what_it_left_first() {
    let root = TempDir::new("pid1-stop-respawn");
    let (mut p, kill) = populated(&root);
    p.signal_unit(0, 0, 15);
    p.kill_cgroup(0);
    assert!(p.draining());
    assert_eq!(std::fs::read_to_string(&kill).unwrap(), "", "in its grace");
    p.clear_for_spawn(0);
    assert_eq!(std::fs::read_to_string(&kill).unwrap(), "1");
    assert!(!p.draining());
    assert_eq!(p.in_between(), None);
}

/// `cgroup.events` as the epoll set would hold it (a temp dir's file
/// cannot be in one), saying `text`.
fn events_fd(text: &str) -> rustix::fd::OwnedFd {
    let fd = rustix::fs::memfd_create("events", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    rustix::io::write(&fd, text.as_bytes()).unwrap();
    fd
}

/// A watched `cgroup.events` that cannot be read any more is a cgroup
/// removed since (its fd stays ready in the epoll set): the drain ends,
/// its grace's kill not kept (PID 1 would wake for it at once, again and
/// again, until then).
#[test]
fn a_watched_cgroup_events_that_fails_ends_the_drain() {
    let root = TempDir::new("pid1-stop-gone");
    root.file("units/web/cgroup.events", "populated 1\nfrozen 0\n");
    let mut p = with_cgroups(&root);
    p.signal_unit(0, 0, 18);
    p.edges[0].drain.events = Some(events_fd("populated 1\nfrozen 0\n"));
    p.kill_cgroup(0);
    assert!(p.draining(), "in the stop's grace");
    let fd = p.edges[0].drain.events.as_ref().unwrap();
    rustix::fs::ftruncate(fd, 0).unwrap();
    p.on_cgroup_events(0);
    assert!(!p.draining());
}

/// `web` booted, its cgroup directory made under `root` as `spawn`
/// leaves it once `cg.prepare` made it.
fn booted_with_its_cgroup(root: &TempDir) -> Pid1 {
    std::fs::create_dir_all(root.path().join("units/web")).unwrap();
    let mut p = with_cgroups(root);
    p.edges[0].cgroup = Some(p.sup.slot(0).unwrap().limits_gen);
    step(&mut p, 1, Event::Boot);
    p
}

/// A reload whose directory has no unit left: the actions it asks for.
fn removed_by_reload(p: &mut Pid1) -> Vec<Action> {
    let mut out = crate::supervisor::Actions::default();
    out.fit(4);
    p.sup
        .reload(3, &mut Vec::new().into_iter(), &|_| false, &mut out);
    out.as_slice().to_vec()
}

/// A removed unit's cgroup deleted while its drain still waited (the
/// kernel tells of a leftover's exit by SIGCHLD first, `cgroup.events`
/// later): the drain ends with it.
#[test]
fn a_removed_units_cgroup_deleted_ends_its_drain() {
    let root = TempDir::new("pid1-stop-forget");
    let mut p = booted_with_its_cgroup(&root);
    step(&mut p, 2, Event::spawned(0, NO_PID));
    for a in removed_by_reload(&mut p) {
        if matches!(a, Action::Signal { .. }) {
            p.perform(a);
        }
    }
    let acts = step(
        &mut p,
        4,
        Event::Exited {
            pid: NO_PID,
            exit: Exit::Code(0),
        },
    );
    assert!(acts.contains(&Action::KillCgroup(0)), "{acts:?}");
    p.edges[0].drain.events = Some(events_fd("populated 1\nfrozen 0\n"));
    p.perform(Action::KillCgroup(0));
    assert!(p.draining(), "in the stop's grace");
    p.forget_cgroups();
    assert!(!root.path().join("units/web").exists(), "removed");
    assert!(!p.draining());
}

/// A unit whose last start failed after its cgroup was made (its exec
/// failed: the child's report on the status pipe), then removed by a
/// reload: its cgroup is removed as any removed unit's is.
#[test]
fn a_removed_unit_whose_last_start_failed_has_its_cgroup_removed() {
    let root = TempDir::new("pid1-failed-forget");
    let mut p = booted_with_its_cgroup(&root);
    // The child's report: execve failed with ENOENT.
    let flags = rustix::pipe::PipeFlags::CLOEXEC | rustix::pipe::PipeFlags::NONBLOCK;
    let (status, w) = rustix::pipe::pipe_with(flags).unwrap();
    let [e0, e1, e2, e3] = 2i32.to_le_bytes();
    let exec = crate::spawn::Step::Exec.code();
    rustix::io::write(&w, &[exec, e0, e1, e2, e3]).unwrap();
    drop(w);
    p.await_exec(
        0,
        crate::spawn::Pending {
            pid: NO_PID,
            status,
        },
    );
    p.run_queue();
    assert_ne!(
        p.edges[0].cgroup,
        Some(p.sup.slot(0).unwrap().limits_gen),
        "the next start writes the limits again"
    );
    removed_and_cgroup_deleted(&mut p, &root);
}

/// A `ready = sd_notify` start stopped while still in its exec handshake:
/// its notify socket goes with the cancelled run, as after a failed
/// start or an exit.
#[test]
fn a_start_cancelled_in_its_handshake_lets_go_of_its_notify_socket() {
    let mut p = with_web();
    let ep = rustix::event::epoll::CreateFlags::CLOEXEC;
    p.epoll = Some(rustix::event::epoll::create(ep).unwrap());
    p.fit_tables();
    step(&mut p, 1, Event::Boot);
    let flags = rustix::pipe::PipeFlags::CLOEXEC | rustix::pipe::PipeFlags::NONBLOCK;
    let (status, _w) = rustix::pipe::pipe_with(flags).unwrap();
    let (sock, _peer) = rustix::net::socketpair(
        rustix::net::AddressFamily::UNIX,
        rustix::net::SocketType::DGRAM,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )
    .unwrap();
    // As `start` leaves it: the readiness fd watched, the handshake on.
    let ends = super::super::executor::Ends {
        log: None,
        notify: Some(sock),
        report: None,
    };
    p.watch_ends(0, ends);
    p.await_exec(
        0,
        crate::spawn::Pending {
            pid: NO_PID,
            status,
        },
    );
    assert!(p.edges[0].notify.is_some());
    // `initctl stop web` (or a reload removing it) before the exec.
    for a in step(&mut p, 2, Event::Stop { unit: 0 }) {
        if !matches!(a, Action::KillCgroup(_)) {
            p.perform(a);
        }
    }
    assert!(p.edges[0].exec.is_none(), "the handshake goes on");
    assert!(p.edges[0].notify.is_none(), "the socket is still held");
}

/// `web` and `app` (`after` web, and `app_extra`) running with cgroups
/// under `root` whose `cgroup.events` say `populated` (`populated 0|1`),
/// a reboot just begun: PID 1, web's index, app's.
fn shutting_web_and_app(root: &TempDir, populated: &str, app_extra: &str) -> (Pid1, u16, u16) {
    for u in ["web", "app"] {
        root.file(
            &format!("units/{u}/cgroup.events"),
            &format!("{populated}\nfrozen 0\n"),
        );
        root.file(&format!("units/{u}/cgroup.procs"), "");
    }
    let mut p = Pid1::new(None, 0, false);
    let app = format!("exec = /bin/true\nafter = web\n{app_extra}");
    p.add_unit(crate::unit::parse("web", "exec = /bin/true\n").unwrap());
    p.add_unit(crate::unit::parse("app", &app).unwrap());
    p.sup.link().unwrap();
    p.cg = Some(crate::cgroup::Cgroups::open(root.path()).unwrap());
    let ep = rustix::event::epoll::CreateFlags::CLOEXEC;
    p.epoll = Some(rustix::event::epoll::create(ep).unwrap());
    p.fit_tables();
    let (w, a) = (p.sup.index("web").unwrap(), p.sup.index("app").unwrap());
    step(&mut p, now(), Event::Boot);
    step(&mut p, now(), Event::spawned(w, NO_PID));
    step(&mut p, now(), Event::spawned(a, NO_PID - 1));
    p.feed(Event::Shutdown(crate::vocab::ShutdownKind::Reboot));
    (p, w, a)
}

/// In a shutdown, what a unit's exit left in its cgroup holds the units
/// it is `after` up, as the contract's whole-cgroup stop says: `web` gets
/// its stop signal once `app`'s cgroup is empty, not at `app`'s exit
/// (a worker `app` forked may still be writing to it).
#[test]
fn a_shutdown_stops_a_dependency_once_its_dependents_cgroup_is_empty() {
    let root = TempDir::new("pid1-shutdown-drain");
    let (mut p, w, a) = shutting_web_and_app(&root, "populated 1", "stop_timeout = 60s\n");
    assert_eq!(p.sup.slot(a).unwrap().rt.phase, Phase::Stopping);
    p.feed(Event::Exited {
        pid: NO_PID - 1,
        exit: Exit::Signal(15),
    });
    p.tend_shutdown();
    assert!(p.draining(), "app's cgroup is still populated");
    let phase = |p: &Pid1| p.sup.slot(w).unwrap().rt.phase;
    assert_eq!(phase(&p), Phase::Running, "web stopped while app drains");
    root.file("units/app/cgroup.events", "populated 0\nfrozen 0\n");
    p.on_cgroup_events(a);
    p.tend_shutdown();
    assert_eq!(phase(&p), Phase::Stopping);
}

/// In a shutdown, the kill of a unit whose cgroup is already empty queues
/// its `Drained` once, not twice (the kill ended the drain, which said
/// so, and the kill's own check said it again): each unit's drain counts
/// against an event queue of two events a unit.
#[test]
fn a_kill_of_an_empty_cgroup_in_a_shutdown_queues_drained_once() {
    let root = TempDir::new("pid1-drained-once");
    let (mut p, _, a) = shutting_web_and_app(&root, "populated 0", "");
    let exit = Exit::Signal(15);
    let out = step(
        &mut p,
        now(),
        Event::Exited {
            pid: NO_PID - 1,
            exit,
        },
    );
    assert!(out.contains(&Action::KillCgroup(a)), "{out:?}");
    p.perform(Action::KillCgroup(a));
    let drained = p
        .queue
        .iter()
        .filter(|e| matches!(e, Event::Drained { unit } if *unit == a))
        .count();
    assert_eq!(drained, 1);
}

/// A start whose cgroup write fails after the directory was made (or
/// known) keeps it known: the unit's removal deletes it. (Before, the
/// edge forgot it, and a removed unit's `units/NAME` stayed.)
#[test]
fn a_failed_prepare_keeps_the_cgroup_known_for_its_removal() {
    let root = TempDir::new("prepare-fail-rm");
    let mut p = booted_with_its_cgroup(&root);
    // Limits changed since they were written (a reload): rewritten at
    // the next start.
    let gen = p.sup.slot(0).unwrap().limits_gen;
    p.edges[0].cgroup = Some(gen.wrapping_sub(1));
    // A write the kernel refuses (here EISDIR; any errno but ENOENT). Not
    // empty: the failed start's look for cgroups the unit made below its
    // own (`cgroup::nested`) cannot take it for one.
    root.file("units/web/memory.max/x", "");
    p.perform(Action::Spawn(0));
    p.run_queue();
    assert!(
        p.edges[0].cgroup.is_some_and(|g| g != gen),
        "units/web exists: known, its limits not written"
    );
    // The bad file gone again (a transient error): only the directory the
    // unit ran in is left, and its removal takes it.
    std::fs::remove_dir_all(root.path().join("units/web/memory.max")).unwrap();
    removed_and_cgroup_deleted(&mut p, &root);
}

/// Unit 0 removed by a reload, its slot freed, and its cgroup
/// `units/web` deleted with it.
fn removed_and_cgroup_deleted(p: &mut Pid1, root: &TempDir) {
    for a in removed_by_reload(p) {
        p.perform(a);
    }
    p.run_queue();
    assert_eq!(
        p.sup.slot(0).unwrap().retired,
        crate::supervisor::Retired::Free
    );
    p.forget_cgroups();
    assert!(!root.path().join("units/web").exists(), "left behind");
}

/// A reaper's report kept for a reap that never took it (its run's
/// handshake settled as a failed start) is not the next run's exit: a
/// new start clears it. (A later run killed before its report would have
/// been told "exit 127", and its OOM kill missed.)
#[test]
fn a_start_clears_a_report_kept_for_a_reap() {
    let root = TempDir::new("pid1-early");
    let mut p = booted_with_its_cgroup(&root);
    p.edges[0].drain.early = Some(Exit::code(127));
    p.clear_for_spawn(0);
    assert_eq!(p.edges[0].drain.early, None);
}

/// A reaper adopted without its report pipe is known by its PID
/// namespace: a process made in a new one is in another than PID 1's,
/// its parent (made in PID 1's) and PID 1's own processes are not.
#[test]
fn a_process_made_in_a_new_pid_namespace_is_told_from_others() {
    let mut outer = Command::new("unshare")
        .args(["--pid", "--fork", "sleep", "5"])
        .spawn()
        .expect("unshare");
    let children = format!("/proc/{0}/task/{0}/children", outer.id());
    let deadline = Instant::now() + Duration::from_secs(5);
    let inner = loop {
        let text = std::fs::read_to_string(&children).unwrap_or_default();
        if let Some(p) = text.split_whitespace().next() {
            break p.parse::<u32>().unwrap();
        }
        assert!(Instant::now() < deadline, "unshare made no child");
        std::thread::sleep(Duration::from_millis(5));
    };
    let ns = |pid| crate::sys::file::same_namespace(pid, "pid");
    let told = (ns(inner), ns(outer.id()), ns(std::process::id()), ns(0));
    let _ = rustix::process::kill_process(
        rustix::process::Pid::from_raw(inner as i32).unwrap(),
        rustix::process::Signal::KILL,
    );
    let _ = outer.kill();
    let _ = outer.wait();
    assert_eq!(told, (Some(false), Some(true), Some(true), None));
}

/// Unit `unit_text`, its run (pid `NO_PID`) in a temp cgroup whose
/// memory.events counts no OOM kill yet (its path returned).
fn running_in_cgroup(root: &TempDir, unit_text: &str) -> (Pid1, std::path::PathBuf) {
    let events = root.file("units/web/memory.events", "oom 0\noom_kill 0\n");
    root.file("units/web/cgroup.events", "populated 1\nfrozen 0\n");
    root.file("units/web/cgroup.procs", "");
    root.file("units/web/cgroup.kill", "");
    let mut p = super::super::tests::pid1_with(&[("web", unit_text)]);
    p.cg = Some(crate::cgroup::Cgroups::open(root.path()).unwrap());
    step(&mut p, 0, Event::Boot);
    step(&mut p, 1, Event::spawned(0, NO_PID));
    (p, events)
}

/// PID 1's kill of unit web at its deadline (`t`), and the SIGKILL
/// reported for the unit afterwards, told apart as an exit's is.
fn killed_at_deadline(p: &mut Pid1, t: u64) {
    let acts = step(p, t, Event::Tick);
    assert!(acts.contains(&Action::KillCgroup(0)), "{acts:?}");
    p.kill_cgroup(0);
    let exit = p.classify_exit(0, Exit::Signal(9));
    step(p, t + 1, Event::Exited { pid: NO_PID, exit });
    p.settle_oom(0);
}

/// A stop whose TERM is ignored ends in PID 1's own SIGKILL at
/// `stop_timeout`: the main process's death by it is no OOM kill, though
/// a worker of the run was OOM-killed before.
#[test]
fn a_stops_sigkill_is_not_taken_for_an_earlier_oom_kill() {
    let root = TempDir::new("pid1-stop-oom");
    let (mut p, events) = running_in_cgroup(&root, "exec = /bin/true\n");
    std::fs::write(&events, "oom 1\noom_kill 1\n").unwrap();
    step(&mut p, 60_000, Event::Stop { unit: 0 });
    let t = p.sup.next_deadline().unwrap();
    killed_at_deadline(&mut p, t);
    assert_eq!(p.sup.slot(0).unwrap().rt.last_exit, Some(Exit::Signal(9)));
    assert_eq!(p.edges[0].oom_kills, 1, "the worker's kill still counted");
}

/// A start timeout lets go of the run (its pid) before the kill; a
/// reaper's report of the run's SIGKILL still comes for the unit
/// (`report::on_report`), and must not make the last run's exit an OOM
/// kill. The watchdog's kill takes the same path.
#[test]
fn a_start_timeouts_sigkill_is_not_taken_for_an_earlier_oom_kill() {
    let root = TempDir::new("pid1-timeout-oom");
    let unit = "exec = /bin/true\nready = notify\nstart_timeout = 1s\n";
    let (mut p, events) = running_in_cgroup(&root, unit);
    let exit = Exit::Code(3);
    step(&mut p, 2, Event::Exited { pid: NO_PID, exit });
    let t = p.sup.next_deadline().unwrap();
    step(&mut p, t, Event::Tick);
    step(&mut p, t, Event::spawned(0, NO_PID));
    std::fs::write(&events, "oom 1\noom_kill 1\n").unwrap();
    let t = p.sup.next_deadline().unwrap();
    killed_at_deadline(&mut p, t);
    assert_eq!(p.sup.slot(0).unwrap().rt.last_exit, Some(exit));
}

/// A unit stopped before a shutdown, its leftovers given the rest of its
/// `stop_timeout`, holds its `after` unit up in the shutdown until its
/// cgroup is empty (docs/units.md, "Order and readiness").
#[test]
fn a_shutdown_waits_for_the_leftovers_of_an_earlier_stop() {
    let root = TempDir::new("pid1-stop-then-shutdown");
    for u in ["db", "web"] {
        root.file(
            &format!("units/{u}/cgroup.events"),
            "populated 1\nfrozen 0\n",
        );
        root.file(&format!("units/{u}/cgroup.procs"), "");
        root.file(&format!("units/{u}/cgroup.kill"), "");
    }
    let mut p = super::super::tests::pid1_with(&[
        ("db", "exec = /bin/true\n"),
        ("web", "exec = /bin/true\nafter = db\n"),
    ]);
    p.cg = Some(crate::cgroup::Cgroups::open(root.path()).unwrap());
    let (db, web) = (0, 1);
    step(&mut p, 0, Event::Boot);
    step(&mut p, 1, Event::spawned(db, NO_PID - 1));
    step(&mut p, 2, Event::spawned(web, NO_PID));
    step(&mut p, 3, Event::Stop { unit: web });
    p.signal_unit(web, NO_PID, 15);
    let exit = Exit::Signal(15);
    let acts = step(&mut p, 4, Event::Exited { pid: NO_PID, exit });
    for a in acts {
        p.perform(a);
    }
    assert!(p.draining(), "in the stop's grace");
    p.ask_shutdown(crate::vocab::ShutdownKind::Reboot, format_args!("a test"))
        .unwrap();
    let phase = |p: &Pid1, u| p.sup.slot(u).unwrap().rt.phase;
    assert_eq!(phase(&p, db), Phase::Running, "web's leftovers still run");
    root.file("units/web/cgroup.events", "populated 0\nfrozen 0\n");
    p.on_cgroup_events(web);
    p.run_queue();
    assert_eq!(phase(&p, db), Phase::Stopping);
}

/// A stop sends SIGCONT after its signal, as systemd, s6 and runit do: a
/// stopped process (SIGSTOP, a debugger) ran no handler until the SIGKILL
/// at the end of `stop_timeout`.
#[test]
fn a_stop_continues_a_stopped_process() {
    let root = TempDir::new("pid1-stop-cont");
    root.file("units/web/cgroup.events", "populated 1\nfrozen 0\n");
    let mut main = up("trap 'exit 0' TERM; echo up; while :; do sleep 0.05; done");
    root.file("units/web/cgroup.procs", &format!("{}\n", main.id()));
    let pid = rustix::process::Pid::from_raw(main.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::STOP).unwrap();
    let stat = format!("/proc/{}/stat", main.id());
    let stopped = || {
        let s = std::fs::read_to_string(&stat).unwrap();
        s.rsplit_once(") ").is_some_and(|(_, r)| r.starts_with('T'))
    };
    let end = Instant::now() + Duration::from_secs(5);
    while !stopped() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(stopped(), "never stopped");
    let mut p = with_cgroups(&root);
    p.signal_unit(0, main.id(), 15);
    let st = ended_within(&mut main);
    assert_eq!(st.and_then(|s| s.code()), Some(0), "left stopped: {st:?}");
}

/// `script` leading its own process group, its pid written as unit web's
/// only process besides `others` in the temp cgroup under `root`.
fn in_web(root: &TempDir, script: &str, others: &[&Child]) -> Child {
    let c = up(script);
    let procs: String = others
        .iter()
        .map(|o| o.id())
        .chain([c.id()])
        .map(|p| format!("{p}\n"))
        .collect();
    root.file("units/web/cgroup.procs", &procs);
    c
}

/// A stop's signal goes to every process of the cgroup, the main one
/// among them: not only to the others (the main one was spared as a
/// reaper, in PID 1's own PID namespace).
#[test]
fn a_stop_signals_the_main_process_with_the_rest_of_its_cgroup() {
    let root = TempDir::new("pid1-stop-main");
    let mut worker = up("echo up; exec sleep 30");
    let mut main = in_web(&root, "echo up; exec sleep 30", &[&worker]);
    let mut p = with_cgroups(&root);
    p.signal_unit(0, main.id(), 15);
    assert_eq!(died_of(&mut main), Some(15), "the main process");
    assert_eq!(died_of(&mut worker), Some(15), "the worker");
}

/// A reaper's run (its report pipe held): the reaper is told first that
/// a stop comes (`REVOKE`), and the stop signal goes to the rest of its
/// cgroup, not to it (it would forward it to the service a second time).
#[test]
fn a_stop_tells_a_reaper_and_signals_the_rest_of_its_cgroup() {
    let root = TempDir::new("pid1-stop-reaper");
    let mut worker = up("echo up; exec sleep 30");
    let script = "trap 'exit 0' URG; echo up; while :; do sleep 0.05; done";
    let mut reaper = in_web(&root, script, &[&worker]);
    let mut p = with_cgroups(&root);
    let (report, _w) = rustix::pipe::pipe().unwrap();
    p.edges[0].exit_report = Some(report);
    p.signal_unit(0, reaper.id(), 15);
    assert_eq!(died_of(&mut worker), Some(15), "the worker");
    let st = ended_within(&mut reaper);
    assert_eq!(
        st.and_then(|s| s.code()),
        Some(0),
        "not told, or signalled: {st:?}"
    );
}

/// Without cgroups a stop's signal goes to the run's process group (its
/// leader, the main process, among it): there is no cgroup to read.
#[test]
fn without_cgroups_a_stop_signals_the_runs_process_group() {
    let mut p = with_web();
    let mut main = up("echo up; exec sleep 30");
    p.signal_unit(0, main.id(), 15);
    assert_eq!(died_of(&mut main), Some(15));
}

/// An exit a reaper reported (outside a stop's grace) leaves its cgroup
/// alone: the reaper emptied its namespace and is on its way out, and a
/// restart does not wait for it (the new run shares the cgroup with it).
#[test]
fn a_reported_exit_does_not_kill_its_reaper_on_its_way_out() {
    let root = TempDir::new("pid1-reported");
    let (mut p, kill) = populated(&root);
    p.edges[0].drain.reported = true;
    p.kill_cgroup(0);
    assert_eq!(std::fs::read_to_string(&kill).unwrap(), "", "killed");
    assert!(!p.draining());
    assert!(!p.edges[0].drain.reported, "taken by this exit");
}

/// A run started once the kernel refused cgroups after the boot (the
/// table of process groups never sized, cgroups there at the boot): its
/// process group is noted all the same, for its kill.
#[test]
fn a_start_after_cgroups_were_refused_notes_its_process_group() {
    let mut p = with_web();
    assert!(p.pgids.is_empty(), "sized at the boot");
    p.note_pgid(0, NO_PID);
    assert_eq!(p.pgids, [NO_PID]);
}

/// A start during a stop's grace whose cgroup keeps its limits keeps the
/// report pipe of the stopped run's reaper (held until the new run
/// exec'd); one whose limits changed lets go of it first, so that the
/// reaper exits and the cgroup can be made anew.
#[test]
fn a_start_during_a_stops_grace_lets_the_reaper_go_only_for_new_limits() {
    for current in [true, false] {
        let root = TempDir::new("pid1-respawn-held");
        let mut p = booted_with_its_cgroup(&root);
        root.file("units/web/cgroup.events", "populated 1\nfrozen 0\n");
        if !current {
            p.edges[0].cgroup = p.edges[0].cgroup.map(|g| g.wrapping_sub(1));
        }
        p.signal_unit(0, 0, 15);
        p.kill_cgroup(0);
        assert!(p.draining(), "in its grace");
        let (report, _w) = rustix::pipe::pipe().unwrap();
        p.edges[0].drain.held = Some(report);
        p.clear_for_spawn(0);
        assert_eq!(
            p.edges[0].drain.held.is_some(),
            current,
            "limits kept: {current}"
        );
    }
}

/// Undoing what a unit's last run made below its cgroup says whether
/// there was something (a refused start is then tried once more).
#[test]
fn undoing_what_a_run_made_below_its_cgroup_says_if_it_did() {
    let root = TempDir::new("pid1-undo-nested");
    root.file("units/web/cgroup.procs", "");
    let p = with_cgroups(&root);
    assert!(!p.undo_nested(0), "nothing made");
    root.file("units/web/cgroup.subtree_control", "memory\n");
    assert!(p.undo_nested(0), "a controller handed to children");
}

/// A stop puts the unit's `cgroup.events` in the epoll set, under that
/// unit's token: the loop learns from it that the cgroup is empty and
/// answers the stop then, not at the next kill's time. (A FIFO stands
/// for the file: a temp dir's regular file cannot be in an epoll set.)
#[test]
fn a_stop_watches_its_units_cgroup_events_under_its_token() {
    let root = TempDir::new("pid1-stop-watch");
    for u in ["web", "app"] {
        root.file(&format!("units/{u}/cgroup.procs"), "");
        crate::testutil::fifo(&root.path().join(format!("units/{u}/cgroup.events")));
    }
    let unit = "exec = /bin/true\n";
    let mut p = super::super::tests::pid1_with(&[("web", unit), ("app", unit)]);
    p.cg = Some(crate::cgroup::Cgroups::open(root.path()).unwrap());
    let ep = rustix::event::epoll::CreateFlags::CLOEXEC;
    p.epoll = Some(rustix::event::epoll::create(ep).unwrap());
    p.signal_unit(1, 0, 18);
    use rustix::fd::AsRawFd;
    let fd = p.edges[1].drain.events.as_ref().map(|f| f.as_raw_fd());
    let token = super::super::event_loop::TOKEN_CGEVENTS + 1;
    let pri = rustix::event::epoll::EventFlags::PRI.bits();
    let watches = crate::testutil::epoll_watches(p.epoll.as_ref().unwrap());
    assert_eq!(watches, [(fd.unwrap_or(-1), pri, token)]);
}

/// The kernel refusing clone3 into a cgroup after the boot: PID 1 goes on
/// without cgroups, the running units' process groups noted (a stop's
/// SIGKILL goes to the group noted; none noted, it went nowhere).
#[test]
fn cgroups_refused_after_the_boot_note_the_running_process_groups() {
    let root = TempDir::new("pid1-drop-cgroups");
    root.file("units/web/cgroup.procs", "");
    let mut p = with_cgroups(&root);
    step(&mut p, 1, Event::Boot);
    step(&mut p, 2, Event::spawned(0, NO_PID));
    p.drop_cgroups();
    assert!(p.cg.is_none());
    assert_eq!(p.pgids, [NO_PID]);
}
