//! PID 1 of a unit's PID namespace. Forked from PID 1, it sets the
//! namespaces up and forks the service (`spawn::reaper_child`), then
//! execs wren itself as `wren-reaper`, its state in the environment
//! (`WREN_REAPER=SERVICE,REPORT_FD,NICE+20`), through an fd to PID 1's own
//! executable opened at boot (`open_exe`). A fork that goes on running
//! keeps private copies of PID 1's pages (about 20 KiB each, the bulk of
//! the supervision tree's Pss); the exec'd reaper shares the binary's
//! text and owns its stack, a data and a bss page. The exec comes after
//! the service's fork, at nice 19, so that it does not delay a start on
//! one CPU. Reached through the fd, it works whatever `root`, overlay,
//! read-only mounts or user namespace the unit has; should the exec fail,
//! the fork simply goes on as the reaper.
//!
//! When the unit's output goes to a pipe, the reaper's stdout is that
//! pipe, which it never writes: held until it exits, so that PID 1 sees
//! the pipe's end of file after the report, not before it
//! (`spawn::reaper_child`).
//!
//! With a leave (`Leave`: `UnitDef::relaunches_in_place`, and PID 1
//! agreed), the exec'd reaper starts the service again itself when it ends
//! after a run of a second or more, in the namespaces and cgroup it keeps,
//! and reports the end as one it restarted on; without one, or once it is
//! revoked, the end goes to PID 1 as follows.
//!
//! It reaps every zombie of the namespace, forwards the signals PID 1
//! sends (the stop signal among them) to the service's process group, and
//! when the service ends, reports exactly how through a pipe and exits,
//! which makes the kernel kill whatever is left in the namespace. It
//! kills and reaps the rest of the namespace itself first, so that PID 1
//! can take the report as the end of the whole run (`pid1::report`) and
//! restart the unit without waiting for this exit's teardown of the
//! namespaces, which waits until the new run has exec'd.
//!
//! Signals stay blocked as inherited from PID 1 (across the exec too, and
//! those pending stay pending) and are taken with rt_sigtimedwait (raw:
//! `sys::signal::wait_any`): a namespace's
//! init gets signals from its parent namespace only through a handler or
//! while they are blocked, and blocked is simpler.
//!
//! The entry (`serve_if_reaper`, called first by `main`) is taken only by
//! a namespace's PID 1 named `wren-reaper`: never by a command a user
//! runs, nor by the real PID 1. It serves when its `WREN_REAPER` is
//! well-formed and names a child of its own; else it exits (its service
//! and namespace with it), and never goes on as a PID 1.
//!
//! PID 1 tells a reaper that a stop is coming (`REVOKE`) before it
//! signals the run's processes, so that a service dying of the stop
//! signal is not started again in place; a reaper that finds any signal
//! but SIGCHLD pending when its service ended does not start it either.

use crate::vocab::Exit;
use nix::sys::signal::Signal;
use rustix::fd::{AsFd, BorrowedFd};
use rustix::process::WaitOptions;

mod leave;
use leave::{leave_from, relaunch, signalled, state, STATE_MAX};
pub(super) use leave::{Again, Leave};

/// argv[0] of an exec'd reaper (what `ps` shows).
const ARG0: &str = "wren-reaper";
/// Its one environment variable, `SERVICE,REPORT_FD,NICE+20`: read with
/// getenv, in place, where argv would be copied to the heap by std.
const ENV: &str = "WREN_REAPER";
const ENV_C: &core::ffi::CStr = c"WREN_REAPER";

/// PID 1's own executable, opened at boot (O_PATH): what a reaper execs.
static EXE: crate::sys::fd::FdSlot = crate::sys::fd::FdSlot::new();

/// Open PID 1's own executable for the reapers to exec (after /proc is
/// mounted). Without it, reapers stay forks of PID 1.
pub fn open_exe() {
    use rustix::fs::{Mode, OFlags};
    match rustix::fs::openat(
        rustix::fs::CWD,
        c"/proc/self/exe",
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => {
            EXE.fill(fd);
        }
        Err(e) => crate::warn!("/proc/self/exe: {e}; namespace reapers stay forks of PID 1"),
    }
}

/// Longest wait, after the report, for PID 1 to close its end.
const HOLD: rustix::event::Timespec = rustix::event::Timespec {
    tv_sec: 1,
    tv_nsec: 0,
};

/// Bytes of an exit report: kind (0 code, 1 signal; + RELAUNCHED) and an
/// i32.
pub const REPORT_LEN: usize = 5;

/// In a report's kind: the reaper started the service again in place
/// (`Leave`), and goes on.
const RELAUNCHED: u8 = 2;

pub fn encode(exit: Exit) -> [u8; REPORT_LEN] {
    let (kind, v) = match exit {
        Exit::Code(c) => (0u8, i32::from(c)),
        Exit::Signal(s) => (1u8, i32::from(s)),
        Exit::OomKill => (1u8, Signal::SIGKILL as i32),
    };
    let b = v.to_le_bytes();
    [kind, b[0], b[1], b[2], b[3]]
}

/// How the service ended, and whether the reaper started it again.
pub fn decode(r: &[u8]) -> Option<(Exit, bool)> {
    let (&kind, rest) = r.split_first()?;
    let v = i32::from_le_bytes(rest.get(..4)?.try_into().ok()?);
    let exit = match kind & !RELAUNCHED {
        0 => Exit::code(v),
        1 => Exit::signal(v),
        _ => return None,
    };
    Some((exit, kind & RELAUNCHED != 0))
}

/// The report of an end after which the service runs again.
fn encode_relaunched(exit: Exit) -> [u8; REPORT_LEN] {
    let mut r = encode(exit);
    if let Some(kind) = r.first_mut() {
        *kind |= RELAUNCHED;
    }
    r
}

/// The signal PID 1 sends a unit's reaper before it signals the unit's
/// processes to stop them (`pid1::stopping`): it ends the reaper's leave
/// and is not forwarded; a reaper without a leave takes it as nothing.
/// SIGURG, whose default action is to ignore it: a reaper of an older
/// wren (left running by `initctl reexec`) forwards every signal to its
/// service, and this one must cost such a service nothing.
pub const REVOKE: i32 = Signal::SIGURG as i32;

/// How a waited-for child ended; None for a status that is not an end.
fn ended(st: rustix::process::WaitStatus) -> Option<Exit> {
    match (st.exit_status(), st.terminating_signal()) {
        (Some(c), _) => Some(Exit::code(c)),
        (None, Some(s)) => Some(Exit::signal(s)),
        (None, None) => None,
    }
}

/// PID 1's fds a reaper keeps whatever the unit: its executable (for the
/// reaper's exec) and /dev/null (the service's stdin).
pub(super) fn always_kept() -> [Option<BorrowedFd<'static>>; 2] {
    [EXE.get().fd(), super::stdio::null()]
}

/// Before the service's vfork: close every fd above 2 but those the
/// service needs (`keep`, and PID 1's /dev/null for its stdin), the
/// report pipe and PID 1's executable, which `run` then keeps. The
/// caller, a copy of PID 1 with its own fd table, uses no other fd of
/// PID 1's after this (`close_all_but`).
pub(super) fn close_before_service(
    keep: &[Option<BorrowedFd<'_>>],
    report: Option<BorrowedFd<'_>>,
) {
    let mut all: heapless::Vec<BorrowedFd<'_>, 8> = heapless::Vec::new();
    for fd in keep
        .iter()
        .copied()
        .chain([report])
        .chain(always_kept())
        .flatten()
    {
        // More than fit is impossible (seven at most); should it happen,
        // nothing is closed rather than something needed.
        if all.push(fd).is_err() {
            return;
        }
    }
    crate::sys::fd::close_all_but(&all);
}

/// The reaper's fds 0-2, which are PID 1's until now: the console at
/// boot, read-write, the operator's keyboard. They become /dev/null: a
/// unit with a user namespace could take them from its exec'd reaper
/// (`pidfd_getfd`: the namespace's root may trace what runs in it, and
/// the exec made the reaper's memory the namespace's). Fd 1 becomes the
/// service's output pipe `out` instead, held (never written) until the
/// reaper exits: when the service dies, PID 1 is not woken by the pipe's
/// end of file ahead of the report, which the reaper, picked after it,
/// would then write later (1.5 ms of an isolated restart on one CPU).
/// PID 1 reads what is left in the pipe when the next run starts
/// (`pid1::executor::watch_ends`). A number the reaper keeps for another
/// fd (`keep`, PID 1's executable or /dev/null) is left as it is: only if
/// boot could not open fds 0-2.
pub(super) fn settle_stdio(out: Option<BorrowedFd<'_>>, keep: &[Option<BorrowedFd<'_>>]) {
    use rustix::fd::AsRawFd;
    let taken = |n| {
        keep.iter()
            .copied()
            .chain(always_kept())
            .flatten()
            .any(|fd| fd.as_raw_fd() == n)
    };
    // PID 1 has none (boot could not open it): one of the reaper's own,
    // else fds 0 and 2 would stay PID 1's console, for every service it
    // restarts in place too.
    let own = match super::stdio::null() {
        Some(_) => None,
        None => super::stdio::open_above_2("/dev/null").ok(),
    };
    let null = super::stdio::null().or(own.as_ref().map(rustix::fd::AsFd::as_fd));
    for n in 0..=2 {
        let with = if n == 1 { out.or(null) } else { null };
        if let Some(fd) = with.filter(|_| !taken(n)) {
            let _ = crate::sys::fd::move_for_exec(fd, n);
        }
    }
}

/// Supervise `service` until it ends; never returns.
///
/// Forked from PID 1, it holds a copy of every fd PID 1 had (the control
/// listener and clients, other units' pipes, epoll, signalfd): all are
/// closed but stdio, `report` and PID 1's executable, so that it keeps
/// none of them alive and nothing in the namespace can reach them through
/// it. Then it execs the reaper entry (which loses the executable's fd, a
/// CLOEXEC one), or, if that fails, serves here. It opens no fd after, and
/// never returns or drops what it inherited. `on`: the slot it runs on
/// (`sys::slot`), in PID 1's memory: serving there, it reads none of
/// PID 1's data, and says so.
pub(super) fn run(
    service: u32,
    report: Option<BorrowedFd<'_>>,
    on: Option<crate::sys::slot::InSlot>,
    again: Option<&Again<'_>>,
) -> ! {
    if let (Some(r), Some(exe)) = (report, EXE.get().fd()) {
        crate::sys::fd::close_all_but(&[r, exe]);
        exec(service, r, exe, again);
    }
    if let Some(on) = on {
        on.detach();
    }
    // PID 1 gives every PID namespace a report pipe; without one (tests),
    // without the executable or if the exec failed, the fork serves,
    // holding nothing of PID 1's.
    crate::sys::fd::close_all_but(report.as_slice());
    serve(service, report, None)
}

/// Exec the reaper entry as `wren-reaper` with `WREN_REAPER` first in its
/// environment and, with a leave (`again`), the service's argv and
/// environment after its own (`Leave`); returns only if that failed.
fn exec(service: u32, report: BorrowedFd<'_>, exe: BorrowedFd<'_>, again: Option<&Again<'_>>) {
    use rustix::fd::AsRawFd;
    // The report pipe must outlive the exec.
    if rustix::io::fcntl_setfd(report, rustix::io::FdFlags::empty()).is_err() {
        return;
    }
    // The exec competes for the CPU with the service's own (one vCPU on
    // small boards): at nice 19, and after yielding the CPU it holds since
    // the fork, it runs when the service, PID 1 and the other units'
    // starts leave the CPU free. The entry sets the nice value back.
    let Ok(nice) = rustix::process::getpriority_process(None) else {
        return;
    };
    let _ = rustix::process::setpriority_process(None, 19);
    rustix::thread::sched_yield();
    let (fd, nice20) = (report.as_raw_fd(), nice.saturating_add(20));
    // A leave that does not fit (it fits what a unit file allows): none.
    let (state, again) = match state(service, fd, nice20, again) {
        Some(s) => (Some(s), again),
        None => (state(service, fd, nice20, None), None),
    };
    let mut head: crate::sys::exec::CStrings<{ 16 + crate::vocab::PATH_BYTES }, 3> =
        crate::sys::exec::CStrings::new();
    // The state and its NUL.
    let mut env: crate::sys::exec::CStrings<{ STATE_MAX + 1 }, 2> =
        crate::sys::exec::CStrings::new();
    let fits = head.push(&[ARG0]).is_some()
        && again.is_none_or(|a| head.push(&[a.workdir]).is_some())
        && state.and_then(|s| env.push(&[&s])).is_some();
    if fits {
        let _ = crate::sys::exec::execveat_fd_joined(
            exe,
            (&head, again.map(|a| a.argv)),
            (&env, again.map(|a| a.env)),
        );
    }
    let _ = rustix::process::setpriority_process(None, nice);
}

/// The exec'd reaper's entry, called first by `main`: when this process is
/// a namespace's reaper exec'd by `run`, serve and never return; else
/// return at once.
pub fn serve_if_reaper() {
    // Only what `exec` made: a namespace's PID 1 named `wren-reaper`. The
    // real PID 1 is never so named, whatever its environment holds (the
    // kernel passes a command line's `WREN_REAPER=` on to it).
    let named = crate::sys::entry::arg(0).is_some_and(|a| a.to_bytes() == ARG0.as_bytes());
    if !named || !rustix::process::getpid().is_init() {
        return;
    }
    serve_exec_d();
    // A reaper that cannot serve (its state or report fd not as `exec`
    // left them) ends, which ends its namespace and the service with it:
    // PID 1 takes that as the run's end. Returning would boot a whole
    // PID 1 in the unit's namespaces.
    crate::sys::clone::exit(1);
}

/// `serve_if_reaper`'s work for an exec'd reaper: returns only when it
/// cannot serve.
fn serve_exec_d() {
    // Read in place: an allocation would cost the reaper a heap page.
    let Some(state) = crate::sys::exec::env_var(ENV_C).and_then(|v| v.to_str().ok()) else {
        return;
    };
    let mut fields = state.split(',');
    let mut number = || i32::try_from(wren_core::num::dec::<u32>(fields.next()?)?).ok();
    let (Some(service), Some(fd), Some(nice)) = (number(), number(), number()) else {
        return;
    };
    // With a leave, its fields; a malformed one is no leave.
    let mut groups = [0u32; crate::config::users::GROUPS_MAX];
    let leave = leave_from(&mut fields, &mut groups);
    // The real PID 1 has no child when it starts: only a reaper passes.
    let child = rustix::process::Pid::from_raw(service).is_some_and(|p| {
        rustix::process::waitid(
            rustix::process::WaitId::Pid(p),
            rustix::process::WaitIdOptions::EXITED
                | rustix::process::WaitIdOptions::NOHANG
                | rustix::process::WaitIdOptions::NOWAIT,
        )
        .is_ok()
    });
    let Some(report) = child.then(|| crate::sys::handover::take_fd(fd)).flatten() else {
        return;
    };
    // Back to PID 1's nice value (passed + 20, so not negative). Inside a
    // user namespace the kernel may refuse: it then reaps at nice 19.
    let _ = rustix::process::setpriority_process(None, nice - 20);
    // Nothing but stdio and the report pipe, whatever the exec kept.
    crate::sys::fd::close_all_but(&[report.as_fd()]);
    serve(service.unsigned_abs(), Some(report.as_fd()), leave)
}

/// The reaper's loop: forward signals, reap, report the service's end;
/// with a leave, start it again in place after an end it allows.
fn serve(service: u32, report: Option<BorrowedFd<'_>>, mut leave: Option<Leave<'_>>) -> ! {
    // A pid fits an i32 (the kernel's pid_max is at most 2^22).
    let mut raw = i32::try_from(service).unwrap_or(i32::MAX);
    // Read only with a leave: a reaper without one never reads the clock.
    let mut since = match leave {
        Some(_) => crate::sys::clock::now_ns(),
        None => 0,
    };
    loop {
        // Raw calls, not libc's sigwait and kill: serving on a slot (its
        // exec failed), this process shares PID 1's errno.
        let sig = match crate::sys::signal::wait_any() {
            Ok(s) => s,
            Err(_) => continue,
        };
        if sig == REVOKE {
            // A stop on its way: PID 1 signals the service itself.
            leave = None;
            continue;
        }
        if sig != Signal::SIGCHLD as i32 {
            // Anyone's signal (a stop from an older PID 1 among them): the
            // end it brings is PID 1's to act on.
            leave = None;
            // The service called setsid, so its group is its pid.
            if crate::sys::signal::kill(-raw, sig).is_err() {
                let _ = crate::sys::signal::kill(raw, sig);
            }
            continue;
        }
        loop {
            let exit = match rustix::process::wait(WaitOptions::NOHANG) {
                Ok(Some((p, st))) if p.as_raw_nonzero().get() == raw => match ended(st) {
                    Some(e) => e,
                    None => continue,
                },
                Ok(None) | Err(_) => break,
                // Some other process of the namespace: reaped, nothing more.
                Ok(Some(_)) => continue,
            };
            // How long the run lasted, up to its end: not the wait for
            // what it left (below), which a crash loop's children could
            // stretch past the floor. Only with a leave, as `since`.
            let up = leave.map(|_| crate::sys::clock::now_ns().saturating_sub(since));
            // The rest of the namespace goes before the report, so that
            // the report means nothing of the run is left but this
            // reaper: PID 1 restarts the unit on it, before this exit.
            empty_namespace();
            let leave = leave.filter(|l| up.is_some_and(|up| l.allows(exit, up)) && !signalled());
            if let (Some(l), Some(fd)) = (leave, report) {
                if let Some(pid) = relaunch(&l) {
                    if rustix::io::write(fd, &encode_relaunched(exit)) == Ok(REPORT_LEN) {
                        raw = pid;
                        since = crate::sys::clock::now_ns();
                        continue;
                    }
                    // PID 1 would not know of the new run: it goes.
                    let _ = crate::sys::signal::kill(pid, Signal::SIGKILL as i32);
                    empty_namespace();
                }
            }
            if let Some(fd) = report {
                let _ = rustix::io::write(fd, &encode(exit));
                // PID 1 restarts the unit on the report (`pid1::report`)
                // and closes its end a moment after the new run exec'd (at
                // once without a restart). This exit's teardown of the
                // namespaces (and the kernel workers' after it) waits for
                // that, so as not to compete with the start on one CPU;
                // at most a second.
                let _ = rustix::process::setpriority_process(None, 19);
                let mut gone = [rustix::event::PollFd::new(
                    &fd,
                    rustix::event::PollFlags::empty(),
                )];
                let _ = rustix::event::poll(&mut gone, Some(&HOLD));
            }
            let code = match exit {
                Exit::Code(c) => i32::from(c),
                Exit::Signal(s) => 128 + i32::from(s),
                Exit::OomKill => 128 + Signal::SIGKILL as i32,
            };
            // The namespace's init must end when its service is gone; there
            // is nothing of ours to flush.
            crate::sys::clone::exit(code);
        }
    }
}

/// SIGKILL to every other process of the namespace (what the kernel does
/// when its init exits) and reap them all: blocking, as the kernel's own
/// teardown would wait for them. Every process of the namespace that
/// outlived its parent is this reaper's child, so with no child left
/// (ECHILD, the service reaped) nobody is: then it costs one `wait`, not
/// a kill(-1), which walks every task of the system (0.4 ms of an
/// isolated restart under TCG). A process entered from outside (`nsenter
/// -p`) is nobody's child here: it goes with the namespace at this
/// reaper's exit.
fn empty_namespace() {
    if matches!(
        rustix::process::wait(WaitOptions::NOHANG),
        Err(rustix::io::Errno::CHILD)
    ) {
        return;
    }
    // kill(-1) from a namespace's init: all of the namespace but itself.
    // ESRCH: nobody else. Another error: waiting could be for ever; the
    // exit's own teardown kills them, after the report.
    if crate::sys::signal::kill(-1, Signal::SIGKILL as i32).is_err() {
        return;
    }
    loop {
        match rustix::process::wait(WaitOptions::empty()) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            // ECHILD: nobody left.
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_round_trip() {
        for e in [
            Exit::Code(0),
            Exit::Code(3),
            Exit::Code(-1),
            Exit::Signal(9),
            Exit::Signal(15),
        ] {
            assert_eq!(decode(&encode(e)), Some((e, false)));
            assert_eq!(decode(&encode_relaunched(e)), Some((e, true)));
        }
        assert_eq!(decode(&[4, 0, 0, 0, 0]), None);
        assert_eq!(decode(&[0, 1]), None);
        assert_eq!(decode(&[]), None);
    }

    /// What the fork of PID 1 writes of a leave is what the exec'd reaper
    /// reads back: ids, groups, capabilities, flags, the fd limit.
    /// The service's vfork copies only what it and the reaper need: in a
    /// copy of this process, every other fd above 2 is closed.
    #[test]
    fn before_the_service_only_the_needed_fds_stay_open() {
        use rustix::fd::AsRawFd;
        let pipe = || rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
        let (keep_rd, keep_wr) = pipe();
        let (report_rd, report_wr) = pipe();
        let (other_rd, other_wr) = pipe();
        // Whether a number is open, without allocating (a fork of a
        // threaded process) or borrowing a raw fd.
        let open = |fd: i32| {
            let path: heapless::String<32> =
                crate::proto::formatted(format_args!("/proc/self/fd/{fd}"));
            rustix::fs::stat(path.as_str()).is_ok()
        };
        let (k, r, o1, o2) = (
            keep_wr.as_raw_fd(),
            report_wr.as_raw_fd(),
            other_rd.as_raw_fd(),
            other_wr.as_raw_fd(),
        );
        let pid = crate::sys::clone::clone_into(crate::unit::Namespaces(0), None, || {
            close_before_service(&[Some(keep_wr.as_fd()), None], Some(report_wr.as_fd()));
            // Bit 0: the kept fd, bit 1: the report, bits 2-3: the others.
            let code = i32::from(open(k))
                | i32::from(open(r)) << 1
                | i32::from(open(o1)) << 2
                | i32::from(open(o2)) << 3;
            crate::sys::clone::exit(code)
        })
        .unwrap();
        assert_eq!(crate::testutil::wait_exit(pid), Some(0b0011));
        // This process's fds are its own: all still open.
        for fd in [
            &keep_rd, &keep_wr, &report_rd, &report_wr, &other_rd, &other_wr,
        ] {
            assert!(rustix::io::fcntl_getfd(fd).is_ok());
        }
    }
}
