//! Container images as units, on the disk-root image (a Pi's ext4 root:
//! overlayfs takes opaque directories from xattrs, which an initramfs
//! lacks). rootfs/build imported with wren-oci the images that
//! tests/oci/make-images built with Debian's umoci, skopeo and buildah:
//! ociweb (umoci, four layers: whiteout, opaque directory, hard link,
//! symlink, User 1000, Env, WorkingDir), ocitool (umoci, the same base
//! layer), ociarch (the ociweb image through skopeo's docker-archive),
//! ocibb (buildah, two layers, User by name). `layers` runs on two
//! hand-made layers, read-only. Everything is read from the kernel's view
//! of the processes: /proc/PID/status, environ, cwd, root.
use crate::*;
use wren_boot_tests::disk_copy;

const CMDLINE: &str = "console=ttyAMA0,115200 root=/dev/vda rootfstype=ext4 rootwait ro \
     init=/sbin/init wren.units=/test/oci";

/// The pid of a unit's program: the one child of its namespace's reaper.
fn program(vm: &mut Vm, unit: &str) -> u32 {
    let reaper = vm
        .unit(unit)
        .and_then(|u| u.pid)
        .unwrap_or_else(|| panic!("{unit} has no pid"));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let kids = vm.sh(&format!("cat /proc/{reaper}/task/{reaper}/children"), CMD);
        if let Some(k) = kids.split_whitespace().next() {
            return k.parse().unwrap_or_else(|_| panic!("children: {kids}"));
        }
        assert!(
            Instant::now() < deadline,
            "{unit}: reaper {reaper} has no child"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// A file in the guest once it has content.
fn read_when_written(vm: &mut Vm, path: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = vm.sh(&format!("cat {path} 2>/dev/null"), CMD);
        if !out.trim().is_empty() {
            return out.trim().to_owned();
        }
        assert!(Instant::now() < deadline, "{path} never written");
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn status_line(vm: &mut Vm, pid: u32, key: &str) -> String {
    let st = vm.sh(&format!("cat /proc/{pid}/status"), CMD);
    st.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {key} in {st}"))
        .trim()
        .to_owned()
}

fn exists(vm: &mut Vm, path: &str) -> bool {
    vm.sh_rc(&format!("test -e {path}"), CMD).1 == 0
}

/// A command's output, trimmed.
fn text(vm: &mut Vm, cmd: &str) -> String {
    vm.sh(cmd, CMD).trim().to_owned()
}

/// `root = ` of a unit as PID 1 has it.
fn root_of(vm: &mut Vm, unit: &str) -> String {
    let cat = vm.sh(&format!("initctl cat {unit}"), CMD);
    cat.lines()
        .find_map(|l| l.strip_prefix("root = "))
        .unwrap_or_else(|| panic!("no root in {cat}"))
        .to_owned()
}

#[test]
fn oci_images_run_as_units_from_shared_layers() {
    let disk = disk_copy("oci");
    let mut vm = Vm::boot_disk(&disk, CMDLINE);
    vm.wait_shell(BOOT);
    vm.wait_states(
        &[
            ("prep", &["exited"]),
            ("layers", &["running"]),
            ("ociweb", &["running"]),
            ("ocitool", &["running"]),
            ("ociarch", &["running"]),
            ("ocibb", &["running"]),
        ],
        Duration::from_secs(60),
    );

    // Two hand-made layers, read-only: both seen, the whiteout hides
    // /gone, a write to / fails with EROFS.
    let p = program(&mut vm, "layers");
    let r = format!("/proc/{p}/root");
    assert_eq!(
        text(&mut vm, &format!("cat {r}/top-release {r}/base-release")),
        "top\nbase"
    );
    assert!(!exists(&mut vm, &format!("{r}/gone")));
    assert!(exists(&mut vm, "/srv/layers/base/gone"));
    let ro = read_when_written(&mut vm, &format!("{r}/tmp/ro.write"));
    assert!(ro.contains("(errno 30)"), "{ro}");

    // ociweb: User 1000 with no capability, its Env and WorkingDir.
    let p = program(&mut vm, "ociweb");
    let r = format!("/proc/{p}/root");
    assert_eq!(status_line(&mut vm, p, "Uid"), "1000\t1000\t1000\t1000");
    assert_eq!(status_line(&mut vm, p, "Gid"), "1000\t1000\t1000\t1000");
    assert_eq!(status_line(&mut vm, p, "CapEff"), "0000000000000000");
    let env = text(&mut vm, &format!("tr '\\0' '\\n' < /proc/{p}/environ"));
    assert!(env.lines().any(|l| l == "GREETING=hello from oci"), "{env}");
    assert!(env.lines().any(|l| l == "PATH=/usr/bin:/bin"), "{env}");
    assert_eq!(
        text(&mut vm, &format!("readlink /proc/{p}/cwd")),
        "/srv/www"
    );
    // The layers as overlayfs merged them: whiteout, opaque directory,
    // hard link, absolute symlink.
    assert!(!exists(&mut vm, &format!("{r}/data/old")));
    assert!(exists(&mut vm, &format!("{r}/data/keep")));
    assert!(!exists(&mut vm, &format!("{r}/opt/conf/a")));
    assert_eq!(text(&mut vm, &format!("cat {r}/opt/conf/new")), "new");
    let inodes = text(&mut vm, &format!("stat -c %i {r}/bin/busybox {r}/bin/ls"));
    let inodes: Vec<&str> = inodes.lines().collect();
    assert!(inodes.len() == 2 && inodes[0] == inodes[1], "{inodes:?}");
    assert_eq!(
        text(&mut vm, &format!("readlink {r}/bin/sh")),
        "/bin/busybox"
    );

    // A write inside (the program's own, and one from outside) is gone
    // after a restart; the layers never change.
    let www = format!("{r}/srv/www");
    assert_eq!(read_when_written(&mut vm, &format!("{www}/write")), "ok");
    let first = read_when_written(&mut vm, &format!("{www}/report"));
    assert!(first.contains("(errno 2)"), "{first}");
    text(&mut vm, &format!("echo extra > {www}/extra"));
    assert_eq!(text(&mut vm, &format!("cat {www}/extra")), "extra");
    let store_before = text(&mut vm, "find /var/lib/wren/layers | sort | md5sum");
    let (out, rc) = vm.sh_rc("initctl restart ociweb", CMD);
    assert_eq!(rc, 0, "{out}");
    let q = program(&mut vm, "ociweb");
    assert_ne!(p, q);
    let www = format!("/proc/{q}/root/srv/www");
    assert_eq!(read_when_written(&mut vm, &format!("{www}/write")), "ok");
    let second = read_when_written(&mut vm, &format!("{www}/report"));
    assert!(
        second.contains("(errno 2)"),
        "the last start's write survived: {second}"
    );
    assert!(!exists(&mut vm, &format!("{www}/extra")));
    assert_eq!(
        text(&mut vm, "find /var/lib/wren/layers | sort | md5sum"),
        store_before
    );

    // Shared layers: ocitool's base is ociweb's, the docker archive of
    // the same image is the very same layers; 7 layers in all (4 + 1 + 2).
    let web = root_of(&mut vm, "ociweb");
    let tool = root_of(&mut vm, "ocitool");
    assert_eq!(web.split(':').count(), 4, "{web}");
    assert_eq!(web.rsplit(':').next(), tool.rsplit(':').next());
    assert_ne!(web.split(':').next(), tool.split(':').next());
    assert_eq!(root_of(&mut vm, "ociarch"), web);
    assert_eq!(text(&mut vm, "ls /var/lib/wren/layers/sha256 | wc -l"), "7");

    // ocitool runs as root with the capabilities Docker grants by default.
    let t = program(&mut vm, "ocitool");
    assert_eq!(status_line(&mut vm, t, "Uid"), "0\t0\t0\t0");
    assert_eq!(status_line(&mut vm, t, "CapEff"), "00000000a80425fb");
    assert_eq!(
        text(&mut vm, &format!("cat /proc/{t}/root/tool-release")),
        "tool"
    );

    // ocibb (buildah): User by name, resolved in the image's passwd.
    let b = program(&mut vm, "ocibb");
    assert_eq!(status_line(&mut vm, b, "Uid"), "1000\t1000\t1000\t1000");
    assert_eq!(
        text(&mut vm, &format!("readlink /proc/{b}/cwd")),
        "/home/app"
    );
    let env = text(&mut vm, &format!("tr '\\0' '\\n' < /proc/{b}/environ"));
    assert!(env.lines().any(|l| l == "GREETING=from-buildah"), "{env}");

    // The whole unit directory passes `initctl check` (which, unlike
    // PID 1's loader, also looks each program up in its unit's root).
    let (out, rc) = vm.sh_rc("initctl check /test/oci", CMD);
    assert_eq!(rc, 0, "{out}");
}
