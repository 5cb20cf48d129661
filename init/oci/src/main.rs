//! `wren-oci import --root DIR --name NAME [OPTIONS] SOURCE`: a build-host
//! tool that turns a container image into layers in DIR's layer store and
//! a unit file DIR/etc/units/NAME.unit (CONTRACT section 6,
//! docs/containers.md). Never part of the PID 1 binary.
//!
//! Exit status: 0 imported, 1 refused or broken image (nothing written
//! outside DIR, no half-unpacked layer left in the store), 2 usage.

mod digest;
mod source;
mod store;
mod unit;
mod unpack;

use std::path::PathBuf;

const USAGE: &str = "usage: wren-oci import --root DIR --name NAME [OPTIONS] SOURCE
  SOURCE            oci:PATH[:TAG] (OCI image layout) or docker-archive:FILE[:TAG]
                    or docker-archive:FILE:REPO:TAG (FILE: the longest part that is a file)
  --root DIR        the target's root directory (layers go to DIR/var/lib/wren/layers,
                    the unit to DIR/etc/units/NAME.unit)
  --name NAME       the unit's name
  --memory-max SIZE memory.max of the unit (e.g. 64M)
  --set KEY=VALUE   a unit key: replaces the line written from the image, or adds
                    one (repeatable; env and after add)
  --arch ARCH       the platform picked from a multi-platform index (default arm64)
  --max-size SIZE   bound on the unpacked bytes of all layers (default 4G)
  --max-entries N   bound on the tar entries of all layers (default 1000000)";

struct Args {
    root: PathBuf,
    name: String,
    source: source::Source,
    arch: String,
    max_size: u64,
    max_entries: u64,
    extra: unit::Extra,
}

fn size(v: &str) -> Option<u64> {
    let (n, mult) = match v.as_bytes().last()? {
        b'K' => (v.get(..v.len() - 1)?, 1u64 << 10),
        b'M' => (v.get(..v.len() - 1)?, 1 << 20),
        b'G' => (v.get(..v.len() - 1)?, 1 << 30),
        _ => (v, 1),
    };
    n.parse::<u64>().ok()?.checked_mul(mult)
}

fn parse_args(argv: &[String]) -> Result<Args, String> {
    let mut it = argv.iter();
    match it.next().map(String::as_str) {
        Some("import") => {}
        Some(c) => return Err(format!("unknown command `{c}`")),
        None => return Err("no command".into()),
    }
    let (mut root, mut name, mut src) = (None, None, None);
    let mut arch = "arm64".to_owned();
    let mut max_size = 4u64 << 30;
    let mut max_entries = 1_000_000u64;
    let mut extra = unit::Extra::default();
    while let Some(a) = it.next() {
        let mut val = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{a}: needs a value"))
        };
        match a.as_str() {
            "--root" => root = Some(PathBuf::from(val()?)),
            "--name" => name = Some(val()?),
            "--arch" => arch = val()?,
            "--memory-max" => extra.memory_max = Some(val()?),
            "--max-size" => {
                let v = val()?;
                max_size = size(&v).ok_or_else(|| format!("--max-size: bad size `{v}`"))?;
            }
            "--max-entries" => {
                let v = val()?;
                max_entries = v
                    .parse()
                    .map_err(|_| format!("--max-entries: bad number `{v}`"))?;
            }
            "--set" => {
                let v = val()?;
                let (k, x) = v
                    .split_once('=')
                    .ok_or_else(|| format!("--set: expected KEY=VALUE, got `{v}`"))?;
                extra.set.push((k.trim().to_owned(), x.trim().to_owned()));
            }
            s if s.starts_with("--") => return Err(format!("unknown option `{s}`")),
            s if src.is_none() => src = Some(source::Source::parse(s)?),
            s => return Err(format!("unexpected argument `{s}`")),
        }
    }
    let name = name.ok_or("--name is required")?;
    if !wren_core::vocab::valid_name(&name) {
        return Err(format!(
            "--name `{name}`: 1-32 of a-z 0-9 . _ -, starting with a letter or digit"
        ));
    }
    if let Some(why) = wren_core::vocab::reserved_name(&name) {
        return Err(format!("--name: {why}"));
    }
    Ok(Args {
        root: root.ok_or("--root is required")?,
        name,
        source: src.ok_or("no SOURCE given")?,
        arch,
        max_size,
        max_entries,
        extra,
    })
}

/// `s` with its control characters (and the Unicode line and paragraph
/// separators) escaped as Rust writes them (`\n`, `\u{1b}`); all else as
/// it is. For text of the image's or a path's choosing on its way into a
/// unit file or onto a terminal.
pub(crate) fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn import(a: &Args) -> Result<String, String> {
    if !a.root.is_dir() {
        return Err(format!("--root {}: not a directory", a.root.display()));
    }
    let image = source::Image::open(&a.source, &a.arch)?;
    let config: unit::Config = serde_json::from_slice(&image.config)
        .map_err(|e| format!("config: not a valid image config: {e}"))?;
    let diff_ids = config
        .rootfs
        .diff_ids
        .iter()
        .map(|d| digest::Digest::parse(d).map_err(|e| format!("config: diff_id: {e}")))
        .collect::<Result<Vec<_>, String>>()?;
    let max = wren_core::vocab::MAX_ROOT_LAYERS;
    if diff_ids.is_empty() || diff_ids.len() > max {
        return Err(format!(
            "{} layers: a unit's root takes 1 to {max} (squash the image: e.g. `buildah build --squash`)",
            diff_ids.len()
        ));
    }
    let mut budget = unpack::Budget {
        bytes_left: a.max_size,
        max_bytes: a.max_size,
        entries_left: a.max_entries,
        max_entries: a.max_entries,
    };
    let mut staged = store::stage_layers(&a.root, &image, &diff_ids, &mut budget)?;
    let warnings = std::mem::take(&mut staged.warnings);
    let top_first: Vec<PathBuf> = staged.dirs.iter().rev().cloned().collect();
    // A layer twice in the image (the empty layer `RUN` steps leave
    // repeats) is named once, where it is topmost: overlayfs refuses a
    // lower directory twice (ELOOP), and the lower copy could never show
    // through the upper one anyway.
    let mut root: Vec<String> = Vec::new();
    for p in staged.target_paths.iter().rev() {
        if !root.contains(p) {
            root.push(p.clone());
        }
    }
    let merged = unit::Merged { layers: &top_first };
    let text = unit::render(&a.name, &image.reference, &config, &root, &merged, &a.extra)?;
    if let Some(arch) = config.architecture.as_deref().filter(|x| *x != a.arch) {
        let warning = format!("the image is for {arch}, not {}", a.arch);
        eprintln!("wren-oci: warning: {}", printable(&warning));
    }
    let units = store::real_dir(&a.root, wren_core::vocab::DEFAULT_UNITS_DIR)?;
    let layers = staged.dirs.len();
    let new_layers = staged.commit()?;
    let path = unit::write(&units, &a.name, &text)?;
    // Once imported: they say what the image on the device will be.
    for w in &warnings {
        eprintln!("wren-oci: warning: {}", printable(w));
    }
    Ok(format!(
        "{}: {layers} layers ({new_layers} new), unit {}",
        image.reference,
        path.display()
    ))
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return;
    }
    let args = match parse_args(&argv) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("wren-oci: {}\n{USAGE}", printable(&e));
            std::process::exit(2);
        }
    };
    // Every message is printed escaped: it may name what the image
    // chose (an entry, a tag, a member, a config value; the tar crate's
    // own errors quote header bytes), which must not reach the terminal
    // or a build log raw.
    match import(&args) {
        Ok(summary) => println!("{}", printable(&summary)),
        Err(e) => {
            let source = match &args.source {
                source::Source::Oci { dir, .. } => dir.display(),
                source::Source::DockerArchive { file, .. } => file.display(),
            };
            eprintln!("wren-oci: {}", printable(&format!("{source}: {e}")));
            std::process::exit(1);
        }
    }
}
