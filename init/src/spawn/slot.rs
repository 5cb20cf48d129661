//! `start`'s child on a slot (`sys::slot`): it shares PID 1's memory
//! until its exec, so what it reads of `start`'s frame is copied into the
//! slot first. And when such a start goes through the trampoline, with
//! only PID 1's fds below 64 (`wide`, `all_low`).

use super::{child, die, fail, reaper_child, ArgTable, EnvTable, Request, Step};
use crate::unit::Namespaces;
use rustix::fd::BorrowedFd;
use rustix::io::Errno;

/// Bytes of a notify socket's path copied into a slot (`sun_path`).
pub(super) const SOCKET_PATH_MAX: usize = 108;

/// What a child on a slot reads, moved there: `req` but for its groups
/// and socket path, which point into the caller's frame and are copied
/// beside it.
pub(super) struct SlotFrame<'a> {
    pub(super) req: Request<'a>,
    pub(super) groups: [u32; crate::config::users::GROUPS_MAX],
    pub(super) n_groups: usize,
    pub(super) socket: [u8; SOCKET_PATH_MAX],
    pub(super) socket_len: Option<usize>,
    pub(super) argv: ArgTable,
    pub(super) env: EnvTable,
}

/// `start`'s child on a slot: None when the frame does not fit or the
/// clone failed (the caller then forks, which reports any error again).
///
/// What the child reads through `req` besides the copies (the UnitDef,
/// the seccomp program) lives in PID 1's unit table, replaced only by a
/// reload, which first waits for busy slots (`sys::slot::quiesce`).
pub(super) fn start_on_slot<'a>(
    slot: crate::sys::slot::Slot,
    req: &Request<'a>,
    frame: &mut SlotFrame<'a>,
    status_wr: BorrowedFd<'_>,
) -> Option<u32> {
    frame.n_groups = req.groups.len();
    frame
        .groups
        .get_mut(..frame.n_groups)?
        .copy_from_slice(req.groups);
    frame.socket_len = req.notify_socket.map(str::len);
    if let (Some(path), Some(len)) = (req.notify_socket, frame.socket_len) {
        frame
            .socket
            .get_mut(..len)?
            .copy_from_slice(path.as_bytes());
    }
    let pid_ns = req.def.namespaces.has(Namespaces::PID);
    slot.spawn(req.def.namespaces, req.cgroup, frame, move |f, on| {
        let socket = match f.socket_len {
            Some(len) => match f.socket.get(..len).map(core::str::from_utf8) {
                Some(Ok(s)) => Some(s),
                _ => die(status_wr, fail(Step::Prepare, Errno::INVAL)),
            },
            None => None,
        };
        let req = Request {
            groups: f.groups.get(..f.n_groups).unwrap_or(&[]),
            notify_socket: socket,
            ..f.req
        };
        if pid_ns {
            reaper_child(&req, &f.argv, &f.env, status_wr, Some(on));
        }
        // PID 1's SCHED_BATCH stays with a reaper (`sys::slot`); the unit's
        // program gets the default policy.
        let _ = crate::sys::sched::normal();
        let err = child(&req, &f.argv, &f.env, true);
        die(status_wr, err)
    })
    .ok()
}

/// PID 1's count of the fds it keeps for its units (`set_kept_fds`).
static KEPT_FDS: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);
/// From this many kept fds on, a start on a slot goes through the
/// trampoline (`sys::slot`), when all the child's fds are low: the
/// trampoline costs about 50 µs of instructions (a thread made and gone),
/// and saves about 0.3 µs for each fd the child neither copies nor closes
/// (icount; docs/benchmarks.md, "Fifteenth round"): a loss at 100 bare
/// units, a gain at 100 isolated ones (two fds a unit) and at 1,000.
const TRAMPOLINE_FROM: usize = 160;

/// PID 1 keeps `n` fds for its units (output pipes, reports, readiness,
/// pressure triggers), as configured (boot, reload).
pub fn set_kept_fds(n: usize) {
    KEPT_FDS.store(n, core::sync::atomic::Ordering::Relaxed);
}

/// PID 1 keeps enough fds for its units that starts go through the
/// trampoline: the fds it holds past a start are kept above LOW_FDS.
pub fn wide() -> bool {
    KEPT_FDS.load(core::sync::atomic::Ordering::Relaxed) >= TRAMPOLINE_FROM
}

/// An fd PID 1 keeps past a start: with starts by trampoline, moved above
/// the numbers the child gets; else left where it is (a move is a dup
/// and a close).
pub fn kept(fd: rustix::fd::OwnedFd) -> rustix::fd::OwnedFd {
    match wide() {
        true => crate::sys::fd::raise(fd),
        false => fd,
    }
}

/// Every fd of PID 1's that the child (and, with a PID namespace, its
/// reaper and service) uses is below `sys::slot::LOW_FDS`: it may start
/// with only those (`sys::slot::Slot::low_fds`).
pub(super) fn all_low(req: &Request<'_>, status_wr: BorrowedFd<'_>) -> bool {
    use rustix::fd::AsRawFd;
    [
        Some(status_wr),
        req.cgroup,
        req.stdio.fd(),
        req.notify_fd,
        req.exit_report,
    ]
    .into_iter()
    .chain(super::reaper::always_kept())
    .flatten()
    .all(|fd| u32::try_from(fd.as_raw_fd()).is_ok_and(|n| n < crate::sys::slot::LOW_FDS))
}
