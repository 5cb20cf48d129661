//! Helpers shared by the host tests of this crate.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// A fresh, empty directory under the system temp dir, unique to this
/// process and call, removed with its contents when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "wren-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The directory open (a fixture cgroup, a fixture /proc).
    pub fn dir_fd(&self) -> rustix::fd::OwnedFd {
        let flags = rustix::fs::OFlags::RDONLY
            | rustix::fs::OFlags::DIRECTORY
            | rustix::fs::OFlags::CLOEXEC;
        rustix::fs::open(&self.0, flags, rustix::fs::Mode::empty()).unwrap()
    }

    /// Writes `rel` (creating its parents); returns its full path.
    pub fn file(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.0.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    /// An executable script at `rel`; returns its absolute path.
    pub fn prog(&self, rel: &str) -> String {
        use std::os::unix::fs::PermissionsExt;
        let p = self.file(rel, "#!/bin/sh\n");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p.to_str().unwrap().to_owned()
    }
}

impl std::ops::Deref for TempDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child's work on a disk that does not answer, in a test: 10 s of
/// sleep, holding none of the fds it was forked with (other tests' pipes
/// must reach their ends meanwhile).
pub fn hang_holding_nothing() {
    crate::sys::fd::close_all_but(&[]);
    std::thread::sleep(std::time::Duration::from_secs(10));
}

/// What poll(2) says of `fd` asked for input, within `secs` seconds
/// (0: at once): empty when nothing came.
pub fn poll_in(fd: impl rustix::fd::AsFd, secs: i64) -> rustix::event::PollFlags {
    let mut fds = [rustix::event::PollFd::new(
        &fd,
        rustix::event::PollFlags::IN,
    )];
    let within = rustix::event::Timespec {
        tv_sec: secs,
        tv_nsec: 0,
    };
    match rustix::event::poll(&mut fds, Some(&within)) {
        Ok(_) => fds[0].revents(),
        Err(e) => panic!("poll: {e}"),
    }
}

/// Whether child `pid` ended (a zombie, or reaped) within `secs`, looked
/// at every 10 ms; it is left unreaped.
pub fn ended_in(pid: u32, secs: u64) -> bool {
    let t = std::time::Instant::now();
    while crate::sys::raw::running_child(pid) {
        if t.elapsed() > std::time::Duration::from_secs(secs) {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    true
}

/// Whether `pid` has begun its exit (`PF_EXITING` in the flags of
/// /proc/PID/stat, the 7th field after the command name): ending, or a
/// zombie.
pub fn exiting(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let flags = stat.rsplit_once(')').and_then(|(_, after)| {
        let f = after.split_whitespace().nth(6)?;
        f.parse::<u32>().ok()
    });
    flags.is_some_and(|f| f & 4 != 0)
}

/// Wait for child `pid` to end; its status, or None if there is no such
/// child.
pub fn wait_status(pid: u32) -> Option<rustix::process::WaitStatus> {
    let p = rustix::process::Pid::from_raw(i32::try_from(pid).ok()?)?;
    rustix::process::waitpid(Some(p), rustix::process::WaitOptions::empty())
        .ok()
        .flatten()
        .map(|(_, st)| st)
}

/// The exit code of child `pid` once it ends (None if killed by a signal).
pub fn wait_exit(pid: u32) -> Option<i32> {
    wait_status(pid)?.exit_status()
}

/// Starts test `$test` (the one it is written in): unless this is the
/// process of its own the test runs in (`run_alone`), returns from the test
/// once that process has passed it. For a test that changes what the
/// whole process shares (its fd table, its limits, a global), reaps any
/// child, or must not have its fds copied by the forks of tests that run
/// beside it in threads.
macro_rules! alone {
    ($test:ident) => {
        if !$crate::testutil::run_alone(module_path!(), stringify!($test)) {
            return;
        }
    };
}
pub(crate) use alone;

/// `alone!` in a mount namespace of its own where `$mount` (sh) ran
/// first (`run_alone_after_mounting`).
macro_rules! alone_after_mounting {
    ($test:ident, $mount:expr) => {
        if !$crate::testutil::run_alone_after_mounting(module_path!(), stringify!($test), $mount) {
            return;
        }
    };
}
pub(crate) use alone_after_mounting;

/// Runs the test `test` of `module` (`module_path!()`) alone, in a
/// process of its own: the test binary again, filtered to it. True in
/// that process, where the test goes on; false in the caller, once that
/// process has run that one test and it passed.
pub fn run_alone(module: &str, test: &str) -> bool {
    run_alone_in(module, test, &[])
}

/// `run_alone` in a mount namespace of its own where `mount` (sh) ran
/// first: true in that process. False also where mounts cannot be made
/// (not root; CI runs the host tests as root): the test is not run.
pub fn run_alone_after_mounting(module: &str, test: &str, mount: &str) -> bool {
    if !rustix::process::geteuid().is_root() {
        return false;
    }
    let sh = format!("{mount} && exec \"$@\"");
    let unshare = [
        "unshare",
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        &sh,
        "sh",
    ];
    run_alone_in(module, test, &unshare)
}

/// Fills the file system of `dir`, a small tmpfs the test mounted in a
/// mount namespace of its own, with a file `fill`. Checked first: on any
/// other (a mount that did not happen where the test thinks) it would
/// fill the host's disk.
pub fn fill_small_tmpfs(dir: &Path) {
    use std::io::Write;
    const TMPFS_MAGIC: u64 = 0x0102_1994;
    let st = rustix::fs::statfs(dir).unwrap();
    let bytes = st.f_blocks as u64 * st.f_bsize as u64;
    assert!(
        st.f_type as u64 == TMPFS_MAGIC && bytes <= 1 << 20,
        "{}: not a small tmpfs (type {:#x}, {bytes} bytes)",
        dir.display(),
        st.f_type
    );
    let mut f = std::fs::File::create(dir.join("fill")).unwrap();
    while f.write_all(&[0; 4096]).is_ok() {}
}

/// `run_alone`, the process started by `wrapper` (a command that ends
/// in an exec of its arguments: `unshare -m ...`), if not empty.
pub fn run_alone_in(module: &str, test: &str, wrapper: &[&str]) -> bool {
    // libtest names a test by its path without the crate's name.
    let module = module.split_once("::").map_or("", |(_, rest)| rest);
    let name = format!("{module}::{test}");
    if std::env::var_os("WREN_TEST_ALONE").is_some_and(|t| t == *name) {
        return true;
    }
    let exe = std::env::current_exe().unwrap();
    let mut cmd = match wrapper.split_first() {
        Some((first, rest)) => {
            let mut c = std::process::Command::new(first);
            c.args(rest).arg(&exe);
            c
        }
        None => std::process::Command::new(&exe),
    };
    let out = cmd
        .args(["--exact", &name, "--test-threads=1", "--nocapture"])
        .env("WREN_TEST_ALONE", &name)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("test result: ok. 1 passed;"),
        "{name} did not run: {text}"
    );
    false
}

/// A TCP socket whose unsent data cannot leave (its peer, returned
/// second, reads nothing and its window is full), set to linger 20 s: its
/// last close waits that long in the time of whoever makes it.
pub fn lingering() -> (std::net::TcpStream, std::net::TcpStream) {
    use std::io::Write;
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (s, _) = l.accept().unwrap();
    rustix::net::sockopt::set_socket_recv_buffer_size(&s, 4096).unwrap();
    rustix::net::sockopt::set_socket_send_buffer_size(&c, 4096).unwrap();
    c.set_nonblocking(true).unwrap();
    let chunk = [7u8; 4096];
    let t = std::time::Instant::now();
    let mut w = &c;
    while w.write(&chunk).is_ok() {
        assert!(t.elapsed().as_secs() < 5, "the window never filled");
    }
    rustix::net::sockopt::set_socket_linger(&c, Some(std::time::Duration::from_secs(20))).unwrap();
    (c, s)
}

/// A lingering socket (`lingering`) queued `levels` unix sockets down
/// from the one returned, each socket passed in the next one's queue;
/// every copy but the one returned closed. The peer comes with it.
pub fn nested(levels: usize) -> (rustix::fd::OwnedFd, std::net::TcpStream) {
    use rustix::fd::AsFd;
    let (c, server) = lingering();
    let (a, mut inner) = dgram_pair();
    send_with_fd(a.as_fd(), b"x", c.as_fd());
    for _ in 1..levels {
        let (a, b) = dgram_pair();
        send_with_fd(a.as_fd(), b"x", inner.as_fd());
        inner = b;
    }
    (inner, server)
}

/// A connected pair of unix datagram sockets, close-on-exec.
pub fn dgram_pair() -> (rustix::fd::OwnedFd, rustix::fd::OwnedFd) {
    use rustix::net::{AddressFamily, SocketFlags, SocketType};
    let flags = SocketFlags::CLOEXEC;
    rustix::net::socketpair(AddressFamily::UNIX, SocketType::DGRAM, flags, None).unwrap()
}

/// A FIFO made at `path` (mode 0600): a special file a reader of regular
/// files must not block on, nor take for a pipe of its own.
pub fn fifo(path: &Path) {
    let mode = rustix::fs::Mode::from_raw_mode(0o600);
    rustix::fs::mknodat(rustix::fs::CWD, path, rustix::fs::FileType::Fifo, mode, 0).unwrap();
}

/// What the epoll set `ep` watches, as /proc/self/fdinfo says: (fd,
/// events, token) of each, the events without EPOLLERR and EPOLLHUP
/// (which epoll always adds).
pub fn epoll_watches(ep: &rustix::fd::OwnedFd) -> Vec<(i32, u32, u64)> {
    use rustix::event::epoll::EventFlags;
    use rustix::fd::AsRawFd;
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", ep.as_raw_fd())).unwrap();
    let field = |l: &str, k: &str| {
        let v = l.split(k).nth(1).unwrap().split_whitespace().next();
        v.unwrap().to_owned()
    };
    let always = (EventFlags::ERR | EventFlags::HUP).bits();
    info.lines()
        .filter(|l| l.starts_with("tfd:"))
        .map(|l| {
            let hex = |k| u64::from_str_radix(&field(l, k), 16).unwrap();
            let events = hex("events:") as u32 & !always;
            (field(l, "tfd:").parse().unwrap(), events, hex("data:"))
        })
        .collect()
}

/// `epoll_watches` as (fd, token) pairs, in fd order.
pub fn epoll_tokens(ep: &rustix::fd::OwnedFd) -> Vec<(i32, u64)> {
    let mut v: Vec<_> = epoll_watches(ep)
        .into_iter()
        .map(|(fd, _, t)| (fd, t))
        .collect();
    v.sort_unstable();
    v
}

/// `fd` never blocks PID 1 and no child inherits it: O_NONBLOCK and
/// FD_CLOEXEC.
pub fn assert_nonblocking_cloexec(fd: impl rustix::fd::AsFd) {
    let fl = rustix::fs::fcntl_getfl(&fd).unwrap();
    assert!(fl.contains(rustix::fs::OFlags::NONBLOCK), "blocking");
    let fd_flags = rustix::io::fcntl_getfd(&fd).unwrap();
    assert!(fd_flags.contains(rustix::io::FdFlags::CLOEXEC), "inherited");
}

/// `msg` sent on `sock` with `fd` passed (SCM_RIGHTS), as a unit may send
/// its sd_notify datagram.
pub fn send_with_fd(sock: rustix::fd::BorrowedFd<'_>, msg: &[u8], fd: rustix::fd::BorrowedFd<'_>) {
    send_with_fd_flags(sock, msg, fd, rustix::net::SendFlags::empty());
}

/// `send_with_fd` with `flags` (`OOB`: out of band, on a stream).
pub fn send_with_fd_flags(
    sock: rustix::fd::BorrowedFd<'_>,
    msg: &[u8],
    fd: rustix::fd::BorrowedFd<'_>,
    flags: rustix::net::SendFlags,
) {
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage};
    let mut space = [core::mem::MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let fds = [fd];
    assert!(control.push(SendAncillaryMessage::ScmRights(&fds)));
    let iov = [rustix::io::IoSlice::new(msg)];
    rustix::net::sendmsg(sock, &iov, &mut control, flags).unwrap();
}
