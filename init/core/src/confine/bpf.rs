//! The seccomp filter as a classic BPF program (linux/seccomp.h,
//! linux/filter.h), built from a set of system calls. Pure: the `wren`
//! crate hands the instructions to the kernel (`sys::seccomp`).
//!
//! ```text
//!     ld  [arch]                     seccomp_data.arch
//!     jeq ARCH, 1, 0
//!     ret EPERM                      another ABI (e.g. 32-bit): never
//!     ld  [nr]
//!     jge 0x40000000, 0, 1           (x86_64 only: the x32 ABI's
//!     ret EPERM                       numbers, always refused)
//!     jge FIRST, UPPER, 0            a binary search over the runs of
//!     ...                            numbers with the same answer (see
//!     ret ACTION or DEFAULT          `tree`): a few compares, a return
//! ```
//!
//! An allow list: ACTION is allow, DEFAULT is EPERM; a deny list the other
//! way round.

use super::syscalls::{COUNT, NONE};
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

    /// Its number of each syscall name (`syscalls::NONE`: none here).
    pub fn numbers(self) -> &'static [u16; COUNT] {
        match self {
            Arch::Aarch64 => &super::syscalls::AARCH64,
            Arch::X86_64 => &super::syscalls::X86_64,
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

pub const RET_ALLOW: u32 = 0x7fff_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const EPERM: u32 = 1;
pub const RET_EPERM: u32 = RET_ERRNO | EPERM;
/// x86_64: system call numbers of the x32 ABI have this bit.
const X32_BIT: u32 = 0x4000_0000;

/// Most instructions a filter can need (the kernel allows 4096): the
/// numbers cut the number line into at most 2n+1 intervals, and the tree
/// has a return per interval and at most two instructions per branch.
pub const MAX_INSNS: usize = 4 * super::syscalls::COUNT + 16;

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

/// `(first number, answer)`: the answer holds from there to the next
/// interval's first number; the first interval starts at 0.
type Interval = (u32, u32);

/// Instructions of the search tree over `iv`.
fn tree_len(iv: &[Interval]) -> usize {
    if iv.len() <= 1 {
        return 1;
    }
    let (lo, hi) = iv.split_at(iv.len() / 2);
    let l = tree_len(lo);
    let branch = if l <= usize::from(u8::MAX) { 1 } else { 2 };
    branch + l + tree_len(hi)
}

/// A binary search over the intervals of equal answer, so a call passes
/// about log2 of their number of compares (a run of allowed numbers is
/// one interval, whatever its length) and then returns. A branch is
/// `jge FIRST_OF_UPPER_HALF` jumping over the lower half, or, when that
/// is farther than a conditional jump reaches (255), a `ja` to it.
fn tree(iv: &[Interval], emit: &mut dyn FnMut(Insn)) {
    if iv.len() <= 1 {
        emit(stmt(RET_K, iv.first().map_or(RET_EPERM, |i| i.1)));
        return;
    }
    let (lo, hi) = iv.split_at(iv.len() / 2);
    let pivot = hi.first().map_or(0, |i| i.0);
    let l = tree_len(lo);
    match u8::try_from(l) {
        Ok(over) => emit(jump(JMP_JGE_K, pivot, over, 0)),
        Err(_) => {
            emit(jump(JMP_JGE_K, pivot, 0, 1));
            emit(stmt(JMP_JA, u32::try_from(l).unwrap_or(u32::MAX)));
        }
    }
    tree(lo, emit);
    tree(hi, emit);
}

/// The filter for `set` on `arch`: calls in the set get `action`, all
/// others `default`. Names without a number on `arch` are left out.
/// `emit` receives the instructions in order (at most `MAX_INSNS`).
pub fn build(arch: Arch, set: &SyscallSet, action: u32, default: u32, emit: &mut dyn FnMut(Insn)) {
    // Which numbers are in the set, then the intervals of equal answer.
    let mut nrs = [0u32; COUNT];
    let mut n = 0;
    for nr in (arch.numbers().iter().enumerate())
        .filter(|(i, _)| set.has(*i))
        .map(|(_, nr)| *nr)
        .filter(|nr| *nr != NONE)
    {
        if let Some(slot) = nrs.get_mut(n) {
            *slot = u32::from(nr);
            n += 1;
        }
    }
    let nrs = nrs.get_mut(..n).unwrap_or_default();
    crate::sort::sort(nrs);
    let mut iv = [(0u32, 0u32); 2 * super::syscalls::COUNT + 1];
    let mut k = 0;
    let mut push = |start: u32, answer: u32| {
        if let Some(slot) = iv.get_mut(k) {
            *slot = (start, answer);
            k += 1;
        }
    };
    let mut next = 0u32;
    let mut open = false;
    for &nr in nrs.iter() {
        if open && nr == next {
            next = nr.saturating_add(1);
            continue;
        }
        if open {
            push(next, default);
        } else if nr > 0 && next == 0 {
            push(0, default);
        }
        push(nr, action);
        next = nr.saturating_add(1);
        open = true;
    }
    if open {
        push(next, default);
    } else {
        push(0, default);
    }
    let iv = iv.get(..k).unwrap_or_default();
    emit(stmt(LD_W_ABS, DATA_ARCH));
    emit(jump(JMP_JEQ_K, arch.audit(), 1, 0));
    // Its numbers mean other calls: none is let through, each refused as
    // a refused call is (EPERM), so a deny list cannot kill a program that
    // makes a 32-bit call it would not have denied.
    emit(stmt(RET_K, RET_EPERM));
    emit(stmt(LD_W_ABS, DATA_NR));
    if arch == Arch::X86_64 {
        // The x32 ABI's calls have numbers of their own; a deny list that
        // let them through would deny nothing.
        emit(jump(JMP_JGE_K, X32_BIT, 0, 1));
        emit(stmt(RET_K, RET_EPERM));
    }
    tree(iv, emit);
}
