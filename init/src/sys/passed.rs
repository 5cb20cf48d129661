//! Fds a unit passes to PID 1 with a datagram (`SCM_RIGHTS` on its
//! `sd_notify` socket: `systemd-notify --ready` sends one with BARRIER=1,
//! and any unit may send up to 253 a message). PID 1 keeps none; but the
//! last close of a file is its release, and that runs in the time of
//! whoever makes it: a TCP socket set to linger waits for its unsent data for as long
//! as it asked (for ever, at its largest), a serial port for its output
//! to drain (30 s by default), a block device for its writeback, a file
//! of a FUSE file system for its daemon's answer (a unit's own daemon,
//! mounted with `fusermount`, may never give it). Read without room for
//! control data, or left queued when the socket is closed, such fds are
//! released by the kernel in PID 1's read or close.
//!
//! So an anonymous pipe (BARRIER=1's, whose close waits for nothing) is
//! closed at once, and anything else is moved out of PID 1's fd table
//! into the queue of a socket pair of its own, the park, as the message
//! is read: a child PID 1 forks meanwhile copies no such fd. A closer
//! takes the park: a copy of PID 1 (a fork, its own fd table, named
//! `wren-closer`) that closes every fd it was born with but the park's
//! receiving end, then reads the park to its end, makes each fd not wait
//! where it can (a socket's linger off, a terminal's pending output
//! flushed, a passed unix socket's own queue read, three levels down)
//! and closes it, waiting in its own time if it must. PID 1 closes its
//! copies of the fds and its ends of the park after the send and the
//! fork: not the last closes, so no release is PID 1's. A closer killed
//! or dead on the way releases what it still holds in its own exit.
//!
//! Not covered: every close, not only the last, calls the file's flush,
//! which a FUSE file system sends to its daemon and waits for (NFS and
//! CIFS write back what is dirty): PID 1's own close of a passed file of
//! such a file system still waits there. Keeping such files out of PID
//! 1's table altogether means reading the message in a child (a peek
//! says fds came with it), which is not built. Nor is the kernel's
//! collector of unix sockets in flight, which before Linux 6.8 runs in
//! the process that closes any unix socket while some are in flight, and
//! releases what it collects there: PID 1 closes unix sockets.
//!
//! `CLOSERS` run at most. With every place taken, the fds wait in the
//! park and the running closers are killed (a linger's or a terminal's
//! wait ends with the kill, and the release goes on without waiting; a
//! FUSE daemon's answer to a flush is waited for even so), so that places
//! come free and the park is taken as each is reaped (`reaped`); a closer
//! that cannot be made leaves them there for the next try. Only when the
//! park cannot be had (no memory for a socket, its queue full: some
//! hundreds of messages) does PID 1 let fds go itself, as it did before
//! there were closers; a unit that can hold closers in a wait a kill
//! does not end (a FUSE flush, a block device's writeback) can so make
//! PID 1 wait again.

use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use rustix::fd::{AsFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};
use rustix::io::{Errno, IoSlice, IoSliceMut};
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};

/// The most fds the kernel passes with one message (`SCM_MAX_FD`).
const MAX_FDS: usize = 253;

/// How deep `let_go` follows unix sockets passed inside passed ones.
const DEPTH: u8 = 2;

/// Closers that may run at once (see the module's comment).
const CLOSERS: usize = 4;

/// The closers' pids, 0 for a free place: cleared as each is reaped
/// (`reaped`), and free too once its pid is no running child of PID 1's.
static CLOSING: [AtomicU32; CLOSERS] = [const { AtomicU32::new(0) }; CLOSERS];

/// The park's sending and receiving ends (high and low 32 bits), `NO_PARK`
/// for none: one word, so that it is taken whole (`take_park`).
static PARK: AtomicU64 = AtomicU64::new(NO_PARK);
const NO_PARK: u64 = u64::MAX;

/// Set in a closer, whose memory is its own copy of PID 1's: the fds it
/// takes it lets go itself.
static IN_CLOSER: AtomicBool = AtomicBool::new(false);

/// The fds of one message.
type Fds = heapless::Vec<OwnedFd, MAX_FDS>;

/// One datagram of `sock` into `buf`, as read(2) would read it (cut to
/// `buf`, without waiting); the fds passed with it are handed to a closer
/// (`hand_off`).
pub fn recv(sock: BorrowedFd<'_>, buf: &mut [u8]) -> Result<usize, Errno> {
    recv_at(sock, buf, DEPTH)
}

fn recv_at(sock: BorrowedFd<'_>, buf: &mut [u8], depth: u8) -> Result<usize, Errno> {
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let got = rustix::net::recvmsg(
        sock,
        &mut [IoSliceMut::new(buf)],
        &mut control,
        RecvFlags::DONTWAIT | RecvFlags::CMSG_CLOEXEC,
    )?;
    let mut fds = Fds::new();
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(passed) = message {
            for fd in passed {
                // One message holds at most MAX_FDS: never refused.
                if IN_CLOSER.load(Ordering::Relaxed) || is_anonymous_pipe(fd.as_fd()) {
                    let_go(fd, depth);
                } else if let Err(fd) = fds.push(fd) {
                    let_go(fd, depth);
                }
            }
        }
    }
    hand_off(fds, depth);
    Ok(got.bytes)
}

/// An anonymous pipe's close releases nothing that waits (a FIFO's
/// may: its inode's and its mount's last references). Told by its name
/// in `/proc/self/fd` (`pipe:[INODE]`), which the kernel makes from its
/// own tables: no file system is asked, whose daemon or server may never
/// answer.
fn is_anonymous_pipe(fd: BorrowedFd<'_>) -> bool {
    use rustix::fd::AsRawFd;
    let mut path: heapless::String<32> = heapless::String::new();
    let mut name = [MaybeUninit::<u8>::uninit(); 6];
    let named = core::fmt::Write::write_fmt(
        &mut path.as_mut_view(),
        format_args!("/proc/self/fd/{}", fd.as_raw_fd()),
    );
    named.is_ok()
        && rustix::fs::readlinkat_raw(rustix::fs::CWD, path.as_str(), &mut name)
            .is_ok_and(|(got, _)| got == b"pipe:[")
}

/// Reads a closer makes of a socket passed inside a passed one.
const DRAIN_READS: usize = 16;

/// What is still queued on `sock` taken (`recv_at`), before its close
/// would release the fds passed with it as they are: `reads` reads at
/// most, a datagram or a stream's message with fds each, or 512 bytes
/// of a stream without.
fn drain_at(sock: BorrowedFd<'_>, depth: u8, reads: usize) {
    let mut buf = [0u8; 512];
    for _ in 0..reads {
        match recv_at(sock, &mut buf, depth) {
            Ok(0) if reads == usize::MAX => return,
            Ok(_) | Err(Errno::INTR) => {}
            Err(_) => return,
        }
    }
}

/// Close `sock`, a socket of PID 1's own (a unit's readiness socket, a
/// control connection; a pipe is closed as it is). Its close would
/// release what is still queued on it, the fds passed with that as they
/// are: one with anything queued goes to a closer as a parked fd would
/// (it reads it, `DRAIN_READS` reads, `DEPTH` levels down, and closes
/// it); one with nothing, the common case, is closed at once.
pub fn close(sock: OwnedFd) {
    // Nothing more can come (a sender gets EPIPE), so what the peek finds
    // queued is all there is.
    let _ = rustix::net::shutdown(&sock, rustix::net::Shutdown::Read);
    if queued(sock.as_fd()) {
        let mut fds = Fds::new();
        let _ = fds.push(sock);
        hand_off(fds, DEPTH + 1);
    }
}

/// Whether anything is queued on `sock` (false for what is not a socket).
/// A peek takes references of its own on the fds queued and drops only
/// those: it releases nothing.
fn queued(sock: BorrowedFd<'_>) -> bool {
    let mut probe = [0u8; 1];
    match rustix::net::recv(sock, &mut probe, RecvFlags::PEEK | RecvFlags::DONTWAIT) {
        // A stream's end of file; a datagram socket's empty datagram.
        Ok((0, _)) => rustix::net::sockopt::socket_type(sock) != Ok(SocketType::STREAM),
        Ok(_) => true,
        Err(_) => false,
    }
}

/// `fds` out of PID 1's table: sent into the park (PID 1's copies then
/// closed, not the last: the park's queue holds the files), which a
/// closer takes (`unpark`). Let go here where the park cannot be had,
/// and in a closer.
fn hand_off(fds: Fds, depth: u8) {
    if fds.is_empty() {
        return;
    }
    // (A closer lets every fd go as it reads it: `fds` is empty there.)
    let Some((tx, rx)) = take_park().or_else(new_park) else {
        return let_go_all(fds, depth);
    };
    if send_fds(tx.as_fd(), &fds).is_err() {
        put_park(tx, rx);
        return let_go_all(fds, depth);
    }
    drop(fds);
    put_park(tx, rx);
    unpark();
}

/// The park to a closer, if a place is free and the copy can be made;
/// with every place taken, the running closers killed, so that places
/// come free (`reaped` calls this again).
pub fn unpark() {
    if PARK.load(Ordering::Relaxed) == NO_PARK {
        return;
    }
    let Some(place) = CLOSING
        .iter()
        .find(|c| !super::raw::running_child(c.load(Ordering::Relaxed)))
    else {
        // Every place holds a running child (0 is never one: no kill of
        // the whole process group).
        for c in &CLOSING {
            if let Some(p) = i32::try_from(c.load(Ordering::Relaxed))
                .ok()
                .filter(|&p| p > 0)
            {
                let _ = super::signal::kill(p, libc::SIGKILL);
            }
        }
        return;
    };
    let Some((tx, rx)) = take_park() else {
        return;
    };
    match give(rx.as_fd()) {
        // PID 1's ends closed (`tx`, `rx` dropped): the closer has its
        // copy of `rx` and reads what is queued there, all there will be
        // (the park is no longer PID 1's), its own copy of `tx` closed
        // first.
        Ok(pid) => place.store(pid, Ordering::Relaxed),
        Err(_) => put_park(tx, rx),
    }
}

/// Before PID 1's exec (`initctl reexec`), which would close the park in
/// its time: fds waiting there go to a closer whether a place is free or
/// not; where none can be made, they are released here, as the exec
/// would.
pub fn before_exec() {
    if let Some((_tx, rx)) = take_park() {
        let _ = give(rx.as_fd());
    }
}

/// A child of PID 1 reaped: its place freed if it was a closer (true).
pub fn reaped(pid: u32) -> bool {
    pid != 0
        && CLOSING.iter().any(|c| {
            c.compare_exchange(pid, 0, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        })
}

/// A closer for the park whose receiving end is `rx`.
fn give(rx: BorrowedFd<'_>) -> Result<u32, Errno> {
    super::clone::clone_into(crate::unit::Namespaces::NONE, None, || {
        IN_CLOSER.store(true, Ordering::Relaxed);
        let _ = rustix::thread::set_name(c"wren-closer");
        // PID 1's fds are not the closer's to keep open (its listener, the
        // units' pipes, the watchdog); the park's sending end among them.
        super::fd::close_all_but(&[rx]);
        // Each fd let go as a socket PID 1 closes would be (`close`): one
        // level deeper than those of a message need.
        drain_at(rx, DEPTH + 1, usize::MAX);
        super::clone::exit(0)
    })
}

/// A new park: a stream pair, so that its queue holds some hundreds of
/// messages (a datagram pair's, `net.unix.max_dgram_qlen`, ten), both
/// ends above the fds a child started through the trampoline gets (where
/// the kernel lets `fd::raise` move them and the trampoline runs: else a
/// child holds a copy until its exec, which only keeps the park's queue
/// alive longer).
fn new_park() -> Option<(OwnedFd, OwnedFd)> {
    let flags = SocketFlags::CLOEXEC | SocketFlags::NONBLOCK;
    let (tx, rx) =
        rustix::net::socketpair(AddressFamily::UNIX, SocketType::STREAM, flags, None).ok()?;
    Some((super::fd::raise(tx), super::fd::raise(rx)))
}

/// `fds` sent on `tx` with one byte.
fn send_fds(tx: BorrowedFd<'_>, fds: &Fds) -> Result<(), Errno> {
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let mut raw: heapless::Vec<BorrowedFd<'_>, MAX_FDS> = heapless::Vec::new();
    for fd in fds {
        let _ = raw.push(fd.as_fd());
    }
    if !control.push(SendAncillaryMessage::ScmRights(&raw)) {
        return Err(Errno::NOBUFS);
    }
    let sent = rustix::net::sendmsg(tx, &[IoSlice::new(&[0])], &mut control, SendFlags::DONTWAIT)?;
    match sent {
        1 => Ok(()),
        _ => Err(Errno::AGAIN),
    }
}

fn take_park() -> Option<(OwnedFd, OwnedFd)> {
    let both = PARK.swap(NO_PARK, Ordering::Relaxed);
    // The two halves are fds `put_park` stored: not negative.
    let (tx, rx) = ((both >> 32) as u32 as i32, both as u32 as i32);
    if both == NO_PARK || tx < 0 || rx < 0 {
        return None;
    }
    // SAFETY: both numbers were put there by `put_park` from fds it gave up
    // ownership of (`into_raw_fd`), and are swapped out here, so these
    // OwnedFds are their one owner; nothing else closes them meanwhile
    // (PID 1 closes no number it does not own).
    Some(unsafe { (OwnedFd::from_raw_fd(tx), OwnedFd::from_raw_fd(rx)) })
}

fn put_park(tx: OwnedFd, rx: OwnedFd) {
    // Fds are not negative: the casts keep their values.
    let (tx, rx) = (tx.into_raw_fd() as u32, rx.into_raw_fd() as u32);
    PARK.store(u64::from(tx) << 32 | u64::from(rx), Ordering::Relaxed);
}

fn let_go_all(fds: Fds, depth: u8) {
    for fd in fds {
        let_go(fd, depth);
    }
}

/// Close `fd` so that the close does not wait: a socket's linger turned
/// off (refused by what is not one), a terminal's unsent output dropped;
/// a unix socket's own queue read first (`depth` levels of sockets
/// passed inside passed ones), as its close would release the fds in it
/// as they are.
fn let_go(fd: OwnedFd, depth: u8) {
    let _ = rustix::net::sockopt::set_socket_linger(&fd, None);
    if rustix::termios::isatty(&fd) {
        let _ = rustix::termios::tcflush(&fd, rustix::termios::QueueSelector::OFlush);
    }
    if let Some(d) = depth.checked_sub(1) {
        if rustix::net::getsockname(&fd).is_ok_and(|a| a.address_family() == AddressFamily::UNIX) {
            drain_at(fd.as_fd(), d, DRAIN_READS);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{dgram_pair as pair, lingering, nested, send_with_fd};
    use std::time::{Duration, Instant};

    /// What a closer does, here: a lingering socket let go does not wait
    /// (20 s without the linger turned off), nor one queued in a unix
    /// socket `DEPTH` levels down, whose close would release it as it is.
    #[test]
    fn let_go_waits_neither_on_a_lingering_socket_nor_on_one_queued_in_a_socket() {
        let (c, _server) = lingering();
        let t = Instant::now();
        let_go(c.into(), DEPTH);
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        let (inner, _server) = nested(usize::from(DEPTH));
        let t = Instant::now();
        let_go(inner, DEPTH);
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    }

    /// What `close` and `recv` decide on: whether anything is queued (an
    /// empty datagram may carry fds), whether an fd is an anonymous pipe.
    #[test]
    fn what_is_queued_and_what_is_a_pipe() {
        let (a, b) = pair();
        assert!(!queued(b.as_fd()));
        rustix::net::send(&a, b"", SendFlags::empty()).unwrap();
        assert!(queued(b.as_fd()));
        let flags = SocketFlags::CLOEXEC;
        let (s, t) =
            rustix::net::socketpair(AddressFamily::UNIX, SocketType::STREAM, flags, None).unwrap();
        assert!(!queued(t.as_fd()));
        rustix::io::write(&s, b"x").unwrap();
        assert!(queued(t.as_fd()));
        drop(s);
        let _ = rustix::io::read(&t, &mut [0u8; 1]).unwrap();
        assert!(!queued(t.as_fd()), "a stream at its end of file");
        let (r, w) = rustix::pipe::pipe().unwrap();
        assert!(!queued(r.as_fd()), "a pipe is not a socket");
        assert!(is_anonymous_pipe(r.as_fd()) && is_anonymous_pipe(w.as_fd()));
        assert!(!is_anonymous_pipe(a.as_fd()));
        let f = std::fs::File::open("/proc/self/stat").unwrap();
        assert!(!is_anonymous_pipe(f.as_fd()));
        // A named FIFO's last close may drop its inode and its mount.
        let dir = crate::testutil::TempDir::new("passed-fifo");
        let fifo = dir.path().join("fifo");
        crate::testutil::fifo(&fifo);
        let named = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&fifo)
            .unwrap();
        assert!(!is_anonymous_pipe(named.as_fd()));
    }

    /// Runs `closers_take_what_pid1_is_passed` in a process of its own:
    /// the places and the park are global, and its closers are reaped
    /// there.
    #[test]
    fn closers_take_what_pid1_is_passed_alone() {
        crate::testutil::in_own_process(
            "sys::passed::tests::closers_take_what_pid1_is_passed",
            "WREN_CLOSERS",
            "CLOSERS-OK",
        );
    }

    fn closers() -> Vec<u32> {
        CLOSING
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .filter(|&p| p != 0)
            .collect()
    }

    /// `pid` ended within `secs`, reaped and its place freed as PID 1's
    /// loop does (`reaped`): its exit code, None if it had not.
    fn ended_within(pid: u32, secs: u64) -> Option<i32> {
        let t = Instant::now();
        while crate::sys::raw::running_child(pid) {
            if t.elapsed() > Duration::from_secs(secs) {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let st = crate::testutil::wait_status(pid);
        assert!(reaped(pid));
        st.map(|s| s.exit_status().or(s.terminating_signal()).unwrap_or(-1))
    }

    /// The peer of `x` is gone (its last copy closed): a send is refused.
    fn gone(x: &OwnedFd) -> bool {
        rustix::net::send(x, b"y", SendFlags::DONTWAIT) == Err(Errno::CONNREFUSED)
    }

    /// Every closer's place taken by a running child (a `sleep`), then a
    /// socket passed on `a` and read from `b`: it goes to the park. The
    /// sleepers, and the passed socket's peer (`gone` once it is closed).
    fn parked_with_every_place_taken(
        a: &OwnedFd,
        b: &OwnedFd,
    ) -> (Vec<std::process::Child>, OwnedFd) {
        let sleepers: Vec<_> = (0..CLOSERS)
            .map(|_| {
                std::process::Command::new("sleep")
                    .arg("30")
                    .spawn()
                    .unwrap()
            })
            .collect();
        for (c, s) in CLOSING.iter().zip(&sleepers) {
            c.store(s.id(), Ordering::Relaxed);
        }
        let (x, y) = pair();
        send_with_fd(a.as_fd(), b"x", y.as_fd());
        drop(y);
        let _ = recv(b.as_fd(), &mut [0u8; 4]).unwrap();
        (sleepers, x)
    }

    #[test]
    fn closers_take_what_pid1_is_passed() {
        if std::env::var_os("WREN_CLOSERS").is_none() {
            return;
        }
        let (a, b) = pair();
        // 1. A lingering socket four unix sockets down (deeper than a
        // closer reads, `DEPTH` + 1 from the park): the read returns at
        // once, a closer named so waits out the linger, and ends once the
        // peer is gone.
        let (inner, server) = nested(usize::from(DEPTH) + 2);
        send_with_fd(a.as_fd(), b"FDSTORE=1", inner.as_fd());
        drop(inner);
        let t = Instant::now();
        let _ = recv(b.as_fd(), &mut [0u8; 64]).unwrap();
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        let pid = *closers().first().expect("a closer");
        let t = Instant::now();
        let comm = || std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
        while comm().trim() != "wren-closer" {
            assert!(t.elapsed() < Duration::from_secs(10), "{}", comm());
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            crate::sys::raw::running_child(pid),
            "the closer waits the linger"
        );
        assert!(
            PARK.load(Ordering::Relaxed) == NO_PARK,
            "the park went with it"
        );
        drop(server);
        assert_eq!(ended_within(pid, 10), Some(0));
        // 2. A pipe is closed here: no closer, its reader sees the end.
        let (r, w) = rustix::pipe::pipe().unwrap();
        send_with_fd(a.as_fd(), b"BARRIER=1", w.as_fd());
        drop(w);
        let _ = recv(b.as_fd(), &mut [0u8; 64]).unwrap();
        assert_eq!(rustix::io::read(&r, &mut [0u8; 1]), Ok(0));
        assert_eq!(closers(), Vec::<u32>::new());
        // 3. Every place taken: the fds wait in the park, the closers are
        // killed; a place freed, a closer takes the park.
        let (mut sleepers, x) = parked_with_every_place_taken(&a, &b);
        assert!(!gone(&x), "parked, not closed");
        assert!(PARK.load(Ordering::Relaxed) != NO_PARK);
        for s in &mut sleepers {
            let st = s.wait().unwrap();
            assert_eq!(std::os::unix::process::ExitStatusExt::signal(&st), Some(9));
        }
        for s in &sleepers {
            assert!(reaped(s.id()));
        }
        unpark();
        let pid = *closers().first().expect("a closer for the park");
        assert_eq!(ended_within(pid, 10), Some(0));
        assert!(gone(&x), "the closer closed it");
        // 4. A socket closed with something queued goes to a closer; an
        // empty one is closed here.
        let (q, held) = pair();
        let (x, y) = pair();
        send_with_fd(q.as_fd(), b"x", y.as_fd());
        drop(y);
        close(held);
        let pid = *closers().first().expect("a closer for the socket");
        assert_eq!(ended_within(pid, 10), Some(0));
        assert!(gone(&x));
        let (_q, empty) = pair();
        close(empty);
        assert_eq!(closers(), Vec::<u32>::new());
        // 5. Before an exec, the park goes to a closer though every place
        // is taken.
        let (mut sleepers, x) = parked_with_every_place_taken(&a, &b);
        assert!(!gone(&x), "parked");
        before_exec();
        assert!(PARK.load(Ordering::Relaxed) == NO_PARK);
        let t = Instant::now();
        while !gone(&x) {
            assert!(t.elapsed() < Duration::from_secs(10), "the park's closer");
            std::thread::sleep(Duration::from_millis(20));
        }
        for s in &mut sleepers {
            let _ = s.wait();
        }
        println!("CLOSERS-OK");
    }
}
