//! Degrade, never brick, with no usable cgroup2 (issue 8, CONTRACT
//! section 2): the disk image's first stage mounts a cgroup v1 hierarchy
//! or a tmpfs on /sys/fs/cgroup before wren starts
//! (`firststage.cgroup=`, test images only, see rootfs/build-disk). PID 1
//! says once what is missing and how to turn it on, the console shell
//! comes up, units run without cgroups or limits, and `initctl status`
//! says what is not enforced.
use crate::*;
use wren_boot_tests::{disk_copy, secs};

fn runs_without_cgroup2(name: &str, what: &str, found: &str) {
    let disk = disk_copy(name);
    let cmdline = format!(
        "console=ttyAMA0 root=/dev/vda rootfstype=ext4 rootwait rw init=/sbin/init \
         wren.units=/test/nocgroup firststage.cgroup={what}"
    );
    let mut vm = Vm::boot_disk(&disk, &cmdline);
    vm.wait_shell(BOOT);
    // What the first stage left there is what PID 1 found.
    let fs = vm.sh("grep ' /sys/fs/cgroup ' /proc/mounts", CMD);
    let want_fs = if what == "v1" {
        "cgroup /sys/fs/cgroup cgroup "
    } else {
        "cgroup /sys/fs/cgroup tmpfs "
    };
    assert!(fs.starts_with(want_fs), "{fs}");
    // Said once, with what is missing and how to enable it.
    let msg = vm.sh(
        "dmesg | grep 'no usable cgroup2' | sed 's/^\\[[^]]*\\] //'",
        CMD,
    );
    assert_eq!(msg.lines().count(), 1, "{msg}");
    assert!(msg.contains(found), "{msg}");
    assert!(msg.contains("not enforced"), "{msg}");
    assert!(
        msg.contains("to enable: let nothing mount on /sys/fs/cgroup before wren"),
        "{msg}"
    );
    // Each unit that sets limit keys names them once; others say nothing.
    let per_unit = vm.sh(
        "dmesg | grep 'not enforced (no cgroup2)' | sed 's/^\\[[^]]*\\] //'",
        CMD,
    );
    assert_eq!(
        per_unit.trim(),
        "wren: limited: not enforced (no cgroup2): cgroup memory.max pids.max"
    );
    // Units run (the limited one did its work), without cgroups.
    let st = vm.wait_states(&[("limited", &["running"]), ("sh", &["running"])], secs(60));
    let pid = st["limited"].pid.expect("limited has a pid");
    let m = marks(&mut vm, "/run/limited");
    assert!(mark(&m, "ready").is_some(), "{m:?}");
    assert_eq!(
        vm.sh(&format!("cat /proc/{pid}/cgroup"), CMD).trim(),
        vm.sh("cat /proc/1/cgroup", CMD).trim()
    );
    // initctl status works, and says what is not enforced.
    let (all, rc) = vm.sh_rc("initctl status", CMD);
    assert_eq!(rc, 0, "{all}");
    assert!(all.contains("limited") && all.contains("sh"), "{all}");
    let (d, rc) = vm.sh_rc("initctl status limited", CMD);
    assert_eq!(rc, 0, "{d}");
    assert!(
        d.contains("not enforced: cgroup memory.max pids.max (no cgroup2)"),
        "{d}"
    );
    let (j, rc) = vm.sh_rc("initctl status --json limited", CMD);
    assert_eq!(rc, 0, "{j}");
    assert!(j.contains("cgroup memory.max pids.max"), "{j}");
    // The rest of initctl works without cgroups too.
    let (m, rc) = vm.sh_rc("initctl metrics", CMD);
    assert_eq!(rc, 0, "{m}");
    assert!(m.contains("limited"), "{m}");
    let (r, rc) = vm.sh_rc("initctl reload", CMD);
    assert_eq!(rc, 0, "{r}");
    // Still running a while later, never retried; a stop and a start work.
    vm.sh("sleep 3", CMD);
    let st = vm.wait_states(&[("limited", &["running"])], CMD);
    assert_eq!(st["limited"].restarts, 0);
    assert_eq!(st["limited"].pid, Some(pid));
    let (out, rc) = vm.sh_rc("initctl stop limited", CMD);
    assert_eq!(rc, 0, "{out}");
    vm.wait_states(&[("limited", &["stopped"])], secs(30));
    // Gone and reaped: without a cgroup, the stop reached it all the same.
    let (_, rc) = vm.sh_rc(&format!("test -e /proc/{pid}"), CMD);
    assert_ne!(rc, 0, "pid {pid} still there after the stop");
    let (out, rc) = vm.sh_rc("initctl start limited", CMD);
    assert_eq!(rc, 0, "{out}");
    vm.wait_states(&[("limited", &["running"])], secs(30));
    // A unit that ignores its stop signal: after its stop_timeout the
    // kill goes to its process group, child included.
    let st = vm.wait_states(&[("stubborn", &["running"])], secs(30));
    let main = st["stubborn"].pid.expect("stubborn has a pid");
    let child = vm.sh("cat /run/stubborn.child", CMD).trim().to_string();
    assert!(child.parse::<u32>().is_ok(), "{child}");
    let (out, rc) = vm.sh_rc("initctl stop stubborn", secs(30));
    assert_eq!(rc, 0, "{out}");
    for p in [main.to_string(), child] {
        let (_, rc) = vm.sh_rc(&format!("test -e /proc/{p}"), CMD);
        assert_ne!(rc, 0, "pid {p} of stubborn survived its stop");
    }
    // A clean poweroff still.
    let before = vm.output().len();
    vm.send("poweroff\n");
    assert_shut_down(&mut vm, before, "reboot: Power down", secs(90));
}

#[test]
fn disk_degrade_cgroup_v1_mounted() {
    runs_without_cgroup2("degrade_v1", "v1", "a cgroup v1 hierarchy is mounted there");
}

#[test]
fn disk_degrade_tmpfs_on_cgroup_root() {
    runs_without_cgroup2("degrade_tmpfs", "tmpfs", "a tmpfs is mounted there");
}

/// No valid unit and no cgroup2: the rescue shell still comes up, without
/// a cgroup, and `initctl` works from it.
#[test]
fn disk_degrade_rescue_shell_without_cgroup2() {
    let disk = disk_copy("degrade_rescue");
    let mut vm = Vm::boot_disk(
        &disk,
        "console=ttyAMA0 root=/dev/vda rootfstype=ext4 rootwait rw init=/sbin/init \
         wren.units=/test/empty firststage.cgroup=v1",
    );
    vm.wait_shell(BOOT);
    let msg = vm.sh(
        "dmesg | grep -e 'no usable cgroup2' -e 'starting rescue shell' | sed 's/^\\[[^]]*\\] //'",
        CMD,
    );
    assert_eq!(msg.lines().count(), 2, "{msg}");
    assert!(
        msg.contains("no valid unit, starting rescue shell"),
        "{msg}"
    );
    let st = vm.wait_states(&[("rescue", &["running"])], secs(30));
    let pid = st["rescue"].pid.expect("rescue has a pid");
    assert_eq!(
        vm.sh(&format!("cat /proc/{pid}/cgroup"), CMD).trim(),
        vm.sh("cat /proc/1/cgroup", CMD).trim()
    );
    let (d, rc) = vm.sh_rc("initctl status rescue", CMD);
    assert_eq!(rc, 0, "{d}");
    assert!(d.contains("not enforced: cgroup"), "{d}");
}
