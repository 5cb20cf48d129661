//! The process's entry: C's `main`, which musl's start-up calls, in place
//! of Rust's (`#![no_main]` in main.rs).
//!
//! Rust's runtime start-up does three things before `fn main`, and none
//! fits this binary: it polls fds 0-2 and, for a closed one, opens
//! /dev/null or aborts, which in an initramfs with neither /dev/console
//! nor /dev/null kills PID 1 (a kernel panic) before any of wren's code
//! runs (PID 1 gives itself the console once devtmpfs is up:
//! `boot::mounts::ensure_console_fds`); it ignores SIGPIPE, which every
//! child must then set back before its exec; and it maps an alternate
//! signal stack and installs SIGSEGV and SIGBUS handlers, ten system
//! calls and a page in every exec of the binary, a namespace's reaper at
//! each isolated start among them. What it gave `std::env::args` on musl
//! (argc and argv) is kept here.

use core::ffi::{c_char, c_int, CStr};
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

static ARGC: AtomicUsize = AtomicUsize::new(0);
static ARGV: AtomicPtr<*const c_char> = AtomicPtr::new(core::ptr::null_mut());

/// C's `main`, called once by the C runtime with the process's
/// arguments: the binary's link names it so (`--defsym=main=wren_main`,
/// build.rs), for its bin target only; a test binary linking this library
/// keeps its own `main`.
///
/// # Safety
///
/// `argv` holds `argc` pointers to NUL-terminated strings that stay
/// valid and unchanged for the rest of the process (as the C runtime's
/// do): `args` hands them out as `'static`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wren_main(argc: c_int, argv: *const *const c_char) -> c_int {
    ARGC.store(usize::try_from(argc).unwrap_or(0), Ordering::Relaxed);
    ARGV.store(argv.cast_mut(), Ordering::Relaxed);
    c_int::from(crate::entry::run())
}

/// The process's arguments, as the kernel passed them (argv[0] first).
pub fn args() -> impl Iterator<Item = &'static OsStr> {
    (0..).map_while(|i| arg(i).map(|s| OsStr::from_bytes(s.to_bytes())))
}

/// Argument `i` of the process (argv[0] first), if it has so many.
pub fn arg(i: usize) -> Option<&'static CStr> {
    let argv = ARGV.load(Ordering::Relaxed);
    if argv.is_null() || i >= ARGC.load(Ordering::Relaxed) {
        return None;
    }
    // SAFETY: `argv` is the array the C runtime passed to `main`: `argc`
    // pointers, each to a NUL-terminated string, all alive and never
    // written for the rest of the process; `i < argc`.
    let p = unsafe { *argv.add(i) };
    if p.is_null() {
        return None;
    }
    // SAFETY: as above, `p` is one of those strings.
    Some(unsafe { CStr::from_ptr(p) })
}

unsafe extern "C" {
    /// The C runtime's environment array (the `libc` crate has no binding
    /// for it on musl).
    static environ: *const *const c_char;
}

/// execve this process's own argv from entry `skip_args` on (its first the
/// program), with its own environment past the first `skip_env` entries:
/// the arrays the kernel put on the stack at exec, passed as they are. A
/// namespace's reaper starts its service again so (`spawn::reaper::relaunched`).
/// Returns only on failure, with the errno.
pub fn exec_own(skip_args: usize, skip_env: usize) -> rustix::io::Errno {
    use rustix::io::Errno;
    let argv = ARGV.load(Ordering::Relaxed);
    if argv.is_null() || skip_args >= ARGC.load(Ordering::Relaxed) {
        return Errno::INVAL;
    }
    // SAFETY: `argv` is the C runtime's array of `argc` string pointers
    // followed by a null one, alive for the whole process; `skip_args <
    // argc`, so the result points into it at a non-null entry, and the
    // array from there still ends with the null.
    let args = unsafe { argv.add(skip_args) };
    // SAFETY: libc's `environ` is the null-terminated array the kernel
    // passed (wren never calls setenv or putenv). Walking it stops at its
    // null, so `env` points at an entry or at that null, inside it.
    let env = unsafe {
        let mut env = environ;
        for _ in 0..skip_env {
            if (*env).is_null() {
                break;
            }
            env = env.add(1);
        }
        env
    };
    // SAFETY: both arrays are null-terminated arrays of NUL-terminated
    // strings (above); execve reads them and returns only on failure.
    unsafe { libc::execve(*args, args, env) };
    crate::sys::clone::last_errno()
}
