//! mount_setattr(2) (Linux 5.12), which neither rustix nor nix wraps:
//! one flag added to a whole tree of mounts in one call, where a remount
//! changes one mount and leaves those below it as they were.

use rustix::fd::{AsRawFd, BorrowedFd};
use rustix::io::Errno;

/// `struct mount_attr` of linux/mount.h (MOUNT_ATTR_SIZE_VER0).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NODEV: u64 = 0x4;
const AT_EMPTY_PATH: usize = 0x1000;
const AT_RECURSIVE: usize = 0x8000;

/// Makes the mount `fd` is on, and every mount below it, `nodev`.
/// ENOSYS before Linux 5.12. Raw (no errno): a spawn slot's child calls
/// it.
pub fn nodev_recursive(fd: BorrowedFd<'_>) -> Result<(), Errno> {
    set_recursive(fd, MOUNT_ATTR_NODEV)
}

/// `nodev_recursive` for read-only.
pub fn readonly_recursive(fd: BorrowedFd<'_>) -> Result<(), Errno> {
    set_recursive(fd, MOUNT_ATTR_RDONLY)
}

fn set_recursive(fd: BorrowedFd<'_>, set: u64) -> Result<(), Errno> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let dirfd = usize::try_from(fd.as_raw_fd()).map_err(|_| Errno::BADF)?;
    let path = c"";
    // SAFETY: mount_setattr reads a NUL-terminated path (`path`, a static
    // empty C string: AT_EMPTY_PATH names `fd` itself) and `size` bytes
    // of `struct mount_attr` (`attr`, alive across the call, its layout
    // the kernel's version 0); `fd` is open for the call's duration.
    unsafe {
        super::raw::syscall6(
            libc::SYS_mount_setattr,
            [
                dirfd,
                path.as_ptr() as usize,
                AT_EMPTY_PATH | AT_RECURSIVE,
                &attr as *const MountAttr as usize,
                core::mem::size_of::<MountAttr>(),
                0,
            ],
        )
    }
    .map(|_| ())
}
