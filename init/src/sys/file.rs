//! Small files read and written whole, without allocating: kernel
//! interface files (cgroupfs, /proc/sys) take each write(2) as one value.
//! `dir` is a directory fd (`rustix::fs::CWD` for a plain path), passed
//! on as a `BorrowedFd` (`as_fd`): the work, and rustix's `openat` under
//! it, is then compiled once, not once for each kind of fd the callers
//! hold (`&OwnedFd`, `BorrowedFd`, `&File`).
//!
//! A fixed path handed to rustix is a `&CStr` (`c"cgroup.kill"`) where
//! that call would be the only one of its function with a `&str`: rustix
//! copies a `&str` into a C string with code compiled into each of its
//! functions for each path type (100 bytes and more each, issue 10).

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;
use std::path::Path;

/// openat(2) of `path` under `dir`. rustix's `openat` is generic over the
/// path's and the fd's types, with a copy of its path conversion for each
/// pair its callers hold (three of them, 500 bytes, issue 10); through
/// here it is compiled once.
pub fn openat(
    dir: impl AsFd,
    path: impl AsRef<Path>,
    flags: OFlags,
    mode: Mode,
) -> Result<OwnedFd, Errno> {
    openat_in(dir.as_fd(), path.as_ref(), flags, mode)
}

/// `openat`'s one copy.
fn openat_in(
    dir: BorrowedFd<'_>,
    path: &Path,
    flags: OFlags,
    mode: Mode,
) -> Result<OwnedFd, Errno> {
    rustix::fs::openat(dir, super::path::CPath::new().of_path(path)?, flags, mode)
}

/// unlinkat(2) of `path` under `dir`, compiled once as `openat` is.
pub fn unlinkat(dir: impl AsFd, path: impl AsRef<Path>, flags: AtFlags) -> Result<(), Errno> {
    unlinkat_in(dir.as_fd(), path.as_ref(), flags)
}

/// `unlinkat`'s one copy.
fn unlinkat_in(dir: BorrowedFd<'_>, path: &Path, flags: AtFlags) -> Result<(), Errno> {
    rustix::fs::unlinkat(dir, super::path::CPath::new().of_path(path)?, flags)
}

/// Write `value` to `path` under `dir` in one write(2). O_TRUNC is what
/// `echo > file` does: kernel files ignore it, and plain files (test
/// fixtures) then hold exactly the last value.
pub fn write_at<Fd: AsFd>(dir: Fd, path: &str, value: &[u8]) -> Result<(), Errno> {
    write_in(dir.as_fd(), path, value)
}

/// `write_at` on the directory's fd: one copy of it, not one for every
/// kind of fd its callers hold.
fn write_in(dir: BorrowedFd<'_>, path: &str, value: &[u8]) -> Result<(), Errno> {
    let fd = openat(
        dir,
        path,
        OFlags::WRONLY | OFlags::TRUNC | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let n = rustix::io::write(&fd, value)?;
    if n != value.len() {
        // A kernel file takes the whole value or fails; a short write means
        // something else is there.
        return Err(Errno::IO);
    }
    Ok(())
}

/// All of `f` appended to `out`, in chunks: std's `read_to_end`'s work
/// with one loop of our own (its own, and `fs::read`'s, are 300-odd
/// bytes each beside this one).
pub fn read_to_end(mut f: std::fs::File, out: &mut Vec<u8>) -> std::io::Result<()> {
    use std::io::Read;
    const CHUNK: usize = 64 * 1024;
    loop {
        let len = out.len();
        // Asked for, not taken: a failed allocation is an error (the new
        // PID 1 reading a large state then adopts), not an abort, nor a
        // draw on PID 1's reserve.
        if crate::sys::alloc::reserve::optional(|| out.try_reserve(CHUNK)).is_err() {
            return Err(std::io::ErrorKind::OutOfMemory.into());
        }
        out.resize(len.saturating_add(CHUNK), 0);
        let got = f.read(out.get_mut(len..).unwrap_or_default());
        out.truncate(len.saturating_add(*got.as_ref().unwrap_or(&0)));
        match got {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) if crate::sys::file::is_errno(&e, rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
}

/// open(2) of `path`, close-on-exec, as a `File`: std's `File::open` and
/// `OpenOptions` check their options into an `io::Error` of a message,
/// which alone links `&str`'s `Debug` with its Unicode tables (2 KB
/// and more of the 400 KiB budget, issue 10).
pub fn open(path: &std::path::Path, flags: OFlags, mode: u32) -> std::io::Result<std::fs::File> {
    let fd = openat(
        rustix::fs::CWD,
        path,
        flags | OFlags::CLOEXEC,
        Mode::from_raw_mode(mode),
    )?;
    Ok(std::fs::File::from(fd))
}

/// The file at `path` appended to `out` (`open` and `read_to_end`).
pub fn read(path: &std::path::Path, out: &mut Vec<u8>) -> std::io::Result<()> {
    read_to_end(open(path, OFlags::RDONLY, 0)?, out)
}

/// `std::fs::read_to_string` on `read_to_end`: one read-to-end in the
/// binary, not std's besides.
pub fn read_string(path: &std::path::Path) -> std::io::Result<String> {
    let mut bytes = Vec::new();
    read(path, &mut bytes)?;
    String::from_utf8(bytes).map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidData))
}

/// `std::fs::read_link`: readlink(2) into a buffer grown until the
/// target fits, as std's does, through `CPath` and rustix's
/// `readlinkat_raw` (linked already for `exe_path` and the gate): std's
/// linked its own readlink, path conversion and C-string helper.
pub fn read_link(path: &Path) -> std::io::Result<std::path::PathBuf> {
    use std::os::unix::ffi::OsStringExt;
    let mut c = super::path::CPath::new();
    let path = c.of_path(path)?;
    let mut buf = vec![0u8; 256];
    loop {
        let n = rustix::fs::readlinkat_raw(rustix::fs::CWD, path, buf.as_mut_slice())?;
        if n < buf.len() {
            buf.truncate(n);
            return Ok(std::ffi::OsString::from_vec(buf).into());
        }
        buf.resize(buf.len().saturating_mul(2), 0);
    }
}

/// Writes all of `bytes` to `fd`, write(2) after write(2) (a pipe, a
/// file, a terminal may take less than asked).
pub fn write_all(fd: impl AsFd, bytes: &[u8]) -> Result<(), Errno> {
    write_all_to(fd.as_fd(), bytes)
}

/// `write_all` on the fd (one copy, as `write_in`).
fn write_all_to(fd: BorrowedFd<'_>, mut bytes: &[u8]) -> Result<(), Errno> {
    while !bytes.is_empty() {
        match rustix::io::write(fd, bytes) {
            Ok(0) => return Err(Errno::IO),
            Ok(n) => bytes = bytes.get(n..).unwrap_or(&[]),
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Read `path` under `dir` into `buf`, up to its end or `buf`'s; the text,
/// if it is UTF-8.
///
/// Only a regular file is read (kernel files in /proc, /sys and cgroupfs
/// are regular): anything else is `Errno::INVAL` without a read, and the
/// open itself does not wait (O_NONBLOCK: a FIFO would block it until a
/// writer came, then the reads until it went) nor take a terminal as
/// PID 1's controlling one (O_NOCTTY).
pub fn read_at<'b, Fd: AsFd>(dir: Fd, path: &str, buf: &'b mut [u8]) -> Result<&'b str, Errno> {
    read_in(dir.as_fd(), path, buf)
}

/// `read_at` on the directory's fd (one copy, as `write_in`).
fn read_in<'b>(dir: BorrowedFd<'_>, path: &str, buf: &'b mut [u8]) -> Result<&'b str, Errno> {
    read_all(&open_regular(dir, path)?, buf)
}

/// `read_at` for a small file of a kernel filesystem (cgroupfs, procfs)
/// under `dir`, a directory PID 1 opened on it: without `read_at`'s fstat
/// (such a filesystem holds no FIFO or device; the open does not wait
/// anyway, O_NONBLOCK), and in one read when the file is shorter than
/// `buf`. PID 1 reads `cgroup.events` and `memory.events` this way before
/// a restart's clone3 (issue 10: three system calls instead of five).
pub fn read_kernel_at<'b, Fd: AsFd>(
    dir: Fd,
    path: &str,
    buf: &'b mut [u8],
) -> Result<&'b str, Errno> {
    read_all(&open_kernel_at(dir.as_fd(), path)?, buf)
}

/// Whether process `pid` is in PID 1's own namespace of `kind` (`pid`,
/// `user`: a name under /proc/PID/ns): a process's PID namespace is the
/// one it was made in for good; a user namespace it made or entered
/// counts its capabilities there, not in PID 1's. None when either cannot
/// be read (the process gone, a kernel without that kind).
pub fn same_namespace(pid: u32, kind: &str) -> Option<bool> {
    let ns = |who: core::fmt::Arguments<'_>| {
        let path: heapless::String<32> =
            crate::proto::formatted(format_args!("/proc/{who}/ns/{kind}"));
        rustix::fs::stat(path.as_str())
            .ok()
            .map(|st| (st.st_dev, st.st_ino))
    };
    Some(ns(format_args!("{pid}"))? == ns(format_args!("self"))?)
}

/// `read_at`, with every byte that is not UTF-8 read as `?`: for text
/// whose one bad byte must not lose the rest (the kernel command line, as
/// a boot loader's environment may put anything in it).
pub fn read_lossy_at<'b, Fd: AsFd>(
    dir: Fd,
    path: &str,
    buf: &'b mut [u8],
) -> Result<&'b str, Errno> {
    let len = read_bytes(&open_regular(dir.as_fd(), path)?, buf)?;
    let bytes = buf.get_mut(..len).ok_or(Errno::INVAL)?;
    let mut at = 0;
    while let Some(rest) = bytes.get(at..) {
        match core::str::from_utf8(rest) {
            Ok(_) => break,
            Err(e) => {
                let bad = at.saturating_add(e.valid_up_to());
                let n = e
                    .error_len()
                    .unwrap_or(rest.len().saturating_sub(e.valid_up_to()));
                let end = bad.saturating_add(n.max(1));
                for b in bytes.get_mut(bad..end).into_iter().flatten() {
                    *b = b'?';
                }
                at = end;
            }
        }
    }
    core::str::from_utf8(bytes).map_err(|_| Errno::INVAL)
}

/// Reads `fd` into `buf` up to its end or `buf`'s. A read shorter than
/// what was asked is the end: a regular or kernel file returns less only
/// there, and the read that would return 0 is saved.
fn read_all<'b>(fd: &rustix::fd::OwnedFd, buf: &'b mut [u8]) -> Result<&'b str, Errno> {
    read_text(fd, buf, true)
}

/// `read_until`'s bytes as text, if UTF-8.
fn read_text<'b>(
    fd: &rustix::fd::OwnedFd,
    buf: &'b mut [u8],
    short_ends: bool,
) -> Result<&'b str, Errno> {
    let len = read_until(fd, buf, short_ends)?;
    let bytes = buf.get(..len).ok_or(Errno::INVAL)?;
    core::str::from_utf8(bytes).map_err(|_| Errno::INVAL)
}

/// Calls `f` with the name and type of every entry of the directory
/// `path` but `.` and `..` (`FileType::Unknown` where the file system
/// does not say): std's `read_dir` without its `ReadDir`, whose drop
/// links std's Debug of io::Error and Unicode's tables (2.5 KB). An
/// error while listing ends the walk with it, after the entries before.
pub fn for_each_entry(
    path: &std::path::Path,
    f: impl FnMut(&std::ffi::OsStr, rustix::fs::FileType),
) -> Result<(), Errno> {
    for_each_entry_at(rustix::fs::CWD, path, f)
}

/// `for_each_entry` of `path` under `dir`.
pub fn for_each_entry_at(
    dir: impl AsFd,
    path: impl AsRef<Path>,
    mut f: impl FnMut(&std::ffi::OsStr, rustix::fs::FileType),
) -> Result<(), Errno> {
    entries_while(dir, path, |name, ty| {
        f(name, ty);
        true
    })
}

/// `for_each_entry_at` for as long as `f` says to go on: a walk with a
/// budget stops listing where it stops (a directory of 100,000 names is
/// 2,500 reads of it).
pub fn entries_while(
    dir: impl AsFd,
    path: impl AsRef<Path>,
    mut f: impl FnMut(&std::ffi::OsStr, rustix::fs::FileType) -> bool,
) -> Result<(), Errno> {
    list_while(dir.as_fd(), path.as_ref(), &mut f)
}

/// `entries_while`'s work, compiled once: `f` is called through `dyn`,
/// not with a copy of the open and the walk for each caller's closure.
fn list_while(
    dir: BorrowedFd<'_>,
    path: &Path,
    f: &mut dyn FnMut(&std::ffi::OsStr, rustix::fs::FileType) -> bool,
) -> Result<(), Errno> {
    use std::os::unix::ffi::OsStrExt;
    let fd = openat(
        dir,
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    // getdents64 into a buffer on the stack: no heap, and less code than
    // rustix's `Dir` (which grows a Vec). 1 KiB: a stop walks a unit's
    // cgroups with one a level (`cgroup::kill`).
    let mut buf = [core::mem::MaybeUninit::<u8>::uninit(); 1024];
    let mut dir = rustix::fs::RawDir::new(&fd, &mut buf);
    while let Some(entry) = dir.next() {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." && !f(std::ffi::OsStr::from_bytes(name), entry.file_type())
        {
            break;
        }
    }
    Ok(())
}

/// Reads a kernel file that is made a page at a time (/proc/self/mounts,
/// any seq_file) into `buf`, up to its end or `buf`'s: there a read
/// returns whole lines only, so less than asked is not the end, 0 is.
pub fn read_seq_at<'b, Fd: AsFd>(dir: Fd, path: &str, buf: &'b mut [u8]) -> Result<&'b str, Errno> {
    read_text(&open_kernel_at(dir.as_fd(), path)?, buf, false)
}

/// `read_all`'s reads: how many bytes of `buf` they filled.
fn read_bytes(fd: &rustix::fd::OwnedFd, buf: &mut [u8]) -> Result<usize, Errno> {
    read_until(fd, buf, true)
}

/// Reads into `buf` until a read returns 0, `buf` is full or, with
/// `short_ends`, a read returns less than asked.
fn read_until(fd: &rustix::fd::OwnedFd, buf: &mut [u8], short_ends: bool) -> Result<usize, Errno> {
    let mut len = 0;
    while let Some(rest) = buf.get_mut(len..).filter(|r| !r.is_empty()) {
        let asked = rest.len();
        match rustix::io::read(fd, rest) {
            Ok(0) => break,
            Ok(n) => {
                len += n;
                if short_ends && n < asked {
                    break;
                }
            }
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(len)
}

/// Opens `path` under `dir` for reading as `open_regular` does, without
/// its fstat: only for files of a kernel filesystem (see `read_kernel_at`).
pub fn open_kernel_at<Fd: AsFd>(
    dir: Fd,
    path: impl AsRef<Path>,
) -> Result<rustix::fd::OwnedFd, Errno> {
    openat(
        dir.as_fd(),
        path,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY,
        Mode::empty(),
    )
}

/// Opens `path` under `dir` for reading if it is a regular file, without
/// waiting (O_NONBLOCK) and without taking a terminal (O_NOCTTY); anything
/// else is `Errno::INVAL`, refused before any read.
pub fn open_regular<Fd: AsFd>(
    dir: Fd,
    path: impl AsRef<Path>,
) -> Result<rustix::fd::OwnedFd, Errno> {
    let fd = open_kernel_at(dir.as_fd(), path)?;
    let st = rustix::fs::fstat(&fd)?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile {
        return Err(Errno::INVAL);
    }
    Ok(fd)
}

/// Create directory `path` (mode 0755) unless it exists. Only the last
/// component is created: callers make parents first.
pub fn make_dir(path: &str) -> Result<(), Errno> {
    // A `&CStr`, as every caller of rustix's `mkdir` gives it: one copy
    // of it, generic over the path's type, and no conversion in it.
    let made = super::path::CPath::new()
        .of_str(path)
        .and_then(|path| rustix::fs::mkdir(path, Mode::from_raw_mode(0o755)));
    match made {
        Ok(()) | Err(Errno::EXIST) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Whether the directory `dir` of an overlay layer hides the lower
/// layers' (`trusted.overlay.opaque=y`): one copy for the two checks of
/// a root's layers (`config::users`, `config::check`).
pub fn overlay_opaque(dir: &core::ffi::CStr) -> bool {
    let mut v = [0u8; 1];
    matches!(rustix::fs::lgetxattr(dir, c"trusted.overlay.opaque", &mut v), Ok(1) if v == *b"y")
}

/// `fd` is a socket (a unit's readiness fd: its `sd_notify` socket, not
/// its `ready = notify` pipe, whatever the definition says now).
pub fn is_socket(fd: impl AsFd) -> bool {
    rustix::fs::fstat(fd).is_ok_and(|st| {
        rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Socket
    })
}

/// `e` is the OS error `n` (std's `kind` would link its table of every
/// errno's kind).
pub fn is_errno(e: &std::io::Error, n: rustix::io::Errno) -> bool {
    e.raw_os_error() == Some(n.raw_os_error())
}

/// This binary's path (`(deleted)` when it was replaced on disk).
pub fn exe_path() -> heapless::String<{ crate::vocab::PATH_BYTES }> {
    // Into the stack, cut as `truncated` cuts: a heap buffer grown for it
    // was mapped and unmapped again before the first start (issue 10).
    let mut buf = [0u8; crate::vocab::PATH_BYTES];
    let Ok(n) = rustix::fs::readlinkat_raw(rustix::fs::CWD, c"/proc/self/exe", &mut buf[..]) else {
        return heapless::String::new();
    };
    let bytes = buf.get(..n).unwrap_or_default();
    let text = match core::str::from_utf8(bytes) {
        Ok(t) => t,
        // Only a cut character is dropped; a name not UTF-8 is none.
        Err(e) if n == buf.len() && e.error_len().is_none() => bytes
            .get(..e.valid_up_to())
            .and_then(|b| core::str::from_utf8(b).ok())
            .unwrap_or_default(),
        Err(_) => "",
    };
    crate::proto::truncated(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    /// The same target as std's `read_link`, past the first buffer too,
    /// and the same error where `path` is no link or is missing.
    #[test]
    fn read_link_is_std_s() {
        let dir = TempDir::new("file-read-link");
        let long = format!("/{}", "d/".repeat(300));
        for (name, target) in [("short", "a/b"), ("long", long.as_str())] {
            let link = dir.path().join(name);
            std::os::unix::fs::symlink(target, &link).unwrap();
            assert_eq!(
                read_link(&link).unwrap(),
                std::fs::read_link(&link).unwrap()
            );
            assert_eq!(read_link(&link).unwrap().as_os_str(), target);
        }
        for path in [dir.path().to_path_buf(), dir.path().join("none")] {
            let ours = read_link(&path).unwrap_err();
            let std_s = std::fs::read_link(&path).unwrap_err();
            assert_eq!(ours.raw_os_error(), std_s.raw_os_error());
            assert_eq!(ours.to_string(), std_s.to_string());
        }
    }

    /// A seq_file hands out a page of whole lines a read: `read_at` takes
    /// that first short read for the end, `read_seq_at` reads on (here
    /// /proc/self/smaps, some 600 bytes a mapping, over a page for any
    /// process; /proc/self/mounts at boot on a system of many mounts).
    #[test]
    fn a_kernel_file_made_a_page_at_a_time_is_read_whole() {
        let mut buf = vec![0u8; 1 << 20];
        let first = read_at(rustix::fs::CWD, "/proc/self/smaps", &mut buf)
            .unwrap()
            .len();
        let whole = read_seq_at(rustix::fs::CWD, "/proc/self/smaps", &mut buf).unwrap();
        assert!(first <= 4096, "{first}");
        assert!(whole.len() > 4096, "{}", whole.len());
        assert!(whole.ends_with('\n') && whole.contains("VmFlags"));
    }

    #[test]
    fn values_are_written_whole_and_read_back() {
        let dir = TempDir::new("file");
        let d = rustix::fs::open(&*dir, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap();
        std::fs::write(dir.join("v"), "something longer\n").unwrap();
        write_at(&d, "v", b"42\n").unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(read_at(&d, "v", &mut buf), Ok("42\n"));
        // A buffer smaller than the file: what fits.
        let mut small = [0u8; 2];
        assert_eq!(read_at(&d, "v", &mut small), Ok("42"));
        assert_eq!(write_at(&d, "missing/v", b"1"), Err(Errno::NOENT));
        std::fs::write(dir.join("bin"), [0xff, 0xfe]).unwrap();
        assert_eq!(read_at(&d, "bin", &mut buf), Err(Errno::INVAL));
    }

    #[test]
    fn only_regular_files_are_read_and_a_fifo_does_not_block() {
        let dir = TempDir::new("file-fifo");
        let d = rustix::fs::open(&*dir, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap();
        rustix::fs::mkfifoat(&d, "fifo", Mode::from_raw_mode(0o644)).unwrap();
        std::fs::create_dir(dir.join("sub")).unwrap();
        let mut buf = [0u8; 64];
        // Without a writer: no wait at the open or the read.
        assert_eq!(read_at(&d, "fifo", &mut buf), Err(Errno::INVAL));
        assert_eq!(read_at(&d, "sub", &mut buf), Err(Errno::INVAL));
        assert_eq!(
            read_at(rustix::fs::CWD, "/dev/null", &mut buf),
            Err(Errno::INVAL)
        );
        // /proc files are regular.
        assert!(read_at(rustix::fs::CWD, "/proc/self/stat", &mut buf).is_ok());
    }

    #[test]
    fn kernel_files_are_read_whole_without_the_regular_file_check() {
        let dir = TempDir::new("file-kernel");
        let d = rustix::fs::open(&*dir, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap();
        std::fs::write(dir.join("cgroup.events"), "populated 1\nfrozen 0\n").unwrap();
        let mut buf = [0u8; 256];
        assert_eq!(
            read_kernel_at(&d, "cgroup.events", &mut buf),
            Ok("populated 1\nfrozen 0\n")
        );
        // A file as long as the buffer, and a longer one: what fits.
        let mut exact = [0u8; 12];
        assert_eq!(
            read_kernel_at(&d, "cgroup.events", &mut exact),
            Ok("populated 1\n")
        );
        let mut small = [0u8; 5];
        assert_eq!(read_kernel_at(&d, "cgroup.events", &mut small), Ok("popul"));
        assert_eq!(read_kernel_at(&d, "missing", &mut buf), Err(Errno::NOENT));
        // A procfs file of many lines (a seq_file, as cgroupfs's are)
        // comes whole: its short read is its end.
        let mut big = [0u8; 8192];
        let text = read_kernel_at(rustix::fs::CWD, "/proc/self/status", &mut big).unwrap();
        assert!(text.starts_with("Name:"), "{text}");
        assert!(
            text.ends_with('\n') && text.contains("\nnonvoluntary_ctxt_switches:"),
            "{text}"
        );
    }

    #[test]
    fn make_dir_accepts_an_existing_directory() {
        let dir = TempDir::new("mkdir");
        let sub = dir.join("sub");
        let sub = sub.to_str().unwrap();
        make_dir(sub).unwrap();
        make_dir(sub).unwrap();
        assert!(std::path::Path::new(sub).is_dir());
        assert_eq!(
            make_dir(dir.join("no/such").to_str().unwrap()),
            Err(Errno::NOENT)
        );
    }

    /// One byte that is not UTF-8 in the kernel command line does not
    /// lose the options around it: it reads as `?`, as does a sequence
    /// cut at the end.
    #[test]
    fn a_bad_byte_reads_as_a_question_mark() {
        let dir = crate::testutil::TempDir::new("file-lossy");
        let path = dir.join("cmdline");
        std::fs::write(&path, b"wren.debug \xff\xfe wren.units=/x \xc3\xa9t\xc3").unwrap();
        let mut buf = [0u8; 64];
        let text = read_lossy_at(rustix::fs::CWD, path.to_str().unwrap(), &mut buf).unwrap();
        assert_eq!(text, "wren.debug ?? wren.units=/x \u{e9}t?");
        let opts = crate::boot::cmdline::parse(text, &mut |_, _| {});
        assert!(opts.debug);
        assert_eq!(opts.units_dir(), "/x");
        let mut buf = [0u8; 64];
        assert_eq!(
            read_at(rustix::fs::CWD, path.to_str().unwrap(), &mut buf),
            Err(Errno::INVAL)
        );
    }
}
