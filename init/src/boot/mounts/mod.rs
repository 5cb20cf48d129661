//! Early mounts at boot and the unmount at shutdown (docs/boot.md,
//! "Boot sequence" and "Shutdown").
//!
//! Boot mounts only what is not mounted yet, decided from the text of
//! /proc/self/mounts, so the same binary works under an initramfs that
//! already set things up, under a kernel with `devtmpfs.mount=1`, and on a
//! bare root. Shutdown unmounts real file systems in reverse mount order and
//! remounts read-only what stays busy, so that nothing written is lost.
//!
//! The table parsing and the shutdown plan are pure and tested on fixture
//! text; the syscalls are thin loops over them.

use core::fmt;
use std::ffi::CStr;
use std::os::fd::{AsRawFd, IntoRawFd};
use std::path::Path;

use crate::sys::path::CPath;
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::mount::MountFlags;

/// One mount wren makes at boot.
#[derive(Clone, Copy, Debug)]
pub struct MountSpec {
    pub target: &'static str,
    pub fstype: &'static str,
    pub flags: MountFlags,
    /// Mount options, most wanted first: each is tried in turn while the
    /// kernel answers EINVAL (options it does not know).
    pub options: &'static [&'static CStr],
}

const NOSUID_NODEV_NOEXEC: MountFlags = MountFlags::NOSUID
    .union(MountFlags::NODEV)
    .union(MountFlags::NOEXEC);

/// /proc, mounted first: everything else is decided from its mount table.
pub const PROC: MountSpec = MountSpec {
    target: "/proc",
    fstype: "proc",
    flags: NOSUID_NODEV_NOEXEC,
    options: &[c""],
};

/// The rest, in order: a mount point inside another mount comes after it.
pub const EARLY: [MountSpec; 6] = [
    MountSpec {
        target: "/sys",
        fstype: "sysfs",
        flags: NOSUID_NODEV_NOEXEC,
        options: &[c""],
    },
    MountSpec {
        target: "/dev",
        fstype: "devtmpfs",
        flags: MountFlags::NOSUID,
        options: &[c"mode=0755"],
    },
    MountSpec {
        target: "/dev/pts",
        fstype: "devpts",
        flags: MountFlags::NOSUID.union(MountFlags::NOEXEC),
        // gid 5 is `tty` by convention; ptmxmode=666 lets non-root users
        // open /dev/pts/ptmx (the /dev/ptmx symlink points there).
        options: &[c"gid=5,mode=620,ptmxmode=666"],
    },
    MountSpec {
        target: "/dev/shm",
        fstype: "tmpfs",
        flags: MountFlags::NOSUID.union(MountFlags::NODEV),
        options: &[c"mode=1777"],
    },
    MountSpec {
        target: "/run",
        fstype: "tmpfs",
        flags: MountFlags::NOSUID.union(MountFlags::NODEV),
        // Bounded as systemd bounds it: with /dev/shm (half the RAM, the
        // kernel's default) a unit without `memory.max` could otherwise
        // fill all of it with pages no OOM kill gives back.
        options: &[c"mode=0755,size=20%"],
    },
    MountSpec {
        target: "/sys/fs/cgroup",
        fstype: "cgroup2",
        flags: NOSUID_NODEV_NOEXEC,
        // memory_recursiveprot (5.7+) lets protection flow down a subtree
        // (a unit's own children are covered by its memory.low); units/
        // itself still needs the sum of its units' values, which PID 1
        // writes (Cgroups::set_units_protection). nsdelegate (4.15+) makes
        // a cgroup namespace a delegation boundary.
        options: &[c"nsdelegate,memory_recursiveprot", c"nsdelegate", c""],
    },
];

/// Symlinks into /proc that devtmpfs does not create and shells expect,
/// as C strings: rustix's `symlink` copies no `&str` into one.
pub const DEV_LINKS: [(&CStr, &CStr); 4] = [
    (c"/dev/fd", c"/proc/self/fd"),
    (c"/dev/stdin", c"/proc/self/fd/0"),
    (c"/dev/stdout", c"/proc/self/fd/1"),
    (c"/dev/stderr", c"/proc/self/fd/2"),
];

/// A boot mount step that failed (or went with less than wanted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MountError {
    /// The mount table could not be read: every mount is attempted.
    ReadTable { errno: Errno },
    /// Creating the mount point.
    Mkdir { target: &'static str, errno: Errno },
    /// The mount itself (with the last options tried).
    Mount {
        target: &'static str,
        fstype: &'static str,
        errno: Errno,
    },
    /// Mounted, but only with `used` options: the kernel refused the
    /// preferred ones (for cgroup2: memory.low protection then needs
    /// memory.low on every ancestor).
    FewerOptions {
        target: &'static str,
        wanted: &'static str,
        used: &'static str,
    },
    /// Creating one of `DEV_LINKS`.
    Symlink { link: &'static str, errno: Errno },
    /// Mounted already, and the remount with the options wanted refused.
    KeptAsMounted {
        target: &'static str,
        wanted: &'static str,
        errno: Errno,
    },
}

impl fmt::Display for MountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MountError::ReadTable { errno } => {
                write!(f, "cannot read the mount table: {errno}")
            }
            MountError::Mkdir { target, errno } => {
                write!(f, "cannot create mount point {target}: {errno}")
            }
            MountError::Mount {
                target,
                fstype,
                errno,
            } => write!(f, "cannot mount {fstype} on {target}: {errno}"),
            MountError::FewerOptions {
                target,
                wanted,
                used,
            } => {
                write!(
                    f,
                    "{target} mounted with options '{used}': kernel refused '{wanted}'"
                )?;
                // What is lost, and how to have it (contract: naming what
                // is missing and how to turn it on).
                // `ends_with`, not `contains`: no substring searcher is
                // linked for this (8 KB on Buildroot's Rust 1.88).
                let recursiveprot = |o: &str| o.ends_with("memory_recursiveprot");
                if recursiveprot(wanted) && !recursiveprot(used) {
                    f.write_str(
                        "; a unit's memory.low then protects only its own cgroup, not those it makes below it (memory_recursiveprot: Linux 5.7)",
                    )?;
                }
                Ok(())
            }
            MountError::Symlink { link, errno } => {
                write!(f, "cannot create symlink {link}: {errno}")
            }
            MountError::KeptAsMounted {
                target,
                wanted,
                errno,
            } => write!(
                f,
                "{target} was mounted already; cannot remount it with '{wanted}': {errno}; kept as it is"
            ),
        }
    }
}

/// Does field `field` of the mount table (octal escapes `\040` and the
/// like for blanks and backslashes) spell `want`? No allocation.
fn field_eq(field: &str, want: &str) -> bool {
    let mut want = want.bytes();
    let mut b = field.bytes();
    while let Some(c) = b.next() {
        let c = if c == b'\\' {
            match unescape_octal(&mut b) {
                Some(v) => v,
                None => return false,
            }
        } else {
            c
        };
        if want.next() != Some(c) {
            return false;
        }
    }
    want.next().is_none()
}

/// The byte of the three octal digits after a backslash.
fn unescape_octal(b: &mut impl Iterator<Item = u8>) -> Option<u8> {
    let mut v: u32 = 0;
    for _ in 0..3 {
        let d = b.next()?;
        if !(b'0'..=b'7').contains(&d) {
            return None;
        }
        v = v * 8 + u32::from(d - b'0');
    }
    u8::try_from(v).ok()
}

/// A field of the mount table with its escapes undone.
pub fn unescape(field: &str) -> String {
    let out: Vec<u8> = unescaped_bytes(field.as_bytes()).collect();
    String::from_utf8_lossy(&out).into_owned()
}

/// The bytes of a mount table field (`/proc/self/mounts`, mountinfo)
/// with its octal escapes (`\040`, a space) undone, without the heap:
/// `spawn::sandbox::read_only` reads them between clone3 and execve.
pub(crate) fn unescaped_bytes(field: &[u8]) -> impl Iterator<Item = u8> + '_ {
    let mut b = field.iter().copied();
    core::iter::from_fn(move || {
        let c = b.next()?;
        if c == b'\\' {
            let mut look = b.clone();
            if let Some(v) = unescape_octal(&mut look) {
                b = look;
                return Some(v);
            }
        }
        Some(c)
    })
}

/// One line of /proc/self/mounts: (source, target, fstype), fields raw.
fn entries(text: &str) -> impl DoubleEndedIterator<Item = (&str, &str, &str)> {
    text.lines().filter_map(|line| {
        let mut f = line.split_ascii_whitespace();
        Some((f.next()?, f.next()?, f.next()?))
    })
}

/// The type of the topmost file system on `target` (the last listed).
fn mounted_fstype<'a>(mounts_text: &'a str, target: &str) -> Option<&'a str> {
    entries(mounts_text)
        .rev()
        .find(|(_, t, _)| field_eq(t, target))
        .map(|(_, _, fstype)| fstype)
}

/// File systems that hold nothing to flush: unmounting them at shutdown
/// gains nothing and /dev, /proc may still be in use by PID 1 itself.
pub fn is_virtual(fstype: &str) -> bool {
    matches!(
        fstype,
        "proc"
            | "sysfs"
            | "devtmpfs"
            | "devpts"
            | "tmpfs"
            | "ramfs"
            | "rootfs"
            | "cgroup"
            | "cgroup2"
            | "securityfs"
            | "debugfs"
            | "tracefs"
            | "configfs"
            | "pstore"
            | "bpf"
            | "mqueue"
            | "hugetlbfs"
            | "fusectl"
            | "binfmt_misc"
            | "autofs"
            | "nsfs"
            | "efivarfs"
    )
}

/// File systems whose flush waits on a server or a daemon, and so can
/// hang for as long as it is gone (`fuseblk`, ntfs-3g and the like on a
/// local disk, is not among them).
pub fn is_remote(fstype: &str) -> bool {
    matches!(
        fstype,
        "nfs" | "nfs4" | "cifs" | "smb3" | "smbfs" | "ncpfs" | "ceph" | "afs" | "9p" | "fuse"
    ) || fstype.starts_with("fuse.")
}

fn make_mount_point(target: &'static str) -> Result<(), MountError> {
    // Only the last component can be missing: EARLY's parents come first.
    crate::sys::file::make_dir(target).map_err(|errno| MountError::Mkdir { target, errno })
}

/// Remount the file system already on `spec.target` with `spec`'s flags
/// and the first of its options the kernel takes (a cgroup2 mounted
/// without `nsdelegate` lets a unit in a cgroup namespace write its own
/// limits); when it takes none, it stays as it is, said. The empty
/// options (a plain mount's last resort) would change nothing: not tried.
fn remount_one(spec: &MountSpec, report: &mut dyn FnMut(MountError)) {
    let named = spec.options.iter().take_while(|o| !o.is_empty()).count();
    let options = spec.options.get(..named).unwrap_or_default();
    let mut target = CPath::new();
    let taken = target.of_str(spec.target).and_then(|target| {
        let remount = |o: &CStr| rustix::mount::mount_remount(target, spec.flags, o);
        first_taken(spec, options, report, remount)
    });
    if let Err(errno) = taken {
        report(MountError::KeptAsMounted {
            target: spec.target,
            wanted: wanted(spec),
            errno,
        });
    }
}

/// `spec`'s preferred options, as text.
fn wanted(spec: &MountSpec) -> &'static str {
    spec.options
        .first()
        .and_then(|c| c.to_str().ok())
        .unwrap_or("")
}

/// Calls `call` with `options` in turn while the kernel says EINVAL (an
/// option it does not know), and says so when it took other than `spec`'s
/// preferred ones; the last error when it took none.
fn first_taken(
    spec: &MountSpec,
    options: &[&'static CStr],
    report: &mut dyn FnMut(MountError),
    call: impl Fn(&CStr) -> Result<(), Errno>,
) -> Result<(), Errno> {
    let mut last = Errno::INVAL;
    for (i, opts) in options.iter().enumerate() {
        match call(opts) {
            Ok(()) => {
                if i > 0 {
                    report(MountError::FewerOptions {
                        target: spec.target,
                        wanted: wanted(spec),
                        used: opts.to_str().unwrap_or(""),
                    });
                }
                return Ok(());
            }
            Err(Errno::INVAL) => last = Errno::INVAL,
            Err(errno) => return Err(errno),
        }
    }
    Err(last)
}

/// Mount `spec`, trying its options in turn while the kernel says EINVAL.
fn mount_one(spec: &MountSpec, report: &mut dyn FnMut(MountError)) {
    if let Err(e) = make_mount_point(spec.target) {
        report(e);
        // Mount anyway: mkdir may fail (read-only root) on an existing dir.
    }
    // `Some(o)`, as `spawn::sandbox` passes its options: one copy of
    // rustix's `mount`, which is generic over their type.
    // The paths as C strings once, not at each try.
    let (mut fstype, mut target) = (CPath::new(), CPath::new());
    let taken = fstype.of_str(spec.fstype).and_then(|fstype| {
        let target = target.of_str(spec.target)?;
        let mount = |o: &CStr| rustix::mount::mount(fstype, target, fstype, spec.flags, Some(o));
        first_taken(spec, spec.options, report, mount)
    });
    if let Err(errno) = taken {
        report(MountError::Mount {
            target: spec.target,
            fstype: spec.fstype,
            errno,
        });
    }
}

/// Mount what is not mounted yet: /proc (when /proc/self is missing), then
/// `EARLY` in order, deciding from `mounts_path` (normally
/// /proc/self/mounts), then `DEV_LINKS`. Every failure is reported and the
/// next step still tried. Boot-time only; reads the table into a String.
pub fn early_mounts(mounts_path: &Path, report: &mut dyn FnMut(MountError)) {
    // `Path::exists` by rustix's stat: std's `metadata` path not linked.
    if rustix::fs::stat("/proc/self").is_err() {
        mount_one(&PROC, report);
    }
    // The table at boot is a few lines: read into the stack in one read
    // rather than by std's growing reads of a heap buffer (issue 10: the
    // heap's first mapping, unmapped again, before the first start). A
    // table that fills the buffer may be cut: read whole then.
    let mut buf = [0u8; 4096];
    let small = mounts_path
        .to_str()
        .and_then(|p| crate::sys::file::read_seq_at(rustix::fs::CWD, p, &mut buf).ok())
        .filter(|t| t.len() < 4096);
    let whole;
    let text = match small {
        Some(t) => t,
        None => {
            whole = read_table(mounts_path).unwrap_or_else(|e| {
                report(MountError::ReadTable {
                    errno: Errno::from_io_error(&e).unwrap_or(Errno::IO),
                });
                String::new()
            });
            whole.as_str()
        }
    };
    for spec in &EARLY {
        match mounted_fstype(text, spec.target) {
            None => mount_one(spec, report),
            // Mounted by an initramfs before us, maybe without the
            // options the contract's isolation rests on: given them.
            Some(t) if t == "cgroup2" && spec.fstype == "cgroup2" => remount_one(spec, report),
            Some(_) => {}
        }
    }
    for (link, to) in DEV_LINKS {
        match rustix::fs::symlink(to, link) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(errno) => report(MountError::Symlink {
                link: link.to_str().unwrap_or_default(),
                errno,
            }),
        }
    }
}

/// The mount table at `mounts_path`, its bytes that are not UTF-8 read as
/// U+FFFD: a mount point of another encoding (a USB stick's Latin-1
/// label) loses its own line (its unmount fails, said), not the whole
/// table (every early mount done again over what is there; at shutdown,
/// nothing but the root made read-only).
pub(super) fn read_table(mounts_path: &Path) -> std::io::Result<String> {
    let mut bytes = Vec::new();
    crate::sys::file::read(mounts_path, &mut bytes)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Make sure fds 0, 1 and 2 are open: PID 1 started from an initramfs
/// without /dev/console has none. Missing ones get /dev/console (or
/// /dev/null if there is no console); open ones are left alone. Returns
/// how many were missing.
pub fn ensure_console_fds() -> Result<u8, Errno> {
    ensure_std_fds(Path::new("/dev/console")).or_else(|_| ensure_std_fds(Path::new("/dev/null")))
}

/// `ensure_console_fds` with the device as a parameter. open(2) returns
/// the lowest free fd, so opening until the result is above 2 fills
/// exactly the holes, with no need to test fds that may be closed.
pub fn ensure_std_fds(dev: &Path) -> Result<u8, Errno> {
    fill_std_fds(dev, OFlags::RDWR | OFlags::NOCTTY)
}

/// The last resort when no device opens: the holes among fds 0-2 held on
/// "/" (`O_PATH`: reads and writes fail), so that no fd opened later
/// takes one of those numbers and gets written as stdio.
pub fn hold_std_fds() -> Result<u8, Errno> {
    fill_std_fds(Path::new("/"), OFlags::PATH)
}

fn fill_std_fds(path: &Path, flags: OFlags) -> Result<u8, Errno> {
    let probe = rustix::fs::openat(
        rustix::fs::CWD,
        c"/",
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    if probe.as_raw_fd() > 2 {
        return Ok(0);
    }
    drop(probe);
    let mut filled = 0;
    loop {
        let fd = crate::sys::file::openat(rustix::fs::CWD, path, flags, Mode::empty())?;
        if fd.as_raw_fd() > 2 {
            return Ok(filled);
        }
        // Kept open for good as a standard fd.
        let _ = fd.into_raw_fd();
        filled += 1;
    }
}

mod unmount;
#[cfg(test)]
use unmount::{left_read_write, load_plan};
pub use unmount::{unmount_all, unmount_plan, Action, Unmounted};

#[cfg(test)]
mod tests;
