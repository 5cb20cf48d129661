use super::super::tests::{pid1_with, step, with_cgroups, NO_PID};
use crate::control::Server;
use crate::proto::{decode_reply, encode_request, FrameDecoder, Reply, Request, FRAME_BUF};
use crate::supervisor::Event;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

/// `req` over a real socket to `p`'s control server: the replies.
fn ask(p: &mut super::Pid1, path: &std::path::Path, req: Request<'_>) -> Vec<Reply<'static>> {
    replies(&mut send(p, path, req))
}

/// `req` sent on a new connection to `p`'s control server and served:
/// the client's end.
fn send(p: &mut super::Pid1, path: &std::path::Path, req: Request<'_>) -> UnixStream {
    let mut s = UnixStream::connect(path).unwrap();
    let mut buf = [0u8; 256];
    let n = encode_request(&req, &mut buf).unwrap();
    s.write_all(&buf[..n]).unwrap();
    p.serve_control();
    p.tend_waiters();
    s
}

/// `p`'s control server, bound in `sock`: its socket's path.
fn serve(p: &mut super::Pid1, sock: &crate::testutil::TempDir) -> std::path::PathBuf {
    let path = sock.path().join("control");
    let uid = rustix::process::getuid().as_raw();
    p.control = Some(Server::bind(&path, uid).unwrap());
    path
}

/// `status NAME`'s reason, at `now`.
fn reason(p: &super::Pid1, name: &str, now: crate::vocab::Millis) -> String {
    let d = super::detail(&p.sup, &p.edges, None, name, now).unwrap();
    d.reason.as_str().to_owned()
}

/// `told` is one error, saying `message`.
fn assert_error(told: &[Reply<'_>], message: &str) {
    assert!(
        matches!(told, [Reply::Error(e)] if e.message == message),
        "{told:?}"
    );
}

/// What `p`'s server answered on `s` so far.
fn replies(s: &mut UnixStream) -> Vec<Reply<'static>> {
    s.set_nonblocking(true).unwrap();
    let mut dec = Box::new(FrameDecoder::<FRAME_BUF>::new());
    let mut out = Vec::new();
    while let Ok(n @ 1..) = s.read(dec.spare()) {
        dec.advance(n);
    }
    while let Some(f) = dec.frame().unwrap() {
        match decode_reply(f).unwrap() {
            Reply::Ok => out.push(Reply::Ok),
            Reply::Error(e) => out.push(Reply::Error(e)),
            r => panic!("{r:?}"),
        }
        dec.consume();
    }
    out
}

/// `stop` of a unit already stopped whose cgroup still drains (what
/// its stop left, in the grace) waits as a stop under way does; one
/// whose processes survived every kill says so.
#[test]
fn a_stop_of_a_stopped_unit_waits_for_its_drain() {
    let root = crate::testutil::TempDir::new("pid1-stop-answer");
    root.file("units/web/cgroup.events", "populated 1\nfrozen 0\n");
    let mut p = with_cgroups(&root);
    step(&mut p, 0, Event::Boot);
    step(&mut p, 1, Event::spawned(0, NO_PID));
    step(&mut p, 2, Event::Stop { unit: 0 });
    p.signal_unit(0, NO_PID, 15);
    let exit = crate::vocab::Exit::Signal(15);
    step(&mut p, 3, Event::Exited { pid: NO_PID, exit });
    p.kill_cgroup(0);
    assert!(p.draining(), "in the stop's grace");
    let sock = crate::testutil::TempDir::new("pid1-stop-answer-sock");
    let path = serve(&mut p, &sock);
    let replies = ask(&mut p, &path, Request::Stop { name: "web" });
    assert!(replies.is_empty(), "answered while draining: {replies:?}");
    assert_eq!(p.control.as_ref().unwrap().clients(), 1, "waits");
    // Processes that survive every kill: given up on, and said.
    for _ in 0..=super::super::stopping::KILL_TRIES {
        p.drain_timeouts(super::super::now().saturating_add(60_000));
    }
    assert!(p.edges[0].drain.gave_up && !p.draining());
    let replies = ask(&mut p, &path, Request::Stop { name: "web" });
    // Not named again: `initctl` says `initctl: web: ` before it.
    assert_error(&replies, "processes survived SIGKILL (see the kernel log)");
    // Gone later after all (stuck in the kernel, then not): a stop
    // succeeds again.
    root.file("units/web/cgroup.events", "populated 0\nfrozen 0\n");
    let replies = ask(&mut p, &path, Request::Stop { name: "web" });
    assert!(matches!(replies.as_slice(), [Reply::Ok]), "{replies:?}");
}

/// What a waiting client is told of its unit does not name it again
/// (`initctl` says `initctl: web: ` before it: it printed `web: web
/// failed`); a removed unit is named as a unit never there is.
#[test]
fn a_waiter_is_told_its_unit_once() {
    use super::{settled, Want};
    // What a waiting start is told of `web` (`text`) once its first
    // run exited with `code`.
    let told = |text: &str, code: i32| {
        let mut p = super::Pid1::new(None, 0, false);
        p.add_unit(crate::unit::parse("web", text).unwrap());
        p.sup.link().unwrap();
        p.fit_tables();
        step(&mut p, 0, Event::Boot);
        step(&mut p, 1, Event::spawned(0, NO_PID));
        let exit = crate::vocab::Exit::code(code);
        step(&mut p, 2, Event::Exited { pid: NO_PID, exit });
        let r = settled(&p.sup, Some(0), "web", Want::Started);
        r.unwrap().unwrap_err().message
    };
    assert_eq!(told("exec = /bin/x\nrestart = never\n", 1), "failed");
    let p = super::Pid1::new(None, 0, false);
    let e = settled(&p.sup, None, "web", Want::Started)
        .unwrap()
        .unwrap_err();
    assert_eq!(e.message, "no unit named `web` (removed by a reload)");
    // Exit 0 before READY=1 with no restart for it: stopped for good,
    // told at once (the client waited its 90 s for nothing).
    let text = "exec = /bin/x\nready = notify\nrestart = on-failure\n";
    assert_eq!(told(text, 0), "exited before it was ready");
}

/// A start stopped before it was ready (by hand, shed, a new unit's
/// rejection) is told so; it was told that a dependency failed, as
/// one whose dependency failed is.
#[test]
fn a_start_is_told_why_it_stopped() {
    use super::{settled, Want};
    let db = "exec = /bin/x\nrestart = never\n";
    let web = "exec = /bin/x\nready = notify\nafter = db\n";
    let mut p = super::super::tests::pid1_with(&[("db", db), ("web", web)]);
    let told = |p: &super::Pid1| {
        let r = settled(&p.sup, Some(1), "web", Want::Started);
        r.unwrap().unwrap_err().message
    };
    step(&mut p, 0, Event::Boot);
    step(&mut p, 1, Event::SpawnFailed { unit: 0 });
    assert_eq!(told(&p), "did not start (dependency failed)");
    step(&mut p, 2, Event::Start { unit: 0 });
    step(&mut p, 3, Event::spawned(0, 100));
    step(&mut p, 4, Event::Start { unit: 1 });
    step(&mut p, 5, Event::spawned(1, NO_PID));
    step(&mut p, 6, Event::Stop { unit: 1 });
    let exit = crate::vocab::Exit::Signal(15);
    step(&mut p, 7, Event::Exited { pid: NO_PID, exit });
    assert_eq!(told(&p), "stopped");
}

/// A running `web` whose `initctl stop` waits (its client `s`), its
/// control socket in `sock`.
fn stopping_web(sock: &crate::testutil::TempDir) -> (super::Pid1, UnixStream) {
    let mut p = super::super::tests::with_web();
    p.fit_tables();
    step(&mut p, 0, Event::Boot);
    step(&mut p, 1, Event::spawned(0, NO_PID));
    let path = serve(&mut p, sock);
    let mut s = send(&mut p, &path, Request::Stop { name: "web" });
    assert_eq!(replies(&mut s), vec![], "answered before the stop");
    (p, s)
}

/// A start (or a restart, or a reload that changes it) while a stop
/// is on its way cancels the stop, as a start job cancels systemd's
/// stop job: its client is told at once. It was never answered (the
/// unit ran again, neither stopped nor failed), and `initctl` gave up
/// after 90 s with "not stopped".
#[test]
fn a_stop_overtaken_by_a_start_is_answered() {
    let sock = crate::testutil::TempDir::new("pid1-stop-started-sock");
    let (mut p, mut s) = stopping_web(&sock);
    step(&mut p, 2, Event::Start { unit: 0 });
    p.tend_waiters();
    let told = replies(&mut s);
    assert_error(&told, "started again before it stopped");
}

/// A waiting `stop` of a unit that a reload then removes goes on as
/// the removal's stop: answered Ok once the unit is stopped and gone,
/// not refused at the reload while it still stops. A start of it is
/// refused at once: no such unit (it would wait for the removal).
#[test]
fn a_stop_overtaken_by_a_removal_is_answered_when_stopped() {
    let sock = crate::testutil::TempDir::new("pid1-stop-removed-sock");
    let (mut p, mut s) = stopping_web(&sock);
    let mut out = crate::supervisor::Actions::default();
    out.fit(4);
    p.sup
        .reload(2, &mut Vec::new().into_iter(), &|_| false, &mut out);
    assert_eq!(
        p.sup.slot(0).unwrap().retired,
        crate::supervisor::Retired::Leaving
    );
    p.tend_waiters();
    assert_eq!(replies(&mut s), vec![], "answered while still stopping");
    // A stop asked for now waits for the removal's too: it was told
    // there was no such unit, of one `status` lists as stopping.
    let stop = Request::Stop { name: "web" };
    let mut late = send(&mut p, &sock.path().join("control"), stop);
    assert_eq!(replies(&mut late), vec![], "answered while still stopping");
    // A start (or restart) of it is not a stop: told at once.
    for start in [
        Request::Start { name: "web" },
        Request::Restart { name: "web" },
    ] {
        let told = replies(&mut send(&mut p, &sock.path().join("control"), start));
        assert_error(&told, "no unit named `web`");
    }
    let exit = crate::vocab::Exit::Signal(15);
    step(&mut p, 3, Event::Exited { pid: NO_PID, exit });
    assert_eq!(p.sup.index("web"), None);
    p.tend_waiters();
    assert_eq!(replies(&mut s), vec![Reply::Ok]);
    assert_eq!(replies(&mut late), vec![Reply::Ok]);
}

/// A unit a reload removed is listed while it stops, so `status NAME`
/// shows it too (it said there was no such unit), saying why.
#[test]
fn a_unit_leaving_after_a_reload_has_a_detail() {
    let mut p = pid1_with(&[("web", "exec = /bin/true\n")]);
    step(&mut p, 0, Event::Boot);
    step(&mut p, 1, Event::spawned(0, NO_PID));
    let mut out = crate::supervisor::Actions::default();
    out.fit(4);
    p.sup
        .reload(2, &mut Vec::new().into_iter(), &|_| false, &mut out);
    let (units, _) = super::status(&p.sup, None, 0);
    assert_eq!(units.len(), 1);
    assert_eq!(units[0].name.as_str(), "web");
    let d = super::detail(&p.sup, &p.edges, None, "web", 0).unwrap();
    assert_eq!(d.status.state, units[0].state);
    assert_eq!(d.reason.as_str(), "removed by a reload: stopping");
    assert!(super::detail(&p.sup, &p.edges, None, "db", 0).is_err());
}

/// A start limit whose reboot waits for PID 1's first minute says in
/// `status NAME` when it comes and what cancels it (the console said
/// it once, within a second of boot); a stop by hand drops it, and
/// the reason with it.
#[test]
fn a_held_start_limit_action_says_when_and_what_cancels_it() {
    let unit = "exec = /bin/false\nstart_limit = 1/1m\nstart_limit_action = reboot\n";
    let mut p = pid1_with(&[("vital", unit)]);
    step(&mut p, 0, Event::Boot);
    step(&mut p, 1, Event::spawned(0, NO_PID));
    let exit = crate::vocab::Exit::Code(1);
    step(&mut p, 300, Event::Exited { pid: NO_PID, exit });
    assert_eq!(
        reason(&p, "vital", 300),
        "start limit hit, rebooting in 59700ms (a stop or start by hand cancels)"
    );
    step(&mut p, 400, Event::Stop { unit: 0 });
    assert!(
        !reason(&p, "vital", 400).contains("rebooting"),
        "{}",
        reason(&p, "vital", 400)
    );
    assert_eq!(p.sup.shutting_down(), None);
}

/// A unit its memory pressure trigger stopped (`pressure_action =
/// stop`) says so while it stops and once stopped, until it is
/// started again; one stopped by hand says nothing of it.
#[test]
fn a_unit_stopped_by_its_pressure_limit_says_why() {
    let unit = "exec = /bin/true\npressure_limit = 20%/10s\npressure_action = stop\n";
    let mut p = pid1_with(&[("web", unit)]);
    step(&mut p, 0, Event::Boot);
    step(&mut p, 1, Event::spawned(0, NO_PID));
    let (trigger, _w) = rustix::pipe::pipe().unwrap();
    let limit = crate::unit::PressureLimit {
        percent: 20,
        window: 10_000,
    };
    p.edges[0].pressure = Some((trigger, limit));
    p.on_pressure(0, false);
    assert_eq!(
        p.sup.slot(0).unwrap().rt.phase,
        crate::supervisor::Phase::Stopping
    );
    let said = "stopped: memory pressure over pressure_limit";
    assert_eq!(reason(&p, "web", 0), said);
    let exit = crate::vocab::Exit::Signal(15);
    step(&mut p, 2, Event::Exited { pid: NO_PID, exit });
    assert_eq!(
        p.sup.slot(0).unwrap().rt.phase,
        crate::supervisor::Phase::Stopped
    );
    assert_eq!(reason(&p, "web", 0), said);
    step(&mut p, 3, Event::Start { unit: 0 });
    // What `Action::Spawn`'s start clears (`start`).
    p.clear_for_spawn(0);
    step(&mut p, 4, Event::spawned(0, NO_PID));
    assert_eq!(reason(&p, "web", 0), "");
    step(&mut p, 5, Event::Stop { unit: 0 });
    step(&mut p, 6, Event::Exited { pid: NO_PID, exit });
    assert_eq!(reason(&p, "web", 0), "", "stopped by hand");
    // Stopped by pressure again, and by hand while that stop runs:
    // the operator's stop, not pressure's.
    step(&mut p, 7, Event::Start { unit: 0 });
    p.clear_for_spawn(0);
    step(&mut p, 8, Event::spawned(0, NO_PID));
    p.on_pressure(0, false);
    assert_eq!(reason(&p, "web", 0), said);
    let sock = crate::testutil::TempDir::new("pid1-pressure-stop-sock");
    let path = serve(&mut p, &sock);
    let replies = ask(&mut p, &path, Request::Stop { name: "web" });
    assert!(replies.is_empty(), "answered while stopping: {replies:?}");
    assert_eq!(reason(&p, "web", 0), "", "stopped by hand while stopping");
    step(&mut p, 9, Event::Exited { pid: NO_PID, exit });
    assert_eq!(reason(&p, "web", 0), "", "stopped by hand");
}

/// The health gate's rejection is the reason while the good definition
/// it put back runs; a later failure of that one, and a stop by hand,
/// are their own. It said "the last good one runs" of a unit in backoff
/// or stopped, until a reload changed the unit.
#[test]
fn a_rejection_is_the_reason_only_while_what_it_left_runs() {
    let mut p = pid1_with(&[("web", "exec = /bin/true\n")]);
    step(&mut p, 0, Event::Boot);
    step(&mut p, 1, Event::spawned(0, NO_PID));
    // As a bad verdict leaves it (`on_verdict`).
    let said = "new definition rejected, kept as web.unit.rejected; the last good one runs: exit 3";
    p.edges[0].rare().rejected = Some(said.into());
    assert_eq!(reason(&p, "web", 1), said);
    let exit = crate::vocab::Exit::Code(1);
    step(&mut p, 2, Event::Exited { pid: NO_PID, exit });
    assert_eq!(reason(&p, "web", 1), "exit 1, restart in 100ms");
    step(&mut p, 102, Event::Tick);
    p.clear_for_spawn(0);
    step(&mut p, 103, Event::spawned(0, NO_PID));
    assert_eq!(reason(&p, "web", 1), said, "the good one runs again");
    // A put-back the disk did not take stays owed to the next reload
    // (`gate::owed`): the box went with the rejection, and that reload
    // applied the rejected file again.
    let good = crate::unit::parse("web", "exec = /bin/true\n").unwrap();
    let bad = crate::unit::parse("web", "exec = /bin/false\n").unwrap();
    p.edges[0].rare().owed = Some(Box::new((good, bad, super::super::Why::new())));
    let sock = crate::testutil::TempDir::new("pid1-rejection-reason-sock");
    let path = serve(&mut p, &sock);
    ask(&mut p, &path, Request::Stop { name: "web" });
    assert_eq!(p.still_owed().len(), 1, "the owed put-back was dropped");
    let exit = crate::vocab::Exit::Signal(15);
    step(&mut p, 104, Event::Exited { pid: NO_PID, exit });
    assert_eq!(reason(&p, "web", 1), "", "stopped by hand");
}

/// `waiting for` names the units still awaited, not those already up;
/// a list too long for the field ends in "..." (a name cut in the
/// middle was dropped, and shorter ones after it kept), which the
/// field always has room for.
#[test]
fn waiting_for_names_only_the_units_awaited() {
    let mut p = pid1_with(&[
        ("lo", "exec = /bin/true\n"),
        ("db", "exec = /bin/true\n"),
        ("app", "exec = /bin/true\nafter = lo db\n"),
    ]);
    step(&mut p, 0, Event::Boot);
    step(&mut p, 1, Event::spawned(0, NO_PID));
    let d = super::detail(&p.sup, &p.edges, None, "app", 0).unwrap();
    assert_eq!(d.reason.as_str(), "waiting for db");

    // `app`'s reason, `after` the units `names`, then `z`, none up.
    let waiting = |names: &[String]| {
        let after = format!("exec = /bin/true\nafter = {} z\n", names.join(" "));
        let mut units: Vec<(&str, &str)> = names
            .iter()
            .map(|n| (n.as_str(), "exec = /bin/true\n"))
            .collect();
        units.extend([("z", "exec = /bin/true\n"), ("app", after.as_str())]);
        let mut p = pid1_with(&units);
        step(&mut p, 0, Event::Boot);
        reason(&p, "app", 0)
    };
    // Seven names of the longest do not fit: six whole, then "...".
    let long: Vec<String> = ('a'..='g')
        .map(|c| c.to_string().repeat(crate::vocab::NAME_MAX))
        .collect();
    let six = long.get(..6).unwrap().join(" ");
    assert_eq!(waiting(&long), format!("waiting for {six} ..."));

    // At the field's edge: a seventh name that leaves exactly room for
    // "..." is kept whole; a one-letter eighth is not, as "..." then
    // has no room after it.
    let mut edge = long.get(..6).unwrap().to_vec();
    edge.push("g".repeat(26));
    let want = format!("waiting for {} ...", edge.join(" "));
    assert_eq!(want.len(), crate::proto::REASON_MAX);
    assert_eq!(waiting(&edge), want);
}

/// On the host (no `root`) too, no passwd file: `daemon` (uid 1 in
/// the host's files) taken for what its program runs as, and while
/// it does not run, for its name.
#[test]
fn the_confinement_line_reads_no_passwd_file_of_the_host_either() {
    let mut def =
        crate::unit::parse("d", "exec = /bin/true\nuser = daemon\nnamespaces = none\n").unwrap();
    assert!(!super::runs_as_root(&def, 0), "not running: by its name");
    let me = std::process::id();
    let root = rustix::process::getuid().is_root();
    assert_eq!(super::runs_as_root(&def, me), root, "running: its uid");
    def.seldom.user = Some(crate::unit::IdSpec::Name("root".try_into().unwrap()));
    assert!(super::runs_as_root(&def, 0));
}

/// The confinement line's capabilities for a named `user` in a unit's
/// `root`: PID 1 does not read the root's passwd file (a mount that
/// hangs would stall it). While the unit does not run the name says
/// it, even for `toor`, uid 0 there; while it runs, the uid its
/// program has (docs/initctl.md says so).
#[test]
fn the_confinement_line_reads_no_file_of_a_units_root_but_proc() {
    let img = crate::testutil::TempDir::new("queries-toor");
    img.file(
        "etc/passwd",
        "toor:x:0:0::/:/bin/sh\nwww:x:33:33::/:/bin/sh\n",
    );
    let root = img.path().display().to_string();
    let unit = |user: &str| format!("exec = /bin/true\nroot = {root}\nuser = {user}\n");
    let (toor, www) = (unit("toor"), unit("www"));
    let p = pid1_with(&[("a", toor.as_str()), ("b", www.as_str())]);
    let caps = |name: &str| {
        let d = super::detail(&p.sup, &p.edges, None, name, 0).unwrap();
        let line = d.confinement.as_str().to_owned();
        line.split(", ")
            .find_map(|f| f.strip_prefix("capabilities ").map(str::to_owned))
            .unwrap()
    };
    assert_eq!(caps("a"), "none");
    assert_eq!(caps("b"), "none");
    // Running, it is what its program runs as (this test's uid, root
    // in CI; with a PID namespace, the reaper's child's).
    let mut toor = p.sup.slot(0).unwrap().def.clone();
    toor.namespaces = crate::unit::Namespaces::NONE;
    let me = std::process::id();
    let root = rustix::process::getuid().is_root();
    assert_eq!(super::runs_as_root(&toor, me), root);
    if !root {
        return;
    }
    let mut reaper = std::process::Command::new("/bin/sh")
        .args([
            "-c",
            "setpriv --reuid=65534 --regid=65534 --clear-groups sleep 30 & wait",
        ])
        .spawn()
        .unwrap();
    let pid = reaper.id();
    let started = std::time::Instant::now();
    while super::running_uid(pid, true) != Some(65534) && started.elapsed().as_secs() < 5 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let seen = (
        super::running_uid(pid, true),
        super::running_uid(pid, false),
    );
    let _ = std::process::Command::new("pkill")
        .args(["-P", &pid.to_string()])
        .status();
    let _ = reaper.kill();
    let _ = reaper.wait();
    assert_eq!(seen, (Some(65534), Some(0)));
}

/// `initctl poweroff` during a reboot is refused, not answered `ok`
/// while the machine goes on to reboot; the same kind again is ok.
/// (`web` stays stopping: its pid is nobody's, so the final sequence,
/// which signals every process, is never reached.)
#[test]
fn another_shutdown_during_one_is_refused() {
    use crate::vocab::ShutdownKind;
    let mut p = pid1_with(&[("web", "exec = /bin/true\n")]);
    step(&mut p, 0, Event::Boot);
    step(&mut p, 1, Event::spawned(0, NO_PID));
    let sock = crate::testutil::TempDir::new("pid1-shutdown-twice");
    let path = serve(&mut p, &sock);
    let first = ask(&mut p, &path, Request::Shutdown(ShutdownKind::Reboot));
    assert!(matches!(first.as_slice(), [Reply::Ok]), "{first:?}");
    let again = ask(&mut p, &path, Request::Shutdown(ShutdownKind::Reboot));
    assert!(matches!(again.as_slice(), [Reply::Ok]), "{again:?}");
    let other = ask(&mut p, &path, Request::Shutdown(ShutdownKind::Poweroff));
    assert_eq!(p.sup.shutting_down(), Some(ShutdownKind::Reboot));
    match other.as_slice() {
        [Reply::Error(e)] => assert_eq!(e.to_string(), "already rebooting"),
        r => panic!("poweroff answered {r:?} while the machine goes on to reboot"),
    }
    assert_eq!(
        p.ask_shutdown(ShutdownKind::Halt, format_args!("signal 10 from pid 7")),
        Err(ShutdownKind::Reboot)
    );
}

/// A stop by hand ends a unit's probation (the operator's, not judged):
/// the last good definition kept to put back goes with it, not held
/// until a reload changes the unit again (found by `walk_tests`, seed 6).
#[test]
fn a_stop_by_hand_lets_go_of_the_last_good_definition() {
    let mut p = pid1_with(&[("web", "exec = /bin/true\n")]);
    step(&mut p, 0, Event::Boot);
    step(&mut p, 1, Event::spawned(0, NO_PID));
    let changed = crate::unit::parse("web", "exec = /bin/true\nenv = A=1\n").unwrap();
    p.keep_last_good(core::slice::from_ref(&changed));
    let mut out = crate::supervisor::Actions::default();
    out.fit(4);
    p.sup
        .reload(2, &mut vec![changed].into_iter(), &|_| false, &mut out);
    assert!(p.sup.slot(0).unwrap().rt.probation);
    assert!(p.edges[0].last_good().is_some());
    let sock = crate::testutil::TempDir::new("pid1-stop-probation");
    let path = serve(&mut p, &sock);
    let _ = send(&mut p, &path, Request::Stop { name: "web" });
    assert!(!p.sup.slot(0).unwrap().rt.probation, "still on probation");
    assert!(p.edges[0].rare.is_none(), "the last good definition kept");
}

/// `initctl start` and `restart` are done outside a shutdown (a start of
/// a running unit is answered at once, a restart signals it); in a
/// shutdown both are refused at once, saying so, and nothing is done: a
/// unit started then would hold the shutdown up.
#[test]
fn a_start_or_restart_in_a_shutdown_is_refused() {
    use crate::supervisor::Phase;
    let sock = crate::testutil::TempDir::new("pid1-start-shutdown-sock");
    let mut p = pid1_with(&[("web", "exec = /bin/true\n"), ("db", "exec = /bin/true\n")]);
    step(&mut p, 0, Event::Boot);
    step(&mut p, 1, Event::spawned(0, NO_PID));
    step(&mut p, 1, Event::spawned(1, NO_PID - 1));
    let path = serve(&mut p, &sock);
    let phase = |p: &super::Pid1, u: u16| p.sup.slot(u).unwrap().rt.phase;
    let start = |name| Request::Start { name };
    assert_eq!(ask(&mut p, &path, start("web")), vec![Reply::Ok]);
    let restart = |name| Request::Restart { name };
    let told = ask(&mut p, &path, restart("web"));
    assert!(told.is_empty(), "answered before the restart: {told:?}");
    assert_eq!(phase(&p, 0), Phase::Stopping);
    // The steps' actions not performed: no shutdown ends here.
    step(
        &mut p,
        2,
        Event::Shutdown(crate::vocab::ShutdownKind::Poweroff),
    );
    for req in [start("db"), restart("db")] {
        let told = ask(&mut p, &path, req);
        assert_error(&told, "shutting down");
    }
    assert_ne!(phase(&p, 1), Phase::Starting);
}

/// `initctl reload`'s verdict fails (for an update agent's rollback) when
/// a unit was put back or is down for a dependency, saying how many; it
/// is Ok only when none was.
#[test]
fn a_reload_verdict_fails_when_a_unit_was_rejected() {
    let r = |n| match super::verdict_reply(n, "report") {
        Reply::Reload { result, report } => {
            assert_eq!(report, "report");
            result.map_err(|e| (e.code, e.message.as_str().to_owned()))
        }
        r => panic!("{r:?}"),
    };
    assert_eq!(r(0), Ok(()));
    let failed = crate::proto::ErrCode::Failed;
    let said = "2 unit(s) rejected or not started".to_owned();
    assert_eq!(r(2), Err((failed, said)));
}

/// `status` gives a running unit's uptime, since its spawn, and none (0)
/// for one with no process: not an uptime counted from a run long gone.
#[test]
fn only_a_unit_with_a_process_has_an_uptime() {
    let mut p = pid1_with(&[("web", "exec = /bin/true\n"), ("db", "exec = /bin/true\n")]);
    step(&mut p, 0, Event::Boot);
    step(&mut p, 1, Event::spawned(0, NO_PID));
    let (units, _) = super::status(&p.sup, None, 0);
    let t = crate::pid1::now();
    assert!(
        (1..t).contains(&units[0].uptime_ms),
        "{}",
        units[0].uptime_ms
    );
    assert_eq!(units[1].uptime_ms, 0, "db, not spawned");
}

/// `initctl log NAME` reads the unit's own ring; of a unit that does not
/// capture its output (`output = console`) it is told there is no log,
/// of a name no unit has that there is no such unit: not an empty log
/// either way, which reads as a unit that wrote nothing.
#[test]
fn a_log_is_the_units_own_or_an_error() {
    use crate::proto::ErrCode;
    let console = "exec = /bin/true\noutput = console\n";
    let mut p = pid1_with(&[("web", "exec = /bin/true\n"), ("tty", console)]);
    let flags = rustix::pipe::PipeFlags::NONBLOCK;
    let (rd, wr) = rustix::pipe::pipe_with(flags).unwrap();
    rustix::io::write(&wr, b"web: up\n").unwrap();
    p.edges[0].log_rd = Some(rd);
    p.on_log(0);
    let ring = super::log_of(&p.sup, &p.edges, "web").unwrap();
    let mut b = [0u8; 8];
    assert_eq!(ring.contents().copy_tail(&mut b), 8);
    assert_eq!(&b, b"web: up\n");
    let code = |name| super::log_of(&p.sup, &p.edges, name).err().map(|e| e.code);
    assert_eq!(code("tty"), Some(ErrCode::NoLog));
    assert_eq!(code("db"), Some(ErrCode::NoSuchUnit));
}

/// A restart whose new run fails to start (to be tried again after its
/// delay) is answered then, saying so: not left waiting for a start that
/// may never come.
#[test]
fn a_restart_that_fails_to_start_is_answered() {
    use crate::supervisor::Phase;
    let sock = crate::testutil::TempDir::new("pid1-restart-backoff-sock");
    let mut p = pid1_with(&[("web", "exec = /bin/true\n")]);
    step(&mut p, 0, Event::Boot);
    step(&mut p, 1, Event::spawned(0, NO_PID));
    let path = serve(&mut p, &sock);
    let mut s = send(&mut p, &path, Request::Restart { name: "web" });
    let exit = crate::vocab::Exit::Signal(15);
    step(&mut p, 2, Event::Exited { pid: NO_PID, exit });
    step(&mut p, 3, Event::SpawnFailed { unit: 0 });
    assert_eq!(p.sup.slot(0).unwrap().rt.phase, Phase::Backoff);
    p.tend_waiters();
    let told = replies(&mut s);
    assert_error(&told, "exited during start, will retry");
}

/// A unit down for a failed dependency names that dependency in its
/// reason (`status NAME`): the operator's next look.
#[test]
fn a_failed_dependency_is_named() {
    let app = "exec = /bin/true\nafter = db\n";
    let p = pid1_with(&[("db", "exec = /bin/true\n"), ("app", app)]);
    let note = crate::supervisor::Note::DepFailed { dep: 0 };
    let said = super::NoteText(note, &p.sup).to_string();
    assert_eq!(said, "dependency db failed");
}
