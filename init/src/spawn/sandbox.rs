//! Inside a unit's new namespaces, before its program runs: private
//! mounts, a fresh /proc, the hostname, `lo`, and `root = DIR` (or an
//! overlay of `root = TOP:...:BASE`) with a minimal /dev and a private /tmp. One named step per thing that can fail,
//! run in the child between clone3 and execve, so only raw syscalls
//! (rustix) and fixed buffers: no allocation, no locks. A fixed path
//! passed alone to a rustix call is a `&CStr` (`c"/"`): rustix copies
//! a `&str` into a C string with code of its own at every call it is
//! passed to (issue 10's size budget).

mod guard;
mod read_only;
mod remount;

use crate::sys::file::make_dir;
use crate::sys::path::CPath;
use crate::unit::{Namespaces, UnitDef};
use crate::vocab::PATH_BYTES;
use core::ffi::CStr;
use guard::{guard_host_files, guard_proc, root_without_admin};
use remount::{nodev_tree, remount_bind};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::mount::{
    MountFlags, MountPropagationFlags, MoveMountFlags, OpenTreeFlags, UnmountFlags,
};

/// The step of namespace setup that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Step {
    MakePrivate = 40,
    BindRoot,
    MountProc,
    MountDev,
    DevNode,
    MountPts,
    MountShm,
    MountTmp,
    PivotRoot,
    Hostname,
    Loopback,
    /// A path (root + suffix) did not fit the fixed buffer.
    PathTooLong,
    /// `read_only`: remounting the root read-only.
    ReadOnly,
    /// `read_only`: the private tmpfs on /run.
    MountRun,
    /// `root_overlay`: the tmpfs for the upper layer.
    OverlayTmpfs,
    /// `root_overlay` or several `root` layers: the overlay itself (is
    /// overlayfs in the kernel?).
    Overlay,
    /// `ready = sd_notify`: the unit's socket into its `root` (or its
    /// private /run).
    NotifySocket,
    /// Root without `sys_admin`: the host's kernel files that check the
    /// writer's uid alone, read-only (`guard_host_files`).
    HostFiles,
    /// `net`: the unit's network namespace (`unshare`).
    NewNet,
    /// `read_only`: the mounts below the root made read-only too.
    ReadOnlyBelow,
}

impl Step {
    pub fn from_code(c: u8) -> Option<Step> {
        const ALL: [Step; 20] = [
            Step::MakePrivate,
            Step::BindRoot,
            Step::MountProc,
            Step::MountDev,
            Step::DevNode,
            Step::MountPts,
            Step::MountShm,
            Step::MountTmp,
            Step::PivotRoot,
            Step::Hostname,
            Step::Loopback,
            Step::PathTooLong,
            Step::ReadOnly,
            Step::MountRun,
            Step::OverlayTmpfs,
            Step::Overlay,
            Step::NotifySocket,
            Step::HostFiles,
            Step::NewNet,
            Step::ReadOnlyBelow,
        ];
        ALL.iter().copied().find(|s| *s as u8 == c)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Step::MakePrivate => "make mounts a one-way copy",
            Step::BindRoot => "bind-mount root",
            Step::MountProc => "mount /proc",
            Step::MountDev => "mount /dev",
            Step::DevNode => "bind device node",
            Step::MountPts => "mount /dev/pts",
            Step::MountShm => "mount /dev/shm",
            Step::MountTmp => "mount /tmp",
            Step::PivotRoot => "pivot_root",
            Step::Hostname => "sethostname",
            Step::Loopback => "bring up lo",
            Step::PathTooLong => "path too long",
            Step::ReadOnly => "remount root read-only",
            Step::MountRun => "mount /run",
            Step::OverlayTmpfs => "mount the overlay's upper tmpfs",
            Step::Overlay => "mount overlay root",
            Step::NotifySocket => "bind the notify socket",
            Step::HostFiles => "make the host's kernel files read-only (root without sys_admin)",
            Step::ReadOnlyBelow => "remount the mounts below / read-only",
            Step::NewNet => "make the network namespace",
        }
    }
}

pub type Failure = (Step, Errno);

/// `$NOTIFY_SOCKET` of a `root` unit: its own socket, bound onto this
/// file of the fresh /dev (which every `root` unit gets, even a read-only
/// image), so that nothing of the host's /run is visible in its root.
pub const ROOT_NOTIFY_SOCKET: &str = "/dev/wren-notify";

/// Device nodes a `root` unit gets, bound from the host's /dev.
const DEV_NODES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// Set up the unit's namespaces from inside them. Runs in the process
/// that will be (or fork) the unit's program; PID 1's own namespaces are
/// untouched. `notify_socket`: the host path of its `sd_notify` socket.
pub fn enter(def: &UnitDef, notify_socket: Option<&str>, uid: Option<u32>) -> Result<(), Failure> {
    let ns = def.namespaces;
    // Made here, not by the clone (`sys::clone::namespace_flags`): a new
    // network namespace waits for the kernel's rtnl lock (its loopback's
    // registration), which a wedged network driver holds for seconds
    // (a Wi-Fi firmware's timeouts); a child may wait for it, PID 1 not.
    // First: the steps below (the hostname, `lo`, and a `root`'s own
    // /sys) are the new namespace's, not the host's.
    if ns.has(Namespaces::NET) {
        crate::sys::clone::unshare_net().map_err(|e| (Step::NewNet, e))?;
    }
    if ns.has(Namespaces::MOUNT) {
        // Nothing mounted from here on may leak back to the host, but
        // what the host mounts or unmounts later reaches the unit (a
        // slave of PID 1's shared mounts, `pid1::boot`): private, it kept
        // an unmounted USB stick alive and unsynced, and never saw a
        // partition mounted after its start.
        rustix::mount::mount_change(
            c"/",
            MountPropagationFlags::REC | MountPropagationFlags::DOWNSTREAM,
        )
        .map_err(|e| (Step::MakePrivate, e))?;
        // The socket is taken (as a detached bind mount) before anything
        // covers it: `root_overlay` mounts over /run/wren, `read_only` over
        // /run, and `root` leaves the host behind.
        let notify = match notify_socket {
            Some(path) if def.seldom.root.is_some() || def.read_only => Some(
                CPath::new()
                    .of_str(path)
                    .and_then(|path| {
                        rustix::mount::open_tree(
                            rustix::fs::CWD,
                            path,
                            OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC,
                        )
                    })
                    .map_err(|e| (Step::NotifySocket, e))?,
            ),
            _ => None,
        };
        match def.root_layers().next() {
            Some(top) => enter_root(top, def, ns.has(Namespaces::PID))?,
            None if ns.has(Namespaces::PID) => mount_proc(c"/proc")?,
            None => {}
        }
        if def.seldom.root.is_none() && root_without_admin(def, uid) {
            // `/proc/sys/net` is the host's, and uid 0 writes it by its
            // modes: writable only to a unit with a network namespace of
            // its own (then its own) or that keeps `net_admin`.
            let net = ns.has(Namespaces::NET)
                || def.kept_caps(true).has(wren_core::confine::caps::NET_ADMIN);
            guard_host_files(net)?;
        }
        if def.read_only {
            read_only_root(def.seldom.root.is_none())?;
        }
        if let (Some(tree), Some(host)) = (notify, notify_socket) {
            // Where the unit looks for it: the fixed path in its root, or
            // the host's path again, under its private /run.
            let target = if def.seldom.root.is_some() {
                ROOT_NOTIFY_SOCKET
            } else {
                if let Some((dir, _)) = host.rsplit_once('/') {
                    make_dirs(dir).map_err(|e| (Step::NotifySocket, e))?;
                }
                host
            };
            attach(&tree, target).map_err(|e| (Step::NotifySocket, e))?;
        }
    }
    if ns.has(Namespaces::UTS) {
        let name = def.seldom.hostname.as_deref().unwrap_or(def.name.as_str());
        rustix::system::sethostname(name.as_bytes()).map_err(|e| (Step::Hostname, e))?;
    }
    if ns.has(Namespaces::NET) {
        crate::sys::netdev::link_up("lo").map_err(|e| (Step::Loopback, e))?;
    }
    Ok(())
}

/// `mkdir -p` (0755), in fixed buffers.
fn make_dirs(path: &str) -> Result<(), Errno> {
    let mut at = 0;
    while let Some(i) = path
        .get(at + 1..)
        .and_then(|rest| rest.find('/'))
        .map(|i| i + at + 1)
    {
        make_dir(path.get(..i).unwrap_or(path))?;
        at = i;
    }
    make_dir(path)
}

/// Mount the detached `tree` (a bind of one file) over `target`, made
/// first as an empty file to mount over.
fn attach(tree: &rustix::fd::OwnedFd, target: &str) -> Result<(), Errno> {
    let mut c = CPath::new();
    let target = c.of_str(target)?;
    let f = rustix::fs::openat(
        rustix::fs::CWD,
        target,
        OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )?;
    drop(f);
    rustix::mount::move_mount(
        tree,
        c"",
        rustix::fs::CWD,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
}

fn mount_proc(target: &CStr) -> Result<(), Failure> {
    rustix::mount::mount(
        c"proc",
        target,
        c"proc",
        MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
        None,
    )
    .map_err(|e| (Step::MountProc, e))
}

/// A mount point under a unit's `root` (`/proc`, `/dev`, `/tmp`), made
/// if missing, must be a directory of the root itself: a link (an
/// image's `dev -> /`) is followed in PID 1's view before the pivot, and
/// the nodes and directories made there would land in the host's `/`.
fn real_dir(path: &str, step: Step) -> Result<(), Failure> {
    let _ = make_dir(path);
    let st = rustix::fs::lstat(path).map_err(|e| (step, e))?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::Directory {
        return Err((step, Errno::NOTDIR));
    }
    Ok(())
}

/// `root` + `suffix` in a fixed buffer.
struct PathBuf {
    buf: heapless::String<{ PATH_BYTES + 32 }>,
}

impl PathBuf {
    fn join(root: &str, suffix: &str) -> Result<Self, Failure> {
        let mut buf = heapless::String::new();
        let too_long = (Step::PathTooLong, Errno::NAMETOOLONG);
        buf.push_str(root.trim_end_matches('/'))
            .map_err(|_| too_long)?;
        buf.push_str(suffix).map_err(|_| too_long)?;
        Ok(PathBuf { buf })
    }

    fn as_str(&self) -> &str {
        &self.buf
    }
}

/// Make `root` (the topmost layer of `def.seldom.root`) the unit's `/`: bind it
/// (or mount the overlay of the layers over it), give it /proc, a minimal
/// /dev and a private /tmp, pivot into it and drop the old root.
///
/// Mount points are made best effort: an existing directory (or a
/// read-only image that has it) is fine, a missing one shows up as the
/// mount's error.
fn enter_root(root: &str, def: &UnitDef, pid_ns: bool) -> Result<(), Failure> {
    let console = def.console;
    if def.root_is_overlay() {
        overlay_root(root, def)?;
    } else {
        CPath::new()
            .of_str(root)
            .and_then(|r| {
                rustix::mount::mount_bind_recursive(r, r)?;
                // No device node the unit makes in its root opens a
                // device (a unit with CAP_MKNOD, Docker's default set,
                // would reach any of the host's), nor in a file system
                // mounted below it: the bound /dev nodes below keep their
                // own mount.
                nodev_tree(r)
            })
            .map_err(|e| (Step::BindRoot, e))?;
    }
    let proc_dir = PathBuf::join(root, "/proc")?;
    real_dir(proc_dir.as_str(), Step::MountProc)?;
    let mut c = CPath::new();
    let proc_c = c
        .of_str(proc_dir.as_str())
        .map_err(|e| (Step::MountProc, e))?;
    if pid_ns {
        mount_proc(proc_c)?;
    } else {
        rustix::mount::mount_bind_recursive(c"/proc", proc_c).map_err(|e| (Step::MountProc, e))?;
    }
    guard_proc(proc_dir.as_str())?;
    let dev = PathBuf::join(root, "/dev")?;
    real_dir(dev.as_str(), Step::MountDev)?;
    mount_tmpfs(
        dev.as_str(),
        MountFlags::NOSUID | MountFlags::NOEXEC | MountFlags::NODEV,
        c"mode=0755,size=64k",
        Step::MountDev,
    )?;
    let console_node: &[&str] = if console { &["console"] } else { &[] };
    for node in DEV_NODES.iter().chain(console_node.iter()) {
        let mut host: heapless::String<32> = heapless::String::new();
        let _ = host.push_str("/dev/");
        let _ = host.push_str(node);
        let target = PathBuf::join(root, &host)?;
        let (mut h, mut t) = (CPath::new(), CPath::new());
        let target = t.of_str(target.as_str()).map_err(|e| (Step::DevNode, e))?;
        // A bind mount needs an existing file to mount over.
        let f = rustix::fs::openat(
            rustix::fs::CWD,
            target,
            OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o666),
        )
        .map_err(|e| (Step::DevNode, e))?;
        drop(f);
        // Read-only: the node is the host's inode, which a root unit owns
        // without a capability (`chmod 0 /dev/null` broke every other
        // process on the device). Opened and written it still is: a
        // device's writes are its driver's, not the file system's.
        h.of_str(host.as_str())
            .and_then(|host| rustix::mount::mount_bind(host, target))
            .and_then(|()| remount_bind(target, MountFlags::RDONLY | MountFlags::NOSUID))
            .map_err(|e| (Step::DevNode, e))?;
    }
    let pts = PathBuf::join(root, "/dev/pts")?;
    let _ = make_dir(pts.as_str());
    mount_fs(
        c"devpts",
        pts.as_str(),
        MountFlags::NOSUID | MountFlags::NOEXEC,
        c"newinstance,ptmxmode=0666,mode=620",
        Step::MountPts,
    )?;
    let ptmx = PathBuf::join(root, "/dev/ptmx")?;
    let _ = CPath::new()
        .of_str(ptmx.as_str())
        .and_then(|ptmx| rustix::fs::symlink(c"pts/ptmx", ptmx));
    let shm = PathBuf::join(root, "/dev/shm")?;
    let _ = make_dir(shm.as_str());
    mount_tmpfs(
        shm.as_str(),
        MountFlags::NOSUID | MountFlags::NODEV,
        c"mode=1777,size=20%",
        Step::MountShm,
    )?;
    let tmp = PathBuf::join(root, "/tmp")?;
    real_dir(tmp.as_str(), Step::MountTmp)?;
    mount_tmpfs(
        tmp.as_str(),
        MountFlags::NOSUID | MountFlags::NODEV,
        c"mode=1777,size=20%",
        Step::MountTmp,
    )?;
    let how = switch_root(root).map_err(|e| (Step::PivotRoot, e))?;
    // Which way the unit's root was entered (`wren.debug`); the log
    // writes one line to the /dev/kmsg fd PID 1 already holds, from a
    // fixed buffer, so it is safe here.
    crate::debug!("{}: root {root}: {}", def.name, how.as_str());
    Ok(())
}

/// How `switch_root` entered the new root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Entered {
    /// pivot_root, and the old root detached: nothing of the host's
    /// tree is left in the unit's mount namespace.
    Pivot,
    /// The initramfs fallback: the new root moved over `/`, then chroot.
    MoveChroot,
}

impl Entered {
    fn as_str(self) -> &'static str {
        match self {
            Entered::Pivot => "pivot_root, old root detached",
            Entered::MoveChroot => "initramfs root: moved over / and chroot (no pivot_root)",
        }
    }
}

/// Where the upper layer of a `root_overlay` unit lives: a fresh tmpfs
/// mounted here in the unit's own mount namespace only (PID 1 made the
/// directory for its control socket; the host's copy is untouched).
const OVERLAY_SCRATCH: &str = "/run/wren";

/// The overlay of `def.seldom.root`'s layers, mounted over `top` (the topmost
/// layer), so everything after (mount points, the unit's writes) lands in
/// the overlay and no layer is ever written. With `root_overlay` a new
/// tmpfs holds the upper layer; without it (several layers) the overlay
/// has no upper layer and is read-only.
fn overlay_root(top: &str, def: &UnitDef) -> Result<(), Failure> {
    let lower = def.seldom.root.as_deref().unwrap_or(top);
    let too_long = (Step::PathTooLong, Errno::NAMETOOLONG);
    let mut opts: heapless::String<{ crate::vocab::ROOT_BYTES + 96 }> = heapless::String::new();
    if def.root_overlay {
        let _ = make_dir(OVERLAY_SCRATCH);
        mount_tmpfs(
            OVERLAY_SCRATCH,
            MountFlags::NOSUID | MountFlags::NODEV,
            c"mode=0755,size=20%",
            Step::OverlayTmpfs,
        )?;
        for d in ["/upper", "/work"] {
            let p = PathBuf::join(OVERLAY_SCRATCH, d)?;
            make_dir(p.as_str()).map_err(|e| (Step::OverlayTmpfs, e))?;
        }
        core::fmt::write(
            &mut opts.as_mut_view(),
            format_args!(
                "lowerdir={lower},upperdir={OVERLAY_SCRATCH}/upper,workdir={OVERLAY_SCRATCH}/work\0"
            ),
        )
    } else {
        core::fmt::write(&mut opts.as_mut_view(), format_args!("lowerdir={lower}\0"))
    }
    .map_err(|_| too_long)?;
    let opts = core::ffi::CStr::from_bytes_with_nul(opts.as_bytes()).map_err(|_| too_long)?;
    // NODEV as a bound root's (`enter_root`).
    mount_fs(c"overlay", top, MountFlags::NODEV, opts, Step::Overlay)
}

/// A fresh tmpfs on `path` (which must exist), its failure named by `step`.
/// A unit's own are bounded (`size=20%`, as the host's `/run`): what is
/// written there is in no process's RSS, and without a `memory.max` the
/// OOM killer took other units for it, the kernel's default being half
/// the RAM a mount.
fn mount_tmpfs(
    path: &str,
    flags: MountFlags,
    opts: &core::ffi::CStr,
    step: Step,
) -> Result<(), Failure> {
    mount_fs(c"tmpfs", path, flags, opts, step)
}

/// A new file system of type `fs` (its source named the same) on `path`
/// (which must exist), its failure named by `step`.
fn mount_fs(
    fs: &core::ffi::CStr,
    path: &str,
    flags: MountFlags,
    opts: &core::ffi::CStr,
    step: Step,
) -> Result<(), Failure> {
    CPath::new()
        .of_str(path)
        .and_then(|path| rustix::mount::mount(fs, path, fs, flags, Some(opts)))
        .map_err(|e| (step, e))
}

/// `read_only`: the unit's `/` (its `root` once switched to) becomes
/// read-only in its mount namespace, with private writable tmpfs on /run
/// (a `root` that has one) and, without `root` (which has one already),
/// /tmp. Every other file system mounted below `/` is made read-only too
/// (`read_only`), but the kernel's own (/proc, /sys, /dev).
fn read_only_root(host_root: bool) -> Result<(), Failure> {
    // A `root` without /run gets none: made, it would be written into the
    // image's directory on the host, and a root of layers cannot have it
    // made at all.
    if host_root || rustix::fs::stat(c"/run").is_ok() {
        mount_tmpfs(
            "/run",
            MountFlags::NOSUID | MountFlags::NODEV,
            c"mode=0755,size=20%",
            Step::MountRun,
        )?;
    }
    if host_root {
        mount_tmpfs(
            "/tmp",
            MountFlags::NOSUID | MountFlags::NODEV,
            c"mode=1777,size=20%",
            Step::MountTmp,
        )?;
    }
    remount_bind(c"/", MountFlags::RDONLY).map_err(|e| (Step::ReadOnly, e))?;
    read_only::read_only_below().map_err(|e| (Step::ReadOnlyBelow, e))
}

/// pivot_root into `root` and detach the old root. An initramfs root
/// cannot be pivoted away from (EINVAL); there, as switch_root and crun's
/// no-pivot mode do, move the new root over / and chroot into it.
fn switch_root(root: &str) -> Result<Entered, Errno> {
    rustix::process::chdir(CPath::new().of_str(root)?)?;
    let how = match rustix::process::pivot_root(c".", c".") {
        Ok(()) => {
            // The old root is stacked under the new one at "."; detach it.
            rustix::mount::unmount(c".", UnmountFlags::DETACH)?;
            Entered::Pivot
        }
        Err(Errno::INVAL) => {
            rustix::mount::mount_move(c".", c"/")?;
            rustix::process::chroot(c".")?;
            Entered::MoveChroot
        }
        Err(e) => return Err(e),
    };
    rustix::process::chdir(c"/")?;
    Ok(how)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_codes_round_trip() {
        for c in 0..=255u8 {
            if let Some(s) = Step::from_code(c) {
                assert_eq!(s as u8, c);
            }
        }
        assert_eq!(Step::from_code(Step::Loopback as u8), Some(Step::Loopback));
        // The guard of a root unit without sys_admin is its own step: it
        // was told as `remount root read-only`, a key the unit lacks.
        let host = Step::from_code(Step::HostFiles as u8).unwrap();
        assert!(host.as_str().contains("sys_admin"), "{}", host.as_str());
        assert_eq!(Step::from_code(0), None);
    }

    #[test]
    fn paths_join_without_doubling_slashes_and_refuse_overflow() {
        assert_eq!(
            PathBuf::join("/srv/c/", "/proc").unwrap().as_str(),
            "/srv/c/proc"
        );
        assert_eq!(PathBuf::join("/", "/dev").unwrap().as_str(), "/dev");
        let long = "x".repeat(PATH_BYTES + 40);
        assert_eq!(
            PathBuf::join(&long, "/dev").err().map(|e| e.0),
            Some(Step::PathTooLong)
        );
    }
}
