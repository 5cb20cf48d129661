//! The Linux watchdog device's timeout ioctl, which neither rustix nor
//! nix wraps. Feeding and the magic close are plain writes (see
//! `crate::watchdog`).

use rustix::fd::{AsFd, AsRawFd};
use rustix::io::Errno;

/// `_IOWR('W', 6, int)`: the same number on every architecture wren
/// targets (the asm-generic ioctl encoding).
const WDIOC_SETTIMEOUT: u32 = 0xC004_5706;

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
