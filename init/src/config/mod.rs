//! Reading a unit directory and checking it as a whole: every file parses,
//! every program exists and is executable, every `after` names a unit that
//! is itself valid, and `after` has no cycle.
//!
//! This runs at boot, on reload and in `initctl check`, never in PID 1's
//! steady state, so it allocates (the list of files, error messages); each
//! file is still read into one fixed `UNIT_FILE_MAX` buffer.
//!
//! Host paths are parameters: `sysroot` is where absolute paths inside unit
//! files are looked up (`/` in PID 1, an image's root directory on a build
//! host, a temp dir in tests).
//!
//! Here: loading a directory (`load_dir`) and the set of files being
//! loaded. `check`: `initctl check` and the program lookup under a sysroot.
//! `deps`: the `after` checks (names that lead nowhere, cycles).

mod check;
mod deps;
mod loader;

pub use check::{check, check_at, check_in_context, check_root};

pub mod users;
use crate::pathname::Show as _;
use crate::unit::{parse_with_lines, AfterLines, IdLines, UnitDef};
use crate::vocab::{valid_name, MAX_UNITS, NAME_MAX, UNIT_FILE_MAX};
use std::io::Read;
use std::path::{Path, PathBuf};

/// One problem found while loading: shown as `FILE:LINE: message`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadError {
    pub file: String,
    /// 1-based; 0 when the problem is the file as a whole.
    pub line: u32,
    pub msg: String,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}: {}", self.file, self.line, self.msg)
        } else {
            write!(f, "{}: {}", self.file, self.msg)
        }
    }
}

/// Load every `*.unit` in `dir` (sorted by name) into `defs`, checking the
/// set as a whole; each unit with a problem is reported through `err` and
/// left out, the others are loaded. `defs` is cleared first. Programs are
/// looked up on the running system (sysroot `/`).
pub fn load_dir(dir: &Path, defs: &mut Vec<UnitDef>, err: &mut dyn FnMut(LoadError)) {
    load_dir_at(Path::new("/"), dir, defs, err)
}

/// `load_dir` at boot, before any unit ran: a unit with an `after` whose
/// program is not there is loaded, since a unit it waits for may bring it
/// (a `mounts` oneshot that mounts the partition it is on); its start
/// says whether it is there by then. A reload refuses it, as a change
/// whose program is missing on a running system is most likely a typo,
/// which must not stop the unit's good run (docs/units.md, "Errors").
pub fn load_dir_booting(dir: &Path, defs: &mut Vec<UnitDef>, err: &mut dyn FnMut(LoadError)) {
    let reading = Reading {
        roots: false,
        later: true,
    };
    load_dir_with(Path::new("/"), dir, defs, err, reading)
}

/// `load_dir` for nothing but its reads: the files, the directory and the
/// programs' inodes into the kernel's caches (a reload's first read, in a
/// child that may hang on a card that does not answer).
pub fn warm(dir: &Path) {
    let mut defs = Vec::new();
    load_dir(dir, &mut defs, &mut |_| {});
}

/// `load_dir` with the programs of the units looked up under `sysroot`.
pub fn load_dir_at(
    sysroot: &Path,
    dir: &Path,
    defs: &mut Vec<UnitDef>,
    err: &mut dyn FnMut(LoadError),
) {
    let reading = Reading {
        roots: false,
        later: false,
    };
    load_dir_with(sysroot, dir, defs, err, reading)
}

fn load_dir_with(
    sysroot: &Path,
    dir: &Path,
    defs: &mut Vec<UnitDef>,
    err: &mut dyn FnMut(LoadError),
    reading: Reading,
) {
    defs.clear();
    let files = match unit_files(dir) {
        Ok(f) => f,
        Err(e) => {
            err(LoadError {
                file: dir.shown().to_string(),
                line: 0,
                msg: format!("cannot read the unit directory: {e}"),
            });
            return;
        }
    };
    // Not into the units' roots: PID 1 does not wait on a mount that may
    // hang (their programs are looked up by their starts).
    let set = load_set(sysroot, &files, &[], reading);
    for e in set.errors {
        err(e.error);
    }
    // load_set keeps at most MAX_UNITS valid units.
    defs.reserve_exact(set.units.iter().filter(|c| c.def.is_some()).count());
    defs.extend(set.units.into_iter().filter_map(|c| c.def));
}

/// A unit file's name: `*.unit`.
fn is_unit_file(name: &std::ffi::OsStr) -> bool {
    name.as_encoded_bytes().ends_with(b".unit")
}

/// How many `*.unit` files `dir` holds (0 if it cannot be read), counted
/// without the heap: what PID 1 asks before a reload that loads them.
pub fn count_unit_files(dir: &Path) -> usize {
    let mut n = 0usize;
    let _ = crate::sys::file::for_each_entry(dir, |name, _| {
        n += usize::from(is_unit_file(name));
    });
    n
}

/// The `*.unit` files in `dir`, sorted by name.
fn unit_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    crate::sys::file::for_each_entry(dir, |name, _| {
        if is_unit_file(name) {
            files.push(dir.join(name));
        }
    })?;
    crate::pathname::sort_in_dir(&mut files);
    Ok(files)
}

/// One file of a set being loaded.
struct Candidate {
    path: PathBuf,
    /// The unit name from the file name (may be invalid).
    name: String,
    /// `None` once the unit has any problem.
    def: Option<UnitDef>,
    /// The line of each of its `after` names (`deps`).
    after_lines: AfterLines,
    /// The lines of its ids (`IdLines`, for `check::with_ids`).
    id_lines: IdLines,
    /// Whether its problems are shown (context units of `check` are not).
    reported: bool,
    /// Its `user` is uid 0 by the passwd file, not by name (`check`).
    root_by_uid: bool,
}

struct Found {
    /// Index of the candidate, so that errors can be grouped by file.
    unit: usize,
    reported: bool,
    error: LoadError,
}

struct LoadedSet {
    units: Vec<Candidate>,
    errors: Vec<Found>,
    /// Warnings: said by `check`, not reasons to leave a unit out.
    notes: Vec<Found>,
    /// Indices of `units` by name, stably (the first of a name first):
    /// `after` names are looked up here, not in the whole set each.
    by_name: Vec<usize>,
}

impl LoadedSet {
    fn fail(&mut self, i: usize, line: u32, msg: String) {
        let Some(c) = self.units.get_mut(i) else {
            return;
        };
        c.def = None;
        self.errors.push(Found {
            unit: i,
            reported: c.reported,
            error: LoadError {
                file: c.path.shown().to_string(),
                line,
                msg,
            },
        });
    }

    /// A warning about candidate `i`, which stays loaded. PID 1 does not
    /// say them (a reload would take them for a problem); `check` does.
    fn note(&mut self, i: usize, line: u32, msg: String) {
        let Some(c) = self.units.get(i) else {
            return;
        };
        if c.reported && self.notes.try_reserve(1).is_ok() {
            self.notes.push(Found {
                unit: i,
                reported: true,
                error: LoadError {
                    file: c.path.shown().to_string(),
                    line,
                    msg,
                },
            });
        }
    }

    /// The first unit (by position) named `name`.
    fn index_of(&self, name: &str) -> Option<usize> {
        let name_at = |i: &usize| self.units.get(*i).map(|c| c.name.as_str());
        wren_core::sort::find_first(&self.by_name, name_at, Some(name))
    }

    fn is_valid(&self, i: usize) -> bool {
        self.units.get(i).is_some_and(|c| c.def.is_some())
    }
}

/// Load `files` (reported) and `context` (only there for `after`), then
/// check the set as a whole. Within the result, units keep the order of
/// `files` then `context`; errors are grouped by file, each file's parse
/// errors in `parse_all`'s order. `roots`: a unit's `exec` is looked up in its
/// `root` too (`initctl check`; PID 1 does not read a unit's root).
/// How the files of a set are read beside their own text.
#[derive(Clone, Copy)]
struct Reading {
    /// A unit's `exec` is looked up in its `root` too (`check`; PID 1
    /// does not read a unit's root).
    roots: bool,
    /// A missing program of a unit with an `after` is a warning, not a
    /// refusal (`load_dir_booting`, `check`).
    later: bool,
}

fn load_set(sysroot: &Path, files: &[PathBuf], context: &[PathBuf], reading: Reading) -> LoadedSet {
    // Sized once: a table grown by doubling leaves its smaller copies
    // behind in PID 1's heap after boot.
    let mut set = LoadedSet {
        units: Vec::with_capacity(files.len().saturating_add(context.len())),
        errors: Vec::new(),
        notes: Vec::new(),
        by_name: Vec::new(),
    };
    let mut buf = [0u8; UNIT_FILE_MAX];
    // Only to leave out context files that a named file stands for (the
    // same file, or another of its name): none to compute without context
    // (PID 1's load: N names fewer to copy). Sorted, so that a context of
    // a thousand files is not compared with each of a thousand named ones
    // (`initctl check /etc/units/*.unit`).
    let mut explicit_names: Vec<String> = if context.is_empty() {
        Vec::new()
    } else {
        files.iter().map(|f| name_of(f)).collect()
    };
    wren_core::sort::sort(&mut explicit_names);
    let context = context
        .iter()
        .filter(|c| explicit_names.binary_search(&name_of(c)).is_err());
    // Every candidate before any file is parsed: their paths and names,
    // freed once loaded, then lie together rather than between the
    // definitions' strings, which PID 1 keeps (a freed slot among kept
    // ones stays resident).
    for (path, reported) in files
        .iter()
        .map(|f| (f, true))
        .chain(context.map(|c| (c, false)))
    {
        set.units.push(Candidate {
            path: path.clone(),
            name: name_of(path),
            def: None,
            after_lines: AfterLines::new(),
            id_lines: IdLines::default(),
            reported,
            root_by_uid: false,
        });
    }
    for i in 0..set.units.len() {
        if let Some((def, lines, ids)) = load_file(sysroot, &mut set, i, &mut buf, reading) {
            if let Some(c) = set.units.get_mut(i) {
                c.def = Some(def);
                c.after_lines = lines;
                c.id_lines = ids;
            }
        }
    }

    // Two files of one name (possible only among named files): the
    // candidates in name order (stable: the first of a name comes first),
    // then each run of one name; no copy of a name, and not a scan of the
    // whole set for each unit (quadratic at 1,000 units, issue 10).
    let mut by_name: Vec<usize> = (0..set.units.len()).collect();
    wren_core::sort::sort_by(&mut by_name, |&a, &b| {
        set.units.get(a).map(|c| c.name.as_str()) < set.units.get(b).map(|c| c.name.as_str())
    });
    let mut first: Option<usize> = None;
    set.by_name = by_name;
    for k in 0..set.by_name.len() {
        let Some(&i) = set.by_name.get(k) else { break };
        let name = set.units.get(i).map(|c| c.name.as_str());
        let j = match first {
            Some(j) if set.units.get(j).map(|c| c.name.as_str()) == name => j,
            _ => {
                first = Some(i);
                continue;
            }
        };
        let other = set.units.get(j).map(|c| c.path.shown().to_string());
        let msg = format!(
            "unit `{}` is also defined in {}",
            name.unwrap_or_default(),
            other.unwrap_or_default()
        );
        set.fail(i, 0, msg);
    }

    // Capacity of PID 1's unit table: the first MAX_UNITS valid ones win.
    let mut valid = 0;
    for i in 0..set.units.len() {
        if set.is_valid(i) {
            valid += 1;
            if valid > MAX_UNITS {
                set.fail(
                    i,
                    0,
                    format!("more than {MAX_UNITS} units; this one is not loaded"),
                );
            }
        }
    }

    // Dependencies: drop units whose `after` names a missing or dropped
    // unit, then units in cycles, until nothing changes.
    let targets = deps::targets(&set);
    let (groups, order) = deps::cycle_groups(&targets);
    loop {
        deps::check_after(&mut set, &targets, &order);
        if !deps::drop_cycles(&mut set, &targets, &groups) {
            break;
        }
    }

    wren_core::sort::sort_by_key(&mut set.errors, |f| f.unit);
    set
}

/// The unit name a file stands for: its name without `.unit`.
fn name_of(path: &Path) -> String {
    let file = crate::pathname::file_name(path)
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    match file.strip_suffix(".unit") {
        Some(n) => n.to_owned(),
        None => file,
    }
}

/// Read, parse and check one file on its own; problems go to `set`.
fn load_file(
    sysroot: &Path,
    set: &mut LoadedSet,
    i: usize,
    buf: &mut [u8; UNIT_FILE_MAX],
    reading: Reading,
) -> Option<(UnitDef, AfterLines, IdLines)> {
    let (path, name) = {
        let c = set.units.get(i)?;
        (c.path.clone(), c.name.clone())
    };
    let is_unit_file =
        crate::pathname::file_name(&path).is_some_and(|f| f.as_encoded_bytes().ends_with(b".unit"));
    if !is_unit_file {
        set.fail(i, 0, "the file name must be NAME.unit".into());
        return None;
    }
    if !valid_name(&name) {
        set.fail(
            i,
            0,
            format!(
                "`{}` is not a valid unit name (1-{NAME_MAX} of a-z 0-9 . _ -, starting with a letter or digit)",
                Path::new(&name).shown()
            ),
        );
        return None;
    }
    if let Some(why) = crate::vocab::reserved_name(&name) {
        set.fail(i, 0, why.to_string());
        return None;
    }
    let read_from = match check::in_image(sysroot, &path) {
        None => None,
        Some(Ok(p)) => Some(p),
        Some(Err(e)) => {
            set.fail(i, 0, format!("cannot read: {e}"));
            return None;
        }
    };
    let text = match read_unit_file(read_from.as_deref().unwrap_or(&path), buf) {
        Ok(t) => t,
        Err((line, msg)) => {
            set.fail(i, line, msg);
            return None;
        }
    };
    let mut parse_errors = Vec::new();
    // Those of a line past the first `FILE_PROBLEMS_MAX`; the file's as a
    // whole (a missing `exec`, line 0) are few and always told.
    let (mut lined, mut more) = (0, 0u32);
    let def = parse_with_lines(&name, text, &mut |e| {
        if e.line != 0 && lined == FILE_PROBLEMS_MAX {
            more = more.saturating_add(1);
            return;
        }
        lined += usize::from(e.line != 0);
        parse_errors.push((e.line, e.msg.as_str().to_owned()))
    });
    for (line, msg) in parse_errors {
        set.fail(i, line, msg);
    }
    if more > 0 {
        let what = if more == 1 { "problem" } else { "problems" };
        set.fail(i, 0, format!("{more} more {what} not shown"));
    }
    let (def, lines, ids) = def?;
    let exec = match reading.roots || def.seldom.root.is_none() {
        true => check::check_exec(sysroot, &def),
        false => Ok(()),
    };
    match exec {
        // Only a regular file, found: one that blocks on open (a FIFO)
        // must not hold `check` or `edit`.
        Ok(()) if reading.roots => {
            if let Some(msg) = loader::seccomp_warning(sysroot, &def) {
                set.note(i, def.exec_line, msg);
            }
        }
        Ok(()) => {}
        // What a unit in `after` may bring (a mount of the data partition
        // its program is on): the unit loads, and its start says whether
        // the program is there by then (`execve: No such file or
        // directory`, as for a unit with a `root`); `check` says it.
        Err(check::ExecProblem::Missing(msg)) if reading.later && !def.after.is_empty() => {
            let msg = format!("{msg} (loaded: a unit in `after` may bring it before the start)");
            set.note(i, def.exec_line, msg);
        }
        Err(check::ExecProblem::Missing(msg) | check::ExecProblem::Bad(msg)) => {
            set.fail(i, def.exec_line, msg);
            return None;
        }
    }
    if let Err(msg) = check::check_store_reach(&def) {
        let [_, _, _, root_line] = ids;
        set.fail(i, root_line, msg);
        return None;
    }
    Some((def, lines, ids))
}

/// The problems of one file with a line told one by one; past them, a
/// count. A file
/// of garbage (8 KiB of one-letter lines, 4,096 problems) would
/// otherwise be 4,096 kernel log lines (about 9 ms each on a 115200-baud
/// console, the loop and the watchdog's feeding waiting on them) and as
/// many strings held until the load ends (1.4 MB measured), which a
/// reload under strict overcommit may not have.
const FILE_PROBLEMS_MAX: usize = 8;

/// Read a unit file into `buf`: (line, message) when it cannot be read,
/// is not a regular file, is larger than the buffer or is not UTF-8.
///
/// PID 1 runs this at boot, before any shell exists: a FIFO named
/// `x.unit` must not block it (its type checked before the open, and
/// again after it, O_NONBLOCK, in case it was replaced in between), nor
/// a terminal become its controlling one (O_NOCTTY).
fn read_unit_file<'b>(
    path: &Path,
    buf: &'b mut [u8; UNIT_FILE_MAX],
) -> Result<&'b str, (u32, String)> {
    use rustix::fs::{FileType, Mode, OFlags};
    use rustix::io::Errno;
    let cannot = |e: Errno| (0, format!("cannot read: {}", std::io::Error::from(e)));
    // Not opened unless regular: opening a device has effects of its own
    // (an `x.unit` linked to /dev/watchdog would arm it at every boot).
    let st = rustix::fs::stat(path).map_err(cannot)?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        return Err((0, "not a regular file".into()));
    }
    let fd = crate::sys::file::openat(
        rustix::fs::CWD,
        path,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY,
        Mode::empty(),
    )
    .map_err(cannot)?;
    let st = rustix::fs::fstat(&fd).map_err(cannot)?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        return Err((0, "not a regular file".into()));
    }
    let mut f = std::fs::File::from(fd);
    let mut len = 0;
    while let Some(rest) = buf.get_mut(len..) {
        if rest.is_empty() {
            break;
        }
        match f.read(rest) {
            Ok(0) => break,
            // All its fstat size read: no read for the end of the file
            // (one system call a unit at boot, issue 10).
            Ok(n) if i64::try_from(len.saturating_add(n)).is_ok_and(|l| l == st.st_size) => {
                len += n;
                break;
            }
            Ok(n) => len += n,
            Err(e) if crate::sys::file::is_errno(&e, rustix::io::Errno::INTR) => {}
            Err(e) => return Err((0, format!("cannot read: {e}"))),
        }
    }
    if len == UNIT_FILE_MAX {
        let mut more = [0u8; 1];
        if matches!(f.read(&mut more), Ok(n) if n > 0) {
            return Err((0, format!("file larger than {UNIT_FILE_MAX} bytes")));
        }
    }
    let bytes = buf.get(..len).unwrap_or_default();
    std::str::from_utf8(bytes).map_err(|e| {
        let good = bytes.get(..e.valid_up_to()).unwrap_or_default();
        let line = good.iter().filter(|b| **b == b'\n').count() + 1;
        (
            u32::try_from(line).unwrap_or(u32::MAX),
            "not valid UTF-8".to_owned(),
        )
    })
}

#[cfg(test)]
mod tests;
