//! `check`'s warning of a `seccomp` allow list that a dynamically linked
//! program's loader cannot work under: the program's ELF headers, or a
//! script's interpreter's, read on the build host.

use super::check::{is_type, lookup};
use crate::pathname::Show as _;
use crate::unit::UnitDef;
use rustix::fs::FileType;
use std::path::Path;

/// What a dynamically linked program's loader calls before `main` (its
/// libraries opened, read and mapped), which an allow list of `seccomp`
/// without `@basic-io @file-system` refuses: the program then ends with
/// exit 127 and not a word (the loader's message is written with `writev`,
/// refused too). Looked at by `check` only: glibc's and musl's loaders on aarch64 (x86_64's musl opens with `open`,
/// which a list with `@file-system` has beside `openat`).
const LOADER_CALLS: [&str; 6] = ["openat", "read", "close", "mmap", "newfstatat", "pread64"];

/// A warning for a unit whose `seccomp` allow list refuses what its
/// program's loader needs: the program has a `PT_INTERP`, or is a `#!`
/// script whose interpreter has one (the kernel starts that under the
/// filter).
pub(super) fn seccomp_warning(sysroot: &Path, def: &UnitDef) -> Option<String> {
    let sc = def.seccomp.as_deref().filter(|sc| !sc.deny)?;
    let allowed = sc.effective();
    let mut refused = String::new();
    for c in LOADER_CALLS {
        if !wren_core::confine::syscall_index(c).is_some_and(|i| allowed.has(i)) {
            if !refused.is_empty() {
                refused.push_str(", ");
            }
            refused.push_str(c);
        }
    }
    if refused.is_empty() {
        return None;
    }
    let program = def.exec.first()?;
    let mut head = [0u8; 4096];
    let mut path = program.to_string();
    // The program, then the interpreter of a script (one level: the
    // kernel's own limit is four, a script's interpreter being a script
    // is rare).
    for _ in 0..2 {
        let head = program_head(sysroot, def, &path, &mut head)?;
        if has_interpreter(head) {
            let of = match path == *program {
                true => String::new(),
                false => format!(" (the interpreter of `{}`)", Path::new(program).shown()),
            };
            return Some(format!(
                "seccomp: `{}`{of} is dynamically linked and its loader calls {refused}, which the allow list refuses (add @basic-io @file-system, or use @system-service)",
                Path::new(&path).shown(),
            ));
        }
        let line = head.strip_prefix(b"#!")?.split(|&b| b == b'\n').next()?;
        let interp = line
            .split(|&b| b == b' ' || b == b'\t')
            .find(|w| !w.is_empty())?;
        path = std::str::from_utf8(interp).ok()?.to_string();
    }
    None
}

/// The first bytes of the regular file `path` as unit `def` sees it,
/// opened without blocking (a FIFO put there since must not hold `check`).
fn program_head<'b>(
    sysroot: &Path,
    def: &UnitDef,
    path: &str,
    buf: &'b mut [u8],
) -> Option<&'b [u8]> {
    let (meta, found) = lookup(sysroot, def, path).ok()?;
    if !is_type(&meta, FileType::RegularFile) {
        return None;
    }
    let flags = rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::NONBLOCK;
    let f = crate::sys::file::open(&found, flags, 0).ok()?;
    let n = rustix::io::read(&f, &mut *buf).ok()?;
    buf.get(..n)
}

/// An ELF file (64-bit, either byte order) whose program headers within
/// `head` name an interpreter (`PT_INTERP`): one the kernel does not
/// start alone.
pub(super) fn has_interpreter(head: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    let (Some(b"\x7fELF"), Some(&2)) = (head.get(..4), head.get(4)) else {
        return false;
    };
    let big = head.get(5) == Some(&2);
    let word = |at: usize, len: usize| -> Option<u64> {
        let b = head.get(at..at.checked_add(len)?)?;
        Some(b.iter().enumerate().fold(0u64, |v, (i, &x)| {
            let shift = if big { len - 1 - i } else { i } * 8;
            v | u64::from(x) << shift
        }))
    };
    let (Some(off), Some(size), Some(count)) = (word(32, 8), word(54, 2), word(56, 2)) else {
        return false;
    };
    (0..count).any(|k| {
        let at = k.checked_mul(size).and_then(|d| d.checked_add(off));
        at.and_then(|a| usize::try_from(a).ok())
            .and_then(|a| word(a, 4))
            .is_some_and(|t| t == u64::from(PT_INTERP))
    })
}
