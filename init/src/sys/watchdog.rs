//! The Linux watchdog device's ioctls, which neither rustix nor nix
//! wraps: what it supports (is it a watchdog at all) and its timeout.
//! Feeding and the magic close are plain writes (see `crate::watchdog`).

use rustix::fd::{AsFd, AsRawFd};
use rustix::io::Errno;

/// `_IOWR('W', 6, int)`: the same number on every architecture wren
/// targets (the asm-generic ioctl encoding).
const WDIOC_SETTIMEOUT: u32 = 0xC004_5706;
/// `_IOR('W', 0, struct watchdog_info)`: 40 bytes.
const WDIOC_GETSUPPORT: u32 = 0x8028_5700;
/// `_IOR('W', 7, int)`.
const WDIOC_GETTIMEOUT: u32 = 0x8004_5707;

/// `struct watchdog_info` of linux/watchdog.h.
#[repr(C)]
struct Info {
    options: u32,
    firmware_version: u32,
    identity: [u8; 32],
}

/// The device answers the watchdog's own ioctl: a watchdog driver, not
/// a disk, a tty or a file named by mistake (ENOTTY).
pub fn is_watchdog<Fd: AsFd>(fd: Fd) -> Result<(), Errno> {
    let mut info = Info {
        options: 0,
        firmware_version: 0,
        identity: [0; 32],
    };
    // SAFETY: WDIOC_GETSUPPORT writes one `struct watchdog_info` (40
    // bytes, `Info`'s layout) through the pointer, which points at `info`,
    // alive across the call; the fd is open.
    let r = unsafe { libc::ioctl(fd.as_fd().as_raw_fd(), WDIOC_GETSUPPORT as _, &mut info) };
    if r < 0 {
        return Err(super::clone::last_errno());
    }
    Ok(())
}

/// The timeout in seconds the driver keeps.
pub fn timeout<Fd: AsFd>(fd: Fd) -> Result<u32, Errno> {
    let mut v: libc::c_int = 0;
    // SAFETY: WDIOC_GETTIMEOUT writes one int through the pointer, which
    // points at `v`, alive across the call; the fd is open.
    let r = unsafe { libc::ioctl(fd.as_fd().as_raw_fd(), WDIOC_GETTIMEOUT as _, &mut v) };
    if r < 0 {
        return Err(super::clone::last_errno());
    }
    u32::try_from(v).map_err(|_| Errno::INVAL)
}

/// Sets the timeout in seconds; returns what the driver chose (it may
/// round or clamp).
pub fn set_timeout<Fd: AsFd>(fd: Fd, secs: u32) -> Result<u32, Errno> {
    let mut v: libc::c_int = libc::c_int::try_from(secs).map_err(|_| Errno::INVAL)?;
    // SAFETY: WDIOC_SETTIMEOUT reads and writes one int through the
    // pointer, which points at `v`, alive across the call; the fd is open.
    let r = unsafe { libc::ioctl(fd.as_fd().as_raw_fd(), WDIOC_SETTIMEOUT as _, &mut v) };
    if r < 0 {
        return Err(super::clone::last_errno());
    }
    u32::try_from(v).map_err(|_| Errno::INVAL)
}
