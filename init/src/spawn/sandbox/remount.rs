//! A mount's flags changed where it is, for `sandbox`: a bind made
//! read-only, a tree made `nodev`, a bind remounted with a flag more. A
//! remount repeats the flags the mount keeps: in a user namespace the
//! kernel refuses to clear those the parent namespace set.

use core::ffi::CStr;
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::mount::MountFlags;

/// `p` bound onto itself read-only; nothing if it is not there.
pub(super) fn bind_read_only(p: &CStr) -> Result<(), Errno> {
    // Recursive: in a user namespace the mounts under /proc/sys
    // (binfmt_misc) are locked, and a plain bind over them refused.
    match rustix::mount::mount_bind_recursive(p, p) {
        Ok(()) => {}
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e),
    }
    let ro = MountFlags::RDONLY | MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC;
    remount_bind(p, ro)?;
    // And every mount below it: binfmt_misc under /proc/sys takes a
    // `register` from root without a capability, and the interpreter it
    // names then runs for whoever execs a matching file (the host's root).
    // A file (`/proc/sysrq-trigger`) has none.
    match flag_tree(p, crate::sys::mount::readonly_recursive, MountFlags::RDONLY) {
        Err(Errno::NOTDIR) => {}
        r => r?,
    }
    cut_off(p)
}

/// `p`'s mounts private in the unit's namespace: a bind of a slave (the
/// unit's copy of the host's mounts, `enter`) is a slave too, and a file
/// system the host mounts there later (binfmt_misc under `/proc/sys`)
/// arrived with the host's flags, writable, in a tree made read-only.
pub(super) fn cut_off(p: &CStr) -> Result<(), Errno> {
    use rustix::mount::MountPropagationFlags as Propagation;
    rustix::mount::mount_change(p, Propagation::REC | Propagation::PRIVATE)
}

/// `path`'s mount and every one below it made `nodev`; before Linux 5.12
/// (no mount_setattr), `path`'s mount alone.
pub(super) fn nodev_tree(path: &CStr) -> Result<(), Errno> {
    flag_tree(path, crate::sys::mount::nodev_recursive, MountFlags::NODEV)
}

/// `path`'s mount and every one below it given `flag` by `recursive`
/// (mount_setattr); before Linux 5.12, `path`'s mount alone, remounted.
pub(super) fn flag_tree(
    path: &CStr,
    recursive: fn(rustix::fd::BorrowedFd<'_>) -> Result<(), Errno>,
    flag: MountFlags,
) -> Result<(), Errno> {
    let dir = rustix::fs::openat(
        rustix::fs::CWD,
        path,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    match recursive(rustix::fd::AsFd::as_fd(&dir)) {
        Err(Errno::NOSYS) => remount_bind(path, flag),
        r => r,
    }
}

/// Remounts the bind mount at `path` with `add` on top of the flags it
/// has: a remount must repeat the flags it keeps (in a user namespace the
/// kernel refuses to clear the ones the parent namespace set, and
/// outside one it would clear `nosuid` or `ro` of the image's mount).
pub(super) fn remount_bind(path: &CStr, add: MountFlags) -> Result<(), Errno> {
    let kept = rustix::fs::statvfs(path)?.f_flag;
    let mut flags = MountFlags::BIND | add;
    for (st, mf) in [
        (rustix::fs::StatVfsMountFlags::RDONLY, MountFlags::RDONLY),
        (rustix::fs::StatVfsMountFlags::NOSUID, MountFlags::NOSUID),
        (rustix::fs::StatVfsMountFlags::NODEV, MountFlags::NODEV),
        (rustix::fs::StatVfsMountFlags::NOEXEC, MountFlags::NOEXEC),
        (rustix::fs::StatVfsMountFlags::NOATIME, MountFlags::NOATIME),
        (
            rustix::fs::StatVfsMountFlags::NODIRATIME,
            MountFlags::NODIRATIME,
        ),
        (
            rustix::fs::StatVfsMountFlags::RELATIME,
            MountFlags::RELATIME,
        ),
    ] {
        if kept.contains(st) {
            flags |= mf;
        }
    }
    // The options a `&CStr`, as `boot::mounts` has them: one copy of
    // rustix's `mount_remount`, which is generic over their type.
    rustix::mount::mount_remount(path, flags, c"")
}
