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

pub mod users;
use crate::unit::{parse_all, UnitDef};
use crate::vocab::{valid_name, MAX_UNITS, NAME_MAX, UNIT_FILE_MAX};
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The unit directory PID 1 reads unless `wren.units=DIR` says otherwise.
pub const UNIT_DIR: &str = crate::boot::cmdline::DEFAULT_UNITS_DIR;

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
/// nothing changes; then report, for each dropped unit, every `after` name
/// that is missing or invalid in the end (so the result does not depend on
/// the order units were looked at). Returns whether any unit was dropped.
fn check_after(set: &mut LoadedSet) -> bool {
    let n = set.units.len();
    let mut valid: Vec<bool> = (0..n).map(|i| set.is_valid(i)).collect();
    let targets: Vec<Vec<(Option<usize>, u32)>> = (0..n)
        .map(|i| {
            set.units
                .get(i)
                .and_then(|c| c.def.as_ref())
                .map(|def| {
                    def.after
                        .iter()
                        .zip(def.after_lines.iter())
                        .map(|(name, line)| (set.index_of(name), *line))
                        .collect()
                })
                .unwrap_or_default()
        })
        .collect();
    let ok = |valid: &[bool], t: &Option<usize>| {
        t.is_some_and(|j| valid.get(j).copied().unwrap_or(false))
    };
    let mut dropped: Vec<usize> = Vec::new();
    loop {
        let before = dropped.len();
        for i in 0..n {
            let live = valid.get(i).copied().unwrap_or(false);
            let deps = targets.get(i).map(Vec::as_slice).unwrap_or_default();
            if live && deps.iter().any(|(t, _)| !ok(&valid, t)) {
                if let Some(v) = valid.get_mut(i) {
                    *v = false;
                }
                dropped.push(i);
            }
        }
        if dropped.len() == before {
            break;
        }
    }
    dropped.sort_unstable();
    for &i in &dropped {
        let Some(def) = set.units.get(i).and_then(|c| c.def.clone()) else {
            continue;
        };
        let mut problems = Vec::new();
        for ((name, line), (t, _)) in def
            .after
            .iter()
            .zip(def.after_lines.iter())
            .zip(targets.get(i).into_iter().flatten())
        {
            match t {
                None => problems.push((*line, format!("after: no unit named `{name}`"))),
                Some(_) if !ok(&valid, t) => {
                    problems.push((*line, format!("after: unit `{name}` is invalid")))
                }
                Some(_) => {}
            }
        }
        for (line, msg) in problems {
            set.fail(i, line, msg);
        }
    }
    !dropped.is_empty()
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            static N: AtomicUsize = AtomicUsize::new(0);
            let p = std::env::temp_dir().join(format!(
                "wren-units-{}-{tag}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = fs::remove_dir_all(&p);
            fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }

        fn path(&self) -> &Path {
            &self.0
        }

        /// Write `rel` (creating parents) and return its full path.
        fn file(&self, rel: &str, text: &str) -> PathBuf {
            let p = self.0.join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(&p, text).unwrap();
            p
        }

        /// An executable script at `rel`; returns its absolute path.
        fn prog(&self, rel: &str) -> String {
            let p = self.file(rel, "#!/bin/sh\n");
            fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
            p.to_str().unwrap().to_owned()
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// A unit directory with a `bin/ok` program to run.
    struct Fixture {
        tmp: TempDir,
        units: PathBuf,
        ok: String,
    }

    impl Fixture {
        fn new(tag: &str) -> Self {
            let tmp = TempDir::new(tag);
            let ok = tmp.prog("bin/ok");
            let units = tmp.path().join("units");
            fs::create_dir_all(&units).unwrap();
            Fixture { tmp, units, ok }
        }

        /// Write `units/NAME.unit` running `bin/ok` plus `extra` lines.
        fn unit(&self, name: &str, extra: &str) -> PathBuf {
            self.raw(name, &format!("exec = {}\n{extra}", self.ok))
        }

        fn raw(&self, name: &str, text: &str) -> PathBuf {
            let p = self.units.join(format!("{name}.unit"));
            fs::write(&p, text).unwrap();
            p
        }

        fn load(&self) -> (Vec<String>, Vec<String>) {
            self.load_at(Path::new("/"))
        }

        /// Names loaded, and errors as displayed.
        fn load_at(&self, sysroot: &Path) -> (Vec<String>, Vec<String>) {
            let mut defs = heapless::Vec::new();
            let mut errs = Vec::new();
            load_dir_at(sysroot, &self.units, &mut defs, &mut |e| {
                errs.push(e.to_string())
            });
            let names = defs.iter().map(|d| d.name.as_str().to_owned()).collect();
            (names, errs)
        }

        fn path(&self, name: &str) -> String {
            self.units
                .join(format!("{name}.unit"))
                .display()
                .to_string()
        }
    }

    fn check_out(sysroot: &Path, paths: &[&Path]) -> (bool, Vec<String>) {
        let mut out = Vec::new();
        let ok = check_at(sysroot, paths, &mut out);
        let text = String::from_utf8(out).unwrap();
        (ok, text.lines().map(str::to_owned).collect())
    }

    #[test]
    fn load_error_display() {
        let e = LoadError {
            file: "/etc/units/a.unit".into(),
            line: 3,
            msg: "m".into(),
        };
        assert_eq!(e.to_string(), "/etc/units/a.unit:3: m");
        let e = LoadError { line: 0, ..e };
        assert_eq!(e.to_string(), "/etc/units/a.unit: m");
    }

    #[test]
    fn loads_valid_units_sorted_by_name() {
        let f = Fixture::new("valid");
        f.unit("web", "after = net\ntype = service");
        f.unit("net", "type = oneshot");
        f.unit("0first", "");
        f.tmp.file("units/notes.txt", "not a unit");
        f.tmp.file("units/web.unit~", "garbage");
        f.tmp.file("units/web.unit.swp", "garbage");
        let mut defs = heapless::Vec::new();
        let mut errs = Vec::new();
        load_dir(&f.units, &mut defs, &mut |e| errs.push(e));
        assert_eq!(errs, []);
        let names: Vec<&str> = defs.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["0first", "net", "web"]);
        let web = defs.iter().find(|d| d.name == "web").unwrap();
        assert_eq!(web.after.iter().next().map(|n| n.as_str()), Some("net"));
        assert_eq!(
            defs.iter().find(|d| d.name == "net").unwrap().kind,
            crate::unit::Kind::Oneshot
        );
    }

    #[test]
    fn defs_is_replaced_not_appended() {
        let f = Fixture::new("clear");
        f.unit("a", "");
        let mut defs = heapless::Vec::new();
        defs.push(UnitDef::with_defaults("stale")).unwrap();
        load_dir(&f.units, &mut defs, &mut |_| {});
        assert_eq!(defs.len(), 1);
        assert_eq!(defs[0].name, "a");
    }

    #[test]
    fn parse_errors_are_reported_with_full_path_and_line() {
        let f = Fixture::new("parse");
        f.unit("good", "");
        f.unit("bad", "# comment\nmemroy.max = 1M\ntype = nope");
        let (names, errs) = f.load();
        assert_eq!(names, ["good"]);
        let bad = f.path("bad");
        assert_eq!(
            errs,
            [
                format!("{bad}:3: unknown key `memroy.max` (did you mean `memory.max`?)"),
                format!("{bad}:4: type: expected `service` or `oneshot`, got `nope`"),
            ]
        );
        f.raw("noexec", "description = x\n");
        let (_, errs) = f.load();
        assert!(errs.contains(&format!("{}: missing `exec`", f.path("noexec"))));
    }

    #[test]
    fn bad_file_names() {
        let f = Fixture::new("names");
        f.unit("Upper", "");
        f.unit("-dash", "");
        f.unit(&"n".repeat(33), "");
        f.unit("ok", "");
        let (names, errs) = f.load();
        assert_eq!(names, ["ok"]);
        assert_eq!(errs.len(), 3);
        assert_eq!(
            errs[1],
            format!(
                "{}: `Upper` is not a valid unit name (1-32 of a-z 0-9 . _ -, starting with a letter or digit)",
                f.path("Upper")
            )
        );
        assert!(errs.iter().all(|e| e.contains("is not a valid unit name")));
    }

    #[test]
    fn file_size_limit() {
        let f = Fixture::new("size");
        let head = format!("exec = {}\n", f.ok);
        let pad = |total: usize| {
            let mut t = head.clone();
            while t.len() < total {
                let n = (total - t.len()).min(80);
                t.push_str(&format!("#{}\n", "x".repeat(n.saturating_sub(2))));
                if t.len() > total {
                    t.truncate(total - 1);
                    t.push('\n');
                }
            }
            t
        };
        let exact = pad(UNIT_FILE_MAX);
        assert_eq!(exact.len(), UNIT_FILE_MAX);
        f.raw("exact", &exact);
        let over = pad(UNIT_FILE_MAX + 1);
        assert_eq!(over.len(), UNIT_FILE_MAX + 1);
        f.raw("over", &over);
        let (names, errs) = f.load();
        assert_eq!(names, ["exact"]);
        assert_eq!(
            errs,
            [format!("{}: file larger than 8192 bytes", f.path("over"))]
        );
    }

    #[test]
    fn invalid_utf8_names_the_line() {
        let f = Fixture::new("utf8");
        let p = f.units.join("bin.unit");
        let mut bytes = format!("exec = {}\ndescription = caf", f.ok).into_bytes();
        bytes.extend_from_slice(&[0xe9, b'\n']);
        fs::write(&p, bytes).unwrap();
        let (names, errs) = f.load();
        assert!(names.is_empty());
        assert_eq!(errs, [format!("{}:2: not valid UTF-8", p.display())]);
    }

    #[test]
    fn a_directory_named_like_a_unit() {
        let f = Fixture::new("dirunit");
        fs::create_dir(f.units.join("d.unit")).unwrap();
        let (names, errs) = f.load();
        assert!(names.is_empty());
        assert_eq!(errs, [format!("{}: not a regular file", f.path("d"))]);
    }

    #[test]
    fn missing_directory() {
        let f = Fixture::new("nodir");
        let mut defs = heapless::Vec::new();
        let mut errs = Vec::new();
        let dir = f.tmp.path().join("absent");
        load_dir(&dir, &mut defs, &mut |e| errs.push(e));
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].line, 0);
        assert!(errs[0].msg.starts_with("cannot read the unit directory"));
        assert_eq!(errs[0].file, dir.display().to_string());
    }

    #[test]
    fn exec_must_exist_be_a_file_and_executable() {
        let f = Fixture::new("exec");
        let dir = f.tmp.path().join("bin");
        let plain = f.tmp.file("bin/plain", "data");
        fs::set_permissions(&plain, fs::Permissions::from_mode(0o644)).unwrap();
        let only_group_x = f.tmp.prog("bin/gx");
        fs::set_permissions(&only_group_x, fs::Permissions::from_mode(0o610)).unwrap();
        f.raw("missing", &format!("\n\nexec = {}/nope -x", dir.display()));
        f.raw("isdir", &format!("exec = {}", dir.display()));
        f.raw("noexec", &format!("exec = {}", plain.display()));
        f.raw("gx", &format!("exec = {only_group_x}"));
        let (names, errs) = f.load();
        assert_eq!(names, ["gx"]);
        let d = dir.display();
        assert_eq!(
            errs,
            [
                format!("{}:1: exec: `{d}` is not a regular file", f.path("isdir")),
                format!("{}:3: exec: `{d}/nope` not found", f.path("missing")),
                format!(
                    "{}:1: exec: `{d}/plain` is not executable",
                    f.path("noexec")
                ),
            ]
        );
    }

    #[test]
    fn exec_is_looked_up_under_root() {
        let f = Fixture::new("root");
        let rootfs = f.tmp.path().join("rootfs");
        f.tmp.prog("rootfs/bin/app");
        f.raw(
            "in",
            &format!("root = {}\nexec = /bin/app --serve", rootfs.display()),
        );
        // The same path on the host does not exist: found only under root.
        f.raw(
            "out",
            &format!("root = {}\nexec = /bin/missing", rootfs.display()),
        );
        f.raw(
            "noroot",
            &format!("root = {}/absent\nexec = /bin/app", f.tmp.path().display()),
        );
        let (names, errs) = f.load();
        assert_eq!(names, ["in"]);
        assert_eq!(
            errs,
            [
                format!(
                    "{}:2: exec: `/bin/app` not found under root `{}/absent`",
                    f.path("noroot"),
                    f.tmp.path().display()
                ),
                format!(
                    "{}:2: exec: `/bin/missing` not found under root `{}`",
                    f.path("out"),
                    rootfs.display()
                ),
            ]
        );
    }

    #[test]
    fn sysroot_resolves_absolute_symlinks_inside_it() {
        let f = Fixture::new("sysroot");
        let sys = f.tmp.path().join("image");
        f.tmp.prog("image/bin/busybox");
        fs::create_dir_all(sys.join("usr")).unwrap();
        // busybox-style absolute link, and a merged-/usr directory link.
        std::os::unix::fs::symlink("/bin/busybox", sys.join("bin/sh")).unwrap();
        std::os::unix::fs::symlink("/bin", sys.join("usr/bin")).unwrap();
        std::os::unix::fs::symlink("../bin/./busybox", sys.join("usr/rel")).unwrap();
        std::os::unix::fs::symlink("/nowhere", sys.join("bin/dangling")).unwrap();
        std::os::unix::fs::symlink("/bin/loop2", sys.join("bin/loop1")).unwrap();
        std::os::unix::fs::symlink("/bin/loop1", sys.join("bin/loop2")).unwrap();
        f.raw("sh", "exec = /bin/sh -l");
        f.raw("usrbin", "exec = /usr/bin/sh");
        f.raw("rel", "exec = /usr/rel");
        f.raw("dotdot", "exec = /../../bin/busybox");
        f.raw("dangling", "exec = /bin/dangling");
        f.raw("loop", "exec = /bin/loop1");
        let (names, errs) = f.load_at(&sys);
        assert_eq!(names, ["dotdot", "rel", "sh", "usrbin"]);
        assert_eq!(errs.len(), 2);
        assert_eq!(
            errs[0],
            format!("{}:1: exec: `/bin/dangling` not found", f.path("dangling"))
        );
        assert!(
            errs[1].starts_with(&format!("{}:1: exec: `/bin/loop1`: ", f.path("loop"))),
            "{}",
            errs[1]
        );
    }

    #[test]
    fn after_must_name_a_valid_unit() {
        let f = Fixture::new("after");
        f.unit("a", "after = b");
        f.unit("b", "\nafter = c");
        f.unit("c", "type = bogus");
        f.unit("d", "after = a\nafter = ghost");
        f.unit("e", "");
        f.unit("g", "after = e");
        let (names, errs) = f.load();
        assert_eq!(names, ["e", "g"]);
        assert_eq!(
            errs,
            [
                format!("{}:2: after: unit `b` is invalid", f.path("a")),
                format!("{}:3: after: unit `c` is invalid", f.path("b")),
                format!(
                    "{}:2: type: expected `service` or `oneshot`, got `bogus`",
                    f.path("c")
                ),
                format!("{}:2: after: unit `a` is invalid", f.path("d")),
                format!("{}:3: after: no unit named `ghost`", f.path("d")),
            ]
        );
    }

    #[test]
    fn after_cycles_are_reported_for_each_member() {
        let f = Fixture::new("cycle");
        f.unit("a", "after = b");
        f.unit("b", "after = c");
        f.unit("c", "after = a");
        f.unit("x", "after = y");
        f.unit("y", "after = e x");
        f.unit("e", "");
        f.unit("dep", "after = e\nafter = a");
        let (names, errs) = f.load();
        assert_eq!(names, ["e"]);
        assert_eq!(
            errs,
            [
                format!("{}:2: after: cycle a -> b -> c -> a", f.path("a")),
                format!("{}:2: after: cycle b -> c -> a -> b", f.path("b")),
                format!("{}:2: after: cycle c -> a -> b -> c", f.path("c")),
                format!("{}:3: after: unit `a` is invalid", f.path("dep")),
                format!("{}:2: after: cycle x -> y -> x", f.path("x")),
                format!("{}:2: after: cycle y -> x -> y", f.path("y")),
            ]
        );
    }

    #[test]
    fn shortest_cycle_is_reported() {
        let f = Fixture::new("short");
        // a is on a long and a short cycle; its message shows the short one.
        f.unit("a", "after = b\nafter = d");
        f.unit("b", "after = c");
        f.unit("c", "after = a");
        f.unit("d", "after = a");
        let (names, errs) = f.load();
        assert!(names.is_empty());
        assert_eq!(
            errs[0],
            format!("{}:3: after: cycle a -> d -> a", f.path("a"))
        );
        assert_eq!(errs.len(), 4);
    }

    #[test]
    fn more_units_than_the_table_holds() {
        let f = Fixture::new("cap");
        for i in 0..=MAX_UNITS {
            f.unit(&format!("u{i:03}"), "");
        }
        // An invalid unit takes no slot.
        f.raw("u000a", "exec = /nonexistent/program");
        let (names, errs) = f.load();
        assert_eq!(names.len(), MAX_UNITS);
        assert_eq!(names.last().map(String::as_str), Some("u063"));
        assert_eq!(errs.len(), 2);
        assert_eq!(
            errs[1],
            format!(
                "{}: more than 64 units; this one is not loaded",
                f.path("u064")
            )
        );
    }

    #[test]
    fn check_a_directory() {
        let f = Fixture::new("checkdir");
        f.unit("a", "");
        f.unit("b", "after = a");
        let (ok, out) = check_out(Path::new("/"), &[&f.units]);
        assert!(ok);
        assert_eq!(out, ["2 units ok"]);
        f.unit("c", "memroy.max = 1M\nafter = nope");
        let mut buf = Vec::new();
        assert!(!check(&[&f.units], &mut buf));
        let out: Vec<String> = String::from_utf8(buf)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        assert_eq!(
            out,
            [
                format!(
                    "{}:2: unknown key `memroy.max` (did you mean `memory.max`?)",
                    f.path("c")
                ),
                "1 error; 2 of 3 units ok".to_owned(),
            ]
        );
    }

    #[test]
    fn check_an_empty_directory_fails() {
        let f = Fixture::new("empty");
        let (ok, out) = check_out(Path::new("/"), &[&f.units]);
        assert!(!ok);
        assert_eq!(
            out,
            [
                format!(
                    "{}: no *.unit files (PID 1 would start the rescue shell)",
                    f.units.display()
                ),
                "1 error; 0 of 0 units ok".to_owned(),
            ]
        );
    }

    #[test]
    fn check_files_with_their_directory_as_context() {
        let f = Fixture::new("checkfiles");
        f.unit("net", "type = oneshot");
        let web = f.unit("web", "after = net");
        f.unit("broken", "oops");
        let (ok, out) = check_out(Path::new("/"), &[&web]);
        assert!(ok, "{out:?}");
        // The broken neighbour is not this check's business.
        assert_eq!(out, ["1 unit ok"]);
        let dep = f.unit("dep", "after = broken");
        let (ok, out) = check_out(Path::new("/"), &[&web, &dep]);
        assert!(!ok);
        assert_eq!(
            out,
            [
                format!("{}:2: after: unit `broken` is invalid", f.path("dep")),
                "1 error; 1 of 2 units ok".to_owned(),
            ]
        );
    }

    #[test]
    fn check_named_files_from_elsewhere() {
        let f = Fixture::new("elsewhere");
        let other = f.tmp.path().join("other");
        fs::create_dir_all(&other).unwrap();
        // Two files check against each other across directories.
        let a = f
            .tmp
            .file("other/a.unit", &format!("exec = {}\nafter = b", f.ok));
        let b = f.unit("b", "");
        let (ok, out) = check_out(Path::new("/"), &[&a, &b]);
        assert!(ok, "{out:?}");
        assert_eq!(out, ["2 units ok"]);
        // Same unit name twice.
        let b2 = f.tmp.file("other/b.unit", &format!("exec = {}", f.ok));
        let (ok, out) = check_out(Path::new("/"), &[&b, &b2]);
        assert!(!ok);
        assert_eq!(
            out[0],
            format!(
                "{}: unit `b` is also defined in {}",
                b2.display(),
                b.display()
            )
        );
        // Not NAME.unit, and missing.
        let txt = f.tmp.file("x.txt", &format!("exec = {}", f.ok));
        let missing = f.tmp.path().join("gone.unit");
        let (ok, out) = check_out(Path::new("/"), &[&txt, &missing]);
        assert!(!ok);
        assert_eq!(
            out[0],
            format!("{}: the file name must be NAME.unit", txt.display())
        );
        assert!(out[1].starts_with(&format!("{}: cannot read: ", missing.display())));
        assert_eq!(out[2], "2 errors; 0 of 2 units ok");
    }

    #[test]
    fn check_an_edited_copy_in_context() {
        let f = Fixture::new("edit");
        f.unit("net", "");
        f.unit("web", "after = net");
        let copy_dir = f.tmp.path().join("edit");
        fs::create_dir_all(&copy_dir).unwrap();
        // The edited net now waits for web: a cycle with the installed web.
        let copy = f
            .tmp
            .file("edit/net.unit", &format!("exec = {}\nafter = web", f.ok));
        let mut out = Vec::new();
        assert!(!check_in_context(
            Path::new("/"),
            &[&copy],
            &f.units,
            &mut out
        ));
        let out = String::from_utf8(out).unwrap();
        assert_eq!(
            out,
            format!(
                "{}:2: after: cycle net -> web -> net\n1 error; 0 of 1 unit ok\n",
                copy.display()
            )
        );
        let fixed = f.tmp.file("edit/net.unit", &format!("exec = {}\n", f.ok));
        let mut out = Vec::new();
        assert!(check_in_context(
            Path::new("/"),
            &[&fixed],
            &f.units,
            &mut out
        ));
        assert_eq!(String::from_utf8(out).unwrap(), "1 unit ok\n");
    }

    #[test]
    fn check_uses_the_sysroot_for_programs() {
        let f = Fixture::new("checkroot");
        let sys = f.tmp.path().join("image");
        f.tmp.prog("image/sbin/getty");
        f.raw("getty", "exec = /sbin/getty 115200 ttyS0\nconsole = yes");
        let (ok, out) = check_out(&sys, &[&f.units]);
        assert!(ok, "{out:?}");
        let (ok, out) = check_out(Path::new("/nonexistent-sysroot"), &[&f.units]);
        assert!(!ok);
        assert_eq!(
            out[0],
            format!("{}:1: exec: `/sbin/getty` not found", f.path("getty"))
        );
    }
}
