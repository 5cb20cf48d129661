//! wren-oci on images built here: a two-layer image with every kind of
//! entry, layers shared between images, and hostile images that must be
//! refused with nothing written outside the target root.

// Test code: a failed check should fail loudly, so it unwraps, panics
// and indexes freely (the workspace denies these in non-test code).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;
use common::*;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

const PASSWD: &[u8] = b"root:x:0:0:root:/:/bin/sh\napp:x:1000:1001:app:/srv:/bin/sh\n";
const GROUP: &[u8] = b"root:x:0:\napp:x:1001:\n";

fn base_tar() -> Vec<u8> {
    Tar::new()
        .dir("/")
        .dir("bin/")
        .file("bin/app", b"#!/bin/app\n", 0o755)
        .hardlink("bin/app2", "bin/app")
        .symlink("bin/sh", "/bin/app")
        .file("etc/passwd", PASSWD, 0o644)
        .file("etc/group", GROUP, 0o644)
        .file("data/old", b"old", 0o644)
        .file("opt/x/from-base", b"base", 0o644)
        .owned("srv/owned", b"mine", 0o4755, 1000)
        .raw(tar::EntryType::Char, "dev-null", "", b"", 0o666)
        .bytes()
}

fn top_tar() -> Vec<u8> {
    Tar::new()
        .file("data/.wh.old", b"", 0o644)
        .file("opt/x/.wh..wh..opq", b"", 0o644)
        .file("opt/x/new", b"new", 0o644)
        .dir("srv/work/")
        .bytes()
}

/// The run config of an image whose program is /bin/x.
const RUN_X: &str = r#"{"Entrypoint":["/bin/x"]}"#;

const RUN: &str = r#"{"User":"1000","Env":["PATH=/usr/bin:/bin","GREETING=hello world"],"Entrypoint":["app"],"Cmd":["--say","a \"b\" c"],"WorkingDir":"/srv/work"}"#;

/// `wren-oci import --root ROOT --name NAME SRC`, which must succeed: its
/// output.
fn imported(root: &Path, name: &str, src: &str) -> String {
    let root = root.to_str().unwrap();
    let (rc, out) = wren_oci(&["import", "--root", root, "--name", name, src]);
    assert_eq!(rc, 0, "{out}");
    out
}

/// The image of layers `base` and `top` (gzipped) and config `cfg`, as an
/// OCI layout under `d`, imported as unit `name` into a new root `d/root`
/// (returned).
fn imported_two(d: &Path, base: &[u8], top: &[u8], cfg: &[u8], name: &str) -> std::path::PathBuf {
    oci_layout(
        &d.join("img"),
        "t",
        &[gz(base.to_vec()), gz(top.to_vec())],
        cfg,
    );
    let root = d.join("root");
    std::fs::create_dir(&root).unwrap();
    imported(&root, name, &format!("oci:{}", d.join("img").display()));
    root
}

/// The store directory of a layer tar.
fn layer(root: &Path, tar: &[u8]) -> std::path::PathBuf {
    root.join("var/lib/wren/layers/sha256").join(sha(tar))
}

#[test]
fn a_two_layer_image_becomes_layers_and_a_unit() {
    let d = scratch("two");
    let (base, top) = (base_tar(), top_tar());
    let cfg = config(&[&base, &top], RUN);
    oci_layout(
        &d.join("img"),
        "v1",
        &[
            (compress(&base, Comp::Gzip), media(Comp::Gzip)),
            (compress(&top, Comp::Zstd), media(Comp::Zstd)),
        ],
        &cfg,
    );
    let root = d.join("root");
    std::fs::create_dir(&root).unwrap();
    let img = format!("oci:{}:v1", d.join("img").display());
    let out = imported(&root, "app", &img);
    assert!(out.contains("2 layers (2 new)"), "{out}");
    // Only root may reach the layers (their set-id files above all).
    let store = std::fs::metadata(root.join("var/lib/wren/layers")).unwrap();
    assert_eq!(store.mode() & 0o7777, 0o700);
    let (b, t) = (layer(&root, &base), layer(&root, &top));
    // Hard link, absolute symlink kept as it is, owner and set-id bit,
    // the device node skipped.
    let app = std::fs::metadata(b.join("bin/app")).unwrap();
    assert_eq!(
        std::fs::metadata(b.join("bin/app2")).unwrap().ino(),
        app.ino()
    );
    assert_eq!(app.mode() & 0o7777, 0o755);
    assert_eq!(
        std::fs::read_link(b.join("bin/sh")).unwrap(),
        Path::new("/bin/app")
    );
    let owned = std::fs::metadata(b.join("srv/owned")).unwrap();
    assert_eq!((owned.uid(), owned.mode() & 0o7777), (1000, 0o4755));
    assert!(!b.join("dev-null").exists());
    // Whiteout as overlayfs reads it: a 0/0 character device; the opaque
    // directory marked by its xattr.
    let wh = std::fs::symlink_metadata(t.join("data/old")).unwrap();
    assert!(wh.file_type().is_char_device() && wh.rdev() == 0);
    let mut v = [0u8; 4];
    assert_eq!(
        rustix::fs::lgetxattr(t.join("opt/x"), "trusted.overlay.opaque", &mut v),
        Ok(1)
    );
    assert_eq!(&v[..1], b"y");
    assert!(!t.join("opt/x/.wh..wh..opq").exists());
    let unit = std::fs::read_to_string(root.join("etc/units/app.unit")).unwrap();
    let lines: Vec<&str> = unit.lines().skip(1).collect();
    assert_eq!(
        lines,
        [
            format!("description = image {img}").as_str(),
            r#"exec = /bin/app --say "a \"b\" c""#,
            "env = PATH=/usr/bin:/bin",
            "env = GREETING=hello world",
            "workdir = /srv/work",
            "user = 1000",
            "group = 1001",
            "namespaces = pid mount uts ipc",
            format!("root = {}:{}", t.display(), b.display())
                .replace(&root.display().to_string(), "")
                .as_str(),
            "root_overlay = yes",
            "capabilities = none",
        ]
    );
    // The unit parses back to the image's argv, and passes the check
    // against the image as PID 1 will see it.
    let def = wren::unit::parse("app", &unit).unwrap();
    assert_eq!(
        def.exec.iter().collect::<Vec<_>>(),
        ["/bin/app", "--say", "a \"b\" c"]
    );
    let (ok, out) = check_root(&root);
    assert!(ok, "{out}");
    // Only the store and the unit were written, no temporary directory
    // is left.
    let mut top_level = tree(&root);
    top_level.retain(|p| !p.contains("/sha256/"));
    assert_eq!(
        top_level,
        [
            "etc",
            "etc/units",
            "etc/units/app.unit",
            "var",
            "var/lib",
            "var/lib/wren",
            "var/lib/wren/layers",
            "var/lib/wren/layers/sha256",
        ]
    );
}

#[test]
fn images_sharing_a_base_store_it_once() {
    let d = scratch("share");
    let base = Tar::new()
        .file("bin/app", &vec![7u8; 300_000], 0o755)
        .file("etc/passwd", PASSWD, 0o644)
        .bytes();
    let run = r#"{"Entrypoint":["/bin/app"]}"#;
    let one = Tar::new().file("one", b"1", 0o644).bytes();
    let two = Tar::new().file("two", b"22", 0o644).bytes();
    // The same base compressed two ways, and plain in a docker archive:
    // one directory, named by its diff_id.
    let cfg1 = config(&[&base, &one], run);
    oci_layout(
        &d.join("a"),
        "a",
        &[
            (compress(&base, Comp::Gzip), media(Comp::Gzip)),
            (compress(&one, Comp::Gzip), media(Comp::Gzip)),
        ],
        &cfg1,
    );
    let cfg2 = config(&[&base, &two], run);
    oci_layout(
        &d.join("b"),
        "b",
        &[
            (compress(&base, Comp::Zstd), media(Comp::Zstd)),
            (two.clone(), media(Comp::Plain)),
        ],
        &cfg2,
    );
    docker_archive(
        &d.join("c.tar"),
        "c:latest",
        std::slice::from_ref(&base),
        &config(&[&base], run),
    );
    let root = d.join("root");
    std::fs::create_dir(&root).unwrap();
    let r = root.to_str().unwrap();
    let store = root.join("var/lib/wren/layers");
    let (rc, out) = wren_oci(&[
        "import",
        "--root",
        r,
        "--name",
        "a",
        &format!("oci:{}", d.join("a").display()),
    ]);
    assert_eq!(rc, 0, "{out}");
    let after_one = disk_bytes(&store);
    // A store left open (by an older wren-oci) is closed by the next import.
    std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (rc, out) = wren_oci(&[
        "import",
        "--root",
        r,
        "--name",
        "b",
        &format!("oci:{}:b", d.join("b").display()),
    ]);
    assert_eq!(rc, 0, "{out}");
    assert!(out.contains("2 layers (1 new)"), "{out}");
    assert_eq!(std::fs::metadata(&store).unwrap().mode() & 0o7777, 0o700);
    let (rc, out) = wren_oci(&[
        "import",
        "--root",
        r,
        "--name",
        "c",
        &format!("docker-archive:{}", d.join("c.tar").display()),
    ]);
    assert_eq!(rc, 0, "{out}");
    assert!(out.contains("1 layers (0 new)"), "{out}");
    let after_all = disk_bytes(&store);
    println!("store bytes: one image {after_one}, three images {after_all}");
    // The second image added only its own 2-byte layer.
    assert_eq!(after_all - after_one, 2);
    assert_eq!(
        std::fs::read_dir(store.join("sha256")).unwrap().count(),
        3,
        "base, one, two"
    );
    let (ok, out) = check_root(&root);
    assert!(ok, "{out}");
    let c = std::fs::read_to_string(root.join("etc/units/c.unit")).unwrap();
    assert!(
        c.contains(&format!(
            "\nroot = /var/lib/wren/layers/sha256/{}\n",
            sha(&base)
        )),
        "{c}"
    );
    assert!(c.contains(&format!("\ncapabilities = {}\n", "chown dac_override fsetid fowner mknod net_raw setgid setuid setfcap setpcap net_bind_service sys_chroot kill audit_write")), "{c}");
}

/// Import `tars` (gzip) as one image; expect exit 1 with `msg` in the
/// error, and nothing in the store or outside the root.
fn refused(name: &str, blobs: Vec<(Vec<u8>, &str)>, cfg: Vec<u8>, msg: &str, extra: &[&str]) {
    let d = scratch(name);
    oci_layout(&d.join("img"), "t", &blobs, &cfg);
    refused_at(&d, &format!("oci:{}", d.join("img").display()), msg, extra);
}

fn refused_at(d: &Path, src: &str, msg: &str, extra: &[&str]) {
    let root = d.join("root");
    std::fs::create_dir_all(&root).unwrap();
    let before = tree(d);
    let mut args = vec!["import", "--root", root.to_str().unwrap(), "--name", "bad"];
    args.extend_from_slice(extra);
    args.push(src);
    let (rc, out) = wren_oci(&args);
    assert_eq!(rc, 1, "{out}");
    assert!(out.contains(msg), "expected `{msg}` in: {out}");
    // Nothing outside DIR; inside it, at most the empty store directories.
    let after: Vec<String> = tree(d)
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    for p in &after {
        assert!(
            p.starts_with("root/var"),
            "written outside the store: {p} ({after:?})"
        );
        assert!(
            std::fs::symlink_metadata(d.join(p)).unwrap().is_dir(),
            "{p} left behind"
        );
    }
    assert!(
        !after.iter().any(|p| p.contains("sha256/")),
        "a layer was left in the store: {after:?}"
    );
}

fn gz(tar: Vec<u8>) -> (Vec<u8>, &'static str) {
    (compress(&tar, Comp::Gzip), media(Comp::Gzip))
}

fn one_layer(name: &str, tar: Vec<u8>, msg: &str) {
    let cfg = config(&[&tar], r#"{"Entrypoint":["/x"]}"#);
    refused(name, vec![gz(tar)], cfg, msg, &[]);
}

#[test]
fn parent_paths_are_refused() {
    one_layer(
        "dotdot",
        Tar::new()
            .file("ok", b"1", 0o644)
            .file("../escaped", b"x", 0o644)
            .bytes(),
        "entry `../escaped`: `..` in the path",
    );
    one_layer(
        "dotdot-deep",
        Tar::new().file("a/../../escaped", b"x", 0o644).bytes(),
        "`..` in the path",
    );
    one_layer(
        "hardlink-out",
        Tar::new().hardlink("h", "../../etc/passwd").bytes(),
        "hard link target: `..` in the path",
    );
}

#[test]
fn absolute_paths_are_refused() {
    one_layer(
        "abs",
        Tar::new()
            .file("/tmp/wren-oci-escaped", b"x", 0o644)
            .bytes(),
        "entry `/tmp/wren-oci-escaped`: absolute path",
    );
    assert!(!Path::new("/tmp/wren-oci-escaped").exists());
    one_layer(
        "abs-link",
        Tar::new().hardlink("h", "/etc/passwd").bytes(),
        "hard link target: absolute path",
    );
}

#[test]
fn a_file_through_a_symlink_is_refused() {
    let d = scratch("symlink-out-target");
    let outside = d.to_str().unwrap().to_owned();
    one_layer(
        "symlink-through",
        Tar::new()
            .symlink("evil", &outside)
            .file("evil/planted", b"x", 0o644)
            .bytes(),
        "entry `evil/planted`: goes through the symlink `evil`",
    );
    assert!(!d.join("planted").exists());
    one_layer(
        "symlink-rel",
        Tar::new()
            .dir("a/")
            .symlink("a/up", "../..")
            .file("a/up/planted", b"x", 0o644)
            .bytes(),
        "goes through the symlink `a/up`",
    );
}

#[test]
fn digest_and_size_mismatches_are_refused() {
    let tar = Tar::new().file("f", b"data", 0o644).bytes();
    let cfg = config(&[&tar], r#"{"Entrypoint":["/f"]}"#);
    // A blob replaced after the manifest was written.
    let d = scratch("mismatch");
    let paths = oci_layout(&d.join("img"), "t", &[gz(tar.clone())], &cfg);
    let other = compress(&Tar::new().file("f", b"evil", 0o644).bytes(), Comp::Gzip);
    let mut same_len = other.clone();
    same_len.resize(std::fs::metadata(&paths[0]).unwrap().len() as usize, 0);
    std::fs::write(&paths[0], &same_len).unwrap();
    refused_at(
        &d,
        &format!("oci:{}", d.join("img").display()),
        "digest",
        &[],
    );
    // A truncated blob.
    let d = scratch("truncated");
    let paths = oci_layout(&d.join("img"), "t", &[gz(tar.clone())], &cfg);
    let full = std::fs::read(&paths[0]).unwrap();
    std::fs::write(&paths[0], &full[..full.len() / 2]).unwrap();
    refused_at(
        &d,
        &format!("oci:{}", d.join("img").display()),
        "layer 1 (sha256:",
        &[],
    );
    // A config whose diff_id does not match the layer's content.
    let wrong = config(&[Tar::new().bytes()], r#"{"Entrypoint":["/f"]}"#);
    refused(
        "diffid",
        vec![gz(tar.clone())],
        wrong,
        "does not match the config's diff_id",
        &[],
    );
    // A tampered config.
    let d = scratch("config");
    oci_layout(&d.join("img"), "t", &[gz(tar)], &cfg);
    let cfg_path = d.join("img/blobs/sha256").join(sha(&cfg));
    let mut c = cfg.clone();
    c[0] = b' ';
    std::fs::write(&cfg_path, c).unwrap();
    refused_at(
        &d,
        &format!("oci:{}", d.join("img").display()),
        "config: digest mismatch",
        &[],
    );
}

#[test]
fn a_gzip_bomb_stops_at_the_bound() {
    // 64 MiB of zeros compress to about 64 KiB.
    let tar = Tar::new()
        .file("zeros", &vec![0u8; 64 << 20], 0o644)
        .bytes();
    let blob = compress(&tar, Comp::Gzip);
    assert!(blob.len() < 1 << 20, "{}", blob.len());
    let cfg = config(&[&tar], r#"{"Entrypoint":["/zeros"]}"#);
    refused(
        "bomb",
        vec![(blob, media(Comp::Gzip))],
        cfg,
        "unpacks to more than 16777216 bytes (--max-size)",
        &["--max-size", "16M"],
    );
    let many = (0..50).fold(Tar::new(), |t, i| t.file(&format!("f{i}"), b"", 0o644));
    let tar = many.bytes();
    let cfg = config(&[&tar], r#"{"Entrypoint":["/f1"]}"#);
    refused(
        "entries",
        vec![gz(tar)],
        cfg,
        "more than 20 entries (--max-entries)",
        &["--max-entries", "20"],
    );
}

#[test]
fn parent_directories_the_archive_does_not_list_count_as_entries() {
    // 4 entries that imply 16 directories: 20 inodes in all. Uncounted,
    // 1,000,000 entries under 255 fresh parents each made 255 million.
    let tar = (0..4)
        .fold(Tar::new(), |t, i| {
            t.file(&format!("d{i}/a/b/c/x"), b"", 0o755)
        })
        .bytes();
    let cfg = config(&[&tar], r#"{"Entrypoint":["/d0/a/b/c/x"]}"#);
    refused(
        "implicit-dirs",
        vec![gz(tar.clone())],
        cfg.clone(),
        "more than 19 entries (--max-entries), counting `d3/a/b/c`, a parent directory the archive does not list",
        &["--max-entries", "19"],
    );
    let d = scratch("implicit-dirs-fit");
    oci_layout(&d.join("img"), "t", &[gz(tar.clone())], &cfg);
    let root = d.join("root");
    std::fs::create_dir(&root).unwrap();
    let root_s = root.to_str().unwrap();
    let img = format!("oci:{}:t", d.join("img").display());
    let args = [
        "import",
        "--root",
        root_s,
        "--name",
        "app",
        "--max-entries",
        "20",
    ];
    let (rc, out) = wren_oci(&[&args[..], &[img.as_str()]].concat());
    assert_eq!(rc, 0, "{out}");
    assert!(layer(&root, &tar).join("d3/a/b/c/x").is_file());
}

#[test]
fn bad_usage_is_exit_2_and_bad_images_name_the_problem() {
    let d = scratch("usage");
    let r = d.to_str().unwrap();
    assert_eq!(wren_oci(&["import", "--root", r, "oci:/x"]).0, 2);
    assert_eq!(
        wren_oci(&["import", "--root", r, "--name", "Bad!", "oci:/x"]).0,
        2
    );
    assert_eq!(
        wren_oci(&["import", "--root", r, "--name", "a", "docker:/x"]).0,
        2
    );
    assert_eq!(wren_oci(&["frob"]).0, 2);
    // A user the image does not have.
    let tar = Tar::new()
        .file("etc/passwd", PASSWD, 0o644)
        .file("bin/x", b"", 0o755)
        .bytes();
    let cfg = config(&[&tar], r#"{"User":"ghost","Entrypoint":["/bin/x"]}"#);
    refused(
        "ghost",
        vec![gz(tar.clone())],
        cfg,
        "User `ghost` is not in the image's /etc/passwd",
        &[],
    );
    // A WorkingDir with line breaks, naming directories the image has:
    // it would add keys of the image's choosing to the unit.
    let tar = Tar::new()
        .dir("w\ncritical = yes\nconsole = yes/")
        .file("bin/x", b"", 0o755)
        .bytes();
    let cfg = config(
        &[&tar],
        r#"{"WorkingDir":"/w\ncritical = yes\nconsole = yes","Entrypoint":["/bin/x"]}"#,
    );
    refused(
        "workdir-lines",
        vec![gz(tar.clone())],
        cfg,
        "workdir \"/w\\ncritical = yes\\nconsole = yes\": a line break cannot be written in a unit",
        &[],
    );
    // A program not on the image's PATH.
    let cfg = config(&[&tar], r#"{"Entrypoint":["nothere"]}"#);
    refused(
        "noprog",
        vec![gz(tar.clone())],
        cfg,
        "program `nothere` not found on the image's PATH",
        &[],
    );
    // A target root whose var is a symlink out of it.
    let d = scratch("varlink");
    let cfg = config(&[&tar], r#"{"Entrypoint":["/bin/x"]}"#);
    oci_layout(&d.join("img"), "t", &[gz(tar.clone())], &cfg);
    std::fs::create_dir_all(d.join("root")).unwrap();
    std::fs::create_dir_all(d.join("elsewhere")).unwrap();
    std::os::unix::fs::symlink(d.join("elsewhere"), d.join("root/var")).unwrap();
    let (rc, out) = import_x(&d);
    assert_eq!(rc, 1, "{out}");
    assert!(
        out.contains("is a symlink: refusing to write through it"),
        "{out}"
    );
    assert_eq!(tree(&d.join("elsewhere")), Vec::<String>::new());
    // --set and --memory-max reach the unit, checked by the parser.
    let d = scratch("extra");
    oci_layout(&d.join("img"), "t", &[gz(tar.clone())], &cfg);
    std::fs::create_dir_all(d.join("root")).unwrap();
    let root = d.join("root");
    let src = format!("oci:{}", d.join("img").display());
    let base = ["import", "--root", root.to_str().unwrap(), "--name", "x"];
    let (rc, out) = wren_oci(
        &[
            &base[..],
            &[
                "--memory-max",
                "32M",
                "--set",
                "namespaces = pid mount uts ipc net",
                "--set",
                "after=net",
                &src,
            ],
        ]
        .concat(),
    );
    assert_eq!(rc, 0, "{out}");
    let u = std::fs::read_to_string(root.join("etc/units/x.unit")).unwrap();
    assert!(
        u.contains("\nnamespaces = pid mount uts ipc net\n")
            && u.contains("\nmemory.max = 32M\n")
            && u.contains("\nafter = net\n"),
        "{u}"
    );
    assert_eq!(u.matches("namespaces").count(), 1, "{u}");
    let (rc, out) = wren_oci(&[&base[..], &["--set", "memroy.max=1", &src]].concat());
    assert_eq!(rc, 1, "{out}");
    assert!(
        out.contains("the unit written would be refused: x.unit:"),
        "{out}"
    );
}

#[test]
fn a_tar_without_its_end_blocks_imports_but_not_one_cut_inside_a_file() {
    // As umoci 0.4 writes single-file layers: the last file's data, no
    // padding, no end-of-archive blocks.
    let full = Tar::new().file("bin/x", &[b'x'; 700], 0o755).bytes();
    let cut = full[..512 + 700].to_vec();
    let d = scratch("noend");
    let cfg = config(&[&cut], r#"{"Entrypoint":["/bin/x"]}"#);
    oci_layout(&d.join("img"), "t", &[gz(cut.clone())], &cfg);
    std::fs::create_dir(d.join("root")).unwrap();
    let (rc, out) = import_x(&d);
    assert_eq!(rc, 0, "{out}");
    let x = layer(&d.join("root"), &cut).join("bin/x");
    assert_eq!(std::fs::read(x).unwrap(), [b'x'; 700]);
    // Cut inside the data: refused, not padded with zeros.
    let short = full[..512 + 600].to_vec();
    let cfg = config(&[&short], r#"{"Entrypoint":["/bin/x"]}"#);
    refused(
        "cutdata",
        vec![gz(short)],
        cfg,
        "entry `bin/x`: the archive ends inside this file's data",
        &[],
    );
}

/// What an image links to is never read from the build host: an
/// /etc/passwd linked to a host file does not name the image's users, a
/// layout whose layer blob links to /dev/zero is refused at once (it was
/// read for ever).
#[test]
fn links_out_of_the_image_are_not_read() {
    let d = scratch("links-out");
    let host = d.join("host-passwd");
    std::fs::write(&host, "app:x:1000:1001:app:/:/bin/sh\n").unwrap();
    let tar = Tar::new()
        .symlink("etc/passwd", host.to_str().unwrap())
        .file("bin/x", b"", 0o755)
        .bytes();
    let cfg = config(&[&tar], r#"{"User":"app","Entrypoint":["/bin/x"]}"#);
    refused(
        "passwd-link",
        vec![gz(tar)],
        cfg,
        "User `app` is not in the image's /etc/passwd",
        &[],
    );

    let tar = Tar::new().file("bin/x", b"", 0o755).bytes();
    let cfg = config(&[&tar], r#"{"Entrypoint":["/bin/x"]}"#);
    let img = d.join("img");
    let blobs = oci_layout(&img, "t", &[gz(tar)], &cfg);
    std::fs::remove_file(&blobs[0]).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &blobs[0]).unwrap();
    let t = std::time::Instant::now();
    refused_at(
        &d,
        &format!("oci:{}", img.display()),
        "not a regular file",
        &[],
    );
    assert!(t.elapsed() < std::time::Duration::from_secs(10));
}

/// A killed import's temporary layer (its process gone) is removed by the
/// next import; one of a running import (this test's own pid) is not.
#[test]
fn a_killed_import_s_temporary_layer_is_removed_later() {
    let d = scratch("stale-tmp");
    let store = d.join("root/var/lib/wren/layers/sha256");
    std::fs::create_dir_all(&store).unwrap();
    // Above the kernel's PID_MAX_LIMIT: no process has it.
    let dead = store.join(".tmp-4194305-abcd");
    std::fs::create_dir_all(dead.join("bin")).unwrap();
    let alive = store.join(format!(".tmp-{}-abcd", std::process::id()));
    std::fs::create_dir_all(&alive).unwrap();
    let tar = Tar::new().file("bin/x", b"", 0o755).bytes();
    let cfg = config(&[&tar], r#"{"Entrypoint":["/bin/x"]}"#);
    oci_layout(&d.join("img"), "t", &[gz(tar)], &cfg);
    let root = d.join("root");
    let src = format!("oci:{}", d.join("img").display());
    imported(&root, "t", &src);
    assert!(!dead.exists(), "the dead import's layer is still there");
    assert!(alive.exists(), "a running import's layer was removed");
}

/// A whiteout of a name that is not UTF-8 hides that name, and only it:
/// not a file whose name is the lossy text (U+FFFD) of it.
#[test]
fn a_whiteout_of_a_non_utf8_name_hides_that_name() {
    let d = scratch("wh-bytes");
    let base = Tar::new()
        .raw_bytes(tar::EntryType::Regular, b"data/\xff", "", b"lower", 0o644)
        .file("data/\u{fffd}", b"kept", 0o644)
        .file("bin/x", b"", 0o755)
        .bytes();
    let top = Tar::new()
        .raw_bytes(tar::EntryType::Regular, b"data/.wh.\xff", "", b"", 0o644)
        .bytes();
    let cfg = config(&[&base, &top], r#"{"Entrypoint":["/bin/x"]}"#);
    let root = imported_two(&d, &base, &top, &cfg, "t");
    let t = layer(&root, &top);
    let hidden =
        t.join(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(b"data/\xff"));
    let m = std::fs::symlink_metadata(&hidden).expect("no whiteout for the name");
    assert!(m.file_type().is_char_device() && m.rdev() == 0);
    assert!(
        !t.join("data/\u{fffd}").exists(),
        "a whiteout for the lossy name"
    );
}

/// What the unit gets from the image as Docker would give it: a root
/// user by uid 0 whatever its name has Docker's capabilities, an image
/// without PATH runs with the PATH its program was found on, and a file
/// whose owner does not read loses its set-id bits (it is the
/// importer's).
#[test]
fn root_by_uid_path_and_unowned_set_id_files() {
    let d = scratch("as-docker");
    let tar = Tar::new()
        .file("etc/passwd", b"toor:x:0:0::/:/bin/sh\n", 0o644)
        .file("usr/local/bin/x", b"", 0o755)
        .unowned("bin/su", b"", 0o4755)
        .bytes();
    let cfg = config(&[&tar], r#"{"User":"toor","Entrypoint":["x"]}"#);
    oci_layout(&d.join("img"), "t", &[gz(tar.clone())], &cfg);
    let root = d.join("root");
    std::fs::create_dir(&root).unwrap();
    imported(&root, "t", &format!("oci:{}", d.join("img").display()));
    let unit = std::fs::read_to_string(root.join("etc/units/t.unit")).unwrap();
    assert!(unit.contains("\nuser = toor\n"), "{unit}");
    assert!(unit.contains("\ncapabilities = chown "), "{unit}");
    assert!(unit.contains("\nexec = /usr/local/bin/x\n"), "{unit}");
    assert!(
        unit.contains(
            "\nenv = PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
        ),
        "{unit}"
    );
    let su = std::fs::metadata(layer(&root, &tar).join("bin/su")).unwrap();
    assert_eq!(su.mode() & 0o7777, 0o755, "{:o}", su.mode());
}

/// The tar crate holds a GNU long name or a PAX record whole: one over
/// 1 MiB is refused before it is read, where it was read into memory up
/// to `--max-size` (4 GiB by default). A long name of a real length, and
/// a hard link's data skipped, still import.
#[test]
fn long_name_and_pax_records_are_bounded() {
    let huge = vec![b'a'; 2 << 20];
    for (i, kind) in [tar::EntryType::GNULongName, tar::EntryType::XHeader]
        .into_iter()
        .enumerate()
    {
        let t = Tar::new()
            .raw(kind, "././@LongLink", "", &huge, 0o644)
            .file("x", b"x", 0o755)
            .bytes();
        one_layer(&format!("long-{i}"), t, "long-name or PAX records");
    }

    let d = scratch("long-ok");
    let long = format!("srv/{}/{}", "d".repeat(150), "n".repeat(150));
    let t = Tar::new()
        .owned(&long, b"long", 0o644, 0)
        .file("srv/short", b"short", 0o644)
        .raw(tar::EntryType::Link, "srv/link", "srv/short", &huge, 0o644)
        .bytes();
    let cfg = config(&[&t], r#"{"Entrypoint":["/x"]}"#);
    oci_layout(&d.join("img"), "t", &[gz(t.clone())], &cfg);
    let root = d.join("root");
    std::fs::create_dir_all(&root).unwrap();
    imported(&root, "long", &format!("oci:{}", d.join("img").display()));
    let l = layer(&root, &t);
    assert_eq!(std::fs::read(l.join(&long)).unwrap(), b"long");
    assert_eq!(std::fs::read(l.join("srv/link")).unwrap(), b"short");
}

/// `src`'s one-layer image `tar` (run config `run`) as an OCI layout in
/// `d/img` tagged `tag`, and a root to import it into: the source name.
fn one_layer_image(d: &Path, img: &Path, tag: &str, tar: &[u8], run: &str) -> String {
    let cfg = config(&[tar], run);
    oci_layout(img, tag, &[gz(tar.to_vec())], &cfg);
    std::fs::create_dir_all(d.join("root")).unwrap();
    format!("oci:{}:{tag}", img.display())
}

/// The empty layer `RUN` steps leave, twice in one image: named once in
/// `root`, where it is topmost (overlayfs refuses a lower directory
/// twice: ELOOP at every start), and the unit passes `check --root`.
#[test]
fn a_layer_twice_in_an_image_is_named_once() {
    let d = scratch("dup-layer");
    let base = base_tar();
    let mid = Tar::new().file("etc/motd", b"hi\n", 0o644).bytes();
    let empty = Tar::new().bytes();
    let tars = [&base, &empty, &mid, &empty];
    let cfg = config(&tars, r#"{"Entrypoint":["/bin/app"]}"#);
    let blobs: Vec<_> = tars.iter().map(|t| gz(t.to_vec())).collect();
    oci_layout(&d.join("img"), "v1", &blobs, &cfg);
    let root = d.join("root");
    std::fs::create_dir(&root).unwrap();
    imported(&root, "app", &format!("oci:{}:v1", d.join("img").display()));
    let unit = std::fs::read_to_string(root.join("etc/units/app.unit")).unwrap();
    let line = unit
        .lines()
        .find_map(|l| l.strip_prefix("root = "))
        .unwrap();
    let at =
        |t: &[u8]| layer(&root, t).to_str().unwrap()[root.to_str().unwrap().len()..].to_owned();
    let want = [at(&empty), at(&mid), at(&base)].join(":");
    assert_eq!(line, want);
    let (ok, out) = check_root(&root);
    assert!(ok, "{out}");
}

/// `base_tar` with `/bin/app` as its program, as a layout at `img` tagged
/// `tag`, imported into `d/root` as `app`: the source name and the unit.
fn app_unit(d: &Path, img: &Path, tag: &str) -> (String, String) {
    let src = one_layer_image(d, img, tag, &base_tar(), r#"{"Entrypoint":["/bin/app"]}"#);
    imported(&d.join("root"), "app", &src);
    let unit = std::fs::read_to_string(d.join("root/etc/units/app.unit")).unwrap();
    (src, unit)
}

/// A build host's long image path: the description keeps its end (the
/// image's name and tag) within `description`'s 96 bytes. (Before, the
/// import failed after unpacking every layer: the unit written was
/// refused.)
#[test]
fn a_long_source_path_is_cut_in_the_description() {
    let d = scratch("long-source");
    let img = d.join("output/build/images/containers/my-sensor-gateway-app-oci-layout");
    let (src, unit) = app_unit(&d, &img, "v1.2.3");
    assert!(src.len() > 96);
    let desc = unit
        .lines()
        .find_map(|l| l.strip_prefix("description = "))
        .unwrap();
    assert!(
        desc.starts_with("image ...") && desc.ends_with("app-oci-layout:v1.2.3"),
        "{desc}"
    );
    assert_eq!(desc.len(), 96, "{desc}");
}

/// A program reached through a symlinked directory of the image
/// (`/opt/app -> app-1.2`, a merged `/bin -> usr/bin`) is found on its
/// PATH, as the kernel finds it inside the unit's root.
#[test]
fn a_program_through_a_symlinked_directory_is_found() {
    let d = scratch("symlinked-path");
    let tar = Tar::new()
        .file("opt/app-1.2/bin/app", b"#!/bin/app\n", 0o755)
        .symlink("opt/app", "app-1.2")
        .file("usr/bin/tool", b"#!/bin/tool\n", 0o755)
        .symlink("bin", "usr/bin")
        .file("etc/passwd", PASSWD, 0o644)
        .bytes();
    let run = r#"{"Env":["PATH=/opt/app/bin:/bin"],"Cmd":["app"]}"#;
    let src = one_layer_image(&d, &d.join("img"), "v1", &tar, run);
    imported(&d.join("root"), "app", &src);
    let unit = std::fs::read_to_string(d.join("root/etc/units/app.unit")).unwrap();
    assert!(unit.contains("exec = /opt/app/bin/app"), "{unit}");
    let run = r#"{"Env":["PATH=/sbin:/bin"],"Cmd":["tool"]}"#;
    std::fs::remove_dir_all(d.join("root")).unwrap();
    let src = one_layer_image(&d, &d.join("img2"), "v1", &tar, run);
    imported(&d.join("root"), "tool", &src);
    let unit = std::fs::read_to_string(d.join("root/etc/units/tool.unit")).unwrap();
    assert!(unit.contains("exec = /bin/tool"), "{unit}");
}

/// A GNU sparse entry is refused before its data is read: the tar crate
/// pads its holes with zeros that no bound counted, so a 1 PiB hole in
/// a 2 KiB layer ran on for hours past `--max-size 1M` (and a file of a
/// smaller hole was dropped without a word).
#[test]
fn a_sparse_file_is_refused_at_once() {
    let d = scratch("sparse");
    let tar = Tar::new()
        .file("bin/x", b"", 0o755)
        .sparse("sp", 1 << 50, &[b'A'; 512])
        .bytes();
    let cfg = config(&[&tar], r#"{"Entrypoint":["/bin/x"]}"#);
    oci_layout(&d.join("img"), "t", &[gz(tar)], &cfg);
    let root = d.join("root");
    std::fs::create_dir(&root).unwrap();
    let src = format!("oci:{}", d.join("img").display());
    let args = ["import", "--root", root.to_str().unwrap(), "--name", "x"];
    let r = wren_oci_within(
        &[&args[..], &["--max-size", "1M", &src]].concat(),
        std::time::Duration::from_secs(30),
    );
    assert_eq!(r.code, 1, "{} ({:?})", r.out, r.wall);
    assert!(r.wall < std::time::Duration::from_secs(10), "{:?}", r.wall);
    assert!(r.out.contains("entry `sp`: a sparse file"), "{}", r.out);
    assert!(
        !tree(&root).iter().any(|p| p.contains("sha256/")),
        "{:?}",
        tree(&root)
    );
    // PAX's sparse format 1.0: a regular entry whose data starts with the
    // map; it was unpacked as that encoded map.
    let map = b"1\n512\n512\n";
    let mut data = map.to_vec();
    data.resize(1024, 0);
    data.extend_from_slice(&[b'A'; 512]);
    let tar = Tar::new()
        .file("bin/x", b"", 0o755)
        .pax(&[
            ("GNU.sparse.major", b"1"),
            ("GNU.sparse.minor", b"0"),
            ("GNU.sparse.name", b"sp"),
            ("GNU.sparse.realsize", b"1024"),
        ])
        .file("GNUSparseFile.0/sp", &data, 0o644)
        .bytes();
    one_layer(
        "sparse-pax",
        tar,
        "entry `GNUSparseFile.0/sp`: a sparse file",
    );
}

/// Names of more than 256 components are refused; below that, unpacking
/// is linear in the entries: the parents an entry shares with the one
/// before are not looked at again (each parent of each entry was: 2,000
/// empty files at depth 1,500 took 238 s). Measured in CPU time, on
/// entries that make nothing (a directory named again): neither a busy
/// host nor the disk's speed at making files is what is measured.
#[test]
fn deep_paths_are_bounded_and_unpack_in_linear_time() {
    one_layer(
        "too-deep",
        Tar::new()
            .owned(&format!("{}f", "a/".repeat(299)), b"", 0o644, 0)
            .bytes(),
        "too deep",
    );
    let deep = "a/".repeat(249);
    let files = (0..100).fold(Tar::new().file("bin/x", b"", 0o755), |t, i| {
        t.owned(&format!("{deep}f{i}"), b"", 0o644, 0)
    });
    let tar = (0..5000)
        .fold(files, |t, _| t.owned_dir(&deep, 0o755))
        .bytes();
    let d = scratch("deep");
    let cfg = config(&[&tar], r#"{"Entrypoint":["/bin/x"]}"#);
    oci_layout(&d.join("img"), "t", &[gz(tar.clone())], &cfg);
    let root = d.join("root");
    std::fs::create_dir(&root).unwrap();
    let r = import_x_within(&d, std::time::Duration::from_secs(300));
    assert_eq!(r.code, 0, "{}", r.out);
    println!(
        "5,100 entries at depth 250: {:?} of CPU, {:?}",
        r.cpu, r.wall
    );
    assert!(r.cpu < std::time::Duration::from_secs(3), "{:?}", r.cpu);
    let l = layer(&root, &tar);
    assert!(l.join(format!("{deep}f99")).is_file());
}

/// A directory replaced by a symlink is checked again, and so is every
/// directory below it, for a file, a whiteout, a hard link's target
/// (the parents an entry shares with the one before are not looked at
/// again, but for these).
#[test]
fn a_directory_replaced_by_a_symlink_is_checked_again() {
    let d = scratch("replaced-out");
    std::fs::create_dir_all(d.join("e")).unwrap();
    let outside = d.to_str().unwrap().to_owned();
    let replaced = || {
        Tar::new()
            .dir("d/")
            .dir("d/e/")
            .file("d/e/a", b"1", 0o644)
            .symlink("d", &outside)
    };
    let through = "goes through the symlink `d`";
    for (name, t, msg) in [
        (
            "file",
            replaced().file("d/e/keep", b"x", 0o644),
            "entry `d/e/keep`: ",
        ),
        (
            "whiteout",
            replaced().file("d/e/.wh.keep", b"", 0o644),
            "entry `d/e/.wh.keep`: ",
        ),
        (
            "hardlink",
            replaced().hardlink("z", "d/e/a"),
            "entry `z`: hard link target ",
        ),
        ("dir", replaced().dir("d/e/f/"), "entry `d/e/f/`: "),
    ] {
        one_layer(
            &format!("replaced-{name}"),
            t.bytes(),
            &format!("{msg}{through}"),
        );
    }
    assert_eq!(tree(&d), ["e"]);
}

/// A hard link to a file the layer does not have says so, and makes
/// nothing on the way: its target's missing directories were made (and
/// counted against --max-entries) before the link failed all the same.
/// Each directory made counts, so 3 entries (`bin/x`, `bin`, `h`) leave
/// no room for one.
#[test]
fn a_hard_link_to_a_missing_file_makes_no_directory() {
    for (name, target) in [("dir", "no/such/t"), ("file", "bin/t")] {
        let tar = Tar::new()
            .file("bin/x", b"", 0o755)
            .hardlink("h", target)
            .bytes();
        let cfg = config(&[&tar], RUN_X);
        refused(
            &format!("hardlink-missing-{name}"),
            vec![gz(tar)],
            cfg,
            &format!("entry `h`: hard link to `{target}`, which does not exist in this layer"),
            &["--max-entries", "3"],
        );
    }
}

/// The source reference goes into the unit's header comment and its
/// `description`: a line break there would add keys of its own. A tag is
/// held to the OCI grammar (a usage error otherwise), and a layout path,
/// which may hold anything, is written with its control characters
/// escaped.
#[test]
fn a_reference_cannot_add_keys_to_the_unit() {
    let d = scratch("ref-lines");
    let r = d.join("root");
    let r = r.to_str().unwrap();
    let long = "t".repeat(129);
    for tag in ["v1\nuser = 0", "a b", "-x", ".x", "v1\u{1b}[2K", &long] {
        let src = format!("oci:{}:{tag}", d.display());
        let (rc, out) = wren_oci(&["import", "--root", r, "--name", "x", &src]);
        assert_eq!(rc, 2, "{tag:?}: {out}");
        assert!(out.contains("tag"), "{out}");
    }
    // The end of a long path is what `description` keeps: the line
    // breaks early in it were written unescaped only in the comment.
    let parent = d.join("dl\nconsole = yes\ncritical = yes\n#");
    let img = parent.join("x".repeat(100));
    let (_, unit) = app_unit(&d, &img, "v1");
    let keys: Vec<&str> = unit
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(" = ").next())
        .collect();
    assert!(
        !keys.contains(&"console") && !keys.contains(&"critical"),
        "{unit}"
    );
    assert!(
        unit.starts_with("# Written by wren-oci from oci:"),
        "{unit}"
    );
    assert!(
        unit.contains("/dl\\nconsole = yes\\ncritical = yes\\n#/"),
        "{unit}"
    );
}

/// The unit's temporary file is made new, never written through what is
/// there: a symlink planted at it (a target tree from elsewhere) led the
/// unit's text out of DIR.
#[test]
fn the_unit_is_not_written_through_a_planted_symlink() {
    let d = scratch("unit-tmp-link");
    let canary = d.join("canary");
    std::fs::write(&canary, "canary\n").unwrap();
    let units = d.join("root/etc/units");
    std::fs::create_dir_all(&units).unwrap();
    std::os::unix::fs::symlink(&canary, units.join(".app.unit.tmp")).unwrap();
    let (_, unit) = app_unit(&d, &d.join("img"), "v1");
    assert_eq!(std::fs::read_to_string(&canary).unwrap(), "canary\n");
    let m = std::fs::symlink_metadata(units.join("app.unit")).unwrap();
    assert!(m.is_file(), "{m:?}");
    assert!(unit.contains("\nexec = /bin/app\n"), "{unit}");
    assert_eq!(tree(&units), ["app.unit"]);
}

/// A layer found in the store, or met twice in one image, is still
/// checked against the config's diff_id: an image listing another
/// image's layer (by its diff_id, which is public) with a blob of its own
/// got that layer, its files, secrets included, in its unit's root.
#[test]
fn a_stored_layer_is_not_had_by_its_diff_id_alone() {
    let d = scratch("stored-diffid");
    let secret = Tar::new()
        .file("bin/x", b"", 0o755)
        .file("secret", b"private key", 0o600)
        .bytes();
    let src = one_layer_image(&d, &d.join("a"), "a", &secret, RUN_X);
    imported(&d.join("root"), "a", &src);
    let junk = Tar::new().file("bin/x", b"junk", 0o755).bytes();
    let cfg = config(&[&secret], r#"{"Entrypoint":["/bin/x"]}"#);
    oci_layout(&d.join("img"), "t", &[gz(junk.clone())], &cfg);
    refused_at(
        &d,
        &format!("oci:{}", d.join("img").display()),
        "does not match the config's diff_id",
        &[],
    );
    // The same layer twice in one image: the second blob too.
    let cfg = config(&[&secret, &secret], r#"{"Entrypoint":["/bin/x"]}"#);
    let second = gz(junk);
    let msg = format!(
        "layer 2 (sha256:{}): uncompressed content does not match the config's diff_id",
        sha(&second.0)
    );
    refused(
        "twice-diffid",
        vec![gz(secret.clone()), second],
        cfg,
        &msg,
        &[],
    );
}

/// `..` in a WorkingDir stays inside the image, as the kernel keeps it
/// at the unit's root: it was joined to the layer's host path, so the
/// build host's own /etc passed for the image's.
#[test]
fn a_working_dir_with_dotdot_is_looked_up_in_the_image() {
    let tar = Tar::new().file("bin/x", b"", 0o755).bytes();
    let run = format!(
        r#"{{"WorkingDir":"{}/etc","Entrypoint":["/bin/x"]}}"#,
        "/..".repeat(30)
    );
    let cfg = config(&[&tar], &run);
    refused(
        "wd-dotdot",
        vec![gz(tar)],
        cfg,
        "/etc` is not in the image",
        &[],
    );
    // And one the image has is found.
    let tar = Tar::new().file("bin/x", b"", 0o755).dir("w/").bytes();
    let d = scratch("wd-dotdot-ok");
    let run = r#"{"WorkingDir":"/../w/../../w","Entrypoint":["/bin/x"]}"#;
    let src = one_layer_image(&d, &d.join("img"), "t", &tar, run);
    imported(&d.join("root"), "x", &src);
}

/// What an image names (an entry, a tag in its index, a docker archive's
/// member) is printed with its control characters escaped: raw, it could
/// rewrite the build's terminal or log (erase the error, print a
/// success).
#[test]
fn messages_print_the_image_s_names_escaped() {
    let hostile = "x\n\u{1b}[2K\rwren-oci: imported OK\n\u{1b}[8m/../y";
    let tar = Tar::new()
        .file("bin/x", b"", 0o755)
        .file(hostile, b"", 0o644)
        .bytes();
    // Refused, on one line, with no escape or carriage return in it.
    let refused_clean = |d: &Path, src: &str, msg: &str| {
        let root = d.join("root");
        std::fs::create_dir_all(&root).unwrap();
        let (rc, out) = wren_oci(&[
            "import",
            "--root",
            root.to_str().unwrap(),
            "--name",
            "x",
            src,
        ]);
        assert_eq!(rc, 1, "{out}");
        assert!(!out.contains(['\u{1b}', '\r']), "{out:?}");
        assert_eq!(out.lines().count(), 1, "{out:?}");
        assert!(out.contains(msg), "expected `{msg}` in: {out}");
    };
    let d = scratch("esc-entry");
    let src = one_layer_image(&d, &d.join("img"), "t", &tar, RUN_X);
    refused_clean(&d, &src, "entry `x\\n\\u{1b}[2K\\rwren-oci: imported OK\\n");
    // A tag of the index, listed when the one asked for is not there.
    let d = scratch("esc-tag");
    one_layer_image(&d, &d.join("img"), "v1\\u001b[2J", &tar, "{}");
    let src = format!("oci:{}:v2", d.join("img").display());
    refused_clean(&d, &src, "(tags: v1\\u{1b}[2J)");
    // A docker archive's layer member.
    let d = scratch("esc-member");
    let cfg = config(&[&tar], "{}");
    let manifest = format!(
        r#"[{{"Config":"{}.json","RepoTags":["x:1"],"Layers":["\u001b[31mevil/layer.tar"]}}]"#,
        sha(&cfg)
    );
    let archive = Tar::new()
        .file(&format!("{}.json", sha(&cfg)), &cfg, 0o644)
        .file("manifest.json", manifest.as_bytes(), 0o644)
        .bytes();
    std::fs::write(d.join("a.tar"), archive).unwrap();
    let src = format!("docker-archive:{}", d.join("a.tar").display());
    refused_clean(&d, &src, "no layer member `\\u{1b}[31mevil/layer.tar`");
}

/// The capabilities follow the user the unit runs as, a `--set user=`
/// included: a root image given `--set user=1000` kept Docker's root set,
/// which wren raises as ambient capabilities for a non-root user (setuid,
/// dac_override...). A `--set capabilities=` is the operator's and stays.
#[test]
fn capabilities_follow_a_user_given_with_set() {
    let d = scratch("set-user-caps");
    let tar = Tar::new()
        .file("etc/passwd", PASSWD, 0o644)
        .file("bin/x", b"", 0o755)
        .bytes();
    let src = one_layer_image(&d, &d.join("img"), "t", &tar, RUN_X);
    let root = d.join("root");
    let unit = |set: &[&str]| {
        let mut args = vec!["import", "--root", root.to_str().unwrap(), "--name", "x"];
        for s in set {
            args.extend(["--set", s]);
        }
        args.push(&src);
        let (rc, out) = wren_oci(&args);
        assert_eq!(rc, 0, "{out}");
        std::fs::read_to_string(root.join("etc/units/x.unit")).unwrap()
    };
    let caps = |u: &str| {
        u.lines()
            .filter_map(|l| l.strip_prefix("capabilities = "))
            .collect::<Vec<_>>()
            .join("|")
    };
    let docker = "chown dac_override fsetid fowner mknod net_raw setgid setuid setfcap setpcap net_bind_service sys_chroot kill audit_write";
    assert_eq!(caps(&unit(&[])), docker);
    let u = unit(&["user=1000"]);
    assert!(u.contains("\nuser = 1000\n"), "{u}");
    assert_eq!(caps(&u), "none", "{u}");
    assert_eq!(caps(&unit(&["user=app"])), "none");
    // Back to root by its name, the last `--set user=` being the one.
    assert_eq!(caps(&unit(&["user=1000", "user=root"])), docker);
    let u = unit(&["capabilities=net_bind_service", "user=1000"]);
    assert_eq!(caps(&u), "net_bind_service", "{u}");
}

/// `docker save app:latest db:latest > all.tar`: the TAG `latest` names
/// both images, and the first was taken without a word. It is refused,
/// naming them; a REPO:TAG (a registry's port and a path's own `:`
/// included) names one.
#[test]
fn a_docker_archive_tag_naming_two_images_is_refused_and_repo_tag_picks_one() {
    let d = scratch("archive-two");
    let dir = d.join("a:b");
    std::fs::create_dir(&dir).unwrap();
    let mut archive = Tar::new();
    let mut listed = Vec::new();
    for (prog, tags) in [
        ("app", r#"["app:latest"]"#),
        ("db", r#"["db:latest","registry.local:5000/team/db:1"]"#),
    ] {
        let tar = Tar::new().file(&format!("bin/{prog}"), b"", 0o755).bytes();
        let cfg = config(&[&tar], &format!(r#"{{"Entrypoint":["/bin/{prog}"]}}"#));
        archive = archive
            .file(&format!("{}.json", sha(&cfg)), &cfg, 0o644)
            .file(&format!("{prog}/layer.tar"), &tar, 0o644);
        listed.push(format!(
            r#"{{"Config":"{}.json","RepoTags":{tags},"Layers":["{prog}/layer.tar"]}}"#,
            sha(&cfg)
        ));
    }
    let manifest = format!("[{}]", listed.join(","));
    let archive = archive.file("manifest.json", manifest.as_bytes(), 0o644);
    std::fs::write(dir.join("all.tar"), archive.bytes()).unwrap();
    let file = format!("docker-archive:{}", dir.join("all.tar").display());
    refused_at(
        &d,
        &format!("{file}:latest"),
        "`latest` names 2 images (app:latest, db:latest): name one as docker-archive:FILE:REPO:TAG",
        &[],
    );
    refused_at(&d, &file, "2 images in the archive", &[]);
    refused_at(
        &d,
        &format!("{file}:web"),
        "no image tagged `web` (tags: app:latest, db:latest, registry.local:5000/team/db:1)",
        &[],
    );
    let root = d.join("root");
    for (name, reference, exec) in [
        ("db", "db:latest", "/bin/db"),
        ("app", "app:latest", "/bin/app"),
        ("team", "registry.local:5000/team/db:1", "/bin/db"),
        ("one", "1", "/bin/db"),
    ] {
        imported(&root, name, &format!("{file}:{reference}"));
        let unit = std::fs::read_to_string(root.join(format!("etc/units/{name}.unit"))).unwrap();
        assert!(unit.contains(&format!("\nexec = {exec}\n")), "{unit}");
        // The unit says which image of the archive it is, as an oci:
        // source's says its tag: `image docker-archive:/x/all.tar` alone
        // was any of them.
        let tail = format!("all.tar:{reference}");
        let first = unit.lines().next().unwrap();
        assert!(first.contains(&format!("{tail}: ")), "{unit}");
        let desc = unit.lines().find(|l| l.starts_with("description = "));
        assert!(desc.unwrap().ends_with(&tail), "{unit}");
    }
    // Not a TAG nor a REPO:TAG: a usage error; no file at all: the whole
    // is the file not found.
    let r = root.to_str().unwrap();
    for bad in [":latest", "db:", "db:a b", "localhost:5000/db"] {
        let src = format!("{file}:{bad}");
        let (rc, out) = wren_oci(&["import", "--root", r, "--name", "x", &src]);
        assert_eq!(rc, 2, "{bad}: {out}");
        assert!(out.contains("TAG or REPO:TAG"), "{out}");
    }
    let missing = format!("{}:latest", dir.join("none.tar").display());
    refused_at(
        &d,
        &format!("docker-archive:{missing}"),
        &format!("cannot read {missing}: No such file"),
        &[],
    );
}

/// `docker save` before Docker 25 writes a layer the image has twice as a
/// symlink member, `ID2/layer.tar -> ../ID1/layer.tar`: only regular
/// members were looked at, so such an image failed with "no layer
/// member". The link is followed inside the archive only.
#[test]
fn a_docker_archive_layer_given_as_a_symlink_member_imports() {
    let d = scratch("archive-link");
    let base = Tar::new().file("bin/x", b"", 0o755).bytes();
    let empty = Tar::new().bytes();
    let cfg = config(&[&base, &empty, &empty], RUN_X);
    let archive = |link: &str| {
        let manifest = format!(
            r#"[{{"Config":"{}.json","RepoTags":["app:1"],"Layers":["aaaa/layer.tar","bbbb/layer.tar","cccc/layer.tar"]}}]"#,
            sha(&cfg)
        );
        Tar::new()
            .file(&format!("{}.json", sha(&cfg)), &cfg, 0o644)
            .file("aaaa/layer.tar", &base, 0o644)
            .file("bbbb/layer.tar", &empty, 0o644)
            .symlink("cccc/layer.tar", link)
            .file("manifest.json", manifest.as_bytes(), 0o644)
            .bytes()
    };
    std::fs::write(d.join("a.tar"), archive("../bbbb/layer.tar")).unwrap();
    let root = d.join("root");
    std::fs::create_dir(&root).unwrap();
    let src = format!("docker-archive:{}", d.join("a.tar").display());
    let out = imported(&root, "x", &src);
    assert!(out.contains("3 layers (2 new)"), "{out}");
    let unit = std::fs::read_to_string(root.join("etc/units/x.unit")).unwrap();
    let store = "/var/lib/wren/layers/sha256";
    assert!(
        unit.contains(&format!(
            "\nroot = {store}/{}:{store}/{}\n",
            sha(&empty),
            sha(&base)
        )),
        "{unit}"
    );
    // A file of the build host is never what a link names (this one, by
    // its absolute path), nor is a member round a loop or one that is not
    // there.
    std::fs::create_dir_all(d.join("bbbb")).unwrap();
    std::fs::write(d.join("bbbb/layer.tar"), &empty).unwrap();
    for (i, (link, msg)) in [
        (
            "../../bbbb/layer.tar",
            "layer `cccc/layer.tar`: the symlink `cccc/layer.tar` -> `../../bbbb/layer.tar` leads out of the archive",
        ),
        (
            &format!("{}/bbbb/layer.tar", d.display()),
            "leads out of the archive",
        ),
        (
            "../dddd/layer.tar",
            "layer `cccc/layer.tar`: a symlink to `dddd/layer.tar`, which is no member",
        ),
        ("layer.tar", "layer `cccc/layer.tar`: more than 40 symlinks"),
    ]
    .iter()
    .enumerate()
    {
        let d = scratch(&format!("archive-link-{i}"));
        std::fs::write(d.join("a.tar"), archive(link)).unwrap();
        let src = format!("docker-archive:{}", d.join("a.tar").display());
        refused_at(&d, &src, msg, &[]);
    }
}

/// A zstd layer of several frames (pzstd writes one per thread,
/// zstd:chunked one per chunk and skippable frames for its table of
/// contents) is one stream: only its first frame was decoded, and the
/// layer refused as cut short.
#[test]
fn a_zstd_layer_of_several_frames_imports() {
    let d = scratch("zstd-frames");
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let tar = Tar::new()
        .file("bin/x", &big, 0o755)
        .file("etc/y", b"yy", 0o644)
        .bytes();
    let skip = |data: &[u8]| {
        let mut f = vec![0x5e, 0x2a, 0x4d, 0x18];
        f.extend((data.len() as u32).to_le_bytes());
        f.extend(data);
        f
    };
    let (a, b) = tar.split_at(tar.len() / 2);
    let (b, c) = b.split_at(b.len() / 2);
    let mut blob = skip(b"first");
    blob.extend(compress(a, Comp::Zstd));
    blob.extend(compress(b, Comp::Zstd));
    blob.extend(skip(b""));
    blob.extend(compress(c, Comp::Zstd));
    blob.extend(skip(b"table of contents"));
    let cfg = config(&[&tar], RUN_X);
    oci_layout(&d.join("img"), "t", &[(blob, media(Comp::Zstd))], &cfg);
    let root = d.join("root");
    std::fs::create_dir(&root).unwrap();
    imported(&root, "x", &format!("oci:{}", d.join("img").display()));
    let l = layer(&root, &tar);
    assert_eq!(std::fs::read(l.join("bin/x")).unwrap(), big);
    assert_eq!(std::fs::read(l.join("etc/y")).unwrap(), b"yy");
    // Cut inside a skippable frame, or followed by what is no frame:
    // refused.
    for (i, tail) in [&[0x50, 0x2a, 0x4d, 0x18, 9, 0, 0, 0, 1][..], b"junk"]
        .iter()
        .enumerate()
    {
        let mut blob = compress(&tar, Comp::Zstd);
        blob.extend(*tail);
        let cfg = config(&[&tar], RUN_X);
        refused(
            &format!("zstd-frames-{i}"),
            vec![(blob, media(Comp::Zstd))],
            cfg,
            "broken zstd stream",
            &[],
        );
    }
}

/// A directory removed and made again in one layer, `.wh.d` then `d/`
/// (the order the OCI spec asks generators for), hides the lower `d`
/// whole: it was left a plain directory, and the lower `d/old` showed
/// through it in the overlay.
#[test]
fn a_directory_whited_out_and_made_again_in_one_layer_is_opaque() {
    let d = scratch("wh-dir-again");
    let base = Tar::new()
        .file("bin/x", b"", 0o755)
        .file("d/old", b"old", 0o644)
        .file("e/old", b"old", 0o644)
        .bytes();
    let top = Tar::new()
        .file(".wh.d", b"", 0o644)
        .dir("d/")
        .file("d/new", b"n", 0o644)
        .dir("e/")
        .file("e/new", b"n", 0o644)
        .bytes();
    let cfg = config(&[&base, &top], RUN_X);
    let root = imported_two(&d, &base, &top, &cfg, "x");
    let t = layer(&root, &top);
    let opaque = |dir: &str| {
        let mut v = [0u8; 4];
        rustix::fs::lgetxattr(t.join(dir), "trusted.overlay.opaque", &mut v)
            .ok()
            .map(|n| v[..n].to_vec())
    };
    assert_eq!(opaque("d"), Some(b"y".to_vec()));
    assert!(t.join("d/new").is_file());
    // A directory of the layer that no whiteout removed merges.
    assert_eq!(opaque("e"), None);
}

/// Under fakeroot as root the opaque marker is set on the directory, but
/// fakeroot does not see that system call, and a file system image made
/// in its session (Buildroot's mke2fs -d, which reads xattrs through
/// fakeroot) gets no marker: that passed without a word. The import
/// says so when FAKEROOTKEY (fakeroot's, in its session) is set and the
/// image has an opaque directory, made now or found in the store.
#[test]
fn an_image_with_opaque_directories_imported_under_fakeroot_warns() {
    let d = scratch("fakeroot-key");
    let (_, top) = opaque_image(&d, remade_d());
    let root = d.join("root");
    std::fs::create_dir(&root).unwrap();
    let src = format!("oci:{}", d.join("img").display());
    // The import's warnings (it must succeed) with FAKEROOTKEY `key`.
    let import = |name: &str, src: &str, key: Option<&str>| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_wren-oci"));
        c.args([
            "import",
            "--root",
            root.to_str().unwrap(),
            "--name",
            name,
            src,
        ]);
        match key {
            Some(k) => c.env("FAKEROOTKEY", k),
            None => c.env_remove("FAKEROOTKEY"),
        };
        let out = c.output().unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let run = |key: Option<&str>| import("x", &src, key);
    let warned = |err: &str| err.contains("warning: fakeroot is running");
    let err = run(None);
    assert!(!err.contains("warning"), "{err}");
    // Found marked in the store, then marked anew.
    for again in [false, true] {
        if again {
            std::fs::remove_dir_all(layer(&root, &top)).unwrap();
        }
        let err = run(Some("12345"));
        assert!(warned(&err) && err.contains("mke2fs -d"), "{err}");
        assert!(err.contains("show through"), "{err}");
    }
    // An image with no opaque directory says nothing.
    let plain = Tar::new().unowned("bin/x", b"", 0o755).bytes();
    let src = one_layer_image(&d, &d.join("plain"), "t", &plain, RUN_X);
    let out = import("y", &src, Some("12345"));
    assert!(!out.contains("warning"), "{out}");
}

/// An OCI layout at `d/img` of a base with `d/old` and a top layer of
/// `top`; both of entries any user unpacks (no owner to set). Returns
/// the base and the top layers' tars.
fn opaque_image(d: &Path, top: Tar) -> (Vec<u8>, Vec<u8>) {
    let base = Tar::new()
        .unowned("bin/x", b"", 0o755)
        .unowned_dir("d/")
        .unowned("d/old", b"old", 0o644)
        .bytes();
    let top = top.bytes();
    let cfg = config(&[&base, &top], RUN_X);
    oci_layout(
        &d.join("img"),
        "t",
        &[gz(base.clone()), gz(top.clone())],
        &cfg,
    );
    (base, top)
}

/// `wren-oci import` of `d/img` into `d/root` as an unprivileged user,
/// who cannot set a `trusted.*` xattr (EPERM), as under Buildroot's
/// fakeroot as a build user, which does not see wren-oci's raw system
/// calls: uid 65534 when the test runs as root (the binary copied to
/// where that user can run it), else the test's own user. Without
/// FAKEROOTKEY. (exit code, stdout + stderr).
fn import_unprivileged(d: &Path) -> (i32, String) {
    use std::os::unix::process::CommandExt;
    let root = d.join("root");
    std::fs::create_dir(&root).unwrap();
    let mut cmd = if rustix::process::geteuid().is_root() {
        std::os::unix::fs::chown(&root, Some(65534), Some(65534)).unwrap();
        let bin = d.join("wren-oci");
        std::fs::copy(env!("CARGO_BIN_EXE_wren-oci"), &bin).unwrap();
        let mut c = std::process::Command::new(bin);
        c.uid(65534).gid(65534);
        c
    } else {
        std::process::Command::new(env!("CARGO_BIN_EXE_wren-oci"))
    };
    let src = format!("oci:{}", d.join("img").display());
    cmd.args([
        "import",
        "--root",
        root.to_str().unwrap(),
        "--name",
        "x",
        &src,
    ])
    .env_remove("FAKEROOTKEY");
    // The copy just written: another test's fork taken while its fd was
    // open holds a writer until that child's exec, and this exec meets
    // ETXTBSY meanwhile (rust-lang/rust#114554). Tried again a while.
    let mut tries = 0;
    let out = loop {
        match cmd.output() {
            Err(e)
                if e.raw_os_error() == Some(rustix::io::Errno::TXTBSY.raw_os_error())
                    && tries < 100 =>
            {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            r => break r.unwrap(),
        }
    };
    exit_and_text(&out)
}

/// A layer that removes `d` and makes it again (`.wh.d`, then `d/` and
/// `d/new`), its entries owned by no one in particular.
fn remade_d() -> Tar {
    Tar::new()
        .unowned(".wh.d", b"", 0o644)
        .unowned_dir("d/")
        .unowned("d/new", b"n", 0o644)
}

/// A fresh directory under the system's temporary directory that any
/// user reaches (the target dir may be under a home only its owner can
/// enter).
fn scratch_for_all(name: &str) -> std::path::PathBuf {
    // The pid in the name: two test runs on one machine (a clone's CI
    // beside a checkout's tests) must not share it.
    let d = std::env::temp_dir().join(format!("wren-oci-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir(&d).unwrap();
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
    d
}

/// A directory a layer removes and makes again (`.wh.d` then `d/`) that
/// cannot be marked opaque for want of privilege (an unprivileged user,
/// or one under fakeroot, whose libc calls it fakes but not wren-oci's
/// raw system calls) is imported unmarked, as it was before such
/// directories were marked, with a warning naming the layer and the
/// directory and what it means on the device: the import failed, so
/// images that imported under Buildroot's fakeroot no longer did. A
/// `.wh..wh..opq`, never imported unmarked, is still refused.
#[test]
fn a_directory_made_again_that_cannot_be_marked_imports_with_a_warning() {
    let d = scratch_for_all("unmarked");
    let (_, top) = opaque_image(&d, remade_d());
    let (rc, out) = import_unprivileged(&d);
    let t = layer(&d.join("root"), &top);
    let mut v = [0u8; 4];
    let marked = rustix::fs::lgetxattr(t.join("d"), "trusted.overlay.opaque", &mut v).is_ok();
    assert_eq!(rc, 0, "{out}");
    assert!(!marked);
    assert!(t.join("d/new").is_file());
    for said in [
        "warning: layer 2 (sha256:",
        "`d`",
        "cannot be marked opaque",
        "fakeroot",
        "show through",
        "squash",
    ] {
        assert!(out.contains(said), "does not say `{said}`: {out}");
    }

    let d2 = scratch_for_all("unmarked-opq");
    opaque_image(
        &d2,
        Tar::new()
            .unowned_dir("d/")
            .unowned("d/.wh..wh..opq", b"", 0o644),
    );
    let (rc, out) = import_unprivileged(&d2);
    assert_eq!(rc, 1, "{out}");
    assert!(
        out.contains("entry `d/.wh..wh..opq`: cannot mark the directory opaque"),
        "{out}"
    );
    assert!(out.contains("real root"), "{out}");
    std::fs::remove_dir_all(&d).unwrap();
    std::fs::remove_dir_all(&d2).unwrap();
}

/// A layer found in the store is read and checked but not unpacked
/// again: one stored by a wren-oci that left a directory made again
/// unmarked (before such directories were marked), or whose marker was
/// lost since (a copy without xattrs), stayed so through every later
/// import, its lower files showing through. Each import of it sets the
/// opaque markers its tar asks for where they are missing; a blob that
/// is not the layer its diff_id names sets none.
#[test]
fn a_stored_layer_gets_the_opaque_markers_it_lacks() {
    let d = scratch("stored-opaque");
    let (base, top) = opaque_image(
        &d,
        Tar::new()
            .unowned(".wh.d", b"", 0o644)
            .unowned_dir("d/")
            .unowned("d/new", b"n", 0o644)
            .unowned_dir("e/")
            .unowned("e/.wh..wh..opq", b"", 0o644)
            .unowned_dir("f/"),
    );
    let root = d.join("root");
    std::fs::create_dir(&root).unwrap();
    let src = format!("oci:{}", d.join("img").display());
    imported(&root, "x", &src);
    let t = layer(&root, &top);
    let opaque = |dir: &str| {
        let mut v = [0u8; 4];
        rustix::fs::lgetxattr(t.join(dir), "trusted.overlay.opaque", &mut v)
            .is_ok_and(|n| v[..n] == *b"y")
    };
    let all = || ["d", "e", "f"].map(opaque);
    assert_eq!(all(), [true, true, false]);
    for dir in ["d", "e"] {
        rustix::fs::lremovexattr(t.join(dir), "trusted.overlay.opaque").unwrap();
    }
    // Another blob under the top layer's diff_id, whiting out and
    // making again the stored layer's directories: refused, and the
    // store's directories are left as they are.
    let hostile = Tar::new()
        .unowned(".wh.d", b"", 0o644)
        .unowned_dir("d/")
        .unowned("e/.wh..wh..opq", b"", 0o644)
        .unowned(".wh.f", b"", 0o644)
        .unowned_dir("f/")
        .bytes();
    let cfg = config(&[&base, &top], RUN_X);
    oci_layout(
        &d.join("hostile"),
        "t",
        &[gz(base.clone()), gz(hostile)],
        &cfg,
    );
    refused_at(
        &d,
        &format!("oci:{}", d.join("hostile").display()),
        "does not match the config's diff_id",
        &[],
    );
    assert_eq!(all(), [false, false, false]);
    let out = imported(&root, "x", &src);
    assert!(out.contains("2 layers (0 new)"), "{out}");
    assert_eq!(all(), [true, true, false]);
}

/// A `WorkingDir` reached through a symlink of the image (`WORKDIR
/// /opt/app` built where `/opt -> usr/opt`) is found, as the kernel finds
/// it inside the unit's root and as the program is found: it was refused
/// as not in the image. One the link leads nowhere from is not.
#[test]
fn a_working_dir_through_an_image_symlink_is_found() {
    let tar = Tar::new()
        .file("bin/x", b"", 0o755)
        .symlink("opt", "usr/opt")
        .dir("usr/opt/app/")
        .symlink("srv", "/nowhere")
        .bytes();
    let d = scratch("wd-link");
    let run = r#"{"WorkingDir":"/opt/app","Entrypoint":["/bin/x"]}"#;
    let src = one_layer_image(&d, &d.join("img"), "t", &tar, run);
    imported(&d.join("root"), "x", &src);
    let unit = std::fs::read_to_string(d.join("root/etc/units/x.unit")).unwrap();
    assert!(unit.contains("\nworkdir = /opt/app\n"), "{unit}");
    let cfg = config(
        &[&tar],
        r#"{"WorkingDir":"/srv/app","Entrypoint":["/bin/x"]}"#,
    );
    refused(
        "wd-link-nowhere",
        vec![gz(tar)],
        cfg,
        "WorkingDir `/srv/app` is not in the image",
        &[],
    );
}
