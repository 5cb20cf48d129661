use super::*;

/// A build of another state format adopts the units from their files:
/// a re-exec into one is refused while a running unit's file is
/// invalid (it runs on its last good definition) or gone, naming it
/// (the new PID 1 left it unsupervised and cut its output pipe). Into
/// a build of this format, which reads the state, it goes on.
#[test]
fn a_reexec_into_another_format_is_refused_while_a_unit_file_is_bad() {
    use crate::pid1::tests::{step, NO_PID};
    use crate::supervisor::Event;
    let dir = crate::testutil::TempDir::new("reexec-adoptable");
    let mut p = Pid1::new(None, 0, false);
    p.units_dir = dir.path().to_str().unwrap().try_into().unwrap();
    for name in ["db", "web"] {
        let d = crate::unit::parse(name, "exec = /bin/true\n").unwrap();
        p.add_unit(d);
    }
    p.sup.link().unwrap();
    p.fit_tables();
    step(&mut p, 1, Event::Boot);
    step(&mut p, 2, Event::spawned(0, NO_PID));
    step(&mut p, 2, Event::spawned(1, NO_PID - 1));
    dir.file("web.unit", "exec = /bin/true\n");
    dir.file("db.unit", "exec = /bin/true\nbogus = 1\n");
    let other = state_format() + 1;
    assert!(p.unadoptable(state_format()).is_none());
    let why = p.unadoptable(other).map(|w| w.as_str().to_owned());
    assert!(
        why.as_deref()
            .is_some_and(|w| w.starts_with("db: unit file invalid or gone")),
        "{why:?}"
    );
    dir.file("db.unit", "exec = /bin/true\n");
    assert!(p.unadoptable(other).is_none());
    std::fs::remove_file(dir.path().join("web.unit")).unwrap();
    assert!(p
        .unadoptable(other)
        .is_some_and(|w| w.as_str().starts_with("web: unit file")));
}

/// A refusal names the unit whole, the longest name included, and
/// `initctl` is told that init keeps running whatever came before:
/// the cause is cut (and says so) to leave those words room.
#[test]
fn a_refusal_says_init_keeps_running_whatever_its_cause() {
    let name = "n".repeat(crate::vocab::NAME_MAX);
    let why = super::refusal::unadoptable_why(&name, 99);
    assert!(why.ends_with("adopts units from files"), "{why}");
    let e = keeps_running(ErrCode::Refused, format_args!("/sbin/init refused: {why}"));
    let m = e.message.as_str();
    assert!(
        m.starts_with(&format!("/sbin/init refused: {name}: unit file")),
        "{m}"
    );
    assert!(m.ends_with("...; init keeps running"), "{m}");
    let short = keeps_running(
        ErrCode::Refused,
        format_args!("/sbin/init refused: shutting down"),
    );
    assert_eq!(
        short.message.as_str(),
        "/sbin/init refused: shutting down; init keeps running"
    );
}

/// Once a critical unit failed and the watchdog is fed no more, a
/// re-exec is refused: the new PID 1 would feed it again (one of
/// another state format adopts the units and knows nothing of the
/// failure), and the board would not reset. So too after the unit was
/// started again by hand: the old PID 1 does not feed again either.
#[test]
fn a_reexec_is_refused_once_the_watchdog_is_fed_no_more() {
    use crate::pid1::tests::{pid1_with, step, watched, NO_PID};
    use crate::supervisor::Event;
    let web = "exec = /bin/true\ncritical = yes\nrestart = never\n";
    let mut p = pid1_with(&[("web", web)]);
    let _fed = watched(&mut p);
    p.watchdog_next = Some(0);
    step(&mut p, 1, Event::Boot);
    step(&mut p, 2, Event::spawned(0, NO_PID));
    assert!(p.refusal().is_none(), "fed: a re-exec goes on");
    let exit = crate::vocab::Exit::code(1);
    step(&mut p, 3, Event::Exited { pid: NO_PID, exit });
    let why = p.refusal().map(|w| w.as_str().to_owned());
    assert!(
        why.as_deref().is_some_and(|w| w.contains("critical")),
        "{why:?}"
    );
    p.tend_watchdog();
    assert_eq!(p.watchdog_next, None, "fed no more");
    step(&mut p, 4, Event::Start { unit: 0 });
    step(&mut p, 5, Event::spawned(0, NO_PID + 1));
    assert!(p.critical_failed().is_none());
    assert!(p.refusal().is_some(), "started by hand: still not fed");
}

/// The unit directory is read in a child before PID 1 counts (and
/// for another format parses) its files, as a reload reads it: within
/// 30 s of a disk that did not answer, a re-exec is refused at once,
/// naming the directory, and goes on once the disk answers again.
#[test]
fn a_reexec_is_refused_while_the_unit_directory_cannot_be_read() {
    use crate::pid1::tests::pid1_with;
    let mut p = pid1_with(&[("web", "exec = /bin/true\n")]);
    assert!(
        p.refusal().is_none(),
        "{:?}",
        p.refusal().map(|w| w.as_str().to_owned())
    );
    p.disk_stall = crate::pid1::gate::DiskStall::stalled_at(crate::pid1::now());
    let t = std::time::Instant::now();
    let why = p.refusal().map(|w| w.as_str().to_owned());
    assert!(t.elapsed() < std::time::Duration::from_millis(500));
    let dir = p.units_dir_path().to_owned();
    assert!(
        why.as_deref().is_some_and(|w| w.starts_with(&format!(
            "{dir} cannot be read now (the disk gave no answer"
        ))),
        "{why:?}"
    );
    p.disk_stall = Default::default();
    assert!(p.refusal().is_none());
}

/// Frames written one after another, after other bytes, read back
/// whole by the new PID 1's reader; one whose body fails is refused.
#[test]
fn frames_read_back_as_written() {
    let mut out = b"head".to_vec();
    let big = vec![b'x'; 70_000];
    let put = |b: &[u8]| {
        let b = b.to_vec();
        move |o: &mut Vec<u8>| {
            o.extend_from_slice(&b);
            Some(())
        }
    };
    frame(&mut out, put(b"\x07")).unwrap();
    frame(&mut out, put(&big)).unwrap();
    frame(&mut out, put(b"")).unwrap();
    frame(&mut out, put(b"two")).unwrap();
    let rest = out.strip_prefix(b"head").unwrap();
    let frames: Vec<&[u8]> = handover::frames(rest).collect();
    assert_eq!(frames, [b"\x07", &big[..], b"", b"two"]);
    assert_eq!(frame(&mut out, |_| None), Err(Errno::INVAL));
}

pub(super) fn units_in(dir: &std::path::Path) -> crate::boot::cmdline::Options {
    crate::boot::cmdline::Options {
        units_dir: heapless::String::try_from(dir.to_str().unwrap()).ok(),
        ..Default::default()
    }
}

pub(super) fn memfd(bytes: &[u8]) -> OwnedFd {
    let fd = rustix::fs::memfd_create("state", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    assert_eq!(rustix::io::write(&fd, bytes).unwrap(), bytes.len());
    fd
}

/// `web` (its file in `units` saying `unit`), a running `sleep` child,
/// adopted by a new PID 1 from a state of another format (999) that
/// hands over `fds` (`LOG NOTIFY REPORT`, `-1` for none); the child
/// killed once adopted. The new PID 1, which adopted it.
fn adopted_web(units: &crate::testutil::TempDir, unit: &str, fds: &str) -> Pid1 {
    units.file("web.unit", unit);
    let (p, pid) = adopting(units.path(), "web", fds);
    assert_eq!(p.sup.slot(0).unwrap().rt.pid, pid, "adopted");
    p
}

/// A new PID 1 (its units in `units`) that resumed from a state of
/// another format (999) naming `name` as a running `sleep` child that
/// hands over `fds`; the child killed once adopted (or not). With that
/// child's pid.
pub(super) fn adopting(units: &std::path::Path, name: &str, fds: &str) -> (Pid1, u32) {
    let mut child = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let pid = child.id();
    let text = format!("wren-state 999\nreexecs 1\nunit {name} {pid} {fds}\nend\n");
    let mut p = Pid1::new(None, 0, false);
    p.resume(memfd(text.as_bytes()), &units_in(units));
    let _ = child.kill();
    let _ = child.wait();
    (p, pid)
}

/// A state this build cannot read, without cgroups: the running unit
/// the text layer names (PID 1's child) is adopted, not started a
/// second time, and its sd_notify socket kept for the watchdog's
/// pings the adoption arms.
#[test]
fn without_cgroups_an_adopted_unit_keeps_its_process_and_notify_socket() {
    use crate::supervisor::{Action, Event};
    use rustix::fd::IntoRawFd;
    let units = crate::testutil::TempDir::new("reexec-adopt");
    units.file(
        "web.unit",
        "exec = /bin/sleep 60\nready = sd_notify\nwatchdog = 1s\n",
    );
    let mut child = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let pid = child.id();
    let sock = units.path().join("notify");
    let n = std::os::unix::net::UnixDatagram::bind(&sock).unwrap();
    // As handed over: inherited across the exec, so not close-on-exec.
    rustix::io::fcntl_setfd(&n, rustix::io::FdFlags::empty()).unwrap();
    let n = n.into_raw_fd();
    let text = format!("wren-state 999\nreexecs 1\nunit web {pid} -1 {n} -1\nend\n");
    let mut p = Pid1::new(None, 0, false);
    p.resume(memfd(text.as_bytes()), &units_in(units.path()));
    p.fit_tables();
    let adopted = p.sup.slot(0).unwrap().rt.pid;
    let acts = super::super::tests::step(&mut p, now(), Event::Boot);
    let ping = std::os::unix::net::UnixDatagram::unbound()
        .unwrap()
        .send_to(b"WATCHDOG=1", &sock);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(adopted, pid, "not adopted; the boot's actions: {acts:?}");
    assert!(!acts.contains(&Action::Spawn(0)), "{acts:?}");
    assert!(p.edges[0].notify.is_some(), "the notify socket closed");
    assert!(ping.is_ok(), "{ping:?}");
}

/// A state that is not one: the fds the last PID 1 handed over cannot
/// be named, and are closed rather than left to every unit started
/// from here (the watchdog's among them). This PID 1's own stay.
#[test]
fn fds_handed_over_without_a_state_are_closed() {
    crate::testutil::alone!(fds_handed_over_without_a_state_are_closed);
    let (rd, wr) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
    rustix::io::fcntl_setfd(&wr, rustix::io::FdFlags::empty()).unwrap();
    let own = rustix::io::dup(&rd).unwrap();
    rustix::io::fcntl_setfd(&own, rustix::io::FdFlags::CLOEXEC).unwrap();
    let units = crate::testutil::TempDir::new("reexec-garbage");
    let mut p = Pid1::new(None, 0, false);
    p.resume(memfd(b"\x00garbage"), &units_in(units.path()));
    // Its number may be another fd's by now: the pipe says it closed.
    core::mem::forget(wr);
    let seen = crate::testutil::poll_in(&rd, 1);
    assert!(seen.contains(rustix::event::PollFlags::HUP), "left open");
    assert!(rustix::io::fcntl_getfd(&own).is_ok(), "its own closed");
}

/// The same, but the fd handed over is the run's s6 readiness pipe
/// (the file on disk says sd_notify, not reloaded; or the unit was
/// adopted while it started): kept, as the pipe it is, so that the
/// unit's newline does not meet a closed pipe (SIGPIPE); its end of
/// file lets it go, not read as an empty datagram again and again.
#[test]
fn an_adopted_units_readiness_pipe_is_kept_until_its_end() {
    use rustix::fd::IntoRawFd;
    let units = crate::testutil::TempDir::new("reexec-adopt-pipe");
    let (rd, wr) = rustix::pipe::pipe().unwrap();
    drop(wr);
    let n = rd.into_raw_fd();
    let unit = "exec = /bin/sleep 60\nready = sd_notify\n";
    let mut p = adopted_web(&units, unit, &format!("-1 {n} -1"));
    assert!(p.edges[0].notify.is_some(), "its readiness pipe closed");
    p.on_notify(0);
    assert!(p.edges[0].notify.is_none(), "kept past its end of file");
    assert_eq!(
        p.sup.slot(0).unwrap().rt.phase,
        crate::supervisor::Phase::Running
    );
}

/// A unit whose part of the state cannot be written (here a
/// definition that would not come back as it is) refuses the re-exec
/// naming that unit, not "the state" alone.
#[test]
fn a_state_that_cannot_be_written_names_the_unit() {
    let mut p = super::super::tests::with_web();
    let mut def = crate::unit::UnitDef::with_defaults("odd");
    def.exec.push("/bin/echo").unwrap();
    def.exec.push("two\nlines").unwrap();
    p.add_unit(def);
    p.sup.link().unwrap();
    p.fit_tables();
    let (e, unit) = p.write_state(false).err().unwrap();
    assert_eq!(e, Errno::INVAL);
    assert_eq!(unit.as_deref(), Some("odd"));
}

/// A stopped unit's cgroup, there before the re-exec, is still known
/// after it: a reload that removes the unit then deletes it; its next
/// start writes its limits again.
#[test]
fn a_stopped_units_cgroup_is_known_after_a_reexec() {
    let root = crate::testutil::TempDir::new("reexec-stopped-cg");
    root.file("units/web/cgroup.events", "populated 0\n");
    let mut p = super::super::tests::with_web();
    p.cg = Some(crate::cgroup::Cgroups::open(root.path()).unwrap());
    p.edges[0].cgroup = Some(0);
    let state = p.write_state(false).unwrap();
    let cg = crate::cgroup::Cgroups::open(root.path()).unwrap();
    let mut q = Pid1::new(Some(cg), 0, false);
    q.resume(state, &crate::boot::cmdline::Options::default());
    assert_eq!(q.sup.slot(0).unwrap().rt.pid, 0);
    let gen = q.sup.slot(0).unwrap().limits_gen;
    assert_eq!(q.edges[0].cgroup, Some(gen.wrapping_sub(1)));
}

/// A state of this format whose ring is bigger than its unit's
/// `log_size` (damaged; a build that changed the layout and not the
/// format): the ring is the definition's size, not a 1 GiB one (or
/// an abort, at 4 GiB).
#[test]
fn a_handed_over_ring_is_sized_by_its_definition() {
    let mut def = crate::unit::UnitDef::with_defaults("web");
    def.exec.push("/bin/true").unwrap();
    let mut sup = crate::supervisor::Supervisor::new();
    sup.add(def.clone()).unwrap();
    let st = UnitState {
        def: def.clone(),
        rt: sup.slot(0).unwrap().rt.clone(),
        retired: crate::supervisor::Retired::No,
        log_fd: -1,
        notify_fd: -1,
        report_fd: -1,
        log_capacity: 1 << 30,
        log_pos: 1,
        log: b"x",
        oom_kills_at_spawn: 0,
        oom_kills: 0,
        pressure_events: 0,
        shed: false,
        last_error: "",
        last_good: None,
        verdict: 0,
        rejected: None,
    };
    let mut out = format!("wren-state {}\nreexecs 1\nend\n", state_format()).into_bytes();
    let header = Header {
        started_at: 1,
        all_up_reported: true,
        reexecs: 1,
        units: 1,
    };
    frame(&mut out, |o| {
        wire::write_header(o, &header);
        Some(())
    })
    .unwrap();
    frame(&mut out, |o| wire::write_unit(o, &st)).unwrap();
    let mut p = Pid1::new(None, 0, false);
    p.resume(memfd(&out), &crate::boot::cmdline::Options::default());
    assert!(matches!(p.origin, Origin::HandedOver { .. }));
    assert_eq!(p.edges[0].log.capacity(), def.log_size as usize);
}

/// A free slot keeps its unit's name: after a reload removed `a` and
/// `web` and a later one configured `web` again (in `a`'s slot), the
/// free slot named `web` claimed the live `web`'s cgroup in a
/// re-exec, and the next reload, changing nothing, killed the running
/// `web` as the removed one's leftovers.
#[test]
fn a_free_slot_does_not_claim_a_live_units_cgroup() {
    use crate::supervisor::{Actions, Retired};
    use crate::unit::UnitDef;
    let root = crate::testutil::TempDir::new("reexec-free-slot");
    root.file("units/web/cgroup.events", "populated 1\n");
    let kill = root.file("units/web/cgroup.kill", "");
    let units = crate::testutil::TempDir::new("reexec-free-slot-units");
    units.file("web.unit", "exec = /bin/true\n");
    let cg = crate::cgroup::Cgroups::open(root.path()).unwrap();
    let mut p = Pid1::new(Some(cg), 0, false);
    let mut a = UnitDef::with_defaults("a");
    a.exec.push("/bin/true").unwrap();
    let web = crate::unit::parse("web", "exec = /bin/true\n").unwrap();
    p.add_unit(a);
    p.add_unit(web.clone());
    p.sup.link().unwrap();
    p.fit_tables();
    let reload = |p: &mut Pid1, t, defs: Vec<UnitDef>| {
        let mut out = Actions::default();
        out.fit(4);
        p.sup.reload(t, &mut defs.into_iter(), &|_| false, &mut out);
    };
    reload(&mut p, 1, vec![]);
    reload(&mut p, 2, vec![web.clone()]);
    assert_eq!(p.sup.slot(0).unwrap().def.name.as_str(), "web");
    let old = p.sup.slot(1).unwrap();
    assert_eq!((old.def.name.as_str(), old.retired), ("web", Retired::Free));
    p.edges[0] = Edge::new(&web);
    p.edges[0].cgroup = Some(p.sup.slot(0).unwrap().limits_gen);
    p.edges[1].cgroup = None;
    p.sup.adopt(0, 4_000_000, 5);
    let state = p.write_state(false).unwrap();
    let cg = crate::cgroup::Cgroups::open(root.path()).unwrap();
    let mut q = Pid1::new(Some(cg), 0, false);
    q.resume(state, &units_in(units.path()));
    q.fit_tables();
    assert_eq!(q.sup.slot(0).unwrap().rt.pid, 4_000_000);
    assert!(q.edges[0].cgroup.is_some() && q.edges[1].cgroup.is_none());
    let _ = q.reload(&mut |_| {});
    assert_eq!(
        std::fs::read_to_string(&kill).unwrap(),
        "",
        "the live web killed"
    );
}

/// A build of another state format adopts: the fds of a stopped unit
/// (an output pipe a process that escaped the unit keeps open) are
/// closed too, not left open without close-on-exec in the new PID 1
/// and every unit it starts (the text layer named running units only).
#[test]
fn an_adoption_closes_a_stopped_units_fds() {
    let units = crate::testutil::TempDir::new("reexec-adopt-stopped-fds");
    units.file("web.unit", "exec = /bin/true\n");
    let mut p = super::super::tests::with_web();
    let (rd, wr) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
    let n = rustix::fd::AsRawFd::as_raw_fd(&rd);
    let pipe = rustix::fs::fstat(&wr).unwrap().st_ino;
    p.edges[0].log_rd = Some(rd);
    assert_eq!(p.sup.slot(0).unwrap().rt.pid, 0);
    let state = p.write_state(false).unwrap();
    // The exec: the old PID 1's fds are the new one's by number.
    std::mem::forget(p);
    let mut bytes = Vec::new();
    rustix::fs::seek(&state, rustix::fs::SeekFrom::Start(0)).unwrap();
    crate::sys::file::read_to_end(std::fs::File::from(state), &mut bytes).unwrap();
    let first = bytes.iter().position(|&c| c == b'\n').unwrap();
    let mut other = b"wren-state 999".to_vec();
    other.extend_from_slice(&bytes[first..]);
    let mut q = Pid1::new(None, 0, false);
    q.resume(memfd(&other), &units_in(units.path()));
    // Closed here: its number gone, or another file's already (tests
    // run in parallel). Not the pipe's end of file for its writer: a
    // child another test forks meanwhile inherits the read end while
    // the handover leaves it without close-on-exec.
    let now = std::fs::metadata(format!("/proc/self/fd/{n}"));
    assert!(
        now.map_or(true, |m| std::os::unix::fs::MetadataExt::ino(&m) != pipe),
        "its read end is open"
    );
    drop(wr);
}

/// A candidate of this format, given the state, names the first unit
/// whose definition its parser refuses (as an older build, rolled
/// back to, refuses a newer key): its second handshake line. A state
/// it reads whole, or of another format, it says nothing of.
#[test]
fn a_candidate_names_the_unit_it_cannot_read() {
    let mut p = super::super::tests::with_web();
    let state = p.write_state(false).unwrap();
    assert_eq!(
        super::candidate::unreadable(rustix::fd::AsFd::as_fd(&state)),
        None
    );
    let mut bytes = Vec::new();
    rustix::fs::seek(&state, rustix::fs::SeekFrom::Start(0)).unwrap();
    crate::sys::file::read_to_end(std::fs::File::from(state), &mut bytes).unwrap();
    let at = bytes.windows(7).position(|w| w == b"exec = ").unwrap();
    bytes[at + 3] = b'f';
    let said = super::candidate::unreadable(rustix::fd::AsFd::as_fd(&memfd(&bytes)));
    let said = said.expect("the unit it cannot read");
    assert!(said.starts_with("web: line "), "{said}");
    assert!(said.contains("exef"), "{said}");
    let first = bytes.iter().position(|&c| c == b'\n').unwrap();
    let mut other = b"wren-state 999".to_vec();
    other.extend_from_slice(&bytes[first..]);
    assert_eq!(
        super::candidate::unreadable(rustix::fd::AsFd::as_fd(&memfd(&other))),
        None
    );
}

/// Close-on-exec of fd `n`, from /proc/self/fdinfo (O_CLOEXEC).
fn cloexec(n: i32) -> bool {
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{n}")).unwrap();
    let flags = info.lines().find_map(|l| l.strip_prefix("flags:")).unwrap();
    u32::from_str_radix(flags.trim(), 8).unwrap() & 0o2000000 != 0
}

/// For a build of its own format, the re-exec keeps the hardware
/// watchdog open across the exec and names it in the state (a driver
/// without the magic close stops at the close an exec makes); for
/// another, or an exec that failed, it stays close-on-exec. The new
/// PID 1 takes only a device that answers the watchdog's ioctl.
#[test]
fn the_watchdog_is_handed_over_to_a_build_of_the_same_format() {
    use crate::watchdog::Watchdog;
    let dev = rustix::fs::memfd_create("wd", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    let n = dev.as_raw_fd();
    let mut p = super::super::tests::with_web();
    p.watchdog = Some(Watchdog::on(dev, 15));
    let text = |state: OwnedFd| {
        let mut bytes = Vec::new();
        rustix::fs::seek(&state, rustix::fs::SeekFrom::Start(0)).unwrap();
        crate::sys::file::read_to_end(std::fs::File::from(state), &mut bytes).unwrap();
        bytes
    };
    let other = text(p.write_state(false).unwrap());
    assert!(handover::parse_hints(&other).unwrap().watchdog.is_none());
    assert!(cloexec(n));
    let same = text(p.write_state(true).unwrap());
    assert_eq!(
        handover::parse_hints(&same).unwrap().watchdog,
        Some((n, 15))
    );
    assert!(!cloexec(n), "closed by the exec");
    p.set_cloexec(true);
    assert!(
        cloexec(n),
        "left open for the next start after a failed exec"
    );
    // A memfd is no watchdog: not taken by the new PID 1, and closed.
    let mut q = Pid1::new(None, 0, false);
    let not_one = rustix::fs::memfd_create("wd", rustix::fs::MemfdFlags::empty()).unwrap();
    q.take_watchdog(Some(not_one), 15);
    assert!(q.watchdog.is_none());
}

/// A unit a reload removed, still stopping at a re-exec: once it has
/// stopped, the new PID 1 lets its edge go (its output pipe out of the
/// epoll set, its ring freed), as the old one would have. The new one
/// started with no removal pending and held them for good.
#[test]
fn a_removed_unit_still_stopping_at_a_reexec_is_let_go_once_stopped() {
    use crate::pid1::tests::{pid1_with, step, NO_PID};
    use crate::supervisor::{Event, Retired};
    let dir = crate::testutil::TempDir::new("reexec-removing");
    dir.file("db.unit", "exec = /bin/true\n");
    let mut p = pid1_with(&[("web", "exec = /bin/true\n"), ("db", "exec = /bin/true\n")]);
    p.units_dir = dir.path().to_str().unwrap().try_into().unwrap();
    step(&mut p, 1, Event::Boot);
    step(&mut p, 2, Event::spawned(0, NO_PID));
    step(&mut p, 2, Event::spawned(1, NO_PID - 1));
    let (rd, _wr) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
    p.edges[0].log_rd = Some(rd);
    p.reload(&mut |_| {}).unwrap();
    assert!(p.in_between().is_none(), "a re-exec would be refused");
    let state = p.write_state(false).unwrap();
    // The old PID 1's fds are the new one's: not closed by this one.
    std::mem::forget(p);
    let mut q = Pid1::new(None, 0, false);
    let opts = crate::boot::cmdline::Options {
        units_dir: heapless::String::try_from(dir.path().to_str().unwrap()).ok(),
        ..Default::default()
    };
    q.resume(state, &opts);
    q.fit_tables();
    assert!(q.sup.retired_index("web", Retired::Leaving).is_some());
    let exit = crate::vocab::Exit::code(0);
    step(&mut q, 3, Event::Exited { pid: NO_PID, exit });
    q.after_events();
    assert!(q.edges[0].log_rd.is_none(), "web's output pipe still held");
}

/// Booted with `wren.rescue`, the units loaded by the operator's
/// reload since, then a re-exec whose state names `web` running but
/// is of another format: `web` is adopted from its file, not left
/// unsupervised (its output pipe cut) for the rescue shell alone. With
/// nothing but the rescue shell running, rescue it stays.
#[test]
fn an_adoption_after_a_rescue_boot_keeps_the_units_loaded_since() {
    let units = crate::testutil::TempDir::new("reexec-rescue");
    units.file("web.unit", "exec = /bin/sleep 60\n");
    let mut child = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let opts = crate::boot::cmdline::Options {
        units_dir: heapless::String::try_from(units.path().to_str().unwrap()).ok(),
        rescue: true,
        ..Default::default()
    };
    let memfd = |text: String| {
        let fd = rustix::fs::memfd_create("state", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        assert_eq!(rustix::io::write(&fd, text.as_bytes()).unwrap(), text.len());
        fd
    };
    let other = state_format() + 1;
    let pid = child.id();
    let mut p = Pid1::new(None, 0, false);
    p.resume(
        memfd(format!(
            "wren-state {other}\nunit web {pid} -1 -1 -1\nend\n"
        )),
        &opts,
    );
    let _ = child.kill();
    let _ = child.wait();
    let web = p.sup.index("web").and_then(|u| p.sup.slot(u));
    assert_eq!(web.map(|s| s.rt.pid), Some(pid), "web not adopted");
    let mut q = Pid1::new(None, 0, false);
    q.resume(
        memfd(format!("wren-state {other}\nunit rescue 1 -1 -1 -1\nend\n")),
        &opts,
    );
    let names: Vec<&str> = q.sup.slots().map(|s| s.def.name.as_str()).collect();
    assert_eq!(names, ["rescue"]);
}

/// Booted with `wren.rescue` and units loaded since: a re-exec into a
/// build of an older format, which would keep only the rescue shell,
/// is refused naming a running unit; a newer one adopts them.
#[test]
fn a_reexec_after_a_rescue_boot_into_an_older_format_is_refused() {
    use crate::pid1::tests::{step, NO_PID};
    use crate::supervisor::Event;
    let dir = crate::testutil::TempDir::new("reexec-rescue-older");
    dir.file("web.unit", "exec = /bin/true\n");
    let mut p = Pid1::new(None, 0, false);
    p.units_dir = dir.path().to_str().unwrap().try_into().unwrap();
    p.add_unit(crate::unit::parse("web", "exec = /bin/true\n").unwrap());
    p.sup.link().unwrap();
    p.fit_tables();
    step(&mut p, 1, Event::Boot);
    step(&mut p, 2, Event::spawned(0, NO_PID));
    let older = state_format() - 1;
    assert!(p.unadoptable(older).is_none(), "not booted in rescue");
    p.sup.hold_limit_actions(0, true);
    let why = p.unadoptable(older).map(|w| w.as_str().to_owned());
    let want = format!("web: booted with wren.rescue, format {older} adopts only the rescue shell");
    assert_eq!(why.as_deref(), Some(want.as_str()));
    assert!(p.unadoptable(state_format() + 1).is_none());
}

/// Unit 0 (`web`, of `memory.max`) started as `spawn` records it without
/// cgroup2: its keys not enforced, said.
fn web_spawned_without_cgroup2(p: &mut Pid1) -> String {
    use crate::pid1::tests::{step, NO_PID};
    use crate::supervisor::Event;
    step(p, 1, Event::Boot);
    step(p, 2, Event::spawned(0, NO_PID));
    let limits = p.sup.slot(0).unwrap().def.limits.get();
    let ne = crate::cgroup::missing::not_enforced(&limits);
    p.edges[0].not_enforced = crate::pid1::not_enforced::KeySet::of(&ne);
    let keys = p.edges[0].not_enforced.to_string();
    assert!(keys.contains("memory.max"), "{keys}");
    keys
}

/// `p`'s state resumed by a new PID 1 without cgroup2 (`p`'s fds live on,
/// as across the exec).
fn handed_over_without_cgroup2(mut p: Pid1) -> Pid1 {
    let state = p.write_state(false).unwrap();
    std::mem::forget(p);
    let mut q = Pid1::new(None, 0, false);
    q.resume(state, &crate::boot::cmdline::Options::default());
    q
}

/// The keys a running unit's start found not enforced are said after a
/// re-exec too: the new PID 1 had none, and `status NAME` said every
/// limit held until the limits changed (with cgroups no restart works
/// them out again: its cgroup's limits are current).
#[test]
fn a_running_units_not_enforced_keys_survive_a_reexec() {
    use crate::pid1::tests::{pid1_with, NO_PID};
    let mut p = pid1_with(&[("web", "exec = /bin/true\nmemory.max = 10M\n")]);
    let before = web_spawned_without_cgroup2(&mut p);
    let q = handed_over_without_cgroup2(p);
    assert_eq!(q.sup.slot(0).unwrap().rt.pid, NO_PID, "still running");
    assert_eq!(q.edges[0].not_enforced.to_string(), before);
    // Adopted by a build of another state format, the same.
    let units = crate::testutil::TempDir::new("reexec-adopt-not-enforced");
    let a = adopted_web(
        &units,
        "exec = /bin/sleep 60\nmemory.max = 10M\n",
        "-1 -1 -1",
    );
    assert_eq!(a.edges[0].not_enforced.to_string(), before);
}

/// A stopped unit's keys are its last start's, after a re-exec as
/// before it (without cgroup2 they follow from its limits alone); a unit
/// that never started has none either side. `status NAME` said none after
/// a re-exec until the unit's next start.
#[test]
fn a_stopped_units_not_enforced_keys_survive_a_reexec() {
    use crate::pid1::tests::{pid1_with, step, NO_PID};
    use crate::supervisor::Event;
    use wren_core::vocab::Exit;
    let mut p = pid1_with(&[
        (
            "web",
            "exec = /bin/true\nmemory.max = 10M\nrestart = never\n",
        ),
        (
            "late",
            "exec = /bin/true\nmemory.max = 10M\nafter = web\nready = notify\n",
        ),
    ]);
    let before = web_spawned_without_cgroup2(&mut p);
    let exit = Exit::Code(1);
    step(&mut p, 3, Event::Exited { pid: NO_PID, exit });
    assert_eq!(p.sup.slot(0).unwrap().rt.pid, 0, "stopped");
    assert_eq!(p.edges[1].not_enforced.to_string(), "");
    let q = handed_over_without_cgroup2(p);
    assert_eq!(q.sup.slot(0).unwrap().rt.pid, 0, "still stopped");
    assert_eq!(q.edges[0].not_enforced.to_string(), before);
    assert_eq!(q.edges[1].not_enforced.to_string(), "", "never started");
}

/// A unit started with `output = log` whose file says `output = null`
/// now (changed, not reloaded), adopted by a build of another state
/// format: its output pipe stays open. It was closed, and the unit's
/// next write met a closed pipe (SIGPIPE), as the readiness pipe's
/// would, which is kept for that reason.
#[test]
fn an_adopted_units_output_pipe_is_kept_whatever_the_file_says_now() {
    use rustix::fd::IntoRawFd;
    let units = crate::testutil::TempDir::new("reexec-adopt-out");
    let (rd, wr) = rustix::pipe::pipe().unwrap();
    let n = rd.into_raw_fd();
    let unit = "exec = /bin/sleep 60\noutput = null\n";
    let _p = adopted_web(&units, unit, &format!("{n} -1 -1"));
    let wrote = rustix::io::write(&wr, b"web: still here\n");
    assert!(wrote.is_ok(), "the unit's next write: {wrote:?}");
}
