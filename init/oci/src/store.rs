//! The content-addressed layer store under the target root:
//! `DIR/var/lib/wren/layers/sha256/HEX`, one directory per layer, named by
//! the layer's diff_id (the digest of its uncompressed tar, from the image
//! config) rather than by its compressed blob's digest: the same layer
//! compressed another way (gzip or zstd, another gzip level, a docker
//! archive's plain tar) is the same directory, so images that share a
//! base store it once whatever wrote them. The diff_id is checked while
//! unpacking, so a directory's name always matches what is in it; and
//! checked again whenever an image names a layer stored already, so an
//! image has only the layers its own blobs are; then the stored layer's
//! opaque markers are set where its tar asks for one that is missing
//! (a layer stored by an older wren-oci, or copied without xattrs).
//!
//! Layers are unpacked into temporary directories inside the store
//! (`.tmp-PID-HEX`) and renamed into place only once every layer is whole
//! and verified and the unit's text is rendered and parsed back, and once
//! they are on disk (a syncfs; the store directory is fsync'd after the
//! renames); then the unit is written (fsync'd too). On any refusal the temporary directories are
//! removed; those of an import killed on the way (no Drop runs on SIGKILL,
//! SIGINT or a panic's abort) are removed by the next import, once the
//! process that made them is gone.

use crate::digest::Digest;
use crate::source::Image;
use crate::unpack::{unpack_layer, Budget, Counts, Dest, OPAQUE_NEEDS_ROOT};
use std::path::{Path, PathBuf};

/// Where layers live on the target, as the unit file names them.
pub const STORE: &str = "/var/lib/wren/layers/sha256";

/// The store's top directory, mode 0700: a layer keeps its files' set-id
/// bits and owners, as the image has them, for the unit that runs in it;
/// reachable by the device's other users, a set-uid root program of any
/// image would be theirs to run outside its container (as Docker's
/// data directory was, CVE-2021-41091), and its files theirs to read.
/// Units reach their layers through mounts PID 1's child makes as root.
pub const STORE_TOP: &str = wren_core::vocab::LAYER_STORE;

/// `root/rel`, made where missing, every component a real directory
/// inside `root`: a symlink on the way (say `var -> /var` in a staging
/// tree) would lead the writes out of the target root, so it is refused.
pub fn real_dir(root: &Path, rel: &str) -> Result<PathBuf, String> {
    let mut p = root.to_path_buf();
    for c in rel.split('/').filter(|c| !c.is_empty()) {
        p.push(c);
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(format!(
                    "{} is a symlink: refusing to write through it",
                    p.display()
                ))
            }
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(format!("{} is not a directory", p.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir(&p)
                    .map_err(|e| format!("cannot create {}: {e}", p.display()))?;
            }
            Err(e) => return Err(format!("{}: {e}", p.display())),
        }
    }
    Ok(p)
}

/// A temporary directory removed on drop unless kept.
struct Temp(Option<PathBuf>);

impl Drop for Temp {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_dir_all(p);
        }
    }
}

/// Layers unpacked (and verified) but not yet in the store: `commit`
/// renames them into place; dropped, they are removed.
pub struct Staged {
    /// Where each layer's content is now (host paths), base first: the
    /// temporary directory of a new layer, the store's of a known one.
    pub dirs: Vec<PathBuf>,
    /// Target paths, base first, as the unit names them.
    pub target_paths: Vec<String>,
    /// (temporary, final) of the new layers.
    new: Vec<(Temp, PathBuf)>,
    /// What the import should say but does not refuse.
    pub warnings: Vec<String>,
    /// The store's `sha256` directory.
    store: PathBuf,
}

impl Staged {
    /// Move the new layers into the store; returns how many there were.
    /// They are on disk first, so that a layer named by its diff_id is
    /// whole after a crash or a power cut of the build host, and so are
    /// the renames when it returns.
    pub fn commit(self) -> Result<usize, String> {
        let n = self.new.len();
        if n == 0 {
            return Ok(0);
        }
        // One syncfs of the store's file system, rather than an fsync of
        // each file and directory of each layer (a layer may have 100,000).
        let at = |e: std::io::Error| format!("{}: {e}", self.store.display());
        let store = std::fs::File::open(&self.store).map_err(at)?;
        rustix::fs::syncfs(&store).map_err(|e| at(e.into()))?;
        for (mut tmp, final_dir) in self.new {
            let Some(from) = tmp.0.clone() else { continue };
            match std::fs::rename(&from, &final_dir) {
                Ok(()) => tmp.0 = None,
                // Another import stored it meanwhile.
                Err(_) if final_dir.is_dir() => {}
                Err(e) => return Err(format!("{}: {e}", final_dir.display())),
            }
        }
        store.sync_all().map_err(at)?;
        Ok(n)
    }
}

/// Removes `.tmp-PID-*` directories of imports that are no longer
/// running (best effort): a killed import's half-unpacked layer would
/// otherwise stay in the device image for good.
fn remove_stale_temps(store: &Path) {
    let Ok(entries) = std::fs::read_dir(store) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(".tmp-"))
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new("/proc").join(pid.to_string()).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// What a layer's directories made again that could not be marked
/// opaque mean, if it has any.
fn unmarked_warning(c: &Counts) -> Option<String> {
    if c.unmarked == 0 {
        return None;
    }
    let mut names: Vec<String> = c.unmarked_names.iter().map(|n| format!("`{n}`")).collect();
    let more = c.unmarked.saturating_sub(names.len() as u64);
    if more > 0 {
        names.push(format!("{more} more"));
    }
    let (what, them) = if c.unmarked == 1 {
        ("a directory", "it")
    } else {
        ("directories", "them")
    };
    Some(format!(
        "{}: {what} this layer removes and makes again, cannot be marked opaque \
         ({OPAQUE_NEEDS_ROOT}): imported unmarked, so on the device the files the \
         layers below have in {them} show through; to hide them, import as real root, \
         outside fakeroot, or squash the image into one layer (docs/containers.md)",
        names.join(", ")
    ))
}

/// Unpack every layer of `image` not yet in the store under `root` into
/// temporary directories of the store.
pub fn stage_layers(
    root: &Path,
    image: &Image,
    diff_ids: &[Digest],
    budget: &mut Budget,
) -> Result<Staged, String> {
    if diff_ids.len() != image.layers.len() {
        return Err(format!(
            "the config lists {} diff_ids for {} layers",
            diff_ids.len(),
            image.layers.len()
        ));
    }
    let store = real_dir(root, STORE)?;
    // On every import: a store made before (by an older wren-oci, or by
    // hand) is closed too. Only when open: a store already closed may be
    // another user's (root's, imported into by a build user).
    let top = root.join(STORE_TOP.trim_start_matches('/'));
    let at = |e: std::io::Error| format!("{}: {e}", top.display());
    let mode = std::os::unix::fs::MetadataExt::mode(&std::fs::metadata(&top).map_err(at)?);
    if mode & 0o7777 != 0o700 {
        std::fs::set_permissions(&top, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .map_err(at)?;
    }
    remove_stale_temps(&store);
    let mut staged = Staged {
        dirs: Vec::new(),
        target_paths: Vec::new(),
        new: Vec::new(),
        store: store.clone(),
        warnings: Vec::new(),
    };
    // Directories marked opaque, or found marked, in all layers.
    let mut opaque = 0u64;
    for (i, (blob, diff_id)) in image.layers.iter().zip(diff_ids).enumerate() {
        let at = |m: String| format!("layer {} ({}): {m}", i + 1, blob.name);
        let final_dir = store.join(diff_id.hex());
        let raw = image.read(blob).map_err(at)?;
        // The same layer earlier in this image (new, or stored), or one
        // stored already.
        let earlier = match staged.new.iter().find(|(_, f)| *f == final_dir) {
            Some((t, _)) => t.0.clone(),
            None => staged.dirs.contains(&final_dir).then(|| final_dir.clone()),
        };
        let stored = earlier.is_none() && final_dir.is_dir();
        if let Some(dir) = earlier.or_else(|| stored.then(|| final_dir.clone())) {
            // Still read whole and checked, the diff_id too: the config
            // names a layer, its blob must be that layer. A stored one
            // once per import gets the opaque markers it lacks.
            let dest = if stored {
                Dest::Stored(&dir)
            } else {
                Dest::Checked
            };
            let counts = unpack_layer(raw, blob.digest.as_ref(), blob.size, diff_id, dest, budget)
                .map_err(at)?;
            opaque += counts.opaque;
            if let Some(w) = unmarked_warning(&counts) {
                staged.warnings.push(at(w));
            }
            staged.dirs.push(dir);
        } else {
            let tmp = store.join(format!(".tmp-{}-{}", std::process::id(), diff_id.hex()));
            let _ = std::fs::remove_dir_all(&tmp);
            std::fs::create_dir(&tmp).map_err(|e| at(format!("{}: {e}", tmp.display())))?;
            let guard = Temp(Some(tmp.clone()));
            std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .map_err(|e| at(e.to_string()))?;
            let counts = unpack_layer(
                raw,
                blob.digest.as_ref(),
                blob.size,
                diff_id,
                Dest::New(&tmp),
                budget,
            )
            .map_err(at)?;
            opaque += counts.opaque;
            if let Some(w) = unmarked_warning(&counts) {
                staged.warnings.push(at(w));
            }
            staged.dirs.push(tmp);
            staged.new.push((guard, final_dir.clone()));
        }
        staged
            .target_paths
            .push(format!("{STORE}/{}", diff_id.hex()));
    }
    // fakeroot sets FAKEROOTKEY in its session: what runs in it reads
    // xattrs through fakeroot, which reports only those set through its
    // libc, never the markers wren-oci sets with the system call itself.
    if opaque > 0 && std::env::var_os("FAKEROOTKEY").is_some() {
        staged.warnings.push(format!(
            "fakeroot is running (FAKEROOTKEY is set): the image's opaque directories \
             are marked on the files in {}, with a system call fakeroot does not see, \
             so a file system image made under this fakeroot (Buildroot's, by mke2fs -d) \
             does not carry their marker, and on the device the files the lower layers \
             have in them show through; squash the image into one layer, or make the \
             file system image outside fakeroot (docs/containers.md)",
            store.display()
        ));
    }
    Ok(staged)
}
