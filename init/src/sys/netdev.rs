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
    // A raw call (`raw`): the child bringing `lo` up may share PID 1's
    // errno.
    unsafe {
        ioctl(
            s.as_raw_fd(),
            libc::SIOCGIFFLAGS as usize,
            &mut req as *mut libc::ifreq as usize,
        )
    }?;
    // SAFETY: reading the flags member that SIOCGIFFLAGS just wrote.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    req.ifr_ifru.ifru_flags = flags | (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    // SAFETY: SIOCSIFFLAGS only reads `req` (name and flags), a valid
    // ifreq alive across the call; `s` is an open socket.
    unsafe {
        ioctl(
            s.as_raw_fd(),
            libc::SIOCSIFFLAGS as usize,
            &req as *const libc::ifreq as usize,
        )
    }
}

/// ioctl `request` on `fd` with the pointer `arg`.
///
/// # Safety
/// `arg` points at what `request` reads or writes, valid for the call.
unsafe fn ioctl(fd: i32, request: usize, arg: usize) -> Result<(), Errno> {
    // SAFETY: the caller's contract; `fd` is only a number to the kernel.
    unsafe { super::raw::syscall6(libc::SYS_ioctl, [fd as usize, request, arg, 0, 0, 0]) }
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_do_not_fit_are_refused_before_any_ioctl() {
        assert_eq!(link_up("a-name-longer-than-16"), Err(Errno::NAMETOOLONG));
        assert_eq!(link_up("l\0o"), Err(Errno::NAMETOOLONG));
    }

    #[test]
    fn a_missing_interface_is_an_error_value_and_errno_stays() {
        crate::sys::raw::errno::set(0);
        assert_eq!(link_up("wren-none0"), Err(Errno::NODEV));
        #[cfg(any(target_arch = "aarch64", target_arch = "x86_64"))]
        assert_eq!(crate::sys::raw::errno::get(), 0);
    }
}
