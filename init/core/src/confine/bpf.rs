//! The seccomp filter as a classic BPF program (linux/seccomp.h,
//! linux/filter.h), built from a set of system calls. Pure: the `wren`
//! crate hands the instructions to the kernel (`sys::seccomp`).
//!
//! ```text
//!     ld  [arch]                     seccomp_data.arch
//!     jeq ARCH, 1, 0
//!     ret KILL_PROCESS               another ABI (e.g. 32-bit): never
//!     ld  [nr]
//!     jge 0x40000000, 0, 1           (x86_64 only: the x32 ABI's
//!     ret EPERM                       numbers, always refused)
//!     jge PIVOT, 0, 1                a binary search over the sorted
//!     ja  UPPER                      numbers (see `tree`), whose
//!     ...                            leaves compare a few numbers each:
//!     jeq n1, ACTION                 jeq n1 .. n4
//!     ret DEFAULT                    ret DEFAULT
//!     ret ACTION                     ret ACTION
//! ```
//!
//! An allow list: ACTION is allow, DEFAULT is EPERM; a deny list the other
//! way round.

use super::syscalls::{NONE, NUMBERS};
use super::SyscallSet;

/// One `struct sock_filter`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// The architectures a filter can be built for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    Aarch64,
    X86_64,
}

impl Arch {
    /// `AUDIT_ARCH_*` (linux/audit.h).
    pub fn audit(self) -> u32 {
        match self {
            Arch::Aarch64 => 0xC000_00B7,
            Arch::X86_64 => 0xC000_003E,
        }
    }

    /// The column of `syscalls::NUMBERS`.
    fn column(self) -> usize {
        match self {
            Arch::Aarch64 => 0,
            Arch::X86_64 => 1,
        }
    }

    /// The architecture this binary runs on, if filters exist for it.
    pub fn native() -> Option<Arch> {
        if cfg!(target_arch = "aarch64") {
            Some(Arch::Aarch64)
        } else if cfg!(target_arch = "x86_64") {
            Some(Arch::X86_64)
        } else {
            None
        }
    }
}

// Opcodes (linux/bpf_common.h).
// BPF_LD | BPF_W | BPF_ABS (the first two are 0).
const LD_W_ABS: u16 = 0x20;
const JMP_JEQ_K: u16 = 0x05 | 0x10;
const JMP_JGE_K: u16 = 0x05 | 0x30;
const JMP_JA: u16 = 0x05;
const RET_K: u16 = 0x06;

/// Offsets in `struct seccomp_data`.
const DATA_NR: u32 = 0;
const DATA_ARCH: u32 = 4;

pub const RET_KILL_PROCESS: u32 = 0x8000_0000;
pub const RET_ALLOW: u32 = 0x7fff_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const EPERM: u32 = 1;
pub const RET_EPERM: u32 = RET_ERRNO | EPERM;
/// x86_64: system call numbers of the x32 ABI have this bit.
const X32_BIT: u32 = 0x4000_0000;

/// Calls compared one by one at a leaf of the search tree.
const LEAF: usize = 4;

/// Most instructions a filter can need (the kernel allows 4096): per name
/// a compare, and per leaf and per branch two more; a leaf has at least
/// one name and there are fewer branches than leaves.
pub const MAX_INSNS: usize = 5 * super::syscalls::COUNT + 16;

fn stmt(code: u16, k: u32) -> Insn {
    Insn {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> Insn {
    Insn { code, jt, jf, k }
}

/// Instructions of the search tree over `nrs` (sorted).
fn tree_len(nrs: &[u32]) -> usize {
    if nrs.len() <= LEAF {
        return nrs.len() + 2;
    }
    let (lo, hi) = nrs.split_at(nrs.len() / 2);
    2 + tree_len(lo) + tree_len(hi)
}

/// A binary search over the sorted `nrs`, so a call passes about
/// 2 log2(n) + 4 instructions instead of up to n: a branch is
/// `jge PIVOT` with a long `ja` over the lower half (a conditional jump
/// reaches 255 ahead at most, `ja` any distance); a leaf compares its few
/// numbers and returns.
fn tree(nrs: &[u32], action: u32, default: u32, emit: &mut dyn FnMut(Insn)) {
    if nrs.len() <= LEAF {
        let k = nrs.len();
        for (i, nr) in nrs.iter().enumerate() {
            // Past the other compares and `ret default`, to `ret action`.
            let to_action = u8::try_from(k - i).unwrap_or(u8::MAX);
            emit(jump(JMP_JEQ_K, *nr, to_action, 0));
        }
        emit(stmt(RET_K, default));
        emit(stmt(RET_K, action));
        return;
    }
    let (lo, hi) = nrs.split_at(nrs.len() / 2);
    let pivot = hi.first().copied().unwrap_or(0);
    // Taken (nr >= pivot): the `ja` to the upper half; else past it.
    emit(jump(JMP_JGE_K, pivot, 0, 1));
    emit(stmt(
        JMP_JA,
        u32::try_from(tree_len(lo)).unwrap_or(u32::MAX),
    ));
    tree(lo, action, default, emit);
    tree(hi, action, default, emit);
}

/// The filter for `set` on `arch`: calls in the set get `action`, all
/// others `default`. Names without a number on `arch` are left out.
/// `emit` receives the instructions in order (at most `MAX_INSNS`).
pub fn build(arch: Arch, set: &SyscallSet, action: u32, default: u32, emit: &mut dyn FnMut(Insn)) {
    let col = arch.column();
    // Sorted by number, for the search tree: at most one per name.
    let mut nrs = [0u32; super::syscalls::COUNT];
    let mut n = 0;
    for nr in NUMBERS
        .iter()
        .enumerate()
        .filter(|(i, _)| set.has(*i))
        .filter_map(|(_, nrs)| nrs.get(col).copied())
        .filter(|nr| *nr != NONE)
    {
        if let Some(slot) = nrs.get_mut(n) {
            *slot = u32::from(nr);
            n += 1;
        }
    }
    let nrs = nrs.get_mut(..n).unwrap_or_default();
    nrs.sort_unstable();
    emit(stmt(LD_W_ABS, DATA_ARCH));
    emit(jump(JMP_JEQ_K, arch.audit(), 1, 0));
    emit(stmt(RET_K, RET_KILL_PROCESS));
    emit(stmt(LD_W_ABS, DATA_NR));
    if arch == Arch::X86_64 {
        // The x32 ABI's calls have numbers of their own; a deny list that
        // let them through would deny nothing.
        emit(jump(JMP_JGE_K, X32_BIT, 0, 1));
        emit(stmt(RET_K, RET_EPERM));
    }
    tree(nrs, action, default, emit);
}
