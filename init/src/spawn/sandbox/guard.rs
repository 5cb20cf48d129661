//! The host's kernel files a unit's namespaces keep read-only: those
//! that check the writer's uid, not its capabilities (`/proc/sys`, PCI
//! configuration space, the cgroup tree), for a root unit that dropped
//! the capabilities that would otherwise guard them.

use super::remount::{bind_read_only, cut_off, flag_tree};
use super::{Failure, PathBuf, Step};
use crate::sys::path::CPath;
use crate::unit::{Namespaces, UnitDef};
use rustix::io::Errno;
use rustix::mount::MountFlags;

/// `/proc/sys`, `/proc/sysrq-trigger`, `/proc/bus`, `/proc/fs` and
/// `/proc/irq` read-only under the `/proc` at `proc_dir`, as runc has
/// them: their files check the writer's uid, not its capabilities, so a
/// root unit without CAP_SYS_ADMIN could set `kernel.core_pattern` (a
/// program the kernel runs as the host's root), crash the machine, write
/// a PCI device's configuration space (`/proc/bus/pci`: the Pi 4's USB
/// controller, the Pi 5's RP1) or move interrupts. Absent ones (no sysrq,
/// no PCI) are fine.
pub(super) fn guard_proc(proc_dir: &str) -> Result<(), Failure> {
    for sub in ["/sys", "/sysrq-trigger", "/bus", "/fs", "/irq"] {
        let p = PathBuf::join(proc_dir, sub)?;
        CPath::new()
            .of_str(p.as_str())
            .and_then(bind_read_only)
            .map_err(|e| (Step::MountProc, e))?;
    }
    Ok(())
}

/// Runs as uid 0 of the host's user namespace without CAP_SYS_ADMIN: the
/// files that check the writer's uid alone (sysctls, cgroup files, all
/// root's 0644) would let it do what its dropped capabilities forbid.
pub(super) fn root_without_admin(def: &UnitDef, uid: Option<u32>) -> bool {
    uid.is_none_or(|u| u == 0)
        && !def.namespaces.has(Namespaces::USER)
        && !def.kept_caps(true).has(wren_core::confine::caps::SYS_ADMIN)
}

/// For `root_without_admin` with the host's `/` (a `root` unit has its
/// own `guard_proc` and no `/sys`): `/proc/sys` and `/proc/sysrq-trigger`
/// read-only, `kernel.core_pattern` being a program the kernel runs as
/// the host's root; `/proc/sys/net` writable again when `net` (the unit's
/// own network namespace, or `net_admin` kept: in the host's, the kernel
/// checks the writer's uid there, not CAP_NET_ADMIN, for most files:
/// `rp_filter`, `accept_redirects`, `ip_unprivileged_port_start`, ...);
/// `/sys/fs/cgroup` read-only, or the unit could
/// move itself out of its cgroup (and its limits, its stop), or kill
/// another unit's; `/sys/kernel/uevent_helper` read-only where the kernel
/// has one (`CONFIG_UEVENT_HELPER`: `kernel.hotplug`'s twin, a program
/// the kernel runs as the host's root). The rest of `/sys` stays
/// writable: LEDs and GPIOs are what such units are for.
pub(super) fn guard_host_files(net: bool) -> Result<(), Failure> {
    guard_proc("/proc").map_err(|(_, e)| (Step::HostFiles, e))?;
    bind_read_only(c"/sys/kernel/uevent_helper").map_err(|e| (Step::HostFiles, e))?;
    let rw = MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC;
    if net {
        match rustix::mount::mount_bind_recursive(c"/proc/sys/net", c"/proc/sys/net") {
            // Writable again: a bind copies the read-only flag it was
            // made under, which `remount_bind` would keep.
            Ok(()) => rustix::mount::mount_remount(c"/proc/sys/net", MountFlags::BIND | rw, c"")
                .map_err(|e| (Step::HostFiles, e))?,
            Err(Errno::NOENT) => {}
            Err(e) => return Err((Step::HostFiles, e)),
        }
    }
    // The unit's own copies of the mounts (its mount namespace): every
    // one under the cgroup root (a hybrid host's cgroup2 is below a
    // tmpfs there).
    let cg = crate::vocab::CGROUP_ROOT_C;
    match flag_tree(
        cg,
        crate::sys::mount::readonly_recursive,
        MountFlags::RDONLY,
    ) {
        // Not there, or not a mount (no cgroup2 mounted there:
        // `cgroup::missing`): nothing of the cgroup tree to protect.
        Err(Errno::NOENT | Errno::INVAL) => Ok(()),
        // Nor a hierarchy the host mounts there later, writable.
        r => r
            .and_then(|()| cut_off(cg))
            .map_err(|e| (Step::HostFiles, e)),
    }
}
