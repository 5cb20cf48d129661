//! What a unit made of its own cgroup: cgroups below it and the
//! controllers it enabled for them (a container runtime's, with
//! `namespaces = cgroup` or the cgroup tree writable). A run leaves them
//! behind, and they would keep the unit from starting again (the kernel
//! places no process in a cgroup whose `cgroup.subtree_control` holds a
//! domain controller: clone3 into it is EBUSY) and its cgroup from being
//! removed (rmdir of a cgroup with children is EBUSY). Undone once
//! nothing runs in them.

use rustix::fd::{AsFd, BorrowedFd};
use rustix::fs::AtFlags;
use rustix::io::Errno;

use crate::sys::file::{read_kernel_at, write_at};

/// The controllers a `cgroup.subtree_control` line may name, as the
/// kernel writes them.
const CONTROLLERS: usize = 16;

/// Removes the cgroups below `dir` (deepest first, as many as one walk
/// visits: `kill::below`; the rest at the next) and
/// turns off every controller enabled in `dir`'s `cgroup.subtree_control`.
/// True when something was undone; a cgroup still populated stays (its
/// rmdir is EBUSY), and the first error is returned after the rest was
/// tried.
pub fn undo<Fd: AsFd>(dir: Fd) -> Result<bool, Errno> {
    let mut done = false;
    let mut first = Ok(());
    prune(dir.as_fd(), &mut done, &mut first);
    let mut buf = [0u8; 128];
    match read_kernel_at(&dir, "cgroup.subtree_control", &mut buf) {
        // One controller a write: the kernel takes a line whole or not at
        // all, and one a busy child still uses would keep the rest on.
        Ok(on) => {
            for c in on.split_whitespace().take(CONTROLLERS) {
                let mut off: heapless::String<32> = heapless::String::new();
                let _ = off.push('-');
                let _ = off.push_str(c);
                match write_at(&dir, "cgroup.subtree_control", off.as_bytes()) {
                    Ok(()) => done = true,
                    Err(e) => first = first.and(Err(e)),
                }
            }
        }
        Err(Errno::NOENT) => {}
        Err(e) => first = first.and(Err(e)),
    }
    first.map(|()| done)
}

/// The cgroups below `dir` (`kill::below`'s, `SUB_CGROUPS` of them),
/// removed deepest first; one whose own were not all visited is left for
/// the next try, not tried (its rmdir would fail for them).
fn prune(dir: BorrowedFd<'_>, done: &mut bool, first: &mut Result<(), Errno>) {
    let budget = super::kill::SUB_CGROUPS;
    let listed = super::kill::below(dir, budget, &mut |parent, name, _, whole| {
        if !whole {
            return;
        }
        match crate::sys::file::unlinkat(parent, name, AtFlags::REMOVEDIR) {
            Ok(()) => *done = true,
            Err(Errno::NOENT) => {}
            Err(e) => *first = core::mem::replace(first, Ok(())).and(Err(e)),
        }
    });
    if let Err(e) = listed {
        *first = core::mem::replace(first, Ok(())).and(Err(e));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    /// A runtime's leftovers: two levels of cgroups and `+memory +pids`
    /// for them. (On a fixture a cgroup is an empty directory; cgroupfs
    /// removes one that holds only its interface files.)
    #[test]
    fn a_units_own_cgroups_and_controllers_are_undone() {
        let unit = TempDir::new("nested-undo");
        std::fs::create_dir_all(unit.join("init/deeper")).unwrap();
        std::fs::create_dir_all(unit.join("payload")).unwrap();
        std::fs::write(unit.join("cgroup.subtree_control"), "memory pids\n").unwrap();
        std::fs::write(unit.join("cgroup.procs"), "").unwrap();
        assert_eq!(undo(unit.dir_fd()), Ok(true));
        for d in ["init", "payload"] {
            assert!(!unit.join(d).exists(), "{d} left");
        }
        // One write a controller (a fixture file keeps the last).
        assert_eq!(
            std::fs::read_to_string(unit.join("cgroup.subtree_control")).unwrap(),
            "-pids"
        );
        // Nothing left to undo: nothing written.
        std::fs::write(unit.join("cgroup.subtree_control"), "\n").unwrap();
        assert_eq!(undo(unit.dir_fd()), Ok(false));
        assert_eq!(
            std::fs::read_to_string(unit.join("cgroup.subtree_control")).unwrap(),
            "\n"
        );
    }

    /// A cgroup below that cannot go (here: not empty, as a populated
    /// cgroup's rmdir is refused) stays, and says why; the rest goes.
    #[test]
    fn a_cgroup_that_cannot_go_stays_and_the_rest_goes() {
        let unit = TempDir::new("nested-busy");
        std::fs::create_dir_all(unit.join("busy")).unwrap();
        std::fs::write(unit.join("busy/cgroup.procs"), "42\n").unwrap();
        std::fs::create_dir_all(unit.join("idle")).unwrap();
        std::fs::write(unit.join("cgroup.subtree_control"), "pids\n").unwrap();
        assert_eq!(undo(unit.dir_fd()), Err(Errno::NOTEMPTY));
        assert!(unit.join("busy").exists() && !unit.join("idle").exists());
        assert_eq!(
            std::fs::read_to_string(unit.join("cgroup.subtree_control")).unwrap(),
            "-pids"
        );
    }

    /// More cgroups below than one walk visits: each `undo` removes what
    /// its walk reached, `SUB_CGROUPS` of them, and the next goes on with
    /// the rest. A cgroup whose own the walk did not all reach is left
    /// for the next, without an error (its rmdir would fail for them).
    #[test]
    fn a_wide_tree_goes_a_walk_at_a_time() {
        let budget = super::super::kill::SUB_CGROUPS as usize;
        let unit = TempDir::new("nested-wide");
        for i in 0..budget + 40 {
            std::fs::create_dir(unit.join(format!("c{i}"))).unwrap();
        }
        let left = |d: &str| std::fs::read_dir(unit.join(d)).unwrap().count();
        assert_eq!(undo(unit.dir_fd()), Ok(true));
        assert_eq!(left(""), 40);
        assert_eq!(undo(unit.dir_fd()), Ok(true));
        assert_eq!(left(""), 0);
        assert_eq!(undo(unit.dir_fd()), Ok(false));
        // Within one cgroup: it costs the walk one, its own the rest.
        for i in 0..budget + 40 {
            std::fs::create_dir_all(unit.join(format!("a/c{i}"))).unwrap();
        }
        assert_eq!(undo(unit.dir_fd()), Ok(true), "no error for `a`");
        assert_eq!(left("a"), 41);
        assert_eq!(undo(unit.dir_fd()), Ok(true));
        assert!(!unit.join("a").exists());
    }
}
