//! Installing a seccomp filter (seccomp(2), `SECCOMP_SET_MODE_FILTER`),
//! which neither rustix nor nix wraps. The program is built by
//! `wren_core::confine` when a unit is loaded and copied here into the
//! kernel's `struct sock_filter` layout once; installing it at a start is
//! one system call on memory PID 1 already holds.

use crate::unit::Seccomp;
use rustix::io::Errno;
use wren_core::confine::bpf::{Arch, MAX_INSNS};

/// A unit's filter, ready for the kernel.
pub struct Program {
    insns: Box<[libc::sock_filter]>,
    /// What it was built from, so a reload rebuilds only a changed one.
    pub spec: Seccomp,
}

impl Program {
    /// Build `spec`'s filter for the architecture wren runs on. None on an
    /// architecture wren has no system call table for.
    pub fn build(spec: &Seccomp) -> Option<Program> {
        let arch = Arch::native()?;
        let mut insns = Vec::with_capacity(MAX_INSNS);
        spec.program(arch, &mut |i| {
            insns.push(libc::sock_filter {
                code: i.code,
                jt: i.jt,
                jf: i.jf,
                k: i.k,
            })
        });
        Some(Program {
            insns: insns.into_boxed_slice(),
            spec: *spec,
        })
    }

    pub fn len(&self) -> usize {
        self.insns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.insns.is_empty()
    }
}

/// Install `prog` on the calling thread. The caller has set
/// no_new_privs (or holds CAP_SYS_ADMIN); from here on every system call,
/// execve's included, passes the filter.
pub fn install(prog: &Program) -> Result<(), Errno> {
    let len = u16::try_from(prog.insns.len()).map_err(|_| Errno::INVAL)?;
    let fprog = libc::sock_fprog {
        len,
        // The kernel only reads through this pointer.
        filter: prog.insns.as_ptr().cast_mut(),
    };
    // SAFETY: `fprog` points at `len` initialised sock_filter entries
    // owned by `prog`, which outlives the call; the kernel copies the
    // program before seccomp returns and keeps no pointer into our memory.
    // A raw call (`raw`): the installing child may share PID 1's errno.
    unsafe {
        super::raw::syscall6(
            libc::SYS_seccomp,
            [
                libc::SECCOMP_SET_MODE_FILTER as usize,
                0,
                &fprog as *const libc::sock_fprog as usize,
                0,
                0,
                0,
            ],
        )
    }
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The installing child may share PID 1's errno: a refused program is
    /// an error value and errno stays as it was. An empty program is
    /// refused before anything is installed.
    #[test]
    fn a_refused_program_is_an_error_value_and_errno_stays() {
        let empty = Program {
            insns: Box::new([]),
            spec: Seccomp::default(),
        };
        crate::sys::raw::errno::set(0);
        assert_eq!(install(&empty), Err(Errno::INVAL));
        #[cfg(any(target_arch = "aarch64", target_arch = "x86_64"))]
        assert_eq!(crate::sys::raw::errno::get(), 0);
    }
}
