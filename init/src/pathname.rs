//! The few questions wren asks of a path's text (its file name, its
//! parent, whether two name the same place), answered on its bytes.
//!
//! std's answers go through `Components`, whose iterator, comparison
//! and `as_path` cost 3.8 KB of the 400 KiB budget (issue 10) for what is
//! here a split on `/`. Paths are Unix paths: no prefixes. As in std, a
//! `.` component and repeated or trailing slashes change nothing, and
//! `..` is kept as written (never resolved through a link). Unlike std,
//! a leading `.` is no component either: `check --root ./img
//! img/etc/units/x.unit` finds the file inside the image, where std's
//! `strip_prefix` missed it and the file was read through the build
//! host's links.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// A path in a message, as `Path::display` shows it: its bytes, each
/// sequence that is not UTF-8 as one U+FFFD. Written here on
/// `Utf8Chunks` (linked anyway, for `String::from_utf8_lossy`): std's
/// display goes through core's `ByteStr` display, 456 bytes for the
/// width and alignment no message gives a path.
pub struct Shown<'a>(&'a Path);

/// A control character shows as `?`: a path goes into messages read on
/// a terminal (the console, `initctl check`), where an escape sequence or
/// a line break in a file name would act or forge a line.
impl std::fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for chunk in self.0.as_os_str().as_bytes().utf8_chunks() {
            crate::kmsg::write_no_control(f, chunk.valid())?;
            if !chunk.invalid().is_empty() {
                f.write_str("\u{FFFD}")?;
            }
        }
        Ok(())
    }
}

/// `path.shown()` where std has `path.display()`.
pub trait Show {
    fn shown(&self) -> Shown<'_>;
}

impl Show for Path {
    fn shown(&self) -> Shown<'_> {
        Shown(self)
    }
}

/// The components of `path` with the offset where each ends: empty and
/// `.` components left out.
fn parts(path: &Path) -> impl DoubleEndedIterator<Item = (&[u8], usize)> {
    let bytes = path.as_os_str().as_bytes();
    let base = bytes.as_ptr() as usize;
    bytes
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .map(move |c| (c, c.as_ptr() as usize - base + c.len()))
}

fn absolute(path: &Path) -> bool {
    path.as_os_str().as_bytes().first() == Some(&b'/')
}

fn from_bytes(bytes: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(bytes))
}

/// The last component, unless that is `..` (as `Path::file_name`).
pub fn file_name(path: &Path) -> Option<&OsStr> {
    match parts(path).next_back() {
        Some((c, _)) if c != b".." => Some(OsStr::from_bytes(c)),
        _ => None,
    }
}

/// `path` without its last component: `/` for `/a`, the empty path for
/// `a`, None for `/` and the empty path (as `Path::parent`).
pub fn parent(path: &Path) -> Option<&Path> {
    let bytes = path.as_os_str().as_bytes();
    let mut back = parts(path).rev();
    back.next()?;
    Some(match back.next() {
        Some((_, end)) => from_bytes(bytes.get(..end).unwrap_or_default()),
        None if absolute(path) => Path::new("/"),
        None => Path::new(""),
    })
}

/// Whether `a` and `b` name the same place, as `Path`'s `==` decides it
/// (by components, without asking the file system).
pub fn same(a: &Path, b: &Path) -> bool {
    absolute(a) == absolute(b) && parts(a).map(|p| p.0).eq(parts(b).map(|p| p.0))
}

/// What follows `base` in `path`, when `path` starts with every component
/// of `base` (as `Path::strip_prefix`).
pub fn strip_prefix<'a>(path: &'a Path, base: &Path) -> Option<&'a Path> {
    if base.as_os_str().is_empty() {
        return Some(path);
    }
    if absolute(path) != absolute(base) {
        return None;
    }
    let bytes = path.as_os_str().as_bytes();
    let mut ours = parts(path);
    let mut end = 0;
    for (want, _) in parts(base) {
        let (have, at) = ours.next()?;
        if have != want {
            return None;
        }
        end = at;
    }
    let mut rest = bytes.get(end..).unwrap_or_default();
    // The separators and `.` components between `base` and the rest.
    loop {
        rest = match rest {
            [b'/', r @ ..] | [b'.', b'/', r @ ..] => r,
            [b'.'] => &[],
            _ => break,
        };
    }
    Some(from_bytes(rest))
}

/// Paths of one directory in the order of `Path`'s comparison, by their
/// bytes: no split into components at each comparison.
pub fn sort_in_dir(paths: &mut [std::path::PathBuf]) {
    wren_core::sort::sort_by(paths, |a, b| {
        a.as_os_str().as_bytes() < b.as_os_str().as_bytes()
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every answer as std gives it, on the paths wren meets and the odd
    /// ones (slashes doubled and trailing, `.`, `..`, empty).
    const PATHS: &[&str] = &[
        "",
        "/",
        "//",
        ".",
        "..",
        "a",
        "/a",
        "a/",
        "a/b",
        "/a/b",
        "/a/b/",
        "/a//b",
        "a/./b",
        "a/b/.",
        "/a/b/..",
        "./a",
        "/etc/units/x.unit",
        "etc/units//x.unit/",
        "/a/../b",
    ];

    #[test]
    fn file_name_and_parent_answer_as_std() {
        for p in PATHS {
            let p = Path::new(p);
            assert_eq!(file_name(p), p.file_name(), "file_name of {p:?}");
            // std keeps a leading `.` as a component (the parent of `./a`
            // is `.`, ours the empty path): the one place they differ.
            if !p.starts_with(".") {
                assert_eq!(parent(p), p.parent(), "parent of {p:?}");
            }
        }
        assert_eq!(parent(Path::new("/a//b/")), Some(Path::new("/a")));
        assert_eq!(parent(Path::new("a/b")), Some(Path::new("a")));
    }

    #[test]
    fn same_and_strip_prefix_answer_as_std() {
        for a in PATHS {
            for b in PATHS {
                let (a, b) = (Path::new(a), Path::new(b));
                if a.starts_with(".") || b.starts_with(".") {
                    continue; // std keeps a leading `.`; see above
                }
                assert_eq!(same(a, b), a == b, "{a:?} == {b:?}");
                assert_eq!(strip_prefix(a, b), a.strip_prefix(b).ok(), "{a:?} - {b:?}");
            }
        }
        let image = Path::new("/tmp/img/usr/bin/x");
        assert_eq!(
            strip_prefix(image, Path::new("/tmp/img/")),
            Some(Path::new("usr/bin/x"))
        );
        assert_eq!(strip_prefix(image, Path::new("/tmp/im")), None);
        // A leading `.` is no component (std's `strip_prefix` gives Err).
        let unit = Path::new("./img/etc/units/x.unit");
        assert_eq!(
            strip_prefix(unit, Path::new("img")),
            Some(Path::new("etc/units/x.unit"))
        );
        assert_eq!(
            strip_prefix(Path::new("img/etc"), Path::new("./img/")),
            Some(Path::new("etc"))
        );
        assert!(same(Path::new("./img"), Path::new("img/.")));
    }

    #[test]
    fn a_path_is_shown_as_std_displays_it() {
        for bytes in [
            &b"/etc/units/a.unit"[..],
            b"/tmp/\xff\xfeb\xe2\x82",
            b"\xc3",
            b"",
        ] {
            let p = Path::new(OsStr::from_bytes(bytes));
            assert_eq!(p.shown().to_string(), p.display().to_string());
        }
    }
}
