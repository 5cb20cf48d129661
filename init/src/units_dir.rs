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

use crate::unit::{parse_all, valid_name, UnitDef, MAX_UNITS, NAME_MAX, UNIT_FILE_MAX};
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The unit directory PID 1 reads unless `wren.units=DIR` says otherwise.
pub const UNIT_DIR: &str = "/etc/units";

/// Symlinks followed while looking up a program under a sysroot (the
/// kernel's own limit).
const MAX_SYMLINKS: usize = 40;

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
pub fn load_dir(
    dir: &Path,
    defs: &mut heapless::Vec<UnitDef, MAX_UNITS>,
    err: &mut dyn FnMut(LoadError),
) {
    load_dir_at(Path::new("/"), dir, defs, err)
}

/// `load_dir` with the programs of the units looked up under `sysroot`.
pub fn load_dir_at(
    sysroot: &Path,
    dir: &Path,
    defs: &mut heapless::Vec<UnitDef, MAX_UNITS>,
    err: &mut dyn FnMut(LoadError),
) {
    defs.clear();
    let files = match unit_files(dir) {
        Ok(f) => f,
        Err(e) => {
            err(LoadError {
                file: dir.display().to_string(),
                line: 0,
                msg: format!("cannot read the unit directory: {e}"),
            });
            return;
        }
    };
    let set = load_set(sysroot, &files, &[]);
    for e in set.errors {
        err(e.error);
    }
    for def in set.units.into_iter().filter_map(|c| c.def) {
        // load_set keeps at most MAX_UNITS valid units.
        let _ = defs.push(def);
    }
}

/// `initctl check [FILE...]`: validate files (or a directory when one path
/// names a directory) without applying them. Writes one line per problem
/// to `out`; returns true when everything is valid.
///
/// No paths means `UNIT_DIR`. A directory is checked as a set, as
/// `load_dir` would load it. Files given by name are checked together,
/// with the other `*.unit` files of their directories as context: an
/// `after` may name a unit next to the file, and that unit must be valid,
/// but only the named files' own problems are printed. A named file takes
/// the place of the unit of the same name in that context.
pub fn check(paths: &[&Path], out: &mut dyn std::io::Write) -> bool {
    check_at(Path::new("/"), paths, out)
}

/// `check` with programs looked up under `sysroot` (e.g. an image's root
/// directory on a build host).
pub fn check_at(sysroot: &Path, paths: &[&Path], out: &mut dyn std::io::Write) -> bool {
    let default = [Path::new(UNIT_DIR)];
    let paths = if paths.is_empty() {
        &default[..]
    } else {
        paths
    };
    let mut tally = Tally::default();
    let mut loose: Vec<PathBuf> = Vec::new();
    for p in paths {
        if p.is_dir() {
            match unit_files(p) {
                Ok(files) if files.is_empty() => {
                    tally.print(
                        out,
                        &LoadError {
                            file: p.display().to_string(),
                            line: 0,
                            msg: "no *.unit files (PID 1 would start the rescue shell)".into(),
                        },
                    );
                }
                Ok(files) => tally.add(out, load_set(sysroot, &files, &[])),
                Err(e) => tally.print(
                    out,
                    &LoadError {
                        file: p.display().to_string(),
                        line: 0,
                        msg: format!("cannot read the directory: {e}"),
                    },
                ),
            }
        } else {
            loose.push(p.to_path_buf());
        }
    }
    if !loose.is_empty() {
        let mut context: Vec<PathBuf> = Vec::new();
        for f in &loose {
            let parent = match f.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            // Unreadable context is no problem of the files being checked.
            for c in unit_files(parent).unwrap_or_default() {
                if !context.contains(&c) {
                    context.push(c);
                }
            }
        }
        tally.add(out, load_set(sysroot, &loose, &context));
    }
    tally.summary(out)
}

/// Check `files` as replacements of (or additions to) the units in `dir`:
/// what `initctl edit` needs before installing an edited copy. A file
/// `NAME.unit` takes the place of `dir`'s unit `NAME`; only the problems
/// of `files` are printed, then the summary line.
pub fn check_in_context(
    sysroot: &Path,
    files: &[&Path],
    dir: &Path,
    out: &mut dyn std::io::Write,
) -> bool {
    let files: Vec<PathBuf> = files.iter().map(|f| f.to_path_buf()).collect();
    let context = unit_files(dir).unwrap_or_default();
    let mut tally = Tally::default();
    tally.add(out, load_set(sysroot, &files, &context));
    tally.summary(out)
}

/// Counts for the summary line of `check`.
#[derive(Default)]
struct Tally {
    errors: usize,
    units: usize,
    ok: usize,
}

impl Tally {
    fn print(&mut self, out: &mut dyn std::io::Write, e: &LoadError) {
        self.errors += 1;
        // A closed stdout must not make check lie about validity.
        let _ = writeln!(out, "{e}");
    }

    fn add(&mut self, out: &mut dyn std::io::Write, set: LoadedSet) {
        for e in set.errors.iter().filter(|e| e.reported) {
            self.print(out, &e.error);
        }
        for c in set.units.iter().filter(|c| c.reported) {
            self.units += 1;
            self.ok += usize::from(c.def.is_some());
        }
    }

    fn summary(&self, out: &mut dyn std::io::Write) -> bool {
        let plural =
            |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        let _ = if self.errors == 0 {
            writeln!(out, "{} ok", plural(self.units, "unit", "units"))
        } else {
            writeln!(
                out,
                "{}; {} of {} ok",
                plural(self.errors, "error", "errors"),
                self.ok,
                plural(self.units, "unit", "units")
            )
        };
        self.errors == 0
    }
}

/// The `*.unit` files in `dir`, sorted by name.
fn unit_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().as_encoded_bytes().ends_with(b".unit") {
            files.push(dir.join(entry.file_name()));
        }
    }
    files.sort();
    Ok(files)
}

/// One file of a set being loaded.
struct Candidate {
    path: PathBuf,
    /// The unit name from the file name (may be invalid).
    name: String,
    /// `None` once the unit has any problem.
    def: Option<UnitDef>,
    /// Whether its problems are shown (context units of `check` are not).
    reported: bool,
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
                file: c.path.display().to_string(),
                line,
                msg,
            },
        });
    }

    fn index_of(&self, name: &str) -> Option<usize> {
        self.units.iter().position(|c| c.name == name)
    }

    fn is_valid(&self, i: usize) -> bool {
        self.units.get(i).is_some_and(|c| c.def.is_some())
    }

    /// Indexes of the valid units `i` starts after, with the line naming
    /// each (all of them exist and are valid once `check_after` is done).
    fn deps(&self, i: usize) -> Vec<(usize, u32)> {
        let Some(def) = self.units.get(i).and_then(|c| c.def.as_ref()) else {
            return Vec::new();
        };
        def.after
            .iter()
            .zip(def.after_lines.iter())
            .filter_map(|(n, l)| self.index_of(n).map(|j| (j, *l)))
            .collect()
    }
}

/// Load `files` (reported) and `context` (only there for `after`), then
/// check the set as a whole. Within the result, units keep the order of
/// `files` then `context`; errors are grouped by file, in line order for
/// each file's parse errors.
fn load_set(sysroot: &Path, files: &[PathBuf], context: &[PathBuf]) -> LoadedSet {
    let mut set = LoadedSet {
        units: Vec::new(),
        errors: Vec::new(),
    };
    let mut buf = [0u8; UNIT_FILE_MAX];
    let explicit_names: Vec<String> = files.iter().map(|f| unit_name(f)).collect();
    let context = context
        .iter()
        .filter(|c| !files.contains(c) && !explicit_names.contains(&unit_name(c)));
    for (path, reported) in files
        .iter()
        .map(|f| (f, true))
        .chain(context.map(|c| (c, false)))
    {
        let i = set.units.len();
        set.units.push(Candidate {
            path: path.clone(),
            name: unit_name(path),
            def: None,
            reported,
        });
        if let Some(def) = load_file(sysroot, &mut set, i, &mut buf) {
            if let Some(c) = set.units.get_mut(i) {
                c.def = Some(def);
            }
        }
    }

    // Two files of one name (possible only among named files).
    for i in 0..set.units.len() {
        let name = set.units.get(i).map(|c| c.name.clone()).unwrap_or_default();
        if let Some(j) = set.units.iter().position(|c| c.name == name) {
            if j < i {
                let other = set.units.get(j).map(|c| c.path.display().to_string());
                set.fail(
                    i,
                    0,
                    format!(
                        "unit `{name}` is also defined in {}",
                        other.unwrap_or_default()
                    ),
                );
            }
        }
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
    loop {
        check_after(&mut set);
        if !drop_cycles(&mut set) {
            break;
        }
    }

    set.errors.sort_by_key(|f| f.unit);
    set
}

/// The unit name a file stands for: its name without `.unit`.
fn unit_name(path: &Path) -> String {
    let file = path
        .file_name()
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
) -> Option<UnitDef> {
    let (path, name) = {
        let c = set.units.get(i)?;
        (c.path.clone(), c.name.clone())
    };
    let is_unit_file = path
        .file_name()
        .is_some_and(|f| f.as_encoded_bytes().ends_with(b".unit"));
    if !is_unit_file {
        set.fail(i, 0, "the file name must be NAME.unit".into());
        return None;
    }
    if !valid_name(&name) {
        set.fail(
            i,
            0,
            format!(
                "`{name}` is not a valid unit name (1-{NAME_MAX} of a-z 0-9 . _ -, starting with a letter or digit)"
            ),
        );
        return None;
    }
    let text = match read_unit_file(&path, buf) {
        Ok(t) => t,
        Err((line, msg)) => {
            set.fail(i, line, msg);
            return None;
        }
    };
    let mut parse_errors = Vec::new();
    let def = parse_all(&name, text, &mut |e| {
        parse_errors.push((e.line, e.msg.as_str().to_owned()))
    });
    for (line, msg) in parse_errors {
        set.fail(i, line, msg);
    }
    let def = def?;
    if let Err(msg) = check_exec(sysroot, &def) {
        set.fail(i, def.exec_line, msg);
        return None;
    }
    Some(def)
}

/// Read a unit file into `buf`: (line, message) when it cannot be read,
/// is larger than the buffer or is not UTF-8.
fn read_unit_file<'b>(
    path: &Path,
    buf: &'b mut [u8; UNIT_FILE_MAX],
) -> Result<&'b str, (u32, String)> {
    let mut f = std::fs::File::open(path).map_err(|e| (0, format!("cannot read: {e}")))?;
    let meta = f.metadata().map_err(|e| (0, format!("cannot read: {e}")))?;
    if !meta.is_file() {
        return Err((0, "not a regular file".into()));
    }
    let mut len = 0;
    while let Some(rest) = buf.get_mut(len..) {
        if rest.is_empty() {
            break;
        }
        match f.read(rest) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
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

/// The program of `def` exists (under its `root`, if any), is a regular
/// file and has an execute bit.
fn check_exec(sysroot: &Path, def: &UnitDef) -> Result<(), String> {
    let Some(prog) = def.exec.first() else {
        return Err("exec: no program given".into());
    };
    let base = match &def.root {
        Some(root) => lookup_path(sysroot, root),
        None => sysroot.to_path_buf(),
    };
    let where_ = match &def.root {
        Some(root) => format!(" under root `{root}`"),
        None => String::new(),
    };
    let meta = match lookup(&base, prog) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!("exec: `{prog}` not found{where_}"));
        }
        Err(e) => return Err(format!("exec: `{prog}`{where_}: {e}")),
    };
    if !meta.is_file() {
        return Err(format!("exec: `{prog}`{where_} is not a regular file"));
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(format!("exec: `{prog}`{where_} is not executable"));
    }
    Ok(())
}

/// `path` (absolute) as a path on this machine when `/` is `base`.
fn lookup_path(base: &Path, path: &str) -> PathBuf {
    base.join(path.trim_start_matches('/'))
}

/// Metadata of the absolute `path` as seen by a process whose root is
/// `base`: symlinks, absolute ones included, resolve inside `base`, as
/// they will once the unit runs (pivot_root) or the image boots.
fn lookup(base: &Path, path: &str) -> std::io::Result<std::fs::Metadata> {
    if base == Path::new("/") {
        return std::fs::metadata(path);
    }
    let mut pending: Vec<String> = components(path).rev().collect();
    let mut done: Vec<String> = Vec::new();
    let mut links = 0;
    while let Some(c) = pending.pop() {
        if c == ".." {
            done.pop();
            continue;
        }
        let mut here = base.to_path_buf();
        here.extend(done.iter());
        here.push(&c);
        let meta = std::fs::symlink_metadata(&here)?;
        if !meta.file_type().is_symlink() {
            done.push(c);
            continue;
        }
        links += 1;
        if links > MAX_SYMLINKS {
            return Err(std::io::Error::from_raw_os_error(libc::ELOOP));
        }
        let target = std::fs::read_link(&here)?;
        let target = target.to_string_lossy();
        if target.starts_with('/') {
            done.clear();
        }
        pending.extend(components(&target).rev());
    }
    let mut full = base.to_path_buf();
    full.extend(done.iter());
    std::fs::metadata(full)
}

fn components(path: &str) -> impl DoubleEndedIterator<Item = String> + '_ {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(str::to_owned)
}

/// Drop valid units whose `after` names no unit or an invalid one, until
/// nothing changes. Returns whether any unit was dropped.
fn check_after(set: &mut LoadedSet) -> bool {
    let mut dropped_any = false;
    loop {
        let mut dropped = false;
        for i in 0..set.units.len() {
            let Some(def) = set.units.get(i).and_then(|c| c.def.as_ref()) else {
                continue;
            };
            let mut problems = Vec::new();
            for (name, line) in def.after.iter().zip(def.after_lines.iter()) {
                match set.index_of(name) {
                    None => problems.push((*line, format!("after: no unit named `{name}`"))),
                    Some(j) if !set.is_valid(j) => {
                        problems.push((*line, format!("after: unit `{name}` is invalid")))
                    }
                    Some(_) => {}
                }
            }
            if !problems.is_empty() {
                dropped = true;
                for (line, msg) in problems {
                    set.fail(i, line, msg);
                }
            }
        }
        if !dropped {
            return dropped_any;
        }
        dropped_any = true;
    }
}

/// Find every valid unit on an `after` cycle, report the shortest cycle
/// through each and drop them all. Returns whether any was dropped.
fn drop_cycles(set: &mut LoadedSet) -> bool {
    let n = set.units.len();
    let deps: Vec<Vec<(usize, u32)>> = (0..n).map(|i| set.deps(i)).collect();
    let mut cycles: Vec<(usize, u32, Vec<usize>)> = Vec::new();
    for start in 0..n {
        if !set.is_valid(start) {
            continue;
        }
        // Breadth-first from `start`; `prev` leads back along the path.
        let mut prev: Vec<Option<usize>> = vec![None; n];
        let mut seen = vec![false; n];
        let mut queue = std::collections::VecDeque::new();
        let mut closing = None;
        for &(d, _) in deps.get(start).into_iter().flatten() {
            if let Some(s) = seen.get_mut(d) {
                if !*s {
                    *s = true;
                    queue.push_back(d);
                }
            }
        }
        'bfs: while let Some(u) = queue.pop_front() {
            if u == start {
                closing = Some(u);
                break;
            }
            for &(d, _) in deps.get(u).into_iter().flatten() {
                if d == start {
                    if let Some(p) = prev.get_mut(start) {
                        *p = Some(u);
                    }
                    closing = Some(start);
                    break 'bfs;
                }
                if let Some(s) = seen.get_mut(d) {
                    if !*s {
                        *s = true;
                        if let Some(p) = prev.get_mut(d) {
                            *p = Some(u);
                        }
                        queue.push_back(d);
                    }
                }
            }
        }
        if closing.is_none() {
            continue;
        }
        // Walk back from `start` to its first step: start <- ... <- first.
        let mut path = vec![start];
        let mut cur = prev.get(start).copied().flatten();
        while let Some(u) = cur {
            path.push(u);
            cur = prev.get(u).copied().flatten();
        }
        path.push(start);
        path.reverse();
        // path = start, first, ..., start
        let first = path.get(1).copied().unwrap_or(start);
        let line = deps
            .get(start)
            .and_then(|d| d.iter().find(|(j, _)| *j == first))
            .map(|(_, l)| *l)
            .unwrap_or(0);
        cycles.push((start, line, path));
    }
    let any = !cycles.is_empty();
    for (unit, line, path) in cycles {
        let names: Vec<&str> = path
            .iter()
            .filter_map(|j| set.units.get(*j).map(|c| c.name.as_str()))
            .collect();
        let msg = format!("after: cycle {}", names.join(" -> "));
        set.fail(unit, line, msg);
    }
    any
}
