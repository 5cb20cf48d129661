//! A reaper's report taken by `on_report` in each order it can come:
//! against a temp dir as the cgroup root (or none) and a real pipe, the
//! unit's run a pid no process has.

use super::super::tests::{pid1_with, step, NO_PID};
use super::super::Pid1;
use crate::spawn::reaper;
use crate::supervisor::{Event, Phase};
use crate::testutil::TempDir;
use crate::vocab::Exit;
use rustix::fd::OwnedFd;
use rustix::pipe::{pipe_with, PipeFlags};

/// Unit `web` of `unit_text` running as pid `NO_PID`, in a temp cgroup
/// root when `root` is given (its memory.events counting no OOM kill).
fn running(root: Option<&TempDir>, unit_text: &str) -> Pid1 {
    let mut p = pid1_with(&[("web", unit_text)]);
    if let Some(root) = root {
        root.file("units/web/memory.events", "oom 0\noom_kill 0\n");
        root.file("units/web/cgroup.events", "populated 1\nfrozen 0\n");
        root.file("units/web/cgroup.procs", "");
        root.file("units/web/cgroup.kill", "");
        p.cg = Some(crate::cgroup::Cgroups::open(root.path()).unwrap());
    }
    step(&mut p, 0, Event::Boot);
    step(&mut p, 1, Event::spawned(0, NO_PID));
    p
}

/// The unit's report pipe with `report` written and the writer gone,
/// as the reaper leaves it at its exit; its read end is the unit's.
fn reported(p: &mut Pid1, report: &[u8]) {
    let (rd, wr) = pipe_with(PipeFlags::NONBLOCK | PipeFlags::CLOEXEC).unwrap();
    assert_eq!(rustix::io::write(&wr, report).unwrap(), report.len());
    drop::<OwnedFd>(wr);
    p.watch_report(0, Some(rd));
}

fn phase(p: &Pid1) -> Phase {
    p.sup.slot(0).unwrap().rt.phase
}

/// With cgroups, the report is the run's exit: stepped at once, the
/// pipe let go when no run follows (the reaper exits then).
#[test]
fn a_report_in_a_cgroup_is_the_runs_exit() {
    let root = TempDir::new("report-exit");
    let mut p = running(Some(&root), "exec = /bin/true\nrestart = never\n");
    reported(&mut p, &reaper::encode(Exit::Code(3)));
    p.on_report(0);
    let rt = &p.sup.slot(0).unwrap().rt;
    assert_eq!(rt.last_exit, Some(Exit::Code(3)));
    assert_eq!(rt.phase, Phase::Failed);
    let e = &p.edges[0];
    assert!(e.exit_report.is_none() && e.drain.held.is_none(), "let go");
    assert_eq!(e.drain.early, None);
}

/// Without cgroups nothing but the reaper's reap says the run is gone:
/// the report is kept for it, the unit still running until then.
#[test]
fn without_cgroups_a_report_waits_for_the_reap() {
    let mut p = running(None, "exec = /bin/true\nrestart = never\n");
    reported(&mut p, &reaper::encode(Exit::Code(3)));
    p.on_report(0);
    assert_eq!(phase(&p), Phase::Running);
    let e = &p.edges[0];
    assert_eq!(e.drain.early, Some(Exit::Code(3)));
    assert!(e.exit_report.is_none() && e.drain.held.is_none());
}

/// A unit with a `pids.max`: the old reaper counts against it until it
/// is reaped, so its report waits for the reap as without cgroups.
#[test]
fn with_a_pids_max_a_report_waits_for_the_reap() {
    let root = TempDir::new("report-pids");
    let unit = "exec = /bin/true\nrestart = never\npids.max = 8\n";
    let mut p = running(Some(&root), unit);
    reported(&mut p, &reaper::encode(Exit::Code(0)));
    p.on_report(0);
    assert_eq!(phase(&p), Phase::Running);
    assert_eq!(p.edges[0].drain.early, Some(Exit::Code(0)));
}

/// The reaper went without a report (killed): its end of file says
/// nothing of the run, which is left to the reap and its status.
#[test]
fn an_end_of_file_is_left_to_the_reap() {
    let root = TempDir::new("report-eof");
    let mut p = running(Some(&root), "exec = /bin/true\nrestart = never\n");
    reported(&mut p, &[]);
    p.on_report(0);
    assert_eq!(phase(&p), Phase::Running);
    let e = &p.edges[0];
    assert!(e.exit_report.is_none(), "out of the loop: its end is read");
    assert!(e.drain.held.is_none() && e.drain.early.is_none());
    assert!(!e.drain.reported);
}

/// A report cut short (or of a kind this build does not know) is no
/// exit either: nothing is made of a half.
#[test]
fn a_short_report_is_no_exit() {
    let root = TempDir::new("report-short");
    let mut p = running(Some(&root), "exec = /bin/true\nrestart = never\n");
    reported(&mut p, &reaper::encode(Exit::Code(3))[..3]);
    p.on_report(0);
    assert_eq!(phase(&p), Phase::Running);
    reported(&mut p, &[7, 0, 0, 0, 0]);
    p.on_report(0);
    assert_eq!(phase(&p), Phase::Running);
    assert_eq!(p.sup.slot(0).unwrap().rt.last_exit, None);
}

/// A report for a unit with no run any more (stopped by then) is read
/// by the reap; the loop stops watching the pipe meanwhile.
#[test]
fn a_report_without_a_run_is_left_to_the_reap() {
    let root = TempDir::new("report-norun");
    let mut p = pid1_with(&[("web", "exec = /bin/true\n")]);
    root.file("units/web/cgroup.procs", "");
    p.cg = Some(crate::cgroup::Cgroups::open(root.path()).unwrap());
    reported(&mut p, &reaper::encode(Exit::Code(3)));
    p.on_report(0);
    assert_eq!(p.sup.slot(0).unwrap().rt.last_exit, None);
    assert!(p.edges[0].exit_report.is_some(), "kept for the reap");
}

/// A SIGKILL reported while memory.events counted an OOM kill is the
/// OOM killer's, as at a reap.
#[test]
fn a_reported_sigkill_after_an_oom_kill_is_an_oom_kill() {
    let root = TempDir::new("report-oom");
    let mut p = running(Some(&root), "exec = /bin/true\nrestart = never\n");
    root.file("units/web/memory.events", "oom 1\noom_kill 1\n");
    reported(&mut p, &reaper::encode(Exit::Signal(9)));
    p.on_report(0);
    assert_eq!(p.sup.slot(0).unwrap().rt.last_exit, Some(Exit::OomKill));
    assert_eq!(p.edges[0].oom_kills, 1);
}

/// Started again in place by the reaper (`reaper::Leave`): the run goes
/// on, counted as a restart, and its pipe stays watched for the next.
#[test]
fn a_relaunch_keeps_the_run_and_its_pipe() {
    let root = TempDir::new("report-relaunch");
    let mut p = running(Some(&root), "exec = /bin/true\nrestart_delay = 0ms\n");
    let mut r = reaper::encode(Exit::Code(3));
    r[0] |= 2;
    reported(&mut p, &r);
    p.on_report(0);
    let rt = &p.sup.slot(0).unwrap().rt;
    assert_eq!(rt.phase, Phase::Running);
    assert_eq!(rt.pid, NO_PID, "the same reaper, the same run");
    assert_eq!(rt.last_exit, Some(Exit::Code(3)));
    assert_eq!(rt.restarts, 1);
    assert!(p.edges[0].exit_report.is_some(), "the next end comes there");
    assert_eq!(
        std::fs::read_to_string(root.path().join("units/web/cgroup.kill")).unwrap(),
        ""
    );
}

/// A relaunch reported after a stop was sent is the run's end: the new
/// run the reaper started is killed (the stop's signal may have come
/// before it existed) and the pipe is let go. Killed now also when the
/// stop's signal was sent (its step's kill of the cgroup then waits for
/// the end of `stop_timeout`).
#[test]
fn a_relaunch_during_a_stop_ends_the_run() {
    for signalled in [false, true] {
        let root = TempDir::new("report-relaunch-stop");
        let mut p = running(Some(&root), "exec = /bin/true\nrestart_delay = 0ms\n");
        for a in step(&mut p, 2, Event::Stop { unit: 0 }) {
            if signalled && matches!(a, crate::supervisor::Action::Signal { .. }) {
                p.perform(a);
            }
        }
        assert_eq!(phase(&p), Phase::Stopping);
        let mut r = reaper::encode(Exit::Signal(15));
        r[0] |= 2;
        reported(&mut p, &r);
        p.on_report(0);
        assert_eq!(phase(&p), Phase::Stopped);
        assert!(p.edges[0].exit_report.is_none());
        let kill = std::fs::read_to_string(root.path().join("units/web/cgroup.kill")).unwrap();
        assert_eq!(
            kill, "1",
            "the reaper's new run killed (signalled: {signalled})"
        );
    }
}
