//! Images built in the tests: tar layers written byte by byte where a
//! hostile name must get through, OCI layouts and docker archives around
//! them.
#![allow(dead_code)]

use sha2::{Digest as _, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn sha(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// A fresh directory under the target dir, removed first.
pub fn scratch(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("oci-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A layer's tar stream.
pub struct Tar(tar::Builder<Vec<u8>>);

impl Tar {
    pub fn new() -> Tar {
        Tar(tar::Builder::new(Vec::new()))
    }

    /// An entry written with its name as raw bytes (no checks).
    pub fn raw(self, kind: tar::EntryType, name: &str, link: &str, data: &[u8], mode: u32) -> Tar {
        self.raw_bytes(kind, name.as_bytes(), link, data, mode)
    }

    /// `raw` with a name that need not be UTF-8.
    pub fn raw_bytes(
        mut self,
        kind: tar::EntryType,
        name: &[u8],
        link: &str,
        data: &[u8],
        mode: u32,
    ) -> Tar {
        let mut h = tar::Header::new_gnu();
        {
            let g = h.as_gnu_mut().unwrap();
            g.name[..name.len()].copy_from_slice(name);
            g.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_cksum();
        self.0.append(&h, data).unwrap();
        self
    }

    /// A file whose owner fields do not parse (not octal).
    pub fn unowned(mut self, name: &str, data: &[u8], mode: u32) -> Tar {
        let mut h = tar::Header::new_gnu();
        h.set_path(name).unwrap();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        {
            let g = h.as_gnu_mut().unwrap();
            g.uid = *b"zzzzzz\0\0";
            g.gid = *b"zzzzzz\0\0";
        }
        h.set_cksum();
        self.0.append(&h, data).unwrap();
        self
    }

    /// A directory whose owner fields do not parse (not octal): unpacked
    /// without a chown, by any user.
    pub fn unowned_dir(mut self, name: &str) -> Tar {
        let mut h = tar::Header::new_gnu();
        h.set_path(name).unwrap();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_size(0);
        h.set_mode(0o755);
        {
            let g = h.as_gnu_mut().unwrap();
            g.uid = *b"zzzzzz\0\0";
            g.gid = *b"zzzzzz\0\0";
        }
        h.set_cksum();
        self.0.append(&h, &[][..]).unwrap();
        self
    }

    pub fn owned(self, name: &str, data: &[u8], mode: u32, uid: u64) -> Tar {
        let mut t = self;
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_uid(uid);
        h.set_gid(uid);
        t.0.append_data(&mut h, name, data).unwrap();
        t
    }

    /// A GNU sparse file (type `S`): `data` at offset `hole`, zeros
    /// before it (a file of `hole + data.len()` bytes).
    pub fn sparse(mut self, name: &str, hole: u64, data: &[u8]) -> Tar {
        let mut h = tar::Header::new_gnu();
        h.set_path(name).unwrap();
        h.set_entry_type(tar::EntryType::GNUSparse);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        {
            let g = h.as_gnu_mut().unwrap();
            g.sparse[0].set_offset(hole);
            g.sparse[0].set_length(data.len() as u64);
            g.set_real_size(hole + data.len() as u64);
        }
        h.set_cksum();
        self.0.append(&h, data).unwrap();
        self
    }

    /// PAX records for the next entry.
    pub fn pax(mut self, records: &[(&str, &[u8])]) -> Tar {
        self.0
            .append_pax_extensions(records.iter().map(|(k, v)| (*k, *v)))
            .unwrap();
        self
    }

    /// A directory entry by a name of any length (a GNU long name).
    pub fn owned_dir(mut self, name: &str, mode: u32) -> Tar {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_size(0);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        self.0.append_data(&mut h, name, &[][..]).unwrap();
        self
    }

    pub fn file(self, name: &str, data: &[u8], mode: u32) -> Tar {
        self.raw(tar::EntryType::Regular, name, "", data, mode)
    }
    pub fn dir(self, name: &str) -> Tar {
        self.raw(tar::EntryType::Directory, name, "", b"", 0o755)
    }
    pub fn symlink(self, name: &str, target: &str) -> Tar {
        self.raw(tar::EntryType::Symlink, name, target, b"", 0o777)
    }
    pub fn hardlink(self, name: &str, target: &str) -> Tar {
        self.raw(tar::EntryType::Link, name, target, b"", 0o644)
    }
    pub fn bytes(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }
}

#[derive(Clone, Copy)]
pub enum Comp {
    Plain,
    Gzip,
    Zstd,
}

pub fn compress(tar: &[u8], c: Comp) -> Vec<u8> {
    use std::io::Write;
    match c {
        Comp::Plain => tar.to_vec(),
        Comp::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(tar).unwrap();
            e.finish().unwrap()
        }
        Comp::Zstd => {
            ruzstd::encoding::compress_to_vec(tar, ruzstd::encoding::CompressionLevel::Fastest)
        }
    }
}

pub fn media(c: Comp) -> &'static str {
    match c {
        Comp::Plain => "application/vnd.oci.image.layer.v1.tar",
        Comp::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
        Comp::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
    }
}

/// The config JSON of an image with these layer tars and run settings
/// (`run` is the inner "config" object).
pub fn config<T: AsRef<[u8]>>(tars: &[T], run: &str) -> Vec<u8> {
    let ids: Vec<String> = tars
        .iter()
        .map(|t| format!("\"sha256:{}\"", sha(t.as_ref())))
        .collect();
    format!(
        r#"{{"architecture":"arm64","os":"linux","config":{run},"rootfs":{{"type":"layers","diff_ids":[{}]}}}}"#,
        ids.join(",")
    )
    .into_bytes()
}

/// Write an OCI image layout at `dir` with one image tagged `tag`; the
/// blobs are `(bytes, media type)`. Returns the layer blob paths.
pub fn oci_layout(
    dir: &Path,
    tag: &str,
    layers: &[(Vec<u8>, &str)],
    config: &[u8],
) -> Vec<PathBuf> {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |b: &[u8]| {
        let h = sha(b);
        std::fs::write(blobs.join(&h), b).unwrap();
        h
    };
    let cfg = put(config);
    let mut descs = Vec::new();
    let mut paths = Vec::new();
    for (b, m) in layers {
        let h = put(b);
        paths.push(blobs.join(&h));
        descs.push(format!(
            r#"{{"mediaType":"{m}","digest":"sha256:{h}","size":{}}}"#,
            b.len()
        ));
    }
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:{cfg}","size":{}}},"layers":[{}]}}"#,
        config.len(),
        descs.join(",")
    );
    let mh = put(manifest.as_bytes());
    std::fs::write(
        dir.join("index.json"),
        format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:{mh}","size":{},"annotations":{{"org.opencontainers.image.ref.name":"{tag}"}}}}]}}"#,
            manifest.len()
        ),
    )
    .unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    paths
}

/// A `docker save` archive (the classic layout: ID/layer.tar, HEX.json).
pub fn docker_archive(file: &Path, tag: &str, tars: &[Vec<u8>], config: &[u8]) {
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data).unwrap();
    };
    let cfg = format!("{}.json", sha(config));
    add(&cfg, config);
    let mut names = Vec::new();
    for t in tars {
        let n = format!("{}/layer.tar", sha(t));
        add(&n, t);
        names.push(format!("\"{n}\""));
    }
    let manifest = format!(
        r#"[{{"Config":"{cfg}","RepoTags":["{tag}"],"Layers":[{}]}}]"#,
        names.join(",")
    );
    add("manifest.json", manifest.as_bytes());
    std::fs::write(file, b.into_inner().unwrap()).unwrap();
}

/// Run wren-oci; (exit code, stdout + stderr).
pub fn wren_oci(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_wren-oci"))
        .args(args)
        .output()
        .unwrap();
    exit_and_text(&out)
}

/// A finished wren-oci's exit code and its stdout then stderr.
pub fn exit_and_text(out: &std::process::Output) -> (i32, String) {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// What `wren_oci_within` saw.
pub struct Run {
    /// The exit code; -1 when killed.
    pub code: i32,
    /// stdout + stderr.
    pub out: String,
    /// How long it ran.
    pub wall: std::time::Duration,
    /// The CPU time it used (user and system), as last read from /proc
    /// while it ran: a measure of its work that a busy host does not
    /// stretch as it does the wall time.
    pub cpu: std::time::Duration,
}

/// The user and system time of a running process.
fn cpu_time(pid: u32) -> Option<std::time::Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_comm = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = after_comm.split_whitespace().collect();
    // Fields 14 and 15 (utime, stime) in USER_HZ ticks (100 a second).
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(std::time::Duration::from_millis(ticks * 10))
}

/// `wren_oci`, killed if it runs longer than `limit`.
pub fn wren_oci_within(args: &[&str], limit: std::time::Duration) -> Run {
    use std::io::Read;
    let start = std::time::Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_wren-oci"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut cpu = std::time::Duration::ZERO;
    let code = loop {
        cpu = cpu_time(child.id()).unwrap_or(cpu);
        if let Some(st) = child.try_wait().unwrap() {
            break st.code().unwrap_or(-1);
        }
        if start.elapsed() > limit {
            child.kill().unwrap();
            child.wait().unwrap();
            break -1;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    let mut text = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut text).unwrap();
    child.stderr.take().unwrap().read_to_end(&mut text).unwrap();
    Run {
        code,
        out: String::from_utf8_lossy(&text).into_owned(),
        wall: start.elapsed(),
        cpu,
    }
}

/// The arguments that import the layout `d/img` into `d/root` as the
/// unit `x`.
fn import_x_args(d: &Path) -> Vec<String> {
    let root = d.join("root").to_str().unwrap().to_owned();
    let src = format!("oci:{}", d.join("img").display());
    ["import", "--root", &root, "--name", "x", &src]
        .map(String::from)
        .to_vec()
}

/// Import the layout `d/img` into `d/root` as the unit `x`.
pub fn import_x(d: &Path) -> (i32, String) {
    let args = import_x_args(d);
    wren_oci(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// `import_x`, killed if it runs longer than `limit`.
pub fn import_x_within(d: &Path, limit: std::time::Duration) -> Run {
    let args = import_x_args(d);
    wren_oci_within(&args.iter().map(String::as_str).collect::<Vec<_>>(), limit)
}

/// Every path under `dir`, relative, sorted.
pub fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(dir).unwrap().display().to_string());
            if p.symlink_metadata().unwrap().is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Bytes of the regular files under `dir`, each inode once.
pub fn disk_bytes(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut seen = std::collections::HashSet::new();
    let mut total = 0;
    for rel in tree(dir) {
        let m = dir.join(&rel).symlink_metadata().unwrap();
        if m.is_file() && seen.insert(m.ino()) {
            total += m.len();
        }
    }
    total
}

/// `initctl check --root DIR` as a list of lines.
pub fn check_root(root: &Path) -> (bool, String) {
    let mut out = Vec::new();
    let ok = wren::config::check_root(root, &[], &mut out);
    (ok, String::from_utf8(out).unwrap())
}
