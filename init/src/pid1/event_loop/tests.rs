use super::all_settled;
use crate::supervisor::{Actions, Event, Supervisor};
use crate::unit::UnitDef;
use crate::vocab::Exit;

fn spawned(sup: &mut Supervisor, unit: u16, pid: u32) {
    let mut out = Actions::for_units(4);
    sup.step(1_000, Event::spawned(unit, pid), &mut out);
}

/// The debug line's token list reads as the `Debug` list it replaced.
#[test]
fn a_batch_prints_as_its_debug_list() {
    for batch in [
        &[][..],
        &[(1, false)],
        &[(1 << 32, true), (4, false), (7, true)],
    ] {
        assert_eq!(super::Batch(batch).to_string(), format!("{batch:?}"));
    }
}

/// Output tokens go after the others (a death's SIGCHLD and reports
/// before the end of its output pipe), each group in epoll's order.
#[test]
fn a_batch_serves_the_units_output_last() {
    use super::{in_turn, TOKEN_EXEC, TOKEN_LOG, TOKEN_REPORT, TOKEN_SIGNAL};
    let batch = [
        (TOKEN_LOG + 3, false),
        (TOKEN_SIGNAL, false),
        (TOKEN_LOG, true),
        (TOKEN_REPORT + 3, false),
        (TOKEN_EXEC + 1, false),
    ];
    let order: Vec<u64> = in_turn(&batch).map(|&(t, _)| t).collect();
    assert_eq!(
        order,
        [
            TOKEN_SIGNAL,
            TOKEN_REPORT + 3,
            TOKEN_EXEC + 1,
            TOKEN_LOG + 3,
            TOKEN_LOG
        ]
    );
    assert_eq!(in_turn(&batch).filter(|&&(_, e)| e).count(), 1);
}

/// The look goes on from where it stopped, and one that reaches the
/// end checks the units before it again.
#[test]
fn all_settled_resumes_and_rechecks_the_units_before() {
    let mut sup = Supervisor::new();
    for n in ["a", "b", "c"] {
        let mut d = UnitDef::with_defaults(n);
        d.exec.push("/bin/true").unwrap();
        d.restart_delay = 1_000;
        sup.add(d).unwrap();
    }
    sup.link().unwrap();
    let mut out = Actions::for_units(4);
    sup.step(1_000, Event::Boot, &mut out);
    let mut from = 0;
    assert!(!all_settled(&sup, &mut from));
    assert_eq!(from, 0);
    spawned(&mut sup, 0, 10);
    spawned(&mut sup, 2, 12);
    assert!(!all_settled(&sup, &mut from));
    assert_eq!(from, 1, "a is up, b is not");
    // a dies (backing off: not settled) while b comes up.
    let mut out = Actions::for_units(4);
    sup.step(
        1_000,
        Event::Exited {
            pid: 10,
            exit: Exit::Signal(9),
        },
        &mut out,
    );
    spawned(&mut sup, 1, 11);
    assert!(!all_settled(&sup, &mut from), "a is backing off");
    assert_eq!(from, 0);
    let mut out = Actions::for_units(4);
    sup.step(3_000, Event::Tick, &mut out);
    spawned(&mut sup, 0, 13);
    assert!(all_settled(&sup, &mut from));
}

/// A unit a reload removed, once stopped, lets go of its output ring
/// (nothing can read it any more) and the read end of its pipe; removals
/// are looked for at the wake-ups while one is pending, not after.
#[test]
fn a_removed_unit_lets_go_of_its_ring_and_pipe() {
    use super::super::tests::{step, with_web, NO_PID};
    let mut p = with_web();
    p.fit_tables();
    step(&mut p, 0, Event::Boot);
    step(&mut p, 1, Event::spawned(0, NO_PID));
    p.edges[0].log = crate::log_ring::LogRing::with_capacity(4096);
    p.edges[0].log.push(b"hello\n");
    let (rd, _wr) = rustix::pipe::pipe().unwrap();
    p.edges[0].log_rd = Some(rd);
    let mut out = Actions::for_units(4);
    p.sup
        .reload(2, &mut Vec::new().into_iter(), &|_| false, &mut out);
    p.removing = true;
    p.forget_cgroups();
    assert!(p.edges[0].log.is_allocated(), "still stopping: kept");
    assert!(p.removing, "no longer looked for while it stops");
    let exit = Exit::Signal(15);
    step(&mut p, 3, Event::Exited { pid: NO_PID, exit });
    p.forget_cgroups();
    assert!(!p.edges[0].log.is_allocated(), "the ring is kept");
    assert!(p.edges[0].log_rd.is_none(), "the pipe is kept");
    assert!(!p.removing, "looked for at every wake-up once gone");
}

/// A removed unit's output pipe leaves the epoll set before PID 1
/// closes it: a copy of it elsewhere (the fd table of a child stuck
/// before its exec: here a dup) kept the registration, which nothing
/// could delete once PID 1's fd was gone, and the pipe, at its end,
/// woke every turn of the loop (1,000 of 1,000 wake-ups) until that
/// copy closed.
#[test]
fn a_removed_units_pipe_leaves_the_epoll_set_before_it_closes() {
    use super::super::tests::{step, with_web, NO_PID};
    let mut p = with_web();
    p.fit_tables();
    let ep = rustix::event::epoll::create(rustix::event::epoll::CreateFlags::CLOEXEC).unwrap();
    step(&mut p, 0, Event::Boot);
    step(&mut p, 1, Event::spawned(0, NO_PID));
    let (rd, wr) = rustix::pipe::pipe().unwrap();
    let copy = rustix::io::dup(&rd).unwrap();
    p.edges[0].log_rd = super::watch(&ep, rd, super::TOKEN_LOG);
    p.epoll = Some(ep);
    let mut out = Actions::for_units(4);
    p.sup
        .reload(2, &mut Vec::new().into_iter(), &|_| false, &mut out);
    p.removing = true;
    let exit = Exit::Signal(15);
    step(&mut p, 3, Event::Exited { pid: NO_PID, exit });
    p.forget_cgroups();
    assert!(p.edges[0].log_rd.is_none());
    drop(wr);
    let zero = rustix::event::Timespec::default();
    let ready = super::ready(p.epoll.as_ref().unwrap(), Some(&zero)).unwrap();
    assert!(ready.is_empty(), "woken by a pipe PID 1 closed: {ready:?}");
    drop(copy);
}

/// Every per-unit token says its source and unit alone, as `dispatch`
/// reads it (each base in turn): no unit's is a fixed source's token or
/// another base's, whatever the unit's index.
#[test]
fn a_units_token_names_its_source_and_unit_alone() {
    use super::*;
    let fixed = [TOKEN_SIGNAL, TOKEN_TIMER, TOKEN_CONTROL, TOKEN_SHED];
    let bases = [
        TOKEN_LOG,
        TOKEN_NOTIFY,
        TOKEN_PRESSURE,
        TOKEN_EXEC,
        TOKEN_CGEVENTS,
        TOKEN_REPORT,
        TOKEN_NOTIFY_READ,
    ];
    for base in bases {
        for u in [0, 1, 4, u16::MAX] {
            let tok = base + u64::from(u);
            assert!(!fixed.contains(&tok), "{base:#x} + {u}");
            for other in bases {
                let want = (other == base).then_some(u);
                assert_eq!(unit_of(tok, other), want, "{base:#x} + {u} as {other:#x}");
            }
        }
    }
}

/// A run's readiness fd leaves the epoll set before it is closed: a copy
/// of it elsewhere (here a dup) would keep a registration nothing could
/// delete.
#[test]
fn a_readiness_fd_leaves_the_epoll_set_before_it_closes() {
    let ep = rustix::event::epoll::create(rustix::event::epoll::CreateFlags::CLOEXEC).unwrap();
    let (rd, _wr) = rustix::pipe::pipe().unwrap();
    let copy = rustix::io::dup(&rd).unwrap();
    let rd = super::watch(&ep, rd, super::TOKEN_NOTIFY);
    assert_eq!(crate::testutil::epoll_watches(&ep).len(), 1);
    super::unwatch_notify(Some(&ep), rd);
    assert_eq!(crate::testutil::epoll_watches(&ep), []);
    drop(copy);
}

/// What epoll has ready, by token, with whether it reported an error: a
/// pipe with data is ready, a pipe's write end with no reader left is in
/// error; an fd with nothing is not there.
#[test]
fn a_wake_ups_tokens_say_which_fd_is_ready_and_which_in_error() {
    use rustix::event::epoll;
    use rustix::pipe::pipe;
    let ep = epoll::create(epoll::CreateFlags::CLOEXEC).unwrap();
    let (data_rd, data_wr) = pipe().unwrap();
    let (quiet_rd, _quiet_wr) = pipe().unwrap();
    let (orphan_rd, orphan_wr) = pipe().unwrap();
    rustix::io::write(&data_wr, b"x").unwrap();
    drop(orphan_rd);
    let add = |fd: &rustix::fd::OwnedFd, token: u64| {
        let data = epoll::EventData::new_u64(token);
        epoll::add(&ep, fd, data, epoll::EventFlags::IN).unwrap();
    };
    add(&data_rd, 10);
    add(&quiet_rd, 11);
    add(&orphan_wr, 12);
    let zero = rustix::event::Timespec::default();
    let mut tokens = super::ready(&ep, Some(&zero)).unwrap();
    tokens.sort_unstable();
    assert_eq!(tokens, [(10, false), (12, true)]);
}

/// The loop's set: the signalfd, the timer and the control socket, each
/// under its token; the first two read without blocking (the loop reads
/// them when epoll says so, and once more to be sure) and kept from the
/// units' children. In a mount namespace of its own with a /run of its
/// own, where the control socket is bound.
#[test]
fn the_loop_watches_signals_the_timer_and_the_control_socket() {
    use rustix::fd::{AsFd, AsRawFd};
    crate::testutil::alone_after_mounting!(
        the_loop_watches_signals_the_timer_and_the_control_socket,
        "mount -t tmpfs tmpfs /run"
    );
    let mut p = super::super::tests::with_web();
    p.setup_loop(&nix::sys::signal::SigSet::empty()).unwrap();
    let fd = |f: rustix::fd::BorrowedFd<'_>| f.as_raw_fd();
    let mut want = [
        (fd(p.sigfd.as_ref().unwrap().as_fd()), super::TOKEN_SIGNAL),
        (fd(p.timer.as_ref().unwrap().as_fd()), super::TOKEN_TIMER),
        (fd(p.control.as_ref().unwrap().fd()), super::TOKEN_CONTROL),
    ];
    want.sort_unstable();
    let ep = p.epoll.as_ref().unwrap();
    assert_eq!(crate::testutil::epoll_tokens(ep), want);
    assert!(std::path::Path::new(crate::vocab::CONTROL_SOCKET).exists());
    crate::testutil::assert_nonblocking_cloexec(p.sigfd.as_ref().unwrap());
    crate::testutil::assert_nonblocking_cloexec(p.timer.as_ref().unwrap());
}

/// One wake-up serves what epoll has ready: here a unit's output, read
/// into its ring.
#[test]
fn a_wake_up_serves_what_is_ready() {
    let mut p = super::super::tests::with_web();
    p.fit_tables();
    let ep = rustix::event::epoll::create(rustix::event::epoll::CreateFlags::CLOEXEC).unwrap();
    let (rd, wr) = rustix::pipe::pipe().unwrap();
    p.edges[0].log_rd = super::watch(&ep, rd, super::TOKEN_LOG);
    p.epoll = Some(ep);
    rustix::io::write(&wr, b"web: up\n").unwrap();
    p.wait_once();
    let mut b = [0u8; 16];
    let n = p.edges[0].log.contents().copy_tail(&mut b);
    assert_eq!(&b[..n], b"web: up\n");
}

/// The one "all up" line is said once every unit has settled (up, done
/// or given up), not before, and not in a shutdown, where every unit
/// ends stopped.
#[test]
fn all_up_is_said_once_every_unit_settled_and_not_in_a_shutdown() {
    use super::super::tests::{step, with_web, NO_PID};
    let running = || {
        let mut p = with_web();
        p.fit_tables();
        step(&mut p, 0, Event::Boot);
        p.after_events();
        assert!(!p.all_up_reported, "said while web starts");
        step(&mut p, 1, Event::spawned(0, NO_PID));
        p
    };
    let mut p = running();
    p.after_events();
    assert!(p.all_up_reported, "not said with web up");
    let mut p = running();
    step(
        &mut p,
        2,
        Event::Shutdown(crate::vocab::ShutdownKind::Poweroff),
    );
    let exit = Exit::Signal(15);
    step(&mut p, 3, Event::Exited { pid: NO_PID, exit });
    let phase = p.sup.slot(0).unwrap().rt.phase;
    assert_eq!(phase, crate::supervisor::Phase::Stopped);
    p.after_events();
    assert!(!p.all_up_reported, "said in a shutdown");
}

/// Before a tick judges a start's deadline, the unit's sd_notify socket
/// is read (a `READY=1` sent in time may wait behind the timer's token),
/// but only once that deadline is due: not every unit's socket at every
/// tick.
#[test]
fn a_starts_socket_is_read_before_its_deadline_is_judged_only_then() {
    use super::super::tests::{pid1_with, step, NO_PID};
    use rustix::net::{socketpair, AddressFamily, RecvFlags, SocketFlags, SocketType};
    let mut p = pid1_with(&[(
        "web",
        "exec = /bin/true\nready = sd_notify\nstart_timeout = 1s\n",
    )]);
    step(&mut p, 0, Event::Boot);
    step(&mut p, 1, Event::spawned(0, NO_PID));
    let deadline = p.sup.slot(0).unwrap().rt.deadline.unwrap().get();
    let flags = SocketFlags::NONBLOCK | SocketFlags::CLOEXEC;
    let (ours, theirs) = socketpair(AddressFamily::UNIX, SocketType::DGRAM, flags, None).unwrap();
    p.edges[0].notify = Some(ours);
    rustix::net::send(&theirs, b"READY=1", rustix::net::SendFlags::empty()).unwrap();
    p.notify_before_deadlines(deadline - 1);
    let peek = RecvFlags::PEEK | RecvFlags::DONTWAIT;
    let fd = p.edges[0].notify.as_ref().unwrap();
    assert_eq!(
        rustix::net::recv(fd, &mut [0u8; 16], peek).map(|r| r.0),
        Ok(7)
    );
    p.notify_before_deadlines(deadline);
    p.run_queue();
    let phase = p.sup.slot(0).unwrap().rt.phase;
    assert_eq!(phase, crate::supervisor::Phase::Running);
}

/// A removed unit's cgroup still busy (here a mount point: its rmdir is
/// EBUSY) once its stop's drain is over is tried again as an orphan for
/// `ORPHAN_GRACE_MS`, then left in place; at once when its processes
/// survived every kill (`gave_up`). In a mount namespace of its own.
#[test]
fn a_busy_cgroup_of_a_removed_unit_is_tried_again_unless_given_up() {
    use super::super::tests::{step, with_web, NO_PID};
    crate::testutil::alone_after_mounting!(
        a_busy_cgroup_of_a_removed_unit_is_tried_again_unless_given_up,
        "mount -t tmpfs tmpfs /mnt && mkdir -p /mnt/units/web && mount -t tmpfs tmpfs /mnt/units/web"
    );
    let freed = |gave_up: bool| {
        let mut p = with_web();
        p.fit_tables();
        step(&mut p, 0, Event::Boot);
        step(&mut p, 1, Event::spawned(0, NO_PID));
        let mut out = Actions::for_units(4);
        p.sup
            .reload(2, &mut Vec::new().into_iter(), &|_| false, &mut out);
        let exit = Exit::Signal(15);
        step(&mut p, 3, Event::Exited { pid: NO_PID, exit });
        p.cg = Some(crate::cgroup::Cgroups::open(std::path::Path::new("/mnt")).unwrap());
        p.edges[0].cgroup = Some(0);
        p.edges[0].drain.gave_up = gave_up;
        p.removing = true;
        p.forget_cgroups();
        p
    };
    let seen = |p: &crate::pid1::Pid1| {
        let orphans: Vec<String> = p.orphans.iter().map(|(n, _)| n.to_string()).collect();
        (p.removing, p.edges[0].cgroup.is_some(), orphans)
    };
    let mut p = freed(false);
    let web = vec!["web".to_string()];
    assert_eq!(seen(&p), (true, false, web.clone()), "drained");
    // Past its grace: left in place, no longer tried.
    p.orphans[0].1 = crate::pid1::now().saturating_sub(super::ORPHAN_GRACE_MS);
    p.forget_cgroups();
    assert_eq!(seen(&p), (false, false, vec![]), "past its grace");
    assert_eq!(seen(&freed(true)), (false, false, vec![]), "given up");
    // The cgroup of a removed unit whose slot a new one takes: what its
    // stop left is killed, and the cgroup tried again as one orphan
    // however often its name is given back and removed again.
    let mut left = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    std::fs::write("/mnt/units/web/cgroup.procs", format!("{}\n", left.id())).unwrap();
    std::fs::write("/mnt/units/web/cgroup.events", "populated 1\n").unwrap();
    let mut p = freed(false);
    p.orphans.clear();
    let name = p.sup.slot(0).unwrap().def.name.clone();
    p.orphan_cgroup(&name);
    p.orphan_cgroup(&name);
    assert_eq!(seen(&p), (true, false, web.clone()));
    let status = left.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
}

/// A removed unit's cgroup whose name a reload configures again for
/// another slot: the old slot lets go of it (the new unit's now), unless
/// its edge is replaced anyway (`taken`).
#[test]
fn a_cgroup_whose_name_is_given_back_is_let_go_of_by_the_old_slot() {
    let root = crate::testutil::TempDir::new("event-loop-leftovers");
    std::fs::create_dir(root.join("units")).unwrap();
    let name = |p: &crate::pid1::Pid1| p.sup.slot(0).unwrap().def.name.clone();
    for (taken, kept) in [(false, None), (true, Some(3))] {
        let mut p = super::super::tests::with_cgroups(&root);
        p.edges[0].cgroup = Some(3);
        p.end_leftovers(0, &name(&p), taken);
        assert_eq!(p.edges[0].cgroup, kept, "taken: {taken}");
    }
}
