//! Bringing a network interface up without netlink: SIOCGIFFLAGS and
//! SIOCSIFFLAGS on a datagram socket, which neither rustix nor nix wraps.

use rustix::fd::AsRawFd;
use rustix::io::Errno;

/// `ip link set NAME up`. The interface name must fit IFNAMSIZ with its NUL.
pub fn link_up(name: &str) -> Result<(), Errno> {
    use rustix::net::{socket_with, AddressFamily, SocketFlags, SocketType};
    let s = socket_with(
        AddressFamily::INET,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC,
        None,
    )?;
    // SAFETY: ifreq is plain old data (a name and a union of integers and
    // plain structs): all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { core::mem::zeroed() };
    if name.len() >= req.ifr_name.len() || name.as_bytes().contains(&0) {
        return Err(Errno::NAMETOOLONG);
    }
    // The rest of the name stays zero: NUL-terminated.
    for (d, s) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *d = s as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the NUL-terminated name of `req` and
    // writes only its flags; `req` is a valid ifreq alive across the call
    // and `s` an open socket.
    if unsafe { libc::ioctl(s.as_raw_fd(), libc::SIOCGIFFLAGS as _, &mut req) } < 0 {
        return Err(super::clone::last_errno());
    }
    // SAFETY: reading the flags member that SIOCGIFFLAGS just wrote.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    req.ifr_ifru.ifru_flags = flags | (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    // SAFETY: SIOCSIFFLAGS only reads `req` (name and flags), a valid
    // ifreq alive across the call; `s` is an open socket.
    if unsafe { libc::ioctl(s.as_raw_fd(), libc::SIOCSIFFLAGS as _, &req) } < 0 {
        return Err(super::clone::last_errno());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_do_not_fit_are_refused_before_any_ioctl() {
        assert_eq!(link_up("a-name-longer-than-16"), Err(Errno::NAMETOOLONG));
        assert_eq!(link_up("l\0o"), Err(Errno::NAMETOOLONG));
    }
}
