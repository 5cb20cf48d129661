//! An errno's text, as std prints an OS error, without the heap: std's
//! `io::Error` (and rustix's `Errno`, which prints through it) puts
//! strerror's text in a `String` for every message. A unit whose starts
//! keep failing allocated at each retry in the loop's steady state, and
//! where memory is short that allocation failing aborts PID 1.

use core::fmt;

/// `DESCRIPTION (os error N)`, the text std gives the same errno.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Os(pub i32);

impl From<rustix::io::Errno> for Os {
    fn from(e: rustix::io::Errno) -> Os {
        Os(e.raw_os_error())
    }
}

impl fmt::Display for Os {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 128];
        // Its answer is what it wrote, as std takes it (glibc writes
        // "Unknown error N" and returns EINVAL for a number it does not
        // know; musl writes "No error information").
        // SAFETY: the XSI strerror_r (musl's; glibc's `__xpg_strerror_r`,
        // which the libc crate links for it) writes at most `buf.len()`
        // bytes, its NUL included, into `buf`, which outlives the call.
        let _ = unsafe { libc::strerror_r(self.0, buf.as_mut_ptr().cast(), buf.len()) };
        let len = buf.iter().position(|&b| b == 0).unwrap_or(0);
        let text = core::str::from_utf8(buf.get(..len).unwrap_or_default()).unwrap_or("");
        let text = if text.is_empty() {
            "Unknown error"
        } else {
            text
        };
        write!(f, "{text} (os error {})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::Os;

    /// The same text as std's, and no allocation for it.
    #[test]
    fn an_errno_reads_as_std_prints_it_without_the_heap() {
        for n in [1, 2, 12, 13, 17, 28, 110, 9999] {
            let std_text = std::io::Error::from_raw_os_error(n).to_string();
            let mut s: heapless::String<160> = heapless::String::new();
            let before = crate::sys::alloc::thread_count();
            core::fmt::write(&mut s, format_args!("{}", Os(n))).unwrap();
            assert_eq!(crate::sys::alloc::thread_count(), before, "errno {n}");
            assert_eq!(s.as_str(), std_text, "errno {n}");
        }
        let e = Os::from(rustix::io::Errno::NOENT);
        assert_eq!(e, Os(2));
    }
}
