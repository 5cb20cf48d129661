use super::drain_reads;
use crate::pid1::tests::with_web;

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
