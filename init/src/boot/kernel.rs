//! What the kernel lacks that units ask for, found once at boot so it is
//! said once, with how to turn it on (CONTRACT section 2), rather than at
//! every start that fails for it. The /proc root is a parameter, so the
//! checks run against a fixture in tests.

use rustix::fd::AsFd;

/// Without `CONFIG_USER_NS` there is no `ns/user` link in /proc. (Each
/// cause fits a unit's status reason, after `cannot start: `.)
pub const NO_USER_NS: &str = "no user namespaces in this kernel (CONFIG_USER_NS)";

/// A zero limit makes every `CLONE_NEWUSER` fail.
pub const USER_NS_OFF: &str = "user namespaces off (user.max_user_namespaces = 0)";

/// Why clone3 with `CLONE_NEWUSER` failed with `errno`, when it says.
pub fn user_ns_refused(errno: rustix::io::Errno) -> Option<&'static str> {
    match errno {
        rustix::io::Errno::INVAL => Some(NO_USER_NS),
        rustix::io::Errno::NOSPC | rustix::io::Errno::USERS => Some(USER_NS_OFF),
        _ => None,
    }
}

/// What a kernel lacks, and how to turn it on.
pub type Gap = (&'static str, &'static str);

/// Why a unit with `user` in its namespaces cannot start on this kernel,
/// if it cannot: `proc` is the directory procfs is mounted on.
pub fn user_namespaces<Fd: AsFd>(proc: Fd) -> Result<(), Gap> {
    let flags = rustix::fs::AtFlags::SYMLINK_NOFOLLOW;
    if rustix::fs::statat(&proc, c"self/ns/user", flags).is_err() {
        return Err((NO_USER_NS, "build the kernel with CONFIG_USER_NS=y"));
    }
    let mut buf = [0u8; 16];
    match crate::sys::file::read_kernel_at(&proc, "sys/user/max_user_namespaces", &mut buf) {
        Ok(v) if v.trim() == "0" => Err((
            USER_NS_OFF,
            "set it above 0 in /etc/sysctl.conf (user.max_user_namespaces = 1024)",
        )),
        // Unreadable: the clone will tell.
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    fn proc_with(ns: bool, max: Option<&str>) -> TempDir {
        let dir = TempDir::new("kernel-userns");
        std::fs::create_dir_all(dir.join("self/ns")).unwrap();
        if ns {
            std::os::unix::fs::symlink("user:[4026531837]", dir.join("self/ns/user")).unwrap();
        }
        if let Some(m) = max {
            std::fs::create_dir_all(dir.join("sys/user")).unwrap();
            std::fs::write(dir.join("sys/user/max_user_namespaces"), m).unwrap();
        }
        dir
    }

    fn check(dir: &TempDir) -> Result<(), &'static str> {
        user_namespaces(dir.dir_fd()).map_err(|(cause, _)| cause)
    }

    #[test]
    fn user_namespaces_missing_or_off_are_told_apart() {
        assert_eq!(check(&proc_with(true, Some("15000\n"))), Ok(()));
        assert_eq!(check(&proc_with(true, None)), Ok(()));
        assert_eq!(check(&proc_with(false, Some("15000\n"))), Err(NO_USER_NS));
        assert_eq!(check(&proc_with(true, Some("0\n"))), Err(USER_NS_OFF));
    }

    /// This host's own /proc: the check must not call a kernel that has
    /// them (every CI host does) one without.
    #[test]
    fn this_hosts_proc_has_user_namespaces_or_says_why() {
        let proc = rustix::fs::open(
            "/proc",
            rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .unwrap();
        let max = std::fs::read_to_string("/proc/sys/user/max_user_namespaces").unwrap();
        let want = if max.trim() == "0" {
            Err(USER_NS_OFF)
        } else {
            Ok(())
        };
        assert_eq!(user_namespaces(&proc).map_err(|(cause, _)| cause), want);
    }
}
