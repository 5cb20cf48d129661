//! Where wren meets the kernel's raw interfaces, by job: every `unsafe`
//! block of the project lives here, small and with a `// SAFETY:` comment
//! naming the invariant it relies on; the rest of the workspace denies
//! `unsafe_code`. What is exposed is safe. `libc` is used only here, for
//! what neither rustix nor nix wraps.
//!
//! - `child`: a plain child process (what std's `Command` did).
//! - `clock`: the monotonic clock, without std's `Instant`.
//! - `clone`: clone3 into a cgroup and new namespaces, and `_exit`.
//! - `vfork`: a child sharing the caller's memory until it execs.
//! - `slot`: PID 1's children sharing its memory until they exec, each
//!   on stacks mapped at boot, without suspending PID 1.
//! - `exec`: the argv/envp tables and execve.
//! - `fd`: fds kept for the life of the process, and fd renumbering.
//! - `file`: the small one-write / one-buffer file helpers.
//! - `path`: a path as a C string for rustix, made in one place.
//! - `handover`: owning the fds inherited across `initctl reexec`.
//! - `mount`: mount_setattr, a flag on a whole tree of mounts.
//! - `netdev`: bringing a network interface up (ioctl).
//! - `signal`: a child's signal mask and SIGPIPE's action before exec.
//! - `sockopt`: a socket's type and its peer's credentials.
//! - `raw`: system calls without libc (no errno: spawn slots share it).
//! - `sched`: PID 1's scheduling policy (`SCHED_BATCH`).
//! - `seccomp`: a unit's seccomp filter, and its installation.
//! - `stack`: giving back the stack pages boot touched.
//! - `tty`: a terminal's modes (`initctl top`).
//! - `alloc`: the counting allocator.
//! - `unwind`: no stack unwinder in the static `panic = "abort"` binary.
//! - `entry`: C's `main` in place of Rust's start-up, and the arguments.
//! - `errno`: an errno's text without the heap.

#![allow(unsafe_code)]

pub mod alloc;
pub mod child;
pub mod clock;
pub mod clone;
pub mod entry;
pub mod errno;
pub mod exec;
pub mod fd;
pub mod file;
pub mod handover;
pub mod mount;
pub mod netdev;
pub mod passed;
pub mod path;
pub mod raw;
pub mod sched;
pub mod seccomp;
pub mod signal;
pub mod slot;
pub mod sockopt;
pub mod stack;
pub mod tty;
#[cfg(all(panic = "abort", target_env = "musl"))]
pub mod unwind;
pub mod vfork;
pub mod watchdog;
