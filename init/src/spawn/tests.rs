use super::*;
use rustix::fd::OwnedFd;

/// With the slot lock held: once a slot is free (children other tests
/// started before it may still be on every one), it stays free for this
/// thread's next start.
fn a_slot_free() {
    crate::sys::slot::reserve().unwrap();
    drop(crate::sys::slot::claim_within(std::time::Duration::from_secs(10)).expect("a free slot"));
}

/// `start`, then wait (up to 10 s) for the handshake, as PID 1's loop
/// does through epoll.
fn spawn(req: &Request<'_>) -> Result<u32, SpawnError> {
    // Children share this process's memory on a slot when one is free.
    crate::sys::slot::reserve().unwrap();
    let p = start(req)?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match p.poll() {
            Handshake::Execd => return Ok(p.pid),
            Handshake::Failed(e) => return Err(e),
            Handshake::Waiting => {
                assert!(std::time::Instant::now() < deadline, "no exec report");
                crate::testutil::poll_in(&p.status, 1);
            }
        }
    }
}

/// The handshake as PID 1 sees it: `poll` answers at once whether or not
/// the child has written or closed its end, and tells the three outcomes
/// apart.
#[test]
fn poll_never_blocks_and_tells_exec_from_failure() {
    let pipe = || {
        rustix::pipe::pipe_with(
            rustix::pipe::PipeFlags::CLOEXEC | rustix::pipe::PipeFlags::NONBLOCK,
        )
        .unwrap()
    };
    // A child still on its way to exec holds the write end open.
    let (rd, wr) = pipe();
    let stalled = Pending { pid: 0, status: rd };
    let t = std::time::Instant::now();
    assert_eq!(stalled.poll(), Handshake::Waiting);
    assert_eq!(stalled.poll(), Handshake::Waiting);
    assert!(t.elapsed() < std::time::Duration::from_millis(500));
    drop(wr);
    assert_eq!(stalled.poll(), Handshake::Execd);
    // A failed step: its report, then the end of the pipe.
    let (rd, wr) = pipe();
    let failed = Pending { pid: 0, status: rd };
    let err = SpawnError {
        step: Step::Chdir,
        errno: Errno::NOENT.raw_os_error(),
    };
    let [e0, e1, e2, e3] = err.errno.to_le_bytes();
    rustix::io::write(&wr, &[err.step.code(), e0, e1, e2, e3]).unwrap();
    drop(wr);
    assert_eq!(failed.poll(), Handshake::Failed(err));
    // A real start: returns with the child's pid, exec'd soon after.
    let d = unit(&["/bin/true"]);
    let cg = own_cgroup();
    let req = request(&d, cg.as_fd(), Stdio::Null);
    let pid = spawn(&req).unwrap();
    assert_eq!(wait(pid), 0);
}

/// The cgroup this test process runs in: spawning into it needs no
/// privilege beyond what the test already has.
fn own_cgroup() -> OwnedFd {
    let text = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let rel = text.lines().find_map(|l| l.strip_prefix("0::")).unwrap();
    // Hybrid hosts mount cgroup2 at /sys/fs/cgroup/unified.
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    let root = mounts
        .lines()
        .find_map(|l| {
            let mut f = l.split(' ');
            let (_, dir, ty) = (f.next()?, f.next()?, f.next()?);
            (ty == "cgroup2").then(|| dir.to_owned())
        })
        .expect("a cgroup2 mount");
    let path = format!("{root}{rel}");
    rustix::fs::open(
        path.as_str(),
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY,
        rustix::fs::Mode::empty(),
    )
    .unwrap()
}

/// A request with nothing but the unit, its cgroup and its stdio.
fn request<'a>(def: &'a UnitDef, cgroup: BorrowedFd<'a>, stdio: Stdio<'a>) -> Request<'a> {
    Request {
        def,
        cgroup: Some(cgroup),
        stdio,
        notify_fd: None,
        notify_socket: None,
        uid: None,
        gid: None,
        groups: &[],
        exit_report: None,
        seccomp: None,
        decided_ns: None,
        grace: false,
        relaunch: false,
        console: None,
    }
}

fn unit(exec: &[&str]) -> UnitDef {
    let mut d = UnitDef::with_defaults("t");
    d.namespaces = Namespaces::NONE;
    for a in exec {
        d.exec.push(a).unwrap();
    }
    d
}

fn wait(pid: u32) -> i32 {
    let st = crate::testutil::wait_status(pid).unwrap();
    match st.exit_status() {
        Some(c) => c,
        None => panic!("{st:?}"),
    }
}

fn read_all(fd: OwnedFd) -> String {
    let mut f = std::fs::File::from(fd);
    let mut s = String::new();
    std::io::Read::read_to_string(&mut f, &mut s).unwrap();
    s
}

#[test]
fn spawns_into_the_cgroup_with_output_piped_and_env_set() {
    let cg = own_cgroup();
    let d = unit(&[
        "/bin/sh",
        "-c",
        "echo \"$1 $TERM\"; cat /proc/self/cgroup",
        "sh",
        "hello",
    ]);
    let (rd, wr) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
    let req = request(&d, cg.as_fd(), Stdio::Pipe(wr.as_fd()));
    let pid = spawn(&req).unwrap();
    drop(wr);
    let out = read_all(rd);
    assert_eq!(wait(pid), 0);
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    assert_eq!(out, format!("hello linux\n{own}"));
}

/// No cgroup2 hierarchy: the child is not placed anywhere and stays in
/// its parent's cgroup, and still runs.
#[test]
fn spawns_without_a_cgroup_in_the_parents_cgroup() {
    let d = unit(&["/bin/sh", "-c", "echo ran; cat /proc/self/cgroup"]);
    let (rd, wr) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
    let mut req = request(&d, wr.as_fd(), Stdio::Pipe(wr.as_fd()));
    req.cgroup = None;
    let pid = spawn(&req).unwrap();
    drop(wr);
    let out = read_all(rd);
    assert_eq!(wait(pid), 0);
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    assert_eq!(out, format!("ran\n{own}"));
}

#[test]
fn missing_program_is_an_exec_error_not_a_pid() {
    let cg = own_cgroup();
    let d = unit(&["/nonexistent/prog"]);
    let req = request(&d, cg.as_fd(), Stdio::Null);
    let err = spawn(&req).unwrap_err();
    assert_eq!(err.step, Step::Exec);
    assert_eq!(err.errno, Errno::NOENT.raw_os_error());
    // The failed child (exit 127) is left for PID 1's reap loop; here
    // it is reaped when the test process ends.
}

#[test]
fn notify_fd_is_3_in_the_child_and_workdir_is_applied() {
    let cg = own_cgroup();
    let mut d = unit(&["/bin/sh", "-c", "pwd >&$NOTIFY_FD"]);
    d.workdir.clear();
    d.workdir.push_str("/tmp").unwrap();
    let (rd, wr) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
    let req = Request {
        notify_fd: Some(wr.as_fd()),
        ..request(&d, cg.as_fd(), Stdio::Null)
    };
    let pid = spawn(&req).unwrap();
    drop(wr);
    assert_eq!(read_all(rd), "/tmp\n");
    assert_eq!(wait(pid), 0);
}

/// The output pipe at PID 1's fd 3 (what NOTIFY_FD is in the child: a
/// boot without /dev/kmsg leaves 3 to whatever comes): the service's
/// stdout is still that pipe, and only the notify line goes to
/// `$NOTIFY_FD`. In a copy of this process, which takes fd 3 for it.
#[test]
fn the_notify_fd_does_not_take_the_output_pipes_number() {
    use rustix::pipe::{pipe_with, PipeFlags};
    let cg = own_cgroup();
    let d = unit(&["/bin/sh", "-c", "echo out; echo ready >&$NOTIFY_FD"]);
    let read_to_end = |fd: &OwnedFd, buf: &mut [u8; 64]| {
        let mut n = 0;
        while let Some(rest) = buf.get_mut(n..) {
            match rustix::io::read(fd, rest) {
                Ok(0) | Err(_) => break,
                Ok(k) => n += k,
            }
        }
        n
    };
    let pid = crate::sys::clone::clone_into(crate::unit::Namespaces(0), None, || {
        let code = (|| {
            // Everything else out of the way of 3 first.
            let high = |fd: &OwnedFd| rustix::io::fcntl_dupfd_cloexec(fd, 10).ok();
            let (o_rd, o_wr) = pipe_with(PipeFlags::CLOEXEC).ok()?;
            let (no_rd, no_wr) = pipe_with(PipeFlags::CLOEXEC).ok()?;
            let (out_rd, out_wr) = (high(&o_rd)?, high(&o_wr)?);
            let (n_rd, n_wr, cg) = (high(&no_rd)?, high(&no_wr)?, high(&cg)?);
            drop((o_rd, o_wr, no_rd, no_wr));
            let _ = nix::unistd::close(3);
            let out3 = rustix::io::fcntl_dupfd_cloexec(&out_wr, 3).ok()?;
            if rustix::fd::AsRawFd::as_raw_fd(&out3) != 3 {
                return Some(8);
            }
            drop(out_wr);
            let req = Request {
                notify_fd: Some(n_wr.as_fd()),
                ..request(&d, cg.as_fd(), Stdio::Pipe(out3.as_fd()))
            };
            let p = match start(&req) {
                Ok(p) => p,
                Err(e) => crate::sys::clone::exit(20 + e.errno),
            };
            drop((out3, n_wr));
            let (mut out, mut note) = ([0u8; 64], [0u8; 64]);
            let (o, n) = (
                read_to_end(&out_rd, &mut out),
                read_to_end(&n_rd, &mut note),
            );
            let ok = out.get(..o) == Some(b"out\n") && note.get(..n) == Some(b"ready\n");
            Some(i32::from(!ok) + 2 * i32::from(crate::testutil::wait_exit(p.pid) != Some(0)))
        })();
        crate::sys::clone::exit(code.unwrap_or(9))
    })
    .unwrap();
    assert_eq!(crate::testutil::wait_exit(pid), Some(0));
}

/// `spawn_reported` with `fd0` as this process's fd 0 for the start (PID
/// 1's would be the console), put back after: the reaper's copy of fd 0
/// is what a test looks at.
fn spawn_reported_with_fd0(
    d: &UnitDef,
    cg: BorrowedFd<'_>,
    fd0: BorrowedFd<'_>,
) -> (u32, OwnedFd, OwnedFd) {
    let saved = rustix::io::fcntl_dupfd_cloexec(rustix::stdio::stdin(), 3).unwrap();
    crate::sys::fd::move_for_exec(fd0, 0).unwrap();
    let started = spawn_reported(d, cg);
    crate::sys::fd::move_for_exec(saved.as_fd(), 0).unwrap();
    started
}

/// Spawns `d` with its output piped and an exit report pipe, as PID 1
/// does a unit in a PID namespace: (pid, output, report).
fn spawn_reported(d: &UnitDef, cg: BorrowedFd<'_>) -> (u32, OwnedFd, OwnedFd) {
    let (rd, wr) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
    let (rep_rd, rep_wr) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
    let req = Request {
        exit_report: Some(rep_wr.as_fd()),
        ..request(d, cg, Stdio::Pipe(wr.as_fd()))
    };
    (spawn(&req).unwrap(), rd, rep_rd)
}

/// The exit a reaper reported on `report` (waits for it).
fn report_of(report: &OwnedFd) -> Option<crate::vocab::Exit> {
    let mut b = [0u8; crate::spawn::reaper::REPORT_LEN];
    let n = rustix::io::read(report, &mut b).unwrap();
    crate::spawn::reaper::decode(&b[..n]).map(|(e, _)| e)
}

#[test]
fn default_namespaces_give_a_reaper_a_fresh_proc_and_the_unit_hostname() {
    let cg = own_cgroup();
    let mut d = unit(&[
        "/bin/sh",
        "-c",
        "echo $$ $(hostname) $(ls /proc | grep -c '^[0-9]'); kill -TERM $$",
    ]);
    d.namespaces = Namespaces::DEFAULT;
    d.name.clear();
    d.name.push_str("nsunit").unwrap();
    let (pid, rd, rep_rd) = spawn_reported(&d, cg.as_fd());
    // The reaper reports the real cause, SIGTERM, and exits (128+15) once
    // the report's end is closed; the output pipe it held ends then.
    assert_eq!(report_of(&rep_rd), Some(crate::vocab::Exit::Signal(15)));
    drop(rep_rd);
    // The service is pid 2 (the reaper is 1), sees its own hostname,
    // and /proc lists only the namespace's processes: the reaper, sh,
    // and the few commands of the substitutions (never the host's).
    let out = read_all(rd);
    let f: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(&f[..2], ["2", "nsunit"], "{out}");
    let procs: u32 = f[2].parse().unwrap();
    assert!((2..=5).contains(&procs), "{out}");
    assert_eq!(wait(pid), 128 + 15);
    // The host's hostname is untouched.
    assert_ne!(
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .unwrap()
            .trim(),
        "nsunit"
    );
}

/// A namespace's reaper holds its service's output pipe until it exits:
/// the service's death shows as the report first, the pipe's end of file
/// only once the reaper has gone (after PID 1 closed the report's end).
#[test]
fn the_reaper_holds_the_output_pipe_past_its_report() {
    let cg = own_cgroup();
    let mut d = unit(&["/bin/sh", "-c", "echo bye"]);
    d.namespaces = Namespaces(Namespaces::PID | Namespaces::MOUNT);
    let (pid, rd, rep_rd) = spawn_reported(&d, cg.as_fd());
    assert_eq!(report_of(&rep_rd), Some(crate::vocab::Exit::Code(0)));
    // Reported, waiting for the report's end to close: the output is
    // readable, not at its end.
    assert_eq!(
        crate::testutil::poll_in(&rd, 0),
        rustix::event::PollFlags::IN
    );
    drop(rep_rd);
    assert_eq!(read_all(rd), "bye\n");
    assert_eq!(wait(pid), 0);
}

/// A namespace's reaper keeps none of PID 1's stdio (at boot the
/// console, read-write: a unit with a user namespace could take it from
/// its exec'd reaper with pidfd_getfd and read the operator's keyboard).
/// Its fds 0 and 2 are /dev/null, fd 1 the service's output pipe it holds.
#[test]
fn a_reaper_keeps_none_of_pid1_s_stdio() {
    super::stdio::open_null();
    let cg = own_cgroup();
    let mut d = unit(&["/bin/sh", "-c", "exit 0"]);
    d.namespaces = Namespaces(Namespaces::PID | Namespaces::MOUNT);
    let dir = crate::testutil::TempDir::new("reaper-stdio");
    let secret = std::fs::File::create(dir.join("console")).unwrap();
    let (pid, rd, rep_rd) = spawn_reported_with_fd0(&d, cg.as_fd(), secret.as_fd());
    assert_eq!(report_of(&rep_rd), Some(crate::vocab::Exit::Code(0)));
    let link = |n| std::fs::read_link(format!("/proc/{pid}/fd/{n}")).unwrap();
    assert_eq!(link(0), std::path::Path::new("/dev/null"));
    assert_eq!(link(2), std::path::Path::new("/dev/null"));
    let pipe = format!("pipe:[{}]", rustix::fs::fstat(&rd).unwrap().st_ino);
    assert_eq!(link(1), std::path::Path::new(&pipe));
    drop(rep_rd);
    assert_eq!(wait(pid), 0);
}

/// What the service left in its namespace is killed and reaped before
/// the report: by then the reaper has no child left.
#[test]
fn the_reaper_empties_its_namespace_before_it_reports() {
    let cg = own_cgroup();
    let mut d = unit(&["/bin/sh", "-c", "sleep 100 & exit 3"]);
    d.namespaces = Namespaces(Namespaces::PID | Namespaces::MOUNT);
    let (pid, _rd, rep_rd) = spawn_reported(&d, cg.as_fd());
    assert_eq!(report_of(&rep_rd), Some(crate::vocab::Exit::Code(3)));
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap();
    assert_eq!(
        children.trim(),
        "",
        "left in the namespace after the report"
    );
    drop(rep_rd);
    assert_eq!(wait(pid), 3);
}

/// A signal to a namespace's reaper reaches its service, a real-time one
/// too (the raw wait and kill name any; nix's `Signal` could not, and
/// they were dropped).
#[test]
fn the_reaper_forwards_signals_to_its_service() {
    let cg = own_cgroup();
    let mut d = unit(&[
        "/bin/sh",
        "-c",
        "trap 'exit 7' 40; echo trapped; while :; do sleep 0.05; done",
    ]);
    d.namespaces = Namespaces(Namespaces::PID | Namespaces::MOUNT);
    let (pid, rd, rep_rd) = spawn_reported(&d, cg.as_fd());
    let mut line = [0u8; 8];
    assert_eq!(rustix::io::read(&rd, &mut line), Ok(8));
    assert_eq!(&line, b"trapped\n");
    crate::sys::signal::kill(pid as i32, 40).unwrap();
    // Not forwarded, the service would never end: fail, not hang.
    assert!(
        !crate::testutil::poll_in(&rep_rd, 10).is_empty(),
        "not forwarded"
    );
    assert_eq!(report_of(&rep_rd), Some(crate::vocab::Exit::Code(7)));
    drop(rep_rd);
    assert_eq!(wait(pid), 7);
}

/// A child's stdin is PID 1's /dev/null (`open_null`), shared, not one it
/// opens: the flag set on PID 1's description shows in the child's, with
/// and without a namespace's reaper between them.
#[test]
fn a_childs_stdin_is_pid1s_dev_null() {
    use rustix::fd::AsFd;
    super::stdio::open_null();
    let null = super::stdio::null().unwrap();
    let flags = rustix::fs::fcntl_getfl(null).unwrap();
    rustix::fs::fcntl_setfl(null, flags | rustix::fs::OFlags::APPEND).unwrap();
    let cg = own_cgroup();
    for ns in [
        Namespaces::NONE,
        Namespaces(Namespaces::PID | Namespaces::MOUNT),
    ] {
        let mut d = unit(&["/bin/sh", "-c", "grep flags /proc/self/fdinfo/0"]);
        d.namespaces = ns;
        let (pid, rd, rep_rd) = spawn_reported(&d, cg.as_fd());
        drop(rep_rd);
        let out = read_all(rd);
        let octal = out.trim().strip_prefix("flags:").unwrap().trim();
        let f = u32::from_str_radix(octal, 8).unwrap();
        assert_ne!(f & 0o2000, 0, "O_APPEND not on the child's stdin: {out}");
        assert_eq!(wait(pid), 0);
    }
}

#[test]
fn a_namespace_setup_failure_is_reported_by_step() {
    let cg = own_cgroup();
    let mut d = unit(&["/bin/true"]);
    d.namespaces = Namespaces(Namespaces::MOUNT);
    d.seldom.root = Some(crate::unit::Text::try_from("/nonexistent-root").unwrap());
    let req = request(&d, cg.as_fd(), Stdio::Null);
    let err = spawn(&req).unwrap_err();
    assert_eq!(
        err.step,
        Step::Namespace(crate::spawn::sandbox::Step::BindRoot)
    );
    assert_eq!(err.errno, Errno::NOENT.raw_os_error());
}

#[test]
fn step_codes_survive_the_status_pipe() {
    for s in Step::PLAIN.iter().copied().chain([
        Step::Fork,
        Step::Namespace(crate::spawn::sandbox::Step::PivotRoot),
        Step::Namespace(crate::spawn::sandbox::Step::ReadOnlyBelow),
    ]) {
        assert_eq!(Step::from_code(s.code()), s);
    }
}

#[test]
fn unit_env_overrides_defaults() {
    let mut d = UnitDef::with_defaults("x");
    d.exec.push("/bin/true").unwrap();
    d.env.push("PATH=/opt/bin").unwrap();
    let fd = rustix::fs::open(".", rustix::fs::OFlags::RDONLY, rustix::fs::Mode::empty()).unwrap();
    let req = Request {
        notify_socket: Some("/run/wren/notify/x"),
        ..request(&d, fd.as_fd(), Stdio::Null)
    };
    let mut env = EnvTable::new();
    build_env(&req, &mut env, None).unwrap();
    let got: Vec<&str> = env.iter().map(|s| s.to_str().unwrap()).collect();
    assert_eq!(
        got,
        [
            "PATH=/opt/bin",
            "HOME=/",
            "TERM=linux",
            "NOTIFY_SOCKET=/run/wren/notify/x"
        ]
    );
}

#[test]
fn a_seccomp_filter_refuses_with_eperm_and_brings_no_new_privs() {
    // Needs no privilege: a filter with no_new_privs is open to anyone.
    let cg = own_cgroup();
    let mut d = unit(&[
        "/bin/sh",
        "-c",
        "grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status; umount /nonexistent-wren 2>&1; echo umount $?",
    ]);
    d.seccomp = crate::unit::parse_seccomp("~@mount").unwrap().map(Box::new);
    let prog = crate::sys::seccomp::Program::build(d.seccomp.as_ref().unwrap()).unwrap();
    let out = output_of(|out| {
        spawn(&Request {
            seccomp: Some(&prog),
            ..request(&d, cg.as_fd(), out)
        })
    });
    assert!(out.contains("NoNewPrivs:\t1\n"), "{out}");
    assert!(out.contains("Seccomp:\t2\n"), "{out}");
    // umount(8) words the EPERM of umount2 its own way ("must be
    // superuser" from util-linux, strerror from BusyBox); unfiltered, a
    // root test would be told the path is not mounted.
    assert!(
        out.contains("Operation not permitted") || out.contains("must be superuser"),
        "{out}"
    );
}

/// `output = console` in a user namespace: the console node (root's,
/// 0600) is refused to the namespace's root, the host's root being
/// unmapped; the child opens it before it becomes that root.
#[test]
fn a_user_namespace_unit_gets_the_console() {
    if !rustix::process::geteuid().is_root() {
        return; // the id maps and the console need root; CI runs as root
    }
    if super::stdio::open_above_2("/dev/console").is_err() {
        return; // no console behind the node (some containers)
    }
    let cg = own_cgroup();
    let mut d = unit(&["/bin/true"]);
    d.namespaces = crate::unit::Namespaces(crate::unit::Namespaces::USER);
    let req = request(&d, cg.as_fd(), Stdio::Console);
    let pid = spawn(&req).unwrap();
    assert_eq!(wait(pid), 0);
}

/// A unit's `user` is looked up by its child, not by the caller (PID 1,
/// which a passwd file on a hung mount would stall): `start` returns with
/// the child whatever the files say, and a lookup that fails comes back
/// through the exec handshake with its reason. One that succeeds runs as
/// the user and gives it the unit's `sd_notify` socket.
#[test]
fn a_units_user_is_looked_up_by_its_child() {
    if !rustix::process::geteuid().is_root() {
        return; // set-id calls need root; CI runs the host tests as root
    }
    let cg = own_cgroup();
    let mut d = unit(&["/bin/sh", "-c", "grep -E '^Uid:' /proc/self/status"]);
    d.seldom.user = Some(crate::unit::IdSpec::Name(
        crate::unit::Text::try_from("wren-no-such-user").unwrap(),
    ));
    crate::sys::slot::reserve().unwrap();
    let p = start(&request(&d, cg.as_fd(), Stdio::Null)).expect("the child is made");
    crate::testutil::poll_in(&p.status, 10);
    let Handshake::Failed(e) = p.poll() else {
        panic!("an unknown user was not refused: {:?}", p.poll());
    };
    assert_eq!(e.step, Step::Ids);
    assert_eq!(e.to_string(), "user not found in /etc/passwd");
    wait(p.pid);

    // nobody, from the host's /etc/passwd, with a socket PID 1 made root's.
    d.seldom.user = Some(crate::unit::IdSpec::Name(
        crate::unit::Text::try_from("nobody").unwrap(),
    ));
    let dir = crate::testutil::TempDir::new("lookup-socket");
    let sock = dir.path().join("s");
    let sock = sock.to_str().unwrap();
    let s = rustix::net::socket(
        rustix::net::AddressFamily::UNIX,
        rustix::net::SocketType::DGRAM,
        None,
    )
    .unwrap();
    rustix::net::bind(&s, &rustix::net::SocketAddrUnix::new(sock).unwrap()).unwrap();
    let out = output_of(|out| {
        spawn(&Request {
            notify_socket: Some(sock),
            ..request(&d, cg.as_fd(), out)
        })
    });
    assert!(out.starts_with("Uid:\t65534\t"), "{out}");
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(sock).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (65534, 65534));
}

/// A child holds PID 1's fds until its exec (thousands at 1,000 units):
/// the unit's own fd limit comes after the child's opens, or each of them
/// (stdio's /dev/null, the passwd file) fails with EMFILE once every
/// number under the limit is taken. In a process of its own: it fills
/// this process's fd table and sets the units' limit.
#[test]
fn a_childs_opens_come_before_the_units_fd_limit() {
    crate::testutil::alone!(a_childs_opens_come_before_the_units_fd_limit);
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let cur = getrlimit(Resource::Nofile);
    let soft = Rlimit {
        current: Some(2048),
        maximum: cur.maximum,
    };
    setrlimit(Resource::Nofile, soft).expect("a hard fd limit of 2048 or more");
    set_unit_nofile(1024, cur.maximum);
    let null = rustix::fs::open(
        "/dev/null",
        rustix::fs::OFlags::RDONLY,
        rustix::fs::Mode::empty(),
    )
    .unwrap();
    let mut held = Vec::new();
    loop {
        let fd = rustix::io::fcntl_dupfd_cloexec(&null, 0).unwrap();
        if rustix::fd::AsRawFd::as_raw_fd(&fd) >= 1024 {
            break;
        }
        held.push(fd);
    }
    let cg = own_cgroup();
    let d = unit(&["/bin/sh", "-c", "grep 'Max open files' /proc/self/limits"]);
    let out = output_of(|out| spawn(&request(&d, cg.as_fd(), out)));
    assert!(out.split_whitespace().any(|w| w == "1024"), "{out}");
}

/// initgroups: a unit's user keeps the supplementary groups it is given
/// (`user = pi` keeps `gpio`, `dialout`, `video`: `config::users` tests
/// the lookup that finds them); a bare uid/gid gets none.
#[test]
fn supplementary_groups_are_set_for_the_user() {
    if !rustix::process::geteuid().is_root() {
        return; // set-id calls need root; CI runs the host tests as root
    }
    let cg = own_cgroup();
    let mut d = unit(&[
        "/bin/sh",
        "-c",
        "grep -E '^(Uid|Gid|Groups):' /proc/self/status",
    ]);
    d.namespaces = crate::unit::Namespaces::NONE;
    let out = output_as_nobody(&d, cg.as_fd(), &[65534, 997, 20, 44]);
    assert!(out.contains("Uid:\t65534\t65534\t65534\t65534\n"), "{out}");
    assert!(out.contains("Gid:\t65534\t65534\t65534\t65534\n"), "{out}");
    assert!(out.contains("Groups:\t20 44 997 65534"), "{out}");
    let out = output_as_nobody(&d, cg.as_fd(), &[]);
    let groups = out.lines().find(|l| l.starts_with("Groups:")).unwrap();
    assert_eq!(groups.trim(), "Groups:", "{out}");
}

/// What `d` writes run as uid and gid 65534 with the supplementary
/// `groups`, once it exited 0.
fn output_as_nobody(d: &UnitDef, cg: BorrowedFd<'_>, groups: &[u32]) -> String {
    output_of(|out| {
        spawn(&Request {
            uid: Some(65534),
            gid: Some(65534),
            groups,
            ..request(d, cg, out)
        })
    })
}

/// What the unit that `start` starts with the given output (a pipe's
/// write end) writes, once it exited 0.
fn output_of(start: impl FnOnce(Stdio<'_>) -> Result<u32, SpawnError>) -> String {
    let (code, out) = exit_and_output(start);
    assert_eq!(code, Some(0), "{out}");
    out
}

/// What `start`'s child wrote to its output pipe, and its exit code
/// (`None` for a signal).
fn exit_and_output(
    start: impl FnOnce(Stdio<'_>) -> Result<u32, SpawnError>,
) -> (Option<i32>, String) {
    let (rd, wr) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
    let pid = start(Stdio::Pipe(wr.as_fd())).unwrap();
    drop(wr);
    let out = read_all(rd);
    (
        crate::testutil::wait_status(pid).unwrap().exit_status(),
        out,
    )
}

fn env_of(req: &Request<'_>, main_pid: Option<u32>) -> Vec<String> {
    let mut env = EnvTable::new();
    build_env(req, &mut env, main_pid).unwrap();
    env.iter().map(|s| s.to_str().unwrap().to_owned()).collect()
}

#[test]
fn watchdog_and_root_units_get_systemds_variables() {
    let fd = rustix::fs::open(".", rustix::fs::OFlags::RDONLY, rustix::fs::Mode::empty()).unwrap();
    let mut d = crate::unit::parse(
        "w",
        "exec = /bin/true\nready = sd_notify\nwatchdog = 2500ms\n",
    )
    .unwrap();
    let req = Request {
        notify_socket: Some("/run/wren/notify/w"),
        ..request(&d, fd.as_fd(), Stdio::Null)
    };
    let env = env_of(&req, Some(42));
    assert!(
        env.contains(&"NOTIFY_SOCKET=/run/wren/notify/w".to_owned()),
        "{env:?}"
    );
    assert!(env.contains(&"WATCHDOG_USEC=2500000".to_owned()), "{env:?}");
    assert!(env.contains(&"WATCHDOG_PID=42".to_owned()), "{env:?}");
    // In the parent the pid is not known yet: no WATCHDOG_PID.
    let env = env_of(&req, None);
    assert!(
        !env.iter().any(|e| e.starts_with("WATCHDOG_PID=")),
        "{env:?}"
    );
    // A `root` unit finds its socket at the fixed path inside its root.
    d.seldom.root = Some(crate::unit::Text::try_from("/srv/x").unwrap());
    d.seldom.watchdog = None;
    let req = Request {
        notify_socket: Some("/run/wren/notify/w"),
        ..request(&d, fd.as_fd(), Stdio::Null)
    };
    let env = env_of(&req, Some(42));
    assert!(
        env.contains(&format!("NOTIFY_SOCKET={}", sandbox::ROOT_NOTIFY_SOCKET)),
        "{env:?}"
    );
    assert!(!env.iter().any(|e| e.starts_with("WATCHDOG_")), "{env:?}");
    // Every extra fits beside a full set of the unit's own variables.
    let mut d =
        crate::unit::parse("w", "exec = /bin/true\nready = sd_notify\nwatchdog = 1s\n").unwrap();
    for i in 0..ENV_MAX {
        d.env.push(&format!("V{i}=1")).unwrap();
    }
    let req = Request {
        notify_socket: Some("/run/wren/notify/w"),
        decided_ns: Some(1),
        ..request(&d, fd.as_fd(), Stdio::Null)
    };
    assert_eq!(env_of(&req, Some(7)).len(), ENV_MAX + ENV_EXTRA);
}

/// A unit's `env` of a readiness variable this start sets is dropped:
/// first in the table, it would win getenv(3) and the readiness would
/// never come. Not set by this start, the unit's own stays.
#[test]
fn the_readiness_variables_are_wrens() {
    let fd = rustix::fs::open(".", rustix::fs::OFlags::RDONLY, rustix::fs::Mode::empty()).unwrap();
    let text = "exec = /bin/true\nready = sd_notify\nwatchdog = 1s\n\
                env = NOTIFY_SOCKET=/elsewhere\nenv = WATCHDOG_USEC=1\nenv = WATCHDOG_PID=1\n\
                env = NOTIFY_FD=9\nenv = KEEP=1\n";
    let d = crate::unit::parse("w", text).unwrap();
    let req = Request {
        notify_socket: Some("/run/wren/notify/w"),
        ..request(&d, fd.as_fd(), Stdio::Null)
    };
    let env = env_of(&req, Some(42));
    let of = |k: &str| -> Vec<&String> { env.iter().filter(|e| e.starts_with(k)).collect() };
    assert_eq!(of("NOTIFY_SOCKET="), ["NOTIFY_SOCKET=/run/wren/notify/w"]);
    assert_eq!(of("WATCHDOG_USEC="), ["WATCHDOG_USEC=1000000"]);
    assert_eq!(of("WATCHDOG_PID="), ["WATCHDOG_PID=42"]);
    // No notify fd in this start: the unit's NOTIFY_FD is its own.
    assert_eq!(of("NOTIFY_FD="), ["NOTIFY_FD=9"]);
    assert_eq!(of("KEEP="), ["KEEP=1"]);
}

#[test]
fn watchdog_pid_is_the_programs_own_pid() {
    let cg = own_cgroup();
    let mut d = unit(&["/bin/sh", "-c", "echo $WATCHDOG_USEC $WATCHDOG_PID $$"]);
    d.ready = crate::unit::Ready::SdNotify;
    d.seldom.watchdog = Some(3_000);
    let (rd, wr) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
    let req = Request {
        notify_socket: Some("/nonexistent/notify"),
        ..request(&d, cg.as_fd(), Stdio::Pipe(wr.as_fd()))
    };
    let pid = spawn(&req).unwrap();
    drop(wr);
    let out = read_all(rd);
    assert_eq!(out.trim(), format!("3000000 {pid} {pid}"));
}

/// A `read_only` unit gets private tmpfs on /tmp and /run, which cover
/// where PID 1 binds notify sockets: its own socket is bound again at the
/// same path, and a datagram sent there reaches the socket PID 1 holds.
#[test]
fn a_read_only_unit_reaches_its_notify_socket_under_its_private_mounts() {
    let dir = std::path::PathBuf::from(format!("/tmp/wren-sdn-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("probe"), "host").unwrap();
    let path = dir.join("sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let cg = own_cgroup();
    let probe = dir.join("probe");
    let script = format!(
        "import os, socket\n\
         s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n\
         s.sendto(b'READY=1', os.environ['NOTIFY_SOCKET'])\n\
         print(os.path.exists('{}'))\n",
        probe.display()
    );
    let mut d = unit(&["/usr/bin/python3", "-c", &script]);
    d.namespaces = Namespaces(Namespaces::MOUNT);
    d.read_only = true;
    let (rd, wr) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
    let req = Request {
        notify_socket: Some(path.to_str().unwrap()),
        ..request(&d, cg.as_fd(), Stdio::Pipe(wr.as_fd()))
    };
    let pid = spawn(&req).unwrap();
    drop(wr);
    let out = read_all(rd);
    assert_eq!(wait(pid), 0, "{out}");
    // The host's /tmp was covered (the probe is not there) ...
    assert_eq!(out.trim(), "False", "{out}");
    // ... and still the message came through.
    let mut buf = [0u8; 64];
    let n = sock.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"READY=1");
    drop(sock);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A start runs on a slot (sharing this memory until its exec) when one is
/// free, and forks when none is; both exec and exit alike.
#[test]
fn a_start_runs_on_a_slot_and_forks_when_none_is_free() {
    let _g = crate::sys::slot::test_lock();
    let d = unit(&["/bin/sh", "-c", "exit 4"]);
    let cg = own_cgroup();
    crate::sys::slot::reserve().unwrap();
    // Other tests' starts take slots too: all held here, one let go.
    let mut held: Vec<_> = (0..crate::sys::slot::SLOTS)
        .map(|_| crate::sys::slot::claim_within(std::time::Duration::from_secs(10)).unwrap())
        .collect();
    drop(held.pop());
    // A start in a test running alongside may take the one free slot first
    // (it holds it only until its exec): then this start forks, and the
    // next try finds the slot free again.
    let on_slot = (0..100).any(|_| {
        let pid = spawn(&request(&d, cg.as_fd(), Stdio::Null)).unwrap();
        let on_slot = crate::sys::slot::ran_on_slot(pid);
        assert_eq!(wait(pid), 4);
        if !on_slot {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        on_slot
    });
    assert!(on_slot, "no start ran on the free slot in 100 tries");
    held.extend(crate::sys::slot::claim_within(
        std::time::Duration::from_secs(10),
    ));
    assert_eq!(held.len(), crate::sys::slot::SLOTS);
    let forked = super::forked();
    let pid = spawn(&request(&d, cg.as_fd(), Stdio::Null)).unwrap();
    assert!(!crate::sys::slot::ran_on_slot(pid));
    // Counted for the boot's "units up" line (other tests' forks may add
    // to it too, never take from it).
    assert!(super::forked() > forked, "a fork not counted");
    assert_eq!(wait(pid), 4);
    drop(held);
}

/// With a PID namespace, the reaper on a slot starts the service on the
/// slot's second stack; the slot comes back once both have exec'd.
#[test]
fn a_reaper_on_a_slot_starts_its_service_and_gives_the_slot_back() {
    let _g = crate::sys::slot::test_lock();
    let mut d = unit(&["/bin/sh", "-c", "echo $$"]);
    d.namespaces = Namespaces(Namespaces::PID | Namespaces::MOUNT);
    let cg = own_cgroup();
    // Starts in tests running alongside hold slots until their exec: when
    // they hold them all, this start forks, and the next try finds one.
    let on_slot = (0..100).any(|_| {
        let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
        let pid = spawn(&request(&d, cg.as_fd(), Stdio::Pipe(w.as_fd()))).unwrap();
        drop(w);
        let on_slot = crate::sys::slot::ran_on_slot(pid);
        // The service is the namespace's second process.
        assert_eq!(read_all(r).trim(), "2");
        wait(pid);
        if !on_slot {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        on_slot
    });
    assert!(on_slot, "no start ran on a slot in 100 tries");
    let held: Vec<_> = (0..crate::sys::slot::SLOTS)
        .map(|_| crate::sys::slot::claim_within(std::time::Duration::from_secs(10)).unwrap())
        .collect();
    assert_eq!(held.len(), crate::sys::slot::SLOTS);
}

/// With as many fds kept as PID 1 keeps for 1,000 units, a start on a
/// slot goes through the trampoline: the child gets only the caller's fds
/// below `LOW_FDS` (an inheritable fd above it does not reach the
/// program), a bare unit and a reaper with its service start as before.
#[test]
fn with_many_kept_fds_a_start_takes_only_the_low_fds() {
    let _g = crate::sys::slot::test_lock();
    crate::sys::slot::reserve().unwrap();
    /// Back to few kept fds however the test ends.
    struct Few;
    impl Drop for Few {
        fn drop(&mut self) {
            set_kept_fds(0);
        }
    }
    set_kept_fds(1000);
    let _few = Few;
    // Not close-on-exec, so that a child with the caller's whole table
    // would keep it past its exec.
    let (keep_r, _keep_w) = rustix::pipe::pipe().unwrap();
    let high = rustix::io::fcntl_dupfd_cloexec(&keep_r, 100).unwrap();
    rustix::io::fcntl_setfd(&high, rustix::io::FdFlags::empty()).unwrap();
    let n = rustix::fd::AsRawFd::as_raw_fd(&high);
    assert!(n >= crate::sys::slot::LOW_FDS as i32);
    let cg = own_cgroup();
    let check = format!("test -e /proc/self/fd/{n} && echo kept || echo gone");
    let bare = unit(&["/bin/sh", "-c", &check]);
    let mut iso = unit(&["/bin/sh", "-c", "echo $$"]);
    iso.namespaces = Namespaces(Namespaces::PID | Namespaces::MOUNT);
    // Starts in tests alongside may hold every slot, or the trampoline, a
    // moment (the start then forks or clones directly, with the whole
    // table): a few tries.
    let mut outs = (None, None);
    for _ in 0..100 {
        let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
        let pid = spawn(&request(&bare, cg.as_fd(), Stdio::Pipe(w.as_fd()))).unwrap();
        drop(w);
        let out = read_all(r);
        assert_eq!(wait(pid), 0);
        let gone = out.trim() == "gone";
        outs.0 = Some(out);
        if gone {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    for _ in 0..100 {
        let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
        let pid = spawn(&request(&iso, cg.as_fd(), Stdio::Pipe(w.as_fd()))).unwrap();
        drop(w);
        let out = read_all(r);
        wait(pid);
        if crate::sys::slot::ran_on_slot(pid) {
            outs.1 = Some(out);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(outs.0.as_deref().map(str::trim), Some("gone"));
    // The service is the namespace's second process, its reaper the first.
    assert_eq!(outs.1.as_deref().map(str::trim), Some("2"));
}

/// A namespace's reaper on a restart's grace sleeps on its slot after its
/// service's exec: by the time PID 1 sees that exec, the reaper no longer
/// counts as reading PID 1's data, so a reload's wait for the slots
/// (`slot::quiesce`) does not kill it, and its running service with it.
#[test]
fn a_reaper_reads_nothing_of_pid1_once_its_service_execd() {
    // Not while a test holds every slot (then this start forks).
    let _g = crate::sys::slot::test_lock();
    a_slot_free();
    let cg = own_cgroup();
    let mut d = unit(&["/bin/sleep", "30"]);
    d.namespaces = Namespaces(Namespaces::PID | Namespaces::MOUNT);
    let (_rep_rd, rep_wr) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
    let req = Request {
        exit_report: Some(rep_wr.as_fd()),
        grace: true,
        ..request(&d, cg.as_fd(), Stdio::Null)
    };
    let pid = spawn(&req).unwrap();
    let reading = crate::sys::slot::reading(pid);
    let on_slot = crate::sys::slot::ran_on_slot(pid);
    let p = rustix::process::Pid::from_raw(pid as i32).unwrap();
    let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
    let _ = crate::testutil::wait_status(pid);
    assert!(on_slot, "not started on a slot");
    assert!(
        !reading,
        "counted as reading PID 1's data after its service's exec"
    );
}

/// A failed execve under an allow list is reported as failed: the child's
/// report to PID 1 is a `write`, which `@default` allows (without it the
/// filter refused the report, and the end of the status pipe read as an
/// exec that worked).
#[test]
fn a_failed_exec_under_an_allow_list_is_reported() {
    let cg = own_cgroup();
    let mut d = unit(&["/nonexistent-wren"]);
    d.seccomp = crate::unit::parse_seccomp("@network-io")
        .unwrap()
        .map(Box::new);
    let prog = crate::sys::seccomp::Program::build(d.seccomp.as_ref().unwrap()).unwrap();
    let req = Request {
        seccomp: Some(&prog),
        ..request(&d, cg.as_fd(), Stdio::Null)
    };
    let err = spawn(&req).unwrap_err();
    assert_eq!((err.step, err.errno), (Step::Exec, 2));
}

/// An allow list without the calls a dynamically linked program's loader
/// makes ends it with 127 and not a word (`initctl check` warns of it);
/// with `@basic-io @file-system` beside it, as the warning says, it runs.
#[test]
fn a_dynamic_program_needs_its_loaders_calls_in_an_allow_list() {
    let cg = own_cgroup();
    let run = |list: &str| {
        let mut d = unit(&["/bin/echo", "up"]);
        d.seccomp = crate::unit::parse_seccomp(list).unwrap().map(Box::new);
        let prog = crate::sys::seccomp::Program::build(d.seccomp.as_ref().unwrap()).unwrap();
        exit_and_output(|out| {
            spawn(&Request {
                seccomp: Some(&prog),
                ..request(&d, cg.as_fd(), out)
            })
        })
    };
    assert_eq!(run("@network-io"), (Some(127), String::new()));
    assert_eq!(
        run("@network-io @basic-io @file-system"),
        (Some(0), "up\n".into())
    );
}

/// A user (not root) with `capabilities = all` gets them, as the ambient
/// set a non-root program needs: all the starting process holds.
#[test]
fn a_user_with_all_capabilities_gets_them() {
    if !rustix::process::geteuid().is_root() {
        return; // set-id calls need root; CI runs the host tests as root
    }
    let cg = own_cgroup();
    let d = crate::unit::parse(
        "t",
        "exec = /bin/sh -c \"grep -E '^Cap(Eff|Amb)' /proc/self/status\"\n\
         user = 65534\ncapabilities = all\nnamespaces = none\n",
    )
    .unwrap();
    let out = output_as_nobody(&d, cg.as_fd(), &[]);
    let held = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .unwrap_or(0)
    };
    assert_ne!(held("CapAmb:"), 0, "{out}");
    assert_eq!(held("CapAmb:"), held("CapEff:"), "{out}");
}

/// A unit running as root without CAP_SYS_ADMIN and without a `root` of
/// its own finds `/proc/sys` (but `/proc/sys/net`, where the kernel checks
/// CAP_NET_ADMIN) and the cgroup tree read-only: those files check the
/// writer's uid alone, so it could set `kernel.core_pattern` (a program
/// run as the host's root) or move itself out of its cgroup. With the
/// capability (the default, all) they are as they were. Each write puts
/// back the value read.
#[test]
fn a_root_unit_without_sys_admin_cannot_write_sysctls_or_cgroups() {
    if !rustix::process::geteuid().is_root() {
        return; // mounts need root; CI runs the host tests as root
    }
    let script = "for f in /proc/sys/kernel/printk_ratelimit /proc/sys/net/ipv4/ip_forward; do \
        (cat $f > $f) 2>/dev/null && echo w || echo r; done; \
        rel=$(sed -n 's/^0:://p' /proc/self/cgroup); \
        d=$(awk '$3 == \"cgroup2\" {print $2; exit}' /proc/self/mounts); \
        (echo $$ > $d$rel/cgroup.procs) 2>/dev/null && echo w || echo r";
    let guarded = script_says("namespaces = mount\ncapabilities = net_admin\n", script);
    assert_eq!(guarded, "r w r", "kernel sysctl, net sysctl, cgroup.procs");
    assert_eq!(script_says("namespaces = mount\n", script), "w w w");
    // Without net_admin the host's net sysctls are read-only too: there
    // the kernel checks the writer's uid for most of them, not the
    // capability (each write puts back the value read).
    let net = "for f in ip_unprivileged_port_start conf/all/accept_redirects; do \
        (cat /proc/sys/net/ipv4/$f > /proc/sys/net/ipv4/$f) 2>/dev/null && echo w || echo r; done";
    assert_eq!(
        script_says("namespaces = mount\ncapabilities = none\n", net),
        "r r"
    );
    assert_eq!(
        script_says("namespaces = mount net\ncapabilities = none\n", net),
        "w w"
    );
}

/// A host directory the `root` tests' units run in: /usr bound into it,
/// with the links a merged-/usr host has. Made in the mount namespace of
/// the test's process of its own (`run_alone_after_mounting`).
const IMAGE: &str = "/tmp/wren-test-image";

/// True in the test's process of its own, where `IMAGE` is made; false
/// in the caller (the test ran there), and where mounts cannot be made
/// (not root; CI runs the host tests as root).
fn alone_in_image(test: &str) -> bool {
    crate::testutil::run_alone_after_mounting(module_path!(), test, &image_mounts())
}

fn image_mounts() -> String {
    format!(
        "mkdir -p {IMAGE}/usr {IMAGE}/proc {IMAGE}/dev {IMAGE}/tmp \
         && ln -sfn usr/bin {IMAGE}/bin && ln -sfn usr/lib {IMAGE}/lib \
         && ln -sfn usr/lib64 {IMAGE}/lib64 && mount --bind /usr {IMAGE}/usr"
    )
}

/// A `root` unit (a container) running as root without any capability
/// cannot write what runc makes read-only for one (`/proc/irq`,
/// `/proc/bus/pci`: a PCI device's configuration space, the Pi 4's USB
/// controller), nor change the host's device nodes bound into its `/dev`
/// (they are the host's inodes: `chmod 0 /dev/null` broke every other
/// process). Each probe opens for writing and writes nothing, and
/// `chmod 666 /dev/null` is the mode it has.
#[test]
fn a_root_container_cannot_touch_the_hosts_kernel_files_or_device_nodes() {
    if !alone_in_image("a_root_container_cannot_touch_the_hosts_kernel_files_or_device_nodes") {
        return;
    }
    let script = "pci=$(ls -d /proc/bus/pci/*/* 2>/dev/null | head -n1); \
        for f in /proc/irq/default_smp_affinity ${pci:-/proc/irq/default_smp_affinity}; do \
        (: >> $f) 2>/dev/null && echo w || echo r; done; \
        chmod 666 /dev/null 2>/dev/null && echo w || echo r; \
        echo x > /dev/null && echo written";
    let keys = format!("root = {IMAGE}\ncapabilities = none\n");
    assert_eq!(script_says(&keys, script), "r r r written");
}

/// The tmpfs mounts a unit gets of its own are bounded (here a `root`
/// unit's `/dev/shm` and `/tmp`), not half the RAM each: their pages are
/// in no process's RSS.
#[test]
fn a_units_own_tmpfs_mounts_are_bounded() {
    if !alone_in_image("a_units_own_tmpfs_mounts_are_bounded") {
        return;
    }
    let script = "for d in /dev/shm /tmp; do echo $(stat -f -c '%b' $d); done; \
        grep MemTotal /proc/meminfo | tr -dc 0-9; echo; stat -f -c '%S' /tmp";
    let keys = format!("root = {IMAGE}\n");
    let got = script_says(&keys, script);
    let n: Vec<u64> = got.split(' ').map(|w| w.parse().unwrap()).collect();
    let (shm, tmp, total_kib, block) = (n[0], n[1], n[2], n[3]);
    for blocks in [shm, tmp] {
        let kib = blocks * block / 1024;
        assert!(
            kib <= total_kib / 5 + block / 1024,
            "{kib} KiB of {total_kib}: {got}"
        );
    }
}

/// What `script` (sh) prints, its words joined by a space, run as a unit
/// of `keys` in this process's cgroup.
fn script_says(keys: &str, script: &str) -> String {
    let cg = own_cgroup();
    let mut d = crate::unit::parse("t", &format!("exec = /bin/true\n{keys}")).unwrap();
    d.exec = unit(&["/bin/sh", "-c", script]).exec;
    let (rd, wr) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
    let pid = spawn(&request(&d, cg.as_fd(), Stdio::Pipe(wr.as_fd()))).unwrap();
    drop(wr);
    let out = read_all(rd);
    assert_eq!(wait(pid), 0);
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The same for a mount below `/proc/sys`: binfmt_misc takes a
/// `register` from root without a capability (the interpreter it names
/// then runs for whoever execs a matching file, the host's root). Only
/// the top of `/proc/sys` was made read-only. Alone, in a mount
/// namespace of its own with a tmpfs standing in for binfmt_misc.
#[test]
fn a_root_unit_without_sys_admin_cannot_write_below_proc_sys() {
    let binfmt = "/proc/sys/fs/binfmt_misc";
    let mount = format!("mount -t tmpfs none {binfmt} && : > {binfmt}/register");
    crate::testutil::alone_after_mounting!(
        a_root_unit_without_sys_admin_cannot_write_below_proc_sys,
        &mount
    );
    let script = format!("(: >> {binfmt}/register) 2>/dev/null && echo w || echo r");
    let without = "namespaces = mount\ncapabilities = net_admin\n";
    assert_eq!(script_says(without, &script), "r");
    assert_eq!(script_says("namespaces = mount\n", &script), "w");
}

/// `read_only = yes`: the unit sees `/` read-only, a file system mounted
/// below it too (a data partition: here a tmpfs at /mnt, in a mount
/// namespace of this test's own); the kernel's own stay as they are
/// (`/dev/null`, `/proc/self/oom_score_adj`). The partition stayed
/// writable.
#[test]
fn a_read_only_unit_sees_every_mount_below_root_read_only() {
    crate::testutil::alone_after_mounting!(
        a_read_only_unit_sees_every_mount_below_root_read_only,
        "mount -t tmpfs none /mnt"
    );
    let script = "for f in /mnt/probe /dev/null /proc/self/oom_score_adj; do \
        (echo 0 > $f) 2>/dev/null && echo w || echo r; done";
    let got = script_says("namespaces = mount\nread_only = yes\n", script);
    assert_eq!(got, "r w w", "/mnt (a partition), /dev/null, /proc");
    // This test's own namespace: /mnt is writable where the unit is not.
    std::fs::write("/mnt/probe", "0").unwrap();
}

/// A mount no path of the unit's reaches does not fail a `read_only`
/// start: one mounted over (/mnt/a under a second /mnt), one below a
/// directory the unit's user may not enter (a user namespace's root is
/// not the host's). What it reaches is read-only.
#[test]
fn a_read_only_unit_starts_beside_mounts_it_cannot_reach() {
    let mounts = "mount -t tmpfs none /mnt && mkdir /mnt/a && mount -t tmpfs none /mnt/a \
        && mount -t tmpfs none /mnt && mkdir -p /mnt/private/keys && chmod 700 /mnt/private \
        && mount -t tmpfs none /mnt/private/keys";
    crate::testutil::alone_after_mounting!(
        a_read_only_unit_starts_beside_mounts_it_cannot_reach,
        mounts
    );
    let script = "(echo 0 > /mnt/probe) 2>/dev/null && echo w || echo r";
    let plain = "namespaces = mount\nread_only = yes\n";
    assert_eq!(script_says(plain, script), "r");
    let user = "namespaces = user mount\nuser_map = 300000 10\nread_only = yes\n";
    assert_eq!(script_says(user, script), "r");
}

/// Once PID 1 raised its own `RLIMIT_NOFILE` for its units' fds, a unit
/// starts with the soft limit PID 1 had (as systemd's get 1024), not with
/// PID 1's thousands; the hard limit stays.
#[test]
fn a_unit_gets_the_soft_fd_limit_pid1_started_with() {
    use rustix::process::{getrlimit, Resource};
    let hard = getrlimit(Resource::Nofile).maximum;
    set_unit_nofile(1000, hard);
    let cg = own_cgroup();
    let d = unit(&["/bin/sh", "-c", "ulimit -n; ulimit -Hn"]);
    let (rd, wr) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
    let pid = spawn(&request(&d, cg.as_fd(), Stdio::Pipe(wr.as_fd()))).unwrap();
    drop(wr);
    let out = read_all(rd);
    assert_eq!(wait(pid), 0);
    let hard = hard.map_or("unlimited".to_string(), |h| h.to_string());
    // 1000, or 1024 if a PID 1 of another test raised its limit first.
    let soft = UNIT_NOFILE.load(core::sync::atomic::Ordering::Relaxed);
    assert!(soft == 1000 || soft == 1024, "{soft}");
    assert_eq!(out, format!("{soft}\n{hard}\n"));
}

/// A reaper on a slot that may restart its service in place keeps what
/// it needs of the definition (its `restart`, privileges, workdir) on its
/// own stack before it tells PID 1 it is detached: a reload, which waits
/// for busy slots only until then (`quiesce`), may free the unit table
/// under it. Here the table is a block of its own mapping, freed once the
/// slot is clear: the reaper read it after, and died of SIGSEGV (a review
/// found it; before 5.16 a core dump there took PID 1 with it).
#[test]
fn a_detached_reaper_reads_nothing_of_the_table_a_reload_frees() {
    // Not while a test holds every slot (then this start forks).
    let _g = crate::sys::slot::test_lock();
    crate::sys::slot::reserve().unwrap();
    let mut on_slot = 0;
    for _ in 0..3 {
        let cg = own_cgroup();
        let mut d = unit(&["/bin/sleep", "30"]);
        d.namespaces = Namespaces(Namespaces::PID | Namespaces::MOUNT);
        // The definition in a mapping of its own, unmapped when freed.
        let table = crate::sys::alloc::OwnMapping::new(d);
        let (_rep_rd, rep_wr) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
        let pid = {
            let req = Request {
                exit_report: Some(rep_wr.as_fd()),
                grace: true,
                relaunch: true,
                ..request(&table, cg.as_fd(), Stdio::Null)
            };
            spawn(&req).unwrap()
        };
        on_slot += usize::from(crate::sys::slot::ran_on_slot(pid));
        // What a reload does before it changes the table.
        assert!(crate::sys::slot::quiesce(
            std::time::Duration::from_secs(5),
            &mut |_| {}
        ));
        drop(table);
        // Past the restart's grace, and the reaper's settling after it.
        std::thread::sleep(std::time::Duration::from_millis(200));
        let p = rustix::process::Pid::from_raw(pid as i32).unwrap();
        let alive = rustix::process::test_kill_process(p).is_ok();
        let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
        let st = crate::testutil::wait_status(pid).unwrap();
        assert!(alive, "the reaper died: {:?}", st.terminating_signal());
        assert_eq!(st.terminating_signal(), Some(libc::SIGKILL));
    }
    // Starts in tests alongside take slots for a moment too.
    assert!(on_slot > 0, "no start ran on a slot");
}

/// The same before the detach: a reaper keeps what it needs of its
/// unit's definition before its service exists. The service's failure
/// report reaches PID 1, which may revert the unit's probation (another
/// definition in place of this one) while the reaper, woken by the
/// service's exit, has yet to read it. Here this thread plays a PID 1
/// woken first (`SCHED_FIFO` on one CPU, in a thread of its own) and frees
/// the definition as soon as it has the report: a reaper that copied it
/// after its vfork (as this round's first fix did; the code before read
/// it there only for a restart in place) died of SIGSEGV every time.
#[test]
fn a_reaper_reads_nothing_of_its_definition_once_its_service_failed() {
    crate::sys::slot::reserve().unwrap();
    std::thread::spawn(|| {
        // Taken by the thread that starts: the slots are its alone.
        let _g = crate::sys::slot::test_lock();
        // One CPU of those this thread may run on.
        let mine = rustix::thread::sched_getaffinity(None).unwrap();
        let cpu = (0..rustix::thread::CpuSet::MAX_CPU)
            .find(|&c| mine.is_set(c))
            .unwrap();
        let mut one = rustix::thread::CpuSet::new();
        one.set(cpu);
        rustix::thread::sched_setaffinity(None, &one).unwrap();
        crate::sys::sched::fifo().unwrap();
        let mut on_slot = 0;
        for _ in 0..4 {
            let cg = own_cgroup();
            let mut d = unit(&["/nonexistent/wren-test"]);
            d.namespaces = Namespaces(Namespaces::PID | Namespaces::MOUNT);
            // The definition in a mapping of its own, unmapped when freed.
            let table = crate::sys::alloc::OwnMapping::new(d);
            let (_rd, wr) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
            let req = Request {
                exit_report: Some(wr.as_fd()),
                ..request(&table, cg.as_fd(), Stdio::Null)
            };
            let p = start(&req).unwrap();
            on_slot += usize::from(crate::sys::slot::ran_on_slot(p.pid));
            let said = loop {
                match p.poll() {
                    Handshake::Waiting => crate::testutil::poll_in(&p.status, 1),
                    h => break h,
                };
            };
            assert!(matches!(said, Handshake::Failed(_)), "{said:?}");
            drop(table);
            let st = crate::testutil::wait_status(p.pid).unwrap();
            assert_eq!(st.terminating_signal(), None, "the reaper died");
        }
        assert!(on_slot > 0, "no start ran on a slot");
    })
    .join()
    .unwrap();
}

/// Without PID 1's /dev/null (boot could not open it: each unit's start
/// opens its own), a namespace's reaper does not keep PID 1's fd 0 (the
/// console at boot): it opens one of its own. Alone: PID 1's /dev/null
/// is given up for the whole process.
#[test]
fn a_reaper_without_pid1s_dev_null_keeps_none_of_pid1s_stdio() {
    crate::testutil::alone!(a_reaper_without_pid1s_dev_null_keeps_none_of_pid1s_stdio);
    super::stdio::NULL.give_up();
    assert!(super::stdio::null().is_none());
    let cg = own_cgroup();
    let mut d = unit(&["/bin/sh", "-c", "exit 0"]);
    d.namespaces = Namespaces(Namespaces::PID | Namespaces::MOUNT);
    let dir = crate::testutil::TempDir::new("reaper-stdio-nonull");
    let console = std::fs::File::create(dir.join("console")).unwrap();
    let (pid, _out, report) = spawn_reported_with_fd0(&d, cg.as_fd(), console.as_fd());
    assert_eq!(report_of(&report), Some(crate::vocab::Exit::Code(0)));
    let fd0 = std::fs::read_link(format!("/proc/{pid}/fd/0")).unwrap();
    drop(report);
    let _ = wait(pid);
    assert_eq!(fd0, std::path::Path::new("/dev/null"), "the reaper's fd 0");
}

/// A unit's mount namespace is a one-way copy of PID 1's (`/` shared, as
/// PID 1 makes it at boot): a file system the host mounts after the
/// unit's start reaches it, and one the host unmounts leaves it. Private,
/// the unit never saw the first and kept the second mounted (alive,
/// unsynced) after the operator's `umount`. Alone, in a mount namespace
/// of its own with `/` shared and a tmpfs at /mnt.
#[test]
fn a_units_mounts_follow_the_hosts() {
    let setup = "mount --make-rshared / && mount -t tmpfs none /mnt \
        && mkdir /mnt/late /mnt/gone && mount -t tmpfs gone /mnt/gone";
    crate::testutil::alone_after_mounting!(a_units_mounts_follow_the_hosts, setup);
    // Up, then waits (5 s at most) for both changes to reach it.
    let script = "echo up; i=0; while [ $i -lt 100 ]; do \
        late=$(grep -c ' /mnt/late ' /proc/self/mountinfo); \
        gone=$(grep -c ' /mnt/gone ' /proc/self/mountinfo); \
        [ $late = 1 ] && [ $gone = 0 ] && break; sleep 0.05; i=$((i + 1)); done; \
        echo late=$late gone=$gone";
    let mut d = unit(&["/bin/sh", "-c", script]);
    d.namespaces = Namespaces(Namespaces::MOUNT);
    let host = "mount -t tmpfs late /mnt/late && umount /mnt/gone";
    assert_eq!(said_after_host(&d, host), "late=1 gone=0");
}

/// A file system the host mounts after the start of a root unit without
/// `sys_admin` under its read-only `/proc/sys` (binfmt_misc: its
/// `register` names an interpreter the kernel runs as the host's root)
/// stays out of the read-only tree: a bind of the unit's slave mounts was
/// a slave too, and the mount arrived in it writable. Alone, in a mount
/// namespace of its own with `/` shared, as PID 1 makes it.
#[test]
fn a_later_mount_does_not_reach_a_units_read_only_proc_sys() {
    crate::testutil::alone_after_mounting!(
        a_later_mount_does_not_reach_a_units_read_only_proc_sys,
        "mount --make-rshared /"
    );
    let binfmt = "/proc/sys/fs/binfmt_misc";
    // Up, then waits (5 s at most) for the host's mount to reach the
    // unit's namespace at all (its /proc, under the read-only bind).
    let script = format!(
        "echo up; i=0; while [ $i -lt 100 ]; do \
         [ $(grep -c ' {binfmt} ' /proc/self/mountinfo) -ge 1 ] && break; \
         sleep 0.05; i=$((i + 1)); done; \
         echo seen=$(grep -c ' {binfmt} ' /proc/self/mountinfo); \
         (: >> {binfmt}/register) 2>/dev/null && echo w || echo r"
    );
    let keys = "exec = /bin/true\nnamespaces = mount\ncapabilities = none\n";
    let mut d = crate::unit::parse("t", keys).unwrap();
    d.exec = unit(&["/bin/sh", "-c", &script]).exec;
    let host = format!("mount -t tmpfs none {binfmt} && : > {binfmt}/register");
    assert_eq!(said_after_host(&d, &host), "seen=1 r");
}

/// What unit `d` (a script that says `up` first) says, its words joined
/// by a space, when the host ran `host` (sh) once it was up.
fn said_after_host(d: &UnitDef, host: &str) -> String {
    let cg = own_cgroup();
    let (rd, wr) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
    let pid = spawn(&request(d, cg.as_fd(), Stdio::Pipe(wr.as_fd()))).unwrap();
    drop(wr);
    let mut out = std::io::BufReader::new(std::fs::File::from(rd));
    let mut up = String::new();
    std::io::BufRead::read_line(&mut out, &mut up).unwrap();
    assert_eq!(up, "up\n");
    let ok = std::process::Command::new("sh")
        .args(["-c", host])
        .status()
        .unwrap();
    assert!(ok.success(), "{host}");
    let mut said = String::new();
    std::io::Read::read_to_string(&mut out, &mut said).unwrap();
    assert_eq!(wait(pid), 0);
    said.split_whitespace().collect::<Vec<_>>().join(" ")
}
