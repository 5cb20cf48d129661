//! Starting a unit's process: clone3 straight into the unit's cgroup, set
//! up its fds, session and working directory, execve.
//!
//! The child is placed in its cgroup by the kernel at clone time
//! (`CLONE_INTO_CGROUP`), so no instruction of it ever runs outside the
//! unit's limits. Like posix_spawn, the parent waits on a close-on-exec pipe
//! until the child has exec'd or reported which step failed and why, so a
//! missing binary is an error value here, not a mystery exit code later.
//!
//! Between clone3 and execve the child only makes raw system calls (rustix
//! and a few libc syscall wrappers), touches no allocator and takes no lock:
//! it is a copy of a single-threaded PID 1, but libc's cached state (e.g.
//! the thread id) describes the parent.

pub mod reaper;
pub mod sandbox;

use crate::unit::{Namespaces, UnitDef};
use crate::vocab::{ENV_BYTES, ENV_MAX};
use rustix::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use rustix::io::Errno;
use std::ffi::c_char;

/// Environment entries besides the unit's own: defaults and NOTIFY_*.
const ENV_EXTRA: usize = 4;
/// Bytes for the extra environment entries.
const ENV_EXTRA_BYTES: usize = 256;
/// fd number the notify pipe gets in the child (`$NOTIFY_FD`).
pub const NOTIFY_FD: i32 = 3;

/// The step of spawning that failed; one variant per step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// argv or env did not fit the fixed buffers.
    Prepare,
    StatusPipe,
    Clone,
    SignalMask,
    Setsid,
    Console,
    Stdio,
    NotifyFd,
    Chdir,
    Groups,
    Setgid,
    Setuid,
    Exec,
    /// The child died before exec without saying why.
    Unknown,
    /// Setting up the unit's namespaces (mounts, root, hostname, lo).
    Namespace(crate::spawn::sandbox::Step),
    /// The namespace's reaper could not fork the service.
    Fork,
}

impl Step {
    const PLAIN: [Step; 14] = [
        Step::Prepare,
        Step::StatusPipe,
        Step::Clone,
        Step::SignalMask,
        Step::Setsid,
        Step::Console,
        Step::Stdio,
        Step::NotifyFd,
        Step::Chdir,
        Step::Groups,
        Step::Setgid,
        Step::Setuid,
        Step::Exec,
        Step::Unknown,
    ];
    const FORK_CODE: u8 = 30;

    fn code(self) -> u8 {
        match self {
            Step::Namespace(s) => s as u8,
            Step::Fork => Self::FORK_CODE,
            plain => Self::PLAIN
                .iter()
                .position(|p| *p == plain)
                .map(|i| i as u8)
                .unwrap_or(Self::FORK_CODE - 1),
        }
    }

    fn from_code(c: u8) -> Step {
        if c == Self::FORK_CODE {
            return Step::Fork;
        }
        if let Some(s) = crate::spawn::sandbox::Step::from_code(c) {
            return Step::Namespace(s);
        }
        Self::PLAIN
            .get(usize::from(c))
            .copied()
            .unwrap_or(Step::Unknown)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Step::Prepare => "prepare argv/env",
            Step::StatusPipe => "status pipe",
            Step::Clone => "clone3 into cgroup",
            Step::SignalMask => "reset signal mask",
            Step::Setsid => "setsid",
            Step::Console => "open console",
            Step::Stdio => "set up stdio",
            Step::NotifyFd => "set up NOTIFY_FD",
            Step::Chdir => "chdir to workdir",
            Step::Groups => "clear supplementary groups",
            Step::Setgid => "setgid",
            Step::Setuid => "setuid",
            Step::Exec => "execve",
            Step::Unknown => "child died before exec",
            Step::Namespace(s) => s.as_str(),
            Step::Fork => "fork the service in its PID namespace",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpawnError {
    pub step: Step,
    pub errno: i32,
}

impl core::fmt::Display for SpawnError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{}: {}",
            self.step.as_str(),
            Errno::from_raw_os_error(self.errno)
        )
    }
}

/// Where the unit's stdout/stderr go (stdin is /dev/null unless console).
pub enum Stdio<'a> {
    /// `console = yes`: /dev/console as controlling terminal and stdin;
    /// stdout/stderr on it too, or on `out` when the unit's `output` says
    /// otherwise.
    ConsoleTty {
        out: Option<BorrowedFd<'a>>,
    },
    /// `output = console`.
    Console,
    /// `output = log`: the write end of the unit's log pipe.
    Pipe(BorrowedFd<'a>),
    Null,
}

/// What the child needs besides its definition.
pub struct Request<'a> {
    pub def: &'a UnitDef,
    /// The unit's cgroup directory (from `cgroup::prepare`).
    pub cgroup: BorrowedFd<'a>,
    pub stdio: Stdio<'a>,
    /// `ready = notify`: write end of the readiness pipe.
    pub notify_fd: Option<BorrowedFd<'a>>,
    /// `ready = sd_notify`: the socket path for `$NOTIFY_SOCKET`.
    pub notify_socket: Option<&'a str>,
    /// Resolved `user` / `group` (the caller reads /etc/passwd).
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// With a PID namespace: where the namespace's reaper reports how the
    /// service ended (see `reaper`).
    pub exit_report: Option<BorrowedFd<'a>>,
    /// `wren.stamp`: when PID 1 decided to start the unit (CLOCK_MONOTONIC
    /// nanoseconds), passed as `$WREN_SPAWN_NS`.
    pub decided_ns: Option<u64>,
}

/// A NUL-terminated string table and the pointer array execve wants, in
/// fixed storage.
struct CTable<const B: usize, const P: usize> {
    bytes: [u8; B],
    used: usize,
    ptrs: [*const c_char; P],
    n: usize,
}

impl<const B: usize, const P: usize> CTable<B, P> {
    fn new() -> Self {
        CTable {
            bytes: [0; B],
            used: 0,
            ptrs: [core::ptr::null(); P],
            n: 0,
        }
    }

    /// Append `parts` concatenated as one C string.
    fn push(&mut self, parts: &[&str]) -> Option<()> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        // Keep one pointer slot for the terminating null.
        if self.n + 1 >= P || self.used + len + 1 > B {
            return None;
        }
        let start = self.used;
        for p in parts {
            let dst = self.bytes.get_mut(self.used..self.used + p.len())?;
            dst.copy_from_slice(p.as_bytes());
            self.used += p.len();
        }
        *self.bytes.get_mut(self.used)? = 0;
        self.used += 1;
        *self.ptrs.get_mut(self.n)? = start as *const c_char;
        self.n += 1;
        Some(())
    }

    /// Turn offsets into pointers; valid while `self` does not move.
    fn finish(&mut self) -> *const *const c_char {
        let base = self.bytes.as_ptr();
        for p in self.ptrs.iter_mut().take(self.n) {
            let off = *p as usize;
            // `off` came from `push`, so it is inside `bytes`.
            *p = base.wrapping_add(off) as *const c_char;
        }
        self.ptrs.as_ptr()
    }

    fn has_key(&self, key: &str) -> bool {
        // Only used before `finish`, when ptrs hold offsets.
        self.ptrs.iter().take(self.n).any(|&p| {
            let off = p as usize;
            self.bytes
                .get(off..off + key.len() + 1)
                .is_some_and(|s| s.starts_with(key.as_bytes()) && s.last() == Some(&b'='))
        })
    }
}

type ArgTable = CTable<{ crate::vocab::EXEC_BYTES + 1 }, { crate::vocab::ARGS_MAX + 1 }>;
type EnvTable = CTable<{ ENV_BYTES + ENV_EXTRA_BYTES }, { ENV_MAX + ENV_EXTRA + 1 }>;

fn build_env(req: &Request<'_>, env: &mut EnvTable) -> Option<()> {
    for e in req.def.env.iter() {
        env.push(&[e])?;
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
        env.push(&["NOTIFY_SOCKET=", path])?;
    }
    if let Some(ns) = req.decided_ns {
        let mut digits = [0u8; 20];
        env.push(&["WREN_SPAWN_NS=", decimal(ns, &mut digits)])?;
    }
    Some(())
}

/// `n` in decimal, into `buf`, without allocating.
fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &str {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    core::str::from_utf8(&buf[i..]).unwrap_or("0")
}

/// The clone3 argument block (linux/sched.h, version 2 with `cgroup`).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// clone3 flags for the unit's `namespaces`.
pub fn clone_flags(ns: Namespaces) -> u64 {
    let mut f = 0u64;
    for (bit, flag) in [
        (Namespaces::PID, libc::CLONE_NEWPID),
        (Namespaces::MOUNT, libc::CLONE_NEWNS),
        (Namespaces::UTS, libc::CLONE_NEWUTS),
        (Namespaces::IPC, libc::CLONE_NEWIPC),
        (Namespaces::NET, libc::CLONE_NEWNET),
        (Namespaces::CGROUP, libc::CLONE_NEWCGROUP),
    ] {
        if ns.has(bit) {
            f |= flag as u64;
        }
    }
    f
}

/// fork-like clone3: returns 0 in the child, the child's pid in the parent.
fn clone3(flags: u64, cgroup: Option<BorrowedFd<'_>>) -> Result<i64, Errno> {
    let mut args = CloneArgs {
        flags: flags
            | if cgroup.is_some() {
                CLONE_INTO_CGROUP
            } else {
                0
            },
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup.map(|c| c.as_raw_fd() as u64).unwrap_or(0),
        ..CloneArgs::default()
    };
    // SAFETY: clone3 without CLONE_VM and without a stack behaves like fork:
    // the child gets a copy of this single-threaded process. `args` is a
    // valid, initialised clone_args of the size passed.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            core::mem::size_of::<CloneArgs>(),
        )
    };
    if ret < 0 {
        Err(Errno::from_raw_os_error(last_errno()))
    } else {
        Ok(ret)
    }
}

/// Tell the parent which step failed, then end the child.
fn die(status_wr: BorrowedFd<'_>, err: SpawnError) -> ! {
    let mut msg = [0u8; 5];
    msg[0] = err.step.code();
    msg[1..].copy_from_slice(&err.errno.to_le_bytes());
    let _ = rustix::io::write(status_wr, &msg);
    // SAFETY: _exit ends the child without running the parent's
    // destructors or atexit handlers, which belong to PID 1.
    unsafe { libc::_exit(127) }
}

/// Start `req.def`'s process; returns its pid once it has exec'd.
pub fn spawn(req: &Request<'_>) -> Result<u32, SpawnError> {
    let fail = |step, e: Errno| SpawnError {
        step,
        errno: e.raw_os_error(),
    };
    let prep = SpawnError {
        step: Step::Prepare,
        errno: Errno::TOOBIG.raw_os_error(),
    };
    let mut argv = ArgTable::new();
    for a in req.def.exec.iter() {
        argv.push(&[a]).ok_or(prep)?;
    }
    let mut env = EnvTable::new();
    build_env(req, &mut env).ok_or(prep)?;
    let argv_p = argv.finish();
    let env_p = env.finish();
    let path = argv.ptrs[0];
    if path.is_null() {
        return Err(prep);
    }

    let (status_rd, status_wr) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| fail(Step::StatusPipe, e))?;

    let pid_ns = req.def.namespaces.has(Namespaces::PID);
    let flags = clone_flags(req.def.namespaces);
    let ret = clone3(flags, Some(req.cgroup)).map_err(|e| fail(Step::Clone, e))?;
    if ret == 0 {
        // Child: never returns.
        if pid_ns {
            reaper_child(req, path, argv_p, env_p, &status_wr);
        }
        let err = child(req, path, argv_p, env_p, true);
        die(status_wr.as_fd(), err);
    }
    drop(status_wr);
    let pid = ret as u32;
    let mut msg = [0u8; 5];
    let mut got = 0;
    while got < msg.len() {
        match rustix::io::read(&status_rd, &mut msg[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(Errno::INTR) => continue,
            Err(_) => break,
        }
    }
    match got {
        // EOF with nothing written: the close-on-exec end closed at execve.
        0 => Ok(pid),
        5 => Err(SpawnError {
            step: Step::from_code(msg[0]),
            errno: i32::from_le_bytes([msg[1], msg[2], msg[3], msg[4]]),
        }),
        _ => Err(SpawnError {
            step: Step::Unknown,
            errno: 0,
        }),
    }
}

fn last_errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// PID 1 of the unit's new PID namespace: set the namespaces up, fork the
/// service, then become its reaper. Never returns.
fn reaper_child(
    req: &Request<'_>,
    path: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
    status_wr: &OwnedFd,
) -> ! {
    let fail = |step, e: Errno| SpawnError {
        step,
        errno: e.raw_os_error(),
    };
    // Every signal blocked before the service exists, so none (SIGCHLD
    // above all) is lost before the reaper waits for it. PID 1 already
    // blocks them all; this does not rely on it.
    if let Err(e) = nix::sys::signal::SigSet::all().thread_block() {
        die(
            status_wr.as_fd(),
            fail(Step::SignalMask, Errno::from_raw_os_error(e as i32)),
        );
    }
    // Its own session, so PID 1's stop signal to the group reaches it.
    if let Err(e) = rustix::process::setsid() {
        die(status_wr.as_fd(), fail(Step::Setsid, e));
    }
    if let Err((s, e)) = crate::spawn::sandbox::enter(req.def) {
        die(status_wr.as_fd(), fail(Step::Namespace(s), e));
    }
    match clone3(0, None) {
        Err(e) => die(status_wr.as_fd(), fail(Step::Fork, e)),
        Ok(0) => {
            let err = child(req, path, argv, envp, false);
            die(status_wr.as_fd(), err);
        }
        Ok(svc) => {
            // Only the service's copy may hold the status pipe open: PID 1
            // sees EOF when the service execs.
            // SAFETY: this process never touches the fd again and never
            // returns to the frame that owns it.
            unsafe { libc::close(status_wr.as_raw_fd()) };
            crate::spawn::reaper::run(svc as i32, req.exit_report)
        }
    }
}

/// The child between clone3 and execve (with a PID namespace, the
/// reaper's child). Returns only on failure.
fn child(
    req: &Request<'_>,
    path: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
    enter_namespaces: bool,
) -> SpawnError {
    let fail = |step, e: Errno| SpawnError {
        step,
        errno: e.raw_os_error(),
    };
    // PID 1 blocks every signal for its signalfd and Rust's runtime ignores
    // SIGPIPE; a service must start with neither.
    if let Err(e) = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&nix::sys::signal::SigSet::empty()),
        None,
    ) {
        return fail(Step::SignalMask, Errno::from_raw_os_error(e as i32));
    }
    // SAFETY: restoring the default disposition installs no handler.
    if let Err(e) = unsafe {
        nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGPIPE,
            nix::sys::signal::SigHandler::SigDfl,
        )
    } {
        return fail(Step::SignalMask, Errno::from_raw_os_error(e as i32));
    }
    // Own session and process group, so the stop signal reaches the whole
    // group and a console unit can take the terminal.
    if let Err(e) = rustix::process::setsid() {
        return fail(Step::Setsid, e);
    }
    if enter_namespaces {
        if let Err((s, e)) = crate::spawn::sandbox::enter(req.def) {
            return fail(Step::Namespace(s), e);
        }
    }
    // The notify fd goes to 3 before stdio is rearranged, out of the way
    // of the fds we are about to close over.
    if let Some(n) = req.notify_fd {
        match rustix::io::fcntl_dupfd_cloexec(n, 10) {
            Ok(high) => {
                // SAFETY: fd 3 is free to be replaced in the child: PID 1's
                // own fds are close-on-exec and the child owns this copy
                // of the table. The OwnedFd is forgotten, so fd 3 stays
                // open across execve (dup2 clears close-on-exec).
                match unsafe { nix::unistd::dup2_raw(&high, NOTIFY_FD) } {
                    Ok(fd) => core::mem::forget(fd),
                    Err(e) => return fail(Step::NotifyFd, Errno::from_raw_os_error(e as i32)),
                }
            }
            Err(e) => return fail(Step::NotifyFd, e),
        }
    }
    if let Err((step, e)) = setup_stdio(&req.stdio) {
        return fail(step, e);
    }
    if let Err(e) = rustix::process::chdir(req.def.workdir.as_str()) {
        return fail(Step::Chdir, e);
    }
    if req.uid.is_some() || req.gid.is_some() {
        if let Err(e) = rustix::thread::set_thread_groups(&[]) {
            return fail(Step::Groups, e);
        }
    }
    if let Some(gid) = req.gid {
        let g = rustix::process::Gid::from_raw(gid);
        if let Err(e) = rustix::thread::set_thread_res_gid(g, g, g) {
            return fail(Step::Setgid, e);
        }
    }
    if let Some(uid) = req.uid {
        let u = rustix::process::Uid::from_raw(uid);
        if let Err(e) = rustix::thread::set_thread_res_uid(u, u, u) {
            return fail(Step::Setuid, e);
        }
    }
    // SAFETY: path, argv and envp point into CTables owned by the parent's
    // (copied) stack frame, NUL-terminated strings and null-terminated
    // pointer arrays built by `CTable::finish`.
    unsafe { libc::execve(path, argv, envp) };
    fail(Step::Exec, Errno::from_raw_os_error(last_errno()))
}

fn setup_stdio(stdio: &Stdio<'_>) -> Result<(), (Step, Errno)> {
    use rustix::fs::{Mode, OFlags};
    let open = |p: &str, step| {
        rustix::fs::open(p, OFlags::RDWR | OFlags::NOCTTY, Mode::empty()).map_err(|e| (step, e))
    };
    let (input, output): (OwnedFd, Option<BorrowedFd<'_>>) = match stdio {
        Stdio::ConsoleTty { out } => {
            let c = open("/dev/console", Step::Console)?;
            rustix::process::ioctl_tiocsctty(&c).map_err(|e| (Step::Console, e))?;
            return dup_all(&c, *out);
        }
        Stdio::Console => {
            let c = open("/dev/console", Step::Console)?;
            let n = open("/dev/null", Step::Stdio)?;
            dup_all(&n, Some(c.as_fd()))?;
            return Ok(());
        }
        Stdio::Pipe(w) => (open("/dev/null", Step::Stdio)?, Some(*w)),
        Stdio::Null => (open("/dev/null", Step::Stdio)?, None),
    };
    dup_all(&input, output)
}

/// stdin from `input`, stdout and stderr from `output` (or `input`).
fn dup_all(input: &OwnedFd, output: Option<BorrowedFd<'_>>) -> Result<(), (Step, Errno)> {
    let out = output.unwrap_or(input.as_fd());
    rustix::stdio::dup2_stdin(input).map_err(|e| (Step::Stdio, e))?;
    rustix::stdio::dup2_stdout(out).map_err(|e| (Step::Stdio, e))?;
    rustix::stdio::dup2_stderr(out).map_err(|e| (Step::Stdio, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_formats_without_allocating() {
        let mut b = [0u8; 20];
        assert_eq!(decimal(0, &mut b), "0");
        assert_eq!(decimal(1234567890123, &mut b), "1234567890123");
        assert_eq!(decimal(u64::MAX, &mut b), "18446744073709551615");
    }

    #[test]
    fn ctable_builds_null_terminated_arrays() {
        let mut t: CTable<32, 4> = CTable::new();
        t.push(&["/bin/sh"]).unwrap();
        t.push(&["A", "=", "b"]).unwrap();
        assert!(t.has_key("A"));
        assert!(!t.has_key("B"));
        let p = t.finish();
        // SAFETY (test): reading back the table just built.
        unsafe {
            assert_eq!(std::ffi::CStr::from_ptr(*p).to_str().unwrap(), "/bin/sh");
            assert_eq!(std::ffi::CStr::from_ptr(*p.add(1)).to_str().unwrap(), "A=b");
            assert!((*p.add(2)).is_null());
        }
    }

    #[test]
    fn ctable_refuses_overflow_instead_of_truncating() {
        let mut t: CTable<8, 3> = CTable::new();
        assert!(t.push(&["123456789"]).is_none());
        t.push(&["a"]).unwrap();
        t.push(&["b"]).unwrap();
        // Two strings use every pointer slot but the terminator.
        assert!(t.push(&["c"]).is_none());
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
            cgroup,
            stdio,
            notify_fd: None,
            notify_socket: None,
            uid: None,
            gid: None,
            exit_report: None,
            decided_ns: None,
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
        let p = nix::unistd::Pid::from_raw(pid as i32);
        match nix::sys::wait::waitpid(p, None).unwrap() {
            nix::sys::wait::WaitStatus::Exited(_, c) => c,
            other => panic!("{other:?}"),
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

    #[test]
    fn missing_program_is_an_exec_error_not_a_pid() {
        let cg = own_cgroup();
        let d = unit(&["/nonexistent/prog"]);
        let req = request(&d, cg.as_fd(), Stdio::Null);
        let err = spawn(&req).unwrap_err();
        assert_eq!(err.step, Step::Exec);
        assert_eq!(err.errno, libc::ENOENT);
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
        let (rd, wr) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
        let (rep_rd, rep_wr) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
        let req = Request {
            exit_report: Some(rep_wr.as_fd()),
            ..request(&d, cg.as_fd(), Stdio::Pipe(wr.as_fd()))
        };
        let pid = spawn(&req).unwrap();
        drop(wr);
        drop(rep_wr);
        // The service is pid 2 (the reaper is 1), sees its own hostname,
        // and /proc lists only the namespace's processes: the reaper, sh,
        // and the few commands of the substitutions (never the host's).
        let out = read_all(rd);
        let f: Vec<&str> = out.split_whitespace().collect();
        assert_eq!(&f[..2], ["2", "nsunit"], "{out}");
        let procs: u32 = f[2].parse().unwrap();
        assert!((2..=5).contains(&procs), "{out}");
        // The reaper exits 128+15 and reports the real cause: SIGTERM.
        assert_eq!(wait(pid), 128 + 15);
        let mut b = [0u8; crate::spawn::reaper::REPORT_LEN];
        let n = rustix::io::read(&rep_rd, &mut b).unwrap();
        assert_eq!(
            crate::spawn::reaper::decode(&b[..n]),
            Some(crate::vocab::Exit::Signal(15))
        );
        // The host's hostname is untouched.
        assert_ne!(
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .unwrap()
                .trim(),
            "nsunit"
        );
    }

    #[test]
    fn a_namespace_setup_failure_is_reported_by_step() {
        let cg = own_cgroup();
        let mut d = unit(&["/bin/true"]);
        d.namespaces = Namespaces(Namespaces::MOUNT);
        d.root = Some(heapless::String::try_from("/nonexistent-root").unwrap());
        let req = request(&d, cg.as_fd(), Stdio::Null);
        let err = spawn(&req).unwrap_err();
        assert_eq!(
            err.step,
            Step::Namespace(crate::spawn::sandbox::Step::BindRoot)
        );
        assert_eq!(err.errno, libc::ENOENT);
    }

    #[test]
    fn step_codes_survive_the_status_pipe() {
        for s in Step::PLAIN.iter().copied().chain([
            Step::Fork,
            Step::Namespace(crate::spawn::sandbox::Step::PivotRoot),
        ]) {
            assert_eq!(Step::from_code(s.code()), s);
        }
    }

    #[test]
    fn unit_env_overrides_defaults() {
        let mut d = UnitDef::with_defaults("x");
        d.exec.push("/bin/true").unwrap();
        d.env.push("PATH=/opt/bin").unwrap();
        let fd =
            rustix::fs::open(".", rustix::fs::OFlags::RDONLY, rustix::fs::Mode::empty()).unwrap();
        let req = Request {
            notify_socket: Some("/run/wren/notify/x"),
            ..request(&d, fd.as_fd(), Stdio::Null)
        };
        let mut env = EnvTable::new();
        build_env(&req, &mut env).unwrap();
        let p = env.finish();
        let mut got = vec![];
        // SAFETY (test): reading back the table just built.
        unsafe {
            let mut i = 0;
            while !(*p.add(i)).is_null() {
                got.push(
                    std::ffi::CStr::from_ptr(*p.add(i))
                        .to_str()
                        .unwrap()
                        .to_owned(),
                );
                i += 1;
            }
        }
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
}
