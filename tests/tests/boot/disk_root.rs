//! `root =` on a disk root takes the real pivot_root branch (issue 8): on
//! an initramfs pivot_root is refused and the unit's root is moved over
//! `/` and chroot'ed into instead (spawn/sandbox.rs), so only here is
//! the pivot itself run. Seen from inside the unit: its mount table has
//! its root (the disk's /srv/box) at `/` and nothing of the host's root
//! file system; seen from PID 1: `wren.debug` logs which branch it took.
use crate::*;
use wren_boot_tests::{disk_copy, secs};

const CMDLINE: &str = "console=ttyAMA0 root=/dev/vda rootfstype=ext4 rootwait rw \
     init=/sbin/init wren.units=/test/diskroot wren.debug";

/// One `/proc/self/mountinfo` line: (root within its file system, mount
/// point, file system type, source).
fn mountinfo(text: &str) -> Vec<(String, String, String, String)> {
    text.lines()
        .filter_map(|l| {
            let (a, b) = l.split_once(" - ")?;
            let a: Vec<&str> = a.split_whitespace().collect();
            let b: Vec<&str> = b.split_whitespace().collect();
            Some((
                a.get(3)?.to_string(),
                a.get(4)?.to_string(),
                b.first()?.to_string(),
                b.get(1)?.to_string(),
            ))
        })
        .collect()
}

#[test]
fn disk_root_unit_enters_its_root_by_pivot_root() {
    let disk = disk_copy("disk_pivot_root");
    let mut vm = Vm::boot_disk(&disk, CMDLINE);
    vm.wait_shell(BOOT);
    // It runs, ends after a second and is restarted: at least 3 starts.
    let deadline = Instant::now() + secs(60);
    let starts = loop {
        let m = marks(&mut vm, "/srv/box/out/starts");
        if m.len() >= 3 {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "box started {} times\n{}",
            m.len(),
            vm.tail()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    // (In its PID namespace each run is pid 2: the runs are told apart
    // by their times.)
    assert!(
        starts.windows(2).all(|w| w[0].2 < w[1].2 && w[1].1 == 2),
        "{starts:?}"
    );
    let st = vm.unit("box").expect("box in initctl status");
    assert!(st.restarts >= 2, "{st:?}");
    // Its mount table, as the unit saw it.
    let text = vm.sh("cat /srv/box/out/mountinfo", CMD);
    let mounts = mountinfo(&text);
    assert!(!mounts.is_empty(), "{text}");
    // `/` is the bind of the disk's /srv/box, and is the only mount there.
    let roots: Vec<_> = mounts.iter().filter(|m| m.1 == "/").collect();
    assert_eq!(roots.len(), 1, "{text}");
    assert_eq!(
        (
            roots[0].0.as_str(),
            roots[0].2.as_str(),
            roots[0].3.as_str()
        ),
        ("/srv/box", "ext4", "/dev/vda"),
        "{text}"
    );
    // The old root is gone: no mount of the whole disk (root `/`), and
    // nothing mounted outside the unit's own tree (/proc, /dev, /tmp).
    assert!(
        !mounts.iter().any(|m| m.3 == "/dev/vda" && m.0 == "/"),
        "the host's root is still mounted in the unit:\n{text}"
    );
    for m in &mounts {
        assert!(
            m.1 == "/"
                || ["/proc", "/dev", "/tmp"]
                    .iter()
                    .any(|p| m.1 == *p || m.1.starts_with(&format!("{p}/"))),
            "unexpected mount {m:?} in the unit:\n{text}"
        );
    }
    // PID 1's log says which branch: the pivot, never the fallback.
    let log = vm.sh(
        "dmesg | grep 'wren: box: root /srv/box: ' | sed 's/^\\[[^]]*\\] //'",
        CMD,
    );
    assert!(log.lines().count() >= 3, "one line per start:\n{log}");
    assert!(
        log.contains("box: root /srv/box: pivot_root, old root detached"),
        "{log}"
    );
    assert!(!log.contains("chroot"), "{log}");
}

/// The same unit from the initramfs: pivot_root is refused there, and the
/// log names the fallback instead, so the line above tells the two apart.
#[test]
fn disk_root_control_initramfs_unit_moves_and_chroots() {
    let mut vm = Vm::boot("diskroot", "wren.debug");
    vm.wait_shell(BOOT);
    let deadline = Instant::now() + secs(60);
    while marks(&mut vm, "/srv/box/out/starts").is_empty() {
        assert!(
            Instant::now() < deadline,
            "box never started\n{}",
            vm.tail()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let log = vm.sh(
        "dmesg | grep 'wren: box: root /srv/box: ' | sed 's/^\\[[^]]*\\] //'",
        CMD,
    );
    assert!(
        log.contains("box: root /srv/box: initramfs root: moved over / and chroot (no pivot_root)"),
        "{log}"
    );
    assert!(!log.contains("pivot_root, old root detached"), "{log}");
    // `box`'s start logs from its forked child, which has a copy of
    // PID 1's event lines not yet written (`aside`'s start, made just
    // before: tests/units/diskroot/aside.unit): the child writes its own
    // line only, PID 1 the others.
    let log = vm.sh(
        "dmesg | grep 'wren: aside: running (pid ' | sed 's/^\\[[^]]*\\] //'",
        CMD,
    );
    assert_eq!(log.lines().count(), 1, "{log}");
}
