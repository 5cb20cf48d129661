//! Least privilege per unit (docs/units.md, "Confinement"): capability
//! names, system call names and their `@groups`, the seccomp filter as a
//! classic BPF program, and the one-line summary `initctl status NAME`
//! shows. Pure, so the filter is built and checked on the host; the
//! `wren` crate installs it (`sys::seccomp`).
//!
//! The tables and the builder live here rather than in the `wren` crate
//! because the unit parser needs the names (an unknown one is a
//! `FILE:LINE:` error) and the program is plain data: only its
//! installation is a system call.

pub mod bpf;
pub mod caps;
pub mod groups;
pub mod syscalls;

use serde::{Deserialize, Serialize};

const _: () = assert!(groups::GROUPS.len() <= 32, "group bits are u32");

const WORDS: usize = syscalls::COUNT.div_ceil(64);

/// A set of system calls: bit `i` is `syscalls::NAMES`'s `i`th name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyscallSet([u64; WORDS]);

impl SyscallSet {
    pub fn has(&self, i: usize) -> bool {
        self.0
            .get(i / 64)
            .is_some_and(|w| w & (1u64 << (i % 64)) != 0)
    }

    pub fn insert(&mut self, i: usize) {
        if let Some(w) = self.0.get_mut(i / 64) {
            *w |= 1u64 << (i % 64);
        }
    }

    pub fn union(&mut self, other: &SyscallSet) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a |= *b;
        }
    }

    pub fn len(&self) -> u32 {
        self.0.iter().map(|w| w.count_ones()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The names in the set, in table order.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        syscalls::NAMES
            .split(' ')
            .enumerate()
            .filter(|(i, _)| self.has(*i))
            .map(|(_, n)| n)
    }
}

/// The index of system call `name` in `syscalls::NAMES`.
pub fn syscall_index(name: &str) -> Option<usize> {
    if name.is_empty() {
        return None;
    }
    syscalls::NAMES.split(' ').position(|n| n == name)
}

/// The members of group `g`, its groups expanded.
pub fn group_set(g: usize) -> SyscallSet {
    let mut set = SyscallSet::default();
    add_group(g, &mut set, 0);
    set
}

fn add_group(g: usize, set: &mut SyscallSet, depth: u8) {
    // Groups nest one level today; the bound keeps a mistake finite.
    if depth > 4 {
        return;
    }
    let Some((_, members)) = groups::GROUPS.get(g) else {
        return;
    };
    for m in members.split_whitespace() {
        match m.strip_prefix('@') {
            Some(sub) => {
                if let Some(s) = groups::index(sub) {
                    add_group(s, set, depth + 1);
                }
            }
            None => {
                if let Some(i) = syscall_index(m) {
                    set.insert(i);
                }
            }
        }
    }
}

/// `seccomp = ...`: the groups and names as written, and whether they are
/// a deny list (leading `~`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seccomp {
    pub deny: bool,
    /// Bit `g`: `groups::GROUPS[g]`.
    pub groups: u32,
    pub names: SyscallSet,
}

impl Seccomp {
    /// The calls the list names, groups expanded; an allow list always
    /// has `@default` (what any program needs to exec and exit).
    pub fn effective(&self) -> SyscallSet {
        let mut set = self.names;
        for g in 0..groups::GROUPS.len() {
            if self.groups & (1u32 << g) != 0 {
                set.union(&group_set(g));
            }
        }
        if !self.deny {
            if let Some(d) = groups::index("default") {
                set.union(&group_set(d));
            }
        }
        set
    }

    /// The filter for `arch`, instruction by instruction (at most
    /// `bpf::MAX_INSNS`).
    pub fn program(&self, arch: bpf::Arch, emit: &mut dyn FnMut(bpf::Insn)) {
        let (action, default) = if self.deny {
            (bpf::RET_EPERM, bpf::RET_ALLOW)
        } else {
            (bpf::RET_ALLOW, bpf::RET_EPERM)
        };
        bpf::build(arch, &self.effective(), action, default, emit);
    }

    /// The groups as written, with their `@`.
    pub fn group_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        groups::GROUPS
            .iter()
            .enumerate()
            .filter(|(g, _)| self.groups & (1u32 << g) != 0)
            .map(|(_, (n, _))| *n)
    }
}

/// The one-line confinement summary of `initctl status NAME`, e.g.
/// `namespaces pid mount uts ipc, user www, capabilities net_bind_service,
/// no_new_privs, seccomp allow 212 calls, / read-only`.
pub struct Summary<'a>(pub &'a crate::unit::UnitDef);

/// `Summary` of a unit whose `user` is known to be uid 0 or not (a name
/// resolves only at the start: `toor` may be root).
pub struct SummaryAs<'a>(pub &'a crate::unit::UnitDef, pub bool);

impl core::fmt::Display for Summary<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        SummaryAs(self.0, self.0.named_root()).fmt(f)
    }
}

impl core::fmt::Display for SummaryAs<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        use crate::unit::IdSpec;
        let def = self.0;
        write!(f, "namespaces {}", def.namespaces)?;
        if let Some(m) = def.user_map_effective() {
            write!(f, " (root = uid {} outside)", m.outside)?;
        }
        match &def.seldom.user {
            None => f.write_str(", user root")?,
            Some(IdSpec::Id(n)) => write!(f, ", user {n}")?,
            Some(IdSpec::Name(n)) => write!(f, ", user {n}")?,
        }
        let caps = def.kept_caps(self.1);
        if caps == caps::Caps::ALL {
            f.write_str(", capabilities all")?;
        } else if caps.count() == 0 {
            f.write_str(", capabilities none")?;
        } else {
            f.write_str(", capabilities ")?;
            for (i, n) in caps.names().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                f.write_str(n)?;
            }
        }
        if def.no_new_privs_effective() {
            f.write_str(", no_new_privs")?;
        }
        match &def.seccomp {
            None => f.write_str(", seccomp none")?,
            Some(sc) => write!(
                f,
                ", seccomp {} {} calls",
                if sc.deny { "deny" } else { "allow" },
                sc.effective().len()
            )?,
        }
        let root = def.seldom.root.as_deref().unwrap_or("/");
        if def.root_overlay {
            write!(f, ", {root} overlay")?;
        } else if def.read_only || def.root_is_overlay() {
            // Layers without `root_overlay` are an overlay of lower
            // layers only: the kernel's read-only one.
            write!(f, ", {root} read-only")?;
        } else {
            write!(f, ", {root} read-write")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
