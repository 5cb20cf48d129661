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
//!     jeq n1, MATCH                  up to 250 compares per block; a
//!     ...                            jump reaches 255 ahead at most
//!     ja  next block
//!   MATCH: ret ACTION
//!     ...
//!     ret DEFAULT
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

/// Compares per block, so every jump fits the 8-bit offset.
const BLOCK: usize = 250;

/// Most instructions a filter can need: every name, a jump and a return
/// per block, and the fixed head and tail (the kernel allows 4096).
pub const MAX_INSNS: usize = super::syscalls::COUNT + 2 * (super::syscalls::COUNT / BLOCK + 1) + 8;

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

/// The filter for `set` on `arch`: calls in the set get `action`, all
/// others `default`. Names without a number on `arch` are left out.
/// `emit` receives the instructions in order (at most `MAX_INSNS`).
pub fn build(arch: Arch, set: &SyscallSet, action: u32, default: u32, emit: &mut dyn FnMut(Insn)) {
    let col = arch.column();
    let numbers = || {
        NUMBERS
            .iter()
            .enumerate()
            .filter(|(i, _)| set.has(*i))
            .filter_map(move |(_, nrs)| nrs.get(col).copied())
            .filter(|nr| *nr != NONE)
    };
    let total = numbers().count();
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
    let mut left = total;
    let mut all = numbers();
    while left > 0 {
        let n = left.min(BLOCK);
        for i in 0..n {
            let Some(nr) = all.next() else { break };
            // Past the other compares of the block and its `ja`.
            let to_ret = u8::try_from(n - i).unwrap_or(u8::MAX);
            emit(jump(JMP_JEQ_K, u32::from(nr), to_ret, 0));
        }
        emit(stmt(JMP_JA, 1));
        emit(stmt(RET_K, action));
        left -= n;
    }
    emit(stmt(RET_K, default));
}
