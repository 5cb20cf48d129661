//! execve with its argument tables: NUL-terminated strings in fixed
//! storage, turned into the null-terminated pointer arrays execve wants
//! only at the call, so no pointer ever outlives the strings it points to.

use core::ffi::{c_char, CStr};
use rustix::io::Errno;

/// Up to `P - 1` NUL-terminated strings in `B` bytes (one pointer slot is
/// kept for the terminating null).
pub struct CStrings<const B: usize, const P: usize> {
    bytes: [u8; B],
    used: usize,
    /// Offset in `bytes` of each string's first byte.
    starts: [usize; P],
    n: usize,
}

impl<const B: usize, const P: usize> Default for CStrings<B, P> {
    fn default() -> Self {
        Self::new()
    }
}

/// `CStrings::push` on the table's storage: `bytes` and `used` (`B`),
/// `starts` and `n` (`P`).
#[inline(never)]
fn push_in(
    bytes: &mut [u8],
    starts: &mut [usize],
    used: &mut usize,
    n: &mut usize,
    parts: &[&str],
) -> Option<()> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    // Keep one pointer slot for the terminating null.
    if *n + 1 >= starts.len() || *used + len + 1 > bytes.len() {
        return None;
    }
    let start = *used;
    let mut end = start;
    for p in parts {
        let dst = bytes.get_mut(end..end + p.len())?;
        dst.copy_from_slice(p.as_bytes());
        end += p.len();
    }
    *bytes.get_mut(end)? = 0;
    *starts.get_mut(*n)? = start;
    *used = end + 1;
    *n += 1;
    Some(())
}

impl<const B: usize, const P: usize> CStrings<B, P> {
    pub const fn new() -> Self {
        CStrings {
            bytes: [0; B],
            used: 0,
            starts: [0; P],
            n: 0,
        }
    }

    /// Append `parts` concatenated as one C string; None, and nothing
    /// appended, when it does not fit.
    pub fn push(&mut self, parts: &[&str]) -> Option<()> {
        // One copy of the work for every table size (`push_in`), not one
        // per `B` and `P`, inlined at each caller.
        push_in(
            &mut self.bytes,
            &mut self.starts,
            &mut self.used,
            &mut self.n,
            parts,
        )
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The strings, in order.
    pub fn iter(&self) -> impl Iterator<Item = &CStr> {
        self.starts
            .iter()
            .take(self.n)
            .filter_map(|&s| CStr::from_bytes_until_nul(self.bytes.get(s..self.used)?).ok())
    }

    /// Is there an entry `key=...`?
    pub fn has_key(&self, key: &str) -> bool {
        self.iter().any(|s| {
            s.to_bytes()
                .strip_prefix(key.as_bytes())
                .is_some_and(|rest| rest.first() == Some(&b'='))
        })
    }

    /// The null-terminated pointer array, valid while `self` is borrowed.
    fn pointers(&self) -> [*const c_char; P] {
        let mut ptrs = [core::ptr::null(); P];
        let base = self.bytes.as_ptr();
        for (p, &start) in ptrs.iter_mut().zip(self.starts.iter().take(self.n)) {
            // `start` came from `push`, so it is inside `bytes`.
            *p = base.wrapping_add(start).cast();
        }
        ptrs
    }
}

/// execve the program `argv` names first, with `argv` and `envp`. Returns
/// only on failure, with the errno.
pub fn execve<const AB: usize, const AP: usize, const EB: usize, const EP: usize>(
    argv: &CStrings<AB, AP>,
    envp: &CStrings<EB, EP>,
) -> Errno {
    exec(None, argv, envp)
}

/// execveat(2) of the file `exe` is open on (AT_EMPTY_PATH), with `argv`
/// and `envp`: runs that very file whatever the caller's root or mount
/// namespace now shows at its path. Returns only on failure.
pub fn execveat_fd<const AB: usize, const AP: usize, const EB: usize, const EP: usize>(
    exe: rustix::fd::BorrowedFd<'_>,
    argv: &CStrings<AB, AP>,
    envp: &CStrings<EB, EP>,
) -> Errno {
    exec(Some(exe), argv, envp)
}

/// `execveat_fd` with `exe`, else `execve` of `argv`'s first string.
fn exec<const AB: usize, const AP: usize, const EB: usize, const EP: usize>(
    exe: Option<rustix::fd::BorrowedFd<'_>>,
    argv: &CStrings<AB, AP>,
    envp: &CStrings<EB, EP>,
) -> Errno {
    use rustix::fd::AsRawFd;
    if argv.is_empty() {
        return Errno::INVAL;
    }
    let args = argv.pointers();
    let env = envp.pointers();
    // Raw system calls (`raw`): on a spawn slot, libc's execve would
    // write PID 1's errno when it fails.
    let r = match exe {
        None => {
            let path = args.first().copied().unwrap_or(core::ptr::null());
            // SAFETY: every pointer of `args` and `env` points into the bytes
            // of `argv` or `envp`, borrowed for this call, at a string `push`
            // ended with a NUL; both arrays end with a null pointer, as `push`
            // keeps the last slot free; `path` is the first of `args`,
            // non-null as `argv` is not empty. execve reads them and returns
            // only on failure.
            unsafe {
                super::raw::syscall6(
                    libc::SYS_execve,
                    [
                        path as usize,
                        args.as_ptr() as usize,
                        env.as_ptr() as usize,
                        0,
                        0,
                        0,
                    ],
                )
            }
        }
        Some(fd) => {
            // SAFETY: `fd` is an open fd borrowed for the call; the path is a
            // static empty C string; `args` and `env` are as for execve
            // above. The kernel only reads them; it returns only on failure.
            unsafe {
                super::raw::syscall6(
                    libc::SYS_execveat,
                    [
                        fd.as_raw_fd() as usize,
                        c"".as_ptr() as usize,
                        args.as_ptr() as usize,
                        env.as_ptr() as usize,
                        libc::AT_EMPTY_PATH as usize,
                        0,
                    ],
                )
            }
        }
    };
    match r {
        Err(e) => e,
        // execve returns only on failure.
        Ok(_) => Errno::INVAL,
    }
}

/// execve `argv` with this process's environment (libc's `environ`), as
/// `execv(3)`. Returns only on failure, with the errno.
pub fn execv<const B: usize, const P: usize>(argv: &CStrings<B, P>) -> Errno {
    if argv.is_empty() {
        return Errno::INVAL;
    }
    let args = argv.pointers();
    let path = args.first().copied().unwrap_or(core::ptr::null());
    // SAFETY: as for `execve`: the pointers point at NUL-terminated strings
    // of `argv`, borrowed for the call, the array ends with a null pointer
    // and `path` is its non-null first entry. execv reads libc's own
    // `environ` and makes no allocation (musl: one execve system call).
    unsafe { libc::execv(path, args.as_ptr()) };
    super::clone::last_errno()
}

/// The value of `name` in this process's environment, read in place
/// (no allocation, unlike `std::env::var_os`).
pub fn env_var(name: &CStr) -> Option<&'static CStr> {
    // SAFETY: `name` is a NUL-terminated string borrowed for the call;
    // getenv only reads libc's `environ`.
    let p = unsafe { libc::getenv(name.as_ptr()) };
    if p.is_null() {
        return None;
    }
    // SAFETY: a non-null result points at a NUL-terminated string of the
    // environment block the kernel put on the stack at exec, which lives as
    // long as the process; wren never calls setenv or putenv, so nothing
    // moves or frees it.
    Some(unsafe { CStr::from_ptr(p) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::fd::AsFd;

    #[test]
    fn tables_build_null_terminated_arrays() {
        let mut t: CStrings<32, 4> = CStrings::new();
        t.push(&["/bin/sh"]).unwrap();
        t.push(&["A", "=", "b"]).unwrap();
        assert!(t.has_key("A"));
        assert!(!t.has_key("B"));
        assert!(!t.has_key(""));
        let p = t.pointers();
        // SAFETY: (test) reading back the table just built, still borrowed.
        unsafe {
            assert_eq!(CStr::from_ptr(p[0]).to_str().unwrap(), "/bin/sh");
            assert_eq!(CStr::from_ptr(p[1]).to_str().unwrap(), "A=b");
        }
        assert!(p[2].is_null());
        let all: Vec<&CStr> = t.iter().collect();
        assert_eq!(all, [c"/bin/sh", c"A=b"]);
    }

    #[test]
    fn tables_refuse_overflow_instead_of_truncating() {
        let mut t: CStrings<8, 3> = CStrings::new();
        assert!(t.push(&["123456789"]).is_none());
        t.push(&["a"]).unwrap();
        t.push(&["b"]).unwrap();
        // Two strings use every pointer slot but the terminator.
        assert!(t.push(&["c"]).is_none());
        let all: Vec<&CStr> = t.iter().collect();
        assert_eq!(all, [c"a", c"b"]);
    }

    #[test]
    fn an_empty_argv_is_refused_before_execve() {
        let none: CStrings<8, 2> = CStrings::new();
        assert_eq!(execve(&none, &none), Errno::INVAL);
    }

    /// A child on a spawn slot shares PID 1's errno: a failed exec reports
    /// its error as a value and leaves errno as it was.
    #[test]
    fn a_failed_exec_returns_its_errno_and_leaves_errno_alone() {
        let mut argv: CStrings<64, 2> = CStrings::new();
        argv.push(&["/nonexistent/wren-test"]).unwrap();
        let none: CStrings<8, 2> = CStrings::new();
        crate::sys::raw::errno::set(0);
        assert_eq!(execve(&argv, &none), Errno::NOENT);
        let dir =
            rustix::fs::open("/", rustix::fs::OFlags::PATH, rustix::fs::Mode::empty()).unwrap();
        assert_eq!(execveat_fd(dir.as_fd(), &argv, &none), Errno::ACCESS);
        #[cfg(any(target_arch = "aarch64", target_arch = "x86_64"))]
        assert_eq!(crate::sys::raw::errno::get(), 0);
    }
}
