//! Fds a unit passes to PID 1 with a datagram (`SCM_RIGHTS` on its
//! `sd_notify` socket: `systemd-notify --ready` sends one with BARRIER=1,
//! and any unit may send up to 253 a message). PID 1 keeps none; but the
//! last close of a file is its release, and that runs in the closer's
//! time: a TCP socket set to linger waits for its unsent data for as long
//! as it asked (for ever, at its largest), a serial port for its output
//! to drain (30 s by default), a block device for its writeback, a file
//! of a FUSE file system for its daemon's answer (a unit's own daemon,
//! mounted with `fusermount`, may never give it). Read without room for
//! control data, or left queued when the socket is closed, such fds are
//! released by the kernel in PID 1's read or close. So they are taken and
//! handed to a closer (`hand_off`): a copy of PID 1 that shares its fd
//! table, makes them not wait where it can (a socket's linger off, a
//! terminal's pending output flushed) and closes them, waiting if it must
//! in its own time. PID 1 never touches them.
//!
//! A closer stuck for ever costs a task and keeps the fds it has not
//! closed yet in PID 1's table; `CLOSERS` of them at most. With that many
//! running, PID 1 lets fds go itself, as it did before closers: a unit
//! that wedges that many closers first can make PID 1 wait again.

use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::io::{Errno, IoSliceMut};
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SocketType,
};

/// The most fds the kernel passes with one message (`SCM_MAX_FD`).
const MAX_FDS: usize = 253;

/// How deep `let_go` follows unix sockets passed inside passed ones.
const DEPTH: u8 = 2;

/// Closers that may run at once (see the module's comment).
const CLOSERS: usize = 4;

/// The closers' pids, 0 for none; a closer that has ended (a zombie, or
/// reaped by PID 1's loop) leaves its place free.
static CLOSING: [AtomicU32; CLOSERS] = [const { AtomicU32::new(0) }; CLOSERS];

/// Set in a closer, whose memory is its own copy of PID 1's: the fds it
/// takes from passed sockets it lets go itself.
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
                if let Err(fd) = fds.push(fd) {
                    let_go(fd, depth);
                }
            }
        }
    }
    hand_off(&mut fds, depth);
    Ok(got.bytes)
}

/// Reads a closer makes of a socket before its close.
const DRAIN_READS: usize = 16;

/// What is still queued on `sock` taken (`recv`), before its close
/// would release the fds passed with it as they are: `DRAIN_READS` reads
/// at most, a datagram each (a datagram socket's queue is short:
/// `net.unix.max_dgram_qlen`, 10 by default), or 512 bytes of a stream
/// (what a stream holds past that is released as it is).
fn drain_at(sock: BorrowedFd<'_>, depth: u8) {
    let mut buf = [0u8; 512];
    for _ in 0..DRAIN_READS {
        match recv_at(sock, &mut buf, depth) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(_) => return,
        }
    }
}

/// Close `sock`, a socket of PID 1's own (a unit's readiness socket, a
/// control connection; a pipe is closed as it is). Its close would
/// release what is still queued on it, the fds passed with that as they
/// are: one with anything queued goes to a closer, which reads it first
/// (`DRAIN_READS`, `DEPTH` levels down) and closes it; one with nothing,
/// the common case, is closed at once, no copy made.
pub fn close(sock: OwnedFd) {
    if queued(sock.as_fd()) {
        let mut fds = Fds::new();
        let _ = fds.push(sock);
        hand_off(&mut fds, DEPTH + 1);
    }
}

/// Whether anything is queued on `sock` (false for what is not a socket).
fn queued(sock: BorrowedFd<'_>) -> bool {
    let mut probe = [0u8; 1];
    match rustix::net::recv(sock, &mut probe, RecvFlags::PEEK | RecvFlags::DONTWAIT) {
        // A stream's end of file; a datagram socket's empty datagram.
        Ok((0, _)) => rustix::net::sockopt::socket_type(sock) != Ok(SocketType::STREAM),
        Ok(_) => true,
        Err(_) => false,
    }
}

/// `fds` let go (`let_go`, `depth`) by a closer of their own, which
/// shares PID 1's fd table: what it closes, PID 1 no longer has. Where no
/// closer can be had (`CLOSERS` running, no memory for the copy) or in a
/// closer, here.
fn hand_off(fds: &mut Fds, depth: u8) {
    if fds.is_empty() {
        return;
    }
    let free = CLOSING
        .iter()
        .find(|c| !super::raw::running_child(c.load(Ordering::Relaxed)));
    if let Some(slot) = free.filter(|_| !IN_CLOSER.load(Ordering::Relaxed)) {
        let made = super::clone::clone_sharing_fds(|| {
            IN_CLOSER.store(true, Ordering::Relaxed);
            let_go_all(fds, depth);
            super::clone::exit(0)
        });
        if let Ok(pid) = made {
            slot.store(pid, Ordering::Relaxed);
            // The closer closes them, in the table PID 1 shares with it.
            core::mem::forget(core::mem::take(fds));
            return;
        }
    }
    let_go_all(fds, depth);
}

fn let_go_all(fds: &mut Fds, depth: u8) {
    for fd in core::mem::take(fds) {
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
            drain_at(fd.as_fd(), d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{lingering, send_with_fd};
    use rustix::fd::AsFd;
    use rustix::net::{AddressFamily, SocketFlags, SocketType};
    use std::time::{Duration, Instant};

    fn pair() -> (OwnedFd, OwnedFd) {
        let flags = SocketFlags::CLOEXEC;
        rustix::net::socketpair(AddressFamily::UNIX, SocketType::DGRAM, flags, None).unwrap()
    }

    /// A unit passes such a socket with its datagram and closes its own
    /// copy: PID 1's read of the datagram makes the last close, and does
    /// not wait for the linger (20 s without `let_go`).
    #[test]
    fn a_lingering_socket_passed_with_a_datagram_is_let_go_at_once() {
        let (a, b) = pair();
        let (c, _server) = lingering();
        send_with_fd(a.as_fd(), b"BARRIER=1", c.as_fd());
        drop(c);
        let mut buf = [0u8; 64];
        let t = Instant::now();
        let n = recv(b.as_fd(), &mut buf).unwrap();
        let took = t.elapsed();
        assert_eq!(buf.get(..n), Some(&b"BARRIER=1"[..]));
        assert!(took < Duration::from_secs(2), "the read waited {took:?}");
    }

    /// A unix socket passed with a datagram, itself holding a lingering
    /// socket in its queue: its close would release that one as it is,
    /// so its queue is read first.
    #[test]
    fn a_lingering_socket_queued_in_a_passed_socket_is_let_go_too() {
        let (a, b) = pair();
        let (inner_a, inner_b) = pair();
        let (c, _server) = lingering();
        send_with_fd(inner_a.as_fd(), b"x", c.as_fd());
        drop(c);
        drop(inner_a);
        send_with_fd(a.as_fd(), b"FDSTORE=1", inner_b.as_fd());
        drop(inner_b);
        let t = Instant::now();
        let _ = recv(b.as_fd(), &mut [0u8; 64]).unwrap();
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    }

    /// Queued datagrams' fds are let go before the socket's close, which
    /// would release them as they are; a read of an empty socket is
    /// EAGAIN, not a wait.
    #[test]
    fn a_socket_closed_with_lingering_fds_queued_does_not_wait() {
        let (a, b) = pair();
        let (c, _server) = lingering();
        for _ in 0..2 {
            send_with_fd(a.as_fd(), b"FDSTORE=1", c.as_fd());
        }
        drop(c);
        let t = Instant::now();
        close(b);
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        let (_, empty) = pair();
        assert_eq!(recv(empty.as_fd(), &mut [0u8; 4]), Err(Errno::AGAIN));
    }

    /// A lingering socket queued `levels` unix sockets down from the one
    /// returned, each socket passed in the next one's queue; every copy
    /// but the one returned closed.
    fn nested(levels: usize) -> (OwnedFd, std::net::TcpStream) {
        let (c, server) = lingering();
        let (a, mut inner) = pair();
        send_with_fd(a.as_fd(), b"x", c.as_fd());
        for _ in 1..levels {
            let (a, b) = pair();
            send_with_fd(a.as_fd(), b"x", inner.as_fd());
            inner = b;
        }
        (inner, server)
    }

    /// Deeper than `let_go` reads (`DEPTH`), a lingering socket is
    /// released as it is, by whoever closes the last socket holding it:
    /// the closer, not the reader (21 s in `recv` without it).
    #[test]
    fn a_lingering_socket_deeper_than_let_go_reads_is_released_by_a_closer() {
        let (a, b) = pair();
        let (inner, _server) = nested(usize::from(DEPTH) + 1);
        send_with_fd(a.as_fd(), b"FDSTORE=1", inner.as_fd());
        drop(inner);
        let t = Instant::now();
        let _ = recv(b.as_fd(), &mut [0u8; 64]).unwrap();
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        // So is a socket closed with such a one queued.
        let (inner, _server) = nested(usize::from(DEPTH) + 2);
        let t = Instant::now();
        close(inner);
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    }

    /// A close of a socket with nothing queued makes no closer; one with
    /// anything (an empty datagram may carry fds) goes to one.
    #[test]
    fn only_a_socket_with_something_queued_goes_to_a_closer() {
        let (a, b) = pair();
        assert!(!queued(b.as_fd()));
        rustix::net::send(&a, b"", rustix::net::SendFlags::empty()).unwrap();
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
        let (r, _w) = rustix::pipe::pipe().unwrap();
        assert!(!queued(r.as_fd()), "a pipe is not a socket");
    }

    /// Runs `a_closer_takes_the_fds_out_of_the_table_it_shares` in a process
    /// of its own: `CLOSING` is global and its closers are reaped there.
    #[test]
    fn a_closer_closes_in_the_shared_table() {
        crate::testutil::in_own_process(
            "sys::passed::tests::a_closer_takes_the_fds_out_of_the_table_it_shares",
            "WREN_CLOSER",
            "CLOSER-OK",
        );
    }

    /// The fds handed off leave this process's table once the closer has
    /// run, and the closer is remembered until it has ended; with every
    /// closer's place taken, fds are let go here.
    #[test]
    fn a_closer_takes_the_fds_out_of_the_table_it_shares() {
        if std::env::var_os("WREN_CLOSER").is_none() {
            return;
        }
        let (a, b) = pair();
        let (x, y) = pair();
        send_with_fd(a.as_fd(), b"x", y.as_fd());
        let yino = rustix::fs::fstat(&y).unwrap().st_ino;
        drop(y);
        let _ = recv(b.as_fd(), &mut [0u8; 4]).unwrap();
        let pid = CLOSING
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .find(|&p| p != 0)
            .unwrap();
        let p = rustix::process::Pid::from_raw(pid as i32).unwrap();
        rustix::process::waitpid(Some(p), rustix::process::WaitOptions::empty()).unwrap();
        // The closer closed the last copy: the peer sees its end.
        assert_eq!(
            rustix::net::send(&x, b"y", rustix::net::SendFlags::DONTWAIT),
            Err(Errno::CONNREFUSED)
        );
        let open = std::fs::read_dir("/proc/self/fd").unwrap().filter(|e| {
            let e = e.as_ref().unwrap();
            std::fs::metadata(e.path())
                .is_ok_and(|m| std::os::unix::fs::MetadataExt::ino(&m) == yino)
        });
        assert_eq!(open.count(), 0);
        // Every place taken by a running child: the next fds go here.
        let sleepers: Vec<_> = (0..CLOSERS)
            .map(|_| {
                std::process::Command::new("sleep")
                    .arg("5")
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
        assert_eq!(
            rustix::net::send(&x, b"y", rustix::net::SendFlags::DONTWAIT),
            Err(Errno::CONNREFUSED)
        );
        for mut s in sleepers {
            s.kill().unwrap();
            s.wait().unwrap();
        }
        println!("CLOSER-OK");
    }
}
