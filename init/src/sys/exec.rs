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
        let mut at = 0;
        // It fits: `push` keeps one slot of `P` free.
        let _ = self.append_to(&mut ptrs, &mut at);
        ptrs
    }

    /// The strings' pointers into `out` from `*at` on, one slot of `out`
    /// left null after them; None, `out` untouched, if they do not fit.
    fn append_to(&self, out: &mut [*const c_char], at: &mut usize) -> Option<()> {
        append_pointers(&self.bytes, self.starts.get(..self.n)?, out, at)
    }
}

/// `CStrings::append_to` on the table's storage.
#[inline(never)]
fn append_pointers(
    bytes: &[u8],
    starts: &[usize],
    out: &mut [*const c_char],
    at: &mut usize,
) -> Option<()> {
    let end = at.checked_add(starts.len())?;
    if end >= out.len() {
        return None;
    }
    let base = bytes.as_ptr();
    for (p, &start) in out.get_mut(*at..end)?.iter_mut().zip(starts) {
        // `start` came from `push`, so it is inside `bytes`.
        *p = base.wrapping_add(start).cast();
    }
    *at = end;
    Some(())
}

/// Pointers of a joined table (`execveat_fd_joined`): up to 63 strings.
const JOINED: usize = 64;

/// execve the program `argv` names first, with `argv` and `envp`. Returns
/// only on failure, with the errno.
pub fn execve<const AB: usize, const AP: usize, const EB: usize, const EP: usize>(
    argv: &CStrings<AB, AP>,
    envp: &CStrings<EB, EP>,
) -> Errno {
    if argv.is_empty() {
        return Errno::INVAL;
    }
    exec_raw(None, &argv.pointers(), &envp.pointers())
}

/// execveat(2) of the file `exe` is open on (AT_EMPTY_PATH): runs that
/// very file whatever the caller's root or mount namespace now shows at
/// its path. Its argv is `argv.0`'s strings then `argv.1`'s, its
/// environment `env.0`'s then `env.1`'s (a namespace's reaper with its
/// service's after its own: `spawn::reaper`). Returns only on failure.
pub fn execveat_fd_joined<
    const A: usize,
    const B: usize,
    const C: usize,
    const D: usize,
    const E: usize,
    const F: usize,
    const G: usize,
    const H: usize,
>(
    exe: rustix::fd::BorrowedFd<'_>,
    argv: (&CStrings<A, B>, Option<&CStrings<C, D>>),
    env: (&CStrings<E, F>, Option<&CStrings<G, H>>),
) -> Errno {
    let mut args = [core::ptr::null(); JOINED];
    let mut envp = [core::ptr::null(); JOINED];
    let (mut a, mut e) = (0, 0);
    let joined = argv.0.append_to(&mut args, &mut a).is_some()
        && argv
            .1
            .is_none_or(|t| t.append_to(&mut args, &mut a).is_some())
        && env.0.append_to(&mut envp, &mut e).is_some()
        && env
            .1
            .is_none_or(|t| t.append_to(&mut envp, &mut e).is_some());
    if !joined || a == 0 {
        return Errno::TOOBIG;
    }
    exec_raw(Some(exe), &args, &envp)
}

/// execveat of `exe` if given, else execve of `args`' first string.
/// `args` and `env`: null-terminated arrays of pointers into tables the
/// caller borrows (`CStrings::append_to`), `args`' first non-null.
fn exec_raw(
    exe: Option<rustix::fd::BorrowedFd<'_>>,
    args: &[*const c_char],
    env: &[*const c_char],
) -> Errno {
    use rustix::fd::AsRawFd;
    // Raw system calls (`raw`): on a spawn slot, libc's execve would
    // write PID 1's errno when it fails.
    let r = match exe {
        None => {
            let path = args.first().copied().unwrap_or(core::ptr::null());
            // SAFETY: every pointer of `args` and `env` points into the bytes
            // of a table borrowed by the caller for this call, at a string
            // `push` ended with a NUL; both arrays end with a null pointer, as
            // `append_to` leaves one; `path` is the first of `args`,
            // non-null as the caller checked. execve reads them and returns
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
        let no: Option<&CStrings<8, 2>> = None;
        assert_eq!(
            execveat_fd_joined(dir.as_fd(), (&argv, no), (&none, no)),
            Errno::ACCESS
        );
        // The tables joined: too many strings for one array is refused.
        let mut many: CStrings<256, 64> = CStrings::new();
        for _ in 0..40 {
            many.push(&["x"]).unwrap();
        }
        assert_eq!(
            execveat_fd_joined(dir.as_fd(), (&many, Some(&many)), (&none, no)),
            Errno::TOOBIG
        );
        #[cfg(any(target_arch = "aarch64", target_arch = "x86_64"))]
        assert_eq!(crate::sys::raw::errno::get(), 0);
    }
}
