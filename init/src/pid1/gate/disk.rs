//! The health gate's file work: a rejected unit file kept beside the good
//! one put back (through a link, into the file it leads to), a new
//! unit's set aside, each in a child copy of PID 1 waited for at most
//! `DISK_LIMIT`: a dying SD card can hold an fsync for minutes.

use crate::kmsg;
use crate::sys::path::CPath;
use crate::unit::{self, UnitDef};
use crate::vocab::{Millis, UNIT_FILE_MAX};
use rustix::fd::OwnedFd;
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

/// Keep the rejected `NAME.unit` as `NAME.unit.rejected` and put `good`
/// back as `NAME.unit`; the definition as the file now reads. A file that
/// no longer holds the `rejected` definition (edited again since the
/// reload, not yet loaded) is the operator's newer text: left as it is
/// for the next reload, `Errno::STALE`.
pub(super) fn restore_file(
    dir: &str,
    name: &str,
    good: &UnitDef,
    cause: &str,
    rejected: Option<&UnitDef>,
) -> Result<UnitDef, Errno> {
    let (def, text) = put_back(name, good, cause)?;
    let d = open_dir(dir)?;
    let unit_file = file_name(name, ".unit")?;
    if let Some(r) = rejected {
        still_holds(&d, name, &unit_file, r)?;
    }
    let rejected = file_name(name, ".unit.rejected")?;
    match link_target(&d, &unit_file)? {
        None => {
            keep_rejected(&d, &unit_file, &rejected)?;
            let tmp = file_name(name, ".unit.restore")?;
            replace(&d, &tmp, &unit_file, text.as_bytes(), &unit_file)?;
        }
        // A link (units.md allows one: a unit file kept on `/data`): the
        // good text goes into the file it leads to, in that file's own
        // directory, and the link stays; replaced by a file, it would
        // hide every later fix made where it leads. The rejected text
        // stays beside it, a copy (the file it was is rewritten).
        Some((td, base)) => {
            copy_rejected(&d, &unit_file, &rejected)?;
            let mut tmp = FileName::new();
            tmp.push_str(&base).map_err(|_| Errno::NAMETOOLONG)?;
            tmp.push_str(".restore").map_err(|_| Errno::NAMETOOLONG)?;
            replace(&td, &tmp, &base, text.as_bytes(), &base)?;
        }
    }
    Ok(def)
}

/// When `unit_file` in `d` is a symbolic link: the directory of the file
/// it leads to in the end (links followed by the kernel, read back from
/// /proc/self/fd) and that file's name.
fn link_target(d: &OwnedFd, unit_file: &str) -> Result<Option<(OwnedFd, String)>, Errno> {
    let mut c = CPath::new();
    let st = rustix::fs::statat(
        d,
        c.of_str(unit_file)?,
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::Symlink {
        return Ok(None);
    }
    let f = crate::sys::file::openat(d, unit_file, OFlags::PATH | OFlags::CLOEXEC, Mode::empty())?;
    let mut proc: heapless::String<32> = heapless::String::new();
    let fd = rustix::fd::AsRawFd::as_raw_fd(&f);
    core::fmt::write(&mut proc, format_args!("/proc/self/fd/{fd}")).map_err(|_| Errno::INVAL)?;
    let mut c = CPath::new();
    let mut buf = std::vec![0u8; 4096];
    let n = rustix::fs::readlinkat_raw(rustix::fs::CWD, c.of_str(&proc)?, buf.as_mut_slice())?;
    let target = buf
        .get(..n)
        .filter(|_| n < 4096)
        .ok_or(Errno::NAMETOOLONG)?;
    let target = core::str::from_utf8(target).map_err(|_| Errno::ILSEQ)?;
    let (dir, base) = target.rsplit_once('/').ok_or(Errno::INVAL)?;
    let dir = if dir.is_empty() { "/" } else { dir };
    Ok(Some((open_dir(dir)?, String::from(base))))
}

/// The text `restore_file` writes back, and the definition it is.
pub(super) fn put_back(
    name: &str,
    good: &UnitDef,
    cause: &str,
) -> Result<(UnitDef, heapless::String<UNIT_FILE_MAX>), Errno> {
    let mut text: heapless::String<UNIT_FILE_MAX> = heapless::String::new();
    core::fmt::write(
        &mut text.as_mut_view(),
        format_args!(
            "# Put back by wren: the new version did not start ({cause});\n\
             # it is kept as {name}.unit.rejected.\n"
        ),
    )
    .map_err(|_| Errno::NOSPC)?;
    unit::render(good, &mut text.as_mut_view()).map_err(|_| Errno::NOSPC)?;
    let def = unit::parse(name, &text).map_err(|_| Errno::INVAL)?;
    Ok((def, text))
}

/// An error of `on_disk`, said as the operator needs it.
pub(in crate::pid1) struct DiskError(pub(in crate::pid1) Errno);

impl core::fmt::Display for DiskError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Errno::TIMEDOUT => f.write_str("the disk did not answer within 2 s"),
            Errno::ALREADY => f.write_str("the disk gave no answer less than 30 s ago"),
            e => crate::sys::errno::Os::from(e).fmt(f),
        }
    }
}

/// How long a verdict's file work may hold the loop.
const DISK_LIMIT_MS: Millis = 2_000;
pub(super) const DISK_LIMIT: core::time::Duration =
    core::time::Duration::from_millis(DISK_LIMIT_MS);

/// How long after a verdict's file work, or a reload's read, timed out
/// the next leave the disk alone: a card that held one past
/// `DISK_LIMIT` is not asked again, 2 s each, for every other unit a bad
/// reload changed, nor by every retry of an update agent's reload (each
/// would leave one more child stuck in the card's queue).
const DISK_RESPITE_MS: Millis = 30_000;

/// When the disk last did not answer `on_disk`'s child in time (the end
/// of that wait). In a `Cell`: a verdict and a reload ask it while they
/// hold the unit directory's path, which borrows PID 1.
#[derive(Default)]
pub(in crate::pid1) struct DiskStall(core::cell::Cell<Option<Millis>>);

impl DiskStall {
    /// One that saw the disk not answer at `t`.
    #[cfg(test)]
    pub(in crate::pid1) fn stalled_at(t: Millis) -> DiskStall {
        DiskStall(core::cell::Cell::new(Some(t)))
    }

    /// `on_disk(f)`, unless the disk did not answer less than
    /// `DISK_RESPITE_MS` before `now`: EALREADY then, at once.
    pub(in crate::pid1) fn on_disk(
        &self,
        now: Millis,
        watchdog: Option<&crate::watchdog::Watchdog>,
        f: &dyn Fn() -> Result<(), Errno>,
    ) -> Result<(), Errno> {
        if self
            .0
            .get()
            .is_some_and(|t| now.saturating_sub(t) < DISK_RESPITE_MS)
        {
            return Err(Errno::ALREADY);
        }
        let r = on_disk(watchdog, f);
        if r == Err(Errno::TIMEDOUT) {
            self.0.set(Some(now.saturating_add(DISK_LIMIT_MS)));
        }
        r
    }
}

/// A verdict's file work (reads, writes and fsyncs in the unit
/// directory), or a reload's first read of it, in a child copy of PID 1,
/// waited for at most `DISK_LIMIT` with the watchdog fed: a dying SD
/// card can hold an fsync for minutes, and the loop must not wait with
/// it. The child's errno comes back as its exit code; past the limit,
/// ETIMEDOUT, and the child is killed: it dies as soon as the call it
/// waits in returns, not going on later with a put-back's rename over
/// what the directory holds by then (the operator's edit, made after
/// the verdict said the file could not be written back).
pub(super) fn on_disk(
    watchdog: Option<&crate::watchdog::Watchdog>,
    f: &dyn Fn() -> Result<(), Errno>,
) -> Result<(), Errno> {
    use crate::boot::shutdown::{bounded_code, Unfinished};
    let code = bounded_code(DISK_LIMIT, watchdog, &mut || {
        // The copy's backlogs are PID 1's, which PID 1 writes itself.
        kmsg::forked();
        match f() {
            Ok(()) => 0,
            Err(e) => e.raw_os_error(),
        }
    });
    match code {
        Ok(0) => Ok(()),
        Ok(e) if e > 0 => Err(Errno::from_raw_os_error(e)),
        Ok(_) => Err(Errno::IO),
        Err(Unfinished::NoChild(e)) => Err(e),
        Err(Unfinished::Running(pid)) => {
            // Reaped by the loop, as any child of PID 1.
            if let Some(p) = i32::try_from(pid)
                .ok()
                .and_then(rustix::process::Pid::from_raw)
            {
                let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
            }
            Err(Errno::TIMEDOUT)
        }
    }
}

/// `Errno::STALE` unless `unit_file` still holds the `rejected`
/// definition: edited again since the reload, or removed (the operator
/// drops the unit), it is the operator's, for the next reload. A file
/// that cannot be read (EIO of a dying card) is that error, not "changed".
fn still_holds(d: &OwnedFd, name: &str, unit_file: &str, rejected: &UnitDef) -> Result<(), Errno> {
    // On the heap (a verdict is a configuration change): PID 1's stack
    // pages, once touched, stay resident.
    let mut buf = std::vec![0u8; UNIT_FILE_MAX];
    match crate::sys::file::read_at(d, unit_file, &mut buf) {
        Ok(text) if unit::parse(name, text).ok().as_ref() == Some(rejected) => Ok(()),
        // Removed, or the operator's newer text (not UTF-8, past the
        // size limit, not a regular file: `read_at`'s EINVAL).
        Ok(_) | Err(Errno::NOENT | Errno::INVAL) => Err(Errno::STALE),
        Err(e) => Err(e),
    }
}

/// A new unit has no good definition: its file moves aside whole, if it
/// still holds the `rejected` one (`still_holds`).
pub(super) fn set_aside(dir: &str, name: &str, rejected: Option<&UnitDef>) -> Result<(), Errno> {
    let d = open_dir(dir)?;
    let from = file_name(name, ".unit")?;
    if let Some(r) = rejected {
        still_holds(&d, name, &from, r)?;
    }
    let to = file_name(name, ".unit.rejected")?;
    rename(&d, &from, &to)?;
    synced(&d, &to);
    Ok(())
}

/// renameat(2) of `from` to `to`, both in `d`: the one call of rustix's
/// `renameat`, given `&CStr`s (sys::path).
fn rename(d: &OwnedFd, from: &str, to: &str) -> Result<(), Errno> {
    let (mut f, mut t) = (CPath::new(), CPath::new());
    rustix::fs::renameat(d, f.of_str(from)?, d, t.of_str(to)?)
}

/// The directory synced after a rename in it, which is done whatever
/// comes now: a failure is said, not taken for a file left as it was.
fn synced(d: &OwnedFd, file: &str) {
    if let Err(e) = rustix::fs::fsync(d) {
        crate::warn!("{file}: in place, but its directory was not synced: {e}");
    }
}

type FileName = heapless::String<{ crate::vocab::NAME_MAX + 32 }>;

fn file_name(name: &str, ext: &str) -> Result<FileName, Errno> {
    let mut s = FileName::new();
    s.push_str(name).map_err(|_| Errno::NAMETOOLONG)?;
    s.push_str(ext).map_err(|_| Errno::NAMETOOLONG)?;
    Ok(s)
}

fn open_dir(dir: &str) -> Result<OwnedFd, Errno> {
    crate::sys::file::openat(
        rustix::fs::CWD,
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// `rejected` becomes the current `unit_file` (a hard link: the same
/// bytes, nothing copied; a copy where links are not supported).
fn keep_rejected(d: &OwnedFd, unit_file: &str, rejected: &str) -> Result<(), Errno> {
    match crate::sys::file::unlinkat(d, rejected, rustix::fs::AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => {}
        Err(e) => return Err(e),
    }
    let (mut u, mut r) = (CPath::new(), CPath::new());
    let linked = u.of_str(unit_file).and_then(|unit_file| {
        let rejected = r.of_str(rejected)?;
        rustix::fs::linkat(d, unit_file, d, rejected, rustix::fs::AtFlags::empty())
    });
    match linked {
        Ok(()) => Ok(()),
        Err(Errno::NOENT) => Ok(()),
        Err(_) => copy_rejected(d, unit_file, rejected),
    }
}

/// `rejected` becomes a copy of what `unit_file` reads now.
fn copy_rejected(d: &OwnedFd, unit_file: &str, rejected: &str) -> Result<(), Errno> {
    let mut buf = [0u8; UNIT_FILE_MAX];
    let text = crate::sys::file::read_at(d, unit_file, &mut buf)?;
    let mut tmp = FileName::new();
    tmp.push_str(rejected).map_err(|_| Errno::NAMETOOLONG)?;
    tmp.push_str(".tmp").map_err(|_| Errno::NAMETOOLONG)?;
    replace(d, &tmp, rejected, text.as_bytes(), unit_file)
}

/// Write `bytes` to `tmp`.PID, fsync it, rename it over `target`, fsync
/// the directory: `target` is the old file or the new one, whole. It gets
/// the owner and mode of `like` (a unit file kept 0600 for the secrets in
/// its `env` stays so): made 0600, then given them before a byte is in.
/// The staging name is the writer's own (`on_disk`'s child): a child
/// killed at its limit on a stuck card may still write once the card
/// wakes, and must not write into the file of the put-back after it.
fn replace(d: &OwnedFd, tmp: &str, target: &str, bytes: &[u8], like: &str) -> Result<(), Errno> {
    let stem = tmp;
    let mut own = FileName::new();
    let mut digits = [0u8; 20];
    let me = rustix::process::getpid()
        .as_raw_nonzero()
        .get()
        .unsigned_abs();
    for part in [
        tmp,
        ".",
        wren_core::num::decimal(u64::from(me), &mut digits),
    ] {
        own.push_str(part).map_err(|_| Errno::NAMETOOLONG)?;
    }
    let tmp = own.as_str();
    let create = || {
        crate::sys::file::openat(
            d,
            tmp,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
    };
    // A file of this pid is no live writer's (the pid is this process's):
    // a put-back cut off by a power cut, its pid given again at a boot.
    let fd = match create() {
        Err(Errno::EXIST) => {
            let _ = crate::sys::file::unlinkat(d, tmp, rustix::fs::AtFlags::empty());
            create()?
        }
        r => r?,
    };
    // Best effort: a file system without owners (a unit directory on the
    // FAT boot partition) refuses them; a refused chown leaves the file
    // root's, with the mode copied (no wider for it).
    let mut c = CPath::new();
    let like_st = c
        .of_str(like)
        .and_then(|like| rustix::fs::statat(d, like, rustix::fs::AtFlags::empty()));
    let mode = match like_st {
        Ok(st) => {
            let uid = Some(rustix::fs::Uid::from_raw(st.st_uid));
            let _ = rustix::fs::fchown(&fd, uid, Some(rustix::fs::Gid::from_raw(st.st_gid)));
            st.st_mode & 0o777
        }
        Err(_) => 0o644,
    };
    let _ = rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode));
    let written = crate::sys::file::write_all(&fd, bytes).and_then(|()| rustix::fs::fsync(&fd));
    drop(fd);
    let done = written.and_then(|()| rename(d, tmp, target));
    if let Err(e) = done {
        let _ = crate::sys::file::unlinkat(d, tmp, rustix::fs::AtFlags::empty());
        return Err(e);
    }
    synced(d, target);
    sweep_staged(d, stem);
    Ok(())
}

/// The staging files of `stem` that no live process may still write: of
/// a writer killed at its limit that has since ended, or of an older
/// build (`stem` itself). Each holds a whole definition, its `env`
/// secrets too: after a put-back that went through, they would pile up
/// in the unit directory with every stuck card. A live writer's stays.
fn sweep_staged(d: &OwnedFd, stem: &str) {
    let mut gone: Vec<std::ffi::OsString> = Vec::new();
    let _ = crate::sys::file::for_each_entry_at(d, ".", |name, _| {
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(stem)) else {
            return;
        };
        let dead = match rest.strip_prefix('.') {
            None => rest.is_empty(),
            Some(pid) => wren_core::num::dec(pid)
                .and_then(|p: u32| i32::try_from(p).ok())
                .and_then(rustix::process::Pid::from_raw)
                .is_some_and(|p| rustix::process::test_kill_process(p) == Err(Errno::SRCH)),
        };
        if dead {
            gone.push(name.to_owned());
        }
    });
    for name in gone {
        let _ = crate::sys::file::unlinkat(d, &name, rustix::fs::AtFlags::empty());
    }
}
