//! The disk-root boot of a Raspberry Pi (and of Buildroot's QEMU board):
//! the same tree as the initramfs (wren as /sbin/init, the demo units,
//! Buildroot's skeleton) on an ext4 virtio disk, a first stage that loads
//! the disk's drivers (modules in Debian's kernel) and switch_roots, and a
//! kernel command line read from the Pi's cmdline.txt in
//! buildroot/board/raspberrypi/ (`root=`, `rootwait`, `rw`,
//! `init=/sbin/init`, `cgroup_enable=memory`, `psi=1`, `wren.watchdog`),
//! with `/dev/vda` for the Pi's `/dev/mmcblk0p2`. Debian's kernel has no
//! `cgroup_enable=` option: it passes it on to init, which must not mind.
use crate::*;
use wren_boot_tests::{disk_copy, fsck, repo_root, secs};

/// The Pi's cmdline.txt, as the SD card carries it, on this machine's disk.
fn pi_cmdline() -> String {
    let path = repo_root().join("buildroot/board/raspberrypi/cmdline.txt");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("root=/dev/mmcblk0p2"), "{text}");
    text.trim().replace("root=/dev/mmcblk0p2", "root=/dev/vda")
}

/// `poweroff` typed on the console: the kernel powers the VM down.
fn power_off(vm: &mut Vm) {
    let before = vm.output().len();
    vm.send("poweroff\n");
    assert_shut_down(vm, before, "reboot: Power down", secs(60));
}

/// e2fsck finds nothing to fix on `disk` after `what`.
fn assert_clean(disk: &std::path::Path, what: &str) {
    let (clean, report) = fsck(disk);
    assert!(clean, "e2fsck after {what}:\n{report}");
}

#[test]
fn disk_root_boots_with_a_pi_shaped_command_line() {
    let disk = disk_copy("pi_cmdline");
    let mut vm = Vm::boot_disk(&disk, &pi_cmdline());
    vm.wait_shell(BOOT);
    let st = vm.wait_states(
        &[
            ("shell", &["running"]),
            ("mounts", &["exited"]),
            ("lo", &["exited"]),
            ("web", &["running"]),
        ],
        Duration::from_secs(60),
    );
    assert!(st["web"].pid.is_some());
    // The root is the disk, read-write, and wren is PID 1 from it.
    let root = vm.sh("grep ' / ' /proc/mounts", CMD);
    assert!(root.starts_with("/dev/vda / ext4 rw"), "{root}");
    assert_eq!(vm.sh("readlink /proc/1/exe", CMD).trim(), "/sbin/init");
    assert!(
        !vm.output().contains("unknown option"),
        "a kernel option was refused"
    );
    // wren.watchdog as in cmdline.txt: no device on this board, so off.
    let wd = vm.sh(
        "dmesg | grep 'wren: watchdog' | sed 's/^\\[[^]]*\\] //'",
        CMD,
    );
    assert!(
        wd.contains("watchdog /dev/watchdog: absent, not armed"),
        "{wd}"
    );
    // Units are limited as in the initramfs image.
    assert!(vm
        .sh("cat /sys/fs/cgroup/units/cgroup.subtree_control", CMD)
        .contains("memory"));
    assert_eq!(
        vm.sh("cat /sys/fs/cgroup/units/web/memory.max", CMD).trim(),
        "16777216"
    );
    // The skeleton's fstab, mounted by its `mounts` unit: /tmp is a tmpfs.
    let tmp = vm.sh("grep ' /tmp ' /proc/mounts", CMD);
    assert!(tmp.starts_with("tmpfs /tmp tmpfs"), "{tmp}");
    // The image's units pass `initctl check` on the device itself.
    let (out, rc) = vm.sh_rc("initctl check", CMD);
    assert_eq!(rc, 0, "{out}");
    assert!(out.contains("4 units ok"), "{out}");
    // Written and synced, then a clean poweroff: there at the next boot,
    // and the file system is clean.
    vm.sh("echo kept > /root/kept && sync", CMD);
    power_off(&mut vm);
    assert_clean(&disk, "poweroff");
    let mut vm = Vm::boot_disk(&disk, &pi_cmdline());
    vm.wait_shell(BOOT);
    assert_eq!(vm.sh("cat /root/kept", CMD).trim(), "kept");
}

/// An update renamed a new binary over /sbin/init and no re-exec
/// followed: the running PID 1's binary is deleted but open, and the
/// kernel refuses the root a read-only remount (EBUSY). The shutdown
/// asks for the kernel's forced one after its sync: the journal needs no
/// recovery and the file system is marked clean; the old binary's inode,
/// open to the end, is left on the orphan list, which the next mount
/// frees (as it would for any init's binary replaced so). Then all is
/// clean, and what was written is there.
#[test]
fn disk_root_with_init_replaced_without_a_reexec_powers_off_clean() {
    let disk = disk_copy("replaced_init");
    let mut vm = Vm::boot_disk(&disk, &pi_cmdline());
    vm.wait_shell(BOOT);
    vm.sh(
        "cp /sbin/init /sbin/init.new && mv /sbin/init.new /sbin/init && echo kept > /root/kept",
        CMD,
    );
    power_off(&mut vm);
    for said in [
        "cannot unmount / nor remount it read-only",
        "a file system left read-write; the kernel's forced read-only remount",
    ] {
        assert!(vm.output().contains(said), "{said}: {}", vm.tail());
    }
    let sb = std::process::Command::new("dumpe2fs")
        .arg("-h")
        .arg(&disk)
        .output()
        .expect("dumpe2fs (e2fsprogs)");
    let sb = String::from_utf8_lossy(&sb.stdout);
    let line = |key: &str| {
        sb.lines()
            .find(|l| l.starts_with(key))
            .unwrap_or_default()
            .to_string()
    };
    assert!(line("Filesystem state:").ends_with(" clean"), "{sb}");
    assert!(
        !line("Filesystem features:").contains("needs_recovery"),
        "{sb}"
    );
    let mut vm = Vm::boot_disk(&disk, &pi_cmdline());
    vm.wait_shell(BOOT);
    assert_eq!(vm.sh("cat /root/kept", CMD).trim(), "kept");
    power_off(&mut vm);
    assert_clean(&disk, "the second poweroff");
}

/// The lines of the first `sh` block of the repository's `doc` that holds
/// `needle`: what the docs tell a user to type, run as written.
fn doc_block(doc: &str, needle: &str) -> Vec<String> {
    let text = std::fs::read_to_string(repo_root().join(doc)).unwrap();
    let block = text
        .split("```sh\n")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .find(|b| b.contains(needle))
        .unwrap_or_else(|| panic!("no sh block with {needle:?} in {doc}"));
    block.lines().map(str::to_owned).collect()
}

/// Writes `lines` to `path` in the guest, one `echo` each (no line holds
/// a single quote).
fn write_lines(vm: &mut Vm, path: &str, lines: &[String]) {
    vm.sh(&format!(": > {path}"), CMD);
    for l in lines {
        assert!(!l.contains('\''), "{l}");
        vm.sh(&format!("echo '{l}' >> {path}"), CMD);
    }
}

/// docs/raspberry-pi.md's update steps and docs/update.md's script, run
/// as written on the disk root with an isolated unit (web) running. A
/// truncated binary fails the re-exec step (`initctl`, the same file
/// once renamed, dies of SIGBUS; a binary PID 1 refuses fails that step
/// the same way, exit 1) and each puts the old one back: the card's
/// /sbin/init is the old wren byte for byte, PID 1 not re-executed, and
/// the card boots. A working one is re-executed by each in turn (web's
/// pid kept); the binaries web's reaper may run, the boot's and the first
/// update's, are kept (init.old, init.old.SECONDS), so the root can be
/// remounted read-only after both; with them removed, the kernel refuses
/// that (busy), as the docs warn.
#[test]
fn disk_root_updated_by_the_documented_steps_boots_after_a_failed_update() {
    let steps = doc_block("docs/raspberry-pi.md", "cp /tmp/wren /sbin/init.new");
    let script = doc_block("docs/update.md", "update.sh NEW_WREN");
    let disk = disk_copy("update_steps");
    let mut vm = Vm::boot_disk(&disk, &pi_cmdline());
    vm.wait_shell(BOOT);
    vm.wait_states(&[("web", &["running"])], secs(60));
    write_lines(&mut vm, "/root/update.sh", &steps);
    write_lines(&mut vm, "/root/update-all.sh", &script);
    let old = vm.sh("md5sum < /sbin/init", CMD);
    vm.sh("head -c 100000 /sbin/init > /tmp/wren", CMD);
    let out = vm.sh("sh /root/update.sh 2>&1", secs(60));
    assert!(out.contains("Bus error"), "the re-exec step failed: {out}");
    assert_eq!(vm.sh("md5sum < /sbin/init", CMD), old, "{out}");
    let (out, rc) = vm.sh_rc("sh /root/update-all.sh /tmp/wren 2>&1", secs(60));
    assert!(rc == 1 && out.contains("Bus error"), "{out}");
    assert_eq!(vm.sh("md5sum < /sbin/init", CMD), old, "{out}");
    let info = vm.sh("initctl status | tail -n 1", CMD);
    assert!(
        info.starts_with("init: wren") && !info.contains("re-exec"),
        "{info}"
    );
    vm.sh("sync", CMD);
    power_off(&mut vm);
    assert_clean(&disk, "a failed update");

    let mut vm = Vm::boot_disk(&disk, &pi_cmdline());
    vm.wait_shell(BOOT);
    let before = vm.wait_states(&[("web", &["running"])], secs(60));
    let web = before["web"].pid;
    let remount_ro = |vm: &mut Vm| {
        let r = vm.sh_rc("mount -o remount,ro / 2>&1", CMD);
        vm.sh("mount -o remount,rw / 2>&1", CMD);
        r
    };
    // An update that works: re-executed, web untouched, and the root can
    // go read-only with the boot's binary kept (`kept`).
    let updated = |vm: &mut Vm, script: &str, reexecs: u32, kept: &str| {
        let (out, rc) = vm.sh_rc(&format!("sh {script} 2>&1"), secs(60));
        assert_eq!(rc, 0, "{out}");
        let info = vm.sh("initctl status | tail -n 1", CMD);
        assert!(info.contains(&format!("re-exec {reexecs}")), "{info}");
        assert_eq!(vm.unit("web").and_then(|u| u.pid), web);
        let (out, rc) = remount_ro(vm);
        assert_eq!(rc, 0, "the boot's binary kept as {kept}: {out}");
    };
    vm.sh("cp /sbin/init /tmp/wren", CMD);
    updated(&mut vm, "/root/update.sh", 1, "init.old");
    updated(
        &mut vm,
        "/root/update-all.sh /tmp/wren",
        2,
        "init.old.SECONDS",
    );
    vm.sh("rm /sbin/init.old*", CMD);
    let (out, rc) = remount_ro(&mut vm);
    assert_ne!(rc, 0, "web's reaper holds the deleted boot binary: {out}");
    power_off(&mut vm);
}
