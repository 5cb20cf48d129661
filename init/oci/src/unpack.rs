//! Unpacking one layer into its own directory, in the format overlayfs
//! reads as a lower layer: a whiteout `.wh.NAME` becomes a 0/0 character
//! device NAME, `.wh..wh..opq` marks its directory opaque with the xattr
//! `trusted.overlay.opaque=y`, and so does a directory the layer removes
//! and makes again (`.wh.d` then `d/`). The xattr needs real root (see
//! `mark_opaque`); a whiteout device, root or a kernel of 5.8 or later.
//!
//! Nothing may land outside the layer directory: absolute names and `..`
//! are refused, every parent on the way must be a real directory of this
//! layer (never a symlink: a symlink is kept as it is, its target never
//! followed), hard links must point at a file already unpacked here.
//! Device nodes and FIFOs are skipped (the unit gets its own /dev).

mod streams;

use crate::digest::{Bounded, Digest, Hashing};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{lchown, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;
use streams::{skippable, ZeroTail, ZstdFrames};

/// Bounds of one import, all layers together.
pub struct Budget {
    pub bytes_left: u64,
    pub max_bytes: u64,
    pub entries_left: u64,
    pub max_entries: u64,
}

impl Budget {
    /// One more entry, or one more directory made for an entry's parents
    /// the archive does not list: each costs an inode and its time, so
    /// both come out of `--max-entries`.
    fn take_entry(&mut self) -> Result<(), String> {
        self.entries_left = self
            .entries_left
            .checked_sub(1)
            .ok_or_else(|| format!("more than {} entries (--max-entries)", self.max_entries))?;
        Ok(())
    }
}

/// What one layer's unpacking counted.
#[derive(Default, Debug)]
pub struct Counts {
    pub entries: u64,
    pub skipped_devices: u64,
    /// Directories marked opaque.
    pub opaque: u64,
    /// Directories the layer removes and makes again that could not be
    /// marked opaque for want of privilege: how many, and the names of
    /// the first `UNMARKED_LISTED` (in the layer, as `a/b`).
    pub unmarked: u64,
    pub unmarked_names: Vec<String>,
    /// In a stored layer, the directories whose opaque marker is missing
    /// (host path: the name in the layer, and why), marked once the
    /// layer is checked whole.
    pending: BTreeMap<PathBuf, (PathBuf, Opaque)>,
}

/// Where a layer goes.
pub enum Dest<'a> {
    /// Unpacked into this new, empty directory.
    New(&'a Path),
    /// Already in the store, in this directory: read and checked, and
    /// its opaque markers set where missing.
    Stored(&'a Path),
    /// Read and checked only (met earlier in the image).
    Checked,
}

/// Most names of unmarked directories kept for the warning.
const UNMARKED_LISTED: usize = 8;

/// Why a directory cannot be marked opaque without privilege.
pub const OPAQUE_NEEDS_ROOT: &str = "setting its xattr trusted.overlay.opaque needs real root, \
EPERM here; fakeroot does not fake it, as wren-oci makes the system call itself";

const GZIP: [u8; 2] = [0x1f, 0x8b];
const ZSTD: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Unpack the layer blob `raw` into the (new, empty) directory `dest`,
/// checking its compressed digest and size (when known) and its diff_id
/// (the digest of the uncompressed tar). A layer in the store already,
/// or earlier in the image, is read through all the same, within the
/// same bounds, and checked, but not unpacked again: a layer is had by
/// its content, never by the diff_id the config names. A stored one
/// gets the opaque markers its tar asks for where they are missing (one
/// stored by a wren-oci that did not mark a directory made again, or
/// copied without its xattrs), once it is checked whole: a blob that is
/// not the layer marks nothing.
pub fn unpack_layer(
    raw: Box<dyn Read>,
    digest: Option<&Digest>,
    size: Option<u64>,
    diff_id: &Digest,
    dest: Dest<'_>,
    budget: &mut Budget,
) -> Result<Counts, String> {
    let mut br = BufReader::new(Hashing::new(raw));
    let unpacked = unpack_stream(&mut br, diff_id, dest, budget);
    // The blob's own digest is checked even when its content was refused:
    // a replaced or truncated blob is the better explanation.
    let (got, n) = br
        .into_inner()
        .finish()
        .map_err(|e| format!("cannot read: {e}"))?;
    if let Some(size) = size.filter(|s| *s != n) {
        return Err(format!(
            "{n} bytes, the descriptor says {size} (truncated or replaced blob)"
        ));
    }
    if let Some(d) = digest.filter(|d| **d != got) {
        return Err(format!("digest mismatch: expected {d}, got {got}"));
    }
    let mut counts = unpacked?;
    for (dir, (rel, why)) in std::mem::take(&mut counts.pending) {
        mark_opaque(&dir, &rel, why, &mut counts)
            .map_err(|e| format!("directory `{}`: {e}", shown(&rel)))?;
    }
    Ok(counts)
}

/// A directory's name in its layer, `.` for the layer's top.
fn shown(rel: &Path) -> std::borrow::Cow<'_, str> {
    if rel.as_os_str().is_empty() {
        ".".into()
    } else {
        rel.to_string_lossy()
    }
}

/// Decompress (gzip, zstd or none, by the stream's magic bytes), check
/// the diff_id and unpack (or look at the stored layer) as `dest` says.
fn unpack_stream(
    br: &mut BufReader<Hashing<Box<dyn Read>>>,
    diff_id: &Digest,
    dest: Dest<'_>,
    budget: &mut Budget,
) -> Result<Counts, String> {
    let head = br
        .fill_buf()
        .map_err(|e| format!("cannot read: {e}"))?
        .to_vec();
    let dec: Box<dyn Read + '_> = if head.starts_with(&GZIP) {
        Box::new(flate2::read::MultiGzDecoder::new(br))
    } else if head.starts_with(&ZSTD) || skippable(&head) {
        Box::new(ZstdFrames::new(br))
    } else {
        Box::new(br)
    };
    let mut tar_stream = Hashing::new(Bounded {
        inner: dec,
        left: budget.bytes_left,
        max: budget.max_bytes,
    });
    let counts = match dest {
        Dest::New(dir) | Dest::Stored(dir) => {
            let mut tail = ZeroTail::new(&mut tar_stream);
            let real_end = tail.real_end();
            let stored = matches!(dest, Dest::Stored(_));
            unpack_tar(&mut tail, &real_end, dir, stored, budget)?
        }
        Dest::Checked => {
            std::io::copy(&mut tar_stream, &mut std::io::sink())
                .map_err(|e| format!("cannot read: {e}"))?;
            Counts::default()
        }
    };
    let (got, n) = tar_stream
        .finish()
        .map_err(|e| format!("after the tar archive: {e}"))?;
    budget.bytes_left = budget.bytes_left.saturating_sub(n);
    if &got != diff_id {
        return Err(format!(
            "uncompressed content does not match the config's diff_id: expected {diff_id}, got {got}"
        ));
    }
    Ok(counts)
}

/// Most components in an entry's name or a hard link's target. Deeper
/// names serve no image, and each system call on one walks all of them.
const MAX_DEPTH: usize = 256;

/// `name` as components below the layer root; `..` and absolute names
/// are refused, but for `/` alone, which umoci writes for the root.
fn safe_rel(name: &Path) -> Result<Vec<&OsStr>, String> {
    let mut out = Vec::new();
    let mut absolute = false;
    for c in name.components() {
        match c {
            Component::Normal(s) => out.push(s),
            Component::CurDir => {}
            Component::ParentDir => return Err("`..` in the path".into()),
            Component::RootDir | Component::Prefix(_) => absolute = true,
        }
        if out.len() > MAX_DEPTH {
            return Err(format!("too deep: more than {MAX_DEPTH} components"));
        }
    }
    if absolute && !out.is_empty() {
        return Err("absolute path".into());
    }
    Ok(out)
}

/// The layer directory being unpacked, and the directory below it that
/// the last walk reached, as `a/b/c`: it and every directory above it
/// are real directories of this layer (made here, or found so; never
/// symlinks). Tar archives list a directory's entries together, so most
/// entries' parents start with it and are not looked at again (each
/// parent of each entry was, which made a deep layer quadratic). One
/// path, not every directory checked: a set of those grew with the
/// archive, to gigabytes for a small hostile one. Removing it, or a
/// directory above it, forgets it.
struct Layer<'a> {
    dest: &'a Path,
    known: PathBuf,
    /// `dest` is the layer in the store, unpacked from this tar before:
    /// only its opaque markers are looked at.
    stored: bool,
}

impl Layer<'_> {
    /// The directory `dest/parents...`, made where missing; every
    /// component must be a real directory of this layer.
    fn parent_dir(&mut self, parents: &[&OsStr], budget: &mut Budget) -> Result<PathBuf, String> {
        self.walk(parents, Some(budget))?
            .ok_or_else(|| "a parent directory vanished".into())
    }

    /// The directory `dest/parents...`, every component a real directory
    /// of this layer. One missing is made when `make` gives the budget to
    /// count it against; without it the walk stops there, with `None`.
    /// Each is looked up in its parent's directory descriptor, not by its
    /// path from `dest`: a walk past what is known costs its depth, not
    /// the depth's square (an archive alternating between two deep
    /// directories walks for every entry).
    fn walk(
        &mut self,
        parents: &[&OsStr],
        mut make: Option<&mut Budget>,
    ) -> Result<Option<PathBuf>, String> {
        // The deepest directory known: the walk starts below it.
        let done = self
            .known
            .components()
            .zip(parents)
            .take_while(|(k, c)| k.as_os_str() == **c)
            .count();
        let mut p = self.dest.to_path_buf();
        p.extend(parents.iter().take(done));
        if done == parents.len() {
            return Ok(Some(p));
        }
        // Where the walk starts is trusted, `dest` (which the host may
        // reach through a symlink of its own) or a directory known.
        let known_flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let dir_flags = known_flags | OFlags::NOFOLLOW;
        let mut at = rustix::fs::openat(rustix::fs::CWD, &p, known_flags, Mode::empty())
            .map_err(|e| format!("cannot open `{}`: {e}", p.display()))?;
        for (i, c) in parents.iter().enumerate().skip(done) {
            p.push(c);
            let shown = || {
                parents
                    .get(..=i)
                    .unwrap_or(&[])
                    .iter()
                    .map(|s| s.to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/")
            };
            // Opened as a directory, never through a symlink: what fails
            // is looked at only to say why.
            at = match rustix::fs::openat(&at, *c, dir_flags, Mode::empty()) {
                Ok(fd) => fd,
                Err(rustix::io::Errno::NOENT) => {
                    let Some(budget) = make.as_deref_mut() else {
                        return Ok(None);
                    };
                    budget.take_entry().map_err(|m| {
                        format!(
                            "{m}, counting `{}`, a parent directory the archive does not list",
                            shown()
                        )
                    })?;
                    rustix::fs::mkdirat(&at, *c, Mode::from_raw_mode(0o777))
                        .map_err(|e| format!("cannot create `{}`: {e}", shown()))?;
                    rustix::fs::openat(&at, *c, dir_flags, Mode::empty())
                        .map_err(|e| format!("`{}`: {e}", shown()))?
                }
                Err(e) => {
                    return Err(
                        match rustix::fs::statat(&at, *c, AtFlags::SYMLINK_NOFOLLOW)
                            .map(|st| FileType::from_raw_mode(st.st_mode))
                        {
                            Ok(FileType::Symlink) => {
                                format!("goes through the symlink `{}`", shown())
                            }
                            Ok(FileType::Directory) | Err(_) => format!("`{}`: {e}", shown()),
                            Ok(_) => format!("goes through the non-directory `{}`", shown()),
                        },
                    )
                }
            };
        }
        self.known = parents.iter().collect();
        Ok(Some(p))
    }

    /// Make room for a new entry at `p` (a path in this layer): a later
    /// entry replaces an earlier one (a directory only by a
    /// non-directory). What is removed is forgotten.
    fn clear(&mut self, p: &Path, keep_dir: bool) -> std::io::Result<()> {
        match fs::symlink_metadata(p) {
            Ok(m) if m.is_dir() && keep_dir => Ok(()),
            Ok(m) if m.is_dir() => {
                self.forget(p);
                fs::remove_dir_all(p)
            }
            Ok(_) => fs::remove_file(p),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// In a stored layer, an entry `parents/last` that asks for an
    /// opaque marker: a `.wh..wh..opq` for its directory, a whiteout for
    /// the directory of its name if the layer has one (this very tar
    /// unpacked the layer, so a later entry made it again: unpacking
    /// refuses an entry below a whiteout). The directory, if unmarked,
    /// is noted in `counts`, to be marked once the layer is checked
    /// whole. What the layer no longer has as a directory (replaced by a
    /// later entry) asks for nothing.
    fn stored_opaque(
        &mut self,
        parents: &[&OsStr],
        last: &OsStr,
        counts: &mut Counts,
    ) -> Result<(), String> {
        let raw = last.as_bytes();
        let (hidden, why) = match raw.strip_prefix(b".wh.") {
            Some(b".wh..opq") => (None, Opaque::Marker),
            Some(h) if bad_whiteout(h) => return Err("bad whiteout name".into()),
            Some(h) => (Some(OsStr::from_bytes(h)), Opaque::MadeAgain),
            None => return Ok(()),
        };
        let Ok(Some(mut p)) = self.walk(parents, None) else {
            return Ok(());
        };
        let mut rel: PathBuf = parents.iter().collect();
        if let Some(h) = hidden {
            p.push(h);
            rel.push(h);
        }
        if !fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir()) {
            return Ok(());
        }
        let mut v = [0u8; 2];
        match rustix::fs::lgetxattr(&p, "trusted.overlay.opaque", &mut v) {
            Ok(1) if v.first() == Some(&b'y') => counts.opaque += 1,
            _ => {
                // A `.wh..wh..opq` is the stricter: refused unmarked.
                let e = counts.pending.entry(p).or_insert((rel, why));
                if why == Opaque::Marker {
                    e.1 = why;
                }
            }
        }
        Ok(())
    }

    /// `p` and every directory below it are no longer known.
    fn forget(&mut self, p: &Path) {
        let on_it = match p.strip_prefix(self.dest) {
            Ok(rel) => self.known.starts_with(rel),
            // Not below the layer: forget everything.
            Err(_) => true,
        };
        if on_it {
            self.known = PathBuf::new();
        }
    }
}

/// Most bytes the tar crate may read between two entries: a header, the
/// padding, and the records that describe the next entry (a GNU long name
/// or link, PAX records), which it holds in memory whole. Without it one
/// hostile header could have it hold up to `--max-size`.
const BETWEEN_ENTRIES_MAX: u64 = 1 << 20;

/// The layer's stream, with a bound on what is read while armed (inside
/// the tar crate's step to the next entry).
struct Between<'a> {
    inner: &'a mut dyn Read,
    left: Rc<Cell<Option<u64>>>,
}

impl Read for Between<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let Some(left) = self.left.get() else {
            return self.inner.read(buf);
        };
        if left == 0 {
            return Err(std::io::Error::other(format!(
                "more than {BETWEEN_ENTRIES_MAX} bytes of headers and long-name or PAX records before one entry"
            )));
        }
        let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.inner.read(buf.get_mut(..n).unwrap_or(&mut []))?;
        self.left.set(Some(left - n as u64));
        Ok(n)
    }
}

fn unpack_tar(
    stream: &mut dyn Read,
    real_end: &Cell<Option<u64>>,
    dest: &Path,
    stored: bool,
    budget: &mut Budget,
) -> Result<Counts, String> {
    let mut counts = Counts::default();
    let armed = Rc::new(Cell::new(None));
    let mut ar = tar::Archive::new(Between {
        inner: stream,
        left: armed.clone(),
    });
    let mut entries = ar
        .entries()
        .map_err(|e| format!("not a tar archive: {e}"))?;
    let mut layer = Layer {
        dest,
        known: PathBuf::new(),
        stored,
    };
    loop {
        armed.set(Some(BETWEEN_ENTRIES_MAX));
        let next = entries.next();
        armed.set(None);
        let Some(entry) = next else { break };
        let mut e = entry.map_err(|e| format!("broken tar archive: {e}"))?;
        unpack_entry(&mut e, real_end, &mut layer, budget, &mut counts)?;
        // What an entry left unread (data of a directory, a link, a
        // whiteout) is skipped here, outside the bound between entries.
        std::io::copy(&mut e, &mut std::io::sink())
            .map_err(|e| format!("broken tar archive: {e}"))?;
    }
    Ok(counts)
}

/// A sparse file, GNU's (type `S`) or PAX's (`GNU.sparse.*` records): the
/// tar crate would fill its holes with zeros read outside every bound (a
/// 2 KiB layer may declare a hole of exabytes), and the PAX forms would
/// be unpacked as their encoded map and data. Refused, before any of its
/// data is read.
fn is_sparse(e: &mut tar::Entry<'_, Between<'_>>) -> std::io::Result<bool> {
    if e.header().entry_type().is_gnu_sparse() {
        return Ok(true);
    }
    let Some(pax) = e.pax_extensions()? else {
        return Ok(false);
    };
    for x in pax {
        if x?.key_bytes().starts_with(b"GNU.sparse.") {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Why a directory is made opaque.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Opaque {
    /// Its `.wh..wh..opq`.
    Marker,
    /// The layer removes and makes it again (`.wh.d` then `d/`).
    MadeAgain,
}

/// Mark `dir` (`rel` in the layer) opaque, as overlayfs reads it: it
/// hides the directories of its name in the layers below. A `trusted.*`
/// xattr needs CAP_SYS_ADMIN, and fakeroot cannot fake it: rustix makes
/// the system call itself, not through the libc fakeroot intercepts.
/// Without the privilege (EPERM) a directory made again is left as it
/// was before such directories were marked, a plain directory, and
/// counted for a warning: images that imported under Buildroot's
/// fakeroot as a build user still do. A `.wh..wh..opq`, marked (or
/// refused) from the first, is refused.
fn mark_opaque(dir: &Path, rel: &Path, why: Opaque, counts: &mut Counts) -> Result<(), String> {
    let set = rustix::fs::lsetxattr(
        dir,
        "trusted.overlay.opaque",
        b"y",
        rustix::fs::XattrFlags::empty(),
    );
    match set {
        Ok(()) => {
            counts.opaque += 1;
            Ok(())
        }
        Err(rustix::io::Errno::PERM) if why == Opaque::MadeAgain => {
            counts.unmarked += 1;
            if counts.unmarked_names.len() < UNMARKED_LISTED {
                counts.unmarked_names.push(shown(rel).into_owned());
            }
            Ok(())
        }
        Err(rustix::io::Errno::PERM) => Err(format!(
            "cannot mark the directory opaque: {OPAQUE_NEEDS_ROOT}"
        )),
        Err(e) => Err(format!("cannot mark the directory opaque: {e}")),
    }
}

/// What a whiteout `.wh.NAME` cannot hide.
fn bad_whiteout(name: &[u8]) -> bool {
    name.is_empty() || name == b"." || name == b".." || name.contains(&b'/')
}

/// One entry into `dest`.
fn unpack_entry(
    e: &mut tar::Entry<'_, Between<'_>>,
    real_end: &Cell<Option<u64>>,
    layer: &mut Layer<'_>,
    budget: &mut Budget,
    counts: &mut Counts,
) -> Result<(), String> {
    let name = e
        .path()
        .map_err(|e| format!("bad entry name: {e}"))?
        .into_owned();
    let at = |msg: String| format!("entry `{}`: {msg}", name.display());
    budget.take_entry().map_err(at)?;
    counts.entries += 1;
    if is_sparse(e).map_err(|e| at(format!("bad PAX records: {e}")))? {
        return Err(at(
            "a sparse file (GNU tar --sparse): not supported, write the layer without --sparse"
                .into(),
        ));
    }
    let rel = safe_rel(&name).map_err(at)?;
    let Some((last, parents)) = rel.split_last() else {
        return Ok(()); // the layer's root itself
    };
    if layer.stored {
        return layer.stored_opaque(parents, last, counts).map_err(at);
    }
    let dir = layer.parent_dir(parents, budget).map_err(at)?;
    let last_str = last.to_string_lossy();
    if last_str == ".wh..wh..opq" {
        let rel: PathBuf = parents.iter().collect();
        return mark_opaque(&dir, &rel, Opaque::Marker, counts).map_err(at);
    }
    // On the raw bytes: a name that is not UTF-8 (`.wh.\xff`) hides
    // that very name, not the one its lossy text (`\u{fffd}`) spells.
    let raw = last.as_bytes();
    if let Some(hidden) = raw.strip_prefix(b".wh.") {
        if bad_whiteout(hidden) {
            return Err(at("bad whiteout name".into()));
        }
        let p = dir.join(OsStr::from_bytes(hidden));
        layer.clear(&p, false).map_err(|e| at(e.to_string()))?;
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &p,
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .map_err(|e| {
            at(format!(
                "cannot make the whiteout (needs root or fakeroot): {e}"
            ))
        })?;
        return Ok(());
    }
    let p = dir.join(last);
    let h = e.header();
    let mode = h.mode().map_err(|e| at(e.to_string()))? & 0o7777;
    let uid = h.uid().ok().and_then(|u| u32::try_from(u).ok());
    let gid = h.gid().ok().and_then(|g| u32::try_from(g).ok());
    // An owner that does not read leaves the file the importer's:
    // without its set-id bits then, or a setuid file of the image
    // would run as whoever imports (root).
    let mode = match (uid, gid) {
        (Some(_), Some(_)) => mode,
        _ => mode & 0o1777,
    };
    let kind = h.entry_type();
    let io = |e: std::io::Error| at(e.to_string());
    match kind {
        tar::EntryType::Directory => {
            // A 0/0 device here is a whiteout of this layer (the layer's
            // own devices are skipped): `.wh.d` then `d/`, the order the
            // OCI spec asks for. The directory made again replaces the
            // lower one whole, which overlayfs hides only when opaque.
            let whited_out = fs::symlink_metadata(&p).is_ok_and(|m| {
                use std::os::unix::fs::{FileTypeExt, MetadataExt};
                m.file_type().is_char_device() && m.rdev() == 0
            });
            layer.clear(&p, true).map_err(io)?;
            if !p.is_dir() {
                fs::create_dir(&p).map_err(io)?;
            }
            if whited_out {
                let rel: PathBuf = rel.iter().collect();
                mark_opaque(&p, &rel, Opaque::MadeAgain, counts).map_err(at)?;
            }
        }
        tar::EntryType::Regular | tar::EntryType::Continuous => {
            layer.clear(&p, false).map_err(io)?;
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
                .mode(0o600)
                .open(&p)
                .map_err(io)?;
            let end = e.raw_file_position() + e.size();
            let n = std::io::copy(e, &mut f).map_err(io)?;
            if n != e.size() || real_end.get().is_some_and(|r| r < end) {
                return Err(at("the archive ends inside this file's data".into()));
            }
        }
        tar::EntryType::Symlink => {
            let target = e
                .link_name()
                .map_err(io)?
                .ok_or_else(|| at("symlink without a target".into()))?;
            layer.clear(&p, false).map_err(io)?;
            std::os::unix::fs::symlink(&target, &p).map_err(io)?;
        }
        tar::EntryType::Link => {
            let target = e
                .link_name()
                .map_err(io)?
                .ok_or_else(|| at("hard link without a target".into()))?
                .into_owned();
            let trel = safe_rel(&target).map_err(|m| at(format!("hard link target: {m}")))?;
            let Some((tlast, tparents)) = trel.split_last() else {
                return Err(at("hard link to the layer's root".into()));
            };
            let missing = || {
                at(format!(
                    "hard link to `{}`, which does not exist in this layer",
                    target.display()
                ))
            };
            // Looked up, never made: a target with its directories comes
            // before the hard link in the archive.
            let t = layer
                .walk(tparents, None)
                .map_err(|m| at(format!("hard link target {m}")))?
                .ok_or_else(missing)?
                .join(tlast);
            match fs::symlink_metadata(&t) {
                Ok(m) if !m.is_dir() => {}
                Ok(_) => {
                    return Err(at(format!(
                        "hard link to `{}`, which is not a file of this layer",
                        target.display()
                    )))
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(missing()),
                Err(e) => return Err(at(format!("hard link to `{}`: {e}", target.display()))),
            }
            if t != p {
                layer.clear(&p, false).map_err(io)?;
                fs::hard_link(&t, &p).map_err(io)?;
            }
            return Ok(());
        }
        tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
            counts.skipped_devices += 1;
            return Ok(());
        }
        // PAX and GNU long-name records are read by the tar crate
        // (within BETWEEN_ENTRIES_MAX), sparse files are refused above;
        // anything else carries no file.
        _ => return Ok(()),
    }
    if let (Some(u), Some(g)) = (uid, gid) {
        lchown(&p, Some(u), Some(g)).map_err(|e| at(format!("chown (needs root): {e}")))?;
    }
    if kind != tar::EntryType::Symlink {
        // After chown, which clears set-id bits.
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).map_err(io)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parents of many deep entries, each under a directory of its
    /// own, leave one path known: keeping every directory checked, these
    /// 200 kept 1.1 MB, and 1,000,000 deeper ones would keep gigabytes.
    #[test]
    fn the_directories_checked_take_one_path_of_memory() {
        let dest = std::env::temp_dir().join(format!("wren-oci-known-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dest);
        fs::create_dir(&dest).unwrap();
        let mut budget = Budget {
            bytes_left: 0,
            max_bytes: 0,
            entries_left: u64::MAX,
            max_entries: u64::MAX,
        };
        let mut layer = Layer {
            dest: &dest,
            known: Default::default(),
            stored: false,
        };
        let long = "n".repeat(100);
        let mut longest = 0;
        for i in 0..200 {
            let top = i.to_string();
            let parents: Vec<&OsStr> = std::iter::once(top.as_str())
                .chain(std::iter::repeat_n(long.as_str(), 10))
                .map(OsStr::new)
                .collect();
            let dir = layer.parent_dir(&parents, &mut budget).unwrap();
            assert!(dir.is_dir());
            longest = longest.max(dir.strip_prefix(&dest).unwrap().as_os_str().len());
        }
        let kept = layer.known.as_os_str().len();
        fs::remove_dir_all(&dest).unwrap();
        assert!(kept <= longest, "{kept} bytes kept, for paths of {longest}");
    }
}
