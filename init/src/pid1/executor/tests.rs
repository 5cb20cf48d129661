use crate::pid1::tests::step;
use crate::pid1::Pid1;
use crate::supervisor::{Action, Actions, Event, Note};
use crate::testutil::TempDir;
use crate::vocab::Exit;

/// `web` (`/bin/true` and `more` of a unit file) with `root` as its
/// cgroup root, booted (its start not performed), its cgroup's limits
/// written.
fn web_in(root: &TempDir, more: &str) -> Pid1 {
    std::fs::create_dir_all(root.join("units/web")).unwrap();
    let text = format!("exec = /bin/true\n{more}");
    let mut p = Pid1::new(None, 0, false);
    p.add_unit(crate::unit::parse("web", &text).unwrap());
    p.sup.link().unwrap();
    p.cg = Some(crate::cgroup::Cgroups::open(root.path()).unwrap());
    p.fit_tables();
    assert_eq!(step(&mut p, 0, Event::Boot), [Action::Spawn(0)]);
    p.edges[0].cgroup = Some(p.sup.slot(0).unwrap().limits_gen);
    p
}

/// A `web_in` whose start fails before its clone, its cgroup left in
/// place: it asks for a seccomp filter PID 1 has none of.
fn unstartable_web(root: &TempDir, more: &str) -> Pid1 {
    let mut p = web_in(root, &format!("seccomp = @system-service\n{more}"));
    p.edges[0].seccomp = None;
    p
}

/// `web_in` run as pid 100 and killed by SIGKILL, its memory.events
/// showing one OOM kill: the actions of that exit's step, not performed.
fn oom_killed_web(p: &mut Pid1, root: &TempDir) -> Actions {
    root.file("units/web/memory.events", "oom 1\noom_kill 1\n");
    step(p, 1, Event::spawned(0, 100));
    let exit = Exit::Signal(9);
    assert_eq!(p.classify_exit(0, exit), exit);
    let mut out = Actions::default();
    out.fit(p.sup.len());
    p.sup.step(2, Event::Exited { pid: 100, exit }, &mut out);
    assert!(out
        .iter()
        .any(|a| matches!(a, Action::Announce(0, Note::Died { .. }))));
    out
}

/// The SIGKILL of `oom_killed_web` told apart: the OOM killer's, the
/// last exit `initctl status` shows.
fn assert_oom_kill_told(p: &Pid1) {
    assert_eq!(p.sup.slot(0).unwrap().rt.last_exit, Some(Exit::OomKill));
    assert_eq!(p.edges[0].oom_kills, 1);
}

/// A step that spawns nothing (the restart waits for its delay) says
/// its unit died once it has told an OOM kill apart from a SIGKILL.
#[test]
fn a_death_without_a_spawn_is_settled_before_it_is_said() {
    let root = TempDir::new("executor-oom-alone");
    let mut p = web_in(&root, "restart_delay = 1s\n");
    let out = oom_killed_web(&mut p, &root);
    assert!(!out.iter().any(|a| matches!(a, Action::Spawn(_))));
    p.perform_all(&out);
    assert_oom_kill_told(&p);
}

/// A step that restarts its unit at once (`restart_delay = 0`) says the
/// death after the spawn, and only then tells the OOM kill apart: the
/// failed start here (a filter it asked for and PID 1 lacks) leaves the
/// unit's cgroup in place for the read.
#[test]
fn a_death_with_its_restart_is_settled_after_the_spawn() {
    let root = TempDir::new("executor-oom-restart");
    let mut p = unstartable_web(&root, "restart_delay = 0ms\n");
    let out = oom_killed_web(&mut p, &root);
    assert!(out.contains(&Action::Spawn(0)), "{out:?}");
    p.perform_all(&out);
    assert!(p.edges[0].last_error().starts_with("seccomp:"));
    assert_oom_kill_told(&p);
}

/// A start that fails with the unit's cgroup in place undoes what a
/// run made below it (cgroups of its own, which make clone3 into it
/// EBUSY), then is tried once more: one failure is stepped.
#[test]
fn a_failed_start_undoes_the_cgroups_a_run_made_below_its_own() {
    let root = TempDir::new("executor-nested");
    let mut p = unstartable_web(&root, "");
    let below = root.join("units/web/payload");
    std::fs::create_dir_all(&below).unwrap();
    p.start(0, false);
    assert!(!below.exists(), "the cgroup below is left");
    assert!(p.edges[0].last_error().starts_with("seccomp:"));
    assert_eq!(p.queue.len(), 1);
    assert!(matches!(
        p.queue.front(),
        Some(Event::SpawnFailed { unit: 0 })
    ));
}

/// A unit's notify socket belongs to root as the host sees the unit's
/// root: through its user namespace's map when it has one, so that its
/// child (root in there) can give it to the unit's user.
#[test]
fn the_notify_socket_is_roots_as_the_units_map_shows_it() {
    let owner = |text: &str| super::notify_owner(&crate::unit::parse("web", text).unwrap());
    assert_eq!(owner("exec = /bin/true\n"), (0, 0));
    let mapped = "exec = /bin/true\nnamespaces = user\nuser_map = 300000 10\n";
    assert_eq!(owner(mapped), (300_000, 300_000));
}

/// The notify socket is bound non-blocking and close-on-exec (no unit
/// inherits it but through its request), its file mode 0600 and given
/// to the owner asked for: units of other users cannot send to it. A
/// file of the name left by a run before is replaced.
#[test]
fn the_notify_socket_is_private_to_its_owner() {
    use rustix::fs::Mode;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let d = TempDir::new("executor-notify");
    let path = d.file("web", "left by a run before");
    let path_str = path.to_str().unwrap();
    let s = super::bind_notify_socket(path_str, (1234, 5678)).unwrap();
    crate::testutil::assert_nonblocking_cloexec(&s);
    let m = std::fs::metadata(&path).unwrap();
    assert!(m.file_type().is_socket());
    assert_eq!(m.mode() & 0o7777, (Mode::RUSR | Mode::WUSR).bits());
    assert_eq!((m.uid(), m.gid()), (1234, 5678));
}

/// Limit keys not enforced, as the warning names them.
#[test]
fn keys_not_enforced_are_said_one_space_apart() {
    let text = |keys: &[&'static str]| super::NotEnforcedText(keys).to_string();
    assert_eq!(text(&[]), "");
    assert_eq!(text(&["memory.max"]), "memory.max");
    assert_eq!(
        text(&["memory.max", "memory.low", "pids.max"]),
        "memory.max memory.low pids.max"
    );
}

/// A new run's output and readiness fds are watched under its own
/// unit's tokens (here the second unit's), in place of the last run's,
/// and a closer's hold on the last run's socket is over.
#[test]
fn a_new_runs_fds_are_watched_as_its_units() {
    use crate::pid1::event_loop::{watch, TOKEN_LOG, TOKEN_NOTIFY, TOKEN_NOTIFY_READ};
    use rustix::fd::AsRawFd;
    use rustix::pipe::{pipe_with, PipeFlags};
    let mut p = crate::pid1::tests::pid1_with(&[
        ("db", "exec = /bin/true\n"),
        ("web", "exec = /bin/true\n"),
    ]);
    let ep = rustix::event::epoll::create(rustix::event::epoll::CreateFlags::CLOEXEC).unwrap();
    let (old_log, _old_log_wr) = pipe_with(PipeFlags::CLOEXEC).unwrap();
    let (old_notify, _old_notify_wr) = pipe_with(PipeFlags::CLOEXEC).unwrap();
    let (closer, _closer_wr) = pipe_with(PipeFlags::CLOEXEC).unwrap();
    p.edges[1].log_rd = watch(&ep, old_log, TOKEN_LOG + 1);
    p.edges[1].notify = watch(&ep, old_notify, TOKEN_NOTIFY + 1);
    p.edges[1].notify_read = watch(&ep, closer, TOKEN_NOTIFY_READ + 1);
    p.edges[1].notify_held = 42;
    p.epoll = Some(ep);
    let (log, log_wr) = pipe_with(PipeFlags::CLOEXEC).unwrap();
    let (notify, _notify_wr) = pipe_with(PipeFlags::CLOEXEC).unwrap();
    let mut want = [
        (log.as_raw_fd(), TOKEN_LOG + 1),
        (notify.as_raw_fd(), TOKEN_NOTIFY + 1),
    ];
    let ends = super::Ends {
        log: Some((log, log_wr)),
        notify: Some(notify),
        report: None,
    };
    p.watch_ends(1, ends);
    want.sort_unstable();
    let ep = p.epoll.as_ref().unwrap();
    assert_eq!(crate::testutil::epoll_tokens(ep), want);
    assert_eq!(p.edges[1].notify_held, 0);
    assert!(p.edges[1].notify_read.is_none());
    assert!(p.edges[0].log_rd.is_none() && p.edges[0].notify.is_none());
}

/// `web` of unit file `text`, without cgroups, booted and its start
/// made (`spawn`): the child and PID 1's ends.
fn spawned(text: &str) -> (crate::spawn::Pending, super::Ends) {
    let mut p = crate::pid1::tests::pid1_with(&[("web", text)]);
    step(&mut p, 0, Event::Boot);
    p.spawn(0, false).unwrap()
}

/// `output = log` (the default): the unit's stdout is the write end of
/// a pipe whose read end PID 1 keeps for its ring.
#[test]
fn a_units_output_goes_into_its_pipe() {
    let (child, ends) = spawned("exec = /bin/sh -c \"echo hello\"\nnamespaces = none\n");
    assert_eq!(crate::testutil::wait_exit(child.pid), Some(0));
    let (rd, wr) = ends.log.expect("no output pipe");
    drop(wr);
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut std::fs::File::from(rd), &mut out).unwrap();
    assert_eq!(out, b"hello\n");
}

/// `output = console`: no pipe, the unit writes (stdout and stderr) to
/// /dev/console itself.
#[test]
fn a_units_output_to_the_console_is_not_piped() {
    let d = TempDir::new("executor-console");
    let seen = d.join("fd2");
    let text = format!(
        "exec = /bin/sh -c \"readlink /proc/self/fd/2 > {}\"\nnamespaces = none\noutput = console\n",
        seen.display()
    );
    let (child, ends) = spawned(&text);
    assert_eq!(crate::testutil::wait_exit(child.pid), Some(0));
    assert!(ends.log.is_none());
    assert_eq!(std::fs::read_to_string(&seen).unwrap(), "/dev/console\n");
}

/// A PID namespace's reaper reports its service's end on a pipe whose
/// read end PID 1 reads without blocking, and no unit's child inherits.
#[test]
fn a_reapers_report_pipe_is_read_without_blocking() {
    let (child, ends) = spawned("exec = /bin/true\nnamespaces = pid mount\n");
    assert_eq!(crate::testutil::wait_exit(child.pid), Some(0));
    crate::testutil::assert_nonblocking_cloexec(ends.report.expect("no report pipe"));
}

/// A start whose clone3 the kernel refuses for want of namespaces (here
/// a user namespace where none may be made: `max_user_namespaces` and
/// `max_pid_namespaces` 0) says why in a unit's status: the user
/// namespaces' switch for a unit with `user` in its namespaces, the
/// clone's own error for one without. In a user namespace of its own,
/// whose limits those are.
#[test]
fn a_start_refused_for_want_of_user_namespaces_says_so() {
    let off = "echo 0 > /proc/sys/user/max_user_namespaces \
               && echo 0 > /proc/sys/user/max_pid_namespaces && exec \"$@\"";
    let wrapper = [
        "unshare",
        "--user",
        "--map-root-user",
        "sh",
        "-c",
        off,
        "sh",
    ];
    let test = "a_start_refused_for_want_of_user_namespaces_says_so";
    if !crate::testutil::run_alone_in(module_path!(), test, &wrapper) {
        return;
    }
    let mut p = crate::pid1::tests::pid1_with(&[
        ("box", "exec = /bin/true\nnamespaces = user\n"),
        ("web", "exec = /bin/true\nnamespaces = pid\n"),
    ]);
    step(&mut p, 0, Event::Boot);
    p.start(0, false);
    p.start(1, false);
    let off = crate::boot::kernel::USER_NS_OFF;
    assert_eq!(p.edges[0].last_error(), format!("cannot start: {off}"));
    let web = p.edges[1].last_error();
    assert!(web.starts_with("cannot start /bin/true: "), "{web}");
}
