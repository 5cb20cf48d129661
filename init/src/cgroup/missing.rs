//! No usable cgroup2: what is on the cgroup root instead, said once with
//! how to turn cgroup2 on, and what a unit then runs without (CONTRACT
//! section 2: degrade, never brick).
//!
//! Without a hierarchy every unit runs in PID 1's own cgroup: no limit of
//! it is enforced, nothing is accounted, and a stop that outlives
//! `stop_timeout` kills the unit's process group instead of its cgroup.

use core::fmt;
use std::path::Path;

use super::{settings, CgroupError, NotEnforced};
use crate::unit::Limits;

/// The entry of `NotEnforced` that stands for the unit's own cgroup, ahead
/// of its limit keys: `initctl status NAME` shows `not enforced: cgroup
/// memory.max ...`.
pub const NO_CGROUP: &str = "cgroup";

/// `statfs` magic numbers (linux/magic.h) of what may be on the root.
const CGROUP2_SUPER_MAGIC: u64 = 0x6367_7270;
const CGROUP_SUPER_MAGIC: u64 = 0x0027_e0eb;
const TMPFS_MAGIC: u64 = 0x0102_1994;
const SYSFS_MAGIC: u64 = 0x6265_6572;

/// What the cgroup root turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Found {
    /// cgroup2 is there, but setting it up failed (the error says how).
    Cgroup2,
    /// A cgroup v1 hierarchy mounted on the root itself.
    V1,
    /// A tmpfs: the usual cgroup v1 layout (one v1 hierarchy per
    /// controller below it), or something made up.
    Tmpfs,
    /// Nothing mounted (the directory of sysfs): the mount of cgroup2
    /// failed, so the kernel lacks it.
    Nothing,
    /// Some other file system, or the root could not be looked at.
    Other,
    /// clone3 or its `CLONE_INTO_CGROUP` refused by the kernel (before
    /// 5.7): units cannot be placed in their cgroups at creation.
    NoCloneIntoCgroup,
}

/// Classify the `f_type` of a `statfs` of the cgroup root.
pub fn classify(f_type: u64) -> Found {
    match f_type {
        CGROUP2_SUPER_MAGIC => Found::Cgroup2,
        CGROUP_SUPER_MAGIC => Found::V1,
        TMPFS_MAGIC => Found::Tmpfs,
        SYSFS_MAGIC => Found::Nothing,
        _ => Found::Other,
    }
}

/// Look at what is mounted on `root`.
pub fn diagnose(root: &Path) -> Found {
    match rustix::fs::statfs(root) {
        // f_type is a signed word; the magic numbers are all positive and
        // below 2^32, so reading it through u32 loses nothing of them.
        Ok(st) => classify(u64::from(st.f_type as u32)),
        Err(_) => Found::Other,
    }
}

impl Found {
    /// What is on the root, for people.
    pub fn what(self) -> &'static str {
        match self {
            Found::Cgroup2 => "cgroup2 is mounted but cannot be set up",
            Found::V1 => "a cgroup v1 hierarchy is mounted there",
            Found::Tmpfs => "a tmpfs is mounted there (a cgroup v1 layout)",
            Found::Nothing => "no cgroup2 file system could be mounted there",
            Found::Other => "something other than cgroup2 is mounted there",
            Found::NoCloneIntoCgroup => "the kernel refuses clone3 with CLONE_INTO_CGROUP",
        }
    }

    /// How to turn cgroup2 on.
    pub fn how(self) -> &'static str {
        match self {
            Found::Cgroup2 => "check the error above and that /sys/fs/cgroup is writable",
            Found::V1 | Found::Tmpfs | Found::Other => {
                "let nothing mount on /sys/fs/cgroup before wren (wren mounts cgroup2 itself), \
                 e.g. no cgroup v1 mounts in the initramfs; cgroup_no_v1=all keeps controllers \
                 free for cgroup2"
            }
            Found::Nothing => "use a kernel with CONFIG_CGROUPS (cgroup2)",
            Found::NoCloneIntoCgroup => "use Linux 5.7 or later",
        }
    }
}

/// The one message PID 1 logs: what is missing, what that costs the
/// units, how to turn it on.
pub struct Message<'a> {
    pub root: &'a str,
    pub found: Found,
    pub error: Option<&'a CgroupError>,
}

impl fmt::Display for Message<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cgroup: no usable cgroup2 on {}: {}",
            self.root,
            self.found.what()
        )?;
        if let Some(e) = self.error {
            write!(f, " ({e})")?;
        }
        write!(
            f,
            "; units run without their own cgroup and without limits (memory.*, pids.*, \
             cpu.*, io.* not enforced); to enable: {}",
            self.found.how()
        )
    }
}

impl super::Cgroups {
    /// The keys of `limits` that `prepare` found not enforced in the
    /// unit's cgroup as it is (their files missing: the controller not
    /// available), nothing written: for a unit taken over running.
    pub fn not_enforced_in(&self, name: &str, limits: &Limits) -> NotEnforced {
        let mut ne = NotEnforced::new();
        let Ok(dir) = self.unit_dir(name) else {
            return ne;
        };
        for s in settings(limits).iter().filter(|s| s.explicit) {
            let mut c = crate::sys::path::CPath::new();
            let there = c.of_str(s.file).and_then(|f| {
                rustix::fs::accessat(
                    &dir,
                    f,
                    rustix::fs::Access::EXISTS,
                    rustix::fs::AtFlags::empty(),
                )
            });
            if there == Err(rustix::io::Errno::NOENT) {
                let _ = ne.push(s.file);
            }
        }
        ne
    }
}

/// What a unit runs without when there is no hierarchy: its own cgroup,
/// then every limit key it sets.
pub fn not_enforced(limits: &Limits) -> NotEnforced {
    let mut out = NotEnforced::new();
    let _ = out.push(NO_CGROUP);
    for s in settings(limits) {
        if s.explicit {
            let _ = out.push(s.file);
        }
    }
    out
}

/// Whether a failed clone3 says the kernel cannot place a child into a
/// cgroup at creation: ENOSYS (no clone3, before 5.3) or E2BIG (a
/// `clone_args` with the `cgroup` field is too new for it, 5.3 to 5.6).
/// EINVAL is not one: it also means a namespace the kernel lacks.
pub fn clone_into_cgroup_refused(errno: rustix::io::Errno) -> bool {
    use rustix::io::Errno;
    matches!(errno, Errno::NOSYS | Errno::TOOBIG)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unit::Limit;
    use rustix::io::Errno;

    #[test]
    fn statfs_magic_numbers_name_what_is_mounted() {
        assert_eq!(classify(0x6367_7270), Found::Cgroup2);
        assert_eq!(classify(0x27e0eb), Found::V1);
        assert_eq!(classify(0x0102_1994), Found::Tmpfs);
        assert_eq!(classify(0x6265_6572), Found::Nothing);
        assert_eq!(classify(0xef53), Found::Other);
    }

    #[test]
    fn the_message_says_what_is_missing_and_how_to_enable_it() {
        let e = CgroupError::ReadControllers {
            errno: Errno::NOENT,
        };
        let m = Message {
            root: "/sys/fs/cgroup",
            found: Found::V1,
            error: Some(&e),
        }
        .to_string();
        assert!(m.starts_with("cgroup: no usable cgroup2 on /sys/fs/cgroup: a cgroup v1 hierarchy is mounted there (cgroup: cannot read cgroup.controllers: "), "{m}");
        assert!(m.contains("without limits"), "{m}");
        assert!(
            m.contains("to enable: let nothing mount on /sys/fs/cgroup before wren"),
            "{m}"
        );
        let m = Message {
            root: "/sys/fs/cgroup",
            found: Found::NoCloneIntoCgroup,
            error: None,
        }
        .to_string();
        assert!(m.contains("CLONE_INTO_CGROUP"), "{m}");
        assert!(m.ends_with("to enable: use Linux 5.7 or later"), "{m}");
        assert!(m.contains("CLONE_INTO_CGROUP; units run"), "{m}");
        // One kernel log record each, never cut: the how is at the end.
        for found in [
            Found::Cgroup2,
            Found::V1,
            Found::Tmpfs,
            Found::Nothing,
            Found::Other,
            Found::NoCloneIntoCgroup,
        ] {
            let m = Message {
                root: "/sys/fs/cgroup",
                found,
                error: Some(&e),
            }
            .to_string();
            assert!(m.len() + 16 < crate::kmsg::LINE_MAX, "{} {m}", m.len());
        }
    }

    #[test]
    fn without_a_hierarchy_the_cgroup_and_every_set_limit_are_not_enforced() {
        let none = not_enforced(&Limits::default());
        assert_eq!(none.as_slice(), &[NO_CGROUP]);
        let limits = Limits {
            memory_max: Some(Limit::Value(16 << 20)),
            pids_max: Some(Limit::Max),
            cpu_max: Some((Limit::Value(50_000), 100_000)),
            ..Limits::default()
        };
        assert_eq!(
            not_enforced(&limits).as_slice(),
            &[NO_CGROUP, "memory.max", "pids.max", "cpu.max"]
        );
    }

    #[test]
    fn only_clone3_refusals_count_as_no_clone_into_cgroup() {
        assert!(clone_into_cgroup_refused(Errno::NOSYS));
        assert!(clone_into_cgroup_refused(Errno::TOOBIG));
        assert!(!clone_into_cgroup_refused(Errno::INVAL));
        assert!(!clone_into_cgroup_refused(Errno::NOMEM));
    }
}
