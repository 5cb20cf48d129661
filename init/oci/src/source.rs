//! Where an image comes from: an OCI image layout (`oci:PATH[:TAG]`, as
//! skopeo, buildah and umoci write it) or a `docker save` tarball
//! (`docker-archive:FILE[:TAG]`, or `:REPO:TAG`). Resolves the reference
//! to a verified config and the list of layer blobs; the blobs are read
//! (and their digests checked) while unpacking.

use crate::digest::{verify, Digest};
use serde::Deserialize;
use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Largest index, manifest or config read into memory.
const JSON_MAX: u64 = 4 << 20;

#[derive(Debug, PartialEq, Eq)]
pub enum Source {
    Oci {
        dir: PathBuf,
        tag: Option<String>,
    },
    /// `tag` is a TAG or a REPO:TAG.
    DockerArchive {
        file: PathBuf,
        tag: Option<String>,
    },
}

/// A tag as OCI's grammar has it: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    b.first()
        .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
        && b.len() <= 128
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

/// A repository as `docker save` records it before its tag (`db`,
/// `registry.local:5000/team/db`): what else a RepoTag holds matches none.
fn valid_repo(r: &str) -> bool {
    !r.is_empty()
        && r.len() <= 255
        && r.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-' | b'/' | b':'))
}

/// A docker archive's FILE and what follows it. A REPO:TAG has a `:` of
/// its own (two, with a registry's port) and a path may have some: FILE
/// is the longest part before a `:` that is a file, the whole first.
/// When no part is one, the whole is FILE: the error names what was not
/// found, not a guess at it.
fn split_archive(rest: &str) -> (&str, Option<&str>) {
    let mut cut = rest.len();
    loop {
        let file = rest.get(..cut).unwrap_or(rest);
        if Path::new(file).is_file() {
            return (file, rest.get(cut + 1..));
        }
        match file.rfind(':') {
            Some(i) => cut = i,
            None => return (rest, None),
        }
    }
}

impl Source {
    /// `oci:PATH[:TAG]` or `docker-archive:FILE[:TAG]` (or
    /// `:REPO:TAG`). A last `:` part of `oci:` with no `/` in it is the
    /// tag. A tag must be one by OCI's grammar, a repository of the
    /// characters it may have: they are written into the unit's header
    /// comment and `description`.
    pub fn parse(s: &str) -> Result<Source, String> {
        let split = |rest: &str| -> Result<(PathBuf, Option<String>), String> {
            match rest.rsplit_once(':') {
                Some((p, t)) if !t.contains('/') && !p.is_empty() && !t.is_empty() => {
                    if !valid_tag(t) {
                        return Err(format!(
                            "tag {t:?}: 1 to 128 of A-Z a-z 0-9 _ . -, not starting with . or -"
                        ));
                    }
                    Ok((PathBuf::from(p), Some(t.to_owned())))
                }
                _ => Ok((PathBuf::from(rest), None)),
            }
        };
        if let Some(rest) = s.strip_prefix("oci:").filter(|r| !r.is_empty()) {
            let (dir, tag) = split(rest)?;
            Ok(Source::Oci { dir, tag })
        } else if let Some(rest) = s.strip_prefix("docker-archive:").filter(|r| !r.is_empty()) {
            let (file, tag) = split_archive(rest);
            if let Some(r) = tag {
                let valid = match r.rsplit_once(':') {
                    Some((repo, t)) => valid_repo(repo) && valid_tag(t),
                    None => valid_tag(r),
                };
                if !valid {
                    return Err(format!(
                        "`{r}` after {file}: TAG or REPO:TAG, a TAG 1 to 128 of A-Z a-z 0-9 _ . -, not starting with . or -, a REPO of A-Z a-z 0-9 _ . - / :"
                    ));
                }
            }
            Ok(Source::DockerArchive {
                file: PathBuf::from(file),
                tag: tag.map(str::to_owned),
            })
        } else {
            Err(format!(
                "source `{s}`: expected oci:PATH[:TAG] or docker-archive:FILE[:TAG|:REPO:TAG]"
            ))
        }
    }
}

#[derive(Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    #[serde(default)]
    media_type: String,
    digest: String,
    size: u64,
    #[serde(default)]
    annotations: HashMap<String, String>,
    #[serde(default)]
    platform: Option<Platform>,
}

#[derive(Deserialize, Debug, Clone)]
struct Platform {
    architecture: String,
    os: String,
}

#[derive(Deserialize)]
struct Index {
    manifests: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct Manifest {
    config: Descriptor,
    layers: Vec<Descriptor>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ArchiveEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// Where a layer blob's bytes are.
#[derive(Debug, Clone)]
pub enum Loc {
    File(PathBuf),
    /// A member of the docker archive: offset and length in it.
    InArchive(u64, u64),
}

/// A layer blob: where it is and what it must be.
#[derive(Debug, Clone)]
pub struct Blob {
    pub name: String,
    pub digest: Option<Digest>,
    pub size: Option<u64>,
    pub loc: Loc,
}

/// A resolved image: its config (verified) and its layers, base first.
pub struct Image {
    pub reference: String,
    pub config: Vec<u8>,
    pub layers: Vec<Blob>,
    archive: Option<PathBuf>,
}

const INDEX_TYPE: &str = "application/vnd.oci.image.index.v1+json";
const LIST_TYPE: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const REF_NAME: &str = "org.opencontainers.image.ref.name";

impl Image {
    pub fn open(src: &Source, arch: &str) -> Result<Image, String> {
        match src {
            Source::Oci { dir, tag } => open_oci(dir, tag.as_deref(), arch),
            Source::DockerArchive { file, tag } => open_archive(file, tag.as_deref()),
        }
    }

    /// The raw bytes of a layer blob (compressed or not).
    pub fn read(&self, blob: &Blob) -> Result<Box<dyn Read>, String> {
        match (&blob.loc, &self.archive) {
            // Read one byte past the descriptor's size at most: enough
            // for the size check to refuse a longer file, never more.
            (Loc::File(p), _) => open_file(p)
                .map(|f| match blob.size {
                    Some(n) => Box::new(f.take(n.saturating_add(1))) as Box<dyn Read>,
                    None => Box::new(f) as Box<dyn Read>,
                })
                .map_err(|e| format!("layer {}: cannot open {}: {e}", blob.name, p.display())),
            (Loc::InArchive(off, len), Some(a)) => {
                let mut f = open_file(a).map_err(|e| format!("{}: {e}", a.display()))?;
                f.seek(SeekFrom::Start(*off))
                    .map_err(|e| format!("{}: {e}", a.display()))?;
                Ok(Box::new(f.take(*len)))
            }
            (Loc::InArchive(..), None) => Err(format!("layer {}: no archive", blob.name)),
        }
    }
}

/// Opens `path` for reading only if it is a regular file (links
/// followed): a FIFO or a device (a blob of a hostile layout linked to
/// /dev/zero) is refused before any read, and the open does not wait on
/// a FIFO (O_NONBLOCK, which a regular file ignores).
pub(crate) fn open_file(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let nonblock = i32::try_from(rustix::fs::OFlags::NONBLOCK.bits()).unwrap_or(0);
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nonblock)
        .open(path)?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    Ok(f)
}

fn read_small(path: &Path) -> Result<Vec<u8>, String> {
    let f = open_file(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut v = Vec::new();
    f.take(JSON_MAX + 1)
        .read_to_end(&mut v)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if v.len() as u64 > JSON_MAX {
        return Err(format!("{}: larger than {JSON_MAX} bytes", path.display()));
    }
    Ok(v)
}

fn json<T: for<'a> Deserialize<'a>>(what: &str, bytes: &[u8]) -> Result<T, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("{what}: not a valid document: {e}"))
}

/// A blob of the layout, read whole and checked (small documents only).
fn oci_blob(dir: &Path, what: &str, d: &Descriptor) -> Result<Vec<u8>, String> {
    let digest = Digest::parse(&d.digest).map_err(|e| format!("{what}: {e}"))?;
    if d.size > JSON_MAX {
        return Err(format!("{what} {digest}: {} bytes is too large", d.size));
    }
    let bytes = read_small(&dir.join("blobs/sha256").join(digest.hex()))?;
    verify(what, &bytes, &digest, d.size)?;
    Ok(bytes)
}

fn open_oci(dir: &Path, tag: Option<&str>, arch: &str) -> Result<Image, String> {
    let index: Index = json("index.json", &read_small(&dir.join("index.json"))?)?;
    let name = |d: &Descriptor| d.annotations.get(REF_NAME).cloned();
    let chosen = match tag {
        Some(t) => index
            .manifests
            .iter()
            .find(|d| name(d).as_deref() == Some(t))
            .ok_or_else(|| {
                let tags: Vec<String> = index.manifests.iter().filter_map(name).collect();
                format!(
                    "{}: no image tagged `{t}` (tags: {})",
                    dir.display(),
                    if tags.is_empty() {
                        "none".into()
                    } else {
                        tags.join(", ")
                    }
                )
            })?,
        None => match index.manifests.as_slice() {
            [one] => one,
            [] => return Err(format!("{}: index.json lists no image", dir.display())),
            _ => {
                return Err(format!(
                    "{}: index.json lists {} images: name one as oci:PATH:TAG",
                    dir.display(),
                    index.manifests.len()
                ))
            }
        },
    };
    let mut desc = chosen.clone();
    if desc.media_type == INDEX_TYPE || desc.media_type == LIST_TYPE {
        let nested: Index = json("image index", &oci_blob(dir, "image index", &desc)?)?;
        desc = nested
            .manifests
            .into_iter()
            .find(|d| {
                d.platform
                    .as_ref()
                    .is_some_and(|p| p.os == "linux" && p.architecture == arch)
            })
            .ok_or_else(|| format!("{}: no linux/{arch} image in the index", dir.display()))?;
    }
    let manifest: Manifest = json("manifest", &oci_blob(dir, "manifest", &desc)?)?;
    let config = oci_blob(dir, "config", &manifest.config)?;
    let layers = manifest
        .layers
        .iter()
        .map(|l| {
            let digest = Digest::parse(&l.digest).map_err(|e| format!("layer: {e}"))?;
            Ok(Blob {
                name: digest.to_string(),
                loc: Loc::File(dir.join("blobs/sha256").join(digest.hex())),
                digest: Some(digest),
                size: Some(l.size),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(Image {
        reference: format!(
            "oci:{}{}",
            dir.display(),
            tag.map(|t| format!(":{t}")).unwrap_or_default()
        ),
        config,
        layers,
        archive: None,
    })
}

/// A digest a docker archive member's name carries: `blobs/sha256/HEX`
/// (docker 25 and later) or `HEX.json` (older configs).
fn digest_in_name(name: &str) -> Option<Digest> {
    let hex = name
        .strip_prefix("blobs/sha256/")
        .or_else(|| name.strip_suffix(".json"))?;
    Digest::parse(&format!("sha256:{hex}")).ok()
}

/// A member of a docker archive: its data (offset and length in the
/// archive), or a symlink's target.
enum Member {
    Data(u64, u64),
    Link(String),
}

/// Most symlinks followed from one member name, as the kernel's bound.
const MAX_LINKS: usize = 40;

/// Where the data of the member `name` is, a symlink followed to the
/// member it names: `docker save` before Docker 25 writes a layer the
/// image has twice as `ID2/layer.tar -> ../ID1/layer.tar`. A target is
/// taken from the link's directory, inside the archive only (never the
/// build host's file of that name); one leading out of it, to no member
/// or round in a loop is refused. `None`: no member `name`.
fn locate(members: &HashMap<String, Member>, name: &str) -> Result<Option<(u64, u64)>, String> {
    let mut at = name.to_owned();
    for _ in 0..=MAX_LINKS {
        let target = match members.get(&at) {
            Some(Member::Data(off, len)) => return Ok(Some((*off, *len))),
            Some(Member::Link(target)) => target,
            None if at == name => return Ok(None),
            None => return Err(format!("`{name}`: a symlink to `{at}`, which is no member")),
        };
        let out = || format!("`{name}`: the symlink `{at}` -> `{target}` leads out of the archive");
        if target.starts_with('/') {
            return Err(out());
        }
        let mut comps: Vec<&str> = at.split('/').collect();
        comps.pop();
        for c in target.split('/') {
            match c {
                "" | "." => {}
                ".." => {
                    comps.pop().ok_or_else(out)?;
                }
                c => comps.push(c),
            }
        }
        at = comps.join("/");
    }
    Err(format!("`{name}`: more than {MAX_LINKS} symlinks"))
}

fn open_archive(file: &Path, tag: Option<&str>) -> Result<Image, String> {
    let shown = file.display();
    let f = open_file(file).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let mut members: HashMap<String, Member> = HashMap::new();
    let mut ar = tar::Archive::new(f);
    for e in ar
        .entries()
        .map_err(|e| format!("{shown}: not a tar archive: {e}"))?
    {
        let e = e.map_err(|e| format!("{shown}: broken tar archive: {e}"))?;
        let kind = e.header().entry_type();
        if !kind.is_file() && !kind.is_symlink() {
            continue;
        }
        let path = e.path().map_err(|e| format!("{shown}: {e}"))?;
        let name = path.to_string_lossy().trim_start_matches("./").to_owned();
        if kind.is_file() {
            members.insert(name, Member::Data(e.raw_file_position(), e.size()));
        } else if kind.is_symlink() {
            let target = e
                .link_name()
                .map_err(|e| format!("{shown}: `{name}`: {e}"))?
                .ok_or_else(|| format!("{shown}: `{name}`: a symlink without a target"))?;
            members.insert(name, Member::Link(target.to_string_lossy().into_owned()));
        }
    }
    let mut f = open_file(file).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let mut member = |name: &str| -> Result<Vec<u8>, String> {
        let (off, len) = locate(&members, name)
            .map_err(|e| format!("{shown}: {e}"))?
            .ok_or_else(|| format!("{shown}: no member `{name}`"))?;
        if len > JSON_MAX {
            return Err(format!("{shown}: `{name}` is too large"));
        }
        let mut v = Vec::new();
        f.seek(SeekFrom::Start(off))
            .and_then(|_| (&mut f).take(len).read_to_end(&mut v))
            .map_err(|e| format!("{shown}: `{name}`: {e}"))?;
        Ok(v)
    };
    let entries: Vec<ArchiveEntry> = json("manifest.json", &member("manifest.json")?)?;
    let tags = |e: &ArchiveEntry| e.repo_tags.clone().unwrap_or_default();
    let entry = match tag {
        Some(t) => {
            // A TAG alone matches the RepoTags of any repository; the
            // image it names must be one all the same.
            let named = |x: &String| {
                x == t || (!t.contains(':') && x.rsplit_once(':').is_some_and(|(_, s)| s == t))
            };
            let listed = |keep: &dyn Fn(&String) -> bool| {
                let all: Vec<String> = entries.iter().flat_map(tags).filter(keep).collect();
                if all.is_empty() {
                    "none".into()
                } else {
                    all.join(", ")
                }
            };
            let found: Vec<&ArchiveEntry> = entries
                .iter()
                .filter(|e| tags(e).iter().any(named))
                .collect();
            match found.as_slice() {
                [one] => *one,
                [] => {
                    return Err(format!(
                        "{shown}: no image tagged `{t}` (tags: {})",
                        listed(&|_| true)
                    ))
                }
                many => {
                    return Err(format!(
                    "{shown}: `{t}` names {} images ({}): name one as docker-archive:FILE:REPO:TAG",
                    many.len(),
                    listed(&named)
                ))
                }
            }
        }
        None => match entries.as_slice() {
            [one] => one,
            _ => {
                return Err(format!(
                    "{shown}: {} images in the archive: name one as docker-archive:FILE:TAG",
                    entries.len()
                ))
            }
        },
    };
    let config = member(&entry.config)?;
    let digest = digest_in_name(&entry.config).ok_or_else(|| {
        format!(
            "{shown}: config `{}` is not named by its digest",
            entry.config
        )
    })?;
    verify("config", &config, &digest, config.len() as u64)?;
    let layers = entry
        .layers
        .iter()
        .map(|l| {
            let (off, len) = locate(&members, l)
                .map_err(|e| format!("{shown}: layer {e}"))?
                .ok_or_else(|| format!("{shown}: no layer member `{l}`"))?;
            // Members of older archives (ID/layer.tar) carry no digest:
            // the diff_id of the config checks their content.
            Ok(Blob {
                name: l.clone(),
                digest: digest_in_name(l),
                size: Some(len),
                loc: Loc::InArchive(off, len),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(Image {
        // With what picked the image, as an oci: source's tag: the
        // archive may hold others.
        reference: format!(
            "docker-archive:{shown}{}",
            tag.map(|t| format!(":{t}")).unwrap_or_default()
        ),
        config,
        layers,
        archive: Some(file.to_path_buf()),
    })
}
