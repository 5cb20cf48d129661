//! A path handed to rustix as a `&CStr`, made by one function. rustix
//! takes a path as any `Arg` (`&str`, `&Path`, …) and copies it into a C
//! string with code compiled into each of its functions for each path
//! type it is given (a 256-byte stack buffer, the NUL check, a heap copy
//! for longer paths: 100-180 bytes each, issue 10); a `&CStr` it takes as
//! it is. `CPath::of` is that copy, compiled once, doing what rustix does:
//! a path of fewer than 256 bytes in the stack, a longer one on the heap,
//! `Errno::INVAL` for a NUL inside it.

use core::ffi::CStr;
use core::mem::MaybeUninit;
use rustix::io::Errno;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// rustix's `SMALL_PATH_BUFFER_SIZE`: a path this long or longer (its NUL
/// would not fit) goes to the heap.
const SMALL: usize = 256;

/// Room for one path as a C string: declared by the caller, filled by
/// `of`, and the `&CStr` borrowed from it.
pub struct CPath {
    small: MaybeUninit<[u8; SMALL]>,
    heap: Option<CString>,
}

impl Default for CPath {
    fn default() -> Self {
        Self::new()
    }
}

impl CPath {
    /// Empty room.
    pub const fn new() -> Self {
        Self {
            small: MaybeUninit::uninit(),
            heap: None,
        }
    }

    /// `path` as a C string in this room, as rustix makes it: `INVAL` for
    /// a NUL inside it.
    #[inline(never)]
    pub fn of(&mut self, path: &[u8]) -> Result<&CStr, Errno> {
        if path.len() >= SMALL {
            return Ok(self
                .heap
                .insert(CString::new(path).map_err(|_| Errno::INVAL)?));
        }
        let buf = self.small.as_mut_ptr().cast::<u8>();
        // SAFETY: `path.len() < SMALL`: `buf` has room for its bytes and
        // the NUL after them; `path` is a borrow, not in `self.small`. The
        // slice covers exactly the `len + 1` bytes just written, and lives
        // no longer than the `&mut self` it is returned under, so nothing
        // writes `small` while it is read.
        let bytes = unsafe {
            core::ptr::copy_nonoverlapping(path.as_ptr(), buf, path.len());
            buf.add(path.len()).write(0);
            core::slice::from_raw_parts(buf, path.len() + 1)
        };
        CStr::from_bytes_with_nul(bytes).map_err(|_| Errno::INVAL)
    }

    /// `of` for a `str`.
    pub fn of_str(&mut self, path: &str) -> Result<&CStr, Errno> {
        self.of(path.as_bytes())
    }

    /// `of` for a `Path`.
    pub fn of_path(&mut self, path: &Path) -> Result<&CStr, Errno> {
        self.of(path.as_os_str().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_paths_as_rustix_makes_them() {
        let mut room = CPath::new();
        assert_eq!(room.of(b"/run/wren").unwrap(), c"/run/wren");
        assert_eq!(room.of(b"").unwrap(), c"");
        for len in [255, 256, 4000] {
            let long = vec![b'a'; len];
            let mut room = CPath::new();
            assert_eq!(room.of(&long).unwrap().to_bytes(), &long[..]);
        }
        assert_eq!(room.of(b"a\0b"), Err(Errno::INVAL));
        let mut long = vec![b'a'; 300];
        long[10] = 0;
        assert_eq!(CPath::new().of(&long), Err(Errno::INVAL));
        assert_eq!(room.of_path(Path::new("/x/y")).unwrap(), c"/x/y");
    }
}
