use super::*;

/// A unit that never failed holds no buffer for a reason; its first
/// failure allocates one (said to the caller, which counts it), later
/// ones reuse it.
#[test]
fn the_failure_text_is_allocated_at_the_first_failure_only() {
    let mut e = Edge::new(&UnitDef::with_defaults("web"));
    assert!(e.rare.is_none());
    assert_eq!(e.last_error(), "");
    assert!(!e.set_last_error(Why::new()), "no reason: nothing held");
    assert!(e.rare.is_none());
    assert!(e.set_last_error(why(format_args!("exec: ENOENT"))));
    assert_eq!(e.last_error(), "exec: ENOENT");
    assert!(!e.set_last_error(why(format_args!("cgroup: EBUSY"))));
    assert_eq!(e.last_error(), "cgroup: EBUSY");
    assert!(!e.set_last_error(Why::new()));
    assert_eq!(e.last_error(), "");
    // Memory short (the start may have failed for want of it): the
    // reason is not kept, and PID 1 goes on. So for a pressure stop.
    let mut e = Edge::new(&UnitDef::with_defaults("web"));
    let short = |e: &mut Edge| e.set_last_error(why(format_args!("clone3: ENOMEM")));
    assert!(crate::sys::alloc::short_of_memory(16, || short(&mut e)));
    assert_eq!(e.last_error(), "");
    let stop = |e: &mut Edge| e.set_pressure_stopped(true);
    assert!(crate::sys::alloc::short_of_memory(16, || stop(&mut e)));
    assert!(!e.pressure_stopped());
    assert!(e.set_pressure_stopped(true), "said, once");
    assert!(e.pressure_stopped());
    assert!(!e.set_pressure_stopped(true));
}

/// An edge a unit beside the table's slot: docs/architecture.md,
/// "Memory", says what it holds.
#[test]
fn an_edge_stays_small() {
    assert!(core::mem::size_of::<Edge>() <= 152);
    assert!(core::mem::size_of::<stopping::Drain>() <= 32);
}

/// A reload's put-back and rejection share the failure text's box; a
/// verdict of good leaves it only if the unit has failed since.
#[test]
fn the_rare_box_goes_once_it_holds_nothing() {
    let def = UnitDef::with_defaults("web");
    let mut e = Edge::new(&def);
    e.rare().last_good = Some(Box::new(def.clone()));
    e.rare().rejected = Some("no".into());
    e.clear_gate(false);
    assert_eq!(e.rejected(), None);
    assert!(e.last_good().is_some(), "on probation: kept");
    e.clear_gate(true);
    assert!(e.rare.is_none(), "judged good, never failed: nothing held");
    e.rare().last_good = Some(Box::new(def));
    assert!(!e.set_last_error(why(format_args!("exec: ENOENT"))));
    e.clear_gate(true);
    assert_eq!(e.last_error(), "exec: ENOENT", "a failure's text stays");
    assert!(e.take_last_good().is_none());
}

/// A notify fd is read as what it is: a run's `ready = notify` pipe,
/// its writers gone, is closed though a reload has made the unit
/// `sd_notify` meanwhile (its end of file read as an empty datagram
/// kept it in epoll, ready at every wake-up).
#[test]
fn a_notify_pipe_is_a_pipe_whatever_the_definition_says_now() {
    let mut p = with_web();
    p.fit_tables();
    step(&mut p, 0, Event::Boot);
    let mut sd = UnitDef::with_defaults("web");
    sd.exec.push("/bin/true").unwrap();
    sd.ready = crate::unit::Ready::SdNotify;
    let mut out = Actions::default();
    out.fit(4);
    p.sup
        .reload(1, &mut vec![sd].into_iter(), &|_| false, &mut out);
    let (rd, wr) = rustix::pipe::pipe_with(
        rustix::pipe::PipeFlags::NONBLOCK | rustix::pipe::PipeFlags::CLOEXEC,
    )
    .unwrap();
    drop(wr);
    p.edges[0].notify = Some(rd);
    p.on_notify(0);
    assert!(p.edges[0].notify.is_none(), "the ended pipe is kept");
}

/// A `web` of `ready = sd_notify` spawned as pid `NO_PID`, its notify
/// socket one end of a datagram pair (the other returned).
fn sd_notify_web(start_timeout: u64) -> (Pid1, OwnedFd) {
    use rustix::net::{socketpair, AddressFamily, SocketFlags, SocketType};
    let mut d = UnitDef::with_defaults("web");
    d.exec.push("/bin/true").unwrap();
    d.ready = crate::unit::Ready::SdNotify;
    d.start_timeout = start_timeout;
    let mut p = Pid1::new(None, 0, false);
    p.add_unit(d);
    p.sup.link().unwrap();
    p.fit_tables();
    step(&mut p, 0, Event::Boot);
    step(&mut p, 1, Event::spawned(0, NO_PID));
    let flags = SocketFlags::NONBLOCK | SocketFlags::CLOEXEC;
    let (ours, theirs) = socketpair(AddressFamily::UNIX, SocketType::DGRAM, flags, None).unwrap();
    p.edges[0].notify = Some(ours);
    (p, theirs)
}

/// An sd_notify datagram is read whole up to systemd's 4096 bytes:
/// READY=1 after a long STATUS= line counts (a 512-byte read cut it
/// off).
#[test]
fn ready_after_a_long_status_line_counts() {
    let (mut p, theirs) = sd_notify_web(0);
    let mut msg = b"STATUS=".to_vec();
    msg.resize(3000, b'x');
    msg.extend_from_slice(b"\nREADY=1");
    assert_eq!(rustix::io::write(&theirs, &msg).unwrap(), msg.len());
    p.on_notify(0);
    p.run_queue();
    assert_eq!(
        p.sup.slot(0).unwrap().rt.phase,
        crate::supervisor::Phase::Running
    );
}

/// A unit that passes with READY=1 a socket holding a lingering one
/// four unix sockets down (20 s in PID 1's read without a closer)
/// and closes its own copy: its bytes are peeked, the unit is ready,
/// and a closer reads the datagram (`sys::passed`); the socket is out
/// of the epoll set until that closer's pipe says it has it, then the
/// next datagram is read while its close waits. With every place taken
/// by closers that wait, the
/// next datagram with fds waits, unread; PID 1's timer kills them once
/// they have run their grace, and their reaps put the socket back.
/// In a process of its own: the closers' places are global, and it
/// reaps.
#[test]
fn an_fd_passed_with_ready_does_not_hold_the_read() {
    use crate::sys::passed::{recv_dgram, Dgram};
    use crate::testutil::{dgram_pair, nested, send_with_fd};
    use rustix::event::epoll;
    use rustix::fd::AsFd;
    use std::time::{Duration, Instant};
    crate::testutil::alone!(an_fd_passed_with_ready_does_not_hold_the_read);
    crate::sys::passed::reaps_itself();
    let (mut p, theirs) = sd_notify_web(0);
    let ep = epoll::create(epoll::CreateFlags::CLOEXEC).unwrap();
    let ours = p.edges[0].notify.take().unwrap();
    p.edges[0].notify = event_loop::watch(&ep, ours, event_loop::TOKEN_NOTIFY);
    p.epoll = Some(ep);
    // The tokens epoll has ready now.
    let ready = |p: &Pid1| {
        let mut buf = [core::mem::MaybeUninit::<epoll::Event>::uninit(); 4];
        let zero = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        let (ready, _) = epoll::wait(p.epoll.as_ref().unwrap(), &mut buf, Some(&zero)).unwrap();
        ready.iter().map(|e| e.data.u64()).collect::<Vec<_>>()
    };
    let left = |p: &Pid1| {
        let fd = p.edges[0].notify.as_ref().unwrap();
        let flags = rustix::net::RecvFlags::PEEK | rustix::net::RecvFlags::DONTWAIT;
        rustix::net::recv(fd, &mut [0u8; 16], flags).map(|(n, _)| n)
    };
    let ended = |pid: u32, what: &str| {
        assert!(crate::testutil::ended_in(pid, 10), "{what} {pid} runs on");
    };
    let (c, server) = nested(4);
    send_with_fd(theirs.as_fd(), b"READY=1", c.as_fd());
    drop(c);
    let t = Instant::now();
    p.on_notify(0);
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    p.run_queue();
    assert_eq!(
        p.sup.slot(0).unwrap().rt.phase,
        crate::supervisor::Phase::Running
    );
    let closer = p.edges[0].notify_held;
    assert!(closer != 0, "held while a closer reads");
    rustix::net::send(&theirs, b"STATUS=x", rustix::net::SendFlags::empty()).unwrap();
    // The closer's pipe says it has the datagram; its close waits on.
    let said = crate::testutil::poll_in(p.edges[0].notify_read.as_ref().unwrap(), 10);
    assert!(!said.is_empty(), "the closer's pipe at its end");
    assert_eq!(ready(&p), [event_loop::TOKEN_NOTIFY_READ], "the socket out");
    p.on_notify(0);
    assert_eq!(
        left(&p),
        Ok(8),
        "not read before the closer has its datagram"
    );
    p.dispatch(event_loop::TOKEN_NOTIFY_READ, false);
    assert_eq!(p.edges[0].notify_held, 0);
    assert!(p.edges[0].notify_read.is_none());
    assert_eq!(ready(&p), [event_loop::TOKEN_NOTIFY], "the socket back");
    p.on_notify(0);
    assert_eq!(left(&p), Err(rustix::io::Errno::AGAIN));
    assert!(crate::sys::raw::running_child(closer), "its close waits");
    drop(server);
    ended(closer, "the first closer");
    p.reap(Some(closer));
    assert_eq!(p.edges[0].notify_held, 0);
    // Every place taken by a closer that waits on a linger.
    let mut busy = Vec::new();
    for _ in 0..4 {
        let (a, b) = dgram_pair();
        let (c, server) = nested(4);
        send_with_fd(a.as_fd(), b"x", c.as_fd());
        let Ok(Dgram::Reading { bytes: 1, pid, .. }) = recv_dgram(b.as_fd(), &mut [0u8; 4]) else {
            panic!("a closer for each");
        };
        busy.push((pid, a, b, server));
    }
    let (_r, w) = rustix::pipe::pipe().unwrap();
    send_with_fd(theirs.as_fd(), b"BARRIER=1", w.as_fd());
    drop(w);
    p.on_notify(0);
    let held = p.edges[0].notify_held;
    assert!(
        held != 0 && busy.iter().all(|b| b.0 != held),
        "waits for a place"
    );
    assert!(p.edges[0].notify_read.is_none());
    assert_eq!(ready(&p), Vec::<u64>::new());
    let timer = rustix::time::timerfd_create(
        rustix::time::TimerfdClockId::Monotonic,
        rustix::time::TimerfdFlags::CLOEXEC | rustix::time::TimerfdFlags::NONBLOCK,
    )
    .unwrap();
    p.timer = Some(timer);
    p.arm_timer();
    let armed = rustix::time::timerfd_gettime(p.timer.as_ref().unwrap()).unwrap();
    let armed = Duration::new(armed.it_value.tv_sec as u64, armed.it_value.tv_nsec as u32);
    let at = crate::sys::passed::due().expect("the closers' grace is due");
    let until = Duration::from_millis(at.saturating_sub(now()) + 1);
    assert!(
        armed > Duration::ZERO && armed <= until,
        "the timer at the closers' grace ({until:?}) or before: {armed:?}"
    );
    assert!(
        busy.iter().all(|b| crate::sys::raw::running_child(b.0)),
        "spared"
    );
    std::thread::sleep(until + Duration::from_millis(1));
    p.dispatch(event_loop::TOKEN_TIMER, false);
    // Made one after the other, each is killed at its own grace, the
    // loop's timer armed again for the next.
    while let Some(at) = crate::sys::passed::due() {
        std::thread::sleep(Duration::from_millis(at.saturating_sub(now()) + 1));
        p.dispatch(event_loop::TOKEN_TIMER, false);
    }
    for b in &busy {
        ended(b.0, "a killed closer");
    }
    p.reap(None);
    assert_eq!(p.edges[0].notify_held, 0);
    assert_eq!(
        ready(&p),
        [event_loop::TOKEN_NOTIFY],
        "in the epoll set again"
    );
    p.on_notify(0);
    let closer = p.edges[0].notify_held;
    assert!(closer != 0, "a closer reads it now");
    ended(closer, "the pipe's closer");
    p.reap(Some(closer));
    assert_eq!(p.edges[0].notify_held, 0);
    assert!(p.edges[0].notify_read.is_none());
    assert_eq!(left(&p), Err(rustix::io::Errno::AGAIN));
}

/// A run killed at its start timeout is let go of: its notify socket
/// goes with it, not at the unit's next start (which may never come).
#[test]
fn a_start_timeout_closes_the_runs_notify_socket() {
    let (mut p, _theirs) = sd_notify_web(100);
    let acts = step(&mut p, 200, Event::Tick);
    assert!(
        acts.iter().any(|a| matches!(
            a,
            crate::supervisor::Action::Announce(0, crate::supervisor::Note::StartTimeout { .. })
        )),
        "{acts:?}"
    );
    for a in acts {
        if !matches!(a, crate::supervisor::Action::KillCgroup(_)) {
            p.perform(a);
        }
    }
    assert!(
        p.edges[0].notify.is_none(),
        "the killed run's socket is kept"
    );
}

/// So is its reaper's report pipe (a PID namespace's): no exit of the
/// run is attributed to the unit any more to close it, and it was held,
/// out of the epoll set once the report came, until the unit's next
/// start (for good if none came), and handed over by a re-exec.
#[test]
fn a_start_timeout_lets_go_of_the_runs_exit_report() {
    let (mut p, _theirs) = sd_notify_web(100);
    let (rd, _wr) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
    p.edges[0].exit_report = Some(rd);
    for a in step(&mut p, 200, Event::Tick) {
        if !matches!(a, crate::supervisor::Action::KillCgroup(_)) {
            p.perform(a);
        }
    }
    assert_eq!(p.sup.slot(0).unwrap().rt.pid, 0, "let go of");
    assert!(p.edges[0].exit_report.is_none(), "its report pipe is kept");
}

/// A run's output is read to the last byte the pipe holds when asked
/// for enough reads (the drain when the next run takes its place), a
/// budget's worth otherwise; the end of file is said once every writer
/// is gone.
#[test]
fn the_output_pipe_is_read_into_the_ring_to_its_last_line() {
    let mut e = Edge::new(&UnitDef::with_defaults("web"));
    let (rd, wr) = rustix::pipe::pipe_with(
        rustix::pipe::PipeFlags::NONBLOCK | rustix::pipe::PipeFlags::CLOEXEC,
    )
    .unwrap();
    e.log_rd = Some(rd);
    let mut out = vec![b'x'; 20_000];
    out.extend_from_slice(b"\nweb: dying\n");
    assert_eq!(rustix::io::write(&wr, &out).unwrap(), out.len());
    let r = e.read_log(16);
    assert!(r.allocated && !r.eof);
    let tail = |e: &Edge| {
        let mut b = [0u8; 12];
        let n = e.log.contents().copy_tail(&mut b);
        String::from_utf8_lossy(&b[..n]).into_owned()
    };
    assert_ne!(tail(&e), "\nweb: dying\n", "16 reads took it all");
    let r = e.read_log(super::sources::drain_reads(e.log_rd.as_ref()));
    assert!(!r.allocated && !r.eof);
    assert_eq!(tail(&e), "\nweb: dying\n");
    drop(wr);
    // Another test's fork may hold a copy of `wr` until its exec.
    crate::testutil::poll_in(e.log_rd.as_ref().unwrap(), 2);
    assert!(e.read_log(1).eof);
}

/// A unit's first line goes into a ring whose buffer the allocator
/// handed over zeroed, not one written byte by byte: of a 40 MiB ring
/// (over glibc's largest mmap threshold, so fresh pages here as a
/// 1 MiB ring's are under musl), the page the line went to is in
/// memory, not the whole buffer. Refused, the buffer is no abort: the
/// line is counted as lost.
#[test]
fn a_rings_first_line_takes_a_page_not_the_whole_buffer() {
    let mut d = UnitDef::with_defaults("web");
    d.log_size = 40 << 20;
    let line = b"web: up\n";
    let piped = |e: &mut Edge| {
        let flags = rustix::pipe::PipeFlags::NONBLOCK;
        let (rd, wr) = rustix::pipe::pipe_with(flags).unwrap();
        assert_eq!(rustix::io::write(&wr, line).unwrap(), line.len());
        e.log_rd = Some(rd);
    };
    let mut e = Edge::new(&d);
    piped(&mut e);
    assert!(e.read_log(1).allocated);
    let held = e.log.contents();
    assert_eq!(held.first, line);
    let pages = crate::sys::alloc::resident_pages(held.first.as_ptr(), e.log.capacity());
    assert!(pages <= 2, "{pages} pages of the ring in memory");

    let mut short = Edge::new(&d);
    piped(&mut short);
    let r = crate::sys::alloc::short_of_memory(1 << 20, || short.read_log(1));
    assert!(!r.allocated && !short.log.is_allocated());
    assert_eq!(short.log.since(0).missed, line.len() as u64);
}

/// One read of the signalfd takes up to four signals and says whether
/// more may wait: a wake-up for one signal costs one read.
#[test]
fn one_read_of_the_signalfd_takes_what_is_pending() {
    use super::sources::{read_signals, SIGNALS_PER_READ};
    use nix::sys::signal::{raise, Signal};
    use rustix::fd::AsFd;
    // A thread of its own: the mask and the pending signals are its.
    std::thread::spawn(|| {
        let all = [
            Signal::SIGUSR1,
            Signal::SIGUSR2,
            Signal::SIGWINCH,
            Signal::SIGURG,
            Signal::SIGPWR,
        ];
        let sfd = signalfd_of(&all);
        let raise = |sigs: &[Signal]| {
            for &s in sigs {
                raise(s).unwrap(); // to this thread
            }
        };
        let mut got = [(0, 0); SIGNALS_PER_READ];
        raise(&all[..1]);
        assert_eq!(read_signals(sfd.as_fd(), &mut got), (1, false));
        // raise(3) is a tgkill of this thread: the sender is this
        // process.
        assert_eq!(got[0], (Signal::SIGUSR1 as i32, std::process::id()));
        raise(&all);
        assert_eq!(read_signals(sfd.as_fd(), &mut got), (4, true));
        let mut seen: Vec<i32> = got.iter().map(|&(s, _)| s).collect();
        assert_eq!(read_signals(sfd.as_fd(), &mut got), (1, false));
        seen.push(got[0].0);
        seen.sort();
        let mut want: Vec<i32> = all.iter().map(|&s| s as i32).collect();
        want.sort();
        assert_eq!(seen, want);
        assert_eq!(read_signals(sfd.as_fd(), &mut got), (0, false), "none left");
    })
    .join()
    .unwrap();
}

/// A non-blocking signalfd of `sigs`, which this thread blocks: those
/// raise(3) sends (to this thread) wait for it.
pub(super) fn signalfd_of(sigs: &[nix::sys::signal::Signal]) -> SignalFd {
    let mut mask = nix::sys::signal::SigSet::empty();
    sigs.iter().for_each(|&s| mask.add(s));
    mask.thread_block().unwrap();
    let flags = nix::sys::signalfd::SfdFlags::SFD_NONBLOCK;
    SignalFd::with_flags(&mask, flags).unwrap()
}

/// A pid no process can have (above the kernel's PID_MAX_LIMIT): what
/// signals it reaches no one, whatever the host's pid_max.
pub(super) const NO_PID: u32 = 4_194_305;

/// A PID 1 without a loop holding one service, `web`, stepped by hand.
pub(super) fn with_web() -> Pid1 {
    let mut p = Pid1::new(None, 0, false);
    let mut d = UnitDef::with_defaults("web");
    d.exec.push("/bin/true").unwrap();
    p.add_unit(d);
    p.sup.link().unwrap();
    p
}

/// A PID 1 without a loop holding `units` (name, unit file text),
/// linked, its tables fitted.
pub(super) fn pid1_with(units: &[(&str, &str)]) -> Pid1 {
    let mut p = Pid1::new(None, 0, false);
    for (name, text) in units {
        p.add_unit(crate::unit::parse(name, text).unwrap());
    }
    p.sup.link().unwrap();
    p.fit_tables();
    p
}

/// `p` with a watchdog on a memory file: its size counts the feeds.
pub(super) fn watched(p: &mut Pid1) -> rustix::fd::OwnedFd {
    let dev = rustix::fs::memfd_create("wd", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    let fed = rustix::io::dup(&dev).unwrap();
    p.watchdog = Some(crate::watchdog::Watchdog::on(dev, 15));
    fed
}

/// `with_web` with a temp dir as its cgroup root and an epoll set, its
/// tables fitted.
pub(super) fn with_cgroups(root: &crate::testutil::TempDir) -> Pid1 {
    let mut p = with_web();
    p.cg = Some(crate::cgroup::Cgroups::open(root.path()).unwrap());
    let ep = rustix::event::epoll::CreateFlags::CLOEXEC;
    p.epoll = Some(rustix::event::epoll::create(ep).unwrap());
    p.fit_tables();
    p
}

/// A real start's exec handshake, taken as the loop would: PID 1
/// waits 50 ms in place for the exec, which a loaded host can miss
/// (the unit is then still `starting`). Gives up after 10 s.
pub(super) fn until_execd(p: &mut Pid1, u: u16) {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while p.exec_pid(u).is_some() && std::time::Instant::now() < end {
        std::thread::sleep(std::time::Duration::from_millis(5));
        p.on_exec(u);
    }
}

pub(super) fn step(p: &mut Pid1, t: Millis, ev: Event) -> Vec<crate::supervisor::Action> {
    let mut out = Actions::default();
    out.fit(p.sup.len());
    p.sup.step(t, ev, &mut out);
    out.as_slice().to_vec()
}

/// What the re-exec state does not carry refuses a re-exec: a start
/// between its clone and exec, a stop's processes still draining.
#[test]
fn a_reexec_is_refused_while_a_start_or_a_stop_is_under_way() {
    let mut p = with_web();
    assert_eq!(p.in_between(), None);
    use rustix::event::epoll;
    p.epoll = Some(epoll::create(epoll::CreateFlags::CLOEXEC).unwrap());
    let flags = rustix::pipe::PipeFlags::CLOEXEC | rustix::pipe::PipeFlags::NONBLOCK;
    let (status, _w) = rustix::pipe::pipe_with(flags).unwrap();
    p.await_exec(0, crate::spawn::Pending { pid: 0, status });
    let (name, what) = p.in_between().unwrap();
    assert_eq!(name, "web");
    assert!(what.starts_with("starting"), "{what}");

    // Stopped, its main process gone, processes left in its cgroup:
    // their kill is due at the end of stop_timeout.
    let root = crate::testutil::TempDir::new("pid1-reexec-drain");
    root.file("units/web/cgroup.events", "populated 1\nfrozen 0\n");
    let mut p = with_web();
    p.cg = Some(crate::cgroup::Cgroups::open(root.path()).unwrap());
    p.signal_unit(0, 0, 15);
    p.kill_cgroup(0);
    let (_, what) = p.in_between().unwrap();
    assert!(what.starts_with("stopping"), "{what}");
    root.file("units/web/cgroup.events", "populated 0\nfrozen 0\n");
    p.check_empty(0);
    assert_eq!(p.in_between(), None);

    // A removed unit's cgroup still tried: not in the state, it stayed
    // until the next boot.
    let gone = crate::unit::Name::try_from("gone").unwrap();
    p.orphans.push((gone.clone(), now()));
    assert_eq!(
        p.in_between(),
        Some(("gone", "removed (its cgroup not empty yet)"))
    );
    // Past its grace it is left in place: no reason to refuse, though no
    // wake-up has dropped it yet (an idle device).
    p.orphans.clear();
    p.orphans.push((gone, now().saturating_sub(60_000)));
    assert_eq!(p.in_between(), None);
}

/// Without cgroups a kill signals the run's process group even after
/// the supervisor let go of its pid: a start timeout's kill would
/// otherwise leave the run going beside the next. Also for a run a
/// re-exec handed over (the state does not carry the group).
#[test]
fn without_cgroups_a_start_timeout_kills_the_runs_process_group() {
    for reexec in [false, true] {
        start_timeout_without_cgroups(reexec);
    }
}

fn start_timeout_without_cgroups(reexec: bool) {
    use crate::supervisor::Action;
    use std::os::unix::process::CommandExt;
    let mut child = std::process::Command::new("sleep")
        .arg("60")
        .process_group(0)
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut d = UnitDef::with_defaults("web");
    d.exec.push("/bin/sleep").unwrap();
    d.ready = crate::unit::Ready::Notify;
    d.start_timeout = 100;
    let mut p = Pid1::new(None, 0, false);
    p.add_unit(d);
    p.sup.link().unwrap();
    assert!(p.cg.is_none());
    p.fit_tables();
    assert_eq!(step(&mut p, 0, Event::Boot), [Action::Spawn(0)]);
    // As `start` notes it after the clone.
    p.note_pgid(0, pid);
    step(&mut p, 1, Event::spawned(0, pid));
    if reexec {
        let state = p.write_state(false).unwrap();
        p = Pid1::new(None, 0, false);
        p.resume(state, &crate::boot::cmdline::Options::default());
        p.fit_tables();
        assert_eq!(p.sup.slot(0).unwrap().rt.pid, pid);
    }
    let acts = step(&mut p, 200, Event::Tick);
    assert!(acts.contains(&Action::KillCgroup(0)), "{acts:?}");
    assert_eq!(p.sup.slot(0).unwrap().rt.pid, 0);
    for a in acts {
        if a == Action::KillCgroup(0) {
            p.perform(a);
        }
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the run was not killed (after a re-exec: {reexec})");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(9));
}

/// Units shed before a re-exec come back after a calm period counted
/// from the new PID 1's start, not only after pressure that fires
/// again.
#[test]
fn units_shed_before_a_reexec_are_started_after_a_calm() {
    use rustix::event::epoll;
    let limit = crate::unit::PressureLimit {
        percent: 50,
        window: 1000,
    };
    let mut p = with_web();
    p.epoll = Some(epoll::create(epoll::CreateFlags::CLOEXEC).unwrap());
    p.watch_system_pressure(limit);
    assert_eq!(p.shed.as_ref().unwrap().calm_at, None, "nothing shed");
    let mut p = with_web();
    p.epoll = Some(epoll::create(epoll::CreateFlags::CLOEXEC).unwrap());
    p.edges[0].shed = true;
    let t = now();
    p.watch_system_pressure(limit);
    let shed = p.shed.as_ref().unwrap();
    let calm = shed.calm_at.unwrap();
    assert!(calm >= t + shed.calm() && calm <= now() + shed.calm());
}

/// A child that ends while still in its exec handshake (exec'd and
/// killed at once, its pipe not yet served): its unit is known when
/// its exit is, so that the exit gets a run's checks.
#[test]
fn a_run_reaped_in_its_handshake_is_its_units() {
    use rustix::event::epoll;
    let mut p = with_web();
    p.fit_tables();
    p.epoll = Some(epoll::create(epoll::CreateFlags::CLOEXEC).unwrap());
    step(&mut p, 0, Event::Boot);
    let flags = rustix::pipe::PipeFlags::CLOEXEC | rustix::pipe::PipeFlags::NONBLOCK;
    let (status, w) = rustix::pipe::pipe_with(flags).unwrap();
    p.await_exec(0, crate::spawn::Pending { pid: 4242, status });
    assert_eq!(p.sup.unit_of_pid(4242), None);
    // Exec'd (the close-on-exec end closed), then reaped.
    drop(w);
    assert_eq!(p.reaped_unit(4242), Some(0));
    assert_eq!(p.sup.slot(0).unwrap().rt.pid, 4242);
    assert_eq!(p.reaped_unit(4343), None);
}

/// A changed unit that gave up on its failed dependency is not waited
/// for, but still on probation: started by hand later, it is judged,
/// and a bad verdict's revert needs the gate's buffer.
#[test]
fn the_gate_buffer_is_sized_for_a_unit_on_probation_not_waited_for() {
    let mut d = UnitDef::with_defaults("d");
    d.exec.push("/bin/true").unwrap();
    d.kind = crate::unit::Kind::Oneshot;
    d.restart = crate::unit::Restart::Never;
    let mut x = UnitDef::with_defaults("x");
    x.exec.push("/bin/true").unwrap();
    x.after.push("d").unwrap();
    let mut p = Pid1::new(None, 0, false);
    p.add_unit(d.clone());
    p.add_unit(x.clone());
    p.sup.link().unwrap();
    p.fit_tables();
    step(&mut p, 0, Event::Boot);
    step(&mut p, 1, Event::spawned(0, 100));
    step(
        &mut p,
        2,
        Event::Exited {
            pid: 100,
            exit: crate::vocab::Exit::Code(1),
        },
    );
    x.description.push_str("v2").unwrap();
    let mut out = Actions::default();
    out.fit(2);
    p.sup
        .reload(3, &mut vec![d, x].into_iter(), &|_| false, &mut out);
    assert!(!p.sup.on_probation());
    assert!(p.sup.slot(1).unwrap().rt.probation);
    p.fit_tables();
    assert!(p.gate_actions.capacity() > 0);
}

/// A reload in a shutdown is refused, not answered with a summary of
/// nothing done.
#[test]
fn a_reload_is_refused_in_a_shutdown() {
    let mut p = with_web();
    step(
        &mut p,
        0,
        Event::Shutdown(crate::vocab::ShutdownKind::Reboot),
    );
    let mut lines = vec![];
    let r = p.reload(&mut |l| lines.push(l.to_string()));
    let e = r.unwrap_err();
    assert_eq!(e.code, crate::proto::ErrCode::Refused);
    assert_eq!(
        e.message.as_str(),
        "reload refused: shutting down; nothing changed"
    );
    // Said once, as the error: no report line to say it again.
    assert!(lines.is_empty(), "{lines:?}");
}

/// The restart's grace is for a start after a death on one CPU: not
/// for the boot's start, not on more CPUs, not for `initctl restart`.
#[test]
fn the_restart_grace_is_for_a_restart_after_a_death_on_one_cpu() {
    use crate::supervisor::Action;
    let mut p = with_web();
    p.one_cpu = true;
    assert_eq!(step(&mut p, 0, Event::Boot), [Action::Spawn(0)]);
    assert!(!p.restart_grace(0), "the boot's start");
    step(&mut p, 1, Event::spawned(0, 100));
    step(
        &mut p,
        2,
        Event::Exited {
            pid: 100,
            exit: crate::vocab::Exit::Signal(9),
        },
    );
    // The restart comes at the delay's deadline.
    let t = p.sup.next_deadline().unwrap();
    assert!(step(&mut p, t, Event::Tick).contains(&Action::Spawn(0)));
    assert!(p.restart_grace(0));
    p.one_cpu = false;
    assert!(!p.restart_grace(0), "more than one CPU");
    p.one_cpu = true;
    // `initctl restart`: a start by hand, not after a death.
    step(&mut p, t + 1, Event::spawned(0, 101));
    step(
        &mut p,
        t + 2,
        Event::Restart {
            unit: 0,
            by_hand: true,
        },
    );
    let out = step(
        &mut p,
        t + 3,
        Event::Exited {
            pid: 101,
            exit: crate::vocab::Exit::Signal(15),
        },
    );
    assert!(out.contains(&Action::Spawn(0)), "{out:?}");
    assert!(!p.restart_grace(0));
}

/// When a new run takes a unit's place, what the last run wrote and
/// the loop has not read yet goes into the ring first, though a writer
/// (the namespace's reaper) still holds the pipe; then the new pipe is
/// the one watched.
#[test]
fn a_new_run_takes_the_last_runs_words_into_the_ring_first() {
    use rustix::fd::AsRawFd;
    let mut p = with_web();
    p.epoll =
        Some(rustix::event::epoll::create(rustix::event::epoll::CreateFlags::CLOEXEC).unwrap());
    let (old_rd, old_wr) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
    p.edges[0].log_rd = event_loop::watch(p.epoll.as_ref().unwrap(), old_rd, 1);
    rustix::io::write(&old_wr, b"web: last words\n").unwrap();
    let (new_rd, new_wr) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
    let new_no = new_rd.as_raw_fd();
    let (report_rd, _report_wr) =
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
    let report_no = report_rd.as_raw_fd();
    let ends = executor::Ends {
        log: Some((new_rd, new_wr)),
        notify: None,
        report: Some(report_rd),
    };
    p.watch_ends(0, ends);
    // The reaper's report pipe is watched with the rest, after the
    // wait in place.
    assert_eq!(
        p.edges[0].exit_report.as_ref().map(|f| f.as_raw_fd()),
        Some(report_no)
    );
    let mut b = [0u8; 16];
    let n = p.edges[0].log.contents().copy_tail(&mut b);
    assert_eq!(&b[..n], b"web: last words\n");
    assert_eq!(
        p.edges[0].log_rd.as_ref().map(|f| f.as_raw_fd()),
        Some(new_no)
    );
    drop(old_wr);
}

/// A restart's grace is not cut short by the last run's output pipe
/// at its end of file: out of the epoll set, still held for the drain.
#[test]
fn the_last_runs_pipe_leaves_the_loop_before_the_grace() {
    let mut p = with_web();
    let ep = rustix::event::epoll::create(rustix::event::epoll::CreateFlags::CLOEXEC).unwrap();
    let (rd, wr) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
    p.edges[0].log_rd = event_loop::watch(&ep, rd, 1);
    p.epoll = Some(ep);
    drop(wr);
    let ready = |p: &Pid1| {
        let mut fds = [rustix::event::PollFd::new(
            p.epoll.as_ref().unwrap(),
            rustix::event::PollFlags::IN,
        )];
        rustix::event::poll(
            &mut fds,
            Some(&rustix::event::Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            }),
        )
        .unwrap()
    };
    assert_eq!(ready(&p), 1, "the end of file is ready");
    p.unwatch_log(0);
    assert_eq!(ready(&p), 0);
    assert!(p.edges[0].log_rd.is_some());
}

/// A SIGKILL exit is told apart from the OOM killer's after the step
/// it led to: `classify_exit` reads nothing, `settle_oom` then reads
/// memory.events once and makes an OOM kill the unit's last exit.
#[test]
fn a_sigkill_is_told_apart_from_an_oom_kill_after_the_step() {
    use crate::vocab::Exit;
    let root = crate::testutil::TempDir::new("pid1-oom");
    let events = root.file(
        "units/web/memory.events",
        "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
    );
    let mut p = with_web();
    p.cg = Some(crate::cgroup::Cgroups::open(root.path()).unwrap());
    step(&mut p, 0, Event::Boot);
    step(&mut p, 1, Event::spawned(0, 100));
    assert_eq!(p.classify_exit(0, Exit::Signal(9)), Exit::Signal(9));
    assert!(p.edges[0].drain.oom_unread);
    assert_eq!(p.edges[0].oom_kills, 0, "nothing read yet");
    step(
        &mut p,
        2,
        Event::Exited {
            pid: 100,
            exit: Exit::Signal(9),
        },
    );
    assert!(p.settle_oom(0));
    assert_eq!(p.sup.slot(0).unwrap().rt.last_exit, Some(Exit::OomKill));
    assert_eq!(p.edges[0].oom_kills, 1);
    assert!(!p.settle_oom(0), "read once");
    // The next SIGKILL with no new oom_kill is a plain SIGKILL.
    let t = p.sup.next_deadline().unwrap();
    step(&mut p, t, Event::Tick);
    step(&mut p, t, Event::spawned(0, 101));
    p.classify_exit(0, Exit::Signal(9));
    step(
        &mut p,
        t + 1,
        Event::Exited {
            pid: 101,
            exit: Exit::Signal(9),
        },
    );
    assert!(!p.settle_oom(0));
    assert_eq!(p.sup.slot(0).unwrap().rt.last_exit, Some(Exit::Signal(9)));
    // Another end reads nothing at all.
    std::fs::remove_file(events).unwrap();
    assert_eq!(p.classify_exit(0, Exit::Code(1)), Exit::Code(1));
    assert!(!p.edges[0].drain.oom_unread);
}

/// Before a cgroup's limits are written afresh, its kills are counted
/// in one read: with no SIGKILL to tell apart the last exit stays.
#[test]
fn kills_are_counted_before_the_cgroup_is_prepared_again() {
    use crate::vocab::Exit;
    let root = crate::testutil::TempDir::new("pid1-oom-count");
    root.file("units/web/memory.events", "oom 2\noom_kill 2\n");
    let mut p = with_web();
    p.cg = Some(crate::cgroup::Cgroups::open(root.path()).unwrap());
    step(&mut p, 0, Event::Boot);
    step(&mut p, 1, Event::spawned(0, 100));
    step(
        &mut p,
        2,
        Event::Exited {
            pid: 100,
            exit: Exit::Code(1),
        },
    );
    assert!(!p.count_oom(0), "no SIGKILL to tell apart");
    assert_eq!(p.edges[0].oom_kills, 2);
    assert_eq!(p.sup.slot(0).unwrap().rt.last_exit, Some(Exit::Code(1)));
    assert!(!p.count_oom(0));
    assert_eq!(p.edges[0].oom_kills, 2, "counted once");
}

/// memory.events' oom_kill over the baseline is counted once, at
/// most up to u32::MAX; a count at or below the baseline is no kill.
#[test]
fn oom_kills_are_counted_over_the_baseline_once() {
    let mut e = Edge::new(&UnitDef::with_defaults("web"));
    e.oom_kills_at_spawn = 3;
    assert_eq!(e.oom_kills_with(2), 0);
    assert_eq!(e.oom_kills_with(5), 2);
    assert!(!e.count_oom_kills(3));
    assert_eq!((e.oom_kills, e.oom_kills_at_spawn), (0, 3));
    assert!(e.count_oom_kills(5));
    assert_eq!((e.oom_kills, e.oom_kills_at_spawn), (2, 5));
    assert!(!e.count_oom_kills(5));
    assert_eq!(e.oom_kills_with(6), 3);
    assert_eq!(e.oom_kills_with(u64::MAX), u32::MAX);
}

/// A `WATCHDOG=1` sent in time, read only after the timer's token of the
/// same batch (the loop busy past the deadline: a re-exec's handshake, a
/// reload's disk wait): a ping, not a timeout that kills the unit.
#[test]
fn a_ping_behind_the_timer_after_a_stall_is_not_a_timeout() {
    use rustix::net::{socketpair, AddressFamily, SocketFlags, SocketType};
    let mut p = pid1_with(&[(
        "web",
        "exec = /bin/true\nready = sd_notify\nwatchdog = 1s\n",
    )]);
    let t0 = now();
    step(&mut p, t0, Event::Boot);
    step(&mut p, t0, Event::spawned(0, NO_PID));
    let flags = SocketFlags::NONBLOCK | SocketFlags::CLOEXEC;
    let (ours, theirs) = socketpair(AddressFamily::UNIX, SocketType::DGRAM, flags, None).unwrap();
    p.edges[0].notify = Some(ours);
    step(&mut p, t0, Event::Ready { unit: 0 });
    assert_eq!(
        p.sup.slot(0).unwrap().rt.phase,
        crate::supervisor::Phase::Running
    );
    std::thread::sleep(std::time::Duration::from_millis(500));
    rustix::io::write(&theirs, b"WATCHDOG=1").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(800));
    use super::event_loop::{TOKEN_NOTIFY, TOKEN_TIMER};
    p.handle(&[(TOKEN_TIMER, false), (TOKEN_NOTIFY, false)]);
    assert_eq!(
        p.sup.slot(0).unwrap().rt.pid,
        NO_PID,
        "killed for the loop's lateness"
    );
}

/// A run's end unlinks its notify socket's file when its fd is a socket,
/// whatever the definition says now: a reload that made the unit
/// `ready = started` left the file in /run for good (the unit removed
/// after, for ever). A pipe's end unlinks nothing of the definition's
/// name but when the definition says `sd_notify`.
#[test]
fn a_runs_notify_socket_file_goes_with_it_whatever_ready_says_now() {
    use rustix::net::{bind, socket_with, AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
    let name = format!("sd-end-{}", std::process::id());
    std::fs::create_dir_all(crate::vocab::NOTIFY_DIR).unwrap();
    let path = super::executor::notify_path(&name);
    let path = std::path::Path::new(path.as_str());
    let flags = SocketFlags::NONBLOCK | SocketFlags::CLOEXEC;
    let sock = socket_with(AddressFamily::UNIX, SocketType::DGRAM, flags, None).unwrap();
    bind(&sock, &SocketAddrUnix::new(path).unwrap()).unwrap();
    super::event_loop::end_notify(None, Some(sock), &name, false);
    assert!(!path.exists(), "the socket's file is left");
    // A pipe (`ready = notify`): a file of that name is not the run's.
    std::fs::write(path, "").unwrap();
    let (rd, _wr) = rustix::pipe::pipe().unwrap();
    super::event_loop::end_notify(None, Some(rd), &name, false);
    assert!(path.exists(), "a pipe's end unlinked the name");
    super::event_loop::end_notify(None, None, &name, true);
    assert!(!path.exists(), "sd_notify's file is left");
}

/// A control socket that cannot be bound (here its directory cannot be
/// made: /run out of inodes did the same) is tried again at the ticks
/// once its retry is due, and bound once the fault clears: it stayed
/// unbound, the device without `initctl`, until the next boot.
#[test]
fn a_control_socket_not_bound_is_tried_again() {
    use rustix::event::epoll;
    let d = crate::testutil::TempDir::new("pid1-control-retry");
    let blocker = d.file("run", "not a directory");
    let path = blocker.join("ctl.sock");
    let mut p = Pid1::new(None, 0, false);
    p.epoll = Some(epoll::create(epoll::CreateFlags::CLOEXEC).unwrap());
    p.bind_control(&path);
    assert!(p.control.is_none());
    let due = p.control_retry;
    assert!(due > now(), "no retry set");
    p.retry_control(due - 1, &path);
    assert!(p.control.is_none(), "tried before its time");
    // Tried again while it still fails: nothing allocated (the error
    // borrows the path), as nothing is in the loop's steady state.
    let before = crate::sys::alloc::thread_count();
    p.retry_control(due, &path);
    p.retry_control(p.control_retry, &path);
    assert_eq!(
        crate::sys::alloc::thread_count(),
        before,
        "a failing retry allocates"
    );
    assert!(p.control.is_none());
    std::fs::remove_file(&blocker).unwrap();
    p.retry_control(p.control_retry, &path);
    assert!(p.control.is_some(), "not bound once it could be");
    assert_eq!(p.control_retry, 0);
    assert!(path.exists());
}

/// A run's output left whole in a pipe of a 16 KiB page kernel's default
/// size (16 pages, 256 KiB: the Pi 5's) is read to its last line when
/// the next run takes its place: 64 reads, a 4 KiB page kernel's 64 KiB,
/// kept the oldest bytes and dropped the newest, the crash message.
#[test]
fn a_full_pipe_of_a_16k_page_kernel_is_drained_to_its_last_words() {
    let mut p = with_web();
    let ep = rustix::event::epoll::CreateFlags::CLOEXEC;
    p.epoll = Some(rustix::event::epoll::create(ep).unwrap());
    let (old_rd, old_wr) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
    rustix::pipe::fcntl_setpipe_size(&old_rd, 16 * 16384).unwrap();
    p.edges[0].log_rd = event_loop::watch(p.epoll.as_ref().unwrap(), old_rd, 1);
    let mut out = vec![b'x'; 100_000];
    out.extend_from_slice(b"\nweb: last words\n");
    assert_eq!(rustix::io::write(&old_wr, &out).unwrap(), out.len());
    drop(old_wr);
    let (new_rd, new_wr) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
    let ends = executor::Ends {
        log: Some((new_rd, new_wr)),
        notify: None,
        report: None,
    };
    p.watch_ends(0, ends);
    let mut b = [0u8; 16];
    let n = p.edges[0].log.contents().copy_tail(&mut b);
    assert_eq!(&b[..n], b"web: last words\n");
}
