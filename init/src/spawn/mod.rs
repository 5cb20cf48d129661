//! Starting a unit's process: clone3 straight into the unit's cgroup, set
//! up its fds, session and working directory, execve.
//!
//! The child is placed in its cgroup by the kernel at clone time
//! (`CLONE_INTO_CGROUP`), so no instruction of it ever runs outside the
//! unit's limits. Like posix_spawn, the child reports through a
//! close-on-exec pipe: end of file when it has exec'd, or which step failed
//! and why, so a missing binary is an error value, not a mystery exit code
//! later. PID 1 does not wait on that pipe: `start` returns once the child
//! exists, with the pipe's read end (non-blocking) in a `Pending` that the
//! event loop watches, so a child that stalls before exec (its cgroup
//! frozen, a hung mount under `workdir` or `root`) stalls only its unit.
//!
//! Between clone3 and execve the child only makes raw system calls (rustix
//! and the `sys` wrappers), touches no allocator and takes no lock: it is a
//! copy of a single-threaded PID 1, but libc's cached state (e.g. the
//! thread id) describes the parent. Most children do not even copy PID 1:
//! they share its memory until their exec, on a slot (`sys::slot`), with
//! what they read of `start`'s frame moved there (`slot`).

mod privs;
pub mod reaper;
pub mod sandbox;
mod slot;
mod status;
mod stdio;
pub use slot::{kept, set_kept_fds, wide};
use status::{die, fail};
pub use status::{poll_status, Handshake, Pending, SpawnError, Step};

use crate::sys::exec::CStrings;
use crate::unit::{Namespaces, UnitDef};
use crate::vocab::{ENV_BYTES, ENV_MAX};
use rustix::fd::{AsFd, BorrowedFd};
use rustix::io::Errno;
use stdio::setup_stdio;
pub use stdio::{open_null, Stdio};
use wren_core::num::decimal;

/// Environment entries besides the unit's own: PATH, HOME, TERM,
/// NOTIFY_*, WATCHDOG_USEC, WATCHDOG_PID, WREN_SPAWN_NS.
const ENV_EXTRA: usize = 7;
/// Bytes for the extra environment entries.
const ENV_EXTRA_BYTES: usize = 256;
/// fd number the notify pipe gets in the child (`$NOTIFY_FD`).
pub const NOTIFY_FD: i32 = 3;

/// Starts that forked PID 1 (no slot free, or a child that needs a copy:
/// a user namespace, `root`): each copies PID 1's page tables, and its
/// child's exec tears the copy down again. Said in the boot's "units up"
/// line, so that a boot's cost can be read against it.
static FORKED: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

/// The soft `RLIMIT_NOFILE` PID 1 started with, once it raised its own
/// for its units' fds (0: not raised). Units get it back, as systemd's
/// get 1024: a program that uses select(2), or closes every fd up to the
/// limit at its start, is not handed PID 1's thousands.
static UNIT_NOFILE: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);
/// The hard limit PID 1 set with it (0: unlimited), kept by units.
static UNIT_NOFILE_HARD: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// Fds PID 1 may hold per unit (output, readiness, reaper report,
/// pressure trigger; the cgroup directory and the exec status pipe while
/// starting, `cgroup.events` while stopping), and besides its units.
const FDS_PER_UNIT: u64 = 7;
const FDS_BASE: u64 = 256;

/// Raise `RLIMIT_NOFILE` so `units` units' fds fit (the kernel's default
/// soft limit, 1024, is reached near 200 units); never lowers it.
pub fn raise_nofile(units: usize) {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let want = u64::try_from(units)
        .unwrap_or(u64::MAX)
        .saturating_mul(FDS_PER_UNIT)
        .saturating_add(FDS_BASE);
    let cur = getrlimit(Resource::Nofile);
    // `None` is unlimited.
    if cur.current.is_none_or(|c| c >= want) {
        // Raised already: by the PID 1 this one re-exec'd from, whose
        // units got the kernel's 1024 (INR_OPEN_CUR), as systemd's do.
        if cur.current.is_none_or(|c| c > 1024) {
            set_unit_nofile(1024, cur.maximum);
        }
        return;
    }
    let maximum = match cur.maximum {
        Some(m) if m < want => Some(want),
        m => m,
    };
    let new = Rlimit {
        current: Some(want),
        maximum,
    };
    match setrlimit(Resource::Nofile, new) {
        Ok(()) => set_unit_nofile(cur.current.unwrap_or(want), maximum),
        Err(e) => crate::error!("RLIMIT_NOFILE to {want} for {units} units: {e}"),
    }
}

/// PID 1 raised its soft `RLIMIT_NOFILE` from `soft` (its first), its
/// hard one now `hard`: what units get.
pub fn set_unit_nofile(soft: u64, hard: Option<u64>) {
    use core::sync::atomic::Ordering;
    UNIT_NOFILE_HARD.store(hard.unwrap_or(0), Ordering::Relaxed);
    let _ = UNIT_NOFILE.compare_exchange(0, soft, Ordering::Relaxed, Ordering::Relaxed);
}

/// Starts so far that forked (`FORKED`).
pub fn forked() -> u32 {
    FORKED.load(core::sync::atomic::Ordering::Relaxed)
}

/// What the child needs besides its definition.
#[derive(Clone, Copy)]
pub struct Request<'a> {
    pub def: &'a UnitDef,
    /// The unit's cgroup directory (from `cgroup::prepare`); None without
    /// a cgroup2 hierarchy: the child stays in PID 1's cgroup.
    pub cgroup: Option<BorrowedFd<'a>>,
    pub stdio: Stdio<'a>,
    /// `ready = notify`: write end of the readiness pipe.
    pub notify_fd: Option<BorrowedFd<'a>>,
    /// `ready = sd_notify`: the socket's path on the host (`$NOTIFY_SOCKET`
    /// but for a `root` unit, which gets it at `ROOT_NOTIFY_SOCKET`).
    pub notify_socket: Option<&'a str>,
    /// The ids to run as for a unit that names no `user` or `group` (PID 1
    /// gives none, tests do); one that names them has them looked up by
    /// its child (`privs::lookup`).
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// Supplementary groups (`user`'s, initgroups semantics).
    pub groups: &'a [u32],
    /// With a PID namespace: where the namespace's reaper reports how the
    /// service ended (see `reaper`).
    pub exit_report: Option<BorrowedFd<'a>>,
    /// The unit's seccomp filter, built when it was loaded.
    pub seccomp: Option<&'a crate::sys::seccomp::Program>,
    /// `wren.stamp`: when PID 1 decided to start the unit (CLOCK_MONOTONIC
    /// nanoseconds), passed as `$WREN_SPAWN_NS`.
    pub decided_ns: Option<u64>,
    /// A restart on one CPU: a namespace's reaper sleeps RESTART_GRACE
    /// once its service has exec'd, before the rest of its work
    /// (`reaper_child`).
    pub grace: bool,
    /// `/dev/console`, opened by the child before its namespaces are set
    /// up (`early_console`); None: `setup_stdio` opens the path.
    pub console: Option<BorrowedFd<'a>>,
    /// The namespace's reaper may start the service again itself
    /// (`UnitDef::relaunches_in_place`, and PID 1 agrees: `reaper::Leave`).
    pub relaunch: bool,
}

/// How long, on a restart on one CPU, a namespace's reaper
/// (`Request::grace`, `reaper_child`) and PID 1 (`pid1::handshake`) leave
/// the CPU to the service that just exec'd before their own work on it.
pub(crate) const RESTART_GRACE_NS: u64 = 10_000_000;
pub(crate) const RESTART_GRACE: rustix::thread::Timespec =
    crate::sys::clock::timespec(RESTART_GRACE_NS);

type ArgTable = CStrings<{ crate::vocab::EXEC_BYTES + 1 }, { crate::vocab::ARGS_MAX + 1 }>;
type EnvTable = CStrings<{ ENV_BYTES + ENV_EXTRA_BYTES }, { ENV_MAX + ENV_EXTRA + 1 }>;

/// The unit's environment. `main_pid`: the pid the program will have, for
/// `$WATCHDOG_PID`, known only in the child.
fn build_env(req: &Request<'_>, env: &mut EnvTable, main_pid: Option<u32>) -> Option<()> {
    // The readiness variables this start sets are ours, as systemd's are
    // its own: a unit's `env` of one would come first and win getenv(3),
    // and its readiness would never come.
    let watchdog = req.notify_socket.is_some() && req.def.seldom.watchdog.is_some();
    let ours = |key: &str| match key {
        "NOTIFY_FD" => req.notify_fd.is_some(),
        "NOTIFY_SOCKET" => req.notify_socket.is_some(),
        "WATCHDOG_USEC" | "WATCHDOG_PID" => watchdog,
        "WREN_SPAWN_NS" => req.decided_ns.is_some(),
        _ => false,
    };
    for e in req.def.env.iter() {
        if !e.split_once('=').is_some_and(|(k, _)| ours(k)) {
            env.push(&[e])?;
        }
    }
    for (k, v) in [
        ("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        ("HOME", "/"),
        ("TERM", "linux"),
    ] {
        if !env.has_key(k) {
            env.push(&[k, "=", v])?;
        }
    }
    if req.notify_fd.is_some() {
        env.push(&["NOTIFY_FD=3"])?;
    }
    if let Some(path) = req.notify_socket {
        let path = match req.def.seldom.root {
            Some(_) => sandbox::ROOT_NOTIFY_SOCKET,
            None => path,
        };
        env.push(&["NOTIFY_SOCKET=", path])?;
        // systemd's names: the period in microseconds, and which process
        // it is meant for (sd_watchdog_enabled() checks it).
        if let Some(ms) = req.def.seldom.watchdog {
            let mut digits = [0u8; 20];
            env.push(&[
                "WATCHDOG_USEC=",
                decimal(ms.saturating_mul(1000), &mut digits),
            ])?;
            if let Some(pid) = main_pid {
                env.push(&["WATCHDOG_PID=", decimal(u64::from(pid), &mut digits)])?;
            }
        }
    }
    if let Some(ns) = req.decided_ns {
        let mut digits = [0u8; 20];
        env.push(&["WREN_SPAWN_NS=", decimal(ns, &mut digits)])?;
    }
    Some(())
}

/// Start `req.def`'s process: clone3 into its cgroup and namespaces.
/// Returns as soon as the child exists; whether it exec'd is told by
/// `Pending::poll` once its status pipe is readable.
pub fn start(req: &Request<'_>) -> Result<Pending, SpawnError> {
    #[cfg(test)]
    stdio::open_null_before_a_start();
    let fail = |step, e: Errno| SpawnError {
        step,
        errno: e.raw_os_error(),
    };
    let prep = SpawnError {
        step: Step::Prepare,
        errno: Errno::TOOBIG.raw_os_error(),
    };
    // Built where a child on a slot gets a copy of it all (`SlotFrame`).
    let mut frame = slot::SlotFrame {
        req: Request {
            groups: &[],
            notify_socket: None,
            ..*req
        },
        groups: [0; crate::config::users::GROUPS_MAX],
        n_groups: 0,
        socket: [0; slot::SOCKET_PATH_MAX],
        socket_len: None,
        argv: ArgTable::new(),
        env: EnvTable::new(),
    };
    for a in req.def.exec.iter() {
        frame.argv.push(&[a]).ok_or(prep)?;
    }
    build_env(req, &mut frame.env, None).ok_or(prep)?;
    if frame.argv.is_empty() {
        return Err(prep);
    }

    // Non-blocking at both ends: PID 1 never waits on its end, and the
    // child's one five-byte write to an empty pipe cannot block.
    let (status_rd, status_wr) = rustix::pipe::pipe_with(
        rustix::pipe::PipeFlags::CLOEXEC | rustix::pipe::PipeFlags::NONBLOCK,
    )
    .map_err(|e| fail(Step::StatusPipe, e))?;
    // PID 1's end lives until the exec handshake: out of the numbers
    // below LOW_FDS, which a boot's batch of starts would fill up.
    let status_rd = kept(status_rd);

    // A new user namespace: the child waits on this pipe until PID 1 has
    // written its id maps (which needs its pid, so comes after clone3).
    let user_map = req.def.user_map_effective();
    let sync = match user_map {
        Some(_) => Some(
            rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
                .map_err(|e| fail(Step::UserSync, e))?,
        ),
        None => None,
    };
    let sync_rd = sync.as_ref().map(|(r, _)| r.as_fd());

    let pid_ns = req.def.namespaces.has(Namespaces::PID);
    // A user namespace waits for its id maps (the fork path's business);
    // a `root` unit logs from the child (`sandbox::enter`), which takes
    // the logger's lock: both fork.
    if user_map.is_none() && req.def.seldom.root.is_none() {
        if let Some(slot) = crate::sys::slot::claim() {
            let slot = match wide() && slot::all_low(req, status_wr.as_fd()) {
                true => slot.low_fds(),
                false => slot,
            };
            if let Some(pid) = slot::start_on_slot(slot, req, &mut frame, status_wr.as_fd()) {
                // The child's copy of the write end is now the only one.
                drop(status_wr);
                return Ok(Pending {
                    pid,
                    status: status_rd,
                });
            }
        }
    }
    let (argv, env) = (&frame.argv, &frame.env);
    FORKED.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
    // The closure owns the status pipe's write end: in PID 1 it is dropped
    // with the closure when clone_into returns, so that the child's copy is
    // the only one left and its exec (or exit) is seen as EOF.
    let pid = crate::sys::clone::clone_into(req.def.namespaces, req.cgroup, move || {
        crate::kmsg::forked();
        let console = early_console(req);
        let req = &Request {
            console: console.as_ref().map(AsFd::as_fd),
            ..*req
        };
        if let Some(rd) = sync_rd {
            if let Err((s, e)) = privs::wait_for_user_map(rd) {
                die(status_wr.as_fd(), fail(s, e));
            }
        }
        if pid_ns {
            reaper_child(req, argv, env, status_wr.as_fd(), None);
        }
        let err = child(req, argv, env, true);
        die(status_wr.as_fd(), err)
    })
    .map_err(|e| fail(Step::Clone, e))?;
    if let (Some(map), Some((_, sync_wr))) = (user_map, sync.as_ref()) {
        let written = privs::write_user_map(pid, map);
        let told = rustix::io::write(sync_wr, &[u8::from(written.is_ok())]);
        if told != Ok(1) {
            // It would wait for ever: it goes instead.
            if let Some(p) = rustix::process::Pid::from_raw(pid as i32) {
                let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
            }
        }
        written.map_err(|e| fail(Step::UserMap, e))?;
    }
    Ok(Pending {
        pid,
        status: status_rd,
    })
}

/// PID 1 of the unit's new PID namespace: set the namespaces up, fork the
/// service, then become its reaper. Never returns. `on`: the slot it runs
/// on, whose second stack the service gets; else the fork's own.
fn reaper_child(
    req: &Request<'_>,
    argv: &ArgTable,
    env: &EnvTable,
    status_wr: BorrowedFd<'_>,
    on: Option<crate::sys::slot::InSlot>,
) -> ! {
    let fail = |step, e: Errno| SpawnError {
        step,
        errno: e.raw_os_error(),
    };
    // As PID 1 (and as on a slot, where it is inherited: `sys::slot`), the
    // reaper is SCHED_BATCH: woken when its service's exec lets the vfork
    // return, it does not preempt the rest of that exec and the service's
    // start on one CPU. The service gets the default policy back.
    if on.is_none() {
        let _ = crate::sys::sched::batch();
    }
    // Every signal blocked before the service exists, so none (SIGCHLD
    // above all) is lost before the reaper waits for it. PID 1 already
    // blocks them all; this does not rely on it.
    if let Err(e) = crate::sys::signal::block_all() {
        die(status_wr.as_fd(), fail(Step::SignalMask, e));
    }
    // Its own session, so PID 1's stop signal to the group reaches it.
    if let Err(e) = rustix::process::setsid() {
        die(status_wr.as_fd(), fail(Step::Setsid, e));
    }
    let ids = privs::lookup(req).unwrap_or_else(|e| die(status_wr, e));
    let req = &with_ids(req, ids.as_ref());
    if let Err((s, e)) = crate::spawn::sandbox::enter(req.def, req.notify_socket, req.uid) {
        die(status_wr.as_fd(), fail(Step::Namespace(s), e));
    }
    // The service's vfork copies this process's fd table and its exec
    // closes the copy again: only what the service and the reaper use is
    // left open, not PID 1's whole table (other units' pipes: thousands
    // at 1,000 units, copied and closed at every isolated start).
    crate::spawn::reaper::close_before_service(
        &[Some(status_wr), req.stdio.fd(), req.notify_fd, req.console],
        req.exit_report,
    );
    // What the reaper keeps of the definition, which lives in PID 1's
    // unit table, copied onto its own stack (never allocated: it shares
    // PID 1's heap) before the service exists: once the service has said
    // it failed, PID 1 may revert the unit's probation, which replaces the
    // definition, and once the slot is detached a reload may free it.
    let on_failure = req.def.restart == crate::unit::Restart::OnFailure;
    let privs = privs::Privs::of(req.def, req.uid, req.gid, req.groups);
    let mut workdir: heapless::String<{ crate::vocab::PATH_BYTES }> = heapless::String::new();
    if workdir.push_str(req.def.workdir.as_str()).is_err() {
        die(status_wr, fail(Step::Chdir, Errno::NAMETOOLONG));
    }
    // The reaper may wait for the service's exec, so the service shares
    // its memory until then rather than copy it (`sys::vfork`), on the
    // slot's second stack when the reaper runs on a slot.
    let service = |status: BorrowedFd<'_>| {
        let err = child(req, argv, env, false);
        die(status, err)
    };
    let service = match on {
        Some(on) => on.vfork(|| service(status_wr)),
        None => crate::sys::vfork::spawn(|| service(status_wr)),
    };
    match service {
        Err(e) => die(status_wr, fail(Step::Fork, e)),
        // Only the service's copy may hold the status pipe open (PID 1
        // sees EOF when the service execs): `run` closes the reaper's, or,
        // on a restart's grace, `close_early` before it.
        Ok(svc) => {
            // From here the reaper reads none of PID 1's data (its own
            // frame's copy, fds, the executable's static fd): a reload
            // need not wait for it, nor kill it (and its running service
            // with its namespace) when it is slow to exec, starved at nice
            // 19 on a busy board or sleeping out a restart's grace.
            if let Some(on) = on.as_ref() {
                on.detach();
            }
            if req.grace {
                // A restart on one CPU: woken when the exec replaced the
                // service's memory, before that exec is over, the reaper
                // is the task the scheduler picks next after any
                // preemption (it slept; the service ran). It closes only
                // its copy of the status pipe (PID 1 sees the exec now)
                // and sleeps; the rest of its work (`settle_stdio`, its
                // fds, its nice, its exec) waits, as PID 1's does.
                // Signals stay pending meanwhile.
                crate::sys::fd::close_early(status_wr);
                let _ = rustix::thread::nanosleep(&RESTART_GRACE);
            }
            let keep = [Some(status_wr), req.exit_report];
            crate::spawn::reaper::settle_stdio(req.stdio.fd(), &keep);
            let again = match req.relaunch {
                true => Some(crate::spawn::reaper::Again {
                    leave: crate::spawn::reaper::Leave {
                        on_failure,
                        nofile: unit_nofile_now(),
                        privs,
                    },
                    workdir: workdir.as_str(),
                    argv,
                    env,
                }),
                false => None,
            };
            crate::spawn::reaper::run(svc, req.exit_report, on, again.as_ref())
        }
    }
}

/// `req` with the ids `privs::lookup` found, or as it was.
fn with_ids<'a>(req: &Request<'a>, ids: Option<&'a crate::config::users::Ids>) -> Request<'a> {
    match ids {
        Some(ids) => Request {
            uid: ids.uid,
            gid: ids.gid,
            groups: &ids.groups,
            ..*req
        },
        None => *req,
    }
}

/// `/dev/console` for a unit whose output or terminal is the console
/// and that cannot open it by the path once set up: in its own `root`
/// the node may not be there (only `console = yes` gets one), and in a
/// user namespace the node (root's, 0600) is refused to the namespace's
/// root, the host's root being unmapped. Opened at the child's start, as
/// the host's root still. On failure, None: `setup_stdio` tries the path
/// and reports.
fn early_console(req: &Request<'_>) -> Option<rustix::fd::OwnedFd> {
    let console = matches!(req.stdio, Stdio::Console | Stdio::ConsoleTty { .. });
    let apart = req.def.seldom.root.is_some() || req.def.namespaces.has(Namespaces::USER);
    if !(console && apart) {
        return None;
    }
    stdio::open_above_2("/dev/console").ok()
}

/// The child between clone3 and execve (with a PID namespace, the
/// reaper's child). Returns only on failure.
fn child(req: &Request<'_>, argv: &ArgTable, env: &EnvTable, enter_namespaces: bool) -> SpawnError {
    let fail = |step, e: Errno| SpawnError {
        step,
        errno: e.raw_os_error(),
    };
    if let Err((step, e)) = own_session() {
        return fail(step, e);
    }
    // The reaper's service (`enter_namespaces` false) has the reaper's.
    let ids = match enter_namespaces {
        true => match privs::lookup(req) {
            Ok(ids) => ids,
            Err(e) => return e,
        },
        false => None,
    };
    let req = &with_ids(req, ids.as_ref());
    if enter_namespaces {
        if let Err((s, e)) = crate::spawn::sandbox::enter(req.def, req.notify_socket, req.uid) {
            return fail(Step::Namespace(s), e);
        }
    }
    // `$WATCHDOG_PID` is this process's pid, as the program will see it
    // (in its PID namespace, if any): only known here, so the table is
    // built again, on this stack.
    let mut own = EnvTable::new();
    let env = if req.def.seldom.watchdog.is_some() && req.notify_socket.is_some() {
        let pid = rustix::process::getpid().as_raw_nonzero().get() as u32;
        if build_env(req, &mut own, Some(pid)).is_none() {
            return fail(Step::Prepare, Errno::TOOBIG);
        }
        &own
    } else {
        env
    };
    // The notify fd goes to 3 by way of a number out of the way of 0-3:
    // first there, before stdio is rearranged over 0-2 (where it may be);
    // onto 3 only after, as 3 may be what stdio comes from (PID 1's
    // output pipe or /dev/null, on a boot without /dev/kmsg at 3).
    let notify = match req
        .notify_fd
        .map(|n| rustix::io::fcntl_dupfd_cloexec(n, 10))
    {
        Some(Err(e)) => return fail(Step::NotifyFd, e),
        Some(Ok(high)) => Some(high),
        None => None,
    };
    if let Err((step, e)) = setup_stdio(&req.stdio, req.console) {
        return fail(step, e);
    }
    if let Some(Err(e)) = notify.map(|high| crate::sys::fd::move_for_exec(high.as_fd(), NOTIFY_FD))
    {
        return fail(Step::NotifyFd, e);
    }
    let mut workdir = crate::sys::path::CPath::new();
    let chdir = workdir
        .of_str(&req.def.workdir)
        .and_then(rustix::process::chdir);
    if let Err(e) = chdir {
        return fail(Step::Chdir, e);
    }
    // The unit's fd limit once the child opened all it opens: a forked
    // child holds PID 1's fds (thousands at 1,000 units) until its exec,
    // and under a lowered limit each open of its would fail with EMFILE.
    unit_nofile(unit_nofile_now());
    // Ids, capabilities, no_new_privs, then the seccomp filter: the last
    // step before execve.
    let p = privs::Privs::of(req.def, req.uid, req.gid, req.groups);
    if let Err((step, e)) = privs::confine(&p, req.seccomp) {
        return fail(step, e);
    }
    fail(Step::Exec, crate::sys::exec::execve(argv, env))
}

/// A unit's process's first steps: signals as a program expects them,
/// and a session of its own.
fn own_session() -> Result<(), (Step, Errno)> {
    // PID 1 blocks every signal for its signalfd, and a PID 1 exec'd by an
    // older wren (whose Rust start-up ignored it) may ignore SIGPIPE; a
    // service must start with neither.
    crate::sys::signal::unblock_all().map_err(|e| (Step::SignalMask, e))?;
    crate::sys::signal::set_default(nix::sys::signal::Signal::SIGPIPE)
        .map_err(|e| (Step::SignalMask, e))?;
    // Own session and process group, so the stop signal reaches the whole
    // group and a console unit can take the terminal.
    rustix::process::setsid().map_err(|e| (Step::Setsid, e))?;
    Ok(())
}

/// The unit's fd limit (`set_unit_nofile`): soft, hard (0: unchanged).
pub(crate) fn unit_nofile_now() -> (u64, u64) {
    use core::sync::atomic::Ordering::Relaxed;
    (UNIT_NOFILE.load(Relaxed), UNIT_NOFILE_HARD.load(Relaxed))
}

/// Lower this process's fd limit to the unit's (soft 0: none set).
fn unit_nofile((soft, hard): (u64, u64)) {
    if soft != 0 {
        use rustix::process::{setrlimit, Resource, Rlimit};
        let lim = Rlimit {
            current: Some(soft),
            maximum: Some(hard).filter(|&h| h != 0),
        };
        // Lowering the soft limit cannot be refused; were it, the unit
        // would run with PID 1's.
        let _ = setrlimit(Resource::Nofile, lim);
    }
}

#[cfg(test)]
mod tests;
