use super::*;
use std::fs;

use crate::testutil::TempDir;

#[test]
fn lines() {
    assert_eq!(parse_line(""), Line::Nothing);
    assert_eq!(parse_line("   # c"), Line::Nothing);
    assert_eq!(parse_line("; c"), Line::Nothing);
    assert_eq!(
        parse_line(" vm.swappiness = 10 "),
        Line::Set(Setting {
            key: "vm.swappiness",
            value: "10",
            ignore_failure: false
        })
    );
    assert_eq!(
        parse_line("-net.ipv4.tcp_rmem=4096 87380  6291456"),
        Line::Set(Setting {
            key: "net.ipv4.tcp_rmem",
            value: "4096 87380  6291456",
            ignore_failure: true
        })
    );
    assert_eq!(
        parse_line("kernel.domainname ="),
        Line::Set(Setting {
            key: "kernel.domainname",
            value: "",
            ignore_failure: false
        })
    );
    assert_eq!(
        parse_line("vm.swappiness"),
        Line::Bad("expected `key = value`")
    );
    assert_eq!(parse_line(" = 3"), Line::Bad("empty key"));
}

#[test]
fn keys_to_paths() {
    assert_eq!(key_path("vm.swappiness").unwrap().as_str(), "vm/swappiness");
    assert_eq!(key_path("vm/swappiness").unwrap().as_str(), "vm/swappiness");
    // procps: with `.` separators a `/` is a literal dot, and the other
    // way round.
    assert_eq!(
        key_path("net.ipv4.conf.eth0/100.rp_filter")
            .unwrap()
            .as_str(),
        "net/ipv4/conf/eth0.100/rp_filter"
    );
    assert_eq!(
        key_path("net/ipv4/conf/eth0.100/rp_filter")
            .unwrap()
            .as_str(),
        "net/ipv4/conf/eth0.100/rp_filter"
    );
    assert_eq!(key_path("net.ipv4.conf.*.rp_filter"), Err(KeyError::Glob));
    assert_eq!(key_path("vm..x"), Err(KeyError::BadComponent));
    assert_eq!(key_path("/vm/x"), Err(KeyError::BadComponent));
    assert_eq!(key_path("vm/../../etc/passwd"), Err(KeyError::BadComponent));
    assert_eq!(key_path(&"a.".repeat(200)), Err(KeyError::TooLong));
}

/// A fake /proc/sys (existing files are the known keys) and /etc with
/// sysctl.d and sysctl.conf: good lines land, bad ones are reported with
/// file and line, a `-` line fails silently, later files win.
#[test]
fn apply_reports_file_and_line_and_goes_on() {
    let d = TempDir::new("apply");
    let etc = d.join("etc");
    let sys = d.join("proc-sys");
    fs::create_dir_all(etc.join("sysctl.d")).unwrap();
    fs::create_dir_all(sys.join("vm")).unwrap();
    fs::create_dir_all(sys.join("kernel")).unwrap();
    fs::write(sys.join("vm/swappiness"), "60\n").unwrap();
    fs::write(sys.join("vm/overcommit_memory"), "0\n").unwrap();
    fs::write(sys.join("kernel/panic"), "0\n").unwrap();
    fs::write(
        etc.join("sysctl.d/10-a.conf"),
        "# tuning\nvm.swappiness = 10\nvm.bogus = 1\n-vm.also_bogus = 2\nnot a line\nkernel.panic=5\n",
    )
    .unwrap();
    fs::write(etc.join("sysctl.d/20-b.conf"), "vm.swappiness = 20\n").unwrap();
    fs::write(etc.join("sysctl.d/README"), "vm.swappiness = 99\n").unwrap();
    fs::write(etc.join("sysctl.conf"), "vm/overcommit_memory = 2\n").unwrap();
    let mut seen = Vec::new();
    let done = apply(&etc, &sys, &mut |f| seen.push(f.to_string()));
    assert_eq!(
        fs::read_to_string(sys.join("vm/swappiness")).unwrap(),
        "20\n"
    );
    assert_eq!(
        fs::read_to_string(sys.join("vm/overcommit_memory")).unwrap(),
        "2\n"
    );
    assert_eq!(fs::read_to_string(sys.join("kernel/panic")).unwrap(), "5\n");
    let a = etc.join("sysctl.d/10-a.conf");
    assert_eq!(
        seen,
        [
            format!("{}:3: vm.bogus: unknown key", a.display()),
            format!("{}:5: expected `key = value`", a.display()),
        ]
    );
    assert_eq!(done, Applied { set: 4, failed: 2 });
}

#[test]
fn a_fifo_is_refused_without_blocking() {
    let d = TempDir::new("fifo");
    let etc = d.join("etc");
    fs::create_dir_all(etc.join("sysctl.d")).unwrap();
    let fifo = etc.join("sysctl.d/50-fifo.conf");
    crate::testutil::fifo(&fifo);
    let mut seen = Vec::new();
    let done = apply(&etc, d.path(), &mut |f| seen.push(f.to_string()));
    assert_eq!(
        seen,
        [format!("{}: not a regular file, skipped", fifo.display())]
    );
    assert_eq!(done, Applied { set: 0, failed: 1 });
}

#[test]
fn no_files_is_nothing_to_do() {
    let d = TempDir::new("none");
    let done = apply(&d.join("etc"), d.path(), &mut |f| panic!("{f}"));
    assert_eq!(done, Applied::default());
}

/// `*.conf` of sysctl.d in the bytes' order of their names, then
/// sysctl.conf; not the dotfile `.conf`, nor other names.
#[test]
fn the_files_in_order() {
    let d = TempDir::new("order");
    let etc = d.join("etc");
    fs::create_dir_all(etc.join("sysctl.d")).unwrap();
    for name in [
        "b.conf",
        "a.conf",
        ".conf",
        "Z.conf",
        "x.conf.bak",
        "conf",
        "a..conf",
    ] {
        fs::write(etc.join("sysctl.d").join(name), "").unwrap();
    }
    fs::write(etc.join("sysctl.conf"), "").unwrap();
    let got = files(&etc, &mut |f| panic!("{f}"));
    let want: Vec<_> = [
        "sysctl.d/Z.conf",
        "sysctl.d/a..conf",
        "sysctl.d/a.conf",
        "sysctl.d/b.conf",
        "sysctl.conf",
    ]
    .iter()
    .map(|f| etc.join(f))
    .collect();
    assert_eq!(got, want);
}

/// /etc (empty) and a /proc/sys with only vm.swappiness, at 6.
fn swappiness_only(tag: &str) -> (TempDir, std::path::PathBuf, std::path::PathBuf) {
    let d = TempDir::new(tag);
    let etc = d.join("etc");
    let sys = d.join("proc-sys");
    fs::create_dir_all(sys.join("vm")).unwrap();
    fs::create_dir_all(&etc).unwrap();
    fs::write(sys.join("vm/swappiness"), "6\n").unwrap();
    (d, etc, sys)
}

/// A file over `FILE_MAX`: the lines before the cut are applied, the line
/// the cut goes through is not (`= 12345` would have been set as `= 12`),
/// and the cut is reported.
#[test]
fn the_line_a_cut_goes_through_is_not_applied() {
    let (_d, etc, sys) = swappiness_only("cut");
    let mut text = String::from("vm.swappiness = 7\n");
    while text.len() + 40 < FILE_MAX {
        text.push_str("# padding padding\n");
    }
    // "vm.swappiness = 12" is 18 bytes: the cut comes right after them.
    text.push_str(&"#".repeat(FILE_MAX - 18 - 1 - text.len()));
    text.push('\n');
    // Cut after "vm.swappiness = 12": two bytes of the value in, three out.
    text.push_str("vm.swappiness = 12345\n");
    fs::write(etc.join("sysctl.conf"), &text).unwrap();
    let mut seen = Vec::new();
    let done = apply(&etc, &sys, &mut |f| seen.push(f.to_string()));
    assert_eq!(
        fs::read_to_string(sys.join("vm/swappiness")).unwrap(),
        "7\n"
    );
    assert_eq!(
        done,
        Applied { set: 1, failed: 1 },
        "the cut counts as a failure"
    );
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(seen[0].ends_with("the rest is skipped"), "{seen:?}");
}

/// A file linked to /dev/null is masked (systemd-sysctl's way to turn one
/// off): nothing applied, nothing reported. Another device still is.
#[test]
fn a_file_linked_to_dev_null_is_masked() {
    let (_d, etc, sys) = swappiness_only("masked");
    fs::create_dir_all(etc.join("sysctl.d")).unwrap();
    std::os::unix::fs::symlink("/dev/null", etc.join("sysctl.d/10-off.conf")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", etc.join("sysctl.d/20-zero.conf")).unwrap();
    let mut seen = Vec::new();
    let done = apply(&etc, &sys, &mut |f| seen.push(f.to_string()));
    assert_eq!(done, Applied { set: 0, failed: 1 });
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(
        seen[0].contains("20-zero.conf: not a regular file"),
        "{seen:?}"
    );
}

/// A sysctl.d that is there but cannot be read is reported, not taken
/// for an empty one; sysctl.conf is still applied.
#[test]
fn an_unreadable_sysctl_d_is_reported() {
    let (_d, etc, sys) = swappiness_only("unreadable");
    fs::write(etc.join("sysctl.d"), "not a directory").unwrap();
    fs::write(etc.join("sysctl.conf"), "vm.swappiness = 5\n").unwrap();
    let mut seen = Vec::new();
    let done = apply(&etc, &sys, &mut |f| seen.push(f.to_string()));
    let dir = etc.join("sysctl.d");
    assert_eq!(seen.len(), 1, "{seen:?}");
    let want = format!("{}: cannot read: Not a directory", dir.display());
    assert!(seen[0].starts_with(&want), "{seen:?}");
    assert_eq!(done, Applied { set: 1, failed: 1 });
    assert_eq!(
        fs::read_to_string(sys.join("vm/swappiness")).unwrap(),
        "5\n"
    );
}
