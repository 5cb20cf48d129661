//! The unmounting at shutdown (docs/boot.md, "Shutdown"): a plan from
//! the text of /proc/self/mounts (`unmount_plan`), carried out mount by
//! mount (`unmount_all`), each outcome reported.

use super::{entries, field_eq, is_remote, is_virtual, read_table, unescape};
use core::fmt;
use rustix::io::Errno;
use rustix::mount::{MountFlags, UnmountFlags};
use std::path::Path;

/// What shutdown does with one mount.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// umount2, falling back to a read-only remount when busy.
    Unmount(String),
    /// The root cannot be unmounted: remount it read-only.
    RemountRoot,
    /// A local file system mounted read-write on `/` under another mount
    /// on `/` (an overlay or a tmpfs stacked on the disk root): no path
    /// reaches it, so only the kernel's forced remount makes it
    /// read-only. Its source, for the log.
    UnderRoot(String),
    /// sync(2), which waits on every file system, remote ones too.
    Sync,
}

/// The shutdown plan for `mounts_text`: real local file systems in
/// reverse mount order (children before parents), the root read-only
/// unless it is an initramfs, and only then the remote ones (after a
/// sync), so that a dead server, which hangs whatever flushes its mount,
/// holds none of the local disks' data (each unmount or read-only
/// remount writes its own file system out). Allocates (shutdown-time
/// only).
pub fn unmount_plan(mounts_text: &str) -> Vec<Action> {
    let mut plan = Vec::new();
    let mut remote = Vec::new();
    let mut root_fstype: Option<&str> = None;
    for (source, target, fstype) in entries(mounts_text).rev() {
        if field_eq(target, "/") {
            // The topmost mount on / is the last one listed, seen first here.
            if root_fstype.is_some() && is_disk(fstype) && writable(mounts_text, source, fstype) {
                plan.push(Action::UnderRoot(unescape(source)));
            }
            root_fstype.get_or_insert(fstype);
        } else if is_remote(fstype) {
            remote.push(Action::Unmount(unescape(target)));
        } else if !is_virtual(fstype) {
            plan.push(Action::Unmount(unescape(target)));
        }
    }
    // A remote root (nfsroot) is flushed by the last sync, after all.
    if root_fstype.is_some_and(is_disk) {
        plan.push(Action::RemountRoot);
    }
    if !remote.is_empty() {
        plan.push(Action::Sync);
        plan.append(&mut remote);
    }
    plan
}

/// A local file system on a device (not virtual, not remote).
fn is_disk(fstype: &str) -> bool {
    !is_virtual(fstype) && !is_remote(fstype)
}

/// Whether the mount of `source` on `/` as `fstype` is read-write (its
/// options' first word is `rw`); a line that cannot be told counts as
/// read-write, the side a forced remount covers.
fn writable(mounts_text: &str, source: &str, fstype: &str) -> bool {
    !mounts_text.lines().any(|line| {
        let mut f = line.split_ascii_whitespace();
        f.next() == Some(source)
            && f.next().is_some_and(|t| field_eq(t, "/"))
            && f.next() == Some(fstype)
            && f.next().is_some_and(|o| o.split(',').next() == Some("ro"))
    })
}

/// What happened to one mount at shutdown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unmounted<'a> {
    /// The mount table could not be read; only the root is remounted.
    ReadTable {
        errno: Errno,
    },
    Unmounted {
        target: &'a str,
    },
    /// sync(2) begins (before the remote file systems).
    Syncing,
    /// umount2 said EINVAL: no longer a mount point (gone with its parent).
    NotMounted {
        target: &'a str,
    },
    /// Busy (`umount` is its errno; None for the root, never unmounted),
    /// remounted read-only instead: its data is on disk.
    RemountedRo {
        target: &'a str,
        umount: Option<Errno>,
    },
    /// Under the root's top mount, read-write (`Action::UnderRoot`):
    /// left to the kernel's forced remount.
    UnderRoot {
        source: &'a str,
    },
    /// Neither worked.
    Failed {
        target: &'a str,
        umount: Option<Errno>,
        remount: Errno,
    },
}

impl fmt::Display for Unmounted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unmounted::ReadTable { errno } => write!(f, "cannot read the mount table: {errno}"),
            Unmounted::Syncing => f.write_str("syncing disks"),
            Unmounted::Unmounted { target } => write!(f, "unmounted {target}"),
            Unmounted::NotMounted { target } => write!(f, "{target} already unmounted"),
            Unmounted::RemountedRo {
                target,
                umount: Some(e),
            } => write!(f, "{target} busy ({e}), remounted read-only"),
            Unmounted::RemountedRo {
                target,
                umount: None,
            } => write!(f, "remounted {target} read-only"),
            Unmounted::UnderRoot { source } => {
                write!(f, "{source} is under another mount on / and read-write")
            }
            Unmounted::Failed {
                target,
                umount,
                remount,
            } => {
                write!(f, "cannot unmount {target}")?;
                if let Some(e) = umount {
                    write!(f, " ({e})")?;
                }
                write!(f, " nor remount it read-only: {remount}")
            }
        }
    }
}

fn remount_ro<'a>(target: &'a str, umount: Option<Errno>) -> Unmounted<'a> {
    let mut c = crate::sys::path::CPath::new();
    let remounted = c
        .of_str(target)
        .and_then(|t| rustix::mount::mount_remount(t, MountFlags::RDONLY, c""));
    match remounted {
        Ok(()) => Unmounted::RemountedRo { target, umount },
        Err(remount) => Unmounted::Failed {
            target,
            umount,
            remount,
        },
    }
}

/// The plan for the table at `mounts_path`; when it cannot be read, that
/// is reported and only the root is made read-only.
pub(super) fn load_plan(mounts_path: &Path, report: &mut dyn FnMut(Unmounted<'_>)) -> Vec<Action> {
    match read_table(mounts_path) {
        Ok(text) => unmount_plan(&text),
        Err(e) => {
            report(Unmounted::ReadTable {
                errno: Errno::from_io_error(&e).unwrap_or(Errno::IO),
            });
            vec![Action::RemountRoot]
        }
    }
}

/// Shutdown: carry out `unmount_plan` of `mounts_path` (normally
/// /proc/self/mounts), reporting each mount. Never panics; a mount that
/// can be neither unmounted nor made read-only is reported and skipped.
/// True when a file system is left read-write (`left_read_write`).
pub fn unmount_all(mounts_path: &Path, report: &mut dyn FnMut(Unmounted<'_>)) -> bool {
    let plan = load_plan(mounts_path, report);
    let mut left_rw = false;
    // The remote ones come after the sync: one of them left (a dead
    // server) is nothing the kernel's forced remount writes out.
    let mut remote = false;
    for action in &plan {
        let r = match action {
            Action::Unmount(target) => {
                let mut c = crate::sys::path::CPath::new();
                let unmounted = c
                    .of_str(target)
                    .and_then(|t| rustix::mount::unmount(t, UnmountFlags::empty()));
                match unmounted {
                    Ok(()) => Unmounted::Unmounted { target },
                    Err(Errno::INVAL) => Unmounted::NotMounted { target },
                    Err(e) => remount_ro(target, Some(e)),
                }
            }
            Action::RemountRoot => remount_ro("/", None),
            Action::UnderRoot(source) => Unmounted::UnderRoot { source },
            Action::Sync => {
                report(Unmounted::Syncing);
                rustix::fs::sync();
                remote = true;
                continue;
            }
        };
        left_rw |= !remote && left_read_write(&r);
        report(r);
    }
    left_rw
}

/// A file system left read-write: one that could be neither unmounted
/// nor made read-only, or one no path reaches. The kernel refuses a
/// read-only remount (EBUSY) while a file deleted from the file system
/// is still open, as PID 1's own binary is once an update renamed
/// another over it without a re-exec, or while a process stuck in the
/// kernel holds a file open for writing: only its forced remount (SysRq
/// `u`) then leaves the file system clean.
pub(super) fn left_read_write(r: &Unmounted<'_>) -> bool {
    matches!(r, Unmounted::Failed { .. } | Unmounted::UnderRoot { .. })
}
