use crate::pid1::tests::step;
use crate::pid1::Pid1;
use crate::supervisor::{Action, Actions, Event, Note};
use crate::testutil::TempDir;
use crate::vocab::Exit;

/// `web` (`/bin/true` and `more` of a unit file) with `root` as its
/// cgroup root, whose memory.events shows one OOM kill; booted, run as
/// pid 100, and that run's SIGKILL not told apart yet.
fn oom_killed_web(root: &TempDir, more: &str) -> Pid1 {
    root.file("units/web/memory.events", "oom 1\noom_kill 1\n");
    let text = format!("exec = /bin/true\n{more}");
    let mut p = Pid1::new(None, 0, false);
    p.add_unit(crate::unit::parse("web", &text).unwrap());
    p.sup.link().unwrap();
    p.cg = Some(crate::cgroup::Cgroups::open(root.path()).unwrap());
    p.fit_tables();
    step(&mut p, 0, Event::Boot);
    step(&mut p, 1, Event::spawned(0, 100));
    p.edges[0].cgroup = Some(p.sup.slot(0).unwrap().limits_gen);
    assert_eq!(p.classify_exit(0, Exit::Signal(9)), Exit::Signal(9));
    p
}

/// The supervisor's actions for `ev` at `t`, not performed.
fn actions(p: &mut Pid1, t: u64, ev: Event) -> Actions {
    let mut out = Actions::default();
    out.fit(p.sup.len());
    p.sup.step(t, ev, &mut out);
    out
}

/// A step that spawns nothing (the restart waits for its delay) says
/// its unit died once it has told an OOM kill apart from a SIGKILL: the
/// last exit `initctl status` shows is the OOM kill.
#[test]
fn a_death_without_a_spawn_is_settled_before_it_is_said() {
    let root = TempDir::new("executor-oom-alone");
    let mut p = oom_killed_web(&root, "restart_delay = 1s\n");
    let exit = Exit::Signal(9);
    let out = actions(&mut p, 2, Event::Exited { pid: 100, exit });
    assert!(
        !out.iter().any(|a| matches!(a, Action::Spawn(_))),
        "{out:?}"
    );
    assert!(out
        .iter()
        .any(|a| matches!(a, Action::Announce(0, Note::Died { .. }))));
    p.perform_all(&out);
    assert_eq!(p.sup.slot(0).unwrap().rt.last_exit, Some(Exit::OomKill));
    assert_eq!(p.edges[0].oom_kills, 1);
}

/// A step that restarts its unit at once (`restart_delay = 0`) says the
/// death after the spawn, and only then tells the OOM kill apart: the
/// failed start here (a filter it asked for and PID 1 lacks) leaves the
/// unit's cgroup in place for the read.
#[test]
fn a_death_with_its_restart_is_settled_after_the_spawn() {
    let root = TempDir::new("executor-oom-restart");
    let mut p = oom_killed_web(&root, "restart_delay = 0ms\nseccomp = @system-service\n");
    p.edges[0].seccomp = None;
    let exit = Exit::Signal(9);
    let out = actions(&mut p, 2, Event::Exited { pid: 100, exit });
    assert!(out.contains(&Action::Spawn(0)), "{out:?}");
    p.perform_all(&out);
    assert!(p.edges[0].last_error().starts_with("seccomp:"));
    assert_eq!(p.sup.slot(0).unwrap().rt.last_exit, Some(Exit::OomKill));
    assert_eq!(p.edges[0].oom_kills, 1);
}
