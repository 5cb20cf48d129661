//! `initctl check`: a directory or named files checked as `load_dir` would
//! load them, one line per problem and a summary; and the lookup of a
//! unit's program, which may be under a sysroot and a unit's `root`.

use super::{load_set, unit_files, LoadError, LoadedSet, Reading};

/// `check`: on a build host, or a device whose units' mounts may not be
/// up, a missing program of a unit with an `after` is a warning.
const OFFLINE: Reading = Reading {
    roots: true,
    later: true,
};

/// `edit`'s check on a running device: its units' mounts are up, so a
/// missing program is a typo, refused as a reload refuses it.
const EDITED: Reading = Reading {
    roots: true,
    later: false,
};
use crate::pathname::Show as _;
use crate::unit::{IdLines, IdSpec, Namespaces, UnitDef};
use crate::vocab::DEFAULT_UNITS_DIR;
use rustix::fs::{FileType, Stat};
use std::borrow::Cow;
use std::path::{Path, PathBuf};

/// Symlinks followed while looking up a program under a sysroot (the
/// kernel's own limit).
const MAX_SYMLINKS: usize = 40;

/// `initctl check [FILE...]`: validate files (or a directory when one path
/// names a directory) without applying them. Writes one line per problem
/// to `out`; returns true when everything is valid.
///
/// No paths means `DEFAULT_UNITS_DIR`. A directory is checked as a set, as
/// `load_dir` would load it. Files given by name are checked together,
/// with the other `*.unit` files of their directories as context: an
/// `after` may name a unit next to the file, and that unit must be valid,
/// but only the named files' own problems are printed. A named file takes
/// the place of the unit of the same name in that context.
pub fn check(paths: &[&Path], out: &mut dyn crate::ctl::out::Out) -> bool {
    check_at(Path::new("/"), paths, out)
}

/// `check` with programs looked up under `sysroot` (e.g. an image's root
/// directory on a build host).
pub fn check_at(sysroot: &Path, paths: &[&Path], out: &mut dyn crate::ctl::out::Out) -> bool {
    let default = [Path::new(DEFAULT_UNITS_DIR)];
    let paths = if paths.is_empty() {
        &default[..]
    } else {
        paths
    };
    let mut tally = Tally::default();
    let mut loose: Vec<PathBuf> = Vec::new();
    for p in paths {
        // A path that is not there and not a unit file's name is a
        // directory that is missing (no /etc/units on this machine), not a
        // file with the wrong name.
        let unit_name = p.as_os_str().as_encoded_bytes().ends_with(b".unit");
        // One stat (rustix's: std's `metadata` path is not linked).
        let st = rustix::fs::stat(*p);
        let is_dir = st.as_ref().is_ok_and(|s| is_type(s, FileType::Directory));
        if is_dir || !(unit_name || st.is_ok()) {
            match unit_files(p) {
                Ok(files) if files.is_empty() => {
                    tally.print(
                        out,
                        &LoadError {
                            file: p.shown().to_string(),
                            line: 0,
                            msg: "no *.unit files (PID 1 would start the rescue shell)".into(),
                        },
                    );
                }
                Ok(files) => tally.add(
                    out,
                    with_ids(sysroot, load_set(sysroot, &files, &[], OFFLINE)),
                ),
                Err(e) => tally.print(
                    out,
                    &LoadError {
                        file: p.shown().to_string(),
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
        // Each directory once: `initctl check /etc/units/*.unit` names a
        // thousand files of one directory, whose listing is the context
        // of all of them (read for each file, and each entry compared
        // with every one before it, that took minutes at 1,000 units).
        let mut parents: Vec<PathBuf> = Vec::new();
        for f in &loose {
            let parent = match crate::pathname::parent(f) {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            // In an image, the directory as the image sees it: its
            // `etc/units` may be a link to `/usr/lib/units`, which must
            // not list the build host's (as the files themselves are read,
            // `load_file`). One that does not resolve there has no context.
            let parent = match in_image(sysroot, parent) {
                None => parent.to_path_buf(),
                Some(Ok(p)) => p,
                Some(Err(_)) => continue,
            };
            if !parents.iter().any(|p| crate::pathname::same(p, &parent)) {
                parents.push(parent);
            }
        }
        // Unreadable context is no problem of the files being checked.
        let context: Vec<PathBuf> = parents
            .iter()
            .flat_map(|p| unit_files(p).unwrap_or_default())
            .collect();
        tally.add(
            out,
            with_ids(sysroot, load_set(sysroot, &loose, &context, OFFLINE)),
        );
    }
    tally.summary(out)
}

/// `initctl check --root DIR [FILE...]`: the units of an image whose root
/// is `root` (by default `root/etc/units`), checked on a build host as the
/// image will see them: `exec` programs, users and groups are looked up
/// under `root`, symlinks resolved inside it.
pub fn check_root(root: &Path, files: &[&Path], out: &mut dyn crate::ctl::out::Out) -> bool {
    // Files named are checked where they are: the image need not have a
    // unit directory yet (a build stages its units elsewhere).
    if !files.is_empty() {
        return check_at(root, files, out);
    }
    // The directory as the image sees it: `/etc/units` may be a link
    // (to `/usr/lib/units`, say), which the build host must not follow.
    match walk(&[root.to_path_buf()], DEFAULT_UNITS_DIR) {
        Ok((_, dir)) => check_at(root, &[dir.as_path()], out),
        Err(e) => {
            let dir = root.join(DEFAULT_UNITS_DIR.trim_start_matches('/'));
            let _ = writeln!(out, "{}: cannot read the directory: {e}", dir.shown());
            false
        }
    }
}

/// Users and groups named by the valid units of `set` must exist in the
/// passwd and group files they will be looked up in when the unit starts
/// (under the unit's `root`, under `sysroot`). Only `check` asks this: at
/// load time PID 1 leaves it to the start, which reports it.
fn with_ids(sysroot: &Path, mut set: LoadedSet) -> LoadedSet {
    let found: Vec<(usize, IdsChecked)> = set
        .units
        .iter()
        .enumerate()
        .filter_map(|(i, c)| Some((i, check_ids(sysroot, c.def.as_ref()?, c.id_lines))))
        .collect();
    for (i, r) in found {
        match r {
            Err((line, msg)) => set.fail(i, line, msg),
            Ok(root) => {
                if let Some(c) = set.units.get_mut(i) {
                    c.root_by_uid = root;
                }
            }
        }
    }
    set
}

/// `check_ids`' answer: root by uid, or the line and the message.
type IdsChecked = Result<bool, (u32, String)>;

/// The unit's `user` and `group` resolved as its start will resolve them
/// (`users::resolve_ids_in`, the same lines read the same way), from the
/// passwd and group files the unit will see (`lookup`). `Err`: the line
/// to report (`ids`: that of `group` for its own lookup, else of `user`;
/// of `user_map` for an id
/// its map does not cover) and the message. `Ok(true)`: a `user` other
/// than `root` and 0 that is uid 0 there, root for all it says.
fn check_ids(sysroot: &Path, def: &UnitDef, ids: IdLines) -> IdsChecked {
    let (user, group) = (&def.seldom.user, &def.seldom.group);
    if user.is_none() && group.is_none() {
        return Ok(false);
    }
    // The file the lookup failed in, or could not read, for the message.
    let mut last: Option<(PathBuf, Option<std::io::Error>)> = None;
    let r = crate::config::users::resolve_ids_in(def, &mut |file, f| {
        let path = match lookup(sysroot, def, file) {
            Ok((_, p)) => p.into_owned(),
            Err(e) => {
                let top = root_bases(sysroot, def)
                    .ok()
                    .and_then(|b| b.into_iter().next());
                let shown = lookup_path(top.as_deref().unwrap_or(sysroot), file);
                let errno = errno_of(&e);
                last = Some((shown, Some(e)));
                return Err(errno);
            }
        };
        // Bytes, as a start reads them: a GECOS field in Latin-1 must not
        // refuse the file.
        let mut text = Vec::new();
        let read = crate::sys::file::read(&path, &mut text).map(|()| {
            let _ = text.split(|&c| c == b'\n').any(&mut *f);
        });
        let errno = read.as_ref().err().map(errno_of);
        last = Some((path, read.err()));
        match errno {
            Some(e) => Err(e),
            None => Ok(()),
        }
    });
    let why = match r {
        Ok(ids) => return Ok(ids.uid == Some(0) && !def.named_root()),
        Err(why) => why,
    };
    let [user_line, group_line, map_line, _] = ids;
    let at_group = group.is_some() && crate::config::users::at_the_group(why);
    let mut line = match user_line {
        0 => group_line,
        _ if at_group && group_line > 0 => group_line,
        l => l,
    };
    if !crate::config::users::from_the_files(why) {
        last = None;
        // Outside the map: at `user_map`, unless the map is the default.
        if map_line > 0 {
            line = map_line;
        }
    }
    let spec = [("user", user), ("group", group)]
        .into_iter()
        .filter_map(|(k, v)| match v.as_ref()? {
            IdSpec::Id(n) => Some(format!("{k} `{n}`")),
            IdSpec::Name(n) => Some(format!("{k} `{}`", n.as_str())),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let msg = match last {
        Some((path, Some(e))) => format!("{spec}: {why}: {}: {e}", path.shown()),
        Some((path, None)) => format!("{spec}: {why} ({})", path.shown()),
        None => format!("{spec}: {why}"),
    };
    Err((line, msg))
}

/// What `users` expects of a read that failed: NOENT for a file that is
/// not there (a missing /etc/group is no group), whatever made the error.
fn errno_of(e: &std::io::Error) -> rustix::io::Errno {
    rustix::io::Errno::from_io_error(e).unwrap_or(rustix::io::Errno::IO)
}

/// Check `files` as replacements of (or additions to) the units in `dir`:
/// what `initctl edit` needs before installing an edited copy. A file
/// `NAME.unit` takes the place of `dir`'s unit `NAME`; only the problems
/// of `files` are printed, then the summary line.
pub fn check_in_context(
    sysroot: &Path,
    files: &[&Path],
    dir: &Path,
    out: &mut dyn crate::ctl::out::Out,
) -> bool {
    let files: Vec<PathBuf> = files.iter().map(|f| f.to_path_buf()).collect();
    let context = unit_files(dir).unwrap_or_default();
    let mut tally = Tally::default();
    // Users and groups as `check` has them: `edit` must not install what
    // `check` refuses.
    tally.add(
        out,
        with_ids(sysroot, load_set(sysroot, &files, &context, EDITED)),
    );
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
    fn print(&mut self, out: &mut dyn crate::ctl::out::Out, e: &LoadError) {
        self.errors += 1;
        // A closed stdout must not make check lie about validity.
        let _ = writeln!(out, "{e}");
    }

    fn add(&mut self, out: &mut dyn crate::ctl::out::Out, set: LoadedSet) {
        for e in set.errors.iter().filter(|e| e.reported) {
            self.print(out, &e.error);
        }
        for n in set.notes.iter().filter(|n| set.is_valid(n.unit)) {
            let e = &n.error;
            let _ = match e.line {
                0 => writeln!(out, "{}: warning: {}", e.file, e.msg),
                l => writeln!(out, "{}:{l}: warning: {}", e.file, e.msg),
            };
        }
        for c in set.units.iter().filter(|c| c.reported) {
            self.units += 1;
            self.ok += usize::from(c.def.is_some());
        }
        // Not an error: the unit may need it all. But next to confined
        // units it is likely an oversight, and the one a breach would use.
        // A `user` the image's passwd gives uid 0 is root, whatever its
        // name.
        let unconfined = |c: &super::Candidate| {
            c.def.as_ref().is_some_and(|d| match c.root_by_uid {
                true => d.unconfined_as_root(),
                false => d.unconfined(),
            })
        };
        let confined = set
            .units
            .iter()
            .any(|c| !c.root_by_uid && c.def.as_ref().is_some_and(UnitDef::confined));
        if confined {
            for c in set.units.iter().filter(|c| c.reported) {
                if unconfined(c) {
                    let _ = writeln!(
                        out,
                        "{}: warning: runs as root with every capability and no namespaces while other units are confined (see `user`, `capabilities`, `namespaces`)",
                        c.path.shown()
                    );
                }
            }
        }
    }

    fn summary(&self, out: &mut dyn crate::ctl::out::Out) -> bool {
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

/// A unit in a user namespace makes its root's mounts as its mapped uid,
/// which cannot enter the layer store (root's, 0700): refused at load,
/// with the reason, rather than failing at every start.
pub(super) fn check_store_reach(def: &UnitDef) -> Result<(), String> {
    let store = Path::new(crate::vocab::LAYER_STORE);
    let in_store = |layer: &str| crate::pathname::strip_prefix(Path::new(layer), store).is_some();
    if def.namespaces.has(Namespaces::USER) && def.root_layers().any(in_store) {
        return Err(format!(
            "root: a unit with `user` in namespaces cannot use layers of {} (root's only; its mounts are made as its mapped uid)",
            crate::vocab::LAYER_STORE
        ));
    }
    Ok(())
}

/// What is wrong with a unit's program.
pub(super) enum ExecProblem {
    /// Not there (now: a unit in `after` may bring it, a mount).
    Missing(String),
    Bad(String),
}

/// The program of `def` exists (under its `root`, if any), is a regular
/// file and has an execute bit.
pub(super) fn check_exec(sysroot: &Path, def: &UnitDef) -> Result<(), ExecProblem> {
    let Some(program) = def.exec.first() else {
        return Err(ExecProblem::Bad("exec: no program given".into()));
    };
    let where_ = match &def.seldom.root {
        Some(root) => format!(" under root `{}`", Path::new(root.as_str()).shown()),
        None => String::new(),
    };
    // Shown as a path: a control character in it reaches no terminal.
    let prog = Path::new(program).shown();
    let meta = match lookup(sysroot, def, program).map(|(m, _)| m) {
        Ok(m) => m,
        Err(e) if crate::sys::file::is_errno(&e, rustix::io::Errno::NOENT) => {
            return Err(ExecProblem::Missing(format!(
                "exec: `{prog}` not found{where_}"
            )));
        }
        Err(e) => return Err(ExecProblem::Bad(format!("exec: `{prog}`{where_}: {e}"))),
    };
    if !is_type(&meta, FileType::RegularFile) {
        return Err(ExecProblem::Bad(format!(
            "exec: `{prog}`{where_} is not a regular file"
        )));
    }
    if meta.st_mode & 0o111 == 0 {
        return Err(ExecProblem::Bad(format!(
            "exec: `{prog}`{where_} is not executable"
        )));
    }
    Ok(())
}

/// `path` (absolute) as a path on this machine when `/` is `base`.
fn lookup_path(base: &Path, path: &str) -> PathBuf {
    base.join(path.trim_start_matches('/'))
}

/// The directories on this machine that make a unit's `/`: its `root`
/// layers (topmost first) under `sysroot`, each resolved inside the image
/// (`check --root`: an image's `/var -> /data/var` must not lead to the
/// build host's), or `sysroot` itself.
fn root_bases(sysroot: &Path, def: &UnitDef) -> std::io::Result<Vec<PathBuf>> {
    if def.seldom.root.is_none() {
        return Ok(vec![sysroot.to_path_buf()]);
    }
    let image = sysroot.as_os_str() != "/";
    let mut bases = Vec::new();
    for l in def.root_layers() {
        bases.push(match image {
            true => walk(&[sysroot.to_path_buf()], l)?.1,
            false => lookup_path(sysroot, l),
        });
    }
    Ok(bases)
}

/// Metadata and real path of the absolute `path` as unit `def` will see
/// it (`walk` in its `root_bases`). On this machine's own `/` (PID 1's
/// case: no `root`, sysroot `/`) that is one stat, without the list of
/// bases and the path copies (once a unit at boot, issue 10).
pub(super) fn lookup<'p>(
    sysroot: &Path,
    def: &UnitDef,
    path: &'p str,
) -> std::io::Result<(Stat, Cow<'p, Path>)> {
    if def.seldom.root.is_none() && sysroot.as_os_str() == "/" {
        return Ok((rustix::fs::stat(path)?, Cow::Borrowed(Path::new(path))));
    }
    walk(&root_bases(sysroot, def)?, path).map(|(m, p)| (m, Cow::Owned(p)))
}

/// The file `path` (on the host, under `sysroot`) is, as the image under
/// `sysroot` sees it: its links resolved inside `sysroot` (`check
/// --root`); the error when it does not resolve there (a link to what the
/// image lacks must not read the build host's file of that name). None
/// when `sysroot` is `/` (PID 1's own load: nothing to resolve) or
/// `path` is not under it.
pub(super) fn in_image(sysroot: &Path, path: &Path) -> Option<std::io::Result<PathBuf>> {
    if crate::pathname::same(sysroot, Path::new("/")) {
        return None;
    }
    let rel = crate::pathname::strip_prefix(path, sysroot)?;
    let inside = Path::new("/").join(rel);
    let inside = inside.to_str()?;
    Some(walk(&[sysroot.to_path_buf()], inside).map(|(_, full)| full))
}

/// Metadata and real path of the absolute `path` as seen by a process
/// whose root is the overlay of `bases` (one directory: that directory):
/// symlinks, absolute ones included, resolve inside it, as they will once
/// the unit runs (pivot_root) or the image boots.
fn walk(bases: &[PathBuf], path: &str) -> std::io::Result<(Stat, PathBuf)> {
    let mut pending: Vec<String> = components(path).rev().collect();
    let mut done: Vec<String> = Vec::new();
    let mut links = 0;
    while let Some(c) = pending.pop() {
        if c == ".." {
            done.pop();
            continue;
        }
        done.push(c);
        let (meta, here) = merged_lstat(bases, &done)?;
        if !is_type(&meta, FileType::Symlink) {
            continue;
        }
        done.pop();
        links += 1;
        if links > MAX_SYMLINKS {
            return Err(std::io::Error::from(rustix::io::Errno::LOOP));
        }
        let target = crate::sys::file::read_link(&here)?;
        let target = target.to_string_lossy();
        if target.starts_with('/') {
            done.clear();
        }
        pending.extend(components(&target).rev());
    }
    let (_, full) = merged_lstat(bases, &done)?;
    Ok((rustix::fs::stat(&full)?, full))
}

/// lstat of `rel` in the overlay of `layers` (topmost first), as
/// overlayfs merges them: the topmost layer that has it wins; a whiteout
/// (0/0 character device) or a non-directory on the way hides the layers
/// below, and so does a directory marked opaque
/// (`trusted.overlay.opaque=y`).
fn merged_lstat(layers: &[PathBuf], rel: &[String]) -> std::io::Result<(Stat, PathBuf)> {
    let gone = || std::io::Error::from(rustix::io::Errno::NOENT);
    for layer in layers {
        let mut here = layer.clone();
        let mut opaque = false;
        let mut found = None;
        for (i, c) in rel.iter().enumerate() {
            here.push(c);
            let meta = match rustix::fs::lstat(&here) {
                Ok(m) => m,
                Err(rustix::io::Errno::NOENT) => break,
                Err(e) => return Err(e.into()),
            };
            if is_type(&meta, FileType::CharacterDevice) && meta.st_rdev == 0 {
                return Err(gone());
            }
            if i + 1 == rel.len() {
                found = Some(meta);
            } else if !is_type(&meta, FileType::Directory) {
                return Err(gone());
            } else {
                let mut c = crate::sys::path::CPath::new();
                opaque |= c.of_path(&here).is_ok_and(crate::sys::file::overlay_opaque);
            }
        }
        if rel.is_empty() {
            found = Some(rustix::fs::lstat(&here)?);
        }
        if let Some(m) = found {
            return Ok((m, here));
        }
        if opaque {
            return Err(gone());
        }
    }
    Err(gone())
}

/// Is `st` of type `t`? The stats are rustix's: std's `metadata` and
/// `symlink_metadata` (their own path conversion, musl's `stat` and
/// `lstat`) are not linked for them.
pub(super) fn is_type(st: &Stat, t: FileType) -> bool {
    FileType::from_raw_mode(st.st_mode) == t
}

fn components(path: &str) -> impl DoubleEndedIterator<Item = String> + '_ {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(str::to_owned)
}
