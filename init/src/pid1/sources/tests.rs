use super::drain_reads;
use crate::pid1::tests::with_web;
use crate::supervisor::{Note, Phase};
use crate::vocab::Exit;
use rustix::fd::OwnedFd;

/// A run's output pipe is drained when the next run takes its place to
/// its whole capacity, 1 KiB a read: 64 reads for the default 64 KiB,
/// 256 for a 16 KiB page kernel's 256 KiB, 1,024 for 1 MiB (a service's
/// F_SETPIPE_SZ); a pipe whose size cannot be asked for is taken for the
/// default. Fewer reads keep the oldest words and drop the newest (the
/// crash message); far more are a loop's work without a bound.
#[test]
fn a_drain_reads_the_pipes_capacity() {
    let (r, _w) = rustix::pipe::pipe().unwrap();
    for (size, reads) in [(64 << 10, 64), (256 << 10, 256), (1 << 20, 1024)] {
        rustix::pipe::fcntl_setpipe_size(&r, size).unwrap();
        assert_eq!(drain_reads(Some(&r)), reads, "{size}");
    }
    assert_eq!(drain_reads(None), 64);
}

/// The signals PID 1 reads from its signalfd: SIGHUP reloads the unit
/// directory, SIGCHLD reaps every child that has ended (here two of the
/// test's, not units': adopted orphans are reaped the same way), and any
/// other (SIGWINCH) is neither a reload nor a reap. Five at once take
/// more than one read. (Alone in a process of its own: it reaps any
/// child. No shutdown signal, and web kept running: a shutdown with
/// nothing left to stop finishes, and its end signals every process of
/// the host.)
#[test]
fn the_signals_read_reload_and_reap() {
    crate::testutil::alone!(the_signals_read_reload_and_reap);
    use crate::pid1::tests::{step, NO_PID};
    use nix::sys::signal::{raise, Signal};
    let all = [
        Signal::SIGHUP,
        Signal::SIGCHLD,
        Signal::SIGURG,
        Signal::SIGWINCH,
        Signal::SIGPWR,
    ];
    let d = crate::testutil::TempDir::new("sig");
    d.file("web.unit", "exec = /bin/true\n");
    d.file("db.unit", "exec = /bin/true\nnamespaces = none\n");
    let mut p = with_web();
    step(&mut p, 0, crate::supervisor::Event::Boot);
    step(&mut p, 1, crate::supervisor::Event::spawned(0, NO_PID));
    p.units_dir = d.path().to_str().unwrap().try_into().unwrap();
    p.sigfd = Some(crate::pid1::tests::signalfd_of(&all));
    let ended: Vec<u32> = (0..2)
        .map(|_| {
            std::process::Command::new("/bin/true")
                .spawn()
                .unwrap()
                .id()
        })
        .collect();
    for &pid in &ended {
        assert!(crate::testutil::ended_in(pid, 10));
    }
    // Their own SIGCHLDs, if this thread is the one the kernel queued
    // them for, are not the test's.
    let fd = rustix::fd::AsFd::as_fd(p.sigfd.as_ref().unwrap());
    while super::read_signals(fd, &mut [(0, 0); super::SIGNALS_PER_READ]).0 > 0 {}
    raise(Signal::SIGWINCH).unwrap();
    p.on_signals();
    assert_eq!(p.sup.len(), 1, "reloaded");
    assert!(
        ended.iter().all(|&pid| crate::sys::raw::child(pid)),
        "reaped"
    );
    all.iter().for_each(|&s| raise(s).unwrap());
    p.on_signals();
    assert_eq!(p.sup.len(), 2, "not reloaded");
    for &pid in &ended {
        assert!(!crate::sys::raw::child(pid), "{pid} not reaped");
    }
    assert_eq!(p.sup.shutting_down(), None);
}

/// The end of a run of a unit with `pids.max` (its zombie released
/// before the step, as it counts against the limit the restart's clone3
/// meets) is still stepped: the unit is no longer running. (Alone: it
/// reaps any child.)
#[test]
fn a_pids_limited_units_end_is_released_and_stepped() {
    crate::testutil::alone!(a_pids_limited_units_end_is_released_and_stepped);
    use crate::pid1::tests::{pid1_with, step};
    use crate::supervisor::{Event, Phase};
    let unit = "exec = /bin/true\nnamespaces = none\nrestart = never\npids.max = 8\n";
    let mut p = pid1_with(&[("web", unit)]);
    let pid = std::process::Command::new("/bin/true")
        .spawn()
        .unwrap()
        .id();
    step(&mut p, 0, Event::Boot);
    step(&mut p, 1, Event::spawned(0, pid));
    assert!(crate::testutil::ended_in(pid, 10));
    p.reap(Some(pid));
    assert!(!crate::sys::raw::child(pid), "not released");
    let s = p.sup.slot(0).unwrap();
    assert_eq!(s.rt.phase, Phase::Stopped);
    assert_eq!(s.rt.last_exit, Some(crate::vocab::Exit::Code(0)));
}

/// `web` with a fixture cgroup root whose memory.events says `kills`
/// OOM kills, booted, its run `100` ended by `exit` (told apart by
/// `classify_exit`, as `reap` does, then stepped).
fn web_ended(root: &crate::testutil::TempDir, kills: u32, exit: Exit) -> crate::pid1::Pid1 {
    use crate::pid1::tests::step;
    use crate::supervisor::Event;
    root.file("units/web/memory.events", &format!("oom_kill {kills}\n"));
    let mut p = with_web();
    p.cg = Some(crate::cgroup::Cgroups::open(root.path()).unwrap());
    step(&mut p, 0, Event::Boot);
    step(&mut p, 1, Event::spawned(0, 100));
    let exit = p.classify_exit(0, exit);
    step(&mut p, 2, Event::Exited { pid: 100, exit });
    p
}

/// The line of a death says an OOM kill when the SIGKILL was the OOM
/// killer's (`settled`, after the step's spawns), and the exit as it was
/// otherwise: a SIGKILL with no new kill in memory.events, or no SIGKILL.
#[test]
fn a_death_is_said_an_oom_kill_only_when_it_was_one() {
    let died = |exit| Note::Died {
        exit,
        restart_in: None,
    };
    for (kills, exit, said) in [
        (1, Exit::Signal(9), Exit::OomKill),
        (0, Exit::Signal(9), Exit::Signal(9)),
        (1, Exit::Code(1), Exit::Code(1)),
    ] {
        let root = crate::testutil::TempDir::new("pid1-settled");
        let mut p = web_ended(&root, kills, exit);
        assert_eq!(p.settled(0, died(exit)), died(said), "{kills} {exit:?}");
    }
}

/// Before a start: a cgroup whose limits are to be written again (its
/// `limits_gen` changed by a reload) has its kills counted first, or the
/// new limits' run would start from them; one whose limits stay is not
/// read (a restart's system calls); with no cgroup prepared (a failed
/// start), a SIGKILL still to be told apart is, and the last exit
/// becomes the OOM kill it was.
#[test]
fn kills_are_counted_before_a_start_that_writes_the_limits_again() {
    let root = crate::testutil::TempDir::new("pid1-oom-before");
    let mut p = web_ended(&root, 2, Exit::Code(1));
    let gen = p.sup.slot(0).unwrap().limits_gen;
    p.edges[0].cgroup = Some(gen);
    p.oom_before_start(0);
    assert_eq!(p.edges[0].oom_kills, 0, "read with the same limits");
    p.edges[0].cgroup = Some(gen.wrapping_add(1));
    p.oom_before_start(0);
    assert_eq!(p.edges[0].oom_kills, 2);
    let root = crate::testutil::TempDir::new("pid1-oom-before-none");
    let mut p = web_ended(&root, 1, Exit::Signal(9));
    assert_eq!(p.edges[0].cgroup, None);
    p.oom_before_start(0);
    assert_eq!(p.sup.slot(0).unwrap().rt.last_exit, Some(Exit::OomKill));
}

/// A unit's output, when the loop says its pipe is readable, goes into
/// its ring, 16 KiB a wake-up at most: a unit that writes faster than
/// PID 1 reads does not keep the loop from the rest (what is left wakes
/// it again). Its first bytes count a ring allocated; at its end of file
/// the pipe leaves the loop.
#[test]
fn a_units_output_is_read_a_budget_a_wake_up() {
    let mut p = with_web();
    let flags = rustix::pipe::PipeFlags::NONBLOCK;
    let (rd, wr) = rustix::pipe::pipe_with(flags).unwrap();
    let mut out = vec![b'x'; 20_000];
    out.extend_from_slice(b"\nweb: dying\n");
    assert_eq!(rustix::io::write(&wr, &out).unwrap(), out.len());
    p.edges[0].log_rd = Some(rd);
    let left = |p: &crate::pid1::Pid1| {
        let rd = p.edges[0].log_rd.as_ref().unwrap();
        rustix::io::ioctl_fionread(rd).unwrap()
    };
    p.on_log(0);
    assert_eq!(p.rings_allocated, 1);
    assert_eq!(left(&p), (out.len() - 16 * 1024) as u64);
    p.on_log(0);
    assert_eq!(left(&p), 0);
    assert_eq!(p.rings_allocated, 1);
    let mut b = [0u8; 11];
    let n = p.edges[0].log.contents().copy_tail(&mut b);
    assert_eq!(&b[..n], b"web: dying\n");
    drop(wr);
    // Another test's fork may hold a copy of `wr` until its exec.
    crate::testutil::poll_in(p.edges[0].log_rd.as_ref().unwrap(), 2);
    p.on_log(0);
    assert!(p.edges[0].log_rd.is_none(), "left in the loop at its end");
}

/// `units` with unit `u` spawned (pid `NO_PID`) and its notify fd the
/// first of `ends` in the loop's epoll set under its token; the other
/// end returned.
fn notifying(
    units: &[(&str, &str)],
    u: u16,
    ends: (OwnedFd, OwnedFd),
) -> (crate::pid1::Pid1, OwnedFd) {
    use crate::pid1::tests::{step, NO_PID};
    use crate::supervisor::Event;
    let mut p = crate::pid1::tests::pid1_with(units);
    let ep = rustix::event::epoll::create(rustix::event::epoll::CreateFlags::CLOEXEC).unwrap();
    step(&mut p, 0, Event::Boot);
    step(&mut p, 1, Event::spawned(u, NO_PID));
    let token = crate::pid1::event_loop::TOKEN_NOTIFY + u64::from(u);
    p.edges[usize::from(u)].notify = crate::pid1::event_loop::watch(&ep, ends.0, token);
    p.epoll = Some(ep);
    (p, ends.1)
}

fn phase(p: &crate::pid1::Pid1, u: u16) -> Phase {
    p.sup.slot(u).unwrap().rt.phase
}

/// s6 readiness (`ready = notify`): the unit is ready at the first
/// newline on its pipe, not before; the pipe is then done with.
#[test]
fn a_line_on_the_notify_pipe_is_ready() {
    let unit = "exec = /bin/true\nready = notify\n";
    let pipe = rustix::pipe::pipe().unwrap();
    let (mut p, w) = notifying(&[("web", unit)], 0, pipe);
    rustix::io::write(&w, b"starting").unwrap();
    p.on_notify(0);
    assert_eq!(phase(&p, 0), Phase::Starting);
    rustix::io::write(&w, b"\n").unwrap();
    p.on_notify(0);
    assert_eq!(phase(&p, 0), Phase::Running);
    assert!(p.edges[0].notify.is_none(), "the pipe kept");
}

/// An empty sd_notify datagram is a datagram, not the socket's end: the
/// READY=1 after it is read, and the socket stays (a closed one would
/// refuse the unit's next messages, `systemd-notify --ready` too).
#[test]
fn an_empty_datagram_does_not_end_the_notify_socket() {
    let unit = "exec = /bin/true\nready = sd_notify\n";
    let (mut p, theirs) = notifying(&[("web", unit)], 0, crate::testutil::dgram_pair());
    rustix::io::write(&theirs, b"").unwrap();
    rustix::io::write(&theirs, b"READY=1").unwrap();
    p.on_notify(0);
    assert_eq!(phase(&p, 0), Phase::Running);
    assert!(p.edges[0].notify.is_some(), "the socket closed");
}

/// Only `WATCHDOG=1` feeds a unit's watchdog: other messages of a hung
/// service (a STATUS= line from a thread still alive) must not keep it
/// from its watchdog's restart.
#[test]
fn only_a_watchdog_ping_feeds_the_watchdog() {
    let unit = "exec = /bin/true\nready = sd_notify\nwatchdog = 10s\n";
    let (mut p, theirs) = notifying(&[("web", unit)], 0, crate::testutil::dgram_pair());
    let due = |p: &crate::pid1::Pid1| p.sup.slot(0).unwrap().rt.watchdog_at;
    let later = || std::thread::sleep(std::time::Duration::from_millis(3));
    rustix::io::write(&theirs, b"READY=1").unwrap();
    p.on_notify(0);
    let ready = due(&p);
    assert!(ready.is_some());
    later();
    rustix::io::write(&theirs, b"STATUS=busy").unwrap();
    p.on_notify(0);
    assert_eq!(due(&p), ready, "fed by a STATUS= line");
    later();
    rustix::io::write(&theirs, b"STATUS=busy\nWATCHDOG=1").unwrap();
    p.on_notify(0);
    assert!(due(&p) > ready, "not fed by its ping");
}

/// A notify socket held out of the set (its head datagram waits for a
/// closer's place) goes back in once a closer is reaped, for reading and
/// under its own unit's token: under another, it would never be read
/// again (nor its READY=1).
#[test]
fn a_held_notify_socket_goes_back_under_its_token() {
    use rustix::fd::AsRawFd;
    let db = "exec = /bin/true\nready = sd_notify\n";
    let units = [("web", "exec = /bin/true\n"), ("db", db)];
    let (mut p, _theirs) = notifying(&units, 1, crate::testutil::dgram_pair());
    p.edges[1].notify_held = super::HELD;
    let ep = p.epoll.as_ref().unwrap();
    let fd = p.edges[1].notify.as_ref().unwrap().as_raw_fd();
    let none = rustix::event::epoll::EventFlags::empty();
    let token = crate::pid1::event_loop::TOKEN_NOTIFY + 1;
    super::notify_interest(Some(ep), p.edges[1].notify.as_ref(), 1, none);
    assert_eq!(crate::testutil::epoll_watches(ep), [(fd, 0, token)]);
    p.notify_unheld(crate::pid1::tests::NO_PID - 1);
    assert_eq!(p.edges[1].notify_held, 0);
    let r#in = rustix::event::epoll::EventFlags::IN.bits();
    let ep = p.epoll.as_ref().unwrap();
    assert_eq!(crate::testutil::epoll_watches(ep), [(fd, r#in, token)]);
}
