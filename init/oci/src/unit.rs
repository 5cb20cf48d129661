//! The unit file written from an image config: what each config field
//! becomes (docs/containers.md has the table), checked by parsing it back
//! with PID 1's own parser before it is written.

use serde::Deserialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The capabilities Docker (moby) and crun grant a container's root user
/// by default.
pub const DOCKER_CAPS: &str = "chown dac_override fsetid fowner mknod net_raw setgid setuid setfcap setpcap net_bind_service sys_chroot kill audit_write";

/// PATH when the image sets none (what Docker uses).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct RunConfig {
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    #[serde(default)]
    pub working_dir: Option<String>,
}

#[derive(Deserialize)]
pub struct RootFs {
    pub diff_ids: Vec<String>,
}

#[derive(Deserialize)]
pub struct Config {
    #[serde(default)]
    pub architecture: Option<String>,
    #[serde(default)]
    pub config: Option<RunConfig>,
    pub rootfs: RootFs,
}

/// Largest /etc/passwd or /etc/group read from an image.
const TEXT_MAX: u64 = 1 << 20;

/// The image's file system as overlayfs will merge it: `layers` are host
/// directories, topmost first.
pub struct Merged<'a> {
    pub layers: &'a [PathBuf],
}

impl Merged<'_> {
    /// The host path of the absolute `path` in the merged view, without
    /// following symlinks: the topmost layer that has it wins; a whiteout
    /// (0/0 character device), a non-directory on the way or an opaque
    /// directory hides the layers below. `..` is taken lexically, as
    /// `resolve` does, and stays at the image's root as the kernel stays
    /// at the unit's: never joined to a host path, which it would leave.
    pub fn find(&self, path: &str) -> Option<PathBuf> {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let mut comps: Vec<&str> = Vec::new();
        for c in path.split('/') {
            match c {
                "" | "." => {}
                ".." => {
                    comps.pop();
                }
                c => comps.push(c),
            }
        }
        if comps.is_empty() {
            return self.layers.first().cloned();
        }
        for layer in self.layers {
            let mut p = layer.clone();
            let mut opaque = false;
            for (i, c) in comps.iter().enumerate() {
                p.push(c);
                let Ok(m) = std::fs::symlink_metadata(&p) else {
                    break;
                };
                if m.file_type().is_char_device() && m.rdev() == 0 {
                    return None;
                }
                if i + 1 == comps.len() {
                    return Some(p);
                }
                if !m.is_dir() {
                    return None;
                }
                let mut v = [0u8; 1];
                opaque |= matches!(
                    rustix::fs::lgetxattr(&p, "trusted.overlay.opaque", &mut v),
                    Ok(1) if v == *b"y"
                );
            }
            if opaque {
                return None;
            }
        }
        None
    }

    /// `find` with the image's symlinks followed inside the image, as the
    /// kernel will inside the unit's root (`/opt/app -> app-1.2`, a merged
    /// `/bin -> usr/bin` on the way to a program); at most 40 links, as
    /// the kernel's bound.
    pub fn resolve(&self, path: &str) -> Option<PathBuf> {
        let mut path = path.to_owned();
        'links: for _ in 0..40 {
            let comps: Vec<&str> = path
                .split('/')
                .filter(|c| !c.is_empty() && *c != ".")
                .collect();
            let mut at = String::new();
            for (i, c) in comps.iter().enumerate() {
                if *c == ".." {
                    at.truncate(at.rfind('/').unwrap_or(0));
                    continue;
                }
                at.push('/');
                at.push_str(c);
                let host = self.find(&at)?;
                let Ok(target) = std::fs::read_link(&host) else {
                    continue;
                };
                let target = target.to_str()?;
                let base = if target.starts_with('/') {
                    ""
                } else {
                    at.get(..at.rfind('/').unwrap_or(0)).unwrap_or_default()
                };
                let rest = comps.get(i + 1..).unwrap_or_default().join("/");
                path = format!("{base}/{target}/{rest}");
                continue 'links;
            }
            return self.find(&at);
        }
        None
    }

    /// A small text file of the image (/etc/passwd, /etc/group): only a
    /// regular file in the layers, never what a link there names (the
    /// build host's own files, /dev/zero), and at most `TEXT_MAX` bytes.
    fn read(&self, path: &str) -> Option<String> {
        use std::io::Read;
        let p = self.find(path)?;
        if !std::fs::symlink_metadata(&p).ok()?.is_file() {
            return None;
        }
        let f = crate::source::open_file(&p).ok()?;
        let mut b = Vec::new();
        f.take(TEXT_MAX + 1).read_to_end(&mut b).ok()?;
        if b.len() as u64 > TEXT_MAX {
            return None;
        }
        Some(String::from_utf8_lossy(&b).into_owned())
    }
}

/// Fields 0 and 2 and 3 of the `/etc/passwd` or `/etc/group` lines.
fn id_lines(text: &str) -> impl Iterator<Item = (&str, Option<u32>, Option<u32>)> {
    text.lines().filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        let name = *f.first()?;
        let num = |i: usize| f.get(i).and_then(|s| s.parse().ok());
        Some((name, num(2), num(3)))
    })
}

/// `User` (`user`, `uid`, `user:group`, `uid:gid`) as `user` and `group`
/// keys, checked against the image's own passwd and group.
fn user_keys(user: &str, img: &Merged) -> Result<Vec<(String, String)>, String> {
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let passwd = img.read("/etc/passwd").unwrap_or_default();
    let mut keys = Vec::new();
    let mut primary = None;
    if let Ok(uid) = u.parse::<u32>() {
        keys.push(("user".into(), uid.to_string()));
        primary = id_lines(&passwd)
            .find(|l| l.1 == Some(uid))
            .and_then(|l| l.2);
    } else if !u.is_empty() {
        if !id_lines(&passwd).any(|l| l.0 == u) {
            return Err(format!("User `{u}` is not in the image's /etc/passwd"));
        }
        keys.push(("user".into(), u.to_owned()));
    }
    match g {
        Some(g) if g.parse::<u32>().is_ok() => keys.push(("group".into(), g.to_owned())),
        Some(g) => {
            let group = img.read("/etc/group").unwrap_or_default();
            if !id_lines(&group).any(|l| l.0 == g) {
                return Err(format!(
                    "User: group `{g}` is not in the image's /etc/group"
                ));
            }
            keys.push(("group".into(), g.to_owned()));
        }
        // A uid without a passwd line runs with gid 0, as under Docker.
        None if u.parse::<u32>().is_ok() => {
            keys.push(("group".into(), primary.unwrap_or(0).to_string()))
        }
        None => {}
    }
    Ok(keys)
}

/// One `exec` argument in the unit syntax: blanks separate, `"..."`
/// groups, `\` escapes.
fn quote(arg: &str) -> Result<String, String> {
    if arg.contains(['\n', '\r', '\0']) {
        return Err(format!(
            "argument {arg:?}: a line break cannot be written in a unit"
        ));
    }
    // Any white space quoted: the parser trims a line's ends of it all.
    if !arg.is_empty() && !arg.contains(|c: char| c.is_whitespace() || c == '"' || c == '\\') {
        return Ok(arg.to_owned());
    }
    let mut q = String::from("\"");
    for c in arg.chars() {
        if c == '"' || c == '\\' {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    Ok(q)
}

/// "image REFERENCE", cut to what `description` takes: a build host's
/// long path keeps its end (the image's name and tag), not its start.
fn description(reference: &str) -> String {
    let max = wren_core::vocab::DESC_MAX - "image ...".len();
    let mut cut = reference.len().saturating_sub(max);
    while !reference.is_char_boundary(cut) {
        cut += 1;
    }
    match reference.get(cut..) {
        Some(tail) if cut > 0 => format!("image ...{tail}"),
        _ => format!("image {reference}"),
    }
}

/// The program as an absolute path: `./x` against the working
/// directory, a bare name against the image's PATH (in its layers).
fn program(prog: &str, path: &str, workdir: &str, img: &Merged) -> Result<String, String> {
    if prog.starts_with('/') {
        return Ok(prog.to_owned());
    }
    if prog.contains('/') {
        return Ok(format!(
            "{}/{}",
            workdir.trim_end_matches('/'),
            prog.trim_start_matches("./")
        ));
    }
    path.split(':')
        .filter(|d| d.starts_with('/'))
        .map(|d| format!("{}/{prog}", d.trim_end_matches('/')))
        .find(|p| img.resolve(p).is_some())
        .ok_or_else(|| format!("program `{prog}` not found on the image's PATH ({path})"))
}

/// Options that add to or replace what the config gives.
#[derive(Default)]
pub struct Extra {
    pub memory_max: Option<String>,
    /// `--set KEY=VALUE`: replaces the key's generated line, or adds one.
    pub set: Vec<(String, String)>,
}

/// The unit text for `config`, whose root is `root` (target paths of the
/// layers, topmost first).
pub fn render(
    name: &str,
    reference: &str,
    config: &Config,
    root: &[String],
    img: &Merged,
    extra: &Extra,
) -> Result<String, String> {
    let empty = RunConfig::default();
    let rc = config.config.as_ref().unwrap_or(&empty);
    let mut keys: Vec<(String, String)> = Vec::new();
    let mut key = |k: &str, v: String| keys.push((k.to_owned(), v));
    // A layout's path may hold any byte but NUL: a line break in it
    // would add keys of its own to the unit.
    let reference = crate::printable(reference);
    key("description", description(&reference));
    let env = rc.env.clone().unwrap_or_default();
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH)
        .to_owned();
    let workdir = rc
        .working_dir
        .clone()
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".into());
    if !workdir.starts_with('/') {
        return Err(format!("WorkingDir `{workdir}` is not absolute"));
    }
    // Through the image's own symlinks (`/opt -> usr/opt`), as the
    // kernel will reach it inside the unit's root.
    if workdir != "/" && img.resolve(&workdir).is_none() {
        return Err(format!(
            "WorkingDir `{workdir}` is not in the image (root_overlay units cannot create it)"
        ));
    }
    let argv: Vec<String> = rc
        .entrypoint
        .iter()
        .flatten()
        .chain(rc.cmd.iter().flatten())
        .cloned()
        .collect();
    let Some((prog, args)) = argv.split_first() else {
        return Err("the config has no Entrypoint or Cmd: nothing to run".into());
    };
    let mut exec = quote(&program(prog, &path, &workdir, img)?)?;
    for a in args {
        exec.push(' ');
        exec.push_str(&quote(a)?);
    }
    key("exec", exec);
    for e in &env {
        if e.trim() != e.as_str() || e.contains(['\n', '\r']) || !e.contains('=') {
            return Err(format!("Env {e:?}: cannot be written as a unit `env` line"));
        }
        key("env", e.clone());
    }
    // The PATH the program was looked up on is the one it runs with, as
    // under Docker (wren's own default has no /usr/local).
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        key("env", format!("PATH={DEFAULT_PATH}"));
    }
    if workdir != "/" {
        key("workdir", workdir.clone());
    }
    let user_keys = user_keys(rc.user.as_deref().unwrap_or(""), img)?;
    // The user the unit runs as is the last `--set user=` if any: the
    // capabilities follow it, not the image's, or root's set given to a
    // non-root user would be raised as its ambient set (setuid with it).
    let user = extra
        .set
        .iter()
        .rev()
        .find(|(k, _)| k == "user")
        .or_else(|| user_keys.iter().find(|(k, _)| k == "user"))
        .map(|(_, v)| v.as_str());
    // Root by its uid, whatever its name (`toor`), as under Docker.
    let passwd = img.read("/etc/passwd").unwrap_or_default();
    let root_user =
        user.is_none_or(|v| v == "0" || id_lines(&passwd).any(|l| l.0 == v && l.1 == Some(0)));
    for (k, v) in user_keys {
        key(&k, v);
    }
    key("namespaces", "pid mount uts ipc".into());
    key("root", root.join(":"));
    key("root_overlay", "yes".into());
    // Docker gives a non-root user no effective capability either. A
    // `--set capabilities=` replaces this line below: the operator's.
    key(
        "capabilities",
        if root_user {
            DOCKER_CAPS.into()
        } else {
            "none".into()
        },
    );
    if let Some(m) = &extra.memory_max {
        key("memory.max", m.clone());
    }
    for (k, v) in &extra.set {
        let repeatable = k == "env" || k == "after";
        match keys.iter_mut().find(|(kk, _)| kk == k) {
            Some(slot) if !repeatable => slot.1 = v.clone(),
            _ => keys.push((k.clone(), v.clone())),
        }
    }
    let mut text =
        format!("# Written by wren-oci from {reference}: run it again rather than edit.\n");
    for (k, v) in &keys {
        // One line a key: a value with a line break (a WorkingDir, a
        // `--set`) would add keys of the image's choosing.
        if v.contains(['\n', '\r', '\0']) {
            return Err(format!(
                "{k} {v:?}: a line break cannot be written in a unit"
            ));
        }
        let _ = writeln!(text, "{k} = {v}");
    }
    if let Err(e) = wren_core::unit::parse(name, &text) {
        return Err(format!(
            "the unit written would be refused: {name}.unit:{}: {}",
            e.line, e.msg
        ));
    }
    Ok(text)
}

/// Write `text` as `units/NAME.unit`, atomically and on disk (the file,
/// then the rename). The temporary file is made new (mode 0644 at most):
/// one there already, a killed import's or a symlink planted in the
/// target tree to lead the write out of it, is removed itself, never
/// written through.
pub fn write(units: &Path, name: &str, text: &str) -> Result<PathBuf, String> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt;
    let path = units.join(format!("{name}.unit"));
    let tmp = units.join(format!(".{name}.unit.tmp"));
    let failed = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(failed(e)),
        _ => {}
    }
    let nofollow = i32::try_from(rustix::fs::OFlags::NOFOLLOW.bits()).unwrap_or(0);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(nofollow)
        .mode(0o644)
        .open(&tmp)
        .and_then(|mut f| f.write_all(text.as_bytes()).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            failed(e)
        })?;
    std::fs::File::open(units)
        .and_then(|d| d.sync_all())
        .map_err(failed)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    /// Every argument comes back from the unit as it went in, white space
    /// at its ends included (the parser trims a line of any).
    #[test]
    fn arguments_survive_the_unit_syntax() {
        let args = [
            "/bin/app",
            "a b",
            "say \"hi\"",
            "back\\slash",
            "",
            "end\u{a0}",
        ];
        let line: Vec<String> = args.iter().map(|a| super::quote(a).unwrap()).collect();
        let text = format!("exec = {}\n", line.join(" "));
        let def = wren_core::unit::parse("t", &text).unwrap();
        let got: Vec<&str> = def.exec.iter().collect();
        assert_eq!(got, args, "{text}");
        assert!(super::quote("a\nb").is_err());
    }

    /// A reference with line breaks (a layout's path may hold any byte
    /// but `/` and NUL) adds no key: long enough that `description`
    /// keeps only its end, it was written whole in the header comment.
    #[test]
    fn a_reference_with_line_breaks_adds_no_key() {
        let config: super::Config = serde_json::from_str(
            r#"{"config":{"Entrypoint":["/bin/app"]},"rootfs":{"diff_ids":[]}}"#,
        )
        .unwrap();
        let reference = format!("oci:/x\nuser = 0\n#{}", "y".repeat(100));
        let text = super::render(
            "app",
            &reference,
            &config,
            &["/var/lib/wren/layers/sha256/00".into()],
            &super::Merged { layers: &[] },
            &super::Extra::default(),
        )
        .unwrap();
        assert!(!text.lines().any(|l| l.starts_with("user")), "{text}");
        assert!(
            text.starts_with("# Written by wren-oci from oci:/x\\nuser = 0\\n#y"),
            "{text}"
        );
    }
}
