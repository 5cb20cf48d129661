//! `initctl edit NAME`: edit a working copy, check it among its siblings,
//! offer to edit again while it is invalid, install it atomically and have
//! init reload.

use super::args::Command;
use super::{client, fail, units_dir, FAIL, OK};
use crate::pathname::Show as _;
use crate::sys::path::CPath;
use nix::sys::signal::Signal;
use rustix::fs::{AtFlags, OFlags};
use std::io::{self, Write};
use std::path::Path;

/// What `edit_unit` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Edited {
    /// Saved as it was: nothing installed.
    Unchanged,
    /// The checked copy replaced the unit file.
    Installed,
    /// Invalid and the user declined to edit again: nothing installed.
    Aborted,
}

/// How `edit_unit` reaches the world, so tests can stand in.
pub(super) struct EditEnv<'a> {
    /// The unit directory.
    pub(super) dir: &'a Path,
    /// Where the working copy is made.
    pub(super) tmp: &'a Path,
    /// Run through `/bin/sh -c` as git does, so it may carry arguments.
    pub(super) editor: &'a str,
    /// Validates one file, writing problems to the writer.
    pub(super) check: &'a dyn Fn(&Path, &mut dyn crate::ctl::out::Out) -> bool,
}

/// `initctl edit NAME`: edit a copy, validate it, offer to re-edit while
/// invalid, install it (atomic rename) and have init reload.
pub(super) fn edit(
    name: &str,
    socket: &Path,
    out: &mut dyn crate::ctl::out::Out,
    err: &mut dyn crate::ctl::out::Out,
) -> u8 {
    use std::os::unix::ffi::OsStrExt;
    // Read in place (`sys::exec::env_var`), not by std's `var`: a value
    // that is not UTF-8 is no editor, as std's `var` had it.
    let editor = crate::sys::exec::env_var(c"EDITOR")
        .and_then(|e| e.to_str().ok())
        .filter(|e| !e.trim().is_empty())
        .unwrap_or("vi");
    let tmp = work_dir(
        crate::sys::exec::env_var(c"TMPDIR")
            .map(|v| std::ffi::OsStr::from_bytes(v.to_bytes()).to_owned()),
        Path::new("/tmp"),
        Path::new("/run"),
    );
    let dir = units_dir();
    // The copy is checked in place of the installed file, among its
    // siblings, so its `after` names resolve.
    let check = |p: &Path, w: &mut dyn crate::ctl::out::Out| {
        crate::config::check_in_context(Path::new("/"), &[p], Path::new(&dir), w)
    };
    let env = EditEnv {
        dir: Path::new(&dir),
        tmp: &tmp,
        editor,
        check: &check,
    };
    // Buffered as std's `Stdin` is (8 KiB, kept across the questions of
    // this one edit), on fd 0 itself: std's `Stdin` (its `OnceLock`, its
    // reentrant lock) is not linked for one answer.
    let mut stdin = io::BufReader::with_capacity(8192, Fd0);
    match edit_unit(name, &env, &mut stdin, err) {
        Err(msg) => fail(err, &msg),
        Ok(Edited::Aborted) => {
            let _ = writeln!(err, "initctl: {name}.unit left unchanged");
            FAIL
        }
        Ok(Edited::Unchanged) => {
            let _ = writeln!(out, "{name}.unit unchanged");
            OK
        }
        Ok(Edited::Installed) => {
            let _ = writeln!(out, "{name}.unit installed");
            match client::talk(&Command::Reload, socket, out, err) {
                Ok(code) => code,
                // The reload may have been applied and only its verdict
                // not come: not "not applied".
                Err(msg) => {
                    let _ = writeln!(err, "initctl: {name}.unit installed; reload: {msg}");
                    FAIL
                }
            }
        }
    }
}

/// Standard input read as std's `Stdin` reads it: a closed fd 0 (EBADF)
/// is an empty input.
struct Fd0;

impl io::Read for Fd0 {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match rustix::io::read(rustix::stdio::stdin(), buf) {
            Err(rustix::io::Errno::BADF) => Ok(0),
            r => Ok(r?),
        }
    }
}

pub(super) fn edit_unit(
    name: &str,
    env: &EditEnv<'_>,
    input: &mut dyn io::BufRead,
    err: &mut dyn crate::ctl::out::Out,
) -> Result<Edited, String> {
    let target = through_links(env.dir.join(format!("{name}.unit")))?;
    // Not opened unless regular, as the loader reads it: a FIFO would
    // hold `edit` in its open, a link to a device feed it for ever.
    let kind = rustix::fs::stat(&target).map(|st| rustix::fs::FileType::from_raw_mode(st.st_mode));
    if kind.is_ok_and(|k| k != rustix::fs::FileType::RegularFile) {
        return Err(format!("{}: not a regular file", target.shown()));
    }
    // Where it is installed must take it, asked before the editor runs:
    // an edit made, then refused at its install (a link into a read-only
    // file system), was lost with the working copy.
    let dir = crate::pathname::parent(&target).unwrap_or(Path::new("/"));
    let mut c = CPath::new();
    let writable = c.of_path(dir).and_then(|d| {
        rustix::fs::access(
            d,
            rustix::fs::Access::WRITE_OK | rustix::fs::Access::EXEC_OK,
        )
    });
    writable.map_err(|e| at(dir, &e.into()))?;
    // Bytes: a file that is not UTF-8 (PID 1 says `NAME.unit:N: not
    // valid UTF-8`) is one to edit, not an error.
    let mut original = Vec::new();
    let owner = match crate::sys::file::read(&target, &mut original) {
        Ok(()) => {
            let meta = rustix::fs::stat(&target).map_err(|e| at(&target, &e.into()))?;
            Some(Owner::of(&meta))
        }
        Err(e) if crate::sys::file::is_errno(&e, rustix::io::Errno::NOENT) => {
            original =
                format!("# {name}: new unit, keys in wren's docs/units.md\nexec = \n").into_bytes();
            None
        }
        Err(e) => return Err(at(&target, &e)),
    };
    // The copy keeps the unit's file name so that `check` sees its name.
    // Its directory is private (0700): the unit may hold secrets.
    let work = env.tmp.join(format!("wren-edit-{name}-{}", unique()));
    CPath::new()
        .of_path(&work)
        .and_then(|w| rustix::fs::mkdir(w, rustix::fs::Mode::RWXU))
        .map_err(|e| at(&work, &e.into()))?;
    let mut keep = false;
    let result = edit_loop(
        name,
        env,
        (&original, owner),
        (&target, &work),
        input,
        &mut keep,
        err,
    );
    // Kept when a checked edit could not be installed (a full card, one
    // gone read-only while the editor ran): the operator's work.
    if !keep {
        remove_tree(&work);
    }
    result
}

/// The file `path` leads to through symbolic links (units.md allows a
/// unit file to be one, say into `/data`): edited and installed there,
/// so the link stays a link. Renamed over, it became a file of its own,
/// which hid every later change made where it led.
fn through_links(start: std::path::PathBuf) -> Result<std::path::PathBuf, String> {
    let mut path = start.clone();
    // The kernel's own bound on links followed in one lookup.
    for _ in 0..=40 {
        let Ok(to) = crate::sys::file::read_link(&path) else {
            return Ok(path);
        };
        let dir = crate::pathname::parent(&path).unwrap_or(Path::new("/"));
        path = dir.join(to);
    }
    Err(format!("{}: too many links", start.shown()))
}

/// `std::fs::remove_dir_all` (best effort) on the directory walk the
/// binary has anyway: std's own walk costs 1.4 KB. Symbolic links are
/// removed, never followed.
fn remove_tree(dir: &Path) {
    use rustix::fs::FileType;
    let _ = crate::sys::file::for_each_entry(dir, |name, kind| {
        let path = dir.join(name);
        let is_dir = match kind {
            FileType::Directory => true,
            FileType::Unknown => rustix::fs::lstat(&path)
                .is_ok_and(|m| FileType::from_raw_mode(m.st_mode) == FileType::Directory),
            _ => false,
        };
        if is_dir {
            remove_tree(&path);
        } else {
            let _ = crate::sys::file::unlinkat(rustix::fs::CWD, &path, AtFlags::empty());
        }
    });
    let _ = crate::sys::file::unlinkat(rustix::fs::CWD, dir, AtFlags::REMOVEDIR);
}

/// `PATH: error`, one copy of the formatting for every file error.
fn at(path: &Path, e: &io::Error) -> String {
    format!("{}: {e}", path.shown())
}

/// What an installed file keeps of the file it replaces.
#[derive(Clone, Copy)]
struct Owner {
    mode: u32,
    uid: u32,
    gid: u32,
}

impl Owner {
    /// Of a stat by rustix: std's `metadata` path is not linked for it.
    fn of(meta: &rustix::fs::Stat) -> Owner {
        Owner {
            mode: meta.st_mode & 0o7777,
            uid: meta.st_uid,
            gid: meta.st_gid,
        }
    }
}

/// Where the working copy goes: `$TMPDIR`; without it `tmp`, or `run`
/// (the tmpfs PID 1 mounts) when `tmp` cannot be written: under
/// `wren.rescue` the root may be read-only and `/tmp` not mounted yet,
/// which is when the operator most needs to edit a unit.
pub(super) fn work_dir(
    tmpdir: Option<std::ffi::OsString>,
    tmp: &Path,
    run: &Path,
) -> std::path::PathBuf {
    use rustix::fs::{access, Access};
    match tmpdir.filter(|t| !t.is_empty()) {
        Some(t) => t.into(),
        None if access(tmp, Access::WRITE_OK).is_err() => run.into(),
        None => tmp.into(),
    }
}

/// A name part no other edit uses at the same time: this process's id and
/// the clock's nanoseconds (an edit is one process, so its own names never
/// race), and a counter for the copies of one process.
fn unique() -> String {
    static COUNT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // u64 (until 2554): formatting a u128 costs 1 KB of code.
    let nanos = crate::sys::clock::wall_ns();
    format!("{}-{nanos}-{n}", std::process::id())
}

/// Remove the staging files of `name` (`.NAME.new.PID-...`) that an
/// edit killed, or cut by a power loss, between its write and its rename
/// left in the unit directory: those whose process is gone. A live edit's
/// is its own to rename.
fn sweep_staged(dir: &Path, name: &str) {
    use std::os::unix::ffi::OsStrExt;
    let Ok(fd) = crate::sys::file::open(dir, OFlags::RDONLY | OFlags::DIRECTORY, 0) else {
        return;
    };
    let mut prefix = std::ffi::OsString::from(".");
    prefix.push(name);
    prefix.push(".new.");
    let _ = crate::sys::file::for_each_entry_at(&fd, ".", |file, _| {
        let pid = file
            .as_bytes()
            .strip_prefix(prefix.as_bytes())
            .and_then(|rest| rest.split(|&c| c == b'-').next())
            .and_then(|p| core::str::from_utf8(p).ok())
            .and_then(wren_core::num::dec::<i32>)
            .and_then(rustix::process::Pid::from_raw);
        let gone = pid
            .is_some_and(|p| rustix::process::test_kill_process(p) == Err(rustix::io::Errno::SRCH));
        if gone {
            let _ = crate::sys::file::unlinkat(&fd, file, rustix::fs::AtFlags::empty());
        }
    });
}

/// Replace `target` with `text` atomically and durably: a staging file of
/// its own name beside it (created exclusively, with the mode and owner of
/// the file it replaces; 0644 and the caller's ids for a new unit), synced,
/// renamed over `target`, then the directory synced so that the rename
/// itself survives a power cut.
fn install(
    target: &Path,
    text: &str,
    owner: Option<Owner>,
    err: &mut dyn crate::ctl::out::Out,
) -> io::Result<()> {
    let dir = crate::pathname::parent(target).unwrap_or(Path::new("."));
    let name = crate::pathname::file_name(target)
        .unwrap_or_default()
        .to_string_lossy();
    sweep_staged(dir, &name);
    let staged = dir.join(format!(".{name}.new.{}", unique()));
    let mode = owner.map_or(0o644, |o| o.mode);
    let written = (|| {
        // Created with no permission for others at all, so that the text is
        // never readable by more than the final mode allows.
        let mut f = crate::sys::file::open(
            &staged,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL,
            0o600,
        )?;
        if let Some(o) = owner {
            // rustix's raw call: musl's fchown (and its /proc fallback)
            // would be linked for this one use.
            let (uid, gid) = (
                rustix::fs::Uid::from_raw(o.uid),
                rustix::fs::Gid::from_raw(o.gid),
            );
            rustix::fs::fchown(&f, Some(uid), Some(gid))?;
        }
        f.write_all(text.as_bytes())?;
        // After the chown, which clears set-id bits; and not through the
        // umask.
        rustix::fs::fchmod(&f, rustix::fs::Mode::from_raw_mode(mode))?;
        f.sync_all()?;
        let (mut from, mut to) = (CPath::new(), CPath::new());
        Ok(rustix::fs::rename(
            from.of_path(&staged)?,
            to.of_path(target)?,
        )?)
    })();
    if let Err(e) = written {
        let _ = crate::sys::file::unlinkat(rustix::fs::CWD, &staged, AtFlags::empty());
        return Err(e);
    }
    // Installed whatever comes now: a failed sync of the directory is
    // said, not taken for a file left as it was.
    if let Err(e) = crate::sys::file::open(dir, OFlags::RDONLY | OFlags::DIRECTORY, 0)
        .and_then(|d| d.sync_all())
    {
        let _ = writeln!(
            err,
            "initctl: {}: installed, but its directory was not synced: {e}",
            target.shown()
        );
    }
    Ok(())
}

fn edit_loop(
    name: &str,
    env: &EditEnv<'_>,
    unit: (&[u8], Option<Owner>),
    paths: (&Path, &Path),
    input: &mut dyn io::BufRead,
    keep: &mut bool,
    err: &mut dyn crate::ctl::out::Out,
) -> Result<Edited, String> {
    // As git does: Ctrl-C, Ctrl-\ or a hang-up of the serial line, while
    // the editor runs (they are the editor's to take) or at the question
    // after it, do not end this process before it removes the working
    // copy, the unit's secrets in it. The editor gets their default
    // actions back (`sys::child`); at the question, a hang-up reads as
    // the end of input, a no.
    let held = [Signal::SIGINT, Signal::SIGQUIT, Signal::SIGHUP];
    for sig in held {
        let _ = crate::sys::signal::ignore(sig);
    }
    let r = edit_until_done(name, env, unit, paths, input, keep, err);
    for sig in held {
        let _ = crate::sys::signal::set_default(sig);
    }
    r
}

fn edit_until_done(
    name: &str,
    env: &EditEnv<'_>,
    (original, owner): (&[u8], Option<Owner>),
    (target, work): (&Path, &Path),
    input: &mut dyn io::BufRead,
    keep: &mut bool,
    err: &mut dyn crate::ctl::out::Out,
) -> Result<Edited, String> {
    let copy = work.join(format!("{name}.unit"));
    crate::sys::file::open(
        &copy,
        OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC,
        0o666,
    )
    .and_then(|mut f| f.write_all(original))
    .map_err(|e| at(&copy, &e))?;
    loop {
        let status = run_editor(env.editor, &copy)
            .map_err(|e| format!("cannot run /bin/sh for the editor: {e}"))?;
        if !status.success() {
            return Err(format!("editor '{}' failed ({status})", env.editor));
        }
        let mut bytes = Vec::new();
        crate::sys::file::read(&copy, &mut bytes).map_err(|e| at(&copy, &e))?;
        // Text that is not UTF-8 is an invalid unit like any other: the
        // user may edit it again, not lose it.
        if bytes == original {
            return Ok(Edited::Unchanged);
        }
        let text = core::str::from_utf8(&bytes).ok();
        let valid = match text {
            Some(_) => (env.check)(&copy, err),
            None => {
                let _ = writeln!(err, "{}: not UTF-8 text", copy.shown());
                false
            }
        };
        if let (true, Some(text)) = (valid, text) {
            if let Err(e) = install(target, text, owner, err) {
                *keep = true;
                return Err(format!(
                    "installing {}: {e}; the edit is kept in {}",
                    target.shown(),
                    copy.shown()
                ));
            }
            return Ok(Edited::Installed);
        }
        let _ = write!(err, "{name}.unit is invalid. Edit again? [Y/n] ");
        let _ = err.flush();
        let mut answer = String::new();
        let n = input.read_line(&mut answer).map_err(|e| e.to_string())?;
        if n == 0 || answer.trim_start().starts_with(['n', 'N']) {
            return Ok(Edited::Aborted);
        }
    }
}

/// `/bin/sh -c 'EDITOR "$@"' EDITOR FILE`, as git runs an editor, on the
/// terminal this process has; waits for it.
fn run_editor(editor: &str, file: &Path) -> io::Result<crate::sys::child::ExitStatus> {
    let script = format!("{editor} \"$@\"");
    let file = file
        .to_str()
        .ok_or_else(|| io::Error::from(rustix::io::Errno::ILSEQ))?;
    let mut argv: crate::sys::exec::CStrings<8192, 6> = crate::sys::exec::CStrings::new();
    for arg in ["/bin/sh", "-c", &script, editor, file] {
        argv.push(&[arg])
            .ok_or_else(|| io::Error::from(rustix::io::Errno::NAMETOOLONG))?;
    }
    // Its signals are held by `edit_loop` meanwhile.
    Ok(crate::sys::child::spawn(&argv, [None; 3]).and_then(|c| c.wait())?)
}
