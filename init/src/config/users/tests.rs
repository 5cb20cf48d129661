use super::*;
use crate::testutil::TempDir;
use rustix::fs::Mode;

fn def_in(root: &TempDir, user: Option<IdSpec>, group: Option<IdSpec>) -> UnitDef {
    let mut d = UnitDef::with_defaults("svc");
    d.seldom.root = Some(root.path().to_str().unwrap().try_into().unwrap());
    d.seldom.user = user;
    d.seldom.group = group;
    d
}

fn name(s: &str) -> Option<IdSpec> {
    Some(IdSpec::Name(s.try_into().unwrap()))
}

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
                      pi:x:1000:1000:Pi:/home/pi:/bin/sh\n\
                      evil:x:4294967295:0::/:/bin/sh\n\
                      badgid:x:7:4294967295::/:/bin/sh\n";
const GROUP: &str = "root:x:0:\npi:x:1000:\ngpio:x:997:pi\ndialout:x:20:root,pi\n\
                     video:x:44:pi,other\naudio:x:29:other\n";

fn image(passwd: &[u8], group: &[u8]) -> TempDir {
    let d = TempDir::new("users");
    std::fs::create_dir_all(d.join("etc")).unwrap();
    std::fs::write(d.join("etc/passwd"), passwd).unwrap();
    std::fs::write(d.join("etc/group"), group).unwrap();
    d
}

#[test]
fn a_named_user_keeps_its_groups() {
    let img = image(PASSWD.as_bytes(), GROUP.as_bytes());
    let ids = resolve_ids(&def_in(&img, name("pi"), None)).unwrap();
    assert_eq!((ids.uid, ids.gid), (Some(1000), Some(1000)));
    assert_eq!(ids.groups.as_slice(), [1000, 997, 20, 44]);
    // An explicit group replaces the primary one.
    let ids = resolve_ids(&def_in(&img, name("pi"), name("video"))).unwrap();
    assert_eq!(ids.gid, Some(44));
    assert_eq!(ids.groups.as_slice(), [44, 997, 20]);
}

#[test]
fn invalid_ids_are_refused() {
    let img = image(PASSWD.as_bytes(), GROUP.as_bytes());
    let e = resolve_ids(&def_in(&img, name("evil"), None)).unwrap_err();
    assert!(e.contains("uid 4294967295"), "{e}");
    let e = resolve_ids(&def_in(&img, name("badgid"), None)).unwrap_err();
    assert!(e.contains("gid 4294967295"), "{e}");
    let e = resolve_ids(&def_in(&img, Some(IdSpec::Id(u32::MAX)), None)).unwrap_err();
    assert!(e.contains("not a valid uid"), "{e}");
    let e = resolve_ids(&def_in(
        &img,
        Some(IdSpec::Id(5)),
        Some(IdSpec::Id(u32::MAX)),
    ))
    .unwrap_err();
    assert!(e.contains("not a valid gid"), "{e}");
}

#[test]
fn a_numeric_user_takes_its_primary_group_or_is_refused() {
    let img = image(PASSWD.as_bytes(), GROUP.as_bytes());
    let ids = resolve_ids(&def_in(&img, Some(IdSpec::Id(1000)), None)).unwrap();
    assert_eq!((ids.uid, ids.gid), (Some(1000), Some(1000)));
    assert_eq!(ids.groups.as_slice(), [1000, 997, 20, 44]);
    let e = resolve_ids(&def_in(&img, Some(IdSpec::Id(4321)), None)).unwrap_err();
    assert!(e.contains("set `group`"), "{e}");
    // With a group given, no passwd line is needed.
    let ids = resolve_ids(&def_in(&img, Some(IdSpec::Id(4321)), Some(IdSpec::Id(50)))).unwrap();
    assert_eq!((ids.uid, ids.gid), (Some(4321), Some(50)));
    assert!(ids.groups.is_empty());
}

#[test]
fn big_files_long_lines_and_latin1_gecos() {
    let mut passwd = Vec::new();
    for i in 0..20_000 {
        passwd.extend_from_slice(
            format!(
                "u{i}:x:{}:{}:user {i}:/:/bin/false\n",
                10_000 + i,
                10_000 + i
            )
            .as_bytes(),
        );
    }
    // A GECOS field in Latin-1 (not UTF-8) on the line looked for.
    passwd.extend_from_slice(b"jos\xe9:x:501:501:Jos\xe9 \xc9lan:/home/j:/bin/sh\n");
    passwd.extend_from_slice(b"last:x:502:502::/:/bin/sh");
    let mut group = Vec::new();
    // A group line longer than the buffer, naming `last` early.
    group.extend_from_slice(b"big:x:600:last");
    for i in 0..2000 {
        group.extend_from_slice(format!(",member{i}").as_bytes());
    }
    group.extend_from_slice(b"\nlastgrp:x:601:last\n");
    let img = image(&passwd, &group);
    assert!(passwd.len() > 500_000);
    let ids = resolve_ids(&def_in(&img, name("u19999"), None)).unwrap();
    assert_eq!(ids.uid, Some(29_999));
    // The line without a final newline is found too.
    let ids = resolve_ids(&def_in(&img, name("last"), None)).unwrap();
    assert_eq!((ids.uid, ids.gid), (Some(502), Some(502)));
    assert_eq!(ids.groups.as_slice(), [502, 600, 601]);
    // A non-UTF-8 name cannot be named in a unit file; the numeric user of
    // that line still resolves.
    let ids = resolve_ids(&def_in(&img, Some(IdSpec::Id(501)), Some(IdSpec::Id(501)))).unwrap();
    assert_eq!(ids.uid, Some(501));
    let ids = resolve_ids(&def_in(&img, name("u5"), None)).unwrap();
    assert_eq!(ids.gid, Some(10_005));
}

#[test]
fn missing_files_and_fifos() {
    let img = TempDir::new("users-none");
    let e = resolve_ids(&def_in(&img, name("pi"), None)).unwrap_err();
    assert_eq!(e, "cannot read /etc/passwd");
    std::fs::create_dir_all(img.join("etc")).unwrap();
    crate::testutil::fifo(&img.join("etc/passwd"));
    // Refused at once, not blocked on.
    let e = resolve_ids(&def_in(&img, name("pi"), None)).unwrap_err();
    assert_eq!(e, "cannot read /etc/passwd");
    // No group file: a user with no supplementary group.
    std::fs::remove_file(img.join("etc/passwd")).unwrap();
    std::fs::write(img.join("etc/passwd"), PASSWD).unwrap();
    let ids = resolve_ids(&def_in(&img, name("pi"), None)).unwrap();
    assert_eq!(ids.groups.as_slice(), [1000]);
    assert_eq!(
        resolve_ids(&def_in(&img, None, None)).unwrap(),
        Ids::default()
    );
}

#[test]
fn layered_roots_read_the_topmost_file_and_honour_whiteouts() {
    let top = TempDir::new("users-top");
    std::fs::create_dir_all(top.join("etc")).unwrap();
    std::fs::write(top.join("etc/group"), "pi:x:1000:\nvideo:x:44:pi\n").unwrap();
    let mid = image(b"pi:x:1001:1000::/:/bin/sh\n", b"");
    let base = image(PASSWD.as_bytes(), GROUP.as_bytes());
    let layers = [&top, &mid, &base]
        .map(|d| d.path().to_str().unwrap().to_owned())
        .join(":");
    let mut d = UnitDef::with_defaults("svc");
    d.seldom.root = Some(layers.as_str().try_into().unwrap());
    d.seldom.user = name("pi");
    // passwd from the middle layer, group from the top one: the base's
    // are hidden.
    let ids = resolve_ids(&d).unwrap();
    assert_eq!((ids.uid, ids.gid), (Some(1001), Some(1000)));
    assert_eq!(ids.groups.as_slice(), [1000, 44]);
    // A whiteout (0/0 character device) in the top layer hides passwd.
    rustix::fs::mknodat(
        rustix::fs::CWD,
        top.join("etc/passwd"),
        rustix::fs::FileType::CharacterDevice,
        Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    assert_eq!(resolve_ids(&d).unwrap_err(), "cannot read /etc/passwd");
    // An opaque /etc in the top layer hides the middle and base layers'
    // passwd; a whiteout of the whole /etc does too.
    std::fs::remove_file(top.join("etc/passwd")).unwrap();
    assert_eq!(resolve_ids(&d).unwrap().uid, Some(1001));
    rustix::fs::setxattr(
        top.join("etc").as_path(),
        "trusted.overlay.opaque",
        b"y",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    assert_eq!(resolve_ids(&d).unwrap_err(), "cannot read /etc/passwd");
    std::fs::remove_dir_all(top.join("etc")).unwrap();
    assert_eq!(resolve_ids(&d).unwrap().uid, Some(1001));
    rustix::fs::mknodat(
        rustix::fs::CWD,
        top.join("etc"),
        rustix::fs::FileType::CharacterDevice,
        Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    assert_eq!(resolve_ids(&d).unwrap_err(), "cannot read /etc/passwd");
}

/// The image's links resolve inside it, as the unit will see them after
/// its pivot: an absolute link `/etc/passwd -> /usr/lib/passwd` reads the
/// image's file, never the host's (the lookup happens on the host, before
/// the pivot). A link out with `..` stays inside too.
#[test]
fn links_in_the_root_resolve_inside_it() {
    let img = TempDir::new("users-links");
    std::fs::create_dir_all(img.join("etc")).unwrap();
    std::fs::create_dir_all(img.join("usr/lib/wren-test-only")).unwrap();
    img.file(
        "usr/lib/wren-test-only/passwd",
        "app:x:4242:4343::/:/bin/sh\n",
    );
    std::os::unix::fs::symlink("/usr/lib/wren-test-only/passwd", img.join("etc/passwd")).unwrap();
    std::os::unix::fs::symlink(
        "../../../../../../../../etc/hostname-nope",
        img.join("etc/group"),
    )
    .unwrap();
    let ids = resolve_ids(&def_in(&img, name("app"), None)).unwrap();
    assert_eq!((ids.uid, ids.gid), (Some(4242), Some(4343)));
    // The group link leads nowhere inside: no supplementary group.
    assert_eq!(ids.groups.as_slice(), [4343]);
}

/// A start's child reports a failed lookup to PID 1 as one number: every
/// reason comes back whole, and a read that failed brings its errno (the
/// child may be refused what PID 1 was not: it reads in a user
/// namespace as its mapped uid).
#[test]
fn a_lookups_failure_comes_back_with_its_cause() {
    for why in WHY {
        assert_eq!(why_text(why_code(why, None)), (why, None));
    }
    let e = Some(Errno::ACCESS);
    assert_eq!(why_text(why_code(READ_GROUP, e)), (READ_GROUP, e));
    // An errno only says why a read failed.
    assert_eq!(why_text(why_code(NO_USER, e)), (NO_USER, None));
    let img = TempDir::new("users-errno");
    std::fs::create_dir_all(img.join("etc/passwd")).unwrap();
    let got = resolve_ids_errno(&def_in(&img, name("pi"), None)).unwrap_err();
    assert_eq!(got, (READ_PASSWD, Some(Errno::INVAL)));
    let err = crate::spawn::SpawnError {
        step: crate::spawn::Step::Ids,
        errno: why_code(got.0, got.1),
    };
    assert_eq!(
        err.to_string(),
        format!("cannot read /etc/passwd: {}", Errno::INVAL)
    );
}

/// In a user namespace the ids are the namespace's: a uid or gid its map
/// does not cover is refused by name (by `check` and at the start), not
/// left to setuid's EINVAL.
#[test]
fn ids_outside_the_user_map_are_refused() {
    let img = TempDir::new("users-map");
    img.file(
        "etc/passwd",
        "big:x:70000:70000::/:/bin/sh\napp:x:1000:1000::/:/bin/sh\n",
    );
    let mut d = def_in(&img, name("big"), None);
    d.namespaces = crate::unit::Namespaces(crate::unit::Namespaces::USER);
    assert_eq!(resolve_ids(&d).unwrap_err(), OUTSIDE_MAP);
    d.seldom.user = name("app");
    assert_eq!(resolve_ids(&d).unwrap().uid, Some(1000));
    d.seldom.user_map = Some(crate::unit::UserMap {
        outside: 200_000,
        count: 1000,
    });
    assert_eq!(resolve_ids(&d).unwrap_err(), OUTSIDE_MAP);
    // Outside a user namespace the map does not apply.
    d.namespaces = crate::unit::Namespaces::NONE;
    assert_eq!(resolve_ids(&d).unwrap().uid, Some(1000));
}
