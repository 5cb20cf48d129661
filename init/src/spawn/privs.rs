//! Least privilege in the child, after its namespaces and fds are set up
//! and before execve (docs/units.md, "Confinement"): the bounding set,
//! the user and group ids with the kept capabilities carried across the
//! uid change, no_new_privs, and the seccomp filter as the very last step.
//!
//! The order is the kernel's: dropping from the bounding set needs
//! CAP_SETPCAP, so it comes while the child is still root; PR_SET_KEEPCAPS
//! before setuid keeps the permitted set, which capset then trims and the
//! ambient set carries through execve to a non-root program; the filter
//! comes last, so it need not allow setuid, capset or prctl.
//!
//! And with a user namespace, before any of it, the child waits for PID 1
//! to write its uid and gid maps (`wait_for_user_map`; PID 1's side is
//! `write_user_map`).

use super::Step;
use crate::config::users::Ids;
use crate::sys::seccomp::Program;
use crate::unit::{Caps, UnitDef, UserMap};
use rustix::fd::{AsFd, BorrowedFd};
use rustix::io::Errno;
use rustix::thread::{CapabilitySet, CapabilitySets};

type Failure = (Step, Errno);

/// The unit's `user` and `group` as numbers, looked up here in the child
/// rather than by PID 1: the passwd and group files are in the unit's
/// `root`, which may be on a mount that hangs (NFS, a dying USB stick),
/// and that stalls only this start. None when the unit names neither.
/// Its `sd_notify` socket, which PID 1 made root's (its namespace's
/// root's: `pid1::executor::notify_owner`), is then given to the ids, as
/// the unit will send from them; in a user namespace the numbers are the
/// namespace's, which the kernel maps.
pub(super) fn lookup(req: &super::Request<'_>) -> Result<Option<Ids>, super::SpawnError> {
    let def = req.def;
    if def.seldom.user.is_none() && def.seldom.group.is_none() {
        return Ok(None);
    }
    let ids =
        crate::config::users::resolve_ids_errno(def).map_err(|(why, e)| super::SpawnError {
            step: Step::Ids,
            errno: crate::config::users::why_code(why, e),
        })?;
    if let Some(path) = req.notify_socket {
        let uid = rustix::fs::Uid::from_raw(ids.uid.unwrap_or(0));
        let gid = rustix::fs::Gid::from_raw(ids.gid.unwrap_or(0));
        crate::sys::path::CPath::new()
            .of_str(path)
            .and_then(|path| rustix::fs::chown(path, Some(uid), Some(gid)))
            .map_err(|e| super::status::fail(Step::NotifySocket, e))?;
    }
    Ok(Some(ids))
}

/// What `confine` makes of a unit's process: its definition's part
/// taken out, so that a namespace's exec'd reaper, which has no
/// definition, can confine a service it starts again (`reaper::Leave`).
#[derive(Clone, Copy)]
pub(crate) struct Privs<'a> {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub groups: &'a [u32],
    /// The capabilities kept (`UnitDef::kept_caps`).
    pub keep: Caps,
    pub userns: bool,
    pub no_new_privs: bool,
}

impl<'a> Privs<'a> {
    pub fn of(def: &UnitDef, uid: Option<u32>, gid: Option<u32>, groups: &'a [u32]) -> Self {
        // uid 0 inside the unit's user namespace is root there too.
        let root = uid.is_none_or(|u| u == 0);
        Privs {
            uid,
            gid,
            groups,
            keep: def.kept_caps(root),
            userns: def.namespaces.has(crate::unit::Namespaces::USER),
            no_new_privs: def.no_new_privs_effective(),
        }
    }
}

/// Ids, capabilities, no_new_privs and the filter, in that order.
pub(super) fn confine(p: &Privs<'_>, seccomp: Option<&Program>) -> Result<(), Failure> {
    let Privs {
        uid,
        gid,
        groups,
        keep,
        userns,
        ..
    } = *p;
    let root = uid.is_none_or(|u| u == 0);
    let trim = keep != Caps::ALL;
    if trim {
        drop_bounding(keep)?;
    }
    if !root && keep.count() > 0 {
        rustix::thread::set_keep_capabilities(true).map_err(|e| (Step::KeepCaps, e))?;
    }
    // The user's groups (initgroups: those that list it, from `lookup`),
    // none for a bare uid/gid. In a user namespace setgroups(2) is
    // denied (PID 1 wrote `deny`); the unit keeps PID 1's supplementary
    // groups, which are none.
    if (uid.is_some() || gid.is_some()) && !userns {
        let gs: &[rustix::process::Gid] = &[];
        let mut buf = [rustix::process::Gid::ROOT; crate::config::users::GROUPS_MAX];
        let mut n = 0;
        for (slot, g) in buf.iter_mut().zip(groups) {
            *slot = rustix::process::Gid::from_raw(*g);
            n += 1;
        }
        let set = buf.get(..n).unwrap_or(gs);
        rustix::thread::set_thread_groups(set).map_err(|e| (Step::Groups, e))?;
    }
    // New ids set the dumpable flag of the memory this process shares
    // with PID 1 until its exec (on a spawn slot) to `fs.suid_dumpable`:
    // PID 1's flag, which it keeps off (pid1/boot.rs). Off again after
    // each change, failed or not (a gid changed before a refused uid);
    // the program's exec sets its own.
    let off = || {
        let _ =
            rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable);
    };
    if let Some(gid) = gid {
        let g = rustix::process::Gid::from_raw(gid);
        let set = rustix::thread::set_thread_res_gid(g, g, g);
        off();
        set.map_err(|e| (Step::Setgid, e))?;
    }
    if let Some(uid) = uid {
        let u = rustix::process::Uid::from_raw(uid);
        let set = rustix::thread::set_thread_res_uid(u, u, u);
        off();
        set.map_err(|e| (Step::Setuid, e))?;
    }
    // A user (not root) keeps what it is given only through the ambient
    // set, also with `all`: then all this process holds (capset refuses
    // a bit it lacks, and every bit of `Caps::ALL` is not a capability).
    let give = !root && keep.count() > 0;
    if trim || give {
        let set = if trim {
            CapabilitySet::from_bits_retain(keep.0)
        } else {
            rustix::thread::capabilities(None)
                .map_err(|e| (Step::Capset, e))?
                .permitted
        };
        rustix::thread::set_capabilities(
            None,
            CapabilitySets {
                effective: set,
                permitted: set,
                inheritable: set,
            },
        )
        .map_err(|e| (Step::Capset, e))?;
        if !root {
            // A non-root program gets capabilities at execve only from
            // the ambient set.
            for cap in 0..64u32 {
                if set.bits() & (1u64 << cap) != 0 {
                    rustix::thread::configure_capability_in_ambient_set(
                        CapabilitySet::from_bits_retain(1u64 << cap),
                        true,
                    )
                    .map_err(|e| (Step::Ambient, e))?;
                }
            }
        }
    }
    if p.no_new_privs {
        rustix::thread::set_no_new_privs(true).map_err(|e| (Step::NoNewPrivs, e))?;
    }
    if let Some(p) = seccomp {
        crate::sys::seccomp::install(p).map_err(|e| (Step::Seccomp, e))?;
    }
    Ok(())
}

/// Every capability not in `keep` leaves the bounding set, up to the
/// last one this kernel has (it answers EINVAL past it).
fn drop_bounding(keep: Caps) -> Result<(), Failure> {
    for cap in 0..64u32 {
        if keep.has(cap) {
            continue;
        }
        match rustix::thread::remove_capability_from_bounding_set(CapabilitySet::from_bits_retain(
            1u64 << cap,
        )) {
            Ok(()) => {}
            Err(Errno::INVAL) => break,
            Err(e) => return Err((Step::Bounding, e)),
        }
    }
    Ok(())
}

/// In the child of a new user namespace, first thing: wait until PID 1
/// has written the maps and says so with one byte (1: written, 0: not).
/// PID 1 writes the byte right after clone3 returns, or kills the child.
pub(super) fn wait_for_user_map(sync: BorrowedFd<'_>) -> Result<(), Failure> {
    let mut b = [0u8; 1];
    loop {
        match rustix::io::read(sync, &mut b) {
            Ok(1) if b == [1] => break,
            Ok(_) => return Err((Step::UserMap, Errno::PERM)),
            Err(Errno::INTR) => continue,
            Err(e) => return Err((Step::UserMap, e)),
        }
    }
    // The maps do not change the ids the child was created with: it is
    // still the host's root, which the map leaves unmapped (shown as the
    // overflow uid, and refused by file systems). Becoming uid and gid 0
    // of the namespace makes it the mapped OUTSIDE_UID; the capabilities
    // of the namespace stay, as for any change from root to root.
    let zero_g = rustix::process::Gid::from_raw(0);
    rustix::thread::set_thread_res_gid(zero_g, zero_g, zero_g).map_err(|e| (Step::UserRoot, e))?;
    let zero_u = rustix::process::Uid::from_raw(0);
    rustix::thread::set_thread_res_uid(zero_u, zero_u, zero_u).map_err(|e| (Step::UserRoot, e))
}

/// PID 1's side: the child `pid` in its new user namespace gets `map` as
/// its uid and gid map, with setgroups(2) denied (so no process in it can
/// drop a supplementary group that a file's permissions may rely on).
/// Files under /proc/PID are written at once: no wait.
pub(super) fn write_user_map(pid: u32, map: UserMap) -> Result<(), Errno> {
    use crate::sys::file::write_at;
    use rustix::fs::{Mode, OFlags};
    let mut dir: heapless::String<32> = heapless::String::new();
    core::fmt::write(&mut dir.as_mut_view(), format_args!("/proc/{pid}"))
        .map_err(|_| Errno::NAMETOOLONG)?;
    let d = crate::sys::file::openat(
        rustix::fs::CWD,
        dir.as_str(),
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut line: heapless::String<48> = heapless::String::new();
    core::fmt::write(
        &mut line.as_mut_view(),
        format_args!("0 {} {}\n", map.outside, map.count),
    )
    .map_err(|_| Errno::NAMETOOLONG)?;
    write_at(d.as_fd(), "setgroups", b"deny")?;
    write_at(d.as_fd(), "uid_map", line.as_bytes())?;
    write_at(d.as_fd(), "gid_map", line.as_bytes())
}
