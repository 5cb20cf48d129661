use super::*;
use crate::testutil::TempDir;
use std::fs;
use std::os::unix::fs::PermissionsExt;

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
        let mut defs = Vec::new();
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

/// `check --root`'s verdict and what it printed.
fn root_out(img: &Path, paths: &[&Path]) -> (bool, String) {
    let mut out = Vec::new();
    let ok = check_root(img, paths, &mut out);
    (ok, String::from_utf8(out).unwrap())
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
    let mut defs = Vec::new();
    let mut errs = Vec::new();
    load_dir(&f.units, &mut defs, &mut |e| errs.push(e));
    assert_eq!(errs, []);
    let names: Vec<&str> = defs.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["0first", "net", "web"]);
    let web = defs.iter().find(|d| d.name == "web").unwrap();
    assert_eq!(web.after.iter().next(), Some("net"));
    assert_eq!(
        defs.iter().find(|d| d.name == "net").unwrap().kind,
        crate::unit::Kind::Oneshot
    );
}

#[test]
fn defs_is_replaced_not_appended() {
    let f = Fixture::new("clear");
    f.unit("a", "");
    let mut defs = Vec::new();
    defs.push(UnitDef::with_defaults("stale"));
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

/// A FIFO named like a unit is refused at once, writer or not (a blocking
/// open would wait for ever for a writer, at boot before any shell); a
/// device too, and the other units still load.
#[test]
fn a_fifo_or_a_device_named_like_a_unit_is_refused_without_blocking() {
    let f = Fixture::new("fifounit");
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        f.units.join("p.unit").as_path(),
        rustix::fs::Mode::from_raw_mode(0o644),
    )
    .unwrap();
    std::os::unix::fs::symlink("/dev/null", f.units.join("n.unit")).unwrap();
    fs::write(f.units.join("ok.unit"), format!("exec = {}\n", f.ok)).unwrap();
    let t = std::time::Instant::now();
    let (names, errs) = f.load();
    assert!(t.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(names, ["ok"]);
    assert_eq!(
        errs,
        [
            format!("{}: not a regular file", f.path("n")),
            format!("{}: not a regular file", f.path("p")),
        ]
    );
}

#[test]
fn missing_directory() {
    let f = Fixture::new("nodir");
    let mut defs = Vec::new();
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

/// A program on a partition a unit in `after` mounts (docs/raspberry-pi.md
/// keeps data so) is not there when PID 1 loads the units at boot: the
/// unit loads, and so do the units after it; `check` warns. Without an
/// `after` a missing program is still a refusal, and so it is in a reload
/// or an edit on the running system, where it is most likely a typo that
/// must not stop the unit's good run.
#[test]
fn a_program_a_dependency_may_bring_is_not_a_refusal_at_boot() {
    let f = Fixture::new("exec-after");
    let app = f.tmp.path().join("data/bin/app");
    f.unit("mounts", "type = oneshot\n");
    let app_unit = f.raw(
        "app",
        &format!("exec = {}\nafter = mounts\n", app.display()),
    );
    f.unit("ui", "after = app\n");
    f.raw("typo", &format!("exec = {}\n", app.display()));
    let (mut defs, mut errs) = (Vec::new(), Vec::new());
    load_dir_booting(&f.units, &mut defs, &mut |e| errs.push(e.to_string()));
    let names: Vec<&str> = defs.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["app", "mounts", "ui"]);
    let a = app.display();
    assert_eq!(
        errs,
        [format!("{}:1: exec: `{a}` not found", f.path("typo"))]
    );
    // A reload's load.
    let (names, errs) = f.load();
    assert_eq!(names, ["mounts"]);
    assert_eq!(errs.len(), 3, "{errs:?}");
    assert_eq!(
        errs[0],
        format!("{}:1: exec: `{a}` not found", f.path("app"))
    );
    // `edit`'s check.
    let mut out = Vec::new();
    assert!(!check_in_context(
        Path::new("/"),
        &[&app_unit],
        &f.units,
        &mut out
    ));
    let (ok, out) = check_out(Path::new("/"), &[&app_unit]);
    assert!(ok, "{out:?}");
    assert_eq!(
        out,
        [
            format!(
                "{}:1: warning: exec: `{a}` not found (loaded: a unit in `after` may bring it before the start)",
                f.path("app")
            ),
            "1 unit ok".to_string(),
        ]
    );
    // Once there, nothing to say.
    f.tmp.prog("data/bin/app");
    assert_eq!(check_out(Path::new("/"), &[&app_unit]).1, ["1 unit ok"]);
}

/// A `seccomp` allow list that refuses what a dynamically linked
/// program's loader calls is a `check` warning at the `exec` line (the
/// start would end in exit 127 without a word); a list that has them, a
/// deny list or a program without an interpreter is not.
#[test]
fn check_warns_of_an_allow_list_a_dynamic_program_cannot_start_under() {
    let f = Fixture::new("seccomp-loader");
    let tight = f.raw("tight", "exec = /bin/echo up\nseccomp = @network-io\n");
    let wide = f.raw("wide", "exec = /bin/echo\nseccomp = @system-service\n");
    let deny = f.raw("deny", "exec = /bin/echo\nseccomp = ~@mount\n");
    // A script: the kernel starts its interpreter under the filter.
    let script = f.tmp.file("bin/script", "#!/bin/sh -e\n");
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let text = format!("exec = {}\nseccomp = @network-io\n", script.display());
    let scripted = f.raw("script", &text);
    // A FIFO where the program was: no warning, and no wait on it.
    let fifo = f.tmp.path().join("bin/fifo");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o755),
        0,
    )
    .unwrap();
    let blocked = f.raw(
        "fifo",
        &format!("exec = {}\nseccomp = @network-io\n", fifo.display()),
    );
    // Half the loader's calls: still refused what the rest need.
    let half = f.raw("half", "exec = /bin/echo\nseccomp = openat read close\n");
    let (ok, out) = check_out(
        Path::new("/"),
        &[&tight, &wide, &deny, &scripted, &blocked, &half],
    );
    assert!(!ok, "the FIFO is refused: {out:?}");
    let advice =
        "which the allow list refuses (add @basic-io @file-system, or use @system-service)";
    let all = "openat, read, close, newfstatat, pread64";
    assert_eq!(
        out,
        [
            format!("{}:1: exec: `{}` is not a regular file", f.path("fifo"), fifo.display()),
            format!(
                "{}:1: warning: seccomp: `/bin/echo` is dynamically linked and its loader calls {all}, {advice}",
                f.path("tight")
            ),
            format!(
                "{}:1: warning: seccomp: `/bin/sh` (the interpreter of `{}`) is dynamically linked and its loader calls {all}, {advice}",
                f.path("script"),
                script.display()
            ),
            format!(
                "{}:1: warning: seccomp: `/bin/echo` is dynamically linked and its loader calls newfstatat, pread64, {advice}",
                f.path("half")
            ),
            "1 error; 5 of 6 units ok".to_string(),
        ]
    );
}

/// The ELF reading behind that warning: an interpreter's program header
/// found in either byte order, nothing for what is not 64-bit ELF.
#[test]
fn an_interpreter_is_found_in_the_program_headers() {
    let elf = |big: bool, types: &[u32]| {
        let mut h = vec![0u8; 64 + 56 * types.len()];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = 2;
        h[5] = if big { 2 } else { 1 };
        let put = |h: &mut Vec<u8>, at: usize, v: u64, len: usize| {
            for i in 0..len {
                let shift = if big { len - 1 - i } else { i } * 8;
                h[at + i] = (v >> shift) as u8;
            }
        };
        put(&mut h, 32, 64, 8);
        put(&mut h, 54, 56, 2);
        put(&mut h, 56, types.len() as u64, 2);
        for (k, &t) in types.iter().enumerate() {
            put(&mut h, 64 + 56 * k, u64::from(t), 4);
        }
        h
    };
    use super::loader::has_interpreter;
    assert!(has_interpreter(&elf(false, &[6, 3, 1])));
    assert!(has_interpreter(&elf(true, &[3])));
    assert!(!has_interpreter(&elf(false, &[6, 1, 1])), "static");
    assert!(!has_interpreter(&elf(false, &[3])[..66]), "headers cut off");
    assert!(!has_interpreter(b"#!/bin/sh\n"));
    assert!(has_interpreter(&fs::read("/bin/echo").unwrap()[..4096]));
}

/// A program path or a file name with a control character in it is shown
/// with `?` there: the message goes to a terminal.
#[test]
fn control_characters_in_messages_are_shown_as_question_marks() {
    let f = Fixture::new("exec-ctl");
    f.raw("esc", "exec = /bin/\u{1b}[2Jx\n");
    fs::write(f.units.join("a\nb.unit"), format!("exec = {}\n", f.ok)).unwrap();
    let (names, errs) = f.load();
    assert!(names.is_empty(), "{names:?}");
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(errs.iter().all(|e| !e.contains('\u{1b}')), "{errs:?}");
    assert!(
        errs.iter()
            .any(|e| e.ends_with("exec: `/bin/?[2Jx` not found")),
        "{errs:?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.contains("`a?b` is not a valid unit name")),
        "{errs:?}"
    );
    assert!(errs.iter().all(|e| e.lines().count() == 1), "{errs:?}");
}

/// The layer store is root's (0700): a unit in a user namespace, whose
/// mounts are made as its mapped uid, is refused a root there at load,
/// at the line of its `root`.
#[test]
fn a_user_namespace_cannot_use_the_layer_store() {
    let f = Fixture::new("store");
    let img = f.tmp.path().join("image");
    f.tmp.prog("image/bin/app");
    let store = "/var/lib/wren/layers/sha256";
    f.raw(
        "rootless",
        &format!(
            "namespaces = user mount pid\nroot = {store}/top:{}\nexec = /bin/app",
            img.display()
        ),
    );
    f.raw(
        "rooted",
        &format!(
            "root = {store}/top:{}\nnamespaces = mount pid\nexec = /bin/app",
            img.display()
        ),
    );
    f.raw(
        "outside",
        &format!(
            "root = {}\nnamespaces = user mount pid\nexec = /bin/app",
            img.display()
        ),
    );
    // The store's layers need not exist for the check: the top layer's
    // absence is no error for exec (found in the base).
    let (names, errs) = f.load();
    assert_eq!(names, ["outside", "rooted"]);
    assert_eq!(
        errs,
        [format!(
            "{}:2: root: a unit with `user` in namespaces cannot use layers of /var/lib/wren/layers (root's only; its mounts are made as its mapped uid)",
            f.path("rootless")
        )]
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
    let (ok, out) = check_out(Path::new("/"), &[&f.units]);
    assert!(!ok);
    for want in [
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
    ] {
        assert!(out.contains(&want), "{out:?}");
    }
    assert!(!out.iter().any(|l| l.contains(&f.path("in"))), "{out:?}");
    // PID 1's load does not look into a unit's root (a mount that hangs
    // would stall it): each start's execve says what `check` says here.
    let (names, errs) = f.load();
    assert_eq!(names, ["in", "noroot", "out"]);
    assert_eq!(errs, Vec::<String>::new());
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
fn a_unit_between_two_cycles_or_waiting_for_itself() {
    let f = Fixture::new("between");
    // `mid` waits for one cycle and is waited for by another: it is on
    // neither, so it is refused as waiting for an invalid unit.
    f.unit("a1", "after = a2");
    f.unit("a2", "after = a1 mid");
    f.unit("mid", "after = b1");
    f.unit("b1", "after = b2");
    f.unit("b2", "after = b1");
    f.unit("self", "after = self");
    let (names, errs) = f.load();
    assert!(names.is_empty(), "{names:?}");
    assert_eq!(
        errs,
        [
            format!("{}:2: after: cycle a1 -> a2 -> a1", f.path("a1")),
            format!("{}:2: after: cycle a2 -> a1 -> a2", f.path("a2")),
            format!("{}:2: after: cycle b1 -> b2 -> b1", f.path("b1")),
            format!("{}:2: after: cycle b2 -> b1 -> b2", f.path("b2")),
            format!("{}:2: after: unit `b1` is invalid", f.path("mid")),
            // Refused by the parser already, before any cycle search.
            format!(
                "{}:2: after: a unit cannot start after itself",
                f.path("self")
            ),
        ]
    );
}

#[test]
fn a_long_chain_to_a_missing_unit_is_refused_link_by_link() {
    // Each unit waits for the one after it in name order, the last for a
    // unit that does not exist: every unit is refused, each naming its
    // own link, and the units of a second chain that ends well stay.
    let f = Fixture::new("chain");
    let n = 300;
    for i in 0..n {
        let next = if i + 1 < n {
            format!("c{:04}", i + 1)
        } else {
            "nowhere".to_owned()
        };
        f.unit(&format!("c{i:04}"), &format!("after = {next}"));
        let ok_next = if i + 1 < n {
            format!("after = d{:04}", i + 1)
        } else {
            String::new()
        };
        f.unit(&format!("d{i:04}"), &ok_next);
    }
    let (names, errs) = f.load();
    assert_eq!(names.len(), n);
    assert!(names.iter().all(|x| x.starts_with('d')));
    assert_eq!(errs.len(), n);
    for (i, e) in errs.iter().enumerate().take(n - 1) {
        let want = format!(
            "{}:2: after: unit `c{:04}` is invalid",
            f.path(&format!("c{i:04}")),
            i + 1
        );
        assert_eq!(e, &want);
    }
    assert_eq!(
        errs.last().cloned(),
        Some(format!(
            "{}:2: after: no unit named `nowhere`",
            f.path(&format!("c{:04}", n - 1))
        ))
    );
}

/// Groups of `cycle_groups` against their definition, on random graphs:
/// a unit is on a cycle when it reaches itself, and two such units share
/// a group when each reaches the other; its order puts every unit once,
/// after the units it waits for outside its group.
#[test]
fn cycle_groups_are_the_units_that_reach_themselves() {
    let mut x: u64 = 7;
    let mut next = |m: u64| {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (x >> 33) % m
    };
    for round in 0..400 {
        let n = 1 + next(24) as usize;
        let density = 1 + next(4);
        // Some links name no unit (None): they lead nowhere.
        let deps: Vec<Vec<(Option<usize>, u32)>> = (0..n)
            .map(|_| {
                (0..next(density + 1))
                    .map(|l| ((next(8) > 0).then(|| next(n as u64) as usize), l as u32))
                    .collect()
            })
            .collect();
        // reach[a][b]: a path of at least one link from a to b.
        let mut reach = vec![vec![false; n]; n];
        for (a, d) in deps.iter().enumerate() {
            for &(b, _) in d {
                if let Some(b) = b {
                    reach[a][b] = true;
                }
            }
        }
        for k in 0..n {
            let via = reach[k].clone();
            for row in reach.iter_mut().filter(|row| row[k]) {
                for (r, v) in row.iter_mut().zip(&via) {
                    *r |= *v;
                }
            }
        }
        let (groups, order) = super::deps::cycle_groups(&deps);
        // Every unit once, each after the units it waits for outside its
        // group.
        let mut place = vec![usize::MAX; n];
        for (k, &u) in order.iter().enumerate() {
            assert_eq!(place[u], usize::MAX, "round {round}: {u} twice");
            place[u] = k;
        }
        assert!(place.iter().all(|&p| p < n), "round {round}: {order:?}");
        for (a, d) in deps.iter().enumerate() {
            for &(b, _) in d {
                if let Some(b) = b.filter(|&b| groups[a].is_none() || groups[a] != groups[b]) {
                    assert!(place[b] < place[a], "round {round}: {a} -> {b}, {order:?}");
                }
            }
        }
        for a in 0..n {
            assert_eq!(
                groups[a].is_some(),
                reach[a][a],
                "round {round} unit {a}: {deps:?}"
            );
            for b in 0..n {
                if reach[a][a] && reach[b][b] {
                    let together = reach[a][b] && reach[b][a];
                    assert_eq!(
                        groups[a] == groups[b],
                        together,
                        "round {round} {a} {b}: {deps:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn more_units_than_the_table_holds() {
    let f = Fixture::new("cap");
    for i in 0..=MAX_UNITS {
        f.unit(&format!("u{i:04}"), "");
    }
    // An invalid unit takes no slot.
    f.raw("u000a", "exec = /nonexistent/program");
    let (names, errs) = f.load();
    assert_eq!(names.len(), MAX_UNITS);
    assert_eq!(
        names.last().cloned(),
        Some(format!("u{:04}", MAX_UNITS - 1))
    );
    assert_eq!(errs.len(), 2);
    assert_eq!(
        errs[1],
        format!(
            "{}: more than {MAX_UNITS} units; this one is not loaded",
            f.path(&format!("u{MAX_UNITS:04}"))
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

/// Every file of a directory named (`initctl check /etc/units/*.unit`):
/// the directory is their context once, and no named file meets its own
/// copy there (which would be "also defined").
#[test]
fn check_every_file_of_a_directory_by_name() {
    let f = Fixture::new("checkall");
    let mut named: Vec<PathBuf> = (0..40)
        .map(|i| f.unit(&format!("u{i:02}"), &format!("after = u{:02}", i + 1)))
        .collect();
    let last = f.unit("u40", "");
    // And one file named twice, by two spellings of its path.
    let again = last.parent().unwrap().join(".").join("u40.unit");
    named.extend([last, again]);
    let paths: Vec<&Path> = named.iter().map(PathBuf::as_path).collect();
    let (ok, out) = check_out(Path::new("/"), &paths);
    assert!(!ok, "{out:?}");
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(out[0].contains("unit `u40` is also defined in"), "{out:?}");
    assert_eq!(out[1], "1 error; 41 of 42 units ok");
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
    // Three of one name among others: each later one names the first.
    let b3 = f.tmp.file("third/b.unit", &format!("exec = {}", f.ok));
    let (ok, out) = check_out(Path::new("/"), &[&b2, &a, &b, &b3]);
    assert!(!ok);
    let also = |x: &Path| {
        format!(
            "{}: unit `b` is also defined in {}",
            x.display(),
            b2.display()
        )
    };
    assert!(out.contains(&also(&b)), "{out:?}");
    assert!(out.contains(&also(&b3)), "{out:?}");
    assert!(
        !out.iter()
            .any(|l| l.starts_with(&format!("{}:", b2.display()))),
        "{out:?}"
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

/// `initctl check --root DIR`: an image's units checked on a build host:
/// programs through the image's own absolute symlinks (merged /usr),
/// users and groups from the image's passwd and group, never the host's.
#[test]
fn check_root_looks_inside_the_image() {
    let img = TempDir::new("checkroot");
    img.prog("bin/busybox");
    std::os::unix::fs::symlink("/bin/busybox", img.join("bin/sh")).unwrap();
    std::os::unix::fs::symlink("/bin", img.join("usr")).unwrap_or_else(|_| {
        fs::create_dir_all(img.join("usr")).unwrap();
    });
    img.file(
        "etc/passwd",
        "root:x:0:0::/root:/bin/sh\nwww:x:33:33::/var/www:/bin/false\n",
    );
    img.file("etc/group", "root:x:0:\nwww:x:33:\ngpio:x:997:www\n");
    img.file(
        "etc/units/web.unit",
        "exec = /bin/sh -c true\nuser = www\ngroup = gpio\n",
    );
    img.file("etc/units/merged.unit", "exec = /usr/sh\n");
    img.file("etc/units/ghost.unit", "exec = /bin/sh\nuser = ghost\n");
    img.file("etc/units/nogroup.unit", "exec = /bin/sh\ngroup = video\n");
    img.file(
        "etc/units/webvideo.unit",
        "exec = /bin/sh\nuser = www\n# the device's\ngroup = video\n",
    );
    img.file("etc/units/missing.unit", "exec = /usr/sbin/httpd -f\n");
    let (ok, out) = root_out(img.path(), &[]);
    assert!(!ok, "{out}");
    let units = img.join("etc/units");
    let u = |n: &str| units.join(format!("{n}.unit")).display().to_string();
    let passwd = img.join("etc/passwd").display().to_string();
    let group = img.join("etc/group").display().to_string();
    assert!(
        out.contains(&format!(
            "{}:2: user `ghost`: user not found in /etc/passwd ({passwd})",
            u("ghost")
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "{}:2: group `video`: group not found in /etc/group ({group})",
            u("nogroup")
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "{}:1: exec: `/usr/sbin/httpd` not found",
            u("missing")
        )),
        "{out}"
    );
    // The group's own lookup at its own line, not the user's.
    assert!(
        out.contains(&format!(
            "{}:4: user `www`, group `video`: group not found in /etc/group ({group})",
            u("webvideo")
        )),
        "{out}"
    );
    assert!(!out.contains(&format!("{}:", u("web"))), "{out}");
    assert!(!out.contains(&u("merged")), "{out}");
    assert!(out.ends_with("4 errors; 2 of 6 units ok\n"), "{out}");
    // Named files are checked against the image too.
    let (ok, out) = root_out(img.path(), &[Path::new(&u("web"))]);
    assert!(ok, "{out}");
    assert_eq!(out, "1 unit ok\n");
}

/// Files named with `--root` are checked against the image wherever they
/// are staged: the image needs no unit directory of its own (check
/// refused them, "cannot read the directory", when it had none).
#[test]
fn check_root_of_files_needs_no_unit_directory_in_the_image() {
    let img = TempDir::new("checkrootfiles");
    img.prog("bin/app");
    img.file("etc/passwd", "root:x:0:0::/root:/bin/sh\n");
    let staged = TempDir::new("checkrootstaged");
    staged.file("app.unit", "exec = /bin/app\n");
    let file = staged.join("app.unit");
    let (ok, out) = root_out(img.path(), &[file.as_path()]);
    assert!(ok, "{out}");
    assert_eq!(out, "1 unit ok\n");
    // Without a PATH, the image's unit directory is what is checked.
    let (ok, out) = root_out(img.path(), &[]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("etc/units: cannot read the directory"),
        "{out}"
    );
}

/// `check --root` reads passwd lines as a start does: a numeric `user`
/// without `group` needs its passwd line (for its primary group), and a
/// line whose gid does not read is no entry (check said both were fine,
/// and every start refused the unit).
#[test]
fn check_root_resolves_ids_as_a_start_does() {
    let img = TempDir::new("checkids");
    img.prog("bin/busybox");
    img.file(
        "etc/passwd",
        "root:x:0:0::/:/bin/sh\nwww:x:33:\napp:x:1000:1000::/:/bin/sh\n",
    );
    img.file("etc/units/num.unit", "exec = /bin/busybox\nuser = 4321\n");
    img.file("etc/units/numok.unit", "exec = /bin/busybox\nuser = 1000\n");
    img.file(
        "etc/units/numgroup.unit",
        "exec = /bin/busybox\nuser = 4321\ngroup = 5\n",
    );
    img.file("etc/units/www.unit", "exec = /bin/busybox\nuser = www\n");
    let (ok, out) = root_out(img.path(), &[]);
    assert!(!ok, "{out}");
    let u = |n: &str| {
        img.join(format!("etc/units/{n}.unit"))
            .display()
            .to_string()
    };
    assert!(
        out.contains(&format!(
            "{}:2: user `4321`: numeric user has no line in /etc/passwd: set `group`",
            u("num")
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "{}:2: user `www`: user not found in /etc/passwd",
            u("www")
        )),
        "{out}"
    );
    assert!(out.ends_with("2 errors; 2 of 4 units ok\n"), "{out}");
    for def in ["num", "www"] {
        let text = std::fs::read_to_string(img.join(format!("etc/units/{def}.unit"))).unwrap();
        let mut d = crate::unit::parse(def, &text).unwrap();
        d.seldom.root = Some(img.path().to_str().unwrap().try_into().unwrap());
        assert!(
            crate::config::users::resolve_ids(&d).is_err(),
            "the start agrees"
        );
    }
}

/// `root = TOP:MID:BASE`: programs and users are looked up as the overlay
/// will show them: the topmost layer wins, whiteouts and opaque
/// directories hide what is below.
#[test]
fn check_root_merges_layers_as_overlayfs() {
    use std::os::unix::fs::symlink;
    let img = TempDir::new("checklayers");
    let l = |n: &str| format!("var/lib/wren/layers/sha256/{n}");
    img.prog(&format!("{}/bin/busybox", l("base")));
    img.prog(&format!("{}/bin/old", l("base")));
    img.prog(&format!("{}/opt/x/tool", l("base")));
    img.file(
        &format!("{}/etc/passwd", l("base")),
        "root:x:0:0::/:/bin/sh\nwww:x:33:33::/:/bin/sh\n",
    );
    img.file(
        &format!("{}/etc/passwd", l("mid")),
        "root:x:0:0::/:/bin/sh\napp:x:1000:1000::/:/bin/sh\n",
    );
    fs::create_dir_all(img.join(l("mid") + "/opt/x")).unwrap();
    rustix::fs::setxattr(
        img.join(l("mid") + "/opt/x").as_path(),
        "trusted.overlay.opaque",
        b"y",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    fs::create_dir_all(img.join(l("mid") + "/bin")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        img.join(l("mid") + "/bin/old"),
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    fs::create_dir_all(img.join(l("top") + "/bin")).unwrap();
    symlink("/bin/busybox", img.join(l("top") + "/bin/sh")).unwrap();
    let root = ["top", "mid", "base"]
        .map(|n| format!("/{}", l(n)))
        .join(":");
    let unit = |name: &str, body: &str| {
        img.file(
            &format!("etc/units/{name}.unit"),
            &format!("{body}\nroot = {root}\nroot_overlay = yes\n"),
        );
    };
    unit("app", "exec = /bin/sh -c true\nuser = app");
    unit("www", "exec = /bin/sh\nuser = www");
    unit("old", "exec = /bin/old");
    unit("opaque", "exec = /opt/x/tool");
    let (ok, out) = root_out(img.path(), &[]);
    assert!(!ok, "{out}");
    let u = |n: &str| {
        img.join(format!("etc/units/{n}.unit"))
            .display()
            .to_string()
    };
    let mid_passwd = img.join(l("mid") + "/etc/passwd").display().to_string();
    assert!(
        out.contains(&format!(
            "{}:2: user `www`: user not found in /etc/passwd ({mid_passwd})",
            u("www")
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "{}:1: exec: `/bin/old` not found under root `{root}`",
            u("old")
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "{}:1: exec: `/opt/x/tool` not found under root",
            u("opaque")
        )),
        "{out}"
    );
    assert!(!out.contains(&u("app")), "{out}");
    assert!(out.ends_with("3 errors; 1 of 4 units ok\n"), "{out}");
}

#[test]
fn check_warns_about_an_unconfined_unit_next_to_confined_ones() {
    let f = Fixture::new("confined");
    f.unit("shell", "namespaces = none");
    let (ok, out) = check_out(Path::new("/"), &[&f.units]);
    assert!(ok);
    assert_eq!(out, ["1 unit ok"], "alone, nothing to compare with");
    f.unit(
        "web",
        "user = nobody\ncapabilities = net_bind_service\nseccomp = @system-service",
    );
    let (ok, out) = check_out(Path::new("/"), &[&f.units]);
    assert!(ok, "a warning is not an error: {out:?}");
    assert_eq!(
        out,
        [
            format!(
                "{}: warning: runs as root with every capability and no namespaces while other units are confined (see `user`, `capabilities`, `namespaces`)",
                f.path("shell")
            ),
            "2 units ok".to_owned(),
        ]
    );
    f.unit("shell", "namespaces = none\ncapabilities = sys_admin");
    let (_, out) = check_out(Path::new("/"), &[&f.units]);
    assert_eq!(out, ["2 units ok"]);
}

/// A file named in an image whose `etc/units` is an absolute link (to
/// `/usr/lib/units`) is checked beside the units of the image's
/// directory, not of the build host's `/usr/lib/units`.
#[test]
fn named_files_in_an_image_have_the_images_units_beside_them() {
    let img = TempDir::new("checkroot-linked");
    img.prog("bin/busybox");
    img.file("usr/lib/units/a.unit", "exec = /bin/busybox\nafter = b\n");
    img.file("usr/lib/units/b.unit", "exec = /bin/busybox\n");
    std::os::unix::fs::symlink("/usr/lib/units", img.join("etc/units")).unwrap_or_else(|_| {
        fs::create_dir_all(img.join("etc")).unwrap();
        std::os::unix::fs::symlink("/usr/lib/units", img.join("etc/units")).unwrap();
    });
    let a = img.join("etc/units/a.unit");
    let (ok, out) = root_out(img.path(), &[&a]);
    assert!(ok, "{out}");
    assert_eq!(out, "1 unit ok\n");
}

/// A `user` of another name that the image's passwd gives uid 0 (`toor`)
/// runs as root: it gets the warning as a unit without `user` does, and
/// does not count as a confined one.
#[test]
fn a_user_of_uid_0_by_another_name_is_root_for_the_warning() {
    let img = TempDir::new("checkroot-toor");
    img.prog("bin/busybox");
    img.file(
        "etc/passwd",
        "root:x:0:0::/root:/bin/sh\ntoor:x:0:0::/root:/bin/sh\nwww:x:33:33::/:/bin/false\n",
    );
    img.file("etc/group", "root:x:0:\nwww:x:33:\n");
    img.file(
        "etc/units/shell.unit",
        "exec = /bin/busybox sh\nuser = toor\nnamespaces = none\n",
    );
    let (ok, out) = root_out(img.path(), &[]);
    assert!(ok, "{out}");
    assert_eq!(
        out, "1 unit ok\n",
        "toor alone is no confined unit to compare with"
    );
    img.file("etc/units/web.unit", "exec = /bin/busybox\nuser = www\n");
    let (ok, out) = root_out(img.path(), &[]);
    assert!(ok, "{out}");
    let shell = img.join("etc/units/shell.unit").display().to_string();
    assert!(
        out.contains(&format!(
            "{shell}: warning: runs as root with every capability"
        )),
        "{out}"
    );
}

/// A FIFO named `x.unit` is left out without being opened: a writer
/// blocked in its open(2) stays blocked (a device behind such a name
/// would get no open either: /dev/watchdog's arms it).
#[test]
fn a_special_file_is_not_opened() {
    let f = Fixture::new("cfg-fifo");
    f.unit("ok", "");
    let fifo = f.units.join("x.unit");
    crate::testutil::fifo(&fifo);
    let (tx, rx) = std::sync::mpsc::channel();
    let p = fifo.clone();
    std::thread::spawn(move || {
        let opened = std::fs::OpenOptions::new().write(true).open(&p).is_ok();
        let _ = tx.send(opened);
    });
    std::thread::sleep(std::time::Duration::from_millis(100));
    let (names, errs) = f.load();
    assert_eq!(names, ["ok"]);
    assert!(
        errs.iter().any(|e| e.contains("not a regular file")),
        "{errs:?}"
    );
    let opened = rx
        .recv_timeout(std::time::Duration::from_millis(300))
        .is_ok();
    if !opened {
        // Let the writer go.
        let _ = std::fs::File::open(&fifo);
    }
    assert!(!opened, "the loader opened the FIFO");
}

/// A unit named as the kernel's cgroup files are (`memory.max`,
/// `cgroup.procs`: CONTROLLER.KEY) is refused at load, as `initctl check`
/// shows: its cgroup directory could never be made.
#[test]
fn a_unit_named_like_a_cgroup_file_is_refused() {
    let f = Fixture::new("cfg-cgname");
    for n in [
        "memory.max",
        "cgroup.procs",
        "cpu.max",
        "io.weight",
        "cgroup.kill",
    ] {
        f.unit(n, "");
    }
    f.unit("memorial.web", "");
    let (names, errs) = f.load();
    assert_eq!(names, ["memorial.web"]);
    assert_eq!(errs.len(), 5, "{errs:?}");
    assert!(
        errs.iter().all(|e| e.contains("cannot be a unit name")),
        "{errs:?}"
    );
}

/// `check --root`: an image's unit file that is an absolute link, and a
/// unit directory that is one, resolve inside the image (as the image
/// will see them), not on the build host.
#[test]
fn check_root_resolves_unit_links_inside_the_image() {
    for dir_linked in [false, true] {
        let img = TempDir::new("checkroot-links");
        img.prog("bin/busybox");
        img.file("usr/lib/units/web.unit", "exec = /bin/busybox\n");
        if dir_linked {
            fs::create_dir_all(img.join("etc")).unwrap();
            std::os::unix::fs::symlink("/usr/lib/units", img.join("etc/units")).unwrap();
        } else {
            fs::create_dir_all(img.join("etc/units")).unwrap();
            let link = img.join("etc/units/web.unit");
            std::os::unix::fs::symlink("/usr/lib/units/web.unit", link).unwrap();
        }
        let (ok, out) = root_out(img.path(), &[]);
        assert!(ok, "directory linked: {dir_linked}: {out}");
        assert!(out.contains("1 unit"), "{out}");
    }
}

/// `check --root`: a unit-file link to what the image lacks is an error,
/// not the build host's file of that path read instead.
#[test]
fn check_root_does_not_read_the_hosts_file_for_a_dangling_link() {
    let img = TempDir::new("checkroot-dangling");
    fs::create_dir_all(img.join("etc/units")).unwrap();
    // /etc/hostname exists on the build host, not in the image.
    std::os::unix::fs::symlink("/etc/hostname", img.join("etc/units/web.unit")).unwrap();
    let (ok, out) = root_out(img.path(), &[]);
    assert!(!ok, "{out}");
    assert!(out.contains("cannot read"), "{out}");
}

/// `check --root`: a unit's `root` is resolved inside the image too: an
/// image's `/var` linked to an absolute path must not lead the lookup to
/// the build host's directory of that name.
#[test]
fn check_root_resolves_a_units_root_inside_the_image() {
    let img = TempDir::new("check-rootlink");
    let host = TempDir::new("check-rootlink-host");
    host.prog("ct/bin/app");
    std::os::unix::fs::symlink(host.path(), img.join("var")).unwrap();
    img.file(
        "etc/units/ct.unit",
        "exec = /bin/app\nroot = /var/ct\nnamespaces = pid mount\n",
    );
    let (ok, out) = root_out(img.path(), &[]);
    assert!(!ok, "a program of the build host's was taken: {out}");
    assert!(
        out.contains("exec: `/bin/app` not found under root `/var/ct`"),
        "{out}"
    );
    // The same link inside the image leads to the image's directory.
    img.prog("data/ct/bin/app");
    std::fs::remove_file(img.join("var")).unwrap();
    std::os::unix::fs::symlink("/data", img.join("var")).unwrap();
    let (ok, out) = root_out(img.path(), &[]);
    assert!(ok, "{out}");
}

/// `initctl edit` checks a copy as `initctl check` does, users and groups
/// included: it installed a unit whose `user` no passwd line names.
#[test]
fn edit_checks_users_as_check_does() {
    let f = Fixture::new("edit-user");
    f.unit("net", "");
    fs::create_dir_all(f.tmp.path().join("edit")).unwrap();
    let copy = f.tmp.file(
        "edit/net.unit",
        &format!("exec = {}\nuser = no-such-user-xyz\n", f.ok),
    );
    let mut out = Vec::new();
    assert!(!check_at(Path::new("/"), &[&copy], &mut out));
    let mut out = Vec::new();
    let ok = check_in_context(Path::new("/"), &[&copy], &f.units, &mut out);
    let out = String::from_utf8(out).unwrap();
    assert!(!ok, "{out}");
    assert!(out.contains("user not found in /etc/passwd"), "{out}");
}

/// `check` of a directory that is not there (no /etc/units on this
/// machine) says so, not that its name is not `NAME.unit`.
#[test]
fn check_of_a_missing_directory_says_it_is_missing() {
    let f = Fixture::new("missing-dir");
    let gone = f.tmp.path().join("units-gone");
    let (ok, out) = check_out(Path::new("/"), &[&gone]);
    assert!(!ok);
    assert_eq!(
        out.first().map(String::as_str),
        Some(
            format!(
                "{}: cannot read the directory: No such file or directory (os error 2)",
                gone.display()
            )
            .as_str()
        ),
        "{out:?}"
    );
    // A unit file's name that is not there is still a file's problem.
    let (ok, out) = check_out(Path::new("/"), &[&gone.join("x.unit")]);
    assert!(!ok);
    assert!(!out.iter().any(|l| l.contains("the directory")), "{out:?}");
}

/// A user-namespace unit's user whose uid its map does not cover: `check`
/// says so without naming a file, which is not where the problem is, at
/// the line of `user_map` (of `user` with the default map).
#[test]
fn check_of_a_user_outside_the_map_names_no_file() {
    let f = Fixture::new("outside-map");
    let img = f.tmp.path().join("img");
    f.tmp.prog("img/bin/app");
    f.tmp
        .file("img/etc/passwd", "big:x:70000:70000::/:/bin/sh\n");
    f.tmp.file("img/etc/group", "big:x:70000:\n");
    let text = format!(
        "exec = /bin/app\nroot = {}\nnamespaces = user mount pid\nuser = big",
        img.display()
    );
    f.raw("m", &text);
    f.raw("n", &format!("{text}\nuser_map = 100000 1000"));
    let (ok, out) = check_out(Path::new("/"), &[&f.units]);
    assert!(!ok);
    for (unit, at) in [("m", 4), ("n", 5)] {
        let line = out
            .iter()
            .find(|l| l.contains(&format!("{unit}.unit:")))
            .unwrap_or_else(|| panic!("{out:?}"));
        assert!(
            line.contains(&format!(".unit:{at}: user `big`: ")),
            "{line}"
        );
        assert!(
            line.ends_with("not in the user namespace's map: see user_map"),
            "{line}"
        );
    }
}

/// A file of garbage is told by its first problems and a count, not by
/// a kernel log line for each of its 4,096 lines; the next file's
/// problems are told whole.
#[test]
fn a_file_of_garbage_is_told_by_its_first_problems_and_a_count() {
    let f = Fixture::new("flood");
    f.unit("ok", "");
    // 4,096 lines that are no `key = value`, and no `exec`.
    f.raw("junk", &"a\n".repeat(UNIT_FILE_MAX / 2));
    f.raw("two", "exec = /bin/true\nb\nc\n");
    let mut defs = Vec::new();
    let mut errs = Vec::new();
    load_dir(&f.units, &mut defs, &mut |e| errs.push(e.to_string()));
    assert_eq!(defs.len(), 1, "{errs:?}");
    let junk: Vec<&String> = errs.iter().filter(|e| e.contains("junk.unit")).collect();
    assert_eq!(junk.len(), 10, "{junk:?}");
    assert!(
        junk[0].ends_with("junk.unit:1: expected `key = value`, got `a`"),
        "{junk:?}"
    );
    assert!(junk[7].ends_with("junk.unit:8: expected `key = value`, got `a`"));
    // The file's own problem is told whatever the count.
    assert!(junk[8].ends_with("junk.unit: missing `exec`"), "{junk:?}");
    assert!(
        junk[9].ends_with("junk.unit: 4088 more problems not shown"),
        "{junk:?}"
    );
    assert_eq!(
        errs.iter().filter(|e| e.contains("two.unit")).count(),
        2,
        "{errs:?}"
    );
    // One more is a problem, not problems.
    let f = Fixture::new("flood-one");
    f.raw("nine", &"a\n".repeat(9));
    let mut errs = Vec::new();
    load_dir(&f.units, &mut Vec::new(), &mut |e| errs.push(e.to_string()));
    let one = errs
        .iter()
        .any(|e| e.ends_with("nine.unit: 1 more problem not shown"));
    assert!(one, "{errs:?}");
}
