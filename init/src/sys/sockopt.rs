//! getsockopt(2) for a socket's type and its peer's credentials, made
//! raw. rustix's `socket_type` and `socket_peercred` assert the length
//! the kernel wrote back (`assert_eq!`), and that panic's message was the
//! binary's one `Debug` of a `usize` (core's, with its hex forms: 848
//! bytes with the assert's own code, docs/size.md). The kernel writes at
//! most the length given and never less for these two options (an `int`,
//! a `struct ucred`), so the check could not fail.

use rustix::fd::{AsRawFd, BorrowedFd};
use rustix::io::Errno;
use rustix::net::SocketType;

/// A unix socket's peer, from SO_PEERCRED (the peer's at its connect).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer {
    pub pid: i32,
    pub uid: u32,
}

/// `fd`'s type (SO_TYPE), as rustix's `sockopt::socket_type` gives it.
pub fn socket_type(fd: BorrowedFd<'_>) -> Result<SocketType, Errno> {
    get(fd, libc::SO_TYPE).map(|[t, _, _]| SocketType::from_raw(t))
}

/// The peer's pid and uid (SO_PEERCRED), as rustix's
/// `sockopt::socket_peercred` gives them.
pub fn peer(fd: BorrowedFd<'_>) -> Result<Peer, Errno> {
    get(fd, libc::SO_PEERCRED).map(|[pid, uid, _]| Peer {
        pid: pid.cast_signed(),
        uid,
    })
}

/// Option `name` at SOL_SOCKET: up to three 32-bit words (an `int`, or a
/// `struct ucred`: pid, uid, gid); one body for both options.
fn get(fd: BorrowedFd<'_>, name: libc::c_int) -> Result<[u32; 3], Errno> {
    let mut words = [0u32; 3];
    let mut len: libc::socklen_t = 12;
    // SAFETY: `words` (12 bytes) and `len` are on this frame and outlive
    // the call; the kernel writes at most `len` bytes into `words` and
    // the length it wrote into `len`.
    unsafe {
        super::raw::syscall6(
            libc::SYS_getsockopt,
            [
                fd.as_raw_fd() as usize,
                libc::SOL_SOCKET as usize,
                name as usize,
                words.as_mut_ptr() as usize,
                &raw mut len as usize,
                0,
            ],
        )
    }?;
    Ok(words)
}

#[cfg(test)]
mod tests {
    use rustix::fd::AsFd;

    /// The same answers as rustix's for a stream pair, a datagram socket
    /// and a pipe (not a socket).
    #[test]
    fn type_and_peer_are_rustix_s() {
        use rustix::net::{socketpair, AddressFamily, SocketFlags, SocketType};
        let (a, _b) = socketpair(
            AddressFamily::UNIX,
            SocketType::STREAM,
            SocketFlags::CLOEXEC,
            None,
        )
        .unwrap();
        assert_eq!(
            super::socket_type(a.as_fd()),
            rustix::net::sockopt::socket_type(&a)
        );
        assert_eq!(super::socket_type(a.as_fd()), Ok(SocketType::STREAM));
        let cred = rustix::net::sockopt::socket_peercred(&a).unwrap();
        let peer = super::peer(a.as_fd()).unwrap();
        assert_eq!(peer.pid, cred.pid.as_raw_nonzero().get());
        assert_eq!(peer.uid, cred.uid.as_raw());
        let d = rustix::net::socket(AddressFamily::UNIX, SocketType::DGRAM, None).unwrap();
        assert_eq!(super::socket_type(d.as_fd()), Ok(SocketType::DGRAM));
        let (r, _w) = rustix::pipe::pipe().unwrap();
        assert_eq!(
            super::socket_type(r.as_fd()),
            Err(rustix::io::Errno::NOTSOCK)
        );
        assert_eq!(super::peer(r.as_fd()), Err(rustix::io::Errno::NOTSOCK));
    }
}
