//! Fds a unit passes to PID 1 with a datagram (`SCM_RIGHTS` on its
//! `sd_notify` socket: `systemd-notify --ready` sends one with BARRIER=1,
//! and any unit may send up to 253 a message). PID 1 keeps none; but the
//! last close of a file is its release, and that runs in the closer's
//! time: a TCP socket set to linger waits for its unsent data for as long
//! as it asked (for ever, at its largest), a serial port for its output
//! to drain (30 s by default). Read without room for control data, or
//! left queued when the socket is closed, such fds are released by the
//! kernel in PID 1's read or close. So they are taken, made not to wait
//! (a socket's linger off: its close goes on in the background; a
//! terminal's pending output flushed), and closed.
//!
//! Not made harmless: a block device's last close (its dirty pages
//! written back) or a file of a FUSE or network file system; a unit that
//! can open those can stop PID 1 in other ways too.

use core::mem::MaybeUninit;
use rustix::fd::{BorrowedFd, OwnedFd};
use rustix::io::{Errno, IoSliceMut};
use rustix::net::{AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};

/// The most fds the kernel passes with one message (`SCM_MAX_FD`).
const MAX_FDS: usize = 253;

/// How deep `let_go` follows unix sockets passed inside passed ones.
const DEPTH: u8 = 2;

/// One datagram of `sock` into `buf`, as read(2) would read it (cut to
/// `buf`, without waiting); the fds passed with it are let go (`let_go`).
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
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = message {
            fds.for_each(|fd| let_go(fd, depth));
        }
    }
    Ok(got.bytes)
}

/// Reads a close of a socket passed to PID 1 or of its own makes first.
const DRAIN_READS: usize = 16;

/// What is still queued on `sock` taken (`recv`), before its close
/// would release the fds passed with it as they are: `DRAIN_READS` reads
/// at most, a datagram each (a datagram socket's queue is short:
/// `net.unix.max_dgram_qlen`, 10 by default), or 512 bytes of a stream
/// (what a stream holds past that is released as it is).
pub fn drain(sock: BorrowedFd<'_>) {
    drain_at(sock, DEPTH)
}

fn drain_at(sock: BorrowedFd<'_>, depth: u8) {
    let mut buf = [0u8; 512];
    for _ in 0..DRAIN_READS {
        match recv_at(sock, &mut buf, depth) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(_) => return,
        }
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
            drain_at(rustix::fd::AsFd::as_fd(&fd), d);
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
        drain(b.as_fd());
        drop(b);
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        let (_, empty) = pair();
        assert_eq!(recv(empty.as_fd(), &mut [0u8; 4]), Err(Errno::AGAIN));
    }
}
